/*
 * test_sweep.c - experiment grids, the resumable sweep runner, the statistics and the
 * report: grid expansion and restriction, profiles, resume (finished cells skipped, a
 * half-written cell redone), bad input refused before any cell runs (each error once,
 * exit status 2), a cell that crashes (exit status 1) or diverges (a finished result),
 * statistics on data with known answers, and a report whose plots gnuplot renders.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "child.h"
#include "dataset.h"
#include "errors.h"
#include "experiment.h"
#include "fsutil.h"
#include "photofolder.h"
#include "report.h"
#include "stats.h"
#include "sweep.h"
#include "testutil.h"

/* An experiment file `file` in a fresh folder, LeNet-5 on the test data: what differs
 * between the experiments of this suite are the name, the baseline, the keys of [data]
 * and [train] after the first, and `extra`, appended (sections of its own). */
static const char *experiment_file(const char *file, const char *name, const char *baseline,
                                   const char *data, const char *train, const char *extra)
{
    static char path[512];
    const char *dir = test_tmpdir();
    char text[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(text, sizeof text,
             "[experiment]\nname = %s\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s/results\nbaseline = %s\n[data]\ndir = %s\n%s[train]\n%s%s",
             name, CNB_SOURCE_ROOT, dir, baseline, test_data_dir(), data, train, extra);
    test_write_file(path, text);
    return path;
}

/* An experiment in a fresh folder; `extra` is appended (sections of its own). */
static const char *experiment(const char *extra)
{
    return experiment_file("exp.ini", "t", "act=sigmoid pool=avg",
                           "train_limit = 400\ntest_limit = 200\n",
                           "epochs = 2\nbatch = 50\nlr = 0.05\ntrain_eval_limit = 100\n", extra);
}

static void test_grid_expansion(void)
{
    const char *path = experiment("[sweep]\nact = sigmoid, relu\npool = avg, max\n"
                                  "seed = 1, 2, 3\n");
    cnb_experiment e;
    cnb_cell *cells;
    int n;
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(n, 12);
    CU_ASSERT_STRING_EQUAL(cells[0].id, "act-sigmoid_pool-avg_seed1_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[0].variant, "act=sigmoid pool=avg");
    CU_ASSERT_STRING_EQUAL(cells[1].id, "act-sigmoid_pool-avg_seed2_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[11].id, "act-relu_pool-max_seed3_naive_t1");
    CU_ASSERT_STRING_EQUAL(cnb_vars_get(&cells[11].vars, "pool"), "max");
    CU_ASSERT_EQUAL(cells[11].seed, 3);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);

    /* restriction by an explicit list, and by exclusion */
    char *only[] = {"sweep.only=act=relu pool=max; act=sigmoid pool=avg"};
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, only, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(n, 6);
    for (int i = 0; i < n; i++)
        CU_ASSERT(strcmp(cells[i].variant, "act=relu pool=max") == 0 ||
                  strcmp(cells[i].variant, "act=sigmoid pool=avg") == 0);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    char *exclude[] = {"sweep.exclude=pool=max; seed=3"};
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, exclude, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(n, 4); /* pool=avg, seeds 1 and 2, both activations */
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);

    /* backends and threads as axes belong to the variant; seeds do not */
    char *axes[] = {"sweep.threads=1,2", "sweep.act=relu", "sweep.pool=max"};
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, axes, 3), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_STRING_EQUAL(cells[0].variant, "act=relu pool=max threads=1");
    CU_ASSERT_STRING_EQUAL(cells[1].variant, "act=relu pool=max threads=2");
    CU_ASSERT_EQUAL(cells[1].threads, 2);
    CU_ASSERT_EQUAL(cells[2].seed, 2);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
}

static void test_grid_errors_and_profiles(void)
{
    cnb_experiment e;
    cnb_cell *cells;
    int n;
    cnb_error_quiet(1);
    const char *path = experiment("[sweep]\nact = sigmoid, sigmoid\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "lists 'sigmoid' twice"));
    cnb_experiment_free(&e);
    path = experiment("[sweep]\nact = sigmoid, relu\nonly = colour=red\n");
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT(cnb_experiment_cells(&e, &cells, &n) != 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "'colour'"));
    CHECK_MSG(cnb_last_error(), "exp.ini:17: [sweep] only"); /* the key's line */
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    /* a variable that makes the model invalid: the model's line, and where it was set */
    path = experiment("[vars]\nact = tanh\n");
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    cnb_error_quiet(1);
    CU_ASSERT_EQUAL(cnb_experiment_validate(&e, cells, n, test_registry(), NULL), CNB_EINVAL);
    cnb_error_quiet(0);
    CHECK_MSG(cnb_last_error(), "lenet5.ini:");
    CHECK_MSG(cnb_last_error(), "unknown layer type 'act.tanh'");
    CHECK_MSG(cnb_last_error(), "(${act} = tanh, set at ");
    CHECK_MSG(cnb_last_error(), "exp.ini:16)");
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    path = experiment("[sweep]\nact = sigmoid, relu\nexclude = act=sigmoid; act=relu\n");
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT(cnb_experiment_cells(&e, &cells, &n) != 0);
    CHECK_MSG(cnb_last_error(), "exp.ini:17: [sweep] exclude: leaves no cell to run");
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    path = experiment("[sweep]\nseed = 1, x\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "'x' is not a valid seed"));
    cnb_experiment_free(&e);
    path = experiment("[profile.quick]\ntrain.epochs = 1\ndata.train_limit = 100\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, "slow", NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "profiles here: quick"));
    cnb_experiment_free(&e);
    cnb_error_quiet(0);
    /* profile over file, --set over profile */
    char *set[] = {"train.epochs=5"};
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, "quick", set, 1), 0);
    CU_ASSERT_EQUAL(e.train.epochs, 5);
    CU_ASSERT_EQUAL(e.train_limit, 100);
    cnb_experiment_free(&e);
}

static long mtime_ns(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : -1;
}

static int run_sweep(const char *path, char **sets, int n_sets, int force)
{
    cnb_experiment e;
    int rc = cnb_experiment_load(&e, path, NULL, sets, n_sets);
    if (rc == 0) {
        cnb_sweep_opts o = {.jobs = 2, .force = force};
        rc = cnb_sweep_run(&e, test_registry(), &o);
    }
    cnb_experiment_free(&e);
    return rc;
}

/* Two variants x two seeds end to end, then resume: nothing reruns; a cell with no `done`
 * (killed half-way) reruns alone; the report is the same afterwards. */
static void test_sweep_resume_and_report(void)
{
    const char *path = experiment("[sweep]\nact = sigmoid, relu\npool = avg\nseed = 1, 2\n");
    char dir[512], p[1024];
    snprintf(dir, sizeof dir, "%.*s/results/t", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT_EQUAL_FATAL(run_sweep(path, NULL, 0, 0), 0);
    static const char *const files[] = {"config.ini", "meta.ini", "metrics.csv", "final.csv",
                                        "weights.cnbw", "done", NULL};
    for (const char *const *f = files; *f; f++) {
        snprintf(p, sizeof p, "%s/act-relu_pool-avg_seed2_naive_t1/%s", dir, *f);
        CU_ASSERT(access(p, R_OK) == 0);
    }
    static const char *const outputs[] = {"manifest.csv", "report.md", "variants.csv",
                                          "comparison.csv", "cells.csv", "learning-curves.png",
                                          "learning-curves.svg", "learning-curves.gp",
                                          "learning-curves.dat", "accuracy.png", "gap.png",
                                          "gap.svg", NULL};
    for (const char *const *f = outputs; *f; f++) {
        snprintf(p, sizeof p, "%s/%s", dir, *f);
        struct stat st;
        if (stat(p, &st) != 0 || st.st_size == 0) {
            fprintf(stderr, "\n  missing or empty: %s", p);
            CU_FAIL("sweep output missing");
        }
    }
    char report[8192] = "", again[8192] = "";
    snprintf(p, sizeof p, "%s/comparison.csv", dir); /* no timing in it */
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t len = fread(report, 1, sizeof report - 1, f);
    report[len] = '\0';
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(report, "\"act=relu pool=avg\",\"act=sigmoid pool=avg\",test_acc"));

    char kept[1024], redo[1024], redo_done[1024];
    snprintf(kept, sizeof kept, "%s/act-sigmoid_pool-avg_seed1_naive_t1/metrics.csv", dir);
    snprintf(redo, sizeof redo, "%s/act-relu_pool-avg_seed1_naive_t1/metrics.csv", dir);
    snprintf(redo_done, sizeof redo_done, "%s/act-relu_pool-avg_seed1_naive_t1/done", dir);
    long kept_time = mtime_ns(kept), redo_time = mtime_ns(redo);
    usleep(20000);
    CU_ASSERT_EQUAL(run_sweep(path, NULL, 0, 0), 0); /* all finished: nothing runs */
    CU_ASSERT_EQUAL(mtime_ns(kept), kept_time);
    CU_ASSERT_EQUAL(mtime_ns(redo), redo_time);

    unlink(redo_done);  /* as if killed before it finished */
    test_write_file(redo, "epoch,lr\n1,0.1\n"); /* and half-written */
    CU_ASSERT_EQUAL(run_sweep(path, NULL, 0, 0), 0);
    CU_ASSERT_EQUAL(mtime_ns(kept), kept_time);   /* not redone */
    CU_ASSERT(mtime_ns(redo) != redo_time);       /* redone */
    CU_ASSERT_EQUAL(access(redo_done, R_OK), 0);
    f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    len = fread(again, 1, sizeof again - 1, f);
    again[len] = '\0';
    fclose(f);
    CU_ASSERT_STRING_EQUAL(again, report); /* same seeds, same numbers */
    /* a changed setting changes the fingerprint: the finished cells are not replaced
     * without --force, then every cell runs again */
    char *more[] = {"train.epochs=1"};
    long before = mtime_ns(kept);
    cnb_error_quiet(1);
    CU_ASSERT_EQUAL(run_sweep(path, more, 1, 0), CNB_EINVAL);
    cnb_error_quiet(0);
    CHECK_MSG(cnb_last_error(), "4 finished cells");
    CHECK_MSG(cnb_last_error(), "ran with other settings");
    CHECK_MSG(cnb_last_error(), "--force");
    CU_ASSERT_EQUAL(mtime_ns(kept), before);
    CU_ASSERT_EQUAL(access(redo_done, R_OK), 0); /* still marked finished */
    CU_ASSERT_EQUAL(run_sweep(path, more, 1, 1), 0);
    CU_ASSERT(mtime_ns(kept) != before);
}

