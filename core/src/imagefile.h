/*
 * imagefile.h - one JPEG or PNG file to 8-bit pixels: the decoders of image folders.
 *
 * What it is: JPEG through libjpeg-turbo's TurboJPEG API (with its DCT scaling: a 2000 x
 * 1500 photo that will be resized to 256 is decoded at 1/4 of its size, 500 x 375, for
 * about a sixth of the work) and PNG through libpng's simplified API, to interleaved
 * (h, w, c) bytes with c = 3 (RGB) or 1 (grey). The kind is told by the file's first
 * bytes, not its name. Every size is checked against a limit before anything is
 * allocated: a header that declares 16000 x 16000 on a body of 100 bytes is refused.
 *
 * What it is not: no resizing (augment.h), no other formats (GIF, WebP, TIFF), no
 * colour management (ICC profiles are ignored; PNG gamma is converted to sRGB by libpng),
 * no EXIF orientation. One cnb_imagefile reader is not for concurrent use: give each
 * thread its own.
 */
#ifndef CNB_IMAGEFILE_H
#define CNB_IMAGEFILE_H

#include <stddef.h>

/* Images larger than this many pixels (as the file declares them, before any DCT
 * scaling) are refused: 8192 x 8192 decoded as RGB is 192 MB, several per thread. */
#define CNB_IMAGE_MAX_PIXELS (64L * 1024 * 1024)
/* Files larger than this are refused unread: no JPEG or PNG of 64 Mpixels needs more. */
#define CNB_IMAGE_MAX_BYTES (512L * 1024 * 1024)

/* What the pixels are needed for: a JPEG is decoded at the smallest DCT scale (1/8, 1/4,
 * 3/8, ... 1, from tjGetScalingFactors) whose result still has its shorter side at least
 * `shorter`, its height at least `h` and its width at least `w` (0: no constraint). */
typedef struct cnb_image_need {
    int shorter, h, w;
} cnb_image_need;

typedef struct cnb_imagefile {
    void *tj;               /* TurboJPEG decompressor, made on first use  */
    unsigned char *bytes;   /* the file's contents                        */
    size_t bytes_cap;
    unsigned char *px;      /* the decoded pixels (h, w, c)               */
    size_t px_cap;
    int h, w, c;            /* of px                                      */
    int full_h, full_w;     /* the size the file declares                 */
    int scale_num, scale_den; /* the DCT scale used (1/1 for PNG)         */
} cnb_imagefile;

/*
 * Decode buf[0..len) into r->px as c channels (3: RGB, grey copied to each; 1: grey,
 * colour converted by luminance). A JPEG is decoded at the scale `need` allows (NULL:
 * full size). PNG: palette and low bit depths expanded, 16 bits reduced to 8, an alpha
 * channel or tRNS composited onto black.
 *
 * Returns 0, or CNB_EINVAL with a message saying what is wrong in the words of a user
 * ("not a JPEG or PNG file (it starts with 25 50 44 46)", "truncated or corrupt JPEG
 * data: ...", "a CMYK JPEG: ...", "16000 x 16000 pixels, more than the limit of ..."),
 * or CNB_ENOMEM. The caller puts the path in front of the message.
 */
int cnb_imagefile_decode(cnb_imagefile *r, const void *buf, size_t len, int c,
                         const cnb_image_need *need, char *err, size_t errlen);

/* Read the file at path whole (into r->bytes) and decode it as above; the message names
 * the path. CNB_EIO when it cannot be read. */
int cnb_imagefile_read(cnb_imagefile *r, const char *path, int c, const cnb_image_need *need,
                       char *err, size_t errlen);

/* Free the buffers and the decompressor; *r is zeroed. Safe on a zeroed struct. */
void cnb_imagefile_free(cnb_imagefile *r);

/* "JPEG", "PNG" or NULL, from the first bytes of buf. */
const char *cnb_imagefile_kind(const void *buf, size_t len);

#endif
