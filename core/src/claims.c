/* claims.c - answer the seed notes' claims from finished experiments; see claims.h. */
#include "claims.h"

#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clock.h"
#include "csv.h"
#include "errors.h"
#include "experiment.h"
#include "fsutil.h"
#include "net.h"
#include "rng.h"
#include "stats.h"

#define MAX_CLAIMS 64
/* The default rule for a run that never left chance: final train accuracy below 0.15, a
 * guess among 10 classes (0.1) and half as much again. A run that learnt anything ends far
 * above it (every trained run of the two ablations ends above 0.8), and one that did not
 * stays within a point or two of 0.1 (0.111 in the AlexNet ablation). */
#define CHANCE 0.1
#define CHANCE_MARGIN 0.05
/* Beside an inconclusive verdict: the seeds a side that would reach a verdict with this
 * probability, were the observed difference and spread the true ones. */
#define PLANNED_POWER 0.8

static const char *const claim_keys[] = {"text", "experiment", "variant", "baseline", "metric",
                                         "expect", "margin", "paired", "chance",
                                         "chance_margin", "model", "vars", "layers", "target",
                                         "backend", "threads", "batch", "rounds", NULL};
static const char *const claims_experiment_keys[] = {"name", "mode", "results", "runs",
                                                     "correction", "alpha", "chance",
                                                     "chance_margin", NULL};
/* in the order of cnb_correction */
static const char *const corrections[] = {"holm", "bh", "none", NULL};
static const char *const correction_names[] = {"Holm", "Benjamini-Hochberg", "none"};
/* What a claim measures: a column of the evidence's cells.csv; the epochs or training
 * seconds a run takes to reach a validation accuracy (target), from its metrics.csv; the
 * milliseconds of a training step, timed by the claim itself (step_ms); or (expect =
 * majority) the share of a model's parameters. */
static const char *const metrics[] = {"test_acc", "best_test_acc", "train_acc", "gap",
                                      "test_loss", "epoch_seconds", "epoch1_test_acc",
                                      "parameters", "epochs_to_target", "seconds_to_target",
                                      "step_ms", NULL};
enum { METRIC_PARAMETERS = 7, METRIC_EPOCHS_TO, METRIC_SECONDS_TO, METRIC_STEP_MS };
#define TO_TARGET(m) ((m) == METRIC_EPOCHS_TO || (m) == METRIC_SECONDS_TO)
static const char *const expects[] = {"higher", "lower", "similar", "majority", NULL};
enum { EXPECT_HIGHER, EXPECT_LOWER, EXPECT_SIMILAR, EXPECT_MAJORITY };
static const char *const pairings[] = {"auto", "yes", "no", NULL};
enum { PAIRED_AUTO, PAIRED_YES, PAIRED_NO };

/* One [claim.ID], read and checked before any evidence runs. */
typedef struct claim {
    const cnb_conf *conf;     /* the claims file, for messages                  */
    const cnb_section *s;
    const char *id, *text;
    int expect, metric;       /* EXPECT_*; index in metrics[]                  */
    const char *experiment, *variant, *baseline; /* a comparison               */
    int paired;               /* PAIRED_*                                       */
    double margin;            /* expect = similar: |difference| below this      */
    double chance;            /* the accuracy of a guess (0.1 for 10 classes)   */
    double chance_margin;     /* a run whose final train accuracy is below
                                 chance + chance_margin never left chance       */
    const char *model, *vars, *layers;           /* expect = majority; model:
                                                    step_ms too                  */
    double target;            /* *_to_target: the validation accuracy to reach   */
    const char *backend;      /* step_ms: where, with how many threads, at which */
    long threads, batch, rounds; /* batch, over how many rounds                  */
} claim;

/* A claims file: its claims and how their tests are judged together. */
typedef struct claims_file {
    claim cl[MAX_CLAIMS];
    int n;
    int correction; /* a cnb_correction, over every tested claim of the file */
    double alpha;   /* a claim's adjusted p must be below it                */
    double chance, chance_margin; /* for claims that do not set their own */
} claims_file;

/* The finished cells of the evidence on one side of a claim: each run's metric; its unit,
 * its seed and the terms of its variant the claim does not name (runs of the two sides with
 * the same unit started from the same seed under the same other settings, so they pair);
 * left out when it never left chance (its final train accuracy says it learnt nothing, so
 * its metric is no sample of what the variant does). */
typedef struct side {
    cnb_unit_value *r; /* each unit allocated */
    int n, cap;
} side;

/* One answered claim. */
typedef struct answer {
    const claim *cl;
    const char *metric, *variant, *baseline;
    int paired;            /* compared by the paired t-test (else Welch's)        */
    char source[PATH_MAX]; /* the evidence's folder, as linked from the page      */
    char effect[256];      /* "+0.0432 [+0.0358, +0.0507]", or a share of parameters */
    double diff, lo, hi;   /* the difference and its interval                        */
    double level;          /* the interval's: 1 - alpha, or for a claim of equivalence
                              1 - 2 alpha (the interval of its two one-sided tests)  */
    double p, p_adj;       /* the claim's test (NAN: none), and its p adjusted over
                              every tested claim of the file                        */
    int n_variant, n_baseline; /* runs compared (paired: pairs, on both)         */
    int chance_variant, chance_baseline; /* runs that never left chance, left out */
    int runs_variant, runs_baseline;     /* every finished run                    */
    double p_chance;       /* Fisher's exact test on the runs at chance (NAN: none) */
    char verdict[48];
    double sd;             /* the spread one more seed would meet (cnb_comparison.sd) */
    int seeds_needed;      /* inconclusive: seeds a side for PLANNED_POWER; -1 none
                              up to CNB_SEEDS_MAX; 0 not asked                       */
} answer;

