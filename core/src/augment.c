/*
 * augment.c - resize, crop, flip, PCA lighting and the per-batch pipeline; see augment.h.
 *
 * The eigen-decompositions are GSL's gsl_eigen_symmv, in double: the matrices are at most
 * CNB_AUGMENT_MAX_C x CNB_AUGMENT_MAX_C, so precision costs nothing.
 *
 * Not here: threads (a batch of AlexNet-sized images takes milliseconds; the caller may
 * split a batch over threads, each with its own cnb_augment, and get the same result).
 */
#include "augment.h"

#include <gsl/gsl_eigen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnbench/plugin.h"
#include "errors.h"

#define RESIZE_TILE 256       /* output columns whose coefficients are computed at once */
#define SINGULAR_RATIO 1e-6   /* dataset lighting: smallest / largest eigenvalue at least */
#define SIGN_TIE 1e-6         /* eigenvector components this close count as equally large */
#define ERR_LEN 256

static int check_image(const char *what, int c, int h, int w, char *err, size_t errlen)
{
    if (c < 1 || h < 1 || w < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: image of %d x %d x %d (c x h x w); every "
                        "dimension must be at least 1", what, c, h, w);
    return 0;
}

/* ---- resize ------------------------------------------------------------------------- */

/* Source pixels and weight of output position o of out along an axis of in pixels. */
static void resize_coord(int o, int in, int out, int *i0, int *i1, float *f)
{
    double s = ((double)o + 0.5) * in / out - 0.5;
    if (s < 0.0)
        s = 0.0;
    int i = (int)s;
    if (i >= in - 1) {
        *i0 = *i1 = in - 1;
        *f = 0.0f;
        return;
    }
    *i0 = i;
    *i1 = i + 1;
    *f = (float)(s - i);
}

/* Lerps (a + f * (b - a)), not weighted sums: equal neighbours give themselves exactly. */
static void resize_tile(const float *src, int c, int h, int w, float *dst, int oh, int ow,
                        int xt, int nx, const int *x0, const int *x1, const float *fx)
{
    for (int ch = 0; ch < c; ch++) {
        const float *plane = src + (size_t)ch * h * w;
        for (int y = 0; y < oh; y++) {
            int y0, y1;
            float fy;
            resize_coord(y, h, oh, &y0, &y1, &fy);
            const float *r0 = plane + (size_t)y0 * w, *r1 = plane + (size_t)y1 * w;
            float *o = dst + ((size_t)ch * oh + y) * ow + xt;
            for (int j = 0; j < nx; j++) {
                float top = r0[x0[j]] + fx[j] * (r0[x1[j]] - r0[x0[j]]);
                float bot = r1[x0[j]] + fx[j] * (r1[x1[j]] - r1[x0[j]]);
                o[j] = top + fy * (bot - top);
            }
        }
    }
}

int cnb_resize_bilinear(const float *src, int c, int h, int w, float *dst, int oh, int ow,
                        char *err, size_t errlen)
{
    if (check_image("resize", c, h, w, err, errlen))
        return CNB_EINVAL;
    if (oh < 1 || ow < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "resize: output size %dx%d; give a height and "
                        "width of at least 1", oh, ow);
    if (oh == h && ow == w) { /* the half-pixel mapping is the identity */
        memcpy(dst, src, (size_t)c * h * w * sizeof *dst);
        return 0;
    }
    int x0[RESIZE_TILE], x1[RESIZE_TILE];
    float fx[RESIZE_TILE];
    for (int xt = 0; xt < ow; xt += RESIZE_TILE) {
        int nx = ow - xt < RESIZE_TILE ? ow - xt : RESIZE_TILE;
        for (int j = 0; j < nx; j++)
            resize_coord(xt + j, w, ow, &x0[j], &x1[j], &fx[j]);
        resize_tile(src, c, h, w, dst, oh, ow, xt, nx, x0, x1, fx);
    }
    return 0;
}

/* ---- crop and flip ------------------------------------------------------------------ */

