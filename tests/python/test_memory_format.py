"""Memory formats: tconv's layer returns its output, and its gradients, in the layouts that
torch.nn.ConvTranspose2d gives on the same device (channels_last where the input or the
weight is channels_last), with the same values as from NCHW tensors; torch.compile sees the
same layouts.  CPU always; CUDA where a GPU is present."""
import pytest
import torch
from torch import nn

import tconv
from conftest import SEED, cuda_ready

CL = torch.channels_last
DEVICES = ["cpu", "cuda"]
LAYOUTS = [(False, False), (False, True), (True, False), (True, True)]  # (x, weight) channels_last


def layout(t):
    if t.is_contiguous():
        return "nchw"
    return "channels_last" if t.is_contiguous(memory_format=CL) else "other"


def _run(module, x0, x_cl, grad_seed):
    """y, the gradient reaching x (a non-leaf, so as the layer returned it), and the weight's."""
    module.zero_grad()
    leaf = x0.clone().requires_grad_()
    x = leaf * 1.0
    if x_cl:
        x = x.contiguous(memory_format=CL)
    x.retain_grad()
    y = module(x)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed)).to(y.device)
    y.backward(grad.contiguous(memory_format=CL) if layout(y) == "channels_last" else grad)
    return y, x.grad, module.weight.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_cl,w_cl", LAYOUTS, ids=["nchw", "w_cl", "x_cl", "both_cl"])
def test_layouts_follow_nn(device, x_cl, w_cl):
    if device == "cuda" and not cuda_ready():
        pytest.skip("needs a CUDA device and tconv built with CUDA")
    torch.manual_seed(SEED)
    layer = dict(in_channels=8, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1)
    ref = nn.ConvTranspose2d(**layer).to(device).double()
    ours = tconv.ConvTranspose2d(**layer).to(device).double()
    ours.load_state_dict(ref.state_dict())
    plain = tconv.ConvTranspose2d(**layer).to(device).double()
    plain.load_state_dict(ref.state_dict())
    if w_cl:
        ref, ours = ref.to(memory_format=CL), ours.to(memory_format=CL)
    x0 = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64).to(device)
    got = _run(ours, x0, x_cl, SEED + 1)
    want = _run(ref, x0, x_cl, SEED + 1)
    nchw = _run(plain, x0, False, SEED + 1)
    for name, g, w, v in zip(("y", "grad_x", "grad_weight"), got, want, nchw):
        assert layout(g) == layout(w), f"{name}: {layout(g)}, nn gives {layout(w)}"
        torch.testing.assert_close(g, v, rtol=0, atol=0, msg=f"{name} differs from the NCHW run")
        torch.testing.assert_close(g, w)


def test_compile_keeps_layouts():
    """torch.compile(fullgraph=True) with a channels_last input: the fake kernels' layouts are
    the real ones, so the compiled layer returns what eager does."""
    torch.manual_seed(SEED)
    conv = tconv.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=CL).requires_grad_()
    compiled = torch.compile(conv, fullgraph=True)
    y, y_eager = compiled(x), conv(x)
    assert layout(y) == layout(y_eager) == "channels_last"
    torch.testing.assert_close(y, y_eager)
    y.sum().backward()
    assert x.grad is not None and layout(x.grad) == "channels_last"
