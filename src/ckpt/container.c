/* container.c - (placeholder) */
#include "fedl/ckpt.h"

/* STUB: generated placeholders, replaced by the real implementation. */
fedl_status fedl_container_parse(const uint8_t *bytes, size_t length, const char *name,
                                 fedl_container *out, fedl_error *err)
{
    (void)bytes;
    (void)length;
    (void)name;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_container_parse: not implemented yet");
}

const fedl_section *fedl_container_find(const fedl_container *c, const char *name)
{
    (void)c;
    (void)name;
    return NULL;
}

const uint8_t *fedl_container_data(const fedl_container *c, const fedl_section *s)
{
    (void)c;
    (void)s;
    return NULL;
}

fedl_status fedl_container_writer_create(fedl_file_kind kind, fedl_allocator *alloc,
                                         fedl_container_writer **out, fedl_error *err)
{
    (void)kind;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_container_writer_create: not implemented yet");
}

void fedl_container_writer_destroy(fedl_container_writer *w)
{
    (void)w;
}

fedl_status fedl_container_add(fedl_container_writer *w, const char *name, fedl_section_kind kind,
                               const void *data, size_t length, fedl_error *err)
{
    (void)w;
    (void)name;
    (void)kind;
    (void)data;
    (void)length;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_container_add: not implemented yet");
}

fedl_status fedl_container_add_copy(fedl_container_writer *w, const char *name,
                                    fedl_section_kind kind, const void *data, size_t length,
                                    fedl_error *err)
{
    (void)w;
    (void)name;
    (void)kind;
    (void)data;
    (void)length;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_container_add_copy: not implemented yet");
}

fedl_status fedl_container_add_floats(fedl_container_writer *w, const char *name,
                                      fedl_section_kind kind, const float *values, size_t count,
                                      fedl_error *err)
{
    (void)w;
    (void)name;
    (void)kind;
    (void)values;
    (void)count;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_container_add_floats: not implemented yet");
}

size_t fedl_container_size(const fedl_container_writer *w)
{
    (void)w;
    return 0;
}

fedl_status fedl_container_write(fedl_container_writer *w, const fedl_io *io, const char *path,
                                 fedl_error *err)
{
    (void)w;
    (void)io;
    (void)path;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_container_write: not implemented yet");
}

fedl_status fedl_container_to_buffer(fedl_container_writer *w, fedl_allocator *alloc,
                                     uint8_t **bytes, size_t *length, fedl_error *err)
{
    (void)w;
    (void)alloc;
    (void)bytes;
    (void)length;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_container_to_buffer: not implemented yet");
}
