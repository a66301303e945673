/*
 * experiment.c - load an experiment file and run it; see experiment.h.
 * A run writes, each file atomically:
 *   config.ini   the fully resolved experiment and model
 *   meta.ini     seeds and streams, build, machine, backend and plugins
 *   metrics.csv  one row per epoch (rewritten after every epoch); under mpirun also the
 *                time spent waiting for the gradient sums and the rest of the step
 * Under mpirun (dist.h) every rank trains its slice of each batch and only rank 0 writes.
 *   final.csv    one row: the last epoch, best test accuracy, timing, peak memory
 *   weights.cnbw the trained parameters
 */
#include "experiment.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "csv.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "feed.h"
#include "fsutil.h"
#include "hash.h"
#include "launcher.h"
#include "log.h"
#include "meta.h"
#include "net.h"

static const char *const experiment_keys[] = {"name", "mode", "model", "backend", "threads",
                                              "seed", "results", "baseline", "cell_timeout",
                                              NULL};
static const char *const data_keys[] = {"dir", "train_images", "train_labels", "test_images",
                                        "test_labels", "train_limit", "test_limit",
                                        "normalize", "format", "resize", "augment", "crop",
                                        "crop_pad", "lighting", "lighting_sigma", "train",
                                        "test", "root", "channels", "resize_mode",
                                        "stats_sample", "eval_crops", "on_bad_image",
                                        "loader_threads", "prefetch", "cache", "cache_build",
                                        "validation", NULL};
static const char *const train_keys[] = {"epochs", "batch", "lr", "momentum", "weight_decay",
                                         "schedule", "step_epochs", "gamma", "warmup",
                                         "warmup_steps", "train_eval_limit", "test_every",
                                         "keep_checkpoint", NULL};

/* Split a comma-separated list in place into trimmed items. */
static int split_list(char *text, char sep, char **items, int max)
{
    int n = 0;
    for (char *tok = text; tok && n < max;) {
        char *next = strchr(tok, sep);
        if (next)
            *next++ = '\0';
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            items[n++] = tok;
        tok = next;
    }
    return n;
}

static int apply_profile(cnb_conf *c, const char *profile)
{
    char name[128];
    snprintf(name, sizeof name, "profile.%s", profile);
    const cnb_section *s = cnb_conf_section(c, name);
    if (!s) {
        char list[512] = "";
        for (int i = 0; i < c->n; i++)
            if (strncmp(c->sec[i].name, "profile.", 8) == 0)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", c->sec[i].name + 8);
        return cnb_error("%s: no [profile.%s]; profiles here: %s", c->path, profile,
                         list[0] ? list : "(none)");
    }
    /* copy first: conf_set may grow the section array s points into */
    int n = s->n, rc = 0;
    cnb_kv *kv = malloc((size_t)n * sizeof *kv);
    if (!kv)
        return CNB_ENOMEM;
    memcpy(kv, s->kv, (size_t)n * sizeof *kv);
    for (int i = 0; i < n && rc == 0; i++)
        if (strncmp(kv[i].key, "profile.", 8) == 0 || strncmp(kv[i].key, "experiment.name", 15) == 0)
            rc = cnb_error("%s:%d: a profile may not set '%s'", c->path, kv[i].line, kv[i].key);
        else
            rc = cnb_conf_set(c, kv[i].key, kv[i].value, kv[i].line);
    free(kv);
    return rc;
}

static void copy_str(const cnb_section *s, const char *key, char *dst, size_t len)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    if (kv)
        snprintf(dst, len, "%s", kv->value);
}

/* The results folder's name (with the profile's) is one plain folder inside `results`:
 * letters, digits, '.', '_', '-', not starting with '.'. */
