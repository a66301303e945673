/*
 * conformance.h - checkasm-style conformance of a backend's kernels against the naive
 * reference, shared by the test suite and `cnnbench check`.
 *
 * What it is: a table of cases (every LeNet-5 and AlexNet layer shape plus odd
 * geometries), the reference for one case (seeded inputs in guard-banded buffers and what
 * naive computed from them), and the checker, which runs another backend's kernel on the
 * same inputs, forward and backward, and compares every output: dst (and the loss of
 * softmax_xent), diff_src, diff_weights, diff_bias, and for conv and inner product a
 * second backward with diff_src = NULL (a network's first layer). Outputs are poisoned
 * with NaN before each call, so a value left unwritten or accumulated into shows; every
 * buffer has sentinel floats before and after it; inputs must come back unchanged. Then
 * a second forward and backward count what they allocate on the heap (heapcount.h: malloc
 * and its kin, by any thread and library), which the ABI says is nothing: not a problem
 * of the numbers, but said, as a library that allocates in every call does.
 *
 * Fused runs (cnnbench/backend.h) are cases too (CNB_CASE_FUSED): a convolution, a ReLU
 * and, in most, a max pooling, the LeNet-5 and AlexNet ones and odd ones. The backend's
 * fuse_create() makes the kernel, naive's kernels of the run's ops one after the other
 * are the reference, and the same outputs are compared: the run's dst, diff_src, and the
 * convolution's diff_weights and diff_bias.
 *
 * What it is not: no timing beyond the seconds spent in the kernels, no process
 * isolation (a kernel that crashes takes the caller with it: `cnnbench check` runs it in
 * a child), and no check of the naive backend itself (the kernel tests do that against
 * hand-worked numbers and finite differences).
 *
 * Seeds: cnb_check_seed() (CNB_TEST_SEED, see checkdata.h) plus the case's row + 1, so
 * any failing case reruns alone with the same numbers.
 */
#ifndef CNB_CONFORMANCE_H
#define CNB_CONFORMANCE_H

#include <stddef.h>
#include <stdint.h>

#include "cnnbench/backend.h"
#include "heapcount.h"

enum {
    CNB_CASE_NO_BIAS = 1,   /* conv / inner product without bias (bias and diff_bias NULL) */
    CNB_CASE_PAD_LABEL = 2, /* softmax_xent: the middle sample's label is -1 (padding)     */
    CNB_CASE_BATCH = 4,     /* another row's shape at another batch: checked, not timed    */
    CNB_CASE_FUSED = 8,     /* a fused run: the conv, a ReLU, then max pooling if pkh > 0  */
    CNB_CASE_OFF_GRID = 16, /* a fused run's bias half a step off its grid (EPS, in
                               conformance.c): no convolution output is 0                 */
};

typedef struct cnb_conform_case {
    const char *name;            /* "alexnet.conv2": network.layer, or odd.what     */
    cnb_op op;
    int n, c, h, w;              /* batch and per-sample src shape                  */
    int k;                       /* conv: output channels; inner product: outputs   */
    int kh, kw, sh, sw, ph, pw;  /* conv and pool windows                           */
    int size;                    /* LRN                                             */
    float alpha, beta, lrn_k;    /* LRN                                             */
    unsigned flags;              /* CNB_CASE_*                                          */
    int pkh, pkw, psh, psw;      /* a fused run's max pooling (no padding)          */
} cnb_conform_case;

typedef enum cnb_conform_out {
    CNB_OUT_DST,      /* forward dst                                     */
    CNB_OUT_LOSS,     /* forward loss (softmax_xent)                     */
    CNB_OUT_DSRC,     /* backward diff_src                               */
    CNB_OUT_DW,       /* backward diff_weights                           */
    CNB_OUT_DB,       /* backward diff_bias                              */
    CNB_OUT_DW_NOSRC, /* backward diff_weights, called with diff_src NULL */
    CNB_OUT_DB_NOSRC, /* backward diff_bias, called with diff_src NULL    */
    CNB_OUT_COUNT
} cnb_conform_out;

/* A case made ready: inputs and what naive computed from them. */
typedef struct cnb_conform_ref {
    const cnb_conform_case *cs;
    int row;                   /* index in cnb_conform_cases[]: the seed's salt               */
    cnb_op_desc d;             /* the op; a fused run's first                       */
    cnb_fuse_desc run;         /* the run's ops (run.n = 1: d alone)                */
    cnb_shape out;             /* per sample, what dst holds: the last op's dst     */
    int dims[CNB_OUT_COUNT][4];      /* 4-d shape of each output, for index reports      */
    const char *layout[CNB_OUT_COUNT];
    size_t n_src, n_dst, n_w, n_b, len[CNB_OUT_COUNT];
    float *src, *w, *b, *dd;   /* inputs, guarded (w, b NULL when the op has none) */
    int32_t *labels;           /* softmax_xent: (N)                                */
    uint64_t in_hash;          /* of all inputs, to see a backend write into them  */
    float *want[CNB_OUT_COUNT];      /* naive's outputs (NULL where the op has none)     */
    double K[CNB_OUT_COUNT];         /* terms summed into one value                      */
    double rms[CNB_OUT_COUNT];       /* of want[o]                                       */
    int exact[CNB_OUT_COUNT];        /* selections: no tolerance                         */
} cnb_conform_ref;

