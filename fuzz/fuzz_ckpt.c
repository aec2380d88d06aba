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

/* Recompute every CRC and the total length where the table allows it. */
static void reseal(uint8_t *b, size_t n)
{
    uint32_t count;
    size_t header_end;
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
    reseal(copy, size);
    try_bytes(copy, size, &alloc);
    free(copy);
    return 0;
}
