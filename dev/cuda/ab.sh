#!/usr/bin/env bash
# ab.sh - times CUDA variants of source trees against each other on this machine's GPU, in
# interleaved rounds (A, B, ..., A, B, ...: the card's state drifts by a few per cent between
# calls, so figures are compared only within one run).  Each tree (a directory with this
# Makefile, src/, include/, dev/) is built for this card only (sm_90a on 9.0 devices), all at
# once.  A tree of another revision: `git archive REV Makefile src include tests dev scripts |
# tar -x -C DIR`.
#
#   dev/cuda/ab.sh [-n ROUNDS] [-p PROBLEM] [-t] TREE_A TREE_B... -- VARIANT...
#
#   PROBLEM   "seed" (default) or N,C_in,H,W,C_out,k,stride,padding (build/time_variants)
#   -t        also run test_cuda of every tree but the first, then compute-sanitizer memcheck
#             on its --small problems
#
# Output: one line per round, tree, variant and precision ("B r2 forward_direct_64x256 fp32
# 14.418 ms ..."), trees lettered in the order given; logs under $OUT (when set) or build/ab.
# Exits non-zero if a build, a test or a run fails.
set -uo pipefail
ROUNDS=2 PROBLEM=seed TESTS=0
while getopts "n:p:t" opt; do
    case $opt in
    n) ROUNDS=$OPTARG ;;
    p) PROBLEM=$OPTARG ;;
    t) TESTS=1 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
trees=()
while (($#)) && [ "$1" != -- ]; do
    trees+=("$(cd "$1" && pwd)") || exit 2
    shift
done
(($#)) && shift
if ((${#trees[@]} < 2 || $# < 1)); then
    echo "usage: $0 [-n ROUNDS] [-p PROBLEM] [-t] TREE_A TREE_B... -- VARIANT..." >&2
    exit 2
fi
letters=(A B C D E F G H)
((${#trees[@]} <= ${#letters[@]})) || { echo "at most ${#letters[@]} trees" >&2; exit 2; }
LOGS=${OUT:-build/ab}
mkdir -p "$LOGS"
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)
if [ "$ARCH" = 90 ]; then GEN="-gencode arch=compute_90a,code=sm_90a -DTCONV_WGMMA"; else GEN="-gencode arch=compute_$ARCH,code=sm_$ARCH"; fi
NV="-O3 -std=c++17 -Iinclude -Isrc $GEN"
JOBS=$(($(nproc) / ${#trees[@]}))
((JOBS > 0)) || JOBS=1

# every build at once; wait on exactly these (a bare `wait` would also wait for any
# background job of the caller's)
pids=()
for i in "${!trees[@]}"; do
    targets=(build/time_variants)
    ((TESTS && i > 0)) && targets+=(build/test_cuda)
    make -C "${trees[$i]}" -j "$JOBS" NVFLAGS="$NV" "${targets[@]}" > "$LOGS/build-${letters[$i]}.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!trees[@]}"; do
    wait "${pids[$i]}" || { echo "build of ${trees[$i]} failed: $LOGS/build-${letters[$i]}.log"; status=1; }
done
((status)) && exit 1

if ((TESTS)); then
    SAN=$(command -v compute-sanitizer || echo "$(dirname "$(command -v nvcc)")/compute-sanitizer")
    for ((i = 1; i < ${#trees[@]}; i++)); do
        t=${letters[$i]}
        timeout 600 "${trees[$i]}/build/test_cuda" > "$LOGS/test_cuda-$t.log" 2>&1 || status=1
        echo "$t test_cuda: $(tail -n 1 "$LOGS/test_cuda-$t.log")"
        timeout 600 "$SAN" --tool memcheck "${trees[$i]}/build/test_cuda" --small > "$LOGS/memcheck-$t.log" 2>&1 || status=1
        echo "$t memcheck: $(grep "ERROR SUMMARY" "$LOGS/memcheck-$t.log")"
    done
fi

for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!trees[@]}"; do
        for v in "$@"; do
            timeout 300 "${trees[$i]}/build/time_variants" "$PROBLEM" "$v" | sed "s/^/${letters[$i]} r$r /" || status=1
        done
    done
done
exit $status
