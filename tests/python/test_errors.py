"""Bad arguments raise PyTorch's exception types with messages naming the argument, and a
failed construction leaves nothing behind (not even draws from the RNG)."""
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tconv


def functional_cases():
    """(id, x, weight, bias, kwargs, word the message must contain)"""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    return [
        ("channels", torch.randn(2, 3, 5, 5, generator=g), w, None, {}, "channels"),
        ("groups_not_dividing", x, w, None, {"groups": 3}, "groups"),
        ("groups_zero", x, w, None, {"groups": 0}, "groups"),
        ("stride_zero", x, w, None, {"stride": (1, 0)}, "stride"),
        ("padding_negative", x, w, None, {"padding": -1}, "padding"),
        ("dilation_zero", x, w, None, {"dilation": 0}, "dilation"),
        ("kernel_zero", x, torch.randn(4, 3, 0, 3, generator=g), None, {}, "kernel"),
        ("output_padding_too_large", x, w, None, {"stride": 2, "output_padding": 2},
         "output_padding"),
        ("output_too_small", torch.randn(1, 4, 1, 1, generator=g), w, None, {"padding": 2},
         "output"),
        ("stride_three_values", x, w, None, {"stride": (1, 2, 3)}, "stride"),
        ("input_2d", torch.randn(4, 5, generator=g), w, None, {}, "input"),
        ("bias_shape", x, w, torch.randn(4, generator=g), {}, "bias"),
        ("weight_dtype", x, w.double(), None, {}, "dtype"),
        ("bias_dtype", x, w, torch.randn(3, generator=g).double(), {}, "dtype"),
    ]


def type_error_cases():
    """(id, x, weight, bias, kwargs, word the message must contain)"""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    return [
        ("stride_float", x, w, None, {"stride": 1.5}, "stride"),
        ("padding_float_element", x, w, None, {"padding": (1, 0.5)}, "padding"),
        ("dilation_bool", x, w, None, {"dilation": True}, "dilation"),
        ("output_padding_none", x, w, None, {"output_padding": None}, "output_padding"),
        ("groups_float", x, w, None, {"groups": 1.0}, "groups"),
        ("groups_bool", x, w, None, {"groups": True}, "groups"),
        ("input_not_tensor", x.tolist(), w, None, {}, "input"),
        ("weight_not_tensor", x, 1.0, None, {}, "weight"),
        ("bias_not_tensor", x, w, 0.5, {}, "bias"),
    ]


# (id, exception type, x, weight, bias, kwargs, word): values PyTorch rejects with a
# RuntimeError, and values of the wrong type, which it rejects with a TypeError
CASES = ([(c[0], RuntimeError) + c[1:] for c in functional_cases()] +
         [(c[0], TypeError) + c[1:] for c in type_error_cases()])


