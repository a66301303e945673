/*
 * test_images.c - image files: the decoders (imagefile.c), folders, list files and packs
 * (imageset.c), the ten crops (augment.c), the input pipeline (feed.c) and experiments of
 * image folders, from end to end.
 *
 * The images are written by the tests with libjpeg-turbo and libpng themselves
 * (photofolder.c), so every decode is checked against the libraries' own encoders: PNG
 * exactly, JPEG within its error. Broken files are made from good ones: cut short,
 * renamed, emptied, their headers rewritten to declare 16000 x 16000.
 *
 * The real-photo case uses python3-skimage's colour photographs; without that package it
 * prints one "skipped" line and passes.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "augment.h"
#include "cnnbench/plugin.h"
#include "dataset.h"
#include "errors.h"
#include "experiment.h"
#include "feed.h"
#include "imagefile.h"
#include "imageset.h"
#include "net.h"
#include "photofolder.h"
#include "sweep.h"
#include "testutil.h"

/* A smooth colour image (h, w, 3): gradients JPEG keeps well. */
static unsigned char *gradient(int h, int w, int c)
{
    unsigned char *px = malloc((size_t)h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                px[((size_t)y * w + x) * c + k] =
                    (unsigned char)(k == 0 ? 255 * x / (w - 1 ? w - 1 : 1)
                                    : k == 1 ? 255 * y / (h - 1 ? h - 1 : 1)
                                             : 128 + 60 * sin(0.1 * (x + y)));
    return px;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* ---- decoders ------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    const char *dir = test_tmpdir();
    char jpg[512], png[512], err[1024];
    snprintf(jpg, sizeof jpg, "%s/a.jpg", dir);
    snprintf(png, sizeof png, "%s/a.png", dir);
    int h = 48, w = 64;
    unsigned char *px = gradient(h, w, 3);
    CU_ASSERT_EQUAL_FATAL(photo_write_jpeg(jpg, px, w, h, 3, 95), 0);
    CU_ASSERT_EQUAL_FATAL(photo_write_png(png, px, w, h, 3), 0);
    cnb_imagefile r = {0};
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, png, 3, NULL, err, sizeof err), 0);
    CU_ASSERT(r.h == h && r.w == w && r.c == 3);
    CU_ASSERT_EQUAL(memcmp(r.px, px, (size_t)h * w * 3), 0); /* PNG is lossless */
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, jpg, 3, NULL, err, sizeof err), 0);
    CU_ASSERT(r.h == h && r.w == w && r.c == 3);
    double sum = 0;
    int most = 0;
    for (size_t k = 0; k < (size_t)h * w * 3; k++) {
        int d = abs((int)r.px[k] - (int)px[k]);
        sum += d;
        most = d > most ? d : most;
    }
    /* quality 95 with 4:2:0 chroma: measured mean 1.1, largest 13 grey levels */
    CU_ASSERT(sum / (h * w * 3) < 3.0);
    CU_ASSERT(most <= 32);
    /* grey to 1 channel and to 3: R = G = B */
    unsigned char *grey = gradient(h, w, 1);
    CU_ASSERT_EQUAL_FATAL(photo_write_png(png, grey, w, h, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, png, 3, NULL, err, sizeof err), 0);
    CU_ASSERT(r.px[3 * 100] == grey[100] && r.px[3 * 100 + 1] == grey[100] &&
              r.px[3 * 100 + 2] == grey[100]);
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, png, 1, NULL, err, sizeof err), 0);
    CU_ASSERT(r.c == 1 && memcmp(r.px, grey, (size_t)h * w) == 0);
    /* RGBA: the alpha is composited, the colour kept where it is opaque */
    unsigned char *rgba = malloc((size_t)h * w * 4);
    for (size_t k = 0; k < (size_t)h * w; k++)
        memcpy(rgba + 4 * k, px + 3 * k, 3), rgba[4 * k + 3] = 255;
    CU_ASSERT_EQUAL_FATAL(photo_write_png(png, rgba, w, h, 4), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, png, 3, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(r.px, px, (size_t)h * w * 3), 0);
    /* the name does not matter, the content does: a PNG called .jpg */
    snprintf(jpg, sizeof jpg, "%s/really-a-png.jpg", dir);
    CU_ASSERT_EQUAL_FATAL(photo_write_png(jpg, px, w, h, 3), 0);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, jpg, 3, NULL, err, sizeof err), 0);
    free(px), free(grey), free(rgba);
    cnb_imagefile_free(&r);
}

