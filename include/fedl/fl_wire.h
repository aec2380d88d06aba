/*
 * fedl/fl_wire.h - federated messages as bytes on a network (part of the
 * fl module; fedl/fl.h includes it). A message is a type, a job, a sender,
 * a round, a sequence number and a body; on the wire it travels as one or
 * more chunks, each small enough for a broker's payload limit, each with
 * a versioned header, a CRC-32C, and the message's SHA-256 and Ed25519
 * signature, so that a chunk is checked before its bytes are kept and a
 * body is used only once every chunk arrived and the whole hashes right.
 * The layout is in docs/PROTOCOL.md. Nothing here does I/O.
 */
#ifndef FEDL_FL_WIRE_H
#define FEDL_FL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FEDL_WIRE_VERSION 1
#define FEDL_WIRE_HEADER_BYTES 248
#define FEDL_WIRE_JOB_MAX 32    /* bytes with the NUL */
#define FEDL_WIRE_SENDER_MAX 64 /* bytes with the NUL (= FEDL_CLIENT_ID_MAX) */
#define FEDL_WIRE_SIGNATURE_BYTES 64
#define FEDL_WIRE_PUBLIC_KEY_BYTES 32
#define FEDL_WIRE_SECRET_KEY_BYTES 64
#define FEDL_WIRE_CHUNK_DEFAULT (128u << 10) /* bytes of one chunk, header included */
#define FEDL_WIRE_CHUNK_MIN (FEDL_WIRE_HEADER_BYTES + 64)
#define FEDL_WIRE_BODY_MAX_DEFAULT (64u << 20) /* the hard cap on a message body */

typedef enum fedl_msg_type {
    FEDL_MSG_TASK = 1,    /* coordinator -> clients: a round's task */
    FEDL_MSG_UPDATE = 2,  /* client -> coordinator: its update */
    FEDL_MSG_STATUS = 3,  /* client -> coordinator: online, telemetry, offline (last will) */
    FEDL_MSG_CONTROL = 4, /* coordinator -> clients: the run finished or failed */
    FEDL_MSG_PARTIAL = 5  /* aggregator -> coordinator: a partial sum of updates */
} fedl_msg_type;

const char *fedl_msg_type_name(fedl_msg_type type);

/* ------------------------------------------------------------- keys */

/* Ed25519 (libsodium). A secret key holds its public half. */
typedef struct fedl_sign_keypair {
    uint8_t public_key[FEDL_WIRE_PUBLIC_KEY_BYTES];
    uint8_t secret_key[FEDL_WIRE_SECRET_KEY_BYTES];
} fedl_sign_keypair;

fedl_status fedl_sign_keypair_generate(fedl_sign_keypair *kp, fedl_error *err);

/* Key files are text, one key a line, like ssh's:
 *   public:  "ed25519 <64 hex digits> <id>"          (NAME.pub; a devices file
 *                                                      lists one per device)
 *   secret:  "ed25519-secret <128 hex digits> <id>"  (NAME.key, mode 0600)
 * Blank lines and lines starting with '#' are skipped. The id is the
 * sender the key speaks for (1-63 bytes of [A-Za-z0-9._-]). */
typedef struct fedl_key_entry {
    char id[FEDL_WIRE_SENDER_MAX];
    uint8_t public_key[FEDL_WIRE_PUBLIC_KEY_BYTES];
} fedl_key_entry;

#define FEDL_KEY_LINE_MAX 256
/* The line for a public or a secret key, with its newline. */
fedl_status fedl_key_format_public(const uint8_t *public_key, const char *id, char *out,
                                   size_t size, fedl_error *err);
fedl_status fedl_key_format_secret(const fedl_sign_keypair *kp, const char *id, char *out,
                                   size_t size, fedl_error *err);
/* Every public key line of text (name is used in messages: "devices.pub:3:9:
 * ..."); *entries from alloc (fedl_mem_free(alloc, *entries, *count *
 * sizeof **entries)). A repeated id, a bad key or a malformed line is an
 * error naming line and column. */
fedl_status fedl_keys_parse(const char *text, size_t length, const char *name,
                            fedl_allocator *alloc, fedl_key_entry **entries, int *count,
                            fedl_error *err);
/* The one secret key line of text; its public half is derived and checked
 * against the key's own. */
fedl_status fedl_secret_key_parse(const char *text, size_t length, const char *name,
                                  fedl_sign_keypair *kp, char id[FEDL_WIRE_SENDER_MAX],
                                  fedl_error *err);

/* ----------------------------------------------------------- frames */

