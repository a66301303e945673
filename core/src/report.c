/*
 * report.c - tables and plots of a sweep; see report.h.
 */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "cnnbench/plugin.h"
#include "conf.h"
#include "csv.h"
#include "errors.h"
#include "fsutil.h"
#include "log.h"
#include "select.h"
#include "stats.h"
#include "sweep.h"
#include "train.h"

#define PLOT_WIDTH 1000

typedef struct cell_result {
    char id[256], variant[512];
    unsigned long long seed;
    double test_acc, test_loss, train_acc, gap, epoch_seconds, ips;
    double val_acc, val_loss;  /* the last epoch's on the validation split; NAN: none    */
    int best_epoch;            /* 1-based, chosen on validation (cnb_best_epoch); 0: none */
    double best_acc;           /* the test accuracy at best_epoch; NAN: none            */
    int epochs;
    double *curve_test, *curve_train, *curve_val, *curve_val_loss; /* per epoch */
} cell_result;

typedef enum {
    M_TEST, M_BEST, M_TRAIN, M_GAP, M_LOSS, M_SECONDS, M_EPOCH1, M_VAL, M_VAL_LOSS, M_COUNT
} metric;
static const char *const metric_names[M_COUNT] = {"test_acc", "best_test_acc", "train_acc",
                                                  "gap", "test_loss", "epoch_seconds",
                                                  "epoch1_test_acc", "val_acc", "val_loss"};

typedef struct variant {
    char name[512];
    int cells[256];
    int n;
    cnb_summary m[M_COUNT];
} variant;

static double num(const char *s) { return s && *s ? strtod(s, NULL) : NAN; }

/* Column `col` of the reader's record as a number; NAN for a column the file does not have
 * (-1: a file of an older version) or leaves empty (a run without validation). */
static double value_at(const cnb_csv *c, int col)
{
    return col >= 0 ? num(cnb_csv_get(c, col)) : NAN;
}

int cnb_final_read(const char *cell_dir, const char *const *names, double *values, int n)
{
    char path[PATH_MAX + 400];
    snprintf(path, sizeof path, "%s/final.csv", cell_dir);
    cnb_csv c;
    int rc = cnb_csv_open(&c, path), got = rc ? rc : cnb_csv_next(&c);
    for (int k = 0; k < n && got == 1; k++)
        values[k] = value_at(&c, cnb_csv_find(&c, names[k]));
    rc = got == 1   ? 0
         : got == 0 ? cnb_error("%s: a header and no row; expected one", path)
                    : cnb_error("%s", c.err);
    cnb_csv_close(&c);
    return rc;
}

/* A cell's final.csv and metrics.csv, read by their columns' names. */
static int read_cell(const char *dir, cell_result *r)
{
    static const char *const finals[] = {"epochs", "test_acc", "test_loss", "train_eval_acc",
                                         "gap", "mean_epoch_seconds", "images_per_second"};
    static const char *const names[4] = {"test_acc", "train_eval_acc", "val_acc", "val_loss"};
    double **curves[4] = {&r->curve_test, &r->curve_train, &r->curve_val, &r->curve_val_loss};
    char path[PATH_MAX + 300];
    double v[7];
    snprintf(path, sizeof path, "%s/%s", dir, r->id);
    int rc = cnb_final_read(path, finals, v, 7);
    if (rc)
        return rc;
    r->epochs = (int)v[0];
    r->test_acc = v[1], r->test_loss = v[2], r->train_acc = v[3], r->gap = v[4];
    r->epoch_seconds = v[5], r->ips = v[6];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, r->id);
    cnb_csv c;
    int rows = 0, more = cnb_csv_open(&c, path) == 0;
    for (int k = 0; k < 4; k++)
        more &= (*curves[k] = calloc((size_t)r->epochs + 1, sizeof(double))) != NULL;
    while (more && rows < r->epochs && (more = cnb_csv_next(&c)) == 1) {
        for (int k = 0; k < 4; k++)
            (*curves[k])[rows] = value_at(&c, cnb_csv_find(&c, names[k]));
        rows++;
    }
    if (c.err[0])
        rc = cnb_error("%s", c.err);
    else if (rows != r->epochs || rows == 0)
        rc = cnb_error("%s: %d epoch rows, final.csv says %d", path, rows, r->epochs);
    cnb_csv_close(&c);
    if (rc)
        return rc;
    r->val_acc = r->curve_val[rows - 1];
    r->val_loss = r->curve_val_loss[rows - 1];
    int best = cnb_best_epoch(r->curve_val, rows);
    r->best_epoch = best + 1;
    r->best_acc = best >= 0 ? r->curve_test[best] : NAN;
    return 0;
}

static double metric_of(const cell_result *r, metric m)
{
    switch (m) {
    case M_TEST: return r->test_acc;
    case M_BEST: return r->best_acc;
    case M_TRAIN: return r->train_acc;
    case M_GAP: return r->gap;
    case M_LOSS: return r->test_loss;
    case M_SECONDS: return r->epoch_seconds;
    case M_EPOCH1: return r->epochs > 0 ? r->curve_test[0] : NAN; /* how fast it learns */
    case M_VAL: return r->val_acc;
    case M_VAL_LOSS: return r->val_loss;
    case M_COUNT: break;
    }
    return NAN;
}

static void values(const variant *v, const cell_result *cells, metric m, double *out)
{
    for (int i = 0; i < v->n; i++)
        out[i] = metric_of(&cells[v->cells[i]], m);
}

/* Does every "k=v" term of `baseline` appear in the variant's name? */
static int is_baseline(const char *name, const char *baseline)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", baseline);
    int any = 0;
    for (char *save = NULL, *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
        any = 1;
        size_t len = strlen(t);
        const char *hit = strstr(name, t);
        int whole = 0;
        while (hit && !whole) {
            whole = (hit == name || hit[-1] == ' ') && (hit[len] == '\0' || hit[len] == ' ');
            hit = whole ? hit : strstr(hit + 1, t);
        }
        if (!whole)
            return 0;
    }
    return any;
}

static void fmt_pm(char *buf, size_t len, const cnb_summary *s, int digits)
{
    if (isnan(s->lo))
        snprintf(buf, len, "%.*f", digits, s->mean);
    else
        snprintf(buf, len, "%.*f ± %.*f", digits, s->mean, digits, s->sd);
}

