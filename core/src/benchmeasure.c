/*
 * benchmeasure.c - one (model, threads) group of a bench: each backend's network and its
 * warm-up, the peers' processes, then rounds over them all in a shuffled order with the
 * FMA probe among them, first the whole network, then the per-layer pass (backends only);
 * the samples become rows, and the fastest backend's and each peer's fastest tuned way's
 * pairs from the same rounds, per pass, their ratios. A backend's rows also say what its
 * network holds and what each of its timed passes allocated on the heap (heapcount.h).
 */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchint.h"
#include "clock.h"
#include "heapcount.h"
#include "log.h"
#include "net.h"
#include "proccount.h"
#include "rng.h"

/* One backend's network, or one way of running a peer, inside a (model, threads) group,
 * and its samples (seconds). */
typedef struct entry {
    int b;                        /* the backend's index; -1 for the peer              */
    bench_peer peer;              /* the peer's process (b = -1)                       */
    results *r;                   /* the peer's: where it says that it broke off       */
    int broken;                   /* the peer broke off: no rows                       */
    cnb_conf model;
    cnb_net net;
    int batch, min_reps;
    double min_time, sample_time, create_ms;
    int steps[2];                 /* back to back per whole-network sample, forward and
                                     training; 0: not yet calibrated                    */
    double *fwd, *train;          /* whole network, [reps], seconds per step (train: NAN
                                     for a peer that only infers)                       */
    int *position;                /* and each one's place in its round's order [reps]   */
    double *at;                   /* and when its turn began (cnb_now) [reps]           */
    double *switches, *faults;    /* and what its process went through in the turn, both
                                     passes (proccount.h; NAN: unknown) [reps]          */
    int turn;                     /* the place interleave() gives the sample taken now  */
    double *heap[4];              /* and what a step allocated on the heap: forward bytes,
                                     calls, training step bytes, calls [reps] (backends) */
    int reps;
    double sum_fwd, sum_train;
    double *lf, *lb;              /* per layer, [layer_reps][n_layers]      */
    double *llf, *llb;            /* its library calls alone, or NAN        */
    int layer_reps;
    double layer_seconds;         /* spent in the per-layer pass            */
    double peak_mb;               /* its peak resident memory's growth, MiB */
    cnb_net_memory mem;           /* what its network holds, after warm-up  */
} entry;

/* A field of /proc/self/status in KiB (VmRSS, VmHWM); -1 when it cannot be read. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && kb < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* The process's peak resident memory reset to its current one (Linux 4.0 and later), so
 * that the next VmHWM is the peak of what follows; 0, or -1 where it cannot be. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int rc = f && fputs("5", f) >= 0 ? 0 : -1;
    if (f && fclose(f))
        rc = -1;
    return rc;
}

static int setup_entry(const bconf *bc, const bmodel *m, int b, int threads, entry *e,
                       const cnb_registry *reg)
{
    const override *o = &m->ov[b];
    e->b = b, e->peer.pid = -1;
    e->batch = o->batch ? o->batch : m->batch;
    e->min_reps = o->min_reps ? o->min_reps : bc->min_reps;
    e->min_time = o->min_time >= 0 ? o->min_time : bc->min_time;
    e->sample_time = bench_sample_time(bc, m);
    return cnb_bench_build(&e->net, &e->model, reg, m->path, &m->vars, bc->backends[b],
                           threads, e->batch, bc->seed, &e->create_ms);
}

int cnb_bench_build(cnb_net *net, cnb_conf *model, const cnb_registry *reg, const char *path,
                    const cnb_vars *vars, const char *backend, int threads, int batch,
                    uint64_t seed, double *create_ms)
{
    int rc = cnb_net_load(net, model, reg, path, vars);
    if (rc == 0)
        rc = cnb_net_init_params(net, seed);
    double t0 = cnb_now();
    if (rc == 0)
        rc = cnb_net_bind(net, backend, threads, batch);
    *create_ms = (cnb_now() - t0) * 1e3;
    if (rc == 0)
        cnb_bench_synthetic_batch(net, seed);
    return rc;
}

static void free_entry(entry *e)
{
    free(e->fwd), free(e->train), free(e->lf), free(e->lb), free(e->llf), free(e->llb);
    free(e->position), free(e->at), free(e->switches), free(e->faults);
    for (int k = 0; k < 4; k++)
        free(e->heap[k]);
    if (e->b < 0)
        bench_peer_stop(&e->peer);
    else
        cnb_net_free(&e->net);
    cnb_conf_free(&e->model);
}

void cnb_bench_synthetic_batch(cnb_net *net, uint64_t seed)
{
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_DATA);
    size_t n = (size_t)net->batch * cnb_shape_size(net->input);
    for (size_t i = 0; i < n; i++)
        net->x[i] = cnb_rng_normal(&rng);
    for (int i = 0; i < net->batch; i++)
        net->labels[i] = (int32_t)cnb_rng_below(&rng, (uint32_t)net->classes);
}

int cnb_bench_step(cnb_net *net)
{
    float loss;
    int rc = cnb_net_forward(net, 1, &loss);
    if (rc == 0)
        rc = cnb_net_backward(net);
    if (rc == 0)
        cnb_net_sgd(net, (float)CNB_BENCH_LR, (float)CNB_BENCH_MOMENTUM, (float)CNB_BENCH_DECAY);
    return rc;
}

/* Warm-up: caches, page faults, JIT, pools; then the backend parked. */
static int warm_up(entry *e, int warmup)
{
    int rc = 0;
    for (int w = 0; w < warmup && rc == 0; w++) {
        float loss;
        rc = cnb_net_forward(&e->net, 0, &loss);
        if (rc == 0)
            rc = cnb_bench_step(&e->net);
    }
    cnb_net_park(&e->net);
    return rc;
}

