/*
 * test_train.c - training on a real Fashion-MNIST subset: the loss falls, accuracy clears
 * chance by a wide margin, the same seed gives the same curve bit for bit, weights
 * survive a save/load round trip; the SGD update follows its formula, whether split over
 * threads or not.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "checkpoint.h"
#include "dataset.h"
#include "errors.h"
#include "log.h"
#include "net.h"
#include "testutil.h"
#include "train.h"

#define TRAIN_N 3000
#define TEST_N 1000
#define EPOCHS 3

static cnb_dataset train, test;

static int setup(void)
{
    char ti[512], tl[512], vi[512], vl[512], err[512];
    snprintf(ti, sizeof ti, "%s/train-images-idx3-ubyte.gz", test_data_dir());
    snprintf(tl, sizeof tl, "%s/train-labels-idx1-ubyte.gz", test_data_dir());
    snprintf(vi, sizeof vi, "%s/t10k-images-idx3-ubyte.gz", test_data_dir());
    snprintf(vl, sizeof vl, "%s/t10k-labels-idx1-ubyte.gz", test_data_dir());
    if (cnb_idx_load(&train, ti, tl, TRAIN_N, err, sizeof err) ||
        cnb_idx_load(&test, vi, vl, TEST_N, err, sizeof err)) {
        fprintf(stderr, "train suite: %s\n", err);
        return -1;
    }
    double mean[1], sd[1];
    cnb_dataset_channel_stats(&train, mean, sd);
    cnb_dataset_normalize(&train, mean, sd);
    cnb_dataset_normalize(&test, mean, sd);
    return 0;
}

static int teardown(void)
{
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    return 0;
}

typedef struct curve {
    cnb_epoch_stats s[8];
    int n;
} curve;

static int record(const cnb_epoch_stats *s, void *user)
{
    curve *c = user;
    if (c->n == 8)
        return cnb_error("more epochs than a test curve holds");
    c->s[c->n++] = *s;
    return 0;
}

/* Train LeNet-5 (act, pool) from `seed`; returns the first-batch loss. */
static double train_lenet(const char *act, const char *pool, uint64_t seed, curve *c,
                          cnb_net *net, cnb_conf *conf)
{
    char path[512];
    snprintf(path, sizeof path, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    cnb_vars vars = {0};
    cnb_vars_set(&vars, "act", act);
    cnb_vars_set(&vars, "pool", pool);
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(net, conf, test_registry(), path, &vars), 0);
    cnb_vars_free(&vars);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(net, seed), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(net, "naive", 1, 50), 0);
    double first;
    CU_ASSERT_EQUAL_FATAL(cnb_evaluate(net, &train, 0, NULL, &first, &(double){0}), 0);
    cnb_train_cfg cfg = {.epochs = EPOCHS, .lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4,
                         .schedule = CNB_SCHEDULE_COSINE, .seed = seed,
                         .train_eval_limit = 500};
    memset(c, 0, sizeof *c);
    CU_ASSERT_EQUAL_FATAL(cnb_train(net, &train, &test, &cfg, record, c), 0);
    CU_ASSERT_EQUAL(c->n, EPOCHS);
    return first;
}

