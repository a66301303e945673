/*
 * onednn.c - the oneDNN backend ("onednn"): every op of cnnbench/backend.h, forward and
 * backward, as oneDNN 2.x primitives through its C API on the CPU engine.
 *
 * Create once, execute many. kernel_create builds, for one fixed descriptor, the
 * primitive descriptors and primitives of the forward pass and both backward passes,
 * the reorders between the host's dense NCHW/OIHW tensors and the layouts oneDNN chose,
 * and every buffer: reordered copies, workspaces (max-pool indices, LRN) and the
 * scratchpad (user-managed, one buffer per backend state shared by its kernels, which
 * run one at a time on the state's stream: state_bytes says its size, kernel_bytes what
 * each kernel holds of its own). The host's pointers change from call to call, so each
 * host tensor is a memory object made without a buffer and bound with
 * dnnl_memory_set_data_handle(); forward and backward then only bind and execute.
 *
 * Layouts. A convolution lets oneDNN choose (format_tag any; on AVX-512 that is nChw16c
 * activations and OIhw16i16o-like weights) and reorders at its edges what the host does
 * not hold in that layout, and the weights on every call, as SGD changes them between
 * steps. The host hands a kernel its neighbours' layouts (cnnbench/backend.h, "Native
 * layouts"): where it lets a kernel choose (dst_layout ANY), a convolution keeps
 * oneDNN's pick, or nChw8c when it has at most 8 output channels (16 would pad LeNet's 6
 * and slow the ReLU and pooling after it 2-3x) but on an Intel CPU (conv_create), and
 * pooling, eltwise and LRN keep their input's layout; the next kernel takes it as its
 * src. On NCHW (the network's edges, the inner product, softmax, ":nchw") each kernel
 * reorders in and out itself. The blocked src made by forward is reused by the
 * backward-weights pass (the ABI lets backward use what the latest forward on the same
 * src saved). Backward weights takes nhwc where
 * oneDNN 2.6 would otherwise drop to an AVX2 kernel (4 <= C < 16). Between layouts that
 * keep a pixel's channels together in one row (nhwc; nChw8c and nChw16c up to 8 and 16
 * channels) nothing is reordered where the bytes are the same (nChw16c and nhwc at 16
 * channels), and an input is otherwise copied row by row (rows_copy), several times
 * faster than oneDNN's reorder between those layouts. LRN runs on nChw16c,
 * since oneDNN has no fast NCHW backward (its reference kernel took 417 ms for AlexNet
 * norm1 at batch 32, 12 ms blocked with the reorders); its blocked src from forward is
 * kept for backward too. The inner product keeps the host's (K,D) weights (a per-call
 * reorder of fc6's would cost more than blocking saves) and reads NCHW only; from batch
 * 16 its forward is a matmul primitive on their transposed view, which oneDNN 2.6 runs
 * far faster than its inner product's GEMM. library_pass() runs the primitives without
 * the reorders, for the bench to show what the reorders cost.
 *
 * Algorithm. A convolution asks for convolution_auto, oneDNN's own choice between its
 * direct and Winograd kernels: it takes Winograd F(4x4, 3x3) for AlexNet's 3x3
 * convolutions at batch 32 on AVX-512 (conv3 to conv5, 0.5x the time of direct in
 * forward and backward) and direct everywhere else; algorithm() says which it got.
 *
 * Semantics follow the naive backend, the oracle:
 *   - LRN: oneDNN divides alpha by the size and the ABI does not, so alpha * size is
 *     passed; an even size is left to naive (oneDNN's window then has size channels,
 *     naive's size + 1). The forward workspace is kept for backward.
 *   - average pooling includes padding (divisor kh*kw); max pooling keeps the forward
 *     workspace and, like naive, the first maximum in row-major window order wins.
 *   - sigmoid's backward uses dst, ReLU's uses src (dx = 0 at x = 0).
 *   - softmax is a primitive; the loss, mean -log p[label] over real labels, comes from
 *     a log-softmax primitive (finite where p underflows, as naive's log(0) guard), and
 *     the gradient (p - onehot)/n_real is a plain loop, 0 for padding (negative) labels.
 *   - a NULL bias is a zero bias; a NULL diff_* skips its pass (diff_bias alone is a
 *     plain loop); a NULL diff_bias next to diff_weights goes to a private sink.
 * It is deliberately not a graph compiler: no fusion across layers, and a kernel reorders
 * whatever edge the host could not give it in its own layout.
 *
 * Threads: cfg->threads is the OpenMP thread count. It is set again before every create
 * and call, because oneDNN sizes its per-thread buffers at create and reads the count at
 * execution, and another backend state in the process may have set a different one.
 *
 * Heap: forward and backward allocate nothing of their own. oneDNN does: a few bytes of
 * bookkeeping per execution, and its GEMM-based inner-product backward packs its operands
 * in buffers it allocates at every call, whatever the scratchpad mode (AlexNet's fc6 to
 * fc8: 8.9 MiB a step; LeNet-5's: 445 KiB; the bench's alloc columns). A matmul primitive
 * on the same views (brgemm, which allocates nothing) was measured and dropped: fc6 at
 * batch 32, best of 15 calls on 1 thread, backward weights 19.6 ms against the inner
 * product's 12.4, backward data 23.4 against 15.0 (2 threads: 10.4 and 12.6 against 6.9
 * and 7.8).
 */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <dnnl.h>
#include <dnnl_debug.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"

#define WHO "onednn"
#define MAX_ARGS 8  /* execution arguments of one primitive          */
#define MAX_MEMS 48 /* memory objects of one kernel (a conv uses ~30) */

/* ------------------------------------------------------------------------------------ */
/* Backend state: one engine, stream and scratchpad per init(). Kernels hold a reference,
 * so the state outlives fini() until its last kernel is destroyed. */

typedef struct onednn_state {
    const cnb_host *host;
    int threads;                /* OpenMP threads for every create and call     */
    int refs;                   /* 1 for the backend, 1 per live kernel         */
    dnnl_engine_t engine;       /* CPU engine 0                                 */
    dnnl_stream_t stream;       /* in-order; every kernel executes on it        */
    dnnl_primitive_attr_t attr; /* scratchpad mode user                         */
    void *scratch;              /* the shared scratchpad, grown at create only  */
    size_t scratch_bytes;
    char info[200];
} onednn_state;

static void state_release(onednn_state *st)
{
    if (!st || --st->refs > 0)
        return;
    if (st->attr)
        dnnl_primitive_attr_destroy(st->attr);
    if (st->stream)
        dnnl_stream_destroy(st->stream);
    if (st->engine)
        dnnl_engine_destroy(st->engine);
    st->host->free(st->scratch);
    st->host->free(st);
}

/* ------------------------------------------------------------------------------------ */
/* Kernels. A prim is one primitive with its argument list, ready to execute; a tensor
 * is one argument as the host holds it and as the primitive wants it. */

typedef struct prim {
    dnnl_primitive_t p;             /* NULL: nothing to run (or the copy below)  */
    int is_reorder;                 /* a layout change around the computation    */
    dnnl_dim_t rows, cols, from_ld, to_ld; /* rows > 0: copy pixel rows (rows_copy) */
    dnnl_memory_t scratch;          /* bound to the state's scratchpad, or NULL  */
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
} prim;

typedef struct tensor {
    dnnl_memory_t user; /* host layout, bound per call; NULL when mem is borrowed    */
    dnnl_memory_t mem;  /* what the primitive uses: user, or a buffer in its layout  */
    prim reorder;       /* user -> mem (inputs), mem -> user (outputs); empty if same */
} tensor;

