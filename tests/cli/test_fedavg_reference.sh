#!/bin/sh
# test_fedavg_reference.sh FEDL SOURCE_DIR - `fedl simulate` against PyTorch:
# 10-client iid FedAvg with LeNet-5 on Fashion-MNIST (the `make demo` run:
# 5 rounds, 1 local epoch, batch 32, SGD lr 0.05, seed 1) reaches, after
# round 5, a test accuracy within 1 percentage point of the mean of a
# PyTorch FedAvg with the same setup (bench/torch_fedavg.py, 3 seeds). The
# PyTorch figures are committed in tests/cli/fedavg_reference.txt (how they
# were made is in its comments), so torch is not needed here.
#
# Skipped without /usr/share/datasets/fashion-mnist (apt-get install
# dataset-fashion-mnist), under an emulator and under sanitizers (5 rounds
# of LeNet-5 take about 20 s natively on 2 cores; several minutes there).
set -u
fedl=$1
src=$2
. "$src/tests/cli/lib.sh"
data=/usr/share/datasets/fashion-mnist
ref=$src/tests/cli/fedavg_reference.txt

[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "under an emulator 5 rounds of LeNet-5 on 60,000 images take too long"
[ -n "${FEDL_SANITIZED:-}" ] && skip "under sanitizers 5 rounds of LeNet-5 on 60,000 images take too long"
[ -f "$data/train-images-idx3-ubyte.gz" ] || [ -f "$data/train-images-idx3-ubyte" ] ||
    skip "Fashion-MNIST not installed at $data (apt-get install dataset-fashion-mnist)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "round 5 0.8470" lines; the last round of the reference is the bar.
want=$(awk '$1 == "round" && $2 == 5 { print $3 }' "$ref")
if [ -z "$want" ]; then
    fail "no 'round 5' line in $ref"
    finish
    exit 1
fi

check "the make-demo simulation" 0 "$fedl" simulate --clients 10 --rounds 5 --model lenet5 \
    --data "$data" --partition iid --strategy fedavg --local-epochs 1 --batch 32 --lr 0.05 \
    --seed 1 --metrics "$work/m.jsonl"
contains "five rounds" "$work/out" "^summary: 5 rounds"

# {"round":5,...,"test_accuracy":0.847300,...}
got=$(awk -F'[,:{}]' '{
        for (i = 2; i < NF; i++) {
            if ($i == "\"round\"") r = $(i + 1)
            if ($i == "\"test_accuracy\"") a = $(i + 1)
        }
        if (r == 5) print a
    }' "$work/m.jsonl")
if [ -z "$got" ]; then
    fail "no round 5 in the metrics:"
    cat "$work/m.jsonl"
else
    verdict=$(awk -v g="$got" -v w="$want" 'BEGIN {
        d = 100 * (g - w); ad = d < 0 ? -d : d
        printf "%s fedl %.2f%%, PyTorch mean %.2f%%, %+.2f pt\n", ad <= 1.0 ? "ok" : "off", 100 * g, 100 * w, d
    }')
    echo "round 5 test accuracy: ${verdict#* }"
    case $verdict in
    ok*) pass ;;
    *) fail "round 5 test accuracy not within 1 point of PyTorch: ${verdict#* }" ;;
    esac
fi
finish
