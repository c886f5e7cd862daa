"""Builds tconv._C: the PyTorch binding (C++) linked with the tconv C library.

The library's C sources are compiled as C11 by the plain C compiler into objects that are
linked into the extension (BuildExtension would hand them C++ flags).  With CUDA, the
kernels in src/cuda/**.cu are compiled by nvcc; without it, src/no_cuda.c stands in.

Environment:
    TCONV_CUDA=0|1      force the CPU-only or the CUDA build (default: CUDA when torch was
                        built with CUDA and the nvcc found has the same major version)
    TCONV_CUDA_ARCHS    compute capabilities for nvcc, e.g. "80;90a" (scripts/nvcc_flags.sh:
                        default "80;90a", or "80;90" with nvcc 11); 90a adds Hopper's wgmma
                        kernels
"""
import glob
import os
import re
import subprocess
import sys

from setuptools import setup
from distutils.ccompiler import new_compiler  # setuptools' copy once setuptools is imported
from distutils.sysconfig import customize_compiler
import torch
from torch.utils import cpp_extension

C_FLAGS = ["-std=c11", "-O2", "-fopenmp", "-fPIC", "-Wall", "-Wextra"]
ROOT = os.path.dirname(os.path.abspath(__file__))
# absolute: the ninja build runs in the build folder
INCLUDE_DIRS = [os.path.join(ROOT, "include"), os.path.join(ROOT, "src")]


def read_version():
    with open(os.path.join("include", "tconv.h")) as header:
        text = header.read()
    parts = [re.search(r"#define TCONV_VERSION_%s (\d+)" % part, text).group(1)
             for part in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def nvcc_major():
    """Major version of the nvcc that torch would use, or None when there is none."""
    if cpp_extension.CUDA_HOME is None:
        return None
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")
    if not os.path.exists(nvcc):
        return None
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"release (\d+)\.", out)
    return int(found.group(1)) if found else None


def cuda_choice():
    """(whether to build the CUDA kernels, why) from TCONV_CUDA, torch and nvcc."""
    forced = os.environ.get("TCONV_CUDA")
    if forced is not None:
        return forced == "1", f"TCONV_CUDA={forced}"
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} was built without CUDA"
    nvcc = nvcc_major()
    if nvcc is None:
        return False, "no nvcc found (CUDA_HOME)"
    torch_major = int(torch.version.cuda.split(".")[0])
    if nvcc != torch_major:
        return False, (f"nvcc is CUDA {nvcc}, torch was built with CUDA {torch.version.cuda} "
                       "(TCONV_CUDA=1 builds them all the same)")
    return True, f"nvcc and torch both CUDA {torch_major}"


def nvcc_flags():
    """scripts/nvcc_flags.sh's flags for torch's nvcc: the one source of the GPU targets."""
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")
    script = os.path.join(ROOT, "scripts", "nvcc_flags.sh")
    return subprocess.run(["sh", script, nvcc], capture_output=True, text=True, check=True).stdout.split()


class BuildWithC(cpp_extension.BuildExtension):
    """Compiles each extension's C sources (ext.c_sources) as C11, then links their objects."""

    def build_extension(self, ext):
        if ext.c_sources:
            compiler = new_compiler(verbose=self.verbose)
            customize_compiler(compiler)
            ext.extra_objects = compiler.compile(
                ext.c_sources, output_dir=self.build_temp, include_dirs=INCLUDE_DIRS,
                extra_postargs=C_FLAGS, depends=glob.glob("include/*.h") + glob.glob("src/*.h"))
        super().build_extension(ext)


def make_extension():
    c_sources = ["src/problem.c"] + sorted(glob.glob("src/cpu/*.c"))
    binding = ["python/tconv/csrc/binding.cpp"]
    # the binding gets torch's own C++ standard (newer torch headers need a newer one);
    # the CUDA sources include no torch header and stay C++17, as CUDA 11.8 requires
    cxx_flags = ["-O2"]
    cuda, why = cuda_choice()
    if cuda:
        flags = nvcc_flags()
        archs = [f for f in flags if f.startswith("arch=")]
        print(f"tconv: building the CUDA kernels for {', '.join(a.split('code=')[1] for a in archs)}"
              f" and the CPU reference ({why})", file=sys.stderr)
        ext = cpp_extension.CUDAExtension(
            "tconv._C", binding + sorted(glob.glob("src/cuda/**/*.cu", recursive=True)),
            include_dirs=INCLUDE_DIRS,
            define_macros=[("TCONV_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx_flags, "nvcc": flags},
            extra_link_args=["-fopenmp"])
    else:
        print(f"tconv: building the CPU reference only, without CUDA kernels ({why})",
              file=sys.stderr)
        c_sources.append("src/no_cuda.c")
        ext = cpp_extension.CppExtension(
            "tconv._C", binding, include_dirs=INCLUDE_DIRS,
            extra_compile_args={"cxx": cxx_flags}, extra_link_args=["-fopenmp"])
    ext.c_sources = c_sources
    return ext


setup(
    name="tconv",
    version=read_version(),
    description="CUDA kernels for 2D transposed convolution with a PyTorch drop-in",
    package_dir={"": "python"},
    packages=["tconv"],
    package_data={"tconv": ["problems.txt"]},  # tests/problems.txt, for python -m tconv.bench
    ext_modules=[make_extension()],
    cmdclass={"build_ext": BuildWithC},
    python_requires=">=3.8",
    install_requires=["torch>=2.1"],
)
