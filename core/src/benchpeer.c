/*
 * benchpeer.c - the peers: scripts (scripts/pytorch-peer.py, scripts/onnxruntime-peer.mjs)
 * that time the same network in another framework, one long-lived process per way of
 * running each, every one a participant of the bench's rounds like a backend: told over a
 * pipe to run a step, it answers with the step's times, so every peer sample has backend
 * samples from the same round.
 *
 * The ways of running a peer are the peer's to say, not the bench's: how to tune PyTorch
 * (OpenMP pinning, allocators) or ONNX Runtime (session options) is knowledge of those
 * frameworks, kept in their scripts beside the code it tunes, and a new peer brings its
 * own ways without a change here. The bench only runs what a way says (arguments and an
 * environment, set before the process starts, as an allocator to preload must be) and
 * pairs its backends with the ways a peer calls tuned.
 *
 * The contract, as the scripts state it too. cnnbench first runs
 *   PEER --ways --threads N
 * which writes a line per way, fields separated by tabs:
 *   way SUFFIX shipped|tuned ARGS ENV WHAT
 * (SUFFIX: added to its rows' backend name, "" for one; ARGS: words it is run with; ENV:
 * NAME=VALUE words it runs in; WHAT: what the way is, for the report), or
 *   not-run SUFFIX WHY
 * for a way this machine cannot run. Then, one process per way,
 *   PEER --model FILE --name NAME --batch N --threads N --warmup N --lr X --momentum X
 *        --weight-decay X [ARGS] [--var VAR=VALUE]...
 * with FILE the model file's name without its folder and .ini (lenet5, alexnet: which
 * network to build), NAME the [bench.NAME] section, one --var for every variable of the
 * model as it is timed (its [vars] under the section's vars), and the SGD update of
 * cnnbench's own training step. The peer builds that network and warms it up, then writes one line
 *   ready backend=NAME create_ms=X [how=TEXT]
 * (how: the rest of the line, what it ran on, e.g. its BLAS kernels) and reads commands,
 * a line each: `step F T` times F forward passes back to back, then T training steps (a
 * peer that only infers ignores T), and answers with the seconds of one of each
 *   step FORWARD_SECONDS TRAIN_SECONDS PEAK_KB
 * (TRAIN_SECONDS `nan` or `-` from a peer that only infers, at every step; PEAK_KB: the
 * growth of its peak resident memory over its resident memory before the network was
 * built); `quit` or the end of its input ends it. Before `ready` (or instead of its ways)
 * it may refuse: exit 2, a failure, said in the report; `skip WHY` and exit 3, its
 * framework is absent: its rows are skipped and the report says why. Exit 127 there is a
 * script whose interpreter (#!) is missing, skipped the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchint.h"
#include "child.h"
#include "errors.h"

#define EXIT_FAILED 2
#define EXIT_ABSENT 3
#define EXIT_NOT_RUN 127 /* the shell's: the #! interpreter is missing */
#define MAX_WAY_WORDS 32 /* of a way's ARGS or ENV */
#define INSTALL "`bash scripts/peers.sh` installs the optional peers"

/* Add a sentence to what the report says of peer script `peer`, unless it says it
 * already (each group asks the peer again). */
static void peer_say(results *r, int peer, const char *fmt, ...)
{
    char s[PATH_MAX + 512], *note = r->peer_note[peer];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    size_t at = strlen(note);
    if (!strstr(note, s))
        snprintf(note + at, sizeof r->peer_note[peer] - at, "%s%s", at ? " " : "", s);
}

/* The script's file name, which the report names it by until it says its own. */
static const char *script_name(const bconf *bc, int peer)
{
    const char *slash = strrchr(bc->peers[peer], '/');
    return slash ? slash + 1 : bc->peers[peer];
}

/* The last lines the peer wrote on its standard error (its file err), at most len - 1
 * bytes of them on one line, each line's end as "|", into buf; "" when there are none. */
