/*
 * imageset.c - image folders, list files and packed caches, read a sample at a time; see
 * imageset.h and docs/image-pack.md.
 *
 * Resizing goes 8-bit HWC -> float CHW at the decoded size -> cnb_resize_bilinear. The
 * bilinear filter alone aliases when it shrinks by more than 2x; JPEG's DCT scaling
 * (imagefile.c) does the large part of any reduction first, so what is left is below 2x
 * for JPEG. A large PNG shrunk a lot does alias: convert such sets to JPEG or pack them.
 */
#include "imageset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "augment.h"
#include "cnnbench/plugin.h"
#include "dataset.h"
#include "errors.h"
#include "fsutil.h"
#include "log.h"
#include "rng.h"

#define MAX_SAMPLES 100000000 /* a split of more is refused: labels and indices are 32-bit */

/* ---- building the list ------------------------------------------------------------- */

typedef struct strvec {
    char **v;
    int n, cap;
} strvec;

static int sv_push(strvec *s, const char *text)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return CNB_ENOMEM;
        s->v = v, s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(text)))
        return CNB_ENOMEM;
    s->n++;
    return 0;
}

static void sv_free(strvec *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

/* The names in dir that are folders (want_dirs) or image files, sorted. */
static int list_dir(const char *dir, int want_dirs, strvec *out, int *ignored, char *err,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot open the folder (%s)", dir,
                        strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0) {
            ++*ignored;
            continue;
        }
        int ok = want_dirs ? S_ISDIR(st.st_mode)
                           : S_ISREG(st.st_mode) && is_image_name(de->d_name);
        if (ok)
            rc = sv_push(out, de->d_name);
        else
            ++*ignored;
    }
    closedir(d);
    if (rc)
        return cnb_fail(rc, err, errlen, "%s: out of memory listing the folder", dir);
    qsort(out->v, (size_t)out->n, sizeof *out->v, by_name);
    return 0;
}

static int alloc_set(cnb_imageset *s, int n, int classes, char *err, size_t errlen)
{
    s->n = n, s->classes = classes;
    s->paths = calloc((size_t)n ? (size_t)n : 1, sizeof *s->paths);
    s->labels = calloc((size_t)n ? (size_t)n : 1, sizeof *s->labels);
    s->class_names = calloc((size_t)classes ? (size_t)classes : 1, sizeof *s->class_names);
    s->class_counts = calloc((size_t)classes ? (size_t)classes : 1, sizeof *s->class_counts);
    if (!s->paths || !s->labels || !s->class_names || !s->class_counts)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory for %d samples", s->source, n);
    return 0;
}

