/*
 * alloc.h - the core's aligned allocation, the same the cnb_host table gives plugins.
 */
#ifndef CNB_ALLOC_H
#define CNB_ALLOC_H

#include <stddef.h>

void *cnb_alloc(size_t bytes); /* 64-byte aligned, zeroed; NULL on failure */
void cnb_free(void *p);

#endif
