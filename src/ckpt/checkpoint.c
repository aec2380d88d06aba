/* checkpoint.c - (placeholder) */
#include "fedl/ckpt.h"

/* STUB: generated placeholders, replaced by the real implementation. */
fedl_status fedl_checkpoint_writer(const fedl_model *model, const fedl_train_state *state,
                                   fedl_allocator *alloc, fedl_container_writer **out,
                                   fedl_error *err)
{
    (void)model;
    (void)state;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_checkpoint_writer: not implemented yet");
}

fedl_status fedl_checkpoint_save(const fedl_io *io, const char *path, const fedl_model *model,
                                 const fedl_train_state *state, fedl_error *err)
{
    (void)io;
    (void)path;
    (void)model;
    (void)state;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_checkpoint_save: not implemented yet");
}

fedl_status fedl_checkpoint_decode(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_checkpoint **out, fedl_error *err)
{
    (void)bytes;
    (void)length;
    (void)name;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_checkpoint_decode: not implemented yet");
}

fedl_status fedl_checkpoint_load(const char *path, fedl_allocator *alloc, fedl_checkpoint **out,
                                 fedl_error *err)
{
    (void)path;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_checkpoint_load: not implemented yet");
}

void fedl_checkpoint_free(fedl_checkpoint *c)
{
    (void)c;
}

const fedl_meta_entry *fedl_checkpoint_meta(const fedl_checkpoint *c, const char *key)
{
    (void)c;
    (void)key;
    return NULL;
}
