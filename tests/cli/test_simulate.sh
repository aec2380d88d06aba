#!/bin/sh
# test_simulate.sh FEDL SOURCE_DIR - `fedl simulate`: a federated run in one
# process completes and learns; the same seed gives the same model whatever
# the number of worker threads, and when clients are killed mid-round and
# restart from their files; FedAvg of one client for one round equals
# centralised training with the same data order, bit for bit; a coordinator
# killed at random points resumes and ends with the same model; a poisoned
# client wrecks FedAvg but not median or Krum, and a NaN update is refused;
# 30% dropout and stragglers still complete every round; a run in which
# every client drops is retried and then fails with a clear message instead
# of hanging; memory does not grow with the number of clients; bad options
# are refused.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

python3 "$src/tests/cli/make_idx.py" "$work/data" 1200 300 12 4 || exit 1
set -- --data "$work/data" --model "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)" \
    --clients 6 --rounds 3 --batch 16 --lr 0.1 --seed 3

check "a simulation" 0 "$fedl" simulate "$@" --workers 2 --metrics "$work/m.jsonl" \
    --out "$work/w2.fedl"
contains "a row per round" "$work/out" "^    3 "
contains "the summary" "$work/out" "^summary: 3 rounds"
python3 - "$work/m.jsonl" >"$work/acc" <<'PY' && pass || fail "metrics: $(cat "$work/acc")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["round"] for r in rows] == [1, 2, 3], rows
assert all(r["selected"] == 6 and r["completed"] == 6 for r in rows), rows
assert rows[-1]["test_accuracy"] > 0.5, rows[-1]  # the bands of make_idx.py are easy
print(rows[-1]["test_accuracy"])
PY
check "one worker" 0 "$fedl" simulate "$@" --workers 1 --quiet --out "$work/w1.fedl"
same "the same model with 1 and 2 workers" "$work/w1.fedl" "$work/w2.fedl"
check "the model file verifies" 0 "$fedl" ckpt verify "$work/w1.fedl"

# Half the clients killed half way through their local training each round
# restart from their own files (client state, trainer checkpoint), redo the
# steps since it and deliver: the same model.
check "clients killed mid-round" 0 "$fedl" simulate "$@" --workers 2 --crash 0.5 \
    --ckpt-dir "$work/crash" --out "$work/crash.fedl"
contains "they were killed and restarted" "$work/out" \
    "client-[0-9]* killed after 6 of 13 steps, restarted from its files at step 4"
same "they still delivered: the same model" "$work/crash.fedl" "$work/w1.fedl"
[ -f "$work/crash/clients/client-0000/client.fedl" ] && pass || fail "no client state kept"
check "the client state verifies" 0 "$fedl" ckpt verify "$work/crash/clients/client-0000/client.fedl"
check "--crash without --ckpt-dir" 2 "$fedl" simulate "$@" --crash 0.5
contains "says why" "$work/err" "needs --ckpt-dir"

# Each client's training planned into a memory budget: a smaller
# micro-batch, the same effective batch, a model as good.
check "clients in 100 KiB" 0 "$fedl" simulate "$@" --client-memory 100K --metrics "$work/cm.jsonl"
contains "the plan" "$work/out" "micro-batch 4 of batch 16"
python3 - "$work/cm.jsonl" "$work/m.jsonl" <<'PY' && pass || fail "accuracy with --client-memory"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1])][-1]["test_accuracy"]
plain = [json.loads(l) for l in open(sys.argv[2])][-1]["test_accuracy"]
assert abs(last - plain) <= 0.02, (last, plain)
PY
check "clients in 1 KiB" 1 "$fedl" simulate "$@" --client-memory 1K
contains "names the smallest budget" "$work/err" "even micro-batch 1 needs .* KiB"
check "a bad --client-memory" 2 "$fedl" simulate "$@" --client-memory lots

# One client, one round, one local epoch, sending its weights: FedAvg gives
# back exactly what `fedl train` (one BLAS thread, like the simulator) gets.
spec="conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)"
check "one client" 0 "$fedl" simulate --data "$work/data" --model "$spec" --clients 1 \
    --min-clients 1 --rounds 1 --batch 16 --lr 0.1 --seed 3 --update weights --out "$work/one.fedl"
check "centralised" 0 env OPENBLAS_NUM_THREADS=1 "$fedl" train --data "$work/data" --model "$spec" \
    --epochs 1 --batch 16 --lr 0.1 --seed 3 --quiet --out "$work/central.fedl"
same "FedAvg of one client equals centralised training" "$work/one.fedl" "$work/central.fedl"

check "30% dropout, 20% stragglers" 0 "$fedl" simulate "$@" --drop 0.3 --slow 0.2 \
    --metrics "$work/drop.jsonl"
python3 - "$work/drop.jsonl" <<'PY' && pass || fail "dropout rounds did not all complete"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3 and all(r["completed"] >= 1 for r in rows), rows
assert sum(r["dropped"] for r in rows) > 0, rows
PY
for strategy in fedavgm fedadam median trimmed-mean krum multi-krum; do
    check "strategy $strategy" 0 "$fedl" simulate "$@" --strategy "$strategy" --quiet \
        --partition dirichlet:0.5
done
check "shards" 0 "$fedl" simulate "$@" --partition shards:2 --quiet

check "every client drops" 1 "$fedl" simulate "$@" --drop 1 --retries 2
contains "it says why" "$work/err" "round 1: 0 of 6 selected clients delivered by the deadline"
contains "after the retries" "$work/err" "3 attempts"

