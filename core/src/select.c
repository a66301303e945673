/* select.c - the choice of [select]; see select.h. */
#include "select.h"

#include <math.h>

const char *cnb_select_by_name(int by_loss)
{
    return by_loss ? "validation_loss" : "validation_accuracy";
}

int cnb_select_best(const double *val, int n_candidates, int n_seeds, int by_loss,
                    double *score)
{
    int best = -1;
    for (int k = 0; k < n_candidates; k++) {
        double sum = 0.0;
        for (int s = 0; s < n_seeds; s++)
            sum += val[k * n_seeds + s]; /* a NAN makes the mean NAN: never chosen */
        score[k] = sum / n_seeds;
        if (!isnan(score[k]) &&
            (best < 0 || (by_loss ? score[k] < score[best] : score[k] > score[best])))
            best = k;
    }
    return best;
}
