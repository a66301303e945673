/*
 * registry.c - the plugin registry; see registry.h. Validation mirrors LV2 and SQLite
 * extensions: the ABI major must match, the minor may not be newer than the host's, the
 * descriptor must be at least as large as that minor defines, and required fields must
 * be filled. Names are unique per kind. The header itself never changes between majors,
 * so that a plugin of any major can be read far enough to be refused by name. The kernels
 * and layers plugins make are checked here too, for the host's modules that receive them.
 */
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define MAX_SCAN_DEPTH 6
#define MAX_ENTRIES 256

void cnb_registry_init(cnb_registry *r) { memset(r, 0, sizeof *r); }

void cnb_registry_free(cnb_registry *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->items[i].path);
    for (int i = 0; i < r->n_handles; i++)
        dlclose(r->handles[i]);
    free(r->items);
    free(r->handles);
    free(r->searched);
    memset(r, 0, sizeof *r);
}

const char *cnb_plugin_kind_name(cnb_plugin_kind kind)
{
    switch (kind) {
    case CNB_PLUGIN_BACKEND: return "backend";
    case CNB_PLUGIN_LAYER: return "layer";
    }
    return "unknown";
}

const cnb_plugin *cnb_registry_find(const cnb_registry *r, cnb_plugin_kind kind,
                                    const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (r->items[i].hdr->kind == (uint32_t)kind && strcmp(r->items[i].hdr->name, name) == 0)
            return &r->items[i];
    return NULL;
}

const cnb_backend_desc *cnb_registry_backend(const cnb_registry *r, const char *name)
{
    const cnb_plugin *p = cnb_registry_find(r, CNB_PLUGIN_BACKEND, name);
    return p ? (const cnb_backend_desc *)p->hdr : NULL;
}

const cnb_layer_desc *cnb_registry_layer(const cnb_registry *r, const char *name)
{
    const cnb_plugin *p = cnb_registry_find(r, CNB_PLUGIN_LAYER, name);
    return p ? (const cnb_layer_desc *)p->hdr : NULL;
}

void cnb_registry_names(const cnb_registry *r, cnb_plugin_kind kind, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n && used < len; i++) {
        if (r->items[i].hdr->kind != (uint32_t)kind)
            continue;
        int k = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", r->items[i].hdr->name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    if (!buf[0])
        snprintf(buf, len, "(none)");
}

/* The ABI a kind's descriptor must match, and the struct size its minor `built` defines.
 * Every minor of the current majors defines the whole struct so far; when a minor appends
 * a field, the sizes of the minors before it become offsetof(..., that field), as backend
 * 1.0's was offsetof(cnb_backend_desc, layout_of) under 1.1. */
static int kind_abi(uint32_t kind, unsigned built, unsigned *major, unsigned *minor,
                    size_t *size)
{
    switch (kind) {
    case CNB_PLUGIN_BACKEND:
        *major = CNB_BACKEND_ABI_MAJOR, *minor = CNB_BACKEND_ABI_MINOR;
        *size = built == 0   ? offsetof(cnb_backend_desc, max_threads)
                : built == 1 ? offsetof(cnb_backend_desc, fuse_create)
                : built == 2 ? offsetof(cnb_backend_desc, kernel_bytes)
                : built == 3 ? offsetof(cnb_backend_desc, algorithm)
                             : sizeof(cnb_backend_desc);
        return 0;
    case CNB_PLUGIN_LAYER:
        *major = CNB_LAYER_ABI_MAJOR, *minor = CNB_LAYER_ABI_MINOR;
        *size = sizeof(cnb_layer_desc);
        return 0;
    }
    return -1;
}

