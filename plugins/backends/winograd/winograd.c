/*
 * winograd.c - the "winograd" backend: stride-1 5x5 and 3x3 convolutions by Winograd's
 * minimal filtering, F(4x4, 5x5) and F(5x5, 3x3), with the products in the transformed
 * domain as oneDNN batched matrix multiplications. It implements CNB_OP_CONV only (and
 * fuses such a convolution with the ReLU after it: wg_fuse_create), and answers
 * CNB_ENOTSUP for any other geometry (another window, a stride, fewer than
 * WG_MIN_CHANNELS channels on either side, a padding past r - 1), so that it goes first
 * in a chain: "winograd+onednn" runs AlexNet's conv2 to conv5 here and everything else on
 * oneDNN, which has Winograd kernels for 3x3 windows only, F(4x4, 3x3). On a 13x13 output
 * (conv3 to conv5) its tiles of 4 cover 16x16 and F(5x5, 3x3)'s of 5 cover 15x15: 1.96
 * multiplies per output on the smaller grid against 2.25 (1 thread, batch 32: conv3 to
 * conv5 took 233 ms forward and backward here, 258 on oneDNN's).
 *
 * The algorithm (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * 2016). An output tile of m x m is
 *     Y = AT [ (G g GT) . (BT d B) ] A
 * for the a x a input patch d under it (a = m + r - 1: 8 for 5x5 filters, 7 for 3x3) and
 * the r x r filter g; each element e of the a x a product is, over all tiles and
 * channels, one matrix product:
 *     M[e] (tiles x K) = V[e] (tiles x C) * U[e] (C x K),   e < a * a.
 * So a 5x5 filter costs a^2 / m^2 = 4 multiplies per output and input channel instead of
 * 25, plus the transforms, which are linear in the tensors. The matrices are not tabulated
 * but derived from a - 1 of the interpolation points 0, +-1, +-2, 1/2, -1/2, and infinity:
 * AT[i][j] = p_j^i, G[j][k] = p_j^k / prod_{l != j} (p_j - p_l), row j of BT the
 * coefficients of prod_{l != j} (x - p_l), and the point at infinity takes the last
 * column of AT, the last filter tap in G and prod_l (x - p_l) in BT; in double, kept in
 * float, once per backend state.
 *
 * The passes, on tensors transposed to channels last (16 channels a vector; C and K
 * padded to multiples of 16 with zeros):
 *   forward   U = G g GT; then per chunk of samples: V = BT d B of its tiles (V is kept
 *             for backward), M = V U, Y = AT M A plus the bias.
 *   backward  per chunk of samples: weights: Z = A dY AT of its output tiles, dU[e] +=
 *             V[e]^T Z[e] over its tiles; data: the correlation of dY padded by r - 1 - p
 *             with the flipped filter, C and K swapped, by the forward's three steps;
 *             then dW = GT dU G.
 * A chunk is a few hundred tiles (chunk_samples), so that oneDNN's products have rows
 * enough, and no more samples than keep its products within WG_CHUNK_BYTES a thread, so
 * that the output transform reads them from the cache. Every transform is out = L in LT
 * for one small matrix L (BT, AT, G, its transpose, or A) on 16 channels at once:
 * AVX-512F intrinsics for each of the ten shapes where the CPU has it, else one plain C
 * function (target_clones); the layout changes gather 16 values at a time with AVX-512F
 * (CNB_WINOGRAD_ISA=scalar: plain C for both). The a * a elements of a transformed
 * tensor are a skewed stride apart (skew(), below), never a multiple of 4 KiB.
 *
 * Accuracy: the transforms scale values up and back (F(4x4, 5x5)'s BT by up to 21/4, its
 * AT by 8), so results differ from the definition's by more rounding than a direct
 * kernel's; its algorithm() says "winograd", and the conformance checker (cnnbench check)
 * holds such kernels to 4 times the others' tolerance (core/src/conformance.c,
 * FAST_EPS_FACTOR).
 *
 *
 * Heap: forward and backward allocate nothing of their own, but oneDNN 2.6's batched
 * product allocates a 72 KiB packing buffer per matrix at every call, inside its parallel
 * loop, whatever the scratchpad mode: 72 KiB a matrix, 64 or 49 of them per chunk (the
 * bench's alloc columns). For a chunk's shapes (a few hundred rows) it picks
 * gemm:jit, which packs its operands itself at every call and takes the weights in the
 * plain layout even when offered any other (format_tag_any), so there is no packed copy
 * to make once per pass instead; from 1,568 rows on it picks brg:avx512_core.
 *
 * Threads: cfg->threads, OpenMP's, for the transforms (../common/pool.h, pool_omp.c,
 * whose handout makes no result depend on which thread ran an item; items are rows of a
 * sample) and for oneDNN's products. Memory: V for the whole batch (the forward's, kept
 * for the weights' gradient), everything else a chunk's: the padded channels-last copies
 * of src and diff_dst, Z or the V of diff_dst, the products and the output tiles.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "cnnbench/backend.h"
#include "pool.h"

#define WHO "winograd"
#define WG_A 8                         /* transformed tiles: at most WG_A x WG_A    */
#define WG_MIN_CHANNELS 16             /* fewer on either side: left to the chain   */
#define LANES 16                       /* channels per vector                       */
#define WG_CHUNK_BYTES ((size_t)5 << 20) /* a chunk's products a thread, at most */
#define WG_MIN_ROWS 256                /* a chunk's tiles, at least (chunk_samples)  */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define WG_HAVE_AVX512 1
#define WG_AVX512 __attribute__((target("avx512f")))
#else
#define WG_HAVE_AVX512 0
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                     \
    !defined(__SANITIZE_THREAD__)
#define WG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WG_CLONES
#endif

/* The five transforms of a scheme, each out = L in LT for one of its matrices L. */
typedef enum wg_which {
    WG_BT, /* the input tiles, a x a -> a x a       */
    WG_AT, /* the output tiles, a x a -> m x m      */
    WG_AM, /* the output gradient's, m x m -> a x a */
    WG_G,  /* the filters, r x r -> a x a           */
    WG_GT, /* their gradient, a x a -> r x r        */
    WG_TRANSFORMS
} wg_which;

/* out = L in LT, L no x ni in rows of ld floats, on 16 channels at once (sandwich) */
typedef void (*wg_sandwich_fn)(const float *L, int ld, const float *in, size_t irow,
                               size_t icol, float *out, size_t orow, size_t ocol);

typedef struct wg_transform {
    const float *L;
    int no, ni;
    wg_sandwich_fn fast; /* its AVX-512F function; NULL: the plain one */
} wg_transform;

/* Winograd F(m x m, r x r): output tiles of m x m, filters of r x r, transformed tiles of
 * a x a (a = m + r - 1). Every matrix in rows of WG_A floats. */
