/*
 * train.h - minibatch SGD training and evaluation of a bound network on a dataset.
 *
 * Each epoch shuffles the training set from the stream (seed, CNB_STREAM_SHUFFLE), makes
 * each batch (through the data processing of augment.h when cfg->augment is set: every
 * sample's draws from its own stream of (seed, epoch, index)), runs
 * forward/backward/update per full batch (the tail that does not fill a batch is left
 * out of that epoch; a different tail each epoch), then evaluates in evaluation mode on
 * the test split, on the validation split when there is one (held out of the training
 * split: dataset.h), and on a fixed subset of the training split (for an honest
 * train/test gap: the running training accuracy is measured with dropout on and weights
 * moving). Only the validation split may choose anything (an epoch, a setting): the test
 * split is measured, never chosen on.
 *
 * Data-parallel (dist.h: started under mpirun with more than one rank): the same
 * computation at any number of ranks. Every rank shuffles the whole training set from the
 * same stream and takes a contiguous slice of each global batch (cnb_train_slice; the
 * batch and learning rate are the experiment's, whatever the rank count); the data
 * processing draws by sample index already, and each layer's stream (dropout) is jumped
 * past the draws of the samples before and after the slice, so every sample sees the
 * numbers it would in a one-rank run. Each rank's gradient, a mean over its slice, is
 * weighted by its share of the batch and summed over the ranks (MPI_Iallreduce) in
 * buckets of whole layers, each started as soon as the backward pass has filled it; all
 * are waited for before the update, which every rank then makes alike, so the weights
 * stay identical (checked after every epoch). Evaluation is split over the ranks and
 * summed. Only floating-point summation order differs from one rank: the loss curve
 * matches to within rounding, not bit for bit.
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
    int warmup_epochs;     /* the first steps ramp the rate up (cnb_step_lr): over this  */
    long warmup_steps;     /*   many epochs' steps, or this many steps; both 0: none    */
    uint64_t seed;
    long train_eval_limit; /* training samples evaluated each epoch; 0 = none */
    int test_every;        /* the test split is evaluated after epoch 1, every this
                              many epochs, the last, and (with a validation split) any
                              whose validation accuracy is the best so far, so the
                              epoch validation chooses always has its test result; the
                              others' test fields are NAN. 0 or 1: every epoch        */
    double val_best;       /* a resumed run: the best validation accuracy of the epochs
                              before start_epoch (0: none)                            */
    int progress;          /* 1: redraw a progress bar on stderr */
    const cnb_augment *augment; /* the data processing of every batch; NULL: none */
    int start_epoch;       /* epochs already done (a resumed run: checkpoint.h); their
                              shuffles are replayed, nothing else is redone */
    struct cnb_feed *feed; /* image files: every batch, training and evaluation, comes
                              from this input pipeline (feed.h), and the datasets give
                              only n and labels; NULL: from the datasets' pixels */
    int global_batch;      /* the batch over every rank; the net is bound with this
                              rank's slice (cnb_train_slice). 0: net->batch, one rank */
    const cnb_dataset *validation; /* held out of the training split, evaluated after
                                      every epoch; NULL: none. With a feed, its
                                      images are the feed's validation set      */
    double *lr_trace;      /* when not NULL: the rate of every step this run takes, at
                              [epoch * batches + batch] (tests, plots of a schedule)  */
} cnb_train_cfg;

typedef struct cnb_epoch_stats {
    int epoch;            /* 1-based */
    double lr;            /* the rate of the epoch's last step */
    double train_loss, train_acc;           /* running, in training mode */
    double train_eval_loss, train_eval_acc; /* evaluation mode, fixed subset; NAN if off */
    double test_loss, test_acc;
    double val_loss, val_acc;               /* the validation split; NAN without one  */
    double train_seconds, eval_seconds;
    double data_seconds;                    /* of train_seconds: the step waiting for
                                               its batches (making them, without an
                                               input pipeline)                      */
    double images_per_second;               /* training throughput */
    double loader_rate;                     /* image files: training samples one loader
                                               thread makes a second (feed.h); NAN
                                               without an input pipeline             */
    int ranks;                              /* data-parallel ranks (1: none)        */
    double allreduce_seconds;               /* of train_seconds: waiting for the
                                               gradient sums (communication that
                                               computation did not hide); 0 at 1 rank */
    double compute_seconds;                 /* the rest of train_seconds without the
                                               data: forward, backward, update        */
    double allreduce_bytes;                 /* gradient bytes summed per step          */
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

/* The rate of step `step` (0-based) of epoch `epoch0` (0-based) of `batches` steps each:
 * the schedule's rate for the epoch, times the warm-up's factor min(1, (g + 1) / W) at
 * the run's step g = epoch0 * batches + step, W = warmup_steps (or warmup_epochs *
 * batches). So the rate rises linearly from lr / W at the first step to the full rate at
 * step W - 1, and the schedule goes on from there as without warm-up (Goyal et al. 2017,
 * "gradual warmup"). */
double cnb_step_lr(const cnb_train_cfg *cfg, int epoch0, long step, long batches);

/* The epoch (0-based) a run would be stopped at, chosen on validation: the highest of
 * val_acc[0..n), the earliest of equal ones; -1 when none is a number (no validation). */
int cnb_best_epoch(const double *val_acc, int n);

/* This rank's slice of a global batch split over `size` ranks: the count, and in *start
 * the first sample's place in the batch. Contiguous, sizes differing by one at most
 * (the first batch % size ranks take one more). */
int cnb_train_slice(int batch, int rank, int size, int *start);

/* The data-parallel step on its own, for cnb_train and for benchmarks (the scaling of
 * bench.h): `net` bound with this rank's slice of `global_batch`. cnb_dp_create plans the
 * gradient buckets and counts each layer's random draws per sample (one training forward,
 * its streams put back); cnb_dp_step trains on the slice in net->x and net->labels:
 * forward, backward with each bucket's sum started as soon as it is complete, the wait,
 * the update (skipped when the loss is not finite); *loss_sum and *correct get the whole
 * global batch's. cnb_dp_comm_seconds gives the seconds spent in MPI calls since its last
 * call. On one rank the same steps run, without the sums. Every rank calls alike. */
typedef struct cnb_dp cnb_dp;
int cnb_dp_create(cnb_dp **out, cnb_net *net, int global_batch);
int cnb_dp_step(cnb_dp *p, float lr, float momentum, float weight_decay, double *loss_sum,
                double *correct);
double cnb_dp_comm_seconds(cnb_dp *p);
/* The step's sums alone, every bucket at once and waited for, with nothing to hide
 * behind (the gradients weighted as in a step; for benchmarks). */
int cnb_dp_sum_all(cnb_dp *p);
size_t cnb_dp_bytes(const cnb_dp *p);  /* the gradient buffer summed every step */
int cnb_dp_buckets(const cnb_dp *p);   /* the sums it is split into            */
void cnb_dp_free(cnb_dp *p);

#endif
