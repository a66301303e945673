/*
 * alloc.c - aligned, zeroed allocation; see alloc.h.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

void *cnb_alloc(size_t bytes)
{
    size_t rounded = bytes ? (bytes + 63) / 64 * 64 : 64; /* aligned_alloc's size rule */
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void cnb_free(void *p) { free(p); }
