/*
 * test_kernels.c - the "kernels" suite: conformance of the naive backend, the oracle every
 * other backend is checked against.
 *
 * What it checks, on the plugin file the build produced (dlopen, like the host does):
 *   - forward results against numbers worked out by hand (conv stride 2 padding 1, 3x3 s2
 *     overlapping max and average pools on a 5x5, softmax and its loss) and against the
 *     op definitions evaluated here in double on seeded random inputs (LRN, conv, ...);
 *   - every backward against central differences of L = sum(dst * R) for a fixed random R
 *     (so diff_dst = R; softmax_xent uses its loss instead, as its backward ignores diff_dst);
 *   - sentinel floats before and after every output are untouched by forward and backward,
 *     and outputs are poisoned with NaN first, so an unwritten or accumulated value shows;
 *   - a descriptor contradicting O = floor((I - K + 2P)/S) + 1 is refused with CNB_EINVAL.
 * It is not the cross-backend conformance suite (other backends against this one) and not
 * the layer gradient check (suite "gradcheck").
 *
 * Random inputs come from a local xorshift64* seeded with CNB_TEST_SEED (default below);
 * every failure message names the op, shapes, seed, index, expected and got.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"
#include "net.h"
#include "checkdata.h"
#include "testutil.h"

#define NAIVE_PATH CNB_BUILD_PLUGIN_DIR "/backends/naive/cnb-backend-naive.so"
#define SENTINEL_BITS 0x7fc0deadu /* a NaN payload no kernel computes              */
#define MAX_REPORTS 8             /* mismatches printed per comparison             */

/* ------------------------------------------------------------------------------------ */
/* The backend under test, with a host table whose log is captured. */

static const cnb_backend_desc *backend;
static void *backend_state;
static cnb_host host;
static int log_count;      /* messages logged by the backend so far */
static int log_quiet;      /* 1 while errors are expected            */
static char log_last[512];

static void capture_log(cnb_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_last, sizeof log_last, fmt, ap);
    va_end(ap);
    log_count++;
    if (!log_quiet || level > CNB_LOG_ERROR)
        fprintf(stderr, "%s: %s\n", who, log_last);
}

/* Load and init the naive backend once; NULL (after saying why) if it cannot be. */
static const cnb_backend_desc *naive(void)
{
    if (backend)
        return backend;
    void *dl = dlopen(NAIVE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "cannot load %s: %s\n", NAIVE_PATH, dlerror());
        return NULL;
    }
    void *sym = dlsym(dl, CNB_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        fprintf(stderr, "%s: no symbol %s\n", NAIVE_PATH, CNB_PLUGIN_ENTRY_SYMBOL);
        return NULL;
    }
    cnb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object to function pointer, as POSIX allows */
    const cnb_plugin_header *h = entry(0);
    if (!h || h->kind != CNB_PLUGIN_BACKEND || h->abi_major != CNB_BACKEND_ABI_MAJOR ||
        h->struct_size < sizeof(cnb_backend_desc)) {
        fprintf(stderr, "%s: entry(0) is not a backend of ABI %d\n", NAIVE_PATH,
                CNB_BACKEND_ABI_MAJOR);
        return NULL;
    }
    const cnb_backend_desc *b = (const cnb_backend_desc *)h;
    host = *cnb_host_services();
    host.log = capture_log;
    cnb_backend_config cfg = {.threads = 1};
    if (b->init && b->init(&host, &cfg, &backend_state) != CNB_OK) {
        fprintf(stderr, "%s: init failed\n", NAIVE_PATH);
        return NULL;
    }
    return backend = b;
}

#define REQUIRE_NAIVE() CU_ASSERT_PTR_NOT_NULL_FATAL(naive())

/* ------------------------------------------------------------------------------------ */
/* Guarded buffers (checkdata.h): SENTINEL_BITS around, poisoned body. */

static float *gbuf_new(size_t n) { return cnb_gbuf_new(n, SENTINEL_BITS); }

static void poison(float *p, size_t n)
{
    if (p)
        cnb_fill_bits(p, n, CNB_POISON_BITS);
}

/* 1 if both guard bands of p are intact; prints the first trampled float otherwise. */
static int gbuf_intact(const float *p, size_t n, const char *ctx, const char *what)
{
    uint32_t found;
    int at = p ? cnb_gbuf_trampled(p, n, SENTINEL_BITS, &found) : 0;
    if (at)
        fprintf(stderr, "%s: %s: write %s the buffer at offset %d (bits 0x%08x)\n", ctx, what,
                at > 0 ? "past the end of" : "before the start of", at, found);
    return at == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Comparison with a report naming op, shape, seed, index, expected and got. */

static int close_enough(double want, double got, double atol, double rtol)
{
    return fabs(want - got) <= atol + rtol * fmax(fabs(want), fabs(got)); /* NaN fails */
}

/* Compare got[i] against want[i] over an array of dims (d0,d1,d2,d3); returns mismatches. */
static int compare(const char *ctx, const char *what, const int dims[4], const float *got,
                   const double *want, double atol, double rtol)
{
    size_t n = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (close_enough(want[i], got[i], atol, rtol))
            continue;
        if (bad++ < MAX_REPORTS) {
            size_t r = i;
            int idx[4];
            for (int k = 3; k >= 0; k--) {
                idx[k] = (int)(r % (size_t)dims[k]);
                r /= (size_t)dims[k];
            }
            fprintf(stderr, "%s: %s[%d,%d,%d,%d] (flat %zu): expected %.7g, got %.7g\n", ctx,
                    what, idx[0], idx[1], idx[2], idx[3], i, want[i], (double)got[i]);
        }
    }
    if (bad > MAX_REPORTS)
        fprintf(stderr, "%s: %s: %d mismatches in all\n", ctx, what, bad);
    return bad;
}

/* ------------------------------------------------------------------------------------ */
/* Descriptors. Output sizes are computed here from the formula, independently of the
 * backend. */