static void test_loss_falls_accuracy_clears_chance(void)
{
    cnb_net net;
    cnb_conf conf;
    curve c;
    double first = train_lenet("relu", "max", 1, &c, &net, &conf);
    const cnb_epoch_stats *last = &c.s[EPOCHS - 1];
    fprintf(stderr, "\n  loss %.3f -> %.3f, test accuracy %.3f ", first, last->train_loss,
            last->test_acc);
    CU_ASSERT(first > 2.0);                       /* about ln 10 at the start */
    CU_ASSERT(last->train_loss < 0.5 * first);
    CU_ASSERT(c.s[EPOCHS - 1].train_loss < c.s[0].train_loss);
    CU_ASSERT(last->test_acc > 0.65);             /* chance is 0.10 */
    CU_ASSERT(isfinite(last->train_eval_acc) && last->train_eval_acc > 0.65);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

static void test_same_seed_same_curve(void)
{
    cnb_net n1, n2, n3;
    cnb_conf c1, c2, c3;
    curve a, b, d;
    train_lenet("sigmoid", "avg", 5, &a, &n1, &c1);
    train_lenet("sigmoid", "avg", 5, &b, &n2, &c2);
    train_lenet("sigmoid", "avg", 6, &d, &n3, &c3);
    for (int e = 0; e < EPOCHS; e++) {
        CU_ASSERT(a.s[e].train_loss == b.s[e].train_loss);
        CU_ASSERT(a.s[e].test_loss == b.s[e].test_loss);
        CU_ASSERT(a.s[e].test_acc == b.s[e].test_acc);
    }
    CU_ASSERT(a.s[EPOCHS - 1].test_loss != d.s[EPOCHS - 1].test_loss);
    cnb_net_free(&n1), cnb_net_free(&n2), cnb_net_free(&n3);
    cnb_conf_free(&c1), cnb_conf_free(&c2), cnb_conf_free(&c3);
}

static void test_weights_round_trip(void)
{
    cnb_net net, fresh_net;
    cnb_conf conf, fresh_conf;
    curve c;
    train_lenet("relu", "max", 2, &c, &net, &conf);
    char path[512];
    snprintf(path, sizeof path, "%s/w.cnbw", test_tmpdir());
    CU_ASSERT_EQUAL_FATAL(cnb_net_save_weights(&net, path), 0);
    double loss_a, acc_a, loss_b, acc_b;
    CU_ASSERT_EQUAL(cnb_evaluate(&net, &test, 0, NULL, &loss_a, &acc_a), 0);

    char model[512];
    snprintf(model, sizeof model, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    cnb_vars vars = {0};
    cnb_vars_set(&vars, "act", "relu");
    cnb_vars_set(&vars, "pool", "max");
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&fresh_net, &fresh_conf, test_registry(), model, &vars), 0);
    cnb_vars_free(&vars);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&fresh_net, 99), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&fresh_net, "naive", 1, 50), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_load_weights(&fresh_net, path), 0);
    CU_ASSERT_EQUAL(cnb_evaluate(&fresh_net, &test, 0, NULL, &loss_b, &acc_b), 0);
    CU_ASSERT(loss_a == loss_b && acc_a == acc_b);

    /* a damaged file is refused, naming it */
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    cnb_error_quiet(1);
    CU_ASSERT(cnb_net_load_weights(&fresh_net, path) != 0);
    cnb_error_quiet(0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "checksum"));
    cnb_net_free(&net), cnb_net_free(&fresh_net);
    cnb_conf_free(&conf), cnb_conf_free(&fresh_conf);
}

/* Weights whose evaluation gives NaN are no result, even when the training loss stayed
 * finite: a test image with a NaN pixel makes the test loss NaN, and the run stops as
 * diverged in evaluation after that epoch. */
static void test_nan_in_evaluation_diverges(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    cnb_net net;
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&net, &conf, test_registry(), path, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "naive", 1, 50), 0);
    float keep = test.images[5];
    test.images[5] = NAN;
    cnb_train_cfg cfg = {.epochs = 2, .lr = 0.05, .seed = 1};
    curve c = {.n = 0};
    cnb_log_set_level(CNB_LOG_ERROR); /* the warning is expected */
    int rc = cnb_train(&net, &train, &test, &cfg, record, &c);
    cnb_log_set_level(CNB_LOG_INFO);
    test.images[5] = keep;
    CU_ASSERT_EQUAL(rc, CNB_EDIVERGED);
    CU_ASSERT_EQUAL(c.n, 0); /* the epoch is not reported as a result */
    CHECK_MSG(cnb_last_warning(), "diverged at epoch 1, in evaluation");
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

/* The warm-up's rate, written out: the schedule's rate for epoch e times min(1, (g + 1) /
 * W) at the run's step g. */
static double warmed(double lr, double schedule, long g, long w)
{
    return lr * schedule * ((double)(g + 1) / (double)w < 1.0 ? (double)(g + 1) / (double)w
                                                              : 1.0);
}

