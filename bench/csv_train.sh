#!/bin/sh
# csv_train.sh - training LeNet-5 from Fashion-MNIST as CSV files (read on
# demand) against the same data as IDX files (in memory), in one run.
#
#   bench/csv_train.sh [options] BUILD_DIR
#
# Converts the IDX files to train.csv and test.csv once (gunzip, then
# tests/cli/idx_to_csv.py: a header "label,p0,...,p783", integer pixels),
# then runs, one thread for the GEMM (OPENBLAS_NUM_THREADS=1 and friends),
#
#   idx: fedl train --model lenet5 --data DATA --epochs 1 --batch 32
#            --lr 0.05 --momentum 0.9 --seed 1 --quiet
#   csv: the same with --data train.csv --test test.csv --shape 1x28x28
#            --scale 255
#
# each on all cores and pinned to one (taskset -c 0: the CSV path parses
# the next batch on a second thread, so with two cores the parsing can hide
# behind the training step, with one it cannot). Each round runs the four
# configurations, idx and csv of a pair back to back, the whole order
# reversed every other round (idx csv idx1 csv1, then csv1 idx1 csv idx);
# --repeat rounds.
#
# From each run: samples/s (the summary line of `fedl train`: training
# steps only, data reading on the CSV path included, evaluation not), wall
# time of the whole command (loading: the CSV opening pass or the IDX
# gunzip, training, evaluation), CPU time (user + sys, /usr/bin/time), peak
# RSS (/usr/bin/time %M = ru_maxrss) and test accuracy. Reported: medians
# of samples/s, wall and CPU time, the largest peak RSS, the accuracy, and
# the ratio csv/idx of the median samples/s (and the median of each round's
# ratio, which a shared machine disturbs less). The load average is printed
# at the start and at the end.
#
# Bars (PASS/FAIL):
#   throughput: csv >= 90% of idx samples/s, all cores (the issue's bar);
#     on one core the same ratio is reported as an extra line
#   accuracy: csv and idx reach the same test accuracy in every run (the
#     CSV path is bit-identical to the IDX path)
#
# Options:
#   --repeat N       rounds [3]
#   --epochs N       epochs per run [1]
#   --data DIR       IDX directory [/usr/share/datasets/fashion-mnist];
#                    missing: skipped
#   --csv-dir DIR    where train.csv and test.csv are, or are made if
#                    missing [a temporary directory, removed at the end]
#   --train-limit N  only the first N training samples (smoke runs)
#   --no-pinned      skip the one-core (taskset -c 0) configurations
#   --strict         exit 1 if a bar fails (else 0 unless a run fails)
set -eu

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

repeat=3
epochs=1
data=/usr/share/datasets/fashion-mnist
csv_dir=""
train_limit=0
pinned=1
strict=0
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --repeat) repeat=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --data) data=$2; shift ;;
    --csv-dir) csv_dir=$2; shift ;;
    --train-limit) train_limit=$2; shift ;;
    --no-pinned) pinned=0 ;;
    --strict) strict=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "csv_train.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
fedl=$build/fedl
[ -x "$fedl" ] || { echo "csv_train.sh: $fedl not found; build first" >&2; exit 2; }
if [ ! -d "$data" ]; then
    echo "csv_train.sh: no data at $data (apt-get install dataset-fashion-mnist); skipped"
    exit 0
