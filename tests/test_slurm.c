/*
 * test_slurm.c - the Slurm launcher: the [launcher] section, the array script it writes
 * (read, and run by bash with an echo for cnnbench), the parsing of squeue, sacct and
 * scontrol output, all without Slurm; then, as root, against a real one-node cluster
 * (scripts/slurm-local.sh, started here in a folder and on ports of its own, and stopped
 * at the end, also after a failure):
 * a 4-cell grid run through `--launcher slurm` (as two arrays: the cluster's MaxArraySize
 * is 3) gives the accuracy columns of a local run exactly, and a cell killed by scancel shows as failed with Slurm's reason in `cnnbench
 * status` and is the only one a rerun submits.
 *
 * Not root, or without slurm-wlm (scripts/test.sh installs it as root), the cluster tests
 * pass without running and one line says so.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "experiment.h"
#include "launcher.h"
#include "testutil.h"

static char skipped[256]; /* why the cluster tests do not run, or "" */
static int started;

static int read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (!f)
        return -1;
    buf[fread(buf, 1, len - 1, f)] = '\0';
    fclose(f);
    return 0;
}

/* Run a shell command, its stdout and stderr into out; its exit status. */
static int shell(const char *cmd, char *out, size_t len)
{
    static char file[300];
    char full[4096];
    if (!file[0]) /* one folder for every command's output */
        snprintf(file, sizeof file, "%s/shell-out.txt", test_tmpdir());
    snprintf(full, sizeof full, "( %s ) >'%s' 2>&1", cmd, file);
    int status = system(full);
    read_text(file, out, len);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A port p such that p and p + 1 (slurmctld's and slurmd's) are free now, or -1. */
static int free_port_pair(void)
{
    int port = -1;
    for (int tries = 0; tries < 20 && port < 0; tries++) {
        int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        socklen_t len = sizeof sa;
        if (a >= 0 && b >= 0 && bind(a, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(a, (struct sockaddr *)&sa, &len) == 0 && ntohs(sa.sin_port) < 65535) {
            sa.sin_port = htons(ntohs(sa.sin_port) + 1);
            if (bind(b, (struct sockaddr *)&sa, sizeof sa) == 0)
                port = ntohs(sa.sin_port) - 1;
        }
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
    }
    return port;
}

/* Each run of the suite has a cluster of its own, in its own folder, named after the
 * process, and on free ports, so that it can run beside another cluster: a developer's
 * (scripts/slurm-local.sh's defaults) or the suite's in another build tree. */
#define RUN_PREFIX "/tmp/cnnbench-slurm-test."
static char run[64];

/* Stop the clusters of earlier runs that were killed before their clean-up (a timeout:
 * the daemons outlive the process), and remove their folders. */
static void stop_orphans(void)
{
    char out[8192], cmd[1024];
    snprintf(cmd, sizeof cmd, "for run in " RUN_PREFIX "*; do "
             "[ -d \"$run\" ] && ! kill -0 \"${run##*.}\" 2>/dev/null || continue; "
             "CNB_SLURM_RUN=$run bash '%s/scripts/slurm-local.sh' stop && rm -rf \"$run\"; "
             "done", CNB_SOURCE_ROOT);
    if (shell(cmd, out, sizeof out) != 0)
        fprintf(stderr, "\nslurm: stopping the clusters of killed runs failed:\n%s\n", out);
}

static int slurm_init(void)
{
    char out[8192], cmd[1024], conf[128], port[16];
    if (geteuid() != 0)
        snprintf(skipped, sizeof skipped, "not root");
    else if (access("/usr/sbin/slurmctld", X_OK) != 0 || access("/usr/sbin/munged", X_OK) != 0)
        snprintf(skipped, sizeof skipped, "not root, or slurm-wlm and munge not installed: "
                 "scripts/test.sh installs them as root");
    if (skipped[0]) {
        printf("\nslurm: skipped (%s)\n", skipped);
        return 0;
    }
    stop_orphans();
    const int p = free_port_pair();
    if (p < 0) {
        fprintf(stderr, "\nslurm: no two free ports in a row for the cluster\n");
        return -1;
    }
    snprintf(run, sizeof run, RUN_PREFIX "%ld", (long)getpid());
    snprintf(conf, sizeof conf, "%s/slurm.conf", run);
    snprintf(port, sizeof port, "%d", p);
    setenv("CNB_SLURM_RUN", run, 1);
    setenv("CNB_SLURM_PORT", port, 1);
    setenv("CNB_SLURM_MAX_ARRAY", "3", 1); /* a 4-cell grid goes as two arrays, 3 + 1 */
    setenv("SLURM_CONF", conf, 1);
    setenv("CNB_SLURM_POLL", "0.5", 1); /* seconds between looks at the queue */
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/slurm-local.sh' start", CNB_SOURCE_ROOT);
    started = 1; /* stopped at the end even when it came up only in part */
    if (shell(cmd, out, sizeof out) != 0)
        fprintf(stderr, "\nslurm: the one-node cluster did not start:\n%s\n", out);
    return 0;
}

static int slurm_cleanup(void)
{
    char out[4096], cmd[1024];
    if (!started)
        return 0;
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/slurm-local.sh' stop && rm -rf '%s'",
             CNB_SOURCE_ROOT, run);
    if (shell(cmd, out, sizeof out) != 0)
        fprintf(stderr, "\nslurm: stopping the cluster failed:\n%s\n", out);
    started = 0;
    return 0;
}

/* ---- without Slurm ---------------------------------------------------------------------- */

static const char *write_experiment(const char *dir, const char *name, const char *extra)
{
    static char path[512];
    char text[4096];
    snprintf(path, sizeof path, "%s/%s.ini", dir, name);
    snprintf(text, sizeof text,
             "[experiment]\nname = %s\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s/results\nbaseline = act=sigmoid pool=avg\n"
             "[sweep]\nact = sigmoid, relu\npool = avg, max\n"
             "[data]\ndir = %s\ntrain_limit = 2000\ntest_limit = 500\n"
             "[train]\nepochs = 1\nbatch = 50\nlr = 0.05\ntrain_eval_limit = 200\n%s",
             name, CNB_SOURCE_ROOT, dir, test_data_dir(), extra);
    test_write_file(path, text);
    return path;
}

static void test_launcher_section(void)
{
    const char *dir = test_tmpdir();
    cnb_experiment e;
    cnb_launcher_cfg l;
    const char *path = write_experiment(dir, "l", "[launcher]\npartition = gpu,cpu\n"
                                        "time = 1-12:00\ncpus_per_task = 4\nmem = 6G\n"
                                        "parallel = 8\nsbatch = --account=proj --qos=short -C haswell\n"
                                        "setup = module load openblas\n");
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(cnb_launcher_parse(&e.conf, &l), 0);
    CU_ASSERT_STRING_EQUAL(l.partition, "gpu,cpu");
    CU_ASSERT_STRING_EQUAL(l.time, "1-12:00");
    CU_ASSERT_EQUAL(l.cpus_per_task, 4);
    CU_ASSERT_EQUAL(l.mem_mib, 6144);
    CU_ASSERT_EQUAL(l.parallel, 8);
    CU_ASSERT_EQUAL(l.n_sbatch, 3);
    CU_ASSERT_STRING_EQUAL(l.sbatch[1], "--qos=short");
    CU_ASSERT_STRING_EQUAL(l.sbatch[2], "-C haswell");
    CU_ASSERT_STRING_EQUAL(l.setup, "module load openblas");
    cnb_experiment_free(&e);

    /* each bad key or value refused at load, naming its line (or --set) */
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[launcher]\ncolour = red\n", "l.ini:19: unknown key 'colour' in [launcher]"},
        {"[launcher]\ntime = 2h\n", "l.ini:19: [launcher] time = '2h': expected"},
        {"[launcher]\ntime = 1:2:3:4\n", "l.ini:19: [launcher] time = '1:2:3:4'"},
        {"[launcher]\nmem = lots\n", "l.ini:19: [launcher] mem = 'lots'"},
        {"[launcher]\ncpus_per_task = 0\n", "l.ini:19: [launcher] cpus_per_task = '0'"},
        {"[launcher]\nsbatch = account=x\n", "l.ini:19: [launcher] sbatch: 'account=x'"},
        {"[launcher]\nsbatch = --comment='a b'\n", "l.ini:19: [launcher] sbatch: '--comment='a'"},
        {"[launcher]\npartition = a b\n", "l.ini:19: [launcher] partition = 'a b'"},
    };
    cnb_error_quiet(1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = write_experiment(dir, "l", bad[i].text);
        CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
        CHECK_MSG(cnb_last_error(), bad[i].msg);
        cnb_experiment_free(&e);
    }
    char *set[] = {"launcher.parallel=-1"};
    path = write_experiment(dir, "l", "");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, set, 1), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "--set launcher.parallel=-1: [launcher] parallel");
    cnb_experiment_free(&e);
    cnb_error_quiet(0);
}

