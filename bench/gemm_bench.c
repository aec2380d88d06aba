/*
 * gemm_bench.c - single-precision GEMM throughput of fedl_sgemm (the backend
 * chosen at configure time: BLIS, OpenBLAS or the portable C kernel) and of
 * fedl_sgemm_portable, on square matrices and on the shapes LeNet-5 trains
 * with at batch 32.
 *
 *   BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/gemm_bench
 *   build/gemm_bench --min-time 0.5 --reps 5 --no-portable
 *
 * Each figure is the best of --reps timed runs; a run repeats the call until
 * --min-time seconds have passed. GFLOP/s counts 2*m*n*k per call. The max
 * relative difference between the backend and the portable kernel is printed
 * as a sanity check. Single-threaded: set the *_NUM_THREADS variables to 1
 * (bench/train_vs_torch.sh does).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedl/nn.h"
#include "nn/gemm.h"

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

typedef struct {
    const char *name;
    int ta, tb, m, n, k;
    float beta;
} shape;

/* LeNet-5 at batch 32. conv: y (oc, B*n) = W (oc, kdim) . col (kdim, B*n);
 * dW (oc, kdim) += dy (oc, B*n) . col^T; dcol (kdim, B*n) = W^T . dy.
 * dense: y (B, out) = x (B, in) . W^T (out, in); dW (out, in) += dy^T . x;
 * dx (B, in) = dy (B, out) . W (out, in). fedl's conv layer currently
 * processes the batch in chunks of <= 256 Ki floats of workspace (10
 * samples for conv1, 15 for conv2): those shapes are listed too. */
