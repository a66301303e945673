/*
 * fuzz_model.c - model files. The input is a model file: cnb_net_load reads it, fills in
 * its ${var} from its own [vars] and builds the network from the build tree's layer
 * plugins (every layer's keys, shapes, parameter counts and FLOPs); a model that builds
 * has its summary printed, to /dev/null.
 *
 * Not here: no parameters are allocated (a model may legitimately declare a layer of
 * 10^8 outputs), no kernel is created.
 */
#include <stdio.h>

#include "fuzz.h"
#include "net.h"

static fuzz_file model;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    fuzz_layers();
    fuzz_file_init(&model, "model.ini");
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL, "cannot open /dev/null");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnb_conf conf;
    cnb_net net;
    fuzz_file_set(&model, data, size);
    if (cnb_net_load(&net, &conf, fuzz_layers(), model.path, NULL) == 0) {
        FUZZ_CHECK(net.n > 0 && net.classes > 0, "a built net without layers or classes");
        cnb_net_print_summary(&net, devnull);
    }
    cnb_net_free(&net);
    cnb_conf_free(&conf);
    return 0;
}
