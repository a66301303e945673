/*
 * naive.c - the reference backend ("naive"): every op of cnnbench/backend.h as plain C
 * loops over dense NCHW float tensors.
 *
 * It is the oracle every other backend is checked against, so it is written to be read
 * and trusted: one function per op and direction, each X_forward directly followed by
 * X_backward, the formula of each op next to its loops. Loop orders keep the innermost
 * loop contiguous in memory (convolution: over the output width) because a LeNet-5 epoch
 * runs on it; scalar reductions (dot products, bias and weight sums) accumulate in double.
 *
 * It is deliberately NOT fast: no intrinsics, no BLAS, no im2col, no blocking or tiling,
 * and one thread (cfg->threads is ignored). kernel_create validates the descriptor and
 * allocates the only workspace any op needs (max-pool argmax, LRN scale); forward and
 * backward allocate nothing and do no I/O except logging a bad label.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"

#define WHO CNB_REFERENCE_BACKEND

typedef struct naive_kernel {
    cnb_kernel base;       /* first: the host only sees this                       */
    const cnb_host *host;  /* for free() at destroy and the odd error log          */
    cnb_op_desc d;         /* the descriptor it was created for                    */
    void *ws;              /* max pool: int32 argmax (N,C,OH,OW); LRN: scale
                              (N,C,H,W) then ratio (C,H,W); NULL for other ops      */
} naive_kernel;

static const cnb_op_desc *desc_of(cnb_kernel *self) { return &((naive_kernel *)self)->d; }

/* ------------------------------------------------------------------------------------ */
/* Window geometry, shared by convolution and pooling: output o along an axis of input
 * length `in` sees inputs o*s - p + t for taps t = 0..k-1; taps outside [0, in) are the
 * zero padding. */

/* Outputs o in [*o0, *o1) for which tap t lands inside the input (convolution loops). */
static void tap_outputs(int *o0, int *o1, int t, int s, int p, int in, int out)
{
    int lo = p - t;          /* o*s >= p - t          */
    int hi = in - 1 + p - t; /* o*s <= in - 1 + p - t */
    *o0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *o1 = hi < 0 ? 0 : hi / s + 1;
    if (*o1 > out)
        *o1 = out;
}

/* Taps t in [*t0, *t1) of output o's window that land inside the input (pool loops). */
static void window_taps(int *t0, int *t1, int o, int k, int s, int p, int in)
{
    int start = o * s - p;
    *t0 = start < 0 ? -start : 0;
    *t1 = start + k > in ? in - start : k;
}

/* ------------------------------------------------------------------------------------ */
/* Convolution: out[n,k,oh,ow] = bias[k]
 *     + sum_{c,i,j} weight[k,c,i,j] * inp[n, c, oh*SH - PH + i, ow*SW - PW + j]        */

static int conv_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, C = d->src.c, H = d->src.h, W = d->src.w;
    const int K = d->dst.c, OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh, SW = d->u.conv.sw;
    const int PH = d->u.conv.ph, PW = d->u.conv.pw;
    float *out = a->dst;              /* (N,K,OH,OW)  */
    const float *inp = a->src;        /* (N,C,H,W)    */
    const float *weight = a->weights; /* (K,C,KH,KW)  */
    const float *bias = a->bias;      /* (K), or NULL */

    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float *out_nk = out + ((size_t)n * K + k) * OH * OW;
            float b = bias ? bias[k] : 0.0f;
            for (int o = 0; o < OH * OW; o++)
                out_nk[o] = b;
            for (int c = 0; c < C; c++) {
                const float *inp_nc = inp + ((size_t)n * C + c) * H * W;
                const float *w_kc = weight + ((size_t)k * C + c) * KH * KW;
                for (int i = 0; i < KH; i++) {
                    int oh0, oh1;
                    tap_outputs(&oh0, &oh1, i, SH, PH, H, OH);
                    for (int j = 0; j < KW; j++) {
                        int ow0, ow1;
                        tap_outputs(&ow0, &ow1, j, SW, PW, W, OW);
                        float w = w_kc[i * KW + j];
                        for (int oh = oh0; oh < oh1; oh++) {
                            const float *inp_row = inp_nc + (size_t)(oh * SH - PH + i) * W;
                            float *out_row = out_nk + (size_t)oh * OW;
                            for (int ow = ow0; ow < ow1; ow++)
                                out_row[ow] += w * inp_row[ow * SW - PW + j];
                        }
                    }
                }
            }
        }
    return CNB_OK;
}