static int check_name(const cnb_conf *c, const cnb_section *ex, const cnb_experiment *e)
{
    char leaf[sizeof e->name + sizeof e->profile + 1], at[PATH_MAX + 64];
    snprintf(leaf, sizeof leaf, "%s%s%s", e->name, e->profile[0] ? "-" : "", e->profile);
    int ok = leaf[0] != '.' && leaf[0] != '\0';
    for (const char *p = leaf; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-';
    if (ok)
        return 0;
    const cnb_kv *kv = cnb_section_get(ex, "name");
    if (!kv)
        return cnb_error("%s: the results folder name '%s' (from the file name%s) may hold only "
                         "letters, digits, '.', '_' and '-'; set [experiment] name", c->path,
                         leaf, e->profile[0] ? " and the profile" : "");
    return cnb_error("%s: [experiment] name = '%s': a results folder name may hold only "
                     "letters, digits, '.', '_' and '-', and not start with '.', so that it "
                     "stays inside results = %s", cnb_conf_where(c, ex, kv, at, sizeof at),
                     kv->value, e->results);
}

/* `rel` relative to the folder of `file`, unless absolute. */
static void resolve(char *dst, size_t len, const char *file, const char *rel)
{
    if (rel[0] == '/') {
        snprintf(dst, len, "%s", rel);
        return;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", file);
    snprintf(dst, len, "%s/%s", dirname(tmp), rel);
}

static int join(char *dst, size_t len, const char *dir, const char *file)
{
    int n = file[0] == '/' ? snprintf(dst, len, "%s", file) : snprintf(dst, len, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= len ? cnb_error("%s/%s: path too long", dir, file) : 0;
}

/* v is a whole number from lo to hi; the range is checked before the cast, since a double
 * beyond int's range has no int value (6.1e307 for a batch is undefined behaviour). */
static int whole_in(double v, int lo, int hi)
{
    return v >= lo && v <= hi && v == (int)v;
}

/* A [train] key swept as an axis ("train.lr"): apply `value` to t / batch, within the
 * limits of the same key in [train]. Returns 0, or -1 for an unknown key, -2 for a bad
 * value. */
static int apply_train_axis(const char *key, const char *value, cnb_train_cfg *t, int *batch)
{
    char *end;
    double v = strtod(value, &end);
    if (end == value || *end || !isfinite(v))
        return -2;
    if (strcmp(key, "lr") == 0 && v > 0)
        t->lr = v;
    else if (strcmp(key, "momentum") == 0 && v >= 0 && v < 1)
        t->momentum = v;
    else if (strcmp(key, "weight_decay") == 0 && v >= 0)
        t->weight_decay = v;
    else if (strcmp(key, "epochs") == 0 && whole_in(v, 1, 100000))
        t->epochs = (int)v;
    else if (strcmp(key, "batch") == 0 && whole_in(v, 1, 65536))
        *batch = (int)v;
    else if (strcmp(key, "gamma") == 0 && v > 0 && v <= 1)
        t->gamma = v;
    else if (strcmp(key, "step_epochs") == 0 && whole_in(v, 1, 100000))
        t->step_epochs = (int)v;
    else if (strcmp(key, "warmup") == 0 && whole_in(v, 0, 100000))
        t->warmup_epochs = (int)v;
    else if (strcmp(key, "warmup_steps") == 0 && whole_in(v, 0, 100000000))
        t->warmup_steps = (long)v;
    else
        return strstr("lr momentum weight_decay epochs batch gamma step_epochs warmup "
                      "warmup_steps", key) ? -2 : -1;
    return 0;
}

/* "none" or steps joined by '+' (flip, crop, lighting), each at most once; as bits. */
enum { STEP_FLIP = 1, STEP_CROP = 2, STEP_LIGHTING = 4 };
static int parse_steps(const char *text)
{
    if (strcmp(text, "none") == 0)
        return 0;
    static const char *const names[] = {"flip", "crop", "lighting"};
    int bits = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "+");
        int k = 0;
        while (k < 3 && !(strlen(names[k]) == n && strncmp(p, names[k], n) == 0))
            k++;
        if (k == 3 || (bits & (1 << k)))
            return -1;
        bits |= 1 << k;
        p += n + (p[n] == '+');
    }
    return bits ? bits : -1;
}

/* "N" (square) or "HxW", both positive. */
static int parse_hw(const cnb_conf *c, const cnb_section *s, const char *key, int *h, int *w)
{
    const cnb_kv *kv = s ? cnb_section_get(s, key) : NULL;
    if (!kv)
        return 0;
    char x, at[1100];
    int n = sscanf(kv->value, "%d%c%d", h, &x, w);
    if (n == 1)
        *w = *h;
    if (!((n == 1 || (n == 3 && x == 'x')) && *h > 0 && *w > 0))
        return cnb_error("%s: data.%s = '%s': expected a size, N or HxW, above 0 (for "
                         "example 227 or 24x24)", cnb_conf_where(c, s, kv, at, sizeof at), key,
                         kv->value);
    return 0;
}

/* The comma-separated values of setting `key` of [section] (sweep, select), set at `at`:
 * trimmed, none twice, at least one; a [train] setting's each a value it takes. Into
 * values[*n..], each strdup'ed, at most `max`. */
static int parse_values(const cnb_experiment *e, const char *section, const char *at,
                        const char *key, const char *list, char **values, int *n, int max)
{
    char *copy = strdup(list), *items[CNB_MAX_AXIS_VALUES];
    if (!copy)
        return CNB_ENOMEM;
    int m = split_list(copy, ',', items, max < CNB_MAX_AXIS_VALUES ? max : CNB_MAX_AXIS_VALUES);
    int rc = m ? 0 : cnb_error("%s: [%s] %s has no values; write a comma-separated list", at,
                               section, key);
    for (int k = 0; k < m && rc == 0; k++) {
        cnb_train_cfg t = e->train;
        int batch = e->batch;
        int bad = strncmp(key, "train.", 6) == 0 ? apply_train_axis(key + 6, items[k], &t,
                                                                     &batch) : 0;
        for (int j = 0; j < k && rc == 0; j++)
            if (strcmp(items[j], items[k]) == 0)
                rc = cnb_error("%s: [%s] %s lists '%s' twice", at, section, key, items[k]);
        if (rc == 0 && bad)
            rc = bad == -1 ? cnb_error("%s: [%s] %s: only train.lr, momentum, weight_decay, "
                                       "epochs, batch, gamma, step_epochs, warmup and "
                                       "warmup_steps can be %s", at, section, key,
                                       strcmp(section, "sweep") == 0 ? "swept" : "selected")
                           : cnb_error("%s: [%s] %s value '%s' is out of range", at, section,
                                       key, items[k]);
        if (rc == 0 && !(values[(*n)++] = strdup(items[k])))
            rc = CNB_ENOMEM;
    }
    free(copy);
    return rc;
}

static int parse_sweep(cnb_experiment *e, const cnb_section *sw)
{
    const cnb_conf *c = &e->conf;
    for (int i = 0; sw && i < sw->n; i++) {
        const cnb_kv *kv = &sw->kv[i];
        char at[1100];
        cnb_conf_where(c, sw, kv, at, sizeof at);
        if (strcmp(kv->key, "only") == 0 || strcmp(kv->key, "exclude") == 0) {
            snprintf(strcmp(kv->key, "only") == 0 ? e->only : e->exclude, sizeof e->only, "%s",
                     kv->value);
            continue;
        }
        if (e->n_axes == CNB_MAX_AXES)
            return cnb_error("%s: at most %d sweep axes", at, CNB_MAX_AXES);
        cnb_axis *ax = &e->axes[e->n_axes++];
        snprintf(ax->name, sizeof ax->name, "%s", kv->key);
        snprintf(ax->where, sizeof ax->where, "%.*s", (int)sizeof ax->where - 1, at);
        int rc = parse_values(e, "sweep", at, kv->key, kv->value, ax->values, &ax->n,
                              CNB_MAX_AXIS_VALUES);
        if (rc)
            return rc;
        for (int k = 0; k < ax->n; k++) {
            char *end;
            if (strncmp(ax->name, "data.", 5) == 0 && strcmp(ax->name, "data.augment") != 0)
                return cnb_error("%s: [sweep] %s: of [data], only data.augment can be "
                                 "swept", at, ax->name);
            if (strcmp(ax->name, "data.augment") == 0 && parse_steps(ax->values[k]) < 0)
                return cnb_error("%s: [sweep] data.augment value '%s': expected none, or "
                                 "flip, crop and lighting joined by '+'", at,
                                 ax->values[k]);
            if (strcmp(ax->name, "seed") == 0 || strcmp(ax->name, "threads") == 0) {
                long v = strtol(ax->values[k], &end, 10);
                if (*end || end == ax->values[k] || v < (ax->name[0] == 's' ? 0 : 1))
                    return cnb_error("%s: [sweep] %s value '%s' is not a valid %s", at,
                                     ax->name, ax->values[k], ax->name);
            }
        }
    }
    return 0;
}

/* [select] seeds: a list of distinct seeds. */
static int parse_select_seeds(cnb_select *s, const cnb_kv *kv, const char *at)
{
    char copy[1024], *items[CNB_SELECT_MAX];
    snprintf(copy, sizeof copy, "%s", kv->value);
    s->n_seeds = split_list(copy, ',', items, CNB_SELECT_MAX);
    for (int k = 0; k < s->n_seeds; k++) {
        char *end;
        long v = strtol(items[k], &end, 10);
        if (*end || end == items[k] || v < 0)
            return cnb_error("%s: [select] seeds: '%s' is not a valid seed", at, items[k]);
        s->seeds[k] = (uint64_t)v;
        for (int j = 0; j < k; j++)
            if (s->seeds[j] == s->seeds[k])
                return cnb_error("%s: [select] seeds lists %s twice", at, items[k]);
    }
    return s->n_seeds ? 0 : cnb_error("%s: [select] seeds has no values", at);
}

/* [select] (select.h): one [train] setting and its candidates, by, seeds; the setting may
 * be set nowhere else, and the choice needs a validation split. */
static int parse_select(cnb_experiment *e)
{
    const cnb_conf *c = &e->conf;
    const cnb_section *sel = cnb_conf_section(c, "select");
    cnb_select *s = &e->select;
    static const char *const bys[] = {"validation_accuracy", "validation_loss", NULL};
    int by = 0;
    if (!sel)
        return 0;
    if (cnb_conf_choice(c, sel, "by", bys, &by))
        return CNB_EINVAL;
    s->by_loss = by == 1;
    for (int i = 0; i < sel->n; i++) {
        const cnb_kv *kv = &sel->kv[i];
        char at[1100];
        cnb_conf_where(c, sel, kv, at, sizeof at);
        if (strcmp(kv->key, "by") == 0)
            continue;
        if (strcmp(kv->key, "seeds") == 0) {
            if (parse_select_seeds(s, kv, at))
                return CNB_EINVAL;
            continue;
        }
        if (strncmp(kv->key, "train.", 6) != 0)
            return cnb_error("%s: [select] %s: only a [train] setting can be selected "
                             "(train.KEY = candidates); by and seeds say how", at, kv->key);
        if (s->key[0])
            return cnb_error("%s: [select] %s: one setting is selected at a time, and %s is "
                             "(%s)", at, kv->key, s->key, s->where);
        snprintf(s->key, sizeof s->key, "%s", kv->key);
        snprintf(s->where, sizeof s->where, "%s", at);
        int rc = parse_values(e, "select", at, kv->key, kv->value, s->values, &s->n,
                              CNB_SELECT_MAX);
        if (rc)
            return rc;
        if (s->n < 2)
            return cnb_error("%s: [select] %s needs two candidates or more to choose from", at,
                             kv->key);
    }
    if (!s->key[0])
        return cnb_error("%s:%d: [select] names no setting to choose; add one (train.lr = "
                         "0.01, 0.02, 0.05)", c->path, sel->line);
    if (!e->val_count && !e->val_fraction)
        return cnb_error("%s: [select] %s chooses on the validation split: set [data] "
                         "validation (0.1 holds out a tenth of the training images)", s->where,
                         s->key);
    for (int a = 0; a < e->n_axes; a++)
        if (strcmp(e->axes[a].name, s->key) == 0)
            return cnb_error("%s: [select] %s conflicts with [sweep] %s (%s): a setting is "
                             "either swept or selected; remove one", s->where, s->key, s->key,
                             e->axes[a].where);
    const cnb_section *tr = cnb_conf_section(c, "train");
    const cnb_kv *fixed = cnb_section_get(tr, s->key + 6);
    char at[1100];
    if (fixed)
        return cnb_error("%s: [select] %s conflicts with [train] %s = %s (%s): the selection "
                         "chooses it per variant; remove one", s->where, s->key, s->key + 6,
                         fixed->value, cnb_conf_where(c, tr, fixed, at, sizeof at));
    return 0;
}

/* [data] validation: a count of training images to hold out (a whole number) or a fraction
 * of them (written with a point or an exponent, below 1); 0 or absent holds out none. */
static int parse_validation(cnb_experiment *e, const cnb_section *data)
{
    const cnb_kv *kv = cnb_section_get(data, "validation");
    if (!kv)
        return 0;
    char *end, at[1100];
    errno = 0;
    double v = strtod(kv->value, &end);
    int fraction = strpbrk(kv->value, ".eE") != NULL;
    if (errno || end == kv->value || *end || !(v >= 0) || (fraction ? v >= 1 : v > 1e8))
        return cnb_error("%s: [data] validation = '%s': expected the training images to hold "
                         "out, a count (6000) or a fraction of them below 1 (0.1)",
                         cnb_conf_where(&e->conf, data, kv, at, sizeof at), kv->value);
    e->val_fraction = fraction ? v : 0.0;
    e->val_count = fraction ? 0 : (long)v;
    return 0;
}

/* The training images held out of a training split of n. */
static long holdout_of(const cnb_experiment *e, long n)
{
    return e->val_count ? e->val_count : (long)floor(e->val_fraction * (double)n + 0.5);
}

/* Image keys under a format that reads no image files: each one is refused, and so is
 * normalize = mean, which needs the images to measure. */
static int refuse_image_keys(const cnb_experiment *e, const cnb_section *data, int norm)
{
    static const char *const image_keys[] = {"train", "test", "root", "channels",
                                             "resize_mode", "stats_sample", "eval_crops",
                                             "on_bad_image", "loader_threads", "prefetch",
                                             "cache", "cache_build", NULL};
    const cnb_conf *c = &e->conf;
    char at[1100];
    for (int i = 0; data && image_keys[i]; i++) {
        const cnb_kv *kv = cnb_section_get(data, image_keys[i]);
        if (kv)
            return cnb_error("%s: [data] %s is a setting of image files; set format = "
                             "folder or list, or remove it",
                             cnb_conf_where(c, data, kv, at, sizeof at), image_keys[i]);
    }
    if (norm == 2)
        return cnb_error("%s: [data] normalize = mean is for image files (format = folder "
                         "or list); use dataset or none",
                         cnb_conf_key_where(c, data, "normalize", at, sizeof at));
    return 0;
}

/* The numbers and choices of the image reader and its loader; *mode is resize_mode's
 * index in modes, for parse_resize. */
static int parse_image_reader(cnb_experiment *e, const cnb_section *data,
                              const char *const *modes, int *mode)
{
    static const char *const bads[] = {"fail", "skip", NULL};
    const cnb_conf *c = &e->conf;
    char at[1100];
    long ch = 3, crops = 1, threads = e->loader_threads, ahead = e->prefetch, build = 0;
    int bad = 0;
    if (cnb_conf_int(c, data, "channels", 1, 3, &ch) ||
        cnb_conf_int(c, data, "eval_crops", 1, 10, &crops) ||
        cnb_conf_int(c, data, "loader_threads", 1, 256, &threads) ||
        cnb_conf_int(c, data, "prefetch", 1, 64, &ahead) ||
        cnb_conf_int(c, data, "cache_build", 0, 1, &build) ||
        cnb_conf_int(c, data, "stats_sample", 1, 100000000L, &e->stats_sample) ||
        cnb_conf_choice(c, data, "resize_mode", modes, mode) ||
        cnb_conf_choice(c, data, "on_bad_image", bads, &bad))
        return CNB_EINVAL;
    if (ch == 2)
        return cnb_error("%s: [data] channels = 2: give 3 (RGB) or 1 (grey)",
                         cnb_conf_key_where(c, data, "channels", at, sizeof at));
    if (crops != 1 && crops != 10)
        return cnb_error("%s: [data] eval_crops = %ld: give 1 (the centre crop) or 10 (the "
                         "corners and the centre, and their mirror images)",
                         cnb_conf_key_where(c, data, "eval_crops", at, sizeof at), crops);
    e->channels = (int)ch;
    e->eval_crops = (int)crops;
    e->loader_threads = (int)threads;
    e->prefetch = (int)ahead;
    e->skip_bad = bad == 1;
    e->cache_build = build != 0;
    if (build && !cnb_section_get(data, "cache"))
        return cnb_error("%s: [data] cache_build = 1 builds the packs of [data] cache; set "
                         "cache (cache = packs)",
                         cnb_conf_key_where(c, data, "cache_build", at, sizeof at));
    return 0;
}

/* [data] resize with resize_mode (modes[mode]): the reader resizes, so the size moves
 * from augment to e->resize. */
static int parse_resize(cnb_experiment *e, const cnb_section *data,
                        const char *const *modes, int mode)
{
    const cnb_conf *c = &e->conf;
    char at[1100];
    const cnb_kv *rs = cnb_section_get(data, "resize");
    e->resize.mode = !rs ? CNB_RESIZE_NONE : mode == 0 ? CNB_RESIZE_SHORTER
                                          : mode == 1 ? CNB_RESIZE_EXACT
                                                      : CNB_RESIZE_CENTER;
    e->resize.h = e->augment.resize_h, e->resize.w = e->augment.resize_w;
    e->augment.resize_h = e->augment.resize_w = 0; /* the reader resizes, not augment */
    if (rs && mode != 1 && e->resize.h != e->resize.w)
        return cnb_error("%s: [data] resize = %s with resize_mode = %s: give one number, the "
                         "shorter side (or resize_mode = exact for HxW)",
                         cnb_conf_where(c, data, rs, at, sizeof at), rs->value, modes[mode]);
    if (!rs && cnb_section_get(data, "resize_mode"))
        return cnb_error("%s: [data] resize_mode needs a resize (resize = 256)",
                         cnb_conf_key_where(c, data, "resize_mode", at, sizeof at));
    return 0;
}

/* The train, test, root and cache paths. */
static int parse_image_paths(cnb_experiment *e, const char *path, const cnb_section *data)
{
    const cnb_conf *c = &e->conf;
    char at[1100];
    /* paths: relative to dir, which defaults to the experiment file's folder */
    char base[PATH_MAX], tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(base, sizeof base, "%s", dirname(tmp));
    if (cnb_section_get(data, "dir"))
        resolve(base, sizeof base, path, cnb_section_get(data, "dir")->value);
    const char *keys[4] = {"train", "test", "root", "cache"};
    char *dst[4] = {e->train_path, e->test_path, e->root, e->cache};
    for (int i = 0; i < 4; i++) {
        const cnb_kv *kv = cnb_section_get(data, keys[i]);
        dst[i][0] = '\0';
        if (kv && kv->value[0] && i == 3) /* the cache is ours, not the data's: like model */
            resolve(dst[i], PATH_MAX, path, kv->value);
        else if (kv && kv->value[0] && join(dst[i], PATH_MAX, base, kv->value))
            return CNB_EINVAL;
    }
    for (int i = 0; i < 2; i++)
        if (!dst[i][0])
            return cnb_error("%s: [data] format = %s needs %s = the %s split's %s", c->path,
                             e->images == 1 ? "folder" : "list", keys[i], keys[i],
                             e->images == 1 ? "folder (one subfolder per class)"
                                            : "list file ('path label' lines)");
    if (e->root[0] && e->images != 2)
        return cnb_error("%s: [data] root is for format = list",
                         cnb_conf_key_where(c, data, "root", at, sizeof at));
    return 0;
}

/* Images of different sizes must reach the network at one size: by a crop, or by an
 * exact or centre resize. */
static int check_image_size(const cnb_experiment *e, const cnb_section *data)
{
    const cnb_conf *c = &e->conf;
    char at[1100];
    int steps = parse_steps(e->augment_steps);
    const cnb_kv *crop = cnb_section_get(data, "crop");
    if (crop && steps >= 0 && !(steps & STEP_CROP))
        return cnb_error("%s: [data] crop = %s with image files needs crop in data.augment "
                         "(random crops in training, the centre crop in evaluation)",
                         cnb_conf_where(c, data, crop, at, sizeof at), crop->value);
    if (e->resize.mode != CNB_RESIZE_EXACT && e->resize.mode != CNB_RESIZE_CENTER &&
        !(steps > 0 && (steps & STEP_CROP) && (crop || e->resize.mode != CNB_RESIZE_NONE)))
        return cnb_error("%s: image files of different sizes need one size for the network: "
                         "set [data] crop (with crop in augment), or resize with resize_mode "
                         "= exact or center", c->path);
    return 0;
}

/* The keys of image files ([data] format = folder | list); the rest of [data] is read
 * by the caller. A key of image files under another format is refused, and so is a
 * setting of theirs that cannot work. */
static int parse_images(cnb_experiment *e, const char *path, const cnb_section *data, int norm)
{
    static const char *const modes[] = {"shorter", "exact", "center", NULL};
    e->channels = 3;
    e->eval_crops = 1;
    e->loader_threads = 2; /* measured on 2 shared cores: one thread makes 250 AlexNet
                              samples/s from ~256x300 JPEGs while the 2-thread step
                              takes 13-34/s beside it; the second covers a slower disk
                              or larger photos */
    e->prefetch = 3;
    e->stats_sample = 500;
    if (!e->images)
        return refuse_image_keys(e, data, norm);
    int mode = 0;
    if (parse_image_reader(e, data, modes, &mode) || parse_resize(e, data, modes, mode) ||
        parse_image_paths(e, path, data))
        return CNB_EINVAL;
    return check_image_size(e, data);
}

/* Every section is known and holds only its own keys; [vars], [sweep], [select] and
 * [profile.NAME] have keys of their own, read by their parsers. */
static int check_sections(const cnb_conf *c)
{
    for (int i = 0; i < c->n; i++) {
        const cnb_section *s = &c->sec[i];
        const char *const *keys = strcmp(s->name, "experiment") == 0 ? experiment_keys
                                  : strcmp(s->name, "data") == 0     ? data_keys
                                  : strcmp(s->name, "train") == 0    ? train_keys
                                  : strcmp(s->name, "launcher") == 0 ? cnb_launcher_keys
                                                                     : NULL;
        if (strcmp(s->name, "vars") == 0 || strcmp(s->name, "sweep") == 0 ||
            strcmp(s->name, "select") == 0 || strncmp(s->name, "profile.", 8) == 0)
            continue; /* keys of their own: read below */
        char at[1100];
        if (!keys) { /* a section made by --set has line 0: name that --set */
            if (s->line > 0 || !s->n)
                snprintf(at, sizeof at, "%s:%d", c->path, s->line);
            else
                cnb_conf_where(c, s, &s->kv[0], at, sizeof at);
            return cnb_error("%s: unknown section [%s]; an experiment has [experiment], "
                             "[vars], [sweep], [select], [data], [train], [launcher] and "
                             "[profile.NAME]", at, s->name);
        }
        if (cnb_section_check_keys(c, s, keys))
            return CNB_EINVAL;
    }
    return 0;
}

/* The values an experiment file may leave out. */
static void set_defaults(cnb_experiment *e, const char *path)
{
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", path);
    snprintf(e->name, sizeof e->name, "%s", basename(base));
    char *dot = strrchr(e->name, '.');
    if (dot)
        *dot = '\0';
    snprintf(e->mode, sizeof e->mode, "train");
    snprintf(e->backend, sizeof e->backend, "%s", CNB_REFERENCE_BACKEND);
    snprintf(e->results, sizeof e->results, "results");
    e->threads = 1;
    e->seed = 1;
    snprintf(e->data_dir, sizeof e->data_dir, "%s", getenv("CNB_DATA_DIR") && *getenv("CNB_DATA_DIR")
                                                         ? getenv("CNB_DATA_DIR")
                                                         : CNB_DEFAULT_DATA_DIR);
    e->normalize = 1;
    e->batch = 64;
    e->train = (cnb_train_cfg){.epochs = 10, .lr = 0.05, .momentum = 0.9,
                               .weight_decay = 5e-4, .schedule = CNB_SCHEDULE_COSINE,
                               .step_epochs = 5, .gamma = 0.1, .train_eval_limit = 10000};
    snprintf(e->augment_steps, sizeof e->augment_steps, "none");
    e->augment.lighting_sigma = 0.1f;
}

/* [experiment]'s values; model (PATH_MAX) gets the model file as written. */
static int read_experiment(cnb_experiment *e, const cnb_section *ex, char *model)
{
    static const char *const modes[] = {"train", NULL};
    const cnb_conf *c = &e->conf;
    long threads = e->threads, seed = 1;
    int mode = 0;
    copy_str(ex, "name", e->name, sizeof e->name);
    copy_str(ex, "model", model, PATH_MAX);
    copy_str(ex, "backend", e->backend, sizeof e->backend);
    copy_str(ex, "results", e->results, sizeof e->results);
    copy_str(ex, "baseline", e->baseline, sizeof e->baseline);
    if (check_name(c, ex, e) || cnb_conf_choice(c, ex, "mode", modes, &mode) ||
        cnb_conf_int(c, ex, "threads", 1, 1024, &threads) ||
        cnb_conf_int(c, ex, "seed", 0, 2147483647L, &seed) ||
        cnb_conf_int(c, ex, "cell_timeout", 0, 100000000L, &e->cell_timeout))
        return CNB_EINVAL;
    snprintf(e->mode, sizeof e->mode, "%s", modes[mode]);
    e->threads = (int)threads;
    e->seed = (uint64_t)seed;
    return 0;
}

/* [data]'s values but those of image files and the IDX file names; *norm is
 * normalize's index (dataset, none, mean). */
static int read_data(cnb_experiment *e, const cnb_section *data, int *norm)
{
    static const char *const formats[] = {"idx", "cifar", "folder", "list", NULL};
    static const char *const lightings[] = {"dataset", "image", NULL};
    static const char *const norms[] = {"dataset", "none", "mean", NULL};
    const cnb_conf *c = &e->conf;
    long crop_pad = 0;
    int format = 0, lighting = 0;
    copy_str(data, "augment", e->augment_steps, sizeof e->augment_steps);
    copy_str(data, "dir", e->data_dir, sizeof e->data_dir);
    if (cnb_conf_int(c, data, "train_limit", 0, 100000000L, &e->train_limit) ||
        cnb_conf_int(c, data, "test_limit", 0, 100000000L, &e->test_limit) ||
        cnb_conf_choice(c, data, "normalize", norms, norm) ||
        cnb_conf_choice(c, data, "format", formats, &format) ||
        cnb_conf_choice(c, data, "lighting", lightings, &lighting) ||
        cnb_conf_int(c, data, "crop_pad", 0, 4096, &crop_pad) ||
        parse_hw(c, data, "resize", &e->augment.resize_h, &e->augment.resize_w) ||
        parse_hw(c, data, "crop", &e->augment.crop_h, &e->augment.crop_w))
        return CNB_EINVAL;
    e->normalize = *norm != 1;
    e->mean_only = *norm == 2;
    e->cifar = format == 1;
    e->images = format >= 2 ? format - 1 : 0;
    e->augment.crop_pad = (int)crop_pad;
    e->augment.lighting = lighting == 0 ? CNB_LIGHTING_DATASET : CNB_LIGHTING_IMAGE;
    return 0;
}

/* [train]'s values. */
static int read_train(cnb_experiment *e, const cnb_section *tr)
{
    static const char *const scheds[] = {"constant", "step", "cosine", NULL};
    const cnb_conf *c = &e->conf;
    long epochs = e->train.epochs, batch = e->batch, step = e->train.step_epochs;
    long tel = e->train.train_eval_limit, keep = 0, warmup = 0, every = 1;
    int sched = (int)e->train.schedule;
    if (cnb_conf_int(c, tr, "epochs", 1, 100000, &epochs) ||
        cnb_conf_int(c, tr, "batch", 1, 65536, &batch) ||
        cnb_conf_double(c, tr, "lr", 0.0, 100.0, &e->train.lr) ||
        cnb_conf_double(c, tr, "momentum", 0.0, 0.9999, &e->train.momentum) ||
        cnb_conf_double(c, tr, "weight_decay", 0.0, 1.0, &e->train.weight_decay) ||
        cnb_conf_choice(c, tr, "schedule", scheds, &sched) ||
        cnb_conf_int(c, tr, "step_epochs", 1, 100000, &step) ||
        cnb_conf_double(c, tr, "gamma", 0.0, 1.0, &e->train.gamma) ||
        cnb_conf_int(c, tr, "warmup", 0, 100000, &warmup) ||
        cnb_conf_int(c, tr, "warmup_steps", 0, 100000000L, &e->train.warmup_steps) ||
        cnb_conf_int(c, tr, "train_eval_limit", 0, 100000000L, &tel) ||
        cnb_conf_int(c, tr, "test_every", 1, 100000, &every) ||
        cnb_conf_int(c, tr, "keep_checkpoint", 0, 1, &keep))
        return CNB_EINVAL;
    e->batch = (int)batch;
    e->train.epochs = (int)epochs;
    e->train.step_epochs = (int)step;
    e->train.warmup_epochs = (int)warmup;
    e->train.schedule = (cnb_schedule)sched;
    e->train.seed = e->seed;
    e->train.train_eval_limit = tel;
    e->train.test_every = (int)every;
    e->keep_checkpoints = keep != 0;
    return 0;
}

/* data.lighting_sigma and data.augment's steps. */
static int read_augment(cnb_experiment *e, const cnb_section *data)
{
    const cnb_conf *c = &e->conf;
    if (data && cnb_section_get(data, "lighting_sigma")) {
        double sigma;
        if (cnb_conf_double(c, data, "lighting_sigma", 0.0, 10.0, &sigma))
            return CNB_EINVAL;
        e->augment.lighting_sigma = (float)sigma;
    }
    if (parse_steps(e->augment_steps) < 0) {
        char at[1100];
        return cnb_error("%s: data.augment = '%s': expected none, or flip, crop and lighting "
                         "joined by '+' (flip+crop+lighting)",
                         cnb_conf_key_where(c, data, "augment", at, sizeof at), e->augment_steps);
    }
    return 0;
}

/* The IDX files: [data]'s names (MNIST's by default) under the data folder. */
static int join_idx_files(cnb_experiment *e, const cnb_section *data)
{
    char ti[256] = "train-images-idx3-ubyte.gz", tl[256] = "train-labels-idx1-ubyte.gz";
    char vi[256] = "t10k-images-idx3-ubyte.gz", vl[256] = "t10k-labels-idx1-ubyte.gz";
    copy_str(data, "train_images", ti, sizeof ti);
    copy_str(data, "train_labels", tl, sizeof tl);
    copy_str(data, "test_images", vi, sizeof vi);
    copy_str(data, "test_labels", vl, sizeof vl);
    if (join(e->train_images, sizeof e->train_images, e->data_dir, ti) ||
        join(e->train_labels, sizeof e->train_labels, e->data_dir, tl) ||
        join(e->test_images, sizeof e->test_images, e->data_dir, vi) ||
        join(e->test_labels, sizeof e->test_labels, e->data_dir, vl))
        return CNB_EINVAL;
    return 0;
}

/* [vars], each named by where it was set. */
static int read_vars(cnb_experiment *e, const cnb_section *vars)
{
    for (int i = 0; vars && i < vars->n; i++) {
        char at[PATH_MAX + 64];
        cnb_conf_where(&e->conf, vars, &vars->kv[i], at, sizeof at);
        int rc = cnb_vars_set_at(&e->vars, vars->kv[i].key, vars->kv[i].value, at);
        if (rc)
            return rc;
    }
    return 0;
}

int cnb_experiment_load(cnb_experiment *e, const char *path, const char *profile,
                        char **sets, int n_sets)
{
    memset(e, 0, sizeof *e);
    int rc = cnb_conf_load(&e->conf, path);
    if (rc == 0 && profile && *profile) {
        snprintf(e->profile, sizeof e->profile, "%s", profile);
        rc = apply_profile(&e->conf, profile);
    }
    for (int i = 0; i < n_sets && rc == 0; i++)
        rc = cnb_conf_set(&e->conf, sets[i], NULL, 0);
    if (rc)
        return rc;
    const cnb_conf *c = &e->conf;
    if (check_sections(c))
        return CNB_EINVAL;
    cnb_launcher_cfg launcher; /* its values too: bad input is refused before any run */
    if (cnb_launcher_parse(c, &launcher))
        return CNB_EINVAL;
    const cnb_section *ex = cnb_conf_section(c, "experiment");
    const cnb_section *data = cnb_conf_section(c, "data");
    if (!ex || !cnb_section_get(ex, "model"))
        return cnb_error("%s: [experiment] needs 'model = path/to/model.ini'", c->path);
    set_defaults(e, path);
    char model[PATH_MAX] = "";
    int norm = 0;
    if (read_experiment(e, ex, model) || read_data(e, data, &norm) ||
        read_train(e, cnb_conf_section(c, "train")))
        return CNB_EINVAL;
    if ((rc = parse_images(e, path, data, norm)) || (rc = parse_validation(e, data)) ||
        (rc = read_augment(e, data)))
        return rc;
    resolve(e->model, sizeof e->model, path, model);
    char real[PATH_MAX];
    if (realpath(e->model, real)) /* one spelling, whatever the working folder */
        snprintf(e->model, sizeof e->model, "%s", real);
    if (join_idx_files(e, data))
        return CNB_EINVAL;
    if ((rc = read_vars(e, cnb_conf_section(c, "vars"))) ||
        (rc = parse_sweep(e, cnb_conf_section(c, "sweep"))))
        return rc;
    return parse_select(e);
}

void cnb_experiment_free(cnb_experiment *e)
{
    cnb_conf_free(&e->conf);
    cnb_vars_free(&e->vars);
    for (int a = 0; a < e->n_axes; a++)
        for (int k = 0; k < e->axes[a].n; k++)
            free(e->axes[a].values[k]);
    e->n_axes = 0;
    for (int k = 0; k < e->select.n; k++)
        free(e->select.values[k]);
    e->select.n = 0;
}

void cnb_experiment_dir(const cnb_experiment *e, char *buf, size_t len)
{
    if (e->profile[0]) /* a profile never overwrites the full experiment's results */
        snprintf(buf, len, "%s/%s-%s", e->results, e->name, e->profile);
    else
        snprintf(buf, len, "%s/%s", e->results, e->name);
}

/* ---- the grid ---------------------------------------------------------------------- */

static int is_run_axis(const char *name)
{
    return strcmp(name, "seed") == 0 || strcmp(name, "backend") == 0 ||
           strcmp(name, "threads") == 0;
}

/* The value of `name` in a cell (its axis value, else a fixed variable), for matching
 * "name=value" terms. */
static const char *cell_value(const cnb_experiment *e, const cnb_cell *c, const char *name)
{
    for (int a = 0; a < e->n_axes; a++)
        if (strcmp(e->axes[a].name, name) == 0)
            return c->axis_values[a];
    return cnb_vars_get(&c->vars, name);
}

static const char *where_of(const cnb_experiment *e, const char *axis, const char *section,
                            const char *key, char *buf, size_t len);

/* Does the cell match any of the ';'-separated combinations ("a=1 b=2; a=3") of [sweep]
 * `which` (only, exclude)? */
static int matches(const cnb_experiment *e, const cnb_cell *c, const char *which, int *err)
{
    const char *list = strcmp(which, "only") == 0 ? e->only : e->exclude;
    char at[1200];
    char copy[1024], *combos[64];
    snprintf(copy, sizeof copy, "%s", list);
    int n = split_list(copy, ';', combos, 64);
    for (int i = 0; i < n; i++) {
        int all = 1;
        for (char *save = NULL, *term = strtok_r(combos[i], " \t", &save); term;
             term = strtok_r(NULL, " \t", &save)) {
            char *eq = strchr(term, '=');
            if (!eq) {
                *err = cnb_error("%s: term '%s': expected name=value",
                                 where_of(e, NULL, "sweep", which, at, sizeof at), term);
                return 0;
            }
            *eq = '\0';
            const char *v = cell_value(e, c, term);
            if (!v) {
                *err = cnb_error("%s: names '%s', which is neither a sweep axis nor a "
                                 "variable", where_of(e, NULL, "sweep", which, at, sizeof at),
                                 term);
                return 0;
            }
            all &= strcmp(v, eq + 1) == 0;
        }
        if (all)
            return 1;
    }
    return 0;
}

/* "lr" for train.lr, "augment" for data.augment, a variable's own name. */
static const char *short_name(const char *name)
{
    return strncmp(name, "train.", 6) == 0 || strncmp(name, "data.", 5) == 0
               ? strchr(name, '.') + 1
               : name;
}

/* The cell's folder name: a selection cell's candidate, the swept variables, then seed,
 * backend and threads; only characters safe in a file name. */
static void make_id(const cnb_experiment *e, cnb_cell *c)
{
    size_t used = 0;
    if (c->candidate)
        used += (size_t)snprintf(c->id, sizeof c->id, "select-%s-%s_",
                                 short_name(e->select.key), c->candidate);
    for (int a = 0; a < e->n_axes && used < sizeof c->id; a++)
        if (!is_run_axis(e->axes[a].name))
            used += (size_t)snprintf(c->id + used, sizeof c->id - used, "%s-%s_",
                                     short_name(e->axes[a].name), c->axis_values[a]);
    if (used < sizeof c->id)
        snprintf(c->id + used, sizeof c->id - used, "seed%llu_%s_t%d",
                 (unsigned long long)c->seed, c->backend, c->threads);
    for (char *p = c->id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            *p = '_';
}

/* Sets every variable of `from` in `to`, with where it was set. */
static int add_vars(cnb_vars *to, const cnb_vars *from)
{
    int rc = 0;
    for (int i = 0; i < from->n && rc == 0; i++)
        rc = cnb_vars_set_at(to, from->names[i], from->values[i], from->where[i]);
    return rc;
}

static int make_cell(const cnb_experiment *e, const int *pick, cnb_cell *c)
{
    memset(c, 0, sizeof *c);
    c->seed = e->seed;
    c->threads = e->threads;
    c->train = e->train;
    c->batch = e->batch;
    snprintf(c->backend, sizeof c->backend, "%s", e->backend);
    snprintf(c->augment, sizeof c->augment, "%s", e->augment_steps);
    int rc = add_vars(&c->vars, &e->vars);
    size_t vl = 0;
    for (int a = 0; a < e->n_axes && rc == 0; a++) {
        const cnb_axis *ax = &e->axes[a];
        const char *v = ax->values[pick[a]];
        c->axis_values[a] = v;
        if (strncmp(ax->name, "train.", 6) == 0)
            apply_train_axis(ax->name + 6, v, &c->train, &c->batch); /* checked at load */
        else if (strcmp(ax->name, "seed") == 0)
            c->seed = strtoull(v, NULL, 10);
        else if (strcmp(ax->name, "threads") == 0)
            c->threads = atoi(v);
        else if (strcmp(ax->name, "backend") == 0)
            snprintf(c->backend, sizeof c->backend, "%s", v);
        else if (strcmp(ax->name, "data.augment") == 0)
            snprintf(c->augment, sizeof c->augment, "%s", v);
        else {
            char at[sizeof ax->where + 80];
            snprintf(at, sizeof at, "%s, [sweep] %s", ax->where, ax->name);
            rc = cnb_vars_set_at(&c->vars, ax->name, v, at);
        }
        if (strcmp(ax->name, "seed") != 0 && vl < sizeof c->variant)
            vl += (size_t)snprintf(c->variant + vl, sizeof c->variant - vl, "%s%s=%s",
                                   vl ? " " : "", ax->name, v);
    }
    if (!c->variant[0])
        snprintf(c->variant, sizeof c->variant, "%s", "all");
    make_id(e, c);
    return rc;
}

/* A selection cell: the variant's cell `of` on `seed`, at candidate k. */
static int make_candidate(const cnb_experiment *e, const cnb_cell *of, int k, uint64_t seed,
                          cnb_cell *c)
{
    *c = *of;
    memset(&c->vars, 0, sizeof c->vars);
    int rc = add_vars(&c->vars, &of->vars);
    c->seed = seed;
    c->candidate = e->select.values[k];
    c->waits = 0;
    apply_train_axis(e->select.key + 6, c->candidate, &c->train, &c->batch); /* checked */
    make_id(e, c);
    return rc;
}

/* [select]: the selection cells before the grid's (select.h), whose cells then wait. */
static int add_selection(const cnb_experiment *e, cnb_cell **cells, int *n)
{
    const cnb_select *s = &e->select;
    cnb_cell *grid = *cells;
    int n_grid = *n, n_seeds = s->n_seeds ? s->n_seeds : 1, variants = 0;
    const uint64_t *seeds = s->n_seeds ? s->seeds : &grid[0].seed; /* the grid's first */
    int *first = malloc((size_t)n_grid * sizeof *first); /* each variant's first cell */
    for (int i = 0; first && i < n_grid; i++) {
        int k = 0;
        while (k < variants && strcmp(grid[first[k]].variant, grid[i].variant) != 0)
            k++;
        if (k == variants)
            first[variants++] = i;
        grid[i].waits = 1;
    }
    size_t n_sel = (size_t)variants * (size_t)s->n * (size_t)n_seeds;
    cnb_cell *all = first ? calloc(n_sel + (size_t)n_grid, sizeof *all) : NULL;
    if (!all) {
        free(first);
        return CNB_ENOMEM;
    }
    int rc = 0, made = 0; /* a cell that fails counts too: its vars are freed with all */
    for (int v = 0; v < variants; v++)
        for (int k = 0; k < s->n; k++)
            for (int j = 0; j < n_seeds && rc == 0; j++)
                rc = make_candidate(e, &grid[first[v]], k, seeds[j], &all[made++]);
    memcpy(all + made, grid, (size_t)n_grid * sizeof *grid); /* the grid's vars move over */
    free(grid);
    free(first);
    *cells = all;
    *n = made + n_grid;
    return rc;
}

void cnb_cell_choose(const cnb_experiment *e, cnb_cell *c, const char *value, const char *how)
{
    apply_train_axis(e->select.key + 6, value, &c->train, &c->batch); /* a candidate: checked */
    c->waits = 0;
    snprintf(c->chosen, sizeof c->chosen, "%s", how);
}

int cnb_experiment_cells(const cnb_experiment *e, cnb_cell **cells, int *n)
{
    size_t total = 1;
    for (int a = 0; a < e->n_axes; a++)
        total *= (size_t)e->axes[a].n;
    if (total > 100000)
        return cnb_error("%s: the grid has %zu cells; restrict it with [sweep] only", e->conf.path,
                         total);
    *cells = calloc(total, sizeof **cells);
    *n = 0;
    if (!*cells)
        return CNB_ENOMEM;
    int pick[CNB_MAX_AXES] = {0}, rc = 0;
    for (size_t k = 0; k < total && rc == 0; k++) {
        /* odometer over the axes, the last axis fastest */
        size_t rest = k;
        for (int a = e->n_axes - 1; a >= 0; a--) {
            pick[a] = (int)(rest % (size_t)e->axes[a].n);
            rest /= (size_t)e->axes[a].n;
        }
        cnb_cell *c = &(*cells)[*n];
        if ((rc = make_cell(e, pick, c)) != 0) {
            cnb_vars_free(&c->vars); /* not counted in *n: cnb_cells_free would miss it */
            break;
        }
        int keep = (!e->only[0] || matches(e, c, "only", &rc)) &&
                   (!e->exclude[0] || !matches(e, c, "exclude", &rc));
        if (keep && rc == 0)
            (*n)++;
        else
            cnb_vars_free(&c->vars);
    }
    if (rc == 0 && *n == 0)
    {
        char at[1200];
        rc = cnb_error("%s: leaves no cell to run",
                       where_of(e, NULL, "sweep", e->only[0] ? "only" : "exclude", at,
                                sizeof at));
    }
    return rc == 0 && e->select.key[0] ? add_selection(e, cells, n) : rc;
}

void cnb_cells_free(cnb_cell *cells, int n)
{
    for (int i = 0; i < n; i++)
        cnb_vars_free(&cells[i].vars);
    free(cells);
}

/* ---- checking the grid before anything runs ------------------------------------------ */

#define MAX_PROBLEMS 32

/* The distinct errors found, each reported once at the end. */
typedef struct problems {
    char *msg[MAX_PROBLEMS];
    int n, more;
} problems;

static void problem(problems *p, const char *fmt, ...) CNB_PRINTF(2, 3);

static void problem(problems *p, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->msg[i], msg) == 0)
            return;
    if (p->n == MAX_PROBLEMS || !(p->msg[p->n] = strdup(msg)))
        p->more++;
    else
        p->n++;
}

