/*
 * test_plugins.c - the loader accepts good plugins and refuses each broken fixture
 * (tests/fixtures/bad_plugin.c, old_backend.c) with a message naming the file and the
 * reason; the host refuses a layer or kernel of the wrong struct_size
 * (tests/fixtures/broken_kernels.c) naming the plugin and what to rebuild.
 */
#include <stddef.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "net.h"
#include "registry.h"
#include "testutil.h"

#define FIXTURE(name) CNB_FIXTURE_DIR "/fixture-" name ".so"

static void expect_refusal(const char *path, const char *const *words)
{
    cnb_registry r;
    char err[1024] = "";
    cnb_registry_init(&r);
    int rc = cnb_registry_load_file(&r, path, err, sizeof err);
    CU_ASSERT(rc != 0);
    CU_ASSERT_EQUAL(r.n, 0); /* nothing of a refused file stays */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strrchr(path, '/') + 1));
    for (const char *const *w = words; *w; w++)
        if (!strstr(err, *w)) {
            fprintf(stderr, "\n  message lacks '%s': %s\n", *w, err);
            CU_FAIL("refusal message incomplete");
        }
    cnb_registry_free(&r);
}

static void test_good_fixture_loads(void)
{
    cnb_registry r;
    char err[1024] = "";
    cnb_registry_init(&r);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&r, FIXTURE("good"), err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_layer(&r, "fixture.good"));
    CU_ASSERT_PTR_NULL(cnb_registry_layer(&r, "fixture.other"));
    /* the same file twice is one plugin, not a duplicate */
    CU_ASSERT_EQUAL(cnb_registry_load_file(&r, FIXTURE("good"), err, sizeof err), 0);
    CU_ASSERT_EQUAL(r.n, 1);
    cnb_registry_free(&r);
}

/* A backend built against ABI 1.x, before kernels and layers carried their size. */
static void test_old_major(void)
{
    const char *words[] = {"backend plugin 'fixture-old' was built against backend ABI 1.1, "
                           "this host takes 2.x: rebuild it against the installed cnnbench "
                           "headers", NULL};
    expect_refusal(FIXTURE("old-backend"), words);
}

/* The fixtures' versions follow the host's (tests/fixtures/bad_plugin.c), and so do the
 * words their refusals must hold. */
static void test_newer_major(void)
{
    char built[128];
    snprintf(built, sizeof built, "built against layer ABI %d.%d, this host takes %d.x",
             CNB_LAYER_ABI_MAJOR + 1, CNB_LAYER_ABI_MINOR, CNB_LAYER_ABI_MAJOR);
    const char *words[] = {built, "needs a newer cnnbench", NULL};
    expect_refusal(FIXTURE("bad-major"), words);
}

static void test_newer_minor(void)
{
    char needs[128];
    snprintf(needs, sizeof needs, "needs layer ABI %d.%d, newer than this host's %d.%d",
             CNB_LAYER_ABI_MAJOR, CNB_LAYER_ABI_MINOR + 1, CNB_LAYER_ABI_MAJOR,
             CNB_LAYER_ABI_MINOR);
    const char *words[] = {needs, NULL};
    expect_refusal(FIXTURE("newer-minor"), words);
}

static void test_short_descriptor(void)
{
    char defines[64];
    snprintf(defines, sizeof defines, "bytes but ABI %d.%d defines", CNB_BACKEND_ABI_MAJOR,
             CNB_BACKEND_ABI_MINOR);
    const char *words[] = {"descriptor is", defines, "rebuild", NULL};
    expect_refusal(FIXTURE("short-backend"), words);
}

/* A field a later minor appends reads as NULL from a descriptor that ends before it (the
 * loader takes an older minor's shorter descriptor; 1.0's ended before layout_of). */
