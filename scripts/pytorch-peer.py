#!/usr/bin/python3
"""pytorch-peer.py - a PyTorch peer row for cnnbench's backend-speed table.

Times the networks of experiments/models/lenet5.ini and experiments/models/alexnet.ini in
PyTorch on the CPU (same variables, batch and threads) the way cnnbench times its
backends, a step at a time when cnnbench asks on its standard input.

The contract with cnnbench (core/src/benchpeer.c states it too). cnnbench first asks
which ways of running PyTorch there are:

  pytorch-peer.py --ways --threads N

and gets a line each, tab-separated: `way`, the suffix of its rows' backend name, shipped
or tuned, the arguments it adds, the environment it runs in (NAME=VALUE words) and what it
is (ways() below: as shipped; tuned as PyTorch's CPU performance guide says, with glibc
keeping its memory or with jemalloc); `not-run`, a suffix and why, for a way this machine
cannot run. It then runs one process per way, each a participant of its rounds:

  pytorch-peer.py --model FILE --name NAME --batch N --threads N --warmup N --lr X
                  --momentum X --weight-decay X [the way's arguments] [--var VAR=VALUE]...

with FILE the model file's name without its folder and .ini (lenet5 or alexnet: the
network to build; NAME is the experiment's name for it, [bench.NAME]), one --var for
every variable of the model as cnnbench times it (the model file's [vars] under the
experiment's) and the SGD update of cnnbench's training step. It builds
the network and warms it up (--warmup forward passes and training steps), then writes

  ready backend=pytorch-<torch version> create_ms=X how=TEXT

(how: inference under torch.inference_mode or torch.no_grad, and the OpenBLAS kernels it
runs) and reads commands, a line each: `step F T` times F forward passes (eval mode,
softmax included) back to back, then T training steps (train mode: forward,
cross-entropy, backward, SGD step), each pass by time.perf_counter (`step K`: F = T = K;
`step` alone: 1), and answers with the seconds of one of each (a pass's time over its
count)

  step FORWARD_SECONDS TRAIN_SECONDS PEAK_KB

PEAK_KB: how far its peak resident memory (VmHWM) grew over its resident memory before
the network was built. `quit` or the end of its input ends it. A network or variable this
script cannot build exactly is refused with exit 2 (cnnbench reports the failure); when
PyTorch is absent it writes `skip WHY` and exits 3 (cnnbench reports the rows as skipped,
saying why).

  pytorch-peer.py --export-onnx OUT --model FILE --batch N [--var VAR=VALUE]...

writes the same network, initialised the same way, to the ONNX file OUT for the ONNX Runtime
peer (scripts/onnxruntime-peer.mjs): in eval mode (dropout is the identity), softmax at
the end as cnnbench's forward ends in [prob], LRN as ONNX's own LRN operator, opset
ONNX_OPSET, the batch fixed; then one line saying what exported it.

Usage:
  printf 'step\nstep 3 2\n' | scripts/pytorch-peer.py --model lenet5 --batch 256 \
      --threads 1 --var act=relu --var pool=max
  scripts/pytorch-peer.py --check       # is torch importable? exit 0 yes, 3 no
  scripts/pytorch-peer.py --ways --threads 2

Without --var a variable takes its default from the model file's [vars] (LeNet-5:
act=sigmoid, pool=avg; AlexNet: channels=3, classes=1000, act=relu, pool=max, lrn=lrn,
dropout=0.5). PyTorch is optional (Debian package python3-torch; `bash scripts/peers.sh`
installs the optional peers). Without it the script writes one `skip` line and exits 3.
Exit 2 on bad arguments.

What is matched to cnnbench on purpose:
  * layers, shapes and order exactly as the .ini files (a ReLU after every AlexNet conv,
    LRN after relu1 and relu2, dropout after relu6 and relu7, softmax at the end);
  * LRN: torch.nn.LocalResponseNorm divides alpha by size, cnnbench (the AlexNet paper)
    does not, so alpha * size is passed (k = 2, size = 5, alpha = 1e-4, beta = 0.75);
  * initialisation as cnnbench's net.c: He normal N(0, 2/fan_in) for a conv/fc followed
    by a ReLU, Xavier uniform otherwise, zero biases;
  * SGD as cnnbench's cnb_net_sgd: v = m v + g + wd w, w -= lr v (PyTorch's SGD with
    dampening 0) with the learning rate, momentum and weight decay cnnbench passes (its
    training step's: 1e-4, 0.9, 5e-4), the decay on weights only (not on biases);
  * NCHW float32 tensors, like cnnbench's buffers.
"""

