"""Running out of GPU memory: with the caching allocator capped
(torch.cuda.set_per_process_memory_fraction) so that a pass's output, or its workspace, cannot
be allocated, the call raises torch's out-of-memory error naming the bytes it asked for, GPU
memory returns to what it was, and the next call works (and is right)."""
import ctypes
import re

import pytest
import torch
import torch.nn.functional as F

import tconv
from tconv import fuzz, ops

pytestmark = pytest.mark.cuda

MIB = 1 << 20


# ---- the C API's workspace query, through the extension's own symbols ----

class Problem(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in (
        "n", "c_in", "h_in", "w_in", "c_out", "kernel_h", "kernel_w", "stride_h", "stride_w",
        "padding_h", "padding_w", "output_padding_h", "output_padding_w", "dilation_h",
        "dilation_w", "groups", "h_out", "w_out")]


class Config(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("precision", ctypes.c_int), ("algorithm", ctypes.c_char_p)]


PASS_CODES = {"forward": 0, "grad_input": 1, "grad_weight": 2, "grad_bias": 3}


def workspace_bytes(pass_, x_shape, c_out, kernel, algorithm):
    """tconv_cuda_workspace_size of a float32 (fp32 mode) stride-1 problem, padding 1."""
    lib = ctypes.CDLL(tconv._C.__file__)
    n, c_in, h, w = x_shape
    p = Problem(n, c_in, h, w, c_out, kernel, kernel, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0)
    config = Config(0, 0, algorithm.encode())
    size = ctypes.c_size_t(0)
    status = lib.tconv_cuda_workspace_size(ctypes.byref(p), PASS_CODES[pass_], ctypes.byref(config),
                                           ctypes.byref(size))
    return size.value if status == 0 else None


def run_pass(pass_, x, weight, grad_y, algorithm=None):
    geometry = ((1, 1), (1, 1), (0, 0), (1, 1), 1, "fp32")
    if pass_ == "forward":
        return ops.forward(x, weight, None, *geometry, algorithm=algorithm)
    if pass_ == "grad_input":
        return ops.grad_input(grad_y, weight, tuple(x.shape[2:]), *geometry, algorithm=algorithm)
    if pass_ == "grad_weight":
        return ops.grad_weight(x, grad_y, tuple(weight.shape[2:]), *geometry, algorithm=algorithm)
    return ops.grad_bias(grad_y, algorithm=algorithm)


def reference(pass_, x, weight, grad_y):
    x64, w64 = x.double().requires_grad_(), weight.double().requires_grad_()
    y = F.conv_transpose2d(x64, w64, padding=1)
    if pass_ == "forward":
        return y.detach()
    if pass_ == "grad_bias":
        return grad_y.double().sum((0, 2, 3))
    grad_x, grad_w = torch.autograd.grad(y, (x64, w64), grad_y.double())
    return grad_x if pass_ == "grad_input" else grad_w


def requested_bytes(error):
    """The size in torch's "Tried to allocate 12.00 MiB" (or GiB, KiB, bytes)."""
    found = re.search(r"Tried to allocate ([0-9.]+) (GiB|MiB|KiB|bytes)", str(error))
    assert found, str(error)
    scale = {"GiB": 1 << 30, "MiB": MIB, "KiB": 1 << 10, "bytes": 1}[found.group(2)]
    return float(found.group(1)) * scale


