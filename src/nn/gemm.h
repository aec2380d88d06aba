/*
 * gemm.h - single-precision matrix multiply, the one hot loop of fedl.
 *
 * Row-major C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C,
 * where op(X) is X or its transpose. The backend (BLIS, OpenBLAS through
 * CBLAS, or the portable blocked C kernel in gemm.c) is chosen when the
 * library is configured (cmake -DFEDL_BLAS=...). Once per process, before
 * the first BLAS call, gemm.c checks that the BLAS's workspace can be
 * mapped (an RLIMIT_AS or RLIMIT_DATA may forbid it, and the BLAS would then
 * hang or abort); if not, every call runs on the portable kernel, a warning
 * says why, and fedl_blas_backend() reports "c".
 */
#ifndef FEDL_NN_GEMM_H
#define FEDL_NN_GEMM_H

void fedl_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc);

/* The portable C implementation, always compiled (tests compare against it). */
void fedl_sgemm_portable(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
