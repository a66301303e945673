/*
 * benchplot.c - a bench's plots, each as .dat, .gp, .png and .svg: images per second per
 * backend and thread count (forward and training step), and per layer the forward +
 * backward time per image on every backend.
 */
#include <math.h>
#include <string.h>

#include "benchint.h"
#include "fsutil.h"
#include "report.h"

int bench_plot_throughput(const bconf *bc, const results *r, const bmodel *m)
{
    char name[128], file[140];
    cnb_atomic a;
    snprintf(name, sizeof name, "throughput-%s", m->name);
    snprintf(file, sizeof file, "%s.dat", name);
    if (cnb_atomic_open_in(&a, bc->dir, file))
        return CNB_EIO;
    fprintf(a.f, "# label forward_ips lo hi train_ips lo hi (error bars: interquartile range)\n");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (w->train || strcmp(w->model, m->name) != 0)
            continue;
        const row *t = bench_find_row(r, w->model, w->backend, w->threads, 1);
        fprintf(a.f, "\"%s %dT\" %.2f %.2f %.2f ", w->backend, w->threads, w->ips,
                w->batch / (w->s.q3 * 1e-3), w->batch / (w->s.q1 * 1e-3));
        if (t) /* none for a peer that only infers: no bar */
            fprintf(a.f, "%.2f %.2f %.2f\n", t->ips, t->batch / (t->s.q3 * 1e-3),
                    t->batch / (t->s.q1 * 1e-3));
        else
            fprintf(a.f, "NaN NaN NaN\n");
    }
    char title[256];
    snprintf(title, sizeof title, "%s: images per second (median; bars: interquartile range)",
             m->name);
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, bc->dir, name, title, "images / s"))
        return CNB_EIO;
    fprintf(a.f, "set logscale y\nset format y '10^{%%L}'\nset style data histogram\n"
                 "set style histogram errorbars gap 2 lw 1\nset style fill solid 0.7 border -1\n"
                 "set xtics noenhanced rotate by -25\nset key top left\n");
    fprintf(a.f, "plot '%s.dat' using 2:3:4:xtic(1) title 'forward (inference)' lc rgb "
                 "'#4477aa', '' using 5:6:7 title 'training step' lc rgb '#ee6677'\n", name);
    return cnb_plot_finish(&a, bc->dir, name);
}

int bench_plot_layers(const bconf *bc, const results *r, const bmodel *m, int threads)
{
    char name[128], file[140];
    const char *bk[MAX_BACKENDS];
    int nb = 0;
    for (int b = 0; b < bc->nb; b++)
        if (bench_find_row(r, m->name, bc->backends[b], threads, 1))
            bk[nb++] = bc->backends[b];
    if (nb == 0 || !bc->layers)
        return 0;
    cnb_atomic a;
    snprintf(name, sizeof name, "layers-%s-t%d", m->name, threads);
    snprintf(file, sizeof file, "%s.dat", name);
    if (cnb_atomic_open_in(&a, bc->dir, file))
        return CNB_EIO;
    fprintf(a.f, "# layer, then per backend: forward+backward median ms per image (");
    for (int b = 0; b < nb; b++)
        fprintf(a.f, "%s%s", b ? " " : "", bk[b]);
    fprintf(a.f, ")\n");
    for (int i = 0; i < r->n_layers; i += 2) { /* rows come forward, backward */
        const layer_row *w = &r->layers[i];
        if (strcmp(w->model, m->name) != 0 || w->threads != threads || strcmp(w->backend, bk[0]))
            continue;
        fprintf(a.f, "\"%s\"", w->layer);
        for (int b = 0; b < nb; b++) {
            const layer_row *v = bench_find_layer(r, m->name, bk[b], threads, w->layer);
            const int timed = v && v->s.n; /* else in its run's first layer, or a view */
            fprintf(a.f, " %.6f", timed ? (v[0].s.median + v[1].s.median) / v->batch : NAN);
        }
        fprintf(a.f, "\n");
    }
    char title[256];
    snprintf(title, sizeof title, "%s, %d thread%s: forward + backward time per image, per "
             "layer (median of the per-layer pass)", m->name, threads, threads == 1 ? "" : "s");
    if (cnb_atomic_commit(&a) || cnb_plot_open(&a, bc->dir, name, title, "ms per image"))
        return CNB_EIO;
    fprintf(a.f, "set logscale y\nset format y '10^{%%L}'\nset style data histogram\n"
                 "set style histogram clustered gap 1\n"
                 "set style fill solid 0.7 border -1\nset xtics noenhanced rotate by -45\n"
                 "set key top right\n");
    fprintf(a.f, "plot ");
    for (int b = 0; b < nb; b++)
        fprintf(a.f, "%s'%s.dat' using %d%s title '%s'", b ? ", " : "", name, b + 2,
                b ? "" : ":xtic(1)", bk[b]);
    fprintf(a.f, "\n");
    return cnb_plot_finish(&a, bc->dir, name);
}
