/*
 * gemm.c - fedl_sgemm: the CBLAS backend chosen at configure time, and a
 * portable C kernel for builds without a BLAS.
 *
 * The portable kernel packs nothing; it orders the loops so that the
 * innermost one runs over contiguous memory of B and C (i-k-j), which the
 * compiler vectorises. It is correct for every transpose combination and
 * fast enough for the tiny matrices of an MCU-class model, but OpenBLAS is
 * 2.4-20x faster on the sizes of LeNet-5 (see docs/PERFORMANCE.md).
 */
#include <stddef.h>

#include "nn/gemm.h"
#include "fedl/nn.h"

#ifdef FEDL_HAVE_CBLAS
#include <cblas.h>
#endif

#ifndef FEDL_BLAS_NAME
#define FEDL_BLAS_NAME "c"
#endif

const char *fedl_blas_backend(void)
{
    return FEDL_BLAS_NAME;
}

static void scale_c(int m, int n, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < n; j++)
                row[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (int j = 0; j < n; j++)
                row[j] *= beta;
        }
    }
}

void fedl_sgemm_portable(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    scale_c(m, n, beta, c, ldc);
    if (alpha == 0.0f || k == 0)
        return;
    if (!trans_b) {
        /* C[i, :] += alpha * A(i, p) * B[p, :] */
        for (int i = 0; i < m; i++) {
            float *crow = c + (size_t)i * ldc;
            for (int p = 0; p < k; p++) {
                float aip = alpha * (trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
                const float *brow = b + (size_t)p * ldb;
                if (aip == 0.0f)
                    continue;
                for (int j = 0; j < n; j++)
                    crow[j] += aip * brow[j];
            }
        }
    } else {
        /* C[i, j] += alpha * dot(A(i, :), B[j, :]) */
        for (int i = 0; i < m; i++) {
            float *crow = c + (size_t)i * ldc;
            for (int j = 0; j < n; j++) {
                const float *brow = b + (size_t)j * ldb;
                float sum = 0.0f;
                if (trans_a) {
                    for (int p = 0; p < k; p++)
                        sum += a[(size_t)p * lda + i] * brow[p];
                } else {
                    const float *arow = a + (size_t)i * lda;
                    for (int p = 0; p < k; p++)
                        sum += arow[p] * brow[p];
                }
                crow[j] += alpha * sum;
            }
        }
    }
}

void fedl_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
#ifdef FEDL_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    fedl_sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}
