#!/bin/sh
# budget_sweep.sh - `fedl train --memory SIZE` at several budgets, side by
# side in one run: throughput, micro-batch and peak RSS for each.
#
#   bench/budget_sweep.sh [options] BUILD_DIR
#
# Trains LeNet-5 on Fashion-MNIST (effective batch 64, SGD lr 0.05 momentum
# 0.9, seed 1, one thread: OPENBLAS_NUM_THREADS=1 and friends) once per
# configuration and round, rotating the order each round so that none
# always runs first. Configurations: each budget of --budgets; "mb=N", the
# smallest budget (to the KiB) at which the plan still picks micro-batch N
# (--exact-mb; found by bisection with `fedl plan`); and "none" (no
# --memory: micro-batch = batch). A budget the plan refuses (not even
# micro-batch 1 fits) is shown as "refused" with fedl's reason (fedl train
# is run once there to check that it refuses too).
#
# From each run: samples/s of the training loop (the summary line of `fedl
# train`: training steps only, no data loading, no evaluation), peak RSS
# (/usr/bin/time %M = the kernel's ru_maxrss for the whole process; else the
# summary's "peak RSS"), the micro-batch in use (the "memory plan:" line).
# From `fedl plan` with the same settings (--json if it exists, else the
# text): the planned bytes, micro-batch, and the training set in memory.
# Reported per configuration: the median samples/s and its ratio to the
# median of "none", the largest peak RSS over the rounds, and the RSS the
# plan does not explain: RSS - training set - planned, and that minus the
# test set too (fedl train holds the test set for its per-epoch evaluation).
#
# Bars (PASS/FAIL):
#   throughput: at the smallest budget of --budgets whose plan picks a
#     micro-batch >= 8, median samples/s >= 60% of "none" (the mb=N row,
#     the tightest budget for micro-batch N, is reported as an extra check)
#   memory: at every budget, peak RSS <= budget + the data in memory
#     (training and test sets: fedl train reports both as outside the
#     budget) + FEDL_PLAN_PROCESS_OVERHEAD (read from include/fedl/train.h)
# Then, unless --no-overhead, what the process overhead is made of: peak
# RSS of `fedl --version`, of training on a 64-sample copy of the data with
# a one-layer model and with LeNet-5, and a /proc snapshot of a full run
# (file-backed = code and libraries; anonymous = heap, stacks, BLAS).
#
# Options:
#   --repeat N       rounds [3]
#   --budgets "A B"  budgets to sweep [4M 8M 16M 64M]
#   --exact-mb N     add the smallest budget for micro-batch N [8]; 0: no
#   --epochs N       epochs per run [1]
#   --train-limit N  only the first N training samples (smoke runs; the
#                    plan then differs slightly: see the NOTE it prints)
#   --model M        preset or spec [lenet5]
#   --batch N        effective batch [64]
#   --data DIR       IDX directory [/usr/share/datasets/fashion-mnist];
#                    missing: skipped
#   --no-overhead    skip the overhead measurements
#   --strict         exit 1 if a bar fails (else 0 unless a run fails)
set -eu

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

repeat=3
budgets="4M 8M 16M 64M"
exact_mb=8
epochs=1
train_limit=0
model=lenet5
batch=64
data=/usr/share/datasets/fashion-mnist
overhead_runs=1
strict=0
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --repeat) repeat=$2; shift ;;
    --budgets) budgets=$2; shift ;;
    --exact-mb) exact_mb=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --train-limit) train_limit=$2; shift ;;
    --model) model=$2; shift ;;
    --batch) batch=$2; shift ;;
    --data) data=$2; shift ;;
    --no-overhead) overhead_runs=0 ;;
    --strict) strict=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "budget_sweep.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
