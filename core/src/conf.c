/*
 * conf.c - INI files with line numbers; see conf.h. libinih does the parsing; we feed it
 * line by line through ini_parse_stream so that the handler knows the current line.
 */
#include "conf.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnbench/plugin.h"
#include "errors.h"

typedef struct reader {
    FILE *f;            /* file source, or                    */
    const char *text;   /* string source                      */
    int line;           /* the line most recently handed over */
    cnb_conf *conf;
    int failed;         /* a handler error already reported   */
    int too_long;       /* the line that did not fit, or 0    */
    int header;         /* the line of the latest "[section]" */
    int sec_header;     /* ... when the current section began */
    int limit;          /* the characters a line may have     */
    int indented;       /* the current line starts with a blank */
    cnb_kv *last;       /* the key the previous line set        */
} reader;

/* One whole line into buf, or NULL at the end, or at a line longer than libinih's
 * buffer (r->too_long): handing it over in pieces would parse each piece as a line and
 * shift every line number after it. */
static char *read_line(char *buf, int size, void *stream)
{
    reader *r = stream;
    size_t len;
    r->limit = size - 1;
    if (r->f) {
        if (!fgets(buf, size, r->f))
            return NULL;
        len = strlen(buf);
        if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(r->f)) {
            int ch = fgetc(r->f);
            if (ch != EOF && ch != '\n')
                return r->too_long = r->line + 1, NULL;
        }
    } else {
        if (!*r->text)
            return NULL;
        const char *nl = strchr(r->text, '\n');
        len = nl ? (size_t)(nl - r->text) : strlen(r->text); /* without the newline */
        if (len > (size_t)size - 1)
            return r->too_long = r->line + 1, NULL;
        memcpy(buf, r->text, len);
        buf[len] = '\0';
        r->text += len + (nl != NULL);
    }
    r->line++;
    const char *t = buf + strspn(buf, " \t");
    r->indented = t != buf;
    if (*t == '[')
        r->header = r->line;
    return buf;
}

static cnb_section *add_section(cnb_conf *c, const char *name, int line)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        cnb_section *s = realloc(c->sec, (size_t)cap * sizeof *s);
        if (!s)
            return NULL;
        c->sec = s, c->cap = cap;
    }
    cnb_section *s = &c->sec[c->n];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name)))
        return NULL;
    s->line = line;
    c->n++;
    return s;
}

/* Does a continuation line read as a setting of its own ("filters = 2", blanks around
 * the '=')? Then its indentation is a slip: libinih would fold it into the value above. */
static int looks_like_setting(const char *line)
{
    size_t word = strcspn(line, " \t=");
    const char *t = line + word + strspn(line + word, " \t");
    return word > 0 && t > line + word && *t == '=' && (t[1] == ' ' || t[1] == '\t');
}

/* An indented line after `key = value` continues that value: joined with one space. */
static int append_value(reader *r, const char *more)
{
    cnb_kv *kv = r->last;
    if (looks_like_setting(more)) {
        cnb_error("%s:%d: '%s' is indented, so it would continue the value of '%s' (line %d); "
                  "remove the indentation", r->conf->path, r->line, more, kv->key, kv->line);
        r->failed = 1;
        return 0;
    }
    size_t len = strlen(kv->value);
    char *v = realloc(kv->value, len + strlen(more) + 2);
    if (!v)
        return 0;
    v[len] = ' ';
    strcpy(v + len + 1, more);
    kv->value = v;
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    reader *r = user;
    cnb_conf *c = r->conf;
    cnb_section *s = c->n ? &c->sec[c->n - 1] : NULL;
    if (!*section) {
        cnb_error("%s:%d: key '%s' stands before any [section]; put it under one",
                  c->path, r->line, name);
        r->failed = 1;
        return 0;
    }
    int again = s && strcmp(s->name, section) == 0 && r->header != r->sec_header;
    if (!s || strcmp(s->name, section) != 0 || again) {
        if (again || cnb_conf_section(c, section)) {
            cnb_error("%s:%d: section [%s] appears twice; give each section a unique name",
                      c->path, r->header, section);
            r->failed = 1;
            return 0;
        }
        if (!(s = add_section(c, section, r->line)))
            return 0;
        r->sec_header = r->header;
    }
    const cnb_kv *dup = cnb_section_get(s, name);
    if (dup && dup == r->last && r->indented) /* libinih's continuation line */
        return append_value(r, value);
    if (dup) {
        cnb_error("%s:%d: key '%s' in [%s] is already set on line %d; remove the duplicate",
                  c->path, r->line, name, section, dup->line);
        r->failed = 1;
        return 0;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        cnb_kv *kv = realloc(s->kv, (size_t)cap * sizeof *kv);
        if (!kv)
            return 0;
        s->kv = kv, s->cap = cap;
    }
    cnb_kv *kv = &s->kv[s->n];
    kv->key = strdup(name);
    kv->value = strdup(value);
    kv->line = r->line;
    kv->from = NULL;
    if (!kv->key || !kv->value)
        return 0;
    r->last = kv;
    s->n++;
    return 1;
}

