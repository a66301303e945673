/*
 * test_conformance.c - the "conformance" suite: every backend plugin the default scan finds,
 * other than naive, against the naive backend (the oracle), checkasm style.
 *
 * For each backend, for each op it claims in `ops` and each shape of the table in
 * core/src/conformance.c (every LeNet-5 and AlexNet layer, plus odd geometries), the
 * checker there runs both kernels forward and backward on the same seeded inputs and
 * compares every output, with guard bands and NaN poisoning (see conformance.h).
 * kernel_create failing for an op the backend claims is a failure; ops it does not claim
 * are skipped and listed once. A backend with fuse_create also gets the table's fused runs
 * (conformance.h), compared with naive's kernels of the run's ops in turn.
 *
 * The checker, cnb_conform_check(), returns a count of problems and prints nothing when asked to
 * be quiet, so the suite also proves it can fail: the fixture backend
 * tests/fixtures/broken_backend.c ("fixture.broken", never in the default scan) carries
 * one realistic bug per op and one in its fused runs, and test_broken_backend asserts that
 * each is flagged, in the output where it lives, and that the outputs it leaves alone
 * pass.
 *
 * It does not test the naive backend itself (suite "kernels" does, against hand-worked
 * numbers and finite differences) nor time anything beyond reporting how long each
 * backend's checks took.
 *
 * Memory: a second forward and backward of every case must allocate nothing on the heap
 * (but oneDNN's, whose library does), and what a kernel says it holds (kernel_bytes) must
 * be what its create allocated.
 *
 * Seeds: CNB_TEST_SEED (default in checkdata.h) plus the case's row number in the table, so any
 * failing case reruns alone with the same numbers. Environment: CNB_TEST_THREADS sets the
 * threads handed to each backend's init (default: the online CPUs); CNB_TEST_BACKENDS
 * ("direct", "openblas,onednn") checks only those; CNB_DIRECT_ISA=scalar puts the direct
 * backend on its plain-C kernels, and a test asserts that it runs them.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cnnbench/backend.h"
#include "cnnbench/op_check.h"
#include "clock.h"
#include "net.h"
#include "registry.h"
#include "checkdata.h"
#include "conformance.h"
#include "testutil.h"

#define BROKEN_PATH CNB_FIXTURE_DIR "/fixture-broken-backend.so"

/* ------------------------------------------------------------------------------------ */
/* Backends. */

typedef struct conf_backend {
    const cnb_backend_desc *desc;
    void *state;
    int ready;       /* init succeeded                          */
    int cases, failed;
    double seconds;  /* in backend calls                        */
    double wall;     /* in conf_check (calls, poisoning, compare) */
    double worst;    /* largest |diff| / tolerance among passing outputs: the margin */
    const char *worst_case;
    int worst_out;
    int allocating;  /* cases whose second forward or backward allocated on the heap */
    cnb_heap_tally most; /* the most any of them allocated, in case most_case         */
    const char *most_case;
} conf_backend;

static int backend_init(conf_backend *b, const cnb_backend_desc *desc)
{
    memset(b, 0, sizeof *b);
    b->desc = desc;
    cnb_backend_config cfg = {.threads = cnb_check_threads((int)sysconf(_SC_NPROCESSORS_ONLN))};
    int rc = desc->init ? desc->init(cnb_host_services(), &cfg, &b->state) : CNB_OK;
    if (rc != CNB_OK) {
        fprintf(stderr, "\nconformance: backend %s: init returned %d\n", desc->hdr.name, rc);
        return rc;
    }
    b->ready = 1;
    return CNB_OK;
}

static void backend_fini(conf_backend *b)
{
    if (b->ready && b->desc->fini)
        b->desc->fini(b->state);
    b->ready = 0;
}

/* "pool_max, lrn" */
static void ops_str(char *buf, size_t len, uint32_t ops)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int op = 0; op < CNB_OP_COUNT && used < len; op++)
        if (ops & CNB_OP_BIT(op)) {
            int k = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", cnb_op_name(op));
            if (k < 0)
                break;
            used += (size_t)k;
        }
    if (!buf[0])
        snprintf(buf, len, "(none)");
}

/* ------------------------------------------------------------------------------------ */
/* Tests. */

#define MAX_BACKENDS 16

