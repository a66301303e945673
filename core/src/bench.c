/*
 * bench.c - backend speed measurements; the method is described in bench.h.
 */
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "dist.h"
#include "errors.h"
#include "fsutil.h"
#include "meta.h"
#include "net.h"
#include "peak.h"
#include "report.h"
#include "rng.h"
#include "scaling.h"
#include "stats.h"

#define MAX_BACKENDS 8
#define MAX_THREADS 8
#define MAX_MODELS 8
#define MAX_REPS 100000
#define STREAM_BENCH 5
#define PROBE_SECONDS 0.02  /* one FMA probe; one in every round of the timed passes */
#define LIST_MISTRUSTED 10  /* shares above 100% listed on stdout (all are in the report) */

typedef struct override {
    int batch, min_reps;   /* 0: not set */
    double min_time;       /* < 0: not set */
    int threads[MAX_THREADS], nt; /* thread counts this backend runs at; 0: all */
} override;

typedef struct bmodel {
    char name[64];
    char path[PATH_MAX];
    cnb_vars vars;
    int batch;
    override ov[MAX_BACKENDS];
} bmodel;

typedef struct bconf {
    const cnb_conf *conf;
    char name[128], results[PATH_MAX], peer[PATH_MAX], dir[PATH_MAX + 130];
    uint64_t seed;
    char backends[MAX_BACKENDS][64];
    int nb;
    int threads[MAX_THREADS], nt;
    int warmup, min_reps, layers;
    int scaling;                  /* [bench] scaling = yes: scaling.h instead */
    int peer_runs;                /* processes of the peer per group (median run kept) */
    double min_time;
    bmodel models[MAX_MODELS];
    int nm;
} bconf;

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

/* A row of bench.csv (also read back from the peer's CSV). */
typedef struct row {
    char model[64], backend[80];
    int batch, threads, train;    /* train: 0 forward pass, 1 training step */
    cnb_sample_stats s;           /* milliseconds */
    double ips, create_ms, gflops, share;
    int runs;                     /* processes the row is the median run of      */
    double run_min, run_max;      /* their medians' range, ms                   */
} row;

typedef struct layer_row {
    char model[64], backend[64], ran_on[80], layer[64], plugin[32], layout[16];
    int batch, threads, backward;
    cnb_sample_stats s;           /* milliseconds */
    cnb_sample_stats lib;         /* its library calls alone (n = 0: none) */
    double gflops, share;
} layer_row;

typedef struct results {
    row *rows;
    int n_rows;
    layer_row *layers;
    int n_layers;
    cnb_peak peaks[MAX_THREADS];
    int n_peaks;
    char peer_note[PATH_MAX + 512];
} results;

/* ---- configuration ----------------------------------------------------------------- */

static int split_csv(char *text, char **items, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(text, ", \t", &save); t && n < max;
         t = strtok_r(NULL, ", \t", &save))
        items[n++] = t;
    return n;
}

static int int_list(const cnb_conf *c, const cnb_kv *kv, int *out, int max, const char *what)
{
    char copy[512], *items[MAX_THREADS];
    snprintf(copy, sizeof copy, "%s", kv->value);
    int n = split_csv(copy, items, max);
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(items[i], &end, 10);
        if (*end || v < 1 || v > 1024)
            return cnb_error("%s:%d: %s = '%s': expected a list of %s from 1 to 1024", c->path,
                             kv->line, kv->key, kv->value, what);
        out[i] = (int)v;
    }
    if (n == 0)
        return cnb_error("%s:%d: %s is empty", c->path, kv->line, kv->key);
    return n;
}

static int backend_index(const bconf *bc, const char *name)
{
    for (int i = 0; i < bc->nb; i++)
        if (strcmp(bc->backends[i], name) == 0)
            return i;
    return -1;
}

static int parse_model(bconf *bc, const cnb_section *s, const cnb_registry *reg)
{
    const cnb_conf *c = bc->conf;
    bmodel *m = &bc->models[bc->nm++];
    snprintf(m->name, sizeof m->name, "%s", s->name + 6);
    m->batch = 32;
    for (int b = 0; b < MAX_BACKENDS; b++)
        m->ov[b].min_time = -1.0;
    for (int k = 0; k < s->n; k++) {
        const cnb_kv *kv = &s->kv[k];
        char key[128];
        snprintf(key, sizeof key, "%s", kv->key);
        char *dot = strchr(key, '.');
        if (dot) { /* BACKEND.setting */
            *dot = '\0';
            int b = backend_index(bc, key);
            if (b < 0 && cnb_registry_backend(reg, key))
                continue; /* a backend left out of this run (--set bench.backends=...) */
            if (b < 0)
                return cnb_error("%s:%d: [%s] %s: '%s' is not a backend", c->path, kv->line,
                                 s->name, kv->key, key);
            override *o = &m->ov[b];
            long v;
            double d;
            if (strcmp(dot + 1, "batch") == 0 && cnb_conf_int(c, s, kv->key, 1, 65536, &v) == 0)
                o->batch = (int)v;
            else if (strcmp(dot + 1, "min_reps") == 0 &&
                     cnb_conf_int(c, s, kv->key, 1, MAX_REPS, &v) == 0)
                o->min_reps = (int)v;
            else if (strcmp(dot + 1, "min_time") == 0 &&
                     cnb_conf_double(c, s, kv->key, 0.0, 3600.0, &d) == 0)
                o->min_time = d;
            else if (strcmp(dot + 1, "threads") == 0) {
                if ((o->nt = int_list(c, kv, o->threads, MAX_THREADS, "thread counts")) < 0)
                    return CNB_EINVAL;
            } else
                return cnb_error("%s:%d: [%s] unknown or invalid key '%s' (per-backend keys: "
                                 "BACKEND.batch, .min_reps, .min_time, .threads)",
                                 c->path, kv->line, s->name, kv->key);
        } else if (strcmp(key, "model") == 0) {
            char tmp[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%s", c->path);
            if (kv->value[0] == '/')
                snprintf(m->path, sizeof m->path, "%s", kv->value);
            else if (snprintf(m->path, sizeof m->path, "%s/%s", dirname(tmp), kv->value) >=
                     (int)sizeof m->path)
                return cnb_error("%s:%d: model path too long", c->path, kv->line);
        } else if (strcmp(key, "batch") == 0) {
            long v;
            if (cnb_conf_int(c, s, "batch", 1, 65536, &v))
                return CNB_EINVAL;
            m->batch = (int)v;
        } else if (strcmp(key, "vars") == 0) {
            char copy[512];
            snprintf(copy, sizeof copy, "%s", kv->value);
            for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t;
                 t = strtok_r(NULL, " \t", &save)) {
                char *eq = strchr(t, '=');
                if (!eq)
                    return cnb_error("%s:%d: [%s] vars: '%s' is not name=value", c->path,
                                     kv->line, s->name, t);
                *eq = '\0';
                cnb_vars_set(&m->vars, t, eq + 1);
            }
        } else {
            return cnb_error("%s:%d: unknown key '%s' in [%s]; known keys: model, vars, batch, "
                             "BACKEND.batch, BACKEND.min_reps, BACKEND.min_time, BACKEND.threads",
                             c->path, kv->line, kv->key, s->name);
        }
    }
    if (!m->path[0])
        return cnb_error("%s:%d: [%s] needs 'model = path/to/model.ini'", c->path, s->line,
                         s->name);
    return 0;
}

