#!/usr/bin/env python3
"""scaling-model.py - the tables of docs/scaling.md: a ring allreduce's cost for LeNet-5's and
AlexNet's gradients on 2-256 nodes over 10-200 Gb/s links, against the compute time of a
training step measured on this machine, and what follows for the batch and the node count.

    python3 scripts/scaling-model.py                 # the tables, Markdown, to stdout
    python3 scripts/scaling-model.py --csv results/scaling/scaling.csv

The compute times per image come from --csv (the 1-rank rows of experiments/scaling.ini at
the largest thread count: one node's step) when given, else from the defaults below, taken
from an earlier run of experiments/backend-speed.ini. Assumptions are in ASSUMPTIONS and
printed with the tables.
"""
import argparse
import csv
import math

# name: parameters (as `cnnbench summary` counts them), the forward pass's share of a
# training step, the global batch of the strong-scaling table.
# Compute per image on one node: an earlier run of experiments/backend-speed.ini
# (bench.csv), direct+onednn at 2 threads on this 2-core machine (one node = this
# machine): LeNet-5 6.060 ms per step of 256 (forward 2.387), AlexNet 1024.0 ms per step
# of 32 (forward 340.1); the fastest backends of later runs are 2.1 to 2.8 times as
# fast (--node-speedup). The backward pass, what the sums can hide behind, is the rest of the
# step.
MODELS = {
    "lenet5": dict(params=61706, fwd_share=2.387 / 6.060, batch=256),
    "alexnet": dict(params=62378344, fwd_share=340.1 / 1024.0, batch=256),
}
DEFAULT_MS_PER_IMAGE = {"lenet5": 6.060 / 256, "alexnet": 1024.0 / 32}

LINKS_GBPS = [10, 25, 100, 200]
# per-message latency of one ring step: TCP over Ethernet at 10/25 Gb/s, RDMA (InfiniBand
# or RoCE) at 100/200 Gb/s; typical small-message figures (OSU latency benchmarks'
# ballpark), not measured here
LATENCY_US = {10: 30.0, 25: 20.0, 100: 2.0, 200: 1.5}
NODES = [2, 4, 8, 16, 32, 64, 128, 256]
EFFICIENCY = 1.0  # share of the line rate an allreduce reaches; 1.0 = the best case
BUCKET_MB = 25.0  # CNB_BUCKET_MB on a cluster (train.c): a model's sums go as
                  # ceil(gradient MB / 25) messages, each paying the latency

def messages(params):
    return max(1, math.ceil(4 * params / (BUCKET_MB * 1e6)))


ASSUMPTIONS = f"""\
- Ring allreduce: time = 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency per message;
  the gradients go as buckets of CNB_BUCKET_MB = {BUCKET_MB:g} MB (the setting for a
  network; train.c's default of 1 MiB suits shared memory), so AlexNet's as
  {messages(MODELS['alexnet']['params'])} messages and LeNet-5's as {messages(MODELS['lenet5']['params'])}, and the latency term counts once a message.
- Bandwidth: the link's line rate (x {EFFICIENCY:.2f}), 1 Gb/s = 1e9 bit/s; fp32 gradients
  (4 bytes a parameter); no compression, no hierarchy inside a node.
- Latency per message: {', '.join(f'{l:g} us at {g} Gb/s' for g, l in LATENCY_US.items())}
  (TCP over Ethernet for 10/25 Gb/s, RDMA for 100/200 Gb/s; typical, not measured here).
- Compute: one node does what this machine did (2 cores, 2 threads), linear in its
  batch; the forward share of the step as measured; the sums can hide only behind the
  backward pass (the rest of the step), so "hidden" means allreduce <= backward time.
- Strong scaling: a fixed global batch split over N nodes; step(N) = compute(B/N) +
  max(0, allreduce - backward(B/N)) with overlap, compute(B/N) + allreduce without.
"""


