"""tconv against cuDNN: every pass, both precision modes, one process, one card.

    python -m tconv.bench                     every layer of tests/problems.txt tagged bench
    python -m tconv.bench --quick             the shapes tagged `quick`, few reps
    python -m tconv.bench --only 'dcgan-*' --passes forward --modes tf32
    python -m tconv.bench --device cpu        smoke run: shapes shrunk, nothing timed against cuDNN

For each shape, pass (forward, grad_input, grad_weight, forward_backward) and mode (tf32,
fp32) it runs tconv and PyTorch's own operator (cuDNN on a GPU, with
torch.backends.cudnn.allow_tf32 set to the mode) on the same tensors and reports:

- the median time in ms: CUDA events around each call, after warm-up, with the L2 cache
  flushed (a 256 MiB buffer written) before every timed call;
- TFLOP/s from the nominal count 2 * N * C_in * (C_out / groups) * H_in * W_in * kH * kW per
  pass (every tap of every input pixel, also those that padding crops away); grad_weight and
  grad_input do as many multiply-adds as forward, and forward_backward runs forward,
  grad_input, grad_weight and grad_bias, counted as 3 passes (grad_bias is a sum, not counted);
- max |error| against a float64 reference over the whole output, computed in batch chunks
  of at most 1 GiB each (forward_backward reuses the three passes' kernels and is not
  checked again);
- the memory each call needs beyond its inputs: torch.cuda.max_memory_allocated during
  one call, reset before it, minus what was allocated before it (output + workspace);
- the tconv variant that ran (tconv.ops.algorithm).

Data: x ~ U(0, 1) as the seed draws it, grad_y ~ N(0, 1), weight and bias as
nn.ConvTranspose2d initialises them, all from fixed seeds.

Results go to DIR/<date>-<card>[-quick].json, .md and .png (speedup per shape and pass,
both modes); a short table is printed last.  Progress goes to stderr.  The results name the
git commit of the sources; where the tree carries no git metadata of its own (a copy or an
archive of one), set TCONV_GIT_COMMIT to the commit it was made from.
"""
import argparse
import datetime
import fnmatch
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

import tconv

REPO = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one
# tests/problems.txt, the one problem list, shipped inside the package (a link to it in a
# checkout); the benchmark takes its lines tagged bench
SHAPES = Path(__file__).with_name("problems.txt")
PASSES = ("forward", "grad_input", "grad_weight", "forward_backward")
MODES = ("tf32", "fp32")
PASS_FLOP_FACTOR = {"forward": 1, "grad_input": 1, "grad_weight": 1, "forward_backward": 3}
FLUSH_BYTES = 256 << 20
CHUNK_BYTES = 1 << 30

# ---------------------------------------------------------------------------------------
# Shapes


