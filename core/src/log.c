/*
 * log.c - the core's log lines; see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "hash.h"

static int log_max = CNB_LOG_INFO; /* an int: CNB_LOG_NOTHING is below every level */
static char last_warning[2048];

const char *cnb_last_warning(void) { return last_warning; }

void cnb_log_set_level(int max_level) { log_max = max_level; }

static void say(cnb_log_level level, const char *who, const char *text)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level == CNB_LOG_WARN)
        snprintf(last_warning, sizeof last_warning, "%s", text);
    if ((int)level <= log_max) /* one write: lines of processes side by side stay whole */
        fprintf(stderr, "%s: %s: %s\n", who ? who : "cnnbench", names[level], text);
}

/*
 * A plugin's info lines and warnings are facts about its library and this CPU ("OpenBLAS
 * runs its AVX2 'Haswell' kernels ..."), and every process of a command that starts the
 * plugin (each cell of a sweep, each part of a check) would say them again between the
 * tables. Each is said once per command: the hashes of those said sit in memory shared
 * with every child forked after cnb_log_share(). Errors are always said.
 */
#define SAID_MAX 256
static _Atomic uint64_t *said; /* SAID_MAX hashes, 0 = a free slot; NULL: say everything */

void cnb_log_share(void)
{
    void *p = mmap(NULL, SAID_MAX * sizeof *said, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    said = p == MAP_FAILED ? NULL : p; /* without it, each process says its own */
}

/* 1 the first time this line is offered in the command (or when no table is shared). */
static int first_time(const char *who, const char *text)
{
    const char *name = who ? who : "";
    uint64_t h = cnb_fnv1a(CNB_FNV1A_BASIS, name, strlen(name) + 1); /* its NUL ends it */
    h = cnb_fnv1a(h, text, strlen(text));
    h += h == 0; /* 0 marks a free slot */
    for (int i = 0; said && i < SAID_MAX; i++) {
        uint64_t seen = 0;
        if (atomic_compare_exchange_strong(&said[i], &seen, h))
            return 1; /* a free slot, now this line's: say it */
        if (seen == h)
            return 0; /* said before, by this process or another */
    }
    return 1; /* no table, or a full one: say it */
}

/* The line formatted and said; with `once`, an info line or warning only the first time
 * the command offers it (errors and debug lines always). */
static void vsay(cnb_log_level level, const char *who, int once, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    if (!once || level == CNB_LOG_ERROR || level == CNB_LOG_DEBUG || first_time(who, text))
        say(level, who, text);
}

void cnb_log(cnb_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(level, who, 0, fmt, ap);
    va_end(ap);
}

void cnb_plugin_log(cnb_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(level, who, 1, fmt, ap);
    va_end(ap);
}
