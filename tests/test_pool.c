/*
 * test_pool.c - the "pool" suite: a threaded backend gives the same bits whichever of its
 * threads took which item (plugins/backends/common/pool.h). The pool hands items out
 * dynamically, so on a busy machine the caller may take every one; a sum over the batch
 * split by thread would then be added in another order, and a training step would round
 * differently from one run to the next (the agreement suite's library-pass check caught
 * it: AlexNet on openblas differed by 0.0069 in conv4.weights with two busy loops beside
 * it). Partial sums belong to fixed chunks of the batch instead, added in chunk order.
 *
 * Each check runs the same work twice at 2 threads on one seeded input: once as the pool
 * shares it out, and once with CNB_POOL_HANDOUT=caller, which keeps the workers out of
 * every job (the caller takes every item, as when the workers are held off their cores).
 * Every output must be bit-identical (memcmp); a difference prints the first index and
 * both values.
 *  - conv: one convolution kernel forward and backward (diff_src, diff_weights,
 *    diff_bias) on every threaded backend the default scan finds (openblas, direct, and
 *    direct's plain-C path through CNB_DIRECT_ISA=scalar), on shapes that take each of
 *    their paths, with batches that leave chunks uneven or empty; the normal run's
 *    backward is repeated, so that the workers, spinning by then, take their share.
 *  - step: a whole training step (forward, loss, backward) of LeNet-5 on those backends
 *    and of AlexNet on openblas and direct (the layers they leave out run on naive): the
 *    loss and every parameter gradient. On direct its fused runs (conv -> ReLU -> max
 *    pooling) are among them, their chunks those of its convolution kernel.
 *
 * It does not check the numbers against naive (suites "conformance" and "agreement" do),
 * nor results across thread counts: the chunks follow the thread count, so 1 and 2
 * threads may round differently.
 *
 * Environment: CNB_TEST_SEED (default in checkdata.h) seeds inputs, weights and dropout.
 */
#include <stdint.h>
#include <string.h>

#include "cnnbench/backend.h"
#include "checkdata.h"
#include "alloc.h"
#include "clock.h"
#include "errors.h"
#include "net.h"
#include "rng.h"
#include "testutil.h"

#define THREADS 2
#define REPS 5 /* backward calls of the normal run, each compared */

/* A backend under test, and the environment its init reads. */
typedef struct pool_backend {
    const char *label; /* for messages                                       */
    const char *name;  /* plugin name                                         */
    const char *isa;   /* CNB_DIRECT_ISA, or NULL                             */
    int alexnet;       /* also a whole AlexNet step (the conv test covers the
                          plain-C path, whose AlexNet step takes 10 s)         */
} pool_backend;

static const pool_backend pool_backends[] = {
    {"openblas", "openblas", NULL, 1},
    {"direct", "direct", NULL, 1},
    {"direct (plain C)", "direct", "scalar", 0},
};

/* An environment variable as it was before env_put() set (value non-NULL) or unset it;
 * the backends read theirs in init. */
typedef struct env_saved {
    const char *name;
    int had;       /* it was set */
    char old[128]; /* to what    */
} env_saved;

