/*
 * feed.c - loader threads and the ring of batches they fill; see feed.h.
 *
 * One mutex guards the plan (which samples go in which batch), the claim position
 * (batch, chunk) and each slot's count of chunks still being filled; the pixels are
 * written outside it, each chunk by one thread into its own part of the slot. A plan is
 * replaced only when no chunk is in flight, so a thread never writes into a batch of the
 * next plan. Chunks of CHUNK samples: small enough that 2 threads share even the first
 * batch of an epoch, large enough that the lock is taken ~30 times a batch of 128, not
 * 128.
 */
#include "feed.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cnnbench/plugin.h"
#include "errors.h"
#include "log.h"
#include "rng.h"

#define CHUNK 4
#define ERR_LEN 4608 /* a path of PATH_MAX and what is wrong with it */

typedef struct slot {
    float *x;          /* (batch, sample floats)                 */
    int32_t *labels;   /* (batch)                                */
    long seq;          /* the batch it holds or is filled for    */
    int left;          /* chunks of it still being filled        */
    int rc;
    char err[ERR_LEN];
} slot;

struct cnb_feed {
    cnb_feed_cfg cfg;
    size_t per;                 /* floats of one output sample */
    pthread_t *th;
    int n_th;
    cnb_imagereader *rd;        /* one per thread */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    slot *slots;
    int stop;
    /* the plan */
    uint32_t *idx;              /* samples, in batch order */
    size_t idx_cap;
    long n;                     /* samples in idx */
    long batches;
    int spb;                    /* samples a batch */
    int chunks;                 /* chunks a batch */
    int train, split, epoch, crops;
    long next_batch;            /* the claim position */
    int next_chunk;
    long consumed;              /* batches taken */
    int in_flight;              /* chunks being filled */
    unsigned char *bad[3];      /* per sample of each split (cnb_feed_split): said once */
    long skipped;
    double busy;                /* thread-seconds spent making training samples */
    long made;                  /* training samples made                       */
};

/* The set of a split (cnb_feed_split); NULL: a validation set the feed was not given. */
static const cnb_imageset *set_of(const cnb_feed *f, int split)
{
    return split == CNB_FEED_TEST ? f->cfg.test
           : split == CNB_FEED_VALIDATION ? f->cfg.val
                                          : f->cfg.train;
}

/* One sample into dst (crops outputs of per floats), or a refusal in err. */
static int make_sample(cnb_feed *f, cnb_imagereader *rd, uint32_t i, int train, int split,
                       int epoch, int crops, float *dst, int32_t *label, char *err)
{
    const cnb_imageset *s = set_of(f, split);
    const float *img;
    int h, w;
    int rc = cnb_imageset_read(s, (int)i, &f->cfg.resize, f->cfg.channels, rd, &img, &h, &w,
                               err, ERR_LEN);
    if (rc == 0) {
        char why[512];
        if (crops == CNB_TEN_CROPS) {
            rc = cnb_augment_ten_crop(f->cfg.aug, img, h, w, dst, why, sizeof why);
        } else {
            struct cnb_rng r;
            cnb_augment_sample_rng(&r, f->cfg.seed, (uint64_t)epoch, i);
            rc = cnb_augment_sample(f->cfg.aug, img, h, w, train, &r, dst, why, sizeof why);
        }
        if (rc)
            snprintf(err, ERR_LEN, "%.4000s: %.500s", s->paths ? s->paths[i] : s->source, why);
    }
    if (rc == 0) {
        for (int k = 0; k < crops; k++)
            label[k] = s->labels[i];
        return 0;
    }
    if (!f->cfg.skip_bad || rc == CNB_ENOMEM)
        return rc;
    memset(dst, 0, (size_t)crops * f->per * sizeof *dst);
    for (int k = 0; k < crops; k++)
        label[k] = -1;
    pthread_mutex_lock(&f->mu);
    int first = !f->bad[split][i];
    f->bad[split][i] = 1;
    f->skipped += first;
    pthread_mutex_unlock(&f->mu);
    if (first)
        cnb_log(CNB_LOG_WARN, NULL, "left out (data.on_bad_image = skip): %s", err);
    return 0;
}

