/*
 * dist_mpi.c - the process group over MPI; see dist.h. Built with the meson feature
 * `mpi` (Debian: libopenmpi-dev); dist_none.c is the same API without it.
 */
#include "dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static int started;             /* MPI_Init was called by us                  */
static int rank, size = 1, local_size = 1, nodes = 1;
static MPI_Request pending[CNB_DIST_MAX_PENDING];
static int n_pending;
static char library[MPI_MAX_LIBRARY_VERSION_STRING + 64] = "";

/* Launched by an MPI launcher? Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's
 * Hydra and Slurm's srun --mpi=pmi2 set PMI_SIZE; PMIx launchers (srun --mpi=pmix,
 * prterun) set PMIX_RANK. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]) && *getenv(vars[i]))
            return 1;
    return 0;
}

int cnb_dist_init(int *argc, char ***argv)
{
    if (!launched())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cnb_error("MPI_Init failed: the launcher's environment is set (mpirun?) but "
                         "MPI could not start; run without mpirun for one process");
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm local; /* the ranks that share this node's memory */
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size);
    int local_rank, first = 0;
    MPI_Comm_rank(local, &local_rank);
    first = local_rank == 0;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    nodes = first;
    MPI_Comm_free(&local);
    int len = 0;
    MPI_Get_library_version(library, &len);
    library[strcspn(library, "\n,")] = '\0'; /* "Open MPI v4.1.4" */
    return 0;
}

void cnb_dist_finalize(void)
{
    if (started) {
        cnb_dist_wait();
        MPI_Finalize();
        started = 0;
    }
}

void cnb_dist_abort(int code)
{
    if (started && size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
}

int cnb_dist_rank(void) { return rank; }
int cnb_dist_size(void) { return size; }
int cnb_dist_local_size(void) { return local_size; }
int cnb_dist_nodes(void) { return nodes; }
int cnb_dist_compiled(void) { return 1; }

const char *cnb_dist_library(void)
{
    if (!library[0]) { /* not started: the version compiled against */
        snprintf(library, sizeof library, "MPI %d.%d (built with; not started: no launcher)",
                 MPI_VERSION, MPI_SUBVERSION);
    }
    return library;
}

const char *cnb_dist_warning(void) { return ""; }

static int failed(const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return cnb_error_code(CNB_EFAILED, "rank %d: %s failed: %s", rank, what, msg);
}

int cnb_dist_sum(double *v, int n)
{
    if (size == 1)
        return 0;
    int err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return err == MPI_SUCCESS ? 0 : failed("MPI_Allreduce", err);
}

int cnb_dist_bcast(double *v, int n)
{
    if (size == 1)
        return 0;
    int err = MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return err == MPI_SUCCESS ? 0 : failed("MPI_Bcast", err);
}

void cnb_dist_barrier(void)
{
    if (size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
}

static int start(void *buf, int n, MPI_Datatype type)
{
    if (size == 1)
        return 0;
    if (n_pending == CNB_DIST_MAX_PENDING)
        return cnb_error("more than %d sums pending at once", CNB_DIST_MAX_PENDING);
    int err = MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, MPI_SUM, MPI_COMM_WORLD,
                             &pending[n_pending]);
    if (err != MPI_SUCCESS)
        return failed("MPI_Iallreduce", err);
    n_pending++;
    return 0;
}

int cnb_dist_start_sum(float *buf, size_t n)
{
    if (n > (size_t)0x7fffffff) /* MPI counts are int: 2^31 floats (8 GiB) a bucket */
        return cnb_error("a gradient bucket of %zu floats is more than MPI can send at once",
                         n);
    return start(buf, (int)n, MPI_FLOAT);
}

int cnb_dist_start_sum_d(double *buf, int n) { return start(buf, n, MPI_DOUBLE); }

void cnb_dist_progress(void)
{
    if (n_pending) {
        int flag;
        MPI_Testall(n_pending, pending, &flag, MPI_STATUSES_IGNORE);
    }
}

int cnb_dist_wait(void)
{
    if (!n_pending)
        return 0;
    int err = MPI_Waitall(n_pending, pending, MPI_STATUSES_IGNORE);
    n_pending = 0;
    return err == MPI_SUCCESS ? 0 : failed("MPI_Waitall", err);
}