int cnb_bench_memory(cnb_net *net, cnb_conf *model, const cnb_registry *reg,
                     const char *path, const cnb_vars *vars, const char *backend, int threads,
                     int batch, uint64_t seed, double *peak_mib)
{
    double create_ms;
    float loss;
    long base = reset_peak() == 0 ? status_kb("VmRSS") : -1;
    int rc = cnb_bench_build(net, model, reg, path, vars, backend, threads, batch, seed,
                             &create_ms);
    if (rc == 0)
        rc = cnb_net_forward(net, 0, &loss);
    if (rc == 0)
        rc = cnb_bench_step(net);
    long hwm = base >= 0 ? status_kb("VmHWM") : -1;
    *peak_mib = rc == 0 && hwm >= 0 ? (hwm - base) / 1024.0 : NAN;
    return rc;
}

static const char *program = "/proc/self/exe"; /* cnb_bench_set_program's */

void cnb_bench_set_program(const char *path) { program = path; }

/* Backend b's network at (m, threads) in a process of its own: `program summary MODEL
 * --backend B ...` (cnb_bench_memory), whose peak resident memory line it reads; in MiB,
 * or NAN when the program could not say. A fork that only execs, so that no OpenMP
 * runtime of this process is used in the child (GNU libgomp hangs in a child forked
 * after a parallel region). */
static double memory_of(const bconf *bc, const bmodel *m, int b, int threads,
                        const cnb_registry *reg)
{
    enum { MAX_ARGS = 16 + 2 * CNB_MAX_VARS + 2 * 64 };
    char nums[2][16], sets[CNB_MAX_VARS][512], out[8192];
    const char *argv[MAX_ARGS];
    int n = 0;
    snprintf(nums[0], sizeof nums[0], "%d", threads);
    snprintf(nums[1], sizeof nums[1], "%d", m->ov[b].batch ? m->ov[b].batch : m->batch);
    argv[n++] = program, argv[n++] = "summary", argv[n++] = m->path, argv[n++] = "-q";
    argv[n++] = "--backend", argv[n++] = bc->backends[b];
    argv[n++] = "--threads", argv[n++] = nums[0], argv[n++] = "--batch", argv[n++] = nums[1];
    for (int v = 0; v < m->vars.n; v++) {
        snprintf(sets[v], sizeof sets[v], "%s=%s", m->vars.names[v], m->vars.values[v]);
        argv[n++] = "--set", argv[n++] = sets[v];
    }
    for (int i = 0; i < reg->n && n + 3 < MAX_ARGS; i++) /* every plugin file, once */
        if (i == 0 || strcmp(reg->items[i].path, reg->items[i - 1].path))
            argv[n++] = "--plugin", argv[n++] = reg->items[i].path;
    argv[n] = NULL;
    FILE *quiet = fopen("/dev/null", "w"); /* the bench says its own errors for it */
    const int status = bench_capture((char *const *)argv, out, sizeof out, quiet);
    if (quiet)
        fclose(quiet);
    const char *line = strstr(out, "peak resident memory: ");
    double mib = NAN;
    if (status != 0 || !line || sscanf(line, "peak resident memory: %lf MiB", &mib) != 1)
        return NAN;
    return mib;
}

/* Backend b's entry, built and warmed up, what its network holds, and its peak resident
 * memory measured apart in a process of its own (memory_of): in this process it would
 * depend on what the entries before it left (freed heap kept resident, OpenBLAS's
 * buffers, oneDNN's caches). */
static int backend_entry(const bconf *bc, const bmodel *m, int b, int threads, entry *e,
                         const cnb_registry *reg)
{
    e->peak_mb = memory_of(bc, m, b, threads, reg);
    int rc = setup_entry(bc, m, b, threads, e, reg);
    if (rc == 0)
        rc = warm_up(e, bc->warmup);
    if (rc == 0)
        e->mem = cnb_net_memory_of(&e->net);
    return rc;
}

