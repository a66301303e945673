/*
 * pool.h - a small fork-join thread pool shared by the backend plugins that split their
 * calls over threads (openblas, direct). It is a static source compiled into each plugin,
 * not a library of the host: a plugin still needs nothing but the public headers. Two
 * builds: pool.c on its own pthreads (openblas, whose library has its own threads
 * anyway) and pool_omp.c on OpenMP's (direct, which shares them with oneDNN in chains).
 *
 * cfg->threads - 1 workers are started in init; pool_run() runs a task on the calling
 * thread (slot 0) and on the workers that join in time (slots 1..workers), and returns
 * when every one of them has finished. The task itself hands out its items (samples,
 * output blocks), usually from an atomic counter, so a worker that is asleep or has lost
 * its core never stalls the caller: the caller does the remaining items itself.
 *
 * Which thread takes which item therefore depends on the machine's load, and a result
 * must not. A slot's scratch (im2col columns, padded copies) may hold anything, but a
 * partial sum never belongs to a slot: a reduction over the batch (a weight or bias
 * gradient) is split into chunks of the batch, as many as pool_chunks() gives for the
 * thread count, the batch and the size of the sums, with bounds that pool_chunk() fixes
 * from N and that count alone; the chunks are the items handed out, each chunk sums its
 * own samples in order into its own partial sums, and the partial sums are added up in
 * chunk order. So the reduction order is fixed by the data, not by which thread got there
 * first: a step gives the same bits at a given thread count whatever else runs on the
 * machine.
 *
 * CNB_POOL_HANDOUT=caller (read by pool_start) keeps the workers out of every job, so
 * that the caller takes every item, as it does when the workers are held off their cores;
 * the thread count, and with it the chunks, stay as configured. The tests (suite "pool")
 * run each threaded kernel both ways and require the same bits.
 */
#ifndef CNB_BACKEND_POOL_H
#define CNB_BACKEND_POOL_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cnnbench/backend.h"

typedef struct thread_pool thread_pool;

typedef void (*task_fn)(void *arg, int slot); /* slot: 0 the caller, 1.. the workers */

/* Start `workers` threads (>= 1); NULL after logging, as `who`, what failed. Reads
 * CNB_POOL_HANDOUT (above). */
thread_pool *pool_start(const cnb_host *host, int workers, const char *who);

/* Run fn(arg, slot) on the caller (slot 0) and on the workers that join in time. */
void pool_run(thread_pool *pool, task_fn fn, void *arg);

/* The threads of the pool (the caller and its workers); 1 for NULL. */
int pool_threads(const thread_pool *pool);

/* Shares that pool_job_take_near() splits a job's items into: one a thread, up to this
 * many (threads past it share them). */
#define POOL_SHARES 16

/* One kernel call shared out item by item: a task takes pool_job_take_near() until it
 * gets an index past its last item. */
typedef struct pool_job {
    void *kernel;       /* the backend's kernel                    */
    const cnb_args *a;  /* the call's arguments                    */
    int threads;        /* the pool's (pool_threads())             */
    struct {
        _Alignas(64) atomic_int taken; /* items handed out of share s, on a line of its own */
    } share[POOL_SHARES];
} pool_job;

/*
 * The next of items [0, n) for the thread in `slot`, n when none is left. The items are
 * split in contiguous shares, one a thread: a thread takes its own share's in order, then,
 * once that is empty, those left in the others (a thread that is asleep or has lost its
 * core loses its items to the others; the caller alone takes them all). On a quiet
 * machine a thread so gets the same items call after call, and in every kernel the same
 * part of the batch: the outputs it wrote and the inputs it read last time are in its own
 * core's cache, not the other's (LeNet-5's fc1 on 2 threads: backward 1.2x faster than
 * with one counter for all). A task must give the same results whoever takes an item.
 */
