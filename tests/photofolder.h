/*
 * photofolder.h - image files for the tests and the real-photo example: JPEG and PNG
 * writers (libjpeg-turbo and libpng themselves, so the decoders are checked against the
 * libraries' own encoders) and an image folder made from colour photographs.
 *
 * The photographs are those python3-skimage ships in its data folder (astronaut, chelsea,
 * coffee, ...): each becomes a class, each sample a random scaled crop of it (seeded),
 * written as a JPEG. Not a benchmark of accuracy on real data: 4-8 photos make an easy
 * problem; it is real RGB statistics (sky, skin, fur, coffee) for PCA lighting and real
 * JPEG decoding for the input pipeline.
 */
#ifndef CNB_PHOTOFOLDER_H
#define CNB_PHOTOFOLDER_H

#include <stdint.h>

#define PHOTO_DIR "/usr/lib/python3/dist-packages/skimage/data"

/* Write (h, w, c) bytes, c = 1 or 3, as a JPEG of this quality or a PNG; 0 or -1 (with a
 * message on stderr). */
int photo_write_jpeg(const char *path, const unsigned char *px, int w, int h, int c,
                     int quality);
int photo_write_png(const char *path, const unsigned char *px, int w, int h, int c);

/* The colour photographs found in PHOTO_DIR (or $CNB_PHOTO_DIR), as file names (.png, .jpg),
 * up to max; their count (0 when the folder or the photos are missing). */
int photo_list(const char **names, int max);

/*
 * Make out/train/<photo>/NNNN.jpg (per_class each) and out/val/<photo>/NNNN.jpg (val_per
 * each) from `classes` photos: a crop of side between 35% and 90% of the photo's shorter
 * side at a random place, aspect 3:4 to 4:3, resized so its shorter side is `side`,
 * written at quality 90. Every draw from PCG32 stream (seed, 77). 0 or -1.
 */
int photo_folder(const char *out, int classes, int per_class, int val_per, int side,
                 uint64_t seed);

#endif
