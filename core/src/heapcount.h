/*
 * heapcount.h - a count of the heap allocations the whole process makes: the bytes passed
 * to malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc and pvalloc,
 * and the number of those calls, from every thread and every library (plugins, OpenBLAS,
 * oneDNN, the OpenMP runtime), while counting is armed. The backend ABI says a kernel's
 * forward and backward allocate nothing: the bench counts what a timed step allocates,
 * and `check` what a kernel's forward and backward do.
 *
 * What it is: heapcount.c defines those functions in the cnnbench executable (and the
 * test program), which the dynamic linker then binds every library's calls to, each
 * counting and forwarding to glibc's own (__libc_malloc and its kin); armed or not, the
 * memory is glibc's, and free() stays glibc's. A sanitizer or libFuzzer build replaces
 * malloc itself, and gets heapcount_none.c instead: nothing is counted and
 * cnb_heap_counting() says 0, so that a count reads as unknown there, never as 0.
 *
 * What it is not: a profiler. It does not see memory a library maps itself (mmap), and a
 * malloc preloaded into the process (LD_PRELOAD=libjemalloc.so) is bypassed, not counted.
 */
#ifndef CNB_HEAPCOUNT_H
#define CNB_HEAPCOUNT_H

#include <stdint.h>

typedef struct cnb_heap_tally {
    uint64_t bytes; /* passed to the calls (realloc: the new size; calloc: n * size) */
    uint64_t calls;
} cnb_heap_tally;

/* 1 when this build counts; 0 in a sanitizer or libFuzzer build. */
int cnb_heap_counting(void);

/* Count from now until the matching disarm. Arming nests (counting stops at the last
 * disarm); the calls of every thread are counted while it is armed, not only this one's. */
void cnb_heap_arm(void);
void cnb_heap_disarm(void);

/* What was counted while armed since the process started; a window's count is the
 * difference of two reads. Zeros when the build does not count. */
cnb_heap_tally cnb_heap_read(void);

#endif
