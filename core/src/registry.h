/*
 * registry.h - the plugin registry: finds, dlopens and validates plugin files.
 *
 * Search order: each folder of $CNB_PLUGIN_PATH (colon-separated), then the build tree's
 * plugin folder when the running program lives in the build tree, else the installed
 * plugin folder; plus any file named explicitly. Folders are scanned recursively for
 * *.so. A file that fails validation is refused with a message naming it and the reason,
 * and the scan goes on; an explicitly named file that fails is an error for the caller.
 */
#ifndef CNB_REGISTRY_H
#define CNB_REGISTRY_H

#include <stddef.h>

#include "cnnbench/backend.h"
#include "cnnbench/layer.h"

/* A backend descriptor's field from a newer ABI minor, or `absent` (NULL for an entry)
 * when the plugin's descriptor (struct_size) ends before it: the loader takes older
 * minors. */
#define CNB_BACKEND_FIELD_OR(be, field, absent)                                        \
    ((be)->hdr.struct_size > offsetof(cnb_backend_desc, field) ? (be)->field : (absent))
#define CNB_BACKEND_FIELD(be, field) CNB_BACKEND_FIELD_OR(be, field, NULL)

typedef struct cnb_plugin {
    const cnb_plugin_header *hdr; /* kind-specific descriptor starts with this */
    char *path;                   /* the file it came from (real path)          */
    unsigned index;               /* its index in that file's entry enumeration */
} cnb_plugin;

typedef struct cnb_registry {
    cnb_plugin *items;
    int n, cap;
    void **handles; /* one per loaded file */
    int n_handles, cap_handles;
    char *searched; /* the folders scanned, for "not found" messages */
    int refused;    /* files refused so far */
} cnb_registry;

void cnb_registry_init(cnb_registry *r);
void cnb_registry_free(cnb_registry *r);

/* Scan the default folders (see above). Refusals are logged; returns plugins added. */
int cnb_registry_scan_default(cnb_registry *r);
int cnb_registry_scan_dir(cnb_registry *r, const char *dir);

/* Load one file. 0 on success; otherwise a negative code and `err` says why, naming the
 * file: CNB_ENOTFOUND (no such file), CNB_EABI (not a plugin of this ABI), CNB_EINVAL (a
 * plugin of this ABI whose descriptor is incomplete: a required entry missing, no op).
 * Nothing from a refused file stays registered. */
int cnb_registry_load_file(cnb_registry *r, const char *path, char *err, size_t errlen);

/* Where the host receives a struct a plugin allocated: 0 when it is the size the
 * plugin's ABI minor defines, else CNB_EABI with `err` naming the plugin (and its file
 * when `r` has it) and what to do. The layer check also bounds n_params (CNB_EINVAL); the
 * kernel check refuses a NULL kernel (CNB_EINVAL). A NULL layer passes (the caller names
 * the missing layer itself). Nothing of a refused struct may be called, not even destroy. */
int cnb_registry_check_layer(const cnb_registry *r, const cnb_layer_desc *desc,
                             const cnb_layer *layer, char *err, size_t errlen);
int cnb_registry_check_kernel(const cnb_registry *r, const cnb_backend_desc *be,
                              const cnb_kernel *kernel, char *err, size_t errlen);

const cnb_plugin *cnb_registry_find(const cnb_registry *r, cnb_plugin_kind kind,
                                    const char *name);
const cnb_backend_desc *cnb_registry_backend(const cnb_registry *r, const char *name);
const cnb_layer_desc *cnb_registry_layer(const cnb_registry *r, const char *name);

/* "a, b, c": the names of every plugin of one kind, for error messages. */
void cnb_registry_names(const cnb_registry *r, cnb_plugin_kind kind, char *buf, size_t len);

const char *cnb_plugin_kind_name(cnb_plugin_kind kind);

#endif