int cnb_imageset_folder(cnb_imageset *s, const char *dir, const cnb_imageset *classes_of,
                        int *ignored, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->source, sizeof s->source, "%s", dir);
    int skipped = 0, rc;
    strvec cls = {0}, files = {0};
    int *first = NULL; /* files of class k start at first[k] */
    if ((rc = list_dir(dir, 1, &cls, &skipped, err, errlen)))
        goto done;
    if (cls.n == 0) {
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: no class subfolders; an image folder holds "
                      "one subfolder per class (train/cat/1.jpg, train/dog/2.jpg ...)", dir);
        goto done;
    }
    if (!(first = calloc((size_t)cls.n + 1, sizeof *first))) {
        rc = CNB_ENOMEM;
        goto done;
    }
    for (int k = 0; k < cls.n && rc == 0; k++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dir, cls.v[k]);
        first[k] = files.n;
        strvec here = {0};
        rc = list_dir(sub, 0, &here, &skipped, err, errlen);
        for (int i = 0; rc == 0 && i < here.n; i++) {
            char path[PATH_MAX];
            int len = snprintf(path, sizeof path, "%s/%s", sub, here.v[i]);
            rc = len < 0 || (size_t)len >= sizeof path
                     ? cnb_fail(CNB_EINVAL, err, errlen, "%s/%s: path too long", sub, here.v[i])
                     : sv_push(&files, path);
        }
        sv_free(&here);
        if (files.n > MAX_SAMPLES)
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: more than %d images", dir, MAX_SAMPLES);
    }
    first[cls.n] = files.n;
    if (rc)
        goto done;
    if (files.n == 0) {
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: %d class folders but no .jpg, .jpeg or .png "
                      "file in any", dir, cls.n);
        goto done;
    }
    int classes = classes_of ? classes_of->classes : cls.n;
    if ((rc = alloc_set(s, files.n, classes, err, errlen)))
        goto done;
    for (int k = 0; k < classes && rc == 0; k++)
        if (!(s->class_names[k] = strdup(classes_of ? classes_of->class_names[k] : cls.v[k])))
            rc = CNB_ENOMEM;
    for (int k = 0; k < cls.n && rc == 0; k++) {
        int label = k;
        if (classes_of) {
            char **hit = bsearch(&cls.v[k], s->class_names, (size_t)classes,
                                 sizeof *s->class_names, by_name);
            if (!hit) {
                rc = cnb_fail(CNB_EINVAL, err, errlen, "%s/%s: a class the training set (%s) "
                              "does not have; its %d classes are its subfolders (%s%s ...)", dir,
                              cls.v[k], classes_of->source, classes, s->class_names[0],
                              classes > 1 ? ", ..." : "");
                break;
            }
            label = (int)(hit - s->class_names);
        }
        for (int i = first[k]; i < first[k + 1]; i++) {
            s->paths[i] = files.v[i], files.v[i] = NULL;
            s->labels[i] = label;
            s->class_counts[label]++;
        }
    }
done:
    if (ignored)
        *ignored = skipped;
    free(first);
    sv_free(&cls);
    sv_free(&files);
    if (rc)
        cnb_imageset_free(s);
    return rc;
}

/* One line of a list file, "path label" (the label after the last space or tab): the
 * path under `base` unless absolute. LINE_BAD when the label is missing or not 0..999999
 * (the line is left trimmed, for the message). */
enum { LINE_OK, LINE_EMPTY, LINE_BAD, LINE_TOO_LONG };
static int list_line(char *line, const char *base, char *path, size_t len, long *label)
{
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    while (n && isspace((unsigned char)line[n - 1]))
        line[--n] = '\0';
    if (n == 0)
        return LINE_EMPTY;
    char *sep = line + n, *end;
    while (sep > line && sep[-1] != ' ' && sep[-1] != '\t')
        sep--;
    errno = 0;
    *label = sep > line ? strtol(sep, &end, 10) : -1;
    if (sep == line || *end || errno || *label < 0 || *label >= 1000000)
        return LINE_BAD;
    while (sep > line && (sep[-1] == ' ' || sep[-1] == '\t'))
        *--sep = '\0';
    int k = line[0] == '/' ? snprintf(path, len, "%s", line)
                           : snprintf(path, len, "%s/%s", base, line);
    return k < 0 || (size_t)k >= len ? LINE_TOO_LONG : LINE_OK;
}

