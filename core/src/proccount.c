/*
 * proccount.c - see proccount.h. Faults from /proc/PID/stat (fields 10 and 12, summed
 * over the process's threads, ended ones too); switches from each thread's
 * nonvoluntary_ctxt_switches in /proc/PID/task/TID/status (the process's own status has
 * its first thread's only).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proccount.h"

/* The page faults of process pid, or -1. */
static double faults_of(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    unsigned long minflt, majflt;
    /* after the command's closing parenthesis (a command may hold one): state, ppid,
     * pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt */
    const char *p = f && fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    int n = p ? sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %lu %*u %lu", &minflt, &majflt)
              : 0;
    if (f)
        fclose(f);
    return n == 2 ? (double)minflt + (double)majflt : -1.0;
}

/* The involuntary context switches of thread tid of process pid, or -1. */
static double switches_of(int pid, const char *tid)
{
    static const char key[] = "nonvoluntary_ctxt_switches:";
    char path[384], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, tid);
    FILE *f = fopen(path, "r");
    double n = -1.0;
    while (f && n < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, key, sizeof key - 1) == 0)
            n = strtod(line + sizeof key - 1, NULL);
    if (f)
        fclose(f);
    return n;
}

int cnb_proc_counts_read(int pid, cnb_proc_counts *c)
{
    char path[64];
    c->switches = c->faults = NAN;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    const double faults = faults_of(pid);
    if (!d || faults < 0) {
        if (d)
            closedir(d);
        return -1;
    }
    double switches = 0.0;
    for (struct dirent *t; (t = readdir(d));)
        if (t->d_name[0] != '.')
            switches += fmax(0.0, switches_of(pid, t->d_name)); /* ended meanwhile: 0 */
    closedir(d);
    c->switches = switches, c->faults = faults;
    return 0;
}
