/*
 * benchreport.c - a bench's report.md: the machine and its measured peak, the method,
 * then per model the whole-network table (against the peers where they ran), its memory
 * table, and per thread count the per-layer table with the kernels against their library
 * calls alone.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "benchint.h"
#include "fsutil.h"
#include "meta.h"
#include "net.h"

static const char *plural(int n) { return n == 1 ? "" : "s"; }

int bench_share_mistrusted(double share, int direct_equivalent)
{
    return share > 1.0 && !direct_equivalent;
}

int cnb_bench_share_format(char *buf, size_t len, double gflops, double peak,
                           int direct_equivalent)
{
    double share = gflops / peak;
    if (isnan(share)) {
        snprintf(buf, len, "–");
        return 0;
    }
    if (bench_share_mistrusted(share, direct_equivalent)) {
        snprintf(buf, len, "MISTRUSTED: %.1f%% of peak (%.1f GFLOP/s against a probe max of "
                 "%.1f)", 100 * share, gflops, peak);
        return 1;
    }
    snprintf(buf, len, "%.1f%%%s", 100 * share, direct_equivalent ? " direct-equivalent" : "");
    return 0;
}

int bench_mistrusted(const results *r, FILE *f, int list)
{
    char msg[160];
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (cnb_bench_share_format(msg, sizeof msg, w->gflops, bench_peak_at(r, w->threads),
                                   w->algorithms[0]) &&
            n++ < list)
            fprintf(f, "  %s, %s, %d thread%s, %s: %s\n", w->model, w->backend, w->threads,
                    plural(w->threads), w->train ? "training step" : "forward pass", msg);
    }
    for (int i = 0; i < r->n_layers; i++) {
        const layer_row *w = &r->layers[i];
        if (cnb_bench_share_format(msg, sizeof msg, w->gflops, bench_peak_at(r, w->threads),
                                   w->algorithm[0]) &&
            n++ < list)
            fprintf(f, "  %s, %s, %d thread%s, %s %s: %s\n", w->model, w->backend, w->threads,
                    plural(w->threads), w->layer, w->backward ? "backward" : "forward", msg);
    }
    return n;
}

void bench_peak_summary(FILE *f, const cnb_peak *p)
{
    if (p->n == 0) {
        fprintf(f, "%d thread%s: no probes (nothing ran at this thread count)", p->threads,
                plural(p->threads));
        return;
    }
    fprintf(f, "%d thread%s: %.1f GFLOP/s, the maximum of %d probes sized to %.0f ms (%s; "
               "median %.1f, min %.1f)", p->threads, plural(p->threads), p->gflops,
            p->n, p->probe_seconds * 1e3, p->isa, p->median, p->min);
}

/* The title, the machine, and how the peak was measured: every probe's maximum, and how
 * init chose the probe's kernel. */
static void write_peak(FILE *f, const bconf *bc, const results *r)
{
    char cpu[256];
    cnb_cpuinfo("model name", cpu, sizeof cpu);
    fprintf(f, "# %s\n\nMachine: %s, %ld logical CPUs.\n\nMeasured FP32 peak: the maximum of "
               "short FMA probes (every thread runs independent chains of vector FMAs on "
               "registers), one probe in every round of the timed repetitions, whole network "
               "and per layer, at the round's thread count and in its shuffled order among the "
               "backends, each backend parked after its turn; so the probes saw the machine as "
               "the kernels around them did.", bc->name, cpu, sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < r->n_peaks; i++) {
        fprintf(f, "%s", i ? "; " : " ");
        bench_peak_summary(f, &r->peaks[i]);
    }
    if (!r->n_peaks)
        return;
    const cnb_peak *p = &r->peaks[0];
    fprintf(f, ". Its kernel is the fastest of this CPU's ISAs in a few probes before the "
               "run (%d thread%s:", p->threads, plural(p->threads));
    for (int k = 0, said = 0; k < 3; k++)
        if (p->tried[k] > 0)
            fprintf(f, "%s %s %.1f", said++ ? "," : "", cnb_peak_isas[k], p->tried[k]);
    fprintf(f, " GFLOP/s)");
}

