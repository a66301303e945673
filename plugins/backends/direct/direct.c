/*
 * direct.c - the "direct" backend: convolution computed directly from its definition, in
 * hand-vectorised AVX-512F loops, with a plain-C path for CPUs without AVX-512. It
 * implements CNB_OP_CONV (forward, diff_src, diff_weights, diff_bias) and, with AVX-512,
 * small inner products (LeNet-5's fully connected layers: "Inner product" below); every
 * other op, and a larger inner product, runs on the next backend of the chain (naive at
 * its end: kernel_create answers CNB_ENOTSUP). It also fuses runs (cnnbench/backend.h): a
 * convolution and a ReLU, or those and a max pooling without padding (LeNet-5's 2x2 at
 * stride 2, AlexNet's overlapping 3x3 at 2), and an inner product and a ReLU.
 *
 * What it is not: no im2col, no library, no JIT. Every output is a sum of (weight x
 * input) products read from the tensors themselves, as the formula reads; the inner
 * product is the one place where that is a matrix product.
 *
 * The scratch. One sample's input is first copied into a zero-padded scratch (so the
 * loops need no bounds), its columns split into `stride` phases (padded column q goes to
 * phase q % S at q / S) so that the inputs of 16 neighbouring outputs are 16 contiguous
 * floats whatever the stride.
 *
 * Three families of tiles. Small stride-1 convolutions at batches of 16 and more
 * (LeNet-5's; bl_fits) take the batch lanes: 16 samples per zmm, every lane and every
 * product useful; see "Batch lanes" below. The others take one of two families, chosen per
 * layer by which fills more of the 16 lanes:
 *  - along the output width (16 outputs of a row per zmm; AlexNet's conv1, and LeNet's
 *    conv1 at small batches, K = 6):
 *      forward   RB rows x NV vectors x MB output channels of accumulators (up to 24
 *                zmm); per tap (i, c, j) RB*NV input loads and RB*NV*MB FMAs with
 *                broadcast weights; the last vector of a row is masked; tap rows that
 *                reach only padding are skipped.
 *      diff_src  (stride 1) the same tile: diff_src is the correlation of diff_dst,
 *                padded by K - 1 - P, with the weights flipped and K and C swapped.
 *                Strides > 1 take the plain-C scatter loop.
 *      diff_wts  MB output channels x JB taps j of one (c, i); per row and 16 outputs MB
 *                diff_dst and JB input loads, MB*JB FMAs. The 16 lanes are kept apart in
 *                the chunk's share when it fits in DW_LANES_MAX bytes (LeNet) and added
 *                up once per call; otherwise each tile adds its horizontal sums.
 *  - along the output channels (16 channels per zmm; AlexNet's conv2-5, and LeNet's conv2
 *    at small batches, whose rows have 10 outputs but K = 16; horizontal stride 1):
 *      forward   (KW = 3 or 5) XB <= 12 outputs of a row; per (i, c) KW weight vectors
 *                in registers, each input broadcast once for the up to KW outputs that
 *                read it; a transposing copy to NCHW.
 *      diff_wts  diff_dst transposed to (position, channel) by gathers; IB x JB <= 25
 *                taps per tile, per pair of positions 2 diff_dst loads and 30 broadcast
 *                inputs for 50 FMAs.
 * The tile shapes are compile-time constants (one function per shape, picked from a
 * table) so that the compiler unrolls the loops and keeps the accumulators in registers.
 *
 * Threads. cfg->threads OpenMP threads (../common/pool.h, pool_omp.c) share each call,
 * each taking the items of its own share of the call first, then what is left of the
 * others' (pool_job_take_near: on a quiet machine a thread works on the same part of the
 * batch in every call and finds it in its own cache): the forward by samples (groups of
 * 16 with batch lanes), the backward by chunks of the batch (pool.h: 8 per thread where
 * the shares are small, down to 1 where they are large; their bounds fixed by N). Each
 * thread has its own scratch; each chunk, not each thread, has its own diff_weights and
 * diff_bias share, summed over its samples in order, and a second short pass adds the
 * shares up in chunk order (diff_* are overwritten, never accumulated). So the reduction
 * order is fixed by the data, not by which thread got there first: a step gives the same
 * bits at a given thread count however busy the machine is. OpenMP's threads and not a
 * pool of its own: next to oneDNN (direct+onednn) the two backends then take turns on one
 * set of threads instead of spinning against each other (LeNet-5 at batch 256 on 2
 * threads, one run each: 42,454 img/s for the chain against 28,309 with a pool of its
 * own).
 *
 * ISA. init() picks the AVX-512F kernels when __builtin_cpu_supports("avx512f"), else the
 * plain-C loops (same scratch layout, any geometry); CNB_DIRECT_ISA=scalar forces the
 * latter (to test it on an AVX-512 machine). Only the AVX-512 functions carry the target
 * attribute, so a generic build loads and runs on any x86-64. info() says which runs.
 *
 * Fused runs. The convolution kernel with a stage after it, per sample while the sample's
 * output is in the thread's cache (batch lanes: see there). Forward: the convolution into
 * the thread's scratch, then the ReLU and the pooling from there into dst, each window's
 * winner kept as a byte (its offset in the window) for backward; without pooling, the
 * ReLU in place in dst.
 * Backward: the gradient of the convolution's output rebuilt in the scratch (diff_dst to
 * each window's winner where dst > 0, which is where the ReLU passes it), then the
 * convolution's backward on it as above. With AVX-512 the pooling takes 16 windows of a
 * row per vector (horizontal stride 1 or 2), and where 2-wide windows tile the rows
 * (LeNet-5's 2x2 at 2) the gradient is a select of 16 inputs at once; other windows take
 * plain loops. Ties go as in naive (the first of a window's largest; the ReLU's kink gets
 * 0), and the convolution is the same code, so a fused step's numbers are those of
 * direct's convolution and naive's ReLU and pooling, bit for bit. What the run saves: the
 * convolution's output and the ReLU's are never written to memory, nor read back, nor
 * their gradients (LeNet-5's conv1 at batch 256: 4.8 MB each).
 *
 * Results match naive up to float summation order (products summed in float; bias sums in
 * double, as naive does). Scratch and shares are allocated in kernel_create; forward and
 * backward allocate nothing and do no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DC_HAVE_AVX512 1
#define DC_AVX512 __attribute__((target("avx512f,fma")))
#define DC_INLINE static inline __attribute__((always_inline)) DC_AVX512
#define DC_PRAGMA(x) _Pragma(#x)
#define UNROLL DC_PRAGMA(GCC unroll 16) /* whole: acc[] must be indexed by constants */
#else
#define DC_HAVE_AVX512 0
#endif

#define WHO "direct"

/* diff_weights shares keep their 16 lanes apart up to this size per chunk (bytes). */
#define DW_LANES_MAX (1u << 20)
#define REDUCE_ITEM 1024 /* weights per item of the pass that adds the shares up */
#define FWDK_XB_MIN 4    /* outputs per row segment of a forward fwdk tile (see there) */
#define FWDK_XB_MAX 12
#define BL_XB_MIN 4      /* outputs (inputs) per row segment of a batch-lane tile (see there) */
#define BL_XB_MAX 10
#define BL_POS_MAX 8192  /* batch lanes: the most input and output positions of a sample */
#define BL_DX_BLOCK (32u << 10) /* bytes of gradient a block of diff_src tiles reads       */
#define IP_A_MAX 6       /* inner product tiles: broadcast rows                             */
#define IP_B_MAX 4       /* and vectors of 16 columns                                       */
#define IP_WEIGHTS_MAX (1u << 20) /* the largest inner product it takes (weights)          */
/* an inner product of fewer FLOPs a call runs on the calling thread alone: sharing it
 * would cost more than it saves (an OpenMP region takes some microseconds) */
#define IP_SPLIT_FLOPS 2e6

/* ------------------------------------------------------------------------------------ */
/* Backend state and kernels. */

typedef struct dc_state {
    const cnb_host *host;
    int threads;          /* cfg->threads                          */
    int avx512;           /* 1: AVX-512F kernels; 0: plain C        */
    thread_pool *pool;    /* OpenMP, threads; NULL for 1 thread     */
    char info[256];       /* info() line                           */
} dc_state;

/*
 * One correlation: out[o, y, x] = sum_{c, i, j} w[o, c, i, j] * in[c, y*ys + i, x*xs + j]
 * over a zero-padded scratch copy of `in`. The forward pass is one (o = output channel,
 * c = input channel); diff_src at stride 1 is another (o = input channel, c = output
 * channel, in = diff_dst). The scratch of one channel is `rows` rows of `ld` floats; a
 * row holds `sw` phases of `lt` floats, padded column q at (q % sw) * lt + q / sw.
 */
typedef struct dc_pass {
    int cin, kh, kw;      /* channels summed over, window                                 */
    int cout, oh, ow;     /* what it writes per sample                                    */
    int ystep;            /* scratch rows from one output row to the next (stride)        */
    int sw, lt, rows;     /* phases per row (stride), floats per phase, rows per channel  */
    size_t ld, plane;     /* floats per scratch row (sw * lt) and per channel             */
    int top, left;        /* scratch row and padded column of in[c, 0, 0] (may be < 0)   */
    int lo, hi;           /* scratch rows [lo, hi) hold data; the others stay zero        */
    int jo[64];           /* offset of tap j in a scratch row: (j % sw) * lt + j / sw     */
    int *jo_big;          /* instead of jo when kw > 64                                   */
    int rb, nv, mb;       /* AVX-512 tile: output rows, 16-wide vectors, output channels  */
} dc_pass;

/* One thread's scratch: what it holds never outlives an item. */
typedef struct dc_slot {
    float *x;      /* (C, rows, ld): src of one sample, padded, phase-split              */
    float *dy;     /* (K, rows, ld): diff_dst of one sample, padded (vectorised diff_src) */
    float *dyt;    /* (OH*OW, kp): diff_dst of one sample transposed (when dwk)         */
    float *y;      /* (K, OH, OW): a fused run's convolution output of one sample, or its
                      gradient                                                           */
    float *xl;     /* batch lanes, x 16 floats each: (C, H, W + 2 PW) a group's src, its
                      columns padded                                                     */
    float *ol;     /* (out): a group's dst before it goes to NCHW; backward its diff_dst,
                      or dst                                                             */
    float *gl;     /* (K, OH, OW): the gradient of a group's convolution output            */
    float *dxl;    /* (C, H, W): a group's diff_src                                        */
} dc_slot;

/* One chunk of the batch in a backward (pool.h): its shares, whichever thread computes
 * them. */
typedef struct dc_chunk {
    float *dw;     /* the chunk's diff_weights: (K, C, KH, KW), times 16 lanes if
                      lanes; (C, KH, KW, kp) if dwk                                      */
    double *db;    /* (K): its diff_bias; (K, 16) with batch lanes, a sum per lane        */
    int n0, n1;    /* its samples [n0, n1): fixed by N and the chunk count; may be empty;
                      with batch lanes whole groups of 16 (the last may be short)        */
} dc_chunk;

/* What follows the convolution in a kernel: nothing, or a fused run's ReLU, or its ReLU
 * and max pooling. */
enum { FUSE_NONE, FUSE_RELU, FUSE_POOL };

typedef struct dc_kernel {
    cnb_kernel base;  /* first: the host only sees this                                 */
    dc_state *st;     /* host table, threads, pool, ISA                                 */
    cnb_op_desc d;    /* the convolution it was created for                             */
    int fuse;         /* FUSE_*                                                         */
    cnb_op_desc pool; /* the max pooling (FUSE_POOL)                                    */
    cnb_shape out;    /* per sample, what it writes: d.dst, or the pooling's dst        */
    uint8_t *arg;     /* (N, K, PH, PW): each window's winner, as its offset i * KW + j in
                         the window, from the latest forward (FUSE_POOL); with batch lanes
                         (groups, K, PH, PW, 16), 255 for none (the ReLU's output 0)     */
    int pool_vec;     /* 1: the pooling by relu_max_pool_avx512 (stride 1 or 2 along rows) */
    int tiled_vec;    /* 1: its gradient by pool_diff_tiled_avx512 (2-wide windows that tile
                         the rows: KW = SW = 2, KH = SH)                                  */
    int tap_at[256];  /* winner i * KW + j -> i * W + j, its place in the input plane      */
    dc_pass fwd;      /* forward; its scratch layout also serves diff_weights           */
    dc_pass bwd;      /* diff_src as a correlation of diff_dst (when bwd_vec)           */
    int bwd_vec;      /* 1: diff_src by the AVX-512 tile; 0: plain-C scatter            */
    int lanes;        /* 1: dw shares keep 16 lanes per weight                          */
    int dw_mb, dw_jb; /* diff_weights tile: output channels, taps j                     */
    int dwk;          /* 1: diff_weights vectorised over output channels instead        */
    int kp;           /* K rounded up to 16 (dwk)                                       */
    int dwk_ib, dwk_jb; /* its tile: tap rows i, taps j                                 */
    int fwdk;         /* 1: forward vectorised over output channels (fwdk tiles)        */
    float *wf, *wb;   /* weights packed for the fwd and bwd tiles (AVX-512 only)        */
    int bl;           /* 1: every pass by batch-lane tiles, 16 samples per zmm            */
    int bl_groups;    /* their groups of 16 samples: ceil(N / 16)                         */
    int bl_wp;        /* floats / 16 per row of a group's padded src: W + 2 PW            */
    int *bl_at;       /* (C*H*W): each input's vector in that padded src                  */
    int nslots;       /* threads                                                        */
    dc_slot *slot;    /* (nslots)                                                       */
    int nchunks;      /* chunks of the batch (pool_chunks())                            */
    dc_chunk *chunk;  /* (nchunks)                                                      */
} dc_kernel;

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int round_up(int a, int b) { return (a + b - 1) / b * b; }

static const int *pass_jo(const dc_pass *p) { return p->jo_big ? p->jo_big : p->jo; }

/* ------------------------------------------------------------------------------------ */
/* The padded scratch. Only the data region is ever written, always the same one, so the
 * padding stays zero from the host's zero-filled allocation on. */

/* in (ch, h, w) -> scratch, in[c, r, q] at scratch row top + r, padded column left + q. */
static void pad_copy(float *s, const dc_pass *p, const float *in, int ch, int h, int w)
{
    const int r0 = imax(0, -p->top), r1 = imin(h, p->rows - p->top);
    const int q0 = imax(0, -p->left), q1 = imin(w, p->sw * p->lt - p->left);
    if (r0 >= r1 || q0 >= q1)
        return;
    for (int c = 0; c < ch; c++)
        for (int r = r0; r < r1; r++) {
            const float *src = in + ((size_t)c * h + r) * w;
            float *row = s + c * p->plane + (size_t)(p->top + r) * p->ld;
            if (p->sw == 1) { /* rows are short: a loop the compiler inlines beats memcpy */
                for (int q = q0; q < q1; q++)
                    row[p->left + q] = src[q];
                continue;
            }
            for (int q = q0; q < q1; q++) {
                const int pq = p->left + q;
                row[(size_t)(pq % p->sw) * p->lt + pq / p->sw] = src[q];
            }
        }
}

/* Lay out a pass's scratch: rows cover every row a tile reads (whole blocks of rb output
 * rows), phases every column one reads (whole vectors of 16 outputs). */
static void pass_layout(dc_pass *p, int sw, int top, int left, int in_rows)
{
    p->sw = sw;
    p->lt = round_up(p->ow, 16) + (p->kw - 1) / sw;
    p->ld = (size_t)sw * p->lt;
    p->rows = (round_up(p->oh, p->rb) - 1) * p->ystep + p->kh;
    p->plane = (size_t)p->rows * p->ld;
    p->top = top;
    p->left = left;
    p->lo = imax(0, top);
    p->hi = imax(p->lo, imin(p->rows, top + in_rows));
    int *jo = p->jo_big ? p->jo_big : p->jo;
    for (int j = 0; j < p->kw; j++)
        jo[j] = (j % sw) * p->lt + j / sw;
}

/* The correlation tile for a pass: NV = 2 vectors along the width when a row has more than
 * 16 outputs; MB output channels in balanced blocks of at most 8; then as many rows RB
 * (1, 2 or 4) as keep RB*NV*MB <= 24 accumulators without computing more than an eighth
 * of extra rows. Few accumulators (a 1-channel output) would leave the FMA latency bare. */
