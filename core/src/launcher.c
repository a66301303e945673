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

#include "csv.h"
#include "errors.h"
#include "experiment.h"
#include "fsutil.h"
#include "log.h"
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
        /* As on sbatch's command line: each word starting with '-' opens an option, the
         * words after it are its value. Not ';'-separated: " ;" starts a comment in an
         * INI line, which would drop the options after it without a word. */
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", kv->value);
        for (char *save = NULL, *word = strtok_r(copy, " \t", &save); word;
             word = strtok_r(NULL, " \t", &save)) {
            int opens = word[0] == '-', k = l->n_sbatch - !opens; /* the option it joins */
            size_t used = k >= 0 && !opens ? strlen(l->sbatch[k]) : 0;
            if (k < 0 || k == CNB_LAUNCHER_MAX_SBATCH || strpbrk(word, "'\"\\\n") ||
                used + strlen(word) + 2 > sizeof l->sbatch[0])
                return cnb_error("%s: [launcher] sbatch: '%s': expected sbatch options as on "
                                 "its command line, without quotes (--account=proj "
                                 "--qos=short -C haswell), at most %d",
                                 cnb_conf_where(c, s, kv, at, sizeof at), word,
                                 CNB_LAUNCHER_MAX_SBATCH);
            if (used) /* fits: checked above */
                l->sbatch[k][used++] = ' ';
            memcpy(l->sbatch[k] + used, word, strlen(word) + 1);
            l->n_sbatch += opens;
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
               "# The Slurm array %s, written by `cnnbench run --launcher slurm`.\n"
               "# Array task I runs cell ${cells[I]} (`cnnbench run EXPERIMENT --cell ID`) "
               "into its folder in\n# %s; its output goes to slurm/JOB_I.log there.\n%s",
            s->job_name, s->results, s->force ? "# Every cell runs again (--force).\n"
            : "# Submitting it again by hand is safe: a cell that finished with the same "
              "settings is skipped.\n");
    fprintf(f, "#SBATCH --job-name=%s\n", s->job_name);
    fprintf(f, "#SBATCH --array=0-%d", s->n_cells - 1);
    if (l->parallel)
        fprintf(f, "%%%d", l->parallel);
    fprintf(f, "\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=%d\n#SBATCH --mem=%ldM\n",
            s->cpus, s->mem_mib);
    if (l->time[0])
        fprintf(f, "#SBATCH --time=%s\n", l->time);
    if (s->after && s->after[0]) /* [select]: the grid's cells wait for the selection's */
        fprintf(f, "#SBATCH --dependency=afterany:%s\n", s->after);
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

/* The task of one "JOB_INDEX|a|b|c|d" line of squeue or sacct, its fields in f[5]; NULL
 * when the line is not one or names a task not in t. */
static cnb_slurm_task *task_of_line(char *line, char **f, cnb_slurm_task *t, int n)
{
    char job[32];
    int index;
    if (split_bars(line, f, 5) != 5 || split_task_id(f[0], job, sizeof job, &index))
        return NULL;
    return find_task(t, n, job, index);
}

static int squeue_line(char *line, cnb_slurm_task *t, int n)
{
    char *f[5];
    cnb_slurm_task *k = task_of_line(line, f, t, n);
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
    char *f[5];
    cnb_slurm_task *k = task_of_line(line, f, t, n);
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

/* ---- slurm/tasks.csv ------------------------------------------------------------------- */

static const char tasks_header[] =
    "job,index,cell,fingerprint,state,exit_code,node,elapsed,reason\n";

/* Every task ever submitted for the folder, in submission order (none: no file). */
static int tasks_load(const char *dir, cnb_slurm_task **t, int *n)
{
    char path[PATH_MAX + 32], line[1024];
    *t = NULL;
    *n = 0;
    snprintf(path, sizeof path, "%s/slurm/tasks.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : cnb_error("%s: cannot read: %s", path, strerror(errno));
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[9];
        if (cnb_csv_split(line, fld, 9) != 9 || strcmp(fld[0], "job") == 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            cnb_slurm_task *grown = realloc(*t, (size_t)cap * sizeof *grown);
            if (!grown) {
                fclose(f);
                free(*t), *t = NULL, *n = 0;
                return CNB_ENOMEM;
            }
            *t = grown;
        }
        cnb_slurm_task *k9 = &(*t)[(*n)++];
        memset(k9, 0, sizeof *k9);
        put_field(k9->job, sizeof k9->job, fld[0], strlen(fld[0]));
        k9->index = atoi(fld[1]);
        put_field(k9->cell, sizeof k9->cell, fld[2], strlen(fld[2]));
        put_field(k9->fingerprint, sizeof k9->fingerprint, fld[3], strlen(fld[3]));
        put_field(k9->state, sizeof k9->state, fld[4], strlen(fld[4]));
        put_field(k9->exit_code, sizeof k9->exit_code, fld[5], strlen(fld[5]));
        put_field(k9->node, sizeof k9->node, fld[6], strlen(fld[6]));
        put_field(k9->elapsed, sizeof k9->elapsed, fld[7], strlen(fld[7]));
        put_field(k9->reason, sizeof k9->reason, fld[8], strlen(fld[8]));
    }
    fclose(f);
    return 0;
}

static int tasks_save(const char *dir, const cnb_slurm_task *t, int n)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/slurm/tasks.csv", dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fputs(tasks_header, a.f);
    for (int i = 0; i < n; i++)
        fprintf(a.f, "%s,%d,%s,%s,%s,%s,%s,%s,%s\n", t[i].job, t[i].index, t[i].cell,
                t[i].fingerprint, t[i].state, t[i].exit_code, t[i].node, t[i].elapsed,
                t[i].reason);
    return cnb_atomic_commit(&a);
}

