/*
 * reassemble.c - chunks back into message bodies, in bounded memory: a
 * fixed table of transfers in progress, each a body buffer and a bitmap
 * of the chunks received, within a byte budget. A one-chunk message is
 * handed out from the chunk itself, without a copy.
 */
#include <stdio.h>
#include <string.h>

#include "fedl/fl_wire.h"

typedef struct transfer {
    int in_use;
    fedl_msg_type type;
    char sender[FEDL_WIRE_SENDER_MAX];
    char job[FEDL_WIRE_JOB_MAX];
    uint64_t round, sequence, body_length, chunk_size; /* chunk_size 0: not known yet */
    uint8_t sha256[FEDL_SHA256_BYTES];
    uint8_t signature[FEDL_WIRE_SIGNATURE_BYTES];
    int is_signed;
    uint32_t count, received;
    uint8_t *body; /* (body_length) */
    uint8_t *have; /* (count + 7) / 8 bits */
    uint64_t last_ms;
} transfer;

/* A message put back together lately: its late duplicate chunks are
 * duplicates, not the start of a new transfer. */
typedef struct completed {
    char sender[FEDL_WIRE_SENDER_MAX];
    fedl_msg_type type;
    uint64_t sequence;
} completed;

#define COMPLETED_RING 64

struct fedl_reassembler {
    fedl_allocator *alloc;
    completed done_ring[COMPLETED_RING];
    int done_next;
    size_t max_bytes, held;
    int max_transfers;
    transfer *transfers; /* (max_transfers) */
    uint8_t *done;       /* the body handed out last, freed at the next call */
    size_t done_length;
};

fedl_status fedl_reassembler_create(size_t max_bytes, int max_transfers, fedl_allocator *alloc,
                                    fedl_reassembler **out, fedl_error *err)
{
    fedl_reassembler *r;
    *out = NULL;
    if (max_transfers < 1 || max_bytes == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "reassembly: room for at least one transfer is needed");
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    r = fedl_mem_alloc(alloc, sizeof *r);
    if (r == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "reassembly: cannot allocate");
    memset(r, 0, sizeof *r);
    r->alloc = alloc;
    r->max_bytes = max_bytes;
    r->max_transfers = max_transfers;
    r->transfers = fedl_mem_alloc(alloc, (size_t)max_transfers * sizeof *r->transfers);
    if (r->transfers == NULL) {
        fedl_mem_free(alloc, r, sizeof *r);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "reassembly: cannot allocate %d transfers",
                              max_transfers);
    }
    memset(r->transfers, 0, (size_t)max_transfers * sizeof *r->transfers);
    *out = r;
    return FEDL_OK;
}

static size_t bitmap_bytes(uint32_t count)
{
    return ((size_t)count + 7) / 8;
}

static void release(fedl_reassembler *r, transfer *t)
{
    if (!t->in_use)
        return;
    if (t->body != NULL) {
        fedl_mem_free(r->alloc, t->body, (size_t)t->body_length);
        r->held -= (size_t)t->body_length;
    }
    fedl_mem_free(r->alloc, t->have, bitmap_bytes(t->count));
    memset(t, 0, sizeof *t);
}

static void release_done(fedl_reassembler *r)
{
    if (r->done != NULL) {
        fedl_mem_free(r->alloc, r->done, r->done_length);
        r->held -= r->done_length;
    }
    r->done = NULL;
    r->done_length = 0;
}

void fedl_reassembler_destroy(fedl_reassembler *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->max_transfers; i++)
        release(r, &r->transfers[i]);
    release_done(r);
    fedl_mem_free(r->alloc, r->transfers, (size_t)r->max_transfers * sizeof *r->transfers);
    fedl_mem_free(r->alloc, r, sizeof *r);
}

size_t fedl_reassembler_bytes(const fedl_reassembler *r)
{
    return r->held;
}

/* "update from dev-03 (sequence 9): 2 of 5 chunks missing, the first 3". */
static void describe_loss(const transfer *t, const char *why, char *out, size_t size)
{
    uint32_t first = 0;
    while (first < t->count && (t->have[first / 8] >> (first % 8) & 1))
        first++;
    snprintf(out, size,
             "%s from %s (sequence %llu) dropped: %u of %u chunks missing, the first %u; %s",
             fedl_msg_type_name(t->type), t->sender, (unsigned long long)t->sequence,
             (unsigned)(t->count - t->received), (unsigned)t->count, (unsigned)first, why);
}

