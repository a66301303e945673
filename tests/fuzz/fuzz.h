/*
 * fuzz.h - what the libFuzzer targets share: a quiet core, in-memory files the
 * file-based loaders can open by path, and the build tree's layer plugins.
 *
 * Each target (fuzz_*.c) defines LLVMFuzzerTestOneInput and, where it needs set-up,
 * LLVMFuzzerInitialize. Built with clang -fsanitize=fuzzer it is a libFuzzer binary;
 * built with replay.c instead (any compiler) it runs the files it is given once each,
 * which is how the seed corpora and every crash ever found are replayed as tests.
 *
 * Not here: no mocking. Every target calls the entry point the program itself uses.
 */
#ifndef CNB_FUZZ_H
#define CNB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* An in-memory file (memfd) and the path that opens it ("/proc/self/fd/N"). */
typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

/* Silence cnb_error and the log: errors are the expected outcome of most inputs. */
void fuzz_quiet(void);

/* Create once per process; aborts when the system has no memfd. */
void fuzz_file_init(fuzz_file *f, const char *name);
/* Replace the file's contents with data[0..n). */
void fuzz_file_set(fuzz_file *f, const void *data, size_t n);
/* Write data gzip-compressed (level 1) instead. */
void fuzz_file_set_gz(fuzz_file *f, const void *data, size_t n);

/* The layer plugins of the build tree ($CNB_PLUGIN_PATH first when set); loaded once,
 * aborts when there are none (a model cannot be built without them). */
const cnb_registry *fuzz_layers(void);

/* Whether a target may stop here: prints why and aborts (a crash for the fuzzer). */
#define FUZZ_CHECK(cond, what)                                                        \
    do {                                                                              \
        if (!(cond))                                                                  \
            fuzz_fail(__FILE__, __LINE__, #cond, what);                               \
    } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *what);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