/* A section with no keys never reaches the handler, so it is simply absent. */
static int parse(cnb_conf *c, reader *r)
{
    r->conf = c;
    int rc = ini_parse_stream(read_line, r, handler, r);
    if (r->too_long && !r->failed)
        return cnb_error("%s:%d: line longer than %d characters; shorten it (a list can "
                         "usually lose its spaces, a path can be made relative)", c->path,
                         r->too_long, r->limit);
    if (rc == 0)
        return 0;
    if (!r->failed)
        cnb_error("%s:%d: malformed line: expected '[section]', 'key = value' or a "
                  "';' comment",
                  c->path, rc > 0 ? rc : r->line);
    return CNB_EINVAL;
}

int cnb_conf_load(cnb_conf *c, const char *path)
{
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path)))
        return CNB_ENOMEM;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cnb_error_code(CNB_EIO, "%s: is a folder; give the .ini file in it", path);
    reader r = {.f = fopen(path, "r")};
    if (!r.f)
        return cnb_error_code(CNB_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = parse(c, &r);
    fclose(r.f);
    return rc;
}

int cnb_conf_load_string(cnb_conf *c, const char *virtual_path, const char *text)
{
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(virtual_path)))
        return CNB_ENOMEM;
    reader r = {.text = text};
    return parse(c, &r);
}

void cnb_conf_free(cnb_conf *c)
{
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < c->sec[i].n; k++)
            free(c->sec[i].kv[k].key), free(c->sec[i].kv[k].value), free(c->sec[i].kv[k].from);
        free(c->sec[i].kv);
        free(c->sec[i].name);
    }
    free(c->sec);
    free(c->path);
    memset(c, 0, sizeof *c);
}

const cnb_section *cnb_conf_section(const cnb_conf *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->sec[i].name, name) == 0)
            return &c->sec[i];
    return NULL;
}

const cnb_kv *cnb_section_get(const cnb_section *s, const char *key)
{
    for (int i = 0; s && i < s->n; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return &s->kv[i];
    return NULL;
}

int cnb_vars_set_at(cnb_vars *v, const char *name, const char *value, const char *where)
{
    int i = 0;
    while (i < v->n && strcmp(v->names[i], name) != 0)
        i++;
    if (i == (int)(sizeof v->names / sizeof v->names[0]))
        return cnb_error("too many variables (at most %zu)", sizeof v->names / sizeof v->names[0]);
    if (i == v->n) {
        if (!(v->names[i] = strdup(name)))
            return CNB_ENOMEM;
        v->values[i] = v->where[i] = NULL;
        v->n++;
    }
    char *copy = strdup(value), *at = where ? strdup(where) : NULL;
    if (!copy || (where && !at)) {
        free(copy), free(at);
        return CNB_ENOMEM;
    }
    free(v->values[i]), free(v->where[i]);
    v->values[i] = copy, v->where[i] = at;
    return 0;
}

int cnb_vars_set(cnb_vars *v, const char *name, const char *value)
{
    return cnb_vars_set_at(v, name, value, NULL);
}

int cnb_vars_set_terms(cnb_vars *v, const char *terms, char *bad, size_t len)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", terms);
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t;
         t = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            snprintf(bad, len, "%s", t);
            return CNB_EINVAL;
        }
        *eq = '\0';
        int rc = cnb_vars_set(v, t, eq + 1);
        if (rc)
            return rc;
    }
    return 0;
}

