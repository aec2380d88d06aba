/* test_support.h - helpers shared by the cmocka tests: a failing allocator,
 * temp directories, and float comparison. */
#ifndef FEDL_TEST_SUPPORT_H
#define FEDL_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/mem.h"

/* An allocator hook that fails the fail_at-th allocation or growth (1-based;
 * 0 = never) and counts requests. */
typedef struct test_failing_alloc {
    uint64_t requests;
    uint64_t fail_at;
} test_failing_alloc;
void *test_failing_alloc_fn(void *ud, void *ptr, size_t old_size, size_t new_size);

/* Make a fresh temporary directory; returns its path in a static buffer
 * owned by the caller until the next call. */
const char *test_make_temp_dir(const char *tag);
/* Write bytes to path; returns 0 on success. */
int test_write_file(const char *path, const void *bytes, size_t length);
/* Largest |a - b| / max(1, |b|) over n values. */
double test_max_rel_diff(const float *a, const float *b, size_t n);

/* Path of the Fashion-MNIST directory, or NULL when not installed. */
const char *test_fashion_mnist_dir(void);

#endif
