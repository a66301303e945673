/*
 * launcher.h - hand a grid's cells to Slurm, and say where every cell of a results folder
 * stands.
 *
 * `cnnbench run EXP --launcher slurm` prepares the results folder as a local run does
 * (cnb_sweep_prepare: the grid is validated, sweep.ini and manifest.csv written), then
 * writes an sbatch array script, one array task per cell still to run, each task running
 * `cnnbench run EXP --cell ID` on its node with the user's --profile, --set and --plugin
 * options; it submits the script (`sbatch --parsable`) and follows the job (squeue, then
 * sacct, or `scontrol show job` where accounting is off) until no task is queued or
 * running, then writes the report as a local run does. Slurm is the scheduler: nothing
 * here queues, retries or places work itself. Cells are redone only as a local rerun would
 * redo them: their fingerprints decide (a finished cell with the same settings is kept).
 *
 * In the results folder, under slurm/:
 *   array-K.sbatch  the K-th submission's script (it embeds the array index -> cell map)
 *   JOB_INDEX.log   each task's output: the cell's own lines, then Slurm's (a TIMEOUT or
 *                   CANCELLED notice) - the tail `cnnbench status` shows for a failure
 *   tasks.csv       job, array index, cell and fingerprint of every task submitted, with
 *                   the last state, exit code, node and elapsed time Slurm gave for it
 *                   (kept, since a cluster without accounting forgets finished jobs)
 *
 * The folder must be on a filesystem every node mounts: the task refuses to run, saying
 * so in its log, when the folder is absent on its node; submitting warns when the folder,
 * the experiment or the executable lies on tmpfs or under /tmp, /var/tmp, /dev/shm.
 * Not a workflow engine: no retries, and one dependency only: with [select] (select.h)
 * the selection cells go as an array of their own, and the grid's cells as a second that
 * Slurm starts once the first has ended (--dependency=afterany), so --no-wait submits
 * both at once. One submission of each per run (an array, or several when the cells
 * outnumber the cluster's MaxArraySize).
 */
#ifndef CNB_LAUNCHER_H
#define CNB_LAUNCHER_H

#include <stdio.h>

#include "conf.h"

#define CNB_LAUNCHER_MAX_SBATCH 16

/* The [launcher] section of an experiment file (every key optional). */
typedef struct cnb_launcher_cfg {
    char partition[128];   /* partition = NAME (Slurm's default partition if empty)    */
    char time[32];         /* time = a limit per cell in Slurm's forms (MINUTES,
                              H:MM:SS, D-HH:MM...); "" = the partition's default        */
    int cpus_per_task;     /* cpus_per_task = N; 0 = the cells' threads (the largest)   */
    long mem_mib;          /* mem = N[K|M|G|T] per task; 0 = the cells' estimated need  */
    int parallel;          /* parallel = N tasks at most at once (--array=...%N); 0: any */
    char sbatch[CNB_LAUNCHER_MAX_SBATCH][256]; /* sbatch = --account=x --qos=y -C z:
                                                  one #SBATCH line per option            */
    int n_sbatch;
    char setup[1024];      /* setup = a shell command run first on the node
                              (module load openblas)                                    */
} cnb_launcher_cfg;

/* The keys [launcher] accepts (NULL-terminated), for the experiment loader. */
extern const char *const cnb_launcher_keys[];

/* Read [launcher] of `c` (absent: every default) into *l; CNB_EINVAL after an error
 * naming the key's file and line (or its --set) and the accepted form. */
int cnb_launcher_parse(const cnb_conf *c, cnb_launcher_cfg *l);

/* What `run --launcher slurm` was given, for the script to pass on to each cell. */
typedef struct cnb_launch_opts {
    const char *exe;          /* this cnnbench, absolute                            */
    const char *experiment;   /* the experiment file as given (made absolute here)  */
    const char *profile;      /* or NULL                                            */
    char *const *sets;        /* --set values, as given                             */
    int n_sets;
    const char *const *plugins; /* --plugin files (made absolute here)             */
    int n_plugins;
    int force;                /* --force: every cell again, with --force            */
    int no_wait;              /* submit and return                                  */
    int quiet;                /* no progress line                                   */
} cnb_launch_opts;

