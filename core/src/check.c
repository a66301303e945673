/* check.c - `cnnbench check`; see check.h. */
#include "check.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "checkdata.h"
#include "child.h"
#include "clock.h"
#include "cnnbench/op_check.h"
#include "conformance.h"
#include "errors.h"
#include "gradcheck.h"
#include "heapcount.h"
#include "net.h"
#include "stats.h"

#define MAX_TARGETS 32      /* plugins one file may export                          */
#define MAX_BACKENDS 16     /* compared in the speed table                          */
#define SPEED_MIN_REPS 5
#define SPEED_MAX_REPS 51
#define SPEED_BUDGET 1.0    /* seconds of timed calls per case and backend, about   */
#define LENET_SPEED_BATCH 64 /* the LeNet-5 cases are timed at this batch           */
#define LAYER_SPEED_BATCH 64
#define GRAD_BATCH 2
#define GRAD_EPS 1e-2f

/* What a child leaves for the parent: the probe's findings and where it is now. */
typedef struct shared {
    volatile unsigned long beat; /* bumped at every step: a hang shows as no change */
    int n_targets;
    struct {
        uint32_t kind, ops, max_threads;
        int fuse;                /* a backend with fuse_create                         */
        char name[64];
    } targets[MAX_TARGETS];
    char where[512];             /* "conv, case lenet.conv2 (6x14x14 -> ...), batch 3" */
    char phase[64];              /* "forward"                                         */
} shared;

static void step(shared *sh, const char *phase)
{
    snprintf(sh->phase, sizeof sh->phase, "%s", phase);
    sh->beat++;
}

static void conform_phase(void *user, const char *what) { step(user, what); }

static int is_file(const char *spec)
{
    size_t n = strlen(spec);
    return strchr(spec, '/') || (n > 3 && strcmp(spec + n - 3, ".so") == 0);
}

/* A registry with --plugin files, the checked file (first, so that it wins over an
 * installed plugin of the same name) and the default scan. Children only. */
static int open_registry(const cnb_check_opts *o, cnb_registry *reg)
{
    char err[1024];
    cnb_registry_init(reg);
    int rc = is_file(o->plugin) ? cnb_registry_load_file(reg, o->plugin, err, sizeof err) : 0;
    if (rc == CNB_EINVAL) { /* the plugin is there and incomplete: a defect, not bad input */
        printf("  %-14s FAIL   %s\n", "load", err);
        return CNB_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "cnnbench: error: %s\n", err);
        return CNB_EABI;
    }
    for (int i = 0; i < o->n_extra; i++)
        if (cnb_registry_load_file(reg, o->extra[i], err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench: error: --plugin: %s\n", err);
            return CNB_EABI;
        }
    cnb_registry_scan_default(reg);
    if (!cnb_registry_backend(reg, CNB_REFERENCE_BACKEND)) {
        fprintf(stderr, "cnnbench: error: the naive backend (the reference) was not found "
                "(searched %s)\n", reg->searched ? reg->searched : "nothing");
        return CNB_ENOTFOUND;
    }
    return 0;
}

static int init_backend(const cnb_backend_desc *b, int threads, void **state)
{
    cnb_backend_config cfg = {.threads = threads};
    *state = NULL;
    int rc = b->init ? b->init(cnb_host_services(), &cfg, state) : CNB_OK;
    if (rc != CNB_OK)
        fprintf(stderr, "cnnbench: error: backend %s: init returned %d\n", b->hdr.name, rc);
    return rc;
}

static void fini_backend(const cnb_backend_desc *b, void *state)
{
    if (b->fini)
        b->fini(state);
}

/* ------------------------------------------------------------------------------------ */
/* Children. Each returns its exit status: 0 pass, 1 fail, 2 could not run. */

typedef int (*child_fn)(const cnb_check_opts *o, shared *sh, int target, int op);

