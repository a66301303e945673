/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

void test_add_suite(const char *suite, const test_case *cases)
{
    test_add_suite_fixture(suite, NULL, NULL, cases);
}

void test_add_suite_fixture(const char *suite, int (*init)(void), int (*cleanup)(void),
                            const test_case *cases)
{
    CU_pSuite s = CU_add_suite(suite, init, cleanup);
    if (!s) {
        fprintf(stderr, "cannot add CUnit suite %s\n", suite);
        exit(2);
    }
    for (const test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn)) {
            fprintf(stderr, "cannot add CUnit test %s.%s\n", suite, c->name);
            exit(2);
        }
}

const char *test_data_dir(void)
{
    const char *d = getenv("CNB_DATA_DIR");
    return d && *d ? d : CNB_DEFAULT_DATA_DIR;
}

const char *test_tmpdir(void)
{
    static char path[256];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/cnnbench-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}
