/* conformance.c - the case table and the checker; see conformance.h. */
#include "conformance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkdata.h"
#include "clock.h"
#include "hash.h"
#include "registry.h"
#include "cnnbench/op_check.h"

#define SENTINEL_IN_BITS 0x7fc0f00du /* around inputs (a NaN payload)                  */
#define SENTINEL_OUT_BITS 0x7fc0deadu /* around outputs                                */
#define MAX_REPORTS 5                /* bad values printed per output                  */

/*
 * Tolerance: |got - expected| <= EPS * sqrt(K) * (|expected| + rms), with K the number of
 * terms summed into that output and rms the root mean square of the expected tensor.
 *
 * Why: a float sum of K terms, added in any order (blocked GEMM, im2col, JIT), carries a
 * rounding error that grows like a random walk, u * sqrt(K) times the size of the partial
 * sums, with u = 2^-24 ~ 6e-8 the unit roundoff. With random signed terms the partial
 * sums are of the order of the output's rms (a cancelling sum is NOT small against it),
 * hence the rms term; |expected| covers outputs far above the rms. The reference carries
 * its own error (less: naive sums dot products in double), so the difference is about
 * u * sqrt(2K) * rms for a typical value and ~5 times that for the worst of 10^6 values:
 * ~7u. EPS = 2e-6 ~ 32u leaves a margin of 4 over that; transcendental ops (exp, pow)
 * with K = 1 get ~30 ulp. A real bug is at least one term off (about rms / sqrt(K)),
 * which is sqrt(K) / (EPS * K) ~ 500 / sqrt(K) times the tolerance: even a dot product of
 * 9216 dropping one term (AlexNet fc6) stands out by ~5x, which the broken fixture proves
 * (worst value 139x the tolerance, 7897 of 8192 values flagged). Selections (ReLU, max
 * pooling forward) must be exact.
 * Observed with the default seed: OpenBLAS and oneDNN convolution and inner product stay
 * below 0.06x the tolerance, LRN, pooling and softmax below 0.05x; the closest is oneDNN's
 * sigmoid backward at 0.29x (K = 1; dy y (1 - y) loses bits to 1 - y near y = 1).
 *
 * Fused runs take the same tolerances, with the convolution's K (an overlapping pooling
 * adds up to its overlap of gradients first, which multiplies the K of the gradients).
 * But a run decides on values it computed itself: the sign of a ReLU's input, the largest
 * of a pooling window. With random floats two backends round a convolution's output
 * differently and a near-tie can go either way, moving a gradient by a whole term. So its
 * inputs lie on a coarse grid (src and diff_dst multiples of 1/4, weights and bias of
 * 1/8, at most 1 and 0.5): every product and every partial sum is then exact in float
 * (the largest, lenet conv1's weight gradient at batch 256, is ~2^22 units of 1/16), the
 * kernel's convolution output equals naive's whatever its order of summation, and a
 * decision can differ only by a bug. Ties are common on a grid and exact, so a fused
 * kernel must break them as naive does: a ReLU passes the gradient where its input is > 0,
 * a max pooling to the first of a window's largest inputs in row-major order.
 */
#define EPS 2e-6

/*
 * A kernel that computes by fewer multiplies than the definition (algorithm(), ABI 2.4:
 * Winograd's minimal filtering) takes FAST_EPS_FACTOR times that tolerance. Its
 * transforms scale values up and back (BT of F(4x4, 5x5) by up to 21/4, its AT by 8), so
 * its rounding error grows with the transforms' size and not only with K: the winograd
 * backend's F(4x4, 5x5) reached 0.84-1.32x of EPS's tolerance over six seeds on the
 * smallest K (winograd.conv.5x5.p0.nobias's weight gradient, K = 32), 0.21-0.33x of the
 * factor's; oneDNN's F(4x4, 3x3) stays at 0.13x of EPS's. A bug is still plain: a
 * term off is about 500 / sqrt(K) / 4 times the tolerance, 2.5x for AlexNet's conv2
 * (K = 2401), and a wrong transform is off by the values themselves.
 */
#define FAST_EPS_FACTOR 4

/* ------------------------------------------------------------------------------------ */
/* The shape table. */



#define WIN(KH, KW, SH, SW, PH, PW) .kh = KH, .kw = KW, .sh = SH, .sw = SW, .ph = PH, .pw = PW
#define CONV(NAME, N, C, H, W, K, ...) \
    {.name = NAME, .op = CNB_OP_CONV, .n = N, .c = C, .h = H, .w = W, .k = K, __VA_ARGS__}
#define POOL(NAME, OP, N, C, H, W, ...) \
    {.name = NAME, .op = OP, .n = N, .c = C, .h = H, .w = W, __VA_ARGS__}
#define IP(NAME, N, C, H, W, K, ...) \
    {.name = NAME, .op = CNB_OP_INNER_PRODUCT, .n = N, .c = C, .h = H, .w = W, .k = K, \
     __VA_ARGS__}
#define ELT(NAME, OP, N, C, H, W, ...) \
    {.name = NAME, .op = OP, .n = N, .c = C, .h = H, .w = W, __VA_ARGS__}
#define LRN_F(NAME, N, F, C, H, W, SIZE, ALPHA, BETA, K) \
    {.name = NAME, .op = CNB_OP_LRN, .n = N, .c = C, .h = H, .w = W, .size = SIZE, \
     .alpha = ALPHA, .beta = BETA, .lrn_k = K, .flags = F}
#define LRN(NAME, N, ...) LRN_F(NAME, N, 0, __VA_ARGS__)

/* LeNet-5 on 1x28x28, every layer at batch N, names ending in TAG. */
#define LENET_ROWS(TAG, N, F)                                                              \
    CONV("lenet.conv1" TAG, N, 1, 28, 28, 6, WIN(5, 5, 1, 1, 2, 2), .flags = F),             \
    ELT("lenet.act1.sigmoid" TAG, CNB_OP_SIGMOID, N, 6, 28, 28, .flags = F),                 \
    ELT("lenet.act1.relu" TAG, CNB_OP_RELU, N, 6, 28, 28, .flags = F),                       \
    POOL("lenet.pool1.avg" TAG, CNB_OP_POOL_AVG, N, 6, 28, 28, WIN(2, 2, 2, 2, 0, 0), .flags = F), \
    POOL("lenet.pool1.max" TAG, CNB_OP_POOL_MAX, N, 6, 28, 28, WIN(2, 2, 2, 2, 0, 0), .flags = F), \
    CONV("lenet.conv2" TAG, N, 6, 14, 14, 16, WIN(5, 5, 1, 1, 0, 0), .flags = F),            \
    ELT("lenet.act2.sigmoid" TAG, CNB_OP_SIGMOID, N, 16, 10, 10, .flags = F),                \
    ELT("lenet.act2.relu" TAG, CNB_OP_RELU, N, 16, 10, 10, .flags = F),                      \
    POOL("lenet.pool2.avg" TAG, CNB_OP_POOL_AVG, N, 16, 10, 10, WIN(2, 2, 2, 2, 0, 0), .flags = F), \
    POOL("lenet.pool2.max" TAG, CNB_OP_POOL_MAX, N, 16, 10, 10, WIN(2, 2, 2, 2, 0, 0), .flags = F), \
    IP("lenet.fc1" TAG, N, 16, 5, 5, 120, .flags = F),                                       \
    ELT("lenet.act3.sigmoid" TAG, CNB_OP_SIGMOID, N, 120, 1, 1, .flags = F),                 \
    ELT("lenet.act3.relu" TAG, CNB_OP_RELU, N, 120, 1, 1, .flags = F),                       \
    IP("lenet.fc2" TAG, N, 120, 1, 1, 84, .flags = F),                                       \
    ELT("lenet.act4.sigmoid" TAG, CNB_OP_SIGMOID, N, 84, 1, 1, .flags = F),                  \
    ELT("lenet.act4.relu" TAG, CNB_OP_RELU, N, 84, 1, 1, .flags = F),                        \
    IP("lenet.fc3" TAG, N, 84, 1, 1, 10, .flags = F),                                        \
    ELT("lenet.softmax" TAG, CNB_OP_SOFTMAX_XENT, N, 10, 1, 1, .flags = F | CNB_CASE_PAD_LABEL)

