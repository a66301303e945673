/*
 * conf.h - INI files (model and experiment files) read through libinih, kept in order
 * with the line of every key, so every later error can name file and line.
 *
 * `${name}` in a value is filled from a variable list (cnb_conf_substitute); an undefined
 * name is an error naming it, the file and the line.
 */
#ifndef CNB_CONF_H
#define CNB_CONF_H

#include <stddef.h>

typedef struct cnb_kv {
    char *key, *value;
    int line;
    char *from; /* after a ${var} was filled in: "${act} = tanh, set at exp.ini:12"; or NULL */
} cnb_kv;

typedef struct cnb_section {
    char *name;
    int line;
    cnb_kv *kv;
    int n, cap;
} cnb_section;

typedef struct cnb_conf {
    char *path;
    cnb_section *sec;
    int n, cap;
} cnb_conf;

/* Variables for ${name}: later entries win, so defaults go first. */
#define CNB_MAX_VARS 64
typedef struct cnb_vars {
    char *names[CNB_MAX_VARS];
    char *values[CNB_MAX_VARS];
    char *where[CNB_MAX_VARS]; /* where each was set ("exp.ini:12", "--set act=tanh"), or NULL */
    int n;
} cnb_vars;

/* 0, or CNB_EIO / CNB_EINVAL after reporting "file:line: what to do" through cnb_error. */
int cnb_conf_load(cnb_conf *c, const char *path);
int cnb_conf_load_string(cnb_conf *c, const char *virtual_path, const char *text);
void cnb_conf_free(cnb_conf *c);

const cnb_section *cnb_conf_section(const cnb_conf *c, const char *name);
const cnb_kv *cnb_section_get(const cnb_section *s, const char *key);

/* Replace ${var} in every value. */
int cnb_conf_substitute(cnb_conf *c, const cnb_vars *vars);

/* Add or replace section.key = value (the section is created if missing); `line` 0 marks
 * the command line. */
int cnb_conf_put(cnb_conf *c, const char *section, const char *key, const char *value, int line);
/* "section.key=value" (from --set), or with `value` given, "section.key" (a profile). */
int cnb_conf_set(cnb_conf *c, const char *assignment, const char *value, int line);

/* Where a key was set, for messages: "FILE:LINE", or "--set section.key=value" for a key
 * from the command line (line 0). Returns buf. */
const char *cnb_conf_where(const cnb_conf *c, const cnb_section *s, const cnb_kv *kv,
                           char *buf, size_t len);
/* The same for `key` of `s`, looked up; a key that is not there gives the section's line. */
const char *cnb_conf_key_where(const cnb_conf *c, const cnb_section *s, const char *key,
                               char *buf, size_t len);

/* Reject keys of `s` not in the NULL-terminated `allowed` list, naming them and the list. */
int cnb_section_check_keys(const cnb_conf *c, const cnb_section *s, const char *const *allowed);

int cnb_vars_set(cnb_vars *v, const char *name, const char *value);
/* Each whitespace-separated name=value term of `terms` ("act=relu pool=max") into v: 0;
 * CNB_EINVAL with the first term that has no '=' in bad, for the caller to say; or
 * cnb_vars_set's error. */
int cnb_vars_set_terms(cnb_vars *v, const char *terms, char *bad, size_t len);
/* The same, remembering where it was set, so that an error in a value it fills names it. */
int cnb_vars_set_at(cnb_vars *v, const char *name, const char *value, const char *where);
const char *cnb_vars_get(const cnb_vars *v, const char *name);
void cnb_vars_free(cnb_vars *v);

/* Typed reads of a section's key with file:line errors. A missing key leaves *out. */
int cnb_conf_int(const cnb_conf *c, const cnb_section *s, const char *key, long lo, long hi,
                 long *out);
int cnb_conf_double(const cnb_conf *c, const cnb_section *s, const char *key, double lo,
                    double hi, double *out);
/* A key whose value is one of the NULL-terminated `names`: its index in *out. A missing
 * key leaves *out when *out holds a default (0 or more) and is an error when it is
 * negative (the key is required); any other value is an error. Errors name the file, the
 * line, the key and every name. */
int cnb_conf_choice(const cnb_conf *c, const cnb_section *s, const char *key,
                    const char *const *names, int *out);

#endif
