"""Random transposed-convolution problems through tconv's autograd path, every output checked
element by element against float64:  python -m tconv.fuzz

    python -m tconv.fuzz --count 10000 --seed 7 --device cuda --every-variant
    python -m tconv.fuzz --count 1000 --nonfinite 1         # inf and NaN injected into each problem
    python -m tconv.fuzz --count 200 --device cpu --dtypes fp32,float64
    python -m tconv.fuzz --device cuda --replay 'n=2 c_in=4 ...'   # one problem, as a failure printed it

The problems.  Batch 1-8 (sometimes one unbatched (C, H, W) input), dense, grouped and
depthwise channel layouts with 1-64 channels per group, kernels 1-9 on each axis (one in ten
up to 64), strides 1-8 (one in ten up to 32), dilation 1-4, padding from none to as much as
leaves one output row, any valid output_padding, images 1x1 to 256x256, bias or none, every
dtype: float32 in fp32 and in tf32 mode (given as `precision` or through
torch.backends.cudnn.allow_tf32), float64, float16 and bfloat16.  Each of x, weight, bias and
grad_y is laid out contiguously, channels_last, with H and W swapped in memory, as every
other element of a larger buffer, or contiguously from a storage offset of 1-7 elements (an
odd alignment); the gaps of the strided and offset buffers hold NaN, so that reading them
shows.  Values are normal (x sometimes uniform in [0, 1)), now and then scaled by a power of
two (up to 2^+-20; 2^+-6 in float16, where outputs may then overflow).  Sizes are cut until a
pass is at most 2^26 multiply-adds and a tensor at most 2^21 elements (milliseconds on a
GPU); `--device cpu` draws small problems (2^14 multiply-adds), which tconv's C reference
runs.  Problem i of a run is drawn from Random("<seed>:<i>") alone, and printed, when it
fails, as a `--replay` line that holds every choice, the data's seed among them.

Each problem runs tconv.conv_transpose2d on leaves that require grad, then backward with a
random grad_y: y, grad_x, grad_weight and grad_bias are checked.  `--every-variant` also runs
each CUDA variant that accepts the problem, forced by name through tconv.ops.

The reference never uses tconv: torch's own float64 conv_transpose2d and its autograd, on the
same device, over the operands as tconv multiplies them (the values of the dtype; in tf32
mode on CUDA, x, weight and grad_y rounded to nearest TF32, ties away, which is the contract
of that mode; the bias and grad_bias only add).  The same computation over the operands'
absolute values gives m = sum |a_i b_i| (+ |bias|) for each output element: an upper bound
of every partial sum of that element, in whatever order a kernel adds.  Each element must
satisfy

    |got - ref| <= u_out |ref| + (u_acc + 2^-53) (32 + 4 sqrt(k)) m + tiny

  u_out |ref|   rounding the result once to the output dtype (u_out = 2^-11 float16, 2^-8
                bfloat16, 2^-24 float32, 2^-53 float64);
  u_acc         the unit roundoff of the accumulation: 2^-24 (float32, float16, bfloat16),
                2^-53 (float64); 2^-53 more for the reference's own rounding;
  32            errors of each product, whatever k: an FMA's rounding, the 3xTF32 and 3xFP16
                splits of fp32 mode (22 significant bits kept of each operand and the lo*lo
                product dropped: about 8 u per product), a final rounding of partial sums;
                summed over the terms, at most 32 u m;
  4 sqrt(k)     the rounding of the k-term sum (k: C_in/groups*kH*kW (+1 with bias) for y,
                C_out/groups*kH*kW for grad_x, N*H_in*W_in for grad_weight, N*H_out*W_out for
                grad_bias).  The worst case of any order, (k - 1) u m, needs every partial
                sum as large as m; here every product has a random sign (weight, bias and
                grad_y have mean 0), so partial sums s_j grow like sqrt(j) typical terms and
                even roundings that all go one way (tensor cores truncate) add up to
                sum_j 2u|s_j|, about 1.7 sqrt(k) u m: 4 sqrt(k) leaves room for its spread;
  tiny          underflow: half the output dtype's smallest subnormal, plus k times the
                accumulator's smallest normal (a kernel may flush subnormals).

The bound scales with m, the size of the terms, not with |ref|: where terms cancel, ref is
small but its rounding errors are not, and the bound keeps them (cancellation cannot fake an
error).  No term scales with the tensor's largest element: a small element among large ones
keeps its own tight bound (a wrong small element is not hidden).  A wrong, missing or doubled
term moves an element by about m/k, which the bound catches for float32 up to k of several
thousand.  fp16/bfloat16 (and any) results must be inf, of ref's sign, where ref - bound
already rounds past the dtype's largest value, may be inf where ref + bound does, and must be
finite otherwise.

`--nonfinite RATE` injects, into that fraction of problems, 1-4 values among inf, -inf and
NaN into one of x, weight or grad_y (now and then zeroing a plane of an operand they meet, for
0 * inf).  Then every element must be NaN, +inf, -inf or finite exactly as IEEE arithmetic on
the same operands puts it: NaN where a term is NaN (a NaN operand, or 0 * inf) or where +inf
and -inf terms meet, else +-inf where an infinite term is (of its sign), else finite and
within the bound above (computed with the non-finite operands set to 0, which none of those
elements meets).  Which terms meet is counted by torch's float64 passes over 0/1 indicator
tensors of the operands, not by any convolution that could multiply a padded 0 with an inf.

Prints the seed first, every failure as one line ending in its replay command, and a summary
(problems per dtype, non-finite elements expected, the CUDA variants that ran); exits 1 if
any problem failed.
"""
import argparse
import contextlib
import dataclasses
import math
import os
import random
import sys
import time
from collections import Counter