static void shuffle(int *order, int n, struct cnb_rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnb_rng_below(rng, (uint32_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

static int grow(double **p, int n)
{
    double *q = realloc(*p, (size_t)n * sizeof *q);
    if (!q)
        return CNB_ENOMEM;
    *p = q;
    return 0;
}

/* One timed repetition of one backend; sets *enough once it has its samples. */
typedef int (*rep_fn)(entry *e, int *enough);

/* Rounds over the entries (the backends, then the peers' ways), in a freshly shuffled
 * order each round, until every one has enough: drift and neighbours' noise then fall on
 * all of them alike. The FMA probe takes a place of its own in every round's order (slot
 * ne), so it sees the machine as the kernels around it do; every backend before it has
 * been parked. */
static int interleave(entry *es, int ne, struct cnb_rng *rng, rep_fn rep, cnb_peak *peak)
{
    int order[MAX_BACKENDS + MAX_WAYS + 1], enough[MAX_BACKENDS + MAX_WAYS] = {0};
    int left = ne, rc = 0;
    for (int k = 0; k <= ne; k++)
        order[k] = k;
    for (int round = 0; round < MAX_REPS && left > 0 && rc == 0; round++) {
        shuffle(order, ne + 1, rng);
        for (int i = 0; i <= ne && rc == 0; i++) {
            int k = order[i];
            if (k == ne) {
                rc = cnb_peak_probe(peak);
                continue;
            }
            es[k].turn = i;
            if (!enough[k] && (rc = rep(&es[k], &enough[k])) == 0)
                left -= enough[k];
            if (es[k].b >= 0)
                cnb_net_park(&es[k].net); /* its spinning threads would slow the next one */
        }
    }
    return rc;
}

/* steps[0] inference forwards back to back, then steps[1] training steps, of a backend:
 * the seconds of one of each, and what one of each allocated on the heap, whichever
 * thread did: heap[] = forward bytes and calls, training step bytes and calls. */
static int time_backend(entry *e, const int steps[2], double *fwd, double *train,
                        double heap[4])
{
    float loss;
    int rc = 0;
    cnb_heap_arm();
    const cnb_heap_tally h0 = cnb_heap_read();
    double t0 = cnb_now();
    for (int k = 0; k < steps[0] && rc == 0; k++)
        rc = cnb_net_forward(&e->net, 0, &loss);
    double t1 = cnb_now();
    const cnb_heap_tally h1 = cnb_heap_read();
    for (int k = 0; k < steps[1] && rc == 0; k++)
        rc = cnb_bench_step(&e->net);
    double t2 = cnb_now();
    const cnb_heap_tally h2 = cnb_heap_read();
    cnb_heap_disarm();
    *fwd = (t1 - t0) / steps[0], *train = (t2 - t1) / steps[1];
    const uint64_t counts[4] = {h1.bytes - h0.bytes, h1.calls - h0.calls,
                                h2.bytes - h1.bytes, h2.calls - h1.calls};
    for (int k = 0; k < 4; k++)
        heap[k] = (double)counts[k] / steps[k / 2];
    return rc;
}

/* Does entry e time training steps (every backend does; a peer that only infers not)? */
static int trains(const entry *e)
{
    return e->b >= 0 || e->peer.inference != 1;
}

static int time_entry(entry *e, const int steps[2], double *fwd, double *train,
                      double heap[4])
{
    if (e->b >= 0)
        return time_backend(e, steps, fwd, train, heap);
    e->broken = bench_peer_step(&e->peer, steps, fwd, train, e->r);
    return 0;
}

/* Whole network: a sample of entry e's inference forwards, then of its training steps,
 * each pass as many back to back as last sample_time (calibrated on its first turn on the
 * fastest of 3 single steps, untimed), so that a moment's preemption on this shared
 * machine is spread over the sample rather than making it an outlier of one step. A peer
 * that breaks off is left out of the rounds from then on, the bench going on without it. */
static int rep_whole(entry *e, int *enough)
{
    double **grown[] = {&e->fwd,     &e->train,   &e->at,      &e->switches, &e->faults,
                        &e->heap[0], &e->heap[1], &e->heap[2], &e->heap[3]};
    int rc = 0;
    for (int g = 0; g < (e->b >= 0 ? 9 : 5) && rc == 0; g++)
        rc = grow(grown[g], e->reps + 1);
    int *position = NULL;
    if (rc == 0 && !(position = realloc(e->position, (size_t)(e->reps + 1) * sizeof *position)))
        rc = CNB_ENOMEM;
    if (rc)
        return rc;
    e->position = position;
    double fwd, train, heap[4];
    if (e->steps[0] == 0) { /* the fastest of 3: the first after a park is slow */
        double least[2] = {INFINITY, INFINITY};
        for (int k = 0; k < 3 && rc == 0 && !e->broken; k++)
            if ((rc = time_entry(e, (const int[2]){1, 1}, &fwd, &train, heap)) == 0)
                least[0] = fmin(least[0], fwd), least[1] = fmin(least[1], train);
        for (int pass = 0; pass < 2; pass++) /* infinite: a peer that only infers */
            e->steps[pass] =
                (int)fmax(1.0, fmin(ceil(e->sample_time / least[pass]), MAX_STEPS));
    }
    const int pid = e->b >= 0 ? (int)getpid() : e->peer.pid;
    cnb_proc_counts c0, c1;
    cnb_proc_counts_read(pid, &c0);
    const double at = cnb_now();
    if (rc == 0 && !e->broken)
        rc = time_entry(e, e->steps, &fwd, &train, heap);
    if (rc || e->broken)
        return *enough = e->broken, rc;
    cnb_proc_counts_read(pid, &c1);
    e->at[e->reps] = at;
    e->switches[e->reps] = c1.switches - c0.switches;
    e->faults[e->reps] = c1.faults - c0.faults;
    e->fwd[e->reps] = fwd;
    e->train[e->reps] = train;
    e->position[e->reps] = e->turn;
    for (int k = 0; k < 4 && e->b >= 0; k++)
        e->heap[k][e->reps] = heap[k];
    e->sum_fwd += fwd * e->steps[0];
    e->sum_train += trains(e) ? train * e->steps[1] : 0;
    e->reps++;
    *enough = e->reps >= e->min_reps && e->sum_fwd >= e->min_time &&
              (!trains(e) || e->sum_train >= e->min_time);
    return rc;
}

/* The separate per-layer pass: each layer's forward and backward timed on its own; a
 * fused run's as one, its first layer's (net.h). */
static int rep_layers(entry *e, int *enough)
{
    int nl = e->net.n, rc = 0;
    double **grown[] = {&e->lf, &e->lb, &e->llf, &e->llb};
    for (int g = 0; g < 4 && rc == 0; g++)
        rc = grow(grown[g], (e->layer_reps + 1) * nl);
    if (rc)
        return rc;
    const size_t at = (size_t)e->layer_reps * nl;
    float loss;
    double t0 = cnb_now();
    rc = cnb_net_forward_timed(&e->net, 1, &loss, e->lf + at);
    if (rc == 0)
        rc = cnb_net_backward_timed(&e->net, e->lb + at);
    e->layer_seconds += cnb_now() - t0;
    /* then each kernel's library calls alone, where its backend can split them out (the
     * outputs they leave are overwritten by the next repetition) */
    for (int i = 0; i < nl && rc == 0; i++)
        for (int dir = 0; dir < 2 && rc == 0; dir++) {
            double t1 = cnb_now();
            rc = cnb_net_library_pass(&e->net, i, dir);
            (dir ? e->llb : e->llf)[at + i] = rc == 0 ? cnb_now() - t1 : NAN;
            rc = rc == CNB_ENOTSUP ? 0 : rc;
        }
    e->layer_reps++;
    *enough = e->layer_reps >= e->min_reps && e->layer_seconds >= e->min_time;
    return rc;
}

/* Training FLOPs of one layer's backward per sample: conv and fc compute the data and
 * the weight gradients (2x forward; 1x for a first layer with no data gradient). */
static double backward_flops(const cnb_net *net, int i)
{
    const cnb_net_layer *L = &net->layers[i];
    if (L->layer->n_params == 0)
        return cnb_net_layer_flops(net, i);
    return (i == 0 ? 1.0 : 2.0) * cnb_net_layer_flops(net, i);
}

/* The FLOPs per sample of what layer i's time in the per-layer pass covers: its own, or
 * for a fused run's first layer every layer of the run. */
static double timed_flops(const cnb_net *net, int i, int backward)
{
    double f = 0.0;
    for (int k = i; k < i + (net->layers[i].fuse_n ? net->layers[i].fuse_n : 1); k++)
        f += backward ? backward_flops(net, k) : cnb_net_layer_flops(net, k);
    return f;
}

static void to_ms(const double *sec, int n, int stride, cnb_sample_stats *s)
{
    double *ms = malloc((size_t)(n ? n : 1) * sizeof *ms);
    if (!ms)
        return;
    for (int i = 0; i < n; i++)
        ms[i] = sec[(size_t)i * stride] * 1e3;
    cnb_sample_summarize(ms, n, s);
    free(ms);
}

/* The FLOPs per sample of a forward pass and a training step, counted on net. */
static void net_flops(const cnb_net *net, double flops[2])
{
    flops[0] = flops[1] = 0;
    for (int i = 0; i < net->n; i++) {
        flops[0] += cnb_net_layer_flops(net, i);
        flops[1] += cnb_net_layer_flops(net, i) + backward_flops(net, i);
    }
}

/* Row w's memory columns from entry e: what its network holds and what one pass (train:
 * one training step) allocated on the heap; unknown for a peer. */
static void set_memory(row *w, const entry *e, int train)
{
    w->activation_bytes = w->param_bytes = w->kernel_bytes = NAN;
    w->alloc_bytes = w->allocs = w->alloc_bytes_max = NAN;
    if (e->b < 0)
        return;
    w->activation_bytes = (double)e->mem.activations;
    w->param_bytes = (double)e->mem.params;
    w->kernel_bytes = e->mem.kernels_known ? (double)e->mem.kernels : NAN;
    if (!cnb_heap_counting() || !e->reps)
        return;
    cnb_sample_stats bytes, calls;
    cnb_sample_summarize(e->heap[2 * train], e->reps, &bytes);
    cnb_sample_summarize(e->heap[2 * train + 1], e->reps, &calls);
    w->alloc_bytes = bytes.median, w->allocs = calls.median, w->alloc_bytes_max = bytes.max;
}

/* Does layer j's kernel compute by algorithm alg (cnb_net_layer_algorithm)? */
static int layer_takes(const cnb_net *net, int j, const char *alg)
{
    const char *its = cnb_net_layer_algorithm(net, j);
    return its && !strcmp(its, alg);
}

/* The layers of net whose kernels do fewer multiply-adds than their op's definition, by
 * algorithm, "conv3 conv4 conv5: winograd" ("; " between algorithms), into buf; "" none. */
static void net_algorithms(const cnb_net *net, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < net->n; i++) {
        const char *alg = cnb_net_layer_algorithm(net, i);
        int seen = 0;
        for (int j = 0; alg && j < i; j++)
            seen |= layer_takes(net, j, alg);
        if (!alg || seen)
            continue;
        for (int j = i; j < net->n && used < len; j++)
            if (layer_takes(net, j, alg))
                used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                         j > i ? " " : used ? "; " : "", net->layers[j].name);
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, ": %s", alg);
    }
}

