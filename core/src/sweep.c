/*
 * sweep.c - the resumable sweep runner; see sweep.h.
 */
#include "sweep.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "host.h"
#include "report.h"
#include "train.h"

typedef enum { PENDING, RUNNING, DONE, SKIPPED, INVALID, FAILED, INTERRUPTED } cell_state;
static const char *const state_names[] = {"pending", "running", "done", "done", "invalid",
                                          "failed", "interrupted"};

typedef struct slot {
    const cnb_cell *cell;
    char dir[PATH_MAX];
    char fingerprint[17];
    cell_state state;
    pid_t pid;
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
    fprintf(a.f, "; written by cnnbench run; read by cnnbench report/plot\n[sweep]\n"
                 "experiment = %s\nname = %s\nmodel = %s\nprofile = %s\nbaseline = %s\n"
                 "cells = %d\nepochs = %d\n",
            e->conf.path, e->name, e->model, e->profile[0] ? e->profile : "(none)",
            e->baseline, n_cells, e->train.epochs);
    return cnb_atomic_commit(&a);
}

/* In the child: run one cell and exit with 0 done, 3 invalid, 130 interrupted, 1 failed. */
static void run_child(const cnb_experiment *e, cnb_registry *reg, const slot *s, int progress,
                      int label)
{
    struct sigaction sa = {.sa_handler = on_child_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char path[PATH_MAX + 32], prefix[300] = "";
    if (label)
        snprintf(prefix, sizeof prefix, "[%s] ", s->cell->id);
    if (cnb_mkdirs(s->dir) != 0)
        _exit(1);
    snprintf(path, sizeof path, "%s/done", s->dir);
    unlink(path);
    int rc = cnb_cell_run(e, s->cell, reg, s->dir, progress, prefix);
    if (rc == 0)
        rc = write_small(path, s->fingerprint);
    if (rc != 0 && rc != CNB_EINTR) {
        snprintf(path, sizeof path, "%s/error.txt", s->dir);
        write_small(path, cnb_last_error());
    }
    fflush(stdout);
    _exit(rc == 0 ? 0 : rc == CNB_EINTR ? 130 : rc == CNB_EINVAL ? 3 : 1);
}

static void reap(slot *s, int status)
{
    char path[PATH_MAX + 32];
    s->pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->state = DONE;
        s->message[0] = '\0';
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 130) {
        s->state = INTERRUPTED;
        snprintf(s->message, sizeof s->message, "interrupted; rerun to redo");
        return;
    }
    s->state = WIFEXITED(status) && WEXITSTATUS(status) == 3 ? INVALID : FAILED;
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
    cnb_cell *cells;
    int n, rc = cnb_experiment_cells(e, &cells, &n);
    if (rc)
        return rc;
    slot *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) {
        cnb_cells_free(cells, n);
        return CNB_ENOMEM;
    }
    char dir[PATH_MAX];
    cnb_experiment_dir(e, dir, sizeof dir);
    int to_run = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        slot *s = &slots[i];
        s->cell = &cells[i];
        if (snprintf(s->dir, sizeof s->dir, "%s/%s", dir, cells[i].id) >= (int)sizeof s->dir)
            rc = cnb_error("%s/%s: path too long", dir, cells[i].id);
        else
            rc = cnb_cell_fingerprint(e, &cells[i], s->fingerprint);
        char done[PATH_MAX + 32], have[64] = "";
        snprintf(done, sizeof done, "%s/done", s->dir);
        s->state = !o->force && read_small(done, have, sizeof have) == 0 &&
                           strcmp(have, s->fingerprint) == 0
                       ? SKIPPED
                       : PENDING;
        to_run += s->state == PENDING;
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
        printf("%-4s %-*s  %-*s  %5s %-10s %7s  %s\n", "#", wi, "cell", wv, "variant", "seed",
               "backend", "threads", "state");
        for (int i = 0; i < n; i++)
            printf("%-4d %-*s  %-*s  %5llu %-10s %7d  %s\n", i + 1, wi, cells[i].id, wv,
                   cells[i].variant, (unsigned long long)cells[i].seed, cells[i].backend,
                   cells[i].threads, slots[i].state == SKIPPED ? "finished" : "to run");
        goto out;
    }
    if (rc == 0)
        rc = cnb_mkdirs(dir);
    if (rc == 0)
        rc = write_sweep_info(e, dir, n);
    if (rc == 0)
        rc = write_manifest(dir, slots, n);
    if (rc)
        goto out;
    printf("%s: %d cell%s, %d to run, %d already finished; %d at a time; results in %s\n",
           e->conf.path, n, n == 1 ? "" : "s", to_run, n - to_run, o->jobs, dir);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_parent_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
    int running = 0, next = 0;
    for (;;) {
        while (!interrupted && running < o->jobs && next < n) {
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
            running++;
            write_manifest(dir, slots, n);
        }
        if (running == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++)
            if (slots[i].pid == pid) {
                reap(&slots[i], status);
                running--;
                if (slots[i].state == INVALID || slots[i].state == FAILED)
                    fprintf(stderr, "cnnbench: cell %s %s: %s\n", slots[i].cell->id,
                            state_names[slots[i].state], slots[i].message);
                break;
            }
        if (write_manifest(dir, slots, n) != 0)
            interrupted = 1; /* results can no longer be recorded: stop cleanly */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    int done = 0, invalid = 0, failed = 0, stopped = 0;
    for (int i = 0; i < n; i++) {
        done += slots[i].state == DONE || slots[i].state == SKIPPED;
        invalid += slots[i].state == INVALID;
        failed += slots[i].state == FAILED;
        stopped += slots[i].state == INTERRUPTED || slots[i].state == PENDING;
    }
    printf("\n%d of %d cells finished (%d just now), %d invalid, %d failed%s\n", done, n,
           done - (n - to_run), invalid, failed,
           stopped ? "; interrupted: rerun the same command to finish the rest" : "");
    if (interrupted || stopped)
        rc = CNB_EINTR;
    else if (failed)
        rc = cnb_error("%d cell%s failed; see %s/manifest.csv", failed, failed == 1 ? "" : "s",
                       dir);
    if (rc != CNB_EINTR && done > 0) {
        int report_rc = cnb_report_write(dir);
        rc = rc ? rc : report_rc;
    }
out:
    free(slots);
    cnb_cells_free(cells, n);
    return rc;
}