typedef struct dn_kernel {
    cnb_kernel base;          /* first: the host only sees this                   */
    onednn_state *st;
    cnb_op_desc d;            /* the descriptor it was created for                */
    /* forward */
    tensor src, weights, dst;
    dnnl_memory_t bias;       /* (K) plain: a->bias, or zeros                    */
    dnnl_memory_t ws;         /* max pool, LRN: forward writes, backward reads   */
    prim fwd;
    prim fwd_log;             /* softmax: log-softmax for the loss               */
    /* backward */
    tensor diff_dst;          /* as backward-data wants it                       */
    tensor diff_dst_w;        /* as backward-weights wants it (often borrowed)   */
    tensor src_w;             /* backward-weights' src (often forward's copy)    */
    tensor weights_d;         /* backward-data's weights                         */
    tensor diff_src, diff_weights;
    dnnl_memory_t diff_bias;  /* (K) plain: a->diff_bias, or sink                */
    prim bwd_data, bwd_weights;
    float *zeros;             /* (K) the bias when a->bias is NULL               */
    float *sink;              /* (K) diff_bias nobody asked for                  */
    const float *logp;        /* softmax: (N,D) log-probabilities (fwd_log dst)  */
    int library_only;         /* library_pass() is running: skip the reorders    */
    cnb_layout_info out;      /* the layout the host holds dst in (layout_of)    */
    dnnl_memory_t mems[MAX_MEMS]; /* every memory object, destroyed together      */
    int n_mems;
    size_t held;              /* bytes it holds: itself, zeros, sink and the buffers
                                 oneDNN allocated for its memory objects (kernel_bytes) */
    const char *algorithm;    /* "winograd" where oneDNN took it for a pass; else NULL */
} dn_kernel;


/* A oneDNN call failed: say which, and map the status onto a cnb_status. Unimplemented
 * (a geometry oneDNN has no kernel for) is CNB_ENOTSUP, so the host runs naive. */
static int dnnl_fail(dn_kernel *k, dnnl_status_t s, const char *call, int line)
{
    const cnb_host *host = k->st->host;
    if (s == dnnl_unimplemented) {
        host->log(CNB_LOG_WARN, WHO, "%s: oneDNN has no implementation (%s, line %d); "
                  "the naive backend runs it", cnb_op_name(k->d.op), call, line);
        return CNB_ENOTSUP;
    }
    host->log(CNB_LOG_ERROR, WHO, "%s: %s failed: %s (onednn.c:%d)", cnb_op_name(k->d.op), call,
              dnnl_status2str(s), line);
    return s == dnnl_out_of_memory ? CNB_ENOMEM : CNB_EINVAL;
}

/* In a function with `int rc` and a `done:` label. */
#define TRY(call)                                                                   \
    do {                                                                            \
        dnnl_status_t s_ = (call);                                                  \
        if (s_ != dnnl_success) {                                                   \
            rc = dnnl_fail(k, s_, #call, __LINE__);                                 \
            goto done;                                                              \
        }                                                                           \
    } while (0)

/* "nChw16c"-like name of a layout, for the debug log. */
static void md_str(char *buf, size_t len, const dnnl_memory_desc_t *md)
{
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, len, "%s", dnnl_fmt_kind2str(md->format_kind));
        return;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], nd = md->ndims, n = 0;
    for (int i = 0; i < nd; i++)
        order[i] = i;
    for (int i = 0; i < nd; i++) /* outer dims by decreasing stride (stable) */
        for (int j = nd - 1; j > i; j--)
            if (b->strides[order[j]] > b->strides[order[j - 1]]) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    for (int i = 0; i < nd && n < (int)len - 1; i++) {
        int blocked = 0;
        for (int j = 0; j < b->inner_nblks; j++)
            blocked |= b->inner_idxs[j] == order[i];
        buf[n++] = (char)((blocked ? 'A' : 'a') + order[i]);
    }
    for (int j = 0; j < b->inner_nblks && n < (int)len - 1; j++)
        n += snprintf(buf + n, len - n, "%d%c", (int)b->inner_blks[j],
                      (char)('a' + b->inner_idxs[j]));
    buf[n < (int)len ? n : (int)len - 1] = '\0';
}

static dnnl_status_t mem_new(dn_kernel *k, dnnl_memory_t *m, const dnnl_memory_desc_t *md,
                             void *handle)
{
    if (k->n_mems == MAX_MEMS)
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_memory_create(m, md, k->st->engine, handle);
    if (s == dnnl_success)
        k->mems[k->n_mems++] = *m;
    if (s == dnnl_success && handle == DNNL_MEMORY_ALLOCATE)
        k->held += dnnl_memory_desc_get_size(md);
    return s;
}

static void prim_arg(prim *p, int arg, dnnl_memory_t mem)
{
    p->args[p->nargs].arg = arg;
    p->args[p->nargs].memory = mem;
    p->nargs++;
}