static void stderr_tail(FILE *err, char *buf, size_t len)
{
    buf[0] = 0;
    if (!err || fflush(err) || fseek(err, 0, SEEK_END))
        return;
    long size = ftell(err), from = size > (long)len - 1 ? size - (long)len + 1 : 0;
    size_t n = 0;
    if (size > 0 && fseek(err, from, SEEK_SET) == 0)
        n = fread(buf, 1, len - 1, err);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = 0;
    for (char *nl = strchr(buf, '\n'); nl; nl = strchr(nl, '\n'))
        *nl = '|'; /* one line in the report */
}

/* What a failed peer said, for the report: "; its command was `...`; its standard error
 * ended `...`" (each part only when known), into buf. */
static void failure_detail(const char *cmd, FILE *err, char *buf, size_t len)
{
    char tail[400];
    stderr_tail(err, tail, sizeof tail);
    int at = snprintf(buf, len, "%s%s%s", cmd[0] ? "; its command was `" : "", cmd,
                      cmd[0] ? "`" : "");
    if (tail[0] && at >= 0 && (size_t)at < len)
        snprintf(buf + at, len - (size_t)at, "; its standard error ended `%s`", tail);
}

/* The script ended, status, when it was asked what `when` says (for its ways, or to get
 * ready); skip: the reason its `skip` line gave ("" none); cmd and err: its command and
 * standard error. What that means, for the report; the peer is off. */
static void peer_ended(const bconf *bc, int peer, int status, const char *when,
                       const char *skip, const char *cmd, FILE *err, results *r)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->peer_off[peer] = 1;
    if (code == EXIT_ABSENT) {
        peer_say(r, peer, "%s rows skipped: %s.", script_name(bc, peer),
                 skip[0] ? skip : "it says its framework is absent (exit 3)");
        return;
    }
    if (code == EXIT_NOT_RUN) {
        char line[256] = "";
        FILE *f = fopen(bc->peers[peer], "r");
        if (f && fgets(line, sizeof line, f))
            line[strcspn(line, "\n")] = 0;
        if (f)
            fclose(f);
        peer_say(r, peer, "%s rows skipped: its interpreter (%s) could not be run (exit 127); "
                 "%s.", script_name(bc, peer), line, INSTALL);
        return;
    }
    char detail[1600];
    failure_detail(cmd, err, detail, sizeof detail);
    peer_say(r, peer, "peer script %s failed (status %d) when asked %s%s; its rows are missing.",
             bc->peers[peer], code, when, detail);
}

/* The peer script broke the contract: said, the peer off. */
static void broke(const bconf *bc, int peer, const char *what, const char *line, results *r)
{
    peer_say(r, peer, "peer script %s broke the contract: %s `%.200s`; its rows are missing.",
             bc->peers[peer], what, line);
    r->peer_off[peer] = 1;
}

/* Child side of parent: stdin, stdout and stderr on in, out and err (in < 0: /dev/null;
 * err < 0: stderr as it is), the environment words, then the script with argv, in a
 * process group of its own. */
static _Noreturn void exec_peer(pid_t parent, const char *script, char *const *argv, char *env,
                                int in, int out, int err)
{
    for (char *save = NULL, *w = strtok_r(env, " ", &save); w; w = strtok_r(NULL, " ", &save))
        putenv(w);
    /* killed with the bench: a peer stopped between its steps outlives an interrupted
     * bench otherwise, holding its memory (a GiB and more for AlexNet); and in a group of
     * its own: when the bench's group is orphaned (its shell exited; nohup), the kernel
     * hangs up every process of the group if one is stopped, as a parked peer is */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || setpgid(0, 0) != 0)
        cnb_child_exit(127);
    if (in < 0)
        in = open("/dev/null", O_RDONLY | O_CLOEXEC); /* fd 0 alone stays open */
    if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || (err >= 0 && dup2(err, 2) < 0))
        cnb_child_exit(127);
    execv(script, argv);
    cnb_child_exit(127);
}