static void plan_tile(dc_pass *p)
{
    p->nv = p->ow > 16 ? 2 : 1;
    const int blocks = (p->cout + 7) / 8;
    p->mb = (p->cout + blocks - 1) / blocks;
    p->rb = 1;
    for (int rb = 4; rb > 1; rb /= 2)
        if (rb * p->nv * p->mb <= 24 && (round_up(p->oh, rb) - p->oh) * 8 <= p->oh) {
            p->rb = rb;
            break;
        }
}

/* ------------------------------------------------------------------------------------ */
/* Plain C: any geometry, any CPU. Forward and diff_weights read the same scratch as the
 * AVX-512 tiles; diff_src scatters into the unpadded output like naive does.             */

static void forward_c(const dc_kernel *dk, const float *x, const float *weight,
                      const float *bias, float *out)
{
    const dc_pass *p = &dk->fwd;
    const int *jo = pass_jo(p);
    const int K = p->cout, C = p->cin, KH = p->kh, KW = p->kw, OH = p->oh, OW = p->ow;
    for (int k = 0; k < K; k++)
        for (int y = 0; y < OH; y++) {
            float *o = out + ((size_t)k * OH + y) * OW;
            for (int ox = 0; ox < OW; ox++)
                o[ox] = bias ? bias[k] : 0.0f;
            for (int i = 0; i < KH; i++) {
                const int r = y * p->ystep + i;
                if (r < p->lo || r >= p->hi)
                    continue; /* a padding row */
                for (int c = 0; c < C; c++) {
                    const float *xr = x + c * p->plane + (size_t)r * p->ld;
                    const float *w = weight + (((size_t)k * C + c) * KH + i) * KW;
                    for (int j = 0; j < KW; j++)
                        for (int ox = 0; ox < OW; ox++)
                            o[ox] += w[j] * xr[jo[j] + ox];
                }
            }
        }
}

/* dw[k, c, i, j] (+)= sum_{y, x} dy[k, y, x] * x[c, y*SH + i, x*SW + j], summed in double. */
static void diff_weights_c(const dc_kernel *dk, const float *x, const float *dy, float *dw,
                           int first)
{
    const dc_pass *p = &dk->fwd;
    const int *jo = pass_jo(p);
    const int K = p->cout, C = p->cin, KH = p->kh, KW = p->kw, OH = p->oh, OW = p->ow;
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < KH; i++)
                for (int j = 0; j < KW; j++) {
                    double sum = 0.0;
                    for (int y = 0; y < OH; y++) {
                        const int r = y * p->ystep + i;
                        if (r < p->lo || r >= p->hi)
                            continue;
                        const float *xr = x + c * p->plane + (size_t)r * p->ld + jo[j];
                        const float *dr = dy + ((size_t)k * OH + y) * OW;
                        for (int ox = 0; ox < OW; ox++)
                            sum += (double)dr[ox] * xr[ox];
                    }
                    float *q = dw + (((size_t)k * C + c) * KH + i) * KW + j;
                    *q = first ? (float)sum : *q + (float)sum;
                }
}

/* Outputs o in [*o0, *o1) for which tap t lands inside the input (as in naive.c). */
static void tap_outputs(int *o0, int *o1, int t, int s, int p, int in, int out)
{
    int lo = p - t, hi = in - 1 + p - t;
    *o0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *o1 = hi < 0 ? 0 : hi / s + 1;
    if (*o1 > out)
        *o1 = out;
}

/* dx[c, ih, iw] = sum over the (k, y, x, i, j) that read it of w[k, c, i, j] * dy[k, y, x]. */
static void diff_src_c(const cnb_op_desc *d, const float *weight, const float *dy, float *dx)
{
    const int C = d->src.c, H = d->src.h, W = d->src.w, K = d->dst.c, OH = d->dst.h;
    const int OW = d->dst.w, KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh;
    const int SW = d->u.conv.sw, PH = d->u.conv.ph, PW = d->u.conv.pw;
    memset(dx, 0, sizeof(float) * C * H * W);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < KH; i++) {
                int y0, y1;
                tap_outputs(&y0, &y1, i, SH, PH, H, OH);
                for (int j = 0; j < KW; j++) {
                    int x0, x1;
                    tap_outputs(&x0, &x1, j, SW, PW, W, OW);
                    const float w = weight[(((size_t)k * C + c) * KH + i) * KW + j];
                    for (int y = y0; y < y1; y++) {
                        float *r = dx + ((size_t)c * H + y * SH - PH + i) * W - PW + j;
                        const float *dr = dy + ((size_t)k * OH + y) * OW;
                        for (int ox = x0; ox < x1; ox++)
                            r[(size_t)ox * SW] += w * dr[ox];
                    }
                }
            }
}

static double sum_c(const float *x, int n)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    return sum;
}

/* ------------------------------------------------------------------------------------ */
/* AVX-512F. Every function here carries the target attribute; none runs unless init saw
 * avx512f. The tiles are always_inline templates whose shape arguments are constants in
 * each instance, so the compiler unrolls their loops and keeps acc[][][] in registers.   */

#if DC_HAVE_AVX512

/* A correlation tile's variable part. */
typedef struct corr_args {
    const float *x;           /* scratch at channel 0, row y0 * ystep, column x0          */
    const float *w;           /* packed weights of the channel block, at tap row i0       */
    const float *bias;        /* (mb), or NULL for zero                                   */
    float *out;               /* output at (m0, y0, x0)                                   */
    size_t out_ld, out_plane; /* floats per output row and channel                        */
    int i0, i1;               /* tap rows that reach scratch rows with data               */
    int rows;                 /* output rows to store (< RB in the last block)            */
    __mmask16 tail;           /* lanes of the last vector to store                        */
} corr_args;

DC_INLINE void corr_tile(const dc_pass *p, const corr_args *t, const int RB, const int NV,
                         const int MB)
{
    __m512 acc[4][2][8];
    UNROLL
    for (int r = 0; r < RB; r++)
        UNROLL
        for (int v = 0; v < NV; v++)
            UNROLL
            for (int m = 0; m < MB; m++)
                acc[r][v][m] = t->bias ? _mm512_set1_ps(t->bias[m]) : _mm512_setzero_ps();

    const size_t ld = p->ld, plane = p->plane, ys = (size_t)p->ystep * p->ld;
    const int cin = p->cin, kw = p->kw;
    const int *jo = pass_jo(p);
    const float *w = t->w; /* [i][c][j][MB] */
    for (int i = t->i0; i < t->i1; i++)
        for (int c = 0; c < cin; c++) {
            const float *xr = t->x + c * plane + (size_t)i * ld;
            for (int j = 0; j < kw; j++, w += MB) {
                const float *xj = xr + jo[j];
                __m512 xv[4][2];
                UNROLL
                for (int r = 0; r < RB; r++)
                    UNROLL
                    for (int v = 0; v < NV; v++)
                        xv[r][v] = _mm512_loadu_ps(xj + r * ys + 16 * v);
                UNROLL
                for (int m = 0; m < MB; m++) {
                    const __m512 wm = _mm512_set1_ps(w[m]);
                    UNROLL
                    for (int r = 0; r < RB; r++)
                        UNROLL
                        for (int v = 0; v < NV; v++)
                            acc[r][v][m] = _mm512_fmadd_ps(wm, xv[r][v], acc[r][v][m]);
                }
            }
        }

    UNROLL
    for (int r = 0; r < RB; r++)
        if (r < t->rows)
            UNROLL
            for (int m = 0; m < MB; m++)
                UNROLL
                for (int v = 0; v < NV; v++)
                    _mm512_mask_storeu_ps(t->out + m * t->out_plane + r * t->out_ld + 16 * v,
                                          v == NV - 1 ? t->tail : (__mmask16)0xffff,
                                          acc[r][v][m]);
}

typedef void (*corr_fn)(const dc_pass *p, const corr_args *t);

#define CORR_FN(RB, NV, MB)                                                                   \
    static DC_AVX512 void corr_##RB##_##NV##_##MB(const dc_pass *p, const corr_args *t)      \
    {                                                                                         \
        corr_tile(p, t, RB, NV, MB);                                                          \
    }
#define CORR_FNS3(RB, NV) CORR_FN(RB, NV, 1) CORR_FN(RB, NV, 2) CORR_FN(RB, NV, 3)
#define CORR_FNS6(RB, NV)                                                                     \
    CORR_FNS3(RB, NV) CORR_FN(RB, NV, 4) CORR_FN(RB, NV, 5) CORR_FN(RB, NV, 6)
#define CORR_FNS8(RB, NV) CORR_FNS6(RB, NV) CORR_FN(RB, NV, 7) CORR_FN(RB, NV, 8)
#define CORR_ROW3(RB, NV) corr_##RB##_##NV##_1, corr_##RB##_##NV##_2, corr_##RB##_##NV##_3
#define CORR_ROW6(RB, NV) CORR_ROW3(RB, NV), corr_##RB##_##NV##_4, corr_##RB##_##NV##_5, \
                          corr_##RB##_##NV##_6
#define CORR_ROW8(RB, NV) CORR_ROW6(RB, NV), corr_##RB##_##NV##_7, corr_##RB##_##NV##_8

/* only the shapes plan_tile can pick: RB*NV*MB <= 24 when RB > 1 */
CORR_FNS8(1, 1) CORR_FNS8(1, 2) CORR_FNS8(2, 1) CORR_FNS6(2, 2) CORR_FNS6(4, 1) CORR_FNS3(4, 2)

/* [rb 1, 2, 4][nv - 1][mb - 1] */
static const corr_fn corr_table[3][2][8] = {
    {{CORR_ROW8(1, 1)}, {CORR_ROW8(1, 2)}},
    {{CORR_ROW8(2, 1)}, {CORR_ROW6(2, 2)}},
    {{CORR_ROW6(4, 1)}, {CORR_ROW3(4, 2)}},
};

static __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1u); } /* n in 1..16 */

/* One sample of a pass: every channel block, block of rows and run of 16*nv outputs. */
static DC_AVX512 void corr_avx512(const dc_pass *p, const float *x, const float *wpack,
                                  const float *bias, float *out)
{
    const size_t ckk = (size_t)p->cin * p->kh * p->kw;
    const int rbi = p->rb == 4 ? 2 : p->rb - 1;
    for (int m0 = 0; m0 < p->cout; m0 += p->mb) {
        const int mb = imin(p->mb, p->cout - m0);
        for (int y0 = 0; y0 < p->oh; y0 += p->rb) {
            /* skip tap rows that only reach padding rows for every row of the block */
            const int i0 = imin(p->kh, imax(0, p->lo - (y0 + p->rb - 1) * p->ystep));
            const int i1 = imax(i0, imin(p->kh, p->hi - y0 * p->ystep));
            for (int x0 = 0; x0 < p->ow; x0 += 16 * p->nv) {
                const int nv = imin(p->nv, (p->ow - x0 + 15) / 16);
                corr_args t = {
                    .x = x + (size_t)y0 * p->ystep * p->ld + x0,
                    .w = wpack + m0 * ckk + (size_t)i0 * p->cin * p->kw * mb,
                    .bias = bias ? bias + m0 : NULL,
                    .out = out + ((size_t)m0 * p->oh + y0) * p->ow + x0,
                    .out_ld = p->ow,
                    .out_plane = (size_t)p->oh * p->ow,
                    .i0 = i0,
                    .i1 = i1,
                    .rows = imin(p->rb, p->oh - y0),
                    .tail = lanes(imin(16, p->ow - x0 - 16 * (nv - 1))),
                };
                corr_table[rbi][nv - 1][mb - 1](p, &t);
            }
        }
    }
}

/* A diff_weights tile's variable part: output channels k0.., input channel c, tap row i,
 * taps j0... */
typedef struct dw_args {
    const float *dy;   /* diff_dst of the sample at channel k0                          */
    const float *x;    /* scratch at channel c, row i                                   */
    float *dw;         /* the share at weight (k0, c, i, j0)                            */
    size_t dw_k;       /* weights from one channel k to the next (C*KH*KW)              */
    int j0, y0, y1;    /* first tap; output rows whose input row holds data             */
    int first;         /* the chunk's first sample: store, do not add                   */
} dw_args;

DC_INLINE void dw_tile(const dc_kernel *dk, const dw_args *t, const int MB, const int JB,
                       const int S1)
{
    const dc_pass *p = &dk->fwd;
    const int OW = p->ow, nvec = (OW + 15) / 16;
    const __mmask16 tail = lanes(OW - 16 * (nvec - 1));
    const size_t ys = (size_t)p->ystep * p->ld, dyk = (size_t)p->oh * OW;
    const float *xbase = t->x;
    const int *jo = pass_jo(p) + t->j0;
    if (S1)
        xbase += t->j0;
    __m512 acc[4][6];
    UNROLL
    for (int m = 0; m < MB; m++)
        UNROLL
        for (int jj = 0; jj < JB; jj++)
            acc[m][jj] = _mm512_setzero_ps();

    for (int y = t->y0; y < t->y1; y++) {
        const float *xr = xbase + y * ys, *dr = t->dy + (size_t)y * OW;
        for (int v = 0; v < nvec; v++) {
            /* zero lanes past the row in both factors: the sum runs over all 16 lanes */
            const __mmask16 k = v == nvec - 1 ? tail : (__mmask16)0xffff;
            __m512 d[4];
            UNROLL
            for (int m = 0; m < MB; m++)
                d[m] = _mm512_maskz_loadu_ps(k, dr + m * dyk + 16 * v);
            UNROLL
            for (int jj = 0; jj < JB; jj++) {
                /* at stride 1 the tap offsets are constants: fewer registers */
                const __m512 xv = _mm512_maskz_loadu_ps(k, xr + (S1 ? jj : jo[jj]) + 16 * v);
                UNROLL
                for (int m = 0; m < MB; m++)
                    acc[m][jj] = _mm512_fmadd_ps(d[m], xv, acc[m][jj]);
            }
        }
    }

    UNROLL
    for (int m = 0; m < MB; m++)
        UNROLL
        for (int jj = 0; jj < JB; jj++) {
            if (dk->lanes) {
                float *q = t->dw + (m * t->dw_k + jj) * 16;
                _mm512_storeu_ps(q, t->first ? acc[m][jj]
                                             : _mm512_add_ps(_mm512_loadu_ps(q), acc[m][jj]));
            } else {
                float *q = t->dw + m * t->dw_k + jj;
                const float s = _mm512_reduce_add_ps(acc[m][jj]);
                *q = t->first ? s : *q + s;
            }
        }
}

typedef void (*dw_fn)(const dc_kernel *dk, const dw_args *t);

#define DW_FN(MB, JB)                                                                         \
    static DC_AVX512 void dw_##MB##_##JB(const dc_kernel *dk, const dw_args *t)              \
    {                                                                                         \
        if (dk->fwd.sw == 1)                                                                  \
            dw_tile(dk, t, MB, JB, 1);                                                        \
        else                                                                                  \
            dw_tile(dk, t, MB, JB, 0);                                                        \
    }
#define DW_FNS(MB)                                                                            \
    DW_FN(MB, 1) DW_FN(MB, 2) DW_FN(MB, 3) DW_FN(MB, 4) DW_FN(MB, 5) DW_FN(MB, 6)
#define DW_ROW(MB)                                                                            \
    {dw_##MB##_1, dw_##MB##_2, dw_##MB##_3, dw_##MB##_4, dw_##MB##_5, dw_##MB##_6}

DW_FNS(1) DW_FNS(2) DW_FNS(3) DW_FNS(4)

/* [mb - 1][jb - 1] */
static const dw_fn dw_table[4][6] = {DW_ROW(1), DW_ROW(2), DW_ROW(3), DW_ROW(4)};

/* One sample's diff_weights into its chunk's share dw. */
static DC_AVX512 void diff_weights_avx512(const dc_kernel *dk, const float *x,
                                          const float *dy, float *dw, int first)
{
    const dc_pass *p = &dk->fwd;
    const int K = p->cout, C = p->cin, KH = p->kh, KW = p->kw;
    const size_t ckk = (size_t)C * KH * KW, per = dk->lanes ? 16 : 1;
    for (int k0 = 0; k0 < K; k0 += dk->dw_mb) {
        const int mb = imin(dk->dw_mb, K - k0);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < KH; i++) {
                /* output rows y with lo <= y*ystep + i < hi */
                const int y0 = imax(0, (p->lo - i + p->ystep - 1) / p->ystep);
                const int y1 = imin(p->oh, imax(0, (p->hi - i + p->ystep - 1) / p->ystep));
                for (int j0 = 0; j0 < KW; j0 += dk->dw_jb) {
                    const int jb = imin(dk->dw_jb, KW - j0);
                    dw_args t = {
                        .dy = dy + (size_t)k0 * p->oh * p->ow,
                        .x = x + c * p->plane + (size_t)i * p->ld,
                        .dw = dw + ((k0 * ckk) + ((size_t)c * KH + i) * KW + j0) * per,
                        .dw_k = ckk,
                        .j0 = j0,
                        .y0 = y0,
                        .y1 = imax(y0, y1),
                        .first = first,
                    };
                    dw_table[mb - 1][jb - 1](dk, &t);
                }
            }
    }
}