import argparse
import importlib.util
import os
import sys
import time
import warnings

EXIT_NO_TORCH = 3
NO_TORCH_MSG = ("PyTorch is not installed for /usr/bin/python3 (Debian package python3-torch; "
                "`bash scripts/peers.sh` installs the optional peers)")
ONNX_OPSET = 13   # ONNX Runtime runs it; PyTorch 1.13 exports up to 17

# Debian's jemalloc, preloaded by the jemalloc way.
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

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


# ---- ways of running it ----------------------------------------------------------------

def ways(threads):
    """What --ways writes: as shipped, then tuned as PyTorch's CPU performance guide says
    (its OpenMP threads pinned close, one per core, with a static schedule, GNU OpenMP's
    spelling; OpenBLAS, which runs the fully connected layers, at the same thread count;
    inference under torch.inference_mode; an allocator that keeps its memory: glibc told
    not to give it back, or jemalloc with the guide's MALLOC_CONF). Measured on AlexNet, 2
    threads, training step: as shipped 3,920 ms, glibc keeping its memory 1,169 ms,
    jemalloc without MALLOC_CONF 7,339 ms; which allocator is faster is measured again in
    every group, both running in the rounds. The guide keeps jemalloc's pages with decay
    times of 9000000000 ms; Debian's jemalloc 5.3 takes the value and still gives pages
    back and faults them in afresh at every step (LeNet-5, 1 thread, training step: 101 ms,
    against 18.7 ms with glibc keeping its memory), so the way says "never" in jemalloc's
    own spelling, -1 (18.7 ms; AlexNet without LRN, 1 thread: 1.34 to 1.42 s, glibc's
    way 1.32 to 1.44 s). glibc's mmap threshold sits above AlexNet's
    largest tensors (conv1's output and its gradient, 37 MB at batch 32): at 32 MiB they
    were mapped and faulted in afresh at every step, and AlexNet without LRN took 2.15 s a
    training step on 1 thread in a fresh process, 1.37 s at 256 MiB. A line each,
    tab-separated (the module's docstring)."""
    tuned = ("OMP_NUM_THREADS=%d OMP_PROC_BIND=close OMP_PLACES=cores OMP_SCHEDULE=static "
             "OPENBLAS_NUM_THREADS=%d" % (threads, threads))
    glibc = ("MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=17179869184 "
             "MALLOC_TOP_PAD_=1073741824")
    jemalloc = ("LD_PRELOAD=%s MALLOC_CONF=oversize_threshold:1,background_thread:true,"
                "metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"
                % JEMALLOC)
    lines = [
        ("way", "", "shipped", "", "",
         "as shipped: torch.set_num_threads(N), the environment as given"),
        ("way", "-tuned-glibc", "tuned", "--inference-mode", tuned + " " + glibc,
         "tuned as PyTorch's CPU performance guide says, glibc keeping its memory"),
    ]
    if os.access(JEMALLOC, os.R_OK):
        lines.append(("way", "-tuned-jemalloc", "tuned", "--inference-mode",
                      tuned + " " + jemalloc,
                      "tuned as PyTorch's CPU performance guide says, jemalloc"))
    else:
        lines.append(("not-run", "-tuned-jemalloc", "PyTorch tuned with jemalloc not run: %s "
                      "is missing (Debian package libjemalloc2)." % JEMALLOC))
    return ["\t".join(line) for line in lines]


