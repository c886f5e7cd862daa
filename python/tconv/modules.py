"""ConvTranspose2d (a drop-in for torch.nn.ConvTranspose2d) and ModelNew (the seed's model)."""
import math

import torch
from torch import nn

from . import ops
from .functional import conv_transpose2d, integer, pair


class ConvTranspose2d(nn.Module):
    """torch.nn.ConvTranspose2d computed by tconv: the same constructor, parameters, initial
    values (for the same RNG state), state_dict keys and forward(input, output_size=None).

    precision (keyword only): None follows torch.backends.cudnn.allow_tf32 at each call,
    "tf32" or "fp32" fixes the mode (see tconv.conv_transpose2d).

    Every argument is checked before anything is created, so a failed construction draws
    nothing from the random number generator.  Beyond nn.ConvTranspose2d's own checks (the
    same exception types and messages), arguments that PyTorch would only reject in forward
    (non-positive sizes, output_padding too large) raise RuntimeError here already.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None, *, precision=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        groups = integer(groups, "groups")
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        kernel_size, stride, padding, output_padding, dilation = (
            pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
            pair(output_padding, "output_padding"), pair(dilation, "dilation"))
        for name, value, low in (("in_channels", (in_channels,), 1),
                                 ("out_channels", (out_channels,), 1),
                                 ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                 ("padding", padding, 0), ("output_padding", output_padding, 0),
                                 ("dilation", dilation, 1)):
            if min(value) < low:
                raise RuntimeError(f"{type(self).__name__}: {name} must be at least {low}, "
                                   f"got {value}")
        for axis in range(2):
            if output_padding[axis] >= max(stride[axis], dilation[axis]):
                raise RuntimeError(f"{type(self).__name__}: output_padding must be smaller than "
                                   f"either stride or dilation, got output_padding={output_padding}, "
                                   f"stride={stride}, dilation={dilation}")
        ops.check_precision(precision)
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding
        self.dilation = dilation
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = True
        self.precision = precision
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty((in_channels, out_channels // groups) + kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """The draws of nn.ConvTranspose2d.reset_parameters, in the same order."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.size(1) * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def output_padding_for(self, input, output_size):
        """The output_padding that makes forward's output spatially `output_size` (PyTorch's
        rule: each size may exceed the smallest one by at most stride - 1)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)
        if len(output_size) == input.dim():
            output_size = output_size[-2:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2D: for {input.dim()}D input, output_size must have 2 "
                             f"or {input.dim()} elements (got {len(output_size)})")
        smallest = [(input.size(axis - 2) - 1) * self.stride[axis] - 2 * self.padding[axis]
                    + self.dilation[axis] * (self.kernel_size[axis] - 1) + 1 for axis in range(2)]
        largest = [size + self.stride[axis] - 1 for axis, size in enumerate(smallest)]
        if any(not low <= size <= high for size, low, high in zip(output_size, smallest, largest)):
            raise ValueError(f"requested an output size of {list(output_size)}, but valid sizes "
                             f"range from {smallest} to {largest} (for an input of "
                             f"{list(input.shape[-2:])})")
        return tuple(size - low for size, low in zip(output_size, smallest))

    def forward(self, input, output_size=None):
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding_for(input, output_size), self.groups,
                                self.dilation, precision=self.precision)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("dilation", (1, 1)),
                              ("output_padding", (0, 0))):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.precision is not None:
            text += f", precision={self.precision!r}"
        return text


class ModelNew(nn.Module):
    """The seed's Model with tconv's operator: same constructor, same forward, same
    state_dict keys (conv_transpose2d.weight, conv_transpose2d.bias)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=False):
        super().__init__()
        self.conv_transpose2d = ConvTranspose2d(in_channels, out_channels, kernel_size,
                                                stride=stride, padding=padding,
                                                output_padding=output_padding, groups=groups,
                                                bias=bias)

    def forward(self, x):
        return self.conv_transpose2d(x)