static void fmt_ci(char *buf, size_t len, double lo, double hi, int digits)
{
    if (isnan(lo))
        snprintf(buf, len, "n/a (one seed)");
    else
        snprintf(buf, len, "[%.*f, %.*f]", digits, lo, digits, hi);
}

#define MAX_PLOT_OUTPUTS 8

/* The script's text with each `set output 'NAME'` turned into NAME.tmp-PID; the NAMEs. */
static char *temp_outputs(const char *text, char names[][256], int *n)
{
    size_t cap = strlen(text) + 64 * MAX_PLOT_OUTPUTS + 32, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    *n = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line + 1) : strlen(line);
        char name[256];
        int used = 0;
        if (*n < MAX_PLOT_OUTPUTS && sscanf(line, "set output '%255[^']'%n", name, &used) == 1 &&
            used > 0) {
            snprintf(names[(*n)++], 256, "%s", name);
            len += (size_t)snprintf(out + len, cap - len, "set output '%s.tmp-%ld'%.*s", name,
                                    (long)getpid(), (int)(ll - (size_t)used), line + used);
        } else {
            memcpy(out + len, line, ll);
            len += ll;
        }
        line += ll;
    }
    len += (size_t)snprintf(out + len, cap - len, "\nunset output\n");
    return out;
}

/* gnuplot, run in `dir` on `script` (its stdin); what it said on stderr, joined into one
 * line, in `said`. Returns its wait status, or -1 with the error set. */
