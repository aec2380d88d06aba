/*
 * fedl/ckpt.h - durable files: the one function that writes them, and model
 * files (spec + weights, versioned and checksummed; docs/FORMAT.md).
 *
 * fedl_durable_write() is the only way fedl writes a file that must survive
 * a crash: a temp file created with O_EXCL in the target's directory, write,
 * fsync, rename over the target, fsync the directory. A failed fsync is final
 * for that attempt and reported; the old file, if any, is left untouched.
 */
#ifndef FEDL_CKPT_H
#define FEDL_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/mem.h"
#include "fedl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

fedl_status fedl_durable_write(const char *path, const void *bytes, size_t length, fedl_error *err);

/* Serialise a model (spec, input shape, parameters) into a buffer taken from
 * alloc; *bytes is freed by the caller with fedl_mem_free(alloc, *bytes, *length). */
fedl_status fedl_model_serialize(const fedl_model *model, fedl_allocator *alloc, uint8_t **bytes,
                                 size_t *length, fedl_error *err);
/* Rebuild a model from a serialised image; every length and the checksum are
 * checked before use. name is used in messages. */
fedl_status fedl_model_deserialize(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_model **out, fedl_error *err);

fedl_status fedl_model_save(const fedl_model *model, const char *path, fedl_error *err);
fedl_status fedl_model_load(const char *path, fedl_allocator *alloc, fedl_model **out,
                            fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
