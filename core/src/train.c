/*
 * train.c - the training loop; see train.h.
 */
#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "host.h"

static volatile sig_atomic_t stop_requested;

void cnb_train_stop(void) { stop_requested = 1; }

double cnb_schedule_lr(const cnb_train_cfg *cfg, int epoch0)
{
    switch (cfg->schedule) {
    case CNB_SCHEDULE_STEP:
        return cfg->lr * pow(cfg->gamma, epoch0 / (cfg->step_epochs > 0 ? cfg->step_epochs : 1));
    case CNB_SCHEDULE_COSINE:
        return cfg->lr * 0.5 * (1.0 + cos(M_PI * epoch0 / cfg->epochs));
    case CNB_SCHEDULE_CONSTANT:
        break;
    }
    return cfg->lr;
}

/* Samples idx[0..count) into the net's batch, through the data processing when there is
 * one; the rest padded with zeros and label -1. */
static int fill_batch(cnb_net *net, const cnb_dataset *d, const uint32_t *idx, int count,
                      const cnb_augment *aug, int train, uint64_t seed, int epoch)
{
    size_t per = cnb_shape_size(net->input);
    if (aug) {
        if (cnb_augment_batch(aug, d, idx, count, train, seed, (uint64_t)epoch, net->x) != 0)
            return cnb_error("data processing: %s", cnb_augment_error(aug));
    } else {
        for (int i = 0; i < count; i++)
            memcpy(net->x + (size_t)i * per, d->images + (size_t)idx[i] * per,
                   per * sizeof(float));
    }
    for (int i = 0; i < count; i++)
        net->labels[i] = d->labels[idx[i]];
    if (count < net->batch) {
        memset(net->x + (size_t)count * per, 0, (size_t)(net->batch - count) * per * sizeof(float));
        for (int i = count; i < net->batch; i++)
            net->labels[i] = -1;
    }
    return 0;
}

static int count_correct(const cnb_net *net, int count)
{
    const float *p = cnb_net_probs(net);
    int correct = 0;
    for (int i = 0; i < count; i++) {
        const float *row = p + (size_t)i * net->classes;
        int best = 0;
        for (int c = 1; c < net->classes; c++)
            if (row[c] > row[best])
                best = c;
        correct += best == net->labels[i];
    }
    return correct;
}

int cnb_evaluate(cnb_net *net, const cnb_dataset *d, long limit, const cnb_augment *augment,
                 double *loss, double *acc)
{
    long n = limit > 0 && limit < d->n ? limit : d->n;
    uint32_t *idx = malloc((size_t)net->batch * sizeof *idx);
    if (!idx)
        return CNB_ENOMEM;
    double loss_sum = 0.0;
    long correct = 0;
    int rc = 0;
    for (long start = 0; start < n && rc == 0; start += net->batch) {
        int count = (int)(n - start < net->batch ? n - start : net->batch);
        for (int i = 0; i < count; i++)
            idx[i] = (uint32_t)(start + i);
        float l = 0.0f;
        if ((rc = fill_batch(net, d, idx, count, augment, 0, 0, 0)) == 0)
            rc = cnb_net_forward(net, 0, &l);
        loss_sum += (double)l * count;
        correct += count_correct(net, count);
    }
    free(idx);
    *loss = loss_sum / (double)n;
    *acc = (double)correct / (double)n;
    return rc;
}

static void progress(int epoch, int epochs, long done, long total, double loss, double acc,
                     double rate)
{
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\repoch %d/%d [%.*s%*s] %3ld%%  loss %.4f  acc %.4f  %.0f img/s ", epoch,
            epochs, filled, "##############################", width - filled, "",
            100 * done / (total ? total : 1), loss, acc, rate);
    fflush(stderr);
}