/* Where a setting comes from: its sweep axis (`axis`, NULL for none), else section.key
 * ("exp.ini:7: [train] batch", "--set train.batch=9"), else the file (a default). */
static const char *where_of(const cnb_experiment *e, const char *axis, const char *section,
                            const char *key, char *buf, size_t len)
{
    for (int a = 0; axis && a < e->n_axes; a++)
        if (strcmp(e->axes[a].name, axis) == 0) {
            snprintf(buf, len, "%s: [sweep] %s", e->axes[a].where, axis);
            return buf;
        }
    const cnb_section *s = cnb_conf_section(&e->conf, section);
    const cnb_kv *kv = cnb_section_get(s, key);
    char at[1100];
    if (kv && kv->line > 0)
        snprintf(buf, len, "%s: [%s] %s", cnb_conf_where(&e->conf, s, kv, at, sizeof at),
                 section, key);
    else if (kv)
        snprintf(buf, len, "%s", cnb_conf_where(&e->conf, s, kv, at, sizeof at));
    else
        snprintf(buf, len, "%s: [%s] %s (the default)", e->conf.path, section, key);
    return buf;
}

/* The first sample whose label is `classes` or more (there is one). */
static int first_label_outside(const cnb_dataset *d, int classes)
{
    int i = 0;
    while (i < d->n - 1 && d->labels[i] < classes)
        i++;
    return i;
}

