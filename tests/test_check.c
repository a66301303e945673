/*
 * test_check.c - `cnnbench check` on plugins that fail in every way the check promises to
 * survive (tests/fixtures/: wrong numbers, a crash, a hang, a wrong gradient, a wrong
 * ABI, a missing entry symbol, a file that is not a plugin), asserting the exit status
 * and that the report names the plugin, the op, the case and the call; and the SDK path
 * a plugin author takes (scripts/sdk-check.sh: install into a temporary prefix, scaffold
 * a plugin, build it out of tree with pkg-config, check it).
 */
#include <string.h>
#include <sys/wait.h>

#include "errors.h"
#include "net.h"
#include "testutil.h"

#define FIXTURE(name) CNB_FIXTURE_DIR "/fixture-" name ".so"
#define STR_(x) #x
#define STR(x) STR_(x) /* a version macro's digits */

/* Run `cnnbench check ARGS`, output (both streams) to a file; the exit status. */
static int check(const char *args, char *out, size_t len)
{
    snprintf(out, len, "%s/check.txt", test_tmpdir());
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' check %s >'%s' 2>&1", CNB_BUILD_ROOT, args,
             out);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Every word must appear in the file; prints the file when one does not. */
static void expect_words(const char *path, const char *const *words)
{
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (const char *const *w = words; *w; w++)
        if (!strstr(text, *w)) {
            fprintf(stderr, "\n  the check's report lacks '%s':\n%s\n", *w, text);
            CU_FAIL("report incomplete");
            return;
        }
}

static void test_wrong_numbers(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("'" FIXTURE("broken-backend") "' --threads 1", out, sizeof out), 1);
    const char *words[] = {"backend fixture.broken", "inner_product  FAIL", "conv           FAIL",
                           "relu           FAIL", "fused          FAIL", "stray write",
                           "not timed: it failed", "FAILED", NULL};
    expect_words(out, words);
}

static void test_crash(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("'" FIXTURE("crash") "' --threads 1 --no-speed", out, sizeof out), 1);
    const char *words[] = {"conv           CRASH", "Segmentation fault in forward",
                           "conv, case lenet.conv1 (1x28x28 -> 6x28x28",
                           "relu           PASS", NULL};
    expect_words(out, words);
}

static void test_hang(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("'" FIXTURE("hang") "' --threads 1 --timeout 1 --no-speed", out,
                          sizeof out), 1);
    const char *words[] = {"conv           HANG", "no progress for 1 s in backward, conv",
                           "killed", "relu           PASS", NULL};
    expect_words(out, words);
}

static void test_bad_gradient(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("'" FIXTURE("badgrad") "'", out, sizeof out), 1);
    const char *words[] = {"layer fixture.badgrad", "gradient       FAIL",
                           "disagree with central differences", "not timed", NULL};
    expect_words(out, words);
}

static void test_good_layer(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("act.relu --no-speed", out, sizeof out), 0);
    const char *words[] = {"gradient       PASS", "all checks passed", NULL};
    expect_words(out, words);
}

static void test_not_loadable(void)
{
    char out[512], path[512], args[600];
    CU_ASSERT_EQUAL(check("'" FIXTURE("bad-major") "'", out, sizeof out), 2);
    char built[64]; /* the fixture's major is the host's + 1 (tests/fixtures/bad_plugin.c) */
    snprintf(built, sizeof built, "layer ABI %d.%d", CNB_LAYER_ABI_MAJOR + 1, CNB_LAYER_ABI_MINOR);
    const char *major[] = {"fixture-bad-major.so", built, "takes " STR(CNB_LAYER_ABI_MAJOR) ".x",
                           "rebuild", NULL};
    expect_words(out, major);
    CU_ASSERT_EQUAL(check("'" FIXTURE("no-entry") "'", out, sizeof out), 2);
    const char *entry[] = {"fixture-no-entry.so", "missing entry symbol", NULL};
    expect_words(out, entry);
    snprintf(path, sizeof path, "%s/text.so", test_tmpdir());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not a shared object\n", f);
    fclose(f);
    snprintf(args, sizeof args, "'%s'", path);
    CU_ASSERT_EQUAL(check(args, out, sizeof out), 2);
    const char *text[] = {"text.so", "not a loadable plugin", NULL};
    expect_words(out, text);
    CU_ASSERT_EQUAL(check("no.such.plugin", out, sizeof out), 2);
    const char *name[] = {"no plugin named 'no.such.plugin'", "backends: ", NULL};
    expect_words(out, name);
}

