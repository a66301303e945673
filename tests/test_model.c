/*
 * test_model.c - model files: shapes, parameters and FLOPs against the formulas and the
 * seed's numbers, and every kind of bad input named with file and line.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "alloc.h"
#include "errors.h"
#include "experiment.h"
#include "log.h"
#include "net.h"
#include "testutil.h"

static const cnb_net_layer *layer(const cnb_net *net, const char *name)
{
    for (int i = 0; i < net->n; i++)
        if (strcmp(net->layers[i].name, name) == 0)
            return &net->layers[i];
    return NULL;
}

static size_t params_of(const cnb_net_layer *L)
{
    size_t n = 0;
    for (int p = 0; p < L->layer->n_params; p++)
        n += L->layer->params[p].count;
    return n;
}

#define ASSERT_SHAPE(net, name, C, H, W)                                                       \
    do {                                                                                       \
        const cnb_net_layer *L_ = layer(net, name);                                            \
        CU_ASSERT_PTR_NOT_NULL_FATAL(L_);                                                      \
        if (L_->out.c != (C) || L_->out.h != (H) || L_->out.w != (W))                          \
            fprintf(stderr, "\n  %s: %dx%dx%d, expected %dx%dx%d\n", name, L_->out.c,          \
                    L_->out.h, L_->out.w, C, H, W);                                            \
        CU_ASSERT(L_->out.c == (C) && L_->out.h == (H) && L_->out.w == (W));                   \
    } while (0)

static void test_lenet5_seed_numbers(void)
{
    cnb_net net;
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "lenet5.ini", NULL, NULL), 0);
    ASSERT_SHAPE(&net, "conv1", 6, 28, 28);
    ASSERT_SHAPE(&net, "pool1", 6, 14, 14);
    ASSERT_SHAPE(&net, "conv2", 16, 10, 10);
    ASSERT_SHAPE(&net, "pool2", 16, 5, 5);
    ASSERT_SHAPE(&net, "flatten", 400, 1, 1);
    ASSERT_SHAPE(&net, "fc1", 120, 1, 1);
    ASSERT_SHAPE(&net, "fc2", 84, 1, 1);
    ASSERT_SHAPE(&net, "fc3", 10, 1, 1);
    CU_ASSERT_EQUAL(cnb_net_param_count(&net), 61706);
    CU_ASSERT_EQUAL(params_of(layer(&net, "conv1")), 6 * 25 + 6);
    CU_ASSERT_EQUAL(params_of(layer(&net, "conv2")), 16 * 6 * 25 + 16);
    /* FLOPs: 2 * K * C * KH * KW * OH * OW for conv, 2 * in * out for fc */
    CU_ASSERT_DOUBLE_EQUAL(layer(&net, "conv1")->layer->flops, 2.0 * 6 * 1 * 25 * 28 * 28, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(layer(&net, "conv2")->layer->flops, 2.0 * 16 * 6 * 25 * 10 * 10, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(layer(&net, "fc1")->layer->flops, 2.0 * 400 * 120, 0.5);
    /* the seed's defaults: sigmoid and average pooling, Xavier initialisation */
    CU_ASSERT_STRING_EQUAL(layer(&net, "act1")->desc->hdr.name, "act.sigmoid");
    CU_ASSERT_STRING_EQUAL(layer(&net, "pool1")->desc->hdr.name, "pool.avg");
    CU_ASSERT_STRING_EQUAL(layer(&net, "conv1")->init, "xavier");
    cnb_net_free(&net);
    cnb_conf_free(&conf);

    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "lenet5.ini", "relu", "max"), 0);
    CU_ASSERT_STRING_EQUAL(layer(&net, "act1")->desc->hdr.name, "act.relu");
    CU_ASSERT_STRING_EQUAL(layer(&net, "pool2")->desc->hdr.name, "pool.max");
    CU_ASSERT_STRING_EQUAL(layer(&net, "conv1")->init, "he");
    CU_ASSERT_STRING_EQUAL(layer(&net, "fc3")->init, "xavier"); /* no activation after it */
    CU_ASSERT_EQUAL(cnb_net_param_count(&net), 61706);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

