#!/bin/sh
# test_federation_hostile.sh FEDL SOURCE_DIR - a real `fedl serve` and three
# real `fedl join` devices over a real mosquitto, attacked during the run
# by rogue_device (tests/support/rogue_device.c), a device whose key is
# registered, so that what it signs passes the signature check:
#  - nan: an update of the open round whose values are NaN is refused;
#  - oversized: an update with more values than the model, and a chunk
#    declaring a body over the 64 MiB cap, are dropped;
#  - replay: dev-0's update of an earlier round, republished byte for byte
#    on its topic, is dropped as a replay;
#  - forged-task: a task claiming to be the coordinator's but signed by
#    the rogue's key is dropped by every device;
# each with a log line naming the sender and the reason, and the run still
# completes every round, every device sees the end, and the model learns.
# The broker is plain MQTT with no ACL (anyone may publish anywhere, which
# the replay needs): TLS and the ACL are covered by test_federation.sh.
# The model is a small CNN (9098 parameters), quick to train; replays of
# updates of several chunks are tested in tests/fl/test_mqtt.c.
# Skipped, saying why, without mosquitto, Fashion-MNIST or rogue_device.
set -u
fedl=$1
src=$2
. "$src/tests/cli/lib.sh"
data=/usr/share/datasets/fashion-mnist
rogue="$(dirname "$fedl")/rogue_device"

mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || skip "mosquitto is not installed (apt-get install mosquitto)"
[ -f "$data/train-images-idx3-ubyte.gz" ] || [ -f "$data/train-images-idx3-ubyte" ] ||
    skip "Fashion-MNIST not installed at $data (apt-get install dataset-fashion-mnist)"
[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "the broker and 8 emulated processes take too long"
[ -x "$rogue" ] || skip "no rogue_device next to $fedl (built with the tests)"

work=$(mktemp -d)
chmod 755 "$work" # the broker drops to its own user
pids=""
trap stop_and_clean EXIT
[ -n "${FEDL_KEEP:-}" ] && trap - EXIT
cd "$work" || exit 1

# A round of local training lasts about a second, long enough for every
# attack to land while the run is on (a rogue acts within milliseconds of
# a task). Under a sanitizer training is several times slower: fewer samples.
samples=18000
[ -n "${FEDL_SANITIZED:-}" ] && samples=3000
rounds=5
model="conv2d(8,3,pad=1) relu maxpool2d(2) conv2d(16,3,pad=1) relu maxpool2d(2) flatten dense(10)"
job=hj

# --- signing keys: the coordinator, three honest devices and the rogue,
# all four devices registered
mkdir keys
for id in coordinator dev-0 dev-1 dev-2 dev-r; do
    "$fedl" keygen --id "$id" --out "keys/$id" >/dev/null || exit 1
done
cat keys/dev-*.pub >keys/devices.pub

# --- the broker: plain MQTT on a free loopback port
start_plain_broker "$mosquitto" || exit 1

serve() {
    exec "$fedl" serve --broker "$broker" --job $job --model "$model" \
        --data "$data" --test-limit 2000 --key keys/coordinator.key --devices keys/devices.pub \
        --rounds $rounds --wait-clients 3 --min-clients 3 --quorum 0.75 \
        --timeout-ms 60000 --seed 5 --metrics serve.jsonl
}
join() { # device index
    exec "$fedl" join --broker "$broker" --job $job --id "dev-$1" --data "$data" --partition iid \
        --parts 3 --part "$1" --key "keys/dev-$1.key" --coordinator-key keys/coordinator.pub \
        --train-limit $samples --seed 5
}
attack() { # name: rogue_device as dev-r
    exec "$rogue" --broker "$broker" --job $job --id dev-r --key keys/dev-r.key \
        --coordinator-key keys/coordinator.pub --attack "$1" --victim dev-0 --timeout-s 60
}

# --- the run: the attacks start once round 1 is out to the honest three.
# dev-r, announced online, is among the selected from round 2 on; the
# quorum (3 of 4) closes rounds without it. Its own updates (nan, then
# oversized) go one process after the other, so that their sequence
# numbers arrive in order; the replay and the forged task run alongside.
serve >serve.out 2>&1 &
serve_pid=$!
pids="$pids $serve_pid"
for i in 0 1 2; do
    join "$i" >"dev-$i.out" 2>&1 &
    pids="$pids $!"
done
wait_until 60 grep -q "^starting with 3 devices" serve.out || {
    fail "rounds did not start"
    cat serve.out
    exit 1
}
attack replay >replay.out 2>&1 &
replay_pid=$!
attack forged-task >forged-task.out 2>&1 &
forged_pid=$!
pids="$pids $replay_pid $forged_pid"
for name in nan oversized; do
    attack "$name" >"$name.out" 2>&1 &
    pids="$pids $!"
    succeeded "rogue_device --attack $name" $! "$name.out"
done
succeeded "rogue_device --attack forged-task" $forged_pid forged-task.out
succeeded "rogue_device --attack replay" $replay_pid replay.out
succeeded "fedl serve" $serve_pid serve.out
cat forged-task.out nan.out oversized.out replay.out

# --- what each attack left in the logs
drop="dropped a message on fedl/$job"
contains "the NaN update was refused" serve.out \
    "update of dev-r refused: client 'dev-r': delta\[0\] is NaN"
contains "the update with one value too many was dropped" serve.out \
    "update of dev-r dropped: update message: byte 64: .* parameters, the model has"
contains "the chunk over the cap was dropped" serve.out \
    "$drop/update/dev-r from ?: message: byte 120: a body of 67108865 bytes, over the cap"
contains "the replayed update was dropped" serve.out \
    "$drop/update/dev-0 from dev-0: a replayed update: sequence"
for i in 0 1 2; do
    contains "dev-$i dropped the forged task" "dev-$i.out" \
        "$drop/task/0 from coordinator: task from coordinator: bad signature"
done
grep -h "refused\|dropped" serve.out dev-*.out

# --- and the run went on regardless
contains "every round completed" serve.out "^summary: $rounds rounds"
sleep 1
for i in 0 1 2; do
    contains "dev-$i saw the job finish" "dev-$i.out" "the job finished"
done
python3 - serve.jsonl $rounds <<'PY' && pass || fail "accuracy after the attacks"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("rounds:", [(r["round"], r["completed"], round(r["test_accuracy"], 4)) for r in rows])
assert [r["round"] for r in rows] == list(range(1, int(sys.argv[2]) + 1)), rows
assert rows[-1]["test_accuracy"] > 0.3, rows[-1]  # chance is 0.1
PY
finish
