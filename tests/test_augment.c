/*
 * test_augment.c - the data processing steps (core/src/augment.c) and the CIFAR-10 binary
 * loader (core/src/dataset.c).
 *
 * Each step against values worked out by hand or computed here independently: flips,
 * crops at chosen and random offsets (padding zeros where they must be), bilinear resizes
 * with half-pixel centres (constant images, 2x2 <-> 4x4, odd ratios), PCA lighting on
 * images and datasets whose covariance is known in closed form or checked by power
 * iteration, the pipeline against the same steps composed by hand, its reproducibility
 * and every bad setting; CIFAR-10 files the tests write in the real format.
 *
 * Not here: the training loop that calls the pipeline (test_train.c) and the real CIFAR-10
 * files (not on these machines). The batch timing is printed, not asserted.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "augment.h"
#include "cnnbench/plugin.h"
#include "dataset.h"
#include "rng.h"
#include "testutil.h"

/* Assert that call (evaluated once) returned 0, printing the message when it did not. */
#define CHECK_OK(call, err)                                                                \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != 0)                                                                      \
            fprintf(stderr, "\n  %s:%d: failed (%d): %s\n", __FILE__, __LINE__, rc_, (err)); \
        CU_ASSERT_EQUAL_FATAL(rc_, 0);                                                     \
    } while (0)

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_augment: out of memory\n");
        exit(2);
    }
    return p;
}

/* An image whose every pixel says where it is: 1 + 10000 ch + 100 y + x (exact floats). */
static float *where_image(int c, int h, int w)
{
    float *p = alloc_floats((size_t)c * h * w);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                p[((size_t)k * h + y) * w + x] = (float)(1 + 10000 * k + 100 * y + x);
    return p;
}

/* ---- flip --------------------------------------------------------------------------- */

static void test_flip(void)
{
    for (int w = 1; w <= 6; w++) {
        int c = 3, h = 4;
        size_t n = (size_t)c * h * w;
        float *src = where_image(c, h, w), *dst = alloc_floats(n);
        cnb_flip_h(src, c, h, w, dst);
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    CU_ASSERT_EQUAL(dst[((size_t)k * h + y) * w + x],
                                    src[((size_t)k * h + y) * w + (w - 1 - x)]);
        cnb_flip_h(dst, c, h, w, dst); /* in place: back to the original */
        CU_ASSERT_EQUAL(memcmp(dst, src, n * sizeof *src), 0);
        cnb_flip_h(dst, c, h, w, dst);
        cnb_flip_h(dst, c, h, w, dst);
        CU_ASSERT_EQUAL(memcmp(dst, src, n * sizeof *src), 0);
        free(src);
        free(dst);
    }
}

/* ---- crop --------------------------------------------------------------------------- */

/* What a crop at (y0, x0) of the padded image must hold at (k, y, x). */
static float padded_at(const float *src, int h, int w, int pad, int k, int y, int x)
{
    int sy = y - pad, sx = x - pad;
    return sy < 0 || sy >= h || sx < 0 || sx >= w ? 0.0f : src[((size_t)k * h + sy) * w + sx];
}

static int crop_matches(const float *src, int c, int h, int w, int pad, int y0, int x0,
                        const float *dst, int ch, int cw)
{
    for (int k = 0; k < c; k++)
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
                if (dst[((size_t)k * ch + y) * cw + x] !=
                    padded_at(src, h, w, pad, k, y0 + y, x0 + x))
                    return 0;
    return 1;
}

static void test_crop_random_inside(void)
{
    int c = 2, h = 7, w = 9, ch = 4, cw = 5;
    float *src = where_image(c, h, w), *dst = alloc_floats((size_t)c * ch * cw + 1);
    struct cnb_rng r;
    char err[256];
    cnb_rng_seed(&r, 5, 1);
    int seen_y[4] = {0}, seen_x[5] = {0};
    dst[c * ch * cw] = -7.0f; /* guard */
    for (int i = 0; i < 300; i++) {
        int y0 = -1, x0 = -1;
        int rc = cnb_crop_random(src, c, h, w, 0, ch, cw, &r, dst, &y0, &x0, err, sizeof err);
        CHECK_OK(rc, err);
        CU_ASSERT_FATAL(y0 >= 0 && y0 <= h - ch && x0 >= 0 && x0 <= w - cw);
        seen_y[y0]++, seen_x[x0]++;
        CU_ASSERT(crop_matches(src, c, h, w, 0, y0, x0, dst, ch, cw));
        for (size_t k = 0; k < (size_t)c * ch * cw; k++) /* inside: never a padding zero */
            CU_ASSERT_FATAL(dst[k] > 0.0f);
    }
    CU_ASSERT_EQUAL(dst[c * ch * cw], -7.0f);
    for (int i = 0; i < 4; i++) /* every offset occurs (300 draws over 4 and 5 values) */
        CU_ASSERT(seen_y[i] > 30);
    for (int i = 0; i < 5; i++)
        CU_ASSERT(seen_x[i] > 30);
    free(src);
    free(dst);
}

static void test_crop_padded_corners(void)
{
    /* 1 x 3 x 4 padded by 2 is 7 x 8; a 3 x 4 crop has offsets 0..4 and 0..4. */
    int h = 3, w = 4, pad = 2, ch = 3, cw = 4;
    float *src = where_image(1, h, w), dst[12];
    char err[256];

    CHECK_OK(cnb_crop(src, 1, h, w, pad, 0, 0, ch, cw, dst, err, sizeof err), err);
    const float top_left[12] = {0, 0, 0, 0, /* padding rows */ 0, 0, 0, 0,
                                0, 0, 1, 2}; /* row 0 of the image, 2 columns of zeros */
    CU_ASSERT_EQUAL(memcmp(dst, top_left, sizeof dst), 0);

    CHECK_OK(cnb_crop(src, 1, h, w, pad, 4, 4, ch, cw, dst, err, sizeof err), err);
    const float bottom_right[12] = {203, 204, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(dst, bottom_right, sizeof dst), 0);

    for (int y0 = 0; y0 <= 4; y0++)
        for (int x0 = 0; x0 <= 4; x0++) {
            CHECK_OK(cnb_crop(src, 1, h, w, pad, y0, x0, ch, cw, dst, err, sizeof err), err);
            CU_ASSERT(crop_matches(src, 1, h, w, pad, y0, x0, dst, ch, cw));
        }

    /* A crop wider than the padded image, at far offsets: zeros on both sides. */
    float wide[2 * 10];
    CHECK_OK(cnb_crop(src, 1, h, w, 3, 4, 0, 2, 10, wide, err, sizeof err), err);
    CU_ASSERT(crop_matches(src, 1, h, w, 3, 4, 0, wide, 2, 10));
    CU_ASSERT_EQUAL(wide[3], 101.0f); /* padded row 4 is image row 1 */
    CU_ASSERT_EQUAL(wide[2], 0.0f);
    CU_ASSERT_EQUAL(wide[7], 0.0f);
    free(src);
}

