#!/bin/sh
# train_vs_torch.sh - fedl against PyTorch, side by side, one thread each.
#
#   bench/train_vs_torch.sh [options] BUILD_DIR        (make bench runs this)
#
# For each model (LeNet-5 and the MLP) trains one epoch of Fashion-MNIST with
# BUILD_DIR/fedl and with bench/torch_train.py (same layers, batch 32, SGD lr
# 0.05 momentum 0.9, run r with seed r), one after the other, and prints samples/s of the
# training loop, peak RSS, test accuracy and the fedl/torch ratios. Then it
# checks the bars:
#   fedl >= 1.5x torch samples/s on LeNet-5, >= 1.0x on the MLP,
#   test accuracy within 1 point of torch, fedl peak RSS <= 80 MiB,
# printing PASS or FAIL for each. Exit status is 0 unless --strict is given
# and a bar fails (or a run fails).
#
# Options:
#   --strict           exit 1 if any bar fails
#   --repeat N         run each fedl/torch pair N times with seeds 1..N,
#                      alternating the order; report the median samples/s, the
#                      mean test accuracy (one epoch's accuracy moves by
#                      +-2 points with the seed alone, in both frameworks)
#                      and the max RSS [1]
#   --epochs N         epochs per run [1]
#   --models "A B"     models to run [lenet5 mlp]
#   --data DIR         IDX directory [/usr/share/datasets/fashion-mnist]
#   --train-limit N    only the first N training samples (quick smoke runs)
# Environment: PYTHON (an interpreter that can import torch; default: the
# first of /usr/bin/python3, python3 that can).
#
# The machine should be otherwise idle; on a shared machine compare only the
# ratios, which come from runs made back to back.
set -eu

usage() {
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
}

strict=0
repeat=1
epochs=1
models="lenet5 mlp"
data=/usr/share/datasets/fashion-mnist
train_limit=0
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --strict) strict=1 ;;
    --repeat) repeat=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --models) models=$2; shift ;;
    --data) data=$2; shift ;;
    --train-limit) train_limit=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "train_vs_torch.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
fedl=$build/fedl
[ -x "$fedl" ] || { echo "train_vs_torch.sh: $fedl not found; build first (make build)" >&2; exit 2; }
[ -d "$data" ] || { echo "train_vs_torch.sh: no data at $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }

if [ -z "${PYTHON:-}" ]; then
    for p in /usr/bin/python3 python3; do
        if "$p" -c 'import torch, numpy' >/dev/null 2>&1; then
            PYTHON=$p
            break
        fi
    done
fi
if [ -z "${PYTHON:-}" ]; then
    echo "train_vs_torch.sh: no python3 with torch and numpy (apt-get install python3-torch)" >&2
    exit 2
fi

# One thread everywhere: the BLAS libraries, OpenMP, and torch's intra-op pool.
export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

limit_args=""
[ "$train_limit" -gt 0 ] && limit_args="--train-limit $train_limit"
have_time=0
[ -x /usr/bin/time ] && have_time=1

# run_fedl MODEL OUT SEED -> prints "sps rss_mib acc backend"
run_fedl() {
    # shellcheck disable=SC2086
    set -- "$fedl" train --model "$1" --data "$data" --epochs "$epochs" --batch 32 \
        --lr 0.05 --momentum 0.9 --seed "$3" --quiet $limit_args
    if [ $have_time -eq 1 ]; then
        /usr/bin/time -f '%M' -o "$tmp/time" "$@" >"$tmp/fedl.out" 2>"$tmp/fedl.err" || {
            cat "$tmp/fedl.err" >&2; return 1; }
    else
        "$@" >"$tmp/fedl.out" 2>"$tmp/fedl.err" || { cat "$tmp/fedl.err" >&2; return 1; }
    fi
    # summary: 1 epochs, 1,875 steps, 60,000 samples in 19.67 s (3050 samples/s);
    #          test accuracy 0.8541; peak RSS 63.1 MiB
    awk -v timefile="$tmp/time" -v have_time=$have_time '
        /^data / { for (i = 1; i <= NF; i++) if ($i == "GEMM") backend = $(i + 1) }
        /^summary:/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "samples/s);") { sps = $(i - 1); sub(/^\(/, "", sps) }
                if ($i == "accuracy") { acc = $(i + 1); sub(/;$/, "", acc) }
                if ($i == "RSS") rss = $(i + 1)
            }
        }
        END {
            if (rss == "" && have_time == 1) {
                getline kib < timefile; rss = sprintf("%.1f", kib / 1024)
            }
            if (sps == "" || acc == "") exit 1
            printf "%s %s %s %s\n", sps, rss, acc, (backend == "" ? "?" : backend)
        }' "$tmp/fedl.out"
}

# run_torch MODEL SEED -> prints "sps rss_mib acc torch_version"
run_torch() {
    # shellcheck disable=SC2086
    "$PYTHON" "$here/torch_train.py" --model "$1" --data "$data" --epochs "$epochs" \
        --batch 32 --lr 0.05 --momentum 0.9 --seed "$2" --threads 1 $limit_args \
        >"$tmp/torch.out" 2>"$tmp/torch.err" || { cat "$tmp/torch.err" >&2; return 1; }
    awk '/^torch_train / {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "%s %s %s %s\n", v["samples_per_s"], v["peak_rss_mib"], v["test_acc"], v["torch"]
            found = 1
        }
        END { if (!found) exit 1 }' "$tmp/torch.out"
}