/* Forward vectorised over output channels instead (fwdk), for the same reason: 16
 * channels of XB neighbouring outputs of one row in XB zmm. Per (i, c) the KW weight
 * vectors stay in registers and each input of the row is broadcast once and feeds the up
 * to KW outputs that read it: KW + XB + KW - 1 loads for XB*KW FMAs. The tile's outputs
 * are (position, channel); they go to NCHW through a small transposing copy. Instances
 * for KW = 3 and 5 (LeNet, AlexNet conv2-5) and XB = 4..12; other windows take the
 * width-vectorised tile. */
typedef struct fwdk_args {
    const float *x;      /* scratch at channel 0, row y * ystep, column x0              */
    const float *w;      /* weights packed [i][c][j][16] for channels kv..kv+15        */
    const float *bias;   /* (K), or NULL                                               */
    float *out;          /* output at (0, y, x0)                                       */
    int kv, k1;          /* channels kv..k1-1 to write                                 */
    int i0, i1;          /* tap rows that reach scratch rows with data                 */
} fwdk_args;

DC_INLINE void fwdk_tile(const dc_pass *p, const fwdk_args *t, const int XB, const int KW)
{
    const size_t ld = p->ld, plane = p->plane, P = (size_t)p->oh * p->ow;
    const int cin = p->cin;
    const __mmask16 km = lanes(t->k1 - t->kv);
    const __m512 b0 =
        t->bias ? _mm512_maskz_loadu_ps(km, t->bias + t->kv) : _mm512_setzero_ps();
    __m512 acc[FWDK_XB_MAX];
    UNROLL
    for (int x = 0; x < XB; x++)
        acc[x] = b0;

    const float *wp = t->w + (size_t)t->i0 * cin * KW * 16;
    for (int i = t->i0; i < t->i1; i++)
        for (int c = 0; c < cin; c++, wp += KW * 16) {
            const float *xr = t->x + c * plane + (size_t)i * ld;
            __m512 w[5];
            UNROLL
            for (int j = 0; j < KW; j++)
                w[j] = _mm512_loadu_ps(wp + 16 * j);
            UNROLL
            for (int s = 0; s < XB + KW - 1; s++) {
                const __m512 b = _mm512_set1_ps(xr[s]);
                UNROLL
                for (int j = 0; j < KW; j++)
                    if (s - j >= 0 && s - j < XB)
                        acc[s - j] = _mm512_fmadd_ps(w[j], b, acc[s - j]);
            }
        }

    /* (position, channel) -> out[k, y, x0 + x] */
    float tile[FWDK_XB_MAX][16] __attribute__((aligned(64)));
    UNROLL
    for (int x = 0; x < XB; x++)
        _mm512_store_ps(tile[x], acc[x]);
    for (int k = 0; k < t->k1 - t->kv; k++) {
        float *o = t->out + (t->kv + k) * P;
        for (int x = 0; x < XB; x++)
            o[x] = tile[x][k];
    }
}

typedef void (*fwdk_fn)(const dc_pass *p, const fwdk_args *t);

#define FWDK_FN(XB, KW)                                                                       \
    static DC_AVX512 void fwdk_##XB##_##KW(const dc_pass *p, const fwdk_args *t)             \
    {                                                                                         \
        fwdk_tile(p, t, XB, KW);                                                              \
    }
#define FWDK_FNS(XB) FWDK_FN(XB, 3) FWDK_FN(XB, 5)

FWDK_FNS(4) FWDK_FNS(5) FWDK_FNS(6) FWDK_FNS(7) FWDK_FNS(8) FWDK_FNS(9) FWDK_FNS(10)
FWDK_FNS(11) FWDK_FNS(12)

/* [xb - FWDK_XB_MIN][kw == 5] */
static const fwdk_fn fwdk_table[FWDK_XB_MAX - FWDK_XB_MIN + 1][2] = {
    {fwdk_4_3, fwdk_4_5},   {fwdk_5_3, fwdk_5_5},   {fwdk_6_3, fwdk_6_5},
    {fwdk_7_3, fwdk_7_5},   {fwdk_8_3, fwdk_8_5},   {fwdk_9_3, fwdk_9_5},
    {fwdk_10_3, fwdk_10_5}, {fwdk_11_3, fwdk_11_5}, {fwdk_12_3, fwdk_12_5},
};

/* One sample's forward by fwdk tiles, rows cut into balanced segments of at most
 * FWDK_XB_MAX outputs (each at least FWDK_XB_MIN: the kernel has OW >= FWDK_XB_MIN). */
static DC_AVX512 void forward_k_avx512(const dc_kernel *dk, const float *x, const float *bias,
                                       float *out)
{
    const dc_pass *p = &dk->fwd;
    const int segs = (p->ow + FWDK_XB_MAX - 1) / FWDK_XB_MAX;
    const size_t ckk = (size_t)p->cin * p->kh * p->kw;
    for (int kv = 0; kv < p->cout; kv += 16)
        for (int y = 0; y < p->oh; y++) {
            const int i0 = imin(p->kh, imax(0, p->lo - y * p->ystep));
            const int i1 = imax(i0, imin(p->kh, p->hi - y * p->ystep));
            for (int sg = 0, x0 = 0; sg < segs; sg++) {
                const int xb = (p->ow - x0 + (segs - sg) - 1) / (segs - sg);
                fwdk_args t = {
                    .x = x + (size_t)y * p->ystep * p->ld + x0,
                    .w = dk->wf + (size_t)kv * ckk,
                    .bias = bias,
                    .out = out + (size_t)y * p->ow + x0,
                    .kv = kv,
                    .k1 = imin(p->cout, kv + 16),
                    .i0 = i0,
                    .i1 = i1,
                };
                fwdk_table[xb - FWDK_XB_MIN][p->kw == 5](p, &t);
                x0 += xb;
            }
        }
}

/* diff_weights vectorised over output channels instead (dwk): when a row has few outputs
 * (LeNet's conv2: 10 of 16 lanes) and K fills the lanes. diff_dst is first transposed to
 * (position, kp); a tile keeps 16 channels x IB*JB taps (up to 25 zmm) and per output
 * position loads one vector of diff_dst and does IB*JB FMAs with broadcast inputs. */
typedef struct dwk_args {
    const float *dyt;  /* transposed diff_dst at channel kv: (P, kp)                    */
    const float *x;    /* scratch at channel c, row i0, column j0                      */
    float *dw;         /* the share (C, KH, KW, kp) at (c, i0, j0, kv)                 */
    int y0, y1;        /* output rows whose IB input rows are not all padding         */
    int first;         /* the chunk's first sample: store, do not add                  */
} dwk_args;

DC_INLINE void dwk_tile(const dc_kernel *dk, const dwk_args *t, const int IB, const int JB)
{
    const dc_pass *p = &dk->fwd;
    const int OW = p->ow, KW = p->kw;
    const size_t ld = p->ld, ys = (size_t)p->ystep * p->ld, kp = dk->kp;
    __m512 acc[5][5];
    UNROLL
    for (int ii = 0; ii < IB; ii++)
        UNROLL
        for (int jj = 0; jj < JB; jj++)
            acc[ii][jj] = _mm512_setzero_ps();

    for (int y = t->y0; y < t->y1; y++) {
        const float *xr = t->x + y * ys, *dr = t->dyt + (size_t)y * OW * kp;
        int ox = 0;
        /* two positions at a time: input (i, ox + j') serves tap j' of position ox and tap
         * j' - 1 of position ox + 1, so each broadcast feeds two FMAs (32 loads for 50
         * FMAs, not 52: the FMAs, not the loads, set the pace) */
        for (; ox + 2 <= OW; ox += 2) {
            const __m512 d0 = _mm512_loadu_ps(dr + ox * kp);
            const __m512 d1 = _mm512_loadu_ps(dr + (ox + 1) * kp);
            UNROLL
            for (int ii = 0; ii < IB; ii++)
                UNROLL
                for (int jj = 0; jj <= JB; jj++) {
                    const __m512 b = _mm512_set1_ps(xr[ii * ld + jj + ox]);
                    if (jj < JB)
                        acc[ii][jj] = _mm512_fmadd_ps(d0, b, acc[ii][jj]);
                    if (jj > 0)
                        acc[ii][jj - 1] = _mm512_fmadd_ps(d1, b, acc[ii][jj - 1]);
                }
        }
        for (; ox < OW; ox++) {
            const __m512 d = _mm512_loadu_ps(dr + ox * kp);
            UNROLL
            for (int ii = 0; ii < IB; ii++)
                UNROLL
                for (int jj = 0; jj < JB; jj++)
                    acc[ii][jj] = _mm512_fmadd_ps(d, _mm512_set1_ps(xr[ii * ld + jj + ox]),
                                                  acc[ii][jj]);
        }
    }

    UNROLL
    for (int ii = 0; ii < IB; ii++)
        UNROLL
        for (int jj = 0; jj < JB; jj++) {
            float *q = t->dw + ((size_t)ii * KW + jj) * kp;
            _mm512_storeu_ps(q, t->first ? acc[ii][jj]
                                         : _mm512_add_ps(_mm512_loadu_ps(q), acc[ii][jj]));
        }
}

typedef void (*dwk_fn)(const dc_kernel *dk, const dwk_args *t);

#define DWK_FN(IB, JB)                                                                        \
    static DC_AVX512 void dwk_##IB##_##JB(const dc_kernel *dk, const dwk_args *t)            \
    {                                                                                         \
        dwk_tile(dk, t, IB, JB);                                                              \
    }
#define DWK_FNS(IB) DWK_FN(IB, 1) DWK_FN(IB, 2) DWK_FN(IB, 3) DWK_FN(IB, 4) DWK_FN(IB, 5)
#define DWK_ROW(IB) {dwk_##IB##_1, dwk_##IB##_2, dwk_##IB##_3, dwk_##IB##_4, dwk_##IB##_5}

DWK_FNS(1) DWK_FNS(2) DWK_FNS(3) DWK_FNS(4) DWK_FNS(5)

static const dwk_fn dwk_table[5][5] = {DWK_ROW(1), DWK_ROW(2), DWK_ROW(3), DWK_ROW(4),
                                       DWK_ROW(5)}; /* [ib-1][jb-1] */

/* One sample's diff_weights into its chunk's share dw (C, KH, KW, kp), via dyt. */
static DC_AVX512 void diff_weights_k_avx512(const dc_kernel *dk, const float *x,
                                            const float *dy, float *dyt, float *dw,
                                            int first)
{
    const dc_pass *p = &dk->fwd;
    const int K = p->cout, C = p->cin, KH = p->kh, KW = p->kw, P = p->oh * p->ow;
    const size_t kp = dk->kp;
    /* transpose: one gather of 16 channels per position (channels k >= K of dyt stay
     * zero from the allocation on) */
    const __m512i rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(P));
    for (int kv = 0; kv < K; kv += 16) {
        const __mmask16 m = lanes(imin(16, K - kv));
        for (int q = 0; q < P; q++)
            _mm512_storeu_ps(dyt + q * kp + kv,
                             _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows,
                                                      dy + (size_t)kv * P + q, 4));
    }
    for (size_t kv = 0; kv < kp; kv += 16)
        for (int c = 0; c < C; c++)
            for (int i0 = 0; i0 < KH; i0 += dk->dwk_ib) {
                const int ib = imin(dk->dwk_ib, KH - i0);
                /* output rows y with some of rows y*ystep + i0 .. + ib-1 in [lo, hi) */
                const int y0 = imax(0, (p->lo - (i0 + ib - 1) + p->ystep - 1) / p->ystep);
                const int y1 = imin(p->oh, imax(0, (p->hi - i0 + p->ystep - 1) / p->ystep));
                for (int j0 = 0; j0 < KW; j0 += dk->dwk_jb) {
                    const int jb = imin(dk->dwk_jb, KW - j0);
                    dwk_args t = {
                        .dyt = dyt + kv,
                        .x = x + c * p->plane + (size_t)i0 * p->ld + j0,
                        .dw = dw + (((size_t)c * KH + i0) * KW + j0) * kp + kv,
                        .y0 = y0,
                        .y1 = imax(y0, y1),
                        .first = first,
                    };
                    dwk_table[ib - 1][jb - 1](dk, &t);
                }
            }
}

/* The sum of x[0..n-1] in double (as naive): a bias gradient may cancel to far below
 * its terms. Four independent sums, so it is not bound by the latency of one chain. */
static DC_AVX512 __m512d widen(__m512 v, int high) /* 8 floats of v as doubles */
{
    const __m256 h = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm512_cvtps_pd(high ? h : _mm512_castps512_ps256(v));
}

static DC_AVX512 double sum_avx512(const float *x, int n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        s0 = _mm512_add_pd(s0, widen(a, 0));
        s1 = _mm512_add_pd(s1, widen(a, 1));
        s2 = _mm512_add_pd(s2, widen(b, 0));
        s3 = _mm512_add_pd(s3, widen(b, 1));
    }
    for (; i < n; i += 16) {
        const __m512 a = _mm512_maskz_loadu_ps(lanes(imin(16, n - i)), x + i);
        s0 = _mm512_add_pd(s0, widen(a, 0));
        s1 = _mm512_add_pd(s1, widen(a, 1));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
}

/* diff_weights[idx] = the sum of the 16 lanes of the chunks' shares, in chunk order
 * (empty chunks left out). */
static DC_AVX512 void reduce_lanes_avx512(const dc_kernel *dk, float *dweight, int i0, int i1)
{
    for (int idx = i0; idx < i1; idx++) {
        __m512 s = _mm512_setzero_ps();
        for (int c = 0; c < dk->nchunks; c++)
            if (dk->chunk[c].n1 > dk->chunk[c].n0)
                s = _mm512_add_ps(s, _mm512_loadu_ps(dk->chunk[c].dw + (size_t)idx * 16));
        dweight[idx] = _mm512_reduce_add_ps(s);
    }
}

/* Lanes 0 .. n-1 for any n (none below 1, all 16 from 16). */
static __mmask16 upto(int n) { return n <= 0 ? 0 : n >= 16 ? 0xffff : lanes(n); }

/* relu_max_pool with 16 neighbouring windows of a row per vector, for strides 1 and 2
 * along the row: tap (i, j) of the 16 windows is one load at stride 1, and at stride 2
 * the even floats of two loads. Loads past the row are masked (they may pass the end of
 * the scratch); the same comparisons in the same order as relu_max_pool, so the same
 * winners. */
static DC_AVX512 void relu_max_pool_avx512(const dc_kernel *dk, const float *y, float *out,
                                           uint8_t *arg)
{
    const cnb_op_desc *p = &dk->pool;
    const int KH = p->u.pool.kh, KW = p->u.pool.kw, SH = p->u.pool.sh, SW = p->u.pool.sw;
    const int H = p->src.h, W = p->src.w, PH = p->dst.h, PW = p->dst.w;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int k = 0; k < p->dst.c; k++, y += (size_t)H * W)
        for (int oh = 0; oh < PH; oh++, out += PW, arg += PW)
            for (int x0 = 0; x0 < PW; x0 += 16) {
                __m512 m = _mm512_setzero_ps();
                __m512i best = _mm512_setzero_si512();
                for (int i = 0; i < KH; i++) {
                    const float *row = y + (size_t)(oh * SH + i) * W + x0 * SW;
                    const int left = W - x0 * SW; /* floats of the row from row[0] on */
                    for (int j = 0; j < KW; j++) {
                        __m512 v = _mm512_maskz_loadu_ps(upto(left - j), row + j);
                        if (SW == 2) {
                            const __m512 hi =
                                _mm512_maskz_loadu_ps(upto(left - j - 16), row + j + 16);
                            v = _mm512_permutex2var_ps(v, even, hi);
                        }
                        const __mmask16 gt = i + j ? _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ)
                                                   : (__mmask16)0xffff;
                        m = _mm512_mask_mov_ps(m, gt, v);
                        best = _mm512_mask_mov_epi32(best, gt, _mm512_set1_epi32(i * KW + j));
                    }
                }
                const __mmask16 keep = upto(PW - x0);
                _mm512_mask_storeu_ps(out + x0, keep, _mm512_max_ps(m, _mm512_setzero_ps()));
                _mm512_mask_cvtepi32_storeu_epi8(arg + x0, keep, best);
            }
}

