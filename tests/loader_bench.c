/*
 * loader_bench.c - cnnbench-loader-bench: what one loader thread sustains on an image
 * folder with AlexNet's processing (shorter side 256, centre 256x256, random 227 crop,
 * flip, PCA lighting, mean), through the input pipeline itself (feed.h), with nothing
 * else running: decode + augment images/s per thread.
 *
 *   cnnbench-loader-bench FOLDER [THREADS [BATCHES [PACK]]]
 *
 * FOLDER holds class subfolders (cnnbench-photo-folder makes one); PACK, when given, is a
 * pack of it (cnnbench convert) read instead, to compare. Prints one line per run of
 * BATCHES batches of 128 (default 20) and the median of 5 runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "clock.h"
#include "feed.h"
#include "imageset.h"

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: cnnbench-loader-bench FOLDER [THREADS [BATCHES [PACK]]]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 1, batches = argc > 3 ? atoi(argv[3]) : 20;
    const int batch = 128;
    char err[4096];
    cnb_imageset s;
    int rc = argc > 4 ? cnb_imageset_pack_open(&s, argv[4], err, sizeof err)
                      : cnb_imageset_folder(&s, argv[1], NULL, NULL, err, sizeof err);
    if (rc || threads < 1 || batches < 1) {
        fprintf(stderr, "cnnbench-loader-bench: %s\n", rc ? err : "THREADS, BATCHES >= 1");
        return 2;
    }
    cnb_resize_spec rs = {CNB_RESIZE_CENTER, 256, 256};
    double mean[3], sd[3], cov[9];
    int used;
    cnb_pca pca;
    if (cnb_imageset_stats(&s, &rs, 3, 200, 1, 0, mean, sd, cov, &used, err, sizeof err) ||
        cnb_pca_from_cov(&pca, cov, 3, 1.0, err, sizeof err)) {
        fprintf(stderr, "cnnbench-loader-bench: %s\n", err);
        return 1;
    }
    cnb_augment_cfg cfg = {.crop_h = 227, .crop_w = 227, .flip = 1,
                           .lighting = CNB_LIGHTING_DATASET, .lighting_sigma = 0.1f,
                           .normalize = 1, .mean = {(float)mean[0], (float)mean[1],
                                                    (float)mean[2]}, .std = {1, 1, 1}};
    cnb_augment aug;
    if (cnb_augment_init_images(&aug, &cfg, 3, 256, 256, &pca, err, sizeof err)) {
        fprintf(stderr, "cnnbench-loader-bench: %s\n", err);
        return 1;
    }
    cnb_feed_cfg fc = {.train = &s, .test = &s, .resize = rs, .channels = 3, .aug = &aug,
                       .threads = threads, .depth = 3, .batch = batch, .seed = 1,
                       .eval_crops = 1};
    if (s.map)
        fc.resize.mode = CNB_RESIZE_NONE;
    cnb_feed *f;
    if (cnb_feed_create(&f, &fc, err, sizeof err)) {
        fprintf(stderr, "cnnbench-loader-bench: %s\n", err);
        return 1;
    }
    uint32_t *order = malloc((size_t)batches * batch * sizeof *order);
    float *x = malloc((size_t)batch * 3 * 227 * 227 * sizeof *x);
    int32_t labels[128];
    for (long i = 0; i < (long)batches * batch; i++)
        order[i] = (uint32_t)(i * 7919 % s.n);
    double per_thread[5], wall[5];
    for (int run = 0; run < 5; run++) {
        cnb_feed_rate(f); /* reset */
        double t0 = cnb_now();
        cnb_feed_start_train(f, order, batches, run);
        for (int b = 0; b < batches; b++)
            if (cnb_feed_next(f, x, labels, NULL))
                return 1;
        wall[run] = (double)batches * batch / (cnb_now() - t0);
        per_thread[run] = cnb_feed_rate(f);
        printf("run %d: %.0f images/s with %d thread%s, %.0f images/s per thread busy\n", run,
               wall[run], threads, threads == 1 ? "" : "s", per_thread[run]);
    }
    qsort(wall, 5, sizeof *wall, by_value);
    qsort(per_thread, 5, sizeof *per_thread, by_value);
    printf("median: %.0f images/s with %d thread%s, %.0f per thread (%s, %d images)\n", wall[2],
           threads, threads == 1 ? "" : "s", per_thread[2], s.map ? "pack" : "JPEG/PNG files",
           s.n);
    cnb_feed_destroy(f);
    cnb_augment_free(&aug);
    cnb_imageset_free(&s);
    free(order), free(x);
    return 0;
}