/* dinp[n,c,ih,iw] = sum over the (k,oh,ow,i,j) that read it of weight[k,c,i,j] * dout
 * dweight[k,c,i,j] = sum_{n,oh,ow} dout[n,k,oh,ow] * inp[n,c,ih,iw]
 * dbias[k]         = sum_{n,oh,ow} dout[n,k,oh,ow]                                      */
static int conv_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, C = d->src.c, H = d->src.h, W = d->src.w;
    const int K = d->dst.c, OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh, SW = d->u.conv.sw;
    const int PH = d->u.conv.ph, PW = d->u.conv.pw;
    float *dinp = a->diff_src;         /* (N,C,H,W), or NULL   */
    float *dweight = a->diff_weights;  /* (K,C,KH,KW), or NULL */
    float *dbias = a->diff_bias;       /* (K), or NULL         */
    const float *dout = a->diff_dst;   /* (N,K,OH,OW)          */
    const float *inp = a->src;         /* (N,C,H,W)            */
    const float *weight = a->weights;  /* (K,C,KH,KW)          */

    if (dinp)
        memset(dinp, 0, sizeof(float) * N * C * H * W);
    if (dweight)
        memset(dweight, 0, sizeof(float) * K * C * KH * KW);
    if (dbias)
        for (int k = 0; k < K; k++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++) {
                const float *dout_nk = dout + ((size_t)n * K + k) * OH * OW;
                for (int o = 0; o < OH * OW; o++)
                    sum += dout_nk[o];
            }
            dbias[k] = (float)sum;
        }
    if (!dinp && !dweight)
        return CNB_OK;

    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            const float *dout_nk = dout + ((size_t)n * K + k) * OH * OW;
            for (int c = 0; c < C; c++) {
                const float *inp_nc = inp + ((size_t)n * C + c) * H * W;
                float *dinp_nc = dinp ? dinp + ((size_t)n * C + c) * H * W : NULL;
                const size_t kc = ((size_t)k * C + c) * KH * KW;
                for (int i = 0; i < KH; i++) {
                    int oh0, oh1;
                    tap_outputs(&oh0, &oh1, i, SH, PH, H, OH);
                    for (int j = 0; j < KW; j++) {
                        int ow0, ow1;
                        tap_outputs(&ow0, &ow1, j, SW, PW, W, OW);
                        float w = weight[kc + i * KW + j];
                        double dw = 0.0;
                        for (int oh = oh0; oh < oh1; oh++) {
                            size_t row = (size_t)(oh * SH - PH + i) * W;
                            const float *dout_row = dout_nk + (size_t)oh * OW;
                            if (dweight)
                                for (int ow = ow0; ow < ow1; ow++)
                                    dw += (double)dout_row[ow] * inp_nc[row + ow * SW - PW + j];
                            if (dinp)
                                for (int ow = ow0; ow < ow1; ow++)
                                    dinp_nc[row + ow * SW - PW + j] += w * dout_row[ow];
                        }
                        if (dweight)
                            dweight[kc + i * KW + j] += (float)dw;
                    }
                }
            }
        }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Inner product: out[n,k] = bias[k] + sum_i weight[k,i] * inp[n,i], i over D = C*H*W.  */