static void test_dct_scaling(void)
{
    const char *dir = test_tmpdir();
    char jpg[512], err[1024];
    snprintf(jpg, sizeof jpg, "%s/big.jpg", dir);
    unsigned char *px = gradient(384, 512, 3);
    CU_ASSERT_EQUAL_FATAL(photo_write_jpeg(jpg, px, 512, 384, 3, 90), 0);
    cnb_imagefile r = {0};
    cnb_image_need need = {.shorter = 96};
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, jpg, 3, &need, err, sizeof err), 0);
    CU_ASSERT(r.scale_num == 1 && r.scale_den == 4); /* 128 x 96: the smallest >= 96 */
    CU_ASSERT(r.h == 96 && r.w == 128 && r.full_h == 384 && r.full_w == 512);
    need = (cnb_image_need){.shorter = 100};
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, jpg, 3, &need, err, sizeof err), 0);
    CU_ASSERT(r.h >= 100 && r.h < 384); /* 3/8 or 1/2 or the like: never below the need */
    need = (cnb_image_need){.h = 400};
    CU_ASSERT_EQUAL_FATAL(cnb_imagefile_read(&r, jpg, 3, &need, err, sizeof err), 0);
    CU_ASSERT(r.h == 384); /* nothing smaller will do: full size */
    free(px);
    cnb_imagefile_free(&r);
}

/* A JPEG whose SOF0 header declares h x w, the body that of a 16 x 16 image. */
static void jpeg_declaring(const char *path, int h, int w)
{
    unsigned char *px = gradient(16, 16, 3);
    CU_ASSERT_EQUAL_FATAL(photo_write_jpeg(path, px, 16, 16, 3, 90), 0);
    free(px);
    size_t len;
    unsigned char *b = (unsigned char *)read_all(path, &len);
    for (size_t i = 2; i + 9 < len; i++)
        if (b[i] == 0xff && (b[i + 1] == 0xc0 || b[i + 1] == 0xc2)) {
            b[i + 5] = (unsigned char)(h >> 8), b[i + 6] = (unsigned char)h;
            b[i + 7] = (unsigned char)(w >> 8), b[i + 8] = (unsigned char)w;
            break;
        }
    write_bytes(path, b, len);
    free(b);
}

/* A PNG of a signature, an IHDR declaring h x w, 2 bytes of image data and the end. */
static void png_declaring(const char *path, uint32_t h, uint32_t w)
{
    unsigned char b[8 + 25 + 14 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                         0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    unsigned char *d = b + 16;
    d[0] = (unsigned char)(w >> 24), d[1] = (unsigned char)(w >> 16);
    d[2] = (unsigned char)(w >> 8), d[3] = (unsigned char)w;
    d[4] = (unsigned char)(h >> 24), d[5] = (unsigned char)(h >> 16);
    d[6] = (unsigned char)(h >> 8), d[7] = (unsigned char)h;
    d[8] = 8, d[9] = 2; /* 8-bit RGB */
    uint32_t crc = (uint32_t)crc32(0L, b + 12, 17);
    b[29] = (unsigned char)(crc >> 24), b[30] = (unsigned char)(crc >> 16);
    b[31] = (unsigned char)(crc >> 8), b[32] = (unsigned char)crc;
    static const unsigned char tail[26] = {0, 0, 0, 2, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0, 0, 0,
                                           0, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42,
                                           0x60, 0x82};
    memcpy(b + 33, tail, sizeof tail);
    crc = (uint32_t)crc32(0L, b + 37, 6); /* IDAT's type and data */
    b[43] = (unsigned char)(crc >> 24), b[44] = (unsigned char)(crc >> 16);
    b[45] = (unsigned char)(crc >> 8), b[46] = (unsigned char)crc;
    write_bytes(path, b, sizeof b);
}

static void test_broken_files(void)
{
    const char *dir = test_tmpdir();
    char path[512], err[1024];
    cnb_imagefile r = {0};
    unsigned char *px = gradient(64, 64, 3);

    /* truncated JPEG: refused by name, not filled with grey */
    snprintf(path, sizeof path, "%s/cut.jpg", dir);
    CU_ASSERT_EQUAL_FATAL(photo_write_jpeg(path, px, 64, 64, 3, 90), 0);
    size_t len;
    char *b = read_all(path, &len);
    write_bytes(path, b, len / 2);
    free(b);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "truncated or corrupt JPEG");

    /* truncated PNG */
    snprintf(path, sizeof path, "%s/cut.png", dir);
    CU_ASSERT_EQUAL_FATAL(photo_write_png(path, px, 64, 64, 3), 0);
    b = read_all(path, &len);
    write_bytes(path, b, len - 40);
    free(b);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "PNG");

    /* wrong extension: text called .jpg */
    snprintf(path, sizeof path, "%s/notes.jpg", dir);
    test_write_file(path, "not an image\n");
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "not a JPEG or PNG file (it starts with 6e 6f 74 20");

    /* zero bytes */
    snprintf(path, sizeof path, "%s/empty.png", dir);
    write_bytes(path, "", 0);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "empty file (0 bytes)");

    /* 1 x 1: read, and resized like any other image */
    snprintf(path, sizeof path, "%s/dot.jpg", dir);
    CU_ASSERT_EQUAL_FATAL(photo_write_jpeg(path, px, 1, 1, 3, 90), 0);
    int rc = cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "\n  1x1: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(r.h == 1 && r.w == 1);

    /* 16000 x 16000 declared on a tiny body: refused by the size limit, never allocated */
    snprintf(path, sizeof path, "%s/huge.jpg", dir);
    jpeg_declaring(path, 16000, 16000);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "16000 x 16000 pixels, more than the limit");
    CU_ASSERT(r.px_cap < 16000u * 16000u);
    snprintf(path, sizeof path, "%s/huge.png", dir);
    png_declaring(path, 16000, 16000);
    CU_ASSERT_EQUAL(cnb_imagefile_read(&r, path, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "16000 x 16000 pixels, more than the limit");
    CU_ASSERT(r.px_cap < 16000u * 16000u);

    /* CMYK: refused by name */
    tjhandle tj = tjInitCompress();
    unsigned char *cmyk = malloc(32 * 32 * 4), *jpeg = NULL;
    unsigned long size = 0;
    memset(cmyk, 90, 32 * 32 * 4);
    CU_ASSERT_EQUAL_FATAL(tjCompress2(tj, cmyk, 32, 0, 32, TJPF_CMYK, &jpeg, &size, TJSAMP_444,
                                      90, 0), 0);
    CU_ASSERT_EQUAL(cnb_imagefile_decode(&r, jpeg, size, 3, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "CMYK");
    tjFree(jpeg);
    tjDestroy(tj);
    free(cmyk);
    free(px);
    cnb_imagefile_free(&r);
}

/* ---- folders, lists, packs ----------------------------------------------------------- */

/* dir/split/<class>/NN.ext: n images of each class, class k's red channel 40 + 60 k. */
static void make_folder(const char *dir, const char *split, const char *const *classes,
                        int n_classes, int n, int side)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, split);
    mkdir(path, 0777);
    unsigned char *px = gradient(side, side + 8, 3);
    for (int k = 0; k < n_classes; k++) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, split, classes[k]);
        CU_ASSERT_EQUAL_FATAL(mkdir(path, 0777), 0);
        for (size_t p = 0; p < (size_t)side * (side + 8); p++)
            px[3 * p] = (unsigned char)(40 + 60 * k + p % 7);
        for (int i = 0; i < n; i++) {
            px[3 * (size_t)i + 1] = (unsigned char)(i * 13); /* each image its own */
            snprintf(path, sizeof path, "%s/%s/%s/%02d.%s", dir, split, classes[k], i,
                     i % 2 ? "png" : "jpg");
            CU_ASSERT_EQUAL_FATAL(i % 2 ? photo_write_png(path, px, side + 8, side, 3)
                                        : photo_write_jpeg(path, px, side + 8, side, 3, 92),
                                  0);
        }
    }
    free(px);
}

