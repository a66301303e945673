/*
 * net.c - build, bind, run and train a network of layer plugins; see net.h.
 * Also the cnb_host table plugins are handed, with the per-layer services (parameters,
 * errors, kernels, RNG) behind it.
 */
#include "net.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "clock.h"
#include "cnnbench/op_check.h"
#include "errors.h"
#include "fsutil.h"
#include "log.h"

/* ---- per-layer host services ------------------------------------------------------- */

static const cnb_kv *layer_kv(cnb_layer_ctx *ctx, const char *key, int required)
{
    const cnb_kv *kv = cnb_section_get(ctx->sec, key);
    if (!kv && required)
        cnb_error("%s:%d: [%s] needs the key '%s'", ctx->net->model->path, ctx->sec->line,
                  ctx->sec->name, key);
    return kv;
}

static int layer_line(cnb_layer_ctx *ctx, const char *key)
{
    const cnb_kv *kv = key ? cnb_section_get(ctx->sec, key) : NULL;
    return kv ? kv->line : ctx->sec->line;
}

/* " (${act} = tanh, set at exp.ini:12)" when the key's value came from a variable. */
static const char *origin(const cnb_layer_ctx *ctx, const char *key, char *buf, size_t len)
{
    const cnb_kv *kv = key ? cnb_section_get(ctx->sec, key) : NULL;
    const char *from = kv ? kv->from : NULL;
    snprintf(buf, len, "%s%s%s", from ? " (" : "", from ? from : "", from ? ")" : "");
    return buf;
}