static int check_crop(int c, int h, int w, int pad, int ch, int cw, char *err, size_t errlen)
{
    if (check_image("crop", c, h, w, err, errlen))
        return CNB_EINVAL;
    if (pad < 0 || pad > CNB_AUGMENT_MAX_SIDE)
        return cnb_fail(CNB_EINVAL, err, errlen, "crop: padding %d; give 0 to %d", pad,
                        CNB_AUGMENT_MAX_SIDE);
    if (ch < 1 || cw < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "crop: size %dx%d; give a height and width of "
                        "at least 1", ch, cw);
    long long ph = h + 2LL * pad, pw = w + 2LL * pad;
    if (ch > ph || cw > pw)
        return cnb_fail(CNB_EINVAL, err, errlen, "crop: %dx%d is larger than the %dx%d image "
                        "padded by %d (%lldx%lld)", ch, cw, h, w, pad, ph, pw);
    return 0;
}

/* One output row: zeros left of the image, the image's columns, zeros right of it. */
static void crop_row(const float *row, int w, int sx0, int cw, float *o)
{
    int left = sx0 < 0 ? (-sx0 < cw ? -sx0 : cw) : 0;
    int end = w - sx0 < cw ? w - sx0 : cw; /* output columns before the right padding */
    if (end < left)
        end = left;
    memset(o, 0, (size_t)left * sizeof *o);
    if (end > left)
        memcpy(o + left, row + sx0 + left, (size_t)(end - left) * sizeof *o);
    memset(o + end, 0, (size_t)(cw - end) * sizeof *o);
}

int cnb_crop(const float *src, int c, int h, int w, int pad, int y0, int x0, int ch, int cw,
             float *dst, char *err, size_t errlen)
{
    if (check_crop(c, h, w, pad, ch, cw, err, errlen))
        return CNB_EINVAL;
    long long ymax = h + 2LL * pad - ch, xmax = w + 2LL * pad - cw;
    if (y0 < 0 || y0 > ymax || x0 < 0 || x0 > xmax)
        return cnb_fail(CNB_EINVAL, err, errlen, "crop: offset (%d, %d) of a %dx%d crop is "
                        "outside the %dx%d image padded by %d; give y in 0..%lld and x in "
                        "0..%lld", y0, x0, ch, cw, h, w, pad, ymax, xmax);
    for (int k = 0; k < c; k++) {
        const float *plane = src + (size_t)k * h * w;
        for (int y = 0; y < ch; y++) {
            int sy = y0 + y - pad;
            float *o = dst + ((size_t)k * ch + y) * cw;
            if (sy < 0 || sy >= h)
                memset(o, 0, (size_t)cw * sizeof *o);
            else
                crop_row(plane + (size_t)sy * w, w, x0 - pad, cw, o);
        }
    }
    return 0;
}

int cnb_crop_random(const float *src, int c, int h, int w, int pad, int ch, int cw,
                    struct cnb_rng *r, float *dst, int *y0, int *x0, char *err, size_t errlen)
{
    if (check_crop(c, h, w, pad, ch, cw, err, errlen))
        return CNB_EINVAL;
    int y = (int)cnb_rng_below(r, (uint32_t)(h + 2LL * pad - ch + 1));
    int x = (int)cnb_rng_below(r, (uint32_t)(w + 2LL * pad - cw + 1));
    if (y0)
        *y0 = y;
    if (x0)
        *x0 = x;
    return cnb_crop(src, c, h, w, pad, y, x, ch, cw, dst, err, errlen);
}

int cnb_crop_center(const float *src, int c, int h, int w, int pad, int ch, int cw, float *dst,
                    char *err, size_t errlen)
{
    if (check_crop(c, h, w, pad, ch, cw, err, errlen))
        return CNB_EINVAL;
    return cnb_crop(src, c, h, w, pad, (int)((h + 2LL * pad - ch) / 2),
                    (int)((w + 2LL * pad - cw) / 2), ch, cw, dst, err, errlen);
}

void cnb_flip_h(const float *src, int c, int h, int w, float *dst)
{
    size_t rows = c > 0 && h > 0 ? (size_t)c * h : 0;
    for (size_t r = 0; r < rows && w > 0; r++) {
        const float *s = src + r * w;
        float *d = dst + r * w;
        if (s == d) {
            for (int i = 0, j = w - 1; i < j; i++, j--) {
                float t = d[i];
                d[i] = d[j], d[j] = t;
            }
        } else {
            for (int j = 0; j < w; j++)
                d[j] = s[w - 1 - j];
        }
    }
}

/* ---- PCA lighting ------------------------------------------------------------------- */

/* Eigen data of the symmetric n x n matrix a (row-major, n <= CNB_AUGMENT_MAX_C) into p,
 * with the order and sign convention of augment.h. GSL's default error handler aborts;
 * with sizes right by construction, its only possible error is the workspace's allocation. */
