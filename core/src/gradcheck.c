/* gradcheck.c - central differences against a layer's backward; see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "checkdata.h"
#include "errors.h"
#include "net.h"
#include "rng.h"


#define SENTINEL_BITS 0x7fc0a11du /* around every buffer the layer sees (a NaN payload) */

static void poison(const cnb_layer_harness *h, float *p, size_t n)
{
    if (p && !h->timing)
        cnb_fill_bits(p, n, CNB_POISON_BITS);
}

typedef struct guarded {
    char name[40];
    float *p;
    size_t n;
} guarded;

/* Record the first write outside one of the layer's buffers, made by `call`. */
static void guards(cnb_layer_harness *h, const char *call)
{
    guarded b[4 + 2 * CNB_MAX_PARAMS] = {
        {"x", h->x, h->nx}, {"y", h->y, h->ny}, {"dy", h->r, h->ny}, {"dx", h->dx, h->nx}};
    int nb = 4;
    for (int p = 0; h->L.layer && p < h->L.layer->n_params; p++) {
        const cnb_param_spec *ps = &h->L.layer->params[p];
        b[nb] = (guarded){.p = h->L.w[p], .n = ps->count};
        snprintf(b[nb++].name, sizeof b[0].name, "%s", ps->name);
        b[nb] = (guarded){.p = h->L.dw[p], .n = ps->count};
        snprintf(b[nb++].name, sizeof b[0].name, "d%s", ps->name);
    }
    for (int i = 0; i < nb; i++) {
        uint32_t bits;
        int at = b[i].p ? cnb_gbuf_trampled(b[i].p, b[i].n, SENTINEL_BITS, &bits) : 0;
        if (!at)
            continue;
        if (h->stray++ == 0)
            snprintf(h->stray_at, sizeof h->stray_at, "%.20s wrote %.39s[%ld], %s its %zu floats "
                     "(sentinel 0x%08x became 0x%08x)", call, b[i].name,
                     at < 0 ? (long)at : (long)b[i].n + at - 1,
                     at < 0 ? "before the start of" : "past the end of", b[i].n,
                     (unsigned)SENTINEL_BITS, (unsigned)bits);
        /* restore, so that one stray write is reported once */
        cnb_fill_bits(b[i].p - CNB_GUARD, CNB_GUARD, SENTINEL_BITS);
        cnb_fill_bits(b[i].p + b[i].n, CNB_GUARD, SENTINEL_BITS);
    }
}

/* L for the current x and parameters; NAN when forward fails. */
double cnb_layer_harness_loss(cnb_layer_harness *h, int *rc_out)
{
    float loss = 0.0f;
    cnb_io io = {.train = 1, .x = h->x, .y = h->y, .w = h->L.w, .dw = h->L.dw,
                 .labels = h->labels, .loss = &loss};
    struct cnb_rng saved = h->L.ctx.rng;
    poison(h, h->y, h->ny);
    int rc = h->L.layer->forward(h->L.layer, &io);
    h->L.ctx.rng = saved; /* the same dropout mask next time */
    guards(h, "forward");
    if (rc_out)
        *rc_out = rc;
    if (rc != CNB_OK && !h->failed)
        h->failed = rc;
    if (rc != CNB_OK)
        return NAN;
    if (h->L.desc->flags & CNB_LAYER_LOSS)
        return loss;
    double l = 0.0;
    for (size_t i = 0; i < h->ny; i++)
        l += (double)h->y[i] * h->r[i];
    return l;
}

int cnb_layer_harness_backward(cnb_layer_harness *h)
{
    cnb_io io = {.train = 1, .x = h->x, .y = h->y, .dy = h->r, .dx = h->dx, .w = h->L.w,
                 .dw = h->L.dw, .labels = h->labels};
    poison(h, h->dx, h->nx);
    for (int p = 0; p < h->L.layer->n_params; p++)
        poison(h, h->L.dw[p], h->L.layer->params[p].count);
    int rc = h->L.layer->backward(h->L.layer, &io);
    guards(h, "backward");
    return rc;
}

static float *fresh(size_t n) { return cnb_gbuf_new(n, SENTINEL_BITS); }

void cnb_layer_harness_free(cnb_layer_harness *h)
{
    if (h->L.layer && h->L.layer->destroy)
        h->L.layer->destroy(h->L.layer);
    for (int p = 0; p < CNB_MAX_PARAMS; p++)
        cnb_gbuf_free(h->L.w[p]), cnb_gbuf_free(h->L.dw[p]);
    cnb_gbuf_free(h->x), cnb_gbuf_free(h->dx), cnb_gbuf_free(h->y), cnb_gbuf_free(h->r);
    free(h->labels);
    cnb_net_free(&h->net);
    cnb_conf_free(&h->conf);
}