/* Defects that show only at some batches or in some passes (tests/fixtures/
 * broken_kernels.c): each is a FAIL with exit 1 naming what went wrong, and the two
 * correct fixtures still pass; a backend whose forward allocates (fixture.memory) passes
 * with the allocation said. */
static void test_broken_fixtures(void)
{
    static const struct {
        const char *fixture, *args;
        int status;
        const char *words[5];
    } cases[] = {
        {"tile", "--no-speed --cases 'tile.fc.*'", 1,
         {"case tile.fc.n4", "batch 4", "inner_product  FAIL", NULL}},
        {"batch32", "--no-speed --cases 'lenet.fc1*'", 1,
         {"case lenet.fc1.n64", "forward returned CNB_EINVAL", "inner_product  FAIL", NULL}},
        {"flaky", "--cases 'lenet.fc1*'", 1,
         {"inner_product  PASS", "forward, repetition 2 of", "returned CNB_EIO at batch 64",
          "failed while being timed"}},
        {"refuse", "--no-speed --cases 'lenet.fc1*'", 1,
         {"kernel_create returned CNB_EINVAL", "case lenet.fc1.n64", "inner_product  FAIL",
          NULL}},
        {"decline", "--no-speed --cases 'lenet.fc1*'", 0,
         {"inner_product  PASS", "left to the next backend (CNB_ENOTSUP): lenet.fc1.n64",
          "all checks passed", NULL}},
        {"no-ops", "--no-speed", 1,
         {"load           FAIL", "provides no op (ops is 0x0)", "CNB_OP_BIT()", "FAILED"}},
        {"overrun", "--no-speed", 1,
         {"gradient       FAIL", "stray write: backward wrote dx[", "past the end of its",
          "FAILED"}},
        {"no-bind", "--no-speed", 1,
         {"gradient       FAIL", "gave no bind", "all required", "FAILED"}},
        {"scale", "", 0,
         {"gradient       PASS", "no write outside its buffers", "all checks passed", NULL}},
        {"memory", "--no-speed --cases 'lenet.fc1'", 0,
         {"inner_product  PASS", "heap: forward and backward allocate in 1 of 1 cases (the most: "
          "5000 bytes in 1 call, lenet.fc1); the ABI says they allocate nothing",
          "all checks passed", NULL}},
        {"kernel-size", "--no-speed --cases 'lenet.fc1'", 1,
         {"inner_product  FAIL", "backend 'fixture.kernelsize' made a kernel without its "
          "struct_size", "CNB_KERNEL_INIT()", NULL}},
        {"layer-size", "--no-speed", 1,
         {"gradient       FAIL", "layer plugin 'fixture.layersize'",
          "layer ABI " STR(CNB_LAYER_ABI_MAJOR) "." STR(CNB_LAYER_ABI_MINOR) " defines",
          "rebuild it against the installed ones"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[512], args[1024];
        snprintf(args, sizeof args, "'%s/fixture-%s.so' --threads 1 %s", CNB_FIXTURE_DIR,
                 cases[i].fixture, cases[i].args);
        int status = check(args, out, sizeof out);
        if (status != cases[i].status)
            fprintf(stderr, "\n  fixture %s: exit %d, expected %d\n", cases[i].fixture, status,
                    cases[i].status);
        CU_ASSERT_EQUAL(status, cases[i].status);
        expect_words(out, cases[i].words);
    }
}

/* A backend with fuse_create has its fused runs checked, a line of their own: direct's
 * pass (LeNet-5's conv and fc runs at three batches), and an op with no case selected says
 * so. */
static void test_fused_runs(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("direct --threads 2 --no-speed --cases 'run.lenet.*'", out,
                          sizeof out), 0);
    const char *words[] = {"conv           -      no case matches",
                           "inner_product  -      no case matches",
                           "fused          PASS   18 cases", "all checks passed", NULL};
    expect_words(out, words);
}

/* A single-threaded backend (naive) is not timed at 2 threads: beside another plugin it
 * is listed as not run; checked itself, its speed is not timed and the line says how. */
static void test_single_threaded(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("openblas --threads 2 --cases 'lenet.fc3*'", out, sizeof out), 0);
    const char *other[] = {"inner_product\n  naive not run: it is single-threaded\n",
                           "    openblas     fwd", NULL};
    expect_words(out, other);
    FILE *f = fopen(out, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        CU_ASSERT_PTR_NULL(strstr(line, "    naive        fwd"));
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL(check("naive --threads 2 --cases 'lenet.fc3*'", out, sizeof out), 0);
    const char *itself[] = {"speed: not timed at 2 threads: naive is single-threaded; time it "
                            "with --threads 1", "naive: all checks passed", NULL};
    expect_words(out, itself);
}

/* A plugin's info line and warning at init are said once per command, though its
 * conformance and its speed each start it in a process of their own. */
static void test_notes_once(void)
{
    char out[512];
    CU_ASSERT_EQUAL(check("'" FIXTURE("chatty") "' --threads 1 --cases 'lenet.fc3*'", out,
                          sizeof out), 0);
    const char *words[] = {"inner_product  PASS", "    fixture.chatty fwd", NULL};
    expect_words(out, words);
    int info = 0, warning = 0;
    char line[1024];
    FILE *f = fopen(out, "r");
    while (f && fgets(line, sizeof line, f)) {
        info += strcmp(line, "fixture.chatty: info: loaded its kernels for this CPU\n") == 0;
        warning += strstr(line, "fixture.chatty: warning: a slower library") == line;
    }
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL(info, 1);
    CU_ASSERT_EQUAL(warning, 1);
}

/* A network names the backend and the status of a kernel that fails, and keeps the same
 * rule as check: CNB_ENOTSUP from kernel_create falls back, any other error refuses. */
static void test_network_failures(void)
{
    cnb_registry reg;
    char err[1024], path[512];
    cnb_registry_init(&reg);
    const char *files[] = {"flaky", "refuse", "decline", "no-bind"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/fixture-%s.so", CNB_FIXTURE_DIR, files[i]);
        CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&reg, path, err, sizeof err), 0);
    }
    snprintf(path, sizeof path, "%s/fixture-no-ops.so", CNB_FIXTURE_DIR);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&reg, path, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "provides no op");
    cnb_registry_scan_default(&reg);

    char model[512];
    snprintf(model, sizeof model, "%s/experiments/models/lenet5.ini", CNB_SOURCE_ROOT);
    cnb_error_quiet(1);
    for (int which = 0; which < 3; which++) {
        cnb_net net;
        cnb_conf conf;
        float loss;
        CU_ASSERT_EQUAL_FATAL(cnb_net_load(&net, &conf, &reg, model, NULL), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net, 1), 0);
        if (which == 0) { /* forward fails from its third call on */
            CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "fixture.flaky", 1, 4), 0);
            CU_ASSERT_EQUAL(cnb_net_forward(&net, 1, &loss), 0);
            CU_ASSERT_EQUAL(cnb_net_forward(&net, 1, &loss), 0);
            CU_ASSERT_NOT_EQUAL(cnb_net_forward(&net, 1, &loss), 0);
            CHECK_MSG(cnb_last_error(), "[fc1] forward on backend 'fixture.flaky' failed: CNB_EIO");
        } else if (which == 1) {
            CU_ASSERT_NOT_EQUAL(cnb_net_bind(&net, "fixture.refuse", 1, 64), 0);
            CHECK_MSG(cnb_last_error(), "backend 'fixture.refuse' could not create its "
                                        "inner_product kernel: kernel_create returned CNB_EINVAL");
        } else {
            CU_ASSERT_EQUAL_FATAL(cnb_net_bind(&net, "fixture.decline", 1, 64), 0);
            CU_ASSERT_STRING_EQUAL(net.layers[net.n - 2].ctx.ran_on, "naive"); /* fc3 */
            CU_ASSERT_EQUAL(cnb_net_forward(&net, 1, &loss), 0);
        }
        cnb_net_free(&net);
        cnb_conf_free(&conf);
    }

    /* a layer without a required entry is refused when the model is built */
    cnb_conf conf;
    cnb_net net;
    snprintf(path, sizeof path, "%s/nobind.ini", test_tmpdir());
    test_write_file(path, "[net]\nchannels = 1\nheight = 4\nwidth = 4\nclasses = 16\n"
                          "[x]\ntype = fixture.nobind\n[prob]\ntype = softmax\n");
    CU_ASSERT_NOT_EQUAL(cnb_net_load(&net, &conf, &reg, path, NULL), 0);
    CHECK_MSG(cnb_last_error(), "nobind.ini:7: [x] layer plugin 'fixture.nobind' gave no bind");
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    cnb_error_quiet(0);
    cnb_registry_free(&reg);
}

