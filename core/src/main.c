/*
 * main.c - the cnnbench command line: `cnnbench VERB [ARGUMENT] [options]`.
 *
 * The verbs are one table (verbs[]): each row names its argument, its help, the options
 * it takes and the function that runs it; adding a verb is adding a row. Options are
 * parsed by getopt_long, anywhere on the line, then checked against the verb's list, so
 * an option of another verb is refused by name. `cnnbench VERB --help` prints the verb's
 * own help, `cnnbench --help` the list of verbs.
 *
 * Exit status: 0 success, 1 a run failed, 2 bad input or usage, 130 interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "check.h"
#include "claims.h"
#include "cnnbench/op_check.h"
#include "config.h"
#include "dist.h"
#include "errors.h"
#include "experiment.h"
#include "launcher.h"
#include "log.h"
#include "net.h"
#include "registry.h"
#include "report.h"
#include "sweep.h"
#include "train.h"

#define MAX_SETS 64
#define MAX_PLUGINS 64 /* the bench passes each network's memory probe every plugin file */
#define MAX_CELLS 256

typedef struct options {
    const char *command, *file;
    char *sets[MAX_SETS];
    int n_sets;
    const char *plugins[MAX_PLUGINS];
    int n_plugins;
    int quiet;
    const char *profile;
    int dry_run, force, jobs;
    const char *out;              /* bench: --out DIR */
    const char *cells[MAX_CELLS]; /* run: --cell IDs */
    int n_cells;
    int shard, shards;            /* run: --shard I/N (shards 0: none) */
    int list_cells;               /* run: --list-cells */
    int slurm, no_wait;           /* run: --launcher slurm, --no-wait */
    int threads;        /* check: 0 = the online CPUs */
    double timeout;     /* check */
    int no_speed;       /* check */
    const char *input;  /* check: a layer's input, HxWxC */
    const char *cases;  /* check: a glob over the case names */
    const char *backend; /* summary: --backend NAME */
    int batch;           /* summary: --batch N (0: 32) */
} options;

/* Every option, its getopt_long entry and its help line; a verb lists the ones it takes.
 * -h, --help, --version, -q and --plugin are every verb's. */
enum {
    OPT_SET = 256, OPT_PLUGIN, OPT_PROFILE, OPT_DRY_RUN, OPT_FORCE, OPT_JOBS, OPT_CELL,
    OPT_SHARD, OPT_LIST_CELLS, OPT_THREADS, OPT_TIMEOUT, OPT_NO_SPEED, OPT_INPUT, OPT_CASES,
    OPT_LAUNCHER, OPT_NO_WAIT, OPT_OUT, OPT_VERSION, OPT_BACKEND, OPT_BATCH
};

static const struct option long_options[] = {
    {"set", required_argument, NULL, OPT_SET},
    {"plugin", required_argument, NULL, OPT_PLUGIN},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"force", no_argument, NULL, OPT_FORCE},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"cell", required_argument, NULL, OPT_CELL},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"list-cells", no_argument, NULL, OPT_LIST_CELLS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"no-speed", no_argument, NULL, OPT_NO_SPEED},
    {"input", required_argument, NULL, OPT_INPUT},
    {"cases", required_argument, NULL, OPT_CASES},
    {"launcher", required_argument, NULL, OPT_LAUNCHER},
    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
    {"out", required_argument, NULL, OPT_OUT},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

typedef struct option_help {
    int id;
    const char *usage, *text; /* text: lines after the first indented by the caller */
} option_help;

static const option_help option_helps[] = {
    {OPT_PROFILE, "--profile NAME", "apply the experiment's [profile.NAME]"},
    {OPT_DRY_RUN, "--dry-run", "print the grid, each cell's memory estimate and state;\n"
                               "run nothing"},
    {OPT_FORCE, "--force", "run: rerun the selected cells even when finished;\n"
                           "bench, or run of a time experiment: replace the results\n"
                           "already in its folder (refused without it)"},
    {OPT_OUT, "--out DIR", "write the results into DIR (default results/bench-MODEL\n"
                           "under the current folder)"},
    {OPT_JOBS, "--jobs N", "cells at once (default: cores / the cells' threads)"},
    {OPT_CELL, "--cell ID", "only this cell (repeatable, or ID,ID,...); any number of\n"
                            "processes, on any machines sharing the folder, may\n"
                            "run cells of one grid at once"},
    {OPT_SHARD, "--shard I/N", "only cells I, I+N, I+2N, ... of the grid (I from 0)"},
    {OPT_LIST_CELLS, "--list-cells", "print the ids of the cells still to run, one a line"},
    {OPT_LAUNCHER, "--launcher slurm", "submit the cells still to run as a Slurm job array\n"
                                       "([launcher] in the experiment; docs/cluster.md),\n"
                                       "follow it, then write the report"},
    {OPT_NO_WAIT, "--no-wait", "with --launcher slurm: submit, then return"},
    {OPT_BACKEND, "--backend NAME", "also build the model on this backend, run a forward\n"
                                    "pass and a training step, and say its memory"},
    {OPT_BATCH, "--batch N", "with --backend: the batch (default 32)"},
    {OPT_THREADS, "--threads N", "threads for every backend (default: the cores)"},
    {OPT_TIMEOUT, "--timeout SECONDS", "kill a child making no progress (default 60)"},
    {OPT_NO_SPEED, "--no-speed", "correctness only"},
    {OPT_CASES, "--cases GLOB", "only the cases whose name matches ('lenet.fc1*',\n"
                                "'tile.*'; the FAIL lines name them)"},
    {OPT_INPUT, "--input HxWxC", "a layer plugin's input (default 9x7x4); its keys come\n"
                                 "from --set KEY=VALUE (--set filters=4)"},
    {OPT_PLUGIN, "--plugin FILE", "load this plugin file too (repeatable)"},
    {'q', "-q, --quiet", "no progress bar, warnings only"},
    {'h', "-h, --help", "this help"},
};

