/* testdata.c - see testdata.h. */
#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t seed_base, rng_s;

uint64_t test_seed(void)
{
    if (!seed_base) {
        const char *e = getenv("CNB_TEST_SEED");
        seed_base = e && *e ? strtoull(e, NULL, 0) : TEST_DEFAULT_SEED;
    }
    return seed_base;
}

int test_threads(int dflt)
{
    const char *e = getenv("CNB_TEST_THREADS");
    long n = e && *e ? strtol(e, NULL, 10) : dflt;
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

void test_seed_set(uint64_t seed) { seed_base = seed; }

void test_rng_seed(uint64_t salt) { rng_s = (test_seed() + salt) * 0x9E3779B97F4A7C15ull | 1u; }

uint32_t test_rng_u32(void)
{
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return (uint32_t)((rng_s * 2685821657736338717ull) >> 32);
}

float test_rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(test_rng_u32() >> 8) * (1.0f / 16777216.0f);
}

void test_fill_uniform(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_uniform(lo, hi);
}

void test_fill_distinct(float *x, size_t n, double gap)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(((double)i - (double)n / 2.0 + 0.5) * gap);
    for (size_t i = n; i > 1; i--) {
        size_t j = test_rng_u32() % i;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

void test_fill_away_from_zero(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (test_rng_u32() & 1 ? 1.0f : -1.0f) * test_rng_uniform(0.1f, 1.0f);
}

void test_fill_bits(float *x, size_t n, uint32_t bits)
{
    for (size_t i = 0; i < n; i++)
        memcpy(&x[i], &bits, sizeof bits);
}

float *test_gbuf_new(size_t n, uint32_t sentinel)
{
    if (n == 0)
        return NULL;
    float *b = malloc((n + 2 * TEST_GUARD) * sizeof(float));
    if (!b) {
        fprintf(stderr, "tests: out of memory for %zu floats\n", n);
        exit(2);
    }
    test_fill_bits(b, TEST_GUARD, sentinel);
    test_fill_bits(b + TEST_GUARD + n, TEST_GUARD, sentinel);
    test_fill_bits(b + TEST_GUARD, n, TEST_POISON_BITS);
    return b + TEST_GUARD;
}

void test_gbuf_free(float *p)
{
    if (p)
        free(p - TEST_GUARD);
}

int test_gbuf_trampled(const float *p, size_t n, uint32_t sentinel, uint32_t *found)
{
    for (int i = 0; i < 2 * TEST_GUARD; i++) {
        const float *g = i < TEST_GUARD ? p - TEST_GUARD + i : p + n + (i - TEST_GUARD);
        uint32_t bits;
        memcpy(&bits, g, sizeof bits);
        if (bits != sentinel) {
            *found = bits;
            return i < TEST_GUARD ? i - TEST_GUARD : i - TEST_GUARD + 1;
        }
    }
    return 0;
}