int fedl_reassembler_expire(fedl_reassembler *r, uint64_t now_ms, uint64_t idle_ms)
{
    int dropped = 0;
    for (int i = 0; i < r->max_transfers; i++) {
        transfer *t = &r->transfers[i];
        if (t->in_use && t->last_ms + idle_ms < now_ms) {
            release(r, t);
            dropped++;
        }
    }
    return dropped;
}

/* The chunk agrees with the transfer it belongs to. */
static int same_message(const transfer *t, const fedl_wire_frame *f)
{
    return t->body_length == f->body_length && t->count == f->count && t->round == f->round &&
           t->is_signed == f->is_signed && strcmp(t->job, f->job) == 0 &&
           memcmp(t->sha256, f->body_sha256, sizeof t->sha256) == 0 &&
           memcmp(t->signature, f->signature, sizeof t->signature) == 0;
}

/* The chunk's place: every chunk but the last holds chunk_size bytes at
 * index x chunk_size; the last holds the rest. Learns chunk_size. */
static int place_ok(transfer *t, const fedl_wire_frame *f)
{
    uint64_t size = t->chunk_size;
    if (f->index + 1 < f->count) {
        if (size == 0)
            size = f->payload_length;
        if (f->payload_length != size || f->offset != (uint64_t)f->index * size)
            return 0;
    } else {
        if (size == 0) {
            if (f->offset % (f->count - 1) != 0)
                return 0;
            size = f->offset / (f->count - 1);
        }
        if (f->offset != (uint64_t)f->index * size || f->payload_length > size)
            return 0;
    }
    t->chunk_size = size;
    return 1;
}

/* A new transfer for f's message, after dropping an older one of the same
 * sender and type. */
static fedl_status open_transfer(fedl_reassembler *r, const fedl_wire_frame *f, transfer **out,
                                 fedl_reassembly *res, fedl_error *err)
{
    transfer *slot = NULL;
    for (int i = 0; i < r->max_transfers; i++) {
        transfer *t = &r->transfers[i];
        if (t->in_use && t->type == f->type && strcmp(t->sender, f->sender) == 0) {
            if (t->sequence > f->sequence)
                return fedl_error_set(err, FEDL_ERR_STATE,
                                      "%s from %s: sequence %llu is older than the one in "
                                      "progress (%llu)",
                                      fedl_msg_type_name(f->type), f->sender,
                                      (unsigned long long)f->sequence,
                                      (unsigned long long)t->sequence);
            describe_loss(t, "a newer message began", res->dropped, sizeof res->dropped);
            release(r, t);
        }
    }
    for (int i = 0; i < r->max_transfers && slot == NULL; i++)
        if (!r->transfers[i].in_use)
            slot = &r->transfers[i];
    if (slot == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "%s from %s: %d transfers are in progress already",
                              fedl_msg_type_name(f->type), f->sender, r->max_transfers);
    if (f->body_length > r->max_bytes - r->held)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "%s from %s: no room for %llu bytes (%zu of %zu held)",
                              fedl_msg_type_name(f->type), f->sender,
                              (unsigned long long)f->body_length, r->held, r->max_bytes);
    slot->body = fedl_mem_alloc(r->alloc, (size_t)f->body_length);
    slot->have = fedl_mem_alloc(r->alloc, bitmap_bytes(f->count));
    if (slot->body == NULL || slot->have == NULL) {
        fedl_mem_free(r->alloc, slot->body, (size_t)f->body_length);
        fedl_mem_free(r->alloc, slot->have, bitmap_bytes(f->count));
        slot->body = NULL;
        slot->have = NULL;
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s from %s: cannot allocate %llu bytes",
                              fedl_msg_type_name(f->type), f->sender,
                              (unsigned long long)f->body_length);
    }
    memset(slot->have, 0, bitmap_bytes(f->count));
    slot->in_use = 1;
    slot->type = f->type;
    memcpy(slot->sender, f->sender, sizeof slot->sender);
    memcpy(slot->job, f->job, sizeof slot->job);
    slot->round = f->round;
    slot->sequence = f->sequence;
    slot->body_length = f->body_length;
    slot->chunk_size = 0;
    memcpy(slot->sha256, f->body_sha256, sizeof slot->sha256);
    memcpy(slot->signature, f->signature, sizeof slot->signature);
    slot->is_signed = f->is_signed;
    slot->count = f->count;
    slot->received = 0;
    r->held += (size_t)f->body_length;
    *out = slot;
    return FEDL_OK;
}

