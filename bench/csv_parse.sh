#!/bin/sh
# csv_parse.sh - fedl's CSV reader against pandas.read_csv and Python's csv
# module, side by side in one run: Fashion-MNIST as CSV (60,000 rows x 785
# integer columns, about 133 MB) parsed into float rows.
#
#   bench/csv_parse.sh [options] BUILD_DIR
#
# The CSV is written by BUILD_DIR/fedl data convert into a temp directory
# (or --csv FILE is used as is). Each round runs, in an order rotated by the
# round number:
#   read     dd if=FILE of=/dev/null bs=1M: reading the bytes, the floor (cat
#            with a precise time: dd reports its own)
#   fedl     BUILD_DIR/csv_parse FILE: fedl_csv_next_record and
#            fedl_csv_field_float of every field into a row buffer x (785)
#   pandas   pd.read_csv(FILE, engine="c", dtype=np.float32).to_numpy()
#   csv      for row in csv.reader(f): [float(v) for v in row]
# Parse seconds are measured inside each program around the parse alone
# (open to close, with the header; Python's start-up and imports are not in
# them: see "process s"); dd's is the one it reports. Peak RSS is the whole
# process's (/usr/bin/time -f %M). Reported per reader: the median over the
# rounds with min..max, MB/s (1 MB = 1e6 bytes of the file) and rows/s at
# the median, peak RSS (max over rounds); then the fedl / pandas ratios
# paired by round and the issue's bar: fedl >= 2x pandas' MB/s at <= 1/20
# of its peak RSS. The three parsers' sums of every value must agree.
#
# Every read is from the page cache (the file was just read) unless
# --drop-caches (root) drops it before each run.
#
# Options:
#   --repeat N        rounds [3]
#   --csv FILE        parse this CSV (header + numbers) instead of writing one
#   --data DIR        IDX directory to convert [/usr/share/datasets/fashion-mnist]
#   --dir DIR         where the temp directory goes [${TMPDIR:-/tmp}]
#   --buffer SIZE     fedl's read buffer [the reader's default, 64K]
#   --no-csv-module   skip Python's csv module (about 15 s a round)
#   --drop-caches     sync; echo 3 > /proc/sys/vm/drop_caches before each run
#   --strict          exit 1 when the bar fails
# Environment: PYTHON (an interpreter that can import pandas; default: the
# first of python3, /usr/bin/python3 that can).
set -eu

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

repeat=3
csv=""
data=/usr/share/datasets/fashion-mnist
dir=${TMPDIR:-/tmp}
buffer=""
csv_module=1
drop=0
strict=0
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --repeat) repeat=$2; shift ;;
    --csv) csv=$2; shift ;;
    --data) data=$2; shift ;;
    --dir) dir=$2; shift ;;
    --buffer) buffer=$2; shift ;;
    --no-csv-module) csv_module=0 ;;
    --drop-caches) drop=1 ;;
    --strict) strict=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "csv_parse.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }
for bin in "$build/fedl" "$build/csv_parse"; do
    [ -x "$bin" ] || { echo "csv_parse.sh: $bin not found; build first" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "csv_parse.sh: /usr/bin/time not found (Debian: apt-get install time)" >&2; exit 2; }
if [ $drop -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    echo "csv_parse.sh: --drop-caches needs root" >&2
    exit 2
fi

python=""
for p in ${PYTHON:-python3 /usr/bin/python3}; do
    if "$p" -c 'import pandas, numpy' 2>/dev/null; then
        python=$p
        break
    fi
done

tmp=$(mktemp -d "$dir/csv_parse_sh.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
if [ -z "$csv" ]; then
    csv=$tmp/train.csv
    "$build/fedl" data convert --from idx "$data" --to csv "$csv" >"$tmp/convert.out" || exit 1
    sed 's/^/  /' "$tmp/convert.out"
fi
bytes=$(stat -c %s "$csv")

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "csv_parse.sh: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN) cores, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file $csv: $bytes bytes; $repeat rounds; reads $([ $drop -eq 1 ] && echo cold: page cache dropped before each run || echo from the page cache)"
if [ -n "$python" ]; then
    echo "python: $python $("$python" -c 'import sys, pandas, numpy; print("%d.%d.%d" % sys.version_info[:3], "pandas", pandas.__version__, "numpy", numpy.__version__)')"
else
    echo "python: no interpreter that can import pandas (apt-get install python3-pandas, or set PYTHON)"
fi

# Each program prints "seconds S rows N checksum C" (rows without the header;
# checksum: the sum of every value, in double).
py_pandas='
import sys, time
import numpy as np, pandas as pd
t = time.perf_counter()
x = pd.read_csv(sys.argv[1], engine="c", dtype=np.float32).to_numpy()
s = time.perf_counter() - t
print("seconds %.4f rows %d checksum %.17g" % (s, x.shape[0], x.sum(dtype=np.float64)))
'
py_csv='
import csv, sys, time
t = time.perf_counter()
rows = 0
total = 0.0
with open(sys.argv[1], newline="") as f:
    reader = csv.reader(f)
    next(reader)
    for row in reader:
        x = [float(v) for v in row]
        total += sum(x)
        rows += 1
s = time.perf_counter() - t
print("seconds %.4f rows %d checksum %.17g" % (s, rows, total))
'

# run TOOL ROUND: one timed run, appending "TOOL ROUND seconds rows rss_kib wall checksum"
run() {
    [ $drop -eq 1 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
    case "$1" in
    read) /usr/bin/time -f '%M %e' -o "$tmp/time" dd if="$csv" of=/dev/null bs=1M 2>"$tmp/out" ;;
    fedl)
        # shellcheck disable=SC2086
        /usr/bin/time -f '%M %e' -o "$tmp/time" "$build/csv_parse" ${buffer:+--buffer $buffer} "$csv" >"$tmp/out" ;;
    pandas) /usr/bin/time -f '%M %e' -o "$tmp/time" "$python" -c "$py_pandas" "$csv" >"$tmp/out" ;;
    csv) /usr/bin/time -f '%M %e' -o "$tmp/time" "$python" -c "$py_csv" "$csv" >"$tmp/out" ;;
    esac
    rss=$(tail -n 1 "$tmp/time" | cut -d' ' -f1)
    wall=$(tail -n 1 "$tmp/time" | cut -d' ' -f2)
    case "$1" in
    read) echo "read $2 $(sed -n 's/.* copied, \([0-9.e+-]*\) s,.*/\1/p' "$tmp/out" | tail -n 1) 0 $rss $wall 0" ;;
    fedl) awk -v r="$2" -v m="$rss" -v w="$wall" '$1 == "round" { print "fedl", r, $10, $4, m, w, $16 }' "$tmp/out" ;;
    *) awk -v t="$1" -v r="$2" -v m="$rss" -v w="$wall" '$1 == "seconds" { print t, r, $2, $4, m, w, $6 }' "$tmp/out" ;;
    esac
}

