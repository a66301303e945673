/*
 * sweep.c - the resumable sweep runner; see sweep.h.
 */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "child.h"
#include "clock.h"
#include "csv.h"
#include "dist.h"
#include "errors.h"
#include "fsutil.h"
#include "log.h"
#include "report.h"
#include "train.h"

/* DIVERGED is a finished result (its loss became NaN; the same settings diverge again):
 * it has a `done` marker and is not rerun without --force. FAILED is not finished.
 * SKIPPED is a cell finished before this run; RUNNING, for a cell this run does not run,
 * means another process holds its lock. WAITING: a cell of the grid whose [select] value
 * is not chosen yet (its variant's selection cells have not all finished); it has no
 * fingerprint until then. */
typedef enum { PENDING, RUNNING, DONE, SKIPPED, DIVERGED, FAILED, INTERRUPTED, WAITING } cell_state;
static const char *const state_names[] = {"pending", "running", "done", "done", "diverged",
                                          "failed", "interrupted", "waiting"};

#define FINISHED(st) ((st) == DONE || (st) == SKIPPED || (st) == DIVERGED)
#define TO_RUN(st) ((st) == PENDING || (st) == FAILED || (st) == INTERRUPTED)

/* A child's exit status: the cell finished (0), diverged (4), was interrupted (130);
 * anything else, or a signal, is a failure whose reason is in its error.txt. */
enum { EXIT_DIVERGED = 4, EXIT_INTERRUPTED = 130 };

typedef struct slot {
    const cnb_cell *cell;
    char dir[PATH_MAX];
    char fingerprint[17];
    cell_state state;
    int selected;       /* in this run's --cell / --shard selection (all in a whole run) */
    int needed;         /* a selection cell this run runs first: selected, or of the
                           variant of a selected waiting cell                           */
    int stale;          /* finished with other settings (another fingerprint)          */
    int ours;           /* this run started it: its state is ours, not read from disk    */
    int forced;         /* finished, but to run again (--force): pending until started   */
    int lock;           /* the cell's .lock while this run runs it, else -1             */
    pid_t pid;
    double started;     /* cnb_now() when it was forked              */
    int timed_out;      /* killed for running past cell_timeout      */
    double mib;         /* estimated memory need                     */
    char message[512];
} slot;

static volatile sig_atomic_t interrupted;

static void on_parent_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_child_signal(int sig)
{
    (void)sig;
    cnb_train_stop();
}

static int read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int write_small(const char *path, const char *text)
{
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "%s\n", text);
    return cnb_atomic_commit(&a);
}

/* flock `op` (LOCK_EX or LOCK_SH, never waiting) on `path`, created when `create`; the fd,
 * or -1 (errno EWOULDBLOCK when another process holds it). */
