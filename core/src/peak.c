/*
 * peak.c - FP32 FMA peak; see peak.h. Each thread runs independent chains of vector FMAs
 * on registers (no memory traffic): enough chains to cover the FMA latency times the
 * number of FMA units (12 chains: 4-cycle latency x 2 pipes + margin), so the loop is
 * bound by FMA throughput alone. FLOPs = iterations x chains x lanes x 2.
 */
#include "peak.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cnnbench/plugin.h"
#include "host.h"

#define CHAINS 12

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

static void *run_job(void *arg)
{
    job *j = arg;
    j->sink = j->kernel(j->iterations);
    return NULL;
}

/* Wall seconds for `threads` threads each running `iterations`. */
static double timed(double (*kernel)(long), long iterations, int threads, job *jobs,
                    pthread_t *tids)
{
    double t0 = cnb_now();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.iterations = iterations, .kernel = kernel};
        pthread_create(&tids[t], NULL, run_job, &jobs[t]);
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    return cnb_now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cnb_peak_measure(int threads, double seconds, cnb_peak *out)
{
    double (*kernel)(long) = fma_scalar;
    int lanes = 1;
    out->isa = "scalar";
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        kernel = fma_avx512, lanes = 16, out->isa = "avx512f";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        kernel = fma_avx2, lanes = 8, out->isa = "avx2+fma";
    out->threads = threads;
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!jobs || !tids) {
        free(jobs), free(tids);
        return CNB_ENOMEM;
    }
    long iterations = 1 << 16; /* grow until one repetition takes >= seconds / 10 */
    while (timed(kernel, iterations, threads, jobs, tids) < seconds / 10 && iterations < (1L << 40))
        iterations *= 2;
    double rates[16];
    int reps = 0;
    for (double start = cnb_now(); reps < 5 || (reps < 16 && cnb_now() - start < seconds); reps++)
        rates[reps] = (double)iterations * CHAINS * lanes * 2.0 * threads /
                      timed(kernel, iterations, threads, jobs, tids) * 1e-9;
    qsort(rates, (size_t)reps, sizeof rates[0], cmp_double);
    out->gflops = rates[reps / 2];
    free(jobs), free(tids);
    return 0;
}
