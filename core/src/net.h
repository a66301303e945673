/*
 * net.h - a network built from a model file out of layer plugins, run on a backend.
 *
 * The net owns every buffer: parameters, their gradients and momentum, and one output
 * and one gradient buffer per layer for a fixed batch. Layer plugins only compute.
 * Model file: [net] (channels, height, width, classes), optional [vars] (defaults for
 * ${var}), then one section per layer in order, each with `type = <layer plugin>`.
 */
#ifndef CNB_NET_H
#define CNB_NET_H

#include <stdint.h>
#include <stdio.h>

#include "cnnbench/layer.h"
#include "conf.h"
#include "registry.h"
#include "rng.h"

typedef struct cnb_net cnb_net;
typedef struct cnb_sgd_team cnb_sgd_team;

#define CNB_MAX_CHAIN 8 /* backends one run may combine */

struct cnb_layer_ctx {
    cnb_net *net;
    int index;
    const cnb_section *sec;
    struct cnb_rng rng;      /* this layer's stream                    */
    const char *ran_on;      /* backend that created its kernels       */
    int mixed;               /* kernels from more than one backend     */
    /* Native layouts (cnnbench/backend.h), set around the layer's bind; its input is in
     * the previous layer's out */
    int want_native;         /* ask its kernel to choose its dst layout    */
    int refused;             /* its kernel could not read its input's layout */
    cnb_layout_info out;     /* the layout its y and dy are in             */
    cnb_kernel *kernel;      /* its latest kernel; NULL in a fused run     */
    int n_kernels;           /* kernels its latest bind made, or described */
    cnb_op_desc desc;        /* and that kernel's descriptor               */
    int chain;               /* the chain index of the backend that made it */
    int describe;            /* bind only describes its kernel (fused runs) */
};

typedef struct cnb_net_layer {
    const char *name;            /* section name, "conv1"                 */
    const cnb_layer_desc *desc;  /* its plugin                            */
    cnb_layer *layer;
    cnb_layer_ctx ctx;
    int slot;                    /* its place among the model's layers, those
                                    left out counted (CNB_LAYER_IDENTITY):
                                    its random stream's number            */
    cnb_shape in, out;
    const char *init;            /* "xavier" or "he" for learnable layers */
    float *w[CNB_MAX_PARAMS], *dw[CNB_MAX_PARAMS], *vel[CNB_MAX_PARAMS];
    float *y, *dy;               /* (batch, out); NULL inside a fused run */
    int view;                    /* y and dy are the layer before's, and
                                    it runs no pass (CNB_LAYER_VIEW)      */
    size_t grad_begin, grad_end; /* its dw's floats in net->grad          */
    /* A fused run (cnnbench/backend.h): layers fuse_first .. fuse_first + fuse_n - 1 run
     * as one kernel, which the first holds; no layer of the run has a kernel of its own
     * (ctx.kernel NULL), and one but the last has no y and dy (the kernel keeps what it
     * needs of them). */
    int fuse_first;              /* its run's first layer                 */
    int fuse_n;                  /* the first: the run's layers; else 0   */
    cnb_kernel *fuse_kernel;     /* the first: the run's kernel           */
    int fuse_chain;              /* the first: its backend's chain index  */
    const char *fused_on;        /* the backend that made it; NULL: the
                                    layer is in no fused run              */
} cnb_net_layer;

struct cnb_net {
    const cnb_conf *model;
    const cnb_registry *reg;
    cnb_shape input;
    int classes;
    int n;
    cnb_net_layer *layers;
    int batch;                       /* 0 until bound                     */
    float *x;                        /* (batch, input)                    */
    int32_t *labels;                 /* (batch)                           */
    const cnb_backend_desc *backend; /* the run's backend: chain[0]       */
    void *backend_state;
    /* Where each kernel is made: the first backend of the chain that creates it. The
     * chain is the run's backend spec ("direct+onednn"), then naive. */
    const cnb_backend_desc *chain[CNB_MAX_CHAIN];
    void *chain_state[CNB_MAX_CHAIN];
    int n_chain;
    int threads;
    int native_layouts;              /* 0 for a spec with ":nchw"         */
    int fuse;                        /* 0 for a spec with ":nofuse"       */
    /* Every layer's dw in one buffer, in layer order, each tensor starting on 64 bytes
     * (the gap zero): data-parallel training sums it over the ranks in a few large
     * contiguous pieces instead of one message per tensor. */
    float *grad;
    size_t grad_floats;
    cnb_sgd_team *sgd;               /* cnb_net_sgd's helpers; NULL: none yet */
};