static int run_gnuplot(const char *dir, const char *script, char *said, size_t len)
{
    int fds[2];
    FILE *err = tmpfile();
    fflush(stdout);
    fflush(stderr);
    if (!err || pipe(fds) != 0) {
        cnb_error("gnuplot: pipe failed: %s", strerror(errno));
        if (err)
            fclose(err);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        cnb_error("gnuplot: fork failed: %s", strerror(errno));
        fclose(err);
        close(fds[0]), close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[1]);
        if (chdir(dir) != 0 || dup2(fds[0], STDIN_FILENO) < 0 ||
            dup2(fileno(err), STDERR_FILENO) < 0)
            cnb_child_exit(126);
        execlp("gnuplot", "gnuplot", (char *)NULL);
        cnb_child_exit(127);
    }
    close(fds[0]);
    size_t left = strlen(script);
    for (const char *p = script; left > 0;) { /* gnuplot's exit status tells of a short write */
        ssize_t w = write(fds[1], p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w, left -= (size_t)w;
    }
    close(fds[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            cnb_error("gnuplot: waitpid: %s", strerror(errno));
            fclose(err);
            return -1;
        }
    said[0] = '\0';
    rewind(err);
    for (char line[512]; fgets(line, sizeof line, err);) {
        char *t = line + strspn(line, " \t");
        t[strcspn(t, "\n")] = '\0';
        if (*t && strlen(said) + strlen(t) + 3 < len)
            snprintf(said + strlen(said), len - strlen(said), "%s%s", said[0] ? "; " : "", t);
    }
    fclose(err);
    return status;
}

/* Renames each drawn NAME.tmp-PID over NAME once it is non-empty and on disk; with rc
 * set (gnuplot failed), only removes them. */
static int commit_plots(const char *dir, char names[][256], int n, int rc)
{
    for (int i = 0; i < n; i++) {
        char tmp[PATH_MAX + 600], final[PATH_MAX + 300];
        snprintf(tmp, sizeof tmp, "%s/%s.tmp-%ld", dir, names[i], (long)getpid());
        snprintf(final, sizeof final, "%s/%s", dir, names[i]);
        int fd = rc == 0 ? open(tmp, O_RDONLY) : -1;
        struct stat st = {.st_size = -1};
        if (rc == 0 && (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0 || fsync(fd) != 0 ||
                        rename(tmp, final) != 0))
            rc = cnb_error("%s: gnuplot's output could not be written (%s); the previous "
                           "plot (if any) is kept", final,
                           fd >= 0 && st.st_size == 0 ? "empty file" : strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp); /* gone after a rename */
    }
    return rc;
}

/* Each plot is drawn under a temporary name and renamed over the old one only once
 * gnuplot has succeeded and the file is on disk: a failure (a full disk, say) leaves the
 * previous plot, never a truncated one under the real name. */
int cnb_gnuplot(const char *dir, const char *script)
{
    char path[PATH_MAX + 300], names[MAX_PLOT_OUTPUTS][256], said[600];
    snprintf(path, sizeof path, "%s/%s", dir, script);
    FILE *f = fopen(path, "r");
    if (!f)
        return cnb_error("%s: cannot read: %s", path, strerror(errno));
    char *text = NULL;
    size_t cap = 0;
    ssize_t got = getdelim(&text, &cap, '\0', f);
    fclose(f);
    int n = 0;
    char *run = got >= 0 ? temp_outputs(text, names, &n) : NULL;
    free(text);
    if (!run)
        return cnb_error("%s: cannot read: %s", path, strerror(errno));
    int status = run_gnuplot(dir, run, said, sizeof said), rc = 0;
    free(run);
    if (status == -1)
        rc = CNB_EIO;
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        rc = cnb_error("%s: gnuplot was not found; install the Debian package gnuplot-nox", path);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = cnb_error("%s: gnuplot failed (%s %d): %s", path,
                       WIFEXITED(status) ? "exit status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                       said[0] ? said : "it said nothing");
    else if (said[0]) /* warnings of a plot that was drawn */
        cnb_log(CNB_LOG_DEBUG, "gnuplot", "%s: %s", path, said);
    rc = commit_plots(dir, names, n, rc);
    if (rc == 0 && n)
        cnb_fsync_dir_of(path);
    return rc;
}

int cnb_plot_open(cnb_atomic *a, const char *dir, const char *name, const char *title,
                  const char *ylabel)
{
    char file[256];
    snprintf(file, sizeof file, "%s.gp", name);
    if (cnb_atomic_open_in(a, dir, file))
        return CNB_EIO;
    fprintf(a->f, "# redraw with: gnuplot %s.gp (in this folder)\n", name);
    fprintf(a->f, "set terminal pngcairo size %d,600 font ',10'\nset output '%s.png'\n",
            PLOT_WIDTH, name);
    fprintf(a->f, "set title '%s' noenhanced\nset ylabel '%s'\nset grid ytics\n", title, ylabel);
    return 0;
}

int cnb_plot_finish(cnb_atomic *a, const char *dir, const char *name)
{
    fprintf(a->f, "set terminal svg size %d,600 font ',10'\nset output '%s.svg'\nreplot\n",
            PLOT_WIDTH, name);
    char file[256];
    snprintf(file, sizeof file, "%s.gp", name);
    return cnb_atomic_commit(a) ? CNB_EIO : cnb_gnuplot(dir, file);
}

/* A plot's label for a variant: its name (at most 255 characters), then a space. */
typedef char plot_label[260];

static int count_terms(const char *name)
{
    int n = 0;
    for (const char *p = name; *p; p++)
        n += (p == name || p[-1] == ' ') && *p != ' ';
    return n;
}

/* Plot labels: the variant names without the axes whose values follow from the others
 * (train.lr tied to act by `only`, say), dropped last to first while the labels stay
 * distinct. `dropped` lists them, for the report to say so. */
static int plot_labels(const variant *v, int nv, plot_label *label, char *dropped, size_t dlen)
{
    plot_label *trial = malloc((size_t)nv * sizeof *trial);
    if (!trial)
        return CNB_ENOMEM;
    for (int i = 0; i < nv; i++)
        snprintf(label[i], sizeof label[i], "%s ", v[i].name);
    dropped[0] = '\0';
    int terms = count_terms(v[0].name); /* one per axis, in the grid's order */
    for (int i = 1; i < nv; i++)
        terms = count_terms(v[i].name) == terms ? terms : 0; /* not a grid's names */
    for (int t = terms - 1; t >= 0 && nv > 1; t--) {
        char key[128] = "";
        for (int i = 0; i < nv; i++) { /* label i without its term t */
            const char *p = label[i];
            for (int k = 0; k < t; k++)
                p = strchr(p, ' ') + 1;
            const char *next = strchr(p, ' ') + 1;
            if (i == 0)
                snprintf(key, sizeof key, "%.*s", (int)strcspn(p, "="), p);
            snprintf(trial[i], sizeof trial[i], "%.*s%s", (int)(p - label[i]), label[i], next);
        }
        int distinct = 1;
        for (int i = 0; i < nv && distinct; i++)
            for (int j = 0; j < i && distinct; j++)
                distinct = strcmp(trial[i], trial[j]) != 0;
        if (!distinct)
            continue;
        memcpy(label, trial, (size_t)nv * sizeof *trial);
        snprintf(dropped + strlen(dropped), dlen - strlen(dropped), "%s%s",
                 dropped[0] ? ", " : "", key);
    }
    for (int i = 0; i < nv; i++)
        label[i][strlen(label[i]) - 1] = '\0';
    free(trial);
    return 0;
}

/* Does any cell have a validation split? Its columns and curves show only then. */
static int any_validation(const cell_result *cells, int n)
{
    for (int i = 0; i < n; i++)
        if (!isnan(cells[i].val_acc))
            return 1;
    return 0;
}

/* Mean and sd over the variant's seeds of curve `which` (0 test, 1 train, 2 validation
 * accuracy, 3 validation loss) at epoch e (0-based), over the cells that reached it and
 * evaluated it (test_every leaves epochs without a test result). */
static cnb_summary curve_at(const variant *v, const cell_result *cells, int which, int e)
{
    double x[256];
    int n = 0;
    for (int k = 0; k < v->n; k++) {
        const cell_result *c = &cells[v->cells[k]];
        const double *curve[4] = {c->curve_test, c->curve_train, c->curve_val, c->curve_val_loss};
        if (e < c->epochs && !isnan(curve[which][e]))
            x[n++] = curve[which][e];
    }
    cnb_summary s;
    cnb_summarize(x, n, &s);
    return s;
}

static int plot_curves(const char *dir, const char *name, const variant *v, int nv, int base,
                       const cell_result *cells, const plot_label *label, int has_val)
{
    cnb_atomic a;
    int epochs = 0;
    for (int i = 0; i < nv; i++)
        for (int k = 0; k < v[i].n; k++)
            epochs = cells[v[i].cells[k]].epochs > epochs ? cells[v[i].cells[k]].epochs : epochs;
    if (cnb_atomic_open_in(&a, dir, "learning-curves.dat"))
        return CNB_EIO;
    fprintf(a.f, "# one block per variant (gnuplot index); mean and mean +/- sd over seeds\n");
    for (int i = 0; i < nv; i++) {
        fprintf(a.f, "# variant \"%s\"\n# epoch test_mean test_lo test_hi train_mean train_lo "
                     "train_hi val_mean val_lo val_hi (NaN: no validation split)\n", v[i].name);
        for (int e = 0; e < epochs; e++) {
            fprintf(a.f, "%d", e + 1);
            for (int which = 0; which < 3; which++) {
                cnb_summary m = curve_at(&v[i], cells, which, e);
                fprintf(a.f, " %.6f %.6f %.6f", m.mean, m.mean - m.sd, m.mean + m.sd);
            }
            fputc('\n', a.f);
        }
        fprintf(a.f, "\n\n");
    }
    char title[512];
    snprintf(title, sizeof title, "%s: accuracy per epoch, mean over seeds (band: +/- sd)",
             name);
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, dir, "learning-curves", title, "accuracy"))
        return CNB_EIO;
    fprintf(a.f, "set xlabel 'epoch'\nset xtics 1\nset key below noenhanced height 1\n"
                 "set style fill transparent solid 0.15 noborder\n"
                 "set datafile missing NaN\n" /* test_every: lines go on across */
                 "set xrange [1:%d]\n", epochs > 1 ? epochs : 2);
    /* the key's first entries say what solid, dashed (and dotted) mean; the baseline is
     * drawn thicker and named so */
    fprintf(a.f, "plot NaN with lines lc 'black' title 'test (solid)', \\\n"
                 "  NaN with lines dt 2 lc 'black' title 'train (dashed)', \\\n%s",
            has_val ? "  NaN with lines dt 3 lc 'black' title 'validation (dotted)', \\\n" : "");
    for (int i = 0; i < nv; i++) {
        double lw = i == base ? 2.5 : 1.0;
        fprintf(a.f, "  'learning-curves.dat' index %d using 1:3:4 with filledcurves lc %d "
                     "notitle, \\\n  '' index %d using 1:2 with linespoints lw %g pt 7 ps 0.6 "
                     "lc %d title '%s%s', \\\n  '' index %d using 1:5 with lines dt 2 lw %g "
                     "lc %d notitle",
                i, i + 1, i, lw, i + 1, label[i], i == base ? " (baseline)" : "", i, lw, i + 1);
        if (has_val)
            fprintf(a.f, ", \\\n  '' index %d using 1:8 with lines dt 3 lw %g lc %d notitle", i,
                    lw, i + 1);
        fprintf(a.f, "%s\n", i + 1 < nv ? ", \\" : "");
    }
    return cnb_plot_finish(&a, dir, "learning-curves");
}