static int layer_error(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
    CNB_PRINTF(3, 4);
static int layer_error(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
{
    char msg[1024], from[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnb_error("%s:%d: [%s] %s%s", ctx->net->model->path, layer_line(ctx, key),
                     ctx->sec->name, msg, origin(ctx, key, from, sizeof from));
}

static void layer_warn(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
    CNB_PRINTF(3, 4);
static void layer_warn(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cnb_log(CNB_LOG_WARN, "cnnbench", "%s:%d: [%s] %s", ctx->net->model->path,
            layer_line(ctx, key), ctx->sec->name, msg);
}

static int layer_param_int(cnb_layer_ctx *ctx, const char *key, int required, int dflt, int *out)
{
    const cnb_kv *kv = layer_kv(ctx, key, required);
    if (!kv)
        return required ? CNB_EINVAL : (*out = dflt, 0);
    char *end;
    errno = 0;
    long v = strtol(kv->value, &end, 10);
    if (errno || end == kv->value || *end || v < -1000000000L || v > 1000000000L)
        return layer_error(ctx, key, "%s = '%s': expected a whole number", key, kv->value);
    *out = (int)v;
    return 0;
}

static int layer_param_float(cnb_layer_ctx *ctx, const char *key, int required, float dflt,
                             float *out)
{
    const cnb_kv *kv = layer_kv(ctx, key, required);
    if (!kv)
        return required ? CNB_EINVAL : (*out = dflt, 0);
    char *end;
    errno = 0;
    double v = strtod(kv->value, &end);
    if (errno || end == kv->value || *end || !isfinite(v))
        return layer_error(ctx, key, "%s = '%s': expected a number", key, kv->value);
    *out = (float)v;
    return 0;
}

static int layer_param_str(cnb_layer_ctx *ctx, const char *key, int required, const char *dflt,
                           const char **out)
{
    const cnb_kv *kv = layer_kv(ctx, key, required);
    if (!kv)
        return required ? CNB_EINVAL : (*out = dflt, 0);
    *out = kv->value;
    return 0;
}

/* What a layer's kernel_create gets while the host only reads its descriptor, looking for
 * fused runs, and what a layer in a run then keeps: the run's kernel does its work, so
 * this one holds nothing and is never called. */
static int no_kernel_call(cnb_kernel *self, const cnb_args *a)
{
    (void)self, (void)a;
    return CNB_EINVAL;
}

static void no_kernel_destroy(cnb_kernel *self) { (void)self; }

static cnb_kernel no_kernel = {.struct_size = sizeof(cnb_kernel), .forward = no_kernel_call,
                               .backward = no_kernel_call, .destroy = no_kernel_destroy};

/* Whether a backend before chain[producer] makes the kernel of d on NCHW: the chain's
 * order is its preference, and a native layout only saves reorders between kernels of
 * one backend, so it must not keep an earlier backend from its layer. The kernel made to
 * find out is destroyed; the layer makes it again once its producer writes NCHW. */
static int earlier_backend_takes(cnb_net *net, int producer, const cnb_op_desc *d)
{
    cnb_op_desc nchw = *d;
    nchw.src_layout = nchw.dst_layout = CNB_LAYOUT_NCHW;
    for (int i = 0; i < producer; i++) {
        cnb_kernel *k = NULL;
        if (!(net->chain[i]->ops & CNB_OP_BIT(d->op)))
            continue;
        const int rc = net->chain[i]->kernel_create(net->chain_state[i], &nchw, &k);
        if (rc == CNB_ENOTSUP)
            continue;
        if (rc == 0 && k)
            k->destroy(k);
        return 1; /* an error too: the layer's own create says it */
    }
    return 0;
}

/* The first backend of the chain that makes the kernel. For an input in a native layout
 * (the previous layer's out): when an earlier backend than the one that chose it would
 * make it on NCHW, a refusal (ctx->refused), so that cnb_net_bind makes both sides again
 * on NCHW and the earlier backend gets it; otherwise only the backend that chose the
 * layout; a refusal of that layout is left to cnb_net_bind too.
 * While ctx->describe, no backend: the descriptor is recorded and no_kernel handed out. */
static int layer_kernel_create(cnb_layer_ctx *ctx, const cnb_op_desc *desc, cnb_kernel **out)
{
    cnb_net *net = ctx->net;
    if (!net->backend)
        return layer_error(ctx, NULL, "kernel requested before a backend was chosen");
    cnb_op_desc d = {0};
    memcpy(&d, desc, offsetof(cnb_op_desc, src_layout)); /* a 1.0 layer's desc ends here */
    if (ctx->describe) {
        ctx->desc = d;
        ctx->n_kernels++;
        *out = &no_kernel;
        return 0;
    }
    const cnb_layer_ctx *prev = ctx->index > 0 ? &net->layers[ctx->index - 1].ctx : NULL;
    int first = 0, end = net->n_chain, used = 0;
    if (prev && prev->out.id != CNB_LAYOUT_NCHW) {
        if (earlier_backend_takes(net, prev->chain, &d))
            return ctx->refused = 1, CNB_ENOTSUP; /* its producer again on NCHW, then it */
        d.src_layout = prev->out.id, first = prev->chain, end = first + 1;
    }
    const cnb_backend_desc *be = net->backend;
    int rc = CNB_ENOTSUP;
    for (int i = first; i < end && rc == CNB_ENOTSUP; i++) {
        be = net->chain[i];
        used = i;
        if (!(be->ops & CNB_OP_BIT(d.op)))
            continue;
        d.dst_layout = ctx->want_native && CNB_BACKEND_FIELD(be, layout_of) ? CNB_LAYOUT_ANY
                                                                           : CNB_LAYOUT_NCHW;
        rc = be->kernel_create(net->chain_state[i], &d, out);
    }
    if (rc == CNB_ENOTSUP && d.src_layout != CNB_LAYOUT_NCHW)
        return ctx->refused = 1, rc;
    if (rc != 0)
        return layer_error(ctx, NULL, "backend '%s' could not create its %s kernel: "
                           "kernel_create returned %s", be->hdr.name, cnb_op_name(d.op),
                           cnb_status_name(rc));
    char why[1024];
    if (cnb_registry_check_kernel(net->reg, be, *out, why, sizeof why) != 0)
        return *out = NULL, layer_error(ctx, NULL, "%s", why);
    ctx->kernel = *out;
    ctx->n_kernels++;
    ctx->desc = d;
    ctx->chain = used;
    if (d.dst_layout == CNB_LAYOUT_ANY && be->layout_of(*out, &ctx->out) != 0)
        return layer_error(ctx, NULL, "backend '%s' could not say its kernel's layout",
                           be->hdr.name);
    if (ctx->ran_on && strcmp(ctx->ran_on, be->hdr.name) != 0)
        ctx->mixed = 1;
    if (!ctx->ran_on)
        ctx->ran_on = be->hdr.name;
    return 0;
}

static cnb_rng *layer_rng(cnb_layer_ctx *ctx) { return &ctx->rng; }

const cnb_host *cnb_host_services(void)
{
    static const cnb_host table = {
        .abi_major = CNB_HOST_ABI_MAJOR,
        .abi_minor = CNB_HOST_ABI_MINOR,
        .struct_size = sizeof(cnb_host),
        .log = cnb_plugin_log,
        .alloc = cnb_alloc,
        .free = cnb_free,
        .rng_u32 = cnb_rng_u32,
        .rng_uniform = cnb_rng_uniform,
        .rng_normal = cnb_rng_normal,
        .param_int = layer_param_int,
        .param_float = layer_param_float,
        .param_str = layer_param_str,
        .layer_error = layer_error,
        .layer_warn = layer_warn,
        .kernel_create = layer_kernel_create,
        .layer_rng = layer_rng,
    };
    return &table;
}

/* ---- building ---------------------------------------------------------------------- */

static int read_net_section(cnb_net *net, const cnb_conf *model)
{
    static const char *const keys[] = {"channels", "height", "width", "classes", NULL};
    const cnb_section *s = cnb_conf_section(model, "net");
    if (!s)
        return cnb_error("%s: no [net] section; declare the input as [net] with channels, "
                         "height, width and classes", model->path);
    if (cnb_section_check_keys(model, s, keys))
        return CNB_EINVAL;
    long v[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        if (!cnb_section_get(s, keys[i]))
            return cnb_error("%s:%d: [net] needs the key '%s'", model->path, s->line, keys[i]);
        if (cnb_conf_int(model, s, keys[i], 1, 100000, &v[i]))
            return CNB_EINVAL;
    }
    net->input = (cnb_shape){(int)v[0], (int)v[1], (int)v[2]};
    net->classes = (int)v[3];
    return 0;
}

static int is_layer_section(const cnb_section *s)
{
    return strcmp(s->name, "net") != 0 && strcmp(s->name, "vars") != 0;
}

int cnb_net_layer_create(cnb_net *net, cnb_net_layer *L, const cnb_section *s, cnb_shape in)
{
    const cnb_kv *type = cnb_section_get(s, "type");
    if (!type)
        return cnb_error("%s:%d: [%s] has no 'type'; name a layer plugin (see `cnnbench "
                         "plugins`)", net->model->path, s->line, s->name);
    L->ctx.sec = s;
    L->desc = cnb_registry_layer(net->reg, type->value);
    if (!L->desc) {
        char names[1024];
        cnb_registry_names(net->reg, CNB_PLUGIN_LAYER, names, sizeof names);
        return layer_error(&L->ctx, "type", "unknown layer type '%s'; layer plugins "
                           "found: %s", type->value, names);
    }
    L->name = s->name;
    L->in = in;
    int rc = L->desc->create(cnb_host_services(), &L->ctx, in, &L->layer);
    if (rc != 0) {
        if (rc != CNB_EINVAL) /* the plugin reported EINVAL itself */
            layer_error(&L->ctx, NULL, "layer plugin '%s' failed to create: %s",
                        L->desc->hdr.name, cnb_status_name(rc));
        return CNB_EINVAL;
    }
    char why[1024];
    if ((rc = cnb_registry_check_layer(net->reg, L->desc, L->layer, why, sizeof why)) != 0) {
        if (rc == CNB_EABI)
            L->layer = NULL; /* of other headers: not even its destroy may be called */
        return layer_error(&L->ctx, NULL, "%s", why);
    }
    const char *missing = !L->layer            ? "layer (create returned 0 and NULL)"
                          : !L->layer->bind     ? "bind"
                          : !L->layer->forward  ? "forward"
                          : !L->layer->backward ? "backward"
                          : !L->layer->destroy  ? "destroy"
                                                : NULL;
    if (missing)
        return layer_error(&L->ctx, NULL, "layer plugin '%s' gave no %s; bind, forward, "
                           "backward and destroy are all required (cnnbench/layer.h)",
                           L->desc->hdr.name, missing);
    /* Keys: `type` plus what the plugin declares; any, for a stand-in. */
    const char *allowed[64] = {"type"};
    int na = 1;
    for (const char *const *k = L->desc->keys; k && *k && na < 63; k++)
        allowed[na++] = *k;
    allowed[na] = NULL;
    if (!(L->desc->flags & CNB_LAYER_STANDS_IN) && cnb_section_check_keys(net->model, s, allowed))
        return CNB_EINVAL;
    L->out = L->layer->out;
    if (L->out.c <= 0 || L->out.h <= 0 || L->out.w <= 0)
        return layer_error(&L->ctx, NULL, "output shape %dx%dx%d is empty", L->out.c,
                           L->out.h, L->out.w);
    return 0;
}

/* Xavier unless the first activation after a learnable layer asks for He. */
static void choose_init(cnb_net *net)
{
    for (int i = 0; i < net->n; i++) {
        if (net->layers[i].layer->n_params == 0)
            continue;
        net->layers[i].init = "xavier";
        for (int j = i + 1; j < net->n && net->layers[j].layer->n_params == 0; j++)
            if (net->layers[j].desc->flags & CNB_LAYER_ACTIVATION) {
                if (net->layers[j].desc->flags & CNB_LAYER_INIT_HE)
                    net->layers[i].init = "he";
                break;
            }
    }
}

int cnb_net_build(cnb_net *net, const cnb_registry *reg, const cnb_conf *model)
{
    memset(net, 0, sizeof *net);
    net->model = model;
    net->reg = reg;
    if (read_net_section(net, model))
        return CNB_EINVAL;
    int count = 0;
    for (int i = 0; i < model->n; i++)
        count += is_layer_section(&model->sec[i]);
    if (count == 0)
        return cnb_error("%s: no layer sections after [net]", model->path);
    net->layers = calloc((size_t)count, sizeof *net->layers);
    if (!net->layers)
        return CNB_ENOMEM;
    cnb_shape shape = net->input;
    for (int i = 0, slot = 0; i < model->n; i++) {
        if (!is_layer_section(&model->sec[i]))
            continue;
        cnb_net_layer *L = &net->layers[net->n];
        L->ctx.net = net;
        L->ctx.index = net->n;
        L->slot = slot++;
        net->n++; /* counted before create so that free() sees a partial layer */
        if (cnb_net_layer_create(net, L, &model->sec[i], shape))
            return CNB_EINVAL;
        if (L->desc->flags & CNB_LAYER_IDENTITY) { /* left out: its output is its input */
            if (L->layer->n_params || memcmp(&L->out, &shape, sizeof shape))
                return layer_error(&L->ctx, NULL, "layer plugin '%s' says it is the identity "
                                   "(CNB_LAYER_IDENTITY) but changes the shape or learns",
                                   L->desc->hdr.name);
            L->layer->destroy(L->layer);
            memset(L, 0, sizeof *L);
            net->n--;
            continue;
        }
        if ((L->desc->flags & CNB_LAYER_VIEW) &&
            (L->layer->n_params || cnb_shape_size(L->out) != cnb_shape_size(shape)))
            return layer_error(&L->ctx, NULL, "layer plugin '%s' says it is a view "
                               "(CNB_LAYER_VIEW) but changes the number of values or learns",
                               L->desc->hdr.name);
        shape = L->out;
    }
    if (net->n == 0)
        return cnb_error("%s: every layer section is a switched-off slot (type = none): no "
                         "layer to run", model->path);
    cnb_net_layer *last = &net->layers[net->n - 1];
    if (!(last->desc->flags & CNB_LAYER_LOSS))
        return cnb_error("%s:%d: [%s] the last layer must be a loss layer (type = softmax)",
                         model->path, last->ctx.sec->line, last->name);
    if (cnb_shape_size(last->out) != (size_t)net->classes)
        return cnb_error("%s:%d: [%s] gives %zu outputs but [net] classes = %d; make the last "
                         "fc layer's outputs equal the number of classes",
                         model->path, last->ctx.sec->line, last->name, cnb_shape_size(last->out),
                         net->classes);
    for (int i = 0; i < net->n - 1; i++)
        if (net->layers[i].desc->flags & CNB_LAYER_LOSS)
            return cnb_error("%s:%d: [%s] a loss layer may only come last", model->path,
                             net->layers[i].ctx.sec->line, net->layers[i].name);
    choose_init(net);
    return 0;
}

int cnb_model_vars(const cnb_conf *model, const cnb_vars *overrides, cnb_vars *out)
{
    int rc = 0;
    const cnb_section *defaults = cnb_conf_section(model, "vars");
    for (int i = 0; defaults && i < defaults->n && rc == 0; i++) {
        char at[PATH_MAX + 64];
        snprintf(at, sizeof at, "%s:%d", model->path, defaults->kv[i].line);
        rc = cnb_vars_set_at(out, defaults->kv[i].key, defaults->kv[i].value, at);
    }
    for (int i = 0; overrides && i < overrides->n && rc == 0; i++)
        rc = cnb_vars_set_at(out, overrides->names[i], overrides->values[i],
                             overrides->where[i]);
    return rc;
}

int cnb_net_load(cnb_net *net, cnb_conf *model, const cnb_registry *reg, const char *path,
                 const cnb_vars *overrides)
{
    memset(net, 0, sizeof *net);
    int rc = cnb_conf_load(model, path);
    if (rc)
        return rc;
    cnb_vars vars = {0};
    rc = cnb_model_vars(model, overrides, &vars);
    if (rc == 0)
        rc = cnb_conf_substitute(model, &vars);
    cnb_vars_free(&vars);
    return rc ? rc : cnb_net_build(net, reg, model);
}

static void unbind(cnb_net *net)
{
    for (int i = 0; i < net->n; i++)
        if (!net->layers[i].view) /* a view's are the layer before's */
            cnb_free(net->layers[i].y), cnb_free(net->layers[i].dy);
    cnb_free(net->x), cnb_free(net->labels);
    net->x = NULL, net->labels = NULL;
    net->batch = 0;
}

static void release_backends(cnb_net *net)
{
    for (int i = net->n_chain - 1; i >= 0; i--)
        if (net->chain[i]->fini)
            net->chain[i]->fini(net->chain_state[i]);
    net->n_chain = 0;
    net->backend = NULL;
    net->backend_state = NULL;
}

void cnb_net_free(cnb_net *net)
{
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        if (L->fuse_kernel)
            L->fuse_kernel->destroy(L->fuse_kernel);
        if (L->layer && L->layer->destroy)
            L->layer->destroy(L->layer);
        for (int p = 0; p < CNB_MAX_PARAMS; p++)
            cnb_free(L->w[p]), cnb_free(L->vel[p]); /* dw[p] points into net->grad */
    }
    cnb_free(net->grad);
    cnb_sgd_team_stop(net->sgd);
    unbind(net);
    release_backends(net);
    free(net->layers);
    memset(net, 0, sizeof *net);
}

size_t cnb_net_param_count(const cnb_net *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->layers[i].layer->n_params; p++)
            n += net->layers[i].layer->params[p].count;
    return n;
}

double cnb_net_flops(const cnb_net *net)
{
    double f = 0;
    for (int i = 0; i < net->n; i++)
        f += net->layers[i].layer->flops;
    return f;
}

static void thousands(char *buf, size_t len, double v)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", v);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        buf[o++] = raw[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n)
            buf[o++] = ',';
    }
    buf[o] = '\0';
}

