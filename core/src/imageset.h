/*
 * imageset.h - a split of labelled image files, read one sample at a time: an image
 * folder (one subfolder per class), a list file ("relative/path label" lines, as Caffe's
 * ImageData layer and convert_imageset take), or a packed cache written from either
 * (docs/image-pack.md).
 *
 * What it is: the list of (path, label) pairs and class names, kept in memory (about 100
 * bytes a sample: ImageNet's 1.28 M training images take 130 MB); a reader that gives
 * sample i decoded and resized, as float CHW in [0, 1]; the per-channel statistics and
 * RGB covariance of a seeded sample of the split (mean, std, AlexNet's PCA lighting).
 *
 * What it is not: no augmentation (augment.h), no threads (feed.h runs readers on its
 * own threads; one cnb_imagereader per thread, the set itself is read-only once made).
 */
#ifndef CNB_IMAGESET_H
#define CNB_IMAGESET_H

#include <stddef.h>
#include <stdint.h>

#include "imagefile.h"

enum {
    CNB_RESIZE_NONE = 0,    /* as decoded                                        */
    CNB_RESIZE_SHORTER = 1, /* the shorter side to h, aspect kept                */
    CNB_RESIZE_EXACT = 2,   /* to h x w, aspect changed                          */
    CNB_RESIZE_CENTER = 3,  /* the shorter side to h, then the centre h x h: the
                               AlexNet paper's 256 x 256                         */
};

typedef struct cnb_resize_spec {
    int mode, h, w;
} cnb_resize_spec;

typedef struct cnb_imageset {
    int n, classes;
    char **paths;             /* (n) full paths; NULL entries in a pack           */
    int32_t *labels;          /* (n)                                              */
    char **class_names;       /* (classes): folder names, or "0", "1" ... of a list */
    int *class_counts;        /* (classes) samples of each class                  */
    char source[4096];        /* the folder, list or pack it was made from         */
    /* a packed cache (cnb_imageset_pack_open) */
    unsigned char *map;
    size_t map_len;
    int map_shared;           /* the map is another set's (cnb_imageset_holdout's
                                 validation set reads its training set's): kept at free */
    int pack_h, pack_w, pack_c;
    cnb_resize_spec pack_resize;
    const unsigned char *index; /* (n) entries of 16 bytes: offset, label, crc32 */
    unsigned char *own_index;   /* the index after cnb_imageset_limit           */
} cnb_imageset;

/*
 * A folder of class subfolders, classes in byte order of their names, files in byte order
 * within each; files ending .jpg, .jpeg, .png (any case) are taken, others and hidden
 * entries ignored (*ignored counts them when not NULL). `classes_of` (the training set,
 * or NULL) fixes the class numbering: a subfolder that is not one of its classes is an
 * error naming it. Returns 0, CNB_EIO, CNB_EINVAL (no class, no image), CNB_ENOMEM.
 */
int cnb_imageset_folder(cnb_imageset *s, const char *dir, const cnb_imageset *classes_of,
                        int *ignored, char *err, size_t errlen);

/*
 * A list file: one sample a line, "path label", the label a whole number from 0 after the
 * last space or tab (so paths may hold spaces), the path relative to `root` (NULL: the
 * list file's folder) unless absolute; empty lines skipped. Errors name file:line.
 */
int cnb_imageset_list(cnb_imageset *s, const char *list, const char *root, char *err,
                      size_t errlen);

/* Keep `limit` samples spread evenly over the split (sample i * n / limit), so that a
 * limit keeps every class of a folder; 0, or limit >= n, keeps all. 0 or CNB_ENOMEM. */
int cnb_imageset_limit(cnb_imageset *s, long limit);

/*
 * Hold out `count` samples of *s (0 < count < s->n) as a validation set, the samples
 * cnb_dataset_holdout would hold out of a split of s->n (cnb_holdout_draw: the same seed
 * and count, the same indices): they move into *val, the rest stay in *s (its class
 * counts become theirs), each in their order. A pack's *val reads the map of *s, which
 * must outlive it. *digest as cnb_dataset_holdout's. Returns 0, or CNB_ENOMEM with *s
 * unchanged.
 */
int cnb_imageset_holdout(cnb_imageset *s, int count, uint64_t seed, cnb_imageset *val,
                         uint32_t *digest);

/* Free everything and zero *s; safe on a zeroed struct. */
void cnb_imageset_free(cnb_imageset *s);

/* What one thread needs to read samples. */
typedef struct cnb_imagereader {
    cnb_imagefile file;
    float *a, *b; /* the decoded image as floats, and the resized one */
    size_t a_cap, b_cap;
} cnb_imagereader;

void cnb_imagereader_free(cnb_imagereader *rd);

/* The smallest size an image can have after rs: for checking a crop against it. */
void cnb_resize_min(const cnb_resize_spec *rs, int *h, int *w);

/*
 * Sample i of s as c channels (1 or 3), resized by rs, float CHW in [0, 1]: *img points
 * into rd (valid until its next read), *h, *w its size. A pack gives its stored images
 * (made with the same rs and c: checked when the feed is set up) and checks each one's
 * CRC-32. Returns 0, or CNB_EIO / CNB_EINVAL / CNB_ENOMEM with a message naming the file.
 */
int cnb_imageset_read(const cnb_imageset *s, int i, const cnb_resize_spec *rs, int c,
                      cnb_imagereader *rd, const float **img, int *h, int *w, char *err,
                      size_t errlen);

/*
 * The statistics of min(sample, n) samples of s chosen by a partial Fisher-Yates shuffle
 * from the stream (seed, CNB_STREAM_STATS), each read as cnb_imageset_read gives it: per
 * channel mean and population std, and the c x c covariance of all their pixels
 * (row-major), accumulated in double. Unreadable samples are skipped when skip_bad (each
 * named by a warning), else the first is an error. *used gets how many were read.
 */
int cnb_imageset_stats(const cnb_imageset *s, const cnb_resize_spec *rs, int c, int sample,
                       uint64_t seed, int skip_bad, double *mean, double *std, double *cov,
                       int *used, char *err, size_t errlen);

/* ---- the packed cache (docs/image-pack.md) ------------------------------------------ */

#define CNB_PACK_MAGIC "CNBPACK1"

/*
 * Decode every sample of s with rs (mode exact or center: every image the same size) and
 * c, and write them atomically to path with their labels, an index, the class names and
 * CRC-32s. A sample that cannot be read is left out (skip_bad, said by a warning) or is an
 * error. *written gets the samples written.
 */
int cnb_imageset_pack_write(const cnb_imageset *s, const char *path, const cnb_resize_spec *rs,
                            int c, int skip_bad, int *written, char *err, size_t errlen);

/* Map a pack and check its header, index and names (each image's CRC is checked when it
 * is read). */
int cnb_imageset_pack_open(cnb_imageset *s, const char *path, char *err, size_t errlen);

#endif
