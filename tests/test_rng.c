/* test_rng.c - the seeded streams: repeatable, independent, right distributions. */
#include <math.h>

#include "hash.h"
#include "rng.h"
#include "testutil.h"

static void test_same_seed_same_sequence(void)
{
    struct cnb_rng a, b;
    cnb_rng_seed(&a, 42, 7);
    cnb_rng_seed(&b, 42, 7);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL_FATAL(cnb_rng_u32(&a), cnb_rng_u32(&b));
}

static void test_streams_and_seeds_differ(void)
{
    struct cnb_rng a, b, c;
    cnb_rng_seed(&a, 42, 7);
    cnb_rng_seed(&b, 42, 8);
    cnb_rng_seed(&c, 43, 7);
    int same_stream = 0, same_seed = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = cnb_rng_u32(&a);
        same_stream += x == cnb_rng_u32(&b);
        same_seed += x == cnb_rng_u32(&c);
    }
    CU_ASSERT(same_stream < 3);
    CU_ASSERT(same_seed < 3);
}

static void test_distributions(void)
{
    struct cnb_rng r;
    cnb_rng_seed(&r, 1, 1);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int counts[10] = {0};
    for (int i = 0; i < n; i++) {
        float u = cnb_rng_uniform(&r);
        CU_ASSERT_FATAL(u >= 0.0f && u < 1.0f);
        su += u;
        double z = cnb_rng_normal(&r);
        sn += z, sn2 += z * z;
        uint32_t k = cnb_rng_below(&r, 10);
        CU_ASSERT_FATAL(k < 10);
        counts[k]++;
    }
    CU_ASSERT_DOUBLE_EQUAL(su / n, 0.5, 0.005);
    CU_ASSERT_DOUBLE_EQUAL(sn / n, 0.0, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(sn2 / n, 1.0, 0.02);
    for (int k = 0; k < 10; k++)
        CU_ASSERT(abs(counts[k] - n / 10) < n / 100);
}

/* FNV-1a's published 64-bit values (isthe.com/chongo/tech/comp/fnv), whole and in pieces:
 * fingerprints and the conformance suite's input check rest on them. */
static void test_fnv1a_vectors(void)
{
    CU_ASSERT_EQUAL(cnb_fnv1a(CNB_FNV1A_BASIS, "", 0), 0xcbf29ce484222325ull);
    CU_ASSERT_EQUAL(cnb_fnv1a(CNB_FNV1A_BASIS, "a", 1), 0xaf63dc4c8601ec8cull);
    CU_ASSERT_EQUAL(cnb_fnv1a(CNB_FNV1A_BASIS, "foobar", 6), 0x85944171f73967e8ull);
    CU_ASSERT_EQUAL(cnb_fnv1a(cnb_fnv1a(CNB_FNV1A_BASIS, "foo", 3), "bar", 3),
                    0x85944171f73967e8ull);
}

void suite_rng(void)
{
    static const test_case cases[] = {
        {"same seed, same sequence", test_same_seed_same_sequence},
        {"streams and seeds differ", test_streams_and_seeds_differ},
        {"uniform, normal and below", test_distributions},
        {"FNV-1a matches its published values", test_fnv1a_vectors},
        {NULL, NULL},
    };
    test_add_suite("rng", cases);
}