int cnb_train(cnb_net *net, const cnb_dataset *train, const cnb_dataset *test,
              const cnb_train_cfg *cfg, cnb_epoch_fn on_epoch, void *user)
{
    if (train->n < net->batch)
        return cnb_error("the training set has %d images, fewer than one batch of %d", train->n,
                         net->batch);
    uint32_t *order = malloc((size_t)train->n * sizeof *order);
    if (!order)
        return CNB_ENOMEM;
    for (int i = 0; i < train->n; i++)
        order[i] = (uint32_t)i;
    struct cnb_rng shuffle;
    cnb_rng_seed(&shuffle, cfg->seed, CNB_STREAM_SHUFFLE);
    long batches = train->n / net->batch;
    int rc = 0;
    for (int epoch = 0; epoch < cfg->epochs && rc == 0; epoch++) {
        for (int i = train->n - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t j = cnb_rng_below(&shuffle, (uint32_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        if (epoch < cfg->start_epoch)
            continue; /* done before a resume: only its shuffle, for the stream's position */
        if (cfg->feed && (rc = cnb_feed_start_train(cfg->feed, order, batches, epoch)))
            break;
        cnb_epoch_stats s = {.epoch = epoch + 1, .lr = cnb_schedule_lr(cfg, epoch)};
        double t0 = cnb_now(), loss_sum = 0.0, last_draw = 0.0;
        long correct = 0, seen = 0;
        for (long b = 0; b < batches && rc == 0; b++) {
            if (stop_requested) {
                rc = CNB_EINTR;
                break;
            }
            double td = cnb_now();
            rc = cfg->feed ? cnb_feed_next(cfg->feed, net->x, net->labels, NULL)
                           : fill_batch(net, train, order + b * net->batch, net->batch,
                                        cfg->augment, 1, cfg->seed, epoch);
            s.data_seconds += cnb_now() - td;
            float loss;
            if (rc || (rc = cnb_net_forward(net, 1, &loss)) || (rc = cnb_net_backward(net)))
                break;
            if (!isfinite(loss)) {
                cnb_log(CNB_LOG_WARN, NULL, "diverged at epoch %d, batch %ld: the loss is %g; "
                        "lower the learning rate (lr = %g)", epoch + 1, b + 1, loss, s.lr);
                rc = CNB_EDIVERGED;
                break;
            }
            cnb_net_sgd(net, (float)s.lr, (float)cfg->momentum, (float)cfg->weight_decay);
            loss_sum += loss * net->batch;
            correct += count_correct(net, net->batch);
            seen += net->batch;
            double now = cnb_now();
            if (cfg->progress && (now - last_draw > 0.2 || b + 1 == batches)) {
                progress(epoch + 1, cfg->epochs, b + 1, batches, loss_sum / seen,
                         (double)correct / seen, seen / (now - t0));
                last_draw = now;
            }
        }
        if (rc)
            break;
        s.train_seconds = cnb_now() - t0;
        s.train_loss = loss_sum / seen;
        s.train_acc = (double)correct / seen;
        s.images_per_second = seen / s.train_seconds;
        double t1 = cnb_now();
        s.train_eval_loss = s.train_eval_acc = NAN;
        if (cfg->train_eval_limit > 0)
            rc = cfg->feed ? cnb_feed_evaluate(cfg->feed, net, 0, cfg->train_eval_limit,
                                               &s.train_eval_loss, &s.train_eval_acc)
                           : cnb_evaluate(net, train, cfg->train_eval_limit, cfg->augment,
                                          &s.train_eval_loss, &s.train_eval_acc);
        if (rc == 0)
            rc = cfg->feed ? cnb_feed_evaluate(cfg->feed, net, 1, 0, &s.test_loss, &s.test_acc)
                           : cnb_evaluate(net, test, 0, cfg->augment, &s.test_loss,
                                          &s.test_acc);
        s.eval_seconds = cnb_now() - t1;
        if (rc == 0 && !(isfinite(s.test_loss) && (cfg->train_eval_limit <= 0 ||
                                                   isfinite(s.train_eval_loss)))) {
            cnb_log(CNB_LOG_WARN, NULL, "diverged at epoch %d, in evaluation: the test loss is "
                    "%g (training loss %g); lower the learning rate (lr = %g)", epoch + 1,
                    s.test_loss, s.train_loss, s.lr);
            rc = CNB_EDIVERGED; /* weights that give NaN on unseen data are no result */
        }
        if (cfg->progress)
            fputc('\r', stderr), fprintf(stderr, "%*s\r", 100, "");
        if (rc == 0 && on_epoch)
            rc = on_epoch(&s, user);
    }
    free(order);
    return rc;
}