int bench_capture(char *const *argv, char *out, size_t len, FILE *err)
{
    char env[1] = "";
    int fd[2], status = -1;
    if (pipe2(fd, O_CLOEXEC))
        return -1;
    fflush(stdout);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0)
        exec_peer(parent, argv[0], argv, env, -1, fd[1], err ? fileno(err) : -1);
    close(fd[1]);
    size_t n = 0;
    char rest[4096]; /* what does not fit: read and dropped, so that it never blocks */
    while (pid > 0) {
        const int room = n + 1 < len;
        ssize_t got = room ? read(fd[0], out + n, len - 1 - n) : read(fd[0], rest, sizeof rest);
        if (got <= 0)
            break;
        n += room ? (size_t)got : 0;
    }
    out[n] = 0;
    close(fd[0]);
    if (pid > 0)
        waitpid(pid, &status, 0);
    return status;
}

/* `PEER --ways --threads N`: bench_capture's. */
static int run_ways(const char *script, int threads, char *out, size_t len, FILE *err)
{
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    char *const argv[] = {(char *)script, "--ways", "--threads", th, NULL};
    return bench_capture(argv, out, len, err);
}

/* Tab-separated fields of line (modified) into f; their number, up to max. */
static int tab_fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *at = line; at && n < max; n++) {
        f[n] = at;
        at = strchr(at, '\t');
        if (at)
            *at++ = 0;
    }
    return n;
}

/* Is every word of env NAME=VALUE with NAME a variable's name? */
static int env_words(const char *env)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", env);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        size_t name = strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
        if (name == 0 || w[name] != '=' || (w[0] >= '0' && w[0] <= '9') || ++n > MAX_WAY_WORDS)
            return 0;
    }
    return 1;
}

/* One line of --ways into *w: 1 a way, 0 a way not run here (said), -1 not a line of the
 * contract. */
static int way_line(int peer, char *line, bench_peer_way *w, results *r)
{
    char *f[7];
    int n = tab_fields(line, f, 7);
    if (n == 3 && !strcmp(f[0], "not-run")) {
        peer_say(r, peer, "%s", f[2]);
        return 0;
    }
    if (n != 6 || strcmp(f[0], "way") || (strcmp(f[2], "shipped") && strcmp(f[2], "tuned")) ||
        !env_words(f[4]) || strlen(f[1]) >= sizeof w->suffix || strlen(f[3]) >= sizeof w->args ||
        strlen(f[4]) >= sizeof w->env)
        return -1;
    memset(w, 0, sizeof *w);
    snprintf(w->suffix, sizeof w->suffix, "%s", f[1]);
    w->tuned = !strcmp(f[2], "tuned");
    snprintf(w->args, sizeof w->args, "%s", f[3]);
    snprintf(w->env, sizeof w->env, "%s", f[4]);
    snprintf(w->what, sizeof w->what, "%s", f[5]);
    return 1;
}

int bench_peer_ways(const bconf *bc, int peer, int threads, bench_peer_way *ways, int max,
                    results *r)
{
    char out[8192];
    if (access(bc->peers[peer], X_OK) != 0) {
        peer_say(r, peer, "peer script %s cannot be run: %s; its rows are missing.",
                 bc->peers[peer], strerror(errno));
        r->peer_off[peer] = 1;
        return 0;
    }
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "%s --ways --threads %d", bc->peers[peer], threads);
    FILE *err = tmpfile();
    int status = run_ways(bc->peers[peer], threads, out, sizeof out, err), n = 0;
    const int failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (failed) {
        out[strcspn(out, "\n")] = 0;
        peer_ended(bc, peer, status, "for its ways", strncmp(out, "skip ", 5) ? "" : out + 5,
                   cmd, err, r);
    }
    if (err)
        fclose(err);
    if (failed)
        return 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", l);
        int got = n < max ? way_line(peer, l, &ways[n], r) : 0;
        if (got < 0) {
            broke(bc, peer, "its --ways line is not `way<TAB>SUFFIX<TAB>shipped|tuned<TAB>ARGS"
                  "<TAB>ENV<TAB>WHAT` nor `not-run<TAB>SUFFIX<TAB>WHY` but", copy, r);
            return 0;
        }
        n += got;
    }
    if (n == 0 && !r->peer_note[peer][0])
        broke(bc, peer, "--ways listed no way to run; its output was", out, r);
    return n;
}

