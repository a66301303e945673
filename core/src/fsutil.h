/* fsutil.h - folders and atomically replaced files (temporary file, fsync, rename). */
#ifndef CNB_FSUTIL_H
#define CNB_FSUTIL_H

#include <stdio.h>

/* mkdir -p; 0 or CNB_EIO after reporting. */
int cnb_mkdirs(const char *path);

/* Open `path`.tmp for writing; cnb_atomic_commit flushes, fsyncs and renames it over
 * `path` (or removes it and reports on any write error, leaving `path` as it was). */
typedef struct cnb_atomic {
    FILE *f;
    char path[4096], tmp[4200];
} cnb_atomic;
int cnb_atomic_open(cnb_atomic *a, const char *path);
int cnb_atomic_commit(cnb_atomic *a);

#endif
