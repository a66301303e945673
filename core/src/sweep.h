/*
 * sweep.h - run every cell of an experiment's grid, resumably.
 *
 * <results>/<name>/ holds one folder per cell, manifest.csv (every cell's state, rewritten
 * atomically after each change) and sweep.ini (what the report needs: baseline, profile;
 * and the experiment file that owns the folder).
 *
 * Every file a cell writes is in its own folder, so any number of processes, on any
 * number of machines sharing the folder, can run cells of one grid at once:
 *  - a cell is finished when its folder holds `done` with the cell's fingerprint; one that
 *    failed leaves error.txt (why) and no `done`; a cell whose loss became NaN is finished
 *    too, as "diverged", its reason in error.txt;
 *  - a process runs a cell only while it holds an exclusive flock on the cell's .lock
 *    (and checks `done` again once it has it), so no cell runs twice at once, and a held
 *    lock is how others see it "running";
 *  - manifest.csv and the report are derived: whoever writes the manifest reads every
 *    cell's state from its folder then (under <dir>/.manifest.lock, so the last snapshot
 *    written is the newest), except for the cells it runs itself.
 * A whole run (no --cell, --shard) takes <dir>/.lock exclusively, with its pid, host and
 * command inside; a run of some cells (--cell, --shard, a cluster's array task) takes it
 * shared; so a whole run and cell runs never mix, and a second whole run exits 2 naming
 * the first. A folder made by another experiment file is refused, and so is one whose
 * finished cells ran with other settings, unless --force; finished cells are never
 * unmarked otherwise. Re-running skips finished cells and redoes the rest (--force redoes
 * the selected ones). Each cell runs in a child process (`jobs` at a time), so a crash
 * costs only that cell. Ctrl-C stops the running cells, keeps every finished one and
 * leaves the manifest consistent.
 *
 * With [select] (select.h) the grid's cells wait for their variant's choice: a run first
 * runs the selection cells it needs (its selected ones, and those of the variants of its
 * selected cells of the grid, waiting for any another process is running), makes the
 * choices, then runs its cells of the grid; a cell whose selection did not finish is
 * "waiting" and not run (the run exits 1 saying why). Its fingerprint, and so whether it
 * has finished, is known only once its value is chosen.
 */
#ifndef CNB_SWEEP_H
#define CNB_SWEEP_H

#include "experiment.h"
#include "registry.h"

typedef struct cnb_sweep_opts {
    int dry_run;              /* print the grid and what would run, run nothing       */
    int list;                 /* print the ids of the selected cells still to run     */
    int force;                /* rerun finished cells (the selected ones)             */
    int jobs;                 /* cells at once (>= 1)                                 */
    int progress;             /* progress bar (only with jobs == 1)                   */
    const char *const *cells; /* --cell: run only these ids (n_cells of them)         */
    int n_cells;
    int shard, shards;        /* --shard I/N: cells I, I+N, I+2N, ... (0-based; N > 0) */
} cnb_sweep_opts;

/* A run of some cells (--cell or --shard) rather than the whole grid. */
#define CNB_SWEEP_PARTIAL(o) ((o)->n_cells > 0 || (o)->shards > 0)

/* Validates the whole grid first (cnb_experiment_validate; CNB_EINVAL, nothing run), then
 * runs it: 0 when every cell finished (a diverged cell is finished), CNB_EINTR when
 * interrupted, CNB_EFAILED when cells failed at run time. */
int cnb_sweep_run(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o);

/* What a run does before it runs anything, for a launcher that runs the cells elsewhere:
 * validates the grid (CNB_EINVAL, said), checks the folder's owner and its finished
 * cells' settings, writes sweep.ini and manifest.csv. `dir` gets the results folder and
 * *lock a shared lock on it (close it when done; cell runs share it, a whole run cannot
 * start while it is held). Memory is not checked: the cells run on other machines. */
int cnb_sweep_prepare(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o,
                      char *dir, size_t len, int *lock);

/* One cell of a results folder, as its manifest lists it, its state read from its folder. */
typedef struct cnb_cell_info {
    char id[128], variant[512], backend[64];
    unsigned long long seed;
    int threads;
    double mib;         /* estimated memory need (0: unknown)                         */
    char fingerprint[17]; /* "" for a cell of the grid whose [select] value was not
                             chosen when the manifest was written                      */
    const char *state;  /* "pending", "running", "done", "diverged", "failed" or
                           "waiting" (for its [select] choice)                        */
    char message[512];  /* diverged, failed, waiting: why (the cell's error.txt)      */
    char candidate[128]; /* a selection cell: its value of [select]'s key; else ""    */
} cnb_cell_info;

/* Every cell of results folder `dir` (its manifest.csv), each state read from the cell's
 * folder now; *cells is malloc'd. CNB_EINVAL (said) when `dir` is not a sweep folder. */
int cnb_results_cells(const char *dir, cnb_cell_info **cells, int *n);

/* Rewrites dir/manifest.csv from the cells' folders (cnnbench report does, before it
 * reads it): the cells that finished anywhere count. */
int cnb_results_refresh(const char *dir);

#endif
