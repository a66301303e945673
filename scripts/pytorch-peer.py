#!/usr/bin/python3
"""pytorch-peer.py - a PyTorch peer row for cnnbench's backend-speed table.

Times the networks of experiments/models/lenet5.ini and experiments/models/alexnet.ini in
PyTorch on the CPU (same variables, batch and threads) the way cnnbench times its
backends, and writes CSV rows that cnnbench reads as a peer.

The contract with cnnbench (core/src/benchpeer.c states it too). cnnbench runs

  pytorch-peer.py --model NAME --name NAME --batch N --threads N --min-reps N
                  --min-time SECONDS --warmup N --out DIR/peer.csv [--var VAR=VALUE]...

with one --var for every variable of the model as cnnbench times it (the model file's
[vars] under the experiment's). A network or variable this script cannot build exactly is
refused with exit 2 (cnnbench reports the failure); exit 3 when PyTorch is absent
(cnnbench reports the rows as skipped). Rows are appended to --out, the header line
written only into an empty file. cnnbench reads these columns by name and ignores the
others:

  model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,
  images_per_second,create_ms

  model              --name (default: --model)
  backend            "pytorch-<torch version>"
  pass               "forward" (eval mode, torch.no_grad, softmax included) or "train"
                     (train mode: forward, cross-entropy, backward, SGD step)
  median/min/q1/q3   per-repetition wall time in ms (time.perf_counter); quartiles by
                     linear interpolation between order statistics (GSL's / numpy's default)
  cv                 sample sd / mean over the repetitions
  outliers           repetitions outside [q1 - 1.5 IQR, q3 + 1.5 IQR]; counted, never dropped
  images_per_second  batch / median
  create_ms          model construction and weight initialisation

It writes three more, for a reader of the file alone: unstable (1 when cv >= 0.10), and
gflops and peak_share left empty (cnnbench fills them from its own FLOP counts).

Usage:
  scripts/pytorch-peer.py --model lenet5 --batch 256 --threads 1 --var act=relu \
      --var pool=max --out results/peer.csv
  scripts/pytorch-peer.py --model alexnet --batch 32 --threads 2 --var lrn=none --out peer.csv
  scripts/pytorch-peer.py --check       # is torch importable? exit 0 yes, 3 no

Without --var a variable takes its default from the model file's [vars] (LeNet-5:
act=sigmoid, pool=avg; AlexNet: channels=3, classes=1000, act=relu, pool=max, lrn=lrn,
dropout=0.5). PyTorch is optional (Debian package python3-torch). Without it the script
prints one line to stderr and exits 3 without writing anything. Exit 2 on bad arguments.

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

# The contract's columns (above) with the three for a reader of the file alone.
COLUMNS = ("model,backend,batch,threads,pass,reps,median_ms,min_ms,q1_ms,q3_ms,cv,outliers,"
           "images_per_second,unstable,create_ms,gflops,peak_share")



def count(s):
    """a positive integer"""
    if int(s) < 1:
        raise ValueError(s)


def ratio(s):
    """a ratio in [0, 1)"""
    if not 0 <= float(s) < 1:
        raise ValueError(s)


# Each model's variables as its .ini file's [vars] declares them: the file's default, and
# the values this script builds (or the check of a number).
VARIABLES = {
    "lenet5": {"act": ("sigmoid", ("sigmoid", "relu")), "pool": ("avg", ("avg", "max"))},
    "alexnet": {"channels": ("3", count), "classes": ("1000", count),
                "act": ("relu", ("relu", "sigmoid")), "pool": ("max", ("max", "avg")),
                "lrn": ("lrn", ("lrn", "none")), "dropout": ("0.5", ratio)},
}

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

def act_pool(nn, v, window, stride):
    """Makers of the activation and the pooling layer that ${act} and ${pool} choose."""
    act = (lambda: nn.ReLU()) if v["act"] == "relu" else (lambda: nn.Sigmoid())
    if v["pool"] == "max":
        return act, lambda: nn.MaxPool2d(window, stride)
    return act, lambda: nn.AvgPool2d(window, stride)


def build_lenet5(torch, v):
    """experiments/models/lenet5.ini: 28x28x1 -> ... -> 10 (61,706 parameters)."""
    nn = torch.nn
    A, P = act_pool(nn, v, 2, 2)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, stride=1, padding=2), A(), P(),     # conv1 28x28x6, pool1 14x14x6
        nn.Conv2d(6, 16, 5, stride=1, padding=0), A(), P(),    # conv2 10x10x16, pool2 5x5x16
        nn.Flatten(),                                          # 400
        nn.Linear(400, 120), A(),                              # fc1
        nn.Linear(120, 84), A(),                               # fc2
        nn.Linear(84, 10),                                     # fc3 (softmax: in the loss)
    )
    return net, (1, 28, 28), 10


def build_alexnet(torch, v):
    """experiments/models/alexnet.ini: single tower, 227x227x3 -> 1000 (62,378,344 params)."""
    nn = torch.nn
    A, P = act_pool(nn, v, 3, 2)
    channels, classes, dropout = int(v["channels"]), int(v["classes"]), float(v["dropout"])

    def norm():
        # cnnbench: b = a / (k + alpha * sum a^2)^beta; torch: alpha / size * sum a^2.
        if v["lrn"] == "none":
            return nn.Identity()
        return nn.LocalResponseNorm(size=5, alpha=1e-4 * 5, beta=0.75, k=2.0)

    net = nn.Sequential(
        nn.Conv2d(channels, 96, 11, stride=4, padding=0), A(), norm(),   # conv1 55x55x96
        P(),                                                             # pool1 27x27x96
        nn.Conv2d(96, 256, 5, stride=1, padding=2), A(), norm(),         # conv2 27x27x256
        P(),                                                             # pool2 13x13x256
        nn.Conv2d(256, 384, 3, stride=1, padding=1), A(),                # conv3 13x13x384
        nn.Conv2d(384, 384, 3, stride=1, padding=1), A(),                # conv4 13x13x384
        nn.Conv2d(384, 256, 3, stride=1, padding=1), A(),                # conv5 13x13x256
        P(),                                                             # pool5 6x6x256
        nn.Flatten(),                                                    # 9216
        nn.Linear(9216, 4096), A(), nn.Dropout(dropout),                 # fc6, drop6
        nn.Linear(4096, 4096), A(), nn.Dropout(dropout),                 # fc7, drop7
        nn.Linear(4096, classes),                                        # fc8
    )
    return net, (channels, 227, 227), classes


BUILDERS = {"lenet5": build_lenet5, "alexnet": build_alexnet}


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
    p.add_argument("--var", action="append", default=[], metavar="VAR=VALUE",
                   help="a variable of the model file (repeatable): lenet5 act, pool; "
                        "alexnet channels, classes, act, pool, lrn, dropout")
    p.add_argument("--lr", type=nonneg_float, default=0.01, help="SGD learning rate (0.01)")
    p.add_argument("--seed", type=int, default=1, help="seed for weights, input, labels (1)")
    p.add_argument("--name", help="value of the model column (default: --model)")
    p.add_argument("--out", metavar="FILE.csv",
                   help="append rows here (header written when the file is new or empty); "
                        "without it the CSV goes to stdout")
    a = p.parse_args(argv)
    a.vars = model_vars(p, a.model, a.var)
    return a


def model_vars(p, model, assignments):
    """The model's variables: the file's defaults under the --var assignments. A variable
    the model does not have, or a value this script cannot build, exits 2 (p.error)."""
    known = VARIABLES[model]
    values = {name: default for name, (default, _) in known.items()}
    for assignment in assignments:
        name, eq, value = assignment.partition("=")
        if not eq or name not in known:
            p.error("--var %s: %s's variables are %s" % (assignment, model, ", ".join(known)))
        allowed = known[name][1]
        if isinstance(allowed, tuple) and value not in allowed:
            p.error("--var %s: this peer builds %s = %s only"
                    % (assignment, name, " | ".join(allowed)))
        if not isinstance(allowed, tuple):
            try:
                allowed(value)
            except ValueError:
                p.error("--var %s: expected %s" % (assignment, allowed.__doc__))
        values[name] = value
    return values


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
    name = a.name or a.model

    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    model, shape, classes = BUILDERS[a.model](torch, a.vars)
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
