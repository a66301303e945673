/*
 * hash.h - FNV-1a, 64 bit, over bytes: the fingerprint of a cell's settings and the check
 * that a kernel left its inputs as they were. Fast and well spread, not cryptographic: for
 * telling honest inputs apart, never against one made to collide.
 */
#ifndef CNB_HASH_H
#define CNB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CNB_FNV1A_BASIS 0xcbf29ce484222325ull /* FNV's offset basis: the hash of nothing */

/* The hash `h` (of what came before, or a basis) continued over `bytes` bytes at p. */
static inline uint64_t cnb_fnv1a(uint64_t h, const void *p, size_t bytes)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ b[i]) * 0x100000001b3ull; /* FNV's 64-bit prime */
    return h;
}

#endif
