"""The autograd.Function of conv_transpose2d: forward and every gradient run tconv's passes."""
import torch

from . import ops


class ConvTranspose2dFunction(torch.autograd.Function):
    """y = conv_transpose2d(x, weight, bias); backward computes only the gradients asked for.

    The arguments after bias are those of ops.forward: (h, w) pairs, groups and a resolved
    precision ("fp32" or "tf32"), which the backward passes reuse.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups, precision):
        ctx.conv = (stride, padding, output_padding, dilation, groups)
        ctx.precision = precision
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        return ops.forward(x, weight, bias, stride, padding, output_padding, dilation, groups,
                           precision)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ops.grad_input(grad_y, weight, tuple(x.shape[2:]), *ctx.conv, ctx.precision)
        if ctx.needs_input_grad[1]:
            grad_w = ops.grad_weight(x, grad_y, tuple(weight.shape[2:]), *ctx.conv, ctx.precision)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = ops.grad_bias(grad_y)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None