/* fused_diff's pooling part where the windows tile the rows, 2 wide (KW = SW = 2, KH =
 * SH; LeNet-5's): every input is in one window at most, so its gradient is diff_dst or 0,
 * a select, for 8 windows (16 inputs of a row) at once; lane l is tap (i, l % 2) of window
 * l / 2. The same values as the scatter (0 + dd is dd). g is the sample's plane set. */
static DC_AVX512 void pool_diff_tiled_avx512(const dc_kernel *dk, const float *dst,
                                             const float *dd, const uint8_t *arg, float *g)
{
    const cnb_op_desc *p = &dk->pool;
    const int KH = p->u.pool.kh, H = p->src.h, W = p->src.w, PH = p->dst.h, PW = p->dst.w;
    if (PH * KH != H || PW * 2 != W) /* rows or columns no window covers */
        memset(g, 0, sizeof(float) * cnb_shape_size(p->src));
    const __m512i pair = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i col = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
    for (int k = 0; k < p->dst.c; k++, g += (size_t)H * W)
        for (int ph = 0; ph < PH; ph++, dst += PW, dd += PW, arg += PW)
            for (int x0 = 0; x0 < PW; x0 += 8) {
                const int nw = imin(8, PW - x0);
                uint64_t a8 = 0;
                memcpy(&a8, arg + x0, (size_t)nw);
                const __m512i a = _mm512_permutexvar_epi32(
                    pair, _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)a8)));
                const __mmask16 wins = lanes(nw);
                const __m512 d = _mm512_permutexvar_ps(pair, _mm512_maskz_loadu_ps(wins, dd + x0));
                const __m512 y = _mm512_permutexvar_ps(pair, _mm512_maskz_loadu_ps(wins, dst + x0));
                const __mmask16 pos = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ);
                for (int i = 0; i < KH; i++) {
                    const __m512i tap = _mm512_add_epi32(col, _mm512_set1_epi32(2 * i));
                    const __mmask16 win = _mm512_mask_cmpeq_epi32_mask(pos, a, tap);
                    _mm512_mask_storeu_ps(g + (size_t)(ph * KH + i) * W + 2 * x0, upto(2 * nw),
                                          _mm512_maskz_mov_ps(win, d));
                }
            }
}

/* ------------------------------------------------------------------------------------ */
/* Batch lanes: 16 samples per zmm, lane l of group g holding sample 16 g + l, for small
 * stride-1 convolutions (LeNet-5's), where neither a row nor the channels fill 16 lanes
 * without waste: a row of 10 or 14 outputs, and diff_src as a correlation of the padded
 * diff_dst, half of whose products are with its zero padding. Here every lane is a sample
 * and every product is one the formula has, but for the zero columns around a padded
 * input (LeNet-5's conv1: 4% of them). A group's tensors are turned to lanes by 16 x 16
 * transposes (to_lanes, from_lanes), once a call each; weights are scalars, broadcast.
 *
 *   forward    2 rows x XB <= 10 outputs of one channel k; per (c, i) the KW weights in
 *              registers, each input vector loaded once for the up to KW outputs of its
 *              row that read it. With a 2x2 max pooling at stride 2 after it (a fused
 *              run), the ReLU and the pooling are done on the tile's registers: XB / 2
 *              windows, their outputs and winners stored, the convolution's never. A run
 *              with another pooling is refused (the host then fuses conv and ReLU).
 *   diff_wts   MB <= 4 channels k x KW taps j of one (c, i), over every output position
 *              of the group: MB + KW loads for MB * KW FMAs. Each weight's 16 lanes stay
 *              apart in the chunk's share (the lanes layout, added up by
 *              reduce_lanes_avx512).
 *   diff_src   3 rows (2 for XB 9 and 10) x XB <= 10 inputs of one channel c: per (k, i)
 *              the KW weights in registers, each diff_dst vector that reaches the tile
 *              loaded once; taps that reach no output (past diff_dst's edges) are skipped,
 *              not multiplied by zeros.
 *   diff_bias  per lane in double, 8 channels at a time (16 sums in flight).
 * Each output is summed in the same order whichever tile, fusion or thread computes it,
 * so a fused run gives the bits of this convolution followed by naive's ReLU and pooling.
 */

/* An in-register 16 x 16 transpose: r[i][j] -> r[j][i]. */
DC_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    UNROLL
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4i + c], 128-bit lane L: column 4L + c of rows 4i .. 4i + 3 */
    UNROLL
    for (int i = 0; i < 4; i++)
        UNROLL
        for (int h = 0; h < 2; h++) {
            const __m512d a = _mm512_castps_pd(t[4 * i + h]);
            const __m512d b = _mm512_castps_pd(t[4 * i + h + 2]);
            r[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* gather the 128-bit lanes: column 4L + c from lane L of r[c], r[4 + c], ... */
    UNROLL
    for (int c = 0; c < 4; c++) {
        const __m512 a = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
        const __m512 b = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
        const __m512 e = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xee);
        const __m512 f = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xee);
        t[c] = _mm512_shuffle_f32x4(a, b, 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(a, b, 0xdd);
        t[8 + c] = _mm512_shuffle_f32x4(e, f, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(e, f, 0xdd);
    }
    UNROLL
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* Samples 0 .. nv-1 of src (sn floats apart, npos each) into lanes: position p's vector
 * at t + 16 * at[p] (at NULL: p); lanes nv .. 15 get zeros. */
static DC_AVX512 void to_lanes(const float *src, size_t sn, int nv, int npos, const int *at,
                               float *t)
{
    for (int p0 = 0; p0 < npos; p0 += 16) {
        const __mmask16 m = upto(npos - p0);
        __m512 r[16];
        UNROLL
        for (int l = 0; l < 16; l++)
            r[l] = l < nv ? _mm512_maskz_loadu_ps(m, src + l * sn + p0) : _mm512_setzero_ps();
        transpose16(r);
        UNROLL
        for (int q = 0; q < 16; q++)
            if (p0 + q < npos)
                _mm512_storeu_ps(t + 16 * (size_t)(at ? at[p0 + q] : p0 + q), r[q]);
    }
}

/* The inverse for contiguous positions: lanes 0 .. nv-1 of t's npos vectors into samples
 * of dst, sn floats apart. */
static DC_AVX512 void from_lanes(const float *t, int npos, float *dst, size_t sn, int nv)
{
    for (int p0 = 0; p0 < npos; p0 += 16) {
        const int n = imin(16, npos - p0);
        __m512 r[16];
        UNROLL
        for (int q = 0; q < 16; q++)
            r[q] = q < n ? _mm512_loadu_ps(t + 16 * (size_t)(p0 + q)) : _mm512_setzero_ps();
        transpose16(r);
        UNROLL
        for (int l = 0; l < 16; l++)
            if (l < nv)
                _mm512_mask_storeu_ps(dst + l * sn + p0, lanes(n), r[l]);
    }
}

/* A forward tile's variable part: output rows y0, y0 + 1 of channel k, XB outputs from
 * column x0 on. */
typedef struct bl_fwd_args {
    const float *x;   /* the group's padded input in lanes at (channel 0, row 0, column x0) */
    const float *w;   /* channel k's weights: (C, KH, KW)                                   */
    float bias;       /* bias[k], or 0                                                      */
    float *out;       /* lanes at (k, y0, x0), or pooled at (k, y0 / 2, x0 / 2)             */
    uint8_t *arg;     /* pooled: the winners' lanes at (k, y0 / 2, x0 / 2)                  */
    int row0;         /* input row of tap row 0 for output row y0: y0 - PH (may be < 0)     */
    int rows;         /* output rows to store: 2, or 1 in a last block                      */
    int relu;         /* store max(conv, 0)                                                 */
} bl_fwd_args;

DC_INLINE void bl_fwd_tile(const dc_kernel *dk, const bl_fwd_args *t, const int XB,
                           const int KW, const int POOL)
{
    const int C = dk->d.src.c, H = dk->d.src.h, KH = dk->d.u.conv.kh, OW = dk->d.dst.w;
    const size_t ld = (size_t)dk->bl_wp * 16, plane = (size_t)H * ld;
    __m512 acc[2][BL_XB_MAX];
    UNROLL
    for (int r = 0; r < 2; r++)
        UNROLL
        for (int x = 0; x < XB; x++)
            acc[r][x] = _mm512_set1_ps(t->bias);

    for (int c = 0; c < C; c++)
        for (int i = 0; i < KH; i++) {
            __m512 w[5];
            UNROLL
            for (int j = 0; j < KW; j++)
                w[j] = _mm512_set1_ps(t->w[(c * KH + i) * KW + j]);
            UNROLL
            for (int r = 0; r < 2; r++) {
                const int row = t->row0 + r + i;
                if (row < 0 || row >= H)
                    continue; /* a padding row: zeros */
                const float *xr = t->x + c * plane + (size_t)row * ld;
                UNROLL
                for (int s = 0; s < XB + KW - 1; s++) {
                    const __m512 v = _mm512_loadu_ps(xr + 16 * s);
                    UNROLL
                    for (int j = 0; j < KW; j++)
                        if (s - j >= 0 && s - j < XB)
                            acc[r][s - j] = _mm512_fmadd_ps(w[j], v, acc[r][s - j]);
                }
            }
        }

    const __m512 zero = _mm512_setzero_ps();
    if (!POOL) {
        UNROLL
        for (int r = 0; r < 2; r++)
            if (r < t->rows)
                UNROLL
                for (int x = 0; x < XB; x++)
                    _mm512_storeu_ps(t->out + 16 * ((size_t)r * OW + x),
                                     t->relu ? _mm512_max_ps(acc[r][x], zero) : acc[r][x]);
        return;
    }
    /* windows p: taps 0..3 = (0, 2p), (0, 2p + 1), (1, 2p), (1, 2p + 1), the first of the
     * largest winning as in relu_max_pool; a window whose largest is <= 0 has no winner
     * (255): the ReLU stops its gradient */
    UNROLL
    for (int p = 0; p < XB / 2; p++) {
        __m512 m = acc[0][2 * p];
        __m512i best = _mm512_setzero_si512();
        UNROLL
        for (int tap = 1; tap < 4; tap++) {
            const __m512 v = acc[tap / 2][2 * p + tap % 2];
            const __mmask16 gt = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ);
            m = _mm512_mask_mov_ps(m, gt, v);
            best = _mm512_mask_mov_epi32(best, gt, _mm512_set1_epi32(tap));
        }
        const __mmask16 pos = _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ);
        _mm512_storeu_ps(t->out + 16 * p, _mm512_max_ps(m, zero));
        _mm_storeu_si128((__m128i *)(t->arg + 16 * p),
                         _mm512_cvtepi32_epi8(_mm512_mask_mov_epi32(_mm512_set1_epi32(255), pos,
                                                                    best)));
    }
}

typedef void (*bl_fwd_fn)(const dc_kernel *dk, const bl_fwd_args *t);

#define BL_FWD_FN(XB, KW, POOL)                                                               \
    static DC_AVX512 void bl_fwd_##XB##_##KW##_##POOL(const dc_kernel *dk,                     \
                                                      const bl_fwd_args *t)                   \
    {                                                                                         \
        bl_fwd_tile(dk, t, XB, KW, POOL);                                                     \
    }
#define BL_FWD_FNS(XB) BL_FWD_FN(XB, 3, 0) BL_FWD_FN(XB, 5, 0)
#define BL_POOL_FNS(XB) BL_FWD_FN(XB, 3, 1) BL_FWD_FN(XB, 5, 1)

BL_FWD_FNS(4) BL_FWD_FNS(5) BL_FWD_FNS(6) BL_FWD_FNS(7) BL_FWD_FNS(8) BL_FWD_FNS(9)
BL_FWD_FNS(10) BL_POOL_FNS(4) BL_POOL_FNS(6) BL_POOL_FNS(8) BL_POOL_FNS(10)

/* [xb - BL_XB_MIN][kw == 5]; pooled [xb / 2 - 2][kw == 5] */
static const bl_fwd_fn bl_fwd_table[BL_XB_MAX - BL_XB_MIN + 1][2] = {
    {bl_fwd_4_3_0, bl_fwd_4_5_0}, {bl_fwd_5_3_0, bl_fwd_5_5_0}, {bl_fwd_6_3_0, bl_fwd_6_5_0},
    {bl_fwd_7_3_0, bl_fwd_7_5_0}, {bl_fwd_8_3_0, bl_fwd_8_5_0}, {bl_fwd_9_3_0, bl_fwd_9_5_0},
    {bl_fwd_10_3_0, bl_fwd_10_5_0},
};
static const bl_fwd_fn bl_pool_table[4][2] = {
    {bl_fwd_4_3_1, bl_fwd_4_5_1}, {bl_fwd_6_3_1, bl_fwd_6_5_1}, {bl_fwd_8_3_1, bl_fwd_8_5_1},
    {bl_fwd_10_3_1, bl_fwd_10_5_1},
};

/* Segment sg of `segs` balanced segments of n: its length (the first from 0 on). */
static int segment(int n, int segs, int sg, int *at)
{
    *at = (int)((long long)n * sg / segs);
    return (int)((long long)n * (sg + 1) / segs) - *at;
}

/* A group's forward: src to lanes, the tiles, the output (or the pooling's) to dst. */
static DC_AVX512 void bl_forward_group(const dc_kernel *dk, const cnb_args *a,
                                       const dc_slot *s, int g)
{
    const cnb_op_desc *d = &dk->d;
    const int K = d->dst.c, C = d->src.c, KH = d->u.conv.kh, KW = d->u.conv.kw;
    const int OH = d->dst.h, OW = d->dst.w, PH = d->u.conv.ph;
    const int n0 = 16 * g, nv = imin(16, d->batch - n0), pool = dk->fuse == FUSE_POOL;
    const size_t src_n = cnb_shape_size(d->src), out_n = cnb_shape_size(dk->out);
    to_lanes(a->src + n0 * src_n, src_n, nv, (int)src_n, dk->bl_at, s->xl);
    /* pooled: the rows and columns 2x2 windows cover, in segments of whole windows */
    const int rows = pool ? 2 * dk->out.h : OH, cols = pool ? 2 * dk->out.w : OW;
    const int unit = pool ? 2 : 1, segs = (cols + BL_XB_MAX - 1) / BL_XB_MAX;
    for (int k = 0; k < K; k++)
        for (int y0 = 0; y0 < rows; y0 += 2)
            for (int sg = 0; sg < segs; sg++) {
                int x0;
                const int xb = unit * segment(cols / unit, segs, sg, &x0);
                x0 *= unit;
                bl_fwd_args t = {
                    .x = s->xl + 16 * (size_t)x0,
                    .w = a->weights + (size_t)k * C * KH * KW,
                    .bias = a->bias ? a->bias[k] : 0.0f,
                    .row0 = y0 - PH,
                    .rows = imin(2, rows - y0),
                    .relu = dk->fuse == FUSE_RELU,
                };
                if (pool) {
                    const size_t at = ((size_t)k * dk->out.h + y0 / 2) * dk->out.w + x0 / 2;
                    t.out = s->ol + 16 * at;
                    t.arg = dk->arg + ((size_t)g * out_n + at) * 16;
                    bl_pool_table[xb / 2 - 2][KW == 5](dk, &t);
                } else {
                    t.out = s->ol + 16 * (((size_t)k * OH + y0) * OW + x0);
                    bl_fwd_table[xb - BL_XB_MIN][KW == 5](dk, &t);
                }
            }
    from_lanes(s->ol, (int)out_n, a->dst + n0 * out_n, out_n, nv);
}

/* The gradient of a group's convolution output into s->gl (K, OH, OW) lanes: diff_dst;
 * in a fused run where the ReLU passes it (dst > 0), with pooling to each window's winner
 * (2x2 windows do not overlap: every other input gets 0). */
