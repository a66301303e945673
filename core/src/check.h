/*
 * check.h - `cnnbench check PLUGIN`: everything the project's own tests run on its
 * kernels, run on one plugin, each part in a child process.
 *
 * For a backend: the conformance checker (conformance.h) against naive on every op the
 * plugin claims, every case of the table (LeNet-5 and AlexNet layers, odd geometries),
 * forward and backward, one PASS/FAIL line per op, and one for the table's fused runs
 * when it has fuse_create (declining them all is no failure: fusing is an offer), each
 * with a line of its own where its kernels' forward and backward allocate on the heap
 * (the ABI says they allocate nothing; said, not failed: oneDNN's library does); then,
 * for the ops that passed, the speed of its kernels against naive and every other
 * installed backend claiming the op, on the LeNet-5 and AlexNet cases. An op that failed
 * is not timed, and the table says why. Fused runs are not timed here: `cnnbench bench`
 * times them in a network, with a spec and the same spec with ":nofuse". For a layer
 * plugin: the gradient check (gradcheck.h) of its backward against central differences
 * of its forward, then its forward and backward times on every backend.
 *
 * Isolation: the plugin is loaded, checked and timed only in children. A child that dies
 * on a signal is reported with the op, case, shape and call it was in (kept in shared
 * memory as it goes); one that makes no progress for `timeout` seconds is killed and
 * reported as hung. The harness goes on with the next op.
 *
 * Exit status (returned): 0 every part passed; CNB_EINVAL when the plugin cannot be
 * found or loaded (the message says why); 1 when any check failed, crashed or hung.
 */
#ifndef CNB_CHECK_H
#define CNB_CHECK_H

#include "cnnbench/backend.h"
#include "registry.h"

typedef struct cnb_check_opts {
    const char *plugin;       /* a plugin name, or a file (contains '/' or ends in .so) */
    const char *const *extra; /* --plugin files to load too                            */
    int n_extra;
    int threads;              /* handed to every backend's init (>= 1)                  */
    double timeout;           /* seconds without progress before a child is killed      */
    int speed;                /* 0: conformance / gradient check only                   */
    const char *cases;        /* NULL, or a glob: only the table's cases it matches      */
    /* layer plugins: the section keys ("filters=4") and the per-sample input shape */
    char *const *keys;
    int n_keys;
    cnb_shape input;
} cnb_check_opts;

int cnb_check_run(const cnb_check_opts *o);

#endif
