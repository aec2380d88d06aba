/* test_support.c - helpers shared by the cmocka tests. */
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