/* Fused runs (fixture.fuse: LeNet-5's fc1 and act3, fc2 and act4, with ReLU) compute what
 * their layers do; a failing run's forward is named by its layers and backend, a
 * fuse_create failing with anything but CNB_ENOTSUP refuses the bind, and ":nofuse" never
 * offers the run. */
static void test_fused_failures(void)
{
    cnb_registry reg;
    char err[1024], path[512], runs[256];
    cnb_registry_init(&reg);
    snprintf(path, sizeof path, "%s/fixture-fuse.so", CNB_FIXTURE_DIR);
    CU_ASSERT_EQUAL_FATAL(cnb_registry_load_file(&reg, path, err, sizeof err), 0);
    cnb_registry_scan_default(&reg);
    static const char *const specs[] = {"fixture.fuse:nofuse", "fixture.fuse", "fixture.fuse"};
    static const int batches[] = {4, 4, 64};
    cnb_net net[3];
    cnb_conf conf[3];
    int bound[3];
    cnb_error_quiet(1);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(test_model_load(&net[i], &conf[i], &reg, "lenet5.ini", "relu",
                                              "max"), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_net_init_params(&net[i], 1), 0);
        bound[i] = cnb_net_bind(&net[i], specs[i], 1, batches[i]) == 0;
    }
    CU_ASSERT(bound[0] && bound[1] && !bound[2]);
    CHECK_MSG(cnb_last_error(), "backend 'fixture.fuse' could not fuse the run fc1+act3: "
                                "fuse_create returned CNB_EINVAL");
    CU_ASSERT_EQUAL(cnb_net_fused_runs(&net[0], runs, sizeof runs), 0);
    CU_ASSERT_EQUAL(cnb_net_fused_runs(&net[1], runs, sizeof runs), 2);
    CU_ASSERT_STRING_EQUAL(runs, "fc1+act3 fc2+act4");
    CU_ASSERT_PTR_NULL(net[1].layers[7].y); /* fc1's output: kept by no one */
    float loss[2];
    for (int i = 0; i < 2 && bound[i]; i++) {
        test_fill_batch(&net[i], batches[i], 1);
        CU_ASSERT_EQUAL(cnb_net_forward(&net[i], 1, &loss[i]), 0);
        CU_ASSERT_EQUAL(cnb_net_backward(&net[i]), 0);
    }
    CU_ASSERT_EQUAL(loss[1], loss[0]); /* the same sums in the same order */
    for (size_t k = 0; k < net[0].layers[7].layer->params[0].count; k++)
        if (net[0].layers[7].dw[0][k] != net[1].layers[7].dw[0][k]) {
            CU_FAIL("the fused run's fc1 weight gradient differs from the layers'");
            break;
        }
    CU_ASSERT_EQUAL(cnb_net_forward(&net[1], 1, &loss[1]), 0);
    CU_ASSERT_NOT_EQUAL(cnb_net_forward(&net[1], 1, &loss[1]), 0);
    CHECK_MSG(cnb_last_error(), "[fc1+act3] forward on backend 'fixture.fuse' (fused run) "
                                "failed: CNB_EIO");
    for (int i = 0; i < 3; i++) {
        cnb_net_free(&net[i]);
        cnb_conf_free(&conf[i]);
    }
    cnb_error_quiet(0);
    cnb_registry_free(&reg);
}