static void test_optional_fields(void)
{
    cnb_backend_desc be = {.layout_of = (void *)1, .library_pass = (void *)1, .park = (void *)1};
    be.hdr.struct_size = offsetof(cnb_backend_desc, layout_of);
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, layout_of));
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, park));
    be.hdr.struct_size = offsetof(cnb_backend_desc, park);
    CU_ASSERT_PTR_NOT_NULL(CNB_BACKEND_FIELD(&be, library_pass));
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, park));
    be.hdr.struct_size = sizeof be;
    CU_ASSERT_PTR_NOT_NULL(CNB_BACKEND_FIELD(&be, park));
    be.max_threads = 1; /* 2.1's */
    CU_ASSERT_EQUAL(CNB_BACKEND_FIELD_OR(&be, max_threads, 0u), 1);
    be.hdr.struct_size = offsetof(cnb_backend_desc, max_threads);
    CU_ASSERT_EQUAL(CNB_BACKEND_FIELD_OR(&be, max_threads, 0u), 0);
    be.fuse_create = (void *)1; /* 2.2's */
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, fuse_create));
    be.hdr.struct_size = offsetof(cnb_backend_desc, fuse_create);
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, fuse_create));
    be.hdr.struct_size = sizeof be;
    CU_ASSERT_PTR_NOT_NULL(CNB_BACKEND_FIELD(&be, fuse_create));
    be.kernel_bytes = (void *)1, be.state_bytes = (void *)1; /* 2.3's */
    CU_ASSERT_PTR_NOT_NULL(CNB_BACKEND_FIELD(&be, state_bytes));
    be.hdr.struct_size = offsetof(cnb_backend_desc, kernel_bytes);
    CU_ASSERT_PTR_NOT_NULL(CNB_BACKEND_FIELD(&be, fuse_create));
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, kernel_bytes));
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(&be, state_bytes));
}

/* A backend built against 2.1 loads, with its max_threads but no fuse_create: a network on
 * it binds (the fuse_create set past its descriptor's end would fail the bind) and fuses
 * no run; ":nofuse" is a suffix the spec checks accept. */
static void test_v21_backend(void)
{
    cnb_registry r;
    char err[1024] = "", model[600];
    cnb_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&r, FIXTURE("backend-2.1"), err, sizeof err), 0);
    cnb_registry_scan_default(&r);
    const cnb_backend_desc *be = cnb_registry_backend(&r, "fixture-v21");
    CU_ASSERT_PTR_NOT_NULL_FATAL(be);
    CU_ASSERT_EQUAL(CNB_BACKEND_FIELD_OR(be, max_threads, 0u), 1);
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(be, fuse_create));
    CU_ASSERT_EQUAL(cnb_backend_spec_check(&r, "fixture-v21:nchw:nofuse", "test"), 0);
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(&r, "fixture-v21:nofuse"), 1);
    cnb_net net;
    cnb_conf conf;
    cnb_vars vars = {0};
    CU_ASSERT_EQUAL_FATAL(cnb_vars_set(&vars, "act", "relu"), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_vars_set(&vars, "pool", "max"), 0);
    snprintf(model, sizeof model, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&net, &conf, &r, model, &vars), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net, 1), 0);
    CU_ASSERT_EQUAL(cnb_net_bind(&net, "fixture-v21", 1, 2), 0);
    char runs[256];
    CU_ASSERT_EQUAL(cnb_net_fused_runs(&net, runs, sizeof runs), 0);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    cnb_vars_free(&vars);
    cnb_registry_free(&r);
}

/* LeNet-5 (`act`, `pool`) loaded from `reg` into net and conf, bound on `backend` at
 * batch 4: 0, or the bind's error. */