static int parse(bconf *bc, const cnb_conf *c, const cnb_registry *reg)
{
    static const char *const ex_keys[] = {"name", "mode", "seed", "results", NULL};
    static const char *const bench_keys[] = {"backends", "threads", "warmup", "min_reps",
                                             "min_time", "layers", "peer", "peer_runs",
                                             "scaling", NULL};
    memset(bc, 0, sizeof *bc);
    bc->conf = c;
    const cnb_section *ex = cnb_conf_section(c, "experiment"), *b = cnb_conf_section(c, "bench");
    if (!b)
        return cnb_error("%s: a time experiment needs a [bench] section (backends, threads, "
                         "min_reps, min_time) and one [bench.NAME] per model", c->path);
    if ((ex && cnb_section_check_keys(c, ex, ex_keys)) || cnb_section_check_keys(c, b, bench_keys))
        return CNB_EINVAL;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", c->path);
    char *base = basename(tmp), *dot = strrchr(base, '.');
    if (dot)
        *dot = '\0';
    snprintf(bc->name, sizeof bc->name, "%s", base);
    snprintf(bc->results, sizeof bc->results, "results");
    const cnb_kv *kv;
    if ((kv = cnb_section_get(ex, "name")))
        snprintf(bc->name, sizeof bc->name, "%s", kv->value);
    if ((kv = cnb_section_get(ex, "results")))
        snprintf(bc->results, sizeof bc->results, "%s", kv->value);
    long seed = 1, warmup = 3, reps = 10, layers = 1, peer_runs = 1;
    bc->min_time = 1.0;
    if (cnb_conf_int(c, ex, "seed", 0, 2147483647L, &seed) ||
        cnb_conf_int(c, b, "warmup", 0, 1000, &warmup) ||
        cnb_conf_int(c, b, "min_reps", 1, MAX_REPS, &reps) ||
        cnb_conf_int(c, b, "peer_runs", 1, 99, &peer_runs) ||
        cnb_conf_double(c, b, "min_time", 0.0, 3600.0, &bc->min_time))
        return CNB_EINVAL;
    if ((kv = cnb_section_get(b, "layers"))) {
        if (strcmp(kv->value, "yes") != 0 && strcmp(kv->value, "no") != 0)
            return cnb_error("%s:%d: layers = '%s': expected yes or no", c->path, kv->line,
                             kv->value);
        layers = strcmp(kv->value, "yes") == 0;
    }
    if ((kv = cnb_section_get(b, "scaling"))) {
        if (strcmp(kv->value, "yes") != 0 && strcmp(kv->value, "no") != 0)
            return cnb_error("%s:%d: scaling = '%s': expected yes (time the data-parallel "
                             "step at the rank count of mpirun -np) or no", c->path, kv->line,
                             kv->value);
        bc->scaling = strcmp(kv->value, "yes") == 0;
    }
    bc->seed = (uint64_t)seed, bc->warmup = (int)warmup, bc->min_reps = (int)reps;
    bc->peer_runs = (int)peer_runs;
    bc->layers = (int)layers;
    if ((kv = cnb_section_get(b, "peer")) && kv->value[0]) { /* peer = (empty): none */
        snprintf(tmp, sizeof tmp, "%s", c->path);
        if (snprintf(bc->peer, sizeof bc->peer, "%s/%s", dirname(tmp), kv->value) >=
            (int)sizeof bc->peer)
            return cnb_error("%s:%d: peer path too long", c->path, kv->line);
    }
    char list[512], *items[MAX_BACKENDS];
    kv = cnb_section_get(b, "backends");
    snprintf(list, sizeof list, "%s", kv ? kv->value : CNB_REFERENCE_BACKEND);
    bc->nb = split_csv(list, items, MAX_BACKENDS);
    for (int i = 0; i < bc->nb; i++)
        snprintf(bc->backends[i], sizeof bc->backends[i], "%s", items[i]);
    bc->threads[0] = 1, bc->nt = 1;
    if ((kv = cnb_section_get(b, "threads")) &&
        (bc->nt = int_list(c, kv, bc->threads, MAX_THREADS, "thread counts")) < 0)
        return CNB_EINVAL;
    for (int i = 0; i < c->n; i++)
        if (strncmp(c->sec[i].name, "bench.", 6) == 0) {
            if (bc->nm == MAX_MODELS)
                return cnb_error("%s: at most %d [bench.NAME] sections", c->path, MAX_MODELS);
            if (parse_model(bc, &c->sec[i], reg))
                return CNB_EINVAL;
        } else if (strcmp(c->sec[i].name, "experiment") != 0 &&
                   strcmp(c->sec[i].name, "bench") != 0) {
            return cnb_error("%s:%d: unknown section [%s]; a time experiment has [experiment], "
                             "[bench] and [bench.NAME] per model", c->path, c->sec[i].line,
                             c->sec[i].name);
        }
    if (bc->nm == 0)
        return cnb_error("%s: no [bench.NAME] section: name at least one model to time", c->path);
    return 0;
}

/* ---- measuring --------------------------------------------------------------------- */

