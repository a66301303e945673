/*
 * main.c - the cnnbench command line.
 *
 *   cnnbench plugins                      list every plugin found and where
 *   cnnbench summary MODEL.ini            per-layer shapes, parameters and FLOPs
 *   cnnbench run EXPERIMENT.ini           run every cell of the experiment's grid, or
 *                                         time backends (mode = time)
 *   cnnbench bench MODEL.ini              time every backend on one model
 *   cnnbench report RESULTS_DIR           redo a sweep's tables and plots from its cells
 *   cnnbench plot RESULTS_DIR             redraw every plot in a results folder
 *   cnnbench check PLUGIN                 conformance (or gradient check) and speed of one
 *                                         plugin, each part in a child process
 *
 * Exit status: 0 success, 1 a run failed, 2 bad input or usage, 130 interrupted.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "check.h"
#include "claims.h"
#include "cnnbench/op_check.h"
#include "config.h"
#include "experiment.h"
#include "host.h"
#include "net.h"
#include "plugin.h"
#include "report.h"
#include "sweep.h"
#include "train.h"

#define MAX_SETS 64
#define MAX_PLUGINS 16
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
    const char *cells[MAX_CELLS]; /* run: --cell IDs */
    int n_cells;
    int shard, shards;            /* run: --shard I/N (shards 0: none) */
    int list_cells;               /* run: --list-cells */
    int threads;        /* check: 0 = the online CPUs */
    double timeout;     /* check */
    int no_speed;       /* check */
    const char *input;  /* check: a layer's input, HxWxC */
    const char *cases;  /* check: a glob over the case names */
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cnnbench COMMAND [options]\n\n"
            "commands:\n"
            "  plugins                  list the plugins found (backends, layer variants)\n"
            "  summary MODEL.ini        per-layer plugin, output shape, parameters, FLOPs\n"
            "  run EXPERIMENT.ini       run every cell of the experiment's grid (resumable),\n"
            "                           then write its report and plots\n"
            "  bench MODEL.ini          time the model on every backend (whole network and per\n"
            "                           layer; --set bench.threads=1,2 bench.batch=256\n"
            "                           bench.vars=\"act=relu pool=max\" bench.backends=a,b)\n"
            "  report RESULTS_DIR       redo a sweep's tables and plots from its cells\n"
            "  plot RESULTS_DIR         redraw every plot in a results folder (gnuplot *.gp)\n"
            "  check PLUGIN             check one plugin (a name or a .so file) against the\n"
            "                           naive reference, or its gradients for a layer, then\n"
            "                           time it against the other backends\n\n"
            "options:\n"
            "  --set KEY=VALUE          run: override section.key (train.epochs=3,\n"
            "                           vars.act=relu, sweep.seed=1,2); summary: set a model\n"
            "                           variable (act=relu)\n"
            "  --profile NAME           run: apply the experiment's [profile.NAME]\n"
            "  --dry-run                run: print the grid and what would run, run nothing\n"
            "  --force                  run: rerun cells that already finished\n"
            "  --jobs N                 run: cells at once (default: cores / threads)\n"
            "  --cell ID                run: only this cell (repeatable, or ID,ID,...); any\n"
            "                           number of processes may run cells of one folder\n"
            "  --shard I/N              run: only cells I, I+N, I+2N, ... (I from 0)\n"
            "  --list-cells             run: print the ids of the cells still to run\n"
            "  --plugin FILE            load this plugin file too (repeatable)\n"
            "  --threads N              check: threads for every backend (default: cores)\n"
            "  --timeout SECONDS        check: kill a child making no progress (default 60)\n"
            "  --no-speed               check: correctness only\n"
            "  --cases GLOB             check: only the cases whose name matches\n"
            "                           ('lenet.fc1*', 'tile.*'; names in the FAIL lines)\n"
            "  --input HxWxC            check: a layer plugin's input (default 9x7x4); its\n"
            "                           keys come from --set KEY=VALUE (filters=4)\n"
            "  -q, --quiet              no progress bar, warnings only\n"
            "  -h, --help, --version\n\n"
            "plugins are searched in $CNB_PLUGIN_PATH (colon-separated), then %s\n"
            "(from the build tree) or %s (installed).\n",
            CNB_BUILD_PLUGIN_DIR, CNB_INSTALL_PLUGIN_DIR);
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("cnnbench %s\n", CNB_VERSION);
            exit(0);
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
        } else if (strcmp(a, "--force") == 0) {
            o->force = 1;
        } else if (strcmp(a, "--list-cells") == 0) {
            o->list_cells = 1;
        } else if (strcmp(a, "--cell") == 0) {
            if (i + 1 >= argc)
                return cnb_error("--cell needs a cell id (see cnnbench run EXP --list-cells)");
            for (char *save = NULL, *id = strtok_r(argv[++i], ",", &save); id;
                 id = strtok_r(NULL, ",", &save)) {
                if (o->n_cells == MAX_CELLS)
                    return cnb_error("--cell: more than %d cells; use --shard I/N", MAX_CELLS);
                o->cells[o->n_cells++] = id;
            }
        } else if (strcmp(a, "--shard") == 0) {
            char tail;
            if (i + 1 >= argc || sscanf(argv[i + 1], "%d/%d%c", &o->shard, &o->shards,
                                        &tail) != 2 || o->shards < 1 || o->shard < 0 ||
                o->shard >= o->shards)
                return cnb_error("--shard %s: expected I/N with 0 <= I < N (--shard 0/4 runs "
                                 "cells 0, 4, 8, ...)", i + 1 < argc ? argv[i + 1] : "");
            i++;
        } else if (strcmp(a, "--no-speed") == 0) {
            o->no_speed = 1;
        } else if (strcmp(a, "--cases") == 0) {
            if (i + 1 >= argc)
                return cnb_error("--cases needs a pattern (a shell glob: 'lenet.fc*')");
            o->cases = argv[++i];
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "--timeout") == 0 ||
                   strcmp(a, "--input") == 0) {
            if (i + 1 >= argc)
                return cnb_error("%s needs a value", a);
            const char *v = argv[++i];
            char *end;
            if (a[2] == 'i') {
                o->input = v;
            } else if (a[4] == 'r') {
                long t = strtol(v, &end, 10);
                if (*end || t < 1 || t > 256)
                    return cnb_error("--threads %s: expected a number from 1 to 256", v);
                o->threads = (int)t;
            } else {
                o->timeout = strtod(v, &end);
                if (*end || !(o->timeout > 0))
                    return cnb_error("--timeout %s: expected seconds above 0", v);
            }
        } else if (strcmp(a, "--profile") == 0 || strcmp(a, "--jobs") == 0) {
            if (i + 1 >= argc)
                return cnb_error("%s needs a value", a);
            if (a[2] == 'p') {
                o->profile = argv[++i];
            } else {
                char *end;
                long j = strtol(argv[++i], &end, 10);
                if (*end || j < 1 || j > 256)
                    return cnb_error("--jobs %s: expected a number from 1 to 256", argv[i]);
                o->jobs = (int)j;
            }
        } else if (strcmp(a, "--set") == 0 || strcmp(a, "--plugin") == 0) {
            if (i + 1 >= argc)
                return cnb_error("%s needs a value", a);
            if (a[2] == 's' && o->n_sets < MAX_SETS)
                o->sets[o->n_sets++] = argv[++i];
            else if (a[2] == 'p' && o->n_plugins < MAX_PLUGINS)
                o->plugins[o->n_plugins++] = argv[++i];
            else
                return cnb_error("too many %s options", a);
        } else if (a[0] == '-') {
            return cnb_error("unknown option '%s'; see cnnbench --help", a);
        } else if (!o->command) {
            o->command = a;
        } else if (!o->file) {
            o->file = a;
        } else {
            return cnb_error("unexpected argument '%s'; see cnnbench --help", a);
        }
    }
    if (!o->command)
        return usage(stderr), CNB_EINVAL;
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
    if (!cnb_registry_backend(reg, "naive"))
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