import torch
import torch.nn.functional as F

import tconv
from tconv import ops

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "float64": torch.float64,
          "float16": torch.float16, "bfloat16": torch.bfloat16}
# unit roundoff of the stored result, and of the accumulation
UNIT_OUT = {torch.float32: 2.0**-24, torch.float64: 2.0**-53, torch.float16: 2.0**-11,
            torch.bfloat16: 2.0**-8}
UNIT_ACC = {torch.float32: 2.0**-24, torch.float64: 2.0**-53, torch.float16: 2.0**-24,
            torch.bfloat16: 2.0**-24}
UNIT_REF = 2.0**-53
PER_PRODUCT, PER_SQRT_TERM = 32.0, 4.0
PASSES = ("forward", "grad_input", "grad_weight", "grad_bias")
OUTPUTS = {"forward": "y", "grad_input": "grad_x", "grad_weight": "grad_weight",
           "grad_bias": "grad_bias"}
TENSORS = ("x", "weight", "bias", "grad_y")

# size limits: full on a GPU, small for the C reference on the CPU
PROFILES = {
    "full": dict(batch=8, per_group=64, groups=8, kernel=9, kernel_rare=64, stride=8,
                 stride_rare=32, dilation=4, side=256, macs=1 << 26, elems=1 << 21),
    "small": dict(batch=3, per_group=6, groups=3, kernel=4, kernel_rare=7, stride=3,
                  stride_rare=6, dilation=3, side=12, macs=1 << 14, elems=1 << 12),
}


# ---- one problem, as a line of text ----

def _pair(text):
    h, w = text.split("x")
    return int(h), int(w)


def _four(text, parse=str):
    values = tuple(parse(v) for v in text.split(","))
    if len(values) != 4:
        raise ValueError(f"expected 4 comma-separated values (x, weight, bias, grad_y), got {text!r}")
    return values


@dataclasses.dataclass
class Problem:
    """Every choice of one fuzz problem; str() is its --replay line, Problem.parse() reads it."""
    n: int
    c_in: int
    c_out: int
    groups: int
    input: tuple        # (H_in, W_in)
    kernel: tuple
    stride: tuple
    padding: tuple
    output_padding: tuple
    dilation: tuple
    bias: bool
    unbatched: bool     # x is (C_in, H_in, W_in), n == 1
    dtype: str          # a key of DTYPES
    via_flag: bool      # fp32/tf32 chosen by torch.backends.cudnn.allow_tf32, not `precision`
    layouts: tuple      # of x, weight, bias, grad_y: c, cl, t, s, o1..o7 (see lay_out)
    scales: tuple       # powers of two of x, weight, bias, grad_y
    x_uniform: bool     # x uniform in [0, 1) instead of normal
    inject: str         # "none" or "<tensor>:<count>[z]": non-finite values (z: zero planes too)
    data: int           # the seed of the tensors' values

    FORMATS = {"input": (_pair, "{0}x{1}"), "kernel": (_pair, "{0}x{1}"),
               "stride": (_pair, "{0}x{1}"), "padding": (_pair, "{0}x{1}"),
               "output_padding": (_pair, "{0}x{1}"), "dilation": (_pair, "{0}x{1}"),
               "layouts": (_four, "{0},{1},{2},{3}"),
               "scales": (lambda t: _four(t, int), "{0},{1},{2},{3}")}

    def __str__(self):
        words = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in self.FORMATS:
                text = self.FORMATS[field.name][1].format(*value)
            elif isinstance(value, bool):
                text = str(int(value))
            else:
                text = str(value)
            words.append(f"{field.name}={text}")
        return " ".join(words)

    @classmethod
    def parse(cls, line):
        given = dict(word.split("=", 1) for word in line.split())
        names = [f.name for f in dataclasses.fields(cls)]
        if sorted(given) != sorted(names):
            raise ValueError(f"a problem needs exactly the fields {names}, got {sorted(given)}")
        values = {}
        for field in dataclasses.fields(cls):
            text = given[field.name]
            if field.name in cls.FORMATS:
                values[field.name] = cls.FORMATS[field.name][0](text)
            elif field.type in ("bool", bool):
                values[field.name] = bool(int(text))
            elif field.type in ("int", int):
                values[field.name] = int(text)
            else:
                values[field.name] = text
        problem = cls(**values)
        if problem.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {problem.dtype!r}")
        return problem

    # derived sizes
    @property
    def output(self):
        return tuple(out_size(*a) for a in zip(self.input, self.kernel, self.stride, self.padding,
                                               self.output_padding, self.dilation))

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    def shapes(self):
        """The 4-D shapes of x, weight, bias and grad_y."""
        return {"x": (self.n, self.c_in) + self.input,
                "weight": (self.c_in, self.c_out // self.groups) + self.kernel,
                "bias": (self.c_out,),
                "grad_y": (self.n, self.c_out) + self.output}

    def geometry(self):
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)

    def terms(self):
        """k of each pass: the number of terms behind one output element."""
        taps = self.kernel[0] * self.kernel[1]
        return {"forward": self.c_in // self.groups * taps + int(self.bias),
                "grad_input": self.c_out // self.groups * taps,
                "grad_weight": self.n * self.input[0] * self.input[1],
                "grad_bias": self.n * self.output[0] * self.output[1]}

    def macs(self):
        return (self.n * self.c_in * self.c_out // self.groups * self.kernel[0] * self.kernel[1]
                * self.input[0] * self.input[1])