/* What a share of peak means, how many are above 100%, and how everything was timed. */
static void write_method(FILE *f, const bconf *bc, const results *r)
{
    int n_bad = bench_mistrusted(r, NULL, 0);
    fprintf(f, ". Every share of peak is against that maximum. A share above 100%% is not a "
               "result but a measurement error (the peak or the FLOP count is wrong): it is "
               "printed as MISTRUSTED with the GFLOP/s and the probe maximum that produced it "
               "(bench.csv and layers.csv: peak_share empty, the share in peak_mistrusted). "
               "The one exception is a kernel that says it does fewer multiply-adds than its "
               "op's definition (Winograd's, cnnbench/backend.h `algorithm`): FLOPs are "
               "counted by the definition for every backend alike, so its share, and that of "
               "a network with such a layer, is direct-equivalent and may pass 100%% (the "
               "algorithm and algorithms columns name them). ");
    if (n_bad)
        fprintf(f, "**%d share%s in this report %s MISTRUSTED.**\n\n", n_bad, plural(n_bad),
                n_bad == 1 ? "is" : "are");
    else
        fprintf(f, "No share in this report is above 100%%.\n\n");
    char own[(MAX_MODELS + 1) * 96] = "";
    int used = 0;
    for (int mi = 0; mi < bc->nm; mi++)
        if (bc->models[mi].sample_time >= 0)
            used += snprintf(own + used, sizeof own - (size_t)used, "; %s: %.0f ms",
                             bc->models[mi].name, bc->models[mi].sample_time * 1e3);
    if (bc->shipped_sample_time >= 0 && bc->np)
        snprintf(own + used, sizeof own - (size_t)used, "; a peer's way as shipped: %.0f ms "
                 "(shipped_sample_time)", bc->shipped_sample_time * 1e3);
    fprintf(f, "Medians over samples interleaved across backends in a shuffled order, a "
               "sample of each per round. A whole-network sample runs forward passes back to "
               "back for %.0f ms%s, then training steps for as long (sample_time; the steps "
               "column, one count for each pass, calibrated on the fastest of 3 untimed "
               "steps), and each pass's time is their mean, so that a moment's preemption on "
               "a shared machine is spread over the sample rather than making one step an "
               "outlier; per-layer samples are "
               "one pass each. IQR = interquartile range; CV = coefficient of variation; own "
               "CV = that of the samples each over its machine factor, the median of the 4 "
               "samples of the group's other rows taken nearest in time, each over its row's "
               "median (samples.csv), so that a spell of the machine running slow for "
               "whatever ran in it is taken out and the row's own spread is left (≥ 10%% "
               "marked unstable); outliers beyond the Tukey fences are counted, never "
               "dropped. %s", bc->sample_time * 1e3, own,
            bc->pin ? "A group at fewer threads than the machine's CPUs runs pinned to the "
                      "first of them, the peers' processes too (`pin = no` leaves them "
                      "free). "
                    : "No group was pinned to CPUs (`pin = no`). ");
    fprintf(f, "Training step = forward + backward + SGD update. GFLOP/s count 2 FLOPs per "
               "multiply-add (training: 3× forward for conv and fc), over the taps of a "
               "convolution's kernel that fall inside its input, as benchdnn counts them: the "
               "taps on zero padding are no work (oneDNN skips them), so the dense count "
               "2·K·C·KH·KW·OH·OW of `cnnbench summary` would overstate a padded "
               "convolution's rate (AlexNet conv2 by 9.5%%, conv3 to conv5 by 11%%). Kernel "
               "creation is timed apart (create ms).\n\n");
    fprintf(f, "Memory, per backend's network (the memory tables; bench.csv in bytes): "
               "activations and parameters are the host's tensors, as allocated (the batch, its "
               "labels, every layer's output and its gradient; the weights, their gradients "
               "and momentum); kernel workspace is what the kernels hold of their own as each "
               "backend's kernel_bytes says (workspaces, what forward keeps for backward, "
               "reordered or packed weights, per-thread scratch; a fused run's kernel, its "
               "layers having none of their own; a backend's shared scratchpad, state_bytes), "
               "unknown where a backend cannot say (backend ABI 2.2 or before). Heap per "
               "training step and per forward pass: the bytes passed to malloc, calloc, "
               "realloc, posix_memalign, aligned_alloc and memalign by every thread and "
               "library of the process during a timed sample, over its steps, the median over "
               "the samples with its calls, and the most of a sample where more; the backend "
               "ABI says forward and backward allocate nothing; not counted in a sanitizer build, "
               "whose runtime replaces malloc. Peak RSS growth: how far the peak resident "
               "memory of a process of its own rose over its resident memory before the "
               "network was built; for a backend, `cnnbench summary --backend` building the "
               "network and running a forward pass and a training step (VmHWM, reset "
               "through /proc/self/clear_refs), so that no backend's figure depends on what "
               "the others left; for a peer, its own process from building the network to "
               "its last step (the interpreter and libraries not counted). A layer plugin's "
               "own buffers (dropout's mask) are in none of these "
               "but the peak RSS. A peer that only infers (ONNX Runtime) has a forward pass "
               "and no training step.\n\n");
    for (int p = 0; p < MAX_PEERS; p++)
        if (r->peer_note[p][0])
            fprintf(f, "%s\n\n", r->peer_note[p]);
}

