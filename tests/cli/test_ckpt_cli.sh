#!/bin/sh
# test_ckpt_cli.sh FEDL SOURCE_DIR - `fedl ckpt` and `fedl data`: verify,
# inspect and export of model files (and of checkpoint directories when
# `fedl train --ckpt-dir` exists: a damaged MANIFEST and a model file under
# a generation's name fail verify, which renames nothing; a resume sets the
# model file aside), the safetensors export checked value by value in
# Python (and loaded into torch when it is installed), manifests of a data
# directory and their verification after truncation, change, removal and
# an added file.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

# Both outputs of the last check, for messages that may go to either.
both() { cat "$work/out" "$work/err" >"$work/both"; }

flip_byte() { # file, offset: invert one byte in place
    python3 -c '
import sys
path, offset = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)
    f.seek(offset)
    f.write(bytes([byte[0] ^ 0xFF]))' "$1" "$2"
}

section_middle() { # file, section name: the offset of the middle byte of that section
    "$fedl" ckpt inspect --json "$1" | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sections"]:
    if s["name"] == sys.argv[1]:
        print(s["offset"] + s["length"] // 2)' "$2"
}

# A python3 that has torch, if any (Debian's python3-torch may sit beside
# another python3 earlier on PATH), else plain python3.
torch_python=python3
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch' >/dev/null 2>&1; then
        torch_python=$py
        break
    fi
done

# After a safetensors_check.py run with --data: when torch evaluated the
# exported weights, `fedl eval` of the fedl file must agree on the number
# of correct predictions and on the mean loss (printed to 4 decimals).
compare_with_eval() { # label, model file, data dir
    if ! grep -q "^torch: " "$work/out"; then
        contains "$1: torch skip is said" "$work/out" "torch not installed: skipped torch load"
        return
    fi
    torch_line=$(grep "^torch: " "$work/out")
    check "$1: fedl eval" 0 "$fedl" eval --model-file "$2" --data "$3"
    eval_line=$(grep "accuracy .* correct" "$work/out")
    if python3 -c '
import re, sys
t = re.search(r"(\d+) correct, loss ([\d.]+)", sys.argv[1])
f = re.search(r"\((\d+) correct\), loss ([\d.]+)", sys.argv[2])
ok = t and f and t.group(1) == f.group(1) and abs(float(t.group(2)) - float(f.group(2))) <= 2e-4
sys.exit(0 if ok else 1)' "$torch_line" "$eval_line"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $1: torch with the exported weights ($torch_line) and fedl eval ($eval_line) differ"
    fi
}

# ------------------------------------------------------------ a tiny data set
# IDX files in the MNIST layout: class k is a bright patch at a position of
# its own on a noisy background, so a few hundred samples are learnt (a
# quarter of the samples show another class's patch).
make_idx() { # dir, height, width
    python3 - "$@" <<'EOF'
import os, random, struct, sys
out, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
rng = random.Random(height * 100 + width)

def sample(label):
    if rng.random() < 0.25:  # label noise keeps accuracy and loss informative
        label = rng.randrange(10)
    pixels = bytearray(rng.randrange(120) for _ in range(height * width))
    for i in range(height * width):
        row, col = divmod(i, width)
        if height > 1 and (row // 3, col // 3) == divmod(label, width // 3):
            pixels[i] = 100 + rng.randrange(156)
        if height == 1 and col // 3 == label:
            pixels[i] = 100 + rng.randrange(156)
    return pixels

def write(prefix, count):
    labels = bytes(rng.randrange(10) for _ in range(count))
    with open(os.path.join(out, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, count, height, width))
        for label in labels:
            f.write(sample(label))
    with open(os.path.join(out, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, count) + labels)

write("train", 400)
write("t10k", 100)
EOF
}
make_idx "$work/data" 12 12
make_idx "$work/data1d" 1 32

# ------------------------------------------------------------------ usage
check "ckpt help" 0 "$fedl" ckpt --help
for word in verify inspect export --safetensors; do
    contains "ckpt help mentions $word" "$work/out" "$word"
done
check "data help" 0 "$fedl" data --help
contains "data help mentions manifest" "$work/out" "manifest"
check "top-level help lists ckpt" 0 "$fedl" --help
contains "top-level help lists ckpt" "$work/out" "ckpt"
contains "top-level help lists data" "$work/out" "data "
check "ckpt verify help" 0 "$fedl" ckpt verify --help
contains "ckpt verify help shows DIR|FILE" "$work/out" "DIR|FILE"
check "ckpt without command" 2 "$fedl" ckpt
check "ckpt unknown command" 2 "$fedl" ckpt frobnicate
check "ckpt verify without file" 2 "$fedl" ckpt verify
contains "missing argument named" "$work/err" "DIR|FILE is required"
check "ckpt verify two files" 2 "$fedl" ckpt verify a b
contains "extra argument named" "$work/err" "unexpected argument 'b'"
check "ckpt verify unknown flag" 2 "$fedl" ckpt verify --bogus x
check "ckpt export without --safetensors" 2 "$fedl" ckpt export "$work/model.fedl"
check "data without command" 2 "$fedl" data
check "data verify without dir" 2 "$fedl" data verify
check "ckpt verify missing file" 1 "$fedl" ckpt verify "$work/nope.fedl"
both
contains "missing file named" "$work/both" "nope.fedl"

# ------------------------------------------------------- model file, 2-D
spec2d="conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(16) relu dense(10)"
check "train 2-D model" 0 "$fedl" train --model "$spec2d" --data "$work/data" --epochs 2 \
    --batch 16 --lr 0.05 --momentum 0.9 --quiet --out "$work/model.fedl"
check "verify model file" 0 "$fedl" ckpt verify "$work/model.fedl"
contains "verify says ok" "$work/out" "model.fedl: ok (model, .* bytes)"
check "inspect model file" 0 "$fedl" ckpt inspect "$work/model.fedl"
contains "inspect shows the spec" "$work/out" "conv2d(4,3,stride=1,pad=1)"
contains "inspect shows the params section" "$work/out" "params"
contains "inspect shows the input shape" "$work/out" "input (1,12,12)"
check "inspect --json" 0 "$fedl" ckpt inspect --json "$work/model.fedl"
cp "$work/out" "$work/inspect.json"
check "inspect --json parses" 0 python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kind"] == "model" and d["model"]["input"] == [1, 12, 12], d
assert [s["name"] for s in d["sections"]][:2] == ["model", "params"], d["sections"]' \
    "$work/inspect.json"
check "export safetensors" 0 "$fedl" ckpt export "$work/model.fedl" --safetensors "$work/m.safetensors"
contains "export summary" "$work/out" "wrote $work/m.safetensors (6 tensors, [0-9]* bytes)"
check "safetensors match the model" 0 "$torch_python" "$src/tests/cli/safetensors_check.py" \
    "$work/model.fedl" "$work/m.safetensors" --data "$work/data"
cat "$work/out"
contains "safetensors checked" "$work/out" "safetensors ok: 6 tensors"
compare_with_eval "2-D" "$work/model.fedl" "$work/data"

# --------------------------------------------- model file, 1-D, no bias
spec1d="conv1d(4,5,pad=2,bias=0) relu flatten dense(10)"
check "train 1-D model" 0 "$fedl" train --model "$spec1d" --data "$work/data1d" --epochs 2 \
    --batch 16 --lr 0.05 --quiet --out "$work/model1d.fedl"
check "export 1-D safetensors" 0 "$fedl" ckpt export "$work/model1d.fedl" \
    --safetensors "$work/m1d.safetensors"
contains "1-D export: no conv bias" "$work/out" "(3 tensors"
check "1-D safetensors match the model" 0 "$torch_python" \
    "$src/tests/cli/safetensors_check.py" "$work/model1d.fedl" "$work/m1d.safetensors" \
    --data "$work/data1d"
cat "$work/out"
compare_with_eval "1-D" "$work/model1d.fedl" "$work/data1d"

# ------------------------------------------------ legacy version-1 model file
# docs/FORMAT.md, version 1: "FEDLMODL", version, header length 40, spec
# length, input shape, parameter count, spec, parameters, CRC-32C.
PYTHONDONTWRITEBYTECODE=1 python3 - "$src/tests/cli" "$work/model.fedl" "$work/legacy.fedl" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[1])
from safetensors_check import read_fedl
spec, (c, h, w), params = read_fedl(sys.argv[2])
body = struct.pack("<8sIIIiiiQ", b"FEDLMODL", 1, 40, len(spec), c, h, w, len(params) // 4)
body += spec.encode("ascii") + params
crc = 0xFFFFFFFF
for byte in body:
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
with open(sys.argv[3], "wb") as f:
    f.write(body + struct.pack("<I", crc ^ 0xFFFFFFFF))
EOF
check "verify version-1 model file" 0 "$fedl" ckpt verify "$work/legacy.fedl"
contains "version 1 said" "$work/out" "legacy.fedl: ok (model, version 1, [0-9]* bytes)"
check "inspect version-1 model file" 0 "$fedl" ckpt inspect "$work/legacy.fedl"
contains "inspect says version 1" "$work/out" "version 1 model file"
check "export version-1 model file" 0 "$fedl" ckpt export "$work/legacy.fedl" \
    --safetensors "$work/legacy.safetensors"
check "version-1 export matches" 0 python3 "$src/tests/cli/safetensors_check.py" \
    "$work/legacy.fedl" "$work/legacy.safetensors"

# --------------------------------------------------------- damaged files
cp "$work/model.fedl" "$work/bad.fedl"
offset=$(section_middle "$work/bad.fedl" params)
flip_byte "$work/bad.fedl" "${offset:-200}"
check "verify flipped params byte" 1 "$fedl" ckpt verify "$work/bad.fedl"
both
contains "damage reported" "$work/both" "bad.fedl: DAMAGED: "
contains "damaged section named" "$work/both" "params"
contains "failed check named" "$work/both" "CRC"
check "inspect damaged file" 1 "$fedl" ckpt inspect "$work/bad.fedl"
check "export damaged file" 1 "$fedl" ckpt export "$work/bad.fedl" --safetensors "$work/bad.st"
if [ -e "$work/bad.st" ]; then
    failed=$((failed + 1))
    echo "FAIL: export of a damaged file wrote an output"
else
    passed=$((passed + 1))
fi
cp "$work/model.fedl" "$work/bad-header.fedl"
flip_byte "$work/bad-header.fedl" 20
check "verify flipped header byte" 1 "$fedl" ckpt verify "$work/bad-header.fedl"
both
contains "header damage reported" "$work/both" "DAMAGED"
head -c 1000 "$work/model.fedl" >"$work/short.fedl"
check "verify truncated file" 1 "$fedl" ckpt verify "$work/short.fedl"
both
contains "truncation reported" "$work/both" "DAMAGED"

# --------------------------------------------------------- data manifests
check "data manifest" 0 "$fedl" data manifest "$work/data"
contains "manifest written" "$work/out" "wrote $work/data/MANIFEST (4 files)"
contains "manifest lists a file" "$work/out" "t10k-images-idx3-ubyte"
check "data verify" 0 "$fedl" data verify "$work/data"
contains "data verify ok" "$work/out" "$work/data: 4 files ok"
check "manifest again (skips itself)" 0 "$fedl" data manifest "$work/data"
contains "manifest does not list itself" "$work/out" "(4 files)"
check "manifest elsewhere" 0 "$fedl" data manifest "$work/data" --out "$work/data.manifest"
contains "manifest elsewhere leaves out DIR/MANIFEST" "$work/out" "(4 files)"
check "verify against manifest elsewhere" 0 "$fedl" data verify "$work/data" \
    --manifest "$work/data.manifest"
check "train with the manifest in the data dir" 0 "$fedl" train --model "$spec2d" \
    --data "$work/data" --epochs 1 --quiet

cp -r "$work/data" "$work/cut"
head -c 5000 "$work/data/train-images-idx3-ubyte" >"$work/cut/train-images-idx3-ubyte"
check "verify truncated data file" 1 "$fedl" data verify "$work/cut"
both
contains "truncated file named" "$work/both" "train-images-idx3-ubyte"
contains "truncation said" "$work/both" "truncated"

cp -r "$work/data" "$work/changed"
flip_byte "$work/changed/t10k-labels-idx1-ubyte" 20
check "verify changed data file" 1 "$fedl" data verify "$work/changed"
both
contains "changed file named" "$work/both" "t10k-labels-idx1-ubyte"
contains "change said" "$work/both" "content changed"

cp -r "$work/data" "$work/missing"
rm "$work/missing/train-labels-idx1-ubyte"
check "verify missing data file" 1 "$fedl" data verify "$work/missing"
both
contains "missing file named" "$work/both" "train-labels-idx1-ubyte"
check "verify without manifest" 1 "$fedl" data verify "$work/data1d"

cp -r "$work/data" "$work/extra"
printf 'x' >"$work/extra/zz-extra.bin"
printf 'x' >"$work/extra/b-extra.gz"
printf 'half' >"$work/extra/train-images-idx3-ubyte.tmp.999999999" # a dead writer's temp
check "verify with unlisted files" 1 "$fedl" data verify "$work/extra"
contains "unlisted file named" "$work/out" "UNLISTED: $work/extra/b-extra.gz: not in the manifest"
contains "every unlisted file named" "$work/out" "$work/extra/zz-extra.bin: not in the manifest"
contains "unlisted files counted" "$work/out" "0 of 4 files damaged, 2 not in the manifest"
if grep -q "tmp.999999999" "$work/out"; then
    fail "a temp file of a durable write was reported as unlisted"
else
    pass
fi
rm "$work/extra/zz-extra.bin" "$work/extra/b-extra.gz"
check "a temp file is not data" 0 "$fedl" data verify "$work/extra"
check "manifest elsewhere skips DIR/MANIFEST when verifying" 0 "$fedl" data verify \
    "$work/extra" --manifest "$work/data.manifest"

# ---------------------------------------------------- checkpoint directories
mkdir "$work/empty"
check "verify empty checkpoint dir" 1 "$fedl" ckpt verify "$work/empty"
both
contains "no checkpoints said" "$work/both" "no checkpoints in $work/empty"

if "$fedl" train --help 2>/dev/null | grep -q -- "--ckpt-dir"; then
    check "train with --ckpt-dir" 0 "$fedl" train --model "$spec2d" --data "$work/data" \
        --epochs 3 --batch 16 --quiet --ckpt-dir "$work/ckpts"
    check "verify checkpoint dir" 0 "$fedl" ckpt verify "$work/ckpts"
    contains "generations listed" "$work/out" "generation [0-9]*  ckpt-[0-9]*.fedl  OK"
    contains "resume generation named" "$work/out" "resume would use generation"
    oldest="" newest=""
    for file in "$work/ckpts"/ckpt-*.fedl; do # generations sort by name
        [ -n "$oldest" ] || oldest=$file
        newest=$file
    done
    check "verify one checkpoint" 0 "$fedl" ckpt verify "$newest"
    contains "checkpoint ok" "$work/out" "ok (checkpoint, [0-9]* sections, [0-9]* bytes)"
    check "inspect checkpoint" 0 "$fedl" ckpt inspect "$newest"
    for word in "global step" "optimiser" "lr schedule" "seeds" "config sha256" "epoch so far"; do
        contains "inspect checkpoint shows $word" "$work/out" "$word"
    done
    check "inspect checkpoint --json" 0 "$fedl" ckpt inspect --json "$newest"
    cp "$work/out" "$work/inspect.json"
    check "checkpoint json parses" 0 python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kind"] == "checkpoint" and d["state"]["global_step"] > 0, d["state"]' \
        "$work/inspect.json"
    check "export from checkpoint" 0 "$fedl" ckpt export "$newest" --safetensors "$work/c.st"

    cp -r "$work/ckpts" "$work/ck-manifest"
    flip_byte "$work/ck-manifest/MANIFEST" 20
    check "verify dir with damaged MANIFEST" 1 "$fedl" ckpt verify "$work/ck-manifest"
    contains "MANIFEST damage reported" "$work/out" "MANIFEST: DAMAGED: .*MANIFEST:2:"
    contains "generations still checked" "$work/out" "generation [0-9]*  ckpt-[0-9]*.fedl  OK"
    contains "summary names MANIFEST" "$work/out" "generations valid; MANIFEST damaged"

    cp -r "$work/ckpts" "$work/ck-model"
    cp "$work/model.fedl" "$work/ck-model/ckpt-00000099.fedl"
    check "verify dir with a model file as a generation" 1 "$fedl" ckpt verify "$work/ck-model"
    contains "model file is not a checkpoint" "$work/out" \
        "ckpt-00000099.fedl  DAMAGED: not a checkpoint (file kind 1, a model file)"
    contains "resume passes over it" "$work/out" "resume would use generation"
    if grep -q "resume would use.*ckpt-00000099" "$work/out"; then
        fail "resume would use a model file"
    else
        pass
    fi
    if [ -f "$work/ck-model/ckpt-00000099.fedl" ] && [ ! -e "$work/ck-model/ckpt-00000099.fedl.damaged" ]; then
        pass
    else
        fail "ckpt verify renamed a file"
    fi
    check "resume sets the model file aside" 0 "$fedl" train --model "$spec2d" --data "$work/data" \
        --epochs 3 --batch 16 --quiet --ckpt-dir "$work/ck-model"
    both
    contains "set aside reported" "$work/both" "ckpt-00000099.fedl.damaged"
    if [ -f "$work/ck-model/ckpt-00000099.fedl.damaged" ] && [ ! -e "$work/ck-model/ckpt-00000099.fedl" ]; then
        pass
    else
        fail "the model file was not set aside as ckpt-00000099.fedl.damaged"
    fi
    check "verify after the set-aside" 0 "$fedl" ckpt verify "$work/ck-model"
    contains "set-aside file listed" "$work/out" "set aside  ckpt-00000099.fedl.damaged"
    check "checkpoint safetensors match" 0 "$torch_python" \
        "$src/tests/cli/safetensors_check.py" "$newest" "$work/c.st"
    if [ "$newest" != "$oldest" ]; then
        flip_byte "$newest" "$(section_middle "$newest" params)"
        check "verify dir with damaged newest" 1 "$fedl" ckpt verify "$work/ckpts"
        contains "damaged generation reported" "$work/out" "DAMAGED"
        contains "resume falls back" "$work/out" "resume would use generation"
        if grep -q "resume would use.*$(basename "$newest")" "$work/out"; then
            failed=$((failed + 1))
            echo "FAIL: resume would use the damaged generation"
        else
            passed=$((passed + 1))
        fi
    fi
else
    echo "SKIP: fedl train has no --ckpt-dir yet; checkpoint-directory checks skipped"
fi

finish