static void test_folder_and_list(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"zebra", "ant", "moth"};
    char path[1024], err[2048];
    make_folder(dir, "train", classes, 3, 4, 24);
    snprintf(path, sizeof path, "%s/train/ant/README.txt", dir); /* ignored, not an error */
    test_write_file(path, "notes\n");
    cnb_imageset s = {0}, t = {0};
    int ignored = 0;
    snprintf(path, sizeof path, "%s/train", dir);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_folder(&s, path, NULL, &ignored, err, sizeof err), 0);
    CU_ASSERT(s.n == 12 && s.classes == 3 && ignored == 1);
    CU_ASSERT_STRING_EQUAL(s.class_names[0], "ant"); /* sorted, whatever readdir gives */
    CU_ASSERT_STRING_EQUAL(s.class_names[2], "zebra");
    CU_ASSERT(s.labels[0] == 0 && s.labels[11] == 2 && s.class_counts[1] == 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.paths[0], "/ant/00.jpg"));

    /* a validation folder with a class the training set lacks is refused, naming it */
    static const char *const other[] = {"ant", "bee"};
    make_folder(dir, "val", other, 2, 1, 24);
    snprintf(path, sizeof path, "%s/val", dir);
    CU_ASSERT_EQUAL(cnb_imageset_folder(&t, path, &s, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "/val/bee: a class the training set");

    /* a list file: paths with spaces, an absolute path, errors by line */
    snprintf(path, sizeof path, "%s/train.txt", dir);
    char text[2048];
    snprintf(text, sizeof text, "ant/00.jpg 0\n\n%s/train/zebra/01.png 5\nmoth/00.jpg\t2\r\n",
             path[0] ? dir : "");
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/train/train.txt", dir);
    test_write_file(sub, text);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_list(&t, sub, NULL, err, sizeof err), 0);
    CU_ASSERT(t.n == 3 && t.classes == 6 && t.labels[1] == 5 && t.labels[2] == 2);
    cnb_imageset_free(&t);
    test_write_file(sub, "ant/00.jpg 0\nant/01.png cat\n");
    CU_ASSERT_EQUAL(cnb_imageset_list(&t, sub, NULL, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "train.txt:2:");
    CHECK_MSG(err, "expected 'path label'");

    /* limit: spread over the classes */
    CU_ASSERT_EQUAL(cnb_imageset_limit(&s, 3), 0);
    CU_ASSERT(s.n == 3 && s.labels[0] == 0 && s.labels[1] == 1 && s.labels[2] == 2);
    cnb_imageset_free(&s);
}