int cnb_layer_harness_init(cnb_layer_harness *h, const cnb_registry *reg, const char *section,
                           cnb_shape in, int batch, const char *backend, uint64_t seed,
                           char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->batch = batch;
    if (cnb_conf_load_string(&h->conf, "gradcheck.ini", section) != 0 || h->conf.n < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "gradcheck: the layer section does not parse: "
                        "%s", cnb_last_error());
    h->net.model = &h->conf;
    h->net.reg = reg;
    h->net.input = in;
    if (!backend)
        backend = CNB_REFERENCE_BACKEND;
    int rc = cnb_net_bind(&h->net, backend, 1, h->batch);
    if (rc != CNB_OK)
        return cnb_fail(rc, err, errlen, "gradcheck: backend %s: %s", backend, cnb_last_error());
    h->L.ctx.net = &h->net;
    cnb_rng_seed(&h->L.ctx.rng, seed, CNB_STREAM_LAYER);
    if (cnb_net_layer_create(&h->net, &h->L, &h->conf.sec[0], in) != 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "gradcheck: on input %dx%dx%d: %s", in.h, in.w,
                        in.c, cnb_last_error());
    if ((rc = h->L.layer->bind(h->L.layer, h->batch)) != CNB_OK)
        return cnb_fail(rc, err, errlen, "gradcheck: layer %s: bind(batch %d) returned %s: %s",
                        h->L.desc->hdr.name, h->batch, cnb_status_name(rc), cnb_last_error());

    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_DATA);
    for (int p = 0; p < h->L.layer->n_params; p++) {
        size_t n = h->L.layer->params[p].count;
        h->L.w[p] = fresh(n), h->L.dw[p] = fresh(n);
        for (size_t k = 0; k < n; k++)
            h->L.w[p][k] = 0.5f * cnb_rng_normal(&rng);
    }
    h->nx = (size_t)h->batch * cnb_shape_size(in);
    h->ny = (size_t)h->batch * cnb_shape_size(h->L.layer->out);
    h->x = fresh(h->nx), h->dx = fresh(h->nx), h->y = fresh(h->ny), h->r = fresh(h->ny);
    h->labels = calloc((size_t)h->batch, sizeof *h->labels);
    if (!h->labels)
        return cnb_fail(CNB_ENOMEM, err, errlen, "gradcheck: out of memory");
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
    for (int b = 0; b < h->batch; b++)
        h->labels[b] = (int32_t)cnb_rng_below(&rng, (uint32_t)cnb_shape_size(h->L.layer->out));
    return CNB_OK;
}

/* Compare analytic and numeric derivatives of L by every element of `v`. */
static void compare(cnb_layer_harness *h, const char *what, float *v, const float *analytic,
                    size_t n, float eps, FILE *report, cnb_gradcheck_result *res)
{
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + eps;
        double lp = cnb_layer_harness_loss(h, NULL);
        v[i] = keep - eps;
        double lm = cnb_layer_harness_loss(h, NULL);
        v[i] = keep;
        double numeric = (lp - lm) / (2.0 * eps), a = analytic[i];
        double tol = 1e-2 * fmax(fabs(a), fabs(numeric)) + 2e-3;
        double ratio = fabs(a - numeric) / tol;
        res->checked++;
        if (!(ratio <= res->worst)) { /* NaN too */
            res->worst = isnan(ratio) ? INFINITY : ratio;
            snprintf(res->worst_at, sizeof res->worst_at, "d%s[%zu]", what, i);
        }
        if (ratio <= 1.0)
            continue;
        res->bad++;
        if (report && shown++ < 3)
            fprintf(report, "  [%s] d%s[%zu]: backward %.6g, central difference %.6g\n",
                    h->L.name, what, i, a, numeric);
    }
}

int cnb_gradcheck(const cnb_registry *reg, const char *section, cnb_shape in, int batch,
                  const char *backend, float eps, uint64_t seed, FILE *report,
                  cnb_gradcheck_result *res, char *err, size_t errlen)
{
    cnb_layer_harness h;
    memset(res, 0, sizeof *res);
    int rc = cnb_layer_harness_init(&h, reg, section, in, batch, backend, seed, err, errlen);
    if (rc != CNB_OK)
        goto out;
    if (isnan(cnb_layer_harness_loss(&h, &rc)) && rc != CNB_OK) {
        rc = cnb_fail(rc, err, errlen, "gradcheck: layer %s: forward returned %s: %s", h.L.name,
                      cnb_status_name(rc), cnb_last_error());
        goto out;
    }
    if ((rc = cnb_layer_harness_backward(&h)) != CNB_OK) {
        cnb_fail(rc, err, errlen, "gradcheck: layer %s: backward returned %s: %s", h.L.name,
                 cnb_status_name(rc), cnb_last_error());
        goto out;
    }
    /* copies: compare() re-runs forward, which must not disturb what backward wrote */
    float *dx = fresh(h.nx);
    memcpy(dx, h.dx, h.nx * sizeof(float));
    compare(&h, "x", h.x, dx, h.nx, eps, report, res);
    cnb_gbuf_free(dx);
    for (int p = 0; p < h.L.layer->n_params; p++) {
        size_t n = h.L.layer->params[p].count;
        float *dw = fresh(n);
        memcpy(dw, h.L.dw[p], n * sizeof(float));
        compare(&h, h.L.layer->params[p].name, h.L.w[p], dw, n, eps, report, res);
        cnb_gbuf_free(dw);
    }
    if (h.failed) {
        rc = cnb_fail(h.failed, err, errlen, "gradcheck: layer %s: forward returned %s during "
                      "the central differences: %s", h.L.name, cnb_status_name(h.failed),
                      cnb_last_error());
        goto out;
    }
    res->stray = h.stray;
    snprintf(res->stray_at, sizeof res->stray_at, "%s", h.stray_at);
    if (h.stray && report)
        fprintf(report, "  [%s] stray write: %s\n", h.L.name, h.stray_at);
out:
    cnb_layer_harness_free(&h);
    return rc;
}
