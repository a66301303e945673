/*
 * openblas.c - the "openblas" backend: convolution and inner product as cblas_sgemm calls
 * of OpenBLAS. Every other op is left to the naive backend (ops has only these two bits
 * and kernel_create answers CNB_ENOTSUP for the rest).
 *
 * Lowering. Convolution goes through im2col, one sample at a time, so that the columns
 * (C*KH*KW, OH*OW) stay in cache between im2col and the GEMM that reads them:
 *     forward      out_n (K, OHOW)  = W (K, CKK) . cols_n (CKK, OHOW)      bias first
 *     diff_weights dW^T (CKK, K)   += cols_n . dout_n^T                    (transposed:
 *                  10-35% faster than dout_n . cols_n^T here), transposed back at the end
 *     diff_src     dcols_n          = W^T . dout_n, which col2im adds up into dsrc_n
 * A 1x1 stride-1 unpadded convolution reads src in place. Grouping several samples into
 * one wider GEMM was measured and dropped: at most 5% better on LeNet's conv2 forward,
 * worse for conv1 and for every backward, and it needs a transposing copy.
 * Inner product is one GEMM per output, split by output columns (rows for diff_weights).
 *
 * Threads. cfg->threads - 1 worker threads (started in init; the pool of ../common/pool.h)
 * and the caller share each call, each thread taking its own share of the items first and
 * then what the others left (pool_job_take_near): conv forward by samples, conv backward
 * by chunks of the batch (pool.h: 8 per thread where the partial sums are small, down to
 * 1 where they are large; their bounds fixed by N), inner product by output blocks. Each
 * thread has its own im2col buffer; each chunk, not each thread, has its own partial dW^T
 * and bias sums, summed over its samples in order and added up in chunk order in a second
 * short pass. So the reduction order is fixed by the data, not by which thread got there
 * first: a step gives the same bits at a given thread count however busy the machine is
 * (when a worker loses its core the caller takes its chunks, and adds them up just the
 * same). Each thread calls OpenBLAS, which is kept single-threaded. Measured on 2 threads
 * against OpenBLAS's own threading of the same GEMMs (which leaves im2col and col2im
 * serial and cannot split LeNet's small GEMMs): about 2x faster on LeNet's layers,
 * 1.03-1.5x on AlexNet's. A batch smaller than the thread count leaves threads idle.
 *
 * Loading. The plugin does not link libopenblas: init() dlopens it, because OpenBLAS
 * picks its CPU kernels ("core") once, when it is loaded, from OPENBLAS_CORETYPE or its
 * own CPUID table, and 0.3.21's table may pick a slow generic core on CPUs newer than it.
 * When OPENBLAS_CORETYPE is unset, cnnbench chooses the core from the CPU flags and sets
 * the variable for the load only; when it is set, it is respected. info() says which core
 * runs and why. OPENBLAS_NUM_THREADS=1 for the load keeps OpenBLAS from starting threads
 * of its own (they spin for 0.1 s after the load, on the cores the workers need). The
 * library stays loaded for the life of the process.
 *
 * Results match naive up to float summation order (GEMM sums in float; bias sums in
 * double, as naive does). Workspaces are allocated in kernel_create; forward and backward
 * allocate nothing of their own and do no I/O. OpenBLAS 0.3.21 does: its SkylakeX
 * small-matrix kernel allocates 2,400 bytes at each call of LeNet-5's conv2 forward
 * (16 x 100 x 150, one a sample; the Haswell kernels allocate nothing).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"
#include "pool.h"

#define WHO "openblas"

/* ------------------------------------------------------------------------------------ */
/* The library, loaded once per process. */

typedef void (*sgemm_fn)(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta,
                         enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha,
                         const float *a, blasint lda, const float *b, blasint ldb, float beta,
                         float *c, blasint ldc);

static struct {
    void *dl;                          /* libopenblas, never closed                  */
    sgemm_fn sgemm;                    /* cblas_sgemm                                */
    void (*set_num_threads)(int);      /* openblas_set_num_threads                   */
    char *(*get_corename)(void);       /* openblas_get_corename                      */
    char *(*get_config)(void);         /* openblas_get_config                        */
    char core_why[200];                /* how the core came to be, for info()       */
} lib;

static const char *const lib_names[] = {"libopenblas.so.0", "libopenblas.so"};