static void test_script_writer(void)
{
    const char *dir = test_tmpdir();
    char results[600], script[700], text[8192], out[8192], cmd[2048];
    snprintf(results, sizeof results, "%s/results/x", dir);
    snprintf(script, sizeof script, "%s/array.sbatch", dir);
    cnb_launcher_cfg l = {.partition = "short", .time = "1:00:00", .parallel = 2,
                          .n_sbatch = 2, .sbatch = {"--account=proj", "--qos=low"},
                          .setup = "export FROM_SETUP=yes"};
    const char *cells[] = {"act-relu_seed1_naive_t1", "act-relu_seed2_naive_t1"};
    char *sets[] = {"train.epochs=1", "vars.note=it's"};
    const char *plugins[] = {"/opt/p/my plugin.so"};
    cnb_slurm_script s = {.cfg = &l, .job_name = "cnb-x", .results = results,
                          .workdir = dir, .exe = "/bin/echo", .experiment = "/e/x.ini",
                          .profile = "quick", .sets = sets, .n_sets = 2, .plugins = plugins,
                          .n_plugins = 1, .cells = cells, .n_cells = 2, .cpus = 2,
                          .mem_mib = 512, .after = "12:13"};
    FILE *f = fopen(script, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(cnb_slurm_script_write(f, &s), 0);
    fclose(f);
    read_text(script, text, sizeof text);
    static const char *const lines[] = {
        "#SBATCH --job-name=cnb-x\n", "#SBATCH --array=0-1%2\n", "#SBATCH --ntasks=1\n",
        "#SBATCH --cpus-per-task=2\n", "#SBATCH --mem=512M\n", "#SBATCH --time=1:00:00\n",
        "#SBATCH --partition=short\n", "#SBATCH --account=proj\n#SBATCH --qos=low\n",
        "/slurm/%A_%a.log\n", "export FROM_SETUP=yes\n",
        "#SBATCH --dependency=afterany:12:13\n"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CHECK_MSG(text, lines[i]);
    /* every #SBATCH line comes before the first command, or sbatch ignores it */
    const char *last = strstr(text, "#SBATCH --qos=low"), *first_cmd = strstr(text, "\nresults=");
    CU_ASSERT(last && first_cmd && last < first_cmd);

    /* task 1 runs its cell with every option, quoted; the echo stands for cnnbench */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID=1 "
             "bash '%s'", results, script);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "cnnbench task 7_1: cell act-relu_seed2_naive_t1 on ");
    CHECK_MSG(out, "run /e/x.ini --cell act-relu_seed2_naive_t1 --profile quick --set "
                   "train.epochs=1 --set vars.note=it's --plugin /opt/p/my plugin.so\n");
    CHECK_MSG(out, "cnnbench task: exit status 0");
    /* the results folder missing on the node: refused, saying why, exit 2 */
    snprintf(cmd, sizeof cmd, "rm -r '%s' && SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID=0 "
             "bash '%s'", results, script);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 2);
    CHECK_MSG(out, "does not exist on ");
    CHECK_MSG(out, "a filesystem every node mounts");
    CU_ASSERT_PTR_NULL(strstr(out, "--cell"));

    /* a path an #SBATCH line cannot carry is refused, not written half */
    snprintf(results, sizeof results, "%s/my results", dir);
    f = fopen(script, "w");
    cnb_error_quiet(1);
    CU_ASSERT_EQUAL(cnb_slurm_script_write(f, &s), CNB_EINVAL);
    cnb_error_quiet(0);
    CHECK_MSG(cnb_last_error(), "holds a space");
    fclose(f);
}