static void test_alexnet_seed_numbers(void)
{
    cnb_net net;
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "alexnet.ini", NULL, NULL), 0);
    ASSERT_SHAPE(&net, "conv1", 96, 55, 55);
    ASSERT_SHAPE(&net, "pool1", 96, 27, 27);
    ASSERT_SHAPE(&net, "conv2", 256, 27, 27);
    ASSERT_SHAPE(&net, "pool2", 256, 13, 13);
    ASSERT_SHAPE(&net, "conv3", 384, 13, 13);
    ASSERT_SHAPE(&net, "conv4", 384, 13, 13);
    ASSERT_SHAPE(&net, "conv5", 256, 13, 13);
    ASSERT_SHAPE(&net, "pool5", 256, 6, 6);
    ASSERT_SHAPE(&net, "flatten", 9216, 1, 1);
    ASSERT_SHAPE(&net, "fc6", 4096, 1, 1);
    ASSERT_SHAPE(&net, "fc7", 4096, 1, 1);
    ASSERT_SHAPE(&net, "fc8", 1000, 1, 1);
    CU_ASSERT_EQUAL(cnb_net_param_count(&net), 62378344);
    CU_ASSERT_EQUAL(params_of(layer(&net, "fc6")), 4096u * 9216u + 4096u);
    size_t fc = params_of(layer(&net, "fc6")) + params_of(layer(&net, "fc7")) +
                params_of(layer(&net, "fc8"));
    CU_ASSERT(fc > 58600000 && fc < 58700000); /* "about 58.6M" */
    CU_ASSERT_STRING_EQUAL(layer(&net, "norm1")->desc->hdr.name, "lrn");
    CU_ASSERT_STRING_EQUAL(layer(&net, "drop6")->desc->hdr.name, "dropout");
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

/* A slot switched off (lrn = none) is left out of the network the host runs, and the
 * layers after it keep their places' random streams. */
static void test_identity_left_out(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/experiments/models/alexnet.ini", CNB_SOURCE_ROOT);
    cnb_net with, without;
    cnb_conf c1, c2;
    cnb_vars none = {0};
    cnb_vars_set(&none, "lrn", "none");
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&with, &c1, test_registry(), path, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&without, &c2, test_registry(), path, &none), 0);
    CU_ASSERT_EQUAL(without.n, with.n - 2);
    for (int i = 0; i < without.n; i++) {
        const cnb_net_layer *L = &without.layers[i], *M = layer(&with, L->name);
        CU_ASSERT_STRING_NOT_EQUAL(L->desc->hdr.name, "none");
        CU_ASSERT_EQUAL(L->ctx.index, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(M);
        CU_ASSERT_EQUAL(L->slot, M->slot);
        CU_ASSERT_EQUAL(memcmp(&L->in, &M->in, sizeof L->in), 0);
    }
    CU_ASSERT_EQUAL(cnb_net_param_count(&without), cnb_net_param_count(&with));
    cnb_vars_free(&none);
    cnb_net_free(&with), cnb_net_free(&without);
    cnb_conf_free(&c1), cnb_conf_free(&c2);
}

/* A network built from model text into net and conf, both to be freed whatever the
 * status; the status, the message in cnb_last_error. */
static int load_text(cnb_net *net, cnb_conf *conf, const char *text)
{
    cnb_vars vars = {0};
    memset(net, 0, sizeof *net);
    int rc = cnb_conf_load_string(conf, "model.ini", text);
    if (rc == 0)
        rc = cnb_conf_substitute(conf, &vars);
    return rc ? rc : cnb_net_build(net, test_registry(), conf);
}

/* Build a model from text; returns the status and leaves the message in cnb_last_error. */
static int build_text(const char *text)
{
    cnb_conf conf;
    cnb_net net;
    int rc = load_text(&net, &conf, text);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    return rc;
}