/* ---- image files ----------------------------------------------------------------------- */

/* Both packs of the [data] cache folder are there. */
static int packs_exist(const cnb_experiment *e)
{
    char path[PATH_MAX + 32];
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/%s.cnbpack", e->cache, t ? "test" : "train");
        if (access(path, R_OK) != 0)
            return 0;
    }
    return 1;
}

/* The train and test sets of an image-file experiment: the folders or lists, or the packs
 * of its cache folder (which must have been written with this experiment's resize and
 * channels); each cut to its limit. */
static int open_imagesets(const cnb_experiment *e, cnb_imageset *s, char *err, size_t errlen)
{
    memset(s, 0, 2 * sizeof *s);
    int rc = 0;
    if (e->cache[0] && (!e->cache_build || packs_exist(e))) {
        for (int t = 0; t < 2 && rc == 0; t++) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/%s.cnbpack", e->cache, t ? "test" : "train");
            if ((rc = cnb_imageset_pack_open(&s[t], path, err, errlen)))
                break;
            const cnb_resize_spec *r = &s[t].pack_resize;
            if (r->mode != e->resize.mode || r->h != e->resize.h ||
                (r->mode == CNB_RESIZE_EXACT && r->w != e->resize.w) ||
                s[t].pack_c != e->channels)
                rc = CNB_EINVAL,
                snprintf(err, errlen, "%.900s: written for another resize or channel count (%dx%dx%d) "
                         "than this experiment's; write it again with cnnbench convert",
                         path, s[t].pack_h, s[t].pack_w, s[t].pack_c);
        }
    } else if (e->images == 1) {
        int ignored = 0;
        rc = cnb_imageset_folder(&s[0], e->train_path, NULL, &ignored, err, errlen);
        if (rc == 0)
            rc = cnb_imageset_folder(&s[1], e->test_path, &s[0], &ignored, err, errlen);
    } else {
        const char *root = e->root[0] ? e->root : NULL;
        rc = cnb_imageset_list(&s[0], e->train_path, root, err, errlen);
        if (rc == 0)
            rc = cnb_imageset_list(&s[1], e->test_path, root, err, errlen);
    }
    if (rc == 0 && (cnb_imageset_limit(&s[0], e->train_limit) ||
                    cnb_imageset_limit(&s[1], e->test_limit)))
        rc = CNB_ENOMEM, snprintf(err, errlen, "out of memory");
    if (rc)
        cnb_imageset_free(&s[0]), cnb_imageset_free(&s[1]);
    return rc;
}

/* A dataset that gives the rest of the program the shape and labels of an image set (no
 * pixels: the input pipeline makes them): c, and h x w the smallest size after resize. */
static int image_shape(const cnb_experiment *e, const cnb_imageset *s, int classes,
                       cnb_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->labels = malloc((size_t)s->n * sizeof *d->labels);
    if (!d->labels)
        return CNB_ENOMEM;
    memcpy(d->labels, s->labels, (size_t)s->n * sizeof *d->labels);
    d->n = s->n;
    d->c = e->channels;
    cnb_resize_min(&e->resize, &d->h, &d->w);
    if (s->pack_h)
        d->h = s->pack_h, d->w = s->pack_w;
    int most = 0;
    for (int i = 0; i < s->n; i++)
        most = s->labels[i] > most ? s->labels[i] : most;
    d->classes = classes > most + 1 ? classes : most + 1;
    return 0;
}

/* check_split for image files: both sets listed (no image decoded) */
static int check_images(const cnb_experiment *e, cnb_dataset *train, cnb_dataset *test,
                        problems *p)
{
    char err[1024], at[1200];
    cnb_imageset s[2];
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (open_imagesets(e, s, err, sizeof err)) {
        problem(p, "%s (%s)", err, where_of(e, NULL, "data", e->cache[0] ? "cache" : "train",
                                            at, sizeof at));
        return 0;
    }
    int ok = image_shape(e, &s[0], s[0].classes, train) == 0 &&
             image_shape(e, &s[1], s[0].classes, test) == 0;
    cnb_imageset_free(&s[0]);
    cnb_imageset_free(&s[1]);
    if (!ok)
        problem(p, "out of memory for the labels of %s", e->train_path);
    return ok;
}

/* The data of one split, checked as the cells will load it; CIFAR-10 only by its files
 * (its records carry no header; the loader checks them). ok = 0 when unusable. */
