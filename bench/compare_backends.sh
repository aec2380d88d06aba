#!/bin/sh
# compare_backends.sh - build fedl with each GEMM backend and measure them.
#
#   bench/compare_backends.sh [options]
#
# Configures and builds the source tree three times (-DFEDL_BLAS=blis,
# openblas, c) into PREFIXblis, PREFIXopenblas and PREFIXc, then, on one
# thread (BLIS_NUM_THREADS=OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1):
#   1. runs gemm_bench for each build and prints GFLOP/s side by side (best
#      of the rounds), and
#   2. trains LeNet-5 and the MLP for one epoch of Fashion-MNIST with each
#      build (batch 32, SGD lr 0.05 momentum 0.9, seed 1) and prints
#      samples/s (median of the rounds), peak RSS and test accuracy.
# The builds run in rotating order within each round, so a noisy neighbour
# hurts all of them alike; quote the ratios.
#
# Options:
#   --prefix P         build directories are P{blis,openblas,c} [/tmp/b-]
#   --rounds N         rounds of measurements [3]
#   --blis-arch LIST   also run the BLIS build with BLIS_ARCH_TYPE set to each
#                      of these sub-configurations (e.g. "zen3 haswell"),
#                      reported as blis:NAME [none]
#   --no-build         reuse existing build directories
#   --no-gemm | --no-train   skip a part
#   --data DIR         [/usr/share/datasets/fashion-mnist]
set -eu

usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
}

prefix=/tmp/b-
rounds=3
blis_arch=""
do_build=1
do_gemm=1
do_train=1
data=/usr/share/datasets/fashion-mnist
while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) prefix=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --blis-arch) blis_arch=$2; shift ;;
    --no-build) do_build=0 ;;
    --no-gemm) do_gemm=0 ;;
    --no-train) do_train=0 ;;
    --data) data=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_backends.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

src=$(cd "$(dirname "$0")/.." && pwd)
backends="blis openblas c"
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")

if [ $do_build -eq 1 ]; then
    for b in $backends; do
        echo "== building $prefix$b (-DFEDL_BLAS=$b)" >&2
        cmake -S "$src" -B "$prefix$b" -DFEDL_BLAS="$b" -DCMAKE_BUILD_TYPE=Release \
            -DFEDL_BUILD_TESTS=OFF -DFEDL_BUILD_EXAMPLES=OFF >/dev/null
        cmake --build "$prefix$b" -j "$ncpu" --target fedl gemm_bench >/dev/null
    done
fi

export BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# Variants: "label build-dir BLIS_ARCH_TYPE-or-empty"
variants=""
for b in $backends; do
    variants="$variants$b $prefix$b -
"
    if [ "$b" = blis ]; then
        for a in $blis_arch; do
            variants="${variants}blis:$a $prefix$b $a
"
        done
    fi
done
nvar=$(printf '%s' "$variants" | grep -c .)

# run_variant LABEL DIR ARCH CMD... : run CMD from DIR with the variant's env
run_variant() {
    label=$1 dir=$2 arch=$3
    shift 3
    if [ "$arch" = - ]; then
        (cd "$dir" && "$@")
    else
        (cd "$dir" && BLIS_ARCH_TYPE=$arch "$@")
    fi
}

