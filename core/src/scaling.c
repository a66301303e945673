/*
 * scaling.c - data-parallel step times at this run's rank count, merged with earlier
 * runs' rank counts into one table and plot; the method is in scaling.h.
 */
#include "scaling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "csv.h"
#include "dist.h"
#include "errors.h"
#include "fsutil.h"
#include "meta.h"
#include "net.h"
#include "report.h"
#include "rng.h"
#include "stats.h"
#include "train.h"

#define MAX_ROWS 256
#define MAX_REPS 100000

typedef struct srow {
    char model[64], backend[80];
    int threads, ranks, nodes, per_node, batch, slice, reps, buckets;
    double step_ms, q1, q3, cv, slowest_ms, comm_ms, allreduce_ms, bytes, ips;
    char when[32];
    double step_min, comm_min, allreduce_min; /* the least disturbed repetitions */
} srow;

static const char csv_header[] =
    "model,backend,threads,ranks,nodes,ranks_per_node,global_batch,rank_batch,reps,buckets,"
    "step_ms,step_q1,step_q3,step_cv,slowest_rank_step_ms,comm_ms,allreduce_ms,"
    "allreduce_bytes,images_per_second,measured,step_min_ms,comm_min_ms,allreduce_min_ms\n";

static double median_ms(double *sec, int n, cnb_sample_stats *st)
{
    for (int i = 0; i < n; i++)
        sec[i] *= 1e3;
    cnb_sample_stats s;
    cnb_sample_summarize(sec, n, st ? st : &s);
    return st ? st->median : s.median;
}

/* This rank's slice of a synthetic global batch: N(0,1) pixels and uniform labels from
 * the stream (seed, CNB_STREAM_DATA), drawn sample by sample over the whole batch so that
 * every rank count trains the same numbers. */
static void synthetic_slice(cnb_net *net, uint64_t seed, int global, int start)
{
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_DATA);
    size_t per = cnb_shape_size(net->input);
    for (int s = 0; s < global; s++) {
        int mine = s >= start && s < start + net->batch;
        float *x = net->x + (size_t)(s - start) * per;
        for (size_t k = 0; k < per; k++) {
            float v = cnb_rng_normal(&rng);
            if (mine)
                x[k] = v;
        }
        uint32_t label = cnb_rng_below(&rng, (uint32_t)net->classes);
        if (mine)
            net->labels[s - start] = (int32_t)label;
    }
}

/* Each timed step's seconds: the whole step, its time inside MPI, and the allreduce of
 * its gradients run again alone (nothing to hide behind). */
typedef struct samples {
    double step[MAX_REPS], comm[MAX_REPS], allreduce[MAX_REPS];
    int reps;
} samples;

/* The warm-up steps, then timed steps until rank 0 has min_reps of them lasting min_time
 * (or MAX_REPS), every rank starting each step together. */
static int time_steps(cnb_dp *dp, const cnb_scaling_spec *sp, samples *t)
{
    const int size = cnb_dist_size();
    double loss, correct, spent = 0.0;
    int rc = 0;
    for (int i = 0; i < sp->warmup && rc == 0; i++)
        rc = cnb_dp_step(dp, (float)CNB_BENCH_LR, (float)CNB_BENCH_MOMENTUM,
                         (float)CNB_BENCH_DECAY, &loss, &correct);
    t->reps = 0;
    for (double enough = 0; rc == 0 && !enough && t->reps < MAX_REPS; t->reps++) {
        int k = t->reps;
        cnb_dist_barrier();
        cnb_dp_comm_seconds(dp);
        double t0 = cnb_now();
        rc = cnb_dp_step(dp, (float)CNB_BENCH_LR, (float)CNB_BENCH_MOMENTUM,
                         (float)CNB_BENCH_DECAY, &loss, &correct);
        t->step[k] = cnb_now() - t0;
        t->comm[k] = cnb_dp_comm_seconds(dp);
        cnb_dist_barrier();
        double t2 = cnb_now();
        if (rc == 0 && size > 1)
            rc = cnb_dp_sum_all(dp);
        t->allreduce[k] = size > 1 ? cnb_now() - t2 : 0.0;
        spent += t->step[k];
        enough = k + 1 >= sp->min_reps && spent >= sp->min_time;
        cnb_dist_bcast(&enough, 1); /* rank 0's count for all */
    }
    return rc;
}

/* The row of one measurement: medians, quartiles and minima, the slowest rank's median
 * step; rank 0 prints it. */