static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* Check one descriptor; on refusal write the reason (without the file name) to err. */
static int validate(const cnb_plugin_header *h, char *err, size_t errlen)
{
    unsigned major, minor;
    size_t size;
    if (kind_abi(h->kind, h->abi_minor, &major, &minor, &size) != 0) {
        snprintf(err, errlen, "unknown plugin kind %u (this host knows backend=1, layer=2)",
                 h->kind);
        return CNB_EABI;
    }
    const char *kind = cnb_plugin_kind_name(h->kind);
    if (h->abi_major != major) {
        snprintf(err, errlen, "%s plugin '%s' was built against %s ABI %u.%u, this host takes "
                 "%u.x: %s", kind, h->name ? h->name : "?", kind, h->abi_major, h->abi_minor,
                 major,
                 h->abi_major < major
                     ? "rebuild it against the installed cnnbench headers (pkg-config "
                       "--cflags cnnbench-plugin)"
                     : "it needs a newer cnnbench; update cnnbench, or rebuild the plugin "
                       "against the installed headers");
        return CNB_EABI;
    }
    if (h->abi_minor > minor) {
        snprintf(err, errlen,
                 "%s plugin '%s' needs %s ABI %u.%u, newer than this host's %u.%u; "
                 "update cnnbench or rebuild the plugin against the installed headers",
                 kind, h->name ? h->name : "?", kind, h->abi_major, h->abi_minor, major, minor);
        return CNB_EABI;
    }
    if (h->struct_size < size) {
        snprintf(err, errlen,
                 "%s descriptor is %u bytes but ABI %u.%u defines %zu; "
                 "rebuild it against the installed cnnbench headers",
                 kind, h->struct_size, h->abi_major, h->abi_minor, size);
        return CNB_EABI;
    }
    /* From here on the plugin speaks this ABI but is incomplete: CNB_EINVAL. */
    const char *missing = NULL;
    if (!h->name || !*h->name)
        missing = "name";
    else if (!h->version || !*h->version)
        missing = "version";
    else if (h->kind == CNB_PLUGIN_BACKEND && !((const cnb_backend_desc *)h)->kernel_create)
        missing = "kernel_create";
    else if (h->kind == CNB_PLUGIN_LAYER && !((const cnb_layer_desc *)h)->create)
        missing = "create";
    if (missing) {
        snprintf(err, errlen, "%s descriptor has an empty required field '%s'", kind, missing);
        return CNB_EINVAL;
    }
    if (h->kind == CNB_PLUGIN_BACKEND) {
        uint32_t ops = ((const cnb_backend_desc *)h)->ops;
        if ((ops & CNB_OPS_ALL) == 0) {
            snprintf(err, errlen, "backend '%s' provides no op (ops is 0x%x): set "
                     "CNB_OP_BIT() of each op its kernel_create makes", h->name, ops);
            return CNB_EINVAL;
        }
        if (ops & ~CNB_OPS_ALL) {
            snprintf(err, errlen, "backend '%s' sets op bits this host does not know (ops "
                     "0x%x, known 0x%x); rebuild it against the installed cnnbench headers",
                     h->name, ops, CNB_OPS_ALL);
            return CNB_EABI;
        }
    }
    if (!valid_name(h->name)) {
        snprintf(err, errlen,
                 "%s name '%s' may hold only a-z, 0-9, '.', '_' and '-'", kind, h->name);
        return CNB_EABI;
    }
    return 0;
}

/* The refusal of a struct a plugin allocated (cnb_layer, cnb_kernel) whose struct_size
 * `got` is not this host's `want` (every minor of ABI 2 has the same size so far). */
static int size_refused(char *err, size_t errlen, const char *who, const char *file,
                        const char *what, const char *init, const char *header,
                        const cnb_plugin_header *h, unsigned got, size_t want)
{
    if (got == 0)
        snprintf(err, errlen, "%s '%s'%s made a %s without its struct_size: fill it with "
                 "%s() (cnnbench/%s) and rebuild the plugin", who, h->name, file, what, init,
                 header);
    else
        snprintf(err, errlen, "%s '%s'%s made a %s of %u bytes, but %s ABI %u.%u defines %zu: "
                 "it was built against other cnnbench headers; rebuild it against the "
                 "installed ones", who, h->name, file, what, got,
                 h->kind == CNB_PLUGIN_LAYER ? "layer" : "backend", h->abi_major, h->abi_minor,
                 want);
    return CNB_EABI;
}

