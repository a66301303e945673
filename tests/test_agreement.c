/*
 * test_agreement.c - the "agreement" suite: one whole training step (forward in training
 * mode, loss, backward) of LeNet-5 and AlexNet on every backend the default scan finds,
 * against the naive backend (the oracle). Same model file, same seed to
 * cnb_net_init_params (so the same weights and the same dropout streams), same seeded
 * random input and labels; the loss and the gradient of every parameter tensor must agree.
 *
 * Where suite "conformance" checks each kernel alone on synthetic inputs, this checks the
 * composition: layer plugins, the buffers the net hands between them, fallback to naive
 * for ops a backend does not claim, and rounding differences compounded through a whole
 * network. Dropout is plain C in its plugin, drawing from the layer's own seeded stream,
 * so its masks must be the same on every backend; that is checked directly (wherever a
 * dropout layer's input is non-zero in both runs, its output is zero in both or in
 * neither) as well as through the loss.
 *
 * It does not decide which backend is right when two disagree (naive is, by definition),
 * nor benchmark: each backend's step time is printed as a sanity check of speed only
 * (the first step, whose kernels were created at bind, and for fast backends a second,
 * warm step run after the check).
 *
 * On a failure it prints the model, backend, tensor (layer.param), both norms and the
 * worst element, then per layer the relative error of the forward output y and of the
 * output gradient dy and the ReLU/max-pool decisions that flipped, naming the first
 * layer to diverge forward and backward.
 *
 * Fused runs (cnnbench/backend.h): every backend is first checked with ":nofuse", each
 * layer on kernels of its own, so that every layer's y and dy can be compared. A backend
 * with fuse_create then takes the same step with its runs fused, which must agree with
 * its unfused step (FUSE_TOL) and, as a whole, with naive's: the loss, every gradient, and
 * each run's output (the forward output of its last layer) and input gradient (dy of the
 * layer before it) with the tolerances below. The decision flips are counted on the
 * unfused step, since a run keeps its ReLU and pooling decisions to itself.
 *
 * Environment: CNB_TEST_SEED (default CNB_CHECK_DEFAULT_SEED, checkdata.h) seeds weights, data and dropout;
 * CNB_TEST_THREADS (default 2) threads for the backends under test (naive runs on 1);
 * CNB_TEST_BACKENDS ("direct", "openblas,onednn") checks only those;
 * CNB_TEST_VERBOSE=1 prints the per-layer errors even when everything passes.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "errors.h"
#include "net.h"
#include "checkdata.h"
#include "testutil.h"

#define DEFAULT_THREADS 2
#define MAX_BACKENDS 16

/*
 * Tolerance, per parameter tensor g of layer j (compared whole, in double):
 *     ||g - g_ref||_2 / ||g_ref||_2 <= grad_tol + FLIP_COST * (decision flips at layers >= j)
 * with at most MAX_FLIPS flips in the whole net; and for the loss
 *     |L - L_ref| <= LOSS_TOL * |L_ref|.
 *
 * Why a norm and not element-wise: one element of a weight gradient can be a sum whose
 * terms cancel to near zero, where any reordering makes a large relative error; the norm
 * of the whole tensor is what an SGD step sees. Each float32 reduction of length K
 * carries a rounding error of about u sqrt(K) of its partial sums (u = 2^-24 = 6e-8, a
 * random walk; suite "conformance" measured ~7u sqrt(K) at worst per op); the naive
 * reference sums in double, so the difference is the fast backend's error. Errors
 * compound through the layers, forward and back, roughly adding in relative terms.
 *
 * grad_tol, the smooth part. LeNet-5: the longest reductions are conv1's weight gradient
 * (K = batch * 28 * 28 = 6272, sqrt ~ 80), conv2's (800) and fc1 (400); ~20 ops from the
 * input to conv1's gradient give ~sqrt(20) * u * 80 ~ 2e-5 for a random-walk sum, and
 * 1e-4 is 5x that (at batch 24, K = 18816: 3.4e-5, 3x). AlexNet reduces longer (fc6
 * K = 9216, conv1's weight gradient 2 * 55 * 55 = 6050, conv2 forward 5 * 5 * 96 = 2400)
 * through ~30 ops: 1.5x the depth and 1.2x the sqrt(K), so 3e-4. Measured over 40 seeds
 * on OpenBLAS and oneDNN, 1 and 2 threads: <= 9.1e-6 (LeNet) and <= 3.3e-6 (AlexNet) when
 * no decision flipped. A real bug stands far above either bound: a term dropped from a
 * sum of K is ~1/sqrt(K) >= 1e-2 of a tensor; a wrong buffer, stride or dropout mask is
 * O(1).
 *
 * Decision flips. A ReLU input within ~1e-6 of zero, or two max-pool candidates within
 * ~1 ulp of each other, can go either way on two backends: the forward output stays
 * continuous (the loss does not notice) but the gradient is passed or not, or routed to
 * the other candidate. Seen on seed 14, onednn: two pool2 candidates 0.509629309 and
 * 0.50962925 in naive, 0.50962925 and 0.509629726 in onednn. With ~1.5e6 such decisions
 * an AlexNet batch of 2 this happens on about one run in three (LeNet's ~1e4 never
 * flipped in 40 seeds). One flip moves one dy value from one input to another; through
 * the weight gradients below it that is 1e-3 to 1e-2 of a tensor (one term of sums of
 * 2 * 27 * 27 or 2 * 55 * 55). So a flat bound tight enough to catch subtle bugs is
 * flaky, and one loose enough for flips hides them. Instead the test counts the flips:
 * ReLU outputs on opposite sides of zero, and max-pool inputs that receive gradient on
 * one backend and not the other (at non-zero inputs only, since a window of ReLU zeros
 * may route anywhere harmlessly: every member's ReLU then blocks it, and an LRN between
 * adds only terms multiplied by the zero). It allows FLIP_COST for each flip at or above
 * the tensor's layer (backward flows down). Measured over seeds 1-40, 2 threads: flips
 * in 25 of 80 AlexNet runs, 1 or 2 each, costing at most 7.5e-3 per flip (seed 23,
 * one pool2 window, conv1.weights, on both backends: naive is the odd one out) and
 * 1.15e-2 from two (seed 24, onednn). FLIP_COST = 3e-2 is 4x the worst per flip.
 * MAX_FLIPS caps the count: near-ties explain a few, a wrong argmax or mask makes
 * thousands.
 *
 * Loss: the mean of -log p[label], p a softmax of logits with an error ~ u sqrt(K) of
 * their scale; |dL| <= max |d logit|, so relative ~1e-6 for LeNet (L ~ 2.3) and AlexNet
 * (L ~ 7-15): measured <= 1.5e-6. LOSS_TOL = 1e-5 for both; a different dropout mask
 * (drop7 reseeded, tried by hand) moves AlexNet's loss by 22%.
 */
