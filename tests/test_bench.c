/*
 * test_bench.c - the bench (time experiments): the repetition statistics, the FMA probes
 * (the kernel init chooses, and each ISA's when named) and the share of peak (a share
 * above 100% flagged, on known answers), a whole run with two backends and stand-in peer
 * scripts (their ways, files, rows and report; one that only infers), the real peers
 * where their frameworks are installed, the memory columns (a kernel that allocates in
 * forward, a backend that cannot say what its kernels hold), and the errors a bad [bench]
 * section gets.
 */
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

#include "bench.h"
#include "child.h"
#include "conf.h"
#include "csv.h"
#include "errors.h"
#include "heapcount.h"
#include "peak.h"
#include "proccount.h"
#include "stats.h"
#include "testutil.h"

/* The whole file, NUL-terminated, in a static buffer ("" when it cannot be read). */
static const char *read_file(const char *path)
{
    static char text[1 << 18];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return text;
}

/* The lines of text starting with prefix. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, prefix, strlen(prefix)) == 0;
    return n;
}

/* Sorted 1 2 3 4 5 100: quartiles by linear interpolation between order statistics at
 * (n - 1) p, so q1 = 2.25, median 3.5, q3 = 4.75; Tukey's upper fence 4.75 + 1.5 * 2.5
 * = 8.5 makes 100 the one outlier, counted and kept in the mean. */
static void test_repetition_stats(void)
{
    const double x[] = {5, 1, 4, 2, 3, 100};
    cnb_sample_stats s;
    cnb_sample_summarize(x, 6, &s);
    CU_ASSERT_EQUAL(s.n, 6);
    CU_ASSERT_DOUBLE_EQUAL(s.min, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.max, 100.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.median, 3.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.q1, 2.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.q3, 4.75, 1e-12);
    CU_ASSERT_EQUAL(s.outliers, 1);
    const double mean = 115.0 / 6;
    double ss = 0;
    for (int i = 0; i < 6; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    CU_ASSERT_DOUBLE_EQUAL(s.cv, sqrt(ss / 5) / mean, 1e-12);

    const double one = 7.0;
    cnb_sample_summarize(&one, 1, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.median, 7.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(s.cv, 0.0, 0);
    CU_ASSERT_EQUAL(s.outliers, 0);
}

/* A share is printed as a percentage up to 100% (at the peak included); above it, as a
 * measurement error with the figures that produced it: 243.7 / 232.6 = 1.04772. A pass
 * with fewer multiply-adds than counted (Winograd) is direct-equivalent at any share. */
static void test_share_format(void)
{
    char buf[160];
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 243.7, 232.6, 0), 1);
    CU_ASSERT_STRING_EQUAL(buf, "MISTRUSTED: 104.8% of peak (243.7 GFLOP/s against a probe "
                                "max of 232.6)");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 116.3, 232.6, 0), 0);
    CU_ASSERT_STRING_EQUAL(buf, "50.0%");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 232.6, 232.6, 0), 0);
    CU_ASSERT_STRING_EQUAL(buf, "100.0%");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 232.7, 232.6, 0), 1);
    CHECK_MSG(buf, "MISTRUSTED: 100.0% of peak (232.7 GFLOP/s"); /* 100.04%, still above */
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, NAN, 232.6, 0), 0);
    CU_ASSERT_STRING_EQUAL(buf, "–");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 50.0, NAN, 0), 0); /* no probe */
    CU_ASSERT_STRING_EQUAL(buf, "–");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 311.2, 232.6, 1), 0);
    CU_ASSERT_STRING_EQUAL(buf, "133.8% direct-equivalent");
    CU_ASSERT_EQUAL(cnb_bench_share_format(buf, sizeof buf, 116.3, 232.6, 1), 0);
    CU_ASSERT_STRING_EQUAL(buf, "50.0% direct-equivalent");
}

/* Init chooses a kernel and takes no probe; each probe is kept, the maximum is the peak. */
static void test_peak_probes(void)
{
    cnb_peak p;
    CU_ASSERT_EQUAL_FATAL(cnb_peak_init(&p, 2, 0.005, NULL), 0);
    CU_ASSERT_EQUAL(p.n, 0);
    CU_ASSERT(isnan(p.gflops));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.isa);
    CU_ASSERT_STRING_EQUAL(p.isa, cnb_peak_isas[p.kernel]);
    CU_ASSERT(p.tried[p.kernel] > 0);
    for (int k = 0; k < 3; k++)
        CU_ASSERT(p.tried[k] <= p.tried[p.kernel]);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(cnb_peak_probe(&p), 0);
    CU_ASSERT_EQUAL(p.n, 5);
    double max = 0;
    for (int i = 0; i < p.n; i++)
        max = p.probes[i] > max ? p.probes[i] : max;
    CU_ASSERT_DOUBLE_EQUAL(p.gflops, max, 0);
    CU_ASSERT(p.min > 0 && p.min <= p.median && p.median <= p.gflops);
    cnb_peak_free(&p);
}

/* Each kernel the probe has runs when asked for by name, on a CPU that has its ISA (the
 * scalar loop on any): the AVX2 and scalar ones too, which init would not choose on a CPU
 * with AVX-512. An ISA the CPU lacks, or no kernel's name, is refused. */
static void test_peak_each_isa(void)
{
    __builtin_cpu_init();
    const int cpu[3] = {__builtin_cpu_supports("avx512f"),
                        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), 1};
    const int quiet = cnb_error_quiet(1); /* the refusals are expected */
    for (int k = 0; k < 3; k++) {
        cnb_peak p;
        const int rc = cnb_peak_init(&p, 1, 0.002, cnb_peak_isas[k]);
        if (!cpu[k]) {
            CU_ASSERT_EQUAL(rc, CNB_EINVAL);
            CHECK_MSG(cnb_last_error(), cnb_peak_isas[k]);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(p.kernel, k);
        CU_ASSERT_STRING_EQUAL(p.isa, cnb_peak_isas[k]);
        for (int j = 0; j < 3; j++)
            CU_ASSERT(j == k ? p.tried[j] > 0 : p.tried[j] == 0); /* no other kernel ran */
        CU_ASSERT_EQUAL(cnb_peak_probe(&p), 0);
        CU_ASSERT(p.n == 1 && p.gflops > 0);
        cnb_peak_free(&p);
    }
    cnb_peak p;
    CU_ASSERT_EQUAL(cnb_peak_init(&p, 1, 0.002, "sse9"), CNB_EINVAL);
    CHECK_MSG(cnb_last_error(), "no kernel for ISA 'sse9' (avx512f, avx2+fma or scalar)");
    cnb_error_quiet(quiet);
}

/* A stand-in for scripts/pytorch-peer.py, speaking its protocol. Its ways (--ways, at the
 * thread count it is asked for): as shipped; tuned, with --inference-mode, an OMP variable
 * at the thread count and a glibc one; a third it says it cannot run. Run, it tells its
 * way by its environment and keeps its arguments, that environment's OMP, OpenBLAS and
 * allocator variables and its steps per sample (`step F T`) in args-WAY, env-WAY and
 * steps-WAY; each step answers 5 ms forward and 20 (shipped) or 10 ms (glibc) training, 2
 * MiB of peak memory. */
static const char peer_script[] =
    "#!/bin/sh\n"
    "dir=$(dirname \"$0\"); way=shipped\n"
    "if [ \"$1\" = --ways ]; then\n"
    "  printf 'way\\t\\tshipped\\t\\t\\tas shipped\\n'\n"
    "  printf 'way\\t-tuned-glibc\\ttuned\\t--inference-mode\\tOMP_NUM_THREADS=%s "
    "MALLOC_TOP_PAD_=1073741824\\ttuned, glibc keeping its memory\\n' \"$3\"\n"
    "  printf 'not-run\\t-tuned-jemalloc\\tThe jemalloc way is not run here.\\n'; exit 0\n"
    "fi\n"
    "[ -n \"$MALLOC_TOP_PAD_\" ] && way=glibc\n"
    "echo \"$@\" > \"$dir/args-$way\"\n"
    "env | grep -E '^(OMP|OPENBLAS_NUM|MALLOC|LD_PRELOAD)' | sort > \"$dir/env-$way\"\n"
    "grep Cpus_allowed_list /proc/self/status | cut -f2 > \"$dir/cpus-$way\"\n"
    "case $way in shipped) t=0.020;; *) t=0.010;; esac\n"
    "echo ready backend=pytorch-test create_ms=2.5 how='a \"stand-in\"'\n"
    "while read cmd nf nt; do [ \"$cmd\" = step ] || exit 0; echo $nf $nt >> \"$dir/steps-$way\"\n"
    "  echo step 0.005 $t 2048; done\n";

/* A stand-in for scripts/onnxruntime-peer.mjs: a peer that only infers, as shipped (8 ms,
 * no training time as `nan`) and tuned with --tuned (4 ms, `-`). */
static const char infer_script[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = --ways ]; then\n"
    "  printf 'way\\t\\tshipped\\t\\t\\tinference only, as shipped\\n'\n"
    "  printf 'way\\t-tuned\\ttuned\\t--tuned\\t\\tinference only, tuned\\n'; exit 0\n"
    "fi\n"
    "t='0.008 nan'; case \"$*\" in *--tuned*) t='0.004 -';; esac\n"
    "echo ready backend=infer-test create_ms=1.5 how=sessions\n"
    "while read cmd k; do [ \"$cmd\" = step ] || exit 0; echo step $t 1024; done\n";

/* Write a stand-in peer script into dir under name, executable: its path (static). */
static const char *write_peer(const char *dir, const char *name, const char *text)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    test_write_file(path, text);
    CU_ASSERT_EQUAL(chmod(path, 0755), 0);
    return path;
}

/* The variables of the families peer_script records that this process inherited (meson
 * test sets MALLOC_PERTURB_, a shell may set OMP_NUM_THREADS), set aside while a bench
 * runs, so that what the stand-in records is what the bench gave each way. */
