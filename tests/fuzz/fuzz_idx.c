/*
 * fuzz_idx.c - the IDX loader (cnb_idx_load) on an image file and a label file.
 *
 * Input: byte 0 flags (bit 0: gzip the image file, bit 1: gzip the label file, as the
 * Fashion-MNIST files come; otherwise the bytes are written as they are, so a gzip
 * stream the fuzzer makes itself is read too), byte 1 the limit (0: every sample),
 * bytes 2-3 the image file's length (little-endian; the rest is the label file's).
 * A load that succeeds must give what dataset.h promises (sizes, labels within classes,
 * pixels in [0, 1]), and its statistics and normalisation run; a refusal must leave the
 * dataset zeroed and say why.
 */
#include <math.h>
#include <string.h>

#include "dataset.h"
#include "fuzz.h"

static fuzz_file images, labels;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    fuzz_file_init(&images, "images-idx3-ubyte");
    fuzz_file_init(&labels, "labels-idx1-ubyte");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    unsigned flags = data[0], limit = data[1];
    size_t split = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4, size -= 4;
    split = split < size ? split : size;
    if (flags & 1)
        fuzz_file_set_gz(&images, data, split);
    else
        fuzz_file_set(&images, data, split);
    if (flags & 2)
        fuzz_file_set_gz(&labels, data + split, size - split);
    else
        fuzz_file_set(&labels, data + split, size - split);

    cnb_dataset d;
    char err[512];
    if (cnb_idx_load(&d, images.path, labels.path, limit, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "a refusal without a message");
        FUZZ_CHECK(!d.images && !d.labels && d.n == 0, "a refusal left data behind");
        return 0;
    }
    FUZZ_CHECK(d.n > 0 && (!limit || d.n <= (int)limit), "sample count against the limit");
    FUZZ_CHECK(d.c == 1 && d.h > 0 && d.w > 0, "image shape");
    FUZZ_CHECK(d.classes >= 1 && d.classes <= 256, "class count");
    for (int i = 0; i < d.n; i++)
        FUZZ_CHECK(d.labels[i] >= 0 && d.labels[i] < d.classes, "a label outside the classes");
    size_t values = (size_t)d.n * d.h * d.w;
    for (size_t k = 0; k < values; k++)
        FUZZ_CHECK(d.images[k] >= 0.0f && d.images[k] <= 1.0f, "a pixel outside [0, 1]");
    double mean, std;
    cnb_dataset_channel_stats(&d, &mean, &std);
    FUZZ_CHECK(mean >= 0.0 && mean <= 1.0 && std >= 0.0 && std <= 0.5, "channel statistics");
    cnb_dataset_normalize(&d, &mean, &std);
    for (size_t k = 0; k < values; k++)
        FUZZ_CHECK(isfinite(d.images[k]), "normalisation made a pixel infinite or NaN");
    cnb_dataset_free(&d);
    return 0;
}