/* " (/path/x.so)" for a registered plugin, "" otherwise. */
static const char *from_file(const cnb_registry *r, cnb_plugin_kind kind, const char *name,
                             char *buf, size_t len)
{
    const cnb_plugin *p = r ? cnb_registry_find(r, kind, name) : NULL;
    snprintf(buf, len, "%s%s%s", p ? " (" : "", p ? p->path : "", p ? ")" : "");
    return buf;
}

int cnb_registry_check_layer(const cnb_registry *r, const cnb_layer_desc *desc,
                             const cnb_layer *layer, char *err, size_t errlen)
{
    const cnb_plugin_header *h = &desc->hdr;
    char file[PATH_MAX + 8];
    if (!layer || layer->struct_size == sizeof(cnb_layer)) {
        if (!layer || (layer->n_params >= 0 && layer->n_params <= CNB_MAX_PARAMS))
            return 0;
        snprintf(err, errlen, "layer plugin '%s'%s declares %d learnable tensors; a cnb_layer "
                 "holds 0 to %d (CNB_MAX_PARAMS)", h->name,
                 from_file(r, CNB_PLUGIN_LAYER, h->name, file, sizeof file), layer->n_params,
                 CNB_MAX_PARAMS);
        return CNB_EINVAL;
    }
    from_file(r, CNB_PLUGIN_LAYER, h->name, file, sizeof file);
    return size_refused(err, errlen, "layer plugin", file, "cnb_layer", "CNB_LAYER_INIT",
                        "layer.h", h, layer->struct_size, sizeof(cnb_layer));
}

int cnb_registry_check_kernel(const cnb_registry *r, const cnb_backend_desc *be,
                              const cnb_kernel *kernel, char *err, size_t errlen)
{
    const cnb_plugin_header *h = &be->hdr;
    char file[PATH_MAX + 8];
    from_file(r, CNB_PLUGIN_BACKEND, h->name, file, sizeof file);
    if (!kernel) {
        snprintf(err, errlen, "backend '%s'%s: kernel_create returned 0 but no kernel",
                 h->name, file);
        return CNB_EINVAL;
    }
    if (kernel->struct_size == sizeof(cnb_kernel))
        return 0;
    return size_refused(err, errlen, "backend", file, "kernel", "CNB_KERNEL_INIT", "backend.h",
                        h, kernel->struct_size, sizeof(cnb_kernel));
}

static int already_loaded(const cnb_registry *r, const char *real)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->items[i].path, real) == 0)
            return 1;
    return 0;
}

static int push_item(cnb_registry *r, const cnb_plugin_header *h, const char *path, unsigned idx)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        cnb_plugin *items = realloc(r->items, (size_t)cap * sizeof *items);
        if (!items)
            return CNB_ENOMEM;
        r->items = items, r->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return CNB_ENOMEM;
    r->items[r->n++] = (cnb_plugin){.hdr = h, .path = copy, .index = idx};
    return 0;
}

static int push_handle(cnb_registry *r, void *handle)
{
    if (r->n_handles == r->cap_handles) {
        int cap = r->cap_handles ? 2 * r->cap_handles : 16;
        void **h = realloc(r->handles, (size_t)cap * sizeof *h);
        if (!h)
            return CNB_ENOMEM;
        r->handles = h, r->cap_handles = cap;
    }
    r->handles[r->n_handles++] = handle;
    return 0;
}