static cnb_slurm_task task(const char *job, int index, const char *state)
{
    cnb_slurm_task t;
    memset(&t, 0, sizeof t);
    snprintf(t.job, sizeof t.job, "%s", job);
    t.index = index;
    snprintf(t.state, sizeof t.state, "%s", state);
    return t;
}

static void test_parse_slurm_output(void)
{
    cnb_slurm_task t[6] = {task("12", 0, "SUBMITTED"), task("12", 1, "SUBMITTED"),
                           task("12", 2, "SUBMITTED"), task("12", 3, "SUBMITTED"),
                           task("12", 4, "SUBMITTED"), task("15", 0, "SUBMITTED")};
    /* squeue -h -r -o '%i|%T|%N|%M|%r' */
    CU_ASSERT_EQUAL(cnb_slurm_parse_squeue("12_0|RUNNING|node7|1:02|None\n"
                                           "12_4|PENDING||0:00|JobArrayTaskLimit\n"
                                           "99_0|RUNNING|node1|0:01|None\n", t, 6), 2);
    CU_ASSERT_STRING_EQUAL(t[0].state, "RUNNING");
    CU_ASSERT_STRING_EQUAL(t[0].node, "node7");
    CU_ASSERT_STRING_EQUAL(t[0].elapsed, "1:02");
    CU_ASSERT_STRING_EQUAL(t[4].reason, "JobArrayTaskLimit");
    CU_ASSERT_STRING_EQUAL(t[1].state, "SUBMITTED");

    /* sacct -n -P -X -o JobID,State,ExitCode,NodeList,Elapsed */
    const char *sacct = "12_0|COMPLETED|0:0|node7|00:04:10\n"
                        "12_1|CANCELLED by 1000|0:15|node8|00:00:42\n"
                        "12_2|OUT_OF_MEMORY|0:125|node9|00:01:00\n"
                        "12_3|TIMEOUT|0:0|node7|01:00:03\n"
                        "12_3.batch|CANCELLED|0:15|node7|01:00:05\n"
                        "12_[5-9]|PENDING|0:0|None assigned|00:00:00\n"
                        "15_0|NODE_FAIL|0:0|node3|00:10:00\n";
    CU_ASSERT_EQUAL(cnb_slurm_parse_sacct(sacct, t, 6), 5);
    CU_ASSERT_STRING_EQUAL(t[0].state, "COMPLETED");
    CU_ASSERT_STRING_EQUAL(t[1].state, "CANCELLED");
    CU_ASSERT_STRING_EQUAL(t[1].exit_code, "0:15");
    CU_ASSERT_STRING_EQUAL(t[2].state, "OUT_OF_MEMORY");
    CU_ASSERT_STRING_EQUAL(t[3].state, "TIMEOUT");
    CU_ASSERT_STRING_EQUAL(t[3].elapsed, "01:00:03"); /* the allocation's, not the step's */
    CU_ASSERT_STRING_EQUAL(t[5].state, "NODE_FAIL");
    CU_ASSERT_STRING_EQUAL(t[5].node, "node3");
    CU_ASSERT(cnb_slurm_state_final(t[1].state) && cnb_slurm_state_final(t[5].state));
    CU_ASSERT(!cnb_slurm_state_final("RUNNING") && !cnb_slurm_state_final("PENDING"));

    /* scontrol -o show job (no accounting): one line per task, the pending range apart */
    cnb_slurm_task u[2] = {task("1", 1, "SUBMITTED"), task("1", 2, "SUBMITTED")};
    const char *scontrol =
        "JobId=3 ArrayJobId=1 ArrayTaskId=1 JobName=a.sh UserId=root(0) JobState=FAILED "
        "Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:07 "
        "TimeLimit=UNLIMITED NodeList=vm BatchHost=vm\n"
        "JobId=1 ArrayJobId=1 ArrayTaskId=2-3%1 JobName=a.sh JobState=PENDING "
        "Reason=JobArrayTaskLimit ExitCode=0:0 RunTime=00:00:00 NodeList=(null)\n";
    CU_ASSERT_EQUAL(cnb_slurm_parse_scontrol(scontrol, u, 2), 1);
    CU_ASSERT_STRING_EQUAL(u[0].state, "FAILED");
    CU_ASSERT_STRING_EQUAL(u[0].exit_code, "3:0");
    CU_ASSERT_STRING_EQUAL(u[0].elapsed, "00:00:07");
    CU_ASSERT_STRING_EQUAL(u[0].node, "vm");
    CU_ASSERT_STRING_EQUAL(u[0].reason, "NonZeroExitCode");
    CU_ASSERT_STRING_EQUAL(u[1].state, "SUBMITTED");
    CU_ASSERT_EQUAL(cnb_slurm_parse_sacct("", u, 2), 0);
    CU_ASSERT_EQUAL(cnb_slurm_parse_squeue("Slurm accounting storage is disabled\n", u, 2), 0);
}

