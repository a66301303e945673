/*
 * feed.h - the input pipeline of image files: decode, resize and augment the next
 * batches on threads of its own while the current training step runs.
 *
 * What it is: `threads` loader threads fill a ring of `depth` batch buffers in order
 * (each batch cut into chunks of a few samples, so that all threads work on the batch the
 * step will want first); the training loop takes them in order, and the time it spends
 * waiting (and copying the batch into the network) is what it reports as its data time.
 * Every sample's draws come from its own stream (seed, epoch, index) as in augment.h, so
 * the batches are the same bytes whatever the number of threads or their timing.
 * Evaluation goes through the same threads: the centre crop, or the paper's ten crops
 * with the predictions averaged.
 *
 * What it is not: no in-memory datasets (those are augmented in the step, augment.h: it
 * costs them a few percent), no shuffling (the caller gives each epoch's order), no
 * process-level parallelism.
 */
#ifndef CNB_FEED_H
#define CNB_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "imageset.h"
#include "net.h"

typedef struct cnb_feed_cfg {
    const cnb_imageset *train, *test;
    const cnb_imageset *val;  /* held out of train (cnb_imageset_holdout), evaluated
                                 alone; NULL: none                               */
    cnb_resize_spec resize;   /* what the reader does to every image             */
    int channels;             /* 1 or 3                                          */
    const cnb_augment *aug;   /* crop, flip, lighting, normalisation (init_images) */
    int threads;              /* loader threads, 1 or more                       */
    int depth;                /* batches made ahead, 1 or more                   */
    int batch;                /* the network's batch                             */
    uint64_t seed;
    int skip_bad;             /* 1: an unreadable image is left out of its batch
                                 (label -1, zeros) with a warning the first time;
                                 0: it stops the run                             */
    int eval_crops;           /* 1 (centre) or CNB_TEN_CROPS                     */
} cnb_feed_cfg;

typedef struct cnb_feed cnb_feed;

/* Start the threads (they wait for work). Returns 0, CNB_EINVAL or CNB_ENOMEM with err. */
int cnb_feed_create(cnb_feed **out, const cnb_feed_cfg *cfg, char *err, size_t errlen);
/* Stop and join the threads, free everything. Safe on NULL. */
void cnb_feed_destroy(cnb_feed *f);

/* Queue an epoch: batch b holds training samples order[b * batch ...] (copied), augmented
 * for `epoch`. Whatever was queued before and not taken is dropped. */
int cnb_feed_start_train(cnb_feed *f, const uint32_t *order, long batches, int epoch);

/* The next batch of the queued epoch into x (batch samples of the augmented shape) and
 * labels (-1 for a skipped image). *waited (when not NULL) gets the seconds spent
 * waiting and copying. Returns 0, or the error of a sample (reported through cnb_error,
 * naming the file). */
int cnb_feed_next(cnb_feed *f, float *x, int32_t *labels, double *waited);

/* The sets of the cfg a feed evaluates. */
typedef enum cnb_feed_split {
    CNB_FEED_TRAIN,
    CNB_FEED_TEST,
    CNB_FEED_VALIDATION, /* cfg.val */
} cnb_feed_split;

/* Mean loss and accuracy of net (evaluation mode) over the first `limit` (0: all)
 * samples of a split, the samples' images through the centre crop or the ten crops
 * (probabilities averaged over the crops; the loss is then -log of the averaged
 * probability of the label). Skipped images count in neither. */
int cnb_feed_evaluate(cnb_feed *f, cnb_net *net, cnb_feed_split split, long limit,
                      double *loss, double *acc);

/* Training samples made per second of one thread's time (decode, resize, augment: what
 * one loader thread sustains), since the last call; NAN when none were made. */
double cnb_feed_rate(cnb_feed *f);

/* Images left out so far (on_bad_image = skip), each counted once. */
long cnb_feed_skipped(const cnb_feed *f);

#endif
