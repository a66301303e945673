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

#include "testutil.h"

#define FIXTURE(name) CNB_FIXTURE_DIR "/fixture-" name ".so"

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
                           "relu           FAIL", "stray write", "not timed: it failed",
                           "FAILED", NULL};
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
    const char *major[] = {"fixture-bad-major.so", "ABI 2.0", "rebuild", NULL};
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
        {"an out-of-tree plugin builds against the installed SDK and passes", test_sdk},
        {NULL, NULL},
    };
    test_add_suite("check", tests);
}
