#!/bin/sh
# test_cgroup_memory.sh FEDL SOURCE_DIR - training inside a real memory
# cgroup limited to 96 MiB: `fedl train --memory auto` completes without
# being OOM-killed, and the same run with planning disabled and a large
# batch is OOM-killed (so the test can fail). cgroup v1 (these machines) or
# v2 (Raspberry Pi OS); skipped, saying why, where neither is writable.
set -u
fedl=$1
src=$2
data=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
group=""
cleanup() {
    [ -n "$group" ] && rmdir "$group" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
. "$src/tests/cli/lib.sh"
. "$src/tests/cli/cgroup.sh"

[ -f "$data/train-images-idx3-ubyte.gz" ] || skip "Fashion-MNIST not installed"
[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "under an emulator the limit would also count qemu"
[ -n "${FEDL_SANITIZED:-}" ] && skip "AddressSanitizer's shadow memory does not fit a 96 MiB plan"
[ "$(id -u)" -eq 0 ] || skip "creating a memory cgroup needs root"

limit=$((96 * 1024 * 1024))
make_memory_cgroup fedl-test-$$ "$limit"

set -- --model lenet5 --data "$data" --epochs 1 --train-limit 6000 --test-limit 1000 \
    --lr 0.05 --momentum 0.9 --seed 1 --quiet

before=$(oom_kills)
in_group "$fedl" train "$@" --batch 1024 --memory auto >"$work/out" 2>"$work/err"
rc=$?
if [ "$rc" -eq 0 ]; then
    pass
else
    fail "--memory auto inside a 96 MiB cgroup v$version: exit $rc"
    cat "$work/out" "$work/err"
fi
contains "the budget comes from the cgroup" "$work/out" "memory budget .*cgroup v$version"
contains "a micro-batch was chosen" "$work/out" "memory plan: micro-batch [0-9]* is the largest"
[ "$(oom_kills)" = "$before" ] && pass || fail "the planned run was OOM-killed"
# The group's own peak (what the limit counts). ru_maxrss is printed too but
# not compared: it also counts shared library pages charged elsewhere.
if [ "$version" = 1 ]; then
    peak=$(cat "$group/memory.max_usage_in_bytes")
else
    peak=$(cat "$group/memory.peak" 2>/dev/null || echo 0)
fi
if [ "$peak" -gt 0 ] && [ "$peak" -lt "$limit" ]; then
    pass
else
    fail "the cgroup's peak usage $peak is not under the limit $limit"
fi
rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' "$work/out")
echo "cgroup v$version, limit 96 MiB: $(grep 'memory plan' "$work/out")"
echo "  cgroup peak usage $((peak / 1048576)) MiB; process peak RSS $rss MiB (shared pages included)"

# Planning disabled, a batch whose activations alone are ~1.4 GiB: killed.
before=$(oom_kills)
in_group "$fedl" train "$@" --batch 8192 >"$work/out" 2>"$work/err"
rc=$?
if [ "$rc" -eq 137 ] && [ "$(oom_kills)" != "$before" ]; then
    pass
else
    fail "the unplanned batch-8192 run was not OOM-killed (exit $rc, oom_kill $before -> $(oom_kills))"
    tail -3 "$work/out" "$work/err"
fi
finish