/* The latest task of `cell` submitted with its present settings, or NULL. */
static const cnb_slurm_task *latest_task(const cnb_slurm_task *t, int n,
                                         const cnb_cell_info *c)
{
    for (int i = n - 1; i >= 0; i--)
        if (strcmp(t[i].cell, c->id) == 0)
            return strcmp(t[i].fingerprint, c->fingerprint) == 0 ? &t[i] : NULL;
    return NULL;
}

/* ---- running the client commands -------------------------------------------------------- */

/* Append `arg` to the command line in buf, quoted for the shell. */
static void cmd_add(char *buf, size_t len, const char *arg)
{
    size_t used = strlen(buf);
    if (used && used < len - 1)
        buf[used++] = ' ';
    if (used < len - 1)
        buf[used++] = '\'';
    for (const char *s = arg; *s && used < len - 5; s++) {
        if (*s == '\'') {
            memcpy(buf + used, "'\\''", 4);
            used += 4;
        } else {
            buf[used++] = *s;
        }
    }
    if (used < len - 1)
        buf[used++] = '\'';
    buf[used] = '\0';
}

/* Run `cmd` through the shell, its stderr with its stdout into *out (malloc'd, never
 * NULL); returns its exit status, or -1 when it could not run. */
static int capture(const char *cmd, char **out)
{
    char line[1024];
    size_t used = 0, cap = 4096;
    *out = calloc(cap, 1);
    char full[8300];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    fflush(NULL);
    FILE *p = popen(full, "r");
    if (!p || !*out) {
        if (p)
            pclose(p);
        return -1;
    }
    while (fgets(line, sizeof line, p)) {
        size_t n = strlen(line);
        if (used + n + 1 > cap) {
            char *grown = realloc(*out, cap * 2 + n);
            if (!grown)
                break;
            *out = grown;
            cap = cap * 2 + n;
        }
        memcpy(*out + used, line, n + 1);
        used += n;
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The first line of a command's output, for messages. */
static const char *first_line(char *text)
{
    text[strcspn(text, "\n")] = '\0';
    return text[0] ? text : "(no output)";
}

static int on_path(const char *name)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX + 64];
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, n ? p : ".", name);
        if (access(dir, X_OK) == 0)
            return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

/* ---- following the tasks ---------------------------------------------------------------- */

/* Ask Slurm about every task not known to have ended: squeue for the queued and running
 * ones, then sacct (or, where accounting is off, `scontrol show job`) for those that left
 * the queue. With `final`, a task none of them knows any more becomes VANISHED; otherwise
 * it keeps its last state for the next look. Returns how many tasks squeue still lists,
 * or -1 (said in *why) when squeue could not be asked. */