/* A fused run (CNB_CASE_FUSED): the convolution, a ReLU, and max pooling with window P
 * where PWIN() is given. */
#define PWIN(KH, KW, SH, SW) .pkh = KH, .pkw = KW, .psh = SH, .psw = SW
#define RUN(NAME, N, C, H, W, K, F, ...) \
    {.name = NAME, .op = CNB_OP_CONV, .n = N, .c = C, .h = H, .w = W, .k = K, \
     .flags = CNB_CASE_FUSED | (F), __VA_ARGS__}
/* A fused run of an inner product and a ReLU. */
#define RUN_IP(NAME, N, C, H, W, K, F) \
    {.name = NAME, .op = CNB_OP_INNER_PRODUCT, .n = N, .c = C, .h = H, .w = W, .k = K, \
     .flags = CNB_CASE_FUSED | (F)}
#define RUN_IP_N(NAME, N, ...) RUN_IP(NAME, N, __VA_ARGS__)
/* LeNet-5's runs, with the pooling and without, at batch N. */
#define LENET_RUNS(TAG, N, F)                                                              \
    RUN("run.lenet.conv1+relu+pool" TAG, N, 1, 28, 28, 6, F, WIN(5, 5, 1, 1, 2, 2),         \
        PWIN(2, 2, 2, 2)),                                                                 \
    RUN("run.lenet.conv2+relu+pool" TAG, N, 6, 14, 14, 16, F, WIN(5, 5, 1, 1, 0, 0),        \
        PWIN(2, 2, 2, 2)),                                                                 \
    RUN("run.lenet.conv1+relu" TAG, N, 1, 28, 28, 6, F, WIN(5, 5, 1, 1, 2, 2)),             \
    RUN("run.lenet.conv2+relu" TAG, N, 6, 14, 14, 16, F, WIN(5, 5, 1, 1, 0, 0))

/* One small case of an op at the batches kernels tile for: full tiles and tails of the
 * common widths (4, 8, 16, 32), so that a kernel blocked over the batch runs both its
 * main path and its remainder. M takes (NAME, N, ...). */
#define TILES(M, NAME, ...)                                                                \
    M(NAME ".n4", 4, __VA_ARGS__), M(NAME ".n5", 5, __VA_ARGS__),                          \
    M(NAME ".n7", 7, __VA_ARGS__), M(NAME ".n8", 8, __VA_ARGS__),                          \
    M(NAME ".n16", 16, __VA_ARGS__), M(NAME ".n17", 17, __VA_ARGS__),                      \
    M(NAME ".n33", 33, __VA_ARGS__)
#define POOL_N(NAME, N, OP, ...) POOL(NAME, OP, N, __VA_ARGS__)
#define ELT_N(NAME, N, OP, ...) ELT(NAME, OP, N, __VA_ARGS__)
#define LRN_N(NAME, N, ...) LRN_F(NAME, N, CNB_CASE_BATCH, __VA_ARGS__)

/* Batches: 3 for LeNet-5 and the odd cases (1 for some), 1 or 2 for AlexNet (1 for its
 * two largest convolutions) so that the naive reference of its convolutions (~3 G
 * multiply-adds a sample, forward and backward) stays within a few seconds. Then the
 * batches real kernels are written for (CNB_CASE_BATCH: checked, not timed): every
 * LeNet-5 layer at 64 and 256, AlexNet's FC layers at 32, and a small case of every op at
 * 4, 5, 7, 8, 16, 17 and 33. The case's row number salts its seed: append new rows at the
 * end of a group only if old seeds need not stay reproducible. */
