/*
 * cnnbench/op_check.h - the check every backend runs on an op descriptor before it builds
 * a kernel: every size >= 1; conv and pool windows sane and dst following
 * O = floor((I - K + 2P) / S) + 1; pooling keeps channels and max-pool padding stays
 * smaller than its window; inner product gives (K, 1, 1); LRN parameters valid; the
 * element-wise ops, LRN and softmax keep their shape; and the check of softmax_xent's
 * labels every backend runs in forward and backward. Header-only, so a plugin still
 * needs nothing but the public headers.
 */
#ifndef CNNBENCH_OP_CHECK_H
#define CNNBENCH_OP_CHECK_H

#include <math.h>
#include <stdio.h>

#include "cnnbench/backend.h"

static inline const char *cnb_op_name(cnb_op op)
{
    static const char *const names[CNB_OP_COUNT] = {
        "conv", "inner_product", "pool_max", "pool_avg", "sigmoid", "relu", "lrn",
        "softmax_xent"};
    return (unsigned)op < CNB_OP_COUNT ? names[op] : "unknown";
}

/* Output length along one axis; 0 when the window does not fit the padded input. */
static inline int cnb_out_len(int in, int k, int s, int p)
{
    return in + 2 * p < k ? 0 : (in + 2 * p - k) / s + 1;
}

static inline int cnb_check_window_(const cnb_op_desc *d, int kh, int kw, int sh, int sw,
                                    int ph, int pw, char *why, size_t len)
{
    const char *name = cnb_op_name(d->op);
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
        return snprintf(why, len, "%s: kernel %dx%d, stride %dx%d, padding %dx%d: kernel and "
                        "stride must be >= 1 and padding >= 0", name, kh, kw, sh, sw, ph, pw),
               CNB_EINVAL;
    int oh = cnb_out_len(d->src.h, kh, sh, ph), ow = cnb_out_len(d->src.w, kw, sw, pw);
    if (oh < 1 || ow < 1)
        return snprintf(why, len, "%s: kernel %dx%d does not fit src %dx%d padded by %dx%d",
                        name, kh, kw, d->src.h, d->src.w, ph, pw),
               CNB_EINVAL;
    if (d->dst.h != oh || d->dst.w != ow)
        return snprintf(why, len, "%s: dst is %dx%d but src %dx%d with kernel %dx%d, stride "
                        "%dx%d, padding %dx%d gives floor((I - K + 2P)/S) + 1 = %dx%d", name,
                        d->dst.h, d->dst.w, d->src.h, d->src.w, kh, kw, sh, sw, ph, pw, oh, ow),
               CNB_EINVAL;
    return CNB_OK;
}

/* CNB_OK; CNB_EINVAL with the reason in `why`; CNB_ENOTSUP for an op this ABI lacks. */
static inline int cnb_op_desc_check(const cnb_op_desc *d, char *why, size_t len)
{
    const char *name = cnb_op_name(d->op);
    const cnb_shape s = d->src, t = d->dst;
    if ((unsigned)d->op >= CNB_OP_COUNT)
        return snprintf(why, len, "op %d is unknown", (int)d->op), CNB_ENOTSUP;
    if (d->batch < 1 || s.c < 1 || s.h < 1 || s.w < 1 || t.c < 1 || t.h < 1 || t.w < 1)
        return snprintf(why, len, "%s: batch %d, src %dx%dx%d, dst %dx%dx%d: every size must "
                        "be >= 1", name, d->batch, s.c, s.h, s.w, t.c, t.h, t.w),
               CNB_EINVAL;
    switch (d->op) {
    case CNB_OP_CONV:
        return cnb_check_window_(d, d->u.conv.kh, d->u.conv.kw, d->u.conv.sh, d->u.conv.sw,
                                 d->u.conv.ph, d->u.conv.pw, why, len);
    case CNB_OP_POOL_MAX:
    case CNB_OP_POOL_AVG: {
        if (t.c != s.c)
            return snprintf(why, len, "%s: dst has %d channels, src %d", name, t.c, s.c),
                   CNB_EINVAL;
        int err = cnb_check_window_(d, d->u.pool.kh, d->u.pool.kw, d->u.pool.sh, d->u.pool.sw,
                                    d->u.pool.ph, d->u.pool.pw, why, len);
        if (err)
            return err;
        if (d->op == CNB_OP_POOL_MAX &&
            (d->u.pool.ph >= d->u.pool.kh || d->u.pool.pw >= d->u.pool.kw))
            return snprintf(why, len, "%s: padding %dx%d must be smaller than the kernel %dx%d "
                            "(a window of padding only has no maximum)", name, d->u.pool.ph,
                            d->u.pool.pw, d->u.pool.kh, d->u.pool.kw),
                   CNB_EINVAL;
        return CNB_OK;
    }
    case CNB_OP_INNER_PRODUCT:
        if (t.h != 1 || t.w != 1)
            return snprintf(why, len, "%s: dst must be Kx1x1, got %dx%dx%d", name, t.c, t.h, t.w),
                   CNB_EINVAL;
        return CNB_OK;
    case CNB_OP_LRN:
        if (d->u.lrn.size < 1 || !(d->u.lrn.k > 0.0f) || !(d->u.lrn.alpha >= 0.0f) ||
            !isfinite(d->u.lrn.beta))
            return snprintf(why, len, "%s: size %d, alpha %g, beta %g, k %g: need size >= 1, "
                            "k > 0, alpha >= 0", name, d->u.lrn.size, (double)d->u.lrn.alpha,
                            (double)d->u.lrn.beta, (double)d->u.lrn.k),
                   CNB_EINVAL;
        /* LRN keeps its shape like the element-wise ops */
        /* fall through */
    case CNB_OP_SIGMOID:
    case CNB_OP_RELU:
    case CNB_OP_SOFTMAX_XENT:
        if (s.c != t.c || s.h != t.h || s.w != t.w)
            return snprintf(why, len, "%s: dst %dx%dx%d differs from src %dx%dx%d", name, t.c,
                            t.h, t.w, s.c, s.h, s.w),
                   CNB_EINVAL;
        return CNB_OK;
    case CNB_OP_COUNT:
        break;
    }
    return CNB_ENOTSUP;
}

/* softmax_xent's labels for descriptor d: count the real (non-negative) ones into
 * *n_real; CNB_EINVAL, logged through host as `who`, when labels is NULL or one is not
 * below the class count C*H*W. */
static inline int cnb_labels_check(const cnb_host *host, const char *who, const cnb_op_desc *d,
                                   const int32_t *labels, int *n_real)
{
    const int D = (int)cnb_shape_size(d->src);
    if (!labels)
        return CNB_FAIL(host, who, CNB_EINVAL, "softmax_xent: no labels given");
    *n_real = 0;
    for (int n = 0; n < d->batch; n++) {
        if (labels[n] >= D)
            return CNB_FAIL(host, who, CNB_EINVAL,
                            "softmax_xent: label %d of sample %d is not below %d classes",
                            (int)labels[n], n, D);
        *n_real += labels[n] >= 0;
    }
    return CNB_OK;
}

#endif /* CNNBENCH_OP_CHECK_H */
