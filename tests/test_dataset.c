/*
 * test_dataset.c - the IDX loader and the per-channel statistics (core/src/dataset.c).
 *
 * Tiny IDX pairs are written by the tests themselves (raw and gzip, and damaged in each
 * way the loader must report), then the real Fashion-MNIST files of the Debian package
 * dataset-fashion-mnist are checked against facts read from them independently (counts,
 * first labels, pixel sums, the well-known mean 0.2860 / std 0.3530 of the training split).
 *
 * Not here: anything of the data path beyond loading and normalising (batches, shuffling,
 * augmentation have their own suites).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnbench/plugin.h"
#include "dataset.h"
#include "testutil.h"

/* ---- fixtures ------------------------------------------------------------------------ */

/* A scratch folder for one test and the files written into it, removed by fx_done. */
typedef struct {
    char dir[256];
    char paths[16][320];
    int count;
} fixture;

static void fx_init(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "%s", test_tmpdir());
}

static void fx_done(fixture *fx)
{
    for (int i = 0; i < fx->count; i++)
        unlink(fx->paths[i]);
    rmdir(fx->dir);
}

/* Write bytes to dir/name (gzip-compressed when gz) and return the path. */
static const char *fx_write(fixture *fx, const char *name, const unsigned char *bytes,
                            size_t len, int gz)
{
    if (fx->count == (int)(sizeof fx->paths / sizeof fx->paths[0])) {
        fprintf(stderr, "test_dataset: too many fixture files\n");
        exit(2);
    }
    char *path = fx->paths[fx->count++], tmp[sizeof fx->paths[0]];
    snprintf(tmp, sizeof tmp, "%s/%s", fx->dir, name); /* via tmp: path and dir share fx */
    memcpy(path, tmp, sizeof tmp);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || gzwrite(f, bytes, (unsigned)len) != (int)len || gzclose(f) != Z_OK) {
            fprintf(stderr, "test_dataset: cannot write %s\n", path);
            exit(2);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "test_dataset: cannot write %s\n", path);
            exit(2);
        }
    }
    return path;
}

/* A path in the folder that is never written. */
static const char *fx_missing(fixture *fx, const char *name)
{
    static char path[320];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    return path;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The tiny dataset: 3 images of 2 x 3 and labels 2, 0, 4 (so 5 classes). */
enum { TN = 3, TH = 2, TW = 3 };
static const unsigned char tiny_px[TN * TH * TW] = {
    0,   1,   2,   3,   4,  5,   /* image 0 */
    255, 254, 128, 127, 64, 10,  /* image 1 */
    7,   8,   9,   100, 200, 250 /* image 2 */
};
static const unsigned char tiny_lb[TN] = {2, 0, 4};

/* An IDX image file: magic, n, h, w, then npx pixel bytes from tiny_px (npx <= 18). */
static size_t idx_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t h,
                         uint32_t w, size_t npx)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, h);
    put_be32(buf + 12, w);
    memcpy(buf + 16, tiny_px, npx);
    return 16 + npx;
}

/* An IDX label file: magic, n, then nlb label bytes (cycling through tiny_lb). */
static size_t idx_labels(unsigned char *buf, uint32_t magic, uint32_t n, size_t nlb)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    for (size_t i = 0; i < nlb; i++)
        buf[8 + i] = tiny_lb[i % TN];
    return 8 + nlb;
}

/* Write the good tiny pair; *img and *lab get the paths. */
static void write_tiny(fixture *fx, int gz, const char **img, const char **lab)
{
    unsigned char ib[64], lb[16];
    size_t il = idx_images(ib, 0x00000803, TN, TH, TW, sizeof tiny_px);
    size_t ll = idx_labels(lb, 0x00000801, TN, TN);
    *img = fx_write(fx, gz ? "tiny-images-idx3-ubyte.gz" : "tiny-images-idx3-ubyte", ib, il,
                    gz);
    *lab = fx_write(fx, gz ? "tiny-labels-idx1-ubyte.gz" : "tiny-labels-idx1-ubyte", lb, ll,
                    gz);
}