int cnb_imageset_list(cnb_imageset *s, const char *list, const char *root, char *err,
                      size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->source, sizeof s->source, "%s", list);
    FILE *f = fopen(list, "r");
    if (!f)
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot open the list file (%s)", list,
                        strerror(errno));
    char base[PATH_MAX];
    if (!root) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", list);
        snprintf(base, sizeof base, "%s", dirname(tmp));
    } else {
        snprintf(base, sizeof base, "%s", root);
    }
    strvec paths = {0};
    int32_t *labels = NULL;
    size_t lcap = 0;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0, maxlabel = -1;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char path[PATH_MAX];
        long label;
        int kind = list_line(line, base, path, sizeof path, &label);
        if (kind == LINE_EMPTY)
            continue;
        if (kind == LINE_BAD)
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s:%d: '%s': expected 'path label', the "
                          "label a whole number from 0 to 999999 after the last space", list,
                          lineno, line);
        else if (kind == LINE_TOO_LONG)
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s:%d: path too long", list, lineno);
        if (rc == 0 && (size_t)paths.n == lcap) {
            lcap = lcap ? 2 * lcap : 256;
            int32_t *l = realloc(labels, lcap * sizeof *l);
            rc = l ? 0 : CNB_ENOMEM;
            labels = l ? l : labels;
        }
        if (rc == 0 && (rc = sv_push(&paths, path)) == 0) {
            labels[paths.n - 1] = (int32_t)label;
            maxlabel = label > maxlabel ? (int)label : maxlabel;
        }
        if (rc == 0 && paths.n > MAX_SAMPLES)
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: more than %d lines", list, MAX_SAMPLES);
    }
    free(line);
    fclose(f);
    if (rc == 0 && paths.n == 0)
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: no sample lines; each line is 'path label' "
                      "(images/cat/1.jpg 0)", list);
    if (rc == 0)
        rc = alloc_set(s, paths.n, maxlabel + 1, err, errlen);
    for (int k = 0; rc == 0 && k < s->classes; k++) {
        char name[16];
        snprintf(name, sizeof name, "%d", k);
        if (!(s->class_names[k] = strdup(name)))
            rc = CNB_ENOMEM;
    }
    for (int i = 0; rc == 0 && i < paths.n; i++) {
        s->paths[i] = paths.v[i], paths.v[i] = NULL;
        s->labels[i] = labels[i];
        s->class_counts[labels[i]]++;
    }
    sv_free(&paths);
    free(labels);
    if (rc == CNB_ENOMEM)
        cnb_fail(rc, err, errlen, "%s: out of memory reading the list", list);
    if (rc)
        cnb_imageset_free(s);
    return rc;
}

int cnb_imageset_limit(cnb_imageset *s, long limit)
{
    if (limit <= 0 || limit >= s->n)
        return 0;
    unsigned char *idx = NULL;
    if (s->map && !(idx = malloc((size_t)limit * 16)))
        return CNB_ENOMEM;
    for (int k = 0; k < s->classes; k++)
        s->class_counts[k] = 0;
    long n = s->n, j = 0; /* j: the next source sample not yet kept or freed */
    for (long i = 0; i < limit; i++) {
        long from = (long)((int64_t)i * n / limit);
        for (; s->paths && j < from; j++)
            free(s->paths[j]), s->paths[j] = NULL;
        if (s->paths)
            s->paths[i] = s->paths[from];
        if (idx)
            memcpy(idx + (size_t)i * 16, s->index + (size_t)from * 16, 16);
        s->labels[i] = s->labels[from];
        s->class_counts[s->labels[i]]++;
        j = from + 1;
    }
    for (; s->paths && j < n; j++)
        free(s->paths[j]);
    if (idx) {
        free(s->own_index);
        s->own_index = idx, s->index = idx;
    }
    s->n = (int)limit;
    return 0;
}