const char *cnb_vars_get(const cnb_vars *v, const char *name)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->names[i], name) == 0)
            return v->values[i];
    return NULL;
}

void cnb_vars_free(cnb_vars *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->names[i]), free(v->values[i]), free(v->where[i]);
    v->n = 0;
}

/* "${act} = tanh, set at exp.ini:12" for the first variable of `raw` that has a where. */
static char *origin_of(const char *raw, const cnb_vars *vars)
{
    for (const char *p = strstr(raw, "${"); p; p = strstr(p + 2, "${")) {
        const char *end = strchr(p + 2, '}');
        for (int i = 0; end && i < vars->n; i++)
            if (vars->where[i] && strlen(vars->names[i]) == (size_t)(end - p - 2) &&
                strncmp(vars->names[i], p + 2, (size_t)(end - p - 2)) == 0) {
                char buf[1400];
                snprintf(buf, sizeof buf, "${%s} = %s, set at %s", vars->names[i],
                         vars->values[i], vars->where[i]);
                return strdup(buf);
            }
    }
    return NULL;
}

/* Expand ${name} in one value; returns a new string or NULL after reporting. */
static char *expand(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv,
                    const cnb_vars *vars)
{
    size_t cap = strlen(kv->value) + 1, len = 0;
    char *out = malloc(cap);
    for (const char *p = kv->value; out && *p;) {
        const char *piece = p;
        size_t n = 1;
        char name[64];
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            size_t nl = end ? (size_t)(end - p - 2) : 0;
            if (!end || nl == 0 || nl >= sizeof name) {
                cnb_error("%s:%d: [%s] %s: unterminated or empty '${' in '%s'; write ${name}",
                          c->path, kv->line, s->name, kv->key, kv->value);
                free(out);
                return NULL;
            }
            memcpy(name, p + 2, nl);
            name[nl] = '\0';
            piece = cnb_vars_get(vars, name);
            if (!piece) {
                cnb_error("%s:%d: [%s] %s: undefined variable ${%s}; define it in the "
                          "model's [vars], the experiment's [vars], or with --set %s=VALUE",
                          c->path, kv->line, s->name, kv->key, name, name);
                free(out);
                return NULL;
            }
            n = strlen(piece);
            p = end + 1;
        } else {
            p++;
        }
        if (len + n + 1 > cap) {
            cap = 2 * (len + n + 1);
            char *grown = realloc(out, cap);
            if (!grown)
                free(out);
            out = grown;
            if (!out)
                break;
        }
        memcpy(out + len, piece, n);
        len += n;
    }
    if (out)
        out[len] = '\0';
    return out;
}

int cnb_conf_substitute(cnb_conf *c, const cnb_vars *vars)
{
    for (int i = 0; i < c->n; i++)
        for (int k = 0; k < c->sec[i].n; k++) {
            cnb_kv *kv = &c->sec[i].kv[k];
            if (!strstr(kv->value, "${"))
                continue;
            char *v = expand(c, &c->sec[i], kv, vars);
            if (!v)
                return CNB_EINVAL;
            free(kv->from);
            kv->from = origin_of(kv->value, vars);
            free(kv->value);
            kv->value = v;
        }
    return 0;
}

/* Add or replace section.key = value; `line` 0 marks the command line. */
int cnb_conf_put(cnb_conf *c, const char *section, const char *key, const char *value,
                    int line)
{
    cnb_section *s = (cnb_section *)cnb_conf_section(c, section);
    if (!s) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 8;
            cnb_section *grown = realloc(c->sec, (size_t)cap * sizeof *grown);
            if (!grown)
                return CNB_ENOMEM;
            c->sec = grown, c->cap = cap;
        }
        s = &c->sec[c->n++];
        memset(s, 0, sizeof *s);
        s->name = strdup(section);
    }
    cnb_kv *kv = (cnb_kv *)cnb_section_get(s, key);
    if (!kv) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 8;
            cnb_kv *grown = realloc(s->kv, (size_t)cap * sizeof *grown);
            if (!grown)
                return CNB_ENOMEM;
            s->kv = grown, s->cap = cap;
        }
        kv = &s->kv[s->n++];
        kv->key = strdup(key);
        kv->value = kv->from = NULL;
    }
    free(kv->value);
    kv->value = strdup(value);
    kv->line = line;
    return kv->key && kv->value && s->name ? 0 : CNB_ENOMEM;
}

