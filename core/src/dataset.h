/*
 * dataset.h - an in-memory image classification dataset and its loaders: IDX (MNIST
 * family) and CIFAR-10 binary.
 *
 * What it is: the whole split held as float pixels in NCHW order plus int32 labels, read
 * from IDX files (Fashion-MNIST, MNIST) or CIFAR-10 binary batches through zlib, so .gz
 * and raw files load the same way; the per-channel statistics and normalisation the data
 * path applies; and the seeded hold-out of a validation split from the training split.
 *
 * What it is not: no minibatching, shuffling or augmentation (those belong to the data
 * path that consumes a cnb_dataset, augment.h), no streaming (a split is loaded whole,
 * Fashion-MNIST train is 188 MB as floats, CIFAR-10 train 614 MB), and no format other
 * than IDX and CIFAR-10 binary here (not CIFAR-100; image files: imageset.h). Memory is
 * plain malloc/free, not the plugin host allocator: nothing here is handed to a kernel as
 * is.
 */
#ifndef CNB_DATASET_H
#define CNB_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct cnb_dataset {
    int n, c, h, w;      /* images, channels, height, width          */
    int classes;         /* 1 + largest label seen                   */
    float *images;       /* (n, c, h, w), pixels scaled to [0, 1]    */
    int32_t *labels;     /* (n)                                      */
} cnb_dataset;

/*
 * Load an IDX image file (magic 0x00000803: unsigned bytes, 3 dimensions n x h x w) and
 * its IDX label file (magic 0x00000801: unsigned bytes, 1 dimension n) into *out, with
 * c = 1 and pixels divided by 255. Either file may be gzip-compressed or raw.
 *
 * limit 0 loads every sample, otherwise the first min(limit, n). The two headers must
 * declare the same n even when a limit is given (they must be one split's pair).
 *
 * Returns 0, or CNB_EIO (cannot open or read, corrupt gzip stream), CNB_EINVAL (wrong
 * magic, zero dimension, truncated data, count mismatch) or CNB_ENOMEM, with a one-line
 * message in err (when err is not NULL) naming the file and what to do. On failure *out
 * is left zeroed and owns nothing; on success release it with cnb_dataset_free.
 */
int cnb_idx_load(cnb_dataset *out, const char *images_path, const char *labels_path,
                 size_t limit, char *err, size_t errlen);

/*
 * The same reads and checks as cnb_idx_load (headers, sizes, every byte the load would
 * read, gzip streams and trailers), without keeping the pixels: *out gets n, c, h, w,
 * classes and the labels, images NULL. For checking data before anything runs: it holds
 * 4 bytes per sample, not 4 per pixel. Same returns and messages as cnb_idx_load.
 */
int cnb_idx_check(cnb_dataset *out, const char *images_path, const char *labels_path,
                  size_t limit, char *err, size_t errlen);

/*
 * Load the conventional file pair of one split from a folder: split "train" reads
 * <dir>/train-images-idx3-ubyte.gz and <dir>/train-labels-idx1-ubyte.gz, "t10k" the test
 * pair. Where the .gz name does not exist but the unpacked name does, the latter is read.
 * Same returns and messages as cnb_idx_load.
 */
int cnb_idx_load_split(cnb_dataset *out, const char *dir, const char *split, size_t limit,
                       char *err, size_t errlen);

/*
 * Load CIFAR-10 binary files (paths[0..n_paths), in that order, each raw or gzip) into
 * *out: records of 1 label byte (0..9) and 3072 pixel bytes, 1024 R, 1024 G, 1024 B, each
 * 32 x 32 row-major; c = 3, h = w = 32, pixels divided by 255, classes = 1 + largest label.
 * limit 0 loads every record, otherwise the first min(limit, total) (later files are then
 * not read).
 *
 * Returns 0, or CNB_EIO (cannot open or read, corrupt gzip stream), CNB_EINVAL (no paths,
 * an empty file, a size that is not a multiple of the 3073-byte record, a label above 9;
 * the message names the file, its size and the record size) or CNB_ENOMEM. On failure
 * *out is left zeroed and owns nothing; on success release it with cnb_dataset_free.
 */
int cnb_cifar_load(cnb_dataset *out, const char *const *paths, int n_paths, size_t limit,
                   char *err, size_t errlen);

/*
 * Load one split from a folder (the tarball's cifar-10-batches-bin/): "train" reads
 * <dir>/data_batch_1.bin .. data_batch_5.bin, "test" <dir>/test_batch.bin; each name
 * or the same with .gz. Missing files are CNB_EIO with a message naming every one missing;
 * otherwise as cnb_cifar_load.
 */
int cnb_cifar_load_split(cnb_dataset *out, const char *dir, const char *split, size_t limit,
                         char *err, size_t errlen);

/*
 * Hold out `count` samples of *train (0 < count < train->n) as a validation split: the
 * first `count` of a partial Fisher-Yates shuffle of the indices from the stream (seed,
 * CNB_STREAM_VALIDATION), so that the same split size and seed always hold out the same
 * samples. They move into *val and the rest stay in *train, each in their order in the
 * split; no sample is in both. *digest gets the CRC-32 of the held-out indices (ascending,
 * 32-bit little-endian) for the run's metadata. Returns 0, or CNB_ENOMEM with *train
 * unchanged.
 */
int cnb_dataset_holdout(cnb_dataset *train, int count, uint64_t seed, cnb_dataset *val,
                        uint32_t *digest);

/*
 * The draw of cnb_dataset_holdout alone, for any split of n samples (image files hold out
 * the same way: imageset.h): held[i] (n bytes) gets 1 for the `count` samples held out, 0
 * for the rest; *digest as there. Returns 0, or CNB_ENOMEM.
 */
int cnb_holdout_draw(int n, int count, uint64_t seed, unsigned char *held, uint32_t *digest);

/* Free what a loader allocated and zero *d. Safe on a zeroed struct and on NULL. */
void cnb_dataset_free(cnb_dataset *d);

/*
 * Per-channel mean and population standard deviation (divided by the count, not count-1)
 * over every pixel of every image, accumulated in double, two passes. mean and std are
 * arrays of d->c. An empty dataset gives mean 0, std 0.
 */
void cnb_dataset_channel_stats(const cnb_dataset *d, double *mean, double *std);

/*
 * In place, per channel: x = (x - mean[ch]) / std[ch]. A channel whose std is not
 * positive (a constant channel) is only shifted by its mean, never divided by zero.
 */
void cnb_dataset_normalize(cnb_dataset *d, const double *mean, const double *std);

#endif
