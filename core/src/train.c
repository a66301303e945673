/*
 * train.c - the training loop, on one rank or data-parallel over several; see train.h.
 */
#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "clock.h"
#include "dist.h"
#include "errors.h"
#include "feed.h"
#include "log.h"

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

double cnb_step_lr(const cnb_train_cfg *cfg, int epoch0, long step, long batches)
{
    long warmup = cfg->warmup_steps ? cfg->warmup_steps : cfg->warmup_epochs * batches;
    double ramp = (double)(epoch0 * batches + step + 1) / (double)warmup;
    return cnb_schedule_lr(cfg, epoch0) * (warmup > 0 && ramp < 1.0 ? ramp : 1.0);
}

int cnb_best_epoch(const double *val_acc, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(val_acc[i]) && (best < 0 || val_acc[i] > val_acc[best]))
            best = i;
    return best;
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

/* Loss sum and correct count over samples [begin, end), evaluation mode. */
static int evaluate_range(cnb_net *net, const cnb_dataset *d, long begin, long end,
                          const cnb_augment *augment, double *sums)
{
    uint32_t *idx = malloc((size_t)net->batch * sizeof *idx);
    if (!idx)
        return CNB_ENOMEM;
    double loss_sum = 0.0;
    long correct = 0;
    int rc = 0;
    for (long start = begin; start < end && rc == 0; start += net->batch) {
        int count = (int)(end - start < net->batch ? end - start : net->batch);
        for (int i = 0; i < count; i++)
            idx[i] = (uint32_t)(start + i);
        float l = 0.0f;
        if ((rc = fill_batch(net, d, idx, count, augment, 0, 0, 0)) == 0)
            rc = cnb_net_forward(net, 0, &l);
        loss_sum += (double)l * count;
        correct += count_correct(net, count);
    }
    free(idx);
    sums[0] = loss_sum, sums[1] = (double)correct;
    return rc;
}

int cnb_evaluate(cnb_net *net, const cnb_dataset *d, long limit, const cnb_augment *augment,
                 double *loss, double *acc)
{
    long n = limit > 0 && limit < d->n ? limit : d->n;
    double sums[2];
    int rc = evaluate_range(net, d, 0, n, augment, sums);
    *loss = sums[0] / (double)n;
    *acc = sums[1] / (double)n;
    return rc;
}

/* The same split over the ranks (each a contiguous share of the samples) and summed. */
static int evaluate_shared(cnb_net *net, const cnb_dataset *d, long limit,
                           const cnb_augment *augment, double *loss, double *acc)
{
    int rank = cnb_dist_rank(), size = cnb_dist_size();
    if (size == 1)
        return cnb_evaluate(net, d, limit, augment, loss, acc);
    long n = limit > 0 && limit < d->n ? limit : d->n;
    double sums[2];
    int rc = evaluate_range(net, d, n * rank / size, n * (rank + 1) / size, augment, sums);
    if (rc == 0)
        rc = cnb_dist_sum(sums, 2);
    *loss = sums[0] / (double)n;
    *acc = sums[1] / (double)n;
    return rc;
}

int cnb_train_slice(int batch, int rank, int size, int *start)
{
    int base = batch / size, extra = batch % size;
    *start = rank * base + (rank < extra ? rank : extra);
    return base + (rank < extra);
}

/* ---- data-parallel steps ------------------------------------------------------------ */

/* Gradients are summed in buckets of at most CNB_BUCKET_MB megabytes (default 1 MiB),
 * each started as soon as the backward pass has completed every layer it holds, from the
 * last layer down: fc8's sums travel while fc7, fc6 and the convolutions compute. The
 * default is what Open MPI 4.1's shared memory moves fastest here: 250 MB of AlexNet
 * gradients summed by 2 ranks in 0.11-0.24 s as 238 MPI_Iallreduce of 1 MiB, against
 * 0.6-1.5 s as one message, 0.8 s as 2 MiB pieces and 1.3-2.1 s as 4 MiB ones. Over a
 * network every message also pays the latency 2(N-1) times: there, larger buckets
 * (CNB_BUCKET_MB=25, about PyTorch DDP's default) pay less (docs/scaling.md). */
#define BUCKET_MB_DEFAULT 1.0

typedef struct bucket {
    int low;            /* its lowest layer with parameters: started after its backward */
    size_t begin, end;  /* its floats in net->grad                                     */
} bucket;