static dnnl_status_t pd_make(dn_kernel *k, dnnl_primitive_desc_t *pd, const void *op_desc,
                             const_dnnl_primitive_desc_t hint)
{
    return dnnl_primitive_desc_create(pd, op_desc, k->st->attr, k->st->engine, hint);
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The primitive of pd, its scratchpad (the state's buffer grows to fit) and no args. */
static dnnl_status_t prim_make(dn_kernel *k, prim *p, const_dnnl_primitive_desc_t pd)
{
    onednn_state *st = k->st;
    dnnl_status_t s = dnnl_primitive_create(&p->p, pd);
    if (s != dnnl_success)
        return s;
    const dnnl_memory_desc_t *md = pd_md(pd, dnnl_query_scratchpad_md);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (!bytes)
        return dnnl_success;
    if (bytes > st->scratch_bytes) {
        void *grown = st->host->alloc(bytes);
        if (!grown)
            return dnnl_out_of_memory;
        st->host->free(st->scratch);
        st->scratch = grown;
        st->scratch_bytes = bytes;
    }
    s = mem_new(k, &p->scratch, md, DNNL_MEMORY_NONE);
    if (s == dnnl_success)
        prim_arg(p, DNNL_ARG_SCRATCHPAD, p->scratch);
    return s;
}

static int is_avx512(dnnl_cpu_isa_t isa)
{
    return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
}

/* Is the CPU an Intel one (CPUID vendor "GenuineIntel")? */
static int intel_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547 && d == 0x49656e69 &&
           c == 0x6c65746e;
#else
    return 0;
#endif
}

/* Does the name of the implementation oneDNN picked for pd contain what: "avx512" for
 * AVX-512 code ("jit:avx512_core"), "wino" for Winograd ("jit_wino_4x3:avx512_core")? */
static int pd_impl_has(const_dnnl_primitive_desc_t pd, const char *what)
{
    const char *impl = NULL;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
           impl && strstr(impl, what);
}

/* The row length X when md holds its 4-D (N,C,H,W) tensor as an (N*H*W, X) row-major
 * matrix with channel c in column c: nhwc (X = C), and nChw8c / nChw16c when every
 * channel fits in one block (X = 8 or 16, columns C..X-1 padding); 0 for other layouts. */
static dnnl_dim_t pixel_rows(const dnnl_memory_desc_t *md)
{
    if (md->ndims != 4 || md->format_kind != dnnl_blocked || md->offset0)
        return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    const dnnl_dim_t *pd = md->padded_dims;
    dnnl_dim_t x = pd[1];
    int one_block = b->inner_nblks == 1 && b->inner_idxs[0] == 1 && b->inner_blks[0] == x;
    if (!(b->inner_nblks == 0 ? b->strides[1] == 1 : one_block))
        return 0;
    return b->strides[3] == x && b->strides[2] == pd[3] * x && b->strides[0] == pd[2] * pd[3] * x
               ? x
               : 0;
}

/* The reorder of an input between two pixel-row layouts: the C data columns of the
 * (N*H*W, X) rows, copied by rows_copy(). LeNet conv1's diff_dst, nChw8c to nChw16c in
 * the training step (batch 256, 2 threads): oneDNN 2.6's reorder takes 0.73 ms, its
 * reorder of the same rows as a 2-D strided copy 0.37, this copy 0.20. `mem`'s padding
 * columns are zeroed here once; nothing else writes them. */
static dnnl_status_t rows_reorder(dn_kernel *k, tensor *t, const dnnl_memory_desc_t *host_md,
                                  const dnnl_memory_desc_t *want)
{
    dnnl_status_t s;
    void *buf = NULL;
    if ((s = mem_new(k, &t->user, host_md, DNNL_MEMORY_NONE)) ||
        (s = mem_new(k, &t->mem, want, DNNL_MEMORY_ALLOCATE)) ||
        (s = dnnl_memory_get_data_handle(t->mem, &buf)))
        return s;
    memset(buf, 0, dnnl_memory_desc_get_size(want));
    prim *p = &t->reorder;
    p->is_reorder = 1;
    p->rows = host_md->dims[0] * host_md->dims[2] * host_md->dims[3];
    p->cols = host_md->dims[1];
    p->from_ld = pixel_rows(host_md);
    p->to_ld = pixel_rows(want);
    prim_arg(p, DNNL_ARG_FROM, t->user);
    prim_arg(p, DNNL_ARG_TO, t->mem);
    return dnnl_success;
}

/* A tensor the host holds as `host_md` and the primitive wants as `want`; an output
 * reorders want -> host after the primitive, an input host -> want before it. Layouts
 * with the same bytes (nChw16c and nhwc at 16 channels) need no reorder: the host's
 * buffer is bound as `want`. */
static dnnl_status_t tensor_make(dn_kernel *k, tensor *t, const dnnl_memory_desc_t *host_md,
                                 const dnnl_memory_desc_t *want, int output, const char *what)
{
    const dnnl_dim_t host_rows = pixel_rows(host_md), want_rows = pixel_rows(want);
    if (dnnl_memory_desc_equal(host_md, want) || (host_rows && host_rows == want_rows)) {
        dnnl_status_t s = mem_new(k, &t->user, want, DNNL_MEMORY_NONE);
        t->mem = t->user;
        return s;
    }
    char a[32], b[32];
    md_str(a, sizeof a, host_md);
    md_str(b, sizeof b, want);
    k->st->host->log(CNB_LOG_DEBUG, WHO, "%s: %s reordered %s -> %s", cnb_op_name(k->d.op), what,
                     output ? b : a, output ? a : b);
    if (!output && host_rows && want_rows)
        return rows_reorder(k, t, host_md, want);
    dnnl_status_t s = mem_new(k, &t->user, host_md, DNNL_MEMORY_NONE);
    if (s != dnnl_success || (s = mem_new(k, &t->mem, want, DNNL_MEMORY_ALLOCATE)))
        return s;
    dnnl_primitive_desc_t rpd = NULL;
    const dnnl_memory_desc_t *from = output ? want : host_md, *to = output ? host_md : want;
    s = dnnl_reorder_primitive_desc_create(&rpd, from, k->st->engine, to, k->st->engine,
                                           k->st->attr);
    if (s == dnnl_success)
        s = prim_make(k, &t->reorder, rpd);
    t->reorder.is_reorder = 1;
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (s == dnnl_success) {
        prim_arg(&t->reorder, DNNL_ARG_FROM, output ? t->mem : t->user);
        prim_arg(&t->reorder, DNNL_ARG_TO, output ? t->user : t->mem);
    }
    return s;
}

/* A tensor that borrows `mem` (already in the wanted layout) when `have` equals `want`,
 * or else gets its own reorder from the host layout. */
static dnnl_status_t tensor_share(dn_kernel *k, tensor *t, dnnl_memory_t mem,
                                  const dnnl_memory_desc_t *have,
                                  const dnnl_memory_desc_t *host_md,
                                  const dnnl_memory_desc_t *want, const char *what)
{
    if (dnnl_memory_desc_equal(have, want)) {
        t->mem = mem;
        return dnnl_success;
    }
    return tensor_make(k, t, host_md, want, 0, what);
}

static dnnl_status_t plain_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                              dnnl_format_tag_t tag)
{
    return dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag);
}

/* Native layouts (cnnbench/backend.h): the layouts one kernel may hand the next; the id
 * is the dnnl_format_tag_t, and nchw is CNB_LAYOUT_NCHW. */
static const struct {
    dnnl_format_tag_t tag;
    const char *name;
} native[] = {{dnnl_nChw16c, "nChw16c"}, {dnnl_nChw8c, "nChw8c"}, {dnnl_nhwc, "nhwc"}};

/* The tag of the host's src, or dnnl_format_tag_undef for an id this backend never gave. */
static dnnl_format_tag_t src_tag(const cnb_op_desc *d)
{
    if (d->src_layout == CNB_LAYOUT_NCHW)
        return dnnl_nchw;
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++)
        if ((uint32_t)native[i].tag == d->src_layout)
            return native[i].tag;
    return dnnl_format_tag_undef;
}

/* The host's dst, 4-D: in `tag` when the host lets the kernel choose and tag is a native
 * layout, otherwise NCHW; recorded for layout_of(). */
static dnnl_status_t dst_host_md(dn_kernel *k, dnnl_memory_desc_t *md, const dnnl_dims_t dims,
                                 dnnl_format_tag_t tag)
{
    k->out = (cnb_layout_info){CNB_LAYOUT_NCHW, 0, "nchw"};
    for (size_t i = 0; k->d.dst_layout == CNB_LAYOUT_ANY && i < sizeof native / sizeof native[0];
         i++)
        if (native[i].tag == tag)
            k->out = (cnb_layout_info){(uint32_t)tag, 0, native[i].name};
    dnnl_status_t s = plain_md(md, 4, dims, k->out.id ? tag : dnnl_nchw);
    k->out.bytes = dnnl_memory_desc_get_size(md);
    return s;
}

/* The native tag equal to md, or dnnl_nchw when none is. */
static dnnl_format_tag_t tag_of(const dnnl_memory_desc_t *md)
{
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
        dnnl_memory_desc_t t;
        if (plain_md(&t, md->ndims, md->dims, native[i].tag) == dnnl_success &&
            dnnl_memory_desc_equal(&t, md))
            return native[i].tag;
    }
    return dnnl_nchw;
}

/* ------------------------------------------------------------------------------------ */
/* Execution: bind the host's pointers, run the non-empty prims in order, wait. */

static void begin(const dn_kernel *k) { omp_set_num_threads(k->st->threads); }

/* Point memory object m at the host's buffer (const only for the host: oneDNN takes a
 * void * for inputs too and does not write them). */
static int bind_mem(dn_kernel *k, dnnl_memory_t m, const void *ptr)
{
    dnnl_status_t s = dnnl_memory_set_data_handle(m, (void *)ptr);
    return s == dnnl_success ? CNB_OK
                             : dnnl_fail(k, s, "dnnl_memory_set_data_handle", __LINE__);
}

/* The same for a tensor's host side; nothing to do for a borrowed tensor or NULL. */
static int bind(dn_kernel *k, const tensor *t, const void *ptr)
{
    return t->user && ptr ? bind_mem(k, t->user, ptr) : CNB_OK;
}

/* Does p run anything: a primitive, or a pixel-row copy? */
static int prim_runs(const prim *p) { return p && (p->p || p->rows); }