static inline int pool_job_take_near(pool_job *job, int slot, int n)
{
    const int shares = job->threads < POOL_SHARES ? job->threads : POOL_SHARES;
    for (int k = 0; k < shares; k++) {
        const int s = (slot + k) % shares;
        const int lo = (int)((long long)n * s / shares);
        const int hi = (int)((long long)n * (s + 1) / shares);
        if (atomic_load_explicit(&job->share[s].taken, memory_order_relaxed) >= hi - lo)
            continue; /* empty: no need to write its line */
        const int i = lo + atomic_fetch_add_explicit(&job->share[s].taken, 1,
                                                     memory_order_relaxed);
        if (i < hi)
            return i;
    }
    return n;
}

/* Run fn on a fresh pool_job for (kernel, a): on the pool, or on the caller alone when
 * pool is NULL (one thread). */
static inline void pool_run_job(thread_pool *pool, task_fn fn, void *kernel, const cnb_args *a)
{
    pool_job job = {.kernel = kernel, .a = a, .threads = pool_threads(pool)};
    for (int s = 0; s < POOL_SHARES; s++)
        atomic_init(&job.share[s].taken, 0);
    if (pool)
        pool_run(pool, fn, &job);
    else
        fn(&job, 0);
}

/* Chunks per thread where the partial sums are small, and the most bytes of partial sums
 * that all chunks together may hold before a kernel takes fewer. A late worker (one that
 * wakes up, or gets its core back, after the caller has started) still holds a whole
 * chunk when the caller has run out of them, so chunks should be short: with one chunk
 * per thread openblas's LeNet-5 step (batch 256, 2 threads) took 4-7% longer than with
 * the samples handed out one by one (conv2's backward 3.20 ms against 2.88), with 8 as
 * long (9.64-10.86 ms against 9.56-10.88). But every chunk adds its sums to the pass
 * that adds them up: 8 per thread made AlexNet's conv backward 18% slower (457 ms
 * against 388 for conv1-5, batch 32), where one per thread costs nothing measurable and
 * its calls are long enough (25-170 ms) that a late start does not matter. */
#define POOL_CHUNKS_PER_THREAD 8
#define POOL_CHUNK_BYTES (1u << 20)

/* Chunks for a reduction over n items (the batch) at `threads` threads, each chunk
 * holding `bytes` of partial sums: POOL_CHUNKS_PER_THREAD per thread, halved until all of
 * them fit in POOL_CHUNK_BYTES or one per thread is left; no more than n unless that is
 * fewer than threads; 1 for one thread. Fixed by its arguments alone. */
static inline int pool_chunks(int threads, int n, size_t bytes)
{
    if (threads <= 1)
        return 1;
    int per = POOL_CHUNKS_PER_THREAD;
    while (per > 1 && (size_t)threads * per * bytes > POOL_CHUNK_BYTES)
        per /= 2;
    const int chunks = threads * per;
    return chunks <= n ? chunks : n > threads ? n : threads;
}

/* Items [*i0, *i1) of chunk c of `chunks` over n items: fixed by n and chunks alone.
 * Some chunks are empty when n < chunks. */
static inline void pool_chunk(int n, int chunks, int c, int *i0, int *i1)
{
    *i0 = (int)((long long)n * c / chunks);
    *i1 = (int)((long long)n * (c + 1) / chunks);
}

/* 1 when CNB_POOL_HANDOUT=caller; any other value than that or empty is logged, as
 * `who`, and ignored. For pool_start(). */
static inline int pool_handout_caller(const cnb_host *host, const char *who)
{
    const char *e = getenv("CNB_POOL_HANDOUT");
    if (!e || !*e)
        return 0;
    if (strcmp(e, "caller") == 0)
        return 1;
    host->log(CNB_LOG_WARN, who, "CNB_POOL_HANDOUT=%s ignored: the one value is 'caller' "
              "(the caller takes every item)", e);
    return 0;
}

/* Let the workers sleep now instead of spinning for the next job (the host is about to
 * run another backend's kernels); the next pool_run() wakes them. NULL is a no-op. */
void pool_park(thread_pool *pool);

/* Stop and join the workers, free the pool. NULL is a no-op. */
void pool_stop(const cnb_host *host, thread_pool *pool);

#endif /* CNB_BACKEND_POOL_H */
