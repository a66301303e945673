/*
 * test_plugins.c - the loader accepts good plugins and refuses each broken fixture
 * (tests/fixtures/bad_plugin.c) with a message naming the file and the reason.
 */
#include <string.h>

#include "host.h"
#include "plugin.h"
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

static void test_older_minor(void)
{
    cnb_registry r;
    char err[1024] = "";
    cnb_registry_init(&r);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&r, FIXTURE("old-backend"), err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_backend(&r, "fixture-old"));
    cnb_registry_free(&r);
    const char *size[] = {"descriptor is", "bytes but ABI 1.1 defines", "rebuild", NULL};
    expect_refusal(FIXTURE("short-backend"), size);
}

static void test_wrong_major(void)
{
    const char *words[] = {"ABI 2.0", "1.0", "rebuild", NULL};
    expect_refusal(FIXTURE("bad-major"), words);
}

static void test_newer_minor(void)
{
    const char *words[] = {"ABI 1.1", "newer", "1.0", NULL};
    expect_refusal(FIXTURE("newer-minor"), words);
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
    cnb_log_set_level((cnb_log_level)-1); /* the refusals are expected here */
    cnb_registry_scan_dir(&r, CNB_FIXTURE_DIR);
    cnb_log_set_level(CNB_LOG_INFO);
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_layer(&r, "fixture.good"));
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_layer(&r, "fixture.dup"));
    CU_ASSERT_PTR_NOT_NULL(cnb_registry_backend(&r, "fixture-old"));
    /* bad-major, newer-minor, no-entry, empty-name, no-create, small-struct,
     * short-backend, no-ops, and the second of dup-a/dup-b */
    CU_ASSERT_EQUAL(r.refused, 9);
    cnb_registry_free(&r);
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
        {"refuses a wrong ABI major", test_wrong_major},
        {"refuses a newer ABI minor", test_newer_minor},
        {"takes an older ABI minor, refuses its size under a newer one", test_older_minor},
        {"refuses a missing entry symbol", test_missing_entry},
        {"refuses empty required fields", test_empty_fields},
        {"refuses two plugins with one name", test_duplicate_name},
        {"refuses a file that is not a plugin", test_not_a_plugin},
        {"a folder scan survives bad files", test_scan_survives_bad_files},
        {"the default scan finds every plugin", test_default_scan_finds_everything},
        {NULL, NULL},
    };
    test_add_suite("plugins", cases);
}