/* One rank's part of a data-parallel run. */
struct cnb_dp {
    cnb_net *net;
    int rank, size, global, start, local;
    float share;            /* local / global: this rank's weight in the batch mean   */
    uint64_t *draws;        /* per layer: random draws per sample, training forward  */
    struct cnb_rng *before; /* per layer: its stream before this step's forward      */
    bucket *buckets;
    int n_buckets, next;
    double step[3];         /* loss sum, correct count, stop flag: summed every step */
    double comm;            /* seconds in MPI calls this epoch                       */
    double data;            /* seconds making this rank's slices this epoch          */
    int stop;               /* a rank was asked to stop: every rank stops together  */
};
typedef cnb_dp dp;

void cnb_dp_free(cnb_dp *p)
{
    if (p)
        free(p->draws), free(p->before), free(p->buckets), free(p);
}

/* Contiguous pieces of net->grad of at most `max` floats, from the top down; each is
 * started after the backward of the lowest layer it reaches into. */
static int plan_buckets(dp *p, size_t max)
{
    cnb_net *net = p->net;
    size_t top = 0;
    int open = 0, cap = 0;
    for (int i = net->n - 1; i >= 0; i--) {
        const cnb_net_layer *L = &net->layers[i];
        if (L->grad_end == L->grad_begin)
            continue;
        if (!open)
            top = L->grad_end, open = 1;
        int lowest = 1; /* no layer with parameters below it */
        for (int k = i - 1; k >= 0 && lowest; k--)
            lowest = net->layers[k].grad_end == net->layers[k].grad_begin;
        while (top - L->grad_begin >= max || (lowest && top > L->grad_begin)) {
            size_t begin = top - L->grad_begin >= max ? top - max : L->grad_begin;
            if (p->n_buckets == cap) {
                cap = cap ? 2 * cap : 64;
                bucket *grown = realloc(p->buckets, (size_t)cap * sizeof *grown);
                if (!grown)
                    return CNB_ENOMEM;
                p->buckets = grown;
            }
            p->buckets[p->n_buckets++] = (bucket){i, begin, top};
            top = begin;
        }
        open = top > L->grad_begin; /* a rest to go with the layers below */
    }
    if (p->n_buckets + 1 > CNB_DIST_MAX_PENDING) /* and the step's own sum */
        return cnb_error("%d gradient buckets: more than the %d sums that may be pending; "
                         "raise CNB_BUCKET_MB", p->n_buckets, CNB_DIST_MAX_PENDING - 1);
    return 0;
}

/* Each layer's random draws per sample in a training forward: one forward of the (still
 * empty) batch, every stream put back after it. A layer whose draws are not a whole
 * number per sample, or that leaves a Box-Muller spare behind, cannot be split over ranks
 * so that each sample gets its own numbers: refused. */
static int count_draws(dp *p)
{
    cnb_net *net = p->net;
    for (int i = 0; i < net->n; i++)
        p->before[i] = net->layers[i].ctx.rng;
    float loss;
    int rc = cnb_net_forward(net, 1, &loss);
    for (int i = 0; i < net->n && rc == 0; i++) {
        cnb_net_layer *L = &net->layers[i];
        uint64_t d = cnb_rng_distance(&p->before[i], &L->ctx.rng);
        if (d % (uint64_t)net->batch != 0 || L->ctx.rng.has_spare)
            rc = cnb_error("[%s] (layer plugin '%s') drew %llu random numbers for a batch of "
                           "%d: data-parallel training needs the same whole number for every "
                           "sample; run it on one rank (without mpirun)", L->name,
                           L->desc->hdr.name, (unsigned long long)d, net->batch);
        p->draws[i] = d / (uint64_t)net->batch;
        L->ctx.rng = p->before[i];
    }
    return rc;
}