/* Build layers from a (substituted) model: shapes, parameter specs, FLOPs. Errors are
 * reported with file:line; returns CNB_EINVAL then. */
int cnb_net_build(cnb_net *net, const cnb_registry *reg, const cnb_conf *model);
/* Create layer L of `net` (its ctx.net and index set) from model section s on input `in`:
 * the plugin named by `type`, its keys checked, its required entries present, its output
 * shape not empty. Errors are reported with file:line; returns CNB_EINVAL then. */
int cnb_net_layer_create(cnb_net *net, cnb_net_layer *L, const cnb_section *s, cnb_shape in);
/* A model's variables as its layers see them: its [vars] in their order, each replaced by
 * an override of the same name, then the other overrides. `out` starts empty (the caller
 * frees it); 0, or an error. */
int cnb_model_vars(const cnb_conf *model, const cnb_vars *overrides, cnb_vars *out);
/* Load a model file, apply its [vars] under `overrides`, and build. */
int cnb_net_load(cnb_net *net, cnb_conf *model, const cnb_registry *reg, const char *path,
                 const cnb_vars *overrides);
void cnb_net_free(cnb_net *net);

size_t cnb_net_param_count(const cnb_net *net);
double cnb_net_flops(const cnb_net *net); /* forward FLOPs per sample */
void cnb_net_print_summary(const cnb_net *net, FILE *out);

/* Allocate parameters and initialise them (Xavier, or He before a ReLU-like layer) from
 * the stream (seed, CNB_STREAM_INIT). Layer streams derive from the same seed. */
int cnb_net_init_params(cnb_net *net, uint64_t seed);

/* Choose the backend and batch, once per network: creates every kernel and activation
 * buffer. `backend` names one backend, or several joined by '+' ("direct+onednn"): each
 * layer's kernels come from the first that provides them, then from naive. Then each
 * run of layers that a backend of the chain fuses gets its kernel (cnnbench/backend.h,
 * "Fused runs"), unless the spec has ":nofuse". */
int cnb_net_bind(cnb_net *net, const char *backend, int threads, int batch);
/* What a bound network holds in memory, in bytes. */
typedef struct cnb_net_memory {
    size_t activations; /* the host's: the batch and its labels, every layer's output and
                           its gradient, as allocated (a native layout's size)            */
    size_t params;      /* the host's: the weights, their gradients and momentum          */
    size_t kernels;     /* what the kernels hold beyond those (kernel_bytes): every
                           layer's own and every fused run's, and what their backends'
                           states hold for them (state_bytes)                           */
    int kernels_known;  /* 0: some kernel cannot say (cnb_net_layer_kernel_bytes), and
                           kernels counts only the others                               */
} cnb_net_memory;
cnb_net_memory cnb_net_memory_of(const cnb_net *net);
/* The bytes layer i's kernels hold (cnb_backend_desc.kernel_bytes), into *bytes: its own
 * kernel's (which a fused run leaves made) and, on a run's first layer, the run's; 0 for
 * a layer with no kernel. 1 when that is all it holds, 0 when a kernel's backend cannot
 * say (no kernel_bytes: backend ABI 2.2 or before) or the layer made more than one
 * kernel (the host keeps only the latest): *bytes then counts what is known. */
int cnb_net_layer_kernel_bytes(const cnb_net *net, int i, size_t *bytes);
/* Layer i's fused run as its layers' names, "conv1+act1+pool1", into buf; "" when layer i
 * is in none. Returns buf. */
const char *cnb_net_run_name(const cnb_net *net, int i, char *buf, size_t len);
/* Every fused run of the net, "conv1+act1+pool1 conv2+act2+pool2", into buf ("" for
 * none); their number. */
int cnb_net_fused_runs(const cnb_net *net, char *buf, size_t len);
/* The algorithm layer i's kernel computes by where it does fewer multiply-adds than its
 * op's definition ("winograd", cnb_backend_desc.algorithm); on a fused run's first layer,
 * the run's kernel's. NULL: the definition, or its backend cannot say. */
const char *cnb_net_layer_algorithm(const cnb_net *net, int i);
/* Every backend of a spec ("direct+onednn") exists; otherwise an error naming it, `where`
 * first. */
int cnb_backend_spec_check(const cnb_registry *reg, const char *spec, const char *where);
/* The most threads the backends of a spec use: 0 when one of them uses as many as it is
 * given, else the largest of their max_threads (1: single-threaded). The naive fallback
 * at the end of every chain is not counted. Every backend of the spec must exist. */
int cnb_backend_spec_max_threads(const cnb_registry *reg, const char *spec);
/* Why a backend using `max` threads at most (0: any number) is not timed at `threads`,
 * into buf: "is single-threaded", "uses 4 threads at most"; NULL when it uses them. */
