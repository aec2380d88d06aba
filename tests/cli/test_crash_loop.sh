#!/bin/sh
# test_crash_loop.sh FEDL SOURCE_DIR [--long] - kill -9 a checkpointing
# training run at random moments, resume it each time, and require the final
# weights to equal an uninterrupted run's, bit for bit.
#
# The run checkpoints after every step, so kills land everywhere: inside a
# step, inside the checkpoint write (temp file half written, before or after
# the rename, before the manifest), during start-up and resume. Every resume
# must succeed; when a run finishes, its model file must be identical to the
# reference, and a fresh crash-looped run starts, until enough kills were
# made: 100 in `make test` (40 under qemu-user), 10,000 with --long. After
# 25 kills in a round the next run is left to finish, so a round ends even
# on a slow machine.
set -u
fedl=$1
src=$2
kills_wanted=100
[ "${3:-}" = "--long" ] && kills_wanted=10000
# Under qemu-user a run starts some 20 times slower: kills spread over a
# longer window reach training, and fewer of them keep the test's time.
window_ms=118 first_ms=2
if [ -n "${FEDL_EMULATED_BINARY:-}" ]; then
    window_ms=2000 first_ms=50
    [ "${3:-}" = "--long" ] || kills_wanted=40
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/tests/cli/make_idx.py" "$work/data" 240 60 12 1 || exit 1
spec="conv2d(4,3,pad=1) relu maxpool2d(2) flatten dropout(0.2) dense(10)"
set -- --model "$spec" --data "$work/data" --epochs 3 --batch 8 --optimizer adam --lr 0.01 \
    --lr-schedule cosine --seed 3 --quiet --log-level error

if ! "$fedl" train "$@" --out "$work/reference.fedl" >"$work/reference.log" 2>&1; then
    echo "FAIL: the uninterrupted reference run failed:"
    cat "$work/reference.log"
    exit 1
fi

kills=0
runs=0
rounds=0
resumes=0
seed=1
while [ "$kills" -lt "$kills_wanted" ]; do
    rounds=$((rounds + 1))
    dir="$work/ckpt-$rounds"
    out="$work/out-$rounds.fedl"
    round_kills=0
    while :; do
        # a random delay in [2, 120) ms (emulated: [50, 2050)), reproducible from the seed
        delay=$(awk -v s="$seed" -v f="$first_ms" -v w="$window_ms" \
            'BEGIN { srand(s); printf "%.3f", (f + rand() * w) / 1000 }')
        seed=$((seed + 1))
        runs=$((runs + 1))
        "$fedl" train "$@" --ckpt-dir "$dir" --ckpt-steps 1 --ckpt-seconds 0 --keep 2 \
            --out "$out" >"$work/run.log" 2>&1 &
        pid=$!
        if [ "$round_kills" -lt 25 ]; then
            sleep "$delay"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
        rc=$?
        if [ "$rc" -eq 137 ]; then # killed (128 + SIGKILL)
            kills=$((kills + 1))
            round_kills=$((round_kills + 1))
            grep -q "^resumed from" "$work/run.log" && resumes=$((resumes + 1))
            if grep -q "fedl train:" "$work/run.log"; then
                echo "FAIL: run $runs reported an error before it was killed:"
                cat "$work/run.log"
                exit 1
            fi
            continue
        fi
        if [ "$rc" -ne 0 ]; then
            echo "FAIL: run $runs (round $rounds, after $kills kills) exited $rc:"
            cat "$work/run.log"
            exit 1
        fi
        break
    done
    if ! cmp -s "$out" "$work/reference.fedl"; then
        echo "FAIL: round $rounds: weights after kill/resume differ from the uninterrupted run"
        exit 1
    fi
    if ls "$dir" | grep -q '\.tmp\.'; then
        echo "FAIL: round $rounds: temp files left in the checkpoint directory after a clean run:"
        ls -l "$dir"
        exit 1
    fi
    if ! "$fedl" ckpt verify "$dir" >"$work/verify.log" 2>&1; then
        echo "FAIL: round $rounds: the checkpoint directory does not verify:"
        cat "$work/verify.log"
        exit 1
    fi
    rm -rf "$dir" "$out"
done
echo "$kills kills over $runs runs in $rounds rounds ($resumes runs were killed after resuming):"
echo "every resume succeeded and every round's final weights equal the uninterrupted run's"
if [ "$resumes" -eq 0 ]; then
    echo "FAIL: no run was killed after a resume: the kill timing never reached training"
    exit 1
fi
