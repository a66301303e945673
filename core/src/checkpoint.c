/* checkpoint.c - see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "errors.h"
#include "fsutil.h"
#include "log.h"

#define MAGIC "CNBK"
/* 2: the history's records (cnb_epoch_stats) gained loader_rate; 3: ranks and the
 * compute/allreduce split of data-parallel training; 4: the validation split's loss and
 * accuracy. Bump it whenever the record changes: a checkpoint is read back as raw
 * records, and one of another version is then refused, naming both versions (the cell
 * starts afresh), instead of being read misaligned. experiment.c asserts the record's
 * size to catch a change. */
#define VERSION 4u
#define MAX_HISTORY (64u << 20) /* bytes: far above any real run's epochs */

static int put(FILE *f, const void *p, size_t n, uLong *crc)
{
    *crc = crc32(*crc, p, (uInt)n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int get(FILE *f, void *p, size_t n, uLong *crc)
{
    if (fread(p, 1, n, f) != n)
        return -1;
    *crc = crc32(*crc, p, (uInt)n);
    return 0;
}

/* Every parameter tensor, then every layer's stream: the same walk to write and to read. */
typedef int (*io_fn)(FILE *f, void *p, size_t n, uLong *crc);

static int walk_state(FILE *f, cnb_net *net, io_fn io, uLong *crc)
{
    int bad = 0;
    for (int i = 0; i < net->n && !bad; i++) {
        cnb_net_layer *L = &net->layers[i];
        for (int p = 0; p < L->layer->n_params && !bad; p++) {
            uint64_t n = L->layer->params[p].count, have = n;
            bad = io(f, &have, sizeof have, crc) || have != n ||
                  io(f, L->w[p], n * sizeof(float), crc) ||
                  io(f, L->vel[p], n * sizeof(float), crc);
        }
        bad = bad || io(f, &L->ctx.rng, sizeof L->ctx.rng, crc);
    }
    return bad;
}

static int put_io(FILE *f, void *p, size_t n, uLong *crc) { return put(f, p, n, crc); }

int cnb_checkpoint_save(const char *path, const cnb_net *net, const char *fingerprint,
                        int epoch, const void *history, size_t history_bytes)
{
    cnb_atomic a;
    if (cnb_atomic_open(&a, path) != 0)
        return CNB_EIO;
    uLong crc = crc32(0L, Z_NULL, 0);
    uint32_t version = VERSION, ep = (uint32_t)epoch, layers = (uint32_t)net->n;
    uint64_t hb = history_bytes;
    char fp[16] = {0};
    memcpy(fp, fingerprint, strnlen(fingerprint, sizeof fp));
    int bad = put(a.f, MAGIC, 4, &crc) || put(a.f, &version, 4, &crc) ||
              put(a.f, fp, sizeof fp, &crc) || put(a.f, &ep, 4, &crc) ||
              put(a.f, &layers, 4, &crc) || put(a.f, &hb, 8, &crc) ||
              put(a.f, history, history_bytes, &crc) ||
              walk_state(a.f, (cnb_net *)net, put_io, &crc); /* only read, through put */
    uint32_t c32 = (uint32_t)crc;
    bad = bad || fwrite(&c32, 4, 1, a.f) != 1;
    if (!bad)
        return cnb_atomic_commit(&a);
    int e = errno;
    fclose(a.f);
    remove(a.tmp);
    return cnb_error_code(CNB_EIO, "%s: writing the checkpoint failed: %s (the previous one "
                          "is kept)", path, strerror(e));
}

int cnb_checkpoint_load(const char *path, cnb_net *net, const char *fingerprint, int *epoch,
                        void **history, size_t *history_bytes)
{
    *epoch = 0, *history = NULL, *history_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0; /* none: start afresh */
    /* The whole file, its checksum verified before anything of it reaches the net. */
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (size_t got = 1; got > 0; len += got) {
        if (len == cap) {
            char *grown = realloc(buf, cap = cap ? 2 * cap : 1 << 20);
            if (!grown) {
                free(buf), fclose(f);
                return cnb_error("%s: out of memory reading the checkpoint", path);
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
    }
    fclose(f);
    uint32_t c32 = 0;
    const char *why = NULL;
    if (len < 4 || (memcpy(&c32, buf + len - 4, 4),
                    c32 != (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)buf,
                                           (uInt)(len - 4))))
        why = "damaged or cut short (checksum mismatch)";
    FILE *m = why ? NULL : fmemopen(buf, len - 4, "rb");
    uLong crc = 0; /* verified above; get() keeps summing, unused */
    char magic[4], fp[16], want[16] = {0};
    uint32_t version = 0, ep = 0, layers = 0;
    uint64_t hb = 0;
    void *h = NULL;
    memcpy(want, fingerprint, strnlen(fingerprint, sizeof want));
    char older[128];
    if (!why && (!m || get(m, magic, 4, &crc) || memcmp(magic, MAGIC, 4) ||
                 get(m, &version, 4, &crc)))
        why = "not a checkpoint";
    else if (!why && version != VERSION)
        why = older, snprintf(older, sizeof older, "a checkpoint of version %u, written by %s "
                              "cnnbench (this one reads version %u)", version,
                              version < VERSION ? "an older" : "a newer", VERSION);
    else if (!why && (get(m, fp, sizeof fp, &crc) || get(m, &ep, 4, &crc) ||
                      get(m, &layers, 4, &crc) || get(m, &hb, 8, &crc)))
        why = "cut short";
    else if (!why && memcmp(fp, want, sizeof fp) != 0)
        why = "made with other settings (another fingerprint)";
    else if (!why && (layers != (uint32_t)net->n || hb > len))
        why = "made for another model";
    else if (!why && (!(h = malloc(hb ? hb : 1)) || get(m, h, hb, &crc)))
        why = "cut short";
    /* sizes are checked tensor by tensor as they are read: a mismatch stops the walk with
     * the net partly overwritten, which only a file of another model under the same
     * fingerprint could cause; that cell fails */
    int touched = !why;
    if (touched && walk_state(m, net, get, &crc))
        why = "made for another model";
    else
        touched = 0;
    if (m)
        fclose(m);
    free(buf);
    if (why) {
        free(h);
        if (touched)
            return cnb_error("%s: %s although its fingerprint matches; delete it and rerun",
                             path, why);
        cnb_log(CNB_LOG_WARN, "cnnbench", "%s: %s; not resumed from it: the cell starts "
                "afresh", path, why);
        return 0;
    }
    *epoch = (int)ep, *history = h, *history_bytes = hb;
    return 0;
}