#define BIT(id) (1ull << ((id) == 'q' ? 0 : (id) == 'h' ? 1 : (id) - OPT_SET + 2))
#define EVERY_VERB (BIT(OPT_PLUGIN) | BIT('q') | BIT('h') | BIT(OPT_VERSION))

static int cmd_plugins(cnb_registry *reg, const options *o);
static int cmd_summary(cnb_registry *reg, const options *o);
static int cmd_run(cnb_registry *reg, const options *o);
static int cmd_bench(cnb_registry *reg, const options *o);
static int cmd_report(cnb_registry *reg, const options *o);
static int cmd_check(cnb_registry *reg, const options *o);
static int cmd_status(cnb_registry *reg, const options *o);
static int cmd_convert(cnb_registry *reg, const options *o);

/* A verb: its argument, its one-line summary, what it does, its --set, its options. */
typedef struct verb {
    const char *name, *arg, *summary, *about, *set_help;
    unsigned long long options;
    int (*run)(cnb_registry *reg, const options *o);
    int needs_plugins; /* loads the registry first (check loads plugins in children) */
} verb;

static const verb verbs[] = {
    {"plugins", NULL, "list the plugins found (backends, layer variants)",
     "Lists every plugin found: its kind, name, version, ABI, file, and what it provides\n"
     "(a backend's ops; a layer's type and keys).",
     NULL, 0, cmd_plugins, 1},
    {"summary", "MODEL.ini", "per layer: plugin, output shape, parameters, FLOPs",
     "Builds the model and prints, per layer, its plugin, output shape (H x W x C),\n"
     "parameters and forward FLOPs, then the totals. With --backend, the network is\n"
     "built on that backend (--threads, --batch) and runs a forward pass and a\n"
     "training step on a synthetic batch; then what it holds (activations, parameters,\n"
     "its kernels' own) and how far the process's peak resident memory rose: the\n"
     "figures of the bench's memory table, for one network in a process of its own.",
     "set a model variable: --set act=relu",
     BIT(OPT_SET) | BIT(OPT_BACKEND) | BIT(OPT_THREADS) | BIT(OPT_BATCH), cmd_summary, 1},
    {"run", "EXPERIMENT.ini", "run an experiment: every cell of its grid, then its report",
     "Runs every cell of the experiment's grid (each in a child process, resumable:\n"
     "finished cells are kept and skipped), then writes its report and plots under\n"
     "[experiment] results/NAME. mode = time times backends instead; mode = claims\n"
     "runs the claims file's experiments and answers each claim.",
     "override one key of the file: --set train.epochs=3,\n"
     "--set vars.act=relu, --set sweep.seed=1,2 (repeatable)",
     BIT(OPT_SET) | BIT(OPT_PROFILE) | BIT(OPT_DRY_RUN) | BIT(OPT_FORCE) | BIT(OPT_JOBS) |
         BIT(OPT_CELL) | BIT(OPT_SHARD) | BIT(OPT_LIST_CELLS) | BIT(OPT_LAUNCHER) |
         BIT(OPT_NO_WAIT),
     cmd_run, 1},
    {"bench", "MODEL.ini", "time one model on every backend",
     "Times the model on every backend found (or those given): the whole network\n"
     "(inference, and a training step) and every layer, forward and backward,\n"
     "interleaved with the FP32 peak probe; writes results/bench-MODEL/ (or --out DIR),\n"
     "and refuses a folder that holds an earlier bench's results unless --force.\n"
     "The model runs with its own [vars] unless --set bench.vars changes them.",
     "one setting each: --set bench.threads=1,2 --set bench.batch=256\n"
     "--set bench.vars=\"act=relu pool=max\" --set bench.backends=naive,onednn",
     BIT(OPT_SET) | BIT(OPT_FORCE) | BIT(OPT_OUT), cmd_bench, 1},
    {"report", "RESULTS_DIR", "redo a sweep's tables and plots from its cells",
     "Reads every cell's state from its folder (the cells finished by any process) and\n"
     "writes the report, tables and plots of a results folder that `run` made.",
     NULL, 0, cmd_report, 1},
    {"status", "RESULTS_DIR", "each cell's state (and its Slurm task, node, why)",
     "Shows each cell of a results folder: its state (done, diverged, running, queued,\n"
     "failed, pending) from its folder; for a cell run under Slurm, its job and array\n"
     "task, node, elapsed time and, when it failed, Slurm's reason and its log's tail.",
     NULL, 0, cmd_status, 0},
    {"plot", "RESULTS_DIR", "redraw every plot in a results folder",
     "Runs gnuplot on every *.gp script of a results folder (PNG and SVG).", NULL, 0,
     cmd_report, 1},
    {"check", "PLUGIN", "check one plugin against the reference, then time it",
     "Checks one plugin (a name from `cnnbench plugins`, or a .so file): a backend\n"
     "against the naive reference on every conformance case, a layer by its gradient\n"
     "check; then times it against the other backends. Each part runs in a child\n"
     "process.",
     "a layer plugin's key: --set filters=4",
     BIT(OPT_SET) | BIT(OPT_THREADS) | BIT(OPT_TIMEOUT) | BIT(OPT_NO_SPEED) |
         BIT(OPT_INPUT) | BIT(OPT_CASES),
     cmd_check, 0},
    {"convert", "EXPERIMENT.ini", "pack an experiment's image files into its [data] cache",
     "Decodes and resizes every image of an image-file experiment's training and test\n"
     "splits once and writes them to [data] cache as train.cnbpack and test.cnbpack\n"
     "(docs/image-pack.md); runs with that cache then read them with no decoding.",
     "override one key of the file: --set data.cache=../data/packs",
     BIT(OPT_SET) | BIT(OPT_PROFILE), cmd_convert, 0},
};
#define N_VERBS ((int)(sizeof verbs / sizeof verbs[0]))