static int sym_eigen(const double *a, int n, cnb_pca *p, const char *what, char *err,
                     size_t errlen)
{
    double m[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C], vecs[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C];
    double vals[CNB_AUGMENT_MAX_C];
    for (int k = 0; k < n * n; k++) {
        if (!isfinite(a[k]))
            return cnb_fail(CNB_EINVAL, err, errlen, "%s: the covariance is not finite (NaN or "
                            "infinite pixels); check the data", what);
        m[k] = a[k]; /* gsl_eigen_symmv overwrites its input */
    }
    gsl_eigen_symmv_workspace *work = gsl_eigen_symmv_alloc((size_t)n);
    if (!work)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory", what);
    gsl_matrix_view mv = gsl_matrix_view_array(m, (size_t)n, (size_t)n);
    gsl_matrix_view vv = gsl_matrix_view_array(vecs, (size_t)n, (size_t)n);
    gsl_vector_view lv = gsl_vector_view_array(vals, (size_t)n);
    gsl_eigen_symmv(&mv.matrix, &lv.vector, &vv.matrix, work);
    gsl_eigen_symmv_free(work);
    gsl_eigen_symmv_sort(&lv.vector, &vv.matrix, GSL_EIGEN_SORT_VAL_ASC);
    p->c = n;
    for (int k = 0; k < n; k++) { /* eigenvector k is column k of vecs (row-major) */
        double most = 0.0;
        int big = 0;
        for (int i = 0; i < n; i++)
            most = fabs(vecs[i * n + k]) > most ? fabs(vecs[i * n + k]) : most;
        while (fabs(vecs[big * n + k]) < most - SIGN_TIE) /* the first of the largest */
            big++;
        double sign = vecs[big * n + k] < 0.0 ? -1.0 : 1.0;
        for (int i = 0; i < n; i++)
            p->vecs[i * n + k] = (float)(sign * vecs[i * n + k]);
        p->vals[k] = (float)vals[k];
    }
    return 0;
}

void cnb_pca_delta(int c, const float *vecs, const float *vals, const float *alpha,
                   float *delta)
{
    for (int i = 0; i < c; i++) {
        double s = 0.0;
        for (int k = 0; k < c; k++)
            s += (double)vecs[i * c + k] * alpha[k] * vals[k];
        delta[i] = (float)s;
    }
}

/* Sums of each of the c planes of n pixels of img, added to sum[] (in double). */
static void channel_means(const float *img, int c, size_t n, double *sum)
{
    for (int i = 0; i < c; i++) {
        const float *x = img + (size_t)i * n;
        double s = 0.0;
        for (size_t k = 0; k < n; k++)
            s += x[k];
        sum[i] += s;
    }
}

/* Cross products of the centred planes, added to the upper triangle of cross[] (c x c). */
static void channel_cross(const float *img, int c, size_t n, const double *mean, double *cross)
{
    for (int i = 0; i < c; i++) {
        const float *xi = img + (size_t)i * n;
        for (int j = i; j < c; j++) {
            const float *xj = img + (size_t)j * n;
            double s = 0.0;
            for (size_t k = 0; k < n; k++)
                s += ((double)xi[k] - mean[i]) * ((double)xj[k] - mean[j]);
            cross[i * c + j] += s;
        }
    }
}

static void symmetrize(double *a, int c)
{
    for (int i = 0; i < c; i++)
        for (int j = 0; j < i; j++)
            a[i * c + j] = a[j * c + i];
}

/* The sums of d = x - shift and of the products d_i d_j (i <= j, into ss row-major c x c)
 * over the c planes of n pixels, in double. */
static void image_sums(const float *img, int c, size_t n, const float *shift, double *s,
                       double *ss)
{
    for (size_t k = 0; k < n; k++) {
        double d[CNB_AUGMENT_MAX_C];
        for (int i = 0; i < c; i++)
            d[i] = (double)img[(size_t)i * n + k] - shift[i];
        for (int i = 0; i < c; i++) {
            s[i] += d[i];
            for (int j = i; j < c; j++)
                ss[i * c + j] += d[i] * d[j];
        }
    }
}

/* The same for c = 1 and c = 3 with every sum in its own variable: the general loop keeps
 * them in memory and runs 7x slower (20 ms against 2.7 for 32 images of 3 x 227 x 227). */