static void test_pack(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b"};
    char path[1024], pack[1024], err[2048];
    make_folder(dir, "train", classes, 2, 3, 30);
    snprintf(path, sizeof path, "%s/train", dir);
    snprintf(pack, sizeof pack, "%s/train.cnbpack", dir);
    cnb_imageset s = {0}, p = {0};
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_folder(&s, path, NULL, NULL, err, sizeof err), 0);
    cnb_resize_spec rs = {CNB_RESIZE_CENTER, 20, 20};
    int written = 0;
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_pack_write(&s, pack, &rs, 3, 0, &written, err,
                                                  sizeof err), 0);
    CU_ASSERT_EQUAL(written, 6);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_pack_open(&p, pack, err, sizeof err), 0);
    CU_ASSERT(p.n == 6 && p.classes == 2 && p.pack_h == 20 && p.pack_w == 20);
    CU_ASSERT_STRING_EQUAL(p.class_names[1], "b");
    cnb_imagereader a = {0}, b = {0};
    const float *x, *y;
    int h, w, h2, w2;
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL_FATAL(cnb_imageset_read(&s, i, &rs, 3, &a, &x, &h, &w, err,
                                                sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(cnb_imageset_read(&p, i, &rs, 3, &b, &y, &h2, &w2, err,
                                                sizeof err), 0);
        CU_ASSERT(h == h2 && w == w2 && p.labels[i] == s.labels[i]);
        float most = 0;
        for (int k = 0; k < 3 * h * w; k++)
            most = fmaxf(most, fabsf(x[k] - y[k]));
        CU_ASSERT(most <= 0.5f / 255.0f + 1e-6f); /* rounded to bytes, nothing else */
    }
    /* one flipped byte in an image: that image fails its CRC, by number */
    cnb_imageset_free(&p);
    size_t len;
    char *bytes = read_all(pack, &len);
    bytes[len - 5] ^= 0x40;
    write_bytes(pack, bytes, len);
    free(bytes);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_pack_open(&p, pack, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cnb_imageset_read(&p, 5, &rs, 3, &b, &y, &h2, &w2, err, sizeof err),
                    CNB_EINVAL);
    CHECK_MSG(err, "image 5 fails its CRC-32 check");
    cnb_imageset_free(&p);
    /* a damaged header or index is refused at open */
    bytes = read_all(pack, &len);
    bytes[70] ^= 1;
    write_bytes(pack, bytes, len);
    free(bytes);
    CU_ASSERT_EQUAL(cnb_imageset_pack_open(&p, pack, err, sizeof err), CNB_EINVAL);
    CHECK_MSG(err, "CRC-32");
    cnb_imagereader_free(&a);
    cnb_imagereader_free(&b);
    cnb_imageset_free(&s);
}

/* The pixels of every image of s, one after the other (each c x side x side). */
static float *all_pixels(const cnb_imageset *s, int side)
{
    size_t per = 3 * (size_t)side * side;
    float *all = malloc((size_t)s->n * per * sizeof *all);
    cnb_imagereader rd = {0};
    cnb_resize_spec none = {CNB_RESIZE_NONE, 0, 0};
    char err[1024];
    for (int i = 0; i < s->n; i++) {
        const float *x;
        int h, w;
        CU_ASSERT_EQUAL_FATAL(cnb_imageset_read(s, i, &none, 3, &rd, &x, &h, &w, err,
                                                sizeof err), 0);
        CU_ASSERT_FATAL(h == side && w == side);
        memcpy(all + (size_t)i * per, x, per * sizeof *x);
    }
    cnb_imagereader_free(&rd);
    return all;
}

/* A validation set held out of a folder and of its pack: the indices an in-memory split
 * of the same size holds out with the same seed (cnb_dataset_holdout), and its digest;
 * those images with their labels move out, the rest stay in their order, class counts
 * follow; the pack's validation set reads the images from the training set's map. */