/* A message to send. */
typedef struct fedl_wire_message {
    fedl_msg_type type;
    const char *job;    /* 1 to 31 bytes: letters, digits, '-', '_', '.' */
    const char *sender; /* 1 to 63 bytes, the same characters */
    uint64_t round;
    uint64_t sequence; /* strictly increasing per sender: replays are refused */
    const uint8_t *body;
    size_t body_length;
} fedl_wire_message;

/* Cuts a message into chunks of at most chunk_bytes each (header
 * included). The body is hashed and the header signed once, at init. */
typedef struct fedl_wire_encoder {
    uint8_t header[FEDL_WIRE_HEADER_BYTES]; /* the chunk-independent part */
    const uint8_t *body;
    size_t body_length;
    size_t chunk_payload; /* body bytes per chunk */
    uint32_t count;
} fedl_wire_encoder;

/* secret_key NULL: unsigned (the signature field is zero). */
fedl_status fedl_wire_encoder_init(fedl_wire_encoder *e, const fedl_wire_message *m,
                                   size_t chunk_bytes, const uint8_t *secret_key, fedl_error *err);
/* Chunk `index` (< e->count) into out, which holds at least
 * FEDL_WIRE_HEADER_BYTES + e->chunk_payload bytes; its length in *length. */
fedl_status fedl_wire_encode_chunk(const fedl_wire_encoder *e, uint32_t index, uint8_t *out,
                                   size_t capacity, size_t *length, fedl_error *err);

/* One chunk as received, checked. Its pointers refer to the bytes given. */
typedef struct fedl_wire_frame {
    fedl_msg_type type;
    int is_signed;
    char job[FEDL_WIRE_JOB_MAX];
    char sender[FEDL_WIRE_SENDER_MAX];
    uint64_t round, sequence;
    uint64_t body_length;
    uint8_t body_sha256[FEDL_SHA256_BYTES];
    uint32_t index, count;
    uint64_t offset; /* of the payload in the body */
    const uint8_t *payload;
    size_t payload_length;
    const uint8_t *signed_bytes; /* the header's first 160 bytes, which the signature covers */
    const uint8_t *signature;    /* 64 bytes */
} fedl_wire_frame;

/* Check a chunk: its length, magic, version, type, flags, job and sender
 * (NUL-padded, allowed characters), body length (<= max_body), chunk
 * fields (index < count, the payload inside the body, the last chunk
 * ending it), and its CRC-32C. The signature is checked separately.
 * FEDL_ERR_FORMAT naming the byte offset. */
fedl_status fedl_wire_parse(const uint8_t *bytes, size_t length, size_t max_body,
                            fedl_wire_frame *f, fedl_error *err);
/* The chunk's signature against a public key: FEDL_OK, or FEDL_ERR_FORMAT
 * ("unsigned", "bad signature"). */
fedl_status fedl_wire_verify(const fedl_wire_frame *f, const uint8_t *public_key, fedl_error *err);

/* ------------------------------------------------------- reassembly */

/* Puts chunks back together in bounded memory: at most max_transfers
 * messages in progress, max_bytes of bodies in all. A transfer is keyed by
 * (sender, type, sequence); its chunks may come in any order; a duplicate
 * chunk is counted and ignored; a chunk that disagrees with its transfer
 * (body length, hash, count, signature, offset) is refused; a newer
 * sequence from the same sender and type, or fedl_reassembler_expire,
 * drops an incomplete transfer and reports the chunks it lacked. A
 * complete body is checked against its SHA-256 before it is handed out. */
typedef struct fedl_reassembler fedl_reassembler;

typedef struct fedl_reassembly {
    int complete;        /* 1: body is the whole message */
    int duplicate;       /* 1: this chunk had arrived before; ignored */
    const uint8_t *body; /* valid until the next call */
    size_t body_length;
    char dropped[256]; /* set when an incomplete transfer was dropped: which, why */
} fedl_reassembly;

fedl_status fedl_reassembler_create(size_t max_bytes, int max_transfers, fedl_allocator *alloc,
                                    fedl_reassembler **out, fedl_error *err);
void fedl_reassembler_destroy(fedl_reassembler *r);
/* Add a parsed (and, where it matters, verified) chunk. */
fedl_status fedl_reassembler_add(fedl_reassembler *r, const fedl_wire_frame *f, uint64_t now_ms,
                                 fedl_reassembly *out, fedl_error *err);
/* Drop transfers not added to since now_ms - idle_ms; their number. */
int fedl_reassembler_expire(fedl_reassembler *r, uint64_t now_ms, uint64_t idle_ms);
/* Bytes held now (bodies in progress and the last complete one). */
size_t fedl_reassembler_bytes(const fedl_reassembler *r);

#ifdef __cplusplus
}
#endif
#endif
