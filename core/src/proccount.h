/*
 * proccount.h - what a process's threads went through besides their own work, as Linux
 * counts it in /proc: the times the scheduler took a CPU from one of them (involuntary
 * context switches) and its page faults. The bench reads them around each whole-network
 * sample, for its own process or a peer's, so that a sample slower than its row's others
 * can be told apart: switches, another process of this machine held the row's CPUs;
 * faults, the row mapping memory; neither, a slowdown nothing here sees (on a virtual
 * machine, its host's).
 */
#ifndef CNB_PROCCOUNT_H
#define CNB_PROCCOUNT_H

typedef struct cnb_proc_counts {
    double switches;              /* involuntary context switches, every live thread's */
    double faults;                /* page faults, minor and major, the whole process's  */
} cnb_proc_counts;

/* The counts of process pid so far into *c: 0, or -1 (both NAN) when /proc cannot say.
 * A thread that has ended takes its switches with it; its faults stay counted. */
int cnb_proc_counts_read(int pid, cnb_proc_counts *c);

#endif
