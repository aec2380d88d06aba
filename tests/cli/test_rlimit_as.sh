#!/bin/sh
# test_rlimit_as.sh FEDL SOURCE_DIR - `fedl train --memory auto` under an
# address-space limit (ulimit -v, RLIMIT_AS) ends cleanly at every size:
# far too small, the plan refuses naming rlimit-as; too small for the BLAS's
# workspace but enough for training, the portable C kernel runs and the log
# says so; generous, the configured BLAS runs. Never a signal, never a hang.
#
# OpenBLAS's worker threads map their 128 MiB (x86_64) buffer while the
# library loads, before main(), and spin forever when that fails; the fedl
# command therefore runs itself again with OPENBLAS_NUM_THREADS=1 under a
# finite limit (cli/main.c), checked first below with the variable unset.
# The rest runs with OPENBLAS_NUM_THREADS=1 set, as a library user under a
# tight RLIMIT_AS should (docs/DESIGN.md). The limits are set relative to
# the VmSize the process reports under a known limit, so they hold on any
# machine.
# shellcheck disable=SC3045 # ulimit -v: not POSIX, but dash and bash have it (checked below)
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

[ -n "${FEDL_SANITIZED:-}" ] && skip "AddressSanitizer reserves terabytes of shadow memory: ulimit -v cannot apply"
[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "under an emulator the limit would also count qemu"
(ulimit -v 1048576) 2>/dev/null || skip "this shell cannot set ulimit -v"

OPENBLAS_NUM_THREADS=1
export OPENBLAS_NUM_THREADS

# Run fedl train on one of the data sets below under `ulimit -v KIB`, in a
# subshell, killed after 20 s.
limited() { # KiB, small|wide
    if [ "$2" = small ]; then
        model="conv2d(8,3,pad=1) relu maxpool2d(2) flatten dense(10)" batch=32
    else
        # 32x32 inputs: micro-batch 1 needs about 8 MiB, mostly activations
        model="conv2d(64,3,pad=1) relu conv2d(64,3,pad=1) relu maxpool2d(2) flatten dense(10)"
        batch=8
    fi
    (ulimit -v "$1" && exec timeout -k 5 20 "$fedl" train --model "$model" --data "$work/$2" \
        --epochs 1 --batch "$batch" --momentum 0.9 --seed 3 --memory auto --quiet)
}

# An exit status that is neither a signal (>= 128) nor timeout's 124.
clean_exit() { # name, expected exit code
    if [ "$rc" -eq 124 ] || [ "$rc" -ge 128 ]; then
        fail "$1: exit $rc (124: hung and killed by timeout; >= 128: killed by a signal)"
        cat "$work/out" "$work/err"
    elif [ "$rc" -ne "$2" ]; then
        fail "$1: exit $rc, expected $2"
        cat "$work/out" "$work/err"
    else
        pass
    fi
}

run() { # name, expected exit code, KiB, small|wide
    limited "$3" "$4" >"$work/out" 2>"$work/err"
    rc=$?
    clean_exit "$1" "$2"
}

# Default threading under a limit between the loader's need and the BLAS
# workers': without the re-exec, even --version hangs at exit.
for kib in 61440 102400 163840; do
    (ulimit -v "$kib" && exec env -u OPENBLAS_NUM_THREADS timeout -k 5 20 "$fedl" --version) \
        >"$work/out" 2>"$work/err"
    rc=$?
    clean_exit "fedl --version under ulimit -v $kib with default BLAS threads" 0
done

configured=$("$fedl" --version | sed -n 's/.*GEMM: \([a-z]*\)).*/\1/p')
[ -n "$configured" ] || {
    fail "fedl --version names no GEMM backend"
    finish
    exit 1
}

python3 "$src/tests/cli/make_idx.py" "$work/small" 300 60 12 4 || exit 1
python3 "$src/tests/cli/make_idx.py" "$work/wide" 16 8 32 4 || exit 1

# VmSize of a run, read from the budget line under a limit where RLIMIT_AS
# decides: the base the other limits are set from (KiB).
vm_size_kib() { # file
    sed -n 's/.*(rlimit-as: .*VmSize \([0-9.]*\) MiB = .*/\1/p' "$1" | awk '{ printf "%d", $1 * 1024 + 1 }'
}
run "train under 256 MiB" 0 262144 small
base_small=$(vm_size_kib "$work/out")
run "wide model under 256 MiB" 0 262144 wide
base_wide=$(vm_size_kib "$work/out")
if [ -z "$base_small" ] || [ -z "$base_wide" ]; then
    skip "rlimit-as does not decide the budget under ulimit -v 256M here (little MemAvailable?): $(grep 'memory budget' "$work/out")"
fi

# Far too small: 4 MiB above what the process already maps, less than the
# process overhead the budget leaves out. A clean refusal naming the limit.
run "refuses a limit far below the need" 1 $((base_wide + 4096)) wide
contains "refusal says why" "$work/err" "refusing to start: the memory budget is .* the process itself needs"
contains "refusal names rlimit-as" "$work/err" "(rlimit-as: .*RLIMIT_AS"
# Enough for the process, not for micro-batch 1 of the wide model (about
# 8 MiB): the plan refuses, naming the smallest budget.
run "refuses a limit below micro-batch 1" 1 $((base_wide + 12 * 1024)) wide
contains "plan refusal says why" "$work/err" "refusing to start: even micro-batch 1 needs"
contains "plan refusal names rlimit-as" "$work/out" "memory budget .*(rlimit-as: .*RLIMIT_AS"

# Enough to train, not enough for the BLAS workspace (OpenBLAS: 128 MiB on
# x86_64 and 32 MiB on aarch64, plus a 16 MiB margin; BLIS: 24 + 16 MiB):
# the portable kernel runs, and the warning says why.
run "trains under a low limit" 0 $((base_small + 28 * 1024)) small
contains "low limit: GEMM backend in the header" "$work/out" "GEMM c\$"
if [ "$configured" != c ]; then
    contains "low limit: the warning names the BLAS" "$work/err" "portable C kernel, not $configured"
    contains "low limit: the warning names RLIMIT_AS" "$work/err" "(RLIMIT_AS .* - VmSize .* free)"
fi
contains "low limit: training finished" "$work/out" "summary: 1 epochs"

# Generous: the configured backend, no warning.
run "trains under a generous limit" 0 $((base_small + 400 * 1024)) small
contains "generous limit: the configured backend" "$work/out" "GEMM $configured\$"
if grep -q "portable C kernel" "$work/err"; then
    fail "generous limit: fell back to the portable kernel"
    cat "$work/err"
else
    pass
fi

# Every limit from just above the base up to where micro-batch 3 fits ends
# in success or a clean error (the plan's refusal, or a NOMEM message),
# never in a signal or a hang. (At the base itself and below, the dynamic
# loader fails to map the libraries, exit 127, or OpenBLAS's initialiser
# runs out of stack growth, SIGSEGV: both before any fedl code runs.)
step=1 refused=0 trained=0
while [ "$step" -le 29 ]; do
    kib=$((base_wide + step * 1024))
    limited "$kib" wide >"$work/out" 2>"$work/err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        trained=$((trained + 1))
        pass
    elif [ "$rc" -eq 1 ] && grep -q "^fedl train: " "$work/err"; then
        refused=$((refused + 1))
        pass
    else
        if [ "$rc" -eq 1 ]; then
            fail "wide model under ulimit -v $kib: exit 1 without a 'fedl train:' message"
            cat "$work/out" "$work/err"
        else
            clean_exit "wide model under ulimit -v $kib" 1
        fi
        break # one failure is enough; more hangs would only make the test slow
    fi
    step=$((step + 2))
done
echo "limits from VmSize + 1 MiB to VmSize + 29 MiB: $refused refused cleanly, $trained trained"
if [ "$refused" -gt 0 ] && [ "$trained" -gt 0 ]; then
    pass
else
    fail "the limits should include both refusals and training runs"
fi
finish