static void test_status_of_local_folder(void)
{
    const char *dir = test_tmpdir();
    char cmd[4096], out[8192], results[600], path[700], text[4096], fp[17] = "";
    const char *exp = write_experiment(dir, "loc", "");
    /* one cell of two run here, the other not */
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' run '%s' -q --set sweep.pool=avg --cell "
             "act-relu_pool-avg_seed1_naive_t1", CNB_BUILD_ROOT, exp);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    snprintf(results, sizeof results, "%s/results/loc", dir);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s'", CNB_BUILD_ROOT, results);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "2 cells: 1 done, 0 diverged, 0 running, 0 queued, 0 failed, 1 not started");
    CHECK_MSG(out, "act-relu_pool-avg_seed1_naive_t1     done      -");
    CHECK_MSG(out, "act-sigmoid_pool-avg_seed1_naive_t1  pending   -");
    CU_ASSERT_PTR_NULL(strstr(out, "Slurm job"));

    /* what Slurm last said about a task, kept in slurm/tasks.csv, stands when no Slurm
     * command can be asked: a TIMEOUT, with the tail of the task's log */
    snprintf(path, sizeof path, "%s/manifest.csv", results);
    CU_ASSERT_EQUAL_FATAL(read_text(path, text, sizeof text), 0);
    const char *row = strstr(text, "\nact-sigmoid_pool-avg_seed1_naive_t1,");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    sscanf(row + 1, "%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%16[0-9a-f]", fp);
    CU_ASSERT_EQUAL_FATAL(strlen(fp), 16);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/slurm' && printf 'job,index,cell,fingerprint,"
             "state,exit_code,node,elapsed,reason\\n77,0,act-sigmoid_pool-avg_seed1_naive_t1,"
             "%s,TIMEOUT,0:0,node7,01:00:04,\\n' > '%s/slurm/tasks.csv' && printf 'epoch 3\\n"
             "slurmstepd: error: *** JOB 78 ON node7 CANCELLED AT 2026-01-01T00:00:00 DUE TO "
             "TIME LIMIT ***\\n' > '%s/slurm/77_0.log'", results, fp, results, results);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "PATH=/nonexistent '%s/core/cnnbench' status '%s'",
             CNB_BUILD_ROOT, results);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "1 done, 0 diverged, 0 running, 0 queued, 1 failed, 0 not started");
    CHECK_MSG(out, "Slurm job 77 (as last recorded: squeue is not on PATH)");
    CHECK_MSG(out, "act-sigmoid_pool-avg_seed1_naive_t1  failed    77_0          node7");
    CHECK_MSG(out, "01:00:04  TIMEOUT: ran past its time limit (raise [launcher] time)");
    CHECK_MSG(out, "      | epoch 3\n      | slurmstepd: error: *** JOB 78 ON node7 CANCELLED");
    CHECK_MSG(out, "rerun the same `cnnbench run` command to run the 1 cell not finished");

    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s'", CNB_BUILD_ROOT, dir);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 2); /* not a results folder */
    CHECK_MSG(out, "manifest.csv: cannot open");
}

