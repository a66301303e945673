/*
 * benchint.h - what the parts of the bench share; bench.h is its interface and method.
 *
 * One file per thing that changes on its own:
 *   benchconf.c     the [bench] and [bench.NAME] sections, checked, into a bconf
 *   benchmeasure.c  one (model, threads) group: warm-up, interleaved rounds of the whole
 *                   network (and the heap each timed pass allocates) and of the per-layer
 *                   pass, the FMA probe among them; rows with what each network holds
 *   benchpeer.c     the peer scripts (scripts/pytorch-peer.py, onnxruntime-peer.mjs): the
 *                   ways each says it runs, a process per way, each a participant of the
 *                   rounds over a pipe
 *   benchcsv.c      bench.csv, layers.csv and peak.csv
 *   benchplot.c     the throughput and per-layer plots (gnuplot)
 *   benchreport.c   report.md, its memory tables too
 *   bench.c         a run from start to end, and the lookups over its results
 * Internal names start with bench_.
 */
#ifndef CNB_BENCHINT_H
#define CNB_BENCHINT_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "bench.h"
#include "conf.h"
#include "peak.h"
#include "registry.h"
#include "stats.h"

#define MAX_BACKENDS 8
#define MAX_THREADS 8
#define MAX_MODELS 8
#define MAX_REPS 100000
#define MAX_STEPS 1000      /* back to back in one whole-network sample */
#define STREAM_BENCH CNB_BENCH_ORDER_STREAM
#define PROBE_SECONDS 0.02  /* one FMA probe; one in every round of the timed passes */
#define MAX_PEERS 4         /* peer scripts */
#define MAX_WAYS 8          /* ways of running them, every peer's in a group together */

/* ---- configuration (benchconf.c) ---------------------------------------------------- */

typedef struct override {
    int batch, min_reps;   /* 0: not set */
    double min_time;       /* < 0: not set */
    int threads[MAX_THREADS], nt; /* thread counts this backend runs at; 0: all */
} override;

typedef struct bmodel {
    char name[64];
    char path[PATH_MAX];
    cnb_vars vars;                /* [bench.NAME] vars                                  */
    cnb_vars resolved;            /* every variable of the model as timed: its [vars]
                                     under those                                        */
    int batch;
    double sample_time;           /* < 0: not set, [bench]'s                             */
    override ov[MAX_BACKENDS];
} bmodel;

typedef struct bconf {
    const cnb_conf *conf;
    char name[128], results[PATH_MAX], dir[PATH_MAX + 130];
    char peers[MAX_PEERS][PATH_MAX]; /* [bench] peer: the scripts                        */
    int np;
    uint64_t seed;
    char backends[MAX_BACKENDS][64];
    int max_threads[MAX_BACKENDS]; /* the most each uses; 0: as many as it is given */
    int nb;
    int threads[MAX_THREADS], nt;
    int warmup, min_reps, layers;
    int scaling;                  /* [bench] scaling = yes: scaling.h instead */
    int pin;                      /* [bench] pin: groups at fewer threads than the CPUs
                                     run on the first of them (benchmeasure.c)        */
    double min_time;
    double sample_time;           /* a whole-network sample: forward passes back to back
                                     lasting at least this (s), then training steps as
                                     long; each pass's time is their mean               */
    double shipped_sample_time;   /* a peer's way as shipped: its samples (s); < 0: as
                                     the others'                                        */
    bmodel models[MAX_MODELS];
    int nm;
} bconf;

/* The time experiment in `c` into `bc`: 0, or CNB_EINVAL after saying what is wrong
 * (file, line, key). bc's models' vars are to be freed (bench_conf_free) either way. */
int bench_conf_parse(bconf *bc, const cnb_conf *c, const cnb_registry *reg);
void bench_conf_free(bconf *bc);

/* The model's name and the variables it is timed with, "lenet5 (act=relu pool=max)", as
 * the report and stdout head its results with. */
void bench_model_label(const bmodel *m, char *buf, size_t len);

/* The seconds of a whole-network sample of model m: its [bench.NAME] sample_time, else
 * [bench]'s. */
double bench_sample_time(const bconf *bc, const bmodel *m);

/* Why backend b is not timed at `threads` when it uses fewer ("is single-threaded"), into
 * buf; NULL when it uses them. */
const char *bench_not_run(const bconf *bc, int b, int threads, char *buf, size_t len);