#define LENET_GRAD_TOL 1e-4
#define ALEXNET_GRAD_TOL 3e-4
#define FLIP_COST 3e-2
#define MAX_FLIPS 16
#define LOSS_TOL 1e-5
/* Diagnostics only: a layer whose y or dy is off by more than this (relative norm) is
 * named as where the divergence starts. Observed: <= 4e-6 for every layer of both models
 * when no decision flipped. */
#define LAYER_DIVERGE 1e-4

/* Native layouts against NCHW on the same backend (check_native): the same primitives on
 * the same numbers; only a summation order that follows the layout (average pooling's
 * backward, a convolution's weight gradient, conv1's nChw8c kernel) may move a value.
 * Measured (LeNet-5, seed 20240611, 2 threads): 3.8e-7 ReLU/max, 1.1e-6 sigmoid/average,
 * 0 AlexNet; the library-pass check (same bound) 0 on every backend, however busy the
 * machine (openblas and direct add up their threads' work in a fixed order: suite "pool";
 * before, 6.9e-3 in AlexNet's conv4.weights on openblas with two busy loops beside it). */
#define NATIVE_TOL 1e-5

/* Fused runs against the same backend's layers one by one: a fused kernel may sum in
 * another order, as a native layout may. Measured on direct (whose runs use its own
 * convolution and naive's rules for the ReLU and pooling): 0 on both models. */
#define FUSE_TOL 1e-5

typedef struct model_case {
    const char *label;     /* for messages                                 */
    const char *file;      /* under experiments/models                      */
    const char *act, *pool; /* ${act} and ${pool}; NULL: the file's defaults */
    int batch;
    double grad_tol;       /* the smooth part of the bound (see above)      */
    int fuses;             /* a backend with fuse_create that takes a
                              convolution or inner product must fuse a run */
    const char *chain;     /* a chain whose runs sit between native layouts,
                              also checked (check_chain), or NULL          */
} model_case;

static const model_case models[] = {
    {"lenet5 relu/max", "lenet5.ini", "relu", "max", 8, LENET_GRAD_TOL, 1, "onednn+direct"},
    /* two groups of direct's batch lanes, the second short (at 8 it takes other tiles) */
    {"lenet5 relu/max (batch lanes)", "lenet5.ini", "relu", "max", 24, LENET_GRAD_TOL, 1, NULL},
    {"lenet5 sigmoid/avg", "lenet5.ini", NULL, NULL, 8, LENET_GRAD_TOL, 0, NULL},
    {"alexnet", "alexnet.ini", NULL, NULL, 2, ALEXNET_GRAD_TOL, 1, NULL},
};

