/*
 * dataset.c - the IDX (MNIST family) and CIFAR-10 binary loaders and per-channel
 * statistics; see dataset.h.
 *
 * IDX layout (yann.lecun.com/exdb/mnist): a big-endian 32-bit magic 0x0000TTDD (TT the
 * element type, 0x08 = unsigned byte; DD the number of dimensions), DD big-endian 32-bit
 * sizes, then the elements in row-major order. All reading goes through zlib's gzread,
 * which passes raw files through unchanged, so there is no separate uncompressed path and
 * no hand-written gzip parsing.
 *
 * CIFAR-10 binary (www.cs.toronto.edu/~kriz/cifar.html): no header, records of 1 label
 * byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, each 32 x 32 row-major: already CHW),
 * read through the same gzread path.
 *
 * Not here: other element types than unsigned bytes (no MNIST-family file uses them),
 * CIFAR-100 (2 label bytes per record) and checks a short read cannot see: with a limit,
 * only the bytes of the first `limit` samples are read, so damage further into the file
 * goes unnoticed until a full load.
 */
#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnbench/plugin.h"
#include "errors.h"
#include "rng.h"

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

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Open for gzread; hint (where the data come from) ends the "cannot open" message. */
static int idx_open(gzFile *f, const char *path, const char *hint, char *err, size_t errlen)
{
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f)
        return cnb_fail(errno == ENOMEM || errno == 0 ? CNB_ENOMEM : CNB_EIO, err, errlen,
                        "%s: cannot open (%s); %s", path, errno ? strerror(errno) : "out of memory",
                        hint);
    gzbuffer(*f, GZ_BUFFER);
    return 0;
}

/* The message of a failed gzread: an OS read error or a corrupt gzip stream. */
static int stream_error(gzFile f, const char *path, int saved_errno, char *err, size_t errlen)
{
    int errnum;
    const char *msg = gzerror(f, &errnum);
    if (errnum == Z_ERRNO)
        return cnb_fail(CNB_EIO, err, errlen, "%s: read error (%s); give the path of a readable "
                        "file", path, strerror(saved_errno));
    if (errnum == Z_MEM_ERROR)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory while decompressing", path);
    return cnb_fail(CNB_EIO, err, errlen, "%s: corrupt gzip stream (%s); " HINT_DAMAGED, path, msg);
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
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: more data than its header declares; "
                        HINT_DAMAGED, path);
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
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: not an IDX %s file: magic 0x%08X, "
                        "expected 0x%08X (unsigned bytes, %d dimension%s); %s", path, what,
                        (unsigned)found, (unsigned)magic, ndims, ndims == 1 ? "" : "s", hint);
    }
    if (got < want)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: truncated %s header: expected %zu bytes, "
                        "got %zu; " HINT_DAMAGED, path, what, want, got);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(hdr + 4 * (1 + i));
    return 0;
}

/* The most bytes a file opened with idx_open can still give after a header of `header`
 * bytes: a raw file's size less the header; for a gzip stream DEFLATE_MAX_RATIO times its
 * compressed size (deflate expands at most about 1032:1); SIZE_MAX for what is not a
 * regular file. Checked before allocating, so that a header declaring 2^31 images is
 * refused, not allocated for. */
#define DEFLATE_MAX_RATIO 1032u
static size_t idx_room(gzFile f, const char *path, size_t header)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return SIZE_MAX;
    size_t size = (size_t)st.st_size;
    if (!gzdirect(f))
        return size > SIZE_MAX / DEFLATE_MAX_RATIO ? SIZE_MAX : size * DEFLATE_MAX_RATIO;
    return size > header ? size - header : 0;
}

/* The image file's header: n images of h x w, each at least 1 and within an int. */
static int idx_image_header(gzFile f, const char *path, uint32_t dims[3], char *err,
                            size_t errlen)
{
    int rc = idx_header(f, path, IDX_MAGIC_IMAGES, "image", IDX_MAGIC_LABELS, dims, 3, err,
                        errlen);
    if (rc == 0 && (dims[0] == 0 || dims[1] == 0 || dims[2] == 0))
        rc = cnb_fail(CNB_EINVAL, err, errlen,
                      "%s: header declares %u images of %u x %u; every dimension must be at "
                      "least 1 (" HINT_DAMAGED ")",
                      path, (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2]);
    else if (rc == 0 && (dims[0] > INT_MAX || (uint64_t)dims[1] * dims[2] > INT_MAX))
        rc = cnb_fail(CNB_EINVAL, err, errlen,
                      "%s: header declares %u images of %u x %u, more than cnnbench can hold "
                      "(counts and image sizes up to %d); " HINT_DAMAGED,
                      path, (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2], INT_MAX);
    return rc;
}