static int runs_at(const override *o, int threads)
{
    if (o->nt == 0)
        return 1;
    for (int i = 0; i < o->nt; i++)
        if (o->threads[i] == threads)
            return 1;
    return 0;
}

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

static cnb_peak *peak_for(results *r, int threads)
{
    for (int i = 0; i < r->n_peaks; i++)
        if (r->peaks[i].threads == threads)
            return &r->peaks[i];
    return NULL;
}

/* The denominator of every share at `threads`: the highest probe so far (NAN: none). */
static double peak_at(const results *r, int threads)
{
    for (int i = 0; i < r->n_peaks; i++)
        if (r->peaks[i].threads == threads && r->peaks[i].n > 0)
            return r->peaks[i].gflops;
    return NAN;
}

/* Every share against the highest probe of the whole run so far: a later group's probes
 * may raise it, so the shares are set again before anything is written. */
static void set_shares(results *r)
{
    for (int i = 0; i < r->n_rows; i++)
        r->rows[i].share = r->rows[i].gflops / peak_at(r, r->rows[i].threads);
    for (int i = 0; i < r->n_layers; i++)
        r->layers[i].share = r->layers[i].gflops / peak_at(r, r->layers[i].threads);
}

int cnb_bench_share_format(char *buf, size_t len, double gflops, double peak)
{
    double share = gflops / peak;
    if (isnan(share)) {
        snprintf(buf, len, "–");
        return 0;
    }
    if (share > 1.0) {
        snprintf(buf, len, "MISTRUSTED: %.1f%% of peak (%.1f GFLOP/s against a probe max of "
                 "%.1f)", 100 * share, gflops, peak);
        return 1;
    }
    snprintf(buf, len, "%.1f%%", 100 * share);
    return 0;
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

static int add_rows(results *r, const bconf *bc, const bmodel *m, int threads, const entry *es,
                    int ne)
{
    for (int k = 0; k < ne; k++) {
        const entry *e = &es[k];
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
        if (!e->layer_reps)
            continue;
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
    }
    return 0;
}

static int measure_group(results *r, const bconf *bc, const bmodel *m, int threads,
                         const cnb_registry *reg)
{
    cnb_peak *peak = peak_for(r, threads);
    entry es[MAX_BACKENDS];
    int ne = 0, rc = 0;
    memset(es, 0, sizeof es);
    for (int b = 0; b < bc->nb && rc == 0; b++)
        if (runs_at(&m->ov[b], threads))
            rc = setup_entry(bc, m, b, threads, &es[ne++], reg);
    printf("%s, %d thread%s:", m->name, threads, threads == 1 ? "" : "s");
    for (int k = 0; k < ne; k++)
        printf(" %s (batch %d)", bc->backends[es[k].b], es[k].batch);
    printf("\n");
    fflush(stdout);
    for (int k = 0; k < ne && rc == 0; k++) { /* warm-up: caches, page faults, JIT, pools */
        for (int w = 0; w < bc->warmup && rc == 0; w++) {
            float loss;
            rc = cnb_net_forward(&es[k].net, 0, &loss);
            if (rc == 0)
                rc = train_step(&es[k].net);
        }
        cnb_net_park(&es[k].net);
    }
    struct cnb_rng rng;
    cnb_rng_seed(&rng, bc->seed, STREAM_BENCH);
    double t0 = cnb_now();
    if (rc == 0)
        rc = interleave(es, ne, &rng, rep_whole, peak);
    double t1 = cnb_now();
    if (rc == 0 && bc->layers)
        rc = interleave(es, ne, &rng, rep_layers, peak);
    if (rc == 0) {
        rc = add_rows(r, bc, m, threads, es, ne);
        for (int k = 0; k < ne; k++) {
            const row *w = &r->rows[r->n_rows - 2 * ne + 2 * k + 1];
            printf("  %-10s train %9.1f img/s (median %8.2f ms, IQR %.2f-%.2f, CV %4.1f%%, %d "
                   "reps)%s\n", w->backend, w->ips, w->s.median, w->s.q1, w->s.q3,
                   100 * w->s.cv, w->s.n, w->s.cv >= CNB_UNSTABLE_CV ? "  unstable" : "");
        }
        printf("  (%.1f s whole-network, %.1f s per-layer pass; FMA probes so far at %d "
               "thread%s: %d, max %.1f GFLOP/s)\n", t1 - t0, cnb_now() - t1, threads,
               threads == 1 ? "" : "s", peak->n, peak->gflops);
    }
    for (int k = 0; k < ne; k++)
        free_entry(&es[k]);
    return rc;
}

/* ---- the peer script --------------------------------------------------------------- */

static int run_peer(const bconf *bc, const bmodel *m, int threads, results *r)
{
    char out[PATH_MAX + 160], batch[16], th[16], reps[16], mt[32], warm[16];
    snprintf(out, sizeof out, "%s/peer.csv", bc->dir);
    snprintf(batch, sizeof batch, "%d", m->batch);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(reps, sizeof reps, "%d", bc->min_reps);
    snprintf(mt, sizeof mt, "%g", bc->min_time);
    snprintf(warm, sizeof warm, "%d", bc->warmup);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bc->peer, bc->peer, "--model", m->name, "--batch", batch, "--threads", th,
              "--min-reps", reps, "--min-time", mt, "--warmup", warm, "--out", out,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return cnb_error("%s: could not run: %s", bc->peer, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        snprintf(r->peer_note, sizeof r->peer_note,
                 "PyTorch rows skipped: PyTorch is not installed (Debian package python3-torch; "
                 "install it and rerun to add them).");
        return 1; /* skipped: do not ask again */
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(r->peer_note, sizeof r->peer_note, "peer script %s failed (status %d); its "
                 "rows are missing.", bc->peer, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 1;
    }
    char runs[200] = "";
    if (bc->peer_runs > 1)
        snprintf(runs, sizeof runs, " It ran %d times per model and thread count, each a new "
                 "process; its row is the run with the median time, and the range of the runs' "
                 "medians is given with it.", bc->peer_runs);
    snprintf(r->peer_note, sizeof r->peer_note,
             "PyTorch rows from %s: the same networks, batch and threads, timed the same way; "
             "its OpenMP threads pinned one per core (OMP_PROC_BIND=true, OMP_PLACES=cores) "
             "unless the environment sets them, as unpinned its 2-thread LeNet-5 step is "
             "bimodal from one repetition to the next.%s", bc->peer, runs);
    return 0;
}

static int by_median(const void *a, const void *b)
{
    const row *x = *(const row *const *)a, *y = *(const row *const *)b;
    return (x->s.median > y->s.median) - (x->s.median < y->s.median);
}

/* The peer's rows, one per (model, backend, threads, pass): where the peer ran several
 * times (peer_runs), the run with the median time (the lower middle of an even count),
 * with the range of the runs' medians. */
static void read_peer_rows(const bconf *bc, results *r)
{
    char path[PATH_MAX + 160], line[1024];
    snprintf(path, sizeof path, "%s/peer.csv", bc->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    row *got = NULL;
    int n_got = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[20];
        int n = 0;
        for (char *save = NULL, *t = strtok_r(line, ",\n", &save); t && n < 20;
             t = strtok_r(NULL, ",\n", &save))
            fld[n++] = t;
        if (n < 14 || strcmp(fld[0], "model") == 0)
            continue;
        row *grown = realloc(got, (size_t)(n_got + 1) * sizeof *grown);
        if (!grown)
            break;
        got = grown;
        row *w = &got[n_got++];
        memset(w, 0, sizeof *w);
        snprintf(w->model, sizeof w->model, "%s", fld[0]);
        snprintf(w->backend, sizeof w->backend, "%s", fld[1]);
        w->batch = atoi(fld[2]), w->threads = atoi(fld[3]);
        w->train = strcmp(fld[4], "train") == 0;
        w->s.n = atoi(fld[5]);
        w->s.median = atof(fld[6]), w->s.min = atof(fld[7]);
        w->s.q1 = atof(fld[8]), w->s.q3 = atof(fld[9]), w->s.cv = atof(fld[10]);
        w->s.outliers = atoi(fld[11]);
        w->ips = atof(fld[12]);
        w->create_ms = n > 14 ? atof(fld[14]) : NAN;
    }
    fclose(f);
    const row **same = malloc(sizeof *same * (n_got ? n_got : 1));
    char *taken = calloc(n_got ? n_got : 1, 1);
    for (int i = 0; same && taken && i < n_got; i++) {
        if (taken[i])
            continue;
        int n = 0;
        for (int j = i; j < n_got; j++)
            if (!taken[j] && !strcmp(got[j].model, got[i].model) &&
                !strcmp(got[j].backend, got[i].backend) && got[j].threads == got[i].threads &&
                got[j].train == got[i].train)
                same[n++] = &got[j], taken[j] = 1;
        qsort(same, n, sizeof *same, by_median);
        row *grown = realloc(r->rows, (size_t)(r->n_rows + 1) * sizeof *grown);
        if (!grown)
            break;
        r->rows = grown;
        row *w = &r->rows[r->n_rows];
        *w = *same[(n - 1) / 2];
        w->runs = n;
        w->run_min = same[0]->s.median, w->run_max = same[n - 1]->s.median;
        /* GFLOP/s from our own FLOP count of the same model (shares: set_shares) */
        w->gflops = w->share = NAN;
        for (int k = 0; k < r->n_rows; k++)
            if (strcmp(r->rows[k].model, w->model) == 0 && r->rows[k].train == w->train &&
                r->rows[k].gflops > 0) {
                double per_image = r->rows[k].gflops / r->rows[k].ips;
                w->gflops = per_image * w->ips;
                break;
            }
        r->n_rows++;
    }
    free(same);
    free(taken);
    free(got);
}

/* ---- writing ----------------------------------------------------------------------- */

/* peak_share as the CSVs carry it: empty above 100%, where the last column,
 * peak_mistrusted, carries the impossible share instead (empty otherwise). */
static void csv_share(FILE *f, double share)
{
    if (share > 1.0)
        fprintf(f, ",");
    else
        fprintf(f, "%.4f,", share);
}

static void csv_mistrusted(FILE *f, double share)
{
    if (share > 1.0)
        fprintf(f, ",%.4f\n", share);
    else
        fprintf(f, ",\n");
}

static int write_csvs(const bconf *bc, results *r)
{
    set_shares(r);
    cnb_atomic a;
    char path[PATH_MAX + 200];
    snprintf(path, sizeof path, "%s/bench.csv", bc->dir);
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,"
                 "images_per_second,unstable,create_ms,gflops,peak_share,runs,run_min_ms,"
                 "run_max_ms,peak_mistrusted\n");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        fprintf(a.f, "%s,%s,%d,%d,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%.2f,%d,%.1f,%.2f,",
                w->model, w->backend, w->batch, w->threads, w->train ? "train" : "forward",
                w->s.n, w->s.median, w->s.min, w->s.q1, w->s.q3, w->s.cv, w->s.outliers, w->ips,
                w->s.cv >= CNB_UNSTABLE_CV, w->create_ms, w->gflops);
        csv_share(a.f, w->share);
        fprintf(a.f, "%d,%.4f,%.4f", w->runs, w->run_min, w->run_max);
        csv_mistrusted(a.f, w->share);
    }
    if (cnb_atomic_commit(&a))
        return CNB_EIO;
    snprintf(path, sizeof path, "%s/layers.csv", bc->dir);
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "model,backend,ran_on,batch,threads,layer,plugin,direction,reps,median_ms,q1_ms,"
                 "q3_ms,cv,gflops,peak_share,layout,library_ms,library_share,"
                 "peak_mistrusted\n");
    for (int i = 0; i < r->n_layers; i++) {
        const layer_row *w = &r->layers[i];
        fprintf(a.f, "%s,%s,%s,%d,%d,%s,%s,%s,%d,%.5f,%.5f,%.5f,%.4f,%.3f,", w->model,
                w->backend, w->ran_on, w->batch, w->threads, w->layer, w->plugin,
                w->backward ? "backward" : "forward", w->s.n, w->s.median, w->s.q1, w->s.q3,
                w->s.cv, w->gflops);
        csv_share(a.f, w->share);
        fprintf(a.f, "%s,", w->layout);
        if (w->lib.n)
            fprintf(a.f, "%.5f,%.4f", w->lib.median, w->lib.median / w->s.median);
        else
            fprintf(a.f, ",");
        csv_mistrusted(a.f, w->share);
    }
    if (cnb_atomic_commit(&a))
        return CNB_EIO;
    snprintf(path, sizeof path, "%s/peak.csv", bc->dir);
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "threads,isa,probe_ms,probes,max_gflops,median_gflops,min_gflops\n");
    for (int i = 0; i < r->n_peaks; i++) {
        const cnb_peak *p = &r->peaks[i];
        fprintf(a.f, "%d,%s,%.0f,%d,%.1f,%.1f,%.1f\n", p->threads, p->isa,
                p->probe_seconds * 1e3, p->n, p->gflops, p->median, p->min);
    }
    return cnb_atomic_commit(&a) ? CNB_EIO : 0;
}

