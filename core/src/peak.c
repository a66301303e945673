/*
 * peak.c - FP32 FMA peak; see peak.h. Each thread runs independent chains of vector FMAs
 * on registers (no memory traffic): enough chains to cover the FMA latency times the
 * number of FMA units (12 chains: 4-cycle latency x 2 pipes + margin), so the loop is
 * bound by FMA throughput alone. FLOPs = iterations x chains x lanes x 2. On this
 * project's machine (AMD EPYC, Zen 5: two 512-bit FMA pipes) one thread reaches about
 * 233 GFLOP/s, 64 FLOPs a cycle at about 3.6 GHz; 40 probes per variant, interleaved,
 * median/max GFLOP/s: 6 chains 167/175 (6/8 of it: 8 are needed), 8 chains 219/231,
 * 12 chains 226/233, 16 chains 220/233, 24 chains 221/233; AVX2 with 12 chains 112/118
 * (half: 8 lanes). More chains do not raise it, and init tries every vector ISA the CPU
 * has and keeps the fastest rather than assume AVX-512 is.
 * The chains stay in registers only when the loop over them is unrolled (at -O2 without
 * the pragma, GCC keeps them in memory and the probe reads a third of the peak).
 * A probe's time is the wall time from starting its threads to joining the last, so a
 * thread that starts late or is descheduled lowers the probe, never raises it.
 */
#include "peak.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cnnbench/plugin.h"
#include "errors.h"
#include "stats.h"

#define CHAINS 12
_Static_assert(CHAINS == 12, "the unroll pragmas below spell out CHAINS");
#define INIT_PROBES 3 /* per ISA, alternating, to choose the kernel */

typedef struct job {
    long iterations;
    double (*kernel)(long iterations);
    double sink;
} job;

__attribute__((target("avx512f"))) static double fma_avx512(long iterations)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
#pragma GCC unroll 12 /* CHAINS */
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    __m512 sum = acc[0];
    for (int c = 1; c < CHAINS; c++)
        sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iterations)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
#pragma GCC unroll 12 /* CHAINS */
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float out[8];
    __m256 sum = acc[0];
    for (int c = 1; c < CHAINS; c++)
        sum = _mm256_add_ps(sum, acc[c]);
    _mm256_storeu_ps(out, sum);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

static double fma_scalar(long iterations)
{
    float acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = (float)c;
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * 0.999999f + 1e-7f;
    double s = 0;
    for (int c = 0; c < CHAINS; c++)
        s += acc[c];
    return s;
}

const char *const cnb_peak_isas[3] = {"avx512f", "avx2+fma", "scalar"};

static const struct {
    double (*fn)(long iterations);
    int lanes;
} kernels[3] = {{fma_avx512, 16}, {fma_avx2, 8}, {fma_scalar, 1}};

static void *run_job(void *arg)
{
    job *j = arg;
    j->sink = j->kernel(j->iterations);
    return NULL;
}

/* Wall seconds for `threads` threads each running kernel k for `iterations` into *sec. */
static int timed(int k, long iterations, int threads, double *sec)
{
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    int started = 0, rc = 0;
    if (!jobs || !tids) {
        free(jobs), free(tids);
        return CNB_ENOMEM;
    }
    double t0 = cnb_now();
    for (; started < threads; started++) {
        jobs[started] = (job){.iterations = iterations, .kernel = kernels[k].fn};
        if ((rc = pthread_create(&tids[started], NULL, run_job, &jobs[started])) != 0)
            break;
    }
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    *sec = cnb_now() - t0;
    free(jobs), free(tids);
    if (rc)
        return cnb_error("FMA probe: could not start thread %d of %d: %s", started + 1,
                         threads, strerror(rc));
    return 0;
}

static int gflops_of(int k, long iterations, int threads, double *gflops)
{
    double sec;
    int rc = timed(k, iterations, threads, &sec);
    *gflops = (double)iterations * CHAINS * kernels[k].lanes * 2.0 * threads / sec * 1e-9;
    return rc;
}

/* Which kernels init tries (have[k] for kernels[k]): the one `isa` names, or else every
 * vector ISA the CPU has, the scalar loop only when it has none. 0, or an error. */
static int kernels_to_try(const char *isa, int have[3])
{
    __builtin_cpu_init();
    const int cpu[3] = {__builtin_cpu_supports("avx512f"),
                        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                        1 /* the scalar loop runs anywhere */};
    if (!isa) {
        have[0] = cpu[0], have[1] = cpu[1], have[2] = !cpu[0] && !cpu[1];
        return 0;
    }
    int named = 0;
    for (int k = 0; k < 3; k++) {
        have[k] = strcmp(isa, cnb_peak_isas[k]) == 0;
        if (have[k] && !cpu[k])
            return cnb_error("FMA probe: this CPU has no %s", isa);
        named |= have[k];
    }
    return named ? 0 : cnb_error("FMA probe: no kernel for ISA '%s' (%s, %s or %s)", isa,
                                 cnb_peak_isas[0], cnb_peak_isas[1], cnb_peak_isas[2]);
}

int cnb_peak_init(cnb_peak *p, int threads, double seconds, const char *isa)
{
    memset(p, 0, sizeof *p);
    p->threads = threads;
    p->probe_seconds = seconds;
    p->gflops = p->median = p->min = NAN;
    int have[3];
    int rc = kernels_to_try(isa, have);
    if (rc)
        return rc;
    long iterations[3] = {0};
    for (int k = 0; k < 3 && rc == 0; k++) { /* grow until one probe takes >= seconds, */
        double sec = 0;                       /* then scale it down to about seconds      */
        for (iterations[k] = 1 << 10; have[k] && rc == 0 && iterations[k] < (1L << 40);
             iterations[k] *= 2)
            if ((rc = timed(k, iterations[k], threads, &sec)) != 0 || sec >= seconds)
                break;
        if (have[k] && sec > seconds)
            iterations[k] = (long)((double)iterations[k] * seconds / sec) + 1;
    }
    for (int r = 0; r < INIT_PROBES && rc == 0; r++)
        for (int k = 0; k < 3 && rc == 0; k++) {
            double g = 0;
            if (have[k] && (rc = gflops_of(k, iterations[k], threads, &g)) == 0 &&
                g > p->tried[k])
                p->tried[k] = g;
        }
    int best = 2;
    for (int k = 2; k >= 0; k--)
        if (have[k] && p->tried[k] >= p->tried[best])
            best = k;
    p->kernel = best;
    p->isa = cnb_peak_isas[best];
    p->iterations = iterations[best];
    return rc;
}

int cnb_peak_probe(cnb_peak *p)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        double *grown = realloc(p->probes, (size_t)cap * sizeof *grown);
        if (!grown)
            return CNB_ENOMEM;
        p->probes = grown, p->cap = cap;
    }
    double g;
    int rc = gflops_of(p->kernel, p->iterations, p->threads, &g);
    if (rc)
        return rc;
    p->probes[p->n++] = g;
    cnb_sample_stats s;
    cnb_sample_summarize(p->probes, p->n, &s);
    p->gflops = s.max, p->median = s.median, p->min = s.min;
    return 0;
}

void cnb_peak_free(cnb_peak *p)
{
    free(p->probes);
    p->probes = NULL;
    p->n = p->cap = 0;
}
