/*
 * test_gradcheck.c - every layer plugin's backward against central differences of its
 * forward (core/src/gradcheck.c: L = sum(y * R), the softmax layer's own cross-entropy,
 * dropout with a fixed mask), plus dropout's ratio, scaling and evaluation mode.
 */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "log.h"
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

static void gradcheck(const char *section, cnb_shape in, float eps)
{
    cnb_gradcheck_result res;
    char err[512] = "";
    int rc = cnb_gradcheck(test_registry(), section, in, BATCH, "naive", eps, 7, stderr, &res,
                           err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(res.checked > 0);
    CU_ASSERT_EQUAL(res.bad, 0);
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
    cnb_layer_harness h;
    char err[512];
    int rc = cnb_layer_harness_init(&h, test_registry(), "[d]\ntype = dropout\nratio = 0.25\n",
                                    (cnb_shape){50, 10, 10}, BATCH, "naive", 3, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
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
    cnb_layer_harness_free(&h);
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