void cnb_net_print_summary(const cnb_net *net, FILE *out)
{
    char p[32], f[32];
    fprintf(out, "model %s: input %dx%dx%d (H x W x C), %d classes\n\n", net->model->path,
            net->input.h, net->input.w, net->input.c, net->classes);
    fprintf(out, "%-3s %-10s %-12s %-16s %8s %14s %16s\n", "#", "layer", "plugin",
            "output HxWxC", "values", "parameters", "forward FLOPs");
    size_t fc_params = 0;
    for (int i = 0; i < net->n; i++) {
        const cnb_net_layer *L = &net->layers[i];
        size_t np = 0;
        for (int k = 0; k < L->layer->n_params; k++)
            np += L->layer->params[k].count;
        if (strcmp(L->desc->hdr.name, "fc") == 0)
            fc_params += np;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.h, L->out.w, L->out.c);
        thousands(p, sizeof p, (double)np);
        thousands(f, sizeof f, L->layer->flops);
        fprintf(out, "%-3d %-10s %-12s %-16s %8zu %14s %16s\n", i + 1, L->name,
                L->desc->hdr.name, shape, cnb_shape_size(L->out), p, f);
    }
    size_t total = cnb_net_param_count(net);
    thousands(p, sizeof p, (double)total);
    thousands(f, sizeof f, cnb_net_flops(net));
    fprintf(out, "\ntotal: %s parameters, %s forward FLOPs per image\n", p, f);
    thousands(p, sizeof p, (double)fc_params);
    fprintf(out, "fully connected layers: %s parameters (%.1f%% of all)\n", p,
            total ? 100.0 * (double)fc_params / (double)total : 0.0);
}

/* ---- parameters -------------------------------------------------------------------- */

/* net->grad and every layer's dw[] inside it, each tensor rounded up to 16 floats. */
static int alloc_grad(cnb_net *net)
{
    size_t at = 0;
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        L->grad_begin = at;
        for (int p = 0; p < L->layer->n_params; p++)
            at += (L->layer->params[p].count + 15) / 16 * 16;
        L->grad_end = at;
    }
    net->grad = cnb_alloc((at ? at : 1) * sizeof(float));
    if (!net->grad)
        return cnb_error("out of memory for the gradients (%zu floats)", at);
    net->grad_floats = at;
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        float *g = net->grad + L->grad_begin;
        for (int p = 0; p < L->layer->n_params; p++) {
            L->dw[p] = g;
            g += (L->layer->params[p].count + 15) / 16 * 16;
        }
    }
    return 0;
}