static int check_split(const cnb_experiment *e, int train, cnb_dataset *d, problems *p)
{
    char err[1024], at[1200];
    long limit = train ? e->train_limit : e->test_limit;
    memset(d, 0, sizeof *d);
    if (e->cifar) {
        const char *const files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                     "data_batch_3.bin", "data_batch_4.bin",
                                     "data_batch_5.bin", "test_batch.bin"};
        char path[PATH_MAX + 64], gz[PATH_MAX + 68], missing[256] = "";
        for (int i = train ? 0 : 5; i < (train ? 5 : 6); i++) {
            snprintf(path, sizeof path, "%s/%s", e->data_dir, files[i]);
            snprintf(gz, sizeof gz, "%s.gz", path);
            if (access(path, R_OK) != 0 && access(gz, R_OK) != 0)
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                         missing[0] ? ", " : "", files[i]);
        }
        if (missing[0]) {
            problem(p, "%s: no %s (nor the same with .gz) for the CIFAR-10 %s split; set "
                    "[data] dir to the folder cifar-10-binary.tar.gz unpacks to (%s)",
                    e->data_dir, missing, train ? "train" : "test",
                    where_of(e, NULL, "data", "dir", at, sizeof at));
            return 0;
        }
        /* read whole, as a cell will: a damaged batch file or label is found now */
        if (cnb_cifar_load_split(d, e->data_dir, train ? "train" : "test", (size_t)limit, err,
                                 sizeof err) != 0) {
            problem(p, "%s (%s)", err, where_of(e, NULL, "data", "dir", at, sizeof at));
            return 0;
        }
        return 1;
    }
    if (cnb_idx_check(d, train ? e->train_images : e->test_images,
                      train ? e->train_labels : e->test_labels, (size_t)limit, err,
                      sizeof err) != 0) {
        problem(p, "%s (%s)", err, where_of(e, NULL, "data", "dir", at, sizeof at));
        return 0;
    }
    return 1;
}

/* What a model needs per sample and in all, for the memory estimate (bytes). */
typedef struct model_size {
    double params;      /* floats of parameters                                 */
    double per_sample;  /* floats of activations: input, every output            */
    double im2col;      /* floats of the largest convolution's columns, a sample */
} model_size;

static model_size size_of_model(const cnb_net *net)
{
    model_size m = {.params = (double)cnb_net_param_count(net),
                    .per_sample = (double)cnb_shape_size(net->input)};
    for (int i = 0; i < net->n; i++) {
        const cnb_net_layer *L = &net->layers[i];
        m.per_sample += (double)cnb_shape_size(L->out);
        if (L->layer->n_params && L->out.h * L->out.w > 1) /* a convolution: 2 K CKK OHOW */
            m.im2col = fmax(m.im2col, L->layer->flops / (2.0 * L->out.c));
    }
    return m;
}

#define PROCESS_MIB 48.0 /* the program, its libraries and plugins, measured: 30-45 MiB */

static double cell_mib(const model_size *m, const cnb_cell *c, const cnb_dataset *train,
                       const cnb_dataset *test, const cnb_experiment *e)
{
    (void)test;
    if (e->images) /* no pixels held: the batches queued ahead, and each thread's images */
        return (3.0 * m->params + 2.0 * m->per_sample * c->batch + m->im2col * c->threads +
                (double)e->prefetch * c->batch * train->c * train->h * train->w) * 4.0 / 1048576.0 +
               PROCESS_MIB + 16.0 * e->loader_threads;
    double floats = 3.0 * m->params                       /* w, dw, momentum          */
                    + 2.0 * m->per_sample * c->batch      /* y and dy of every layer  */
                    + m->im2col * c->threads              /* one workspace a thread   */
                    + (double)(train->n + test->n) * train->c * train->h * train->w;
    return floats * 4.0 / 1048576.0 + PROCESS_MIB;
}

/* The model file itself: said once, naming the key, rather than once per model. */
static int check_model_file(const cnb_experiment *e)
{
    char at[1200];
    struct stat st;
    int found = stat(e->model, &st) == 0;
    if (found && S_ISREG(st.st_mode))
        return 0;
    const cnb_section *ex = cnb_conf_section(&e->conf, "experiment");
    return cnb_error("%s: [experiment] model = %s: %s: %s; the path is relative to the "
                     "experiment file's folder",
                     cnb_conf_key_where(&e->conf, ex, "model", at, sizeof at),
                     cnb_section_get(ex, "model")->value, e->model,
                     found ? "not a file" : strerror(errno));
}

/* Every backend chain, once per spec, and once per thread count that it would not use (a
 * single-threaded backend given 2 would run on 1 while the run records 2). */
static void check_backends(const cnb_experiment *e, const cnb_cell *cells, int n,
                           cnb_registry *reg, problems *p)
{
    char at[1200], why[64];
    for (int i = 0; i < n; i++) {
        int seen = 0, seen_threads = 0;
        for (int k = 0; k < i; k++) {
            seen |= strcmp(cells[k].backend, cells[i].backend) == 0;
            seen_threads |= strcmp(cells[k].backend, cells[i].backend) == 0 &&
                            cells[k].threads == cells[i].threads;
        }
        if (!seen && cnb_backend_spec_check(reg, cells[i].backend,
                                            where_of(e, "backend", "experiment", "backend", at,
                                                     sizeof at)) != 0)
            problem(p, "%s", cnb_last_error());
        else if (!seen_threads &&
                 cnb_backend_threads_unused(cnb_backend_spec_max_threads(reg, cells[i].backend),
                                            cells[i].threads, why, sizeof why))
            problem(p, "%s: threads = %d, but backend %s %s: set threads = 1 or choose "
                    "another backend", where_of(e, "threads", "experiment", "threads", at,
                                                sizeof at), cells[i].threads, cells[i].backend,
                    why);
    }
}

/* The models of the cells: loaded once per distinct set of variables, at the first cell
 * with them (model_of); input and classes are 0 where the model failed. */
typedef struct cell_models {
    int *model_of, *firsts, n_firsts;
    cnb_shape *input;
    int *classes;
    model_size *size;
} cell_models;

static int same_vars(const cnb_vars *v, const cnb_vars *w)
{
    int same = w->n == v->n;
    for (int j = 0; same && j < v->n; j++)
        same = strcmp(w->names[j], v->names[j]) == 0 && strcmp(w->values[j], v->values[j]) == 0;
    return same;
}

static int load_models(const cnb_experiment *e, const cnb_cell *cells, int n, cnb_registry *reg,
                       cell_models *m, problems *p)
{
    size_t count = n > 0 ? (size_t)n : 1;
    m->model_of = calloc(count, sizeof *m->model_of);
    m->firsts = calloc(count, sizeof *m->firsts);
    m->input = calloc(count, sizeof *m->input);
    m->classes = calloc(count, sizeof *m->classes);
    m->size = calloc(count, sizeof *m->size);
    if (!m->model_of || !m->firsts || !m->input || !m->classes || !m->size)
        return CNB_ENOMEM;
    for (int i = 0; i < n; i++) {
        const cnb_vars *v = &cells[i].vars;
        int k = 0;
        while (k < m->n_firsts && !same_vars(v, &cells[m->firsts[k]].vars))
            k++;
        if (k < m->n_firsts) {
            m->model_of[i] = m->firsts[k];
            continue;
        }
        m->model_of[i] = m->firsts[m->n_firsts++] = i;
        cnb_conf model;
        cnb_net net;
        if (cnb_net_load(&net, &model, reg, e->model, v) == 0) {
            m->input[i] = net.input;
            m->classes[i] = net.classes;
            m->size[i] = size_of_model(&net);
        } else {
            problem(p, "%s", cnb_last_error());
        }
        cnb_net_free(&net);
        cnb_conf_free(&model);
    }
    return 0;
}

static void cell_models_free(cell_models *m)
{
    free(m->model_of);
    free(m->firsts);
    free(m->input);
    free(m->classes);
    free(m->size);
}

/* The data after resize and crop fits the model's input, and the crop fits the images. */
static void check_cell_input(const cnb_experiment *e, const cnb_cell *c, cnb_shape input,
                             const cnb_dataset *train, problems *p)
{
    char at[1200];
    int steps = parse_steps(c->augment);
    int ih = e->augment.resize_h ? e->augment.resize_h : train->h;
    int iw = e->augment.resize_w ? e->augment.resize_w : train->w;
    if ((steps & STEP_CROP) && e->augment.crop_h)
        ih = e->augment.crop_h, iw = e->augment.crop_w;
    const char *key = (steps & STEP_CROP) && e->augment.crop_h ? "crop"
                      : e->augment.resize_h                     ? "resize"
                                                                : NULL;
    if (key)
        where_of(e, NULL, "data", key, at, sizeof at);
    if (train->c != input.c || ih != input.h || iw != input.w)
        problem(p, "%s: the network sees %dx%dx%d (HxWxC: the data%s) but the model %s "
                "takes %dx%dx%d; set [data] resize or crop, or the model's [net]",
                key ? at : e->conf.path, ih, iw, train->c,
                e->augment.resize_h || (steps & STEP_CROP) ? " after resize and crop" : "",
                e->model, input.h, input.w, input.c);
    if (e->images && (steps & STEP_CROP) && e->augment.crop_h &&
        (e->augment.crop_h > train->h + 2 * e->augment.crop_pad ||
         e->augment.crop_w > train->w + 2 * e->augment.crop_pad))
        problem(p, "%s: a crop of %dx%d from images that can be as small as %dx%d after "
                "the resize (padded by %d); give a smaller crop or a larger resize",
                where_of(e, NULL, "data", "crop", at, sizeof at), e->augment.crop_h,
                e->augment.crop_w, train->h, train->w, e->augment.crop_pad);
}

/* The warm-up, eval crops, labels, validation split and batch fit one another. */
static void check_cell_training(const cnb_experiment *e, const cnb_cell *c, int classes,
                                const cnb_dataset *train, const cnb_dataset *test,
                                problems *p)
{
    char at[1200];
    if (c->train.warmup_epochs > c->train.epochs)
        problem(p, "%s: a warm-up of %d epochs is longer than the run's %d; shorten it",
                where_of(e, "train.warmup", "train", "warmup", at, sizeof at),
                c->train.warmup_epochs, c->train.epochs);
    if (c->train.warmup_epochs && c->train.warmup_steps) {
        char at2[1200];
        problem(p, "%s and %s both set the warm-up; give one, in epochs or in steps",
                where_of(e, "train.warmup", "train", "warmup", at, sizeof at),
                where_of(e, "train.warmup_steps", "train", "warmup_steps", at2, sizeof at2));
    }
    if (e->images && e->eval_crops > c->batch)
        problem(p, "%s: data.eval_crops = %d needs a batch of at least %d, not %d",
                where_of(e, "train.batch", "train", "batch", at, sizeof at),
                e->eval_crops, e->eval_crops, c->batch);
    const cnb_dataset *split[2] = {train, test};
    const char *labels[2] = {e->images ? e->train_path : e->train_labels,
                             e->images ? e->test_path : e->test_labels};
    for (int t = 0; t < 2; t++)
        if (split[t]->classes > classes) {
            int bad = first_label_outside(split[t], classes);
            problem(p, "%s: label %d (sample %d) is outside the model's %d classes (0 "
                    "to %d, [net] classes of %s); give the label file of this data set, "
                    "or a model with more classes",
                    e->cifar ? e->data_dir : labels[t], split[t]->labels[bad], bad + 1,
                    classes, classes - 1, e->model);
        }
    long held = holdout_of(e, train->n), kept = train->n - held;
    if (held >= train->n || (held == 0 && e->val_fraction > 0))
        problem(p, "%s: holds out %ld of the %d training images%s; %s",
                where_of(e, NULL, "data", "validation", at, sizeof at), held, train->n,
                e->train_limit ? " (data.train_limit)" : "",
                held ? "leave some to train on" : "give a larger fraction, or a count");
    else if (c->batch > kept)
        problem(p, "%s: a batch of %d is more than the %ld training images%s%s; lower the "
                "batch%s", where_of(e, "train.batch", "train", "batch", at, sizeof at),
                c->batch, kept, e->train_limit ? " (data.train_limit)" : "",
                held ? " left after data.validation" : "",
                e->train_limit ? " or raise train_limit" : "");
}

/* Says every problem found (quiet: whether errors were quiet before the check). */
static int report_problems(const cnb_experiment *e, problems *p, int quiet)
{
    cnb_error_quiet(quiet);
    for (int i = 0; i < p->n; i++) {
        cnb_error("%s", p->msg[i]);
        free(p->msg[i]);
    }
    if (p->more)
        cnb_error("%d more error%s not shown; fix the above and run again", p->more,
                  p->more == 1 ? "" : "s");
    if (p->n && !quiet)
        fprintf(stderr, "cnnbench: %s: nothing was run\n", e->conf.path);
    return p->n ? CNB_EINVAL : 0;
}

int cnb_experiment_validate(const cnb_experiment *e, const cnb_cell *cells, int n,
                            cnb_registry *reg, double *mib)
{
    int rc = check_model_file(e);
    if (rc)
        return rc;
    problems p = {.n = 0};
    int quiet = cnb_error_quiet(1);
    check_backends(e, cells, n, reg, &p);

    /* the data, each split read once, pixels not kept */
    cnb_dataset train, test;
    int data_ok;
    if (e->images) {
        data_ok = check_images(e, &train, &test, &p);
    } else {
        data_ok = check_split(e, 1, &train, &p);
        data_ok &= check_split(e, 0, &test, &p);
    }

    /* the model, once per distinct set of variables; then what each cell needs of it */
    cell_models models = {0};
    rc = load_models(e, cells, n, reg, &models, &p);
    for (int i = 0; i < n && rc == 0 && data_ok; i++) {
        int m = models.model_of[i];
        if (models.classes[m] == 0)
            continue; /* the model failed: said above */
        check_cell_input(e, &cells[i], models.input[m], &train, &p);
        check_cell_training(e, &cells[i], models.classes[m], &train, &test, &p);
        if (mib)
            mib[i] = cell_mib(&models.size[m], &cells[i], &train, &test, e);
    }
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    cell_models_free(&models);
    int bad = report_problems(e, &p, quiet);
    return rc ? rc : bad;
}

