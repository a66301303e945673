/*
 * benchconf.c - a time experiment's [experiment], [bench] and [bench.NAME] sections,
 * checked before anything is timed (bench.h lists the keys).
 */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "benchint.h"
#include "errors.h"
#include "net.h"

static int split_list(char *text, char **items, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(text, ", \t", &save); t && n < max;
         t = strtok_r(NULL, ", \t", &save))
        items[n++] = t;
    return n;
}

static int int_list(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv, int *out,
                    int max, const char *what)
{
    char copy[512], *items[MAX_THREADS], where[1100];
    snprintf(copy, sizeof copy, "%s", kv->value);
    int n = split_list(copy, items, max);
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(items[i], &end, 10);
        if (*end || v < 1 || v > 1024)
            return cnb_error("%s: %s = '%s': expected a list of %s from 1 to 1024",
                             cnb_conf_where(c, s, kv, where, sizeof where), kv->key, kv->value,
                             what);
        out[i] = (int)v;
    }
    if (n == 0)
        return cnb_error("%s: %s is empty", cnb_conf_where(c, s, kv, where, sizeof where),
                         kv->key);
    return n;
}

static int backend_index(const bconf *bc, const char *name)
{
    for (int i = 0; i < bc->nb; i++)
        if (strcmp(bc->backends[i], name) == 0)
            return i;
    return -1;
}

/* BACKEND.threads of backend b: the thread counts it runs at, each one it uses (a count
 * it does not use would time it on fewer threads than its row says). */
static int override_threads(const bconf *bc, const cnb_section *s, const cnb_kv *kv, int b,
                            override *o)
{
    char why[64], where[1100];
    if ((o->nt = int_list(bc->conf, s, kv, o->threads, MAX_THREADS, "thread counts")) < 0)
        return CNB_EINVAL;
    for (int i = 0; i < o->nt; i++)
        if (bench_not_run(bc, b, o->threads[i], why, sizeof why))
            return cnb_error("%s: [%s] %s = %s: %s %s, and is timed only at thread counts "
                             "it uses", cnb_conf_where(bc->conf, s, kv, where, sizeof where),
                             s->name, kv->key, kv->value, bc->backends[b], why);
    return 0;
}

/* One BACKEND.setting key of [bench.NAME] for backend b (`setting` points past the dot). */
static int backend_key(const bconf *bc, const cnb_section *s, const cnb_kv *kv, int b,
                       override *o, const char *setting)
{
    const cnb_conf *c = bc->conf;
    long v;
    double d;
    if (strcmp(setting, "batch") == 0 && cnb_conf_int(c, s, kv->key, 1, 65536, &v) == 0)
        o->batch = (int)v;
    else if (strcmp(setting, "min_reps") == 0 &&
             cnb_conf_int(c, s, kv->key, 1, MAX_REPS, &v) == 0)
        o->min_reps = (int)v;
    else if (strcmp(setting, "min_time") == 0 &&
             cnb_conf_double(c, s, kv->key, 0.0, 3600.0, &d) == 0)
        o->min_time = d;
    else if (strcmp(setting, "threads") == 0)
        return override_threads(bc, s, kv, b, o);
    else
        return cnb_error("%s:%d: [%s] unknown or invalid key '%s' (per-backend keys: "
                         "BACKEND.batch, .min_reps, .min_time, .threads)",
                         c->path, kv->line, s->name, kv->key);
    return 0;
}

/* A path given in the experiment file, value (kv's, or one of its list): as it is when
 * absolute, else from the file's folder. */
static int conf_path(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv,
                     const char *value, char *out, size_t len)
{
    char dir[PATH_MAX], where[1100];
    snprintf(dir, sizeof dir, "%s", c->path);
    if (value[0] == '/')
        snprintf(out, len, "%s", value);
    else if (snprintf(out, len, "%s/%s", dirname(dir), value) >= (int)len)
        return cnb_error("%s: %s path too long", cnb_conf_where(c, s, kv, where, sizeof where),
                         kv->key);
    return 0;
}