static int bind_lenet(cnb_net *net, cnb_conf *conf, const cnb_registry *reg,
                      const char *backend, const char *act, const char *pool)
{
    char model[600];
    cnb_vars vars = {0};
    snprintf(model, sizeof model, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    int rc = cnb_vars_set(&vars, "act", act);
    if (rc == 0)
        rc = cnb_vars_set(&vars, "pool", pool);
    if (rc == 0)
        rc = cnb_net_load(net, conf, reg, model, &vars);
    if (rc == 0)
        rc = cnb_net_init_params(net, 1);
    if (rc == 0)
        rc = cnb_net_bind(net, backend, 1, 4);
    cnb_vars_free(&vars);
    return rc;
}

/* A registry with the default scan and the fixture file at `path`. */
static void fixture_registry(cnb_registry *r, const char *path)
{
    char err[1024] = "";
    cnb_registry_init(r);
    CU_ASSERT_EQUAL(cnb_registry_load_file(r, path, err, sizeof err), 0);
    cnb_registry_scan_default(r);
}

/* What LeNet-5 (sigmoid, average pooling) holds at batch 4, worked out from its shapes:
 * activations, the batch (4 x 784 floats) and labels (4 x 4 bytes) and each layer's output
 * and its gradient, 2 x 4 x 4 bytes a float of 14,612 (conv1 and act1 4,704 each, pool1
 * 1,176, conv2 and act2 1,600, pool2 400, fc1 and act3 120, fc2 and act4 84, fc3 and
 * prob 10; flatten's are pool2's, CNB_LAYER_VIEW); parameters, 61,706 weights and their momentum, and the gradients with
 * each tensor rounded up to 16 floats (61,760). On fixture.memory (tests/fixtures/
 * broken_kernels.c) each fc layer's kernel says it holds its (4, K) floats of scratch and
 * the state 3,000 bytes for them all: the network's kernel bytes are those and naive's
 * (which holds no workspace for sigmoid and average pooling, but its kernels' structs),
 * each layer's as its backend says. */
static void test_network_memory(void)
{
    cnb_registry r;
    cnb_net net;
    cnb_conf conf;
    fixture_registry(&r, FIXTURE("memory"));
    CU_ASSERT_EQUAL_FATAL(bind_lenet(&net, &conf, &r, "fixture.memory", "sigmoid", "avg"), 0);
    const cnb_net_memory m = cnb_net_memory_of(&net);
    CU_ASSERT_EQUAL(m.activations, 4 * 784 * 4 + 4 * 4 + 2 * 4 * 4 * 14612);
    CU_ASSERT_EQUAL(m.params, 2 * 61706 * 4 + 61760 * 4);
    CU_ASSERT(m.kernels_known);
    size_t sum = 0, bytes, naive = 0;
    for (int i = 0; i < net.n; i++) {
        CU_ASSERT(cnb_net_layer_kernel_bytes(&net, i, &bytes));
        const cnb_net_layer *L = &net.layers[i];
        if (!strncmp(L->name, "fc", 2)) {
            CU_ASSERT_EQUAL(bytes, 4 * sizeof(float) * (size_t)L->out.c);
        } else if (!strcmp(L->name, "flatten")) {
            CU_ASSERT_EQUAL(bytes, 0); /* no kernel */
        } else {
            naive = naive ? naive : bytes;
            CU_ASSERT_EQUAL(bytes, naive); /* naive's kernels alike, none with workspace */
        }
        sum += bytes;
    }
    CU_ASSERT(naive > 0);
    CU_ASSERT_EQUAL(sum, 4 * sizeof(float) * (120 + 84 + 10) + 9 * naive);
    CU_ASSERT_EQUAL(m.kernels, sum + 3000);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    cnb_registry_free(&r);
}

/* A backend built against 2.2 loads and makes its ReLU kernels, but cannot say what they
 * hold (its kernel_bytes lies past its descriptor's end): those layers' bytes, and the
 * network's, are unknown; naive's layers' are known. */
static void test_v22_backend(void)
{
    cnb_registry r;
    cnb_net net;
    cnb_conf conf;
    fixture_registry(&r, FIXTURE("backend-2.2"));
    const cnb_backend_desc *be = cnb_registry_backend(&r, "fixture-v22");
    CU_ASSERT_PTR_NOT_NULL_FATAL(be);
    CU_ASSERT_PTR_NULL(CNB_BACKEND_FIELD(be, kernel_bytes));
    CU_ASSERT_EQUAL_FATAL(bind_lenet(&net, &conf, &r, "fixture-v22", "relu", "max"), 0);
    size_t bytes;
    for (int i = 0; i < net.n; i++) {
        const int relu = !strncmp(net.layers[i].name, "act", 3);
        CU_ASSERT_STRING_EQUAL(net.layers[i].ctx.ran_on ? net.layers[i].ctx.ran_on : "host",
                               relu ? "fixture-v22"
                               : !strcmp(net.layers[i].name, "flatten") ? "host" : "naive");
        CU_ASSERT_EQUAL(cnb_net_layer_kernel_bytes(&net, i, &bytes), !relu);
    }
    const cnb_net_memory m = cnb_net_memory_of(&net);
    CU_ASSERT_FALSE(m.kernels_known);
    CU_ASSERT(m.kernels > 0); /* naive's, the known part */
    float loss;
    CU_ASSERT_EQUAL(cnb_net_forward(&net, 1, &loss), 0);
    CU_ASSERT_EQUAL(cnb_net_backward(&net), 0);
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    cnb_registry_free(&r);
}

/* A backend built against 2.0 loads, and uses as many threads as it is given; a spec
 * ("a+b:nchw") uses as many as its most threaded backend, naive one. */
static void test_max_threads(void)
{
    cnb_registry r;
    char err[1024] = "";
    cnb_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&r, FIXTURE("backend-2.0"), err, sizeof err), 0);
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(&r, "fixture-v20"), 0);
    cnb_registry_free(&r);
    const cnb_registry *reg = test_registry();
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(reg, "naive"), 1);
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(reg, "naive:nchw"), 1);
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(reg, "onednn"), 0);
    CU_ASSERT_EQUAL(cnb_backend_spec_max_threads(reg, "naive+openblas"), 0);
}