int cnb_dp_create(cnb_dp **out, cnb_net *net, int global_batch)
{
    dp *p = *out = calloc(1, sizeof *p);
    if (!p)
        return CNB_ENOMEM;
    p->net = net;
    p->rank = cnb_dist_rank(), p->size = cnb_dist_size();
    p->global = global_batch;
    p->local = cnb_train_slice(p->global, p->rank, p->size, &p->start);
    p->share = (float)p->local / (float)p->global;
    if (p->local < 1 || net->batch != p->local)
        return cnb_error("rank %d of %d: a global batch of %d gives this rank %d samples, "
                         "but its network is bound for %d; raise the batch to at least the "
                         "ranks", p->rank, p->size, p->global, p->local, net->batch);
    p->draws = calloc((size_t)net->n, sizeof *p->draws);
    p->before = calloc((size_t)net->n, sizeof *p->before);
    if (!p->draws || !p->before)
        return CNB_ENOMEM;
    double mb = BUCKET_MB_DEFAULT;
    const char *env = getenv("CNB_BUCKET_MB");
    if (env && *env) {
        char *end;
        mb = strtod(env, &end);
        if (*end || !(mb >= 0.0625 && mb <= 2048))
            return cnb_error("CNB_BUCKET_MB=%s: expected megabytes from 0.0625 to 2048 (the "
                             "size of each gradient sum; default %g)", env, BUCKET_MB_DEFAULT);
    }
    int rc = plan_buckets(p, (size_t)(mb * 1048576.0 / sizeof(float)));
    return rc ? rc : count_draws(p);
}

/* After layer i's backward: start every bucket whose lowest layer it is, weighted by this
 * rank's share of the batch; otherwise let the pending sums move. */
static int after_layer(void *user, int i)
{
    dp *p = user;
    double t0 = cnb_now();
    int rc = 0;
    int started = 0;
    while (rc == 0 && p->next < p->n_buckets && p->buckets[p->next].low == i) {
        const bucket *b = &p->buckets[p->next++];
        float *g = p->net->grad;
        if (p->share != 1.0f)
            for (size_t k = b->begin; k < b->end; k++)
                g[k] *= p->share;
        rc = cnb_dist_start_sum(g + b->begin, b->end - b->begin);
        started = 1;
    }
    if (!started)
        cnb_dist_progress();
    p->comm += cnb_now() - t0;
    return rc;
}

int cnb_dp_step(cnb_dp *p, float lr, float momentum, float weight_decay, double *loss_sum,
                double *correct)
{
    cnb_net *net = p->net;
    int rc = 0;
    for (int i = 0; i < net->n; i++) { /* skip the draws of the samples before the slice */
        cnb_rng_advance(&net->layers[i].ctx.rng, p->draws[i] * (uint64_t)p->start);
        p->before[i] = net->layers[i].ctx.rng;
    }
    float loss = 0.0f;
    if (rc == 0)
        rc = cnb_net_forward(net, 1, &loss);
    for (int i = 0; i < net->n && rc == 0; i++) {
        cnb_net_layer *L = &net->layers[i];
        uint64_t d = cnb_rng_distance(&p->before[i], &L->ctx.rng);
        if (d != p->draws[i] * (uint64_t)p->local)
            rc = cnb_error("[%s] drew %llu random numbers for %d samples, %llu in the first "
                           "step: data-parallel training needs the same number every step",
                           L->name, (unsigned long long)d, p->local,
                           (unsigned long long)(p->draws[i] * (uint64_t)p->local));
        cnb_rng_advance(&L->ctx.rng, p->draws[i] * (uint64_t)(p->global - p->start - p->local));
    }
    if (rc)
        return rc;
    double t0 = cnb_now();
    p->step[0] = (double)loss * p->local;
    p->step[1] = count_correct(net, p->local);
    p->step[2] = stop_requested != 0;
    p->next = 0;
    rc = cnb_dist_start_sum_d(p->step, 3);
    p->comm += cnb_now() - t0;
    if (rc == 0)
        rc = cnb_net_backward_each(net, after_layer, p);
    t0 = cnb_now();
    if (rc == 0)
        rc = cnb_dist_wait();
    p->comm += cnb_now() - t0;
    if (rc)
        return rc;
    p->stop = p->step[2] > 0;
    *loss_sum = p->step[0];
    *correct = p->step[1];
    if (isfinite(p->step[0]))
        cnb_net_sgd(net, lr, momentum, weight_decay);
    return 0;
}

int cnb_dp_sum_all(cnb_dp *p)
{
    float *g = p->net->grad;
    int rc = 0;
    for (int k = 0; k < p->n_buckets && rc == 0; k++) {
        const bucket *b = &p->buckets[k];
        if (p->share != 1.0f)
            for (size_t i = b->begin; i < b->end; i++)
                g[i] *= p->share;
        rc = cnb_dist_start_sum(g + b->begin, b->end - b->begin);
    }
    return rc ? rc : cnb_dist_wait();
}