typedef struct wg_scheme {
    int m, r, a;
    float at[WG_A][WG_A]; /* AT: a -> m */
    float am[WG_A][WG_A]; /* A = AT^T: m -> a */
    float g[WG_A][WG_A];  /* G: r -> a */
    float gt[WG_A][WG_A]; /* GT: a -> r */
    float bt[WG_A][WG_A]; /* BT: a -> a */
    wg_transform t[WG_TRANSFORMS]; /* chosen once, at init (scheme_init) */
} wg_scheme;

typedef struct wg_state {
    const cnb_host *host;
    int threads;
    int avx512; /* transforms, layout changes in AVX-512F (the CPU has it; CNB_WINOGRAD_ISA) */
    thread_pool *pool;
    wg_scheme f4x5, f5x3;  /* the transforms, the same for every kernel               */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    char info[160];
} wg_state;

/* One batched product: dst[e] = src[e] * wei[e] for e < a * a, on buffers bound per call. */
typedef struct wg_matmul {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, scratch; /* scratch: oneDNN's, bound at create */
    void *scratch_buf;
    size_t scratch_bytes;
} wg_matmul;

/* A tile grid over an output of oh x ow: ty x tx tiles per sample, t of them in all. */
typedef struct wg_grid {
    int ty, tx, t;
} wg_grid;

typedef struct wg_kernel {
    cnb_kernel base;
    wg_state *st;
    const wg_scheme *s;           /* st's, for the filter's r                           */
    cnb_op_desc d;
    int cp, kp;                   /* C and K padded to 16                               */
    wg_grid fg, bg;               /* the forward output's tiles, the input's            */
    int xh, xw;                   /* src padded, channels last: xh x xw x cp a sample  */
    int qh, qw, dh, dw;           /* diff_dst padded by (qh, qw): dh x dw x kp          */
    int nb;                       /* samples a chunk (below)                            */
    int relu;                     /* a fused run, the convolution and a ReLU: dst holds
                                     max(0, conv), diff_dst passes where dst > 0         */
    float *x;                     /* a chunk's src, padded, channels last               */
    float *dy;                    /* a chunk's diff_dst, padded, channels last          */
    size_t ve, ine, oute, ue;     /* the element strides of v, cin, cout, u and du      */
    float *v;                     /* V[e][fg.t][cp], kept for backward                  */
    float *cin;                   /* a chunk's Z, then its V of diff_dst: [e][nb tiles][kp]
                                     (the forward's tiles, then the input's)            */
    float *cout;                  /* a chunk's products: [e][nb tiles][kp or cp]        */
    float *y;                     /* a chunk's output tile grids, channels last         */
    float *u;                     /* U[e][cp][kp], or the flipped [e][kp][cp]           */
    float *du;                    /* dU[e][cp][kp]                                      */
    float *wt;                    /* the filter, channels last: [c][r*r][kp] etc.       */
    double *db;                   /* diff_bias partial sums: [batch * oh][kp]           */
    size_t bytes;                 /* all of the above, and oneDNN's scratchpads         */
    wg_matmul fwd, bwd_data, bwd_weights, bwd_weights_add; /* _add: dU += V^T Z */
} wg_kernel;

/* ------------------------------------------------------------------------------------ */
/* The matrices. */

/* Coefficients of prod over the finite points but `skip` of (x - p), lowest first. */
static void poly_roots(const double *p, int n, int skip, double *coef)
{
    int deg = 0;
    coef[0] = 1;
    for (int l = 0; l < n; l++) {
        if (l == skip)
            continue;
        coef[deg + 1] = 0;
        for (int i = deg + 1; i > 0; i--)
            coef[i] = coef[i - 1] - p[l] * coef[i];
        coef[0] *= -p[l];
        deg++;
    }
}

/* The transforms of F(m x m, r x r) on the first a - 1 of the points (0, +-1, +-2, 1/2,
 * -1/2) and infinity, once per backend state (above, and the file's comment). */
static void derive(wg_scheme *sc, int m, int r)
{
    static const double pts[WG_A - 1] = {0, 1, -1, 2, -2, 0.5, -0.5};
    const int a = m + r - 1, n = a - 1; /* n finite points and infinity */
    memset(sc, 0, sizeof *sc);
    sc->m = m, sc->r = r, sc->a = a;
    for (int j = 0; j < n; j++) {
        double f = 1, coef[WG_A];
        for (int l = 0; l < n; l++)
            f *= l == j ? 1 : pts[j] - pts[l];
        double pw = 1;
        for (int i = 0; i < m || i < r; i++, pw *= pts[j]) {
            if (i < m)
                sc->at[i][j] = (float)pw;
            if (i < r)
                sc->g[j][i] = (float)(pw / f);
        }
        poly_roots(pts, n, j, coef);
        for (int t = 0; t < n; t++)
            sc->bt[j][t] = (float)coef[t];
    }
    double coef[WG_A + 1];
    poly_roots(pts, n, -1, coef);
    for (int t = 0; t < a; t++)
        sc->bt[n][t] = (float)coef[t];
    sc->at[m - 1][n] = 1;
    sc->g[n][r - 1] = 1;
    for (int i = 0; i < a; i++) {
        for (int j = 0; j < m; j++)
            sc->am[i][j] = sc->at[j][i];
        for (int j = 0; j < r; j++)
            sc->gt[j][i] = sc->g[i][j];
    }
}

/*
 * out = L in LT on 16 channels at once: in is ni x ni vectors, element (p, q) at
 * in + p * irow + q * icol; out no x no, at out + i * orow + j * ocol. L is no x ni,
 * row-major with row length ld; its zeros are skipped. (Inlined into its callers with
 * the sizes as constants, GCC 12 made it 4-5 times slower.)
 */
WG_CLONES
static void sandwich(const float *L, int ld, int no, int ni, const float *in, size_t irow,
                     size_t icol, float *out, size_t orow, size_t ocol)
{
    float t[WG_A][WG_A][LANES]; /* L in: no x ni */
    for (int i = 0; i < no; i++)
        for (int q = 0; q < ni; q++) {
            float acc[LANES] = {0};
            for (int p = 0; p < ni; p++) {
                const float c = L[i * ld + p];
                if (c == 0)
                    continue;
                const float *s = in + p * irow + q * icol;
                for (int l = 0; l < LANES; l++)
                    acc[l] += c * s[l];
            }
            memcpy(t[i][q], acc, sizeof acc);
        }
    for (int i = 0; i < no; i++)
        for (int j = 0; j < no; j++) {
            float acc[LANES] = {0};
            for (int q = 0; q < ni; q++) {
                const float c = L[j * ld + q];
                if (c == 0)
                    continue;
                for (int l = 0; l < LANES; l++)
                    acc[l] += c * t[i][q][l];
            }
            memcpy(out + i * orow + j * ocol, acc, sizeof acc);
        }
}