static const char *value_of(const cnb_section *s, const char *key)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    return kv ? kv->value : NULL;
}

/* The rule for runs that never left chance, from [experiment] or a claim. */
static int read_chance(const cnb_conf *c, const cnb_section *s, double *chance,
                       double *chance_margin)
{
    return cnb_conf_double(c, s, "chance", 0.0, 1.0, chance) ||
                   cnb_conf_double(c, s, "chance_margin", 0.0, 1.0, chance_margin)
               ? CNB_EINVAL
               : 0;
}

static int claim_read(const cnb_conf *c, const cnb_section *s, const claims_file *f,
                      claim *cl)
{
    *cl = (claim){.conf = c, .s = s, .id = s->name + 6, .expect = -1, .metric = -1,
                  .paired = PAIRED_AUTO, .margin = 0.005, .chance = f->chance,
                  .chance_margin = f->chance_margin, .target = NAN, .backend = "onednn",
                  .threads = 1, .batch = 64, .rounds = 200};
    cl->text = value_of(s, "text") ? value_of(s, "text") : cl->id;
    if (cnb_section_check_keys(c, s, claim_keys) ||
        cnb_conf_choice(c, s, "expect", expects, &cl->expect) ||
        cnb_conf_choice(c, s, "metric", metrics, &cl->metric) ||
        cnb_conf_choice(c, s, "paired", pairings, &cl->paired) ||
        cnb_conf_double(c, s, "margin", 0.0, 1e9, &cl->margin) ||
        cnb_conf_double(c, s, "target", 0.0, 1.0, &cl->target) ||
        cnb_conf_int(c, s, "threads", 1, 1024, &cl->threads) ||
        cnb_conf_int(c, s, "batch", 1, 65536, &cl->batch) ||
        cnb_conf_int(c, s, "rounds", 10, 1000000, &cl->rounds) ||
        read_chance(c, s, &cl->chance, &cl->chance_margin))
        return CNB_EINVAL;
    if (value_of(s, "backend"))
        cl->backend = value_of(s, "backend");
    if (TO_TARGET(cl->metric) != !isnan(cl->target))
        return cnb_error("%s:%d: [%s] %s", c->path, s->line, s->name,
                         isnan(cl->target) ? "metric = epochs_to_target and seconds_to_target "
                                             "need target = a validation accuracy to reach"
                                           : "target goes with metric = epochs_to_target or "
                                             "seconds_to_target");
    if (cnb_section_get(s, "margin") && cl->expect != EXPECT_SIMILAR)
        return cnb_error("%s:%d: [%s] margin goes with expect = similar", c->path,
                         cnb_section_get(s, "margin")->line, s->name);
    if (cl->expect == EXPECT_MAJORITY) {
        cl->model = value_of(s, "model"), cl->vars = value_of(s, "vars");
        cl->layers = value_of(s, "layers");
        if (!cl->model || !cl->layers || cl->metric != METRIC_PARAMETERS)
            return cnb_error("%s:%d: [%s] expect = majority needs model, layers (a layer type) "
                             "and metric = parameters", c->path, s->line, s->name);
        return 0;
    }
    cl->experiment = value_of(s, "experiment");
    cl->variant = value_of(s, "variant"), cl->baseline = value_of(s, "baseline");
    if (cl->metric == METRIC_STEP_MS) {
        cl->model = value_of(s, "model");
        if (!cl->model || !cl->variant || !cl->baseline || cl->experiment)
            return cnb_error("%s:%d: [%s] metric = step_ms times two variants of a model: it "
                             "needs model, variant and baseline (model variables: dropout=0.5), "
                             "and takes backend, threads, batch and rounds, not an experiment",
                             c->path, s->line, s->name);
        return 0;
    }
    if (!cl->experiment || !cl->variant || !cl->baseline || cl->metric == METRIC_PARAMETERS)
        return cnb_error("%s:%d: [%s] expect = %s compares two variants: it needs experiment, "
                         "variant, baseline and a metric of the evidence's cells (not "
                         "parameters, which goes with expect = majority)", c->path, s->line,
                         s->name, expects[cl->expect]);
    return 0;
}

/* Every whitespace-separated term of `terms` is a term of `variant`. */
static int has_terms(const char *variant, const char *terms)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", terms);
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        size_t n = strlen(t);
        const char *p = variant;
        int found = 0;
        while (!found && (p = strstr(p, t)) != NULL) {
            found = (p == variant || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ');
            p += n;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* "seed=N" and the terms of `variant` that are not in `named`: what pairs a run. */
static void unit_of(char *out, size_t len, const char *seed, const char *variant,
                    const char *named)
{
    char copy[512];
    size_t used = (size_t)snprintf(out, len, "seed=%s", seed);
    snprintf(copy, sizeof copy, "%s", variant);
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t && used < len;
         t = strtok_r(NULL, " \t", &save))
        if (!has_terms(named, t))
            used += (size_t)snprintf(out + used, len - used, " %s", t);
}

static int side_add(side *s, double v, int at_chance, const char *seed, const char *variant,
                    const char *named)
{
    char unit[320];
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        cnb_unit_value *r = realloc(s->r, (size_t)cap * sizeof *r);
        if (!r)
            return cnb_error("out of memory reading the claims' evidence");
        s->r = r, s->cap = cap;
    }
    unit_of(unit, sizeof unit, seed, variant, named);
    s->r[s->n] = (cnb_unit_value){.v = v, .unit = strdup(unit), .left_out = at_chance};
    if (!s->r[s->n].unit)
        return cnb_error("out of memory reading the claims' evidence");
    s->n++;
    return 0;
}

