#!/bin/sh
# test_plan_cli.sh FEDL SOURCE_DIR - `fedl plan` and `fedl train --memory`:
# the plan per layer and category, the micro-batch a budget allows, a clean
# refusal naming the smallest budget, and training under a budget.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

check "plan help" 0 "$fedl" plan --help
check "plan lenet5 in 8M" 0 "$fedl" plan --model lenet5 --batch 256 --memory 8M
contains "plan has layers" "$work/out" "conv2d(16,5,stride=1,pad=0)"
contains "plan has categories" "$work/out" "optimiser state"
contains "plan says why" "$work/out" "micro-batch [0-9]* is the largest that fits"
check "plan refuses a tiny budget" 1 "$fedl" plan --model lenet5 --batch 256 --momentum 0.9 --memory 500K
contains "refusal names the smallest budget" "$work/err" "even micro-batch 1 needs .* MiB"
check "plan auto" 0 "$fedl" plan --model mlp --memory auto
contains "auto says its source" "$work/out" "memory budget .*(.*:"
check "plan bad size" 2 "$fedl" plan --memory lots
check "plan bad shape" 2 "$fedl" plan --shape 28x28

python3 "$src/tests/cli/make_idx.py" "$work/data" 600 100 12 3 || exit 1
set -- --model "conv2d(8,3,pad=1) relu maxpool2d(2) flatten dense(10)" --data "$work/data" \
    --epochs 1 --batch 64 --momentum 0.9 --seed 2 --quiet
check "train under a budget" 0 "$fedl" train "$@" --memory 300K --out "$work/small.fedl"
contains "train says the plan" "$work/out" "memory plan: micro-batch [0-9]* is the largest"
# plan and train agree: same defaults (optimiser, momentum), same micro-batch
model="conv2d(8,3,pad=1) relu maxpool2d(2) flatten dense(10)"
"$fedl" plan --model "$model" --data "$work/data" --batch 64 --memory 300K >"$work/plan.out" 2>&1
"$fedl" train --model "$model" --data "$work/data" --epochs 1 --batch 64 --memory 300K \
    >"$work/train.out" 2>&1
planned=$(sed -n 's/.*micro-batch \([0-9]*\) is the largest.*/\1/p' "$work/plan.out" | head -1)
trained=$(sed -n 's/.*memory plan: micro-batch \([0-9]*\) is the largest.*/\1/p' "$work/train.out" | head -1)
if [ -n "$planned" ] && [ "$planned" = "$trained" ]; then
    pass
else
    fail "fedl plan chose micro-batch '$planned', fedl train '$trained' for the same settings"
fi
check "train refuses a budget too small" 1 "$fedl" train "$@" --memory 20K
contains "train refusal names the smallest budget" "$work/err" "refusing to start: even micro-batch 1"
check "train with an explicit micro-batch" 0 "$fedl" train "$@" --micro-batch 5 --out "$work/m5.fedl"
check "train whole batch" 0 "$fedl" train "$@" --out "$work/whole.fedl"
# same updates up to float rounding: the same test accuracy
acc() { sed -n 's/.*test-acc \([0-9.]*\).*/\1/p' "$1" | tail -1; }
"$fedl" train "$@" --micro-batch 5 >"$work/a.log" 2>&1
"$fedl" train "$@" >"$work/b.log" 2>&1
if [ "$(acc "$work/a.log")" = "$(acc "$work/b.log")" ]; then
    pass
else
    fail "micro-batch 5 test accuracy $(acc "$work/a.log") differs from the whole batch's $(acc "$work/b.log")"
fi
finish