[ -n "$build" ] || { usage >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
fedl=$build/fedl
[ -x "$fedl" ] || { echo "budget_sweep.sh: $fedl not found; build first" >&2; exit 2; }
if [ ! -d "$data" ]; then
    echo "budget_sweep.sh: no data at $data (apt-get install dataset-fashion-mnist); skipped"
    exit 0
fi

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

have_time=0
[ -x /usr/bin/time ] && have_time=1

# FEDL_PLAN_PROCESS_OVERHEAD as built: "(8u << 20)" or a plain number.
overhead=$(sed -n 's/^#define FEDL_PLAN_PROCESS_OVERHEAD[[:space:]]*//p' "$here/../include/fedl/train.h" 2>/dev/null |
    awk '{ s = $0; sub(/\/\*.*/, "", s); gsub(/[()uUlL[:space:]]/, "", s)
           n = split(s, p, "<<"); v = p[1] + 0; if (n == 2) v = v * 2 ^ p[2]; if (v > 0) printf "%d", v }')
overhead_src="include/fedl/train.h"
[ -n "$overhead" ] || { overhead=8388608; overhead_src="assumed: train.h not found"; }

now_ns() {
    date +%s%N
}

# ------------------------------------------------------------ IDX files

# idx_path NAME -> DIR/NAME.gz if it exists, else DIR/NAME (the loader's rule)
idx_path() {
    if [ -f "$data/$1.gz" ]; then echo "$data/$1.gz"; else echo "$data/$1"; fi
}

idx_cat() {
    case "$1" in *.gz) gzip -dc "$1" ;; *) cat "$1" ;; esac
}

# idx_dims FILE -> "count d1 d2 ..." from the header (big-endian uint32s)
idx_dims() {
    # gzip complains when head closes the pipe early; the header is all we want.
    idx_cat "$1" 2>/dev/null | head -c 64 | od -An -v -tu1 | tr -s ' \n' '  ' |
        awk '{ nd = $4; for (i = 0; i < nd; i++) { k = 5 + 4 * i
                   printf "%s%d", (i ? " " : ""), (($k * 256 + $(k + 1)) * 256 + $(k + 2)) * 256 + $(k + 3) }
               print "" }'
}

# bytes the loader holds for an IDX image/label pair: count x (sample bytes + 1 label byte)
idx_set_bytes() {
    idx_dims "$1" | awk '{ s = 1; for (i = 2; i <= NF; i++) s *= $i; printf "%d\n", $1 * (s + 1) }'
}