/* The whole network's rows of entry e: forward, then the training step (none for a peer
 * that only infers); GFLOP/s from flops (per sample, net_flops); with its samples, sample
 * i from round i (as in add_pair), whose FMA probe is probes[i]; the group's timed
 * passes began at t0. */
static int add_net_rows(results *r, const bconf *bc, const bmodel *m, int threads,
                        const entry *e, const double flops[2], const double *probes,
                        double t0)
{
    row *grown = realloc(r->rows, (size_t)(r->n_rows + 2) * sizeof *grown);
    if (!grown)
        return CNB_ENOMEM;
    r->rows = grown;
    for (int pass = 0; pass < 1 + trains(e); pass++) {
        row *w = &r->rows[r->n_rows++];
        memset(w, 0, sizeof *w);
        snprintf(w->model, sizeof w->model, "%s", m->name);
        snprintf(w->backend, sizeof w->backend, "%s",
                 e->b >= 0 ? bc->backends[e->b] : e->peer.backend);
        snprintf(w->how, sizeof w->how, "%s", e->b >= 0 ? "" : e->peer.how);
        w->peer = e->b >= 0 ? 0 : 1 + e->peer.peer;
        w->batch = e->batch, w->threads = threads, w->train = pass, w->steps = e->steps[pass];
        to_ms(pass ? e->train : e->fwd, e->reps, 1, &w->s);
        if (!(w->samples = malloc((size_t)(e->reps ? e->reps : 1) * sizeof *w->samples)))
            return CNB_ENOMEM;
        for (int i = 0; i < e->reps; i++)
            w->samples[i] = (bench_sample){.position = e->position[i], .at = e->at[i] - t0,
                                           .ms = (pass ? e->train : e->fwd)[i] * 1e3,
                                           .probe = probes[i], .switches = e->switches[i],
                                           .faults = e->faults[i]};
        w->ips = e->batch / (w->s.median * 1e-3);
        w->create_ms = e->b >= 0 ? e->create_ms : e->peer.create_ms;
        w->gflops = flops[pass] * e->batch / (w->s.median * 1e-3) * 1e-9;
        w->peak_mb = e->b >= 0 ? e->peak_mb : e->peer.peak_mb;
        set_memory(w, e, pass);
        if (e->b >= 0) {
            cnb_net_fused_runs(&e->net, w->fused, sizeof w->fused);
            net_algorithms(&e->net, w->algorithms, sizeof w->algorithms);
        }
    }
    return 0;
}