static void test_warmup_formula(void)
{
    cnb_train_cfg cfg = {.epochs = 4, .lr = 0.1, .schedule = CNB_SCHEDULE_COSINE,
                         .warmup_steps = 5};
    for (long g = 0; g < 12; g++) { /* 3 steps an epoch: the ramp ends in epoch 2 */
        int e = (int)(g / 3);
        double cosine = 0.5 * (1.0 + cos(M_PI * e / 4.0));
        CU_ASSERT_DOUBLE_EQUAL(cnb_step_lr(&cfg, e, g % 3, 3), warmed(0.1, cosine, g, 5), 1e-15);
    }
    CU_ASSERT_DOUBLE_EQUAL(cnb_step_lr(&cfg, 0, 0, 3), 0.1 / 5, 1e-15); /* the first: lr / W */
    cfg.warmup_steps = 0, cfg.warmup_epochs = 2; /* in epochs: W = 2 x 3 steps */
    CU_ASSERT_DOUBLE_EQUAL(cnb_step_lr(&cfg, 1, 1, 3), 0.1 * 0.5 * (1.0 + cos(M_PI / 4.0)) * 5.0
                                                       / 6.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(cnb_step_lr(&cfg, 2, 0, 3), 0.1 * 0.5, 1e-15); /* cos(pi/2) */
    cfg.warmup_epochs = 0; /* none: the schedule alone */
    CU_ASSERT_DOUBLE_EQUAL(cnb_step_lr(&cfg, 0, 0, 3), 0.1, 1e-15);
}

/* The trainer takes, step after step, the rates of the formula, across epochs and with the
 * step schedule's drops, in steps or in epochs; an epoch's lr is its last step's. */
/* LeNet-5 (ReLU, max pooling) from `seed`, bound on naive at `batch`. */
static void bind_lenet(cnb_net *net, cnb_conf *conf, uint64_t seed, int batch)
{
    CU_ASSERT_EQUAL_FATAL(test_model_load(net, conf, test_registry(), "lenet5.ini", "relu",
                                          "max"), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(net, seed), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(net, "naive", 1, batch), 0);
}

static void test_warmup_rates_per_step(void)
{
    enum { EP = 3, N = 300, BATCH = 50, STEPS = N / BATCH };
    cnb_dataset part = train;
    part.n = N;
    for (int form = 0; form < 2; form++) {
        cnb_net net;
        cnb_conf conf;
        bind_lenet(&net, &conf, 1, BATCH);
        double trace[EP * STEPS];
        for (int i = 0; i < EP * STEPS; i++)
            trace[i] = -1.0;
        cnb_train_cfg cfg = {.epochs = EP, .lr = 0.04, .momentum = 0.9,
                             .schedule = CNB_SCHEDULE_STEP, .step_epochs = 1, .gamma = 0.5,
                             .seed = 3, .lr_trace = trace};
        long w = form ? 2 * STEPS : 8; /* 2 epochs, or 8 steps: into epoch 2 either way */
        if (form)
            cfg.warmup_epochs = 2;
        else
            cfg.warmup_steps = 8;
        curve c = {.n = 0};
        CU_ASSERT_EQUAL_FATAL(cnb_train(&net, &part, &test, &cfg, record, &c), 0);
        for (long g = 0; g < EP * STEPS; g++) {
            double want = warmed(0.04, pow(0.5, (double)(g / STEPS)), g, w);
            if (fabs(trace[g] - want) > 1e-15)
                fprintf(stderr, "\n  step %ld: rate %.17g, expected %.17g", g, trace[g], want);
            CU_ASSERT_DOUBLE_EQUAL(trace[g], want, 1e-15);
        }
        for (int e = 0; e < EP; e++)
            CU_ASSERT_DOUBLE_EQUAL(c.s[e].lr, trace[(e + 1) * STEPS - 1], 0.0);
        cnb_net_free(&net);
        cnb_conf_free(&conf);
    }
}

/* test_every = 3 over 6 epochs: the test split is evaluated after epochs 1, 3 and 6 (the
 * first, every third, the last), and with a validation split also after any epoch whose
 * validation accuracy is the best so far, so the epoch validation chooses has its test
 * result; those results equal a run that tests every epoch, bit for bit (evaluating changes
 * nothing), and the other epochs have none. */
static void test_test_every(void)
{
    enum { EP = 6, N = 600, BATCH = 50 };
    cnb_dataset part = train, val = train;
    part.n = N;
    val.n = 300, val.images += (size_t)N * 28 * 28, val.labels += N;
    for (int with_val = 0; with_val < 2; with_val++) {
        curve all = {.n = 0}, some = {.n = 0};
        for (int every = 1; every <= 3; every += 2) {
            cnb_net net;
            cnb_conf conf;
            bind_lenet(&net, &conf, 2, BATCH);
            cnb_train_cfg cfg = {.epochs = EP, .lr = 0.2, .momentum = 0.9, .seed = 2,
                                 .schedule = CNB_SCHEDULE_CONSTANT, .test_every = every,
                                 .validation = with_val ? &val : NULL};
            curve *c = every == 1 ? &all : &some;
            CU_ASSERT_EQUAL_FATAL(cnb_train(&net, &part, &test, &cfg, record, c), 0);
            CU_ASSERT_EQUAL(c->n, EP);
            cnb_net_free(&net);
            cnb_conf_free(&conf);
        }
        double best = 0.0;
        int skipped = 0;
        for (int e = 0; e < EP; e++) {
            int new_best = with_val && some.s[e].val_acc > best;
            best = new_best ? some.s[e].val_acc : best;
            int due = e == 0 || e == EP - 1 || (e + 1) % 3 == 0 || new_best;
            CU_ASSERT(all.s[e].train_loss == some.s[e].train_loss);
            CU_ASSERT(isnan(some.s[e].test_acc) == !due && isnan(some.s[e].test_loss) == !due);
            if (due)
                CU_ASSERT(some.s[e].test_acc == all.s[e].test_acc &&
                          some.s[e].test_loss == all.s[e].test_loss);
            skipped += !due;
        }
        CU_ASSERT(with_val || skipped == 3); /* epochs 2, 4 and 5 */
    }
}

/* A checkpoint of another version (its records laid out otherwise) is refused, naming both
 * versions, and the cell starts afresh; one of this version resumes. */
static void test_checkpoint_version(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/c.cnbk", test_tmpdir());
    cnb_net net;
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(), "lenet5.ini", NULL,
                                          NULL), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "naive", 1, 10), 0);
    cnb_epoch_stats h[2] = {{.epoch = 1}, {.epoch = 2}};
    CU_ASSERT_EQUAL_FATAL(cnb_checkpoint_save(path, &net, "0123456789abcdef", 2, h, sizeof h), 0);
    int epoch;
    void *got;
    size_t bytes;
    CU_ASSERT_EQUAL(cnb_checkpoint_load(path, &net, "0123456789abcdef", &epoch, &got, &bytes), 0);
    CU_ASSERT_EQUAL(epoch, 2);
    CU_ASSERT_EQUAL(bytes, sizeof h);
    free(got);
    /* the same file as an older cnnbench wrote it: version 3, its checksum made good */
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    unsigned char *buf = malloc((size_t)len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    rewind(f);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[4] = 3, buf[5] = buf[6] = buf[7] = 0; /* after "CNBK", little-endian */
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4));
    memcpy(buf + len - 4, &crc, 4);
    rewind(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    free(buf);
    cnb_log_set_level(CNB_LOG_ERROR); /* the warning is expected */
    CU_ASSERT_EQUAL(cnb_checkpoint_load(path, &net, "0123456789abcdef", &epoch, &got, &bytes), 0);
    cnb_log_set_level(CNB_LOG_INFO);
    CU_ASSERT_EQUAL(epoch, 0);
    CU_ASSERT_PTR_NULL(got);
    CHECK_MSG(cnb_last_warning(), "a checkpoint of version 3, written by an older cnnbench "
              "(this one reads version 4); not resumed from it: the cell starts afresh");
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

/* cnb_sgd_update on a tensor long enough to be split (and not a multiple of the 16-float
 * part bounds) and on a bias after it, as one update: every element as the formula gives
 * it in float, one operation at a time, on the caller alone and on a team of 3 threads
 * (the same team for both updates, with weight decay and without). */
static void test_sgd_update(void)
{
    const size_t big = CNB_SGD_SPLIT + 37, n = big + 1000;
    const float lr = 0.01f, momentum = 0.9f;
    float *w[2], *v[2], *g = malloc(sizeof(float) * n), *w0 = malloc(sizeof(float) * n);
    float *v0 = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g && w0 && v0);
    uint32_t x = 12345;
    for (size_t k = 0; k < n; k++) { /* uniform in [-1, 1) from an LCG */
        x = x * 1664525u + 1013904223u, w0[k] = (float)(x >> 8) / (1 << 23) - 1.0f;
        x = x * 1664525u + 1013904223u, v0[k] = (float)(x >> 8) / (1 << 23) - 1.0f;
        x = x * 1664525u + 1013904223u, g[k] = (float)(x >> 8) / (1 << 23) - 1.0f;
    }
    cnb_sgd_team *team = cnb_sgd_team_start(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(team);
    for (int wd_on = 0; wd_on < 2; wd_on++) {
        const float wd = wd_on ? 5e-4f : 0.0f;
        for (int t = 0; t < 2; t++) {
            w[t] = malloc(sizeof(float) * n), v[t] = malloc(sizeof(float) * n);
            CU_ASSERT_PTR_NOT_NULL_FATAL(w[t] && v[t]);
            memcpy(w[t], w0, sizeof(float) * n);
            memcpy(v[t], v0, sizeof(float) * n);
            const cnb_sgd_tensor ts[2] = {{w[t], v[t], g, big, wd},
                                          {w[t] + big, v[t] + big, g + big, n - big, 0.0f}};
            cnb_sgd_update(t ? team : NULL, ts, 2, lr, momentum);
        }
        size_t bad = 0;
        for (size_t k = 0; k < n; k++) {
            float mv = momentum * v0[k], dw = (k < big ? wd : 0.0f) * w0[k];
            float vk = mv + g[k];
            vk = vk + dw;
            float step = lr * vk;
            float wk = w0[k] - step;
            for (int t = 0; t < 2; t++)
                if (memcmp(&v[t][k], &vk, sizeof vk) || memcmp(&w[t][k], &wk, sizeof wk)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  sgd (wd %g, %d thread(s)) [%zu]: w %.9g v %.9g, "
                                "expected %.9g %.9g\n", (double)wd, t ? 3 : 1, k,
                                (double)w[t][k], (double)v[t][k], (double)wk, (double)vk);
                }
        }
        CU_ASSERT_EQUAL(bad, 0);
        for (int t = 0; t < 2; t++)
            free(w[t]), free(v[t]);
    }
    cnb_sgd_team_stop(team);
    free(g), free(w0), free(v0);
}