static const row *find_row(const results *r, const char *model, const char *backend, int threads,
                           int train)
{
    for (int i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i].model, model) == 0 && strcmp(r->rows[i].backend, backend) == 0 &&
            r->rows[i].threads == threads && r->rows[i].train == train)
            return &r->rows[i];
    return NULL;
}

static int plot_throughput(const bconf *bc, const results *r, const bmodel *m)
{
    char name[128], file[PATH_MAX + 400];
    cnb_atomic a;
    snprintf(name, sizeof name, "throughput-%s", m->name);
    snprintf(file, sizeof file, "%s/%s.dat", bc->dir, name);
    if (cnb_atomic_open(&a, file))
        return CNB_EIO;
    fprintf(a.f, "# label forward_ips lo hi train_ips lo hi (error bars: interquartile range)\n");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (w->train || strcmp(w->model, m->name) != 0)
            continue;
        const row *t = find_row(r, w->model, w->backend, w->threads, 1);
        if (!t)
            continue;
        fprintf(a.f, "\"%s %dT\" %.2f %.2f %.2f %.2f %.2f %.2f\n", w->backend, w->threads, w->ips,
                w->batch / (w->s.q3 * 1e-3), w->batch / (w->s.q1 * 1e-3), t->ips,
                t->batch / (t->s.q3 * 1e-3), t->batch / (t->s.q1 * 1e-3));
    }
    char title[256];
    snprintf(title, sizeof title, "%s: images per second (median; bars: interquartile range)",
             m->name);
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, bc->dir, name, title, "images / s"))
        return CNB_EIO;
    fprintf(a.f, "set logscale y\nset style data histogram\n"
                 "set style histogram errorbars gap 2 lw 1\nset style fill solid 0.7 border -1\n"
                 "set xtics noenhanced rotate by -25\nset key top left\n");
    fprintf(a.f, "plot '%s.dat' using 2:3:4:xtic(1) title 'forward (inference)' lc rgb "
                 "'#4477aa', '' using 5:6:7 title 'training step' lc rgb '#ee6677'\n", name);
    return cnb_plot_finish(&a, bc->dir, name);
}