static DC_AVX512 void bl_grad(const dc_kernel *dk, const cnb_args *a, const dc_slot *s, int g)
{
    const cnb_op_desc *d = &dk->d;
    const int n0 = 16 * g, nv = imin(16, d->batch - n0);
    const int OH = d->dst.h, OW = d->dst.w, P = OH * OW;
    const size_t out_n = cnb_shape_size(dk->out);
    const float *dd = a->diff_dst + n0 * out_n;
    if (dk->fuse != FUSE_POOL) {
        to_lanes(dd, out_n, nv, (int)out_n, NULL, s->gl);
        if (dk->fuse == FUSE_RELU) {
            to_lanes(a->dst + n0 * out_n, out_n, nv, (int)out_n, NULL, s->ol);
            for (size_t p = 0; p < (size_t)d->dst.c * P; p++) {
                const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(s->ol + 16 * p),
                                                         _mm512_setzero_ps(), _CMP_GT_OQ);
                _mm512_storeu_ps(s->gl + 16 * p,
                                 _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(s->gl + 16 * p)));
            }
        }
        return;
    }
    const int PH = dk->out.h, PW = dk->out.w;
    to_lanes(dd, out_n, nv, (int)out_n, NULL, s->ol);
    if (2 * PH != OH || 2 * PW != OW) /* a row or column no window covers */
        memset(s->gl, 0, sizeof(float) * 16 * d->dst.c * P);
    const uint8_t *arg = dk->arg + (size_t)g * out_n * 16;
    for (int k = 0; k < d->dst.c; k++)
        for (int py = 0; py < PH; py++)
            for (int px = 0; px < PW; px++) {
                const size_t at = ((size_t)k * PH + py) * PW + px;
                const __m512 v = _mm512_loadu_ps(s->ol + 16 * at);
                const __m512i win =
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(arg + 16 * at)));
                float *gk = s->gl + 16 * (((size_t)k * OH + 2 * py) * OW + 2 * px);
                for (int tap = 0; tap < 4; tap++)
                    _mm512_storeu_ps(gk + 16 * ((tap / 2) * OW + tap % 2),
                                     _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(
                                                             win, _mm512_set1_epi32(tap)),
                                                         v));
            }
}

/* db[k * 16 + l] (+)= the sum over positions of lane l of gl's channel k, in double. */
static DC_AVX512 void bl_diff_bias(const dc_kernel *dk, const float *gl, double *db, int first)
{
    const int K = dk->d.dst.c, P = dk->d.dst.h * dk->d.dst.w;
    for (int k0 = 0; k0 < K; k0 += 8) {
        const int kb = imin(8, K - k0);
        __m512d acc[8][2];
        UNROLL
        for (int m = 0; m < 8; m++)
            acc[m][0] = acc[m][1] = _mm512_setzero_pd();
        for (int p = 0; p < P; p++)
            UNROLL
            for (int m = 0; m < 8; m++)
                if (m < kb) {
                    const __m512 v = _mm512_loadu_ps(gl + 16 * ((size_t)(k0 + m) * P + p));
                    acc[m][0] = _mm512_add_pd(acc[m][0], widen(v, 0));
                    acc[m][1] = _mm512_add_pd(acc[m][1], widen(v, 1));
                }
        UNROLL
        for (int m = 0; m < 8; m++)
            for (int h = 0; h < 2 && m < kb; h++) {
                double *q = db + (size_t)(k0 + m) * 16 + 8 * h;
                _mm512_storeu_pd(q, first ? acc[m][h] : _mm512_add_pd(_mm512_loadu_pd(q),
                                                                      acc[m][h]));
            }
    }
}

/* A diff_weights tile's variable part: channels k0 .. k0 + MB - 1, input channel c, tap
 * row i. */
typedef struct bl_dw_args {
    const float *g;   /* gl at (k0, 0, 0)                                                */
    const float *x;   /* the padded input in lanes at channel c, row 0                    */
    float *dw;        /* the share at weight (k0, c, i, 0), 16 lanes per weight           */
    int i;            /* the tap row                                                      */
    int y0, y1;       /* output rows whose input row y + i - PH holds data                 */
    int first;        /* the chunk's first group: store, do not add                      */
} bl_dw_args;

DC_INLINE void bl_dw_tile(const dc_kernel *dk, const bl_dw_args *t, const int MB,
                          const int KW)
{
    const cnb_op_desc *d = &dk->d;
    const int OW = d->dst.w, PH = d->u.conv.ph;
    const size_t ld = (size_t)dk->bl_wp * 16, gk = (size_t)d->dst.h * OW * 16;
    const size_t wk = (size_t)d->src.c * d->u.conv.kh * KW * 16;
    __m512 acc[4][5];
    UNROLL
    for (int m = 0; m < MB; m++)
        UNROLL
        for (int j = 0; j < KW; j++)
            acc[m][j] = _mm512_setzero_ps();
    for (int y = t->y0; y < t->y1; y++) {
        const float *xr = t->x + (size_t)(y + t->i - PH) * ld, *gr = t->g + (size_t)y * OW * 16;
        for (int x = 0; x < OW; x++, xr += 16, gr += 16) {
            __m512 gv[4];
            UNROLL
            for (int m = 0; m < MB; m++)
                gv[m] = _mm512_loadu_ps(gr + m * gk);
            UNROLL
            for (int j = 0; j < KW; j++) {
                const __m512 v = _mm512_loadu_ps(xr + 16 * j);
                UNROLL
                for (int m = 0; m < MB; m++)
                    acc[m][j] = _mm512_fmadd_ps(gv[m], v, acc[m][j]);
            }
        }
    }
    UNROLL
    for (int m = 0; m < MB; m++)
        UNROLL
        for (int j = 0; j < KW; j++) {
            float *q = t->dw + m * wk + 16 * j;
            _mm512_storeu_ps(q, t->first ? acc[m][j]
                                         : _mm512_add_ps(_mm512_loadu_ps(q), acc[m][j]));
        }
}

typedef void (*bl_dw_fn)(const dc_kernel *dk, const bl_dw_args *t);

#define BL_DW_FN(MB, KW)                                                                      \
    static DC_AVX512 void bl_dw_##MB##_##KW(const dc_kernel *dk, const bl_dw_args *t)         \
    {                                                                                         \
        bl_dw_tile(dk, t, MB, KW);                                                            \
    }
BL_DW_FN(1, 3) BL_DW_FN(2, 3) BL_DW_FN(3, 3) BL_DW_FN(4, 3)
BL_DW_FN(1, 5) BL_DW_FN(2, 5) BL_DW_FN(3, 5) BL_DW_FN(4, 5)

static const bl_dw_fn bl_dw_table[4][2] = {
    {bl_dw_1_3, bl_dw_1_5}, {bl_dw_2_3, bl_dw_2_5}, {bl_dw_3_3, bl_dw_3_5}, {bl_dw_4_3, bl_dw_4_5},
}; /* [mb - 1][kw == 5] */

/* A group's diff_weights into the chunk's share dw (K, C, KH, KW) x 16 lanes, from its
 * padded input xl and gradient gl; channels k in balanced blocks of at most 4. */
static DC_AVX512 void bl_diff_weights(const dc_kernel *dk, const float *xl, const float *gl,
                                      float *dw, int first)
{
    const cnb_op_desc *d = &dk->d;
    const int K = d->dst.c, C = d->src.c, KH = d->u.conv.kh, KW = d->u.conv.kw;
    const int H = d->src.h, OH = d->dst.h, PH = d->u.conv.ph;
    const int kblocks = (K + 3) / 4;
    for (int kb = 0; kb < kblocks; kb++) {
        int k0;
        const int mb = segment(K, kblocks, kb, &k0);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < KH; i++) {
                const int y0 = imax(0, PH - i), y1 = imin(OH, H + PH - i);
                bl_dw_args t = {
                    .g = gl + 16 * (size_t)k0 * OH * d->dst.w,
                    .x = xl + 16 * (size_t)c * H * dk->bl_wp,
                    .dw = dw + 16 * ((((size_t)k0 * C + c) * KH + i) * KW),
                    .i = i,
                    .y0 = y0,
                    .y1 = imax(y0, y1),
                    .first = first,
                };
                bl_dw_table[mb - 1][KW == 5](dk, &t);
            }
    }
}

/* Rows of a diff_src tile of XB inputs: 3 (24 accumulators at most), 2 for 9 and 10.
 * Each accumulator takes up to KW FMAs in a row per (k, i), so fewer than about 20 of them
 * would wait on the FMA latency (2 rows of 7, LeNet-5's conv2: 1.2x slower). */
static int bl_dx_rows(int xb) { return xb <= 8 ? 3 : 2; }

/* A diff_src tile's variable part: input rows r0 .. r0 + RB - 1 of channel c, XB inputs
 * from column q0 on. */
typedef struct bl_dx_args {
    const float *g;   /* gl                                                               */
    const float *w;   /* the weights at (0, c, 0, 0)                                      */
    float *out;       /* dxl at (c, r0, q0)                                               */
    int y0;           /* output row that tap row 0 of input row r0 comes from: r0 + PH   */
    int x0;           /* output column of the tile's first diff_dst load: q0 + PW - KW + 1 */
    unsigned loads;   /* bit s: the tile loads column x0 + s (0 <= x0 + s < OW)           */
    int rows;         /* input rows to store: RB, or fewer in a last block                 */
    int k0, k1;       /* the channels k it adds: to out unless k0 is 0                     */
} bl_dx_args;

DC_INLINE void bl_dx_tile(const dc_kernel *dk, const bl_dx_args *t, const int XB,
                          const int KW)
{
    const cnb_op_desc *d = &dk->d;
    const int KH = d->u.conv.kh, OH = d->dst.h, OW = d->dst.w, W = d->src.w;
    const size_t wk = (size_t)d->src.c * KH * KW;
    const ptrdiff_t x0 = t->x0;
    const unsigned loads = t->loads; /* one test a load: the FMAs set the pace */
    const int RB = bl_dx_rows(XB);
    __m512 acc[3][BL_XB_MAX];
    UNROLL
    for (int r = 0; r < RB; r++)
        UNROLL
        for (int q = 0; q < XB; q++)
            acc[r][q] = t->k0 && r < t->rows ? _mm512_loadu_ps(t->out + 16 * ((size_t)r * W + q))
                                             : _mm512_setzero_ps();

    for (int k = t->k0; k < t->k1; k++)
        for (int i = 0; i < KH; i++) {
            __m512 w[5];
            UNROLL
            for (int j = 0; j < KW; j++)
                w[j] = _mm512_set1_ps(t->w[k * wk + i * KW + j]);
            UNROLL
            for (int r = 0; r < RB; r++) {
                const int y = t->y0 + r - i;
                if (y < 0 || y >= OH)
                    continue; /* no output row reads this input row through tap row i */
                const float *gr = t->g + 16 * ((size_t)k * OH + y) * OW;
                /* diff_dst column x0 + s reaches input q0 + s - (KW - 1) + j by tap j */
                UNROLL
                for (int s = 0; s < XB + KW - 1; s++) {
                    if (!(loads & 1u << s))
                        continue;
                    const __m512 v = _mm512_loadu_ps(gr + 16 * (x0 + s));
                    UNROLL
                    for (int j = 0; j < KW; j++) {
                        const int q = s - (KW - 1) + j;
                        if (q >= 0 && q < XB)
                            acc[r][q] = _mm512_fmadd_ps(w[j], v, acc[r][q]);
                    }
                }
            }
        }

    UNROLL
    for (int r = 0; r < RB; r++)
        if (r < t->rows)
            UNROLL
            for (int q = 0; q < XB; q++)
                _mm512_storeu_ps(t->out + 16 * ((size_t)r * W + q), acc[r][q]);
}

typedef void (*bl_dx_fn)(const dc_kernel *dk, const bl_dx_args *t);

#define BL_DX_FN(XB, KW)                                                                      \
    static DC_AVX512 void bl_dx_##XB##_##KW(const dc_kernel *dk, const bl_dx_args *t)         \
    {                                                                                         \
        bl_dx_tile(dk, t, XB, KW);                                                            \
    }
#define BL_DX_FNS(XB) BL_DX_FN(XB, 3) BL_DX_FN(XB, 5)

BL_DX_FNS(4) BL_DX_FNS(5) BL_DX_FNS(6) BL_DX_FNS(7) BL_DX_FNS(8) BL_DX_FNS(9) BL_DX_FNS(10)

static const bl_dx_fn bl_dx_table[BL_XB_MAX - BL_XB_MIN + 1][2] = {
    {bl_dx_4_3, bl_dx_4_5}, {bl_dx_5_3, bl_dx_5_5}, {bl_dx_6_3, bl_dx_6_5},
    {bl_dx_7_3, bl_dx_7_5}, {bl_dx_8_3, bl_dx_8_5}, {bl_dx_9_3, bl_dx_9_5},
    {bl_dx_10_3, bl_dx_10_5},
}; /* [xb - BL_XB_MIN][kw == 5] */

/* Bit s for each of the n columns x0 + s that lie in [0, ow) (n < 32). */
static unsigned bl_columns(int x0, int n, int ow)
{
    unsigned bits = 0;
    for (int s = 0; s < n; s++)
        bits |= (unsigned)(x0 + s >= 0 && x0 + s < ow) << s;
    return bits;
}

/* A group's diff_src from its gradient gl, into dxl (C, H, W) lanes: over blocks of
 * channels k whose gradient fits in BL_DX_BLOCK bytes, so that it stays in the L1 cache
 * while every tile of the block reads it (all of LeNet-5's conv2's at once: 1.3x slower). */
static DC_AVX512 void bl_diff_src(const dc_kernel *dk, const float *weights, const float *gl,
                                  float *dxl)
{
    const cnb_op_desc *d = &dk->d;
    const int C = d->src.c, H = d->src.h, W = d->src.w, KH = d->u.conv.kh, KW = d->u.conv.kw;
    const int K = d->dst.c, segs = (W + BL_XB_MAX - 1) / BL_XB_MAX;
    const size_t plane = (size_t)64 * d->dst.h * d->dst.w; /* bytes of one channel of gl */
    const int kmax = imax(1, (int)(BL_DX_BLOCK / plane)), kblocks = (K + kmax - 1) / kmax;
    for (int kb = 0; kb < kblocks; kb++) {
        int k0;
        const int kn = segment(K, kblocks, kb, &k0);
        for (int c = 0; c < C; c++)
            for (int sg = 0; sg < segs; sg++) {
                int q0;
                const int xb = segment(W, segs, sg, &q0), x0 = q0 + d->u.conv.pw - KW + 1;
                for (int r0 = 0; r0 < H; r0 += bl_dx_rows(xb)) {
                    bl_dx_args t = {
                        .g = gl,
                        .w = weights + (size_t)c * KH * KW,
                        .out = dxl + 16 * (((size_t)c * H + r0) * W + q0),
                        .y0 = r0 + d->u.conv.ph,
                        .x0 = x0,
                        .loads = bl_columns(x0, xb + KW - 1, d->dst.w),
                        .rows = imin(bl_dx_rows(xb), H - r0),
                        .k0 = k0,
                        .k1 = k0 + kn,
                    };
                    bl_dx_table[xb - BL_XB_MIN][KW == 5](dk, &t);
                }
            }
    }
}