/* ---- running ----------------------------------------------------------------------- */

typedef struct run {
    const cnb_experiment *e;
    const cnb_cell *c;
    cnb_net *net;
    const char *dir;
    const char *label;
    cnb_epoch_stats *history;
    int n;
    char fingerprint[17];
    char *extra_meta;       /* more of meta.ini (image files), or NULL */
    struct cnb_feed *feed;  /* image files: for the count of skipped images */
    const cnb_dataset *val; /* the validation split (n = 0: none)                    */
    uint32_t val_crc;       /* CRC-32 of its indices in the training split (dataset.h) */
} run;

/* The next field of a CSV row, its comma first: the number, or empty when there is none
 * (no validation split). */
static void put_field(FILE *f, int present, double v)
{
    fputc(',', f);
    if (present)
        fprintf(f, "%.6f", v);
}

static int write_metrics(const run *r)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.csv", r->dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    /* test_loss, test_acc and gap are empty after an epoch the test split skipped
     * (test_every). ranks onwards: the compute/communication split of train_seconds (allreduce: the
     * time in MPI, waiting for the gradient sums; comm_share = allreduce / (compute +
     * allreduce)); bytes per step that each rank puts into the sum. The columns that may
     * be empty come last, so that readers which skip empty fields keep their places. */
    fprintf(a.f, "epoch,lr,train_loss,train_acc,train_eval_loss,train_eval_acc,test_loss,"
                 "test_acc,gap,train_seconds,eval_seconds,images_per_second,data_seconds,"
                 "ranks,compute_seconds,allreduce_seconds,comm_share,allreduce_bytes,"
                 "loader_images_per_thread_second,val_loss,val_acc\n");
    for (int i = 0; i < r->n; i++) {
        const cnb_epoch_stats *s = &r->history[i];
        double both = s->compute_seconds + s->allreduce_seconds;
        int tested = !isnan(s->test_loss); /* cnb_train_cfg.test_every */
        fprintf(a.f, "%d,%.6g,%.6f,%.6f,%.6f,%.6f", s->epoch, s->lr, s->train_loss,
                s->train_acc, s->train_eval_loss, s->train_eval_acc);
        put_field(a.f, tested, s->test_loss);
        put_field(a.f, tested, s->test_acc);
        put_field(a.f, tested, s->train_eval_acc - s->test_acc);
        fprintf(a.f, ",%.3f,%.3f,%.1f,%.3f,%d,%.3f,%.4f,%.4f,%.0f,", s->train_seconds,
                s->eval_seconds, s->images_per_second, s->data_seconds,
                s->ranks > 0 ? s->ranks : 1, s->compute_seconds, s->allreduce_seconds,
                both > 0 ? s->allreduce_seconds / both : 0.0, s->allreduce_bytes);
        if (isfinite(s->loader_rate)) /* empty without an input pipeline */
            fprintf(a.f, "%.1f", s->loader_rate);
        put_field(a.f, r->val->n > 0, s->val_loss);
        put_field(a.f, r->val->n > 0, s->val_acc);
        fputc('\n', a.f);
    }
    return cnb_atomic_commit(&a);
}

/* A checkpoint holds the history as raw records: a change to cnb_epoch_stats must bump
 * checkpoint.c's VERSION (and this size), so that an older checkpoint is refused, not
 * read misaligned. */
_Static_assert(sizeof(cnb_epoch_stats) == 152, "cnb_epoch_stats changed: bump VERSION in "
                                               "checkpoint.c, then this size");

static int on_epoch(const cnb_epoch_stats *s, void *user)
{
    run *r = user;
    int rc;
    cnb_epoch_stats *h = realloc(r->history, (size_t)(r->n + 1) * sizeof *h);
    if (!h)
        return CNB_ENOMEM;
    r->history = h;
    r->history[r->n++] = *s;
    s = &r->history[r->n - 1];
    r->history[r->n - 1].loader_rate = r->feed ? cnb_feed_rate(r->feed) : NAN;
    if (cnb_dist_rank() != 0)
        return 0; /* rank 0 speaks and writes for every rank */
    printf("%sepoch %2d/%d  lr %.4g  train loss %.4f acc %.4f  (eval %.4f)  ", r->label,
           s->epoch, r->c->train.epochs, s->lr, s->train_loss, s->train_acc, s->train_eval_acc);
    if (r->val->n)
        printf("val loss %.4f acc %.4f  ", s->val_loss, s->val_acc);
    printf("test loss %.4f acc %.4f  gap %+.4f  %.1f s (waited for data %.2f s, %.1f%%)  %.0f "
           "img/s", s->test_loss, s->test_acc, s->train_eval_acc - s->test_acc, s->train_seconds,
           s->data_seconds, 100.0 * s->data_seconds / s->train_seconds, s->images_per_second);
    if (r->feed)
        printf("  (loader %.0f img/s per thread)", s->loader_rate);
    if (r->feed && cnb_feed_skipped(r->feed))
        printf("  (%ld unreadable images left out)", cnb_feed_skipped(r->feed));
    printf("\n");
    if (s->ranks > 1)
        printf("%s          %d ranks: compute %.1f s, waiting for the gradient sums %.2f s "
               "(%.1f%% of the step)\n", r->label, s->ranks, s->compute_seconds,
               s->allreduce_seconds, 100.0 * s->allreduce_seconds /
               (s->compute_seconds + s->allreduce_seconds));
    fflush(stdout);
    if ((rc = write_metrics(r)) != 0)
        return rc;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" CNB_CHECKPOINT_FILE, r->dir);
    return cnb_checkpoint_save(path, r->net, r->fingerprint, s->epoch, r->history,
                               (size_t)r->n * sizeof *r->history);
}


/* The cell's settings with every default filled in: config.ini, and the fingerprint. */
static void write_resolved(FILE *f, const cnb_experiment *e, const cnb_cell *c)
{
    static const char *const sched[] = {"constant", "step", "cosine"};
    fprintf(f, "[experiment]\nname = %s\nmode = %s\nmodel = %s\nbackend = %s\nthreads = %d\n"
               "seed = %llu\nprofile = %s\n\n[vars]\n",
            e->name, e->mode, e->model, c->backend, c->threads, (unsigned long long)c->seed,
            e->profile[0] ? e->profile : "(none)");
    for (int i = 0; i < c->vars.n; i++)
        fprintf(f, "%s = %s\n", c->vars.names[i], c->vars.values[i]);
    const cnb_augment_cfg *a = &e->augment;
    static const char *const formats[] = {"idx", "folder", "list"};
    static const char *const resize_modes[] = {"none", "shorter", "exact", "center"};
    fprintf(f, "\n[data]\nformat = %s\n", e->cifar ? "cifar" : formats[e->images]);
    if (e->cifar)
        fprintf(f, "dir = %s\n", e->data_dir);
    else if (e->images)
        fprintf(f, "train = %s\ntest = %s\nroot = %s\ncache = %s\nchannels = %d\n"
                   "resize_mode = %s\nresize_images = %dx%d\nstats_sample = %ld\n"
                   "eval_crops = %d\non_bad_image = %s\nnormalize_mean_only = %d\n",
                e->train_path, e->test_path, e->root, e->cache, e->channels,
                resize_modes[e->resize.mode], e->resize.h, e->resize.w, e->stats_sample,
                e->eval_crops, e->skip_bad ? "skip" : "fail", e->mean_only);
    else
        fprintf(f, "train_images = %s\ntrain_labels = %s\ntest_images = %s\n"
                   "test_labels = %s\n", e->train_images, e->train_labels, e->test_images,
                e->test_labels);
    fprintf(f, "train_limit = %ld\ntest_limit = %ld\nnormalize = %s\nresize = %dx%d\n"
               "augment = %s\ncrop = %dx%d\ncrop_pad = %d\nlighting = %s\n"
               "lighting_sigma = %.9g\n",
            e->train_limit, e->test_limit, e->normalize ? "dataset" : "none", a->resize_h,
            a->resize_w, c->augment, a->crop_h, a->crop_w, a->crop_pad,
            a->lighting == CNB_LIGHTING_IMAGE ? "image" : "dataset", (double)a->lighting_sigma);
    if (e->val_count || e->val_fraction) /* only then: the fingerprints of runs without stay */
        fprintf(f, "validation = %.17g\nvalidation_stream = %d\n",
                e->val_count ? (double)e->val_count : e->val_fraction, CNB_STREAM_VALIDATION);
    fputc('\n', f);
    const cnb_train_cfg *t = &c->train;
    fprintf(f, "[train]\nepochs = %d\nbatch = %d\nlr = %.17g\nmomentum = %.17g\n"
               "weight_decay = %.17g\nschedule = %s\nstep_epochs = %d\ngamma = %.17g\n"
               "train_eval_limit = %ld\n",
            t->epochs, c->batch, t->lr, t->momentum, t->weight_decay, sched[t->schedule],
            t->step_epochs, t->gamma, t->train_eval_limit);
    if (t->warmup_epochs || t->warmup_steps) /* only then: the fingerprints without stay */
        fprintf(f, "warmup = %d\nwarmup_steps = %ld\n", t->warmup_epochs, t->warmup_steps);
    if (t->test_every > 1) /* only then: the fingerprints without stay */
        fprintf(f, "test_every = %d\n", t->test_every);
}

int cnb_cell_fingerprint(const cnb_experiment *e, const cnb_cell *c, char out[17])
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return CNB_ENOMEM;
    write_resolved(f, e, c);
    cnb_conf m; /* the model as parsed counts too; its comments and layout do not */
    if (cnb_conf_load(&m, e->model) == 0)
        for (int i = 0; i < m.n; i++) {
            fprintf(f, "[%s]\n", m.sec[i].name);
            for (int k = 0; k < m.sec[i].n; k++)
                fprintf(f, "%s=%s\n", m.sec[i].kv[k].key, m.sec[i].kv[k].value);
        }
    cnb_conf_free(&m); /* what a failed load had allocated too */
    fclose(f);
    /* The basis is one digit short of FNV's (CNB_FNV1A_BASIS), as it has always been here:
     * the finished cells of existing results folders are recognised by these values. */
    uint64_t h = cnb_fnv1a(1469598103934665603ull, text, len);
    free(text);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

static int write_config(const run *r)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.ini", r->dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    fprintf(a.f, "; the fully resolved settings of this run (defaults filled in)\n");
    write_resolved(a.f, r->e, r->c);
    fprintf(a.f, "\n; the model as built, ${vars} filled in\n");
    const cnb_conf *m = r->net->model;
    for (int i = 0; i < m->n; i++) {
        fprintf(a.f, "[model.%s]\n", m->sec[i].name);
        for (int k = 0; k < m->sec[i].n; k++)
            fprintf(a.f, "%s = %s\n", m->sec[i].kv[k].key, m->sec[i].kv[k].value);
    }
    return cnb_atomic_commit(&a);
}

static int write_meta(const run *r, const cnb_registry *reg, const cnb_dataset *train,
                      const cnb_dataset *test, const double *mean, const double *sd)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/meta.ini", r->dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    const cnb_experiment *e = r->e;
    const cnb_cell *c = r->c;
    const cnb_net *net = r->net;
    fprintf(a.f, "[run]\nexperiment = %s\nmodel = %s\ncell = %s\n", e->conf.path, e->model,
            c->id);
    fprintf(a.f, "\n[random]\n; every random choice comes from PCG32 stream (seed, id)\n"
                 "seed = %llu\ninit_stream = %d\nshuffle_stream = %d\nlayer_streams = %d + "
                 "layer index\n",
            (unsigned long long)c->seed, CNB_STREAM_INIT, CNB_STREAM_SHUFFLE, CNB_STREAM_LAYER);
    if (c->chosen[0])
        fprintf(a.f, "\n[select]\n; chosen for this variant on the validation split before it "
                     "ran (selection.csv has every candidate)\nchosen = %s\n", c->chosen);
    else if (c->candidate)
        fprintf(a.f, "\n[select]\ncandidate = %s = %s\n", e->select.key, c->candidate);
    char runs[512];
    cnb_net_fused_runs(net, runs, sizeof runs);
    fprintf(a.f, "\n[backend]\nspec = %s\nthreads = %d\nnative_layouts = %s\nfusion = %s\n"
                 "; runs of layers done by one kernel each (cnnbench/backend.h)\n"
                 "fused_runs = %s\n", c->backend, c->threads, net->native_layouts ? "yes" : "no",
            net->fuse ? "yes" : "no", runs);
    for (int i = 0; i < net->n_chain; i++) { /* the spec's backends, then naive */
        const cnb_backend_desc *be = net->chain[i];
        const cnb_plugin *bp = cnb_registry_find(reg, CNB_PLUGIN_BACKEND, be->hdr.name);
        fprintf(a.f, "%s = %s abi %u.%u, %s; %s\n", be->hdr.name, be->hdr.version,
                be->hdr.abi_major, be->hdr.abi_minor, bp ? bp->path : "?",
                be->info ? be->info(net->chain_state[i]) : "");
    }
    fprintf(a.f, "\n[layers]\n; layer = plugin version abi, backend that ran its kernels, "
                 "layout of its output[, the fused run it is in: then the run's backend]\n");
    for (int i = 0; i < net->n; i++) {
        const cnb_net_layer *L = &net->layers[i];
        char in_run[256];
        if (L->fused_on)
            fprintf(a.f, "%s = %s %s %u.%u %s - fused %s\n", L->name, L->desc->hdr.name,
                    L->desc->hdr.version, L->desc->hdr.abi_major, L->desc->hdr.abi_minor,
                    L->fused_on, cnb_net_run_name(net, i, in_run, sizeof in_run));
        else
            fprintf(a.f, "%s = %s %s %u.%u %s%s %s\n", L->name, L->desc->hdr.name,
                    L->desc->hdr.version, L->desc->hdr.abi_major, L->desc->hdr.abi_minor,
                    L->ctx.ran_on ? L->ctx.ran_on : "-", L->ctx.mixed ? "+mixed" : "",
                    L->ctx.out.name);
    }
    int start, local = cnb_train_slice(c->batch, 0, cnb_dist_size(), &start);
    fprintf(a.f, "\n[parallel]\n; data-parallel ranks (mpirun): each takes a contiguous slice "
                 "of every batch of %d; gradients summed over the ranks every step\n"
                 "ranks = %d\nnodes = %d\nranks_on_this_node = %d\nslice = %d (rank 0)\n"
                 "gradient_bytes = %zu\nmpi = %s\n", c->batch, cnb_dist_size(),
            cnb_dist_nodes(), cnb_dist_local_size(), local,
            net->grad_floats * sizeof(float), cnb_dist_library());
    fprintf(a.f, "\n[data]\ntrain = %d images %dx%dx%d\ntest = %d images\n", train->n, train->c,
            train->h, train->w, test->n);
    if (r->val->n)
        fprintf(a.f, "; held out of the training split: the first images of a shuffle of its "
                     "indices\n; by PCG32 stream (seed, validation_stream); crc32 of the "
                     "indices (ascending, 32-bit little-endian)\nvalidation = %d images\n"
                     "validation_stream = %d\nvalidation_crc32 = %08x\n", r->val->n,
                CNB_STREAM_VALIDATION, r->val_crc);
    for (int ch = 0; ch < train->c; ch++)
        fprintf(a.f, "mean_%d = %.6f\nstd_%d = %.6f\n", ch, mean[ch], ch, sd[ch]);
    if (r->extra_meta)
        fputs(r->extra_meta, a.f);
    cnb_meta_write(a.f, reg);
    return cnb_atomic_commit(&a);
}