static int fill_row(srow *r, const cnb_scaling_model *m, const char *backend, int threads,
                    int slice, const cnb_dp *dp, samples *t)
{
    const int rank = cnb_dist_rank(), size = cnb_dist_size();
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", m->name);
    snprintf(r->backend, sizeof r->backend, "%s", backend);
    r->threads = threads, r->ranks = size, r->nodes = cnb_dist_nodes();
    r->per_node = cnb_dist_local_size(), r->batch = m->batch, r->slice = slice;
    r->reps = t->reps, r->buckets = cnb_dp_buckets(dp), r->bytes = (double)cnb_dp_bytes(dp);
    cnb_sample_stats st;
    r->step_ms = median_ms(t->step, t->reps, &st);
    r->q1 = st.q1, r->q3 = st.q3, r->cv = st.cv;
    r->step_min = st.min;
    r->comm_ms = median_ms(t->comm, t->reps, &st);
    r->comm_min = st.min;
    r->allreduce_ms = median_ms(t->allreduce, t->reps, &st);
    r->allreduce_min = st.min;
    double *each = calloc((size_t)size, sizeof *each); /* every rank's median step */
    if (!each)
        return CNB_ENOMEM;
    each[rank] = r->step_ms;
    int rc = cnb_dist_sum(each, size);
    for (int k = 0; k < size; k++)
        r->slowest_ms = fmax(r->slowest_ms, each[k]);
    free(each);
    r->ips = m->batch / (r->step_ms * 1e-3);
    time_t now = time(NULL);
    strftime(r->when, sizeof r->when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if (rank == 0)
        printf("%s, %s, %d thread%s, %d rank%s: step %.2f ms (min %.2f; slowest rank %.2f), in "
               "MPI %.2f ms (min %.2f), allreduce of %.1f MB alone %.2f ms (min %.2f); %d "
               "reps\n", m->name, backend, threads, threads == 1 ? "" : "s", size,
               size == 1 ? "" : "s", r->step_ms, r->step_min, r->slowest_ms, r->comm_ms,
               r->comm_min, r->bytes * 1e-6, r->allreduce_ms, r->allreduce_min, t->reps);
    fflush(stdout);
    return rc;
}

/* One model, backend and thread count at this run's rank count. 1: measured into *r; 0:
 * skipped (oversubscribed); negative: an error. */
static int measure(const cnb_scaling_spec *sp, const cnb_scaling_model *m, const char *backend,
                   int threads, const cnb_registry *reg, srow *r)
{
    const int rank = cnb_dist_rank(), size = cnb_dist_size();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if ((long)cnb_dist_local_size() * threads > cpus) {
        if (rank == 0)
            printf("%s, %s, %d thread%s: skipped: %d ranks on this node x %d threads is more "
                   "than its %ld CPUs\n", m->name, backend, threads, threads == 1 ? "" : "s",
                   cnb_dist_local_size(), threads, cpus);
        return 0;
    }
    int start, slice = cnb_train_slice(m->batch, rank, size, &start);
    if (slice < 1)
        return cnb_error("%s: [bench.%s] batch = %d cannot be split over %d ranks",
                         sp->experiment, m->name, m->batch, size);
    cnb_conf model;
    cnb_net net;
    cnb_dp *dp = NULL;
    samples *t = malloc(sizeof *t);
    int rc = t ? cnb_net_load(&net, &model, reg, m->path, m->vars) : CNB_ENOMEM;
    if (rc == 0)
        rc = cnb_net_init_params(&net, sp->seed);
    if (rc == 0)
        rc = cnb_net_bind(&net, backend, threads, slice);
    if (rc == 0) {
        synthetic_slice(&net, sp->seed, m->batch, start);
        rc = cnb_dp_create(&dp, &net, m->batch);
    }
    if (rc == 0)
        rc = time_steps(dp, sp, t);
    if (rc == 0)
        rc = fill_row(r, m, backend, threads, slice, dp, t);
    cnb_dp_free(dp);
    if (t) {
        cnb_net_free(&net);
        cnb_conf_free(&model);
    }
    free(t);
    return rc ? rc : 1;
}

/* ---- the table over every rank count measured ----------------------------------------- */

/* The rows earlier runs wrote to `path`, by column name: their count (0 when there is no
 * file yet), or CNB_EINVAL for a file without this version's columns. The minima came
 * later than the rest: a file without them reads NaN there. */
static int read_rows(const char *path, srow *rows, int max)
{
    static const char *const names[] = {
        "model", "backend", "threads", "ranks", "nodes", "ranks_per_node", "global_batch",
        "rank_batch", "reps", "buckets", "step_ms", "step_q1", "step_q3", "step_cv",
        "slowest_rank_step_ms", "comm_ms", "allreduce_ms", "allreduce_bytes",
        "images_per_second", "measured", NULL};
    static const char *const minima[] = {"step_min_ms", "comm_min_ms", "allreduce_min_ms"};
    cnb_csv c;
    int col[20], min_col[3], n = 0, rc = cnb_csv_open(&c, path);
    if (rc == CNB_ENOTFOUND) {
        cnb_csv_close(&c);
        return 0;
    }
    if (rc == 0)
        rc = cnb_csv_columns(&c, names, col);
    for (int k = 0; k < 3; k++)
        min_col[k] = cnb_csv_find(&c, minima[k]); /* -1: an older file */
    while (rc == 0 && n < max && (rc = cnb_csv_next(&c)) == 1) {
        srow *r = &rows[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->model, sizeof r->model, "%s", cnb_csv_get(&c, col[0]));
        snprintf(r->backend, sizeof r->backend, "%s", cnb_csv_get(&c, col[1]));
        int *ints[] = {&r->threads, &r->ranks, &r->nodes, &r->per_node, &r->batch,
                       &r->slice, &r->reps, &r->buckets};
        for (int k = 0; k < 8; k++)
            *ints[k] = atoi(cnb_csv_get(&c, col[2 + k]));
        double *dbl[] = {&r->step_ms, &r->q1, &r->q3, &r->cv, &r->slowest_ms, &r->comm_ms,
                         &r->allreduce_ms, &r->bytes, &r->ips};
        for (int k = 0; k < 9; k++)
            *dbl[k] = strtod(cnb_csv_get(&c, col[10 + k]), NULL);
        snprintf(r->when, sizeof r->when, "%s", cnb_csv_get(&c, col[19]));
        double *mins[] = {&r->step_min, &r->comm_min, &r->allreduce_min};
        for (int k = 0; k < 3; k++)
            *mins[k] = min_col[k] >= 0 ? strtod(cnb_csv_get(&c, min_col[k]), NULL) : NAN;
    }
    if (rc < 0)
        cnb_error("%s; move the file away to start its table afresh", c.err);
    cnb_csv_close(&c);
    return rc < 0 ? rc : n;
}

static int same_group(const srow *a, const srow *b)
{
    return strcmp(a->model, b->model) == 0 && strcmp(a->backend, b->backend) == 0 &&
           a->threads == b->threads && a->batch == b->batch;
}

static int by_group(const void *pa, const void *pb)
{
    const srow *a = pa, *b = pb;
    int c = strcmp(a->model, b->model);
    if (!c)
        c = strcmp(a->backend, b->backend);
    if (!c)
        c = a->threads - b->threads;
    if (!c)
        c = a->batch - b->batch;
    return c ? c : a->ranks - b->ranks;
}

/* The 1-rank step of r's group, or NAN. */
static double one_rank_ms(const srow *rows, int n, const srow *r)
{
    for (int i = 0; i < n; i++)
        if (rows[i].ranks == 1 && same_group(&rows[i], r))
            return rows[i].step_ms;
    return NAN;
}

static int write_csv(const char *dir, const srow *rows, int n)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, dir, "scaling.csv"))
        return CNB_EIO;
    fputs(csv_header, a.f);
    for (int i = 0; i < n; i++) {
        const srow *r = &rows[i];
        fprintf(a.f, "%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.0f,"
                     "%.1f,%s,%.4f,%.4f,%.4f\n", r->model, r->backend, r->threads, r->ranks,
                r->nodes, r->per_node, r->batch, r->slice, r->reps, r->buckets, r->step_ms, r->q1,
                r->q3, r->cv, r->slowest_ms, r->comm_ms, r->allreduce_ms, r->bytes, r->ips,
                r->when, r->step_min, r->comm_min, r->allreduce_min);
    }
    return cnb_atomic_commit(&a);
}