#if WG_HAVE_AVX512
/* The same with AVX-512F, for sizes known at compile time (one function for each of the
 * ten shapes of the transforms, below): dense, every coefficient a broadcast FMA, the ni
 * inputs of a column and the no sums in registers, where the plain version's loops test
 * sizes and zeros at run time. AlexNet's conv2 on 1 thread, the same hour: forward 50.1
 * against 49.6 ms, backward 94.6 against 85.5. */
static inline __attribute__((always_inline)) WG_AVX512 void
sandwich_zmm(const float *L, int ld, const int no, const int ni, const float *in, size_t irow,
             size_t icol, float *out, size_t orow, size_t ocol)
{
    __m512 t[WG_A][WG_A]; /* L in: no x ni */
#pragma GCC unroll 8
    for (int q = 0; q < ni; q++) {
        __m512 x[WG_A];
#pragma GCC unroll 8
        for (int p = 0; p < ni; p++)
            x[p] = _mm512_loadu_ps(in + p * irow + q * icol);
#pragma GCC unroll 8
        for (int i = 0; i < no; i++) {
            __m512 acc = _mm512_mul_ps(_mm512_set1_ps(L[i * ld]), x[0]);
#pragma GCC unroll 8
            for (int p = 1; p < ni; p++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(L[i * ld + p]), x[p], acc);
            t[i][q] = acc;
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < no; i++)
#pragma GCC unroll 8
        for (int j = 0; j < no; j++) {
            __m512 acc = _mm512_mul_ps(_mm512_set1_ps(L[j * ld]), t[i][0]);
#pragma GCC unroll 8
            for (int q = 1; q < ni; q++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(L[j * ld + q]), t[i][q], acc);
            _mm512_storeu_ps(out + i * orow + j * ocol, acc);
        }
}

#define WG_SANDWICH(NO, NI)                                                                \
    WG_AVX512 static void sandwich_##NO##x##NI(const float *L, int ld, const float *in,      \
                                               size_t irow, size_t icol, float *out,        \
                                               size_t orow, size_t ocol)                    \
    {                                                                                      \
        sandwich_zmm(L, ld, NO, NI, in, irow, icol, out, orow, ocol);                      \
    }
/* F(4x4, 5x5)'s BT (the input tiles), AT (the output tiles), A (the gradient's), G (the
 * filters) and GT (their gradient); then F(5x5, 3x3)'s */
WG_SANDWICH(8, 8) WG_SANDWICH(4, 8) WG_SANDWICH(8, 4) WG_SANDWICH(8, 5) WG_SANDWICH(5, 8)
WG_SANDWICH(7, 7) WG_SANDWICH(5, 7) WG_SANDWICH(7, 5) WG_SANDWICH(7, 3) WG_SANDWICH(3, 7)

static const struct {
    int no, ni;
    wg_sandwich_fn f;
} sandwiches[] = {{8, 8, sandwich_8x8}, {4, 8, sandwich_4x8}, {8, 4, sandwich_8x4},
                  {8, 5, sandwich_8x5}, {5, 8, sandwich_5x8}, {7, 7, sandwich_7x7},
                  {5, 7, sandwich_5x7}, {7, 5, sandwich_7x5}, {7, 3, sandwich_7x3},
                  {3, 7, sandwich_3x7}};
#endif

/* F(m x m, r x r)'s matrices and its transforms: each with its AVX-512F function when
 * avx512 (every shape of the two schemes has one), looked up here once. */
static void scheme_init(wg_scheme *sc, int m, int r, int avx512)
{
    derive(sc, m, r);
    const int a = sc->a;
    sc->t[WG_BT] = (wg_transform){&sc->bt[0][0], a, a, NULL};
    sc->t[WG_AT] = (wg_transform){&sc->at[0][0], m, a, NULL};
    sc->t[WG_AM] = (wg_transform){&sc->am[0][0], a, m, NULL};
    sc->t[WG_G] = (wg_transform){&sc->g[0][0], a, r, NULL};
    sc->t[WG_GT] = (wg_transform){&sc->gt[0][0], r, a, NULL};
#if WG_HAVE_AVX512
    for (wg_transform *t = sc->t; avx512 && t < sc->t + WG_TRANSFORMS; t++)
        for (size_t i = 0; i < sizeof sandwiches / sizeof *sandwiches; i++)
            if (sandwiches[i].no == t->no && sandwiches[i].ni == t->ni)
                t->fast = sandwiches[i].f;
#else
    (void)avx512;
#endif
}

/* out = L in LT for the kernel's scheme's transform `which` (sandwich's arguments). */
static void transform(const wg_kernel *k, wg_which which, const float *in, size_t irow,
                      size_t icol, float *out, size_t orow, size_t ocol)
{
    const wg_transform *t = &k->s->t[which];
    if (t->fast)
        t->fast(t->L, WG_A, in, irow, icol, out, orow, ocol);
    else
        sandwich(t->L, WG_A, t->no, t->ni, in, irow, icol, out, orow, ocol);
}

/* ------------------------------------------------------------------------------------ */
/* Layout changes, one row of a sample at a time. */

/* Row y of an NCHW sample (ch planes of `plane` floats, rows of w) into a channels-last
 * row of w pixels of cpad channels; what it does not write stays as it was (zeros from
 * create). With pass (the same row of a tensor of src's shape), only the values where
 * pass is above zero, zeros elsewhere (a ReLU's backward, from its output). With sums,
 * each channel's sum over the row (of what was written) into sums[0 .. ch). */
static void row_to_channels_last(const float *src, const float *pass, int ch, size_t plane,
                                 int w, float *dst, int cpad, double *sums)
{
    for (int c = 0; c < ch; c++) {
        const float *s = src + (size_t)c * plane, *p = pass ? pass + (size_t)c * plane : NULL;
        double sum = 0;
        for (int x = 0; x < w; x++) {
            const float v = !p || p[x] > 0 ? s[x] : 0;
            dst[(size_t)x * cpad + c] = v;
            sum += v;
        }
        if (sums)
            sums[c] = sum;
    }
}

/* A channels-last row of w pixels of cpad channels back to row y of an NCHW sample (ch
 * planes of `plane` floats), plus bias[c] (NULL: none); with relu, max(0, that). */
static void row_to_nchw(const float *src, int cpad, float *dst, int ch, size_t plane, int w,
                        const float *bias, int relu)
{
    for (int c = 0; c < ch; c++) {
        const float b = bias ? bias[c] : 0;
        float *o = dst + (size_t)c * plane;
        for (int x = 0; x < w; x++) {
            const float v = src[(size_t)x * cpad + c] + b;
            o[x] = relu && !(v > 0) ? 0 : v;
        }
    }
}

#if WG_HAVE_AVX512
/* The same two with AVX-512F: 16 values a gather (16 channels of a pixel, or one channel
 * of 16 pixels), a store of 16, masked at the ends. */
