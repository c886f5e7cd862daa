#!/usr/bin/env bash
# cuda_check.sh - compile the CUDA library (make build/libtconv_cuda.a) and the kernel lab
# (dev/cuda/*.cu, and build/lab_grad_weight linked with the library) with this machine's
# nvcc, and every CUDA source with CUDA 11.8's nvcc (the oldest toolkit tconv supports; it
# has no sm_90a, so no wgmma), each for the targets scripts/nvcc_flags.sh gives it, warnings
# as errors; and the C programs that drive the CUDA library.  Needs no GPU; `make cuda-check`
# and CI run it.
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
# the flags of every compile, besides scripts/nvcc_flags.sh's
FLAGS=(-Iinclude -Isrc -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings)

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

# compile <nvcc> <sources> [extra flags]: the sources, in parallel; prints one line per file
failed=0
compile() {
    local nvcc=$1 sources=$2; shift 2
    local version out flags
    version=$("$nvcc" --version 2> /dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p') || true
    if [ -z "$version" ]; then
        echo "FAIL  $nvcc is not a working nvcc"
        failed=1
        return
    fi
    out="$CACHE/obj-$version"
    mkdir -p "$out"
    read -ra flags <<< "$(scripts/nvcc_flags.sh "$nvcc")"
    echo "== $nvcc: CUDA $version, ${flags[*]}"
    export -f compile_one
    if ! printf '%s\n' $sources | xargs -P "$(nproc)" -I{} \
            bash -c 'compile_one "$@"' _ {} "$out" "$nvcc" "$@" "${flags[@]}" "${FLAGS[@]}"; then
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

# the library as the Makefile builds it (its objects serve `make host-test`), then the lab
echo "== make build/libtconv_cuda.a with $NVCC_NEW"
if make -s -j "$(nproc)" NVCC="$NVCC_NEW" build/libtconv_cuda.a; then
    echo "ok    build/libtconv_cuda.a"
else
    echo "FAIL  build/libtconv_cuda.a"
    failed=1
fi
if make -s NVCC="$NVCC_NEW" build/lab_grad_weight; then
    echo "ok    build/lab_grad_weight"
else
    echo "FAIL  build/lab_grad_weight"
    failed=1
fi
compile "$NVCC_NEW" "$(echo dev/cuda/*.cu)"
compile "$CUDA118/bin/nvcc" "$(echo src/cuda/*.cu src/cuda/*/*.cu dev/cuda/*.cu)" -ccbin g++-11

# the C programs that drive the CUDA library, against the CUDA runtime's headers
CUDA_INC="$(dirname "$(command -v "$NVCC_NEW")")/../include"
c_check() {
    local src=$1; shift
    if cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -Isrc -I"$CUDA_INC" "$@" -c "$src" \
            -o "$CACHE/$(basename "$src" .c).o"; then
        echo "ok    $src $*"
    else
        echo "FAIL  $src $*"
        failed=1
    fi
}
c_check dev/cuda/time_variants.c -Itests/c
c_check dev/cuda/host_overhead.c
c_check tests/c/test_cuda.c
c_check tests/c/run_variants.c
c_check tests/c/test_threads.c -DTCONV_TEST_CUDA

if [ "$failed" != 0 ]; then
    echo "cuda-check: FAILED"
    exit 1
fi
echo "cuda-check: every source compiles without warnings with both toolkits"