/* The backend claims the case: its op, or for a fused run, fuse_create. */
static int case_claimed(const cnb_backend_desc *be, const cnb_conform_case *cs)
{
    if (cs->flags & CNB_CASE_FUSED)
        return CNB_BACKEND_FIELD(be, fuse_create) != NULL;
    return (be->ops & CNB_OP_BIT(cs->op)) != 0;
}

/* What a kernel of `backend` said it holds (kernel_bytes: `said`, -1 for none) against
 * what its create allocated on the heap: never more; for a backend whose memory all comes
 * through host->alloc (naive, openblas and direct count even their own struct), all of
 * it but the host's rounding of each allocation up to 64 bytes. Nothing to check where
 * the build does not count (a sanitizer's) or no kernel was made. */
static void check_held(const char *backend, const char *case_name, long long said,
                       cnb_heap_tally heap)
{
    static const char *const exact[] = {"naive", "openblas", "direct"};
    if (!cnb_heap_counting() || said < 0)
        return;
    int ok = (uint64_t)said <= heap.bytes, whole = 0;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        whole |= strcmp(backend, exact[i]) == 0;
    if (whole)
        ok &= heap.bytes - (uint64_t)said <= 63 * heap.calls;
    if (!ok) {
        fprintf(stderr, "\nconformance: %s, case %s: kernel_bytes says %lld, its create "
                "allocated %llu bytes in %llu calls\n", backend, case_name, said,
                (unsigned long long)heap.bytes, (unsigned long long)heap.calls);
        CU_FAIL("kernel_bytes is not what the kernel allocated");
    }
}

/* Every backend of the default scan but naive, over the whole table. The naive result of
 * a case is computed once and shared by every backend. */
