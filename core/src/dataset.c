/*
 * dataset.c - the IDX (MNIST family) loader and per-channel statistics; see dataset.h.
 *
 * IDX layout (yann.lecun.com/exdb/mnist): a big-endian 32-bit magic 0x0000TTDD (TT the
 * element type, 0x08 = unsigned byte; DD the number of dimensions), DD big-endian 32-bit
 * sizes, then the elements in row-major order. All reading goes through zlib's gzread,
 * which passes raw files through unchanged, so there is no separate uncompressed path and
 * no hand-written gzip parsing.
 *
 * Not here: other element types than unsigned bytes (no MNIST-family file uses them) and
 * checks a short read cannot see: with a limit, only the bytes of the first `limit`
 * samples are read, so damage further into the file goes unnoticed until a full load.
 */
#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnbench/plugin.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned bytes, 3 dimensions (n, h, w) */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned bytes, 1 dimension (n)         */

#define READ_CHUNK (1u << 20)        /* pixels are converted to float this many at a time */
#define GZ_BUFFER (256u * 1024u)     /* zlib's buffer: ~10% faster than the 8 KiB default  */

/* Where the user gets the data: said by every "cannot open" message. */
#define HINT_DATA "Fashion-MNIST comes from the Debian package dataset-fashion-mnist " \
                  "(files under /usr/share/datasets/fashion-mnist), or set the data " \
                  "folder to where the IDX files are"
#define HINT_DAMAGED "the file is damaged: download it again or reinstall " \
                     "dataset-fashion-mnist"

static int fail(int code, char *err, size_t errlen, const char *fmt, ...) CNB_PRINTF(4, 5);

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int idx_open(gzFile *f, const char *path, char *err, size_t errlen)
{
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f)
        return fail(errno == ENOMEM || errno == 0 ? CNB_ENOMEM : CNB_EIO, err, errlen,
                    "%s: cannot open (%s); " HINT_DATA, path,
                    errno ? strerror(errno) : "out of memory");
    gzbuffer(*f, GZ_BUFFER);
    return 0;
}

/* The message of a failed gzread: an OS read error or a corrupt gzip stream. */
static int stream_error(gzFile f, const char *path, int saved_errno, char *err, size_t errlen)
{
    int errnum;
    const char *msg = gzerror(f, &errnum);
    if (errnum == Z_ERRNO)
        return fail(CNB_EIO, err, errlen,
                    "%s: read error (%s); give the path of a readable file", path,
                    strerror(saved_errno));
    if (errnum == Z_MEM_ERROR)
        return fail(CNB_ENOMEM, err, errlen, "%s: out of memory while decompressing", path);
    return fail(CNB_EIO, err, errlen, "%s: corrupt gzip stream (%s); " HINT_DAMAGED, path,
                msg);
}

/*
 * Read up to len bytes; *got says how many came. A clean end of file (or a gzip stream
 * that just stops, which zlib reports as Z_BUF_ERROR) is a short read for the caller to
 * judge; any other stream error returns CNB_EIO/CNB_ENOMEM with the message set.
 */
static int idx_read(gzFile f, const char *path, void *buf, size_t len, size_t *got,
                    char *err, size_t errlen)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (1u << 30))
            want = 1u << 30;
        errno = 0;
        int r = gzread(f, (unsigned char *)buf + *got, (unsigned)want);
        if (r < 0)
            return stream_error(f, path, errno, err, errlen);
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    if (*got < len) {
        int errnum;
        gzerror(f, &errnum);
        if (errnum != Z_OK && errnum != Z_BUF_ERROR)
            return stream_error(f, path, errno, err, errlen);
    }
    return 0;
}

/*
 * After a full load: the file must end here. Reading one more byte also makes sure zlib
 * has checked the gzip trailer (CRC-32 and length): it usually does so as the last data
 * come out, but not when the trailer lies in input it has not read yet.
 */
static int idx_expect_end(gzFile f, const char *path, char *err, size_t errlen)
{
    unsigned char extra;
    size_t got;
    int rc = idx_read(f, path, &extra, 1, &got, err, errlen);
    if (rc)
        return rc;
    if (got)
        return fail(CNB_EINVAL, err, errlen,
                    "%s: more data than its header declares; " HINT_DAMAGED, path);
    return 0;
}

