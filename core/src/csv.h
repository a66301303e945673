/*
 * csv.h - the one CSV reader of the core, for the files cnnbench and its peers write.
 *
 * Records as RFC 4180 has them: fields separated by commas; a field in double quotes may
 * hold commas, line breaks and quotes (doubled: "a ""b"""); every field is kept, an empty
 * one as "". A reader opened on a file takes its first record as the header and finds
 * columns by name, so a file may gain or reorder columns without breaking its readers;
 * every record must have as many fields as the header. Errors name the file, the line and
 * the column or count that is wrong.
 *
 * Of writing, only a text field (cnb_csv_field): each file's columns and numbers are
 * written by the code that owns them.
 */
#ifndef CNB_CSV_H
#define CNB_CSV_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#define CNB_CSV_MAX_FIELDS 64

/* Split one record held in `line` into at most `max` fields, in place (quotes taken off,
 * doubled quotes made single); a line break at its end is not part of it. Returns the
 * number of fields: "a,,b" has 3, "" has 1. */
int cnb_csv_split(char *line, char **fields, int max);

typedef struct cnb_csv {
    FILE *f;
    char path[PATH_MAX];
    int line;                       /* the line the current record starts on; 1: header */
    int lines_read;                 /* lines consumed so far                            */
    char *head_text, *text;         /* the header's and the current record's storage    */
    size_t head_cap, cap;
    char *head[CNB_CSV_MAX_FIELDS]; /* column names                                     */
    int n_head;
    char *field[CNB_CSV_MAX_FIELDS]; /* the current record's fields                     */
    char err[1536];                 /* why the last call failed                         */
} cnb_csv;

/* Open `path` and read its header. 0, or CNB_ENOTFOUND (cannot open) or CNB_EINVAL (no
 * header), with c->err saying so; cnb_csv_close is needed either way. */
int cnb_csv_open(cnb_csv *c, const char *path);

/* The index of column `name`, or -1 when the header has none. */
int cnb_csv_find(const cnb_csv *c, const char *name);

/* The index of every column of the NULL-terminated `names` into `cols`: 0, or CNB_EINVAL
 * with c->err naming the file, its header line and the first missing column. */
int cnb_csv_columns(cnb_csv *c, const char *const *names, int *cols);

/* The next record: 1, 0 at the end of the file, or CNB_EINVAL when its field count is
 * not the header's (c->err names the file and line; the reader stops there). */
int cnb_csv_next(cnb_csv *c);

/* Field `col` (an index from cnb_csv_find or cnb_csv_columns) of the current record. */
const char *cnb_csv_get(const cnb_csv *c, int col);

void cnb_csv_close(cnb_csv *c);

/* Write `s` to f as one quoted field: its quotes doubled, a line break made a space (so
 * that every record stays on one line). No comma before or after. */
void cnb_csv_field(FILE *f, const char *s);

#endif