/* Which plugins the spec names: a file's every entry, or every plugin of that name. */
static int child_probe(const cnb_check_opts *o, shared *sh, int target, int op)
{
    (void)target, (void)op;
    cnb_registry reg;
    int rc = open_registry(o, &reg);
    if (rc != 0)
        return rc == CNB_EINVAL ? 1 : 2;
    char real[PATH_MAX] = "";
    if (is_file(o->plugin) && !realpath(o->plugin, real))
        return 2;
    for (int i = 0; i < reg.n && sh->n_targets < MAX_TARGETS; i++) {
        const cnb_plugin_header *h = reg.items[i].hdr;
        if (real[0] ? strcmp(reg.items[i].path, real) != 0 : strcmp(h->name, o->plugin) != 0)
            continue;
        sh->targets[sh->n_targets].kind = h->kind;
        sh->targets[sh->n_targets].ops =
            h->kind == CNB_PLUGIN_BACKEND ? ((const cnb_backend_desc *)h)->ops : 0;
        sh->targets[sh->n_targets].max_threads =
            h->kind == CNB_PLUGIN_BACKEND
                ? CNB_BACKEND_FIELD_OR((const cnb_backend_desc *)h, max_threads, 0u) : 0;
        sh->targets[sh->n_targets].fuse =
            h->kind == CNB_PLUGIN_BACKEND &&
            CNB_BACKEND_FIELD((const cnb_backend_desc *)h, fuse_create) != NULL;
        snprintf(sh->targets[sh->n_targets].name, sizeof sh->targets[0].name, "%s", h->name);
        sh->n_targets++;
        printf("%s plugin %s %s (ABI %u.%u) from %s\n", cnb_plugin_kind_name(h->kind),
               h->name, h->version, h->abi_major, h->abi_minor, reg.items[i].path);
    }
    if (sh->n_targets == 0) {
        char names[1024];
        cnb_registry_names(&reg, CNB_PLUGIN_BACKEND, names, sizeof names);
        fprintf(stderr, "cnnbench: error: no plugin named '%s' (backends: %s; searched %s); "
                "give a name from `cnnbench plugins` or the path of a .so file\n", o->plugin,
                names, reg.searched ? reg.searched : "nothing");
    }
    cnb_registry_free(&reg);
    return sh->n_targets ? 0 : 2;
}

static const cnb_backend_desc *target_backend(const cnb_registry *reg, const shared *sh, int t)
{
    return cnb_registry_backend(reg, sh->targets[t].name);
}

/* Where a child is: "conv, case lenet.conv2 (6x14x14 -> ...), batch 3"; for a fused run
 * "fused conv+relu+pool_max, case run.lenet... (1x28x28 -> ..., relu, ...), batch 3". */
static void set_where(shared *sh, const cnb_fuse_desc *f, const char *case_name)
{
    char shape[256], name[64];
    cnb_conform_run_str(shape, sizeof shape, f);
    cnb_conform_run_name(name, sizeof name, f);
    snprintf(sh->where, sizeof sh->where, "%s, case %s (%s), batch %d", name, case_name,
             shape, f->op[0].batch);
    sh->beat++;
}

/* The fused runs' part of a backend's conformance, after one per op. */
#define PART_FUSED CNB_OP_COUNT

static const char *part_name(int op) { return op == PART_FUSED ? "fused" : cnb_op_name(op); }

/* Row `row` is one of the cases of part `op` (an op, or PART_FUSED) that --cases
 * selects. */
static int selected(const cnb_check_opts *o, int row, int op)
{
    const cnb_conform_case *cs = &cnb_conform_cases[row];
    const int fused = (cs->flags & CNB_CASE_FUSED) != 0;
    return (op == PART_FUSED ? fused : !fused && (int)cs->op == op) &&
           (!o->cases || fnmatch(o->cases, cs->name, 0) == 0);
}

/* Under a part's verdict: its kernels' forward and backward allocated on the heap in
 * `allocating` of its cases (conformance.h: a second call of each), the most in case
 * most_at. Not a failure of the numbers, but what the ABI rules out, said. */
static void heap_note(int allocating, int cases, cnb_heap_tally most, const char *most_at)
{
    if (allocating)
        printf("  %-14s        heap: forward and backward allocate in %d of %d cases (the "
               "most: %llu bytes in %llu call%s, %s); the ABI says they allocate nothing\n",
               "", allocating, cases, (unsigned long long)most.bytes,
               (unsigned long long)most.calls, most.calls == 1 ? "" : "s", most_at);
}

