/*
 * train.h - minibatch SGD training and evaluation of a bound network on a dataset.
 *
 * Each epoch shuffles the training set from the stream (seed, CNB_STREAM_SHUFFLE), makes
 * each batch (through the data processing of augment.h when cfg->augment is set: every
 * sample's draws from its own stream of (seed, epoch, index)), runs
 * forward/backward/update per full batch (the tail that does not fill a batch is left
 * out of that epoch; a different tail each epoch), then evaluates in evaluation mode on
 * the test split and on a fixed subset of the training split (for an honest train/test
 * gap: the running training accuracy is measured with dropout on and weights moving).
 */
#ifndef CNB_TRAIN_H
#define CNB_TRAIN_H

#include <stdint.h>

#include "augment.h"
#include "dataset.h"
#include "net.h"

typedef enum cnb_schedule {
    CNB_SCHEDULE_CONSTANT,
    CNB_SCHEDULE_STEP,   /* lr * gamma^floor(epoch / step_epochs) */
    CNB_SCHEDULE_COSINE, /* lr * (1 + cos(pi * epoch / epochs)) / 2 */
} cnb_schedule;

typedef struct cnb_train_cfg {
    int epochs;
    double lr, momentum, weight_decay;
    cnb_schedule schedule;
    int step_epochs;
    double gamma;
    uint64_t seed;
    long train_eval_limit; /* training samples evaluated each epoch; 0 = none */
    int progress;          /* 1: redraw a progress bar on stderr */
    const cnb_augment *augment; /* the data processing of every batch; NULL: none */
    int start_epoch;       /* epochs already done (a resumed run: checkpoint.h); their
                              shuffles are replayed, nothing else is redone */
    struct cnb_feed *feed; /* image files: every batch, training and evaluation, comes
                              from this input pipeline (feed.h), and the datasets give
                              only n and labels; NULL: from the datasets' pixels */
} cnb_train_cfg;

typedef struct cnb_epoch_stats {
    int epoch;            /* 1-based */
    double lr;
    double train_loss, train_acc;           /* running, in training mode */
    double train_eval_loss, train_eval_acc; /* evaluation mode, fixed subset; NAN if off */
    double test_loss, test_acc;
    double train_seconds, eval_seconds;
    double data_seconds;                    /* of train_seconds: the step waiting for
                                               its batches (making them, without an
                                               input pipeline)                      */
    double images_per_second;               /* training throughput */
    double loader_rate;                     /* image files: training samples one loader
                                               thread makes a second (feed.h); NAN
                                               without an input pipeline             */
} cnb_epoch_stats;

/* Called after every epoch; a non-zero return stops training with that code. */
typedef int (*cnb_epoch_fn)(const cnb_epoch_stats *s, void *user);

/* Returned by cnb_train when cnb_train_stop() was called (from a signal handler). */
#define CNB_EINTR (-100)
/* Returned by cnb_train when the training loss became NaN or infinite: a finished result
 * (the same settings diverge again), said by a warning that cnb_last_warning() keeps:
 * "diverged at epoch 1, batch 4: ...". */
#define CNB_EDIVERGED (-101)
void cnb_train_stop(void);

int cnb_train(cnb_net *net, const cnb_dataset *train, const cnb_dataset *test,
              const cnb_train_cfg *cfg, cnb_epoch_fn on_epoch, void *user);

/* Mean loss and accuracy over the first `limit` samples (0 = all), evaluation mode; the
 * batches go through `augment` in evaluation mode (resize, centre crop) when not NULL. */
int cnb_evaluate(cnb_net *net, const cnb_dataset *d, long limit, const cnb_augment *augment,
                 double *loss, double *acc);

double cnb_schedule_lr(const cnb_train_cfg *cfg, int epoch0);

#endif