int cnb_net_init_params(cnb_net *net, uint64_t seed)
{
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_INIT);
    if (!net->grad && alloc_grad(net) != 0)
        return CNB_ENOMEM;
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        cnb_rng_seed(&L->ctx.rng, seed, CNB_STREAM_LAYER + (uint64_t)L->slot);
        for (int p = 0; p < L->layer->n_params; p++) {
            const cnb_param_spec *ps = &L->layer->params[p];
            if (!L->w[p]) {
                L->w[p] = cnb_alloc(ps->count * sizeof(float));
                L->vel[p] = cnb_alloc(ps->count * sizeof(float));
                if (!L->w[p] || !L->vel[p])
                    return cnb_error("out of memory for the parameters of [%s]", L->name);
            }
            memset(L->vel[p], 0, ps->count * sizeof(float));
            if (ps->is_bias) {
                memset(L->w[p], 0, ps->count * sizeof(float));
            } else if (strcmp(L->init, "he") == 0) { /* N(0, 2 / fan_in) */
                float sd = sqrtf(2.0f / (float)ps->fan_in);
                for (size_t k = 0; k < ps->count; k++)
                    L->w[p][k] = sd * cnb_rng_normal(&rng);
            } else { /* Xavier/Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
                float a = sqrtf(6.0f / (float)(ps->fan_in + ps->fan_out));
                for (size_t k = 0; k < ps->count; k++)
                    L->w[p][k] = a * (2.0f * cnb_rng_uniform(&rng) - 1.0f);
            }
        }
    }
    return 0;
}

/* ---- binding and running ----------------------------------------------------------- */

static int start_backend(const cnb_backend_desc *be, int threads, void **state)
{
    cnb_backend_config cfg = {.threads = threads};
    *state = NULL;
    int rc = be->init ? be->init(cnb_host_services(), &cfg, state) : CNB_OK;
    if (rc != CNB_OK)
        return cnb_error("backend '%s' failed to start: init returned %s", be->hdr.name,
                         cnb_status_name(rc));
    return 0;
}

int cnb_backend_spec_names(const char *spec, int *native, int *fuse)
{
    static const char nchw[] = ":nchw", nofuse[] = ":nofuse";
    size_t n = strlen(spec);
    *native = *fuse = 1;
    for (int more = 1; more;) { /* strip either suffix from the end, each once */
        more = 0;
        if (*native && n > sizeof nchw - 1 && !strncmp(spec + n - (sizeof nchw - 1), nchw,
                                                        sizeof nchw - 1))
            n -= sizeof nchw - 1, *native = 0, more = 1;
        if (*fuse && n > sizeof nofuse - 1 && !strncmp(spec + n - (sizeof nofuse - 1), nofuse,
                                                        sizeof nofuse - 1))
            n -= sizeof nofuse - 1, *fuse = 0, more = 1;
    }
    return (int)n;
}

int cnb_backend_spec_check(const cnb_registry *reg, const char *spec, const char *where)
{
    char copy[256], *save = NULL;
    int native, fuse;
    snprintf(copy, sizeof copy, "%.*s", cnb_backend_spec_names(spec, &native, &fuse), spec);
    for (char *name = strtok_r(copy, "+", &save); name; name = strtok_r(NULL, "+", &save))
        if (!cnb_registry_backend(reg, name)) {
            char names[512];
            cnb_registry_names(reg, CNB_PLUGIN_BACKEND, names, sizeof names);
            return cnb_error("%s: backend '%s'%s was not found; backends found: %s (join "
                             "several with '+'; add ':nchw' to keep NCHW between layers, "
                             "':nofuse' to run every layer on kernels of its own)",
                             where, name, strchr(spec, '+') ? " (in a '+' chain)" : "", names);
        }
    return 0;
}

int cnb_backend_spec_max_threads(const cnb_registry *reg, const char *spec)
{
    char copy[256], *save = NULL;
    int native, fuse, most = 1;
    snprintf(copy, sizeof copy, "%.*s", cnb_backend_spec_names(spec, &native, &fuse), spec);
    for (char *name = strtok_r(copy, "+", &save); name; name = strtok_r(NULL, "+", &save)) {
        int max = (int)CNB_BACKEND_FIELD_OR(cnb_registry_backend(reg, name), max_threads, 0u);
        if (max == 0)
            return 0;
        most = max > most ? max : most;
    }
    return most;
}

const char *cnb_backend_threads_unused(int max, int threads, char *buf, size_t len)
{
    if (max == 0 || threads <= max)
        return NULL;
    if (max == 1)
        snprintf(buf, len, "is single-threaded");
    else
        snprintf(buf, len, "uses %d threads at most", max);
    return buf;
}

/* Does layer i hand its tensors straight to one kernel (CNB_LAYER_KERNEL_IO)? */
static int kernel_io(const cnb_net *net, int i)
{
    return (net->layers[i].desc->flags & CNB_LAYER_KERNEL_IO) != 0;
}

/* (Re)create layer i's kernels from its ctx's layout fields. */
static int bind_layer(cnb_net *net, int i)
{
    cnb_net_layer *L = &net->layers[i];
    L->ctx.ran_on = NULL;
    L->ctx.mixed = 0;
    L->ctx.refused = 0;
    L->ctx.out = (cnb_layout_info){CNB_LAYOUT_NCHW, 0, "nchw"};
    L->ctx.kernel = NULL;
    L->ctx.n_kernels = 0;
    return L->layer->bind(L->layer, net->batch);
}

/* Bind layer i on the layout of its input (the previous layer's out); when it cannot
 * read that layout, bind the previous layer again on NCHW, then it. */
static int bind_reading(cnb_net *net, int i)
{
    cnb_net_layer *L = &net->layers[i];
    int rc = bind_layer(net, i);
    if (rc && L->ctx.refused) { /* it cannot read its producer's layout: NCHW between */
        cnb_log(CNB_LOG_DEBUG, "cnnbench", "[%s] cannot read %s from [%s]: NCHW between",
                L->name, net->layers[i - 1].ctx.out.name, net->layers[i - 1].name);
        net->layers[i - 1].ctx.want_native = 0;
        rc = bind_layer(net, i - 1);
        if (!rc)
            rc = bind_layer(net, i);
    }
    return rc;
}

/* ---- fused runs (cnnbench/backend.h) ------------------------------------------------ */

/* Layer i's one kernel does op (a CNB_LAYER_KERNEL_IO layer's, described). */
static int kernel_does(const cnb_net *net, int i, cnb_op op)
{
    const cnb_layer_ctx *ctx = &net->layers[i].ctx;
    return kernel_io(net, i) && ctx->n_kernels == 1 && ctx->desc.op == op;
}

/* The layers of the longest run that may start at layer i (1: none starts there): a
 * convolution or an inner product, then layers whose kernels have no weights. */
static int run_candidate(const cnb_net *net, int i)
{
    if (!kernel_does(net, i, CNB_OP_CONV) && !kernel_does(net, i, CNB_OP_INNER_PRODUCT))
        return 1;
    static const cnb_op follow[] = {CNB_OP_RELU, CNB_OP_SIGMOID, CNB_OP_POOL_MAX,
                                    CNB_OP_POOL_AVG, CNB_OP_LRN};
    int n = 1;
    for (int ok = 1; ok && n < CNB_FUSE_MAX && i + n < net->n; n += ok) {
        ok = 0;
        for (size_t k = 0; k < sizeof follow / sizeof follow[0]; k++)
            ok |= kernel_does(net, i + n, follow[k]);
    }
    return n;
}

/* The names of layers i .. i + n - 1 joined by '+', into buf. */
static const char *run_label(const cnb_net *net, int i, int n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && used < len; k++) {
        int w = snprintf(buf + used, len - used, "%s%s", k ? "+" : "", net->layers[i + k].name);
        used += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

const char *cnb_net_run_name(const cnb_net *net, int i, char *buf, size_t len)
{
    const cnb_net_layer *L = &net->layers[i];
    const int first = L->fused_on ? L->fuse_first : i;
    return run_label(net, first, L->fused_on ? net->layers[first].fuse_n : 0, buf, len);
}

int cnb_net_fused_runs(const cnb_net *net, char *buf, size_t len)
{
    size_t used = 0;
    int runs = 0;
    buf[0] = '\0';
    for (int i = 0; i < net->n && used < len; i++)
        if (net->layers[i].fuse_n) {
            char run[256];
            int w = snprintf(buf + used, len - used, "%s%s", runs++ ? " " : "",
                             cnb_net_run_name(net, i, run, sizeof run));
            used += w > 0 ? (size_t)w : 0;
        }
    return runs;
}

static const char *kernel_algorithm(const cnb_net *net, int c, const cnb_kernel *k)
{
    const char *(*alg)(const cnb_kernel *) = CNB_BACKEND_FIELD(net->chain[c], algorithm);
    return alg ? alg(k) : NULL;
}

const char *cnb_net_layer_algorithm(const cnb_net *net, int i)
{
    const cnb_net_layer *L = &net->layers[i];
    if (L->fuse_n)
        return kernel_algorithm(net, L->fuse_chain, L->fuse_kernel);
    return L->ctx.kernel ? kernel_algorithm(net, L->ctx.chain, L->ctx.kernel) : NULL;
}

/* Offer layers i .. i + n - 1 to each backend of the chain with fuse_create: 0 when one
 * made the run's kernel (recorded in the layers), CNB_ENOTSUP when none would, or an
 * error (said). */
static int offer_run(cnb_net *net, int i, int n)
{
    cnb_fuse_desc f = {.n = n};
    for (int k = 0; k < n; k++) {
        f.op[k] = net->layers[i + k].ctx.desc;
        f.op[k].src_layout = f.op[k].dst_layout = CNB_LAYOUT_NCHW;
    }
    cnb_net_layer *first = &net->layers[i];
    for (int c = 0; c < net->n_chain; c++) {
        const cnb_backend_desc *be = net->chain[c];
        if (!CNB_BACKEND_FIELD(be, fuse_create))
            continue;
        cnb_kernel *k = NULL;
        int rc = be->fuse_create(net->chain_state[c], &f, &k);
        if (rc == CNB_ENOTSUP)
            continue;
        char run[256], why[1024];
        run_label(net, i, n, run, sizeof run);
        if (rc != 0)
            return cnb_error("%s: backend '%s' could not fuse the run %s: fuse_create "
                             "returned %s", net->model->path, be->hdr.name, run,
                             cnb_status_name(rc));
        if (cnb_registry_check_kernel(net->reg, be, k, why, sizeof why) != 0)
            return cnb_error("%s: the run %s: %s", net->model->path, run, why);
        first->fuse_n = n;
        first->fuse_kernel = k;
        first->fuse_chain = c;
        for (int j = i; j < i + n; j++) {
            net->layers[j].fuse_first = i;
            net->layers[j].fused_on = be->hdr.name;
        }
        return 0;
    }
    return CNB_ENOTSUP;
}

/* The bytes of layer i's y, and of its dy: one batch of its output, in the layout of the
 * edge it feeds; 0 inside a fused run, whose kernel keeps what it needs, and for a view,
 * whose buffers are the layer before's. */
static size_t output_bytes(const cnb_net *net, int i)
{
    const cnb_net_layer *L = &net->layers[i];
    if (L->view || (L->fused_on && i < L->fuse_first + net->layers[L->fuse_first].fuse_n - 1))
        return 0;
    size_t bytes = (size_t)net->batch * cnb_shape_size(L->out) * sizeof(float);
    return L->ctx.out.bytes > bytes ? L->ctx.out.bytes : bytes;
}

/* Bind every layer that hands its tensors to one kernel with no kernel at all, only its
 * descriptor recorded (ctx.desc): what fuse_runs offers. Its output is NCHW. */
static int describe_layers(cnb_net *net)
{
    for (int i = 0; i < net->n; i++) {
        cnb_layer_ctx *ctx = &net->layers[i].ctx;
        if (!kernel_io(net, i))
            continue;
        ctx->describe = 1;
        ctx->want_native = 0;
        const int rc = bind_layer(net, i);
        ctx->describe = 0;
        if (rc)
            return CNB_EINVAL;
    }
    return 0;
}

/* Every run the chain fuses, from the first layer down: at each layer the longest run
 * any backend takes, then on after it. The layers are described, not yet bound: those of
 * a run keep no_kernel, and the others get their own kernels after. */
static int fuse_runs(cnb_net *net)
{
    if (describe_layers(net))
        return CNB_EINVAL;
    for (int i = 0; i < net->n; i++) {
        int n = run_candidate(net, i), rc = CNB_ENOTSUP;
        while (n >= 2 && (rc = offer_run(net, i, n)) == CNB_ENOTSUP)
            n--;
        if (rc == CNB_ENOTSUP)
            continue;
        if (rc)
            return CNB_EINVAL;
        i += n - 1;
    }
    return 0;
}

int cnb_net_bind(cnb_net *net, const char *backend, int threads, int batch)
{
    /* Once: layers destroy their kernels only in destroy(), and a backend's fini must
     * come after every kernel it made is gone. */
    if (net->backend)
        return cnb_error("a network is bound to a backend once; build another to rebind");
    char spec[256], *save = NULL;
    snprintf(spec, sizeof spec, "%.*s+%s",
             cnb_backend_spec_names(backend, &net->native_layouts, &net->fuse), backend,
             CNB_REFERENCE_BACKEND);
    for (char *name = strtok_r(spec, "+", &save); name; name = strtok_r(NULL, "+", &save)) {
        const cnb_backend_desc *be = cnb_registry_backend(net->reg, name);
        if (!be)
            return cnb_backend_spec_check(net->reg, backend, "bind");
        int dup = 0;
        for (int i = 0; i < net->n_chain; i++)
            dup |= net->chain[i] == be;
        if (dup)
            continue;
        if (net->n_chain == CNB_MAX_CHAIN)
            return cnb_error("backend '%s': at most %d backends in a chain", backend,
                             CNB_MAX_CHAIN - 1);
        if (start_backend(be, threads, &net->chain_state[net->n_chain]))
            return CNB_EINVAL;
        net->chain[net->n_chain++] = be;
    }
    net->backend = net->chain[0];
    net->backend_state = net->chain_state[0];
    net->threads = threads;
    net->batch = batch;
    net->x = cnb_alloc((size_t)batch * cnb_shape_size(net->input) * sizeof(float));
    net->labels = cnb_alloc((size_t)batch * sizeof(int32_t));
    if (!net->x || !net->labels)
        return cnb_error("out of memory for a batch of %d", batch);
    /* Runs first, so that their layers never make kernels of their own; a run's edges
     * are NCHW. */
    if (net->fuse && fuse_runs(net))
        return CNB_EINVAL;
    for (int i = 0; i < net->n; i++) {
        if (net->layers[i].fused_on)
            continue;
        net->layers[i].ctx.want_native = net->native_layouts && kernel_io(net, i) &&
                                         i + 1 < net->n && kernel_io(net, i + 1) &&
                                         !net->layers[i + 1].fused_on;
        if (bind_reading(net, i))
            return CNB_EINVAL;
    }
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        /* a view of an NCHW output takes it as it is; the network's input has no dy */
        L->view = i > 0 && (L->desc->flags & CNB_LAYER_VIEW) &&
                  net->layers[i - 1].ctx.out.id == CNB_LAYOUT_NCHW;
        if (L->view) {
            L->y = net->layers[i - 1].y, L->dy = net->layers[i - 1].dy;
            continue;
        }
        const size_t bytes = output_bytes(net, i);
        if (!bytes)
            continue;
        L->y = cnb_alloc(bytes);
        L->dy = cnb_alloc(bytes);
        if (!L->y || !L->dy)
            return cnb_error("out of memory for the activations of [%s]", L->name);
    }
    return 0;
}

/* ---- memory ------------------------------------------------------------------------ */

/* What the kernel k of chain backend c holds, added to *bytes; 0 when it cannot say. */
static int add_kernel_bytes(const cnb_net *net, int c, const cnb_kernel *k, size_t *bytes)
{
    size_t (*held)(const cnb_kernel *) = CNB_BACKEND_FIELD(net->chain[c], kernel_bytes);
    if (held)
        *bytes += held(k);
    return held != NULL;
}

int cnb_net_layer_kernel_bytes(const cnb_net *net, int i, size_t *bytes)
{
    const cnb_net_layer *L = &net->layers[i];
    int known = L->ctx.n_kernels <= 1;
    *bytes = 0;
    if (L->ctx.kernel)
        known &= add_kernel_bytes(net, L->ctx.chain, L->ctx.kernel, bytes);
    if (L->fuse_kernel)
        known &= add_kernel_bytes(net, L->fuse_chain, L->fuse_kernel, bytes);
    return known;
}

cnb_net_memory cnb_net_memory_of(const cnb_net *net)
{
    cnb_net_memory m = {.kernels_known = 1};
    m.activations = (size_t)net->batch * (cnb_shape_size(net->input) * sizeof(float) +
                                          sizeof(int32_t));
    m.params = net->grad_floats * sizeof(float);
    for (int i = 0; i < net->n; i++) {
        const cnb_net_layer *L = &net->layers[i];
        size_t bytes;
        m.activations += 2 * output_bytes(net, i);
        for (int p = 0; p < L->layer->n_params && L->w[p]; p++)
            m.params += 2 * L->layer->params[p].count * sizeof(float); /* w and vel */
        m.kernels_known &= cnb_net_layer_kernel_bytes(net, i, &bytes);
        m.kernels += bytes;
    }
    for (int c = 0; c < net->n_chain; c++)
        if (CNB_BACKEND_FIELD(net->chain[c], state_bytes))
            m.kernels += net->chain[c]->state_bytes(net->chain_state[c]);
    return m;
}

/* "[fc1] forward on backend 'mine' failed: CNB_EINVAL"; for a fused run "[conv1+act1+pool1]
 * forward on backend 'direct' (fused run) failed: ..." */
static int layer_failed(const cnb_net *net, int i, const char *pass, int rc)
{
    const cnb_net_layer *L = &net->layers[i];
    char run[256];
    if (L->fused_on)
        return cnb_error_code(CNB_EFAILED, "[%s] %s on backend '%s' (fused run) failed: %s",
                              cnb_net_run_name(net, i, run, sizeof run), pass, L->fused_on,
                              cnb_status_name(rc));
    if (!L->ctx.ran_on)
        return cnb_error_code(CNB_EFAILED, "[%s] %s (layer plugin '%s', no kernels) failed: %s",
                              L->name, pass, L->desc->hdr.name, cnb_status_name(rc));
    return cnb_error_code(CNB_EFAILED, "[%s] %s on backend '%s'%s failed: %s", L->name, pass,
                          L->ctx.ran_on, L->ctx.mixed ? " (and others)" : "",
                          cnb_status_name(rc));
}

/* Layer i's buffers for a training backward (or, without dy and dx, a forward). */
static cnb_io layer_io(const cnb_net *net, int i)
{
    const cnb_net_layer *L = &net->layers[i];
    return (cnb_io){.train = 1,
                    .x = i ? net->layers[i - 1].y : net->x,
                    .y = L->y,
                    .dy = L->dy,
                    .dx = i ? net->layers[i - 1].dy : NULL,
                    .w = L->w,
                    .dw = L->dw,
                    .labels = net->labels};
}

/* The arguments of the fused run that starts at layer i: its first layer's input and
 * parameters, its last layer's output (cnnbench/backend.h, "Fused runs"). */
static cnb_args run_args(const cnb_net *net, int i, int backward)
{
    const cnb_net_layer *L = &net->layers[i], *last = &net->layers[i + L->fuse_n - 1];
    cnb_io io = layer_io(net, i);
    io.y = last->y;
    io.dy = last->dy;
    return cnb_layer_kernel_args(&io, L->layer->n_params, backward);
}

/* Layer i's forward, or the fused run's that starts there; the layers it covered. */
static int forward_at(cnb_net *net, int i, int train, const float *x, float *loss, int *rc)
{
    cnb_net_layer *L = &net->layers[i];
    if (L->fuse_n) {
        const cnb_args a = run_args(net, i, 0);
        *rc = L->fuse_kernel->forward(L->fuse_kernel, &a);
        return L->fuse_n;
    }
    if (L->view) {
        *rc = 0;
        return 1;
    }
    cnb_io io = {.train = train, .x = x, .y = L->y, .w = L->w, .dw = L->dw,
                 .labels = net->labels, .loss = loss};
    *rc = L->layer->forward(L->layer, &io);
    return 1;
}

int cnb_net_forward_timed(cnb_net *net, int train, float *loss, double *seconds)
{
    const float *x = net->x;
    *loss = 0.0f;
    for (int i = 0, n, rc; i < net->n; i += n) {
        double t0 = seconds ? cnb_now() : 0.0;
        n = forward_at(net, i, train, x, loss, &rc);
        for (int k = 0; seconds && k < n; k++)
            seconds[i + k] = k ? 0.0 : cnb_now() - t0;
        if (rc)
            return layer_failed(net, i, "forward", rc);
        x = net->layers[i + n - 1].y;
    }
    return 0;
}

int cnb_net_forward(cnb_net *net, int train, float *loss)
{
    return cnb_net_forward_timed(net, train, loss, NULL);
}

int cnb_net_backward(cnb_net *net) { return cnb_net_backward_timed(net, NULL); }

/* Output positions along one axis times the taps of each that land inside 0..in-1. */
static double inside_taps(int in, int out, int k, int stride, int pad)
{
    double taps = 0.0;
    for (int o = 0; o < out; o++)
        for (int t = 0; t < k; t++) {
            int x = o * stride - pad + t;
            taps += x >= 0 && x < in;
        }
    return taps;
}

double cnb_conv_flops(const cnb_op_desc *d)
{
    return 2.0 * d->dst.c * d->src.c *
           inside_taps(d->src.h, d->dst.h, d->u.conv.kh, d->u.conv.sh, d->u.conv.ph) *
           inside_taps(d->src.w, d->dst.w, d->u.conv.kw, d->u.conv.sw, d->u.conv.pw);
}

double cnb_net_layer_flops(const cnb_net *net, int i)
{
    const cnb_net_layer *L = &net->layers[i];
    return L->ctx.n_kernels && L->ctx.desc.op == CNB_OP_CONV ? cnb_conv_flops(&L->ctx.desc)
                                                             : L->layer->flops;
}

void cnb_net_park(cnb_net *net)
{
    for (int i = 0; i < net->n_chain; i++)
        if (CNB_BACKEND_FIELD(net->chain[i], park))
            net->chain[i]->park(net->chain_state[i]);
}

/* The kernel's library calls on the layer's buffers, mapped as CNB_LAYER_KERNEL_IO says. */
int cnb_net_library_pass(cnb_net *net, int i, int backward)
{
    const cnb_net_layer *L = &net->layers[i];
    const cnb_backend_desc *be = net->chain[L->ctx.chain];
    if (!kernel_io(net, i) || !L->ctx.kernel || L->fused_on || !CNB_BACKEND_FIELD(be, library_pass))
        return CNB_ENOTSUP;
    const cnb_io io = layer_io(net, i);
    const cnb_args a = cnb_layer_kernel_args(&io, L->layer->n_params, backward);
    return be->library_pass(L->ctx.kernel, &a, backward);
}

/* The backward of layer i, or of the fused run that ends there; the layer it went down
 * to (the run's first). */
static int backward_at(cnb_net *net, int i, int *rc)
{
    cnb_net_layer *L = &net->layers[i];
    if (L->fused_on) {
        cnb_net_layer *F = &net->layers[L->fuse_first];
        const cnb_args a = run_args(net, L->fuse_first, 1);
        *rc = F->fuse_kernel->backward(F->fuse_kernel, &a);
        return L->fuse_first;
    }
    cnb_io io = layer_io(net, i);
    *rc = L->view ? 0 : L->layer->backward(L->layer, &io);
    return i;
}

static int backward(cnb_net *net, double *seconds, cnb_backward_fn after, void *user)
{
    for (int i = net->n - 1, first, rc; i >= 0; i = first - 1) {
        double t0 = seconds ? cnb_now() : 0.0;
        first = backward_at(net, i, &rc);
        for (int k = first; seconds && k <= i; k++)
            seconds[k] = k == first ? cnb_now() - t0 : 0.0;
        if (rc)
            return layer_failed(net, i, "backward", rc);
        for (int k = i; after && k >= first; k--)
            if ((rc = after(user, k)) != 0)
                return rc;
    }
    return 0;
}

int cnb_net_backward_timed(cnb_net *net, double *seconds)
{
    return backward(net, seconds, NULL, NULL);
}

int cnb_net_backward_each(cnb_net *net, cnb_backward_fn after, void *user)
{
    return backward(net, NULL, after, user);
}

/* ---- SGD --------------------------------------------------------------------------- */

/* The update of n floats, cloned for AVX-512 and AVX2 (the host is built for the generic
 * ISA). Each clone vectorises the same multiplies and adds, none contracted into an FMA
 * (GCC does not contract in ISO C; clang is told), so every clone gives the same bits.
 * AlexNet's 61M parameters, one thread: 27 ms a step against 40 for the SSE2 loop. Not
 * under ThreadSanitizer: the clones' resolver runs before its runtime is up, and crashed
 * a -fsanitize=thread build at start. */
#if defined(__SANITIZE_THREAD__)
#define SGD_ONE_ISA
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SGD_ONE_ISA
#endif
#endif
#if defined(__x86_64__) && defined(__has_attribute) && !defined(SGD_ONE_ISA)
#if __has_attribute(target_clones)
#define SGD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef SGD_CLONES
#define SGD_CLONES
#endif

SGD_CLONES static void sgd_span(float *w, float *v, const float *g, size_t n, float lr,
                                float momentum, float wd)
{
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
    for (size_t k = 0; k < n; k++) {
        v[k] = momentum * v[k] + g[k] + wd * w[k];
        w[k] -= lr * v[k];
    }
}

/* Helpers that split an update's large tensors with its caller: started once, then each
 * update wakes them (one broadcast), every participant does its part, and the caller
 * waits on `done`. Between updates they sleep on `wake`, leaving the cores to the
 * kernels. The update is handed over under the mutex, and the caller reads the results
 * only after every helper has said it is done under it too. */
typedef struct sgd_helper_arg {
    cnb_sgd_team *team;
    int part;
} sgd_helper_arg;

struct cnb_sgd_team {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t th[CNB_SGD_THREADS_MAX - 1];
    sgd_helper_arg arg[CNB_SGD_THREADS_MAX - 1]; /* each helper's: its part of an update */
    int helpers;                    /* threads started: an update goes in helpers + 1 parts */
    long round;                     /* updates handed out so far                            */
    int busy;                       /* helpers still at the latest                          */
    int stop;
    const cnb_sgd_tensor *t;        /* the latest update: count tensors                     */
    int count;
    float lr, momentum;
};

/* Part `part` of `parts` of an update: that span (on 64-byte lines, the last to the end)
 * of every tensor of CNB_SGD_SPLIT floats or more, and every parts-th smaller one whole.
 * The update is elementwise, so every division gives the same bits. */
static void sgd_part(const cnb_sgd_tensor *t, int count, float lr, float momentum, int part,
                     int parts)
{
    for (int k = 0; k < count; k++) {
        const size_t n = t[k].n;
        if (n < CNB_SGD_SPLIT) {
            if (k % parts == part)
                sgd_span(t[k].w, t[k].v, t[k].g, n, lr, momentum, t[k].wd);
            continue;
        }
        const size_t a = n * part / parts / 16 * 16;
        const size_t b = part == parts - 1 ? n : n * (part + 1) / parts / 16 * 16;
        sgd_span(t[k].w + a, t[k].v + a, t[k].g + a, b - a, lr, momentum, t[k].wd);
    }
}

static void *sgd_helper(void *arg)
{
    cnb_sgd_team *tm = ((sgd_helper_arg *)arg)->team;
    const int part = ((sgd_helper_arg *)arg)->part;
    long seen = 0;
    pthread_mutex_lock(&tm->mu);
    for (;;) {
        while (!tm->stop && tm->round == seen)
            pthread_cond_wait(&tm->wake, &tm->mu);
        if (tm->stop)
            break;
        seen = tm->round;
        const cnb_sgd_tensor *t = tm->t;
        const int count = tm->count, parts = tm->helpers + 1;
        const float lr = tm->lr, momentum = tm->momentum;
        pthread_mutex_unlock(&tm->mu);
        sgd_part(t, count, lr, momentum, part, parts);
        pthread_mutex_lock(&tm->mu);
        if (--tm->busy == 0)
            pthread_cond_signal(&tm->done);
    }
    pthread_mutex_unlock(&tm->mu);
    return NULL;
}

cnb_sgd_team *cnb_sgd_team_start(int threads)
{
    if (threads < 2)
        return NULL;
    cnb_sgd_team *tm = calloc(1, sizeof *tm);
    if (!tm)
        return NULL;
    pthread_mutex_init(&tm->mu, NULL);
    pthread_cond_init(&tm->wake, NULL);
    pthread_cond_init(&tm->done, NULL);
    const int want = (threads < CNB_SGD_THREADS_MAX ? threads : CNB_SGD_THREADS_MAX) - 1;
    while (tm->helpers < want) {
        sgd_helper_arg *arg = &tm->arg[tm->helpers];
        *arg = (sgd_helper_arg){tm, tm->helpers + 1};
        if (pthread_create(&tm->th[tm->helpers], NULL, sgd_helper, arg) != 0) {
            cnb_sgd_team_stop(tm);
            return NULL;
        }
        tm->helpers++;
    }
    return tm;
}

void cnb_sgd_team_stop(cnb_sgd_team *team)
{
    if (!team)
        return;
    pthread_mutex_lock(&team->mu);
    team->stop = 1;
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->mu);
    for (int i = 0; i < team->helpers; i++)
        pthread_join(team->th[i], NULL);
    pthread_cond_destroy(&team->done);
    pthread_cond_destroy(&team->wake);
    pthread_mutex_destroy(&team->mu);
    free(team);
}

void cnb_sgd_update(cnb_sgd_team *team, const cnb_sgd_tensor *t, int count, float lr,
                    float momentum)
{
    if (!team) {
        sgd_part(t, count, lr, momentum, 0, 1);
        return;
    }
    pthread_mutex_lock(&team->mu);
    team->t = t, team->count = count, team->lr = lr, team->momentum = momentum;
    team->busy = team->helpers;
    team->round++;
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->mu);
    sgd_part(t, count, lr, momentum, 0, team->helpers + 1);
    pthread_mutex_lock(&team->mu);
    while (team->busy > 0)
        pthread_cond_wait(&team->done, &team->mu);
    pthread_mutex_unlock(&team->mu);
}

