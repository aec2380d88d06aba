#!/bin/sh
# ckpt_overhead.sh - what checkpointing costs `fedl train`, measured side by
# side in one run.
#
#   bench/ckpt_overhead.sh [options] BUILD_DIR
#
# Trains LeNet-5 on Fashion-MNIST (batch 32, SGD lr 0.05 momentum 0.9, seed
# 1, --quiet --log-level info) in three configurations, rotating their order
# each round so that none always runs first:
#   none      no checkpoints
#   default   --ckpt-dir DIR with the defaults: every 30 s and at each
#             epoch end, keep 3
#   steps:N   --ckpt-dir DIR --ckpt-steps N (aggressive: the per-checkpoint
#             cost becomes visible)
# Each run starts with an empty DIR (on the filesystem of --dir, not tmpfs).
# From each run: samples/s and peak RSS of the "summary:" line, the training
# loop's seconds (the summary's "in X s"), the wall-clock seconds of the
# whole command (data loading, evaluation and every checkpoint included)
# and its user+system CPU seconds (/usr/bin/time, if installed: less
# sensitive to other jobs on a shared machine than wall-clock, but blind to
# time spent waiting for fsync), and the checkpoints written (the
# "checkpoint N written" lines of stderr at --log-level info). Reported:
# medians with min..max over the rounds, the throughput ratio to "none"
# paired by round (overhead % = 100 (1 - ratio)), the wall-clock and CPU
# ratios, and the wall-clock and CPU cost per checkpoint.
#
# NOTE: `fedl train` times each epoch's loop before the epoch-end checkpoint,
# so the summary's samples/s includes the periodic checkpoints (timer,
# --ckpt-steps) but not the epoch-end ones; the wall-clock column includes
# all of them.
#
# Options:
#   --repeat N    rounds [5]
#   --epochs N    epochs per run [2]
#   --steps N     the aggressive configuration's --ckpt-steps [100]; 0: skip it
#   --model M     preset or spec [lenet5]
#   --data DIR    [/usr/share/datasets/fashion-mnist]; missing: skipped
#   --dir DIR     checkpoint directories go in a fresh directory under it [.]
set -eu

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

repeat=5
epochs=2
steps=100
model=lenet5
data=/usr/share/datasets/fashion-mnist
dir=.
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --repeat) repeat=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --steps) steps=$2; shift ;;
    --model) model=$2; shift ;;
    --data) data=$2; shift ;;
    --dir) dir=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "ckpt_overhead.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }
fedl=$build/fedl
[ -x "$fedl" ] || { echo "ckpt_overhead.sh: $fedl not found; build first" >&2; exit 2; }
if [ ! -d "$data" ]; then
    echo "ckpt_overhead.sh: no data at $data (apt-get install dataset-fashion-mnist); skipped"
    exit 0
fi

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

work=$(mktemp -d "$dir/ckpt_overhead.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
ckdir=$work/ckpt

fstype=$(stat -f -c %T "$work" 2>/dev/null || echo '?')
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "ckpt_overhead.sh: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN) cores, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "checkpoints in $work: $fstype"
case "$fstype" in tmpfs | ramfs) echo "WARNING: $fstype: fsync is free here; use --dir on a disk" ;; esac
echo "$model, $epochs epoch(s) of $(basename "$data"), batch 32, SGD lr 0.05 momentum 0.9, seed 1; $repeat rounds, order rotated each round"

now_ns() {
    date +%s%N
}

have_time=0
[ -x /usr/bin/time ] && have_time=1

# run CONFIG ROUND -> a row "CONFIG ROUND sps loop_s wall_s rss_mib checkpoints cpu_s"
run() {
    rm -rf "$ckdir"
    case "$1" in
    none) set -- "$1" "$2" ;;
    default) set -- "$1" "$2" --ckpt-dir "$ckdir" ;;
    steps) set -- "$1" "$2" --ckpt-dir "$ckdir" --ckpt-steps "$steps" ;;
    esac
    config=$1 round=$2
    shift 2
    set -- "$fedl" train --model "$model" --data "$data" --epochs "$epochs" --batch 32 --lr 0.05 \
        --momentum 0.9 --seed 1 --quiet --log-level info "$@"
    [ $have_time -eq 1 ] && set -- /usr/bin/time -f '%U %S' -o "$work/time" "$@"
    t0=$(now_ns)
    "$@" >"$work/out" 2>"$work/err" || {
        cat "$work/err" >&2
        echo "ckpt_overhead.sh: fedl train ($config) failed" >&2
        return 1
    }
    t1=$(now_ns)
    written=$(grep -c 'checkpoint [0-9]* written' "$work/err" || true)
    cpu=nan
    [ $have_time -eq 1 ] && cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")
    awk -v c="$config" -v r="$round" -v wall="$(((t1 - t0) / 1000))" -v n="$written" -v cpu="$cpu" '
        /^summary:/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "samples/s);") { sps = $(i - 1); sub(/^\(/, "", sps) }
                if ($i == "in" && $(i + 2) == "s") loop = $(i + 1)
                if ($i == "RSS") rss = $(i + 1)
            }
        }
        END {
            if (sps == "") exit 1
            printf "%s %s %s %s %.6f %s %s %s\n", c, r, sps, loop, wall / 1e6, rss, n, cpu
        }' "$work/out"
}