double cnb_dp_comm_seconds(cnb_dp *p)
{
    double t = p->comm;
    p->comm = 0.0;
    return t;
}

size_t cnb_dp_bytes(const cnb_dp *p) { return p->net->grad_floats * sizeof(float); }
int cnb_dp_buckets(const cnb_dp *p) { return p->n_buckets; }

/* Every rank holds the same weights after the same updates; a difference means the sums
 * disagreed (a library's reduction that is not the same on every rank) and the run is no
 * longer one model. Compared by CRC-32 of the weights once per epoch. */
static int dp_check_weights(const dp *p)
{
    const cnb_net *net = p->net;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].layer->n_params; k++) {
            const float *w = net->layers[i].w[k];
            size_t bytes = net->layers[i].layer->params[k].count * sizeof(float);
            for (size_t at = 0; at < bytes; at += 1u << 30) /* uInt lengths */
                crc = crc32(crc, (const Bytef *)w + at,
                            (uInt)(bytes - at < (1u << 30) ? bytes - at : 1u << 30));
        }
    double mine = (double)crc, first = mine, differ;
    int rc = cnb_dist_bcast(&first, 1);
    differ = first != mine;
    if (rc == 0)
        rc = cnb_dist_sum(&differ, 1);
    if (rc == 0 && differ > 0)
        rc = cnb_error("after an epoch the weights of %g rank%s differ from rank 0's: the "
                       "gradient sums were not the same on every rank", differ,
                       differ == 1 ? "" : "s");
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

/* What every step of a training run needs. */
typedef struct train_run {
    cnb_net *net;
    const cnb_dataset *train, *test;
    const cnb_train_cfg *cfg;
    dp *dpp; /* data-parallel over the ranks, or NULL: one rank */
    uint32_t *order; /* this epoch's order of the training images */
    int global;      /* images per step over all ranks */
    long batches;    /* steps per epoch */
    double val_best; /* the best validation accuracy so far (0: none) */
} train_run;

/* The running sums of one epoch's training steps. */
typedef struct epoch_tally {
    double t0, loss_sum, last_draw;
    long correct, seen;
} epoch_tally;

/* Adds one step to the tally and redraws the progress bar at most five times a second. */
static void tally_step(const train_run *r, epoch_tally *t, int epoch, long b, double loss_sum,
                       long correct, long seen)
{
    t->loss_sum += loss_sum;
    t->correct += correct;
    t->seen += seen;
    double now = cnb_now();
    if (r->cfg->progress && (now - t->last_draw > 0.2 || b + 1 == r->batches)) {
        progress(epoch + 1, r->cfg->epochs, b + 1, r->batches, t->loss_sum / t->seen,
                 (double)t->correct / t->seen, t->seen / (now - t->t0));
        t->last_draw = now;
    }
}

/* One data-parallel step: this rank's share of batch b, gradients summed over the ranks. */
static int dp_batch(const train_run *r, epoch_tally *t, int epoch, long b, double lr)
{
    dp *dpp = r->dpp;
    double td = cnb_now(), step_loss, step_correct;
    int rc = fill_batch(r->net, r->train, r->order + b * r->global + dpp->start, dpp->local,
                        r->cfg->augment, 1, r->cfg->seed, epoch);
    dpp->data += cnb_now() - td;
    if (rc == 0)
        rc = cnb_dp_step(dpp, (float)lr, (float)r->cfg->momentum,
                         (float)r->cfg->weight_decay, &step_loss, &step_correct);
    if (rc)
        return rc;
    if (!isfinite(step_loss)) {
        cnb_log(CNB_LOG_WARN, NULL, "diverged at epoch %d, batch %ld: the loss is "
                "%g; lower the learning rate (lr = %g)", epoch + 1, b + 1,
                step_loss / r->global, lr);
        return CNB_EDIVERGED;
    }
    tally_step(r, t, epoch, b, step_loss, (long)step_correct, r->global);
    return 0;
}

