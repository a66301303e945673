/*
 * sweep.h - run every cell of an experiment's grid, resumably.
 *
 * <results>/<name>/ holds one folder per cell, manifest.csv (every cell's state, rewritten
 * atomically after each change) and sweep.ini (what the report needs: baseline, profile;
 * and the experiment file that owns the folder).
 *
 * One owner: a run holds an exclusive lock on <dir>/.lock (flock, with the holder's pid,
 * host and command inside) for its whole length, and a second run exits 2 naming it; a
 * folder made by another experiment file is refused, and so is one whose finished cells
 * ran with other settings, unless --force. Finished cells are never unmarked otherwise.
 * A cell is finished when its folder holds `done` with the cell's fingerprint; re-running
 * skips finished cells and redoes the rest (--force redoes all); a cell whose loss became
 * NaN is finished too, as "diverged" with its epoch and batch. Each cell runs in a child
 * process (`jobs` at a time), so a crash costs only that cell. Ctrl-C
 * stops the running cells, keeps every finished one and leaves the manifest consistent.
 */
#ifndef CNB_SWEEP_H
#define CNB_SWEEP_H

#include "experiment.h"
#include "plugin.h"

typedef struct cnb_sweep_opts {
    int dry_run;  /* print the grid and what would run, run nothing */
    int force;    /* rerun finished cells                          */
    int jobs;     /* cells at once (>= 1)                          */
    int progress; /* progress bar (only with jobs == 1)            */
} cnb_sweep_opts;

/* Returned by cnb_sweep_run when a cell failed at run time (crashed, was killed, could
 * not write its results) or the manifest could not be written; each failure is reported. */
#define CNB_EFAILED (-102)

/* Validates the whole grid first (cnb_experiment_validate; CNB_EINVAL, nothing run), then
 * runs it: 0 when every cell finished (a diverged cell is finished), CNB_EINTR when
 * interrupted, CNB_EFAILED when cells failed at run time. */
int cnb_sweep_run(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o);

#endif
