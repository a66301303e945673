/*
 * checkpoint.h - a training run's state after an epoch, so that a killed cell resumes
 * where it stopped and ends with the numbers an uninterrupted run gives, bit for bit.
 *
 * What it holds: the cell's fingerprint (a checkpoint of other settings is never used),
 * the epochs done, the caller's history of them (opaque bytes: metrics so far), every
 * parameter and its momentum, and each layer's random stream (dropout). What it does not
 * hold, because it is recomputed: the shuffle stream (replayed from the seed, one
 * permutation per epoch done) and the data processing's draws (a function of seed, epoch
 * and sample). Written atomically; CRC-32 over everything.
 */
#ifndef CNB_CHECKPOINT_H
#define CNB_CHECKPOINT_H

#include <stddef.h>

#include "net.h"

#define CNB_CHECKPOINT_FILE "checkpoint.cnbk" /* in the cell's folder */

int cnb_checkpoint_save(const char *path, const cnb_net *net, const char *fingerprint,
                        int epoch, const void *history, size_t history_bytes);

/* Restore `net` (bound, parameters allocated) from `path`. 0 with *epoch = 0 when there
 * is no checkpoint, or one that cannot be used (another fingerprint, a damaged or cut
 * file: said in a warning, the net untouched, and the cell starts afresh). On a resume,
 * *history is malloc'd (free it). An error only for a file whose tensors do not fit the
 * net although its fingerprint matches. */
int cnb_checkpoint_load(const char *path, cnb_net *net, const char *fingerprint, int *epoch,
                        void **history, size_t *history_bytes);

#endif