/* A value that makes the model invalid is found before any cell runs: one message for
 * every cell it spoils, and no results folder. */
static void test_invalid_cell_refused_up_front(void)
{
    const char *path = experiment("[sweep]\npool = avg, median\nseed = 1, 2, 3\n");
    char *one_epoch[] = {"train.epochs=1"};
    cnb_error_quiet(1);
    int rc = run_sweep(path, one_epoch, 1, 0);
    cnb_error_quiet(0);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "unknown layer type 'pool.median'");
    CHECK_MSG(cnb_last_error(), "lenet5.ini:");
    char p[1024];
    snprintf(p, sizeof p, "%.*s/results/t", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT(access(p, F_OK) != 0); /* nothing was run, nothing written */
}

/* `cnnbench run` on an experiment file with `args`: its exit status; its stderr and
 * stdout are left in out[0] and out[1] (each at most len bytes). */
static int run_cli(const char *exp, const char *args, char out[2][8192])
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(exp, '/') - exp), exp);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' run '%s' -q %s 2>'%s/stderr.txt' "
             ">'%s/stdout.txt'", CNB_BUILD_ROOT, exp, args, dir, dir);
    int status = system(cmd);
    for (int k = 0; k < 2; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, k ? "stdout.txt" : "stderr.txt");
        FILE *f = fopen(p, "r");
        out[k][0] = '\0';
        if (f) {
            out[k][fread(out[k], 1, 8191, f)] = '\0';
            fclose(f);
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Expect exit status `want` and `msg` in stderr, `times` times (0: any number). */
static void expect_cli(const char *exp, const char *args, int want, const char *msg, int times)
{
    char out[2][8192];
    int status = run_cli(exp, args, out);
    if (status != want)
        fprintf(stderr, "\n  %s %s: exit status %d, expected %d; stderr: %s", exp, args, status,
                want, out[0]);
    CU_ASSERT_EQUAL(status, want);
    CHECK_MSG(out[0], msg);
    if (times && count(out[0], msg) != times)
        fprintf(stderr, "\n  '%s' %d times, expected %d: %s", msg, count(out[0], msg), times,
                out[0]);
    CU_ASSERT(!times || count(out[0], msg) == times);
}

/* A bad backend, chain or data folder in a 12-cell grid: exit status 2, the error once,
 * naming the key's file and line or its --set, and nothing run. */
static void test_bad_input_exits_2_once(void)
{
    const char *path = experiment("[sweep]\nact = sigmoid, relu\npool = avg, max\n"
                                  "seed = 1, 2, 3\n");
    char exp[512], text[4096], results[600];
    snprintf(exp, sizeof exp, "%.*s/cuda.ini", (int)(strrchr(path, '/') - path), path);
    snprintf(results, sizeof results, "%.*s/results", (int)(strrchr(path, '/') - path), path);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *model = strstr(text, "model =");
    CU_ASSERT_PTR_NOT_NULL_FATAL(model);
    memmove(model + 15, model, strlen(model) + 1);
    memcpy(model, "backend = cuda\n", 15); /* line 3 */
    test_write_file(exp, text);
    expect_cli(exp, "", 2, "cuda.ini:3: [experiment] backend: backend 'cuda' was not found", 1);
    int have_onednn = cnb_registry_backend(test_registry(), "onednn") != NULL;
    expect_cli(path, have_onednn ? "--set experiment.backend=onednn+bogus"
                                 : "--set experiment.backend=naive+bogus",
               2, "backend 'bogus' (in a '+' chain) was not found", 1);
    expect_cli(path, "--set experiment.backend=naive+bogus", 2,
               "--set experiment.backend=naive+bogus: backend 'bogus'", 1);
    expect_cli(path, "--set sweep.backend=naive,cuda", 2,
               "[sweep] backend: backend 'cuda' was not found", 1);
    expect_cli(path, "--set experiment.backend=naive --set experiment.threads=2", 2,
               "--set experiment.threads=2: threads = 2, but backend naive is single-threaded: "
               "set threads = 1", 1);
    expect_cli(path, "--set data.dir=/nonexistent-cnb", 2,
               "/nonexistent-cnb/train-images-idx3-ubyte.gz: cannot open", 1);
    expect_cli(path, "--set data.dir=/nonexistent-cnb", 2, "(--set data.dir=/nonexistent-cnb)",
               2); /* train and test, once each */
    expect_cli(path, "--set train.batch=500", 2,
               "--set train.batch=500: a batch of 500 is more than the 400 training images", 1);
    expect_cli(path, "--set sweep.pool=avg,median", 2, "unknown layer type 'pool.median'", 1);
    expect_cli(path, "--set data.resize=32", 2, "--set data.resize=32: the network sees "
               "32x32x1 (HxWxC: the data after resize and crop) but the model", 1);
    expect_cli(path, "--set train.nosuch=1", 2, "--set train.nosuch=1: unknown key 'nosuch'", 1);
    CU_ASSERT(access(results, F_OK) != 0); /* nothing ran */
}

static void write_bytes(const char *path, const unsigned char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* An IDX pair in dir: n images of h x w (pixels i * 7 + k), labels i % 10 with
 * labels[bad_at] = bad_label when bad_at >= 0; raw unless gz. */
static void write_idx(const char *dir, const char *split, int n, int h, int w, int bad_at,
                      int bad_label, int gz)
{
    size_t il = 16 + (size_t)n * h * w, ll = 8 + (size_t)n;
    unsigned char *img = malloc(il), *lab = malloc(ll);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lab);
    const uint32_t ih[4] = {0x803, (uint32_t)n, (uint32_t)h, (uint32_t)w}, lh[2] = {0x801,
                                                                                  (uint32_t)n};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 4; b++)
            img[4 * k + b] = (unsigned char)(ih[k] >> (24 - 8 * b));
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 4; b++)
            lab[4 * k + b] = (unsigned char)(lh[k] >> (24 - 8 * b));
    for (size_t k = 16; k < il; k++)
        img[k] = (unsigned char)(k * 7);
    for (int i = 0; i < n; i++)
        lab[8 + i] = (unsigned char)(i == bad_at ? bad_label : i % 10);
    const unsigned char *bytes[2] = {img, lab};
    size_t lens[2] = {il, ll};
    for (int k = 0; k < 2; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s-%s", dir, split, k ? "labels" : "images");
        if (gz) {
            gzFile g = gzopen(p, "wb");
            CU_ASSERT_PTR_NOT_NULL_FATAL(g);
            gzwrite(g, bytes[k], (unsigned)lens[k]);
            gzclose(g);
        } else {
            write_bytes(p, bytes[k], lens[k]);
        }
    }
    free(img);
    free(lab);
}
/* Damaged or mismatched IDX files: exit status 2 before any cell runs, naming the file. */
static void test_malformed_data_exits_2(void)
{
    const char *dir = test_tmpdir();
    char exp[600], text[2048], img[600], lab[600];
    snprintf(exp, sizeof exp, "%s/data.ini", dir);
    snprintf(img, sizeof img, "%s/train-images", dir);
    snprintf(lab, sizeof lab, "%s/train-labels", dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = d\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s/results\n[data]\ndir = %s\ntrain_images = train-images\n"
             "train_labels = train-labels\ntest_images = test-images\n"
             "test_labels = test-labels\n[train]\nepochs = 1\nbatch = 20\n"
             "train_eval_limit = 20\n", CNB_SOURCE_ROOT, dir, dir);
    test_write_file(exp, text);
    write_idx(dir, "test", 30, 28, 28, -1, 0, 0);
    write_idx(dir, "train", 60, 28, 28, -1, 0, 0);
    expect_cli(exp, "", 0, "", 0); /* intact: it runs */

    unsigned char magic[16] = {0, 0, 8, 4, 0, 0, 0, 60, 0, 0, 0, 28, 0, 0, 0, 28};
    write_bytes(img, magic, sizeof magic);
    expect_cli(exp, "", 2, "train-images: not an IDX image file: magic 0x00000804", 1);
    write_idx(dir, "train", 60, 28, 28, -1, 0, 0);
    CU_ASSERT_EQUAL(truncate(img, 16 + 28 * 28 * 10), 0);
    expect_cli(exp, "", 2, "train-images: truncated: expected 47040 bytes of pixels", 1);
    CU_ASSERT_EQUAL(truncate(img, 16), 0); /* the header alone */
    expect_cli(exp, "", 2, "train-images: truncated: expected 47040 bytes of pixels after the "
               "16-byte header (60 images of 784), got 0", 1);
    CU_ASSERT_EQUAL(truncate(img, 0), 0);
    expect_cli(exp, "", 2, "train-images: truncated image header: expected 16 bytes, got 0", 1);
    write_idx(dir, "train", 60, 0, 28, -1, 0, 0);
    expect_cli(exp, "", 2, "train-images: header declares 60 images of 0 x 28", 1);
    write_idx(dir, "other", 59, 28, 28, -1, 0, 0);
    char other[600];
    snprintf(other, sizeof other, "%s/other-labels", dir);
    write_idx(dir, "train", 60, 28, 28, -1, 0, 0);
    CU_ASSERT_EQUAL(rename(other, lab), 0);
    expect_cli(exp, "", 2, "train-images has 60 images but", 1);
    write_idx(dir, "train", 60, 28, 28, -1, 0, 1); /* gzip, then one byte damaged */
    FILE *f = fopen(img, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 200, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(byte ^ 0x5a, f);
    fclose(f);
    expect_cli(exp, "", 2, "train-images: corrupt gzip stream", 1);
    write_idx(dir, "train", 60, 28, 28, 7, 10, 0);
    expect_cli(exp, "", 2, "train-labels: label 10 (sample 8) is outside the model's 10 "
               "classes", 1);
    write_idx(dir, "train", 60, 28, 28, -1, 0, 0);
    write_idx(dir, "test", 30, 28, 28, 4, 200, 0);
    expect_cli(exp, "", 2, "test-labels: label 200 (sample 5) is outside the model's 10 "
               "classes (0 to 9", 1);
    write_idx(dir, "test", 30, 32, 32, -1, 0, 0);
    write_idx(dir, "train", 60, 32, 32, -1, 0, 0);
    expect_cli(exp, "", 2, "data.ini: the network sees 32x32x1 (HxWxC: the data) but the "
               "model", 1);
}

/* A cell that crashes is a failure at run time: exit status 1, the summary names it and
 * why, the others still run. */
static void test_crashed_cell_exits_1(void)
{
    const char *path = experiment("[sweep]\nseed = 1, 2\n");
    char args[1024], out[2][8192];
    snprintf(args, sizeof args, "--plugin '%s/fixture-crash.so' "
             "--set experiment.backend=fixture.crash --set train.epochs=1", CNB_FIXTURE_DIR);
    CU_ASSERT_EQUAL(run_cli(path, args, out), 1);
    CHECK_MSG(out[1], "0 of 2 cells finished");
    CHECK_MSG(out[1], "failed   seed1_fixture.crash_t1: crashed with signal 11");
    CHECK_MSG(out[1], "failed   seed2_fixture.crash_t1: crashed with signal 11");
    CHECK_MSG(out[0], "2 cells failed at run time");
}

/* A cell that hangs (a conv backward that never returns) is killed at cell_timeout and
 * failed, exit 1, with the limit named. */
static void test_hung_cell_killed(void)
{
    const char *path = experiment("[sweep]\nseed = 1\n");
    char args[1024], out[2][8192];
    snprintf(args, sizeof args, "--plugin '%s/fixture-hang.so' --set experiment.backend="
             "fixture.hang --set experiment.cell_timeout=3 --set train.epochs=1",
             CNB_FIXTURE_DIR);
    CU_ASSERT_EQUAL(run_cli(path, args, out), 1);
    CHECK_MSG(out[1], "failed   seed1_fixture.hang_t1: killed after 3 s without finishing");
    CHECK_MSG(out[0], "1 cell failed at run time");
}

/* A cell whose loss becomes NaN is a finished result: exit status 0, reported as
 * diverged with its epoch and batch, and not run again unless forced. */
static void test_diverged_cell_is_finished(void)
{
    const char *path = experiment("[vars]\nact = relu\n[sweep]\nseed = 2\n");
    const char *args = "--set train.epochs=1 --set train.lr=100 --set train.momentum=0.9999";
    char out[2][8192], p[1024], manifest[4096] = "";
    CU_ASSERT_EQUAL(run_cli(path, args, out), 0);
    CHECK_MSG(out[1], "1 of 1 cells finished (1 just now; 1 diverged), 0 failed");
    CHECK_MSG(out[1], "diverged seed2_naive_t1: diverged at epoch 1, batch");
    snprintf(p, sizeof p, "%.*s/results/t/manifest.csv", (int)(strrchr(path, '/') - path), path);
    test_read_file(p, manifest, sizeof manifest);
    CHECK_MSG(manifest, ",diverged,");
    CHECK_MSG(manifest, "\"diverged at epoch 1, batch");
    CU_ASSERT_EQUAL(run_cli(path, args, out), 0); /* not rerun */
    CHECK_MSG(out[1], "(0 just now; 1 diverged)");
    char forced[600];
    snprintf(forced, sizeof forced, "%s --force", args);
    CU_ASSERT_EQUAL(run_cli(path, forced, out), 0);
    CHECK_MSG(out[1], "(1 just now; 1 diverged)");
}

static void test_statistics_known_answers(void)
{
    /* mean 5, sample sd 1.5811388, t(0.975, 4) = 2.7764451 */
    const double x[] = {3, 4, 5, 6, 7};
    cnb_summary s;
    cnb_summarize(x, 5, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.mean, 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.sd, 1.5811388300841898, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.hi - s.mean, 2.7764451051977987 * 1.5811388300841898 / sqrt(5.0),
                           1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s.min, 3.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.max, 7.0, 0.0);
    cnb_summarize(x, 1, &s);
    CU_ASSERT(s.sd == 0.0 && isnan(s.lo));
    /* Welch: a = {1,2,3,4} (var 5/3), b = {3,5,7} (var 4): diff -2.5, se^2 = 5/12 + 4/3,
     * t = -1.8898, df = 3.2347, two-sided p = 0.14847 (as R's t.test(a, b) gives) */
    const double a[] = {1, 2, 3, 4}, b[] = {3, 5, 7};
    cnb_comparison c;
    cnb_welch(a, 4, b, 3, &c);
    CU_ASSERT_DOUBLE_EQUAL(c.diff, -2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c.t, -2.5 / sqrt(5.0 / 12.0 + 4.0 / 3.0), 1e-12);
    double va = 5.0 / 12.0, vb = 4.0 / 3.0;
    CU_ASSERT_DOUBLE_EQUAL(c.df, (va + vb) * (va + vb) / (va * va / 3 + vb * vb / 2), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.p, 0.14847, 0.0001);
    CU_ASSERT(c.lo < c.diff && c.diff < c.hi && c.lo < 0.0 && c.hi > 0.0);
    cnb_welch(a, 4, b, 1, &c);
    CU_ASSERT(isnan(c.p) && isnan(c.lo));
}

/* A sweep folder written by hand: variant a (cells a1, a2) is the baseline, variant b has
 * two finished cells (b1, b2) and a failed one (b3); known accuracies. A cell's state is
 * what its folder says (a `done` marker holding the manifest's fingerprint; error.txt).
 * Returns the folder. */
static const char *known_sweep(const char *a, const char *b)
{
    const char *dir = test_tmpdir();
    char p[2048], text[2048];
    snprintf(p, sizeof p, "%s/sweep.ini", dir);
    snprintf(text, sizeof text, "[sweep]\nname = known\nbaseline = %s\nexperiment = x.ini\n", a);
    test_write_file(p, text);
    snprintf(p, sizeof p, "%s/manifest.csv", dir);
    snprintf(text, sizeof text, "cell,variant,seed,backend,threads,status,fingerprint,message\n"
             "a1,\"%s\",1,naive,1,done,0,\"\"\na2,\"%s\",2,naive,1,done,0,\"\"\n"
             "b1,\"%s\",1,naive,1,done,0,\"\"\nb2,\"%s\",2,naive,1,done,0,\"\"\n"
             "b3,\"%s\",3,naive,1,failed,0,\"crashed\"\n", a, a, b, b, b);
    test_write_file(p, text);
    const char *ids[] = {"a1", "a2", "b1", "b2"};
    const double acc[] = {0.80, 0.82, 0.90, 0.91};
    for (int i = 0; i < 4; i++) {
        char d[1024];
        if (snprintf(d, sizeof d, "%s/%s", dir, ids[i]) >= (int)sizeof d - 16)
            CU_FAIL_FATAL("path too long");
        mkdir(d, 0777);
        snprintf(p, sizeof p, "%s/done", d);
        test_write_file(p, "0");
        snprintf(p, sizeof p, "%s/final.csv", d);
        snprintf(text, sizeof text, "epochs,test_acc,best_test_acc,test_loss,train_eval_acc,gap,"
                 "mean_epoch_seconds,images_per_second,peak_rss_mib\n2,%.2f,%.2f,0.5,%.2f,0.01,"
                 "3.0,1000,100\n", acc[i], acc[i], acc[i] + 0.01);
        test_write_file(p, text);
        snprintf(p, sizeof p, "%s/metrics.csv", d);
        snprintf(text, sizeof text, "epoch,lr,train_loss,train_acc,train_eval_loss,"
                 "train_eval_acc,test_loss,test_acc,gap,train_seconds,eval_seconds,"
                 "images_per_second\n1,0.1,1,0.5,1,0.6,1,0.5,0.1,3,1,1000\n2,0.1,0.5,0.8,0.5,"
                 "%.2f,0.5,%.2f,0.01,3,1,1000\n", acc[i] + 0.01, acc[i]);
        test_write_file(p, text);
    }
    snprintf(p, sizeof p, "%s/b3", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/b3/error.txt", dir);
    test_write_file(p, "crashed");
    return dir;
}

/* A report made from a hand-written sweep folder: its tables hold the known numbers and
 * gnuplot renders every script. */
static void test_report_from_known_cells(void)
{
    const char *dir = known_sweep("v=a", "v=b");
    char p[2048];
    CU_ASSERT_EQUAL_FATAL(cnb_report_write(dir), 0);
    char text[16384] = "";
    snprintf(p, sizeof p, "%s/report.md", dir);
    test_read_file(p, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "| v=a (baseline) | 2 | 0.8100 ± 0.0141 |"));
    /* seeds 1 and 2 on each side: paired; differences 0.10 and 0.09, sd 0.00707, t 19
     * on 1 df, p 0.0335, interval 0.095 +- 12.706 * 0.005 */
    CHECK_MSG(text, "| v=b | +0.0950 | [0.0315, 0.1585] | 0.033 | +0.0000 | better (interval "
                    "above 0) | paired t |");
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "some cells are not finished"));
    snprintf(p, sizeof p, "%s/comparison.csv", dir);
    test_read_file(p, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"v=b\",\"v=a\",test_acc,0.095000,"));
    static const char *const plots[] = {"learning-curves", "accuracy", "gap", NULL};
    for (const char *const *pl = plots; *pl; pl++) {
        const char *ext[] = {"dat", "gp", "png", "svg"};
        for (int k = 0; k < 4; k++) {
            struct stat st;
            snprintf(p, sizeof p, "%s/%s.%s", dir, *pl, ext[k]);
            CU_ASSERT(stat(p, &st) == 0 && st.st_size > 0);
        }
    }
    /* a broken script is reported, naming it */
    snprintf(p, sizeof p, "%s/broken.gp", dir);
    test_write_file(p, "plot 'no-such-file.dat'\n");
    cnb_error_quiet(1);
    CU_ASSERT(cnb_gnuplot(dir, "broken.gp") != 0);
    cnb_error_quiet(0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "broken.gp"));
    CHECK_MSG(cnb_last_error(), "gnuplot failed (exit status 1): line 0: warning: Cannot find "
                                "or open file \"no-such-file.dat\"; line 0: No data in plot");
}