static cnb_op_desc window_desc(cnb_op op, int n, int c, int h, int w, int k, int kh, int kw,
                               int sh, int sw, int ph, int pw)
{
    cnb_op_desc d = {.op = op, .batch = n, .src = {c, h, w}};
    d.dst = (cnb_shape){op == CNB_OP_CONV ? k : c, cnb_out_len(h, kh, sh, ph),
                        cnb_out_len(w, kw, sw, pw)};
    if (op == CNB_OP_CONV) {
        d.u.conv.kh = kh;
        d.u.conv.kw = kw;
        d.u.conv.sh = sh;
        d.u.conv.sw = sw;
        d.u.conv.ph = ph;
        d.u.conv.pw = pw;
    } else {
        d.u.pool.kh = kh;
        d.u.pool.kw = kw;
        d.u.pool.sh = sh;
        d.u.pool.sw = sw;
        d.u.pool.ph = ph;
        d.u.pool.pw = pw;
    }
    return d;
}

static cnb_op_desc conv_desc(int n, int c, int h, int w, int k, int kh, int kw, int sh,
                             int sw, int ph, int pw)
{
    return window_desc(CNB_OP_CONV, n, c, h, w, k, kh, kw, sh, sw, ph, pw);
}

static cnb_op_desc pool_desc(cnb_op op, int n, int c, int h, int w, int kh, int kw, int sh,
                             int sw, int ph, int pw)
{
    return window_desc(op, n, c, h, w, 0, kh, kw, sh, sw, ph, pw);
}

static cnb_op_desc ip_desc(int n, int c, int h, int w, int k)
{
    return (cnb_op_desc){.op = CNB_OP_INNER_PRODUCT, .batch = n, .src = {c, h, w},
                         .dst = {k, 1, 1}};
}

static cnb_op_desc same_desc(cnb_op op, int n, int c, int h, int w)
{
    return (cnb_op_desc){.op = op, .batch = n, .src = {c, h, w}, .dst = {c, h, w}};
}

static cnb_op_desc lrn_desc(int n, int c, int h, int w, int size, float alpha, float beta,
                            float k)
{
    cnb_op_desc d = same_desc(CNB_OP_LRN, n, c, h, w);
    d.u.lrn.size = size;
    d.u.lrn.alpha = alpha;
    d.u.lrn.beta = beta;
    d.u.lrn.k = k;
    return d;
}


/* "conv N2 3x9x11 -> 4x5x6 k3x5 s2x2 p1x2 (CNB_TEST_SEED=20240611)" */
static void desc_str(char *buf, size_t len, const cnb_op_desc *d)
{
    int n = snprintf(buf, len, "%s N%d %dx%dx%d -> %dx%dx%d", cnb_op_name(d->op), d->batch,
                     d->src.c, d->src.h, d->src.w, d->dst.c, d->dst.h, d->dst.w);
    if (d->op == CNB_OP_CONV || d->op == CNB_OP_POOL_MAX || d->op == CNB_OP_POOL_AVG) {
        /* conv and pool share the layout of u */
        n += snprintf(buf + n, len - n, " k%dx%d s%dx%d p%dx%d", d->u.conv.kh, d->u.conv.kw,
                      d->u.conv.sh, d->u.conv.sw, d->u.conv.ph, d->u.conv.pw);
    } else if (d->op == CNB_OP_LRN) {
        n += snprintf(buf + n, len - n, " size %d alpha %g beta %g k %g", d->u.lrn.size,
                      (double)d->u.lrn.alpha, (double)d->u.lrn.beta, (double)d->u.lrn.k);
    }
    snprintf(buf + n, len - n, " (CNB_TEST_SEED=%llu)", (unsigned long long)cnb_check_seed());
}

/* ------------------------------------------------------------------------------------ */
/* A problem: one descriptor, its kernel and guarded buffers for every argument. */

typedef struct problem {
    cnb_op_desc d;
    char ctx[200];         /* desc_str(), prefixes every message          */
    cnb_kernel *k;
    int src_dims[4], dst_dims[4], w_dims[4], b_dims[4];
    size_t n_src, n_dst, n_w, n_b;
    float *src, *dst;      /* (N,C,H,W) and (N,K,OH,OW)                   */
    float *w, *b;          /* weights and bias, NULL for ops without them */
    float *R;              /* diff_dst                                    */
    float *dsrc, *dw, *db; /* backward outputs                            */
    int32_t *labels;       /* softmax_xent: (N)                           */
    float *loss;           /* softmax_xent: (1)                           */
} problem;

static size_t dims_count(const int d[4]) { return (size_t)d[0] * d[1] * d[2] * d[3]; }

/* Allocate everything and create the kernel; CU failure and 0 if creation fails. */
static int problem_init(problem *p, cnb_op_desc d)
{
    memset(p, 0, sizeof *p);
    p->d = d;
    desc_str(p->ctx, sizeof p->ctx, &d);
    const int N = d.batch, D = (int)cnb_shape_size(d.src), K = d.dst.c;
    memcpy(p->src_dims, (int[4]){N, d.src.c, d.src.h, d.src.w}, sizeof p->src_dims);
    memcpy(p->dst_dims, (int[4]){N, d.dst.c, d.dst.h, d.dst.w}, sizeof p->dst_dims);
    memcpy(p->w_dims, (int[4]){0, 1, 1, 1}, sizeof p->w_dims);
    memcpy(p->b_dims, (int[4]){0, 1, 1, 1}, sizeof p->b_dims);
    if (d.op == CNB_OP_CONV)
        memcpy(p->w_dims, (int[4]){K, d.src.c, d.u.conv.kh, d.u.conv.kw}, sizeof p->w_dims);
    if (d.op == CNB_OP_INNER_PRODUCT)
        memcpy(p->w_dims, (int[4]){K, D, 1, 1}, sizeof p->w_dims);
    if (d.op == CNB_OP_CONV || d.op == CNB_OP_INNER_PRODUCT)
        p->b_dims[0] = K;
    p->n_src = dims_count(p->src_dims);
    p->n_dst = dims_count(p->dst_dims);
    p->n_w = dims_count(p->w_dims);
    p->n_b = dims_count(p->b_dims);
    p->src = gbuf_new(p->n_src);
    p->dst = gbuf_new(p->n_dst);
    p->w = gbuf_new(p->n_w);
    p->b = gbuf_new(p->n_b);
    p->R = gbuf_new(p->n_dst);
    p->dsrc = gbuf_new(p->n_src);
    p->dw = gbuf_new(p->n_w);
    p->db = gbuf_new(p->n_b);
    if (d.op == CNB_OP_SOFTMAX_XENT) {
        p->labels = calloc((size_t)N, sizeof *p->labels);
        p->loss = gbuf_new(1);
    }
    int rc = naive()->kernel_create(backend_state, &p->d, &p->k);
    if (rc != CNB_OK || !p->k) {
        fprintf(stderr, "%s: kernel_create returned %d\n", p->ctx, rc);
        CU_FAIL("kernel_create refused a valid descriptor");
        return 0;
    }
    return 1;
}

