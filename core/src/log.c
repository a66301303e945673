/*
 * log.c - the core's log lines; see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_max = CNB_LOG_INFO; /* an int: CNB_LOG_NOTHING is below every level */
static char last_warning[2048];

const char *cnb_last_warning(void) { return last_warning; }

void cnb_log_set_level(int max_level) { log_max = max_level; }

void cnb_log(cnb_log_level level, const char *who, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;
    if (level == CNB_LOG_WARN) {
        va_start(ap, fmt);
        vsnprintf(last_warning, sizeof last_warning, fmt, ap);
        va_end(ap);
    }
    if ((int)level > log_max)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", who ? who : "cnnbench", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