/* A pixel-row reorder (rows_reorder): row r's first cols floats, from FROM to TO. */
static void rows_copy(const prim *p)
{
    void *from = NULL, *to = NULL;
    dnnl_memory_get_data_handle(p->args[0].memory, &from);
    dnnl_memory_get_data_handle(p->args[1].memory, &to);
    const float *src = from;
    float *dst = to;
    const size_t bytes = sizeof(float) * (size_t)p->cols;
#pragma omp parallel for schedule(static)
    for (dnnl_dim_t r = 0; r < p->rows; r++)
        memcpy(dst + r * p->to_ld, src + r * p->from_ld, bytes);
}

static int run(dn_kernel *k, prim *const *seq, int n)
{
    onednn_state *st = k->st;
    for (int i = 0; i < n; i++) {
        prim *p = seq[i];
        if (!prim_runs(p) || (p->is_reorder && k->library_only))
            continue;
        if (p->rows) {
            rows_copy(p);
            continue;
        }
        if (p->scratch) {
            dnnl_status_t s = dnnl_memory_set_data_handle(p->scratch, st->scratch);
            if (s != dnnl_success)
                return dnnl_fail(k, s, "dnnl_memory_set_data_handle(scratchpad)", __LINE__);
        }
        dnnl_status_t s = dnnl_primitive_execute(p->p, st->stream, p->nargs, p->args);
        if (s != dnnl_success)
            return dnnl_fail(k, s, "dnnl_primitive_execute", __LINE__);
    }
    dnnl_status_t s = dnnl_stream_wait(st->stream);
    return s == dnnl_success ? CNB_OK : dnnl_fail(k, s, "dnnl_stream_wait", __LINE__);
}

#define RUN(k, ...)                                                                   \
    run((k), (prim *const[]){__VA_ARGS__},                                            \
        (int)(sizeof((prim *const[]){__VA_ARGS__}) / sizeof(prim *)))

/* dbias[k] = sum_{n,o} dout[n,k,o], for a backward asked for diff_bias alone. */
static void bias_grad(float *dbias, const float *dout, int N, int K, int HW)
{
    for (int c = 0; c < K; c++) {
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            const float *row = dout + ((size_t)n * K + c) * HW;
            for (int o = 0; o < HW; o++)
                sum += row[o];
        }
        dbias[c] = (float)sum;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Convolution and inner product: forward, backward data, backward weights (with bias).
 * Both share forward and backward; they differ in descriptors and in layouts (the
 * convolution's are oneDNN's choice, the inner product's plain). */

static int wb_forward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    begin(k);
    int rc = bind(k, &k->src, a->src);             /* (N,C,H,W)      */
    if (!rc)
        rc = bind(k, &k->weights, a->weights);     /* (K,C,KH,KW)    */
    if (!rc)
        rc = bind_mem(k, k->bias, a->bias ? a->bias : k->zeros); /* (K) */
    if (!rc)
        rc = bind(k, &k->dst, a->dst);             /* (N,K,OH,OW)    */
    if (rc)
        return rc;
    return RUN(k, &k->src.reorder, &k->weights.reorder, &k->fwd, &k->dst.reorder);
}

static int wb_backward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    const int N = k->d.batch, K = k->d.dst.c, OHW = k->d.dst.h * k->d.dst.w;
    const int need_d = a->diff_src != NULL, need_w = a->diff_weights != NULL;
    begin(k);
    if (!need_w && a->diff_bias && k->d.dst_layout != CNB_LAYOUT_NCHW)
        return CNB_FAIL(k->st->host, WHO, CNB_EINVAL, "%s: diff_bias without diff_weights "
                        "needs an NCHW diff_dst", cnb_op_name(k->d.op));
    if (!need_w && a->diff_bias)
        bias_grad(a->diff_bias, a->diff_dst, N, K, OHW);
    if (!need_d && !need_w)
        return CNB_OK;
    int rc = bind(k, &k->diff_dst, a->diff_dst);    /* (N,K,OH,OW)  */
    if (!rc)
        rc = bind(k, &k->diff_dst_w, a->diff_dst);
    if (!rc)  /* src_w borrows src.mem, which is src.user when src is not reordered */
        rc = bind(k, &k->src, a->src);              /* (N,C,H,W)    */
    if (!rc)
        rc = bind(k, &k->src_w, a->src);
    if (!rc)
        rc = bind(k, &k->weights_d, a->weights);    /* (K,C,KH,KW)  */
    if (!rc)
        rc = bind(k, &k->diff_src, a->diff_src);    /* (N,C,H,W)    */
    if (!rc)
        rc = bind(k, &k->diff_weights, a->diff_weights);
    if (!rc && need_w)
        rc = bind_mem(k, k->diff_bias, a->diff_bias ? a->diff_bias : k->sink);
    if (rc)
        return rc;
    /* backward-weights reads diff_dst.mem when diff_dst_w borrows it */
    int ddst = need_d || !k->diff_dst_w.user;
    prim *none = NULL;
    return RUN(k, ddst ? &k->diff_dst.reorder : none,
               need_d ? &k->weights_d.reorder : none, need_d ? &k->bwd_data : none,
               need_d ? &k->diff_src.reorder : none, need_w ? &k->src_w.reorder : none,
               need_w ? &k->diff_dst_w.reorder : none, need_w ? &k->bwd_weights : none,
               need_w ? &k->diff_weights.reorder : none);
}

/* Shared by conv and inner product once the three primitive descriptors exist: host
 * layouts src_md, w_md, dst_md; bias and diff_bias are plain (K) and never reordered.
 * fw_md and fb_md are how the forward sees the host's weights and bias (w_md and b_md,
 * or the inner product's matmul views of the same memory). */
static int wb_build(dn_kernel *k, const_dnnl_primitive_desc_t fpd,
                    const_dnnl_primitive_desc_t dpd, const_dnnl_primitive_desc_t wpd,
                    const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *w_md,
                    const dnnl_memory_desc_t *b_md, const dnnl_memory_desc_t *dst_md,
                    const dnnl_memory_desc_t *fw_md, const dnnl_memory_desc_t *fb_md)
{
    const cnb_host *host = k->st->host;
    const int K = k->d.dst.c;
    int rc = CNB_OK;
    /* forward */
    TRY(tensor_make(k, &k->src, src_md, pd_md(fpd, dnnl_query_src_md), 0, "src"));
    TRY(tensor_make(k, &k->weights, fw_md, pd_md(fpd, dnnl_query_weights_md), 0, "weights"));
    TRY(tensor_make(k, &k->dst, dst_md, pd_md(fpd, dnnl_query_dst_md), 1, "dst"));
    TRY(mem_new(k, &k->bias, fb_md, DNNL_MEMORY_NONE));
    TRY(prim_make(k, &k->fwd, fpd));
    prim_arg(&k->fwd, DNNL_ARG_SRC, k->src.mem);
    prim_arg(&k->fwd, DNNL_ARG_WEIGHTS, k->weights.mem);
    prim_arg(&k->fwd, DNNL_ARG_BIAS, k->bias);
    prim_arg(&k->fwd, DNNL_ARG_DST, k->dst.mem);
    /* backward data */
    TRY(tensor_make(k, &k->diff_dst, dst_md, pd_md(dpd, dnnl_query_diff_dst_md), 0,
                    "diff_dst"));
    TRY(tensor_make(k, &k->weights_d, w_md, pd_md(dpd, dnnl_query_weights_md), 0,
                    "weights (backward data)"));
    TRY(tensor_make(k, &k->diff_src, src_md, pd_md(dpd, dnnl_query_diff_src_md), 1,
                    "diff_src"));
    TRY(prim_make(k, &k->bwd_data, dpd));
    prim_arg(&k->bwd_data, DNNL_ARG_DIFF_DST, k->diff_dst.mem);
    prim_arg(&k->bwd_data, DNNL_ARG_WEIGHTS, k->weights_d.mem);
    prim_arg(&k->bwd_data, DNNL_ARG_DIFF_SRC, k->diff_src.mem);
    /* backward weights: src from forward's copy and diff_dst from backward data's when
     * the layouts agree */
    TRY(tensor_share(k, &k->src_w, k->src.mem, pd_md(fpd, dnnl_query_src_md), src_md,
                     pd_md(wpd, dnnl_query_src_md), "src (backward weights)"));
    TRY(tensor_share(k, &k->diff_dst_w, k->diff_dst.mem, pd_md(dpd, dnnl_query_diff_dst_md),
                     dst_md, pd_md(wpd, dnnl_query_diff_dst_md),
                     "diff_dst (backward weights)"));
    TRY(tensor_make(k, &k->diff_weights, w_md, pd_md(wpd, dnnl_query_diff_weights_md), 1,
                    "diff_weights"));
    TRY(mem_new(k, &k->diff_bias, b_md, DNNL_MEMORY_NONE));
    TRY(prim_make(k, &k->bwd_weights, wpd));
    prim_arg(&k->bwd_weights, DNNL_ARG_SRC, k->src_w.mem);
    prim_arg(&k->bwd_weights, DNNL_ARG_DIFF_DST, k->diff_dst_w.mem);
    prim_arg(&k->bwd_weights, DNNL_ARG_DIFF_WEIGHTS, k->diff_weights.mem);
    prim_arg(&k->bwd_weights, DNNL_ARG_DIFF_BIAS, k->diff_bias);

    k->zeros = host->alloc(sizeof(float) * K);
    k->sink = host->alloc(sizeof(float) * K);
    if (!k->zeros || !k->sink)
        rc = CNB_ENOMEM;
    k->held += 2 * sizeof(float) * K;
done:
    return rc;
}

