/*
 * stats.h - summaries over seeds and variant-vs-baseline comparisons (GSL underneath).
 *
 * 95% intervals use Student's t: mean +/- t(0.975, n-1) * sd / sqrt(n), with the sample
 * standard deviation (n - 1). Comparisons are two-sided t-tests with the 95% interval of
 * the difference: Welch's unequal-variance test for two independent samples, or the
 * paired test on the differences of matched values. Quantiles and p values come from
 * GSL's Student t distribution.
 */
#ifndef CNB_STATS_H
#define CNB_STATS_H

typedef struct cnb_summary {
    int n;
    double mean, sd;     /* sd: sample deviation; 0 when n == 1 */
    double lo, hi;       /* 95% interval of the mean; NAN when n < 2 */
    double min, max;
} cnb_summary;

typedef struct cnb_comparison {
    double diff;         /* mean(a) - mean(b) (paired: the mean of a[i] - b[i]) */
    double lo, hi;       /* its 95% interval */
    double t, df, p;     /* t, its degrees of freedom, two-sided p */
    double se;           /* the standard error of diff (0: no spread, an exact difference) */
    double sd;           /* the spread a study of this design meets, for planning one: the
                            sd of the differences (paired), or sqrt((sa^2 + sb^2) / 2), the
                            two samples' sd pooled (Welch) */
} cnb_comparison;

void cnb_summarize(const double *x, int n, cnb_summary *s);

/* a against b; NAN fields (but diff) when either side has fewer than 2 values. */
void cnb_welch(const double *a, int na, const double *b, int nb, cnb_comparison *c);
/* a[i] against b[i], i < n (df n - 1); NAN fields (but diff) when n < 2. */
void cnb_paired(const double *a, const double *b, int n, cnb_comparison *c);

/* One run of a comparison between two sides. */
typedef struct cnb_unit_value {
    double v;            /* the value compared                                          */
    const char *unit;    /* what pairs it with a run of the other side: its seed and the
                            settings the comparison does not vary                       */
    int left_out;        /* counted, but not compared (paired: nor is its partner)      */
} cnb_unit_value;

/* Pairs the runs of a and b by unit: when every unit appears exactly once on each side,
 * partner[i] (na of them) is the index in b of a[i]'s partner, and the result NULL;
 * otherwise the unit of a run without a single partner (a's runs looked at first). */
const char *cnb_pair_units(const cnb_unit_value *a, int na, const cnb_unit_value *b, int nb,
                           int *partner);
/* a against b, the runs not left out: by the paired test of a[i] against b[partner[i]]
 * when partner is given (a pair with a run left out is left out whole), by Welch's
 * otherwise; the values compared on each side in *nx, *ny. 0, or -1 out of memory. */
int cnb_compare_units(const cnb_unit_value *a, int na, const cnb_unit_value *b, int nb,
                      const int *partner, cnb_comparison *c, int *nx, int *ny);

/* The interval of c's difference at `level` (0.95: the 95% interval). */
void cnb_interval(const cnb_comparison *c, double level, double *lo, double *hi);

/* Equivalence within +-margin by two one-sided t-tests (TOST), on c's difference, its
 * standard error and degrees of freedom. The difference is shown to lie inside the margin
 * when both H0: diff <= -margin and H0: diff >= margin are rejected at alpha, that is
 * when the (1 - 2 alpha) interval lies inside (-margin, margin); it is shown to lie beyond
 * a margin when H0: diff <= margin or H0: diff >= -margin is rejected at alpha, that is
 * when that interval lies wholly above margin or below -margin. At most one of the two p
 * values is below 0.5. */
typedef struct cnb_equivalence {
    double p_inside;     /* the larger p of the two one-sided tests: equivalent below alpha */
    double p_beyond;     /* the smaller p of the two opposite tests: not equivalent below alpha */
    double lo, hi;       /* the (1 - 2 alpha) interval: 90% at alpha 0.05 */
} cnb_equivalence;