/* What one backend did on one case. */
typedef struct cnb_conform_result {
    int rc_create, rc_fwd, rc_bwd, rc_bwd2; /* return codes (nonzero: a failure)   */
    int bad[CNB_OUT_COUNT];          /* values out of tolerance (NaN included)           */
    int guard[CNB_OUT_COUNT];        /* 1 if a guard band of that output was trampled    */
    int fallback;              /* kernel_create said CNB_ENOTSUP: the case runs on the
                                  next backend of a chain (not a problem)           */
    int inputs_changed;        /* 1 if an input (or its guard bands) changed       */
    double worst[CNB_OUT_COUNT];     /* largest |got - expected| / tolerance             */
    double seconds;            /* in the backend's create/forward/backward/destroy */
    /* The heap (heapcount.h; zeros where the build does not count) */
    cnb_heap_tally heap_create;      /* allocated by kernel_create or fuse_create        */
    cnb_heap_tally heap_fwd;         /* by a second forward, after the compared calls
                                        (the first of a process may meet a library's
                                        one-time set-up): the ABI says nothing          */
    cnb_heap_tally heap_bwd;         /* by a second backward: nothing too                */
    long long kernel_bytes;    /* what kernel_bytes said the kernel holds; -1: the
                                  backend has no kernel_bytes, or no kernel was made */
} cnb_conform_result;

#define CNB_OUT_BIT(o) (1u << (o))

/* The table; its row numbers salt the seeds (append rows at the end of a group). */
extern const cnb_conform_case cnb_conform_cases[];
extern const int cnb_conform_n_cases;
/* "forward dst", "backward diff_src", ... */
extern const char *const cnb_conform_out_name[CNB_OUT_COUNT];

const cnb_conform_case *cnb_conform_case_find(const char *name);
/* The case's descriptor (a fused run's first op's); dst from O = floor((I - K + 2P) / S)
 * + 1, worked out here. */
cnb_op_desc cnb_conform_case_desc(const cnb_conform_case *cs);
/* The case's ops in order, into f: one, or a fused run's. */
void cnb_conform_case_run(const cnb_conform_case *cs, cnb_fuse_desc *f);
/* "3x227x227 -> 96x55x55 k11x11 s4x4 p0x0" */
void cnb_conform_shape_str(char *buf, size_t len, const cnb_op_desc *d);
/* The same for a run: "1x28x28 -> 6x28x28 k5x5 s1x1 p2x2, relu, pool_max ... -> 6x14x14";
 * for one op as cnb_conform_shape_str. */
void cnb_conform_run_str(char *buf, size_t len, const cnb_fuse_desc *f);
/* "conv", or "fused conv+relu+pool_max" */
void cnb_conform_run_name(char *buf, size_t len, const cnb_fuse_desc *f);

/* Build row `row`'s inputs and run naive (initialised, state `naive_state`) on them.
 * 0, or -1 with a message on stderr (naive refused or failed the case). Free with
 * cnb_conform_ref_free either way. */
int cnb_conform_ref_init(cnb_conform_ref *r, int row, const cnb_backend_desc *naive,
                         void *naive_state);
void cnb_conform_ref_free(cnb_conform_ref *r);

typedef struct cnb_conform_opts {
    int quiet; /* print nothing; by default every problem is reported on stderr */
    /* Called before each call into the backend ("kernel_create", "forward", "backward",
     * "backward with diff_src NULL", "destroy"), so a caller can tell where a kernel
     * crashed or hung. May be NULL. */
    void (*phase)(void *user, const char *what);
    void *user;
} cnb_conform_opts;

/*
 * Run backend `be` (initialised, state `state`) on the case prepared in `ref`, compare
 * everything with naive's results and fill `res`. Returns the number of problems (0:
 * conforms). Leaves ref's inputs as they were (restores them if the backend wrote into
 * them). `opts` may be NULL (report on stderr, no phase callback). A fused run goes to
 * fuse_create(); a backend without it, or refusing the run, is a fallback.
 */
int cnb_conform_check(const cnb_backend_desc *be, void *state, cnb_conform_ref *ref,
                      const cnb_conform_opts *opts, cnb_conform_result *res);

/* Problems in `res`: failed calls, values out of tolerance, trampled guards, inputs
 * written. */
int cnb_conform_problems(const cnb_conform_result *res);

#endif
