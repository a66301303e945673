/*
 * sweep.c - the resumable sweep runner; see sweep.h.
 */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "fsutil.h"
#include "host.h"
#include "report.h"
#include "train.h"

/* DIVERGED is a finished result (its loss became NaN; the same settings diverge again):
 * it has a `done` marker and is not rerun without --force. FAILED is not finished. */
typedef enum { PENDING, RUNNING, DONE, SKIPPED, DIVERGED, FAILED, INTERRUPTED } cell_state;
static const char *const state_names[] = {"pending", "running", "done", "done", "diverged",
                                          "failed", "interrupted"};

/* A child's exit status: the cell finished (0), diverged (4), was interrupted (130);
 * anything else, or a signal, is a failure whose reason is in its error.txt. */
enum { EXIT_DIVERGED = 4, EXIT_INTERRUPTED = 130 };

typedef struct slot {
    const cnb_cell *cell;
    char dir[PATH_MAX];
    char fingerprint[17];
    cell_state state;
    pid_t pid;
    double started;     /* cnb_now() when it was forked              */
    int timed_out;      /* killed for running past cell_timeout      */
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

/* The results folder's owner: an exclusive flock on DIR/.lock for the whole run (released
 * when the process ends, however it ends), with who holds it written inside. Returns the
 * lock's fd, or -1 with an error naming the holder. */
static int lock_results(const char *dir, const cnb_experiment *e)
{
    char path[PATH_MAX + 16], holder[512] = "";
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return cnb_error("%s: cannot create the lock: %s", path, strerror(errno)), -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        return cnb_error("%s is in use by another run (%s); wait for it to finish, or stop "
                         "it, then rerun", dir, holder[0] ? holder : "holder unknown"), -1;
    }
    char host[256] = "?", when[64];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    int n = snprintf(holder, sizeof holder, "pid %ld on %s, cnnbench run %s, since %s\n",
                     (long)getpid(), host, e->conf.path, when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, holder, (size_t)n, 0) != n)
        cnb_log(CNB_LOG_WARN, "cnnbench", "%s: cannot record the lock's holder", path);
    return fd;
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

/* The `jobs` largest cells at once must fit in the memory available now. */
static int check_memory(const cnb_cell *cells, const double *mib, int n, int jobs)
{
    double have = available_mib(), need = 0.0, top = 0.0;
    int big = 0;
    for (int i = 0; i < n; i++)
        if (mib[i] > top)
            top = mib[i], big = i;
    need = top * (jobs < n ? jobs : n);
    if (have <= 0.0 || need <= have)
        return 0;
    return cnb_error("cell %s needs about %.0f MiB (parameters, activations for its batch of "
                     "%d, workspaces for %d thread%s, the data); %d at once need %.0f MiB but "
                     "%.0f MiB are available; lower --jobs, the batch or the data's limits",
                     cells[big].id, top, cells[big].batch, cells[big].threads,
                     cells[big].threads == 1 ? "" : "s", jobs < n ? jobs : n, need, have);
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

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static int write_manifest(const char *dir, const slot *slots, int n)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "cell,variant,seed,backend,threads,status,fingerprint,message\n");
    for (int i = 0; i < n; i++) {
        const cnb_cell *c = slots[i].cell;
        fprintf(a.f, "%s,", c->id);
        csv_field(a.f, c->variant);
        fprintf(a.f, ",%llu,%s,%d,%s,%s,", (unsigned long long)c->seed, c->backend, c->threads,
                state_names[slots[i].state], slots[i].fingerprint);
        csv_field(a.f, slots[i].message);
        fputc('\n', a.f);
    }
    return cnb_atomic_commit(&a);
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
    return cnb_atomic_commit(&a);
}

/* In the child: run one cell and exit with 0 done, EXIT_DIVERGED, EXIT_INTERRUPTED, or 1
 * failed (the reason in error.txt). A diverged cell is marked done, its reason kept in
 * error.txt. */
