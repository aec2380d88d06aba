/*
 * gemm.c - fedl_sgemm: the CBLAS backend chosen at configure time, and a
 * portable C kernel for builds without a BLAS or where the BLAS cannot run.
 *
 * The portable kernel packs nothing; it orders the loops so that the
 * innermost one runs over contiguous memory of B and C (i-k-j), which the
 * compiler vectorises. It is correct for every transpose combination and
 * fast enough for the tiny matrices of an MCU-class model, but OpenBLAS is
 * 2.4-20x faster on the sizes of LeNet-5 (see docs/PERFORMANCE.md).
 *
 * Owns: the once-per-process choice between the BLAS and the portable
 * kernel. A BLAS maps a packing workspace on its first call from a thread,
 * and neither library fails that cleanly: OpenBLAS (0.3.21, Debian 12)
 * retries the failed mmap forever in blas_memory_alloc, so the process
 * hangs and burns a CPU; BLIS aborts (its allocation "returned NULL"). Under an
 * address-space limit (RLIMIT_AS, or RLIMIT_DATA, which counts private
 * writable mappings) that workspace may not fit even when training itself
 * does. So before the first BLAS call we map and unmap a block of the
 * workspace's size plus a margin; if the kernel refuses it, every GEMM of
 * the process runs on the portable kernel and a warning says why.
 */
#include <stddef.h>

#include "nn/gemm.h"
#include "fedl/nn.h"

#ifdef FEDL_HAVE_CBLAS
#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "fedl/core.h"
#include "fedl/mem.h"
#endif

#ifndef FEDL_BLAS_NAME
#define FEDL_BLAS_NAME "c"
#endif

#ifdef FEDL_HAVE_CBLAS
/*
 * Address space the BLAS maps on its first call, in bytes. OpenBLAS maps a
 * buffer of BUFFER_SIZE (+ up to two pages) for each call in progress at
 * once, pools the buffers and keeps them until exit; BUFFER_SIZE is fixed
 * when OpenBLAS is built and depends on the architecture and version.
 * Measured with `strace -f -e trace=mmap` on Debian 12's 0.3.21: 128 MiB
 * (32 << 22) on x86_64, 32 MiB on aarch64 (under qemu); its source gives
 * 16 MiB for 32-bit ARM. Other architectures get 128 MiB, the largest we
 * know of. BLIS (0.9, Debian 12, x86_64) grows the address space by 16.6
 * MiB on its first call (packing-block pools); 24 MiB leaves some room.
 * Newer OpenBLAS (PR #5303, mid-2025) gives up after some retries, but
 * then exits the process, which a library must not do either.
 *
 * OpenBLAS's worker threads (one fewer than OPENBLAS_NUM_THREADS, default
 * the number of CPUs) each map a buffer of the same size as soon as the
 * library is loaded, before main(). When that fails the worker spins in the
 * same endless loop and the process hangs at exit; nothing in this library
 * can prevent it, so under a tight RLIMIT_AS run with OPENBLAS_NUM_THREADS=1.
 */
#if defined(OPENBLAS_VERSION)
#if defined(__x86_64__)
#define BLAS_WORKSPACE_BYTES ((size_t)128 << 20)
#elif defined(__aarch64__)
#define BLAS_WORKSPACE_BYTES ((size_t)32 << 20)
#elif defined(__arm__)
#define BLAS_WORKSPACE_BYTES ((size_t)16 << 20)
#else
#define BLAS_WORKSPACE_BYTES ((size_t)128 << 20)
#endif
#else
#define BLAS_WORKSPACE_BYTES ((size_t)24 << 20)
#endif

/* Address space that must stay free after the BLAS has its workspace, for
 * what the process maps later (evaluation, checkpoint writing, zlib, thread
 * stacks), so that taking the BLAS does not starve the rest. */
#define BLAS_MARGIN_BYTES ((size_t)16 << 20)

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static int blas_in_use; /* 1: cblas_sgemm; 0: the portable kernel (written once) */

