#!/bin/sh
# nvcc_flags.sh - the one source of the flags that compile tconv's CUDA sources: prints them
# for the nvcc given (default: nvcc on PATH), for the Makefile, setup.py and cuda_check.sh.
#
#   scripts/nvcc_flags.sh [NVCC]
#
# The GPU targets are TCONV_CUDA_ARCHS ("80;90a" style, ',' or ';' between them) when set,
# else 80 and 90a with nvcc 12 and newer, 80 and 90 with nvcc 11 (which has no sm_90a).
# 90a adds Hopper's wgmma kernels, and -DTCONV_WGMMA tells the host code that the build holds
# them.
set -eu
nvcc=${1:-nvcc}
major=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
[ -n "$major" ] || { echo "nvcc_flags.sh: $nvcc is not a working nvcc" >&2; exit 1; }
if [ -n "${TCONV_CUDA_ARCHS:-}" ]; then
    archs=$(echo "$TCONV_CUDA_ARCHS" | tr ',;' '  ')
elif [ "$major" -ge 12 ]; then
    archs="80 90a"
else
    archs="80 90"
fi
flags="-O3 -std=c++17"
for arch in $archs; do
    flags="$flags -gencode arch=compute_$arch,code=sm_$arch"
    [ "$arch" = 90a ] && flags="$flags -DTCONV_WGMMA"
done
echo "$flags"