/* The plots label each variant without the axes that follow from the others (lr tied to
 * act), and the report says which were left out; the tables keep the full names. */
static void test_report_plot_labels(void)
{
    const char *dir = known_sweep("act=sigmoid lr=0.1 pool=max", "act=relu lr=0.02 pool=max");
    CU_ASSERT_EQUAL_FATAL(cnb_report_write(dir), 0);
    char p[2048], text[16384];
    static const char *const files[] = {"learning-curves.gp", "accuracy.gp", "report.md"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        test_read_file(p, text, sizeof text);
        if (i == 0) {
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "title 'act=sigmoid (baseline)'"));
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "title 'act=relu'"));
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "title 'train (dashed)'"));
        } else if (i == 1) {
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"act=sigmoid (baseline)\" 0, \"act=relu\" 1"));
        } else {
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "labels leave out pool, lr: its values"));
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "| act=relu lr=0.02 pool=max | +0.0950 |"));
        }
    }
}

/* `cnnbench run exp` exits 2 with both messages on stderr and makes no `results` folder
 * (relative to the experiment's folder). */
static void expect_refused(const char *exp, const char *results, const char *msg1,
                           const char *msg2)
{
    char out[2][8192], path[1024];
    CU_ASSERT_EQUAL(run_cli(exp, "", out), 2);
    CHECK_MSG(out[0], msg1);
    CHECK_MSG(out[0], msg2);
    snprintf(path, sizeof path, "%.*s/%s", (int)(strrchr(exp, '/') - exp), exp, results);
    CU_ASSERT(access(path, F_OK) != 0); /* nothing made */
}

