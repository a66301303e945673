/*
 * pool.c - layer plugins "pool.avg" and "pool.max" (one file, two variants).
 * Keys: kernel (required, square), stride (default: kernel), pad (0). Overlapping
 * windows (stride < kernel, AlexNet's 3x3 stride 2) are allowed. Average pooling divides
 * by kernel*kernel, padding included.
 */
#include "kernel_layer.h"

static const char *const pool_keys[] = {"kernel", "stride", "pad", NULL};

static int pool_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_op op,
                       cnb_layer **out)
{
    int k, s, p, oh = 0, ow = 0;
    if (host->param_int(ctx, "kernel", 1, 0, &k))
        return CNB_EINVAL;
    if (host->param_int(ctx, "stride", 0, k, &s) || host->param_int(ctx, "pad", 0, 0, &p))
        return CNB_EINVAL;
    if (window_out(host, ctx, "height", in.h, k, s, p, &oh) ||
        window_out(host, ctx, "width", in.w, k, s, p, &ow))
        return CNB_EINVAL;
    kernel_layer *l = kernel_layer_new(host, ctx, op, in);
    if (!l)
        return CNB_ENOMEM;
    l->base.flops = (double)in.c * oh * ow * k * k;
    l->desc.u.pool.kh = l->desc.u.pool.kw = k;
    l->desc.u.pool.sh = l->desc.u.pool.sw = s;
    l->desc.u.pool.ph = l->desc.u.pool.pw = p;
    return kernel_layer_done(l, (cnb_shape){in.c, oh, ow}, out);
}

static int avg_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    return pool_create(host, ctx, in, CNB_OP_POOL_AVG, out);
}

static int max_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    return pool_create(host, ctx, in, CNB_OP_POOL_MAX, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("pool.avg", "1.0.0", "average pooling (kernel, stride, pad)",
                   .flags = CNB_LAYER_KERNEL_IO,
                   .keys = pool_keys,
                   .create = avg_create),
    CNB_LAYER_DESC("pool.max", "1.0.0", "max pooling (kernel, stride, pad)",
                   .flags = CNB_LAYER_KERNEL_IO,
                   .keys = pool_keys,
                   .create = max_create));
