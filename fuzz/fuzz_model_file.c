/* fuzz_model_file.c - libFuzzer target: fedl_model_deserialize on arbitrary
 * bytes must return a status, never crash or leak. Inputs are tried as
 * given and, for sectioned containers, "resealed" (section, table and
 * trailer CRCs and the stored length recomputed) so that the fuzzer gets
 * past the checksums to the "model" and "params" decoders. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/ckpt.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute every CRC (of a container, or of a version-1 file) and the
 * container's total length where the table allows it. */
static void reseal(uint8_t *b, size_t n)
{
    uint32_t count;
    size_t header_end;
    if (n >= 44 && memcmp(b, "FEDLMODL", 8) == 0) {
        wr32(b + n - 4, fedl_crc32c(0, b, n - 4));
        return;
    }
    if (n < 32)
        return;
    count = rd32(b + 20);
    if (count < 1 || count > FEDL_CONTAINER_MAX_SECTIONS)
        return;
    header_end = 32 + 48 * (size_t)count + 4;
    if (header_end + 8 > n)
        return;
    wr32(b + 24, (uint32_t)n); /* total length (u64) */
    wr32(b + 28, (uint32_t)((uint64_t)n >> 32));
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = b + 32 + 48 * (size_t)i;
        uint64_t offset = rd64(e + 24), length = rd64(e + 32);
        if (offset <= n - 8 && length <= n - 8 - offset)
            wr32(e + 40, fedl_crc32c(0, b + offset, (size_t)length));
    }
    wr32(b + header_end - 4, fedl_crc32c(0, b, header_end - 4));
    wr32(b + n - 4, fedl_crc32c(0, b, n - 8));
}

static void try_bytes(const uint8_t *data, size_t size, fedl_allocator *alloc)
{
    fedl_model *model = NULL;
    fedl_error err;
    if (fedl_model_deserialize(data, size, "fuzz", alloc, &model, &err) == FEDL_OK)
        fedl_model_destroy(model);
    if (alloc->stats.live_bytes != 0)
        abort(); /* leak */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_allocator alloc; /* capped: a spec for a huge model must fail with NOMEM */
    uint8_t *copy;
    fedl_allocator_init(&alloc, NULL, NULL);
    alloc.limit_bytes = 64u << 20;
    try_bytes(data, size, &alloc);
    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    reseal(copy, size);
    try_bytes(copy, size, &alloc);
    free(copy);
    return 0;
}
