/*
 * meta.h - what every result records about where it came from: the build (version, git
 * revision and whether the tree was dirty, compiler, flags), the machine (CPU model and
 * flags, cores) and each backend's library versions and chosen CPU code path.
 */
#ifndef CNB_META_H
#define CNB_META_H

#include <stdio.h>

#include "registry.h"

/* Write [build], [machine] and [backends] INI sections. Backends are started briefly
 * (1 thread) to ask for their info line. */
void cnb_meta_write(FILE *f, const cnb_registry *reg);

/* The value of /proc/cpuinfo's first line starting with `key` ("model name"), or
 * "unknown". */
void cnb_cpuinfo(const char *key, char *buf, size_t len);

/* Peak resident memory of this process so far, MiB. */
double cnb_peak_rss_mib(void);

#endif