/* A cell whose estimated memory does not fit the machine is refused before anything
 * runs, --dry-run included (a model with a 10^8-wide layer: ~900 GiB of parameters);
 * --dry-run shows each cell's estimate. */
static void test_memory_estimate(void)
{
    const char *dir = test_tmpdir();
    char model[512], exp[512], text[2048], out[2][8192];
    snprintf(model, sizeof model, "%s/wide.ini", dir);
    test_write_file(model, "[net]\nchannels = 1\nheight = 28\nwidth = 28\nclasses = 10\n"
                           "[flatten]\ntype = flatten\n[fc1]\ntype = fc\noutputs = 100000000\n"
                           "[fc2]\ntype = fc\noutputs = 10\n[prob]\ntype = softmax\n");
    snprintf(exp, sizeof exp, "%s/wide-exp.ini", dir);
    snprintf(text, sizeof text, "[experiment]\nname = w\nmodel = %s\nresults = %s/results\n"
             "[data]\ndir = %s\ntrain_limit = 100\ntest_limit = 100\n[train]\nbatch = 10\n",
             model, dir, test_data_dir());
    test_write_file(exp, text);
    expect_refused(exp, "results/w", "cell seed1_naive_t1 needs about", "MiB are available");
    CU_ASSERT_EQUAL(run_cli(exp, "--dry-run", out), 2); /* what would not run, said first */
    CU_ASSERT_EQUAL(run_cli(experiment(""), "--dry-run", out), 0);
    CHECK_MSG(out[1], "~MiB");
}

/* A CIFAR-10 folder is read whole before any cell runs: a label out of range in the test
 * batch is named with its file, exit 2. */