typedef struct env_aside {
    char *vars[32]; /* "NAME=VALUE", as they were */
    int n;
} env_aside;

static void env_set_aside(env_aside *a)
{
    static const char *const families[] = {"OMP", "OPENBLAS_NUM", "MALLOC", "LD_PRELOAD"};
    a->n = 0;
    for (char **e = environ; *e; e++)
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
            if (strncmp(*e, families[f], strlen(families[f])) == 0 && a->n < 32)
                a->vars[a->n++] = strdup(*e);
    for (int i = 0; i < a->n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a->vars[i], "="), a->vars[i]);
        unsetenv(name);
    }
}

static void env_put_back(env_aside *a)
{
    for (int i = 0; i < a->n; i++) {
        char *eq = strchr(a->vars[i], '=');
        *eq = '\0';
        setenv(a->vars[i], eq + 1, 1);
        free(a->vars[i]);
    }
    a->n = 0;
}

/* Debian's jemalloc, which PyTorch's jemalloc way preloads: that way runs only with it. */
static int have_jemalloc(void)
{
    return access("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", R_OK) == 0;
}

/* An experiment file timing LeNet-5 at batch 4 at `threads`, its [bench] lines from
 * `bench`, its [bench.lenet5] lines from `model`. */
static const char *time_experiment_with(const char *dir, const char *threads,
                                        const char *bench, const char *model)
{
    static char path[700];
    char text[2048];
    snprintf(path, sizeof path, "%s/speed.ini", dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = speed\nmode = time\nresults = %s/results\n"
             "[bench]\nthreads = %s\nwarmup = 1\nmin_reps = 3\nmin_time = 0\n%s"
             "[bench.lenet5]\nmodel = %s/experiments/models/lenet5.ini\nbatch = 4\n%s",
             dir, threads, bench, CNB_SOURCE_ROOT, model);
    test_write_file(path, text);
    return path;
}

static const char *time_experiment(const char *dir, const char *bench)
{
    return time_experiment_with(dir, "1", bench, "");
}

/* An experiment file timing naive and the stand-in peer `text`, written into dir as
 * `name`, at 1 thread, whole network only: its path (static, time_experiment's). */
static const char *naive_and_peer(const char *dir, const char *name, const char *text)
{
    char bench[256];
    write_peer(dir, name, text);
    snprintf(bench, sizeof bench, "backends = naive\nlayers = no\npeer = %s\n", name);
    return time_experiment(dir, bench);
}

/* Run a time experiment file as `cnnbench run` would, with or without --force, with the
 * plugins of `reg`. */
static int bench_file_with(const char *path, int force, cnb_registry *reg)
{
    cnb_conf c;
    const cnb_bench_opts opts = {.force = force, .elsewhere = "another name"};
    int rc = cnb_conf_load(&c, path);
    if (rc == 0)
        rc = cnb_bench_run(&c, reg, &opts);
    cnb_conf_free(&c);
    return rc;
}

static int bench_file_force(const char *path, int force)
{
    return bench_file_with(path, force, test_registry());
}

static int bench_file(const char *path) { return bench_file_force(path, 0); }

/* bench_file without the variables of the families the stand-in peers record, so that
 * what they record is what their ways set. */
static int bench_file_aside(const char *path)
{
    env_aside inherited;
    env_set_aside(&inherited);
    const int rc = bench_file(path);
    env_put_back(&inherited);
    return rc;
}

static void test_whole_run(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    write_peer(dir, "peer.sh", peer_script);
    const char *exp = time_experiment(dir, "backends = naive, openblas\nlayers = yes\n"
                                           "peer = peer.sh\n");
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    /* every way is told the model's section name, every variable as the model's [vars]
     * gives them (LeNet-5's own: sigmoid and average pooling) and the bench's own SGD
     * update; the tuned way the arguments its --ways line gave */
    const char *args = read_file((snprintf(path, sizeof path, "%s/args-shipped", dir), path));
    CHECK_MSG(args, "--model lenet5 --name lenet5 --batch 4 --threads 1 --warmup 1 --lr 0.0001 "
                    "--momentum 0.9 --weight-decay 0.0005 --var act=sigmoid --var pool=avg\n");
    args = read_file((snprintf(path, sizeof path, "%s/args-glibc", dir), path));
    CHECK_MSG(args, "--weight-decay 0.0005 --inference-mode --var act=sigmoid --var pool=avg\n");
    /* the environments: as given for the shipped way, the one its --ways line gave (at
     * the group's thread count) for the tuned one */
    const char *env = read_file((snprintf(path, sizeof path, "%s/env-glibc", dir), path));
    CU_ASSERT_STRING_EQUAL(env, "MALLOC_TOP_PAD_=1073741824\nOMP_NUM_THREADS=1\n");
    env = read_file((snprintf(path, sizeof path, "%s/env-shipped", dir), path));
    CU_ASSERT_STRING_EQUAL(env, "");
    /* a sample is as many steps of each pass as last sample_time (0.03 s), by the fastest
     * of 3 single ones: 6 of the glibc way's 5 ms forward passes, 3 of its 10 ms steps */
    const char *steps = read_file((snprintf(path, sizeof path, "%s/steps-glibc", dir), path));
    CU_ASSERT_EQUAL(strncmp(steps, "1 1\n1 1\n1 1\n6 3\n6 3\n", 20), 0);

    /* bench.csv: forward and training rows of each backend, then each way of the peer
     * with the times it answered every step */
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,naive,4,1,forward,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,naive,4,1,train,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,openblas,4,1,train,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test,4,1,train,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test-tuned-glibc,4,1,train,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test-tuned-jemalloc,"), 0);
    /* every row, its columns by name: at least min_reps repetitions, its median within
     * its IQR; a peer's the times it answered, its memory what it said, how it ran; a
     * backend's memory (test_network_memory works out LeNet-5's at batch 4), with nothing
     * allocated on the heap where this build counts it (but by OpenBLAS's AVX-512 kernels) */
    static const char *const names[] = {"backend", "pass", "reps", "median_ms", "q1_ms",
                                        "q3_ms", "peak_rss_mb", "how", "create_ms",
                                        "steps_per_rep", "activation_bytes", "param_bytes",
                                        "kernel_bytes", "alloc_bytes", "allocs",
                                        "alloc_bytes_max", NULL};
    enum { BACKEND, PASS, REPS, MEDIAN, Q1, Q3, MB, HOW, CREATE, STEPS, ACT, PARAM, KERNEL,
           ALLOC };
    int col[16], rows = 0, reps = 0;
    cnb_csv c;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, names, col), 0);
    while (cnb_csv_next(&c) == 1) {
        double v[9];
        for (int k = REPS; k <= MB; k++)
            v[k] = atof(cnb_csv_get(&c, col[k]));
        const char *backend = cnb_csv_get(&c, col[BACKEND]), *how = cnb_csv_get(&c, col[HOW]);
        const int train = !strcmp(cnb_csv_get(&c, col[PASS]), "train");
        const int peer = !strncmp(backend, "pytorch", 7);
        CU_ASSERT(v[REPS] >= 3);
        reps += (int)v[REPS];
        CU_ASSERT(v[Q1] <= v[MEDIAN] && v[MEDIAN] <= v[Q3]);
        CU_ASSERT(*cnb_csv_get(&c, col[MB])); /* /proc/self/clear_refs: Linux */
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[ACT]), peer ? "" : "480144");
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[PARAM]), peer ? "" : "740688");
        CU_ASSERT(peer ? !*cnb_csv_get(&c, col[KERNEL]) : atof(cnb_csv_get(&c, col[KERNEL])) > 0);
        const int library_allocates = /* OpenBLAS's own: testutil.h */
            !strcmp(backend, "openblas") && test_openblas_allocates() && cnb_heap_counting();
        for (int k = ALLOC; k < ALLOC + 3; k++) {
            if (library_allocates) {
                CU_ASSERT(atof(cnb_csv_get(&c, col[k])) > 0);
            } else {
                CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[k]),
                                       peer || !cnb_heap_counting() ? "" : "0");
            }
        }
        if (!strcmp(backend, "pytorch-test-tuned-glibc")) {
            CU_ASSERT_DOUBLE_EQUAL(v[MEDIAN], train ? 10.0 : 5.0, 1e-9);
            CU_ASSERT_DOUBLE_EQUAL(v[MB], 2.0, 1e-9);
            CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[STEPS]), train ? "3" : "6");
            CU_ASSERT_DOUBLE_EQUAL(atof(cnb_csv_get(&c, col[CREATE])), 2.5, 1e-9);
            CU_ASSERT_STRING_EQUAL(how, "tuned, glibc keeping its memory; OMP_NUM_THREADS=1 "
                                        "MALLOC_TOP_PAD_=1073741824; a \"stand-in\"");
        } else if (!strcmp(backend, "pytorch-test")) {
            CU_ASSERT_DOUBLE_EQUAL(v[MEDIAN], train ? 20.0 : 5.0, 1e-9);
            CU_ASSERT_STRING_EQUAL(how, "as shipped; a \"stand-in\"");
        } else if (strncmp(backend, "pytorch", 7)) {
            CU_ASSERT_STRING_EQUAL(how, "");
        }
        rows++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(rows, 8); /* 2 backends and the peer's 2 ways, 2 passes */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(csv, ",peak_share,peak_rss_mb,activation_bytes,param_bytes,kernel_bytes,"
                    "alloc_bytes,allocs,alloc_bytes_max,how,fused_runs,algorithms,"
                    "peak_mistrusted\n"));

    /* samples.csv: every whole-network sample behind bench.csv's rows, in the order
     * taken: a row's from round 0 on, one a round, each in its place in the round (the
     * probe's among the 4 entries' 5 places) and with the probe of its round; the stand-in
     * peer's the times it answered */
    snprintf(path, sizeof path, "%s/results/speed/samples.csv", dir);
    static const char *const snames[] = {"backend", "pass", "round", "position", "ms",
                                         "probe_gflops", NULL};
    enum { S_BACKEND, S_PASS, S_ROUND, S_POSITION, S_MS, S_PROBE };
    int scol[7], samples = 0, k = 0;
    char last[128] = "";
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, snames, scol), 0);
    while (cnb_csv_next(&c) == 1) {
        char key[128];
        const char *backend = cnb_csv_get(&c, scol[S_BACKEND]);
        const int train = !strcmp(cnb_csv_get(&c, scol[S_PASS]), "train");
        const int position = atoi(cnb_csv_get(&c, scol[S_POSITION]));
        snprintf(key, sizeof key, "%s %d", backend, train);
        k = strcmp(key, last) ? 0 : k + 1; /* the row's k-th sample */
        snprintf(last, sizeof last, "%s", key);
        CU_ASSERT_EQUAL(atoi(cnb_csv_get(&c, scol[S_ROUND])), k);
        CU_ASSERT(position >= 0 && position <= 4);
        CU_ASSERT(atof(cnb_csv_get(&c, scol[S_MS])) > 0);
        CU_ASSERT(atof(cnb_csv_get(&c, scol[S_PROBE])) > 0);
        if (!strcmp(backend, "pytorch-test-tuned-glibc"))
            CU_ASSERT_DOUBLE_EQUAL(atof(cnb_csv_get(&c, scol[S_MS])), train ? 10.0 : 5.0, 1e-9);
        samples++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(samples, reps);

    /* peak.csv: one probe in every round of both passes (at least 3 rounds each) */
    snprintf(path, sizeof path, "%s/results/speed/peak.csv", dir);
    const char *peak = read_file(path);
    CU_ASSERT_EQUAL(count_lines(peak, "threads,isa,probe_ms,probes,max_gflops,median_gflops,"
                                      "min_gflops"), 1);
    int probes = 0, probe_ms = 0;
    double max = NAN, median = NAN, min = NAN;
    CU_ASSERT_EQUAL(sscanf(strchr(peak, '\n') + 1, "1,%*[^,],%d,%d,%lf,%lf,%lf", &probe_ms,
                           &probes, &max, &median, &min), 5);
    CU_ASSERT_EQUAL(probe_ms, 20);
    CU_ASSERT(probes >= 6);
    CU_ASSERT(min > 0 && min <= median && median <= max);

    /* layers.csv: each of LeNet-5's 13 layers forward and backward, per backend */
    snprintf(path, sizeof path, "%s/results/speed/layers.csv", dir);
    const char *layers = read_file(path);
    CU_ASSERT_EQUAL(count_lines(layers, "lenet5,naive,"), 26);
    CU_ASSERT_EQUAL(count_lines(layers, "lenet5,openblas,"), 26);

    /* the report: the peer's rows, how each ran, the way it said it cannot run, the
     * fastest backend against the tuned way, forward and training, a pair from every
     * round */
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    CHECK_MSG(md, "## lenet5 (act=sigmoid pool=avg)\n");
    CHECK_MSG(md, "| pytorch-test | 1 | 4 |");
    CHECK_MSG(md, "| pytorch-test-tuned-glibc | 1 | 4 |");
    CHECK_MSG(md, "\nHow the peers ran:\n\n- pytorch-test, 1 thread: as shipped; a \"stand-in\"\n"
                  "- pytorch-test-tuned-glibc, 1 thread: tuned, glibc keeping its memory; "
                  "OMP_NUM_THREADS=1 MALLOC_TOP_PAD_=1073741824; a \"stand-in\"\n");
    CHECK_MSG(md, "\n\nThe jemalloc way is not run here.\n\n");
    CHECK_MSG(md, "\nForward pass, each peer's fastest tuned way's time over the fastest "
                  "backend's");
    CHECK_MSG(md, "\nTraining step, each peer's fastest tuned way's time over the fastest "
                  "backend's");
    CU_ASSERT_EQUAL(count_lines(md, "- 1 thread: "), 2);
    CU_ASSERT_EQUAL(count_lines(md, "- 1 thread: openblas against pytorch-test-tuned-glibc: ") +
                    count_lines(md, "- 1 thread: naive against pytorch-test-tuned-glibc: "), 2);
    CHECK_MSG(md, "Peak RSS growth: how far the peak resident memory of a process of its own rose");
    CHECK_MSG(md, "| pytorch-test-tuned-glibc | 1 | 4 | – | – | – | – | – | 2.0 |");
    CHECK_MSG(md, cnb_heap_counting() ? "| naive | 1 | 4 | 0.46 | 0.71 | " : "| naive | 1 | 4 |");
    CHECK_MSG(md, cnb_heap_counting() ? " | 0 | 0 | " : " | not counted | not counted | ");
    CHECK_MSG(md, "Kernels against their library calls alone");
    CHECK_MSG(md, "| openblas | every layer | both |");
    CHECK_MSG(md, "Measured FP32 peak: the maximum of short FMA probes");
    CHECK_MSG(md, "1 thread: ");
    CHECK_MSG(md, "probes sized to 20 ms");
    const char *files[] = {"meta.ini", "peak.csv", "throughput-lenet5.png",
                           "layers-lenet5-t1.gp"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/results/speed/%s", dir, files[i]);
        CU_ASSERT_EQUAL(stat(path, &st), 0);
    }
}

