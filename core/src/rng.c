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

#define PCG_MULT 6364136223846793005ULL

/* state_k = M^k state + (M^(k-1) + ... + 1) inc: square (M, plus) for each bit of delta. */
void cnb_rng_advance(struct cnb_rng *r, uint64_t delta)
{
    uint64_t mult = PCG_MULT, plus = r->inc, acc_mult = 1, acc_plus = 0;
    for (; delta; delta >>= 1) {
        if (delta & 1)
            acc_mult *= mult, acc_plus = acc_plus * mult + plus;
        plus = (mult + 1) * plus;
        mult *= mult;
    }
    r->state = acc_mult * r->state + acc_plus;
}

/* Bit by bit from the lowest: bit k of the distance is set when the states still differ
 * in bit k after the lower bits' jumps (a jump of 2^k draws changes no bit below k). */
uint64_t cnb_rng_distance(const struct cnb_rng *from, const struct cnb_rng *to)
{
    uint64_t cur = from->state, mult = PCG_MULT, plus = from->inc, bit = 1, d = 0;
    while (cur != to->state && bit) {
        if ((cur & bit) != (to->state & bit)) {
            cur = cur * mult + plus;
            d |= bit;
        }
        bit <<= 1;
        plus = (mult + 1) * plus;
        mult *= mult;
    }
    return d;
}