static void test_cifar_checked_up_front(void)
{
    const char *dir = test_tmpdir();
    char data[512], path[700], exp[512], text[2048];
    snprintf(data, sizeof data, "%s/cifar", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(data, 0777), 0);
    static const char *const files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin", "test_batch.bin"};
    unsigned char rec[2][1 + 3072];
    memset(rec, 100, sizeof rec);
    for (int i = 0; i < 6; i++) {
        rec[0][0] = 3, rec[1][0] = i == 5 ? 12 : 7; /* the test batch's 2nd label: 12 */
        snprintf(path, sizeof path, "%s/%s", data, files[i]);
        FILE *f = fopen(path, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(fwrite(rec, sizeof rec, 1, f), 1);
        fclose(f);
    }
    snprintf(exp, sizeof exp, "%s/cifar.ini", dir);
    snprintf(text, sizeof text, "[experiment]\nname = c\nmodel = %s/experiments/models/"
             "alexnet-small.ini\nresults = %s/results\n[data]\nformat = cifar\ndir = %s\n"
             "[train]\nbatch = 2\n", CNB_SOURCE_ROOT, dir, data);
    test_write_file(exp, text);
    expect_refused(exp, "results/c", "test_batch.bin", "label 12");
}

/* A results folder has one owner: another experiment file under the same name is
 * refused, so is a second run while one holds the folder, and a name that would leave
 * the results root. Nothing of the first run is touched. */
static void test_results_folder_owner(void)
{
    const char *path = experiment("[sweep]\nseed = 1\n");
    char dir[512], copy[600], cmd[2048], done[1024];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    char *one_epoch[] = {"train.epochs=1"};
    CU_ASSERT_EQUAL_FATAL(run_sweep(path, one_epoch, 1, 0), 0);
    snprintf(done, sizeof done, "%s/results/t/seed1_naive_t1/done", dir);
    long marked = mtime_ns(done);
    CU_ASSERT(marked > 0);

    /* the same experiment copied under another file name, keeping `name = t` */
    snprintf(copy, sizeof copy, "%s/copy.ini", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    cnb_error_quiet(1);
    CU_ASSERT_EQUAL(run_sweep(copy, one_epoch, 1, 0), CNB_EINVAL);
    cnb_error_quiet(0);
    CHECK_MSG(cnb_last_error(), "holds the results of");
    CHECK_MSG(cnb_last_error(), "another [experiment] name");
    CU_ASSERT_EQUAL(mtime_ns(done), marked);

    /* a second run while the folder's lock is held: exit 2 naming the holder */
    char lock[1024], out[2][8192];
    snprintf(lock, sizeof lock, "%s/results/t/.lock", dir);
    int fd = open(lock, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(flock(fd, LOCK_EX | LOCK_NB), 0);
    if (write(fd, "pid 1 on test, cnnbench run x.ini, since now\n", 45) != 45)
        CU_FAIL("cannot write the lock");
    CU_ASSERT_EQUAL(run_cli(path, "--set train.epochs=1", out), 2);
    CHECK_MSG(out[0], "is in use by another run (pid 1 on test");
    close(fd);
    CU_ASSERT_EQUAL(mtime_ns(done), marked);

    /* names stay inside the results root */
    CU_ASSERT_EQUAL(run_cli(path, "--set experiment.name=../../escape", out), 2);
    CHECK_MSG(out[0], "name = '../../escape': a results folder name may hold only");
}

/* The file's text without the columns of times and rates (train_seconds, ...). */
static void untimed_csv(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int timed[64] = {0};
    size_t n = 0;
    out[0] = '\0';
    for (int row = 0; f && fgets(line, sizeof line, f); row++) {
        char *save = NULL;
        int col = 0;
        for (char *t = strtok_r(line, ",\n", &save); t; t = strtok_r(NULL, ",\n", &save), col++) {
            if (row == 0 && col < 64)
                timed[col] = strstr(t, "second") != NULL; /* seconds, images_per_second */
            if (col < 64 && !timed[col])
                n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s,", t);
        }
        n += (size_t)snprintf(out + n, n < len ? len - n : 0, "\n");
    }
    if (f)
        fclose(f);
}

/* Cells run anywhere: --list-cells, --cell and --shard pick cells; a cell another process
 * holds is left to it; a whole run and cell runs never mix; two shards at once finish the
 * grid, the last writes the report, and its numbers equal a whole run's. */
static void test_cells_run_anywhere(void)
{
    const char *path = experiment("[sweep]\nact = sigmoid, relu\nseed = 1, 2\n");
    char dir[512], out[2][8192], p[1024], cmd[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    const char *one = "--set train.epochs=1";
    const char *x = "act-sigmoid_seed1_naive_t1", *y = "act-relu_seed2_naive_t1";

    CU_ASSERT_EQUAL(run_cli(path, "--list-cells --set train.epochs=1", out), 0);
    CU_ASSERT_STRING_EQUAL(out[1], "act-sigmoid_seed1_naive_t1\nact-sigmoid_seed2_naive_t1\n"
                                   "act-relu_seed1_naive_t1\nact-relu_seed2_naive_t1\n");
    CU_ASSERT_EQUAL(run_cli(path, "--cell nope --set train.epochs=1", out), 2);
    CHECK_MSG(out[0], "no cell 'nope' in the grid (4 cells;");
    CU_ASSERT_EQUAL(run_cli(path, "--shard 2/2", out), 2);
    CHECK_MSG(out[0], "--shard 2/2: expected I/N");

    /* x held by another process: --cell x,y runs y only and says so */
    snprintf(p, sizeof p, "%s/results/t/%s", dir, x);
    CU_ASSERT_EQUAL_FATAL(cnb_mkdirs(p), 0);
    snprintf(p, sizeof p, "%s/results/t/%s/.lock", dir, x);
    int held = open(p, O_RDWR | O_CREAT, 0666);
    CU_ASSERT_FATAL(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0);
    snprintf(cmd, sizeof cmd, "--cell %s,%s %s", x, y, one);
    CU_ASSERT_EQUAL(run_cli(path, cmd, out), 0);
    CHECK_MSG(out[1], "1 of 4 cells finished (1 just now; 0 diverged), 0 failed, 1 running in "
                      "another process");
    CHECK_MSG(out[1], "the report is written when every cell has finished");
    CU_ASSERT_EQUAL(run_cli(path, "--list-cells --set train.epochs=1", out), 0);
    CU_ASSERT_STRING_EQUAL(out[1], "act-sigmoid_seed2_naive_t1\nact-relu_seed1_naive_t1\n");
    snprintf(p, sizeof p, "%s/results/t", dir);
    CU_ASSERT_EQUAL(cnb_results_refresh(p), 0);
    cnb_cell_info *cells = NULL;
    int n = 0;
    CU_ASSERT_EQUAL_FATAL(cnb_results_cells(p, &cells, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(cells[0].state, "running");
    CU_ASSERT_STRING_EQUAL(cells[1].state, "pending");
    CU_ASSERT_STRING_EQUAL(cells[3].state, "done");
    CU_ASSERT(cells[3].mib > 0 && cells[3].threads == 1 && cells[3].seed == 2);
    free(cells);

    /* the folder held by a cell run: a whole run is refused, naming why */
    snprintf(p, sizeof p, "%s/results/t/.lock", dir);
    int shared = open(p, O_RDWR);
    CU_ASSERT_FATAL(shared >= 0 && flock(shared, LOCK_SH | LOCK_NB) == 0);
    CU_ASSERT_EQUAL(run_cli(path, one, out), 2);
    CHECK_MSG(out[0], "is in use by runs of single cells");
    close(shared);
    close(held);

    /* two shards at once finish the rest */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for s in 0 1; do ('%s/core/cnnbench' run '%s' -q --jobs 1 --shard $s/2 "
             "%s >shard$s.txt 2>&1; echo $? >>shard$s.txt) & done; wait; cat shard0.txt "
             "shard1.txt >shards.txt", dir, CNB_BUILD_ROOT, path, one);
    CU_ASSERT_EQUAL(system(cmd), 0);
    snprintf(p, sizeof p, "%s/shards.txt", dir);
    FILE *f = fopen(p, "r");
    char log[16384] = "";
    if (f) {
        log[fread(log, 1, sizeof log - 1, f)] = '\0';
        fclose(f);
    }
    CU_ASSERT_EQUAL(count(log, "\n0\n"), 2); /* both exit 0 */
    CU_ASSERT_EQUAL(count(log, "report: "), 1);
    CU_ASSERT_EQUAL(count(log, "] done: test accuracy") + count(log, "\ndone: test accuracy"), 3);
    CU_ASSERT_EQUAL(run_cli(path, "--list-cells --set train.epochs=1", out), 0);
    CU_ASSERT_STRING_EQUAL(out[1], "");

    /* the same numbers as one whole run */
    CU_ASSERT_EQUAL(run_cli(path, "--set train.epochs=1 --set experiment.name=whole", out), 0);
    char a[8192], b[8192], wa[1024], wb[1024];
    snprintf(wa, sizeof wa, "%s/results/t/cells.csv", dir);
    snprintf(wb, sizeof wb, "%s/results/whole/cells.csv", dir);
    untimed_csv(wa, a, sizeof a);
    untimed_csv(wb, b, sizeof b);
    CU_ASSERT(strlen(a) > 100);
    CU_ASSERT_STRING_EQUAL(a, b);
}

static int same_file(const char *a, const char *b)
{
    char cmd[4500];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* A cell killed (SIGKILL to its whole process group) after an epoch resumes from its
 * checkpoint and ends with the metrics and weights of a run that was never stopped; a
 * model with dropout, so that the layer's random stream is part of what is restored. */
static void test_kill_and_resume(void)
{
    const char *dir = test_tmpdir();
    char model[512], exp[512], text[4096];
    snprintf(model, sizeof model, "%s/drop.ini", dir);
    test_write_file(model, "[net]\nchannels = 1\nheight = 28\nwidth = 28\nclasses = 10\n"
                           "[conv1]\ntype = conv\nfilters = 4\nkernel = 5\nstride = 2\n"
                           "[act1]\ntype = act.relu\n[flatten]\ntype = flatten\n"
                           "[fc1]\ntype = fc\noutputs = 32\n[act2]\ntype = act.relu\n"
                           "[drop]\ntype = dropout\nratio = 0.5\n"
                           "[fc2]\ntype = fc\noutputs = 10\n[prob]\ntype = softmax\n");
    snprintf(exp, sizeof exp, "%s/resume.ini", dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = r\nmodel = %s\nresults = %s/results\nseed = 5\n"
             "[data]\ndir = %s\ntrain_limit = 6000\ntest_limit = 200\n"
             "[train]\nepochs = 3\nbatch = 50\nlr = 0.05\nmomentum = 0.9\n"
             "train_eval_limit = 100\n", model, dir, test_data_dir());
    test_write_file(exp, text);
    char out[2][8192];
    CU_ASSERT_EQUAL_FATAL(run_cli(exp, "--set experiment.name=whole", out), 0);

    char cell[1024], ckpt[1100], cmd[2048];
    snprintf(cell, sizeof cell, "%s/results/r/seed5_naive_t1", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.cnbk", cell);
    snprintf(cmd, sizeof cmd, "%s/core/cnnbench", CNB_BUILD_ROOT);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            cnb_child_exit(126);
        execl(cmd, cmd, "run", exp, "-q", (char *)NULL);
        cnb_child_exit(127);
    }
    setpgid(pid, pid);
    int status, waited = 0;
    for (int i = 0; i < 120000 && access(ckpt, F_OK) != 0; i++) /* up to 2 min */
        if ((waited = waitpid(pid, &status, WNOHANG)) == pid)
            break;
        else
            usleep(1000);
    kill(-pid, SIGKILL); /* the run and its cell, mid-epoch 2 */
    if (waited != pid)
        waitpid(pid, &status, 0);
    CU_ASSERT_EQUAL_FATAL(access(ckpt, F_OK), 0);
    char done[1100];
    snprintf(done, sizeof done, "%s/done", cell);
    CU_ASSERT_NOT_EQUAL(access(done, F_OK), 0); /* killed before it finished */

    CU_ASSERT_EQUAL_FATAL(run_cli(exp, "", out), 0);
    CHECK_MSG(out[1], "resumed from");
    CU_ASSERT_NOT_EQUAL(access(ckpt, F_OK), 0); /* removed once the cell finished */
    char whole[1024], a[8192], b[8192];
    snprintf(whole, sizeof whole, "%s/results/whole/seed5_naive_t1", dir);
    char wa[2200], wb[2200];
    snprintf(wa, sizeof wa, "%s/weights.cnbw", cell);
    snprintf(wb, sizeof wb, "%s/weights.cnbw", whole);
    CU_ASSERT(same_file(wa, wb));
    snprintf(wa, sizeof wa, "%s/metrics.csv", cell);
    snprintf(wb, sizeof wb, "%s/metrics.csv", whole);
    untimed_csv(wa, a, sizeof a);
    untimed_csv(wb, b, sizeof b);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "\n  resumed:\n%s\n  never stopped:\n%s", a, b);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(strstr(a, "\n3,") != NULL); /* all three epochs */
}

/* The value of `key = ` in a cell's meta.ini ("" when absent). */
static void meta_value(const char *dir, const char *cell, const char *key, char *out,
                       size_t len)
{
    char path[1500], line[1024], want[128];
    snprintf(path, sizeof path, "%s/%s/meta.ini", dir, cell);
    snprintf(want, sizeof want, "%s = ", key);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, want, strlen(want)) == 0) {
            snprintf(out, len, "%s", line + strlen(want));
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
}

/* [data] validation: bad values are refused at their line before anything runs (exit 2);
 * a run holds out the same images for every variant of a seed (another seed, others),
 * records how in meta.ini and its fingerprint, and reports validation per epoch. */
static void test_validation_split(void)
{
    const char *path = experiment("[sweep]\ntrain.lr = 0.02, 0.05\nseed = 1, 2\n"
                                  "[profile.bad]\ndata.validation = -5\n");
    expect_cli(path, "--profile bad", 2, "exp.ini:19: [data] validation = '-5': expected the "
               "training images to hold out, a count (6000) or a fraction of them below 1", 1);
    expect_cli(path, "--set data.validation=1.0", 2, "--set data.validation=1.0: [data] "
               "validation = '1.0': expected", 1);
    expect_cli(path, "--set data.validation=400", 2, "--set data.validation=400: holds out 400 "
               "of the 400 training images (data.train_limit); leave some to train on", 1);
    expect_cli(path, "--set data.validation=0.001", 2, "holds out 0 of the 400 training "
               "images (data.train_limit); give a larger fraction, or a count", 1);
    expect_cli(path, "--set data.validation=0.9", 2, "a batch of 50 is more than the 40 "
               "training images (data.train_limit) left after data.validation", 1);

    char dir[512], out[2][8192], a[64], b[64], c[64], p[1024];
    snprintf(dir, sizeof dir, "%.*s/results/t", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "--set data.validation=0.25 --set train.epochs=1",
                                  out), 0);
    meta_value(dir, "lr-0.02_seed1_naive_t1", "validation_crc32", a, sizeof a);
    meta_value(dir, "lr-0.05_seed1_naive_t1", "validation_crc32", b, sizeof b);
    meta_value(dir, "lr-0.05_seed2_naive_t1", "validation_crc32", c, sizeof c);
    CU_ASSERT(strlen(a) == 8);
    CU_ASSERT_STRING_EQUAL(a, b); /* the same held-out images for every variant of a seed */
    CU_ASSERT_STRING_NOT_EQUAL(a, c);
    meta_value(dir, "lr-0.02_seed1_naive_t1", "validation", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "100 images");
    meta_value(dir, "lr-0.02_seed1_naive_t1", "train", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "300 images 1x28x28");
    meta_value(dir, "lr-0.02_seed1_naive_t1", "validation_stream", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "6");
    meta_value(dir, "lr-0.02_seed1_naive_t1", "fusion", a, sizeof a); /* naive fuses none */
    CU_ASSERT_STRING_EQUAL(a, "yes");
    meta_value(dir, "lr-0.02_seed1_naive_t1", "fused_runs", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "");
    char metrics[4096] = "", report[16384] = "";
    snprintf(p, sizeof p, "%s/lr-0.02_seed1_naive_t1/metrics.csv", dir);
    test_read_file(p, metrics, sizeof metrics);
    CHECK_MSG(metrics, ",val_loss,val_acc\n1,");
    CU_ASSERT(strstr(metrics, ",,\n") == NULL); /* both filled in */
    snprintf(p, sizeof p, "%s/report.md", dir);
    test_read_file(p, report, sizeof report);
    CHECK_MSG(report, "| val acc | val loss | test acc at best val epoch |");
    CHECK_MSG(report, "## Validation per epoch (accuracy / loss, mean over seeds)");
    /* the hold-out is part of the cells' settings: another one is another result */
    CU_ASSERT_EQUAL(run_cli(path, "--set data.validation=50 --set train.epochs=1", out), 2);
    CHECK_MSG(out[0], "4 finished cells");
    CHECK_MSG(out[0], "ran with other settings");
}

/* [train] warmup and warmup_steps: checked against the run before anything runs (exit 2),
 * sweepable, and part of the cells' settings. */
static void test_warmup_settings(void)
{
    const char *path = experiment("[sweep]\ntrain.warmup_steps = 0, 4\n");
    expect_cli(path, "--set train.warmup=3", 2, "--set train.warmup=3: a warm-up of 3 epochs "
               "is longer than the run's 2; shorten it", 1);
    expect_cli(path, "--set train.warmup=1", 2, "exp.ini:16: [sweep] "
               "train.warmup_steps both set the warm-up; give one", 1);
    expect_cli(path, "--set train.warmup=-1", 2, "[train] warmup = '-1': expected a whole "
               "number from 0", 1);
    cnb_experiment e;
    cnb_cell *cells;
    int n;
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(cells[1].train.warmup_steps, 4);
    char a[17], b[17];
    CU_ASSERT_EQUAL(cnb_cell_fingerprint(&e, &cells[0], a), 0);
    CU_ASSERT_EQUAL(cnb_cell_fingerprint(&e, &cells[1], b), 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
}

/* ---- validation of image files ------------------------------------------------------ */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* An experiment of grey 28 x 28 PNG folders in a fresh folder, LeNet-5 on 2 classes, 2
 * epochs of batch 4: train/a and train/b of 8 images each (indices 0-7 and 8-15 in the
 * folder's order), test/a and test/b of 2; [data] validation = 4, loader_threads = 1,
 * on_bad_image = skip, then `data`; `extra` appended. The 4 training images seed 1 holds
 * out (held[i] = 1, their digest *crc) are white, and the first of them is cut short
 * when `bad`; every other image is black on its left half and grey 102 on its right
 * (mean 0.2), so statistics over the images trained on are 0.2, over them all more. */
static const char *image_experiment(const char *file, int bad, const char *data,
                                    const char *extra, unsigned char *held, uint32_t *crc)
{
    static char path[512];
    const char *dir = test_tmpdir();
    static const char *const splits[] = {"train", "test"}, *const classes[] = {"a", "b"};
    unsigned char px[28 * 28];
    char p[1024], text[4096];
    CU_ASSERT_EQUAL_FATAL(cnb_holdout_draw(16, 4, 1, held, crc), 0);
    int cut = bad;
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%s/%s/%s", dir, splits[t], classes[k]);
            CU_ASSERT_EQUAL_FATAL(cnb_mkdirs(p), 0);
            for (int i = 0; i < (t ? 2 : 8); i++) {
                int white = t == 0 && held[k * 8 + i];
                for (int at = 0; at < 28 * 28; at++)
                    px[at] = white ? 255 : at % 28 < 14 ? 0 : 102;
                snprintf(p, sizeof p, "%s/%s/%s/%02d.png", dir, splits[t], classes[k], i);
                CU_ASSERT_EQUAL_FATAL(photo_write_png(p, px, 28, 28, 1), 0);
                if (white && cut-- > 0)
                    CU_ASSERT_EQUAL_FATAL(truncate(p, file_size(p) / 2), 0);
            }
        }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(text, sizeof text,
             "[experiment]\nname = img\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s/results\n[data]\nformat = folder\ntrain = train\ntest = test\n"
             "channels = 1\nresize = 28x28\nresize_mode = exact\nvalidation = 4\n"
             "loader_threads = 1\non_bad_image = skip\n%s[train]\nepochs = 2\nbatch = 4\n"
             "lr = 0.05\ntrain_eval_limit = 4\n%s",
             CNB_SOURCE_ROOT, dir, data, extra);
    test_write_file(path, text);
    return path;
}

/* A finished image-folder cell holds out what seed 1 draws from 16 (crc), trains on the
 * other 12, takes its statistics from them alone, and reports validation every epoch. */
static void check_image_cell(const char *cell_dir, uint32_t crc)
{
    char a[64], want[64], p[1200], metrics[4096] = "";
    meta_value(cell_dir, "seed1_naive_t1", "validation_crc32", a, sizeof a);
    snprintf(want, sizeof want, "%08x", crc);
    CU_ASSERT_STRING_EQUAL(a, want);
    meta_value(cell_dir, "seed1_naive_t1", "validation", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "4 images");
    meta_value(cell_dir, "seed1_naive_t1", "train", a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "12 images 1x28x28");
    meta_value(cell_dir, "seed1_naive_t1", "pixel_mean_0", a, sizeof a);
    CU_ASSERT_DOUBLE_EQUAL(atof(a), 0.2, 1e-3); /* 0.4 with the white ones */
    snprintf(p, sizeof p, "%s/seed1_naive_t1/metrics.csv", cell_dir);
    test_read_file(p, metrics, sizeof metrics);
    CHECK_MSG(metrics, ",val_loss,val_acc\n1,");
    CHECK_MSG(metrics, "\n2,");
    CU_ASSERT(strstr(metrics, ",,\n") == NULL && strstr(metrics, "nan") == NULL);
}

/* [data] validation of image folders: the same images held out at 1 and 3 loader threads
 * (the whole run the same), never trained on nor in the statistics; an unreadable one
 * (on_bad_image = skip) counts in neither; too few left for a batch is refused at the
 * batch's line before anything runs (exit 2); packs hold out the same images. */
static void test_image_validation(void)
{
    unsigned char held[16];
    uint32_t crc;
    const char *path = image_experiment("img.ini", 1, "", "", held, &crc);
    char dir[512], out[2][8192], a[8192], b[8192], p[1024];
    snprintf(dir, sizeof dir, "%.*s/results", (int)(strrchr(path, '/') - path), path);
    expect_cli(path, "--set data.validation=14", 2, "img.ini:17: [train] batch: a batch of 4 "
               "is more than the 2 training images left after data.validation", 1);
    expect_cli(path, "--set data.validation=16", 2, "--set data.validation=16: holds out 16 of "
               "the 16 training images; leave some to train on", 1);
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "", out), 0);
    /* each epoch's line counts the unreadable held-out image once: validation read it,
     * training did not (then it would be left out of two sets: counted twice) */
    CU_ASSERT_EQUAL(count(out[1], "(1 unreadable images left out)"), 2);
    CU_ASSERT_PTR_NULL(strstr(out[1], "(2 unreadable"));
    CU_ASSERT_PTR_NULL(strstr(out[0], "skipped (data.on_bad_image = skip)")); /* statistics */
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "--set data.loader_threads=3 --set experiment.name=t3",
                                  out), 0);
    char one[600], three[600];
    snprintf(one, sizeof one, "%s/img", dir);
    snprintf(three, sizeof three, "%s/t3", dir);
    check_image_cell(one, crc);
    check_image_cell(three, crc);
    snprintf(p, sizeof p, "%s/seed1_naive_t1/metrics.csv", one);
    untimed_csv(p, a, sizeof a);
    snprintf(p, sizeof p, "%s/seed1_naive_t1/metrics.csv", three);
    untimed_csv(p, b, sizeof b);
    CU_ASSERT_STRING_EQUAL(a, b);

    /* from packs (cnnbench convert): the same images held out, the same statistics */
    path = image_experiment("pack.ini", 0, "cache = packs\ncache_build = 1\n", "", held, &crc);
    snprintf(dir, sizeof dir, "%.*s/results/img", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "", out), 0);
    CHECK_MSG(out[1], "writing the packs of [data] cache");
    check_image_cell(dir, crc);
}