static void side_free(side *s)
{
    for (int i = 0; i < s->n; i++)
        free((char *)s->r[i].unit);
    free(s->r);
}

/* The epochs, or the training seconds, run `cell` of `dir` took to reach validation
 * accuracy `target` (its metrics.csv): into *v, NAN when it never did. */
static int to_target(const char *dir, const char *cell, double target, int seconds, double *v)
{
    static const char *const want[] = {"epoch", "train_seconds", "val_acc", NULL};
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, cell);
    cnb_csv c;
    int col[3], more = 0, rc = cnb_csv_open(&c, path);
    if (rc || cnb_csv_columns(&c, want, col))
        rc = cnb_error("%s", c.err);
    double spent = 0.0;
    *v = NAN;
    while (rc == 0 && isnan(*v) && (more = cnb_csv_next(&c)) == 1) {
        const char *val = cnb_csv_get(&c, col[2]);
        spent += strtod(cnb_csv_get(&c, col[1]), NULL);
        if (!*val)
            rc = cnb_error("%s: no val_acc: a run reaches a target on its validation split; "
                           "set [data] validation in its experiment", path);
        else if (strtod(val, NULL) >= target)
            *v = seconds ? spent : strtod(cnb_csv_get(&c, col[0]), NULL);
    }
    if (rc == 0 && more < 0)
        rc = cnb_error("%s", c.err);
    cnb_csv_close(&c);
    return rc;
}

/* One run of cells.csv on its side of `cl`, if it is on one; left out when it never left
 * chance or (*_to_target) never reached the target. */
static int add_run(const char *dir, const cnb_csv *c, const int *col, const claim *cl,
                   side *a, side *b)
{
    enum { VARIANT, SEED, TRAIN_ACC, METRIC };
    const char *variant = cnb_csv_get(c, col[VARIANT]), *seed = cnb_csv_get(c, col[SEED]);
    if (!has_terms(variant, cl->variant) && !has_terms(variant, cl->baseline))
        return 0;
    double v = strtod(cnb_csv_get(c, col[METRIC]), NULL);
    if (TO_TARGET(cl->metric) && to_target(dir, cnb_csv_get(c, col[METRIC]), cl->target,
                                           cl->metric == METRIC_SECONDS_TO, &v))
        return CNB_EINVAL;
    int at_chance = strtod(cnb_csv_get(c, col[TRAIN_ACC]), NULL) < cl->chance + cl->chance_margin;
    at_chance |= isnan(v);
    if (has_terms(variant, cl->variant))
        return side_add(a, v, at_chance, seed, variant, cl->variant);
    if (has_terms(variant, cl->baseline))
        return side_add(b, v, at_chance, seed, variant, cl->baseline);
    return 0;
}

/* The runs of `dir`/cells.csv on each side of `cl`, its columns by name. */
static int read_sides(const char *dir, const claim *cl, side *a, side *b)
{
    const char *const want[] = {"variant", "seed", "train_acc",
                                TO_TARGET(cl->metric) ? "cell" : metrics[cl->metric], NULL};
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cells.csv", dir);
    cnb_csv c;
    int col[4], more = 0, rc = cnb_csv_open(&c, path);
    if (rc)
        rc = cnb_error("%s%s", c.err, rc == CNB_ENOTFOUND ? "; run its experiment first" : "");
    else if (cnb_csv_columns(&c, want, col))
        rc = cnb_error("%s; rerun `cnnbench report %s`", c.err, dir);
    while (rc == 0 && (more = cnb_csv_next(&c)) == 1)
        rc = add_run(dir, &c, col, cl, a, b);
    if (rc == 0 && more < 0)
        rc = cnb_error("%s", c.err);
    cnb_csv_close(&c);
    return rc;
}

static int count_at_chance(const side *s)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->r[i].left_out;
    return n;
}

/* Each side's runs, those that never left chance, and Fisher's test of the two counts. */
static void tally_chance(const side *va, const side *vb, answer *a)
{
    a->runs_variant = va->n, a->runs_baseline = vb->n;
    a->chance_variant = count_at_chance(va), a->chance_baseline = count_at_chance(vb);
    if (a->chance_variant + a->chance_baseline > 0)
        a->p_chance = cnb_fisher_exact((unsigned)a->chance_variant,
                                       (unsigned)(va->n - a->chance_variant),
                                       (unsigned)a->chance_baseline,
                                       (unsigned)(vb->n - a->chance_baseline));
}

/* A comparison's verdict, once its p is adjusted. higher and lower: a difference the test
 * finds (adjusted p below alpha) supports the claim when it goes the way the claim predicts
 * and refutes it when it goes the other; similar: the test that found something is the
 * equivalence test when the difference lies inside the margin, the test of a difference
 * beyond it otherwise. */
