#!/bin/sh
# test_train_csv.sh FEDL SOURCE_DIR - `fedl train` from CSV files: the same
# data as IDX files and as CSV give the same training, bit for bit; class
# names work as labels; a malformed row is reported by file, line and
# column; a checkpointed CSV run resumes, and refuses a changed file.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

python3 "$src/tests/cli/make_idx.py" "$work/idx" 400 100 12 5 || exit 1
for split in train t10k; do
    python3 "$src/tests/cli/idx_to_csv.py" "$work/idx/$split-images-idx3-ubyte" \
        "$work/idx/$split-labels-idx1-ubyte" "$work/$split.csv" || exit 1
done
python3 "$src/tests/cli/idx_to_csv.py" "$work/idx/train-images-idx3-ubyte" \
    "$work/idx/train-labels-idx1-ubyte" "$work/named.csv" --names || exit 1
python3 "$src/tests/cli/idx_to_csv.py" "$work/idx/t10k-images-idx3-ubyte" \
    "$work/idx/t10k-labels-idx1-ubyte" "$work/named-test.csv" --names || exit 1

set -- --model "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)" --epochs 2 --batch 32 \
    --lr 0.05 --momentum 0.9 --seed 4 --quiet
check "train from IDX" 0 "$fedl" train "$@" --data "$work/idx" --out "$work/idx.fedl"
cp "$work/out" "$work/idx.log"
check "train from CSV" 0 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x12 --scale 255 --out "$work/csv.fedl"
cp "$work/out" "$work/csv.log"
contains "CSV summary line" "$work/csv.log" "CSV .*train.csv: 400 rows .* 144 features, label column 0, 10 classes"
# the same floats in the same order: the same losses and accuracies, the same weights
grep '^epoch' "$work/idx.log" | sed 's/  [0-9]* samples\/s.*//' >"$work/idx.epochs"
grep '^epoch' "$work/csv.log" | sed 's/  [0-9]* samples\/s.*//' >"$work/csv.epochs"
same "CSV and IDX train alike" "$work/idx.epochs" "$work/csv.epochs"
# the same parameters (the CSV model file also holds how its data was read)
"$fedl" ckpt export --safetensors "$work/idx.st" "$work/idx.fedl" >/dev/null 2>&1
"$fedl" ckpt export --safetensors "$work/csv.st" "$work/csv.fedl" >/dev/null 2>&1
same "CSV and IDX give the same weights" "$work/idx.st" "$work/csv.st"

# the index is kept beside the file and read back by the next run
contains "index kept" "$work/csv.log" "index kept in .*train.csv.fedlidx"
[ -f "$work/train.csv.fedlidx" ] && pass || fail "no train.csv.fedlidx"
check "train again from the kept index" 0 "$fedl" train "$@" --data "$work/train.csv" \
    --test "$work/t10k.csv" --shape 1x12x12 --scale 255 --out "$work/again.fedl"
contains "index read back" "$work/out" "index read from .*train.csv.fedlidx"
same "the kept index trains alike" "$work/csv.fedl" "$work/again.fedl"
# a damaged index is said and rebuilt; a changed file gets a new index
printf 'garbage' | dd of="$work/train.csv.fedlidx" bs=1 seek=100 conv=notrunc 2>/dev/null
check "damaged index" 0 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x12 --scale 255 --out "$work/again.fedl" --log-level warn
contains "damage reported" "$work/err" "train.csv.fedlidx: .*indexing .* again"
contains "index kept again" "$work/out" "index kept in"
same "rebuilt index trains alike" "$work/csv.fedl" "$work/again.fedl"
check "no index cache" 0 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x12 --scale 255 --no-index-cache
if grep -q "index kept\|index read" "$work/out"; then fail "--no-index-cache used the index"; else pass; fi

