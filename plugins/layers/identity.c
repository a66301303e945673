/*
 * identity.c - layer plugins "flatten" and "none". Both copy values through unchanged,
 * and the host runs neither's copies where it can do without. flatten reshapes (C, H, W)
 * to (C*H*W, 1, 1) between convolutions and fully connected layers; the host takes its
 * output as a view of its input (CNB_LAYER_VIEW: its copies run only as a network's
 * first layer). none keeps the shape and stands in a model slot that an ablation
 * switches off ("without LRN", "without dropout"), whose keys it ignores
 * (CNB_LAYER_STANDS_IN: an `alpha = ${lrn_alpha}` beside `type = ${lrn}` serves both
 * arms); the host leaves it out of the network it runs (CNB_LAYER_IDENTITY). flatten
 * has no keys. Plain C, no backend kernel.
 */
#include <string.h>

#include <cnnbench/layer.h>

typedef struct copy_layer {
    cnb_layer base;
    const cnb_host *host;
    size_t values; /* N * C * H * W, known at bind */
} copy_layer;

static const char *const no_keys[] = {NULL};

static int copy_bind(cnb_layer *self, int batch)
{
    copy_layer *l = (copy_layer *)self;
    l->values = (size_t)batch * self->out.c * self->out.h * self->out.w;
    return 0;
}

static int copy_forward(cnb_layer *self, const cnb_io *io)
{
    copy_layer *l = (copy_layer *)self;
    memcpy(io->y, io->x, l->values * sizeof(float));
    return 0;
}

static int copy_backward(cnb_layer *self, const cnb_io *io)
{
    copy_layer *l = (copy_layer *)self;
    if (io->dx)
        memcpy(io->dx, io->dy, l->values * sizeof(float));
    return 0;
}

static void copy_destroy(cnb_layer *self) { ((copy_layer *)self)->host->free(self); }

static int copy_create(const cnb_host *host, cnb_shape out_shape, cnb_layer **out)
{
    copy_layer *l = host->alloc(sizeof *l);
    if (!l)
        return CNB_ENOMEM;
    l->host = host;
    l->base = CNB_LAYER_INIT(.bind = copy_bind, .forward = copy_forward,
                             .backward = copy_backward, .destroy = copy_destroy,
                             .out = out_shape);
    *out = &l->base;
    return 0;
}

static int flatten_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in,
                          cnb_layer **out)
{
    (void)ctx;
    return copy_create(host, (cnb_shape){in.c * in.h * in.w, 1, 1}, out);
}

static int none_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    (void)ctx;
    return copy_create(host, in, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("flatten", "1.0.0", "reshape (C,H,W) to (C*H*W,1,1)",
                   .flags = CNB_LAYER_VIEW, .keys = no_keys, .create = flatten_create),
    CNB_LAYER_DESC("none", "1.0.0", "identity: a switched-off slot (no LRN, no dropout)",
                   .flags = CNB_LAYER_STANDS_IN | CNB_LAYER_IDENTITY, .create = none_create));
