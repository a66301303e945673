/* fsutil.c - see fsutil.h. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnbench/plugin.h"
#include "errors.h"

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
            return cnb_error_code(CNB_EIO, "%s: cannot create folder: %s", buf,
                                  strerror(errno));
        *p = c;
        if (!c)
            return 0;
    }
}

static mode_t current_umask(void)
{
    mode_t m = umask(0);
    umask(m);
    return m;
}

int cnb_atomic_open(cnb_atomic *a, const char *path)
{
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp-XXXXXX", path); /* unique: two writers never share it */
    int fd = mkstemp(a->tmp);
    a->f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!a->f) {
        int e = errno;
        if (fd >= 0)
            close(fd), unlink(a->tmp);
        return cnb_error_code(CNB_EIO, "%s: cannot write: %s", a->path, strerror(e));
    }
    fchmod(fd, 0666 & ~current_umask()); /* mkstemp's 0600 is for secrets, not results */
    return 0;
}

int cnb_atomic_open_in(cnb_atomic *a, const char *dir, const char *name)
{
    char path[sizeof a->path];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return cnb_error_code(CNB_EIO, "%s/%s: path too long", dir, name);
    return cnb_atomic_open(a, path);
}

int cnb_fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return CNB_EIO;
    int rc = fsync(fd) == 0 ? 0 : CNB_EIO;
    close(fd);
    return rc;
}

int cnb_atomic_commit(cnb_atomic *a)
{
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int e = errno;
    bad |= fclose(a->f) != 0;
    if (!bad && rename(a->tmp, a->path) == 0) {
        cnb_fsync_dir_of(a->path); /* the rename itself survives a crash */
        return 0;
    }
    e = errno ? errno : e;
    unlink(a->tmp);
    return cnb_error_code(CNB_EIO, "%s: writing failed: %s; the previous version (if any) is "
                          "kept", a->path, strerror(e));
}