/* Tensors handed to one cnb_sgd_update: AlexNet has 16, so a step is one wake. */
#define SGD_TENSORS 64

void cnb_net_sgd(cnb_net *net, float lr, float momentum, float weight_decay)
{
    cnb_sgd_tensor t[SGD_TENSORS];
    int k = 0;
    for (int i = 0; i < net->n; i++) {
        cnb_net_layer *L = &net->layers[i];
        for (int p = 0; p < L->layer->n_params; p++) {
            const cnb_param_spec *ps = &L->layer->params[p];
            t[k++] = (cnb_sgd_tensor){L->w[p], L->vel[p], L->dw[p], ps->count,
                                      ps->is_bias ? 0.0f : weight_decay};
            if (ps->count >= CNB_SGD_SPLIT && !net->sgd)
                net->sgd = cnb_sgd_team_start(net->threads);
            if (k == SGD_TENSORS)
                cnb_sgd_update(net->sgd, t, k, lr, momentum), k = 0;
        }
    }
    if (k)
        cnb_sgd_update(net->sgd, t, k, lr, momentum);
}

const float *cnb_net_probs(const cnb_net *net) { return net->layers[net->n - 1].y; }

/* ---- weights file ------------------------------------------------------------------ */

#define WEIGHTS_MAGIC "CNBW"
#define WEIGHTS_VERSION 1u