const char *cnb_backend_threads_unused(int max, int threads, char *buf, size_t len);
/* The length of a spec's backend names, without the suffixes after them, in any order:
 * ":nchw" keeps every tensor between layers NCHW (*native = 0), ":nofuse" runs every
 * layer on kernels of its own (*fuse = 0). */
int cnb_backend_spec_names(const char *spec, int *native, int *fuse);

/* net->x and net->labels hold the batch. Forward writes the mean loss; the last layer's
 * y holds the class probabilities. A fused run's kernel runs in place of its layers. */
int cnb_net_forward(cnb_net *net, int train, float *loss);
int cnb_net_backward(cnb_net *net);
/* The backward pass calling after(user, i) once layer i's gradients are complete (from
 * the last layer down; a fused run's layers one after the other once its kernel is done);
 * a non-zero return stops it with that code. */
typedef int (*cnb_backward_fn)(void *user, int layer);
int cnb_net_backward_each(cnb_net *net, cnb_backward_fn after, void *user);
/* Layer i's kernel's library calls alone (cnb_backend_desc.library_pass), forward or
 * backward, on the net's buffers, after a forward and backward have filled them: 0,
 * CNB_ENOTSUP where the layer or its backend has no such pass or the layer is in a fused
 * run, or the backend's error. */
int cnb_net_library_pass(cnb_net *net, int i, int backward);
/* Forward FLOPs per sample of layer i as its kernel does them: for a convolution, only
 * the taps that fall inside the input (2 K C times the in-bounds taps of every output
 * pixel; the zero padding's taps are no work, and oneDNN and benchdnn count them so); for
 * every other layer its plugin's count. */
double cnb_net_layer_flops(const cnb_net *net, int i);
/* The same for one sample of a convolution's descriptor. */
double cnb_conv_flops(const cnb_op_desc *d);
/* Tell every backend of the chain that others run next (cnb_backend_desc.park). */
void cnb_net_park(cnb_net *net);
/* The same, timing each layer into seconds[layer] (benchmarks' per-layer pass); a fused
 * run's time goes to its first layer, and its other layers get 0. */
int cnb_net_forward_timed(cnb_net *net, int train, float *loss, double *seconds);
int cnb_net_backward_timed(cnb_net *net, double *seconds);
/* SGD with momentum and L2 weight decay (biases exempt): v = m v + g + wd w; w -= lr v,
 * by cnb_sgd_update on net->sgd, which the first update with a tensor of CNB_SGD_SPLIT
 * floats or more starts at the net's thread count (tried again at the next update if its
 * threads could not be had) and cnb_net_free stops. */
void cnb_net_sgd(cnb_net *net, float lr, float momentum, float weight_decay);
/* One tensor of an update. */
typedef struct cnb_sgd_tensor {
    float *w, *v;      /* weights and momentum, updated in place */
    const float *g;    /* the gradient                           */
    size_t n;          /* floats of each                         */
    float wd;          /* weight decay (0 for a bias)            */
} cnb_sgd_tensor;
/* threads - 1 helper threads (at most CNB_SGD_THREADS_MAX - 1) that share updates with
 * their caller, asleep between them; NULL when threads < 2 or they could not all be had. */
cnb_sgd_team *cnb_sgd_team_start(int threads);
void cnb_sgd_team_stop(cnb_sgd_team *team); /* ends and frees them; NULL does nothing */
/* Update `count` tensors, vectorised for the CPU (the same bits on every one). With a
 * team (one caller at a time), one wake for them all: a tensor of at least CNB_SGD_SPLIT
 * floats goes in contiguous parts, one to each thread, and each smaller one whole to one
 * thread (AlexNet's fc6: 38M floats, a pass over 0.6 GB); without one (NULL), the caller
 * does all. The update is elementwise, so every split gives the same bits. */
#define CNB_SGD_SPLIT (1u << 20)
#define CNB_SGD_THREADS_MAX 64
void cnb_sgd_update(cnb_sgd_team *team, const cnb_sgd_tensor *t, int count, float lr,
                    float momentum);
const float *cnb_net_probs(const cnb_net *net);

/* Weights file (see README "Weights format"); written atomically. */
int cnb_net_save_weights(const cnb_net *net, const char *path);
int cnb_net_load_weights(cnb_net *net, const char *path);

/* The services table handed to every plugin (a layer's create, a backend's init): the
 * core's log, aligned allocation and seeded streams, and the per-layer services (a
 * layer's keys, errors at its line, its kernels, its stream), which need the net. */
const cnb_host *cnb_host_services(void);

#endif
