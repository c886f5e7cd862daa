#!/usr/bin/env bash
# cuda_check.sh - compile every src/cuda/*.cu and dev/cuda/*.cu (the kernel lab) for sm_80 and
# sm_90a with this machine's nvcc and for sm_80 and sm_90 with CUDA 11.8's nvcc (the oldest
# toolkit tconv supports; it has no sm_90a, so no wgmma), warnings as errors; and the lab's C
# driver.  Needs no GPU; `make cuda-check` and CI run it.
#
# CUDA 11.8 is assembled once under build/cuda-check/cuda-11.8 (later runs reuse it):
#   - nvcc, cicc, ptxas, ... from Debian's nvidia-cuda-toolkit 11.8 (bookworm, non-free),
#     fetched with apt-get through a private source list, so the system's apt setup is
#     left as it is;
#   - the runtime headers from PyPI's nvidia-cuda-runtime-cu11 and nvidia-cuda-nvcc-cu11
#     (Debian's headers come in a 770 MB package), and CCCL's (thrust, cub; torch's headers
#     include them) from nvidia-cuda-cccl-cu11; the runtime library (libcudart.so.11.0) from
#     nvidia-cuda-runtime-cu11, for `make cuda118`'s binaries;
#   - g++-11 as host compiler (CUDA 11.8 supports gcc up to 11), installed with apt-get
#     when missing.
#
#   scripts/cuda_check.sh --assemble    only assembles CUDA 11.8 (for scripts that use it)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=build/cuda-check
CUDA118="$CACHE/cuda-11.8"
NVCC_NEW=${NVCC:-nvcc}
FLAGS=(-O3 -std=c++17 -Iinclude -Isrc -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings
       -gencode arch=compute_80,code=sm_80)
# sm_90a (wgmma) where the toolkit has it; CUDA 11.8 builds sm_90 without the wgmma kernels
SM90A=(-gencode arch=compute_90a,code=sm_90a -DTCONV_WGMMA)
SM90=(-gencode arch=compute_90,code=sm_90)

install_cuda118() {
    local tmp="$CACHE/download" apt
    rm -rf "$tmp" "$CUDA118"
    mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/deb"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
         "http://deb.debian.org/debian bookworm non-free" > "$tmp/sources.list"
    apt=(-o "Dir::Etc::SourceList=$PWD/$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$PWD/$tmp/lists" -o "Dir::Cache::Archives=$PWD/$tmp/archives"
         -o APT::Sandbox::User=root -q)
    apt-get "${apt[@]}" update > "$tmp/apt.log"
    (cd "$tmp/archives" && apt-get "${apt[@]}" download nvidia-cuda-toolkit >> ../apt.log)
    dpkg -x "$tmp"/archives/nvidia-cuda-toolkit_*.deb "$tmp/deb"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-deps --target "$tmp/pip" \
        nvidia-cuda-runtime-cu11==11.8.89 nvidia-cuda-nvcc-cu11==11.8.89 \
        nvidia-cuda-cccl-cu11==11.8.89.post1

    local lib="$tmp/deb/usr/lib/nvidia-cuda-toolkit" new="$CUDA118.new"
    rm -rf "$new"
    mkdir -p "$new/bin" "$new/nvvm/bin" "$new/nvvm/libdevice" "$new/include" "$new/lib64"
    cp -r "$lib/bin/nvcc" "$lib/bin/crt" "$new/bin/"
    for tool in cudafe++ ptxas nvlink fatbinary bin2c; do cp "$tmp/deb/usr/bin/$tool" "$new/bin/"; done
    cp "$lib/bin/cicc" "$new/nvvm/bin/"
    cp "$lib/libdevice/libdevice.10.bc" "$new/nvvm/libdevice/"
    cp -r "$tmp"/pip/nvidia/cuda_runtime/include/. "$tmp"/pip/nvidia/cuda_nvcc/include/. \
          "$tmp"/pip/nvidia/cuda_cccl/include/. "$new/include/"
    # the runtime library, for binaries built with this toolkit to run on a GPU machine
    cp "$tmp"/pip/nvidia/cuda_runtime/lib/libcudart.so.11.0 "$new/lib64/"
    # Debian's nvcc.profile points at /usr; this one makes the tree relocatable
    cat > "$new/bin/nvcc.profile" <<'PROFILE'
TOP = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
PATH += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES += "-I$(TOP)/include" $(_SPACE_)
PROFILE
    mv "$new" "$CUDA118"
    rm -rf "$tmp"
}

if ! command -v g++-11 > /dev/null; then
    echo "installing g++-11 (host compiler of CUDA 11.8) with apt-get"
    apt-get -q update > /dev/null && apt-get -q install -y g++-11 > /dev/null
fi
# (trees assembled before the CCCL headers and the runtime library were added: again)
if [ ! -x "$CUDA118/bin/nvcc" ] || [ ! -f "$CUDA118/include/thrust/complex.h" ] ||
   [ ! -f "$CUDA118/lib64/libcudart.so.11.0" ]; then
    echo "assembling CUDA 11.8 under $CUDA118 (once)"
    install_cuda118
fi
if [ "${1:-}" = --assemble ]; then
    exit 0
fi

# compile <nvcc> [extra flags]: every source, in parallel; prints one line per file
failed=0
compile() {
    local nvcc=$1; shift
    local version out
    version=$("$nvcc" --version 2> /dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p') || true
    if [ -z "$version" ]; then
        echo "FAIL  $nvcc is not a working nvcc"
        failed=1
        return
    fi
    out="$CACHE/obj-$version"
    mkdir -p "$out"
    echo "== $nvcc: CUDA $version"
    export -f compile_one
    if ! printf '%s\n' src/cuda/*.cu dev/cuda/*.cu | xargs -P "$(nproc)" -I{} \
            bash -c 'compile_one "$@"' _ {} "$out" "$nvcc" "$@" "${FLAGS[@]}"; then
        failed=1
    fi
}
compile_one() {
    local src=$1 out=$2 nvcc=$3; shift 3
    local obj="$out/$(basename "$src" .cu).o" start=$SECONDS
    if "$nvcc" "$@" -c "$src" -o "$obj" > "$obj.log" 2>&1; then
        echo "ok    $src ($((SECONDS - start)) s)"
    else
        echo "FAIL  $src"
        sed 's/^/      /' "$obj.log"
        return 1
    fi
}

compile "$NVCC_NEW" "${SM90A[@]}"
compile "$CUDA118/bin/nvcc" -ccbin g++-11 "${SM90[@]}"

# the kernel lab's C driver, against the CUDA runtime's headers
CUDA_INC="$(dirname "$(command -v "$NVCC_NEW")")/../include"
if cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -I"$CUDA_INC" -c dev/cuda/time_variants.c \
        -o "$CACHE/time_variants.o"; then
    echo "ok    dev/cuda/time_variants.c"
else
    echo "FAIL  dev/cuda/time_variants.c"
    failed=1
fi

if [ "$failed" != 0 ]; then
    echo "cuda-check: FAILED"
    exit 1
fi
echo "cuda-check: every source compiles without warnings with both toolkits"