static int plot_layers(const bconf *bc, const results *r, const bmodel *m, int threads)
{
    char name[128], file[PATH_MAX + 400];
    const char *bk[MAX_BACKENDS];
    int nb = 0;
    for (int b = 0; b < bc->nb; b++)
        if (find_row(r, m->name, bc->backends[b], threads, 1))
            bk[nb++] = bc->backends[b];
    if (nb == 0 || !bc->layers)
        return 0;
    cnb_atomic a;
    snprintf(name, sizeof name, "layers-%s-t%d", m->name, threads);
    snprintf(file, sizeof file, "%s/%s.dat", bc->dir, name);
    if (cnb_atomic_open(&a, file))
        return CNB_EIO;
    fprintf(a.f, "# layer, then per backend: forward+backward median ms per image (");
    for (int b = 0; b < nb; b++)
        fprintf(a.f, "%s%s", b ? " " : "", bk[b]);
    fprintf(a.f, ")\n");
    for (int i = 0; i < r->n_layers; i += 2) { /* rows come forward, backward */
        const layer_row *w = &r->layers[i];
        if (strcmp(w->model, m->name) != 0 || w->threads != threads || strcmp(w->backend, bk[0]))
            continue;
        fprintf(a.f, "\"%s\"", w->layer);
        for (int b = 0; b < nb; b++) {
            double ms = NAN;
            for (int j = 0; j < r->n_layers; j += 2) {
                const layer_row *v = &r->layers[j];
                if (strcmp(v->model, m->name) == 0 && v->threads == threads &&
                    strcmp(v->backend, bk[b]) == 0 && strcmp(v->layer, w->layer) == 0) {
                    ms = (v->s.median + r->layers[j + 1].s.median) / v->batch;
                    break;
                }
            }
            fprintf(a.f, " %.6f", ms);
        }
        fprintf(a.f, "\n");
    }
    char title[256];
    snprintf(title, sizeof title, "%s, %d thread%s: forward + backward time per image, per "
             "layer (median of the per-layer pass)", m->name, threads, threads == 1 ? "" : "s");
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, bc->dir, name, title, "ms per image"))
        return CNB_EIO;
    fprintf(a.f, "set logscale y\nset style data histogram\nset style histogram clustered gap 1\n"
                 "set style fill solid 0.7 border -1\nset xtics noenhanced rotate by -45\n"
                 "set key top right\n");
    fprintf(a.f, "plot ");
    for (int b = 0; b < nb; b++)
        fprintf(a.f, "%s'%s.dat' using %d%s title '%s'", b ? ", " : "", name, b + 2,
                b ? "" : ":xtic(1)", bk[b]);
    fprintf(a.f, "\n");
    return cnb_plot_finish(&a, bc->dir, name);
}

/* The kernels a backend timed with their library calls alone (library_pass): what share
 * of the library's speed the whole kernel keeps, and the sum over every layer and both
 * passes (the others at their kernel time). Nothing when there are none. */