static void test_no_sbatch_exits_2(void)
{
    const char *dir = test_tmpdir();
    char cmd[2048], out[8192];
    const char *exp = write_experiment(dir, "nosb", "");
    snprintf(cmd, sizeof cmd, "PATH='%s' '%s/core/cnnbench' run '%s' --launcher slurm", dir,
             CNB_BUILD_ROOT, exp);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 2);
    CHECK_MSG(out, "`sbatch` is not on PATH");
    CHECK_MSG(out, "apt-get install slurm-client");
}

/* ---- on the one-node cluster -------------------------------------------------------------- */

/* The first column and every column whose header holds `want`, of each row of a CSV file
 * whose quoted fields hold no comma (cells.csv), rows joined by '\n'. */
static void csv_columns(const char *path, const char *want, char *out, size_t len)
{
    char text[16384], *save = NULL;
    out[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(read_text(path, text, sizeof text), 0);
    int cols[16], n = 0, row = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[32], *s2 = NULL;
        int nf = 0;
        for (char *tok = strtok_r(line, ",", &s2); tok && nf < 32; tok = strtok_r(NULL, ",", &s2))
            f[nf++] = tok;
        if (row++ == 0) {
            for (int i = 0; i < nf && n < 16; i++)
                if (strstr(f[i], want) || i == 0)
                    cols[n++] = i;
        }
        for (int i = 0; i < n; i++)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "",
                     cols[i] < nf ? f[cols[i]] : "?");
        snprintf(out + strlen(out), len - strlen(out), "\n");
    }
}