static void *worker(void *arg)
{
    cnb_feed *f = ((void **)arg)[0];
    cnb_imagereader *rd = ((void **)arg)[1];
    free(arg);
    char err[ERR_LEN];
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stop && !(f->next_batch < f->batches &&
                             f->next_batch < f->consumed + f->cfg.depth))
            pthread_cond_wait(&f->work, &f->mu);
        if (f->stop)
            break;
        long b = f->next_batch;
        int k = f->next_chunk;
        if (++f->next_chunk == f->chunks)
            f->next_chunk = 0, f->next_batch++;
        slot *sl = &f->slots[b % f->cfg.depth];
        if (k == 0)
            sl->seq = b, sl->left = f->chunks, sl->rc = 0, sl->err[0] = '\0';
        int train = f->train, split = f->split, epoch = f->epoch, crops = f->crops;
        long first = b * f->spb + (long)k * CHUNK;
        long last = first + CHUNK < (b + 1) * f->spb ? first + CHUNK : (b + 1) * f->spb;
        f->in_flight++;
        pthread_mutex_unlock(&f->mu);

        int rc = 0;
        double t0 = cnb_now();
        for (long j = first; j < last && rc == 0; j++) {
            long at = (j - b * f->spb) * crops; /* the sample's first row in the batch */
            if (j < f->n)
                rc = make_sample(f, rd, f->idx[j], train, split, epoch, crops,
                                 sl->x + (size_t)at * f->per, sl->labels + at, err);
            else { /* the tail of an evaluation: padding */
                memset(sl->x + (size_t)at * f->per, 0, (size_t)crops * f->per * sizeof(float));
                for (int c = 0; c < crops; c++)
                    sl->labels[at + c] = -1;
            }
        }

        double spent = cnb_now() - t0;
        pthread_mutex_lock(&f->mu);
        if (train)
            f->busy += spent, f->made += last - first;
        f->in_flight--;
        if (rc && !sl->rc)
            sl->rc = rc, snprintf(sl->err, sizeof sl->err, "%s", err);
        if (--sl->left == 0 || f->in_flight == 0)
            pthread_cond_broadcast(&f->done);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Replace the plan: nothing is claimed from the old one any more; wait for what is in
 * flight; empty the ring. Called with the lock held. */
static void reset_plan(cnb_feed *f)
{
    f->batches = 0;
    while (f->in_flight > 0)
        pthread_cond_wait(&f->done, &f->mu);
    for (int i = 0; i < f->cfg.depth; i++)
        f->slots[i].seq = -1, f->slots[i].left = 0;
    f->next_batch = f->consumed = 0;
    f->next_chunk = 0;
}

static int plan(cnb_feed *f, const uint32_t *idx, long n, long batches, int spb, int train,
                int split, int epoch, int crops)
{
    pthread_mutex_lock(&f->mu);
    reset_plan(f);
    if ((size_t)n > f->idx_cap) {
        uint32_t *p = realloc(f->idx, (size_t)n * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&f->mu);
            return cnb_error("input pipeline: out of memory for %ld sample indices", n);
        }
        f->idx = p, f->idx_cap = (size_t)n;
    }
    if (idx)
        memcpy(f->idx, idx, (size_t)n * sizeof *idx);
    else
        for (long i = 0; i < n; i++)
            f->idx[i] = (uint32_t)i;
    f->n = n, f->spb = spb, f->train = train, f->split = split, f->epoch = epoch;
    f->crops = crops;
    f->chunks = (spb + CHUNK - 1) / CHUNK;
    f->batches = batches;
    pthread_cond_broadcast(&f->work);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int cnb_feed_start_train(cnb_feed *f, const uint32_t *order, long batches, int epoch)
{
    return plan(f, order, batches * f->cfg.batch, batches, f->cfg.batch, 1, CNB_FEED_TRAIN,
                epoch, 1);
}