static void test_crop_center_and_errors(void)
{
    int c = 3, h = 5, w = 6;
    float *src = where_image(c, h, w), *dst = alloc_floats((size_t)c * h * w);
    char err[256];
    /* Same size as the image: the image itself, whatever the padding. */
    for (int pad = 0; pad <= 3; pad++) {
        CHECK_OK(cnb_crop_center(src, c, h, w, pad, h, w, dst, err, sizeof err), err);
        CU_ASSERT_EQUAL(memcmp(dst, src, (size_t)c * h * w * sizeof *src), 0);
    }
    /* 5 x 6 to 2 x 3: offset (1, 1) (rounded down). */
    CHECK_OK(cnb_crop_center(src, c, h, w, 0, 2, 3, dst, err, sizeof err), err);
    CU_ASSERT_EQUAL(dst[0], 102.0f);
    CU_ASSERT(crop_matches(src, c, h, w, 0, 1, 1, dst, 2, 3));

    /* Larger than the padded image: the message names the sizes; dst untouched. */
    dst[0] = -1.0f;
    int rc = cnb_crop(src, c, h, w, 1, 0, 0, 8, 6, dst, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "8x6 is larger than the 5x6 image padded by 1 (7x8)");
    rc = cnb_crop_center(src, c, h, w, 0, 5, 7, dst, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "5x7 is larger than the 5x6 image padded by 0 (5x6)");
    struct cnb_rng r;
    cnb_rng_seed(&r, 1, 1);
    rc = cnb_crop_random(src, c, h, w, 0, 6, 6, &r, dst, NULL, NULL, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "6x6 is larger");
    rc = cnb_crop(src, c, h, w, 0, 4, 0, 2, 2, dst, err, sizeof err); /* offset too far */
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "offset (4, 0)");
    CHECK_MSG(err, "y in 0..3");
    rc = cnb_crop(src, c, h, w, -1, 0, 0, 2, 2, dst, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "padding -1");
    CU_ASSERT_EQUAL(dst[0], -1.0f);
    free(src);
    free(dst);
}

/* ---- resize ------------------------------------------------------------------------- */

static void test_resize_constant(void)
{
    static const int sizes[][4] = {{1, 1, 5, 3},   {3, 7, 13, 2}, {28, 28, 227, 227},
                                   {5, 5, 2, 3},   {2, 9, 9, 2},  {32, 32, 300, 17}};
    char err[256];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int h = sizes[s][0], w = sizes[s][1], oh = sizes[s][2], ow = sizes[s][3];
        float *src = alloc_floats((size_t)2 * h * w), *dst = alloc_floats((size_t)2 * oh * ow);
        for (int k = 0; k < h * w; k++)
            src[k] = 0.3f, src[h * w + k] = 7.1f;
        CHECK_OK(cnb_resize_bilinear(src, 2, h, w, dst, oh, ow, err, sizeof err), err);
        int bad = 0;
        for (int k = 0; k < oh * ow; k++)
            bad += dst[k] != 0.3f || dst[oh * ow + k] != 7.1f;
        CU_ASSERT_EQUAL(bad, 0);
        free(src);
        free(dst);
    }
}

static void check_floats(const float *got, const float *want, int n, float tol)
{
    for (int k = 0; k < n; k++) {
        if (fabsf(got[k] - want[k]) > tol)
            fprintf(stderr, "\n  [%d]: got %.7g, want %.7g\n", k, got[k], want[k]);
        CU_ASSERT(fabsf(got[k] - want[k]) <= tol);
    }
}

