/*
 * cnnbench/layer.h - layer-variant plugins: what a layer computes.
 *
 * A layer type reads its parameters from its model-file section, infers its output shape,
 * declares the learnable tensors it needs (the host owns, initialises, updates and saves
 * them), and computes forward and backward through kernels the host creates for it on the
 * run's backend. A layer no backend knows (dropout, flatten) computes in plain C itself.
 *
 * Life cycle: create (parse, infer shapes; no kernels yet) -> bind (batch known: create
 * kernels) -> forward/backward many times (no allocation) -> destroy.
 */
#ifndef CNNBENCH_LAYER_H
#define CNNBENCH_LAYER_H

#include "cnnbench/backend.h"
#include "cnnbench/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2.0: cnb_layer starts with its struct_size (CNB_LAYER_INIT fills it), and its entries
 * come before params[CNB_MAX_PARAMS], so that the array can grow without moving them. */
/* 2.1: CNB_LAYER_STANDS_IN. 2.2: CNB_LAYER_IDENTITY. 2.3: CNB_LAYER_VIEW. */
#define CNB_LAYER_ABI_MAJOR 2
#define CNB_LAYER_ABI_MINOR 3

/* The length of cnb_layer's params[], and so part of its size: changing it is a new ABI. */
#define CNB_MAX_PARAMS 4

/* A learnable tensor the layer asks the host to own. */
typedef struct cnb_param_spec {
    const char *name; /* "weights", "bias"                                      */
    size_t count;     /* floats                                                 */
    int fan_in;       /* for Xavier/He initialisation                           */
    int fan_out;
    int is_bias;      /* initialised to zero, no weight decay                   */
} cnb_param_spec;

/* Buffers of one forward or backward call; N is the batch given to bind(). */
typedef struct cnb_io {
    int train;                  /* 1 while training (dropout active)               */
    const float *x;             /* (N, in)                                         */
    float *y;                   /* (N, out)                                        */
    const float *dy;            /* (N, out) backward input                         */
    float *dx;                  /* (N, in)  backward output; NULL for the first layer */
    float *const *w;            /* [n_params] host-owned parameters                */
    float *const *dw;           /* [n_params] their gradients (overwritten)        */
    const int32_t *labels;      /* loss layers: (N), negative = padding            */
    float *loss;                /* loss layers: forward writes the mean loss       */
} cnb_io;

/*
 * A layer instance, made by create(). Plugins embed it as the first member of their own
 * struct and fill it with CNB_LAYER_INIT, which sets struct_size: the host refuses a
 * layer whose size is not the one its ABI defines (a plugin built against other headers,
 * or one that set the fields by hand), naming the plugin, before it reads anything else.
 */
typedef struct cnb_layer cnb_layer;
struct cnb_layer {
    uint32_t struct_size; /* sizeof(cnb_layer) of the headers built against */

    /* All four are required: the host refuses a layer without one, naming it. bind is
     * where the layer learns N (cnb_io carries none) and creates its kernels; the host
     * may bind a CNB_LAYER_KERNEL_IO layer again, and each bind destroys the kernel of
     * the one before. */
    int (*bind)(cnb_layer *self, int batch);
    int (*forward)(cnb_layer *self, const cnb_io *io);
    int (*backward)(cnb_layer *self, const cnb_io *io);
    void (*destroy)(cnb_layer *self);

    /* Filled by create(). */
    cnb_shape out;                          /* per-sample output shape            */
    double flops;                           /* forward FLOPs per sample (FMA = 2) */
    int n_params;                           /* 0 .. CNB_MAX_PARAMS                */
    cnb_param_spec params[CNB_MAX_PARAMS];  /* last: its length is a macro        */
};

/* A cnb_layer with its size filled in and the fields given as designated initializers;
 * a field left out is zero:
 *   l->base = CNB_LAYER_INIT(.bind = my_bind, .forward = my_forward,
 *                            .backward = my_backward, .destroy = my_destroy, .out = in); */
#define CNB_LAYER_INIT(...) ((cnb_layer){.struct_size = sizeof(cnb_layer), __VA_ARGS__})