static void test_holdout(void)
{
    enum { N = 15, HELD = 4, SIDE = 16 };
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b", "c"};
    char path[1024], pack[1024], err[2048], *names[N];
    int32_t labels[N];
    make_folder(dir, "train", classes, 3, 5, 20);
    snprintf(path, sizeof path, "%s/train", dir);
    snprintf(pack, sizeof pack, "%s/train.cnbpack", dir);
    cnb_imageset s, v, p, pv;
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_folder(&s, path, NULL, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(s.n, N);
    cnb_resize_spec rs = {CNB_RESIZE_CENTER, SIDE, SIDE};
    int written;
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_pack_write(&s, pack, &rs, 3, 0, &written, err,
                                                  sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_pack_open(&p, pack, err, sizeof err), 0);
    float *before = all_pixels(&p, SIDE);
    for (int i = 0; i < N; i++)
        names[i] = strdup(s.paths[i]), labels[i] = s.labels[i];

    /* the in-memory split of N: image i's pixel is i */
    cnb_dataset d = {.n = N, .c = 1, .h = 1, .w = 1, .classes = 1}, dv;
    d.images = malloc(N * sizeof *d.images);
    d.labels = calloc(N, sizeof *d.labels);
    for (int i = 0; i < N; i++)
        d.images[i] = (float)i;
    uint32_t want, crc, crc2;
    CU_ASSERT_EQUAL_FATAL(cnb_dataset_holdout(&d, HELD, 7, &dv, &want), 0);

    CU_ASSERT_EQUAL_FATAL(cnb_imageset_holdout(&s, HELD, 7, &v, &crc), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_holdout(&p, HELD, 7, &pv, &crc2), 0);
    CU_ASSERT(crc == want && crc2 == want);
    CU_ASSERT(s.n == N - HELD && p.n == N - HELD && v.n == HELD && pv.n == HELD);
    float *kept = all_pixels(&p, SIDE), *held = all_pixels(&pv, SIDE);
    size_t per = 3 * SIDE * SIDE;
    const cnb_imageset *part[2] = {&s, &v}, *packed[2] = {&p, &pv};
    const cnb_dataset *order[2] = {&d, &dv};
    const float *pixels[2] = {kept, held};
    for (int k = 0; k < 2; k++) {
        int count[3] = {0};
        for (int i = 0; i < part[k]->n; i++) {
            int at = (int)order[k]->images[i];
            CU_ASSERT_STRING_EQUAL(part[k]->paths[i], names[at]);
            CU_ASSERT(part[k]->labels[i] == labels[at] && packed[k]->labels[i] == labels[at]);
            CU_ASSERT_EQUAL(memcmp(pixels[k] + i * per, before + at * per,
                                   per * sizeof *before), 0);
            count[labels[at]]++;
        }
        for (int c = 0; c < 3; c++)
            CU_ASSERT(part[k]->class_counts[c] == count[c] &&
                      packed[k]->class_counts[c] == count[c]);
        CU_ASSERT(part[k]->classes == 3 && strcmp(part[k]->class_names[2], "c") == 0);
    }
    free(before), free(kept), free(held);
    for (int i = 0; i < N; i++)
        free(names[i]);
    cnb_dataset_free(&d), cnb_dataset_free(&dv);
    cnb_imageset_free(&v), cnb_imageset_free(&s);
    cnb_imageset_free(&pv), cnb_imageset_free(&p);
}

/* ---- ten crops ------------------------------------------------------------------------ */

static void test_ten_crop(void)
{
    int h = 6, w = 8;
    float src[6 * 8], out[10 * 4 * 4];
    for (int k = 0; k < h * w; k++)
        src[k] = (float)k;
    cnb_augment a;
    cnb_augment_cfg cfg = {.crop_h = 4, .crop_w = 4};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(cnb_augment_init_images(&a, &cfg, 1, h, w, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_augment_ten_crop(&a, src, h, w, out, err, sizeof err), 0);
    /* top-left pixel of each: centre (1, 2), corners (0,0) (0,4) (2,0) (2,4) */
    const float first[5] = {1 * 8 + 2, 0, 4, 2 * 8, 2 * 8 + 4};
    for (int k = 0; k < 5; k++) {
        CU_ASSERT_EQUAL(out[k * 16], first[k]);
        CU_ASSERT_EQUAL(out[(k + 5) * 16 + 3], first[k]); /* mirrored: at the right end */
    }
    /* evaluation mode of the single-crop path is the centre crop, the first of the ten */
    float one[16];
    CU_ASSERT_EQUAL(cnb_augment_sample(&a, src, h, w, 0, NULL, one, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(one, out, sizeof one), 0);
    cnb_augment_free(&a);
}

/* ---- the input pipeline ---------------------------------------------------------------- */

/* Every batch of an epoch, training and ten-crop evaluation, through `threads` loader
 * threads; the bytes must not depend on the count. */
static float *pipeline_bytes(const cnb_imageset *s, const cnb_augment *aug, int threads,
                             size_t *floats)
{
    cnb_feed *f;
    char err[1024];
    cnb_feed_cfg fc = {.train = s, .test = s, .resize = {CNB_RESIZE_SHORTER, 20, 20},
                       .channels = 3, .aug = aug, .threads = threads, .depth = 2, .batch = 4,
                       .seed = 7, .eval_crops = 1};
    CU_ASSERT_EQUAL_FATAL(cnb_feed_create(&f, &fc, err, sizeof err), 0);
    uint32_t order[12] = {5, 3, 11, 0, 7, 1, 2, 9, 4, 6, 10, 8};
    size_t per = 3 * 16 * 16 * 4;
    float *all = malloc(6 * per * sizeof *all);
    int32_t labels[4];
    for (int epoch = 0; epoch < 2; epoch++) {
        CU_ASSERT_EQUAL_FATAL(cnb_feed_start_train(f, order, 3, epoch), 0);
        for (int b = 0; b < 3; b++)
            CU_ASSERT_EQUAL_FATAL(cnb_feed_next(f, all + (size_t)(epoch * 3 + b) * per, labels,
                                                NULL), 0);
    }
    cnb_feed_destroy(f);
    *floats = 6 * per;
    return all;
}

static void test_pipeline_threads(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b", "c"};
    char path[1024], err[2048];
    make_folder(dir, "train", classes, 3, 4, 22);
    snprintf(path, sizeof path, "%s/train", dir);
    cnb_imageset s = {0};
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_folder(&s, path, NULL, NULL, err, sizeof err), 0);
    double mean[3], sd[3], cov[9];
    int used;
    cnb_resize_spec rs = {CNB_RESIZE_SHORTER, 20, 20};
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_stats(&s, &rs, 3, 100, 1, 0, mean, sd, cov, &used, err,
                                             sizeof err), 0);
    CU_ASSERT_EQUAL(used, 12);
    cnb_pca pca;
    CU_ASSERT_EQUAL_FATAL(cnb_pca_from_cov(&pca, cov, 3, 1.0, err, sizeof err), 0);
    cnb_augment_cfg cfg = {.crop_h = 16, .crop_w = 16, .flip = 1,
                           .lighting = CNB_LIGHTING_DATASET, .lighting_sigma = 0.1f,
                           .normalize = 1};
    for (int k = 0; k < 3; k++)
        cfg.mean[k] = (float)mean[k], cfg.std[k] = (float)sd[k];
    cnb_augment aug;
    CU_ASSERT_EQUAL_FATAL(cnb_augment_init_images(&aug, &cfg, 3, 20, 20, &pca, err,
                                                  sizeof err), 0);
    size_t n1, n3;
    float *one = pipeline_bytes(&s, &aug, 1, &n1), *three = pipeline_bytes(&s, &aug, 3, &n3);
    CU_ASSERT_EQUAL(n1, n3);
    CU_ASSERT_EQUAL(memcmp(one, three, n1 * sizeof *one), 0);
    /* and epochs differ (their draws do), batches are not all the same */
    CU_ASSERT_NOT_EQUAL(memcmp(one, one + n1 / 2, n1 / 2 * sizeof *one), 0);
    free(one), free(three);
    cnb_augment_free(&aug);
    cnb_imageset_free(&s);
}

/* ---- experiments of image folders ------------------------------------------------------ */

/* An experiment on dir/train and dir/val with alexnet-small at 28 x 28 x 3; `extra` adds
 * [data] lines. Returns the run's rc. */
static int run_experiment(const char *dir, const char *extra, const char *name, int epochs)
{
    char path[1024], text[4096];
    snprintf(path, sizeof path, "%s/%s.ini", dir, name);
    snprintf(text, sizeof text,
             "[experiment]\nname = %s\nmodel = %s/experiments/models/alexnet-small.ini\n"
             "backend = naive\nresults = %s/results\n[vars]\nchannels = 3\nsize = 28\n"
             "[data]\nformat = folder\ntrain = train\ntest = val\nresize = 32\n"
             "crop = 28\naugment = flip+crop+lighting\n%s\n[train]\nepochs = %d\nbatch = 16\n"
             "lr = 0.01\ntrain_eval_limit = 16\n",
             name, CNB_SOURCE_ROOT, dir, extra, epochs);
    test_write_file(path, text);
    cnb_experiment e;
    int rc = cnb_experiment_load(&e, path, NULL, NULL, 0);
    if (rc) {
        cnb_experiment_free(&e);
        return rc;
    }
    cnb_cell *cells;
    int n;
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    rc = cnb_experiment_validate(&e, cells, n, test_registry(), NULL);
    if (rc == 0) {
        char out[1200];
        snprintf(out, sizeof out, "%s/results/%s/cell", dir, name);
        rc = cnb_cell_run(&e, &cells[0], test_registry(), out, 0, "  ");
    }
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    return rc;
}

static void test_bad_image_policy(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b", "c", "d,\"e\""}; /* quoted in classes.csv */
    char path[1024];
    make_folder(dir, "train", classes, 4, 4, 32);
    make_folder(dir, "val", classes, 4, 1, 32);
    snprintf(path, sizeof path, "%s/train/b/02.jpg", dir); /* cut short */
    size_t len;
    char *b = read_all(path, &len);
    write_bytes(path, b, len / 3);
    free(b);
    int quiet = cnb_error_quiet(1);
    CU_ASSERT_NOT_EQUAL(run_experiment(dir, "on_bad_image = fail\nstats_sample = 2", "fail", 1),
                        0);
    CHECK_MSG(cnb_last_error(), "/train/b/02.jpg");
    cnb_error_quiet(quiet);
    CU_ASSERT_EQUAL(run_experiment(dir, "on_bad_image = skip", "skip", 1), 0);
    snprintf(path, sizeof path, "%s/results/skip/cell/classes.csv", dir);
    char *csv = read_all(path, &len);
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "1,\"b\",4,1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n3,\"d,\"\"e\"\"\",4,1\n"));
    free(csv);
    /* bad input is refused before anything runs: a key of image files on IDX data */
    snprintf(path, sizeof path, "%s/idx.ini", dir);
    test_write_file(path,
                    "[experiment]\nmodel = m.ini\n[data]\nformat = idx\neval_crops = 10\n");
    cnb_experiment e;
    quiet = cnb_error_quiet(1);
    CU_ASSERT_EQUAL(cnb_experiment_load(&e, path, NULL, NULL, 0), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "idx.ini:5: [data] eval_crops is a setting of image files");
    cnb_error_quiet(quiet);
    cnb_experiment_free(&e);
}