def out_size(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def unravel(flat_index, shape):
    """The index tuple of element flat_index of a contiguous tensor of `shape`."""
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(index))


# ---- drawing problems ----

def _log_uniform(rng, lo, hi):
    """An int in [lo, hi], small values as likely as large ones by order of magnitude."""
    return min(hi, max(lo, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))


def _side(rng, common, rare, rare_top):
    """1..common, one time in ten common+1..rare_top."""
    if rng.random() < 0.1 and rare_top > common:
        return rng.randint(common + 1, rare_top)
    return rng.randint(1, common) if rare else _log_uniform(rng, 1, common)


def _axes(rng, draw, square):
    first = draw()
    return (first, first) if rng.random() < square else (first, draw())


def _max_padding(size, kernel, stride, output_padding, dilation):
    """The largest padding that leaves at least one output row."""
    return ((size - 1) * stride + dilation * (kernel - 1) + output_padding) // 2


def _fits(p, limits):
    shapes = p.shapes()
    elems = max(math.prod(shapes["x"]), math.prod(shapes["weight"]), math.prod(shapes["grad_y"]))
    return p.macs() <= limits["macs"] and elems <= limits["elems"]


def _halve_larger(pair):
    a, b = pair
    return ((a + 1) // 2, b) if a >= b else (a, (b + 1) // 2)


def _shrink(p, limits):
    """Halves sizes until p is within the limits, keeping every argument valid: first the image
    down to 16, the batch, channels down to 4 a group and groups down to 2, then the image,
    channels and groups down to 1, and only then the kernel, stride and dilation (so that large
    kernels stay, over few channels)."""
    while not _fits(p, limits):
        cig, cog = p.c_in // p.groups, p.c_out // p.groups
        if max(p.input) > 16:
            p.input = _halve_larger(p.input)
        elif p.n > 1:
            p.n = (p.n + 1) // 2
        elif max(cig, cog) > 4:
            cig, cog = _halve_larger((cig, cog))
        elif p.groups > 2:
            p.groups = (p.groups + 1) // 2
        elif max(p.input) > 1:
            p.input = _halve_larger(p.input)
        elif max(cig, cog) > 1:
            cig, cog = _halve_larger((cig, cog))
        elif p.groups > 1:
            p.groups = 1
        elif max(p.kernel) > 1:
            p.kernel = _halve_larger(p.kernel)
        else:
            p.stride = tuple((s + 1) // 2 for s in p.stride)
            p.dilation = tuple((d + 1) // 2 for d in p.dilation)
        p.c_in, p.c_out = cig * p.groups, cog * p.groups
        p.output_padding = tuple(min(op, max(s, d) - 1) for op, s, d
                                 in zip(p.output_padding, p.stride, p.dilation))
        p.padding = tuple(min(pad, _max_padding(*a)) for pad, a in
                          zip(p.padding, zip(p.input, p.kernel, p.stride, p.output_padding,
                                             p.dilation)))


LAYOUTS_4D = ("cl", "t", "s", "o")
LAYOUTS_1D = ("s", "o")


def _layout(rng, dims):
    if rng.random() < 0.5:
        return "c"
    kind = rng.choice(LAYOUTS_4D if dims == 4 else LAYOUTS_1D)
    return f"o{rng.randint(1, 7)}" if kind == "o" else kind


def draw_problem(rng, limits, dtypes, nonfinite):
    """One random valid problem within `limits` (a PROFILES entry)."""
    kind = rng.choice(("dense",) * 4 + ("grouped",) * 3 + ("depthwise",) * 3)
    if kind == "dense":
        groups, cig, cog = 1, _log_uniform(rng, 1, limits["per_group"]), _log_uniform(rng, 1, limits["per_group"])
    elif kind == "grouped":
        groups = rng.randint(2, limits["groups"])
        cig, cog = _log_uniform(rng, 1, limits["per_group"]), _log_uniform(rng, 1, limits["per_group"])
    else:
        groups, cig, cog = _log_uniform(rng, 1, limits["per_group"]), 1, rng.choice((1, 1, 2, 3))
    kernel = _axes(rng, lambda: _side(rng, limits["kernel"], True, limits["kernel_rare"]), 0.5)
    stride = _axes(rng, lambda: _side(rng, limits["stride"], False, limits["stride_rare"]), 0.6)
    dilation = _axes(rng, lambda: 1 if rng.random() < 0.5 else rng.randint(1, limits["dilation"]), 0.6)
    output_padding = tuple(0 if rng.random() < 0.5 else rng.randint(0, max(s, d) - 1)
                           for s, d in zip(stride, dilation))
    size = _axes(rng, lambda: _log_uniform(rng, 1, limits["side"]), 0.4)
    n = _log_uniform(rng, 1, limits["batch"])
    dtype = rng.choice(dtypes)
    scale_range = 6 if dtype == "float16" else 20
    p = Problem(n=n, c_in=groups * cig, c_out=groups * cog, groups=groups, input=size,
                kernel=kernel, stride=stride, padding=(0, 0), output_padding=output_padding,
                dilation=dilation, bias=rng.random() < 0.7, unbatched=False, dtype=dtype,
                via_flag=dtype in ("fp32", "tf32") and rng.random() < 0.3,
                layouts=(_layout(rng, 4), _layout(rng, 4), _layout(rng, 1), _layout(rng, 4)),
                scales=tuple(0 if rng.random() < 0.8 else rng.randint(-scale_range, scale_range)
                             for _ in TENSORS),
                x_uniform=rng.random() < 0.25, inject="none", data=rng.getrandbits(63))
    padding = []
    for axis in range(2):
        reach = dilation[axis] * (kernel[axis] - 1)
        top = _max_padding(size[axis], kernel[axis], stride[axis], output_padding[axis], dilation[axis])
        r = rng.random()
        padding.append(0 if r < 0.2 else rng.randint(0, min(reach, top)) if r < 0.8 else rng.randint(0, top))
    p.padding = tuple(padding)
    _shrink(p, limits)
    if p.n == 1 and rng.random() < 0.1:
        p.unbatched = True
        p.layouts = tuple("c" if name == "cl" else name for name in p.layouts)
    if rng.random() < nonfinite:
        p.inject = f"{rng.choice(('x', 'weight', 'grad_y'))}:{rng.randint(1, 4)}{'z' if rng.random() < 0.5 else ''}"
    return p


def problems(seed, count, limits, dtypes, nonfinite):
    """Problem i drawn from Random("<seed>:<i>") alone."""
    for i in range(count):
        yield draw_problem(random.Random(f"{seed}:{i}"), limits, dtypes, nonfinite)


# ---- the tensors of a problem ----

def lay_out(t, layout):
    """t (contiguous) in the memory layout named `layout`: c as it is, cl channels_last, t with
    H and W swapped in memory, s every other element of a buffer twice as wide, oK starting K
    elements into its buffer.  Gaps hold NaN."""
    if layout == "c":
        return t
    if layout == "cl":
        return t.to(memory_format=torch.channels_last)
    if layout == "t":
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "s":
        wide = torch.full(t.shape[:-1] + (2 * t.shape[-1],), float("nan"), dtype=t.dtype, device=t.device)
        wide[..., ::2] = t
        return wide[..., ::2]
    if layout.startswith("o"):
        offset = int(layout[1:])
        flat = torch.full((t.numel() + offset,), float("nan"), dtype=t.dtype, device=t.device)
        flat[offset:] = t.reshape(-1)
        return flat[offset:].view(t.shape)
    raise ValueError(f"unknown layout {layout!r}")


def _inject(values, p, gen):
    """Writes p.inject's inf/-inf/NaN values (and zero planes) into the float64 values."""
    if p.inject == "none":
        return
    target, spec = p.inject.split(":")
    count, zero_planes = int(spec.rstrip("z")), spec.endswith("z")
    t = values[target]
    kinds = (float("inf"), float("-inf"), float("nan"))
    flat = t.view(-1)
    places = torch.randint(0, flat.numel(), (count,), generator=gen)
    choice = torch.randint(0, 3, (count,), generator=gen)
    for place, kind in zip(places.tolist(), choice.tolist()):
        flat[place] = kinds[kind]
    if not zero_planes:
        return
    cig, cog = p.c_in // p.groups, p.c_out // p.groups
    pick = lambda top: int(torch.randint(0, top, (1,), generator=gen))
    # a plane of each operand that meets the first injected value in some term
    index = unravel(int(places[0]), t.shape)
    if target == "x":
        ci = int(index[1])
        values["weight"][ci, pick(cog)] = 0
    elif target == "weight":
        ci, co = int(index[0]), int(index[1])
        values["x"][pick(p.n), ci] = 0
        values["grad_y"][pick(p.n), ci // cig * cog + co] = 0
    else:
        n, c = int(index[0]), int(index[1])
        group = c // cog
        values["weight"][group * cig + pick(cig), c % cog] = 0
        values["x"][n, group * cig + pick(cig)] = 0


def make_tensors(p, device):
    """x, weight, bias (None without), grad_y of p: `stored` holds them contiguous, 4-D, in
    the dtype; `given` as the call gets them (p's layouts, 3-D when unbatched)."""
    gen = torch.Generator().manual_seed(p.data)
    values = {}
    for name, shape in p.shapes().items():
        if name == "x" and p.x_uniform:
            v = torch.rand(shape, generator=gen, dtype=torch.float64)
        else:
            v = torch.randn(shape, generator=gen, dtype=torch.float64)
        values[name] = v * 2.0 ** p.scales[TENSORS.index(name)]
    _inject(values, p, gen)
    stored = {name: v.to(p.torch_dtype).to(device) for name, v in values.items()}
    if not p.bias:
        stored["bias"] = None
    given = {}
    for name, layout in zip(TENSORS, p.layouts):
        t = stored[name]
        if t is not None and p.unbatched and name in ("x", "grad_y"):
            t = t[0]
        given[name] = None if t is None else lay_out(t, layout)
    return stored, given


# ---- the reference ----

def round_tf32(t):
    """float32 t rounded to nearest TF32 (10 mantissa bits), ties away from zero: half of the
    13 dropped bits added to the magnitude's bits, then cleared (infinities and NaN stay)."""
    bits = t.contiguous().view(torch.int32)
    rounded = ((bits + 0x1000) & ~0x1FFF).view(torch.float32)
    return torch.where(torch.isfinite(t), rounded, t)


def tf32_rounds(p, device):
    """Whether tconv multiplies TF32-rounded operands: float32 in tf32 mode on CUDA (the C
    reference on the CPU computes float32 exactly, whatever the mode)."""
    return p.dtype == "tf32" and torch.device(device).type == "cuda"


def passes(p, x, weight, bias, grad_y):
    """y, grad_x, grad_weight, grad_bias by torch in float64 (x, weight, grad_y 4-D)."""
    x = x.detach().requires_grad_()
    weight = weight.detach().requires_grad_()
    y = F.conv_transpose2d(x, weight, bias, **p.geometry())
    grad_x, grad_weight = torch.autograd.grad(y, (x, weight), grad_y)
    return {"forward": y.detach(), "grad_input": grad_x, "grad_weight": grad_weight,
            "grad_bias": grad_y.sum((0, 2, 3))}


def _term_counts(p, a, b, pass_):
    """For each output element of pass_, how many of its terms pair a 1 of a with a 1 of b
    (0/1 float64 indicators of the pass's two operands)."""
    zeros = {name: torch.zeros(shape, dtype=torch.float64, device=a.device)
             for name, shape in p.shapes().items()}
    if pass_ == "forward":
        return passes(p, a, b, None, zeros["grad_y"])["forward"]
    if pass_ == "grad_input":
        return passes(p, zeros["x"], b, None, a)["grad_input"]
    return passes(p, a, zeros["weight"], None, b)["grad_weight"]


def _classes(p, a, b, pass_):
    """(nan, +inf, -inf) masks of the IEEE sum of products a_i * b_i of pass_."""
    ind = lambda mask: mask.to(torch.float64)
    inf_a, inf_b = torch.isinf(a), torch.isinf(b)
    ones_a, ones_b = torch.ones_like(a), torch.ones_like(b)
    count = lambda u, v: _term_counts(p, u, v, pass_)
    nan = (count(ind(torch.isnan(a)), ones_b) + count(ones_a, ind(torch.isnan(b)))
           + count(ind(inf_a), ind(b == 0)) + count(ind(a == 0), ind(inf_b)))
    pa, ma, pb, mb = ind(a == math.inf), ind(a == -math.inf), ind(b == math.inf), ind(b == -math.inf)
    pos_a, neg_a, pos_b, neg_b = ind(a > 0), ind(a < 0), ind(b > 0), ind(b < 0)
    plus = count(pa, pos_b) + count(ma, neg_b) + count(pos_a, pb) + count(neg_a, mb)
    minus = count(pa, neg_b) + count(ma, pos_b) + count(pos_a, mb) + count(neg_a, pb)
    nan, plus, minus = nan > 0.5, plus > 0.5, minus > 0.5
    return nan | (plus & minus), plus & ~minus & ~nan, minus & ~plus & ~nan


def _grad_bias_classes(grad_y):
    some = lambda mask: mask.sum((0, 2, 3)) > 0
    nan, plus, minus = some(torch.isnan(grad_y)), some(grad_y == math.inf), some(grad_y == -math.inf)
    return nan | (plus & minus), plus & ~minus & ~nan, minus & ~plus & ~nan


@dataclasses.dataclass
class Reference:
    value: dict       # pass -> float64 tensor (non-finite operands counted as 0)
    magnitude: dict   # pass -> the same over absolute values
    classes: dict     # pass -> (nan, +inf, -inf) masks, or None without injected values
    terms: dict       # pass -> k


def reference(p, stored, device):
    """The float64 reference of every pass of p from its stored tensors."""
    wide = {name: None if t is None else t.to(device=device, dtype=torch.float64)
            for name, t in stored.items()}
    if tf32_rounds(p, device):
        operands = {name: None if t is None or name == "bias" else round_tf32(t.to(device)).double()
                    for name, t in stored.items()}
        operands["bias"] = wide["bias"]
    else:
        operands = dict(wide)
    finite = {name: None if t is None else torch.where(torch.isfinite(t), t, torch.zeros_like(t))
              for name, t in operands.items()}
    value = passes(p, finite["x"], finite["weight"], finite["bias"], finite["grad_y"])
    magnitude = passes(p, *(None if finite[n] is None else finite[n].abs() for n in TENSORS))
    # grad_bias only adds: grad_y as stored, not TF32-rounded
    grad_y = torch.where(torch.isfinite(wide["grad_y"]), wide["grad_y"], torch.zeros_like(wide["grad_y"]))
    value["grad_bias"], magnitude["grad_bias"] = grad_y.sum((0, 2, 3)), grad_y.abs().sum((0, 2, 3))
    classes = None
    if p.inject != "none":
        pairs = {"forward": ("x", "weight"), "grad_input": ("grad_y", "weight"),
                 "grad_weight": ("x", "grad_y")}
        classes = {pass_: _classes(p, operands[a], operands[b], pass_) for pass_, (a, b) in pairs.items()}
        classes["grad_bias"] = _grad_bias_classes(wide["grad_y"])
    return Reference(value, magnitude, classes, p.terms())


# ---- the check ----

def overflow_threshold(dtype):
    """The smallest magnitude that rounds to inf in dtype: its largest value plus half an ulp."""
    info = torch.finfo(dtype)
    exponent = math.frexp(info.max)[1]
    return info.max + 2.0 ** (exponent - 2) * info.eps


def bound(dtype, ref, magnitude, k):
    """The error bound of each element (see the module's docstring)."""
    tiny = torch.finfo(dtype).smallest_normal * torch.finfo(dtype).eps / 2  # half the least subnormal
    acc_tiny = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).smallest_normal
    return (UNIT_OUT[dtype] * ref.abs() + (UNIT_ACC[dtype] + UNIT_REF)
            * (PER_PRODUCT + PER_SQRT_TERM * math.sqrt(k)) * magnitude + tiny + k * acc_tiny)


def wrong_elements(got, ref, magnitude, k, classes=None):
    """Mask of the elements of got (its dtype's values) that break the check against ref."""
    dtype = got.dtype
    g = got.detach().to(device=ref.device, dtype=torch.float64)
    b = bound(dtype, ref, magnitude, k)
    limit = overflow_threshold(dtype)
    must_overflow = ref.abs() - b >= limit
    may_overflow = ref.abs() + b >= limit
    finite_ok = torch.isfinite(g) & ((g - ref).abs() <= b) & ~must_overflow
    overflow_ok = torch.isinf(g) & (torch.sign(g) == torch.sign(ref)) & may_overflow
    ok = finite_ok | overflow_ok
    if classes is not None:
        nan, plus, minus = classes
        ok = torch.where(nan, torch.isnan(g), torch.where(plus, g == math.inf,
                                                          torch.where(minus, g == -math.inf, ok)))
    return ~ok, b


def describe_wrong(name, got, ref, magnitude, k, classes=None):
    """None when every element of got passes, else one sentence on the worst one."""
    if got is None:
        return f"{name}: missing"
    if got.shape != ref.shape:
        return f"{name}: shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
    wrong, b = wrong_elements(got, ref, magnitude, k, classes)
    count = int(wrong.sum())
    if count == 0:
        return None
    g = got.detach().to(device=ref.device, dtype=torch.float64)
    ratio = torch.where(wrong, ((g - ref).abs() / b).nan_to_num(math.inf, math.inf, math.inf),
                        torch.full_like(ref, -1.0))
    worst = int(ratio.reshape(-1).argmax())
    index = unravel(worst, ref.shape)
    expected = f"{ref.reshape(-1)[worst].item():.9g} +- {b.reshape(-1)[worst].item():.3g}"
    if classes is not None:
        nan, plus, minus = (c.reshape(-1)[worst].item() for c in classes)
        expected = "nan" if nan else "inf" if plus else "-inf" if minus else expected
    return (f"{name}: {count} of {ref.numel()} elements wrong, the worst at {index}: "
            f"{g.reshape(-1)[worst].item():.9g}, expected {expected}")


# ---- running one problem ----

@contextlib.contextmanager
def _cudnn_tf32(enabled):
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def autograd_outputs(p, given, conv):
    """y, grad_x, grad_weight, grad_bias of conv (tconv.conv_transpose2d's signature) on the
    given tensors, through autograd with grad_y."""
    leaves = {name: None if given[name] is None else given[name].detach().requires_grad_()
              for name in ("x", "weight", "bias")}
    precision = None if p.via_flag else ("tf32" if p.dtype == "tf32" else "fp32")
    with _cudnn_tf32(p.dtype == "tf32"):
        y = conv(leaves["x"], leaves["weight"], leaves["bias"], p.stride, p.padding,
                 p.output_padding, p.groups, p.dilation, precision=precision)
        y.backward(given["grad_y"])
    out = {"forward": y.detach(), "grad_input": leaves["x"].grad, "grad_weight": leaves["weight"].grad,
           "grad_bias": None if leaves["bias"] is None else leaves["bias"].grad}
    if p.unbatched:
        out["forward"] = out["forward"].unsqueeze(0)
        out["grad_input"] = None if out["grad_input"] is None else out["grad_input"].unsqueeze(0)
    return out


def unsupported(error):
    return "cannot implement this problem" in str(error)


def variant_outputs(p, stored, pass_):
    """(name, output) of every CUDA variant of pass_ that accepts p, forced through tconv.ops."""
    precision = "tf32" if p.dtype == "tf32" else "fp32"
    geometry = (p.stride, p.padding, p.output_padding, p.dilation, p.groups, precision)
    x, weight, bias, grad_y = (stored[name] for name in TENSORS)
    for name, variant_pass in ops.variants():
        if variant_pass != pass_ or (pass_ == "grad_bias" and not p.bias):
            continue
        try:
            if pass_ == "forward":
                out = ops.forward(x, weight, bias, *geometry, algorithm=name)
            elif pass_ == "grad_input":
                out = ops.grad_input(grad_y, weight, p.input, *geometry, algorithm=name)
            elif pass_ == "grad_weight":
                out = ops.grad_weight(x, grad_y, p.kernel, *geometry, algorithm=name)
            else:
                out = ops.grad_bias(grad_y, algorithm=name)
        except RuntimeError as error:
            if unsupported(error):
                continue
            raise
        yield name, out


def chosen_variants(p):
    """The variant the dispatcher picks for each pass of p (CUDA builds only)."""
    precision = "tf32" if p.dtype == "tf32" else "fp32"
    shapes = p.shapes()
    dtype = p.torch_dtype
    return {pass_: ops.algorithm(pass_, shapes["x"], shapes["weight"], p.stride, p.padding,
                                 p.output_padding, p.dilation, p.groups, dtype, precision)
            for pass_ in PASSES}


@dataclasses.dataclass
class Outcome:
    failures: list                                       # one sentence each
    variants: Counter = dataclasses.field(default_factory=Counter)   # variant -> runs
    nonfinite: Counter = dataclasses.field(default_factory=Counter)  # nan/+inf/-inf -> elements


def run_problem(p, device, conv=None, every_variant=False):
    """Runs and checks one problem; conv defaults to tconv.conv_transpose2d."""
    conv = conv or tconv.conv_transpose2d
    outcome = Outcome([])
    stored, given = make_tensors(p, device)
    ref = reference(p, stored, device)
    if ref.classes is not None:
        for pass_, (nan, plus, minus) in ref.classes.items():
            if pass_ != "grad_bias" or p.bias:
                outcome.nonfinite.update(nan=int(nan.sum()), inf=int(plus.sum()), minus_inf=int(minus.sum()))
    cuda = torch.device(device).type == "cuda" and conv is tconv.conv_transpose2d
    labels = chosen_variants(p) if cuda else {pass_: None for pass_ in PASSES}

    def check(pass_, label, got):
        if pass_ == "grad_bias" and not p.bias:
            return
        if label is not None:
            outcome.variants[label] += 1
        message = describe_wrong(OUTPUTS[pass_], got, ref.value[pass_], ref.magnitude[pass_],
                                 ref.terms[pass_], None if ref.classes is None else ref.classes[pass_])
        if message is not None:
            if got is not None and got.dtype != p.torch_dtype:
                message += f" (dtype {got.dtype}, expected {p.torch_dtype})"
            outcome.failures.append(message if label is None else f"[{label}] {message}")

    try:
        out = autograd_outputs(p, given, conv)
    except Exception as error:  # every exception is the problem's failure, reported with it
        outcome.failures.append(f"conv_transpose2d raised {type(error).__name__}: {error}")
        return outcome
    for pass_ in PASSES:
        check(pass_, labels[pass_], out[pass_])
    if every_variant and cuda:
        for pass_ in PASSES:
            try:
                for name, got in variant_outputs(p, stored, pass_):
                    check(pass_, f"forced {name}", got)
            except Exception as error:
                outcome.failures.append(f"{pass_} variants raised {type(error).__name__}: {error}")
    return outcome


# ---- the command line ----

def replay_command(p, device, every_variant):
    extra = " --every-variant" if every_variant else ""
    return f"python -m tconv.fuzz --device {device}{extra} --replay '{p}'"


def default_device():
    return "cuda" if torch.cuda.is_available() and ops.cuda_available() else "cpu"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tconv.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="problems to run (default 1000)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: random, printed)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None,
                        help="default: cuda when tconv has CUDA kernels and torch sees a GPU")
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help=f"comma-separated, from {','.join(DTYPES)} (default all)")
    parser.add_argument("--sizes", choices=tuple(PROFILES), default=None,
                        help="problem sizes: full (default on cuda) or small (default on cpu)")
    parser.add_argument("--nonfinite", type=float, default=0.0,
                        help="fraction of problems with inf/NaN injected (default 0)")
    parser.add_argument("--every-variant", action="store_true",
                        help="also run every CUDA variant that accepts each problem, forced by name")
    parser.add_argument("--replay", metavar="PROBLEM", default=None,
                        help="run one problem, as a failure line printed it")
    args = parser.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown or not args.dtypes:
        parser.error(f"--dtypes: unknown {unknown}; choose from {list(DTYPES)}")
    if not 0.0 <= args.nonfinite <= 1.0:
        parser.error("--nonfinite is a fraction between 0 and 1")
    args.device = args.device or default_device()
    if args.device == "cuda" and not (torch.cuda.is_available() and ops.cuda_available()):
        parser.error("--device cuda needs a GPU and tconv built with CUDA")
    args.sizes = args.sizes or ("full" if args.device == "cuda" else "small")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    return args


def fuzz(args, out=sys.stdout):
    """Runs the problems of args; returns (failed problems, run problems, summary Counters)."""
    if args.replay is not None:
        todo = [Problem.parse(args.replay)]
        print(f"tconv.fuzz: replaying one problem on {args.device}", file=out)
    else:
        todo = problems(args.seed, args.count, PROFILES[args.sizes], args.dtypes, args.nonfinite)
        print(f"tconv.fuzz: seed {args.seed}, {args.count} problems on {args.device} "
              f"({args.sizes} sizes), dtypes {','.join(args.dtypes)}, non-finite {args.nonfinite}"
              f"{', every variant' if args.every_variant else ''}; tconv {tconv.__version__}, "
              f"torch {torch.__version__}"
              f"{', ' + torch.cuda.get_device_name() if args.device == 'cuda' else ''}", file=out)
    start = time.time()
    failed = ran = 0
    per_dtype, variants, nonfinite = Counter(), Counter(), Counter()
    for i, p in enumerate(todo):
        outcome = run_problem(p, args.device, every_variant=args.every_variant)
        ran += 1
        per_dtype[p.dtype] += 1
        variants.update(outcome.variants)
        nonfinite.update(outcome.nonfinite)
        if outcome.failures:
            failed += 1
            for message in outcome.failures:
                print(f"FAIL #{i} {message}", file=out)
            print(f"  replay: {replay_command(p, args.device, args.every_variant)}", file=out)
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} problems, {failed} failed, {time.time() - start:.0f} s", file=out)
        out.flush()
    print(f"tconv.fuzz: {ran} problems ({', '.join(f'{d} {c}' for d, c in sorted(per_dtype.items()))}), "
          f"{failed} failed, {time.time() - start:.1f} s, seed {args.seed}", file=out)
    if nonfinite:
        print("  non-finite elements expected: " +
              ", ".join(f"{kind} {count}" for kind, count in sorted(nonfinite.items())), file=out)
    if variants:
        print("  variants run: " + ", ".join(f"{name} {count}" for name, count in sorted(variants.items())),
              file=out)
    return failed, ran, dict(per_dtype=per_dtype, variants=variants, nonfinite=nonfinite)


def main(argv=None):
    failed, _, _ = fuzz(parse_args(argv))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