/* Read and check the magic and the ndims sizes that follow it. */
static int idx_header(gzFile f, const char *path, uint32_t magic, const char *what,
                      uint32_t other_magic, uint32_t *dims, int ndims, char *err,
                      size_t errlen)
{
    unsigned char hdr[4 * 4];
    size_t want = 4 * (size_t)(1 + ndims), got;
    int rc = idx_read(f, path, hdr, want, &got, err, errlen);
    if (rc)
        return rc;
    if (got >= 4 && be32(hdr) != magic) {
        uint32_t found = be32(hdr);
        const char *hint = found == other_magic
                               ? "are the image and label paths swapped?"
                           : magic == IDX_MAGIC_IMAGES ? "give a *-images-idx3-ubyte file"
                                                       : "give a *-labels-idx1-ubyte file";
        return fail(CNB_EINVAL, err, errlen,
                    "%s: not an IDX %s file: magic 0x%08X, expected 0x%08X (unsigned bytes, "
                    "%d dimension%s); %s",
                    path, what, (unsigned)found, (unsigned)magic, ndims, ndims == 1 ? "" : "s",
                    hint);
    }
    if (got < want)
        return fail(CNB_EINVAL, err, errlen,
                    "%s: truncated %s header: expected %zu bytes, got %zu; " HINT_DAMAGED,
                    path, what, want, got);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(hdr + 4 * (1 + i));
    return 0;
}

int cnb_idx_load(cnb_dataset *out, const char *images_path, const char *labels_path,
                 size_t limit, char *err, size_t errlen)
{
    gzFile fi = NULL, fl = NULL;
    unsigned char *bytes = NULL;
    uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
    size_t got;
    int rc;

    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';

    if ((rc = idx_open(&fi, images_path, err, errlen)))
        goto done;
    if ((rc = idx_header(fi, images_path, IDX_MAGIC_IMAGES, "image", IDX_MAGIC_LABELS, idims,
                         3, err, errlen)))
        goto done;
    if (idims[0] == 0 || idims[1] == 0 || idims[2] == 0) {
        rc = fail(CNB_EINVAL, err, errlen,
                  "%s: header declares %u images of %u x %u; every dimension must be at "
                  "least 1 (" HINT_DAMAGED ")",
                  images_path, (unsigned)idims[0], (unsigned)idims[1], (unsigned)idims[2]);
        goto done;
    }
    if (idims[0] > INT_MAX || (uint64_t)idims[1] * idims[2] > INT_MAX) {
        rc = fail(CNB_EINVAL, err, errlen,
                  "%s: header declares %u images of %u x %u, more than cnnbench can hold "
                  "(counts and image sizes up to %d); " HINT_DAMAGED,
                  images_path, (unsigned)idims[0], (unsigned)idims[1], (unsigned)idims[2],
                  INT_MAX);
        goto done;
    }

    if ((rc = idx_open(&fl, labels_path, err, errlen)))
        goto done;
    if ((rc = idx_header(fl, labels_path, IDX_MAGIC_LABELS, "label", IDX_MAGIC_IMAGES, ldims,
                         1, err, errlen)))
        goto done;
    if (ldims[0] != idims[0]) {
        rc = fail(CNB_EINVAL, err, errlen,
                  "%s has %u images but %s has %u labels; give the image and label files "
                  "of the same split",
                  images_path, (unsigned)idims[0], labels_path, (unsigned)ldims[0]);
        goto done;
    }

    size_t total = idims[0];
    size_t n = limit && limit < total ? limit : total;
    size_t hw = (size_t)idims[1] * idims[2];
    if (n > SIZE_MAX / sizeof(float) / hw) {
        rc = fail(CNB_ENOMEM, err, errlen, "%s: %zu images of %zu pixels do not fit in "
                  "memory; load fewer with a limit", images_path, n, hw);
        goto done;
    }
    out->images = malloc(n * hw * sizeof(float));
    out->labels = malloc(n * sizeof(int32_t));
    size_t chunk = n * hw < READ_CHUNK ? n * hw : READ_CHUNK;
    bytes = malloc(chunk > n ? chunk : n); /* one chunk of pixels, later all the labels */
    if (!out->images || !out->labels || !bytes) {
        rc = fail(CNB_ENOMEM, err, errlen,
                  "%s: cannot allocate %zu MB for %zu images of %zu pixels; load fewer "
                  "with a limit",
                  images_path, (n * hw * sizeof(float) >> 20) + 1, n, hw);
        goto done;
    }

    /* Pixels: bytes -> [0, 1] through a table, so each value is exactly byte / 255.0f. */
    float scale[256];
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
    size_t need = n * hw;
    for (size_t done_px = 0; done_px < need;) {
        size_t want = need - done_px < READ_CHUNK ? need - done_px : READ_CHUNK;
        if ((rc = idx_read(fi, images_path, bytes, want, &got, err, errlen)))
            goto done;
        for (size_t k = 0; k < got; k++)
            out->images[done_px + k] = scale[bytes[k]];
        done_px += got;
        if (got < want) {
            rc = fail(CNB_EINVAL, err, errlen,
                      "%s: truncated: expected %zu bytes of pixels after the 16-byte header "
                      "(%zu images of %zu), got %zu; " HINT_DAMAGED,
                      images_path, need, n, hw, done_px);
            goto done;
        }
    }
    if (n == total && (rc = idx_expect_end(fi, images_path, err, errlen)))
        goto done;

    /* Labels. */
    if ((rc = idx_read(fl, labels_path, bytes, n, &got, err, errlen)))
        goto done;
    if (got < n) {
        rc = fail(CNB_EINVAL, err, errlen,
                  "%s: truncated: expected %zu bytes of labels after the 8-byte header, got "
                  "%zu; " HINT_DAMAGED,
                  labels_path, n, got);
        goto done;
    }
    if (n == total && (rc = idx_expect_end(fl, labels_path, err, errlen)))
        goto done;
    int maxlabel = 0;
    for (size_t i = 0; i < n; i++) {
        out->labels[i] = bytes[i];
        if (bytes[i] > maxlabel)
            maxlabel = bytes[i];
    }

    out->n = (int)n;
    out->c = 1;
    out->h = (int)idims[1];
    out->w = (int)idims[2];
    out->classes = maxlabel + 1;
    rc = 0;

done:
    free(bytes);
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    if (rc)
        cnb_dataset_free(out);
    return rc;
}

