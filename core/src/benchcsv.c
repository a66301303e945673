/*
 * benchcsv.c - a bench's tables as data: bench.csv (whole network, one row per model,
 * backend, threads and pass), layers.csv (per layer and direction) and peak.csv (the FMA
 * probes per thread count). Written after every group, so partial results survive.
 * fused_runs (bench.csv) names the runs of layers a backend ran as one kernel; in
 * layers.csv a run's time is on its first layer's rows, and fused_run names the run on
 * the rows of each of its layers, those after the first with their measurements empty.
 * algorithm (layers.csv) names a layer's fewer multiply-adds than its op's definition
 * ("winograd"), algorithms (bench.csv) a network's such layers: their GFLOP/s and
 * peak_share are direct-equivalent, and may pass 1.
 * samples.csv has every whole-network sample behind bench.csv's statistics, in the order
 * taken: the group's round (a row's k-th sample is from round k), its place in the round's
 * shuffled order (the FMA probe's place counted), when its turn began (seconds from the
 * group's timed passes' start), one pass's milliseconds, the GFLOP/s of the probe of the
 * same round and its machine factor (the median of the 4 samples of the group's other
 * rows nearest in time, each over its row's median), so that a slow sample can be told
 * from a slow machine, and what the process that ran its turn (both passes) went through:
 * turn_switches, its threads' involuntary context switches, and turn_faults, its page
 * faults (proccount.h; empty: unknown). bench.csv's cv_own is the CV of the row's samples
 * each over its machine factor, the row's own spread; unstable: cv_own >= 0.10.
 * bench.csv's memory columns, in bytes, empty where unknown: what the backend's network
 * holds (activation_bytes: the batch, its labels, every layer's output and gradient;
 * param_bytes: weights, gradients, momentum; kernel_bytes: its kernels' own, empty when a
 * backend cannot say) and what one repetition of the row's pass allocated on the heap
 * (alloc_bytes and allocs: medians over the timed repetitions; alloc_bytes_max: the
 * most of one), all empty for a peer; peak_rss_mb, in MiB, is every row's own process's
 * (a backend's: `cnnbench summary --backend`, run by the bench for each network).
 */
#include <math.h>
#include <string.h>

#include "benchint.h"
#include "csv.h"
#include "fsutil.h"

/* peak_share as the CSVs carry it: empty above 100%, where the last column,
 * peak_mistrusted, carries the impossible share instead (empty otherwise), unless it is
 * direct-equivalent (a layer with fewer multiply-adds than counted: the algorithm
 * column). NAN (a layer fused into another, a view): empty too. */
static void csv_share(FILE *f, double share, const char *algorithm)
{
    if (bench_share_mistrusted(share, algorithm[0]) || isnan(share))
        fprintf(f, ",");
    else
        fprintf(f, "%.4f,", share);
}

static void csv_mistrusted(FILE *f, double share, const char *algorithm)
{
    if (bench_share_mistrusted(share, algorithm[0]))
        fprintf(f, ",%.4f\n", share);
    else
        fprintf(f, ",\n");
}

/* Every share against the highest probe of the whole run so far: a later group's probes
 * may raise it, so the shares are set again before anything is written. */
static void set_shares(results *r)
{
    for (int i = 0; i < r->n_rows; i++)
        r->rows[i].share = r->rows[i].gflops / bench_peak_at(r, r->rows[i].threads);
    for (int i = 0; i < r->n_layers; i++)
        r->layers[i].share = r->layers[i].gflops / bench_peak_at(r, r->layers[i].threads);
}

static int write_bench_csv(const bconf *bc, const results *r)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "bench.csv"))
        return CNB_EIO;
    fprintf(a.f, "model,backend,batch,threads,pass,reps,steps_per_rep,median_ms,min_ms,q1_ms,"
                 "q3_ms,cv,cv_own,outliers,images_per_second,unstable,create_ms,gflops,peak_share,"
                 "peak_rss_mb,activation_bytes,param_bytes,kernel_bytes,alloc_bytes,allocs,"
                 "alloc_bytes_max,how,fused_runs,algorithms,peak_mistrusted\n");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        fprintf(a.f, "%s,%s,%d,%d,%s,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%.2f,%d,%.1f,%.2f,",
                w->model, w->backend, w->batch, w->threads, w->train ? "train" : "forward",
                w->s.n, w->steps, w->s.median, w->s.min, w->s.q1, w->s.q3, w->s.cv,
                w->cv_own, w->s.outliers, w->ips, w->cv_own >= CNB_UNSTABLE_CV,
                w->create_ms, w->gflops);
        csv_share(a.f, w->share, w->algorithms);
        if (!isnan(w->peak_mb))
            fprintf(a.f, "%.1f", w->peak_mb);
        const double memory[] = {w->activation_bytes, w->param_bytes, w->kernel_bytes,
                                 w->alloc_bytes, w->allocs, w->alloc_bytes_max};
        for (size_t k = 0; k < sizeof memory / sizeof memory[0]; k++)
            if (isnan(memory[k]))
                fputc(',', a.f);
            else
                fprintf(a.f, ",%.10g", memory[k]);
        fputc(',', a.f);
        cnb_csv_field(a.f, w->how); /* how: commas, and whatever the peer says */
        fprintf(a.f, ",%s,", w->fused);
        cnb_csv_field(a.f, w->algorithms);
        csv_mistrusted(a.f, w->share, w->algorithms);
    }
    return cnb_atomic_commit(&a) ? CNB_EIO : 0;
}