static int cmd_plugins(const cnb_registry *reg)
{
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
            const char *has[] = {CNB_BACKEND_FIELD(b, layout_of) ? "native layouts" : NULL,
                                 CNB_BACKEND_FIELD(b, library_pass) ? "library passes" : NULL,
                                 CNB_BACKEND_FIELD(b, park) ? "park" : NULL};
            int n = 0;
            for (int k = 0; k < 3; k++)
                if (has[k]) {
                    if (n++)
                        printf(", %s", has[k]);
                    else
                        printf("%42s also: %s", "", has[k]);
                }
            if (n)
                printf("\n");
        } else {
            const cnb_layer_desc *l = (const cnb_layer_desc *)p->hdr;
            printf("%42s type = %s; keys:", "", p->hdr->name);
            for (int k = 0; l->keys && l->keys[k]; k++)
                printf("%s%s", k ? ", " : " ", l->keys[k]);
            printf("%s\n", l->keys && l->keys[0] ? "" : " (none)");
        }
        printf("%42s %s\n", "", p->hdr->description ? p->hdr->description : "");
    }
    if (reg->refused)
        printf("\n%d file%s refused (see the messages above)\n", reg->refused,
               reg->refused == 1 ? "" : "s");
    return 0;
}

static int cmd_summary(const cnb_registry *reg, const options *o)
{
    if (!o->file)
        return cnb_error("summary needs a model file: cnnbench summary experiments/models/lenet5.ini");
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
    memset(&model, 0, sizeof model);
    memset(&net, 0, sizeof net);
    if (rc == 0)
        rc = cnb_net_load(&net, &model, reg, o->file, &vars);
    if (rc == 0)
        cnb_net_print_summary(&net, stdout);
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
    return rc ? rc : cnb_bench_run(c, reg);
}

