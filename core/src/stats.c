/* stats.c - see stats.h. */
#include "stats.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cnb_summarize(const double *x, int n, cnb_summary *s)
{
    s->n = n;
    s->mean = s->sd = s->lo = s->hi = s->min = s->max = NAN;
    if (n < 1)
        return;
    s->mean = gsl_stats_mean(x, 1, (size_t)n);
    gsl_stats_minmax(&s->min, &s->max, x, 1, (size_t)n);
    s->sd = n > 1 ? gsl_stats_sd_m(x, 1, (size_t)n, s->mean) : 0.0;
    if (n > 1) {
        double half = gsl_cdf_tdist_Pinv(0.975, n - 1) * s->sd / sqrt((double)n);
        s->lo = s->mean - half;
        s->hi = s->mean + half;
    }
}

void cnb_interval(const cnb_comparison *c, double level, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (isnan(c->se)) /* fewer than 2 values a side */
        return;
    double half = c->se == 0.0 ? 0.0 : gsl_cdf_tdist_Pinv(0.5 + level / 2, c->df) * c->se;
    *lo = c->diff - half;
    *hi = c->diff + half;
}

/* t, the two-sided p and the 95% interval of c->diff from c->se and c->df. */
static void t_test(cnb_comparison *c)
{
    cnb_interval(c, 0.95, &c->lo, &c->hi);
    if (c->se == 0.0) /* no spread: the difference is exact */
        c->p = c->diff == 0.0 ? 1.0 : 0.0;
    else {
        c->t = c->diff / c->se;
        c->p = 2.0 * gsl_cdf_tdist_Q(fabs(c->t), c->df);
    }
}

/* One-sided p of H0: true difference <= `null` against > (above), and of H0: >= against
 * < (below). */
static double p_above(const cnb_comparison *c, double null)
{
    if (isnan(c->se))
        return NAN;
    if (c->se == 0.0)
        return c->diff > null ? 0.0 : 1.0;
    return gsl_cdf_tdist_Q((c->diff - null) / c->se, c->df);
}

static double p_below(const cnb_comparison *c, double null)
{
    if (isnan(c->se))
        return NAN;
    if (c->se == 0.0)
        return c->diff < null ? 0.0 : 1.0;
    return gsl_cdf_tdist_P((c->diff - null) / c->se, c->df);
}

void cnb_tost(const cnb_comparison *c, double margin, double alpha, cnb_equivalence *e)
{
    e->p_inside = fmax(p_above(c, -margin), p_below(c, margin));
    e->p_beyond = fmin(p_above(c, margin), p_below(c, -margin));
    cnb_interval(c, 1.0 - 2.0 * alpha, &e->lo, &e->hi);
}

void cnb_welch(const double *a, int na, const double *b, int nb, cnb_comparison *c)
{
    c->diff = c->lo = c->hi = c->t = c->df = c->p = c->se = c->sd = NAN;
    if (na < 1 || nb < 1)
        return;
    double ma = gsl_stats_mean(a, 1, (size_t)na), mb = gsl_stats_mean(b, 1, (size_t)nb);
    c->diff = ma - mb;
    if (na < 2 || nb < 2)
        return;
    double va = gsl_stats_variance_m(a, 1, (size_t)na, ma) / na;
    double vb = gsl_stats_variance_m(b, 1, (size_t)nb, mb) / nb;
    if (va + vb > 0.0)
        c->df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
    c->se = sqrt(va + vb);
    c->sd = sqrt((va * na + vb * nb) / 2.0);
    t_test(c);
}

void cnb_paired(const double *a, const double *b, int n, cnb_comparison *c)
{
    c->diff = c->lo = c->hi = c->t = c->df = c->p = c->se = c->sd = NAN;
    if (n < 1)
        return;
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < n; i++)
        sum += a[i] - b[i];
    c->diff = sum / n;
    if (n < 2)
        return;
    for (int i = 0; i < n; i++)
        sq += (a[i] - b[i] - c->diff) * (a[i] - b[i] - c->diff);
    c->df = n - 1;
    c->sd = sqrt(sq / (n - 1));
    c->se = c->sd / sqrt((double)n);
    t_test(c);
}

