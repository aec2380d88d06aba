/*
 * fedl/core.h - status codes, error messages, logging and the deterministic RNG.
 *
 * Every fallible fedl function returns a fedl_status. Functions that can fail
 * for a reason worth explaining also take a `fedl_error *` (which may be NULL):
 * on failure it receives the status and a sentence naming what was wrong (file,
 * field, token, byte offset). A fedl_error is a plain value owned by the
 * caller; it holds no heap memory.
 *
 * The RNG is counter-based (Philox4x32-10): the value at (seed, stream,
 * counter) is a pure function of those numbers, so the same seed gives the
 * same weights, shuffles and dropout masks on every platform and word size.
 */
#ifndef FEDL_CORE_H
#define FEDL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fedl_status {
    FEDL_OK = 0,
    FEDL_ERR_NOMEM,       /* an allocation failed or a budget was exceeded */
    FEDL_ERR_INVALID_ARG, /* a caller passed a value outside the documented range */
    FEDL_ERR_IO,          /* open/read/write/fsync failed; errno text in the message */
    FEDL_ERR_FORMAT,      /* a file or message is malformed or corrupt */
    FEDL_ERR_SPEC,        /* a model spec does not parse or its shapes do not fit */
    FEDL_ERR_UNSUPPORTED, /* valid request this build or platform cannot do */
    FEDL_ERR_STATE,       /* call made in the wrong state (e.g. before reserve) */
    FEDL_STATUS_COUNT
} fedl_status;

/* A status and the sentence that explains it. */
typedef struct fedl_error {
    fedl_status status;
    char message[512];
} fedl_error;

/* Short English description of a status code; never NULL. */
const char *fedl_strerror(fedl_status status);

/* Record status and a printf-style message in err (if err is not NULL) and
 * return status, so library code can write `return fedl_error_set(err, ...)`. */
fedl_status fedl_error_set(fedl_error *err, fedl_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clear err to FEDL_OK with an empty message. */
void fedl_error_clear(fedl_error *err);

/* ------------------------------------------------------------------ logging */

typedef enum fedl_log_level {
    FEDL_LOG_DEBUG = 0,
    FEDL_LOG_INFO,
    FEDL_LOG_WARN,
    FEDL_LOG_ERROR,
    FEDL_LOG_OFF
} fedl_log_level;

/* A sink receives every message at or above the current level. The default
 * sink writes "fedl: <level>: <message>" lines to stderr. */
typedef void (*fedl_log_sink)(void *ud, fedl_log_level level, const char *message);

void fedl_log_set_level(fedl_log_level level);
fedl_log_level fedl_log_get_level(void);
void fedl_log_set_sink(fedl_log_sink sink, void *ud); /* NULL restores stderr */
void fedl_log(fedl_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Parse "debug", "info", "warn", "error", "off". */
fedl_status fedl_log_level_parse(const char *name, fedl_log_level *out);

/* ---------------------------------------------------------------------- RNG */

/* Philox4x32-10 keyed by a 64-bit seed and a 64-bit stream id. Streams
 * separate uses (weight init of layer i, the shuffle of epoch e, dropout of
 * step s) so that none of them shifts another. */
typedef struct fedl_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter; /* index of the next 128-bit block */
    uint32_t block[4];
    unsigned used; /* words of block already handed out (4 = empty) */
} fedl_rng;

void fedl_rng_init(fedl_rng *rng, uint64_t seed, uint64_t stream);
uint32_t fedl_rng_u32(fedl_rng *rng);
/* Move to the word-th 32-bit output of the stream (0-based): what follows is
 * what word + 1 calls of fedl_rng_u32 from the start would give next.
 * Every draw above takes one word. */
void fedl_rng_seek(fedl_rng *rng, uint64_t word);
/* Uniform in [0, 1) with 24 bits of precision (exactly representable). */
float fedl_rng_uniform(fedl_rng *rng);
/* Uniform integer in [0, bound) without modulo bias; bound > 0. */
uint32_t fedl_rng_below(fedl_rng *rng, uint32_t bound);
/* The raw Philox4x32-10 block for (key, counter): the building block. */
void fedl_philox4x32(const uint32_t key[2], const uint32_t counter[4], uint32_t out[4]);

/* ----------------------------------------------------------------- checksums */

/* CRC-32C (Castagnoli), as used by iSCSI, ext4 and SCTP. Start with crc = 0;
 * feed the previous result to continue over more bytes. */
uint32_t fedl_crc32c(uint32_t crc, const void *data, size_t length);

/* SHA-256 (libsodium). The streaming form hashes data given in pieces. */
#define FEDL_SHA256_BYTES 32
typedef struct fedl_sha256_ctx {
    union {
        unsigned char bytes[128]; /* libsodium's crypto_hash_sha256_state (104 bytes) */
        uint64_t align;
    } opaque;
} fedl_sha256_ctx;
void fedl_sha256_init(fedl_sha256_ctx *ctx);
void fedl_sha256_update(fedl_sha256_ctx *ctx, const void *data, size_t length);
void fedl_sha256_final(fedl_sha256_ctx *ctx, uint8_t digest[FEDL_SHA256_BYTES]);
void fedl_sha256(const void *data, size_t length, uint8_t digest[FEDL_SHA256_BYTES]);
/* Lower-case hex of a digest into hex (65 bytes with the NUL). */
void fedl_sha256_hex(const uint8_t digest[FEDL_SHA256_BYTES], char hex[2 * FEDL_SHA256_BYTES + 1]);

/* ------------------------------------------------------------------- timing */

/* Monotonic clock in nanoseconds. */
uint64_t fedl_time_ns(void);

/* Library version string, e.g. "0.1.0". */
const char *fedl_version(void);

#ifdef __cplusplus
}
#endif
#endif
