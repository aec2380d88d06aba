/*
 * coordinator_state.c - the coordinator between rounds as bytes, and back:
 * what a restarted coordinator needs to go on from the last completed
 * round (global weights and version, server optimiser state, registry),
 * with a fingerprint of the configuration it must match. Layout, all
 * little-endian:
 *
 *   0   8   magic "FEDLCOOR"
 *   8   4   format version (1)
 *   12  32  SHA-256 of the configuration (fingerprint_config)
 *   44  8   params P
 *   52  8   model version (rounds completed)
 *   60  8   aggregator rounds
 *   68  8   server state floats S
 *   76  4   clients C
 *   80      P floats weights, S floats server state, then C clients:
 *           u8 id length L, L id bytes, u64 last seen (ms), u64 free memory,
 *           f64 temperature, u64 samples, i32 pressure
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/le.h"
#include "fl/coordinator_internal.h"

#define MAGIC "FEDLCOOR"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 80
#define CLIENT_FIXED_BYTES (1 + 8 + 8 + 8 + 8 + 4)

/* The settings a restored coordinator must share with the saved one, as
 * canonical text hashed. */
static void fingerprint_config(const fedl_coordinator_config *c, size_t params,
                               uint8_t digest[FEDL_SHA256_BYTES])
{
    char text[1024];
    int n = snprintf(
        text, sizeof text,
        "rounds=%d fraction=%.9g min=%d max=%d quorum=%.9g completion=%.9g timeout=%llu "
        "retries=%d late=%d seed=%llu epochs=%d batch=%d lr=%.9g momentum=%.9g mu=%.9g "
        "strategy=%s server_lr=%.9g m=%.9g b1=%.9g b2=%.9g tau=%.9g trim=%.9g f=%d krum_m=%d "
        "clip=%.9g max_updates=%d params=%zu",
        c->rounds, c->fraction, c->min_clients, c->max_clients, c->quorum, c->min_completion,
        (unsigned long long)c->round_timeout_ms, c->max_retries, (int)c->late,
        (unsigned long long)c->seed, c->task.local_epochs, c->task.batch, (double)c->task.lr,
        (double)c->task.momentum, (double)c->task.proximal_mu, fedl_strategy_name(c->strategy.kind),
        (double)c->strategy.server_lr, (double)c->strategy.momentum, (double)c->strategy.beta1,
        (double)c->strategy.beta2, (double)c->strategy.tau, (double)c->strategy.trim_fraction,
        c->strategy.byzantine, c->strategy.multi_krum_m, (double)c->strategy.clip_norm,
        c->strategy.max_updates, params);
    fedl_sha256(text, n > 0 && (size_t)n < sizeof text ? (size_t)n : sizeof text - 1, digest);
}

fedl_status fedl_coordinator_save(const fedl_coordinator *co, fedl_allocator *alloc,
                                  uint8_t **bytes, size_t *length, fedl_error *err)
{
    uint64_t rounds;
    size_t state_floats = fedl_aggregator_state_floats(co->aggregator), size, at;
    const float *state = fedl_aggregator_state(co->aggregator, &rounds);
    uint8_t *b;
    *bytes = NULL;
    *length = 0;
    size = HEADER_BYTES + 4 * (co->params + state_floats);
    for (int i = 0; i < co->client_count; i++)
        size += CLIENT_FIXED_BYTES + strlen(co->clients[i].id);
    b = fedl_mem_alloc(alloc, size);
    if (b == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator: cannot allocate %zu bytes to save",
                              size);
    memcpy(b, MAGIC, 8);
    fedl_put_u32(b + 8, FORMAT_VERSION);
    fingerprint_config(&co->config, co->params, b + 12);
    fedl_put_u64(b + 44, co->params);
    fedl_put_u64(b + 52, co->version);
    fedl_put_u64(b + 60, rounds);
    fedl_put_u64(b + 68, state_floats);
    fedl_put_u32(b + 76, (uint32_t)co->client_count);
    fedl_put_floats(b + HEADER_BYTES, co->weights, co->params);
    at = HEADER_BYTES + 4 * co->params;
    if (state_floats > 0)
        fedl_put_floats(b + at, state, state_floats);
    at += 4 * state_floats;
    for (int i = 0; i < co->client_count; i++) {
        const client_entry *c = &co->clients[i];
        size_t id = strlen(c->id);
        uint64_t temperature;
        memcpy(&temperature, &c->telemetry.temperature_c, 8);
        b[at] = (uint8_t)id;
        memcpy(b + at + 1, c->id, id);
        at += 1 + id;
        fedl_put_u64(b + at, c->last_seen_ms);
        fedl_put_u64(b + at + 8, c->telemetry.free_memory);
        fedl_put_u64(b + at + 16, temperature);
        fedl_put_u64(b + at + 24, c->telemetry.samples);
        fedl_put_u32(b + at + 32, (uint32_t)c->telemetry.pressure);
        at += 36;
    }
    *bytes = b;
    *length = size;
    return FEDL_OK;
}