@dataclass(frozen=True)
class Shape:
    """One ConvTranspose2d layer; pairs are (h, w)."""

    name: str
    tags: tuple
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    k: tuple
    s: tuple = (1, 1)
    p: tuple = (0, 0)
    op: tuple = (0, 0)
    d: tuple = (1, 1)
    g: int = 1
    bias: bool = False

    @property
    def out_hw(self):
        return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1
                     for i, s, p, d, k, op in zip((self.h, self.w), self.s, self.p, self.d,
                                                  self.k, self.op))

    @property
    def x_shape(self):
        return (self.n, self.c_in, self.h, self.w)

    @property
    def weight_shape(self):
        return (self.c_in, self.c_out // self.g) + self.k

    @property
    def y_shape(self):
        return (self.n, self.c_out) + self.out_hw

    @property
    def flop(self):
        """Nominal FLOP of one pass: 2 * N * C_in * (C_out/g) * H_in * W_in * kH * kW."""
        return 2 * self.n * self.c_in * (self.c_out // self.g) * self.h * self.w * \
            self.k[0] * self.k[1]

    def geometry(self):
        """stride, padding, output_padding, dilation, groups: the order of tconv.ops."""
        return self.s, self.p, self.op, self.d, self.g

    def descriptor(self):
        def pair(v):
            return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"
        return (f"N={self.n} C_in={self.c_in} C_out={self.c_out} H={self.h} W={self.w} "
                f"k={pair(self.k)} s={pair(self.s)} p={pair(self.p)} op={pair(self.op)} "
                f"d={pair(self.d)} g={self.g} bias={int(self.bias)}")

    def shrunk(self):
        """A tiny shape with the same kernel geometry: batch <= 2, input <= 8x8,
        <= 4 groups of <= 4 channels each (for the CPU smoke run)."""
        g = min(self.g, 4)
        return Shape(self.name, self.tags, min(self.n, 2), g * min(self.c_in // self.g, 4),
                     g * min(self.c_out // self.g, 4), min(self.h, 8), min(self.w, 8),
                     self.k, self.s, self.p, self.op, self.d, g, self.bias)


PAIR_KEYS = {"k": "k", "s": "s", "p": "p", "op": "op", "d": "d"}
INT_KEYS = {"N": "n", "C_in": "c_in", "C_out": "c_out", "H": "h", "W": "w", "g": "g",
            "bias": "bias"}
REQUIRED = ("N", "C_in", "C_out", "H", "W", "k")


def parse_shapes(text, source="shapes"):
    """Shapes from the descriptor format of tests/problems.txt (see bench/README.md)."""
    shapes = []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source}:{lineno}"
        fields, tags = {}, []
        for word in words[1:]:
            key, eq, value = word.partition("=")
            if not eq:
                tags.append(word)
            elif key in PAIR_KEYS:
                parts = value.split("x")
                if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
                    raise ValueError(f"{where}: {word!r}: expected a number or HxW")
                fields[PAIR_KEYS[key]] = (int(parts[0]), int(parts[-1]))
            elif key in INT_KEYS and value.isdigit():
                fields[INT_KEYS[key]] = int(value)
            else:
                raise ValueError(f"{where}: {word!r}: unknown key or not a number")
        missing = [k for k in REQUIRED if (INT_KEYS.get(k) or PAIR_KEYS.get(k)) not in fields]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        fields["bias"] = bool(fields.get("bias", 0))
        shape = Shape(words[0], tuple(tags), **fields)
        check_shape(shape, where)
        shapes.append(shape)
    return shapes


def check_shape(shape, where):
    if shape.g < 1 or shape.c_in % shape.g or shape.c_out % shape.g:
        raise ValueError(f"{where}: groups={shape.g} must divide C_in and C_out")
    if min(shape.out_hw) < 1:
        raise ValueError(f"{where}: output size {shape.out_hw} is empty")
    if any(op >= max(s, d) for op, s, d in zip(shape.op, shape.s, shape.d)):
        raise ValueError(f"{where}: output_padding must be < max(stride, dilation)")


# ---------------------------------------------------------------------------------------
# Timing, memory, errors (shared with tconv.demo)


class Timer:
    """Median-of-reps timing: CUDA events with an L2 flush before each call on a GPU,
    the wall clock on the CPU."""

    def __init__(self, device, reps, warmup):
        self.device = torch.device(device)
        self.reps = reps
        self.warmup = warmup
        self.cuda = self.device.type == "cuda"
        self.flush_buffer = (torch.empty(FLUSH_BYTES // 4, device=self.device)
                             if self.cuda else None)

    def times_ms(self, fn):
        """Milliseconds of each of `reps` calls of fn(), after `warmup` untimed calls."""
        for _ in range(self.warmup):
            fn()
        if not self.cuda:
            times = []
            for _ in range(self.reps):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1e3)
            return times
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(self.reps)]
        for start, end in events:
            self.flush_buffer.zero_()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(self.device)
        return [start.elapsed_time(end) for start, end in events]

    def median_ms(self, fn):
        return statistics.median(self.times_ms(fn))


def measured_call(fn, device):
    """fn()'s result, with the peak bytes allocated during the call and the bytes above
    what was allocated before it (None, None on the CPU)."""
    if torch.device(device).type != "cuda":
        return fn(), None, None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    out = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return out, peak, peak - before


def batch_chunk(*tensors):
    """Batch items per chunk so that float64 copies of one chunk of each tensor stay
    within CHUNK_BYTES (at least 1)."""
    per_item = sum(8 * t[0].numel() for t in tensors)
    return max(1, CHUNK_BYTES // per_item)


def max_errors_chunked(outputs, reference, n, chunk):
    """max |out[i:j] - reference(i, j)| for each of `outputs`, walking the batch in chunks
    so that only one float64 chunk of the reference exists at a time."""
    errors = [0.0] * len(outputs)
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        ref = reference(i, j)
        for index, out in enumerate(outputs):
            errors[index] = max(errors[index], (out[i:j].double() - ref).abs().max().item())
    return errors


def max_errors(outputs, reference):
    return [(out.double() - reference).abs().max().item() for out in outputs]


# ---------------------------------------------------------------------------------------
# The passes on both sides


def aten_backward(shape, grad_y, x, weight, mask):
    """PyTorch's (cuDNN's on a GPU) gradients of conv_transpose2d selected by mask."""
    s, p, op, d, g = shape.geometry()
    return torch.ops.aten.convolution_backward(grad_y, x, weight, None, list(s), list(p),
                                               list(d), True, list(op), g, mask)


def conv_args(shape):
    s, p, op, d, g = shape.geometry()
    return dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)


class Problem:
    """The tensors of one shape and the two implementations of each pass."""

    def __init__(self, shape, device):
        self.shape = shape
        self.device = torch.device(device)
        torch.manual_seed(0)
        module = torch.nn.ConvTranspose2d(shape.c_in, shape.c_out, shape.k, shape.s, shape.p,
                                          shape.op, shape.g, shape.bias, shape.d)
        self.weight = module.weight.detach().to(self.device)
        self.bias = module.bias.detach().to(self.device) if shape.bias else None
        gen = torch.Generator(self.device).manual_seed(1)
        self.x = torch.rand(shape.x_shape, generator=gen, device=self.device)
        self.grad_y = torch.randn(shape.y_shape, generator=gen, device=self.device)

    def tconv_fn(self, pass_, mode):
        s = self.shape
        geometry = s.geometry()
        if pass_ == "forward":
            return lambda: tconv.ops.forward(self.x, self.weight, self.bias, *geometry, mode)
        if pass_ == "grad_input":
            return lambda: tconv.ops.grad_input(self.grad_y, self.weight, (s.h, s.w),
                                                *geometry, mode)
        if pass_ == "grad_weight":
            return lambda: tconv.ops.grad_weight(self.x, self.grad_y, s.k, *geometry, mode)
        return self.autograd_fn(lambda x, w, b: tconv.conv_transpose2d(
            x, w, b, **conv_args(s), precision=mode))

    def baseline_fn(self, pass_):
        s = self.shape
        if pass_ == "forward":
            return lambda: F.conv_transpose2d(self.x, self.weight, self.bias, **conv_args(s))
        if pass_ == "grad_input":
            return lambda: aten_backward(s, self.grad_y, self.x, self.weight,
                                         [True, False, False])[0]
        if pass_ == "grad_weight":
            return lambda: aten_backward(s, self.grad_y, self.x, self.weight,
                                         [False, True, False])[1]
        return self.autograd_fn(lambda x, w, b: F.conv_transpose2d(x, w, b, **conv_args(s)))

    def autograd_fn(self, op):
        """forward then the gradients of x, weight (and bias) through autograd."""
        leaves = [self.x.detach().requires_grad_(), self.weight.detach().requires_grad_()]
        if self.bias is not None:
            leaves.append(self.bias.detach().requires_grad_())

        def run():
            y = op(leaves[0], leaves[1], leaves[2] if len(leaves) == 3 else None)
            return torch.autograd.grad(y, leaves, self.grad_y)
        return run

    def errors(self, pass_, outputs):
        """max |error| of each output of `pass_` against the float64 reference."""
        s = self.shape
        w64 = self.weight.double()
        if pass_ == "forward":
            b64 = self.bias.double() if self.bias is not None else None
            return max_errors_chunked(
                outputs, lambda i, j: F.conv_transpose2d(self.x[i:j].double(), w64, b64,
                                                         **conv_args(s)),
                s.n, batch_chunk(self.x, self.grad_y))
        if pass_ == "grad_input":
            return max_errors_chunked(
                outputs, lambda i, j: aten_backward(s, self.grad_y[i:j].double(),
                                                    self.x[i:j].double(), w64,
                                                    [True, False, False])[0],
                s.n, batch_chunk(self.x, self.grad_y))
        chunk = batch_chunk(self.x, self.grad_y)
        ref = sum(aten_backward(s, self.grad_y[i:i + chunk].double(),
                                self.x[i:i + chunk].double(), w64, [False, True, False])[1]
                  for i in range(0, s.n, chunk))
        return max_errors(outputs, ref)

    def algorithm(self, pass_, mode):
        """The CUDA variant(s) tconv runs; CPU tensors always run the C reference."""
        if self.device.type == "cpu":
            return "cpu_reference"
        s = self.shape
        args = (s.x_shape, s.weight_shape, *s.geometry(), self.x.dtype, mode)
        if pass_ != "forward_backward":
            return tconv.ops.algorithm(pass_, *args)
        names = [tconv.ops.algorithm(p, *args)
                 for p in ("forward", "grad_input", "grad_weight", "grad_bias")]
        return "+".join(names)


# ---------------------------------------------------------------------------------------
# One run


@dataclass
class Record:
    shape: str
    descriptor: str
    pass_: str
    mode: str
    gflop: float
    algorithm: str
    tconv_ms: float = None
    baseline_ms: float = None
    tconv_times_ms: list = field(default_factory=list)
    baseline_times_ms: list = field(default_factory=list)
    tconv_error: float = None
    baseline_error: float = None
    tconv_peak_bytes: int = None
    baseline_peak_bytes: int = None
    tconv_extra_bytes: int = None
    baseline_extra_bytes: int = None

    @property
    def speedup(self):
        if self.tconv_ms and self.baseline_ms:
            return self.baseline_ms / self.tconv_ms
        return None

    def tflops(self, ms):
        return self.gflop / ms if ms else None

    def as_json(self):
        out = asdict(self)
        out["pass"] = out.pop("pass_")
        out["speedup"] = self.speedup
        out["tconv_tflops"] = self.tflops(self.tconv_ms)
        out["baseline_tflops"] = self.tflops(self.baseline_ms)
        return out


def set_tf32(enabled):
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def run_one(problem, pass_, mode, timer, time_baseline):
    shape = problem.shape
    set_tf32(mode == "tf32")
    device = problem.device
    record = Record(shape.name, shape.descriptor(), pass_, mode,
                    PASS_FLOP_FACTOR[pass_] * shape.flop / 1e9,
                    problem.algorithm(pass_, mode))
    ours, theirs = problem.tconv_fn(pass_, mode), problem.baseline_fn(pass_)
    out_ours, record.tconv_peak_bytes, record.tconv_extra_bytes = measured_call(ours, device)
    out_theirs, record.baseline_peak_bytes, record.baseline_extra_bytes = \
        measured_call(theirs, device)
    if pass_ != "forward_backward":
        record.tconv_error, record.baseline_error = problem.errors(pass_, [out_ours, out_theirs])
    del out_ours, out_theirs
    record.tconv_times_ms = timer.times_ms(ours)
    record.tconv_ms = statistics.median(record.tconv_times_ms)
    if time_baseline:
        record.baseline_times_ms = timer.times_ms(theirs)
        record.baseline_ms = statistics.median(record.baseline_times_ms)
    return record


# ---------------------------------------------------------------------------------------
# Environment and reports


def git(*args):
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def driver_version():
    if shutil.which("nvidia-smi") is None:
        return None
    result = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True)
    return result.stdout.split("\n")[0].strip() if result.returncode == 0 else None


def environment(device):
    cuda = device.type == "cuda"
    commit = os.environ.get("TCONV_GIT_COMMIT")
    dirty = False
    if not commit:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "card": torch.cuda.get_device_name(device) if cuda else "CPU",
        "date": datetime.date.today().isoformat(),
        "git_commit": commit + ("-dirty" if dirty else "") if commit else None,
        "tconv": tconv.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "driver": driver_version() if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
    }


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def mib(value):
    return "-" if value is None else f"{value / 2**20:.0f}"


