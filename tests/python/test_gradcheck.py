"""torch.autograd.gradcheck and gradgradcheck of tconv in float64 on small problems: the first
and second derivatives of conv_transpose2d and of each pass (tconv.ops), and second
derivatives that models use (a gradient penalty, the gradient of grad_x with respect to the
weight) against PyTorch's own.  On the CPU always, on a GPU with the `cuda` marker."""
import pytest
import torch
import torch.nn.functional as F

import tconv
from problems import AWKWARD, conv_args, pair, tensors

SMALL = ["1x1_input", "stride_over_kernel", "output_padding_below_dilation", "depthwise_strided",
         "all_asymmetric", "no_bias_strided"]
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.cuda)]


def leaves(problem, device, gen):
    """x, weight, bias (or None), grad_y of problem in float64 on device, the first three
    requiring grad."""
    x, weight, bias, grad_y = (None if t is None else t.to(device)
                               for t in tensors(problem, torch.float64, gen))
    return (x.requires_grad_(), weight.requires_grad_(),
            None if bias is None else bias.requires_grad_(), grad_y)


def geometry(problem):
    return (pair(problem["stride"]), pair(problem["padding"]), pair(problem["output_padding"]),
            pair(problem["dilation"]), problem["groups"], "fp32")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", SMALL)
def test_gradcheck_and_gradgradcheck(name, device, gen):
    problem = AWKWARD[name]
    x, weight, bias, _ = leaves(problem, device, gen)
    inputs = [t for t in (x, weight, bias) if t is not None]
    args = conv_args(problem)

    def fn(x, weight, bias=None):
        return tconv.conv_transpose2d(x, weight, bias, **args)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["all_asymmetric", "depthwise_strided"])
def test_each_pass_is_twice_differentiable(name, device, gen):
    """grad_input in (grad_y, weight), grad_weight in (x, grad_y), grad_bias in grad_y."""
    problem = dict(AWKWARD[name], n=1)
    x, weight, _, grad_y = leaves(problem, device, gen)
    grad_y.requires_grad_()
    g = geometry(problem)
    input_hw, kernel_hw = tuple(x.shape[2:]), tuple(weight.shape[2:])
    calls = [(lambda gy, w: tconv.ops.grad_input(gy, w, input_hw, *g), (grad_y, weight)),
             (lambda x, gy: tconv.ops.grad_weight(x, gy, kernel_hw, *g), (x, grad_y)),
             (tconv.ops.grad_bias, (grad_y,))]
    for fn, inputs in calls:
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)


def both(problem, device, gen):
    """(ours, PyTorch's) conv_transpose2d as functions of x, weight, bias, and the leaves."""
    args = conv_args(problem)
    return ((lambda x, w, b: tconv.conv_transpose2d(x, w, b, **args)),
            (lambda x, w, b: F.conv_transpose2d(x, w, b, **args)),
            leaves(problem, device, gen))


def assert_close(ours, ref):
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= 1e-12 * max(ref.abs().max(), 1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["all_asymmetric", "groups3"])
def test_gradient_penalty_matches_pytorch(name, device, gen):
    """loss = sum(sin(y)), penalty = loss + the squared norms of its gradients with respect to
    x, weight and bias: the penalty's gradients need the derivative of every backward pass
    (grad_y = cos(y) depends on all three)."""
    ours, theirs, (x, weight, bias, _) = both(AWKWARD[name], device, gen)
    results = []
    for fn in (ours, theirs):
        loss = fn(x, weight, bias).sin().sum()
        grads = torch.autograd.grad(loss, (x, weight, bias), create_graph=True)
        penalty = loss + sum(g.square().sum() for g in grads)
        results.append(torch.autograd.grad(penalty, (x, weight, bias)))
    for o, r in zip(*results):
        assert_close(o, r)


@pytest.mark.parametrize("device", DEVICES)
def test_grad_of_input_gradient_with_respect_to_weight(device, gen):
    """d/dweight of a function of grad_x, and of grad_weight with respect to x: what PyTorch
    gives, not 'appears to not have been used in the graph'."""
    ours, theirs, (x, weight, bias, grad_y) = both(AWKWARD["all_asymmetric"], device, gen)
    results = []
    for fn in (ours, theirs):
        y = fn(x, weight, bias)
        grad_x, grad_w = torch.autograd.grad(y, (x, weight), grad_y, create_graph=True)
        results.append(torch.autograd.grad(grad_x.square().sum(), weight, retain_graph=True) +
                       torch.autograd.grad(grad_w.sin().sum(), x))
    for o, r in zip(*results):
        assert_close(o, r)