/* One training row of the whole-network table, with its forward pass's images/s. */
static void model_row(FILE *f, const results *r, const row *t)
{
    const row *w = bench_find_row(r, t->model, t->backend, t->threads, 0);
    char share[160];
    cnb_bench_share_format(share, sizeof share, t->gflops, bench_peak_at(r, t->threads),
                           t->algorithms[0]);
    fprintf(f, "| %s | %d | %d | %.1f | %.1f | %.2f [%.2f–%.2f] | %.1f%% (%.1f%%)%s | "
               "%d × %d (%d) | %.1f | %.1f | %s |\n",
            t->backend, t->threads, t->batch, w ? w->ips : NAN, t->ips, t->s.median,
            t->s.q1, t->s.q3, 100 * t->s.cv, 100 * t->cv_own,
            t->cv_own >= CNB_UNSTABLE_CV ? " unstable" : "", t->s.n, t->steps,
            t->s.outliers, t->create_ms, t->gflops, share);
}

/* The row of a peer that only infers: its forward pass's images/s and create time; the
 * training columns empty. */
static void inference_row(FILE *f, const row *w)
{
    fprintf(f, "| %s | %d | %d | %.1f | – | – | – | – | %.1f | – | – |\n", w->backend,
            w->threads, w->batch, w->ips, w->create_ms);
}

/* The rows of the backends not timed at some thread count because they use fewer. */
static void not_run_rows(FILE *f, const bconf *bc)
{
    char why[64];
    for (int t = 0; t < bc->nt; t++)
        for (int b = 0; b < bc->nb; b++)
            if (bench_not_run(bc, b, bc->threads[t], why, sizeof why))
                fprintf(f, "| %s | %d | not run: it %s | | | | | | | | |\n", bc->backends[b],
                        bc->threads[t], why);
}

/* Under the whole-network table: a text field of each backend's rows (field, the offset of
 * a char array in row), once per backend (its rows at every thread count say the same),
 * under a heading; nothing where no backend has it. */
static void backend_notes(FILE *f, const results *r, const bmodel *m, size_t field,
                          const char *heading)
{
    int said = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const row *t = &r->rows[i], *before = NULL;
        const char *text = (const char *)t + field;
        for (int k = 0; k < i && !before; k++)
            if (!strcmp(r->rows[k].model, t->model) && !strcmp(r->rows[k].backend, t->backend))
                before = &r->rows[k];
        if (!text[0] || before || strcmp(t->model, m->name))
            continue;
        fprintf(f, "%s- %s: %s\n", said++ ? "" : heading, t->backend, text);
    }
}

/* The median over the row's turns of their involuntary context switches (faults: 0) or
 * page faults (1); NAN when a turn's are unknown. */
static double median_count(const row *w, int faults)
{
    double *x = malloc((size_t)(w->s.n ? w->s.n : 1) * sizeof *x), median = NAN;
    int n = 0;
    for (; x && n < w->s.n; n++) {
        x[n] = faults ? w->samples[n].faults : w->samples[n].switches;
        if (isnan(x[n]))
            break;
    }
    if (x && n && n == w->s.n) {
        cnb_sample_stats s;
        cnb_sample_summarize(x, n, &s);
        median = s.median;
    }
    free(x);
    return median;
}

/* Under a model's table, each unstable row's slowest sample over its machine factor, and
 * what the process that ran its turn went through against the row's median turn. */