int cnb_feed_next(cnb_feed *f, float *x, int32_t *labels, double *waited)
{
    double t0 = cnb_now();
    pthread_mutex_lock(&f->mu);
    if (f->consumed >= f->batches) {
        pthread_mutex_unlock(&f->mu);
        return cnb_error("input pipeline: no batch queued (a bug: the epoch has %ld)",
                         f->batches);
    }
    slot *sl = &f->slots[f->consumed % f->cfg.depth];
    while (!(sl->seq == f->consumed && sl->left == 0))
        pthread_cond_wait(&f->done, &f->mu);
    pthread_mutex_unlock(&f->mu);
    int rc = sl->rc;
    if (rc == 0) {
        memcpy(x, sl->x, (size_t)f->cfg.batch * f->per * sizeof *x);
        memcpy(labels, sl->labels, (size_t)f->cfg.batch * sizeof *labels);
    } else {
        cnb_error("%s", sl->err);
    }
    pthread_mutex_lock(&f->mu);
    f->consumed++;
    pthread_cond_broadcast(&f->work);
    pthread_mutex_unlock(&f->mu);
    if (waited)
        *waited += cnb_now() - t0;
    return rc;
}

int cnb_feed_evaluate(cnb_feed *f, cnb_net *net, cnb_feed_split split, long limit,
                      double *loss, double *acc)
{
    const cnb_imageset *s = set_of(f, split);
    if (!s)
        return cnb_error("input pipeline: no validation set to evaluate (a bug: the feed "
                         "was made without one)");
    long n = limit > 0 && limit < s->n ? limit : s->n;
    int crops = f->cfg.eval_crops, spb = f->cfg.batch / crops;
    long batches = (n + spb - 1) / spb;
    int rc = plan(f, NULL, n, batches, spb, 0, split, 0, crops);
    double loss_sum = 0.0;
    long correct = 0, counted = 0;
    for (long b = 0; b < batches && rc == 0; b++) {
        float l = 0.0f;
        if ((rc = cnb_feed_next(f, net->x, net->labels, NULL)))
            break;
        size_t used = (size_t)spb * crops; /* rows the crops leave over: padding */
        memset(net->x + used * f->per, 0,
               ((size_t)f->cfg.batch - used) * f->per * sizeof(float));
        for (size_t r = used; r < (size_t)f->cfg.batch; r++)
            net->labels[r] = -1;
        if ((rc = cnb_net_forward(net, 0, &l)))
            break;
        const float *p = cnb_net_probs(net);
        int real = 0;
        for (int i = 0; i < spb; i++) {
            int label = net->labels[i * crops];
            if (label < 0)
                continue;
            real++;
            int best = 0;
            double pl = 0.0, top = -1.0;
            for (int c = 0; c < net->classes; c++) {
                double sum = 0.0;
                for (int k = 0; k < crops; k++)
                    sum += p[(size_t)(i * crops + k) * net->classes + c];
                if (sum > top)
                    top = sum, best = c;
                if (c == label)
                    pl = sum / crops;
            }
            correct += best == label;
            if (crops > 1)
                loss_sum -= log(pl > 1e-30 ? pl : 1e-30);
        }
        if (crops == 1)
            loss_sum += (double)l * real; /* the net's loss is the mean over real labels */
        counted += real;
    }
    pthread_mutex_lock(&f->mu);
    reset_plan(f); /* an error may leave batches queued */
    pthread_mutex_unlock(&f->mu);
    *loss = counted ? loss_sum / (double)counted : NAN;
    *acc = counted ? (double)correct / (double)counted : NAN;
    return rc;
}

long cnb_feed_skipped(const cnb_feed *f)
{
    return f->skipped;
}

double cnb_feed_rate(cnb_feed *f)
{
    pthread_mutex_lock(&f->mu);
    double rate = f->busy > 0 ? (double)f->made / f->busy : NAN;
    f->busy = 0, f->made = 0;
    pthread_mutex_unlock(&f->mu);
    return rate;
}