#define NEED_CLUSTER()                                                                     \
    do {                                                                                   \
        if (skipped[0])                                                                    \
            return; /* said once, by the suite's set-up */                                 \
    } while (0)

static void test_slurm_equals_local(void)
{
    NEED_CLUSTER();
    const char *dir = test_tmpdir();
    char cmd[2048], out[16384], a[4096], b[4096], path[700], text[8192];
    write_experiment(dir, "grid", "[launcher]\npartition = debug\ntime = 10\nparallel = 2\n"
                     "mem = 300M\nsbatch = --comment=cnnbench-test\n"
                     "setup = echo set up on $(hostname)\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run grid.ini -q --set "
             "experiment.name=local", dir, CNB_BUILD_ROOT);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    /* from the folder of the file, named relatively: the script makes every path absolute */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run grid.ini --launcher slurm",
             dir, CNB_BUILD_ROOT);
    int status = shell(cmd, out, sizeof out);
    if (status != 0)
        fprintf(stderr, "\n  run --launcher slurm: exit status %d:\n%s\n", status, out);
    CU_ASSERT_EQUAL_FATAL(status, 0);
    CHECK_MSG(out, "4 cells, 4 to submit, 0 finished");
    CHECK_MSG(out, ": 3 array tasks ("); /* MaxArraySize 3: indices 0-2, then the rest */
    CHECK_MSG(out, ": 1 array task (");
    CHECK_MSG(out, "slurm job ");
    CHECK_MSG(out, ": 0 queued, 0 running, 4 done, 0 failed (of 4 cells)");
    CHECK_MSG(out, "4 of 4 cells finished");

    snprintf(path, sizeof path, "%s/results/local/cells.csv", dir);
    csv_columns(path, "acc", a, sizeof a);
    snprintf(path, sizeof path, "%s/results/grid/cells.csv", dir);
    csv_columns(path, "acc", b, sizeof b);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "\n  local:\n%s  slurm:\n%s", a, b);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(strlen(a) > 100); /* the header and four rows of numbers */

    /* the script carries the [launcher] settings; each task logged into the folder */
    snprintf(path, sizeof path, "%s/results/grid/slurm/array-1.sbatch", dir);
    CU_ASSERT_EQUAL(read_text(path, text, sizeof text), 0);
    static const char *const lines[] = {"#SBATCH --array=0-2%2\n", "#SBATCH --time=10\n",
                                        "#SBATCH --partition=debug\n", "#SBATCH --mem=300M\n",
                                        "#SBATCH --cpus-per-task=1\n",
                                        "#SBATCH --comment=cnnbench-test\n",
                                        "echo set up on $(hostname)\n", "/grid.ini' --cell"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CHECK_MSG(text, lines[i]);
    snprintf(path, sizeof path, "%s/results/grid/slurm/array-2.sbatch", dir);
    CU_ASSERT_EQUAL(read_text(path, text, sizeof text), 0);
    CHECK_MSG(text, "#SBATCH --array=0-0%2\n");
    CHECK_MSG(text, "'act-relu_pool-max_seed1_naive_t1'  # 0\n");
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s/results/grid'", CNB_BUILD_ROOT,
             dir);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "4 cells: 4 done, 0 diverged, 0 running, 0 queued, 0 failed");
    CHECK_MSG(out, "_2 "); /* array task 2 of the first job */
    snprintf(cmd, sizeof cmd, "cat '%s/results/grid/slurm/'*_0.log", dir);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "set up on ");
    CHECK_MSG(out, "cnnbench task: exit status 0");
}