static int refresh(cnb_slurm_task *t, int n, int final, char *why, size_t why_len)
{
    int active = 0;
    char (*saved)[32] = calloc(n ? (size_t)n : 1, sizeof *saved);
    if (!saved)
        return snprintf(why, why_len, "out of memory"), -1;
    for (int i = 0; i < n; i++) {
        if (cnb_slurm_state_final(t[i].state) || saved[i][0])
            continue;
        const char *job = t[i].job; /* every open task of this job, in one look */
        for (int k = i; k < n; k++)
            if (strcmp(t[k].job, job) == 0 && !cnb_slurm_state_final(t[k].state)) {
                snprintf(saved[k], sizeof saved[k], "%s", t[k].state[0] ? t[k].state : "?");
                t[k].state[0] = '\0';
            }
        char cmd[512] = "", *out;
        cmd_add(cmd, sizeof cmd, "squeue");
        cmd_add(cmd, sizeof cmd, "-h");
        cmd_add(cmd, sizeof cmd, "-r");
        cmd_add(cmd, sizeof cmd, "-j");
        cmd_add(cmd, sizeof cmd, job);
        cmd_add(cmd, sizeof cmd, "-o");
        cmd_add(cmd, sizeof cmd, "%i|%T|%N|%M|%r");
        int rc = capture(cmd, &out);
        if (rc != 0 && !strstr(out, "Invalid job id")) { /* gone: left the queue */
            snprintf(why, why_len, "squeue: %s", rc < 0 ? "cannot run" : first_line(out));
            for (int k = 0; k < n; k++)
                if (saved[k][0] && !t[k].state[0])
                    snprintf(t[k].state, sizeof t[k].state, "%s", saved[k]);
            free(out);
            free(saved);
            return -1;
        }
        active += rc == 0 ? cnb_slurm_parse_squeue(out, t, n) : 0;
        free(out);
        int left = 0;
        for (int k = i; k < n; k++)
            left += saved[k][0] && !t[k].state[0] && strcmp(t[k].job, job) == 0;
        if (left) {
            cmd[0] = '\0';
            cmd_add(cmd, sizeof cmd, "sacct");
            cmd_add(cmd, sizeof cmd, "-n");
            cmd_add(cmd, sizeof cmd, "-P");
            cmd_add(cmd, sizeof cmd, "-X");
            cmd_add(cmd, sizeof cmd, "-j");
            cmd_add(cmd, sizeof cmd, job);
            cmd_add(cmd, sizeof cmd, "-o");
            cmd_add(cmd, sizeof cmd, "JobID,State,ExitCode,NodeList,Elapsed");
            if (capture(cmd, &out) == 0)
                cnb_slurm_parse_sacct(out, t, n);
            free(out);
            left = 0;
            for (int k = i; k < n; k++)
                left += saved[k][0] && !t[k].state[0] && strcmp(t[k].job, job) == 0;
        }
        if (left) { /* no accounting: the controller remembers ended jobs for MinJobAge */
            cmd[0] = '\0';
            cmd_add(cmd, sizeof cmd, "scontrol");
            cmd_add(cmd, sizeof cmd, "-o");
            cmd_add(cmd, sizeof cmd, "show");
            cmd_add(cmd, sizeof cmd, "job");
            cmd_add(cmd, sizeof cmd, job);
            if (capture(cmd, &out) == 0)
                cnb_slurm_parse_scontrol(out, t, n);
            free(out);
        }
        for (int k = i; k < n; k++)
            if (saved[k][0] && !t[k].state[0] && strcmp(t[k].job, job) == 0)
                snprintf(t[k].state, sizeof t[k].state, "%s", final ? "VANISHED" : saved[k]);
    }
    free(saved);
    return active;
}

/* A cell as the folder and Slurm tell it together. */
typedef struct view {
    const char *state; /* pending, queued, running, done, diverged, failed */
    const cnb_slurm_task *task;
    char why[1024];
} view;

/* Why a task that ended did not finish its cell, from Slurm's state. */
static void describe(const cnb_slurm_task *t, char *buf, size_t len)
{
    int code = 0, sig = 0;
    sscanf(t->exit_code, "%d:%d", &code, &sig);
    if (strcmp(t->state, "COMPLETED") == 0)
        snprintf(buf, len, "its task ended (exit 0) without finishing the cell");
    else if (strcmp(t->state, "FAILED") == 0 && sig)
        snprintf(buf, len, "FAILED: killed by signal %d (%s)", sig, strsignal(sig));
    else if (strcmp(t->state, "FAILED") == 0)
        snprintf(buf, len, "FAILED with exit code %d%s", code,
                 code == 2 ? " (bad input, or the results folder is not on this node)" : "");
    else if (strcmp(t->state, "TIMEOUT") == 0)
        snprintf(buf, len, "TIMEOUT: ran past its time limit (raise [launcher] time)");
    else if (strcmp(t->state, "OUT_OF_MEMORY") == 0)
        snprintf(buf, len, "OUT_OF_MEMORY: used more than its --mem (raise [launcher] mem)");
    else if (strcmp(t->state, "NODE_FAIL") == 0)
        snprintf(buf, len, "NODE_FAIL: node %s failed; rerun to resubmit",
                 t->node[0] ? t->node : "?");
    else if (strcmp(t->state, "CANCELLED") == 0)
        snprintf(buf, len, "CANCELLED (scancel, or the cluster's administrators)");
    else if (strcmp(t->state, "VANISHED") == 0)
        snprintf(buf, len, "Slurm no longer knows how its task ended (cancelled while "
                           "queued, or its record expired)");
    else
        snprintf(buf, len, "%s%s%s", t->state, t->exit_code[0] ? ", exit code " : "",
                 t->exit_code);
}

static void make_view(view *v, const cnb_cell_info *c, const cnb_slurm_task *t)
{
    v->task = t;
    v->state = c->state;
    snprintf(v->why, sizeof v->why, "%s", c->message);
    if (strcmp(c->state, "done") == 0 || strcmp(c->state, "diverged") == 0 || !t)
        return;
    if (!cnb_slurm_state_final(t->state)) {
        int queued = strcmp(t->state, "PENDING") == 0 || strcmp(t->state, "SUBMITTED") == 0 ||
                     strcmp(t->state, "REQUEUED") == 0;
        v->state = queued ? "queued" : "running";
        snprintf(v->why, sizeof v->why, "%s", queued && strcmp(t->reason, "None") != 0 ? t->reason : "");
        return;
    }
    if (strcmp(c->state, "running") == 0) /* another process holds the cell now */
        return;
    char slurm[256];
    describe(t, slurm, sizeof slurm);
    v->state = "failed";
    snprintf(v->why, sizeof v->why, "%s%s%s", slurm, c->message[0] ? ": " : "", c->message);
}