/* out = bias + weight (*) inp, with stride and symmetric zero padding; O follows
 * floor((I - K + 2P)/S) + 1, which oneDNN accepts with padding_r = P. */
static int conv_create(dn_kernel *k)
{
    const cnb_op_desc *d = &k->d;
    const dnnl_dim_t N = d->batch, C = d->src.c, H = d->src.h, W = d->src.w;
    const dnnl_dim_t K = d->dst.c, OH = d->dst.h, OW = d->dst.w;
    const dnnl_dims_t src_dims = {N, C, H, W}, w_dims = {K, C, d->u.conv.kh, d->u.conv.kw};
    const dnnl_dims_t b_dims = {K}, dst_dims = {N, K, OH, OW};
    const dnnl_dims_t strides = {d->u.conv.sh, d->u.conv.sw};
    const dnnl_dims_t pad = {d->u.conv.ph, d->u.conv.pw};
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md, src_any, w_any, dst_any;
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t hint = NULL, fpd = NULL, dpd = NULL, wpd = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&src_md, 4, src_dims, src_tag(d)));
    TRY(plain_md(&w_md, 4, w_dims, dnnl_oihw));
    TRY(plain_md(&b_md, 1, b_dims, dnnl_x));
    TRY(plain_md(&src_any, 4, src_dims, dnnl_format_tag_any));
    TRY(plain_md(&w_any, 4, w_dims, dnnl_format_tag_any));
    TRY(plain_md(&dst_any, 4, dst_dims, dnnl_format_tag_any));
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_auto,
                                           &src_any, &w_any, &b_md, &dst_any, strides, pad,
                                           pad));
    TRY(pd_make(k, &hint, &fd, NULL));
    /* A dst the next kernel reads natively with K <= 8 channels: oneDNN's pick, nChw16c,
     * pads it to 16 and the activation and pooling after it stream 16/K times the bytes
     * (LeNet conv1, K = 6: ReLU forward and backward 0.69 and 1.07 ms instead of 0.22 and
     * 0.33 on nChw8c, batch 256, 2 threads, an AMD EPYC). Take nChw8c when oneDNN has a
     * kernel for it; the backward passes keep oneDNN's pick as their hint, and reorder
     * diff_dst. Not on an Intel CPU: oneDNN 2.6 pools nChw8c with its AVX2 kernel, which
     * runs there 4 times as slow as its AVX-512 one on nChw16c (LeNet pool1 forward and
     * backward 11.9 and 10.3 ms against 3.0 and 3.8, and the step 37.0 against 19.1, batch
     * 256, 1 thread, a Xeon with AMX), likely its mix of SSE and AVX instructions, which an
     * Intel core pays an assist for at each switch (fixed after 2.6: oneDNN pull request
     * 1457). */
    if (d->dst_layout == CNB_LAYOUT_ANY && K <= 8 && !intel_cpu()) {
        dnnl_memory_desc_t dst_8c;
        TRY(plain_md(&dst_8c, 4, dst_dims, dnnl_nChw8c));
        TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                               dnnl_convolution_auto, &src_any, &w_any,
                                               &b_md, &dst_8c, strides, pad, pad));
        if (pd_make(k, &fpd, &fd, NULL) != dnnl_success)
            fpd = NULL;
    }
    const_dnnl_primitive_desc_t fwd = fpd ? fpd : hint;
    TRY(dst_host_md(k, &dst_md, dst_dims, tag_of(pd_md(fwd, dnnl_query_dst_md))));
    /* diff_src straight into the host's nChw8c: oneDNN's AVX2 kernel for it beats its
     * AVX-512 one on nChw16c plus the reorder (LeNet conv2: 1.14 + 0 against 1.42 + 0.07
     * ms, batch 256, 2 threads). */
    TRY(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_auto,
                                                 src_tag(d) == dnnl_nChw8c ? &src_md : &src_any,
                                                 &w_any, &dst_any, strides, pad, pad));
    TRY(pd_make(k, &dpd, &dd, hint));
    TRY(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_auto, &src_any,
                                                    &w_any, &b_md, &dst_any, strides, pad,
                                                    pad));
    TRY(pd_make(k, &wpd, &wd, hint));
    /* oneDNN 2.6 runs backward weights with 4 <= C < 16 on an AVX2 8-blocked kernel (its
     * AVX-512 one wants C < 4 or C % 16 == 0); on nhwc it keeps AVX-512: 2.5 instead of
     * 3.5 ms for LeNet conv2 at batch 256. Take nhwc when that is the only AVX-512 kernel. */
    if (is_avx512(dnnl_get_effective_cpu_isa()) && !pd_impl_has(wpd, "avx512")) {
        dnnl_memory_desc_t src_nhwc, dst_nhwc;
        dnnl_primitive_desc_t alt = NULL;
        TRY(plain_md(&src_nhwc, 4, src_dims, dnnl_nhwc));
        TRY(plain_md(&dst_nhwc, 4, dst_dims, dnnl_nhwc));
        TRY(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_auto,
                                                        &src_nhwc, &w_any, &b_md, &dst_nhwc,
                                                        strides, pad, pad));
        if (pd_make(k, &alt, &wd, hint) == dnnl_success && pd_impl_has(alt, "avx512")) {
            dnnl_primitive_desc_destroy(wpd);
            wpd = alt;
        } else if (alt) {
            dnnl_primitive_desc_destroy(alt);
        }
    }
    if (pd_impl_has(fwd, "wino") || pd_impl_has(dpd, "wino") || pd_impl_has(wpd, "wino"))
        k->algorithm = "winograd";
    rc = wb_build(k, fwd, dpd, wpd, &src_md, &w_md, &b_md, &dst_md, &w_md, &b_md);
done:
    dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    return rc;
}

