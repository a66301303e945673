#!/usr/bin/python3
"""pytorch-peer.py - a PyTorch peer row for cnnbench's backend-speed table.

Times the networks of experiments/models/lenet5.ini and experiments/models/alexnet.ini in
PyTorch on the CPU (same batch, same threads) the way cnnbench times its backends, and
writes CSV rows in cnnbench's bench format:

  model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,
  images_per_second,unstable,create_ms,gflops,peak_share

  backend            "pytorch-<torch version>"
  pass               "forward" (eval mode, torch.no_grad, softmax included) or "train"
                     (train mode: forward, cross-entropy, backward, SGD step)
  median/min/q1/q3   per-repetition wall time in ms (time.perf_counter); quartiles by
                     linear interpolation between order statistics (GSL's / numpy's default)
  cv                 sample sd / mean over the repetitions
  outliers           repetitions outside [q1 - 1.5 IQR, q3 + 1.5 IQR]; counted, never dropped
  images_per_second  batch / median
  unstable           1 when cv >= 0.10
  create_ms          model construction and weight initialisation
  gflops, peak_share left empty: cnnbench fills them from its own FLOP counts

Usage:
  scripts/pytorch-peer.py --model lenet5 --batch 256 --threads 1 --out results/peer.csv
  scripts/pytorch-peer.py --model alexnet --batch 32 --threads 2 --no-lrn --out peer.csv
  scripts/pytorch-peer.py --check       # is torch importable? exit 0 yes, 3 no

PyTorch is optional (Debian package python3-torch). Without it the script prints one line
to stderr and exits 3 without writing anything. Exit 2 on bad arguments.

What is matched to cnnbench on purpose:
  * layers, shapes and order exactly as the .ini files (a ReLU after every AlexNet conv,
    LRN after relu1 and relu2, dropout after relu6 and relu7, softmax at the end);
  * LRN: torch.nn.LocalResponseNorm divides alpha by size, cnnbench (the AlexNet paper)
    does not, so alpha * size is passed (k = 2, size = 5, alpha = 1e-4, beta = 0.75);
  * initialisation as cnnbench's net.c: He normal N(0, 2/fan_in) for a conv/fc followed
    by a ReLU, Xavier uniform otherwise, zero biases;
  * SGD as cnnbench's cnb_net_sgd: v = m v + g + wd w, w -= lr v (PyTorch's SGD with
    dampening 0), momentum 0.9, weight decay 5e-4 on weights only (not on biases);
  * NCHW float32 tensors, like cnnbench's buffers.
"""

import argparse
import math
import os
import statistics
import sys
import time

EXIT_NO_TORCH = 3
NO_TORCH_MSG = "pytorch-peer: PyTorch is not installed (Debian package python3-torch); skipped"

COLUMNS = ("model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,"
           "images_per_second,unstable,create_ms,gflops,peak_share")

DEFAULT_BATCH = {"lenet5": 256, "alexnet": 32}


def import_torch():
    """torch, or None when it cannot be imported (absent or broken install).

    PyTorch's OpenMP threads are pinned one per core (OMP_PROC_BIND=true, OMP_PLACES=cores)
    unless the environment already says how; libgomp reads them when torch loads it.
    Unpinned, its 2-thread LeNet-5 step on 2 cores was bimodal, about 15 or about 28 ms
    from one repetition to the next (CV 72-83% in 3 runs); pinned, 13.1-15.5 ms with CV
    3-9%. cnnbench's own backends are not pinned: oneDNN measured the same either way
    (34,596 and 34,546 img/s), and the openblas pool's threads would inherit the main
    thread's single core."""
    if "OMP_PROC_BIND" not in os.environ and "OMP_PLACES" not in os.environ:
        os.environ["OMP_PROC_BIND"] = "true"
        os.environ["OMP_PLACES"] = "cores"
    try:
        import torch  # noqa: WPS433 - optional dependency
        return torch
    except (ImportError, OSError):
        return None


# ---- networks ---------------------------------------------------------------------------

def build_lenet5(torch, act, pool):
    """experiments/models/lenet5.ini: 28x28x1 -> ... -> 10 (61,706 parameters)."""
    nn = torch.nn
    A = (lambda: nn.ReLU()) if act == "relu" else (lambda: nn.Sigmoid())
    P = (lambda: nn.MaxPool2d(2, 2)) if pool == "max" else (lambda: nn.AvgPool2d(2, 2))
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, stride=1, padding=2), A(), P(),     # conv1 28x28x6, pool1 14x14x6
        nn.Conv2d(6, 16, 5, stride=1, padding=0), A(), P(),    # conv2 10x10x16, pool2 5x5x16
        nn.Flatten(),                                          # 400
        nn.Linear(400, 120), A(),                              # fc1
        nn.Linear(120, 84), A(),                               # fc2
        nn.Linear(84, 10),                                     # fc3 (softmax: in the loss)
    )