const cnb_conform_case cnb_conform_cases[] = {
    LENET_ROWS("", 3, 0),

    /* AlexNet on 3x227x227 */
    CONV("alexnet.conv1", 2, 3, 227, 227, 96, WIN(11, 11, 4, 4, 0, 0)),
    ELT("alexnet.relu1", CNB_OP_RELU, 2, 96, 55, 55),
    LRN("alexnet.lrn1", 2, 96, 55, 55, 5, 1e-4f, 0.75f, 2.0f),
    POOL("alexnet.pool1", CNB_OP_POOL_MAX, 2, 96, 55, 55, WIN(3, 3, 2, 2, 0, 0)),
    CONV("alexnet.conv2", 1, 96, 27, 27, 256, WIN(5, 5, 1, 1, 2, 2)),
    LRN("alexnet.lrn2", 2, 256, 27, 27, 5, 1e-4f, 0.75f, 2.0f),
    POOL("alexnet.pool2", CNB_OP_POOL_MAX, 2, 256, 27, 27, WIN(3, 3, 2, 2, 0, 0)),
    CONV("alexnet.conv3", 2, 256, 13, 13, 384, WIN(3, 3, 1, 1, 1, 1)),
    CONV("alexnet.conv4", 1, 384, 13, 13, 384, WIN(3, 3, 1, 1, 1, 1)),
    CONV("alexnet.conv5", 2, 384, 13, 13, 256, WIN(3, 3, 1, 1, 1, 1)),
    POOL("alexnet.pool5", CNB_OP_POOL_MAX, 2, 256, 13, 13, WIN(3, 3, 2, 2, 0, 0)),
    IP("alexnet.fc6", 2, 256, 6, 6, 4096),
    ELT("alexnet.relu6", CNB_OP_RELU, 2, 4096, 1, 1),
    IP("alexnet.fc7", 2, 4096, 1, 1, 4096),
    IP("alexnet.fc8", 2, 4096, 1, 1, 1000),
    ELT("alexnet.softmax", CNB_OP_SOFTMAX_XENT, 2, 1000, 1, 1),

    /* Odd geometries: odd and non-square sizes, strides 2 and 3, padding 1 and 2,
     * overlapping padded pools, a window dropping the last row and column, no bias,
     * element counts that are not a multiple of any vector width. */
    CONV("odd.conv.7x9.s2.p1", 3, 3, 7, 9, 4, WIN(3, 3, 2, 2, 1, 1)),
    CONV("odd.conv.k5x3.s3.p2", 1, 2, 11, 13, 5, WIN(5, 3, 3, 3, 2, 2)),
    CONV("odd.conv.s2x3.p1x2", 3, 3, 10, 7, 4, WIN(3, 4, 2, 3, 1, 2)),
    CONV("odd.conv.1x1.s2", 3, 4, 6, 5, 3, WIN(1, 1, 2, 2, 0, 0)),
    CONV("odd.conv.nobias", 1, 3, 7, 9, 2, WIN(3, 3, 1, 1, 1, 1), .flags = CNB_CASE_NO_BIAS),
    IP("odd.fc.3x7x9", 3, 3, 7, 9, 5),
    IP("odd.fc.nobias", 3, 2, 3, 5, 7, .flags = CNB_CASE_NO_BIAS),
    IP("odd.fc.1", 1, 1, 1, 1, 1),
    POOL("odd.pool.max.k3.s2.p1", CNB_OP_POOL_MAX, 3, 3, 7, 9, WIN(3, 3, 2, 2, 1, 1)),
    POOL("odd.pool.avg.k3.s2.p1", CNB_OP_POOL_AVG, 3, 3, 7, 9, WIN(3, 3, 2, 2, 1, 1)),
    POOL("odd.pool.max.k5x3.s3.p2", CNB_OP_POOL_MAX, 1, 2, 11, 9, WIN(5, 3, 3, 3, 2, 2)),
    POOL("odd.pool.avg.k5x3.s3.p2", CNB_OP_POOL_AVG, 1, 2, 11, 9, WIN(5, 3, 3, 3, 2, 2)),
    POOL("odd.pool.max.k3x2.s1x2.p1", CNB_OP_POOL_MAX, 3, 2, 8, 7, WIN(3, 2, 1, 2, 1, 1)),
    POOL("odd.pool.avg.7x9.k2.s2", CNB_OP_POOL_AVG, 3, 3, 7, 9, WIN(2, 2, 2, 2, 0, 0)),
    ELT("odd.sigmoid", CNB_OP_SIGMOID, 3, 3, 7, 9),
    ELT("odd.relu", CNB_OP_RELU, 3, 3, 7, 9),
    LRN("odd.lrn.size3.alpha0.5", 3, 7, 5, 3, 3, 0.5f, 0.75f, 1.0f),
    LRN("odd.lrn.size5.c3", 1, 3, 7, 9, 5, 0.1f, 0.6f, 1.5f),
    ELT("odd.softmax.3x3x5", CNB_OP_SOFTMAX_XENT, 3, 3, 3, 5, .flags = CNB_CASE_PAD_LABEL),
    ELT("odd.softmax.nopad", CNB_OP_SOFTMAX_XENT, 1, 7, 1, 1),

    /* The networks' real batches. */
    LENET_ROWS(".n64", 64, CNB_CASE_BATCH),
    LENET_ROWS(".n256", 256, CNB_CASE_BATCH),
    IP("alexnet.fc6.n32", 32, 256, 6, 6, 4096, .flags = CNB_CASE_BATCH),
    ELT("alexnet.relu6.n32", CNB_OP_RELU, 32, 4096, 1, 1, .flags = CNB_CASE_BATCH),
    IP("alexnet.fc7.n32", 32, 4096, 1, 1, 4096, .flags = CNB_CASE_BATCH),
    IP("alexnet.fc8.n32", 32, 4096, 1, 1, 1000, .flags = CNB_CASE_BATCH),
    ELT("alexnet.softmax.n32", CNB_OP_SOFTMAX_XENT, 32, 1000, 1, 1, .flags = CNB_CASE_BATCH),

    /* Tiles and tails over the batch. */
    TILES(CONV, "tile.conv", 3, 9, 11, 8, WIN(3, 3, 1, 1, 1, 1), .flags = CNB_CASE_BATCH),
    TILES(IP, "tile.fc", 3, 5, 7, 20, .flags = CNB_CASE_BATCH),
    TILES(POOL_N, "tile.pool.max", CNB_OP_POOL_MAX, 5, 9, 9, WIN(3, 3, 2, 2, 1, 1),
          .flags = CNB_CASE_BATCH),
    TILES(POOL_N, "tile.pool.avg", CNB_OP_POOL_AVG, 5, 9, 9, WIN(2, 2, 2, 2, 0, 0),
          .flags = CNB_CASE_BATCH),
    TILES(ELT_N, "tile.sigmoid", CNB_OP_SIGMOID, 7, 5, 3, .flags = CNB_CASE_BATCH),
    TILES(ELT_N, "tile.relu", CNB_OP_RELU, 7, 5, 3, .flags = CNB_CASE_BATCH),
    TILES(LRN_N, "tile.lrn", 7, 5, 3, 5, 1e-4f, 0.75f, 2.0f),
    TILES(ELT_N, "tile.softmax", CNB_OP_SOFTMAX_XENT, 10, 1, 1,
          .flags = CNB_CASE_BATCH | CNB_CASE_PAD_LABEL),

    /* Fused runs: LeNet-5's two conv -> ReLU -> max pooling units and their conv -> ReLU
     * at its batches, AlexNet's last (3x3 windows at stride 2, which overlap), odd ones,
     * and a small one at the tile batches. */
    LENET_RUNS("", 3, 0),
    LENET_RUNS(".n64", 64, CNB_CASE_BATCH),
    LENET_RUNS(".n256", 256, CNB_CASE_BATCH),
    RUN("run.alexnet.conv5+relu+pool", 1, 384, 13, 13, 256, 0, WIN(3, 3, 1, 1, 1, 1),
        PWIN(3, 3, 2, 2)),
    RUN("run.odd.conv.s2.p1+relu+pool.k3.s2", 3, 3, 15, 17, 4, 0, WIN(3, 3, 2, 2, 1, 1),
        PWIN(3, 3, 2, 2)),
    RUN("run.odd.pool.k3x2.s1x2", 3, 2, 9, 8, 3, 0, WIN(3, 3, 1, 1, 1, 1), PWIN(3, 2, 1, 2)),
    RUN("run.odd.nobias.7x9+pool.k2", 3, 2, 7, 9, 3, CNB_CASE_NO_BIAS, WIN(3, 3, 1, 1, 1, 1),
        PWIN(2, 2, 2, 2)),
    RUN("run.odd.conv.k5x3.s3.p2+relu", 1, 2, 11, 13, 5, 0, WIN(5, 3, 3, 3, 2, 2)),
    TILES(RUN, "run.tile", 3, 9, 11, 8, CNB_CASE_BATCH, WIN(3, 3, 1, 1, 1, 1),
          PWIN(2, 2, 2, 2)),
    /* rows of more than 16 windows, at strides 2 and 1 (kernels vectorised along a row) */
    RUN("run.odd.wide.pool.k2.s2", 2, 2, 6, 40, 3, 0, WIN(3, 3, 1, 1, 1, 1), PWIN(2, 2, 2, 2)),
    RUN("run.odd.wide.pool.k2.s1", 3, 2, 9, 21, 3, 0, WIN(3, 3, 1, 1, 1, 1), PWIN(2, 2, 1, 1)),
    /* an inner product and a ReLU: LeNet-5's fc1 and fc2 at its batches, odd sizes (no
     * bias; outputs and inputs not a multiple of 16; one output), and a small one at the
     * tile batches */
    RUN_IP("run.lenet.fc1+relu", 3, 16, 5, 5, 120, 0),
    RUN_IP("run.lenet.fc2+relu", 3, 120, 1, 1, 84, 0),
    RUN_IP("run.lenet.fc1+relu.n64", 64, 16, 5, 5, 120, CNB_CASE_BATCH),
    RUN_IP("run.lenet.fc2+relu.n64", 64, 120, 1, 1, 84, CNB_CASE_BATCH),
    RUN_IP("run.lenet.fc1+relu.n256", 256, 16, 5, 5, 120, CNB_CASE_BATCH),
    RUN_IP("run.lenet.fc2+relu.n256", 256, 120, 1, 1, 84, CNB_CASE_BATCH),
    RUN_IP("run.odd.fc.3x7x9+relu", 3, 3, 7, 9, 37, 0),
    RUN_IP("run.odd.fc.nobias+relu", 7, 2, 3, 5, 7, CNB_CASE_NO_BIAS),
    RUN_IP("run.odd.fc.1+relu", 2, 1, 1, 1, 1, 0),
    TILES(RUN_IP_N, "run.tile.fc", 3, 5, 7, 20, CNB_CASE_BATCH),

    /* A 3x3 convolution oneDNN 2.6 takes Winograd F(4x4, 3x3) for at 1 and 2 threads
     * (convolution_auto, on AVX-512), as it does AlexNet's conv3 to conv5 at batch 32. */
    CONV("winograd.conv.3x3.n16", 16, 64, 13, 13, 64, WIN(3, 3, 1, 1, 1, 1),
         .flags = CNB_CASE_BATCH),

    /* 5x5 convolutions for the winograd backend's F(4x4, 5x5) (AlexNet's conv2 above):
     * channels that are not a multiple of 16, outputs that end inside a tile, unequal and
     * extreme paddings (0 and r - 1), a single tile, no bias. */
    CONV("winograd.conv.5x5.17x9x11.p1x2", 3, 17, 9, 11, 20, WIN(5, 5, 1, 1, 1, 2)),
    CONV("winograd.conv.5x5.p0.nobias", 2, 16, 8, 8, 33, WIN(5, 5, 1, 1, 0, 0),
         .flags = CNB_CASE_NO_BIAS),
    CONV("winograd.conv.5x5.p4", 2, 24, 6, 5, 16, WIN(5, 5, 1, 1, 4, 4)),
    CONV("winograd.conv.5x5.n16", 16, 32, 12, 12, 48, WIN(5, 5, 1, 1, 2, 2),
         .flags = CNB_CASE_BATCH),
    /* ... and one whose samples are large enough (4.2 MB of products each in backward)
     * that it runs its batch a sample at a time on 1 and 2 threads */
    CONV("winograd.conv.5x5.64x64.chunks", 3, 16, 64, 64, 48, WIN(5, 5, 1, 1, 2, 2)),

    /* 3x3 convolutions for its F(5x5, 3x3) (AlexNet's conv3 to conv5 above): channels
     * that are not a multiple of 16, outputs that end inside a tile, unequal and extreme
     * paddings, no bias, and samples of 400 tiles (3.8 MB of products each) that it runs
     * one at a time on 1 and 2 threads. */
    CONV("winograd.conv.3x3.17x9x11.p0x1", 3, 17, 9, 11, 20, WIN(3, 3, 1, 1, 0, 1)),
    CONV("winograd.conv.3x3.p2.nobias", 2, 16, 7, 6, 33, WIN(3, 3, 1, 1, 2, 2),
         .flags = CNB_CASE_NO_BIAS),
    CONV("winograd.conv.3x3.96x96.chunks", 3, 16, 96, 96, 32, WIN(3, 3, 1, 1, 1, 1)),

    /* Its fused runs, a convolution and its ReLU, 5x5 and 3x3, on channels and outputs
     * that are not a multiple of 16 or of a tile. Its transforms do not keep the grid's
     * sums exact (G holds thirds and fifths), so a convolution output of 0 would come out
     * a rounding error either side of it and the ReLU decide either way: the bias is off
     * the grid (CNB_CASE_OFF_GRID). */
    RUN("winograd.run.5x5+relu", 2, 17, 9, 11, 20, CNB_CASE_OFF_GRID, WIN(5, 5, 1, 1, 2, 2)),
    RUN("winograd.run.3x3+relu", 2, 16, 7, 11, 18, CNB_CASE_OFF_GRID, WIN(3, 3, 1, 1, 1, 1)),
    /* ... and one a sample at a time, as winograd.conv.5x5.64x64.chunks: the ReLU's mask
     * taken from the right sample of dst in every chunk */
    RUN("winograd.run.5x5+relu.chunks", 3, 16, 64, 64, 48, CNB_CASE_OFF_GRID,
        WIN(5, 5, 1, 1, 2, 2)),
};
const int cnb_conform_n_cases = (int)(sizeof cnb_conform_cases / sizeof cnb_conform_cases[0]);