static const shape shapes[] = {
    {"square 64", 0, 0, 64, 64, 64, 0.0f},
    {"square 128", 0, 0, 128, 128, 128, 0.0f},
    {"square 256", 0, 0, 256, 256, 256, 0.0f},
    {"square 512", 0, 0, 512, 512, 512, 0.0f},
    {"square 1024", 0, 0, 1024, 1024, 1024, 0.0f},
    {"conv1 fwd W.col B=32", 0, 0, 6, 784 * 32, 25, 0.0f},
    {"conv1 fwd W.col B=10 (chunk)", 0, 0, 6, 784 * 10, 25, 0.0f},
    {"conv1 dW dy.col^T B=32", 0, 1, 6, 25, 784 * 32, 1.0f},
    {"conv2 fwd W.col B=32", 0, 0, 16, 100 * 32, 150, 0.0f},
    {"conv2 fwd W.col B=15 (chunk)", 0, 0, 16, 100 * 15, 150, 0.0f},
    {"conv2 dW dy.col^T B=32", 0, 1, 16, 150, 100 * 32, 1.0f},
    {"conv2 dcol W^T.dy B=32", 1, 0, 150, 100 * 32, 16, 0.0f},
    {"fc1 fwd x.W^T 400->120", 0, 1, 32, 120, 400, 1.0f},
    {"fc1 dW dy^T.x", 1, 0, 120, 400, 32, 1.0f},
    {"fc1 dx dy.W", 0, 0, 32, 400, 120, 0.0f},
    {"fc2 fwd x.W^T 120->84", 0, 1, 32, 84, 120, 1.0f},
    {"fc2 dW dy^T.x", 1, 0, 84, 120, 32, 1.0f},
    {"fc3 fwd x.W^T 84->10", 0, 1, 32, 10, 84, 1.0f},
    {"mlp fc1 fwd x.W^T 784->256", 0, 1, 32, 256, 784, 1.0f},
    {"mlp fc1 dW dy^T.x", 1, 0, 256, 784, 32, 1.0f},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *random_floats(size_t count, uint32_t *state)
{
    float *p = malloc(count * sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++) {
        *state = *state * 1664525u + 1013904223u;
        p[i] = (float)(*state >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Leading dimensions of row-major op(A) (m, k) and op(B) (k, n). */
static void dims(const shape *s, int *lda, int *ldb, size_t *asize, size_t *bsize)
{
    *lda = s->ta ? s->m : s->k;
    *ldb = s->tb ? s->k : s->n;
    *asize = (size_t)s->m * (size_t)s->k;
    *bsize = (size_t)s->k * (size_t)s->n;
}

/* Best GFLOP/s over reps runs of at least min_time seconds each. */
static double bench(gemm_fn fn, const shape *s, const float *a, const float *b, float *c,
                    double min_time, int reps)
{
    int lda, ldb;
    size_t asize, bsize;
    double flops = 2.0 * s->m * s->n * s->k, best = 0.0;
    dims(s, &lda, &ldb, &asize, &bsize);
    fn(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, s->beta, c, s->n); /* warm up */
    for (int r = 0; r < reps; r++) {
        long calls = 0;
        double t0 = now_s(), t;
        do {
            fn(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, s->beta, c, s->n);
            calls++;
            t = now_s() - t0;
        } while (t < min_time);
        double gflops = flops * (double)calls / t / 1e9;
        if (gflops > best)
            best = gflops;
    }
    return best;
}

static double max_rel_diff(const shape *s, const float *a, const float *b, float *c1, float *c2)
{
    int lda, ldb;
    size_t asize, bsize, csize = (size_t)s->m * (size_t)s->n;
    double maxabs = 0.0, maxdiff = 0.0;
    dims(s, &lda, &ldb, &asize, &bsize);
    memset(c1, 0, csize * sizeof(float));
    memset(c2, 0, csize * sizeof(float));
    fedl_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c1, s->n);
    fedl_sgemm_portable(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c2, s->n);
    for (size_t i = 0; i < csize; i++) {
        double d = fabs((double)c1[i] - (double)c2[i]);
        if (fabs((double)c2[i]) > maxabs)
            maxabs = fabs((double)c2[i]);
        if (d > maxdiff)
            maxdiff = d;
    }
    return maxabs > 0.0 ? maxdiff / maxabs : maxdiff;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gemm_bench [--min-time SECONDS] [--reps N] [--no-portable] [--square-only]\n"
               "                  [--lenet-only] [--csv]\n"
               "GFLOP/s of fedl_sgemm (configured backend) and fedl_sgemm_portable.\n"
               "Set BLIS_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 for one "
               "thread.\n");
}

int main(int argc, char **argv)
{
    double min_time = 0.2;
    int reps = 3, portable = 1, square = 1, lenet = 1, csv = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-portable") == 0) {
            portable = 0;
        } else if (strcmp(argv[i], "--square-only") == 0) {
            lenet = 0;
        } else if (strcmp(argv[i], "--csv") == 0) {
            csv = 1;
        } else if (strcmp(argv[i], "--lenet-only") == 0) {
            square = 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;

    if (csv) {
        printf("shape,backend,ta,tb,m,n,k,backend_gflops,portable_gflops,rel_diff\n");
    } else {
        printf("gemm_bench: backend %s, best of %d runs of >= %.2f s, GFLOP/s = 2mnk/t\n",
               fedl_blas_backend(), reps, min_time);
        printf("%-30s %2s %2s %5s %6s %6s  %9s  %9s  %8s  %8s\n", "shape", "tA", "tB", "m", "n",
               "k", "backend", "portable", "ratio", "rel-diff");
    }
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        int is_square = strncmp(s->name, "square", 6) == 0;
        if ((is_square && !square) || (!is_square && !lenet))
            continue;
        int lda, ldb;
        size_t asize, bsize, csize = (size_t)s->m * (size_t)s->n;
        uint32_t state = 12345u + (uint32_t)i;
        dims(s, &lda, &ldb, &asize, &bsize);
        float *a = random_floats(asize, &state);
        float *b = random_floats(bsize, &state);
        float *c = random_floats(csize, &state);
        float *c2 = random_floats(csize, &state);
        double diff = max_rel_diff(s, a, b, c, c2);
        double g_backend = bench(fedl_sgemm, s, a, b, c, min_time, reps);
        double g_portable = portable ? bench(fedl_sgemm_portable, s, a, b, c, min_time, reps) : 0.0;
        if (csv) {
            printf("%s,%s,%d,%d,%d,%d,%d,%.3f,%.3f,%.2e\n", s->name, fedl_blas_backend(), s->ta,
                   s->tb, s->m, s->n, s->k, g_backend, g_portable, diff);
        } else {
            printf("%-30s %2d %2d %5d %6d %6d  %9.2f", s->name, s->ta, s->tb, s->m, s->n, s->k,
                   g_backend);
            if (portable)
                printf("  %9.2f  %7.2fx", g_portable, g_backend / g_portable);
            else
                printf("  %9s  %8s", "-", "-");
            printf("  %8.1e\n", diff);
        }
        fflush(stdout);
        free(a);
        free(b);
        free(c);
        free(c2);
    }
    return 0;
}
