/*
 * photofolder.c - JPEG/PNG writers and the photo folder of the real-photo example; see
 * photofolder.h.
 */
#include "photofolder.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "augment.h"
#include "fsutil.h"
#include "imagefile.h"
#include "rng.h"

int photo_write_jpeg(const char *path, const unsigned char *px, int w, int h, int c,
                     int quality)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int rc = -1;
    if (tj && tjCompress2(tj, px, w, 0, h, c == 3 ? TJPF_RGB : TJPF_GRAY, &jpeg, &size,
                          c == 3 ? TJSAMP_420 : TJSAMP_GRAY, quality, 0) == 0) {
        FILE *f = fopen(path, "wb");
        if (f && fwrite(jpeg, 1, size, f) == size && fclose(f) == 0)
            rc = 0;
        else
            fprintf(stderr, "%s: cannot write: %s\n", path, strerror(errno));
    } else {
        fprintf(stderr, "%s: JPEG encoding failed: %s\n", path, tjGetErrorStr2(tj));
    }
    tjFree(jpeg);
    if (tj)
        tjDestroy(tj);
    return rc;
}

int photo_write_png(const char *path, const unsigned char *px, int w, int h, int c)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 3 ? PNG_FORMAT_RGB : c == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&img, path, 0, px, 0, NULL)) {
        fprintf(stderr, "%s: PNG encoding failed: %s\n", path, img.message);
        return -1;
    }
    return 0;
}

int photo_list(const char **names, int max)
{
    /* the colour photographs of skimage 0.19's data folder (not its grey or test images) */
    static const char *const photos[] = {"astronaut.png", "chelsea.png", "coffee.png",
                                         "rocket.jpg", "motorcycle_left.png",
                                         "hubble_deep_field.jpg", "retina.jpg", "ihc.png"};
    const char *dir = getenv("CNB_PHOTO_DIR") && *getenv("CNB_PHOTO_DIR")
                          ? getenv("CNB_PHOTO_DIR") : PHOTO_DIR;
    int n = 0;
    for (size_t i = 0; i < sizeof photos / sizeof photos[0] && n < max; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, photos[i]);
        if (access(path, R_OK) == 0)
            names[n++] = photos[i];
    }
    return n;
}

/* One photo's crops into folder dir (made), n of them, numbered from first. */
static int crops_of(const cnb_imagefile *photo, const char *dir, int n, int side,
                    struct cnb_rng *r)
{
    int h = photo->h, w = photo->w, shorter = h < w ? h : w;
    size_t hw = (size_t)h * w;
    float *src = malloc(3 * hw * sizeof *src), *crop = NULL, *out = NULL;
    unsigned char *px = NULL;
    int rc = src ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < hw; k++)
        for (int ch = 0; ch < 3; ch++)
            src[ch * hw + k] = photo->px[3 * k + ch];
    for (int i = 0; rc == 0 && i < n; i++) {
        float frac = 0.35f + 0.55f * cnb_rng_uniform(r);
        float aspect = 0.75f + 0.58f * cnb_rng_uniform(r); /* w / h, 3:4 to 4:3 */
        int ch_ = (int)(frac * shorter), cw = (int)(ch_ * aspect);
        if (cw > w)
            cw = w;
        if (ch_ < 8)
            ch_ = 8;
        int y0 = (int)cnb_rng_below(r, (uint32_t)(h - ch_ + 1));
        int x0 = (int)cnb_rng_below(r, (uint32_t)(w - cw + 1));
        int oh = side, ow = (int)((double)cw * side / ch_ + 0.5);
        if (cw < ch_)
            ow = side, oh = (int)((double)ch_ * side / cw + 0.5);
        free(crop), free(out), free(px);
        crop = malloc((size_t)3 * ch_ * cw * sizeof *crop);
        out = malloc((size_t)3 * oh * ow * sizeof *out);
        px = malloc((size_t)3 * oh * ow);
        if (!crop || !out || !px ||
            cnb_crop(src, 3, h, w, 0, y0, x0, ch_, cw, crop, NULL, 0) ||
            cnb_resize_bilinear(crop, 3, ch_, cw, out, oh, ow, NULL, 0)) {
            rc = -1;
            break;
        }
        size_t ohw = (size_t)oh * ow;
        for (size_t k = 0; k < ohw; k++)
            for (int c = 0; c < 3; c++) {
                float v = out[c * ohw + k] + 0.5f;
                px[3 * k + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        char path[2048];
        snprintf(path, sizeof path, "%.2000s/%04d.jpg", dir, i);
        rc = photo_write_jpeg(path, px, ow, oh, 3, 90);
    }
    free(src), free(crop), free(out), free(px);
    return rc;
}

int photo_folder(const char *out, int classes, int per_class, int val_per, int side,
                 uint64_t seed)
{
    const char *names[16];
    int n = photo_list(names, classes < 16 ? classes : 16);
    if (n < classes) {
        fprintf(stderr, "photo_folder: %d of the %d photos asked for found in %s\n", n,
                classes, PHOTO_DIR);
        return -1;
    }
    const char *dir = getenv("CNB_PHOTO_DIR") && *getenv("CNB_PHOTO_DIR")
                          ? getenv("CNB_PHOTO_DIR") : PHOTO_DIR;
    struct cnb_rng r;
    cnb_rng_seed(&r, seed, 77);
    cnb_imagefile photo = {0};
    int rc = 0;
    char path[2048];
    const char *splits[2] = {"train", "val"};
    for (int s = 0; s < 2 && rc == 0; s++) {
        snprintf(path, sizeof path, "%s/%s", out, splits[s]);
        rc = cnb_mkdirs(path);
    }
    for (int k = 0; k < classes && rc == 0; k++) {
        char err[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (cnb_imagefile_read(&photo, path, 3, NULL, err, sizeof err)) {
            fprintf(stderr, "photo_folder: %s\n", err);
            rc = -1;
            break;
        }
        for (int s = 0; s < 2 && rc == 0; s++) {
            snprintf(path, sizeof path, "%s/%s/%.*s", out, splits[s],
                     (int)strcspn(names[k], "."), names[k]);
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                rc = -1;
            else
                rc = crops_of(&photo, path, s ? val_per : per_class, side, &r);
        }
    }
    cnb_imagefile_free(&photo);
    return rc;
}