/* One backend's training step on one model: the net keeps its outputs and gradients. */
typedef struct step {
    cnb_conf conf;
    cnb_net net;
    float loss;
    double first, warm; /* seconds: the checked step; a second one (0 = not run) */
} step;

static cnb_registry reg;
static const cnb_backend_desc *backends[MAX_BACKENDS]; /* every one but naive */
static int n_backends;

static int verbose(void)
{
    const char *e = getenv("CNB_TEST_VERBOSE");
    return e && *e && strcmp(e, "0") != 0;
}

static int setup(void)
{
    cnb_registry_init(&reg);
    cnb_registry_scan_default(&reg);
    if (!cnb_registry_backend(&reg, "naive")) {
        fprintf(stderr, "agreement: no naive backend found: nothing to compare against\n");
        return -1;
    }
    n_backends = 0;
    for (int i = 0; i < reg.n && n_backends < MAX_BACKENDS; i++) {
        const cnb_plugin_header *h = reg.items[i].hdr;
        if (h->kind == CNB_PLUGIN_BACKEND && strcmp(h->name, "naive") != 0 &&
            test_backend_wanted(h->name))
            backends[n_backends++] = (const cnb_backend_desc *)h;
    }
    const char *only = getenv("CNB_TEST_BACKENDS");
    if (only && *only && n_backends == 0) {
        fprintf(stderr, "agreement: CNB_TEST_BACKENDS=%s names no backend found\n", only);
        return -1;
    }
    return 0;
}

static int teardown(void)
{
    cnb_registry_free(&reg);
    return 0;
}

static int forward_backward(step *s)
{
    int rc = cnb_net_forward(&s->net, 1, &s->loss);
    return rc ? rc : cnb_net_backward(&s->net);
}

/* Build the model, initialise it from `seed`, bind it to `backend` and run one step on
 * seeded random data (N(0,1) inputs, uniform labels). 0 on success. */
static int run_step(step *s, const model_case *mc, const char *backend, int threads,
                    uint64_t seed)
{
    memset(s, 0, sizeof *s);
    int rc = test_model_load(&s->net, &s->conf, &reg, mc->file, mc->act, mc->pool);
    if (rc == 0)
        rc = cnb_net_init_params(&s->net, seed);
    if (rc == 0)
        rc = cnb_net_bind(&s->net, backend, threads, mc->batch);
    if (rc)
        return rc;
    test_fill_batch(&s->net, mc->batch, seed);
    double t = cnb_now();
    rc = forward_backward(s);
    s->first = cnb_now() - t;
    return rc;
}

static void step_free(step *s)
{
    cnb_net_free(&s->net);
    cnb_conf_free(&s->conf);
}

typedef struct diff {
    double max_abs;     /* largest |got - ref|          */
    size_t worst;       /* where                         */
    double norm_ref, norm_got, norm_diff;
    double rel;         /* norm_diff / norm_ref          */
} diff;

static diff compare(const float *got, const float *ref, size_t n)
{
    diff d = {0};
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], e = g - r;
        d.norm_ref += r * r, d.norm_got += g * g, d.norm_diff += e * e;
        if (!(fabs(e) <= d.max_abs)) { /* NaN counts as worst */
            d.max_abs = fabs(e);
            d.worst = i;
        }
    }
    d.norm_ref = sqrt(d.norm_ref), d.norm_got = sqrt(d.norm_got), d.norm_diff = sqrt(d.norm_diff);
    d.rel = d.norm_ref > 0.0 ? d.norm_diff / d.norm_ref : (d.norm_diff > 0.0 ? INFINITY : 0.0);
    return d;
}

/* Decisions at layer i that went differently from naive's (see the tolerance comment):
 * ReLU outputs on opposite sides of zero; max-pool inputs, non-zero on both sides, that
 * received gradient on one side only. None is counted inside a fused run, whose
 * decisions the host does not see. */
static size_t layer_flips(const step *got, const step *ref, int i, int batch)
{
    const cnb_net_layer *R = &ref->net.layers[i], *G = &got->net.layers[i];
    size_t flips = 0;
    if (!G->y || (i > 0 && !got->net.layers[i - 1].y))
        return 0;
    if (strcmp(R->desc->hdr.name, "act.relu") == 0) {
        size_t n = (size_t)batch * cnb_shape_size(R->out);
        for (size_t k = 0; k < n; k++)
            flips += (G->y[k] > 0.0f) != (R->y[k] > 0.0f);
    } else if (i > 0 && strcmp(R->desc->hdr.name, "pool.max") == 0) {
        const cnb_net_layer *RI = &ref->net.layers[i - 1], *GI = &got->net.layers[i - 1];
        size_t n = (size_t)batch * cnb_shape_size(RI->out);
        for (size_t k = 0; k < n; k++)
            if (RI->y[k] != 0.0f && GI->y[k] != 0.0f)
                flips += (RI->dy[k] != 0.0f) != (GI->dy[k] != 0.0f);
    }
    return flips;
}