int cnb_imageset_holdout(cnb_imageset *s, int count, uint64_t seed, cnb_imageset *val,
                         uint32_t *digest)
{
    char err[256];
    const int n = s->n;
    memset(val, 0, sizeof *val);
    snprintf(val->source, sizeof val->source, "%s", s->source);
    unsigned char *held = malloc((size_t)n), *kept_index = NULL;
    int rc = held ? alloc_set(val, count, s->classes, err, sizeof err) : CNB_ENOMEM;
    if (rc == 0 && s->map && (!(val->own_index = malloc((size_t)count * 16)) ||
                              !(kept_index = malloc((size_t)(n - count) * 16))))
        rc = CNB_ENOMEM;
    for (int k = 0; rc == 0 && k < s->classes; k++)
        if (!(val->class_names[k] = strdup(s->class_names[k])))
            rc = CNB_ENOMEM;
    if (rc == 0)
        rc = cnb_holdout_draw(n, count, seed, held, digest);
    if (rc) {
        free(held), free(kept_index), cnb_imageset_free(val);
        return CNB_ENOMEM;
    }
    for (int k = 0; k < s->classes; k++)
        s->class_counts[k] = 0;
    int v = 0, t = 0; /* s is compacted in place: t <= i */
    for (int i = 0; i < n; i++) {
        cnb_imageset *to = held[i] ? val : s;
        int at = held[i] ? v++ : t++;
        int32_t label = s->labels[i];
        to->paths[at] = s->paths[i];
        to->labels[at] = label;
        to->class_counts[label]++;
        if (s->map) /* an index entry: 16 bytes */
            memcpy((held[i] ? val->own_index : kept_index) + (size_t)at * 16,
                   s->index + (size_t)i * 16, 16);
    }
    if (s->map) {
        free(s->own_index);
        s->own_index = kept_index, s->index = kept_index;
        val->index = val->own_index;
        val->map = s->map, val->map_len = s->map_len, val->map_shared = 1;
        val->pack_h = s->pack_h, val->pack_w = s->pack_w, val->pack_c = s->pack_c;
        val->pack_resize = s->pack_resize;
    }
    s->n = n - count;
    free(held);
    return 0;
}

void cnb_imageset_free(cnb_imageset *s)
{
    if (!s)
        return;
    for (int i = 0; s->paths && i < s->n; i++)
        free(s->paths[i]);
    for (int k = 0; s->class_names && k < s->classes; k++)
        free(s->class_names[k]);
    free(s->paths);
    free(s->labels);
    free(s->class_names);
    free(s->class_counts);
    if (s->map && !s->map_shared)
        munmap(s->map, s->map_len);
    free(s->own_index);
    memset(s, 0, sizeof *s);
}

void cnb_imagereader_free(cnb_imagereader *rd)
{
    if (!rd)
        return;
    cnb_imagefile_free(&rd->file);
    free(rd->a);
    free(rd->b);
    memset(rd, 0, sizeof *rd);
}

/* ---- reading a sample ---------------------------------------------------------------- */

static int growf(float **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    float *q = realloc(*p, n * sizeof *q);
    if (!q)
        return CNB_ENOMEM;
    *p = q, *cap = n;
    return 0;
}

/* byte -> byte / 255, the table of to_chw; filled once, whichever thread reads first */
static float scale[256];
static pthread_once_t scale_once = PTHREAD_ONCE_INIT;

static void fill_scale(void)
{
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
}

/* (h, w, c) bytes -> (c, h, w) floats / 255 */
static void to_chw(const unsigned char *px, int h, int w, int c, float *dst)
{
    pthread_once(&scale_once, fill_scale);
    size_t hw = (size_t)h * w;
    if (c == 1) {
        for (size_t k = 0; k < hw; k++)
            dst[k] = scale[px[k]];
        return;
    }
    float *r = dst, *g = dst + hw, *b = dst + 2 * hw;
    for (size_t k = 0; k < hw; k++) {
        r[k] = scale[px[3 * k]];
        g[k] = scale[px[3 * k + 1]];
        b[k] = scale[px[3 * k + 2]];
    }
}

void cnb_resize_min(const cnb_resize_spec *rs, int *h, int *w)
{
    switch (rs->mode) {
    case CNB_RESIZE_SHORTER:
    case CNB_RESIZE_CENTER:
        *h = *w = rs->h;
        return;
    case CNB_RESIZE_EXACT:
        *h = rs->h, *w = rs->w;
        return;
    default:
        *h = *w = 1;
    }
}

/* The size the shorter side to n gives: the shorter side exactly n, the other rounded. */
static void shorter_size(int h, int w, int n, int *oh, int *ow)
{
    if (h <= w) {
        *oh = n;
        *ow = (int)lround((double)w * n / h);
    } else {
        *ow = n;
        *oh = (int)lround((double)h * n / w);
    }
    *oh = *oh < 1 ? 1 : *oh;
    *ow = *ow < 1 ? 1 : *ow;
}