static void test_resize_known(void)
{
    char err[256];
    /* 2x2 -> 4x4. Source positions along each axis: (x + 0.5) / 2 - 0.5 = -0.25 (clamped
     * to 0), 0.25, 0.75, 1.25 (clamped to the last pixel). */
    const float s2[4] = {1, 2, 3, 4};
    const float up[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                          2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    float d16[16];
    CHECK_OK(cnb_resize_bilinear(s2, 1, 2, 2, d16, 4, 4, err, sizeof err), err);
    check_floats(d16, up, 16, 1e-6f);

    /* 4x4 -> 2x2: positions 0.5 and 2.5, so each output is the mean of a 2x2 block. */
    float s16[16], d4[4];
    for (int k = 0; k < 16; k++)
        s16[k] = (float)k;
    const float down[4] = {2.5f, 4.5f, 10.5f, 12.5f};
    CHECK_OK(cnb_resize_bilinear(s16, 1, 4, 4, d4, 2, 2, err, sizeof err), err);
    check_floats(d4, down, 4, 1e-6f);

    /* Odd ratios along one axis: 1x3 {0, 3, 6} -> 1x2 at 0.25, 1.75: {0.75, 5.25};
     * 1x2 {0, 4} -> 1x3 at -1/6 (clamped), 0.5, 7/6 (clamped): {0, 2, 4}. */
    const float s3[3] = {0, 3, 6}, s2b[2] = {0, 4};
    const float want2[2] = {0.75f, 5.25f}, want3[3] = {0, 2, 4};
    float d2[2], d3[3];
    CHECK_OK(cnb_resize_bilinear(s3, 1, 1, 3, d2, 1, 2, err, sizeof err), err);
    check_floats(d2, want2, 2, 1e-6f);
    CHECK_OK(cnb_resize_bilinear(s2b, 1, 1, 2, d3, 1, 3, err, sizeof err), err);
    check_floats(d3, want3, 3, 1e-6f);

    /* The same size is a copy; channels are resized independently (here transposed: a
     * 3x1 column resizes like the 1x3 row). */
    CHECK_OK(cnb_resize_bilinear(s16, 1, 4, 4, d16, 4, 4, err, sizeof err), err);
    CU_ASSERT_EQUAL(memcmp(d16, s16, sizeof s16), 0);
    const float s3c[6] = {0, 3, 6, 10, 10, 10}; /* channel 0 varies, channel 1 constant */
    float d2c[4];
    CHECK_OK(cnb_resize_bilinear(s3c, 2, 3, 1, d2c, 2, 1, err, sizeof err), err);
    const float want2c[4] = {0.75f, 5.25f, 10, 10};
    check_floats(d2c, want2c, 4, 1e-6f);

    /* Bad sizes: an error naming them, dst untouched. */
    d4[0] = -1.0f;
    int rc = cnb_resize_bilinear(s16, 1, 4, 4, d4, 0, 4, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "resize");
    CHECK_MSG(err, "0x4");
    rc = cnb_resize_bilinear(s16, 1, 4, 4, d4, 3, -2, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "3x-2");
    rc = cnb_resize_bilinear(s16, 0, 4, 4, d4, 2, 2, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CU_ASSERT_EQUAL(d4[0], -1.0f);
}

/* ---- PCA lighting ------------------------------------------------------------------- */

static void test_pca_delta_formula(void)
{
    /* delta = V (alpha .* lambda), worked by hand: alpha .* lambda = (0.1, -0.1, 0.6). */
    const float v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, lambda[3] = {1, 0.5f, 2};
    const float alpha[3] = {0.1f, -0.2f, 0.3f}, want[3] = {1.7f, 3.5f, 5.3f};
    float delta[3];
    cnb_pca_delta(3, v, lambda, alpha, delta);
    check_floats(delta, want, 3, 1e-5f);
    const float v1 = 2, l1 = 3, a1 = -0.5f; /* c = 1: the product */
    cnb_pca_delta(1, &v1, &l1, &a1, delta);
    CU_ASSERT_DOUBLE_EQUAL(delta[0], -3.0, 1e-6);
}

/*
 * A 3 x h x w image (h, w even) whose channels, once z-scored, have the correlation matrix
 * [[1, 1/2, 0], [1/2, 1, 0], [0, 0, 1]]: from the 2x2 tiles u = (1, 1, -1, -1),
 * v = (1, -1, 1, -1), t = (1, -1, -1, 1) (zero mean, orthogonal, mean square 1),
 * R = u, G = u/2 + v sqrt(3)/2, B = t, each then scaled and shifted (which z-scoring undoes).
 * Eigenvalues 1/2, 1, 3/2 with eigenvectors (1, -1, 0)/sqrt 2, (0, 0, 1), (1, 1, 0)/sqrt 2.
 */
static float *known_corr_image(int h, int w)
{
    float *p = alloc_floats((size_t)3 * h * w);
    size_t n = (size_t)h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = y % 2 ? -1 : 1, v = x % 2 ? -1 : 1, t = u * v;
            size_t k = (size_t)y * w + x;
            p[k] = (float)(0.3 + 0.2 * u);
            p[n + k] = (float)(0.5 + 0.05 * (0.5 * u + sqrt(3.0) / 2 * v));
            p[2 * n + k] = (float)(0.1 + 0.7 * t);
        }
    return p;
}

static const double known_vals[3] = {0.5, 1.0, 1.5};
#define R2 0.70710678118654752
static const double known_vecs[9] = {R2, 0, R2, -R2, 0, R2, 0, 1, 0}; /* columns */

static void test_pca_image_known(void)
{
    int h = 4, w = 6;
    size_t n = (size_t)h * w;
    float *img = known_corr_image(h, w), *lit = alloc_floats(3 * n);
    char err[256];
    cnb_pca p;
    CHECK_OK(cnb_pca_image(&p, img, 3, h, w, err, sizeof err), err);
    CU_ASSERT_EQUAL(p.c, 3);
    for (int k = 0; k < 3; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vals[k], known_vals[k], 1e-5);
    for (int k = 0; k < 9; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vecs[k], known_vecs[k], 1e-5);

    /* Lighting: one constant per channel, V (alpha .* lambda) with alpha drawn as
     * documented (sigma * N(0, 1), in eigenvalue order) from an identically seeded stream. */
    memcpy(lit, img, 3 * n * sizeof *img);
    struct cnb_rng r, mine;
    cnb_rng_seed(&r, 11, CNB_STREAM_AUGMENT);
    cnb_rng_seed(&mine, 11, CNB_STREAM_AUGMENT);
    float delta[3];
    CHECK_OK(cnb_lighting_image(lit, 3, h, w, 0.5f, &r, delta, err, sizeof err), err);
    double alpha[3], want[3];
    for (int k = 0; k < 3; k++)
        alpha[k] = 0.5 * cnb_rng_normal(&mine);
    for (int i = 0; i < 3; i++) {
        want[i] = 0.0;
        for (int k = 0; k < 3; k++)
            want[i] += known_vecs[i * 3 + k] * alpha[k] * known_vals[k];
        CU_ASSERT_DOUBLE_EQUAL(delta[i], want[i], 1e-5);
        for (size_t k = 0; k < n; k++)
            CU_ASSERT_DOUBLE_EQUAL(lit[i * n + k] - img[i * n + k], want[i], 2e-6);
    }
    CU_ASSERT(fabs(want[0]) > 1e-3 && fabs(want[1]) > 1e-3 && fabs(want[2]) > 1e-3);
    free(img);
    free(lit);
}

static void test_pca_image_edges(void)
{
    char err[256];
    cnb_pca p;
    struct cnb_rng r, mine;
    /* One channel: the correlation is 1, so delta = alpha; a constant image gets 0. */
    float grey[6] = {0.1f, 0.5f, 0.2f, 0.9f, 0.4f, 0.3f}, flat[6] = {2, 2, 2, 2, 2, 2};
    CHECK_OK(cnb_pca_image(&p, grey, 1, 2, 3, err, sizeof err), err);
    CU_ASSERT_DOUBLE_EQUAL(p.vals[0], 1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(p.vecs[0], 1.0, 1e-6);
    cnb_rng_seed(&r, 3, 3);
    cnb_rng_seed(&mine, 3, 3);
    float delta[3];
    CHECK_OK(cnb_lighting_image(grey, 1, 2, 3, 0.1f, &r, delta, err, sizeof err), err);
    double alpha = 0.1 * cnb_rng_normal(&mine);
    CU_ASSERT_DOUBLE_EQUAL(delta[0], alpha, 1e-6);
    CU_ASSERT(fabs(alpha) > 1e-4);
    CHECK_OK(cnb_lighting_image(flat, 1, 2, 3, 0.1f, &r, delta, err, sizeof err), err);
    CU_ASSERT_EQUAL(delta[0], 0.0f);
    CU_ASSERT_EQUAL(flat[5], 2.0f);

    /* A constant channel among three is only centred (all zeros): its eigenvalue is 0 and
     * it is never shifted; the others still are. */
    int h = 4, w = 4;
    size_t n = (size_t)h * w;
    float *img = known_corr_image(h, w);
    for (size_t k = 0; k < n; k++)
        img[2 * n + k] = 0.25f;
    CHECK_OK(cnb_pca_image(&p, img, 3, h, w, err, sizeof err), err);
    CU_ASSERT_DOUBLE_EQUAL(p.vals[0], 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(p.vals[1], 0.5, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(p.vals[2], 1.5, 1e-5);
    CHECK_OK(cnb_lighting_image(img, 3, h, w, 0.3f, &r, delta, err, sizeof err), err);
    CU_ASSERT(fabsf(delta[2]) < 1e-7f);
    CU_ASSERT_EQUAL(img[2 * n + 3], 0.25f);
    CU_ASSERT(fabsf(delta[0]) > 0.0f);

    /* Non-finite pixels and too many channels are errors. */
    img[5] = NAN;
    CU_ASSERT_EQUAL(cnb_pca_image(&p, img, 3, h, w, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "not finite");
    float five[5 * 4] = {0};
    CU_ASSERT_EQUAL(cnb_pca_image(&p, five, 5, 2, 2, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "5 channels");
    free(img);
}

/* Largest eigenpair of a symmetric 3x3 matrix by power iteration (a is row-major). */
static double power_iteration(const double *a, double *v)
{
    double lambda = 0.0;
    v[0] = 1.0, v[1] = 0.7, v[2] = 0.3;
    for (int it = 0; it < 2000; it++) {
        double u[3], norm = 0.0;
        for (int i = 0; i < 3; i++) {
            u[i] = a[i * 3] * v[0] + a[i * 3 + 1] * v[1] + a[i * 3 + 2] * v[2];
            norm += u[i] * u[i];
        }
        norm = sqrt(norm);
        lambda = norm;
        for (int i = 0; i < 3; i++)
            v[i] = u[i] / norm;
    }
    int big = 0; /* the sign convention of augment.h */
    for (int i = 1; i < 3; i++)
        if (fabs(v[i]) > fabs(v[big]))
            big = i;
    if (v[big] < 0)
        for (int i = 0; i < 3; i++)
            v[i] = -v[i];
    return lambda;
}

/* A dataset of n images 3 x h x w from the stream: R = a, G = 0.6a + 0.4b,
 * B = 0.2a - 0.5b + 0.3c, a, b, c uniform. */
static cnb_dataset mixed_dataset(int n, int h, int w, uint64_t seed)
{
    cnb_dataset d = {.n = n, .c = 3, .h = h, .w = w, .classes = 2};
    size_t hw = (size_t)h * w;
    d.images = alloc_floats((size_t)n * 3 * hw);
    d.labels = calloc((size_t)n, sizeof *d.labels);
    struct cnb_rng r;
    cnb_rng_seed(&r, seed, 9);
    for (int i = 0; i < n; i++) {
        float *img = d.images + (size_t)i * 3 * hw;
        for (size_t k = 0; k < hw; k++) {
            float a = cnb_rng_uniform(&r), b = cnb_rng_uniform(&r), c = cnb_rng_uniform(&r);
            img[k] = a;
            img[hw + k] = 0.6f * a + 0.4f * b;
            img[2 * hw + k] = 0.2f * a - 0.5f * b + 0.3f * c;
        }
        d.labels[i] = i % 2;
    }
    return d;
}

static void test_pca_dataset(void)
{
    char err[256];
    cnb_pca p;
    cnb_dataset d = mixed_dataset(7, 5, 6, 21);
    CHECK_OK(cnb_pca_dataset(&p, &d, err, sizeof err), err);

    /* The covariance, computed here directly: E[xy] - E[x]E[y] in one pass. */
    double s[3] = {0}, sxy[9] = {0}, cov[9];
    size_t hw = 30, count = 7 * hw;
    for (int i = 0; i < 7; i++)
        for (size_t k = 0; k < hw; k++) {
            const float *px = d.images + (size_t)i * 3 * hw + k;
            for (int a = 0; a < 3; a++) {
                s[a] += px[a * hw];
                for (int b = 0; b < 3; b++)
                    sxy[a * 3 + b] += (double)px[a * hw] * px[b * hw];
            }
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            cov[a * 3 + b] = sxy[a * 3 + b] / count - s[a] / count * (s[b] / count);

    /* Ascending, orthonormal, and V diag(lambda) V^T is the covariance. */
    CU_ASSERT(p.vals[0] < p.vals[1] && p.vals[1] < p.vals[2]);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double dot = 0.0, rec = 0.0;
            for (int k = 0; k < 3; k++) {
                dot += (double)p.vecs[k * 3 + a] * p.vecs[k * 3 + b];
                rec += (double)p.vecs[a * 3 + k] * p.vals[k] * p.vecs[b * 3 + k];
            }
            CU_ASSERT_DOUBLE_EQUAL(dot, a == b ? 1.0 : 0.0, 1e-6);
            CU_ASSERT_DOUBLE_EQUAL(rec, cov[a * 3 + b], 1e-6);
        }
    double top_vec[3], top = power_iteration(cov, top_vec);
    CU_ASSERT_DOUBLE_EQUAL(p.vals[2], top, 1e-6);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_DOUBLE_EQUAL(p.vecs[i * 3 + 2], top_vec[i], 1e-5);
    cnb_dataset_free(&d);

    /* Independent channels (the u, v, t tiles, scaled 0.1, 0.3, 0.2 and shifted): the
     * eigenvalues are the variances, the eigenvectors the axes. */
    int h = 2, w = 4;
    cnb_dataset e = {.n = 3, .c = 3, .h = h, .w = w, .classes = 1};
    e.images = alloc_floats((size_t)3 * 3 * h * w);
    size_t hw2 = (size_t)h * w;
    for (int i = 0; i < 3; i++)
        for (size_t k = 0; k < hw2; k++) {
            double u = (k / w) % 2 ? -1 : 1, v = (k % w) % 2 ? -1 : 1, t = u * v;
            e.images[(size_t)i * 3 * hw2 + k] = (float)(0.5 + 0.1 * u);
            e.images[(size_t)i * 3 * hw2 + hw2 + k] = (float)(0.2 + 0.3 * v);
            e.images[(size_t)i * 3 * hw2 + 2 * hw2 + k] = (float)(0.7 + 0.2 * t);
        }
    CHECK_OK(cnb_pca_dataset(&p, &e, err, sizeof err), err);
    const double vals[3] = {0.01, 0.04, 0.09};
    const double vecs[9] = {1, 0, 0, 0, 0, 1, 0, 1, 0}; /* columns: R, B, G */
    for (int k = 0; k < 3; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vals[k], vals[k], 1e-6);
    for (int k = 0; k < 9; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vecs[k], vecs[k], 1e-5);
    free(e.images);
}

/* The eigen data of a 4 x 4 covariance built from its eigenpairs, A = Q diag(1, 2, 3, 4) Q^T:
 * Q's columns orthonormal, every component +-1/2 (so the sign rule's tie picks the first
 * component), and Q not symmetric, so that a transposed reading of the eigenvectors fails
 * as a wrong order or wrong signs do. val_scale scales the values only. */
static void test_pca_known_4x4(void)
{
    static const double q[16] = {0.5,  0.5, 0.5, 0.5,  /* row i: component i of */
                                 0.5,  -0.5, 0.5, -0.5, /* eigenvectors 0..3    */
                                 -0.5, 0.5, 0.5, -0.5,
                                 -0.5, -0.5, 0.5, 0.5};
    double cov[16] = {0};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 4; k++)
                cov[i * 4 + j] += q[i * 4 + k] * (k + 1) * q[j * 4 + k];
    char err[256];
    cnb_pca p;
    CHECK_OK(cnb_pca_from_cov(&p, cov, 4, 0.5, err, sizeof err), err);
    CU_ASSERT_EQUAL(p.c, 4);
    for (int k = 0; k < 4; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vals[k], 0.5 * (k + 1), 1e-6);
    for (int k = 0; k < 16; k++)
        CU_ASSERT_DOUBLE_EQUAL(p.vecs[k], q[k], 1e-6);
}

static void test_pca_dataset_singular(void)
{
    char err[512];
    cnb_augment a;
    cnb_augment_cfg cfg = {.lighting = CNB_LIGHTING_DATASET, .lighting_sigma = 0.1f};

    /* Grey copied to three channels: rank 1. */
    cnb_dataset d = mixed_dataset(4, 3, 3, 2);
    size_t hw = 9;
    for (int i = 0; i < 4; i++) {
        float *img = d.images + (size_t)i * 3 * hw;
        memcpy(img + hw, img, hw * sizeof *img);
        memcpy(img + 2 * hw, img, hw * sizeof *img);
    }
    int rc = cnb_augment_init(&a, &cfg, &d, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "data.lighting = dataset");
    CHECK_MSG(err, "singular");
    CHECK_MSG(err, "lighting = none");
    CHECK_MSG(err, "lighting = image");
    CU_ASSERT_PTR_NULL(a.err);

    /* Per image it is allowed (each image's own, z-scored, covariance). */
    cfg.lighting = CNB_LIGHTING_IMAGE;
    rc = cnb_augment_init(&a, &cfg, &d, err, sizeof err);
    CHECK_OK(rc, err);
    cnb_augment_free(&a);

    /* A constant channel, and a constant single-channel dataset. */
    cfg.lighting = CNB_LIGHTING_DATASET;
    cnb_dataset_free(&d);
    d = mixed_dataset(4, 3, 3, 2);
    for (int i = 0; i < 4; i++)
        for (size_t k = 0; k < hw; k++)
            d.images[(size_t)i * 3 * hw + hw + k] = 0.5f;
    rc = cnb_augment_init(&a, &cfg, &d, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "singular");
    d.c = 1, d.n = 2, d.h = 1; /* the first 6 pixels of image 0: 3 of R, 3 of G */
    for (int k = 0; k < 6; k++)
        d.images[k] = 0.25f;
    rc = cnb_augment_init(&a, &cfg, &d, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "singular");
    d.images[4] = 0.75f; /* one grey channel that varies: fine */
    rc = cnb_augment_init(&a, &cfg, &d, err, sizeof err);
    CHECK_OK(rc, err);
    CU_ASSERT_DOUBLE_EQUAL(a.pca.vecs[0], 1.0, 1e-6);
    cnb_augment_free(&a);
    d.c = 3, d.n = 4, d.h = 3;
    cnb_dataset_free(&d);
}

/* ---- the pipeline ------------------------------------------------------------------- */

static void test_pipeline_reproducible(void)
{
    char err[256];
    cnb_dataset d = mixed_dataset(6, 12, 12, 4);
    cnb_augment a;
    cnb_augment_cfg cfg = {.crop_h = 8, .crop_w = 9, .crop_pad = 2, .flip = 1,
                           .lighting = CNB_LIGHTING_IMAGE, .lighting_sigma = 0.1f};
    CHECK_OK(cnb_augment_init(&a, &cfg, &d, err, sizeof err), err);
    int c, h, w;
    cnb_augment_out_shape(&a, &c, &h, &w);
    CU_ASSERT(c == 3 && h == 8 && w == 9);
    size_t per = (size_t)c * h * w;
    float *o1 = alloc_floats(6 * per), *o2 = alloc_floats(6 * per), *o3 = alloc_floats(6 * per);
    const uint32_t idx[6] = {0, 1, 2, 3, 4, 5}, some[2] = {3, 1};

    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 1, 7, 0, o1), 0);
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 1, 7, 0, o2), 0);
    CU_ASSERT_EQUAL(memcmp(o1, o2, 6 * per * sizeof *o1), 0);
    /* Another batch holding samples 3 and 1: the same images (no dependence on the batch). */
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, some, 2, 1, 7, 0, o3), 0);
    CU_ASSERT_EQUAL(memcmp(o3, o1 + 3 * per, per * sizeof *o1), 0);
    CU_ASSERT_EQUAL(memcmp(o3 + per, o1 + per, per * sizeof *o1), 0);
    /* Another seed, another epoch: different images (each of the 6). */
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 1, 8, 0, o2), 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_NOT_EQUAL(memcmp(o1 + i * per, o2 + i * per, per * sizeof *o1), 0);
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 1, 7, 1, o2), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(o1, o2, 6 * per * sizeof *o1), 0);
    /* Evaluation: no draws, so the seed does not matter. */
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 0, 7, 0, o1), 0);
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 6, 0, 99, 5, o2), 0);
    CU_ASSERT_EQUAL(memcmp(o1, o2, 6 * per * sizeof *o1), 0);
    cnb_augment_free(&a);
    CU_ASSERT_PTR_NULL(a.err);
    free(o1);
    free(o2);
    free(o3);
    cnb_dataset_free(&d);
}

