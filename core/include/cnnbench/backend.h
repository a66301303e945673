/*
 * cnnbench/backend.h - backend plugins: how the kernels run.
 *
 * A backend is a kernel factory. For each op it implements, kernel_create() builds a
 * kernel for one fixed descriptor (shapes and batch known), the way oneDNN builds a
 * primitive: create may allocate, reorder or JIT; forward and backward allocate nothing
 * and do no I/O; destroy frees. An op the backend leaves out (CNB_ENOTSUP, or a clear
 * bit in ops) runs on the naive backend, and the host records which backend ran each
 * layer. The naive backend is the reference every other kernel is checked against.
 *
 * LRN follows the AlexNet paper and the seed notes: the sum runs over channels
 * c - size/2 .. c + size/2 (clipped at the ends; layers require an odd size) and alpha is NOT divided by size (Caffe, oneDNN and
 * PyTorch divide it; a backend wrapping them passes alpha * size).
 *
 * Tensors are float32, dense, NCHW, except between two kernels that agree on a layout of
 * their own (below). Weights: convolution (K, C, KH, KW), inner product (K, C*H*W); bias
 * (K), or NULL for none. Backward writes (overwrites, never accumulates)
 * every non-NULL diff_* output. softmax_xent forward needs labels when loss is non-NULL;
 * a label >= C*H*W makes it return CNB_EINVAL.
 */
#ifndef CNNBENCH_BACKEND_H
#define CNNBENCH_BACKEND_H