static int write_final(const run *r, double peak_mib)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/final.csv", r->dir);
    cnb_atomic a;
    if (cnb_atomic_open(&a, path))
        return CNB_EIO;
    const cnb_epoch_stats *last = &r->history[r->n - 1];
    double seconds = 0.0, images = 0.0, *val_acc = malloc((size_t)r->n * sizeof *val_acc);
    if (!val_acc) {
        fclose(a.f), remove(a.tmp);
        return CNB_ENOMEM;
    }
    for (int i = 0; i < r->n; i++) {
        val_acc[i] = r->history[i].val_acc;
        seconds += r->history[i].train_seconds;
        images += r->history[i].images_per_second * r->history[i].train_seconds;
    }
    int best = cnb_best_epoch(val_acc, r->n); /* chosen on validation, never on test */
    free(val_acc);
    fprintf(a.f, "epochs,test_acc,best_test_acc,test_loss,train_eval_acc,gap,"
                 "mean_epoch_seconds,images_per_second,peak_rss_mib,val_acc,val_loss,"
                 "best_epoch\n");
    fprintf(a.f, "%d,%.6f", r->n, last->test_acc);
    put_field(a.f, best >= 0, best >= 0 ? r->history[best].test_acc : 0.0);
    fprintf(a.f, ",%.6f,%.6f,%.6f,%.3f,%.1f,%.1f", last->test_loss, last->train_eval_acc,
            last->train_eval_acc - last->test_acc, seconds / r->n, images / seconds,
            peak_mib); /* both over every epoch */
    put_field(a.f, r->val->n > 0, last->val_acc);
    put_field(a.f, r->val->n > 0, last->val_loss);
    fprintf(a.f, best >= 0 ? ",%d\n" : ",\n", best + 1);
    return cnb_atomic_commit(&a);
}

/* What a cell of image files holds beyond the datasets' shapes. */
typedef struct image_run {
    cnb_imageset set[2];
    cnb_imageset val;          /* held out of set[0] (n = 0: none) */
    cnb_feed *feed;
    double mean[CNB_AUGMENT_MAX_C], std[CNB_AUGMENT_MAX_C];
    double cov[CNB_AUGMENT_MAX_C * CNB_AUGMENT_MAX_C];
    cnb_pca pca;
    int used;                  /* images the statistics were taken over */
    char *meta;                /* the [images] section of meta.ini */
    size_t meta_len;
} image_run;

static void image_run_free(image_run *ir)
{
    cnb_feed_destroy(ir->feed);
    cnb_imageset_free(&ir->val);
    cnb_imageset_free(&ir->set[0]);
    cnb_imageset_free(&ir->set[1]);
    free(ir->meta);
    memset(ir, 0, sizeof *ir);
}

/* The cell's processing of image files: the training set's statistics over a seeded
 * sample (mean, std, the RGB covariance of lighting), the augmentation, the input
 * pipeline. Lighting's eigen data are those of the covariance of pixels in [0, 1], and
 * the shift is added in those units: the convention of fb.resnet.torch's ImageNet
 * eigval = {0.2175, 0.0188, 0.0045} (Caffe ports give 55.46, 4.794, 1.148: the same
 * times 255, for 0..255 pixels). Taken literally in 0..255 units the paper's formula
 * would shift by alpha * ~1e4 grey levels; here a sigma 0.1 draw moves pixels by ~2% of
 * their range (measured on the photo example: largest eigenvalue 0.16). */
static int setup_images(const cnb_experiment *e, const cnb_cell *c, image_run *ir,
                        cnb_augment *aug)
{
    char err[1024];
    int steps = parse_steps(c->augment), ch = e->channels;
    cnb_augment_cfg cfg = e->augment;
    int mh, mw;
    cnb_resize_min(&e->resize, &mh, &mw);
    if (ir->set[0].pack_h)
        mh = ir->set[0].pack_h, mw = ir->set[0].pack_w;
    cfg.flip = (steps & STEP_FLIP) != 0;
    if (!(steps & STEP_CROP))
        cfg.crop_h = cfg.crop_w = cfg.crop_pad = 0;
    else if (!cfg.crop_h)
        cfg.crop_h = mh, cfg.crop_w = mw;
    if (!(steps & STEP_LIGHTING))
        cfg.lighting = CNB_LIGHTING_NONE;
    double t0 = cnb_now();
    if (cnb_imageset_stats(&ir->set[0], &e->resize, ch, (int)e->stats_sample, c->seed,
                           e->skip_bad, ir->mean, ir->std, ir->cov, &ir->used, err, sizeof err))
        return cnb_error("%s (the statistics of the training set, [data] stats_sample)", err);
    double stats_seconds = cnb_now() - t0;
    if (e->normalize) {
        cfg.normalize = 1;
        for (int k = 0; k < ch; k++) {
            cfg.mean[k] = (float)ir->mean[k];
            cfg.std[k] = e->mean_only ? 1.0f : (float)ir->std[k];
        }
    }
    if (cfg.lighting == CNB_LIGHTING_DATASET &&
        cnb_pca_from_cov(&ir->pca, ir->cov, ch, 1.0, err, sizeof err))
        return cnb_error("%s: data.lighting = dataset: %s", e->conf.path, err);
    if (cnb_augment_init_images(aug, &cfg, ch, mh, mw, &ir->pca, err, sizeof err))
        return cnb_error("%s: %s", e->conf.path, err);
    cnb_feed_cfg fc = {.train = &ir->set[0], .test = &ir->set[1],
                       .val = ir->val.n ? &ir->val : NULL, .resize = e->resize,
                       .channels = ch, .aug = aug, .threads = e->loader_threads,
                       .depth = e->prefetch, .batch = c->batch, .seed = c->seed,
                       .skip_bad = e->skip_bad, .eval_crops = e->eval_crops};
    if (ir->set[0].pack_h) /* a pack holds its images resized already */
        fc.resize.mode = CNB_RESIZE_NONE;
    if (cnb_feed_create(&ir->feed, &fc, err, sizeof err))
        return cnb_error("%s: %s", e->conf.path, err);
    FILE *f = open_memstream(&ir->meta, &ir->meta_len);
    if (!f)
        return CNB_ENOMEM;
    fprintf(f, "\n[images]\n; the statistics come from the first stats_images of a shuffle of "
               "the training set\n; less its validation images, by PCG32 stream (seed, "
               "stats_stream), each image resized\n; as in training, not cropped\nsource = %s\n"
               "classes = %d\nstats_stream = %d\n"
               "stats_images = %d\nstats_seconds = %.2f\nloader_threads = %d\nprefetch = %d\n",
            e->cache[0] ? e->cache : e->train_path, ir->set[0].classes, CNB_STREAM_STATS,
            ir->used, stats_seconds, e->loader_threads, e->prefetch);
    for (int k = 0; k < ch; k++)
        fprintf(f, "pixel_mean_%d = %.6f\npixel_std_%d = %.6f\n", k, ir->mean[k], k,
                ir->std[k]);
    if (cfg.lighting == CNB_LIGHTING_DATASET) {
        fprintf(f, "; lighting: eigenvalues (ascending) of the covariance of the pixels in "
                   "[0, 1], and their eigenvectors\n");
        for (int k = 0; k < ch; k++) {
            fprintf(f, "lighting_eigenvalue_%d = %.6g\nlighting_eigenvector_%d =", k,
                    (double)ir->pca.vals[k], k);
            for (int i = 0; i < ch; i++)
                fprintf(f, " %.6f", (double)ir->pca.vecs[i * ch + k]);
            fprintf(f, "\n");
        }
    }
    fclose(f);
    return 0;
}

/* classes.csv: which class number is which folder, and how many images each split has. */
static int write_classes(const char *dir, const image_run *ir)
{
    cnb_atomic a;
    if (cnb_atomic_open_in(&a, dir, "classes.csv"))
        return CNB_EIO;
    fprintf(a.f, "label,name,train_images,test_images\n");
    for (int k = 0; k < ir->set[0].classes; k++) {
        fprintf(a.f, "%d,", k);
        cnb_csv_field(a.f, ir->set[0].class_names[k]);
        fprintf(a.f, ",%d,%d\n", ir->set[0].class_counts[k],
                k < ir->set[1].classes ? ir->set[1].class_counts[k] : 0);
    }
    return cnb_atomic_commit(&a);
}

int cnb_experiment_convert(const cnb_experiment *e)
{
    if (!e->images)
        return cnb_error("%s: convert needs an experiment of image files ([data] format = "
                         "folder or list)", e->conf.path);
    if (!e->cache[0])
        return cnb_error("%s: convert writes the packs into [data] cache; set it (cache = "
                         "packs, or --set data.cache=packs)", e->conf.path);
    if (e->resize.mode != CNB_RESIZE_EXACT && e->resize.mode != CNB_RESIZE_CENTER)
        return cnb_error("%s: a pack holds images of one size: set [data] resize_mode = center "
                         "(the shorter side to N, then the centre N x N) or exact",
                         e->conf.path);
    cnb_experiment files = *e;
    files.cache[0] = '\0'; /* read the files the packs are made from */
    char err[1024];
    cnb_imageset s[2];
    if (open_imagesets(&files, s, err, sizeof err))
        return cnb_error("%s (experiment %s, [data])", err, e->conf.path);
    int rc = cnb_mkdirs(e->cache);
    for (int t = 0; t < 2 && rc == 0; t++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s.cnbpack", e->cache, t ? "test" : "train");
        int written = 0;
        double t0 = cnb_now();
        rc = cnb_imageset_pack_write(&s[t], path, &e->resize, e->channels, e->skip_bad,
                                     &written, err, sizeof err);
        if (rc)
            cnb_error("%s", err);
        else
            printf("%s: %d of %d images (%s), %.1f s\n", path, written, s[t].n,
                   t ? "test" : "train", cnb_now() - t0);
    }
    cnb_imageset_free(&s[0]);
    cnb_imageset_free(&s[1]);
    return rc;
}