# a directory of CSV files is one data set: the training file cut in two
mkdir "$work/parts"
head -n 201 "$work/train.csv" >"$work/parts/a.csv"
{ head -n 1 "$work/train.csv"; tail -n +202 "$work/train.csv"; } >"$work/parts/b.csv"
check "train from a directory of CSV files" 0 "$fedl" train "$@" --data "$work/parts" \
    --test "$work/t10k.csv" --shape 1x12x12 --scale 255
grep '^epoch' "$work/out" | sed 's/  [0-9]* samples\/s.*//' >"$work/parts.epochs"
same "two files train like one" "$work/csv.epochs" "$work/parts.epochs"

check "class names as labels" 0 "$fedl" train "$@" --data "$work/named.csv" \
    --test "$work/named-test.csv" --shape 1x12x12 --scale 255
grep '^epoch' "$work/out" | sed 's/  [0-9]* samples\/s.*//' >"$work/named.epochs"
same "class names train like class ids" "$work/idx.epochs" "$work/named.epochs"

# fedl eval reads a CSV the way the model's training file was read (the fit
# stored in the model file): the same accuracy as training's last epoch
check "eval on CSV" 0 "$fedl" eval --model-file "$work/csv.fedl" --data "$work/t10k.csv"
acc_train=$(sed -n 's/.*test-acc \([0-9.]*\).*/\1/p' "$work/csv.log" | tail -1)
contains "eval agrees with training" "$work/out" "accuracy $acc_train"
check "named model" 0 "$fedl" train "$@" --data "$work/named.csv" --test "$work/named-test.csv" \
    --shape 1x12x12 --scale 255 --out "$work/named.fedl"
check "eval with class names" 0 "$fedl" eval --model-file "$work/named.fedl" \
    --data "$work/named-test.csv"
contains "class names in the report" "$work/out" "class  3 (class-3)"
check "IDX model on CSV" 1 "$fedl" eval --model-file "$work/idx.fedl" --data "$work/t10k.csv"
contains "IDX model refusal says why" "$work/err" "was not trained from CSV"

# gzip files and streams: an index needs a plain file; a shuffle buffer
# streams them each epoch, deterministically from the seed
gzip -c "$work/t10k.csv" >"$work/t10k.csv.gz"
cp "$work/train.csv" "$work/s.csv"
gzip -f "$work/s.csv"
check "gzip without a shuffle buffer" 1 "$fedl" train "$@" --data "$work/s.csv.gz" \
    --test "$work/t10k.csv" --shape 1x12x12 --scale 255
contains "gzip refusal says what to do" "$work/err" "gzip cannot be read at a row's offset: .*--shuffle-buffer"
check "stream a gzip file" 0 "$fedl" train "$@" --data "$work/s.csv.gz" --test "$work/t10k.csv.gz" \
    --shape 1x12x12 --scale 255 --shuffle-buffer 64 --out "$work/stream1.fedl"
check "stream it again" 0 "$fedl" train "$@" --data "$work/s.csv.gz" --test "$work/t10k.csv.gz" \
    --shape 1x12x12 --scale 255 --shuffle-buffer 64 --out "$work/stream2.fedl"
same "a stream trains the same twice" "$work/stream1.fedl" "$work/stream2.fedl"
acc_stream=$(sed -n 's/.*test-acc \([0-9.]*\).*/\1/p' "$work/out" | tail -1)
awk -v a="$acc_stream" 'BEGIN { exit !(a >= 0.9) }' && pass ||
    fail "streamed training reached test accuracy $acc_stream, expected >= 0.9"

# a pipe: standard input kept in a temporary file, streamed like the file
ls "${TMPDIR:-/tmp}" | grep -c '^fedl-stdin-' >"$work/spools.before"
gzip -dc "$work/s.csv.gz" | "$fedl" train "$@" --data - --test "$work/t10k.csv.gz" --shape 1x12x12 \
    --scale 255 --shuffle-buffer 64 --out "$work/piped.fedl" >"$work/out" 2>"$work/err"