/* One part of a backend (an op, or its fused runs) over every case of the table. */
static int child_conform(const cnb_check_opts *o, shared *sh, int target, int op)
{
    cnb_registry reg;
    void *ns = NULL, *ts = NULL;
    if (open_registry(o, &reg) != 0)
        return 2;
    const cnb_backend_desc *naive = cnb_registry_backend(&reg, CNB_REFERENCE_BACKEND);
    const cnb_backend_desc *be = target_backend(&reg, sh, target);
    step(sh, "init");
    if (!be || init_backend(naive, o->threads, &ns) != 0 || init_backend(be, o->threads, &ts))
        return 2;
    const cnb_conform_opts copts = {.phase = conform_phase, .user = sh};
    const double t0 = cnb_now();
    int cases = 0, failed = 0, fallbacks = 0, allocating = 0;
    double worst = 0.0, seconds = 0.0;
    char worst_at[160] = "-", refused[160] = "", most_at[64] = "";
    cnb_heap_tally most = {0, 0};
    for (int row = 0; row < cnb_conform_n_cases; row++) {
        const cnb_conform_case *cs = &cnb_conform_cases[row];
        if (!selected(o, row, op))
            continue;
        cnb_conform_ref ref;
        step(sh, "naive reference");
        if (cnb_conform_ref_init(&ref, row, naive, ns) != 0) {
            cnb_conform_ref_free(&ref);
            return 2;
        }
        set_where(sh, &ref.run, cs->name);
        cnb_conform_result res;
        failed += cnb_conform_check(be, ts, &ref, &copts, &res) != 0;
        cases++;
        if (res.fallback && fallbacks++ < 3)
            snprintf(refused + strlen(refused), sizeof refused - strlen(refused), "%s%s",
                     fallbacks > 1 ? ", " : "", cs->name);
        seconds += res.seconds;
        const cnb_heap_tally heap = {res.heap_fwd.bytes + res.heap_bwd.bytes,
                                     res.heap_fwd.calls + res.heap_bwd.calls};
        allocating += heap.calls > 0;
        if (heap.bytes > most.bytes || (heap.calls && !most.calls))
            most = heap, snprintf(most_at, sizeof most_at, "%s", cs->name);
        for (int out = 0; out < CNB_OUT_COUNT; out++)
            if (!res.bad[out] && res.worst[out] > worst) {
                worst = res.worst[out];
                snprintf(worst_at, sizeof worst_at, "%s, %s", cs->name,
                         cnb_conform_out_name[out]);
            }
        cnb_conform_ref_free(&ref);
    }
    step(sh, "fini");
    fini_backend(be, ts);
    fini_backend(naive, ns);
    cnb_registry_free(&reg);
    fflush(stderr);
    const char *name = part_name(op);
    if (cases == 0) {
        printf("  %-14s -      no case matches --cases '%s'\n", name, o->cases);
        return 0;
    }
    if (failed) {
        printf("  %-14s FAIL   %d of %d cases (details above; rerun one with CNB_TEST_SEED)\n",
               name, failed, cases);
        heap_note(allocating, cases, most, most_at);
        return 1;
    }
    if (fallbacks == cases && op == PART_FUSED) { /* fusing is an offer it may decline */
        printf("  %-14s -      fuse_create declines every run of the table (conv -> relu, "
               "and -> pool_max): none checked\n", name);
        return 0;
    }
    if (fallbacks == cases) {
        printf("  %-14s FAIL   kernel_create refuses every case (CNB_ENOTSUP) of an op the "
               "backend sets in ops; clear its bit, or make the kernel\n", name);
        return 1;
    }
    const double wall = cnb_now() - t0;
    if (worst > 0.0)
        printf("  %-14s PASS   %d cases; closest to the tolerance: %.3g x (%s); %.2f s in "
               "its kernels, %.1f s in all\n", name, cases - fallbacks, worst, worst_at,
               seconds, wall);
    else
        printf("  %-14s PASS   %d cases; every value exact; %.2f s in its kernels, %.1f s in "
               "all\n", name, cases - fallbacks, seconds, wall);
    if (fallbacks)
        printf("  %-14s        %d case%s left to the next backend (CNB_ENOTSUP): %s%s\n", "",
               fallbacks, fallbacks == 1 ? "" : "s", refused, fallbacks > 3 ? ", ..." : "");
    heap_note(allocating, cases, most, most_at);
    return 0;
}

/* The case's descriptor at the batch it is timed at. */
static cnb_op_desc speed_desc(const cnb_conform_case *cs)
{
    cnb_conform_case c = *cs;
    if (strncmp(cs->name, "lenet.", 6) == 0)
        c.n = LENET_SPEED_BATCH;
    return cnb_conform_case_desc(&c);
}

/* Forward FLOPs of one call (FMA = 2; a convolution's taps inside its input, as the
 * bench counts them); 0 where counting them means little. */
static double op_flops(const cnb_op_desc *d)
{
    if (d->op == CNB_OP_CONV)
        return d->batch * cnb_conv_flops(d);
    if (d->op == CNB_OP_INNER_PRODUCT)
        return 2.0 * d->batch * cnb_shape_size(d->dst) * cnb_shape_size(d->src);
    return 0.0;
}

