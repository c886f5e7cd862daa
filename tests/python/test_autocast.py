"""tconv under torch.autocast, beside torch.nn.ConvTranspose2d under the same autocast: the
same output dtype, gradients in the parameters' dtype, and values within the autocast dtype's
rounding.  CPU (bfloat16, and float16 where torch's CPU autocast takes it) always; CUDA
(float16 and bfloat16) where a GPU is present."""
import pytest
import torch
from torch import nn

import tconv
from conftest import SEED, cuda_ready

CASES = [("cpu", torch.bfloat16), ("cpu", torch.float16), ("cuda", torch.float16),
         ("cuda", torch.bfloat16)]
LAYERS = [dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1),
          dict(in_channels=4, out_channels=6, kernel_size=(2, 3), groups=2, bias=False)]


def _skip_unless_available(device, dtype):
    if device == "cuda" and not cuda_ready():
        pytest.skip("needs a CUDA device and tconv built with CUDA")
    if device == "cpu":
        try:
            with torch.autocast("cpu", dtype=dtype):
                pass
        except (RuntimeError, ValueError) as error:
            pytest.skip(f"this torch's CPU autocast does not take {dtype}: {error}")


def _pair(device, layer):
    """nn.ConvTranspose2d and tconv.ConvTranspose2d with the same float32 parameters."""
    torch.manual_seed(SEED)
    ref = nn.ConvTranspose2d(**layer).to(device)
    ours = tconv.ConvTranspose2d(**layer).to(device)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("device,dtype", CASES, ids=[f"{d}-{str(t)[6:]}" for d, t in CASES])
@pytest.mark.parametrize("layer", LAYERS, ids=["strided", "grouped"])
def test_autocast_matches_nn(device, dtype, layer):
    _skip_unless_available(device, dtype)
    ref, ours = _pair(device, layer)
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn(2, layer["in_channels"], 5, 7, generator=generator).to(device)
    grad = None
    results = []
    for module in (ref, ours):
        module.zero_grad()
        xi = x.clone().requires_grad_()
        with torch.autocast(device, dtype=dtype):
            y = module(xi)
        if grad is None:
            grad = torch.randn(y.shape, generator=generator).to(device=device, dtype=y.dtype)
        y.backward(grad)
        results.append((y, xi.grad, {n: p.grad for n, p in module.named_parameters()}))
    (y_ref, gx_ref, gp_ref), (y, gx, gp) = results
    assert y.dtype == y_ref.dtype == dtype
    assert gx.dtype == gx_ref.dtype == torch.float32
    tol = dict(rtol=2e-2, atol=2e-2)  # a few ulps of bfloat16 / float16 on sums of ~30 terms
    torch.testing.assert_close(y.float(), y_ref.float(), **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    assert gp.keys() == gp_ref.keys()
    for name in gp:
        assert gp[name].dtype == gp_ref[name].dtype == torch.float32, name
        torch.testing.assert_close(gp[name], gp_ref[name], **tol)


def test_autocast_leaves_float64_alone():
    """autocast casts no float64 tensor (as for nn's layers): the float64 result stays float64."""
    ref, ours = _pair("cpu", dict(in_channels=3, out_channels=2, kernel_size=3))
    ours.double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = ours(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, tconv.conv_transpose2d(x, ours.weight, ours.bias))


def test_autocast_off_changes_nothing():
    """Inside autocast(enabled=False) the layer runs in its own dtype."""
    _, ours = _pair("cpu", dict(in_channels=3, out_channels=2, kernel_size=3))
    x = torch.randn(1, 3, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        y = ours(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, tconv.conv_transpose2d(x, ours.weight, ours.bias))


def test_autocast_under_compile():
    """torch.compile(fullgraph=True) of the layer under CPU autocast: nn's dtype and values."""
    ref, ours = _pair("cpu", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1))
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(SEED), requires_grad=True)
    compiled = torch.compile(ours, fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, y_ref = compiled(x), ref(x)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert ours.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