/* out[n,k] = bias[k] + sum_i weight[k,i] inp[n,i] over i < D = C*H*W: the (N,C,H,W)
 * src is the (N,D) matrix and the weights are (K,D), all plain, as a reorder of the
 * weights on every call costs more than a blocked layout saves (20 ms for fc6's 151 MB).
 * Backward runs the inner-product primitives (GEMM). The forward does too for a small
 * batch, but from MATMUL_MIN_BATCH on it is a matmul primitive on the (D,K) transposed
 * view of the same weights (brgemm): the inner product's GEMM splits its 32 rows badly,
 * fc6 at batch 32 took 24.8 ms on 1 thread and 38.6 ms on 2, the matmul 15.8 and 8.5. */
#define MATMUL_MIN_BATCH 16 /* crossover measured on fc6: IP faster at 8, matmul at 16 */

static int inner_product_create(dn_kernel *k)
{
    const cnb_op_desc *d = &k->d;
    const dnnl_dim_t N = d->batch, D = (dnnl_dim_t)cnb_shape_size(d->src), K = d->dst.c;
    const dnnl_dims_t src_dims = {N, D}, w_dims = {K, D}, b_dims = {K}, dst_dims = {N, K};
    const dnnl_dims_t wt_dims = {D, K}, brow_dims = {1, K};
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md, wt_md, brow_md;
    dnnl_inner_product_desc_t fd, dd, wd;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL, mpd = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&src_md, 2, src_dims, dnnl_nc));
    TRY(plain_md(&w_md, 2, w_dims, dnnl_oi));
    TRY(plain_md(&b_md, 1, b_dims, dnnl_x));
    TRY(plain_md(&dst_md, 2, dst_dims, dnnl_nc));
    TRY(plain_md(&wt_md, 2, wt_dims, dnnl_ba));     /* the (K,D) weights, read as (D,K) */
    TRY(plain_md(&brow_md, 2, brow_dims, dnnl_ab)); /* the (K) bias, read as (1,K)      */
    TRY(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &src_md, &w_md, &b_md,
                                             &dst_md));
    TRY(pd_make(k, &fpd, &fd, NULL));
    TRY(dnnl_inner_product_backward_data_desc_init(&dd, &src_md, &w_md, &dst_md));
    TRY(pd_make(k, &dpd, &dd, fpd));
    TRY(dnnl_inner_product_backward_weights_desc_init(&wd, &src_md, &w_md, &b_md, &dst_md));
    TRY(pd_make(k, &wpd, &wd, fpd));
    if (N >= MATMUL_MIN_BATCH) {
        TRY(dnnl_matmul_desc_init(&md, &src_md, &wt_md, &brow_md, &dst_md));
        TRY(pd_make(k, &mpd, &md, NULL));
        rc = wb_build(k, mpd, dpd, wpd, &src_md, &w_md, &b_md, &dst_md, &wt_md, &brow_md);
    } else {
        rc = wb_build(k, fpd, dpd, wpd, &src_md, &w_md, &b_md, &dst_md, &w_md, &b_md);
    }
done:
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_desc_destroy(mpd);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Pooling, eltwise and LRN: one forward and one backward primitive on the host's NCHW
 * tensors (LRN: on nChw16c copies); max pooling and LRN pass the forward workspace to
 * backward. */

static int data_forward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    begin(k);
    int rc = bind(k, &k->src, a->src);  /* (N,C,H,W)   */
    if (!rc)
        rc = bind(k, &k->dst, a->dst);  /* (N,C,OH,OW) */
    return rc ? rc : RUN(k, &k->src.reorder, &k->fwd, &k->dst.reorder);
}

static int data_backward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    if (!a->diff_src)
        return CNB_OK;
    begin(k);
    int rc = bind(k, &k->src, a->src);            /* (N,C,H,W): relu, LRN     */
    if (!rc)
        rc = bind(k, &k->dst, a->dst);            /* (N,C,OH,OW): sigmoid     */
    if (!rc)
        rc = bind(k, &k->diff_dst, a->diff_dst);  /* (N,C,OH,OW)              */
    if (!rc)
        rc = bind(k, &k->diff_src, a->diff_src);  /* (N,C,H,W)                */
    /* a reordered src or dst is read from forward's copy */
    return rc ? rc : RUN(k, &k->diff_dst.reorder, &k->bwd_data, &k->diff_src.reorder);
}

/* Tensors src and dst (forward), diff_dst and diff_src (backward data) with reorders
 * where the primitives' layout is not NCHW, the workspace if the forward has one, and
 * the args; bwd_arg is what backward reads besides diff_dst (src, dst or neither). */
static int data_build(dn_kernel *k, const_dnnl_primitive_desc_t fpd,
                      const_dnnl_primitive_desc_t bpd, const dnnl_memory_desc_t *src_md,
                      const dnnl_memory_desc_t *dst_md, int bwd_arg)
{
    int rc = CNB_OK;
    TRY(tensor_make(k, &k->src, src_md, pd_md(fpd, dnnl_query_src_md), 0, "src"));
    TRY(tensor_make(k, &k->dst, dst_md, pd_md(fpd, dnnl_query_dst_md), 1, "dst"));
    TRY(tensor_make(k, &k->diff_dst, dst_md, pd_md(bpd, dnnl_query_diff_dst_md), 0,
                    "diff_dst"));
    TRY(tensor_make(k, &k->diff_src, src_md, pd_md(bpd, dnnl_query_diff_src_md), 1,
                    "diff_src"));
    const dnnl_memory_desc_t *ws = pd_md(fpd, dnnl_query_workspace_md);
    if (ws && dnnl_memory_desc_get_size(ws))
        TRY(mem_new(k, &k->ws, ws, DNNL_MEMORY_ALLOCATE));
    TRY(prim_make(k, &k->fwd, fpd));
    prim_arg(&k->fwd, DNNL_ARG_SRC, k->src.mem);
    prim_arg(&k->fwd, DNNL_ARG_DST, k->dst.mem);
    TRY(prim_make(k, &k->bwd_data, bpd));
    prim_arg(&k->bwd_data, DNNL_ARG_DIFF_DST, k->diff_dst.mem);
    prim_arg(&k->bwd_data, DNNL_ARG_DIFF_SRC, k->diff_src.mem);
    if (bwd_arg == DNNL_ARG_SRC)
        prim_arg(&k->bwd_data, DNNL_ARG_SRC, k->src.mem);
    if (bwd_arg == DNNL_ARG_DST)
        prim_arg(&k->bwd_data, DNNL_ARG_DST, k->dst.mem);
    if (k->ws) {
        prim_arg(&k->fwd, DNNL_ARG_WORKSPACE, k->ws);
        prim_arg(&k->bwd_data, DNNL_ARG_WORKSPACE, k->ws);
    }
done:
    return rc;
}

/* Max: the first largest input of the window (padding never wins); average: the window
 * sum over kh*kw, padding counted as zeros. */
static int pool_create(dn_kernel *k)
{
    const cnb_op_desc *d = &k->d;
    const dnnl_dims_t src_dims = {d->batch, d->src.c, d->src.h, d->src.w};
    const dnnl_dims_t dst_dims = {d->batch, d->dst.c, d->dst.h, d->dst.w};
    const dnnl_dims_t strides = {d->u.pool.sh, d->u.pool.sw};
    const dnnl_dims_t kernel = {d->u.pool.kh, d->u.pool.kw};
    const dnnl_dims_t pad = {d->u.pool.ph, d->u.pool.pw};
    const dnnl_alg_kind_t alg =
        d->op == CNB_OP_POOL_MAX ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_memory_desc_t src_md, dst_md, pd_dst;
    dnnl_pooling_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&src_md, 4, src_dims, src_tag(d)));
    TRY(plain_md(&pd_dst, 4, dst_dims, src_tag(d)));
    TRY(dst_host_md(k, &dst_md, dst_dims, src_tag(d)));
    TRY(dnnl_pooling_forward_desc_init(&fd, dnnl_forward_training, alg, &src_md, &pd_dst,
                                       strides, kernel, pad, pad));
    TRY(pd_make(k, &fpd, &fd, NULL));
    TRY(dnnl_pooling_backward_desc_init(&bd, alg, &src_md, &pd_dst, strides, kernel, pad, pad));
    TRY(pd_make(k, &bpd, &bd, fpd));
    rc = data_build(k, fpd, bpd, &src_md, &dst_md, 0);
