/*
 * test_main.c - runs every CUnit suite of cnnbench and exits non-zero on any failure.
 *
 * Usage: cnnbench-tests [SUITE...]   (no argument: all suites)
 *        cnnbench-tests --suites NAME...   (whether NAME... are exactly the suites)
 * Paths come from config.h (the build's plugin folder) and CNB_DATA_DIR (Fashion-MNIST).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "config.h"
#include "testutil.h"

static const struct {
    const char *name;
    void (*add)(void);
} suites[] = {
    {"rng", suite_rng},
    {"kernels", suite_kernels},
    {"dataset", suite_dataset},
    {"dataset", suite_images_dataset},
    {"augment", suite_augment},
    {"augment", suite_images_augment},
    {"plugins", suite_plugins},
    {"model", suite_model},
    {"gradcheck", suite_gradcheck},
    {"train", suite_train},
    {"train", suite_images_train},
    {"sweep", suite_sweep},
    {"conformance", suite_conformance},
    {"agreement", suite_agreement},
    {"check", suite_check},
    {"bench", suite_bench},
    {"csv", suite_csv},
    {"pool", suite_pool},
    {"slurm", suite_slurm},
    {"mpi", suite_mpi},
    {"claims", suite_claims},
};

#define N_SUITES (sizeof suites / sizeof suites[0])

/* The entry of suites[] that first has this name, or -1. */
static int suite_index(const char *name)
{
    for (size_t i = 0; i < N_SUITES; i++)
        if (strcmp(suites[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* --suites NAME...: 0 when NAME... are exactly the suites above, else 1 after naming each
 * suite left out and each name that is none. tests/meson.build registers a meson test per
 * suite and checks its list so (the test "suite-list"), so that a suite added here does
 * not go unrun. */
static int check_suite_list(int n, char **names)
{
    int bad = 0;
    for (size_t i = 0; i < N_SUITES; i++) {
        int listed = 0;
        for (int a = 0; a < n; a++)
            listed |= strcmp(names[a], suites[i].name) == 0;
        if (!listed && suite_index(suites[i].name) == (int)i) {
            printf("suite %s has no meson test: add it to tests/meson.build\n", suites[i].name);
            bad = 1;
        }
    }
    for (int a = 0; a < n; a++)
        if (suite_index(names[a]) < 0) {
            printf("%s: no such suite in tests/test_main.c\n", names[a]);
            bad = 1;
        }
    if (!bad)
        printf("%d suites, each a meson test\n", n);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--suites") == 0)
        return check_suite_list(argc - 2, argv + 2);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    cnb_bench_set_program(CNB_BUILD_ROOT "/core/cnnbench"); /* as main() sets itself */
    for (size_t i = 0; i < N_SUITES; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], suites[i].name) == 0;
        if (wanted)
            suites[i].add();
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned run = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned asserts_failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    test_remove_tmpdirs();
    test_free_registry();
    printf("\n%u passed, %u failed\n", run - failed, failed);
    return failed || asserts_failed || run == 0 ? 1 : 0;
}