/* The pipeline equals the single steps composed by hand, in training and evaluation. */
static void test_pipeline_composition(void)
{
    char err[256];
    cnb_dataset d = mixed_dataset(5, 10, 7, 8);
    cnb_augment a;
    cnb_augment_cfg cfg = {.resize_h = 13, .resize_w = 11, .crop_h = 9, .crop_w = 9,
                           .crop_pad = 1, .flip = 1, .lighting = CNB_LIGHTING_DATASET,
                           .lighting_sigma = 0.2f};
    CHECK_OK(cnb_augment_init(&a, &cfg, &d, err, sizeof err), err);
    cnb_pca p;
    CHECK_OK(cnb_pca_dataset(&p, &d, err, sizeof err), err);
    size_t per = 3 * 9 * 9;
    float *out = alloc_floats(5 * per), *rs = alloc_floats(3 * 13 * 11), *mine = alloc_floats(per);
    const uint32_t idx[5] = {4, 0, 2, 1, 3};
    int flips = 0;
    for (int train = 0; train <= 1; train++) {
        CU_ASSERT_EQUAL_FATAL(cnb_augment_batch(&a, &d, idx, 5, train, 42, 3, out), 0);
        for (int i = 0; i < 5; i++) {
            const float *src = d.images + (size_t)idx[i] * 3 * 70;
            struct cnb_rng r;
            cnb_augment_sample_rng(&r, 42, 3, idx[i]);
            CHECK_OK(cnb_resize_bilinear(src, 3, 10, 7, rs, 13, 11, err, sizeof err), err);
            if (train) {
                CHECK_OK(cnb_crop_random(rs, 3, 13, 11, 1, 9, 9, &r, mine, NULL, NULL, err,
                                         sizeof err), err);
                if (cnb_rng_uniform(&r) < 0.5f)
                    cnb_flip_h(mine, 3, 9, 9, mine), flips++;
                cnb_lighting_apply(mine, 9, 9, &p, 0.2f, &r, NULL);
            } else {
                CHECK_OK(cnb_crop_center(rs, 3, 13, 11, 1, 9, 9, mine, err, sizeof err), err);
            }
            CU_ASSERT_EQUAL(memcmp(out + i * per, mine, per * sizeof *mine), 0);
        }
    }
    CU_ASSERT(flips > 0 && flips < 5); /* both branches taken with these seeds */

    /* Without resize or crop the sample is the image, plus lighting in training. */
    cnb_augment_free(&a);
    cnb_augment_cfg none = {0};
    CHECK_OK(cnb_augment_init(&a, &none, &d, err, sizeof err), err);
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, idx, 2, 1, 1, 1, out), 0);
    CU_ASSERT_EQUAL(memcmp(out, d.images + 4 * 210, 210 * sizeof *out), 0);
    CU_ASSERT_EQUAL(memcmp(out + 210, d.images, 210 * sizeof *out), 0);
    cnb_augment_free(&a);
    free(out);
    free(rs);
    free(mine);
    cnb_dataset_free(&d);
}

