/*
 * fuzzutil.c - the helpers of fuzz.h.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"
#include "errors.h"
#include "log.h"

void fuzz_quiet(void)
{
    cnb_error_quiet(1);
    cnb_log_set_level(CNB_LOG_ERROR);
}

_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *what)
{
    fprintf(stderr, "%s:%d: %s: '%s' does not hold\n", file, line, what, cond);
    abort();
}

void fuzz_file_init(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    FUZZ_CHECK(f->fd >= 0, "memfd_create failed");
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

void fuzz_file_set(fuzz_file *f, const void *data, size_t n)
{
    FUZZ_CHECK(ftruncate(f->fd, 0) == 0, "cannot empty the in-memory file");
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(f->fd, (const char *)data + done, n - done, (off_t)done);
        FUZZ_CHECK(w > 0, "cannot write the in-memory file");
        done += (size_t)w;
    }
}

void fuzz_file_set_gz(fuzz_file *f, const void *data, size_t n)
{
    /* a gzip wrapper (windowBits 16 + 15) around one deflate stream */
    z_stream z = {0};
    FUZZ_CHECK(deflateInit2(&z, 1, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               "deflateInit2");
    uLong cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    FUZZ_CHECK(out != NULL, "out of memory");
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    fuzz_file_set(f, out, z.total_out);
    deflateEnd(&z);
    free(out);
}

static cnb_registry layers;

const cnb_registry *fuzz_layers(void)
{
    static int loaded;
    if (!loaded) {
        cnb_registry_init(&layers);
        const char *env = getenv("CNB_PLUGIN_PATH");
        if (env && *env)
            cnb_registry_scan_default(&layers);
        else
            cnb_registry_scan_dir(&layers, CNB_BUILD_PLUGIN_DIR "/layers");
        FUZZ_CHECK(cnb_registry_layer(&layers, "conv") && cnb_registry_layer(&layers, "softmax"),
                   "no layer plugins in " CNB_BUILD_PLUGIN_DIR "/layers; build them first");
        loaded = 1;
    }
    return &layers;
}
