/*
 * launcher.c - the Slurm launcher and `cnnbench status`; see launcher.h.
 *
 * Slurm is reached only through its client commands (sbatch, squeue, sacct, scontrol),
 * run through the shell with every argument quoted, never through libslurm: the commands
 * are what every cluster's users have, whatever the version of its controller. Their
 * output is parsed from fixed, '|'-separated formats (-o, -P), not from the columns a
 * person reads.
 */
#include "launcher.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "experiment.h"
#include "fsutil.h"
#include "host.h"
#include "report.h"
#include "sweep.h"
#include "train.h"

/* ---- [launcher] ----------------------------------------------------------------------- */

const char *const cnb_launcher_keys[] = {"partition", "time", "cpus_per_task", "mem",
                                         "parallel", "sbatch", "setup", NULL};

/* Slurm's time limits: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS,
 * DAYS-HOURS:MINUTES, DAYS-HOURS:MINUTES:SECONDS, or UNLIMITED / INFINITE. */
static int valid_time(const char *s)
{
    if (strcmp(s, "UNLIMITED") == 0 || strcmp(s, "INFINITE") == 0)
        return 1;
    int numbers = 0, colons = 0, dash = 0;
    for (const char *p = s; *p;) {
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        numbers++;
        if (*p == '-' && numbers == 1 && !dash)
            dash = 1, p++;
        else if (*p == ':' && colons < 2)
            colons++, p++;
        else if (*p)
            return 0;
        if (!*p && (p[-1] == ':' || p[-1] == '-'))
            return 0;
    }
    return numbers > 0 && numbers == 1 + dash + colons;
}

/* "4096", "4096M", "4G", "512K", "1T" (Slurm's --mem; no unit is MiB) -> MiB, or -1. */
static long parse_mem(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0)
        return -1;
    long long mib = v;
    if (*end == 'K' || *end == 'k')
        mib = (v + 1023) / 1024;
    else if (*end == 'G' || *end == 'g')
        mib = v * 1024;
    else if (*end == 'T' || *end == 't')
        mib = v * 1024 * 1024;
    else if (*end && *end != 'M' && *end != 'm')
        return -1;
    if (*end && end[1])
        return -1;
    return mib > 0 && mib < (1LL << 40) ? (long)mib : -1;
}

