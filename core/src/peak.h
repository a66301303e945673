/*
 * peak.h - the machine's FP32 peak, measured: a fused multiply-add microbenchmark on 1..N
 * threads, run as many short probes. Benchmarks report each kernel's GFLOP/s as a share
 * of the highest probe.
 *
 * A probe taken once, before the timed work, reads low whenever the machine is busy at
 * that moment, and every share then reads high. So the bench takes one short probe in
 * every round of its timed repetitions, where it sees the machine as the kernels do, and
 * divides by the maximum over the run. Not a model of the CPU: no datasheet frequency or
 * pipe count, only what a loop of register FMAs reaches here.
 */
#ifndef CNB_PEAK_H
#define CNB_PEAK_H

typedef struct cnb_peak {
    int threads;
    const char *isa;        /* the probe's kernel: "avx512f", "avx2+fma" or "scalar"  */
    double probe_seconds;   /* one probe's length, as sized by init                   */
    double gflops;          /* the maximum over the probes (NAN before the first): the
                               denominator of every share of peak                     */
    double median, min;     /* over the probes                                        */
    int n;                  /* probes taken                                           */
    double *probes;         /* [n] GFLOP/s, all threads together, in the order taken  */
    int cap;
    long iterations;        /* per thread per probe                                   */
    int kernel;             /* which kernel (peak.c)                                  */
    double tried[3];        /* init's best GFLOP/s per ISA tried (0: not on this CPU),
                               in the order avx512f, avx2+fma, scalar                 */
} cnb_peak;

/* Size one probe to about `seconds` at `threads` threads and choose its kernel: of the
 * vector ISAs this CPU has, the one whose best of a few alternating probes is highest
 * (the scalar loop on a CPU with none); or the one `isa` names (a cnb_peak_isas entry;
 * NULL to choose), refused when the CPU lacks it. Those probes are not kept (n = 0).
 * 0 or a negative code. */
int cnb_peak_init(cnb_peak *p, int threads, double seconds, const char *isa);

/* One probe, kept: gflops, median, min and n updated. 0 or a negative code. */
int cnb_peak_probe(cnb_peak *p);

void cnb_peak_free(cnb_peak *p);

/* The names of the ISAs in `tried`, in its order. */
extern const char *const cnb_peak_isas[3];

#endif