def build_alexnet(torch, lrn, dropout):
    """experiments/models/alexnet.ini: single tower, 227x227x3 -> 1000 (62,378,344 params)."""
    nn = torch.nn

    def norm():
        # cnnbench: b = a / (k + alpha * sum a^2)^beta; torch: alpha / size * sum a^2.
        if not lrn:
            return nn.Identity()
        return nn.LocalResponseNorm(size=5, alpha=1e-4 * 5, beta=0.75, k=2.0)

    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4, padding=0), nn.ReLU(), norm(),    # conv1 55x55x96
        nn.MaxPool2d(3, 2),                                              # pool1 27x27x96
        nn.Conv2d(96, 256, 5, stride=1, padding=2), nn.ReLU(), norm(),   # conv2 27x27x256
        nn.MaxPool2d(3, 2),                                              # pool2 13x13x256
        nn.Conv2d(256, 384, 3, stride=1, padding=1), nn.ReLU(),          # conv3 13x13x384
        nn.Conv2d(384, 384, 3, stride=1, padding=1), nn.ReLU(),          # conv4 13x13x384
        nn.Conv2d(384, 256, 3, stride=1, padding=1), nn.ReLU(),          # conv5 13x13x256
        nn.MaxPool2d(3, 2),                                              # pool5 6x6x256
        nn.Flatten(),                                                    # 9216
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(dropout),           # fc6, drop6
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),           # fc7, drop7
        nn.Linear(4096, 1000),                                           # fc8
    )


def init_like_cnnbench(torch, model):
    """He normal when the first activation after a conv/fc is a ReLU, else Xavier uniform;
    zero biases (cnnbench core/src/net.c, choose_init and cnb_net_init_params)."""
    nn = torch.nn
    layers = list(model)
    for i, layer in enumerate(layers):
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            continue
        he = False
        for nxt in layers[i + 1:]:
            if isinstance(nxt, (nn.Conv2d, nn.Linear)):
                break
            if isinstance(nxt, (nn.ReLU, nn.Sigmoid)):
                he = isinstance(nxt, nn.ReLU)
                break
        with torch.no_grad():
            if he:   # N(0, 2 / fan_in), fan_in = C * k * k or inputs
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            else:    # U(-a, a), a = sqrt(6 / (fan_in + fan_out)), fan_out = filters * k * k
                nn.init.xavier_uniform_(layer.weight)
            layer.bias.zero_()


# ---- statistics (as cnnbench: quartiles by linear interpolation, sample sd) -------------

def quantile_sorted(xs, f):
    """Linear interpolation between order statistics (GSL quantile_from_sorted_data)."""
    n = len(xs)
    if n == 1:
        return xs[0]
    delta = (n - 1) * f
    i = int(math.floor(delta))
    if i >= n - 1:
        return xs[-1]
    return xs[i] + (delta - i) * (xs[i + 1] - xs[i])


def summarise(times_s):
    xs = sorted(t * 1e3 for t in times_s)
    n = len(xs)
    med = quantile_sorted(xs, 0.5)
    q1, q3 = quantile_sorted(xs, 0.25), quantile_sorted(xs, 0.75)
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    mean = statistics.fmean(xs)
    sd = statistics.stdev(xs) if n > 1 else 0.0
    return {
        "reps": n,
        "median_ms": med,
        "min_ms": xs[0],
        "q1_ms": q1,
        "q3_ms": q3,
        "cv": sd / mean if mean > 0 else float("nan"),
        "outliers": sum(1 for x in xs if x < lo or x > hi),
    }


def repeat(step, warmup, min_reps, min_time):
    """Run step() warmup times untimed, then time each repetition until both min_reps
    repetitions and min_time seconds of timed work are reached."""
    for _ in range(warmup):
        step()
    times = []
    total = 0.0
    while len(times) < min_reps or total < min_time:
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
    return times


# ---- main -------------------------------------------------------------------------------

def positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return v


