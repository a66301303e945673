#!/usr/bin/env bash
# Scaffold a cnnbench plugin in its own folder, outside the cnnbench tree:
#
#   new-plugin.sh [--layer] NAME [DIR]     (installed as cnnbench-new-plugin)
#
# writes DIR (default ./NAME) with NAME.c and a meson.build that builds it against the
# installed SDK (pkg-config cnnbench-plugin). The backend template implements one op,
# ReLU, forward and backward, correctly and plainly: it passes `cnnbench check` as
# generated, and is the place to start writing a faster kernel. --layer writes a layer
# plugin instead (a `scale` layer, y = factor * x) that passes the gradient check.
# docs/plugins.md walks through the next steps.
set -euo pipefail

kind=backend
if [ "${1:-}" = "--layer" ]; then
  kind=layer
  shift
fi
if [ $# -lt 1 ] || [ $# -gt 2 ] || [[ "$1" == -* ]]; then
  echo "usage: $(basename "$0") [--layer] NAME [DIR]" >&2
  echo "  NAME: the plugin's name, made of a-z 0-9 . _ - (for example myrelu)" >&2
  exit 2
fi
name=$1
dir=${2:-$name}
if ! [[ "$name" =~ ^[a-z0-9._-]+$ ]]; then
  echo "new-plugin: name '$name' may hold only a-z, 0-9, '.', '_' and '-'" >&2
  exit 2
fi
if [ -e "$dir" ]; then
  echo "new-plugin: $dir already exists; choose another folder" >&2
  exit 2
fi
ident=${name//[^a-z0-9]/_}
mkdir -p "$dir"

cat > "$dir/meson.build" <<EOF
project('$name', 'c', default_options : ['c_std=c11', 'buildtype=release'])
cnb = dependency('cnnbench-plugin')
shared_module('$name', '$ident.c', dependencies : cnb, name_prefix : '',
  gnu_symbol_visibility : 'hidden', install : true,
  install_dir : cnb.get_variable(pkgconfig : 'plugindir'))
EOF

if [ "$kind" = backend ]; then
cat > "$dir/$ident.c" <<EOF
/*
 * $ident.c - the cnnbench backend plugin "$name".
 *
 * A partial backend: it claims only ReLU (see \`ops\` below); every other op of a
 * network runs on the naive backend, and the timing tables say which backend ran each
 * layer. To add a kernel: set its bit in \`ops\`, accept its descriptor in
 * kernel_create, and write its forward and backward with exactly the semantics of
 * cnnbench/backend.h (the naive backend is the reference \`cnnbench check\` compares
 * against, output by output, with guard bands around every buffer).
 */
#include <cnnbench/backend.h>
#include <cnnbench/op_check.h>

typedef struct ${ident}_state {
    const cnb_host *host;
    int threads;
} ${ident}_state;

typedef struct ${ident}_kernel {
    cnb_kernel base; /* first: the host holds a cnb_kernel pointer; CNB_KERNEL_INIT */
    ${ident}_state *st;
    size_t n;        /* elements per call: batch * C * H * W */
} ${ident}_kernel;

static int relu_forward(cnb_kernel *self, const cnb_args *a)
{
    const ${ident}_kernel *k = (const ${ident}_kernel *)self;
    for (size_t i = 0; i < k->n; i++)
        a->dst[i] = a->src[i] > 0.0f ? a->src[i] : 0.0f;
    return CNB_OK;
}

/* Overwrites diff_src (never accumulates); NULL means the caller does not need it. */
static int relu_backward(cnb_kernel *self, const cnb_args *a)
{
    const ${ident}_kernel *k = (const ${ident}_kernel *)self;
    if (!a->diff_src)
        return CNB_OK;
    for (size_t i = 0; i < k->n; i++)
        a->diff_src[i] = a->src[i] > 0.0f ? a->diff_dst[i] : 0.0f;
    return CNB_OK;
}

static void kernel_destroy(cnb_kernel *self)
{
    ${ident}_kernel *k = (${ident}_kernel *)self;
    k->st->host->free(k);
}

static int backend_init(const cnb_host *host, const cnb_backend_config *cfg, void **state)
{
    ${ident}_state *st = host->alloc(sizeof *st);
    if (!st)
        return CNB_ENOMEM;
    st->host = host;
    st->threads = cfg->threads;
    *state = st;
    return CNB_OK;
}

static void backend_fini(void *state)
{
    ${ident}_state *st = state;
    st->host->free(st);
}

/* Called once per layer when a network is built: allocate, precompute, choose a path
 * here; forward and backward must not allocate. CNB_ENOTSUP hands the op to naive. */
static int kernel_create(void *state, const cnb_op_desc *d, cnb_kernel **out)
{
    ${ident}_state *st = state;
    char why[256];
    if (d->op != CNB_OP_RELU)
        return CNB_ENOTSUP;
    if (cnb_op_desc_check(d, why, sizeof why) != CNB_OK)
        return CNB_FAIL(st->host, "$name", CNB_EINVAL, "%s", why);
    ${ident}_kernel *k = st->host->alloc(sizeof *k);
    if (!k)
        return CNB_ENOMEM;
    k->base = CNB_KERNEL_INIT(.forward = relu_forward, .backward = relu_backward,
                              .destroy = kernel_destroy);
    k->st = st;
    k->n = (size_t)d->batch * cnb_shape_size(d->src);
    *out = &k->base;
    return CNB_OK;
}

/* What a kernel holds beyond the host's tensors, for the bench's memory table: itself
 * here; add its workspaces when it gets some. */
static size_t kernel_bytes(const cnb_kernel *self)
{
    (void)self;
    return sizeof(${ident}_kernel);
}

/* The descriptor and the exported entry the host looks for (cnnbench/backend.h). Its
 * loops run on one thread: max_threads = 1, so that the bench does not time it at more;
 * set 0 once its kernels share their work over st->threads. */
CNB_BACKEND_DEFINE(
    CNB_BACKEND_DESC("$name", "0.1.0", "$name: ReLU in plain C (a template)",
                     .ops = CNB_OP_BIT(CNB_OP_RELU),
                     .init = backend_init,
                     .fini = backend_fini,
                     .kernel_create = kernel_create,
                     .max_threads = 1,
                     .kernel_bytes = kernel_bytes));
EOF
else
cat > "$dir/$ident.c" <<EOF
/*
 * $ident.c - the cnnbench layer plugin "$name": y = factor * x, element-wise.
 *
 * Model-file section:   [scale1]
 *                       type = $name
 *                       factor = 2.0        (optional; default 2)
 *
 * A plain-C layer: no learnable tensors and no kernels. A layer that needs them
 * declares cnb_param_spec entries (the host allocates, initialises, updates and saves
 * them) and creates kernels with host->kernel_create (see plugins/layers/conv.c).
 */
#include <cnnbench/layer.h>

static const char *const keys[] = {"factor", NULL};

typedef struct ${ident}_layer {
    cnb_layer base; /* first: the host holds a cnb_layer pointer; CNB_LAYER_INIT */
    const cnb_host *host;
    float factor;
    size_t n;       /* elements per call, known at bind */
} ${ident}_layer;

static int layer_bind(cnb_layer *self, int batch)
{
    ${ident}_layer *l = (${ident}_layer *)self;
    l->n = (size_t)batch * cnb_shape_size(self->out);
    return CNB_OK;
}

static int layer_forward(cnb_layer *self, const cnb_io *io)
{
    const ${ident}_layer *l = (const ${ident}_layer *)self;
    for (size_t i = 0; i < l->n; i++)
        io->y[i] = l->factor * io->x[i];
    return CNB_OK;
}

static int layer_backward(cnb_layer *self, const cnb_io *io)
{
    const ${ident}_layer *l = (const ${ident}_layer *)self;
    if (!io->dx) /* the first layer of a network: nobody needs dx */
        return CNB_OK;
    for (size_t i = 0; i < l->n; i++)
        io->dx[i] = l->factor * io->dy[i];
    return CNB_OK;
}

static void layer_destroy(cnb_layer *self)
{
    ${ident}_layer *l = (${ident}_layer *)self;
    l->host->free(l);
}

static int layer_create(const cnb_host *host, cnb_layer_ctx *ctx, cnb_shape in,
                        cnb_layer **out)
{
    float factor;
    if (host->param_float(ctx, "factor", 0, 2.0f, &factor))
        return CNB_EINVAL; /* the host has said why, with file and line */
    ${ident}_layer *l = host->alloc(sizeof *l);
    if (!l)
        return CNB_ENOMEM;
    l->host = host;
    l->factor = factor;
    l->base = CNB_LAYER_INIT(.bind = layer_bind, .forward = layer_forward,
                             .backward = layer_backward, .destroy = layer_destroy,
                             .out = in, .flops = (double)cnb_shape_size(in));
    *out = &l->base;
    return CNB_OK;
}

/* The descriptor and the exported entry the host looks for (cnnbench/layer.h). */
CNB_LAYER_DEFINE(
    CNB_LAYER_DESC("$name", "0.1.0", "$name: y = factor * x (a template)",
                   .keys = keys,
                   .create = layer_create));
EOF
fi

cat <<EOF
new-plugin: wrote $dir/$ident.c and $dir/meson.build ($kind plugin "$name")
next:
  meson setup $dir/build $dir && meson compile -C $dir/build
  cnnbench check $dir/build/$name.so
EOF
