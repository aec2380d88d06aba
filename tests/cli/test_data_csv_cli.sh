#!/bin/sh
# test_data_csv_cli.sh FEDL SOURCE_DIR - `fedl data convert` (IDX to CSV,
# plain and gzip, durable, values checked against the IDX bytes) and
# `fedl data inspect` (rows, columns, types, ranges, class counts, JSON, and
# malformed files reported by line:column after what was read); Fashion-MNIST
# converted for real when it is installed.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

python3 "$src/tests/cli/make_idx.py" "$work/data" 300 50 12 7 || exit 1

# ------------------------------------------------------------------ convert
check "convert help" 0 "$fedl" data convert --help
contains "convert help names the header" "$work/out" "label,pixel0"
check "convert idx to csv" 0 "$fedl" data convert --from idx "$work/data" --to csv "$work/train.csv"
contains "convert reports rows x columns" "$work/out" "300 rows x 145 columns"
check "convert the test split, gzip" 0 "$fedl" data convert --from idx "$work/data" --split test \
    --to csv "$work/test.csv.gz"
contains "convert reports gzip" "$work/out" "gzip level 1"
check "convert to stdout" 0 "$fedl" data convert --from idx "$work/data" --split test --to csv -
cp "$work/out" "$work/stdout.csv"
contains "stdout report goes to stderr" "$work/err" "50 rows x 145 columns"
if ls "$work"/*.tmp.* >/dev/null 2>&1; then
    fail "convert left a temp file: $(ls "$work"/*.tmp.*)"
else
    pass
fi

# Every value, the header and the line ends, against the IDX bytes read by
# Python; the gzip file and the stdout copy must hold the same CSV.
python3 - "$work/data" "$work/train.csv" "$work/test.csv.gz" "$work/stdout.csv" >"$work/py.out" 2>&1 <<'EOF'
import gzip, struct, sys
d, train, test_gz, test_stdout = sys.argv[1:]

def idx(path):
    b = open(path, "rb").read()
    ndim = b[3]
    dims = struct.unpack(">" + "I" * ndim, b[4:4 + 4 * ndim])
    return dims, b[4 + 4 * ndim:]

def expected(prefix):
    (n, h, w), pixels = idx("%s/%s-images-idx3-ubyte" % (d, prefix))
    (m,), labels = idx("%s/%s-labels-idx1-ubyte" % (d, prefix))
    assert n == m
    lines = ["label," + ",".join("pixel%d" % j for j in range(h * w))]
    for i in range(n):
        row = pixels[i * h * w:(i + 1) * h * w]
        lines.append(",".join([str(labels[i])] + [str(v) for v in row]))
    return ("\n".join(lines) + "\n").encode()

problems = []
if open(train, "rb").read() != expected("train"):
    problems.append("train.csv differs from the IDX bytes")
test = expected("t10k")
if gzip.open(test_gz, "rb").read() != test:
    problems.append("test.csv.gz differs from the IDX bytes")
if open(test_stdout, "rb").read() != test:
    problems.append("the stdout CSV differs from the IDX bytes")
print("\n".join(problems) if problems else "values round-trip")
EOF
contains "csv values equal the IDX bytes" "$work/py.out" "^values round-trip$"

# durability: a failed write leaves the old file and no temp
echo "old contents" >"$work/keep.csv"
mkdir "$work/dir.csv"
check "convert onto a directory fails" 1 "$fedl" data convert --from idx "$work/data" --to csv "$work/dir.csv"
contains "rename failure names the path" "$work/err" "dir.csv: cannot rename"
check "convert of a missing directory fails" 1 "$fedl" data convert --from idx "$work/none" --to csv "$work/keep.csv"
contains "missing input names the path" "$work/err" "$work/none"
if [ "$(cat "$work/keep.csv")" = "old contents" ] && ! ls "$work"/*.tmp.* >/dev/null 2>&1; then
    pass
else
    fail "a failed convert changed keep.csv or left a temp file"
fi
check "convert into a missing directory fails" 1 "$fedl" data convert --from idx "$work/data" --to csv "$work/no/such/out.csv"
contains "create failure names the temp file" "$work/err" "no/such/out.csv.tmp"
check "convert needs --from and --to" 2 "$fedl" data convert "$work/data" "$work/x.csv"
check "convert from csv is refused" 2 "$fedl" data convert --from csv "$work/data" --to csv "$work/x.csv"
check "convert --split other" 2 "$fedl" data convert --from idx "$work/data" --to csv "$work/x.csv" --split valid

# ------------------------------------------------------------------ inspect
check "inspect help" 0 "$fedl" data inspect --help
check "inspect the converted csv" 0 "$fedl" data inspect "$work/train.csv"
contains "inspect rows x columns" "$work/out" "train.csv: 300 rows x 145 columns"
contains "inspect types" "$work/out" "types: 145 integer"
contains "inspect has no missing values" "$work/out" "missing values: none"
contains "inspect compact table" "$work/out" "\.\.\.  136 columns (pixel5 \.\. pixel140): 136 integer; min [0-9]*, max [0-9]*; no missing values"
contains "inspect label column" "$work/out" "classes of column 0 (label): 10 distinct values in 300 rows"
check "inspect --all" 0 "$fedl" data inspect --all "$work/train.csv"
contains "--all lists every column" "$work/out" "pixel77 "
check "inspect gzip" 0 "$fedl" data inspect "$work/test.csv.gz"
contains "inspect gzip rows" "$work/out" "50 rows x 145 columns"
check "inspect stdin" 0 sh -c "\"$fedl\" data inspect - <\"$work/train.csv\""
contains "inspect stdin rows" "$work/out" "<stdin>: 300 rows x 145 columns"

# --json: rows, columns, per-column min/max/mean/std and the class counts
# against Python's own reading of the IDX files
check "inspect --json" 0 "$fedl" data inspect --json "$work/train.csv"
cp "$work/out" "$work/train.json"
python3 - "$work/data" "$work/train.json" >"$work/py.out" 2>&1 <<'EOF'
import json, statistics, struct, sys
d, path = sys.argv[1:]
r = json.load(open(path))
b = open(d + "/train-images-idx3-ubyte", "rb").read()
n, h, w = struct.unpack(">III", b[4:16])
pixels = b[16:]
labels = open(d + "/train-labels-idx1-ubyte", "rb").read()[8:]
columns = [list(labels)] + [[pixels[i * h * w + j] for i in range(n)] for j in range(h * w)]
problems = []
if (r["rows"], r["columns"], r["complete"], r["error"]) != (n, h * w + 1, True, None):
    problems.append("rows/columns/complete: %r" % [r["rows"], r["columns"], r["complete"], r["error"]])
for j, (c, values) in enumerate(zip(r["column_stats"], columns)):
    want = dict(index=j, name="label" if j == 0 else "pixel%d" % (j - 1), type="integer", count=n,
                missing=0, min=min(values), max=max(values))
    got = {k: c[k] for k in want}
    if got != want:
        problems.append("column %d: %r != %r" % (j, got, want))
    for k, v in (("mean", statistics.mean(values)), ("std", statistics.stdev(values))):
        if abs(c[k] - v) > 1e-9 * max(1, abs(v)):
            problems.append("column %d %s: %r != %r" % (j, k, c[k], v))
classes = [{"value": v, "count": labels.count(v)} for v in sorted(set(labels))]
if r["label"] != dict(index=0, name="label", distinct=len(classes), counted=n, classes=classes,
                      not_counted=None):
    problems.append("label: %r, expected %r" % (r["label"], classes))
print("\n".join(problems[:10]) if problems else "json matches")
EOF
contains "inspect --json matches the IDX" "$work/py.out" "^json matches$"

# malformed files: line:column, what was read before, exit 1
printf 'a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n' >"$work/ragged.csv"
check "inspect a ragged row" 1 "$fedl" data inspect "$work/ragged.csv"
contains "ragged row by line:column" "$work/err" "ragged.csv:4:4: record has 2 fields, expected 3"
contains "ragged: rows before it" "$work/out" "ragged.csv: 2 rows x 3 columns"
contains "ragged: stats before it" "$work/out" "  2  c     integer           3           6"
contains "ragged: stopped after" "$work/out" "stopped after 2 rows at a malformed record"
check "inspect --json a ragged row" 1 "$fedl" data inspect --json "$work/ragged.csv"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["complete"] is False and r["rows"] == 2 and ":4:4:" in r["error"], r; print("ok")' \
    "$work/out" >"$work/py.out" 2>&1
contains "ragged --json says where" "$work/py.out" "^ok$"

printf 'x,y\n1,ok\n2,a"b\n' >"$work/stray.csv"
check "inspect a stray quote" 1 "$fedl" data inspect "$work/stray.csv"
contains "stray quote by line:column" "$work/err" "stray.csv:3:4: field 2: stray quote"
contains "stray: the row before it" "$work/out" "stray.csv: 1 row x 2 columns"

printf 'p,q\n"1,2\n' >"$work/open.csv"
check "inspect an unclosed quote" 1 "$fedl" data inspect "$work/open.csv"
contains "unclosed quote by line" "$work/err" "open.csv:2:"

printf 'id,score,size,label\n1,0.5,3,cat\n2,,4,dog\n3,abc,-5,cat\n4,1e3,6,\n' >"$work/mixed.csv"
check "a non-number in a numeric column is not an error" 0 "$fedl" data inspect "$work/mixed.csv"
contains "score is text, first non-number at line:column" "$work/out" \
    "1  score  text .*1  first non-number \"abc\" at 4:3"
contains "size stays integer" "$work/out" "2  size   integer          -5           6"
contains "text labels counted" "$work/out" "classes of column 3 (label): 2 distinct values in 3 rows"
contains "missing values counted" "$work/out" "missing values: 2 in 2 columns"
printf 'id,score\n1,0.25\n2,-1.5\n3,7\n' >"$work/float.csv"
check "inspect floats" 0 "$fedl" data inspect "$work/float.csv"
contains "a float column" "$work/out" "1  score  float          -1.5           7     1.91667"
contains "no label column: column 0, as fedl train" "$work/out" "classes of column 0 (id): 3 distinct values in 3 rows"

printf '1;x;2.5\n2;y;3\n3;x;4\n' >"$work/semi.csv"
check "inspect --no-header --delimiter ; --label 1" 0 "$fedl" data inspect --no-header --delimiter ';' --label 1 "$work/semi.csv"
contains "no header: rows" "$work/out" "semi.csv: 3 rows x 3 columns (no header)"
contains "no header: label by index" "$work/out" "classes of column 1: 2 distinct values in 3 rows"
check "inspect --label not a column" 2 "$fedl" data inspect --label nope "$work/train.csv"
contains "--label names the problem" "$work/err" "no column of that name"
check "inspect --label past the end" 2 "$fedl" data inspect --label 145 "$work/train.csv"
check "inspect --delimiter two bytes" 2 "$fedl" data inspect --delimiter ab "$work/train.csv"
check "inspect --buffer too small for a record" 1 "$fedl" data inspect --buffer 64 "$work/train.csv"
check "inspect a missing file" 1 "$fedl" data inspect "$work/none.csv"
contains "missing file named" "$work/err" "none.csv"
check "inspect --json a missing file" 1 "$fedl" data inspect --json "$work/none.csv"
contains "--json still prints an object" "$work/out" '"complete": false, "error": ".*none.csv'

python3 -c 'import sys; sys.stdout.write("id,label\n" + "".join("%d,c%d\n" % (i, i) for i in range(1500)))' >"$work/many.csv"
check "inspect many classes" 0 "$fedl" data inspect "$work/many.csv"
contains "too many distinct values" "$work/out" "not counted: too many distinct values (more than 1,000)"

# ------------------------------------------------- Fashion-MNIST, for real
# (not under an emulator: 133 MB through qemu takes minutes, and the small
# set above covers the same code)
fmnist=/usr/share/datasets/fashion-mnist
if [ -n "${FEDL_EMULATED_BINARY:-}" ]; then
    echo "Fashion-MNIST part skipped under an emulator"
elif [ -r "$fmnist/train-images-idx3-ubyte.gz" ] || [ -r "$fmnist/train-images-idx3-ubyte" ]; then
    start=$(date +%s.%N)
    check "convert Fashion-MNIST" 0 "$fedl" data convert --from idx "$fmnist" --to csv "$work/fmnist.csv"
    end=$(date +%s.%N)
    contains "Fashion-MNIST 60,000 rows x 785 columns" "$work/out" "60,000 rows x 785 columns"
    lines=$(wc -l <"$work/fmnist.csv")
    fields=$(awk -F, 'NR == 1 || NR == 60001 { print NF }' "$work/fmnist.csv" | sort -u)
    if [ "$lines" -eq 60001 ] && [ "$fields" = 785 ]; then
        pass
    else
        fail "Fashion-MNIST CSV: $lines lines (expected 60001), field counts '$fields' (expected 785)"
    fi
    echo "Fashion-MNIST convert: $(echo "$start $end" | awk '{ printf "%.2f", $2 - $1 }') s; $(sed -n 2p "$work/out")"
    check "inspect Fashion-MNIST" 0 "$fedl" data inspect "$work/fmnist.csv"
    contains "Fashion-MNIST inspect" "$work/out" "60,000 rows x 785 columns"
    contains "Fashion-MNIST classes" "$work/out" "10 distinct values in 60,000 rows"
    contains "Fashion-MNIST balanced" "$work/out" "9        6,000   10.00%"
    # bounded memory: the reader's buffer and per-column stats, not the file
    rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' "$work/out")
    if [ -n "$rss" ] && awk -v r="$rss" 'BEGIN { exit !(r < 32) }'; then
        pass
    else
        fail "inspect of a 133 MB CSV: peak RSS '$rss' MiB, expected < 32"
    fi
    sed -n 2p "$work/out"
fi
finish