static int inner_product_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, D = (int)cnb_shape_size(d->src), K = d->dst.c;
    float *out = a->dst;              /* (N,K)        */
    const float *inp = a->src;        /* (N,D)        */
    const float *weight = a->weights; /* (K,D)        */
    const float *bias = a->bias;      /* (K), or NULL */

    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * D;
        for (int k = 0; k < K; k++) {
            const float *w = weight + (size_t)k * D;
            double sum = bias ? bias[k] : 0.0;
            for (int i = 0; i < D; i++)
                sum += (double)w[i] * x[i];
            out[(size_t)n * K + k] = (float)sum;
        }
    }
    return CNB_OK;
}

/* dinp[n,:] = sum_k dout[n,k] weight[k,:]; dweight[k,:] = sum_n dout[n,k] inp[n,:];
 * dbias[k] = sum_n dout[n,k].                                                          */
static int inner_product_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, D = (int)cnb_shape_size(d->src), K = d->dst.c;
    float *dinp = a->diff_src;        /* (N,D), or NULL */
    float *dweight = a->diff_weights; /* (K,D), or NULL */
    float *dbias = a->diff_bias;      /* (K), or NULL   */
    const float *dout = a->diff_dst;  /* (N,K)          */
    const float *inp = a->src;        /* (N,D)          */
    const float *weight = a->weights; /* (K,D)          */

    if (dinp)
        for (int n = 0; n < N; n++) {
            float *dx = dinp + (size_t)n * D;
            memset(dx, 0, sizeof(float) * D);
            for (int k = 0; k < K; k++) {
                float g = dout[(size_t)n * K + k];
                const float *w = weight + (size_t)k * D;
                for (int i = 0; i < D; i++)
                    dx[i] += g * w[i];
            }
        }
    if (dweight)
        for (int k = 0; k < K; k++) {
            float *dw = dweight + (size_t)k * D;
            memset(dw, 0, sizeof(float) * D);
            for (int n = 0; n < N; n++) {
                float g = dout[(size_t)n * K + k];
                const float *x = inp + (size_t)n * D;
                for (int i = 0; i < D; i++)
                    dw[i] += g * x[i];
            }
        }
    if (dbias)
        for (int k = 0; k < K; k++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++)
                sum += dout[(size_t)n * K + k];
            dbias[k] = (float)sum;
        }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Max pooling: out = the largest input of the window. Padded positions never win; ties
 * go to the first in row-major window order. The winner's index within its (H,W) plane
 * is saved in the workspace for backward.                                              */

static int pool_max_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int NC = d->batch * d->src.c, H = d->src.h, W = d->src.w;
    const int OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.pool.kh, KW = d->u.pool.kw, SH = d->u.pool.sh, SW = d->u.pool.sw;
    const int PH = d->u.pool.ph, PW = d->u.pool.pw;
    float *out = a->dst;                              /* (N,C,OH,OW) */
    int32_t *argmax = ((naive_kernel *)self)->ws;     /* (N,C,OH,OW) */
    const float *inp = a->src;                        /* (N,C,H,W)   */

    for (int nc = 0; nc < NC; nc++) {
        const float *x = inp + (size_t)nc * H * W;
        float *y = out + (size_t)nc * OH * OW;
        int32_t *arg = argmax + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int i0, i1, ih = oh * SH - PH;
            window_taps(&i0, &i1, oh, KH, SH, PH, H);
            for (int ow = 0; ow < OW; ow++) {
                int j0, j1, iw = ow * SW - PW;
                window_taps(&j0, &j1, ow, KW, SW, PW, W);
                int best = (ih + i0) * W + iw + j0; /* create checked P < K: never empty */
                float max = x[best];
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++) {
                        /* selects, not a branch on the data (which mispredicts) */
                        const int idx = (ih + i) * W + iw + j;
                        const float v = x[idx];
                        best = v > max ? idx : best;
                        max = v > max ? v : max;
                    }
                y[oh * OW + ow] = max;
                arg[oh * OW + ow] = best;
            }
        }
    }
    return CNB_OK;
}

