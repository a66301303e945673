/*
 * benchpeer.c - the peer: a script (scripts/pytorch-peer.py) that times the same network
 * in another framework, a new process per run; each (model, backend, threads, pass) is
 * reported by its median run.
 *
 * The contract, as scripts/pytorch-peer.py states it too. cnnbench runs
 *   PEER --model NAME --name NAME --batch N --threads N --min-reps N --min-time SECONDS
 *        --warmup N --out DIR/peer.csv [--var VAR=VALUE]...
 * with NAME the [bench.NAME] section and one --var for every variable of the model as it
 * is timed (its [vars] under the section's vars). The peer builds that network or refuses
 * (exit 2: a failure, said in the report); exit 3 means its framework is absent (skipped).
 * It appends one row per pass to peer.csv, writing the header line only into an empty
 * file; cnnbench reads these columns by name and ignores any other:
 *   model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,
 *   images_per_second,create_ms
 * model is NAME, pass "forward" or "train", times in milliseconds per batch (create_ms
 * may be empty), cv the sample sd over the mean.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchint.h"
#include "csv.h"
#include "errors.h"
#include "log.h"

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
             "PyTorch rows from %s: the same networks, variables, batch and threads, timed the "
             "same way; "
             "its OpenMP threads pinned one per core (OMP_PROC_BIND=true, OMP_PLACES=cores) "
             "unless the environment sets them, as unpinned its 2-thread LeNet-5 step is "
             "bimodal from one repetition to the next.%s", bc->peer, runs);
    return 0;
}

#define PEER_FIXED_ARGS 17 /* the program and the options before the --var pairs */

int bench_run_peer(const bconf *bc, const bmodel *m, int threads, results *r)
{
    char out[PATH_MAX + 160], batch[16], th[16], reps[16], mt[32], warm[16];
    char vars[CNB_MAX_VARS][256];
    snprintf(out, sizeof out, "%s/peer.csv", bc->dir);
    snprintf(batch, sizeof batch, "%d", m->batch);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(reps, sizeof reps, "%d", bc->min_reps);
    snprintf(mt, sizeof mt, "%g", bc->min_time);
    snprintf(warm, sizeof warm, "%d", bc->warmup);
    const char *argv[PEER_FIXED_ARGS + 2 * CNB_MAX_VARS + 1] = {
        bc->peer, "--model", m->name, "--name", m->name, "--batch", batch, "--threads", th,
        "--min-reps", reps, "--min-time", mt, "--warmup", warm, "--out", out};
    int argc = PEER_FIXED_ARGS;
    for (int i = 0; i < m->resolved.n; i++) {
        snprintf(vars[i], sizeof vars[i], "%s=%s", m->resolved.names[i], m->resolved.values[i]);
        argv[argc++] = "--var";
        argv[argc++] = vars[i];
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execv(bc->peer, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return cnb_error("%s: could not run: %s", bc->peer, strerror(errno));
    return peer_status(bc, status, r);
}

/* The columns of the contract above, in this order. */
static const char *const peer_columns[] = {
    "model", "backend", "batch", "threads", "pass", "reps", "median_ms", "min_ms", "q1_ms",
    "q3_ms", "cv", "outliers", "images_per_second", "create_ms", NULL};
enum { P_MODEL, P_BACKEND, P_BATCH, P_THREADS, P_PASS, P_REPS, P_MEDIAN, P_MIN, P_Q1, P_Q3,
       P_CV, P_OUTLIERS, P_IPS, P_CREATE, P_COUNT };

/* A number field; NAN when it is empty. */
static double num(const cnb_csv *c, const int *col, int which)
{
    const char *v = cnb_csv_get(c, col[which]);
    return *v ? strtod(v, NULL) : NAN;
}

/* The current record of the peer's CSV as a row. */
static void record_row(const cnb_csv *c, const int *col, row *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->model, sizeof w->model, "%s", cnb_csv_get(c, col[P_MODEL]));
    snprintf(w->backend, sizeof w->backend, "%s", cnb_csv_get(c, col[P_BACKEND]));
    w->batch = atoi(cnb_csv_get(c, col[P_BATCH]));
    w->threads = atoi(cnb_csv_get(c, col[P_THREADS]));
    w->train = strcmp(cnb_csv_get(c, col[P_PASS]), "train") == 0;
    w->s.n = atoi(cnb_csv_get(c, col[P_REPS]));
    w->s.outliers = atoi(cnb_csv_get(c, col[P_OUTLIERS]));
    w->s.median = num(c, col, P_MEDIAN), w->s.min = num(c, col, P_MIN);
    w->s.q1 = num(c, col, P_Q1), w->s.q3 = num(c, col, P_Q3), w->s.cv = num(c, col, P_CV);
    w->ips = num(c, col, P_IPS);
    w->create_ms = num(c, col, P_CREATE);
}

/* Every row of peer.csv, each run its own, their number into *n; NULL and *n = 0 when
 * there is no file (no run wrote one). A file that breaks the contract gives no rows:
 * `err` says where. */
static row *read_runs(const char *path, int *n, char *err, size_t errlen)
{
    cnb_csv c;
    int col[P_COUNT], rc = cnb_csv_open(&c, path);
    row *got = NULL;
    *n = 0;
    if (rc == 0)
        rc = cnb_csv_columns(&c, peer_columns, col);
    while (rc == 0 && (rc = cnb_csv_next(&c)) == 1) {
        row *grown = realloc(got, (size_t)(*n + 1) * sizeof *grown);
        if (!grown) {
            rc = CNB_ENOMEM;
            break;
        }
        got = grown;
        record_row(&c, col, &got[(*n)++]);
        rc = 0;
    }
    if (rc < 0 && rc != CNB_ENOTFOUND) {
        snprintf(err, errlen, "%s", rc == CNB_ENOMEM ? "out of memory" : c.err);
        free(got), got = NULL, *n = 0;
    }
    cnb_csv_close(&c);
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
    char err[1600] = "";
    int n_got;
    row *got = read_runs(path, &n_got, err, sizeof err);
    if (err[0]) {
        cnb_log(CNB_LOG_WARN, "cnnbench", "the peer's rows are left out: %s", err);
        snprintf(r->peer_note, sizeof r->peer_note, "The peer's rows are left out: %s.", err);
    }
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
