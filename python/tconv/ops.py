"""The low-level API: one call per pass, each a PyTorch operator (torch.ops.tconv.*).

The four passes are registered with PyTorch's dispatcher, with a kernel for CPU and CUDA
tensors and a fake one that only computes the output's shape, so that torch.compile and
other tracers see them as single operators (tconv.autograd registers their derivatives):

    torch.ops.tconv.forward(x, weight, bias, stride, padding, output_padding, dilation,
                            groups, precision, algorithm)
    torch.ops.tconv.grad_input(grad_y, weight, input_hw, <the same seven>)
    torch.ops.tconv.grad_weight(x, grad_y, kernel_hw, <the same seven>)
    torch.ops.tconv.grad_bias(grad_y, algorithm)

Spatial arguments are (h, w) pairs of ints; tensors are 4-D, NCHW or any strides (the
kernels take NCHW copies); as PyTorch's convolutions do, a pass returns channels_last where a
tensor it convolves is channels_last, else NCHW.  `precision` is None, "fp32" or "tf32" (see resolve_precision: None is
resolved when the pass runs, as cuDNN reads its flag); `algorithm` None lets the dispatcher
pick, or names a CUDA variant (CUDA tensors only; an error if that variant cannot implement
the problem, and on CPU tensors).

CPU float32/float64 tensors run the C reference; CPU float16/bfloat16 tensors are computed
in float32 and cast back.  Under torch.autocast the forward casts its tensors as
conv_transpose2d does (to the autocast dtype, float64 left alone).  CUDA tensors run the CUDA kernels on the current stream of their
device.
"""
import torch

from . import _C

PRECISIONS = ("fp32", "tf32")
LOW_PRECISION = (torch.float16, torch.bfloat16)
PASSES = ("forward", "grad_input", "grad_weight", "grad_bias")

# the arguments every convolution pass has after its tensors and its size pair
_GEOMETRY = ("int[2] stride, int[2] padding, int[2] output_padding, int[2] dilation, int groups, "
             "str? precision, str? algorithm")
SCHEMAS = {
    "forward": f"forward(Tensor x, Tensor weight, Tensor? bias, {_GEOMETRY}) -> Tensor",
    "grad_input": f"grad_input(Tensor grad_y, Tensor weight, SymInt[2] input_hw, {_GEOMETRY}) "
                  "-> Tensor",
    "grad_weight": f"grad_weight(Tensor x, Tensor grad_y, SymInt[2] kernel_hw, {_GEOMETRY}) "
                   "-> Tensor",
    "grad_bias": "grad_bias(Tensor grad_y, str? algorithm) -> Tensor",
}


def check_precision(precision):
    """A ValueError unless precision is None, "fp32" or "tf32"."""
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f'precision must be None, "fp32" or "tf32", got {precision!r}')


def resolve_precision(precision):
    """"fp32" or "tf32": None follows torch.backends.cudnn.allow_tf32, as cuDNN does."""
    check_precision(precision)
    if precision is None:
        return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
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


def output_hw(input_hw, kernel_hw, stride, padding, output_padding, dilation):
    """(H_out, W_out) of the operator (SPEC's formula, also for symbolic sizes)."""
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for size, k, s, p, op, d in zip(input_hw, kernel_hw, stride, padding,
                                                 output_padding, dilation))


# ---- the kernels behind the operators ----

def _check_cpu_algorithm(pass_, algorithm):
    """CPU tensors run the C reference, which is no variant: any algorithm is an error."""
    if algorithm is None:
        return
    if algorithm in [name for name, p in variants() if p == pass_]:
        raise RuntimeError(f"tconv {pass_}: algorithm {algorithm!r} is a CUDA variant, but the "
                           "tensors are on the CPU, where the C reference runs (algorithm= "
                           "applies to CUDA tensors only)")
    raise RuntimeError(f"tconv {pass_}: algorithm {algorithm!r} names no CUDA variant of "
                       f"{pass_} (tconv.ops.variants() lists them; CPU tensors take none)")