/* How many runs of s have unit u; the last of them in *at. */
static int count_unit(const cnb_unit_value *s, int n, const char *u, int *at)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].unit, u) == 0)
            count++, *at = i;
    return count;
}

const char *cnb_pair_units(const cnb_unit_value *a, int na, const cnb_unit_value *b, int nb,
                           int *partner)
{
    for (int k = 0; k < na + nb; k++) {
        const char *u = k < na ? a[k].unit : b[k - na].unit;
        int i = 0, j = 0;
        if (count_unit(a, na, u, &i) != 1 || count_unit(b, nb, u, &j) != 1)
            return u;
        partner[i] = j;
    }
    return NULL;
}

int cnb_compare_units(const cnb_unit_value *a, int na, const cnb_unit_value *b, int nb,
                      const int *partner, cnb_comparison *c, int *nx, int *ny)
{
    double *x = malloc((size_t)(na + nb + 1) * sizeof *x);
    if (!x)
        return -1;
    double *y = x + na;
    *nx = *ny = 0;
    for (int i = 0; i < na; i++) {
        const cnb_unit_value *mate = partner ? &b[partner[i]] : NULL;
        if (a[i].left_out || (mate && mate->left_out))
            continue;
        x[(*nx)++] = a[i].v;
        if (mate)
            y[(*ny)++] = mate->v;
    }
    for (int j = 0; !partner && j < nb; j++)
        if (!b[j].left_out)
            y[(*ny)++] = b[j].v;
    if (partner)
        cnb_paired(x, y, *nx, c);
    else
        cnb_welch(x, *nx, y, *ny, c);
    free(x);
    return 0;
}

/* What a planned test's power depends on. */
typedef enum plan { PLAN_DETECT, PLAN_INSIDE, PLAN_BEYOND } plan;

static double planned_power(plan kind, double delta, double margin, double se, double t)
{
    switch (kind) {
    case PLAN_DETECT:
        return gsl_cdf_ugaussian_P(delta / se - t) + gsl_cdf_ugaussian_P(-delta / se - t);
    case PLAN_INSIDE:
        return fmax(0.0, gsl_cdf_ugaussian_P((margin - delta) / se - t) -
                             gsl_cdf_ugaussian_P((-margin - delta) / se + t));
    default:
        return gsl_cdf_ugaussian_P((delta - margin) / se - t);
    }
}

/* The smallest n with the planned power; `q` the quantile of the critical value. */
static int smallest_n(plan kind, double delta, double margin, double sd, int paired,
                      double q, double power)
{
    for (int n = 2; n <= CNB_SEEDS_MAX; n++) {
        double se = paired ? sd / sqrt((double)n) : sd * sqrt(2.0 / n);
        double t = gsl_cdf_tdist_Pinv(q, paired ? n - 1 : 2 * n - 2);
        if (planned_power(kind, delta, margin, se, t) >= power)
            return n;
    }
    return -1;
}

int cnb_seeds_to_detect(double delta, double sd, int paired, double alpha, double power)
{
    delta = fabs(delta);
    if (!(delta > 0.0) || !(sd >= 0.0))
        return -1;
    return smallest_n(PLAN_DETECT, delta, 0.0, sd, paired, 1.0 - alpha / 2.0, power);
}

int cnb_seeds_to_decide_equivalence(double delta, double sd, double margin, int paired,
                                    double alpha, double power)
{
    delta = fabs(delta);
    if (!(delta != margin) || !(sd >= 0.0))
        return -1;
    return smallest_n(delta < margin ? PLAN_INSIDE : PLAN_BEYOND, delta, margin, sd, paired,
                      1.0 - alpha, power);
}

double cnb_fisher_exact(unsigned a, unsigned b, unsigned c, unsigned d)
{
    /* with the margins fixed, the top-left count is hypergeometric: a + c draws from a
     * population of a + b of the first row and c + d of the second */
    unsigned row1 = a + b, row2 = c + d, col1 = a + c;
    double observed = gsl_ran_hypergeometric_pdf(a, row1, row2, col1), p = 0.0;
    unsigned lo = col1 > row2 ? col1 - row2 : 0, hi = col1 < row1 ? col1 : row1;
    for (unsigned k = lo; k <= hi; k++) {
        double pk = gsl_ran_hypergeometric_pdf(k, row1, row2, col1);
        if (pk <= observed * (1.0 + 1e-7)) /* tables as likely, up to rounding */
            p += pk;
    }
    return fmin(p, 1.0);
}