/* The fastest core for these CPU flags, measured with 0.3.21 on a 2-core AVX-512 Zen 5
 * (sgemm 2048^3, GFLOP/s on 1 and 2 threads: SkylakeX 240/452, Cooperlake 236/438,
 * Haswell 125/237, Zen 125/239, Sandybridge 113/209, Core2 50/96, Prescott 45/91, Nehalem
 * 44/86; all correct); NULL when the CPU has neither AVX2 nor AVX-512. */
static const char *core_for_cpu(const char **flags)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
        *flags = "avx512f/bw/dq/vl";
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *flags = "avx2 and fma";
        return "Haswell";
    }
    *flags = "no avx2";
    return NULL;
}

/* 1 for the cores that predate AVX2 (OpenBLAS's fallbacks): 2-5x slower on an AVX2 CPU. */
static int core_is_generic(const char *core)
{
    static const char *const fast[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                       "SapphireRapids"};
    for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++)
        if (strcasecmp(core, fast[i]) == 0)
            return 0;
    return 1;
}

static void *lib_sym(const cnb_host *host, const char *name, int *missing)
{
    void *p = dlsym(lib.dl, name);
    if (!p) {
        host->log(CNB_LOG_ERROR, WHO, "libopenblas has no symbol %s (is it OpenBLAS?)", name);
        *missing = 1;
    }
    return p;
}

/* An environment variable set for the load only, and its previous value. */
typedef struct env_override {
    const char *name;
    int had;       /* it was set before */
    char old[128]; /* to what           */
} env_override;

static void env_set(env_override *e, const char *name, const char *value)
{
    const char *old = getenv(name);
    e->name = name;
    e->had = old != NULL;
    snprintf(e->old, sizeof e->old, "%s", old ? old : "");
    setenv(name, value, 1);
}

static void env_restore(const env_override *e)
{
    if (e->had)
        setenv(e->name, e->old, 1);
    else
        unsetenv(e->name);
}

/* dlopen libopenblas with a sound OPENBLAS_CORETYPE and look up what the kernels call.
 * OPENBLAS_NUM_THREADS=1 for the load keeps OpenBLAS from starting its own threads, which
 * would spin for 0.1 s after loading (and after every threaded call) on the cores the
 * pool's workers need; every sgemm call then runs on the thread that makes it. */