static const verb *find_verb(const char *name)
{
    for (int i = 0; name && i < N_VERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/* An option's help: its usage, then its text, later lines indented to the text. */
static void print_option(FILE *out, const char *usage, const char *text)
{
    fprintf(out, "  %-24s ", usage);
    for (const char *t = text; *t; t++) {
        fputc(*t, out);
        if (*t == '\n')
            fprintf(out, "%27s", "");
    }
    fputc('\n', out);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cnnbench COMMAND [ARGUMENT] [options]\n\ncommands:\n");
    for (int i = 0; i < N_VERBS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", verbs[i].name, verbs[i].arg ? verbs[i].arg : "");
        fprintf(out, "  %-24s %s\n", head, verbs[i].summary);
    }
    fprintf(out, "\n`cnnbench COMMAND --help` gives a command's options. Every command takes\n"
                 "--plugin FILE (load this plugin file too), -q (warnings only), --help.\n"
                 "Exit status: 0 success, 1 a run failed, 2 bad input or usage, 130 "
                 "interrupted.\n\nplugins are searched in $CNB_PLUGIN_PATH (colon-separated), "
                 "then %s\n(from the build tree) or %s (installed).\n",
            CNB_BUILD_PLUGIN_DIR, CNB_INSTALL_PLUGIN_DIR);
}

static void verb_usage(FILE *out, const verb *v)
{
    fprintf(out, "usage: cnnbench %s%s%s [options]\n\n%s\n\noptions:\n", v->name,
            v->arg ? " " : "", v->arg ? v->arg : "", v->about);
    if (v->set_help)
        print_option(out, "--set KEY=VALUE", v->set_help);
    for (size_t k = 0; k < sizeof option_helps / sizeof option_helps[0]; k++)
        if ((v->options | EVERY_VERB) & BIT(option_helps[k].id))
            print_option(out, option_helps[k].usage, option_helps[k].text);
}

/* The name an option was given under, for messages: "--jobs". */
static const char *option_name(int id)
{
    static char name[32];
    for (const struct option *l = long_options; l->name; l++)
        if (l->val == id)
            return snprintf(name, sizeof name, "--%s", l->name), name;
    return "?";
}

/* One option's value into `o`: CNB_EINVAL (said) when it is malformed. */
static int set_option(options *o, int id, char *v)
{
    char *end, tail;
    long n;
    switch (id) {
    case 'q':
        o->quiet = 1;
        return 0;
    case OPT_DRY_RUN:
        o->dry_run = 1;
        return 0;
    case OPT_FORCE:
        o->force = 1;
        return 0;
    case OPT_NO_SPEED:
        o->no_speed = 1;
        return 0;
    case OPT_LIST_CELLS:
        o->list_cells = 1;
        return 0;
    case OPT_NO_WAIT:
        o->no_wait = 1;
        return 0;
    case OPT_LAUNCHER:
        if (strcmp(v, "slurm") != 0 && strcmp(v, "local") != 0)
            return cnb_error("--launcher %s: expected slurm (a Slurm job array) or local", v);
        o->slurm = strcmp(v, "slurm") == 0;
        return 0;
    case OPT_PROFILE:
        o->profile = v;
        return 0;
    case OPT_CASES:
        o->cases = v;
        return 0;
    case OPT_INPUT:
        o->input = v;
        return 0;
    case OPT_OUT:
        o->out = v;
        return 0;
    case OPT_BACKEND:
        o->backend = v;
        return 0;
    case OPT_SET:
        if (o->n_sets == MAX_SETS)
            return cnb_error("more than %d --set options", MAX_SETS);
        o->sets[o->n_sets++] = v;
        return 0;
    case OPT_PLUGIN:
        if (o->n_plugins == MAX_PLUGINS)
            return cnb_error("more than %d --plugin options", MAX_PLUGINS);
        o->plugins[o->n_plugins++] = v;
        return 0;
    case OPT_JOBS:
    case OPT_THREADS:
        n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 256)
            return cnb_error("%s %s: expected a number from 1 to 256", option_name(id), v);
        *(id == OPT_JOBS ? &o->jobs : &o->threads) = (int)n;
        return 0;
    case OPT_BATCH:
        n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 65536)
            return cnb_error("--batch %s: expected a number from 1 to 65536", v);
        o->batch = (int)n;
        return 0;
    case OPT_TIMEOUT:
        o->timeout = strtod(v, &end);
        if (*end || !(o->timeout > 0))
            return cnb_error("--timeout %s: expected seconds above 0", v);
        return 0;
    case OPT_CELL:
        for (char *save = NULL, *cell = strtok_r(v, ",", &save); cell;
             cell = strtok_r(NULL, ",", &save)) {
            if (o->n_cells == MAX_CELLS)
                return cnb_error("--cell: more than %d cells; use --shard I/N", MAX_CELLS);
            o->cells[o->n_cells++] = cell;
        }
        return 0;
    case OPT_SHARD:
        if (sscanf(v, "%d/%d%c", &o->shard, &o->shards, &tail) != 2 || o->shards < 1 ||
            o->shard < 0 || o->shard >= o->shards)
            return cnb_error("--shard %s: expected I/N with 0 <= I < N (--shard 0/4 runs "
                             "cells 0, 4, 8, ...)", v);
        return 0;
    }
    return CNB_EINVAL;
}

