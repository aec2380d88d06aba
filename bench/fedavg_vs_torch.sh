#!/bin/sh
# fedavg_vs_torch.sh - fedl simulate vs a PyTorch FedAvg, side by side.
#
# Usage: bench/fedavg_vs_torch.sh [--repeat N] [--workers "1 2"] [--rounds R]
#                                 [--strict] BUILD_DIR
#
# Runs the `make demo` federation (10 clients, iid split of Fashion-MNIST,
# LeNet-5, FedAvg, 1 local epoch, batch 32, SGD lr 0.05 no momentum, all
# clients every round, the global model evaluated on the 10k test images
# after every round) with BUILD_DIR/fedl simulate and with
# bench/torch_fedavg.py (the same setup in PyTorch 1.13), back to back.
#
# For each W of --workers (default "1 2"): fedl simulate --workers W (W
# training threads, one BLAS thread each) against torch_fedavg.py --workers
# W (W=1: the clients one after the other in the Python process; W>1: W
# forked worker processes; one torch thread each). Run r (1..N, default 3)
# uses seed r in both and alternates which goes first.
#
# Reports per framework: wall time of the whole process (/usr/bin/time:
# start-up, data loading, the rounds, the evaluations; the median of the N
# runs); the in-run time (fedl: its summary line, which times from before
# loading the data; torch: the rounds after `import torch` and loading, see
# torch_fedavg.py); the round-R test accuracy (mean over the seeds); the
# peak RSS of the main process (/usr/bin/time, largest of the runs). For
# torch with W>1 also the sum of every process's peak RSS (an upper bound:
# pages shared after the fork count once per process) and the sum of their
# PSS at the end. Then the bars of the issue: fedl >= 1.5x faster (wall) at
# equal accuracy (|diff| <= 1 point).
# --strict: a failed bar exits 1.
#
# Environment: PYTHON (an interpreter that can import torch and numpy;
# default: the first of /usr/bin/python3, python3 that can). The machine
# should be otherwise idle; on a shared machine quote the ratios.
set -eu

usage() {
    sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
}

strict=0
repeat=3
workers_list="1 2"
rounds=5
data=/usr/share/datasets/fashion-mnist
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --strict) strict=1 ;;
    --repeat) repeat=$2; shift ;;
    --workers) workers_list=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --data) data=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "fedavg_vs_torch.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
fedl=$build/fedl
[ -x "$fedl" ] || { echo "fedavg_vs_torch.sh: $fedl not found; build first (make build)" >&2; exit 2; }
[ -d "$data" ] || { echo "fedavg_vs_torch.sh: no data at $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "fedavg_vs_torch.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

if [ -z "${PYTHON:-}" ]; then
    for p in /usr/bin/python3 python3; do
        if "$p" -c 'import torch, numpy' >/dev/null 2>&1; then
            PYTHON=$p
            break
        fi
    done
fi
if [ -z "${PYTHON:-}" ]; then
    echo "fedavg_vs_torch.sh: no python3 with torch and numpy (apt-get install python3-torch)" >&2
    exit 2
fi

# One thread per worker everywhere: the BLAS libraries, OpenMP, torch.
export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# run_fedl WORKERS SEED -> "wall_s rounds_s rss_mib acc"
run_fedl() {
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$fedl" simulate --clients 10 --rounds "$rounds" \
        --model lenet5 --data "$data" --partition iid --strategy fedavg --local-epochs 1 \
        --batch 32 --lr 0.05 --seed "$2" --workers "$1" >"$tmp/fedl.out" 2>"$tmp/fedl.err" || {
        cat "$tmp/fedl.out" "$tmp/fedl.err" >&2; return 1; }
    # "    5  10  10  0  0  0.4639  0.4201  0.8473  12.4" then
    # "summary: 5 rounds in 12.6 s; peak RSS 118.6 MiB"
    awk -v timefile="$tmp/time" -v rounds="$rounds" '
        $1 == rounds && NF == 9 { acc = $8 }
        /^summary:/ { secs = $5 }
        END {
            getline t < timefile; split(t, f, " ")
            if (acc == "" || secs == "") exit 1
            printf "%s %s %.1f %s\n", f[1], secs, f[2] / 1024, acc
        }' "$tmp/fedl.out"
}

# run_torch WORKERS SEED -> "wall_s rounds_s rss_mib acc torch_version rss_sum_mib pss_sum_mib"
run_torch() {
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$PYTHON" "$here/torch_fedavg.py" --clients 10 \
        --rounds "$rounds" --model lenet5 --data "$data" --local-epochs 1 --batch 32 \
        --lr 0.05 --seed "$2" --workers "$1" --quiet >"$tmp/torch.out" 2>"$tmp/torch.err" || {
        cat "$tmp/torch.out" "$tmp/torch.err" >&2; return 1; }
    awk -v timefile="$tmp/time" '/^torch_fedavg / {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            getline t < timefile; split(t, f, " ")
            printf "%s %s %.1f %s %s %s %s\n", f[1], v["rounds_s"], f[2] / 1024, v["final_acc"],
                v["torch"], v["peak_rss_sum_mib"], v["pss_end_sum_mib"]
            found = 1
        }
        END { if (!found) exit 1 }' "$tmp/torch.out"
}

mean() {
    awk '{ s += $1 } END { if (NR) printf "%.6f\n", s / NR }'
}

median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

