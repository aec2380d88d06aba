#!/bin/sh
# test_monitor_pressure.sh FEDL SOURCE_DIR - real memory pressure on a
# monitored training run. Inside a 128 MiB memory cgroup, `fedl train
# --monitor` trains LeNet-5; a memory hog then takes most of the cgroup. The
# trainer must checkpoint and give its memory back (RSS below the floor
# within 2 s of the onset of pressure), must not be OOM-killed, must resume
# once the hog has gone, and must finish with a model byte-identical to an
# undisturbed run's. cgroup v1 (these machines) or v2 (Raspberry Pi OS);
# skipped, saying why, where neither is writable.
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
[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "under an emulator the cgroup would also count qemu"
[ -n "${FEDL_SANITIZED:-}" ] && skip "AddressSanitizer's shadow memory does not fit 128 MiB with the hog"
[ "$(id -u)" -eq 0 ] || skip "creating a memory cgroup needs root"
command -v python3 >/dev/null || skip "python3 (the memory hog) is not installed"

limit=$((128 * 1024 * 1024))
# FEDL_PAUSE_RSS_FLOOR (8 MiB, train.h) plus LeNet-5's parameters, gradients,
# momentum and shuffle order (0.8 MiB): what may stay resident while paused.
floor_mib=9
make_memory_cgroup fedl-pressure-$$ "$limit"

# The CONSTRAINED memory level is off: halving the micro-batch reorders the
# gradient sums, and this test wants bit-identical weights after a pause.
# PSI is off too: on cgroup v1 it is the whole machine's, and CI machines are
# shared. What is left is the cgroup's own headroom.
cat >"$work/policy.conf" <<'POLICY'
mem_constrained_pct = 0
psi_mem_some_pct = 0
psi_mem_full_pct = 0
mem_critical_pct = 8
mem_critical_leave_pct = 15
dwell_ms = 1s
cooldown_ms = 2s
POLICY

set -- --model lenet5 --data "$data" --epochs 4 --train-limit 20000 --test-limit 2000 \
    --batch 64 --lr 0.05 --momentum 0.9 --seed 1 --quiet

# Four epochs: training must outlast the hog's ramp (about 3 s after the
# monitor starts) however fast this machine is. The undisturbed reference:
check "reference run" 0 "$fedl" train "$@" --out "$work/ref.fedl"

before=$(oom_kills)
in_group "$fedl" train "$@" --monitor --policy "$work/policy.conf" \
    --monitor-log "$work/monitor.jsonl" --ckpt-dir "$work/ckpt" --ckpt-seconds 0 \
    --out "$work/monitored.fedl" >"$work/train.out" 2>"$work/train.err" &
trainer=$!
# Let it load its data and start training, then take the memory.
i=0
while ! grep -q '^monitor: every' "$work/train.out" && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
sleep 1
# 60 MiB at once (no pressure yet), then 2 MiB every 100 ms up to 92 MiB.
trace=${FEDL_PRESSURE_TRACE:-$work/trace.csv}
in_group python3 "$src/tests/cli/memhog.py" "$group" 92 60 2 100 3 "$trace" \
    >"$work/hog.out" 2>&1
hog_rc=$?
wait $trainer
rc=$?

[ "$rc" -eq 0 ] && pass || {
    fail "monitored training exit $rc (137 = killed)"
    cat "$work/train.out" "$work/train.err"
}
[ "$hog_rc" -eq 0 ] && pass || {
    fail "the hog exit $hog_rc"
    cat "$work/hog.out"
}
contains "the hog got its memory" "$work/hog.out" "hog: holding"
[ "$(oom_kills)" = "$before" ] && pass || fail "OOM kills in the cgroup: $before -> $(oom_kills)"
same "weights after a pause equal the undisturbed run's" "$work/monitored.fedl" "$work/ref.fedl"
contains "the pause is logged" "$work/monitor.jsonl" '"to":"critical".*"action":"release, checkpoint:'
contains "the resume is logged" "$work/monitor.jsonl" '"from":"critical".*"action":"resume'
contains "the trainer said it resumed" "$work/train.err" "resources back: resuming at step"

# RSS after the release, and how long after the onset of pressure. The hog
# reads the cgroup every 50 ms; a trainer that released between two of its
# readings (the cgroup v1 threshold wakes the monitor at once) left it no
# onset to see. The onset was then after the hog's last reading before the
# release, so the time since that reading bounds the delay from above.
python3 - "$work/monitor.jsonl" "$work/hog.out" "$floor_mib" "$trace" >"$work/timing" 2>&1 <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
release = next(l for l in lines if l["action"].startswith("release, checkpoint"))
hog = open(sys.argv[2]).read().splitlines()
floor = float(sys.argv[3]) * 1048576
onsets = [float(l.split()[2]) for l in hog if l.startswith("hog: onset")]
if onsets:
    onset, seen = onsets[0], "the onset"
else:
    start = next(float(l.split()[2]) for l in hog if l.startswith("hog: start"))
    readings = [start + int(row.split(",")[0]) / 1000.0 for row in open(sys.argv[4])]
    onset = max(t for t in readings if t <= release["time"])
    seen = "the hog's last reading before it (released before the hog saw pressure)"
delay = release["time"] - onset
print("release %.3f s after %s; RSS %.1f -> %.1f MiB (floor %.0f MiB)" % (
    delay, seen, release["rss_before"] / 1048576, release["rss_after"] / 1048576,
    floor / 1048576))
sys.exit(0 if delay <= 2.0 and release["rss_after"] < floor else 1)
PY
if [ $? -eq 0 ]; then
    pass
else
    fail "the release was late or left too much resident"
fi
echo "cgroup v$version, 128 MiB: $(cat "$work/timing")"
finish