int cnb_launcher_parse(const cnb_conf *c, cnb_launcher_cfg *l)
{
    memset(l, 0, sizeof *l);
    const cnb_section *s = cnb_conf_section(c, "launcher");
    if (!s)
        return 0;
    if (cnb_section_check_keys(c, s, cnb_launcher_keys))
        return CNB_EINVAL;
    long cpus = 0, parallel = 0;
    if (cnb_conf_int(c, s, "cpus_per_task", 1, 4096, &cpus) ||
        cnb_conf_int(c, s, "parallel", 1, 1000000, &parallel))
        return CNB_EINVAL;
    l->cpus_per_task = (int)cpus;
    l->parallel = (int)parallel;
    char at[1100];
    const cnb_kv *kv;
    if ((kv = cnb_section_get(s, "partition"))) {
        int ok = kv->value[0] && strlen(kv->value) < sizeof l->partition;
        for (const char *p = kv->value; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("_.,-", *p);
        if (!ok)
            return cnb_error("%s: [launcher] partition = '%s': expected a partition name "
                             "(or several, comma-separated) as `sinfo -s` lists them",
                             cnb_conf_where(c, s, kv, at, sizeof at), kv->value);
        snprintf(l->partition, sizeof l->partition, "%s", kv->value);
    }
    if ((kv = cnb_section_get(s, "time"))) {
        if (!valid_time(kv->value) || strlen(kv->value) >= sizeof l->time)
            return cnb_error("%s: [launcher] time = '%s': expected a time limit per cell as "
                             "Slurm writes it: MINUTES, HOURS:MINUTES:SECONDS or "
                             "DAYS-HOURS[:MINUTES] (for example 90, 2:00:00, 1-12)",
                             cnb_conf_where(c, s, kv, at, sizeof at), kv->value);
        snprintf(l->time, sizeof l->time, "%s", kv->value);
    }
    if ((kv = cnb_section_get(s, "mem")) && (l->mem_mib = parse_mem(kv->value)) < 0)
        return cnb_error("%s: [launcher] mem = '%s': expected memory per cell as Slurm's "
                         "--mem takes it: a number with K, M (the default), G or T (for "
                         "example 4G)", cnb_conf_where(c, s, kv, at, sizeof at), kv->value);
    if ((kv = cnb_section_get(s, "sbatch"))) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", kv->value);
        for (char *save = NULL, *opt = strtok_r(copy, ";", &save); opt;
             opt = strtok_r(NULL, ";", &save)) {
            while (*opt == ' ' || *opt == '\t')
                opt++;
            char *end = opt + strlen(opt);
            while (end > opt && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
            if (!*opt)
                continue;
            if (opt[0] != '-' || strchr(opt, '\n') || strlen(opt) >= sizeof l->sbatch[0] ||
                l->n_sbatch == CNB_LAUNCHER_MAX_SBATCH)
                return cnb_error("%s: [launcher] sbatch: '%s': expected sbatch options "
                                 "separated by ';', each starting with '-' (--account=proj; "
                                 "--qos=short), at most %d", cnb_conf_where(c, s, kv, at,
                                 sizeof at), opt, CNB_LAUNCHER_MAX_SBATCH);
            snprintf(l->sbatch[l->n_sbatch++], sizeof l->sbatch[0], "%s", opt);
        }
    }
    if ((kv = cnb_section_get(s, "setup"))) {
        if (strlen(kv->value) >= sizeof l->setup)
            return cnb_error("%s: [launcher] setup: longer than %zu characters; put the "
                             "commands in a script and name it here",
                             cnb_conf_where(c, s, kv, at, sizeof at), sizeof l->setup - 1);
        snprintf(l->setup, sizeof l->setup, "%s", kv->value);
    }
    return 0;
}

/* ---- the array script ------------------------------------------------------------------ */

/* s quoted for the shell: '...' with each ' written as '\'' */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* sbatch reads #SBATCH lines with a tokenizer of its own: a value holding a space, a quote
 * or a newline would not survive it. */
static int sbatch_safe(const char *what, const char *s)
{
    if (strpbrk(s, " \t\n'\"\\"))
        return cnb_error("%s '%s' holds a space, quote or backslash, which an #SBATCH line "
                         "cannot carry; use a path without them", what, s);
    return 0;
}

int cnb_slurm_script_write(FILE *f, const cnb_slurm_script *s)
{
    const cnb_launcher_cfg *l = s->cfg;
    if (s->n_cells < 1)
        return cnb_error("no cell to put in a Slurm array");
    for (int i = 0; i < s->n_cells; i++)
        if (!s->cells[i][0] || strpbrk(s->cells[i], "\n'"))
            return cnb_error("cell id '%s' cannot be written into a script", s->cells[i]);
    if (sbatch_safe("the results folder", s->results) || sbatch_safe("the job name", s->job_name))
        return CNB_EINVAL;
    fprintf(f, "#!/bin/bash\n"
               "# The Slurm array of cnnbench experiment %s, written by `cnnbench run "
               "--launcher slurm`.\n"
               "# Array task I runs cell ${cells[I]} (`cnnbench run EXPERIMENT --cell ID`) "
               "into its folder in\n# %s; its output goes to slurm/JOB_I.log there. "
               "Submitting it again by hand is\n# safe: a cell that finished with the same "
               "settings is skipped.\n",
            s->job_name, s->results);
    fprintf(f, "#SBATCH --job-name=%s\n", s->job_name);
    fprintf(f, "#SBATCH --array=0-%d", s->n_cells - 1);
    if (l->parallel)
        fprintf(f, "%%%d", l->parallel);
    fprintf(f, "\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=%d\n#SBATCH --mem=%ldM\n",
            s->cpus, s->mem_mib);
    if (l->time[0])
        fprintf(f, "#SBATCH --time=%s\n", l->time);
    if (l->partition[0])
        fprintf(f, "#SBATCH --partition=%s\n", l->partition);
    fprintf(f, "#SBATCH --output=%s/slurm/%%A_%%a.log\n", s->results);
    for (int i = 0; i < l->n_sbatch; i++)
        fprintf(f, "#SBATCH %s\n", l->sbatch[i]);

    fprintf(f, "\nresults=");
    put_quoted(f, s->results);
    fprintf(f, "\ncells=(\n");
    for (int i = 0; i < s->n_cells; i++) {
        fprintf(f, "  ");
        put_quoted(f, s->cells[i]);
        fprintf(f, "  # %d\n", i);
    }
    fprintf(f, ")\ncell=${cells[$SLURM_ARRAY_TASK_ID]}\n"
               "echo \"cnnbench task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}: cell $cell "
               "on $(hostname) at $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n"
               "# The cells write into the results folder: it must be the one the submitting "
               "machine sees.\nif [ ! -d \"$results\" ]; then\n"
               "  echo \"cnnbench task: $results does not exist on $(hostname): the results "
               "folder must be on a filesystem every node mounts (see docs/cluster.md)\" >&2\n"
               "  exit 2\nfi\ncd ");
    put_quoted(f, s->workdir);
    fprintf(f, " || { echo \"cnnbench task: cannot enter the working folder on $(hostname)\" "
               ">&2; exit 2; }\n");
    if (l->setup[0]) {
        fprintf(f, "# [launcher] setup\n{\n%s\n} || { echo \"cnnbench task: the setup command "
                   "failed ([launcher] setup)\" >&2; exit 2; }\n", l->setup);
    }
    put_quoted(f, s->exe);
    fprintf(f, " run ");
    put_quoted(f, s->experiment);
    fprintf(f, " --cell \"$cell\"");
    if (s->profile && s->profile[0]) {
        fprintf(f, " --profile ");
        put_quoted(f, s->profile);
    }
    for (int i = 0; i < s->n_sets; i++) {
        fprintf(f, " --set ");
        put_quoted(f, s->sets[i]);
    }
    for (int i = 0; i < s->n_plugins; i++) {
        fprintf(f, " --plugin ");
        put_quoted(f, s->plugins[i]);
    }
    fprintf(f, "%s\nstatus=$?\necho \"cnnbench task: exit status $status after ${SECONDS} s\"\n"
               "exit $status\n", s->force ? " --force" : "");
    return ferror(f) ? CNB_EIO : 0;
}

/* ---- what Slurm says ------------------------------------------------------------------- */

int cnb_slurm_state_final(const char *state)
{
    static const char *const final[] = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY",
                                        "NODE_FAIL", "CANCELLED", "PREEMPTED", "BOOT_FAIL",
                                        "DEADLINE", "REVOKED", "VANISHED", NULL};
    for (int i = 0; final[i]; i++)
        if (strcmp(state, final[i]) == 0)
            return 1;
    return 0;
}

