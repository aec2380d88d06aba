/*
 * internal.h - helpers shared by the files of src/ckpt: little-endian
 * integers on disk (core/le.h), and the container writer's allocator.
 */
#ifndef FEDL_CKPT_INTERNAL_H
#define FEDL_CKPT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "core/le.h"
#include "fedl/ckpt.h"

/* For tests and fuzzers: recompute the stored total length, every section
 * CRC, the table CRC and the trailer CRC of a (possibly mutated) container
 * image, wherever its table allows, so that checks past the checksums are
 * reached. Does nothing to an image too short or with a bad section count. */
static inline void fedl_container_reseal(uint8_t *b, size_t n)
{
    uint32_t count;
    size_t header_end;
    if (n < 32)
        return;
    count = fedl_get_u32(b + 20);
    if (count < 1 || count > FEDL_CONTAINER_MAX_SECTIONS)
        return;
    header_end = 32 + 48 * (size_t)count + 4;
    if (header_end + 8 > n)
        return;
    fedl_put_u64(b + 24, (uint64_t)n);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = b + 32 + 48 * (size_t)i;
        uint64_t offset = fedl_get_u64(e + 24), length = fedl_get_u64(e + 32);
        if (offset <= n - 8 && length <= n - 8 - offset)
            fedl_put_u32(e + 40, fedl_crc32c(0, b + offset, (size_t)length));
    }
    fedl_put_u32(b + header_end - 4, fedl_crc32c(0, b, header_end - 4));
    fedl_put_u32(b + n - 4, fedl_crc32c(0, b, n - 8));
}

/* The allocator a writer was created with (model_file.c adds sections to a
 * writer it did not create). */
fedl_allocator *fedl_container_writer_allocator(const fedl_container_writer *w);

/* The writer pid of a durable write's temp file name "<name>.tmp.<pid>"
 * (<pid> decimal digits of a valid pid, > 0), or 0 when name is not one.
 * durable.c removes such files; manifest.c leaves them out of manifests. */
long fedl_durable_temp_pid(const char *name);

#endif