/* A backend that fuses runs beside the same spec with ":nofuse": bench.csv names the runs
 * of each, layers.csv puts a run's time on its first layer (its FLOPs those of the run)
 * and leaves the others' measurements empty, naming the run on all of them; the report
 * says "fused" where it applies. */
static void test_fused_runs(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    const char *exp = time_experiment_with(dir, "1", "backends = direct, direct:nofuse\n"
                                           "layers = yes\n", "vars = act=relu pool=max\n");
    CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    static const char *const names[] = {"backend", "fused_runs", NULL};
    int col[2], rows = 0;
    cnb_csv c;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, names, col), 0);
    /* with AVX-512 direct also takes fc1 and fc2, and fuses them with their ReLUs */
    const int fc = test_direct_avx512();
    const char *runs = fc ? "conv1+act1+pool1 conv2+act2+pool2 fc1+act3 fc2+act4"
                          : "conv1+act1+pool1 conv2+act2+pool2";
    while (cnb_csv_next(&c) == 1) {
        const int fused = !strcmp(cnb_csv_get(&c, col[0]), "direct");
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[1]), fused ? runs : "");
        rows++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(rows, 4);

    snprintf(path, sizeof path, "%s/results/speed/layers.csv", dir);
    static const char *const lnames[] = {"backend", "layer", "reps", "median_ms", "gflops",
                                         "fused_run", NULL};
    enum { BACKEND, LAYER, REPS, MEDIAN, GFLOPS, RUN };
    int lcol[6], first = 0, into = 0;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, lnames, lcol), 0);
    /* each layer of a run: its run; the first layer first */
    static const char *const in_run[][3] = {
        {"conv1", "conv1+act1+pool1", "1"}, {"act1", "conv1+act1+pool1", ""},
        {"pool1", "conv1+act1+pool1", ""},  {"conv2", "conv2+act2+pool2", "1"},
        {"act2", "conv2+act2+pool2", ""},   {"pool2", "conv2+act2+pool2", ""},
        {"fc1", "fc1+act3", "1"},           {"act3", "fc1+act3", ""},
        {"fc2", "fc2+act4", "1"},           {"act4", "fc2+act4", ""},
    };
    while (cnb_csv_next(&c) == 1) {
        const char *layer = cnb_csv_get(&c, lcol[LAYER]), *run = cnb_csv_get(&c, lcol[RUN]);
        int r = 0, n_runs = fc ? 10 : 6;
        while (r < n_runs && strcmp(in_run[r][0], layer))
            r++;
        if (strcmp(cnb_csv_get(&c, lcol[BACKEND]), "direct") || r == n_runs) {
            CU_ASSERT_STRING_EQUAL(run, "");
            const char *ms = cnb_csv_get(&c, lcol[MEDIAN]);
            CU_ASSERT(strcmp(layer, "flatten") ? atof(ms) > 0.0 : !*ms); /* a view: no time */
            continue;
        }
        CU_ASSERT_STRING_EQUAL(run, in_run[r][1]);
        if (in_run[r][2][0]) {
            first++;
            CU_ASSERT(atof(cnb_csv_get(&c, lcol[MEDIAN])) > 0.0);
            CU_ASSERT(atof(cnb_csv_get(&c, lcol[GFLOPS])) > 0.0);
        } else {
            into++;
            CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, lcol[REPS]), "");
            CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, lcol[MEDIAN]), "");
        }
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(first, fc ? 8 : 4); /* conv1 and conv2 (fc1, fc2), forward and backward */
    CU_ASSERT_EQUAL(into, fc ? 12 : 8);

    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    char line[128];
    snprintf(line, sizeof line, "- direct: %s\n", runs);
    CHECK_MSG(md, line);
    CHECK_MSG(md, "(fused: conv1+act1+pool1) |");
    CHECK_MSG(md, "| act1 | act.relu | fused into conv1 | fused | – |");
    CHECK_MSG(md, "| pool2 | pool.max | fused into conv2 | fused | – |");
}

/* A backend whose kernels allocate in forward (fixture.memory, tests/fixtures/
 * broken_kernels.c: 5000 bytes a call, here in LeNet-5's three fc layers) shows it in both
 * passes' rows, 15000 bytes in 3 calls a repetition, where this build counts the heap; a
 * backend of ABI 2.2 (fixture-v22, its ReLU kernels) cannot say what its kernels hold:
 * empty in bench.csv, unknown in the report. */
