/*
 * errors.c - errors said to the user or into a caller's buffer; see errors.h.
 */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

static char last_error[2048];
static int errors_quiet;

int cnb_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int cnb_error_code(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (!errors_quiet)
        fprintf(stderr, "cnnbench: error: %s\n", last_error);
    return code;
}

const char *cnb_last_error(void) { return last_error; }

int cnb_error_quiet(int quiet)
{
    int was = errors_quiet;
    errors_quiet = quiet;
    return was;
}