static __mmask16 first_lanes(int n) { return (__mmask16)(n >= LANES ? 0xffff : (1u << n) - 1); }

WG_AVX512 static __m512i lane_steps(int step)
{
    return _mm512_mullo_epi32(_mm512_set1_epi32(step),
                              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                14, 15));
}

WG_AVX512 static void row_to_channels_last_avx512(const float *src, const float *pass, int ch,
                                                  size_t plane, int w, float *dst, int cpad,
                                                  double *sums)
{
    const __m512i planes = lane_steps((int)plane);
    for (int c0 = 0; c0 < ch; c0 += LANES) {
        const __mmask16 m = first_lanes(ch - c0);
        const float *s = src + (size_t)c0 * plane;
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        for (int x = 0; x < w; x++) {
            __mmask16 take = m;
            if (pass) /* the lanes whose ReLU output is above zero */
                take = _mm512_mask_cmp_ps_mask(
                    m, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, planes,
                                                pass + (size_t)c0 * plane + x, 4),
                    _mm512_setzero_ps(), _CMP_GT_OQ);
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), take, planes, s + x,
                                                      4);
            _mm512_mask_storeu_ps(dst + (size_t)x * cpad + c0, m, v);
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
        }
        if (sums) {
            double t[LANES];
            _mm512_storeu_pd(t, lo);
            _mm512_storeu_pd(t + 8, hi);
            for (int c = c0; c < ch && c < c0 + LANES; c++)
                sums[c] = t[c - c0];
        }
    }
}

WG_AVX512 static void row_to_nchw_avx512(const float *src, int cpad, float *dst, int ch,
                                         size_t plane, int w, const float *bias, int relu)
{
    const __m512i pixels = lane_steps(cpad);
    for (int c = 0; c < ch; c++) {
        const __m512 b = _mm512_set1_ps(bias ? bias[c] : 0);
        float *o = dst + (size_t)c * plane;
        for (int x = 0; x < w; x += LANES) {
            const __mmask16 m = first_lanes(w - x);
            __m512 v = _mm512_add_ps(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, pixels,
                                                              src + (size_t)x * cpad + c, 4),
                                     b);
            if (relu) /* max(0, v) as row_to_nchw's: a NaN gives 0 */
                v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ),
                                        v);
            _mm512_mask_storeu_ps(o + x, m, v);
        }
    }
}
#endif

/* The layout changes of this state's ISA. */
static void channels_last(const wg_kernel *k, const float *src, const float *pass, int ch,
                          size_t plane, int w, float *dst, int cpad, double *sums)
{
#if WG_HAVE_AVX512
    if (k->st->avx512) {
        row_to_channels_last_avx512(src, pass, ch, plane, w, dst, cpad, sums);
        return;
    }
#endif
    row_to_channels_last(src, pass, ch, plane, w, dst, cpad, sums);
}

static void nchw(const wg_kernel *k, const float *src, int cpad, float *dst, int ch,
                 size_t plane, int w, const float *bias, int relu)
{
#if WG_HAVE_AVX512
    if (k->st->avx512) {
        row_to_nchw_avx512(src, cpad, dst, ch, plane, w, bias, relu);
        return;
    }
#endif
    row_to_nchw(src, cpad, dst, ch, plane, w, bias, relu);
}

/* ------------------------------------------------------------------------------------ */
/* The transforms of one row of tiles. */

/* dst[e][tile][cpad] = L d LT (transform `which`: BT or A) for the tx tiles of tile row
 * ty of a channels-last sample (rows of ww pixels of cpad channels), tile (ty, j) taking
 * the ni x ni block d at (top + ty m, left + j m) and being tile number tile0 + j of dst,
 * whose elements e are e_stride floats apart. */
static void tiles_in(const wg_kernel *k, wg_which which, const float *src, int ww, int top,
                     int left, int cpad, int tx, int ty, size_t tile0, size_t e_stride,
                     float *dst)
{
    const size_t row = (size_t)ww * cpad;
    const int m = k->s->m, a = k->s->a;
    for (int j = 0; j < tx; j++) {
        const float *s = src + (size_t)(top + ty * m) * row + (size_t)(left + j * m) * cpad;
        for (int c = 0; c < cpad; c += LANES)
            transform(k, which, s + c, row, cpad, dst + (tile0 + j) * cpad + c, a * e_stride,
                      e_stride);
    }
}

/* The output transform AT M A of tiles tile0 .. tile0 + tx - 1 of src (elements e_stride
 * floats apart) into a channels-last row of m x m tiles: m rows of tx m pixels of cpad
 * channels from dst. */
static void tiles_out(const wg_kernel *k, const float *src, size_t e_stride, size_t tile0,
                      int cpad, int tx, float *dst)
{
    const int m = k->s->m, a = k->s->a;
    const size_t row = (size_t)tx * m * cpad;
    for (int j = 0; j < tx; j++)
        for (int c = 0; c < cpad; c += LANES)
            transform(k, WG_AT, src + (tile0 + j) * cpad + c, a * e_stride, e_stride,
                      dst + (size_t)j * m * cpad + c, row, cpad);
}

/* U[e][ci][co..co+15] = G g GT for the filters of inputs ci < ci_n, held channels last
 * (f[ci][r*r][cop]); U[e] has rows of cop, those past ci_n left as they are (their
 * inputs, the padding channels, are zeros). */
static void filter_in(const wg_kernel *k, const float *f, int ci_n, int cop, int co, float *u)
{
    for (int ci = 0; ci < ci_n; ci++)
        transform(k, WG_G, f + (size_t)ci * k->s->r * k->s->r * cop + co,
                  (size_t)k->s->r * cop, cop, u + (size_t)ci * cop + co, k->s->a * k->ue,
                  k->ue);
}

/* dW = GT dU G for input channel ci and every output channel: dU[e][ci][kp] (elements
 * e_stride floats apart) into f[r*r][kp]. */
static void filter_out(const wg_kernel *k, const float *du, size_t e_stride, int kp, float *f)
{
    for (int co = 0; co < kp; co += LANES)
        transform(k, WG_GT, du + co, k->s->a * e_stride, e_stride, f + co,
                  (size_t)k->s->r * kp, kp);
}

/* ------------------------------------------------------------------------------------ */
/* oneDNN's batched products. */

/* dst[e] (rows x cols) = src[e] (rows x inner) * wei[e] (inner x cols), e < a * a, the
 * src[e], wei[e] and dst[e] src_e, wei_e and dst_e floats apart (a chunk of V's tiles is
 * a block of V[e]'s rows); with src_transposed, src[e] is stored as inner x rows (V^T);
 * with add, dst[e] += the product (oneDNN's sum post-op). */