/* peer = a list of scripts, comma-separated (a path may hold spaces); empty: none. */
static int peer_list(bconf *bc, const cnb_conf *c, const cnb_section *b, const cnb_kv *kv)
{
    char list[MAX_PEERS * PATH_MAX], where[1100];
    snprintf(list, sizeof list, "%s", kv->value);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t += strspn(t, " \t");
        for (char *end = t + strlen(t); end > t && (end[-1] == ' ' || end[-1] == '\t');)
            *--end = '\0';
        if (!t[0])
            continue;
        if (bc->np == MAX_PEERS)
            return cnb_error("%s: [bench] peer: at most %d scripts",
                             cnb_conf_where(c, b, kv, where, sizeof where), MAX_PEERS);
        if (conf_path(c, b, kv, t, bc->peers[bc->np++], PATH_MAX))
            return CNB_EINVAL;
    }
    return 0;
}

/* vars = "act=relu pool=max" */
static int model_vars(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv, bmodel *m)
{
    char bad[512];
    int rc = cnb_vars_set_terms(&m->vars, kv->value, bad, sizeof bad);
    return rc == CNB_EINVAL ? cnb_error("%s:%d: [%s] vars: '%s' is not name=value", c->path,
                                        kv->line, s->name, bad)
                            : rc;
}

/* One key of [bench.NAME]. */
static int model_key(bconf *bc, const cnb_section *s, const cnb_kv *kv, bmodel *m,
                     const cnb_registry *reg)
{
    const cnb_conf *c = bc->conf;
    char key[128];
    snprintf(key, sizeof key, "%s", kv->key);
    char *dot = strchr(key, '.');
    if (dot) { /* BACKEND.setting */
        *dot = '\0';
        int b = backend_index(bc, key);
        if (b < 0 && cnb_registry_backend(reg, key))
            return 0; /* a backend left out of this run (--set bench.backends=...) */
        if (b < 0)
            return cnb_error("%s:%d: [%s] %s: '%s' is not a backend", c->path, kv->line,
                             s->name, kv->key, key);
        return backend_key(bc, s, kv, b, &m->ov[b], dot + 1);
    }
    long v;
    if (strcmp(key, "model") == 0)
        return conf_path(c, s, kv, kv->value, m->path, sizeof m->path);
    if (strcmp(key, "batch") == 0) {
        if (cnb_conf_int(c, s, "batch", 1, 65536, &v))
            return CNB_EINVAL;
        m->batch = (int)v;
        return 0;
    }
    if (strcmp(key, "vars") == 0)
        return model_vars(c, s, kv, m);
    if (strcmp(key, "sample_time") == 0)
        return cnb_conf_double(c, s, "sample_time", 0.0, 60.0, &m->sample_time);
    return cnb_error("%s:%d: unknown key '%s' in [%s]; known keys: model, vars, batch, "
                     "sample_time, BACKEND.batch, BACKEND.min_reps, BACKEND.min_time, "
                     "BACKEND.threads",
                     c->path, kv->line, kv->key, s->name);
}

static int parse_model(bconf *bc, const cnb_section *s, const cnb_registry *reg)
{
    const cnb_conf *c = bc->conf;
    bmodel *m = &bc->models[bc->nm++];
    snprintf(m->name, sizeof m->name, "%s", s->name + 6);
    m->batch = 32, m->sample_time = -1.0;
    for (int b = 0; b < MAX_BACKENDS; b++)
        m->ov[b].min_time = -1.0;
    for (int k = 0; k < s->n; k++)
        if (model_key(bc, s, &s->kv[k], m, reg))
            return CNB_EINVAL;
    if (!m->path[0])
        return cnb_error("%s:%d: [%s] needs 'model = path/to/model.ini'", c->path, s->line,
                         s->name);
    cnb_conf model; /* its own [vars] under the section's */
    int rc = cnb_conf_load(&model, m->path);
    if (rc == 0)
        rc = cnb_model_vars(&model, &m->vars, &m->resolved);
    cnb_conf_free(&model);
    return rc;
}