/* Every sample's machine factor in the group's rows from rows[first] on, and each row's
 * own CV, pass by pass: the factor is the median, over the NEAR_SAMPLES samples of the
 * group's other rows of the pass whose turns began nearest, of their time over their
 * row's median (cnb_machine_factors). A spell of the machine running slow, seconds to
 * minutes here, slows every sample taken in it: a sample over its factor keeps its row's
 * own deviation. */
#define NEAR_SAMPLES 4
static int set_own_spread(results *r, int first)
{
    int n = 0, rc = 0;
    for (int k = first; k < r->n_rows; k++)
        n += r->rows[k].s.n;
    int *ent = malloc((size_t)(n ? n : 1) * sizeof *ent);
    double *t = malloc((size_t)(n ? n : 1) * sizeof *t);
    double *rel = malloc((size_t)(n ? n : 1) * sizeof *rel);
    double *factor = malloc((size_t)(n ? n : 1) * sizeof *factor);
    if (!ent || !t || !rel || !factor)
        rc = CNB_ENOMEM;
    for (int train = 0; train < 2 && rc == 0; train++) {
        int m = 0;
        for (int k = first; k < r->n_rows; k++)
            for (int i = 0; r->rows[k].train == train && i < r->rows[k].s.n; i++, m++) {
                const bench_sample *x = &r->rows[k].samples[i];
                ent[m] = k, t[m] = x->at, rel[m] = x->ms / r->rows[k].s.median;
            }
        if (cnb_machine_factors(ent, t, rel, m, NEAR_SAMPLES, factor)) {
            rc = CNB_ENOMEM;
            break;
        }
        m = 0; /* the rows again, in the same order: each its factors and own CV */
        for (int k = first; k < r->n_rows; k++) {
            row *w = &r->rows[k];
            if (w->train != train)
                continue;
            for (int i = 0; i < w->s.n; i++) { /* rel[] is spent: the samples over them */
                w->samples[i].machine = factor[m + i];
                rel[m + i] = w->samples[i].ms / factor[m + i];
            }
            cnb_sample_stats own;
            cnb_sample_summarize(rel + m, w->s.n, &own);
            w->cv_own = own.cv;
            m += w->s.n;
        }
    }
    free(ent), free(t), free(rel), free(factor);
    return rc;
}