/* dinp[argmax] += dout: overlapping windows may route several outputs to one input. */
static int pool_max_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int NC = d->batch * d->src.c, HW = d->src.h * d->src.w;
    const int OHW = d->dst.h * d->dst.w;
    float *dinp = a->diff_src;                            /* (N,C,H,W)   */
    const int32_t *argmax = ((naive_kernel *)self)->ws;   /* (N,C,OH,OW) */
    const float *dout = a->diff_dst;                      /* (N,C,OH,OW) */

    if (!dinp)
        return CNB_OK;
    memset(dinp, 0, sizeof(float) * NC * HW);
    for (int nc = 0; nc < NC; nc++) {
        float *dx = dinp + (size_t)nc * HW;
        const int32_t *arg = argmax + (size_t)nc * OHW;
        const float *dy = dout + (size_t)nc * OHW;
        for (int o = 0; o < OHW; o++)
            dx[arg[o]] += dy[o];
    }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Average pooling: out = (sum of the window's inputs) / (KH*KW); padded positions count
 * as zeros in the divisor.                                                             */

static int pool_avg_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int NC = d->batch * d->src.c, H = d->src.h, W = d->src.w;
    const int OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.pool.kh, KW = d->u.pool.kw, SH = d->u.pool.sh, SW = d->u.pool.sw;
    const int PH = d->u.pool.ph, PW = d->u.pool.pw;
    float *out = a->dst;       /* (N,C,OH,OW) */
    const float *inp = a->src; /* (N,C,H,W)   */
    const float scale = 1.0f / (float)(KH * KW);

    for (int nc = 0; nc < NC; nc++) {
        const float *x = inp + (size_t)nc * H * W;
        float *y = out + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int i0, i1, ih = oh * SH - PH;
            window_taps(&i0, &i1, oh, KH, SH, PH, H);
            for (int ow = 0; ow < OW; ow++) {
                int j0, j1, iw = ow * SW - PW;
                window_taps(&j0, &j1, ow, KW, SW, PW, W);
                float sum = 0.0f;
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++)
                        sum += x[(ih + i) * W + iw + j];
                y[oh * OW + ow] = sum * scale;
            }
        }
    }
    return CNB_OK;
}

/* dinp[window of o] += dout[o] / (KH*KW) */
static int pool_avg_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int NC = d->batch * d->src.c, H = d->src.h, W = d->src.w;
    const int OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.pool.kh, KW = d->u.pool.kw, SH = d->u.pool.sh, SW = d->u.pool.sw;
    const int PH = d->u.pool.ph, PW = d->u.pool.pw;
    float *dinp = a->diff_src;       /* (N,C,H,W)   */
    const float *dout = a->diff_dst; /* (N,C,OH,OW) */
    const float scale = 1.0f / (float)(KH * KW);

    if (!dinp)
        return CNB_OK;
    memset(dinp, 0, sizeof(float) * NC * H * W);
    for (int nc = 0; nc < NC; nc++) {
        float *dx = dinp + (size_t)nc * H * W;
        const float *dy = dout + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int i0, i1, ih = oh * SH - PH;
            window_taps(&i0, &i1, oh, KH, SH, PH, H);
            for (int ow = 0; ow < OW; ow++) {
                int j0, j1, iw = ow * SW - PW;
                window_taps(&j0, &j1, ow, KW, SW, PW, W);
                float g = dy[oh * OW + ow] * scale;
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++)
                        dx[(ih + i) * W + iw + j] += g;
            }
        }
    }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Sigmoid: y = 1 / (1 + e^-x); dx = dy * y * (1 - y), from the saved output.          */

static int sigmoid_forward(cnb_kernel *self, const cnb_args *a)
{
    const size_t n = (size_t)desc_of(self)->batch * cnb_shape_size(desc_of(self)->src);
    float *out = a->dst;       /* (N,C,H,W) */
    const float *inp = a->src; /* (N,C,H,W) */
    for (size_t i = 0; i < n; i++)
        out[i] = 1.0f / (1.0f + expf(-inp[i]));
    return CNB_OK;
}