/* Per model: each group's step at each rank count, split into computation and the time
 * in MPI (stacked bars). */
static int plot_model(const char *dir, const srow *rows, int n, const char *model)
{
    char name[128], file[140], title[256];
    snprintf(name, sizeof name, "scaling-%.100s", model);
    snprintf(file, sizeof file, "%s.dat", name);
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, dir, file))
        return CNB_EIO;
    fprintf(a.f, "# label compute_ms mpi_ms (median step = compute + time in MPI calls)\n");
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].model, model) == 0)
            fprintf(a.f, "\"%s %dT x %d rank%s\" %.3f %.3f\n", rows[i].backend, rows[i].threads,
                    rows[i].ranks, rows[i].ranks == 1 ? "" : "s",
                    rows[i].step_ms - rows[i].comm_ms, rows[i].comm_ms);
    snprintf(title, sizeof title, "%.100s: training step at each rank count (median; global batch "
             "fixed)", model);
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, dir, name, title, "ms per step"))
        return CNB_EIO;
    fprintf(a.f, "set style data histogram\nset style histogram rowstacked\n"
                 "set style fill solid 0.7 border -1\nset boxwidth 0.6\nset yrange [0:*]\n"
                 "set xtics noenhanced rotate by -20\nset key top right\n"
                 "plot '%s.dat' using 2:xtic(1) title 'computation' lc rgb '#4477aa', '' using 3 "
                 "title 'in MPI (gradient sums not hidden)' lc rgb '#ee6677'\n", name);
    return cnb_plot_finish(&a, dir, name);
}

