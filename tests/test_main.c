/*
 * test_main.c - runs every CUnit suite of cnnbench and exits non-zero on any failure.
 *
 * Usage: cnnbench-tests [SUITE...]   (no argument: all suites)
 * Paths come from config.h (the build's plugin folder) and CNB_DATA_DIR (Fashion-MNIST).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
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