static int completed_lately(const fedl_reassembler *r, const fedl_wire_frame *f)
{
    for (int i = 0; i < COMPLETED_RING; i++) {
        const completed *c = &r->done_ring[i];
        if (c->type == f->type && c->sequence == f->sequence && strcmp(c->sender, f->sender) == 0)
            return 1;
    }
    return 0;
}

static void remember_completed(fedl_reassembler *r, const transfer *t)
{
    completed *c = &r->done_ring[r->done_next];
    memcpy(c->sender, t->sender, sizeof c->sender);
    c->type = t->type;
    c->sequence = t->sequence;
    r->done_next = (r->done_next + 1) % COMPLETED_RING;
}

static transfer *find(fedl_reassembler *r, const fedl_wire_frame *f)
{
    for (int i = 0; i < r->max_transfers; i++) {
        transfer *t = &r->transfers[i];
        if (t->in_use && t->type == f->type && t->sequence == f->sequence &&
            strcmp(t->sender, f->sender) == 0)
            return t;
    }
    return NULL;
}

static fedl_status hash_mismatch(const fedl_wire_frame *f, fedl_error *err)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT,
                          "%s from %s (sequence %llu): the body does not match its SHA-256",
                          fedl_msg_type_name(f->type), f->sender, (unsigned long long)f->sequence);
}

fedl_status fedl_reassembler_add(fedl_reassembler *r, const fedl_wire_frame *f, uint64_t now_ms,
                                 fedl_reassembly *res, fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    transfer *t;
    fedl_status st;
    memset(res, 0, sizeof *res);
    release_done(r);
    if (f->count == 1) { /* the whole message in one chunk: no copy */
        fedl_sha256(f->payload_length > 0 ? f->payload : (const uint8_t *)"", f->payload_length,
                    digest);
        if (memcmp(digest, f->body_sha256, sizeof digest) != 0)
            return hash_mismatch(f, err);
        res->complete = 1;
        res->body = f->payload;
        res->body_length = f->payload_length;
        return FEDL_OK;
    }
    t = find(r, f);
    if (t == NULL && completed_lately(r, f)) {
        res->duplicate = 1; /* a chunk of a message already handed out */
        return FEDL_OK;
    }
    if (t == NULL) {
        st = open_transfer(r, f, &t, res, err);
        if (st != FEDL_OK)
            return st;
    } else if (!same_message(t, f)) {
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s from %s (sequence %llu): chunk %u disagrees with the chunks "
                              "before it (length, hash, count or signature)",
                              fedl_msg_type_name(f->type), f->sender,
                              (unsigned long long)f->sequence, (unsigned)f->index);
    }
    if (!place_ok(t, f))
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s from %s (sequence %llu): chunk %u at byte %llu is out of place",
                              fedl_msg_type_name(f->type), f->sender,
                              (unsigned long long)f->sequence, (unsigned)f->index,
                              (unsigned long long)f->offset);
    t->last_ms = now_ms;
    if (t->have[f->index / 8] >> (f->index % 8) & 1) {
        res->duplicate = 1;
        return FEDL_OK;
    }
    memcpy(t->body + f->offset, f->payload, f->payload_length);
    t->have[f->index / 8] |= (uint8_t)(1u << (f->index % 8));
    if (++t->received < t->count)
        return FEDL_OK;
    fedl_sha256(t->body, (size_t)t->body_length, digest);
    if (memcmp(digest, t->sha256, sizeof digest) != 0) {
        release(r, t);
        return hash_mismatch(f, err);
    }
    remember_completed(r, t);
    r->done = t->body;
    r->done_length = (size_t)t->body_length;
    t->body = NULL; /* now r->done's, still counted in held */
    t->body_length = 0;
    release(r, t);
    res->complete = 1;
    res->body = r->done;
    res->body_length = r->done_length;
    return FEDL_OK;
}
