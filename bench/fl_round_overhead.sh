#!/bin/sh
# fl_round_overhead.sh - what a federated round costs beyond training, over
# a real mosquitto on loopback: the task broadcast, the uploads and the
# aggregation, for LeNet-5 with N devices (5 and 50 by default).
#
# Usage: bench/fl_round_overhead.sh [--clients "5 50"] [--rounds 6] [--tls]
#            [--aggregators "0 2"] BUILD_DIR
#
# Each device trains one step on 32 generated 28x28 images, so a round's
# wall time is almost all overhead: signing, chunking and publishing the
# task (about 247 KB, two 128 KiB chunks), N devices receiving and checking
# it, N updates uploaded, checked and folded, and the evaluation of the
# global model on 64 test images. Tasks and updates are signed (Ed25519);
# the broker is plain TCP on 127.0.0.1, or with --tls TLS 1.2+ with a test
# CA (the devices check the broker's certificate). Reported per N: the median
# round time over rounds 2..R (round 1 includes waiting for the devices),
# the time of one local training step measured in the same run, the bytes
# of one task and one update on the wire (chunk headers included, MQTT's
# own framing of about 40 bytes a publish not) against the raw float32
# parameters, the bytes the coordinator received a round, and the peak RSS
# of the coordinator and of one device. With --aggregators "0 2" each N runs
# once without aggregators and once with 2 (fedl aggregate, the devices
# sending each update in one message), side by side.
set -eu

clients_list="5 50"
rounds=6
tls=0
aggregators_list=0
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --clients) clients_list=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --tls) tls=1 ;;
    --aggregators) aggregators_list=$2; shift ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fl_round_overhead.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { echo "usage: bench/fl_round_overhead.sh BUILD_DIR" >&2; exit 2; }