/* Parses the whole command line (options anywhere) and checks each option against the
 * verb's list; --help and --version answer here and exit. */
static int parse_args(int argc, char **argv, options *o, const verb **verb_out)
{
    memset(o, 0, sizeof *o);
    int ids[256], n = 0, help = 0;
    char *values[256];
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hq", long_options, NULL)) != -1;) {
        if (c == '?' || c == ':') {
            const char *what = optopt ? option_name(optopt) : argv[optind - 1];
            return cnb_error(c == ':' ? "%s needs a value; see cnnbench --help"
                                      : "unknown option '%s'; see cnnbench --help",
                             c == ':' && !optopt ? argv[optind - 1] : what);
        }
        if (c == OPT_VERSION) {
            printf("cnnbench %s\n", CNB_VERSION);
            exit(0);
        }
        help |= c == 'h';
        if (n == (int)(sizeof ids / sizeof ids[0]))
            return cnb_error("too many options");
        ids[n] = c;
        values[n++] = optarg;
    }
    if (optind < argc)
        o->command = argv[optind++];
    if (optind < argc)
        o->file = argv[optind++];
    const verb *v = find_verb(o->command);
    if (help) {
        if (v)
            verb_usage(stdout, v);
        else
            usage(stdout);
        exit(0);
    }
    if (!o->command)
        return usage(stderr), CNB_EINVAL;
    if (!v) {
        char names[256] = "";
        for (int i = 0; i < N_VERBS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     i ? ", " : "", verbs[i].name);
        return cnb_error("unknown command '%s'; commands: %s", o->command, names);
    }
    if (optind < argc)
        return cnb_error("unexpected argument '%s'; see cnnbench %s --help", argv[optind],
                         v->name);
    for (int i = 0; i < n; i++) {
        if (!((v->options | EVERY_VERB) & BIT(ids[i])))
            return cnb_error("%s is not an option of %s; see cnnbench %s --help",
                             option_name(ids[i]), v->name, v->name);
        if (set_option(o, ids[i], values[i]))
            return CNB_EINVAL;
    }
    *verb_out = v;
    return 0;
}