static void test_backends(void)
{
    cnb_registry reg;
    cnb_registry_init(&reg);
    cnb_registry_scan_default(&reg);
    const cnb_backend_desc *naive = cnb_registry_backend(&reg, "naive");
    CU_ASSERT_PTR_NOT_NULL(naive);
    conf_backend ref_be, be[MAX_BACKENDS];
    int nbe = 0;
    if (!naive || backend_init(&ref_be, naive) != CNB_OK) {
        CU_FAIL("no usable naive backend: nothing to compare against");
        cnb_registry_free(&reg);
        return;
    }
    fputc('\n', stderr); /* after CUnit's "Test: ..." */
    if (reg.refused)
        fprintf(stderr, "conformance: note: the plugin scan refused %d file(s) (see the "
                "messages above); a refused backend is not checked here\n", reg.refused);
    for (int i = 0; i < reg.n && nbe < MAX_BACKENDS; i++) {
        const cnb_plugin_header *h = reg.items[i].hdr;
        if (h->kind != CNB_PLUGIN_BACKEND || strcmp(h->name, "naive") == 0)
            continue;
        if (!test_backend_wanted(h->name)) {
            fprintf(stderr, "conformance: %s: left out (CNB_TEST_BACKENDS=%s)\n", h->name,
                    getenv("CNB_TEST_BACKENDS"));
            continue;
        }
        if (backend_init(&be[nbe], (const cnb_backend_desc *)h) != CNB_OK) {
            CU_FAIL("a backend's init failed");
            continue;
        }
        char claimed[256], skipped[256];
        ops_str(claimed, sizeof claimed, be[nbe].desc->ops & CNB_OPS_ALL);
        ops_str(skipped, sizeof skipped, ~be[nbe].desc->ops & CNB_OPS_ALL);
        fprintf(stderr, "conformance: %s (%s): checking %s%s; skipping %s (not claimed); %s\n",
                h->name, reg.items[i].path, claimed,
                CNB_BACKEND_FIELD(be[nbe].desc, fuse_create) ? ", fused runs" : "", skipped,
                be[nbe].desc->info ? be[nbe].desc->info(be[nbe].state) : "no info");
        nbe++;
    }
    if (nbe == 0) {
        const char *only = getenv("CNB_TEST_BACKENDS");
        fprintf(stderr, "conformance: no backend besides naive%s%s found in %s: nothing to "
                "check\n", only && *only ? " named by CNB_TEST_BACKENDS=" : "",
                only && *only ? only : "", reg.searched ? reg.searched : "(nowhere)");
        if (only && *only)
            CU_FAIL("CNB_TEST_BACKENDS names no backend the scan found");
        backend_fini(&ref_be);
        cnb_registry_free(&reg);
        return;
    }

    double ref_seconds = 0.0;
    for (int row = 0; row < cnb_conform_n_cases; row++) {
        int wanted = 0;
        for (int b = 0; b < nbe; b++)
            wanted |= case_claimed(be[b].desc, &cnb_conform_cases[row]);
        if (!wanted)
            continue;
        cnb_conform_ref ref;
        double t = cnb_now();
        int ok = cnb_conform_ref_init(&ref, row, naive, ref_be.state) == 0;
        ref_seconds += cnb_now() - t;
        for (int b = 0; ok && b < nbe; b++) {
            if (!case_claimed(be[b].desc, &cnb_conform_cases[row]))
                continue;
            cnb_conform_result res;
            t = cnb_now();
            int problems = cnb_conform_check(be[b].desc, be[b].state, &ref, NULL, &res);
            be[b].wall += cnb_now() - t;
            be[b].seconds += res.seconds;
            be[b].cases++;
            for (int o = 0; o < CNB_OUT_COUNT; o++)
                if (!res.bad[o] && res.worst[o] > be[b].worst) {
                    be[b].worst = res.worst[o];
                    be[b].worst_case = cnb_conform_cases[row].name;
                    be[b].worst_out = o;
                }
            if (problems) {
                be[b].failed++;
                CU_FAIL("backend differs from the naive reference (details on stderr)");
            }
            check_held(be[b].desc->hdr.name, cnb_conform_cases[row].name, res.kernel_bytes,
                       res.heap_create);
            const uint64_t calls = res.heap_fwd.calls + res.heap_bwd.calls;
            be[b].allocating += calls > 0;
            if (calls > be[b].most.calls) {
                be[b].most = (cnb_heap_tally){res.heap_fwd.bytes + res.heap_bwd.bytes, calls};
                be[b].most_case = cnb_conform_cases[row].name;
            }
        }
        cnb_conform_ref_free(&ref);
    }

    fprintf(stderr, "conformance: naive reference: %.2f s\n", ref_seconds);
    for (int b = 0; b < nbe; b++) {
        fprintf(stderr, "conformance: %s: %d cases, %d failed; %.2f s in its kernels, "
                "%.2f s checking in all; closest to the tolerance: %.3g x (%s %s)\n",
                be[b].desc->hdr.name, be[b].cases, be[b].failed, be[b].seconds, be[b].wall,
                be[b].worst, be[b].worst_case ? be[b].worst_case : "-",
                cnb_conform_out_name[be[b].worst_out]);
        if (be[b].allocating)
            fprintf(stderr, "conformance: %s: a second forward and backward allocated on the "
                    "heap in %d of its cases (the most: %llu bytes in %llu calls, %s)\n",
                    be[b].desc->hdr.name, be[b].allocating,
                    (unsigned long long)be[b].most.bytes, (unsigned long long)be[b].most.calls,
                    be[b].most_case);
        /* oneDNN 2.6 builds a map of a primitive's arguments on the heap at every
         * dnnl_primitive_execute, a few hundred bytes: onednn and winograd (its matrix
         * products) run through it; OpenBLAS's AVX-512 small-matrix kernels malloc at
         * every call; the others allocate nothing */
        const char *name = be[b].desc->hdr.name;
        if (strcmp(name, "onednn") != 0 && strcmp(name, "winograd") != 0 &&
            (strcmp(name, "openblas") != 0 || !test_openblas_allocates()))
            CU_ASSERT_EQUAL(be[b].allocating, 0);
        backend_fini(&be[b]);
    }
    backend_fini(&ref_be);
    cnb_registry_free(&reg);
}

/*
 * The fixture backend "fixture.broken" (tests/fixtures/broken_backend.c) is correct except
 * for one planted bug per op. Each row: a case, the outputs the checker must flag there,
 * and the outputs it must pass (the others are not asserted either way).
 */
