/*
 * dropout.c - layer plugin "dropout": inverted dropout. In training each value is kept
 * with probability 1 - ratio and scaled by 1 / (1 - ratio), the mask drawn from the
 * layer's seeded stream; at evaluation it is the identity, so nothing changes at test
 * time. Keys: ratio (0.5, in [0, 1)). Plain C, no backend kernel.
 */
#include <string.h>

#include <cnnbench/layer.h>

typedef struct dropout {
    cnb_layer base;
    const cnb_host *host;
    cnb_layer_ctx *ctx;
    float ratio;
    size_t values;  /* N * C * H * W               */
    float *mask;    /* (N, C, H, W): 0 or 1/(1-p)  */
} dropout;

static const char *const dropout_keys[] = {"ratio", NULL};

static int dropout_bind(cnb_layer *self, int batch)
{
    dropout *l = (dropout *)self;
    l->host->free(l->mask);
    l->values = (size_t)batch * self->out.c * self->out.h * self->out.w;
    l->mask = l->host->alloc(l->values * sizeof(float));
    return l->mask ? 0 : CNB_ENOMEM;
}

static int dropout_forward(cnb_layer *self, const cnb_io *io)
{
    dropout *l = (dropout *)self;
    if (!io->train || l->ratio == 0.0f) {
        memcpy(io->y, io->x, l->values * sizeof(float));
        return 0;
    }
    cnb_rng *rng = l->host->layer_rng(l->ctx);
    float scale = 1.0f / (1.0f - l->ratio);
    for (size_t i = 0; i < l->values; i++) {
        l->mask[i] = l->host->rng_uniform(rng) < l->ratio ? 0.0f : scale;
        io->y[i] = io->x[i] * l->mask[i];
    }
    return 0;
}

/* Uses the mask of the latest training forward. */
static int dropout_backward(cnb_layer *self, const cnb_io *io)
{
    dropout *l = (dropout *)self;
    if (!io->dx)
        return 0;
    if (l->ratio == 0.0f) {
        memcpy(io->dx, io->dy, l->values * sizeof(float));
        return 0;
    }
    for (size_t i = 0; i < l->values; i++)
        io->dx[i] = io->dy[i] * l->mask[i];
    return 0;
}

static void dropout_destroy(cnb_layer *self)
{
    dropout *l = (dropout *)self;
    l->host->free(l->mask);
    l->host->free(l);
}

static int dropout_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in,
                          cnb_layer **out)
{
    float ratio;
    if (host->param_float(ctx, "ratio", 0, 0.5f, &ratio))
        return CNB_EINVAL;
    if (!(ratio >= 0.0f && ratio < 1.0f))
        return host->layer_error(ctx, "ratio", "ratio must be in [0, 1) (got %g)", ratio);
    dropout *l = host->alloc(sizeof *l);
    if (!l)
        return CNB_ENOMEM;
    l->host = host;
    l->ctx = ctx;
    l->ratio = ratio;
    l->base = CNB_LAYER_INIT(.bind = dropout_bind, .forward = dropout_forward,
                             .backward = dropout_backward, .destroy = dropout_destroy,
                             .out = in, .flops = (double)in.c * in.h * in.w);
    *out = &l->base;
    return 0;
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("dropout", "1.0.0", "inverted dropout (ratio), identity at evaluation",
                   .keys = dropout_keys,
                   .create = dropout_create));