/* A yes/no key into *out (left alone when absent); `means` says what yes does. */
static int yes_no(const cnb_conf *c, const cnb_section *b, const char *key, const char *means,
                  int *out)
{
    const cnb_kv *kv = cnb_section_get(b, key);
    char where[1100];
    if (!kv)
        return 0;
    if (strcmp(kv->value, "yes") != 0 && strcmp(kv->value, "no") != 0)
        return cnb_error("%s: %s = '%s': expected yes%s or no",
                         cnb_conf_where(c, b, kv, where, sizeof where), key, kv->value, means);
    *out = strcmp(kv->value, "yes") == 0;
    return 0;
}

/* [experiment]: the name (default: the file's), seed and results folder. */
static int parse_experiment(bconf *bc, const cnb_conf *c, const cnb_section *ex)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", c->path);
    char *base = basename(tmp), *dot = strrchr(base, '.');
    if (dot)
        *dot = '\0';
    snprintf(bc->name, sizeof bc->name, "%s", base);
    snprintf(bc->results, sizeof bc->results, "results");
    const cnb_kv *kv;
    if ((kv = cnb_section_get(ex, "name")))
        snprintf(bc->name, sizeof bc->name, "%s", kv->value);
    if ((kv = cnb_section_get(ex, "results")))
        snprintf(bc->results, sizeof bc->results, "%s", kv->value);
    long seed = 1;
    if (cnb_conf_int(c, ex, "seed", 0, 2147483647L, &seed))
        return CNB_EINVAL;
    bc->seed = (uint64_t)seed;
    return 0;
}

/* [bench]: repetitions, passes, the peers, the backends and thread counts. */
static int parse_bench(bconf *bc, const cnb_conf *c, const cnb_section *b)
{
    long warmup = 3, reps = 10;
    bc->min_time = 1.0, bc->sample_time = 0.03, bc->shipped_sample_time = -1.0;
    bc->layers = 1, bc->pin = 1;
    if (cnb_conf_int(c, b, "warmup", 0, 1000, &warmup) ||
        cnb_conf_int(c, b, "min_reps", 1, MAX_REPS, &reps) ||
        cnb_conf_double(c, b, "min_time", 0.0, 3600.0, &bc->min_time) ||
        cnb_conf_double(c, b, "sample_time", 0.0, 60.0, &bc->sample_time) ||
        cnb_conf_double(c, b, "shipped_sample_time", 0.0, 60.0, &bc->shipped_sample_time) ||
        yes_no(c, b, "layers", "", &bc->layers) ||
        yes_no(c, b, "pin", " (run a group at fewer threads than the CPUs on the first of "
               "them)", &bc->pin) ||
        yes_no(c, b, "scaling", " (time the data-parallel step at the rank count of mpirun "
               "-np)", &bc->scaling))
        return CNB_EINVAL;
    bc->warmup = (int)warmup, bc->min_reps = (int)reps;
    const cnb_kv *kv = cnb_section_get(b, "peer");
    if (kv && peer_list(bc, c, b, kv))
        return CNB_EINVAL;
    char list[512], *items[MAX_BACKENDS];
    kv = cnb_section_get(b, "backends");
    snprintf(list, sizeof list, "%s", kv ? kv->value : CNB_REFERENCE_BACKEND);
    bc->nb = split_list(list, items, MAX_BACKENDS);
    for (int i = 0; i < bc->nb; i++)
        snprintf(bc->backends[i], sizeof bc->backends[i], "%s", items[i]);
    bc->threads[0] = 1, bc->nt = 1;
    if ((kv = cnb_section_get(b, "threads")) &&
        (bc->nt = int_list(c, b, kv, bc->threads, MAX_THREADS, "thread counts")) < 0)
        return CNB_EINVAL;
    return 0;
}