#include "cnnbench/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * 2.0: cnb_kernel starts with its struct_size (CNB_KERNEL_INIT fills it), and 1.1's
 * optional entries (layout_of, library_pass, park) belong to every descriptor. 2.1
 * appends max_threads, 2.2 fuse_create (fused runs, below), 2.3 kernel_bytes and
 * state_bytes (what the kernels hold), 2.4 algorithm (a kernel that does fewer
 * multiply-adds than its op's definition). A later minor appends fields to cnb_backend_desc or
 * cnb_kernel; the host reads one through struct_size, so a backend of an older 2.x minor
 * keeps loading.
 */
#define CNB_BACKEND_ABI_MAJOR 2
#define CNB_BACKEND_ABI_MINOR 4

/* The name of the reference backend: the one every other kernel is checked against, the
 * end of every backend chain, and the default where an experiment names none. */
#define CNB_REFERENCE_BACKEND "naive"

/*
 * Native layouts. A tensor between two layers is dense NCHW unless the host lets
 * the two kernels on either side of it, made by the same backend, pass it in a layout of
 * that backend's own (oneDNN's nChw16c, say), saving a reorder on each side. The host does
 * so only where both layers hand their tensors straight to their one kernel
 * (CNB_LAYER_KERNEL_IO) and the backend has layout_of():
 *   1. it creates the producer with dst_layout = CNB_LAYOUT_ANY; the backend picks a
 *      layout for dst (CNB_LAYOUT_NCHW is always a fine answer) and layout_of() says
 *      which, as a nonzero id only this backend understands, and its size in bytes;
 *   2. it creates the consumer, on the same backend state, with src_layout = that id; the
 *      consumer may refuse with CNB_ENOTSUP, and the host then makes both again on NCHW.
 * The id then covers the edge's four tensors: dst and diff_dst of the producer, src and
 * diff_src of the consumer. A backend without layout_of() only ever sees CNB_LAYOUT_NCHW.
 * A native layout never takes a layer from an earlier backend of the chain: when one
 * would make the consumer's kernel on NCHW, the host makes the producer again on NCHW and
 * gives the consumer to that backend (so a kernel_create may be called, and its kernel
 * destroyed, once more than the network keeps).
 */
#define CNB_LAYOUT_NCHW 0u
#define CNB_LAYOUT_ANY 0xffffffffu

typedef enum cnb_op {
    CNB_OP_CONV = 0,      /* 2-D convolution, any kernel, stride, padding          */
    CNB_OP_INNER_PRODUCT, /* fully connected: src flattened to C*H*W              */
    CNB_OP_POOL_MAX,      /* max pooling, overlapping windows allowed             */
    CNB_OP_POOL_AVG,      /* average pooling; divisor kh*kw (padding included)    */
    CNB_OP_SIGMOID,
    CNB_OP_RELU,
    CNB_OP_LRN,           /* across channels: b = a / (k + alpha * sum a^2)^beta  */
    CNB_OP_SOFTMAX_XENT,  /* softmax over C*H*W per sample, cross-entropy vs labels */
    CNB_OP_COUNT
} cnb_op;

#define CNB_OP_BIT(op) (1u << (op))
#define CNB_OPS_ALL ((1u << CNB_OP_COUNT) - 1u)

/* What a kernel computes. Fixed at create time. */
struct cnb_op_desc {
    cnb_op op;
    int batch;          /* N                                                   */
    cnb_shape src, dst; /* per-sample shapes; dst is what the layer inferred   */
    union {
        struct { int kh, kw, sh, sw, ph, pw; } conv; /* dst.c = output channels K */
        struct { int kh, kw, sh, sw, ph, pw; } pool;
        struct { int size; float alpha, beta, k; } lrn;
    } u;
    /* Set by the host (layers leave them 0): CNB_LAYOUT_NCHW, a layout id this backend
     * chose, or (dst only) CNB_LAYOUT_ANY. */
    uint32_t src_layout, dst_layout;
};

/* What layout_of() reports about a kernel's dst. */
typedef struct cnb_layout_info {
    uint32_t id;      /* CNB_LAYOUT_NCHW or the backend's own id                     */
    size_t bytes;     /* one batch of dst (and of diff_dst) in that layout          */
    const char *name; /* "nChw16c"; static storage                                  */
} cnb_layout_info;

/* Buffers for one call. Unused fields are NULL. */
typedef struct cnb_args {
    const float *src;       /* (N, src.c, src.h, src.w)                              */
    float *dst;             /* (N, dst.c, dst.h, dst.w); softmax_xent: probabilities */
    const float *weights;   /* conv (K,C,KH,KW); inner product (K, C*H*W)            */
    const float *bias;      /* (K)                                                   */
    const float *diff_dst;  /* backward input, shaped like dst                       */
    float *diff_src;        /* backward output, shaped like src; NULL = not needed   */
    float *diff_weights;    /* backward output, shaped like weights                  */
    float *diff_bias;       /* backward output, shaped like bias                     */
    const int32_t *labels;  /* softmax_xent: (N) class ids; a negative id is padding  */
    float *loss;            /* softmax_xent forward: mean -log p[label] over real ids */
} cnb_args;

/*
 * Fused runs (2.2). A backend may run several consecutive layers as one kernel, so that
 * what passes between them (a small convolution's output, written, read by its ReLU,
 * written again, read by the pooling) stays in its cache. Before the layers of a network
 * make their kernels, the host reads the op each asks for and looks for runs: a layer
 * whose kernel is a convolution or an inner product, then up to CNB_FUSE_MAX - 1 layers
 * whose kernels have no weights (ReLU, sigmoid, pooling, LRN; not softmax_xent), each of
 * them a layer that hands its tensors straight to its one kernel (CNB_LAYER_KERNEL_IO,
 * cnnbench/layer.h). It offers a run, the longest first and then ever shorter down to
 * two layers, to fuse_create() of each backend of the chain in order, whichever backends
 * would make the layers' own kernels; the first to accept makes the run's kernel, and
 * the run's layers make none of their own. A run that no backend accepts, or any run
 * when the backend has no fuse_create, runs on its layers' own kernels as before; a
 * backend spec with the suffix ":nofuse" ("direct+onednn:nofuse") offers none.
 *
 * The run's kernel does in one forward and one backward what its layers' kernels do in
 * turn. Its cnb_args are one layer's: src is the first layer's input and dst the last
 * layer's output, both NCHW; diff_dst the gradient of dst; backward writes diff_src (NULL
 * for a network's first layer) and op[0]'s diff_weights and diff_bias. weights and bias
 * are op[0]'s and stay the host's: it initialises, updates and saves them under the
 * layer's name as before, and every layer keeps its name. The host keeps no output and
 * no gradient of the layers before the last (it allocates none): what backward needs of
 * them (a ReLU's mask, a max pooling's winners) the kernel keeps itself, from its latest
 * forward, as a max pooling kernel keeps its argmax.
 *
 * fuse_create() returns CNB_ENOTSUP for a run it does not handle (an op, a window, a
 * shape): the host then offers a shorter one, or the next backend. Any other error stops
 * the run, as kernel_create's does.
 */
#define CNB_FUSE_MAX 4

typedef struct cnb_fuse_desc {
    int n;                        /* ops in the run, 2 .. CNB_FUSE_MAX                    */
    cnb_op_desc op[CNB_FUSE_MAX]; /* in order, each as its layer asks for its own kernel
                                     but with both layouts CNB_LAYOUT_NCHW: op[0] a convolution
                                     or an inner product, op[i + 1].src = op[i].dst, one
                                     batch                                              */
} cnb_fuse_desc;

/*
 * A kernel. Backends embed it as the first member of their own struct and fill it with
 * CNB_KERNEL_INIT, which sets struct_size: the host refuses a kernel whose size is not
 * the one its backend's ABI defines (a backend built against other headers, or one that
 * set the entries by hand), naming the backend, before it calls any entry.
 * backward() may use what the latest forward() on the same src saved (max-pool argmax,
 * LRN scale); it reads src, dst and diff_dst. softmax_xent's backward ignores diff_dst
 * and writes diff_src = (p - onehot(label)) / (number of real labels).
 */
struct cnb_kernel {
    uint32_t struct_size; /* sizeof(cnb_kernel) of the headers built against */
    int (*forward)(cnb_kernel *self, const cnb_args *a);
    int (*backward)(cnb_kernel *self, const cnb_args *a);
    void (*destroy)(cnb_kernel *self);
};

/* A cnb_kernel with its size filled in and the entries given as designated initializers;
 * an entry left out is NULL:
 *   k->base = CNB_KERNEL_INIT(.forward = relu_forward, .backward = relu_backward,
 *                             .destroy = relu_destroy); */
#define CNB_KERNEL_INIT(...) ((cnb_kernel){.struct_size = sizeof(cnb_kernel), __VA_ARGS__})

typedef struct cnb_backend_config {
    int threads; /* worker threads the backend may use (>= 1) */
} cnb_backend_config;

/*
 * Lifetime rules the host keeps: fini() runs only after every kernel of that state has
 * been destroyed, and kernels of one state are never called concurrently (a backend may
 * share scratch memory between them).
 */
typedef struct cnb_backend_desc {
    cnb_plugin_header hdr; /* kind = CNB_PLUGIN_BACKEND */
    uint32_t ops;          /* CNB_OP_BIT() of every op it implements; 0 is refused */

    /* Optional: set up state shared by the backend's kernels. */
    int (*init)(const cnb_host *host, const cnb_backend_config *cfg, void **state);
    void (*fini)(void *state);

    /* Required: CNB_ENOTSUP for an op or geometry it does not handle (the next backend
     * of the chain, at the end naive, makes that kernel); any other error is a failure
     * that stops the run, named with its status. forward and backward return 0 or an
     * error, which stops the run too. */
    int (*kernel_create)(void *state, const cnb_op_desc *desc, cnb_kernel **out);

    /* Optional: one line for run metadata (library versions, CPU core chosen). */
    const char *(*info)(void *state);

    /* Optional: the layout a kernel made with dst_layout = CNB_LAYOUT_ANY writes
     * its dst in; see "Native layouts" above. */
    int (*layout_of)(const cnb_kernel *kernel, cnb_layout_info *out);

    /* Optional: run only the library calls that the kernel's forward (backward
     * = 0) or backward (1) makes with these arguments, on the same shapes and threads,
     * without the work around them (im2col, col2im, reorders, bias); the numbers it
     * writes are meaningless. A benchmark sets the kernel's time against this one: how
     * much of what its library reaches the lowering keeps. CNB_ENOTSUP for a kernel with
     * nothing around its library calls. */
    int (*library_pass)(cnb_kernel *kernel, const cnb_args *a, int backward);

    /* Optional: the host is about to run other backends' kernels, or none, for
     * a while: let threads that spin waiting for this backend's next call sleep instead,
     * so that they do not take the cores the next backend needs. */
    void (*park)(void *state);

    /* 2.1. The most threads its kernels use, whatever cnb_backend_config.threads says:
     * 1 for a single-threaded backend; 0 (a 2.0 backend's too) for as many as it is
     * given. A benchmark times a backend only at thread counts it uses. */
    uint32_t max_threads;

    /* 2.2. Optional: one kernel for a run of consecutive layers; see "Fused runs" above.
     * Like kernel_create, on the same state, at bind. */
    int (*fuse_create)(void *state, const cnb_fuse_desc *desc, cnb_kernel **out);

    /* 2.3. Optional: the bytes a kernel (made by kernel_create or fuse_create) holds of
     * its own from create to destroy, beyond the host's tensors: workspaces, what forward
     * keeps for backward (a max pooling's winners, a ReLU's mask, an LRN's scale),
     * reordered or packed weights, per-thread scratch (im2col columns, partial sums),
     * whether host->alloc or its library allocated them. Its own struct and other small
     * bookkeeping may be left out; JIT code and a library's caches are not asked for. A
     * benchmark sums it over a network's kernels; a backend without it (one of 2.2 or
     * before) makes that sum unknown. */
    size_t (*kernel_bytes)(const cnb_kernel *kernel);

    /* 2.3. Optional: the bytes the state holds for all its kernels at once, counted once
     * per network: a scratchpad they share (they never run concurrently, above). NULL:
     * none. */
    size_t (*state_bytes)(void *state);

    /* 2.4. Optional: the name of the algorithm a kernel computes its op by, where it does
     * fewer multiply-adds than the op's definition ("winograd": a convolution by
     * Winograd's minimal filtering); NULL where it follows the definition. A benchmark
     * counts every layer's FLOPs by the definition, so that backends compare on one
     * scale: such a kernel's GFLOP/s are direct-equivalent and may pass the machine's
     * peak, which the benchmark then reports as that, not as a measurement error. */
    const char *(*algorithm)(const cnb_kernel *kernel);
} cnb_backend_desc;

/*
 * A backend's descriptor: its name, version and one-line description, then the fields
 * above as designated initializers. The header (ABI, size, kind) comes from the headers
 * the plugin is compiled against. One file holds one or more, in entry order:
 *
 *   CNB_BACKEND_DEFINE(
 *       CNB_BACKEND_DESC("mine", "1.0.0", "ReLU in AVX2",
 *                        .ops = CNB_OP_BIT(CNB_OP_RELU),
 *                        .kernel_create = mine_kernel_create));
 *
 * CNB_BACKEND_DEFINE writes the descriptor table and the exported cnb_plugin_entry();
 * use it once per file.
 */
#define CNB_BACKEND_DESC(name, version, description, ...)                                 \
    {.hdr = CNB_PLUGIN_HEADER(CNB_PLUGIN_BACKEND, CNB_BACKEND_ABI_MAJOR,                  \
                              CNB_BACKEND_ABI_MINOR, sizeof(cnb_backend_desc), name,      \
                              version, description),                                      \
     __VA_ARGS__}
#define CNB_BACKEND_DEFINE(...) CNB_PLUGIN_DEFINE_(cnb_backend_desc, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* CNNBENCH_BACKEND_H */
