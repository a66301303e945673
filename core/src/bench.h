/*
 * bench.h - backend speed: whole-network and per-layer timing of models on backends.
 *
 * A time experiment (`mode = time`):
 *
 *   [experiment]  name, mode = time, seed, results
 *   [bench]       backends (list), threads (list), warmup, min_reps, min_time (seconds),
 *                 layers (yes | no: the per-layer pass), peer (scripts adding rows,
 *                 comma-separated, e.g. ../scripts/pytorch-peer.py,
 *                 ../scripts/onnxruntime-peer.mjs; optional; each an absolute path, or one
 *                 from the file's folder; what it is given and answers: benchpeer.c; each
 *                 runs in the rounds, one process per way it says it runs),
 *                 scaling (yes: the data-parallel step at mpirun's rank count instead,
 *                 scaling.h; any time experiment under mpirun is timed that way)
 *   [bench.NAME]  one per model: model (file), vars ("act=relu pool=max": over the model's
 *                 [vars]; the report and the peer get every variable as timed), batch,
 *                 sample_time (its own, over [bench]'s), and per-backend overrides
 *                 BACKEND.batch, BACKEND.min_reps, BACKEND.min_time, BACKEND.threads
 *
 * Method. For each model and thread count, every backend gets its own network with the
 * same weights (same seed) and the same synthetic batch; kernel creation is timed apart.
 * After `warmup` untimed iterations each, repetitions go round the backends in a freshly
 * shuffled order each round (so drift and neighbours' noise spread evenly), timing one
 * forward pass (evaluation mode) and one training step (forward, backward, SGD update)
 * per backend per round, until every backend has at least min_reps repetitions and
 * min_time seconds of each. Per-layer forward and backward times come from a separate
 * pass (timers inside the whole-network loop would inflate it). Every sample is kept:
 * median, min, interquartile range and coefficient of variation are reported, outliers
 * (Tukey fences) counted, never dropped, and a CV of 10% or more marks a result unstable.
 * GFLOP/s use the model's forward FLOPs (training: 3x for conv and fc, whose backward
 * computes both data and weight gradients) and are given as a share of the FP32 peak at
 * the same thread count: the maximum over the run of short FMA probes (peak.h), one in
 * every round of both passes, in the round's shuffled order, so that a probe sees the
 * machine in the state the kernels around it do. A share above 100% is a measurement
 * error, never a result: printed as MISTRUSTED with the figures that produced it. A peer
 * is a long-lived process per way of running it (benchpeer.c), told over a pipe to step
 * when its turn in a round comes, like a backend; the fastest backend's and each peer's
 * fastest tuned way's forward passes, and training steps (a peer that only infers has
 * none), from the same round are compared pair by pair (the median of their ratios, in
 * the report).
 */
#ifndef CNB_BENCH_H
#define CNB_BENCH_H

#include <stddef.h>

#include "conf.h"
#include "net.h"
#include "registry.h"

/* The training step's SGD update, the same for the backends, the peer and the
 * data-parallel step (scaling.h). */
#define CNB_BENCH_LR 1e-4
#define CNB_BENCH_MOMENTUM 0.9
#define CNB_BENCH_DECAY 5e-4

/* The seeded stream of the rounds' shuffled order (the bench's, and a timed claim's). */
#define CNB_BENCH_ORDER_STREAM 5

/* One training step of a bound network with that update: forward, backward, SGD. */
int cnb_bench_step(cnb_net *net);

/* A synthetic batch in net's input: N(0,1) pixels, then uniform labels, drawn from the
 * stream (seed, CNB_STREAM_DATA). */
void cnb_bench_synthetic_batch(cnb_net *net, uint64_t seed);

/* Model `path` with `vars` (the model's own [vars] beneath) built on `backend` at threads
 * and batch (its parameters and a synthetic batch from seed; *create_ms: binding it), as
 * every backend's network of a bench is. 0, or an error already said. */
int cnb_bench_build(cnb_net *net, cnb_conf *model, const cnb_registry *reg, const char *path,
                    const cnb_vars *vars, const char *backend, int threads, int batch,
                    uint64_t seed, double *create_ms);

/* cnb_bench_build, then a forward pass and a training step, with how far this process's
 * peak resident memory rose meanwhile over its resident memory before (*peak_mib, MiB;
 * NAN where Linux cannot say): `cnnbench summary --backend`, which the bench runs for
 * each of its networks in a process of its own (cnb_bench_set_program), so that what one
 * network left in a process is never counted for or against the next. */
int cnb_bench_memory(cnb_net *net, cnb_conf *model, const cnb_registry *reg,
                     const char *path, const cnb_vars *vars, const char *backend, int threads,
                     int batch, uint64_t seed, double *peak_mib);
/* The cnnbench program that does so: this one (/proc/self/exe) unless set; the test
 * program sets the build's. */
void cnb_bench_set_program(const char *path);

/* How a run treats its results folder. A folder that already holds a bench's results
 * (bench.csv or report.md) is refused before anything is timed (CNB_EINVAL, said with the
 * folder, when its results were written, --force and `elsewhere`), unless `force`. The
 * data-parallel timing (scaling.h) adds its rank count's rows to the folder instead. */
typedef struct cnb_bench_opts {
    int force;             /* replace the results a previous run left in the folder     */
    const char *out;       /* the results folder; NULL: [experiment] results/name       */
    const char *elsewhere; /* how this command writes elsewhere: "--out DIR"            */
} cnb_bench_opts;

/* Run the time experiment in `conf` (already loaded, --set applied). Writes
 * {bench.csv, layers.csv, peak.csv, meta.ini, report.md, plots} to its results folder. */
int cnb_bench_run(cnb_conf *conf, cnb_registry *reg, const cnb_bench_opts *opts);

/* A share of the FP32 peak as the report prints it, into buf: "41.6%"; "–" when either
 * figure is unknown; above 100%, "MISTRUSTED: 104.7% of peak (243.7 GFLOP/s against a
 * probe max of 232.6)". Returns 1 for a mistrusted share, else 0. direct_equivalent: the
 * GFLOP/s are of a pass with fewer multiply-adds than the FLOPs counted (Winograd,
 * cnb_backend_desc.algorithm), "133.8% direct-equivalent" at any share, never mistrusted. */
int cnb_bench_share_format(char *buf, size_t len, double gflops, double peak,
                           int direct_equivalent);

#endif