/* Per layer: the relative error of its forward output and of its output gradient, the
 * decisions that flipped, and the first layer whose y (in forward order) and whose
 * dy (in backward order) exceed `tol`. */
static void print_layers(const step *got, const step *ref, int batch, double tol)
{
    int first_y = -1, first_dy = -1;
    fprintf(stderr, "    %-3s %-10s %-10s %12s %12s %12s %8s\n", "#", "layer", "ran on",
            "y rel", "dy rel", "y max abs", "flips");
    for (int i = 0; i < ref->net.n; i++) {
        const cnb_net_layer *G = &got->net.layers[i], *R = &ref->net.layers[i];
        size_t n = (size_t)batch * cnb_shape_size(R->out);
        if (!G->y) { /* inside a fused run: the run's kernel kept it */
            fprintf(stderr, "    %-3d %-10s fused into [%s]\n", i + 1, R->name,
                    got->net.layers[G->fuse_first].name);
            continue;
        }
        diff y = compare(G->y, R->y, n);
        char dy_rel[32] = "-"; /* the loss layer's dy is not used */
        if (!(R->desc->flags & CNB_LAYER_LOSS))
            snprintf(dy_rel, sizeof dy_rel, "%.3g", compare(G->dy, R->dy, n).rel);
        size_t flips = layer_flips(got, ref, i, batch);
        if (first_y < 0 && !(y.rel <= tol))
            first_y = i;
        fprintf(stderr, "    %-3d %-10s %-10s %12.3g %12s %12.3g %8zu\n", i + 1, R->name,
                G->ctx.ran_on ? G->ctx.ran_on : "(plain C)", y.rel, dy_rel, y.max_abs, flips);
    }
    for (int i = ref->net.n - 1; i >= 0; i--) {
        const cnb_net_layer *R = &ref->net.layers[i];
        if ((R->desc->flags & CNB_LAYER_LOSS) || !got->net.layers[i].dy)
            continue;
        diff dy = compare(got->net.layers[i].dy, R->dy, (size_t)batch * cnb_shape_size(R->out));
        if (!(dy.rel <= tol)) {
            first_dy = i;
            break;
        }
    }
    if (first_y >= 0)
        fprintf(stderr, "    forward first exceeds %.0e at [%s]\n", tol,
                ref->net.layers[first_y].name);
    if (first_dy >= 0)
        fprintf(stderr, "    backward first exceeds %.0e at dy of [%s]\n", tol,
                ref->net.layers[first_dy].name);
}

/* Dropout layers must have drawn the same mask: wherever the layer's input is non-zero
 * in both runs, its output is zero in one exactly when it is zero in the other. Returns
 * the dropout layers checked; *bad counts the positions that differ. */
static int check_dropout_masks(const step *got, const step *ref, int batch, size_t *bad)
{
    int checked = 0;
    *bad = 0;
    for (int i = 1; i < ref->net.n; i++) {
        const cnb_net_layer *R = &ref->net.layers[i], *G = &got->net.layers[i];
        if (strcmp(R->desc->hdr.name, "dropout") != 0)
            continue;
        const float *rx = ref->net.layers[i - 1].y, *gx = got->net.layers[i - 1].y;
        size_t n = (size_t)batch * cnb_shape_size(R->out);
        for (size_t k = 0; k < n; k++)
            if (rx[k] != 0.0f && gx[k] != 0.0f)
                *bad += (R->y[k] == 0.0f) != (G->y[k] == 0.0f);
        checked++;
    }
    return checked;
}

/* A fused run's edges against the reference: the output of its last layer, and the
 * gradient of the layer before it (its input's), each within the smooth bound, the
 * gradient's with the flips above it (flips_above, check_against). Returns the
 * failures. */