def new_segment_bytes(nbytes):
    """What the caching allocator reserves (cudaMalloc) for a request of nbytes that no cached
    block holds: 2 MiB up to 1 MiB, 20 MiB below 10 MiB, else nbytes rounded up to 2 MiB."""
    if nbytes <= MIB:
        return 2 * MIB
    if nbytes < 10 * MIB:
        return 20 * MIB
    return -(-nbytes // (2 * MIB)) * 2 * MIB


def out_of_memory(call, budget):
    """call() under a cap of the memory reserved now plus `budget` bytes: its error."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    fraction = (torch.cuda.memory_reserved() + budget) / total
    torch.cuda.set_per_process_memory_fraction(fraction)
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError) as error:
            call()
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    return error.value


def check_recovery(pass_, x, weight, grad_y, baseline, algorithm=None):
    """After the failure: memory at its baseline, and the same call now works."""
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == baseline
    got = run_pass(pass_, x, weight, grad_y, algorithm)
    ref = reference(pass_, x, weight, grad_y)
    stored = {"x": x, "weight": weight, "grad_y": grad_y}
    magnitude = reference(pass_, *(stored[n].abs() for n in ("x", "weight", "grad_y")))
    k = {"forward": x.shape[1] * 9, "grad_input": weight.shape[1] * 9,
         "grad_weight": x.shape[0] * x.shape[2] * x.shape[3],
         "grad_bias": grad_y.shape[0] * grad_y.shape[2] * grad_y.shape[3]}[pass_]
    assert fuzz.describe_wrong(pass_, got, ref, magnitude, k) is None


# pass -> (x shape, C_out): outputs of 10 MiB or more, which the allocator reserves at their
# own size (grad_bias's, C_out floats, is never that large)
OUTPUT_CASES = {"forward": ((1, 32, 384, 384), 32), "grad_input": ((1, 32, 384, 384), 32),
                "grad_weight": ((1, 768, 8, 8), 768)}


@pytest.mark.parametrize("pass_", list(OUTPUT_CASES))
def test_output_that_does_not_fit(pass_, gen):
    """The cap leaves half the output's bytes: torch's error names (about) the output's size."""
    x_shape, c_out = OUTPUT_CASES[pass_]
    x = torch.randn(*x_shape, generator=gen).cuda()
    weight = torch.randn(x_shape[1], c_out, 3, 3, generator=gen).cuda()
    grad_y = torch.randn(x_shape[0], c_out, *x_shape[2:], generator=gen).cuda()
    size = {"forward": grad_y, "grad_input": x, "grad_weight": weight}[pass_].numel() * 4
    assert size >= 10 * MIB
    baseline = torch.cuda.memory_allocated()
    error = out_of_memory(lambda: run_pass(pass_, x, weight, grad_y), size // 2)
    # the caching allocator rounds large blocks up to 2 MiB
    assert size <= requested_bytes(error) <= size + 2 * MIB, str(error)
    check_recovery(pass_, x, weight, grad_y, baseline)


# problems with small outputs: grad_weight of many channels over few pixels, grad_bias
WORKSPACE_CANDIDATES = [("grad_weight", (1, 256, 48, 48), 256), ("grad_weight", (4, 128, 64, 64), 128),
                        ("grad_weight", (2, 512, 24, 24), 512), ("grad_weight", (8, 512, 32, 32), 512),
                        ("grad_bias", (16, 1024, 64, 64), 1024)]


def largest_workspace():
    """(workspace bytes, pass, x shape, C_out, variant) with the largest workspace among the
    candidates and the variants that take them."""
    best = None
    for pass_, x_shape, c_out in WORKSPACE_CANDIDATES:
        for name, variant_pass in ops.variants():
            if variant_pass != pass_:
                continue
            size = workspace_bytes(pass_, x_shape, c_out, 3, name)
            if size is not None and (best is None or size > best[0]):
                best = (size, pass_, x_shape, c_out, name)
    return best


def test_workspace_that_does_not_fit(gen):
    """The cap leaves room for the output but half the workspace: torch's error names (about)
    the workspace's size, which the C API's tconv_cuda_workspace_size gives.  (64 MiB or more:
    more than the unused part of the output's reservation, which may be 20 MiB, could hold.)"""
    found = largest_workspace()
    assert found is not None and found[0] >= 64 * MIB, \
        f"no candidate problem needs a 64 MiB workspace ({found}): add one that does"
    size, pass_, x_shape, c_out, name = found
    x = torch.randn(*x_shape, generator=gen).cuda()
    weight = torch.randn(x_shape[1], c_out, 3, 3, generator=gen).cuda()
    grad_y = torch.randn(x_shape[0], c_out, *x_shape[2:], generator=gen).cuda()
    out_size = (weight.numel() if pass_ == "grad_weight" else c_out) * 4
    baseline = torch.cuda.memory_allocated()
    error = out_of_memory(lambda: run_pass(pass_, x, weight, grad_y, name),
                          new_segment_bytes(out_size) + size // 2)
    assert size <= requested_bytes(error) <= size + 2 * MIB, f"{name}: {error}"
    check_recovery(pass_, x, weight, grad_y, baseline, name)


def test_autograd_after_out_of_memory_leaves_nothing_behind(gen):
    """A forward through autograd that cannot get its output: nothing is kept (no graph, no
    saved tensors), and the next forward and backward work."""
    x = torch.randn(2, 32, 256, 256, generator=gen).cuda().requires_grad_()
    weight = torch.randn(32, 32, 3, 3, generator=gen).cuda().requires_grad_()
    baseline = torch.cuda.memory_allocated()
    y_bytes = 2 * 32 * 258 * 258 * 4
    out_of_memory(lambda: tconv.conv_transpose2d(x, weight), y_bytes // 2)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == baseline
    tconv.conv_transpose2d(x, weight).sum().backward()
    assert x.grad is not None and weight.grad is not None