static int write_layers_csv(const bconf *bc, const results *r)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "layers.csv"))
        return CNB_EIO;
    fprintf(a.f, "model,backend,ran_on,batch,threads,layer,plugin,direction,reps,median_ms,q1_ms,"
                 "q3_ms,cv,gflops,peak_share,layout,library_ms,library_share,fused_run,"
                 "algorithm,peak_mistrusted\n");
    for (int i = 0; i < r->n_layers; i++) {
        const layer_row *w = &r->layers[i];
        fprintf(a.f, "%s,%s,%s,%d,%d,%s,%s,%s,", w->model, w->backend, w->ran_on, w->batch,
                w->threads, w->layer, w->plugin, w->backward ? "backward" : "forward");
        if (!w->s.n) { /* timed in its run's first layer's rows, or a view: no pass */
            fprintf(a.f, ",,,,,,,,,,%s,,\n", w->run);
            continue;
        }
        fprintf(a.f, "%d,%.5f,%.5f,%.5f,%.4f,%.3f,", w->s.n, w->s.median, w->s.q1, w->s.q3,
                w->s.cv, w->gflops);
        csv_share(a.f, w->share, w->algorithm);
        fprintf(a.f, "%s,", w->layout);
        if (w->lib.n)
            fprintf(a.f, "%.5f,%.4f", w->lib.median, w->lib.median / w->s.median);
        else
            fprintf(a.f, ",");
        fprintf(a.f, ",%s,%s", w->run, w->algorithm);
        csv_mistrusted(a.f, w->share, w->algorithm);
    }
    return cnb_atomic_commit(&a) ? CNB_EIO : 0;
}

static int write_samples_csv(const bconf *bc, const results *r)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "samples.csv"))
        return CNB_EIO;
    fprintf(a.f, "model,backend,threads,pass,round,position,at_s,steps,ms,probe_gflops,"
                 "machine_factor,turn_switches,turn_faults\n");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        for (int k = 0; k < w->s.n; k++) {
            const bench_sample *t = &w->samples[k];
            fprintf(a.f, "%s,%s,%d,%s,%d,%d,%.3f,%d,%.4f,%.1f,%.4f", w->model, w->backend,
                    w->threads, w->train ? "train" : "forward", k, t->position, t->at,
                    w->steps, t->ms, t->probe, t->machine);
            for (int c = 0; c < 2; c++) {
                const double count = c ? t->faults : t->switches;
                if (isnan(count))
                    fputc(',', a.f);
                else
                    fprintf(a.f, ",%.0f", count);
            }
            fputc('\n', a.f);
        }
    }
    return cnb_atomic_commit(&a) ? CNB_EIO : 0;
}

static int write_peak_csv(const bconf *bc, const results *r)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "peak.csv"))
        return CNB_EIO;
    fprintf(a.f, "threads,isa,probe_ms,probes,max_gflops,median_gflops,min_gflops\n");
    for (int i = 0; i < r->n_peaks; i++) {
        const cnb_peak *p = &r->peaks[i];
        fprintf(a.f, "%d,%s,%.0f,%d,%.1f,%.1f,%.1f\n", p->threads, p->isa,
                p->probe_seconds * 1e3, p->n, p->gflops, p->median, p->min);
    }
    return cnb_atomic_commit(&a) ? CNB_EIO : 0;
}

int bench_write_csvs(const bconf *bc, results *r)
{
    set_shares(r);
    if (write_bench_csv(bc, r) || write_samples_csv(bc, r) || write_layers_csv(bc, r) ||
        write_peak_csv(bc, r))
        return CNB_EIO;
    return 0;
}