static void test_memory_columns(void)
{
    const char *dir = test_tmpdir();
    char path[600], err[1024] = "";
    cnb_registry reg;
    cnb_registry_init(&reg);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&reg, CNB_FIXTURE_DIR "/fixture-memory.so", err,
                                           sizeof err), 0);
    CU_ASSERT_EQUAL(cnb_registry_load_file(&reg, CNB_FIXTURE_DIR "/fixture-backend-2.2.so",
                                           err, sizeof err), 0);
    cnb_registry_scan_default(&reg);
    const char *exp = time_experiment_with(dir, "1", "backends = fixture.memory, fixture-v22\n"
                                           "layers = no\n", "vars = act=relu pool=max\n");
    CU_ASSERT_EQUAL_FATAL(bench_file_with(exp, 0, &reg), 0);
    cnb_registry_free(&reg);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    static const char *const names[] = {"backend", "kernel_bytes", "alloc_bytes", "allocs",
                                        "alloc_bytes_max", NULL};
    int col[5], rows = 0;
    const int counting = cnb_heap_counting();
    cnb_csv c;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, names, col), 0);
    while (cnb_csv_next(&c) == 1) {
        const int hungry = !strcmp(cnb_csv_get(&c, col[0]), "fixture.memory");
        CU_ASSERT_EQUAL(*cnb_csv_get(&c, col[1]) != '\0', hungry);
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[2]), !counting ? "" : hungry ? "15000" : "0");
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[3]), !counting ? "" : hungry ? "3" : "0");
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[4]), !counting ? "" : hungry ? "15000" : "0");
        rows++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(rows, 4);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    CHECK_MSG(md, "| 0.71 | unknown | ");
    if (counting)
        CHECK_MSG(md, " | 14.6 KiB in 3 calls | 14.6 KiB in 3 calls | ");
}

/* results/speed/FILE of the run in dir, open with the columns names at col. */
static void open_results_csv(cnb_csv *c, const char *dir, const char *file,
                             const char *const *names, int *col)
{
    char path[700];
    snprintf(path, sizeof path, "%s/results/speed/%s", dir, file);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(c, names, col), 0);
}

/* Each backend network's peak resident memory is measured in a process of its own
 * (`cnnbench summary --backend`, whose output the bench reads): after a forward pass and a
 * training step it holds at least the network's tensors, and a network timed after
 * others (a second model section, the same LeNet-5) gets what the first did. Measured in
 * the bench's own process, the second rose by almost nothing, reusing what the first had
 * left resident. */
static void test_peak_memory(void)
{
    const char *dir = test_tmpdir();
    char path[700], text[2048], cmd[2048];
    snprintf(path, sizeof path, "%s/speed.ini", dir);
    snprintf(text, sizeof text,
             "[experiment]\nname = speed\nmode = time\nresults = %s/results\n[bench]\n"
             "backends = naive, openblas\nthreads = 1\nwarmup = 1\nmin_reps = 3\n"
             "min_time = 0\nlayers = no\n[bench.first]\nmodel = %s/experiments/models/"
             "lenet5.ini\nbatch = 128\n[bench.again]\nmodel = %s/experiments/models/"
             "lenet5.ini\nbatch = 128\n", dir, CNB_SOURCE_ROOT, CNB_SOURCE_ROOT);
    test_write_file(path, text);
    CU_ASSERT_EQUAL_FATAL(bench_file(path), 0);
    static const char *const names[] = {"model", "backend", "peak_rss_mb", "activation_bytes",
                                        "param_bytes", NULL};
    int col[5], rows = 0;
    double first[2] = {0, 0};
    cnb_csv c;
    open_results_csv(&c, dir, "bench.csv", names, col);
    while (cnb_csv_next(&c) == 1) {
        const int again = !strcmp(cnb_csv_get(&c, col[0]), "again");
        const int b = !strcmp(cnb_csv_get(&c, col[1]), "openblas");
        const double mib = atof(cnb_csv_get(&c, col[2])), tensors =
            (atof(cnb_csv_get(&c, col[3])) + atof(cnb_csv_get(&c, col[4]))) / 1048576.0;
        CU_ASSERT(tensors > 3.5); /* LeNet-5 at batch 128: 3.9 MiB and 0.7 */
        CU_ASSERT(mib >= 0.95 * tensors && mib < tensors + 256);
        if (!again)
            first[b] = mib;
        else
            CU_ASSERT(fabs(mib - first[b]) <= 0.1 * first[b] + 1.0);
        rows++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(rows, 8);

    /* the command itself: what the network holds and the line the bench reads */
    snprintf(path, sizeof path, "%s/summary.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' summary '%s/experiments/models/lenet5.ini' "
             "--backend openblas --threads 1 --batch 128 --set act=relu >'%s' 2>&1",
             CNB_BUILD_ROOT, CNB_SOURCE_ROOT, path);
    CU_ASSERT_EQUAL(system(cmd), 0);
    const char *out = read_file(path);
    CHECK_MSG(out, "conv1");
    CHECK_MSG(out, "memory on openblas, 1 thread, batch 128, after a forward pass and a "
                   "training step:\n  activations:");
    double mib = 0;
    const char *peak = strstr(out, "\n  peak resident memory: ");
    CU_ASSERT(peak && sscanf(peak, "\n  peak resident memory: %lf MiB", &mib) == 1);
    CU_ASSERT(fabs(mib - first[1]) <= 0.1 * first[1] + 1.0);
    snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' summary '%s/experiments/models/lenet5.ini' "
             "--batch 128 >'%s' 2>&1", CNB_BUILD_ROOT, CNB_SOURCE_ROOT, path);
    const int status = system(cmd);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    CHECK_MSG(read_file(path), "summary: --batch goes with --backend NAME");
}

/* Two peers, one that only infers: its rows are forward passes alone (no training row in
 * bench.csv, the training cells of the report empty), both say how they ran, and the
 * fastest backend is paired with each peer's tuned way in the forward pass, with the
 * training peer's alone in the training step. */
/* A group at 1 thread on a machine of more CPUs runs pinned to the first CPU the bench
 * may use, and the peers' processes it starts with it; `pin = no` leaves them the bench's
 * whole set. */
static void test_pinned_group(void)
{
    cpu_set_t mine;
    CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof mine, &mine), 0);
    if (CPU_COUNT(&mine) < 2) {
        fprintf(stderr, "\n  (one CPU here: nothing to pin, test skipped)\n");
        return;
    }
    int first = 0;
    while (!CPU_ISSET(first, &mine))
        first++;
    const char *dir = test_tmpdir();
    char path[600], want[32];
    const char *exp = naive_and_peer(dir, "peer.sh", peer_script);
    snprintf(path, sizeof path, "%s/cpus-shipped", dir);
    snprintf(want, sizeof want, "%d\n", first);
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    CU_ASSERT_STRING_EQUAL(read_file(path), want);
    cpu_set_t after;
    CU_ASSERT_EQUAL(sched_getaffinity(0, sizeof after, &after), 0);
    CU_ASSERT(CPU_EQUAL(&after, &mine)); /* given back */

    exp = time_experiment(dir, "backends = naive\nlayers = no\npeer = peer.sh\npin = no\n");
    CU_ASSERT_EQUAL_FATAL(bench_file_force(exp, 1), 0);
    CU_ASSERT_STRING_NOT_EQUAL(read_file(path), want);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    CHECK_MSG(read_file(path), "No group was pinned to CPUs (`pin = no`).");
}

/* A model's own sample_time overrides [bench]'s for it, backends and tuned peers alike;
 * shipped_sample_time is that of the peers' ways as shipped; the report says both. */
static void test_model_sample_time(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    write_peer(dir, "peer.sh", peer_script);
    const char *exp = time_experiment_with(dir, "1", "backends = naive\nlayers = no\n"
                                           "peer = peer.sh\nsample_time = 0.03\n"
                                           "shipped_sample_time = 0.12\n",
                                           "sample_time = 0.06\n");
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    /* the glibc way's 5 ms forward passes and 10 ms steps: 12 and 6 to last 0.06 s */
    const char *steps = read_file((snprintf(path, sizeof path, "%s/steps-glibc", dir), path));
    CU_ASSERT_EQUAL(strncmp(steps, "1 1\n1 1\n1 1\n12 6\n12 6\n", 22), 0);
    /* the shipped way's 5 and 20 ms: 24 and 6 to last 0.12 s */
    steps = read_file((snprintf(path, sizeof path, "%s/steps-shipped", dir), path));
    CU_ASSERT_EQUAL(strncmp(steps, "1 1\n1 1\n1 1\n24 6\n24 6\n", 22), 0);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    CHECK_MSG(read_file(path), "back to back for 30 ms; lenet5: 60 ms; a peer's way as "
              "shipped: 120 ms (shipped_sample_time), then training steps");
    /* and each is checked like [bench]'s sample_time */
    exp = time_experiment_with(dir, "1", "backends = naive\n", "sample_time = -1\n");
    CU_ASSERT_EQUAL(bench_file_force(exp, 1), CNB_EINVAL);
    exp = time_experiment(dir, "backends = naive\nshipped_sample_time = 61\n");
    CU_ASSERT_EQUAL(bench_file_force(exp, 1), CNB_EINVAL);
}

/* A stand-in peer of three ways whose samples are all half as slow again in odd rounds,
 * as a machine running slow would make them: 5 and 10 ms, 7.5 and 15 (the 3 calls before
 * round 0 calibrate). */
static const char drift_script[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = --ways ]; then\n"
    "  printf 'way\\t\\tshipped\\t\\t\\tas shipped\\n'\n"
    "  printf 'way\\t-b\\tshipped\\t--b\\t\\ta second\\n'\n"
    "  printf 'way\\t-c\\tshipped\\t--c\\t\\ta third\\n'; exit 0\n"
    "fi\n"
    "echo ready backend=drift\nn=0\n"
    "while read cmd nf nt; do [ \"$cmd\" = step ] || exit 0; n=$((n + 1))\n"
    "  if [ $n -gt 3 ] && [ $(((n - 4) % 2)) -eq 1 ]; then echo step 0.0075 0.015 1024\n"
    "  else echo step 0.005 0.010 1024; fi; done\n";

/* A machine factor is the median of the `near` samples of other entries taken nearest in
 * time: 4 entries taking turns at t = 0..11, all of them half as slow again from t = 4 to
 * 7. Inside the spell a sample's nearest are slow (t = 5: 4, 6, 3 and 7, the one at 3 fast:
 * 1.5); at its edge half are (t = 4: 3 and 5, then 2 and 6: 1.25); with 3 entries, none
 * has 3 others: 1. */
