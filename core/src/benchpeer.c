/*
 * benchpeer.c - the peer: a script (scripts/pytorch-peer.py) that times the same network
 * in another framework, one long-lived process per way of running it, each a participant
 * of the bench's rounds like a backend: told over a pipe to run a step, it answers with
 * the step's times, so every peer sample has backend samples from the same round.
 *
 * The contract, as scripts/pytorch-peer.py states it too. cnnbench runs
 *   PEER --model FILE --name NAME --batch N --threads N --warmup N --lr X --momentum X
 *        --weight-decay X [--inference-mode] [--var VAR=VALUE]...
 * with FILE the model file's name without its folder and .ini (lenet5, alexnet: which
 * network to build), NAME the [bench.NAME] section, one --var for every variable of the model as it is
 * timed (its [vars] under the section's vars), and the SGD update of cnnbench's own
 * training step. The peer builds that network and warms it up, then writes one line
 *   ready backend=NAME create_ms=X [how=TEXT]
 * (how: the rest of the line, what it ran on, e.g. its BLAS kernels) and reads commands,
 * a line each: `step K` times K forward passes back to back, then K training steps, and
 * answers with the seconds of one of each (the K's time over K)
 *   step FORWARD_SECONDS TRAIN_SECONDS PEAK_KB
 * (PEAK_KB: the growth of its peak resident memory over its resident memory before the
 * network was built); `quit` or the end of its input ends it. Before `ready` it may
 * refuse (exit 2: a failure, said in the report); exit 3 means its framework is absent
 * (skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchint.h"
#include "child.h"
#include "errors.h"

/* Debian's jemalloc, preloaded by the jemalloc way. */
#define JEMALLOC "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

/* PyTorch's CPU performance guide: its OpenMP threads pinned close, one per core, with a
 * static schedule (GNU OpenMP's spelling), and OpenBLAS, which runs its fully connected
 * layers, at the same thread count; an allocator that keeps its memory (glibc told not to
 * give it back, or jemalloc with the guide's MALLOC_CONF); inference under
 * torch.inference_mode. Measured on AlexNet, 2 threads, training step: as shipped 3,920
 * ms, glibc keeping its memory 1,169 ms, jemalloc without MALLOC_CONF 7,339 ms; which
 * allocator is faster is measured again in every group, both running in the rounds. */
const bench_peer_way bench_peer_ways[MAX_PEERS] = {
    {"", "as shipped: torch.set_num_threads(N), the environment as given", 0},
    {"-tuned-glibc", "tuned, glibc keeping its memory", 1},
    {"-tuned-jemalloc", "tuned, jemalloc", 1},
};

static const char *const allocator_env[MAX_PEERS][3] = {
    {NULL},
    {"MALLOC_MMAP_THRESHOLD_=33554432", "MALLOC_TRIM_THRESHOLD_=17179869184",
     "MALLOC_TOP_PAD_=1073741824"},
    {"LD_PRELOAD=" JEMALLOC, "MALLOC_CONF=oversize_threshold:1,background_thread:true,"
     "metadata_thp:auto,dirty_decay_ms:9000000000,muzzy_decay_ms:9000000000"},
};

/* The environment way `way` adds at `threads`, into env[] (NULL-terminated) and, spelled
 * out, into how. */
static void way_env(int way, int threads, char env[][160], char *how, size_t len)
{
    int n = 0;
    if (bench_peer_ways[way].tuned) {
        snprintf(env[n++], 160, "OMP_NUM_THREADS=%d", threads);
        snprintf(env[n++], 160, "OMP_PROC_BIND=close");
        snprintf(env[n++], 160, "OMP_PLACES=cores");
        snprintf(env[n++], 160, "OMP_SCHEDULE=static");
        snprintf(env[n++], 160, "OPENBLAS_NUM_THREADS=%d", threads);
    }
    for (int i = 0; i < 3 && allocator_env[way][i]; i++)
        snprintf(env[n++], 160, "%s", allocator_env[way][i]);
    env[n][0] = 0;
    size_t at = (size_t)snprintf(how, len, "%s", bench_peer_ways[way].what);
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(how + at, len - at, "%s%s", i ? " " : "; ", env[i]);
}

/* The peer ended before it was ready: what its status means for the report. */
static void peer_failed(const bconf *bc, int status, results *r)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        snprintf(r->peer_note, sizeof r->peer_note,
                 "PyTorch rows skipped: PyTorch is not installed (Debian package python3-torch; "
                 "install it and rerun to add them).");
        r->peer_off = 1;
        return;
    }
    snprintf(r->peer_note, sizeof r->peer_note, "peer script %s failed (status %d); its "
             "rows are missing.", bc->peer, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    r->peer_off = 1;
}

#define PEER_FIXED_ARGS 21 /* the program and the options before the --var pairs */