static void problem_free(problem *p)
{
    if (p->k)
        p->k->destroy(p->k);
    float *bufs[] = {p->src, p->dst, p->w, p->b, p->R, p->dsrc, p->dw, p->db, p->loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cnb_gbuf_free(bufs[i]);
    free(p->labels);
}

static cnb_args problem_args(const problem *p)
{
    return (cnb_args){.src = p->src, .dst = p->dst, .weights = p->w, .bias = p->b,
                      .diff_dst = p->R, .diff_src = p->dsrc, .diff_weights = p->dw,
                      .diff_bias = p->db, .labels = p->labels, .loss = p->loss};
}

static int forward(problem *p)
{
    cnb_args a = problem_args(p);
    int rc = p->k->forward(p->k, &a);
    if (rc != CNB_OK)
        fprintf(stderr, "%s: forward returned %d\n", p->ctx, rc);
    return rc;
}

/* Poison the diff outputs, then run backward. */
static int backward(problem *p)
{
    poison(p->dsrc, p->n_src);
    poison(p->dw, p->n_w);
    poison(p->db, p->n_b);
    cnb_args a = problem_args(p);
    int rc = p->k->backward(p->k, &a);
    if (rc != CNB_OK)
        fprintf(stderr, "%s: backward returned %d\n", p->ctx, rc);
    return rc;
}

/* Every output's guard bands intact (CU assertion). */
static void check_guards(const problem *p)
{
    int ok = gbuf_intact(p->dst, p->n_dst, p->ctx, "dst") &
             gbuf_intact(p->dsrc, p->n_src, p->ctx, "diff_src") &
             gbuf_intact(p->dw, p->n_w, p->ctx, "diff_weights") &
             gbuf_intact(p->db, p->n_b, p->ctx, "diff_bias") &
             gbuf_intact(p->loss, p->loss ? 1 : 0, p->ctx, "loss");
    CU_ASSERT(ok);
}

/* Fill the inputs for a gradient check: values suited to the op, R in [-1, 1]. */
static void problem_fill(problem *p)
{
    switch (p->d.op) {
    case CNB_OP_POOL_MAX:
        cnb_fill_distinct(p->src, p->n_src, 0.05f);
        break;
    case CNB_OP_RELU:
        cnb_fill_away_from_zero(p->src, p->n_src);
        break;
    case CNB_OP_SIGMOID:
    case CNB_OP_LRN:
    case CNB_OP_SOFTMAX_XENT:
        cnb_fill_uniform(p->src, p->n_src, -2.0f, 2.0f);
        break;
    default:
        cnb_fill_uniform(p->src, p->n_src, -1.0f, 1.0f);
    }
    cnb_fill_uniform(p->w, p->n_w, -0.5f, 0.5f);
    cnb_fill_uniform(p->b, p->n_b, -0.5f, 0.5f);
    cnb_fill_uniform(p->R, p->n_dst, -1.0f, 1.0f);
    if (p->labels) {
        int D = (int)cnb_shape_size(p->d.src);
        for (int n = 0; n < p->d.batch; n++)
            p->labels[n] = (int32_t)(cnb_check_u32() % (uint32_t)D);
        p->labels[p->d.batch / 2] = -1; /* one padding row */
    }
}

/* ------------------------------------------------------------------------------------ */
/* Reference forward, from the definitions, in double. */

static void ref_forward(const problem *p, double *out)
{
    const cnb_op_desc *d = &p->d;
    const int N = d->batch, C = d->src.c, H = d->src.h, W = d->src.w;
    const int K = d->dst.c, OH = d->dst.h, OW = d->dst.w, D = C * H * W;
    const float *x = p->src;
    switch (d->op) {
    case CNB_OP_CONV:
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++)
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) {
                        double s = p->b[k];
                        for (int c = 0; c < C; c++)
                            for (int i = 0; i < d->u.conv.kh; i++)
                                for (int j = 0; j < d->u.conv.kw; j++) {
                                    int ih = oh * d->u.conv.sh - d->u.conv.ph + i;
                                    int iw = ow * d->u.conv.sw - d->u.conv.pw + j;
                                    if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                        continue;
                                    s += (double)p->w[((k * C + c) * d->u.conv.kh + i) *
                                                      d->u.conv.kw + j] *
                                         x[((n * C + c) * H + ih) * W + iw];
                                }
                        out[((n * K + k) * OH + oh) * OW + ow] = s;
                    }
        break;
    case CNB_OP_INNER_PRODUCT:
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                double s = p->b[k];
                for (int i = 0; i < D; i++)
                    s += (double)p->w[k * D + i] * x[n * D + i];
                out[n * K + k] = s;
            }
        break;
    case CNB_OP_POOL_MAX:
    case CNB_OP_POOL_AVG:
        for (int nc = 0; nc < N * C; nc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double mx = -INFINITY, sum = 0.0;
                    for (int i = 0; i < d->u.pool.kh; i++)
                        for (int j = 0; j < d->u.pool.kw; j++) {
                            int ih = oh * d->u.pool.sh - d->u.pool.ph + i;
                            int iw = ow * d->u.pool.sw - d->u.pool.pw + j;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                continue;
                            double v = x[(nc * H + ih) * W + iw];
                            mx = fmax(mx, v);
                            sum += v;
                        }
                    out[(nc * OH + oh) * OW + ow] =
                        d->op == CNB_OP_POOL_MAX ? mx
                                                 : sum / (d->u.pool.kh * d->u.pool.kw);
                }
        break;
    case CNB_OP_SIGMOID:
        for (int i = 0; i < N * D; i++)
            out[i] = 1.0 / (1.0 + exp(-(double)x[i]));
        break;
    case CNB_OP_RELU:
        for (int i = 0; i < N * D; i++)
            out[i] = x[i] > 0 ? x[i] : 0.0;
        break;
    case CNB_OP_LRN: {
        /* b_c = a_c (k + alpha sum_{c'=max(0,c-size/2)}^{min(C-1,c+size/2)} a_c'^2)^-beta */
        const int half = d->u.lrn.size / 2, HW = H * W;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < HW; i++) {
                    double s = 0.0;
                    for (int c2 = c - half > 0 ? c - half : 0; c2 <= c + half && c2 < C; c2++) {
                        double a = x[(n * C + c2) * HW + i];
                        s += a * a;
                    }
                    s = (double)d->u.lrn.k + (double)d->u.lrn.alpha * s;
                    out[(n * C + c) * HW + i] =
                        x[(n * C + c) * HW + i] * pow(s, -(double)d->u.lrn.beta);
                }
        break;
    }
    case CNB_OP_SOFTMAX_XENT:
        for (int n = 0; n < N; n++) {
            double mx = -INFINITY, sum = 0.0;
            for (int i = 0; i < D; i++)
                mx = fmax(mx, x[n * D + i]);
            for (int i = 0; i < D; i++)
                sum += exp(x[n * D + i] - mx);
            for (int i = 0; i < D; i++)
                out[n * D + i] = exp(x[n * D + i] - mx) / sum;
        }
        break;
    default:
        CU_FAIL("no reference for this op");
    }
}

