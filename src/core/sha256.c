/*
 * sha256.c - SHA-256 through libsodium (crypto_hash_sha256): the digest of
 * manifests, configuration fingerprints and data files.
 */
#include <sodium.h>

#include "fedl/core.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((fedl_sha256_ctx *)0)->opaque.bytes),
               "fedl_sha256_ctx too small for libsodium's state");

void fedl_sha256_init(fedl_sha256_ctx *ctx)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)(void *)ctx->opaque.bytes);
}

void fedl_sha256_update(fedl_sha256_ctx *ctx, const void *data, size_t length)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)(void *)ctx->opaque.bytes, data,
                              (unsigned long long)length);
}

void fedl_sha256_final(fedl_sha256_ctx *ctx, uint8_t digest[FEDL_SHA256_BYTES])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)(void *)ctx->opaque.bytes, digest);
}

void fedl_sha256(const void *data, size_t length, uint8_t digest[FEDL_SHA256_BYTES])
{
    crypto_hash_sha256(digest, data, (unsigned long long)length);
}

void fedl_sha256_hex(const uint8_t digest[FEDL_SHA256_BYTES], char hex[2 * FEDL_SHA256_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < FEDL_SHA256_BYTES; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * FEDL_SHA256_BYTES] = '\0';
}