static void grey_sums(const float *img, size_t n, float shift, double *s, double *ss)
{
    double s0 = 0, s00 = 0;
    for (size_t k = 0; k < n; k++) {
        double x = (double)img[k] - shift;
        s0 += x, s00 += x * x;
    }
    *s = s0, *ss = s00;
}

static void rgb_sums(const float *img, size_t n, const float *shift, double *s, double *ss)
{
    const float *r = img, *g = img + n, *b = img + 2 * n;
    double s0 = 0, s1 = 0, s2 = 0, s00 = 0, s01 = 0, s02 = 0, s11 = 0, s12 = 0, s22 = 0;
    for (size_t k = 0; k < n; k++) {
        double x = (double)r[k] - shift[0], y = (double)g[k] - shift[1];
        double z = (double)b[k] - shift[2];
        s0 += x, s1 += y, s2 += z;
        s00 += x * x, s01 += x * y, s02 += x * z;
        s11 += y * y, s12 += y * z, s22 += z * z;
    }
    s[0] = s0, s[1] = s1, s[2] = s2;
    ss[0] = s00, ss[1] = s01, ss[2] = s02, ss[4] = s11, ss[5] = s12, ss[8] = s22;
}

/*
 * The population covariance (c x c, full) of the c planes of n pixels of one image, in one
 * pass. Shifting by the first pixel keeps the cancellation small and makes a constant
 * channel's row exactly zero.
 */
static void image_cov(const float *img, int c, size_t n, double *cov)
{
    double s[CNB_AUGMENT_MAX_C] = {0}, ss[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C] = {0};
    float shift[CNB_AUGMENT_MAX_C];
    for (int i = 0; i < c; i++)
        shift[i] = img[(size_t)i * n];
    if (c == 1)
        grey_sums(img, n, shift[0], s, ss);
    else if (c == 3)
        rgb_sums(img, n, shift, s, ss);
    else
        image_sums(img, c, n, shift, s, ss);
    for (int i = 0; i < c; i++)
        for (int j = i; j < c; j++)
            cov[i * c + j] = cov[j * c + i] =
                ss[i * c + j] / (double)n - (s[i] / (double)n) * (s[j] / (double)n);
}

int cnb_pca_image(cnb_pca *p, const float *img, int c, int h, int w, char *err,
                  size_t errlen)
{
    if (check_image("lighting", c, h, w, err, errlen))
        return CNB_EINVAL;
    if (c > CNB_AUGMENT_MAX_C)
        return cnb_fail(CNB_EINVAL, err, errlen, "lighting: %d channels; it works on 1 to %d", c,
                        CNB_AUGMENT_MAX_C);
    size_t n = (size_t)h * w;
    double cov[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C], inv[CNB_AUGMENT_MAX_C];
    image_cov(img, c, n, cov);
    for (int i = 0; i < c; i++) {
        double sd = sqrt(cov[i * c + i]);
        inv[i] = sd > 0.0 ? 1.0 / sd : 1.0; /* zero std: only centred */
    }
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++)
            cov[i * c + j] *= inv[i] * inv[j];
    return sym_eigen(cov, c, p, "lighting (per image)", err, errlen);
}

int cnb_pca_dataset(cnb_pca *p, const cnb_dataset *d, char *err, size_t errlen)
{
    if (!d || d->n < 1 || !d->images)
        return cnb_fail(CNB_EINVAL, err, errlen, "lighting (dataset): the training set is "
                        "empty; load it first");
    if (check_image("lighting (dataset)", d->c, d->h, d->w, err, errlen))
        return CNB_EINVAL;
    int c = d->c;
    if (c > CNB_AUGMENT_MAX_C)
        return cnb_fail(CNB_EINVAL, err, errlen, "lighting (dataset): %d channels; it works on "
                        "1 to %d", c, CNB_AUGMENT_MAX_C);
    size_t n = (size_t)d->h * d->w, per = (size_t)c * n;
    double count = (double)n * d->n;
    double mean[CNB_AUGMENT_MAX_C] = {0}, cov[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C] = {0};
    for (int s = 0; s < d->n; s++)
        channel_means(d->images + (size_t)s * per, c, n, mean);
    for (int i = 0; i < c; i++)
        mean[i] /= count;
    for (int s = 0; s < d->n; s++)
        channel_cross(d->images + (size_t)s * per, c, n, mean, cov);
    for (int k = 0; k < c * c; k++)
        cov[k] /= count;
    symmetrize(cov, c);
    return cnb_pca_from_cov(p, cov, c, 1.0, err, errlen);
}