static int load_plugins(cnb_registry *reg, const options *o)
{
    cnb_registry_init(reg);
    for (int i = 0; i < o->n_plugins; i++) {
        char err[1024];
        if (cnb_registry_load_file(reg, o->plugins[i], err, sizeof err) != 0)
            return cnb_error("--plugin: %s", err);
    }
    cnb_registry_scan_default(reg);
    if (!cnb_registry_backend(reg, CNB_REFERENCE_BACKEND))
        return cnb_error("the naive backend plugin was not found (searched %s); build the "
                         "project (meson compile -C build) or set CNB_PLUGIN_PATH",
                         reg->searched ? reg->searched : "nothing");
    return 0;
}

/* " conv, relu" for every op whose bit in `ops` equals `set` */
static void print_ops(uint32_t ops, int set)
{
    int any = 0;
    for (int op = 0; op < CNB_OP_COUNT; op++)
        if (!!(ops & CNB_OP_BIT(op)) == set)
            printf("%s%s", any++ ? ", " : " ", cnb_op_name(op));
    printf("%s\n", any ? "" : " (none)");
}

/* A backend's threads and optional entries, each with what it means, a line each. */
static void print_backend_extras(const cnb_backend_desc *b)
{
    unsigned max = CNB_BACKEND_FIELD_OR(b, max_threads, 0u);
    if (max == 0)
        printf("%42s threads: as many as it is given (--threads, [bench] threads)\n", "");
    else
        printf("%42s threads: %u at most%s; bench and check time it at no more\n", "", max,
               max == 1 ? " (single-threaded)" : "");
    const struct {
        int has;
        const char *said;
    } extras[] = {
        {CNB_BACKEND_FIELD(b, layout_of) != NULL,
         "native layouts: passes tensors in its own layout between its kernels"},
        {CNB_BACKEND_FIELD(b, library_pass) != NULL,
         "library passes: can time its library calls alone (the bench's library tables)"},
        {CNB_BACKEND_FIELD(b, park) != NULL,
         "park: the bench lets its idle threads sleep while it times other backends"},
        {CNB_BACKEND_FIELD(b, fuse_create) != NULL,
         "fused runs: may run a conv or fc layer and the layers after it as one kernel "
         "(':nofuse' turns it off)"},
        {CNB_BACKEND_FIELD(b, kernel_bytes) != NULL,
         "kernel bytes: says what memory its kernels hold (the bench's memory table)"},
        {CNB_BACKEND_FIELD(b, algorithm) != NULL,
         "algorithms: says which kernels do fewer multiply-adds than their op's "
         "definition (Winograd; the bench's shares are then direct-equivalent)"},
    };
    for (size_t k = 0; k < sizeof extras / sizeof extras[0]; k++)
        if (extras[k].has)
            printf("%42s %s\n", "", extras[k].said);
}

static int cmd_plugins(cnb_registry *reg, const options *o)
{
    (void)o;
    printf("searched: %s\n\n", reg->searched ? reg->searched : "(nothing)");
    printf("%-8s %-16s %-8s %-5s %s\n", "kind", "name", "version", "abi", "file / provides");
    for (int i = 0; i < reg->n; i++) {
        const cnb_plugin *p = &reg->items[i];
        printf("%-8s %-16s %-8s %u.%-3u %s\n", cnb_plugin_kind_name((cnb_plugin_kind)p->hdr->kind),
               p->hdr->name, p->hdr->version, p->hdr->abi_major, p->hdr->abi_minor, p->path);
        if (p->hdr->kind == CNB_PLUGIN_BACKEND) {
            const cnb_backend_desc *b = (const cnb_backend_desc *)p->hdr;
            printf("%42s ops:", "");
            print_ops(b->ops, 1);
            if ((b->ops & CNB_OPS_ALL) != CNB_OPS_ALL) {
                printf("%42s on naive:", "");
                print_ops(b->ops, 0);
            }
            print_backend_extras(b);
        } else {
            const cnb_layer_desc *l = (const cnb_layer_desc *)p->hdr;
            printf("%42s type = %s; keys:", "", p->hdr->name);
            for (int k = 0; l->keys && l->keys[k]; k++)
                printf("%s%s", k ? ", " : " ", l->keys[k]);
            printf("%s\n", l->flags & CNB_LAYER_STANDS_IN ? " those of the layer it stands in "
                                                         "for, ignored"
                            : l->keys && l->keys[0] ? ""
                                                    : " (none)");
        }
        printf("%42s %s\n", "", p->hdr->description ? p->hdr->description : "");
    }
    if (reg->refused)
        printf("\n%d file%s refused (see the messages above)\n", reg->refused,
               reg->refused == 1 ? "" : "s");
    return 0;
}

static void print_mib(const char *what, double bytes, const char *note)
{
    printf("  %-22s %10.1f MiB  %s\n", what, bytes / 1048576.0, note);
}