/* "12_3" -> job "12", index 3; 0, or -1 for anything else ("12_[4-9]", "12_3.batch",
 * "12"). */
static int split_task_id(const char *id, char *job, size_t len, int *index)
{
    const char *us = strchr(id, '_');
    if (!us || us == id || (size_t)(us - id) >= len)
        return -1;
    char *end;
    long v = strtol(us + 1, &end, 10);
    if (end == us + 1 || *end || v < 0 || v > 100000000)
        return -1;
    snprintf(job, len, "%.*s", (int)(us - id), id);
    *index = (int)v;
    return 0;
}

static cnb_slurm_task *find_task(cnb_slurm_task *t, int n, const char *job, int index)
{
    for (int i = n - 1; i >= 0; i--) /* the latest row wins */
        if (t[i].index == index && strcmp(t[i].job, job) == 0)
            return &t[i];
    return NULL;
}

/* dst = src with ',' and '|' made ';' (tasks.csv has no quoting), trimmed to dst's size */
static void put_field(char *dst, size_t len, const char *src, size_t n)
{
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] == ',' || src[i] == '\n' ? ';' : src[i];
    dst[n] = '\0';
}

/* Split a '|'-separated line in place. */
static int split_bars(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

/* Each line of text, in a copy, to fn; returns the sum of what fn returned. */
static int each_line(const char *text, int (*fn)(char *, cnb_slurm_task *, int),
                     cnb_slurm_task *t, int n)
{
    char *copy = strdup(text ? text : "");
    int count = 0;
    if (!copy)
        return 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        count += fn(line, t, n);
    }
    free(copy);
    return count;
}