/* The per-layer pass's rows of entry e: each layer forward, then backward. A fused run's
 * time is its first layer's, with the FLOPs of the whole run; its other layers have no
 * samples but the layer they are fused into. A view (CNB_LAYER_VIEW) has none either. */
static int add_layer_rows(results *r, const bconf *bc, const bmodel *m, int threads,
                          const entry *e)
{
    int nl = e->net.n;
    layer_row *lg = realloc(r->layers, (size_t)(r->n_layers + 2 * nl) * sizeof *lg);
    if (!lg)
        return CNB_ENOMEM;
    r->layers = lg;
    for (int i = 0; i < nl; i++)
        for (int dir = 0; dir < 2; dir++) {
            const cnb_net_layer *L = &e->net.layers[i];
            layer_row *w = &r->layers[r->n_layers++];
            memset(w, 0, sizeof *w);
            snprintf(w->model, sizeof w->model, "%s", m->name);
            snprintf(w->backend, sizeof w->backend, "%s", bc->backends[e->b]);
            if (L->fused_on)
                snprintf(w->ran_on, sizeof w->ran_on, "%s", L->fused_on);
            else
                snprintf(w->ran_on, sizeof w->ran_on, "%s%s",
                         L->view ? "view" : L->ctx.ran_on ? L->ctx.ran_on : "host",
                         L->ctx.mixed ? "+mixed" : "");
            snprintf(w->layer, sizeof w->layer, "%s", L->name);
            snprintf(w->plugin, sizeof w->plugin, "%s", L->desc->hdr.name);
            snprintf(w->layout, sizeof w->layout, "%s", /* a run gives NCHW */
                     L->fused_on ? "nchw" : L->ctx.out.name);
            w->batch = e->batch, w->threads = threads, w->backward = dir;
            cnb_net_run_name(&e->net, i, w->run, sizeof w->run);
            const char *alg = cnb_net_layer_algorithm(&e->net, i);
            snprintf(w->algorithm, sizeof w->algorithm, "%s", alg ? alg : "");
            if (L->fused_on && L->fuse_first != i) /* timed with the run's first layer */
                snprintf(w->fused_into, sizeof w->fused_into, "%s",
                         e->net.layers[L->fuse_first].name);
            if (w->fused_into[0] || L->view) { /* no samples of its own */
                w->gflops = NAN;
                continue;
            }
            to_ms((dir ? e->lb : e->lf) + i, e->layer_reps, nl, &w->s);
            if (!isnan((dir ? e->llb : e->llf)[i]))
                to_ms((dir ? e->llb : e->llf) + i, e->layer_reps, nl, &w->lib);
            w->gflops = timed_flops(&e->net, i, dir) * e->batch / (w->s.median * 1e-3) * 1e-9;
        }
    return 0;
}

