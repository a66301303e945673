/*
 * benchpeer.c - the peer: a script (scripts/pytorch-peer.py) that times the same network
 * in another framework, a new process per run, and appends rows in bench.csv's columns
 * to <dir>/peer.csv; each (model, backend, threads, pass) is reported by its median run.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchint.h"
#include "errors.h"

/* The peer exited: what its status means for the report. */
static int peer_status(const bconf *bc, int status, results *r)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        snprintf(r->peer_note, sizeof r->peer_note,
                 "PyTorch rows skipped: PyTorch is not installed (Debian package python3-torch; "
                 "install it and rerun to add them).");
        return 1; /* skipped: do not ask again */
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(r->peer_note, sizeof r->peer_note, "peer script %s failed (status %d); its "
                 "rows are missing.", bc->peer, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 1;
    }
    char runs[200] = "";
    if (bc->peer_runs > 1)
        snprintf(runs, sizeof runs, " It ran %d times per model and thread count, each a new "
                 "process; its row is the run with the median time, and the range of the runs' "
                 "medians is given with it.", bc->peer_runs);
    snprintf(r->peer_note, sizeof r->peer_note,
             "PyTorch rows from %s: the same networks, batch and threads, timed the same way; "
             "its OpenMP threads pinned one per core (OMP_PROC_BIND=true, OMP_PLACES=cores) "
             "unless the environment sets them, as unpinned its 2-thread LeNet-5 step is "
             "bimodal from one repetition to the next.%s", bc->peer, runs);
    return 0;
}

int bench_run_peer(const bconf *bc, const bmodel *m, int threads, results *r)
{
    char out[PATH_MAX + 160], batch[16], th[16], reps[16], mt[32], warm[16];
    snprintf(out, sizeof out, "%s/peer.csv", bc->dir);
    snprintf(batch, sizeof batch, "%d", m->batch);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(reps, sizeof reps, "%d", bc->min_reps);
    snprintf(mt, sizeof mt, "%g", bc->min_time);
    snprintf(warm, sizeof warm, "%d", bc->warmup);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bc->peer, bc->peer, "--model", m->name, "--batch", batch, "--threads", th,
              "--min-reps", reps, "--min-time", mt, "--warmup", warm, "--out", out,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return cnb_error("%s: could not run: %s", bc->peer, strerror(errno));
    return peer_status(bc, status, r);
}

/* Every row of peer.csv, each run its own; their number into *n. */
static row *read_runs(const char *path, int *n)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    row *got = NULL;
    *n = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *fld[20];
        int nf = 0;
        for (char *save = NULL, *t = strtok_r(line, ",\n", &save); t && nf < 20;
             t = strtok_r(NULL, ",\n", &save))
            fld[nf++] = t;
        if (nf < 14 || strcmp(fld[0], "model") == 0)
            continue;
        row *grown = realloc(got, (size_t)(*n + 1) * sizeof *grown);
        if (!grown)
            break;
        got = grown;
        row *w = &got[(*n)++];
        memset(w, 0, sizeof *w);
        snprintf(w->model, sizeof w->model, "%s", fld[0]);
        snprintf(w->backend, sizeof w->backend, "%s", fld[1]);
        w->batch = atoi(fld[2]), w->threads = atoi(fld[3]);
        w->train = strcmp(fld[4], "train") == 0;
        w->s.n = atoi(fld[5]);
        w->s.median = atof(fld[6]), w->s.min = atof(fld[7]);
        w->s.q1 = atof(fld[8]), w->s.q3 = atof(fld[9]), w->s.cv = atof(fld[10]);
        w->s.outliers = atoi(fld[11]);
        w->ips = atof(fld[12]);
        w->create_ms = nf > 14 ? atof(fld[14]) : NAN;
    }
    if (f)
        fclose(f);
    return got;
}

static int by_median(const void *a, const void *b)
{
    const row *x = *(const row *const *)a, *y = *(const row *const *)b;
    return (x->s.median > y->s.median) - (x->s.median < y->s.median);
}

/* The GFLOP/s of a peer's row from our own FLOP count of the same model (shares: set
 * when the CSVs are written); NAN without a row of ours to count from. */
static double peer_gflops(const results *r, const row *w)
{
    for (int k = 0; k < r->n_rows; k++)
        if (strcmp(r->rows[k].model, w->model) == 0 && r->rows[k].train == w->train &&
            r->rows[k].gflops > 0)
            return r->rows[k].gflops / r->rows[k].ips * w->ips;
    return NAN;
}

/* The runs of `got` like got[i] (model, backend, threads, pass), not yet taken, into
 * same[], sorted by median; their number. */
static int same_group(const row *got, int n_got, int i, char *taken, const row **same)
{
    int n = 0;
    for (int j = i; j < n_got; j++)
        if (!taken[j] && !strcmp(got[j].model, got[i].model) &&
            !strcmp(got[j].backend, got[i].backend) && got[j].threads == got[i].threads &&
            got[j].train == got[i].train)
            same[n++] = &got[j], taken[j] = 1;
    qsort(same, n, sizeof *same, by_median);
    return n;
}

/* The peer's rows, one per (model, backend, threads, pass): where the peer ran several
 * times (peer_runs), the run with the median time (the lower middle of an even count),
 * with the range of the runs' medians. */
void bench_read_peer_rows(const bconf *bc, results *r)
{
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/peer.csv", bc->dir);
    int n_got;
    row *got = read_runs(path, &n_got);
    const row **same = malloc(sizeof *same * (n_got ? n_got : 1));
    char *taken = calloc(n_got ? n_got : 1, 1);
    for (int i = 0; same && taken && i < n_got; i++) {
        if (taken[i])
            continue;
        int n = same_group(got, n_got, i, taken, same);
        row *grown = realloc(r->rows, (size_t)(r->n_rows + 1) * sizeof *grown);
        if (!grown)
            break;
        r->rows = grown;
        row *w = &r->rows[r->n_rows];
        *w = *same[(n - 1) / 2];
        w->runs = n;
        w->run_min = same[0]->s.median, w->run_max = same[n - 1]->s.median;
        w->share = NAN;
        w->gflops = peer_gflops(r, w);
        r->n_rows++;
    }
    free(same);
    free(taken);
    free(got);
}