/* After a forward pass and a training step on `backend`: what the network holds and the
 * peak resident memory's rise (a line the bench reads: "peak resident memory: X MiB"). */
static void print_memory(const cnb_net *net, const char *backend, int threads, int batch,
                         double peak)
{
    cnb_net_memory m = cnb_net_memory_of(net);
    printf("\nmemory on %s, %d thread%s, batch %d, after a forward pass and a training step:\n",
           backend, threads, threads == 1 ? "" : "s", batch);
    print_mib("activations:", (double)m.activations,
              "the batch, every layer's output and its gradient");
    print_mib("parameters:", (double)m.params, "weights, their gradients and momentum");
    if (m.kernels_known)
        print_mib("kernels:", (double)m.kernels, "what the kernels hold of their own");
    else
        printf("  %-22s %14s  a backend of ABI 2.2 or before cannot say\n", "kernels:", "unknown");
    if (isnan(peak))
        printf("  peak resident memory: unknown (no /proc/self/clear_refs)\n");
    else
        printf("  peak resident memory: %.1f MiB over the process's before it was built\n",
               peak);
}

static int cmd_summary(cnb_registry *reg, const options *o)
{
    if (!o->file)
        return cnb_error("summary needs a model file: cnnbench summary experiments/models/lenet5.ini");
    if (!o->backend && (o->threads || o->batch))
        return cnb_error("summary: %s goes with --backend NAME, the backend to build the model "
                         "on", o->threads ? "--threads" : "--batch");
    cnb_vars vars = {0};
    int rc = 0;
    for (int i = 0; i < o->n_sets && rc == 0; i++) {
        char *eq = strchr(o->sets[i], '=');
        if (!eq || eq == o->sets[i]) {
            rc = cnb_error("--set %s: expected NAME=VALUE (a model variable, e.g. act=relu)",
                           o->sets[i]);
            break;
        }
        char at[600];
        snprintf(at, sizeof at, "--set %s", o->sets[i]);
        *eq = '\0';
        rc = cnb_vars_set_at(&vars, o->sets[i], eq + 1, at);
        *eq = '=';
    }
    cnb_conf model;
    cnb_net net;
    double peak = NAN;
    const int threads = o->threads ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int batch = o->batch ? o->batch : 32;
    memset(&model, 0, sizeof model);
    memset(&net, 0, sizeof net);
    if (rc == 0 && o->backend)
        rc = cnb_bench_memory(&net, &model, reg, o->file, &vars, o->backend, threads, batch,
                              1, &peak);
    else if (rc == 0)
        rc = cnb_net_load(&net, &model, reg, o->file, &vars);
    if (rc == 0)
        cnb_net_print_summary(&net, stdout);
    if (rc == 0 && o->backend)
        print_memory(&net, o->backend, threads, batch, peak);
    cnb_net_free(&net);
    cnb_conf_free(&model);
    cnb_vars_free(&vars);
    return rc;
}

/* A time experiment's conf with the --set overrides applied. */
static int run_time_experiment(cnb_conf *c, cnb_registry *reg, const options *o)
{
    int rc = 0;
    for (int i = 0; i < o->n_sets && rc == 0; i++)
        rc = cnb_conf_set(c, o->sets[i], NULL, 0);
    const cnb_bench_opts opts = {.force = o->force,
                                 .elsewhere = "give it another [experiment] name or results"};
    return rc ? rc : cnb_bench_run(c, reg, &opts);
}

static int cmd_bench(cnb_registry *reg, const options *o)
{
    if (!o->file)
        return cnb_error("bench needs a model file: cnnbench bench experiments/models/lenet5.ini");
    char real[PATH_MAX], name[256], text[8192], backends[1024] = "";
    if (!realpath(o->file, real))
        return cnb_error("%s: cannot open: %s", o->file, strerror(errno));
    cnb_conf peek; /* a model file, not an experiment: said before anything is timed */
    int rc = cnb_conf_load(&peek, o->file);
    int is_experiment = rc == 0 && cnb_conf_section(&peek, "experiment") != NULL;
    cnb_conf_free(&peek);
    if (rc)
        return rc;
    if (is_experiment)
        return cnb_error("%s is an experiment file; bench takes a model file (experiments/"
                         "models/lenet5.ini): run an experiment with cnnbench run %s",
                         o->file, o->file);
    snprintf(name, sizeof name, "%s", strrchr(real, '/') + 1);
    name[strcspn(name, ".")] = '\0';
    for (int i = 0; i < reg->n; i++)
        if (reg->items[i].hdr->kind == CNB_PLUGIN_BACKEND)
            snprintf(backends + strlen(backends), sizeof backends - strlen(backends), "%s%s",
                     backends[0] ? ", " : "", reg->items[i].hdr->name);
    snprintf(text, sizeof text,
             "[experiment]\nname = bench-%s\nmode = time\n[bench]\nbackends = %s\n"
             "threads = 1\n[bench.%s]\nmodel = %s\nbatch = 64\n",
             name, backends, name, real);
    cnb_conf c;
    rc = cnb_conf_load_string(&c, "(cnnbench bench)", text);
    for (int i = 0; i < o->n_sets && rc == 0; i++) {
        char section[300];
        snprintf(section, sizeof section, "bench.%s", name);
        const char *eq = strchr(o->sets[i], '=');
        if (eq && (strncmp(o->sets[i], "bench.batch=", 12) == 0 ||
                   strncmp(o->sets[i], "bench.vars=", 11) == 0)) { /* the one model's */
            char key[8];
            snprintf(key, sizeof key, "%.*s", (int)(eq - o->sets[i] - 6), o->sets[i] + 6);
            rc = cnb_conf_put(&c, section, key, eq + 1, 0);
        } else
            rc = cnb_conf_set(&c, o->sets[i], NULL, 0);
    }
    const cnb_bench_opts opts = {.force = o->force, .out = o->out, .elsewhere = "--out DIR"};
    if (rc == 0)
        rc = cnb_bench_run(&c, reg, &opts);
    cnb_conf_free(&c);
    return rc;
}