/* What the group measured, on stdout: from the group's first row on, each training step
 * (the forward pass of a peer that only infers), the passes' time. */
static void print_group(const results *r, int first, int threads, double whole,
                        double layers, const cnb_peak *peak)
{
    for (int k = first; k < r->n_rows; k++) {
        const row *w = &r->rows[k];
        if (!w->train && k + 1 < r->n_rows && r->rows[k + 1].train)
            continue; /* its training step follows */
        printf("  %-24s %s %9.1f img/s (median %8.2f ms, IQR %.2f-%.2f, CV %4.1f%%, own "
               "%4.1f%%, %d reps)%s\n", w->backend, w->train ? "train" : "infer", w->ips,
               w->s.median, w->s.q1, w->s.q3, 100 * w->s.cv, 100 * w->cv_own, w->s.n,
               w->cv_own >= CNB_UNSTABLE_CV ? "  unstable" : "");
    }
    printf("  (%.1f s whole-network, %.1f s per-layer pass; FMA probes so far at %d "
           "thread%s: %d, max %.1f GFLOP/s)\n", whole, layers, threads,
           threads == 1 ? "" : "s", peak->n, peak->gflops);
}

static cnb_peak *peak_for(results *r, int threads)
{
    for (int i = 0; i < r->n_peaks; i++)
        if (r->peaks[i].threads == threads)
            return &r->peaks[i];
    return NULL;
}

/* The entry with the lowest median in pass `train` among es[from, to) that have samples
 * of it; peer >= 0: only that peer's tuned ways. NULL when there is none. */
static const entry *fastest(const entry *es, int from, int to, int train, int peer)
{
    const entry *best = NULL;
    double best_ms = INFINITY;
    for (int k = from; k < to; k++) {
        if (!es[k].reps || es[k].broken || (train && !trains(&es[k])) ||
            (peer >= 0 && (es[k].peer.peer != peer || !es[k].peer.way.tuned)))
            continue;
        cnb_sample_stats s;
        to_ms(train ? es[k].train : es[k].fwd, es[k].reps, 1, &s);
        if (s.median < best_ms)
            best = &es[k], best_ms = s.median;
    }
    return best;
}

/* Pass `train` of the fastest backend against that of peer script `peer`'s fastest tuned
 * way, sample i of each from round i (each takes one repetition a round until it has
 * enough), so that the two of a pair saw the machine at the same time: their ratios into
 * r's pairs. */
static int add_pair(results *r, const bconf *bc, const bmodel *m, int threads,
                    const entry *es, int nb, int ne, int train, int peer)
{
    const entry *b = fastest(es, 0, nb, train, -1), *p = fastest(es, nb, ne, train, peer);
    if (!b || !p)
        return 0;
    int n = b->reps < p->reps ? b->reps : p->reps;
    double *ratio = malloc((size_t)n * sizeof *ratio);
    pair *grown = realloc(r->pairs, (size_t)(r->n_pairs + 1) * sizeof *grown);
    if (!ratio || !grown) {
        free(ratio);
        return CNB_ENOMEM;
    }
    r->pairs = grown;
    for (int i = 0; i < n; i++)
        ratio[i] = train ? p->train[i] / b->train[i] : p->fwd[i] / b->fwd[i];
    pair *w = &r->pairs[r->n_pairs++];
    memset(w, 0, sizeof *w);
    snprintf(w->model, sizeof w->model, "%s", m->name);
    snprintf(w->backend, sizeof w->backend, "%s", bc->backends[b->b]);
    snprintf(w->peer, sizeof w->peer, "%s", p->peer.backend);
    w->threads = threads, w->train = train;
    cnb_sample_summarize(ratio, n, &w->ratio);
    free(ratio);
    return 0;
}

/* The timed passes over the group's entries (the backends es[0, nb), then the peers'
 * ways), then their rows and the pairs: per pass, per peer. */
static int measure(results *r, const bconf *bc, const bmodel *m, int threads, entry *es,
                   int nb, int ne)
{
    cnb_peak *peak = peak_for(r, threads);
    struct cnb_rng rng;
    cnb_rng_seed(&rng, bc->seed, STREAM_BENCH);
    const int first_probe = peak->n; /* round k's probe: peak->probes[first_probe + k] */
    double t0 = cnb_now();
    int rc = interleave(es, ne, &rng, rep_whole, peak);
    double t1 = cnb_now();
    if (rc == 0 && bc->layers)
        rc = interleave(es, nb, &rng, rep_layers, peak);
    double flops[2] = {NAN, NAN};
    if (nb)
        net_flops(&es[0].net, flops);
    int first = r->n_rows;
    for (int k = 0; k < ne && rc == 0; k++) {
        if (!es[k].broken)
            rc = add_net_rows(r, bc, m, threads, &es[k], flops, peak->probes + first_probe,
                              t0);
        if (rc == 0 && es[k].layer_reps)
            rc = add_layer_rows(r, bc, m, threads, &es[k]);
    }
    if (rc == 0)
        rc = set_own_spread(r, first);
    for (int train = 0; train < 2; train++)
        for (int peer = 0; peer < bc->np && rc == 0; peer++)
            rc = add_pair(r, bc, m, threads, es, nb, ne, train, peer);
    if (rc == 0)
        print_group(r, first, threads, t1 - t0, cnb_now() - t1, peak);
    return rc;
}