static int check_run_edges(const step *got, const step *ref, const model_case *mc,
                           const char *backend, const size_t *flips_above)
{
    int bad = 0;
    for (int i = 0; i < got->net.n; i++) {
        const cnb_net_layer *F = &got->net.layers[i];
        if (!F->fuse_n)
            continue;
        const int last = i + F->fuse_n - 1;
        const cnb_net_layer *G[2] = {&got->net.layers[last], i ? F - 1 : NULL};
        const cnb_net_layer *R[2] = {&ref->net.layers[last], i ? &ref->net.layers[i - 1] : NULL};
        for (int e = 0; e < 2 && G[e]; e++) {
            const size_t n = (size_t)mc->batch * cnb_shape_size(R[e]->out);
            const diff d = e ? compare(G[e]->dy, R[e]->dy, n) : compare(G[e]->y, R[e]->y, n);
            const double tol = mc->grad_tol + (e ? FLIP_COST * (double)flips_above[i] : 0.0);
            fprintf(stderr, "    run at [%s]: %s of [%s] %.3g (tolerance %.2g)\n", F->name,
                    e ? "input gradient, dy" : "output, y", R[e]->name, d.rel, tol);
            if (!(d.rel <= tol)) {
                fprintf(stderr, "  FAIL %s on %s: the fused run at [%s]: %s of [%s] differs "
                        "from naive's by %.3g > %.2g\n", mc->label, backend, F->name,
                        e ? "dy" : "y", R[e]->name, d.rel, tol);
                bad++;
            }
        }
    }
    return bad;
}

/* Compare one backend's step against the reference; returns the failures. The ReLU and
 * max-pool decisions that flipped are counted on `decisions`, the same step with every
 * layer's outputs kept (got itself, or, for fused runs, the unfused step). */
static int check_against(const step *got, const step *ref, const model_case *mc,
                         const char *backend, const step *decisions)
{
    int bad = 0;
    double loss_rel = fabs((double)got->loss - ref->loss) / fabs((double)ref->loss);
    if (!(loss_rel <= LOSS_TOL)) {
        fprintf(stderr, "  FAIL %s on %s: loss %.9g, naive %.9g (relative %.3g > %.0e)\n",
                mc->label, backend, got->loss, ref->loss, loss_rel, LOSS_TOL);
        bad++;
    }
    fprintf(stderr, "  %s vs naive: loss %.7g (rel %.2g)", backend, got->loss, loss_rel);
    size_t mask_diff;
    if (check_dropout_masks(got, ref, mc->batch, &mask_diff))
        fprintf(stderr, "; dropout masks %s", mask_diff ? "DIFFER" : "identical");
    fprintf(stderr, "\n");
    if (mask_diff) {
        fprintf(stderr, "  FAIL %s on %s: %zu dropout mask positions differ from naive's\n",
                mc->label, backend, mask_diff);
        bad++;
    }
    /* flips_above[j]: decision flips at layers >= j, which can reach layer j's gradients */
    size_t *flips_above = calloc((size_t)ref->net.n + 1, sizeof *flips_above), flips;
    CU_ASSERT_PTR_NOT_NULL_FATAL(flips_above);
    char flip_list[256] = "";
    flips_above[ref->net.n] = 0;
    for (int i = ref->net.n - 1; i >= 0; i--) {
        size_t f = layer_flips(decisions, ref, i, mc->batch);
        flips_above[i] = flips_above[i + 1] + f;
        if (f) {
            size_t used = strlen(flip_list);
            snprintf(flip_list + used, sizeof flip_list - used, " %s %zu",
                     ref->net.layers[i].name, f);
        }
    }
    flips = flips_above[0];
    if (flips)
        fprintf(stderr, "    decision flips (near-ties):%s\n", flip_list);
    if (flips > MAX_FLIPS) {
        fprintf(stderr, "  FAIL %s on %s: %zu ReLU/max-pool decisions differ from naive's "
                "(%s ); near-ties explain at most %d\n", mc->label, backend, flips, flip_list,
                MAX_FLIPS);
        bad++;
    }
    fprintf(stderr, "    %-16s %10s %12s %12s %10s\n", "tensor", "count", "max abs diff",
            "rel norm err", "tolerance");
    double worst = 0.0, worst_tol = 1.0, worst_ratio = -1.0; /* closest to its bound */
    char worst_name[96] = "-";
    for (int i = 0; i < ref->net.n; i++) {
        const cnb_net_layer *R = &ref->net.layers[i], *G = &got->net.layers[i];
        double tol = mc->grad_tol + FLIP_COST * (double)flips_above[i];
        for (int p = 0; p < R->layer->n_params; p++) {
            const cnb_param_spec *ps = &R->layer->params[p];
            char name[96];
            snprintf(name, sizeof name, "%s.%s", R->name, ps->name);
            diff d = compare(G->dw[p], R->dw[p], ps->count);
            fprintf(stderr, "    %-16s %10zu %12.3g %12.3g %10.2g\n", name, ps->count,
                    d.max_abs, d.rel, tol);
            if (!(d.rel / tol <= worst_ratio)) { /* NaN counts as worst */
                worst = d.rel, worst_tol = tol, worst_ratio = d.rel / tol;
                snprintf(worst_name, sizeof worst_name, "%s", name);
            }
            if (!(d.rel <= tol)) {
                fprintf(stderr, "  FAIL %s on %s: gradient of %s: ||g - g_ref|| / ||g_ref|| "
                        "= %.3g > %.2g; ||g_ref|| = %.6g, ||g|| = %.6g; worst element [%zu]: "
                        "naive %.9g, %s %.9g\n", mc->label, backend, name, d.rel, tol,
                        d.norm_ref, d.norm_got, d.worst, R->dw[p][d.worst], backend,
                        G->dw[p][d.worst]);
                bad++;
            }
        }
    }
    fprintf(stderr, "    closest to its bound: %s, %.3g (%.2g of %.2g)\n", worst_name, worst,
            worst_ratio, worst_tol);
    bad += check_run_edges(got, ref, mc, backend, flips_above);
    free(flips_above);
    if (bad || verbose())
        print_layers(got, ref, mc->batch, LAYER_DIVERGE);
    return bad;
}