typedef struct counts {
    int pending, queued, running, done, diverged, failed;
} counts;

static counts count_views(const view *v, int n)
{
    counts k = {0};
    for (int i = 0; i < n; i++) {
        const char *s = v[i].state;
        k.pending += strcmp(s, "pending") == 0 || strcmp(s, "interrupted") == 0 ||
                     strcmp(s, "waiting") == 0; /* for its [select] choice */
        k.queued += strcmp(s, "queued") == 0;
        k.running += strcmp(s, "running") == 0;
        k.done += strcmp(s, "done") == 0;
        k.diverged += strcmp(s, "diverged") == 0;
        k.failed += strcmp(s, "failed") == 0;
    }
    return k;
}

/* Cells and views of the folder now; *v malloc'd. */
static int load_views(const char *dir, const cnb_slurm_task *t, int nt, cnb_cell_info **cells,
                      view **v, int *n)
{
    int rc = cnb_results_cells(dir, cells, n);
    if (rc)
        return rc;
    *v = calloc(*n ? (size_t)*n : 1, sizeof **v);
    if (!*v)
        return free(*cells), *cells = NULL, CNB_ENOMEM;
    for (int i = 0; i < *n; i++)
        make_view(&(*v)[i], &(*cells)[i], latest_task(t, nt, &(*cells)[i]));
    return 0;
}

/* ---- cnnbench status -------------------------------------------------------------------- */

/* "H:MM:SS" from seconds. */
static void hms(double seconds, char *buf, size_t len)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* A cell run here: from its config.ini (written as it starts) to its `done` (or now, while
 * it runs); "" when it never started. */
static void local_elapsed(const char *dir, const cnb_cell_info *c, char *buf, size_t len)
{
    char path[PATH_MAX + 200];
    struct stat start, end;
    buf[0] = '\0';
    snprintf(path, sizeof path, "%s/%s/config.ini", dir, c->id);
    if (stat(path, &start) != 0)
        return;
    snprintf(path, sizeof path, "%s/%s/done", dir, c->id);
    if (strcmp(c->state, "running") == 0)
        hms(difftime(time(NULL), start.st_mtime), buf, len);
    else if (stat(path, &end) == 0)
        hms(difftime(end.st_mtime, start.st_mtime), buf, len);
}

/* The last `lines` lines of a task's log, indented, or why there is none. */
static void print_log_tail(const char *dir, const cnb_slurm_task *t, int lines)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/slurm/%s_%d.log", dir, t->job, t->index);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("      no log %s: the task never started, or Slurm could not write it there "
               "(is the results folder on a filesystem node %s mounts?)\n", path,
               t->node[0] ? t->node : "?");
        return;
    }
    char ring[8][512];
    int n = 0;
    while (fgets(ring[n % 8], sizeof ring[0], f)) {
        ring[n % 8][strcspn(ring[n % 8], "\r\n")] = '\0';
        n++;
    }
    fclose(f);
    if (lines > 8)
        lines = 8;
    printf("      %s%s:\n", n > lines ? "the end of " : "", path);
    for (int i = n > lines ? n - lines : 0; i < n; i++)
        printf("      | %s\n", ring[i % 8]);
}

int cnb_status_show(const char *dir)
{
    cnb_slurm_task *t = NULL;
    cnb_cell_info *cells = NULL;
    view *v = NULL;
    int nt = 0, n = 0, rc = tasks_load(dir, &t, &nt);
    if (rc)
        return rc;
    char why[512] = "";
    int asked = 0;
    if (nt > 0 && on_path("squeue")) {
        asked = refresh(t, nt, 1, why, sizeof why) >= 0;
        if (asked && access(dir, W_OK) == 0)
            tasks_save(dir, t, nt); /* keep what Slurm said: it forgets ended jobs */
    }
    rc = load_views(dir, t, nt, &cells, &v, &n);
    if (rc)
        goto out;
    counts k = count_views(v, n);
    printf("%s: %d cell%s: %d done, %d diverged, %d running, %d queued, %d failed, %d not "
           "started\n", dir, n, n == 1 ? "" : "s", k.done, k.diverged, k.running, k.queued,
           k.failed, k.pending);
    if (nt > 0) {
        printf("Slurm job%s", nt > 1 && strcmp(t[0].job, t[nt - 1].job) ? "s" : "");
        for (int i = 0; i < nt; i++)
            if (i == 0 || strcmp(t[i].job, t[i - 1].job) != 0)
                printf("%s %s", i ? "," : "", t[i].job);
        if (!asked)
            printf(" (as last recorded: %s)", why[0] ? why : "squeue is not on PATH");
        printf("; scripts and logs in %s/slurm\n", dir);
    }
    int wi = 4;
    for (int i = 0; i < n; i++)
        wi = (int)strlen(cells[i].id) > wi ? (int)strlen(cells[i].id) : wi;
    printf("\n%-*s  %-8s  %-12s  %-12s  %9s  %s\n", wi, "cell", "state", "slurm task", "node",
           "elapsed", "why");
    for (int i = 0; i < n; i++) {
        const cnb_slurm_task *task = v[i].task;
        char id[64] = "-", elapsed[32] = "";
        if (task)
            snprintf(id, sizeof id, "%s_%d", task->job, task->index);
        if (task && task->elapsed[0] && strcmp(task->state, "SUBMITTED") != 0)
            snprintf(elapsed, sizeof elapsed, "%s", task->elapsed);
        else
            local_elapsed(dir, &cells[i], elapsed, sizeof elapsed);
        printf("%-*s  %-8s  %-12s  %-12s  %9s  %s\n", wi, cells[i].id, v[i].state, id,
               task && task->node[0] ? task->node : "-", elapsed[0] ? elapsed : "-",
               v[i].why);
        if (task && strcmp(v[i].state, "failed") == 0)
            print_log_tail(dir, task, 5);
    }
    if (k.failed || k.pending)
        printf("\nrerun the same `cnnbench run` command to run the %d cell%s not finished; "
               "finished cells are kept\n", k.failed + k.pending,
               k.failed + k.pending == 1 ? "" : "s");
out:
    free(v);
    free(cells);
    free(t);
    return rc;
}