/* Assert that a load succeeded, printing its message when it did not. */
#define CHECK_LOADED(rc, err)                                                              \
    do {                                                                                   \
        if ((rc) != 0)                                                                     \
            fprintf(stderr, "\n  %s:%d: load failed (%d): %s\n", __FILE__, __LINE__, (rc), \
                    (err));                                                                \
        CU_ASSERT_EQUAL_FATAL((rc), 0);                                                    \
    } while (0)

static void check_tiny(const cnb_dataset *d, int n)
{
    CU_ASSERT_EQUAL(d->n, n);
    CU_ASSERT_EQUAL(d->c, 1);
    CU_ASSERT_EQUAL(d->h, TH);
    CU_ASSERT_EQUAL(d->w, TW);
    int maxl = 0;
    for (int i = 0; i < n; i++)
        maxl = tiny_lb[i] > maxl ? tiny_lb[i] : maxl;
    CU_ASSERT_EQUAL(d->classes, maxl + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->images);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->labels);
    for (int k = 0; k < n * TH * TW; k++)
        CU_ASSERT_EQUAL(d->images[k], (float)tiny_px[k] / 255.0f);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(d->labels[i], tiny_lb[i]);
}

/* ---- loading good files -------------------------------------------------------------- */

static void test_load_raw(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);
    int rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_tiny(&d, TN);
    CU_ASSERT_EQUAL(d.classes, 5);
    CU_ASSERT_EQUAL(d.images[6], 1.0f); /* byte 255 */
    CU_ASSERT_EQUAL(d.images[0], 0.0f);
    cnb_dataset_free(&d);
    CU_ASSERT_PTR_NULL(d.images);
    CU_ASSERT_EQUAL(d.n, 0);
    fx_done(&fx);
}

static void test_load_gzip(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 1, &img, &lab);

    /* The files really are gzip (magic 1f 8b), so the load exercises inflation. */
    FILE *f = fopen(img, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned char m[2] = {0, 0};
    CU_ASSERT_EQUAL(fread(m, 1, 2, f), 2);
    fclose(f);
    CU_ASSERT(m[0] == 0x1f && m[1] == 0x8b);

    int rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_tiny(&d, TN);
    cnb_dataset_free(&d);
    fx_done(&fx);
}

static void test_load_limit(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 1, &img, &lab);

    int rc = cnb_idx_load(&d, img, lab, 2, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_tiny(&d, 2);
    CU_ASSERT_EQUAL(d.classes, 3); /* labels 2, 0: classes counts what was loaded */
    cnb_dataset_free(&d);

    rc = cnb_idx_load(&d, img, lab, 1, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_tiny(&d, 1);
    cnb_dataset_free(&d);

    rc = cnb_idx_load(&d, img, lab, 100, err, sizeof err); /* more than there is: all */
    CHECK_LOADED(rc, err);
    check_tiny(&d, TN);
    cnb_dataset_free(&d);
    fx_done(&fx);
}

static void test_load_split(void)
{
    /* cnb_idx_load_split finds <split>-images-idx3-ubyte[.gz] in a folder, unpacked or not. */
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);
    int rc = cnb_idx_load_split(&d, fx.dir, "tiny", 0, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_tiny(&d, TN);
    cnb_dataset_free(&d);

    rc = cnb_idx_load_split(&d, fx.dir, "nosuch", 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, "nosuch-images-idx3-ubyte.gz");
    CU_ASSERT_PTR_NULL(d.images);
    fx_done(&fx);
}

/* ---- each error a user can cause ----------------------------------------------------- */

static void test_missing_file(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    const char *gone = fx_missing(&fx, "no-such-images.gz");
    int rc = cnb_idx_load(&d, gone, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, gone);
    CHECK_MSG(err, "cannot open");
    CHECK_MSG(err, "dataset-fashion-mnist");
    CHECK_MSG(err, "/usr/share/datasets/fashion-mnist");
    CHECK_MSG(err, "data folder");
    CU_ASSERT_PTR_NULL(d.images);
    CU_ASSERT_PTR_NULL(d.labels);

    gone = fx_missing(&fx, "no-such-labels.gz");
    rc = cnb_idx_load(&d, img, gone, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, gone);
    CHECK_MSG(err, "cannot open");
    CU_ASSERT_PTR_NULL(d.images);
    fx_done(&fx);
}

static void test_bad_magic_images(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char ib[64];
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    size_t il = idx_images(ib, 0x00000804, TN, TH, TW, sizeof tiny_px); /* 4 dims */
    const char *bad = fx_write(&fx, "bad-images", ib, il, 0);
    int rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "magic");
    CHECK_MSG(err, "0x00000804");
    CHECK_MSG(err, "0x00000803");
    CU_ASSERT_PTR_NULL(d.images);

    il = idx_images(ib, 0x00000D03, TN, TH, TW, sizeof tiny_px); /* floats, not bytes */
    bad = fx_write(&fx, "float-images", ib, il, 0);
    rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "0x00000D03");

    /* The paths swapped: the message says so. */
    rc = cnb_idx_load(&d, lab, img, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, lab);
    CHECK_MSG(err, "0x00000801");
    CHECK_MSG(err, "swapped");
    fx_done(&fx);
}