/* Forward (backward = 0) or backward of whatever is being timed; its status. */
typedef int (*pass_fn)(void *what, int backward);

/* Medians of forward and backward: one untimed pair of passes, whose time sets the
 * repetitions (SPEED_MIN_REPS to SPEED_MAX_REPS, about SPEED_BUDGET seconds), then each
 * pass timed on its own. */
typedef struct pass_times {
    cnb_sample_stats fwd, bwd;
} pass_times;

/* Every call's status is checked: a pass that fails is no time at all. 0, or the first
 * failing call's status with *failed naming it ("forward, repetition 3"). */
static int time_passes(shared *sh, pass_fn pass, void *what, pass_times *out, char *failed,
                       size_t len)
{
    double f[SPEED_MAX_REPS], b[SPEED_MAX_REPS], once = 0.0;
    int reps = 1;
    for (int r = -1; r < reps; r++) { /* r = -1: untimed, sets reps */
        for (int dir = 0; dir < 2; dir++) {
            step(sh, dir ? "backward" : "forward");
            double t0 = cnb_now();
            int rc = pass(what, dir);
            double dt = cnb_now() - t0;
            if (rc != CNB_OK) {
                if (r < 0)
                    snprintf(failed, len, "%s, first call", dir ? "backward" : "forward");
                else
                    snprintf(failed, len, "%s, repetition %d of %d", dir ? "backward" : "forward",
                             r + 1, reps);
                return rc;
            }
            if (r < 0)
                once += dt;
            else
                (dir ? b : f)[r] = dt;
        }
        if (r < 0)
            reps = (int)fmin(SPEED_MAX_REPS, fmax(SPEED_MIN_REPS, SPEED_BUDGET / fmax(once, 1e-6)));
    }
    cnb_sample_summarize(f, reps, &out->fwd);
    cnb_sample_summarize(b, reps, &out->bwd);
    return CNB_OK;
}

/* "    onednn       fwd     0.338 ms  bwd     2.940 ms  (CV 13.3% /  9.5%, unstable)" */
static void print_times(const char *who, const pass_times *t)
{
    int unstable = t->fwd.cv >= CNB_UNSTABLE_CV || t->bwd.cv >= CNB_UNSTABLE_CV;
    printf("    %-12s fwd %9.3f ms  bwd %9.3f ms  (CV %4.1f%% / %4.1f%%%s)", who,
           t->fwd.median * 1e3, t->bwd.median * 1e3, 100 * t->fwd.cv, 100 * t->bwd.cv,
           unstable ? ", unstable" : "");
}

typedef struct timed {
    const cnb_backend_desc *desc;
    void *state;
    cnb_kernel *k;
    const cnb_args *a;
    double create;
    pass_times t;
    int fallback;        /* kernel_create said CNB_ENOTSUP: not this backend's case  */
    int rc;              /* 0, or the status of the call that failed (then k is NULL) */
    char failed[96];     /* "kernel_create", "forward, repetition 3 of 51"            */
} timed;

static int kernel_pass(void *what, int backward)
{
    timed *x = what;
    return (backward ? x->k->backward : x->k->forward)(x->k, x->a);
}

/* Creates backend x's kernel for d and times its passes on a's buffers; x->rc says how it
 * ended, x->k is left NULL unless it ran clean. */
static void time_backend(shared *sh, timed *x, const cnb_op_desc *d, cnb_args *a)
{
    x->k = NULL;
    x->a = a;
    step(sh, "kernel_create");
    double t = cnb_now();
    x->rc = x->desc->kernel_create(x->state, d, &x->k);
    x->create = cnb_now() - t;
    snprintf(x->failed, sizeof x->failed, "kernel_create");
    x->fallback = x->rc == CNB_ENOTSUP;
    char why[1024];
    if (x->rc == CNB_OK &&
        (x->rc = cnb_registry_check_kernel(NULL, x->desc, x->k, why, sizeof why)) != CNB_OK)
        fprintf(stderr, "  %s\n", why); /* and its kernel is left alone */
    if (x->rc != CNB_OK) {
        x->k = NULL;
        return;
    }
    x->rc = time_passes(sh, kernel_pass, x, &x->t, x->failed, sizeof x->failed);
    step(sh, "destroy");
    x->k->destroy(x->k);
    if (x->rc != CNB_OK)
        x->k = NULL;
}