def markdown(records, env, args, baseline_name):
    lines = [f"# tconv vs {baseline_name} - {env['card']}", ""]
    lines += [f"- {key}: {value}" for key, value in env.items() if value is not None]
    lines += [f"- reps: {args.reps} (median), warm-up {args.warmup}",
              "- TFLOP/s: 2*N*C_in*(C_out/g)*H_in*W_in*kH*kW per pass; forward_backward = 3 "
              "passes",
              "- err: max |error| vs float64 over the whole output; forward_backward "
              "reuses the passes' kernels and is not checked",
              "- MiB: memory a call allocates beyond its inputs (output + workspace)", ""]
    b = baseline_name
    header = (f"| shape | pass | tconv ms | {b} ms | speedup | tconv TFLOP/s | {b} TFLOP/s "
              f"| tconv err | {b} err | tconv MiB | {b} MiB | tconv variant |")
    for mode in MODES:
        rows = [r for r in records if r.mode == mode]
        if not rows:
            continue
        lines += [f"## {mode}", "", header, "|" + "---|" * 12]
        lines += [f"| {r.shape} | {r.pass_} | {fmt(r.tconv_ms, '.3f')} | "
                  f"{fmt(r.baseline_ms, '.3f')} | {fmt(r.speedup, '.2f')} | "
                  f"{fmt(r.tflops(r.tconv_ms), '.3g')} | {fmt(r.tflops(r.baseline_ms), '.3g')} | "
                  f"{fmt(r.tconv_error, '.1e')} | {fmt(r.baseline_error, '.1e')} | "
                  f"{mib(r.tconv_extra_bytes)} | {mib(r.baseline_extra_bytes)} | {r.algorithm} |"
                  for r in rows]
        lines.append("")
    shapes = dict((r.shape, r.descriptor) for r in records)
    lines += ["## Shapes", ""] + [f"- `{name}`: {desc}" for name, desc in shapes.items()]
    return "\n".join(lines) + "\n"