/* run_step on backend spec `spec`; on failure a FAIL line naming `name`, and s freed. */
static int backend_step(step *s, const model_case *mc, const char *spec, const char *name,
                        int threads, uint64_t seed)
{
    int rc = run_step(s, mc, spec, threads, seed);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) {
        fprintf(stderr, "  FAIL %s on %s: the step failed: %s\n", mc->label, name,
                cnb_last_error());
        step_free(s);
    }
    return rc;
}

/* The largest relative difference between two steps of one model, over the loss and
 * every parameter gradient; `where` names it. */
static double step_diff(const step *got, const step *ref, char *where, size_t len)
{
    double worst = fabs((double)got->loss - ref->loss) / fabs((double)ref->loss);
    snprintf(where, len, "loss");
    for (int i = 0; i < got->net.n; i++)
        for (int p = 0; p < got->net.layers[i].layer->n_params; p++) {
            const cnb_net_layer *L = &got->net.layers[i];
            diff d = compare(L->dw[p], ref->net.layers[i].dw[p], L->layer->params[p].count);
            if (!(d.rel <= worst)) {
                worst = d.rel;
                snprintf(where, len, "%s.%s", L->name, L->layer->params[p].name);
            }
        }
    return worst;
}

/* The same step with native layouts between layers (cnnbench/backend.h) against the
 * step on NCHW: a layout moves numbers, it does not change them, so the loss and every
 * gradient must agree to NATIVE_TOL, and at least one tensor must have been native. */
static void check_native(const cnb_backend_desc *be, const step *nchw, const model_case *mc,
                         int threads, uint64_t seed)
{
    const char *name = be->hdr.name;
    char spec[128];
    snprintf(spec, sizeof spec, "%s:nofuse", name);
    step s;
    if (backend_step(&s, mc, spec, name, threads, seed))
        return;
    char edges[512] = "";
    int n_native = 0;
    for (int i = 0; i < s.net.n; i++) {
        const cnb_layout_info *o = &s.net.layers[i].ctx.out;
        if (o->id != CNB_LAYOUT_NCHW) {
            size_t used = strlen(edges);
            snprintf(edges + used, sizeof edges - used, " %s(%s)", s.net.layers[i].name,
                     o->name);
            n_native++;
        }
    }
    char worst_name[96];
    const double worst = step_diff(&s, nchw, worst_name, sizeof worst_name);
    fprintf(stderr, "  %s:nofuse (native layouts) vs %s:nchw:nofuse: largest relative "
            "difference %.3g (%s); native outputs:%s\n", name, name, worst, worst_name,
            n_native ? edges : " none");
    CU_ASSERT(worst <= NATIVE_TOL);
    if (!(worst <= NATIVE_TOL))
        fprintf(stderr, "  FAIL %s on %s: native layouts change %s by %.3g (> %.0e)\n",
                mc->label, name, worst_name, worst, NATIVE_TOL);
    CU_ASSERT(n_native > 0);
    if (n_native == 0)
        fprintf(stderr, "  FAIL %s on %s: it has layout_of() but kept every tensor NCHW\n",
                mc->label, name);
    step_free(&s);
}

/* A backend's library passes (cnb_backend_desc.library_pass, what the bench times the
 * kernels against) must leave its kernels as they were: a second net on the same spec
 * runs them all after its step, then both take an SGD update and a second step, which
 * must agree. (The update matters: a kernel that kept skipping its reorders or im2col
 * after a pass would read copies left by the first step, right only while the weights
 * and inputs have not moved.) */
