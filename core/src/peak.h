/*
 * peak.h - the machine's FP32 peak, measured: a fused multiply-add microbenchmark at the
 * widest vector ISA the CPU has (AVX-512, else AVX2+FMA, else scalar), on 1..N threads.
 * Benchmarks report each kernel's GFLOP/s as a share of this number.
 */
#ifndef CNB_PEAK_H
#define CNB_PEAK_H

typedef struct cnb_peak {
    double gflops;   /* median of the repetitions, all threads together */
    const char *isa; /* "avx512f", "avx2+fma" or "scalar" */
    int threads;
} cnb_peak;

/* Run about `seconds` in all (>= 5 repetitions); 0 or a negative code. */
int cnb_peak_measure(int threads, double seconds, cnb_peak *out);

#endif
