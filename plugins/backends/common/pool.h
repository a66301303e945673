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
 */
#ifndef CNB_BACKEND_POOL_H
#define CNB_BACKEND_POOL_H

#include <stdatomic.h>

#include "cnnbench/backend.h"

typedef struct thread_pool thread_pool;

typedef void (*task_fn)(void *arg, int slot); /* slot: 0 the caller, 1.. the workers */

/* Start `workers` threads (>= 1); NULL after logging, as `who`, what failed. */
thread_pool *pool_start(const cnb_host *host, int workers, const char *who);

/* Run fn(arg, slot) on the caller (slot 0) and on the workers that join in time. */
void pool_run(thread_pool *pool, task_fn fn, void *arg);

/* One kernel call shared out item by item: a task takes pool_job_take() until it gets an
 * index past its last item. */
typedef struct pool_job {
    void *kernel;       /* the backend's kernel                    */
    const cnb_args *a;  /* the call's arguments                    */
    atomic_int next;    /* the next item to hand out               */
} pool_job;

static inline int pool_job_take(pool_job *job)
{
    return atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
}

/* Run fn on a fresh pool_job for (kernel, a): on the pool, or on the caller alone when
 * pool is NULL (one thread). */
static inline void pool_run_job(thread_pool *pool, task_fn fn, void *kernel, const cnb_args *a)
{
    pool_job job = {.kernel = kernel, .a = a};
    atomic_init(&job.next, 0);
    if (pool)
        pool_run(pool, fn, &job);
    else
        fn(&job, 0);
}

/* Let the workers sleep now instead of spinning for the next job (the host is about to
 * run another backend's kernels); the next pool_run() wakes them. NULL is a no-op. */
void pool_park(thread_pool *pool);

/* Stop and join the workers, free the pool. NULL is a no-op. */
void pool_stop(const cnb_host *host, thread_pool *pool);

#endif /* CNB_BACKEND_POOL_H */
