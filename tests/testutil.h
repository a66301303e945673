/* testutil.h - shared helpers and the suite registry of the CUnit tests. */
#ifndef CNB_TESTUTIL_H
#define CNB_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "net.h"
#include "registry.h"

void suite_rng(void);
void suite_kernels(void);
void suite_dataset(void);
void suite_augment(void);
void suite_plugins(void);
void suite_model(void);
void suite_gradcheck(void);
void suite_train(void);
void suite_sweep(void);
void suite_conformance(void);
void suite_agreement(void);
void suite_check(void);
void suite_bench(void);
void suite_csv(void);
void suite_pool(void);
void suite_slurm(void);
void suite_images_dataset(void);
void suite_images_augment(void);
void suite_images_train(void);
void suite_mpi(void);
void suite_claims(void);

/* Assert that err contains needle, printing both when it does not. */
#define CHECK_MSG(err, needle)                                                             \
    do {                                                                                   \
        if (!strstr((err), (needle)))                                                      \
            fprintf(stderr, "\n  %s:%d: message lacks \"%s\": %s\n", __FILE__, __LINE__,   \
                    (needle), (err));                                                      \
        CU_ASSERT_PTR_NOT_NULL(strstr((err), (needle)));                                   \
    } while (0)

/* Register a suite of NULL-terminated {name, fn} pairs; aborts on registry failure. */
typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;
void test_add_suite(const char *suite, const test_case *cases);
/* The same with a suite set-up and tear-down (CUnit init/cleanup functions). */
void test_add_suite_fixture(const char *suite, int (*init)(void), int (*cleanup)(void),
                            const test_case *cases);

/* The Fashion-MNIST folder: $CNB_DATA_DIR or the configured default. */
const char *test_data_dir(void);

/* 1 when the direct backend runs its AVX-512F kernels: the CPU has avx512f and
 * CNB_DIRECT_ISA does not ask for "scalar". Only then does it take fully connected layers
 * (LeNet-5's) and fuse them with their ReLUs. */
int test_direct_avx512(void);

/* Whether OpenBLAS, once loaded (by the openblas backend), runs its AVX-512 kernel set
 * (SkylakeX and its successors, as openblas_get_corename() says), whose small-matrix SGEMM
 * kernels (0.3.21) malloc a buffer at every call: 2,400 bytes for LeNet-5's conv1 at
 * batch 4. The openblas backend then allocates in forward and backward through its
 * library, as oneDNN's does; on the other kernel sets (OPENBLAS_CORETYPE=Haswell) it
 * allocates nothing. */
int test_openblas_allocates(void);

/* Whether the backend suites (conformance, agreement) check backend `name`: all when
 * CNB_TEST_BACKENDS is unset or empty, else those it lists ("direct" or "openblas,onednn"). */
int test_backend_wanted(const char *name);

/* The plugins of the build tree (the default scan), loaded once; freed at exit. */
cnb_registry *test_registry(void);
void test_free_registry(void);

/* Write text to path (the test fails at once when it cannot). */
void test_write_file(const char *path, const char *text);
/* Read path into buf (at most len - 1 bytes, then a '\0'); the test fails at once when
 * it cannot. */
void test_read_file(const char *path, char *buf, size_t len);

/* experiments/models/FILE built from `reg` with the variables act and pool (NULL: the
 * model's own) into net/conf. 0 on success. */
int test_model_load(cnb_net *net, cnb_conf *conf, cnb_registry *reg,
                    const char *file, const char *act, const char *pool);

/* net's input batch (`batch` samples) drawn from `seed` (stream CNB_STREAM_DATA): N(0, 1)
 * inputs, labels uniform over its classes. */
void test_fill_batch(cnb_net *net, int batch, uint64_t seed);

/* A fresh temporary folder; test_remove_tmpdirs() (at exit) deletes every one made. */
const char *test_tmpdir(void);
void test_remove_tmpdirs(void);

#endif