/* format = list: Caffe's list files checked before anything runs, a label outside the
 * model's classes named with the list file */
static void test_list_experiment(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b"};
    make_folder(dir, "img", classes, 2, 2, 32);
    char path[1024], text[2048];
    snprintf(path, sizeof path, "%s/train.txt", dir);
    test_write_file(path, "img/a/00.jpg 0\nimg/a/01.png 0\nimg/b/00.jpg 1\nimg/b/01.png 1\n");
    snprintf(path, sizeof path, "%s/val.txt", dir);
    test_write_file(path, "img/a/00.jpg 0\nimg/b/01.png 12\n");
    snprintf(path, sizeof path, "%s/list.ini", dir);
    snprintf(text, sizeof text,
             "[experiment]\nmodel = %s/experiments/models/alexnet-small.ini\nresults = %s/r\n"
             "[vars]\nchannels = 3\n[data]\nformat = list\ntrain = train.txt\n"
             "test = val.txt\nresize = 28x28\nresize_mode = exact\n[train]\nbatch = 2\n",
             CNB_SOURCE_ROOT, dir);
    test_write_file(path, text);
    cnb_experiment e;
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    cnb_cell *cells;
    int n, quiet = cnb_error_quiet(1);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(cnb_experiment_validate(&e, cells, n, test_registry(), NULL), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "val.txt: label 12 (sample 2) is outside the model's 10");
    cnb_error_quiet(quiet);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
    snprintf(path, sizeof path, "%s/val.txt", dir);
    test_write_file(path, "img/a/00.jpg 0\nimg/b/01.png 1\n");
    snprintf(path, sizeof path, "%s/list.ini", dir);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_load(&e, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_experiment_cells(&e, &cells, &n), 0);
    CU_ASSERT_EQUAL(cnb_experiment_validate(&e, cells, n, test_registry(), NULL), 0);
    cnb_cells_free(cells, n);
    cnb_experiment_free(&e);
}