static void library_table(FILE *f, const results *r, const char *model, int threads)
{
    int said = 0;
    for (int i = 0; i < r->n_layers; i++) {
        const layer_row *w = &r->layers[i];
        if (!w->lib.n || strcmp(w->model, model) || w->threads != threads)
            continue;
        if (!said++)
            fprintf(f, "Kernels against their library calls alone, %d thread%s (the same calls "
                       "on the same shapes and threads, without im2col, col2im, reorders or "
                       "the bias; share = library time / kernel time):\n\n| backend | layer | "
                       "pass | kernel ms | library calls ms | share |\n|---|---|---|---:|---:|"
                       "---:|\n", threads, threads == 1 ? "" : "s");
        fprintf(f, "| %s | %s | %s | %.3f | %.3f | %.0f%% |\n", w->backend, w->layer,
                w->backward ? "backward" : "forward", w->s.median, w->lib.median,
                100.0 * w->lib.median / w->s.median);
        /* after a backend's last such kernel: its whole per-layer pass, with every kernel
         * at its library calls alone where it has them (what free reorders would give) */
        int last = 1;
        for (int j = i + 1; j < r->n_layers && last; j++)
            last = !(r->layers[j].lib.n && !strcmp(r->layers[j].backend, w->backend) &&
                     !strcmp(r->layers[j].model, model) && r->layers[j].threads == threads);
        if (!last)
            continue;
        double kernels = 0, library = 0;
        for (int j = 0; j < r->n_layers; j++) {
            const layer_row *v = &r->layers[j];
            if (!strcmp(v->backend, w->backend) && !strcmp(v->model, model) &&
                v->threads == threads) {
                kernels += v->s.median;
                library += v->lib.n ? v->lib.median : v->s.median;
            }
        }
        fprintf(f, "| %s | every layer | both | %.3f | %.3f | %.0f%% |\n", w->backend, kernels,
                library, 100.0 * library / kernels);
    }
    if (said)
        fprintf(f, "\n");
}

/* Every share above 100%: their number, the first `list` of them printed to f. */
static int mistrusted(const results *r, FILE *f, int list)
{
    char msg[160];
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (cnb_bench_share_format(msg, sizeof msg, w->gflops, peak_at(r, w->threads)) &&
            n++ < list)
            fprintf(f, "  %s, %s, %d thread%s, %s: %s\n", w->model, w->backend, w->threads,
                    w->threads == 1 ? "" : "s", w->train ? "training step" : "forward pass",
                    msg);
    }
    for (int i = 0; i < r->n_layers; i++) {
        const layer_row *w = &r->layers[i];
        if (cnb_bench_share_format(msg, sizeof msg, w->gflops, peak_at(r, w->threads)) &&
            n++ < list)
            fprintf(f, "  %s, %s, %d thread%s, %s %s: %s\n", w->model, w->backend, w->threads,
                    w->threads == 1 ? "" : "s", w->layer, w->backward ? "backward" : "forward",
                    msg);
    }
    return n;
}

/* What the probes measured and when, the denominator's figures, for report and stdout. */
static void peak_summary(FILE *f, const cnb_peak *p)
{
    if (p->n == 0) {
        fprintf(f, "%d thread%s: no probes (nothing ran at this thread count)", p->threads,
                p->threads == 1 ? "" : "s");
        return;
    }
    fprintf(f, "%d thread%s: %.1f GFLOP/s, the maximum of %d probes sized to %.0f ms (%s; "
               "median %.1f, min %.1f)", p->threads, p->threads == 1 ? "" : "s", p->gflops,
            p->n, p->probe_seconds * 1e3, p->isa, p->median, p->min);
}