static void expect_bad(const cnb_dataset *d, cnb_augment_cfg cfg, const char *needle1,
                       const char *needle2)
{
    char err[512] = "";
    cnb_augment a;
    int rc = cnb_augment_init(&a, &cfg, d, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, needle1);
    if (needle2)
        CHECK_MSG(err, needle2);
    CU_ASSERT_PTR_NULL(a.err);
    CU_ASSERT_PTR_NULL(a.scratch);
}

static void test_bad_settings(void)
{
    float px[28 * 28] = {0};
    cnb_dataset d = {.n = 1, .c = 1, .h = 28, .w = 28, .classes = 1, .images = px};
    cnb_augment_cfg g;

    g = (cnb_augment_cfg){.crop_h = 40, .crop_w = 40, .crop_pad = 2};
    expect_bad(&d, g, "data.crop = 40x40 is larger than the 28x28 image padded by 2 (32x32)",
               NULL);
    g = (cnb_augment_cfg){.crop_h = 20, .crop_w = 33, .crop_pad = 2}; /* too wide only */
    expect_bad(&d, g, "data.crop = 20x33 is larger than the 28x28 image padded by 2 (32x32)",
               NULL);
    g = (cnb_augment_cfg){.resize_h = 20, .resize_w = 20, .crop_h = 24, .crop_w = 20};
    expect_bad(&d, g, "data.crop = 24x20 is larger than the 20x20 image (after data.resize)",
               NULL);
    g = (cnb_augment_cfg){.resize_h = 0, .resize_w = 5};
    expect_bad(&d, g, "data.resize = 0x5", "at least 1");
    g = (cnb_augment_cfg){.resize_h = -1, .resize_w = -1};
    expect_bad(&d, g, "data.resize = -1x-1", NULL);
    g = (cnb_augment_cfg){.resize_h = 20000, .resize_w = 20};
    expect_bad(&d, g, "data.resize = 20000x20", "at most 16384");
    g = (cnb_augment_cfg){.crop_h = 0, .crop_w = 3};
    expect_bad(&d, g, "data.crop = 0x3", NULL);
    g = (cnb_augment_cfg){.crop_pad = 4};
    expect_bad(&d, g, "data.crop_pad = 4 needs a crop", "28x28");
    g = (cnb_augment_cfg){.crop_h = 28, .crop_w = 28, .crop_pad = -2};
    expect_bad(&d, g, "data.crop_pad = -2", NULL);
    g = (cnb_augment_cfg){.flip = 2};
    expect_bad(&d, g, "data.flip = 2", NULL);
    g = (cnb_augment_cfg){.lighting = 7};
    expect_bad(&d, g, "data.lighting = 7", "none, image or dataset");
    g = (cnb_augment_cfg){.lighting = CNB_LIGHTING_IMAGE, .lighting_sigma = -0.1f};
    expect_bad(&d, g, "data.lighting_sigma = -0.1", NULL);
    g = (cnb_augment_cfg){.lighting = CNB_LIGHTING_IMAGE, .lighting_sigma = NAN};
    expect_bad(&d, g, "data.lighting_sigma = nan", NULL);
    float px5[5 * 4] = {0};
    cnb_dataset d5 = {.n = 1, .c = 5, .h = 2, .w = 2, .classes = 1, .images = px5};
    g = (cnb_augment_cfg){.lighting = CNB_LIGHTING_IMAGE, .lighting_sigma = 0.1f};
    expect_bad(&d5, g, "data.lighting = image works on 1 to 4 channels", "have 5");
    cnb_dataset empty = {0};
    g = (cnb_augment_cfg){0};
    expect_bad(&empty, g, "no image shape", NULL);

    /* The exact size and the padded maximum are fine. */
    char err[256];
    cnb_augment a;
    g = (cnb_augment_cfg){.crop_h = 32, .crop_w = 32, .crop_pad = 2};
    CHECK_OK(cnb_augment_init(&a, &g, &d, err, sizeof err), err);
    cnb_augment_free(&a);
    cnb_augment_free(&a); /* twice, and on NULL: harmless */
    cnb_augment_free(NULL);
}

