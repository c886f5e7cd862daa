"""Compiles the sources embedded in a single-file solution (python -m tconv.export kernelbench)
as load_inline would, without a GPU: the C++ file with the host compiler, the CUDA file with
the nvcc given (and its own CUDA headers), for the architectures given, against the torch of
the interpreter that runs this script.  Like load_inline, it puts torch's headers before each
source, adds torch's own flags (include paths, COMMON_NVCC_FLAGS, the C++ ABI) and the
solution's CXX_FLAGS and CUDA_FLAGS; it does not link (that needs the CUDA runtime library of
the toolkit).  The C++ file takes the CUDA headers of the toolkit torch finds (CUDA_HOME): it
includes ATen/cuda/CUDAContext.h, which wants cuBLAS's and cuSOLVER's headers, and the
assembled CUDA 11.8 has only the runtime's.

    python scripts/export_check.py SOLUTION --nvcc NVCC --arch 80 --arch 90a [--ccbin g++-11]
                                   --out DIR

sm_90a adds -DTCONV_WGMMA, as the solution does.  Exits non-zero if either compiler fails;
the compilers' output goes to DIR/*.log.
"""
import argparse
import ast
import concurrent.futures
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch
import torch.utils.cpp_extension as cpp_extension

# what load_inline writes before the sources it is given
CPP_PREAMBLE = "#include <torch/extension.h>\n"
CUDA_PREAMBLE = "#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>\n"


def solution_values(path):
    """The module-level constants of the solution (sources and flags)."""
    return {node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(Path(path).read_text()).body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, (ast.Constant, ast.List))}


def torch_flags():
    """Include flags (torch's and Python's, not CUDA's) and defines that torch's JIT build
    gives every source."""
    try:
        paths = cpp_extension.include_paths(device_type="cuda")
    except TypeError:  # torch before 2.4
        paths = cpp_extension.include_paths(cuda=True)
    cuda_home = str(cpp_extension.CUDA_HOME or "//")
    paths = [p for p in paths if not p.startswith(cuda_home)] + [sysconfig.get_path("include")]
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return ([flag for p in paths for flag in ("-isystem", p)] +
            ["-DTORCH_EXTENSION_NAME=tconv_kernelbench", "-DTORCH_API_INCLUDE_EXTENSION_H",
             f"-D_GLIBCXX_USE_CXX11_ABI={abi}"])


def cxx_standard():
    """What torch's JIT build passes (the solution names no standard): C++20 for the torch
    versions whose headers require it, else C++17."""
    aten = Path(torch.__file__).parent / "include" / "ATen" / "ATen.h"
    return "-std=c++20" if "C++20" in aten.read_text() else "-std=c++17"


def run(command, log):
    with open(log, "w") as out:
        out.write(" ".join(shlex.quote(c) for c in command) + "\n\n")
        out.flush()
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("solution", type=Path)
    parser.add_argument("--nvcc", required=True)
    parser.add_argument("--arch", action="append", required=True, help="e.g. 80, 90, 90a")
    parser.add_argument("--ccbin", default=None, help="host compiler for nvcc and the C++ file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    values = solution_values(args.solution)
    args.out.mkdir(parents=True, exist_ok=True)
    cpp, cuda = args.out / "main.cpp", args.out / "cuda.cu"
    cpp.write_text(CPP_PREAMBLE + values["CPP_SOURCE"])
    cuda.write_text(CUDA_PREAMBLE + values["CUDA_SOURCE"])

    nvcc = os.path.abspath(args.nvcc)
    common = torch_flags()
    if cpp_extension.CUDA_HOME is None:
        parser.error("torch finds no CUDA toolkit (CUDA_HOME) for the C++ file's CUDA headers")
    cuda_include = ["-isystem", os.path.join(cpp_extension.CUDA_HOME, "include")]
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in args.arch]
    if "90a" in args.arch:
        gencode.append("-DTCONV_WGMMA")
    standard = cxx_standard()
    host = args.ccbin or "c++"
    commands = {
        "cpp": [host, "-c", str(cpp), "-o", str(args.out / "main.o"), "-fPIC", standard,
                *common, *cuda_include, *values["CXX_FLAGS"]],
        "cuda": [nvcc, "-c", str(cuda), "-o", str(args.out / "cuda.o"), *common,
                 *cpp_extension.COMMON_NVCC_FLAGS, "--compiler-options", "-fPIC",
                 *values["CUDA_FLAGS"], *gencode, standard,
                 *(["-ccbin", args.ccbin] if args.ccbin else [])],
    }
    with concurrent.futures.ThreadPoolExecutor() as pool:
        codes = dict(zip(commands, pool.map(lambda item: run(item[1], args.out / f"{item[0]}.log"),
                                            commands.items())))
    for name, code in codes.items():
        log = args.out / f"{name}.log"
        print(f"{'ok  ' if code == 0 else 'FAIL'}  {name} (torch {torch.__version__}, "
              f"{os.path.basename(host if name == 'cpp' else nvcc)} {' '.join(args.arch)}): {log}")
        if code:
            print("".join(log.read_text().splitlines(True)[-40:]))
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