/* Does backend b of model m run at `threads`: it uses them, and its BACKEND.threads (when
 * given) names them? */
int bench_runs_at(const bconf *bc, const bmodel *m, int b, int threads);

/* ---- results ---------------------------------------------------------------------- */

/* One whole-network sample of a row (samples.csv); the row's k-th is from the group's
 * k-th round of whole-network samples. */
typedef struct bench_sample {
    int position;                 /* its place in the round's shuffled order, the FMA
                                     probe's place counted, from 0                        */
    double ms;                    /* one pass: the sample's time over its steps           */
    double at;                    /* when its turn began, s from the group's first        */
    double probe;                 /* GFLOP/s of the round's FMA probe                     */
    double machine;               /* its machine factor (benchmeasure.c, set_factors)     */
    double switches, faults;      /* its turn's, both passes: involuntary context switches
                                     and page faults of the process that ran it
                                     (proccount.h; NAN: unknown)                          */
} bench_sample;

/* A row of bench.csv: a backend's, or one way of running the peer. */
typedef struct row {
    char model[64], backend[80];
    char how[1024];               /* how it was run (a peer: its way, environment, mode) */
    int batch, threads, train;    /* train: 0 forward pass, 1 training step */
    int steps;                    /* back to back in each sample (sample_time)           */
    int peer;                     /* 0: a backend; else 1 + its script's index in peers  */
    cnb_sample_stats s;           /* milliseconds */
    double cv_own;                /* CV of the samples over their machine factors: the
                                     row's own spread, what decides "unstable"          */
    double ips, create_ms, gflops, share;
    double peak_mb;               /* growth of peak resident memory, MiB (NAN: unknown);
                                     a peer's: of its own process                       */
    /* What the network holds, bytes (cnb_net_memory; NAN: a peer's, and kernel_bytes
     * where a backend cannot say) */
    double activation_bytes, param_bytes, kernel_bytes;
    /* Heap allocations of one repetition of the pass (heapcount.h): the median bytes and
     * calls over the timed repetitions, and the most bytes of one (NAN: not counted, in a
     * sanitizer build or for a peer) */
    double alloc_bytes, allocs, alloc_bytes_max;
    char fused[256];              /* its fused runs, "conv1+act1+pool1 conv2+act2+pool2" */
    char algorithms[256];         /* its layers computed with fewer multiply-adds than
                                     their op's definition, "conv3 conv4 conv5: winograd"
                                     (cnb_net_layer_algorithm); "" none: its GFLOP/s are
                                     then direct-equivalent                             */
    bench_sample *samples;        /* [s.n], in the order taken: round by round          */
} row;

/* One pass of the fastest backend and of a peer's fastest tuned way in a group, in pairs
 * from the same round: their time ratios (peer / backend). */
typedef struct pair {
    char model[64], backend[80], peer[80];
    int threads, train;           /* train: 0 forward pass, 1 training step */
    cnb_sample_stats ratio;
} pair;

typedef struct layer_row {
    char model[64], backend[64], ran_on[80], layer[64], plugin[32], layout[16];
    int batch, threads, backward;
    cnb_sample_stats s;           /* milliseconds (n = 0: fused into another layer, or a view) */
    cnb_sample_stats lib;         /* its library calls alone (n = 0: none) */
    double gflops, share;
    char run[256];                /* the fused run it is in, "conv1+act1+pool1"; "" none */
    char fused_into[64];          /* a run's layer but its first: that layer, whose time
                                     is the run's; "" otherwise                       */
    char algorithm[32];           /* its kernel's fewer multiply-adds, "winograd"; ""  */
} layer_row;

typedef struct results {
    row *rows;                    /* per (model, backend, threads): forward, then train */
    int n_rows;
    layer_row *layers;            /* per (model, backend, threads, layer): fwd, then bwd */
    int n_layers;
    pair *pairs;                  /* per (model, threads, pass, peer) with a backend and
                                     a tuned way of the peer                            */
    int n_pairs;
    cnb_peak peaks[MAX_THREADS];
    int n_peaks;
    char peer_note[MAX_PEERS][PATH_MAX + 1024]; /* per peer script: what the report says
                                                   of it, sentences, each once         */
    int peer_off[MAX_PEERS];      /* the peer is absent or broken: not started again */
} results;