static void test_bad_magic_labels(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char lb[16];
    fx_init(&fx);
    write_tiny(&fx, 1, &img, &lab);

    size_t ll = idx_labels(lb, 0x00000802, TN, TN);
    const char *bad = fx_write(&fx, "bad-labels.gz", lb, ll, 1);
    int rc = cnb_idx_load(&d, img, bad, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "magic");
    CHECK_MSG(err, "0x00000802");
    CHECK_MSG(err, "0x00000801");
    CU_ASSERT_PTR_NULL(d.images);
    CU_ASSERT_PTR_NULL(d.labels);
    fx_done(&fx);
}

static void test_truncated_images(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char ib[64];
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    for (int gz = 0; gz <= 1; gz++) {
        size_t il = idx_images(ib, 0x00000803, TN, TH, TW, sizeof tiny_px - 2);
        const char *bad = fx_write(&fx, gz ? "short-images.gz" : "short-images", ib, il, gz);
        int rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
        CU_ASSERT_EQUAL(rc, CNB_EINVAL);
        CHECK_MSG(err, bad);
        CHECK_MSG(err, "truncated");
        CHECK_MSG(err, "expected 18 bytes");
        CHECK_MSG(err, "got 16");
        CU_ASSERT_PTR_NULL(d.images);

        /* The first two images are whole: a limit of 2 loads them. */
        rc = cnb_idx_load(&d, bad, lab, 2, err, sizeof err);
        CHECK_LOADED(rc, err);
        check_tiny(&d, 2);
        cnb_dataset_free(&d);
    }

    /* A header declaring 2^31 - 1 images the file cannot hold is refused before the
     * loader asks for memory (it asked for 8 GB). */
    for (int gz = 0; gz <= 1; gz++) {
        unsigned char lb[16];
        size_t il = idx_images(ib, 0x00000803, 0x7fffffff, TH, TW, 4);
        size_t ll = idx_labels(lb, 0x00000801, 0x7fffffff, 3);
        const char *huge = fx_write(&fx, gz ? "huge-images.gz" : "huge-images", ib, il, gz);
        const char *many = fx_write(&fx, gz ? "huge-labels.gz" : "huge-labels", lb, ll, gz);
        int rc = cnb_idx_load(&d, huge, many, 0, err, sizeof err);
        CU_ASSERT_EQUAL(rc, CNB_EINVAL);
        CHECK_MSG(err, "truncated");
        CU_ASSERT_PTR_NULL(d.images);
    }

    /* A header cut short. */
    const char *stub = fx_write(&fx, "stub-images", ib, 10, 0);
    int rc = cnb_idx_load(&d, stub, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, stub);
    CHECK_MSG(err, "truncated");
    CHECK_MSG(err, "expected 16 bytes, got 10");
    fx_done(&fx);
}

static void test_truncated_labels(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char lb[16];
    fx_init(&fx);
    write_tiny(&fx, 1, &img, &lab);

    size_t ll = idx_labels(lb, 0x00000801, TN, TN - 1);
    const char *bad = fx_write(&fx, "short-labels.gz", lb, ll, 1);
    int rc = cnb_idx_load(&d, img, bad, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "truncated");
    CHECK_MSG(err, "expected 3 bytes");
    CHECK_MSG(err, "got 2");
    CU_ASSERT_PTR_NULL(d.images);
    CU_ASSERT_PTR_NULL(d.labels);
    fx_done(&fx);
}