def _channels_last(*tensors):
    """Whether a 4-D tensor among these is laid out channels_last (and not also NCHW), the
    convolutions' rule for the layout of their result: then the pass's output is too."""
    return any(t is not None and t.dim() == 4 and not t.is_contiguous()
               and t.is_contiguous(memory_format=torch.channels_last) for t in tensors)


def _layout(result, channels_last):
    """result (4-D) channels_last where asked; grad_bias's vector as it is."""
    if channels_last and result.dim() == 4:
        return result.contiguous(memory_format=torch.channels_last)
    return result


def _run(pass_, tensors, args, algorithm):
    """_C.<pass_>(*tensors, *args, algorithm) on contiguous tensors, CPU float16/bfloat16
    ones in float32 (mixed dtypes go through unchanged, for the binding to reject); the result
    channels_last where a convolution tensor was (the kernels read and write NCHW: copies)."""
    channels_last = _channels_last(*tensors)
    return _layout(_run_nchw(pass_, [None if t is None else t.contiguous() for t in tensors], args,
                             algorithm), channels_last)


def _run_nchw(pass_, tensors, args, algorithm):
    call = getattr(_C, pass_)
    first = tensors[0]
    if first.device.type != "cpu":
        return call(*tensors, *args, algorithm)
    _check_cpu_algorithm(pass_, algorithm)
    present = [t for t in tensors if t is not None]
    if first.dtype not in LOW_PRECISION or any(t.dtype != first.dtype for t in present):
        return call(*tensors, *args, algorithm)
    upcast = [None if t is None else t.float() for t in tensors]
    return call(*upcast, *args, algorithm).to(first.dtype)


def _forward(x, weight, bias, stride, padding, output_padding, dilation, groups, precision,
             algorithm):
    return _run("forward", (x, weight, bias), (stride, padding, output_padding, dilation, groups,
                                               resolve_precision(precision)), algorithm)


def _grad_input(grad_y, weight, input_hw, stride, padding, output_padding, dilation, groups,
                precision, algorithm):
    return _run("grad_input", (grad_y, weight),
                (input_hw, stride, padding, output_padding, dilation, groups,
                 resolve_precision(precision)), algorithm)


def _grad_weight(x, grad_y, kernel_hw, stride, padding, output_padding, dilation, groups,
                 precision, algorithm):
    return _run("grad_weight", (x, grad_y),
                (kernel_hw, stride, padding, output_padding, dilation, groups,
                 resolve_precision(precision)), algorithm)


def _grad_bias(grad_y, algorithm):
    return _run("grad_bias", (grad_y,), (), algorithm)


# ---- the fake kernels: output shapes only (torch.compile, meta tensors) ----

def _check_devices(pass_, named):
    """The binding's device check, for tensors that never reach it (meta ones)."""
    (first_name, first), *rest = [(n, t) for n, t in named if t is not None]
    for name, t in rest:
        if t.device != first.device:
            raise RuntimeError(f"tconv {pass_}: {name} is on {t.device} but {first_name} is on "
                               f"{first.device}")


def _forward_fake(x, weight, bias, stride, padding, output_padding, dilation, groups, precision,
                  algorithm):
    _check_devices("forward", (("x", x), ("weight", weight), ("bias", bias)))
    hw = output_hw(x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation)
    return _layout(x.new_empty((x.shape[0], weight.shape[1] * groups, *hw)), _channels_last(x, weight))


def _grad_input_fake(grad_y, weight, input_hw, stride, padding, output_padding, dilation, groups,
                     precision, algorithm):
    _check_devices("grad_input", (("grad_y", grad_y), ("weight", weight)))
    return _layout(grad_y.new_empty((grad_y.shape[0], weight.shape[0], *input_hw)),
                   _channels_last(grad_y, weight))