void cnb_tost(const cnb_comparison *c, double margin, double alpha, cnb_equivalence *e);

/* Planning: how many seeds a side (pairs, when paired) give probability `power` of a
 * verdict, when the true difference is `delta` and one run (paired: one pair's difference)
 * spreads by `sd`. The power is a normal approximation with the t critical value of the
 * planned test (df n - 1 paired, 2n - 2 otherwise: equal sides): with se = sd / sqrt(n)
 * (paired) or sd * sqrt(2 / n), and t the critical value,
 *   to detect delta, two-sided at alpha:   P(n) = Phi(|delta|/se - t) + Phi(-|delta|/se - t)
 *   equivalence within +-margin (TOST):    P(n) = Phi((margin - |delta|)/se - t)
 *                                                 - Phi((-margin - |delta|)/se + t)
 *   a difference beyond the margin:        P(n) = Phi((|delta| - margin)/se - t)
 * (one-sided t for the last two). The smallest n from 2 with P(n) >= power, or -1 when
 * no n up to CNB_SEEDS_MAX reaches it (a delta of 0, or exactly the margin, never does).
 * It agrees with the exact noncentral t within a seed: 24 and 9 where statsmodels'
 * power solvers give 23.6 and 8.6. */
#define CNB_SEEDS_MAX 1000
int cnb_seeds_to_detect(double delta, double sd, int paired, double alpha, double power);
/* For a claim of equivalence: seeds to show equivalence when |delta| < margin, or to show
 * the difference lies beyond the margin otherwise. */
int cnb_seeds_to_decide_equivalence(double delta, double sd, double margin, int paired,
                                    double alpha, double power);

/* Two-sided p of Fisher's exact test on the 2x2 table {{a, b}, {c, d}} (rows: two groups;
 * columns: counts of an outcome and of its opposite): with every margin fixed, the chance
 * of a table no more likely than this one (as R's fisher.test and scipy's fisher_exact). */
double cnb_fisher_exact(unsigned a, unsigned b, unsigned c, unsigned d);

/* p values adjusted for testing several hypotheses at once: Holm's step-down method holds
 * the chance of any false rejection (family-wise error) at alpha; Benjamini-Hochberg's
 * step-up method holds the expected share of false rejections (false discovery rate). A
 * hypothesis is rejected at level alpha when its adjusted p is below alpha. */
typedef enum cnb_correction { CNB_CORRECT_HOLM, CNB_CORRECT_BH, CNB_CORRECT_NONE } cnb_correction;

/* adj[i] is p[i] adjusted over the family p[0..n); a NAN p is no test: it stays NAN in adj
 * and is not counted. 0, or -1 when out of memory. */
int cnb_adjust_p(const double *p, int n, cnb_correction method, double *adj);

/* Timing samples: order statistics and spread. Outliers (outside the Tukey fences
 * q1 - 1.5 IQR .. q3 + 1.5 IQR) are counted, never dropped. */
typedef struct cnb_sample_stats {
    int n;
    double median, min, max, q1, q3, mean, sd, cv;
    int outliers;
} cnb_sample_stats;

void cnb_sample_summarize(const double *x, int n, cnb_sample_stats *s);

/* The machine's factor of each of n timing samples taken by turns on a shared machine:
 * sample j is entry ent[j]'s, taken at t[j] (seconds), rel[j] its time over its entry's
 * median. factor[j] is the median of rel over the `near` samples of other entries taken
 * nearest to t[j] (the earlier first where two are as near), 1 where fewer than 3 other
 * entries have samples. A spell of the machine running slow slows every sample taken in
 * it, so a sample over its factor keeps its entry's own deviation. 0, or -1 when out of
 * memory. */
int cnb_machine_factors(const int *ent, const double *t, const double *rel, int n, int near,
                        double *factor);

/* A timing whose coefficient of variation reaches this is reported as unstable. */
#define CNB_UNSTABLE_CV 0.10

#endif
