#!/bin/sh
# test_cli.sh FEDL SOURCE_DIR - the fedl command: help, usage errors (one
# line, exit 2), a short training run, eval, and a corrupt model file.
set -u
fedl=$1
src=$2
data=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

check "top-level help" 0 "$fedl" --help
contains "help lists train" "$work/out" "train"
check "train help" 0 "$fedl" train --help
for flag in --model --data --epochs --batch --lr --momentum --nesterov --optimizer \
    --weight-decay --lr-schedule --seed --out --profile; do
    contains "train help documents $flag" "$work/out" -- "$flag"
done
check "eval help" 0 "$fedl" eval --help
contains "eval help documents --model-file" "$work/out" "--model-file"

check "unknown command" 2 "$fedl" frobnicate
check "unknown flag" 2 "$fedl" train --data "$data" --bogus 3
contains "unknown flag is named" "$work/err" "unknown option '--bogus'"
[ "$(wc -l <"$work/err")" -eq 1 ] && passed=$((passed + 1)) || {
    failed=$((failed + 1))
    echo "FAIL: usage error is not one line"
}
check "bad integer" 2 "$fedl" train --data "$data" --epochs two
contains "bad integer is named" "$work/err" "--epochs: 'two' is not an integer"
check "out of range" 2 "$fedl" train --data "$data" --batch 0
check "missing value" 2 "$fedl" train --data
check "bad optimizer" 2 "$fedl" train --data "$data" --optimizer rmsprop
check "missing data" 2 "$fedl" train
check "bad spec" 1 "$fedl" train --data "$data" --model "dense(10) wat"
contains "bad spec names token" "$work/err" "unknown layer 'wat' at position 10"
check "missing data dir" 1 "$fedl" train --data "$work/nope"
contains "missing data dir is named" "$work/err" "$work/nope"

if [ -f "$data/train-images-idx3-ubyte.gz" ]; then
    check "short training run" 0 "$fedl" train --model lenet5 --data "$data" --epochs 1 \
        --batch 32 --lr 0.05 --momentum 0.9 --train-limit 600 --test-limit 300 \
        --out "$work/m.fedl" --profile
    contains "epoch line" "$work/out" "epoch 1/1 .*test-acc"
    contains "summary" "$work/out" "summary: .*samples/s.*peak RSS"
    contains "profile" "$work/out" "GF/s"
    check "eval" 0 "$fedl" eval --model-file "$work/m.fedl" --data "$data" --limit 300
    contains "eval accuracy" "$work/out" "accuracy"
    contains "eval confusion" "$work/out" "confusion matrix"
    printf 'X' | dd of="$work/m.fedl" bs=1 seek=100 conv=notrunc 2>/dev/null
    check "corrupt model" 1 "$fedl" eval --model-file "$work/m.fedl" --data "$data"
    contains "corrupt model named" "$work/err" "m.fedl: .*CRC-32C"
else
    echo "SKIP: Fashion-MNIST not installed; training checks skipped"
fi

finish