static void test_scancel_then_rerun(void)
{
    NEED_CLUSTER();
    const char *dir = test_tmpdir();
    char cmd[2048], out[16384], task[64] = "", results[700], path[800], text[8192];
    char launcher[800], mark[700];
    /* Two cells, one at a time, each task held in its set-up (after it has said so in a
     * file) until the file `go` exists: task 0 is caught running however busy the
     * machine is. The gate opens once the cancelled task has left the queue, its
     * processes gone, so that it cannot run its cell whatever the order in which the
     * launch and the cancellation reach slurmd. */
    snprintf(launcher, sizeof launcher, "[launcher]\nparallel = 1\n"
             "setup = touch \"%s/started-$SLURM_ARRAY_TASK_ID\"; "
             "until [ -e '%s/go' ]; do sleep 0.1; done\n", dir, dir);
    write_experiment(dir, "cancel", launcher);
    snprintf(results, sizeof results, "%s/results/cancel", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run cancel.ini --launcher slurm "
             "--no-wait -q --set sweep.pool=avg", dir, CNB_BUILD_ROOT);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "2 array tasks");
    char job[32] = "";
    const char *at = strstr(out, "submitted Slurm job ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    sscanf(at, "submitted Slurm job %31[0-9]", job);
    snprintf(task, sizeof task, "%s_0", job);
    snprintf(mark, sizeof mark, "%s/started-0", dir);
    for (int i = 0; i < 600 && access(mark, F_OK) != 0; i++)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL_FATAL(access(mark, F_OK), 0);
    snprintf(cmd, sizeof cmd, "scancel %s", task);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    int gone = 0;
    for (int i = 0; i < 300 && !gone; i++) {
        snprintf(cmd, sizeof cmd, "squeue -h -r -j %s -o %%i", task);
        gone = shell(cmd, out, sizeof out) == 0 && !strstr(out, task);
        if (!gone)
            usleep(100 * 1000);
    }
    CU_ASSERT_FATAL(gone);
    snprintf(cmd, sizeof cmd, "touch '%s/go'", dir);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    /* `cnnbench status` says it failed, with Slurm's reason, while task 1 runs on */
    int seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s'", CNB_BUILD_ROOT, results);
        CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
        seen = strstr(out, "act-sigmoid_pool-avg_seed1_naive_t1  failed") != NULL;
        if (!seen)
            usleep(200 * 1000);
    }
    if (!seen)
        fprintf(stderr, "\n  status never showed the cancelled cell failed:\n%s\n", out);
    CU_ASSERT(seen);
    CHECK_MSG(out, "CANCELLED");
    CHECK_MSG(out, task);
    CHECK_MSG(out, "slurm/"); /* the tail of its log */
    CHECK_MSG(out, "_0.log");

    /* the same command again (waiting this time): only the cancelled cell is submitted */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run cancel.ini --launcher slurm "
             "-q --set sweep.pool=avg", dir, CNB_BUILD_ROOT);
    int status = shell(cmd, out, sizeof out);
    if (status != 0)
        fprintf(stderr, "\n  rerun: exit status %d:\n%s\n", status, out);
    CU_ASSERT_EQUAL(status, 0);
    CHECK_MSG(out, "1 array task ");
    CHECK_MSG(out, "2 of 2 cells finished");
    snprintf(path, sizeof path, "%s/slurm/array-2.sbatch", results);
    CU_ASSERT_EQUAL(read_text(path, text, sizeof text), 0);
    CHECK_MSG(text, "#SBATCH --array=0-0%1\n");
    CHECK_MSG(text, "'act-sigmoid_pool-avg_seed1_naive_t1'  # 0\n");
    CU_ASSERT_PTR_NULL(strstr(text, "act-relu"));
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s'", CNB_BUILD_ROOT, results);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "2 cells: 2 done, 0 diverged, 0 running, 0 queued, 0 failed");
}

/* [select] on the cluster: the selection cells as arrays of their own, then the grid's
 * cells as arrays that Slurm starts after them (--no-wait submits all at once); the
 * results equal a local run's. */
