#!/bin/sh
# ckpt_io.sh - checkpoint save/load/verify against dd on the same disk, side
# by side in one run.
#
#   bench/ckpt_io.sh [options] BUILD_DIR
#
# For each case (LeNet-5 + SGD momentum, the 10M-parameter MLP + SGD
# momentum, the MLP + Adam) runs N rounds; each round runs, in alternating
# order (A B, then B A):
#   A  BUILD_DIR/ckpt_io --repeat 1 --rotate R --csv (one warm-up round, then
#      one round of fedl_ckpt_dir_save, fedl_checkpoint_save, C write+fsync,
#      C durable write, checkpoint_load, trainer_restore, ckpt_dir_verify, C
#      read, in an order rotated by the round number R)
#   B  dd if=/dev/zero of=FILE bs=1M count=BYTES iflag=count_bytes conv=fsync
#      (a new file of the checkpoint's exact size), then
#      dd if=FILE of=/dev/null bs=1M, from the page cache ("warm") and, as
#      root, after sync + echo 3 > /proc/sys/vm/drop_caches ("cold")
# and prints, per operation, the median time over the rounds with min..max,
# MB/s (1 MB = 1e6 bytes) at the median, and the ratios fedl / dd of the
# same round (median, min..max). dd's time is the one dd reports (from its
# first read to after the fsync; the exec of dd is not in it).
#
# Options:
#   --repeat N       rounds per case [5]
#   --dir DIR        where the files go (a fresh directory under it) [.]
#                    must be on a disk: tmpfs makes fsync free (warned)
#   --cases "..."    cases as model:optim [lenet5:sgd mlp10m:sgd mlp10m:adam]
#   --no-drop-caches never drop the page cache (also the default when not root)
set -eu

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

repeat=5
dir=.
cases="lenet5:sgd mlp10m:sgd mlp10m:adam"
drop=1
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --repeat) repeat=$2; shift ;;
    --dir) dir=$2; shift ;;
    --cases) cases=$2; shift ;;
    --no-drop-caches) drop=0 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "ckpt_io.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }
bin=$build/ckpt_io
[ -x "$bin" ] || { echo "ckpt_io.sh: $bin not found; build first" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || drop=0

work=$(mktemp -d "$dir/ckpt_io_sh.XXXXXX")
tmp=$(mktemp -d)
trap 'rm -rf "$work" "$tmp"' EXIT INT TERM
ddfile=$work/dd.bin
drop_args=""
[ $drop -eq 1 ] && drop_args="--drop-caches"

fstype=$(stat -f -c %T "$work" 2>/dev/null || echo '?')
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "ckpt_io.sh: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN) cores, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "directory $work: $fstype ($(df -h "$work" | awk 'NR == 2 { print $1 }'))"
case "$fstype" in tmpfs | ramfs) echo "WARNING: $fstype: fsync is free here; use --dir on a disk" ;; esac
if [ $drop -eq 1 ]; then
    echo "reads: warm (page cache) and cold (sync; echo 3 > /proc/sys/vm/drop_caches before each)"
else
    echo "reads: from the page cache only (not root, or --no-drop-caches)"
fi

# dd_seconds: the seconds dd reports on stdin ("... copied, 0.0123 s, ...")
dd_seconds() {
    sed -n 's/.* copied, \([0-9.e+-]*\) s,.*/\1/p' | tail -n 1
}

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# run_dd CASE ROUND BYTES: one fsync'd write and the reads, as csv rows
run_dd() {
    rm -f "$ddfile"
    s=$(dd if=/dev/zero of="$ddfile" bs=1M count="$3" iflag=count_bytes conv=fsync 2>&1 | dd_seconds)
    echo "row,$1,dd_write,$2,$3,$s"
    s=$(dd if="$ddfile" of=/dev/null bs=1M 2>&1 | dd_seconds)
    echo "row,$1,dd_read,$2,$3,$s"
    if [ $drop -eq 1 ]; then
        drop_caches
        s=$(dd if="$ddfile" of=/dev/null bs=1M 2>&1 | dd_seconds)
        echo "row,$1,dd_read_cold,$2,$3,$s"
    fi
}

