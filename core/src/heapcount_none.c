/*
 * heapcount_none.c - the heap counter of a sanitizer or libFuzzer build, whose runtime
 * replaces malloc itself (heapcount.c would bypass it): nothing is counted, and
 * cnb_heap_counting() says so; see heapcount.h.
 */
#include "heapcount.h"

int cnb_heap_counting(void) { return 0; }
void cnb_heap_arm(void) {}
void cnb_heap_disarm(void) {}
cnb_heap_tally cnb_heap_read(void) { return (cnb_heap_tally){0, 0}; }
