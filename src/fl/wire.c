/*
 * wire.c - chunks of federated messages: the encoder that cuts a message
 * into signed, checksummed chunks and the parser that checks one chunk.
 * Layout (all little-endian; docs/PROTOCOL.md):
 *
 *   0   4   magic "FDLM"
 *   4   1   version (1)
 *   5   1   type (fedl_msg_type)
 *   6   2   flags: 1 = signed
 *   8   32  job, NUL-padded
 *   40  64  sender, NUL-padded
 *   104 8   round
 *   112 8   sequence
 *   120 8   body length B
 *   128 32  SHA-256 of the body
 *   160 64  Ed25519 signature of bytes [0, 160) (zero when unsigned)
 *   224 4   chunk index i
 *   228 4   chunk count n
 *   232 8   offset of this chunk's payload in the body
 *   240 4   payload length P
 *   244 4   CRC-32C of bytes [0, 244) and then of the payload
 *   248 P   payload
 */
#include <sodium.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/le.h"
#include "fedl/fl_wire.h"
#include "fl/names.h"

#define MAGIC "FDLM"
#define SIGNED_BYTES 160
#define FLAG_SIGNED 1u

const char *fedl_msg_type_name(fedl_msg_type type)
{
    switch (type) {
    case FEDL_MSG_TASK:
        return "task";
    case FEDL_MSG_UPDATE:
        return "update";
    case FEDL_MSG_STATUS:
        return "status";
    case FEDL_MSG_CONTROL:
        return "control";
    case FEDL_MSG_PARTIAL:
        return "partial";
    }
    return "unknown";
}

/* libsodium's one-time set-up (idempotent, thread-safe). */
static int sodium_ready(void)
{
    return sodium_init() >= 0;
}

fedl_status fedl_sign_keypair_generate(fedl_sign_keypair *kp, fedl_error *err)
{
    if (!sodium_ready())
        return fedl_error_set(err, FEDL_ERR_IO, "keygen: libsodium cannot start");
    if (crypto_sign_keypair(kp->public_key, kp->secret_key) != 0)
        return fedl_error_set(err, FEDL_ERR_IO, "keygen: libsodium refused to make a key pair");
    return FEDL_OK;
}

/* A job or sender name (names.h), NUL-terminated within max bytes. */
static int name_ok(const char *s, size_t max)
{
    return s != NULL && fedl_name_ok(s, strnlen(s, max), max);
}

static int type_ok(unsigned type)
{
    return type >= FEDL_MSG_TASK && type <= FEDL_MSG_PARTIAL;
}

fedl_status fedl_wire_encoder_init(fedl_wire_encoder *e, const fedl_wire_message *m,
                                   size_t chunk_bytes, const uint8_t *secret_key, fedl_error *err)
{
    uint8_t *h = e->header;
    uint64_t count;
    memset(e, 0, sizeof *e);
    if (!type_ok((unsigned)m->type))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: unknown message type %d",
                              (int)m->type);
    if (!name_ok(m->job, FEDL_WIRE_JOB_MAX) || !name_ok(m->sender, FEDL_WIRE_SENDER_MAX))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "wire: job and sender are 1-31 and 1-63 bytes of letters, digits, "
                              "'-', '_' and '.'");
    if (chunk_bytes < FEDL_WIRE_CHUNK_MIN || chunk_bytes > UINT32_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: chunks of %zu bytes (%d or more)",
                              chunk_bytes, FEDL_WIRE_CHUNK_MIN);
    if (m->body_length > 0 && m->body == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: no body");
    e->body = m->body;
    e->body_length = m->body_length;
    e->chunk_payload = chunk_bytes - FEDL_WIRE_HEADER_BYTES;
    count = m->body_length == 0 ? 1 : (m->body_length + e->chunk_payload - 1) / e->chunk_payload;
    if (count > UINT32_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: %zu bytes are too many chunks",
                              m->body_length);
    e->count = (uint32_t)count;
    memcpy(h, MAGIC, 4);
    h[4] = FEDL_WIRE_VERSION;
    h[5] = (uint8_t)m->type;
    h[6] = secret_key != NULL ? FLAG_SIGNED : 0;
    memcpy(h + 8, m->job, strlen(m->job));
    memcpy(h + 40, m->sender, strlen(m->sender));
    fedl_put_u64(h + 104, m->round);
    fedl_put_u64(h + 112, m->sequence);
    fedl_put_u64(h + 120, m->body_length);
    fedl_sha256(m->body_length > 0 ? m->body : (const uint8_t *)"", m->body_length, h + 128);
    if (secret_key != NULL &&
        (!sodium_ready() ||
         crypto_sign_detached(h + SIGNED_BYTES, NULL, h, SIGNED_BYTES, secret_key) != 0))
        return fedl_error_set(err, FEDL_ERR_IO, "wire: libsodium could not sign");
    fedl_put_u32(h + 228, e->count);
    return FEDL_OK;
}