# run_fedl CASE ROUND MODEL OPTIM: ckpt_io's rows as "row,CASE,op,ROUND,bytes,seconds"
run_fedl() {
    # shellcheck disable=SC2086
    "$bin" --dir "$work" --repeat 1 --rotate "$2" --csv --model "$3" --optim "$4" $drop_args \
        >"$tmp/ckpt_io.out" 2>"$tmp/ckpt_io.err" || {
        cat "$tmp/ckpt_io.err" >&2
        return 1
    }
    awk -F, -v c="$1" -v r="$2" '$1 == "row" { printf "row,%s,%s,%s,%s,%s\n", c, $4, r, $6, $7 }' \
        "$tmp/ckpt_io.out"
    # RSS: the peak of the whole ckpt_io process (model, moments, one load)
    sed -n 's/^peak RSS of the process (ru_maxrss): \([0-9.]*\) MiB/\1/p' "$tmp/ckpt_io.out" |
        awk -v c="$1" -v r="$2" '{ printf "rss,%s,%s,%s\n", c, r, $1 }'
}

: >"$tmp/rows"
for case in $cases; do
    model=${case%%:*}
    optim=${case#*:}
    label="$model/$optim"
    bytes=""
    r=1
    while [ "$r" -le "$repeat" ]; do
        if [ $((r % 2)) -eq 1 ] || [ -z "$bytes" ]; then
            run_fedl "$label" "$r" "$model" "$optim" >>"$tmp/rows"
            bytes=$(awk -F, -v c="$label" '$1 == "row" && $2 == c && $3 == "dir_save" { b = $5 } END { print b }' "$tmp/rows")
            run_dd "$label" "$r" "$bytes" >>"$tmp/rows"
        else
            run_dd "$label" "$r" "$bytes" >>"$tmp/rows"
            run_fedl "$label" "$r" "$model" "$optim" >>"$tmp/rows"
        fi
        r=$((r + 1))
    done
done

echo
echo "median of $repeat rounds (min..max); MB/s at the median, 1 MB = 1e6 bytes; ratios paired by round"
awk -F, '
    function sort(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    }
    function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == "rss" { if ($4 > rss[$2]) rss[$2] = $4; next }
    $1 == "row" {
        c = $2; op = $3; r = $4
        if (!(c in seen_case)) { seen_case[c] = 1; corder[++nc] = c }
        if (!((c, op) in seen)) { seen[c, op] = 1; oorder[c, ++no[c]] = op }
        t[c, op, r] = $6; bytes[c, op] = $5; rounds[c, r] = 1
        n[c, op]++; v[c, op, n[c, op]] = $6
    }
    function ratio(c, a, b,    r, k, x, m) {
        k = 0
        for (r = 1; r <= 1000; r++)
            if (((c, a, r) in t) && ((c, b, r) in t) && t[c, b, r] > 0) x[++k] = t[c, a, r] / t[c, b, r]
        if (k == 0) return
        m = median(x, k)
        printf "  %-16s / %-14s %6.2fx  (%.2f..%.2f)\n", a, b, m, x[1], x[k]
    }
    END {
        for (i = 1; i <= nc; i++) {
            c = corder[i]
            printf "\n%s: checkpoint %d bytes; peak RSS of ckpt_io %.1f MiB (max over rounds)\n", c, bytes[c, "dir_save"], rss[c]
            printf "  %-16s %12s %10s %21s %10s\n", "operation", "bytes", "median ms", "min..max ms", "MB/s"
            for (j = 1; j <= no[c]; j++) {
                op = oorder[c, j]; k = n[c, op]
                for (q = 1; q <= k; q++) a[q] = v[c, op, q]
                m = median(a, k)
                printf "  %-16s %12d %10.3f %21s %10.1f\n", op, bytes[c, op], m * 1e3, sprintf("%.3f..%.3f", a[1] * 1e3, a[k] * 1e3), (m > 0 ? bytes[c, op] / m / 1e6 : 0)
            }
            ratio(c, "dir_save", "dd_write")
            ratio(c, "plain_save", "dd_write")
            ratio(c, "c_write", "dd_write")
            ratio(c, "dir_save", "c_durable")
            ratio(c, "plain_save", "c_durable")
            ratio(c, "load", "dd_read")
            ratio(c, "verify", "dd_read")
            ratio(c, "load_cold", "dd_read_cold")
            ratio(c, "verify_cold", "dd_read_cold")
        }
    }' "$tmp/rows"