static void env_put(env_saved *e, const char *name, const char *value)
{
    const char *old = getenv(name);
    e->name = name;
    e->had = old != NULL;
    snprintf(e->old, sizeof e->old, "%s", old ? old : "");
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void env_restore(const env_saved *e)
{
    if (e->had)
        setenv(e->name, e->old, 1);
    else
        unsetenv(e->name);
}

/* 1 when normal and caller hold the same bits; else 0 after printing the first index
 * where they differ, with both values. */
static int same_bits(const char *what, const char *out, const float *normal,
                     const float *caller, size_t n)
{
    if (memcmp(normal, caller, sizeof(float) * n) == 0)
        return 1;
    size_t i = 0;
    while (memcmp(&normal[i], &caller[i], sizeof(float)) == 0)
        i++;
    fprintf(stderr, "  FAIL %s: %s differs at [%zu] of %zu: %.9g shared out, %.9g with the "
            "caller taking every item\n", what, out, i, n, normal[i], caller[i]);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* One convolution kernel. */

typedef struct conv_case {
    const char *label;
    int batch, c, h, w, k, kh, kw, stride, pad;
} conv_case;

/* LeNet-5's two (direct: along the width with 16-lane shares; along the channels), a
 * strided AlexNet-like conv1 (direct: diff_src by scatter), conv3-like ones too large for
 * direct's lane shares, and a 1x1 (openblas: src is its own columns). At 2 threads their
 * partial sums make 16, 8 or 2 chunks (pool_chunks()); the batches leave them uneven
 * (37 and 35 over 16, 3 over 2), one sample each (5, 7), or one empty (batch 1). */
static const conv_case conv_cases[] = {
    {"lenet5 conv1", 37, 1, 28, 28, 6, 5, 5, 1, 2},
    {"lenet5 conv2", 35, 6, 14, 14, 16, 5, 5, 1, 0},
    {"11x11 stride 4", 5, 3, 63, 63, 16, 11, 11, 4, 0},
    {"3x3 32->64", 5, 32, 13, 13, 64, 3, 3, 1, 1},
    {"3x3 128->128", 3, 128, 13, 13, 128, 3, 3, 1, 1},
    {"1x1", 7, 16, 9, 9, 24, 1, 1, 1, 0},
    {"batch 1", 1, 6, 14, 14, 16, 5, 5, 1, 0},
};

typedef struct conv_io {
    float *src, *weights, *bias, *diff_dst;      /* inputs, the same for both runs */
    float *dst, *diff_src, *diff_weights, *diff_bias;
    size_t n_src, n_dst, n_w, n_b;
} conv_io;

static void conv_io_new(conv_io *io, const cnb_op_desc *d)
{
    memset(io, 0, sizeof *io);
    io->n_src = (size_t)d->batch * cnb_shape_size(d->src);
    io->n_dst = (size_t)d->batch * cnb_shape_size(d->dst);
    io->n_w = (size_t)d->dst.c * d->src.c * d->u.conv.kh * d->u.conv.kw;
    io->n_b = (size_t)d->dst.c;
    float **bufs[] = {&io->src, &io->weights, &io->bias, &io->diff_dst, &io->dst,
                      &io->diff_src, &io->diff_weights, &io->diff_bias};
    size_t sizes[] = {io->n_src, io->n_w, io->n_b, io->n_dst, io->n_dst, io->n_src, io->n_w,
                      io->n_b};
    for (int i = 0; i < 8; i++) {
        *bufs[i] = cnb_alloc(sizeof(float) * sizes[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(*bufs[i]);
    }
}

static void conv_io_free(conv_io *io)
{
    float *bufs[] = {io->src, io->weights, io->bias, io->diff_dst, io->dst, io->diff_src,
                     io->diff_weights, io->diff_bias};
    for (int i = 0; i < 8; i++)
        cnb_free(bufs[i]);
}

/* Compare the outputs of `got` with `ref`; 1 when every one is bit-identical. */
static int conv_same(const char *what, const conv_io *got, const conv_io *ref)
{
    int ok = same_bits(what, "dst", got->dst, ref->dst, ref->n_dst);
    ok &= same_bits(what, "diff_src", got->diff_src, ref->diff_src, ref->n_src);
    ok &= same_bits(what, "diff_weights", got->diff_weights, ref->diff_weights, ref->n_w);
    ok &= same_bits(what, "diff_bias", got->diff_bias, ref->diff_bias, ref->n_b);
    return ok;
}

/* Init `pb` at THREADS threads (caller_only: with CNB_POOL_HANDOUT=caller), create the
 * kernel for d, run forward once and backward `reps` times into io; after each backward
 * but the last, compare with `ref` when given. 0, or -1 after a FAIL line. */
static int conv_run(const pool_backend *pb, const cnb_backend_desc *be, const cnb_op_desc *d,
                    conv_io *io, int caller_only, int reps, const conv_io *ref,
                    const char *what, int *same)
{
    env_saved handout, isa;
    env_put(&handout, "CNB_POOL_HANDOUT", caller_only ? "caller" : NULL);
    env_put(&isa, "CNB_DIRECT_ISA", pb->isa);
    cnb_backend_config cfg = {.threads = THREADS};
    void *state = NULL;
    int rc = be->init ? be->init(cnb_host_services(), &cfg, &state) : CNB_OK;
    env_restore(&isa);
    env_restore(&handout);
    CU_ASSERT_EQUAL(rc, CNB_OK);
    if (rc != CNB_OK) {
        fprintf(stderr, "  FAIL %s: init returned %d\n", what, rc);
        return -1;
    }
    cnb_kernel *k = NULL;
    rc = be->kernel_create(state, d, &k);
    CU_ASSERT_EQUAL(rc, CNB_OK);
    if (rc == CNB_OK) {
        cnb_args a = {.src = io->src, .dst = io->dst, .weights = io->weights,
                      .bias = io->bias, .diff_dst = io->diff_dst, .diff_src = io->diff_src,
                      .diff_weights = io->diff_weights, .diff_bias = io->diff_bias};
        rc = k->forward(k, &a);
        for (int r = 0; r < reps && rc == CNB_OK; r++) {
            rc = k->backward(k, &a);
            if (rc == CNB_OK && ref && r < reps - 1)
                *same &= conv_same(what, io, ref);
        }
        CU_ASSERT_EQUAL(rc, CNB_OK);
        k->destroy(k);
    }
    if (rc != CNB_OK)
        fprintf(stderr, "  FAIL %s: kernel_create, forward or backward returned %d\n", what,
                rc);
    if (be->fini)
        be->fini(state);
    return rc == CNB_OK ? 0 : -1;
}

static void test_conv(void)
{
    cnb_registry *reg = test_registry();
    int tested = 0;
    fprintf(stderr, "\n");
    for (size_t b = 0; b < sizeof pool_backends / sizeof pool_backends[0]; b++) {
        const pool_backend *pb = &pool_backends[b];
        const cnb_backend_desc *be = cnb_registry_backend(reg, pb->name);
        if (!be) {
            fprintf(stderr, "  no %s backend in this build: skipped\n", pb->label);
            continue;
        }
        fprintf(stderr, "  %s: %zu convolutions at %d threads, backward once with the "
                "caller alone, %d times shared out\n", pb->label,
                sizeof conv_cases / sizeof conv_cases[0], THREADS, REPS);
        tested++;
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            const conv_case *cc = &conv_cases[i];
            const int oh = (cc->h + 2 * cc->pad - cc->kh) / cc->stride + 1;
            const int ow = (cc->w + 2 * cc->pad - cc->kw) / cc->stride + 1;
            const cnb_op_desc d = {
                .op = CNB_OP_CONV, .batch = cc->batch,
                .src = {.c = cc->c, .h = cc->h, .w = cc->w},
                .dst = {.c = cc->k, .h = oh, .w = ow},
                .u.conv = {cc->kh, cc->kw, cc->stride, cc->stride, cc->pad, cc->pad}};
            char what[160];
            snprintf(what, sizeof what, "conv %s on %s, batch %d, %d threads", cc->label,
                     pb->label, cc->batch, THREADS);
            conv_io ref, got;
            conv_io_new(&ref, &d);
            conv_io_new(&got, &d);
            cnb_check_rng_seed(i);
            cnb_fill_uniform(ref.src, ref.n_src, -1.0f, 1.0f);
            cnb_fill_uniform(ref.weights, ref.n_w, -0.5f, 0.5f);
            cnb_fill_uniform(ref.bias, ref.n_b, -0.5f, 0.5f);
            cnb_fill_uniform(ref.diff_dst, ref.n_dst, -1.0f, 1.0f);
            memcpy(got.src, ref.src, sizeof(float) * ref.n_src);
            memcpy(got.weights, ref.weights, sizeof(float) * ref.n_w);
            memcpy(got.bias, ref.bias, sizeof(float) * ref.n_b);
            memcpy(got.diff_dst, ref.diff_dst, sizeof(float) * ref.n_dst);
            int same = 1;
            if (conv_run(pb, be, &d, &ref, 1, 1, NULL, what, &same) == 0 &&
                conv_run(pb, be, &d, &got, 0, REPS, &ref, what, &same) == 0)
                same &= conv_same(what, &got, &ref);
            CU_ASSERT(same);
            conv_io_free(&ref);
            conv_io_free(&got);
        }
    }
    CU_ASSERT(tested > 0);
}

/* ------------------------------------------------------------------------------------ */
/* A whole training step. */

typedef struct step_case {
    const char *label;
    const char *file;       /* under experiments/models          */
    const char *act, *pool; /* ${act} and ${pool}; NULL: defaults */
    int batch;
    int alexnet;            /* run only where pool_backend.alexnet */
} step_case;

/* AlexNet at batch 2, as suite "agreement" runs it: one sample per chunk. */
static const step_case step_cases[] = {
    {"lenet5 relu/max", "lenet5.ini", "relu", "max", 37, 0},
    {"alexnet", "alexnet.ini", NULL, NULL, 2, 1},
};

/* Load, initialise and bind sc on `spec` at THREADS threads (caller_only: with
 * CNB_POOL_HANDOUT=caller), then run one training step on seeded data. 0 on success. */
static int step_run(cnb_net *net, cnb_conf *conf, const step_case *sc, const char *spec,
                    const char *isa, int caller_only, float *loss)
{
    const uint64_t seed = cnb_check_seed();
    int rc = test_model_load(net, conf, test_registry(), sc->file, sc->act, sc->pool);
    if (rc == 0)
        rc = cnb_net_init_params(net, seed);
    if (rc == 0) {
        env_saved handout, isa_env;
        env_put(&handout, "CNB_POOL_HANDOUT", caller_only ? "caller" : NULL);
        env_put(&isa_env, "CNB_DIRECT_ISA", isa);
        rc = cnb_net_bind(net, spec, THREADS, sc->batch);
        env_restore(&isa_env);
        env_restore(&handout);
    }
    if (rc)
        return rc;
    test_fill_batch(net, sc->batch, seed);
    rc = cnb_net_forward(net, 1, loss);
    return rc ? rc : cnb_net_backward(net);
}

static void test_step(void)
{
    int tested = 0, lines = 0;
    for (size_t b = 0; b < sizeof pool_backends / sizeof pool_backends[0]; b++) {
        const pool_backend *pb = &pool_backends[b];
        if (!cnb_registry_backend(test_registry(), pb->name))
            continue;
        for (size_t i = 0; i < sizeof step_cases / sizeof step_cases[0]; i++) {
            const step_case *sc = &step_cases[i];
            if (sc->alexnet && !pb->alexnet)
                continue;
            char what[160];
            snprintf(what, sizeof what, "%s step on %s, batch %d, %d threads", sc->label,
                     pb->label, sc->batch, THREADS);
            cnb_net ref = {0}, got = {0};
            cnb_conf ref_conf = {0}, got_conf = {0};
            float ref_loss = 0.0f, got_loss = 0.0f;
            const double t0 = cnb_now();
            int rc = step_run(&ref, &ref_conf, sc, pb->name, pb->isa, 1, &ref_loss);
            const double t1 = cnb_now();
            if (rc == 0)
                rc = step_run(&got, &got_conf, sc, pb->name, pb->isa, 0, &got_loss);
            fprintf(stderr, "%s  %s: built and run in %.2f s (caller only), %.2f s (shared "
                    "out)\n", lines++ ? "" : "\n", what, t1 - t0, cnb_now() - t1);
            CU_ASSERT_EQUAL(rc, 0);
            if (rc) {
                fprintf(stderr, "  FAIL %s: the step failed: %s\n", what, cnb_last_error());
            } else {
                tested++;
                int same = same_bits(what, "loss", &got_loss, &ref_loss, 1);
                for (int l = 0; l < ref.n; l++)
                    for (int p = 0; p < ref.layers[l].layer->n_params; p++) {
                        char name[96];
                        snprintf(name, sizeof name, "%s.%s gradient", ref.layers[l].name,
                                 ref.layers[l].layer->params[p].name);
                        same &= same_bits(what, name, got.layers[l].dw[p],
                                          ref.layers[l].dw[p],
                                          ref.layers[l].layer->params[p].count);
                    }
                CU_ASSERT(same);
            }
            cnb_net_free(&got);
            cnb_conf_free(&got_conf);
            cnb_net_free(&ref);
            cnb_conf_free(&ref_conf);
        }
    }
    CU_ASSERT(tested > 0);
}

void suite_pool(void)
{
    static const test_case cases[] = {
        {"conv kernels: the same bits when the caller takes every item", test_conv},
        {"lenet5 and alexnet step: the same bits when the caller takes every item",
         test_step},
        {NULL, NULL},
    };
    test_add_suite("pool", cases);
}