def nonneg_int(s):
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def nonneg_float(s):
    v = float(s)
    if not v >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="pytorch-peer.py",
        description="Time LeNet-5 / AlexNet in PyTorch on the CPU and write rows in "
                    "cnnbench's bench CSV format.")
    p.add_argument("--check", action="store_true",
                   help="only report whether torch is importable (exit 0) or not (exit 3)")
    p.add_argument("--model", choices=("lenet5", "alexnet"), default="lenet5")
    p.add_argument("--batch", type=positive_int,
                   help="images per batch (default: 256 for lenet5, 32 for alexnet)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="intra-op threads (torch.set_num_threads); inter-op is 1 (default 1)")
    p.add_argument("--warmup", type=nonneg_int, default=3, help="untimed repetitions (3)")
    p.add_argument("--min-reps", type=positive_int, default=10, help="timed repetitions (10)")
    p.add_argument("--min-time", type=nonneg_float, default=1.0,
                   help="seconds of timed work per pass, at least (1.0)")
    p.add_argument("--pass", dest="passes", choices=("both", "forward", "train"),
                   default="both", help="which passes to time (both)")
    p.add_argument("--lenet-act", choices=("relu", "sigmoid"), default="relu")
    p.add_argument("--lenet-pool", choices=("max", "avg"), default="max")
    p.add_argument("--no-lrn", action="store_true", help="AlexNet without its two LRN layers")
    p.add_argument("--lr", type=nonneg_float, default=0.01, help="SGD learning rate (0.01)")
    p.add_argument("--seed", type=int, default=1, help="seed for weights, input, labels (1)")
    p.add_argument("--name",
                   help="value of the model column (default: lenet5 | lenet5-<act>-<pool> "
                        "when not relu/max | alexnet | alexnet-nolrn)")
    p.add_argument("--out", metavar="FILE.csv",
                   help="append rows here (header written when the file is new or empty); "
                        "without it the CSV goes to stdout")
    return p.parse_args(argv)


def model_name(a):
    if a.name:
        return a.name
    if a.model == "lenet5":
        if a.lenet_act == "relu" and a.lenet_pool == "max":
            return "lenet5"
        return "lenet5-%s-%s" % (a.lenet_act, a.lenet_pool)
    return "alexnet-nolrn" if a.no_lrn else "alexnet"


def fmt(v, digits):
    return "nan" if v != v else ("%.*f" % (digits, v))


def main(argv):
    a = parse_args(argv)
    torch = import_torch()
    if a.check:
        if torch is None:
            print(NO_TORCH_MSG, file=sys.stderr)
            return EXIT_NO_TORCH
        print("pytorch-peer: PyTorch %s is importable (%s, mkldnn %s)"
              % (torch.__version__, sys.executable,
                 "yes" if torch.backends.mkldnn.is_available() else "no"))
        return 0
    if torch is None:
        print(NO_TORCH_MSG, file=sys.stderr)
        return EXIT_NO_TORCH

    # Threads first: set_num_interop_threads fails once inter-op work has started.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(a.threads)
    batch = a.batch or DEFAULT_BATCH[a.model]
    version = torch.__version__.split("+")[0]
    backend = "pytorch-" + version
    name = model_name(a)

    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    if a.model == "lenet5":
        model = build_lenet5(torch, a.lenet_act, a.lenet_pool)
        shape, classes = (1, 28, 28), 10
    else:
        model = build_alexnet(torch, not a.no_lrn, 0.5)
        shape, classes = (3, 227, 227), 1000
    init_like_cnnbench(torch, model)
    create_ms = (time.perf_counter() - t0) * 1e3

    x = torch.randn(batch, *shape)                      # NCHW float32
    y = torch.randint(0, classes, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()                # softmax + NLL, mean over the batch
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 5e-4},
                           {"params": biases, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9, dampening=0.0, nesterov=False)

    def forward():
        with torch.no_grad():
            torch.softmax(model(x), dim=1)               # cnnbench's forward ends in [prob]

    def train_step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    rows = []
    passes = ("forward", "train") if a.passes == "both" else (a.passes,)
    for which in passes:
        if which == "forward":
            model.eval()
            times = repeat(forward, a.warmup, a.min_reps, a.min_time)
        else:
            model.train()
            times = repeat(train_step, a.warmup, a.min_reps, a.min_time)
        s = summarise(times)
        ips = batch / (s["median_ms"] / 1e3)
        rows.append(",".join([
            name, backend, str(batch), str(a.threads), which, str(s["reps"]),
            fmt(s["median_ms"], 4), fmt(s["min_ms"], 4), fmt(s["q1_ms"], 4), fmt(s["q3_ms"], 4),
            fmt(s["cv"], 4), str(s["outliers"]), fmt(ips, 2),
            "1" if s["cv"] >= 0.10 else "0", fmt(create_ms, 3), "", ""]))
        print("pytorch-peer: %s %s batch %d threads %d %s: median %.3f ms, %.1f images/s, "
              "cv %.3f, %d reps, %d outliers"
              % (name, backend, batch, a.threads, which, s["median_ms"], ips, s["cv"],
                 s["reps"], s["outliers"]), file=sys.stderr)

    if a.out:
        new = not os.path.exists(a.out) or os.path.getsize(a.out) == 0
        with open(a.out, "a", encoding="utf-8") as f:
            if new:
                f.write(COLUMNS + "\n")
            for r in rows:
                f.write(r + "\n")
    else:
        sys.stdout.write(COLUMNS + "\n")
        for r in rows:
            sys.stdout.write(r + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