#define ALL_OUTS ((1u << CNB_OUT_COUNT) - 1u)
#define RUN_GRADS (ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DST) & ~CNB_OUT_BIT(CNB_OUT_LOSS))
static const struct {
    const char *case_name;
    unsigned flag;       /* CNB_OUT_BIT()s whose values must be flagged          */
    unsigned flag_guard; /* CNB_OUT_BIT()s whose guard bands must be flagged     */
    unsigned pass;       /* CNB_OUT_BIT()s that must pass, values and guards     */
    int create_fails;    /* kernel_create must fail                          */
    int inputs_changed;  /* the inputs must be reported as written           */
    const char *bug;
} broken_expect[] = {
    {"lenet.fc1", CNB_OUT_BIT(CNB_OUT_DST), 0, ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DST), 0, 0,
     "inner product forward skips the last input element"},
    {"alexnet.fc6", CNB_OUT_BIT(CNB_OUT_DST), 0, ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DST), 0, 0,
     "the same, one term of 9217 (the tolerance is tight enough)"},
    {"lenet.conv2", CNB_OUT_BIT(CNB_OUT_DW) | CNB_OUT_BIT(CNB_OUT_DW_NOSRC), 0,
     CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC) | CNB_OUT_BIT(CNB_OUT_DB) | CNB_OUT_BIT(CNB_OUT_DB_NOSRC), 0, 0,
     "conv backward accumulates into diff_weights instead of overwriting"},
    {"odd.conv.k5x3.s3.p2", 0, 0, 0, 1, 0,
     "conv kernel_create fails with CNB_EINVAL (not CNB_ENOTSUP) for stride 3"},
    {"lenet.pool1.avg", 0, 0, ALL_OUTS, 0, 0,
     "avg pool divisor bug is invisible without padding: must pass"},
    {"odd.pool.avg.k3.s2.p1", CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0, 0, 0,
     "avg pool divides by the in-bounds taps only (padding excluded)"},
    {"odd.pool.avg.k5x3.s3.p2", CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0, 0, 0,
     "the same with padding 2"},
    {"lenet.pool1.max", 0, 0, ALL_OUTS, 0, 0,
     "max pool padding bug is invisible without padding: must pass"},
    {"odd.pool.max.k3.s2.p1", CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0, 0, 0,
     "max pool lets zero padding win over negative inputs"},
    {"odd.relu", CNB_OUT_BIT(CNB_OUT_DSRC), 0, ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0,
     "relu backward passes the gradient where dst >= 0 (so everywhere)"},
    {"lenet.act2.relu", CNB_OUT_BIT(CNB_OUT_DSRC), 0, ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0,
     "the same at LeNet size"},
    {"odd.sigmoid", 0, CNB_OUT_BIT(CNB_OUT_DST), ALL_OUTS & ~CNB_OUT_BIT(CNB_OUT_DST), 0, 1,
     "sigmoid forward writes one past dst; backward uses src as scratch"},
    {"odd.lrn.size3.alpha0.5", CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0, 0, 0,
     "LRN divides alpha by size (the Caffe convention, not cnnbench's)"},
    {"alexnet.lrn1", CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_DSRC), 0, 0, 0, 0,
     "the same at alpha 1e-4"},
    {"lenet.softmax", CNB_OUT_BIT(CNB_OUT_DSRC), 0, CNB_OUT_BIT(CNB_OUT_DST) | CNB_OUT_BIT(CNB_OUT_LOSS), 0, 0,
     "softmax backward divides by the batch, not by the real labels"},
    {"odd.softmax.nopad", 0, 0, ALL_OUTS, 0, 0,
     "the same bug is invisible without a padding label: must pass"},
    {"run.lenet.conv1+relu+pool", RUN_GRADS, 0, CNB_OUT_BIT(CNB_OUT_DST), 0, 0,
     "fused conv+relu+pool backward skips the ReLU's mask"},
    {"run.lenet.conv2+relu", RUN_GRADS, 0, CNB_OUT_BIT(CNB_OUT_DST), 0, 0,
     "the same without the pooling"},
    {"run.odd.conv.s2.p1+relu+pool.k3.s2", RUN_GRADS, 0, CNB_OUT_BIT(CNB_OUT_DST), 0, 0,
     "the same with overlapping windows"},
};

