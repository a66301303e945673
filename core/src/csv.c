/* csv.c - see csv.h. */
#include "csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cnnbench/plugin.h"
#include "errors.h"

/* One quoted field starting after its opening quote at *p: unquoted in place, *p left
 * past it and its comma. Returns 1 when a comma follows (more fields), else 0. */
static int quoted_field(char **p)
{
    char *in = *p, *out = in;
    for (; *in; in++) {
        if (*in == '"' && in[1] == '"')
            *out++ = '"', in++;
        else if (*in == '"')
            break;
        else
            *out++ = *in;
    }
    if (*in == '"')
        in++;
    *out = '\0';
    *p = in + (*in == ',');
    return *in == ',';
}

int cnb_csv_split(char *line, char **fields, int max)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0, more = 1;
    for (char *p = line; more && n < max;) {
        if (*p == '"') {
            fields[n++] = ++p;
            more = quoted_field(&p);
        } else {
            fields[n++] = p;
            char *comma = strchr(p, ',');
            more = comma != NULL;
            if (more)
                *comma = '\0', p = comma + 1;
        }
    }
    return n;
}

static size_t count_quotes(const char *s, size_t n)
{
    size_t q = 0;
    for (size_t i = 0; i < n; i++)
        q += s[i] == '"';
    return q;
}

/* Read one record into *buf: a line, and the next ones while a quoted field is open (an
 * odd number of quotes so far; an unclosed quote ends with the file). Its length, or -1
 * at the end of the file. */
static long read_record(cnb_csv *c, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, c->f);
    if (n < 0)
        return -1;
    c->line = ++c->lines_read;
    size_t len = (size_t)n, quotes = count_quotes(*buf, len), more_cap = 0;
    char *more = NULL;
    while (quotes % 2 && (n = getline(&more, &more_cap, c->f)) >= 0) {
        char *grown = realloc(*buf, len + (size_t)n + 1);
        if (!grown)
            break;
        memcpy(grown + len, more, (size_t)n + 1);
        *buf = grown, *cap = len + (size_t)n + 1;
        quotes += count_quotes(more, (size_t)n);
        len += (size_t)n;
        c->lines_read++;
    }
    free(more);
    return (long)len;
}

int cnb_csv_open(cnb_csv *c, const char *path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    if (!(c->f = fopen(path, "r")))
        return cnb_fail(CNB_ENOTFOUND, c->err, sizeof c->err, "%s: cannot open: %s", path,
                        strerror(errno));
    if (read_record(c, &c->head_text, &c->head_cap) < 0)
        return cnb_fail(CNB_EINVAL, c->err, sizeof c->err, "%s: empty; expected a header "
                        "line naming its columns", path);
    c->n_head = cnb_csv_split(c->head_text, c->head, CNB_CSV_MAX_FIELDS);
    return 0;
}

int cnb_csv_find(const cnb_csv *c, const char *name)
{
    for (int i = 0; i < c->n_head; i++)
        if (strcmp(c->head[i], name) == 0)
            return i;
    return -1;
}

int cnb_csv_columns(cnb_csv *c, const char *const *names, int *cols)
{
    for (int k = 0; names[k]; k++)
        if ((cols[k] = cnb_csv_find(c, names[k])) < 0) {
            int used = snprintf(c->err, sizeof c->err, "%s:1: no column '%s' in the header "
                                "(its columns:", c->path, names[k]);
            for (int i = 0; i < c->n_head && used < (int)sizeof c->err; i++)
                used += snprintf(c->err + used, sizeof c->err - (size_t)used, " %s",
                                 c->head[i]);
            if (used < (int)sizeof c->err)
                snprintf(c->err + used, sizeof c->err - (size_t)used, ")");
            return CNB_EINVAL;
        }
    return 0;
}

int cnb_csv_next(cnb_csv *c)
{
    if (read_record(c, &c->text, &c->cap) < 0)
        return 0;
    int n = cnb_csv_split(c->text, c->field, CNB_CSV_MAX_FIELDS);
    if (n != c->n_head)
        return cnb_fail(CNB_EINVAL, c->err, sizeof c->err, "%s:%d: %d field%s, the header "
                        "has %d columns", c->path, c->line, n, n == 1 ? "" : "s", c->n_head);
    return 1;
}

const char *cnb_csv_get(const cnb_csv *c, int col) { return c->field[col]; }

void cnb_csv_close(cnb_csv *c)
{
    if (c->f)
        fclose(c->f);
    free(c->head_text);
    free(c->text);
    c->f = NULL, c->head_text = c->text = NULL;
}

void cnb_csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}