/* One metric per variant: its 95% interval as an error bar around the mean, each seed's
 * value as a small open circle beside it, and the baseline's mean as a dashed line across.
 * Points, not bars: a bar's length reads as a quantity, so a bar chart needs its axis from
 * zero, which would flatten the differences that matter here. `lo`, `hi`: the
 * metric's possible range (the y axis never leaves it). */
static int plot_points(const char *dir, const char *file, const char *title,
                       const char *ylabel, const variant *v, int nv, int base, metric m,
                       const cell_result *cells, const plot_label *label, double lo,
                       double hi)
{
    cnb_atomic a;
    char dat[64];
    snprintf(dat, sizeof dat, "%s.dat", file);
    if (cnb_atomic_open_in(&a, dir, dat))
        return CNB_EIO;
    fprintf(a.f, "# index 0: index variant mean ci_lo ci_hi sd n (95%% interval: Student t "
                 "over seeds)\n");
    double ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < nv; i++) {
        const cnb_summary *s = &v[i].m[m];
        double l = isnan(s->lo) ? s->mean : s->lo, h = isnan(s->hi) ? s->mean : s->hi;
        fprintf(a.f, "%d \"%s\" %.6f %.6f %.6f %.6f %d\n", i, label[i], s->mean, l, h, s->sd,
                s->n);
        ymin = fmin(ymin, l), ymax = fmax(ymax, h);
    }
    fprintf(a.f, "\n\n# index 1: index value (one line per seed)\n");
    for (int i = 0; i < nv; i++)
        for (int k = 0; k < v[i].n; k++) {
            double x = metric_of(&cells[v[i].cells[k]], m);
            fprintf(a.f, "%d %.6f\n", i, x);
            ymin = fmin(ymin, x), ymax = fmax(ymax, x);
        }
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, dir, file, title, ylabel))
        return CNB_EIO;
    double pad = fmax(0.08 * (ymax - ymin), 1e-3);
    fprintf(a.f, "set xtics noenhanced rotate by -20\nset key below noenhanced\n"
                 "set xrange [-0.6:%d.6]\nset yrange [%g:%g]\n", nv - 1,
            fmax(lo, ymin - pad), fmin(hi, ymax + pad));
    fprintf(a.f, "set xtics (");
    for (int i = 0; i < nv; i++)
        fprintf(a.f, "%s\"%s%s\" %d", i ? ", " : "", label[i], i == base ? " (baseline)" : "",
                i);
    fprintf(a.f, ")\n");
    fprintf(a.f, "plot %.6f with lines dt 2 lc 'gray40' title 'baseline mean', \\\n"
                 "  '%s' index 1 using ($1 - 0.15):2 with points pt 6 ps 0.8 lc 'gray50' "
                 "title 'one seed', \\\n"
                 "  '' index 0 using 1:3:4:5 with yerrorbars lc rgb '#4477aa' lw 2 pt 7 "
                 "ps 1.2 title 'mean, 95%% interval'\n",
            v[base].m[m].mean, dat);
    return cnb_plot_finish(&a, dir, file);
}

/* The selection cells of a sweep with [select] (select.h), as the manifest lists them. */
typedef struct sel_row {
    char variant[512], value[128], state[16];
    double val[2]; /* the last epoch's validation accuracy and loss; NAN unless done */
} sel_row;

typedef struct selection {
    char key[64];
    int by_loss;
    sel_row *rows;
    int n;
} selection;

/* The distinct values of `field` (0 variant, 1 candidate value) among the rows of the
 * variant `of` (NULL: all), in their order, into out[0..max); the count. */
static int distinct(const selection *sel, int field, const char *of, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < sel->n; i++) {
        const sel_row *r = &sel->rows[i];
        const char *x = field ? r->value : r->variant;
        int k = 0;
        if (of && strcmp(r->variant, of) != 0)
            continue;
        while (k < n && strcmp(out[k], x) != 0)
            k++;
        if (k == n && n < max)
            out[n++] = x;
    }
    return n;
}

enum { NOT_YET = -2 }; /* variant_choice's *best while a candidate has not finished */

/* The candidates of variant `of`: their scores (mean validation accuracy and loss over their
 * seeds, NAN unless every seed is done) and the choice, by the rule the run chose by
 * (cnb_select_best): *best gets its index, -1 when no candidate has a score, NOT_YET
 * while one has not finished. state[k]: "done", or the state of a seed that is not. */
static int variant_choice(const selection *sel, const char *of, const char **values,
                          int nc, double score[2][CNB_SELECT_MAX], const char **state, int *ns,
                          int *best)
{
    int open = 0;
    *ns = 0;
    for (int i = 0; i < sel->n; i++) /* the seeds of one candidate */
        *ns += strcmp(sel->rows[i].variant, of) == 0 &&
               strcmp(sel->rows[i].value, values[0]) == 0;
    double *val[2] = {malloc((size_t)(nc * *ns) * sizeof(double)),
                      malloc((size_t)(nc * *ns) * sizeof(double))};
    if (!val[0] || !val[1]) {
        free(val[0]), free(val[1]);
        return CNB_ENOMEM;
    }
    for (int k = 0; k < nc; k++) {
        int s = 0;
        state[k] = "done";
        for (int i = 0; i < sel->n && s < *ns; i++) {
            const sel_row *r = &sel->rows[i];
            if (strcmp(r->variant, of) != 0 || strcmp(r->value, values[k]) != 0)
                continue;
            val[0][k * *ns + s] = r->val[0], val[1][k * *ns + s] = r->val[1];
            s++;
            if (strcmp(r->state, "done") != 0)
                state[k] = r->state;
        }
        open |= strcmp(state[k], "done") != 0 && strcmp(state[k], "diverged") != 0;
    }
    cnb_select_best(val[!sel->by_loss], nc, *ns, !sel->by_loss, score[!sel->by_loss]);
    *best = cnb_select_best(val[sel->by_loss], nc, *ns, sel->by_loss, score[sel->by_loss]);
    *best = open ? NOT_YET : *best;
    free(val[0]), free(val[1]);
    return 0;
}

