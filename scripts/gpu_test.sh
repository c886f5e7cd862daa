#!/usr/bin/env bash
# gpu_test.sh - everything that needs a GPU, in one go (`make gpu-test`): builds the PyTorch
# extension and the C GPU programs with CUDA, runs the C GPU test, compute-sanitizer's memcheck
# and racecheck on its small configurations, the C API from several threads, every variant
# under memcheck, racecheck, initcheck and synccheck (build/run_variants, one variant at a
# time), pytest (CPU and GPU tests), the fuzzer (2,000 problems, then 500 with inf/NaN), the
# host time per call, every variant timed on the sweep's layers and the quick benchmark.  Each step writes its own log under $OUT (when
# set) or build/gpu-logs; the last lines printed are a table of the steps (PASS/FAIL, seconds, card).
# Exits non-zero if any step failed.
#
#   PYTHON       interpreter with torch (default python3)
#   TCONV_CC, TCONV_CXX  compilers for the extension (default: /usr/bin's gcc and g++)
#   OUT          if set, the logs (the quick benchmark's results among them) also go there as
#                one archive, gpu-logs.tar.gz, beside summary.txt
#   GPU_TEST_STEPS  the names of the steps to run (default all; the table marks the others SKIP)
#   PYTEST_FILES    pytest's files and options (default tests/python but the export's seed check)
#   FUZZ_COUNT, FUZZ_NONFINITE_COUNT  the fuzzer's problems (default 2000 and 500)
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
LOGS=build/gpu-logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*.status
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
CARD=${CARD:-no GPU found}
# build for this card only (faster; 9.0 as sm_90a, for the wgmma kernels); TCONV_CUDA_ARCHS
# overrides
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d .)
[ "$ARCH" = 90 ] && ARCH=90a
export TCONV_CUDA_ARCHS=${TCONV_CUDA_ARCHS:-${ARCH:-80;90a}}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
# the system's gcc/g++ (/usr/bin where present), not a toolchain that links libstdc++
# statically into the extension: that gives it a second copy of iostreams, which crashes as
# soon as the binding formats an error message next to torch's own copy (seen with a gcc
# wrapper that Python was configured with, and that the environment's CC/CXX named);
# TCONV_CC / TCONV_CXX choose others
system_tool() { if [ -x "/usr/bin/$1" ]; then echo "/usr/bin/$1"; else command -v "$1"; fi; }
export CC=${TCONV_CC:-$(system_tool gcc)} CXX=${TCONV_CXX:-$(system_tool g++)}
SANITIZER=$(command -v compute-sanitizer || echo "$(dirname "$(command -v "${NVCC:-nvcc}")")/compute-sanitizer")
STEPS=()

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND with its output in $LOGS/NAME.log and
# records PASS/FAIL and the seconds it took in $LOGS/NAME.status; SKIP where GPU_TEST_STEPS
# (a list of step names, for a run that has not the time for all) leaves it out
step() {
    local name=$1 limit=$2 start=$SECONDS result=PASS
    shift 2
    if ! selected "$name"; then
        echo "SKIP 0" > "$LOGS/$name.status"
        return
    fi
    echo "[$(date +%T)] $name: $*"
    timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1 || result=FAIL
    echo "$result $((SECONDS - start))" > "$LOGS/$name.status"
    echo "[$(date +%T)] $name: $result"
}

{
    nvidia-smi
    nvcc --version
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} > "$LOGS/machine.log" 2>&1

# selected STEP: whether GPU_TEST_STEPS leaves STEP in (all are, without it)
selected() { [ -z "${GPU_TEST_STEPS:-}" ] || [[ " $GPU_TEST_STEPS " == *" $1 "* ]]; }

# the two builds compile the same kernels independently: run them side by side; the
# extension from scratch, so that an earlier build with another compiler cannot linger (a run
# that leaves build-extension out keeps the extension already built)
selected build-extension && rm -rf build/temp.* build/lib.* python/tconv/_C*.so
STEPS+=(build-extension build-test_cuda)
step build-extension 420 env TCONV_CUDA=1 "$PYTHON" setup.py build_ext --inplace &
step build-test_cuda 420 make -j "$MAX_JOBS" build/test_cuda build/test_threads_cuda build/run_variants \
    build/host_overhead build/time_variants &
wait