/* ---- cnnbench run --launcher slurm ----------------------------------------------------- */

/* Is `item` one of the comma-separated `list`? */
static int in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
        if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Adds `item` to the comma-separated `list` (of `len` bytes) unless it is there. */
static void list_add(char *list, size_t len, const char *item)
{
    size_t used = strlen(list);
    if (!in_list(list, item))
        snprintf(list + used, len - used, "%s%s", used ? "," : "", item);
}

/* A path the nodes are unlikely to see: warn (submitting goes on: a one-node cluster, or
 * a site whose /tmp is shared, is fine). */
static void warn_if_local(const char *what, const char *path)
{
    struct statfs fs;
    if (statfs(path, &fs) == 0 && (fs.f_type == 0x01021994 /* TMPFS_MAGIC */ ||
                                   fs.f_type == (long)0x858458f6 /* RAMFS_MAGIC */)) {
        cnb_log(CNB_LOG_WARN, "cnnbench", "%s %s is on tmpfs, in this machine's memory: no "
                "other node sees it; on a cluster, put it on the shared filesystem (see "
                "docs/cluster.md)", what, path);
        return;
    }
    static const char *const local[] = {"/tmp/", "/var/tmp/", "/dev/shm/", "/run/", NULL};
    for (int i = 0; local[i]; i++)
        if (strncmp(path, local[i], strlen(local[i])) == 0) {
            cnb_log(CNB_LOG_WARN, "cnnbench", "%s %s is under %s, which on most clusters "
                    "each node has its own: every node must see it at the same path (see "
                    "docs/cluster.md)", what, path, local[i]);
            return;
        }
}

/* MaxArraySize of the cluster (an array's indices stay below it); Slurm's default when
 * scontrol does not say. */
static int max_array_size(void)
{
    char *out, cmd[64] = "";
    long size = 1001;
    cmd_add(cmd, sizeof cmd, "scontrol");
    cmd_add(cmd, sizeof cmd, "show");
    cmd_add(cmd, sizeof cmd, "config");
    if (capture(cmd, &out) == 0) {
        const char *p = strstr(out, "MaxArraySize");
        if (p && sscanf(p, "MaxArraySize = %ld", &size) != 1)
            size = 1001;
    }
    free(out);
    return size > 1 ? (int)size : 1001;
}

/* The memory to ask for a cell estimated at `mib`. The estimate is above the peak so far,
 * but not by much (LeNet-5 on all of Fashion-MNIST: 266 MiB estimated, 244 MiB peak
 * resident; on 3,000 images 67 and 43), and a cell over its --mem is killed, which costs
 * the whole cell: ask 25% more, at least 256 MiB, in whole 64 MiB steps. */
static long mem_for(double mib)
{
    double want = mib * 1.25;
    if (want < 256.0)
        want = 256.0;
    return ((long)want + 63) / 64 * 64;
}

static volatile sig_atomic_t stop_following;

static void on_signal(int sig)
{
    (void)sig;
    stop_following = 1;
}

/* The one-line progress display, rewritten in place on a terminal, or a line per change. */
static void show_progress(const char *jobs, counts k, int n, int tty, char *last, size_t len)
{
    char line[256];
    snprintf(line, sizeof line, "slurm job %s: %d queued, %d running, %d done, %d failed "
             "(of %d cells)", jobs, k.queued, k.running, k.done + k.diverged, k.failed, n);
    if (tty) {
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
    } else if (strcmp(line, last) != 0) {
        printf("%s\n", line);
        fflush(stdout);
    }
    snprintf(last, len, "%s", line);
}

/* Poll Slurm every CNB_SLURM_POLL seconds (10) until no task is queued or running, showing
 * the progress; then the ended tasks' final states. CNB_EINTR when interrupted. */