/* The label file's header, whose count must be the image file's. */
static int idx_label_header(gzFile f, const char *path, uint32_t images,
                            const char *images_path, char *err, size_t errlen)
{
    uint32_t dims[1] = {0};
    int rc = idx_header(f, path, IDX_MAGIC_LABELS, "label", IDX_MAGIC_IMAGES, dims, 1, err,
                        errlen);
    if (rc == 0 && dims[0] != images)
        rc = cnb_fail(CNB_EINVAL, err, errlen,
                      "%s has %u images but %s has %u labels; give the image and label files "
                      "of the same split",
                      images_path, (unsigned)images, path, (unsigned)dims[0]);
    return rc;
}

/* Can n images of hw pixels be held, and can the file hold them? */
static int idx_fits(gzFile f, const char *path, size_t n, size_t hw, char *err, size_t errlen)
{
    if (n > SIZE_MAX / sizeof(float) / hw)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: %zu images of %zu pixels do not fit in "
                        "memory; load fewer with a limit", path, n, hw);
    size_t room = idx_room(f, path, 16);
    if (n * hw <= room)
        return 0;
    if (gzdirect(f))
        return cnb_fail(CNB_EINVAL, err, errlen,
                        "%s: truncated: expected %zu bytes of pixels after the 16-byte header "
                        "(%zu images of %zu), got %zu; " HINT_DAMAGED,
                        path, n * hw, n, hw, room);
    return cnb_fail(CNB_EINVAL, err, errlen,
                    "%s: truncated: expected %zu bytes of pixels after the 16-byte header "
                    "(%zu images of %zu), more than a gzip file of this size can hold (%zu); "
                    HINT_DAMAGED, path, n * hw, n, hw, room);
}

/* Where the bytes of an IDX body go: pixels as byte / 255.0f or nowhere, labels as int32
 * with their largest value kept. */
typedef struct idx_sink {
    float *pixels;
    int32_t *labels;
    int max_label;
} idx_sink;

static void idx_take(idx_sink *s, size_t at, const unsigned char *b, size_t n)
{
    for (size_t k = 0; s->pixels && k < n; k++)
        s->pixels[at + k] = (float)b[k] / 255.0f;
    for (size_t k = 0; s->labels && k < n; k++) {
        s->labels[at + k] = b[k];
        s->max_label = b[k] > s->max_label ? b[k] : s->max_label;
    }
}

/* Reads `need` bytes of a body into `sink`, READ_CHUNK at a time through `chunk`; then,
 * when the whole file was wanted, checks that nothing follows. `what` completes the
 * truncation message ("pixels after the 16-byte header (...)"). */
static int idx_body(gzFile f, const char *path, size_t need, int whole, const char *what,
                    unsigned char *chunk, idx_sink *sink, char *err, size_t errlen)
{
    for (size_t done = 0; done < need;) {
        size_t want = need - done < READ_CHUNK ? need - done : READ_CHUNK, got;
        int rc = idx_read(f, path, chunk, want, &got, err, errlen);
        if (rc)
            return rc;
        idx_take(sink, done, chunk, got);
        done += got;
        if (got < want)
            return cnb_fail(CNB_EINVAL, err, errlen, "%s: truncated: expected %zu bytes of %s, "
                            "got %zu; " HINT_DAMAGED, path, need, what, done);
    }
    return whole ? idx_expect_end(f, path, err, errlen) : 0;
}

/* cnb_idx_load, or with keep_pixels 0 cnb_idx_check: every byte read and checked, the
 * pixels not kept. The labels are allocated only after the pixels are all there, so a
 * header that lies about its count costs a read, not a huge allocation. */
