/*
 * errors.h - saying an error once, where it is found: to the user (cnb_error), or into a
 * caller's buffer for a caller that decides how to report it (cnb_fail). Both return the
 * status code the caller passes on, so `return cnb_error(...)` is the whole error path.
 *
 * Not <error.h>: that name is glibc's.
 */
#ifndef CNB_ERRORS_H
#define CNB_ERRORS_H

#include <stddef.h>

#include "cnnbench/plugin.h"

/* A failure at run time, not of the input: a kernel or layer that fails, a cell that
 * crashed or could not write its results, a sum between ranks. A command ending with it
 * exits 1; CNB_EINVAL (bad input, found before anything runs) exits 2. */
#define CNB_EFAILED (-102)

/* An error a user can cause: printed to stderr as "cnnbench: error: MSG" (unless quieted,
 * as tests do) and kept as the last error; returns `code`. cnb_error is the usual case, a
 * bad input: CNB_EINVAL. */
int cnb_error_code(int code, const char *fmt, ...) CNB_PRINTF(2, 3);
#define cnb_error(...) cnb_error_code(CNB_EINVAL, __VA_ARGS__)
const char *cnb_last_error(void);
int cnb_error_quiet(int quiet); /* returns the previous setting */

/* An error said into a caller's buffer (err, errlen; either may be NULL/0), for code whose
 * caller decides how to report it (readers, checks); returns `code`. */
int cnb_fail(int code, char *err, size_t errlen, const char *fmt, ...) CNB_PRINTF(4, 5);

#endif