tools="read fedl"
[ -n "$python" ] && tools="$tools pandas"
[ -n "$python" ] && [ $csv_module -eq 1 ] && tools="$tools csv"
ntools=$(echo "$tools" | wc -w)

# warm-up: the file into the page cache
cat "$csv" >/dev/null
: >"$tmp/rows"
r=1
while [ "$r" -le "$repeat" ]; do
    # rotate the order: round r starts with tool (r - 1) mod ntools
    k=0
    while [ "$k" -lt "$ntools" ]; do
        i=$(( (r - 1 + k) % ntools + 1 ))
        tool=$(echo "$tools" | cut -d' ' -f"$i")
        run "$tool" "$r" >>"$tmp/rows" || { echo "csv_parse.sh: $tool failed" >&2; cat "$tmp/out" >&2 2>/dev/null; exit 1; }
        k=$((k + 1))
    done
    r=$((r + 1))
done

echo
awk -v bytes="$bytes" -v strict="$strict" '
    function sort(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    }
    function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    {
        t = $1; r = $2
        if (!(t in n)) order[++nt] = t
        n[t]++; s[t, n[t]] = $3; w[t, n[t]] = $6; sec[t, r] = $3; rounds[r] = 1
        if ($4 > 0) rows[t] = $4
        if ($5 > rss[t]) rss[t] = $5
        if (t != "read") sum[t] = $7
    }
    END {
        name["read"] = "`dd if=FILE of=/dev/null bs=1M` (reading only)"
        name["fedl"] = "fedl_csv (`csv_parse`)"
        name["pandas"] = "pandas.read_csv, C engine, float32"
        name["csv"] = "Python csv module + float()"
        print "| reader | parse s (median) | min..max s | MB/s | rows/s | peak RSS MiB | process s (median) |"
        print "|---|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= nt; i++) {
            t = order[i]; k = n[t]
            for (q = 1; q <= k; q++) { a[q] = s[t, q]; b[q] = w[t, q] }
            m = median(a, k); mw = median(b, k)
            med[t] = m
            printf "| %s | %.3f | %.3f..%.3f | %.1f | %s | %.1f | %.2f |\n", name[t], m, a[1], a[k],
                bytes / m / 1e6, t == "read" ? "" : sprintf("%.0f", rows[t] / m), rss[t] / 1024, mw
        }
        print ""
        printf "rows parsed:"
        for (i = 1; i <= nt; i++) if (order[i] != "read") printf " %s %d", order[i], rows[order[i]]
        printf "; sums of every value:"
        agree = 1
        for (i = 1; i <= nt; i++) {
            t = order[i]
            if (t == "read") continue
            printf " %s %s", t, sum[t]
            if (sum[t] != sum["fedl"] || rows[t] != rows["fedl"]) agree = 0
        }
        print agree ? " (all agree)" : " (DIFFER)"
        if (!("pandas" in n)) {
            print "bar: not checked (no pandas)"
            exit(strict ? 1 : 0)
        }
        k = 0
        for (r in rounds) if (((("fedl", r) in sec)) && (("pandas", r) in sec) && sec["fedl", r] > 0) x[++k] = sec["pandas", r] / sec["fedl", r]
        sort(x, k)
        speed = med["pandas"] / med["fedl"]
        memory = rss["pandas"] / rss["fedl"]
        printf "fedl / pandas: %.2fx the MB/s (medians; paired rounds %.2f..%.2f), 1/%.0f of the peak RSS\n", speed, x[1], x[k], memory
        if ("csv" in n) printf "fedl / csv module: %.1fx the MB/s\n", med["csv"] / med["fedl"]
        if ("read" in n) printf "fedl parses at %.0f%% of the reading speed (dd)\n", 100 * med["read"] / med["fedl"]
        pass = speed >= 2 && rss["fedl"] * 20 <= rss["pandas"] && agree
        printf "bar (>= 2x pandas MB/s at <= 1/20 of its peak RSS, same values): %s\n", pass ? "PASS" : "FAIL"
        exit((strict && !pass) ? 1 : 0)
    }' "$tmp/rows"