# mean of the numbers on stdin
mean() {
    awk '{ s += $1 } END { if (NR) printf "%.6f\n", s / NR }'
}

# median of the numbers on stdin
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
echo "fedl vs PyTorch: $epochs epoch(s) of $(basename "$data"), batch 32, SGD lr 0.05 momentum 0.9, seeds 1..$repeat (run r uses seed r), 1 thread"
echo "host: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?") cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
[ "$train_limit" -gt 0 ] && echo "NOTE: --train-limit $train_limit: smoke run, figures are not comparable to full epochs"

fails=0
first=1
for model in $models; do
    : >"$tmp/f.rows"
    : >"$tmp/t.rows"
    r=1
    while [ "$r" -le "$repeat" ]; do
        # Alternate the order so neither framework always runs second.
        if [ $((r % 2)) -eq 1 ]; then
            run_fedl "$model" out "$r" >>"$tmp/f.rows" || { echo "fedl $model failed" >&2; exit 1; }
            run_torch "$model" "$r" >>"$tmp/t.rows" || { echo "torch $model failed" >&2; exit 1; }
        else
            run_torch "$model" "$r" >>"$tmp/t.rows" || { echo "torch $model failed" >&2; exit 1; }
            run_fedl "$model" out "$r" >>"$tmp/f.rows" || { echo "fedl $model failed" >&2; exit 1; }
        fi
        r=$((r + 1))
    done
    f_sps=$(cut -d' ' -f1 "$tmp/f.rows" | median)
    f_rss=$(cut -d' ' -f2 "$tmp/f.rows" | sort -g | tail -n 1)
    f_acc=$(cut -d' ' -f3 "$tmp/f.rows" | mean)
    f_be=$(cut -d' ' -f4 "$tmp/f.rows" | head -n 1)
    t_sps=$(cut -d' ' -f1 "$tmp/t.rows" | median)
    t_rss=$(cut -d' ' -f2 "$tmp/t.rows" | sort -g | tail -n 1)
    t_acc=$(cut -d' ' -f3 "$tmp/t.rows" | mean)
    t_ver=$(cut -d' ' -f4 "$tmp/t.rows" | head -n 1)
    if [ "$model" = lenet5 ]; then bar=1.5; else bar=1.0; fi
    awk -v m="$model" -v fs="$f_sps" -v fr="$f_rss" -v fa="$f_acc" -v fb="$f_be" \
        -v ts="$t_sps" -v tr="$t_rss" -v ta="$t_acc" -v tv="$t_ver" -v bar="$bar" \
        -v first="$first" '
        BEGIN {
            if (first) {
                printf "\n%-7s %-16s %11s %13s %9s\n", "model", "framework", "samples/s", "peak RSS MiB", "test acc"
                printf "%-7s %-16s %11s %13s %9s\n", "-------", "----------------", "-----------", "-------------", "---------"
            }
            printf "%-7s %-16s %11.0f %13.1f %8.2f%%\n", m, "fedl (" fb ")", fs, fr, 100 * fa
            printf "%-7s %-16s %11.0f %13.1f %8.2f%%\n", m, "torch " tv, ts, tr, 100 * ta
            printf "%-7s %-16s %10.2fx %12.2fx %+7.2f pt\n", m, "fedl/torch", fs / ts, fr / tr, 100 * (fa - ta)
        }' >>"$tmp/table"
    if [ "$repeat" -gt 1 ]; then
        echo "        runs (samples/s): fedl $(cut -d' ' -f1 "$tmp/f.rows" | tr '\n' ' ')| torch $(awk '{ printf "%.0f ", $1 }' "$tmp/t.rows")" >>"$tmp/table"
        echo "        runs (test acc):  fedl $(cut -d' ' -f3 "$tmp/f.rows" | tr '\n' ' ')| torch $(cut -d' ' -f3 "$tmp/t.rows" | tr '\n' ' ')" >>"$tmp/table"
    fi
    first=0
    awk -v m="$model" -v fs="$f_sps" -v fr="$f_rss" -v fa="$f_acc" -v ts="$t_sps" -v ta="$t_acc" \
        -v bar="$bar" '
        function verdict(ok) { if (!ok) fails++; return ok ? "PASS" : "FAIL" }
        BEGIN {
            r = fs / ts; d = 100 * (fa - ta); if (d < 0) ad = -d; else ad = d
            printf "%s  %-7s throughput fedl/torch %.2fx >= %.1fx\n", verdict(r >= bar), m, r, bar
            printf "%s  %-7s accuracy   fedl-torch %+.2f pt, |diff| <= 1.0 pt\n", verdict(ad <= 1.0), m, d
            printf "%s  %-7s fedl peak RSS %.1f MiB <= 80 MiB\n", verdict(fr <= 80.0), m, fr
            exit fails
        }' >>"$tmp/bars" || fails=$((fails + 1))
done

cat "$tmp/table"
[ "$repeat" -gt 1 ] && echo "(samples/s: median of $repeat alternating runs; test acc: mean over seeds 1..$repeat; RSS: the max)"
echo
cat "$tmp/bars"
if [ "$fails" -gt 0 ]; then
    echo "bars: some FAIL"
    [ "$strict" -eq 1 ] && exit 1
else
    echo "bars: all PASS"
fi
exit 0