fedl_status fedl_wire_encode_chunk(const fedl_wire_encoder *e, uint32_t index, uint8_t *out,
                                   size_t capacity, size_t *length, fedl_error *err)
{
    uint64_t offset = (uint64_t)index * e->chunk_payload;
    size_t payload;
    uint32_t crc;
    if (index >= e->count)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: chunk %u of %u", (unsigned)index,
                              (unsigned)e->count);
    payload = (size_t)(e->body_length - offset < e->chunk_payload ? e->body_length - offset
                                                                  : e->chunk_payload);
    if (capacity < FEDL_WIRE_HEADER_BYTES + payload)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "wire: %zu bytes for a chunk of %zu",
                              capacity, FEDL_WIRE_HEADER_BYTES + payload);
    memcpy(out, e->header, FEDL_WIRE_HEADER_BYTES);
    fedl_put_u32(out + 224, index);
    fedl_put_u64(out + 232, offset);
    fedl_put_u32(out + 240, (uint32_t)payload);
    if (payload > 0)
        memcpy(out + FEDL_WIRE_HEADER_BYTES, e->body + offset, payload);
    crc = fedl_crc32c(0, out, 244);
    crc = fedl_crc32c(crc, out + FEDL_WIRE_HEADER_BYTES, payload);
    fedl_put_u32(out + 244, crc);
    *length = FEDL_WIRE_HEADER_BYTES + payload;
    return FEDL_OK;
}

/* A NUL-padded name field of `size` bytes into out; 0 if malformed. */
static int get_name(const uint8_t *field, size_t size, char *out)
{
    size_t n = strnlen((const char *)field, size);
    if (n >= size)
        return 0;
    for (size_t i = n; i < size; i++)
        if (field[i] != 0)
            return 0;
    memcpy(out, field, n);
    out[n] = '\0';
    return name_ok(out, size);
}

static fedl_status bad(fedl_error *err, size_t at, const char *what)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT, "message: byte %zu: %s", at, what);
}

fedl_status fedl_wire_parse(const uint8_t *b, size_t length, size_t max_body, fedl_wire_frame *f,
                            fedl_error *err)
{
    uint32_t flags, crc;
    memset(f, 0, sizeof *f);
    if (length < FEDL_WIRE_HEADER_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "message: %zu bytes, shorter than the %d-byte header", length,
                              FEDL_WIRE_HEADER_BYTES);
    if (memcmp(b, MAGIC, 4) != 0)
        return bad(err, 0, "not a fedl message (magic)");
    if (b[4] != FEDL_WIRE_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "message: byte 4: version %u, this fedl speaks %d", (unsigned)b[4],
                              FEDL_WIRE_VERSION);
    if (!type_ok(b[5]))
        return bad(err, 5, "unknown message type");
    flags = (uint32_t)b[6] | (uint32_t)b[7] << 8;
    if ((flags & ~FLAG_SIGNED) != 0)
        return bad(err, 6, "unknown flags");
    if (!get_name(b + 8, FEDL_WIRE_JOB_MAX, f->job))
        return bad(err, 8, "bad job name");
    if (!get_name(b + 40, FEDL_WIRE_SENDER_MAX, f->sender))
        return bad(err, 40, "bad sender name");
    f->type = (fedl_msg_type)b[5];
    f->is_signed = (flags & FLAG_SIGNED) != 0;
    f->round = fedl_get_u64(b + 104);
    f->sequence = fedl_get_u64(b + 112);
    f->body_length = fedl_get_u64(b + 120);
    memcpy(f->body_sha256, b + 128, FEDL_SHA256_BYTES);
    f->signed_bytes = b;
    f->signature = b + SIGNED_BYTES;
    f->index = fedl_get_u32(b + 224);
    f->count = fedl_get_u32(b + 228);
    f->offset = fedl_get_u64(b + 232);
    f->payload_length = fedl_get_u32(b + 240);
    if (f->body_length > max_body)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "message: byte 120: a body of %llu bytes, over the cap of %zu",
                              (unsigned long long)f->body_length, max_body);
    if (f->count == 0 || f->index >= f->count ||
        f->count > (f->body_length > 0 ? f->body_length : 1))
        return bad(err, 224, "chunk index and count do not fit the body");
    if (f->offset > f->body_length || f->payload_length > f->body_length - f->offset ||
        (f->payload_length == 0 && f->body_length > 0))
        return bad(err, 232, "the chunk lies outside the body");
    if ((f->index + 1 == f->count) != (f->offset + f->payload_length == f->body_length) ||
        (f->index == 0) != (f->offset == 0))
        return bad(err, 224, "the chunk's place and its index disagree");
    if (length != FEDL_WIRE_HEADER_BYTES + f->payload_length)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "message: %zu bytes, the header says %zu",
                              length, FEDL_WIRE_HEADER_BYTES + f->payload_length);
    if (!f->is_signed)
        for (int i = 0; i < FEDL_WIRE_SIGNATURE_BYTES; i++)
            if (f->signature[i] != 0)
                return bad(err, 160, "a signature on an unsigned message");
    crc = fedl_crc32c(0, b, 244);
    crc = fedl_crc32c(crc, b + FEDL_WIRE_HEADER_BYTES, f->payload_length);
    if (crc != fedl_get_u32(b + 244))
        return bad(err, 244, "CRC-32C mismatch (damaged in transit)");
    f->payload = b + FEDL_WIRE_HEADER_BYTES;
    return FEDL_OK;
}

fedl_status fedl_wire_verify(const fedl_wire_frame *f, const uint8_t *public_key, fedl_error *err)
{
    if (!f->is_signed)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s from %s: unsigned",
                              fedl_msg_type_name(f->type), f->sender);
    if (!sodium_ready())
        return fedl_error_set(err, FEDL_ERR_IO, "wire: libsodium cannot start");
    if (crypto_sign_verify_detached(f->signature, f->signed_bytes, SIGNED_BYTES, public_key) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s from %s: bad signature (not signed by the expected key)",
                              fedl_msg_type_name(f->type), f->sender);
    return FEDL_OK;
}
