"""tconv.ConvTranspose2d and tconv.ModelNew as drop-ins for nn.ConvTranspose2d and the seed's
Model: initial values, state_dict, output_size, unbatched input, precision, dtypes, repr."""
import numpy as np
import pytest
import torch
from torch import nn

import tconv
from conftest import SEED


class Model(nn.Module):
    """The seed's model (SPEC)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=False):
        super().__init__()
        self.conv_transpose2d = nn.ConvTranspose2d(in_channels, out_channels, kernel_size,
                                                   stride=stride, padding=padding,
                                                   output_padding=output_padding, groups=groups,
                                                   bias=bias)

    def forward(self, x):
        return self.conv_transpose2d(x)


# (args, kwargs) of nn.ConvTranspose2d
MODULE_ARGS = [
    ((4, 6, 3), {}),
    ((4, 6, 3), {"bias": False}),
    ((6, 9, (2, 3)), {"groups": 3}),
    ((3, 2, (3, 1)), {"dilation": 2, "stride": 2}),
    ((4, 4, 3), {"groups": 4, "stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0)}),
    ((2, 3, 2), {"dtype": torch.float64, "dilation": (1, 3)}),
    ((4, 2, 3), {"stride": 2, "padding": 1, "dilation": 3, "output_padding": 2}),
]
IDS = ["plain", "no_bias", "groups_tuple_kernel", "dilation_stride", "depthwise_asym", "float64",
       "dilation_and_output_padding"]

# (args, kwargs) of the seed's Model
MODEL_ARGS = [((8, 8, 3), {}), ((4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
              ((6, 6, (3, 2)), {"groups": 3, "bias": True})]


def assert_close(ours, ref, tolerance=1e-5):
    assert ours.shape == ref.shape
    error = (ours.double() - ref.double()).abs().max().item()
    assert error <= tolerance * ref.double().abs().max().item()


@pytest.mark.parametrize("seed", [42, SEED])
@pytest.mark.parametrize("args,kwargs", MODULE_ARGS, ids=IDS)
def test_same_seed_gives_equal_parameters(args, kwargs, seed):
    torch.manual_seed(seed)
    ref = nn.ConvTranspose2d(*args, **kwargs)
    after_ref = torch.random.get_rng_state()
    torch.manual_seed(seed)
    ours = tconv.ConvTranspose2d(*args, **kwargs)
    assert torch.equal(torch.random.get_rng_state(), after_ref)
    assert torch.equal(ours.weight, ref.weight)
    assert (ours.bias is None) == (ref.bias is None)
    if ref.bias is not None:
        assert torch.equal(ours.bias, ref.bias)
    assert ours.weight.dtype == ref.weight.dtype


@pytest.mark.parametrize("args,kwargs", MODULE_ARGS, ids=IDS)
def test_repr_and_attributes_match(args, kwargs):
    ref, ours = nn.ConvTranspose2d(*args, **kwargs), tconv.ConvTranspose2d(*args, **kwargs)
    assert repr(ours) == repr(ref)
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                 "output_padding", "dilation", "groups", "padding_mode"):
        assert getattr(ours, name) == getattr(ref, name), name


def test_numpy_integers_are_accepted(gen):
    """PyTorch takes any integer with __index__ for sizes and groups."""
    args, kwargs = (4, 6, np.int64(3)), {"stride": [np.int64(2), 1], "groups": np.int64(2)}
    torch.manual_seed(SEED)
    ref = nn.ConvTranspose2d(*args, **kwargs)
    torch.manual_seed(SEED)
    ours = tconv.ConvTranspose2d(*args, **kwargs)
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)
    x = torch.randn(2, 4, 5, 6, generator=gen)
    assert_close(ours(x), ref(x))
    assert_close(tconv.conv_transpose2d(x, ours.weight, padding=np.int64(1), groups=np.int64(2)),
                 nn.functional.conv_transpose2d(x, ours.weight, padding=1, groups=2))


@pytest.mark.parametrize("args,kwargs", MODEL_ARGS)
def test_seed_check_passes(args, kwargs, gen):
    """The user's check, small: seeded models, seeded torch.rand input, allclose(atol=1e-4)."""
    torch.manual_seed(42)
    original = Model(*args, **kwargs)
    torch.manual_seed(42)
    new = tconv.ModelNew(*args, **kwargs)
    x = torch.rand(2, args[0], 9, 11, generator=gen)
    assert torch.allclose(original(x), new(x), atol=1e-4)