/* The tutorial's path, as a new user takes it, against an installed SDK. */
static void test_sdk(void)
{
    char cmd[2048], log[512];
    snprintf(log, sizeof log, "%s/sdk.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/sdk-check.sh' '%s' >'%s' 2>&1", CNB_SOURCE_ROOT,
             test_tmpdir(), log);
    int status = system(cmd);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *words[] = {"relu           PASS", "gradient       PASS", "sdk-check: passed",
                           NULL};
    expect_words(log, words);
}

void suite_check(void)
{
    static const test_case tests[] = {
        {"a backend computing wrong numbers fails and is not timed", test_wrong_numbers},
        {"a crashing kernel is named with its call and case", test_crash},
        {"a hanging kernel is killed and named", test_hang},
        {"a layer whose backward disagrees with its forward fails", test_bad_gradient},
        {"a correct layer passes", test_good_layer},
        {"files that are not plugins are refused with the reason", test_not_loadable},
        {"defects at some batches or in some passes fail; correct fixtures pass",
         test_broken_fixtures},
        {"a backend's fused runs are checked", test_fused_runs},
        {"a single-threaded backend is not timed at 2 threads", test_single_threaded},
        {"a plugin's notes are said once per command", test_notes_once},
        {"a network names a failing kernel's backend and status", test_network_failures},
        {"a fused run computes its layers' numbers; its failures are named", test_fused_failures},
        {"an out-of-tree plugin builds against the installed SDK and passes", test_sdk},
        {NULL, NULL},
    };
    test_add_suite("check", tests);
}