/* Forward on seeded random inputs against ref_forward(). */
static void check_forward_against_ref(cnb_op_desc d, uint64_t salt)
{
    problem p;
    cnb_check_rng_seed(salt);
    if (problem_init(&p, d)) {
        problem_fill(&p);
        CU_ASSERT(forward(&p) == CNB_OK);
        double *want = malloc(p.n_dst * sizeof *want);
        ref_forward(&p, want);
        CU_ASSERT(compare(p.ctx, "dst", p.dst_dims, p.dst, want, 1e-5, 1e-5) == 0);
        check_guards(&p);
        free(want);
    }
    problem_free(&p);
}

/* ------------------------------------------------------------------------------------ */
/* Gradient check by central differences. */

/* L = sum(dst * R) in double; softmax_xent: its loss (its backward ignores diff_dst). */
static double objective(problem *p)
{
    if (forward(p) != CNB_OK)
        return NAN;
    if (p->d.op == CNB_OP_SOFTMAX_XENT)
        return *p->loss;
    double L = 0.0;
    for (size_t i = 0; i < p->n_dst; i++)
        L += (double)p->dst[i] * p->R[i];
    return L;
}

/* Numerical dL/dx for every element of x (an input of p), compared with `analytic`. */
static void check_grad(problem *p, float *x, const int dims[4], const float *analytic,
                       const char *what, float eps, double rtol)
{
    size_t n = dims_count(dims);
    double *num = malloc(n * sizeof *num);
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        float xp = x[i];
        double lp = objective(p);
        x[i] = x0 - eps;
        float xm = x[i];
        double lm = objective(p);
        x[i] = x0;
        num[i] = (lp - lm) / ((double)xp - xm); /* the step as actually taken */
    }
    CU_ASSERT(compare(p->ctx, what, dims, analytic, num, 1e-3, rtol) == 0);
    free(num);
}

/* The whole check of one descriptor: forward, backward, differences, guards, and for
 * ops with weights a second backward without diff_src that must give the same dW, db. */
static void gradcheck(cnb_op_desc d, uint64_t salt)
{
    problem p;
    cnb_check_rng_seed(salt);
    if (!problem_init(&p, d)) {
        problem_free(&p);
        return;
    }
    problem_fill(&p);
    /* Conv, inner product and average pool are linear in each input: a larger step has
     * no truncation error and less rounding noise, so the tolerance can be tighter. The
     * others need a step below the max-pool gap (0.05) and small against the curvature. */
    const int linear = d.op == CNB_OP_CONV || d.op == CNB_OP_INNER_PRODUCT ||
                       d.op == CNB_OP_POOL_AVG;
    const float eps = linear ? 0.1f : 1e-2f;
    const double rtol = linear ? 1e-3 : 1e-2;

    CU_ASSERT_FATAL(forward(&p) == CNB_OK);
    CU_ASSERT_FATAL(backward(&p) == CNB_OK);
    check_guards(&p);

    float *ana_src = malloc(p.n_src * sizeof(float));
    memcpy(ana_src, p.dsrc, p.n_src * sizeof(float));
    check_grad(&p, p.src, p.src_dims, ana_src, "diff_src", eps, rtol);
    if (p.w) {
        float *ana_w = malloc(p.n_w * sizeof(float)), *ana_b = malloc(p.n_b * sizeof(float));
        memcpy(ana_w, p.dw, p.n_w * sizeof(float));
        memcpy(ana_b, p.db, p.n_b * sizeof(float));
        check_grad(&p, p.w, p.w_dims, ana_w, "diff_weights", eps, rtol);
        check_grad(&p, p.b, p.b_dims, ana_b, "diff_bias", eps, rtol);

        /* first layer: no diff_src wanted */
        CU_ASSERT(forward(&p) == CNB_OK);
        float *keep = p.dsrc;
        p.dsrc = NULL;
        CU_ASSERT(backward(&p) == CNB_OK);
        p.dsrc = keep;
        int same = memcmp(ana_w, p.dw, p.n_w * sizeof(float)) == 0 &&
                   memcmp(ana_b, p.db, p.n_b * sizeof(float)) == 0;
        if (!same)
            fprintf(stderr, "%s: diff_weights/diff_bias change when diff_src is NULL\n",
                    p.ctx);
        CU_ASSERT(same);
        free(ana_w);
        free(ana_b);
    }
    check_guards(&p);
    free(ana_src);
    problem_free(&p);
}