static int cmd_run(cnb_registry *reg, const options *o)
{
    if (!o->file)
        return cnb_error("run needs an experiment file: cnnbench run experiments/lenet5-fashion.ini");
    cnb_conf peek;
    int is_time = 0, is_claims = 0;
    if (cnb_conf_load(&peek, o->file) != 0) { /* said once, here */
        cnb_conf_free(&peek);
        return CNB_EINVAL;
    }
    const cnb_kv *mode = cnb_section_get(cnb_conf_section(&peek, "experiment"), "mode");
    is_time = mode && strcmp(mode->value, "time") == 0;
    is_claims = mode && strcmp(mode->value, "claims") == 0;
    if ((is_time || is_claims) && (o->n_cells || o->shards || o->list_cells)) {
        cnb_conf_free(&peek);
        return cnb_error("%s: --cell, --shard and --list-cells pick cells of a training grid; "
                         "this experiment has mode = %s", o->file, mode->value);
    }
    if ((is_time || is_claims) && o->slurm) {
        cnb_conf_free(&peek);
        return cnb_error("%s: --launcher slurm runs the cells of a training grid; this "
                         "experiment has mode = %s: run it on one machine", o->file, mode->value);
    }
    if (is_time) {
        int rc = run_time_experiment(&peek, reg, o);
        cnb_conf_free(&peek);
        return rc;
    }
    if (is_claims) {
        int rc = 0;
        for (int i = 0; i < o->n_sets && rc == 0; i++)
            rc = cnb_conf_set(&peek, o->sets[i], NULL, 0);
        cnb_sweep_opts so = {.dry_run = o->dry_run, .force = o->force,
                             .jobs = o->jobs ? o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN)};
        if (rc == 0)
            rc = cnb_claims_run(&peek, o->file, o->profile, reg, &so);
        cnb_conf_free(&peek);
        return rc;
    }
    cnb_conf_free(&peek);
    cnb_experiment e;
    int rc = cnb_experiment_load(&e, o->file, o->profile, (char **)o->sets, o->n_sets);
    if (rc == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int jobs = o->jobs ? o->jobs : (int)(cores / (e.threads > 0 ? e.threads : 1));
        cnb_sweep_opts so = {.dry_run = o->dry_run, .force = o->force,
                             .jobs = jobs > 0 ? jobs : 1,
                             .progress = !o->quiet && isatty(STDERR_FILENO),
                             .list = o->list_cells, .cells = o->cells, .n_cells = o->n_cells,
                             .shard = o->shard, .shards = o->shards};
        char exe[PATH_MAX]; /* the nodes run this same executable */
        cnb_launch_opts lo = {.exe = exe, .experiment = o->file, .profile = o->profile,
                              .sets = o->sets, .n_sets = o->n_sets, .plugins = o->plugins,
                              .n_plugins = o->n_plugins, .force = o->force,
                              .no_wait = o->no_wait, .quiet = o->quiet};
        if (o->no_wait && !o->slurm)
            rc = cnb_error("--no-wait goes with --launcher slurm (a local run is the wait)");
        else if (o->slurm && (CNB_SWEEP_PARTIAL(&so) || o->dry_run || o->list_cells))
            rc = cnb_error("--launcher slurm submits every cell still to run; --cell, --shard, "
                           "--list-cells and --dry-run are for runs on this machine");
        else if (o->slurm && !realpath("/proc/self/exe", exe))
            rc = cnb_error("cannot find this executable's path: %s", strerror(errno));
        else
            rc = o->slurm ? cnb_launch_slurm(&e, reg, &lo) : cnb_sweep_run(&e, reg, &so);
    }
    cnb_experiment_free(&e);
    return rc;
}