/* A layer or a kernel whose struct_size is not its ABI's is refused where the host
 * receives it, naming the plugin, its file and what to do, before any of its entries is
 * called; the macros' own plugins (everything else in these suites) pass. */
static void test_struct_sizes(void)
{
    cnb_registry reg;
    char err[1024], model[512];
    cnb_registry_init(&reg);
    CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&reg, FIXTURE("layer-size"), err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&reg, FIXTURE("kernel-size"), err, sizeof err), 0);
    cnb_registry_scan_default(&reg);
    cnb_error_quiet(1);

    cnb_net net;
    cnb_conf conf;
    snprintf(model, sizeof model, "%s/layersize.ini", test_tmpdir());
    test_write_file(model, "[net]\nchannels = 1\nheight = 4\nwidth = 4\nclasses = 16\n"
                           "[x]\ntype = fixture.layersize\n[prob]\ntype = softmax\n");
    CU_ASSERT_NOT_EQUAL(cnb_net_load(&net, &conf, &reg, model, NULL), 0);
    char want[256];
    snprintf(want, sizeof want, "of %zu bytes, but layer ABI %d.%d defines %zu",
             sizeof(cnb_layer) + sizeof(cnb_param_spec), CNB_LAYER_ABI_MAJOR,
             CNB_LAYER_ABI_MINOR, sizeof(cnb_layer));
    CHECK_MSG(cnb_last_error(), "layersize.ini:7: [x] layer plugin 'fixture.layersize' (");
    CHECK_MSG(cnb_last_error(), "fixture-layer-size.so) made a cnb_layer");
    CHECK_MSG(cnb_last_error(), want);
    CHECK_MSG(cnb_last_error(), "rebuild it against the installed ones");
    cnb_net_free(&net);
    cnb_conf_free(&conf);

    snprintf(model, sizeof model, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    CU_ASSERT_EQUAL_FATAL(cnb_net_load(&net, &conf, &reg, model, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net, 1), 0);
    CU_ASSERT_NOT_EQUAL(cnb_net_bind(&net, "fixture.kernelsize", 1, 4), 0);
    CHECK_MSG(cnb_last_error(), "backend 'fixture.kernelsize' (");
    CHECK_MSG(cnb_last_error(), "fixture-kernel-size.so) made a kernel without its struct_size: "
                                "fill it with CNB_KERNEL_INIT()");
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    cnb_error_quiet(0);
    cnb_registry_free(&reg);
}

static void test_missing_entry(void)
{
    const char *words[] = {"missing entry symbol", "cnb_plugin_entry", NULL};
    expect_refusal(FIXTURE("no-entry"), words);
}

static void test_empty_fields(void)
{
    const char *name[] = {"empty required field 'name'", NULL};
    const char *create[] = {"empty required field 'create'", NULL};
    const char *size[] = {"bytes", "defines", NULL};
    expect_refusal(FIXTURE("empty-name"), name);
    expect_refusal(FIXTURE("no-create"), create);
    expect_refusal(FIXTURE("small-struct"), size);
}

static void test_duplicate_name(void)
{
    cnb_registry r;
    char err[1024] = "";
    cnb_registry_init(&r);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&r, FIXTURE("dup-a"), err, sizeof err), 0);
    CU_ASSERT(cnb_registry_load_file(&r, FIXTURE("dup-b"), err, sizeof err) != 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fixture-dup-b.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fixture-dup-a.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already taken"));
    CU_ASSERT_EQUAL(r.n, 1);
    cnb_registry_free(&r);
}

