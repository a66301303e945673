/*
 * fuzz_experiment.c - experiment files, with the command line's --set and --profile and
 * the model each cell builds.
 *
 * The input is an experiment file, optionally followed by parts that each start with a
 * line of its own:
 *   %%model     the model file the experiment runs (else a small built-in one that
 *               uses ${act} and ${pool})
 *   %%set       one `section.key=value` per line, as --set gives them (at most 8)
 *   %%profile   the profile name, as --profile gives it (its first line)
 * cnb_experiment_load reads it as `cnnbench run` does; then its grid is expanded and, for
 * the first cells, the model is loaded with the cell's variables and built, and the
 * cell's fingerprint taken (which reads the model again).
 *
 * Not here: nothing is trained and no data are read. The experiment's `model` key is
 * resolved as usual and then replaced by the in-memory model, so an input never reads
 * a file of the machine. Grids above 256 cells are not expanded: the loader allows
 * 100,000, each costing a copy of the variables, legitimately slow.
 */
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "fuzz.h"
#include "net.h"

#define MAX_SETS 8
#define MAX_GRID 256
#define MAX_BUILT 4

static const char default_model[] =
    "[net]\nchannels = 1\nheight = 12\nwidth = 12\nclasses = 4\n"
    "[vars]\nact = sigmoid\npool = avg\n"
    "[conv1]\ntype = conv\nfilters = 2\nkernel = 3\npad = 1\n"
    "[act1]\ntype = act.${act}\n"
    "[pool1]\ntype = pool.${pool}\nkernel = 2\nstride = 2\n"
    "[flatten]\ntype = flatten\n"
    "[fc1]\ntype = fc\noutputs = 4\n"
    "[prob]\ntype = softmax\n";

static fuzz_file experiment, model;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    fuzz_layers();
    fuzz_file_init(&experiment, "experiment.ini");
    fuzz_file_init(&model, "model.ini");
    return 0;
}

/* Cut text (NUL-terminated, writable) at each "\n%%NAME" line into its parts. */
static void split_parts(char *text, char **model_text, char **set_text, char **profile)
{
    for (char *p = strstr(text, "\n%%"); p; p = strstr(p, "\n%%")) {
        *p = '\0';
        char *name = p + 3, *body = name + strcspn(name, "\n");
        if (*body)
            *body++ = '\0';
        if (strcmp(name, "model") == 0)
            *model_text = body;
        else if (strcmp(name, "set") == 0)
            *set_text = body;
        else if (strcmp(name, "profile") == 0)
            *profile = body;
        p = body;
    }
    if (*profile)
        (*profile)[strcspn(*profile, "\n")] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    char *model_text = NULL, *set_text = NULL, *profile = NULL;
    split_parts(text, &model_text, &set_text, &profile);

    char *sets[MAX_SETS];
    int n_sets = 0;
    for (char *save = NULL, *line = set_text ? strtok_r(set_text, "\n", &save) : NULL;
         line && n_sets < MAX_SETS; line = strtok_r(NULL, "\n", &save))
        sets[n_sets++] = line;

    fuzz_file_set(&experiment, text, strlen(text));
    model_text = model_text ? model_text : (char *)default_model;
    fuzz_file_set(&model, model_text, strlen(model_text));

    cnb_experiment e;
    if (cnb_experiment_load(&e, experiment.path, profile, sets, n_sets) == 0) {
        snprintf(e.model, sizeof e.model, "%s", model.path);
        char dir[2 * PATH_MAX];
        cnb_experiment_dir(&e, dir, sizeof dir);
        size_t grid = 1;
        for (int a = 0; a < e.n_axes && grid <= MAX_GRID; a++)
            grid *= (size_t)e.axes[a].n;
        cnb_cell *cells = NULL; /* freed whatever the outcome, as cnb_sweep_run does */
        int n = 0;
        if (grid <= MAX_GRID && cnb_experiment_cells(&e, &cells, &n) == 0) {
            FUZZ_CHECK(n > 0 && (size_t)n <= grid,
                       "a grid of no cells, or of more than its axes give");
            for (int i = 0; i < n && i < MAX_BUILT; i++) {
                cnb_conf m;
                cnb_net net;
                char fingerprint[17];
                cnb_net_load(&net, &m, fuzz_layers(), e.model, &cells[i].vars);
                cnb_net_free(&net);
                cnb_conf_free(&m);
                FUZZ_CHECK(cnb_cell_fingerprint(&e, &cells[i], fingerprint) == 0,
                           "a cell without a fingerprint");
            }
        }
        cnb_cells_free(cells, n);
    }
    cnb_experiment_free(&e);
    free(text);
    return 0;
}