/* [select] on an image-folder experiment: each candidate runs on the held-out images and
 * the grid's cell runs at the one of the higher validation accuracy. */
static void test_image_select(void)
{
    unsigned char held[16];
    uint32_t crc;
    const char *path = image_experiment("sel.ini", 0, "", "[select]\ntrain.momentum = 0, 0.9\n",
                                        held, &crc);
    char dir[512], out[2][8192], chosen[256], want[64];
    snprintf(dir, sizeof dir, "%.*s/results/img", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "", out), 0);
    CHECK_MSG(out[1], "selection for all: train.momentum = ");
    static const char *const values[] = {"0", "0.9"}, *const names[] = {"val_acc"};
    double acc[2];
    for (int k = 0; k < 2; k++) {
        char cell[1024];
        snprintf(cell, sizeof cell, "%s/select-momentum-%s_seed1_naive_t1", dir, values[k]);
        CU_ASSERT_EQUAL_FATAL(cnb_final_read(cell, names, &acc[k], 1), 0);
    }
    meta_value(dir, "seed1_naive_t1", "chosen", chosen, sizeof chosen);
    snprintf(want, sizeof want, "train.momentum = %s (validation_accuracy",
             values[acc[1] > acc[0]]);
    CHECK_MSG(chosen, want);
    check_image_cell(dir, crc);
}