static void verdict_of(answer *a, double alpha)
{
    const claim *cl = a->cl;
    if (!(a->p_adj < alpha))
        snprintf(a->verdict, sizeof a->verdict, "inconclusive");
    else if (cl->expect == EXPECT_SIMILAR && fabs(a->diff) < cl->margin)
        snprintf(a->verdict, sizeof a->verdict, "equivalent within ±%g", cl->margin);
    else if (cl->expect == EXPECT_SIMILAR)
        snprintf(a->verdict, sizeof a->verdict, "not equivalent");
    else
        snprintf(a->verdict, sizeof a->verdict, "%s",
                 (a->diff > 0) == (cl->expect == EXPECT_HIGHER) ? "supported" : "not supported");
}

/* Seeds a side that would decide an inconclusive claim (see PLANNED_POWER): to find the
 * observed difference, or for a claim of equivalence to show it inside the margin or
 * beyond it, whichever side it lies on; at `alpha`, the level its p must meet. */
static void plan_seeds(answer *a, double alpha)
{
    if (isnan(a->sd)) /* fewer than 2 runs compared: no spread to plan with */
        return;
    a->seeds_needed = a->cl->expect == EXPECT_SIMILAR
                          ? cnb_seeds_to_decide_equivalence(a->diff, a->sd, a->cl->margin,
                                                            a->paired, alpha, PLANNED_POWER)
                          : cnb_seeds_to_detect(a->diff, a->sd, a->paired, alpha,
                                                PLANNED_POWER);
}

/* "(80% power: 12 seeds a side)" beside an inconclusive verdict (rounds, for step_ms),
 * else "". */
static const char *seeds_text(char *out, size_t len, const answer *a)
{
    const char *unit = a->cl->metric == METRIC_STEP_MS ? "rounds" : "seeds a side";
    if (a->seeds_needed > 0)
        snprintf(out, len, " (%g%% power: %d %s)", 100.0 * PLANNED_POWER, a->seeds_needed,
                 unit);
    else if (a->seeds_needed < 0)
        snprintf(out, len, " (%g%% power: not with %d %s)", 100.0 * PLANNED_POWER,
                 CNB_SEEDS_MAX, unit);
    else
        out[0] = '\0';
    return out;
}

/* `rel` as seen from the folder of `file` (as is when absolute). */
static void resolve_path(char *out, size_t len, const char *file, const char *rel)
{
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", file);
    if (rel[0] == '/')
        snprintf(out, len, "%s", rel);
    else
        snprintf(out, len, "%s/%s", dirname(base), rel);
}

/* The folder an experiment file writes to, and the experiment's name. */
static int experiment_dir(const char *claims_path, const char *rel, const char *profile,
                          char *dir, size_t len, cnb_experiment *e)
{
    char file[PATH_MAX];
    resolve_path(file, sizeof file, claims_path, rel);
    int rc = cnb_experiment_load(e, file, profile, NULL, 0);
    if (rc == 0)
        cnb_experiment_dir(e, dir, len);
    return rc;
}

/* The sides' runs compared, paired when the claim and the design allow. */
static int answer_sides(const claim *cl, const side *va, const side *vb, answer *a,
                        cnb_comparison *cmp)
{
    int *partner = malloc((size_t)(va->n + 1) * sizeof *partner);
    if (!partner)
        return cnb_error("out of memory comparing the claims' evidence");
    const char *lonely = cnb_pair_units(va->r, va->n, vb->r, vb->n, partner);
    int rc = 0;
    if (cl->paired == PAIRED_YES && lonely) {
        char where[1100];
        rc = cnb_error("%s: [%s] paired = yes, but the run %s has no single partner on the "
                       "other side (runs pair by seed and by the terms of their variants the "
                       "claim does not name); set paired = auto or no",
                       cnb_conf_key_where(cl->conf, cl->s, "paired", where, sizeof where),
                       cl->s->name, lonely);
    } else {
        a->paired = !lonely && cl->paired != PAIRED_NO;
        tally_chance(va, vb, a);
        if (cnb_compare_units(va->r, va->n, vb->r, vb->n, a->paired ? partner : NULL, cmp,
                              &a->n_variant, &a->n_baseline))
            rc = cnb_error("out of memory comparing the claims' evidence");
    }
    free(partner);
    return rc;
}

/* The difference, its interval and the claim's p: the comparison's own, or for a claim
 * of equivalence its two one-sided tests' (TOST). */
static void measure(const claim *cl, const cnb_comparison *cmp, double alpha, answer *a)
{
    a->diff = cmp->diff, a->p = cmp->p, a->sd = cmp->sd, a->level = 1.0 - alpha;
    cnb_interval(cmp, a->level, &a->lo, &a->hi);
    if (cl->expect == EXPECT_SIMILAR) {
        cnb_equivalence eq;
        cnb_tost(cmp, cl->margin, alpha, &eq);
        a->p = fmin(eq.p_inside, eq.p_beyond); /* the one below 0.5, if either */
        a->lo = eq.lo, a->hi = eq.hi, a->level = 1.0 - 2.0 * alpha;
    }
    snprintf(a->effect, sizeof a->effect, "%+.4f [%+.4f, %+.4f]", a->diff, a->lo, a->hi);
    if (cl->expect == EXPECT_SIMILAR)
        snprintf(a->effect + strlen(a->effect), sizeof a->effect - strlen(a->effect),
                 " (%g%%), margin ±%g", 100.0 * a->level, cl->margin);
}