done:
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    return rc;
}

/* Sigmoid y = 1/(1 + e^-x), dx = dy y (1 - y) from dst; ReLU y = max(x, 0),
 * dx = dy [x > 0] from src. */
static int eltwise_create(dn_kernel *k)
{
    const cnb_op_desc *d = &k->d;
    const dnnl_dims_t dims = {d->batch, d->src.c, d->src.h, d->src.w};
    const int sigmoid = d->op == CNB_OP_SIGMOID;
    const dnnl_alg_kind_t alg =
        sigmoid ? dnnl_eltwise_logistic_use_dst_for_bwd : dnnl_eltwise_relu;
    dnnl_memory_desc_t md, dst_md;
    dnnl_eltwise_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&md, 4, dims, src_tag(d)));
    TRY(dst_host_md(k, &dst_md, dims, src_tag(d)));
    TRY(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, alg, &md, 0.0f, 0.0f));
    TRY(pd_make(k, &fpd, &fd, NULL));
    TRY(dnnl_eltwise_backward_desc_init(&bd, alg, &md, &md, 0.0f, 0.0f));
    TRY(pd_make(k, &bpd, &bd, fpd));
    rc = data_build(k, fpd, bpd, &md, &dst_md, sigmoid ? DNNL_ARG_DST : DNNL_ARG_SRC);
done:
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    return rc;
}

/* b_c = a_c (k + alpha sum_{|c'-c| <= size/2} a_c'^2)^-beta: oneDNN divides its alpha by
 * the size, so it gets alpha * size. On nChw16c, where oneDNN has JIT kernels for both
 * directions (on NCHW its backward is the reference loop, 35x slower for AlexNet). */
static int lrn_create(dn_kernel *k)
{
    const cnb_op_desc *d = &k->d;
    const dnnl_dims_t dims = {d->batch, d->src.c, d->src.h, d->src.w};
    const int size = d->u.lrn.size;
    const float alpha = d->u.lrn.alpha * (float)size, beta = d->u.lrn.beta, kk = d->u.lrn.k;
    dnnl_memory_desc_t md, bmd, dst_md;
    dnnl_lrn_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&md, 4, dims, src_tag(d)));
    TRY(plain_md(&bmd, 4, dims, dnnl_nChw16c));
    TRY(dst_host_md(k, &dst_md, dims, dnnl_nChw16c));
    TRY(dnnl_lrn_forward_desc_init(&fd, dnnl_forward_training, dnnl_lrn_across_channels, &bmd,
                                   size, alpha, beta, kk));
    TRY(pd_make(k, &fpd, &fd, NULL));
    TRY(dnnl_lrn_backward_desc_init(&bd, dnnl_lrn_across_channels, &bmd, &bmd, size, alpha,
                                    beta, kk));
    TRY(pd_make(k, &bpd, &bd, fpd));
    rc = data_build(k, fpd, bpd, &md, &dst_md, DNNL_ARG_SRC);
done:
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Softmax with cross-entropy over the D = C*H*W values of each sample:
 *     p = softmax(x)                 (a primitive, into dst)
 *     loss = mean over real labels of -log p_label = -logsoftmax(x)_label
 *     dx = (p - onehot(label)) / n_real, 0 for rows with a negative label (plain loop) */

static int softmax_xent_forward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    const int N = k->d.batch, D = (int)cnb_shape_size(k->d.src);
    const int32_t *labels = a->labels; /* (N), or NULL when no loss is asked */
    int n_real = 0;
    if (a->loss) {
        int err = cnb_labels_check(k->st->host, WHO, &k->d, labels, &n_real);
        if (err)
            return err;
    }
    begin(k);
    int rc = bind(k, &k->src, a->src);  /* (N,D) logits        */
    if (!rc)
        rc = bind(k, &k->dst, a->dst);  /* (N,D) probabilities */
    if (!rc)
        rc = a->loss ? RUN(k, &k->fwd, &k->fwd_log) : RUN(k, &k->fwd);
    if (rc || !a->loss)
        return rc;
    double total = 0.0;
    for (int n = 0; n < N; n++)
        if (labels[n] >= 0)
            total -= k->logp[(size_t)n * D + labels[n]];
    *a->loss = n_real ? (float)(total / n_real) : 0.0f;
    return CNB_OK;
}

static int softmax_xent_backward(cnb_kernel *self, const cnb_args *a)
{
    dn_kernel *k = (dn_kernel *)self;
    const int N = k->d.batch, D = (int)cnb_shape_size(k->d.src);
    float *dinp = a->diff_src;         /* (N,D) */
    const float *prob = a->dst;        /* (N,D) */
    const int32_t *labels = a->labels; /* (N)   */
    int n_real = 0;
    int err = cnb_labels_check(k->st->host, WHO, &k->d, labels, &n_real);
    if (err || !dinp)
        return err;
    for (int n = 0; n < N; n++) {
        float *dx = dinp + (size_t)n * D;
        const float *p = prob + (size_t)n * D;
        if (labels[n] < 0) {
            memset(dx, 0, sizeof(float) * D);
            continue;
        }
        for (int i = 0; i < D; i++)
            dx[i] = (p[i] - (i == labels[n] ? 1.0f : 0.0f)) / (float)n_real;
    }
    return CNB_OK;
}

