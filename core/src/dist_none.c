/*
 * dist_none.c - the process group of a build without MPI (meson -Dmpi=disabled, or no
 * Open MPI found): always one rank, every collective the identity; see dist.h.
 *
 * Started by mpirun all the same, each process would train the whole cell on its own
 * and every one would write the same files: cnb_dist_warning says so, and main refuses
 * to run that way.
 */
#include "dist.h"

#include <stdlib.h>

static const char *warning = "";

int cnb_dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        warning = "this cnnbench was built without MPI (meson feature `mpi`: install Open "
                  "MPI, libopenmpi-dev, and reconfigure), but was started by an MPI launcher "
                  "with more than one process; every process would run the whole cell and "
                  "write the same files. Run it without mpirun, or rebuild with MPI";
    return 0;
}

void cnb_dist_finalize(void) {}
void cnb_dist_abort(int code) { (void)code; }
int cnb_dist_rank(void) { return 0; }
int cnb_dist_size(void) { return 1; }
int cnb_dist_local_size(void) { return 1; }
int cnb_dist_nodes(void) { return 1; }
int cnb_dist_compiled(void) { return 0; }
const char *cnb_dist_library(void) { return "none (built without the meson feature mpi)"; }
const char *cnb_dist_warning(void) { return warning; }
int cnb_dist_sum(double *v, int n) { return (void)v, (void)n, 0; }
int cnb_dist_bcast(double *v, int n) { return (void)v, (void)n, 0; }
void cnb_dist_barrier(void) {}
int cnb_dist_start_sum(float *buf, size_t n) { return (void)buf, (void)n, 0; }
int cnb_dist_start_sum_d(double *buf, int n) { return (void)buf, (void)n, 0; }
void cnb_dist_progress(void) {}
int cnb_dist_wait(void) { return 0; }
