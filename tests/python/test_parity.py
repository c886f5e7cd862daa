"""tconv.conv_transpose2d against torch.nn.functional.conv_transpose2d: output and all three
gradients, over a seeded random sweep and the awkward problems, in float32 and float64."""
import pytest
import torch
import torch.nn.functional as F

import tconv
from conftest import SEED
from problems import AWKWARD, conv_args, random_problems, tensors

# max |ours - reference| <= TOLERANCE * max|reference|, the reference in float64.  One floor:
# where a whole tensor cancels to below 1e-3 of its largest sum of |terms| (the same pass on
# |x|, |weight|, |bias|, |grad_y|; seen with a grad_bias of a few elements), the float64
# reference is itself not that exact, and the bound stays at 1e-3 of the terms' size.
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
CANCELLATION_FLOOR = 1e-3

PROBLEMS = [(f"random{i}", p) for i, p in enumerate(random_problems(SEED, 200))]
PROBLEMS += list(AWKWARD.items())


def results(fn, x, weight, bias, grad_y, **args):
    """y and the gradients of x, weight, bias (None without bias) for upstream grad_y."""
    inputs = [t.clone().requires_grad_() for t in (x, weight) + ((bias,) if bias is not None else ())]
    y = fn(inputs[0], inputs[1], inputs[2] if bias is not None else None, **args)
    grads = torch.autograd.grad(y, inputs, grad_y.to(y.dtype))
    return [y.detach(), *grads] + ([] if bias is not None else [None])


def assert_close(name, ours, ref, dtype, scale=None):
    assert ours.dtype == dtype, f"{name}: dtype {ours.dtype}, expected {dtype}"
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)}, expected {tuple(ref.shape)}"
    error = (ours.double() - ref).abs().max().item()
    size = ref.abs().max().item()
    if scale is not None:
        size = max(size, CANCELLATION_FLOOR * scale.abs().max().item())
    bound = TOLERANCE[dtype] * size
    assert error <= bound, f"{name}: max |error| {error:.3g} > {bound:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("problem", [p for _, p in PROBLEMS], ids=[name for name, _ in PROBLEMS])
def test_output_and_gradients_match_pytorch(problem, dtype, gen):
    x, weight, bias, grad_y = tensors(problem, dtype, gen)
    args = conv_args(problem)
    ours = results(tconv.conv_transpose2d, x, weight, bias, grad_y, **args)
    wide = [None if t is None else t.double() for t in (x, weight, bias, grad_y)]
    ref = results(F.conv_transpose2d, *wide, **args)
    scale = results(F.conv_transpose2d, *[None if t is None else t.abs() for t in wide], **args)
    for name, o, r, m in zip(("y", "grad_x", "grad_weight", "grad_bias"), ours, ref, scale):
        if r is not None:
            assert_close(name, o, r, dtype, m)


def test_only_requested_gradients_are_computed(gen):
    x, weight, bias, grad_y = tensors(AWKWARD["all_asymmetric"], torch.float64, gen)
    args = conv_args(AWKWARD["all_asymmetric"])
    for wanted in ((True, False, False), (False, True, False), (False, False, True)):
        inputs = [t.clone().requires_grad_(w) for t, w in zip((x, weight, bias), wanted)]
        tconv.conv_transpose2d(*inputs, **args).backward(grad_y)
        ref = [t.clone().requires_grad_(w) for t, w in zip((x, weight, bias), wanted)]
        F.conv_transpose2d(*ref, **args).backward(grad_y)
        for ours, r, w in zip(inputs, ref, wanted):
            assert (ours.grad is None) == (not w)
            if w:
                assert_close("grad", ours.grad, r.grad, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16],
                         ids=["f32", "f64", "bf16"])
def test_empty_batch_gives_empty_output_and_zero_gradients(dtype, gen):
    problem = dict(AWKWARD["all_asymmetric"], n=0)
    x, weight, bias, grad_y = tensors(problem, dtype, gen)
    args = conv_args(problem)
    ours = results(tconv.conv_transpose2d, x, weight, bias, grad_y, **args)
    ref = results(F.conv_transpose2d, *[t.double() for t in (x, weight, bias, grad_y)], **args)
    for name, o, r in zip(("y", "grad_x", "grad_weight", "grad_bias"), ours, ref):
        assert o.dtype == dtype and o.shape == r.shape, name
        assert torch.equal(o.double(), r), name


def test_strided_inputs_and_grad_output(gen):
    """A channels_last input, a weight and a grad_y with permuted strides: results equal
    those of the contiguous tensors."""
    problem = AWKWARD["all_asymmetric"]
    x, weight, bias, grad_y = tensors(problem, torch.float64, gen)
    args = conv_args(problem)
    ref = results(tconv.conv_transpose2d, x, weight, bias, grad_y, **args)
    x, weight, grad_y = (x.to(memory_format=torch.channels_last),
                         weight.transpose(2, 3).contiguous().transpose(2, 3),
                         grad_y.permute(3, 2, 1, 0).contiguous().permute(3, 2, 1, 0))
    assert not any(t.is_contiguous() for t in (x, weight, grad_y))
    for name, o, r in zip(("y", "grad_x", "grad_weight", "grad_bias"),
                          results(tconv.conv_transpose2d, x, weight, bias, grad_y, **args), ref):
        assert torch.equal(o, r), name
