#!/bin/sh
# test_monitor_cli.sh FEDL SOURCE_DIR - `fedl train --monitor` on the real
# system: an ordinary run is not disturbed (same model file as without the
# monitor); a policy under which this machine is always CONSTRAINED halves
# the micro-batch and logs the shrink as a JSON line; a bad policy file is
# refused naming its line and column, and a missing one naming the file.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

python3 "$src/tests/cli/make_idx.py" "$work/data" 600 100 12 3 || exit 1
set -- --model "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)" --data "$work/data" \
    --epochs 2 --batch 32 --momentum 0.9 --seed 5 --quiet

check "reference run" 0 "$fedl" train "$@" --out "$work/reference.fedl"
check "monitored run" 0 "$fedl" train "$@" --monitor --monitor-log "$work/quiet.jsonl" \
    --ckpt-dir "$work/ckpt" --out "$work/monitored.fedl"
contains "the monitor says what it watches" "$work/out" "^monitor: every 500 ms"
same "an undisturbed monitored run trains the same weights" "$work/monitored.fedl" \
    "$work/reference.fedl"

# Always constrained here: any machine has less than 99.9% memory available.
printf 'mem_constrained_pct = 99.9\nmem_constrained_leave_pct = 100\ninterval_ms = 50\n' \
    >"$work/tight.conf"
check "constrained run" 0 "$fedl" train "$@" --monitor --policy "$work/tight.conf" \
    --monitor-log "$work/tight.jsonl" --out "$work/tight.fedl"
contains "the shrink is a JSON line" "$work/tight.jsonl" \
    '"from":"ok","to":"constrained".*"action":"shrink: micro-batch 32 -> 16'
contains "with the RSS before and after" "$work/tight.jsonl" '"rss_before":[1-9][0-9]*,"rss_after":[1-9]'
python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$work/tight.jsonl" &&
    pass || fail "the monitor log is not JSON lines"

printf 'mem_critical_pct = 5\ncooldown_ms = soon\n' >"$work/bad.conf"
check "a bad policy is refused" 1 "$fedl" train "$@" --monitor --policy "$work/bad.conf"
contains "naming line and column" "$work/err" "bad.conf:2:15: cooldown_ms: expected a duration"
check "a missing policy is refused" 1 "$fedl" train "$@" --monitor --policy "$work/none.conf"
contains "naming the file" "$work/err" "none.conf"
finish