static int squeue_line(char *line, cnb_slurm_task *t, int n)
{
    char *f[5], job[32];
    int index;
    if (split_bars(line, f, 5) != 5 || split_task_id(f[0], job, sizeof job, &index))
        return 0;
    cnb_slurm_task *k = find_task(t, n, job, index);
    if (!k)
        return 0;
    put_field(k->state, sizeof k->state, f[1], strlen(f[1]));
    put_field(k->node, sizeof k->node, f[2], strlen(f[2]));
    put_field(k->elapsed, sizeof k->elapsed, f[3], strlen(f[3]));
    put_field(k->reason, sizeof k->reason, f[4], strlen(f[4]));
    return 1;
}

int cnb_slurm_parse_squeue(const char *text, cnb_slurm_task *t, int n)
{
    return each_line(text, squeue_line, t, n);
}

static int sacct_line(char *line, cnb_slurm_task *t, int n)
{
    char *f[5], job[32];
    int index;
    if (split_bars(line, f, 5) != 5 || split_task_id(f[0], job, sizeof job, &index))
        return 0;
    cnb_slurm_task *k = find_task(t, n, job, index);
    if (!k)
        return 0;
    /* "CANCELLED by 1234": the state is the first word */
    put_field(k->state, sizeof k->state, f[1], strcspn(f[1], " "));
    put_field(k->exit_code, sizeof k->exit_code, f[2], strlen(f[2]));
    if (strcmp(f[3], "None assigned") != 0)
        put_field(k->node, sizeof k->node, f[3], strlen(f[3]));
    put_field(k->elapsed, sizeof k->elapsed, f[4], strlen(f[4]));
    k->reason[0] = '\0';
    return 1;
}

int cnb_slurm_parse_sacct(const char *text, cnb_slurm_task *t, int n)
{
    return each_line(text, sacct_line, t, n);
}

/* The value of " KEY=" in a `scontrol -o` line, up to the next space. */
static int kv_value(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strncmp(line, pat + 1, strlen(pat + 1)) == 0 ? line + strlen(pat + 1)
                    : strstr(line, pat);
    if (!p)
        return -1;
    if (p != line + strlen(pat + 1))
        p += strlen(pat);
    put_field(out, len, p, strcspn(p, " "));
    return 0;
}

static int scontrol_line(char *line, cnb_slurm_task *t, int n)
{
    char job[32], index[32], id[80];
    int i;
    if (kv_value(line, "ArrayJobId", job, sizeof job) ||
        kv_value(line, "ArrayTaskId", index, sizeof index))
        return 0;
    snprintf(id, sizeof id, "%s_%s", job, index);
    if (split_task_id(id, job, sizeof job, &i)) /* a range of pending tasks */
        return 0;
    cnb_slurm_task *k = find_task(t, n, job, i);
    if (!k)
        return 0;
    kv_value(line, "JobState", k->state, sizeof k->state);
    kv_value(line, "ExitCode", k->exit_code, sizeof k->exit_code);
    kv_value(line, "RunTime", k->elapsed, sizeof k->elapsed);
    if (kv_value(line, "NodeList", k->node, sizeof k->node) == 0 &&
        strcmp(k->node, "(null)") == 0)
        k->node[0] = '\0';
    if (kv_value(line, "Reason", k->reason, sizeof k->reason) == 0 &&
        strcmp(k->reason, "None") == 0)
        k->reason[0] = '\0';
    return 1;
}

int cnb_slurm_parse_scontrol(const char *text, cnb_slurm_task *t, int n)
{
    return each_line(text, scontrol_line, t, n);
}