static int answer_comparison(const char *path, const char *profile, const claim *cl,
                             double alpha, answer *a)
{
    a->metric = metrics[cl->metric];
    a->variant = cl->variant, a->baseline = cl->baseline;
    cnb_experiment e;
    int rc = experiment_dir(path, cl->experiment, profile, a->source, sizeof a->source, &e);
    cnb_experiment_free(&e);
    if (rc)
        return rc;
    side va = {0}, vb = {0};
    cnb_comparison cmp;
    if ((rc = read_sides(a->source, cl, &va, &vb)) == 0 && (va.n == 0 || vb.n == 0))
        rc = cnb_error("%s:%d: [%s]: no finished cell of %s matches the %s '%s'", path,
                       cl->s->line, cl->s->name, a->source, va.n ? "baseline" : "variant",
                       va.n ? a->baseline : a->variant);
    if (rc == 0)
        rc = answer_sides(cl, &va, &vb, a, &cmp);
    side_free(&va);
    side_free(&vb);
    if (rc == 0)
        measure(cl, &cmp, alpha, a);
    return rc;
}

/* Model file `file` built with the variables of cl's `key` ("dropout=0.5 lrn=none") over
 * its own. */
static int load_with(cnb_net *net, cnb_conf *m, cnb_registry *reg, const char *file,
                     const claim *cl, const char *key)
{
    cnb_vars vars = {0};
    char bad[512], at[1100];
    const char *terms = value_of(cl->s, key);
    int rc = cnb_vars_set_terms(&vars, terms ? terms : "", bad, sizeof bad);
    if (rc == CNB_EINVAL)
        rc = cnb_error("%s: [%s] %s: '%s' is not name=value",
                       cnb_conf_key_where(cl->conf, cl->s, key, at, sizeof at), cl->s->name,
                       key, bad);
    if (rc == 0)
        rc = cnb_net_load(net, m, reg, file, &vars);
    cnb_vars_free(&vars);
    return rc;
}

/* metric = step_ms: a network of each side, the same weights and synthetic batch (seed 1),
 * warmed up; then `rounds` rounds of one training step each, in a shuffled order, paired by
 * round. */
static int time_sides(const claim *cl, cnb_net *net, side *va, side *vb)
{
    struct cnb_rng rng;
    cnb_rng_seed(&rng, 1, CNB_BENCH_ORDER_STREAM);
    cnb_bench_synthetic_batch(&net[0], 1);
    cnb_bench_synthetic_batch(&net[1], 1);
    int rc = 0;
    for (long r = -10; r < cl->rounds && rc == 0; r++) { /* 10 rounds of warm-up */
        int first = (int)cnb_rng_below(&rng, 2);
        for (int k = 0; k < 2 && rc == 0; k++) {
            double t0 = cnb_now();
            rc = cnb_bench_step(&net[first ^ k]);
            char round[24];
            snprintf(round, sizeof round, "%ld", r);
            if (rc == 0 && r >= 0)
                rc = side_add((first ^ k) ? vb : va, (cnb_now() - t0) * 1e3, 0, round, "", "");
        }
    }
    return rc;
}

static double median_of(const side *s)
{
    double *x = malloc((size_t)s->n * sizeof *x);
    if (!x)
        return NAN;
    for (int i = 0; i < s->n; i++)
        x[i] = s->r[i].v;
    cnb_sample_stats st;
    cnb_sample_summarize(x, s->n, &st);
    free(x);
    return st.median;
}

static int answer_steps(const char *path, const claim *cl, cnb_registry *reg, double alpha,
                        answer *a)
{
    char file[PATH_MAX];
    resolve_path(file, sizeof file, path, cl->model);
    a->metric = metrics[cl->metric];
    a->variant = cl->variant, a->baseline = cl->baseline;
    snprintf(a->source, sizeof a->source, "%s", file);
    cnb_conf m[2] = {{0}};
    cnb_net net[2] = {0};
    side va = {0}, vb = {0};
    cnb_comparison cmp;
    int built = 0, rc = 0;
    for (; built < 2 && rc == 0; built++) {
        rc = load_with(&net[built], &m[built], reg, file, cl, built ? "baseline" : "variant");
        if (rc == 0 && (rc = cnb_net_init_params(&net[built], 1)) == 0)
            rc = cnb_net_bind(&net[built], cl->backend, (int)cl->threads, (int)cl->batch);
    }
    if (rc == 0 && (rc = time_sides(cl, net, &va, &vb)) == 0 &&
        (rc = answer_sides(cl, &va, &vb, a, &cmp)) == 0) {
        measure(cl, &cmp, alpha, a);
        size_t len = strlen(a->effect);
        snprintf(a->effect + len, sizeof a->effect - len, " ms (medians %.3f / %.3f ms)",
                 median_of(&va), median_of(&vb));
    }
    for (int k = 0; k < built; k++) {
        cnb_net_free(&net[k]);
        cnb_conf_free(&m[k]);
    }
    side_free(&va);
    side_free(&vb);
    return rc;
}

static int answer_params(const char *path, const claim *cl, cnb_registry *reg, answer *a)
{
    char file[PATH_MAX];
    resolve_path(file, sizeof file, path, cl->model);
    cnb_conf m;
    cnb_net net;
    int rc = load_with(&net, &m, reg, file, cl, "vars");
    if (rc)
        return rc;
    size_t total = cnb_net_param_count(&net), part = 0;
    for (int i = 0; i < net.n; i++)
        if (strcmp(net.layers[i].desc->hdr.name, cl->layers) == 0)
            for (int p = 0; p < net.layers[i].layer->n_params; p++)
                part += net.layers[i].layer->params[p].count;
    cnb_net_free(&net);
    cnb_conf_free(&m);
    double share = total ? (double)part / (double)total : 0.0;
    a->metric = metrics[METRIC_PARAMETERS];
    a->variant = cl->layers;
    a->baseline = "all layers";
    a->diff = a->lo = a->hi = share;
    snprintf(a->source, sizeof a->source, "%s", file);
    snprintf(a->effect, sizeof a->effect, "%s layers: %zu of %zu parameters (%.1f%%)",
             cl->layers, part, total, 100.0 * share);
    snprintf(a->verdict, sizeof a->verdict, "%s", share > 0.5 ? "supported" : "not supported");
    return 0;
}