static int matmul_make(wg_kernel *k, wg_matmul *mm, dnnl_dim_t rows, dnnl_dim_t inner,
                       dnnl_dim_t cols, size_t src_e, size_t wei_e, size_t dst_e,
                       int src_transposed, int add)
{
    const dnnl_dim_t e = (dnnl_dim_t)k->s->a * k->s->a;
    dnnl_memory_desc_t s, w, d;
    dnnl_dims_t sd = {e, rows, inner}, wd = {e, inner, cols}, dd = {e, rows, cols};
    dnnl_dims_t ss = {(dnnl_dim_t)src_e, inner, 1}, ws = {(dnnl_dim_t)wei_e, cols, 1},
                ds = {(dnnl_dim_t)dst_e, cols, 1};
    if (src_transposed)
        ss[1] = 1, ss[2] = rows;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t sum = NULL;
    omp_set_num_threads(k->st->threads);
    dnnl_status_t rc = dnnl_primitive_attr_create(&attr);
    if (rc == dnnl_success) /* its scratchpad ours, allocated here and not per call */
        rc = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (rc == dnnl_success && add) { /* dst += the product */
        rc = dnnl_post_ops_create(&sum);
        if (rc == dnnl_success)
            rc = dnnl_post_ops_append_sum(sum, 1.0f);
        if (rc == dnnl_success)
            rc = dnnl_primitive_attr_set_post_ops(attr, sum);
    }
    if (sum)
        dnnl_post_ops_destroy(sum);
    if (rc == dnnl_success)
        rc = dnnl_memory_desc_init_by_strides(&s, 3, sd, dnnl_f32, ss);
    if (rc == dnnl_success)
        rc = dnnl_memory_desc_init_by_strides(&w, 3, wd, dnnl_f32, ws);
    if (rc == dnnl_success)
        rc = dnnl_memory_desc_init_by_strides(&d, 3, dd, dnnl_f32, ds);
    if (rc == dnnl_success)
        rc = dnnl_matmul_desc_init(&md, &s, &w, NULL, &d);
    if (rc == dnnl_success)
        rc = dnnl_primitive_desc_create(&pd, &md, attr, k->st->engine, NULL);
    if (rc == dnnl_success) {
        const dnnl_memory_desc_t *smd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        mm->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (mm->scratch_bytes && !(mm->scratch_buf = k->st->host->alloc(mm->scratch_bytes)))
            rc = dnnl_out_of_memory;
        if (rc == dnnl_success && mm->scratch_bytes)
            rc = dnnl_memory_create(&mm->scratch, smd, k->st->engine, mm->scratch_buf);
        k->bytes += mm->scratch_bytes;
        if (rc == dnnl_success)
            rc = dnnl_primitive_create(&mm->prim, pd);
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (rc == dnnl_success)
        rc = dnnl_memory_create(&mm->src, &s, k->st->engine, DNNL_MEMORY_NONE);
    if (rc == dnnl_success)
        rc = dnnl_memory_create(&mm->wei, &w, k->st->engine, DNNL_MEMORY_NONE);
    if (rc == dnnl_success)
        rc = dnnl_memory_create(&mm->dst, &d, k->st->engine, DNNL_MEMORY_NONE);
    if (rc != dnnl_success) {
        k->st->host->log(CNB_LOG_ERROR, WHO, "oneDNN could not make a batched product "
                         "(%lld x %lld x %lld, %lld of them): status %d", (long long)rows,
                         (long long)inner, (long long)cols, (long long)e, (int)rc);
        return CNB_EINVAL;
    }
    return CNB_OK;
}

static int matmul_run(const wg_kernel *k, const wg_matmul *mm, const float *src,
                      const float *wei, float *dst)
{
    omp_set_num_threads(k->st->threads);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mm->src},
                               {DNNL_ARG_WEIGHTS, mm->wei},
                               {DNNL_ARG_DST, mm->dst},
                               {DNNL_ARG_SCRATCHPAD, mm->scratch}};
    dnnl_status_t rc = dnnl_memory_set_data_handle(mm->src, (void *)src);
    if (rc == dnnl_success)
        rc = dnnl_memory_set_data_handle(mm->wei, (void *)wei);
    if (rc == dnnl_success)
        rc = dnnl_memory_set_data_handle(mm->dst, dst);
    if (rc == dnnl_success)
        rc = dnnl_primitive_execute(mm->prim, k->st->stream, mm->scratch ? 4 : 3, args);
    if (rc == dnnl_success)
        rc = dnnl_stream_wait(k->st->stream);
    if (rc != dnnl_success) {
        k->st->host->log(CNB_LOG_ERROR, WHO, "oneDNN's batched product failed: status %d",
                         (int)rc);
        return CNB_EINVAL;
    }
    return CNB_OK;
}

static void matmul_free(const cnb_host *h, wg_matmul *mm)
{
    if (mm->scratch)
        dnnl_memory_destroy(mm->scratch);
    h->free(mm->scratch_buf);
    if (mm->prim)
        dnnl_primitive_destroy(mm->prim);
    if (mm->src)
        dnnl_memory_destroy(mm->src);
    if (mm->wei)
        dnnl_memory_destroy(mm->wei);
    if (mm->dst)
        dnnl_memory_destroy(mm->dst);
}

/* ------------------------------------------------------------------------------------ */
/* The passes. Each parallel step is a task over items; both passes run a chunk of nb
 * samples at a time, so that a chunk's products, written by oneDNN, are still in the
 * cache when the output transform reads them (AlexNet's conv2: 3.2 MB a sample, against
 * 103 MB for the batch), and the buffers between the steps hold a chunk, not the batch. */

typedef enum wg_step {
    FWD_FILTER,  /* wt <- weights (K, C, r, r) as [c][r*r][kp]; U. Items: 16 k each    */
    FWD_LAYOUT,  /* x <- src. Items: the chunk's samples x src rows                   */
    FWD_TILES,   /* V. Items: the chunk's samples x tile rows                          */
    FWD_OUT,     /* dst <- AT M A + bias (relu: max(0, that)). Items: the chunk's
                    samples x tile rows                                               */
    BWD_LAYOUT,  /* dy <- diff_dst (relu: where dst > 0), its row sums for diff_bias.
                    Items: the chunk's samples x rows                                 */
    BWD_Z,       /* Z <- A dY AT over the forward's tiles. Items: the chunk's samples x
                    tile rows                                                         */
    BWD_WEIGHTS, /* diff_weights <- GT dU G. Items: input channels                     */
    BWD_FILTER,  /* wt <- the flipped filter as [k][r*r][cp]; U. Items: 16 c each      */
    BWD_TILES,   /* V of dy over the input's tiles. Items: the chunk's samples x rows  */
    BWD_OUT,     /* diff_src <- AT M A. Items: the chunk's samples x tile rows         */
} wg_step;

typedef struct wg_call {
    pool_job job;
    const wg_kernel *k;
    wg_step step;
    int n0, nb; /* the samples it covers */
} wg_call;