static int idx_load(cnb_dataset *out, const char *images_path, const char *labels_path,
                    size_t limit, int keep_pixels, char *err, size_t errlen)
{
    gzFile fi = NULL, fl = NULL;
    unsigned char *chunk = NULL;
    uint32_t dims[3] = {0, 0, 0};
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    int rc = idx_open(&fi, images_path, HINT_DATA, err, errlen);
    if (rc == 0)
        rc = idx_image_header(fi, images_path, dims, err, errlen);
    if (rc == 0)
        rc = idx_open(&fl, labels_path, HINT_DATA, err, errlen);
    if (rc == 0)
        rc = idx_label_header(fl, labels_path, dims[0], images_path, err, errlen);
    size_t total = dims[0], n = limit && limit < total ? limit : total;
    size_t hw = (size_t)dims[1] * dims[2];
    if (rc == 0)
        rc = idx_fits(fi, images_path, n, hw, err, errlen);
    if (rc == 0) {
        out->images = keep_pixels ? malloc(n * hw * sizeof(float)) : NULL;
        chunk = malloc(READ_CHUNK); /* a chunk of pixels, later of labels */
        if ((keep_pixels && !out->images) || !chunk)
            rc = cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %zu MB for %zu images "
                          "of %zu pixels; load fewer with a limit",
                          images_path, (n * hw * sizeof(float) >> 20) + 1, n, hw);
    }
    char what[128];
    snprintf(what, sizeof what, "pixels after the 16-byte header (%zu images of %zu)", n, hw);
    idx_sink pixels = {.pixels = out->images}, labels = {0};
    if (rc == 0)
        rc = idx_body(fi, images_path, n * hw, n == total, what, chunk, &pixels, err, errlen);
    if (rc == 0 && !(out->labels = labels.labels = malloc(n * sizeof(int32_t))))
        rc = cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %zu MB for %zu labels",
                      labels_path, (n * sizeof(int32_t) >> 20) + 1, n);
    if (rc == 0)
        rc = idx_body(fl, labels_path, n, n == total, "labels after the 8-byte header", chunk,
                      &labels, err, errlen);
    if (rc == 0)
        *out = (cnb_dataset){.images = out->images, .labels = out->labels, .n = (int)n, .c = 1,
                             .h = (int)dims[1], .w = (int)dims[2],
                             .classes = labels.max_label + 1};
    free(chunk);
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    if (rc)
        cnb_dataset_free(out);
    return rc;
}

int cnb_idx_load(cnb_dataset *out, const char *images_path, const char *labels_path,
                 size_t limit, char *err, size_t errlen)
{
    return idx_load(out, images_path, labels_path, limit, 1, err, errlen);
}

int cnb_idx_check(cnb_dataset *out, const char *images_path, const char *labels_path,
                  size_t limit, char *err, size_t errlen)
{
    return idx_load(out, images_path, labels_path, limit, 0, err, errlen);
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
            return cnb_fail(CNB_EINVAL, err, errlen, "%s: data folder path too long; use a "
                            "shorter one", dir);
        if (access(path[i], F_OK) != 0) {
            path[i][len - 3] = '\0'; /* try the unpacked name */
            if (access(path[i], F_OK) != 0)
                path[i][len - 3] = '.'; /* neither: report the .gz name */
        }
    }
    return cnb_idx_load(out, images, labels, limit, err, errlen);
}

/* ---- CIFAR-10 binary ----------------------------------------------------------------- */

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE) /* 1024 R, 1024 G, 1024 B          */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)            /* a label byte, then the pixels     */
#define CIFAR_CHUNK 256                            /* records read at a time            */
#define CIFAR_CLASSES 10
#define HINT_CIFAR "the binary version of CIFAR-10 (cifar-10-binary.tar.gz, from " \
                   "www.cs.toronto.edu/~kriz/cifar.html) unpacks to cifar-10-batches-bin/; " \
                   "set the data folder to that folder"
#define HINT_CIFAR_DAMAGED "the file is truncated or not CIFAR-10 binary (CIFAR-100 " \
                           "records are 3074 bytes); download it again"

/* The records read so far, as bytes; converted to floats once all are in. */
typedef struct {
    unsigned char *bytes;
    size_t n, cap; /* records held, records there is room for */
} cifar_buf;

static int cifar_reserve(cifar_buf *b, size_t more, const char *path, char *err, size_t errlen)
{
    if (b->n + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more)
        cap *= 2;
    unsigned char *p = b->n + more <= INT_MAX ? realloc(b->bytes, cap * CIFAR_RECORD) : NULL;
    if (!p)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %zu MB for %zu CIFAR-10 "
                        "records; load fewer with a limit", path, (cap * CIFAR_RECORD >> 20) + 1,
                        b->n + more);
    b->bytes = p;
    b->cap = cap;
    return 0;
}

