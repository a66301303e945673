/*
 * test_gradcheck.c - every layer plugin's backward against central differences of its
 * forward, through the same host services and naive kernels a run uses. Loss
 * L = sum(y * R) for a fixed random R (so dy = R); the softmax layer's own cross-entropy.
 * Dropout is checked with a fixed mask: its stream is reset before every forward.
 * Inputs keep away from the ReLU kink and from max-pool ties.
 */
#include <math.h>
#include <string.h>

#include "host.h"
#include "net.h"
#include "testutil.h"

#define BATCH 2

static int setup(void)
{
    cnb_log_set_level(CNB_LOG_ERROR); /* odd test geometries warn by design */
    return 0;
}

static int teardown(void)
{
    cnb_log_set_level(CNB_LOG_INFO);
    return 0;
}

typedef struct harness {
    cnb_conf conf;
    cnb_net net;        /* holds the backend; no layers of its own */
    cnb_net_layer L;    /* the layer under test */
    size_t nx, ny;
    float *x, *y, *dy, *dx, *r;
    int32_t labels[BATCH];
} harness;

static double loss_of(harness *h, int train)
{
    float loss = 0.0f;
    cnb_io io = {.train = train, .x = h->x, .y = h->y, .w = h->L.w, .dw = h->L.dw,
                 .labels = h->labels, .loss = &loss};
    struct cnb_rng saved = h->L.ctx.rng;
    CU_ASSERT_EQUAL_FATAL(h->L.layer->forward(h->L.layer, &io), 0);
    h->L.ctx.rng = saved; /* the same dropout mask next time */
    if (h->L.desc->flags & CNB_LAYER_LOSS)
        return loss;
    double l = 0.0;
    for (size_t i = 0; i < h->ny; i++)
        l += (double)h->y[i] * h->r[i];
    return l;
}

static float *fresh(size_t n)
{
    float *p = cnb_alloc(n * sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Create the layer from `section` text on input `in`, with random parameters. */
static void setup_layer(harness *h, const char *section, cnb_shape in, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    CU_ASSERT_EQUAL_FATAL(cnb_conf_load_string(&h->conf, "gradcheck.ini", section), 0);
    h->net.model = &h->conf;
    h->net.reg = test_registry();
    h->net.input = in;
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&h->net, "naive", 1, BATCH), 0);
    const cnb_section *s = &h->conf.sec[0];
    h->L.name = s->name;
    h->L.desc = cnb_registry_layer(test_registry(), cnb_section_get(s, "type")->value);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->L.desc);
    h->L.ctx.net = &h->net;
    h->L.ctx.sec = s;
    cnb_rng_seed(&h->L.ctx.rng, seed, CNB_STREAM_LAYER);
    CU_ASSERT_EQUAL_FATAL(h->L.desc->create(cnb_host_services(), &h->L.ctx, in, &h->L.layer), 0);
    CU_ASSERT_EQUAL_FATAL(h->L.layer->bind(h->L.layer, BATCH), 0);
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, 99);
    for (int p = 0; p < h->L.layer->n_params; p++) {
        size_t n = h->L.layer->params[p].count;
        h->L.w[p] = fresh(n);
        h->L.dw[p] = fresh(n);
        for (size_t k = 0; k < n; k++)
            h->L.w[p][k] = 0.5f * cnb_rng_normal(&rng);
    }
    h->nx = BATCH * cnb_shape_size(in);
    h->ny = BATCH * cnb_shape_size(h->L.layer->out);
    h->x = fresh(h->nx), h->dx = fresh(h->nx);
    h->y = fresh(h->ny), h->dy = fresh(h->ny), h->r = fresh(h->ny);
    /* distinct values 0.05 apart, shuffled, centred, none within 0.025 of zero */
    for (size_t i = 0; i < h->nx; i++)
        h->x[i] = 0.05f * ((float)i - (float)h->nx / 2.0f) + 0.025f;
    for (size_t i = h->nx - 1; i > 0; i--) {
        size_t j = cnb_rng_below(&rng, (uint32_t)i + 1);
        float t = h->x[i];
        h->x[i] = h->x[j], h->x[j] = t;
    }
    for (size_t i = 0; i < h->ny; i++)
        h->r[i] = cnb_rng_normal(&rng);
    for (int b = 0; b < BATCH; b++)
        h->labels[b] = (int32_t)cnb_rng_below(&rng, (uint32_t)cnb_shape_size(h->L.layer->out));
}

static void teardown_layer(harness *h)
{
    h->L.layer->destroy(h->L.layer);
    for (int p = 0; p < CNB_MAX_PARAMS; p++)
        cnb_free(h->L.w[p]), cnb_free(h->L.dw[p]);
    cnb_free(h->x), cnb_free(h->dx), cnb_free(h->y), cnb_free(h->dy), cnb_free(h->r);
    cnb_net_free(&h->net);
    cnb_conf_free(&h->conf);
}

/* Compare analytic and numeric derivatives of L by every element of `v`. */
static int check(harness *h, const char *what, float *v, const float *analytic, size_t n,
                 float eps)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + eps;
        double lp = loss_of(h, 1);
        v[i] = keep - eps;
        double lm = loss_of(h, 1);
        v[i] = keep;
        double numeric = (lp - lm) / (2.0 * eps), a = analytic[i];
        double tol = 1e-2 * fmax(fabs(a), fabs(numeric)) + 2e-3;
        if (fabs(a - numeric) > tol && bad++ < 3)
            fprintf(stderr, "\n  [%s] d%s[%zu]: backward %.6g, central difference %.6g",
                    h->L.name, what, i, a, numeric);
    }
    CU_ASSERT_EQUAL(bad, 0);
    return bad;
}