static fedl_status truncated(size_t at, size_t need, size_t length, fedl_error *err)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT,
                          "coordinator state: truncated at byte %zu (%zu more needed, %zu there)",
                          at, need, length > at ? length - at : 0);
}

/* The registry part: every client, checked, into the coordinator. */
static fedl_status restore_clients(fedl_coordinator *co, const uint8_t *b, size_t length, size_t at,
                                   uint32_t count, fedl_error *err)
{
    for (uint32_t i = 0; i < count; i++) {
        char id[FEDL_CLIENT_ID_MAX];
        fedl_telemetry t;
        uint64_t temperature, last_seen;
        size_t n;
        fedl_status st;
        int count_before;
        if (at + 1 > length)
            return truncated(at, 1, length, err);
        n = b[at];
        if (at + CLIENT_FIXED_BYTES + n > length)
            return truncated(at, CLIENT_FIXED_BYTES + n, length, err);
        if (n == 0 || n >= FEDL_CLIENT_ID_MAX || memchr(b + at + 1, '\0', n) != NULL)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "coordinator state: byte %zu: client %u has a bad id", at, i);
        memcpy(id, b + at + 1, n);
        id[n] = '\0';
        at += 1 + n;
        last_seen = fedl_get_u64(b + at);
        t.free_memory = fedl_get_u64(b + at + 8);
        temperature = fedl_get_u64(b + at + 16);
        memcpy(&t.temperature_c, &temperature, 8);
        t.samples = fedl_get_u64(b + at + 24);
        t.pressure = (int)fedl_get_u32(b + at + 32);
        at += 36;
        count_before = co->client_count;
        st = fedl_coordinator_register(co, id, &t, last_seen, err);
        if (st != FEDL_OK)
            return st;
        if (co->client_count == count_before) /* registered again: an update, not an entry */
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "coordinator state: byte %zu: client %s appears twice",
                                  at - 37 - n, id);
    }
    if (at != length)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "coordinator state: %zu bytes after the last client (byte %zu)",
                              length - at, at);
    return FEDL_OK;
}

fedl_status fedl_coordinator_restore(fedl_coordinator *co, const uint8_t *b, size_t length,
                                     fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    uint64_t params, version, rounds, state_floats;
    uint32_t count;
    size_t at;
    float *state = NULL;
    fedl_status st;
    if (co->phase != PHASE_IDLE || co->version != 0 || co->client_count != 0)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "coordinator: restore into a fresh coordinator, before it starts");
    if (length < HEADER_BYTES)
        return truncated(0, HEADER_BYTES, length, err);
    if (memcmp(b, MAGIC, 8) != 0 || fedl_get_u32(b + 8) != FORMAT_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "coordinator state: byte 0: not a version %u coordinator state",
                              FORMAT_VERSION);
    fingerprint_config(&co->config, co->params, digest);
    if (memcmp(digest, b + 12, sizeof digest) != 0)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "coordinator state: saved with another configuration (rounds, "
                              "clients, task, strategy or model size differ)");
    params = fedl_get_u64(b + 44);
    version = fedl_get_u64(b + 52);
    rounds = fedl_get_u64(b + 60);
    state_floats = fedl_get_u64(b + 68);
    count = fedl_get_u32(b + 76);
    if (params != co->params || state_floats != fedl_aggregator_state_floats(co->aggregator) ||
        version > (uint64_t)co->config.rounds)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "coordinator state: byte 44: %llu params, %llu state floats, "
                              "version %llu do not fit this coordinator",
                              (unsigned long long)params, (unsigned long long)state_floats,
                              (unsigned long long)version);
    at = HEADER_BYTES;
    if ((length - at) / 4 < params + state_floats)
        return truncated(at, 4 * (params + state_floats), length, err);
    if (state_floats > 0) {
        state = fedl_mem_alloc(co->alloc, state_floats * sizeof(float));
        if (state == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator state: cannot allocate");
        fedl_get_floats(b + at + 4 * params, state, state_floats);
    }
    st = fedl_aggregator_restore(co->aggregator, state, state_floats, rounds, err);
    fedl_mem_free(co->alloc, state, state_floats * sizeof(float));
    if (st != FEDL_OK)
        return st;
    st = restore_clients(co, b, length, at + 4 * (params + state_floats), count, err);
    if (st != FEDL_OK) { /* leave it fresh */
        co->client_count = 0;
        return st;
    }
    for (size_t i = 0; i < params; i++) {
        uint32_t bits = fedl_get_u32(b + at + 4 * i);
        float w;
        memcpy(&w, &bits, 4);
        if (!isfinite(w)) {
            co->client_count = 0;
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "coordinator state: byte %zu: weight %zu is not finite",
                                  at + 4 * i, i);
        }
    }
    fedl_get_floats(b + at, co->weights, params);
    co->version = version;
    fedl_coordinator_rehash(co);
    return FEDL_OK;
}