/* A group's backward into chunk ch's shares (first: the chunk's first group). */
static DC_AVX512 void bl_backward_group(const dc_kernel *dk, const cnb_args *a,
                                        const dc_slot *s, dc_chunk *ch, int g, int first)
{
    const cnb_op_desc *d = &dk->d;
    const int n0 = 16 * g, nv = imin(16, d->batch - n0);
    const size_t src_n = cnb_shape_size(d->src);
    bl_grad(dk, a, s, g);
    if (a->diff_bias)
        bl_diff_bias(dk, s->gl, ch->db, first);
    if (a->diff_weights) {
        to_lanes(a->src + n0 * src_n, src_n, nv, (int)src_n, dk->bl_at, s->xl);
        bl_diff_weights(dk, s->xl, s->gl, ch->dw, first);
    }
    if (a->diff_src) {
        bl_diff_src(dk, a->weights, s->gl, s->dxl);
        from_lanes(s->dxl, (int)src_n, a->diff_src + n0 * src_n, src_n, nv);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Inner product (AVX-512): small fully connected layers (LeNet-5's), alone or with the
 * ReLU after them as a fused run. Three products, each by the same register tile:
 *   forward   Y = X W^T + b   vectors of 16 outputs k (W^T packed per call), X[n, c]
 *                             broadcast
 *   diff_src  dX = G W        vectors of 16 inputs c, G[n, k] broadcast
 *   diff_wts  dW = G^T X      vectors of 16 inputs c, G[n, k] broadcast
 * G being diff_dst, in a fused run where dst > 0. A tile keeps A x B <= 24 accumulators,
 * A broadcast rows by B vectors: per step of its sum B loads and A broadcasts for A * B
 * FMAs. Threads take whole tiles and each output is summed by one tile in order, so no
 * result depends on which thread took which; diff_bias is summed in double over the
 * batch in order, as naive does. */

typedef struct ip_tile_args {
    const float *s;     /* broadcast scalars at (a 0, t 0)                                 */
    size_t sa, st;      /* their strides from a to a + 1 and from t to t + 1               */
    const float *v;     /* vectors at (t 0, b 0)                                           */
    size_t vt, vb;      /* their strides                                                   */
    int steps;          /* steps t of the sum                                              */
    const float *init;  /* the initial value of vector b at init + 16 b (bias), or NULL: 0 */
    float *out;         /* vector b of row a at out + a * oa + 16 b                        */
    size_t oa;
    int rows;           /* rows a to store: A, or fewer in a last block                     */
    __mmask16 tail;     /* lanes of the last vector (b = B - 1) to read and write           */
    int relu;           /* store max(., 0)                                                  */
} ip_tile_args;

DC_INLINE void ip_tile(const ip_tile_args *t, const int A, const int B)
{
    __m512 acc[IP_A_MAX][IP_B_MAX];
    UNROLL
    for (int b = 0; b < B; b++) {
        const __mmask16 m = b == B - 1 ? t->tail : (__mmask16)0xffff;
        const __m512 v0 = t->init ? _mm512_maskz_loadu_ps(m, t->init + 16 * b)
                                  : _mm512_setzero_ps();
        UNROLL
        for (int a = 0; a < A; a++)
            acc[a][b] = v0;
    }
    const float *s = t->s, *v = t->v;
    for (int k = 0; k < t->steps; k++, s += t->st, v += t->vt) {
        __m512 w[IP_B_MAX];
        UNROLL
        for (int b = 0; b < B; b++)
            w[b] = b == B - 1 ? _mm512_maskz_loadu_ps(t->tail, v + b * t->vb)
                              : _mm512_loadu_ps(v + b * t->vb);
        UNROLL
        for (int a = 0; a < A; a++) {
            const __m512 x = _mm512_set1_ps(s[a * t->sa]);
            UNROLL
            for (int b = 0; b < B; b++)
                acc[a][b] = _mm512_fmadd_ps(x, w[b], acc[a][b]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    UNROLL
    for (int a = 0; a < A; a++)
        if (a < t->rows)
            UNROLL
            for (int b = 0; b < B; b++)
                _mm512_mask_storeu_ps(t->out + a * t->oa + 16 * b,
                                      b == B - 1 ? t->tail : (__mmask16)0xffff,
                                      t->relu ? _mm512_max_ps(acc[a][b], zero) : acc[a][b]);
}

typedef void (*ip_tile_fn)(const ip_tile_args *t);

#define IP_FN(A, B)                                                                           \
    static DC_AVX512 void ip_##A##_##B(const ip_tile_args *t) { ip_tile(t, A, B); }
#define IP_FNS(A) IP_FN(A, 1) IP_FN(A, 2) IP_FN(A, 3) IP_FN(A, 4)
#define IP_ROW(A) {ip_##A##_1, ip_##A##_2, ip_##A##_3, ip_##A##_4}

IP_FNS(1) IP_FNS(2) IP_FNS(3) IP_FNS(4) IP_FNS(5) IP_FNS(6)

static const ip_tile_fn ip_table[IP_A_MAX][IP_B_MAX] = {IP_ROW(1), IP_ROW(2), IP_ROW(3),
                                                       IP_ROW(4), IP_ROW(5), IP_ROW(6)};

/* Tile `item` of a product of `arows` broadcast rows by `bcols` columns (floats): rows in
 * balanced blocks of at most IP_A_MAX, vectors in balanced blocks of at most IP_B_MAX;
 * items run along the rows first when bmajor (a thread's share then keeps the same block
 * of columns, its vectors in the cache), else along the columns. t holds the product
 * (strides, and bases at row 0, column 0); the tile's are set here. */
static DC_AVX512 void ip_run_tile(ip_tile_args t, int item, int arows, int bcols, int bmajor)
{
    const int nvec = (bcols + 15) / 16, bblocks = (nvec + IP_B_MAX - 1) / IP_B_MAX;
    const int ablocks = (arows + IP_A_MAX - 1) / IP_A_MAX;
    int a0, v0;
    const int an = segment(arows, ablocks, bmajor ? item % ablocks : item / bblocks, &a0);
    const int bn = segment(nvec, bblocks, bmajor ? item / ablocks : item % bblocks, &v0);
    t.s += a0 * t.sa;
    t.v += v0 * t.vb;
    t.out += a0 * t.oa + 16 * (size_t)v0;
    if (t.init)
        t.init += 16 * (size_t)v0;
    t.rows = an;
    t.tail = lanes(imin(16, bcols - 16 * (v0 + bn - 1)));
    ip_table[an - 1][bn - 1](&t);
}

/* W^T packed for the forward tiles: (ceil(K / 16), C, 16), lanes past K zero. */
static DC_AVX512 void ip_pack(float *wt, const float *w, int K, int C)
{
    for (int k0 = 0; k0 < K; k0 += 16)
        to_lanes(w + (size_t)k0 * C, (size_t)C, imin(16, K - k0), C, NULL,
                 wt + (size_t)k0 * C);
}

/* db[k] = the sum over n of g[n, k] in double, n in order. */
static DC_AVX512 void ip_diff_bias(const float *g, int N, int K, float *db)
{
    for (int k0 = 0; k0 < K; k0 += 16) {
        const __mmask16 m = lanes(imin(16, K - k0));
        __m512d lo = _mm512_setzero_pd(), hi = lo;
        for (int n = 0; n < N; n++) {
            const __m512 v = _mm512_maskz_loadu_ps(m, g + (size_t)n * K + k0);
            lo = _mm512_add_pd(lo, widen(v, 0));
            hi = _mm512_add_pd(hi, widen(v, 1));
        }
        float sums[16];
        _mm256_storeu_ps(sums, _mm512_cvtpd_ps(lo));
        _mm256_storeu_ps(sums + 8, _mm512_cvtpd_ps(hi));
        memcpy(db + k0, sums, sizeof(float) * (size_t)imin(16, K - k0));
    }
}

/* g = diff_dst where dst > 0, else 0: the gradient through a fused run's ReLU. */
static DC_AVX512 void ip_relu_grad(const float *dst, const float *dd, float *g, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : lanes((int)(n - i));
        const __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, dst + i),
                                                      _mm512_setzero_ps(), _CMP_GT_OQ);
        _mm512_mask_storeu_ps(g + i, m, _mm512_maskz_loadu_ps(pos, dd + i));
    }
}

#else /* no AVX-512 on this architecture: init never picks these */

static void corr_avx512(const dc_pass *p, const float *x, const float *wpack,
                        const float *bias, float *out)
{
    (void)p, (void)x, (void)wpack, (void)bias, (void)out;
}
static void diff_weights_avx512(const dc_kernel *dk, const float *x, const float *dy,
                                float *dw, int first)
{
    (void)dk, (void)x, (void)dy, (void)dw, (void)first;
}
static void forward_k_avx512(const dc_kernel *dk, const float *x, const float *bias,
                             float *out)
{
    (void)dk, (void)x, (void)bias, (void)out;
}
static void diff_weights_k_avx512(const dc_kernel *dk, const float *x, const float *dy,
                                  float *dyt, float *dw, int first)
{
    (void)dk, (void)x, (void)dy, (void)dyt, (void)dw, (void)first;
}
static double sum_avx512(const float *x, int n) { return sum_c(x, n); }
static void relu_max_pool_avx512(const dc_kernel *dk, const float *y, float *out, uint8_t *arg)
{
    (void)dk, (void)y, (void)out, (void)arg;
}
static void pool_diff_tiled_avx512(const dc_kernel *dk, const float *dst, const float *dd,
                                   const uint8_t *arg, float *g)
{
    (void)dk, (void)dst, (void)dd, (void)arg, (void)g;
}
static void reduce_lanes_avx512(const dc_kernel *dk, float *dweight, int i0, int i1)
{
    (void)dk, (void)dweight, (void)i0, (void)i1;
}
static void bl_forward_group(const dc_kernel *dk, const cnb_args *a, const dc_slot *s, int g)
{
    (void)dk, (void)a, (void)s, (void)g;
}
static void bl_backward_group(const dc_kernel *dk, const cnb_args *a, const dc_slot *s,
                              dc_chunk *ch, int g, int first)
{
    (void)dk, (void)a, (void)s, (void)ch, (void)g, (void)first;
}
typedef struct ip_tile_args {
    const float *s, *v, *init;
    size_t sa, st, vt, vb, oa;
    int steps;
    float *out;
    int relu;
} ip_tile_args;
static void ip_run_tile(ip_tile_args t, int item, int arows, int bcols, int bmajor)
{
    (void)t, (void)item, (void)arows, (void)bcols, (void)bmajor;
}
static void ip_pack(float *wt, const float *w, int K, int C)
{
    (void)wt, (void)w, (void)K, (void)C;
}
static void ip_diff_bias(const float *g, int N, int K, float *db)
{
    (void)g, (void)N, (void)K, (void)db;
}
static void ip_relu_grad(const float *dst, const float *dd, float *g, size_t n)
{
    (void)dst, (void)dd, (void)g, (void)n;
}

#endif

/* ------------------------------------------------------------------------------------ */
/* Weight packing for the correlation tiles, once per call (the weights change every
 * step): block of channels o0..o0+mb-1 at o0 * CKK, within it [i][c][j][mb].            */

/* forward: o = output channel k, c = input channel */
static void pack_forward(float *wp, const dc_pass *p, const float *weight)
{
    const int KH = p->kh, KW = p->kw, C = p->cin;
    const size_t ckk = (size_t)C * KH * KW;
    for (int o0 = 0; o0 < p->cout; o0 += p->mb) {
        const int mb = imin(p->mb, p->cout - o0);
        float *b = wp + o0 * ckk;
        for (int m = 0; m < mb; m++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < KH; i++)
                    for (int j = 0; j < KW; j++)
                        b[(((size_t)i * C + c) * KW + j) * mb + m] =
                            weight[(o0 + m) * ckk + ((size_t)c * KH + i) * KW + j];
    }
}

/* fwdk: blocks of 16 output channels at kv * CKK, within a block [i][c][j][16], channels
 * past K zero (the allocation's zeros: they are never written) */
static void pack_forward_k(float *wp, const dc_pass *p, const float *weight)
{
    const int KH = p->kh, KW = p->kw, C = p->cin;
    const size_t ckk = (size_t)C * KH * KW;
    for (int k = 0; k < p->cout; k++) {
        float *b = wp + (size_t)(k / 16) * 16 * ckk + k % 16;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < KH; i++)
                for (int j = 0; j < KW; j++)
                    b[(((size_t)i * C + c) * KW + j) * 16] =
                        weight[k * ckk + ((size_t)c * KH + i) * KW + j];
    }
}

/* diff_src: o = input channel c, summed over output channels k, taps flipped */
static void pack_backward(float *wp, const dc_pass *p, const float *weight)
{
    const int KH = p->kh, KW = p->kw, K = p->cin, C = p->cout;
    const size_t kkk = (size_t)K * KH * KW;
    for (int o0 = 0; o0 < C; o0 += p->mb) {
        const int mb = imin(p->mb, C - o0);
        float *b = wp + o0 * kkk;
        for (int m = 0; m < mb; m++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < KH; i++)
                    for (int j = 0; j < KW; j++)
                        b[(((size_t)i * K + k) * KW + j) * mb + m] = weight
                            [(((size_t)k * C + o0 + m) * KH + KH - 1 - i) * KW + KW - 1 - j];
    }
}

/* ------------------------------------------------------------------------------------ */
/* Convolution: out[n,k,oh,ow] = bias[k]
 *     + sum_{c,i,j} weight[k,c,i,j] * inp[n, c, oh*SH - PH + i, ow*SW - PW + j]
 * The items are the samples.                                                           */

/* Sample n's convolution into out (K, OH, OW), through the thread's scratch x. */
static void forward_sample(const dc_kernel *dk, const cnb_args *a, float *x, int n, float *out)
{
    const cnb_op_desc *d = &dk->d;
    const size_t src_n = cnb_shape_size(d->src);
    pad_copy(x, &dk->fwd, a->src + n * src_n, d->src.c, d->src.h, d->src.w);
    if (dk->fwdk)
        forward_k_avx512(dk, x, a->bias, out);
    else if (dk->st->avx512)
        corr_avx512(&dk->fwd, x, dk->wf, a->bias, out);
    else
        forward_c(dk, x, a->weights, a->bias, out);
}

/* A fused run's ReLU then max pooling (no padding) of one sample's convolution output y
 * (K, OH, OW) into out (K, PH, PW), and each window's winner into arg: the first of the
 * window's largest y in row-major order. That is the input naive's pooling picks among
 * the ReLU's outputs, where they are > 0; where they are all 0 its pick differs, but the
 * ReLU stops that gradient either way. */
static void relu_max_pool(const dc_kernel *dk, const float *y, float *out, uint8_t *arg)
{
    const cnb_op_desc *p = &dk->pool;
    const int KH = p->u.pool.kh, KW = p->u.pool.kw, SH = p->u.pool.sh, SW = p->u.pool.sw;
    const int H = p->src.h, W = p->src.w;
    for (int k = 0; k < p->dst.c; k++, y += (size_t)H * W)
        for (int oh = 0; oh < p->dst.h; oh++)
            for (int ow = 0; ow < p->dst.w; ow++, out++, arg++) {
                const float *win = y + (size_t)oh * SH * W + ow * SW;
                float m = win[0];
                int best = 0;
                for (int i = 0; i < KH; i++)
                    for (int j = 0; j < KW; j++) {
                        const float v = win[i * W + j]; /* selects, not branches */
                        best = v > m ? i * KW + j : best;
                        m = v > m ? v : m;
                    }
                *out = m > 0.0f ? m : 0.0f;
                *arg = (uint8_t)best;
            }
}

/* The items are the samples; a fused run's stages follow each one's convolution while it
 * is in the thread's cache. */
static void conv_forward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const dc_kernel *dk = job->kernel;
    const cnb_args *a = job->a;
    const size_t out_n = cnb_shape_size(dk->out);
    float *x = dk->slot[slot].x, *y = dk->slot[slot].y;
    for (int n; (n = pool_job_take_near(job, slot, dk->d.batch)) < dk->d.batch;) {
        float *out = a->dst + n * out_n;
        forward_sample(dk, a, x, n, dk->fuse == FUSE_POOL ? y : out);
        if (dk->fuse == FUSE_RELU)
            for (size_t i = 0; i < out_n; i++)
                out[i] = out[i] > 0.0f ? out[i] : 0.0f;
        else if (dk->fuse == FUSE_POOL && dk->pool_vec)
            relu_max_pool_avx512(dk, y, out, dk->arg + n * out_n);
        else if (dk->fuse == FUSE_POOL)
            relu_max_pool(dk, y, out, dk->arg + n * out_n);
    }
}

/* Batch lanes: the items are the groups of 16 samples. */
static void bl_forward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const dc_kernel *dk = job->kernel;
    for (int g; (g = pool_job_take_near(job, slot, dk->bl_groups)) < dk->bl_groups;)
        bl_forward_group(dk, job->a, &dk->slot[slot], g);
}

static int conv_forward(cnb_kernel *self, const cnb_args *a)
{
    dc_kernel *dk = (dc_kernel *)self;
    if (dk->bl) {
        pool_run_job(dk->st->pool, bl_forward_task, dk, a);
        return CNB_OK;
    }
    if (dk->fwdk)
        pack_forward_k(dk->wf, &dk->fwd, a->weights);
    else if (dk->st->avx512)
        pack_forward(dk->wf, &dk->fwd, a->weights);
    pool_run_job(dk->st->pool, conv_forward_task, dk, a);
    return CNB_OK;
}

/* A fused run's gradient of sample n's convolution output, into g (K, OH, OW): diff_dst
 * where the ReLU's output (dst, or the pooling's winner, dst too) is > 0, else 0; with
 * pooling, each window's to its winner, added up where windows overlap in window order,
 * as naive's pooling adds them. */
static const float *fused_diff(const dc_kernel *dk, const cnb_args *a, int n, float *g)
{
    const size_t out_n = cnb_shape_size(dk->out);
    const float *dst = a->dst + n * out_n, *dd = a->diff_dst + n * out_n;
    if (dk->fuse == FUSE_RELU) {
        for (size_t i = 0; i < out_n; i++)
            g[i] = dst[i] > 0.0f ? dd[i] : 0.0f;
        return g;
    }
    const cnb_op_desc *p = &dk->pool;
    const int SH = p->u.pool.sh, SW = p->u.pool.sw, H = p->src.h, W = p->src.w;
    const uint8_t *arg = dk->arg + n * out_n;
    if (dk->tiled_vec) {
        pool_diff_tiled_avx512(dk, dst, dd, arg, g);
        return g;
    }
    memset(g, 0, sizeof(float) * cnb_shape_size(p->src));
    float *gk = g; /* channel k's plane */
    for (int k = 0; k < p->dst.c; k++, gk += (size_t)H * W)
        for (int oh = 0; oh < p->dst.h; oh++)
            for (int ow = 0; ow < p->dst.w; ow++, dst++, dd++, arg++)
                if (*dst > 0.0f)
                    gk[(size_t)oh * SH * W + ow * SW + dk->tap_at[*arg]] += *dd;
    return g;
}