static void expect_error(const char *text, const char *const *words)
{
    cnb_error_quiet(1);
    int rc = build_text(text);
    cnb_error_quiet(0);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    for (const char *const *w = words; *w; w++)
        if (!strstr(cnb_last_error(), *w)) {
            fprintf(stderr, "\n  error lacks '%s': %s\n", *w, cnb_last_error());
            CU_FAIL("error message incomplete");
        }
}

#define NET "[net]\nchannels = 1\nheight = 8\nwidth = 8\nclasses = 4\n"
#define TAIL "[flat]\ntype = flatten\n[fc]\ntype = fc\noutputs = 4\n[prob]\ntype = softmax\n"

/* Model text, built and bound to naive at batch 3, its parameters from seed 7, its input
 * and labels set; 0 when all went well. */
static int bind_text(cnb_net *net, cnb_conf *conf, const char *text)
{
    int rc = load_text(net, conf, text);
    if (rc == 0)
        rc = cnb_net_bind(net, "naive", 1, 3);
    if (rc == 0)
        rc = cnb_net_init_params(net, 7);
    const size_t n = 3 * cnb_shape_size(net->input);
    for (size_t i = 0; rc == 0 && i < n; i++)
        net->x[i] = (float)((i * 37 + 11) % 23) / 23.0f - 0.5f;
    for (int i = 0; rc == 0 && i < 3; i++)
        net->labels[i] = i;
    return rc;
}

/* flatten is a view (CNB_LAYER_VIEW): after a layer its y and dy are that layer's, and a
 * training step gives the same loss and gradients, bit for bit, as one that runs its
 * copies; as the first layer, whose input has no gradient, it copies. */
static void test_flatten_view(void)
{
    const char *text = NET "[c]\ntype = conv\nfilters = 2\nkernel = 3\n" TAIL;
    cnb_net v, c, first;
    cnb_conf vc, cc, fc;
    CU_ASSERT_EQUAL_FATAL(bind_text(&v, &vc, text), 0);
    CU_ASSERT_EQUAL_FATAL(bind_text(&c, &cc, text), 0);
    CU_ASSERT_EQUAL_FATAL(bind_text(&first, &fc, NET TAIL), 0);
    cnb_net_layer *F = &v.layers[1];
    CU_ASSERT_STRING_EQUAL(F->desc->hdr.name, "flatten");
    CU_ASSERT(F->view);
    CU_ASSERT_PTR_EQUAL(F->y, v.layers[0].y);
    CU_ASSERT_PTR_EQUAL(F->dy, v.layers[0].dy);
    CU_ASSERT(!first.layers[0].view);
    CU_ASSERT(first.layers[0].y && first.layers[0].y != first.x);
    /* what the view saves: flatten's y and dy (2 x 3 x 2 x 6 x 6 floats) */
    const size_t flat = 2 * 3 * cnb_shape_size(F->out) * sizeof(float);
    const size_t with_view = cnb_net_memory_of(&v).activations;

    /* c: the same network with flatten's copies run, on buffers of its own */
    cnb_net_layer *G = &c.layers[1];
    G->view = 0;
    G->y = cnb_alloc(flat / 2), G->dy = cnb_alloc(flat / 2);
    CU_ASSERT_FATAL(G->y && G->dy);
    CU_ASSERT_EQUAL(cnb_net_memory_of(&c).activations, with_view + flat);
    float lv, lc;
    CU_ASSERT_EQUAL(cnb_net_forward(&v, 1, &lv), 0);
    CU_ASSERT_EQUAL(cnb_net_forward(&c, 1, &lc), 0);
    CU_ASSERT_EQUAL(cnb_net_backward(&v), 0);
    CU_ASSERT_EQUAL(cnb_net_backward(&c), 0);
    CU_ASSERT(lv == lc && lv > 0);
    CU_ASSERT_EQUAL_FATAL(v.grad_floats, c.grad_floats);
    CU_ASSERT_EQUAL(memcmp(v.grad, c.grad, v.grad_floats * sizeof(float)), 0);
    float lf;
    CU_ASSERT_EQUAL(cnb_net_forward(&first, 1, &lf), 0);
    CU_ASSERT_EQUAL(memcmp(first.layers[0].y, first.x,
                           3 * cnb_shape_size(first.input) * sizeof(float)), 0);
    CU_ASSERT_EQUAL(cnb_net_backward(&first), 0);
    cnb_net_free(&v), cnb_net_free(&c), cnb_net_free(&first);
    cnb_conf_free(&vc), cnb_conf_free(&cc), cnb_conf_free(&fc);
}