static int cmd_report(cnb_registry *reg, const options *o)
{
    (void)reg;
    if (!o->file)
        return cnb_error("%s needs a results folder: cnnbench %s results/lenet5-ablation",
                         o->command, o->command);
    if (strcmp(o->command, "plot") == 0)
        return cnb_plot_all(o->file);
    char manifest[PATH_MAX + 32]; /* the cells that finished anywhere since it was written */
    snprintf(manifest, sizeof manifest, "%s/manifest.csv", o->file);
    int rc = access(manifest, F_OK) == 0 ? cnb_results_refresh(o->file) : 0;
    return rc ? rc : cnb_report_write(o->file);
}

static int cmd_status(cnb_registry *reg, const options *o)
{
    (void)reg;
    if (!o->file)
        return cnb_error("status needs a results folder: cnnbench status results/lenet5-ablation");
    return cnb_status_show(o->file);
}

static int cmd_check(cnb_registry *reg, const options *o)
{
    (void)reg;
    if (!o->file)
        return cnb_error("check needs a plugin: a name from `cnnbench plugins` or a .so file");
    cnb_check_opts c = {.plugin = o->file, .extra = o->plugins, .n_extra = o->n_plugins,
                        .threads = o->threads ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN),
                        .timeout = o->timeout > 0 ? o->timeout : 60.0, .speed = !o->no_speed,
                        .keys = o->sets, .n_keys = o->n_sets, .input = {4, 9, 7},
                        .cases = o->cases};
    if (o->input && (sscanf(o->input, "%dx%dx%d", &c.input.h, &c.input.w, &c.input.c) != 3 ||
                     c.input.h < 1 || c.input.w < 1 || c.input.c < 1))
        return cnb_error("--input %s: expected HxWxC, for example 28x28x6", o->input);
    int rc = cnb_check_run(&c); /* its own statuses: 2 only for a plugin of another ABI or bad usage */
    return rc == 0 || rc == CNB_EINVAL ? rc : CNB_EFAILED;
}

static int cmd_convert(cnb_registry *reg, const options *o)
{
    (void)reg;
    if (!o->file)
        return cnb_error("convert needs an experiment file: cnnbench convert "
                         "experiments/alexnet-folder.ini");
    cnb_experiment e;
    int rc = cnb_experiment_load(&e, o->file, o->profile, (char **)o->sets, o->n_sets);
    if (rc == 0)
        rc = cnb_experiment_convert(&e);
    cnb_experiment_free(&e);
    return rc;
}

/* The process's exit status for a command's result: 2 for what the user must change
 * (input, files, names), 1 for a run that failed, 130 for an interrupted one. */
static int exit_status(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == CNB_EINTR)
        return 130;
    return rc == CNB_EINVAL || rc == CNB_EIO || rc == CNB_ENOTFOUND ? 2 : 1;
}

static int cli(int argc, char **argv)
{
    options o;
    const verb *v = NULL;
    int rc = parse_args(argc, argv, &o, &v);
    if (rc == 0 && cnb_dist_warning()[0])
        rc = cnb_error("%s", cnb_dist_warning());
    if (rc != 0)
        return exit_status(rc);
    if (cnb_dist_size() > 1) { /* every rank runs this same command line */
        if (cnb_dist_rank() > 0) { /* rank 0 says what all of them would */
            cnb_error_quiet(1);
            cnb_log_set_level(CNB_LOG_ERROR);
        }
        if (strcmp(o.command, "run") != 0 || o.dry_run || o.list_cells || o.jobs > 1 ||
            o.slurm)
            return exit_status(cnb_error("under mpirun (%d ranks) only `cnnbench run EXP` "
                                         "trains or times data-parallel; run `%s`%s without "
                                         "mpirun", cnb_dist_size(), o.command,
                                         o.dry_run ? " --dry-run"
                                         : o.list_cells ? " --list-cells"
                                         : o.jobs > 1 ? " --jobs"
                                         : o.slurm ? " --launcher slurm" : ""));
    }
    if (o.quiet && cnb_dist_rank() == 0) /* the other ranks: errors only */
        cnb_log_set_level(CNB_LOG_WARN);
    cnb_log_share(); /* before any child: a plugin's notes once per command */
    cnb_registry reg;
    rc = v->needs_plugins ? load_plugins(&reg, &o) : 0;
    if (rc == 0)
        rc = v->run(v->needs_plugins ? &reg : NULL, &o);
    if (v->needs_plugins)
        cnb_registry_free(&reg);
    return exit_status(rc);
}

/* Under an MPI launcher the process group starts first (dist.h: MPI_Init only then), and
 * ends last. */
int main(int argc, char **argv)
{
    if (cnb_dist_init(&argc, &argv) != 0)
        return 1;
    int status = cli(argc, argv);
    cnb_dist_finalize();
    return status;
}