/* ---- [select] -------------------------------------------------------------------------- */

/* An experiment choosing train.lr per activation on 100 held-out images (line 21: the
 * [select] key); `extra` goes into [select]. */
static const char *select_experiment(const char *extra)
{
    char sections[1024];
    snprintf(sections, sizeof sections,
             "[vars]\npool = max\n[sweep]\nact = sigmoid, relu\nseed = 1, 2\n"
             "[select]\ntrain.lr = 0.02, 0.1\n%s", extra);
    return experiment_file("sel.ini", "sel", "act=sigmoid",
                           "train_limit = 600\ntest_limit = 200\nvalidation = 100\n",
                           "epochs = 1\nbatch = 50\ntrain_eval_limit = 100\n", sections);
}

/* The rule: the highest accuracy (lowest loss) of the means over seeds; the first listed
 * of equal ones; a candidate with a NaN never. */
static void test_select_rule(void)
{
    double score[3];
    const double tie[] = {0.5, 0.7, 0.6, 0.6, 0.7, 0.5}; /* 3 candidates x 2 seeds */
    CU_ASSERT_EQUAL(cnb_select_best(tie, 3, 2, 0, score), 0); /* all 0.6: the first */
    CU_ASSERT_DOUBLE_EQUAL(score[1], 0.6, 1e-12);
    const double acc[] = {0.5, 0.6, 0.9, NAN, 0.7, 0.8};
    CU_ASSERT_EQUAL(cnb_select_best(acc, 3, 2, 0, score), 2); /* 0.9 diverged on a seed */
    CU_ASSERT(isnan(score[1]));
    CU_ASSERT_EQUAL(cnb_select_best(acc, 3, 2, 1, score), 0); /* as losses: the lowest */
    const double loss[] = {0.3, 0.2, 0.1};
    CU_ASSERT_EQUAL(cnb_select_best(loss, 3, 1, 1, score), 2);
    const double none[] = {NAN, NAN};
    CU_ASSERT_EQUAL(cnb_select_best(none, 2, 1, 0, score), -1);
}

/* [select] is refused at its line, naming what conflicts, before anything runs; the grid
 * gets its selection cells first, per variant each candidate on each selection seed. */
static void test_select_grid_and_errors(void)
{
    const char *path = select_experiment("");
    static const struct {
        const char *set, *msg;
    } bad[] = {
        {"data.validation=0", "sel.ini:21: [select] train.lr chooses on the validation split: "
                              "set [data] validation"},
        {"train.lr=0.05", "sel.ini:21: [select] train.lr conflicts with [train] lr = 0.05 "
                          "(--set train.lr=0.05): the selection chooses it per variant"},
        {"sweep.train.lr=0.1,0.2", "sel.ini:21: [select] train.lr conflicts with [sweep] "
                                   "train.lr (--set sweep.train.lr=0.1,0.2)"},
        {"select.by=validation_speed", "[select] by = 'validation_speed': expected one of "
                                       "validation_accuracy, validation_loss"},
        {"select.train.momentum=0.5,0.9", "one setting is selected at a time"},
        {"select.vars.act=relu,sigmoid", "only a [train] setting can be selected"},
        {"select.seeds=1,x", "[select] seeds: 'x' is not a valid seed"},
        {"select.train.lr=0.1", "needs two candidates or more"},
        {"select.train.lr=0.1,-1", "[select] train.lr value '-1' is out of range"},
    };
    cnb_experiment e;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *set[] = {(char *)bad[i].set};
        cnb_error_quiet(1);
        CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, set, 1), CNB_EINVAL);
        cnb_error_quiet(0);
        CHECK_MSG(cnb_last_error(), bad[i].msg);
        cnb_experiment_free(&e);
    }
    expect_cli(path, "--set data.validation=0", 2, "chooses on the validation split", 1);

    char *seeds[] = {"select.seeds=3, 4"};
    cnb_cell *cells;
    int n;
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, seeds, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2 * 2 * 2 + 4); /* variants x candidates x seeds, + the grid */
    CU_ASSERT_STRING_EQUAL(cells[0].id, "select-lr-0.02_act-sigmoid_seed3_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[1].id, "select-lr-0.02_act-sigmoid_seed4_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[2].id, "select-lr-0.1_act-sigmoid_seed3_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[7].id, "select-lr-0.1_act-relu_seed4_naive_t1");
    CU_ASSERT_STRING_EQUAL(cells[7].variant, "act=relu");
    CU_ASSERT_STRING_EQUAL(cnb_vars_get(&cells[7].vars, "act"), "relu");
    CU_ASSERT_STRING_EQUAL(cells[7].candidate, "0.1");
    CU_ASSERT_DOUBLE_EQUAL(cells[7].train.lr, 0.1, 0.0);
    CU_ASSERT_EQUAL(cells[7].seed, 4);
    CU_ASSERT(!cells[7].waits);
    CU_ASSERT_STRING_EQUAL(cells[8].id, "act-sigmoid_seed1_naive_t1");
    CU_ASSERT_PTR_NULL(cells[8].candidate);
    CU_ASSERT(cells[8].waits && cells[11].waits);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
}

/* The choice, read back from the files: each variant's cells ran at the candidate of the
 * highest validation accuracy of its selection cells, which report.md and selection.csv
 * show; the selection cells ran first, once. */