fi
[ -x /usr/bin/time ] || { echo "csv_train.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ $pinned -eq 1 ] && ! command -v taskset >/dev/null 2>&1; then
    echo "csv_train.sh: no taskset (util-linux); the one-core configurations are skipped" >&2
    pinned=0
fi

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

now_ns() {
    date +%s%N
}

# ------------------------------------------------------------ the CSV files

[ -n "$csv_dir" ] || csv_dir=$tmp/csv
mkdir -p "$csv_dir"
if [ ! -s "$csv_dir/train.csv" ] || [ ! -s "$csv_dir/test.csv" ]; then
    t0=$(now_ns)
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        if [ -f "$data/$f.gz" ]; then
            gzip -dc "$data/$f.gz" >"$tmp/$f"
        else
            cp "$data/$f" "$tmp/$f"
        fi
    done
    python3 "$here/../tests/cli/idx_to_csv.py" "$tmp/train-images-idx3-ubyte" \
        "$tmp/train-labels-idx1-ubyte" "$csv_dir/train.csv.part"
    python3 "$here/../tests/cli/idx_to_csv.py" "$tmp/t10k-images-idx3-ubyte" \
        "$tmp/t10k-labels-idx1-ubyte" "$csv_dir/test.csv.part"
    mv "$csv_dir/train.csv.part" "$csv_dir/train.csv"
    mv "$csv_dir/test.csv.part" "$csv_dir/test.csv"
    rm -f "$tmp"/*-ubyte
    echo "made $csv_dir/train.csv and test.csv from $data in $((($(now_ns) - t0) / 1000000)) ms"
fi

# ------------------------------------------------------------ fedl train

# run CONFIG OUT -> "sps wall_s cpu_s rss_mib acc train_s", or fails with
# fedl's stderr in OUT.err. CONFIG: idx, csv, idx1 or csv1 (1: one core).
run() {
    config=$1 out=$2
    set -- "$fedl" train --model lenet5 --epochs "$epochs" --batch 32 --lr 0.05 --momentum 0.9 \
        --seed 1 --quiet
    case "$config" in
    idx*) set -- "$@" --data "$data" ;;
    csv*) set -- "$@" --data "$csv_dir/train.csv" --test "$csv_dir/test.csv" --shape 1x28x28 --scale 255 ;;
    esac
    [ "$train_limit" -gt 0 ] && set -- "$@" --train-limit "$train_limit"
    set -- /usr/bin/time -f '%M %U %S' -o "$out.time" "$@"
    case "$config" in
    *1) set -- taskset -c 0 "$@" ;;
    esac
    t0=$(now_ns)
    "$@" >"$out" 2>"$out.err" || return 1
    t1=$(now_ns)
    # summary: 1 epochs, 1,875 steps, 60,000 samples in 3.51 s (17094 samples/s);
    #          test accuracy 0.8300; peak RSS 63.1 MiB
    awk -v wall="$(((t1 - t0) / 1000))" -v time="$(tail -n 1 "$out.time")" '
        /^summary:/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "samples/s);" || $i == "samples/s)") { sps = $(i - 1); sub(/^\(/, "", sps) }
                if ($i == "accuracy") { acc = $(i + 1); sub(/;$/, "", acc) }
                if ($i == "in" && $(i + 2) == "s") train = $(i + 1)
            }
        }
        END {
            if (sps == "" || acc == "") exit 1
            split(time, t, " ")
            printf "%s %.3f %.2f %.1f %s %s\n", sps, wall / 1e6, t[2] + t[3], t[1] / 1024, acc, train
        }' "$out"
}

loadavg() {
    cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'
}

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
echo "csv_train.sh: ${cpu:-unknown CPU}, $cores cores, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "$("$fedl" --version 2>&1 | head -n 1); lenet5, $epochs epoch(s) of $(basename "$data"), batch 32, SGD lr 0.05 momentum 0.9, seed 1, 1 GEMM thread; $repeat rounds, order reversed every other round"
echo "CSV: $csv_dir/train.csv ($(wc -c <"$csv_dir/train.csv") B), test.csv ($(wc -c <"$csv_dir/test.csv") B)"
[ "$train_limit" -gt 0 ] && echo "NOTE: --train-limit $train_limit: smoke run, figures are not comparable to full epochs"
echo "load average at start: $(loadavg)"
echo "runs: round config samples/s wall_s cpu_s peak_rss_mib test_acc training_s"

configs="idx csv"
[ $pinned -eq 1 ] && configs="$configs idx1 csv1"
: >"$tmp/rows"
r=1
while [ "$r" -le "$repeat" ]; do
    # idx and csv of a pair run back to back, the order reversed every
    # other round (ABBA): neither always runs first, nor always after the
    # other pair.
    order=$configs
    [ $((r % 2)) -eq 0 ] && order=$(echo "$configs" | awk '{ for (i = NF; i >= 1; i--) printf "%s ", $i }')
    for c in $order; do
        row=$(run "$c" "$tmp/run") || {
            cat "$tmp/run.err" >&2
            echo "csv_train.sh: fedl train ($c) failed" >&2
            exit 1
        }
        echo "$r $c $row" >>"$tmp/rows"
        echo "  round $r $c: $row"
    done
    r=$((r + 1))
done
echo "load average at end: $(loadavg)"
echo

# rows: round config sps wall cpu rss acc train_s
bars_rc=0
awk -v strict=$strict '
    function verdict(ok) { if (!ok) fails++; return ok ? "PASS" : "FAIL" }
    function med(list, n,    a, i, j, t) {
        split(list, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        c = $2; n[c]++
        sps[c] = sps[c] " " $3; wall[c] = wall[c] " " $4; cpu[c] = cpu[c] " " $5
        if ($6 > rss[c]) rss[c] = $6
        if (!(c in acc)) acc[c] = $7; else if (acc[c] != $7) accdiff[c] = 1
        outside[c] = outside[c] " " ($4 - $8)
        round_sps[$1, c] = $3
        rounds = $1
    }
    END {
        label["idx"] = "IDX in memory, all cores"; label["csv"] = "CSV on demand, all cores"
        label["idx1"] = "IDX in memory, 1 core"; label["csv1"] = "CSV on demand, 1 core"
        printf "| data | samples/s (median) | csv/idx | wall s | not training s | CPU s (user+sys) | peak RSS MiB | test acc |\n"
        printf "|---|---:|---:|---:|---:|---:|---:|---|\n"
        split("idx csv idx1 csv1", order, " ")
        for (k = 1; k <= 4; k++) {
            c = order[k]
            if (!(c in n)) continue
            m[c] = med(sps[c], n[c])
            base = (c ~ /1$/) ? "idx1" : "idx"
            ratio = (c ~ /^csv/) ? sprintf("%.3f", m[c] / m[base]) : ""
            if (c ~ /^csv/ && !(base in m)) ratio = ""
            printf "| %s | %.0f | %s | %.2f | %.2f | %.2f | %.1f | %s%s |\n", label[c], m[c], ratio, med(wall[c], n[c]),
                med(outside[c], n[c]), med(cpu[c], n[c]), rss[c], acc[c], (c in accdiff) ? " (varies!)" : ""
        }
        printf "\nsamples/s per round:"
        for (k = 1; k <= 4; k++) { c = order[k]; if (c in n) printf "  %s:%s", c, sps[c] }
        printf "\n(not training s = wall - the summary'"'"'s training seconds: start-up, loading (the CSV opening pass or the IDX gunzip), evaluation)\n\n"

        for (k = 1; k <= 2; k++) {
            c = (k == 1) ? "csv" : "csv1"; b = (k == 1) ? "idx" : "idx1"
            if (!(c in n) || !(b in n)) continue
            list = ""; cnt = 0
            for (r = 1; r <= rounds; r++) if (((r, c) in round_sps) && ((r, b) in round_sps)) { list = list " " round_sps[r, c] / round_sps[r, b]; cnt++ }
            pr = med(list, cnt)
            if (k == 1)
                printf "%s  throughput, all cores: csv/idx %.3f (median of round ratios %.3f) >= 0.90\n", verdict(m[c] / m[b] >= 0.90), m[c] / m[b], pr
            else
                printf "%s  (extra) throughput, 1 core: csv/idx %.3f (median of round ratios %.3f) >= 0.90\n", (m[c] / m[b] >= 0.90) ? "PASS" : "FAIL", m[c] / m[b], pr
        }
        same = 1
        for (c in acc) { if (c in accdiff) same = 0; if (acc[c] != acc["idx"]) same = 0 }
        printf "%s  accuracy: csv and idx give the same test accuracy in every run (%s)\n", verdict(same), acc["idx"]
        if (fails) printf "bars: some FAIL\n"; else printf "bars: all PASS\n"
        exit (strict && fails) ? 1 : 0
    }' "$tmp/rows" || bars_rc=$?
exit "$bars_rc"