static int step_items(const wg_call *c)
{
    const wg_kernel *k = c->k;
    switch (c->step) {
    case FWD_FILTER:
        return k->kp / LANES;
    case BWD_FILTER:
        return k->cp / LANES;
    case BWD_WEIGHTS:
        return k->d.src.c;
    case FWD_LAYOUT:
        return c->nb * k->d.src.h;
    case BWD_LAYOUT:
        return c->nb * k->d.dst.h;
    case BWD_TILES:
    case BWD_OUT:
        return c->nb * k->bg.ty;
    default:
        return c->nb * k->fg.ty;
    }
}

static void step_item(const wg_call *call, int i)
{
    const wg_kernel *k = call->k;
    const cnb_args *A = call->job.a;
    const cnb_op_desc *d = &k->d;
    const int C = d->src.c, K = d->dst.c, r = k->s->r, rr = r * r, cp = k->cp, kp = k->kp;
    const size_t src_plane = (size_t)d->src.h * d->src.w, dst_plane = (size_t)d->dst.h * d->dst.w;
    switch (call->step) {
    case FWD_FILTER:
    case BWD_FILTER: { /* the filters of outputs o of block i, wt[in][t][o]; backward the
                          correlation's: C and K swapped, w[k][c] flipped (t -> rr - 1 - t) */
        const int bwd = call->step == BWD_FILTER;
        const int nin = bwd ? K : C, nout = bwd ? C : K, opad = bwd ? cp : kp;
        for (int o = i * LANES; o < (i + 1) * LANES && o < nout; o++)
            for (int in = 0; in < nin; in++) {
                const float *w = A->weights + (bwd ? (size_t)in * C + o : (size_t)o * C + in) * rr;
                for (int t = 0; t < rr; t++)
                    k->wt[((size_t)in * rr + t) * opad + o] = w[bwd ? rr - 1 - t : t];
            }
        filter_in(k, k->wt, nin, opad, i * LANES, k->u);
        break;
    }
    case BWD_WEIGHTS: { /* input channel i of every k: GT dU G into wt[i][t][kp], then out */
        float *f = k->wt + (size_t)i * rr * kp;
        filter_out(k, k->du + (size_t)i * kp, k->ue, kp, f);
        for (int co = 0; co < K; co++)
            for (int t = 0; t < rr; t++)
                A->diff_weights[((size_t)co * C + i) * rr + t] = f[(size_t)t * kp + co];
        break;
    }
    case FWD_LAYOUT: { /* x holds the chunk: sample nc of it */
        const int nc = i / d->src.h, y = i % d->src.h, n = call->n0 + nc;
        float *row = k->x + (((size_t)nc * k->xh + d->u.conv.ph + y) * k->xw + d->u.conv.pw) * cp;
        channels_last(k, A->src + n * C * src_plane + (size_t)y * d->src.w, NULL, C, src_plane,
                      d->src.w, row, cp, NULL);
        break;
    }
    case BWD_LAYOUT: { /* through the ReLU first in a fused run: where dst > 0 */
        const int nc = i / d->dst.h, y = i % d->dst.h, n = call->n0 + nc;
        const size_t at = n * K * dst_plane + (size_t)y * d->dst.w;
        float *row = k->dy + (((size_t)nc * k->dh + k->qh + y) * k->dw + k->qw) * kp;
        channels_last(k, A->diff_dst + at, k->relu ? A->dst + at : NULL, K, dst_plane,
                      d->dst.w, row, kp,
                      A->diff_bias ? k->db + ((size_t)n * d->dst.h + y) * kp : NULL);
        break;
    }
    case FWD_TILES: { /* V's tiles numbered within the batch */
        const int nc = i / k->fg.ty, ty = i % k->fg.ty;
        const size_t tile0 = (((size_t)call->n0 + nc) * k->fg.ty + ty) * k->fg.tx;
        tiles_in(k, WG_BT, k->x + (size_t)nc * k->xh * k->xw * cp, k->xw, 0, 0, cp, k->fg.tx,
                 ty, tile0, k->ve, k->v);
        break;
    }
    case BWD_Z:       /* cin's tiles numbered within the chunk: the forward's */
    case BWD_TILES: { /* or the input's */
        const int z = call->step == BWD_Z;
        const wg_grid *g = z ? &k->fg : &k->bg;
        const int nc = i / g->ty, ty = i % g->ty;
        const size_t tile0 = ((size_t)nc * g->ty + ty) * g->tx;
        tiles_in(k, z ? WG_AM : WG_BT, k->dy + (size_t)nc * k->dh * k->dw * kp, k->dw,
                 z ? k->qh : 0, z ? k->qw : 0, kp, g->tx, ty, tile0, k->ine, k->cin);
        break;
    }
    case FWD_OUT:
    case BWD_OUT: {
        const int fwd = call->step == FWD_OUT;
        const wg_grid *g = fwd ? &k->fg : &k->bg;
        const int nc = i / g->ty, ty = i % g->ty, n = call->n0 + nc;
        const int cpad = fwd ? kp : cp, ch = fwd ? K : C;
        const int h = fwd ? d->dst.h : d->src.h, w = fwd ? d->dst.w : d->src.w;
        const size_t plane = (size_t)h * w, tile0 = ((size_t)nc * g->ty + ty) * g->tx;
        const int m = k->s->m;
        float *grid = k->y + (size_t)i * m * g->tx * m * cpad; /* this tile row's */
        tiles_out(k, k->cout, k->oute, tile0, cpad, g->tx, grid);
        float *out = (fwd ? A->dst : A->diff_src) + (size_t)n * ch * plane;
        for (int y = ty * m; y < (ty + 1) * m && y < h; y++)
            nchw(k, grid + (size_t)(y - ty * m) * g->tx * m * cpad, cpad,
                 out + (size_t)y * w, ch, plane, w, fwd ? A->bias : NULL, fwd && k->relu);
        break;
    }
    }
}

static void step_task(void *arg, int slot)
{
    wg_call *call = arg;
    const int n = step_items(call);
    for (int i; (i = pool_job_take_near(&call->job, slot, n)) < n;)
        step_item(call, i);
}

static void run_step(const wg_kernel *k, const cnb_args *a, wg_step s, int n0, int nb)
{
    wg_call call = {.job = {.a = a, .threads = pool_threads(k->st->pool)}, .k = k, .step = s,
                    .n0 = n0, .nb = nb};
    for (int i = 0; i < POOL_SHARES; i++)
        atomic_init(&call.job.share[i].taken, 0);
    if (k->st->pool)
        pool_run(k->st->pool, step_task, &call);
    else
        step_task(&call, 0);
}

/* V's tiles of the samples from n0 on: a block of V[e]'s rows, for every e. */
static const float *v_from(const wg_kernel *k, int n0)
{
    return k->v + (size_t)n0 * k->fg.ty * k->fg.tx * k->cp;
}

