/*
 * fuzz_idx.c - libFuzzer target for the IDX parser (fedl_idx_parse) and,
 * through an in-memory file, the streaming reader with its gzip path
 * (fedl_idx_read). For inputs that are not gzip the two must agree: same
 * status, and on success the same dimensions and payload.
 *
 *     cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DFEDL_FUZZ=ON ...
 *     cmake --build build-fuzz --target fuzz_idx
 *     build-fuzz/fuzz_idx -max_total_time=60 fuzz/corpus/idx
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fedl/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memory_file = -1;
static char memory_path[64];

/* Put the input in an in-memory file; returns its path or NULL. */
static const char *as_file(const uint8_t *data, size_t size)
{
    size_t done = 0;
    if (memory_file < 0) {
        memory_file = memfd_create("fuzz_idx", 0);
        if (memory_file < 0)
            return NULL;
        snprintf(memory_path, sizeof memory_path, "/proc/self/fd/%d", memory_file);
    }
    if (ftruncate(memory_file, 0) != 0)
        return NULL;
    while (done < size) {
        ssize_t n = pwrite(memory_file, data + done, size - done, (off_t)done);
        if (n <= 0)
            return NULL;
        done += (size_t)n;
    }
    return memory_path;
}

static void check_result(fedl_status status, const fedl_idx *idx, const fedl_allocator *a,
                         const fedl_error *err)
{
    static const fedl_idx zero;
    if (status != FEDL_OK) {
        /* Failure: out zeroed, nothing allocated, a message. */
        if (memcmp(idx, &zero, sizeof zero) != 0 || a->stats.live_bytes != 0 ||
            err->message[0] == '\0')
            abort();
        return;
    }
    {
        size_t product = 1;
        if (idx->ndim < 1 || idx->ndim > FEDL_IDX_MAX_DIMS || idx->data == NULL)
            abort();
        for (int i = 0; i < idx->ndim; i++)
            product *= idx->dims[i];
        if (product != idx->size || a->stats.live_bytes != idx->size)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_allocator a, b;
    fedl_idx parsed, read;
    fedl_error err;
    fedl_status parse_status, read_status;
    const char *path;
    int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;

    fedl_allocator_init(&a, NULL, NULL);
    a.limit_bytes = (size_t)64 << 20; /* what a small device could spare */
    fedl_error_clear(&err);
    parse_status = fedl_idx_parse(data, size, "fuzz", &a, &parsed, &err);
    check_result(parse_status, &parsed, &a, &err);

    path = as_file(data, size);
    if (path != NULL) {
        fedl_allocator_init(&b, NULL, NULL);
        b.limit_bytes = (size_t)64 << 20;
        fedl_error_clear(&err);
        read_status = fedl_idx_read(path, &b, &read, &err);
        check_result(read_status, &read, &b, &err);
        if (!gzip) {
            if (read_status != parse_status)
                abort();
            if (read_status == FEDL_OK &&
                (read.ndim != parsed.ndim ||
                 memcmp(read.dims, parsed.dims, sizeof read.dims) != 0 ||
                 read.size != parsed.size || memcmp(read.data, parsed.data, read.size) != 0))
                abort();
        }
        fedl_idx_free(&read, &b);
        if (b.stats.live_bytes != 0)
            abort();
    }
    fedl_idx_free(&parsed, &a);
    if (a.stats.live_bytes != 0)
        abort();
    return 0;
}
