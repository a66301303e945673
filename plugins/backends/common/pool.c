/*
 * pool.c - the fork-join pool of pool.h: cfg->threads - 1 workers plus the calling
 * thread, started in a backend's init. Moved here unchanged from openblas.c so that every
 * threaded backend shares it.
 *
 * Work is handed out dynamically: a job is a list of items (samples, output blocks) that
 * the caller and whichever workers join take one at a time from an atomic counter. A
 * worker joins a job only while it is open; the caller closes it once no item is left and
 * waits only for the workers that joined. So a worker that is asleep, or has lost its
 * core to another process (cnnbench's bench runs backends side by side in one process,
 * each with its own threads), never stalls the caller: the caller does its items itself.
 *
 * Which items a worker gets is left to chance on purpose; what a task computes must not
 * depend on it (pool.h: partial sums belong to chunks of the batch, not to slots).
 * CNB_POOL_HANDOUT=caller makes pool_run() call the task on the caller alone; the
 * workers are started all the same and simply never see a job.
 *
 * After a job a worker spins for POOL_SPIN_NS before it sleeps, yielding its core to any
 * other runnable thread as it does: on the 2-vCPU VM this was tuned on, waking a sleeping
 * thread took 30 us at best and over 0.5 ms at worst (a LeNet conv layer takes 0.5 ms),
 * and the calls of a training step come close together.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "pool.h"

#define POOL_SPIN_NS 2000000L

#define JOB_CLOSED 0x8000u /* state: no more workers may join */
#define JOB_JOINED 0x7fffu /* state: workers that joined      */

typedef struct pool_thread {
    thread_pool *pool;
    int slot;              /* 1 .. n */
    pthread_t thread;
} pool_thread;

struct thread_pool {
    atomic_uint state;     /* generation << 16 | JOB_CLOSED | joined workers            */
    atomic_uint done;      /* joined workers that have finished                         */
    atomic_int quit;
    atomic_int park;       /* pool_park(): spinning workers go to sleep at once         */
    task_fn fn;            /* the job: written before its state is published, read by  */
    void *arg;             /*   workers only after they joined                         */
    pthread_mutex_t mu;    /* guards sleepers and the wait on go                        */
    pthread_cond_t go;
    int sleepers;          /* workers blocked on go                                     */
    int n;                 /* workers started                                           */
    int caller_only;       /* CNB_POOL_HANDOUT=caller: no worker joins a job            */
    pool_thread *workers;  /* (n)                                                       */
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* 1 if state holds an open job of a generation other than `last`. */
static int job_open(unsigned state, unsigned last)
{
    return (state >> 16) != last && !(state & JOB_CLOSED);
}

/* Wait for an open job newer than `last` (returns its state) or quit (returns 0). */
static unsigned pool_wait_job(thread_pool *pool, unsigned last)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned spins = 1;; spins++) {
        unsigned s = atomic_load_explicit(&pool->state, memory_order_acquire);
        if (atomic_load_explicit(&pool->quit, memory_order_relaxed))
            return 0;
        if (job_open(s, last))
            return s;
        if (atomic_load_explicit(&pool->park, memory_order_relaxed))
            break;
        cpu_relax();
        if (spins % 64 == 0) {
            if (elapsed_ns(&t0) > POOL_SPIN_NS)
                break;
            sched_yield();
        }
    }
    unsigned s;
    pthread_mutex_lock(&pool->mu);
    pool->sleepers++;
    while (!job_open(s = atomic_load_explicit(&pool->state, memory_order_acquire), last) &&
           !atomic_load_explicit(&pool->quit, memory_order_relaxed))
        pthread_cond_wait(&pool->go, &pool->mu);
    pool->sleepers--;
    pthread_mutex_unlock(&pool->mu);
    return atomic_load_explicit(&pool->quit, memory_order_relaxed) ? 0 : s;
}

static void *pool_worker(void *p)
{
    pool_thread *w = p;
    thread_pool *pool = w->pool;
    unsigned last = 0; /* generation of the latest job joined */
    for (;;) {
        unsigned s = pool_wait_job(pool, last);
        if (!s)
            return NULL;
        /* join unless the caller closed it meanwhile (then wait for the next) */
        while (job_open(s, last) &&
               !atomic_compare_exchange_weak_explicit(&pool->state, &s, s + 1,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
            ;
        if (!job_open(s, last))
            continue;
        last = s >> 16;
        pool->fn(pool->arg, w->slot);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
}

void pool_run(thread_pool *pool, task_fn fn, void *arg)
{
    if (pool->caller_only) {
        fn(arg, 0);
        return;
    }
    unsigned gen = ((atomic_load_explicit(&pool->state, memory_order_relaxed) >> 16) + 1) &
                   0xffffu;
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->park, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->state, (gen ? gen : 1) << 16, memory_order_release);
    pthread_mutex_lock(&pool->mu);
    if (pool->sleepers)
        pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    fn(arg, 0);
    unsigned joined = atomic_fetch_or_explicit(&pool->state, JOB_CLOSED,
                                               memory_order_acq_rel) & JOB_JOINED;
    for (unsigned spins = 1;
         atomic_load_explicit(&pool->done, memory_order_acquire) != joined; spins++)
        if (spins % 1024 == 0)
            sched_yield(); /* a worker lost its core while on its last item */
        else
            cpu_relax();
}

int pool_threads(const thread_pool *pool) { return pool ? pool->n + 1 : 1; }

void pool_park(thread_pool *pool)
{
    if (pool)
        atomic_store_explicit(&pool->park, 1, memory_order_relaxed);
}

void pool_stop(const cnb_host *host, thread_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->quit, 1);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pthread_cond_destroy(&pool->go);
    pthread_mutex_destroy(&pool->mu);
    host->free(pool->workers);
    host->free(pool);
}

thread_pool *pool_start(const cnb_host *host, int workers, const char *who)
{
    thread_pool *pool = host->alloc(sizeof *pool);
    if (!pool)
        return NULL;
    pool->workers = host->alloc(sizeof *pool->workers * workers);
    if (!pool->workers) {
        host->free(pool);
        return NULL;
    }
    pool->caller_only = pool_handout_caller(host, who);
    atomic_init(&pool->state, JOB_CLOSED); /* generation 0, closed */
    atomic_init(&pool->done, 0);
    atomic_init(&pool->quit, 0);
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->go, NULL);
    for (int i = 0; i < workers; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].slot = i + 1;
        int err = pthread_create(&pool->workers[i].thread, NULL, pool_worker,
                                 &pool->workers[i]);
        if (err) {
            host->log(CNB_LOG_ERROR, who, "cannot start worker thread %d of %d: %s", i + 1,
                      workers, strerror(err));
            pool_stop(host, pool);
            return NULL;
        }
        pool->n = i + 1;
    }
    return pool;
}