/* One model's table: a row per backend, threads and rank count, with the speedup and
 * efficiency against the 1-rank row of the same group. */
static void model_table(FILE *f, const srow *rows, int n, const char *model)
{
    fprintf(f, "## %s\n\n| backend | threads | ranks (nodes) | batch (a rank's) | step ms "
               "(median, IQR) | slowest rank ms | in MPI ms (share) | allreduce alone ms "
               "| gradient MB (buckets) | img/s | speedup | efficiency |\n"
               "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n", model);
    int without_base = 0;
    for (int i = 0; i < n; i++) {
        const srow *r = &rows[i];
        if (strcmp(r->model, model) != 0)
            continue;
        double t1 = one_rank_ms(rows, n, r), speedup = t1 / r->step_ms;
        char sp_s[32] = "–", eff_s[32] = "–";
        if (!isnan(t1) && r->ranks > 1) {
            snprintf(sp_s, sizeof sp_s, "%.2f×", speedup);
            snprintf(eff_s, sizeof eff_s, "%.0f%%", 100.0 * speedup / r->ranks);
        } else if (r->ranks == 1) {
            snprintf(sp_s, sizeof sp_s, "1 (base)");
        }
        without_base |= r->ranks > 1 && isnan(t1);
        /* min: the least disturbed repetition, for a machine shared with other work */
        fprintf(f, "| %s | %d | %d (%d) | %d (%d) | %.2f [%.2f–%.2f]%s; min %.2f | %.2f | "
                   "%.2f (%.1f%%); min %.2f | %.2f; min %.2f | %.2f (%d) | %.0f | %s | %s |\n",
                r->backend, r->threads, r->ranks, r->nodes, r->batch, r->slice, r->step_ms,
                r->q1, r->q3, r->cv >= CNB_UNSTABLE_CV ? " unstable" : "", r->step_min,
                r->slowest_ms, r->comm_ms, 100.0 * r->comm_ms / r->step_ms, r->comm_min,
                r->allreduce_ms, r->allreduce_min, r->bytes * 1e-6, r->buckets, r->ips, sp_s,
                eff_s);
    }
    if (without_base)
        fprintf(f, "\nSpeedup and efficiency need the 1-rank row of the same backend, "
                   "threads and batch: run the experiment once without mpirun.\n");
}