/* rd->a (c, h, w) resized by rs; *img and *oh, *ow the result. */
static int apply_resize(cnb_imagereader *rd, int c, int h, int w, const cnb_resize_spec *rs,
                        const float **img, int *oh, int *ow, char *err, size_t errlen)
{
    if (rs->mode == CNB_RESIZE_NONE) {
        *img = rd->a, *oh = h, *ow = w;
        return 0;
    }
    int th = rs->h, tw = rs->w;
    if (rs->mode != CNB_RESIZE_EXACT)
        shorter_size(h, w, rs->h, &th, &tw);
    if (th > CNB_AUGMENT_MAX_SIDE || tw > CNB_AUGMENT_MAX_SIDE)
        return cnb_fail(CNB_EINVAL, err, errlen, "a %d x %d image resized to %d x %d: more than "
                        "%d on a side (a very long, thin image)", h, w, th, tw,
                        CNB_AUGMENT_MAX_SIDE);
    if (growf(&rd->b, &rd->b_cap, (size_t)c * th * tw))
        return cnb_fail(CNB_ENOMEM, err, errlen, "cannot allocate a %d x %d image", th, tw);
    if (cnb_resize_bilinear(rd->a, c, h, w, rd->b, th, tw, err, errlen))
        return CNB_EINVAL;
    if (rs->mode != CNB_RESIZE_CENTER) {
        *img = rd->b, *oh = th, *ow = tw;
        return 0;
    }
    int n = rs->h; /* the centre n x n, back into a (at least as large: th, tw >= n) */
    if (growf(&rd->a, &rd->a_cap, (size_t)c * n * n) ||
        cnb_crop_center(rd->b, c, th, tw, 0, n, n, rd->a, err, errlen))
        return CNB_EINVAL;
    *img = rd->a, *oh = n, *ow = n;
    return 0;
}

static int read_pack(const cnb_imageset *s, int i, cnb_imagereader *rd, const float **img,
                     int *h, int *w, char *err, size_t errlen);

int cnb_imageset_read(const cnb_imageset *s, int i, const cnb_resize_spec *rs, int c,
                      cnb_imagereader *rd, const float **img, int *h, int *w, char *err,
                      size_t errlen)
{
    if (i < 0 || i >= s->n)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: sample %d of %d", s->source, i, s->n);
    if (s->map)
        return read_pack(s, i, rd, img, h, w, err, errlen);
    cnb_image_need need = {0, 0, 0};
    if (rs->mode == CNB_RESIZE_EXACT)
        need.h = rs->h, need.w = rs->w;
    else if (rs->mode != CNB_RESIZE_NONE)
        need.shorter = rs->h;
    int rc = cnb_imagefile_read(&rd->file, s->paths[i], c, rs->mode ? &need : NULL, err,
                                errlen);
    if (rc)
        return rc;
    int fh = rd->file.h, fw = rd->file.w;
    if (growf(&rd->a, &rd->a_cap, (size_t)c * fh * fw))
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: cannot allocate %d x %d floats", s->paths[i],
                        fh, fw);
    to_chw(rd->file.px, fh, fw, c, rd->a);
    char why[512];
    rc = apply_resize(rd, c, fh, fw, rs, img, h, w, why, sizeof why);
    if (rc)
        cnb_fail(rc, err, errlen, "%s: %s", s->paths[i], why);
    return rc;
}

/* ---- statistics ---------------------------------------------------------------------- */

/* cnb_imageset_read for a pass over the set (statistics, packing): 0 read; 1 unreadable
 * and skipped (on_bad_image = skip: warned about); else the error, said into err. */
static int read_or_skip(const cnb_imageset *s, int i, const cnb_resize_spec *rs, int c,
                        cnb_imagereader *rd, const float **img, int *h, int *w, int skip_bad,
                        char *err, size_t errlen)
{
    char why[1024];
    int e = cnb_imageset_read(s, i, rs, c, rd, img, h, w, why, sizeof why);
    if (e && skip_bad && e != CNB_ENOMEM) {
        cnb_log(CNB_LOG_WARN, NULL, "skipped (data.on_bad_image = skip): %s", why);
        return 1;
    }
    return e ? cnb_fail(e, err, errlen, "%s", why) : 0;
}