/* One step on this rank alone: batch b forward, backward and SGD. */
static int one_batch(const train_run *r, epoch_tally *t, int epoch, long b, cnb_epoch_stats *s)
{
    cnb_net *net = r->net;
    double td = cnb_now();
    int rc = r->cfg->feed ? cnb_feed_next(r->cfg->feed, net->x, net->labels, NULL)
                          : fill_batch(net, r->train, r->order + b * net->batch, net->batch,
                                       r->cfg->augment, 1, r->cfg->seed, epoch);
    s->data_seconds += cnb_now() - td;
    float loss;
    if (rc || (rc = cnb_net_forward(net, 1, &loss)) || (rc = cnb_net_backward(net)))
        return rc;
    if (!isfinite(loss)) {
        cnb_log(CNB_LOG_WARN, NULL, "diverged at epoch %d, batch %ld: the loss is %g; "
                "lower the learning rate (lr = %g)", epoch + 1, b + 1, loss, s->lr);
        return CNB_EDIVERGED;
    }
    cnb_net_sgd(net, (float)s->lr, (float)r->cfg->momentum, (float)r->cfg->weight_decay);
    tally_step(r, t, epoch, b, loss * net->batch, count_correct(net, net->batch), net->batch);
    return 0;
}

/* Trains one epoch over r->order and fills the training half of s. */
static int train_epoch(const train_run *r, int epoch, cnb_epoch_stats *s)
{
    epoch_tally t = {.t0 = cnb_now()};
    if (r->dpp)
        r->dpp->comm = r->dpp->data = 0.0;
    for (long b = 0; b < r->batches; b++) {
        if (r->dpp ? r->dpp->stop : stop_requested)
            return CNB_EINTR;
        s->lr = cnb_step_lr(r->cfg, epoch, b, r->batches);
        if (r->cfg->lr_trace)
            r->cfg->lr_trace[epoch * r->batches + b] = s->lr;
        int rc = r->dpp ? dp_batch(r, &t, epoch, b, s->lr) : one_batch(r, &t, epoch, b, s);
        if (rc)
            return rc;
    }
    s->train_seconds = cnb_now() - t.t0;
    s->train_loss = t.loss_sum / t.seen;
    s->train_acc = (double)t.correct / t.seen;
    s->images_per_second = t.seen / s->train_seconds;
    s->allreduce_seconds = r->dpp ? r->dpp->comm : 0.0;
    s->data_seconds += r->dpp ? r->dpp->data : 0.0;
    s->compute_seconds = s->train_seconds - s->data_seconds - s->allreduce_seconds;
    return 0;
}

/* Is the test split evaluated after `epoch` (0-based), whose validation accuracy is
 * val_acc (cnb_train_cfg.test_every)? */
static int test_due(train_run *r, int epoch, double val_acc)
{
    const cnb_train_cfg *cfg = r->cfg;
    int best = val_acc > r->val_best;
    if (best)
        r->val_best = val_acc;
    return cfg->test_every <= 1 || epoch == 0 || epoch == cfg->epochs - 1 || best ||
           (epoch + 1) % cfg->test_every == 0;
}

/* Evaluates the epoch's weights on the training subset, validation and test splits. */
static int evaluate_epoch(train_run *r, int epoch, cnb_epoch_stats *s)
{
    const cnb_train_cfg *cfg = r->cfg;
    int rc = 0;
    double t1 = cnb_now();
    s->train_eval_loss = s->train_eval_acc = s->val_loss = s->val_acc = NAN;
    s->test_loss = s->test_acc = NAN;
    if (cfg->train_eval_limit > 0)
        rc = cfg->feed ? cnb_feed_evaluate(cfg->feed, r->net, CNB_FEED_TRAIN,
                                           cfg->train_eval_limit, &s->train_eval_loss,
                                           &s->train_eval_acc)
                       : evaluate_shared(r->net, r->train, cfg->train_eval_limit, cfg->augment,
                                         &s->train_eval_loss, &s->train_eval_acc);
    if (rc == 0 && cfg->validation)
        rc = cfg->feed ? cnb_feed_evaluate(cfg->feed, r->net, CNB_FEED_VALIDATION, 0,
                                           &s->val_loss, &s->val_acc)
                       : evaluate_shared(r->net, cfg->validation, 0, cfg->augment,
                                         &s->val_loss, &s->val_acc);
    int tested = rc == 0 && test_due(r, epoch, s->val_acc);
    if (tested)
        rc = cfg->feed ? cnb_feed_evaluate(cfg->feed, r->net, CNB_FEED_TEST, 0, &s->test_loss,
                                           &s->test_acc)
                       : evaluate_shared(r->net, r->test, 0, cfg->augment, &s->test_loss,
                                         &s->test_acc);
    if (rc == 0 && r->dpp)
        rc = dp_check_weights(r->dpp);
    s->eval_seconds = cnb_now() - t1;
    int finite = (!tested || isfinite(s->test_loss)) &&
                 (!cfg->validation || isfinite(s->val_loss)) &&
                 (cfg->train_eval_limit <= 0 || isfinite(s->train_eval_loss));
    if (rc == 0 && !finite) {
        cnb_log(CNB_LOG_WARN, NULL, "diverged at epoch %d, in evaluation: a loss is not "
                "finite (test %g, validation %g, training subset %g; training loss %g); "
                "lower the learning rate (lr = %g)", epoch + 1, s->test_loss, s->val_loss,
                s->train_eval_loss, s->train_loss, s->lr);
        rc = CNB_EDIVERGED; /* weights that give NaN on unseen data are no result */
    }
    return rc;
}