static int softmax_create(dn_kernel *k)
{
    const dnnl_dims_t dims = {k->d.batch, (dnnl_dim_t)cnb_shape_size(k->d.src)};
    dnnl_memory_desc_t md;
    dnnl_softmax_v2_desc_t fd, ld;
    dnnl_primitive_desc_t fpd = NULL, lpd = NULL;
    dnnl_memory_t logp = NULL;
    void *handle = NULL;
    int rc = CNB_OK;

    TRY(plain_md(&md, 2, dims, dnnl_nc));
    TRY(dnnl_softmax_v2_forward_desc_init(&fd, dnnl_forward_inference, dnnl_softmax_accurate,
                                          &md, &md, 1));
    TRY(pd_make(k, &fpd, &fd, NULL));
    TRY(dnnl_softmax_v2_forward_desc_init(&ld, dnnl_forward_inference, dnnl_softmax_log, &md,
                                          &md, 1));
    TRY(pd_make(k, &lpd, &ld, NULL));
    TRY(tensor_make(k, &k->src, &md, pd_md(fpd, dnnl_query_src_md), 0, "src"));
    TRY(tensor_make(k, &k->dst, &md, pd_md(fpd, dnnl_query_dst_md), 1, "dst"));
    TRY(mem_new(k, &logp, &md, DNNL_MEMORY_ALLOCATE));
    TRY(dnnl_memory_get_data_handle(logp, &handle));
    k->logp = handle;
    TRY(prim_make(k, &k->fwd, fpd));
    prim_arg(&k->fwd, DNNL_ARG_SRC, k->src.mem);
    prim_arg(&k->fwd, DNNL_ARG_DST, k->dst.mem);
    TRY(prim_make(k, &k->fwd_log, lpd));
    prim_arg(&k->fwd_log, DNNL_ARG_SRC, k->src.mem);
    prim_arg(&k->fwd_log, DNNL_ARG_DST, logp);
done:
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(lpd);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Kernel creation: validate the descriptor (cnnbench/op_check.h), build the primitives. */

static void prim_destroy(prim *p)
{
    if (p->p)
        dnnl_primitive_destroy(p->p);
    p->p = NULL;
}

static void onednn_kernel_destroy(cnb_kernel *self)
{
    dn_kernel *k = (dn_kernel *)self;
    if (!k)
        return;
    tensor *ts[] = {&k->src, &k->weights, &k->dst, &k->diff_dst, &k->diff_dst_w,
                    &k->src_w, &k->weights_d, &k->diff_src, &k->diff_weights};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        prim_destroy(&ts[i]->reorder);
    prim_destroy(&k->fwd);
    prim_destroy(&k->fwd_log);
    prim_destroy(&k->bwd_data);
    prim_destroy(&k->bwd_weights);
    for (int i = 0; i < k->n_mems; i++)
        dnnl_memory_destroy(k->mems[i]);
    onednn_state *st = k->st;
    st->host->free(k->zeros);
    st->host->free(k->sink);
    st->host->free(k);
    state_release(st);
}

static int onednn_kernel_create(void *state, const cnb_op_desc *desc, cnb_kernel **out)
{
    onednn_state *st = state;
    *out = NULL;
    if (!st)
        return CNB_EINVAL; /* init() was not called: nowhere to log to */
    char why[512];
    int rc = cnb_op_desc_check(desc, why, sizeof why);
    if (rc)
        return CNB_FAIL(st->host, WHO, rc, "%s", why);
    if (desc->op == CNB_OP_LRN && desc->u.lrn.size % 2 == 0) {
        st->host->log(CNB_LOG_INFO, WHO, "lrn: size %d is even; oneDNN's window would span "
                      "%d channels and naive's %d, so the naive backend runs it",
                      desc->u.lrn.size, desc->u.lrn.size, desc->u.lrn.size + 1);
        return CNB_ENOTSUP;
    }

    /* the inner product and softmax read NCHW only (the fc weights are (K, C*H*W)) */
    if (src_tag(desc) == dnnl_format_tag_undef ||
        (desc->src_layout != CNB_LAYOUT_NCHW &&
         (desc->op == CNB_OP_INNER_PRODUCT || desc->op == CNB_OP_SOFTMAX_XENT)))
        return CNB_ENOTSUP;

    dn_kernel *k = st->host->alloc(sizeof *k);
    if (!k)
        return CNB_ENOMEM;
    k->st = st;
    st->refs++;
    k->d = *desc;
    k->held = sizeof *k;
    k->out = (cnb_layout_info){CNB_LAYOUT_NCHW, (size_t)desc->batch *
                               cnb_shape_size(desc->dst) * sizeof(float), "nchw"};
    k->base = CNB_KERNEL_INIT(.destroy = onednn_kernel_destroy); /* entries by op, below */
    omp_set_num_threads(st->threads);
    switch (desc->op) {
    case CNB_OP_CONV:
    case CNB_OP_INNER_PRODUCT:
        k->base.forward = wb_forward;
        k->base.backward = wb_backward;
        rc = desc->op == CNB_OP_CONV ? conv_create(k) : inner_product_create(k);
        break;
    case CNB_OP_POOL_MAX:
    case CNB_OP_POOL_AVG:
        k->base.forward = data_forward;
        k->base.backward = data_backward;
        rc = pool_create(k);
        break;
    case CNB_OP_SIGMOID:
    case CNB_OP_RELU:
        k->base.forward = data_forward;
        k->base.backward = data_backward;
        rc = eltwise_create(k);
        break;
    case CNB_OP_LRN:
        k->base.forward = data_forward;
        k->base.backward = data_backward;
        rc = lrn_create(k);
        break;
    case CNB_OP_SOFTMAX_XENT:
        k->base.forward = softmax_xent_forward;
        k->base.backward = softmax_xent_backward;
        rc = softmax_create(k);
        break;
    default:
        rc = CNB_ENOTSUP;
    }
    if (rc) {
        onednn_kernel_destroy(&k->base);
        return rc;
    }
    *out = &k->base;
    return CNB_OK;
}

/* ------------------------------------------------------------------------------------ */
/* The plugin: one backend descriptor. */

static int onednn_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    *state = NULL;
    onednn_state *st = host->alloc(sizeof *st);
    if (!st)
        return CNB_ENOMEM;
    st->host = host;
    st->refs = 1;
    st->threads = cfg && cfg->threads > 0 ? cfg->threads : 1;
    omp_set_num_threads(st->threads);
    dnnl_status_t s = dnnl_engine_create(&st->engine, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&st->stream, st->engine, dnnl_stream_default_flags);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&st->attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(st->attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        host->log(CNB_LOG_ERROR, WHO, "cannot set up the oneDNN CPU engine: %s",
                  dnnl_status2str(s));
        state_release(st);
        return CNB_EINVAL;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(st->info, sizeof st->info, "oneDNN %d.%d.%d (%s), %s, ISA %s, %d thread%s",
             v->major, v->minor, v->patch, v->hash ? v->hash : "no hash",
             dnnl_runtime2str(v->cpu_runtime), dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()),
             st->threads, st->threads == 1 ? "" : "s");
    *state = st;
    return CNB_OK;
}

static void onednn_fini(void *state) { state_release(state); }

static const char *onednn_info(void *state)
{
    return state ? ((onednn_state *)state)->info : "oneDNN (not started)";
}

/* The primitives alone, without the reorders between the host's layouts and theirs; a
 * pass without reorders has nothing to split out. */
static int onednn_library_pass(cnb_kernel *kernel, const cnb_args *a, int backward)
{
    dn_kernel *k = (dn_kernel *)kernel;
    const tensor *fwd[] = {&k->src, &k->weights, &k->dst};
    const tensor *bwd[] = {&k->diff_dst, &k->weights_d, &k->diff_src,
                           &k->src_w, &k->diff_dst_w, &k->diff_weights};
    int reorders = 0;
    for (int i = 0; i < (backward ? 6 : 3); i++)
        reorders += prim_runs(&(backward ? bwd[i] : fwd[i])->reorder);
    if (!reorders || k->d.op == CNB_OP_SOFTMAX_XENT)
        return CNB_ENOTSUP;
    k->library_only = 1;
    int rc = backward ? kernel->backward(kernel, a) : kernel->forward(kernel, a);
    k->library_only = 0;
    return rc;
}

static const char *onednn_algorithm(const cnb_kernel *kernel)
{
    return ((const dn_kernel *)kernel)->algorithm;
}

static size_t onednn_kernel_bytes(const cnb_kernel *kernel)
{
    return ((const dn_kernel *)kernel)->held;
}

/* The scratchpad its kernels share: the largest any of them asked for. */
static size_t onednn_state_bytes(void *state) { return ((onednn_state *)state)->scratch_bytes; }

static int onednn_layout_of(const cnb_kernel *kernel, cnb_layout_info *out)
{
    *out = ((const dn_kernel *)kernel)->out;
    return CNB_OK;
}

CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC("onednn", "1.2.0",
                     "oneDNN primitives (JIT), its blocked layouts passed between layers, "
                     "OpenMP",
                     .ops = CNB_OPS_ALL,
                     .init = onednn_init,
                     .fini = onednn_fini,
                     .kernel_create = onednn_kernel_create,
                     .info = onednn_info,
                     .layout_of = onednn_layout_of,
                     .library_pass = onednn_library_pass,
                     .kernel_bytes = onednn_kernel_bytes,
                     .state_bytes = onednn_state_bytes,
                     .algorithm = onednn_algorithm));