@pytest.mark.parametrize("error,x,weight,bias,kwargs,word", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_functional_rejects_like_pytorch(error, x, weight, bias, kwargs, word):
    """The exception type PyTorch raises, with a message naming the argument."""
    with pytest.raises(error):
        F.conv_transpose2d(x, weight, bias, **kwargs)
    with pytest.raises(error, match=word):
        tconv.conv_transpose2d(x, weight, bias, **kwargs)


def test_unsupported_dtypes_are_named():
    """PyTorch computes integer transposed convolutions on the CPU; tconv refuses them."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 2, 3, 3, generator=g), torch.randn(2, 2, 3, 3, generator=g)
    with pytest.raises(RuntimeError, match="input has dtype torch.int64"):
        tconv.conv_transpose2d(x.long(), w.long())
    with pytest.raises(RuntimeError, match="weight has dtype torch.int32"):
        tconv.conv_transpose2d(x, w.int())
    with pytest.raises(RuntimeError, match="grad_y has dtype Half"):
        tconv._C.grad_bias(x.half(), None)


def test_device_mismatch_is_rejected():
    """(PyTorch itself lets a CPU input meet a meta weight.)"""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 2, 3, 3, generator=g), torch.randn(2, 2, 3, 3, generator=g)
    with pytest.raises(RuntimeError, match="weight is on meta"):
        tconv.conv_transpose2d(x, w.to("meta"))
    with pytest.raises(RuntimeError, match="bias is on meta"):
        tconv.conv_transpose2d(x, w, torch.randn(2, generator=g).to("meta"))


# kwargs of ConvTranspose2d(4, 6, 3, ...) that nn.ConvTranspose2d rejects with a ValueError
PYTORCH_VALUE_ERRORS = {
    "padding_mode": {"padding_mode": "reflect"},
    "groups_zero": {"groups": 0},
    "in_channels_not_divisible": {"groups": 4, "in_channels": 6},
    "out_channels_not_divisible": {"groups": 4, "out_channels": 6},
}

# kwargs that PyTorch only rejects in forward (RuntimeError), tconv already in the constructor
RUNTIME_ERRORS = {
    "kernel_size": {"kernel_size": (3, 0)},
    "stride": {"stride": 0},
    "padding": {"padding": (0, -1)},
    "output_padding": {"stride": 2, "output_padding": 2},
    "dilation": {"dilation": 0},
    "in_channels": {"in_channels": 0},
}


# kwargs that nn.ConvTranspose2d rejects with a TypeError (its own message or torch.empty's)
PYTORCH_TYPE_ERRORS = {
    "groups": {"groups": 2.0},
    "kernel_size": {"kernel_size": 1.5},
    "stride": {"stride": (1, "2")},
}


def build(cls, kwargs):
    args = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kwargs}
    return cls(**args)


@pytest.mark.parametrize("kwargs", PYTORCH_VALUE_ERRORS.values(), ids=PYTORCH_VALUE_ERRORS.keys())
def test_constructor_value_errors_match_pytorch(kwargs):
    with pytest.raises(ValueError) as ref:
        build(nn.ConvTranspose2d, kwargs)
    with pytest.raises(ValueError) as ours:
        build(tconv.ConvTranspose2d, kwargs)
    assert str(ours.value) == str(ref.value)


@pytest.mark.parametrize("name,kwargs", PYTORCH_TYPE_ERRORS.items(), ids=PYTORCH_TYPE_ERRORS.keys())
def test_constructor_type_errors_match_pytorch(name, kwargs):
    with pytest.raises(TypeError):
        build(nn.ConvTranspose2d, kwargs)(torch.randn(1, 4, 5, 5))
    with pytest.raises(TypeError, match=name):
        build(tconv.ConvTranspose2d, kwargs)


@pytest.mark.parametrize("name,kwargs", RUNTIME_ERRORS.items(), ids=RUNTIME_ERRORS.keys())
def test_constructor_rejects_bad_sizes(name, kwargs):
    with pytest.raises(RuntimeError, match=name):
        build(tconv.ConvTranspose2d, kwargs)


@pytest.mark.parametrize("kwargs", [*PYTORCH_VALUE_ERRORS.values(), *PYTORCH_TYPE_ERRORS.values(),
                                    *RUNTIME_ERRORS.values()],
                         ids=[*PYTORCH_VALUE_ERRORS.keys(), *PYTORCH_TYPE_ERRORS.keys(),
                              *RUNTIME_ERRORS.keys()])
def test_failed_model_construction_leaves_no_state(kwargs):
    if not set(kwargs) <= set(inspect.signature(tconv.ModelNew).parameters):
        pytest.skip("not an argument of ModelNew")
    args = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kwargs}
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    with pytest.raises((ValueError, TypeError, RuntimeError)):
        tconv.ModelNew(**args)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_ops_check_their_arguments():
    g = torch.Generator().manual_seed(0)
    grad_y = torch.randn(2, 6, 7, 7, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    args = ((1, 1), (0, 0), (0, 0), (1, 1), 2, "fp32")
    with pytest.raises(RuntimeError, match="grad_y"):
        tconv.ops.grad_input(grad_y, weight, (6, 5), *args)
    with pytest.raises(RuntimeError, match="grad_y"):
        tconv.ops.grad_weight(torch.randn(2, 4, 5, 6, generator=g), grad_y, (3, 3), *args)
    with pytest.raises(RuntimeError, match="input_hw"):
        tconv.ops.grad_input(grad_y, weight, (5,), *args)
    with pytest.raises(RuntimeError, match="grad_y"):
        tconv.ops.grad_bias(grad_y[0])
    with pytest.raises(RuntimeError, match="pass_"):
        tconv.ops.algorithm("backward", (2, 4, 5, 5), (4, 3, 3, 3), *args[:5], torch.float32,
                            "fp32")


def test_groups_error_names_channels_per_group_and_in_all():
    """weight (4, 4, 3, 3) with groups 3 means 4 output channels per group, 12 in all; the
    message says so and which count groups does not divide."""
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(2, 4, 5, 5, generator=g), torch.randn(4, 4, 3, 3, generator=g)
    with pytest.raises(RuntimeError) as error:
        tconv.conv_transpose2d(x, weight, groups=3)
    assert "C_in 4 (not a multiple of groups 3)" in str(error.value)
    assert "C_out 12 = 3 groups x 4" in str(error.value)
    with pytest.raises(RuntimeError, match=r"C_in 6 = 3 groups x 2, C_out 10 \(not a multiple"):
        tconv.ops.grad_weight(torch.randn(2, 6, 5, 5, generator=g),
                              torch.randn(2, 10, 7, 7, generator=g), (3, 3), (1, 1), (0, 0),
                              (0, 0), (1, 1), 3, None)


def cpu_pass_calls(algorithm):
    """Each pass on small CPU tensors with `algorithm` forced."""
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(1, 2, 3, 3, generator=g), torch.randn(2, 2, 3, 3, generator=g)
    grad_y = torch.randn(1, 2, 5, 5, generator=g)
    args = ((1, 1), (0, 0), (0, 0), (1, 1), 1, None, algorithm)
    return {"forward": lambda: tconv.ops.forward(x, weight, None, *args),
            "grad_input": lambda: tconv.ops.grad_input(grad_y, weight, (3, 3), *args),
            "grad_weight": lambda: tconv.ops.grad_weight(x, grad_y, (3, 3), *args),
            "grad_bias": lambda: tconv.ops.grad_bias(grad_y, algorithm)}


@pytest.mark.parametrize("pass_", tconv.ops.PASSES)
@pytest.mark.parametrize("algorithm", ["no_such_variant", ""])
def test_unknown_algorithm_is_an_error_on_the_cpu(pass_, algorithm):
    with pytest.raises(RuntimeError, match=f"algorithm '{algorithm}' names no CUDA variant"):
        cpu_pass_calls(algorithm)[pass_]()


@pytest.mark.skipif(not tconv.ops.variants(), reason="built without CUDA: no variant to name")
@pytest.mark.parametrize("pass_", tconv.ops.PASSES)
def test_cuda_variant_on_cpu_tensors_is_an_error(pass_):
    name = next(name for name, p in tconv.ops.variants() if p == pass_)
    with pytest.raises(RuntimeError, match=f"algorithm '{name}' is a CUDA variant"):
        cpu_pass_calls(name)[pass_]()
