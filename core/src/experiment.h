/*
 * experiment.h - experiment files: what to run, on which data, with which settings.
 *
 *   [experiment] name, mode (train), model (relative to this file), backend, threads,
 *                seed, results (folder; default results/), baseline (the variant the
 *                report compares against, "act=sigmoid pool=avg")
 *   [vars]       values for the model's ${var}
 *   [sweep]      axes, each a comma-separated list: a variable (act = sigmoid, relu),
 *                seed, backend, threads, or a [train] setting (train.lr = 0.1, 0.02);
 *                `only` and `exclude` list combinations separated by ';'
 *                ("act=relu pool=max; act=sigmoid pool=avg")
 *   [data]       format (idx | cifar | folder | list), dir, train_images, train_labels,
 *                test_images, test_labels (idx), train_limit, test_limit, validation
 *                (a count or a fraction of the training images, held out to choose
 *                on), normalize (dataset | none; image files also mean: the mean only),
 *                and the data processing of augment.h: resize (N or HxW), augment (none,
 *                or steps joined by '+': flip, crop, lighting; sweepable as data.augment),
 *                crop (HxW; default the image), crop_pad, lighting (dataset | image),
 *                lighting_sigma;
 *                image files (folder: class subfolders; list: "path label" lines):
 *                train, test (the folders or list files, relative to dir, which
 *                defaults to the experiment file's folder for these formats), root
 *                (list: where its paths start; default the list's folder), channels
 *                (3 | 1), resize_mode (shorter | exact | center), stats_sample,
 *                eval_crops (1 | 10), on_bad_image (fail | skip), loader_threads,
 *                prefetch, cache (a folder of packs written by cnnbench convert,
 *                read instead of the files; relative to the experiment file),
 *                cache_build (1: write the packs before the first cell when missing)
 *   [train]      epochs, batch, lr, momentum, weight_decay, schedule (constant | step |
 *                cosine), step_epochs, gamma, warmup (epochs) or warmup_steps (train.h:
 *                cnb_step_lr), train_eval_limit
 *   [select]     one [train] setting chosen per variant on the validation split
 *                (select.h): train.KEY = candidates, by, seeds
 *   [launcher]   how `run --launcher slurm` submits the cells (launcher.h): partition,
 *                time, cpus_per_task, mem, parallel, sbatch, setup; no effect on results
 *   [profile.NAME] section.key = value overrides applied by --profile NAME
 *
 * Precedence: file < profile < `--set section.key=value` (vars.act=relu sets a variable,
 * sweep.seed=1,2 an axis). The grid is the cartesian product of the sweep axes; each cell
 * runs in its own folder.
 */
#ifndef CNB_EXPERIMENT_H
#define CNB_EXPERIMENT_H

#include <limits.h>
#include <stdint.h>

#include "augment.h"
#include "conf.h"
#include "imageset.h"
#include "registry.h"
#include "select.h"
#include "train.h"

#define CNB_MAX_AXES 16
#define CNB_MAX_AXIS_VALUES 64

typedef struct cnb_axis {
    char name[64];                       /* a variable, or seed / backend / threads */
    char where[512];                     /* its key: "FILE:LINE" or "--set sweep.K=V" */
    char *values[CNB_MAX_AXIS_VALUES];
    int n;
} cnb_axis;

/* One run of a sweep. */
typedef struct cnb_cell {
    cnb_vars vars;      /* [vars] with this cell's axis values     */
    uint64_t seed;
    char backend[64];
    int threads;
    char id[256];       /* folder name: act-relu_pool-max_seed1_naive_t1 */
    char variant[256];  /* what seeds are pooled over: "act=relu pool=max" (+ backend,
                           threads, train.* when they are axes) */
    cnb_train_cfg train; /* [train] with this cell's train.* axis values */
    int batch;
    const char *axis_values[CNB_MAX_AXES]; /* this cell's value on each axis */
    char augment[64];   /* data processing steps: "none", "flip+crop+lighting" */
    const char *candidate; /* a selection cell ([select]): its candidate value; NULL for
                              a cell of the grid                                   */
    int waits;          /* a cell of the grid whose [select] value is not chosen yet */
    char chosen[256];   /* once chosen: what and how ("train.lr = 0.02, by ...")   */
} cnb_cell;