static void test_malformed_line(void)
{
    const char *w[] = {"model.ini:6", "malformed", NULL};
    expect_error(NET "[conv1\n", w);
    const char *w2[] = {"model.ini:7", "malformed", NULL};
    expect_error(NET "[c]\nno-equals-sign\n", w2);

    /* a line too long for the parser is named, not cut into pieces that shift every
     * later line's number; one that just fits parses */
    char text[2048], comment[400];
    memset(comment, 'x', sizeof comment - 1);
    comment[sizeof comment - 1] = '\0';
    snprintf(text, sizeof text, NET "; %s\n[c]\nstrid = 2\n", comment);
    const char *w3[] = {"model.ini:6", "line longer than", NULL};
    expect_error(text, w3);
    snprintf(text, sizeof text, NET "; %.190s\n[c]\ntype = flatten\nstrid = 2\n", comment);
    const char *w4[] = {"model.ini:9", "unknown key 'strid'", NULL};
    expect_error(text, w4);
}

/* A section repeated right after itself is as much a duplicate as one further down. */
static void test_duplicate_section(void)
{
    const char *w[] = {"model.ini:8", "section [c] appears twice", NULL};
    expect_error(NET "[c]\ntype = flatten\n[c]\ntype = flatten\n" TAIL, w);
    const char *w2[] = {"model.ini:10", "section [c] appears twice", NULL};
    expect_error(NET "[c]\ntype = flatten\n[d]\ntype = flatten\n[c]\ntype = flatten\n" TAIL,
                 w2);
}

/* An indented line continues the value above it (joined with a space); one that reads as
 * a setting of its own ("filters = 2") is a slip of indentation, said as such. */
static void test_continuation_line(void)
{
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(cnb_conf_load_string(&conf, "exp.ini", "[sweep]\nonly = a=1;\n"
                                               "       a=2;\n\ta=3\nseed = 1\n"),
                          0);
    const cnb_section *s = cnb_conf_section(&conf, "sweep");
    CU_ASSERT_STRING_EQUAL(cnb_section_get(s, "only")->value, "a=1; a=2; a=3");
    CU_ASSERT_EQUAL(cnb_section_get(s, "only")->line, 2);
    CU_ASSERT_STRING_EQUAL(cnb_section_get(s, "seed")->value, "1");
    cnb_conf_free(&conf);
    const char *w[] = {"model.ini:8", "'filters = 2' is indented", "'type' (line 7)",
                       "remove the indentation", NULL};
    expect_error(NET "[c]\n  type = conv\n  filters = 2\nkernel = 3\n" TAIL, w);
}

/* none stands in for a switched-off layer: that layer's keys are accepted and ignored, so
 * `type = ${lrn}` can sit beside `alpha = ${lrn_alpha}`; any other layer still refuses a key
 * it does not know. */
static void test_stand_in_keys(void)
{
    CU_ASSERT_EQUAL(build_text(NET "[n]\ntype = none\nalpha = 0.4\nsize = 5\n" TAIL), 0);
    const char *w[] = {"model.ini:8", "unknown key 'alpha'", NULL};
    expect_error(NET "[n]\ntype = flatten\nalpha = 0.4\n" TAIL, w);
}

