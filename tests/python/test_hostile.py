"""Hostile arguments to the PyTorch layer: sizes past 32 and 64 bits, zero-size dimensions (as
PyTorch treats them), tensors that are sparse, strided oddly or on other devices, output_size
out of range.  Each gives PyTorch's own result where PyTorch defines one, else a clear error
naming the argument: never a crash, a hang or garbage.

Known defects are marked xfail(strict=True) with the defect as the reason: they flip to
failures once fixed, so that the mark is removed."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tconv
from tconv import ops

GEOMETRY = ((1, 1), (0, 0), (0, 0), (1, 1))  # stride, padding, output_padding, dilation


def head(error):
    """An error's sentence before tconv's problem description (which lists every argument,
    so that any argument name would be found in it)."""
    return str(error).split("[")[0]


# ---- sizes past 32 and 64 bits, through the binding's own shape arguments ----

HUGE_SHAPES = {
    # id: (x_shape, weight_shape, groups, stride, word the error's head must hold)
    "x_of_2^160_elements": ((2**40,) * 4, (2**40, 1, 1, 1), 1, (1, 1), "unsupported"),
    "every_side_2^31-1": ((2**31 - 1,) * 4, (2**31 - 1, 1, 1, 1), 1, (1, 1), "unsupported"),
    "output_past_2^31": ((1, 1, 2**30, 1), (1, 1, 3, 1), 1, (3, 1), "unsupported"),
    "stride_2^62": ((1, 4, 2, 2), (4, 3, 3, 3), 1, (2**62, 1), "unsupported"),
    "stride_int64_max": ((1, 4, 2, 2), (4, 3, 3, 3), 1, (2**63 - 1, 2**63 - 1), "unsupported"),
    "negative_size": ((1, 4, -5, 2), (4, 3, 3, 3), 1, (1, 1), "H_in"),
    "int64_min_stride": ((1, 4, 2, 2), (4, 3, 3, 3), 1, (-2**63, 1), "stride"),
    "groups_int64_max": ((1, 4, 2, 2), (4, 3, 3, 3), 2**63 - 1, (1, 1), "groups"),
}


@pytest.mark.parametrize("x_shape,weight_shape,groups,stride,word", HUGE_SHAPES.values(),
                         ids=HUGE_SHAPES.keys())
def test_huge_sizes_are_refused(x_shape, weight_shape, groups, stride, word):
    """Every pass's check of such a problem is an error (no tensor is made), its status said
    first.  (ops.algorithm checks the problem before it asks for CUDA.)"""
    for pass_ in ("forward", "grad_input", "grad_weight", "grad_bias"):
        with pytest.raises(RuntimeError) as error:
            ops.algorithm(pass_, x_shape, weight_shape, stride, *GEOMETRY[1:], groups, torch.float32,
                          "fp32")
        assert word in head(error.value), str(error.value)


def test_groups_that_overflow_c_out_name_groups():
    x, w = torch.randn(1, 4, 2, 2), torch.randn(4, 3, 3, 3)
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, w, groups=2**62)
    assert "divide" in head(error.value) and "C_out -" not in str(error.value), str(error.value)


def test_weight_shape_that_overflows_c_out_is_refused_as_too_large():
    """weight.size(1) * groups = 2^64: an error that says so, not that C_out is below 1."""
    with pytest.raises(RuntimeError) as error:
        ops.algorithm("forward", (1, 4, 1, 1), (4, 2**62, 1, 1), *GEOMETRY, 4, torch.float32, "fp32")
    assert any(word in head(error.value) for word in ("overflow", "unsupported")), str(error.value)


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
def test_a_size_past_31_bits_is_named(name):
    x, w = torch.randn(1, 4, 2, 2), torch.randn(4, 3, 3, 3)
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, w, **{name: 2**31})
    assert name in head(error.value), str(error.value)


@pytest.mark.parametrize("name", ["stride", "padding", "dilation", "output_padding", "groups"])
def test_ints_past_64_bits_are_named(name):
    x, w = torch.randn(1, 4, 2, 2), torch.randn(4, 3, 3, 3)
    with pytest.raises((RuntimeError, ValueError, OverflowError, TypeError)) as error:
        tconv.conv_transpose2d(x, w, **{name: 2**64})
    assert name in str(error.value).split("Invoked with")[0], str(error.value)


# ---- zero-size dimensions, as PyTorch treats them ----

def results(fn, x, weight, bias, grad_seed, **args):
    """y and the three gradients (grad_y drawn from grad_seed), or the exception raised."""
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    try:
        y = fn(*leaves, **args)
        grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=y.dtype)
        grads = torch.autograd.grad(y, leaves, grad_y, allow_unused=True)
    except (RuntimeError, ValueError, IndexError) as error:
        return error
    return [y.detach()] + [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves)]


ZERO_SIZES = {
    # id: (x shape, weight shape, bias size, conv args)
    "batch_0": ((0, 4, 5, 6), (4, 3, 3, 2), 3, {}),
    "batch_0_strided_grouped": ((0, 4, 5, 6), (4, 3, 3, 2), 6, dict(stride=2, padding=1, groups=2,
                                                                    output_padding=1)),
    "c_in_0": ((2, 0, 5, 5), (0, 3, 3, 3), 3, {}),
    "batch_0_c_in_0": ((0, 0, 5, 5), (0, 3, 3, 3), 3, {}),
    "h_0": ((2, 4, 0, 5), (4, 3, 3, 3), 3, {}),
    "w_0": ((2, 4, 5, 0), (4, 3, 3, 3), 3, {}),
    "unbatched_c_0": ((0, 5, 5), (0, 3, 3, 3), 3, {}),
}


@pytest.mark.parametrize("x_shape,w_shape,bias_size,args", ZERO_SIZES.values(), ids=ZERO_SIZES.keys())
def test_zero_sizes_like_pytorch(x_shape, w_shape, bias_size, args, gen):
    """PyTorch's result (outputs and gradients, exactly: all are empty or sums of nothing), or
    an error where PyTorch raises one, naming the zero size."""
    x, w, b = (torch.randn(*shape, generator=gen, dtype=torch.float64)
               for shape in (x_shape, w_shape, (bias_size,)))
    theirs = results(F.conv_transpose2d, x, w, b, 1, **args)
    ours = results(tconv.conv_transpose2d, x, w, b, 1, **args)
    if isinstance(theirs, Exception):
        assert isinstance(ours, RuntimeError), ours
        assert any(word in head(ours) for word in ("C_in", "H_in")), str(ours)
        return
    assert not isinstance(ours, Exception), ours
    for name, o, t in zip(("y", "grad_x", "grad_weight", "grad_bias"), ours, theirs):
        assert o.shape == t.shape and torch.equal(o, t), name


@pytest.mark.xfail(strict=True, reason="tconv_problem_check refuses H_in or W_in = 0 even for an "
                   "empty batch, where PyTorch returns the empty output of the size formula")
@pytest.mark.parametrize("x_shape,w_shape", [((0, 4, 0, 5), (4, 3, 3, 3)), ((0, 4, 0, 0), (4, 3, 1, 1))],
                         ids=["h_0", "h_0_w_0_kernel_1"])
def test_empty_batch_with_an_empty_plane_like_pytorch(x_shape, w_shape, gen):
    x, w, b = (torch.randn(*shape, generator=gen) for shape in (x_shape, w_shape, (3,)))
    theirs = results(F.conv_transpose2d, x, w, b, 1)
    ours = results(tconv.conv_transpose2d, x, w, b, 1)
    assert not isinstance(ours, Exception), ours
    for o, t in zip(ours, theirs):
        assert o.shape == t.shape and torch.equal(o, t)


def test_zero_output_channels_are_named(gen):
    """PyTorch's CPU path fails inside oneDNN ("could not create a primitive descriptor");
    tconv names C_out."""
    x, w = torch.randn(2, 4, 5, 5, generator=gen), torch.randn(4, 0, 3, 3, generator=gen)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(x, w)
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, w)
    assert "C_out" in head(error.value)


def test_empty_batch_still_checks_its_arguments(gen):
    """PyTorch skips its argument checks for an empty batch (an output_padding of 2 with stride
    1 gives an empty output); tconv keeps them, naming output_padding."""
    x, w = torch.randn(0, 4, 5, 5, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    assert F.conv_transpose2d(x, w, output_padding=2).shape == (0, 3, 9, 9)
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, w, output_padding=2)
    assert "output_padding" in head(error.value)


# ---- tensors of other layouts, strides and dtypes ----

def test_expanded_and_overlapping_inputs_give_the_contiguous_result(gen):
    """A broadcast (stride 0) input and one whose elements overlap in memory are read as the
    values they show."""
    w = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    expanded = torch.randn(1, 4, 1, 1, generator=gen, dtype=torch.float64).expand(2, 4, 5, 5)
    overlapping = torch.randn(64, generator=gen, dtype=torch.float64).as_strided((2, 4, 5, 5), (3, 5, 2, 1))
    for x in (expanded, overlapping):
        assert torch.equal(tconv.conv_transpose2d(x, w), tconv.conv_transpose2d(x.contiguous(), w))
        assert (tconv.conv_transpose2d(x, w) - F.conv_transpose2d(x, w)).abs().max() < 1e-12


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int32, torch.bool], ids=str)
def test_other_dtypes_are_named(dtype, gen):
    x, w = torch.randn(1, 2, 3, 3, generator=gen).to(dtype), torch.randn(2, 2, 3, 3, generator=gen).to(dtype)
    with pytest.raises(RuntimeError, match="dtype"):
        tconv.conv_transpose2d(x, w)


def test_quantized_input_is_named(gen):
    x = torch.quantize_per_tensor(torch.randn(1, 2, 3, 3, generator=gen), 0.1, 0, torch.quint8)
    with pytest.raises(RuntimeError, match="input has dtype torch.quint8"):
        tconv.conv_transpose2d(x, torch.randn(2, 2, 3, 3, generator=gen))


@pytest.mark.parametrize("which", ["input", "weight"])
def test_sparse_tensors_are_named(which, gen):
    x, w = torch.randn(1, 2, 3, 3, generator=gen), torch.randn(2, 2, 3, 3, generator=gen)
    args = {"input": (x.to_sparse(), w), "weight": (x, w.to_sparse())}[which]
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(*args)
    assert which in str(error.value) and "sparse" in str(error.value), str(error.value)


# ---- tensors on different devices (a GPU and the CPU; two GPUs) ----

@pytest.mark.cuda
@pytest.mark.parametrize("moved", ["weight", "bias", "input"])
def test_a_cpu_tensor_with_cuda_ones_is_named(moved, gen):
    tensors = {"input": torch.randn(1, 4, 5, 5, generator=gen), "weight": torch.randn(4, 3, 3, 3, generator=gen),
               "bias": torch.randn(3, generator=gen)}
    args = {name: t if name == moved else t.cuda() for name, t in tensors.items()}
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(args["input"], args["weight"], args["bias"])
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(args["input"], args["weight"], args["bias"])
    assert "cpu" in str(error.value) and "cuda" in str(error.value), str(error.value)
    name = "x" if moved == "input" else moved
    assert name in str(error.value), str(error.value)


@pytest.mark.cuda
def test_grad_y_on_another_device_is_refused_or_moved(gen):
    """Autograd hands backward a grad_y on the output's device (it refuses one that is not):
    tconv's backward never sees a CPU grad_y for a CUDA output."""
    x = torch.randn(1, 4, 5, 5, generator=gen).cuda().requires_grad_()
    w = torch.randn(4, 3, 3, 3, generator=gen).cuda().requires_grad_()
    y = tconv.conv_transpose2d(x, w)
    with pytest.raises(RuntimeError):
        y.backward(torch.randn(y.shape, generator=gen))