/* "section.key=value" (from --set) or, with `value` given, "section.key" (a profile). */
int cnb_conf_set(cnb_conf *c, const char *assignment, const char *value, int line)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", assignment);
    char *eq = value ? buf + strlen(buf) : strchr(buf, '='), *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq || dot == buf || dot + 1 == eq)
        return value ? cnb_error("%s:%d: profile key '%s': expected section.key = value, "
                                 "e.g. train.epochs = 3", c->path, line, assignment)
                     : cnb_error("--set %s: expected section.key=value, e.g. --set "
                                 "train.epochs=3 or --set vars.act=relu", assignment);
    *dot = '\0';
    if (!value)
        *eq = '\0', value = eq + 1;
    return cnb_conf_put(c, buf, dot + 1, value, line);
}

const char *cnb_conf_where(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv,
                           char *buf, size_t len)
{
    if (kv->line > 0)
        snprintf(buf, len, "%s:%d", c->path, kv->line);
    else
        snprintf(buf, len, "--set %s.%s=%s", s->name, kv->key, kv->value);
    return buf;
}

const char *cnb_conf_key_where(const cnb_conf *c, const cnb_section *s, const char *key,
                               char *buf, size_t len)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    if (kv)
        return cnb_conf_where(c, s, kv, buf, len);
    snprintf(buf, len, "%s:%d", c->path, s->line);
    return buf;
}

int cnb_section_check_keys(const cnb_conf *c, const cnb_section *s, const char *const *allowed)
{
    for (int k = 0; k < s->n; k++) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, s->kv[k].key) == 0;
        if (ok)
            continue;
        char list[512] = "";
        size_t used = 0;
        for (const char *const *a = allowed; *a && used < sizeof list; a++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
        char where[1100];
        return cnb_error("%s: unknown key '%s' in [%s]; known keys: %s",
                         cnb_conf_where(c, s, &s->kv[k], where, sizeof where), s->kv[k].key,
                         s->name, list);
    }
    return 0;
}

int cnb_conf_int(const cnb_conf *c, const cnb_section *s, const char *key, long lo, long hi,
                 long *out)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    if (!kv)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(kv->value, &end, 10);
    char where[1100];
    if (errno || end == kv->value || *end || v < lo || v > hi)
        return cnb_error("%s: [%s] %s = '%s': expected a whole number from %ld to %ld",
                         cnb_conf_where(c, s, kv, where, sizeof where), s->name, key,
                         kv->value, lo, hi);
    *out = v;
    return 0;
}

int cnb_conf_double(const cnb_conf *c, const cnb_section *s, const char *key, double lo,
                    double hi, double *out)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    if (!kv)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(kv->value, &end);
    char where[1100];
    if (errno || end == kv->value || *end || !isfinite(v) || v < lo || v > hi)
        return cnb_error("%s: [%s] %s = '%s': expected a number from %g to %g",
                         cnb_conf_where(c, s, kv, where, sizeof where), s->name, key,
                         kv->value, lo, hi);
    *out = v;
    return 0;
}

int cnb_conf_choice(const cnb_conf *c, const cnb_section *s, const char *key,
                    const char *const *names, int *out)
{
    const cnb_kv *kv = cnb_section_get(s, key);
    if (!kv && *out >= 0)
        return 0;
    for (int i = 0; kv && names[i]; i++)
        if (strcmp(kv->value, names[i]) == 0)
            return *out = i, 0;
    char list[512] = "", where[1100];
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    if (!kv)
        return cnb_error("%s:%d: [%s] needs %s = one of %s", c->path, s->line, s->name, key,
                         list);
    return cnb_error("%s: [%s] %s = '%s': expected one of %s",
                     cnb_conf_where(c, s, kv, where, sizeof where), s->name, key, kv->value, list);
}
