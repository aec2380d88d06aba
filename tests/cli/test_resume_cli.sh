#!/bin/sh
# test_resume_cli.sh FEDL SOURCE_DIR - `fedl train --ckpt-dir`: SIGTERM
# finishes the step, checkpoints and exits 0; SIGUSR1 checkpoints and goes
# on; running the same command resumes and ends with the same weights as an
# uninterrupted run; another configuration is refused naming the
# difference; --no-resume starts over; a damaged newest generation falls
# back to the previous one; --verify-data refuses changed data.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

# Wait (up to about 20 s) until file $1 contains $2.
wait_for() {
    i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null && [ $i -lt 2000 ]; do
        sleep 0.01
        i=$((i + 1))
    done
}

# The signal checks need a run that lasts well beyond the shell's reaction
# time (about a second natively). Under an emulator (scripts/cross-test)
# everything runs ~100x slower, so a small run is long enough there.
if [ -n "${FEDL_EMULATED_BINARY:-}" ]; then
    samples=2000 steps_per_epoch=500
    spec="conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)"
else
    samples=8000 steps_per_epoch=2000
    spec="conv2d(16,3,pad=1) relu conv2d(16,3,pad=1) relu maxpool2d(2) flatten dense(10)"
fi
python3 "$src/tests/cli/make_idx.py" "$work/data" "$samples" 100 12 2 || exit 1
set -- --model "$spec" --data "$work/data" --epochs 2 --batch 4 --momentum 0.9 --seed 9 \
    --log-level info

check "reference run" 0 "$fedl" train "$@" --out "$work/reference.fedl"

# Signals are queued while the run is stopped (SIGSTOP) once its progress
# line says a quarter of the first epoch is done, so that they arrive
# during training however fast or slow this machine is (stderr is not a
# terminal: progress comes as one line per quarter).
# SIGUSR1: a checkpoint mid-run, training goes on to the same weights.
"$fedl" train "$@" --ckpt-dir "$work/ck-usr1" --ckpt-seconds 0 --out "$work/u.fedl" \
    >"$work/sig.out" 2>"$work/sig.err" &
pid=$!
wait_for "$work/sig.err" "epoch 1/2: .*25%"
kill -STOP "$pid"
kill -USR1 "$pid"
kill -CONT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] && passed=$((passed + 1)) || {
    failed=$((failed + 1))
    echo "FAIL: SIGUSR1 run: exit $rc, expected 0"
    cat "$work/sig.out" "$work/sig.err"
}
# A checkpoint before the first epoch ends came from SIGUSR1.
usr1_step=$(sed -n 's/.*checkpoint 1 written at step \([0-9]*\).*/\1/p' "$work/sig.err")
if [ -n "$usr1_step" ] && [ "$usr1_step" -lt "$steps_per_epoch" ]; then
    pass
else
    fail "SIGUSR1 did not write a checkpoint mid-epoch (first checkpoint at step '$usr1_step')"
    cat "$work/sig.err"
fi
contains "training went on after SIGUSR1" "$work/sig.out" "epoch 2/2"
same "a SIGUSR1 checkpoint does not change the weights" "$work/u.fedl" "$work/reference.fedl"

# SIGTERM: the step finishes, a checkpoint is written, exit 0. The old
# sig.err goes first: the background shell truncates it only when it runs,
# and wait_for must not find the previous run's progress line.
rm -f "$work/sig.out" "$work/sig.err"
"$fedl" train "$@" --ckpt-dir "$work/ck" --ckpt-seconds 0 --out "$work/a.fedl" \
    >"$work/sig.out" 2>"$work/sig.err" &
pid=$!
wait_for "$work/sig.err" "epoch 1/2: .*25%"
kill -STOP "$pid"
kill -TERM "$pid"
kill -CONT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] && passed=$((passed + 1)) || {
    failed=$((failed + 1))
    echo "FAIL: SIGTERM: exit $rc, expected 0"
    cat "$work/sig.out" "$work/sig.err"
}
contains "SIGTERM stops with a checkpoint" "$work/sig.out" "stopped at step"
[ ! -f "$work/a.fedl" ] && passed=$((passed + 1)) || {
    failed=$((failed + 1))
    echo "FAIL: a stopped run wrote its final model"
}
check "verify after SIGTERM" 0 "$fedl" ckpt verify "$work/ck"