static void test_unknown_key(void)
{
    const char *w[] = {"model.ini:8", "unknown key 'strid'", "[c]", "stride", NULL};
    expect_error(NET "[c]\ntype = conv\nstrid = 2\nfilters = 2\nkernel = 3\n" TAIL, w);
}

static void test_undefined_variable(void)
{
    const char *w[] = {"model.ini:7", "undefined variable ${act}", "--set", NULL};
    expect_error(NET "[a]\ntype = act.${act}\n" TAIL, w);
}

static void test_unknown_layer_type(void)
{
    const char *w[] = {"model.ini:7", "unknown layer type 'pool.median'", "pool.max", "conv",
                       NULL};
    expect_error(NET "[p]\ntype = pool.median\nkernel = 2\n" TAIL, w);
}

static void test_impossible_geometry(void)
{
    const char *w[] = {"model.ini:8", "[p]", "larger than the padded input", NULL};
    expect_error(NET "[p]\ntype = pool.max\nkernel = 9\n" TAIL, w);
    const char *w2[] = {"model.ini:8", "filters must be >= 1", NULL};
    expect_error(NET "[c]\ntype = conv\nfilters = 0\nkernel = 3\n" TAIL, w2);
    const char *w3[] = {"model.ini:7", "needs the key 'kernel'", NULL};
    expect_error(NET "[c]\ntype = conv\nfilters = 2\n" TAIL, w3);
    const char *w4[] = {"model.ini:9", "expected a whole number", NULL};
    expect_error(NET "[c]\ntype = conv\nfilters = 2\nkernel = three\n" TAIL, w4);
}

static void test_structure_errors(void)
{
    const char *w[] = {"no [net] section", NULL};
    expect_error("[c]\ntype = flatten\n", w);
    const char *w2[] = {"last layer must be a loss layer", NULL};
    expect_error(NET "[flat]\ntype = flatten\n", w2);
    const char *w3[] = {"gives 5 outputs", "classes = 4", NULL};
    expect_error(NET "[flat]\ntype = flatten\n[fc]\ntype = fc\noutputs = 5\n[prob]\n"
                     "type = softmax\n", w3);
    const char *w4[] = {"model.ini:8", "already set on line 7", NULL};
    expect_error(NET "[c]\ntype = conv\ntype = fc\n", w4);
    /* every layer left out (CNB_LAYER_IDENTITY): nothing to run, said before anything */
    const char *w5[] = {"model.ini", "switched-off slot", "no layer to run", NULL};
    expect_error(NET "[l]\ntype = none\nzen = 5\n", w5);
}

/* (I - K + 2P) not divisible by S: a warning naming the line, floor() as the formula says. */
static void test_indivisible_stride_warns(void)
{
    const char *text = "[net]\nchannels = 3\nheight = 224\nwidth = 224\nclasses = 4\n"
                       "[conv1]\ntype = conv\nfilters = 4\nkernel = 11\nstride = 4\n" TAIL;
    cnb_conf conf;
    cnb_net net;
    cnb_log_set_level(CNB_LOG_ERROR);
    CU_ASSERT_EQUAL_FATAL(cnb_conf_load_string(&conf, "alex224.ini", text), 0);
    CU_ASSERT_EQUAL(cnb_net_build(&net, test_registry(), &conf), 0);
    cnb_log_set_level(CNB_LOG_INFO);
    CU_ASSERT_EQUAL(net.layers[0].out.h, 54); /* floor(213 / 4) + 1, not 55 */
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_warning(), "alex224.ini:10"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_warning(), "not divisible by stride 4"));
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

