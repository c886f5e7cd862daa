"""tconv: CUDA kernels for 2D transposed convolution (torch.nn.ConvTranspose2d), forward and
backward, with a C reference on the CPU.

    tconv.conv_transpose2d   torch.nn.functional.conv_transpose2d's drop-in
    tconv.ConvTranspose2d    torch.nn.ConvTranspose2d's drop-in
    tconv.ModelNew           the seed's model on tconv's operator
    tconv.ops                one call per pass, variants and the dispatcher's choice
"""
import torch  # noqa: F401  (loads libtorch, which _C links against)

from . import _C, ops
from .functional import conv_transpose2d
from .modules import ConvTranspose2d, ModelNew

__version__ = _C.version()

__all__ = ["conv_transpose2d", "ConvTranspose2d", "ModelNew", "ops", "__version__"]
