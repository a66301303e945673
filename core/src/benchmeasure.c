/*
 * benchmeasure.c - one (model, threads) group of a bench: each backend's network, its
 * warm-up, then rounds over the backends in a shuffled order with the FMA probe among
 * them, first the whole network, then the per-layer pass; the samples become rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "benchint.h"
#include "clock.h"
#include "net.h"
#include "rng.h"

/* One backend's network inside a (model, threads) group, and its samples (seconds). */
typedef struct entry {
    int b;
    cnb_conf model;
    cnb_net net;
    int batch, min_reps;
    double min_time, create_ms;
    double *fwd, *train;          /* whole network, [reps]                  */
    int reps;
    double sum_fwd, sum_train;
    double *lf, *lb;              /* per layer, [layer_reps][n_layers]      */
    double *llf, *llb;            /* its library calls alone, or NAN        */
    int layer_reps;
    double layer_seconds;         /* spent in the per-layer pass            */
} entry;

static int setup_entry(const bconf *bc, const bmodel *m, int b, int threads, entry *e,
                       const cnb_registry *reg)
{
    const override *o = &m->ov[b];
    e->b = b;
    e->batch = o->batch ? o->batch : m->batch;
    e->min_reps = o->min_reps ? o->min_reps : bc->min_reps;
    e->min_time = o->min_time >= 0 ? o->min_time : bc->min_time;
    int rc = cnb_net_load(&e->net, &e->model, reg, m->path, &m->vars);
    if (rc == 0)
        rc = cnb_net_init_params(&e->net, bc->seed);
    double t0 = cnb_now();
    if (rc == 0)
        rc = cnb_net_bind(&e->net, bc->backends[b], threads, e->batch);
    e->create_ms = (cnb_now() - t0) * 1e3;
    if (rc)
        return rc;
    struct cnb_rng rng; /* synthetic batch: N(0,1) pixels, uniform labels */
    cnb_rng_seed(&rng, bc->seed, CNB_STREAM_DATA);
    size_t n = (size_t)e->batch * cnb_shape_size(e->net.input);
    for (size_t i = 0; i < n; i++)
        e->net.x[i] = cnb_rng_normal(&rng);
    for (int i = 0; i < e->batch; i++)
        e->net.labels[i] = (int32_t)cnb_rng_below(&rng, (uint32_t)e->net.classes);
    return 0;
}

static void free_entry(entry *e)
{
    free(e->fwd), free(e->train), free(e->lf), free(e->lb), free(e->llf), free(e->llb);
    cnb_net_free(&e->net);
    cnb_conf_free(&e->model);
}

static int train_step(cnb_net *net)
{
    float loss;
    int rc = cnb_net_forward(net, 1, &loss);
    if (rc == 0)
        rc = cnb_net_backward(net);
    if (rc == 0)
        cnb_net_sgd(net, 1e-4f, 0.9f, 5e-4f);
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

/* Rounds over the backends, in a freshly shuffled order each round, until every one has
 * enough: drift and neighbours' noise then fall on all backends alike. The FMA probe takes
 * a place of its own in every round's order (slot ne), so it sees the machine as the
 * kernels around it do; every backend before it has been parked. */
static int interleave(entry *es, int ne, struct cnb_rng *rng, rep_fn rep, cnb_peak *peak)
{
    int order[MAX_BACKENDS + 1], enough[MAX_BACKENDS] = {0}, left = ne, rc = 0;
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
            if (!enough[k] && (rc = rep(&es[k], &enough[k])) == 0)
                left -= enough[k];
            cnb_net_park(&es[k].net); /* its spinning threads would slow the next one */
        }
    }
    return rc;
}

/* Whole network: one inference forward and one training step. */
static int rep_whole(entry *e, int *enough)
{
    int rc = grow(&e->fwd, e->reps + 1);
    if (rc || (rc = grow(&e->train, e->reps + 1)))
        return rc;
    float loss;
    double t0 = cnb_now();
    rc = cnb_net_forward(&e->net, 0, &loss);
    double t1 = cnb_now();
    if (rc == 0)
        rc = train_step(&e->net);
    double t2 = cnb_now();
    e->fwd[e->reps] = t1 - t0;
    e->train[e->reps] = t2 - t1;
    e->sum_fwd += t1 - t0;
    e->sum_train += t2 - t1;
    e->reps++;
    *enough = e->reps >= e->min_reps && e->sum_fwd >= e->min_time && e->sum_train >= e->min_time;
    return rc;
}

/* The separate per-layer pass: each layer's forward and backward timed on its own. */
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