static int put(FILE *f, const void *p, size_t n, uLong *crc)
{
    *crc = crc32(*crc, p, (uInt)n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int cnb_net_save_weights(const cnb_net *net, const char *path)
{
    cnb_atomic a;
    if (cnb_atomic_open(&a, path) != 0)
        return CNB_EIO;
    FILE *f = a.f;
    uLong crc = crc32(0L, Z_NULL, 0);
    uint32_t version = WEIGHTS_VERSION, count = 0;
    for (int i = 0; i < net->n; i++)
        count += (uint32_t)net->layers[i].layer->n_params;
    int bad = put(f, WEIGHTS_MAGIC, 4, &crc) | put(f, &version, 4, &crc) |
              put(f, &count, 4, &crc);
    for (int i = 0; i < net->n && !bad; i++) {
        const cnb_net_layer *L = &net->layers[i];
        for (int p = 0; p < L->layer->n_params && !bad; p++) {
            char name[256];
            int len = snprintf(name, sizeof name, "%s.%s", L->name, L->layer->params[p].name);
            uint16_t nl = (uint16_t)len;
            uint64_t n = L->layer->params[p].count;
            bad = put(f, &nl, 2, &crc) | put(f, name, nl, &crc) | put(f, &n, 8, &crc) |
                  put(f, L->w[p], n * sizeof(float), &crc);
        }
    }
    uint32_t c32 = (uint32_t)crc;
    bad |= fwrite(&c32, 4, 1, f) != 1;
    if (!bad)
        return cnb_atomic_commit(&a);
    int e = errno;
    fclose(f);
    unlink(a.tmp);
    return cnb_error("%s: writing the weights failed: %s (nothing was replaced)", path,
                     strerror(e));
}

static int get(FILE *f, void *p, size_t n, uLong *crc)
{
    if (fread(p, 1, n, f) != n)
        return -1;
    *crc = crc32(*crc, p, (uInt)n);
    return 0;
}

int cnb_net_load_weights(cnb_net *net, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cnb_error("%s: cannot open: %s", path, strerror(errno));
    uLong crc = crc32(0L, Z_NULL, 0);
    char magic[4];
    uint32_t version = 0, count = 0, want = 0, c32;
    int rc = 0;
    for (int i = 0; i < net->n; i++)
        want += (uint32_t)net->layers[i].layer->n_params;
    if (get(f, magic, 4, &crc) || memcmp(magic, WEIGHTS_MAGIC, 4) || get(f, &version, 4, &crc) ||
        version != WEIGHTS_VERSION || get(f, &count, 4, &crc) || count != want) {
        rc = cnb_error("%s: not a cnnbench weights file for this model (magic, version %u or "
                       "tensor count %u vs %u)", path, version, count, want);
        goto out;
    }
    for (int i = 0; i < net->n && !rc; i++) {
        cnb_net_layer *L = &net->layers[i];
        for (int p = 0; p < L->layer->n_params && !rc; p++) {
            char name[256], expect[256];
            uint16_t nl;
            uint64_t n;
            snprintf(expect, sizeof expect, "%s.%s", L->name, L->layer->params[p].name);
            if (get(f, &nl, 2, &crc) || nl >= sizeof name || get(f, name, nl, &crc) ||
                (name[nl] = '\0', strcmp(name, expect)) || get(f, &n, 8, &crc) ||
                n != L->layer->params[p].count || get(f, L->w[p], n * sizeof(float), &crc))
                rc = cnb_error("%s: tensor %s is missing, misnamed, mis-sized or truncated",
                               path, expect);
        }
    }
    if (!rc && (fread(&c32, 4, 1, f) != 1 || c32 != (uint32_t)crc))
        rc = cnb_error("%s: checksum mismatch: the file is damaged", path);
out:
    fclose(f);
    return rc;
}
