/* gradcheck.c - central differences against a layer's backward; see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "net.h"
#include "rng.h"


static int fail(char *err, size_t errlen, int code, const char *fmt, ...) CNB_PRINTF(4, 5);

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* L for the current x and parameters; NAN when forward fails. */
double cnb_layer_harness_loss(cnb_layer_harness *h)
{
    float loss = 0.0f;
    cnb_io io = {.train = 1, .x = h->x, .y = h->y, .w = h->L.w, .dw = h->L.dw,
                 .labels = h->labels, .loss = &loss};
    struct cnb_rng saved = h->L.ctx.rng;
    int rc = h->L.layer->forward(h->L.layer, &io);
    h->L.ctx.rng = saved; /* the same dropout mask next time */
    if (rc != CNB_OK)
        return NAN;
    if (h->L.desc->flags & CNB_LAYER_LOSS)
        return loss;
    double l = 0.0;
    for (size_t i = 0; i < h->ny; i++)
        l += (double)h->y[i] * h->r[i];
    return l;
}

static float *fresh(size_t n) { return cnb_alloc(n * sizeof(float)); }

void cnb_layer_harness_free(cnb_layer_harness *h)
{
    if (h->L.layer)
        h->L.layer->destroy(h->L.layer);
    for (int p = 0; p < CNB_MAX_PARAMS; p++)
        cnb_free(h->L.w[p]), cnb_free(h->L.dw[p]);
    cnb_free(h->x), cnb_free(h->dx), cnb_free(h->y), cnb_free(h->r);
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
        return fail(err, errlen, CNB_EINVAL, "gradcheck: the layer section does not parse: %s",
                    cnb_last_error());
    const cnb_section *s = &h->conf.sec[0];
    const cnb_kv *type = cnb_section_get(s, "type");
    h->L.desc = type ? cnb_registry_layer(reg, type->value) : NULL;
    if (!h->L.desc)
        return fail(err, errlen, CNB_EINVAL, "gradcheck: no layer plugin '%s'",
                    type ? type->value : "(no type key)");
    h->net.model = &h->conf;
    h->net.reg = reg;
    h->net.input = in;
    int rc = cnb_net_bind(&h->net, backend ? backend : "naive", 1, h->batch);
    if (rc != CNB_OK)
        return fail(err, errlen, rc, "gradcheck: backend %s: %s", backend ? backend : "naive",
                    cnb_last_error());
    h->L.name = s->name;
    h->L.ctx.net = &h->net;
    h->L.ctx.sec = s;
    cnb_rng_seed(&h->L.ctx.rng, seed, CNB_STREAM_LAYER);
    rc = h->L.desc->create(cnb_host_services(), &h->L.ctx, in, &h->L.layer);
    if (rc == CNB_OK && !h->L.layer)
        rc = CNB_EINVAL;
    if (rc != CNB_OK)
        return fail(err, errlen, rc, "gradcheck: layer %s on input %dx%dx%d: create returned "
                    "%d: %s", type->value, in.h, in.w, in.c, rc, cnb_last_error());
    if ((rc = h->L.layer->bind(h->L.layer, h->batch)) != CNB_OK)
        return fail(err, errlen, rc, "gradcheck: layer %s: bind(batch %d) returned %d: %s",
                    type->value, h->batch, rc, cnb_last_error());

    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_DATA);
    for (int p = 0; p < h->L.layer->n_params; p++) {
        size_t n = h->L.layer->params[p].count;
        if (!(h->L.w[p] = fresh(n)) || !(h->L.dw[p] = fresh(n)))
            return fail(err, errlen, CNB_ENOMEM, "gradcheck: out of memory");
        for (size_t k = 0; k < n; k++)
            h->L.w[p][k] = 0.5f * cnb_rng_normal(&rng);
    }
    h->nx = (size_t)h->batch * cnb_shape_size(in);
    h->ny = (size_t)h->batch * cnb_shape_size(h->L.layer->out);
    h->x = fresh(h->nx), h->dx = fresh(h->nx), h->y = fresh(h->ny), h->r = fresh(h->ny);
    h->labels = calloc((size_t)h->batch, sizeof *h->labels);
    if (!h->x || !h->dx || !h->y || !h->r || !h->labels)
        return fail(err, errlen, CNB_ENOMEM, "gradcheck: out of memory");
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
        double lp = cnb_layer_harness_loss(h);
        v[i] = keep - eps;
        double lm = cnb_layer_harness_loss(h);
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
    float *dx = fresh(h.nx), *dw = NULL;
    if (!dx) {
        rc = fail(err, errlen, CNB_ENOMEM, "gradcheck: out of memory");
        goto out;
    }
    if (isnan(cnb_layer_harness_loss(&h))) {
        rc = fail(err, errlen, CNB_EINVAL, "gradcheck: layer %s: forward failed: %s", h.L.name,
                  cnb_last_error());
        goto out_dx;
    }
    cnb_io io = {.train = 1, .x = h.x, .y = h.y, .dy = h.r, .dx = h.dx, .w = h.L.w,
                 .dw = h.L.dw, .labels = h.labels};
    if ((rc = h.L.layer->backward(h.L.layer, &io)) != CNB_OK) {
        fail(err, errlen, rc, "gradcheck: layer %s: backward returned %d: %s", h.L.name, rc,
             cnb_last_error());
        goto out_dx;
    }
    /* copies: compare() re-runs forward, which must not disturb what backward wrote */
    memcpy(dx, h.dx, h.nx * sizeof(float));
    compare(&h, "x", h.x, dx, h.nx, eps, report, res);
    for (int p = 0; p < h.L.layer->n_params; p++) {
        size_t n = h.L.layer->params[p].count;
        if (!(dw = fresh(n))) {
            rc = fail(err, errlen, CNB_ENOMEM, "gradcheck: out of memory");
            break;
        }
        memcpy(dw, h.L.dw[p], n * sizeof(float));
        compare(&h, h.L.layer->params[p].name, h.L.w[p], dw, n, eps, report, res);
        cnb_free(dw);
    }
out_dx:
    cnb_free(dx);
out:
    cnb_layer_harness_free(&h);
    return rc;
}
