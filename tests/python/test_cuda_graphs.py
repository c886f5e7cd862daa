"""tconv under CUDA graphs and without host synchronisation: forward and backward captured in a
torch.cuda.CUDAGraph and replayed with new inputs give eager mode's results; torch.compile's
CUDA graphs (mode="reduce-overhead") likewise; a forward and backward under
torch.cuda.set_sync_debug_mode("error") never synchronise the host.  Skipped without a CUDA
device (the `cuda` marker)."""
import copy

import pytest
import torch

import tconv

pytestmark = pytest.mark.cuda


def layer(precision):
    return tconv.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1,
                                 precision=precision).cuda()


def eager(model, x, grad_y):
    """y and the gradients of x, weight and bias, computed eagerly on a copy of model."""
    model = copy.deepcopy(model)
    x = x.clone().requires_grad_()
    y = model(x)
    y.backward(grad_y)
    return [y.detach(), x.grad, model.weight.grad, model.bias.grad]


@pytest.mark.parametrize("precision", ["tf32", "fp32"])
def test_captured_forward_and_backward_replay_with_new_inputs(precision, gen):
    model = layer(precision)
    static_x = torch.randn(4, 16, 20, 24, generator=gen).cuda().requires_grad_()
    static_grad_y = torch.randn(4, 8, 40, 48, generator=gen).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as PyTorch's docs do
        for _ in range(3):
            model(static_x).backward(static_grad_y)
    torch.cuda.current_stream().wait_stream(side)
    model.zero_grad(set_to_none=True)
    static_x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = model(static_x)
        static_y.backward(static_grad_y)
    for _ in range(3):
        x = torch.randn(static_x.shape, generator=gen).cuda()
        grad_y = torch.randn(static_grad_y.shape, generator=gen).cuda()
        with torch.no_grad():
            static_x.copy_(x)
            static_grad_y.copy_(grad_y)
        graph.replay()
        replayed = [static_y, static_x.grad, model.weight.grad, model.bias.grad]
        for name, ours, ref in zip(("y", "grad_x", "grad_weight", "grad_bias"), replayed,
                                   eager(model, x, grad_y)):
            assert torch.equal(ours, ref), name


def test_compiled_with_cuda_graphs_matches_eager(gen):
    model = layer(None)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    for _ in range(4):  # the first calls record, the later ones replay
        x = torch.randn(4, 16, 20, 24, generator=gen).cuda()
        grad_y = torch.randn(4, 8, 40, 48, generator=gen).cuda()
        model.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_()
        y = compiled(xg)
        y.backward(grad_y)
        ours = [y.detach().clone(), xg.grad, model.weight.grad.clone(), model.bias.grad.clone()]
        for name, o, r in zip(("y", "grad_x", "grad_weight", "grad_bias"), ours,
                              eager(model, x, grad_y)):
            assert torch.allclose(o, r, rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_forward_and_backward_never_synchronise(dtype, gen):
    model = layer(None).to(dtype)
    x = torch.randn(2, 16, 9, 7, generator=gen).cuda().to(dtype).requires_grad_()
    grad_y = torch.randn(2, 8, 18, 14, generator=gen).cuda().to(dtype)
    model(x).backward(grad_y)  # first calls (allocator growth, lazy init) outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(x).backward(grad_y)
        y = tconv.ops.forward(x.detach(), model.weight.detach(), None, (2, 2), (1, 1), (1, 1),
                              (1, 1), 1, None)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert y.shape == (2, 8, 18, 14)
