#!/bin/sh
# test_cross_checkpoint.sh FEDL SOURCE_DIR - checkpoints and models cross
# architectures bit for bit: what the host's fedl (x86_64) writes, the
# target's fedl (aarch64 or armhf under qemu-user) verifies, exports to the
# same safetensors bytes and resumes training from; and what the target
# writes, the host verifies and exports to the same bytes. Runs in a cross
# build (scripts/cross-test sets FEDL_HOST_BINARY to the host's fedl, and
# ctest FEDL_EMULATED_BINARY); skipped, saying why, elsewhere.
set -u
target=$1
src=$2
. "$src/tests/cli/lib.sh"

[ -n "${FEDL_EMULATED_BINARY:-}" ] || skip "not a cross build (scripts/cross-test runs this)"
host=${FEDL_HOST_BINARY:-}
[ -n "$host" ] && [ -x "$host" ] || skip "FEDL_HOST_BINARY does not name the host's fedl"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
python3 "$src/tests/cli/make_idx.py" data 256 64 28 10 >/dev/null || exit 1
train="train --model lenet5 --data data --batch 32 --seed 3"

# the one side writes a checkpoint (one epoch) and a model; the other
# checks both, exports both to the same bytes, and trains on from the
# checkpoint
across() { # direction, writer, reader (check() sets $way: not used here)
    way=$1 writer=$2 reader=$3
    # shellcheck disable=SC2086
    check "$way: writes" 0 "$writer" $train --epochs 1 --ckpt-dir "$way-ck" --out "$way.fedl"
    ckpt=$(ls "$way-ck"/ckpt-*.fedl | tail -1)
    check "$way: the checkpoint verifies on the other side" 0 "$reader" ckpt verify "$way-ck"
    check "$way: the model verifies on the other side" 0 "$reader" ckpt verify "$way.fedl"
    for file in "$ckpt" "$way.fedl"; do
        "$writer" ckpt export "$file" --safetensors "$way.own.st" >/dev/null 2>&1
        "$reader" ckpt export "$file" --safetensors "$way.other.st" >/dev/null 2>&1
        [ -s "$way.own.st" ] && same "$way: $(basename "$file") reads the same on both sides" \
            "$way.own.st" "$way.other.st"
        rm -f "$way.own.st" "$way.other.st"
    done
    # shellcheck disable=SC2086
    check "$way: the other side resumes" 0 "$reader" $train --epochs 2 --ckpt-dir "$way-ck" \
        --out "$way-2.fedl"
    cat "$work/out" "$work/err" >"$way-resume.log"
    contains "$way: resumed at epoch 2" "$way-resume.log" "resumed from .*epoch 2"
}
across host-to-target "$host" "$target"
across target-to-host "$target" "$host"
finish