static int lib_load(const cnb_host *host)
{
    if (lib.dl)
        return CNB_OK;
    char env[64] = "";        /* OPENBLAS_CORETYPE as the environment sets it */
    snprintf(env, sizeof env, "%s", getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE")
                                                                 : "");
    const char *flags = "", *want = core_for_cpu(&flags);
    const char *asked = NULL; /* the OPENBLAS_CORETYPE the load will see */
    env_override core_env = {NULL, 0, ""}, threads_env = {NULL, 0, ""};
    void *dl = NULL;
    for (size_t i = 0; i < sizeof lib_names / sizeof lib_names[0] && !dl; i++)
        dl = dlopen(lib_names[i], RTLD_NOW | RTLD_NOLOAD);
    if (dl)
        snprintf(lib.core_why, sizeof lib.core_why,
                 "OpenBLAS was already loaded in this process: its own choice");
    else if (*env) {
        asked = env;
        snprintf(lib.core_why, sizeof lib.core_why,
                 "OPENBLAS_CORETYPE=%s set by the environment", env);
    } else if (want) {
        asked = want;
        env_set(&core_env, "OPENBLAS_CORETYPE", want);
        snprintf(lib.core_why, sizeof lib.core_why,
                 "chosen by cnnbench from CPU flags %s", flags);
    } else
        snprintf(lib.core_why, sizeof lib.core_why, "OpenBLAS's own detection (%s)", flags);
    if (!dl)
        env_set(&threads_env, "OPENBLAS_NUM_THREADS", "1");

    char errs[2][256] = {"", ""};
    for (size_t i = 0; i < sizeof lib_names / sizeof lib_names[0] && !dl; i++) {
        dl = dlopen(lib_names[i], RTLD_NOW | RTLD_LOCAL);
        if (!dl)
            snprintf(errs[i], sizeof errs[i], "%s", dlerror());
    }
    /* both are read once, at load: leave the environment as it was found */
    if (core_env.name)
        env_restore(&core_env);
    if (threads_env.name)
        env_restore(&threads_env);
    if (!dl) {
        host->log(CNB_LOG_ERROR, WHO, "cannot load OpenBLAS (%s; %s): install libopenblas0 "
                  "(Debian: apt-get install libopenblas0-pthread)", errs[0], errs[1]);
        return CNB_ENOTFOUND;
    }
    lib.dl = dl;
    int missing = 0;
    void *p_sgemm = lib_sym(host, "cblas_sgemm", &missing);
    void *p_threads = lib_sym(host, "openblas_set_num_threads", &missing);
    void *p_core = lib_sym(host, "openblas_get_corename", &missing);
    void *p_config = lib_sym(host, "openblas_get_config", &missing);
    if (missing) {
        dlclose(dl);
        lib.dl = NULL;
        return CNB_ENOTFOUND;
    }
    /* object to function pointers, as POSIX allows */
    memcpy(&lib.sgemm, &p_sgemm, sizeof lib.sgemm);
    memcpy(&lib.set_num_threads, &p_threads, sizeof lib.set_num_threads);
    memcpy(&lib.get_corename, &p_core, sizeof lib.get_corename);
    memcpy(&lib.get_config, &p_config, sizeof lib.get_config);
    lib.set_num_threads(1); /* every sgemm call runs on the thread that makes it */

    const char *core = lib.get_corename();
    if (asked && strcasecmp(core, asked) != 0) {
        size_t n = strlen(lib.core_why);
        snprintf(lib.core_why + n, sizeof lib.core_why - n, ", not taken by OpenBLAS");
    }
    if (want && core_is_generic(core))
        host->log(CNB_LOG_WARN, WHO, "OpenBLAS runs its pre-AVX2 '%s' kernels on a CPU with "
                  "%s (%s): sgemm is 2-5x slower; set OPENBLAS_CORETYPE=%s", core, flags,
                  lib.core_why, want);
    else if (want && strcmp(want, "SkylakeX") == 0 && strcasecmp(core, "Haswell") == 0)
        host->log(CNB_LOG_INFO, WHO, "OpenBLAS runs its AVX2 'Haswell' kernels on a CPU with "
                  "AVX-512 (%s); its SkylakeX kernels are about twice as fast here: unset "
                  "OPENBLAS_CORETYPE or set it to SkylakeX", lib.core_why);
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Backend state and kernels. */

typedef struct ob_state {
    const cnb_host *host;
    int threads;          /* cfg->threads                          */
    thread_pool *pool;    /* threads - 1 workers; NULL for 1 thread */
    char info[512];       /* info() line                           */
} ob_state;

/* One thread's scratch in a conv kernel: what it holds never outlives an item. */
typedef struct ob_slot {
    float *cols;   /* (CKK, OH*OW): im2col of one sample, then its dcols; NULL if direct */
    float *row;    /* ((OW-1)*SW + KW): one input row with its zero padding              */
} ob_slot;

/* One chunk of the batch in a conv backward (pool.h): its partial sums, whichever thread
 * computes them. */
typedef struct ob_chunk {
    float *dwt;    /* (CKK, K): the chunk's share of diff_weights, transposed            */
    double *db;    /* (K): its share of diff_bias                                        */
    int n0, n1;    /* its samples [n0, n1): fixed by N and the chunk count; may be empty */
} ob_chunk;

typedef struct ob_kernel {
    cnb_kernel base;  /* first: the host only sees this                                */
    ob_state *st;     /* host table, threads, pool                                     */
    cnb_op_desc d;    /* the descriptor it was created for                             */
    int nslots;       /* conv: scratch, one per thread (cfg->threads)                  */
    int nchunks;      /* conv: chunks of the batch (pool_chunks())                     */
    int direct;       /* conv: 1x1, stride 1, no padding: src is its own cols          */
    int gemm_only;    /* conv: library_pass() is running: the GEMMs and nothing else   */
    ob_slot *slot;    /* conv: (nslots)                                                */
    ob_chunk *chunk;  /* conv: (nchunks)                                               */
    size_t held;      /* bytes it allocated: itself, its scratch and partial sums      */
} ob_kernel;

/* C = op(A) op(B) + beta C, row-major: the only BLAS call of this file. */
static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc)
{
    lib.sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

/* The sum of x[0..n-1] in double, in eight independent sums so it is not latency-bound. */
static double sum_floats(const float *x, int n)
{
    double acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    double sum = 0.0;
    for (; i < n; i++)
        sum += x[i];
    for (int j = 0; j < 8; j++)
        sum += acc[j];
    return sum;
}

/* ------------------------------------------------------------------------------------ */
/* im2col and col2im. Output o along an axis of input length `in` reads input o*s - p + t
 * for tap t; taps outside [0, in) are zero padding. */

/* Outputs o in [*o0, *o1) for which tap t lands inside the input. */
static void tap_outputs(int *o0, int *o1, int t, int s, int p, int in, int out)
{
    int lo = p - t;
    int hi = in - 1 + p - t;
    *o0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *o1 = hi < 0 ? 0 : hi / s + 1;
    if (*o1 > out)
        *o1 = out;
    if (*o0 > *o1)
        *o0 = *o1;
}

/* r[j*ld + o] = x[o*s + j] for taps j < kw and outputs o < ow. Strides 2 and 4 take s
 * taps per pass, reading x contiguously (the compiler turns it into shuffles); that halves
 * im2col for AlexNet's conv1. */
static void copy_taps(float *r, size_t ld, const float *x, int ow, int s, int kw)
{
    int j = 0;
    if (s == 4)
        for (; j + 4 <= kw; j += 4) {
            float *r0 = r + j * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
            const float *xj = x + j;
            for (int o = 0; o < ow; o++) {
                r0[o] = xj[4 * o];
                r1[o] = xj[4 * o + 1];
                r2[o] = xj[4 * o + 2];
                r3[o] = xj[4 * o + 3];
            }
        }
    if (s == 2)
        for (; j + 2 <= kw; j += 2) {
            float *r0 = r + j * ld, *r1 = r0 + ld;
            const float *xj = x + j;
            for (int o = 0; o < ow; o++) {
                r0[o] = xj[2 * o];
                r1[o] = xj[2 * o + 1];
            }
        }
    for (; j < kw; j++) {
        float *rj = r + j * ld;
        const float *xj = x + j;
        if (s == 1)
            for (int o = 0; o < ow; o++)
                rj[o] = xj[o];
        else
            for (int o = 0; o < ow; o++)
                rj[o] = xj[(size_t)o * s];
    }
}

/* cols[(c*KH + i)*KW + j][oh*OW + ow] = inp[c, oh*SH - PH + i, ow*SW - PW + j]. An input
 * row with horizontal padding is first copied into `row` between zeros, so that the tap
 * loops need no bounds. */
static void im2col(float *cols, float *row, const float *inp, const cnb_op_desc *d)
{
    const int C = d->src.c, H = d->src.h, W = d->src.w, OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh, SW = d->u.conv.sw;
    const int PH = d->u.conv.ph, PW = d->u.conv.pw;
    const size_t ld = (size_t)OH * OW;
    const int span = (OW - 1) * SW + KW;    /* padded input columns the outputs read */
    const int padded = PW > 0 || span > W;  /* else read the input rows in place     */
    if (padded)
        memset(row, 0, sizeof(float) * span);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < KH; i++) {
            float *taps = cols + (size_t)(c * KH + i) * KW * ld; /* row of tap (c, i, 0) */
            for (int oh = 0; oh < OH; oh++) {
                const int ih = oh * SH - PH + i;
                if (ih < 0 || ih >= H) {
                    for (int j = 0; j < KW; j++)
                        memset(taps + j * ld + (size_t)oh * OW, 0, sizeof(float) * OW);
                    continue;
                }
                const float *x = inp + ((size_t)c * H + ih) * W;
                if (padded) {
                    const int n = W < span - PW ? W : span - PW; /* columns the taps reach */
                    if (n > 0)
                        memcpy(row + PW, x, sizeof(float) * n);
                    x = row;
                }
                copy_taps(taps + (size_t)oh * OW, ld, x, OW, SW, KW);
            }
        }
}