static void test_machine_factors(void)
{
    int ent[12];
    double t[12], rel[12], factor[12];
    for (int j = 0; j < 12; j++)
        ent[j] = j % 4, t[j] = j, rel[j] = j >= 4 && j <= 7 ? 1.5 : 1.0;
    CU_ASSERT_EQUAL_FATAL(cnb_machine_factors(ent, t, rel, 12, 4, factor), 0);
    CU_ASSERT_DOUBLE_EQUAL(factor[5], 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(factor[6], 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(factor[4], 1.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(factor[0], 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(factor[11], 1.0, 1e-12);
    /* the nearest 1 of t = 5 is t = 4 or 6, both slow; of t = 8, t = 7 before t = 9 */
    CU_ASSERT_EQUAL_FATAL(cnb_machine_factors(ent, t, rel, 12, 1, factor), 0);
    CU_ASSERT_DOUBLE_EQUAL(factor[5], 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(factor[8], 1.5, 1e-12);
    for (int j = 0; j < 12; j++)
        ent[j] = j % 3;
    CU_ASSERT_EQUAL_FATAL(cnb_machine_factors(ent, t, rel, 12, 4, factor), 0);
    for (int j = 0; j < 12; j++)
        CU_ASSERT_DOUBLE_EQUAL(factor[j], 1.0, 1e-12);
}

/* "BACKEND,PASS" of the current line, col[0] and col[1] its backend and pass columns. */
static void row_key(const cnb_csv *c, const int *col, char *key, size_t len)
{
    snprintf(key, len, "%s,%s", cnb_csv_get(c, col[0]), cnb_csv_get(c, col[1]));
}

/* In a run, every sample's machine factor and the time its turn began are in samples.csv,
 * and each row's own CV in bench.csv is the CV of its samples over their factors, which
 * alone decides "unstable"; the report shows both CVs. Beside naive, three ways of a peer
 * all half as slow again in odd rounds. */
static void test_machine_factor(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    const char *exp = naive_and_peer(dir, "drift.sh", drift_script);
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    /* samples.csv: per row (8: naive and three ways, 2 passes), its own CV worked out */
    static const char *const snames[] = {"backend", "pass", "at_s", "ms", "machine_factor", NULL};
    int scol[5], n_rows = 0;
    struct { char key[96]; double own[64]; int n; double last_at; } rows[8];
    cnb_csv c;
    open_results_csv(&c, dir, "samples.csv", snames, scol);
    while (cnb_csv_next(&c) == 1) {
        char key[96];
        row_key(&c, scol, key, sizeof key);
        int k = 0;
        while (k < n_rows && strcmp(rows[k].key, key))
            k++;
        CU_ASSERT_FATAL(k < 8);
        if (k == n_rows) {
            snprintf(rows[n_rows].key, sizeof rows[0].key, "%s", key);
            rows[n_rows].n = 0, rows[n_rows++].last_at = -1;
        }
        const double at = atof(cnb_csv_get(&c, scol[2])), factor = atof(cnb_csv_get(&c, scol[4]));
        CU_ASSERT(at > rows[k].last_at); /* in the order taken */
        CU_ASSERT(factor > 0);
        CU_ASSERT_FATAL(rows[k].n < 64);
        rows[k].own[rows[k].n++] = atof(cnb_csv_get(&c, scol[3])) / factor;
        rows[k].last_at = at;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(n_rows, 8);
    /* bench.csv: cv_own as worked out, to its 4 decimals; unstable from it alone */
    static const char *const names[] = {"backend", "pass", "cv", "cv_own", "unstable", NULL};
    int col[5], seen = 0;
    open_results_csv(&c, dir, "bench.csv", names, col);
    while (cnb_csv_next(&c) == 1) {
        char key[96];
        row_key(&c, col, key, sizeof key);
        for (int k = 0; k < n_rows; k++) {
            if (strcmp(rows[k].key, key))
                continue;
            cnb_sample_stats st;
            cnb_sample_summarize(rows[k].own, rows[k].n, &st);
            const double own = atof(cnb_csv_get(&c, col[3]));
            CU_ASSERT_DOUBLE_EQUAL(own, st.cv, 1e-4);
            CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[4]), own >= 0.10 ? "1" : "0");
            if (strncmp(key, "naive", 5)) /* 5, 7.5, 5 ms: a CV of 25% */
                CU_ASSERT(atof(cnb_csv_get(&c, col[2])) >= 0.10);
            seen++;
        }
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(seen, 8);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    CHECK_MSG(read_file(path), "| drift-b | 1 | 4 |");
    CHECK_MSG(read_file(path), "| CV (own) |");
}

/* A child of this process spinning on the given CPU until it is killed: its pid. */
static pid_t spinner(int cpu)
{
    pid_t pid = fork();
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        sched_setaffinity(0, sizeof one, &one);
        for (volatile unsigned long n = 0;; n++)
            ;
    }
    return pid;
}

/* A process's counts: its page faults grow by a page's each for memory it touches first,
 * its threads' involuntary switches when another process shares its only CPU; a process
 * that is gone has none. */
static void test_proc_counts(void)
{
    cnb_proc_counts c0, c1;
    CU_ASSERT_EQUAL_FATAL(cnb_proc_counts_read(getpid(), &c0), 0);
    const size_t len = 8u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    madvise(mem, len, MADV_NOHUGEPAGE); /* a fault a page, whatever the machine's THP */
    for (size_t k = 0; k < len; k += page)
        mem[k] = 1;
    CU_ASSERT_EQUAL(cnb_proc_counts_read(getpid(), &c1), 0);
    munmap(mem, len);
    CU_ASSERT(c1.faults - c0.faults >= (double)(len / page));
    CU_ASSERT(c1.switches >= c0.switches);

    cpu_set_t mine;
    CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof mine, &mine), 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &mine))
        cpu++;
    const pid_t a = spinner(cpu), b = spinner(cpu);
    CU_ASSERT_FATAL(a > 0 && b > 0);
    usleep(300000);
    CU_ASSERT_EQUAL(cnb_proc_counts_read(a, &c0), 0);
    CU_ASSERT(c0.switches > 0); /* a and b took the one CPU from each other */
    kill(a, SIGKILL), kill(b, SIGKILL);
    waitpid(a, NULL, 0), waitpid(b, NULL, 0);
    CU_ASSERT_EQUAL(cnb_proc_counts_read(a, &c1), -1);
    CU_ASSERT(isnan(c1.switches) && isnan(c1.faults));
}

/* A stand-in peer of three ways, two steady and one twice as slow in round 1 (its 5th
 * call: 3 calibrate), where it also grows a string of 16 MiB in its own process. */
static const char flaky_script[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = --ways ]; then\n"
    "  printf 'way\\t\\tshipped\\t\\t\\tsteady\\n'\n"
    "  printf 'way\\t-b\\tshipped\\t--b\\t\\tsteady too\\n'\n"
    "  printf 'way\\t-c\\tshipped\\t--c\\t\\tslow once\\n'; exit 0\n"
    "fi\n"
    "case \"$*\" in *--c*) c=1;; *) c=0;; esac\n"
    "echo ready backend=flaky\nn=0\n"
    "while read cmd nf nt; do [ \"$cmd\" = step ] || exit 0; n=$((n + 1))\n"
    "  if [ $c = 1 ] && [ $n = 5 ]; then x=0123456789abcdef; i=0\n"
    "    while [ $i -lt 20 ]; do x=$x$x; i=$((i + 1)); done; x=\n"
    "    echo step 0.010 0.020 1024\n"
    "  else echo step 0.005 0.010 1024; fi; done\n";

/* Every turn's involuntary switches and page faults are in samples.csv, the ones of the
 * process that ran it; the report names each unstable row's slowest sample with them. */
static void test_turn_counts(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    const char *exp = naive_and_peer(dir, "flaky.sh", flaky_script);
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    static const char *const snames[] = {"backend", "pass", "round", "turn_switches",
                                         "turn_faults", NULL};
    int scol[5], n = 0;
    double faults[3] = {0};
    cnb_csv c;
    open_results_csv(&c, dir, "samples.csv", snames, scol);
    while (cnb_csv_next(&c) == 1) {
        for (int k = 3; k < 5; k++) /* every turn's known: a count, never empty */
            CU_ASSERT(cnb_csv_get(&c, scol[k])[0] && atof(cnb_csv_get(&c, scol[k])) >= 0);
        const int round = atoi(cnb_csv_get(&c, scol[2]));
        if (!strcmp(cnb_csv_get(&c, scol[0]), "flaky-c") &&
            !strcmp(cnb_csv_get(&c, scol[1]), "train") && round < 3)
            faults[round] = atof(cnb_csv_get(&c, scol[4])), n++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(n, 3);
    /* 16 MiB: 4,096 pages, or 8 huge pages where the machine maps them */
    CU_ASSERT(faults[1] >= fmax(faults[0], faults[2]) + 8);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *report = read_file(path);
    CHECK_MSG(report, "Unstable rows, each its slowest sample (samples.csv):");
    CHECK_MSG(report, "- flaky-c, 1 thread, training: round 1, 2.00× the row's median");
    CHECK_MSG(report, "page faults, the row's median turn");
    CU_ASSERT_PTR_NULL(strstr(report, "- flaky, 1 thread, ")); /* steady: not named */
}

static void test_two_peers(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    write_peer(dir, "peer.sh", peer_script);
    write_peer(dir, "infer.sh", infer_script);
    const char *exp = time_experiment(dir, "backends = naive\nlayers = no\n"
                                           "peer = peer.sh , infer.sh\n");
    CU_ASSERT_EQUAL_FATAL(bench_file_aside(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test,4,1,"), 2);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test-tuned-glibc,4,1,"), 2);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,infer-test,4,1,forward,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,infer-test-tuned,4,1,forward,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,infer-test,4,1,train,"), 0);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,infer-test-tuned,4,1,train,"), 0);
    static const char *const names[] = {"backend", "median_ms", "how", NULL};
    int col[3], rows = 0;
    cnb_csv c;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, names, col), 0);
    while (cnb_csv_next(&c) == 1) {
        const char *backend = cnb_csv_get(&c, col[0]);
        if (strncmp(backend, "infer-test", 10))
            continue;
        const int tuned = !strcmp(backend, "infer-test-tuned");
        CU_ASSERT_DOUBLE_EQUAL(atof(cnb_csv_get(&c, col[1])), tuned ? 4.0 : 8.0, 1e-9);
        CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[2]), tuned ? "inference only, tuned; sessions"
                                                              : "inference only, as shipped; "
                                                                "sessions");
        rows++;
    }
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(rows, 2);

    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    /* 4 images in 4 ms; created in 1.5 ms; 1024 KiB in the memory table */
    CHECK_MSG(md, "\n| infer-test-tuned | 1 | 4 | 1000.0 | – | – | – | – | 1.5 | – | – |\n");
    CHECK_MSG(md, "\n| infer-test-tuned | 1 | 4 | – | – | – | – | – | 1.0 |\n");
    CHECK_MSG(md, "\n| infer-test | 1 | 4 | 500.0 | – | – |");
    CHECK_MSG(md, "- pytorch-test-tuned-glibc, 1 thread: tuned, glibc keeping its memory; ");
    CHECK_MSG(md, "- infer-test, 1 thread: inference only, as shipped; sessions\n"
                  "- infer-test-tuned, 1 thread: inference only, tuned; sessions\n");
    const char *fwd = strstr(md, "\nForward pass, "), *train = strstr(md, "\nTraining step, ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fwd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(train);
    CU_ASSERT(fwd < train);
    const char *pt = strstr(fwd, "- 1 thread: naive against pytorch-test-tuned-glibc: ");
    const char *it = strstr(fwd, "- 1 thread: naive against infer-test-tuned: ");
    CU_ASSERT(pt && pt < train && it && it < train);
    CU_ASSERT_PTR_NOT_NULL(strstr(train, "- 1 thread: naive against pytorch-test-tuned-glibc: "));
    CU_ASSERT_PTR_NULL(strstr(train, "against infer-test"));
    double ratio = 0;
    int pairs = 0;
    CU_ASSERT_EQUAL(sscanf(it, "- 1 thread: naive against infer-test-tuned: %lf× (IQR %*f–%*f, "
                           "%d pairs)", &ratio, &pairs), 2);
    CU_ASSERT(ratio > 0 && pairs >= 3);
    /* the throughput plot has the forward bar of the peer that only infers */
    snprintf(path, sizeof path, "%s/results/speed/throughput-lenet5.dat", dir);
    CHECK_MSG(read_file(path), "\"infer-test-tuned 1T\" 1000.00 1000.00 1000.00 NaN NaN NaN\n");
}

