/*
 * heapcount.c - the heap counter of heapcount.h: malloc and its kin defined here, with
 * default visibility, so that the dynamic linker binds the calls of every library in the
 * process to them; each adds what it was asked for to the tallies while counting is armed,
 * then forwards to glibc's own function (glibc 2.36 still exports __libc_malloc and its
 * kin; its __malloc_hook is gone). posix_memalign and aligned_alloc are built on
 * __libc_memalign, as glibc builds them. The tallies are atomics: OpenMP's worker threads
 * and the backends' pools allocate too.
 */
#include "heapcount.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

#define CNB_INTERPOSE __attribute__((visibility("default")))

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

static atomic_int armed;
static atomic_uint_fast64_t tally_bytes, tally_calls;

static inline void count(size_t bytes)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed) > 0) {
        atomic_fetch_add_explicit(&tally_bytes, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&tally_calls, 1, memory_order_relaxed);
    }
}

CNB_INTERPOSE void *malloc(size_t size)
{
    count(size);
    return __libc_malloc(size);
}

CNB_INTERPOSE void *calloc(size_t n, size_t size)
{
    count(n * size); /* an overflowing product is refused by glibc; the count is moot */
    return __libc_calloc(n, size);
}

CNB_INTERPOSE void *realloc(void *p, size_t size)
{
    count(size);
    return __libc_realloc(p, size);
}

CNB_INTERPOSE void *memalign(size_t alignment, size_t size)
{
    count(size);
    return __libc_memalign(alignment, size);
}

CNB_INTERPOSE void *aligned_alloc(size_t alignment, size_t size)
{
    count(size);
    return __libc_memalign(alignment, size);
}

CNB_INTERPOSE int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) /* glibc's rule */
        return EINVAL;
    count(size);
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

CNB_INTERPOSE void *valloc(size_t size)
{
    count(size);
    return __libc_valloc(size);
}

CNB_INTERPOSE void *pvalloc(size_t size)
{
    count(size);
    return __libc_pvalloc(size);
}

int cnb_heap_counting(void) { return 1; }

void cnb_heap_arm(void) { atomic_fetch_add(&armed, 1); }

void cnb_heap_disarm(void) { atomic_fetch_sub(&armed, 1); }

cnb_heap_tally cnb_heap_read(void)
{
    return (cnb_heap_tally){.bytes = atomic_load(&tally_bytes),
                            .calls = atomic_load(&tally_calls)};
}