static void test_count_mismatch(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char lb[16];
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    size_t ll = idx_labels(lb, 0x00000801, TN + 1, TN + 1);
    const char *other = fx_write(&fx, "four-labels", lb, ll, 0);
    int rc = cnb_idx_load(&d, img, other, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, img);
    CHECK_MSG(err, other);
    CHECK_MSG(err, "3 images");
    CHECK_MSG(err, "4 labels");
    CHECK_MSG(err, "same split");

    /* A limit does not excuse a mismatched pair. */
    rc = cnb_idx_load(&d, img, other, 1, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "4 labels");
    CU_ASSERT_PTR_NULL(d.images);
    fx_done(&fx);
}

static void test_zero_dimension(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char ib[64];
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    size_t il = idx_images(ib, 0x00000803, TN, 0, TW, 0);
    const char *bad = fx_write(&fx, "flat-images", ib, il, 0);
    int rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "3 images of 0 x 3");
    CHECK_MSG(err, "at least 1");
    fx_done(&fx);
}

static void test_corrupt_gzip(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 1, &img, &lab);

    /* Flip a bit of the CRC-32 in the gzip trailer: the data inflate fine, only the
     * check fails. */
    unsigned char buf[256];
    FILE *f = fopen(img, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CU_ASSERT_FATAL(len > 20 && len < sizeof buf);
    buf[len - 8] ^= 0x01;
    const char *bad = fx_write(&fx, "crc-images.gz", buf, len, 0);
    int rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "corrupt gzip stream");
    CU_ASSERT_PTR_NULL(d.images);

    /* Garbage in the deflate data itself. */
    memset(buf + 10, 0xff, len - 18);
    bad = fx_write(&fx, "junk-images.gz", buf, len, 0);
    rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "corrupt gzip stream");
    fx_done(&fx);
}

/* Flip the last byte of the gzip CRC-32 of the file at path (rewriting it in place). */
static void flip_gzip_crc(const char *path)
{
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_FATAL(fseek(f, -5, SEEK_END) == 0); /* trailer: CRC-32, then ISIZE (LE) */
    int c = fgetc(f);
    CU_ASSERT_FATAL(c != EOF);
    CU_ASSERT_FATAL(fseek(f, -5, SEEK_END) == 0);
    CU_ASSERT_FATAL(fputc(c ^ 0x01, f) != EOF);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

static void test_corrupt_gzip_large(void)
{
    /* One 1024 x 1024 image (1 MiB of pixels, as large as the loader's read chunk): zlib
     * inflates a read this large straight into the caller's buffer rather than through
     * its own, and the CRC error must still come out of that path as a message. */
    fixture fx;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    size_t npx = 1024 * 1024;
    unsigned char *ib = malloc(16 + npx), lb[9];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ib);
    put_be32(ib, 0x00000803);
    put_be32(ib + 4, 1);
    put_be32(ib + 8, 1024);
    put_be32(ib + 12, 1024);
    for (size_t k = 0; k < npx; k++)
        ib[16 + k] = (unsigned char)(k * 7 + k / 1000);
    size_t ll = idx_labels(lb, 0x00000801, 1, 1);
    const char *img = fx_write(&fx, "big-images.gz", ib, 16 + npx, 1);
    const char *lab = fx_write(&fx, "big-labels.gz", lb, ll, 1);

    int rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err); /* intact: loads */
    CHECK_LOADED(rc, err);
    CU_ASSERT_EQUAL(d.h, 1024);
    CU_ASSERT_EQUAL(d.images[npx - 1], (float)ib[16 + npx - 1] / 255.0f);
    cnb_dataset_free(&d);

    flip_gzip_crc(img);
    rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EIO);
    CHECK_MSG(err, img);
    CHECK_MSG(err, "corrupt gzip stream");
    CU_ASSERT_PTR_NULL(d.images);
    free(ib);
    fx_done(&fx);
}

static void test_trailing_data(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    unsigned char ib[64];
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);

    /* The header says 3 images of 2 x 2, the file holds 18 pixel bytes. */
    size_t il = idx_images(ib, 0x00000803, TN, TH, TW - 1, sizeof tiny_px);
    const char *bad = fx_write(&fx, "long-images", ib, il, 0);
    int rc = cnb_idx_load(&d, bad, lab, 0, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, bad);
    CHECK_MSG(err, "more data than its header declares");
    fx_done(&fx);
}