/* A peer that cannot run here is skipped, the report saying why: its --ways exits 3 with
 * or without a reason, its interpreter is missing (exit 127), or it refuses when run. */
static void test_missing_peer(void)
{
    static const char *const scripts[][2] = {
        {"#!/bin/sh\nexit 3\n", /* the real script without its framework, before `skip` */
         "peer.sh rows skipped: it says its framework is absent (exit 3)."},
        {"#!/bin/sh\necho 'skip Foo is not installed (bash scripts/peers.sh installs it)'\n"
         "exit 3\n", "peer.sh rows skipped: Foo is not installed (bash scripts/peers.sh "
                     "installs it)."},
        {"#!/usr/bin/env cnnbench-no-such-interpreter\n", "peer.sh rows skipped: its "
         "interpreter (#!/usr/bin/env cnnbench-no-such-interpreter) could not be run (exit "
         "127); `bash scripts/peers.sh` installs the optional peers."},
        {"#!/bin/sh\n[ \"$1\" = --ways ] && { printf 'way\\t\\tshipped\\t\\t\\tone\\n'; exit 0; }\n"
         "echo skip Bar is missing; exit 3\n", "peer.sh rows skipped: Bar is missing."},
    };
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        const char *dir = test_tmpdir();
        char path[600];
        const char *exp = naive_and_peer(dir, "peer.sh", scripts[i][0]);
        CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
        snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
        const char *md = read_file(path);
        CHECK_MSG(md, scripts[i][1]);
        CU_ASSERT_PTR_NULL(strstr(md, "How the peers ran"));
        CU_ASSERT_PTR_NULL(strstr(md, "failed"));
    }
}

/* The real scripts/onnxruntime-peer.mjs where its package is not installed beside it (a
 * copy in a folder of its own): skipped, the report saying how to install it; where node
 * itself is missing, its interpreter is said instead, with the same command. */
static void test_onnxruntime_absent(void)
{
    const char *dir = test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/scripts/onnxruntime-peer.mjs", CNB_SOURCE_ROOT);
    write_peer(dir, "onnxruntime-peer.mjs", read_file(path));
    const char *exp = time_experiment(dir, "backends = naive\nlayers = no\n"
                                           "peer = onnxruntime-peer.mjs\n");
    CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    CHECK_MSG(md, "onnxruntime-peer.mjs rows skipped: ");
    CHECK_MSG(md, "`bash scripts/peers.sh` installs");
    if (system("node --version >/dev/null 2>&1") == 0)
        CHECK_MSG(md, "rows skipped: ONNX Runtime (the npm package onnxruntime-node) is not "
                      "installed in scripts/peers/node_modules (`bash scripts/peers.sh` installs "
                      "it: npm ci --onnxruntime-node-install=skip in scripts/peers/).");
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    CU_ASSERT_EQUAL(count_lines(read_file(path), "lenet5,onnxruntime"), 0);
}

/* The ways a stand-in says, then something breaking the protocol. */
#define ONE_WAY "[ \"$1\" = --ways ] && { printf 'way\\t\\tshipped\\t\\t\\tone\\n'; exit 0; }\n"
/* A stand-in's lines that leave its pid in peer.pid beside it, whole when there. */
#define WRITES_PID \
    "echo $$ > \"$(dirname \"$0\")/peer.tmp\"\n" \
    "mv \"$(dirname \"$0\")/peer.tmp\" \"$(dirname \"$0\")/peer.pid\"\n"

/* The pid a WRITES_PID stand-in left in pidfile, waiting up to a minute for it; 0: none. */
static long peer_pid(const char *pidfile)
{
    long pid = 0;
    for (int i = 0; i < 60000 && pid <= 0; i++) {
        FILE *f = fopen(pidfile, "r");
        if (!f || fscanf(f, "%ld", &pid) != 1)
            pid = 0, usleep(1000);
        if (f)
            fclose(f);
    }
    return pid;
}

/* A peer that fails or breaks the protocol, in its ways, before it is ready or at a step:
 * its rows are left out, the report says when, its command and the end of its standard
 * error, or quotes what it said; the bench's own rows are kept. */
static void test_peer_contract(void)
{
    static const char *const scripts[][2] = {
        {"#!/bin/sh\necho 'way shipped'\n", "its --ways line is not `way<TAB>SUFFIX<TAB>"
         "shipped|tuned<TAB>ARGS<TAB>ENV<TAB>WHAT` nor `not-run<TAB>SUFFIX<TAB>WHY` but "
         "`way shipped`"},
        {"#!/bin/sh\nprintf 'way\\t\\ttuned\\t\\tOMP THREADS=2\\tone\\n'\n", "but `way"},
        {"#!/bin/sh\nexit 0\n", "--ways listed no way to run"},
        {"#!/bin/sh\necho no ways today >&2\nexit 2\n", "peer.sh failed (status 2) when asked "
         "for its ways; its command was `" /* the folder */},
        {"#!/bin/sh\necho no ways today >&2\nexit 2\n", "/peer.sh --ways --threads 1`; its "
         "standard error ended `no ways today`; its rows are missing."},
        {"#!/bin/sh\n" ONE_WAY "echo Traceback >&2\necho 'ValueError: no net' >&2\nexit 2\n",
         "/peer.sh --model lenet5 --name lenet5 --batch 4 --threads 1 --warmup 1 --lr 0.0001 "
         "--momentum 0.9 --weight-decay 0.0005 --var act=sigmoid --var pool=avg`; its standard "
         "error ended `Traceback|ValueError: no net`; its rows are missing."},
        {"#!/bin/sh\n" ONE_WAY "echo model,backend\nsleep 1\n",
         "its first line is not `ready ...` but `model,backend`"},
        {"#!/bin/sh\n" ONE_WAY "echo ready backend=pytorch-test\nread cmd\necho 12 ms\n"
         "echo said 12 ms >&2\n", "`; its standard error ended `said 12 ms`; its rows are missing."},
        {"#!/bin/sh\n" ONE_WAY "echo ready backend=pytorch-test\nread cmd\n"
         "echo step -0.001 0.002 1\n", "its answer to `step` was `step -0.001 0.002 1`"},
        {"#!/bin/sh\n" ONE_WAY "echo ready backend=pytorch-test\nread cmd\nkill -9 $$\n",
         "its answer to `step` was `nothing` (it was killed by signal 9, Killed); its command"},
        {"#!/bin/sh\n" ONE_WAY "echo ready backend=pytorch-test\nt=nan\n"
         "while read cmd k; do echo step 0.001 $t 1; t=0.002; done\n",
         "its answer to `step` was `step 0.001 0.002 1`"}, /* training time comes and goes */
    };
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        const char *dir = test_tmpdir();
        char path[600];
        const char *exp = naive_and_peer(dir, "peer.sh", scripts[i][0]);
        CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
        snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
        CHECK_MSG(read_file(path), scripts[i][1]);
        snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
        const char *csv = read_file(path);
        CU_ASSERT_EQUAL(count_lines(csv, "lenet5,naive,4,1,train,"), 1);
        CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test"), 0);
    }
}

/* A bench killed in the middle (Ctrl-C, a job's time limit) takes its peers with it: one
 * stopped between its steps, or waiting on a step as this stand-in is, would outlive it,
 * holding its memory. */