def chart(records, env, path):
    """Bars of speedup per shape and pass, from 1x up or down, one panel per mode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    modes = [m for m in MODES if any(r.mode == m and r.speedup for r in records)]
    shapes = list(dict.fromkeys(r.shape for r in records))
    passes = [p for p in PASSES if any(r.pass_ == p for r in records)]
    fig, axes = plt.subplots(len(modes), 1, squeeze=False, sharex=True,
                             figsize=(max(8, 0.9 * len(shapes) + 3), 3.2 * len(modes) + 1))
    width = 0.8 / len(passes)
    for ax, mode in zip(axes[:, 0], modes):
        for index, pass_ in enumerate(passes):
            by_shape = {r.shape: r.speedup for r in records if r.mode == mode and r.pass_ == pass_}
            xs = [i + (index - (len(passes) - 1) / 2) * width for i in range(len(shapes))]
            ax.bar(xs, [(by_shape.get(s) or 1) - 1 for s in shapes], width, bottom=1,
                   label=pass_)
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_ylabel(f"{mode}: cuDNN ms / tconv ms")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(f"tconv speedup over cuDNN - {env['card']}, {env['date']}")
    axes[-1, 0].set_xticks(range(len(shapes)), shapes, rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(records, baseline_name):
    """The short table printed last: ms of each side and the speedup, modes side by side."""
    modes = [m for m in MODES if any(r.mode == m for r in records)]
    by_key = {(r.shape, r.pass_, r.mode): r for r in records}
    keys = list(dict.fromkeys((r.shape, r.pass_) for r in records))
    name_w = max([len("shape")] + [len(k[0]) for k in keys])
    columns = f"{'tconv ms':>10} {baseline_name + ' ms':>12} {'speedup':>7}"
    lines = [f"{'':<{name_w}}  {'':<16}" + "".join(f"  | {m:^{len(columns)}}" for m in modes),
             f"{'shape':<{name_w}}  {'pass':<16}" + f"  | {columns}" * len(modes)]
    for shape, pass_ in keys:
        line = f"{shape:<{name_w}}  {pass_:<16}"
        for mode in modes:
            r = by_key.get((shape, pass_, mode))
            values = (r.tconv_ms, r.baseline_ms, r.speedup) if r else (None, None, None)
            line += "  | " + " ".join(fmt(v, f"{w}.{d}f").rjust(w)
                                      for v, w, d in zip(values, (10, 12, 7), (3, 3, 2)))
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


def default_out():
    checkout = REPO / "bench" / "results"
    return checkout if checkout.is_dir() else Path("bench-results")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tconv.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=Path, default=SHAPES,
                        help="descriptor file (default tests/problems.txt, which the package "
                             "ships: its lines tagged bench; a file without that tag: every line)")
    parser.add_argument("--only", default=None,
                        help="comma-separated name patterns (fnmatch) of the shapes to run")
    parser.add_argument("--quick", action="store_true",
                        help="only shapes tagged quick, 5 reps, 1 warm-up")
    parser.add_argument("--passes", default=",".join(PASSES))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--reps", type=int, default=None, help="timed calls (default 30)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls (default 3)")
    parser.add_argument("--out", type=Path, default=default_out(),
                        help="results folder (default bench/results in a checkout, else "
                             "./bench-results)")
    parser.add_argument("--host-overhead", action="store_true",
                        help="only the host time per call of a tiny layer (N 1, 8 -> 8 channels, "
                             "8x8, k3) through tconv and through PyTorch's own operator")
    parser.add_argument("--device", default=None,
                        help="cuda (default when present) or cpu: a smoke run on shrunk "
                             "shapes, without timing the baseline")
    args = parser.parse_args(argv)
    args.reps = args.reps or (5 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.passes = [p for p in args.passes.split(",") if p]
    args.modes = [m for m in args.modes.split(",") if m]
    for value, allowed, what in ((args.passes, PASSES, "--passes"), (args.modes, MODES, "--modes")):
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            parser.error(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return args


def select_shapes(args, cpu):
    shapes = parse_shapes(args.shapes.read_text(), args.shapes.name)
    if any("bench" in s.tags for s in shapes):
        shapes = [s for s in shapes if "bench" in s.tags]
    if args.quick:
        shapes = [s for s in shapes if "quick" in s.tags]
    if args.only:
        patterns = args.only.split(",")
        shapes = [s for s in shapes if any(fnmatch.fnmatch(s.name, p) for p in patterns)]
    if cpu:
        shapes = [s.shrunk() for s in shapes]
        for shape in shapes:
            check_shape(shape, f"{shape.name} (shrunk for the CPU)")
    return shapes


def log(text):
    print(text, file=sys.stderr, flush=True)


def pick_device(requested):
    """The device asked for, else cuda when torch sees a GPU, else cpu; exits with a clear
    message when tconv cannot run there."""
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not tconv.ops.cuda_available():
        sys.exit("tconv was built without CUDA kernels: rebuild it where nvcc is found "
                 "(python setup.py build_ext --inplace), or pass --device cpu")
    return device


def run_all(shapes, args, device):
    """Records of every shape x pass x mode, with progress on stderr."""
    cpu = device.type == "cpu"
    timer = Timer(device, args.reps, args.warmup)
    records, steps = [], len(shapes) * len(args.passes) * len(args.modes)
    start = time.perf_counter()
    saved_tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    for shape in shapes:
        problem = Problem(shape, device)
        for pass_ in args.passes:
            for mode in args.modes:
                elapsed = time.perf_counter() - start
                left = (f", about {elapsed / len(records) * (steps - len(records)) / 60:.0f} "
                        "min left" if records else "")
                log(f"[{len(records) + 1}/{steps} {elapsed:.0f}s{left}] "
                    f"{shape.name} {pass_} {mode} ...")
                record = run_one(problem, pass_, mode, timer, not cpu)
                log(f"    tconv {fmt(record.tconv_ms, '.3f')} ms ({record.algorithm}), "
                    f"baseline {fmt(record.baseline_ms, '.3f')} ms, "
                    f"speedup {fmt(record.speedup, '.2f')}, max|err| "
                    f"{fmt(record.tconv_error, '.1e')} vs {fmt(record.baseline_error, '.1e')}")
                records.append(record)
        del problem
        if not cpu:
            torch.cuda.empty_cache()
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved_tf32
    return records


def write_reports(records, env, args, baseline_name, draw_chart):
    """DIR/<date>-<card>[-quick].json, .md and (with a baseline timed) .png; their paths."""
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (f"{env['date']}-{slug(env['card'])}" + ("-quick" if args.quick else ""))
    report = {"environment": env, "baseline": baseline_name, "reps": args.reps,
              "warmup": args.warmup, "records": [r.as_json() for r in records]}
    written = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    written[0].write_text(json.dumps(report, indent=1) + "\n")
    written[1].write_text(markdown(records, env, args, baseline_name))
    if draw_chart and any(r.speedup for r in records):
        written.append(stem.with_suffix(".png"))
        chart(records, env, written[-1])
    return written


def host_overhead(device, calls=5000):
    """Microseconds of host time per call of a tiny layer, issued back to back (the GPU's work
    is a few microseconds, so the host sets the pace): forward alone and forward + backward,
    through tconv.conv_transpose2d and through torch.nn.functional.conv_transpose2d (cuDNN),
    in the same process.  Lines of a Markdown table."""
    import torch.nn.functional as F

    x = torch.randn(1, 8, 8, 8, device=device)
    weight = torch.randn(8, 8, 3, 3, device=device)
    xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
    rows = ["| call | forward (us) | forward + backward (us) |", "|---|---|---|"]
    for name, fn in (("tconv.conv_transpose2d", tconv.conv_transpose2d),
                     ("F.conv_transpose2d (cuDNN)", F.conv_transpose2d)):
        times = []
        for backward in (False, True):
            def call():
                if backward:
                    fn(xg, wg).sum().backward()
                else:
                    with torch.no_grad():
                        fn(x, weight)
            for _ in range(50):
                call()
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                call()
            torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) / calls * 1e6)
        rows.append(f"| {name} | {times[0]:.1f} | {times[1]:.1f} |")
    return rows


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    cpu = device.type == "cpu"
    if args.host_overhead:
        if cpu:
            log("--host-overhead measures CUDA calls: it needs a GPU")
            return 1
        env = environment(device)
        rows = [f"# Host time per call, {env.get('card')}", "",
                "  ".join(f"{k} {v}" for k, v in env.items() if v is not None), ""] + host_overhead(device)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "host-overhead.md"
        path.write_text("\n".join(rows) + "\n")
        print("\n".join(rows))
        log(f"wrote {path}")
        return 0
    if cpu:
        log("tconv.bench on the CPU: a smoke run on shapes shrunk to batch <= 2, input <= 8x8, "
            "<= 4 groups of <= 4 channels; PyTorch's CPU operator is checked for error but "
            "not timed.  Timings here say nothing about the GPU.")
    draw_chart = importlib.util.find_spec("matplotlib") is not None
    if not draw_chart:
        log("matplotlib is missing: no PNG chart (pip install matplotlib)")
    shapes = select_shapes(args, cpu)
    if not shapes:
        log("no shapes selected")
        return 1
    baseline_name = "torch-cpu" if cpu else "cuDNN"
    env = environment(device)
    log("  ".join(f"{k} {v}" for k, v in env.items() if v is not None))
    records = run_all(shapes, args, device)
    written = write_reports(records, env, args, baseline_name, draw_chart)
    log("wrote " + ", ".join(str(p) for p in written))
    print(summary(records, baseline_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