enum {
    CNB_LAYER_LOSS = 1u << 0,       /* the last layer: consumes labels, writes loss   */
    CNB_LAYER_ACTIVATION = 1u << 1, /* an element-wise non-linearity                  */
    CNB_LAYER_INIT_HE = 1u << 2,    /* ReLU-like: the learnable layer before it gets
                                       He initialisation instead of Xavier           */
    CNB_LAYER_KERNEL_IO = 1u << 3,  /* x, y, dy and dx go untouched to the src, dst,
                                       diff_dst and diff_src of its one kernel, and
                                       params 0 and 1 to its weights and bias
                                       (cnb_layer_kernel_args, below): the host may
                                       pass them in a backend's own layout
                                       (cnnbench/backend.h, "Native layouts") and time
                                       the kernel's library calls alone             */
    CNB_LAYER_STANDS_IN = 1u << 4,  /* stands in for a layer an ablation switches off
                                       (none): the host accepts that layer's keys in
                                       its section, whatever they are, and ignores
                                       them, so one model file serves both arms (2.1) */
    CNB_LAYER_IDENTITY = 1u << 5,   /* its output is its input, of the same shape, and
                                       it learns nothing (none): the host leaves it
                                       out of the network it runs, so that a slot an
                                       ablation switched off costs no pass over the
                                       batch; the layers after it keep their random
                                       streams (2.2) */
    CNB_LAYER_VIEW = 1u << 6,       /* its output is its input, value for value in the
                                       same order, under another shape, and it learns
                                       nothing (flatten): where the layer before it
                                       gives NCHW, the host hands it that layer's y and
                                       dy as its own and runs neither of its passes, so
                                       that a reshape copies nothing (2.3) */
};

typedef struct cnb_layer_desc {
    cnb_plugin_header hdr;     /* kind = CNB_PLUGIN_LAYER                           */
    uint32_t flags;            /* CNB_LAYER_*                                       */
    const char *const *keys;   /* accepted section keys besides `type`, NULL-ended; */
                               /* the host rejects any other key                    */
    /* Read parameters through host->param_*, infer out, fill the cnb_layer. `ctx`
     * stays valid until destroy (kernel_create, layer_rng, layer_error take it). */
    int (*create)(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in, cnb_layer **out);
} cnb_layer_desc;

/*
 * A layer type's descriptor: its name (what a model file's `type` names), version and
 * one-line description, then the fields above as designated initializers. The header
 * (ABI, size, kind) comes from the headers the plugin is compiled against. One file holds
 * one or more, in entry order:
 *
 *   CNB_LAYER_DEFINE(
 *       CNB_LAYER_DESC("pool.avg", "1.0.0", "average pooling", .create = avg_create),
 *       CNB_LAYER_DESC("pool.max", "1.0.0", "max pooling", .create = max_create));
 *
 * CNB_LAYER_DEFINE writes the descriptor table and the exported cnb_plugin_entry(); use
 * it once per file.
 */
#define CNB_LAYER_DESC(name, version, description, ...)                                   \
    {.hdr = CNB_PLUGIN_HEADER(CNB_PLUGIN_LAYER, CNB_LAYER_ABI_MAJOR, CNB_LAYER_ABI_MINOR,  \
                              sizeof(cnb_layer_desc), name, version, description),        \
     __VA_ARGS__}
#define CNB_LAYER_DEFINE(...) CNB_PLUGIN_DEFINE_(cnb_layer_desc, __VA_ARGS__)

/* The kernel arguments of a CNB_LAYER_KERNEL_IO layer: x, y, dy and dx to src, dst,
 * diff_dst and diff_src, params 0 and 1 to weights and bias and their gradients, the
 * backward ones only when `backward` (and the loss only when not). */
static inline cnb_args cnb_layer_kernel_args(const cnb_io *io, int n_params, int backward)
{
    cnb_args a = {
        .src = io->x,
        .dst = io->y,
        .weights = n_params > 0 ? io->w[0] : NULL,
        .bias = n_params > 1 ? io->w[1] : NULL,
        .labels = io->labels,
    };
    if (backward) {
        a.diff_dst = io->dy;
        a.diff_src = io->dx;
        a.diff_weights = n_params > 0 ? io->dw[0] : NULL;
        a.diff_bias = n_params > 1 ? io->dw[1] : NULL;
    } else {
        a.loss = io->loss;
    }
    return a;
}

#ifdef __cplusplus
}
#endif
#endif /* CNNBENCH_LAYER_H */