static void check_library_pass(step *ref, const model_case *mc, const char *spec,
                               const char *name, int threads, uint64_t seed)
{
    step t;
    if (backend_step(&t, mc, spec, name, threads, seed))
        return;
    int passes = 0;
    for (int i = 0; i < t.net.n; i++)
        for (int dir = 0; dir < 2; dir++) {
            int rc = cnb_net_library_pass(&t.net, i, dir);
            CU_ASSERT(rc == 0 || rc == CNB_ENOTSUP);
            passes += rc == 0;
        }
    step *both[] = {ref, &t};
    for (int k = 0; k < 2; k++) {
        cnb_net_sgd(&both[k]->net, 0.01f, 0.0f, 0.0f);
        CU_ASSERT_EQUAL_FATAL(forward_backward(both[k]), 0);
    }
    char where[96];
    const double worst = step_diff(&t, ref, where, sizeof where);
    if (passes)
        fprintf(stderr, "  %s: %d library passes, then an update and a second step: largest "
                "relative difference %.3g (%s)\n", name, passes, worst, where);
    CU_ASSERT(worst <= NATIVE_TOL);
    if (!(worst <= NATIVE_TOL))
        fprintf(stderr, "  FAIL %s on %s: after its library passes the step differs in %s by "
                "%.3g\n", mc->label, name, where, worst);
    step_free(&t);
}

/* Whether backend `name` made a convolution's or an inner product's kernel in step s:
 * a run starts at one, so a backend that took none fuses none (winograd on LeNet-5). */
static int takes_run_head(const step *s, const char *name)
{
    for (int i = 0; i < s->net.n; i++) {
        const cnb_layer_ctx *c = &s->net.layers[i].ctx;
        if (c->ran_on && !strcmp(c->ran_on, name) &&
            (c->desc.op == CNB_OP_CONV || c->desc.op == CNB_OP_INNER_PRODUCT))
            return 1;
    }
    return 0;
}

/* The same step with the backend's fused runs against its step without (`layers`), and
 * as a whole against naive's. */
static void check_fused(const cnb_backend_desc *be, const step *layers, const step *ref,
                        const model_case *mc, int threads, uint64_t seed)
{
    const char *name = be->hdr.name;
    char spec[128], runs[512], who[160];
    snprintf(spec, sizeof spec, "%s:nchw", name);
    step f;
    if (backend_step(&f, mc, spec, name, threads, seed))
        return;
    const int n_runs = cnb_net_fused_runs(&f.net, runs, sizeof runs);
    fprintf(stderr, "  %s fused runs: %s\n", name, n_runs ? runs : "none");
    if (n_runs == 0 && mc->fuses && takes_run_head(layers, name)) {
        fprintf(stderr, "  FAIL %s on %s: it has fuse_create but fused no run\n", mc->label,
                name);
        CU_FAIL("a backend with fuse_create fused nothing of a model made of runs");
    }
    if (n_runs) {
        char where[96];
        const double worst = step_diff(&f, layers, where, sizeof where);
        fprintf(stderr, "  %s fused vs %s:nchw:nofuse: largest relative difference %.3g (%s)\n",
                name, name, worst, where);
        CU_ASSERT(worst <= FUSE_TOL);
        if (!(worst <= FUSE_TOL))
            fprintf(stderr, "  FAIL %s on %s: fusing its runs changes %s by %.3g (> %.0e)\n",
                    mc->label, name, where, worst, FUSE_TOL);
        snprintf(who, sizeof who, "%s (fused)", name);
        CU_ASSERT_EQUAL(check_against(&f, ref, mc, who, layers), 0);
    }
    step_free(&f);
}

/* One backend against naive: on NCHW between layers and every layer on kernels of its own
 * (so that every layer's y and dy can be compared), then with its native layouts and its
 * fused runs against that. */