configs="none default steps"
[ "$steps" -gt 0 ] || configs="none default"
: >"$work/rows"
r=1
while [ "$r" -le "$repeat" ]; do
    # rotate: round r starts with configuration (r - 1) mod their number
    order=$(echo "$configs" | awk -v r="$r" '{ for (i = 0; i < NF; i++) printf "%s ", $(((i + r - 1) % NF) + 1) }')
    for c in $order; do
        run "$c" "$r" >>"$work/rows"
    done
    r=$((r + 1))
done

awk -v steps="$steps" -v repeat="$repeat" -v configs="$configs" '
    function sort(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    }
    function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    {
        c = $1; r = $2
        sps[c, r] = $3; loop[c, r] = $4; wall[c, r] = $5; rss[c, r] = $6; ck[c, r] = $7; cpu[c, r] = $8
        runs[c] = runs[c] " " $3
    }
    function stats(arr, c,    r, k, x) {
        k = 0
        for (r = 1; r <= repeat; r++) if ((c, r) in arr) x[++k] = arr[c, r]
        med = median(x, k); lo = x[1]; hi = x[k]
    }
    END {
        name["none"] = "none"; name["default"] = "default (30 s + epoch end)"; name["steps"] = "--ckpt-steps " steps
        printf "\n%-28s %16s %14s %20s %20s %11s %7s\n", "configuration", "samples/s median", "min..max", "wall s (min..max)", "CPU s (min..max)", "checkpoints", "RSS MiB"
        nconf = split(configs, order, " ")
        for (i = 1; i <= nconf; i++) {
            c = order[i]
            stats(sps, c); s_med = med; s_rng = sprintf("%.0f..%.0f", lo, hi)
            stats(wall, c); w_med = med; w_rng = sprintf("%.2f (%.2f..%.2f)", med, lo, hi)
            stats(cpu, c); c_rng = sprintf("%.2f (%.2f..%.2f)", med, lo, hi)
            stats(ck, c); k_rng = (lo == hi) ? sprintf("%d", lo) : sprintf("%d..%d", lo, hi)
            stats(rss, c); r_max = hi
            sps_med[c] = s_med; wall_med[c] = w_med
            printf "%-28s %16.0f %14s %20s %20s %11s %7.1f\n", name[c], s_med, s_rng, w_rng, c_rng, k_rng, r_max
        }
        printf "\nper-run samples/s:\n"
        for (i = 1; i <= nconf; i++) printf "  %-26s%s\n", name[order[i]], runs[order[i]]
        printf "\npaired by round against none (median, min..max over %d rounds):\n", repeat
        for (i = 2; i <= nconf; i++) {
            c = order[i]; k = 0; kw = 0; kc = 0; ku = 0; kv = 0
            for (r = 1; r <= repeat; r++) {
                if (!(("none", r) in sps) || !((c, r) in sps)) continue
                x[++k] = sps[c, r] / sps["none", r]
                y[++kw] = wall[c, r] / wall["none", r]
                if (ck[c, r] > 0) z[++kc] = 1000 * (wall[c, r] - wall["none", r]) / ck[c, r]
                if (cpu["none", r] > 0) {
                    u[++ku] = cpu[c, r] / cpu["none", r]
                    if (ck[c, r] > 0) w[++kv] = 1000 * (cpu[c, r] - cpu["none", r]) / ck[c, r]
                }
            }
            m = median(x, k)
            printf "  %-26s samples/s ratio %.4f (%.4f..%.4f): overhead %+.2f%% (%+.2f..%+.2f)\n", name[c], m, x[1], x[k], 100 * (1 - m), 100 * (1 - x[k]), 100 * (1 - x[1])
            m = median(y, kw)
            printf "  %-26s wall-clock ratio %.4f (%.4f..%.4f): overhead %+.2f%%\n", "", m, y[1], y[kw], 100 * (m - 1)
            if (kc > 0) {
                m = median(z, kc)
                printf "  %-26s wall-clock per checkpoint %.1f ms (%.1f..%.1f)\n", "", m, z[1], z[kc]
            }
            if (ku > 0) {
                m = median(u, ku)
                printf "  %-26s CPU-time ratio %.4f (%.4f..%.4f): overhead %+.2f%%\n", "", m, u[1], u[ku], 100 * (m - 1)
            }
            if (kv > 0) {
                m = median(w, kv)
                printf "  %-26s CPU time per checkpoint %.1f ms (%.1f..%.1f)\n", "", m, w[1], w[kv]
            }
            delete x; delete y; delete z; delete u; delete w
        }
    }' "$work/rows"