/* The labels of records first..b->n of one file must be 0..9. */
static int cifar_check_labels(const cifar_buf *b, size_t first, const char *path, char *err,
                              size_t errlen)
{
    for (size_t k = first; k < b->n; k++) {
        unsigned label = b->bytes[k * CIFAR_RECORD];
        if (label >= CIFAR_CLASSES)
            return cnb_fail(CNB_EINVAL, err, errlen, "%s: the record at byte %zu (record size "
                            "%d) has label %u; CIFAR-10 labels are 0 to 9: " HINT_CIFAR_DAMAGED,
                            path, (k - first) * CIFAR_RECORD, CIFAR_RECORD, label);
    }
    return 0;
}

/* The file ended after `size` bytes: it must hold at least one whole record, and only
 * whole records. */
static int cifar_check_size(gzFile f, size_t size, const char *path, char *err, size_t errlen)
{
    const char *what = gzdirect(f) ? "" : " uncompressed";
    if (size == 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: empty (0 bytes%s); a CIFAR-10 binary file "
                        "holds records of %d bytes (1 label + %d pixels): " HINT_CIFAR_DAMAGED,
                        path, what, CIFAR_RECORD, CIFAR_PIXELS);
    if (size % CIFAR_RECORD)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: %zu bytes%s is not a multiple of the "
                        "CIFAR-10 record size %d (1 label + %d pixels): " HINT_CIFAR_DAMAGED, path,
                        size, what, CIFAR_RECORD, CIFAR_PIXELS);
    return 0;
}

/* Append the records of one file to b: all of them, or until b holds limit (0 = all). */
static int cifar_read_file(cifar_buf *b, const char *path, size_t limit, char *err,
                           size_t errlen)
{
    gzFile f;
    size_t first = b->n, size = 0;
    int rc = idx_open(&f, path, HINT_CIFAR, err, errlen);
    if (rc)
        return rc;
    for (;;) {
        size_t want = limit && limit - b->n < CIFAR_CHUNK ? limit - b->n : CIFAR_CHUNK, got;
        if (want == 0)
            break;
        if ((rc = cifar_reserve(b, want, path, err, errlen)) ||
            (rc = idx_read(f, path, b->bytes + b->n * CIFAR_RECORD, want * CIFAR_RECORD,
                           &got, err, errlen)))
            break;
        size += got;
        b->n += got / CIFAR_RECORD;
        if (got < want * CIFAR_RECORD) { /* the end of the file */
            rc = cifar_check_size(f, size, path, err, errlen);
            break;
        }
    }
    if (rc == 0)
        rc = cifar_check_labels(b, first, path, err, errlen);
    gzclose(f);
    return rc;
}

/* The records of b as a dataset: c = 3, 32 x 32, pixels byte / 255. */
static int cifar_to_dataset(cnb_dataset *out, const cifar_buf *b, const char *path, char *err,
                            size_t errlen)
{
    size_t n = b->n;
    out->images = malloc(n * CIFAR_PIXELS * sizeof(float));
    out->labels = malloc(n * sizeof(int32_t));
    if (!out->images || !out->labels)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %zu MB for %zu CIFAR-10 "
                        "images; load fewer with a limit", path,
                        (n * CIFAR_PIXELS * sizeof(float) >> 20) + 1, n);
    float scale[256];
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
    int maxlabel = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *rec = b->bytes + i * CIFAR_RECORD;
        float *img = out->images + i * CIFAR_PIXELS;
        for (int k = 0; k < CIFAR_PIXELS; k++)
            img[k] = scale[rec[1 + k]];
        out->labels[i] = rec[0];
        maxlabel = rec[0] > maxlabel ? rec[0] : maxlabel;
    }
    out->n = (int)n;
    out->c = 3;
    out->h = out->w = CIFAR_SIDE;
    out->classes = maxlabel + 1;
    return 0;
}

