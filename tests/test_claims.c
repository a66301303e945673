/*
 * test_claims.c - the claims experiment (`mode = claims`) and the statistics behind its
 * verdicts.
 *
 * A claims run is tested on a results folder written here (an experiment file and its
 * cells.csv), so no cell trains.
 */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "claims.h"
#include "errors.h"
#include "stats.h"
#include "testutil.h"

static char fixture_dir[256];

/* A fresh folder holding ev.ini, an experiment whose results folder ev/ has `cells` as its
 * cells.csv (rows of variant,seed,test_acc,train_acc,gap), and claims.ini: an [experiment]
 * section with `experiment_keys`, then `claims`. Returns the claims file's path. */
static const char *claims_fixture(const char *cells, const char *experiment_keys,
                                  const char *claims)
{
    static char path[512];
    char p[512], text[8192];
    snprintf(fixture_dir, sizeof fixture_dir, "%s", test_tmpdir());
    snprintf(p, sizeof p, "%s/ev.ini", fixture_dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = ev\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s\n[data]\ndir = %s/no-data\n[sweep]\npool = avg, max\n"
             "seed = 1, 2, 3\n", CNB_SOURCE_ROOT, fixture_dir, fixture_dir);
    test_write_file(p, text);
    snprintf(p, sizeof p, "%s/ev", fixture_dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/ev/cells.csv", fixture_dir);
    snprintf(text, sizeof text, "variant,seed,test_acc,train_acc,gap\n%s", cells);
    test_write_file(p, text);
    snprintf(path, sizeof path, "%s/claims.ini", fixture_dir);
    snprintf(text, sizeof text, "[experiment]\nname = claims\nmode = claims\nresults = %s\n%s\n%s",
             fixture_dir, experiment_keys, claims);
    test_write_file(path, text);
    return path;
}

/* cnb_claims_run on the claims file `path`, quietly; its return code. */
static int run_claims(const char *path)
{
    cnb_conf c;
    CU_ASSERT_EQUAL_FATAL(cnb_conf_load(&c, path), 0);
    cnb_sweep_opts so = {.jobs = 1};
    int quiet = cnb_error_quiet(1);
    int rc = cnb_claims_run(&c, path, NULL, test_registry(), &so);
    cnb_error_quiet(quiet);
    cnb_conf_free(&c);
    return rc;
}

/* The row of claims.md (of the last fixture) whose claim text is `text`, in `row`. */
static void page_row(const char *text, char *row, size_t len)
{
    char p[512], line[4096], head[512];
    snprintf(p, sizeof p, "%s/claims/claims.md", fixture_dir);
    snprintf(head, sizeof head, "| %s |", text);
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    row[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (strncmp(line, head, strlen(head)) == 0)
            snprintf(row, len, "%s", line);
    fclose(f);
    if (!row[0])
        fprintf(stderr, "\n  claims.md has no row for \"%s\"\n", text);
    CU_ASSERT_FATAL(row[0] != '\0');
}

/* Appends to `cells` one row per value: `variant`, seeds from `seed` on, the value as
 * test_acc, train accuracy 0.9 and gap 0.05. */
static void add_runs(char *cells, size_t len, const char *variant, int seed, const double *v,
                     int n)
{
    for (int i = 0; i < n; i++)
        snprintf(cells + strlen(cells), len - strlen(cells), "\"%s\",%d,%.17g,0.9,0.05\n",
                 variant, seed + i, v[i]);
}

/* Appends a run that never left chance: test accuracy 0.1, train accuracy 0.1112 (as the
 * AlexNet ablation's runs that learnt nothing). */
static void add_chance_run(char *cells, size_t len, const char *variant, int seed)
{
    snprintf(cells + strlen(cells), len - strlen(cells), "\"%s\",%d,0.1,0.1112,0.0112\n",
             variant, seed);
}

/* Five seeds a side whose differences barely vary (a paired design's strength) while the
 * seeds spread the two sides alike. scipy 1.10.1:
 *   ttest_rel(a, b): t = 7.893522173763262, p = 0.0013930679488826751; mean difference
 *     0.009, 95% interval 0.009 -/+ t.ppf(0.975, 4) * d.std(ddof=1) / sqrt(5) =
 *     [0.0058343655219166846, 0.012165634478083331]
 *   ttest_ind(a, b, equal_var=False): t = 0.46254309774784064, p = 0.6560139949625845,
 *     df 7.998919622660356 */
static const double pa[] = {0.811, 0.849, 0.892, 0.868, 0.835};
static const double pb[] = {0.800, 0.840, 0.880, 0.861, 0.829};

/* Three seeds of pool=avg, three of pool=max, clearly apart. */
static const char apart[] = "\"pool=avg\",1,0.800,0.85,0.05\n\"pool=avg\",2,0.810,0.86,0.06\n"
                            "\"pool=avg\",3,0.820,0.87,0.05\n\"pool=max\",1,0.850,0.88,0.03\n"
                            "\"pool=max\",2,0.857,0.89,0.03\n\"pool=max\",3,0.872,0.90,0.02\n";

/* A whole run over a written results folder: one row per claim, each with its verdict, and
 * claims.csv beside it. */
static void test_run_writes_verdicts(void)
{
    const char *path = claims_fixture(
        apart, "",
        "[claim.up]\ntext = max beats avg\nexperiment = ev.ini\nvariant = pool=max\n"
        "baseline = pool=avg\nmetric = test_acc\nexpect = higher\n"
        "[claim.down]\ntext = max loses to avg\nexperiment = ev.ini\nvariant = pool=max\n"
        "baseline = pool=avg\nmetric = test_acc\nexpect = lower\n"
        "[claim.gap]\ntext = max narrows the gap\nexperiment = ev.ini\nvariant = pool=max\n"
        "baseline = pool=avg\nmetric = gap\nexpect = lower\n");
    CU_ASSERT_EQUAL_FATAL(run_claims(path), 0);
    char row[4096], p[512];
    page_row("max beats avg", row, sizeof row);
    CHECK_MSG(row, "| **supported** |");
    CHECK_MSG(row, "| test_acc |");
    page_row("max loses to avg", row, sizeof row);
    CHECK_MSG(row, "| **not supported** |");
    page_row("max narrows the gap", row, sizeof row);
    CHECK_MSG(row, "| gap |");
    CHECK_MSG(row, "| **supported** |");
    snprintf(p, sizeof p, "%s/claims/claims.csv", fixture_dir);
    CU_ASSERT_EQUAL(access(p, R_OK), 0);
}

/* A claim without a metric, or with one nobody knows, is refused at its line (a missing
 * key: the line of the section's first key) with every known metric, before any evidence
 * runs (ev.ini's data folder does not exist: running it would fail with another message). */
static void test_metric_required(void)
{
    static const char *const cases[][2] = {
        {"", "claims.ini:7: [claim.m] needs metric = one of test_acc, best_test_acc, "
             "train_acc, gap, test_loss, epoch_seconds, epoch1_test_acc, parameters, "
             "epochs_to_target, seconds_to_target, step_ms"},
        {"metric = accuracy\n", "claims.ini:11: [claim.m] metric = 'accuracy': expected one "
                                "of test_acc, best_test_acc, train_acc, gap, test_loss, "
                                "epoch_seconds, epoch1_test_acc, parameters, "
                                "epochs_to_target, seconds_to_target, step_ms"},
        {"metric = epochs_to_target\n", "claims.ini:7: [claim.m] metric = epochs_to_target "
                                        "and seconds_to_target need target = a validation "
                                        "accuracy to reach"},
        {"metric = test_acc\ntarget = 0.8\n", "claims.ini:7: [claim.m] target goes with "
                                               "metric = epochs_to_target or "
                                               "seconds_to_target"},
        {"metric = step_ms\n", "claims.ini:7: [claim.m] metric = step_ms times two variants "
                               "of a model: it needs model, variant and baseline"},
        {"metric = parameters\n", "claims.ini:7: [claim.m] expect = higher compares two "
                                  "variants"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char claims[512];
        snprintf(claims, sizeof claims, "[claim.m]\nexperiment = ev.ini\nvariant = pool=max\n"
                 "baseline = pool=avg\nexpect = higher\n%s", cases[i][0]);
        const char *path = claims_fixture(apart, "runs = ev.ini", claims);
        CU_ASSERT_EQUAL(run_claims(path), CNB_EINVAL);
        CHECK_MSG(cnb_last_error(), cases[i][1]);
    }
}

static void test_paired_t_known(void)
{
    cnb_comparison c;
    cnb_paired(pa, pb, 5, &c);
    CU_ASSERT_DOUBLE_EQUAL(c.diff, 0.009000000000000008, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.t, 7.893522173763262, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.df, 4.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(c.p, 0.0013930679488826751, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c.lo, 0.0058343655219166846, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c.hi, 0.012165634478083331, 1e-12);
    cnb_welch(pa, 5, pb, 5, &c); /* the same numbers, unpaired */
    CU_ASSERT_DOUBLE_EQUAL(c.t, 0.46254309774784064, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.df, 7.998919622660356, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.p, 0.6560139949625845, 1e-9);
    cnb_paired(pa, pb, 1, &c);
    CU_ASSERT(isnan(c.p) && isnan(c.lo));
    CU_ASSERT_DOUBLE_EQUAL(c.diff, 0.011, 1e-15);
}

/* scipy 1.10.1: x = [0.862, 0.871, 0.855, 0.866], y = [0.848, 0.851, 0.861];
 * ttest_ind(x, y, equal_var=False): t = 1.96162775622225, p = 0.11436459938704858, Welch's
 * df 4.434328393598103, 95% interval of the difference 0.01016666666666688 -/+
 * t.ppf(0.975, df) * se = [-0.00368384793876835, 0.02401718127210211] */
static void test_welch_known(void)
{
    const double x[] = {0.862, 0.871, 0.855, 0.866}, y[] = {0.848, 0.851, 0.861};
    cnb_comparison c;
    cnb_welch(x, 4, y, 3, &c);
    CU_ASSERT_DOUBLE_EQUAL(c.diff, 0.01016666666666688, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(c.t, 1.96162775622225, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.df, 4.434328393598103, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.p, 0.11436459938704858, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.lo, -0.00368384793876835, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.hi, 0.02401718127210211, 1e-9);
}

/* Runs pair only when each unit is on each side once: a unit twice on one side (two runs
 * of one seed) or missing from the other leaves the runs unpaired, whichever side it is on;
 * a run left out takes its partner with it. */
static void test_pair_units(void)
{
    const cnb_unit_value a[] = {{0.9, "seed=1", 0}, {0.8, "seed=2", 0}, {0.7, "seed=3", 1}};
    const cnb_unit_value b[] = {{0.6, "seed=3", 0}, {0.5, "seed=1", 0}, {0.4, "seed=2", 0}};
    const cnb_unit_value twice[] = {{0.5, "seed=1", 0}, {0.4, "seed=1", 0}, {0.3, "seed=2", 0}};
    int partner[3] = {-1, -1, -1}, nx, ny;
    CU_ASSERT_PTR_NULL(cnb_pair_units(a, 3, b, 3, partner));
    CU_ASSERT(partner[0] == 1 && partner[1] == 2 && partner[2] == 0);
    cnb_comparison c;
    CU_ASSERT_EQUAL(cnb_compare_units(a, 3, b, 3, partner, &c, &nx, &ny), 0);
    CU_ASSERT(nx == 2 && ny == 2);
    CU_ASSERT_DOUBLE_EQUAL(c.diff, 0.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c.df, 1.0, 0.0);
    CU_ASSERT_EQUAL(cnb_compare_units(a, 3, b, 3, NULL, &c, &nx, &ny), 0);
    CU_ASSERT(nx == 2 && ny == 3);
    CU_ASSERT_DOUBLE_EQUAL(c.diff, 0.85 - 0.5, 1e-12);
    const char *lonely[] = {cnb_pair_units(a, 2, twice, 3, partner),
                            cnb_pair_units(twice, 3, a, 2, partner),
                            cnb_pair_units(a, 3, b, 2, partner),
                            cnb_pair_units(a, 2, b, 3, partner)};
    const char *const expected[] = {"seed=1", "seed=1", "seed=2", "seed=3"};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(lonely[i] ? lonely[i] : "(paired)", expected[i]);
}

/* The claim of the paired five seeds, with `extra` keys. */
static const char *paired_claim(const char *cells, const char *extra)
{
    char claims[1024];
    snprintf(claims, sizeof claims, "[claim.p]\ntext = paired\nexperiment = ev.ini\n"
             "variant = pool=max\nbaseline = pool=avg\nmetric = test_acc\nexpect = higher\n%s",
             extra);
    return claims_fixture(cells, "", claims);
}

/* Runs of the same seed pair (paired t) unless the claim says paired = no or a seed is
 * missing on one side (Welch); paired = yes on runs that do not pair is refused. */
static void test_pairing(void)
{
    char cells[2048] = "", row[4096];
    add_runs(cells, sizeof cells, "pool=max", 1, pa, 5);
    add_runs(cells, sizeof cells, "pool=avg", 1, pb, 5);
    CU_ASSERT_EQUAL_FATAL(run_claims(paired_claim(cells, "")), 0);
    page_row("paired", row, sizeof row);
    CHECK_MSG(row, "| paired t | 5 pairs | +0.0090 [+0.0058, +0.0122] | 0.001 |");
    CHECK_MSG(row, "**supported**");
    CU_ASSERT_EQUAL_FATAL(run_claims(paired_claim(cells, "paired = no\n")), 0);
    page_row("paired", row, sizeof row);
    CHECK_MSG(row, "| Welch t | 5 / 5 |");
    CHECK_MSG(row, "| 0.656 |");
    CHECK_MSG(row, "**inconclusive** (80% power: 185 seeds a side) |");

    cells[0] = '\0'; /* the baseline's seeds are 2 to 6: seed 1 has no partner */
    add_runs(cells, sizeof cells, "pool=max", 1, pa, 5);
    add_runs(cells, sizeof cells, "pool=avg", 2, pb, 5);
    CU_ASSERT_EQUAL_FATAL(run_claims(paired_claim(cells, "")), 0);
    page_row("paired", row, sizeof row);
    CHECK_MSG(row, "| Welch t | 5 / 5 |");
    CU_ASSERT_EQUAL(run_claims(paired_claim(cells, "paired = yes\n")), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "claims.ini:13: [claim.p] paired = yes, but the run seed=1 has "
                                "no single partner");
    CU_ASSERT_EQUAL(run_claims(paired_claim(cells, "paired = maybe\n")), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "claims.ini:13: [claim.p] paired = 'maybe': expected one of "
                                "auto, yes, no");
}

/* A claim that pools over another term pairs each run with the run of the same seed and
 * the same value of that term: 3 seeds x 2 activations make 6 pairs, as many as runs. */
static void test_pooled_pairing(void)
{
    char cells[2048] = "", row[4096];
    add_runs(cells, sizeof cells, "pool=max act=relu", 1, pa, 3);
    add_runs(cells, sizeof cells, "pool=max act=sigmoid", 1, pa + 2, 3);
    add_runs(cells, sizeof cells, "act=relu pool=avg", 1, pb, 3);
    add_runs(cells, sizeof cells, "act=sigmoid pool=avg", 1, pb + 2, 3);
    CU_ASSERT_EQUAL_FATAL(run_claims(paired_claim(cells, "")), 0);
    page_row("paired", row, sizeof row);
    CHECK_MSG(row, "| paired t | 6 pairs |");
}

/* statsmodels 0.13.5: multipletests([0.01, 0.04, 0.03, 0.005, 0.20, 0.045], method=M)[1]
 *   holm:   [0.05, 0.12, 0.12, 0.03, 0.2, 0.12]
 *   fdr_bh: [0.030000000000000002, 0.05399999999999999, 0.05399999999999999,
 *            0.030000000000000002, 0.2, 0.05399999999999999]
 * with a claim without a test (NAN) in third place, left out of the family. */
static void test_adjust_known(void)
{
    const double p[] = {0.01, 0.04, NAN, 0.03, 0.005, 0.20, 0.045};
    const double holm[] = {0.05, 0.12, NAN, 0.12, 0.03, 0.2, 0.12};
    const double bh[] = {0.030000000000000002, 0.05399999999999999, NAN,
                         0.05399999999999999, 0.030000000000000002, 0.2, 0.05399999999999999};
    double adj[7];
    CU_ASSERT_EQUAL_FATAL(cnb_adjust_p(p, 7, CNB_CORRECT_HOLM, adj), 0);
    for (int i = 0; i < 7; i++)
        CU_ASSERT(i == 2 ? isnan(adj[i]) : fabs(adj[i] - holm[i]) < 1e-15);
    CU_ASSERT_EQUAL_FATAL(cnb_adjust_p(p, 7, CNB_CORRECT_BH, adj), 0);
    for (int i = 0; i < 7; i++)
        CU_ASSERT(i == 2 ? isnan(adj[i]) : fabs(adj[i] - bh[i]) < 1e-15);
    CU_ASSERT_EQUAL_FATAL(cnb_adjust_p(p, 7, CNB_CORRECT_NONE, adj), 0);
    for (int i = 0; i < 7; i++)
        CU_ASSERT(i == 2 ? isnan(adj[i]) : adj[i] == p[i]);
    CU_ASSERT_EQUAL(cnb_adjust_p(p, 0, CNB_CORRECT_HOLM, adj), 0);
}

/* Two claims whose paired p are 0.02708 and 0.03994 (scipy 1.10.1 ttest_rel): Holm makes
 * both 0.054 (2 x 0.02708, then no lower), Benjamini-Hochberg both 0.040, none leaves
 * them; at alpha 0.05 only Holm's are inconclusive, and would be decided with 80% power
 * by 7 and 8 seeds (the reference formula of test_seeds_needed on each pair's measured
 * mean and sd of differences, at alpha / 2 for the 2 tested claims). */
static void test_correction_in_run(void)
{
    static const double mid[] = {0.806, 0.850, 0.880, 0.866, 0.838};
    static const double max[] = {0.805, 0.851, 0.879, 0.868, 0.837};
    static const char *const cases[][3] = {
        {"", "| 0.027 | 0.054 | **inconclusive** (80% power: 7 seeds a side) |",
         "| 0.040 | 0.054 | **inconclusive** (80% power: 8 seeds a side) |"},
        {"correction = holm", "| 0.027 | 0.054 | **inconclusive** (80% power: 7 seeds a side) |",
         "| 0.040 | 0.054 | **inconclusive** (80% power: 8 seeds a side) |"},
        {"correction = bh", "| 0.027 | 0.040 | **supported** |",
         "| 0.040 | 0.040 | **supported** |"},
        {"correction = none", "| 0.027 | 0.027 | **supported** |",
         "| 0.040 | 0.040 | **supported** |"},
    };
    char cells[2048] = "", row[4096];
    add_runs(cells, sizeof cells, "pool=avg", 1, pb, 5);
    add_runs(cells, sizeof cells, "pool=mid", 1, mid, 5);
    add_runs(cells, sizeof cells, "pool=max", 1, max, 5);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = claims_fixture(
            cells, cases[i][0],
            "[claim.mid]\ntext = mid\nexperiment = ev.ini\nvariant = pool=mid\n"
            "baseline = pool=avg\nmetric = test_acc\nexpect = higher\n"
            "[claim.max]\ntext = max\nexperiment = ev.ini\nvariant = pool=max\n"
            "baseline = pool=avg\nmetric = test_acc\nexpect = higher\n");
        CU_ASSERT_EQUAL_FATAL(run_claims(path), 0);
        page_row("mid", row, sizeof row);
        CHECK_MSG(row, cases[i][1]);
        page_row("max", row, sizeof row);
        CHECK_MSG(row, cases[i][2]);
    }
    CU_ASSERT_EQUAL(run_claims(claims_fixture(cells, "correction = bonferroni", "")),
                    CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "claims.ini:5: [experiment] correction = 'bonferroni': "
                                "expected one of holm, bh, none");
}

/* statsmodels 0.13.5, on the paired five seeds (difference 0.009):
 *   ttost_paired(a, b, -m, m)[0] = 0.003122259681687433 (m 0.015), 0.21498668974427648
 *     (m 0.010), 0.9876443102717477 (m 0.005);
 *   beyond the margin, min(ttest_rel(a - m, b, alternative='greater').pvalue,
 *     ttest_rel(a + m, b, alternative='less').pvalue) = 0.9968777403183126,
 *     0.7850133102557253, 0.012355689728252316;
 *   90% interval 0.009 -/+ t.ppf(0.95, 4) * se = [0.006569320689843673, 0.011430679310156344]
 * and on the Welch data: ttost_ind(x, y, -m, m, usevar='unequal')[0] = 0.007703231967801031
 * (m 0.03), 0.9276930454726203 (m 0.001); beyond (equal_var=False) 0.992296768032199,
 * 0.07230695452737967; 90% interval [-0.0005784810581999349, 0.020911814391533695]. */
static void test_tost_known(void)
{
    static const struct {
        int paired;
        double m, inside, beyond;
    } cases[] = {
        {1, 0.015, 0.003122259681687433, 0.9968777403183126},
        {1, 0.010, 0.21498668974427648, 0.7850133102557253},
        {1, 0.005, 0.9876443102717477, 0.012355689728252316},
        {0, 0.03, 0.007703231967801031, 0.992296768032199},
        {0, 0.001, 0.9276930454726203, 0.07230695452737967},
    };
    const double x[] = {0.862, 0.871, 0.855, 0.866}, y[] = {0.848, 0.851, 0.861};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnb_comparison c;
        cnb_equivalence e;
        if (cases[i].paired)
            cnb_paired(pa, pb, 5, &c);
        else
            cnb_welch(x, 4, y, 3, &c);
        cnb_tost(&c, cases[i].m, 0.05, &e);
        CU_ASSERT_DOUBLE_EQUAL(e.p_inside, cases[i].inside, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(e.p_beyond, cases[i].beyond, 1e-9);
        double lo = cases[i].paired ? 0.006569320689843673 : -0.0005784810581999349;
        double hi = cases[i].paired ? 0.011430679310156344 : 0.020911814391533695;
        CU_ASSERT_DOUBLE_EQUAL(e.lo, lo, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(e.hi, hi, 1e-9);
    }
    /* differences of exactly 0.25 (no spread): inside a margin of 0.5, beyond one of 0.125,
     * and at a margin of 0.25 neither */
    const double u[] = {0.5, 1.5, 2.5}, v[] = {0.25, 1.25, 2.25};
    cnb_comparison c;
    cnb_equivalence e;
    cnb_paired(u, v, 3, &c);
    CU_ASSERT(c.se == 0.0 && c.p == 0.0 && c.lo == 0.25 && c.hi == 0.25);
    cnb_tost(&c, 0.5, 0.05, &e);
    CU_ASSERT(e.p_inside == 0.0 && e.p_beyond == 1.0);
    cnb_tost(&c, 0.125, 0.05, &e);
    CU_ASSERT(e.p_inside == 1.0 && e.p_beyond == 0.0);
    cnb_tost(&c, 0.25, 0.05, &e);
    CU_ASSERT(e.p_inside == 1.0 && e.p_beyond == 1.0);
}

/* The paired five seeds against three margins: Holm's adjusted p (0.0031 x 3, 0.0124 x 2,
 * then 0.215) decide equivalent within 0.015, not equivalent within 0.005, and nothing
 * within 0.010, where the 90% interval [0.0066, 0.0114] straddles the margin (60 seeds
 * would show equivalence with 80% power at alpha / 3: the reference formula of
 * test_seeds_needed). */
static void test_equivalence_in_run(void)
{
    char cells[2048] = "", claims[2048] = "", row[4096];
    add_runs(cells, sizeof cells, "pool=max", 1, pa, 5);
    add_runs(cells, sizeof cells, "pool=avg", 1, pb, 5);
    static const char *const margins[] = {"0.015", "0.01", "0.005"};
    for (int i = 0; i < 3; i++)
        snprintf(claims + strlen(claims), sizeof claims - strlen(claims),
                 "[claim.m%d]\ntext = within %s\nexperiment = ev.ini\nvariant = pool=max\n"
                 "baseline = pool=avg\nmetric = test_acc\nexpect = similar\nmargin = %s\n",
                 i, margins[i], margins[i]);
    CU_ASSERT_EQUAL_FATAL(run_claims(claims_fixture(cells, "", claims)), 0);
    page_row("within 0.015", row, sizeof row);
    CHECK_MSG(row, "| +0.0090 [+0.0066, +0.0114] (90%), margin ±0.015 | 0.003 | 0.009 | "
                   "**equivalent within ±0.015** |");
    page_row("within 0.01", row, sizeof row);
    CHECK_MSG(row, "| 0.215 | 0.215 | **inconclusive** (80% power: 60 seeds a side) |");
    page_row("within 0.005", row, sizeof row);
    CHECK_MSG(row, "| 0.012 | 0.025 | **not equivalent** |");
}

/* scipy 1.10.1 stats.fisher_exact([[a, b], [c, d]])[1] */
static void test_fisher_known(void)
{
    static const struct {
        unsigned a, b, c, d;
        double p;
    } cases[] = {
        {0, 18, 4, 14, 0.10389610389610388}, {4, 14, 0, 18, 0.10389610389610388},
        {1, 9, 11, 3, 0.0027594561852200836}, {2, 16, 4, 14, 0.6581483033095936},
        {7, 2, 2, 7, 0.056684491978609634}, {0, 3, 3, 0, 0.10000000000000002},
        {3, 3, 3, 3, 1.0}, {0, 5, 0, 5, 1.0}, {0, 6, 2, 4, 0.4545454545454546},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CU_ASSERT_DOUBLE_EQUAL(cnb_fisher_exact(cases[i].a, cases[i].b, cases[i].c, cases[i].d),
                               cases[i].p, 1e-12);
}

/* Six seeds a side, the baseline's seeds 2 and 5 never left chance (train accuracy 0.1112).
 * scipy 1.10.1: without them, ttest_rel on the 4 other pairs gives difference 0.01025,
 * p = 0.002677439936391654; fisher_exact([[0, 6], [2, 4]]) p = 0.4545; averaged in, the
 * runs at chance make the difference 0.2542 and p = 0.16038162323398955. */
static void test_chance_runs(void)
{
    static const double va[] = {0.811, 0.849, 0.892, 0.868, 0.835, 0.857};
    static const double vb[] = {0.800, 0.840, 0.880, 0.861, 0.829, 0.846};
    char cells[2048] = "", row[4096];
    add_runs(cells, sizeof cells, "pool=max", 1, va, 6);
    add_runs(cells, sizeof cells, "pool=avg", 1, vb, 1);
    add_chance_run(cells, sizeof cells, "pool=avg", 2);
    add_runs(cells, sizeof cells, "pool=avg", 3, vb + 2, 2);
    add_chance_run(cells, sizeof cells, "pool=avg", 5);
    add_runs(cells, sizeof cells, "pool=avg", 6, vb + 5, 1);
    const char *claim = "experiment = ev.ini\nvariant = pool=max\nbaseline = pool=avg\n"
                        "metric = test_acc\nexpect = higher\n";
    char claims[2048];
    snprintf(claims, sizeof claims, "[claim.a]\ntext = default rule\n%s"
             "[claim.b]\ntext = no rule\n%schance_margin = 0\nchance = 0.1\n"
             "[claim.c]\ntext = welch\n%spaired = no\n", claim, claim, claim);
    CU_ASSERT_EQUAL_FATAL(run_claims(claims_fixture(cells, "correction = none", claims)), 0);
    page_row("default rule", row, sizeof row);
    CHECK_MSG(row, "| test_acc | 0 / 2, p = 0.455 | paired t | 4 pairs | +0.0103 [");
    CHECK_MSG(row, "| 0.003 | 0.003 | **supported** |");
    page_row("no rule", row, sizeof row);
    CHECK_MSG(row, "| 0 / 0 (train acc < 0.1) | paired t | 6 pairs | +0.2542 [");
    CHECK_MSG(row, "| 0.160 | 0.160 | **inconclusive** (80% power: 20 seeds a side) |");
    page_row("welch", row, sizeof row);
    CHECK_MSG(row, "| 0 / 2, p = 0.455 | Welch t | 6 / 4 | +0.0052 [");
    CHECK_MSG(row, "**inconclusive** (80% power: 553 seeds a side) |");

    /* the rule from [experiment], and its errors */
    CU_ASSERT_EQUAL_FATAL(run_claims(claims_fixture(cells, "chance_margin = 0", claims)), 0);
    page_row("default rule", row, sizeof row);
    CHECK_MSG(row, "| 0 / 0 | paired t | 6 pairs |");
    CU_ASSERT_EQUAL(run_claims(claims_fixture(cells, "chance = 2", claims)), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "claims.ini:5: [experiment] chance = '2': expected a number "
                                "from 0 to 1");
}

/* epochs_to_target and seconds_to_target from each cell's metrics.csv: the first epoch
 * whose validation accuracy reaches the target, and the training seconds up to it. A run
 * that never reaches it is left out with its partner and counted in the chance column.
 * pool=max reaches 0.85 after epochs 1, 2, 1 (2 s an epoch); pool=avg after 3, 5 and never
 * (3 s an epoch): pairs (1, 3) and (2, 5), differences -2 and -3 epochs, -7 and -11 s. */
static void test_to_target(void)
{
    static const int reach[2][3] = {{1, 2, 1}, {3, 5, 0}};
    char cells[1024] = "", p[600], row[4096];
    snprintf(cells, sizeof cells, "ignored,1,0.5,0.9,0.05\n");
    const char *claim = "experiment = ev.ini\nvariant = pool=max\nbaseline = pool=avg\n"
                        "expect = lower\ntarget = 0.85\n";
    char claims[1024];
    snprintf(claims, sizeof claims, "[claim.e]\ntext = epochs\nmetric = epochs_to_target\n%s"
             "[claim.s]\ntext = seconds\nmetric = seconds_to_target\n%s", claim, claim);
    const char *path = claims_fixture(cells, "correction = none", claims);
    char table[1024] = "cell,variant,seed,train_acc\n";
    for (int side = 0; side < 2; side++)
        for (int seed = 1; seed <= 3; seed++) {
            const char *pool = side ? "avg" : "max";
            char metrics[1024] = "epoch,train_seconds,val_acc\n";
            for (int e = 1; e <= 6; e++)
                snprintf(metrics + strlen(metrics), sizeof metrics - strlen(metrics),
                         "%d,%d,%s\n", e, side ? 3 : 2,
                         reach[side][seed - 1] && e >= reach[side][seed - 1] ? "0.86" : "0.8");
            snprintf(p, sizeof p, "%s/ev/%s%d", fixture_dir, pool, seed);
            CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
            snprintf(p + strlen(p), sizeof p - strlen(p), "/metrics.csv");
            test_write_file(p, metrics);
            snprintf(table + strlen(table), sizeof table - strlen(table),
                     "%s%d,\"pool=%s\",%d,0.9\n", pool, seed, pool, seed);
        }
    snprintf(p, sizeof p, "%s/ev/cells.csv", fixture_dir);
    test_write_file(p, table);
    CU_ASSERT_EQUAL_FATAL(run_claims(path), 0);
    page_row("epochs", row, sizeof row);
    CHECK_MSG(row, "| epochs_to_target | 0 / 1, p = 1.000 (or never reached val acc 0.85) | "
                   "paired t | 2 pairs | -2.5000 [");
    page_row("seconds", row, sizeof row);
    CHECK_MSG(row, "| paired t | 2 pairs | -9.0000 [");
}

/* step_ms: the claims run times both variants itself, a step of each per round, the rounds
 * pairing them. (What it finds is not asserted: these machines are shared.) */
static void test_step_ms(void)
{
    char row[4096], claims[1024];
    snprintf(claims, sizeof claims,
             "[claim.t]\ntext = timed\nmodel = %s/experiments/models/lenet5.ini\n"
             "variant = act=relu\nbaseline = act=sigmoid\nmetric = step_ms\nexpect = lower\n"
             "backend = naive\nbatch = 2\nrounds = 12\n", CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL_FATAL(run_claims(claims_fixture(apart, "", claims)), 0);
    page_row("timed", row, sizeof row);
    CHECK_MSG(row, "| timed by this run: ");
    CHECK_MSG(row, "lenet5.ini on naive, 1 thread, batch 2, 12 rounds | act=relu | act=sigmoid | "
                   "step_ms | 0 / 0 | paired t | 12 rounds | ");
    CHECK_MSG(row, " ms (medians ");
    snprintf(claims, sizeof claims,
             "[claim.t]\ntext = timed\nmodel = %s/experiments/models/lenet5.ini\n"
             "variant = relu\nbaseline = act=sigmoid\nmetric = step_ms\nexpect = lower\n",
             CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL(run_claims(claims_fixture(apart, "", claims)), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "claims.ini:9: [claim.t] variant: 'relu' is not name=value");
}

/* The reference: the same normal approximation written with scipy 1.10.1 (the smallest n
 * from 2 with power >= 0.8; se = sd / sqrt(n) paired, sd * sqrt(2 / n) otherwise; c =
 * t.ppf(1 - alpha/2 (detect) or 1 - alpha, n - 1 paired or 2n - 2)):
 *   detect:  norm.cdf(d/se - c) + norm.cdf(-d/se - c)
 *   inside:  max(0, norm.cdf((m - d)/se - c) - norm.cdf((-m - d)/se + c))
 *   beyond:  norm.cdf((d - m)/se - c)
 * For the first two, statsmodels' exact noncentral-t solvers give 23.6 and 8.6
 * (TTestIndPower, TTestPower .solve_power(effect_size=d/sd, alpha=0.05, power=0.8)). */
static void test_seeds_needed(void)
{
    CU_ASSERT_EQUAL(cnb_seeds_to_detect(0.005, 0.006, 0, 0.05, 0.8), 24);
    CU_ASSERT_EQUAL(cnb_seeds_to_detect(-0.0044, 0.004, 1, 0.05, 0.8), 9);
    CU_ASSERT_EQUAL(cnb_seeds_to_detect(0.0001, 0.01, 0, 0.05, 0.8), -1); /* > 1000 */
    CU_ASSERT_EQUAL(cnb_seeds_to_detect(0.0, 0.01, 0, 0.05, 0.8), -1);
    CU_ASSERT_EQUAL(cnb_seeds_to_decide_equivalence(0.002, 0.005, 0.005, 0, 0.05, 0.8), 35);
    CU_ASSERT_EQUAL(cnb_seeds_to_decide_equivalence(0.0, 0.005, 0.005, 1, 0.05, 0.8), 10);
    CU_ASSERT_EQUAL(cnb_seeds_to_decide_equivalence(0.02, 0.01, 0.005, 1, 0.05, 0.8), 5);
    CU_ASSERT_EQUAL(cnb_seeds_to_decide_equivalence(-0.023, 0.0066, 0.005, 0, 0.05, 0.8), 3);
    CU_ASSERT_EQUAL(cnb_seeds_to_decide_equivalence(0.005, 0.01, 0.005, 0, 0.05, 0.8), -1);
}

void suite_claims(void)
{
    static const test_case cases[] = {
        {"a claims run writes each claim's verdict", test_run_writes_verdicts},
        {"metric is required and checked before anything runs", test_metric_required},
        {"paired t on a known dataset", test_paired_t_known},
        {"Welch on a known dataset", test_welch_known},
        {"runs of the same seed pair; paired = auto, yes, no", test_pairing},
        {"a pooled claim pairs by seed and the pooled terms", test_pooled_pairing},
        {"runs pair when each unit is once on each side", test_pair_units},
        {"Holm and Benjamini-Hochberg on a known vector", test_adjust_known},
        {"verdicts use the adjusted p: holm, bh, none", test_correction_in_run},
        {"TOST on known datasets, both sides of the margin", test_tost_known},
        {"equivalence verdicts: equivalent, not, inconclusive", test_equivalence_in_run},
        {"Fisher's exact test on known tables", test_fisher_known},
        {"runs at chance are counted apart and left out", test_chance_runs},
        {"seeds needed for 80% power, against the formula", test_seeds_needed},
        {"epochs and seconds to a validation target", test_to_target},
        {"step_ms: both variants timed in paired rounds", test_step_ms},
        {NULL, NULL},
    };
    test_add_suite("claims", cases);
}
