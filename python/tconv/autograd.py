"""The derivatives of tconv's four operators, each written with the operators themselves.

The passes are linear in each tensor they take, so every derivative is another pass:

    forward(x, weight, bias)      -> grad_input(grad_y, weight), grad_weight(x, grad_y),
                                     grad_bias(grad_y)
    grad_input(grad_y, weight)    -> forward(g, weight) for grad_y (its adjoint, the
                                     transposed convolution), grad_weight(g, grad_y) for weight
    grad_weight(x, grad_y)        -> grad_input(grad_y, g) for x, forward(x, g) for grad_y
    grad_bias(grad_y)             -> g broadcast over grad_y's shape

(g is the gradient arriving at the pass's output.)  Because these formulas call the
registered operators, whose derivatives are registered too, the backward is itself
differentiable: double backward, gradient penalties and gradgradcheck work, and
torch.compile traces forward and backward as tconv operators.  Each formula computes only
the gradients its inputs need.

Registered with torch.library.register_autograd where torch has it (2.4 and newer); on
older versions as the operators' Autograd kernel, an autograd.Function running the
operator below autograd.
"""
import torch

from . import ops

# the inputs after a convolution pass's tensors and size pair: stride, padding,
# output_padding, dilation, groups, precision, algorithm
GEOMETRY_ARGS = 7
# of those, what the derivatives pass on: all but the algorithm, which was forced on this
# pass only
DERIVED_ARGS = GEOMETRY_ARGS - 1


def _forward_setup(ctx, inputs, output):
    x, weight, bias, *rest = inputs
    ctx.save_for_backward(x, weight)
    ctx.geometry = tuple(rest[:DERIVED_ARGS])
    ctx.has_bias = bias is not None


def _forward_backward(ctx, grad_y):
    x, weight = ctx.saved_tensors
    grad_x = grad_w = grad_b = None
    if ctx.needs_input_grad[0]:
        grad_x = ops.grad_input(grad_y, weight, x.shape[2:], *ctx.geometry)
    if ctx.needs_input_grad[1]:
        grad_w = ops.grad_weight(x, grad_y, weight.shape[2:], *ctx.geometry)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        grad_b = ops.grad_bias(grad_y)
    return (grad_x, grad_w, grad_b) + (None,) * GEOMETRY_ARGS


def _gradient_setup(ctx, inputs, output):
    """grad_input's and grad_weight's: their two tensors and the geometry."""
    first, second, _size_pair, *rest = inputs
    ctx.save_for_backward(first, second)
    ctx.geometry = tuple(rest[:DERIVED_ARGS])


def _grad_input_backward(ctx, g):
    grad_y, weight = ctx.saved_tensors
    d_grad_y = d_weight = None
    if ctx.needs_input_grad[0]:
        d_grad_y = ops.forward(g, weight, None, *ctx.geometry)
    if ctx.needs_input_grad[1]:
        d_weight = ops.grad_weight(g, grad_y, weight.shape[2:], *ctx.geometry)
    return (d_grad_y, d_weight, None) + (None,) * GEOMETRY_ARGS


def _grad_weight_backward(ctx, g):
    x, grad_y = ctx.saved_tensors
    d_x = d_grad_y = None
    if ctx.needs_input_grad[0]:
        d_x = ops.grad_input(grad_y, g, x.shape[2:], *ctx.geometry)
    if ctx.needs_input_grad[1]:
        d_grad_y = ops.forward(x, g, None, *ctx.geometry)
    return (d_x, d_grad_y, None) + (None,) * GEOMETRY_ARGS


def _grad_bias_setup(ctx, inputs, output):
    ctx.grad_y_shape = inputs[0].shape


def _grad_bias_backward(ctx, g):
    return g.view(1, -1, 1, 1).expand(ctx.grad_y_shape), None


FORMULAS = {
    "forward": (_forward_setup, _forward_backward),
    "grad_input": (_gradient_setup, _grad_input_backward),
    "grad_weight": (_gradient_setup, _grad_weight_backward),
    "grad_bias": (_grad_bias_setup, _grad_bias_backward),
}


def _autograd_kernel(name, setup_context, backward):
    """The Autograd kernel of operator tconv::<name> for torch versions without
    register_autograd: an autograd.Function whose forward runs the operator below autograd."""
    op = getattr(torch.ops.tconv, name).default

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):
            with torch._C._AutoDispatchBelowAutograd():
                output = op(*inputs)
            setup_context(ctx, inputs, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx, *grads)

    Function.__name__ = Function.__qualname__ = f"tconv_{name}"
    return Function.apply


for _name, (_setup, _backward) in FORMULAS.items():
    if hasattr(torch.library, "register_autograd"):  # torch 2.4 and newer
        torch.library.register_autograd(f"tconv::{_name}", _backward, setup_context=_setup,
                                        lib=ops.LIBRARY)
    else:
        ops.LIBRARY.impl(_name, _autograd_kernel(_name, _setup, _backward), "Autograd")