int cnb_pca_from_cov(cnb_pca *p, const double *cov, int c, double val_scale, char *err,
                     size_t errlen)
{
    if (c < 1 || c > CNB_AUGMENT_MAX_C)
        return cnb_fail(CNB_EINVAL, err, errlen, "lighting (dataset): %d channels; it works on "
                        "1 to %d", c, CNB_AUGMENT_MAX_C);
    int rc = sym_eigen(cov, c, p, "lighting (dataset)", err, errlen);
    if (rc)
        return rc;
    double lo = p->vals[0], hi = p->vals[c - 1];
    if (!(hi > 0.0) || lo <= SINGULAR_RATIO * hi)
        return cnb_fail(CNB_EINVAL, err, errlen, "the %d x %d covariance of the training pixels "
                        "is singular (eigenvalues %.3g to %.3g: a constant channel, or one "
                        "channel copied to the others, as grey images made RGB); use lighting = "
                        "none or lighting = image", c, c, lo, hi);
    for (int k = 0; k < c; k++)
        p->vals[k] = (float)(p->vals[k] * val_scale);
    return 0;
}

void cnb_lighting_apply(float *img, int h, int w, const cnb_pca *p, float sigma,
                        struct cnb_rng *r, float *delta)
{
    float alpha[CNB_AUGMENT_MAX_C], shift[CNB_AUGMENT_MAX_C];
    int c = p->c;
    size_t n = h > 0 && w > 0 ? (size_t)h * w : 0;
    for (int k = 0; k < c; k++)
        alpha[k] = sigma * cnb_rng_normal(r);
    cnb_pca_delta(c, p->vecs, p->vals, alpha, shift);
    for (int i = 0; i < c; i++) {
        float *x = img + (size_t)i * n;
        for (size_t k = 0; k < n; k++)
            x[k] += shift[i];
    }
    if (delta)
        memcpy(delta, shift, (size_t)c * sizeof *delta);
}

int cnb_lighting_image(float *img, int c, int h, int w, float sigma, struct cnb_rng *r,
                       float *delta, char *err, size_t errlen)
{
    cnb_pca p;
    if (cnb_pca_image(&p, img, c, h, w, err, errlen))
        return CNB_EINVAL;
    cnb_lighting_apply(img, h, w, &p, sigma, r, delta);
    return 0;
}

/* ---- the pipeline ------------------------------------------------------------------- */

/* A size setting: both 0 (off) or both 1..CNB_AUGMENT_MAX_SIDE. */
static int check_size(const char *key, int sh, int sw, char *err, size_t errlen)
{
    if (sh == 0 && sw == 0)
        return 0;
    if (sh < 1 || sw < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s = %dx%d: give a height and width of at "
                        "least 1 (or 0 for none)", key, sh, sw);
    if (sh > CNB_AUGMENT_MAX_SIDE || sw > CNB_AUGMENT_MAX_SIDE)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s = %dx%d: at most %d on a side; give a "
                        "smaller size", key, sh, sw, CNB_AUGMENT_MAX_SIDE);
    return 0;
}