/* Every row of broken_expect: the checker's verdict on fixture.broken against naive. */
static void broken_run(conf_backend *bb, conf_backend *nb)
{
    const cnb_backend_desc *broken = bb->desc, *naive = nb->desc;
    for (size_t e = 0; e < sizeof broken_expect / sizeof broken_expect[0]; e++) {
        const cnb_conform_case *cs = cnb_conform_case_find(broken_expect[e].case_name);
        CU_ASSERT_PTR_NOT_NULL(cs);
        if (!cs || !case_claimed(broken, cs)) {
            CU_FAIL("broken_expect names a case missing from the table or not claimed");
            continue;
        }
        cnb_conform_ref ref;
        if (cnb_conform_ref_init(&ref, (int)(cs - cnb_conform_cases), naive, nb->state) != 0) {
            cnb_conform_ref_free(&ref);
            continue;
        }
        cnb_conform_result res;
        const cnb_conform_opts quiet = {.quiet = 1};
        int problems = cnb_conform_check(broken, bb->state, &ref, &quiet, &res);
        int ok = problems > 0;
        ok &= (res.rc_create != 0) == broken_expect[e].create_fails;
        ok &= res.inputs_changed == broken_expect[e].inputs_changed;
        for (int o = 0; o < CNB_OUT_COUNT; o++) {
            unsigned bit = CNB_OUT_BIT(o);
            if (broken_expect[e].flag & bit)
                ok &= res.bad[o] > 0;
            if (broken_expect[e].flag_guard & bit)
                ok &= res.guard[o] > 0;
            if (broken_expect[e].pass & bit)
                ok &= res.bad[o] == 0 && res.guard[o] == 0;
        }
        /* the clean rows must pass, all the others must fail */
        if (!broken_expect[e].flag && !broken_expect[e].flag_guard &&
            !broken_expect[e].create_fails && !broken_expect[e].inputs_changed)
            ok = problems == 0;
        if (!ok) {
            fprintf(stderr, "\nconformance: the checker misjudges fixture.broken on %s (%s); "
                    "its report, unquieted:\n", cs->name, broken_expect[e].bug);
            cnb_conform_check(broken, bb->state, &ref, NULL, &res);
            CU_FAIL("the conformance checker does not flag a planted bug as expected");
        } else if (problems) {
            /* the worst ratio shows how far above the tolerance the bug sits */
            double worst = 0.0;
            for (int o = 0; o < CNB_OUT_COUNT; o++)
                if (res.bad[o] && res.worst[o] > worst)
                    worst = res.worst[o];
            int nbad = 0;
            for (int o = 0; o < CNB_OUT_COUNT; o++)
                nbad += res.bad[o];
            char how[160];
            int k = snprintf(how, sizeof how, "%d wrong values", nbad);
            if (nbad)
                k += snprintf(how + k, sizeof how - k, isinf(worst) ? " (NaN or exact)"
                              : " (worst %.3g x tol)", worst);
            if (res.rc_create)
                k += snprintf(how + k, sizeof how - k, ", create failed");
            if (res.inputs_changed)
                k += snprintf(how + k, sizeof how - k, ", inputs written");
            for (int o = 0; o < CNB_OUT_COUNT; o++)
                if (res.guard[o]) {
                    snprintf(how + k, sizeof how - k, ", guard trampled");
                    break;
                }
            printf("%s    planted bug found, as it must be: %-24s %-44s %s\n", e ? "" : "\n",
                   cs->name, how, broken_expect[e].bug);
        }
        cnb_conform_ref_free(&ref);
    }
}