int cnb_imageset_stats(const cnb_imageset *s, const cnb_resize_spec *rs, int c, int sample,
                       uint64_t seed, int skip_bad, double *mean, double *std, double *cov,
                       int *used, char *err, size_t errlen)
{
    int n = s->n, m = sample < n ? sample : n, rc = 0;
    uint32_t *pick = malloc((size_t)n * sizeof *pick);
    if (!pick)
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory", s->source);
    for (int i = 0; i < n; i++)
        pick[i] = (uint32_t)i;
    struct cnb_rng r;
    cnb_rng_seed(&r, seed, CNB_STREAM_STATS);
    for (int i = 0; i < m; i++) { /* the first m of a Fisher-Yates shuffle */
        uint32_t j = (uint32_t)i + cnb_rng_below(&r, (uint32_t)(n - i)), t = pick[i];
        pick[i] = pick[j], pick[j] = t;
    }
    /* sums of x - 0.5 (pixels are in [0, 1]: the shift keeps the cancellation small) */
    double sum[CNB_AUGMENT_MAX_C] = {0}, cross[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C] = {0};
    double count = 0;
    cnb_imagereader rd = {0};
    *used = 0;
    for (int k = 0; k < m && rc == 0; k++) {
        const float *img;
        int h, w;
        int e = read_or_skip(s, (int)pick[k], rs, c, &rd, &img, &h, &w, skip_bad, err, errlen);
        if (e > 0)
            continue;
        if ((rc = e))
            break;
        size_t hw = (size_t)h * w;
        for (size_t p = 0; p < hw; p++) {
            double d[CNB_AUGMENT_MAX_C];
            for (int a = 0; a < c; a++)
                d[a] = (double)img[(size_t)a * hw + p] - 0.5;
            for (int a = 0; a < c; a++) {
                sum[a] += d[a];
                for (int b = a; b < c; b++)
                    cross[a * c + b] += d[a] * d[b];
            }
        }
        count += (double)hw;
        ++*used;
    }
    cnb_imagereader_free(&rd);
    free(pick);
    if (rc)
        return rc;
    if (*used == 0)
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: none of the %d sampled images could be "
                        "read", s->source, m);
    for (int a = 0; a < c; a++)
        for (int b = a; b < c; b++)
            cov[a * c + b] = cov[b * c + a] =
                cross[a * c + b] / count - (sum[a] / count) * (sum[b] / count);
    for (int a = 0; a < c; a++) {
        mean[a] = 0.5 + sum[a] / count;
        std[a] = sqrt(cov[a * c + a] > 0 ? cov[a * c + a] : 0.0);
    }
    return 0;
}

/* ---- the packed cache ---------------------------------------------------------------- */

#define PACK_HEADER 64
#define PACK_ENTRY 16
#define PACK_ALIGN 64

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int read_pack(const cnb_imageset *s, int i, cnb_imagereader *rd, const float **img,
                     int *h, int *w, char *err, size_t errlen)
{
    const unsigned char *e = s->index + (size_t)i * PACK_ENTRY;
    uint64_t off = get64(e);
    size_t bytes = (size_t)s->pack_h * s->pack_w * s->pack_c;
    const unsigned char *px = s->map + off; /* offsets were checked at open */
    if ((uint32_t)crc32(0L, px, (uInt)bytes) != get32(e + 12))
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: image %d fails its CRC-32 check (the pack "
                        "is damaged: write it again with cnnbench convert)", s->source, i);
    if (growf(&rd->a, &rd->a_cap, bytes))
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory", s->source);
    to_chw(px, s->pack_h, s->pack_w, s->pack_c, rd->a);
    *img = rd->a, *h = s->pack_h, *w = s->pack_w;
    return 0;
}