static void test_experiment_errors(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/exp.ini", test_tmpdir());
    cnb_experiment e;
    cnb_error_quiet(1);
    test_write_file(path, "[experiment]\nmodel = m.ini\n[train]\nepochs = 3\nlearning_rate = 0.1\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "exp.ini:5: unknown key 'learning_rate'"));
    cnb_experiment_free(&e);
    test_write_file(path, "[experiment]\nmodel = m.ini\n[train]\nepochs = many\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "exp.ini:4: [train] epochs = 'many'"));
    cnb_experiment_free(&e);
    test_write_file(path, "[experiment]\nmodel = m.ini\n[optimiser]\nlr = 1\n");
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "unknown section [optimiser]"));
    cnb_experiment_free(&e);
    test_write_file(path, "[experiment]\nmodel = m.ini\n");
    char *bad_set[] = {"epochs=3"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, bad_set, 1), CNB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "section.key=value"));
    cnb_experiment_free(&e);
    /* a key from the command line is blamed on its --set, not on "exp.ini:0" */
    char *unknown_set[] = {"train.nosuch=1"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, unknown_set, 1), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "--set train.nosuch=1: unknown key 'nosuch' in [train]");
    cnb_experiment_free(&e);
    char *range_set[] = {"train.lr=1e3"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, range_set, 1), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "--set train.lr=1e3: [train] lr = '1e3'");
    cnb_experiment_free(&e);
    char *section_set[] = {"optimiser.lr=1"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, section_set, 1), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "--set optimiser.lr=1: unknown section [optimiser]");
    cnb_experiment_free(&e);
    char *axis_set[] = {"sweep.seed=1,x"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, axis_set, 1), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "--set sweep.seed=1,x: [sweep] seed value 'x'");
    cnb_experiment_free(&e);
    char *good_set[] = {"train.epochs=3", "vars.act=relu"};
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, good_set, 2), 0);
    CU_ASSERT_EQUAL(e.train.epochs, 3);
    CU_ASSERT_STRING_EQUAL(cnb_vars_get(&e.vars, "act"), "relu");
    cnb_experiment_free(&e);
    cnb_error_quiet(0);
}

/* The bench's FLOPs of a convolution count only the taps inside its input: LeNet-5's
 * conv1 (pad 2) has 134 of 140 taps per axis inside, conv2 (no padding) all of them. */
static void test_inside_taps_flops(void)
{
    cnb_net net;
    cnb_conf conf;
    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "lenet5.ini", "relu", "max"), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "naive", 1, 2), 0);
    int c1 = -1, c2 = -1;
    for (int i = 0; i < net.n; i++)
        c1 = strcmp(net.layers[i].name, "conv1") == 0 ? i : c1,
        c2 = strcmp(net.layers[i].name, "conv2") == 0 ? i : c2;
    CU_ASSERT_DOUBLE_EQUAL(cnb_net_layer_flops(&net, c1), 2.0 * 6 * 1 * 134 * 134, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(cnb_net_layer_flops(&net, c2), net.layers[c2].layer->flops, 0.5);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

/* The executable turns bad input into exit status 2 with a message, never a crash. */
/* "direct+naive": conv (and, with AVX-512, fc) from the partial backend, every other op
 * from the next in the chain (without fused runs, whose layers make no kernels of their
 * own); an unknown member is named. */
static void test_backend_chain(void)
{
    cnb_net net;
    cnb_conf conf;
    if (!cnb_registry_backend(test_registry(), "direct")) {
        fprintf(stderr, "\n  (no 'direct' backend built: chain test skipped)\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "lenet5.ini", "relu", "max"), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "direct+naive:nofuse", 1, 2), 0);
    CU_ASSERT_EQUAL(net.n_chain, 2); /* naive once, not twice */
    CU_ASSERT_STRING_EQUAL(layer(&net, "conv1")->ctx.ran_on, "direct");
    CU_ASSERT_STRING_EQUAL(layer(&net, "conv2")->ctx.ran_on, "direct");
    CU_ASSERT_STRING_EQUAL(layer(&net, "pool1")->ctx.ran_on, "naive");
    CU_ASSERT_STRING_EQUAL(layer(&net, "fc1")->ctx.ran_on,
                           test_direct_avx512() ? "direct" : "naive");
    CU_ASSERT_STRING_EQUAL(layer(&net, "prob")->ctx.ran_on, "naive");
    cnb_net_free(&net);
    cnb_conf_free(&conf);

    /* A native layout does not keep a layer from an earlier backend: in the small AlexNet
     * onednn's pool1 would hand conv2 (5x5, 32 -> 64 channels) its nChw16c, but winograd
     * comes first, takes it (in a fused run with its ReLU), and gets it on NCHW; conv1
     * (one input channel) stays onednn's. */
    if (cnb_registry_backend(test_registry(), "winograd")) {
        CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                              "alexnet-small.ini", "relu", "max"), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "winograd+onednn", 1, 2), 0);
        CU_ASSERT_STRING_EQUAL(layer(&net, "pool1")->ctx.ran_on, "onednn");
        CU_ASSERT_EQUAL(layer(&net, "pool1")->ctx.out.id, CNB_LAYOUT_NCHW);
        CU_ASSERT_STRING_EQUAL(layer(&net, "conv2")->fused_on, "winograd");
        CU_ASSERT_STRING_EQUAL(layer(&net, "conv3")->fused_on, "winograd");
        CU_ASSERT_STRING_EQUAL(layer(&net, "conv1")->ctx.ran_on, "onednn");
        cnb_net_free(&net);
        cnb_conf_free(&conf);
    }

    CU_ASSERT_EQUAL_FATAL(test_model_load(&net, &conf, test_registry(),
                                          "lenet5.ini", "relu", "max"), 0);
    cnb_error_quiet(1);
    CU_ASSERT_NOT_EQUAL(cnb_net_bind(&net, "direct+nosuch", 1, 2), 0);
    cnb_error_quiet(0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cnb_last_error(), "backend 'nosuch' (in a '+' chain)"));
    cnb_net_free(&net);
    cnb_conf_free(&conf);
}