static void test_batch_errors(void)
{
    char err[256];
    cnb_dataset d = mixed_dataset(3, 4, 4, 1), other = mixed_dataset(2, 5, 4, 1);
    cnb_augment a;
    cnb_augment_cfg cfg = {.crop_h = 3, .crop_w = 3, .flip = 1};
    CHECK_OK(cnb_augment_init(&a, &cfg, &d, err, sizeof err), err);
    float out[2 * 48]; /* 2 samples of 3 x 4 x 4: the uncropped second setup */
    const uint32_t bad[2] = {1, 3}, good[2] = {0, 2};
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, bad, 2, 1, 1, 0, out), CNB_EINVAL);
    CHECK_MSG(cnb_augment_error(&a), "sample index 3 of a set of 3");
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &other, good, 2, 0, 1, 0, out), CNB_EINVAL);
    CHECK_MSG(cnb_augment_error(&a), "3 x 5 x 4");
    CHECK_MSG(cnb_augment_error(&a), "set up for 3 x 4 x 4");
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, good, 2, 1, 1, 0, out), 0);
    CU_ASSERT_STRING_EQUAL(cnb_augment_error(&a), "");
    cnb_augment_free(&a);
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, good, 2, 1, 1, 0, out), CNB_EINVAL);

    /* Per-image lighting on a NaN pixel: an error naming the sample. */
    cfg = (cnb_augment_cfg){.lighting = CNB_LIGHTING_IMAGE, .lighting_sigma = 0.1f};
    CHECK_OK(cnb_augment_init(&a, &cfg, &d, err, sizeof err), err);
    d.images[2 * 48 + 5] = NAN;
    CU_ASSERT_EQUAL(cnb_augment_batch(&a, &d, good, 2, 1, 1, 0, out), CNB_EINVAL);
    CHECK_MSG(cnb_augment_error(&a), "not finite");
    CHECK_MSG(cnb_augment_error(&a), "(sample 2)");
    cnb_augment_free(&a);
    cnb_dataset_free(&d);
    cnb_dataset_free(&other);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median milliseconds of cnb_augment_batch over reps runs of the whole set. */