static int try_lock(const char *path, int op, int create)
{
    int fd = open(path, create ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0666);
    if (fd >= 0 && flock(fd, op | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* The results folder: a whole run locks DIR/.lock exclusively for its whole length
 * (released when the process ends, however it ends), with who holds it written inside; a
 * run of some cells locks it shared. 0 with the lock's fd in *lock; otherwise *lock is
 * -1 and the error names the holder (CNB_EINVAL: wait for it) or the file (CNB_EIO). */
static int lock_results(const char *dir, const cnb_experiment *e, int shared, int *lock)
{
    char path[PATH_MAX + 16], holder[512] = "";
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = *lock = try_lock(path, shared ? LOCK_SH : LOCK_EX, 1);
    if (fd < 0 && errno != EWOULDBLOCK)
        return cnb_error_code(CNB_EIO, "%s: cannot create the lock: %s", path, strerror(errno));
    if (fd < 0) {
        int probe = try_lock(path, LOCK_SH, 0); /* taken: by cell runs, or by a whole run */
        if (probe >= 0) {
            close(probe);
            return cnb_error("%s is in use by runs of single cells (--cell, --shard, a "
                             "cluster's array tasks; see cnnbench status %s); wait for them "
                             "to finish, or run only cells with --cell or --shard", dir, dir);
        }
        probe = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = probe >= 0 ? pread(probe, holder, sizeof holder - 1, 0) : 0;
        holder[got > 0 ? got : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (probe >= 0)
            close(probe);
        return cnb_error("%s is in use by another run (%s); wait for it to finish, or stop "
                         "it, then rerun", dir, holder[0] ? holder : "holder unknown");
    }
    if (shared)
        return 0; /* the holder written inside is the last whole run's: left as it is */
    char host[256] = "?", when[64];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    int n = snprintf(holder, sizeof holder, "pid %ld on %s, cnnbench run %s, since %s\n",
                     (long)getpid(), host, e->conf.path, when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, holder, (size_t)n, 0) != n)
        cnb_log(CNB_LOG_WARN, "cnnbench", "%s: cannot record the lock's holder", path);
    return 0;
}

/* A cell's state as its folder `cell_dir` tells it now, for the settings `fingerprint`:
 * finished (`done` holding the fingerprint; diverged when error.txt is beside it), running
 * (another process holds its .lock), failed (error.txt), or pending. *stale is set when it
 * finished with other settings. `message` gets error.txt. */
static cell_state read_state(const char *cell_dir, const char *fingerprint, char *message,
                             size_t len, int *stale)
{
    char path[PATH_MAX + 32], have[64] = "";
    snprintf(path, sizeof path, "%s/done", cell_dir);
    int finished = read_small(path, have, sizeof have) == 0;
    *stale = finished && strcmp(have, fingerprint) != 0;
    snprintf(path, sizeof path, "%s/error.txt", cell_dir);
    message[0] = '\0';
    int why = read_small(path, message, len) == 0;
    if (finished && !*stale)
        return why ? DIVERGED : SKIPPED;
    snprintf(path, sizeof path, "%s/.lock", cell_dir);
    int fd = try_lock(path, LOCK_SH, 0);
    if (fd < 0 && errno == EWOULDBLOCK) {
        snprintf(message, len, "running in another process");
        return RUNNING;
    }
    if (fd >= 0)
        close(fd);
    return why ? FAILED : PENDING;
}

/* MemAvailable of /proc/meminfo in MiB, or 0 when unknown. */
static double available_mib(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kib = 0.0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib / 1024.0;
}

/* The `jobs` largest selected cells at once must fit in the memory available now. */
static int check_memory(const slot *slots, int n, int jobs)
{
    double have = available_mib(), top = 0.0;
    int big = -1, count = 0;
    for (int i = 0; i < n; i++)
        if (slots[i].selected || slots[i].needed) {
            count++;
            if (big < 0 || slots[i].mib > top)
                top = slots[i].mib, big = i;
        }
    const int at_once = jobs < count ? jobs : count;
    const double need = top * at_once;
    if (big < 0 || have <= 0.0 || need <= have)
        return 0;
    const cnb_cell *c = slots[big].cell;
    return cnb_error("cell %s needs about %.0f MiB (parameters, activations for its batch of "
                     "%d, workspaces for %d thread%s, the data); %d at once need %.0f MiB but "
                     "%.0f MiB are available; lower --jobs, the batch or the data's limits",
                     c->id, top, c->batch, c->threads, c->threads == 1 ? "" : "s", at_once,
                     need, have);
}

/* A results folder belongs to the experiment file that made it (sweep.ini says which):
 * another file under the same name never writes into it without --force. */
static int check_owner(const char *dir, const cnb_experiment *e, int force)
{
    char path[PATH_MAX + 16], line[PATH_MAX + 32], owner[PATH_MAX] = "";
    snprintf(path, sizeof path, "%s/sweep.ini", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* a new folder */
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "owner = %4095[^\n]", owner) == 1)
            break;
    fclose(f);
    char a[PATH_MAX], b[PATH_MAX];
    if (force || !owner[0] || !realpath(owner, a) || !realpath(e->conf.path, b) ||
        strcmp(a, b) == 0)
        return 0; /* a vanished owner file gives no claim either */
    return cnb_error("%s holds the results of %s, not of %s (both name it '%s'); give this "
                     "experiment another [experiment] name, or --force to let it rerun every "
                     "cell there", dir, owner, e->conf.path, e->name);
}

/* The grid as a run sees it before running anything: cells, slots (each cell's folder,
 * fingerprint, estimate, selection, state from its folder), validated. */
typedef struct plan {
    const cnb_experiment *e;
    cnb_cell *cells;
    slot *slots;
    int n;
    int force;          /* --force: the selected cells run again, finished or not  */
    int say;            /* print each [select] choice as it is made                */
    char dir[PATH_MAX];
} plan;

/* A slot's state as its folder tells it now; under --force a selected finished cell is to
 * run again. */
static void read_slot(plan *p, slot *s)
{
    s->state = read_state(s->dir, s->fingerprint, s->message, sizeof s->message, &s->stale);
    if (p->force && s->selected && FINISHED(s->state))
        s->state = PENDING, s->forced = 1;
}

/* The selection cells come first in the grid (cnb_experiment_cells), in blocks of
 * candidates x seeds per variant. */
static int selection_cells(const plan *p)
{
    int n = 0;
    while (n < p->n && p->cells[n].candidate)
        n++;
    return n;
}

/* The validation metric [select] chooses by, from a finished selection cell's final.csv;
 * NAN when it diverged. */
static double selection_metric(const plan *p, const slot *s)
{
    double v[2] = {NAN, NAN};
    static const char *const names[2] = {"val_acc", "val_loss"};
    if (s->state != DIVERGED)
        cnb_final_read(s->dir, names, v, 2);
    return v[p->e->select.by_loss];
}

/* The choice of one variant whose selection cells (block[0..per)) have all finished,
 * applied to its waiting cells, which get their fingerprint and state. */
static int apply_choice(plan *p, const slot *block, int per, double *val, double *score)
{
    const cnb_select *sel = &p->e->select;
    const int n_seeds = per / sel->n;
    for (int j = 0; j < per; j++)
        val[j] = selection_metric(p, &block[j]);
    int best = cnb_select_best(val, sel->n, n_seeds, sel->by_loss, score);
    char how[256];
    if (best >= 0)
        snprintf(how, sizeof how, "%s = %s (%s %.6f, the mean over %d seed%s; best of %d "
                 "candidates)", sel->key, sel->values[best], cnb_select_by_name(sel->by_loss),
                 score[best], n_seeds, n_seeds == 1 ? "" : "s", sel->n);
    int said = 0;
    for (int i = selection_cells(p); i < p->n; i++) {
        slot *s = &p->slots[i];
        cnb_cell *c = &p->cells[i];
        if (strcmp(c->variant, block[0].cell->variant) != 0 || s->ours)
            continue;
        if (best < 0) {
            s->state = WAITING, s->fingerprint[0] = '\0', c->waits = 1;
            snprintf(s->message, sizeof s->message, "not run: every [select] candidate of its "
                     "variant diverged; give %s smaller values", sel->key);
            continue;
        }
        char fp[17];
        cnb_cell_choose(p->e, c, sel->values[best], how);
        int rc = cnb_cell_fingerprint(p->e, c, fp);
        if (rc)
            return rc;
        if (strcmp(fp, s->fingerprint) != 0) { /* newly chosen (or chosen otherwise) */
            snprintf(s->fingerprint, sizeof s->fingerprint, "%s", fp);
            read_slot(p, s);
            if (p->say && !said++)
                printf("selection for %s: %s\n", c->variant, how);
        }
    }
    return 0;
}

/* [select]: for each variant whose selection cells have all finished (their states as
 * the slots hold them), the choice (select.h) for its cells; the cells of the other
 * variants wait, saying why. */
static int plan_resolve(plan *p)
{
    const cnb_select *sel = &p->e->select;
    if (!sel->key[0])
        return 0;
    const int n_sel = selection_cells(p), per = sel->n * (sel->n_seeds ? sel->n_seeds : 1);
    double *val = malloc((size_t)per * sizeof *val), *score = malloc((size_t)sel->n * sizeof *score);
    int rc = val && score ? 0 : CNB_ENOMEM;
    for (int b = 0; b < n_sel && rc == 0; b += per) {
        const slot *open = NULL; /* a selection cell not finished */
        for (int j = b; j < b + per; j++) {
            const slot *s = &p->slots[j];
            if (!FINISHED(s->state) && (!open || s->state == FAILED))
                open = s;
        }
        if (!open) {
            rc = apply_choice(p, &p->slots[b], per, val, score);
            continue;
        }
        for (int i = n_sel; i < p->n; i++)
            if (strcmp(p->cells[i].variant, p->cells[b].variant) == 0 && !p->slots[i].ours) {
                slot *s = &p->slots[i];
                s->state = WAITING, s->fingerprint[0] = '\0', p->cells[i].waits = 1;
                snprintf(s->message, sizeof s->message, "%s for its variant's selection: "
                         "cell %s %s", open->state == FAILED ? "not run" : "waits",
                         open->cell->id, open->state == FAILED ? "failed; rerun" : "has not "
                         "finished");
            }
    }
    free(val);
    free(score);
    return rc;
}

static void manifest_row(FILE *f, const char *id, const char *variant, unsigned long long seed,
                         const char *backend, int threads, const char *state,
                         const char *fingerprint, const char *message, double mib,
                         const char *candidate)
{
    fprintf(f, "%s,", id);
    cnb_csv_field(f, variant);
    fprintf(f, ",%llu,%s,%d,%s,%s,", seed, backend, threads, state, fingerprint);
    cnb_csv_field(f, message);
    fprintf(f, ",%.0f,", mib);
    cnb_csv_field(f, candidate);
    fputc('\n', f);
}

/* candidate: a selection cell's value of [select]'s key (sweep.ini names the key) */
static const char manifest_header[] =
    "cell,variant,seed,backend,threads,status,fingerprint,message,mib,candidate\n";

/* The manifest's own lock, held while its states are read and it is written: concurrent
 * writers then leave the newest snapshot last. */
static int lock_manifest(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/.manifest.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0)
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    return fd;
}

/* The states of the cells this run does not run, as their folders tell now, and the
 * [select] choices they make. */
static int refresh(plan *p)
{
    for (int i = 0; i < p->n; i++) {
        slot *s = &p->slots[i];
        if (!s->ours && !s->forced && !p->cells[i].waits)
            s->state = read_state(s->dir, s->fingerprint, s->message, sizeof s->message,
                                  &s->stale);
    }
    return plan_resolve(p);
}

/* Writes the manifest: the states of this run's own cells as it knows them, every other
 * cell's as its folder tells now (and the [select] choices they make), under the
 * manifest's lock so that concurrent writers leave the newest snapshot last. */
static int write_manifest(plan *p)
{
    char path[PATH_MAX + 32];
    slot *slots = p->slots;
    int lock = lock_manifest(p->dir), rc = refresh(p);
    snprintf(path, sizeof path, "%s/manifest.csv", p->dir);
    cnb_atomic a;
    if (rc == 0)
        rc = cnb_atomic_open(&a, path) ? CNB_EIO : 0;
    if (rc == 0) {
        fputs(manifest_header, a.f);
        for (int i = 0; i < p->n; i++) {
            const cnb_cell *c = slots[i].cell;
            manifest_row(a.f, c->id, c->variant, (unsigned long long)c->seed, c->backend,
                         c->threads, state_names[slots[i].state], slots[i].fingerprint,
                         slots[i].message, slots[i].mib, c->candidate ? c->candidate : "");
        }
        rc = cnb_atomic_commit(&a);
    }
    if (lock >= 0)
        close(lock);
    return rc;
}

static int write_sweep_info(const cnb_experiment *e, const char *dir, int n_cells)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sweep.ini", dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    char owner[PATH_MAX]; /* absolute: the folder's owner, whatever the working folder */
    if (!realpath(e->conf.path, owner))
        snprintf(owner, sizeof owner, "%s", e->conf.path);
    fprintf(a.f, "; written by cnnbench run; read by cnnbench report/plot\n[sweep]\n"
                 "experiment = %s\nowner = %s\nname = %s\nmodel = %s\nprofile = %s\n"
                 "baseline = %s\ncells = %d\nepochs = %d\n",
            e->conf.path, owner, e->name, e->model, e->profile[0] ? e->profile : "(none)",
            e->baseline, n_cells, e->train.epochs);
    if (e->select.key[0]) /* the manifest's candidate column holds each selection cell's */
        fprintf(a.f, "select = %s\nselect_by = %s\n", e->select.key,
                cnb_select_by_name(e->select.by_loss));
    return cnb_atomic_commit(&a);
}

