/*
 * pool_omp.c - pool.h on OpenMP: pool_run() is one parallel region of the pool's thread
 * count, fn(arg, omp_get_thread_num()) on each thread. A backend built on it shares the
 * process's OpenMP threads with every other OpenMP user, oneDNN first: in a chain such as
 * direct+onednn the two backends then take turns on one set of threads, where two pools
 * would each keep their own threads spinning on the other's cores between calls.
 * CNB_POOL_HANDOUT=caller: no parallel region, fn(arg, 0) on the caller alone.
 */
#include <omp.h>

#include "pool.h"

struct thread_pool {
    int threads;     /* the caller and its workers                          */
    int caller_only; /* CNB_POOL_HANDOUT=caller: the caller takes every item */
};

thread_pool *pool_start(const cnb_host *host, int workers, const char *who)
{
    thread_pool *pool = host->alloc(sizeof *pool);
    if (!pool) {
        host->log(CNB_LOG_ERROR, who, "out of memory for the thread pool");
        return NULL;
    }
    pool->threads = workers + 1;
    pool->caller_only = pool_handout_caller(host, who);
    return pool;
}

void pool_run(thread_pool *pool, task_fn fn, void *arg)
{
    if (pool->caller_only) {
        fn(arg, 0);
        return;
    }
#pragma omp parallel num_threads(pool->threads)
    fn(arg, omp_get_thread_num());
}

int pool_threads(const thread_pool *pool) { return pool ? pool->threads : 1; }

/* OpenMP has no call to put its threads to sleep; OMP_WAIT_POLICY=passive does, for the
 * whole process. */
void pool_park(thread_pool *pool) { (void)pool; }

void pool_stop(const cnb_host *host, thread_pool *pool)
{
    if (pool)
        host->free(pool);
}
