"""Transposed-convolution problems for the tests: a seeded random sweep and a list of
awkward cases, each a dict of F.conv_transpose2d's arguments plus the tensor sizes."""
import random
from pathlib import Path

import torch


def out_size(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def make(n, c_in, c_out, hw, kernel, stride=1, padding=0, output_padding=0, dilation=1,
         groups=1, bias=True):
    """A problem; int arguments stay ints, so that both spellings reach the API."""
    return dict(n=n, c_in=c_in, c_out=c_out, hw=hw, kernel=kernel, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups, bias=bias)


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def output_hw(p):
    return tuple(out_size(*args) for args in zip(p["hw"], pair(p["kernel"]), pair(p["stride"]),
                                                 pair(p["padding"]), pair(p["output_padding"]),
                                                 pair(p["dilation"])))


def maybe_int(r, values):
    return values[0] if values[0] == values[1] and r.random() < 0.5 else values


def random_problem(r):
    while True:
        groups = r.choice([1, 1, 2, 3])
        stride = (r.randint(1, 3), r.randint(1, 3))
        dilation = (r.randint(1, 3), r.randint(1, 3))
        p = make(n=r.randint(1, 3), c_in=groups * r.randint(1, 3), c_out=groups * r.randint(1, 3),
                 hw=(r.randint(1, 6), r.randint(1, 6)),
                 kernel=maybe_int(r, (r.randint(1, 4), r.randint(1, 4))),
                 stride=maybe_int(r, stride),
                 padding=maybe_int(r, (r.randint(0, 3), r.randint(0, 3))),
                 output_padding=maybe_int(r, tuple(r.randint(0, max(s, d) - 1)
                                                   for s, d in zip(stride, dilation))),
                 dilation=maybe_int(r, dilation), groups=groups, bias=r.random() < 0.7)
        if min(output_hw(p)) >= 1:
            return p


def random_problems(seed, count):
    r = random.Random(seed)
    return [random_problem(r) for _ in range(count)]


def listed(tag):
    """{name: problem} of the one problem list (tests/problems.txt) for the lines tagged tag;
    names with _ for -, equal pairs as ints (both spellings reach the API through the random
    problems)."""
    from tconv.bench import parse_shapes

    path = Path(__file__).resolve().parents[1] / "problems.txt"
    one = lambda v: v[0] if v[0] == v[1] else v
    problems = {s.name.replace("-", "_"): make(s.n, s.c_in, s.c_out, (s.h, s.w), one(s.k),
                                               stride=one(s.s), padding=one(s.p),
                                               output_padding=one(s.op), dilation=one(s.d),
                                               groups=s.g, bias=s.bias)
                for s in parse_shapes(path.read_text(), path.name) if tag in s.tags}
    if not problems:  # a list that lost its tag must not shrink the tests unnoticed
        raise RuntimeError(f"{path}: no problem tagged {tag}")
    return problems


AWKWARD = listed("pytest")


def tensors(p, dtype, gen):
    """x, weight, bias (or None) and grad_y of problem p: standard normal, drawn in float64
    from gen and rounded to dtype."""
    kh, kw = pair(p["kernel"])
    draw = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)
    x = draw(p["n"], p["c_in"], *p["hw"])
    weight = draw(p["c_in"], p["c_out"] // p["groups"], kh, kw)
    bias = draw(p["c_out"]) if p["bias"] else None
    grad_y = draw(p["n"], p["c_out"], *output_hw(p))
    return x, weight, bias, grad_y


def conv_args(p):
    return dict(stride=p["stride"], padding=p["padding"], output_padding=p["output_padding"],
                groups=p["groups"], dilation=p["dilation"])
