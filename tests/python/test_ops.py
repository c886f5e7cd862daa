"""tconv.ops: the low-level calls, the variant table and the dispatcher's choice."""
import pytest
import torch
import torch.nn.functional as F

import tconv
from tconv import ops

CONV = ((2, 1), (1, 0), (1, 0), (1, 2), 2)  # stride, padding, output_padding, dilation, groups


def test_passes_match_pytorch_in_float64(gen):
    x = torch.randn(2, 4, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = F.conv_transpose2d(x, weight, bias, stride=CONV[0], padding=CONV[1],
                             output_padding=CONV[2], dilation=CONV[3], groups=CONV[4])
    grad_y = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, (x, weight, bias), grad_y)
    x, weight, bias = x.detach(), weight.detach(), bias.detach()
    ours = [ops.forward(x, weight, bias, *CONV, "fp32"),
            ops.grad_input(grad_y, weight, (5, 6), *CONV, "fp32"),
            ops.grad_weight(x, grad_y, (3, 2), *CONV, "fp32"),
            ops.grad_bias(grad_y)]
    for o, r in zip(ours, [ref.detach(), *ref_grads]):
        assert (o - r).abs().max() <= 1e-12 * r.abs().max()


@pytest.mark.skipif(ops.cuda_available(), reason="built with CUDA")
def test_cpu_only_build_has_no_variants():
    assert ops.variants() == []
    with pytest.raises(RuntimeError, match="tconv algorithm"):
        ops.algorithm("forward", (2, 4, 5, 6), (4, 3, 3, 2), *CONV, torch.float32, "tf32")


def test_variants_name_their_pass():
    for name, pass_ in ops.variants():
        assert pass_ in ("forward", "grad_input", "grad_weight", "grad_bias") and name


def test_cuda_available_matches_variants():
    assert ops.cuda_available() == bool(ops.variants()) == tconv._C.cuda_available()