static double time_batch(const cnb_augment *a, const cnb_dataset *d, float *out, int reps)
{
    uint32_t idx[32];
    double ms[16];
    for (int i = 0; i < d->n; i++)
        idx[i] = (uint32_t)i;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        CU_ASSERT_EQUAL(cnb_augment_batch(a, d, idx, d->n, 1, 1, (uint64_t)r, out), 0);
        ms[r] = 1e3 * (now_seconds() - t0);
    }
    for (int i = 1; i < reps; i++) /* insertion sort: reps is small */
        for (int j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
            double t = ms[j];
            ms[j] = ms[j - 1], ms[j - 1] = t;
        }
    return ms[reps / 2];
}

static void test_batch_time(void)
{
    /* AlexNet-sized batches of 32: Fashion-MNIST resized to 227 (flip), and 3 x 256 x 256
     * cropped to 227 with flip and lighting (per image and dataset). Printed, not asserted:
     * the numbers depend on the machine (and on valgrind). */
    char err[256];
    cnb_dataset grey = {.n = 32, .c = 1, .h = 28, .w = 28, .classes = 1};
    cnb_dataset rgb = mixed_dataset(32, 256, 256, 6);
    grey.images = alloc_floats(32 * 784);
    for (int k = 0; k < 32 * 784; k++)
        grey.images[k] = (float)(k % 255) / 255.0f;
    float *out = alloc_floats((size_t)32 * 3 * 227 * 227);
    cnb_augment a;
    struct {
        const char *what;
        const cnb_dataset *d;
        cnb_augment_cfg cfg;
    } cases[] = {
        {"1x28x28 -> resize 227x227 + flip", &grey,
         {.resize_h = 227, .resize_w = 227, .flip = 1}},
        {"3x256x256 -> crop 227 + flip + lighting (image)", &rgb,
         {.crop_h = 227, .crop_w = 227, .flip = 1, .lighting = CNB_LIGHTING_IMAGE,
          .lighting_sigma = 0.1f}},
        {"3x256x256 -> crop 227 + flip + lighting (dataset)", &rgb,
         {.crop_h = 227, .crop_w = 227, .flip = 1, .lighting = CNB_LIGHTING_DATASET,
          .lighting_sigma = 0.1f}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(cnb_augment_init(&a, &cases[i].cfg, cases[i].d, err, sizeof err), err);
        double ms = time_batch(&a, cases[i].d, out, 5);
        int c, h, w;
        cnb_augment_out_shape(&a, &c, &h, &w);
        size_t n = (size_t)32 * c * h * w, bad = 0;
        for (size_t k = 0; k < n; k++)
            bad += !isfinite(out[k]) || out[k] < -2.0f || out[k] > 3.0f;
        CU_ASSERT_EQUAL(bad, 0);
        printf("\n    (batch of 32, %s: %.2f ms) ", cases[i].what, ms);
        cnb_augment_free(&a);
    }
    free(out);
    free(grey.images);
    cnb_dataset_free(&rgb);
}

/* ---- CIFAR-10 binary ---------------------------------------------------------------- */

enum { REC = 3073, PIX = 3072 };

/* Pixel byte k of the record labelled i in a test file: varied, distinct per label. */
static unsigned char cifar_px(int i, int k)
{
    return (unsigned char)((k * 7 + i * 31 + k / 1024) % 256);
}

/* n records with labels[i] (less the last `cut` bytes), written raw or gzip to dir/name;
 * path gets dir/name and is returned. */
static const char *write_cifar(char *path, size_t len, const char *dir, const char *name,
                               const int *labels, int n, size_t cut, int gz)
{
    size_t size = (size_t)n * REC - cut;
    unsigned char *b = malloc(size ? size : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < n; i++) {
        unsigned char rec[REC];
        rec[0] = (unsigned char)labels[i];
        for (int k = 0; k < PIX; k++)
            rec[1 + k] = cifar_px(labels[i], k);
        for (int k = 0; k < REC && (size_t)i * REC + k < size; k++)
            b[(size_t)i * REC + k] = rec[k];
    }
    snprintf(path, len, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CU_ASSERT_FATAL(f && (size == 0 || gzwrite(f, b, (unsigned)size) == (int)size) &&
                        gzclose(f) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f && fwrite(b, 1, size, f) == size && fclose(f) == 0);
    }
    free(b);
    return path;
}

/* Sample i of d is a record written with label `label`. */
static void check_cifar_sample(const cnb_dataset *d, int i, int label)
{
    CU_ASSERT_EQUAL(d->labels[i], label);
    const float *img = d->images + (size_t)i * PIX;
    int bad = 0;
    for (int k = 0; k < PIX; k++)
        bad += img[k] != (float)cifar_px(label, k) / 255.0f;
    CU_ASSERT_EQUAL(bad, 0);
    /* CHW: R(0,0) first, G(0,0) at 1024, B(31,31) last. */
    CU_ASSERT_EQUAL(img[1024], (float)cifar_px(label, 1024) / 255.0f);
    CU_ASSERT_EQUAL(img[PIX - 1], (float)cifar_px(label, PIX - 1) / 255.0f);
}

static void test_cifar_load(void)
{
    char dir[256], p1[512], p2[512], err[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    const int l1[2] = {3, 9}, l2[2] = {0, 7};
    for (int gz = 0; gz <= 1; gz++) {
        cnb_dataset d;
        write_cifar(p1, sizeof p1, dir, gz ? "a.bin.gz" : "a.bin", l1, 2, 0, gz);
        write_cifar(p2, sizeof p2, dir, gz ? "b.bin" : "b.bin.gz", l2, 2, 0, !gz);
        const char *one[1] = {p1}, *two[2] = {p1, p2};
        int rc = cnb_cifar_load(&d, one, 1, 0, err, sizeof err);
        CHECK_OK(rc, err);
        CU_ASSERT(d.n == 2 && d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10);
        check_cifar_sample(&d, 0, 3);
        check_cifar_sample(&d, 1, 9);
        cnb_dataset_free(&d);

        rc = cnb_cifar_load(&d, two, 2, 0, err, sizeof err); /* in order, one set */
        CHECK_OK(rc, err);
        CU_ASSERT_EQUAL_FATAL(d.n, 4);
        check_cifar_sample(&d, 2, 0);
        check_cifar_sample(&d, 3, 7);
        cnb_dataset_free(&d);

        rc = cnb_cifar_load(&d, two, 2, 3, err, sizeof err); /* limit across files */
        CHECK_OK(rc, err);
        CU_ASSERT_EQUAL_FATAL(d.n, 3);
        check_cifar_sample(&d, 2, 0);
        CU_ASSERT_EQUAL(d.classes, 10);
        cnb_dataset_free(&d);

        rc = cnb_cifar_load(&d, two, 2, 1, err, sizeof err);
        CHECK_OK(rc, err);
        CU_ASSERT_EQUAL(d.n, 1);
        CU_ASSERT_EQUAL(d.classes, 4); /* 1 + largest label loaded, as the IDX loader */
        cnb_dataset_free(&d);
    }
}

static void test_cifar_split(void)
{
    char dir[256], path[512], err[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    for (int f = 1; f <= 5; f++) { /* batch f holds labels 2(f-1), 2(f-1)+1 */
        char name[64];
        const int labels[2] = {2 * (f - 1), 2 * (f - 1) + 1};
        snprintf(name, sizeof name, f % 2 ? "data_batch_%d.bin" : "data_batch_%d.bin.gz", f);
        write_cifar(path, sizeof path, dir, name, labels, 2, 0, f % 2 == 0);
    }
    const int tl[2] = {5, 6};
    write_cifar(path, sizeof path, dir, "test_batch.bin.gz", tl, 2, 0, 1);

    cnb_dataset d;
    int rc = cnb_cifar_load_split(&d, dir, "train", 0, err, sizeof err);
    CHECK_OK(rc, err);
    CU_ASSERT_EQUAL_FATAL(d.n, 10);
    for (int i = 0; i < 10; i++)
        check_cifar_sample(&d, i, i);
    cnb_dataset_free(&d);
    rc = cnb_cifar_load_split(&d, dir, "test", 0, err, sizeof err);
    CHECK_OK(rc, err);
    CU_ASSERT_EQUAL_FATAL(d.n, 2);
    check_cifar_sample(&d, 1, 6);
    cnb_dataset_free(&d);

    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    snprintf(path, sizeof path, "%s/data_batch_4.bin.gz", dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    rc = cnb_cifar_load_split(&d, dir, "train", 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, dir);
    CHECK_MSG(err, "data_batch_3.bin, data_batch_4.bin");
    CHECK_MSG(err, "cifar-10-batches-bin");
    CU_ASSERT_PTR_NULL(d.images);
    rc = cnb_cifar_load_split(&d, dir, "val", 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "'val'");
}

static void test_cifar_bad_files(void)
{
    char dir[256], path[512], err[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    const int labels[2] = {1, 2}, bad_label[2] = {4, 10};
    cnb_dataset d;
    const char *paths[1] = {path};

    /* Truncated: 2 records less 5 bytes. */
    write_cifar(path, sizeof path, dir, "short.bin", labels, 2, 5, 0);
    int rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "6141 bytes is not a multiple");
    CHECK_MSG(err, "3073");
    CU_ASSERT_PTR_NULL(d.images);
    rc = cnb_cifar_load(&d, paths, 1, 1, err, sizeof err); /* the first record is whole */
    CHECK_OK(rc, err);
    CU_ASSERT_EQUAL(d.n, 1);
    cnb_dataset_free(&d);
    write_cifar(path, sizeof path, dir, "short.bin.gz", labels, 2, 5, 1);
    rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "short.bin.gz: 6141 bytes uncompressed");

    /* Empty, raw and gzip. */
    write_cifar(path, sizeof path, dir, "empty.bin", labels, 0, 0, 0);
    rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "empty.bin: empty");
    CHECK_MSG(err, "3073");
    write_cifar(path, sizeof path, dir, "empty.bin.gz", labels, 0, 0, 1);
    rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "empty.bin.gz: empty");

    /* A label above 9 in the second record. */
    write_cifar(path, sizeof path, dir, "label.bin", bad_label, 2, 0, 0);
    rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "at byte 3073");
    CHECK_MSG(err, "label 10");
    CU_ASSERT_PTR_NULL(d.labels);

    /* Missing file; no files. */
    snprintf(path, sizeof path, "%s/nothing.bin", dir);
    rc = cnb_cifar_load(&d, paths, 1, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "cannot open");
    CHECK_MSG(err, "CIFAR-10");
    rc = cnb_cifar_load(&d, paths, 0, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "no CIFAR-10 files");
}