[ $? -eq 0 ] && pass || { fail "training from a pipe"; cat "$work/err"; }
same "a pipe trains like its file" "$work/stream1.fedl" "$work/piped.fedl"
ls "${TMPDIR:-/tmp}" | grep -c '^fedl-stdin-' >"$work/spools.after"
same "the spooled input is removed" "$work/spools.before" "$work/spools.after"

# regression: a numeric target, the squared error, RMSE and MAE
python3 - "$work" <<'PY' || exit 1
import random, sys
rng = random.Random(3)
for name, rows in (("reg.csv", 800), ("reg-test.csv", 200)):
    with open(sys.argv[1] + "/" + name, "w") as f:
        f.write("temp,load,power\n")
        for _ in range(rows):
            t, l = rng.uniform(-1, 1), rng.uniform(-1, 1)
            f.write("%.4f,%.4f,%.4f\n" % (t, l, 1.5 * t - 0.5 * l + 0.25 + rng.gauss(0, 0.01)))
PY
check "train a regression" 0 "$fedl" train --model "dense(8) tanh dense(1)" --data "$work/reg.csv" \
    --test "$work/reg-test.csv" --label power --regression --epochs 30 --batch 16 --lr 0.05 \
    --momentum 0.9 --quiet --out "$work/reg.fedl"
contains "regression epochs report RMSE" "$work/out" "test-rmse [0-9.]*  test-mae"
rmse=$(sed -n 's/.*test RMSE \([0-9.]*\);.*/\1/p' "$work/out")
awk -v r="$rmse" 'BEGIN { exit !(r != "" && r < 0.1) }' && pass ||
    fail "regression test RMSE '$rmse', expected < 0.1"
check "eval a regression model" 0 "$fedl" eval --model-file "$work/reg.fedl" --data "$work/reg-test.csv"
contains "eval reports RMSE" "$work/out" "200 samples, RMSE $rmse"
check "regression on class ids refused" 1 "$fedl" train "$@" --data "$work/idx" --regression
contains "regression refusal says why" "$work/err" "squared-error loss needs regression data"

# a malformed row: file, line and column
sed '7s/,12,/,1x2,/' "$work/train.csv" >"$work/bad.csv"
if ! grep -q ',1x2,' "$work/bad.csv"; then
    sed '7s/,\([0-9]*\),/,\1x,/' "$work/train.csv" >"$work/bad.csv"
fi
check "malformed CSV" 1 "$fedl" train "$@" --data "$work/bad.csv" --test "$work/t10k.csv" \
    --shape 1x12x12
contains "malformed row named by line and column" "$work/err" "bad.csv:7:[0-9]*: field [0-9]* (p[0-9]*) \".*x.*\": expected a number"
check "CSV without --test" 2 "$fedl" train "$@" --data "$work/train.csv"
contains "missing --test said" "$work/err" "needs a test file"
check "wrong shape" 1 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x13
contains "wrong shape said" "$work/err" "does not hold the 144 feature columns"
check "bad --scale" 2 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --scale sometimes

# checkpoints: a CSV run resumes; a changed file is refused, naming it
check "checkpointed CSV run" 0 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x12 --scale 255 --ckpt-dir "$work/ck" --epochs 1
check "resumed for a second epoch" 0 "$fedl" train "$@" --data "$work/train.csv" \
    --test "$work/t10k.csv" --shape 1x12x12 --scale 255 --ckpt-dir "$work/ck" --out "$work/resumed.fedl"
contains "it resumed" "$work/out" "resum"
same "resumed run equals the uninterrupted one" "$work/csv.fedl" "$work/resumed.fedl"
sed '3s/^\([0-9]*\),[0-9]*,/\1,0,/' "$work/train.csv" >"$work/changed.csv"
cp "$work/changed.csv" "$work/train.csv"
check "changed CSV refused" 1 "$fedl" train "$@" --data "$work/train.csv" --test "$work/t10k.csv" \
    --shape 1x12x12 --scale 255 --ckpt-dir "$work/ck" --epochs 3
contains "refusal names the data" "$work/err" "data_sha256: checkpoint"
finish