/* Before a cell runs: a finished cell run again (--force) starts afresh, and the reason
 * of an earlier failure goes. */
static void clear_cell(const slot *s)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/done", s->dir);
    if (unlink(path) == 0) {
        snprintf(path, sizeof path, "%s/" CNB_CHECKPOINT_FILE, s->dir);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/error.txt", s->dir);
    unlink(path);
}

/* Runs one cell in this process: 0 done, EXIT_DIVERGED, EXIT_INTERRUPTED, or 1 failed (the
 * reason in error.txt). A diverged cell is marked done, its reason kept in error.txt. */
static int run_cell(const cnb_experiment *e, cnb_registry *reg, const slot *s, int progress,
                    int label)
{
    char path[PATH_MAX + 32], prefix[300] = "";
    if (label)
        snprintf(prefix, sizeof prefix, "[%s] ", s->cell->id);
    char done[PATH_MAX + 32];
    snprintf(done, sizeof done, "%s/done", s->dir);
    snprintf(path, sizeof path, "%s/error.txt", s->dir);
    clear_cell(s);
    int rc = cnb_cell_run(e, s->cell, reg, s->dir, progress, prefix);
    if (rc == CNB_EDIVERGED && write_small(path, cnb_last_warning()) != 0)
        rc = CNB_EIO;
    if (rc == 0 || rc == CNB_EDIVERGED) {
        int diverged = rc == CNB_EDIVERGED;
        rc = write_small(done, s->fingerprint);
        rc = rc == 0 && diverged ? CNB_EDIVERGED : rc;
    }
    if (rc != 0 && rc != CNB_EINTR && rc != CNB_EDIVERGED)
        write_small(path, cnb_last_error()[0] ? cnb_last_error() : cnb_status_name(rc));
    fflush(stdout);
    return rc == 0 ? 0 : rc == CNB_EINTR ? EXIT_INTERRUPTED : rc == CNB_EDIVERGED ? EXIT_DIVERGED : 1;
}