/* dinp[c, ih, iw] = the sum of the cols entries im2col copied from it (dinp overwritten). */
static void col2im(float *dinp, const float *cols, const cnb_op_desc *d)
{
    const int C = d->src.c, H = d->src.h, W = d->src.w, OH = d->dst.h, OW = d->dst.w;
    const int KH = d->u.conv.kh, KW = d->u.conv.kw, SH = d->u.conv.sh, SW = d->u.conv.sw;
    const int PH = d->u.conv.ph, PW = d->u.conv.pw;
    const size_t ld = (size_t)OH * OW;
    memset(dinp, 0, sizeof(float) * C * H * W);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < KH; i++) {
            int oh0, oh1;
            tap_outputs(&oh0, &oh1, i, SH, PH, H, OH);
            for (int j = 0; j < KW; j++) {
                int ow0, ow1;
                tap_outputs(&ow0, &ow1, j, SW, PW, W, OW);
                const float *tap = cols + (size_t)((c * KH + i) * KW + j) * ld;
                for (int oh = oh0; oh < oh1; oh++) {
                    const float *r = tap + (size_t)oh * OW;
                    float *x = dinp + ((size_t)c * H + oh * SH - PH + i) * W - PW + j;
                    if (SW == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            x[ow] += r[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            x[(size_t)ow * SW] += r[ow];
                }
            }
        }
}

/* ------------------------------------------------------------------------------------ */
/* Convolution: out[n,k,oh,ow] = bias[k]
 *     + sum_{c,i,j} weight[k,c,i,j] * inp[n, c, oh*SH - PH + i, ow*SW - PW + j]
 * The items are the samples, one GEMM each.                                            */

static void conv_forward_task(void *arg, int slot)
{
    pool_job *job = arg;
    ob_kernel *ok = job->kernel;
    const cnb_op_desc *d = &ok->d;
    const int N = d->batch, K = d->dst.c, P = d->dst.h * d->dst.w;
    const int CKK = d->src.c * d->u.conv.kh * d->u.conv.kw;
    const size_t src_n = cnb_shape_size(d->src);
    float *out = job->a->dst;              /* (N,K,OH,OW)  */
    const float *inp = job->a->src;        /* (N,C,H,W)    */
    const float *weight = job->a->weights; /* (K,C,KH,KW)  */
    const float *bias = job->a->bias;      /* (K), or NULL */
    const ob_slot *ws = &ok->slot[slot];

    if (ok->gemm_only)
        bias = NULL;
    for (int n; (n = pool_job_take_near(job, slot, N)) < N;) {
        const float *cols = ok->direct ? inp + n * src_n : ws->cols; /* (CKK, P) */
        if (!ok->direct && !ok->gemm_only)
            im2col(ws->cols, ws->row, inp + n * src_n, d);
        float *out_n = out + (size_t)n * K * P; /* (K, P) */
        if (bias)
            for (int k = 0; k < K; k++)
                for (int p = 0; p < P; p++)
                    out_n[(size_t)k * P + p] = bias[k];
        gemm(0, 0, K, P, CKK, weight, CKK, cols, P, bias ? 1.0f : 0.0f, out_n, P);
    }
}

static int conv_forward(cnb_kernel *self, const cnb_args *a)
{
    const ob_kernel *ok = (const ob_kernel *)self;
    pool_run_job(ok->st->pool, conv_forward_task, self, a);
    return CNB_OK;
}

/* The items are the chunks. For each sample n of a chunk, in order, into the chunk's
 * partial sums (the first sample stores, the others add):
 *     dwt (CKK, K) += cols_n . dout_n^T   (transposed: 10-35% faster than dout . cols^T)
 *     db[k]        += sum_p dout[n,k,p]
 *     dcols_n       = W^T . dout_n, col2im'd into dinp[n]
 * in the taking thread's scratch; conv_reduce_task then adds up the chunks.            */
static void conv_backward_task(void *arg, int slot)
{
    pool_job *job = arg;
    ob_kernel *ok = job->kernel;
    const cnb_args *a = job->a;
    const cnb_op_desc *d = &ok->d;
    const int K = d->dst.c, P = d->dst.h * d->dst.w;
    const int CKK = d->src.c * d->u.conv.kh * d->u.conv.kw;
    const size_t src_n = cnb_shape_size(d->src);
    float *dinp = a->diff_src;        /* (N,C,H,W), or NULL */
    const float *dout = a->diff_dst;  /* (N,K,OH,OW)        */
    const float *inp = a->src;        /* (N,C,H,W)          */
    const float *weight = a->weights; /* (K,C,KH,KW)        */
    const ob_slot *ws = &ok->slot[slot];

    for (int c; (c = pool_job_take_near(job, slot, ok->nchunks)) < ok->nchunks;) {
        ob_chunk *ch = &ok->chunk[c];
        for (int n = ch->n0; n < ch->n1; n++) {
            const int first = n == ch->n0;
            const float *dy = dout + (size_t)n * K * P; /* (K, P) */
            if (a->diff_bias && !ok->gemm_only)
                for (int k = 0; k < K; k++)
                    ch->db[k] = (first ? 0.0 : ch->db[k]) + sum_floats(dy + (size_t)k * P, P);
            if (a->diff_weights) {
                const float *cols = ok->direct ? inp + n * src_n : ws->cols;
                if (!ok->direct && !ok->gemm_only)
                    im2col(ws->cols, ws->row, inp + n * src_n, d);
                gemm(0, 1, CKK, K, P, cols, P, dy, P, first ? 0.0f : 1.0f, ch->dwt, K);
            }
            if (dinp && ok->direct)
                gemm(1, 0, CKK, P, K, weight, CKK, dy, P, 0.0f, dinp + n * src_n, P);
            else if (dinp) {
                gemm(1, 0, CKK, P, K, weight, CKK, dy, P, 0.0f, ws->cols, P);
                if (!ok->gemm_only)
                    col2im(dinp + n * src_n, ws->cols, d);
            }
        }
    }
}

/* diff_weights[k][r] = the sum of the chunks' dwt[r][k], diff_bias[k] that of their
 * db[k], in chunk order (empty chunks left out). The items are blocks of 32 rows k,
 * transposed in 32x32 tiles.                                                            */
#define REDUCE_BLOCK 32

static void conv_reduce_task(void *arg, int slot)
{
    pool_job *job = arg;
    ob_kernel *ok = job->kernel;
    const int K = ok->d.dst.c, CKK = ok->d.src.c * ok->d.u.conv.kh * ok->d.u.conv.kw;
    float *dweight = job->a->diff_weights; /* (K, CKK), or NULL */
    float *dbias = job->a->diff_bias;      /* (K), or NULL      */
    const int nb = (K + REDUCE_BLOCK - 1) / REDUCE_BLOCK;

    for (int b; (b = pool_job_take_near(job, slot, nb)) < nb;) {
        const int k0 = b * REDUCE_BLOCK, k1 = k0 + REDUCE_BLOCK < K ? k0 + REDUCE_BLOCK : K;
        for (int r0 = 0; r0 < CKK && dweight; r0 += REDUCE_BLOCK) {
            const int r1 = r0 + REDUCE_BLOCK < CKK ? r0 + REDUCE_BLOCK : CKK;
            for (int k = k0; k < k1; k++)
                for (int r = r0; r < r1; r++) {
                    float sum = 0.0f;
                    for (int c = 0; c < ok->nchunks; c++)
                        if (ok->chunk[c].n1 > ok->chunk[c].n0)
                            sum += ok->chunk[c].dwt[(size_t)r * K + k];
                    dweight[(size_t)k * CKK + r] = sum;
                }
        }
        for (int k = k0; k < k1 && dbias; k++) {
            double sum = 0.0;
            for (int c = 0; c < ok->nchunks; c++)
                if (ok->chunk[c].n1 > ok->chunk[c].n0)
                    sum += ok->chunk[c].db[k];
            dbias[k] = (float)sum;
        }
    }
}

static int conv_backward(cnb_kernel *self, const cnb_args *a)
{
    ob_kernel *ok = (ob_kernel *)self;
    pool_run_job(ok->st->pool, conv_backward_task, ok, a);
    if ((a->diff_weights || a->diff_bias) && !ok->gemm_only)
        pool_run_job(ok->st->pool, conv_reduce_task, ok, a);
    return CNB_OK;
}

/* The convolution's GEMMs alone: the same calls on the same threads, without im2col,
 * col2im, the bias and the reduction of the chunks' partial weight gradients. An inner
 * product is its GEMMs already. */
static int ob_library_pass(cnb_kernel *self, const cnb_args *a, int backward)
{
    ob_kernel *ok = (ob_kernel *)self;
    if (ok->d.op != CNB_OP_CONV)
        return CNB_ENOTSUP;
    ok->gemm_only = 1;
    int rc = backward ? conv_backward(self, a) : conv_forward(self, a);
    ok->gemm_only = 0;
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Inner product: out[n,k] = bias[k] + sum_i weight[k,i] * inp[n,i], i over D = C*H*W.
 * The items are blocks of output columns (forward, diff_src) or rows (diff_weights), so
 * no partial sums are needed.                                                          */

/* Columns per item: about two items per thread, on whole 16-wide GEMM micro-tiles. */
static int ip_block(const ob_kernel *ok, int n)
{
    int threads = ok->st->threads;
    int b = (n + 2 * threads - 1) / (2 * threads);
    return (b + 15) / 16 * 16;
}

static void inner_product_forward_task(void *arg, int slot)
{
    pool_job *job = arg;
    ob_kernel *ok = job->kernel;
    const int N = ok->d.batch, D = (int)cnb_shape_size(ok->d.src), K = ok->d.dst.c;
    float *out = job->a->dst;              /* (N,K)        */
    const float *inp = job->a->src;        /* (N,D)        */
    const float *weight = job->a->weights; /* (K,D)        */
    const float *bias = job->a->bias;      /* (K), or NULL */
    const int bk = ip_block(ok, K), nb = (K + bk - 1) / bk;

    for (int b; (b = pool_job_take_near(job, slot, nb)) < nb;) {
        const int k0 = b * bk, k1 = k0 + bk < K ? k0 + bk : K;
        if (bias)
            for (int n = 0; n < N; n++)
                memcpy(out + (size_t)n * K + k0, bias + k0, sizeof(float) * (k1 - k0));
        gemm(0, 1, N, k1 - k0, D, inp, D, weight + (size_t)k0 * D, D, bias ? 1.0f : 0.0f,
             out + k0, K);
    }
}

static int inner_product_forward(cnb_kernel *self, const cnb_args *a)
{
    const ob_kernel *ok = (const ob_kernel *)self;
    pool_run_job(ok->st->pool, inner_product_forward_task, self, a);
    return CNB_OK;
}

/* Items: blocks of dinp = dout . W columns d0..d1, then blocks of dweight = dout^T . inp
 * and dbias[k] = sum_n dout[n,k] rows k0..k1.                                           */
static void inner_product_backward_task(void *arg, int slot)
{
    pool_job *job = arg;
    ob_kernel *ok = job->kernel;
    const cnb_args *a = job->a;
    const int N = ok->d.batch, D = (int)cnb_shape_size(ok->d.src), K = ok->d.dst.c;
    float *dinp = a->diff_src;        /* (N,D), or NULL */
    float *dweight = a->diff_weights; /* (K,D), or NULL */
    float *dbias = a->diff_bias;      /* (K), or NULL   */
    const float *dout = a->diff_dst;  /* (N,K)          */
    const float *inp = a->src;        /* (N,D)          */
    const float *weight = a->weights; /* (K,D)          */
    const int bd = ip_block(ok, D), bk = ip_block(ok, K);
    const int nd = dinp ? (D + bd - 1) / bd : 0, nk = (K + bk - 1) / bk;

    for (int b; (b = pool_job_take_near(job, slot, nd + nk)) < nd + nk;) {
        if (b < nd) {
            const int d0 = b * bd, d1 = d0 + bd < D ? d0 + bd : D;
            gemm(0, 0, N, d1 - d0, K, dout, K, weight + d0, D, 0.0f, dinp + d0, D);
            continue;
        }
        const int k0 = (b - nd) * bk, k1 = k0 + bk < K ? k0 + bk : K;
        if (dweight)
            gemm(1, 0, k1 - k0, D, N, dout + k0, K, inp, D, 0.0f, dweight + (size_t)k0 * D,
                 D);
        for (int k = k0; k < k1 && dbias; k++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++)
                sum += dout[(size_t)n * K + k];
            dbias[k] = (float)sum;
        }
    }
}

static int inner_product_backward(cnb_kernel *self, const cnb_args *a)
{
    const ob_kernel *ok = (const ob_kernel *)self;
    pool_run_job(ok->st->pool, inner_product_backward_task, self, a);
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Kernel creation: validate like naive does, size the workspace, pick the functions. */

static void ob_kernel_destroy(cnb_kernel *self)
{
    ob_kernel *ok = (ob_kernel *)self;
    if (!ok)
        return;
    const cnb_host *host = ok->st->host;
    for (int t = 0; ok->slot && t < ok->nslots; t++) {
        host->free(ok->slot[t].cols);
        host->free(ok->slot[t].row);
    }
    for (int c = 0; ok->chunk && c < ok->nchunks; c++) {
        host->free(ok->chunk[c].dwt);
        host->free(ok->chunk[c].db);
    }
    host->free(ok->slot);
    host->free(ok->chunk);
    host->free(ok);
}

/* Allocate each thread's conv scratch and each chunk's partial sums; 0 or CNB_ENOMEM
 * (logged). */
static int conv_workspace(ob_kernel *ok)
{
    const cnb_host *host = ok->st->host;
    const cnb_op_desc *d = &ok->d;
    const size_t K = d->dst.c, CKK = (size_t)d->src.c * d->u.conv.kh * d->u.conv.kw;
    const size_t P = (size_t)d->dst.h * d->dst.w;
    const size_t cols = ok->direct ? 0 : sizeof(float) * CKK * P;
    const size_t row = ok->direct ? 0 : sizeof(float) * ((d->dst.w - 1) * d->u.conv.sw +
                                                         d->u.conv.kw);
    const size_t dwt = sizeof(float) * CKK * K, db = sizeof(double) * K;
    ok->nchunks = pool_chunks(ok->st->threads, d->batch, dwt + db);
    int bad = !(ok->slot = host->alloc(sizeof *ok->slot * ok->nslots)) ||
              !(ok->chunk = host->alloc(sizeof *ok->chunk * ok->nchunks));
    for (int t = 0; t < ok->nslots && !bad; t++) {
        ob_slot *s = &ok->slot[t];
        bad = (cols && !(s->cols = host->alloc(cols))) ||
              (row && !(s->row = host->alloc(row)));
    }
    for (int c = 0; c < ok->nchunks && !bad; c++) {
        ob_chunk *ch = &ok->chunk[c];
        pool_chunk(d->batch, ok->nchunks, c, &ch->n0, &ch->n1);
        bad = !(ch->dwt = host->alloc(dwt)) || !(ch->db = host->alloc(db));
    }
    if (bad)
        return CNB_FAIL(host, WHO, CNB_ENOMEM,
                        "conv: cannot allocate %d x %zu bytes of scratch and %d x %zu of "
                        "partial sums", ok->nslots, cols + row, ok->nchunks, dwt + db);
    ok->held += ok->nslots * (sizeof *ok->slot + cols + row) +
                ok->nchunks * (sizeof *ok->chunk + dwt + db);
    return CNB_OK;
}

static int ob_kernel_create(void *state, const cnb_op_desc *desc, cnb_kernel **out)
{
    ob_state *st = state;
    *out = NULL;
    if (!st)
        return CNB_EINVAL; /* init() was not called: nowhere to log to */
    if (desc->op != CNB_OP_CONV && desc->op != CNB_OP_INNER_PRODUCT)
        return CNB_ENOTSUP;
    const cnb_host *host = st->host;
    char why[512];
    int err = cnb_op_desc_check(desc, why, sizeof why);
    if (err)
        return CNB_FAIL(host, WHO, err, "%s", why);

    ob_kernel *ok = host->alloc(sizeof *ok);
    if (!ok)
        return CNB_ENOMEM;
    ok->st = st;
    ok->d = *desc;
    ok->held = sizeof *ok;
    ok->base = CNB_KERNEL_INIT(.destroy = ob_kernel_destroy); /* entries by op, below */
    ok->nslots = st->threads;
    if (desc->op == CNB_OP_INNER_PRODUCT) {
        ok->base.forward = inner_product_forward;
        ok->base.backward = inner_product_backward;
        *out = &ok->base;
        return CNB_OK;
    }
    ok->base.forward = conv_forward;
    ok->base.backward = conv_backward;
    ok->direct = desc->u.conv.kh == 1 && desc->u.conv.kw == 1 && desc->u.conv.sh == 1 &&
                 desc->u.conv.sw == 1 && desc->u.conv.ph == 0 && desc->u.conv.pw == 0;
    if ((err = conv_workspace(ok))) {
        ob_kernel_destroy(&ok->base);
        return err;
    }
    *out = &ok->base;
    return CNB_OK;
}

static size_t ob_kernel_bytes(const cnb_kernel *self) { return ((const ob_kernel *)self)->held; }

/* ------------------------------------------------------------------------------------ */
/* The plugin. */

static int ob_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    *state = NULL;
    int err = lib_load(host);
    if (err)
        return err;
    ob_state *st = host->alloc(sizeof *st);
    if (!st)
        return CNB_ENOMEM;
    st->host = host;
    st->threads = cfg && cfg->threads > 1 ? cfg->threads : 1;
    if (st->threads > 1 && !(st->pool = pool_start(host, st->threads - 1, WHO))) {
        host->free(st);
        return CNB_ENOMEM;
    }
    snprintf(st->info, sizeof st->info, "%s; core %s (%s); %d thread%s (OpenBLAS "
             "single-threaded, calls split by the plugin)", lib.get_config(),
             lib.get_corename(), lib.core_why, st->threads, st->threads == 1 ? "" : "s");
    *state = st;
    return CNB_OK;
}

static void ob_park(void *state)
{
    if (state)
        pool_park(((ob_state *)state)->pool);
}

static void ob_fini(void *state)
{
    ob_state *st = state;
    if (!st)
        return;
    pool_stop(st->host, st->pool);
    st->host->free(st);
}

static const char *ob_info(void *state)
{
    ob_state *st = state;
    return st ? st->info : "OpenBLAS (not started)";
}

CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC("openblas", "1.1.1",
                     "convolution (im2col) and inner product on OpenBLAS sgemm; other ops "
                     "on naive",
                     .ops = CNB_OP_BIT(CNB_OP_CONV) | CNB_OP_BIT(CNB_OP_INNER_PRODUCT),
                     .init = ob_init,
                     .fini = ob_fini,
                     .kernel_create = ob_kernel_create,
                     .info = ob_info,
                     .library_pass = ob_library_pass,
                     .park = ob_park,
                     .kernel_bytes = ob_kernel_bytes));
