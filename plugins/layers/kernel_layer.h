/*
 * kernel_layer.h - shared by the layer plugins whose work is one backend kernel (conv,
 * fc, pooling, activations, LRN, softmax). Header-only and private to plugins/layers:
 * each plugin still includes nothing of the core but the public headers.
 *
 * The layer's buffers map onto the kernel's arguments as CNB_LAYER_KERNEL_IO says
 * (cnb_layer_kernel_args in cnnbench/layer.h): params[0] is the weights, params[1] the
 * bias.
 */
#ifndef CNB_KERNEL_LAYER_H
#define CNB_KERNEL_LAYER_H

#include <cnnbench/layer.h>

typedef struct kernel_layer {
    cnb_layer base;        /* first: the host sees a cnb_layer        */
    const cnb_host *host;
    cnb_layer_ctx *ctx;
    cnb_op_desc desc;      /* batch filled in at bind                  */
    cnb_kernel *kernel;
} kernel_layer;

static inline int kernel_layer_bind(cnb_layer *self, int batch)
{
    kernel_layer *l = (kernel_layer *)self;
    if (l->kernel)
        l->kernel->destroy(l->kernel), l->kernel = NULL;
    l->desc.batch = batch;
    return l->host->kernel_create(l->ctx, &l->desc, &l->kernel);
}

static inline int kernel_layer_forward(cnb_layer *self, const cnb_io *io)
{
    kernel_layer *l = (kernel_layer *)self;
    const cnb_args a = cnb_layer_kernel_args(io, self->n_params, 0);
    return l->kernel->forward(l->kernel, &a);
}

static inline int kernel_layer_backward(cnb_layer *self, const cnb_io *io)
{
    kernel_layer *l = (kernel_layer *)self;
    const cnb_args a = cnb_layer_kernel_args(io, self->n_params, 1);
    return l->kernel->backward(l->kernel, &a);
}

static inline void kernel_layer_destroy(cnb_layer *self)
{
    kernel_layer *l = (kernel_layer *)self;
    if (l->kernel)
        l->kernel->destroy(l->kernel);
    l->host->free(l);
}

/* A kernel layer for `op` on input `in`; the caller fills out, params, flops, desc.u. */
static inline kernel_layer *kernel_layer_new(const cnb_host *host, cnb_layer_ctx *ctx,
                                             cnb_op op, cnb_shape in)
{
    kernel_layer *l = host->alloc(sizeof *l);
    if (!l)
        return NULL;
    l->host = host;
    l->ctx = ctx;
    l->desc.op = op;
    l->desc.src = in;
    l->base = CNB_LAYER_INIT(.bind = kernel_layer_bind, .forward = kernel_layer_forward,
                             .backward = kernel_layer_backward,
                             .destroy = kernel_layer_destroy);
    return l;
}

/* Finish: record the output shape in both the layer and the kernel descriptor. */
static inline int kernel_layer_done(kernel_layer *l, cnb_shape out, cnb_layer **result)
{
    l->base.out = out;
    l->desc.dst = out;
    *result = &l->base;
    return 0;
}

/*
 * Sliding-window geometry along one axis: O = floor((I - K + 2P) / S) + 1. An error when
 * the window does not fit the padded input or padding reaches a whole window; a warning
 * when (I - K + 2P) is not a multiple of S, as input rows are then never read (AlexNet's
 * 224 instead of 227).
 */
static inline int window_out(const cnb_host *host, cnb_layer_ctx *ctx, const char *axis, int in,
                             int k, int s, int p, int *out)
{
    if (k < 1 || s < 1 || p < 0)
        return host->layer_error(ctx, "kernel", "kernel and stride must be >= 1 and pad >= 0 "
                                 "(got kernel %d, stride %d, pad %d)", k, s, p);
    if (p >= k)
        return host->layer_error(ctx, "pad", "pad %d must be smaller than the kernel %d", p, k);
    if (k > in + 2 * p)
        return host->layer_error(ctx, "kernel",
                                 "window %d is larger than the padded input %s %d (%d + 2*%d); "
                                 "use a smaller kernel or more padding, or remove a pooling "
                                 "layer before it", k, axis, in + 2 * p, in, p);
    int span = in - k + 2 * p;
    if (span % s != 0)
        host->layer_warn(ctx, "stride",
                         "(I - K + 2P) = (%d - %d + 2*%d) = %d is not divisible by stride %d: "
                         "the last %d %s of the input are never read (AlexNet takes 227, not "
                         "224, for this reason)",
                         in, k, p, span, s, span % s, axis);
    *out = span / s + 1;
    return 0;
}

#endif
