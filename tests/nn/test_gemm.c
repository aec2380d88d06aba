/*
 * test_gemm.c - the GEMM the build runs (OpenBLAS or BLIS, with the
 * vector kernels they pick for this CPU: NEON on the Cortex-A53, SSE/AVX on
 * x86) against fedl's portable C kernel and both against a double-precision
 * reference: every transpose combination, sizes around the kernels' block
 * edges, padded leading dimensions, and alpha and beta, including beta 0
 * over a C full of NaNs (never read). Runs natively and, in cross builds,
 * under qemu-user, so each architecture's vector paths meet the portable
 * one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/nn.h"
#include "nn/gemm.h"

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
}

typedef struct shape {
    int m, n, k;
} shape;

/* op(X)[r, c] of a row-major X with leading dimension ld. */
static double at(const float *x, int ld, int trans, int r, int c)
{
    return trans ? (double)x[(size_t)c * ld + r] : (double)x[(size_t)r * ld + c];
}

/* Compare c (m, n; ldc) with the double reference of alpha op(A) op(B) +
 * beta c0; the bound grows with the sum of |terms|, as float rounding does. */
static void check(const char *who, const shape *s, int ta, int tb, float alpha, float beta,
                  const float *a, int lda, const float *b, int ldb, const float *c0, const float *c,
                  int ldc)
{
    for (int i = 0; i < s->m; i++)
        for (int j = 0; j < s->n; j++) {
            double sum = 0.0, mag = 0.0, want, got = (double)c[(size_t)i * ldc + j];
            for (int p = 0; p < s->k; p++) {
                double t = at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
                sum += t;
                mag += fabs(t);
            }
            want = (double)alpha * sum;
            if (beta != 0.0f) {
                want += (double)beta * (double)c0[(size_t)i * ldc + j];
                mag += fabs((double)beta * (double)c0[(size_t)i * ldc + j]);
            }
            if (!(fabs(got - want) <= 4e-6 * (fabs((double)alpha) * mag + 1.0) * (1 + s->k / 64))) {
                fail_msg("%s: m %d n %d k %d trans %d%d alpha %g beta %g: C[%d,%d] = %.9g, want "
                         "%.9g",
                         who, s->m, s->n, s->k, ta, tb, (double)alpha, (double)beta, i, j, got,
                         want);
            }
        }
}

static void run_case(const shape *s, int ta, int tb, float alpha, float beta, int pad)
{
    int rows_a = ta ? s->k : s->m, cols_a = ta ? s->m : s->k;
    int rows_b = tb ? s->n : s->k, cols_b = tb ? s->k : s->n;
    int lda = cols_a + pad, ldb = cols_b + pad, ldc = s->n + pad;
    size_t na = (size_t)rows_a * lda, nb = (size_t)rows_b * ldb, nc = (size_t)s->m * ldc;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c0 = malloc(nc * sizeof *c0), *c1 = malloc(nc * sizeof *c1),
          *c2 = malloc(nc * sizeof *c2);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c0);
    assert_non_null(c1);
    assert_non_null(c2);
    fill(a, na, 1u + (uint32_t)(s->m * 131 + s->k));
    fill(b, nb, 7u + (uint32_t)(s->n * 17 + s->k));
    fill(c0, nc, 99u);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++)
            c0[i] = NAN; /* beta 0: C is written, never read */
    memcpy(c1, c0, nc * sizeof *c0);
    memcpy(c2, c0, nc * sizeof *c0);
    fedl_sgemm(ta, tb, s->m, s->n, s->k, alpha, a, lda, b, ldb, beta, c1, ldc);
    fedl_sgemm_portable(ta, tb, s->m, s->n, s->k, alpha, a, lda, b, ldb, beta, c2, ldc);
    check(fedl_blas_backend(), s, ta, tb, alpha, beta, a, lda, b, ldb, c0, c1, ldc);
    check("portable", s, ta, tb, alpha, beta, a, lda, b, ldb, c0, c2, ldc);
    for (int i = 0; i < s->m; i++) /* the padding of C is left alone */
        for (int j = s->n; j < ldc; j++)
            assert_memory_equal(&c1[(size_t)i * ldc + j], &c0[(size_t)i * ldc + j], sizeof(float));
    free(a);
    free(b);
    free(c0);
    free(c1);
    free(c2);
}

static void test_the_built_gemm_and_the_portable_one_agree(void **state)
{
    /* around vector widths (4, 8, 16 floats) and block edges, and LeNet-5's
     * own (conv1: 6 x 784 x 25; conv2: 16 x 100 x 150; dense: 32 x 120 x 400) */
    static const shape shapes[] = {{1, 1, 1},      {1, 7, 3},     {3, 1, 5},    {4, 4, 4},
                                   {5, 9, 17},     {8, 8, 8},     {15, 16, 17}, {16, 33, 31},
                                   {31, 17, 64},   {64, 65, 63},  {6, 784, 25}, {16, 100, 150},
                                   {32, 120, 400}, {129, 5, 130}, {2, 300, 2},  {33, 1, 257}};
    static const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.25f};
    (void)state;
    fprintf(stderr, "GEMM under test: %s against the portable kernel\n", fedl_blas_backend());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (size_t x = 0; x < 2; x++)
                for (size_t y = 0; y < 3; y++)
                    run_case(&shapes[s], t & 1, t >> 1, alphas[x], betas[y], (int)(s % 3));
}

static void test_empty_sizes_touch_nothing(void **state)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {5, 6, 7, 8};
    (void)state;
    fedl_sgemm(0, 0, 0, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    fedl_sgemm(0, 0, 2, 0, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    assert_true(c[0] == 5 && c[3] == 8);
    fedl_sgemm_portable(0, 0, 2, 2, 0, 1.0f, a, 2, b, 2, 2.0f, c, 2); /* k 0: C = beta C */
    assert_true(c[0] == 10 && c[3] == 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_built_gemm_and_the_portable_one_agree),
        cmocka_unit_test(test_empty_sizes_touch_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
