/*
 * fuzz_image.c - the JPEG and PNG decoders (cnb_imagefile_decode) on one file in memory.
 *
 * Input: byte 0 options (bit 0: decode to grey, else RGB; bits 1-2: the size asked for,
 * none, a shorter side of 8, 16 x 16, or a shorter side of 1, each of which picks a DCT
 * scale), then the file's bytes.
 * A decode that succeeds must give an image of 1 to CNB_IMAGE_MAX_PIXELS pixels that fits
 * the buffer it says it filled, at a scale no smaller than asked; a refusal must say why.
 * Every pixel is read, so memory the decoder did not write shows under MSan and Valgrind.
 * The reader is kept from one input to the next, as a loader thread keeps its own.
 */
#include <string.h>

#include "fuzz.h"
#include "imagefile.h"

static cnb_imagefile reader;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int c = data[0] & 1 ? 1 : 3, want = (data[0] >> 1) & 3;
    cnb_image_need need[4] = {{0, 0, 0}, {8, 0, 0}, {0, 16, 16}, {1, 0, 0}};
    char err[1024];
    err[0] = '\0';
    int rc = cnb_imagefile_decode(&reader, data + 1, size - 1, c, want ? &need[want] : NULL,
                                  err, sizeof err);
    if (rc) {
        FUZZ_CHECK(err[0] != '\0', "a refusal without a message");
        return 0;
    }
    FUZZ_CHECK(reader.h >= 1 && reader.w >= 1 && reader.c == c, "image shape");
    FUZZ_CHECK((long)reader.full_h * reader.full_w <= CNB_IMAGE_MAX_PIXELS, "the size limit");
    FUZZ_CHECK((size_t)reader.h * reader.w * c <= reader.px_cap, "pixels beyond the buffer");
    if (want) {
        int shorter = reader.h < reader.w ? reader.h : reader.w;
        int full_shorter = reader.full_h < reader.full_w ? reader.full_h : reader.full_w;
        FUZZ_CHECK(shorter >= need[want].shorter || shorter == full_shorter,
                   "scaled below the size asked for");
    }
    unsigned sum = 0;
    for (size_t k = 0; k < (size_t)reader.h * reader.w * c; k++)
        sum += reader.px[k];
    (void)sum;
    return 0;
}