def _grad_weight_fake(x, grad_y, kernel_hw, stride, padding, output_padding, dilation, groups,
                      precision, algorithm):
    _check_devices("grad_weight", (("x", x), ("grad_y", grad_y)))
    return _layout(x.new_empty((x.shape[1], grad_y.shape[1] // groups, *kernel_hw)),
                   _channels_last(x, grad_y))


def _grad_bias_fake(grad_y, algorithm):
    return grad_y.new_empty((grad_y.shape[1],))


LIBRARY = torch.library.Library("tconv", "DEF")
for _name, _kernel, _fake in (("forward", _forward, _forward_fake),
                              ("grad_input", _grad_input, _grad_input_fake),
                              ("grad_weight", _grad_weight, _grad_weight_fake),
                              ("grad_bias", _grad_bias, _grad_bias_fake)):
    LIBRARY.define(SCHEMAS[_name])
    LIBRARY.impl(_name, _kernel, "CPU")
    LIBRARY.impl(_name, _kernel, "CUDA")
    if hasattr(torch.library, "register_fake"):  # torch 2.4 and newer
        torch.library.register_fake(f"tconv::{_name}", _fake, lib=LIBRARY)
    else:  # a Meta kernel is what the fake tensors of older versions run
        LIBRARY.impl(_name, _fake, "Meta")


# ---- autocast: the forward casts as torch.nn.functional.conv_transpose2d does ----

def _autocast_dtype(device_type):
    """The dtype that torch.autocast casts to on device_type."""
    if hasattr(torch, "get_autocast_dtype"):  # torch 2.4 and newer
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_gpu_dtype() if device_type == "cuda" else torch.get_autocast_cpu_dtype()


def _autocast_forward(device_type):
    """The forward's kernel under torch.autocast on device_type: like conv_transpose2d (a
    lower-precision op), the floating-point tensors of that device but float64 ones are cast
    to the autocast dtype, then the operator runs with autocast off.  The casts are ordinary
    autograd operations, so gradients reach the parameters in their own dtype; the backward
    passes need no kernel of their own (their inputs already have the forward's dtype)."""
    def kernel(x, weight, bias, *geometry):
        dtype = _autocast_dtype(device_type)

        def cast(t):
            eligible = (t is not None and t.is_floating_point() and t.dtype != torch.float64
                        and t.device.type == device_type)
            return t.to(dtype) if eligible else t
        with torch.autocast(device_type, enabled=False):
            return torch.ops.tconv.forward(cast(x), cast(weight), cast(bias), *geometry)
    return kernel


LIBRARY.impl("forward", _autocast_forward("cuda"), "AutocastCUDA")
LIBRARY.impl("forward", _autocast_forward("cpu"), "AutocastCPU")


# ---- the public calls ----

def forward(x, weight, bias, stride, padding, output_padding, dilation, groups, precision,
            algorithm=None):
    """y (N, C_out, H_out, W_out) from x (N, C_in, H_in, W_in), weight (C_in, C_out/groups, kH, kW)
    and bias (C_out) or None."""
    return torch.ops.tconv.forward(x, weight, bias, stride, padding, output_padding, dilation,
                                   groups, precision, algorithm)


def grad_input(grad_y, weight, input_hw, stride, padding, output_padding, dilation, groups,
               precision, algorithm=None):
    """grad_x (N, C_in, *input_hw) from grad_y (N, C_out, H_out, W_out) and weight."""
    return torch.ops.tconv.grad_input(grad_y, weight, input_hw, stride, padding, output_padding,
                                      dilation, groups, precision, algorithm)


def grad_weight(x, grad_y, kernel_hw, stride, padding, output_padding, dilation, groups,
                precision, algorithm=None):
    """grad_weight (C_in, C_out/groups, *kernel_hw) from x and grad_y."""
    return torch.ops.tconv.grad_weight(x, grad_y, kernel_hw, stride, padding, output_padding,
                                       dilation, groups, precision, algorithm)


def grad_bias(grad_y, algorithm=None):
    """grad_bias (C_out) from grad_y (N, C_out, H_out, W_out)."""
    return torch.ops.tconv.grad_bias(grad_y, algorithm)
