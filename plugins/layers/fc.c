/*
 * fc.c - layer plugin "fc": fully connected (inner product) with bias. Takes any input
 * shape, flattened to C*H*W; gives (outputs, 1, 1). Keys: outputs (required).
 */
#include "kernel_layer.h"

static const char *const fc_keys[] = {"outputs", NULL};

static int fc_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    int outputs;
    if (host->param_int(ctx, "outputs", 1, 0, &outputs))
        return CNB_EINVAL;
    if (outputs < 1)
        return host->layer_error(ctx, "outputs", "outputs must be >= 1 (got %d)", outputs);
    kernel_layer *l = kernel_layer_new(host, ctx, CNB_OP_INNER_PRODUCT, in);
    if (!l)
        return CNB_ENOMEM;
    int fan = in.c * in.h * in.w;
    l->base.n_params = 2;
    l->base.params[0] = (cnb_param_spec){"weights", (size_t)outputs * fan, fan, outputs, 0};
    l->base.params[1] = (cnb_param_spec){"bias", (size_t)outputs, fan, outputs, 1};
    l->base.flops = 2.0 * outputs * fan;
    return kernel_layer_done(l, (cnb_shape){outputs, 1, 1}, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("fc", "1.0.0", "fully connected layer (outputs)",
                   .flags = CNB_LAYER_KERNEL_IO,
                   .keys = fc_keys,
                   .create = fc_create));