static int write_report(const bconf *bc, const results *r)
{
    char path[PATH_MAX + 200], cpu[256];
    snprintf(path, sizeof path, "%s/report.md", bc->dir);
    cnb_cpuinfo("model name", cpu, sizeof cpu);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    FILE *f = a.f;
    fprintf(f, "# %s\n\nMachine: %s, %ld logical CPUs.\n\nMeasured FP32 peak: the maximum of "
               "short FMA probes (every thread runs independent chains of vector FMAs on "
               "registers), one probe in every round of the timed repetitions, whole network "
               "and per layer, at the round's thread count and in its shuffled order among the "
               "backends, each backend parked after its turn; so the probes saw the machine as "
               "the kernels around them did.", bc->name, cpu, sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < r->n_peaks; i++) {
        fprintf(f, "%s", i ? "; " : " ");
        peak_summary(f, &r->peaks[i]);
    }
    if (r->n_peaks) { /* how init chose the probe's kernel */
        const cnb_peak *p = &r->peaks[0];
        fprintf(f, ". Its kernel is the fastest of this CPU's ISAs in a few probes before the "
                   "run (%d thread%s:", p->threads, p->threads == 1 ? "" : "s");
        for (int k = 0, said = 0; k < 3; k++)
            if (p->tried[k] > 0)
                fprintf(f, "%s %s %.1f", said++ ? "," : "", cnb_peak_isas[k], p->tried[k]);
        fprintf(f, " GFLOP/s)");
    }
    int n_bad = mistrusted(r, NULL, 0);
    fprintf(f, ". Every share of peak is against that maximum. A share above 100%% is not a "
               "result but a measurement error (the peak or the FLOP count is wrong): it is "
               "printed as MISTRUSTED with the GFLOP/s and the probe maximum that produced it "
               "(bench.csv and layers.csv: peak_share empty, the share in peak_mistrusted). ");
    if (n_bad)
        fprintf(f, "**%d share%s in this report %s MISTRUSTED.**\n\n", n_bad,
                n_bad == 1 ? "" : "s", n_bad == 1 ? "is" : "are");
    else
        fprintf(f, "No share in this report is above 100%%.\n\n");
    fprintf(f, "Medians over repetitions interleaved across backends in a shuffled order; "
               "IQR = interquartile range; CV = coefficient of variation (≥ 10%% marked "
               "unstable); outliers beyond the Tukey fences are counted, never dropped. "
               "Training step = forward + backward + SGD update. GFLOP/s count 2 FLOPs per "
               "multiply-add (training: 3× forward for conv and fc), over the taps of a "
               "convolution's kernel that fall inside its input, as benchdnn counts them: the "
               "taps on zero padding are no work (oneDNN skips them), so the dense count "
               "2·K·C·KH·KW·OH·OW of `cnnbench summary` would overstate a padded "
               "convolution's rate (AlexNet conv2 by 9.5%%, conv3 to conv5 by 11%%). Kernel "
               "creation is timed apart (create ms).\n\n");
    if (r->peer_note[0])
        fprintf(f, "%s\n\n", r->peer_note);
    for (int mi = 0; mi < bc->nm; mi++) {
        const bmodel *m = &bc->models[mi];
        fprintf(f, "## %s\n\n| backend | threads | batch | forward img/s | training img/s | "
                   "training ms (median, IQR) | CV | reps (outliers) | create ms | training "
                   "GFLOP/s | of peak |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n",
                m->name);
        for (int i = 0; i < r->n_rows; i++) {
            const row *t = &r->rows[i];
            if (!t->train || strcmp(t->model, m->name) != 0)
                continue;
            const row *w = find_row(r, t->model, t->backend, t->threads, 0);
            char share[160];
            cnb_bench_share_format(share, sizeof share, t->gflops, peak_at(r, t->threads));
            char runs[96] = "";
            if (t->runs > 1)
                snprintf(runs, sizeof runs, "; the median of %d runs (%.2f–%.2f)", t->runs,
                         t->run_min, t->run_max);
            fprintf(f, "| %s | %d | %d | %.1f | %.1f | %.2f [%.2f–%.2f]%s | %.1f%%%s | %d (%d) | "
                       "%.1f | %.1f | %s |\n",
                    t->backend, t->threads, t->batch, w ? w->ips : NAN, t->ips, t->s.median,
                    t->s.q1, t->s.q3, runs, 100 * t->s.cv, t->s.cv >= CNB_UNSTABLE_CV ? " unstable" : "",
                    t->s.n, t->s.outliers, t->create_ms, t->gflops, share);
        }
        /* each backend against the peer (PyTorch) at the same thread count */
        int said = 0;
        for (int i = 0; i < r->n_rows; i++) {
            const row *t = &r->rows[i], *p = NULL;
            if (!t->train || strcmp(t->model, m->name) || strncmp(t->backend, "pytorch", 7) == 0)
                continue;
            for (int j = 0; j < r->n_rows && !p; j++)
                if (r->rows[j].train && r->rows[j].threads == t->threads &&
                    !strcmp(r->rows[j].model, m->name) && !strncmp(r->rows[j].backend, "pytorch", 7))
                    p = &r->rows[j];
            if (!p)
                continue;
            fprintf(f, "%s%s %.2f× (%d thread%s", said++ ? ", " : "\nTraining throughput against "
                    "PyTorch: ", t->backend, t->ips / p->ips, t->threads, t->threads == 1 ? "" : "s");
            if (p->runs > 1) /* against the images/s of its slowest and fastest runs */
                fprintf(f, "; %.2f–%.2f× over PyTorch's %d runs",
                        t->ips * p->run_min / (1e3 * p->batch),
                        t->ips * p->run_max / (1e3 * p->batch), p->runs);
            fprintf(f, ")");
        }
        fprintf(f, "%s\n![throughput](throughput-%s.png)\n\n", said ? ".\n" : "", m->name);
        for (int ti = 0; ti < bc->nt && bc->layers; ti++) {
            int threads = bc->threads[ti];
            fprintf(f, "### %s per layer, %d thread%s (ms per batch, median; GFLOP/s and share "
                       "of the %d-thread peak; [layout]: the output passed to the next layer in "
                       "the backend's own layout, not NCHW)\n\n| layer | plugin |",
                    m->name, threads, threads == 1 ? "" : "s", threads);
            int shown[MAX_BACKENDS], ns = 0;
            for (int b = 0; b < bc->nb; b++)
                if (find_row(r, m->name, bc->backends[b], threads, 1)) {
                    shown[ns++] = b;
                    fprintf(f, " %s fwd | bwd | fwd GFLOP/s (peak) |", bc->backends[b]);
                }
            fprintf(f, "\n|---|---|");
            for (int b = 0; b < ns; b++)
                fprintf(f, "---:|---:|---:|");
            fprintf(f, "\n");
            double sums[MAX_BACKENDS][2] = {{0}};
            for (int i = 0; ns && i < r->n_layers; i += 2) {
                const layer_row *w = &r->layers[i];
                if (strcmp(w->model, m->name) || w->threads != threads ||
                    strcmp(w->backend, bc->backends[shown[0]]))
                    continue;
                fprintf(f, "| %s | %s |", w->layer, w->plugin);
                for (int b = 0; b < ns; b++)
                    for (int j = 0; j < r->n_layers; j += 2) {
                        const layer_row *v = &r->layers[j], *vb = &r->layers[j + 1];
                        if (strcmp(v->model, m->name) || v->threads != threads ||
                            strcmp(v->backend, bc->backends[shown[b]]) || strcmp(v->layer, w->layer))
                            continue;
                        char share[160], cell[200];
                        if (cnb_bench_share_format(share, sizeof share, v->gflops,
                                                   peak_at(r, threads)))
                            snprintf(cell, sizeof cell, "%s", share);
                        else
                            snprintf(cell, sizeof cell, "%.1f (%s)", v->gflops, share);
                        /* "(on X)" where a chain or a fallback chose; "[layout]" where
                         * the output stayed in the backend's own layout */
                        int native_spec, n = cnb_backend_spec_names(v->backend, &native_spec);
                        int own = (int)strlen(v->ran_on) == n && !strncmp(v->ran_on, v->backend, n);
                        const char *other = own || !strcmp(v->ran_on, "host") ? NULL : v->ran_on;
                        int native = strcmp(v->layout, "nchw") != 0;
                        fprintf(f, " %.3f%s%s%s%s%s%s | %.3f | %s |", v->s.median,
                                other ? " (on " : "", other ? other : "", other ? ")" : "",
                                native ? " [" : "", native ? v->layout : "", native ? "]" : "",
                                vb->s.median, cell);
                        sums[b][0] += v->s.median, sums[b][1] += vb->s.median;
                        break;
                    }
                fprintf(f, "\n");
            }
            fprintf(f, "| sum of layers | |");
            for (int b = 0; b < ns; b++) {
                const row *t = find_row(r, m->name, bc->backends[shown[b]], threads, 1);
                fprintf(f, " %.2f | %.2f | whole step %.2f |", sums[b][0], sums[b][1],
                        t ? t->s.median : NAN);
            }
            fprintf(f, "\n\n![layers](layers-%s-t%d.png)\n\n", m->name, threads);
            library_table(f, r, m->name, threads);
        }
    }
    fprintf(f, "Files: bench.csv (whole network), layers.csv (per layer), peak.csv, meta.ini; "
               "each plot as .dat, .gp, .png and .svg (`gnuplot X.gp` here redraws it).\n");
    return cnb_atomic_commit(&a);
}

