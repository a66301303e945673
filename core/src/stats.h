/*
 * stats.h - summaries over seeds and variant-vs-baseline comparisons (GSL underneath).
 *
 * 95% intervals use Student's t: mean +/- t(0.975, n-1) * sd / sqrt(n), with the sample
 * standard deviation (n - 1). Comparisons use Welch's unequal-variance t-test (two-sided,
 * unpaired) and its 95% interval for the difference of means.
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
    double diff;         /* mean(a) - mean(b) */
    double lo, hi;       /* its 95% interval (Welch) */
    double t, df, p;     /* Welch's t, its degrees of freedom, two-sided p */
} cnb_comparison;

void cnb_summarize(const double *x, int n, cnb_summary *s);

/* a against b; NAN fields when either side has fewer than 2 values. */
void cnb_welch(const double *a, int na, const double *b, int nb, cnb_comparison *c);

/* Timing samples: order statistics and spread. Outliers (outside the Tukey fences
 * q1 - 1.5 IQR .. q3 + 1.5 IQR) are counted, never dropped. */
typedef struct cnb_sample_stats {
    int n;
    double median, min, max, q1, q3, mean, sd, cv;
    int outliers;
} cnb_sample_stats;

void cnb_sample_summarize(const double *x, int n, cnb_sample_stats *s);

/* A timing whose coefficient of variation reaches this is reported as unstable. */
#define CNB_UNSTABLE_CV 0.10

#endif