/* Every peer's ways at `threads` after the backends, es[ne] on, at most MAX_WAYS in all;
 * how many started. */
static int peer_entries(results *r, const bconf *bc, const bmodel *m, int threads,
                        entry *es, int ne)
{
    int n = 0;
    for (int peer = 0; peer < bc->np; peer++) {
        bench_peer_way ways[MAX_WAYS];
        int nw = r->peer_off[peer] ? 0 : bench_peer_ways(bc, peer, threads, ways, MAX_WAYS, r);
        for (int w = 0; w < nw && !r->peer_off[peer]; w++) {
            if (n == MAX_WAYS) {
                cnb_log(CNB_LOG_WARN, NULL, "%s: not run past the peers' %d-th way (at most "
                        "%d in a group)", bc->peers[peer], MAX_WAYS, MAX_WAYS);
                return n;
            }
            entry *e = &es[ne + n];
            e->b = -1, e->r = r;
            e->batch = m->batch, e->min_reps = bc->min_reps, e->min_time = bc->min_time;
            e->sample_time = bench_way_sample_time(bc, m, &ways[w]);
            n += bench_peer_start(&e->peer, bc, m, threads, peer, &ways[w], r) == 0;
        }
    }
    return n;
}

/* Pins the bench's thread to the first `threads` CPUs it may run on, for a group at
 * fewer threads than it has CPUs: the threads its backends start and the peers' processes
 * inherit the set, so every side of the group runs on the same CPUs (the vCPUs of a VM
 * need not run alike; the tuned PyTorch peer binds its thread to the first as well) and
 * none of them migrates. 1-thread LeNet-5 rows of a full run, free: CVs of 10-25% beside
 * 3-6% for the pinned peer; on a quiet machine pinning costs nothing (direct+onednn 3.49
 * ms pinned to CPU 0, 3.55 free, one run each). *saved gets the set to restore. Returns
 * the first CPU, or -1: not pinned. */
static int pin_group(int threads, cpu_set_t *saved)
{
    if (sched_getaffinity(0, sizeof *saved, saved) != 0 || threads >= CPU_COUNT(saved))
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    int first = -1;
    for (int c = 0, n = 0; c < CPU_SETSIZE && n < threads; c++)
        if (CPU_ISSET(c, saved)) {
            CPU_SET(c, &set);
            first = first < 0 ? c : first;
            n++;
        }
    return sched_setaffinity(0, sizeof set, &set) == 0 ? first : -1;
}

int bench_measure_group(results *r, const bconf *bc, const bmodel *m, int threads,
                        const cnb_registry *reg)
{
    entry es[MAX_BACKENDS + MAX_WAYS];
    int nb = 0, rc = 0;
    memset(es, 0, sizeof es);
    cpu_set_t saved;
    const int pinned = bc->pin ? pin_group(threads, &saved) : -1;
    for (int b = 0; b < bc->nb && rc == 0; b++)
        if (bench_runs_at(bc, m, b, threads))
            rc = backend_entry(bc, m, b, threads, &es[nb++], reg);
    int ne = nb + (rc == 0 ? peer_entries(r, bc, m, threads, es, nb) : 0);
    char label[600];
    bench_model_label(m, label, sizeof label);
    printf("%s, %d thread%s", label, threads, threads == 1 ? "" : "s");
    if (pinned >= 0 && threads == 1)
        printf(" (pinned to CPU %d)", pinned);
    else if (pinned >= 0)
        printf(" (pinned to %d CPUs from CPU %d)", threads, pinned);
    printf(":");
    for (int k = 0; k < ne; k++)
        printf(" %s (batch %d)", es[k].b >= 0 ? bc->backends[es[k].b] : es[k].peer.backend,
               es[k].batch);
    char why[64];
    for (int b = 0; b < bc->nb; b++)
        if (bench_not_run(bc, b, threads, why, sizeof why))
            printf("; not run: %s, which %s", bc->backends[b], why);
    printf("\n");
    fflush(stdout);
    if (rc == 0)
        rc = measure(r, bc, m, threads, es, nb, ne);
    for (int k = 0; k < ne; k++)
        free_entry(&es[k]);
    if (pinned >= 0)
        sched_setaffinity(0, sizeof saved, &saved);
    return rc;
}