int cnb_registry_load_file(cnb_registry *r, const char *path, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CNB_ENOTFOUND;
    }
    if (already_loaded(r, real))
        return 0;
    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(err, errlen, "%s: not a loadable plugin: %s", real, dlerror());
        return CNB_EABI;
    }
    cnb_plugin_entry_fn entry;
    *(void **)&entry = dlsym(handle, CNB_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(err, errlen,
                 "%s: missing entry symbol '%s': define the plugin with CNB_BACKEND_DEFINE "
                 "(cnnbench/backend.h) or CNB_LAYER_DEFINE (cnnbench/layer.h), which "
                 "export it", real, CNB_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return CNB_EABI;
    }
    int first = r->n, rc = 0;
    unsigned idx = 0;
    for (const cnb_plugin_header *h; idx < MAX_ENTRIES && (h = entry(idx)) != NULL; idx++) {
        char why[512];
        if ((rc = validate(h, why, sizeof why)) != 0) {
            snprintf(err, errlen, "%s: entry %u: %s", real, idx, why);
            break;
        }
        const cnb_plugin *dup = cnb_registry_find(r, (cnb_plugin_kind)h->kind, h->name);
        if (dup) {
            snprintf(err, errlen, "%s: %s plugin name '%s' is already taken by %s; rename one",
                     real, cnb_plugin_kind_name(h->kind), h->name, dup->path);
            rc = CNB_EABI;
            break;
        }
        if ((rc = push_item(r, h, real, idx)) != 0) {
            snprintf(err, errlen, "%s: out of memory", real);
            break;
        }
    }
    if (rc == 0 && idx == 0) {
        snprintf(err, errlen, "%s: %s(0) returned no plugin", real, CNB_PLUGIN_ENTRY_SYMBOL);
        rc = CNB_EABI;
    }
    if (rc == 0 && (rc = push_handle(r, handle)) != 0)
        snprintf(err, errlen, "%s: out of memory", real);
    if (rc != 0) { /* nothing of a refused file stays */
        while (r->n > first)
            free(r->items[--r->n].path);
        dlclose(handle);
    }
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void note_searched(cnb_registry *r, const char *dir)
{
    size_t old = r->searched ? strlen(r->searched) : 0;
    char *s = realloc(r->searched, old + strlen(dir) + 3);
    if (!s)
        return;
    if (old)
        strcpy(s + old, ", "), old += 2;
    strcpy(s + old, dir);
    r->searched = s;
}

static int scan(cnb_registry *r, const char *dir, int depth)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), added = 0;
    if (n < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char path[PATH_MAX];
        struct stat st;
        if (name[0] == '.' || ends_with(name, ".p") ||
            snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
            stat(path, &st) != 0) {
            free(list[i]);
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth < MAX_SCAN_DEPTH) {
            added += scan(r, path, depth + 1);
        } else if (S_ISREG(st.st_mode) && ends_with(name, ".so")) {
            char err[1024];
            int before = r->n;
            if (cnb_registry_load_file(r, path, err, sizeof err) != 0) {
                cnb_log(CNB_LOG_ERROR, "plugins", "refused %s", err);
                r->refused++;
            }
            added += r->n - before;
        }
        free(list[i]);
    }
    free(list);
    return added;
}

int cnb_registry_scan_dir(cnb_registry *r, const char *dir)
{
    note_searched(r, dir);
    return scan(r, dir, 0);
}

/* True when the running executable sits inside the meson build tree. */
static int running_in_build_tree(void)
{
    char exe[PATH_MAX], root[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !realpath(CNB_BUILD_ROOT, root))
        return 0;
    exe[n] = '\0';
    size_t len = strlen(root);
    return strncmp(exe, root, len) == 0 && exe[len] == '/';
}

int cnb_registry_scan_default(cnb_registry *r)
{
    int added = 0;
    const char *env = getenv("CNB_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
            added += cnb_registry_scan_dir(r, d);
        free(copy);
    }
    added += cnb_registry_scan_dir(r, running_in_build_tree() ? CNB_BUILD_PLUGIN_DIR
                                                              : CNB_INSTALL_PLUGIN_DIR);
    return added;
}