static void unstable_notes(FILE *f, const results *r, const bmodel *m)
{
    int said = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (strcmp(w->model, m->name) || !(w->cv_own >= CNB_UNSTABLE_CV))
            continue;
        int slow = 0;
        for (int k = 1; k < w->s.n; k++)
            if (w->samples[k].ms / w->samples[k].machine >
                w->samples[slow].ms / w->samples[slow].machine)
                slow = k;
        const bench_sample *t = &w->samples[slow];
        const double sw = median_count(w, 0), pf = median_count(w, 1);
        fprintf(f, "%s- %s, %d thread%s, %s: round %d, %.2f× the row's median, %.2f× "
                   "divided by its machine factor (%.2f)",
                said++ ? "" : "\nUnstable rows, each its slowest sample (samples.csv):\n\n",
                w->backend, w->threads, plural(w->threads), w->train ? "training" : "forward",
                slow, t->ms / w->s.median, t->ms / t->machine / w->s.median, t->machine);
        if (isnan(sw) || isnan(pf))
            fprintf(f, "\n");
        else
            fprintf(f, "; its turn %.0f involuntary context switches and %.0f page faults, "
                       "the row's median turn %.0f and %.0f\n",
                    t->switches, t->faults, sw, pf);
    }
    if (said)
        fprintf(f, "\nSwitches far above the median turn's: the scheduler took CPUs from the "
                   "row's threads, for another process of this machine or more threads of its "
                   "own than CPUs. Faults far above: the row mapped memory. Neither: a "
                   "slowdown nothing in this machine counts, such as a virtual machine's "
                   "host running other guests on its cores.\n");
}

/* The whole-network table of model m, headed by the variables it was timed with. */
static void model_table(FILE *f, const bconf *bc, const results *r, const bmodel *m)
{
    char label[600];
    bench_model_label(m, label, sizeof label);
    fprintf(f, "## %s\n\n| backend | threads | batch | forward img/s | training img/s | "
               "training ms (median, IQR) | CV (own) | samples × steps (outliers) | create ms | "
               "training GFLOP/s | of peak |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
               "---:|\n",
            label);
    for (int peer = 0; peer < 2; peer++) { /* the peers' rows last */
        for (int i = 0; i < r->n_rows; i++) {
            const row *w = &r->rows[i];
            if (w->train || strcmp(w->model, m->name) || (w->peer > 0) != peer)
                continue;
            const row *t = bench_find_row(r, w->model, w->backend, w->threads, 1);
            if (t)
                model_row(f, r, t);
            else
                inference_row(f, w);
        }
        if (!peer)
            not_run_rows(f, bc);
    }
    backend_notes(f, r, m, offsetof(row, fused), "\nFused runs, one kernel each (a spec "
                  "with :nofuse runs them layer by layer):\n\n");
    backend_notes(f, r, m, offsetof(row, algorithms), "\nLayers with fewer multiply-adds "
                  "than the FLOPs counted (their backend's GFLOP/s and share are "
                  "direct-equivalent):\n\n");
    unstable_notes(f, r, m);
}

/* bytes as "512 B", "3.8 KiB", "12.4 MiB" into buf; returns buf. */
static const char *human_bytes(char *buf, size_t len, double bytes)
{
    if (bytes < 1024)
        snprintf(buf, len, "%.0f B", bytes);
    else if (bytes < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", bytes / 1024);
    else
        snprintf(buf, len, "%.1f MiB", bytes / (1024 * 1024));
    return buf;
}

/* A heap cell: "0", "3.8 KiB in 62 calls", "... (most 5.0 KiB)"; "not counted" (a
 * sanitizer build). */
static void heap_cell(char *buf, size_t len, const row *t)
{
    char b[32], most[32];
    if (!t || isnan(t->alloc_bytes))
        snprintf(buf, len, "not counted");
    else if (t->alloc_bytes_max == 0)
        snprintf(buf, len, "0");
    else if (t->alloc_bytes_max > t->alloc_bytes)
        snprintf(buf, len, "%s in %.10g call%s (most %s)",
                 human_bytes(b, sizeof b, t->alloc_bytes), t->allocs, t->allocs == 1 ? "" : "s",
                 human_bytes(most, sizeof most, t->alloc_bytes_max));
    else
        snprintf(buf, len, "%s in %.10g call%s", human_bytes(b, sizeof b, t->alloc_bytes),
                 t->allocs, t->allocs == 1 ? "" : "s");
}

/* One training row's line of the memory table, with its forward pass's heap (a peer's
 * row: its forward pass's, when it only infers). */
static void memory_row(FILE *f, const results *r, const row *t)
{
    char rss[48] = "–", train[128], fwd[128], kernels[48] = "unknown";
    if (!isnan(t->peak_mb))
        snprintf(rss, sizeof rss, "%.1f", t->peak_mb);
    if (t->peer) {
        fprintf(f, "| %s | %d | %d | – | – | – | – | – | %s |\n", t->backend, t->threads,
                t->batch, rss);
        return;
    }
    heap_cell(train, sizeof train, t);
    heap_cell(fwd, sizeof fwd, bench_find_row(r, t->model, t->backend, t->threads, 0));
    if (!isnan(t->kernel_bytes))
        snprintf(kernels, sizeof kernels, "%.2f", t->kernel_bytes / (1024 * 1024));
    fprintf(f, "| %s | %d | %d | %.2f | %.2f | %s | %s | %s | %s |\n", t->backend, t->threads,
            t->batch, t->activation_bytes / (1024 * 1024), t->param_bytes / (1024 * 1024),
            kernels, train, fwd, rss);
}

/* Model m's memory table: every backend's and peer's row, the peers' last (the method says
 * what each column measures). */
static void memory_table(FILE *f, const results *r, const bmodel *m)
{
    fprintf(f, "\nMemory of %s in MiB, and what one pass allocated on the heap (the method "
               "above says how each is measured):\n\n| backend | threads | "
               "batch | activations | parameters | kernel workspace | heap per training step | "
               "heap per forward pass | peak RSS growth |\n|---|---:|---:|---:|---:|---:|---:|"
               "---:|---:|\n", m->name);
    for (int peer = 0; peer < 2; peer++)
        for (int i = 0; i < r->n_rows; i++) {
            const row *w = &r->rows[i];
            if (w->train || strcmp(w->model, m->name) || (w->peer > 0) != peer)
                continue;
            const row *t = bench_find_row(r, w->model, w->backend, w->threads, 1);
            memory_row(f, r, t ? t : w);
        }
}

/* How each way of each peer ran model m, once per row (its rows at every thread count say
 * the same but for the counts). */
static void peer_hows(FILE *f, const results *r, const bmodel *m)
{
    int said = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (w->train || w->peer == 0 || strcmp(w->model, m->name))
            continue;
        fprintf(f, "%s- %s, %d thread%s: %s\n", said++ ? "" : "\nHow the peers ran:\n\n",
                w->backend, w->threads, plural(w->threads), w->how);
    }
}