/* The case's lines: each backend's times (or why it has none), then the plugin's against
 * the fastest other backend. */
static void print_case(const timed *tb, int nb, const cnb_op_desc *d, const char *name)
{
    char shape[128];
    cnb_conform_shape_str(shape, sizeof shape, d);
    printf("  %-18s batch %-3d %s\n", name, d->batch, shape);
    double best_other_f = INFINITY, best_other_b = INFINITY, tf = NAN, tbw = NAN;
    for (int b = 0; b < nb; b++) {
        if (tb[b].fallback) {
            printf("    %-12s kernel_create: CNB_ENOTSUP, the next backend of a chain runs "
                   "it\n", tb[b].desc->hdr.name);
            continue;
        }
        if (tb[b].rc != CNB_OK) {
            printf("    %-12s FAIL   %s returned %s at batch %d while being timed\n",
                   tb[b].desc->hdr.name, tb[b].failed, cnb_status_name(tb[b].rc), d->batch);
            continue;
        }
        const cnb_sample_stats *f = &tb[b].t.fwd, *g = &tb[b].t.bwd;
        double flops = op_flops(d);
        print_times(tb[b].desc->hdr.name, &tb[b].t);
        printf("  create %.2f ms", tb[b].create * 1e3);
        if (flops > 0)
            printf("  %6.1f / %6.1f GFLOP/s", flops / f->median * 1e-9,
                   2.0 * flops / g->median * 1e-9);
        printf("\n");
        if (b == 0)
            tf = f->median, tbw = g->median;
        else
            best_other_f = fmin(best_other_f, f->median), best_other_b = fmin(best_other_b, g->median);
    }
    if (nb > 1 && isfinite(best_other_f))
        printf("    %-12s fwd %8.2fx     bwd %8.2fx     against the fastest other backend\n",
               tb[0].desc->hdr.name, best_other_f / tf, best_other_b / tbw);
}

/* Time forward and backward of every backend in tb[] on one case and print a row. Returns
 * 1 when tb[0] (the plugin checked) failed a call, 0 otherwise. */
static int time_case(shared *sh, timed *tb, int nb, const cnb_op_desc *d, const char *name)
{
    const size_t ns = (size_t)d->batch * cnb_shape_size(d->src);
    const size_t nd = (size_t)d->batch * cnb_shape_size(d->dst);
    size_t nw = 0, nbias = 0;
    if (d->op == CNB_OP_CONV)
        nw = (size_t)d->dst.c * d->src.c * d->u.conv.kh * d->u.conv.kw, nbias = d->dst.c;
    else if (d->op == CNB_OP_INNER_PRODUCT)
        nw = (size_t)d->dst.c * cnb_shape_size(d->src), nbias = d->dst.c;
    enum { SRC, DST, DDST, DSRC, W, DW, B, DB, NBUF };
    const size_t len[NBUF] = {ns, nd, nd, ns, nw, nw, nbias, nbias};
    float *buf[NBUF];
    for (int i = 0; i < NBUF; i++)
        buf[i] = len[i] ? cnb_alloc(len[i] * sizeof(float)) : NULL;
    int32_t *labels = calloc((size_t)d->batch, sizeof *labels);
    float loss;
    cnb_check_rng_seed(1000);
    cnb_fill_uniform(buf[SRC], ns, -1.0f, 1.0f);
    cnb_fill_uniform(buf[DDST], nd, -1.0f, 1.0f);
    if (nw) {
        cnb_fill_uniform(buf[W], nw, -0.1f, 0.1f);
        cnb_fill_uniform(buf[B], nbias, -0.1f, 0.1f);
    }
    cnb_args a = {.src = buf[SRC], .dst = buf[DST], .weights = buf[W], .bias = buf[B],
                  .diff_dst = buf[DDST], .diff_src = buf[DSRC], .diff_weights = buf[DW],
                  .diff_bias = buf[DB], .labels = labels,
                  .loss = d->op == CNB_OP_SOFTMAX_XENT ? &loss : NULL};
    /* One backend after the other, each in a block: interleaving single calls of
     * different thread pools (OpenMP workers spinning while another pool runs) costs
     * milliseconds per call on a small machine and would measure the pools' contention. */
    for (int b = 0; b < nb; b++)
        time_backend(sh, &tb[b], d, &a);
    print_case(tb, nb, d, name);
    for (int i = 0; i < NBUF; i++)
        cnb_free(buf[i]);
    free(labels);
    return tb[0].rc != CNB_OK && !tb[0].fallback;
}

