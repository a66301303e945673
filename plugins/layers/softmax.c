/*
 * softmax.c - layer plugin "softmax": the loss layer. Forward gives class probabilities
 * and the mean cross-entropy against the batch labels; backward gives
 * (p - onehot(label)) / (number of real labels). Must come last. No keys.
 */
#include "kernel_layer.h"

static const char *const no_keys[] = {NULL};

static int softmax_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in,
                          cnb_layer **out)
{
    kernel_layer *l = kernel_layer_new(host, ctx, CNB_OP_SOFTMAX_XENT, in);
    if (!l)
        return CNB_ENOMEM;
    l->base.flops = 3.0 * in.c * in.h * in.w;
    return kernel_layer_done(l, in, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("softmax", "1.0.0", "softmax with cross-entropy loss (last layer)",
                   .flags = CNB_LAYER_LOSS | CNB_LAYER_KERNEL_IO,
                   .keys = no_keys,
                   .create = softmax_create));