typedef struct cnb_experiment {
    cnb_conf conf;
    char name[128];
    char mode[16];
    char model[PATH_MAX];   /* resolved path */
    char backend[64];
    int threads;
    uint64_t seed;
    long cell_timeout;      /* [experiment] cell_timeout: seconds a cell may run before it
                               is killed as hung (0: no limit)                  */
    char results[PATH_MAX];
    cnb_vars vars;
    char data_dir[PATH_MAX];
    char train_images[PATH_MAX], train_labels[PATH_MAX];
    char test_images[PATH_MAX], test_labels[PATH_MAX];
    long train_limit, test_limit;
    long val_count;         /* [data] validation: training images held out (a count), */
    double val_fraction;    /*   or this fraction of them; both 0: none            */
    int normalize;          /* 1: per-channel mean/std of the training split */
    int cifar;              /* [data] format = cifar (else IDX)                */
    int images;             /* format = folder (1) or list (2): image files     */
    char train_path[PATH_MAX], test_path[PATH_MAX]; /* image files: folders or lists */
    char root[PATH_MAX];    /* list: where its paths start ("" = its folder)    */
    char cache[PATH_MAX];   /* "" or the folder of train.cnbpack, test.cnbpack  */
    int channels;           /* image files: 3 (RGB) or 1 (grey)                 */
    cnb_resize_spec resize; /* image files: what the reader does                */
    int mean_only;          /* normalize = mean                                 */
    int eval_crops;         /* 1 or 10                                          */
    int skip_bad;           /* on_bad_image = skip                              */
    int cache_build;        /* cache_build = 1: write the packs when missing    */
    int loader_threads, prefetch;
    long stats_sample;      /* images the mean, std and lighting's PCA come from */
    int keep_checkpoints;   /* [train] keep_checkpoint = 1: a finished cell keeps its
                               last checkpoint (by default it is removed)      */
    cnb_augment_cfg augment; /* resize, crop size and pad, lighting form; which
                                steps run is each cell's `augment`           */
    char augment_steps[64];
    int batch;
    cnb_train_cfg train;
    char baseline[256];     /* "" = the first variant of the grid */
    char profile[64];       /* the --profile applied, or "" */
    cnb_axis axes[CNB_MAX_AXES];
    int n_axes;
    char only[1024], exclude[1024];
    cnb_select select;      /* [select]: a setting chosen per variant on validation */
} cnb_experiment;

/* Load, apply the profile (NULL for none) and `sets` ("section.key=value"), validate. */
int cnb_experiment_load(cnb_experiment *e, const char *path, const char *profile,
                        char **sets, int n_sets);
void cnb_experiment_free(cnb_experiment *e);

/* Expand the grid (cartesian product, then only/exclude). With [select], the selection
 * cells come first: per variant of the grid (in its order), each candidate (as listed) on
 * each selection seed; then the grid's cells, each waiting for its variant's choice.
 * *cells is malloc'ed; free with cnb_cells_free. */
int cnb_experiment_cells(const cnb_experiment *e, cnb_cell **cells, int *n);

/* Set a waiting cell of the grid to the value [select] chose for its variant; `how` (the
 * score and the candidates) goes into its metadata. */
void cnb_cell_choose(const cnb_experiment *e, cnb_cell *c, const char *value, const char *how);
void cnb_cells_free(cnb_cell *cells, int n);

/* Before any cell runs, everything the cells need: every backend chain resolves, the
 * model builds with every cell's variables, the data files exist and read whole (the
 * pixels are read once, not kept), the data's shape after resize and crop is the model's
 * input, every train and test label lies within the model's classes, and every batch fits
 * the training set. Each distinct error is reported once, naming the file and line of the
 * key behind it (or its --set); returns CNB_EINVAL when there was any. */
int cnb_experiment_validate(const cnb_experiment *e, const cnb_cell *cells, int n,
                            cnb_registry *reg, double *mib);

/* `mib` (when not NULL, n entries) receives each cell's estimated peak memory in MiB:
 * parameters with their gradients and momentum, activations and their gradients for its
 * batch, the lowering workspace of its convolutions on each thread (im2col), the batch
 * being made, both data splits in memory as floats, and the process itself. */

/* `cnnbench convert`: write the packs of an image-file experiment's train and test splits
 * into its [data] cache folder (docs/image-pack.md). */
int cnb_experiment_convert(const cnb_experiment *e);

/* [data] cache_build = 1: when the cache's packs are missing, write them now (as convert
 * does; one process at a time, under the cache folder's lock), so that every epoch reads
 * them and no image is decoded twice. 0 when built, already there, or not asked for. */
int cnb_experiment_cache_build(const cnb_experiment *e);

/* The experiment's folder: <results>/<name>, or <results>/<name>-<profile>. */
void cnb_experiment_dir(const cnb_experiment *e, char *buf, size_t len);

/* A hex digest of everything that determines a cell's result (resolved settings and the
 * model's sections, keys and values; not its comments or layout): a finished cell with
 * the same fingerprint is not run again. */
int cnb_cell_fingerprint(const cnb_experiment *e, const cnb_cell *c, char out[17]);

/* Train and validate one cell into `dir` (config.ini, meta.ini, metrics.csv, final.csv,
 * weights.cnbw). `label` prefixes its printed lines. Returns 0 or an error (reported);
 * CNB_EINVAL when the cell's settings make the model invalid. */
int cnb_cell_run(const cnb_experiment *e, const cnb_cell *c, cnb_registry *reg,
                 const char *dir, int progress, const char *label);

#endif