/* Folder `target` as linked from a page in folder `from`: relative when they share a
 * parent. */
static void link_to(char *out, size_t len, const char *from, const char *target)
{
    char a[PATH_MAX + 300], b[PATH_MAX], name[PATH_MAX], ra[PATH_MAX], rb[PATH_MAX];
    snprintf(a, sizeof a, "%s", from);
    snprintf(b, sizeof b, "%s", target);
    snprintf(name, sizeof name, "%s", target);
    if (realpath(dirname(a), ra) && realpath(dirname(b), rb) && strcmp(ra, rb) == 0)
        snprintf(out, len, "../%s", basename(name));
    else
        snprintf(out, len, "%s", target);
}

/* Text for a Markdown table cell: '|' escaped. */
static void md_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputs(*s == '|' ? "\\|" : (char[2]){*s, 0}, f);
}

/* The test behind a comparison, or "-" (a claim about parameters). */
static const char *test_name(const answer *a)
{
    return a->cl->expect == EXPECT_MAJORITY ? "-" : a->paired ? "paired t" : "Welch t";
}

/* p for a table: "0.012", "< 0.001", or "-" (no test). */
static const char *p_text(char *buf, size_t len, double p)
{
    if (isnan(p))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, p < 0.001 ? "< 0.001" : "%.3f", p);
    return buf;
}

static int write_csv(const char *dir, const claims_file *f, const answer *ans)
{
    char path[PATH_MAX + 300];
    cnb_atomic a;
    snprintf(path, sizeof path, "%s/claims.csv", dir);
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "claim,text,metric,variant,baseline,test,runs_variant,runs_baseline,"
                 "chance_variant,chance_baseline,chance_below,p_chance,n_variant,n_baseline,"
                 "diff,ci_level,ci_lo,ci_hi,p,correction,p_adjusted,verdict,seeds_needed,"
                 "source,target\n");
    for (const answer *r = ans; r < ans + f->n; r++)
        fprintf(a.f, "%s,\"%s\",%s,\"%s\",\"%s\",%s,%d,%d,%d,%d,%g,%.6g,%d,%d,%.6f,%g,%.6f,%.6f,"
                     "%.6g,%s,%.6g,%s,%d,\"%s\",%g\n",
                r->cl->id, r->cl->text, r->metric, r->variant, r->baseline, test_name(r),
                r->runs_variant, r->runs_baseline, r->chance_variant, r->chance_baseline,
                r->cl->chance + r->cl->chance_margin, r->p_chance, r->n_variant, r->n_baseline,
                r->diff, r->level, r->lo, r->hi, r->p, corrections[f->correction], r->p_adj,
                r->verdict, r->seeds_needed, r->source, r->cl->target);
    return cnb_atomic_commit(&a);
}

/* What the page's columns mean and how a verdict is reached. */
static void page_intro(FILE *o, const char *name, const claims_file *f)
{
    fprintf(o, "# %s: the seed notes' claims, answered\n\n"
               "Each claim is a comparison between variants of a committed experiment, over "
               "its seeds: the difference of means (variant − baseline), its %g%% interval "
               "and p. The test is a paired t-test on the differences between runs of the "
               "same seed and the same other settings when every run of one side has exactly "
               "one such partner on the other (same seed: same initial weights and data "
               "order), Welch's t-test otherwise; the test column says which.\n\n",
            name, 100.0 * (1.0 - f->alpha));
    fprintf(o, "A run whose final train accuracy is below %g (chance, %g, plus %g) never left "
               "chance: it learnt nothing, so its numbers say nothing about the variant's "
               "effect and would split the runs into two heaps. Such runs are counted apart "
               "(runs at chance: variant / baseline) and left out of the comparison, with "
               "their partners when paired; Fisher's exact test says whether the variant "
               "changes how often it happens (its p is neither adjusted nor part of the "
               "verdict). A claim that sets its own rule shows it beside its counts.\n\n",
            f->chance + f->chance_margin, f->chance, f->chance_margin);
    fprintf(o, "epochs_to_target and seconds_to_target are the epochs, and the seconds of "
               "training (evaluation left out), a run takes to reach the claim's validation "
               "accuracy, from its metrics.csv. A run that never reaches it is left out with "
               "the runs at chance and counted with them (the column says so), its partner "
               "too: a claim that one side is faster is then read beside how often each side "
               "got there at all. step_ms is a training step's milliseconds (forward, "
               "backward, SGD update), timed by the claims run: both variants of the model "
               "built with the same weights and a synthetic batch, warmed up, then one step "
               "of each per round, in a freshly shuffled order each round, the rounds pairing "
               "them (so drift and neighbours' noise fall on both alike).\n\n");
    if (f->correction == CNB_CORRECT_NONE)
        fprintf(o, "The p values are not corrected for testing several claims at once "
                   "(correction = none): the more claims, the more false findings.");
    else
        fprintf(o, "The p values are adjusted for testing several claims at once "
                   "(%s's method over the claims that have a test: %s), and a verdict uses "
                   "the adjusted p.", correction_names[f->correction],
                f->correction == CNB_CORRECT_HOLM
                    ? "the chance of any false finding among them is at most alpha"
                    : "false findings are at most a share alpha of the findings, on average");
    fprintf(o, " A claim that the variant is higher (lower) is *supported* when its adjusted p "
               "is below alpha = %g and the difference goes the predicted way, *not "
               "supported* when it goes the other way, and *inconclusive* otherwise.\n\n"
               "A claim that it adds little (expect = similar) is tested for equivalence "
               "within its margin ±m by two one-sided tests (TOST) at alpha: the difference "
               "is *equivalent within ±m* when both H0: difference ≤ −m and H0: difference ≥ "
               "m are rejected (its %g%% interval, shown, lies inside ±m); *not equivalent* "
               "when the difference is shown to lie beyond a margin (the interval lies wholly "
               "outside); *inconclusive* otherwise. Its p is that of the test that decides "
               "(the larger of the two one-sided p, or the p beyond the margin), adjusted "
               "with the others.\n\n"
               "Beside an inconclusive verdict: how many seeds a side (pairs, when paired) "
               "would give %g%% power to decide it, were the observed difference and the "
               "measured spread the true ones: to find that difference, or for a claim of "
               "equivalence to show it inside the margin or beyond it, whichever side it lies "
               "on. A normal approximation with the t critical value, at %s.\n\n",
            f->alpha, 100.0 * (1.0 - 2.0 * f->alpha), 100.0 * PLANNED_POWER,
            f->correction == CNB_CORRECT_NONE
                ? "alpha"
                : "alpha / m for the m tested claims (the level the correction asks of the "
                  "smallest p: enough whatever the other claims show)");
}