/* ------------------------------------------------------------------------------------ */
/* Tests: the plugin itself. */

static void test_entry(void)
{
    REQUIRE_NAIVE();
    const cnb_backend_desc *b = naive();
    CU_ASSERT_STRING_EQUAL(b->hdr.name, "naive");
    CU_ASSERT_EQUAL(b->hdr.abi_minor, CNB_BACKEND_ABI_MINOR);
    CU_ASSERT_EQUAL(b->hdr.struct_size, sizeof(cnb_backend_desc));
    CU_ASSERT_PTR_NOT_NULL(b->hdr.version);
    CU_ASSERT_PTR_NOT_NULL(b->hdr.description);
    CU_ASSERT_EQUAL(b->ops, CNB_OPS_ALL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->kernel_create);
    CU_ASSERT(b->info && b->info(backend_state) && *b->info(backend_state));

    void *dl = dlopen(NAIVE_PATH, RTLD_NOW | RTLD_LOCAL); /* same handle, refcounted */
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    void *sym = dlsym(dl, CNB_PLUGIN_ENTRY_SYMBOL);
    cnb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    CU_ASSERT_PTR_EQUAL(entry(0), &b->hdr);
    CU_ASSERT_PTR_NULL(entry(1));
    dlclose(dl);
}

/* Descriptors contradicting the formula or the op's rules are refused, with a message. */
static void test_validation(void)
{
    REQUIRE_NAIVE();
    cnb_op_desc bad[12];
    int nbad = 0;
    cnb_op_desc d = conv_desc(2, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2); /* 28x28 */
    d.dst.h = 27;
    bad[nbad++] = d;
    d = conv_desc(2, 3, 9, 11, 4, 3, 5, 2, 2, 1, 2);
    d.dst.w += 1;
    bad[nbad++] = d;
    d = conv_desc(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0);
    d.u.conv.sh = 0;
    bad[nbad++] = d;
    d = conv_desc(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0);
    d.u.conv.kh = 5; /* does not fit: 4 - 5 + 0 < 0 */
    bad[nbad++] = d;
    d = pool_desc(CNB_OP_POOL_MAX, 1, 3, 5, 5, 3, 3, 2, 2, 0, 0); /* 2x2 */
    d.dst.h = 3;
    bad[nbad++] = d;
    d = pool_desc(CNB_OP_POOL_AVG, 1, 3, 5, 5, 3, 3, 2, 2, 0, 0);
    d.dst.c = 4;
    bad[nbad++] = d;
    bad[nbad++] = pool_desc(CNB_OP_POOL_MAX, 1, 1, 5, 5, 2, 2, 1, 1, 2, 0); /* P >= K */
    d = ip_desc(2, 3, 4, 4, 10);
    d.dst.h = 2;
    bad[nbad++] = d;
    d = same_desc(CNB_OP_RELU, 2, 3, 4, 4);
    d.dst.w = 5;
    bad[nbad++] = d;
    bad[nbad++] = lrn_desc(1, 5, 2, 2, 0, 1e-4f, 0.75f, 2.0f);    /* size 0 */
    bad[nbad++] = lrn_desc(1, 5, 2, 2, 5, 1e-4f, 0.75f, 0.0f);    /* k 0   */
    bad[nbad++] = same_desc(CNB_OP_SIGMOID, 0, 3, 4, 4);          /* N 0   */

    log_quiet = 1;
    for (int i = 0; i < nbad; i++) {
        char ctx[200];
        desc_str(ctx, sizeof ctx, &bad[i]);
        cnb_kernel dummy, *k = &dummy; /* must be reset to NULL */
        int before = log_count;
        int rc = naive()->kernel_create(backend_state, &bad[i], &k);
        if (rc != CNB_EINVAL || k || log_count == before)
            fprintf(stderr, "bad descriptor %d (%s): rc %d (want %d), kernel %p, %d "
                    "messages\n", i, ctx, rc, CNB_EINVAL, (void *)k, log_count - before);
        CU_ASSERT_EQUAL(rc, CNB_EINVAL);
        CU_ASSERT_PTR_NULL(k);
        CU_ASSERT(log_count > before);
        if (rc == CNB_OK && k)
            k->destroy(k);
    }
    log_quiet = 0;

    /* and the same shapes made consistent are accepted */
    cnb_op_desc good[] = {conv_desc(2, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),
                          pool_desc(CNB_OP_POOL_MAX, 1, 3, 5, 5, 3, 3, 2, 2, 0, 0),
                          ip_desc(2, 3, 4, 4, 10), same_desc(CNB_OP_RELU, 2, 3, 4, 4),
                          lrn_desc(1, 5, 2, 2, 5, 1e-4f, 0.75f, 2.0f)};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cnb_kernel *k = NULL;
        CU_ASSERT_EQUAL(naive()->kernel_create(backend_state, &good[i], &k), CNB_OK);
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k)
            k->destroy(k);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Tests: forward by hand. */

static const float x4x4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* The 5x5 input of the pool cases. */
static const float x5x5[25] = {1, 5, 2,  8,  3, 4, 9,  6, 0, 7, 2, 3, 11,
                               4, 1, 6, 10, 5, 12, 2, 0, 7, 3, 9, 13};

