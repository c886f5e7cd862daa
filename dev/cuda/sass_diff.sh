#!/usr/bin/env bash
# sass_diff.sh - whether two source trees compile to the same machine code.  Builds the CUDA
# library of each tree (make build/libtconv_cuda.a: sm_80 and sm_90a), disassembles every
# object (cuobjdump -sass) and compares the SASS of every function, matched by name across
# objects, so that files may move, merge or split.  For changes that must leave kernels as
# they were: restructures, host code, comments.
#
#   dev/cuda/sass_diff.sh [-r RENAMES] TREE_A TREE_B
#
#   RENAMES  a sed script applied to TREE_A's function names: functions renamed in TREE_B
#
# A tree of another revision: `git archive REV Makefile src include scripts | tar -x -C DIR`.
# Needs cuobjdump and nvdisasm on PATH (the CUDA toolkit's, or PyPI's nvidia-cuda-cuobjdump
# and nvidia-cuda-nvdisasm).  Prints the functions found in one tree only and those whose
# SASS differs, then a count; exits 1 if there is any, 0 if every function is identical.
set -euo pipefail
RENAMES=
while getopts "r:" opt; do
    case $opt in
    r) RENAMES=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG") ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if (($# != 2)); then
    echo "usage: $0 [-r RENAMES] TREE_A TREE_B" >&2
    exit 2
fi
for tool in cuobjdump nvdisasm; do
    command -v "$tool" > /dev/null || { echo "$0: $tool not found on PATH" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# index TREE OUT: OUT/index lines "ARCH NAME HASH", one per function of the tree's objects
# (a function compiled into several objects counts once if its SASS is the same in each)
index() {
    local tree=$1 out=$2
    make -s -C "$tree" -j "$(nproc)" build/libtconv_cuda.a > "$out.build.log" 2>&1 ||
        { cat "$out.build.log"; echo "$0: build of $tree failed" >&2; exit 1; }
    mkdir -p "$out/sass"
    local n=0
    while IFS= read -r obj; do
        n=$((n + 1))
        cuobjdump -sass "$obj" | awk -v dir="$out/sass" -v obj="$n" '
            /^Fatbin / { file = "" }
            /^arch = / { arch = $3 }
            /Function : / { name = $3; k++; file = dir "/" obj "-" k; print arch, name, file >> (dir "/../names"); next }
            /^[ \t]*\.{10}[ \t]*$/ { file = ""; next }
            file != "" && NF > 0 { gsub(/[ \t]+/, " "); print > file }'
    done < <(find "$tree/build/cuda" -name '*.o' | sort)
    [ -s "$out/names" ] || { echo "$0: no functions found in $tree" >&2; exit 1; }
    (cd "$out/sass" && find . -type f | xargs md5sum) | sed 's|  \./| |' | sort -k2,2 > "$out/hashes"
    sed "s|$out/sass/||" "$out/names" | sort -k3,3 |
        join -1 3 -2 2 -o 1.1,1.2,2.1 - "$out/hashes" | sort -u > "$out/index"
    # one name with two bodies in one tree: report, keep both
    awk '{ print $1, $2 }' "$out/index" | uniq -d | sed "s|^|differs between objects of $tree: |"
}

index "$1" "$work/a"
index "$2" "$work/b"
if [ -n "$RENAMES" ]; then
    awk '{ print $2 }' "$work/a/index" | sed -f "$RENAMES" > "$work/a/renamed"
    paste -d' ' <(awk '{ print $1 }' "$work/a/index") "$work/a/renamed" <(awk '{ print $3 }' "$work/a/index") |
        sort -u > "$work/a/index.renamed"
    mv "$work/a/index.renamed" "$work/a/index"
fi

join_key() { awk '{ print $1 "|" $2, $3 }' "$1" | sort; }
join -a1 -a2 -e MISSING -o 0,1.2,2.2 <(join_key "$work/a/index") <(join_key "$work/b/index") |
    awk '
        $2 == "MISSING" { print "only in B:", $1; bad++; next }
        $3 == "MISSING" { print "only in A:", $1; bad++; next }
        $2 != $3        { print "differs:  ", $1; bad++; next }
                        { same++ }
        END { printf "%d functions identical, %d not\n", same, bad; exit bad > 0 }'