static int sigmoid_backward(cnb_kernel *self, const cnb_args *a)
{
    const size_t n = (size_t)desc_of(self)->batch * cnb_shape_size(desc_of(self)->src);
    float *dinp = a->diff_src;       /* (N,C,H,W) */
    const float *dout = a->diff_dst; /* (N,C,H,W) */
    const float *out = a->dst;       /* (N,C,H,W) */
    if (!dinp)
        return CNB_OK;
    for (size_t i = 0; i < n; i++)
        dinp[i] = dout[i] * out[i] * (1.0f - out[i]);
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* ReLU: y = max(x, 0); dx = dy where x > 0, else 0 (the kink gets 0).                 */

static int relu_forward(cnb_kernel *self, const cnb_args *a)
{
    const size_t n = (size_t)desc_of(self)->batch * cnb_shape_size(desc_of(self)->src);
    float *out = a->dst;       /* (N,C,H,W) */
    const float *inp = a->src; /* (N,C,H,W) */
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
    return CNB_OK;
}

static int relu_backward(cnb_kernel *self, const cnb_args *a)
{
    const size_t n = (size_t)desc_of(self)->batch * cnb_shape_size(desc_of(self)->src);
    float *dinp = a->diff_src;       /* (N,C,H,W) */
    const float *dout = a->diff_dst; /* (N,C,H,W) */
    const float *inp = a->src;       /* (N,C,H,W) */
    if (!dinp)
        return CNB_OK;
    for (size_t i = 0; i < n; i++) {
        const float g = dout[i]; /* read either way: a select, not a branch on the data */
        dinp[i] = inp[i] > 0.0f ? g : 0.0f;
    }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Local response normalisation across channels (AlexNet paper; alpha NOT divided by
 * size). With W(c) = [max(0, c - size/2), min(C-1, c + size/2)]:
 *     s_c = k + alpha * sum_{c' in W(c)} a_{c'}^2,    b_c = a_c * s_c^-beta
 * Backward: c' in W(c) exactly when c in W(c'), and a_c s_c^(-beta-1) = b_c / s_c, so
 *     da_j = dy_j s_j^-beta - 2 alpha beta a_j sum_{c in W(j)} dy_c b_c / s_c
 * Forward saves s; backward keeps r_c = dy_c b_c / s_c for one sample at a time.       */

static int lrn_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, C = d->src.c, HW = d->src.h * d->src.w;
    const int half = d->u.lrn.size / 2;
    const float alpha = d->u.lrn.alpha, beta = d->u.lrn.beta, k = d->u.lrn.k;
    float *out = a->dst;                           /* (N,C,H,W) */
    float *scale = ((naive_kernel *)self)->ws;     /* (N,C,H,W) */
    const float *inp = a->src;                     /* (N,C,H,W) */

    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *s = scale + ((size_t)n * C + c) * HW;
            int lo = c - half < 0 ? 0 : c - half;
            int hi = c + half > C - 1 ? C - 1 : c + half;
            memset(s, 0, sizeof(float) * HW);
            for (int c2 = lo; c2 <= hi; c2++) {
                const float *a2 = inp + ((size_t)n * C + c2) * HW;
                for (int i = 0; i < HW; i++)
                    s[i] += a2[i] * a2[i];
            }
            const float *x = inp + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                s[i] = k + alpha * s[i];
                y[i] = x[i] * powf(s[i], -beta);
            }
        }
    return CNB_OK;
}

