/*
 * testdata.h - seeded test inputs and guard-banded buffers shared by the kernel suites
 * (checkasm style): a xorshift64* stream reseeded per case from CNB_TEST_SEED plus a
 * salt, fills that avoid max-pool ties and the ReLU kink, and buffers with sentinel
 * floats on both sides and a NaN-poisoned body.
 */
#ifndef CNB_TESTDATA_H
#define CNB_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

#define TEST_DEFAULT_SEED 20240611u
#define TEST_GUARD 16               /* sentinel floats before and after every buffer */
#define TEST_POISON_BITS 0x7fc0beefu /* a NaN that fills outputs before a call        */

/* CNB_TEST_SEED, or TEST_DEFAULT_SEED; test_seed_set overrides it (0: back to that). */
uint64_t test_seed(void);
void test_seed_set(uint64_t seed);

/* CNB_TEST_THREADS (clamped to 1..256), or `dflt`: threads handed to backends. */
int test_threads(int dflt);

/* Reseed from test_seed() + salt, so a case's numbers do not depend on earlier cases. */
void test_rng_seed(uint64_t salt);
uint32_t test_rng_u32(void);
float test_rng_uniform(float lo, float hi);

void test_fill_uniform(float *x, size_t n, float lo, float hi);
/* (i - n/2 + 1/2) * gap for i < n, shuffled: distinct, `gap` apart, none exactly 0. */
void test_fill_distinct(float *x, size_t n, double gap);
/* |x| in [0.1, 1], either sign: a perturbation under 0.1 never crosses the ReLU kink. */
void test_fill_away_from_zero(float *x, size_t n);
void test_fill_bits(float *x, size_t n, uint32_t bits);

/* n floats poisoned with TEST_POISON_BITS between TEST_GUARD `sentinel` floats on each
 * side; NULL for n == 0. Exits on out of memory. */
float *test_gbuf_new(size_t n, uint32_t sentinel);
void test_gbuf_free(float *p);
/* Offset of the first trampled guard float (-16..-1 before, +1..+16 after), or 0. */
int test_gbuf_trampled(const float *p, size_t n, uint32_t sentinel, uint32_t *found);

#endif