static int has_weights(cnb_op op) { return op == CNB_OP_CONV || op == CNB_OP_INNER_PRODUCT; }


cnb_op_desc cnb_conform_case_desc(const cnb_conform_case *cs)
{
    cnb_op_desc d = {.op = cs->op, .batch = cs->n, .src = {cs->c, cs->h, cs->w}};
    switch (cs->op) {
    case CNB_OP_CONV:
    case CNB_OP_POOL_MAX:
    case CNB_OP_POOL_AVG:
        d.dst = (cnb_shape){cs->op == CNB_OP_CONV ? cs->k : cs->c,
                            cnb_out_len(cs->h, cs->kh, cs->sh, cs->ph),
                            cnb_out_len(cs->w, cs->kw, cs->sw, cs->pw)};
        /* conv and pool share the layout of u */
        d.u.conv.kh = cs->kh, d.u.conv.kw = cs->kw, d.u.conv.sh = cs->sh;
        d.u.conv.sw = cs->sw, d.u.conv.ph = cs->ph, d.u.conv.pw = cs->pw;
        break;
    case CNB_OP_INNER_PRODUCT:
        d.dst = (cnb_shape){cs->k, 1, 1};
        break;
    case CNB_OP_LRN:
        d.u.lrn.size = cs->size, d.u.lrn.alpha = cs->alpha;
        d.u.lrn.beta = cs->beta, d.u.lrn.k = cs->lrn_k;
        /* fall through */
    default:
        d.dst = d.src;
    }
    return d;
}

void cnb_conform_case_run(const cnb_conform_case *cs, cnb_fuse_desc *f)
{
    memset(f, 0, sizeof *f);
    f->op[f->n++] = cnb_conform_case_desc(cs);
    if (!(cs->flags & CNB_CASE_FUSED))
        return;
    const cnb_shape y = f->op[0].dst;
    f->op[f->n++] = (cnb_op_desc){.op = CNB_OP_RELU, .batch = cs->n, .src = y, .dst = y};
    if (cs->pkh)
        f->op[f->n++] = (cnb_op_desc){
            .op = CNB_OP_POOL_MAX, .batch = cs->n, .src = y,
            .dst = {y.c, cnb_out_len(y.h, cs->pkh, cs->psh, 0),
                    cnb_out_len(y.w, cs->pkw, cs->psw, 0)},
            .u.pool = {cs->pkh, cs->pkw, cs->psh, cs->psw, 0, 0}};
}

/* "3x227x227 -> 96x55x55 k11x11 s4x4 p0x0" */
void cnb_conform_shape_str(char *buf, size_t len, const cnb_op_desc *d)
{
    int n = snprintf(buf, len, "%dx%dx%d -> %dx%dx%d", d->src.c, d->src.h, d->src.w,
                     d->dst.c, d->dst.h, d->dst.w);
    if (d->op == CNB_OP_CONV || d->op == CNB_OP_POOL_MAX || d->op == CNB_OP_POOL_AVG)
        snprintf(buf + n, len - n, " k%dx%d s%dx%d p%dx%d", d->u.conv.kh, d->u.conv.kw,
                 d->u.conv.sh, d->u.conv.sw, d->u.conv.ph, d->u.conv.pw);
    else if (d->op == CNB_OP_LRN)
        snprintf(buf + n, len - n, " size %d alpha %g beta %g k %g", d->u.lrn.size,
                 (double)d->u.lrn.alpha, (double)d->u.lrn.beta, (double)d->u.lrn.k);
}

void cnb_conform_run_str(char *buf, size_t len, const cnb_fuse_desc *f)
{
    cnb_conform_shape_str(buf, len, &f->op[0]);
    for (int k = 1; k < f->n; k++) {
        const cnb_op_desc *d = &f->op[k];
        size_t n = strlen(buf);
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, ", %s", cnb_op_name(d->op));
        if (d->op == CNB_OP_POOL_MAX || d->op == CNB_OP_POOL_AVG)
            n += (size_t)snprintf(buf + n, n < len ? len - n : 0, " k%dx%d s%dx%d p%dx%d",
                                  d->u.pool.kh, d->u.pool.kw, d->u.pool.sh, d->u.pool.sw,
                                  d->u.pool.ph, d->u.pool.pw);
        if (k == f->n - 1)
            snprintf(buf + n, n < len ? len - n : 0, " -> %dx%dx%d", d->dst.c, d->dst.h,
                     d->dst.w);
    }
}

