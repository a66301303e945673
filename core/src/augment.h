/*
 * augment.h - the data processing steps of the training data path: bilinear resize, crop
 * from a zero-padded image, horizontal flip, PCA lighting ("fancy PCA", per image or from
 * the training set's covariance), and the per-batch pipeline the training loop calls.
 *
 * What it is: functions on float images in CHW order (c channels, each h x w, row-major),
 * no I/O; every random draw comes from a struct cnb_rng the caller seeds, and the pipeline
 * seeds one stream per (seed, epoch, sample index), so the same seed gives the same images
 * whatever the batch composition. Only cnb_augment_init allocates.
 *
 * What it is not: no loading or normalisation (dataset.h), no colour-space conversion,
 * rotation or scale jitter; lighting works on 1 to CNB_AUGMENT_MAX_C channels. One
 * cnb_augment is not for concurrent calls (its scratch is shared): give each thread its own.
 */
#ifndef CNB_AUGMENT_H
#define CNB_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "rng.h"

#define CNB_AUGMENT_MAX_C 4       /* lighting: channels at most             */
#define CNB_AUGMENT_MAX_SIDE 16384 /* resize and crop: height, width at most */

enum { CNB_LIGHTING_NONE = 0, CNB_LIGHTING_IMAGE = 1, CNB_LIGHTING_DATASET = 2 };

/* ---- single-image steps ---------------------------------------------------------------
 * Functions with err return 0, or CNB_EINVAL with a one-line message in err (when err is
 * not NULL) and dst untouched. src and dst must not overlap unless said otherwise. */

/*
 * Bilinear resize of src (c, h, w) to dst (c, oh, ow) with half-pixel centres, the
 * convention of OpenCV INTER_LINEAR and PyTorch align_corners=False: output pixel x reads
 * source position (x + 0.5) * w / ow - 0.5, clamped to [0, w - 1]. A constant image stays
 * constant exactly. oh or ow below 1 is an error.
 */
int cnb_resize_bilinear(const float *src, int c, int h, int w, float *dst, int oh, int ow,
                        char *err, size_t errlen);

/*
 * Crop (ch, cw) at offset (y0, x0) of src (c, h, w) zero-padded by pad on every side:
 * dst (c, ch, cw) pixel (y, x) is src pixel (y0 + y - pad, x0 + x - pad), or 0 outside.
 * Offsets range over 0..h + 2*pad - ch and 0..w + 2*pad - cw. A crop larger than the
 * padded image is an error naming the sizes.
 */
int cnb_crop(const float *src, int c, int h, int w, int pad, int y0, int x0, int ch, int cw,
             float *dst, char *err, size_t errlen);

/* The same at an offset drawn uniformly (cnb_rng_below: y0 first, then x0); *y0, *x0 get
 * the offset when not NULL. */
int cnb_crop_random(const float *src, int c, int h, int w, int pad, int ch, int cw,
                    struct cnb_rng *r, float *dst, int *y0, int *x0, char *err, size_t errlen);

/* The same at the centre of the padded image: offset ((h + 2*pad - ch) / 2, ...), rounded
 * down. With ch = h the original image comes back whatever the padding (evaluation). */
int cnb_crop_center(const float *src, int c, int h, int w, int pad, int ch, int cw, float *dst,
                    char *err, size_t errlen);

/* Mirror every row of (c, h, w): dst x = src w-1-x. dst == src flips in place. */
void cnb_flip_h(const float *src, int c, int h, int w, float *dst);

/* ---- PCA lighting ----------------------------------------------------------------------
 * Eigen data of a c x c covariance: vecs row-major with column k the eigenvector of vals[k]
 * (vecs[i * c + k] is component i of eigenvector k), eigenvalues ascending, each
 * eigenvector of unit length with its largest-magnitude component positive (the first of
 * those within 1e-6 of the largest), so results do not depend on the solver's signs. */
typedef struct cnb_pca {
    int c;
    float vecs[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C];
    float vals[CNB_AUGMENT_MAX_C];
} cnb_pca;

/* delta = V * (alpha .* lambda): delta[i] = sum_k vecs[i * c + k] * alpha[k] * vals[k]. */
void cnb_pca_delta(int c, const float *vecs, const float *vals, const float *alpha,
                   float *delta);

/*
 * The article's steps 1-4 on one image (c, h, w), c = 1..CNB_AUGMENT_MAX_C: z-score each
 * channel (population std; a channel with zero std is only centred, so it is all zeros),
 * take the c x c covariance of the (h*w, c) matrix (divided by h*w) and eigen-decompose it
 * (GSL's gsl_eigen_symmv). The z-scored matrix is not materialised: its covariance is that
 * of the image divided by std_i * std_j, accumulated in double. Non-finite pixels are an
 * error.
 */
int cnb_pca_image(cnb_pca *p, const float *img, int c, int h, int w, char *err,
                  size_t errlen);

/*
 * AlexNet's way: the c x c covariance of every pixel of every image of d (population,
 * accumulated in double, two passes) and its eigen data. A singular covariance (smallest
 * eigenvalue <= 1e-6 times the largest: a constant channel, grey copied to 3 channels) is
 * an error saying so.
 */
int cnb_pca_dataset(cnb_pca *p, const cnb_dataset *d, char *err, size_t errlen);

/*
 * Steps 5-6: alpha[k] = sigma * cnb_rng_normal(r) for k = 0..c-1 in that order, delta as
 * cnb_pca_delta, delta[i] added to every pixel of channel i of img (c = p->c, h, w).
 * delta (p->c values) gets the shift when not NULL.
 */
