/*
 * conv.c - layer plugin "conv": 2-D convolution with bias.
 * Keys: filters (required), kernel (required, square), stride (1), pad (0).
 * Weights (filters, C, kernel, kernel), bias (filters).
 */
#include "kernel_layer.h"

static const char *const conv_keys[] = {"filters", "kernel", "stride", "pad", NULL};

static int conv_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    int filters, k, s, p, oh = 0, ow = 0;
    if (host->param_int(ctx, "filters", 1, 0, &filters) ||
        host->param_int(ctx, "kernel", 1, 0, &k) || host->param_int(ctx, "stride", 0, 1, &s) ||
        host->param_int(ctx, "pad", 0, 0, &p))
        return CNB_EINVAL;
    if (filters < 1)
        return host->layer_error(ctx, "filters", "filters must be >= 1 (got %d)", filters);
    if (window_out(host, ctx, "height", in.h, k, s, p, &oh) ||
        window_out(host, ctx, "width", in.w, k, s, p, &ow))
        return CNB_EINVAL;

    kernel_layer *l = kernel_layer_new(host, ctx, CNB_OP_CONV, in);
    if (!l)
        return CNB_ENOMEM;
    int fan = in.c * k * k;
    l->base.n_params = 2;
    l->base.params[0] = (cnb_param_spec){"weights", (size_t)filters * fan, fan, filters * k * k, 0};
    l->base.params[1] = (cnb_param_spec){"bias", (size_t)filters, fan, filters * k * k, 1};
    l->base.flops = 2.0 * filters * fan * oh * ow;
    l->desc.u.conv.kh = l->desc.u.conv.kw = k;
    l->desc.u.conv.sh = l->desc.u.conv.sw = s;
    l->desc.u.conv.ph = l->desc.u.conv.pw = p;
    return kernel_layer_done(l, (cnb_shape){filters, oh, ow}, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("conv", "1.0.0", "2-D convolution (filters, kernel, stride, pad)",
                   .flags = CNB_LAYER_KERNEL_IO,
                   .keys = conv_keys,
                   .create = conv_create));
