#!/bin/sh
# footprint.sh - what fedl costs a Raspberry Pi, measured from this machine:
#  1. the size of the stripped fedl binary and libfedl.so for each build
#     given (the host's, and cross builds from scripts/cross-test);
#  2. the peak RSS of one epoch of LeNet-5 training on 2,000 Fashion-MNIST
#     images, natively and, for each cross build, under qemu-user (memory
#     under emulation is the program's own plus qemu's; time is not
#     meaningful there and is not reported); next to it the peak RSS of
#     `fedl --version` the same way, the floor of the process (and qemu's);
#  3. the instructions of one steady-state LeNet-5 training step (batch 32)
#     on the host, counted by valgrind --tool=callgrind inside
#     fedl_trainer_step, for regression tracking: (5 steps - 1 step) / 4.
#
# Usage: bench/footprint.sh HOST_BUILD [CROSS_BUILD...]
#   e.g. bench/footprint.sh build build-cross-aarch64 build-cross-armhf
set -eu

[ $# -ge 1 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
host_build=$1
data=/usr/share/datasets/fashion-mnist
src=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$host_build/fedl" ] || { echo "footprint.sh: no $host_build/fedl" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "footprint.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -f "$data/train-images-idx3-ubyte.gz" ] || [ -f "$data/train-images-idx3-ubyte" ] ||
    { echo "footprint.sh: needs Fashion-MNIST (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The triple of a build directory's target, from its CMake cache ("" = host).
triple_of() {
    sed -n 's/^CMAKE_C_COMPILER_AR:[A-Z]*=.*\/\([a-z0-9_]*-linux-gnu[a-z]*\)-gcc-ar.*/\1/p' \
        "$1/CMakeCache.txt" 2>/dev/null | grep -v "^$(gcc -dumpmachine)$" | head -1
}
# The qemu and its options that run a build's binaries ("" = natively);
# the target's libraries are multiarch (/) or the build's FEDL_SYSROOT.
emulator_of() {
    root=$(sed -n 's/^FEDL_SYSROOT:PATH=//p' "$1/CMakeCache.txt" 2>/dev/null)
    root=${root:-/}
    case "$(triple_of "$1")" in
    aarch64-linux-gnu) echo "qemu-aarch64 -cpu cortex-a53 -L $root" ;;
    arm-linux-gnueabihf) echo "qemu-arm -L $root" ;;
    *) echo "" ;;
    esac
}
stripped_kib() { # strip program, file
    "$1" -o "$work/stripped" "$2" && echo $(($(stat -c %s "$work/stripped") / 1024))
}

echo "fedl footprint; host $(uname -m); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
printf '%-22s %-22s %10s %16s  %s\n' build target "fedl KiB" "libfedl.so KiB" \
    "LeNet-5 epoch peak RSS"
for build in "$@"; do
    triple=$(triple_of "$build")
    strip="strip"
    [ -n "$triple" ] && strip=$triple-strip
    lib=$(ls "$build"/libfedl.so.*.*.* 2>/dev/null | head -1)
    fedl_kib=$(stripped_kib "$strip" "$build/fedl")
    lib_kib=-
    [ -n "$lib" ] && lib_kib=$(stripped_kib "$strip" "$lib")
    # shellcheck disable=SC2046
    OPENBLAS_NUM_THREADS=1 /usr/bin/time -f %M -o "$work/rss" $(emulator_of "$build") \
        "$build/fedl" train --model lenet5 --data "$data" --epochs 1 --train-limit 2000 \
        --test-limit 500 --seed 1 >"$work/train.out" 2>&1 ||
        { echo "footprint.sh: training failed in $build:" >&2; tail -3 "$work/train.out" >&2; exit 1; }
    rss=$(awk '{printf "%.1f MiB", $1 / 1024}' "$work/rss")
    # shellcheck disable=SC2046
    /usr/bin/time -f %M -o "$work/rss0" $(emulator_of "$build") "$build/fedl" --version >/dev/null
    base=$(awk '{printf "%.1f", $1 / 1024}' "$work/rss0")
    rss="$rss (fedl --version: $base)"
    printf '%-22s %-22s %10s %16s  %s\n' "$build" "${triple:-$(uname -m) (host)}" "$fedl_kib" \
        "$lib_kib" "$rss"
done

echo
if command -v valgrind >/dev/null; then
    python3 "$src/tests/cli/make_idx.py" "$work/data" 160 32 28 10 >/dev/null
    steps_ir() { # steps: instructions inside fedl_trainer_step over that many steps
        OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect=fedl_trainer_step \
            --callgrind-out-file="$work/cg.out" "$host_build/fedl" train --model lenet5 \
            --data "$work/data" --epochs 1 --batch 32 --train-limit $((32 * $1)) \
            >/dev/null 2>&1
        sed -n 's/^summary: \([0-9]*\).*/\1/p; s/^totals: \([0-9]*\).*/\1/p' "$work/cg.out" | tail -1
    }
    one=$(steps_ir 1)
    five=$(steps_ir 5)
    echo "one LeNet-5 training step (batch 32), host, callgrind: $(((five - one) / 4)) instructions" \
        "(the first step: $one; GEMM: $("$host_build/fedl" --version | sed -n 's/.*GEMM: \([a-z]*\).*/\1/p'))"
else
    echo "callgrind: valgrind is not installed (apt-get install valgrind); step count skipped"
fi