#define PEER_FIXED_ARGS 17 /* the program and the options before the way's arguments */

/* A way's command line: the words and the argv that points at them. */
typedef struct peer_cmd {
    char batch[16], th[16], warm[16], lr[32], mom[32], wd[32], args[256];
    char vars[CNB_MAX_VARS][256], model[PATH_MAX];
    const char *argv[PEER_FIXED_ARGS + MAX_WAY_WORDS + 2 * CNB_MAX_VARS + 1];
} peer_cmd;

/* The command that runs `way` of peer script `peer` for (m, threads) into c, and spelled
 * out, a word after another, into text. */
static void peer_command(peer_cmd *c, const bconf *bc, const bmodel *m, int threads, int peer,
                         const bench_peer_way *way, char *text, size_t len)
{
    const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    snprintf(c->model, sizeof c->model, "%.*s", (int)strcspn(base, "."), base);
    snprintf(c->batch, sizeof c->batch, "%d", m->batch);
    snprintf(c->th, sizeof c->th, "%d", threads);
    snprintf(c->warm, sizeof c->warm, "%d", bc->warmup);
    snprintf(c->lr, sizeof c->lr, "%g", CNB_BENCH_LR);
    snprintf(c->mom, sizeof c->mom, "%g", CNB_BENCH_MOMENTUM);
    snprintf(c->wd, sizeof c->wd, "%g", CNB_BENCH_DECAY);
    const char *fixed[PEER_FIXED_ARGS] = {
        bc->peers[peer], "--model", c->model, "--name", m->name, "--batch", c->batch,
        "--threads", c->th, "--warmup", c->warm, "--lr", c->lr, "--momentum", c->mom,
        "--weight-decay", c->wd};
    memcpy(c->argv, fixed, sizeof fixed);
    int argc = PEER_FIXED_ARGS;
    snprintf(c->args, sizeof c->args, "%s", way->args);
    for (char *save = NULL, *w = strtok_r(c->args, " ", &save); w && argc < PEER_FIXED_ARGS +
         MAX_WAY_WORDS; w = strtok_r(NULL, " ", &save))
        c->argv[argc++] = w;
    for (int i = 0; i < m->resolved.n; i++) {
        snprintf(c->vars[i], sizeof c->vars[i], "%s=%s", m->resolved.names[i],
                 m->resolved.values[i]);
        c->argv[argc++] = "--var";
        c->argv[argc++] = c->vars[i];
    }
    c->argv[argc] = NULL;
    size_t at = 0;
    text[0] = 0;
    for (int i = 0; i < argc && at < len; i++)
        at += (size_t)snprintf(text + at, len - at, "%s%s", i ? " " : "", c->argv[i]);
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
        FILE *err = p->err; /* kept past the stop, for its tail */
        p->err = NULL;
        int ended = feof(p->from), status = bench_peer_stop(p);
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "skip ", 5) || ended)
            peer_ended(bc, p->peer, status, "to get ready",
                       strncmp(line, "skip ", 5) ? "" : line + 5, p->cmd, err, r);
        else
            broke(bc, p->peer, "its first line is not `ready ...` but", line, r);
        if (err)
            fclose(err);
        return 1;
    }
    ready_field(line, " backend=", name, sizeof name);
    ready_field(line, " create_ms=", create, sizeof create);
    ready_field(line, " how=", how, sizeof how);
    snprintf(p->backend, sizeof p->backend, "%s%s", name, p->way.suffix);
    p->create_ms = create[0] ? strtod(create, NULL) : NAN;
    size_t at = strlen(p->how);
    if (how[0])
        snprintf(p->how + at, sizeof p->how - at, "; %s", how);
    return 0;
}