int cnb_experiment_cache_build(const cnb_experiment *e)
{
    if (!e->cache_build || packs_exist(e))
        return 0;
    char path[PATH_MAX + 32];
    int rc = cnb_mkdirs(e->cache), fd = -1;
    snprintf(path, sizeof path, "%s/.lock", e->cache);
    if (rc == 0 && (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0)
        rc = cnb_error("%s: cannot create: %s", path, strerror(errno));
    while (rc == 0 && flock(fd, LOCK_EX) != 0)
        if (errno != EINTR)
            rc = cnb_error("%s: cannot lock: %s", path, strerror(errno));
    if (rc == 0 && !packs_exist(e)) { /* not built meanwhile by another process */
        printf("%s: writing the packs of [data] cache once (cache_build = 1): %s\n",
               e->conf.path, e->cache);
        fflush(stdout);
        rc = cnb_experiment_convert(e);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int load_data(const cnb_experiment *e, cnb_dataset *train, cnb_dataset *test)
{
    char err[1024];
    if (e->cifar ? cnb_cifar_load_split(train, e->data_dir, "train", (size_t)e->train_limit, err,
                                        sizeof err) ||
                       cnb_cifar_load_split(test, e->data_dir, "test", (size_t)e->test_limit,
                                            err, sizeof err)
                 : cnb_idx_load(train, e->train_images, e->train_labels,
                                (size_t)e->train_limit, err, sizeof err) ||
                       cnb_idx_load(test, e->test_images, e->test_labels,
                                    (size_t)e->test_limit, err, sizeof err))
        return cnb_error("%s (experiment %s, [data])", err, e->conf.path);
    return 0;
}

/* The cell's data processing on the (normalised) training set: resize as the experiment
 * says, and the cell's steps. *on = 0 when there is nothing to do. */
static int make_augment(const cnb_experiment *e, const cnb_cell *c, const cnb_dataset *train,
                        cnb_augment *aug, int *on)
{
    int steps = parse_steps(c->augment); /* checked at load */
    cnb_augment_cfg cfg = e->augment;
    cfg.flip = (steps & STEP_FLIP) != 0;
    if (!(steps & STEP_CROP))
        cfg.crop_h = cfg.crop_w = cfg.crop_pad = 0;
    else if (!cfg.crop_h) /* translations within the padding, the image's own size */
        cfg.crop_h = cfg.resize_h ? cfg.resize_h : train->h,
        cfg.crop_w = cfg.resize_w ? cfg.resize_w : train->w;
    if (!(steps & STEP_LIGHTING))
        cfg.lighting = CNB_LIGHTING_NONE;
    *on = steps != 0 || cfg.resize_h != 0;
    char err[1024];
    if (*on && cnb_augment_init(aug, &cfg, train, err, sizeof err) != 0)
        return cnb_error("%s: %s", e->conf.path, err);
    return 0;
}

/* What one cell's run holds from loading the model to writing its results; freed by
 * cell_state_free whatever step failed. */
typedef struct cell_state {
    cnb_augment aug;
    int use_aug;
    cnb_conf model;
    cnb_net net;
    cnb_dataset train, test, val;
    run r;
    double mean[4], sd[4];
    cnb_train_cfg cfg;
    image_run ir;
    long held;  /* training images held out for validation */
    int lead;   /* the rank that writes */
    int local;  /* this rank's samples of each batch */
    char ckpt[PATH_MAX + 32];
} cell_state;

/* The data of a cell of image files: the sets, with the validation set held out of the
 * training set before anything reads it (so that its images are in neither the
 * statistics nor any epoch's order), and their input pipeline; the datasets give the
 * rest of the run only shapes and labels. */
static int cell_images(cell_state *s, const cnb_experiment *e, const cnb_cell *c)
{
    char err[1024];
    image_run *ir = &s->ir;
    int rc = open_imagesets(e, ir->set, err, sizeof err);
    if (rc) {
        cnb_error("%s (experiment %s, [data])", err, e->conf.path);
        return rc;
    }
    s->held = holdout_of(e, ir->set[0].n);
    if (s->held >= ir->set[0].n) /* checked before the run, unless a pack has fewer images */
        return cnb_error("%s: [data] validation holds out %ld of the %d training images of "
                         "%s; leave some to train on", e->conf.path, s->held, ir->set[0].n,
                         ir->set[0].source);
    if (s->held > 0 && cnb_imageset_holdout(&ir->set[0], (int)s->held, c->seed, &ir->val,
                                            &s->r.val_crc))
        return cnb_error_code(CNB_ENOMEM, "%s: out of memory holding out %ld validation "
                              "images", e->conf.path, s->held);
    int classes = ir->set[0].classes;
    if ((rc = image_shape(e, &ir->set[0], classes, &s->train)) ||
        (rc = image_shape(e, &ir->set[1], classes, &s->test)) ||
        (s->held > 0 && (rc = image_shape(e, &ir->val, classes, &s->val))) ||
        (rc = setup_images(e, c, ir, &s->aug)))
        return rc;
    s->use_aug = 1;
    s->cfg.feed = s->r.feed = ir->feed;
    s->r.extra_meta = ir->meta;
    for (int k = 0; k < s->train.c && k < 4; k++)
        s->mean[k] = ir->mean[k], s->sd[k] = e->mean_only ? 1.0 : ir->std[k];
    return 0;
}

/* The data of a cell of IDX or CIFAR files, in memory: the validation split held out,
 * then the channels normalized by the images trained on alone. */
static int cell_memory(cell_state *s, const cnb_experiment *e, const cnb_cell *c)
{
    int rc = load_data(e, &s->train, &s->test);
    if (rc)
        return rc;
    s->held = holdout_of(e, s->train.n);
    if (s->held > 0 && cnb_dataset_holdout(&s->train, (int)s->held, c->seed, &s->val,
                                           &s->r.val_crc))
        return cnb_error_code(CNB_ENOMEM, "%s: out of memory holding out %ld validation "
                              "images", e->conf.path, s->held);
    if (e->normalize && s->train.c <= 4) {
        cnb_dataset_channel_stats(&s->train, s->mean, s->sd); /* of the images trained on alone */
        cnb_dataset_normalize(&s->train, s->mean, s->sd);
        cnb_dataset_normalize(&s->val, s->mean, s->sd);
        cnb_dataset_normalize(&s->test, s->mean, s->sd);
    }
    return 0;
}

static int cell_data(cell_state *s, const cnb_experiment *e, const cnb_cell *c)
{
    int rc = e->images ? cell_images(s, e, c) : cell_memory(s, e, c);
    s->cfg.validation = s->held > 0 ? &s->val : NULL;
    return rc;
}

/* The data, after augment, fits the network's input and its classes. */
static int check_cell_fit(cell_state *s, const cnb_experiment *e, const cnb_cell *c)
{
    int rc;
    if (!e->images && (rc = make_augment(e, c, &s->train, &s->aug, &s->use_aug)) != 0)
        return rc;
    const cnb_dataset *train = &s->train, *test = &s->test;
    const cnb_net *net = &s->net;
    int ic = train->c, ih = train->h, iw = train->w;
    if (s->use_aug)
        cnb_augment_out_shape(&s->aug, &ic, &ih, &iw);
    s->cfg.augment = s->use_aug ? &s->aug : NULL;
    if (ic != net->input.c || ih != net->input.h || iw != net->input.w)
        return cnb_error("%s: the network sees %dx%dx%d (HxWxC: the data%s) but the model %s "
                         "takes %dx%dx%d; set [data] resize or crop, or the model's [net]",
                         e->conf.path, ih, iw, ic, s->use_aug ? " after resize and crop" : "",
                         e->model, net->input.h, net->input.w, net->input.c);
    if (train->classes > net->classes || test->classes > net->classes)
        return cnb_error("%s: labels reach class %d but the model has %d classes",
                         e->cifar                         ? e->data_dir
                         : train->classes > net->classes ? (e->images ? e->train_path
                                                                      : e->train_labels)
                         : e->images                     ? e->test_path
                                                          : e->test_labels,
                         (train->classes > net->classes ? train->classes : test->classes) - 1,
                         net->classes);
    return 0;
}

/* The network's weights and backend, then the run folder with the files written
 * before training. */
static int prepare_cell(cell_state *s, const cnb_experiment *e, const cnb_cell *c,
                        cnb_registry *reg, const char *dir)
{
    int rc = cnb_net_init_params(&s->net, c->seed);
    if (rc == 0 && c->batch < cnb_dist_size()) /* said alike by every rank */
        rc = cnb_error("%s: a batch of %d cannot be split over %d ranks; raise [train] batch "
                       "to at least the ranks, or run fewer (mpirun -np)", e->conf.path,
                       c->batch, cnb_dist_size());
    if (rc == 0)
        rc = cnb_net_bind(&s->net, c->backend, c->threads, s->local);
    if (rc == 0 && s->lead)
        rc = cnb_mkdirs(dir);
    if (rc == 0 && s->lead)
        rc = write_config(&s->r);
    if (rc == 0 && s->lead)
        rc = write_meta(&s->r, reg, &s->train, &s->test, s->mean, s->sd);
    if (rc == 0 && e->images && s->lead)
        rc = write_classes(dir, &s->ir);
    return rc;
}

/* A killed run of the same settings resumes after its last epoch. */
static int resume_cell(cell_state *s, const cnb_experiment *e, const cnb_cell *c)
{
    int rc = cnb_cell_fingerprint(e, c, s->r.fingerprint);
    if (rc)
        return rc;
    size_t bytes = 0;
    void *h = NULL;
    rc = cnb_checkpoint_load(s->ckpt, &s->net, s->r.fingerprint, &s->cfg.start_epoch, &h,
                             &bytes);
    s->r.history = h;
    s->r.n = (int)(bytes / sizeof *s->r.history);
    if (rc == 0 && s->cfg.start_epoch &&
        (bytes % sizeof *s->r.history != 0 || s->r.n != s->cfg.start_epoch)) {
        /* a history of another shape (an older cnnbench): its epochs cannot be told */
        cnb_log(CNB_LOG_WARN, NULL, "%s: its metrics do not fit this version; the cell "
                "starts afresh", s->ckpt);
        free(s->r.history);
        s->r.history = NULL, s->r.n = 0, s->cfg.start_epoch = 0;
        cnb_net_init_params(&s->net, c->seed);
    }
    for (int i = 0; rc == 0 && i < s->r.n; i++) /* for test_every: the best so far */
        if (s->r.history[i].val_acc > s->cfg.val_best)
            s->cfg.val_best = s->r.history[i].val_acc;
    if (rc == 0 && s->cfg.start_epoch && s->lead)
        printf("%sresumed from %s after epoch %d of %d\n", s->r.label, s->ckpt,
               s->cfg.start_epoch, c->train.epochs);
    return rc;
}

/* Every rank trains, or none: one that failed above (a file rank 0 could not write)
 * would leave the others waiting in the first sum for ever; and all resume from the
 * same epoch (all equal when sum^2 = ranks x sum of squares). rc is this rank's. */
static int ranks_agree(const cell_state *s, int rc)
{
    if (rc && cnb_dist_rank() > 0) /* its errors are not printed (main.c): say this one */
        fprintf(stderr, "cnnbench: rank %d: %s\n", cnb_dist_rank(), cnb_last_error());
    int start = s->cfg.start_epoch;
    double agree[3] = {rc != 0, start, (double)start * start};
    if (cnb_dist_size() > 1 && cnb_dist_sum(agree, 3) == 0 && rc == 0) {
        if (agree[0] > 0)
            rc = cnb_error("%.0f rank%s failed before training (each said why above)",
                           agree[0], agree[0] == 1 ? "" : "s");
        else if (agree[1] * agree[1] != cnb_dist_size() * agree[2])
            rc = cnb_error("%s: the ranks see checkpoints of different epochs (this one after "
                           "epoch %d); the results folder must be one every rank sees",
                           s->ckpt, start);
    }
    return rc;
}

/* Says what runs, then trains. */
static int train_cell(cell_state *s, const cnb_experiment *e, const cnb_cell *c,
                      const char *dir)
{
    char held_text[64];
    snprintf(held_text, sizeof held_text, "%ld validation / ", s->held);
    if (s->lead)
        printf("%srun %s: %s on %s, %d thread%s, seed %llu, %d train / %s%d test images, "
               "batch %d\n", s->r.label, dir, e->model, c->backend, c->threads,
               c->threads == 1 ? "" : "s", (unsigned long long)c->seed, s->train.n,
               s->held ? held_text : "", s->test.n, c->batch);
    if (s->lead && cnb_dist_size() > 1)
        printf("%s  data-parallel over %d ranks (%d node%s): %d samples of each batch a "
               "rank, gradients (%.1f MB) summed every step\n", s->r.label, cnb_dist_size(),
               cnb_dist_nodes(), cnb_dist_nodes() == 1 ? "" : "s", s->local,
               (double)s->net.grad_floats * sizeof(float) * 1e-6);
    fflush(stdout);
    return cnb_train(&s->net, &s->train, &s->test, &s->cfg, on_epoch, &s->r);
}

/* The trained cell's weights and final results (by the lead rank). */
static int finish_cell(cell_state *s, const cnb_experiment *e, const cnb_cell *c,
                       const char *dir)
{
    const run *r = &s->r;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/weights.cnbw", dir);
    double peak = cnb_peak_rss_mib(), seconds = 0.0;
    for (int i = 0; i < r->n; i++)
        seconds += r->history[i].train_seconds;
    int rc = cnb_net_save_weights(&s->net, path);
    if (rc == 0)
        rc = write_final(&s->r, peak);
    if (rc == 0 && !e->keep_checkpoints)
        remove(s->ckpt); /* the cell is finished: weights.cnbw holds what it learned */
    if (rc == 0)
        printf("%sdone: test accuracy %.4f after %d epochs; %.1f s per training epoch "
               "(%s, %d thread%s); peak memory %.0f MiB\n",
               r->label, r->history[r->n - 1].test_acc, r->n, seconds / r->n, c->backend,
               c->threads, c->threads == 1 ? "" : "s", peak);
    return rc;
}

static void cell_state_free(cell_state *s)
{
    free(s->r.history);
    image_run_free(&s->ir); /* the loader threads first: they read aug */
    cnb_augment_free(&s->aug);
    cnb_dataset_free(&s->train);
    cnb_dataset_free(&s->val);
    cnb_dataset_free(&s->test);
    cnb_net_free(&s->net);
    cnb_conf_free(&s->model);
}

int cnb_cell_run(const cnb_experiment *e, const cnb_cell *c, cnb_registry *reg,
                 const char *dir, int progress, const char *label)
{
    cell_state s = {.sd = {1, 1, 1, 1}, .cfg = c->train, .lead = cnb_dist_rank() == 0};
    s.r = (run){.e = e, .c = c, .net = &s.net, .dir = dir, .label = label ? label : "",
                .val = &s.val};
    int slice_start;
    s.local = cnb_train_slice(c->batch, cnb_dist_rank(), cnb_dist_size(), &slice_start);
    s.cfg.seed = c->seed;
    s.cfg.progress = progress && s.lead;
    s.cfg.global_batch = c->batch;
    snprintf(s.ckpt, sizeof s.ckpt, "%s/" CNB_CHECKPOINT_FILE, dir);
    int rc = cnb_net_load(&s.net, &s.model, reg, e->model, &c->vars);
    if (rc == 0)
        rc = cell_data(&s, e, c);
    if (rc == 0)
        rc = check_cell_fit(&s, e, c);
    if (rc == 0)
        rc = prepare_cell(&s, e, c, reg, dir);
    if (rc == 0)
        rc = resume_cell(&s, e, c);
    rc = ranks_agree(&s, rc);
    if (rc == 0)
        rc = train_cell(&s, e, c, dir);
    if (rc == 0 && s.lead)
        rc = finish_cell(&s, e, c, dir);
    cell_state_free(&s);
    return rc;
}