static int check_cfg(const cnb_augment *a, char *err, size_t errlen)
{
    const cnb_augment_cfg *g = &a->cfg;
    if (check_size("data.resize", g->resize_h, g->resize_w, err, errlen) ||
        check_size("data.crop", g->crop_h, g->crop_w, err, errlen))
        return CNB_EINVAL;
    if (g->crop_pad < 0 || g->crop_pad > CNB_AUGMENT_MAX_SIDE)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.crop_pad = %d: give 0 to %d", g->crop_pad,
                        CNB_AUGMENT_MAX_SIDE);
    if (g->crop_pad > 0 && g->crop_h == 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.crop_pad = %d needs a crop: set "
                        "data.crop (e.g. to %dx%d, the image size)", g->crop_pad, a->rh, a->rw);
    long long ph = a->rh + 2LL * g->crop_pad, pw = a->rw + 2LL * g->crop_pad;
    if (g->crop_h > ph || g->crop_w > pw)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.crop = %dx%d is larger than the %dx%d "
                        "image%s padded by %d (%lldx%lld); give a crop of at most %lldx%lld or "
                        "a larger data.crop_pad", g->crop_h, g->crop_w, a->rh, a->rw,
                        g->resize_h ? " (after data.resize)" : "", g->crop_pad, ph, pw, ph, pw);
    if (g->flip != 0 && g->flip != 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.flip = %d: give 0 (off) or 1 (on)", g->flip);
    if (g->lighting < CNB_LIGHTING_NONE || g->lighting > CNB_LIGHTING_DATASET)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.lighting = %d: give none, image or "
                        "dataset", g->lighting);
    if (!isfinite(g->lighting_sigma) || g->lighting_sigma < 0.0f)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.lighting_sigma = %g: give 0 or more "
                        "(AlexNet: 0.1)", (double)g->lighting_sigma);
    if (g->lighting != CNB_LIGHTING_NONE && a->c > CNB_AUGMENT_MAX_C)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.lighting = %s works on 1 to %d channels, "
                        "the data have %d; use lighting = none",
                        g->lighting == CNB_LIGHTING_IMAGE ? "image" : "dataset", CNB_AUGMENT_MAX_C,
                        a->c);
    return 0;
}

int cnb_augment_init(cnb_augment *a, const cnb_augment_cfg *cfg, const cnb_dataset *train,
                     char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (err && errlen)
        err[0] = '\0';
    if (!cfg || !train)
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: no settings or no training data given");
    if (train->c < 1 || train->h < 1 || train->w < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: the training data have no image "
                        "shape (%d x %d x %d, c x h x w); load them first", train->c, train->h,
                        train->w);
    a->cfg = *cfg;
    a->c = train->c, a->h = train->h, a->w = train->w;
    a->rh = cfg->resize_h ? cfg->resize_h : a->h;
    a->rw = cfg->resize_w ? cfg->resize_w : a->w;
    if (check_cfg(a, err, errlen)) {
        memset(a, 0, sizeof *a);
        return CNB_EINVAL;
    }
    a->oh = cfg->crop_h ? cfg->crop_h : a->rh;
    a->ow = cfg->crop_w ? cfg->crop_w : a->rw;
    if (cfg->lighting == CNB_LIGHTING_DATASET) {
        char why[ERR_LEN];
        if (cnb_pca_dataset(&a->pca, train, why, sizeof why)) {
            memset(a, 0, sizeof *a);
            return cnb_fail(CNB_EINVAL, err, errlen, "data.lighting = dataset: %s", why);
        }
    }
    a->err = calloc(ERR_LEN, 1);
    if (cfg->resize_h && cfg->crop_h)
        a->scratch = malloc((size_t)a->c * a->rh * a->rw * sizeof *a->scratch);
    if (!a->err || (cfg->resize_h && cfg->crop_h && !a->scratch)) {
        size_t mb = ((size_t)a->c * a->rh * a->rw * sizeof(float) >> 20) + 1;
        cnb_augment_free(a);
        cnb_fail(CNB_EINVAL, err, errlen, "augment: cannot allocate %zu MB for one %dx%d image; "
                 "give a smaller data.resize", mb, cfg->resize_h, cfg->resize_w);
        return CNB_ENOMEM;
    }
    return 0;
}