/* Per variant, the table of its candidates and the choice: report.md (md) and
 * selection.csv. */
static int write_selection(const char *dir, const selection *sel, FILE *md)
{
    cnb_atomic csv;
    if (cnb_atomic_open_in(&csv, dir, "selection.csv"))
        return CNB_EIO;
    const char *variants[256], *values[CNB_SELECT_MAX], *state[CNB_SELECT_MAX];
    double score[2][CNB_SELECT_MAX];
    int nv = distinct(sel, 0, NULL, variants, 256), ns;
    fprintf(csv.f, "variant,key,value,seeds,val_acc,val_loss,state,chosen\n");
    fprintf(md, "## Selection of %s on validation\n\nPer variant, every candidate ran on the "
                "selection seeds; its score is the mean over them of the last epoch's %s (the "
                "%s wins; of equal ones, the first listed; a candidate with a seed that "
                "diverged is never chosen), and the variant's seeds then ran at the chosen "
                "value. The test split took no part.\n", sel->key,
            sel->by_loss ? "validation loss" : "validation accuracy",
            sel->by_loss ? "lowest" : "highest");
    for (int v = 0; v < nv; v++) {
        int nc = distinct(sel, 1, variants[v], values, CNB_SELECT_MAX);
        int best;
        char head[256];
        if (variant_choice(sel, variants[v], values, nc, score, state, &ns, &best)) {
            fclose(csv.f), remove(csv.tmp);
            return CNB_ENOMEM;
        }
        if (best >= 0)
            snprintf(head, sizeof head, "%s = %s", sel->key, values[best]);
        else
            snprintf(head, sizeof head, "%s", best == NOT_YET ? "not chosen yet (a candidate "
                     "has not finished)" : "nothing chosen (every candidate diverged)");
        fprintf(md, "\n### %s: %s\n\n| %s | seeds | val acc | val loss | |\n"
                    "|---:|---:|---:|---:|---|\n", variants[v], head, sel->key);
        for (int k = 0; k < nc; k++) {
            const char *note = k == best ? "**chosen**" : strcmp(state[k], "done") ? state[k] : "";
            if (isnan(score[0][k]))
                fprintf(md, "| %s | %d | – | – | %s |\n", values[k], ns, note);
            else
                fprintf(md, "| %s | %d | %.4f | %.4f | %s |\n", values[k], ns, score[0][k],
                        score[1][k], note);
            fprintf(csv.f, "\"%s\",%s,%s,%d,%.6f,%.6f,%s,%d\n", variants[v], sel->key,
                    values[k], ns, score[0][k], score[1][k], state[k], k == best);
        }
    }
    fputc('\n', md);
    return cnb_atomic_commit(&csv) ? CNB_EIO : 0;
}

/* A selection cell of the manifest with its validation results when done. */
static int add_sel_row(const char *dir, selection *sel, const cnb_cell_info *ci)
{
    static const char *const names[2] = {"val_acc", "val_loss"};
    sel_row *grown = realloc(sel->rows, (size_t)(sel->n + 1) * sizeof *grown);
    if (!grown)
        return CNB_ENOMEM;
    sel->rows = grown;
    sel_row *r = &grown[sel->n++];
    snprintf(r->variant, sizeof r->variant, "%s", ci->variant);
    snprintf(r->value, sizeof r->value, "%s", ci->candidate);
    snprintf(r->state, sizeof r->state, "%s", ci->state);
    r->val[0] = r->val[1] = NAN;
    char cell_dir[PATH_MAX + 300];
    snprintf(cell_dir, sizeof cell_dir, "%s/%s", dir, ci->id);
    return strcmp(ci->state, "done") == 0 ? cnb_final_read(cell_dir, names, r->val, 2) : 0;
}

/* A variant's runs on metric m, each with its seed as the unit that pairs it. */
static void runs_of(const variant *v, const cell_result *cells, metric m, cnb_unit_value *r,
                    char (*seed)[24])
{
    for (int i = 0; i < v->n; i++) {
        snprintf(seed[i], sizeof seed[i], "%llu", cells[v->cells[i]].seed);
        r[i] = (cnb_unit_value){.v = metric_of(&cells[v->cells[i]], m), .unit = seed[i]};
    }
}

/* Variant a against the baseline b on metric m: paired over seeds when each seed has one
 * finished run on each side (same seed: same initial weights and data order), Welch's
 * otherwise. Returns the test's name, or NULL when out of memory. */
static const char *against(const variant *a, const variant *b, const cell_result *cells,
                           metric m, cnb_comparison *c)
{
    cnb_unit_value x[256], y[256];
    char sx[256][24], sy[256][24];
    int partner[256], nx, ny;
    runs_of(a, cells, m, x, sx);
    runs_of(b, cells, m, y, sy);
    int paired = cnb_pair_units(x, a->n, y, b->n, partner) == NULL;
    if (cnb_compare_units(x, a->n, y, b->n, paired ? partner : NULL, c, &nx, &ny))
        return NULL;
    return paired ? "paired t" : "Welch";
}

/* One row of report.md's variants table and of variants.csv. */
static void write_variant_row(FILE *md, FILE *vc, const variant *v, int is_base, int has_val)
{
    char t[64], ci[64], va[64], vl[64], b[64], tr[64], g[64], l[64], s[64];
    fmt_pm(t, sizeof t, &v->m[M_TEST], 4);
    fmt_ci(ci, sizeof ci, v->m[M_TEST].lo, v->m[M_TEST].hi, 4);
    fmt_pm(va, sizeof va, &v->m[M_VAL], 4);
    fmt_pm(vl, sizeof vl, &v->m[M_VAL_LOSS], 4);
    fmt_pm(b, sizeof b, &v->m[M_BEST], 4);
    fmt_pm(tr, sizeof tr, &v->m[M_TRAIN], 4);
    fmt_pm(g, sizeof g, &v->m[M_GAP], 4);
    fmt_pm(l, sizeof l, &v->m[M_LOSS], 4);
    fmt_pm(s, sizeof s, &v->m[M_SECONDS], 1);
    fprintf(md, "| %s%s | %d | %s | %s |", v->name, is_base ? " (baseline)" : "", v->n, t, ci);
    if (has_val)
        fprintf(md, " %s | %s | %s |", va, vl, b);
    fprintf(md, " %s | %s | %s | %s |\n", tr, g, l, s);
    fprintf(vc, "\"%s\",%d", v->name, v->n);
    for (int m = 0; m < M_COUNT; m++)
        fprintf(vc, ",%.6f,%.6f,%.6f,%.6f", v->m[m].mean, v->m[m].sd, v->m[m].lo, v->m[m].hi);
    fputc('\n', vc);
}

