/* fsutil.c - see fsutil.h. */
#include "fsutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnbench/plugin.h"
#include "host.h"

int cnb_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return cnb_error("%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return cnb_error("%s: cannot create folder: %s", buf, strerror(errno)), CNB_EIO;
        *p = c;
        if (!c)
            return 0;
    }
}

int cnb_atomic_open(cnb_atomic *a, const char *path)
{
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    a->f = fopen(a->tmp, "w");
    if (!a->f)
        return cnb_error("%s: cannot write: %s", a->tmp, strerror(errno)), CNB_EIO;
    return 0;
}

int cnb_atomic_commit(cnb_atomic *a)
{
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int e = errno;
    bad |= fclose(a->f) != 0;
    if (!bad && rename(a->tmp, a->path) == 0)
        return 0;
    e = errno ? errno : e;
    unlink(a->tmp);
    return cnb_error("%s: writing failed: %s; the previous version (if any) is kept",
                     a->path, strerror(e)), CNB_EIO;
}
