/* fuzz_model_file.c - libFuzzer target: fedl_model_deserialize on arbitrary
 * bytes must return a status, never crash or leak. Inputs are tried as
 * given and, for sectioned containers, "resealed" (section, table and
 * trailer CRCs and the stored length recomputed) so that the fuzzer gets
 * past the checksums to the "model" and "params" decoders. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

/* Recompute every CRC (of a container, or of a version-1 file) and the
 * container's total length where the table allows it. */
static void reseal(uint8_t *b, size_t n)
{
    if (n >= 44 && memcmp(b, "FEDLMODL", 8) == 0) {
        fedl_put_u32(b + n - 4, fedl_crc32c(0, b, n - 4));
        return;
    }
    fedl_container_reseal(b, n);
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
