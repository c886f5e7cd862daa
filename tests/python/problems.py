"""Transposed-convolution problems for the tests: a seeded random sweep and a list of
awkward cases, each a dict of F.conv_transpose2d's arguments plus the tensor sizes."""
import random

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


AWKWARD = {
    "1x1_input": make(2, 3, 2, (1, 1), 3),
    "1x1_input_1x1_kernel_stride3": make(1, 2, 3, (1, 1), 1, stride=3),
    "stride_over_kernel": make(2, 3, 4, (4, 5), 2, stride=3),
    "output_padding_stride_minus_1": make(2, 2, 3, (3, 4), 3, stride=(3, 2), output_padding=(2, 1)),
    "output_padding_below_dilation": make(1, 2, 2, (4, 3), 2, stride=(1, 2), dilation=(3, 1),
                                          output_padding=(2, 1)),
    "depthwise": make(2, 4, 4, (5, 5), 3, groups=4),
    "depthwise_strided": make(1, 3, 3, (4, 6), (2, 3), stride=2, padding=1, groups=3),
    "dilation": make(2, 3, 2, (5, 4), 3, dilation=(2, 3)),
    "all_asymmetric": make(2, 4, 6, (5, 7), (2, 4), stride=(2, 3), padding=(1, 2),
                           output_padding=(1, 0), dilation=(2, 1), groups=2),
    "tuple_kernel_1x5": make(2, 2, 3, (3, 6), (1, 5), padding=(0, 2)),
    "tuple_kernel_4x1": make(1, 3, 2, (6, 2), (4, 1), stride=(2, 1)),
    "heavy_cropping": make(1, 2, 2, (4, 4), 5, padding=3),
    "single_channel": make(1, 1, 1, (3, 3), 1, bias=False),
    "groups3": make(2, 6, 9, (3, 4), 2, stride=2, groups=3),
    "no_bias_strided": make(3, 2, 4, (3, 3), 3, stride=2, padding=1, output_padding=1, bias=False),
}


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
