/* ckpt_dir.c - (placeholder) */
#include "fedl/ckpt.h"

/* STUB: generated placeholders, replaced by the real implementation. */
fedl_ckpt_dir_options fedl_ckpt_dir_defaults(void)
{
    fedl_ckpt_dir_options o = {3, NULL, 1};
    return o;
}

fedl_status fedl_ckpt_dir_open(const char *path, const fedl_ckpt_dir_options *options,
                               fedl_allocator *alloc, fedl_ckpt_dir **out, fedl_error *err)
{
    (void)path;
    (void)options;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_ckpt_dir_open: not implemented yet");
}

void fedl_ckpt_dir_close(fedl_ckpt_dir *d)
{
    (void)d;
}

int fedl_ckpt_dir_count(const fedl_ckpt_dir *d)
{
    (void)d;
    return 0;
}

uint64_t fedl_ckpt_dir_generation(const fedl_ckpt_dir *d, int index)
{
    (void)d;
    (void)index;
    return 0;
}

const char *fedl_ckpt_dir_path(const fedl_ckpt_dir *d, int index)
{
    (void)d;
    (void)index;
    return NULL;
}

fedl_status fedl_ckpt_dir_verify(const fedl_ckpt_dir *d, int index, fedl_error *err)
{
    (void)d;
    (void)index;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_ckpt_dir_verify: not implemented yet");
}

fedl_status fedl_ckpt_dir_save(fedl_ckpt_dir *d, fedl_container_writer *w, uint64_t *generation,
                               fedl_error *err)
{
    (void)d;
    (void)w;
    (void)generation;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_ckpt_dir_save: not implemented yet");
}

int fedl_ckpt_dir_newest_valid(const fedl_ckpt_dir *d, fedl_error *first_damage)
{
    (void)d;
    (void)first_damage;
    return 0;
}
