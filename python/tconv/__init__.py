"""tconv: CUDA kernels for 2D transposed convolution (torch.nn.ConvTranspose2d), forward and
backward, with a C reference on the CPU.

    tconv.conv_transpose2d   torch.nn.functional.conv_transpose2d's drop-in
    tconv.ConvTranspose2d    torch.nn.ConvTranspose2d's drop-in
    tconv.ModelNew           the seed's model on tconv's operator
    tconv.ops                one call per pass (torch.ops.tconv.*), variants and the
                             dispatcher's choice
"""
import importlib.util

import torch  # noqa: F401  (loads libtorch, which _C links against)

try:
    from . import _C
except ImportError as error:
    # Python's own message for a missing extension blames a circular import
    built = importlib.util.find_spec(f"{__name__}._C") is not None
    raise ImportError(
        "tconv's compiled extension tconv._C "
        + (f"does not load ({error})" if built else "is not built")
        + ".  Build it in the source tree with `make ext` (or `python setup.py build_ext "
        "--inplace` with the torch you run, then PYTHONPATH=python), or install the package "
        "with `pip install --no-build-isolation .`") from (error if built else None)

from . import autograd, ops  # noqa: E402,F401  (autograd registers the derivatives)
from .functional import conv_transpose2d  # noqa: E402
from .modules import ConvTranspose2d, ModelNew  # noqa: E402

__version__ = _C.version()

__all__ = ["conv_transpose2d", "ConvTranspose2d", "ModelNew", "ops", "__version__"]
