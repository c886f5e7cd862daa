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