/* bench.c: the row of (model, backend, threads, pass), or NULL; the forward row of a
 * layer (its backward row follows it), or NULL; the denominator of every share at
 * `threads`, the highest probe so far (NAN: none). */
const row *bench_find_row(const results *r, const char *model, const char *backend,
                          int threads, int train);
const layer_row *bench_find_layer(const results *r, const char *model, const char *backend,
                                  int threads, const char *layer);
double bench_peak_at(const results *r, int threads);

/* ---- the parts ------------------------------------------------------------------------ */

/* benchmeasure.c: time model m at `threads` on every backend that runs there, adding its
 * rows to r (and probes to r's peak at `threads`). */
int bench_measure_group(results *r, const bconf *bc, const bmodel *m, int threads,
                        const cnb_registry *reg);

/* benchpeer.c: a way of running a peer script, as its `--ways` says. */
typedef struct bench_peer_way {
    char suffix[32];              /* of the backend column: "", "-tuned-glibc", ...     */
    int tuned;                    /* tuned as its framework's guide says: paired        */
    char args[256];               /* the arguments it adds, words                       */
    char env[512];                /* the environment it adds, NAME=VALUE words          */
    char what[256];               /* what it is, for the report                         */
} bench_peer_way;

/* benchconf.c: the seconds of a sample of `way` of a peer for model m: [bench]
 * shipped_sample_time for a way as shipped when set, else bench_sample_time. */
double bench_way_sample_time(const bconf *bc, const bmodel *m, const bench_peer_way *way);

/* One process of a peer script, built and warmed up, waiting on its pipe. */
typedef struct bench_peer {
    int pid, peer;                /* peer: its script's index in bc->peers              */
    bench_peer_way way;
    int inference;                /* 1: it answers no training step; 0: it does; -1: it
                                     has not answered yet                               */
    FILE *to, *from;
    FILE *err;                    /* its standard error, quoted when it fails (or NULL) */
    char backend[80], how[1024];
    char cmd[2048];               /* its command line, quoted when it fails             */
    double create_ms, peak_mb;
} bench_peer;

/* The ways peer script `peer` runs at `threads` (`PEER --ways --threads N`), at most max
 * of them, into ways: their number; 0 when there are none to run (r->peer_note says why,
 * r->peer_off when the peer is absent or broke the contract). */
int bench_peer_ways(const bconf *bc, int peer, int threads, bench_peer_way *ways, int max,
                    results *r);
/* Run argv[0] with argv, as a peer runs (killed with the bench, in a process group of its
 * own, stdin /dev/null): its standard output into out (NUL-terminated, cut at len), its
 * standard error into err (NULL: the bench's); its wait status, -1 when it could not be
 * run. */
int bench_capture(char *const *argv, char *out, size_t len, FILE *err);
/* Start `way` of peer script `peer` for (m, threads) and wait until it is ready: 0; 1
 * when it could not be (r->peer_note says why; r->peer_off when no way will start). */
int bench_peer_start(bench_peer *p, const bconf *bc, const bmodel *m, int threads, int peer,
                     const bench_peer_way *way, results *r);
/* steps[0] forward passes back to back, then steps[1] training steps: the seconds of one
 * of each (their mean; *train NAN for a peer that only infers); 0, or 1 after a broken
 * reply (r->peer_note says what; the process is stopped). */
int bench_peer_step(bench_peer *p, const int steps[2], double *fwd, double *train, results *r);
/* Tell it to quit, close its pipes, reap it: its wait status (-1: none). */
int bench_peer_stop(bench_peer *p);

/* benchcsv.c: every share set against the peaks so far, then the three CSVs. */
int bench_write_csvs(const bconf *bc, results *r);

/* benchplot.c */
int bench_plot_throughput(const bconf *bc, const results *r, const bmodel *m);
int bench_plot_layers(const bconf *bc, const results *r, const bmodel *m, int threads);

/* benchreport.c: report.md; the shares above 100% (their number, the first `list`
 * printed to f); what the probes measured, for the report and stdout. */
int bench_write_report(const bconf *bc, const results *r);
int bench_mistrusted(const results *r, FILE *f, int list);
/* Is share (of the peak) a measurement error: above 1, and not direct-equivalent (a pass
 * with fewer multiply-adds than the FLOPs counted, cnb_backend_desc.algorithm)? */
int bench_share_mistrusted(double share, int direct_equivalent);
void bench_peak_summary(FILE *f, const cnb_peak *p);

#endif