# rotated R : the variant lines, rotated by R
rotated() {
    printf '%s' "$variants" | awk -v r="$1" -v n="$nvar" '{ l[NR - 1] = $0 } END { for (i = 0; i < n; i++) print l[(i + r) % n] }'
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fedl GEMM backends: $cpu, $ncpu cores; $(date -u '+%Y-%m-%d %H:%M UTC'); $rounds rounds; 1 thread"
blis_cfg=$(cd "$prefix"blis 2>/dev/null && BLIS_ARCH_DEBUG=1 ./gemm_bench --square-only --min-time 0 --reps 1 --no-portable 2>&1 |
    sed -n "s/.*selecting sub-configuration '\([^']*\)'.*/\1/p" | head -n 1)
ob_core=$(cd "$prefix"openblas 2>/dev/null && OPENBLAS_VERBOSE=2 ./gemm_bench --square-only --min-time 0 --reps 1 --no-portable 2>&1 |
    sed -n 's/^Core: *//p' | head -n 1)
echo "BLIS sub-configuration selected at run time: ${blis_cfg:-?}; OpenBLAS core: ${ob_core:-?}"

if [ $do_gemm -eq 1 ]; then
    r=0
    while [ "$r" -lt "$rounds" ]; do
        rotated "$r" | while read -r label dir arch; do
            run_variant "$label" "$dir" "$arch" ./gemm_bench --csv --no-portable --reps 1 --min-time 0.2 |
                awk -F, -v l="$label" 'NR > 1 { printf "%s,%s,%s,%s,%s\n", l, $1, $5 "x" $6 "x" $7, $3 $4, $8 }'
        done >>"$tmp/gemm"
        r=$((r + 1))
    done
    echo
    echo "GEMM GFLOP/s (best of $rounds), single precision, 1 thread; m x n x k, tA tB"
    printf '%s' "$variants" | awk '{ print $1 }' >"$tmp/labels"
    awk -F, -v labels="$tmp/labels" '
        BEGIN { while ((getline l < labels) > 0) lab[++nl] = l }
        {
            key = $2
            if (!(key in seen)) { seen[key] = 1; order[++ns] = key; dim[key] = $3; tr[key] = $4 }
            if ($5 + 0 > best[$1, key]) best[$1, key] = $5 + 0
        }
        END {
            printf "%-28s %-15s %-3s", "shape", "m x n x k", "tt"
            for (i = 1; i <= nl; i++) printf " %10s", lab[i]
            printf " %14s\n", "openblas/blis"
            for (s = 1; s <= ns; s++) {
                k = order[s]
                printf "%-28s %-15s %-3s", k, dim[k], tr[k]
                for (i = 1; i <= nl; i++) printf " %10.2f", best[lab[i], k]
                printf " %13.2fx\n", best["openblas", k] / best["blis", k]
            }
        }' "$tmp/gemm"
fi

if [ $do_train -eq 1 ]; then
    for model in lenet5 mlp; do
        r=0
        while [ "$r" -lt "$rounds" ]; do
            rotated "$r" | while read -r label dir arch; do
                run_variant "$label" "$dir" "$arch" ./fedl train --model "$model" --data "$data" \
                    --epochs 1 --batch 32 --lr 0.05 --momentum 0.9 --seed 1 --quiet |
                    awk -v l="$label" -v m="$model" '/^summary:/ {
                        for (i = 1; i <= NF; i++) {
                            if ($i == "samples/s);") { sps = $(i - 1); sub(/^\(/, "", sps) }
                            if ($i == "accuracy") { acc = $(i + 1); sub(/;$/, "", acc) }
                            if ($i == "RSS") rss = $(i + 1)
                        }
                        printf "%s %s %s %s %s\n", m, l, sps, rss, acc
                    }'
            done >>"$tmp/train"
            r=$((r + 1))
        done
    done
    echo
    echo "fedl train, 1 epoch, batch 32: samples/s (median of $rounds), peak RSS MiB (max), test accuracy"
    printf '%s' "$variants" | awk '{ print $1 }' >"$tmp/labels"
    awk -v labels="$tmp/labels" '
        function median(s,    a, n, i, j, t) {
            n = split(s, a, " ")
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        BEGIN { while ((getline l < labels) > 0) lab[++nl] = l }
        {
            sps[$1, $2] = sps[$1, $2] " " $3; runs[$1, $2] = runs[$1, $2] " " $3
            if ($4 + 0 > rss[$1, $2]) rss[$1, $2] = $4 + 0
            acc[$1, $2] = $5
        }
        END {
            printf "%-7s %-12s %10s %10s %9s %9s   %s\n", "model", "backend", "samples/s", "RSS MiB", "test acc", "vs blis", "runs"
            split("lenet5 mlp", models, " ")
            for (mi = 1; mi <= 2; mi++) {
                m = models[mi]
                base = median(sps[m, "blis"])
                for (i = 1; i <= nl; i++) {
                    if (!((m, lab[i]) in sps)) continue
                    med = median(sps[m, lab[i]])
                    printf "%-7s %-12s %10.0f %10.1f %8.2f%% %8.2fx  %s\n", m, lab[i], med, rss[m, lab[i]], 100 * acc[m, lab[i]], med / base, runs[m, lab[i]]
                }
            }
        }' "$tmp/train"
fi