static int lrn_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, C = d->src.c, HW = d->src.h * d->src.w;
    const int half = d->u.lrn.size / 2;
    const float beta = d->u.lrn.beta, coef = 2.0f * d->u.lrn.alpha * d->u.lrn.beta;
    float *dinp = a->diff_src;                              /* (N,C,H,W)           */
    const float *scale = ((naive_kernel *)self)->ws;        /* (N,C,H,W)           */
    float *ratio = (float *)((naive_kernel *)self)->ws + (size_t)N * C * HW; /* (C,H,W) */
    const float *dout = a->diff_dst;                        /* (N,C,H,W)           */
    const float *inp = a->src;                              /* (N,C,H,W)           */
    const float *out = a->dst;                              /* (N,C,H,W)           */

    if (!dinp)
        return CNB_OK;
    for (int n = 0; n < N; n++) {
        const size_t base = (size_t)n * C * HW;
        for (size_t i = 0; i < (size_t)C * HW; i++)
            ratio[i] = dout[base + i] * out[base + i] / scale[base + i];
        for (int j = 0; j < C; j++) {
            const float *s = scale + base + (size_t)j * HW;
            const float *x = inp + base + (size_t)j * HW;
            const float *dy = dout + base + (size_t)j * HW;
            float *dx = dinp + base + (size_t)j * HW;
            int lo = j - half < 0 ? 0 : j - half;
            int hi = j + half > C - 1 ? C - 1 : j + half;
            for (int i = 0; i < HW; i++)
                dx[i] = dy[i] * powf(s[i], -beta);
            for (int c = lo; c <= hi; c++) {
                const float *r = ratio + (size_t)c * HW;
                for (int i = 0; i < HW; i++)
                    dx[i] -= coef * x[i] * r[i];
            }
        }
    }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Softmax with cross-entropy over the D = C*H*W values of each sample:
 *     p_i = e^(x_i - max) / sum_j e^(x_j - max)
 *     loss = mean over samples with label >= 0 of -log p_label
 * -log p_label is computed as log(sum) - (x_label - max), which stays finite where p
 * underflows to 0 (the log(0) guard). Backward ignores diff_dst:
 *     dx = (p - onehot(label)) / n_real for real rows, 0 for rows with a negative label. */

static int softmax_xent_forward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, D = (int)cnb_shape_size(d->src);
    float *prob = a->dst;             /* (N,D)          */
    float *loss = a->loss;            /* (1), or NULL   */
    const float *logits = a->src;     /* (N,D)          */
    const int32_t *labels = a->labels; /* (N), or NULL when no loss is asked */

    int n_real = 0;
    if (loss) {
        int err = cnb_labels_check(((naive_kernel *)self)->host, WHO, d, labels, &n_real);
        if (err)
            return err;
    }
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * D;
        float *p = prob + (size_t)n * D;
        float max = x[0];
        for (int i = 1; i < D; i++)
            if (x[i] > max)
                max = x[i];
        double sum = 0.0;
        for (int i = 0; i < D; i++) {
            p[i] = expf(x[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < D; i++)
            p[i] = (float)(p[i] / sum);
        if (loss && labels[n] >= 0)
            total += log(sum) - ((double)x[labels[n]] - max);
    }
    if (loss)
        *loss = n_real ? (float)(total / n_real) : 0.0f;
    return CNB_OK;
}

