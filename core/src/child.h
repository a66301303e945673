/*
 * child.h - how a process forked by the core ends.
 */
#ifndef CNB_CHILD_H
#define CNB_CHILD_H

/* _exit(status), after writing, in a coverage build, the gcov counters that _exit would
 * lose (they are written by an atexit handler). Every _exit after a fork goes through it,
 * so that what forked children run (a sweep's cells, check's sandboxed parts) counts. */
_Noreturn void cnb_child_exit(int status);

#endif