static void test_conv_hand(void)
{
    /* 1x4x4 -> 2x2x2, kernel 3x3, stride 2, padding 1.
     * Output (oh,ow) reads rows 2*oh-1..2*oh+1 and columns 2*ow-1..2*ow+1 of the input
     * 1..16 (row-major); row or column -1 is padding.
     *   k0: all ones, bias 0.5: windows sum to 1+2+5+6=14, 2+3+4+6+7+8=30,
     *       5+6+9+10+13+14=57, 6+7+8+10+11+12+14+15+16=99.
     *   k1: [1 0 -1; 2 0 -2; 1 0 -1], bias -1:
     *       (0,0) = -2*2 - 6 = -10,          (0,1) = 2*2 - 2*4 + 6 - 8 = -6,
     *       (1,0) = -6 - 2*10 - 14 = -40,   (1,1) = (6-8) + 2*(10-12) + (14-16) = -8. */
    static const float w[18] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, -1, 2, 0, -2, 1, 0, -1};
    static const float b[2] = {0.5f, -1.0f};
    static const double want[8] = {14.5, 30.5, 57.5, 99.5, -11, -7, -41, -9};
    REQUIRE_NAIVE();
    problem p;
    cnb_check_rng_seed(0);
    if (problem_init(&p, conv_desc(1, 1, 4, 4, 2, 3, 3, 2, 2, 1, 1))) {
        CU_ASSERT_EQUAL(p.n_dst, 8);
        memcpy(p.src, x4x4, sizeof x4x4);
        memcpy(p.w, w, sizeof w);
        memcpy(p.b, b, sizeof b);
        CU_ASSERT(forward(&p) == CNB_OK);
        CU_ASSERT(compare(p.ctx, "dst", p.dst_dims, p.dst, want, 1e-6, 0) == 0);
        check_guards(&p);
    }
    problem_free(&p);
}

/* Run one pool on x5x5 (or its shift) and compare dst; optionally backward with dy. */
static void pool_case(cnb_op op, int pad, float shift, const double *want, const float *dy,
                      const double *want_dx)
{
    problem p;
    cnb_check_rng_seed(0);
    if (problem_init(&p, pool_desc(op, 1, 1, 5, 5, 3, 3, 2, 2, pad, pad))) {
        for (int i = 0; i < 25; i++)
            p.src[i] = x5x5[i] + shift;
        CU_ASSERT(forward(&p) == CNB_OK);
        CU_ASSERT(compare(p.ctx, "dst", p.dst_dims, p.dst, want, 1e-6, 1e-6) == 0);
        if (dy) {
            memcpy(p.R, dy, p.n_dst * sizeof(float));
            CU_ASSERT(backward(&p) == CNB_OK);
            CU_ASSERT(compare(p.ctx, "diff_src", p.src_dims, p.dsrc, want_dx, 1e-6, 1e-6) ==
                      0);
        }
        check_guards(&p);
    }
    problem_free(&p);
}

static void test_pool_hand(void)
{
    REQUIRE_NAIVE();
    /* 3x3 stride 2 on the 5x5: windows at rows/cols 0..2 and 2..4 all share (2,2) = 11. */
    static const double max0[4] = {11, 11, 11, 13};
    static const double avg0[4] = {43 / 9.0, 42 / 9.0, 47 / 9.0, 60 / 9.0};
    /* backward of max: dy 1,2,3,4 -> (2,2) gets 1+2+3, (4,4) gets 4 */
    static const float dy4[4] = {1, 2, 3, 4};
    double dx_max[25] = {0};
    dx_max[2 * 5 + 2] = 6;
    dx_max[4 * 5 + 4] = 4;
    /* backward of avg: each input gets the sum of dy/9 over the windows covering it */
    double dx_avg[25];
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++) {
            double g = 0;
            for (int o = 0; o < 4; o++)
                if (r >= 2 * (o / 2) && r <= 2 * (o / 2) + 2 && c >= 2 * (o % 2) &&
                    c <= 2 * (o % 2) + 2)
                    g += dy4[o] / 9.0;
            dx_avg[r * 5 + c] = g;
        }
    pool_case(CNB_OP_POOL_MAX, 0, 0, max0, dy4, dx_max);
    pool_case(CNB_OP_POOL_AVG, 0, 0, avg0, dy4, dx_avg);

    /* padding 1 -> 3x3 output; average divides by 9 with the padding included */
    static const double avg1[9] = {19 / 9.0, 30 / 9.0, 18 / 9.0, 34 / 9.0, 60 / 9.0,
                                   26 / 9.0, 23 / 9.0, 46 / 9.0, 36 / 9.0};
    pool_case(CNB_OP_POOL_AVG, 1, 0, avg1, NULL, NULL);
    /* max with padding on an all-negative input (x - 20): the zero padding never wins */
    static const double max1[9] = {-11, -11, -12, -10, -8, -8, -10, -8, -7};
    pool_case(CNB_OP_POOL_MAX, 1, -20, max1, NULL, NULL);
}

/* Ties go to the first element of the window in row-major order. */
static void test_pool_max_ties(void)
{
    REQUIRE_NAIVE();
    problem p;
    cnb_check_rng_seed(0);
    if (problem_init(&p, pool_desc(CNB_OP_POOL_MAX, 1, 1, 5, 5, 3, 3, 2, 2, 1, 1))) {
        for (int i = 0; i < 25; i++)
            p.src[i] = 1.0f;
        for (int i = 0; i < 9; i++)
            p.R[i] = 1.0f;
        CU_ASSERT(forward(&p) == CNB_OK);
        CU_ASSERT(backward(&p) == CNB_OK);
        /* windows start at rows/cols -1, 1, 3: first valid rows/cols 0, 1, 3 */
        double want[25] = {0};
        static const int first[3] = {0, 1, 3};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                want[first[i] * 5 + first[j]] = 1;
        CU_ASSERT(compare(p.ctx, "diff_src", p.src_dims, p.dsrc, want, 0, 0) == 0);
        check_guards(&p);
    }
    problem_free(&p);
}

