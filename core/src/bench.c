/*
 * bench.c - a time experiment from start to end (the method is in bench.h, the parts in
 * benchint.h): the configuration checked, the probes chosen, each (model, threads) group
 * timed and its peers run, then the CSVs, metadata, plots and report; and the lookups
 * every part makes over the results.
 */
#include "bench.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchint.h"
#include "dist.h"
#include "errors.h"
#include "fsutil.h"
#include "meta.h"
#include "net.h"
#include "scaling.h"

#define LIST_MISTRUSTED 10  /* shares above 100% listed on stdout (all are in the report) */

const row *bench_find_row(const results *r, const char *model, const char *backend,
                          int threads, int train)
{
    for (int i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i].model, model) == 0 && strcmp(r->rows[i].backend, backend) == 0 &&
            r->rows[i].threads == threads && r->rows[i].train == train)
            return &r->rows[i];
    return NULL;
}

const layer_row *bench_find_layer(const results *r, const char *model, const char *backend,
                                  int threads, const char *layer)
{
    for (int j = 0; j < r->n_layers; j += 2) {
        const layer_row *v = &r->layers[j];
        if (!strcmp(v->model, model) && v->threads == threads && !strcmp(v->backend, backend) &&
            !strcmp(v->layer, layer))
            return v;
    }
    return NULL;
}

double bench_peak_at(const results *r, int threads)
{
    for (int i = 0; i < r->n_peaks; i++)
        if (r->peaks[i].threads == threads && r->peaks[i].n > 0)
            return r->peaks[i].gflops;
    return NAN;
}

/* [bench] scaling = yes, or any time experiment under mpirun: scaling.h times it. */
static int run_scaling(bconf *bc, const cnb_conf *conf, cnb_registry *reg)
{
    cnb_scaling_spec sp = {.experiment = conf->path, .dir = bc->dir, .seed = bc->seed,
                           .nb = bc->nb, .nt = bc->nt, .warmup = bc->warmup,
                           .min_reps = bc->min_reps, .min_time = bc->min_time, .nm = bc->nm};
    for (int b = 0; b < bc->nb && b < CNB_SCALING_MAX; b++)
        sp.backends[b] = bc->backends[b];
    for (int t = 0; t < bc->nt && t < CNB_SCALING_MAX; t++)
        sp.threads[t] = bc->threads[t];
    for (int mi = 0; mi < bc->nm && mi < CNB_SCALING_MAX; mi++)
        sp.models[mi] = (cnb_scaling_model){bc->models[mi].name, bc->models[mi].path,
                                            &bc->models[mi].vars, bc->models[mi].batch};
    return cnb_scaling_run(&sp, reg);
}

/* One FMA probe kernel per thread count, chosen now, probed in every timed round. */
static int init_probes(const bconf *bc, results *r)
{
    int rc = 0;
    for (int t = 0; t < bc->nt && rc == 0; t++) {
        cnb_peak *p = &r->peaks[r->n_peaks++];
        rc = cnb_peak_init(p, bc->threads[t], PROBE_SECONDS, NULL);
        printf("FMA probe, %d thread%s: %s, %.0f ms, one in every timed round (chosen from",
               p->threads, p->threads == 1 ? "" : "s", p->isa, p->probe_seconds * 1e3);
        for (int k = 0; k < 3; k++)
            if (p->tried[k] > 0)
                printf(" %s %.1f", cnb_peak_isas[k], p->tried[k]);
        printf(" GFLOP/s)\n");
    }
    return rc;
}

/* Every group, model by model, the peers' processes among the backends; the CSVs after
 * each, so that partial results survive. */
static int measure_all(const bconf *bc, results *r, const cnb_registry *reg)
{
    int rc = 0;
    for (int mi = 0; mi < bc->nm && rc == 0; mi++)
        for (int t = 0; t < bc->nt && rc == 0; t++) {
            rc = bench_measure_group(r, bc, &bc->models[mi], bc->threads[t], reg);
            if (rc == 0)
                rc = bench_write_csvs(bc, r);
        }
    if (rc == 0 && bc->np == 0)
        snprintf(r->peer_note[0], sizeof r->peer_note[0],
                 "No peer rows: [bench] names no peer script.");
    return rc;
}

static int write_meta(const bconf *bc, const cnb_registry *reg)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "meta.ini"))
        return CNB_EIO;
    fprintf(a.f, "[run]\nexperiment = %s\nseed = %llu\nsynthetic_data_stream = %d\n"
                 "order_stream = %d\n", bc->conf->path, (unsigned long long)bc->seed,
            CNB_STREAM_DATA, STREAM_BENCH);
    cnb_meta_write(a.f, reg);
    return cnb_atomic_commit(&a);
}

