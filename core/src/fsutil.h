/* fsutil.h - folders and atomically replaced files (temporary file, fsync, rename). */
#ifndef CNB_FSUTIL_H
#define CNB_FSUTIL_H

#include <stdio.h>

/* mkdir -p; 0 or CNB_EIO after reporting. */
int cnb_mkdirs(const char *path);

/* Open a new temporary file beside `path` (`path`.tmp-XXXXXX, unique, so that two
 * writers never share one) for writing; cnb_atomic_commit flushes, fsyncs and renames it
 * over `path` and fsyncs the folder (or removes it and reports on any write error,
 * leaving `path` as it was). */
typedef struct cnb_atomic {
    FILE *f;
    char path[4096], tmp[4200];
} cnb_atomic;
int cnb_atomic_open(cnb_atomic *a, const char *path);
/* cnb_atomic_open on `dir`/`name`; a path too long to hold is refused (CNB_EIO, said). */
int cnb_atomic_open_in(cnb_atomic *a, const char *dir, const char *name);
int cnb_atomic_commit(cnb_atomic *a);
/* fsync the folder holding `path`, so that a rename into it is on disk; 0 or CNB_EIO. */
int cnb_fsync_dir_of(const char *path);

#endif
