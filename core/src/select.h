/*
 * select.h - choosing a setting on the validation split: an experiment's [select].
 *
 *   [select]
 *   train.lr = 0.005, 0.01, 0.02   ; one [train] setting and its candidates
 *   by = validation_accuracy       ; or validation_loss
 *   seeds = 1                      ; the seeds each candidate runs on (default: the
 *                                  ;   grid's first seed)
 *
 * Per variant of the grid, every candidate runs as cells of their own (selection cells,
 * ids starting "select-"), each on every selection seed; a candidate's score is the mean
 * over its seeds of the last epoch's validation accuracy (or loss); the best score wins,
 * the candidate listed first among equal ones, and a candidate with a seed that diverged
 * is never chosen. The variant's cells then run at the chosen value. The test split takes
 * no part. Parsing and the cells are experiment.c's, running them sweep.c's, the tables
 * report.c's; the rule is here, once.
 */
#ifndef CNB_SELECT_H
#define CNB_SELECT_H

#include <stdint.h>

#define CNB_SELECT_MAX 64 /* candidates, and selection seeds */

typedef struct cnb_select {
    char key[64];                   /* "train.lr"; "" when the experiment selects nothing */
    char where[1100];               /* where it is set: "FILE:LINE" or its --set          */
    char *values[CNB_SELECT_MAX];   /* the candidates, as listed                          */
    int n;
    int by_loss;                    /* by = validation_loss (lowest wins); else accuracy  */
    uint64_t seeds[CNB_SELECT_MAX]; /* the seeds every candidate runs on                  */
    int n_seeds;                    /* 0: the grid's first seed                           */
} cnb_select;

/* "validation_accuracy" or "validation_loss". */
const char *cnb_select_by_name(int by_loss);

/* The candidate chosen from val[k * n_seeds + s], the validation metric of candidate k on
 * its s-th seed (NAN: that cell diverged or has no result). score[k] gets each candidate's
 * mean over its seeds (NAN when any is NAN). Returns the index of the highest mean
 * accuracy (lowest loss), the first of equal ones, or -1 when no candidate has a score. */
int cnb_select_best(const double *val, int n_candidates, int n_seeds, int by_loss,
                    double *score);

#endif
