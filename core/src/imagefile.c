/*
 * imagefile.c - JPEG (TurboJPEG) and PNG (libpng simplified API) to 8-bit pixels; see
 * imagefile.h.
 *
 * JPEG is decoded with TJFLAG_STOPONWARNING, so a truncated file ("Premature end of JPEG
 * file", which libjpeg only warns about and fills with grey) is an error the caller can
 * name, and TJFLAG_LIMITSCANS, so a progressive file of thousands of scans (a known way
 * to make a small file cost minutes) is refused. Sizes come from the header
 * (tjDecompressHeader3, png_image_begin_read_from_memory) and are checked before any
 * buffer is sized from them.
 */
#include "imagefile.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "cnnbench/plugin.h"
#include "errors.h"

const char *cnb_imagefile_kind(const void *buf, size_t len)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = buf;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "JPEG";
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        return "PNG";
    return NULL;
}

static int grow(unsigned char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    unsigned char *q = realloc(*p, need);
    if (!q)
        return CNB_ENOMEM;
    *p = q;
    *cap = need;
    return 0;
}

static int check_size(const char *kind, long w, long h, char *err, size_t errlen)
{
    if (w < 1 || h < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s header declares %ld x %ld pixels", kind, w, h);
    if (w * h > CNB_IMAGE_MAX_PIXELS)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s header declares %ld x %ld pixels, more "
                        "than the limit of %ld Mpixels; resize the image (the file may also be "
                        "damaged)", kind, w, h, CNB_IMAGE_MAX_PIXELS >> 20);
    return 0;
}

/* The smallest DCT scale whose output meets need; 1/1 when none is smaller. */
static tjscalingfactor jpeg_scale(int w, int h, const cnb_image_need *need)
{
    tjscalingfactor best = {1, 1};
    int n = 0;
    tjscalingfactor *f = tjGetScalingFactors(&n);
    if (!need || !f)
        return best;
    long best_px = (long)w * h;
    for (int i = 0; i < n; i++) {
        if (f[i].num > f[i].denom)
            continue;
        int sw = TJSCALED(w, f[i]), sh = TJSCALED(h, f[i]);
        int shorter = sw < sh ? sw : sh;
        if (shorter < need->shorter || sh < need->h || sw < need->w)
            continue;
        if ((long)sw * sh < best_px)
            best = f[i], best_px = (long)sw * sh;
    }
    return best;
}

static int decode_jpeg_with(cnb_imagefile *r, const unsigned char *buf, size_t len, int c,
                            const cnb_image_need *need, char *err, size_t errlen);

/* After a failed call the TurboJPEG 2.1 decompressor is not to be trusted: measured, the
 * header of a good 1 x 1 JPEG read after a corrupt one gave 1419853472 x 21998. So a
 * handle that failed is thrown away; a new one costs ~20 us. */
static int decode_jpeg(cnb_imagefile *r, const unsigned char *buf, size_t len, int c,
                       const cnb_image_need *need, char *err, size_t errlen)
{
    int rc = decode_jpeg_with(r, buf, len, c, need, err, errlen);
    if (rc && r->tj) {
        tjDestroy(r->tj);
        r->tj = NULL;
    }
    return rc;
}