static void test_real_photos(void)
{
    const char *names[8];
    if (photo_list(names, 4) < 4) {
        printf("\n    skipped: python3-skimage's photographs are not in %s "
               "(apt-get install python3-skimage) ", PHOTO_DIR);
        return;
    }
    const char *dir = test_tmpdir();
    CU_ASSERT_EQUAL_FATAL(photo_folder(dir, 4, 16, 4, 40, 3), 0);
    char path[1024], err[2048];
    snprintf(path, sizeof path, "%s/train", dir);
    cnb_imageset s = {0};
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_folder(&s, path, NULL, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.n, 64);
    double mean[3], sd[3], cov[9];
    int used;
    cnb_resize_spec rs = {CNB_RESIZE_SHORTER, 32, 32};
    CU_ASSERT_EQUAL_FATAL(cnb_imageset_stats(&s, &rs, 3, 64, 1, 0, mean, sd, cov, &used, err,
                                             sizeof err), 0);
    cnb_pca pca;
    CU_ASSERT_EQUAL_FATAL(cnb_pca_from_cov(&pca, cov, 3, 1.0, err, sizeof err), 0);
    printf("\n    (real photos: RGB mean %.3f %.3f %.3f; lighting eigenvalues %.4g %.4g %.4g) ",
           mean[0], mean[1], mean[2], (double)pca.vals[0], (double)pca.vals[1],
           (double)pca.vals[2]);
    /* ordered, and real colour: no direction of colour space without variance, the first
     * carrying most of it (brightness), as in ImageNet's 0.2175, 0.0188, 0.0045 */
    CU_ASSERT(pca.vals[0] <= pca.vals[1] && pca.vals[1] <= pca.vals[2]);
    CU_ASSERT(pca.vals[0] > 1e-3 * pca.vals[2]);
    CU_ASSERT(pca.vals[2] > 2.0 * pca.vals[1]);
    CU_ASSERT(pca.vals[2] > 0.01 && pca.vals[2] < 0.5);
    cnb_imageset_free(&s);
    /* one epoch of a small AlexNet-style net through the paper's processing */
    CU_ASSERT_EQUAL(run_experiment(dir, "lighting = dataset\nnormalize = mean\neval_crops = 10",
                                   "photos", 1), 0);
    snprintf(path, sizeof path, "%s/results/photos/cell/metrics.csv", dir);
    size_t len;
    char *csv = read_all(path, &len);
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n1,"));
    CU_ASSERT_PTR_NULL(strstr(csv, "nan"));
    free(csv);
}