/* Why the probe failed: the limit that explains it, in figures, or errno. */
static void explain_refusal(int mmap_errno, char *text, size_t size)
{
    const uint64_t want = BLAS_WORKSPACE_BYTES + BLAS_MARGIN_BYTES;
    fedl_budget budget;
    fedl_error err;
    char limit[32], used[32], left[32];
    const fedl_budget_reading *r = &budget.reading;
    int detected = fedl_budget_detect(NULL, &budget, &err) == FEDL_OK;
    if (detected && r->rlimit_as != 0 && r->rlimit_as_headroom < want) {
        snprintf(text, size, "RLIMIT_AS %s - VmSize %s = %s free",
                 fedl_budget_format_bytes(r->rlimit_as, limit, sizeof limit),
                 fedl_budget_format_bytes(r->vm_size, used, sizeof used),
                 fedl_budget_format_bytes(r->rlimit_as_headroom, left, sizeof left));
    } else if (detected && r->rlimit_data != 0 && r->rlimit_data_headroom < want) {
        snprintf(text, size, "RLIMIT_DATA %s - VmData %s = %s free",
                 fedl_budget_format_bytes(r->rlimit_data, limit, sizeof limit),
                 fedl_budget_format_bytes(r->vm_data, used, sizeof used),
                 fedl_budget_format_bytes(r->rlimit_data_headroom, left, sizeof left));
    } else {
        snprintf(text, size, "mmap: %s", strerror(mmap_errno));
    }
}

/*
 * Run once per process, before the first BLAS call. The probe is mapped
 * like OpenBLAS maps its buffer (private, anonymous, writable, never
 * touched), so the kernel applies the same checks: RLIMIT_AS, RLIMIT_DATA
 * and, under vm.overcommit_memory=2, the commit limit. It costs no RAM.
 * On success a 1x1x1 GEMM makes the BLAS take its workspace at once, while
 * it is known to fit, rather than at some later call.
 */
static void blas_choose(void)
{
    size_t probe_bytes = BLAS_WORKSPACE_BYTES + BLAS_MARGIN_BYTES;
    void *probe =
        mmap(NULL, probe_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) {
        char why[160], need[32], margin[32];
        explain_refusal(errno, why, sizeof why);
        fedl_log(FEDL_LOG_WARN,
                 "GEMM: using the portable C kernel, not %s: %s maps %s of address space on its "
                 "first call and that plus a %s margin is not available (%s)",
                 FEDL_BLAS_NAME, FEDL_BLAS_NAME,
                 fedl_budget_format_bytes(BLAS_WORKSPACE_BYTES, need, sizeof need),
                 fedl_budget_format_bytes(BLAS_MARGIN_BYTES, margin, sizeof margin), why);
        blas_in_use = 0;
        return;
    }
    munmap(probe, probe_bytes);
    float a = 0.0f, b = 0.0f, c = 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c,
                1);
    blas_in_use = 1;
    fedl_log(FEDL_LOG_DEBUG, "GEMM: %s", FEDL_BLAS_NAME);
}
#endif

const char *fedl_blas_backend(void)
{
#ifdef FEDL_HAVE_CBLAS
    pthread_once(&blas_once, blas_choose);
    return blas_in_use ? FEDL_BLAS_NAME : "c";
#else
    return FEDL_BLAS_NAME;
#endif
}

int fedl_blas_threads(int n)
{
#if defined(FEDL_HAVE_CBLAS) && defined(FEDL_HAVE_OPENBLAS)
    int before;
    pthread_once(&blas_once, blas_choose);
    if (!blas_in_use)
        return 1;
    before = openblas_get_num_threads();
    if (n > 0 && n != before)
        openblas_set_num_threads(n);
    return before;
#else
    (void)n;
    return 1;
#endif
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
    pthread_once(&blas_once, blas_choose);
    if (blas_in_use) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                    ldc);
        return;
    }
#endif
    fedl_sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
