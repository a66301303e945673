/*
 * clock.h - the one clock every time in the core is read from.
 */
#ifndef CNB_CLOCK_H
#define CNB_CLOCK_H

#include <time.h>

/* Monotonic seconds: intervals only, never a date. */
static inline double cnb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
