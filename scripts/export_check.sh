#!/usr/bin/env bash
# export_check.sh - the seed's single-file solution (python -m tconv.export kernelbench) and a
# compile of the sources it embeds, as load_inline would compile them, with both toolkits and
# no GPU (`make export-check`, CI):
#   - CUDA 11.8 (sm_80, sm_90) with g++-11, against the pinned torch (2.1, the seed's);
#   - this machine's nvcc (sm_80, sm_90a with the wgmma kernels), against the newest torch.
# CUDA 11.8 is the tree scripts/cuda_check.sh assembles.  Logs under build/export-check.
#
#   PYTHON         interpreter with the pinned torch and tconv built (default .venv/bin/python)
#   NEWEST_PYTHON  interpreter with the newest torch (default .venv-newest/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
NEWEST_PYTHON=${NEWEST_PYTHON:-.venv-newest/bin/python}
NVCC_NEW=$(command -v "${NVCC:-nvcc}")
OUT=build/export-check
mkdir -p "$OUT"

./scripts/cuda_check.sh --assemble
# export.py reads files only: run as a script, it needs no built extension
"$PYTHON" python/tconv/export.py kernelbench -o "$OUT/solution.py"

failed=0
"$PYTHON" scripts/export_check.py "$OUT/solution.py" --out "$OUT/cuda-11.8" \
    --nvcc build/cuda-check/cuda-11.8/bin/nvcc --ccbin g++-11 --arch 80 --arch 90 &
first=$!
"$NEWEST_PYTHON" scripts/export_check.py "$OUT/solution.py" --out "$OUT/cuda-newest" \
    --nvcc "$NVCC_NEW" --arch 80 --arch 90a || failed=1
wait "$first" || failed=1
if [ "$failed" != 0 ]; then
    echo "export-check: FAILED"
    exit 1
fi
echo "export-check: the solution's sources compile with CUDA 11.8 and $("$NVCC_NEW" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