/* [data] cache_build = 1: the first run writes the packs once, before its cell; later runs
 * read them; without cache it is refused at its line. */
static void test_cache_build(void)
{
    const char *dir = test_tmpdir();
    static const char *const classes[] = {"a", "b"};
    make_folder(dir, "train", classes, 2, 4, 40);
    make_folder(dir, "val", classes, 2, 2, 40);
    char path[1024], text[4096];
    snprintf(path, sizeof path, "%s/cache.ini", dir);
    for (int pass = 0; pass < 3; pass++) {
        snprintf(text, sizeof text,
                 "[experiment]\nname = cache\nmodel = %s/experiments/models/alexnet-small.ini\n"
                 "backend = naive\nresults = %s/results\n[vars]\nchannels = 3\nsize = 28\n"
                 "[data]\nformat = folder\ntrain = train\ntest = val\nresize = 32\n"
                 "resize_mode = center\ncrop = 28\naugment = crop\n%scache_build = 1\n"
                 "[train]\nepochs = 1\nbatch = 4\nlr = 0.01\ntrain_eval_limit = 4\n",
                 CNB_SOURCE_ROOT, dir, pass == 2 ? "" : "cache = packs\n");
        test_write_file(path, text);
        cnb_experiment e;
        int quiet = cnb_error_quiet(1), rc = cnb_experiment_load(&e, path, NULL, NULL, 0);
        cnb_error_quiet(quiet);
        if (pass == 2) { /* no cache to build */
            CU_ASSERT_EQUAL(rc, CNB_EINVAL);
            CHECK_MSG(cnb_last_error(), "cache.ini:17: [data] cache_build = 1 builds the packs");
            cnb_experiment_free(&e);
            break;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        snprintf(path, sizeof path, "%s/packs/train.cnbpack", dir);
        struct stat before;
        int had = stat(path, &before) == 0;
        CU_ASSERT_EQUAL(had, pass == 1);
        cnb_sweep_opts o = {.jobs = 1, .force = 1};
        CU_ASSERT_EQUAL(cnb_sweep_run(&e, test_registry(), &o), 0);
        struct stat after;
        CU_ASSERT_EQUAL_FATAL(stat(path, &after), 0);
        if (pass == 1) /* read, not written again */
            CU_ASSERT(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                      after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
        snprintf(path, sizeof path, "%s/packs/test.cnbpack", dir);
        CU_ASSERT_EQUAL(access(path, R_OK), 0);
        snprintf(path, sizeof path, "%s/cache.ini", dir);
        cnb_experiment_free(&e);
    }
}

void suite_images_dataset(void)
{
    static const test_case cases[] = {
        {"JPEG and PNG round trip (grey, RGB, RGBA)", test_round_trip},
        {"JPEG decoded at a DCT scale", test_dct_scaling},
        {"broken files named, refused, never allocated for", test_broken_files},
        {"class folders and list files", test_folder_and_list},
        {"packed cache: same pixels, CRC checks", test_pack},
        {"validation held out of a folder and a pack", test_holdout},
        {NULL, NULL},
    };
    test_add_suite("dataset: image files", cases);
}

void suite_images_augment(void)
{
    static const test_case cases[] = {
        {"ten crops: corners, centre, mirrored", test_ten_crop},
        {NULL, NULL},
    };
    test_add_suite("augment: image files", cases);
}

void suite_images_train(void)
{
    static const test_case cases[] = {
        {"input pipeline: same batches at 1 and 3 loader threads", test_pipeline_threads},
        {"on_bad_image = fail names the file; skip leaves it out", test_bad_image_policy},
        {"list files: checked before anything runs", test_list_experiment},
        {"cache_build = 1 writes the packs once, then reads them", test_cache_build},
        {"real photos: PCA lighting eigenvalues, one epoch", test_real_photos},
        {NULL, NULL},
    };
    test_add_suite("train: image folders", cases);
}
