#!/bin/sh
# simulate_scale.sh - what `fedl simulate` costs with many simulated clients.
#
# Usage: bench/simulate_scale.sh [--clients "1000"] [--rounds 1] [--model mlp]
#                                [--workers N] [--repeat 3] [--strict] BUILD_DIR
#
# For each N of --clients (default 1000) runs
#
#   BUILD_DIR/fedl simulate --clients N --rounds R --model mlp \
#       --data /usr/share/datasets/fashion-mnist --partition iid --seed r --quiet
#
# (Fashion-MNIST's 60,000 training images dealt iid among the N clients: 60
# each at N = 1000; all of them every round; --workers: fedl's default, the
# number of CPUs, unless given) --repeat times (run r uses seed r) under
# /usr/bin/time, and reports the wall time of the whole process (median),
# user and system CPU seconds (median), minor page faults (median), the peak
# RSS (the largest of the runs; fedl's own summary agrees with
# /usr/bin/time's to within the C library's own pages), the final test
# accuracy, and for scale N x params x 4 bytes: the size of one float32
# update per client. The bar of the issue: peak RSS < 1 GiB for 1,000
# clients (--strict: a failed bar exits 1).
#
# The machine should be otherwise idle; on a shared machine the wall time
# moves with the load, the peak RSS does not.
set -eu

usage() {
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
}

strict=0
repeat=3
clients_list=1000
rounds=1
model=mlp
workers=""
data=/usr/share/datasets/fashion-mnist
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --strict) strict=1 ;;
    --repeat) repeat=$2; shift ;;
    --clients) clients_list=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --model) model=$2; shift ;;
    --workers) workers=$2; shift ;;
    --data) data=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "simulate_scale.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }

fedl=$build/fedl
[ -x "$fedl" ] || { echo "simulate_scale.sh: $fedl not found; build first (make build)" >&2; exit 2; }
[ -d "$data" ] || { echo "simulate_scale.sh: no data at $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "simulate_scale.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

load() {
    cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'
}

# run N SEED -> "wall user sys faults rss_kib acc params workers"
run() {
    set -- "$fedl" simulate --clients "$1" --rounds "$rounds" --model "$model" --data "$data" \
        --partition iid --seed "$2" --quiet --metrics "$tmp/m.jsonl"
    [ -n "$workers" ] && set -- "$@" --workers "$workers"
    /usr/bin/time -f '%e %U %S %R %M' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
        cat "$tmp/out" "$tmp/err" "$tmp/time" >&2; return 1; }
    # "simulate: 1000 clients (iid), fedavg, 1 rounds, fraction 1, 235146 parameters, 2 workers, seed 1"
    params=$(sed -n 's/.* \([0-9][0-9]*\) parameters, \([0-9][0-9]*\) workers.*/\1 \2/p' "$tmp/out")
    acc=$(tail -n 1 "$tmp/m.jsonl" | sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p')
    echo "$(cat "$tmp/time") ${acc:-?} $params"
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
echo "fedl simulate at scale: $model, $rounds round(s), iid split of $(basename "$data"), seeds 1..$repeat"
echo "host: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?") cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load $(load)"
printf '\n%8s %7s %8s %8s %8s %10s %13s %14s %9s\n' clients workers "wall s" "user s" "sys s" "minflt" "peak RSS MiB" "N*params*4 MiB" "test acc"
fails=0
: >"$tmp/bars"
for n in $clients_list; do
    : >"$tmp/rows"
    r=1
    while [ "$r" -le "$repeat" ]; do
        run "$n" "$r" >>"$tmp/rows" || { echo "simulate_scale.sh: fedl simulate --clients $n failed" >&2; exit 1; }
        r=$((r + 1))
    done
    wall=$(cut -d' ' -f1 "$tmp/rows" | median)
    user=$(cut -d' ' -f2 "$tmp/rows" | median)
    sys=$(cut -d' ' -f3 "$tmp/rows" | median)
    faults=$(cut -d' ' -f4 "$tmp/rows" | median)
    rss=$(cut -d' ' -f5 "$tmp/rows" | sort -g | tail -n 1)
    acc=$(cut -d' ' -f6 "$tmp/rows" | tr '\n' ' ')
    params=$(cut -d' ' -f7 "$tmp/rows" | head -n 1)
    w=$(cut -d' ' -f8 "$tmp/rows" | head -n 1)
    awk -v n="$n" -v w="$w" -v wall="$wall" -v user="$user" -v sys="$sys" -v f="$faults" \
        -v rss="$rss" -v p="$params" -v acc="$acc" 'BEGIN {
        printf "%8d %7s %8.2f %8.2f %8.2f %10d %13.1f %14.1f  %s\n", n, w, wall, user, sys, f,
            rss / 1024, n * p * 4 / 1048576, acc
    }'
    echo "         runs wall s: $(cut -d' ' -f1 "$tmp/rows" | tr '\n' ' ')(load $(load))"
    if [ "$n" -ge 1000 ]; then
        awk -v n="$n" -v rss="$rss" 'BEGIN {
            ok = rss / 1024 < 1024
            printf "%s  %d clients: peak RSS %.1f MiB < 1024 MiB\n", ok ? "PASS" : "FAIL", n, rss / 1024
            exit !ok
        }' >>"$tmp/bars" || fails=$((fails + 1))
    fi
done
echo "(wall, user, sys, minflt: median of $repeat runs; peak RSS: the largest; test acc: one per run)"
echo "end $(date -u '+%H:%M UTC'); load $(load)"
if [ -s "$tmp/bars" ]; then
    echo
    cat "$tmp/bars"
    if [ "$fails" -gt 0 ]; then
        echo "bars: some FAIL"
        [ "$strict" -eq 1 ] && exit 1
    else
        echo "bars: all PASS"
    fi
fi
exit 0