static int write_outputs(const bconf *bc, const results *r, const cnb_registry *reg)
{
    int rc = write_meta(bc, reg);
    for (int mi = 0; mi < bc->nm && rc == 0; mi++) {
        rc = bench_plot_throughput(bc, r, &bc->models[mi]);
        for (int t = 0; t < bc->nt && rc == 0; t++)
            rc = bench_plot_layers(bc, r, &bc->models[mi], bc->threads[t]);
    }
    return rc ? rc : bench_write_report(bc, r);
}

/* The run's last lines: the peak per thread count, every share above 100%, the report. */
static void print_summary(const bconf *bc, const results *r)
{
    for (int i = 0; i < r->n_peaks; i++) {
        printf("FP32 peak, ");
        bench_peak_summary(stdout, &r->peaks[i]);
        printf("\n");
    }
    int n_bad = bench_mistrusted(r, NULL, 0);
    if (n_bad) {
        printf("%d share%s of peak above 100%%: a measurement error, not a result (MISTRUSTED "
               "in the report):\n", n_bad, n_bad == 1 ? "" : "s");
        bench_mistrusted(r, stdout, LIST_MISTRUSTED);
        if (n_bad > LIST_MISTRUSTED)
            printf("  and %d more\n", n_bad - LIST_MISTRUSTED);
    }
    printf("report: %s/report.md (bench.csv, samples.csv, layers.csv, peak.csv, plots)\n", bc->dir);
}

/* After a run with --force: the plots an earlier run left in the folder that this one did
 * not write again (another model or thread count), each written before `start`. */
static void remove_stale_plots(const bconf *bc, time_t start)
{
    static const char *const kinds[] = {"throughput-", "layers-"};
    static const char *const exts[] = {".dat", ".gp", ".png", ".svg"};
    DIR *d = opendir(bc->dir);
    for (struct dirent *ent; d && (ent = readdir(d)) != NULL;) {
        const char *name = ent->d_name, *ext = strrchr(name, '.');
        int ours = 0;
        for (int k = 0; k < 2; k++)
            ours |= strncmp(name, kinds[k], strlen(kinds[k])) == 0;
        for (int k = 0; k < 4 && ours && ext; k++) {
            char path[sizeof bc->dir + 260];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", bc->dir, name);
            if (strcmp(ext, exts[k]) == 0 && stat(path, &st) == 0 && st.st_mtime < start)
                unlink(path);
        }
    }
    if (d)
        closedir(d);
}

/* The timed run into bc->dir. */
static int run_timed(const bconf *bc, const cnb_registry *reg)
{
    results r;
    memset(&r, 0, sizeof r);
    time_t start = time(NULL);
    int rc = cnb_mkdirs(bc->dir);
    if (rc == 0)
        rc = init_probes(bc, &r);
    if (rc == 0)
        rc = measure_all(bc, &r, reg);
    if (rc == 0)
        rc = write_outputs(bc, &r, reg);
    if (rc == 0)
        remove_stale_plots(bc, start);
    if (rc == 0)
        print_summary(bc, &r);
    for (int i = 0; i < r.n_peaks; i++)
        cnb_peak_free(&r.peaks[i]);
    for (int i = 0; i < r.n_rows; i++)
        free(r.rows[i].samples);
    free(r.rows);
    free(r.layers);
    free(r.pairs);
    return rc;
}

/* A folder holding an earlier bench's results is not written over without --force. */
static int refuse_previous(const bconf *bc, const cnb_bench_opts *opts)
{
    static const char *const made[] = {"report.md", "bench.csv"};
    for (int i = 0; i < 2 && !opts->force; i++) {
        char path[PATH_MAX + 200], when[64];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", bc->dir, made[i]);
        if (stat(path, &st) != 0)
            continue;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&st.st_mtime));
        return cnb_error("%s already holds a bench's results (its %s, written %s): pass "
                         "--force to replace them, or %s to keep them", bc->dir, made[i],
                         when, opts->elsewhere);
    }
    return 0;
}

int cnb_bench_run(cnb_conf *conf, cnb_registry *reg, const cnb_bench_opts *opts)
{
    bconf bc;
    int rc = bench_conf_parse(&bc, conf, reg);
    if (rc == 0 && opts->out)
        snprintf(bc.dir, sizeof bc.dir, "%s", opts->out);
    else if (rc == 0)
        snprintf(bc.dir, sizeof bc.dir, "%s/%s", bc.results, bc.name);
    if (rc == 0 && (bc.scaling || cnb_dist_size() > 1)) /* mpirun: always */
        rc = run_scaling(&bc, conf, reg);
    else if (rc == 0 && (rc = refuse_previous(&bc, opts)) == 0)
        rc = run_timed(&bc, reg);
    bench_conf_free(&bc);
    return rc;
}
