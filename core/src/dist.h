/*
 * dist.h - the process group of a data-parallel run: which rank this process is, how many
 * there are, and the collectives training needs (a sum over every rank of a gradient
 * bucket, started without waiting, and small sums and decisions).
 *
 * What it is: a thin layer over MPI (dist_mpi.c, built with the meson feature `mpi`) with
 * a build of the same API without it (dist_none.c: one rank, every collective the
 * identity), so that no other file of the core needs an #ifdef. MPI is started only when
 * the process was launched by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx: it
 * says so in the environment); a plain `cnnbench run` never calls MPI_Init, because
 *   - the sweep and `check` run their work in forked children, and Open MPI does not
 *     support fork() after MPI_Init (its shared-memory transport and registered memory
 *     are not fork-safe);
 *   - a singleton MPI_Init starts Open MPI's run-time, 0.4 s of every run here (MPI_Init
 *     and MPI_Finalize alone: 0.39-0.41 s), which a run on one rank has no use for.
 * So without a launcher a run is exactly what it was before this module existed.
 *
 * What it is not: a transport of its own, or a scheduler. Every collective is called by
 * every rank in the same order (MPI's rule); only the thread that called cnb_dist_init
 * calls into it (MPI_THREAD_FUNNELED).
 */
#ifndef CNB_DIST_H
#define CNB_DIST_H

#include <stddef.h>

/* Start the process group when launched by an MPI launcher; otherwise one rank. Returns
 * 0, or an error (reported) when MPI could not start. Call once, first thing in main. */
int cnb_dist_init(int *argc, char ***argv);
/* End it (MPI_Finalize); safe to call when it never started. */
void cnb_dist_finalize(void);
/* Stop every rank at once with `code` (MPI_Abort): one rank's failure would otherwise
 * leave the others waiting in a collective for ever. Returns only in a one-rank run. */
void cnb_dist_abort(int code);

int cnb_dist_rank(void);       /* 0 .. size-1; 0 in a one-rank run           */
int cnb_dist_size(void);       /* ranks in the run; 1 without a launcher     */
int cnb_dist_local_size(void); /* ranks on this node (sharing its memory)    */
int cnb_dist_nodes(void);      /* distinct nodes the ranks run on            */
int cnb_dist_compiled(void);   /* 1 when built with MPI                      */
/* "Open MPI v4.1.4, ..." (the library's own version string), or why there is none. */
const char *cnb_dist_library(void);
/* Why a launcher's environment was seen but the build has no MPI ("" otherwise): the
 * run then goes on as one rank per process, each doing the whole work, which is never
 * what was meant. */
const char *cnb_dist_warning(void);

/* In-place sum over every rank, blocking: small vectors (a loss and a count, a decision). */
int cnb_dist_sum(double *v, int n);
/* Rank 0's values on every rank. */
int cnb_dist_bcast(double *v, int n);
void cnb_dist_barrier(void);

/* Sums of float buffers over every rank, started now and finished by cnb_dist_wait
 * (MPI_Iallreduce, in place): training starts one per gradient bucket as soon as the
 * backward pass has filled it, and goes on computing. Up to CNB_DIST_MAX_PENDING at once.
 * `buf` must not be touched until the wait. In a one-rank run these do nothing. */
#define CNB_DIST_MAX_PENDING 4096
int cnb_dist_start_sum(float *buf, size_t n);
/* The same for doubles (the per-step loss, count and stop flag). */
int cnb_dist_start_sum_d(double *buf, int n);
/* Let the pending sums move on (MPI_Testall): without a progress thread, Open MPI moves
 * a nonblocking collective only inside MPI calls, so the backward pass calls this
 * between layers. */
void cnb_dist_progress(void);
/* Finish every pending sum. */
int cnb_dist_wait(void);

#endif