/* The variants table of report.md, with what its columns mean, and variants.csv. */
static void write_variants(FILE *md, FILE *vc, const variant *v, int nv, int base, int has_val)
{
    fprintf(md, "## Variants (mean ± sd over seeds, 95%% interval of the mean)\n\n");
    fprintf(md, "| variant | seeds | final test acc | 95%% interval |%s train acc | train − "
                "test gap | test loss | s / epoch |\n|---|---:|---:|---|%s---:|---:|---:|---:|\n",
            has_val ? " val acc | val loss | test acc at best val epoch |" : "",
            has_val ? "---:|---:|---:|" : "");
    fprintf(vc, "variant,n");
    for (int m = 0; m < M_COUNT; m++)
        fprintf(vc, ",%s_mean,%s_sd,%s_ci_lo,%s_ci_hi", metric_names[m], metric_names[m],
                metric_names[m], metric_names[m]);
    fputc('\n', vc);
    for (int i = 0; i < nv; i++)
        write_variant_row(md, vc, &v[i], i == base, has_val);
    fprintf(md, "\nTest accuracy is measured on the whole test split after the last epoch; "
                "train accuracy in evaluation mode on a fixed subset of the training split, so "
                "the gap is not blurred by dropout or by weights moving during the epoch. The "
                "interval is mean ± t(0.975, n−1)·sd/√n.%s\n",
            has_val ? " Validation: the images held out of the training split ([data] "
                      "validation), the same for every variant of a seed; the best epoch is the "
                      "one of highest validation accuracy (the earliest of equal ones). The test "
                      "split chooses nothing." : "");
}

/* report.md's table of validation accuracy and loss per epoch, one column per variant. */
static void write_validation_epochs(FILE *md, const variant *v, int nv,
                                    const cell_result *cells, int n_cells)
{
    fprintf(md, "\n## Validation per epoch (accuracy / loss, mean over seeds)\n\n| epoch |");
    int epochs = 0;
    for (int i = 0; i < n_cells; i++)
        epochs = cells[i].epochs > epochs ? cells[i].epochs : epochs;
    for (int i = 0; i < nv; i++)
        fprintf(md, " %s |", v[i].name);
    fprintf(md, "\n|---:|");
    for (int i = 0; i < nv; i++)
        fprintf(md, "---:|");
    for (int e = 0; e < epochs; e++) {
        fprintf(md, "\n| %d |", e + 1);
        for (int i = 0; i < nv; i++)
            fprintf(md, " %.4f / %.4f |", curve_at(&v[i], cells, 2, e).mean,
                    curve_at(&v[i], cells, 3, e).mean);
    }
    fputc('\n', md);
}

/* Each variant against the baseline: report.md's comparison table and comparison.csv. */
static int write_comparison(FILE *md, FILE *cc, const variant *v, int nv, int base,
                             const cell_result *cells)
{
    fprintf(md, "\n## Against the baseline: %s\n\n", v[base].name);
    fprintf(md, "| variant | Δ final test acc | 95%% interval of Δ | p | Δ gap | verdict | "
                "test |\n|---|---:|---|---:|---:|---|---|\n");
    fprintf(cc, "variant,baseline,metric,diff,ci_lo,ci_hi,t,df,p,test\n");
    for (int i = 0; i < nv; i++) {
        if (i == base)
            continue;
        cnb_comparison c, cg;
        const char *test = against(&v[i], &v[base], cells, M_TEST, &c);
        if (!test || !against(&v[i], &v[base], cells, M_GAP, &cg))
            return cnb_error_code(CNB_ENOMEM, "out of memory comparing %s with the baseline",
                                  v[i].name);
        char ci[64], p[32];
        fmt_ci(ci, sizeof ci, c.lo, c.hi, 4);
        snprintf(p, sizeof p, isnan(c.p) ? "n/a" : c.p < 0.001 ? "< 0.001" : "%.3f", c.p);
        const char *verdict = isnan(c.lo)  ? "needs 2+ seeds per variant"
                              : c.lo > 0.0 ? "better (interval above 0)"
                              : c.hi < 0.0 ? "worse (interval below 0)"
                                           : "no clear difference (interval spans 0)";
        fprintf(md, "| %s | %+.4f | %s | %s | %+.4f | %s | %s |\n", v[i].name, c.diff, ci, p,
                cg.diff, verdict, test);
        fprintf(cc, "\"%s\",\"%s\",test_acc,%.6f,%.6f,%.6f,%.4f,%.2f,%.6f,%s\n", v[i].name,
                v[base].name, c.diff, c.lo, c.hi, c.t, c.df, c.p, test);
        fprintf(cc, "\"%s\",\"%s\",gap,%.6f,%.6f,%.6f,%.4f,%.2f,%.6f,%s\n", v[i].name,
                v[base].name, cg.diff, cg.lo, cg.hi, cg.t, cg.df, cg.p, test);
    }
    fprintf(md, "\nΔ = variant − baseline, two-sided tests over seeds: paired t on the "
                "differences between runs of the same seed (same initial weights and data "
                "order) when each seed has one run on each side, Welch's unequal-variance "
                "t otherwise; the test column says which. Not corrected for the number of "
                "comparisons: the claims experiment (experiments/claims.ini) is.\n\n");
    return 0;
}

/* report.md's plots section: the images and how to redraw them. */
static void write_plot_notes(FILE *md, const char *dir, const char *dropped)
{
    fprintf(md, "## Plots\n\n![learning curves](learning-curves.png)\n\n"
                "![final test accuracy](accuracy.png)\n\n![train-test gap](gap.png)\n\n");
    if (dropped[0])
        fprintf(md, "The plots' labels leave out %s: its values follow from the other axes "
                    "(the tables give each variant's full name).\n\n", dropped);
    fprintf(md, "Each plot has its data (.dat) and gnuplot script (.gp) beside it; `gnuplot "
                "X.gp` in this folder redraws X.png and X.svg, `cnnbench plot %s` redraws "
                "all.\n\n", dir);
}

