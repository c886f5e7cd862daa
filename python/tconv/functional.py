"""conv_transpose2d: torch.nn.functional.conv_transpose2d's signature and semantics."""
import operator
from collections.abc import Sequence

import torch

from . import autograd, ops  # noqa: F401  (autograd registers the operators' derivatives)


def integer(value, name, expected="an int"):
    """value as an int: an int or anything with __index__ (a NumPy integer), never a bool;
    anything else is the TypeError PyTorch raises for it.  (Plain ints return before the
    type is inspected: torch.compile on torch 2.1 cannot trace hasattr on a type.)"""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bool) or getattr(type(value), "__index__", None) is None:
        raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
    return operator.index(value)


def pair(value, name):
    """(h, w) from an int or a sequence of one or two ints (what PyTorch accepts): a value
    that is not an integer is a TypeError, a wrong count a RuntimeError, as in PyTorch."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(integer(v, name, "an int or a tuple of ints") for v in value)
    else:
        values = (integer(value, name, "an int or a tuple of ints"),)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 2 integer "
                           f"values to match the convolution dimensions, but got {name}={value!r}")
    return values


FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def check_tensor(value, name, optional=False):
    """PyTorch's TypeError for an argument that must be a tensor (or None where optional); a
    RuntimeError naming the argument for a layout (sparse, ...) or dtype (quantized, integer,
    complex) tconv does not take."""
    if optional and value is None:
        return
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"conv_transpose2d(): argument '{name}' must be Tensor, "
                        f"not {type(value).__name__}")
    if value.layout != torch.strided:
        raise RuntimeError(f"conv_transpose2d(): {name} is a {value.layout} tensor; tconv takes "
                           "dense (strided) tensors, e.g. .to_dense()")
    if value.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"conv_transpose2d(): {name} has dtype {value.dtype}; tconv takes "
                           "float32, float64, float16 or bfloat16")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, precision=None):
    """The 2D transposed convolution of input (N, C_in, H_in, W_in) or unbatched (C_in, H_in, W_in)
    with weight (C_in, C_out/groups, kH, kW) plus bias (C_out) or None, as
    torch.nn.functional.conv_transpose2d computes it (note: groups comes before dilation).

    precision: None follows torch.backends.cudnn.allow_tf32 (as cuDNN does); "tf32" rounds both
    operands to the nearest TF32 value; "fp32" is float32-accurate.  Only float32 CUDA tensors
    are affected.
    """
    check_tensor(input, "input")
    check_tensor(weight, "weight")
    check_tensor(bias, "bias", optional=True)
    if input.dim() not in (3, 4):
        raise RuntimeError("Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, "
                           f"but got input of size: {list(input.shape)}")
    if weight.dim() != 4:
        raise RuntimeError(f"conv_transpose2d: weight must be 4-D (C_in, C_out/groups, kH, kW), "
                           f"got size {list(weight.shape)}")
    ops.check_precision(precision)
    x = input.unsqueeze(0) if input.dim() == 3 else input
    y = ops.forward(x, weight, bias, pair(stride, "stride"), pair(padding, "padding"),
                    pair(output_padding, "output_padding"), pair(dilation, "dilation"),
                    integer(groups, "groups"), precision)
    return y.squeeze(0) if input.dim() == 3 else y
