/*
 * cnnbench/plugin.h - what every cnnbench plugin sees: ABI versions, error codes,
 * shapes and the host-services table.
 *
 * A plugin is a shared object exporting one symbol, cnb_plugin_entry(), which the host
 * calls with index 0, 1, 2, ... until it returns NULL. Each call returns a descriptor that
 * starts with a cnb_plugin_header (so one file may hold several variants). One macro per
 * kind, CNB_BACKEND_DEFINE or CNB_LAYER_DEFINE, writes a file's descriptors and that
 * entry, so that no plugin fills a header by hand. A plugin never links against the
 * cnnbench executable: everything it needs from the host comes through the cnb_host
 * table handed to it.
 *
 * Compatibility rules (as LV2 and SQLite extensions do it): a descriptor carries the ABI
 * major/minor it was built with and its own struct size. The host refuses a different
 * major and a newer minor than its own; new fields are only ever appended, so a host reads
 * no field past struct_size. The structs a plugin allocates and hands over (cnb_kernel,
 * cnb_layer) start with their struct_size too, filled by CNB_KERNEL_INIT and
 * CNB_LAYER_INIT; the host checks it where it receives one, before it calls any entry.
 * A file holding plugins of both kinds writes cnb_plugin_entry itself, over descriptors
 * made with CNB_BACKEND_DESC and CNB_LAYER_DESC.
 */
#ifndef CNNBENCH_PLUGIN_H
#define CNNBENCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CNB_EXPORT __attribute__((visibility("default")))
#define CNB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CNB_EXPORT
#define CNB_PRINTF(fmt, args)
#endif

/* Return codes: 0 or a negative cnb_status. */
typedef enum cnb_status {
    CNB_OK = 0,
    CNB_EINVAL = -1,   /* bad parameter or geometry; the callee has said why */
    CNB_ENOMEM = -2,
    CNB_ENOTSUP = -3,  /* a backend does not implement this op (the host falls back) */
    CNB_EIO = -4,
    CNB_EABI = -5,
    CNB_ENOTFOUND = -6,
} cnb_status;

/* "CNB_EINVAL": a status's name, for messages; "unknown status" for anything else. */
static inline const char *cnb_status_name(int status)
{
    switch (status) {
    case CNB_OK: return "CNB_OK";
    case CNB_EINVAL: return "CNB_EINVAL";
    case CNB_ENOMEM: return "CNB_ENOMEM";
    case CNB_ENOTSUP: return "CNB_ENOTSUP";
    case CNB_EIO: return "CNB_EIO";
    case CNB_EABI: return "CNB_EABI";
    case CNB_ENOTFOUND: return "CNB_ENOTFOUND";
    default: return "unknown status";
    }
}

typedef enum cnb_plugin_kind {
    CNB_PLUGIN_BACKEND = 1,
    CNB_PLUGIN_LAYER = 2,
} cnb_plugin_kind;

/* First member of every descriptor. */
typedef struct cnb_plugin_header {
    uint16_t abi_major;      /* CNB_{BACKEND,LAYER}_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;      /* ... and _MINOR                                        */
    uint32_t struct_size;    /* sizeof the whole descriptor                           */
    uint32_t kind;           /* cnb_plugin_kind                                       */
    const char *name;        /* unique within its kind: "naive", "pool.max"           */
    const char *version;     /* the plugin's own version, "1.0.0"                     */
    const char *description; /* one line for `cnnbench plugins`                       */
} cnb_plugin_header;

#define CNB_PLUGIN_ENTRY_SYMBOL "cnb_plugin_entry"
typedef const cnb_plugin_header *(*cnb_plugin_entry_fn)(unsigned index);

/* The one symbol a plugin exports: descriptor `index`, or NULL past the last. Declared
 * here so that the compiler checks every plugin's definition against it; a plugin writes
 * it with CNB_BACKEND_DEFINE (cnnbench/backend.h) or CNB_LAYER_DEFINE (cnnbench/layer.h),
 * not by hand. */
CNB_EXPORT const cnb_plugin_header *cnb_plugin_entry(unsigned index);

/* A descriptor header. CNB_BACKEND_DESC and CNB_LAYER_DESC fill it with the ABI and size
 * of the headers being compiled against; only a test that must build a wrong one (another
 * major, a short descriptor) writes it out itself. */
#define CNB_PLUGIN_HEADER(kind, major, minor, size, name, version, description)          \
    {(uint16_t)(major), (uint16_t)(minor), (uint32_t)(size), (uint32_t)(kind), (name),      \
     (version), (description)}

#if defined(__cplusplus)
#define CNB_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define CNB_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* The descriptor table of one file and its entry over it, for the kind macros
 * CNB_BACKEND_DEFINE and CNB_LAYER_DEFINE: `type` is the kind's descriptor struct, the
 * rest its initializers, in entry order. Ends in a declaration, so that a use takes a
 * semicolon like any other. */