/* One row per finished cell: report.md's cells table and cells.csv. */
static void write_cells(FILE *md, FILE *cmp, const cell_result *cells, int n_cells, int has_val)
{
    fprintf(md, "## Cells\n\n| cell | seed | epochs | final test acc |%s train acc | gap | "
                "test loss | s / epoch | img/s |\n|---|---:|---:|---:|%s---:|---:|---:|---:|"
                "---:|\n", has_val ? " val acc | val loss | best val epoch | test acc there |"
                                    : "", has_val ? "---:|---:|---:|---:|" : "");
    fprintf(cmp, "cell,variant,seed,epochs,test_acc,best_test_acc,train_acc,gap,test_loss,"
                 "epoch_seconds,images_per_second,epoch1_test_acc,val_acc,val_loss,"
                 "best_epoch\n");
    for (int i = 0; i < n_cells; i++) {
        const cell_result *r = &cells[i];
        fprintf(md, "| %s | %llu | %d | %.4f |", r->id, r->seed, r->epochs, r->test_acc);
        if (has_val)
            fprintf(md, " %.4f | %.4f | %d | %.4f |", r->val_acc, r->val_loss, r->best_epoch,
                    r->best_acc);
        fprintf(md, " %.4f | %+.4f | %.4f | %.1f | %.0f |\n", r->train_acc, r->gap,
                r->test_loss, r->epoch_seconds, r->ips);
        fprintf(cmp, "%s,\"%s\",%llu,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f,%.6f,%.6f,%.6f,%d\n",
                r->id, r->variant, r->seed, r->epochs, r->test_acc, r->best_acc, r->train_acc,
                r->gap, r->test_loss, r->epoch_seconds, r->ips, metric_of(r, M_EPOCH1),
                r->val_acc, r->val_loss, r->best_epoch);
    }
}

static int write_tables(const char *dir, const char *name, const char *info, const variant *v,
                        int nv, int base, const cell_result *cells, int n_cells,
                        const char *dropped, int has_val, const selection *sel)
{
    cnb_atomic md, vc, cc, cmp;
    if (cnb_atomic_open_in(&md, dir, "report.md"))
        return CNB_EIO;
    if (cnb_atomic_open_in(&vc, dir, "variants.csv") || cnb_atomic_open_in(&cc, dir, "comparison.csv") ||
        cnb_atomic_open_in(&cmp, dir, "cells.csv"))
        return CNB_EIO;
    fprintf(md.f, "# %s\n\n%s\n\n", name, info);
    if (sel->n && write_selection(dir, sel, md.f))
        return CNB_EIO;
    write_variants(md.f, vc.f, v, nv, base, has_val);
    if (has_val)
        write_validation_epochs(md.f, v, nv, cells, n_cells);
    int rc = write_comparison(md.f, cc.f, v, nv, base, cells);
    if (rc)
        return rc;
    write_plot_notes(md.f, dir, dropped);
    write_cells(md.f, cmp.f, cells, n_cells, has_val);
    rc = cnb_atomic_commit(&md);
    rc |= cnb_atomic_commit(&vc);
    rc |= cnb_atomic_commit(&cc);
    rc |= cnb_atomic_commit(&cmp);
    return rc ? CNB_EIO : 0;
}

/* What the manifest says of a sweep: its finished cells grouped into variants, its selection
   cells, and the cells without a result. */
typedef struct sweep_cells {
    cell_result *cells;
    int n;
    variant *v;
    int nv;
    selection sel;
    int pending;      /* cells still to run */
    int n_unfinished; /* cells that failed or diverged */
    char *unfinished; /* those cells, and why: a markdown table */
    size_t unfinished_len;
} sweep_cells;