static void gradcheck(const char *section, cnb_shape in, float eps)
{
    harness h;
    setup_layer(&h, section, in, 7);
    loss_of(&h, 1);
    memcpy(h.dy, h.r, h.ny * sizeof(float));
    cnb_io io = {.train = 1, .x = h.x, .y = h.y, .dy = h.dy, .dx = h.dx, .w = h.L.w,
                 .dw = h.L.dw, .labels = h.labels};
    CU_ASSERT_EQUAL_FATAL(h.L.layer->backward(h.L.layer, &io), 0);
    /* copies: check() re-runs forward, which must not disturb what backward wrote */
    float *dx = fresh(h.nx), *dw[CNB_MAX_PARAMS] = {0};
    memcpy(dx, h.dx, h.nx * sizeof(float));
    check(&h, "x", h.x, dx, h.nx, eps);
    for (int p = 0; p < h.L.layer->n_params; p++) {
        size_t n = h.L.layer->params[p].count;
        dw[p] = fresh(n);
        memcpy(dw[p], h.L.dw[p], n * sizeof(float));
        check(&h, h.L.layer->params[p].name, h.L.w[p], dw[p], n, eps);
        cnb_free(dw[p]);
    }
    cnb_free(dx);
    teardown_layer(&h);
}

static void test_conv(void)
{
    gradcheck("[c]\ntype = conv\nfilters = 3\nkernel = 3\nstride = 2\npad = 1\n",
              (cnb_shape){2, 7, 6}, 1e-2f);
    gradcheck("[c]\ntype = conv\nfilters = 2\nkernel = 5\n", (cnb_shape){1, 9, 9}, 1e-2f);
}

static void test_fc(void)
{
    gradcheck("[f]\ntype = fc\noutputs = 5\n", (cnb_shape){3, 2, 2}, 1e-2f);
}

static void test_pool_avg(void)
{
    gradcheck("[p]\ntype = pool.avg\nkernel = 2\n", (cnb_shape){2, 6, 6}, 1e-2f);
    gradcheck("[p]\ntype = pool.avg\nkernel = 3\nstride = 2\npad = 1\n", (cnb_shape){2, 7, 7},
              1e-2f);
}

static void test_pool_max(void)
{
    gradcheck("[p]\ntype = pool.max\nkernel = 2\n", (cnb_shape){2, 6, 6}, 1e-2f);
    gradcheck("[p]\ntype = pool.max\nkernel = 3\nstride = 2\n", (cnb_shape){3, 7, 7}, 1e-2f);
}

static void test_activations(void)
{
    gradcheck("[a]\ntype = act.sigmoid\n", (cnb_shape){2, 3, 5}, 1e-2f);
    gradcheck("[a]\ntype = act.relu\n", (cnb_shape){2, 3, 5}, 1e-2f);
}

static void test_lrn(void)
{
    /* alpha large enough that the cross-channel term matters */
    gradcheck("[n]\ntype = lrn\nsize = 5\nalpha = 0.05\nbeta = 0.75\nk = 2\n",
              (cnb_shape){7, 3, 3}, 1e-2f);
    gradcheck("[n]\ntype = lrn\nsize = 3\nalpha = 0.5\nbeta = 0.6\nk = 1\n",
              (cnb_shape){4, 2, 2}, 1e-2f);
}

static void test_dropout(void)
{
    gradcheck("[d]\ntype = dropout\nratio = 0.5\n", (cnb_shape){4, 3, 3}, 1e-2f);
}

static void test_softmax(void)
{
    gradcheck("[s]\ntype = softmax\n", (cnb_shape){7, 1, 1}, 1e-2f);
}

static void test_flatten_none(void)
{
    gradcheck("[f]\ntype = flatten\n", (cnb_shape){2, 3, 3}, 1e-2f);
    gradcheck("[n]\ntype = none\n", (cnb_shape){2, 3, 3}, 1e-2f);
}

/* Dropout: about `ratio` of the values zeroed, the rest scaled by 1/(1-p); identity in
 * evaluation; the same stream gives the same mask. */
static void test_dropout_semantics(void)
{
    harness h;
    setup_layer(&h, "[d]\ntype = dropout\nratio = 0.25\n", (cnb_shape){50, 10, 10}, 3);
    for (size_t i = 0; i < h.nx; i++)
        h.x[i] = 1.0f;
    cnb_io io = {.train = 1, .x = h.x, .y = h.y};
    CU_ASSERT_EQUAL(h.L.layer->forward(h.L.layer, &io), 0);
    size_t zeros = 0;
    for (size_t i = 0; i < h.ny; i++) {
        zeros += h.y[i] == 0.0f;
        CU_ASSERT_FATAL(h.y[i] == 0.0f || fabsf(h.y[i] - 1.0f / 0.75f) < 1e-6f);
    }
    CU_ASSERT_DOUBLE_EQUAL((double)zeros / (double)h.ny, 0.25, 0.02);
    io.train = 0;
    CU_ASSERT_EQUAL(h.L.layer->forward(h.L.layer, &io), 0);
    for (size_t i = 0; i < h.ny; i++)
        CU_ASSERT_FATAL(h.y[i] == 1.0f);
    teardown_layer(&h);
}

void suite_gradcheck(void)
{
    static const test_case cases[] = {
        {"conv", test_conv},
        {"fc", test_fc},
        {"pool.avg", test_pool_avg},
        {"pool.max (overlapping)", test_pool_max},
        {"act.sigmoid and act.relu", test_activations},
        {"lrn", test_lrn},
        {"dropout (fixed mask)", test_dropout},
        {"softmax cross-entropy", test_softmax},
        {"flatten and none", test_flatten_none},
        {"dropout ratio, scaling, evaluation", test_dropout_semantics},
        {NULL, NULL},
    };
    test_add_suite_fixture("gradcheck", setup, teardown, cases);
}
