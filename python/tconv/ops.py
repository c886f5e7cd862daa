"""The low-level API: one call per pass, on 4-D contiguous NCHW tensors.

Spatial arguments are (h, w) pairs of ints.  `precision` is "fp32" or "tf32" (see
resolve_precision); `algorithm` None lets the dispatcher pick, or names a CUDA variant
(CUDA tensors only; an error if that variant cannot implement the problem).

CPU float32/float64 tensors run the C reference; CPU float16/bfloat16 tensors are computed
in float32 and cast back.  CUDA tensors run the CUDA kernels on the current stream.
"""
import torch

from . import _C

PRECISIONS = ("fp32", "tf32")
LOW_PRECISION = (torch.float16, torch.bfloat16)


def resolve_precision(precision):
    """"fp32" or "tf32": None follows torch.backends.cudnn.allow_tf32, as cuDNN does."""
    if precision is None:
        return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be None, "fp32" or "tf32", got {precision!r}')
    return precision


def cuda_available():
    """True if the library was built with CUDA kernels."""
    return _C.cuda_available()


def variants():
    """(name, pass) of every CUDA variant in dispatch order; [] when built without CUDA."""
    return [tuple(v) for v in _C.variants()]


def algorithm(pass_, x_shape, weight_shape, stride, padding, output_padding, dilation, groups,
              dtype, precision):
    """The CUDA variant the dispatcher would pick for `pass_` of this problem."""
    return _C.algorithm(pass_, list(x_shape), list(weight_shape), stride, padding, output_padding,
                        dilation, groups, str(dtype).replace("torch.", ""), precision)


def _on_cpu_in_float32(tensors):
    """True when every tensor is a CPU float16 (or every one a CPU bfloat16) tensor, which the
    C reference computes in float32.  Mixed dtypes go through unchanged, for the binding to
    reject."""
    first = tensors[0]
    return (first.device.type == "cpu" and first.dtype in LOW_PRECISION
            and all(t.dtype == first.dtype for t in tensors))


def _run(fn, tensors, *args):
    """fn(*tensors, *args), upcasting CPU half/bfloat16 tensors to float32 and back."""
    present = [t for t in tensors if t is not None]
    if not _on_cpu_in_float32(present):
        return fn(*tensors, *args)
    dtype = present[0].dtype
    upcast = [None if t is None else t.float() for t in tensors]
    return fn(*upcast, *args).to(dtype)


def forward(x, weight, bias, stride, padding, output_padding, dilation, groups, precision,
            algorithm=None):
    """y (N, C_out, H_out, W_out) from x (N, C_in, H_in, W_in), weight (C_in, C_out/groups, kH, kW)
    and bias (C_out) or None."""
    return _run(_C.forward, (x, weight, bias), stride, padding, output_padding, dilation, groups,
                precision, algorithm)


def grad_input(grad_y, weight, input_hw, stride, padding, output_padding, dilation, groups,
               precision, algorithm=None):
    """grad_x (N, C_in, *input_hw) from grad_y (N, C_out, H_out, W_out) and weight."""
    return _run(_C.grad_input, (grad_y, weight), input_hw, stride, padding, output_padding,
                dilation, groups, precision, algorithm)


def grad_weight(x, grad_y, kernel_hw, stride, padding, output_padding, dilation, groups,
                precision, algorithm=None):
    """grad_weight (C_in, C_out/groups, *kernel_hw) from x and grad_y."""
    return _run(_C.grad_weight, (x, grad_y), kernel_hw, stride, padding, output_padding,
                dilation, groups, precision, algorithm)


def grad_bias(grad_y, algorithm=None):
    """grad_bias (C_out) from grad_y (N, C_out, H_out, W_out)."""
    return _run(_C.grad_bias, (grad_y,), algorithm)