int cnb_cifar_load(cnb_dataset *out, const char *const *paths, int n_paths, size_t limit,
                   char *err, size_t errlen)
{
    cifar_buf b = {NULL, 0, 0};
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (!paths || n_paths < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "no CIFAR-10 files given; give "
                        "data_batch_1.bin ... data_batch_5.bin or test_batch.bin");
    for (int i = 0; i < n_paths && rc == 0 && !(limit && b.n >= limit); i++)
        rc = cifar_read_file(&b, paths[i], limit, err, errlen);
    if (rc == 0)
        rc = cifar_to_dataset(out, &b, paths[0], err, errlen);
    free(b.bytes);
    if (rc)
        cnb_dataset_free(out);
    return rc;
}

int cnb_cifar_load_split(cnb_dataset *out, const char *dir, const char *split, size_t limit,
                         char *err, size_t errlen)
{
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    char buf[5][4096], missing[256] = "";
    const char *paths[5];
    int is_train = split && strcmp(split, "train") == 0, count = is_train ? 5 : 1;

    memset(out, 0, sizeof *out);
    if (!is_train && !(split && strcmp(split, "test") == 0))
        return cnb_fail(CNB_EINVAL, err, errlen, "CIFAR-10 split '%s': give train or test",
                        split ? split : "(none)");
    for (int i = 0; i < count; i++) {
        const char *name = is_train ? train[i] : test[i];
        int len = snprintf(buf[i], sizeof buf[i], "%s/%s.gz", dir, name);
        if (len < 0 || (size_t)len >= sizeof buf[i])
            return cnb_fail(CNB_EINVAL, err, errlen, "%s: data folder path too long; use a "
                            "shorter one", dir);
        buf[i][len - 3] = '\0'; /* the unpacked name first, as the tarball has it */
        if (access(buf[i], F_OK) != 0) {
            buf[i][len - 3] = '.';
            if (access(buf[i], F_OK) != 0) {
                size_t used = strlen(missing);
                snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "",
                         name);
            }
        }
        paths[i] = buf[i];
    }
    if (missing[0])
        return cnb_fail(CNB_EIO, err, errlen, "%s: no %s (nor the same with .gz) for the "
                        "CIFAR-10 %s split; %s", dir, missing, split, HINT_CIFAR);
    return cnb_cifar_load(out, paths, count, limit, err, errlen);
}

int cnb_holdout_draw(int n, int count, uint64_t seed, unsigned char *held, uint32_t *digest)
{
    uint32_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return CNB_ENOMEM;
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_VALIDATION);
    memset(held, 0, (size_t)n);
    for (int i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    for (int i = 0; i < count; i++) {
        uint32_t j = (uint32_t)i + cnb_rng_below(&rng, (uint32_t)(n - i)), t = idx[i];
        idx[i] = idx[j], idx[j] = t;
        held[idx[i]] = 1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++)
        if (held[i]) {
            const unsigned char le[4] = {(unsigned char)i, (unsigned char)(i >> 8),
                                         (unsigned char)(i >> 16), (unsigned char)(i >> 24)};
            crc = crc32(crc, le, 4);
        }
    *digest = (uint32_t)crc;
    free(idx);
    return 0;
}

int cnb_dataset_holdout(cnb_dataset *train, int count, uint64_t seed, cnb_dataset *val,
                        uint32_t *digest)
{
    const int n = train->n;
    const size_t per = (size_t)train->c * train->h * train->w;
    memset(val, 0, sizeof *val);
    unsigned char *held = malloc((size_t)n);
    val->images = malloc((size_t)count * per * sizeof *val->images);
    val->labels = malloc((size_t)count * sizeof *val->labels);
    if (!held || !val->images || !val->labels ||
        cnb_holdout_draw(n, count, seed, held, digest)) {
        free(held), cnb_dataset_free(val);
        return CNB_ENOMEM;
    }
    int v = 0, t = 0;
    for (int i = 0; i < n; i++) {
        const float *x = train->images + (size_t)i * per;
        if (held[i]) {
            memcpy(val->images + (size_t)v * per, x, per * sizeof *x);
            val->labels[v++] = train->labels[i];
        } else { /* compacted in place: t <= i */
            memmove(train->images + (size_t)t * per, x, per * sizeof *x);
            train->labels[t++] = train->labels[i];
        }
    }
    val->n = count, val->c = train->c, val->h = train->h, val->w = train->w;
    val->classes = train->classes;
    train->n = n - count;
    free(held);
    return 0;
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