/* Sample n of chunk ch, in the taking thread's scratch s, into the chunk's shares (its
 * first sample stores, the others add), dy being the gradient of its convolution output:
 *     db[k]          (+)= sum_p dy[k,p]
 *     dw[k,c,i,j]    (+)= the correlation of inp[n] with dy
 *     diff_src[n]     = the correlation of the padded dy with the flipped weights
 * conv_reduce_task then adds up the chunks.                                            */
static void backward_sample(const dc_kernel *dk, const cnb_args *a, const dc_slot *s,
                            dc_chunk *ch, int n, const float *dy)
{
    const cnb_op_desc *d = &dk->d;
    const int K = d->dst.c, P = d->dst.h * d->dst.w, avx = dk->st->avx512;
    const size_t src_n = cnb_shape_size(d->src);
    const int first = n == ch->n0;
    if (a->diff_bias)
        for (int k = 0; k < K; k++) {
            const double sum = avx ? sum_avx512(dy + (size_t)k * P, P)
                                   : sum_c(dy + (size_t)k * P, P);
            ch->db[k] = (first ? 0.0 : ch->db[k]) + sum;
        }
    if (a->diff_weights) {
        pad_copy(s->x, &dk->fwd, a->src + n * src_n, d->src.c, d->src.h, d->src.w);
        if (dk->dwk)
            diff_weights_k_avx512(dk, s->x, dy, s->dyt, ch->dw, first);
        else if (avx)
            diff_weights_avx512(dk, s->x, dy, ch->dw, first);
        else
            diff_weights_c(dk, s->x, dy, ch->dw, first);
    }
    if (a->diff_src && dk->bwd_vec) {
        pad_copy(s->dy, &dk->bwd, dy, K, d->dst.h, d->dst.w);
        corr_avx512(&dk->bwd, s->dy, dk->wb, NULL, a->diff_src + n * src_n);
    } else if (a->diff_src)
        diff_src_c(d, a->weights, dy, a->diff_src + n * src_n);
}

/* The items are the chunks, each a run of samples in order. */
static void conv_backward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const dc_kernel *dk = job->kernel;
    const cnb_args *a = job->a;
    const dc_slot *s = &dk->slot[slot];
    const size_t out_n = cnb_shape_size(dk->out);
    for (int c; (c = pool_job_take_near(job, slot, dk->nchunks)) < dk->nchunks;)
        for (int n = dk->chunk[c].n0; n < dk->chunk[c].n1; n++)
            backward_sample(dk, a, s, &dk->chunk[c], n,
                            dk->fuse ? fused_diff(dk, a, n, s->y) : a->diff_dst + n * out_n);
}

/* Batch lanes: the items are the chunks, each a run of groups in order. */
static void bl_backward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const dc_kernel *dk = job->kernel;
    for (int c; (c = pool_job_take_near(job, slot, dk->nchunks)) < dk->nchunks;) {
        dc_chunk *ch = &dk->chunk[c];
        for (int g = ch->n0 / 16; 16 * g < ch->n1; g++)
            bl_backward_group(dk, job->a, &dk->slot[slot], ch, g, 16 * g == ch->n0);
    }
}

/* diff_weights = the sum of the chunks' shares in chunk order (empty chunks left out);
 * items are blocks of REDUCE_ITEM weights. */
static void conv_reduce_task(void *arg, int slot)
{
    pool_job *job = arg;
    dc_kernel *dk = job->kernel;
    const int ckk = dk->d.src.c * dk->d.u.conv.kh * dk->d.u.conv.kw, nw = dk->d.dst.c * ckk;
    const int items = (nw + REDUCE_ITEM - 1) / REDUCE_ITEM;
    float *dweight = job->a->diff_weights;

    for (int b; (b = pool_job_take_near(job, slot, items)) < items;) {
        const int i0 = b * REDUCE_ITEM, i1 = imin(nw, i0 + REDUCE_ITEM);
        if (dk->lanes) {
            reduce_lanes_avx512(dk, dweight, i0, i1);
            continue;
        }
        for (int idx = i0; idx < i1; idx++) {
            /* a dwk share holds weight (k, r) at r * kp + k */
            const size_t at = dk->dwk ? (size_t)(idx % ckk) * dk->kp + idx / ckk : (size_t)idx;
            float sum = 0.0f;
            for (int c = 0; c < dk->nchunks; c++)
                if (dk->chunk[c].n1 > dk->chunk[c].n0)
                    sum += dk->chunk[c].dw[at];
            dweight[idx] = sum;
        }
    }
}

static int conv_backward(cnb_kernel *self, const cnb_args *a)
{
    dc_kernel *dk = (dc_kernel *)self;
    if (a->diff_src && dk->bwd_vec)
        pack_backward(dk->wb, &dk->bwd, a->weights);
    pool_run_job(dk->st->pool, dk->bl ? bl_backward_task : conv_backward_task, dk, a);
    if (a->diff_weights)
        pool_run_job(dk->st->pool, conv_reduce_task, dk, a);
    const int per = dk->bl ? 16 : 1; /* sums per channel in a chunk's db */
    if (a->diff_bias)
        for (int k = 0; k < dk->d.dst.c; k++) {
            double sum = 0.0;
            for (int c = 0; c < dk->nchunks; c++)
                for (int l = 0; l < per && dk->chunk[c].n1 > dk->chunk[c].n0; l++)
                    sum += dk->chunk[c].db[k * per + l];
            a->diff_bias[k] = (float)sum;
        }
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Inner product kernels (the tiles above): forward, then backward.                      */

/* Tiles of a product: the same count as ip_run_tile's. */
static int ip_tiles(int arows, int bcols)
{
    const int nvec = (bcols + 15) / 16;
    return (arows + IP_A_MAX - 1) / IP_A_MAX * ((nvec + IP_B_MAX - 1) / IP_B_MAX);
}

typedef struct ip_kernel {
    cnb_kernel base;  /* first: the host only sees this                                 */
    dc_state *st;
    int n, c, k;      /* batch, inputs (C*H*W), outputs                                 */
    int relu;         /* 1: a fused run, the ReLU after the product                     */
    thread_pool *pool; /* the backend's, or NULL where a call is too short to share     */
    float *wt;        /* (threads, wt_n): each thread's weights packed for the forward   */
    size_t wt_n;      /* (ceil(K / 16), C, 16) floats: W^T, lanes past K zero            */
    float *g;         /* (N, K): a fused run's gradient through its ReLU                */
    const float *grad; /* this backward's G: diff_dst, or g                             */
} ip_kernel;

/* Y = X W^T + b: rows n, columns k. A thread that takes a tile packs W^T for itself
 * first: packed by one thread for all, it would reach the others through their caches'
 * misses (LeNet-5's fc1 on 2 threads: 1.5x slower). */
static void ip_forward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const ip_kernel *ik = job->kernel;
    const cnb_args *a = job->a;
    const int tiles = ip_tiles(ik->n, ik->k);
    int i = pool_job_take_near(job, slot, tiles);
    if (i >= tiles)
        return;
    float *wt = ik->wt + (size_t)slot * ik->wt_n;
    ip_pack(wt, a->weights, ik->k, ik->c);
    const ip_tile_args t = {.s = a->src, .sa = (size_t)ik->c, .st = 1, .v = wt, .vt = 16,
                            .vb = (size_t)16 * ik->c, .steps = ik->c, .init = a->bias,
                            .out = a->dst, .oa = (size_t)ik->k, .relu = ik->relu};
    do
        ip_run_tile(t, i, ik->n, ik->k, 0);
    while ((i = pool_job_take_near(job, slot, tiles)) < tiles);
}

static int ip_forward(cnb_kernel *self, const cnb_args *a)
{
    pool_run_job(((ip_kernel *)self)->pool, ip_forward_task, self, a);
    return CNB_OK;
}

/* The backward's tiles: those of dX = G W (rows n, columns c), then of dW = G^T X (rows k,
 * columns c), each along its rows first: a block of W's or X's columns read by every
 * tile of a run of them (cold, LeNet-5's fc1 backward: 1.1x faster than along the
 * columns). */
static void ip_backward_task(void *arg, int slot)
{
    pool_job *job = arg;
    const ip_kernel *ik = job->kernel;
    const cnb_args *a = job->a;
    const int nx = a->diff_src ? ip_tiles(ik->n, ik->c) : 0;
    const int nw = a->diff_weights ? ip_tiles(ik->k, ik->c) : 0;
    const ip_tile_args dx = {.s = ik->grad, .sa = (size_t)ik->k, .st = 1, .v = a->weights,
                             .vt = (size_t)ik->c, .vb = 16, .steps = ik->k,
                             .out = a->diff_src, .oa = (size_t)ik->c};
    const ip_tile_args dw = {.s = ik->grad, .sa = 1, .st = (size_t)ik->k, .v = a->src,
                             .vt = (size_t)ik->c, .vb = 16, .steps = ik->n,
                             .out = a->diff_weights, .oa = (size_t)ik->c};
    for (int i; (i = pool_job_take_near(job, slot, nx + nw)) < nx + nw;)
        if (i < nx)
            ip_run_tile(dx, i, ik->n, ik->c, 1);
        else
            ip_run_tile(dw, i - nx, ik->k, ik->c, 1);
}

static int ip_backward(cnb_kernel *self, const cnb_args *a)
{
    ip_kernel *ik = (ip_kernel *)self;
    ik->grad = a->diff_dst;
    if (ik->relu) {
        ip_relu_grad(a->dst, a->diff_dst, ik->g, (size_t)ik->n * ik->k);
        ik->grad = ik->g;
    }
    pool_run_job(ik->pool, ip_backward_task, ik, a);
    if (a->diff_bias)
        ip_diff_bias(ik->grad, ik->n, ik->k, a->diff_bias);
    return CNB_OK;
}

static void ip_destroy(cnb_kernel *self)
{
    ip_kernel *ik = (ip_kernel *)self;
    if (!ik)
        return;
    ik->st->host->free(ik->wt);
    ik->st->host->free(ik->g);
    ik->st->host->free(ik);
}

/* An inner product kernel for desc (checked), with the ReLU after it when relu; AVX-512
 * only, and only while the weights fit in IP_WEIGHTS_MAX (CNB_ENOTSUP otherwise: the next
 * backend of the chain takes it). */
