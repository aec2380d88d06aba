#!/bin/sh
# test_csv_memory.sh FEDL SOURCE_DIR - training from a CSV file read on
# demand takes memory that does not grow with the file, apart from the
# documented row-offset index (16 bytes a row, include/fedl/csv.h): the peak
# RSS of `fedl train` on a generated 1 GiB CSV, less 16 bytes x its rows, is
# within 1 MiB of the same for a 10 MiB CSV of the same columns.
#
# The 10 MiB file (label + 784 pixel columns, as Fashion-MNIST in CSV) is
# generated; the 1 GiB file is its header and copies of its data rows, so
# the first rows of both are the same. Both runs train on those first 3,200
# rows only (--train-limit: the opening pass still reads, hashes and indexes
# the whole file; the limit cuts the sample count afterwards), 200 steps of
# batch 16, with the same small test file: the same work, which the test
# also checks (the same losses and accuracies). Peak RSS is the kernel's
# ru_maxrss (/usr/bin/time %M, else the summary's "peak RSS").
#
# Needs 2 GiB free where mktemp -d puts its directory ($TMPDIR or /tmp);
# skipped, saying why, without it, under AddressSanitizer (its shadow memory
# and quarantine make RSS meaningless) and under an emulator (slow, and the
# emulator's own memory is counted). 8-17 s on a shared 2-core x86-64
# machine, most of it the opening pass over the 1 GiB file (parse and
# SHA-256 at ~130 MB/s); slower where writing 1 GiB is slow (an SD card).
set -u
fedl=$1
src=$2
work=""
trap '[ -n "$work" ] && rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
. "$src/tests/cli/lib.sh"

[ -n "${FEDL_EMULATED_BINARY:-}" ] && skip "under an emulator the 1 GiB opening pass is slow and RSS counts the emulator"
[ -n "${FEDL_SANITIZED:-}" ] && skip "AddressSanitizer's shadow memory and quarantine swamp a 1 MiB comparison"
work=$(mktemp -d)
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
[ "${free_kib:-0}" -ge $((2 * 1024 * 1024)) ] ||
    skip "$(dirname "$work") has $((${free_kib:-0} / 1024)) MiB free; the test writes a 1 GiB file and needs 2 GiB"

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
started=$(date +%s)

small_bytes=$((10 * 1024 * 1024))
big_bytes=$((1024 * 1024 * 1024))
python3 "$src/tests/cli/make_csv.py" "$work/small.csv" "$small_bytes" 1 || exit 1
python3 "$src/tests/cli/make_csv.py" "$work/test.csv" 300000 2 || exit 1
tail -n +2 "$work/small.csv" >"$work/rows" || exit 1
cp "$work/small.csv" "$work/big.csv" || exit 1
size=$(wc -c <"$work/small.csv")
rows_size=$(wc -c <"$work/rows")
while [ "$size" -lt "$big_bytes" ]; do
    cat "$work/rows" >>"$work/big.csv" || exit 1
    size=$((size + rows_size))
done
rm -f "$work/rows"
made=$(date +%s)

have_time=0
[ -x /usr/bin/time ] && have_time=1

# train NAME: train from $work/NAME.csv; the log in $work/NAME.log, and
# "rows peak_rss_kib printed_index_kib" in $work/NAME.fig
train() {
    csv=$1
    set -- "$fedl" train --model lenet5 --data "$work/$csv.csv" --test "$work/test.csv" \
        --shape 1x28x28 --scale 255 --train-limit 3200 --epochs 1 --batch 16 --lr 0.05 \
        --momentum 0.9 --seed 1 --quiet
    if [ $have_time -eq 1 ]; then
        set -- /usr/bin/time -f '%M' -o "$work/time" "$@"
    fi
    check "train from the $csv CSV" 0 "$@"
    cp "$work/out" "$work/$csv.log"
    # CSV .../big.csv: 464427 rows (0 skipped ...), 784 features, ...; held in memory 7260 KiB (...)
    # summary: 1 epochs, 200 steps, 3,200 samples in 0.25 s (...); ...; peak RSS 16.6 MiB
    kib=""
    [ $have_time -eq 1 ] && kib=$(tail -n 1 "$work/time")
    awk -v kib="$kib" '
        /^CSV / { for (i = 1; i <= NF; i++) { if ($i ~ /^rows/) rows = $(i - 1); if ($i == "memory") index_kib = $(i + 1) } }
        /^summary/ { for (i = 1; i <= NF; i++) if ($i == "RSS") rss = $(i + 1) }
        END {
            if (kib == "" && rss != "") kib = sprintf("%.0f", rss * 1024)
            if (rows == "" || kib == "" || index_kib == "") exit 1
            print rows, kib, index_kib
        }' "$work/$csv.log" >"$work/$csv.fig" || fail "no row count, index or peak RSS in the $csv log"
}

train small
train big
trained=$(date +%s)

grep '^epoch' "$work/small.log" | sed 's/  [0-9]* samples\/s.*//' >"$work/small.epochs"
grep '^epoch' "$work/big.log" | sed 's/  [0-9]* samples\/s.*//' >"$work/big.epochs"
same "the first 3,200 rows of the 1 GiB file train as those of the 10 MiB file" \
    "$work/small.epochs" "$work/big.epochs"
contains "200 steps on the 1 GiB file" "$work/big.log" "^summary: 1 epochs, 200 steps"

if [ -s "$work/small.fig" ] && [ -s "$work/big.fig" ]; then
    # shellcheck disable=SC2046 # two lines of three numbers
    set -- $(cat "$work/small.fig" "$work/big.fig")
    if [ "$4" -ge $(($1 * 90)) ]; then
        pass
    else
        fail "the 1 GiB file has $4 rows, not ~100x the $1 of the 10 MiB file"
    fi
    report=$(awk -v sr="$1" -v sk="$2" -v si="$3" -v br="$4" -v bk="$5" -v bi="$6" \
        -v bs="$size" -v ss="$small_bytes" -v src="$([ $have_time -eq 1 ] && echo '/usr/bin/time %M' || echo 'summary')" 'BEGIN {
            sx = sr * 16 / 1024; bx = br * 16 / 1024   # the documented index: 16 bytes a row (KiB)
            d = (bk - bx) - (sk - sx); ad = d < 0 ? -d : d
            printf "%-14s %9s %12s %18s %16s %22s\n", "file", "rows", "peak RSS KiB", "index 16 B/row KiB", "fedl held KiB", "RSS - index KiB"
            printf "%-14s %9d %12d %18.1f %16d %22.1f\n", sprintf("%.1f MiB", ss / 1048576), sr, sk, sx, si, sk - sx
            printf "%-14s %9d %12d %18.1f %16d %22.1f\n", sprintf("%.3f GiB", bs / 1073741824), br, bk, bx, bi, bk - bx
            printf "difference (1 GiB - 10 MiB, index excluded): %+.1f KiB, |diff| < 1024 KiB (peak RSS from %s)\n", d, src
            printf "(fedl'"'"'s \"held\" figure is all the source holds: the index, trimmed to its rows after the pass, + record buffer + per-column tables)\n"
            exit (ad < 1024) ? 0 : 1
        }')
    rc=$?
    echo "$report"
    if [ $rc -eq 0 ]; then
        pass
    else
        fail "peak RSS less the row index differs by 1 MiB or more between the 1 GiB and the 10 MiB CSV"
    fi
fi
rm -f "$work/big.csv"
echo "time: files made in $((made - started)) s, both runs $((trained - made)) s, total $(($(date +%s) - started)) s"
finish
