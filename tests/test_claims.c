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
#include "host.h"
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

/* Three seeds of pool=avg, three of pool=max, clearly apart. */
static const char apart[] = "\"pool=avg\",1,0.800,0.85,0.05\n\"pool=avg\",2,0.810,0.86,0.05\n"
                            "\"pool=avg\",3,0.820,0.87,0.05\n\"pool=max\",1,0.850,0.88,0.03\n"
                            "\"pool=max\",2,0.860,0.89,0.03\n\"pool=max\",3,0.870,0.90,0.03\n";

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
             "train_acc, gap, test_loss, epoch_seconds, epoch1_test_acc, parameters"},
        {"metric = accuracy\n", "claims.ini:11: [claim.m] metric = 'accuracy': expected one "
                                "of test_acc, best_test_acc, train_acc, gap, test_loss, "
                                "epoch_seconds, epoch1_test_acc, parameters"},
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

void suite_claims(void)
{
    static const test_case cases[] = {
        {"a claims run writes each claim's verdict", test_run_writes_verdicts},
        {"metric is required and checked before anything runs", test_metric_required},
        {NULL, NULL},
    };
    test_add_suite("claims", cases);
}
