#!/bin/sh
# server_optimisers.sh - test accuracy per round of each server strategy at
# its default server learning rate and at the other values given, on the
# same federated run: 10 iid clients, LeNet-5, 5 rounds, local SGD lr 0.05,
# batch 32, one local epoch, on the first 12,000 Fashion-MNIST training
# images (1,200 per client) and the first 2,000 test images.
#
# Usage: bench/server_optimisers.sh [--lrs "1 0.1 0.01 0.001"] [--rounds 5]
#            [--strategies "fedavg fedavgm fedadagrad fedadam fedyogi"]
#            [--taus "1e-9 1e-3"] BUILD_DIR
#
# --taus: the adaptive strategies (fedadagrad, fedadam, fedyogi) are also
# run at each tau for each server lr. Which server step and tau a strategy
# defaults to (fedl_strategy_defaults) is chosen from this table: a
# default must not wreck the model.
set -eu

lrs="1 0.1 0.01 0.001"
rounds=5
strategies="fedavg fedavgm fedadagrad fedadam fedyogi"
taus=""
data=/usr/share/datasets/fashion-mnist
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --lrs) lrs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --strategies) strategies=$2; shift ;;
    --taus) taus=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "server_optimisers.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { echo "usage: bench/server_optimisers.sh BUILD_DIR" >&2; exit 2; }
fedl=$build/fedl
[ -x "$fedl" ] || { echo "server_optimisers.sh: $fedl not found; build first" >&2; exit 2; }
[ -d "$data" ] || { echo "server_optimisers.sh: no data at $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "server optimisers: 10 iid clients, lenet5, $rounds rounds, 12,000 training images"
echo "host: $(uname -m), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-11s %-9s %-8s %s\n' strategy server-lr tau "test accuracy after each round"
for strategy in $strategies; do
    case "$strategy" in fedadagrad | fedadam | fedyogi) tau_list="default $taus" ;; *) tau_list=default ;; esac
    for lr in default $lrs; do
        for tau in $tau_list; do
            set -- --clients 10 --rounds "$rounds" --model lenet5 --data "$data" \
                --train-limit 12000 --test-limit 2000 --strategy "$strategy" --quiet \
                --metrics "$work/m.jsonl"
            [ "$lr" = default ] || set -- "$@" --server-lr "$lr"
            [ "$tau" = default ] || set -- "$@" --server-tau "$tau"
            if "$fedl" simulate "$@" >"$work/out" 2>&1; then
                accuracies=$(python3 -c 'import json, sys
print(" ".join("%.3f" % json.loads(l)["test_accuracy"] for l in open(sys.argv[1])))' "$work/m.jsonl")
            else
                accuracies="failed: $(tail -1 "$work/out")"
            fi
            printf '%-11s %-9s %-8s %s\n' "$strategy" "$lr" "$tau" "$accuracies"
        done
    done
done
