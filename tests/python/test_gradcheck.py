"""torch.autograd.gradcheck of tconv.conv_transpose2d in float64 on small problems."""
import pytest
import torch

import tconv
from problems import AWKWARD, conv_args, tensors

SMALL = ["1x1_input", "stride_over_kernel", "output_padding_below_dilation", "depthwise_strided",
         "all_asymmetric", "no_bias_strided"]


@pytest.mark.parametrize("name", SMALL)
def test_gradcheck(name, gen):
    problem = AWKWARD[name]
    x, weight, bias, _ = tensors(problem, torch.float64, gen)
    inputs = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    args = conv_args(problem)

    def fn(x, weight, bias=None):
        return tconv.conv_transpose2d(x, weight, bias, **args)

    assert torch.autograd.gradcheck(fn, inputs)


def test_second_derivative_raises_instead_of_dropping_terms(gen):
    """A gradient penalty needs the second derivative, which tconv does not provide: the
    backward of the penalty must fail, not leave the penalty's terms out."""
    problem = AWKWARD["all_asymmetric"]
    x, weight, bias, _ = tensors(problem, torch.float64, gen)
    x.requires_grad_()
    weight.requires_grad_()
    y = tconv.conv_transpose2d(x, weight, bias, **conv_args(problem))
    (grad_x,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        (y.sum() + grad_x.square().sum()).backward()