/* Pass `train` of the fastest backend against each peer's fastest tuned way, pair by pair
 * from the same rounds. */
static void pass_pairs(FILE *f, const results *r, const bmodel *m, int train)
{
    int said = 0;
    for (int i = 0; i < r->n_pairs; i++) {
        const pair *p = &r->pairs[i];
        if (strcmp(p->model, m->name) || p->train != train)
            continue;
        if (!said++)
            fprintf(f, "\n%s, each peer's fastest tuned way's time over the fastest backend's, "
                    "each pair from the same round (median of the pairs' ratios; above 1: the "
                    "backend is faster):\n\n", train ? "Training step" : "Forward pass");
        fprintf(f, "- %d thread%s: %s against %s: %.2f× (IQR %.2f–%.2f, %d pairs)\n",
                p->threads, plural(p->threads), p->backend, p->peer, p->ratio.median,
                p->ratio.q1, p->ratio.q3, p->ratio.n);
    }
}

/* The fastest backend against each peer, forward pass and training step; then the plot. */
static void peer_pairs(FILE *f, const results *r, const bmodel *m)
{
    pass_pairs(f, r, m, 0);
    pass_pairs(f, r, m, 1);
    fprintf(f, "\n![throughput](throughput-%s.png)\n\n", m->name);
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
                       "---:|\n", threads, plural(threads));
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

/* One backend's cells of a layer: forward ms, "(on X)" where a chain or a fallback chose,
 * "[layout]" where the output stayed in the backend's own layout, "(fused: run)" where
 * the time is a fused run's and the algorithm where it has fewer multiply-adds; backward
 * ms; the forward GFLOP/s and share of peak. A layer of a run but its first says which
 * layer has its time, a view that it has none. */
static void layer_cells(FILE *f, const results *r, const layer_row *v, int threads)
{
    if (v->fused_into[0]) {
        fprintf(f, " fused into %s | fused | – |", v->fused_into);
        return;
    }
    if (!v->s.n) { /* CNB_LAYER_VIEW */
        fprintf(f, " none (a view) | none | – |");
        return;
    }
    char share[160], cell[200];
    if (cnb_bench_share_format(share, sizeof share, v->gflops, bench_peak_at(r, threads),
                               v->algorithm[0]))
        snprintf(cell, sizeof cell, "%s", share);
    else
        snprintf(cell, sizeof cell, "%.1f (%s)", v->gflops, share);
    int native_spec, fuse_spec;
    const int n = cnb_backend_spec_names(v->backend, &native_spec, &fuse_spec);
    int own = (int)strlen(v->ran_on) == n && !strncmp(v->ran_on, v->backend, n);
    const char *other = own || !strcmp(v->ran_on, "host") ? NULL : v->ran_on;
    int native = strcmp(v->layout, "nchw") != 0;
    fprintf(f, " %.3f%s%s%s%s%s%s%s%s%s%s%s | %.3f | %s |", v->s.median,
            other ? " (on " : "", other ? other : "", other ? ")" : "", native ? " [" : "",
            native ? v->layout : "", native ? "]" : "", v->run[0] ? " (fused: " : "", v->run,
            v->run[0] ? ")" : "", v->algorithm[0] ? " " : "", v->algorithm, v[1].s.median,
            cell);
}