int cnb_feed_create(cnb_feed **out, const cnb_feed_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->threads < 1 || cfg->depth < 1 || cfg->batch < 1 || !cfg->aug || !cfg->train ||
        !cfg->test || (cfg->eval_crops != 1 && cfg->eval_crops != CNB_TEN_CROPS)) {
        snprintf(err, errlen, "input pipeline: %d threads, %d batches ahead, batch %d, %d "
                 "evaluation crops", cfg->threads, cfg->depth, cfg->batch, cfg->eval_crops);
        return CNB_EINVAL;
    }
    if (cfg->batch < cfg->eval_crops) {
        snprintf(err, errlen, "data.eval_crops = %d needs a batch of at least %d (it is %d)",
                 cfg->eval_crops, cfg->eval_crops, cfg->batch);
        return CNB_EINVAL;
    }
    cnb_feed *f = calloc(1, sizeof *f);
    if (!f)
        goto nomem;
    f->cfg = *cfg;
    int c, h, w;
    cnb_augment_out_shape(cfg->aug, &c, &h, &w);
    f->per = (size_t)c * h * w;
    f->slots = calloc((size_t)cfg->depth, sizeof *f->slots);
    f->bad[CNB_FEED_TRAIN] = calloc((size_t)cfg->train->n, 1);
    f->bad[CNB_FEED_TEST] = calloc((size_t)cfg->test->n, 1);
    f->bad[CNB_FEED_VALIDATION] = calloc(cfg->val ? (size_t)cfg->val->n : 1, 1);
    f->th = calloc((size_t)cfg->threads, sizeof *f->th);
    f->rd = calloc((size_t)cfg->threads, sizeof *f->rd);
    if (!f->slots || !f->bad[0] || !f->bad[1] || !f->bad[2] || !f->th || !f->rd)
        goto nomem;
    for (int i = 0; i < cfg->depth; i++) {
        f->slots[i].seq = -1;
        f->slots[i].x = malloc((size_t)cfg->batch * f->per * sizeof(float));
        f->slots[i].labels = malloc((size_t)cfg->batch * sizeof(int32_t));
        if (!f->slots[i].x || !f->slots[i].labels)
            goto nomem;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->work, NULL);
    pthread_cond_init(&f->done, NULL);
    for (int i = 0; i < cfg->threads; i++) {
        void **arg = malloc(2 * sizeof *arg);
        if (!arg)
            break;
        arg[0] = f, arg[1] = &f->rd[i];
        if (pthread_create(&f->th[i], NULL, worker, arg) != 0) {
            free(arg);
            break;
        }
        f->n_th++;
    }
    if (f->n_th < cfg->threads) {
        cnb_feed_destroy(f);
        snprintf(err, errlen, "input pipeline: cannot start %d threads; lower "
                 "data.loader_threads", cfg->threads);
        return CNB_ENOMEM;
    }
    *out = f;
    return 0;
nomem:
    if (f) {
        for (int i = 0; f->slots && i < cfg->depth; i++)
            free(f->slots[i].x), free(f->slots[i].labels);
        free(f->slots), free(f->bad[0]), free(f->bad[1]), free(f->bad[2]), free(f->th);
        free(f->rd), free(f);
    }
    snprintf(err, errlen, "input pipeline: cannot allocate %d batches of %d images ahead; "
             "lower data.prefetch", cfg->depth, cfg->batch);
    return CNB_ENOMEM;
}

void cnb_feed_destroy(cnb_feed *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->work);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->n_th; i++)
        pthread_join(f->th[i], NULL);
    for (int i = 0; i < f->cfg.threads; i++)
        cnb_imagereader_free(&f->rd[i]);
    for (int i = 0; i < f->cfg.depth; i++)
        free(f->slots[i].x), free(f->slots[i].labels);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->work);
    pthread_cond_destroy(&f->done);
    free(f->slots), free(f->bad[0]), free(f->bad[1]), free(f->bad[2]), free(f->th);
    free(f->rd), free(f->idx), free(f);
}