void cnb_augment_out_shape(const cnb_augment *a, int *c, int *h, int *w)
{
    *c = a->c;
    *h = a->oh;
    *w = a->ow;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

void cnb_augment_sample_rng(struct cnb_rng *r, uint64_t seed, uint64_t epoch, uint32_t index)
{
    cnb_rng_seed(r, seed ^ splitmix64(splitmix64(epoch) ^ index), CNB_STREAM_AUGMENT);
}

/* One sample: src (c, h, w) -> dst (c, oh, ow). Sizes were checked by init. */
static int augment_one(const cnb_augment *a, const float *src, int train, struct cnb_rng *r,
                       float *dst)
{
    const cnb_augment_cfg *g = &a->cfg;
    const float *img = src;
    char *err = a->err;
    if (g->resize_h) {
        float *to = g->crop_h ? a->scratch : dst;
        if (cnb_resize_bilinear(src, a->c, a->h, a->w, to, a->rh, a->rw, err, ERR_LEN))
            return CNB_EINVAL;
        img = to;
    }
    if (g->crop_h) {
        int rc = train ? cnb_crop_random(img, a->c, a->rh, a->rw, g->crop_pad, a->oh, a->ow, r,
                                         dst, NULL, NULL, err, ERR_LEN)
                       : cnb_crop_center(img, a->c, a->rh, a->rw, g->crop_pad, a->oh, a->ow,
                                         dst, err, ERR_LEN);
        if (rc)
            return rc;
    } else if (!g->resize_h) {
        memcpy(dst, src, (size_t)a->c * a->h * a->w * sizeof *dst);
    }
    if (!train)
        return 0;
    if (g->flip && cnb_rng_uniform(r) < 0.5f)
        cnb_flip_h(dst, a->c, a->oh, a->ow, dst);
    if (g->lighting == CNB_LIGHTING_IMAGE && g->lighting_sigma > 0.0f)
        return cnb_lighting_image(dst, a->c, a->oh, a->ow, g->lighting_sigma, r, NULL, err,
                                  ERR_LEN);
    if (g->lighting == CNB_LIGHTING_DATASET && g->lighting_sigma > 0.0f)
        cnb_lighting_apply(dst, a->oh, a->ow, &a->pca, g->lighting_sigma, r, NULL);
    return 0;
}

int cnb_augment_batch(const cnb_augment *a, const cnb_dataset *d, const uint32_t *idx,
                      int count, int train, uint64_t seed, uint64_t epoch, float *out)
{
    if (!a || !a->err)
        return CNB_EINVAL; /* not initialised: there is nowhere to say so */
    a->err[0] = '\0';
    if (!d || !d->images || d->c != a->c || d->h != a->h || d->w != a->w)
        return cnb_fail(CNB_EINVAL, a->err, ERR_LEN, "augment: the data are %d x %d x %d (c x h "
                        "x w), the augmentation was set up for %d x %d x %d; set it up for "
                        "these data", d ? d->c : 0, d ? d->h : 0, d ? d->w : 0, a->c, a->h, a->w);
    size_t in = (size_t)a->c * a->h * a->w, on = (size_t)a->c * a->oh * a->ow;
    for (int i = 0; i < count; i++) {
        if (idx[i] >= (uint32_t)d->n)
            return cnb_fail(CNB_EINVAL, a->err, ERR_LEN, "augment: sample index %u of a set of "
                            "%d", (unsigned)idx[i], d->n);
        struct cnb_rng r;
        cnb_augment_sample_rng(&r, seed, epoch, idx[i]);
        int rc = augment_one(a, d->images + idx[i] * in, train, &r, out + (size_t)i * on);
        if (rc) {
            size_t len = strlen(a->err);
            snprintf(a->err + len, ERR_LEN - len, " (sample %u)", (unsigned)idx[i]);
            return rc;
        }
    }
    return 0;
}

const char *cnb_augment_error(const cnb_augment *a)
{
    return a && a->err ? a->err : "";
}

void cnb_augment_free(cnb_augment *a)
{
    if (!a)
        return;
    free(a->scratch);
    free(a->err);
    memset(a, 0, sizeof *a);
}

/* ---- images one at a time (image files) ----------------------------------------------- */

int cnb_augment_init_images(cnb_augment *a, const cnb_augment_cfg *cfg, int c, int h, int w,
                            const cnb_pca *pca, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (err && errlen)
        err[0] = '\0';
    if (!cfg || c < 1 || h < 1 || w < 1)
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: no settings, or an image shape of %d "
                        "x %d x %d", c, h, w);
    if (cfg->resize_h || cfg->resize_w)
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: image files are resized as they are "
                        "read; give the reader the size, not the augmentation");
    a->cfg = *cfg;
    a->c = c, a->h = a->rh = h, a->w = a->rw = w;
    if (check_cfg(a, err, errlen)) {
        memset(a, 0, sizeof *a);
        return CNB_EINVAL;
    }
    for (int i = 0; cfg->normalize && i < c && i < CNB_AUGMENT_MAX_C; i++)
        if (!(cfg->std[i] > 0.0f) || !isfinite(cfg->mean[i])) {
            memset(a, 0, sizeof *a);
            return cnb_fail(CNB_EINVAL, err, errlen, "augment: channel %d has mean %g and std "
                            "%g; a std must be above 0 (a constant channel in every sampled "
                            "image?)", i, (double)cfg->mean[i], (double)cfg->std[i]);
        }
    if (cfg->normalize && c > CNB_AUGMENT_MAX_C) {
        memset(a, 0, sizeof *a);
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: normalisation works on 1 to %d "
                        "channels", CNB_AUGMENT_MAX_C);
    }
    a->oh = cfg->crop_h ? cfg->crop_h : h;
    a->ow = cfg->crop_w ? cfg->crop_w : w;
    if (cfg->lighting == CNB_LIGHTING_DATASET) {
        if (!pca || pca->c != c) {
            memset(a, 0, sizeof *a);
            return cnb_fail(CNB_EINVAL, err, errlen, "data.lighting = dataset: no eigen data "
                            "of the training pixels were given");
        }
        a->pca = *pca;
    }
    if (!(a->err = calloc(ERR_LEN, 1))) {
        memset(a, 0, sizeof *a);
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: out of memory");
    }
    return 0;
}

