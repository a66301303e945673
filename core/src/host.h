/*
 * host.h - the cnb_host services table the core hands to every plugin.
 */
#ifndef CNB_HOST_H
#define CNB_HOST_H

#include "cnnbench/plugin.h"

/* The process-wide table (logging to stderr, aligned allocation, RNG, layer services). */
const cnb_host *cnb_host_services(void);

/* Logging used by the core itself; level filter set by cnb_log_set_level. */
void cnb_log(cnb_log_level level, const char *who, const char *fmt, ...) CNB_PRINTF(3, 4);
void cnb_log_set_level(int max_level); /* a cnb_log_level, or CNB_LOG_NOTHING */
#define CNB_LOG_NOTHING (-1)           /* not even errors: expected ones, in tests */
const char *cnb_last_warning(void); /* the latest warning, shown or not */

/* Report an error a user can cause: printed to stderr as "cnnbench: error: MSG" (unless
 * quieted, as tests do) and kept as the last error. Always returns CNB_EINVAL. */
int cnb_error(const char *fmt, ...) CNB_PRINTF(1, 2);
const char *cnb_last_error(void);
int cnb_error_quiet(int quiet); /* returns the previous setting */

/* An error said into a caller's buffer (err, errlen; either may be NULL/0), for code whose
 * caller decides how to report it (readers, checks); returns `code`. */
int cnb_fail(int code, char *err, size_t errlen, const char *fmt, ...) CNB_PRINTF(4, 5);

void *cnb_alloc(size_t bytes);  /* 64-byte aligned, zeroed; NULL on failure */
void cnb_free(void *p);

double cnb_now(void); /* monotonic seconds */

#endif