/* In the child: run one cell, exit with run_cell's status. */
static void run_child(const cnb_experiment *e, cnb_registry *reg, const slot *s, int progress,
                      int label)
{
    struct sigaction sa = {.sa_handler = on_child_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cnb_child_exit(run_cell(e, reg, s, progress, label));
}

static void reap(slot *s, int status, long timeout)
{
    char path[PATH_MAX + 32];
    s->pid = 0;
    if (s->lock >= 0)
        close(s->lock); /* the child has ended: the cell is free */
    s->lock = -1;
    if (s->timed_out) {
        s->state = FAILED;
        snprintf(s->message, sizeof s->message, "killed after %ld s without finishing "
                 "([experiment] cell_timeout = %ld): hung, or give it more time", timeout,
                 timeout);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->state = DONE;
        s->message[0] = '\0';
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_INTERRUPTED) {
        s->state = INTERRUPTED;
        snprintf(s->message, sizeof s->message, "interrupted; rerun to redo");
        return;
    }
    s->state = WIFEXITED(status) && WEXITSTATUS(status) == EXIT_DIVERGED ? DIVERGED : FAILED;
    snprintf(path, sizeof path, "%s/error.txt", s->dir);
    if (read_small(path, s->message, sizeof s->message) != 0) {
        if (WIFSIGNALED(status))
            snprintf(s->message, sizeof s->message, "crashed with signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(s->message, sizeof s->message, "exit status %d", WEXITSTATUS(status));
    }
}

/* Takes the cell for this run: its folder made and its .lock held, then its `done` read
 * again (another process may have finished it since the states were read). 1 when this
 * run is to run it; 0 when it is running elsewhere or finished meanwhile (s->state says);
 * -1 with s->message when the folder cannot be made. */
static int take_cell(slot *s, int force)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/.lock", s->dir);
    if (cnb_mkdirs(s->dir) != 0 || (s->lock = try_lock(path, LOCK_EX, 1)) < 0) {
        if (errno == EWOULDBLOCK) {
            s->state = RUNNING;
            snprintf(s->message, sizeof s->message, "running in another process");
            return 0;
        }
        snprintf(s->message, sizeof s->message, "cannot lock its folder: %s", strerror(errno));
        return -1;
    }
    int stale;
    cell_state now = read_state(s->dir, s->fingerprint, s->message, sizeof s->message, &stale);
    if (!force && FINISHED(now)) {
        close(s->lock);
        s->lock = -1;
        s->state = now;
        return 0;
    }
    return 1;
}

static void plan_free(plan *p)
{
    free(p->slots);
    cnb_cells_free(p->cells, p->n);
}

/* Is cell i of n in the selection of `o`? Unknown --cell ids were refused before. */
static int selected(const cnb_sweep_opts *o, const cnb_cell *c, int i)
{
    if (o->shards > 0 && i % o->shards != o->shard)
        return 0;
    if (o->n_cells == 0)
        return 1;
    for (int k = 0; k < o->n_cells; k++)
        if (strcmp(o->cells[k], c->id) == 0)
            return 1;
    return 0;
}

static int plan_make(plan *p, const cnb_experiment *e, cnb_registry *reg,
                     const cnb_sweep_opts *o)
{
    memset(p, 0, sizeof *p);
    p->e = e;
    p->force = o->force;
    p->say = !o->list && !o->dry_run && cnb_dist_rank() == 0;
    int rc = cnb_experiment_cells(e, &p->cells, &p->n);
    double *mib = NULL;
    if (rc == 0) {
        p->slots = calloc(p->n ? (size_t)p->n : 1, sizeof *p->slots);
        mib = calloc(p->n ? (size_t)p->n : 1, sizeof *mib);
        rc = p->slots && mib ? 0 : CNB_ENOMEM;
    }
    for (int k = 0; k < o->n_cells && rc == 0; k++) { /* a wrong id is bad input */
        int found = 0;
        for (int i = 0; i < p->n && !found; i++)
            found = strcmp(o->cells[k], p->cells[i].id) == 0;
        if (!found)
            rc = cnb_error("%s: no cell '%s' in the grid (%d cells; `cnnbench run %s "
                           "--dry-run` lists them, --list-cells those still to run)",
                           e->conf.path, o->cells[k], p->n, e->conf.path);
    }
    if (rc == 0)
        rc = cnb_experiment_validate(e, p->cells, p->n, reg, mib); /* nothing runs on bad input */
    if (rc == 0 && !o->dry_run && !o->list)
        rc = cnb_experiment_cache_build(e); /* before any cell reads it */
    if (rc == 0)
        cnb_experiment_dir(e, p->dir, sizeof p->dir);
    for (int i = 0; i < p->n && rc == 0; i++) {
        slot *s = &p->slots[i];
        s->cell = &p->cells[i];
        s->mib = mib[i];
        s->lock = -1;
        s->selected = selected(o, s->cell, i);
        if (snprintf(s->dir, sizeof s->dir, "%s/%s", p->dir, s->cell->id) >= (int)sizeof s->dir)
            rc = cnb_error("%s/%s: path too long", p->dir, s->cell->id);
        else if (!s->cell->waits) /* a waiting cell's comes with its [select] choice */
            rc = cnb_cell_fingerprint(e, s->cell, s->fingerprint);
    }
    for (int i = 0; i < p->n && rc == 0; i++) /* the selection cells this run runs first */
        for (int j = 0; p->slots[i].selected && p->cells[i].waits && j < p->n; j++)
            p->slots[j].needed |= p->cells[j].candidate &&
                                  strcmp(p->cells[j].variant, p->cells[i].variant) == 0;
    for (int i = 0; i < p->n && rc == 0; i++)
        p->slots[i].needed |= p->slots[i].selected && p->cells[i].candidate;
    free(mib);
    return rc;
}

/* Refuses (CNB_EINVAL, said) a folder whose finished cells ran with other settings,
 * unless --force. */
static int check_stale(const plan *p, const cnb_experiment *e, const cnb_sweep_opts *o)
{
    int stale = 0;
    const char *first_stale = NULL;
    for (int i = 0; i < p->n; i++)
        if (p->slots[i].stale && !o->force && stale++ == 0)
            first_stale = p->cells[i].id;
    if (!stale || o->dry_run || o->list) /* finished cells are never unmarked silently */
        return 0;
    return cnb_error("%s: %d finished cell%s (%s%s) ran with other settings than the "
                     "experiment %s now gives; rerun with --force to replace %s, or give the "
                     "experiment another [experiment] name to keep %s", p->dir, stale,
                     stale == 1 ? "" : "s", first_stale, stale > 1 ? ", ..." : "", e->conf.path,
                     stale == 1 ? "it" : "them", stale == 1 ? "it" : "them");
}

/* Reads every cell's state from its folder, makes the [select] choices whose selection
 * has finished, and checks that no finished cell ran with other settings. */
static int plan_read_states(plan *p, const cnb_experiment *e, const cnb_sweep_opts *o)
{
    for (int i = 0; i < p->n; i++)
        if (!p->cells[i].waits)
            read_slot(p, &p->slots[i]);
    int rc = plan_resolve(p);
    return rc ? rc : check_stale(p, e, o);
}

/* Locks the folder (shared for a partial run), checks its owner, reads the states and
 * writes sweep.ini and the manifest: what every run does before its first cell. */
static int plan_open(plan *p, const cnb_experiment *e, const cnb_sweep_opts *o, int shared,
                     int *lock)
{
    int rc = cnb_mkdirs(p->dir);
    if (rc == 0)
        rc = lock_results(p->dir, e, shared, lock);
    if (rc == 0)
        rc = check_owner(p->dir, e, o->force);
    if (rc == 0)
        rc = plan_read_states(p, e, o);
    if (rc == 0 && (write_sweep_info(e, p->dir, p->n) || write_manifest(p)))
        rc = CNB_EFAILED; /* the results folder, not the input: a failure at run time */
    return rc;
}

static void print_dry_run(const plan *p, const cnb_experiment *e, const cnb_sweep_opts *o)
{
    int to_run = 0, chosen = 0, wi = 4, wv = 7;
    for (int i = 0; i < p->n; i++) {
        chosen += p->slots[i].selected;
        to_run += p->slots[i].selected && (TO_RUN(p->slots[i].state) ||
                                           p->slots[i].state == WAITING);
        wi = (int)strlen(p->cells[i].id) > wi ? (int)strlen(p->cells[i].id) : wi;
        wv = (int)strlen(p->cells[i].variant) > wv ? (int)strlen(p->cells[i].variant) : wv;
    }
    printf("%s: %d cell%s", e->conf.path, p->n, p->n == 1 ? "" : "s");
    if (CNB_SWEEP_PARTIAL(o))
        printf(", %d selected", chosen);
    printf(", %d to run, %d already finished (results in %s)%s%s\n\n", to_run,
           chosen - to_run, p->dir, e->profile[0] ? ", profile " : "", e->profile);
    printf("%-4s %-*s  %-*s  %5s %-10s %7s %9s  %s\n", "#", wi, "cell", wv, "variant", "seed",
           "backend", "threads", "~MiB", "state");
    for (int i = 0; i < p->n; i++) {
        const slot *s = &p->slots[i];
        const char *what = !s->selected && s->needed && TO_RUN(s->state)
                               ? "to run first (a selected cell's selection)"
                           : !s->selected          ? "not selected"
                           : s->state == WAITING   ? "to run after its selection"
                           : s->state == RUNNING   ? "running elsewhere"
                           : s->state == DIVERGED  ? "finished (diverged)"
                           : FINISHED(s->state)    ? "finished"
                           : s->state == FAILED    ? "to run (failed before)"
                                                   : "to run";
        printf("%-4d %-*s  %-*s  %5llu %-10s %7d %9.0f  %s\n", i + 1, wi, s->cell->id, wv,
               s->cell->variant, (unsigned long long)s->cell->seed, s->cell->backend,
               s->cell->threads, s->mib, what);
    }
}

int cnb_sweep_prepare(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o,
                      char *dir, size_t len, int *lock)
{
    plan p;
    *lock = -1;
    int rc = plan_make(&p, e, reg, o);
    if (rc == 0)
        rc = plan_open(&p, e, o, 1, lock);
    if (rc == 0)
        snprintf(dir, len, "%s", p.dir);
    if (rc && *lock >= 0)
        close(*lock), *lock = -1;
    plan_free(&p);
    return rc;
}

/* Starts and reaps the cells still to run, `jobs` at a time, keeping the manifest
 * current; returns with every child reaped. `selection`: the selection cells this run
 * needs, else the selected cells of the grid; a cell this run has run is not run again.
 * *lost is set when the manifest could not be written (no further cell is started then). */
static void run_cells(plan *p, const cnb_experiment *e, cnb_registry *reg,
                      const cnb_sweep_opts *o, int selection, int to_run, int *lost)
{
    struct sigaction sa = {.sa_handler = on_parent_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    const int n = p->n;
    slot *slots = p->slots;
    int running = 0, next = 0;
    for (;;) {
        while (!interrupted && !*lost && running < o->jobs && next < n) {
            slot *s = &slots[next++];
            int mine = selection ? s->needed : s->selected && !s->cell->candidate;
            if (!mine || s->ours || !TO_RUN(s->state))
                continue;
            int take = take_cell(s, o->force && s->selected);
            if (take <= 0) {
                if (take < 0)
                    s->ours = 1, s->state = FAILED;
                continue;
            }
            s->ours = 1;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                run_child(e, reg, s, o->progress && (o->jobs == 1 || to_run == 1),
                          o->jobs > 1 && to_run > 1);
            if (pid < 0) {
                s->state = FAILED;
                snprintf(s->message, sizeof s->message, "fork: %s", strerror(errno));
                close(s->lock);
                s->lock = -1;
                continue;
            }
            s->pid = pid;
            s->state = RUNNING;
            s->started = cnb_now();
            running++;
            *lost |= write_manifest(p) != 0;
        }
        if (running == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, e->cell_timeout ? WNOHANG : 0);
        if (pid == 0) { /* a limit to watch: kill the cells past it, look again soon */
            for (int i = 0; i < n; i++)
                if (slots[i].pid > 0 && !slots[i].timed_out &&
                    cnb_now() - slots[i].started > (double)e->cell_timeout)
                    slots[i].timed_out = 1, kill(slots[i].pid, SIGKILL);
            struct timespec nap = {0, 50 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++)
            if (slots[i].pid == pid) {
                reap(&slots[i], status, e->cell_timeout);
                running--;
                if (slots[i].state == DIVERGED || slots[i].state == FAILED)
                    fprintf(stderr, "cnnbench: cell %s %s: %s\n", slots[i].cell->id,
                            state_names[slots[i].state], slots[i].message);
                break;
            }
        *lost |= write_manifest(p) != 0; /* start no more cells: stop cleanly */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

/* The selection cells this run needs, run first; then, while any of them runs in another
 * process, wait for it (and run it should that process leave it unfinished). */
static void run_selection(plan *p, const cnb_experiment *e, cnb_registry *reg,
                          const cnb_sweep_opts *o, int to_run, int *lost)
{
    for (int said = 0;; said++) {
        run_cells(p, e, reg, o, 1, to_run, lost);
        int elsewhere = 0;
        for (int i = 0; i < p->n; i++) {
            slot *s = &p->slots[i];
            if (s->needed && !s->ours && s->state == RUNNING)
                s->state = read_state(s->dir, s->fingerprint, s->message, sizeof s->message,
                                      &s->stale);
            elsewhere += s->needed && !s->ours && s->state == RUNNING;
        }
        if (!elsewhere || interrupted || *lost)
            return;
        if (!said) {
            printf("waiting for %d selection cell%s running in other processes\n", elsewhere,
                   elsewhere == 1 ? "" : "s");
            fflush(stdout);
        }
        struct timespec nap = {1, 0};
        nanosleep(&nap, NULL);
    }
}

/* The end of a run, from its cells' states: the summary (each of its cells without a
 * clean result, and why), its status, and the report. A whole run reports what it has; a
 * partial one only when the grid is complete, so that whichever process finishes the last
 * cell writes it. */
static int conclude(plan *p, int partial, int lost, int interrupted_run)
{
    int done = 0, just = 0, diverged = 0, failed = 0, stopped = 0, elsewhere = 0, rc = 0;
    int waiting = 0; /* selected cells of the grid without a [select] choice */
    for (int i = 0; i < p->n; i++) {
        const slot *s = &p->slots[i];
        done += FINISHED(s->state);
        just += s->ours && (s->state == DONE || s->state == DIVERGED);
        diverged += s->state == DIVERGED;
        failed += s->ours && s->state == FAILED;
        stopped += s->selected && (s->state == INTERRUPTED || (s->state == PENDING && !s->ours));
        elsewhere += s->selected && !s->ours && s->state == RUNNING;
        waiting += s->selected && s->state == WAITING;
    }
    printf("\n%d of %d cells finished (%d just now; %d diverged), %d failed", done, p->n, just,
           diverged, failed);
    if (elsewhere)
        printf(", %d running in another process", elsewhere);
    if (waiting && !interrupted_run)
        printf(", %d not run (no [select] choice)", waiting);
    printf("%s\n", stopped && !lost ? "; interrupted: rerun the same command to finish the rest"
                                    : "");
    for (int i = 0; i < p->n; i++) /* each of this run's cells without a clean result, and why */
        if ((p->slots[i].state == DIVERGED && (p->slots[i].ours || !partial)) ||
            (p->slots[i].state == FAILED && p->slots[i].ours) ||
            (p->slots[i].state == WAITING && p->slots[i].selected && !interrupted_run))
            printf("  %-8s %s: %s\n", state_names[p->slots[i].state], p->slots[i].cell->id,
                   p->slots[i].message);
    if (partial && done < p->n && !stopped)
        printf("the report is written when every cell has finished (or by cnnbench report "
               "%s)\n", p->dir);
    fflush(stdout);
    if (lost) {
        rc = cnb_error_code(CNB_EFAILED, "%s/manifest.csv: cannot record the cells' states (is "
                            "the disk full?); no further cell was started: free space and "
                            "rerun", p->dir);
    } else if (interrupted_run || stopped) {
        rc = CNB_EINTR;
    } else if (failed || waiting) {
        if (failed)
            rc = cnb_error_code(CNB_EFAILED, "%d cell%s failed at run time (listed above); "
                                "see %s/manifest.csv and each cell's error.txt; rerun to redo "
                                "them", failed, failed == 1 ? "" : "s", p->dir);
        if (waiting)
            rc = cnb_error_code(CNB_EFAILED, "%d cell%s could not run: [select] chose no "
                                "value for %s (listed above)", waiting,
                                waiting == 1 ? "" : "s", waiting == 1 ? "it" : "them");
    }
    int reportable = 0; /* cells of the grid with a result: what the report tabulates */
    for (int i = 0; i < p->n; i++)
        reportable += !p->cells[i].candidate && (p->slots[i].state == DONE ||
                                                 p->slots[i].state == SKIPPED);
    if (rc != CNB_EINTR && reportable && (!partial || done == p->n)) {
        int report_rc = cnb_report_write(p->dir); /* said; a failure at run time (disk full) */
        rc = rc ? rc : report_rc ? CNB_EFAILED : 0;
    }
    return rc;
}

/* Under mpirun with more than one rank (dist.h): every rank runs the selected cells in
 * this process, in the same order, each cell data-parallel over all of them, since
 * Open MPI does not survive a fork after MPI_Init (a fork-and-exec, as of gnuplot for the
 * report, is fine). Rank 0 alone locks, reads the states and writes (sweep.ini, the
 * manifest, done and error.txt, the report), and tells the others which cells to run and
 * how each ended; a cell's failure on one rank stops every rank (train.c). */
static int run_ranks(plan *p, const cnb_experiment *e, cnb_registry *reg,
                     const cnb_sweep_opts *o)
{
    const int lead = cnb_dist_rank() == 0, partial = CNB_SWEEP_PARTIAL(o);
    int lock = -1, rc = lead ? plan_open(p, e, o, partial, &lock) : 0, lost = 0;
    double v = rc; /* rank 0's verdict: every rank goes on or stops with it */
    cnb_dist_bcast(&v, 1);
    rc = (int)v;
    if (rc == 0 && lead)
        printf("%s: %d cells, data-parallel over %d ranks, one cell after another; results "
               "in %s\n", e->conf.path, p->n, cnb_dist_size(), p->dir);
    struct sigaction sa = {.sa_handler = on_child_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int); /* a cell stops at a step every rank agrees on */
    sigaction(SIGTERM, &sa, &old_term);
    int stopped = 0;
    for (int i = 0; i < p->n && rc == 0 && !stopped && !lost; i++) {
        slot *s = &p->slots[i];
        double take = 0; /* 1: run it; 0: finished, running elsewhere, not selected */
        if (lead && (s->needed || s->selected) && TO_RUN(s->state)) { /* selection first */
            take = take_cell(s, o->force && s->selected);
            s->ours = take != 0;
            s->state = take > 0 ? RUNNING : take < 0 ? FAILED : s->state;
            if (take > 0) {
                clear_cell(s); /* before the others look for its checkpoint */
                lost |= write_manifest(p) != 0;
            }
        }
        cnb_dist_bcast(&take, 1);
        if (take <= 0)
            continue;
        if (!lead && s->cell->waits && refresh(p) == 0 && s->cell->waits)
            fprintf(stderr, "cnnbench: rank %d: cell %s: no [select] choice in %s, which rank "
                    "0 sees made; the results folder must be one every rank sees\n",
                    cnb_dist_rank(), s->cell->id, p->dir); /* the weights check stops it */
        double status;
        if (lead) {
            status = run_cell(e, reg, s, o->progress, 0);
            close(s->lock);
            s->lock = -1;
            s->state = status == 0                ? DONE
                       : status == EXIT_DIVERGED   ? DIVERGED
                       : status == EXIT_INTERRUPTED ? INTERRUPTED
                                                   : FAILED;
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/error.txt", s->dir);
            if (s->state == DIVERGED || s->state == FAILED)
                read_small(path, s->message, sizeof s->message);
            lost |= write_manifest(p) != 0;
        } else {
            cnb_cell_run(e, s->cell, reg, s->dir, 0, ""); /* how it ended: rank 0 says */
            status = 0;
        }
        cnb_dist_bcast(&status, 1);
        stopped = status == EXIT_INTERRUPTED;
        double l = lost;
        cnb_dist_bcast(&l, 1);
        lost = l != 0;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc == 0) /* rank 0 says how it ended; the others only whether it was stopped */
        rc = lead ? conclude(p, partial, lost, stopped) : stopped ? CNB_EINTR : 0;
    if (lock >= 0)
        close(lock);
    return rc;
}

int cnb_sweep_run(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o)
{
    const int partial = CNB_SWEEP_PARTIAL(o);
    plan p;
    int lock = -1, rc = plan_make(&p, e, reg, o);
    if (rc == 0 && (o->dry_run || o->list)) { /* read only: no lock, nothing written */
        rc = plan_read_states(&p, e, o);
        if (rc == 0 && o->dry_run)
            print_dry_run(&p, e, o);
        for (int i = 0; i < p.n && rc == 0 && !o->dry_run; i++)
            if (p.slots[i].selected && (TO_RUN(p.slots[i].state) || p.slots[i].state == WAITING))
                printf("%s\n", p.cells[i].id);
        if (rc == 0 && o->dry_run)
            rc = check_memory(p.slots, p.n, o->jobs); /* after the table: it says why */
        goto out;
    }
    if (rc == 0)
        rc = check_memory(p.slots, p.n, o->jobs);
    if (rc == 0 && cnb_dist_size() > 1) { /* data-parallel over mpirun's ranks */
        rc = run_ranks(&p, e, reg, o);
        goto out;
    }
    if (rc == 0)
        rc = plan_open(&p, e, o, partial, &lock);
    if (rc)
        goto out;
    int to_run = 0, chosen = 0, active = 0;
    for (int i = 0; i < p.n; i++) {
        const slot *s = &p.slots[i];
        chosen += s->selected;
        active += s->selected || s->needed;
        to_run += (s->selected || s->needed) && (TO_RUN(s->state) || s->state == WAITING);
    }
    printf("%s: %d cell%s", e->conf.path, p.n, p.n == 1 ? "" : "s");
    if (partial)
        printf(", %d selected", chosen);
    printf(", %d to run, %d already finished or running; %d at a time; results in %s\n",
           to_run, active - to_run, o->jobs, p.dir);
    fflush(stdout);

    int lost = 0; /* the manifest could not be written */
    interrupted = 0;
    run_selection(&p, e, reg, o, to_run, &lost); /* the grid's cells wait for its choices */
    if (!lost && !interrupted && (rc = refresh(&p)) == 0 && (rc = check_stale(&p, e, o)) == 0)
        run_cells(&p, e, reg, o, 0, to_run, &lost);
    if (rc)
        goto out;
    if (!lost)
        lost = write_manifest(&p) != 0; /* everyone's latest states */

    rc = conclude(&p, partial, lost, interrupted);
out:
    if (lock >= 0)
        close(lock); /* releases the flock */
    plan_free(&p);
    return rc;
}

/* The manifest's columns; mib and candidate are absent from older ones (-1). */
enum { M_CELL, M_VARIANT, M_SEED, M_BACKEND, M_THREADS, M_FINGERPRINT, M_MESSAGE, M_MIB,
       M_CANDIDATE, M_COLUMNS };

/* One row of the manifest into a new entry of *cells, its state read from its folder. */
static int add_cell_info(const char *dir, const cnb_csv *c, const int *col,
                         cnb_cell_info **cells, int *n)
{
    cnb_cell_info *grown = realloc(*cells, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return CNB_ENOMEM;
    *cells = grown;
    cnb_cell_info *ci = &grown[(*n)++];
    memset(ci, 0, sizeof *ci);
    snprintf(ci->id, sizeof ci->id, "%s", cnb_csv_get(c, col[M_CELL]));
    snprintf(ci->variant, sizeof ci->variant, "%s", cnb_csv_get(c, col[M_VARIANT]));
    ci->seed = strtoull(cnb_csv_get(c, col[M_SEED]), NULL, 10);
    snprintf(ci->backend, sizeof ci->backend, "%s", cnb_csv_get(c, col[M_BACKEND]));
    ci->threads = atoi(cnb_csv_get(c, col[M_THREADS]));
    snprintf(ci->fingerprint, sizeof ci->fingerprint, "%s", cnb_csv_get(c, col[M_FINGERPRINT]));
    ci->mib = col[M_MIB] >= 0 ? strtod(cnb_csv_get(c, col[M_MIB]), NULL) : 0.0;
    snprintf(ci->candidate, sizeof ci->candidate, "%s",
             col[M_CANDIDATE] >= 0 ? cnb_csv_get(c, col[M_CANDIDATE]) : "");
    char cell_dir[PATH_MAX + 200];
    snprintf(cell_dir, sizeof cell_dir, "%s/%s", dir, ci->id);
    int stale;
    cell_state st = read_state(cell_dir, ci->fingerprint, ci->message, sizeof ci->message,
                               &stale);
    if (!ci->fingerprint[0] && st != RUNNING) /* no [select] choice when last written */
        st = WAITING, snprintf(ci->message, sizeof ci->message, "%s",
                               cnb_csv_get(c, col[M_MESSAGE]));
    ci->state = state_names[st];
    return 0;
}

int cnb_results_cells(const char *dir, cnb_cell_info **cells, int *n)
{
    static const char *const want[] = {"cell", "variant", "seed", "backend", "threads",
                                       "fingerprint", "message", NULL};
    char path[PATH_MAX + 32];
    *cells = NULL;
    *n = 0;
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    cnb_csv c;
    int col[M_COLUMNS], more = 0, rc = cnb_csv_open(&c, path);
    if (rc == CNB_ENOTFOUND)
        rc = cnb_error("%s; give a folder that cnnbench run wrote, e.g. "
                       "results/lenet5-ablation", c.err);
    else if (rc || cnb_csv_columns(&c, want, col))
        rc = cnb_error("%s: not a manifest: %s", path, c.err);
    col[M_MIB] = cnb_csv_find(&c, "mib"), col[M_CANDIDATE] = cnb_csv_find(&c, "candidate");
    while (rc == 0 && (more = cnb_csv_next(&c)) == 1)
        rc = add_cell_info(dir, &c, col, cells, n);
    if (rc == 0 && more < 0)
        rc = cnb_error("%s", c.err);
    cnb_csv_close(&c);
    if (rc)
        free(*cells), *cells = NULL, *n = 0;
    return rc;
}

int cnb_results_refresh(const char *dir)
{
    char path[PATH_MAX + 32];
    cnb_cell_info *cells;
    int n, lock = lock_manifest(dir), rc = cnb_results_cells(dir, &cells, &n);
    cnb_atomic a;
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    if (rc == 0 && cnb_atomic_open(&a, path) == 0) {
        fputs(manifest_header, a.f);
        for (int i = 0; i < n; i++)
            manifest_row(a.f, cells[i].id, cells[i].variant, cells[i].seed, cells[i].backend,
                         cells[i].threads, cells[i].state, cells[i].fingerprint,
                         cells[i].message, cells[i].mib, cells[i].candidate);
        rc = cnb_atomic_commit(&a) ? CNB_EFAILED : 0;
    } else if (rc == 0) {
        rc = CNB_EFAILED;
    }
    if (lock >= 0)
        close(lock);
    free(cells);
    return rc;
}
