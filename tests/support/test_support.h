/* test_support.h - helpers shared by the cmocka tests: a failing allocator,
 * temp directories, and float comparison. */
#ifndef FEDL_TEST_SUPPORT_H
#define FEDL_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/ckpt.h"
#include "fedl/data.h"
#include "fedl/mem.h"

/* An allocator hook that fails the fail_at-th allocation or growth (1-based;
 * 0 = never) and counts requests. */
typedef struct test_failing_alloc {
    uint64_t requests;
    uint64_t fail_at;
} test_failing_alloc;
void *test_failing_alloc_fn(void *ud, void *ptr, size_t old_size, size_t new_size);
/* An allocator hook whose every resize moves the block to a new address, at
 * an offset from 64-byte alignment that alternates between 8 and 40 (ud: an
 * unsigned counter), so that code keeping pointers into a resized block is
 * caught. */
void *test_moving_alloc_fn(void *ud, void *ptr, size_t old_size, size_t new_size);

/* Make a fresh temporary directory; returns its path in a static buffer
 * owned by the caller until the next call. */
const char *test_make_temp_dir(const char *tag);
/* Write bytes to path; returns 0 on success. */
int test_write_file(const char *path, const void *bytes, size_t length);
/* Largest |a - b| / max(1, |b|) over n values. */
double test_max_rel_diff(const float *a, const float *b, size_t n);

/* A small learnable data set: count samples of (1, 8, 8), 4 classes, each
 * class a bright quadrant plus noise, drawn from seed. Returns 0 on success;
 * free with fedl_dataset_free. */
int test_make_quadrant_dataset(fedl_dataset *ds, size_t count, uint64_t seed);

/* Path of the Fashion-MNIST directory, or NULL when not installed. */
const char *test_fashion_mnist_dir(void);

/* ------------------------------------------------------- fault injection */

/* An fedl_io over the real system calls that counts calls per operation and
 * can fail the Nth call of one operation (errno fail_errno), cut writes
 * short (1..max_chunk bytes, cycling), answer one write with EINTR, or
 * answer one write with 0. */
enum {
    TEST_OP_OPEN,
    TEST_OP_WRITE,
    TEST_OP_FSYNC,
    TEST_OP_DIR_FSYNC,
    TEST_OP_CLOSE,
    TEST_OP_RENAME,
    TEST_OP_UNLINK,
    TEST_OP_COUNT
};
extern const char *const test_op_names[TEST_OP_COUNT];

typedef struct test_fault_io {
    fedl_io io;
    long calls[TEST_OP_COUNT];
    int fail_op;      /* -1: none */
    long fail_at;     /* 1-based call of fail_op that fails */
    int fail_errno;   /* EIO, ENOSPC, ... */
    size_t max_chunk; /* > 0: short writes of 1..max_chunk bytes */
    size_t chunks;    /* writes cut so far */
    long eintr_at;    /* write call answered with EINTR (0 = never) */
    long zero_at;     /* write call answered with 0 (0 = never) */
} test_fault_io;

void test_fault_io_init(test_fault_io *f);

#endif
