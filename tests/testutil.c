/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <dlfcn.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"

static cnb_registry registry;
static int registry_loaded;

cnb_registry *test_registry(void)
{
    if (!registry_loaded) {
        cnb_registry_init(&registry);
        cnb_registry_scan_default(&registry);
        registry_loaded = 1;
    }
    return &registry;
}

void test_free_registry(void)
{
    if (registry_loaded)
        cnb_registry_free(&registry);
    registry_loaded = 0;
}

int test_direct_avx512(void)
{
    const char *isa = getenv("CNB_DIRECT_ISA");
    if (isa && strcmp(isa, "scalar") == 0)
        return 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
#else
    return 0;
#endif
}

int test_openblas_allocates(void)
{
    void *lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
    char *(*corename)(void) = lib ? (char *(*)(void))dlsym(lib, "openblas_get_corename") : NULL;
    const char *core = corename ? corename() : "";
    int avx512 = strcasestr(core, "skylakex") || strcasestr(core, "cooperlake") ||
                 strcasestr(core, "sapphirerapids");
    if (lib)
        dlclose(lib);
    return avx512;
}

static char **made; /* folders test_tmpdir() made, removed at exit */
static int n_made;

void test_add_suite(const char *suite, const test_case *cases)
{
    test_add_suite_fixture(suite, NULL, NULL, cases);
}

void test_add_suite_fixture(const char *suite, int (*init)(void), int (*cleanup)(void),
                            const test_case *cases)
{
    CU_pSuite s = CU_add_suite(suite, init, cleanup);
    if (!s) {
        fprintf(stderr, "cannot add CUnit suite %s\n", suite);
        exit(2);
    }
    for (const test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn)) {
            fprintf(stderr, "cannot add CUnit test %s.%s\n", suite, c->name);
            exit(2);
        }
}

const char *test_data_dir(void)
{
    const char *d = getenv("CNB_DATA_DIR");
    return d && *d ? d : CNB_DEFAULT_DATA_DIR;
}

int test_backend_wanted(const char *name)
{
    const char *list = getenv("CNB_TEST_BACKENDS");
    if (!list || !*list)
        return 1;
    const size_t n = strlen(name);
    for (const char *p = list;; p++) {
        const size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p += len;
        if (!*p)
            return 0;
    }
}

const char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char template[256];
    snprintf(template, sizeof template, "%s/cnnbench-test-XXXXXX", base && *base ? base : "/tmp");
    char **grown = realloc(made, (size_t)(n_made + 1) * sizeof *made);
    char *path = mkdtemp(template) ? strdup(template) : NULL;
    if (!grown || !path) {
        perror("test_tmpdir");
        exit(2);
    }
    made = grown;
    return made[n_made++] = path;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

void test_remove_tmpdirs(void)
{
    for (int i = 0; i < n_made; i++) {
        nftw(made[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(made[i]);
    }
    free(made);
    made = NULL, n_made = 0;
}

void test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

void test_read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    buf[fread(buf, 1, len - 1, f)] = '\0';
    fclose(f);
}

int test_model_load(cnb_net *net, cnb_conf *conf, cnb_registry *reg, const char *file,
                    const char *act, const char *pool)
{
    char path[512];
    snprintf(path, sizeof path, "%s/experiments/models/%s", CNB_SOURCE_ROOT, file);
    cnb_vars vars = {0};
    if (act)
        cnb_vars_set(&vars, "act", act);
    if (pool)
        cnb_vars_set(&vars, "pool", pool);
    memset(net, 0, sizeof *net);
    memset(conf, 0, sizeof *conf);
    int rc = cnb_net_load(net, conf, reg, path, &vars);
    cnb_vars_free(&vars);
    return rc;
}

void test_fill_batch(cnb_net *net, int batch, uint64_t seed)
{
    struct cnb_rng rng;
    cnb_rng_seed(&rng, seed, CNB_STREAM_DATA);
    const size_t nx = (size_t)batch * cnb_shape_size(net->input);
    for (size_t i = 0; i < nx; i++)
        net->x[i] = cnb_rng_normal(&rng);
    for (int b = 0; b < batch; b++)
        net->labels[b] = (int32_t)cnb_rng_below(&rng, (uint32_t)net->classes);
}