static void test_peer_dies_with_bench(void)
{
    const char *dir = test_tmpdir();
    char pidfile[600], cmd[700];
    snprintf(pidfile, sizeof pidfile, "%s/peer.pid", dir);
    write_peer(dir, "peer.sh", "#!/bin/sh\n" ONE_WAY WRITES_PID
               "echo ready backend=pytorch-test\nread cmd k\nexec sleep 600\n");
    const char *exp = time_experiment(dir, "backends = naive\nlayers = no\npeer = peer.sh\n");
    snprintf(cmd, sizeof cmd, "%s/core/cnnbench", CNB_BUILD_ROOT);
    pid_t bench = fork();
    CU_ASSERT_FATAL(bench >= 0);
    if (bench == 0) {
        if (!freopen("/dev/null", "w", stdout))
            cnb_child_exit(126);
        execl(cmd, cmd, "run", exp, "-q", (char *)NULL);
        cnb_child_exit(127);
    }
    const long peer = peer_pid(pidfile);
    CU_ASSERT_FATAL(peer > 0);
    kill(bench, SIGKILL);
    waitpid(bench, NULL, 0);
    int gone = 0;
    for (int i = 0; i < 10000 && !gone; i++) { /* up to 10 s for the kernel and init */
        gone = kill((pid_t)peer, 0) != 0;
        usleep(1000);
    }
    CU_ASSERT(gone);
    if (!gone)
        kill((pid_t)peer, SIGKILL);
}

/* /proc/PID/stat's state letter of a process ('T': stopped), or 0. */
static char process_state(long pid)
{
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f && fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
        state = 0;
    if (f)
        fclose(f);
    return state;
}

/* A bench run as a shell's job that outlives the shell (`cnnbench run ... &`, then exit;
 * nohup): its process group is then orphaned, and the kernel hangs up (SIGHUP) every
 * process of an orphaned group that has a stopped one, as a peer parked between its
 * steps is. Each peer runs in a process group of its own, so the run ends with the
 * peer's rows. Here a process starts the bench as a job (a group of its own) and exits
 * while the peer is stopped: naive's samples of 0.3 s hold it stopped most of the run. */
static void test_bench_outlives_its_shell(void)
{
    const char *dir = test_tmpdir();
    char pidfile[600], log[600], cmd[700], path[700];
    snprintf(pidfile, sizeof pidfile, "%s/peer.pid", dir);
    snprintf(log, sizeof log, "%s/bench.log", dir);
    write_peer(dir, "peer.sh", "#!/bin/sh\n" ONE_WAY WRITES_PID
               "echo ready backend=pytorch-test\n"
               "while read cmd k; do [ \"$cmd\" = step ] || exit 0\n"
               "  echo step 0.005 0.01 1024; done\n");
    const char *exp = time_experiment(dir, "backends = naive\nlayers = no\npeer = peer.sh\n"
                                           "sample_time = 0.3\n");
    snprintf(cmd, sizeof cmd, "%s/core/cnnbench", CNB_BUILD_ROOT);
    int fd[2];
    CU_ASSERT_FATAL(pipe(fd) == 0);
    pid_t shell = fork();
    CU_ASSERT_FATAL(shell >= 0);
    if (shell == 0) { /* the shell: the bench as a job, then exit with the peer stopped */
        pid_t bench = fork();
        if (bench == 0) {
            setpgid(0, 0);
            if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0)
                cnb_child_exit(126);
            execl(cmd, cmd, "run", exp, (char *)NULL);
            cnb_child_exit(127);
        }
        setpgid(bench, bench);
        const long peer = peer_pid(pidfile);
        for (int i = 0; i < 10000 && peer && process_state(peer) != 'T'; i++)
            usleep(1000);
        if (write(fd[1], &bench, sizeof bench) != (ssize_t)sizeof bench)
            cnb_child_exit(1);
        cnb_child_exit(peer && process_state(peer) == 'T' ? 0 : 1);
    }
    close(fd[1]);
    pid_t bench = 0;
    CU_ASSERT_FATAL(read(fd[0], &bench, sizeof bench) == (ssize_t)sizeof bench && bench > 0);
    close(fd[0]);
    int status = -1;
    waitpid(shell, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* it left the peer stopped */
    int gone = 0; /* the bench, now init's child, runs on to its end */
    for (int i = 0; i < 120000 && !gone; i++) { /* up to 2 minutes */
        gone = kill(bench, 0) != 0;
        usleep(1000);
    }
    if (!gone)
        kill(bench, SIGKILL);
    CU_ASSERT_FATAL(gone);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,pytorch-test,4,1,train,"), 1);
    CU_ASSERT_PTR_NULL(strstr(read_file(log), "broke off"));
}

/* The real scripts/pytorch-peer.py on LeNet-5 at batch 4 where PyTorch is installed: it
 * builds the network from the bench's arguments (the model file's, whatever the section
 * calls it), answers the protocol in every way it lists, each in the environment of
 * PyTorch's CPU performance guide, and says which OpenBLAS kernels it ran. */
static void test_pytorch_peer(void)
{
    char script[600], cmd[700], bench[800], path[700];
    snprintf(script, sizeof script, "%s/scripts/pytorch-peer.py", CNB_SOURCE_ROOT);
    snprintf(cmd, sizeof cmd, "%s --check >/dev/null 2>&1", script);
    if (system(cmd) != 0) {
        printf("\n  skipped: PyTorch is not importable by %s (Debian package python3-torch) ",
               script);
        return;
    }
    const char *dir = test_tmpdir();
    snprintf(bench, sizeof bench, "backends = naive\nlayers = no\npeer = %s\n", script);
    const char *exp = time_experiment(dir, bench);
    char text[4096];
    snprintf(text, sizeof text, "%s", read_file(exp));
    memcpy(strstr(text, "[bench.lenet5]"), "[bench.relu_5]", 14);
    test_write_file(exp, text);
    CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "relu_5,pytorch-"), 4 + 2 * have_jemalloc());
    CHECK_MSG(csv, "-tuned-glibc,4,1,train,");
    CHECK_MSG(csv, "tuned as PyTorch's CPU performance guide says, glibc keeping its memory; "
                   "OMP_NUM_THREADS=1 OMP_PROC_BIND=close OMP_PLACES=cores OMP_SCHEDULE=static "
                   "OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=268435456 "
                   "MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824; "
                   "torch.inference_mode; OpenBLAS kernels ");
    CHECK_MSG(csv, "as shipped: torch.set_num_threads(N), the environment as given; "
                   "torch.no_grad; OpenBLAS kernels ");
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    if (have_jemalloc())
        CHECK_MSG(csv, "jemalloc; OMP_NUM_THREADS=1 OMP_PROC_BIND=close OMP_PLACES=cores "
                       "OMP_SCHEDULE=static OPENBLAS_NUM_THREADS=1 LD_PRELOAD=/usr/lib/"
                       "x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=oversize_threshold:1,");
    else
        CHECK_MSG(read_file(path), "PyTorch tuned with jemalloc not run: ");
}

/* The real scripts/onnxruntime-peer.mjs on LeNet-5 at batch 4 where onnxruntime-node is
 * installed (scripts/peers.sh) and PyTorch exports the network: forward rows of its two
 * ways and no training rows, its session options said, the fastest backend's forward
 * pass paired with its tuned way's. */
static void test_onnxruntime_peer(void)
{
    char script[600], cmd[800], bench[800], path[700];
    snprintf(script, sizeof script, "%s/scripts/onnxruntime-peer.mjs", CNB_SOURCE_ROOT);
    snprintf(cmd, sizeof cmd, "%s --check >/dev/null 2>&1 && %s/scripts/pytorch-peer.py "
             "--check >/dev/null 2>&1", script, CNB_SOURCE_ROOT);
    if (system(cmd) != 0) {
        printf("\n  skipped: onnxruntime-node or PyTorch is not installed (bash "
               "scripts/peers.sh) ");
        return;
    }
    const char *dir = test_tmpdir();
    snprintf(bench, sizeof bench, "backends = naive\nlayers = no\npeer = %s\n", script);
    CU_ASSERT_EQUAL_FATAL(bench_file(time_experiment(dir, bench)), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,onnxruntime-"), 2);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,onnxruntime-1."), 2);
    CHECK_MSG(csv, "-tuned,4,1,forward,");
    CHECK_MSG(csv, "inference only, tuned as ONNX Runtime's thread management guide says; "
                   "ONNX Runtime 1.");
    CHECK_MSG(csv, "(onnxruntime-node, CPU execution provider), intraOpNumThreads 1, "
                   "interOpNumThreads 1, executionMode sequential, graphOptimizationLevel all; "
                   "ONNX opset 13 exported by PyTorch ");
    CU_ASSERT_PTR_NULL(strstr(csv, ",train,\"inference only"));
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    CHECK_MSG(read_file(path), "- 1 thread: naive against onnxruntime-");
}

/* peer = /absolute/path is used as it is, not joined onto the experiment's folder: the
 * stand-in here lives in another folder and exits 3, as the real script does without
 * PyTorch, which the report can only say if it ran. */
static void test_absolute_peer(void)
{
    const char *dir = test_tmpdir(), *elsewhere = test_tmpdir();
    char bench[700], path[600];
    const char *script = write_peer(elsewhere, "peer.sh", "#!/bin/sh\nexit 3\n");
    snprintf(bench, sizeof bench, "backends = naive\nlayers = no\npeer = %s\n", script);
    CU_ASSERT_EQUAL_FATAL(bench_file(time_experiment(dir, bench)), 0);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    const char *md = read_file(path);
    CHECK_MSG(md, "peer.sh rows skipped: it says its framework is absent (exit 3).");
    CU_ASSERT_PTR_NULL(strstr(md, "cannot be run"));
}

/* A folder holding a bench's results is refused before anything runs, saying which folder,
 * --force and how to write elsewhere; --force replaces them. `bench` does the same with
 * its folder, results/bench-MODEL under the current one or --out DIR, exiting 2. */