/* LRN forward against the formula evaluated here in double, including even sizes and
 * windows wider than C. */
static void test_lrn_formula(void)
{
    REQUIRE_NAIVE();
    check_forward_against_ref(lrn_desc(2, 7, 3, 4, 5, 0.5f, 0.75f, 2.0f), 101);
    check_forward_against_ref(lrn_desc(1, 7, 3, 3, 4, 1e-1f, 0.75f, 1.0f), 102);
    check_forward_against_ref(lrn_desc(2, 3, 2, 5, 7, 1e-4f, 0.75f, 2.0f), 103);
    check_forward_against_ref(lrn_desc(1, 4, 1, 1, 1, 2.0f, 0.5f, 1.0f), 104);
}

/* Every other op's forward against its definition on random multi-channel inputs. */
static void test_forward_reference(void)
{
    REQUIRE_NAIVE();
    check_forward_against_ref(conv_desc(2, 3, 9, 11, 4, 3, 5, 2, 2, 1, 2), 201);
    check_forward_against_ref(conv_desc(1, 3, 19, 19, 2, 11, 11, 4, 4, 0, 0), 202);
    check_forward_against_ref(conv_desc(2, 2, 7, 6, 3, 1, 2, 2, 3, 1, 0), 203);
    check_forward_against_ref(conv_desc(2, 1, 12, 12, 6, 5, 5, 1, 1, 2, 2), 204);
    check_forward_against_ref(ip_desc(3, 2, 3, 5, 7), 205);
    check_forward_against_ref(pool_desc(CNB_OP_POOL_MAX, 2, 3, 7, 9, 3, 3, 2, 2, 0, 0), 206);
    check_forward_against_ref(pool_desc(CNB_OP_POOL_MAX, 2, 2, 8, 7, 3, 2, 2, 1, 1, 1), 207);
    check_forward_against_ref(pool_desc(CNB_OP_POOL_AVG, 2, 3, 7, 9, 3, 3, 2, 2, 1, 1), 208);
    check_forward_against_ref(pool_desc(CNB_OP_POOL_AVG, 1, 2, 5, 5, 2, 2, 2, 2, 0, 0), 209);
    check_forward_against_ref(same_desc(CNB_OP_SIGMOID, 2, 3, 5, 7), 210);
    check_forward_against_ref(same_desc(CNB_OP_RELU, 2, 3, 5, 7), 211);
    check_forward_against_ref(same_desc(CNB_OP_SOFTMAX_XENT, 3, 2, 2, 3), 212);
}

static void test_softmax_hand(void)
{
    REQUIRE_NAIVE();
    problem p;
    cnb_check_rng_seed(0);
    if (problem_init(&p, same_desc(CNB_OP_SOFTMAX_XENT, 3, 4, 1, 1))) {
        /* row 0: logits log(1..4) -> p = 0.1 0.2 0.3 0.4, label 3
         * row 1: all 1000 (overflows without the max shift) -> p = 0.25, label 0
         * row 2: padding (label -1), arbitrary logits: ignored by loss and gradient
         * loss = (-log 0.4 - log 0.25) / 2 */
        const float logits[12] = {0.0f, logf(2), logf(3), logf(4), 1000, 1000, 1000, 1000,
                                  5, -3, 2, 0};
        const int32_t labels[3] = {3, 0, -1};
        memcpy(p.src, logits, sizeof logits);
        memcpy(p.labels, labels, sizeof labels);
        CU_ASSERT(forward(&p) == CNB_OK);
        double e2[4] = {exp(5.0), exp(-3.0), exp(2.0), exp(0.0)};
        double s2 = e2[0] + e2[1] + e2[2] + e2[3];
        const double want_p[12] = {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25,
                                   e2[0] / s2, e2[1] / s2, e2[2] / s2, e2[3] / s2};
        CU_ASSERT(compare(p.ctx, "dst", p.dst_dims, p.dst, want_p, 1e-6, 1e-6) == 0);
        const int one[4] = {1, 1, 1, 1};
        const double want_loss = (-log(0.4) - log(0.25)) / 2; /* 1.1512925 */
        CU_ASSERT(compare(p.ctx, "loss", one, p.loss, &want_loss, 1e-6, 1e-6) == 0);

        /* backward: (p - onehot) / 2 on real rows, 0 on the padding row; R is ignored */
        cnb_fill_uniform(p.R, p.n_dst, -1, 1);
        CU_ASSERT(backward(&p) == CNB_OK);
        const double want_dx[12] = {0.05, 0.1, 0.15, -0.3, -0.375, 0.125, 0.125, 0.125,
                                    0, 0, 0, 0};
        CU_ASSERT(compare(p.ctx, "diff_src", p.src_dims, p.dsrc, want_dx, 1e-6, 1e-6) == 0);
        check_guards(&p);

        /* all rows padding: loss 0, gradient 0 */
        const int32_t none[3] = {-1, -1, -1};
        memcpy(p.labels, none, sizeof none);
        CU_ASSERT(forward(&p) == CNB_OK);
        CU_ASSERT(*p.loss == 0.0f);
        CU_ASSERT(backward(&p) == CNB_OK);
        const double zeros[12] = {0};
        CU_ASSERT(compare(p.ctx, "diff_src", p.src_dims, p.dsrc, zeros, 0, 0) == 0);
        check_guards(&p);
    }
    problem_free(&p);

    /* p[label] underflows to 0: the loss stays finite (log(0) guarded) */
    if (problem_init(&p, same_desc(CNB_OP_SOFTMAX_XENT, 1, 2, 1, 1))) {
        p.src[0] = 0.0f;
        p.src[1] = -1000.0f;
        p.labels[0] = 1;
        CU_ASSERT(forward(&p) == CNB_OK);
        if (!isfinite(*p.loss) || *p.loss < 50.0f)
            fprintf(stderr, "%s: loss for p[label] = 0: expected finite and large, got %g\n",
                    p.ctx, (double)*p.loss);
        CU_ASSERT(isfinite(*p.loss) && *p.loss >= 50.0f);
        check_guards(&p);
    }
    problem_free(&p);

    /* random rows sum to 1 */
    cnb_check_rng_seed(301);
    if (problem_init(&p, same_desc(CNB_OP_SOFTMAX_XENT, 5, 2, 2, 3))) {
        problem_fill(&p);
        for (size_t i = 0; i < p.n_src; i++)
            p.src[i] *= 10.0f;
        CU_ASSERT(forward(&p) == CNB_OK);
        for (int n = 0; n < 5; n++) {
            double sum = 0;
            for (int i = 0; i < 12; i++)
                sum += p.dst[n * 12 + i];
            if (fabs(sum - 1.0) > 1e-5)
                fprintf(stderr, "%s: row %d: probabilities sum to %.9g, expected 1\n", p.ctx,
                        n, sum);
            CU_ASSERT(fabs(sum - 1.0) <= 1e-5);
        }
        check_guards(&p);
    }
    problem_free(&p);
}

