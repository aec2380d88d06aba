/* test_support.c - helpers shared by the cmocka tests: a failing allocator,
 * temp directories, float comparison, and a fault-injecting fedl_io. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/test_support.h"

void *test_failing_alloc_fn(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    test_failing_alloc *state = ud;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    if (ptr == NULL || new_size > old_size) {
        state->requests++;
        if (state->fail_at != 0 && state->requests == state->fail_at)
            return NULL;
    }
    return realloc(ptr, new_size);
}

/* The raw pointer sits in the 8 bytes before the one returned. */
void *test_moving_alloc_fn(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    unsigned *turn = ud;
    unsigned char *raw, *p;
    size_t shift;
    if (new_size == 0) {
        if (ptr != NULL)
            free(*(void **)((unsigned char *)ptr - sizeof(void *)));
        return NULL;
    }
    shift = (*turn)++ % 2 ? 40 : 8;
    raw = aligned_alloc(64, (new_size + 64 + 63) / 64 * 64);
    if (raw == NULL)
        return NULL;
    p = raw + shift;
    *(void **)(p - sizeof(void *)) = raw;
    if (ptr != NULL) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        free(*(void **)((unsigned char *)ptr - sizeof(void *)));
    }
    return p;
}

const char *test_make_temp_dir(const char *tag)
{
    static char path[256];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fedl-%s-XXXXXX", base ? base : "/tmp", tag);
    if (mkdtemp(path) == NULL)
        return NULL;
    return path;
}

int test_write_file(const char *path, const void *bytes, size_t length)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    if (length > 0 && fwrite(bytes, 1, length, f) != length) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

double test_max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double denom = fabs((double)b[i]) > 1.0 ? fabs((double)b[i]) : 1.0;
        double d = fabs((double)a[i] - (double)b[i]) / denom;
        if (d > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

const char *test_fashion_mnist_dir(void)
{
    static const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    char path[512];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    return stat(path, &st) == 0 ? dir : NULL;
}

/* ------------------------------------------------------- fault injection */

const char *const test_op_names[TEST_OP_COUNT] = {"open",  "write",  "fsync", "dir_fsync",
                                                  "close", "rename", "unlink"};

static int injected(test_fault_io *f, int op)
{
    f->calls[op]++;
    if (f->fail_op == op && f->calls[op] == f->fail_at) {
        errno = f->fail_errno;
        return 1;
    }
    return 0;
}

static int fault_open(void *ud, const char *path, int flags, int mode)
{
    return injected(ud, TEST_OP_OPEN) ? -1 : open(path, flags, (mode_t)mode);
}

static ssize_t fault_write(void *ud, int fd, const void *buf, size_t length)
{
    test_fault_io *f = ud;
    if (injected(f, TEST_OP_WRITE))
        return -1;
    if (f->calls[TEST_OP_WRITE] == f->eintr_at) {
        errno = EINTR;
        return -1;
    }
    if (f->calls[TEST_OP_WRITE] == f->zero_at)
        return 0;
    if (f->max_chunk > 0) {
        size_t k = f->chunks++ % f->max_chunk + 1;
        if (length > k)
            length = k;
    }
    return write(fd, buf, length);
}

static int fault_fsync(void *ud, int fd)
{
    return injected(ud, TEST_OP_FSYNC) ? -1 : fsync(fd);
}

static int fault_dir_fsync(void *ud, int fd)
{
    return injected(ud, TEST_OP_DIR_FSYNC) ? -1 : fsync(fd);
}

static int fault_close(void *ud, int fd)
{
    if (injected(ud, TEST_OP_CLOSE)) {
        int e = errno;
        close(fd); /* Linux closes the descriptor even when close reports an error */
        errno = e;
        return -1;
    }
    return close(fd);
}

static int fault_rename(void *ud, const char *from, const char *to)
{
    return injected(ud, TEST_OP_RENAME) ? -1 : rename(from, to);
}

static int fault_unlink(void *ud, const char *path)
{
    return injected(ud, TEST_OP_UNLINK) ? -1 : unlink(path);
}

void test_fault_io_init(test_fault_io *f)
{
    memset(f, 0, sizeof *f);
    f->io.ud = f;
    f->io.open = fault_open;
    f->io.write = fault_write;
    f->io.fsync = fault_fsync;
    f->io.dir_fsync = fault_dir_fsync;
    f->io.close = fault_close;
    f->io.rename = fault_rename;
    f->io.unlink = fault_unlink;
    f->fail_op = -1;
}

int test_make_quadrant_dataset(fedl_dataset *ds, size_t count, uint64_t seed)
{
    fedl_rng rng;
    memset(ds, 0, sizeof *ds);
    ds->alloc = fedl_allocator_default();
    ds->count = count;
    ds->shape = (fedl_shape){1, 8, 8};
    ds->sample_bytes = 64;
    ds->pixels = fedl_mem_alloc(ds->alloc, count * 64);
    ds->labels = fedl_mem_alloc(ds->alloc, count);
    if (ds->pixels == NULL || ds->labels == NULL) {
        fedl_dataset_free(ds);
        return -1;
    }
    ds->classes = 4;
    ds->scale = 1.0f / 255.0f;
    fedl_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < count; i++) {
        uint8_t label = (uint8_t)fedl_rng_below(&rng, 4);
        ds->labels[i] = label;
        for (int p = 0; p < 64; p++) { /* (8, 8) */
            int quadrant = (p / 8 >= 4) * 2 + (p % 8 >= 4);
            ds->pixels[i * 64 + (size_t)p] =
                (uint8_t)((quadrant == label ? 160 : 0) + fedl_rng_below(&rng, 90));
        }
    }
    return 0;
}
