#!/bin/sh
# test_cross_federation.sh FEDL SOURCE_DIR - a federated job whose members
# run on different architectures, as deployed: a coordinator on a PC and
# Raspberry Pis as devices. Over a real mosquitto on a free loopback port,
# with signed tasks and updates:
#  1. the host's `fedl serve` (x86_64), one device on the host and one on
#     the target (aarch64 or armhf under qemu-user);
#  2. the same job with the coordinator on the target.
# In both, every round takes both devices' updates (each side verifies the
# other's signatures and decodes its messages), the run ends for both, the
# final model verifies on the other architecture, and the result matches
# `fedl simulate` on the host up to rounding (the GEMM kernels differ
# between the architectures, so the weights are not bit-identical).
# Runs in a cross build (scripts/cross-test sets FEDL_HOST_BINARY to the
# host's fedl, and ctest FEDL_EMULATED_BINARY); skipped, saying why,
# elsewhere or without mosquitto.
set -u
target=$1
src=$2
. "$src/tests/cli/lib.sh"

[ -n "${FEDL_EMULATED_BINARY:-}" ] || skip "not a cross build (scripts/cross-test runs this)"
host=${FEDL_HOST_BINARY:-}
[ -n "$host" ] && [ -x "$host" ] || skip "FEDL_HOST_BINARY does not name the host's fedl"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || skip "mosquitto is not installed (apt-get install mosquitto)"

work=$(mktemp -d)
pids=""
trap stop_and_clean EXIT
[ -n "${FEDL_KEEP:-}" ] && trap - EXIT
cd "$work" || exit 1

# A small learnable set (make_idx.py) and a small CNN: a round of local
# training takes a few seconds under qemu.
python3 "$src/tests/cli/make_idx.py" data 1200 300 28 10 >/dev/null || exit 1
model="conv2d(8,3,pad=1) relu maxpool2d(2) conv2d(16,3,pad=1) relu maxpool2d(2) flatten dense(10)"
rounds=3
common="--seed 5"

mkdir keys
for id in coordinator dev-0 dev-1; do
    "$host" keygen --id "$id" --out "keys/$id" >/dev/null || exit 1
done
cat keys/dev-*.pub >keys/devices.pub

start_plain_broker "$mosquitto" || exit 1

# What both runs must reach: the simulator on the host, same seed and parts.
# shellcheck disable=SC2086
check "the simulator's run" 0 "$host" simulate --data data --model "$model" --clients 2 \
    --rounds $rounds --min-clients 2 $common --metrics sim.jsonl --out sim.fedl --quiet
"$host" ckpt export sim.fedl --safetensors sim.st >/dev/null 2>&1

serve() { # fedl, job
    # shellcheck disable=SC2086
    exec "$1" serve --broker "$broker" --job "$2" --model "$model" --data data \
        --key keys/coordinator.key --devices keys/devices.pub --rounds $rounds \
        --wait-clients 2 --min-clients 2 --timeout-ms 120000 $common \
        --metrics "$2.jsonl" --out "$2.fedl"
}
join() { # fedl, job, device index
    # shellcheck disable=SC2086
    exec "$1" join --broker "$broker" --job "$2" --id "dev-$3" --data data --partition iid \
        --parts 2 --part "$3" --key "keys/dev-$3.key" --coordinator-key keys/coordinator.pub \
        $common
}

# one job: the coordinator on one side, dev-0 and dev-1 as given
run_job() { # job, coordinator's fedl, dev-0's fedl, dev-1's fedl, the other side's fedl
    job=$1
    serve "$2" "$job" >"$job-serve.out" 2>&1 &
    serve_pid=$!
    join "$3" "$job" 0 >"$job-dev-0.out" 2>&1 &
    dev0=$!
    join "$4" "$job" 1 >"$job-dev-1.out" 2>&1 &
    dev1=$!
    pids="$pids $serve_pid $dev0 $dev1"
    succeeded "$job: fedl serve" $serve_pid "$job-serve.out"
    succeeded "$job: dev-0" $dev0 "$job-dev-0.out"
    succeeded "$job: dev-1" $dev1 "$job-dev-1.out"
    contains "$job: every round completed" "$job-serve.out" "^summary: $rounds rounds"
    for i in 0 1; do
        contains "$job: dev-$i saw the job finish" "$job-dev-$i.out" "the job finished"
    done
    check "$job: the final model verifies on the other side" 0 "$5" ckpt verify "$job.fedl"
    "$host" ckpt export "$job.fedl" --safetensors "$job.st" >/dev/null 2>&1
    python3 - "$job.jsonl" sim.jsonl $rounds "$job.st" sim.st <<'EOF_PY' && pass || fail "$job: the rounds against the simulator's"
import array, json, struct, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sim = [json.loads(l) for l in open(sys.argv[2])]
def weights(path):  # safetensors: u64 header length, JSON header, float32 data
    raw = open(path, "rb").read()
    return array.array("f", raw[8 + struct.unpack("<Q", raw[:8])[0]:])
got, want = weights(sys.argv[4]), weights(sys.argv[5])
assert len(got) == len(want) == 9098, (len(got), len(want))
gap = max(abs(a - b) for a, b in zip(got, want))
print("largest weight difference from the simulator's: %.3g" % gap)
assert gap <= 1e-4, gap
print("rounds:", [(r["round"], r["completed"], r["test_loss"]) for r in rows])
print("simulator:", [(r["round"], r["test_loss"]) for r in sim])
assert [r["round"] for r in rows] == list(range(1, int(sys.argv[3]) + 1)), rows
assert all(r["completed"] == 2 for r in rows), "a round without both devices"
for r, s in zip(rows, sim):
    assert abs(r["test_loss"] - s["test_loss"]) <= 1e-3 * abs(s["test_loss"]), (r, s)
    assert abs(r["test_accuracy"] - s["test_accuracy"]) <= 0.01, (r, s)
EOF_PY
}
run_job host-serves "$host" "$host" "$target" "$target"
run_job target-serves "$target" "$target" "$host" "$host"
finish