/* The speed table of one op: the LeNet-5 and AlexNet cases, the plugin against naive
 * and every other backend claiming the op. */
static int child_speed(const cnb_check_opts *o, shared *sh, int target, int op)
{
    cnb_registry reg;
    if (open_registry(o, &reg) != 0)
        return 2;
    timed tb[MAX_BACKENDS];
    int nb = 0;
    const cnb_backend_desc *be = target_backend(&reg, sh, target);
    step(sh, "init");
    if (!be)
        return 2;
    tb[nb++].desc = be;
    for (int i = 0; i < reg.n && nb < MAX_BACKENDS; i++) {
        const cnb_backend_desc *b = (const cnb_backend_desc *)reg.items[i].hdr;
        char why[64];
        if (b->hdr.kind != CNB_PLUGIN_BACKEND || b == be || !(b->ops & CNB_OP_BIT(op)))
            continue;
        if (cnb_backend_threads_unused((int)CNB_BACKEND_FIELD_OR(b, max_threads, 0u),
                                       o->threads, why, sizeof why))
            printf("  %s not run: it %s\n", b->hdr.name, why);
        else
            tb[nb++].desc = b;
    }
    for (int b = 0; b < nb; b++)
        if (init_backend(tb[b].desc, o->threads, &tb[b].state) != 0)
            return 2;
    int failed = 0;
    for (int row = 0; row < cnb_conform_n_cases; row++) {
        const cnb_conform_case *cs = &cnb_conform_cases[row];
        if (!selected(o, row, op) || strncmp(cs->name, "odd.", 4) == 0 ||
            (cs->flags & CNB_CASE_BATCH))
            continue;
        cnb_op_desc d = speed_desc(cs);
        const cnb_fuse_desc alone = {.n = 1, .op = {d}};
        set_where(sh, &alone, cs->name);
        failed += time_case(sh, tb, nb, &d, cs->name);
    }
    step(sh, "fini");
    for (int b = 0; b < nb; b++)
        fini_backend(tb[b].desc, tb[b].state);
    cnb_registry_free(&reg);
    if (failed)
        printf("  %-14s FAIL   %d case%s failed while being timed (above): a kernel must "
               "succeed at every batch a network gives it\n", cnb_op_name(op), failed,
               failed == 1 ? "" : "s");
    return failed ? 1 : 0;
}

/* The registry, and the model-file section of layer target t:
 * "[NAME]\ntype = NAME\nkey = value\n..." from --set KEY=VALUE. */
static int open_layer(const cnb_check_opts *o, const shared *sh, int t, cnb_registry *reg,
                      char *buf, size_t len)
{
    const char *name = sh->targets[t].name;
    int n = snprintf(buf, len, "[%s]\ntype = %s\n", name, name);
    for (int i = 0; i < o->n_keys && n > 0 && (size_t)n < len; i++) {
        const char *eq = strchr(o->keys[i], '=');
        n += snprintf(buf + n, len - (size_t)n, "%.*s = %s\n",
                      eq ? (int)(eq - o->keys[i]) : (int)strlen(o->keys[i]), o->keys[i],
                      eq ? eq + 1 : "");
    }
    return open_registry(o, reg);
}

static int child_gradcheck(const cnb_check_opts *o, shared *sh, int target, int op)
{
    (void)op;
    cnb_registry reg;
    char section[2048], err[1024];
    if (open_layer(o, sh, target, &reg, section, sizeof section) != 0)
        return 2;
    snprintf(sh->where, sizeof sh->where, "gradient check on input %dx%dx%d, batch %d",
             o->input.h, o->input.w, o->input.c, GRAD_BATCH);
    step(sh, "forward and backward");
    cnb_gradcheck_result res;
    int rc = cnb_gradcheck(&reg, section, o->input, GRAD_BATCH, CNB_REFERENCE_BACKEND, GRAD_EPS,
                           cnb_check_seed(), stdout, &res, err, sizeof err);
    cnb_registry_free(&reg);
    if (rc != 0) {
        printf("  %-14s FAIL   %s\n                 (give the layer's keys with --set KEY=VALUE "
               "and its input with --input HxWxC)\n", "gradient", err);
        return 1;
    }
    if (res.stray)
        printf("  %-14s FAIL   stray write: %s\n", "gradient", res.stray_at);
    if (res.bad)
        printf("  %-14s FAIL   %ld of %ld derivatives disagree with central differences "
               "(worst %.3g x the tolerance at %s)\n", "gradient", res.bad, res.checked,
               res.worst, res.worst_at);
    else if (!res.stray)
        printf("  %-14s PASS   %ld derivatives; closest to the tolerance: %.3g x (%s); no "
               "write outside its buffers\n", "gradient", res.checked, res.worst, res.worst_at);
    return res.bad || res.stray ? 1 : 0;
}