void cnb_conform_run_name(char *buf, size_t len, const cnb_fuse_desc *f)
{
    size_t n = (size_t)snprintf(buf, len, "%s", f->n > 1 ? "fused " : "");
    for (int k = 0; k < f->n && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", k ? "+" : "", cnb_op_name(f->op[k].op));
}

const cnb_conform_case *cnb_conform_case_find(const char *name)
{
    for (int i = 0; i < cnb_conform_n_cases; i++)
        if (strcmp(cnb_conform_cases[i].name, name) == 0)
            return &cnb_conform_cases[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Outputs compared, and how. */

const char *const cnb_conform_out_name[CNB_OUT_COUNT] = {
    "forward dst", "forward loss", "backward diff_src", "backward diff_weights",
    "backward diff_bias", "backward (diff_src NULL) diff_weights",
    "backward (diff_src NULL) diff_bias"};



int cnb_conform_problems(const cnb_conform_result *r)
{
    int t = (r->rc_create != 0 && !r->fallback) + (r->rc_fwd != 0) + (r->rc_bwd != 0) + (r->rc_bwd2 != 0) +
            r->inputs_changed;
    for (int o = 0; o < CNB_OUT_COUNT; o++)
        t += r->bad[o] + r->guard[o];
    return t;
}

/* A fused run's inputs, on the grid its tolerance comment (EPS) explains. */
static void fill_grid(cnb_conform_ref *r)
{
    cnb_fill_grid(r->src, r->n_src, 4, 0.25f);
    cnb_fill_grid(r->w, r->n_w, 4, 0.125f);
    if (r->b)
        cnb_fill_grid(r->b, r->n_b, 4, 0.125f);
    if (r->b && (r->cs->flags & CNB_CASE_OFF_GRID))
        for (size_t i = 0; i < r->n_b; i++)
            r->b[i] += 1.0f / 64; /* the sums are whole 1/32s: none is 0 or near it */
    cnb_fill_grid(r->dd, r->n_dst, 4, 0.25f);
}

static void fill_inputs(cnb_conform_ref *r)
{
    cnb_check_rng_seed((uint64_t)r->row + 1);
    if (r->run.n > 1) {
        fill_grid(r);
        return;
    }
    switch (r->d.op) {
    case CNB_OP_POOL_MAX:
        cnb_fill_distinct(r->src, r->n_src, 2.0 / (double)r->n_src);
        break;
    case CNB_OP_RELU:
        cnb_fill_away_from_zero(r->src, r->n_src);
        break;
    case CNB_OP_SIGMOID:
    case CNB_OP_LRN:
    case CNB_OP_SOFTMAX_XENT:
        /* sigmoid over its curved range; LRN large enough that the cross-channel term
         * moves the output by ~1e-3 at alpha 1e-4 (post-ReLU AlexNet activations are of
         * this order); logits spread enough that softmax is far from uniform */
        cnb_fill_uniform(r->src, r->n_src, -4.0f, 4.0f);
        break;
    default:
        cnb_fill_uniform(r->src, r->n_src, -1.0f, 1.0f);
    }
    if (r->w)
        cnb_fill_uniform(r->w, r->n_w, -0.5f, 0.5f);
    if (r->b)
        cnb_fill_uniform(r->b, r->n_b, -0.5f, 0.5f);
    cnb_fill_uniform(r->dd, r->n_dst, -1.0f, 1.0f);
    if (r->labels) {
        int D = (int)cnb_shape_size(r->d.src);
        for (int n = 0; n < r->d.batch; n++)
            r->labels[n] = (int32_t)(cnb_check_u32() % (uint32_t)D);
        if (r->cs->flags & CNB_CASE_PAD_LABEL)
            r->labels[r->d.batch / 2] = -1;
    }
}

static uint64_t inputs_hash(const cnb_conform_ref *r)
{
    uint64_t h = CNB_FNV1A_BASIS;
    h = cnb_fnv1a(h, r->src - CNB_GUARD, (r->n_src + 2 * CNB_GUARD) * sizeof(float));
    if (r->w)
        h = cnb_fnv1a(h, r->w - CNB_GUARD, (r->n_w + 2 * CNB_GUARD) * sizeof(float));
    if (r->b)
        h = cnb_fnv1a(h, r->b - CNB_GUARD, (r->n_b + 2 * CNB_GUARD) * sizeof(float));
    h = cnb_fnv1a(h, r->dd - CNB_GUARD, (r->n_dst + 2 * CNB_GUARD) * sizeof(float));
    if (r->labels)
        h = cnb_fnv1a(h, r->labels, r->d.batch * sizeof(int32_t));
    return h;
}

static void set_dims(int dst[4], int a, int b, int c, int d)
{
    dst[0] = a, dst[1] = b, dst[2] = c, dst[3] = d;
}

/* The reduction length of each output: see EPS. */
static void set_tolerances(cnb_conform_ref *r)
{
    const cnb_op_desc *d = &r->d;
    const int C = d->src.c, D = (int)cnb_shape_size(d->src), N = d->batch;
    double ov = 1; /* conv, pool: the most windows covering one input */
    if (d->op == CNB_OP_CONV || d->op == CNB_OP_POOL_MAX || d->op == CNB_OP_POOL_AVG)
        ov = (double)((d->u.conv.kh + d->u.conv.sh - 1) / d->u.conv.sh) *
             ((d->u.conv.kw + d->u.conv.sw - 1) / d->u.conv.sw);
    for (int o = 0; o < CNB_OUT_COUNT; o++)
        r->K[o] = 1;
    switch (d->op) {
    case CNB_OP_CONV:
        r->K[CNB_OUT_DST] = (double)C * d->u.conv.kh * d->u.conv.kw + 1;
        r->K[CNB_OUT_DSRC] = d->dst.c * ov;
        r->K[CNB_OUT_DW] = r->K[CNB_OUT_DB] = (double)N * d->dst.h * d->dst.w;
        break;
    case CNB_OP_INNER_PRODUCT:
        r->K[CNB_OUT_DST] = D + 1;
        r->K[CNB_OUT_DSRC] = d->dst.c;
        r->K[CNB_OUT_DW] = r->K[CNB_OUT_DB] = N;
        break;
    case CNB_OP_POOL_MAX:
        r->exact[CNB_OUT_DST] = 1;
        r->K[CNB_OUT_DSRC] = ov;
        break;
    case CNB_OP_POOL_AVG:
        r->K[CNB_OUT_DST] = (double)d->u.pool.kh * d->u.pool.kw;
        r->K[CNB_OUT_DSRC] = ov;
        break;
    case CNB_OP_RELU:
        r->exact[CNB_OUT_DST] = r->exact[CNB_OUT_DSRC] = 1;
        break;
    case CNB_OP_LRN:
        r->K[CNB_OUT_DST] = d->u.lrn.size + 1;           /* sum of squares, then a power      */
        r->K[CNB_OUT_DSRC] = 2.0 * d->u.lrn.size + 2;    /* and a second windowed sum         */
        break;
    case CNB_OP_SOFTMAX_XENT:
        r->K[CNB_OUT_DST] = r->K[CNB_OUT_DSRC] = D;            /* the sum of exponentials           */
        r->K[CNB_OUT_LOSS] = (double)D * N;
        break;
    default:
        break;
    }
    for (int k = 1; k < r->run.n; k++) { /* a fused run: gradients a pooling added up */
        const cnb_op_desc *p = &r->run.op[k];
        if (p->op != CNB_OP_POOL_MAX)
            continue;
        const double over = (double)((p->u.pool.kh + p->u.pool.sh - 1) / p->u.pool.sh) *
                            ((p->u.pool.kw + p->u.pool.sw - 1) / p->u.pool.sw);
        r->K[CNB_OUT_DSRC] *= over, r->K[CNB_OUT_DW] *= over, r->K[CNB_OUT_DB] *= over;
    }
    r->K[CNB_OUT_DW_NOSRC] = r->K[CNB_OUT_DW];
    r->K[CNB_OUT_DB_NOSRC] = r->K[CNB_OUT_DB];
}

void cnb_conform_ref_free(cnb_conform_ref *r)
{
    cnb_gbuf_free(r->src);
    cnb_gbuf_free(r->w);
    cnb_gbuf_free(r->b);
    cnb_gbuf_free(r->dd);
    free(r->labels);
    for (int o = 0; o < CNB_OUT_COUNT; o++)
        if (o != CNB_OUT_DW_NOSRC && o != CNB_OUT_DB_NOSRC) /* aliases of CNB_OUT_DW and CNB_OUT_DB */
            cnb_gbuf_free(r->want[o]);
    memset(r, 0, sizeof *r);
}

/* Every output's dimensions, layout and length, from the case's op. */
static void ref_shapes(cnb_conform_ref *r)
{
    const cnb_op_desc *d = &r->d;
    const int N = d->batch, K = d->dst.c;
    r->n_src = (size_t)N * cnb_shape_size(d->src);
    r->n_dst = (size_t)N * cnb_shape_size(r->out);
    set_dims(r->dims[CNB_OUT_DST], N, r->out.c, r->out.h, r->out.w);
    set_dims(r->dims[CNB_OUT_DSRC], N, d->src.c, d->src.h, d->src.w);
    set_dims(r->dims[CNB_OUT_LOSS], 1, 1, 1, 1);
    r->layout[CNB_OUT_DST] = r->layout[CNB_OUT_DSRC] = "(n,c,h,w)";
    r->layout[CNB_OUT_LOSS] = "(scalar)";
    if (d->op == CNB_OP_CONV) {
        r->n_w = (size_t)K * d->src.c * d->u.conv.kh * d->u.conv.kw;
        set_dims(r->dims[CNB_OUT_DW], K, d->src.c, d->u.conv.kh, d->u.conv.kw);
        r->layout[CNB_OUT_DW] = "(k,c,kh,kw)";
    } else if (d->op == CNB_OP_INNER_PRODUCT) {
        r->n_w = (size_t)K * cnb_shape_size(d->src);
        set_dims(r->dims[CNB_OUT_DW], K, d->src.c, d->src.h, d->src.w);
        r->layout[CNB_OUT_DW] = "(k,c,h,w)";
    }
    if (has_weights(d->op) && !(r->cs->flags & CNB_CASE_NO_BIAS)) {
        r->n_b = K;
        set_dims(r->dims[CNB_OUT_DB], K, 1, 1, 1);
        r->layout[CNB_OUT_DB] = "(k)";
    }
    memcpy(r->dims[CNB_OUT_DW_NOSRC], r->dims[CNB_OUT_DW], sizeof r->dims[0]);
    memcpy(r->dims[CNB_OUT_DB_NOSRC], r->dims[CNB_OUT_DB], sizeof r->dims[0]);
    r->layout[CNB_OUT_DW_NOSRC] = r->layout[CNB_OUT_DW];
    r->layout[CNB_OUT_DB_NOSRC] = r->layout[CNB_OUT_DB];
    r->len[CNB_OUT_DST] = r->n_dst;
    r->len[CNB_OUT_DSRC] = r->n_src;
    r->len[CNB_OUT_LOSS] = d->op == CNB_OP_SOFTMAX_XENT;
    r->len[CNB_OUT_DW] = r->len[CNB_OUT_DW_NOSRC] = r->n_w;
    r->len[CNB_OUT_DB] = r->len[CNB_OUT_DB_NOSRC] = r->n_b;
}

/* The inputs (filled and hashed) and the reference outputs' buffers. */
static void ref_buffers(cnb_conform_ref *r)
{
    const cnb_op_desc *d = &r->d;
    r->src = cnb_gbuf_new(r->n_src, SENTINEL_IN_BITS);
    r->dd = cnb_gbuf_new(r->n_dst, SENTINEL_IN_BITS);
    r->w = r->n_w ? cnb_gbuf_new(r->n_w, SENTINEL_IN_BITS) : NULL;
    r->b = r->n_b ? cnb_gbuf_new(r->n_b, SENTINEL_IN_BITS) : NULL;
    if (d->op == CNB_OP_SOFTMAX_XENT && !(r->labels = calloc((size_t)d->batch, sizeof(int32_t)))) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    fill_inputs(r);
    r->in_hash = inputs_hash(r);
    for (int o = CNB_OUT_DST; o <= CNB_OUT_DB; o++)
        r->want[o] = r->len[o] ? cnb_gbuf_new(r->len[o], SENTINEL_OUT_BITS) : NULL;
    if (d->op != CNB_OP_CONV && d->op != CNB_OP_INNER_PRODUCT)
        r->len[CNB_OUT_DW_NOSRC] = r->len[CNB_OUT_DB_NOSRC] = 0; /* only ops with weights */
    r->want[CNB_OUT_DW_NOSRC] = r->len[CNB_OUT_DW_NOSRC] ? r->want[CNB_OUT_DW] : NULL;
    r->want[CNB_OUT_DB_NOSRC] = r->len[CNB_OUT_DB_NOSRC] ? r->want[CNB_OUT_DB] : NULL;
}

/* Naive's kernels of the run's ops one after the other, forward (fa: src to the last
 * op's dst) and backward (ba: diff_dst of the last op to diff_src and op[0]'s
 * gradients), the ops' outputs and gradients between them in buffers of their own; one
 * op's kernel alone when the run has one. CNB_OK, or the first failing status (the create
 * that failed says so in *create). */
static int naive_run(const cnb_fuse_desc *f, const cnb_backend_desc *naive, void *state,
                     const cnb_args *fa, const cnb_args *ba, int *create)
{
    cnb_kernel *k[CNB_FUSE_MAX] = {NULL};
    float *y[CNB_FUSE_MAX] = {NULL}, *g[CNB_FUSE_MAX] = {NULL}; /* op i's dst, diff_dst */
    int rc = CNB_OK;
    *create = 0;
    for (int i = 0; i < f->n && rc == CNB_OK; i++) {
        const size_t len = (size_t)f->op[i].batch * cnb_shape_size(f->op[i].dst);
        if ((rc = naive->kernel_create(state, &f->op[i], &k[i])) != CNB_OK || !k[i])
            *create = 1, rc = rc ? rc : CNB_EINVAL;
        else if (i < f->n - 1 && (!(y[i] = malloc(len * sizeof(float))) ||
                                  !(g[i] = malloc(len * sizeof(float)))))
            rc = CNB_ENOMEM;
    }
    const int last = f->n - 1;
    for (int i = 0; i < f->n && rc == CNB_OK; i++) {
        cnb_args a = *fa;
        if (i > 0)
            a.src = y[i - 1], a.weights = NULL, a.bias = NULL;
        if (i < last)
            a.dst = y[i];
        rc = k[i]->forward(k[i], &a);
    }
    for (int i = last; i >= 0 && rc == CNB_OK; i--) {
        cnb_args a = *ba;
        if (i > 0) { /* an op after the first has no weights */
            a.src = y[i - 1], a.diff_src = g[i - 1];
            a.weights = a.bias = NULL, a.diff_weights = a.diff_bias = NULL;
        }
        if (i < last)
            a.dst = y[i], a.diff_dst = g[i];
        rc = k[i]->backward(k[i], &a);
    }
    for (int i = 0; i < f->n; i++) {
        if (k[i])
            k[i]->destroy(k[i]);
        free(y[i]), free(g[i]);
    }
    return rc;
}

/* The reference outputs: naive's forward and backward, which must succeed, leave the
 * inputs as they were and write finite values inside their buffers only. Each output's
 * rms scales its tolerance. */
static int ref_run_naive(cnb_conform_ref *r, const cnb_backend_desc *naive, void *naive_state)
{
    char shape[256];
    cnb_conform_run_str(shape, sizeof shape, &r->run);
    cnb_args fa = {.src = r->src, .dst = r->want[CNB_OUT_DST], .weights = r->w, .bias = r->b,
                   .labels = r->labels, .loss = r->want[CNB_OUT_LOSS]};
    cnb_args ba = {.src = r->src, .dst = r->want[CNB_OUT_DST], .weights = r->w, .bias = r->b,
                   .diff_dst = r->dd, .diff_src = r->want[CNB_OUT_DSRC],
                   .diff_weights = r->want[CNB_OUT_DW], .diff_bias = r->want[CNB_OUT_DB],
                   .labels = r->labels};
    int create, rc = naive_run(&r->run, naive, naive_state, &fa, &ba, &create);
    if (create) {
        fprintf(stderr, "conformance: naive refuses case %s (%s), batch %d: %d\n", r->cs->name,
                shape, r->d.batch, rc);
        return -1;
    }
    int ok = rc == CNB_OK && inputs_hash(r) == r->in_hash;
    for (int o = 0; ok && o <= CNB_OUT_DB; o++) {
        double ss = 0.0;
        uint32_t bits;
        for (size_t i = 0; i < r->len[o]; i++) {
            ok &= isfinite(r->want[o][i]);
            ss += (double)r->want[o][i] * r->want[o][i];
        }
        ok &= !r->want[o] || !cnb_gbuf_trampled(r->want[o], r->len[o], SENTINEL_OUT_BITS, &bits);
        r->rms[o] = r->len[o] ? sqrt(ss / (double)r->len[o]) : 0.0;
    }
    r->rms[CNB_OUT_DW_NOSRC] = r->rms[CNB_OUT_DW];
    r->rms[CNB_OUT_DB_NOSRC] = r->rms[CNB_OUT_DB];
    if (!ok) {
        fprintf(stderr, "conformance: naive fails on case %s (%s), batch %d (status %s, or a "
                "non-finite value or stray write)\n", r->cs->name, shape, r->d.batch,
                cnb_status_name(rc));
        return -1;
    }
    return 0;
}

int cnb_conform_ref_init(cnb_conform_ref *r, int row, const cnb_backend_desc *naive,
                         void *naive_state)
{
    memset(r, 0, sizeof *r);
    r->cs = &cnb_conform_cases[row];
    r->row = row;
    r->d = cnb_conform_case_desc(r->cs);
    cnb_conform_case_run(r->cs, &r->run);
    r->out = r->run.op[r->run.n - 1].dst;
    ref_shapes(r);
    ref_buffers(r);
    set_tolerances(r);
    return ref_run_naive(r, naive, naive_state);
}

/* ------------------------------------------------------------------------------------ */
/* The checker. */

typedef struct conform_ctx {
    const char *backend;
    const cnb_conform_ref *ref;
    const char *algorithm; /* the kernel's algorithm() (EPS * FAST_EPS_FACTOR), or NULL */
    int quiet;
    int said_case; /* the case header has been printed */
} conform_ctx;

static void say_case(conform_ctx *x)
{
    if (x->quiet || x->said_case)
        return;
    const cnb_conform_ref *r = x->ref;
    char shape[256], op[64];
    cnb_conform_run_str(shape, sizeof shape, &r->run);
    cnb_conform_run_name(op, sizeof op, &r->run);
    fprintf(stderr, "\nconformance: FAIL backend %s, op %s, case %s: %s, batch %d, seed %llu "
            "(CNB_TEST_SEED=%llu, salt %d)\n", x->backend, op, r->cs->name,
            shape, r->d.batch, (unsigned long long)(cnb_check_seed() + r->row + 1),
            (unsigned long long)cnb_check_seed(), r->row + 1);
    x->said_case = 1;
}

/* Compare output o against the reference; returns the values out of tolerance. */
static int compare(conform_ctx *x, cnb_conform_out o, const float *got, double *worst)
{
    const cnb_conform_ref *r = x->ref;
    const float *want = r->want[o];
    const size_t n = r->len[o];
    const double eps = x->algorithm ? EPS * FAST_EPS_FACTOR : EPS, scale = eps * sqrt(r->K[o]);
    int bad = 0;
    *worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = want[i], g = got[i], diff = fabs(g - e);
        double tol = r->exact[o] ? 0.0 : scale * (fabs(e) + r->rms[o]);
        if (diff <= tol) { /* false for NaN */
            if (tol > 0 && diff / tol > *worst)
                *worst = diff / tol;
            continue;
        }
        *worst = isnan(diff) ? INFINITY : fmax(*worst, tol > 0 ? diff / tol : INFINITY);
        if (bad++ == 0 && !x->quiet) {
            say_case(x);
            if (r->exact[o])
                fprintf(stderr, "  %s: must equal the reference exactly\n", cnb_conform_out_name[o]);
            else
                fprintf(stderr, "  %s: tolerance %g%s%s%s * sqrt(K = %.0f) * (|expected| + rms "
                        "%.4g)\n", cnb_conform_out_name[o], eps, x->algorithm ? " (" : "",
                        x->algorithm ? x->algorithm : "", x->algorithm ? ")" : "", r->K[o],
                        r->rms[o]);
        }
        if (bad <= MAX_REPORTS && !x->quiet) {
            const int *dm = r->dims[o];
            size_t q = i;
            int idx[4];
            for (int k = 3; k >= 0; k--) {
                idx[k] = (int)(q % (size_t)dm[k]);
                q /= (size_t)dm[k];
            }
            fprintf(stderr, "    [%d,%d,%d,%d] %s (flat %zu): expected %.8g, got %.8g "
                    "(|diff| %.3g, tolerance %.3g)\n", idx[0], idx[1], idx[2], idx[3],
                    r->layout[o], i, e, g, diff, tol);
        }
    }
    if (bad && !x->quiet) {
        fprintf(stderr, "    %d of %zu values wrong", bad, n);
        if (isinf(*worst))
            fprintf(stderr, " (NaN, or a selection that differs)\n");
        else
            fprintf(stderr, "; worst |diff| = %.3g x tolerance\n", *worst);
    }
    return bad;
}

static int check_guard(conform_ctx *x, cnb_conform_out o, const float *p)
{
    uint32_t bits;
    int at = p ? cnb_gbuf_trampled(p, x->ref->len[o], SENTINEL_OUT_BITS, &bits) : 0;
    if (at && !x->quiet) {
        say_case(x);
        fprintf(stderr, "  %s: stray write %d float(s) %s the buffer (sentinel 0x%08x "
                "became 0x%08x)\n", cnb_conform_out_name[o], at < 0 ? -at : at,
                at < 0 ? "before the start of" : "past the end of",
                (unsigned)SENTINEL_OUT_BITS, (unsigned)bits);
    }
    return at != 0;
}

static int check_rc(conform_ctx *x, const char *what, int rc)
{
    if (rc != CNB_OK && !x->quiet) {
        say_case(x);
        fprintf(stderr, "  %s returned %s (%d)%s\n", what, cnb_status_name(rc), rc,
                rc == CNB_ENOTSUP ? "; only kernel_create or fuse_create may refuse a case"
                                  : "");
    }
    return rc;
}

static void poison(float *p, size_t n)
{
    if (p)
        cnb_fill_bits(p, n, CNB_POISON_BITS);
}

/* One call into the plugin: `what` announced as the phase (for `cnnbench check` to name
 * a crash or a hang), its time added to the result's. */
typedef struct conform_run {
    conform_ctx x;
    const cnb_conform_opts *opts;
    cnb_conform_result *res;
    float *got[CNB_OUT_COUNT];
    double t0;
    cnb_heap_tally heap0;
} conform_run;

static void begin(conform_run *r, const char *what)
{
    if (r->opts && r->opts->phase)
        r->opts->phase(r->opts->user, what);
    r->t0 = cnb_now();
    r->heap0 = cnb_heap_read();
}

/* The call's return code; its time added to the result's, what it allocated to *heap. */
static int end(conform_run *r, int rc, cnb_heap_tally *heap)
{
    const cnb_heap_tally now = cnb_heap_read();
    r->res->seconds += cnb_now() - r->t0;
    if (heap)
        heap->bytes += now.bytes - r->heap0.bytes, heap->calls += now.calls - r->heap0.calls;
    return rc;
}


/* Compares outputs first..last, and checks their guard bands, after a call returned rc. */
static void compare_outputs(conform_run *r, int rc, int first, int last)
{
    for (int o = first; o <= last; o++) {
        if (rc == CNB_OK && r->got[o])
            r->res->bad[o] = compare(&r->x, o, r->got[o], &r->res->worst[o]);
        r->res->guard[o] = check_guard(&r->x, o, r->got[o]);
    }
}

/* kernel_create, and the kernel's header checked as the loader checks it; NULL when
 * refused (a CNB_ENOTSUP refusal is a fallback: a network takes the next backend). */
static cnb_kernel *create(conform_run *r, const cnb_backend_desc *be, void *state)
{
    const cnb_conform_ref *ref = r->x.ref;
    cnb_kernel *k = NULL;
    int rc = CNB_ENOTSUP; /* a fused run without fuse_create */
    r->x.algorithm = NULL;
    if (ref->run.n == 1) {
        begin(r, "kernel_create");
        rc = end(r, be->kernel_create(state, &ref->d, &k), &r->res->heap_create);
    } else if (CNB_BACKEND_FIELD(be, fuse_create)) {
        begin(r, "fuse_create");
        rc = end(r, be->fuse_create(state, &ref->run, &k), &r->res->heap_create);
    }
    if (rc == CNB_ENOTSUP) {
        r->res->rc_create = rc;
        r->res->fallback = 1;
        return NULL;
    }
    r->res->rc_create = check_rc(&r->x, ref->run.n == 1 ? "kernel_create" : "fuse_create", rc);
    char why[1024];
    if (r->res->rc_create == CNB_OK &&
        (r->res->rc_create = cnb_registry_check_kernel(NULL, be, k, why, sizeof why)) != CNB_OK &&
        !r->x.quiet) {
        say_case(&r->x);
        fprintf(stderr, "  %s\n", why);
    }
    if (r->res->rc_create != CNB_OK)
        return NULL; /* a bad header: not even its destroy */
    if (CNB_BACKEND_FIELD(be, kernel_bytes))
        r->res->kernel_bytes = (long long)be->kernel_bytes(k);
    r->x.algorithm = CNB_BACKEND_FIELD(be, algorithm) ? be->algorithm(k) : NULL;
    return k;
}

/* Backward on the backend's own dst (what its forward saved goes with it), then again
 * without diff_src, as for a network's first layer. */
static void backward(conform_run *r, cnb_kernel *k)
{
    const cnb_conform_ref *ref = r->x.ref;
    float **got = r->got;
    cnb_conform_result *res = r->res;
    poison(got[CNB_OUT_DSRC], ref->len[CNB_OUT_DSRC]);
    poison(got[CNB_OUT_DW], ref->len[CNB_OUT_DW]);
    poison(got[CNB_OUT_DB], ref->len[CNB_OUT_DB]);
    cnb_args ba = {.src = ref->src, .dst = got[CNB_OUT_DST], .weights = ref->w, .bias = ref->b,
                   .diff_dst = ref->dd, .diff_src = got[CNB_OUT_DSRC],
                   .diff_weights = got[CNB_OUT_DW], .diff_bias = got[CNB_OUT_DB],
                   .labels = ref->labels};
    begin(r, "backward");
    res->rc_bwd = check_rc(&r->x, "backward", end(r, k->backward(k, &ba), NULL));
    compare_outputs(r, res->rc_bwd, CNB_OUT_DSRC, CNB_OUT_DB);
    if (!ref->len[CNB_OUT_DW_NOSRC])
        return;
    poison(got[CNB_OUT_DW], ref->len[CNB_OUT_DW]);
    poison(got[CNB_OUT_DB], ref->len[CNB_OUT_DB]);
    ba.diff_src = NULL;
    begin(r, "backward with diff_src NULL");
    res->rc_bwd2 = check_rc(&r->x, "backward with diff_src NULL", end(r, k->backward(k, &ba), NULL));
    if (res->rc_bwd2 == CNB_OK) {
        res->bad[CNB_OUT_DW_NOSRC] = compare(&r->x, CNB_OUT_DW_NOSRC, got[CNB_OUT_DW],
                                             &res->worst[CNB_OUT_DW_NOSRC]);
        if (got[CNB_OUT_DB])
            res->bad[CNB_OUT_DB_NOSRC] = compare(&r->x, CNB_OUT_DB_NOSRC, got[CNB_OUT_DB],
                                                 &res->worst[CNB_OUT_DB_NOSRC]);
    }
    res->guard[CNB_OUT_DW_NOSRC] = check_guard(&r->x, CNB_OUT_DW_NOSRC, got[CNB_OUT_DW]);
    res->guard[CNB_OUT_DB_NOSRC] = check_guard(&r->x, CNB_OUT_DB_NOSRC, got[CNB_OUT_DB]);
}

/* A forward and a backward once more, after the compared ones, counting what they
 * allocate on the heap (the ABI: nothing). Not the first calls, which may meet a library's
 * one-time set-up (OpenMP starting its threads, oneDNN reading the CPU), but each call's
 * own. Their outputs are not compared again. */
static void again(conform_run *r, cnb_kernel *k, const cnb_args *fa)
{
    const cnb_conform_ref *ref = r->x.ref;
    cnb_conform_result *res = r->res;
    cnb_args ba = {.src = ref->src, .dst = r->got[CNB_OUT_DST], .weights = ref->w,
                   .bias = ref->b, .diff_dst = ref->dd, .diff_src = r->got[CNB_OUT_DSRC],
                   .diff_weights = r->got[CNB_OUT_DW], .diff_bias = r->got[CNB_OUT_DB],
                   .labels = ref->labels};
    begin(r, "forward, again");
    res->rc_fwd = check_rc(&r->x, "forward, again", end(r, k->forward(k, fa), &res->heap_fwd));
    begin(r, "backward, again");
    if (res->rc_fwd == CNB_OK)
        res->rc_bwd = check_rc(&r->x, "backward, again",
                               end(r, k->backward(k, &ba), &res->heap_bwd));
}

/* An input written to is a failure; the inputs and their guard bands are restored for
 * the next backend. */
static void check_inputs(conform_run *r, cnb_conform_ref *ref)
{
    if (inputs_hash(ref) == ref->in_hash)
        return;
    r->res->inputs_changed = 1;
    if (!r->x.quiet) {
        say_case(&r->x);
        fprintf(stderr, "  an input (src, weights, bias, diff_dst, labels or their guard "
                "bands) was written to\n");
    }
    float *const in[] = {ref->src, ref->dd, ref->w, ref->b};
    const size_t n[] = {ref->n_src, ref->n_dst, ref->n_w, ref->n_b};
    for (int i = 0; i < 4; i++)
        if (in[i]) {
            cnb_fill_bits(in[i] - CNB_GUARD, CNB_GUARD, SENTINEL_IN_BITS);
            cnb_fill_bits(in[i] + n[i], CNB_GUARD, SENTINEL_IN_BITS);
        }
    fill_inputs(ref);
}

int cnb_conform_check(const cnb_backend_desc *be, void *state, cnb_conform_ref *ref,
                      const cnb_conform_opts *opts, cnb_conform_result *res)
{
    conform_run r = {.x = {.backend = be->hdr.name, .ref = ref, .quiet = opts && opts->quiet},
                     .opts = opts, .res = res};
    memset(res, 0, sizeof *res);
    res->kernel_bytes = -1;
    for (int o = CNB_OUT_DST; o <= CNB_OUT_DB; o++)
        r.got[o] = ref->len[o] ? cnb_gbuf_new(ref->len[o], SENTINEL_OUT_BITS) : NULL;
    cnb_heap_arm();
    cnb_kernel *k = create(&r, be, state);
    if (k) {
        cnb_args fa = {.src = ref->src, .dst = r.got[CNB_OUT_DST], .weights = ref->w,
                       .bias = ref->b, .labels = ref->labels, .loss = r.got[CNB_OUT_LOSS]};
        begin(&r, "forward");
        res->rc_fwd = check_rc(&r.x, "forward", end(&r, k->forward(k, &fa), NULL));
        compare_outputs(&r, res->rc_fwd, CNB_OUT_DST, CNB_OUT_LOSS);
        if (res->rc_fwd == CNB_OK)
            backward(&r, k);
        if (!cnb_conform_problems(res))
            again(&r, k, &fa);
        begin(&r, "destroy");
        k->destroy(k);
        end(&r, 0, NULL);
    }
    cnb_heap_disarm();
    check_inputs(&r, ref);
    for (int o = CNB_OUT_DST; o <= CNB_OUT_DB; o++)
        cnb_gbuf_free(r.got[o]);
    return cnb_conform_problems(res);
}