/* cnb_net_sgd on a net with a layer of CNB_SGD_SPLIT weights or more: at 3 threads its
 * first update starts the net's helpers and every update after uses them, and two steps
 * give the same bits as at 1 thread, which starts none. */
static void test_net_sgd_team(void)
{
    static const char model[] = "[net]\nchannels = 1\nheight = 32\nwidth = 32\nclasses = 10\n"
                                "[flatten]\ntype = flatten\n[fc1]\ntype = fc\noutputs = 1025\n"
                                "[fc2]\ntype = fc\noutputs = 10\n[prob]\ntype = softmax\n";
    cnb_conf conf[2];
    cnb_net net[2];
    for (int i = 0; i < 2; i++) {
        memset(&net[i], 0, sizeof net[i]);
        CU_ASSERT_EQUAL_FATAL(cnb_conf_load_string(&conf[i], "big.ini", model), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_build(&net[i], test_registry(), &conf[i]), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net[i], 7), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net[i], "naive", i ? 3 : 1, 2), 0);
        CU_ASSERT_FATAL(net[i].layers[1].layer->params[0].count >= CNB_SGD_SPLIT);
    }
    for (int step = 0; step < 2; step++)
        for (int i = 0; i < 2; i++) {
            for (size_t k = 0; k < net[i].grad_floats; k++) /* a gradient of each step */
                net[i].grad[k] = (float)((k * 7919 + (size_t)step * 104729) % 2001) / 1000 - 1;
            cnb_net_sgd(&net[i], 0.01f, 0.9f, 5e-4f);
            CU_ASSERT((net[i].sgd != NULL) == i);
        }
    size_t bad = 0;
    for (int l = 0; l < net[0].n; l++)
        for (int p = 0; p < net[0].layers[l].layer->n_params; p++) {
            const size_t n = net[0].layers[l].layer->params[p].count * sizeof(float);
            bad += memcmp(net[0].layers[l].w[p], net[1].layers[l].w[p], n) != 0;
            bad += memcmp(net[0].layers[l].vel[p], net[1].layers[l].vel[p], n) != 0;
        }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < 2; i++)
        cnb_net_free(&net[i]), cnb_conf_free(&conf[i]);
}

void suite_train(void)
{
    static const test_case cases[] = {
        {"loss falls, accuracy clears chance", test_loss_falls_accuracy_clears_chance},
        {"same seed, same curve", test_same_seed_same_curve},
        {"weights save and load", test_weights_round_trip},
        {"NaN in evaluation is divergence", test_nan_in_evaluation_diverges},
        {"a checkpoint of another version is refused", test_checkpoint_version},
        {"warm-up: the formula", test_warmup_formula},
        {"warm-up: the rate of every step the trainer takes", test_warmup_rates_per_step},
        {"test_every: which epochs are tested, and that they equal testing all", test_test_every},
        {"SGD update: the formula, split over threads or not", test_sgd_update},
        {"SGD update: a net's helpers, started once, the same bits", test_net_sgd_team},
        {NULL, NULL},
    };
    test_add_suite_fixture("train", setup, teardown, cases);
}