# idx_head FILE N OUT: the first N items of FILE as an uncompressed IDX file
idx_head() {
    set -- "$1" "$2" "$3" "$(idx_dims "$1")"
    # shellcheck disable=SC2086
    set -- "$1" "$2" "$3" $4
    src=$1 n=$2 out=$3
    shift 4
    item=1
    for d in "$@"; do item=$((item * d)); done
    {
        idx_cat "$src" 2>/dev/null | head -c 4
        for v in "$n" "$@"; do
            # shellcheck disable=SC2059 # octal escapes: the bytes of v, big-endian
            printf "\\$(printf %03o $((v >> 24 & 255)))\\$(printf %03o $((v >> 16 & 255)))\\$(printf %03o $((v >> 8 & 255)))\\$(printf %03o $((v & 255)))"
        done
        idx_cat "$src" 2>/dev/null | tail -c +$((9 + 4 * $#)) | head -c $((n * item))
    } >"$out"
}

train_img=$(idx_path train-images-idx3-ubyte)
train_lbl=$(idx_path train-labels-idx1-ubyte)
test_img=$(idx_path t10k-images-idx3-ubyte)
test_lbl=$(idx_path t10k-labels-idx1-ubyte)
train_bytes=$(idx_set_bytes "$train_img")
test_bytes=$(idx_set_bytes "$test_img")

# ------------------------------------------------------------ fedl plan

plan_json=0
"$fedl" plan --help 2>&1 | grep -q -- '--json' && plan_json=1

# plan TAG MEMORY [DATA] -> "fits micro total dataset" in $tmp/plan.TAG, the
# reason (a sentence) in $tmp/plan.TAG.why. MEMORY "none": no --memory.
plan() {
    tag=$1 mem=$2 dir=${3:-$data}
    # The optimiser of the training runs: plan and train default to
    # different momentum, and momentum decides the optimiser state.
    set -- "$fedl" plan --model "$model" --batch "$batch" --optimizer sgd --momentum 0.9 --data "$dir"
    [ "$mem" = none ] || set -- "$@" --memory "$mem"
    [ "$mem" = none ] && set -- "$@" --memory 1G # the plan needs a budget; 1G: unconstrained
    prc=0
    if [ $plan_json -eq 1 ]; then
        "$@" --json >"$tmp/plan.out" 2>"$tmp/plan.err" || prc=$?
        # One key per line, first occurrence of each: fits, micro_batch, total, dataset.
        tr ',{}' '\n' <"$tmp/plan.out" | awk -v rc=$prc '
            function val(s) { sub(/^[^:]*:[[:space:]]*/, "", s); gsub(/[" ]/, "", s); return s }
            /"fits"/ && f == "" { f = val($0); if (f == "true") f = 1; if (f == "false") f = 0 }
            /"micro_batch"/ && m == "" { m = val($0) }
            /"total"/ && t == "" { t = val($0) }
            /"dataset"/ && d == "" { d = val($0) }
            END { if (f == "") f = (rc == 0); if (m == "" || t == "" || d == "") exit 1; print f, m, t, d }' \
            >"$tmp/plan.$tag" || plan_json=0
        sed -n 's/.*"reason"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp/plan.out" | head -n 1 >"$tmp/plan.$tag.why"
    fi
    if [ $plan_json -eq 0 ]; then
        "$@" >"$tmp/plan.out" 2>"$tmp/plan.err" || prc=$?
        # "  total   12167264  11.6 MiB", "  data set (not budgeted)  47100000 ...",
        # "effective batch 64, micro-batch 15: <reason>"
        awk -v rc=$prc '
            $1 == "total" && t == "" { t = $2 }
            /^ *data set/ && d == "" { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { d = $i; break } }
            /micro-batch [0-9]+/ && /^effective/ {
                s = $0; sub(/.*micro-batch /, "", s); m = s + 0
            }
            END { if (m == "") m = 0; if (t == "") t = 0; if (d == "") d = 0; print (rc == 0 ? 1 : 0), m, t, d }' \
            "$tmp/plan.out" >"$tmp/plan.$tag"
        { sed -n 's/^effective batch [0-9]*, micro-batch [0-9]*: //p' "$tmp/plan.out"
          sed -n 's/.*does not fit: //p' "$tmp/plan.err"; } | tail -n 1 >"$tmp/plan.$tag.why"
    fi
    # A failure that is not "does not fit" is a broken run, not a refusal.
    if [ $prc -ne 0 ] && ! grep -q 'not fit\|smallest budget' "$tmp/plan.err" "$tmp/plan.out"; then
        cat "$tmp/plan.err" >&2
        echo "budget_sweep.sh: fedl plan --memory $mem failed" >&2
        exit 1
    fi
}

# The smallest budget (KiB granularity) whose plan picks micro-batch >= N:
# bisection between the planned bytes at micro-batch N and twice that.
exact_budget() {
    want=$1
    plan probe 1G
    set -- "$fedl" plan --model "$model" --batch "$batch" --optimizer sgd --momentum 0.9 --data "$data" --memory 1G \
        --micro-batch "$want"
    lo=$("$@" 2>/dev/null | awk '$1 == "total" { printf "%d", $2 / 1024; exit }')
    [ -n "$lo" ] || return 1
    hi=$((lo * 2 + 64))
    plan probe "${hi}K"
    [ "$(cut -d' ' -f2 "$tmp/plan.probe")" -ge "$want" ] || return 1
    while [ $((hi - lo)) -gt 1 ]; do
        mid=$(((lo + hi) / 2))
        plan probe "${mid}K"
        if [ "$(cut -d' ' -f1 "$tmp/plan.probe")" = 1 ] && [ "$(cut -d' ' -f2 "$tmp/plan.probe")" -ge "$want" ]; then
            hi=$mid
        else
            lo=$mid
        fi
    done
    echo "${hi}K"
}

# ------------------------------------------------------------ fedl train

# train OUTFILE MEMORY [extra args] -> runs fedl train; prints "sps rss_mib micro wall_s
# cpu_s" ("nan" where missing) or fails with fedl's stderr in OUTFILE.err
train() {
    out=$1 mem=$2
    shift 2
    set -- "$fedl" train --model "$model" --data "$data" --epochs "$epochs" --batch "$batch" \
        --lr 0.05 --optimizer sgd --momentum 0.9 --seed 1 --quiet "$@"
    [ "$train_limit" -gt 0 ] && set -- "$@" --train-limit "$train_limit"
    [ "$mem" = none ] || set -- "$@" --memory "$mem"
    rm -f "$out.time"
    [ $have_time -eq 1 ] && set -- /usr/bin/time -f '%M %U %S' -o "$out.time" "$@"
    t0=$(now_ns)
    "$@" >"$out" 2>"$out.err" || return 1
    t1=$(now_ns)
    kib=nan cpu=nan
    if [ -s "$out.time" ]; then
        kib=$(tail -n 1 "$out.time" | awk '{ print $1 }')
        cpu=$(tail -n 1 "$out.time" | awk '{ printf "%.2f", $2 + $3 }')
    fi
    # summary: 1 epochs, 938 steps, 60,000 samples in 6.30 s (9520 samples/s); test accuracy
    #          0.8443; peak RSS 61.5 MiB
    # memory plan: micro-batch 15 is the largest that fits: ... | the whole batch of 64 fits: ...
    awk -v kib="$kib" -v cpu="$cpu" -v wall="$(((t1 - t0) / 1000))" -v batch="$batch" -v mem="$mem" '
        /samples\/s/ {
            for (i = 2; i <= NF; i++) if ($i ~ /^samples\/s/) { s = $(i - 1); sub(/^\(/, "", s); v = s + 0 }
            if (/^summary/ || sps == "") sps = v
        }
        /^summary/ { for (i = 1; i <= NF; i++) if ($i == "RSS") rss = $(i + 1) }
        /^memory plan/ && micro == "" {
            s = $0
            if (s ~ /micro-batch [0-9]+/) { sub(/.*micro-batch /, "", s); micro = s + 0 }
            else if (s ~ /batch of [0-9]+/) { sub(/.*batch of /, "", s); micro = s + 0 }
        }
        END {
            if (kib != "nan") rss = sprintf("%.1f", kib / 1024)
            if (rss == "") rss = "nan"
            if (sps == "") sps = "nan"
            if (micro == "") micro = (mem == "none") ? batch : "nan"
            printf "%s %s %s %.3f %s\n", sps, rss, micro, wall / 1e6, cpu
        }' "$out"
}

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "budget_sweep.sh: ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN) cores, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "$("$fedl" --version 2>&1 | head -n 1); $model, $epochs epoch(s) of $(basename "$data"), effective batch $batch, SGD lr 0.05 momentum 0.9, seed 1, 1 thread; $repeat rounds, order rotated each round"
echo "in memory, outside the budget: training set $train_bytes B, test set $test_bytes B (IDX headers); FEDL_PLAN_PROCESS_OVERHEAD $overhead B ($overhead_src)"
[ $plan_json -eq 1 ] && echo "plan: fedl plan --json" || echo "plan: fedl plan (text)"
[ "$train_limit" -gt 0 ] &&
    echo "NOTE: --train-limit $train_limit: smoke run; fedl train plans for $train_limit samples (a smaller shuffle order) while planned bytes below are for the full set, and the full set stays in memory"

# ------------------------------------------------------------ plans

configs=""
for b in $budgets; do
    plan "$b" "$b"
    configs="$configs $b"
done
if [ "$exact_mb" -gt 0 ]; then
    eb=$(exact_budget "$exact_mb") || eb=""
    if [ -n "$eb" ]; then
        echo "smallest budget for micro-batch $exact_mb (bisection with fedl plan): $eb"
        plan "mb=$exact_mb" "$eb"
        configs="$configs mb=$exact_mb"
        echo "$eb" >"$tmp/mem.mb=$exact_mb"
    else
        echo "NOTE: could not find the smallest budget for micro-batch $exact_mb; row skipped"
    fi
fi
plan none none
configs="$configs none"
for c in $configs; do
    [ -f "$tmp/mem.$c" ] || echo "$c" >"$tmp/mem.$c"
done

# Refused configurations run once, to check that fedl train refuses too.
runnable=""
for c in $configs; do
    if [ "$(cut -d' ' -f1 "$tmp/plan.$c")" = 1 ]; then
        runnable="$runnable $c"
    elif train "$tmp/refused" "$(cat "$tmp/mem.$c")" >/dev/null; then
        echo "NOTE: fedl plan refuses $c but fedl train ran" >&2
    else
        sed -n 's/.*refusing to start: //p' "$tmp/refused.err" | head -n 1 >"$tmp/train.$c.why"
    fi
done

# ------------------------------------------------------------ the sweep

: >"$tmp/rows"
r=1
while [ "$r" -le "$repeat" ]; do
    order=$(echo "$runnable" | awk -v r="$r" '{ for (i = 0; i < NF; i++) printf "%s ", $(((i + r - 1) % NF) + 1) }')
    for c in $order; do
        row=$(train "$tmp/run" "$(cat "$tmp/mem.$c")") || {
            cat "$tmp/run.err" >&2
            echo "budget_sweep.sh: fedl train ($c, round $r) failed" >&2
            exit 1
        }
        echo "$c $r $row" >>"$tmp/rows"
    done
    r=$((r + 1))
done

# ------------------------------------------------------------ table and bars

# One line per configuration: config mem fits plan_micro total dataset refused_reason
: >"$tmp/plans"
for c in $configs; do
    why=""
    [ -f "$tmp/train.$c.why" ] && why=$(cat "$tmp/train.$c.why")
    [ -n "$why" ] || why=$(cat "$tmp/plan.$c.why" 2>/dev/null || true)
    printf '%s\t%s\t%s\t%s\n' "$c" "$(cat "$tmp/mem.$c")" "$(cat "$tmp/plan.$c")" "$why" >>"$tmp/plans"
done

awk -v repeat="$repeat" -v trainb="$train_bytes" -v testb="$test_bytes" -v ovh="$overhead" \
    -v exact_mb="$exact_mb" -v strict="$strict" '
    function sort(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    }
    function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function bytes(s,    v, u) {  # "4M" -> bytes (K, M, G; optional i/B)
        v = s + 0; u = toupper(substr(s, length(v "") + 1, 1))
        return v * (u == "K" ? 1024 : u == "M" ? 1048576 : u == "G" ? 1073741824 : 1)
    }
    function verdict(ok) { if (!ok) fails++; return ok ? "PASS" : "FAIL" }
    FILENAME ~ /plans$/ {
        split($0, f, "\t"); split(f[3], p, " ")
        c = f[1]; n++; name[n] = c; mem[c] = f[2]; fits[c] = p[1]; pmicro[c] = p[2]
        total[c] = p[3]; dset[c] = p[4]; why[c] = f[4]
        next
    }
    {
        c = $1; k = ++runs[c]
        sps[c, k] = $3; rss[c, k] = $4; micro[c] = $5; wall[c, k] = $6; cpus[c, k] = $7
        if ($3 > best_sps[c]) best_sps[c] = $3
        list[c] = list[c] " " $3
        if (!(c in maxrss) || $4 > maxrss[c]) maxrss[c] = $4
        bysround[c, $2] = $3
    }
    END {
        MiB = 1048576
        for (i = 1; i <= n; i++) {
            c = name[i]
            if (runs[c] > 0) {
                for (k = 1; k <= runs[c]; k++) x[k] = sps[c, k]
                med[c] = median(x, runs[c]); lo[c] = x[1]; hi[c] = x[runs[c]]
                delete x
            }
        }
        base = med["none"]
        printf "\n| budget | micro-batch | planned MiB | samples/s | ratio to unconstrained | peak RSS MiB | RSS - dataset - planned (MiB) | ... - test set (MiB) |\n"
        printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) {
            c = name[i]
            label = (c == "none") ? "none (unconstrained)" : (c ~ /^mb=/) ? mem[c] " (smallest for micro-batch " substr(c, 4) ")" : c
            if (!fits[c]) {
                printf "| %s | refused: %s | | | | | | |\n", label, why[c]
                continue
            }
            if (micro[c] != "nan" && micro[c] != pmicro[c]) note = note sprintf("NOTE: %s: fedl train chose micro-batch %s, fedl plan %s\n", c, micro[c], pmicro[c])
            extra = maxrss[c] - (trainb + total[c]) / MiB
            printf "| %s | %s | %.2f | %.0f (%.0f..%.0f) | %.2f | %.1f | %.1f | %.1f |\n", label, micro[c], total[c] / MiB,
                med[c], lo[c], hi[c], (base > 0 ? med[c] / base : 0), maxrss[c], extra, extra - testb / MiB
        }
        printf "\nsamples/s: median (min..max) of %d runs, from the summary line of fedl train (training steps only);\n", repeat
        printf "peak RSS: the largest of the runs (/usr/bin/time %%M); dataset = the training set in memory (%.1f MiB, what the plan reports); test set %.1f MiB.\n", trainb / MiB, testb / MiB
        if (note != "") printf "%s", note
        printf "\nper-run samples/s (round order); ratio to none paired by round (median), and of the best runs\n"
        printf "(the least disturbed on a shared machine); wall-clock and CPU (user+sys) s of the whole command\n"
        printf "(data loading and evaluation included), medians:\n"
        for (i = 1; i <= n; i++) {
            c = name[i]; if (!fits[c]) continue
            k = 0
            for (r = 1; r <= repeat; r++) if (((c, r) in bysround) && (("none", r) in bysround)) y[++k] = bysround[c, r] / bysround["none", r]
            for (r = 1; r <= runs[c]; r++) { w[r] = wall[c, r]; u[r] = cpus[c, r] }
            printf "  %-10s%s   paired %.2f, best %.2f; wall %.2f s, CPU %.2f s\n", c, list[c], (k ? median(y, k) : 0),
                (best_sps["none"] > 0 ? best_sps[c] / best_sps["none"] : 0), median(w, runs[c]), median(u, runs[c])
            delete y; delete w; delete u
        }

        # Bar 1: the smallest swept budget whose plan picks micro-batch >= 8.
        printf "\n"
        best = ""
        for (i = 1; i <= n; i++) {
            c = name[i]
            if (c == "none" || c ~ /^mb=/ || !fits[c] || pmicro[c] < 8) continue
            if (best == "" || bytes(mem[c]) < bytes(mem[best])) best = c
        }
        if (best == "") printf "%s  throughput: no budget of the sweep fits micro-batch 8\n", verdict(0)
        else printf "%s  throughput at %s (smallest swept budget fitting micro-batch 8; it picks %s): %.0f samples/s = %.2f x unconstrained %.0f >= 0.60\n",
            verdict(med[best] / base >= 0.60), best, pmicro[best], med[best], med[best] / base, base
        c = "mb=" exact_mb
        if ((c in fits) && fits[c] && runs[c] > 0)
            printf "%s  (extra) throughput at %s, the smallest budget for micro-batch %s (picks %s): %.2f x unconstrained >= 0.60\n",
                verdict(med[c] / base >= 0.60), mem[c], exact_mb, pmicro[c], med[c] / base

        # Bar 2: peak RSS <= budget + data in memory (training and test
        # sets, which fedl train reports as outside the budget) +
        # FEDL_PLAN_PROCESS_OVERHEAD.
        for (i = 1; i <= n; i++) {
            c = name[i]
            if (c == "none" || !fits[c] || runs[c] == 0) continue
            lim = (bytes(mem[c]) + trainb + testb + ovh) / MiB
            printf "%s  RSS %-6s peak %.1f MiB <= budget %.1f + data %.1f + overhead %.1f = %.1f MiB (%+.1f)\n", verdict(maxrss[c] <= lim), c,
                maxrss[c], bytes(mem[c]) / MiB, (trainb + testb) / MiB, ovh / MiB, lim, lim - maxrss[c]
        }
        if (fails) printf "bars: some FAIL\n"; else printf "bars: all PASS\n"
        exit (strict && fails) ? 1 : 0
    }' "$tmp/plans" "$tmp/rows" || bars_rc=$?

# ------------------------------------------------------------ overhead

if [ $overhead_runs -eq 1 ]; then
    echo
    echo "What the RSS beyond the plan is made of (one run each):"
    mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
    if [ $have_time -eq 1 ]; then
        /usr/bin/time -f '%M' -o "$tmp/v.time" "$fedl" --version >/dev/null 2>&1 || true
        echo "  fedl --version (binary + shared libraries, nothing allocated): $(awk '{ printf "%.1f", $1 / 1024 }' "$tmp/v.time") MiB"
    fi
    # A 64-sample copy (train and test) of the data: the data sets and the
    # plan become negligible, what is left is the process itself.
    tiny=$tmp/tiny
    mkdir -p "$tiny"
    idx_head "$train_img" 64 "$tiny/train-images-idx3-ubyte"
    idx_head "$train_lbl" 64 "$tiny/train-labels-idx1-ubyte"
    idx_head "$test_img" 64 "$tiny/t10k-images-idx3-ubyte"
    idx_head "$test_lbl" 64 "$tiny/t10k-labels-idx1-ubyte"
    tiny_bytes=$(($(idx_set_bytes "$tiny/train-images-idx3-ubyte") + $(idx_set_bytes "$tiny/t10k-images-idx3-ubyte")))
    saved_data=$data saved_model=$model saved_limit=$train_limit
    data=$tiny train_limit=0
    for m in "flatten dense(10)" "$saved_model"; do
        model=$m
        plan tiny none "$tiny"
        if row=$(train "$tmp/tiny.run" none); then
            # shellcheck disable=SC2086 # split the row into its fields
            set -- $row
            ptotal=$(cut -d' ' -f3 "$tmp/plan.tiny")
            echo "  64 train + 64 test samples, model \"$m\", batch $batch: peak RSS $2 MiB, planned $(mib "$ptotal") MiB, data $(mib "$tiny_bytes") MiB; RSS - data - planned = $(awk -v r="$2" -v p="$ptotal" -v d="$tiny_bytes" 'BEGIN { printf "%.1f", r - (p + d) / 1048576 }') MiB"
        else
            echo "  64-sample run with \"$m\" failed: $(tail -n 1 "$tmp/tiny.run.err")"
        fi
    done
    data=$saved_data model=$saved_model train_limit=$saved_limit
    # A /proc snapshot of a full unconstrained run at its largest RSS:
    # file-backed pages (code, libraries) against anonymous ones (data sets,
    # planned heap, stacks, BLAS buffers, malloc slack).
    if [ -r /proc/self/status ]; then
        set -- "$fedl" train --model "$model" --data "$data" --epochs 1 --batch "$batch" --lr 0.05 --optimizer sgd --momentum 0.9 --seed 1 --quiet
        [ "$train_limit" -gt 0 ] && set -- "$@" --train-limit "$train_limit"
        "$@" >"$tmp/snap.out" 2>&1 &
        pid=$!
        best=0
        : >"$tmp/snap"
        while kill -0 "$pid" 2>/dev/null; do
            line=$(awk '/^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):/ { printf "%s %s ", $1, $2 }' "/proc/$pid/status" 2>/dev/null || true)
            rss=$(echo "$line" | awk '{ for (i = 1; i < NF; i += 2) if ($i == "VmRSS:") print $(i + 1) }')
            if [ -n "$rss" ] && [ "$rss" -gt "$best" ]; then
                # Resident KiB per mapped file at the largest RSS so far.
                awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anonymous mmaps: data sets, planned buffers, BLAS buffer]" : $6) }
                     /^Rss:/ { r[name] += $2 }
                     END { for (n in r) if (r[n] > 0) printf "%d %s\n", r[n], n }' "/proc/$pid/smaps" 2>/dev/null |
                    sort -rn >"$tmp/smaps.new" && mv "$tmp/smaps.new" "$tmp/smaps"
                echo "$line" >"$tmp/snap"
                best=$rss
            fi
            sleep 0.2 2>/dev/null || sleep 1
        done
        wait "$pid" || true
        awk -v trainb="$train_bytes" -v testb="$test_bytes" -v total="$(cut -d' ' -f3 "$tmp/plan.none")" '
            NF >= 8 { for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
                      best = v["VmRSS:"]; anon = v["RssAnon:"]; file = v["RssFile:"]; shm = v["RssShmem:"] }
            END {
                if (best == "") { print "  /proc snapshot: none taken"; exit }
                rest = anon / 1024 - (trainb + testb + total) / 1048576
                printf "  /proc snapshot of an unconstrained run at its largest VmRSS %.1f MiB: file-backed (code, libraries) %.1f MiB, shmem %.1f MiB, anonymous %.1f MiB\n", best / 1024, file / 1024, shm / 1024, anon / 1024
                printf "    anonymous = training set %.1f + test set %.1f + planned %.1f + the rest (BLAS buffers, stacks, malloc, libraries'"'"' data) %.1f MiB\n", trainb / 1048576, testb / 1048576, total / 1048576, rest
            }' "$tmp/snap"
        if [ -s "$tmp/smaps" ]; then
            echo "    resident KiB per mapping at that moment (code and data of each file; [heap], [stack] and other anonymous memory):"
            awk 'NR <= 14 { n = $0; sub(/^[0-9]+ /, "", n); sub(/.*\//, "", n); printf "      %8d  %s\n", $1, n }' "$tmp/smaps"
        fi
    fi
fi
exit "${bars_rc:-0}"
