/*
 * fuzz_cifar.c - the CIFAR-10 binary loader (cnb_cifar_load) on one or two files.
 *
 * Input: byte 0 flags (bit 0: gzip the first file, bit 1: gzip the second, bit 2: there
 * is a second file), byte 1 the limit in records (0: all), bytes 2-3 the first file's
 * length (little-endian; the rest is the second file's, when there is one). A record is
 * 3073 bytes, so run it with -max_len of a few records. A load that succeeds must give
 * 3 x 32 x 32 images, labels 0 to 9 and pixels in [0, 1]; a refusal must leave the
 * dataset zeroed and say why.
 */
#include <string.h>

#include "dataset.h"
#include "fuzz.h"

static fuzz_file files[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    fuzz_file_init(&files[0], "data_batch_1.bin");
    fuzz_file_init(&files[1], "data_batch_2.bin");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    unsigned flags = data[0], limit = data[1];
    size_t split = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4, size -= 4;
    int two = (flags & 4) != 0;
    split = two && split < size ? split : size;
    const uint8_t *part[2] = {data, data + split};
    size_t len[2] = {split, size - split};
    for (int i = 0; i < 1 + two; i++) {
        if (flags & (1u << i))
            fuzz_file_set_gz(&files[i], part[i], len[i]);
        else
            fuzz_file_set(&files[i], part[i], len[i]);
    }

    const char *paths[2] = {files[0].path, files[1].path};
    cnb_dataset d;
    char err[512];
    if (cnb_cifar_load(&d, paths, 1 + two, limit, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "a refusal without a message");
        FUZZ_CHECK(!d.images && !d.labels && d.n == 0, "a refusal left data behind");
        return 0;
    }
    FUZZ_CHECK(d.n > 0 && (!limit || d.n <= (int)limit), "record count against the limit");
    FUZZ_CHECK(d.c == 3 && d.h == 32 && d.w == 32, "image shape");
    FUZZ_CHECK(d.classes >= 1 && d.classes <= 10, "class count");
    for (int i = 0; i < d.n; i++)
        FUZZ_CHECK(d.labels[i] >= 0 && d.labels[i] < d.classes, "a label outside the classes");
    size_t values = (size_t)d.n * 3 * 32 * 32;
    for (size_t k = 0; k < values; k++)
        FUZZ_CHECK(d.images[k] >= 0.0f && d.images[k] <= 1.0f, "a pixel outside [0, 1]");
    double mean[3], std[3];
    cnb_dataset_channel_stats(&d, mean, std);
    cnb_dataset_normalize(&d, mean, std);
    cnb_dataset_free(&d);
    return 0;
}