/* A comparison's runs at chance: "0 / 4, p = 0.104", its own rule shown when it has one. */
static void chance_text(char *out, size_t len, const claims_file *f, const answer *a)
{
    char p[16];
    double below = a->cl->chance + a->cl->chance_margin;
    int n = snprintf(out, len, "%d / %d", a->chance_variant, a->chance_baseline);
    if (!isnan(a->p_chance))
        n += snprintf(out + n, len - (size_t)n, ", p = %s", p_text(p, sizeof p, a->p_chance));
    if (below != f->chance + f->chance_margin)
        n += snprintf(out + n, len - (size_t)n, " (train acc < %g)", below);
    if (TO_TARGET(a->cl->metric))
        snprintf(out + n, len - (size_t)n, " (or never reached val acc %g)", a->cl->target);
}

static void page_row(FILE *o, const char *dir, const claims_file *f, const answer *a)
{
    char link[3 * PATH_MAX + 64], seeds[32] = "-", chance[64] = "-", p[16], p_adj[16];
    char plan[64];
    if (a->cl->expect == EXPECT_MAJORITY)
        snprintf(link, sizeof link, "`cnnbench summary %s`", a->source);
    else if (a->cl->metric == METRIC_STEP_MS)
        snprintf(link, sizeof link, "timed by this run: %s on %s, %ld thread%s, batch %ld, "
                 "%ld rounds", a->source, a->cl->backend, a->cl->threads,
                 a->cl->threads == 1 ? "" : "s", a->cl->batch, a->cl->rounds);
    if (a->cl->expect != EXPECT_MAJORITY) {
        char rel[PATH_MAX];
        link_to(rel, sizeof rel, dir, a->source);
        if (a->cl->metric != METRIC_STEP_MS)
            snprintf(link, sizeof link, "[report](%s/report.md), [accuracy](%s/accuracy.png), "
                     "[gap](%s/gap.png)", rel, rel, rel);
        if (a->paired)
            snprintf(seeds, sizeof seeds, "%d %s", a->n_variant,
                     a->cl->metric == METRIC_STEP_MS ? "rounds" : "pairs");
        else
            snprintf(seeds, sizeof seeds, "%d / %d", a->n_variant, a->n_baseline);
        chance_text(chance, sizeof chance, f, a);
    }
    fputs("| ", o);
    md_text(o, a->cl->text);
    fprintf(o, " | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s**%s |\n", link,
            a->variant, a->baseline, a->metric, chance, test_name(a), seeds, a->effect,
            p_text(p, sizeof p, a->p), p_text(p_adj, sizeof p_adj, a->p_adj), a->verdict,
            seeds_text(plan, sizeof plan, a));
}

