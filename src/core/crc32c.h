/* crc32c.h - the CRC-32C implementations behind fedl_crc32c (internal). */
#ifndef FEDL_CORE_CRC32C_H
#define FEDL_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The table-driven version every platform has (tests compare against it). */
uint32_t fedl_crc32c_portable(uint32_t crc, const void *data, size_t length);
/* "sse4.2", "armv8-crc" or "portable": what fedl_crc32c runs on this CPU. */
const char *fedl_crc32c_implementation(void);

#endif