int bench_peer_start(bench_peer *p, const bconf *bc, const bmodel *m, int threads, int peer,
                     const bench_peer_way *way, results *r)
{
    memset(p, 0, sizeof *p);
    p->peer = peer, p->way = *way, p->pid = -1, p->peak_mb = NAN, p->inference = -1;
    snprintf(p->how, sizeof p->how, "%s%s%s", way->what, way->env[0] ? "; " : "", way->env);
    /* a peer that dies would otherwise kill the bench at its next command */
    signal(SIGPIPE, SIG_IGN);
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC)) {
        cnb_error("%s: could not make its pipes: %s", bc->peers[peer], strerror(errno));
        return 1;
    }
    peer_cmd cmd;
    char env[sizeof way->env];
    peer_command(&cmd, bc, m, threads, peer, way, p->cmd, sizeof p->cmd);
    snprintf(env, sizeof env, "%s", way->env);
    p->err = tmpfile(); /* its standard error, quoted if it fails */
    fflush(stdout);
    pid_t parent = getpid();
    p->pid = fork();
    if (p->pid == 0)
        exec_peer(parent, bc->peers[peer], (char *const *)cmd.argv, env, to[0], from[1],
                  p->err ? fileno(p->err) : -1);
    close(to[0]), close(from[1]);
    p->to = fdopen(to[1], "w"), p->from = fdopen(from[0], "r");
    if (p->pid < 0 || !p->to || !p->from) {
        cnb_error("%s: could not run: %s", bc->peers[peer], strerror(errno));
        bench_peer_stop(p);
        return 1;
    }
    int rc = await_ready(p, bc, r);
    if (rc == 0)
        kill(p->pid, SIGSTOP); /* parked until its turn, see bench_peer_step */
    return rc;
}

/* A step's answer into its seconds (train NAN: none) and peak: 0, or -1 when it is not
 * `step F T KB` with positive times, or its training time comes and goes between steps. */
static int parse_step(bench_peer *p, const char *line, double *fwd, double *train, double *kb)
{
    char t[32], *end;
    if (sscanf(line, "step %lf %31s %lf", fwd, t, kb) != 3 || !(*fwd > 0) || isinf(*fwd))
        return -1;
    *train = strcmp(t, "-") ? strtod(t, &end) : NAN;
    if (strcmp(t, "-") && (*end || (!isnan(*train) && (!(*train > 0) || isinf(*train)))))
        return -1;
    if (p->inference >= 0 && p->inference != isnan(*train))
        return -1;
    p->inference = isnan(*train);
    return 0;
}

/* A peer is stopped (SIGSTOP) between its steps, as the bench parks a backend after its
 * turn: PyTorch's OpenMP and OpenBLAS threads spin for a while after each call, and an
 * idle peer left running took the cores of the backends timed after it (at 2 threads on
 * 2 cores, onednn's step went from 22 to 442 ms). */
int bench_peer_step(bench_peer *p, const int steps[2], double *fwd, double *train, results *r)
{
    char line[256] = "";
    double kb;
    kill(p->pid, SIGCONT);
    if (fprintf(p->to, "step %d %d\n", steps[0], steps[1]) < 0 || fflush(p->to) == EOF ||
        !fgets(line, sizeof line, p->from) || parse_step(p, line, fwd, train, &kb)) {
        char detail[1600], sig[64] = "";
        line[strcspn(line, "\n")] = 0;
        FILE *err = p->err; /* kept past the stop, for its tail */
        p->err = NULL;
        int status = bench_peer_stop(p);
        if (status != -1 && WIFSIGNALED(status))
            snprintf(sig, sizeof sig, " (it was killed by signal %d, %s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        failure_detail(p->cmd, err, detail, sizeof detail);
        peer_say(r, p->peer, "peer %s broke off: its answer to `step` was `%.100s`%s%s; its "
                 "rows are missing.", p->backend, line[0] ? line : "nothing", sig, detail);
        if (err)
            fclose(err);
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
    if (p->err)
        fclose(p->err);
    p->err = NULL;
    return status;
}
