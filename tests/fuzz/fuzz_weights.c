/*
 * fuzz_weights.c - the weights reader (cnb_net_load_weights) against a small network
 * built once: conv (2 filters 3x3), ReLU, max pooling, flatten, fc (3 outputs),
 * softmax; four tensors, 47 floats.
 *
 * Input: byte 0 flags (bit 0: append the CRC-32 of the rest, so that the fuzzer gets past
 * the checksum and into the tensors; otherwise the rest is the whole file). A file the
 * reader accepts is saved again (cnb_net_save_weights) and must come out as the bytes
 * that were read: one format, written and read the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "net.h"

static const char model_text[] =
    "[net]\nchannels = 1\nheight = 6\nwidth = 6\nclasses = 3\n"
    "[conv1]\ntype = conv\nfilters = 2\nkernel = 3\n"
    "[act1]\ntype = act.relu\n"
    "[pool1]\ntype = pool.max\nkernel = 2\nstride = 2\n"
    "[flatten]\ntype = flatten\n"
    "[fc1]\ntype = fc\noutputs = 3\n"
    "[prob]\ntype = softmax\n";

static fuzz_file weights;
static cnb_conf model;
static cnb_net net;
static char dir[64], saved[96];

static void cleanup(void)
{
    unlink(saved);
    rmdir(dir);
    cnb_net_free(&net);
    cnb_conf_free(&model);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    fuzz_file_init(&weights, "weights.cnbw");
    FUZZ_CHECK(cnb_conf_load_string(&model, "fuzz-weights-model.ini", model_text) == 0 &&
                   cnb_net_build(&net, fuzz_layers(), &model) == 0 &&
                   cnb_net_init_params(&net, 1) == 0,
               "the built-in model does not build");
    snprintf(dir, sizeof dir, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm/cnb-fuzz-XXXXXX"
                                                                  : "/tmp/cnb-fuzz-XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL, "cannot make a temporary folder");
    snprintf(saved, sizeof saved, "%s/saved.cnbw", dir);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int add_crc = data[0] & 1;
    data++, size--;
    unsigned char *file = malloc(size + 4);
    FUZZ_CHECK(file != NULL, "out of memory");
    memcpy(file, data, size);
    size_t len = size;
    if (add_crc) {
        uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)size);
        memcpy(file + size, &c, 4); /* little-endian, as the writer puts it */
        len += 4;
    }
    fuzz_file_set(&weights, file, len);
    if (cnb_net_load_weights(&net, weights.path) == 0) {
        FUZZ_CHECK(cnb_net_save_weights(&net, saved) == 0, "an accepted file cannot be saved");
        FILE *f = fopen(saved, "rb");
        FUZZ_CHECK(f != NULL, "the saved file cannot be opened");
        unsigned char *back = malloc(len + 1);
        FUZZ_CHECK(back != NULL, "out of memory");
        size_t got = fread(back, 1, len + 1, f);
        fclose(f);
        FUZZ_CHECK(got <= len && memcmp(back, file, got) == 0,
                   "saving the weights read does not give the bytes read");
        free(back);
    }
    free(file);
    return 0;
}