/* The child: its pipes on stdin and stdout, way's environment, the script. */
static void run_child(const bconf *bc, const bmodel *m, int threads, int way, int in, int out)
{
    char batch[16], th[16], warm[16], lr[32], mom[32], wd[32], env[16][160], how[1024];
    char vars[CNB_MAX_VARS][256], model[PATH_MAX];
    const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    snprintf(model, sizeof model, "%.*s", (int)strcspn(base, "."), base);
    snprintf(batch, sizeof batch, "%d", m->batch);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(warm, sizeof warm, "%d", bc->warmup);
    snprintf(lr, sizeof lr, "%g", CNB_BENCH_LR);
    snprintf(mom, sizeof mom, "%g", CNB_BENCH_MOMENTUM);
    snprintf(wd, sizeof wd, "%g", CNB_BENCH_DECAY);
    const char *argv[PEER_FIXED_ARGS + 1 + 2 * CNB_MAX_VARS + 1] = {
        bc->peer, "--model", model, "--name", m->name, "--batch", batch, "--threads", th,
        "--warmup", warm, "--lr", lr, "--momentum", mom, "--weight-decay", wd};
    int argc = 17;
    if (bench_peer_ways[way].tuned)
        argv[argc++] = "--inference-mode";
    for (int i = 0; i < m->resolved.n; i++) {
        snprintf(vars[i], sizeof vars[i], "%s=%s", m->resolved.names[i], m->resolved.values[i]);
        argv[argc++] = "--var";
        argv[argc++] = vars[i];
    }
    way_env(way, threads, env, how, sizeof how);
    for (int i = 0; env[i][0]; i++)
        putenv(env[i]);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0)
        cnb_child_exit(127);
    execv(bc->peer, (char *const *)argv);
    cnb_child_exit(127);
}

/* The value of `key=` in a ready line, up to the next space (how: to the end), into buf. */
static void ready_field(const char *line, const char *key, char *buf, size_t len)
{
    const char *at = strstr(line, key);
    buf[0] = 0;
    if (!at)
        return;
    at += strlen(key);
    size_t n = strcmp(key, " how=") ? strcspn(at, " \n") : strcspn(at, "\n");
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), at);
}

/* Its ready line, or its exit when it ended first. */
static int await_ready(bench_peer *p, const bconf *bc, results *r)
{
    char line[1024] = "", name[64], create[32], how[512];
    if (!fgets(line, sizeof line, p->from) || strncmp(line, "ready ", 6)) {
        int ended = feof(p->from), status = bench_peer_stop(p);
        line[strcspn(line, "\n")] = 0;
        if (ended)
            peer_failed(bc, status, r);
        else
            snprintf(r->peer_note, sizeof r->peer_note, "peer script %s broke the contract: "
                     "its first line is not `ready ...` but `%.200s`; its rows are missing.",
                     bc->peer, line), r->peer_off = 1;
        return 1;
    }
    ready_field(line, " backend=", name, sizeof name);
    ready_field(line, " create_ms=", create, sizeof create);
    ready_field(line, " how=", how, sizeof how);
    snprintf(p->backend, sizeof p->backend, "%s%s", name, bench_peer_ways[p->way].suffix);
    p->create_ms = create[0] ? strtod(create, NULL) : NAN;
    size_t at = strlen(p->how);
    if (how[0])
        snprintf(p->how + at, sizeof p->how - at, "; %s", how);
    return 0;
}

int bench_peer_start(bench_peer *p, const bconf *bc, const bmodel *m, int threads, int way,
                     results *r)
{
    memset(p, 0, sizeof *p);
    p->way = way, p->pid = -1, p->peak_mb = NAN;
    char env[16][160];
    way_env(way, threads, env, p->how, sizeof p->how);
    if (way == 2 && access(JEMALLOC, R_OK) != 0) {
        snprintf(r->peer_note, sizeof r->peer_note, "PyTorch tuned with jemalloc not run: "
                 "%s is missing (Debian package libjemalloc2).", JEMALLOC);
        return 1;
    }
    /* a peer that dies would otherwise kill the bench at its next command */
    signal(SIGPIPE, SIG_IGN);
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC)) {
        cnb_error("%s: could not make its pipes: %s", bc->peer, strerror(errno));
        return 1;
    }
    fflush(stdout);
    p->pid = fork();
    if (p->pid == 0)
        run_child(bc, m, threads, way, to[0], from[1]);
    close(to[0]), close(from[1]);
    p->to = fdopen(to[1], "w"), p->from = fdopen(from[0], "r");
    if (p->pid < 0 || !p->to || !p->from) {
        cnb_error("%s: could not run: %s", bc->peer, strerror(errno));
        bench_peer_stop(p);
        return 1;
    }
    int rc = await_ready(p, bc, r);
    if (rc == 0)
        kill(p->pid, SIGSTOP); /* parked until its turn, see bench_peer_step */
    return rc;
}

/* A peer is stopped (SIGSTOP) between its steps, as the bench parks a backend after its
 * turn: PyTorch's OpenMP and OpenBLAS threads spin for a while after each call, and an
 * idle peer left running took the cores of the backends timed after it (at 2 threads on
 * 2 cores, onednn's step went from 22 to 442 ms). */
int bench_peer_step(bench_peer *p, int steps, double *fwd, double *train, results *r)
{
    char line[256] = "";
    double kb;
    kill(p->pid, SIGCONT);
    if (fprintf(p->to, "step %d\n", steps) < 0 || fflush(p->to) == EOF ||
        !fgets(line, sizeof line, p->from) || sscanf(line, "step %lf %lf %lf", fwd, train, &kb) != 3) {
        line[strcspn(line, "\n")] = 0;
        snprintf(r->peer_note, sizeof r->peer_note, "peer %s broke off: its answer to `step` "
                 "was `%.100s`; its rows are missing.", p->backend, line[0] ? line : "nothing");
        bench_peer_stop(p);
        return 1;
    }
    p->peak_mb = kb / 1024;
    kill(p->pid, SIGSTOP);
    return 0;
}

int bench_peer_stop(bench_peer *p)
{
    int status = -1;
    if (p->pid > 0)
        kill(p->pid, SIGCONT); /* to read its quit */
    if (p->to) {
        fputs("quit\n", p->to);
        fclose(p->to);
    }
    if (p->from)
        fclose(p->from);
    p->to = p->from = NULL;
    if (p->pid > 0)
        waitpid(p->pid, &status, 0);
    p->pid = -1;
    return status;
}
