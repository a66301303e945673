/*
 * scaling.h - how the data-parallel training step scales with the rank count: a time
 * experiment with `[bench] scaling = yes` (experiments/scaling.ini), or any time
 * experiment run under mpirun.
 *
 * mpirun fixes the rank count for a whole run, so each run measures its own rank count N
 * and adds its rows to <results>/<name>/scaling.csv (replacing the rows of an earlier run
 * at the same N, keeping the others); the report (report.md, a plot per model) is made
 * again from every row, so running the experiment once without mpirun and once under
 * `mpirun -np 2` (scripts/scaling.sh) gives the table for 1 and 2 ranks.
 *
 * Method. For each model, backend and thread count: a network per rank bound with its
 * slice of the model's global batch (the training step of cnb_dp_step: the batch means the
 * same at any N: strong scaling), the same weights on every rank (same seed) and a
 * synthetic batch of N(0,1) pixels. After `warmup` untimed steps, repetitions until
 * min_reps and min_time (rank 0 decides for all), each started together (a barrier, not
 * timed) and timing: the whole step (forward, backward with the bucketed MPI_Iallreduce
 * of the gradients, their wait, the update); of it, the time spent in MPI calls (the
 * communication the computation did not hide); then, apart, the same sums of the whole
 * gradient buffer, every bucket at once (what they cost with nothing to hide behind). Medians over the
 * repetitions; the slowest rank's median step is kept too. Speedup = T(1) / T(N) against
 * the 1-rank row of the same model, backend, threads and batch; efficiency = speedup / N.
 * A group whose ranks on one node times its threads exceed the node's CPUs is skipped
 * (oversubscribed, it would time the scheduler).
 */
#ifndef CNB_SCALING_H
#define CNB_SCALING_H

#include <limits.h>
#include <stdint.h>

#include "conf.h"
#include "registry.h"

#define CNB_SCALING_MAX 8

typedef struct cnb_scaling_model {
    const char *name, *path;
    const cnb_vars *vars;
    int batch;              /* global: split over the ranks */
} cnb_scaling_model;

typedef struct cnb_scaling_spec {
    const char *experiment; /* its file, for the report   */
    const char *dir;        /* <results>/<name>           */
    uint64_t seed;
    const char *backends[CNB_SCALING_MAX];
    int nb;
    int threads[CNB_SCALING_MAX];
    int nt;
    int warmup, min_reps;
    double min_time;
    cnb_scaling_model models[CNB_SCALING_MAX];
    int nm;
} cnb_scaling_spec;

/* Measure at this run's rank count, then (rank 0) merge into scaling.csv and write
 * report.md and the plots. Every rank calls it. */
int cnb_scaling_run(const cnb_scaling_spec *s, const cnb_registry *reg);

#endif
