/*
 * act.c - layer plugins "act.sigmoid" and "act.relu": element-wise non-linearities.
 * No keys. ReLU asks for He initialisation of the learnable layer before it; sigmoid
 * leaves it at Xavier.
 */
#include "kernel_layer.h"

static const char *const no_keys[] = {NULL};

static int act_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_op op,
                      double flops_per_value, cnb_layer **out)
{
    kernel_layer *l = kernel_layer_new(host, ctx, op, in);
    if (!l)
        return CNB_ENOMEM;
    l->base.flops = flops_per_value * in.c * in.h * in.w;
    return kernel_layer_done(l, in, out);
}

static int sigmoid_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in,
                          cnb_layer **out)
{
    return act_create(host, ctx, in, CNB_OP_SIGMOID, 4.0, out);
}

static int relu_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    return act_create(host, ctx, in, CNB_OP_RELU, 1.0, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("act.sigmoid", "1.0.0", "logistic sigmoid 1/(1+exp(-x))",
                   .flags = CNB_LAYER_ACTIVATION | CNB_LAYER_KERNEL_IO,
                   .keys = no_keys,
                   .create = sigmoid_create),
    CNB_LAYER_DESC("act.relu", "1.0.0", "rectified linear unit max(0, x)",
                   .flags = CNB_LAYER_ACTIVATION | CNB_LAYER_INIT_HE | CNB_LAYER_KERNEL_IO,
                   .keys = no_keys,
                   .create = relu_create));