load() {
    cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
echo "fedl simulate vs PyTorch FedAvg: 10 clients iid, LeNet-5, $rounds rounds, 1 local epoch, batch 32, SGD lr 0.05, seeds 1..$repeat (run r uses seed r)"
echo "host: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?") cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load $(load)"

fails=0
: >"$tmp/table"
: >"$tmp/bars"
for w in $workers_list; do
    : >"$tmp/f.rows"
    : >"$tmp/t.rows"
    r=1
    while [ "$r" -le "$repeat" ]; do
        if [ $((r % 2)) -eq 1 ]; then
            run_fedl "$w" "$r" >>"$tmp/f.rows" || { echo "fedl failed" >&2; exit 1; }
            run_torch "$w" "$r" >>"$tmp/t.rows" || { echo "torch failed" >&2; exit 1; }
        else
            run_torch "$w" "$r" >>"$tmp/t.rows" || { echo "torch failed" >&2; exit 1; }
            run_fedl "$w" "$r" >>"$tmp/f.rows" || { echo "fedl failed" >&2; exit 1; }
        fi
        echo "workers $w, seed $r done (load $(load))" >&2
        r=$((r + 1))
    done
    f_wall=$(cut -d' ' -f1 "$tmp/f.rows" | median)
    f_rounds=$(cut -d' ' -f2 "$tmp/f.rows" | median)
    f_rss=$(cut -d' ' -f3 "$tmp/f.rows" | sort -g | tail -n 1)
    f_acc=$(cut -d' ' -f4 "$tmp/f.rows" | mean)
    t_wall=$(cut -d' ' -f1 "$tmp/t.rows" | median)
    t_rounds=$(cut -d' ' -f2 "$tmp/t.rows" | median)
    t_rss=$(cut -d' ' -f3 "$tmp/t.rows" | sort -g | tail -n 1)
    t_acc=$(cut -d' ' -f4 "$tmp/t.rows" | mean)
    t_ver=$(cut -d' ' -f5 "$tmp/t.rows" | head -n 1)
    awk -v w="$w" -v fw="$f_wall" -v fr="$f_rounds" -v fm="$f_rss" -v fa="$f_acc" \
        -v tw="$t_wall" -v tr="$t_rounds" -v tm="$t_rss" -v ta="$t_acc" -v tv="$t_ver" '
        BEGIN {
            printf "\nworkers %s\n", w
            printf "  %-28s %8s %9s %13s %9s\n", "framework", "wall s", "in-run s", "peak RSS MiB", "test acc"
            printf "  %-28s %8.1f %9.1f %13.1f %8.2f%%\n", "fedl simulate", fw, fr, fm, 100 * fa
            printf "  %-28s %8.1f %9.1f %13.1f %8.2f%%\n", "torch " tv, tw, tr, tm, 100 * ta
            printf "  %-28s %7.2fx %8.2fx %12.2fx %+7.2f pt\n", "torch/fedl (acc: fedl-torch)", tw / fw, tr / fr, tm / fm, 100 * (fa - ta)
        }' >>"$tmp/table"
    {
        echo "  runs wall s:   fedl $(cut -d' ' -f1 "$tmp/f.rows" | tr '\n' ' ')| torch $(cut -d' ' -f1 "$tmp/t.rows" | tr '\n' ' ')"
        echo "  runs in-run s: fedl $(cut -d' ' -f2 "$tmp/f.rows" | tr '\n' ' ')| torch $(cut -d' ' -f2 "$tmp/t.rows" | tr '\n' ' ')"
        echo "  runs RSS MiB:  fedl $(cut -d' ' -f3 "$tmp/f.rows" | tr '\n' ' ')| torch $(cut -d' ' -f3 "$tmp/t.rows" | tr '\n' ' ')"
        echo "  runs acc:      fedl $(cut -d' ' -f4 "$tmp/f.rows" | tr '\n' ' ')| torch $(cut -d' ' -f4 "$tmp/t.rows" | tr '\n' ' ')"
        if [ "$w" -gt 1 ]; then
            echo "  torch's $w workers + main process: sum of peak RSS $(cut -d' ' -f6 "$tmp/t.rows" | sort -g | tail -n 1) MiB (shared pages counted in each), sum of PSS at the end $(cut -d' ' -f7 "$tmp/t.rows" | sort -g | tail -n 1) MiB (largest of the runs)"
        fi
    } >>"$tmp/table"
    awk -v w="$w" -v fw="$f_wall" -v fa="$f_acc" -v tw="$t_wall" -v ta="$t_acc" '
        function verdict(ok) { if (!ok) fails++; return ok ? "PASS" : "FAIL" }
        BEGIN {
            r = tw / fw; d = 100 * (fa - ta); ad = d < 0 ? -d : d
            printf "%s  workers %s: fedl %.2fx faster (wall) >= 1.5x\n", verdict(r >= 1.5), w, r
            printf "%s  workers %s: accuracy fedl-torch %+.2f pt, |diff| <= 1.0 pt\n", verdict(ad <= 1.0), w, d
            exit fails
        }' >>"$tmp/bars" || fails=$((fails + 1))
done

cat "$tmp/table"
echo "(wall, in-run: median of $repeat runs; acc: mean over seeds 1..$repeat; peak RSS: the largest of the runs, of the main process)"
echo "end $(date -u '+%H:%M UTC'); load $(load)"
echo
cat "$tmp/bars"
if [ "$fails" -gt 0 ]; then
    echo "bars: some FAIL"
    [ "$strict" -eq 1 ] && exit 1
else
    echo "bars: all PASS"
fi
exit 0