int cnb_adjust_p(const double *p, int n, cnb_correction method, double *adj)
{
    double *q = calloc((size_t)n + 1, sizeof *q);          /* the tests' p              */
    size_t *at = malloc(2 * (size_t)n * sizeof *at + 1);   /* where each is in p        */
    if (!q || !at) {
        free(q), free(at);
        return -1;
    }
    size_t m = 0, *rank = at + n;                          /* the tests in order of p   */
    for (int i = 0; i < n; i++) {
        adj[i] = p[i];
        if (!isnan(p[i]))
            q[m] = p[i], at[m++] = (size_t)i;
    }
    gsl_sort_index(rank, q, 1, m);
    /* Holm: the k-th smallest times the m - k tests still in play, never below the one
     * before; BH: the k-th smallest times m / (k + 1), never above the one after */
    double run = 0.0;
    for (size_t k = 0; method == CNB_CORRECT_HOLM && k < m; k++) {
        run = fmax(run, fmin(1.0, (double)(m - k) * q[rank[k]]));
        adj[at[rank[k]]] = run;
    }
    run = 1.0;
    for (size_t k = m; method == CNB_CORRECT_BH && k-- > 0;) {
        run = fmin(run, (double)m / (double)(k + 1) * q[rank[k]]);
        adj[at[rank[k]]] = run;
    }
    free(q);
    free(at);
    return 0;
}

void cnb_sample_summarize(const double *x, int n, cnb_sample_stats *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n < 1) {
        s->median = s->min = s->max = s->q1 = s->q3 = s->mean = s->sd = s->cv = NAN;
        return;
    }
    double *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted)
        return;
    memcpy(sorted, x, (size_t)n * sizeof *sorted);
    gsl_sort(sorted, 1, (size_t)n);
    s->min = sorted[0];
    s->max = sorted[n - 1];
    s->median = gsl_stats_median_from_sorted_data(sorted, 1, (size_t)n);
    s->q1 = gsl_stats_quantile_from_sorted_data(sorted, 1, (size_t)n, 0.25);
    s->q3 = gsl_stats_quantile_from_sorted_data(sorted, 1, (size_t)n, 0.75);
    s->mean = gsl_stats_mean(sorted, 1, (size_t)n);
    s->sd = n > 1 ? gsl_stats_sd_m(sorted, 1, (size_t)n, s->mean) : 0.0;
    s->cv = s->mean > 0 ? s->sd / s->mean : NAN;
    double iqr = s->q3 - s->q1;
    for (int i = 0; i < n; i++)
        s->outliers += sorted[i] < s->q1 - 1.5 * iqr || sorted[i] > s->q3 + 1.5 * iqr;
    free(sorted);
}

typedef struct nearby {
    double dt, t, rel;
} nearby;

static int by_nearness(const void *a, const void *b)
{
    const nearby *x = a, *y = b;
    return x->dt != y->dt ? (x->dt > y->dt) - (x->dt < y->dt) : (x->t > y->t) - (x->t < y->t);
}

int cnb_machine_factors(const int *ent, const double *t, const double *rel, int n, int near,
                        double *factor)
{
    nearby *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    double *pick = malloc((size_t)(near > 0 ? near : 1) * sizeof *pick);
    if (!o || !pick) {
        free(o), free(pick);
        return -1;
    }
    int entries = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < i && !seen; k++)
            seen = ent[k] == ent[i];
        entries += !seen;
    }
    for (int j = 0; j < n; j++) {
        factor[j] = 1.0;
        if (entries - 1 < 3 || near < 1)
            continue;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (ent[i] != ent[j])
                o[m++] = (nearby){fabs(t[i] - t[j]), t[i], rel[i]};
        qsort(o, (size_t)m, sizeof *o, by_nearness);
        const int k = m < near ? m : near;
        for (int i = 0; i < k; i++)
            pick[i] = o[i].rel;
        gsl_sort(pick, 1, (size_t)k);
        factor[j] = gsl_stats_median_from_sorted_data(pick, 1, (size_t)k);
    }
    free(o), free(pick);
    return 0;
}