static void test_previous_results(void)
{
    const char *dir = test_tmpdir();
    char path[700], cmd[2400], log[700];
    const char *exp = time_experiment(dir, "backends = naive\nlayers = no\n");
    CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    char before[4096];
    snprintf(before, sizeof before, "%s", read_file(path));
    int was = cnb_error_quiet(1);
    CU_ASSERT_EQUAL(bench_file(exp), CNB_EINVAL);
    cnb_error_quiet(was);
    CHECK_MSG(cnb_last_error(), "/results/speed already holds a bench's results (its "
                                "report.md, written ");
    CHECK_MSG(cnb_last_error(), "pass --force to replace them, or another name to keep them");
    CU_ASSERT_STRING_EQUAL(read_file(path), before); /* nothing ran */
    /* a plot of an earlier run this one does not redraw goes; the user's own files stay */
    char stale[800], own[800], redrawn[800];
    snprintf(stale, sizeof stale, "%s/results/speed/layers-gone-t4.png", dir);
    snprintf(own, sizeof own, "%s/results/speed/layers-notes.txt", dir);
    snprintf(redrawn, sizeof redrawn, "%s/results/speed/throughput-lenet5.png", dir);
    test_write_file(stale, "old");
    test_write_file(own, "mine");
    struct utimbuf past = {.actime = 1000000000, .modtime = 1000000000};
    CU_ASSERT_EQUAL(utime(stale, &past), 0);
    CU_ASSERT_EQUAL(utime(redrawn, &past), 0);
    CU_ASSERT_EQUAL(bench_file_force(exp, 1), 0);
    CU_ASSERT_STRING_NOT_EQUAL(read_file(path), before);
    CU_ASSERT_NOT_EQUAL(access(stale, F_OK), 0);
    CU_ASSERT_EQUAL(access(own, F_OK), 0);
    CU_ASSERT_EQUAL(access(redrawn, F_OK), 0);

    const char *model = CNB_SOURCE_ROOT "/experiments/models/lenet5.ini";
    const char *quick = "--set bench.backends=naive --set bench.min_reps=2 "
                        "--set bench.min_time=0 --set bench.layers=no";
    snprintf(log, sizeof log, "%s/bench.log", dir);
    for (int run = 0; run < 3; run++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' bench '%s' %s %s >'%s' 2>&1",
                 dir, CNB_BUILD_ROOT, model, quick, run == 2 ? "--out elsewhere" : "", log);
        int status = system(cmd);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == (run == 1 ? 2 : 0));
    }
    snprintf(path, sizeof path, "%s/results/bench-lenet5/report.md", dir);
    CHECK_MSG(read_file(path), "## lenet5 (act=sigmoid pool=avg)");
    snprintf(path, sizeof path, "%s/elsewhere/report.md", dir);
    CHECK_MSG(read_file(path), "# bench-lenet5\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' bench '%s' %s >'%s' 2>&1", dir,
             CNB_BUILD_ROOT, model, quick, log);
    CU_ASSERT_NOT_EQUAL(system(cmd), 0);
    const char *out = read_file(log);
    CHECK_MSG(out, "results/bench-lenet5 already holds a bench's results");
    CHECK_MSG(out, "pass --force to replace them, or --out DIR to keep them");
    CU_ASSERT_PTR_NULL(strstr(out, "FMA probe"));
}

/* A single-threaded backend (naive: max_threads 1) is timed at 1 thread only: at 2 its
 * row says it was not run, and why; a BACKEND.threads naming 2 for it is refused. */
static void test_single_threaded(void)
{
    const char *dir = test_tmpdir();
    char path[700];
    const char *exp = time_experiment_with(dir, "1, 2", "backends = naive, openblas\n"
                                           "layers = no\n", "");
    CU_ASSERT_EQUAL_FATAL(bench_file(exp), 0);
    snprintf(path, sizeof path, "%s/results/speed/bench.csv", dir);
    const char *csv = read_file(path);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,naive,4,1,train,"), 1);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,naive,4,2,"), 0);
    CU_ASSERT_EQUAL(count_lines(csv, "lenet5,openblas,4,2,train,"), 1);
    snprintf(path, sizeof path, "%s/results/speed/report.md", dir);
    CHECK_MSG(read_file(path), "\n| naive | 2 | not run: it is single-threaded |");

    exp = time_experiment_with(dir, "1, 2", "backends = naive\n", "naive.threads = 1, 2\n");
    int was = cnb_error_quiet(1);
    CU_ASSERT_EQUAL(bench_file(exp), CNB_EINVAL);
    cnb_error_quiet(was);
    CHECK_MSG(cnb_last_error(), "speed.ini:14: [bench.lenet5] naive.threads = 1, 2: naive is "
                                "single-threaded, and is timed only at thread counts it uses");
}

/* A bad [bench] line is refused before anything runs, naming the file, line and key. */
static void test_bad_config(void)
{
    const char *dir = test_tmpdir();
    const char *bad[][2] = {
        {"backends = naive\nrepetitions = 10\n", "repetitions"},
        {"backends = naive, nosuch\n", "speed.ini:10: [bench] backends: backend 'nosuch'"},
        {"backends = naive\nlayers = maybe\n", "layers = 'maybe'"},
        {"backends = naive\npeer = a, b, c, d, e\n", "speed.ini:11: [bench] peer: at most 4 "
                                                      "scripts"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sub[600], log[700], cmd[2000];
        snprintf(sub, sizeof sub, "%s/%zu", dir, i);
        CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
        const char *exp = time_experiment(sub, bad[i][0]);
        snprintf(log, sizeof log, "%s/log", sub);
        snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' run '%s' >'%s' 2>&1", CNB_BUILD_ROOT, exp,
                 log);
        CU_ASSERT_NOT_EQUAL(system(cmd), 0);
        const char *out = read_file(log);
        CHECK_MSG(out, "speed.ini:");
        CHECK_MSG(out, bad[i][1]);
        snprintf(log, sizeof log, "%s/results/speed/bench.csv", sub);
        struct stat st;
        CU_ASSERT_NOT_EQUAL(stat(log, &st), 0); /* nothing ran */
    }
    /* a bad value given with --set is said as the --set it came in, not as line 0 */
    char log[700], cmd[2000];
    const char *exp = time_experiment(dir, "backends = naive\n");
    const char *set[][2] = {
        {"bench.layers=maybe", "--set bench.layers=maybe: layers = 'maybe': expected yes"},
        {"bench.threads=0", "--set bench.threads=0: threads = '0': expected a list"},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        snprintf(log, sizeof log, "%s/set.log", dir);
        snprintf(cmd, sizeof cmd, "'%s/core/cnnbench' run '%s' --set %s >'%s' 2>&1",
                 CNB_BUILD_ROOT, exp, set[i][0], log);
        CU_ASSERT_NOT_EQUAL(system(cmd), 0);
        CHECK_MSG(read_file(log), set[i][1]);
        CU_ASSERT_PTR_NULL(strstr(read_file(log), "speed.ini:0"));
    }
    /* bench given an experiment file: exit 2 before the peak probe, saying what to run */
    snprintf(log, sizeof log, "%s/bench.log", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/core/cnnbench' bench '%s' >'%s' 2>&1", dir,
             CNB_BUILD_ROOT, exp, log);
    int status = system(cmd);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    const char *out = read_file(log);
    CHECK_MSG(out, "speed.ini is an experiment file; bench takes a model file");
    CU_ASSERT_PTR_NULL(strstr(out, "FP32 peak"));
}

void suite_bench(void)
{
    static const test_case cases[] = {
        {"repetition statistics: median, quartiles, CV, Tukey outliers", test_repetition_stats},
        {"a share of peak above 100% is printed as MISTRUSTED", test_share_format},
        {"FMA probes: a kernel chosen, every probe kept, the maximum", test_peak_probes},
        {"FMA probes: each ISA's kernel when named, an unknown one refused", test_peak_each_isa},
        {"a whole run: two backends, layers, the peer's ways in the rounds", test_whole_run},
        {"fused runs: named in bench.csv, timed on their first layer", test_fused_runs},
        {"memory: a kernel's heap in forward, a 2.2 backend's unknown", test_memory_columns},
        {"peak resident memory: each network in a process of its own", test_peak_memory},
        {"two peers, one only inferring: its forward rows, pairs per pass", test_two_peers},
        {"machine factors: the median of the other entries' samples nearest in time",
         test_machine_factors},
        {"a run's machine factors: in samples.csv, behind cv_own and unstable",
         test_machine_factor},
        {"a process's counts: page faults, involuntary switches, none when gone",
         test_proc_counts},
        {"each turn's switches and faults: in samples.csv, and the report's unstable rows",
         test_turn_counts},
        {"a group at fewer threads than the CPUs runs pinned, its peers too", test_pinned_group},
        {"a model's sample_time is its samples' length, peers' too; shipped_sample_time "
         "the shipped ways'", test_model_sample_time},
        {"a peer without its framework or interpreter: skipped, saying why", test_missing_peer},
        {"onnxruntime-peer.mjs without onnxruntime-node: skipped, how to install",
         test_onnxruntime_absent},
        {"a peer breaking the protocol: quoted, rows left out", test_peer_contract},
        {"a bench killed in the middle takes its peers with it", test_peer_dies_with_bench},
        {"a bench outliving its shell keeps its stopped peers", test_bench_outlives_its_shell},
        {"scripts/pytorch-peer.py speaks the protocol (where torch is)", test_pytorch_peer},
        {"scripts/onnxruntime-peer.mjs speaks the protocol (where installed)",
         test_onnxruntime_peer},
        {"peer = /absolute/path is run from there", test_absolute_peer},
        {"a folder with a bench's results: refused, or --force, or --out", test_previous_results},
        {"a single-threaded backend is not timed at 2 threads", test_single_threaded},
        {"a bad [bench] line is refused with file, line and key", test_bad_config},
        {NULL, NULL},
    };
    test_add_suite("bench", cases);
}