@pytest.mark.parametrize("args,kwargs", MODEL_ARGS)
def test_state_dict_moves_both_ways(args, kwargs, gen):
    x = torch.randn(2, args[0], 5, 7, generator=gen)
    original, new = Model(*args, **kwargs), tconv.ModelNew(*args, **kwargs)
    assert list(original.state_dict()) == list(new.state_dict())
    new.load_state_dict(original.state_dict())
    assert_close(new(x), original(x))
    for p in new.parameters():
        p.data.normal_(generator=gen)
    original.load_state_dict(new.state_dict())
    assert_close(new(x), original(x))


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("stride,output_size", [
    (2, (11, 13)), (2, (12, 14)), ((3, 2), [17, 14]), (3, (18, 20)), (2, None)])
def test_output_size_picks_output_padding(stride, output_size, unbatched, gen):
    ref = nn.ConvTranspose2d(3, 4, 3, stride=stride, padding=1, dilation=(1, 2))
    ours = tconv.ConvTranspose2d(3, 4, 3, stride=stride, padding=1, dilation=(1, 2))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(*(() if unbatched else (2,)), 3, 6, 6, generator=gen)
    y = ours(x, output_size=output_size)
    assert_close(y, ref(x, output_size=output_size))
    if output_size is not None:
        assert tuple(y.shape[-2:]) == tuple(output_size)
        full = tuple(x.shape[:-3]) + (4,) + tuple(output_size)
        assert_close(ours(x, output_size=full), y)


@pytest.mark.parametrize("output_size", [(9, 9), (13, 20), (1, 2, 3)])
def test_bad_output_size_raises_like_pytorch(output_size, gen):
    ref, ours = nn.ConvTranspose2d(3, 4, 3, stride=2), tconv.ConvTranspose2d(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 5, 6, generator=gen)
    with pytest.raises(ValueError):
        ref(x, output_size=output_size)
    with pytest.raises(ValueError, match="output_size|output size"):
        ours(x, output_size=output_size)


def test_unbatched_input(gen):
    ours = tconv.ConvTranspose2d(3, 5, (2, 3), stride=2, bias=True)
    x = torch.randn(3, 4, 6, generator=gen)
    y = ours(x)
    assert y.shape == (5, 8, 13)
    assert_close(y, ours(x.unsqueeze(0))[0])
    assert_close(y, nn.functional.conv_transpose2d(x, ours.weight, ours.bias, stride=2))


@pytest.mark.parametrize("precision", ["tf32", "fp32", None])
def test_precision_is_accepted(precision, gen):
    x, weight = torch.randn(2, 3, 5, 5, generator=gen), torch.randn(3, 2, 3, 3, generator=gen)
    ref = nn.functional.conv_transpose2d(x.double(), weight.double(), stride=2)
    assert_close(tconv.conv_transpose2d(x, weight, stride=2, precision=precision), ref)
    module = tconv.ConvTranspose2d(3, 2, 3, stride=2, bias=False, precision=precision)
    module.weight.data.copy_(weight)
    assert_close(module(x), ref)
    assert module.precision == precision


@pytest.mark.parametrize("precision", ["TF32", "fp16", "", 32])
def test_bad_precision_is_rejected(precision, gen):
    x, weight = torch.randn(1, 2, 3, 3, generator=gen), torch.randn(2, 2, 3, 3, generator=gen)
    with pytest.raises(ValueError, match="precision"):
        tconv.conv_transpose2d(x, weight, precision=precision)
    with pytest.raises(ValueError, match="precision"):
        tconv.ConvTranspose2d(2, 2, 3, precision=precision)


def test_default_precision_follows_cudnn_flag():
    saved = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        assert tconv.ops.resolve_precision(None) == "tf32"
        torch.backends.cudnn.allow_tf32 = False
        assert tconv.ops.resolve_precision(None) == "fp32"
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    assert tconv.ops.resolve_precision("fp32") == "fp32"
    assert tconv.ops.resolve_precision("tf32") == "tf32"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_bfloat16_on_cpu_compute_in_float32(dtype, gen):
    module = tconv.ConvTranspose2d(3, 4, 3, stride=2, dtype=dtype)
    x = torch.randn(2, 3, 4, 5, generator=gen).to(dtype).requires_grad_()
    y = module(x)
    assert y.dtype == dtype
    ref = nn.functional.conv_transpose2d(x.double(), module.weight.double(), module.bias.double(),
                                         stride=2)
    assert_close(y, ref, tolerance=1e-2)
    y.backward(torch.randn(y.shape, generator=gen).to(dtype))
    assert x.grad.dtype == module.weight.grad.dtype == module.bias.grad.dtype == dtype


def test_version_matches_library():
    assert tconv.__version__ == tconv._C.version()
    assert tconv.__version__.count(".") == 2