static void run_child(const cnb_experiment *e, cnb_registry *reg, const slot *s, int progress,
                      int label)
{
    struct sigaction sa = {.sa_handler = on_child_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char path[PATH_MAX + 32], prefix[300] = "";
    if (label)
        snprintf(prefix, sizeof prefix, "[%s] ", s->cell->id);
    char done[PATH_MAX + 32];
    snprintf(done, sizeof done, "%s/done", s->dir);
    snprintf(path, sizeof path, "%s/error.txt", s->dir);
    if (cnb_mkdirs(s->dir) != 0) {
        fflush(stdout);
        _exit(1);
    }
    if (unlink(done) == 0) { /* a finished cell run again (--force) starts afresh */
        char ckpt[PATH_MAX + 32];
        snprintf(ckpt, sizeof ckpt, "%s/" CNB_CHECKPOINT_FILE, s->dir);
        unlink(ckpt);
    }
    unlink(path);
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
    _exit(rc == 0 ? 0 : rc == CNB_EINTR ? EXIT_INTERRUPTED : rc == CNB_EDIVERGED ? EXIT_DIVERGED : 1);
}

static void reap(slot *s, int status, long timeout)
{
    char path[PATH_MAX + 32];
    s->pid = 0;
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

int cnb_sweep_run(const cnb_experiment *e, cnb_registry *reg, const cnb_sweep_opts *o)
{
    cnb_cell *cells = NULL; /* NULL and 0 when the grid is refused before it is made */
    int n = 0, lock = -1, rc = cnb_experiment_cells(e, &cells, &n);
    slot *slots = rc == 0 ? calloc((size_t)n ? (size_t)n : 1, sizeof *slots) : NULL;
    double *mib = rc == 0 ? calloc((size_t)n ? (size_t)n : 1, sizeof *mib) : NULL;
    if (rc == 0 && (!slots || !mib))
        rc = CNB_ENOMEM;
    if (rc == 0)
        rc = cnb_experiment_validate(e, cells, n, reg, mib); /* nothing runs on bad input */
    if (rc == 0)
        rc = check_memory(cells, mib, n, o->jobs);
    if (rc)
        goto out;
    char dir[PATH_MAX];
    cnb_experiment_dir(e, dir, sizeof dir);
    int to_run = 0, stale = 0; /* stale: finished with other settings */
    const char *first_stale = NULL;
    if (!o->dry_run) { /* read the cells' states as the folder's one owner */
        rc = cnb_mkdirs(dir);
        if (rc == 0 && (lock = lock_results(dir, e)) < 0)
            rc = CNB_EINVAL;
        if (rc == 0)
            rc = check_owner(dir, e, o->force);
        if (rc)
            goto out;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        slot *s = &slots[i];
        s->cell = &cells[i];
        if (snprintf(s->dir, sizeof s->dir, "%s/%s", dir, cells[i].id) >= (int)sizeof s->dir)
            rc = cnb_error("%s/%s: path too long", dir, cells[i].id);
        else
            rc = cnb_cell_fingerprint(e, &cells[i], s->fingerprint);
        char done[PATH_MAX + 32], have[64] = "";
        snprintf(done, sizeof done, "%s/done", s->dir);
        int finished = read_small(done, have, sizeof have) == 0;
        s->state = !o->force && finished && strcmp(have, s->fingerprint) == 0 ? SKIPPED : PENDING;
        if (!o->force && finished && s->state == PENDING && stale++ == 0)
            first_stale = cells[i].id;
        snprintf(done, sizeof done, "%s/error.txt", s->dir); /* finished, but diverged */
        if (s->state == SKIPPED && read_small(done, s->message, sizeof s->message) == 0)
            s->state = DIVERGED;
        to_run += s->state == PENDING;
    }
    if (rc == 0 && stale && !o->dry_run) { /* finished cells are never unmarked silently */
        rc = cnb_error("%s: %d finished cell%s (%s%s) ran with other settings than the "
                       "experiment now gives; rerun with --force to replace %s, or give the "
                       "experiment another [experiment] name to keep %s", dir, stale,
                       stale == 1 ? "" : "s", first_stale, stale > 1 ? ", ..." : "",
                       stale == 1 ? "it" : "them", stale == 1 ? "it" : "them");
        goto out;
    }
    if (rc == 0 && o->dry_run) {
        printf("%s: %d cell%s, %d to run, %d already finished (results in %s)%s%s\n\n",
               e->conf.path, n, n == 1 ? "" : "s", to_run, n - to_run, dir,
               e->profile[0] ? ", profile " : "", e->profile);
        int wi = 4, wv = 7;
        for (int i = 0; i < n; i++) {
            wi = (int)strlen(cells[i].id) > wi ? (int)strlen(cells[i].id) : wi;
            wv = (int)strlen(cells[i].variant) > wv ? (int)strlen(cells[i].variant) : wv;
        }
        printf("%-4s %-*s  %-*s  %5s %-10s %7s %9s  %s\n", "#", wi, "cell", wv, "variant",
               "seed", "backend", "threads", "~MiB", "state");
        for (int i = 0; i < n; i++)
            printf("%-4d %-*s  %-*s  %5llu %-10s %7d %9.0f  %s\n", i + 1, wi, cells[i].id, wv,
                   cells[i].variant, (unsigned long long)cells[i].seed, cells[i].backend,
                   cells[i].threads, mib[i], slots[i].state == PENDING    ? "to run"
                                     : slots[i].state == DIVERGED ? "finished (diverged)"
                                                                  : "finished");
        goto out;
    }
    if (rc == 0)
        rc = write_sweep_info(e, dir, n);
    if (rc == 0)
        rc = write_manifest(dir, slots, n);
    if (rc == CNB_EIO) /* the results folder, not the input: a failure at run time */
        rc = CNB_EFAILED;
    if (rc)
        goto out;
    printf("%s: %d cell%s, %d to run, %d already finished; %d at a time; results in %s\n",
           e->conf.path, n, n == 1 ? "" : "s", to_run, n - to_run, o->jobs, dir);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_parent_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
    int running = 0, next = 0, lost = 0; /* lost: the manifest could not be written */
    for (;;) {
        while (!interrupted && !lost && running < o->jobs && next < n) {
            slot *s = &slots[next++];
            if (s->state != PENDING)
                continue;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                run_child(e, reg, s, o->progress && (o->jobs == 1 || to_run == 1),
                          o->jobs > 1 && to_run > 1);
            if (pid < 0) {
                s->state = FAILED;
                snprintf(s->message, sizeof s->message, "fork: %s", strerror(errno));
                continue;
            }
            s->pid = pid;
            s->state = RUNNING;
            s->started = cnb_now();
            running++;
            lost |= write_manifest(dir, slots, n) != 0;
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
        lost |= write_manifest(dir, slots, n) != 0; /* start no more cells: stop cleanly */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    int done = 0, diverged = 0, failed = 0, stopped = 0;
    for (int i = 0; i < n; i++) {
        done += slots[i].state == DONE || slots[i].state == SKIPPED ||
                slots[i].state == DIVERGED;
        diverged += slots[i].state == DIVERGED;
        failed += slots[i].state == FAILED;
        stopped += slots[i].state == INTERRUPTED || slots[i].state == PENDING;
    }
    printf("\n%d of %d cells finished (%d just now; %d diverged), %d failed%s\n", done, n,
           done - (n - to_run), diverged, failed,
           stopped && !lost ? "; interrupted: rerun the same command to finish the rest" : "");
    for (int i = 0; i < n; i++) /* each cell without a clean result, and why */
        if (slots[i].state == DIVERGED || slots[i].state == FAILED)
            printf("  %-8s %s: %s\n", state_names[slots[i].state], slots[i].cell->id,
                   slots[i].message);
    fflush(stdout);
    if (lost) {
        cnb_error("%s/manifest.csv: cannot record the cells' states (is the disk full?); no "
                  "further cell was started: free space and rerun", dir);
        rc = CNB_EFAILED;
    } else if (interrupted || stopped) {
        rc = CNB_EINTR;
    } else if (failed) {
        cnb_error("%d cell%s failed at run time (listed above); see %s/manifest.csv and each "
                  "cell's error.txt; rerun to redo them", failed, failed == 1 ? "" : "s", dir);
        rc = CNB_EFAILED;
    }
    if (rc != CNB_EINTR && done > diverged) { /* a cell with numbers to report */
        int report_rc = cnb_report_write(dir); /* said; a failure at run time (disk full) */
        rc = rc ? rc : report_rc ? CNB_EFAILED : 0;
    }
out:
    if (lock >= 0)
        close(lock); /* releases the flock */
    free(mib);
    free(slots);
    cnb_cells_free(cells, n);
    return rc;
}
