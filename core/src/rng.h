/*
 * rng.h - the seeded random streams behind every random choice in a run.
 *
 * PCG32 (O'Neill, pcg-random.org: XSH-RR output, 64-bit LCG state). A stream is named by
 * (seed, stream id): runs record the seed, and each consumer (shuffle, init, a dropout
 * layer) takes its own stream id, so adding a consumer never shifts another's numbers.
 */
#ifndef CNB_RNG_H
#define CNB_RNG_H

#include <stdint.h>

struct cnb_rng {
    uint64_t state;
    uint64_t inc;       /* odd; selects the stream */
    int has_spare;      /* Box-Muller yields normals in pairs */
    float spare;
};

/* Well-known stream ids. Layer streams are CNB_STREAM_LAYER + layer index. */
enum {
    CNB_STREAM_INIT = 1,
    CNB_STREAM_SHUFFLE = 2,
    CNB_STREAM_AUGMENT = 3,
    CNB_STREAM_DATA = 4,
    CNB_STREAM_STATS = 5, /* which training images the data statistics are taken over */
    CNB_STREAM_VALIDATION = 6, /* which training images are held out for validation */
    CNB_STREAM_LAYER = 1000,
};

void cnb_rng_seed(struct cnb_rng *r, uint64_t seed, uint64_t stream);
uint32_t cnb_rng_u32(struct cnb_rng *r);
float cnb_rng_uniform(struct cnb_rng *r);          /* [0, 1) */
float cnb_rng_normal(struct cnb_rng *r);           /* N(0, 1) */
uint32_t cnb_rng_below(struct cnb_rng *r, uint32_t n); /* unbiased [0, n) */

/* Jump the stream `delta` 32-bit draws ahead in O(log delta) steps (the LCG's power
 * series): data-parallel training skips the draws the other ranks make. */
void cnb_rng_advance(struct cnb_rng *r, uint64_t delta);
/* The draws between two states of one stream: from `from` to `to` (to = from advanced by
 * the result); O(64). */
uint64_t cnb_rng_distance(const struct cnb_rng *from, const struct cnb_rng *to);

#endif