static int decode_jpeg_with(cnb_imagefile *r, const unsigned char *buf, size_t len, int c,
                            const cnb_image_need *need, char *err, size_t errlen)
{
    if (!r->tj && !(r->tj = tjInitDecompress()))
        return cnb_fail(CNB_ENOMEM, err, errlen, "cannot start the JPEG decoder: %s",
                        tjGetErrorStr2(NULL));
    int w, h, subsamp, cs;
    if (len > (unsigned long)-1 ||
        tjDecompressHeader3(r->tj, buf, (unsigned long)len, &w, &h, &subsamp, &cs) != 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "truncated or corrupt JPEG header "
                        "(libjpeg-turbo: %s)", tjGetErrorStr2(r->tj));
    if (check_size("JPEG", w, h, err, errlen))
        return CNB_EINVAL;
    if (cs == TJCS_CMYK || cs == TJCS_YCCK)
        return cnb_fail(CNB_EINVAL, err, errlen, "a CMYK JPEG (%s-coded, as print workflows "
                        "write them): cnnbench reads grey and RGB/YCbCr JPEGs; convert it to "
                        "RGB (for example with ImageMagick: convert IN -colorspace sRGB OUT.jpg)",
                        cs == TJCS_CMYK ? "CMYK" : "YCCK");
    tjscalingfactor f = jpeg_scale(w, h, need);
    int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
    if (grow(&r->px, &r->px_cap, (size_t)sw * sh * c))
        return cnb_fail(CNB_ENOMEM, err, errlen, "cannot allocate %d x %d pixels", sw, sh);
    if (tjDecompress2(r->tj, buf, (unsigned long)len, r->px, sw, 0, sh,
                      c == 3 ? TJPF_RGB : TJPF_GRAY,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "truncated or corrupt JPEG data "
                        "(libjpeg-turbo: %s)", tjGetErrorStr2(r->tj));
    r->h = sh, r->w = sw, r->c = c;
    r->full_h = h, r->full_w = w;
    r->scale_num = f.num, r->scale_den = f.denom;
    return 0;
}

static int decode_png(cnb_imagefile *r, const unsigned char *buf, size_t len, int c,
                      char *err, size_t errlen)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, buf, len)) {
        int rc = cnb_fail(CNB_EINVAL, err, errlen, "truncated or corrupt PNG header (libpng: %s)",
                          img.message);
        png_image_free(&img);
        return rc;
    }
    if (check_size("PNG", (long)img.width, (long)img.height, err, errlen)) {
        png_image_free(&img);
        return CNB_EINVAL;
    }
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t bytes = (size_t)img.width * img.height * c;
    if (grow(&r->px, &r->px_cap, bytes)) {
        png_image_free(&img);
        return cnb_fail(CNB_ENOMEM, err, errlen, "cannot allocate %u x %u pixels", img.width,
                        img.height);
    }
    memset(r->px, 0, bytes); /* what alpha is composited onto: black */
    if (!png_image_finish_read(&img, NULL, r->px, 0, NULL)) {
        int rc = cnb_fail(CNB_EINVAL, err, errlen, "truncated or corrupt PNG data (libpng: %s)",
                          img.message);
        png_image_free(&img);
        return rc;
    }
    r->h = r->full_h = (int)img.height;
    r->w = r->full_w = (int)img.width;
    r->c = c;
    r->scale_num = r->scale_den = 1;
    png_image_free(&img);
    return 0;
}

int cnb_imagefile_decode(cnb_imagefile *r, const void *buf, size_t len, int c,
                         const cnb_image_need *need, char *err, size_t errlen)
{
    if (c != 1 && c != 3)
        return cnb_fail(CNB_EINVAL, err, errlen, "%d channels asked for; images are decoded to "
                        "1 (grey) or 3 (RGB)", c);
    if (len == 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "an empty file (0 bytes), not a JPEG or PNG");
    const char *kind = cnb_imagefile_kind(buf, len);
    if (!kind) {
        const unsigned char *b = buf;
        char head[32] = "";
        for (size_t i = 0; i < len && i < 4; i++)
            snprintf(head + strlen(head), sizeof head - strlen(head), "%s%02x", i ? " " : "",
                     b[i]);
        return cnb_fail(CNB_EINVAL, err, errlen, "not a JPEG or PNG file (it starts with %s; a "
                        "JPEG starts with ff d8 ff, a PNG with 89 50 4e 47); remove it or "
                        "convert it", head);
    }
    r->h = r->w = r->c = 0;
    return kind[0] == 'J' ? decode_jpeg(r, buf, len, c, need, err, errlen)
                          : decode_png(r, buf, len, c, err, errlen);
}

int cnb_imagefile_read(cnb_imagefile *r, const char *path, int c, const cnb_image_need *need,
                       char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = cnb_fail(CNB_EIO, err, errlen, "%s: not a regular file", path);
    else if (st.st_size > CNB_IMAGE_MAX_BYTES)
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: %lld bytes, more than the %ld MB an image "
                      "may have", path, (long long)st.st_size, CNB_IMAGE_MAX_BYTES >> 20);
    else if (grow(&r->bytes, &r->bytes_cap, (size_t)st.st_size + 1))
        rc = cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %lld bytes", path,
                      (long long)st.st_size);
    size_t got = 0, size = rc ? 0 : (size_t)st.st_size;
    while (rc == 0 && got < size) {
        ssize_t k = read(fd, r->bytes + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = cnb_fail(CNB_EIO, err, errlen, "%s: read error (%s)", path,
                          k < 0 ? strerror(errno) : "the file shrank while being read");
            break;
        }
        got += (size_t)k;
    }
    close(fd);
    if (rc)
        return rc;
    char why[768];
    rc = cnb_imagefile_decode(r, r->bytes, size, c, need, why, sizeof why);
    if (rc)
        cnb_fail(rc, err, errlen, "%s: %s", path, why);
    return rc;
}

void cnb_imagefile_free(cnb_imagefile *r)
{
    if (!r)
        return;
    if (r->tj)
        tjDestroy(r->tj);
    free(r->bytes);
    free(r->px);
    memset(r, 0, sizeof *r);
}