/* The kernel bytes of spec's fused runs on LeNet-5 at batch 4 against the same spec with
 * ":nofuse": the fused net holds its runs' kernels, the other layers' own kernels (as the
 * unfused net holds them) and its backends' state, and nothing for the layers inside a
 * run, which make no kernels of their own; it still trains. */
static void check_fused_kernel_bytes(const char *spec)
{
    cnb_net f, u;
    cnb_conf fc, uc;
    char nofuse[64], runs[256];
    snprintf(nofuse, sizeof nofuse, "%s:nofuse", spec);
    CU_ASSERT_EQUAL_FATAL(test_model_load(&f, &fc, test_registry(), "lenet5.ini", "relu",
                                          "max"), 0);
    CU_ASSERT_EQUAL_FATAL(test_model_load(&u, &uc, test_registry(), "lenet5.ini", "relu",
                                          "max"), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&f, spec, 1, 4), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&u, nofuse, 1, 4), 0);
    CU_ASSERT(cnb_net_fused_runs(&f, runs, sizeof runs) > 0);
    size_t want = 0, bytes;
    for (int i = 0; i < f.n; i++) {
        const cnb_net_layer *L = &f.layers[i];
        if (L->fused_on)
            CU_ASSERT_PTR_NULL(L->ctx.kernel);
        if (L->fuse_n)
            want += cnb_registry_backend(test_registry(), L->fused_on)->kernel_bytes(
                L->fuse_kernel);
        if (!L->fused_on && cnb_net_layer_kernel_bytes(&u, i, &bytes))
            want += bytes;
    }
    for (int c = 0; c < f.n_chain; c++)
        if (CNB_BACKEND_FIELD(f.chain[c], state_bytes))
            want += f.chain[c]->state_bytes(f.chain_state[c]);
    const cnb_net_memory m = cnb_net_memory_of(&f);
    CU_ASSERT(m.kernels_known);
    if (m.kernels != want)
        fprintf(stderr, "\n  %s (runs %s): kernel bytes %zu, expected %zu\n", spec, runs,
                m.kernels, want);
    CU_ASSERT_EQUAL(m.kernels, want);
    float loss;
    CU_ASSERT_EQUAL(cnb_net_init_params(&f, 7), 0);
    CU_ASSERT_EQUAL(cnb_net_forward(&f, 1, &loss), 0);
    CU_ASSERT_EQUAL(cnb_net_backward(&f), 0);
    cnb_net_free(&f);
    cnb_net_free(&u);
    cnb_conf_free(&fc);
    cnb_conf_free(&uc);
}

