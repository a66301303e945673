/*
 * gradcheck.h - a layer plugin's backward against central differences of its forward,
 * through the same host services and kernels a run uses; shared by the test suite and
 * `cnnbench check`.
 *
 * The loss is L = sum(y * R) for a fixed random R (so dy = R), or the layer's own loss
 * for a loss layer. Inputs are distinct values 0.05 apart, none within 0.025 of zero (away
 * from the ReLU kink and max-pool ties); parameters are N(0, 0.25). A layer's random
 * stream (dropout) is reset before every forward, so its mask stays fixed. An analytic
 * derivative a and a numeric one g agree when |a - g| <= 1e-2 max(|a|, |g|) + 2e-3.
 *
 * Every buffer the layer sees (x, y, dy, dx, parameters and their gradients) has
 * CNB_GUARD sentinel floats on each side, checked after every call: a write outside a
 * buffer is reported with the buffer, the call and the offset. Outputs (y before forward,
 * dx and the parameter gradients before backward) are NaN-poisoned, so a value the layer
 * leaves unwritten, or accumulates into, shows as a NaN derivative.
 *
 * Not here: no second-order effects (a kink crossed by eps shows as a mismatch, which
 * is why inputs keep away from them), no check of the forward itself (conformance does
 * that for the kernels).
 */
#ifndef CNB_GRADCHECK_H
#define CNB_GRADCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "net.h"
#include "registry.h"

/* One layer created outside a network, with its own inputs: what the check works on. */
typedef struct cnb_layer_harness {
    cnb_conf conf;
    cnb_net net;     /* holds the backend; no layers of its own */
    cnb_net_layer L; /* the layer under test                   */
    int batch;
    size_t nx, ny;
    float *x, *y, *dx, *r; /* input, output, input gradient, R (guard-banded) */
    int32_t *labels;
    int timing;            /* 1: no NaN poison before each call (benchmarks)  */
    int failed;            /* the first failing forward's status, or 0        */
    int stray;             /* writes outside a buffer found so far            */
    char stray_at[256];    /* the first: "backward wrote dx[48], past the end ..." */
} cnb_layer_harness;

/* Create and bind the layer of `section` with random parameters and the inputs described
 * above. 0, or an error with a message in err; free with cnb_layer_harness_free either
 * way. */
int cnb_layer_harness_init(cnb_layer_harness *h, const cnb_registry *reg, const char *section,
                           cnb_shape in, int batch, const char *backend, uint64_t seed,
                           char *err, size_t errlen);
void cnb_layer_harness_free(cnb_layer_harness *h);
/* Forward in training mode (the layer's stream restored afterwards); L, or NAN when
 * forward fails (*rc, when not NULL, says how). */
double cnb_layer_harness_loss(cnb_layer_harness *h, int *rc);
/* Backward into h->dx and h->L.dw (poisoned first); the layer's status. */
int cnb_layer_harness_backward(cnb_layer_harness *h);

typedef struct cnb_gradcheck_result {
    long checked;     /* derivatives compared                                  */
    long bad;         /* out of tolerance                                      */
    double worst;     /* largest |a - g| / tolerance                           */
    char worst_at[96]; /* "dweights[17]"                                      */
    int stray;         /* writes outside a buffer (see above): a failure too   */
    char stray_at[256];
} cnb_gradcheck_result;

/*
 * Create the layer described by `section` (model-file text: "[name]\ntype = conv\n...")
 * on per-sample input `in` with batch `batch`, its kernels on `backend` (NULL: naive),
 * and compare every derivative of L by the input and by each parameter. Mismatches are
 * printed to `report` (NULL: silent), at most 3 per tensor. Returns 0 when the check ran
 * (res->bad and res->stray are the verdict), or an error code with a message in err (the section does
 * not make a valid layer, the backend is missing, forward or backward failed).
 */
int cnb_gradcheck(const cnb_registry *reg, const char *section, cnb_shape in, int batch,
                  const char *backend, float eps, uint64_t seed, FILE *report,
                  cnb_gradcheck_result *res, char *err, size_t errlen);

#endif
