/* checkdata.c - see checkdata.h. */
#include "checkdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t seed_base, rng_s;

uint64_t cnb_check_seed(void)
{
    if (!seed_base) {
        const char *e = getenv("CNB_TEST_SEED");
        seed_base = e && *e ? strtoull(e, NULL, 0) : CNB_CHECK_DEFAULT_SEED;
    }
    return seed_base;
}

int cnb_check_threads(int dflt)
{
    const char *e = getenv("CNB_TEST_THREADS");
    long n = e && *e ? strtol(e, NULL, 10) : dflt;
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

void cnb_check_seed_set(uint64_t seed) { seed_base = seed; }

void cnb_check_rng_seed(uint64_t salt) { rng_s = (cnb_check_seed() + salt) * 0x9E3779B97F4A7C15ull | 1u; }

uint32_t cnb_check_u32(void)
{
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return (uint32_t)((rng_s * 2685821657736338717ull) >> 32);
}

float cnb_check_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(cnb_check_u32() >> 8) * (1.0f / 16777216.0f);
}

void cnb_fill_uniform(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = cnb_check_uniform(lo, hi);
}

void cnb_fill_distinct(float *x, size_t n, double gap)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(((double)i - (double)n / 2.0 + 0.5) * gap);
    for (size_t i = n; i > 1; i--) {
        size_t j = cnb_check_u32() % i;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

void cnb_fill_away_from_zero(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (cnb_check_u32() & 1 ? 1.0f : -1.0f) * cnb_check_uniform(0.1f, 1.0f);
}

void cnb_fill_grid(float *x, size_t n, int steps, float unit)
{
    for (size_t i = 0; i < n; i++)
        x[i] = unit * (float)((int)(cnb_check_u32() % (uint32_t)(2 * steps + 1)) - steps);
}

void cnb_fill_bits(float *x, size_t n, uint32_t bits)
{
    for (size_t i = 0; i < n; i++)
        memcpy(&x[i], &bits, sizeof bits);
}

float *cnb_gbuf_new(size_t n, uint32_t sentinel)
{
    if (n == 0)
        return NULL;
    void *mem = NULL; /* 64-byte aligned, as the host's allocator: so is the body */
    if (posix_memalign(&mem, 64, (n + 2 * CNB_GUARD) * sizeof(float)) != 0)
        mem = NULL;
    float *b = mem;
    if (!b) {
        fprintf(stderr, "cnnbench: out of memory for %zu floats\n", n);
        exit(2);
    }
    cnb_fill_bits(b, CNB_GUARD, sentinel);
    cnb_fill_bits(b + CNB_GUARD + n, CNB_GUARD, sentinel);
    cnb_fill_bits(b + CNB_GUARD, n, CNB_POISON_BITS);
    return b + CNB_GUARD;
}

void cnb_gbuf_free(float *p)
{
    if (p)
        free(p - CNB_GUARD);
}

int cnb_gbuf_trampled(const float *p, size_t n, uint32_t sentinel, uint32_t *found)
{
    for (int i = 0; i < 2 * CNB_GUARD; i++) {
        const float *g = i < CNB_GUARD ? p - CNB_GUARD + i : p + n + (i - CNB_GUARD);
        uint32_t bits;
        memcpy(&bits, g, sizeof bits);
        if (bits != sentinel) {
            *found = bits;
            return i < CNB_GUARD ? i - CNB_GUARD : i - CNB_GUARD + 1;
        }
    }
    return 0;
}