/* The head of a per-layer table: the backends that ran at `threads` into shown[]; their
 * number. */
static int layer_head(FILE *f, const bconf *bc, const results *r, const bmodel *m,
                      int threads, int *shown)
{
    fprintf(f, "### %s per layer, %d thread%s (ms per batch, median; GFLOP/s and share of the "
               "%d-thread peak; [layout]: the output passed to the next layer in the backend's "
               "own layout, not NCHW; fused: a run of layers done by one kernel, its time and "
               "FLOPs on its first layer; winograd: fewer multiply-adds than the FLOPs "
               "counted, the share direct-equivalent)\n\n| layer | plugin |",
            m->name, threads, plural(threads), threads);
    int ns = 0;
    for (int b = 0; b < bc->nb; b++)
        if (bench_find_row(r, m->name, bc->backends[b], threads, 1)) {
            shown[ns++] = b;
            fprintf(f, " %s fwd | bwd | fwd GFLOP/s (peak) |", bc->backends[b]);
        }
    fprintf(f, "\n|---|---|");
    for (int b = 0; b < ns; b++)
        fprintf(f, "---:|---:|---:|");
    fprintf(f, "\n");
    return ns;
}

/* Model m's layers at `threads`, a row each, on every backend that ran; the sums of the
 * layers against the whole step; the plot; the library calls' table. */
static void layer_table(FILE *f, const bconf *bc, const results *r, const bmodel *m,
                        int threads)
{
    int shown[MAX_BACKENDS], ns = layer_head(f, bc, r, m, threads, shown);
    double sums[MAX_BACKENDS][2] = {{0}};
    for (int i = 0; ns && i < r->n_layers; i += 2) {
        const layer_row *w = &r->layers[i];
        if (strcmp(w->model, m->name) || w->threads != threads ||
            strcmp(w->backend, bc->backends[shown[0]]))
            continue;
        fprintf(f, "| %s | %s |", w->layer, w->plugin);
        for (int b = 0; b < ns; b++) {
            const layer_row *v = bench_find_layer(r, m->name, bc->backends[shown[b]],
                                                  threads, w->layer);
            if (v) {
                layer_cells(f, r, v, threads);
                sums[b][0] += v[0].s.median, sums[b][1] += v[1].s.median; /* fused: 0 */
            }
        }
        fprintf(f, "\n");
    }
    fprintf(f, "| sum of layers | |");
    for (int b = 0; b < ns; b++) {
        const row *t = bench_find_row(r, m->name, bc->backends[shown[b]], threads, 1);
        fprintf(f, " %.2f | %.2f | whole step %.2f |", sums[b][0], sums[b][1],
                t ? t->s.median : NAN);
    }
    fprintf(f, "\n\n![layers](layers-%s-t%d.png)\n\n", m->name, threads);
    library_table(f, r, m->name, threads);
}

int bench_write_report(const bconf *bc, const results *r)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, bc->dir, "report.md"))
        return CNB_EIO;
    write_peak(a.f, bc, r);
    write_method(a.f, bc, r);
    for (int mi = 0; mi < bc->nm; mi++) {
        model_table(a.f, bc, r, &bc->models[mi]);
        memory_table(a.f, r, &bc->models[mi]);
        peer_hows(a.f, r, &bc->models[mi]);
        peer_pairs(a.f, r, &bc->models[mi]);
        for (int ti = 0; ti < bc->nt && bc->layers; ti++)
            layer_table(a.f, bc, r, &bc->models[mi], bc->threads[ti]);
    }
    fprintf(a.f, "Files: bench.csv (whole network), layers.csv (per layer), peak.csv, meta.ini; "
                 "each plot as .dat, .gp, .png and .svg (`gnuplot X.gp` here redraws it).\n");
    return cnb_atomic_commit(&a);
}