void suite_augment(void)
{
    static const test_case cases[] = {
        {"flip twice is the identity", test_flip},
        {"random crop stays inside, right size", test_crop_random_inside},
        {"padded crop at the corners", test_crop_padded_corners},
        {"centre crop and crop errors", test_crop_center_and_errors},
        {"resize keeps a constant image", test_resize_constant},
        {"resize against hand values", test_resize_known},
        {"PCA delta formula", test_pca_delta_formula},
        {"per-image PCA on a known correlation", test_pca_image_known},
        {"per-image PCA: grey, constant, bad input", test_pca_image_edges},
        {"dataset PCA against a direct computation", test_pca_dataset},
        {"PCA of a known 4 x 4 covariance", test_pca_known_4x4},
        {"dataset PCA: singular covariance", test_pca_dataset_singular},
        {"pipeline: same seed, same batch", test_pipeline_reproducible},
        {"pipeline: the steps composed by hand", test_pipeline_composition},
        {"pipeline: bad settings", test_bad_settings},
        {"pipeline: bad batches", test_batch_errors},
        {"pipeline: time of an AlexNet batch", test_batch_time},
        {"CIFAR-10: raw and gzip records", test_cifar_load},
        {"CIFAR-10: split by folder", test_cifar_split},
        {"CIFAR-10: truncated, empty, bad label", test_cifar_bad_files},
        {NULL, NULL},
    };
    test_add_suite("augment", cases);
}
