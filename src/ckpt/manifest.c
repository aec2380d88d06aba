/* manifest.c - (placeholder) */
#include "fedl/ckpt.h"

/* STUB: generated placeholders, replaced by the real implementation. */
void fedl_manifest_init(fedl_manifest *m, fedl_allocator *alloc)
{
    (void)m;
    (void)alloc;
}

void fedl_manifest_free(fedl_manifest *m)
{
    (void)m;
}

fedl_status fedl_manifest_set(fedl_manifest *m, const char *name, uint64_t size,
                              const uint8_t sha256[FEDL_SHA256_BYTES], fedl_error *err)
{
    (void)m;
    (void)name;
    (void)size;
    (void)sha256;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_manifest_set: not implemented yet");
}

void fedl_manifest_remove(fedl_manifest *m, const char *name)
{
    (void)m;
    (void)name;
}

const fedl_manifest_entry *fedl_manifest_find(const fedl_manifest *m, const char *name)
{
    (void)m;
    (void)name;
    return NULL;
}

fedl_status fedl_manifest_parse(const char *text, size_t length, const char *name,
                                fedl_allocator *alloc, fedl_manifest *out, fedl_error *err)
{
    (void)text;
    (void)length;
    (void)name;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_manifest_parse: not implemented yet");
}

fedl_status fedl_manifest_format(const fedl_manifest *m, fedl_allocator *alloc, char **text,
                                 size_t *length, fedl_error *err)
{
    (void)m;
    (void)alloc;
    (void)text;
    (void)length;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_manifest_format: not implemented yet");
}

fedl_status fedl_manifest_read(const char *path, fedl_allocator *alloc, fedl_manifest *out,
                               fedl_error *err)
{
    (void)path;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_manifest_read: not implemented yet");
}

fedl_status fedl_manifest_write(const fedl_io *io, const char *path, const fedl_manifest *m,
                                fedl_error *err)
{
    (void)io;
    (void)path;
    (void)m;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_manifest_write: not implemented yet");
}

fedl_status fedl_manifest_build_dir(const char *dir, const char *skip_name, fedl_allocator *alloc,
                                    fedl_manifest *out, fedl_error *err)
{
    (void)dir;
    (void)skip_name;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_manifest_build_dir: not implemented yet");
}

fedl_status fedl_manifest_check_file(const fedl_manifest *m, const char *dir, const char *name,
                                     fedl_error *err)
{
    (void)m;
    (void)dir;
    (void)name;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_manifest_check_file: not implemented yet");
}

fedl_status fedl_manifest_verify_dir(const fedl_manifest *m, const char *dir, fedl_error *err)
{
    (void)m;
    (void)dir;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_manifest_verify_dir: not implemented yet");
}
