/* rng.c - PCG32 streams; see rng.h. */
#include "rng.h"

#include <math.h>

void cnb_rng_seed(struct cnb_rng *r, uint64_t seed, uint64_t stream)
{
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    r->has_spare = 0;
    r->spare = 0.0f;
    cnb_rng_u32(r);
    r->state += seed;
    cnb_rng_u32(r);
}

uint32_t cnb_rng_u32(struct cnb_rng *r)
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

float cnb_rng_uniform(struct cnb_rng *r)
{
    return (float)(cnb_rng_u32(r) >> 8) * (1.0f / 16777216.0f); /* 24 bits: exact floats */
}

float cnb_rng_normal(struct cnb_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do
        u1 = (cnb_rng_u32(r) + 0.5) / 4294967296.0;
    while (u1 <= 0.0);
    u2 = cnb_rng_u32(r) / 4294967296.0;
    double mag = sqrt(-2.0 * log(u1));
    r->spare = (float)(mag * sin(2.0 * M_PI * u2));
    r->has_spare = 1;
    return (float)(mag * cos(2.0 * M_PI * u2));
}

uint32_t cnb_rng_below(struct cnb_rng *r, uint32_t n)
{
    uint32_t threshold = (uint32_t)(-n) % n; /* Lemire-style rejection of the short tail */
    for (;;) {
        uint32_t x = cnb_rng_u32(r);
        if (x >= threshold)
            return x % n;
    }
}