int cnb_bench_run(cnb_conf *conf, cnb_registry *reg)
{
    bconf bc;
    results r;
    memset(&r, 0, sizeof r);
    int rc = parse(&bc, conf, reg);
    char where[PATH_MAX + 32];
    const cnb_kv *bk = cnb_section_get(cnb_conf_section(conf, "bench"), "backends");
    if (bk && bk->line > 0) /* line 0: set on the command line */
        snprintf(where, sizeof where, "%s:%d: [bench] backends", conf->path, bk->line);
    else
        snprintf(where, sizeof where, "%s: [bench] backends", conf->path);
    for (int b = 0; b < bc.nb && rc == 0; b++)
        rc = cnb_backend_spec_check(reg, bc.backends[b], where);
    if (rc == 0 && (bc.scaling || cnb_dist_size() > 1)) { /* under mpirun: always */
        cnb_scaling_spec sp = {.experiment = conf->path, .dir = bc.dir, .seed = bc.seed,
                               .nb = bc.nb, .nt = bc.nt, .warmup = bc.warmup,
                               .min_reps = bc.min_reps, .min_time = bc.min_time, .nm = bc.nm};
        snprintf(bc.dir, sizeof bc.dir, "%s/%s", bc.results, bc.name);
        for (int b = 0; b < bc.nb && b < CNB_SCALING_MAX; b++)
            sp.backends[b] = bc.backends[b];
        for (int t = 0; t < bc.nt && t < CNB_SCALING_MAX; t++)
            sp.threads[t] = bc.threads[t];
        for (int mi = 0; mi < bc.nm && mi < CNB_SCALING_MAX; mi++)
            sp.models[mi] = (cnb_scaling_model){bc.models[mi].name, bc.models[mi].path,
                                                &bc.models[mi].vars, bc.models[mi].batch};
        rc = cnb_scaling_run(&sp, reg);
        for (int mi = 0; mi < bc.nm; mi++)
            cnb_vars_free(&bc.models[mi].vars);
        return rc;
    }
    if (rc == 0) {
        snprintf(bc.dir, sizeof bc.dir, "%s/%s", bc.results, bc.name);
        rc = cnb_mkdirs(bc.dir);
    }
    for (int t = 0; t < bc.nt && rc == 0; t++) { /* the probes come in every timed round */
        cnb_peak *p = &r.peaks[r.n_peaks++];
        rc = cnb_peak_init(p, bc.threads[t], PROBE_SECONDS);
        printf("FMA probe, %d thread%s: %s, %.0f ms, one in every timed round (chosen from",
               p->threads, p->threads == 1 ? "" : "s", p->isa, p->probe_seconds * 1e3);
        for (int k = 0; k < 3; k++)
            if (p->tried[k] > 0)
                printf(" %s %.1f", cnb_peak_isas[k], p->tried[k]);
        printf(" GFLOP/s)\n");
    }
    if (rc == 0) {
        char path[PATH_MAX + 200];
        snprintf(path, sizeof path, "%s/peer.csv", bc.dir);
        unlink(path); /* this run's peer rows only */
    }
    int peer_off = !bc.peer[0];
    for (int mi = 0; mi < bc.nm && rc == 0; mi++)
        for (int t = 0; t < bc.nt && rc == 0; t++) {
            rc = measure_group(&r, &bc, &bc.models[mi], bc.threads[t], reg);
            for (int k = 0; rc == 0 && !peer_off && k < bc.peer_runs; k++)
                peer_off = run_peer(&bc, &bc.models[mi], bc.threads[t], &r) != 0;
            if (rc == 0)
                rc = write_csvs(&bc, &r); /* after every group: partial results survive */
        }
    if (rc == 0 && !bc.peer[0])
        snprintf(r.peer_note, sizeof r.peer_note, "No peer rows: [bench] names no peer script.");
    if (rc == 0) {
        read_peer_rows(&bc, &r);
        rc = write_csvs(&bc, &r);
    }
    if (rc == 0) {
        char path[PATH_MAX + 200];
        cnb_atomic a;
        snprintf(path, sizeof path, "%s/meta.ini", bc.dir);
        if ((rc = cnb_atomic_open(&a, path)) == 0) {
            fprintf(a.f, "[run]\nexperiment = %s\nseed = %llu\nsynthetic_data_stream = %d\n"
                         "order_stream = %d\n", conf->path, (unsigned long long)bc.seed,
                    CNB_STREAM_DATA, STREAM_BENCH);
            cnb_meta_write(a.f, reg);
            rc = cnb_atomic_commit(&a);
        }
    }
    for (int mi = 0; mi < bc.nm && rc == 0; mi++) {
        rc = plot_throughput(&bc, &r, &bc.models[mi]);
        for (int t = 0; t < bc.nt && rc == 0; t++)
            rc = plot_layers(&bc, &r, &bc.models[mi], bc.threads[t]);
    }
    if (rc == 0)
        rc = write_report(&bc, &r);
    for (int i = 0; i < r.n_peaks && rc == 0; i++) {
        printf("FP32 peak, ");
        peak_summary(stdout, &r.peaks[i]);
        printf("\n");
    }
    int n_bad = rc == 0 ? mistrusted(&r, NULL, 0) : 0;
    if (n_bad) {
        printf("%d share%s of peak above 100%%: a measurement error, not a result (MISTRUSTED "
               "in the report):\n", n_bad, n_bad == 1 ? "" : "s");
        mistrusted(&r, stdout, LIST_MISTRUSTED);
        if (n_bad > LIST_MISTRUSTED)
            printf("  and %d more\n", n_bad - LIST_MISTRUSTED);
    }
    if (rc == 0)
        printf("report: %s/report.md (bench.csv, layers.csv, peak.csv, plots)\n", bc.dir);
    for (int mi = 0; mi < bc.nm; mi++)
        cnb_vars_free(&bc.models[mi].vars);
    for (int i = 0; i < r.n_peaks; i++)
        cnb_peak_free(&r.peaks[i]);
    free(r.rows);
    free(r.layers);
    return rc;
}