static int write_report(const cnb_scaling_spec *sp, const srow *rows, int n)
{
    char cpu[256];
    cnb_cpuinfo("model name", cpu, sizeof cpu);
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, sp->dir, "report.md"))
        return CNB_EIO;
    FILE *f = a.f;
    int multi = 0;
    for (int i = 0; i < n; i++)
        multi |= rows[i].nodes > 1;
    fprintf(f, "# Data-parallel scaling\n\nMachine (rank 0's): %s, %ld logical CPUs. MPI: %s. "
               "From %s; each rank count is the run that measured it (`cnnbench run` for 1 "
               "rank, `mpirun -np N cnnbench run` for N; scripts/scaling.sh runs both), its "
               "rows in scaling.csv with the time it was measured.\n\n",
            cpu, sysconf(_SC_NPROCESSORS_ONLN), cnb_dist_library(), sp->experiment);
    fprintf(f, "What is measured: the training step of data-parallel training (the step "
               "cnnbench run trains with under mpirun): every rank forward and backward on its "
               "slice of the same global batch (strong scaling: the batch means the same at "
               "any rank count), the gradients summed over the ranks with MPI_Iallreduce in "
               "buckets (CNB_BUCKET_MB) started as the backward pass completes them, the wait, "
               "the update. *in MPI* is the part of the step spent in MPI calls: the "
               "communication the computation did not hide. *allreduce alone* is the same sums "
               "of the whole gradient buffer timed apart, every bucket started at once: what "
               "they cost with nothing to hide behind. Speedup = 1-rank step / N-rank step (same model, "
               "backend, threads, batch); efficiency = speedup / N. Medians over the "
               "repetitions (IQR in brackets); ranks start every step together (a barrier, "
               "not timed); *min* is the least disturbed repetition, the figure to trust on a "
               "machine shared with other work.\n\n");
    fprintf(f, "What it cannot show: %s. Every rank here shares one memory: Open MPI moves "
               "the sums through shared memory (its vader transport, a memory copy), not a "
               "network, so *allreduce alone* is a copy's cost and says nothing of a "
               "cluster's links; and ranks of one node share its memory bandwidth and caches, "
               "which threads in one process share too. docs/scaling.md puts these step times "
               "against a ring allreduce over 10-200 Gb/s links for 2-256 nodes.\n\n",
            multi ? "ranks on more than one node appear in the table (see nodes), but the "
                    "sums' cost there is that of this cluster's network only"
                  : "more than one node: every row ran on one machine");
    char models[CNB_SCALING_MAX * 2][64];
    int nm = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < nm; k++)
            seen |= strcmp(models[k], rows[i].model) == 0;
        if (!seen && nm < CNB_SCALING_MAX * 2)
            snprintf(models[nm++], sizeof models[0], "%s", rows[i].model);
    }
    for (int k = 0; k < nm; k++) {
        model_table(f, rows, n, models[k]);
        fprintf(f, "\n![scaling](scaling-%s.png)\n\n", models[k]);
        int rc = plot_model(sp->dir, rows, n, models[k]);
        if (rc) {
            fclose(f);
            unlink(a.tmp);
            return rc;
        }
    }
    fprintf(f, "Files: scaling.csv (every rank count measured), one plot per model as .dat, "
               ".gp, .png and .svg (`gnuplot X.gp` here redraws it).\n");
    return cnb_atomic_commit(&a);
}

int cnb_scaling_run(const cnb_scaling_spec *sp, const cnb_registry *reg)
{
    const int lead = cnb_dist_rank() == 0;
    srow *rows = calloc(MAX_ROWS, sizeof *rows), mine[CNB_SCALING_MAX * CNB_SCALING_MAX * 2];
    int n_mine = 0, rc = rows ? 0 : CNB_ENOMEM;
    if (rc == 0 && lead) {
        printf("scaling: %d rank%s on %d node%s (%d on this one), %s\n", cnb_dist_size(),
               cnb_dist_size() == 1 ? "" : "s", cnb_dist_nodes(),
               cnb_dist_nodes() == 1 ? "" : "s", cnb_dist_local_size(), cnb_dist_library());
        fflush(stdout);
    }
    for (int mi = 0; mi < sp->nm && rc == 0; mi++)
        for (int b = 0; b < sp->nb && rc == 0; b++)
            for (int t = 0; t < sp->nt && rc == 0; t++) {
                int got = measure(sp, &sp->models[mi], sp->backends[b], sp->threads[t], reg,
                                  &mine[n_mine]);
                if (got < 0)
                    rc = got;
                else
                    n_mine += got;
            }
    if (rc == 0 && lead) { /* earlier runs' rank counts, this run's replacing its own */
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/scaling.csv", sp->dir);
        int n = 0, old = read_rows(path, rows, MAX_ROWS);
        rc = old < 0 ? old : 0;
        for (int i = 0; i < old; i++) {
            int replaced = 0;
            for (int k = 0; k < n_mine && !replaced; k++)
                replaced = same_group(&rows[i], &mine[k]) && rows[i].ranks == mine[k].ranks;
            if (!replaced)
                rows[n++] = rows[i];
        }
        for (int k = 0; k < n_mine && n < MAX_ROWS; k++)
            rows[n++] = mine[k];
        qsort(rows, (size_t)n, sizeof *rows, by_group);
        if (rc == 0)
            rc = cnb_mkdirs(sp->dir);
        if (rc == 0)
            rc = write_csv(sp->dir, rows, n);
        if (rc == 0)
            rc = write_report(sp, rows, n);
        if (rc == 0)
            printf("report: %s/report.md (scaling.csv: %d rows over every rank count run so "
                   "far)\n", sp->dir, n);
    }
    free(rows);
    if (rc && cnb_dist_size() > 1) { /* the other ranks would wait in the next barrier */
        fprintf(stderr, "cnnbench: rank %d: %s; stopping every rank\n", cnb_dist_rank(),
                cnb_last_error());
        cnb_dist_abort(1);
    }
    return rc;
}
