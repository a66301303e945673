/*
 * lrn.c - layer plugin "lrn": local response normalisation across channels,
 * b_c = a_c / (k + alpha * sum_{c' near c} a_c'^2)^beta over `size` channels centred on c.
 * Keys (AlexNet's values as defaults): size (5, odd), alpha (1e-4), beta (0.75), k (2).
 */
#include "kernel_layer.h"

static const char *const lrn_keys[] = {"size", "alpha", "beta", "k", NULL};

static int lrn_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out)
{
    int size;
    float alpha, beta, k;
    if (host->param_int(ctx, "size", 0, 5, &size) ||
        host->param_float(ctx, "alpha", 0, 1e-4f, &alpha) ||
        host->param_float(ctx, "beta", 0, 0.75f, &beta) || host->param_float(ctx, "k", 0, 2.0f, &k))
        return CNB_EINVAL;
    if (size < 1 || size % 2 == 0)
        return host->layer_error(ctx, "size", "size must be a positive odd number (got %d)", size);
    if (k <= 0.0f || alpha < 0.0f || beta < 0.0f)
        return host->layer_error(ctx, "k", "need k > 0, alpha >= 0, beta >= 0");
    kernel_layer *l = kernel_layer_new(host, ctx, CNB_OP_LRN, in);
    if (!l)
        return CNB_ENOMEM;
    l->base.flops = (double)in.c * in.h * in.w * (2.0 * size + 4.0);
    l->desc.u.lrn.size = size;
    l->desc.u.lrn.alpha = alpha;
    l->desc.u.lrn.beta = beta;
    l->desc.u.lrn.k = k;
    return kernel_layer_done(l, in, out);
}

CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("lrn", "1.0.0",
                   "local response normalisation across channels (size, alpha, beta, k)",
                   .flags = CNB_LAYER_KERNEL_IO,
                   .keys = lrn_keys,
                   .create = lrn_create));