static void test_broken_backend(void)
{
    cnb_registry reg, scan;
    char err[1024] = "";
    cnb_registry_init(&reg);
    cnb_registry_init(&scan);
    int rc = cnb_registry_load_file(&reg, BROKEN_PATH, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\nconformance: %s (build it: ninja -C build)\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    const cnb_backend_desc *broken = cnb_registry_backend(&reg, "fixture.broken");
    CU_ASSERT_PTR_NOT_NULL(broken);
    cnb_registry_scan_default(&scan);
    const cnb_backend_desc *naive = cnb_registry_backend(&scan, "naive");
    CU_ASSERT_PTR_NOT_NULL(naive);
    conf_backend nb = {0}, bb = {0};
    if (broken && naive && backend_init(&nb, naive) == CNB_OK &&
        backend_init(&bb, broken) == CNB_OK) {
        /* Some planted bugs show in a handful of values only (zero padding beats a window
         * of negatives a few times per case): the expectations hold for the default
         * seed, so this test ignores CNB_TEST_SEED. */
        const uint64_t user_seed = cnb_check_seed();
        cnb_check_seed_set(CNB_CHECK_DEFAULT_SEED);
        broken_run(&bb, &nb);
        cnb_check_seed_set(user_seed);
    } else if (broken && naive) {
        CU_FAIL("init of naive or fixture.broken failed");
    }
    backend_fini(&bb);
    backend_fini(&nb);
    cnb_registry_free(&scan);
    cnb_registry_free(&reg);
}

/* Naive's kernels, the reference's, hold what they allocated (check_held) on every case of
 * the table. */
static void test_naive_bytes(void)
{
    const cnb_backend_desc *naive = cnb_registry_backend(test_registry(), "naive");
    conf_backend nb;
    CU_ASSERT_PTR_NOT_NULL_FATAL(naive);
    CU_ASSERT_EQUAL_FATAL(backend_init(&nb, naive), CNB_OK);
    for (int row = 0; row < cnb_conform_n_cases; row++) {
        const cnb_conform_case *cs = &cnb_conform_cases[row];
        if (cs->flags & CNB_CASE_FUSED)
            continue;
        const cnb_op_desc d = cnb_conform_case_desc(cs);
        cnb_kernel *k = NULL;
        cnb_heap_arm();
        const cnb_heap_tally h0 = cnb_heap_read();
        CU_ASSERT_EQUAL_FATAL(naive->kernel_create(nb.state, &d, &k), CNB_OK);
        const cnb_heap_tally h1 = cnb_heap_read();
        cnb_heap_disarm();
        check_held("naive", cs->name, (long long)naive->kernel_bytes(k),
                   (cnb_heap_tally){h1.bytes - h0.bytes, h1.calls - h0.calls});
        k->destroy(k);
    }
    backend_fini(&nb);
}

/* The direct backend runs the kernels CNB_DIRECT_ISA and the CPU call for (plain C when
 * asked for "scalar" or without avx512f) and says which in info(): the test direct-scalar
 * (tests/meson.build) counts on it to check the plain-C path on a CPU with AVX-512. */
static void test_direct_isa(void)
{
    const cnb_backend_desc *direct = cnb_registry_backend(test_registry(), "direct");
    if (!direct) {
        fprintf(stderr, "\nconformance: no 'direct' backend built: its ISA not checked\n");
        return;
    }
    const int plain = !test_direct_avx512();
    conf_backend b;
    CU_ASSERT_EQUAL_FATAL(backend_init(&b, direct), CNB_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(direct->info);
    CHECK_MSG(direct->info(b.state), plain ? "plain-C kernels" : "AVX-512F kernels");
    backend_fini(&b);
}

/* onednn says which of its kernels oneDNN runs by Winograd: the case the table has for it
 * gets it on a CPU with AVX-512 at 1 thread, as at 2 (so that the shape table checks that
 * path against naive on a 2-core machine; oneDNN's choice depends on the threads), and a
 * LeNet-5 convolution, 5x5, does not. */
static void test_onednn_algorithm(void)
{
    const cnb_backend_desc *onednn = cnb_registry_backend(test_registry(), "onednn");
    if (!onednn) {
        fprintf(stderr, "\nconformance: no 'onednn' backend built: its algorithm not checked\n");
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(CNB_BACKEND_FIELD(onednn, algorithm));
    const cnb_backend_config one = {.threads = 1};
    void *state = NULL;
    CU_ASSERT_EQUAL_FATAL(onednn->init(cnb_host_services(), &one, &state), CNB_OK);
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    for (int row = 0; row < cnb_conform_n_cases; row++) {
        const cnb_conform_case *cs = &cnb_conform_cases[row];
        const int wino = !strcmp(cs->name, "winograd.conv.3x3.n16");
        if (!wino && strcmp(cs->name, "lenet.conv2.n64"))
            continue;
        const cnb_op_desc d = cnb_conform_case_desc(cs);
        cnb_kernel *k = NULL;
        CU_ASSERT_EQUAL_FATAL(onednn->kernel_create(state, &d, &k), CNB_OK);
        const char *alg = onednn->algorithm(k);
        if (wino && avx512) {
            CU_ASSERT_STRING_EQUAL(alg ? alg : "(none)", "winograd");
        } else if (!wino) {
            CU_ASSERT_PTR_NULL(alg);
        }
        k->destroy(k);
    }
    onednn->fini(state);
}

void suite_conformance(void)
{
    static const test_case tests[] = {
        {"the checker flags each bug of fixture.broken", test_broken_backend},
        {"direct runs the kernels CNB_DIRECT_ISA and the CPU call for", test_direct_isa},
        {"every backend matches naive on the shape table", test_backends},
        {"naive's kernels hold what they allocated", test_naive_bytes},
        {"onednn says which of its kernels run by Winograd", test_onednn_algorithm},
        {NULL, NULL},
    };
    test_add_suite("conformance", tests);
}