static void check_choices(const char *dir)
{
    static const char *const acts[] = {"sigmoid", "relu"}, *const lrs[] = {"0.02", "0.1"};
    for (int a = 0; a < 2; a++) {
        double best = -1.0;
        int chosen = -1;
        for (int k = 0; k < 2; k++) {
            char cell[1024];
            static const char *const names[] = {"val_acc"};
            double acc;
            snprintf(cell, sizeof cell, "%s/select-lr-%s_act-%s_seed1_naive_t1", dir, lrs[k],
                     acts[a]);
            CU_ASSERT_EQUAL_FATAL(cnb_final_read(cell, names, &acc, 1), 0);
            if (acc > best)
                best = acc, chosen = k;
        }
        for (int seed = 1; seed <= 2; seed++) {
            char id[128], lr[64];
            snprintf(id, sizeof id, "act-%s_seed%d_naive_t1", acts[a], seed);
            meta_value(dir, id, "chosen", lr, sizeof lr);
            char want[64];
            snprintf(want, sizeof want, "train.lr = %s (validation_accuracy", lrs[chosen]);
            CHECK_MSG(lr, want);
        }
    }
    char p[1024], text[16384] = "";
    snprintf(p, sizeof p, "%s/report.md", dir);
    test_read_file(p, text, sizeof text);
    CHECK_MSG(text, "## Selection of train.lr on validation");
    CHECK_MSG(text, "### act=relu: train.lr = ");
    CHECK_MSG(text, "**chosen**");
    CU_ASSERT_PTR_NULL(strstr(text, "| select-")); /* not among the grid's cells */
    snprintf(p, sizeof p, "%s/selection.csv", dir);
    CU_ASSERT(access(p, R_OK) == 0);
}

static void test_select_runs_and_resumes(void)
{
    const char *path = select_experiment("seeds = 1\n");
    char dir[512], out[2][8192];
    snprintf(dir, sizeof dir, "%.*s/results/sel", (int)(strrchr(path, '/') - path), path);
    CU_ASSERT_EQUAL_FATAL(run_cli(path, "", out), 0);
    CHECK_MSG(out[1], "8 cells, 8 to run");
    CHECK_MSG(out[1], "selection for act=sigmoid: train.lr = ");
    CHECK_MSG(out[1], "8 of 8 cells finished (8 just now");
    check_choices(dir);
    CU_ASSERT_EQUAL(run_cli(path, "", out), 0); /* resumed: nothing to run */
    CHECK_MSG(out[1], "8 cells, 0 to run");
    char whole[8192], cells[8192], p[1024];
    snprintf(p, sizeof p, "%s/cells.csv", dir);
    untimed_csv(p, whole, sizeof whole);

    /* a run of one cell of the grid runs its variant's selection first, and only that */
    const char *again = select_experiment("seeds = 1\n");
    snprintf(dir, sizeof dir, "%.*s/results/sel", (int)(strrchr(again, '/') - again), again);
    CU_ASSERT_EQUAL(run_cli(again, "--cell act-relu_seed2_naive_t1", out), 0);
    CHECK_MSG(out[1], "1 selected, 3 to run");
    CHECK_MSG(out[1], "3 of 8 cells finished (3 just now");
    char list[2][8192];
    CU_ASSERT_EQUAL(run_cli(again, "--list-cells", list), 0);
    CU_ASSERT_STRING_EQUAL(list[1], "select-lr-0.02_act-sigmoid_seed1_naive_t1\n"
                                    "select-lr-0.1_act-sigmoid_seed1_naive_t1\n"
                                    "act-sigmoid_seed1_naive_t1\nact-sigmoid_seed2_naive_t1\n"
                                    "act-relu_seed1_naive_t1\n");
    /* two shards at once finish the grid; the last writes the report, the whole run's */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "B='%s/core/cnnbench'; $B run '%s' -q --shard 0/2 >/dev/null "
             "2>&1 & $B run '%s' -q --shard 1/2 >/dev/null 2>&1; a=$?; wait $!; "
             "[ $a -eq 0 ] && [ $? -eq 0 ]", CNB_BUILD_ROOT, again, again);
    CU_ASSERT_EQUAL(system(cmd), 0);
    check_choices(dir);
    snprintf(p, sizeof p, "%s/cells.csv", dir);
    untimed_csv(p, cells, sizeof cells);
    CU_ASSERT_STRING_EQUAL(cells, whole);
}

/* A selection that does not finish leaves its variant's cells unrun, said, exit 1; a
 * rerun completes it. Every candidate diverging is said the same way. */
static void test_select_unfinished(void)
{
    const char *path = select_experiment("seeds = 1\n");
    char dir[512], out[2][8192], block[1024];
    snprintf(dir, sizeof dir, "%.*s/results/sel", (int)(strrchr(path, '/') - path), path);
    snprintf(block, sizeof block, "%s/select-lr-0.1_act-relu_seed1_naive_t1", dir);
    CU_ASSERT_EQUAL_FATAL(cnb_mkdirs(dir), 0);
    test_write_file(block, "a file where the cell's folder goes\n");
    CU_ASSERT_EQUAL(run_cli(path, "", out), 1);
    CHECK_MSG(out[1], "2 not run (no [select] choice)");
    CHECK_MSG(out[1], "waiting  act-relu_seed1_naive_t1: not run for its variant's selection: "
                      "cell select-lr-0.1_act-relu_seed1_naive_t1 failed; rerun");
    CHECK_MSG(out[0], "2 cells could not run: [select] chose no value for them");
    CU_ASSERT_EQUAL(unlink(block), 0);
    CU_ASSERT_EQUAL(run_cli(path, "", out), 0);
    CHECK_MSG(out[1], "8 of 8 cells finished (3 just now");

    const char *diverge = select_experiment("seeds = 1\n");
    CU_ASSERT_EQUAL(run_cli(diverge, "--set sweep.act=relu --set select.train.lr=50,100 "
                                     "--set train.momentum=0.9999", out), 1);
    CHECK_MSG(out[1], "not run: every [select] candidate of its variant diverged");
}

/* A plot is replaced only once gnuplot has drawn it whole: a script that fails after its
 * `set output` leaves the previous plot as it was, and no temporary file behind. */
static void test_plot_written_atomically(void)
{
    const char *dir = test_tmpdir();
    char gp[512], png[512];
    snprintf(gp, sizeof gp, "%s/p.gp", dir);
    snprintf(png, sizeof png, "%s/p.png", dir);
    test_write_file(gp, "set terminal pngcairo size 200,150\nset output 'p.png'\n"
                        "plot sin(x)\n");
    CU_ASSERT_EQUAL_FATAL(cnb_gnuplot(dir, "p.gp"), 0);
    long good = file_size(png);
    CU_ASSERT(good > 0);
    test_write_file(gp, "set terminal pngcairo size 400,300\nset output 'p.png'\n"
                        "plot 'no-such-file.dat'\n");
    cnb_error_quiet(1);
    CU_ASSERT_NOT_EQUAL(cnb_gnuplot(dir, "p.gp"), 0);
    cnb_error_quiet(0);
    CU_ASSERT_EQUAL(file_size(png), good);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", dir);
    CU_ASSERT_NOT_EQUAL(system(cmd), 0); /* no p.png.tmp-PID left */
}

void suite_sweep(void)
{
    static const test_case cases[] = {
        {"grid expansion and restriction", test_grid_expansion},
        {"grid errors and profiles", test_grid_errors_and_profiles},
        {"statistics on known answers", test_statistics_known_answers},
        {"report from known cells renders", test_report_from_known_cells},
        {"report's plot labels leave out tied axes", test_report_plot_labels},
        {"sweep runs, resumes and reports", test_sweep_resume_and_report},
        {"an invalid cell is refused before any runs", test_invalid_cell_refused_up_front},
        {"bad backend, chain, data folder: exit 2, said once", test_bad_input_exits_2_once},
        {"malformed IDX files and labels: exit 2", test_malformed_data_exits_2},
        {"a crashed cell: exit 1, named in the summary", test_crashed_cell_exits_1},
        {"a diverged cell is a finished result", test_diverged_cell_is_finished},
        {"a hung cell is killed at cell_timeout: exit 1", test_hung_cell_killed},
        {"a plot is replaced only when drawn whole", test_plot_written_atomically},
        {"a results folder has one owner", test_results_folder_owner},
        {"a CIFAR-10 folder is read whole before any cell", test_cifar_checked_up_front},
        {"a cell that cannot fit in memory is refused up front", test_memory_estimate},
        {"a killed cell resumes from its checkpoint, bit for bit", test_kill_and_resume},
        {"cells run anywhere: --cell, --shard, --list-cells", test_cells_run_anywhere},
        {"[data] validation: checked, seeded, reported", test_validation_split},
        {"[data] validation of image folders and packs", test_image_validation},
        {"[select] on an image-folder experiment", test_image_select},
        {"[train] warmup: checked, swept, fingerprinted", test_warmup_settings},
        {"[select]: the rule, ties to the first listed", test_select_rule},
        {"[select]: refused at its line; its cells first", test_select_grid_and_errors},
        {"[select]: chosen on validation, resumed, run by shards", test_select_runs_and_resumes},
        {"[select]: a selection that does not finish", test_select_unfinished},
        {NULL, NULL},
    };
    test_add_suite("sweep", cases);
}
