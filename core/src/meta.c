/* meta.c - see meta.h. */
#include "meta.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "net.h"

static void command_output(const char *cmd, char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(buf, (int)len, p))
        buf[strcspn(buf, "\n")] = '\0';
    else
        snprintf(buf, len, "unknown");
    pclose(p);
}

void cnb_cpuinfo(const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    size_t cap = 0;
    char *line = NULL;
    while (getline(&line, &cap, f) > 0)
        if (strncmp(line, key, strlen(key)) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(buf, len, "%s", colon + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    free(line);
    fclose(f);
}

double cnb_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

void cnb_meta_write(FILE *f, const cnb_registry *reg)
{
    char buf[4096], cmd[PATH_MAX + 128];
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "\n[build]\nversion = %s\nwritten = %s\n", CNB_VERSION, buf);
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD 2>/dev/null", CNB_SOURCE_ROOT);
    command_output(cmd, buf, sizeof buf);
    fprintf(f, "git_revision = %s\n", buf);
    snprintf(cmd, sizeof cmd,
             "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null | wc -l",
             CNB_SOURCE_ROOT);
    command_output(cmd, buf, sizeof buf);
    fprintf(f, "git_dirty = %s\ncompiler = %s\nbuildtype = %s\nc_args = %s\n",
            strcmp(buf, "0") == 0 ? "no" : "yes", CNB_COMPILER, CNB_BUILDTYPE, CNB_C_ARGS);
    cnb_cpuinfo("model name", buf, sizeof buf);
    fprintf(f, "\n[machine]\ncpu = %s\nlogical_cpus = %ld\nmemory_mib = %ld\n", buf,
            sysconf(_SC_NPROCESSORS_ONLN),
            (long)(sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024));
    cnb_cpuinfo("flags", buf, sizeof buf);
    fprintf(f, "cpu_flags = %s\n", buf);
    static const char *const vars[] = {"OPENBLAS_CORETYPE", "OMP_PROC_BIND", "OMP_PLACES",
                                       "OMP_WAIT_POLICY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *env = getenv(vars[i]);
        fprintf(f, "%s = %s\n", vars[i], env ? env : "(unset)");
    }
    fprintf(f, "\n[backends]\n; name = version, ABI, file; info from the backend itself\n");
    for (int i = 0; i < reg->n; i++) {
        const cnb_plugin *p = &reg->items[i];
        if (p->hdr->kind != CNB_PLUGIN_BACKEND)
            continue;
        const cnb_backend_desc *b = (const cnb_backend_desc *)p->hdr;
        cnb_backend_config cfg = {.threads = 1};
        void *state = NULL;
        const char *info = "";
        if (!b->init || b->init(cnb_host_services(), &cfg, &state) == 0)
            info = b->info ? b->info(state) : "";
        fprintf(f, "%s = %s, ABI %u.%u, %s; %s\n", p->hdr->name, p->hdr->version,
                p->hdr->abi_major, p->hdr->abi_minor, p->path, info ? info : "");
        if (b->fini)
            b->fini(state);
    }
}