static int layer_pass(void *what, int backward)
{
    cnb_layer_harness *lh = what;
    int rc;
    if (backward)
        return cnb_layer_harness_backward(lh);
    cnb_layer_harness_loss(lh, &rc);
    return rc;
}

static int child_layer_speed(const cnb_check_opts *o, shared *sh, int target, int op)
{
    (void)op;
    cnb_registry reg;
    char section[2048], err[1024];
    if (open_layer(o, sh, target, &reg, section, sizeof section) != 0)
        return 2;
    printf("  input %dx%dx%d, batch %d; forward and backward on each backend (the layer's "
           "kernels may fall back to naive)\n", o->input.h, o->input.w, o->input.c,
           LAYER_SPEED_BATCH);
    int failed = 0;
    for (int i = 0; i < reg.n; i++) {
        const cnb_plugin_header *h = reg.items[i].hdr;
        if (h->kind != CNB_PLUGIN_BACKEND)
            continue;
        cnb_layer_harness lh;
        snprintf(sh->where, sizeof sh->where, "timing on backend %s", h->name);
        step(sh, "create");
        if (cnb_layer_harness_init(&lh, &reg, section, o->input, LAYER_SPEED_BATCH, h->name,
                                   1, err, sizeof err) != 0) {
            printf("    %-12s FAIL   %s\n", h->name, err);
            cnb_layer_harness_free(&lh);
            failed++;
            continue;
        }
        lh.timing = 1;
        pass_times t;
        char failed_at[96];
        int rc = time_passes(sh, layer_pass, &lh, &t, failed_at, sizeof failed_at);
        if (rc != CNB_OK) {
            printf("    %-12s FAIL   %s returned %s at batch %d while being timed\n", h->name,
                   failed_at, cnb_status_name(rc), LAYER_SPEED_BATCH);
            failed++;
        } else if (lh.stray) {
            printf("    %-12s FAIL   stray write: %s\n", h->name, lh.stray_at);
            failed++;
        } else {
            print_times(h->name, &t);
            printf("  ran on %s\n", lh.L.ctx.ran_on ? lh.L.ctx.ran_on : "(no kernels)");
        }
        cnb_layer_harness_free(&lh);
    }
    cnb_registry_free(&reg);
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------------------------ */
/* The parent. */

enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_NOT_RUN = 2, CHILD_CRASH = 3, CHILD_HANG = 4 };