/* Trains and evaluates every epoch from cfg->start_epoch, calling on_epoch after each. */
static int run_epochs(train_run *r, cnb_epoch_fn on_epoch, void *user)
{
    const cnb_train_cfg *cfg = r->cfg;
    struct cnb_rng shuffle;
    cnb_rng_seed(&shuffle, cfg->seed, CNB_STREAM_SHUFFLE);
    int rc = 0;
    for (int epoch = 0; epoch < cfg->epochs && rc == 0; epoch++) {
        for (int i = r->train->n - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t j = cnb_rng_below(&shuffle, (uint32_t)i + 1), t = r->order[i];
            r->order[i] = r->order[j], r->order[j] = t;
        }
        if (epoch < cfg->start_epoch)
            continue; /* done before a resume: only its shuffle, for the stream's position */
        if (cfg->feed && (rc = cnb_feed_start_train(cfg->feed, r->order, r->batches, epoch)))
            break;
        cnb_epoch_stats s = {.epoch = epoch + 1,
                             .ranks = r->dpp ? r->dpp->size : 1,
                             .allreduce_bytes = r->dpp ? (double)r->net->grad_floats *
                                                             sizeof(float)
                                                       : 0.0};
        if ((rc = train_epoch(r, epoch, &s)))
            break;
        rc = evaluate_epoch(r, epoch, &s);
        if (cfg->progress)
            fputc('\r', stderr), fprintf(stderr, "%*s\r", 100, "");
        if (rc == 0 && on_epoch)
            rc = on_epoch(&s, user);
    }
    return rc;
}

int cnb_train(cnb_net *net, const cnb_dataset *train, const cnb_dataset *test,
              const cnb_train_cfg *cfg, cnb_epoch_fn on_epoch, void *user)
{
    train_run r = {.net = net, .train = train, .test = test, .cfg = cfg,
                   .val_best = cfg->val_best};
    r.global = cfg->global_batch ? cfg->global_batch : net->batch;
    if (train->n < r.global)
        return cnb_error("the training set has %d images, fewer than one batch of %d", train->n,
                         r.global);
    if (cnb_dist_size() > 1 && cfg->feed) /* said alike by every rank */
        return cnb_error("data-parallel training (mpirun) of an image-file experiment is not "
                         "there yet: its input pipeline makes whole batches; run it without "
                         "mpirun");
    if (cnb_dist_size() > 1) {
        int rc = cnb_dp_create(&r.dpp, net, r.global);
        if (rc) {
            cnb_dp_free(r.dpp);
            return rc;
        }
    }
    r.order = malloc((size_t)train->n * sizeof *r.order);
    if (!r.order) {
        cnb_dp_free(r.dpp);
        return CNB_ENOMEM;
    }
    for (int i = 0; i < train->n; i++)
        r.order[i] = (uint32_t)i;
    r.batches = train->n / r.global;
    int rc = run_epochs(&r, on_epoch, user);
    free(r.order);
    if (r.dpp) {
        cnb_dp_free(r.dpp);
        /* Diverging and stopping are decided together (the sums carry them); any other
         * failure is one rank's, and the others would wait for it in the next sum. */
        if (rc && rc != CNB_EDIVERGED && rc != CNB_EINTR) {
            fprintf(stderr, "cnnbench: rank %d of %d failed (%s); stopping every rank\n",
                    cnb_dist_rank(), cnb_dist_size(), cnb_last_error());
            cnb_dist_abort(1);
        }
    }
    return rc;
}
