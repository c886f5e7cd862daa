"""2D transposed convolution (nn.ConvTranspose2d) on tconv's CUDA kernels, in one file.

ModelNew has the seed's constructor, forward and state_dict keys (conv_transpose2d.weight,
conv_transpose2d.bias); its parameters are drawn as nn.ConvTranspose2d draws them, so the same
seed gives the same values.  Forward and the gradients of input, weight and bias run tconv's
kernels through an autograd.Function, for any stride, padding, output_padding, dilation and
groups, in float32 (TF32 numerics when torch.backends.cudnn.allow_tf32 is set, as cuDNN has
them; float32-accurate when it is not), float64, float16 and bfloat16 on CUDA, and float32 and
float64 on the CPU (a reference written from the definition).

The C, CUDA and C++ sources below are tconv's, joined into one file of each kind by
`python -m tconv.export kernelbench`; load_inline compiles them the first time a ModelNew
runs (a few minutes, for the GPUs present: sm_90a with Hopper's wgmma kernels where the CUDA
toolkit has it, else each GPU's own architecture).  Needs PyTorch 2.1 or newer with CUDA 11.8
or newer.
"""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

# filled in by tconv.export
CPP_SOURCE = ""
CUDA_SOURCE = ""

CXX_FLAGS = ["-O2"]
CUDA_FLAGS = ["-O3"]  # and the C++ standard torch gives load_inline (C++17 on torch 2.1)
EXTENSION = {}


def arch_flags():
    """nvcc's -gencode flags for every visible GPU (sm_80 where none is visible)."""
    cuda_major = int(torch.version.cuda.split(".")[0])
    archs = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        arch = f"{major}{minor}" + ("a" if (major, minor) == (9, 0) and cuda_major >= 12 else "")
        if arch not in archs:
            archs.append(arch)
    flags = [f"-gencode=arch=compute_{arch},code=sm_{arch}" for arch in archs or ["80"]]
    return flags + (["-DTCONV_WGMMA"] if "90a" in archs else [])


def extension():
    """The compiled sources (compiled once per process, on first use)."""
    if not EXTENSION:
        if torch.version.cuda is None:
            raise RuntimeError("ModelNew needs PyTorch built with CUDA (torch.version.cuda is None)")
        EXTENSION["module"] = load_inline(
            name="tconv_kernelbench", cpp_sources=[CPP_SOURCE], cuda_sources=[CUDA_SOURCE],
            extra_cflags=CXX_FLAGS, extra_cuda_cflags=CUDA_FLAGS + arch_flags())
    return EXTENSION["module"]


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class ConvTranspose2dFunction(torch.autograd.Function):
    """y = conv_transpose2d(x, weight, bias) and its gradients, each computed only when needed.
    The precision is read from torch.backends.cudnn.allow_tf32 at each call, as cuDNN reads
    it."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        precision = "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
        ctx.geometry = (stride, padding, output_padding, dilation, groups, precision)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        return extension().forward(x, weight, bias, *ctx.geometry, None)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = extension().grad_input(grad_y, weight, list(x.shape[2:]), *ctx.geometry, None)
        if ctx.needs_input_grad[1]:
            grad_weight = extension().grad_weight(x, grad_y, list(weight.shape[2:]), *ctx.geometry,
                                                  None)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = extension().grad_bias(grad_y, None)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class TransposedConv2d(nn.Module):
    """The parameters and arguments of nn.ConvTranspose2d (same names, shapes and initial
    values), computed by ConvTranspose2dFunction."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.kernel_size = pair(kernel_size)
        self.stride, self.padding = pair(stride), pair(padding)
        self.output_padding, self.dilation = pair(output_padding), pair(dilation)
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups,
                                               *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """nn.ConvTranspose2d.reset_parameters' draws, in its order.  (The square roots are
        IEEE-rounded like math.sqrt's, which this file may not import.)"""
        sqrt = lambda v: torch.tensor(float(v), dtype=torch.float64).sqrt().item()
        nn.init.kaiming_uniform_(self.weight, a=sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.size(1) * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        batched = x.dim() == 4
        y = ConvTranspose2dFunction.apply(
            (x if batched else x.unsqueeze(0)).contiguous(), self.weight.contiguous(),
            None if self.bias is None else self.bias.contiguous(), self.stride, self.padding,
            self.output_padding, self.dilation, self.groups)
        return y if batched else y.squeeze(0)


class ModelNew(nn.Module):
    """The seed's Model with tconv's operator in place of nn.ConvTranspose2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, groups: int = 1, bias: bool = False):
        super().__init__()
        self.conv_transpose2d = TransposedConv2d(in_channels, out_channels, kernel_size,
                                                 stride=stride, padding=padding,
                                                 output_padding=output_padding, groups=groups,
                                                 bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_transpose2d(x)