int cnb_imageset_pack_write(const cnb_imageset *s, const char *path, const cnb_resize_spec *rs,
                            int c, int skip_bad, int *written, char *err, size_t errlen)
{
    *written = 0;
    if (rs->mode != CNB_RESIZE_EXACT && rs->mode != CNB_RESIZE_CENTER)
        return cnb_fail(CNB_EINVAL, err, errlen, "a pack holds images of one size: set "
                        "data.resize to HxW, or resize_mode = center");
    int h = rs->h, w = rs->mode == CNB_RESIZE_EXACT ? rs->w : rs->h;
    size_t names = 0;
    for (int k = 0; k < s->classes; k++)
        names += strlen(s->class_names[k]) + 1;
    size_t meta = (size_t)s->n * PACK_ENTRY + names;
    uint64_t pix0 = (PACK_HEADER + meta + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
    size_t bytes = (size_t)h * w * c;
    unsigned char *head = calloc(1, pix0), *rec = malloc(bytes);
    if (!head || !rec) {
        free(head), free(rec);
        return cnb_fail(CNB_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    unsigned char *idx = head + PACK_HEADER; /* entries first, the names after them */
    cnb_atomic a;
    if (cnb_atomic_open(&a, path)) {
        free(head), free(rec);
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot write (see above)", path);
    }
    int rc = fwrite(head, 1, pix0, a.f) == pix0 ? 0 : CNB_EIO;
    cnb_imagereader rd = {0};
    uint64_t off = pix0;
    int n = 0;
    for (int i = 0; i < s->n && rc == 0; i++) {
        const float *img;
        int ih, iw;
        int e = read_or_skip(s, i, rs, c, &rd, &img, &ih, &iw, skip_bad, err, errlen);
        if (e > 0)
            continue;
        if ((rc = e))
            break;
        size_t hw = (size_t)h * w; /* (c, h, w) floats -> (h, w, c) bytes, rounded */
        for (size_t p = 0; p < hw; p++)
            for (int ch = 0; ch < c; ch++) {
                float v = img[(size_t)ch * hw + p] * 255.0f + 0.5f;
                rec[p * c + ch] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        unsigned char *e8 = idx + (size_t)n * PACK_ENTRY;
        put64(e8, off);
        put32(e8 + 8, (uint32_t)s->labels[i]);
        put32(e8 + 12, (uint32_t)crc32(0L, rec, (uInt)bytes));
        if (fwrite(rec, 1, bytes, a.f) != bytes)
            rc = CNB_EIO;
        off += bytes;
        n++;
    }
    cnb_imagereader_free(&rd);
    if (rc == 0 && n == 0)
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: no image could be read", s->source);
    if (rc == 0) {
        unsigned char *nm = idx + (size_t)n * PACK_ENTRY;
        for (int k = 0; k < s->classes; k++) {
            size_t len = strlen(s->class_names[k]) + 1;
            memcpy(nm, s->class_names[k], len);
            nm += len;
        }
        memcpy(head, CNB_PACK_MAGIC, 8);
        put32(head + 8, 1);
        put32(head + 12, (uint32_t)n);
        put32(head + 16, (uint32_t)h);
        put32(head + 20, (uint32_t)w);
        put32(head + 24, (uint32_t)c);
        put32(head + 28, (uint32_t)s->classes);
        put32(head + 32, (uint32_t)rs->mode);
        put32(head + 36, (uint32_t)rs->h);
        put32(head + 40, (uint32_t)rs->w);
        put32(head + 44, (uint32_t)crc32(0L, idx, (uInt)(nm - idx)));
        put64(head + 48, pix0);
        put64(head + 56, off);
        if (fseek(a.f, 0, SEEK_SET) != 0 || fwrite(head, 1, pix0, a.f) != pix0)
            rc = CNB_EIO;
    }
    free(head);
    free(rec);
    if (rc) {
        fclose(a.f);
        unlink(a.tmp);
        if (rc == CNB_EIO)
            cnb_fail(rc, err, errlen, "%s: write error (%s)", path, strerror(errno));
        return rc;
    }
    if (cnb_atomic_commit(&a))
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot write (see above)", path);
    *written = n;
    return 0;
}

int cnb_imageset_pack_open(cnb_imageset *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->source, sizeof s->source, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot open (%s); write it with cnnbench "
                        "convert EXPERIMENT.ini", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < PACK_HEADER) {
        close(fd);
        return cnb_fail(CNB_EINVAL, err, errlen, "%s: %lld bytes, shorter than a pack's %d-byte "
                        "header", path, (long long)st.st_size, PACK_HEADER);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return cnb_fail(CNB_EIO, err, errlen, "%s: cannot map (%s)", path, strerror(errno));
    s->map = map, s->map_len = len;
    const unsigned char *p = map;
    int rc = 0;
    uint32_t n = get32(p + 12), h = get32(p + 16), w = get32(p + 20), c = get32(p + 24);
    uint32_t classes = get32(p + 28);
    uint64_t pix0 = get64(p + 48), end = get64(p + 56);
    uint64_t meta = (uint64_t)n * PACK_ENTRY;
    if (memcmp(p, CNB_PACK_MAGIC, 8) != 0 || get32(p + 8) != 1)
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: not a cnnbench pack (version 1)", path);
    else if (n < 1 || n > MAX_SAMPLES || h < 1 || w < 1 || h > CNB_AUGMENT_MAX_SIDE ||
             w > CNB_AUGMENT_MAX_SIDE || (c != 1 && c != 3) || classes < 1 ||
             classes > 1000000 || end != len || pix0 > len || PACK_HEADER + meta > pix0 ||
             (end - pix0) / ((uint64_t)h * w * c) < n)
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: a damaged pack header (%u images of "
                      "%ux%ux%u, %llu bytes, the file has %zu); write it again with cnnbench "
                      "convert", path, n, h, w, c, (unsigned long long)end, len);
    if (rc)
        goto bad;
    /* index + names: the CRC covers exactly these bytes */
    const unsigned char *names = p + PACK_HEADER + meta, *stop = p + pix0;
    if ((rc = alloc_set(s, (int)n, (int)classes, err, errlen)))
        goto bad;
    for (uint32_t k = 0; k < classes; k++) {
        const unsigned char *z = memchr(names, '\0', (size_t)(stop - names));
        if (!z) {
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: damaged class names", path);
            goto bad;
        }
        if (!(s->class_names[k] = strdup((const char *)names))) {
            rc = CNB_ENOMEM;
            goto bad;
        }
        names = z + 1;
    }
    uLong crc = crc32(0L, p + PACK_HEADER, (uInt)(names - p - PACK_HEADER));
    if ((uint32_t)crc != get32(p + 44)) {
        rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: the index fails its CRC-32 check; write it "
                      "again with cnnbench convert", path);
        goto bad;
    }
    size_t bytes = (size_t)h * w * c;
    s->index = p + PACK_HEADER;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = get64(s->index + (size_t)i * PACK_ENTRY);
        uint32_t label = get32(s->index + (size_t)i * PACK_ENTRY + 8);
        if (off < pix0 || off > len || len - off < bytes || label >= classes) {
            rc = cnb_fail(CNB_EINVAL, err, errlen, "%s: index entry %u is damaged (offset %llu, "
                          "label %u)", path, i, (unsigned long long)off, label);
            goto bad;
        }
        s->labels[i] = (int32_t)label;
        s->class_counts[label]++;
    }
    s->pack_h = (int)h, s->pack_w = (int)w, s->pack_c = (int)c;
    s->pack_resize = (cnb_resize_spec){(int)get32(p + 32), (int)get32(p + 36),
                                       (int)get32(p + 40)};
    return 0;
bad:
    cnb_imageset_free(s);
    return rc;
}