/* Appends a finished cell of the manifest and reads its results. */
static int add_cell(const char *dir, sweep_cells *sc, const cnb_cell_info *ci)
{
    cell_result *grown = realloc(sc->cells, (size_t)(sc->n + 1) * sizeof *grown);
    if (!grown)
        return CNB_ENOMEM;
    sc->cells = grown;
    cell_result *r = &sc->cells[sc->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", ci->id);
    snprintf(r->variant, sizeof r->variant, "%s", ci->variant);
    r->seed = ci->seed;
    return read_cell(dir, r);
}

/* A cell of the manifest; one without a result goes to the table uf writes. */
static int read_manifest_cell(const char *dir, sweep_cells *sc, const cnb_cell_info *ci,
                              FILE *uf)
{
    if (ci->candidate[0]) /* a selection cell: its own tables */
        return add_sel_row(dir, &sc->sel, ci);
    if (strcmp(ci->state, "done") == 0)
        return add_cell(dir, sc, ci);
    int diverged = strcmp(ci->state, "diverged") == 0;
    sc->pending += !diverged; /* a diverged cell is finished */
    if (diverged || strcmp(ci->state, "failed") == 0)
        fprintf(uf, "%s| %s | %s | %s |\n",
                sc->n_unfinished++ ? "" : "\n\n| cell | state | why |\n|---|---|---|\n", ci->id,
                ci->state, ci->message);
    return 0;
}

static int read_manifest(const char *dir, sweep_cells *sc)
{
    cnb_cell_info *cells;
    int n, rc = cnb_results_cells(dir, &cells, &n);
    if (rc)
        return rc;
    FILE *uf = open_memstream(&sc->unfinished, &sc->unfinished_len);
    if (!uf)
        rc = CNB_ENOMEM;
    for (int i = 0; i < n && rc == 0; i++)
        rc = read_manifest_cell(dir, sc, &cells[i], uf);
    if (uf)
        fclose(uf);
    free(cells);
    return rc;
}

/* Groups the finished cells by variant, in grid order. */
static int group_variants(sweep_cells *sc)
{
    for (int i = 0; i < sc->n; i++) {
        int k = 0;
        while (k < sc->nv && strcmp(sc->v[k].name, sc->cells[i].variant) != 0)
            k++;
        if (k == sc->nv) {
            variant *grown = realloc(sc->v, (size_t)(sc->nv + 1) * sizeof *grown);
            if (!grown)
                return CNB_ENOMEM;
            sc->v = grown;
            memset(&sc->v[k], 0, sizeof sc->v[k]);
            snprintf(sc->v[k].name, sizeof sc->v[k].name, "%s", sc->cells[i].variant);
            sc->nv++;
        }
        if (sc->v[k].n < 256)
            sc->v[k].cells[sc->v[k].n++] = i;
    }
    return 0;
}

/* Summarises every metric of every variant; returns the baseline's index (0 if none names
   it). */
static int summarise_variants(sweep_cells *sc, const cnb_section *s)
{
    const cnb_kv *kv_base = cnb_section_get(s, "baseline");
    char baseline[256];
    snprintf(baseline, sizeof baseline, "%s", kv_base ? kv_base->value : "");
    int base = 0;
    for (int i = 0; i < sc->nv; i++) {
        for (int m = 0; m < M_COUNT; m++) {
            double x[256];
            values(&sc->v[i], sc->cells, (metric)m, x);
            cnb_summarize(x, sc->v[i].n, &sc->v[i].m[m]);
        }
        if (baseline[0] && is_baseline(sc->v[i].name, baseline))
            base = i;
    }
    return base;
}

/* The paragraph under report.md's title: what was run, how much of it finished, and why
   some cells have no result. */
static void describe(char *about, size_t len, const cnb_section *s, const sweep_cells *sc,
                     int base)
{
    const cnb_kv *kv_prof = cnb_section_get(s, "profile");
    const cnb_kv *kv_exp = cnb_section_get(s, "experiment");
    snprintf(about, len,
             "Experiment `%s`, profile %s: %d finished cell%s in %d variant%s%s. Baseline: "
             "%s.%s%.*s",
             kv_exp ? kv_exp->value : "?", kv_prof ? kv_prof->value : "(none)", sc->n,
             sc->n == 1 ? "" : "s", sc->nv, sc->nv == 1 ? "" : "s",
             sc->pending ? " (some cells are not finished: rerun the experiment to complete it)"
                         : "",
             sc->v[base].name,
             sc->n_unfinished ? " Cells without a result in the tables below (a diverged "
                                "cell is finished: its loss became NaN, and the same "
                                "settings would diverge again):"
                              : "",
             (int)(len / 2), sc->n_unfinished ? sc->unfinished : "");
}

/* Writes the tables and plots of a sweep with at least one finished cell. */
static int write_report(const char *dir, const cnb_section *s, sweep_cells *sc)
{
    const cnb_kv *kv_name = cnb_section_get(s, "name");
    char name[256], about[8192], dropped[512];
    snprintf(name, sizeof name, "%s", kv_name ? kv_name->value : "sweep");
    int base = summarise_variants(sc, s);
    plot_label *label = malloc((size_t)sc->nv * sizeof *label);
    if (!label)
        return CNB_ENOMEM;
    describe(about, sizeof about, s, sc, base);
    int has_val = any_validation(sc->cells, sc->n);
    int rc = plot_labels(sc->v, sc->nv, label, dropped, sizeof dropped);
    if (rc == 0)
        rc = write_tables(dir, name, about, sc->v, sc->nv, base, sc->cells, sc->n, dropped,
                          has_val, &sc->sel);
    if (rc == 0)
        rc = plot_curves(dir, name, sc->v, sc->nv, base, sc->cells, label, has_val);
    if (rc == 0)
        rc = plot_points(dir, "accuracy", "final test accuracy per variant", "test accuracy",
                         sc->v, sc->nv, base, M_TEST, sc->cells, label, 0.0, 1.0);
    if (rc == 0)
        rc = plot_points(dir, "gap", "train - test accuracy gap per variant",
                         "train accuracy - test accuracy", sc->v, sc->nv, base, M_GAP,
                         sc->cells, label, -1.0, 1.0);
    if (rc == 0)
        printf("report: %s/report.md (and variants.csv, comparison.csv, cells.csv, %s"
               "learning-curves/accuracy/gap .png .svg)\n",
               dir, sc->sel.n ? "selection.csv, " : "");
    free(label);
    return rc;
}

static void free_sweep_cells(sweep_cells *sc)
{
    for (int i = 0; i < sc->n; i++)
        free(sc->cells[i].curve_test), free(sc->cells[i].curve_train),
            free(sc->cells[i].curve_val), free(sc->cells[i].curve_val_loss);
    free(sc->cells);
    free(sc->v);
    free(sc->sel.rows);
    free(sc->unfinished);
}

int cnb_report_write(const char *dir)
{
    char path[PATH_MAX + 32];
    cnb_conf info;
    snprintf(path, sizeof path, "%s/sweep.ini", dir);
    int rc = cnb_conf_load(&info, path);
    if (rc)
        return cnb_error("%s is not a sweep folder (no readable sweep.ini); give the folder "
                         "`cnnbench run` wrote, e.g. results/lenet5-ablation", dir);
    const cnb_section *s = cnb_conf_section(&info, "sweep");
    sweep_cells sc = {.n = 0};
    const cnb_kv *kv_sel = cnb_section_get(s, "select"), *kv_by = cnb_section_get(s, "select_by");
    snprintf(sc.sel.key, sizeof sc.sel.key, "%s", kv_sel ? kv_sel->value : "");
    sc.sel.by_loss = kv_by && strcmp(kv_by->value, cnb_select_by_name(1)) == 0;
    rc = read_manifest(dir, &sc);
    if (rc == 0)
        rc = group_variants(&sc);
    if (rc == 0 && sc.n == 0)
        rc = cnb_error("%s: no finished cell to report on yet", dir);
    if (rc == 0)
        rc = write_report(dir, s, &sc);
    free_sweep_cells(&sc);
    cnb_conf_free(&info);
    return rc;
}

static int gp_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 3 && strcmp(d->d_name + n - 3, ".gp") == 0;
}

int cnb_plot_all(const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, gp_file, alphasort), rc = 0, drawn = 0;
    if (n < 0)
        return cnb_error("%s: cannot read the folder: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        if (rc == 0 && (rc = cnb_gnuplot(dir, list[i]->d_name)) == 0)
            drawn++;
        free(list[i]);
    }
    free(list);
    if (rc == 0 && drawn == 0)
        return cnb_error("%s: no gnuplot scripts (*.gp) here; give a folder that `cnnbench "
                         "run` wrote", dir);
    if (rc == 0)
        printf("redrew %d plot%s in %s\n", drawn, drawn == 1 ? "" : "s", dir);
    return rc;
}
