/*
 * checkdata.h - seeded test inputs and guard-banded buffers shared by the kernel suites
 * (checkasm style): a xorshift64* stream reseeded per case from CNB_TEST_SEED plus a
 * salt, fills that avoid max-pool ties and the ReLU kink, and buffers with sentinel
 * floats on both sides and a NaN-poisoned body.
 */
#ifndef CNB_CHECKDATA_H
#define CNB_CHECKDATA_H

#include <stddef.h>
#include <stdint.h>

#define CNB_CHECK_DEFAULT_SEED 20240611u
#define CNB_GUARD 16               /* sentinel floats before and after every buffer */
#define CNB_POISON_BITS 0x7fc0beefu /* a NaN that fills outputs before a call        */

/* CNB_TEST_SEED, or CNB_CHECK_DEFAULT_SEED; cnb_check_seed_set overrides it (0: back to that). */
uint64_t cnb_check_seed(void);
void cnb_check_seed_set(uint64_t seed);

/* CNB_TEST_THREADS (clamped to 1..256), or `dflt`: threads handed to backends. */
int cnb_check_threads(int dflt);

/* Reseed from cnb_check_seed() + salt, so a case's numbers do not depend on earlier cases. */
void cnb_check_rng_seed(uint64_t salt);
uint32_t cnb_check_u32(void);
float cnb_check_uniform(float lo, float hi);

void cnb_fill_uniform(float *x, size_t n, float lo, float hi);
/* (i - n/2 + 1/2) * gap for i < n, shuffled: distinct, `gap` apart, none exactly 0. */
void cnb_fill_distinct(float *x, size_t n, double gap);
/* |x| in [0.1, 1], either sign: a perturbation under 0.1 never crosses the ReLU kink. */
void cnb_fill_away_from_zero(float *x, size_t n);
/* unit * k for k uniform in -steps .. steps: with unit a power of 2, products and sums of
 * such values are exact in float while they stay below 2^24 units. */
void cnb_fill_grid(float *x, size_t n, int steps, float unit);
void cnb_fill_bits(float *x, size_t n, uint32_t bits);

/* n floats poisoned with CNB_POISON_BITS between CNB_GUARD `sentinel` floats on each
 * side; NULL for n == 0. Exits on out of memory. */
float *cnb_gbuf_new(size_t n, uint32_t sentinel);
void cnb_gbuf_free(float *p);
/* Offset of the first trampled guard float (-16..-1 before, +1..+16 after), or 0. */
int cnb_gbuf_trampled(const float *p, size_t n, uint32_t sentinel, uint32_t *found);

#endif