def ring_ms(n, nbytes, gbps, buckets):
    """ms for one step's sums: `buckets` messages of nbytes in all."""
    bw = gbps * 1e9 / 8 * EFFICIENCY
    return (2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * LATENCY_US[gbps] * 1e-6 * buckets) * 1e3


def read_csv(path):
    """ms per image of each model's 1-rank step at the largest thread count measured."""
    best = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if int(r["ranks"]) != 1:
                continue
            m, t = r["model"], int(r["threads"])
            if m not in best or t > best[m][0]:
                best[m] = (t, float(r["step_ms"]) / int(r["global_batch"]))
    return {m: v[1] for m, v in best.items()}


def table(rows, head):
    out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", help="results/scaling/scaling.csv for the compute times")
    ap.add_argument("--node-speedup", type=float, default=1.0, metavar="K",
                    help="a node K times faster than the measured one (a 64-core node: ~32)")
    args = ap.parse_args()
    per_image = dict(DEFAULT_MS_PER_IMAGE)
    source = ("an earlier run of experiments/backend-speed.ini (direct+onednn, 2 threads: "
              "one node = this 2-core machine)")
    if args.csv:
        per_image.update(read_csv(args.csv))
        source = args.csv
    if args.node_speedup != 1.0:
        per_image = {m: t / args.node_speedup for m, t in per_image.items()}
        source += f", divided by {args.node_speedup:g} (a node that much faster)"
    print(f"Compute per image on one node from {source}:",
          ", ".join(f"{m} {per_image[m]:.4g} ms" for m in MODELS), "\n")
    print("Assumptions:\n\n" + ASSUMPTIONS)
    for name, m in MODELS.items():
        nbytes = 4 * m["params"]
        t_img = per_image[name]
        t_bwd = t_img * (1 - m["fwd_share"])
        print(f"## {name}: {m['params']:,} parameters, {nbytes / 1e6:.3f} MB of gradients, "
              f"{t_img:.4g} ms per image on one node ({t_bwd:.4g} ms of it backward)\n")
        print("Ring allreduce per step, ms:\n")
        print(table([[n] + [f"{ring_ms(n, nbytes, g, messages(m['params'])):.3g}" for g in LINKS_GBPS]
                     for n in NODES], ["nodes"] + [f"{g} Gb/s" for g in LINKS_GBPS]))
        print("\nSmallest global batch (a node's share in brackets) whose backward pass hides "
              "the allreduce:\n")
        rows = []
        for n in NODES:
            row = [n]
            for g in LINKS_GBPS:
                b = max(1, math.ceil(ring_ms(n, nbytes, g, messages(m["params"])) / t_bwd))
                row.append(f"{n * b:,} ({b:,})")
            rows.append(row)
        print(table(rows, ["nodes"] + [f"{g} Gb/s" for g in LINKS_GBPS]))
        B = m["batch"]
        print(f"\nStrong scaling at a global batch of {B}: efficiency = step(1) / (N x "
              f"step(N)), with the sums overlapped with the backward pass (without overlap "
              f"in brackets); '-' where a node would get less than one image:\n")
        rows, last_half = [], {g: 1 for g in LINKS_GBPS}
        for n in NODES:
            row = [n]
            for g in LINKS_GBPS:
                if B < n:
                    row.append("-")
                    continue
                c = t_img * B / n
                ar = ring_ms(n, nbytes, g, messages(m["params"]))
                over = c + max(0.0, ar - t_bwd * B / n)
                plain = c + ar
                e, e0 = t_img * B / (n * over), t_img * B / (n * plain)
                if e >= 0.5:
                    last_half[g] = n
                row.append(f"{100 * e:.0f}% ({100 * e0:.0f}%)")
            rows.append(row)
        print(table(rows, ["nodes"] + [f"{g} Gb/s" for g in LINKS_GBPS]))
        print("\nLargest node count still at 50% efficiency or more (overlapped): " +
              ", ".join(f"{g} Gb/s: {last_half[g]}" for g in LINKS_GBPS) + "\n")


if __name__ == "__main__":
    main()