static int cmd_bench(cnb_registry *reg, const options *o)
{
    if (!o->file)
        return cnb_error("bench needs a model file: cnnbench bench experiments/models/lenet5.ini");
    char real[PATH_MAX], name[256], text[8192], backends[1024] = "";
    if (!realpath(o->file, real))
        return cnb_error("%s: cannot open: %s", o->file, strerror(errno));
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
    int rc = cnb_conf_load_string(&c, "(cnnbench bench)", text);
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
    if (rc == 0)
        rc = cnb_bench_run(&c, reg);
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
        rc = cnb_sweep_run(&e, reg, &so);
    }
    cnb_experiment_free(&e);
    return rc;
}

static int cmd_report(const options *o)
{
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

static int cmd_check(const options *o)
{
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
    return cnb_check_run(&c);
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.quiet)
        cnb_log_set_level(CNB_LOG_WARN);
    if (strcmp(o.command, "check") == 0) { /* loads the plugin in children only */
        int rc = cmd_check(&o);
        return rc == 0 ? 0 : rc == CNB_EINVAL ? 2 : 1;
    }
    cnb_registry reg;
    int rc = load_plugins(&reg, &o);
    if (rc == 0) {
        if (strcmp(o.command, "plugins") == 0)
            rc = cmd_plugins(&reg);
        else if (strcmp(o.command, "summary") == 0)
            rc = cmd_summary(&reg, &o);
        else if (strcmp(o.command, "run") == 0)
            rc = cmd_run(&reg, &o);
        else if (strcmp(o.command, "bench") == 0)
            rc = cmd_bench(&reg, &o);
        else if (strcmp(o.command, "report") == 0 || strcmp(o.command, "plot") == 0)
            rc = cmd_report(&o);
        else
            rc = cnb_error("unknown command '%s'; commands: plugins, summary, run, bench, "
                           "report, plot, check",
                           o.command);
    }
    cnb_registry_free(&reg);
    if (rc == 0)
        return 0;
    if (rc == CNB_EINTR)
        return 130;
    return rc == CNB_EINVAL || rc == CNB_EIO || rc == CNB_ENOTFOUND ? 2 : 1;
}