static void normalize_image(const cnb_augment *a, float *x)
{
    size_t n = (size_t)a->oh * a->ow;
    for (int ch = 0; ch < a->c; ch++) {
        float m = a->cfg.mean[ch], inv = 1.0f / a->cfg.std[ch];
        float *p = x + (size_t)ch * n;
        for (size_t k = 0; k < n; k++)
            p[k] = (p[k] - m) * inv;
    }
}

int cnb_augment_sample(const cnb_augment *a, const float *src, int h, int w, int train,
                       struct cnb_rng *r, float *dst, char *err, size_t errlen)
{
    const cnb_augment_cfg *g = &a->cfg;
    if (h < a->h || w < a->w || (!g->crop_h && (h != a->h || w != a->w)))
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: a %dx%d image where %dx%d was set "
                        "up; %s", h, w, a->h, a->w,
                        g->crop_h ? "it is smaller than the crop allows"
                                  : "without a crop every image must have that size");
    if (g->crop_h) {
        int rc = train ? cnb_crop_random(src, a->c, h, w, g->crop_pad, a->oh, a->ow, r, dst,
                                         NULL, NULL, err, errlen)
                       : cnb_crop_center(src, a->c, h, w, g->crop_pad, a->oh, a->ow, dst, err,
                                         errlen);
        if (rc)
            return rc;
    } else {
        memcpy(dst, src, (size_t)a->c * h * w * sizeof *dst);
    }
    if (train) {
        if (g->flip && cnb_rng_uniform(r) < 0.5f)
            cnb_flip_h(dst, a->c, a->oh, a->ow, dst);
        if (g->lighting == CNB_LIGHTING_IMAGE && g->lighting_sigma > 0.0f &&
            cnb_lighting_image(dst, a->c, a->oh, a->ow, g->lighting_sigma, r, NULL, err, errlen))
            return CNB_EINVAL;
        if (g->lighting == CNB_LIGHTING_DATASET && g->lighting_sigma > 0.0f)
            cnb_lighting_apply(dst, a->oh, a->ow, &a->pca, g->lighting_sigma, r, NULL);
    }
    if (g->normalize)
        normalize_image(a, dst);
    return 0;
}

int cnb_augment_ten_crop(const cnb_augment *a, const float *src, int h, int w, float *dst,
                         char *err, size_t errlen)
{
    if (!a->cfg.crop_h)
        return cnb_fail(CNB_EINVAL, err, errlen, "data.eval_crops = 10 needs a crop: set "
                        "data.crop and add crop to data.augment");
    if (h < a->h || w < a->w)
        return cnb_fail(CNB_EINVAL, err, errlen, "augment: a %dx%d image is smaller than %dx%d", h,
                        w, a->h, a->w);
    int pad = a->cfg.crop_pad, ph = h + 2 * pad - a->oh, pw = w + 2 * pad - a->ow;
    const int y0[5] = {ph / 2, 0, 0, ph, ph}, x0[5] = {pw / 2, 0, pw, 0, pw};
    size_t per = (size_t)a->c * a->oh * a->ow;
    for (int k = 0; k < 5; k++) {
        float *o = dst + (size_t)k * per, *m = dst + (size_t)(k + 5) * per;
        if (cnb_crop(src, a->c, h, w, pad, y0[k], x0[k], a->oh, a->ow, o, err, errlen))
            return CNB_EINVAL;
        cnb_flip_h(o, a->c, a->oh, a->ow, m);
        if (a->cfg.normalize) {
            normalize_image(a, o);
            normalize_image(a, m);
        }
    }
    return 0;
}