/* ------------------------------------------------------------------------------------ */
/* Tests: gradients. */

static void test_grad_conv(void)
{
    REQUIRE_NAIVE();
    gradcheck(conv_desc(2, 3, 9, 11, 4, 3, 5, 2, 2, 1, 2), 401);  /* non-square, s2, pad  */
    gradcheck(conv_desc(1, 3, 19, 19, 2, 11, 11, 4, 4, 0, 0), 402); /* AlexNet-like s4   */
    gradcheck(conv_desc(1, 2, 11, 13, 3, 5, 3, 4, 2, 2, 1), 403);  /* s4x2, odd sizes     */
    gradcheck(conv_desc(2, 1, 7, 7, 2, 3, 3, 1, 1, 1, 1), 404);    /* same padding        */
    gradcheck(conv_desc(2, 2, 6, 5, 3, 1, 1, 2, 2, 0, 0), 405);    /* 1x1 s2 skips inputs */
    gradcheck(conv_desc(1, 2, 5, 5, 2, 3, 3, 1, 1, 3, 3), 406);    /* padding >= kernel   */
}

static void test_grad_inner_product(void)
{
    REQUIRE_NAIVE();
    gradcheck(ip_desc(3, 2, 3, 5, 7), 501);
    gradcheck(ip_desc(4, 10, 1, 1, 4), 502);
    gradcheck(ip_desc(1, 1, 1, 1, 1), 503);
}

static void test_grad_pool_max(void)
{
    REQUIRE_NAIVE();
    gradcheck(pool_desc(CNB_OP_POOL_MAX, 2, 3, 7, 9, 3, 3, 2, 2, 0, 0), 601); /* overlap */
    gradcheck(pool_desc(CNB_OP_POOL_MAX, 2, 2, 8, 7, 3, 2, 2, 1, 1, 1), 602); /* pad     */
    gradcheck(pool_desc(CNB_OP_POOL_MAX, 1, 2, 5, 5, 2, 2, 2, 2, 0, 0), 603); /* odd     */
    gradcheck(pool_desc(CNB_OP_POOL_MAX, 1, 1, 13, 13, 3, 3, 4, 4, 0, 0), 604); /* s4    */
}

static void test_grad_pool_avg(void)
{
    REQUIRE_NAIVE();
    gradcheck(pool_desc(CNB_OP_POOL_AVG, 2, 3, 7, 9, 3, 3, 2, 2, 0, 0), 701);
    gradcheck(pool_desc(CNB_OP_POOL_AVG, 2, 2, 8, 7, 3, 2, 2, 1, 1, 1), 702);
    gradcheck(pool_desc(CNB_OP_POOL_AVG, 1, 2, 5, 5, 2, 2, 2, 2, 0, 0), 703);
    gradcheck(pool_desc(CNB_OP_POOL_AVG, 1, 1, 13, 13, 3, 3, 4, 4, 1, 1), 704);
}

static void test_grad_activations(void)
{
    REQUIRE_NAIVE();
    gradcheck(same_desc(CNB_OP_SIGMOID, 2, 3, 5, 7), 801);
    gradcheck(same_desc(CNB_OP_RELU, 2, 3, 5, 7), 802);
}

static void test_grad_lrn(void)
{
    REQUIRE_NAIVE();
    gradcheck(lrn_desc(2, 7, 3, 4, 5, 0.5f, 0.75f, 2.0f), 901);
    gradcheck(lrn_desc(1, 7, 3, 3, 3, 1e-1f, 0.75f, 1.0f), 902);
    gradcheck(lrn_desc(1, 5, 2, 3, 4, 0.3f, 0.6f, 1.5f), 903);  /* even size */
    gradcheck(lrn_desc(2, 3, 2, 5, 7, 0.2f, 0.75f, 2.0f), 904); /* window wider than C */
}

static void test_grad_softmax_xent(void)
{
    REQUIRE_NAIVE();
    gradcheck(same_desc(CNB_OP_SOFTMAX_XENT, 4, 5, 1, 1), 1001);
    gradcheck(same_desc(CNB_OP_SOFTMAX_XENT, 3, 2, 2, 3), 1002);
}

void suite_kernels(void)
{
    static const test_case cases[] = {
        {"entry", test_entry},
        {"validation", test_validation},
        {"conv_hand", test_conv_hand},
        {"pool_hand", test_pool_hand},
        {"pool_max_ties", test_pool_max_ties},
        {"lrn_formula", test_lrn_formula},
        {"forward_reference", test_forward_reference},
        {"softmax_hand", test_softmax_hand},
        {"grad_conv", test_grad_conv},
        {"grad_inner_product", test_grad_inner_product},
        {"grad_pool_max", test_grad_pool_max},
        {"grad_pool_avg", test_grad_pool_avg},
        {"grad_activations", test_grad_activations},
        {"grad_lrn", test_grad_lrn},
        {"grad_softmax_xent", test_grad_softmax_xent},
        {NULL, NULL},
    };
    test_add_suite("kernels", cases);
}