def import_torch():
    """torch, or None when it cannot be imported (absent or broken install). The
    environment is left as cnnbench gives it: the tuned way's OpenMP pinning and allocator
    are read by libgomp and the C library when they load."""
    try:
        import torch  # noqa: WPS433 - optional dependency
        return torch
    except (ImportError, OSError):
        return None


def openblas_kernels():
    """The OpenBLAS kernel set this process runs (openblas_get_corename of the OpenBLAS
    that torch loaded, found in /proc/self/maps), or "unknown"."""
    import ctypes
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line})
    except OSError:
        return "unknown"
    for lib in libs:
        try:
            corename = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        corename.restype = ctypes.c_char_p
        return "%s (%s)" % (corename().decode(), lib)
    return "unknown"


def status_kb(field):
    """A field of /proc/self/status in KiB (VmRSS, VmHWM); 0 when unreadable."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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


def onnx_lrn(torch, lrn):
    """A module computing lrn (a torch.nn.LocalResponseNorm) that exports as ONNX's LRN
    operator. PyTorch 1.13 traces LocalResponseNorm into padding, average pooling and
    powers, which ONNX Runtime would run as a dozen small kernels instead of its own LRN.
    ONNX's LRN divides alpha by size as torch does, so the module's parameters pass as
    they are."""
    class LRN(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # noqa: ARG004 - autograd's signature
            return lrn(x)

        @staticmethod
        def symbolic(g, x):
            return g.op("LRN", x, size_i=lrn.size, alpha_f=lrn.alpha, beta_f=lrn.beta,
                        bias_f=lrn.k)

    class Module(torch.nn.Module):
        def forward(self, x):
            return LRN.apply(x)

    return Module()


def export_onnx(torch, a):
    """--export-onnx: the network as the bench times its forward pass (eval mode: dropout
    is the identity; softmax at the end, as cnnbench's forward ends in [prob]) at --batch,
    initialised as cnnbench's, to the ONNX file a.export_onnx; a line on stdout says what
    exported it."""
    torch.manual_seed(a.seed)
    model, shape, _ = BUILDERS[a.model](torch, a.vars)
    init_like_cnnbench(torch, model)
    for i, layer in enumerate(model):
        if isinstance(layer, torch.nn.LocalResponseNorm):
            model[i] = onnx_lrn(torch, layer)
    net = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
    x = torch.randn(a.batch or DEFAULT_BATCH[a.model], *shape)
    with torch.no_grad(), warnings.catch_warnings():
        # PyTorch 1.13 warns that a symbolic's g.op will move, which is its own business
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(net, x, a.export_onnx, opset_version=ONNX_OPSET,
                          input_names=["data"], output_names=["prob"])
    print("ONNX opset %d exported by PyTorch %s" % (ONNX_OPSET, torch.__version__.split("+")[0]))


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
        description="Time LeNet-5 / AlexNet in PyTorch on the CPU, a step at a time "
                    "as cnnbench asks on standard input.")
    p.add_argument("--check", action="store_true",
                   help="only report whether torch is importable (exit 0) or not (exit 3)")
    p.add_argument("--ways", action="store_true",
                   help="only list the ways of running this peer at --threads, a line each")
    p.add_argument("--export-onnx", metavar="FILE",
                   help="only write the network (eval mode, softmax at the end) to FILE")
    p.add_argument("--model", choices=("lenet5", "alexnet"), default="lenet5")
    p.add_argument("--batch", type=positive_int,
                   help="images per batch (default: 256 for lenet5, 32 for alexnet)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="intra-op threads (torch.set_num_threads); inter-op is 1 (default 1)")
    p.add_argument("--warmup", type=nonneg_int, default=3,
                   help="untimed forward passes and training steps before ready (3)")
    p.add_argument("--var", action="append", default=[], metavar="VAR=VALUE",
                   help="a variable of the model file (repeatable): lenet5 act, pool; "
                        "alexnet channels, classes, act, pool, lrn, dropout")
    p.add_argument("--lr", type=nonneg_float, default=1e-4,
                   help="SGD learning rate (1e-4, as cnnbench's bench)")
    p.add_argument("--momentum", type=nonneg_float, default=0.9, help="SGD momentum (0.9)")
    p.add_argument("--weight-decay", type=nonneg_float, default=5e-4,
                   help="SGD weight decay on the weights, not the biases (5e-4)")
    p.add_argument("--inference-mode", action="store_true",
                   help="the forward pass under torch.inference_mode (default torch.no_grad)")
    p.add_argument("--seed", type=int, default=1, help="seed for weights, input, labels (1)")
    p.add_argument("--name", help="the experiment's name of the model (unused: cnnbench "
                        "names the rows)")
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


def main(argv):
    a = parse_args(argv)
    if a.ways:  # without importing torch, which takes seconds
        if importlib.util.find_spec("torch") is None:
            print("skip " + NO_TORCH_MSG, flush=True)
            return EXIT_NO_TORCH
        print("\n".join(ways(a.threads)), flush=True)
        return 0
    torch = import_torch()
    if a.check:
        if torch is None:
            print("pytorch-peer: " + NO_TORCH_MSG, file=sys.stderr)
            return EXIT_NO_TORCH
        print("pytorch-peer: PyTorch %s is importable (%s, mkldnn %s)"
              % (torch.__version__, sys.executable,
                 "yes" if torch.backends.mkldnn.is_available() else "no"))
        return 0
    if torch is None:
        print("skip " + NO_TORCH_MSG, flush=True)
        return EXIT_NO_TORCH
    if a.export_onnx:
        export_onnx(torch, a)
        return 0

    # Threads first: set_num_interop_threads fails once inter-op work has started.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(a.threads)
    batch = a.batch or DEFAULT_BATCH[a.model]
    version = torch.__version__.split("+")[0]

    torch.manual_seed(a.seed)
    base_kb = status_kb("VmRSS")
    t0 = time.perf_counter()
    model, shape, classes = BUILDERS[a.model](torch, a.vars)
    init_like_cnnbench(torch, model)
    create_ms = (time.perf_counter() - t0) * 1e3

    x = torch.randn(batch, *shape)                      # NCHW float32
    y = torch.randint(0, classes, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()                # softmax + NLL, mean over the batch
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": a.weight_decay},
                           {"params": biases, "weight_decay": 0.0}],
                          lr=a.lr, momentum=a.momentum, dampening=0.0, nesterov=False)
    no_grad = torch.inference_mode if a.inference_mode else torch.no_grad

    def forward():
        model.eval()
        with no_grad():
            torch.softmax(model(x), dim=1)               # cnnbench's forward ends in [prob]

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def timed(step, k):
        t = time.perf_counter()
        for _ in range(k):
            step()
        return (time.perf_counter() - t) / k

    for _ in range(a.warmup):
        forward()
        train_step()
    print("ready backend=pytorch-%s create_ms=%.3f how=%s; OpenBLAS kernels %s"
          % (version, create_ms, "torch.inference_mode" if a.inference_mode
             else "torch.no_grad", openblas_kernels()), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        counts = words[1:] or ["1"]
        if not words or words[0] != "step" or len(counts) > 2 or \
                not all(c.isdigit() and int(c) > 0 for c in counts):
            print("pytorch-peer: unknown command %r (step [F [T]], quit)" % line.strip(),
                  file=sys.stderr)
            return 2
        f, t = int(counts[0]), int(counts[-1])
        fwd, train = timed(forward, f), timed(train_step, t)
        print("step %.9f %.9f %d" % (fwd, train, status_kb("VmHWM") - base_kb), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