fedl=$(cd "$build" && pwd)/fedl
src=$(cd "$(dirname "$0")/.." && pwd)
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$fedl" ] || { echo "fl_round_overhead.sh: $fedl not found" >&2; exit 2; }
[ -x "$mosquitto" ] || { echo "fl_round_overhead.sh: needs mosquitto (apt-get install mosquitto)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "fl_round_overhead.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work"
broker_pid=""
trap 'kill $broker_pid 2>/dev/null; pkill -P $$ 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$port" >m.conf
url="mqtt://127.0.0.1:$port"
tls_options=""
if [ $tls -eq 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
        -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
        -extfile san.ext -out broker.crt 2>/dev/null
    chmod 644 ca.crt broker.crt broker.key
    printf 'cafile %s/ca.crt\ncertfile %s/broker.crt\nkeyfile %s/broker.key\n' "$work" "$work" "$work" >>m.conf
    url="mqtts://127.0.0.1:$port"
    tls_options="--ca $work/ca.crt"
fi
"$mosquitto" -c m.conf >broker.log 2>&1 &
broker_pid=$!
sleep 0.5

echo "federated round overhead: lenet5, one 32-image step a device, signed, mosquitto on loopback$([ $tls -eq 1 ] && echo ', TLS')"
echo "host: $(uname -m), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %5s %10s %9s %10s %13s %10s %9s %13s %10s %10s\n' devices aggs "round ms" \
    "step ms" "raw bytes" "task B/device" "update B" "overhead" "serve KB in" "serve MiB" \
    "device MiB"
for n in $clients_list; do
for aggs in $aggregators_list; do
    rm -rf keys data dev-* agg-* *.out *.jsonl
    mkdir keys
    "$fedl" keygen --id coordinator --out keys/coordinator >/dev/null
    scale_out=""
    chunk=""
    k=1
    while [ $k -le "$aggs" ]; do
        "$fedl" keygen --id "agg-$k" --out "keys/agg-$k" >/dev/null
        cat "keys/agg-$k.pub" >>keys/aggregators.pub
        k=$((k + 1))
    done
    if [ "$aggs" -gt 0 ]; then
        scale_out="--aggregators keys/aggregators.pub"
        chunk="--chunk-kib 1024"
    fi
    i=0
    while [ $i -lt "$n" ]; do
        "$fedl" keygen --id "dev-$i" --out "keys/dev-$i" >/dev/null
        cat "keys/dev-$i.pub" >>keys/devices.pub
        i=$((i + 1))
    done
    python3 "$src/tests/cli/make_idx.py" data $((32 * n)) 64 28 10 >/dev/null
    job="bench$n-$aggs"
    k=1
    while [ $k -le "$aggs" ]; do
        # shellcheck disable=SC2086
        "$fedl" aggregate --broker "$url" $tls_options --job "$job" --id "agg-$k" \
            --key "keys/agg-$k.key" --coordinator-key keys/coordinator.pub \
            --devices keys/devices.pub >"agg-$k.out" 2>&1 &
        k=$((k + 1))
    done
    # shellcheck disable=SC2086
    /usr/bin/time -f "%M" -o serve.rss "$fedl" serve --broker "$url" $tls_options --job "$job" \
        --rounds "$rounds" --model lenet5 --data data --key keys/coordinator.key \
        --devices keys/devices.pub --wait-clients "$n" --min-clients "$n" --metrics m.jsonl \
        $scale_out --quiet >serve.out 2>&1 &
    serve_pid=$!
    i=0
    while [ $i -lt "$n" ]; do
        timing=""
        [ $i -eq 0 ] && timing="/usr/bin/time -f %M -o dev.rss"
        # shellcheck disable=SC2086
        $timing "$fedl" join --broker "$url" $tls_options --job "$job" --id "dev-$i" \
            --data data --partition iid --parts "$n" --part "$i" --key "keys/dev-$i.key" \
            --coordinator-key keys/coordinator.pub $chunk >"dev-$i.out" 2>&1 &
        i=$((i + 1))
    done
    wait $serve_pid
    sleep 1
    round_ms=$(python3 -c 'import json, statistics, sys
rows = [json.loads(l) for l in open("m.jsonl")]
t = [r["seconds"] for r in rows]
print("%.1f" % (1000 * statistics.median([b - a for a, b in zip(t, t[1:])])))')
    in_kb=$(python3 -c 'import json, statistics
rows = [json.loads(l) for l in open("m.jsonl")]
print("%.0f" % (statistics.median(r["bytes_in"] for r in rows) / 1000))')
    sps=$("$fedl" train --model lenet5 --data data --epochs 1 --batch 32 --train-limit 32 2>/dev/null |
        sed -n 's/^summary: .*(\([0-9]*\) samples\/s).*/\1/p')
    step_ms=$(python3 -c "print('%.1f' % (32000.0 / float('${sps:-0}' or 'inf')))")
    task=$(sed -n 's/.*task sent to .* (\([0-9]*\) bytes).*/\1/p' serve.out | head -1)
    update=$(sed -n 's/.*update sent (\([0-9]*\) bytes).*/\1/p' dev-0.out | head -1)
    python3 - "$n" "$aggs" "$round_ms" "$step_ms" "$task" "$update" "$in_kb" "$(cat serve.rss)" \
        "$(cat dev.rss)" <<'PY'
import math, sys
n, aggs, round_ms, step_ms = sys.argv[1:5]
task, update, in_kb, serve_kb, dev_kb = map(int, sys.argv[5:10])
raw = 61706 * 4
chunk = 128 * 1024 - 248
wire = lambda body, c: body + 248 * math.ceil(body / c)
t, u = wire(task, chunk), wire(update, chunk if aggs == "0" else 1024 * 1024 - 248)
print("%8s %5s %10s %9s %10d %13d %10d %8.2f%% %13d %10.1f %10.1f" % (
    n, aggs, round_ms, step_ms, raw, t, u, 100.0 * ((t + u) / (2 * raw) - 1), in_kb,
    serve_kb / 1024, dev_kb / 1024))
PY
    grep -h "^summary" agg-*.out 2>/dev/null | sed 's/^/    /' || true
done
done
echo "end $(date -u '+%H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