#define CNB_PLUGIN_DEFINE_(type, ...)                                                      \
    static const type cnb_plugin_descs_[] = {__VA_ARGS__};                                 \
    CNB_EXPORT const cnb_plugin_header *cnb_plugin_entry(unsigned index)                   \
    {                                                                                      \
        return index < sizeof cnb_plugin_descs_ / sizeof cnb_plugin_descs_[0]              \
                   ? &cnb_plugin_descs_[index].hdr                                         \
                   : NULL;                                                                 \
    }                                                                                      \
    CNB_STATIC_ASSERT(offsetof(type, hdr) == 0, "a descriptor starts with its header")

/* Per-sample shape of an activation tensor; a batch adds a leading N (NCHW layout). */
typedef struct cnb_shape {
    int c, h, w;
} cnb_shape;

static inline size_t cnb_shape_size(cnb_shape s) { return (size_t)s.c * s.h * s.w; }

typedef enum cnb_log_level {
    CNB_LOG_ERROR = 0,
    CNB_LOG_WARN = 1,
    CNB_LOG_INFO = 2,
    CNB_LOG_DEBUG = 3,
} cnb_log_level;

typedef struct cnb_rng cnb_rng;             /* a seeded random stream owned by the host */
typedef struct cnb_params cnb_params;       /* one model-file section's keys and values */
typedef struct cnb_layer_ctx cnb_layer_ctx; /* the host's view of one layer instance    */
typedef struct cnb_kernel cnb_kernel;       /* defined in cnnbench/backend.h            */
typedef struct cnb_op_desc cnb_op_desc;     /* defined in cnnbench/backend.h            */

#define CNB_HOST_ABI_MAJOR 1
#define CNB_HOST_ABI_MINOR 0

/*
 * Host services. Plugins call through this table only. Fields are appended, never
 * reordered; check struct_size before using a field newer than your build's minor.
 */
typedef struct cnb_host {
    uint16_t abi_major, abi_minor;
    uint32_t struct_size;

    /* Logging: `who` is the plugin or layer name. A command says an info line or a
     * warning once, however many of its processes (sweep cells, check's parts) start
     * the plugin and log the same text; errors every time. */
    void (*log)(cnb_log_level level, const char *who, const char *fmt, ...) CNB_PRINTF(3, 4);

    /* Memory: 64-byte aligned, zero-filled; NULL on failure. Never in forward/backward. */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);

    /* Seeded random streams: every random choice in a run comes from one of these. */
    uint32_t (*rng_u32)(cnb_rng *rng);
    float (*rng_uniform)(cnb_rng *rng); /* [0, 1)                */
    float (*rng_normal)(cnb_rng *rng);  /* mean 0, deviation 1   */

    /* Model-file parameters of a layer section. Each returns 0, or CNB_EINVAL after
     * reporting "file:line: key 'k': ..." itself. A missing key yields `dflt`; pass
     * required = 1 to make a missing key an error instead. */
    int (*param_int)(cnb_layer_ctx *ctx, const char *key, int required, int dflt, int *out);
    int (*param_float)(cnb_layer_ctx *ctx, const char *key, int required, float dflt,
                       float *out);
    int (*param_str)(cnb_layer_ctx *ctx, const char *key, int required, const char *dflt,
                     const char **out);

    /* Report a layer error at the line of `key` (or of the section when key is NULL).
     * Always returns CNB_EINVAL so that callers can `return host->layer_error(...)`. */
    int (*layer_error)(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
        CNB_PRINTF(3, 4);
    /* A warning at the line of `key` (geometry that drops input rows, say). */
    void (*layer_warn)(cnb_layer_ctx *ctx, const char *key, const char *fmt, ...)
        CNB_PRINTF(3, 4);

    /* Create a kernel on the run's backend, falling back to the naive backend op by op
     * when the chosen one returns CNB_ENOTSUP. The host records which backend ran it. */
    int (*kernel_create)(cnb_layer_ctx *ctx, const cnb_op_desc *desc, cnb_kernel **out);

    /* This layer's own random stream (dropout masks), derived from the run's seed. */
    cnb_rng *(*layer_rng)(cnb_layer_ctx *ctx);
} cnb_host;

/* Log an error through the host as `who` and yield `code`, for the error paths of
 * kernel_create and of kernels:  return CNB_FAIL(host, "mine", CNB_EINVAL, "stride %d", s); */
#define CNB_FAIL(host, who, code, ...) ((host)->log(CNB_LOG_ERROR, (who), __VA_ARGS__), (code))

#ifdef __cplusplus
}
#endif
#endif /* CNNBENCH_PLUGIN_H */