static void test_not_a_plugin(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/junk.so", test_tmpdir());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    const char *words[] = {"not a loadable plugin", NULL};
    expect_refusal(path, words);
    cnb_registry r;
    char err[1024];
    cnb_registry_init(&r);
    CU_ASSERT(cnb_registry_load_file(&r, "/nonexistent/x.so", err, sizeof err) != 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.so"));
    cnb_registry_free(&r);
}

/* A folder scan keeps going past refused files. */
static void test_scan_survives_bad_files(void)
{
    cnb_registry r;
    cnb_registry_init(&r);
    cnb_log_set_level(CNB_LOG_NOTHING); /* the refusals are expected here */
    cnb_registry_scan_dir(&r, CNB_FIXTURE_DIR);
    cnb_log_set_level(CNB_LOG_INFO);
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_layer(&r, "fixture.good"));
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_layer(&r, "fixture.dup"));
    /* bad-major, newer-minor, no-entry, empty-name, no-create, small-struct, old-backend,
     * short-backend, no-ops, and the second of dup-a/dup-b */
    CU_ASSERT_EQUAL(r.refused, 10);
    cnb_registry_free(&r);
}

/* `cnnbench plugins` says what each backend's threads and optional entries mean, not
 * only their names. */
static void test_listing_explains(void)
{
    char out[600], cmd[1400];
    snprintf(out, sizeof out, "%s/plugins.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' plugins >'%s' 2>&1", CNB_BUILD_ROOT, out);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    static char text[1 << 16];
    FILE *f = fopen(out, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    const char *naive = strstr(text, "\nbackend  naive "), *ob = strstr(text, "\nbackend  openblas ");
    const char *direct = strstr(text, "\nbackend  direct ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(naive);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_PTR_NOT_NULL_FATAL(direct);
    CHECK_MSG(naive, "threads: 1 at most (single-threaded); bench and check time it at no more");
    CHECK_MSG(ob, "threads: as many as it is given");
    CHECK_MSG(ob, "park: the bench lets its idle threads sleep while it times other backends");
    CHECK_MSG(ob, "library passes: can time its library calls alone");
    CHECK_MSG(direct, "fused runs: may run a conv or fc layer and the layers after it as one "
                      "kernel (':nofuse' turns it off)");
}

static void test_default_scan_finds_everything(void)
{
    static const char *const layers[] = {"conv", "fc", "pool.avg", "pool.max", "act.sigmoid",
                                         "act.relu", "lrn", "dropout", "flatten", "none",
                                         "softmax", NULL};
    cnb_registry r;
    cnb_registry_init(&r);
    cnb_registry_scan_default(&r);
    CU_ASSERT_EQUAL(r.refused, 0);
    const cnb_backend_desc *naive = cnb_registry_backend(&r, "naive");
    CU_ASSERT_PTR_NOT_NULL_FATAL(naive);
    CU_ASSERT_EQUAL(naive->ops, CNB_OPS_ALL);
    for (const char *const *l = layers; *l; l++)
        if (!cnb_registry_layer(&r, *l)) {
            fprintf(stderr, "\n  layer plugin %s not found\n", *l);
            CU_FAIL("layer plugin missing");
        }
    cnb_registry_free(&r);
}

void suite_plugins(void)
{
    static const test_case cases[] = {
        {"a valid plugin loads once", test_good_fixture_loads},
        {"refuses an older ABI major, saying to rebuild", test_old_major},
        {"refuses a newer ABI major", test_newer_major},
        {"refuses a newer ABI minor", test_newer_minor},
        {"refuses a descriptor shorter than its ABI", test_short_descriptor},
        {"a field of a later minor reads NULL from a shorter descriptor", test_optional_fields},
        {"max_threads: a 2.0 backend's is 0, naive's 1, a chain's", test_max_threads},
        {"a 2.1 backend loads and fuses nothing", test_v21_backend},
        {"a 2.2 backend loads; what its kernels hold is unknown", test_v22_backend},
        {"a network's memory: the host's tensors, every kernel's bytes", test_network_memory},
        {"refuses a layer or kernel of the wrong struct_size", test_struct_sizes},
        {"refuses a missing entry symbol", test_missing_entry},
        {"refuses empty required fields", test_empty_fields},
        {"refuses two plugins with one name", test_duplicate_name},
        {"refuses a file that is not a plugin", test_not_a_plugin},
        {"a folder scan survives bad files", test_scan_survives_bad_files},
        {"the default scan finds every plugin", test_default_scan_finds_everything},
        {"the listing says what threads and optional entries mean", test_listing_explains},
        {NULL, NULL},
    };
    test_add_suite("plugins", cases);
}