/* ---- statistics and normalisation ---------------------------------------------------- */

static void test_stats_normalize(void)
{
    /* 2 images, 3 channels, 1 x 2 pixels, stored (n, c, h, w). Per channel over both
     * images: ch0 = {0, 1, 2, 3}: mean 1.5, std sqrt(1.25); ch1 = {10, 20, 30, 40}: mean
     * 25, std sqrt(125); ch2 = {5, 5, 5, 5}: mean 5, std 0 (normalize must not divide). */
    float px[12] = {
        0, 1,   10, 20,   5, 5, /* image 0: ch0, ch1, ch2 */
        2, 3,   30, 40,   5, 5, /* image 1 */
    };
    cnb_dataset d = {.n = 2, .c = 3, .h = 1, .w = 2, .classes = 1, .images = px};
    double mean[3], std[3];
    cnb_dataset_channel_stats(&d, mean, std);
    CU_ASSERT_DOUBLE_EQUAL(mean[0], 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(std[0], sqrt(1.25), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mean[1], 25.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(std[1], sqrt(125.0), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mean[2], 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(std[2], 0.0, 1e-12);

    cnb_dataset_normalize(&d, mean, std);
    const double s0 = sqrt(1.25), s1 = sqrt(125.0);
    const double want[12] = {
        -1.5 / s0, -0.5 / s0, -15 / s1, -5 / s1, 0, 0,
        0.5 / s0,  1.5 / s0,  5 / s1,   15 / s1, 0, 0,
    };
    for (int k = 0; k < 12; k++)
        CU_ASSERT_DOUBLE_EQUAL(px[k], want[k], 1e-6);

    cnb_dataset_channel_stats(&d, mean, std);
    for (int ch = 0; ch < 3; ch++) {
        CU_ASSERT_DOUBLE_EQUAL(mean[ch], 0.0, 1e-7);
        CU_ASSERT_DOUBLE_EQUAL(std[ch], ch == 2 ? 0.0 : 1.0, 1e-6);
    }
}

/* ---- the validation hold-out --------------------------------------------------------- */

/* n single-pixel images whose pixel is the image's index, label index % 10. */
static void numbered(cnb_dataset *d, int n)
{
    memset(d, 0, sizeof *d);
    d->n = n, d->c = d->h = d->w = 1, d->classes = 10;
    d->images = malloc((size_t)n * sizeof *d->images);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    CU_ASSERT_FATAL(d->images && d->labels);
    for (int i = 0; i < n; i++)
        d->images[i] = (float)i, d->labels[i] = i % 10;
}

/* Held out and kept: every index exactly once, none in both, each part in its order, each
 * label with its image; the same seed holds out the same images, another seed others. */
static void test_holdout(void)
{
    enum { N = 1000, HELD = 100 };
    cnb_dataset train, val, again, val2, other, val3;
    uint32_t crc, crc2, crc3;
    numbered(&train, N);
    numbered(&again, N);
    numbered(&other, N);
    CU_ASSERT_EQUAL_FATAL(cnb_dataset_holdout(&train, HELD, 7, &val, &crc), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_dataset_holdout(&again, HELD, 7, &val2, &crc2), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_dataset_holdout(&other, HELD, 8, &val3, &crc3), 0);
    CU_ASSERT_EQUAL(train.n, N - HELD);
    CU_ASSERT_EQUAL(val.n, HELD);
    CU_ASSERT(val.c == 1 && val.h == 1 && val.w == 1 && val.classes == 10);
    int seen[N] = {0};
    const cnb_dataset *part[2] = {&train, &val};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < part[k]->n; i++) {
            int at = (int)part[k]->images[i];
            CU_ASSERT(at >= 0 && at < N);
            seen[at] += 1;
            CU_ASSERT_EQUAL(part[k]->labels[i], at % 10);
            if (i > 0)
                CU_ASSERT(part[k]->images[i] > part[k]->images[i - 1]);
        }
    int once = 0;
    for (int i = 0; i < N; i++)
        once += seen[i] == 1;
    CU_ASSERT_EQUAL(once, N);
    CU_ASSERT(val.images[HELD - 1] - val.images[0] > N / 2); /* spread, not a block */
    CU_ASSERT_EQUAL(crc, crc2);
    CU_ASSERT_EQUAL(memcmp(val.images, val2.images, HELD * sizeof(float)), 0);
    CU_ASSERT_NOT_EQUAL(crc, crc3);
    CU_ASSERT_NOT_EQUAL(memcmp(val.images, val3.images, HELD * sizeof(float)), 0);
    /* the digest is the CRC-32 of the held-out indices, as meta.ini says */
    uLong want = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < HELD; i++) {
        uint32_t at = (uint32_t)val.images[i];
        unsigned char le[4] = {(unsigned char)at, (unsigned char)(at >> 8),
                               (unsigned char)(at >> 16), (unsigned char)(at >> 24)};
        want = crc32(want, le, 4);
    }
    CU_ASSERT_EQUAL(crc, (uint32_t)want);
    cnb_dataset *all[6] = {&train, &val, &again, &val2, &other, &val3};
    for (int k = 0; k < 6; k++)
        cnb_dataset_free(all[k]);
}

static void test_stats_tiny(void)
{
    fixture fx;
    const char *img, *lab;
    char err[512];
    cnb_dataset d;
    fx_init(&fx);
    write_tiny(&fx, 0, &img, &lab);
    int rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err);
    CHECK_LOADED(rc, err);

    /* By hand: the 18 bytes sum to 1427, squares to 278999; population moments /255. */
    double n = 18, s = 1427, s2 = 278999;
    double m = s / n / 255.0, sd = sqrt(s2 / n / (255.0 * 255.0) - m * m);
    double mean, std;
    cnb_dataset_channel_stats(&d, &mean, &std);
    /* Pixels are stored as floats (byte / 255 off by up to half an ulp, ~3e-8 here). */
    CU_ASSERT_DOUBLE_EQUAL(mean, m, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(std, sd, 1e-7);

    cnb_dataset_normalize(&d, &mean, &std);
    CU_ASSERT_DOUBLE_EQUAL(d.images[6], (1.0 - m) / sd, 1e-6); /* byte 255 */
    cnb_dataset_channel_stats(&d, &mean, &std);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(std, 1.0, 1e-6);
    cnb_dataset_free(&d);
    fx_done(&fx);
}

/* ---- the real Fashion-MNIST files ---------------------------------------------------- */

static void fmnist_paths(const char *split, char *img, char *lab, size_t len)
{
    snprintf(img, len, "%s/%s-images-idx3-ubyte.gz", test_data_dir(), split);
    snprintf(lab, len, "%s/%s-labels-idx1-ubyte.gz", test_data_dir(), split);
}

static long image_byte_sum(const cnb_dataset *d, int i)
{
    long sum = 0;
    size_t sz = (size_t)d->c * d->h * d->w;
    for (size_t k = 0; k < sz; k++)
        sum += lrintf(d->images[(size_t)i * sz + k] * 255.0f);
    return sum;
}

static void check_fmnist(const cnb_dataset *d, int n, const int32_t *first10)
{
    CU_ASSERT_EQUAL_FATAL(d->n, n);
    CU_ASSERT_EQUAL(d->c, 1);
    CU_ASSERT_EQUAL(d->h, 28);
    CU_ASSERT_EQUAL(d->w, 28);
    CU_ASSERT_EQUAL(d->classes, 10);
    int count[10] = {0};
    for (int i = 0; i < d->n; i++) {
        CU_ASSERT_FATAL(d->labels[i] >= 0 && d->labels[i] < 10);
        count[d->labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        CU_ASSERT_EQUAL(count[c], n / 10);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(d->labels[i], first10[i]);
    float lo = 1, hi = 0;
    for (size_t k = 0; k < (size_t)n * 28 * 28; k++) {
        lo = d->images[k] < lo ? d->images[k] : lo;
        hi = d->images[k] > hi ? d->images[k] : hi;
    }
    CU_ASSERT_EQUAL(lo, 0.0f);
    CU_ASSERT_EQUAL(hi, 1.0f);
}

/* Facts read from the files with Python's gzip module, independently of this loader. */
static const int32_t train_first10[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
static const int32_t test_first10[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};

static void test_fmnist_test_split(void)
{
    char err[512];
    cnb_dataset d;
    int rc = cnb_idx_load_split(&d, test_data_dir(), "t10k", 0, err, sizeof err);
    CHECK_LOADED(rc, err);
    check_fmnist(&d, 10000, test_first10);
    CU_ASSERT_EQUAL(image_byte_sum(&d, 0), 33456);
    CU_ASSERT_EQUAL(d.labels[9999], 5);
    double mean, std;
    cnb_dataset_channel_stats(&d, &mean, &std);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.28684928071228494, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(std, 0.35244415324744, 1e-7);
    cnb_dataset_free(&d);
}

static void test_fmnist_train_split(void)
{
    char img[1024], lab[1024], err[512];
    cnb_dataset d, part;
    fmnist_paths("train", img, lab, sizeof img);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = cnb_idx_load(&d, img, lab, 0, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_LOADED(rc, err);
    printf("\n    (full training split loaded in %.3f s) ",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));

    check_fmnist(&d, 60000, train_first10);
    CU_ASSERT_EQUAL(image_byte_sum(&d, 0), 76247);
    CU_ASSERT_EQUAL(d.labels[59999], 5);
    double mean, std;
    cnb_dataset_channel_stats(&d, &mean, &std);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.2860405969887955, 1e-7); /* the usual 0.2860 */
    CU_ASSERT_DOUBLE_EQUAL(std, 0.3530242445149226, 1e-7);  /* the usual 0.3530 */

    /* A limited load is the prefix of the full one. */
    rc = cnb_idx_load(&part, img, lab, 500, err, sizeof err);
    CHECK_LOADED(rc, err);
    CU_ASSERT_EQUAL(part.n, 500);
    CU_ASSERT_EQUAL(memcmp(part.images, d.images, 500 * 784 * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(part.labels, d.labels, 500 * sizeof(int32_t)), 0);
    cnb_dataset_free(&part);

    cnb_dataset_normalize(&d, &mean, &std);
    cnb_dataset_channel_stats(&d, &mean, &std);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(std, 1.0, 1e-6);
    cnb_dataset_free(&d);
}

static void test_fmnist_mismatched_pair(void)
{
    /* Train images with test labels: the real-world form of the count mismatch. */
    char img[1024], lab[1024], timg[1024], tlab[1024], err[512];
    cnb_dataset d;
    fmnist_paths("train", img, lab, sizeof img);
    fmnist_paths("t10k", timg, tlab, sizeof timg);
    int rc = cnb_idx_load(&d, img, tlab, 10, err, sizeof err);
    CU_ASSERT_EQUAL(rc, CNB_EINVAL);
    CHECK_MSG(err, "60000 images");
    CHECK_MSG(err, "10000 labels");
    CHECK_MSG(err, tlab);
}

void suite_dataset(void)
{
    static const test_case cases[] = {
        {"load raw IDX", test_load_raw},
        {"load gzip IDX", test_load_gzip},
        {"limit", test_load_limit},
        {"load split by folder", test_load_split},
        {"missing file", test_missing_file},
        {"wrong magic (images)", test_bad_magic_images},
        {"wrong magic (labels)", test_bad_magic_labels},
        {"truncated images", test_truncated_images},
        {"truncated labels", test_truncated_labels},
        {"image/label count mismatch", test_count_mismatch},
        {"zero dimension", test_zero_dimension},
        {"corrupt gzip stream", test_corrupt_gzip},
        {"corrupt gzip trailer after a large read", test_corrupt_gzip_large},
        {"more data than declared", test_trailing_data},
        {"channel stats and normalize", test_stats_normalize},
        {"validation hold-out: disjoint, seeded", test_holdout},
        {"stats of a loaded file", test_stats_tiny},
        {"Fashion-MNIST test split", test_fmnist_test_split},
        {"Fashion-MNIST training split", test_fmnist_train_split},
        {"Fashion-MNIST train/test mix-up", test_fmnist_mismatched_pair},
        {NULL, NULL},
    };
    test_add_suite("dataset", cases);
}
