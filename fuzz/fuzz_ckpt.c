/* fuzz_ckpt.c - libFuzzer target for the container and checkpoint readers:
 * fedl_container_parse and fedl_checkpoint_decode on arbitrary bytes must
 * return a status, never crash, read out of bounds or leak. Each input is
 * tried twice: as given (the CRC checks reject almost everything), and
 * "resealed" (section, table and trailer CRCs and the stored length
 * recomputed) so that the fuzzer reaches the section decoders. Whatever
 * decodes must be accepted by the writer again and decode to the same
 * state. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

static void check_state_equal(const fedl_train_state *a, const fedl_train_state *b)
{
    if (a->global_step != b->global_step || a->position != b->position ||
        a->epoch_samples != b->epoch_samples || a->optim_state_count != b->optim_state_count ||
        a->meta_count != b->meta_count || strcmp(a->config_text, b->config_text) != 0 ||
        memcmp(&a->epoch_loss_sum, &b->epoch_loss_sum, sizeof(double)) != 0 ||
        (a->optim_state_count > 0 &&
         memcmp(a->optim_state, b->optim_state, a->optim_state_count * sizeof(float)) != 0))
        abort();
    for (int i = 0; i < a->meta_count; i++)
        if (strcmp(a->meta[i].key, b->meta[i].key) != 0 || a->meta[i].length != b->meta[i].length ||
            memcmp(a->meta[i].value, b->meta[i].value, a->meta[i].length) != 0)
            abort();
}

/* What decodes must encode again and decode to the same state. */
static void check_reencodes(const fedl_checkpoint *ck, fedl_allocator *alloc)
{
    fedl_container_writer *w;
    fedl_checkpoint *again;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    fedl_status st = fedl_checkpoint_writer(ck->model, &ck->state, alloc, &w, &err);
    if (st == FEDL_ERR_NOMEM)
        return;
    if (st != FEDL_OK)
        abort(); /* the writer refuses what the reader accepted */
    st = fedl_container_to_buffer(w, alloc, &bytes, &length, &err);
    fedl_container_writer_destroy(w);
    if (st != FEDL_OK)
        return;
    st = fedl_checkpoint_decode(bytes, length, "again", alloc, &again, &err);
    if (st == FEDL_OK) {
        check_state_equal(&ck->state, &again->state);
        fedl_checkpoint_free(again);
    } else if (st != FEDL_ERR_NOMEM) {
        abort();
    }
    fedl_mem_free(alloc, bytes, length);
}

static void try_bytes(const uint8_t *data, size_t size, fedl_allocator *alloc)
{
    fedl_container c;
    fedl_checkpoint *ck = NULL;
    fedl_error err;
    if (fedl_container_parse(data, size, "fuzz", &c, &err) == FEDL_OK) {
        for (int i = 0; i < c.section_count; i++)
            if (fedl_container_find(&c, c.sections[i].name) != &c.sections[i])
                abort();
    }
    if (fedl_checkpoint_decode(data, size, "fuzz", alloc, &ck, &err) == FEDL_OK) {
        check_reencodes(ck, alloc);
        fedl_checkpoint_free(ck);
    }
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
    fedl_container_reseal(copy, size);
    try_bytes(copy, size, &alloc);
    free(copy);
    return 0;
}
