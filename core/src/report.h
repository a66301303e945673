/*
 * report.h - the report of a sweep folder, made from what its cells wrote to disk (so it
 * can be redone at any time, and equals one from an uninterrupted run of the same cells).
 *
 *   report.md        tables: per variant over seeds, against the baseline, per cell; with
 *                    a validation split also its accuracy and loss per epoch
 *   variants.csv     one row per variant: n, mean, sd, 95% interval of every metric
 *   comparison.csv   each variant against the baseline (paired t over seeds when each seed
 *                    has one run on each side, Welch's t otherwise)
 *   cells.csv        one row per finished cell of the grid
 *   selection.csv    with [select] (select.h): per variant, every candidate's validation
 *                    accuracy and loss, and which was chosen (report.md: a table each)
 *   learning-curves, accuracy, gap: each as .dat, .gp, .png and .svg (gnuplot X.gp
 *                    in the folder redraws it)
 */
#ifndef CNB_REPORT_H
#define CNB_REPORT_H

#include "fsutil.h"

/* Write the tables and plots of the sweep in `dir` (it holds manifest.csv and sweep.ini).
 * 0, or an error (reported). Gnuplot runs as a child process; its failure is an error. */
int cnb_report_write(const char *dir);

/* The fields `names[0..n)` of a cell's final.csv (in `cell_dir`), read by the columns'
 * names: NAN for a column it does not have or leaves empty. 0, or an error (said). */
int cnb_final_read(const char *cell_dir, const char *const *names, double *values, int n);

/* Redraw every plot in `dir`: gnuplot on each *.gp (sweep and bench folders alike). */
int cnb_plot_all(const char *dir);

/* Plot scripts: cnb_plot_open starts DIR/NAME.gp (PNG terminal, title, y label) for the
 * caller to add its `plot` lines; cnb_plot_finish adds the SVG replot, commits the
 * script atomically and runs gnuplot on it, giving NAME.png and NAME.svg. */
int cnb_plot_open(cnb_atomic *a, const char *dir, const char *name, const char *title,
                  const char *ylabel);
int cnb_plot_finish(cnb_atomic *a, const char *dir, const char *name);

/* Run `gnuplot script` in `dir`; 0 or an error naming the script. */
int cnb_gnuplot(const char *dir, const char *script);

#endif
