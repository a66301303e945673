/*
 * experiment.h - experiment files: what to run, on which data, with which settings.
 *
 *   [experiment] name, mode (train), model (relative to this file), backend, threads,
 *                seed, results (folder; default results/)
 *   [vars]       values for the model's ${var}
 *   [data]       dir, train_images, train_labels, test_images, test_labels,
 *                train_limit, test_limit, normalize (dataset | none)
 *   [train]      epochs, batch, lr, momentum, weight_decay, schedule (constant | step |
 *                cosine), step_epochs, gamma, train_eval_limit
 *
 * `--set section.key=value` overrides any key (vars.act=relu sets a variable).
 */
#ifndef CNB_EXPERIMENT_H
#define CNB_EXPERIMENT_H

#include <limits.h>
#include <stdint.h>

#include "conf.h"
#include "plugin.h"
#include "train.h"

typedef struct cnb_experiment {
    cnb_conf conf;
    char name[128];
    char mode[16];
    char model[PATH_MAX];   /* resolved path */
    char backend[64];
    int threads;
    uint64_t seed;
    char results[PATH_MAX];
    cnb_vars vars;
    char data_dir[PATH_MAX];
    char train_images[PATH_MAX], train_labels[PATH_MAX];
    char test_images[PATH_MAX], test_labels[PATH_MAX];
    long train_limit, test_limit;
    int normalize;          /* 1: per-channel mean/std of the training split */
    int batch;
    cnb_train_cfg train;
} cnb_experiment;

/* Load, apply `sets` ("section.key=value" strings, n_sets of them), validate. */
int cnb_experiment_load(cnb_experiment *e, const char *path, char **sets, int n_sets);
void cnb_experiment_free(cnb_experiment *e);

/* Run a train experiment: results under <results>/<name>/<run id>/. Returns 0 or an
 * error code (reported). `progress` draws a progress bar. */
int cnb_experiment_run(cnb_experiment *e, cnb_registry *reg, int progress);

#endif