/* Every [bench.NAME] section; any other section but [experiment] and [bench] is refused. */
static int parse_models(bconf *bc, const cnb_conf *c, const cnb_registry *reg)
{
    for (int i = 0; i < c->n; i++)
        if (strncmp(c->sec[i].name, "bench.", 6) == 0) {
            if (bc->nm == MAX_MODELS)
                return cnb_error("%s: at most %d [bench.NAME] sections", c->path, MAX_MODELS);
            if (parse_model(bc, &c->sec[i], reg))
                return CNB_EINVAL;
        } else if (strcmp(c->sec[i].name, "experiment") != 0 &&
                   strcmp(c->sec[i].name, "bench") != 0) {
            return cnb_error("%s:%d: unknown section [%s]; a time experiment has [experiment], "
                             "[bench] and [bench.NAME] per model", c->path, c->sec[i].line,
                             c->sec[i].name);
        }
    if (bc->nm == 0)
        return cnb_error("%s: no [bench.NAME] section: name at least one model to time", c->path);
    return 0;
}

/* Every backend chain of [bench] backends exists (said at that line), and how many
 * threads each uses. */
static int check_backends(bconf *bc, const cnb_registry *reg)
{
    const cnb_conf *c = bc->conf;
    char where[PATH_MAX + 32];
    const cnb_kv *bk = cnb_section_get(cnb_conf_section(c, "bench"), "backends");
    if (bk && bk->line > 0) /* line 0: set on the command line */
        snprintf(where, sizeof where, "%s:%d: [bench] backends", c->path, bk->line);
    else
        snprintf(where, sizeof where, "%s: [bench] backends", c->path);
    for (int b = 0; b < bc->nb; b++) {
        if (cnb_backend_spec_check(reg, bc->backends[b], where))
            return CNB_EINVAL;
        bc->max_threads[b] = cnb_backend_spec_max_threads(reg, bc->backends[b]);
    }
    return 0;
}

int bench_conf_parse(bconf *bc, const cnb_conf *c, const cnb_registry *reg)
{
    static const char *const ex_keys[] = {"name", "mode", "seed", "results", NULL};
    static const char *const bench_keys[] = {"backends", "threads", "warmup", "min_reps",
                                             "min_time", "sample_time", "shipped_sample_time",
                                             "layers", "peer", "scaling", "pin", NULL};
    memset(bc, 0, sizeof *bc);
    bc->conf = c;
    const cnb_section *ex = cnb_conf_section(c, "experiment"), *b = cnb_conf_section(c, "bench");
    if (!b)
        return cnb_error("%s: a time experiment needs a [bench] section (backends, threads, "
                         "min_reps, min_time) and one [bench.NAME] per model", c->path);
    if ((ex && cnb_section_check_keys(c, ex, ex_keys)) || cnb_section_check_keys(c, b, bench_keys))
        return CNB_EINVAL;
    if (parse_experiment(bc, c, ex) || parse_bench(bc, c, b) || check_backends(bc, reg))
        return CNB_EINVAL;
    return parse_models(bc, c, reg); /* after check_backends: BACKEND.threads checks */
}

void bench_conf_free(bconf *bc)
{
    for (int mi = 0; mi < bc->nm; mi++) {
        cnb_vars_free(&bc->models[mi].vars);
        cnb_vars_free(&bc->models[mi].resolved);
    }
}

void bench_model_label(const bmodel *m, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "%s", m->name);
    for (int i = 0; i < m->resolved.n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i ? " " : " (",
                                 m->resolved.names[i], m->resolved.values[i]);
    if (m->resolved.n && used < len)
        snprintf(buf + used, len - used, ")");
}

double bench_sample_time(const bconf *bc, const bmodel *m)
{
    return m->sample_time >= 0 ? m->sample_time : bc->sample_time;
}

double bench_way_sample_time(const bconf *bc, const bmodel *m, const bench_peer_way *way)
{
    return !way->tuned && bc->shipped_sample_time >= 0 ? bc->shipped_sample_time
                                                       : bench_sample_time(bc, m);
}

const char *bench_not_run(const bconf *bc, int b, int threads, char *buf, size_t len)
{
    return cnb_backend_threads_unused(bc->max_threads[b], threads, buf, len);
}

int bench_runs_at(const bconf *bc, const bmodel *m, int b, int threads)
{
    char why[64];
    const override *o = &m->ov[b];
    if (bench_not_run(bc, b, threads, why, sizeof why))
        return 0;
    if (o->nt == 0)
        return 1;
    for (int i = 0; i < o->nt; i++)
        if (o->threads[i] == threads)
            return 1;
    return 0;
}
