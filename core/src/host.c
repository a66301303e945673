/*
 * host.c - the cnb_host services table: logging, aligned allocation, seeded RNG and the
 * per-layer services implemented by the network builder (net.c).
 */
#include "host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"
#include "rng.h"

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

int cnb_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (!errors_quiet)
        fprintf(stderr, "cnnbench: error: %s\n", last_error);
    return CNB_EINVAL;
}

const char *cnb_last_error(void) { return last_error; }
int cnb_error_quiet(int quiet)
{
    int was = errors_quiet;
    errors_quiet = quiet;
    return was;
}

void *cnb_alloc(size_t bytes)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p)
        memset(p, 0, rounded ? rounded : 64);
    return p;
}

void cnb_free(void *p) { free(p); }

double cnb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const cnb_host *cnb_host_services(void)
{
    static const cnb_host table = {
        .abi_major = CNB_HOST_ABI_MAJOR,
        .abi_minor = CNB_HOST_ABI_MINOR,
        .struct_size = sizeof(cnb_host),
        .log = cnb_log,
        .alloc = cnb_alloc,
        .free = cnb_free,
        .rng_u32 = cnb_rng_u32,
        .rng_uniform = cnb_rng_uniform,
        .rng_normal = cnb_rng_normal,
        .param_int = cnb_layer_param_int,
        .param_float = cnb_layer_param_float,
        .param_str = cnb_layer_param_str,
        .layer_error = cnb_layer_error,
        .layer_warn = cnb_layer_warn,
        .kernel_create = cnb_layer_kernel_create,
        .layer_rng = cnb_layer_rng,
    };
    return &table;
}