static int softmax_xent_backward(cnb_kernel *self, const cnb_args *a)
{
    const cnb_op_desc *d = desc_of(self);
    const int N = d->batch, D = (int)cnb_shape_size(d->src);
    float *dinp = a->diff_src;         /* (N,D) */
    const float *prob = a->dst;        /* (N,D) */
    const int32_t *labels = a->labels; /* (N)   */

    int n_real = 0;
    int err = cnb_labels_check(((naive_kernel *)self)->host, WHO, d, labels, &n_real);
    if (err)
        return err;
    if (!dinp)
        return CNB_OK;
    for (int n = 0; n < N; n++) {
        float *dx = dinp + (size_t)n * D;
        const float *p = prob + (size_t)n * D;
        if (labels[n] < 0) {
            memset(dx, 0, sizeof(float) * D);
            continue;
        }
        for (int i = 0; i < D; i++)
            dx[i] = (p[i] - (i == labels[n] ? 1.0f : 0.0f)) / (float)n_real;
    }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Kernel creation: validate the descriptor, allocate the workspace, pick the functions. */

static const struct {
    const char *name;
    int (*forward)(cnb_kernel *self, const cnb_args *a);
    int (*backward)(cnb_kernel *self, const cnb_args *a);
} ops[CNB_OP_COUNT] = {
    [CNB_OP_CONV] = {"conv", conv_forward, conv_backward},
    [CNB_OP_INNER_PRODUCT] = {"inner_product", inner_product_forward, inner_product_backward},
    [CNB_OP_POOL_MAX] = {"pool_max", pool_max_forward, pool_max_backward},
    [CNB_OP_POOL_AVG] = {"pool_avg", pool_avg_forward, pool_avg_backward},
    [CNB_OP_SIGMOID] = {"sigmoid", sigmoid_forward, sigmoid_backward},
    [CNB_OP_RELU] = {"relu", relu_forward, relu_backward},
    [CNB_OP_LRN] = {"lrn", lrn_forward, lrn_backward},
    [CNB_OP_SOFTMAX_XENT] = {"softmax_xent", softmax_xent_forward, softmax_xent_backward},
};

static size_t workspace_bytes(const cnb_op_desc *d)
{
    switch (d->op) {
    case CNB_OP_POOL_MAX:
        return sizeof(int32_t) * d->batch * cnb_shape_size(d->dst);
    case CNB_OP_LRN:
        return sizeof(float) * (d->batch + 1) * cnb_shape_size(d->src);
    default:
        return 0;
    }
}

/* All it holds: itself and its workspace. */
static size_t naive_kernel_bytes(const cnb_kernel *self)
{
    return sizeof(naive_kernel) + workspace_bytes(&((const naive_kernel *)self)->d);
}

static void naive_kernel_destroy(cnb_kernel *self)
{
    naive_kernel *nk = (naive_kernel *)self;
    if (!nk)
        return;
    nk->host->free(nk->ws);
    nk->host->free(nk);
}

static int naive_kernel_create(void *state, const cnb_op_desc *desc, cnb_kernel **out)
{
    const cnb_host *host = state;
    *out = NULL;
    if (!host)
        return CNB_EINVAL; /* init() was not called: nowhere to log to */
    char why[512];
    int err = cnb_op_desc_check(desc, why, sizeof why);
    if (err)
        return CNB_FAIL(host, WHO, err, "%s", why);

    naive_kernel *nk = host->alloc(sizeof *nk);
    if (!nk)
        return CNB_ENOMEM;
    nk->base = CNB_KERNEL_INIT(.forward = ops[desc->op].forward,
                               .backward = ops[desc->op].backward,
                               .destroy = naive_kernel_destroy);
    nk->host = host;
    nk->d = *desc;
    size_t ws = workspace_bytes(desc);
    if (ws && !(nk->ws = host->alloc(ws))) {
        host->free(nk);
        return CNB_FAIL(host, WHO, CNB_ENOMEM, "%s: cannot allocate %zu bytes of workspace",
                        ops[desc->op].name, ws);
    }
    *out = &nk->base;
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* The plugin: one backend descriptor. State is just the host table.                    */

static int naive_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    (void)cfg; /* single-threaded by design: cfg->threads is ignored */
    *state = (void *)host;
    return CNB_OK;
}

static void naive_fini(void *state) { (void)state; }

static const char *naive_info(void *state)
{
    (void)state;
    return "naive reference loops, 1 thread";
}

CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC(CNB_REFERENCE_BACKEND, "1.0.1",
                     "reference kernels in plain C loops, single-threaded (the oracle)",
                     .ops = CNB_OPS_ALL,
                     .init = naive_init,
                     .fini = naive_fini,
                     .kernel_create = naive_kernel_create,
                     .info = naive_info,
                     .max_threads = 1,
                     .kernel_bytes = naive_kernel_bytes));