int cnb_idx_load_split(cnb_dataset *out, const char *dir, const char *split, size_t limit,
                       char *err, size_t errlen)
{
    char images[4096], labels[4096];
    const char *kind[2] = {"images-idx3-ubyte", "labels-idx1-ubyte"};
    char *path[2] = {images, labels};

    memset(out, 0, sizeof *out);
    for (int i = 0; i < 2; i++) {
        int len = snprintf(path[i], sizeof images, "%s/%s-%s.gz", dir, split, kind[i]);
        if (len < 0 || (size_t)len >= sizeof images)
            return fail(CNB_EINVAL, err, errlen,
                        "%s: data folder path too long; use a shorter one", dir);
        if (access(path[i], F_OK) != 0) {
            path[i][len - 3] = '\0'; /* try the unpacked name */
            if (access(path[i], F_OK) != 0)
                path[i][len - 3] = '.'; /* neither: report the .gz name */
        }
    }
    return cnb_idx_load(out, images, labels, limit, err, errlen);
}

void cnb_dataset_free(cnb_dataset *d)
{
    if (!d)
        return;
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void cnb_dataset_channel_stats(const cnb_dataset *d, double *mean, double *std)
{
    size_t hw = (size_t)d->h * d->w;
    size_t count = (size_t)d->n * hw;
    for (int ch = 0; ch < d->c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < d->n; i++) {
            const float *x = d->images + ((size_t)i * d->c + ch) * hw;
            for (size_t k = 0; k < hw; k++)
                sum += x[k];
        }
        double m = count ? sum / (double)count : 0.0;
        for (int i = 0; i < d->n; i++) {
            const float *x = d->images + ((size_t)i * d->c + ch) * hw;
            for (size_t k = 0; k < hw; k++)
                sq += ((double)x[k] - m) * ((double)x[k] - m);
        }
        mean[ch] = m;
        std[ch] = count ? sqrt(sq / (double)count) : 0.0;
    }
}

void cnb_dataset_normalize(cnb_dataset *d, const double *mean, const double *std)
{
    size_t hw = (size_t)d->h * d->w;
    for (int ch = 0; ch < d->c; ch++) {
        double inv = std[ch] > 0.0 ? 1.0 / std[ch] : 1.0;
        for (int i = 0; i < d->n; i++) {
            float *x = d->images + ((size_t)i * d->c + ch) * hw;
            for (size_t k = 0; k < hw; k++)
                x[k] = (float)(((double)x[k] - mean[ch]) * inv);
        }
    }
}