# Another configuration is refused, naming what differs.
check "other batch refused" 1 "$fedl" train "$@" --batch 8 --ckpt-dir "$work/ck"
contains "refusal names the batch" "$work/err" "batch: checkpoint 4, now 8"
check "other seed refused" 1 "$fedl" train "$@" --seed 10 --ckpt-dir "$work/ck"
contains "refusal names the seed" "$work/err" "seed: checkpoint 9, now 10"

# The same command resumes and ends where an uninterrupted run ends.
check "resume" 0 "$fedl" train "$@" --ckpt-dir "$work/ck" --out "$work/a.fedl"
contains "resume says where" "$work/out" "resumed from .*step"
same "resumed weights equal uninterrupted weights" "$work/a.fedl" "$work/reference.fedl"
check "resume of a finished run" 0 "$fedl" train "$@" --ckpt-dir "$work/ck"
contains "finished run says so" "$work/out" "already complete"

# A finished run (constant learning rate) can be extended: 2 epochs, then 3,
# ends where 3 uninterrupted epochs end.
check "three epochs uninterrupted" 0 "$fedl" train "$@" --epochs 3 --out "$work/three.fedl"
check "extend to three epochs" 0 "$fedl" train "$@" --epochs 3 --ckpt-dir "$work/ck" \
    --out "$work/extended.fedl"
contains "extension resumes" "$work/out" "resumed from .*epoch 3"
same "extended run equals an uninterrupted one" "$work/extended.fedl" "$work/three.fedl"

# A damaged newest generation: the previous one is used, and the damage named.
newest=$(ls "$work/ck"/ckpt-*.fedl | sort | tail -1)
size=$(wc -c <"$newest")
printf '\377' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check "verify names the damage" 1 "$fedl" ckpt verify "$work/ck"
contains "verify names the damaged file" "$work/out" "$(basename "$newest")"
check "resume falls back" 0 "$fedl" train "$@" --ckpt-dir "$work/ck" --out "$work/b.fedl"
contains "fallback is reported" "$work/err" "warning: newest checkpoint is damaged"
same "fallback run ends with the same weights" "$work/b.fedl" "$work/reference.fedl"
if [ -f "$newest.damaged" ] && [ ! -e "$newest" ]; then
    pass
else
    fail "the damaged generation was not set aside as $(basename "$newest").damaged"
    ls -l "$work/ck"
fi

# --no-resume starts over (old generations are kept until retention drops them).
check "no-resume" 0 "$fedl" train "$@" --ckpt-dir "$work/ck" --no-resume --out "$work/c.fedl"
if grep -q "resumed from" "$work/out"; then
    failed=$((failed + 1))
    echo "FAIL: --no-resume resumed"
else
    passed=$((passed + 1))
fi
same "no-resume gives the reference weights" "$work/c.fedl" "$work/reference.fedl"

# --verify-data: a manifest, then a truncated and a changed file.
check "data manifest" 0 "$fedl" data manifest "$work/data"
check "verify-data ok" 0 "$fedl" train "$@" --verify-data --epochs 1 --out "$work/d.fedl"
contains "verify-data reports" "$work/out" "data verified"
cp "$work/data/t10k-labels-idx1-ubyte" "$work/labels.bak"
head -c 50 "$work/labels.bak" >"$work/data/t10k-labels-idx1-ubyte"
check "verify-data refuses a truncated file" 1 "$fedl" train "$@" --verify-data
contains "truncated file named" "$work/err" "t10k-labels-idx1-ubyte.*truncated"
cp "$work/labels.bak" "$work/data/t10k-labels-idx1-ubyte"
printf '\007' | dd of="$work/data/t10k-labels-idx1-ubyte" bs=1 seek=20 conv=notrunc 2>/dev/null
check "verify-data refuses a changed file" 1 "$fedl" train "$@" --verify-data
contains "changed file named" "$work/err" "t10k-labels-idx1-ubyte.*changed"

finish