static int ip_new(dc_state *st, const cnb_op_desc *d, int relu, cnb_kernel **out)
{
    const int C = (int)cnb_shape_size(d->src), K = d->dst.c;
    if (!st->avx512 || (size_t)C * K > IP_WEIGHTS_MAX)
        return CNB_ENOTSUP;
    ip_kernel *ik = st->host->alloc(sizeof *ik);
    if (!ik)
        return CNB_ENOMEM;
    *ik = (ip_kernel){.st = st, .n = d->batch, .c = C, .k = K, .relu = relu};
    ik->base = CNB_KERNEL_INIT(.forward = ip_forward, .backward = ip_backward,
                               .destroy = ip_destroy);
    ik->pool = 2.0 * d->batch * C * K >= IP_SPLIT_FLOPS ? st->pool : NULL;
    ik->wt_n = ((size_t)K + 15) / 16 * 16 * C;
    if (!(ik->wt = st->host->alloc(sizeof(float) * ik->wt_n * st->threads)) ||
        (relu && !(ik->g = st->host->alloc(sizeof(float) * (size_t)d->batch * K)))) {
        ip_destroy(&ik->base);
        return CNB_FAIL(st->host, WHO, CNB_ENOMEM, "inner product: out of memory");
    }
    *out = &ik->base;
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Kernel creation: validate like naive does, lay out the passes, size the workspace.   */

static void dc_kernel_destroy(cnb_kernel *self)
{
    dc_kernel *dk = (dc_kernel *)self;
    if (!dk)
        return;
    const cnb_host *host = dk->st->host;
    for (int t = 0; dk->slot && t < dk->nslots; t++) {
        host->free(dk->slot[t].x);
        host->free(dk->slot[t].dy);
        host->free(dk->slot[t].dyt);
        host->free(dk->slot[t].y);
        host->free(dk->slot[t].xl);
        host->free(dk->slot[t].ol);
        host->free(dk->slot[t].gl);
        host->free(dk->slot[t].dxl);
    }
    for (int c = 0; dk->chunk && c < dk->nchunks; c++) {
        host->free(dk->chunk[c].dw);
        host->free(dk->chunk[c].db);
    }
    host->free(dk->slot);
    host->free(dk->chunk);
    host->free(dk->wf);
    host->free(dk->wb);
    host->free(dk->arg);
    host->free(dk->bl_at);
    host->free(dk->fwd.jo_big);
    host->free(dk->bwd.jo_big);
    host->free(dk);
}

/* 1 when the batch-lane tiles take convolution d: AVX-512, stride 1, windows 3 or 5 wide
 * (the instances), rows of at least BL_XB_MIN inputs and outputs, a batch that fills
 * groups of 16 at least half, and samples small enough (BL_POS_MAX) that a group's
 * scratch stays in the core's cache. */
static int bl_fits(const dc_state *st, const cnb_op_desc *d)
{
    return st->avx512 && d->u.conv.sh == 1 && d->u.conv.sw == 1 &&
           (d->u.conv.kw == 3 || d->u.conv.kw == 5) && d->src.w >= BL_XB_MIN &&
           d->dst.w >= BL_XB_MIN && d->batch >= 16 &&
           cnb_shape_size(d->src) + cnb_shape_size(d->dst) <= BL_POS_MAX;
}

/* The batch lanes' padded src: where each input goes; 0 or CNB_ENOMEM (logged). */
static int bl_plan(dc_kernel *dk)
{
    const cnb_op_desc *d = &dk->d;
    const int C = d->src.c, H = d->src.h, W = d->src.w;
    dk->bl_groups = (d->batch + 15) / 16;
    dk->bl_wp = W + 2 * d->u.conv.pw;
    dk->lanes = 1; /* the shares' layout: conv_reduce_task adds them up by lanes */
    if (!(dk->bl_at = dk->st->host->alloc(sizeof(int) * C * H * W)))
        return CNB_FAIL(dk->st->host, WHO, CNB_ENOMEM, "conv: out of memory");
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                dk->bl_at[(c * H + h) * W + w] = (c * H + h) * dk->bl_wp + d->u.conv.pw + w;
    return CNB_OK;
}

/* The passes and tile shapes; 0 or CNB_ENOMEM (logged). */
static int conv_plan(dc_kernel *dk)
{
    const cnb_host *host = dk->st->host;
    const cnb_op_desc *d = &dk->d;
    const int KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh, SW = d->u.conv.sw;
    const int avx = dk->st->avx512;
    if ((dk->bl = bl_fits(dk->st, d)))
        return bl_plan(dk);

    dc_pass *f = &dk->fwd;
    *f = (dc_pass){.cin = d->src.c, .kh = KH, .kw = KW, .cout = d->dst.c, .oh = d->dst.h,
                   .ow = d->dst.w, .ystep = SH, .rb = 1, .nv = 1, .mb = 1};
    if (avx)
        plan_tile(f);
    if (KW > (int)(sizeof f->jo / sizeof f->jo[0]) &&
        !(f->jo_big = host->alloc(sizeof(int) * KW)))
        return CNB_FAIL(host, WHO, CNB_ENOMEM, "conv: out of memory");
    pass_layout(f, SW, d->u.conv.ph, d->u.conv.pw, d->src.h);

    /* diff_src as a correlation needs stride 1: at stride S only every S-th tap reaches a
     * given input, and the plain-C scatter does those */
    dk->bwd_vec = avx && SH == 1 && SW == 1;
    if (dk->bwd_vec) {
        dc_pass *b = &dk->bwd;
        *b = (dc_pass){.cin = d->dst.c, .kh = KH, .kw = KW, .cout = d->src.c,
                       .oh = d->src.h, .ow = d->src.w, .ystep = 1};
        plan_tile(b);
        if (KW > (int)(sizeof b->jo / sizeof b->jo[0]) &&
            !(b->jo_big = host->alloc(sizeof(int) * KW)))
            return CNB_FAIL(host, WHO, CNB_ENOMEM, "conv: out of memory");
        pass_layout(b, 1, KH - 1 - d->u.conv.ph, KW - 1 - d->u.conv.pw, d->dst.h);
    }

    /* diff_weights tile: taps j in balanced blocks of at most 6, output channels in
     * balanced blocks of at most 4: MB*JB accumulators + MB diff_dst vectors + 1 input
     * vector stay within the 32 zmm registers */
    const int jblocks = (KW + 5) / 6, kblocks = (d->dst.c + 3) / 4;
    dk->dw_jb = (KW + jblocks - 1) / jblocks;
    dk->dw_mb = (d->dst.c + kblocks - 1) / kblocks;
    const size_t nw = (size_t)d->dst.c * d->src.c * KH * KW;
    dk->lanes = avx && nw * 16 * sizeof(float) <= DW_LANES_MAX;

    /* over output channels instead when they fill more lanes than a row does (the taps of
     * one tile must be contiguous in a scratch row: horizontal stride 1); taps in balanced
     * blocks of at most 5 x 5 */
    const int K = d->dst.c, OW = d->dst.w;
    dk->kp = round_up(K, 16);
    const int k_fills_more = (double)K / dk->kp > (double)OW / round_up(OW, 16);
    dk->dwk = avx && SW == 1 && k_fills_more;
    /* the same for the forward, for the windows it has instances for; a row is cut into
     * segments of FWDK_XB_MIN..FWDK_XB_MAX outputs */
    dk->fwdk = avx && SW == 1 && (KW == 3 || KW == 5) && OW >= FWDK_XB_MIN && k_fills_more;
    if (dk->dwk) {
        dk->lanes = 0;
        const int jb = (KW + (KW + 4) / 5 - 1) / ((KW + 4) / 5), ib_max = imin(5, 25 / jb);
        const int iblocks = (KH + ib_max - 1) / ib_max;
        dk->dwk_jb = jb;
        dk->dwk_ib = (KH + iblocks - 1) / iblocks;
    }
    return CNB_OK;
}

/* conv_workspace for batch lanes: each thread's group scratch, each chunk's shares by
 * lanes (16 per weight and bias), the winners of every group. */
/* Bytes of each of a batch-lane kernel's allocations: a thread's scratch, a chunk's
 * shares, the winners of every group. */
typedef struct bl_bytes {
    size_t xl, ol, gl, dxl; /* a slot's (dc_slot) */
    size_t dw, db;          /* a chunk's          */
    size_t arg;             /* FUSE_POOL          */
} bl_bytes;

static bl_bytes bl_sizes(const dc_kernel *dk)
{
    const cnb_op_desc *d = &dk->d;
    const size_t lane = 16 * sizeof(float), out_n = cnb_shape_size(dk->out);
    return (bl_bytes){
        .xl = lane * d->src.c * d->src.h * dk->bl_wp,
        .ol = lane * out_n,
        .gl = lane * cnb_shape_size(d->dst),
        .dxl = lane * cnb_shape_size(d->src),
        .dw = lane * d->dst.c * d->src.c * d->u.conv.kh * d->u.conv.kw,
        .db = 16 * sizeof(double) * d->dst.c,
        .arg = dk->fuse == FUSE_POOL ? (size_t)dk->bl_groups * 16 * out_n : 0,
    };
}

static int bl_workspace(dc_kernel *dk)
{
    const cnb_host *host = dk->st->host;
    const cnb_op_desc *d = &dk->d;
    const bl_bytes b = bl_sizes(dk);
    const size_t xl = b.xl, ol = b.ol, gl = b.gl, dxl = b.dxl, dw = b.dw, db = b.db;
    dk->nchunks = pool_chunks(dk->st->threads, dk->bl_groups, dw + db);
    int bad = !(dk->slot = host->alloc(sizeof *dk->slot * dk->nslots)) ||
              !(dk->chunk = host->alloc(sizeof *dk->chunk * dk->nchunks)) ||
              (b.arg && !(dk->arg = host->alloc(b.arg)));
    for (int t = 0; t < dk->nslots && !bad; t++) {
        dc_slot *s = &dk->slot[t];
        bad = !(s->xl = host->alloc(xl)) || !(s->ol = host->alloc(ol)) ||
              !(s->gl = host->alloc(gl)) || !(s->dxl = host->alloc(dxl));
    }
    for (int c = 0; c < dk->nchunks && !bad; c++) {
        dc_chunk *ch = &dk->chunk[c];
        int g0, g1;
        pool_chunk(dk->bl_groups, dk->nchunks, c, &g0, &g1);
        ch->n0 = 16 * g0;
        ch->n1 = imin(d->batch, 16 * g1);
        bad = !(ch->dw = host->alloc(dw)) || !(ch->db = host->alloc(db));
    }
    if (bad)
        return CNB_FAIL(host, WHO, CNB_ENOMEM,
                        "conv: cannot allocate %d x %zu bytes of scratch and %d x %zu of "
                        "shares", dk->nslots, xl + ol + gl + dxl, dk->nchunks, dw + db);
    return CNB_OK;
}

/* Allocate the packed weights, each thread's scratch and each chunk's shares; 0 or
 * CNB_ENOMEM (logged). */
static int conv_workspace(dc_kernel *dk)
{
    if (dk->bl)
        return bl_workspace(dk);
    const cnb_host *host = dk->st->host;
    const cnb_op_desc *d = &dk->d;
    const size_t nw = (size_t)d->dst.c * d->src.c * d->u.conv.kh * d->u.conv.kw;
    const size_t x = sizeof(float) * d->src.c * dk->fwd.plane;
    const size_t dy = dk->bwd_vec ? sizeof(float) * d->dst.c * dk->bwd.plane : 0;
    const size_t dw = dk->dwk ? sizeof(float) * d->src.c * d->u.conv.kh * d->u.conv.kw * dk->kp
                              : sizeof(float) * nw * (dk->lanes ? 16 : 1);
    const size_t dyt = dk->dwk ? sizeof(float) * d->dst.h * d->dst.w * dk->kp : 0;
    const size_t y = dk->fuse ? sizeof(float) * cnb_shape_size(d->dst) : 0;
    const size_t db = sizeof(double) * d->dst.c;
    dk->nchunks = pool_chunks(dk->st->threads, d->batch, dw + db);
    int bad = !(dk->slot = host->alloc(sizeof *dk->slot * dk->nslots)) ||
              !(dk->chunk = host->alloc(sizeof *dk->chunk * dk->nchunks));
    if (dk->st->avx512 && !bad)
        bad = !(dk->wf = host->alloc(sizeof(float) * (dk->fwdk ? nw / d->dst.c * dk->kp
                                                                : nw))) ||
              (dk->bwd_vec && !(dk->wb = host->alloc(sizeof(float) * nw)));
    if (dk->fuse == FUSE_POOL && !bad)
        bad = !(dk->arg = host->alloc((size_t)d->batch * cnb_shape_size(dk->out)));
    for (int t = 0; t < dk->nslots && !bad; t++) {
        dc_slot *s = &dk->slot[t];
        bad = !(s->x = host->alloc(x)) || (dy && !(s->dy = host->alloc(dy))) ||
              (dyt && !(s->dyt = host->alloc(dyt))) || (y && !(s->y = host->alloc(y)));
    }
    for (int c = 0; c < dk->nchunks && !bad; c++) {
        dc_chunk *ch = &dk->chunk[c];
        pool_chunk(d->batch, dk->nchunks, c, &ch->n0, &ch->n1);
        bad = !(ch->dw = host->alloc(dw)) || !(ch->db = host->alloc(db));
    }
    if (bad)
        return CNB_FAIL(host, WHO, CNB_ENOMEM,
                        "conv: cannot allocate %d x %zu bytes of scratch and %d x %zu of "
                        "shares", dk->nslots, x + dy + dyt + y, dk->nchunks, dw + db);
    return CNB_OK;
}

/* A kernel for the convolution desc, followed by fuse's stages (pool: the max pooling's
 * descriptor, for FUSE_POOL); the descriptors are checked. */
static int conv_new(dc_state *st, const cnb_op_desc *desc, int fuse, const cnb_op_desc *pool,
                    cnb_kernel **out)
{
    dc_kernel *dk = st->host->alloc(sizeof *dk);
    if (!dk)
        return CNB_ENOMEM;
    dk->st = st;
    dk->d = *desc;
    dk->fuse = fuse;
    dk->out = pool ? pool->dst : desc->dst;
    if (pool) {
        dk->pool = *pool;
        dk->pool_vec = st->avx512 && (pool->u.pool.sw == 1 || pool->u.pool.sw == 2);
        dk->tiled_vec = st->avx512 && pool->u.pool.kw == 2 && pool->u.pool.sw == 2 &&
                        pool->u.pool.kh == pool->u.pool.sh;
        for (int t = 0; t < pool->u.pool.kh * pool->u.pool.kw; t++)
            dk->tap_at[t] = t / pool->u.pool.kw * pool->src.w + t % pool->u.pool.kw;
    }
    dk->base = CNB_KERNEL_INIT(.forward = conv_forward, .backward = conv_backward,
                               .destroy = dc_kernel_destroy);
    dk->nslots = st->threads;
    int err;
    if ((err = conv_plan(dk)) || (err = conv_workspace(dk))) {
        dc_kernel_destroy(&dk->base);
        return err;
    }
    *out = &dk->base;
    return CNB_OK;
}

/* The check every kernel's descriptor gets (cnnbench/op_check.h): 0, or its error after
 * logging why. */
static int desc_check(const dc_state *st, const cnb_op_desc *desc)
{
    char why[512];
    int err = cnb_op_desc_check(desc, why, sizeof why);
    return err ? CNB_FAIL(st->host, WHO, err, "%s", why) : CNB_OK;
}

static int dc_kernel_create(void *state, const cnb_op_desc *desc, cnb_kernel **out)
{
    dc_state *st = state;
    *out = NULL;
    if (!st)
        return CNB_EINVAL; /* init() was not called: nowhere to log to */
    if (desc->op != CNB_OP_CONV && desc->op != CNB_OP_INNER_PRODUCT)
        return CNB_ENOTSUP;
    int err = desc_check(st, desc);
    if (err)
        return err;
    return desc->op == CNB_OP_CONV ? conv_new(st, desc, FUSE_NONE, NULL, out)
                                   : ip_new(st, desc, 0, out);
}

/* Fused runs: a convolution and a ReLU, or those and a max pooling without padding whose
 * window has at most 256 taps (its winners are kept in a byte). */
static int dc_fuse_create(void *state, const cnb_fuse_desc *f, cnb_kernel **out)
{
    dc_state *st = state;
    *out = NULL;
    if (!st)
        return CNB_EINVAL;
    const cnb_op_desc *p = f->n == 3 ? &f->op[2] : NULL;
    const int ip = f->op[0].op == CNB_OP_INNER_PRODUCT;
    if (f->n < 2 || f->n > 3 || (f->op[0].op != CNB_OP_CONV && !ip) ||
        f->op[1].op != CNB_OP_RELU || (ip && p) ||
        (p && (p->op != CNB_OP_POOL_MAX || p->u.pool.ph || p->u.pool.pw ||
               p->u.pool.kh * p->u.pool.kw > 256)))
        return CNB_ENOTSUP;
    /* batch lanes pool in registers: 2x2 windows at stride 2 only */
    if (p && !ip && bl_fits(st, &f->op[0]) &&
        (p->u.pool.kh != 2 || p->u.pool.kw != 2 || p->u.pool.sh != 2 || p->u.pool.sw != 2))
        return CNB_ENOTSUP;
    for (int k = 0; k < f->n; k++) {
        int err = desc_check(st, &f->op[k]);
        if (err)
            return err;
        const cnb_shape *was = &f->op[k ? k - 1 : 0].dst, *is = &f->op[k].src;
        if (k && (f->op[k].batch != f->op[0].batch || was->c != is->c || was->h != is->h ||
                  was->w != is->w))
            return CNB_FAIL(st->host, WHO, CNB_EINVAL, "fused run: op %d (%s) does not take "
                            "what op %d gives", k, cnb_op_name(f->op[k].op), k - 1);
    }
    if (ip)
        return ip_new(st, &f->op[0], 1, out);
    return conv_new(st, &f->op[0], p ? FUSE_POOL : FUSE_RELU, p, out);
}

/* ------------------------------------------------------------------------------------ */
/* The plugin. */

static int dc_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    *state = NULL;
    dc_state *st = host->alloc(sizeof *st);
    if (!st)
        return CNB_ENOMEM;
    st->host = host;
    st->threads = cfg && cfg->threads > 1 ? cfg->threads : 1;
    const char *isa = getenv("CNB_DIRECT_ISA");
    const char *why;
#if DC_HAVE_AVX512
    __builtin_cpu_init();
    const int has = __builtin_cpu_supports("avx512f");
#else
    const int has = 0;
#endif
    if (isa && strcmp(isa, "scalar") == 0) {
        st->avx512 = 0;
        why = "CNB_DIRECT_ISA=scalar";
    } else {
        st->avx512 = has;
        why = has ? "the CPU has avx512f" : "no avx512f on this CPU";
    }
    if (st->threads > 1 && !(st->pool = pool_start(host, st->threads - 1, WHO))) {
        host->free(st);
        return CNB_ENOMEM;
    }
    snprintf(st->info, sizeof st->info, "direct convolution, %s kernels (%s); %d thread%s",
             st->avx512 ? "AVX-512F" : "plain-C", why, st->threads,
             st->threads == 1 ? "" : "s");
    *state = st;
    return CNB_OK;
}

static void dc_fini(void *state)
{
    dc_state *st = state;
    if (!st)
        return;
    pool_stop(st->host, st->pool);
    st->host->free(st);
}

static const char *dc_info(void *state)
{
    dc_state *st = state;
    return st ? st->info : "direct convolution (not started)";
}

/* Everything a kernel allocated (conv_plan, conv_workspace): itself, its packed weights
 * and winners, each thread's scratch and each chunk's shares; an inner product's, ip_new's. */
static size_t dc_kernel_bytes(const cnb_kernel *self)
{
    if (self->forward == ip_forward) {
        const ip_kernel *ik = (const ip_kernel *)self;
        return sizeof *ik + sizeof(float) * ik->wt_n * ik->st->threads +
               (ik->g ? sizeof(float) * (size_t)ik->n * ik->k : 0);
    }
    const dc_kernel *dk = (const dc_kernel *)self;
    if (dk->bl) {
        const bl_bytes b = bl_sizes(dk);
        return sizeof *dk + sizeof(int) * cnb_shape_size(dk->d.src) + b.arg +
               dk->nslots * (sizeof(dc_slot) + b.xl + b.ol + b.gl + b.dxl) +
               dk->nchunks * (sizeof(dc_chunk) + b.dw + b.db);
    }
    const cnb_op_desc *d = &dk->d;
    const size_t f = sizeof(float), K = d->dst.c, taps = (size_t)d->u.conv.kh * d->u.conv.kw;
    const size_t nw = K * d->src.c * taps;
    size_t slot = sizeof(dc_slot) + f * d->src.c * dk->fwd.plane, chunk = sizeof(dc_chunk);
    slot += (dk->bwd_vec ? f * K * dk->bwd.plane : 0) +
            (dk->dwk ? f * d->dst.h * d->dst.w * dk->kp : 0) +
            (dk->fuse ? f * cnb_shape_size(d->dst) : 0);
    chunk += sizeof(double) * K + f * (dk->dwk ? d->src.c * taps * dk->kp
                                               : nw * (dk->lanes ? 16 : 1));
    size_t bytes = sizeof *dk + dk->nslots * slot + dk->nchunks * chunk;
    if (dk->st->avx512)
        bytes += f * (dk->fwdk ? nw / K * dk->kp : nw) + (dk->bwd_vec ? f * nw : 0);
    if (dk->fuse == FUSE_POOL)
        bytes += (size_t)d->batch * cnb_shape_size(dk->out);
    bytes += (dk->fwd.jo_big ? sizeof(int) * d->u.conv.kw : 0) +
             (dk->bwd.jo_big ? sizeof(int) * d->u.conv.kw : 0);
    return bytes;
}

CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC("direct", "1.2.0",
                     "direct convolution in AVX-512F (plain C without it) and small inner "
                     "products, fused with the ReLU and max pooling after them; other ops "
                     "on the next backend",
                     .ops = CNB_OP_BIT(CNB_OP_CONV) | CNB_OP_BIT(CNB_OP_INNER_PRODUCT),
                     .init = dc_init,
                     .fini = dc_fini,
                     .kernel_create = dc_kernel_create,
                     .info = dc_info,
                     .fuse_create = dc_fuse_create,
                     .kernel_bytes = dc_kernel_bytes));