static int wg_forward(cnb_kernel *self, const cnb_args *a)
{
    wg_kernel *k = (wg_kernel *)self;
    const int N = k->d.batch;
    int rc = CNB_OK;
    run_step(k, a, FWD_FILTER, 0, N);
    for (int n0 = 0; n0 < N && rc == CNB_OK; n0 += k->nb) {
        run_step(k, a, FWD_LAYOUT, n0, k->nb);
        run_step(k, a, FWD_TILES, n0, k->nb);
        rc = matmul_run(k, &k->fwd, v_from(k, n0), k->u, k->cout);
        if (rc == CNB_OK)
            run_step(k, a, FWD_OUT, n0, k->nb);
    }
    return rc;
}

static int wg_backward(cnb_kernel *self, const cnb_args *a)
{
    wg_kernel *k = (wg_kernel *)self;
    const int N = k->d.batch, K = k->d.dst.c, rows = N * k->d.dst.h;
    int rc = CNB_OK;
    if (a->diff_src) /* U of the flipped filter, for every chunk */
        run_step(k, a, BWD_FILTER, 0, N);
    for (int n0 = 0; n0 < N && rc == CNB_OK; n0 += k->nb) {
        run_step(k, a, BWD_LAYOUT, n0, k->nb);
        if (a->diff_weights) {
            run_step(k, a, BWD_Z, n0, k->nb);
            rc = matmul_run(k, n0 ? &k->bwd_weights_add : &k->bwd_weights, v_from(k, n0),
                            k->cin, k->du);
        }
        if (a->diff_src && rc == CNB_OK) {
            run_step(k, a, BWD_TILES, n0, k->nb);
            rc = matmul_run(k, &k->bwd_data, k->cin, k->u, k->cout);
            if (rc == CNB_OK)
                run_step(k, a, BWD_OUT, n0, k->nb);
        }
    }
    if (a->diff_bias && rc == CNB_OK)
        for (int co = 0; co < K; co++) {
            double sum = 0;
            for (int i = 0; i < rows; i++)
                sum += k->db[(size_t)i * k->kp + co];
            a->diff_bias[co] = (float)sum;
        }
    if (a->diff_weights && rc == CNB_OK)
        run_step(k, a, BWD_WEIGHTS, 0, N);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Create and destroy. */

static void wg_destroy(cnb_kernel *self)
{
    wg_kernel *k = (wg_kernel *)self;
    const cnb_host *h = k->st->host;
    matmul_free(h, &k->fwd);
    matmul_free(h, &k->bwd_data);
    matmul_free(h, &k->bwd_weights);
    matmul_free(h, &k->bwd_weights_add);
    float *bufs[] = {k->x, k->dy, k->v, k->cin, k->cout, k->y, k->u, k->du, k->wt};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        h->free(bufs[i]);
    h->free(k->db);
    h->free(k);
}

static wg_grid grid_over(int h, int w, int m, int batch)
{
    wg_grid g = {(h + m - 1) / m, (w + m - 1) / m, 0};
    g.t = batch * g.ty * g.tx;
    return g;
}

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

/* The stride of the a * a elements of a transformed tensor of n floats each: n rounded up
 * to 4 KiB, plus one cache line. A transform writes (or reads) the a * a elements of a
 * tile at once, 64 or 49 streams a stride apart; at a multiple of 4 KiB (AlexNet's conv2:
 * V's 1,568 tiles x 96 channels) all of them fall in one set of the L1 cache, whose 8
 * ways then evict each other on every line. One line more puts each stream in a set of its own,
 * in the L1 and, the line count being odd, in the L2. */
static size_t skew(size_t n)
{
    const size_t page = 4096 / sizeof(float), line = 64 / sizeof(float);
    return (n + page - 1) / page * page + line;
}

/* A zeroed buffer of n floats, counted in k->bytes. */
static float *zalloc(wg_kernel *k, size_t n)
{
    float *p = k->st->host->alloc(n * sizeof(float));
    if (p) {
        memset(p, 0, n * sizeof(float));
        k->bytes += n * sizeof(float);
    }
    return p;
}

/* Samples a chunk: the fewest that divide the batch and give oneDNN's products
 * WG_MIN_ROWS tiles or more, then the most that keep its products within WG_CHUNK_BYTES
 * a thread. A 3x3 AlexNet convolution has 9 tiles a sample: at 36 rows (4 samples, the
 * cache's choice) conv3 to conv5 took 258 ms forward and backward on 1 thread, at 288
 * (the batch) 233. AlexNet's conv2, 49 tiles and 4.4 MB a sample in backward: the
 * products' rows take 8 samples (392 rows), the cache no more. */
static int chunk_samples(const wg_kernel *k)
{
    const size_t e = (size_t)k->s->a * k->s->a, tiles = (size_t)k->fg.ty * k->fg.tx;
    const size_t per = sizeof(float) * e *
                       zmax(tiles * k->kp, (size_t)k->bg.ty * k->bg.tx * (k->cp + k->kp));
    int nb = 1;
    while (nb < k->d.batch && (k->d.batch % nb || nb * tiles < WG_MIN_ROWS))
        nb++;
    for (int b = nb + 1; b <= k->d.batch; b++)
        if (k->d.batch % b == 0 && b * per <= WG_CHUNK_BYTES * k->st->threads)
            nb = b;
    return nb;
}

static int wg_kernel_create(void *state, const cnb_op_desc *d, cnb_kernel **out)
{
    wg_state *st = state;
    *out = NULL;
    const int r = d->u.conv.kh;
    const wg_scheme *sc = r == 5 ? &st->f4x5 : r == 3 ? &st->f5x3 : NULL;
    if (d->op != CNB_OP_CONV || d->src_layout != CNB_LAYOUT_NCHW || !sc ||
        d->u.conv.kw != r || d->u.conv.sh != 1 || d->u.conv.sw != 1 || d->u.conv.ph < 0 ||
        d->u.conv.pw < 0 || d->u.conv.ph > r - 1 || d->u.conv.pw > r - 1 ||
        d->src.c < WG_MIN_CHANNELS || d->dst.c < WG_MIN_CHANNELS || d->dst.h < sc->m ||
        d->dst.w < sc->m)
        return CNB_ENOTSUP;
    wg_kernel *k = st->host->alloc(sizeof *k);
    if (!k)
        return CNB_ENOMEM;
    memset(k, 0, sizeof *k);
    k->base = CNB_KERNEL_INIT(.forward = wg_forward, .backward = wg_backward,
                              .destroy = wg_destroy);
    k->st = st, k->s = sc;
    k->d = *d;
    k->d.dst_layout = CNB_LAYOUT_NCHW;
    k->cp = (d->src.c + LANES - 1) / LANES * LANES;
    k->kp = (d->dst.c + LANES - 1) / LANES * LANES;
    k->bytes = sizeof *k;
    const int m = sc->m;
    const size_t e = (size_t)sc->a * sc->a, N = d->batch;
    k->fg = grid_over(d->dst.h, d->dst.w, m, d->batch);
    k->bg = grid_over(d->src.h, d->src.w, m, d->batch);
    k->nb = chunk_samples(k);
    k->xh = k->fg.ty * m + r - 1, k->xw = k->fg.tx * m + r - 1;
    k->qh = r - 1 - d->u.conv.ph, k->qw = r - 1 - d->u.conv.pw;
    k->dh = (int)zmax(k->bg.ty * m + r - 1, k->qh + k->fg.ty * m);
    k->dw = (int)zmax(k->bg.tx * m + r - 1, k->qw + k->fg.tx * m);
    const size_t ftiles = (size_t)k->fg.ty * k->fg.tx, btiles = (size_t)k->bg.ty * k->bg.tx;
    const size_t nb = (size_t)k->nb;
    k->x = zalloc(k, nb * k->xh * k->xw * k->cp);
    k->dy = zalloc(k, nb * k->dh * k->dw * k->kp);
    k->ve = skew((size_t)k->fg.t * k->cp);
    k->ine = skew(nb * zmax(ftiles, btiles) * k->kp);
    k->oute = skew(nb * zmax(ftiles * k->kp, btiles * k->cp));
    k->ue = skew((size_t)k->cp * k->kp);
    k->v = zalloc(k, e * k->ve);
    k->cin = zalloc(k, e * k->ine);
    k->cout = zalloc(k, e * k->oute);
    k->y = zalloc(k, nb * m * m * zmax(ftiles * k->kp, btiles * k->cp));
    k->u = zalloc(k, e * k->ue);
    k->du = zalloc(k, e * k->ue);
    k->wt = zalloc(k, (size_t)r * r * k->cp * k->kp);
    k->db = st->host->alloc(N * d->dst.h * k->kp * sizeof(double));
    k->bytes += N * d->dst.h * k->kp * sizeof(double);
    if (!k->x || !k->dy || !k->v || !k->cin || !k->cout || !k->y || !k->u || !k->du ||
        !k->wt || !k->db) {
        wg_destroy(&k->base);
        return CNB_ENOMEM;
    }
    int rc = matmul_make(k, &k->fwd, nb * ftiles, k->cp, k->kp, k->ve, k->ue, k->oute, 0, 0);
    for (int add = 0; add < (k->nb < d->batch ? 2 : 1) && rc == CNB_OK; add++)
        rc = matmul_make(k, add ? &k->bwd_weights_add : &k->bwd_weights, k->cp, nb * ftiles,
                         k->kp, k->ve, k->ine, k->ue, 1, add);
    if (rc == CNB_OK)
        rc = matmul_make(k, &k->bwd_data, nb * btiles, k->kp, k->cp, k->ine, k->ue,
                         k->oute, 0, 0);
    if (rc != CNB_OK) {
        wg_destroy(&k->base);
        return rc;
    }
    *out = &k->base;
    return CNB_OK;
}

/* A fused run (cnnbench/backend.h): a convolution this backend takes and the ReLU after
 * it, the ReLU done in the output transform's pass over dst and in the pass that reads
 * diff_dst in backward. A ReLU is a pass over the convolution's output forward and two
 * backward (AlexNet's conv2 at batch 32: 24 MB each). */
static int wg_fuse_create(void *state, const cnb_fuse_desc *f, cnb_kernel **out)
{
    wg_state *st = state;
    *out = NULL;
    if (f->n != 2 || f->op[1].op != CNB_OP_RELU)
        return CNB_ENOTSUP;
    if (f->op[1].batch != f->op[0].batch || f->op[1].src.c != f->op[0].dst.c ||
        f->op[1].src.h != f->op[0].dst.h || f->op[1].src.w != f->op[0].dst.w)
        return CNB_FAIL(st->host, WHO, CNB_EINVAL, "fused run: the ReLU does not take what "
                        "the convolution gives");
    const int rc = wg_kernel_create(state, &f->op[0], out);
    if (rc == CNB_OK)
        ((wg_kernel *)*out)->relu = 1;
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* The backend. */

static int wg_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    *state = NULL;
    wg_state *st = host->alloc(sizeof *st);
    if (!st)
        return CNB_ENOMEM;
    memset(st, 0, sizeof *st);
    st->host = host;
    st->threads = cfg && cfg->threads > 1 ? cfg->threads : 1;
#if WG_HAVE_AVX512
    __builtin_cpu_init();
    const char *isa = getenv("CNB_WINOGRAD_ISA");
    st->avx512 = __builtin_cpu_supports("avx512f") && !(isa && strcmp(isa, "scalar") == 0);
#endif
    scheme_init(&st->f4x5, 4, 5, st->avx512);
    scheme_init(&st->f5x3, 5, 3, st->avx512);
    omp_set_num_threads(st->threads);
    if (dnnl_engine_create(&st->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&st->stream, st->engine, dnnl_stream_default_flags) !=
            dnnl_success ||
        (st->threads > 1 && !(st->pool = pool_start(host, st->threads - 1, WHO)))) {
        host->log(CNB_LOG_ERROR, WHO, "could not start oneDNN's engine or the threads");
        if (st->stream)
            dnnl_stream_destroy(st->stream);
        if (st->engine)
            dnnl_engine_destroy(st->engine);
        host->free(st);
        return CNB_EINVAL;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(st->info, sizeof st->info,
             "Winograd F(4x4, 5x5) and F(5x5, 3x3), products on oneDNN %d.%d.%d, "
             "transforms and layout changes in %s; "
             "%d thread%s", v->major, v->minor, v->patch, st->avx512 ? "AVX-512F" : "plain C",
             st->threads, st->threads == 1 ? "" : "s");
    *state = st;
    return CNB_OK;
}

static void wg_fini(void *state)
{
    wg_state *st = state;
    if (!st)
        return;
    pool_stop(st->host, st->pool);
    dnnl_stream_destroy(st->stream);
    dnnl_engine_destroy(st->engine);
    st->host->free(st);
}

static const char *wg_info(void *state)
{
    wg_state *st = state;
    return st ? st->info : "Winograd convolution (not started)";
}

static size_t wg_kernel_bytes(const cnb_kernel *self) { return ((const wg_kernel *)self)->bytes; }

static const char *wg_algorithm(const cnb_kernel *self)
{
    (void)self;
    return "winograd";
}

CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC("winograd", "1.0.0",
                     "stride-1 3x3 and 5x5 convolutions of 16 channels and more by "
                     "Winograd F(4x4, r x r), products on oneDNN; other ops on the next "
                     "backend",
                     .ops = CNB_OP_BIT(CNB_OP_CONV),
                     .init = wg_init,
                     .fini = wg_fini,
                     .kernel_create = wg_kernel_create,
                     .fuse_create = wg_fuse_create,
                     .info = wg_info,
                     .kernel_bytes = wg_kernel_bytes,
                     .algorithm = wg_algorithm));