/* Everything the array script needs; paths absolute. */
typedef struct cnb_slurm_script {
    const cnb_launcher_cfg *cfg;
    const char *job_name;
    const char *results;      /* the results folder                                 */
    const char *workdir;      /* where `run` was started: relative paths of the
                                 experiment (results, data) mean the same there     */
    const char *exe, *experiment, *profile;
    char *const *sets;
    int n_sets;
    const char *const *plugins;
    int n_plugins;
    int force;
    const char *const *cells; /* array index -> cell id                             */
    int n_cells;
    int cpus;                 /* --cpus-per-task                                    */
    long mem_mib;             /* --mem, MiB                                         */
    const char *after;        /* "12:13": start once these jobs have ended
                                 (--dependency=afterany); NULL or "": at once        */
} cnb_slurm_script;

/* Write the sbatch script to f; 0, or CNB_EINVAL for a cell id or path that cannot be
 * written safely (a newline). Every value is quoted for the shell. */
int cnb_slurm_script_write(FILE *f, const cnb_slurm_script *s);

/* One array task as Slurm last described it. */
typedef struct cnb_slurm_task {
    char job[32];          /* the array's job id                                      */
    int index;             /* its array index                                         */
    char cell[128];
    char fingerprint[17];  /* the cell's when it was submitted                        */
    char state[32];        /* Slurm's: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT,
                              OUT_OF_MEMORY, NODE_FAIL, CANCELLED, ...; "SUBMITTED"
                              until Slurm said; "VANISHED" when it no longer knows     */
    char exit_code[16];    /* "1:0": exit status and signal                           */
    char node[128];
    char elapsed[32];      /* [D-]HH:MM:SS or M:SS                                    */
    char reason[128];      /* why a task waits (squeue %r)                            */
} cnb_slurm_task;

/* Update the tasks of `t` that `text` describes; return how many it described.
 *   squeue:   `squeue -h -r -o '%i|%T|%N|%M|%r'`  ("12_3|RUNNING|node7|1:02|None")
 *   sacct:    `sacct -n -P -X -o JobID,State,ExitCode,NodeList,Elapsed`
 *   scontrol: `scontrol -o show job` (one line per task: ArrayJobId=, ArrayTaskId=, ...)
 * Lines for other jobs, for steps, or for a range of still-pending tasks ("12_[4-9]")
 * are ignored. */
int cnb_slurm_parse_squeue(const char *text, cnb_slurm_task *t, int n);
int cnb_slurm_parse_sacct(const char *text, cnb_slurm_task *t, int n);
int cnb_slurm_parse_scontrol(const char *text, cnb_slurm_task *t, int n);

/* Is Slurm done with this task (COMPLETED, FAILED, TIMEOUT, CANCELLED, ..., or VANISHED:
 * it ended and Slurm no longer says how)? */
int cnb_slurm_state_final(const char *state);

/* Run the experiment's pending cells as a Slurm array (see above). 0 when every cell
 * finished (or, with no_wait, was submitted), CNB_EFAILED when any failed, CNB_EINTR when
 * following was interrupted (the job goes on), CNB_EINVAL for bad input (nothing
 * submitted). */
struct cnb_experiment;
struct cnb_registry;
int cnb_launch_slurm(const struct cnb_experiment *e, struct cnb_registry *reg,
                     const cnb_launch_opts *o);

/* `cnnbench status DIR`: each cell's state, and for a cell run under Slurm its job and
 * array task, node, elapsed time and, when it failed, Slurm's reason and its log's tail.
 * A folder run only locally shows the states its cell folders give. */
int cnb_status_show(const char *dir);

#endif