void cnb_lighting_apply(float *img, int h, int w, const cnb_pca *p, float sigma,
                        struct cnb_rng *r, float *delta);

/* All six steps on one image: cnb_pca_image, then cnb_lighting_apply to img as given. */
int cnb_lighting_image(float *img, int c, int h, int w, float sigma, struct cnb_rng *r,
                       float *delta, char *err, size_t errlen);

/* ---- the pipeline ------------------------------------------------------------------- */

typedef struct cnb_augment_cfg {
    int resize_h, resize_w;       /* 0: no resize                          */
    int crop_h, crop_w, crop_pad; /* 0: no crop                            */
    int flip;                     /* 1: horizontal flip with p = 0.5       */
    int lighting;                 /* CNB_LIGHTING_NONE / _IMAGE / _DATASET */
    float lighting_sigma;         /* AlexNet: 0.1                          */
    int normalize;                /* 1: (x - mean) / std per channel, last
                                     (image files; in-memory data are
                                     normalised whole, dataset.h)          */
    float mean[CNB_AUGMENT_MAX_C], std[CNB_AUGMENT_MAX_C]; /* std 1: mean only */
} cnb_augment_cfg;

typedef struct cnb_augment {
    cnb_augment_cfg cfg;
    int c, h, w;     /* the images it was set up for                  */
    int rh, rw;      /* after the resize (h, w without one)           */
    int oh, ow;      /* what the network sees                         */
    cnb_pca pca;     /* CNB_LIGHTING_DATASET: the training set's      */
    float *scratch;  /* one resized image, when resize and crop are on */
    char *err;       /* the message of the last failed batch          */
} cnb_augment;

/*
 * Check every setting against the training data's c, h, w (messages name the setting:
 * "data.crop = 40x40 is larger than the 28x28 image padded by 2 (32x32); ..."), compute
 * the training set's eigen data for CNB_LIGHTING_DATASET (give train as the batches will
 * see it, after any normalisation), and allocate the scratch. Returns 0, CNB_EINVAL or
 * CNB_ENOMEM; on failure *a owns nothing. Release with cnb_augment_free.
 */
int cnb_augment_init(cnb_augment *a, const cnb_augment_cfg *cfg, const cnb_dataset *train,
                     char *err, size_t errlen);

/*
 * The same for images that come one at a time at varying sizes (image files, imageset.h):
 * c channels, each image at least h x w (the smallest the reader's resize gives: the crop
 * is checked against it). cfg->resize_h must be 0 (the reader resizes) and, for
 * CNB_LIGHTING_DATASET, pca gives the eigen data (cnb_pca_from_cov).
 */
int cnb_augment_init_images(cnb_augment *a, const cnb_augment_cfg *cfg, int c, int h, int w,
                            const cnb_pca *pca, char *err, size_t errlen);

/*
 * One image src (c, h, w), h and w at least those given to init (any size with a crop;
 * exactly them without one), to dst (c, oh, ow): train = 1: random crop -> flip -> lighting
 * -> normalise, drawing from r in the order of cnb_augment_batch; train = 0: centre crop ->
 * normalise, no draws. Thread-safe on one cnb_augment (it writes only dst and err).
 */
int cnb_augment_sample(const cnb_augment *a, const float *src, int h, int w, int train,
                       struct cnb_rng *r, float *dst, char *err, size_t errlen);

/*
 * The AlexNet paper's evaluation: CNB_TEN_CROPS crops of src to dst (10 images of the out
 * shape): the centre, top-left, top-right, bottom-left, bottom-right, then the same five
 * mirrored; each normalised. Needs a crop.
 */
#define CNB_TEN_CROPS 10
int cnb_augment_ten_crop(const cnb_augment *a, const float *src, int h, int w, float *dst,
                         char *err, size_t errlen);

/*
 * Eigen data (as cnb_pca_dataset) of a c x c covariance given row-major, eigenvalues then
 * multiplied by val_scale. A singular covariance is an error, as for cnb_pca_dataset.
 */
int cnb_pca_from_cov(cnb_pca *p, const double *cov, int c, double val_scale, char *err,
                     size_t errlen);

/* The shape of each output sample: what the network's input must be. */
void cnb_augment_out_shape(const cnb_augment *a, int *c, int *h, int *w);

/* The stream of one sample: cnb_rng_seed(r, seed ^ mix(epoch, index), CNB_STREAM_AUGMENT),
 * mix a splitmix64 hash, so every (seed, epoch, dataset index) has its own draws. */
void cnb_augment_sample_rng(struct cnb_rng *r, uint64_t seed, uint64_t epoch, uint32_t index);

/*
 * Write samples idx[0..count) of d, each of the out shape, to out (count * c*oh*ow floats).
 * train = 1: resize -> random crop (padded) -> flip with p = 0.5 -> lighting, drawing from
 * the sample's stream in that order (crop y0, x0; one uniform for the flip; c normals).
 * train = 0: resize -> centre crop, no draws. Nothing is allocated.
 *
 * Returns 0, or CNB_EINVAL (d not of the shape given to init, an index not below d->n,
 * lighting on an image with non-finite pixels), with cnb_augment_error(a) saying why.
 */
int cnb_augment_batch(const cnb_augment *a, const cnb_dataset *d, const uint32_t *idx,
                      int count, int train, uint64_t seed, uint64_t epoch, float *out);

/* The one-line message of the last failed cnb_augment_batch ("" when none). */
const char *cnb_augment_error(const cnb_augment *a);

/* Free what cnb_augment_init allocated and zero *a. Safe on a zeroed struct and on NULL. */
void cnb_augment_free(cnb_augment *a);

#endif