# A poisoned client (the first one sends its delta times -10, or a NaN):
# FedAvg is wrecked by the scaled one and refuses the NaN one; median,
# Krum and Multi-Krum keep within 2 points of their clean runs.
python3 "$src/tests/cli/make_idx.py" "$work/poison" 3000 1000 12 4 || exit 1
accuracy() { # args...: the last round's test accuracy
    "$fedl" simulate --data "$work/poison" --model "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)" \
        --clients 6 --rounds 4 --batch 16 --lr 0.1 --seed 3 --quiet --metrics "$work/p.jsonl" \
        "$@" >/dev/null 2>"$work/p.err" || { echo "exit $?"; return; }
    python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["test_accuracy"])' \
        "$work/p.jsonl"
}
at_least() { # name, value, floor
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$2" "$3"; then
        pass
    else
        fail "$1: $2 < $3"
    fi
}
clean=$(accuracy --strategy fedavg)
wrecked=$(accuracy --strategy fedavg --attackers 1 --attack scale:-10)
at_least "a scaled attacker wrecks FedAvg ($clean -> $wrecked)" "$clean" "$(python3 -c "print($wrecked + 0.2)")"
nan=$(accuracy --strategy fedavg --attackers 1 --attack nan)
at_least "FedAvg refuses the NaN update and keeps its accuracy ($clean -> $nan)" "$nan" \
    "$(python3 -c "print($clean - 0.02)")"
python3 -c 'import json, sys; rows = [json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if all(r["rejected"] == 1 and r["completed"] == 5 for r in rows) else 1)' \
    "$work/p.jsonl" && pass || fail "the NaN update was not refused every round"
for strategy in median krum multi-krum; do
    base=$(accuracy --strategy $strategy)
    attacked=$(accuracy --strategy $strategy --attackers 1)
    at_least "$strategy keeps its accuracy under attack ($base -> $attacked)" "$attacked" \
        "$(python3 -c "print($base - 0.02)")"
done
check "a bad attack" 2 "$fedl" simulate --data "$work/poison" --attackers 1 --attack scale:x

# The coordinator process SIGKILLed at random points and run again: it
# resumes from its last completed round and ends with the same model.
python3 "$src/tests/cli/make_idx.py" "$work/big" 3000 300 28 5 || exit 1
set -- --data "$work/big" --model lenet5 --clients 6 --rounds 10 --batch 16 --lr 0.05 --seed 4 \
    --quiet
start=$(date +%s%N)
check "undisturbed" 0 "$fedl" simulate "$@" --out "$work/undisturbed.fedl"
# Kills land at random points of a run's own length (ASan or an emulator
# makes it many times longer).
length_ms=$((($(date +%s%N) - start) / 1000000))
kills=0 runs=0 resumes=0
while [ $runs -lt 40 ]; do
    runs=$((runs + 1))
    "$fedl" simulate "$@" --ckpt-dir "$work/ck" --out "$work/killed.fedl" >"$work/k.out" 2>&1 &
    pid=$!
    sleep "$(awk -v r=$runs -v ms=$length_ms 'BEGIN { srand(r); printf "%.3f", (0.2 + 0.35 * rand()) * ms / 1000 }')"
    kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid
    rc=$?
    grep -q "^resumed from" "$work/k.out" && resumes=$((resumes + 1))
    [ $rc -eq 0 ] && break
    [ $rc -eq 137 ] || { fail "a run ended with $rc"; cat "$work/k.out"; break; }
done
echo "coordinator killed $kills times in $runs runs, $resumes of them resumed"
[ $rc -eq 0 ] && pass || fail "the killed runs never finished"
[ $kills -ge 1 ] && [ $resumes -ge 1 ] && pass || fail "only $kills kills and $resumes resumes"
same "after the kills, the same model" "$work/killed.fedl" "$work/undisturbed.fedl"
echo garbage >"$work/ck/coordinator.fedl"
check "a damaged coordinator checkpoint is refused" 1 "$fedl" simulate "$@" --ckpt-dir "$work/ck"
contains "naming it" "$work/err" "cannot resume from .*coordinator.fedl"

check "a bad partition" 2 "$fedl" simulate "$@" --partition dirichlet:x
contains "names it" "$work/err" "dirichlet:x"
check "a bad strategy" 2 "$fedl" simulate "$@" --strategy fedsomething
check "a bad update kind" 2 "$fedl" simulate "$@" --update gradients
check "no data" 2 "$fedl" simulate --clients 3

# Only the clients being trained hold memory: 300 clients of a 2.4 MB
# model (720 MB of updates if they were held) peak within a few windows of
# 8 clients' RSS. (AddressSanitizer's quarantine keeps freed blocks.)
if [ -z "${FEDL_SANITIZED:-}" ]; then
    set -- --data "$work/data" --model "dense(4096) relu dense(10)" --rounds 1 --batch 4 \
        --workers 2 --quiet
    check "8 clients" 0 "$fedl" simulate "$@" --clients 8
    few=$(sed -n 's/.*peak RSS \([0-9]*\)\..*/\1/p' "$work/out")
    check "300 clients" 0 "$fedl" simulate "$@" --clients 300
    many=$(sed -n 's/.*peak RSS \([0-9]*\)\..*/\1/p' "$work/out")
    echo "peak RSS: 8 clients $few MiB, 300 clients $many MiB"
    [ -n "$few" ] && [ -n "$many" ] && [ "$many" -le $((few + 40)) ] && pass ||
        fail "300 clients peaked at ${many:-?} MiB, 8 at ${few:-?} MiB"
fi
finish