static int write_page(const char *dir, const char *name, const claims_file *f,
                      const answer *ans)
{
    char path[PATH_MAX + 300];
    cnb_atomic a;
    if (write_csv(dir, f, ans))
        return CNB_EIO;
    snprintf(path, sizeof path, "%s/claims.md", dir);
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    page_intro(a.f, name, f);
    fprintf(a.f, "| claim | evidence | variant | baseline | metric | runs at chance | test | "
                 "seeds | difference [%g%% interval] | p | p (%s) | verdict |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            100.0 * (1.0 - f->alpha), corrections[f->correction]);
    for (int i = 0; i < f->n; i++)
        page_row(a.f, dir, f, &ans[i]);
    fprintf(a.f, "\nFiles: claims.csv (the same rows, machine-readable). Each evidence folder "
                 "holds its experiment's full report (every variant, learning curves, the "
                 "train/test gap) and the cells it came from.\n");
    return cnb_atomic_commit(&a);
}

/* Every section checked and every claim read, before anything runs. */
static int claims_read(const cnb_conf *c, claims_file *f)
{
    const cnb_section *ex = cnb_conf_section(c, "experiment");
    f->n = 0, f->correction = CNB_CORRECT_HOLM, f->alpha = 0.05;
    f->chance = CHANCE, f->chance_margin = CHANCE_MARGIN;
    if (cnb_section_check_keys(c, ex, claims_experiment_keys) ||
        cnb_conf_choice(c, ex, "correction", corrections, &f->correction) ||
        cnb_conf_double(c, ex, "alpha", 1e-6, 0.5, &f->alpha) ||
        read_chance(c, ex, &f->chance, &f->chance_margin))
        return CNB_EINVAL;
    for (int i = 0; i < c->n; i++) {
        const cnb_section *s = &c->sec[i];
        if (strncmp(s->name, "claim.", 6) == 0) {
            if (f->n == MAX_CLAIMS)
                return cnb_error("%s:%d: [%s]: more than %d claims in one file", c->path,
                                 s->line, s->name, MAX_CLAIMS);
            if (claim_read(c, s, f, &f->cl[f->n++]))
                return CNB_EINVAL;
        } else if (strcmp(s->name, "experiment") != 0) {
            return cnb_error("%s:%d: unknown section [%s]; a claims file has [experiment] and "
                             "[claim.ID] sections", c->path, s->line, s->name);
        }
    }
    return 0;
}

/* Each comparison's p adjusted over the file's tested claims, then its verdict. Seeds are
 * planned at alpha / m for m tested claims when corrected: the level Holm's method asks of
 * the smallest p, and Benjamini-Hochberg's of a lone finding, so the number holds whatever
 * the other claims turn out to be. */
static int judge(const claims_file *f, answer *ans)
{
    double p[MAX_CLAIMS], adj[MAX_CLAIMS];
    int tested = 0;
    for (int i = 0; i < f->n; i++)
        p[i] = ans[i].p, tested += !isnan(p[i]);
    if (cnb_adjust_p(p, f->n, (cnb_correction)f->correction, adj))
        return cnb_error("out of memory adjusting the claims' p values");
    double plan_alpha = f->correction == CNB_CORRECT_NONE ? f->alpha : f->alpha / tested;
    for (int i = 0; i < f->n; i++)
        if (f->cl[i].expect != EXPECT_MAJORITY) {
            ans[i].p_adj = adj[i];
            verdict_of(&ans[i], f->alpha);
            if (strcmp(ans[i].verdict, "inconclusive") == 0)
                plan_seeds(&ans[i], plan_alpha);
        }
    return 0;
}

int cnb_claims_run(cnb_conf *c, const char *path, const char *profile, cnb_registry *reg,
                   const cnb_sweep_opts *so)
{
    claims_file f;
    int rc = claims_read(c, &f);
    if (rc)
        return rc;

    /* the experiments holding the evidence, each resumed */
    const cnb_section *ex = cnb_conf_section(c, "experiment");
    char runs[2048];
    snprintf(runs, sizeof runs, "%s", value_of(ex, "runs") ? value_of(ex, "runs") : "");
    for (char *save = NULL, *r = strtok_r(runs, ", \t", &save); r && rc == 0;
         r = strtok_r(NULL, ", \t", &save)) {
        cnb_experiment e;
        char dir[PATH_MAX];
        if ((rc = experiment_dir(path, r, profile, dir, sizeof dir, &e)) == 0) {
            printf("claims: evidence from %s -> %s\n", r, dir);
            fflush(stdout);
            rc = cnb_sweep_run(&e, reg, so);
        }
        cnb_experiment_free(&e);
    }
    if (rc || so->dry_run)
        return rc;

    answer ans[MAX_CLAIMS];
    for (int i = 0; i < f.n && rc == 0; i++) {
        const claim *cl = &f.cl[i];
        ans[i] = (answer){.cl = cl, .p = NAN, .p_adj = NAN, .p_chance = NAN};
        rc = cl->expect == EXPECT_MAJORITY    ? answer_params(path, cl, reg, &ans[i])
             : cl->metric == METRIC_STEP_MS ? answer_steps(path, cl, reg, f.alpha, &ans[i])
                                            : answer_comparison(path, profile, cl, f.alpha,
                                                                &ans[i]);
    }
    if (rc || (rc = judge(&f, ans)))
        return rc;

    char name[128] = "claims", dir[PATH_MAX + 200], results[PATH_MAX] = "results";
    if (value_of(ex, "name"))
        snprintf(name, sizeof name, "%s", value_of(ex, "name"));
    if (value_of(ex, "results"))
        snprintf(results, sizeof results, "%s", value_of(ex, "results"));
    snprintf(dir, sizeof dir, "%s/%s%s%s", results, name, profile && *profile ? "-" : "",
             profile && *profile ? profile : "");
    if ((rc = cnb_mkdirs(dir)) || (rc = write_page(dir, name, &f, ans)))
        return rc;
    for (int i = 0; i < f.n; i++) {
        char p[16], plan[64];
        printf("claim %-14s %s%s: %s", ans[i].cl->id, ans[i].verdict,
               seeds_text(plan, sizeof plan, &ans[i]), ans[i].effect);
        if (!isnan(ans[i].p_adj))
            printf(", p (%s) %s", corrections[f.correction], p_text(p, sizeof p, ans[i].p_adj));
        putchar('\n');
    }
    printf("claims: %s/claims.md (and claims.csv)\n", dir);
    return 0;
}