@pytest.mark.cuda
def test_tensors_on_two_gpus_are_named(gen):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    x = torch.randn(1, 4, 5, 5, generator=gen).to("cuda:1")
    w = torch.randn(4, 3, 3, 3, generator=gen).to("cuda:0")
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, w)
    assert "cuda:0" in str(error.value) and "cuda:1" in str(error.value), str(error.value)


# ---- output_size out of range: as nn.ConvTranspose2d ----

OUTPUT_SIZES = {
    "smallest": (13, 16), "largest": (14, 18), "below": (12, 16), "above": (13, 19),
    "one_value": (13,), "four_values": (1, 1, 13, 16), "four_values_other_batch": (9, 9, 13, 16),
    "five_values": (2, 4, 13, 16, 1), "empty": (), "negative": [-1, 16], "past_int64": (2**70, 16),
    "int64_max": (2**63 - 1, 16), "float": (13.0, 16.0), "half_integer": (13.5, 16),
    "bool": (True, 16), "none_value": (None, 16), "int": 5, "string": "ab",
    "torch_size": torch.Size([13, 16]), "tensor": torch.tensor([13, 16]),
}


def call_module(cls, x, output_size):
    torch.manual_seed(0)
    module = cls(4, 3, 3, stride=(2, 3), padding=1, dilation=(3, 1)).double()
    try:
        return module(x, output_size=output_size)
    except (ValueError, TypeError, RuntimeError) as error:
        return error


@pytest.mark.parametrize("output_size", OUTPUT_SIZES.values(), ids=OUTPUT_SIZES.keys())
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_output_size_like_pytorch(output_size, batched, gen):
    """The same result as nn.ConvTranspose2d, or the same exception type; a ValueError names the
    output size."""
    x = torch.randn(*((2,) if batched else ()), 4, 5, 6, generator=gen, dtype=torch.float64)
    theirs = call_module(nn.ConvTranspose2d, x, output_size)
    ours = call_module(tconv.ConvTranspose2d, x, output_size)
    if isinstance(theirs, Exception):
        assert type(ours) is type(theirs), (ours, theirs)
        if isinstance(ours, ValueError):
            assert "output size" in str(ours) or "output_size" in str(ours), str(ours)
        return
    assert not isinstance(ours, Exception), ours
    assert ours.shape == theirs.shape and (ours - theirs).abs().max() < 1e-12