static int follow(const char *dir, cnb_slurm_task *t, int nt, const char *jobs, int quiet)
{
    const char *env = getenv("CNB_SLURM_POLL");
    double poll = env && atof(env) > 0 ? atof(env) : 10.0;
    int tty = !quiet && isatty(STDERR_FILENO), failures = 0, rc = 0;
    char last[256] = "", why[512];
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_following = 0;
    for (;;) {
        int active = refresh(t, nt, 0, why, sizeof why);
        if (active < 0 && failures++ % 30 == 0) /* a busy controller: keep asking */
            cnb_log(CNB_LOG_WARN, "cnnbench", "%s; asking again every %.0f s", why, poll);
        if (active >= 0)
            failures = 0, tasks_save(dir, t, nt);
        cnb_cell_info *cells;
        view *v;
        int n;
        if (!quiet && load_views(dir, t, nt, &cells, &v, &n) == 0) {
            show_progress(jobs, count_views(v, n), n, tty, last, sizeof last);
            free(v);
            free(cells);
        }
        if (active == 0 || stop_following)
            break;
        struct timespec nap = {(time_t)poll, (long)((poll - (double)(time_t)poll) * 1e9)};
        nanosleep(&nap, NULL); /* a signal ends it early */
        if (stop_following)
            break;
    }
    if (tty)
        fputc('\n', stderr);
    if (stop_following) {
        printf("stopped following; the job goes on: `cnnbench status %s` shows it, `scancel "
               "%s` stops it\n", dir, jobs);
        rc = CNB_EINTR;
    } else { /* accounting may record an ended task a moment later */
        for (int tries = 0; tries < 5; tries++) {
            int open = 0;
            refresh(t, nt, tries == 4, why, sizeof why);
            for (int i = 0; i < nt; i++)
                open += !cnb_slurm_state_final(t[i].state);
            if (!open)
                break;
            sleep(1);
        }
        tasks_save(dir, t, nt);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* Submit `n` cells (ids) as arrays of at most MaxArraySize tasks; appends their tasks to
 * *t, and their job ids to `jobs` ("12", then "12,13"). */
static int submit(const char *dir, const cnb_slurm_script *proto, const char *const *ids,
                  const char *const *fingerprints, int n, cnb_slurm_task **t, int *nt,
                  char *jobs, size_t jobs_len)
{
    char path[PATH_MAX + 64];
    int chunk = max_array_size(), k = 1, rc = 0;
    struct stat st;
    for (;; k++) { /* array-K.sbatch: the K-th submission into this folder */
        snprintf(path, sizeof path, "%s/slurm/array-%d.sbatch", dir, k);
        if (stat(path, &st) != 0)
            break;
    }
    for (int from = 0; from < n && rc == 0; from += chunk, k++) {
        int m = n - from < chunk ? n - from : chunk;
        cnb_slurm_script s = *proto;
        s.cells = ids + from;
        s.n_cells = m;
        snprintf(path, sizeof path, "%s/slurm/array-%d.sbatch", dir, k);
        cnb_atomic a;
        if (cnb_atomic_open(&a, path))
            return CNB_EFAILED;
        rc = cnb_slurm_script_write(a.f, &s);
        if (rc) {
            fclose(a.f);
            unlink(a.tmp);
            return rc;
        }
        if (cnb_atomic_commit(&a))
            return CNB_EFAILED;
        chmod(path, 0755);
        char cmd[PATH_MAX + 128] = "", *out;
        cmd_add(cmd, sizeof cmd, "sbatch");
        cmd_add(cmd, sizeof cmd, "--parsable");
        cmd_add(cmd, sizeof cmd, path);
        int status = capture(cmd, &out);
        char job[32] = "";
        for (char *save = NULL, *line = strtok_r(out, "\n", &save); line && status == 0;
             line = strtok_r(NULL, "\n", &save)) /* "1234" or "1234;cluster", after warnings */
            if (line[0] >= '0' && line[0] <= '9')
                put_field(job, sizeof job, line, strspn(line, "0123456789"));
        if (status != 0 || !job[0]) {
            rc = cnb_error_code(CNB_EFAILED, "sbatch %s failed: %s; the script is kept there: "
                                "fix the cause (a [launcher] setting, or the cluster) and "
                                "rerun", path, first_line(out));
            free(out);
            return rc;
        }
        free(out);
        cnb_slurm_task *grown = realloc(*t, (size_t)(*nt + m) * sizeof *grown);
        if (!grown)
            return CNB_ENOMEM;
        *t = grown;
        for (int i = 0; i < m; i++) {
            cnb_slurm_task *x = &grown[(*nt)++];
            memset(x, 0, sizeof *x);
            snprintf(x->job, sizeof x->job, "%s", job);
            x->index = i;
            snprintf(x->cell, sizeof x->cell, "%s", ids[from + i]);
            snprintf(x->fingerprint, sizeof x->fingerprint, "%s", fingerprints[from + i]);
            snprintf(x->state, sizeof x->state, "SUBMITTED");
        }
        if (tasks_save(dir, *t, *nt))
            return CNB_EFAILED;
        list_add(jobs, jobs_len, job);
        printf("submitted Slurm job %s: %d array task%s (%s)\n", job, m, m == 1 ? "" : "s",
               path);
    }
    return rc;
}

/* The cells a submission leaves to Slurm, and what their jobs need. */
typedef struct submission {
    int m, m_sel; /* cells to submit, the selection cells first */
    int busy;     /* cells already queued or running */
    int cpus;     /* the most threads of a cell */
    double mib;   /* the most memory of a cell */
    char after[256]; /* the jobs of selection cells: the grid's cells start after them */
} submission;

/* Lists in ids and fps the cells to submit, saying of each busy one that it is left alone. */
static void collect_cells(const cnb_cell_info *cells, const view *v, int n, int force,
                          const char **ids, const char **fps, submission *sub)
{
    for (int i = 0; i < n; i++) {
        const char *s = v[i].state;
        int finished = strcmp(s, "done") == 0 || strcmp(s, "diverged") == 0;
        if (strcmp(s, "queued") == 0 || strcmp(s, "running") == 0) {
            sub->busy++;
            char task[64] = " in another process";
            if (v[i].task)
                snprintf(task, sizeof task, " as Slurm task %s_%d", v[i].task->job,
                         v[i].task->index);
            printf("cell %s is already %s%s; not submitted again\n", cells[i].id, s, task);
            if (cells[i].candidate[0] && v[i].task)
                list_add(sub->after, sizeof sub->after, v[i].task->job);
            continue;
        }
        if (finished && !force)
            continue;
        sub->m_sel += cells[i].candidate[0] != 0; /* the selection cells come first */
        ids[sub->m] = cells[i].id;
        fps[sub->m++] = cells[i].fingerprint;
        sub->cpus = cells[i].threads > sub->cpus ? cells[i].threads : sub->cpus;
        sub->mib = cells[i].mib > sub->mib ? cells[i].mib : sub->mib;
    }
}

/* Adds to jobs the earlier jobs still running, to follow them. */
static void earlier_jobs(const cnb_slurm_task *t, int nt, char *jobs, size_t len)
{
    for (int i = 0; i < nt; i++)
        if (!cnb_slurm_state_final(t[i].state))
            list_add(jobs, len, t[i].job);
}

/* Once the jobs have ended: what became of each cell, and the report, as a local run ends. */
static int summarise(const char *dir, cnb_slurm_task *t, int nt, cnb_cell_info **cells,
                     view **v, int *n)
{
    int rc = 0;
    free(*v), *v = NULL;
    free(*cells), *cells = NULL;
    if (cnb_results_refresh(dir) != 0 || (rc = load_views(dir, t, nt, cells, v, n)) != 0)
        return rc ? rc : CNB_EFAILED;
    counts k = count_views(*v, *n);
    printf("\n%d of %d cells finished (%d diverged), %d failed\n", k.done + k.diverged, *n,
           k.diverged, k.failed + k.pending + k.queued + k.running);
    for (int i = 0; i < *n; i++) { /* each cell without a clean result, and why */
        const view *vi = &(*v)[i];
        char task[64] = "";
        if (vi->task)
            snprintf(task, sizeof task, " (task %s_%d)", vi->task->job, vi->task->index);
        if (strcmp(vi->state, "done") != 0)
            printf("  %-8s %s%s%s%s\n", vi->state, (*cells)[i].id, task, vi->why[0] ? ": " : "",
                   vi->why);
    }
    fflush(stdout);
    if (k.done > 0 && cnb_report_write(dir) != 0)
        rc = CNB_EFAILED;
    int unfinished = *n - k.done - k.diverged;
    if (unfinished > 0)
        rc = cnb_error_code(CNB_EFAILED, "%d cell%s did not finish (listed above; `cnnbench "
                            "status %s` shows each one's log); rerun the same command to "
                            "resubmit them", unfinished, unfinished == 1 ? "" : "s", dir);
    return rc;
}

int cnb_launch_slurm(const cnb_experiment *e, cnb_registry *reg, const cnb_launch_opts *o)
{
    static const char *const needed[] = {"sbatch", "squeue", NULL};
    for (int i = 0; needed[i]; i++)
        if (!on_path(needed[i]))
            return cnb_error("--launcher slurm: `%s` is not on PATH; run from a machine with "
                             "Slurm's client commands (a cluster's login node, perhaps after "
                             "`module load slurm`; on Debian, apt-get install slurm-client)",
                             needed[i]);
    cnb_launcher_cfg cfg;
    int rc = cnb_launcher_parse(&e->conf, &cfg);
    if (rc)
        return rc;
    char exp_abs[PATH_MAX], workdir[PATH_MAX], dir_rel[PATH_MAX], dir[PATH_MAX];
    char *plugins[64];
    int n_plugins = 0;
    if (!realpath(o->experiment, exp_abs) || !getcwd(workdir, sizeof workdir))
        return cnb_error("%s: %s", o->experiment, strerror(errno));
    for (int i = 0; i < o->n_plugins && i < 64; i++) {
        plugins[n_plugins] = realpath(o->plugins[i], NULL);
        if (!plugins[n_plugins])
            plugins[n_plugins] = strdup(o->plugins[i]); /* a plugin name: found as here */
        n_plugins += plugins[n_plugins] != NULL;
    }
    cnb_sweep_opts so = {.force = o->force, .jobs = 1};
    int lock = -1, nt = 0, n = 0;
    cnb_slurm_task *t = NULL;
    cnb_cell_info *cells = NULL;
    view *v = NULL;
    const char **ids = NULL, **fps = NULL;
    rc = cnb_sweep_prepare(e, reg, &so, dir_rel, sizeof dir_rel, &lock);
    if (rc)
        goto out;
    if (!realpath(dir_rel, dir)) {
        rc = cnb_error("%s: %s", dir_rel, strerror(errno));
        goto out;
    }
    char slurm_dir[PATH_MAX + 16], why[512] = "";
    snprintf(slurm_dir, sizeof slurm_dir, "%s/slurm", dir);
    if ((rc = cnb_mkdirs(slurm_dir)) != 0 || (rc = tasks_load(dir, &t, &nt)) != 0) {
        rc = CNB_EFAILED;
        goto out;
    }
    if (nt > 0 && refresh(t, nt, 1, why, sizeof why) < 0) { /* not bad input: exit 1 */
        rc = cnb_error_code(CNB_EFAILED, "cannot ask Slurm about the earlier tasks of %s (%s); "
                            "try again when the controller answers", dir, why);
        goto out;
    }
    if ((rc = load_views(dir, t, nt, &cells, &v, &n)) != 0)
        goto out;
    ids = calloc(n ? (size_t)n : 1, sizeof *ids);
    fps = calloc(n ? (size_t)n : 1, sizeof *fps);
    if (!ids || !fps) {
        rc = CNB_ENOMEM;
        goto out;
    }
    submission sub = {.cpus = 1};
    collect_cells(cells, v, n, o->force, ids, fps, &sub);
    int m = sub.m, m_sel = sub.m_sel, busy = sub.busy;
    char *after = sub.after;
    printf("%s: %d cell%s, %d to submit, %d finished, %d queued or running; results in %s\n",
           e->conf.path, n, n == 1 ? "" : "s", m, n - m - busy, busy, dir);
    char jobs[256] = "";
    if (m > 0) {
        warn_if_local("the results folder", dir);
        warn_if_local("the experiment file", exp_abs);
        warn_if_local("the cnnbench executable", o->exe);
        char job_name[PATH_MAX + 8];
        const char *leaf = strrchr(dir, '/');
        snprintf(job_name, sizeof job_name, "cnb-%s", leaf ? leaf + 1 : dir);
        cnb_slurm_script proto = {
            .cfg = &cfg, .job_name = job_name, .results = dir, .workdir = workdir,
            .exe = o->exe, .experiment = exp_abs, .profile = o->profile, .sets = o->sets,
            .n_sets = o->n_sets, .plugins = (const char *const *)plugins,
            .n_plugins = n_plugins, .force = o->force,
            .cpus = cfg.cpus_per_task ? cfg.cpus_per_task : sub.cpus,
            .mem_mib = cfg.mem_mib ? cfg.mem_mib : mem_for(sub.mib)};
        /* [select]: the selection cells as an array of their own, and the grid's cells as
         * one that Slurm starts once it (and any earlier selection job) has ended: then
         * their values are chosen; a selection cell that failed is rerun by the first of
         * its variant's cells to start (a run of cells runs their selection first). */
        if (m_sel && (rc = submit(dir, &proto, ids, fps, m_sel, &t, &nt, jobs, sizeof jobs)))
            goto out;
        snprintf(after + strlen(after), sizeof sub.after - strlen(after), "%s%s",
                 after[0] && jobs[0] ? "," : "", jobs);
        for (char *c = after; (c = strchr(c, ',')); c++)
            *c = ':'; /* afterany:12:13 */
        proto.after = after;
        if (m > m_sel && (rc = submit(dir, &proto, ids + m_sel, fps + m_sel, m - m_sel, &t,
                                      &nt, jobs, sizeof jobs)) != 0)
            goto out;
    } else {
        earlier_jobs(t, nt, jobs, sizeof jobs);
    }
    if (o->no_wait) {
        if (m > 0)
            printf("not waiting (--no-wait): `cnnbench status %s` shows the cells, rerunning "
                   "this command resubmits the ones that fail\n", dir);
        goto out;
    }
    if (jobs[0] && (rc = follow(dir, t, nt, jobs, o->quiet)) != 0)
        goto out;
    rc = summarise(dir, t, nt, &cells, &v, &n);
out:
    if (lock >= 0)
        close(lock);
    for (int i = 0; i < n_plugins; i++)
        free(plugins[i]);
    free(ids);
    free(fps);
    free(v);
    free(cells);
    free(t);
    return rc;
}