STEPS+=(test_cuda memcheck racecheck)
step test_cuda 240 ./build/test_cuda
step memcheck 300 "$SANITIZER" --tool memcheck --error-exitcode 1 ./build/test_cuda --small
step racecheck 300 "$SANITIZER" --tool racecheck --error-exitcode 1 ./build/test_cuda --small

STEPS+=(test_threads)
step test_threads 240 ./build/test_threads_cuda

# sanitize_variants TOOL: compute-sanitizer's TOOL on build/run_variants one variant at a time,
# each with its own log; a PASS/FAIL line per variant, non-zero if any failed
sanitize_variants() {
    local tool=$1 failed=0 name
    for name in $(./build/run_variants --list); do
        if "$SANITIZER" --tool "$tool" --error-exitcode 1 ./build/run_variants "$name" \
            > "$LOGS/$tool-variants/$name.log" 2>&1; then
            echo "PASS $name"
        else
            echo "FAIL $name: $LOGS/$tool-variants/$name.log"
            tail -n 15 "$LOGS/$tool-variants/$name.log"
            failed=1
        fi
    done
    return $failed
}
export -f sanitize_variants
export SANITIZER LOGS
for tool in memcheck racecheck initcheck synccheck; do
    mkdir -p "$LOGS/$tool-variants"
    STEPS+=("$tool-variants")
    step "$tool-variants" 1200 bash -c "sanitize_variants $tool"
done

STEPS+=(pytest export-seed)
if "$PYTHON" -c "import pytest" 2> /dev/null; then
    # (torch.compile's and the DDP test's start-up take a while: 600 s)
    # shellcheck disable=SC2086
    step pytest 600 "$PYTHON" -m pytest -q -rs ${PYTEST_FILES:-tests/python --ignore=tests/python/test_export_gpu.py}
    # the solution compiles all of tconv as one CUDA file the first time: minutes
    step export-seed 900 "$PYTHON" -m pytest -q -rs -s tests/python/test_export_gpu.py
else
    for name in pytest export-seed; do
        echo "pytest is not installed for $PYTHON" > "$LOGS/$name.log"
        echo "FAIL 0" > "$LOGS/$name.status"
    done
fi

# random problems through autograd and every variant that takes them, then with inf and NaN
STEPS+=(fuzz fuzz-nonfinite)
step fuzz 900 env PYTHONPATH=python "$PYTHON" -m tconv.fuzz --device cuda --count "${FUZZ_COUNT:-2000}" --every-variant
step fuzz-nonfinite 600 env PYTHONPATH=python "$PYTHON" -m tconv.fuzz --device cuda --count "${FUZZ_NONFINITE_COUNT:-500}" \
    --nonfinite 1 --every-variant

# host time per call: the C API (plan and one-shot) and the Python call beside F.conv_transpose2d
STEPS+=(host-overhead)
step host-overhead 240 bash -c "./build/host_overhead && PYTHONPATH=python $PYTHON -m tconv.bench \
    --host-overhead --out $LOGS/bench"

# every variant on every layer of the benchmark's sweep, both float32 modes: the dispatcher's
# preference rules are read off it
STEPS+=(time-variants)
step time-variants 600 ./build/time_variants bench

if [ -f python/tconv/bench.py ]; then
    STEPS+=(bench)
    step bench 240 env PYTHONPATH=python "$PYTHON" -m tconv.bench --quick --out "$LOGS/bench"
fi

failed=0
for name in "${STEPS[@]}"; do
    read -r result _ < "$LOGS/$name.status"
    if [ "$result" = FAIL ]; then
        failed=1
        echo
        echo "==== $name failed; the end of $LOGS/$name.log:"
        tail -n 25 "$LOGS/$name.log"
    fi
done

{
    echo
    printf '%-20s %-6s %8s  %s\n' step result seconds card
    for name in "${STEPS[@]}"; do
        read -r result seconds < "$LOGS/$name.status"
        printf '%-20s %-6s %8s  %s\n' "$name" "$result" "$seconds" "$CARD"
    done
    echo "logs: $LOGS"
} | tee "$LOGS/summary.txt"
if [ -n "${OUT:-}" ]; then
    tar czf "$OUT/gpu-logs.tar.gz" -C "$(dirname "$LOGS")" "$(basename "$LOGS")"
    cp "$LOGS/summary.txt" "$OUT/"
fi
exit "$failed"