static void test_fused_kernel_bytes(void)
{
    if (!cnb_registry_backend(test_registry(), "direct")) {
        fprintf(stderr, "\n  (no 'direct' backend built: fused kernel bytes not checked)\n");
        return;
    }
    check_fused_kernel_bytes("direct");
    if (cnb_registry_backend(test_registry(), "onednn"))
        check_fused_kernel_bytes("direct+onednn:nchw");
}

/* A file that cannot be read is CNB_EIO (exit status 2, like bad input), said with its path. */
static void test_unreadable_file(void)
{
    const char *dir = test_tmpdir();
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.ini", dir);
    cnb_conf c;
    cnb_error_quiet(1);
    CU_ASSERT_EQUAL(cnb_conf_load(&c, missing), CNB_EIO);
    CHECK_MSG(cnb_last_error(), "none.ini: cannot open: No such file");
    cnb_conf_free(&c);
    CU_ASSERT_EQUAL(cnb_conf_load(&c, dir), CNB_EIO);
    CHECK_MSG(cnb_last_error(), ": is a folder; give the .ini file in it");
    cnb_conf_free(&c);
    cnb_error_quiet(0);
}

static void test_cli_exit_status(void)
{
    char cmd[2048], model[512];
    const char *dir = test_tmpdir();
    snprintf(model, sizeof model, "%s/bad.ini", dir);
    test_write_file(model, NET "[p]\ntype = pool.max\nkernel = 9\n" TAIL);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' summary '%s' 2>'%s/err.txt'", CNB_BUILD_ROOT,
             model, dir);
    int status = system(cmd);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    snprintf(cmd, sizeof cmd, "grep -q 'bad.ini:8' '%s/err.txt'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' frobnicate 2>/dev/null", CNB_BUILD_ROOT);
    status = system(cmd);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' summary '%s/experiments/models/lenet5.ini' "
             "| grep -q '61,706 parameters'", CNB_BUILD_ROOT, CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' summary '%s/experiments/models/alexnet.ini' "
             "| grep -q 'pool5 .* 6x6x256 .* 9216'", CNB_BUILD_ROOT, CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL(system(cmd), 0); /* the seed's H x W x C notation */
}

void suite_model(void)
{
    static const test_case cases[] = {
        {"LeNet-5 shapes, parameters, FLOPs", test_lenet5_seed_numbers},
        {"AlexNet shapes and parameters", test_alexnet_seed_numbers},
        {"a switched-off slot is left out, the others keep their streams",
         test_identity_left_out},
        {"flatten is a view of its input, a step the same as with its copies",
         test_flatten_view},
        {"malformed line", test_malformed_line},
        {"unknown key", test_unknown_key},
        {"an indented line continues the value above", test_continuation_line},
        {"none takes the keys of the layer it stands in for", test_stand_in_keys},
        {"a section twice, adjacent or not", test_duplicate_section},
        {"undefined ${var}", test_undefined_variable},
        {"unknown layer type lists plugins", test_unknown_layer_type},
        {"impossible geometry and bad values", test_impossible_geometry},
        {"model structure errors", test_structure_errors},
        {"indivisible stride warns (224 vs 227)", test_indivisible_stride_warns},
        {"experiment file errors and --set", test_experiment_errors},
        {"an unreadable file is CNB_EIO", test_unreadable_file},
        {"cnnbench exits 2 on bad input", test_cli_exit_status},
        {"a backend chain takes each kernel from the first that has it", test_backend_chain},
        {"a convolution's FLOPs count only the taps inside its input", test_inside_taps_flops},
        {"a fused run's layers hold no kernels of their own", test_fused_kernel_bytes},
        {NULL, NULL},
    };
    test_add_suite("model", cases);
}