static void test_select_two_arrays(void)
{
    NEED_CLUSTER();
    const char *dir = test_tmpdir();
    char cmd[2048], out[16384], a[4096], b[4096], path[700], text[8192];
    snprintf(path, sizeof path, "%s/sel.ini", dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = sel\nmodel = %s/experiments/models/lenet5.ini\n"
             "results = %s/results\n[vars]\npool = max\n[sweep]\nact = sigmoid, relu\n"
             "seed = 1, 2\n[select]\ntrain.lr = 0.02, 0.1\n[data]\ndir = %s\n"
             "train_limit = 1000\ntest_limit = 200\nvalidation = 200\n[train]\nepochs = 1\n"
             "batch = 50\ntrain_eval_limit = 100\n", CNB_SOURCE_ROOT, dir, test_data_dir());
    test_write_file(path, text);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run sel.ini -q --set "
             "experiment.name=local", dir, CNB_BUILD_ROOT);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' run sel.ini --launcher slurm "
             "--no-wait", dir, CNB_BUILD_ROOT);
    CU_ASSERT_EQUAL_FATAL(shell(cmd, out, sizeof out), 0);
    CHECK_MSG(out, "8 cells, 8 to submit"); /* 2 variants x 2 candidates, then 4 */
    /* MaxArraySize 3: the selection as arrays 1 and 2, the grid's as 3 and 4 after them */
    int first = 0, second = 0;
    const char *at = strstr(out, "submitted Slurm job ");
    CU_ASSERT_FATAL(at && sscanf(at, "submitted Slurm job %d", &first) == 1);
    at = strstr(at + 1, "submitted Slurm job ");
    CU_ASSERT_FATAL(at && sscanf(at, "submitted Slurm job %d", &second) == 1);
    char want[128];
    snprintf(want, sizeof want, "#SBATCH --dependency=afterany:%d:%d\n", first, second);
    for (int k = 1; k <= 4; k++) {
        snprintf(path, sizeof path, "%s/results/sel/slurm/array-%d.sbatch", dir, k);
        CU_ASSERT_EQUAL(read_text(path, text, sizeof text), 0);
        CU_ASSERT((strstr(text, want) != NULL) == (k > 2));
        CU_ASSERT((strstr(text, "'select-lr-") != NULL) == (k <= 2));
    }
    int done = 0;
    for (int i = 0; i < 600 && !done; i++) { /* until Slurm has run all eight */
        snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' status '%s/results/sel'",
                 CNB_BUILD_ROOT, dir);
        CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
        done = strstr(out, "8 cells: 8 done") != NULL || strstr(out, "failed  ") != NULL;
        if (!done)
            usleep(200 * 1000);
    }
    CHECK_MSG(out, "8 cells: 8 done, 0 diverged, 0 running, 0 queued, 0 failed");
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' report '%s/results/sel'", CNB_BUILD_ROOT,
             dir);
    CU_ASSERT_EQUAL(shell(cmd, out, sizeof out), 0);
    static const char *const files[] = {"cells.csv", "selection.csv"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/results/local/%s", dir, files[k]);
        csv_columns(path, k ? "val" : "acc", a, sizeof a);
        snprintf(path, sizeof path, "%s/results/sel/%s", dir, files[k]);
        csv_columns(path, k ? "val" : "acc", b, sizeof b);
        CU_ASSERT_STRING_EQUAL(a, b);
        CU_ASSERT(strlen(a) > 50);
    }
}

void suite_slurm(void)
{
    static const test_case cases[] = {
        {"[launcher] keys and values, each error at its line", test_launcher_section},
        {"the array script: settings, quoting, a missing folder", test_script_writer},
        {"squeue, sacct and scontrol output", test_parse_slurm_output},
        {"status: a folder run locally, and as last recorded", test_status_of_local_folder},
        {"no sbatch: exit 2 naming what to install", test_no_sbatch_exits_2},
        {"one-node cluster: --launcher slurm equals a local run", test_slurm_equals_local},
        {"one-node cluster: scancel, status, rerun", test_scancel_then_rerun},
        {"one-node cluster: [select] as arrays the grid's wait for", test_select_two_arrays},
        {NULL, NULL},
    };
    test_add_suite_fixture("slurm", slurm_init, slurm_cleanup, cases);
}