/* Run fn in a child; report a crash or a hang with where it was. */
static int run_child(const cnb_check_opts *o, shared *sh, const char *label, child_fn fn,
                     int target, int op)
{
    fflush(stdout);
    fflush(stderr);
    sh->where[0] = sh->phase[0] = '\0';
    pid_t pid = fork();
    if (pid < 0) {
        cnb_error("fork: %s", strerror(errno));
        return CHILD_NOT_RUN;
    }
    if (pid == 0) {
        int rc = fn(o, sh, target, op);
        fflush(stdout);
        fflush(stderr);
        cnb_child_exit(rc);
    }
    unsigned long last = sh->beat;
    double since = cnb_now();
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(status))
                return WEXITSTATUS(status) <= CHILD_NOT_RUN ? WEXITSTATUS(status) : CHILD_FAIL;
            printf("  %-14s CRASH  %s in %s, %s\n", label, strsignal(WTERMSIG(status)),
                   sh->phase[0] ? sh->phase : "loading", sh->where[0] ? sh->where : "-");
            return CHILD_CRASH;
        }
        if (w < 0 && errno != EINTR) {
            cnb_error("waitpid: %s", strerror(errno));
            return CHILD_NOT_RUN;
        }
        if (sh->beat != last) {
            last = sh->beat, since = cnb_now();
        } else if (cnb_now() - since > o->timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            printf("  %-14s HANG   no progress for %.0f s in %s, %s: killed\n", label,
                   o->timeout, sh->phase[0] ? sh->phase : "loading",
                   sh->where[0] ? sh->where : "-");
            return CHILD_HANG;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

static int check_backend(const cnb_check_opts *o, shared *sh, int t)
{
    uint32_t ops = sh->targets[t].ops, passed = 0;
    int failures = 0;
    printf("\nconformance against naive (seed %llu, threads %d):\n",
           (unsigned long long)cnb_check_seed(), o->threads);
    for (int op = 0; op < CNB_OP_COUNT; op++) {
        if (!(ops & CNB_OP_BIT(op)))
            continue;
        int rc = run_child(o, sh, cnb_op_name(op), child_conform, t, op);
        if (rc == CHILD_PASS)
            passed |= CNB_OP_BIT(op);
        else
            failures++;
        if (rc == CHILD_NOT_RUN)
            printf("  %-14s ERROR  could not run (see the message above)\n", cnb_op_name(op));
    }
    if (sh->targets[t].fuse) {
        int rc = run_child(o, sh, part_name(PART_FUSED), child_conform, t, PART_FUSED);
        failures += rc != CHILD_PASS;
        if (rc == CHILD_NOT_RUN)
            printf("  %-14s ERROR  could not run (see the message above)\n", "fused");
    }
    char rest[256] = "";
    for (int op = 0; op < CNB_OP_COUNT; op++)
        if (!(ops & CNB_OP_BIT(op)))
            snprintf(rest + strlen(rest), sizeof rest - strlen(rest), "%s%s",
                     rest[0] ? ", " : "", cnb_op_name(op));
    if (rest[0])
        printf("  not provided (run on naive in a network): %s\n", rest);
    if (!o->speed)
        return failures;
    char why[64];
    if (cnb_backend_threads_unused((int)sh->targets[t].max_threads, o->threads, why,
                                   sizeof why)) {
        printf("\nspeed: not timed at %d threads: %s %s; time it with --threads %u\n",
               o->threads, sh->targets[t].name, why, sh->targets[t].max_threads);
        return failures;
    }
    printf("\nspeed (threads %d; median of 5 to %d repetitions per call, each backend in "
           "its own block):\n", o->threads, SPEED_MAX_REPS);
    for (int op = 0; op < CNB_OP_COUNT; op++) {
        if (!(ops & CNB_OP_BIT(op)))
            continue;
        if (!(passed & CNB_OP_BIT(op))) {
            printf("  %-14s not timed: it failed the conformance check above; a kernel that "
                   "computes wrong numbers is not benchmarked\n", cnb_op_name(op));
            continue;
        }
        printf(" %s\n", cnb_op_name(op));
        failures += run_child(o, sh, cnb_op_name(op), child_speed, t, op) != CHILD_PASS;
    }
    return failures;
}

static int check_layer(const cnb_check_opts *o, shared *sh, int t)
{
    printf("\ngradient check (backward against central differences of forward, naive "
           "kernels, seed %llu):\n", (unsigned long long)cnb_check_seed());
    int rc = run_child(o, sh, "gradient", child_gradcheck, t, 0);
    if (rc == CHILD_NOT_RUN)
        printf("  %-14s ERROR  could not run (see the message above)\n", "gradient");
    if (!o->speed)
        return rc != CHILD_PASS;
    printf("\nspeed:\n");
    if (rc != CHILD_PASS) {
        printf("  not timed: it failed the gradient check above\n");
        return 1;
    }
    return run_child(o, sh, "speed", child_layer_speed, t, 0) != CHILD_PASS;
}

int cnb_check_run(const cnb_check_opts *o)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* verdicts and the children's reports in order */
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);
    if (sh == MAP_FAILED)
        return cnb_error("check: mmap: %s", strerror(errno));
    memset(sh, 0, sizeof *sh);
    int rc = run_child(o, sh, "load", child_probe, 0, 0);
    if (rc != CHILD_PASS) {
        munmap(sh, sizeof *sh);
        if (rc == CHILD_NOT_RUN)
            return cnb_error("check: cannot check %s (see above)", o->plugin);
        printf("\n%s: FAILED\n", o->plugin);
        return 1;
    }
    int failures = 0;
    for (int t = 0; t < sh->n_targets; t++) {
        printf("\n== %s %s\n", cnb_plugin_kind_name(sh->targets[t].kind), sh->targets[t].name);
        failures += sh->targets[t].kind == CNB_PLUGIN_BACKEND ? check_backend(o, sh, t)
                                                              : check_layer(o, sh, t);
    }
    printf("\n%s: %s\n", o->plugin, failures ? "FAILED" : "all checks passed");
    munmap(sh, sizeof *sh);
    return failures ? 1 : 0;
}