/* The whole network's two rows of entry e: forward, then the training step. */
static int add_net_rows(results *r, const bconf *bc, const bmodel *m, int threads,
                        const entry *e)
{
    double fwd_flops = 0, train_flops = 0;
    for (int i = 0; i < e->net.n; i++) {
        fwd_flops += cnb_net_layer_flops(&e->net, i);
        train_flops += cnb_net_layer_flops(&e->net, i) + backward_flops(&e->net, i);
    }
    row *grown = realloc(r->rows, (size_t)(r->n_rows + 2) * sizeof *grown);
    if (!grown)
        return CNB_ENOMEM;
    r->rows = grown;
    for (int pass = 0; pass < 2; pass++) {
        row *w = &r->rows[r->n_rows++];
        memset(w, 0, sizeof *w);
        snprintf(w->model, sizeof w->model, "%s", m->name);
        snprintf(w->backend, sizeof w->backend, "%s", bc->backends[e->b]);
        w->batch = e->batch, w->threads = threads, w->train = pass;
        to_ms(pass ? e->train : e->fwd, e->reps, 1, &w->s);
        w->ips = e->batch / (w->s.median * 1e-3);
        w->create_ms = e->create_ms;
        w->gflops = (pass ? train_flops : fwd_flops) * e->batch / (w->s.median * 1e-3) * 1e-9;
        w->runs = 1, w->run_min = w->run_max = w->s.median;
    }
    return 0;
}

/* The per-layer pass's rows of entry e: each layer forward, then backward. */
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
            snprintf(w->ran_on, sizeof w->ran_on, "%s%s", L->ctx.ran_on ? L->ctx.ran_on : "host",
                     L->ctx.mixed ? "+mixed" : "");
            snprintf(w->layer, sizeof w->layer, "%s", L->name);
            snprintf(w->plugin, sizeof w->plugin, "%s", L->desc->hdr.name);
            snprintf(w->layout, sizeof w->layout, "%s", L->ctx.out.name);
            w->batch = e->batch, w->threads = threads, w->backward = dir;
            to_ms((dir ? e->lb : e->lf) + i, e->layer_reps, nl, &w->s);
            if (!isnan((dir ? e->llb : e->llf)[i]))
                to_ms((dir ? e->llb : e->llf) + i, e->layer_reps, nl, &w->lib);
            double flops = dir ? backward_flops(&e->net, i) : cnb_net_layer_flops(&e->net, i);
            w->gflops = flops * e->batch / (w->s.median * 1e-3) * 1e-9;
        }
    return 0;
}

/* Warm-up: caches, page faults, JIT, pools; then each backend parked. */
static int warm_up(entry *es, int ne, int warmup)
{
    int rc = 0;
    for (int k = 0; k < ne && rc == 0; k++) {
        for (int w = 0; w < warmup && rc == 0; w++) {
            float loss;
            rc = cnb_net_forward(&es[k].net, 0, &loss);
            if (rc == 0)
                rc = train_step(&es[k].net);
        }
        cnb_net_park(&es[k].net);
    }
    return rc;
}

/* What the group measured, on stdout: each backend's training step, the passes' time. */
static void print_group(const results *r, int ne, int threads, double whole, double layers,
                        const cnb_peak *peak)
{
    for (int k = 0; k < ne; k++) {
        const row *w = &r->rows[r->n_rows - 2 * ne + 2 * k + 1];
        printf("  %-10s train %9.1f img/s (median %8.2f ms, IQR %.2f-%.2f, CV %4.1f%%, %d "
               "reps)%s\n", w->backend, w->ips, w->s.median, w->s.q1, w->s.q3,
               100 * w->s.cv, w->s.n, w->s.cv >= CNB_UNSTABLE_CV ? "  unstable" : "");
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

/* The timed passes over the group's entries, then their rows. */
static int measure(results *r, const bconf *bc, const bmodel *m, int threads, entry *es,
                   int ne)
{
    cnb_peak *peak = peak_for(r, threads);
    struct cnb_rng rng;
    cnb_rng_seed(&rng, bc->seed, STREAM_BENCH);
    double t0 = cnb_now();
    int rc = interleave(es, ne, &rng, rep_whole, peak);
    double t1 = cnb_now();
    if (rc == 0 && bc->layers)
        rc = interleave(es, ne, &rng, rep_layers, peak);
    for (int k = 0; k < ne && rc == 0; k++) {
        rc = add_net_rows(r, bc, m, threads, &es[k]);
        if (rc == 0 && es[k].layer_reps)
            rc = add_layer_rows(r, bc, m, threads, &es[k]);
    }
    if (rc == 0)
        print_group(r, ne, threads, t1 - t0, cnb_now() - t1, peak);
    return rc;
}

int bench_measure_group(results *r, const bconf *bc, const bmodel *m, int threads,
                        const cnb_registry *reg)
{
    entry es[MAX_BACKENDS];
    int ne = 0, rc = 0;
    memset(es, 0, sizeof es);
    for (int b = 0; b < bc->nb && rc == 0; b++)
        if (bench_runs_at(bc, m, b, threads))
            rc = setup_entry(bc, m, b, threads, &es[ne++], reg);
    char label[600];
    bench_model_label(m, label, sizeof label);
    printf("%s, %d thread%s:", label, threads, threads == 1 ? "" : "s");
    for (int k = 0; k < ne; k++)
        printf(" %s (batch %d)", bc->backends[es[k].b], es[k].batch);
    char why[64];
    for (int b = 0; b < bc->nb; b++)
        if (bench_not_run(bc, b, threads, why, sizeof why))
            printf("; not run: %s, which %s", bc->backends[b], why);
    printf("\n");
    fflush(stdout);
    if (rc == 0)
        rc = warm_up(es, ne, bc->warmup);
    if (rc == 0)
        rc = measure(r, bc, m, threads, es, ne);
    for (int k = 0; k < ne; k++)
        free_entry(&es[k]);
    return rc;
}
