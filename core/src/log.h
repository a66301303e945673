/*
 * log.h - the core's log lines on stderr ("cnnbench: warning: ..."), filtered by level;
 * plugins reach the same function through the cnb_host table.
 */
#ifndef CNB_LOG_H
#define CNB_LOG_H

#include "cnnbench/plugin.h"

void cnb_log(cnb_log_level level, const char *who, const char *fmt, ...) CNB_PRINTF(3, 4);
void cnb_log_set_level(int max_level); /* a cnb_log_level, or CNB_LOG_NOTHING */
#define CNB_LOG_NOTHING (-1)           /* not even errors: expected ones, in tests */
const char *cnb_last_warning(void);    /* the latest warning, shown or not */

/* The log of the cnb_host table: cnb_log, except that after cnb_log_share() a plugin's
 * info line or warning is said once in this process and every child it forks (the same
 * text from the same plugin: once per command); errors always. Call cnb_log_share before
 * the first fork. */
void cnb_plugin_log(cnb_log_level level, const char *who, const char *fmt, ...)
    CNB_PRINTF(3, 4);
void cnb_log_share(void);

#endif