static void run_backend(const cnb_backend_desc *be, const step *ref, const model_case *mc,
                        int threads, uint64_t seed)
{
    const char *name = be->hdr.name;
    char spec[128];
    snprintf(spec, sizeof spec, "%s:nchw:nofuse", name);
    step s;
    if (backend_step(&s, mc, spec, name, threads, seed))
        return;
    /* Layers that fell back to naive agree trivially: say which. */
    char fallback[512] = "";
    size_t used = 0;
    for (int i = 0; i < s.net.n && used < sizeof fallback; i++) {
        const char *on = s.net.layers[i].ctx.ran_on;
        if (on && strcmp(on, name) != 0) {
            int k = snprintf(fallback + used, sizeof fallback - used, " %s",
                             s.net.layers[i].name);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    int bad = check_against(&s, ref, mc, name, &s);
    CU_ASSERT_EQUAL(bad, 0);
    if (CNB_BACKEND_FIELD(be, layout_of))
        check_native(be, &s, mc, threads, seed);
    if (CNB_BACKEND_FIELD(be, fuse_create))
        check_fused(be, &s, ref, mc, threads, seed);
    check_library_pass(&s, mc, spec, name, threads, seed);
    double t = cnb_now(); /* a second step, after the checks: new dropout masks */
    if (forward_backward(&s) == 0)
        s.warm = cnb_now() - t;
    fprintf(stderr, "  %s: step %.3f s first, %.3f s warm (naive / warm = %.1fx); layers "
            "on naive:%s\n", name, s.first, s.warm, s.warm > 0 ? ref->first / s.warm : 0.0,
            used ? fallback : " none");
    step_free(&s);
}

/* A chain whose fused runs sit between another backend's native layouts (onednn+direct:
 * oneDNN's layers pass nChw8c and nChw16c, direct fuses the convolutions with what
 * follows, and the layers next to a run are bound on NCHW): against naive, with
 * the decisions inside the runs not counted (LeNet-5's at batch 8 never flipped in 40
 * seeds, see the tolerance comment). */
static void check_chain(const step *ref, const model_case *mc, int threads, uint64_t seed)
{
    char names[128], *save = NULL, runs[512];
    snprintf(names, sizeof names, "%s", mc->chain);
    for (char *n = strtok_r(names, "+", &save); n; n = strtok_r(NULL, "+", &save))
        if (!cnb_registry_backend(&reg, n) || !test_backend_wanted(n)) {
            fprintf(stderr, "  %s: not checked (no backend %s here, or left out)\n", mc->chain,
                    n);
            return;
        }
    char spec[160];
    snprintf(spec, sizeof spec, "%s:nofuse", mc->chain);
    step f, u;
    if (backend_step(&f, mc, mc->chain, mc->chain, threads, seed))
        return;
    if (backend_step(&u, mc, spec, spec, threads, seed)) {
        step_free(&f);
        return;
    }
    const int n_runs = cnb_net_fused_runs(&f.net, runs, sizeof runs);
    int moved = 0; /* runs whose output the unfused chain passed in a native layout */
    for (int i = 0; i < f.net.n; i++) {
        const cnb_net_layer *L = &f.net.layers[i];
        moved += L->fuse_n && u.net.layers[i + L->fuse_n - 1].ctx.out.id != CNB_LAYOUT_NCHW;
    }
    fprintf(stderr, "  %s fused runs: %s; %d of them end where %s passed a native layout\n",
            mc->chain, n_runs ? runs : "none", moved, spec);
    CU_ASSERT(n_runs > 0);
    CU_ASSERT(moved > 0);
    CU_ASSERT_EQUAL(check_against(&f, ref, mc, mc->chain, &f), 0);
    step_free(&u);
    step_free(&f);
}

static void run_model(const model_case *mc)
{
    uint64_t seed = cnb_check_seed();
    int threads = cnb_check_threads(DEFAULT_THREADS);
    step ref;
    fprintf(stderr, "\nagreement: %s, batch %d, seed %llu, %d thread(s) for the backends "
            "under test\n", mc->label, mc->batch, (unsigned long long)seed, threads);
    int rc = run_step(&ref, mc, "naive", 1, seed);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) {
        fprintf(stderr, "  naive step failed: %s\n", cnb_last_error());
        step_free(&ref);
        return;
    }
    CU_ASSERT(isfinite(ref.loss));
    fprintf(stderr, "  naive: loss %.7g, step %.3f s\n", ref.loss, ref.first);
    if (n_backends == 0)
        fprintf(stderr, "  no backend besides naive found: nothing to compare\n");
    for (int b = 0; b < n_backends; b++)
        run_backend(backends[b], &ref, mc, threads, seed);
    if (mc->chain)
        check_chain(&ref, mc, threads, seed);
    step_free(&ref);
}

static void test_lenet_relu_max(void) { run_model(&models[0]); }
static void test_lenet_batch_lanes(void) { run_model(&models[1]); }
static void test_lenet_sigmoid_avg(void) { run_model(&models[2]); }
static void test_alexnet(void) { run_model(&models[3]); }

void suite_agreement(void)
{
    static const test_case cases[] = {
        {"lenet5 relu/max, one step, every backend vs naive", test_lenet_relu_max},
        {"lenet5 relu/max at batch 24 (direct's batch lanes), every backend vs naive",
         test_lenet_batch_lanes},
        {"lenet5 sigmoid/avg, one step, every backend vs naive", test_lenet_sigmoid_avg},
        {"alexnet (lrn, dropout 0.5), one step, every backend vs naive", test_alexnet},
        {NULL, NULL},
    };
    test_add_suite_fixture("agreement", setup, teardown, cases);
}
