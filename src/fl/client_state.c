/*
 * client_state.c - the client as bytes, and back: what a device killed in
 * the middle of a round needs to deliver anyway (the accepted task: its
 * round, model version, training configuration and weights, against which
 * the delta is taken). The trainer's own checkpoint carries the training
 * position; this carries the task. Layout, all little-endian:
 *
 *   0   8   magic "FEDLCLNT"
 *   8   4   format version (1)
 *   12  4   flags: 1 = a task is accepted and not answered, 2 = send weights
 *   16  8   round of the task accepted last
 *   24  8   its model version
 *   32  8   the last round delivered
 *   40  8   params P
 *   48  4   local epochs (i32); bytes 48-99 are zero without a task
 *   52  4   batch (i32)
 *   56  4   lr (f32)
 *   60  4   momentum (f32)
 *   64  4   FedProx mu (f32)
 *   68  32  SHA-256 of the task's weights (as the task announced it)
 *   100 64  client id, NUL-padded
 *   164     P floats: the task's weights (flag 1 only)
 */
#include <math.h>
#include <string.h>

#include "core/le.h"
#include "fl/client_internal.h"

#define MAGIC "FEDLCLNT"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 164
#define FLAG_ACCEPTED 1u
#define FLAG_SEND_WEIGHTS 2u

fedl_status fedl_client_save(const fedl_client *cl, fedl_allocator *alloc, uint8_t **bytes,
                             size_t *length, fedl_error *err)
{
    size_t size = HEADER_BYTES + (cl->accepted ? 4 * cl->params : 0);
    uint8_t *b = fedl_mem_alloc(alloc, size);
    uint32_t bits;
    *bytes = NULL;
    *length = 0;
    if (b == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "client %s: cannot allocate %zu bytes to save",
                              cl->id, size);
    memset(b, 0, HEADER_BYTES);
    memcpy(b, MAGIC, 8);
    fedl_put_u32(b + 8, FORMAT_VERSION);
    fedl_put_u32(b + 12,
                 (cl->accepted ? FLAG_ACCEPTED : 0) | (cl->send_weights ? FLAG_SEND_WEIGHTS : 0));
    fedl_put_u64(b + 16, cl->round);
    fedl_put_u64(b + 24, cl->version);
    fedl_put_u64(b + 32, cl->delivered_round);
    fedl_put_u64(b + 40, cl->params);
    memcpy(b + 100, cl->id, strlen(cl->id));
    if (!cl->accepted) { /* no task: bytes 48-99 stay zero */
        *bytes = b;
        *length = size;
        return FEDL_OK;
    }
    fedl_put_u32(b + 48, (uint32_t)cl->config.local_epochs);
    fedl_put_u32(b + 52, (uint32_t)cl->config.batch);
    memcpy(&bits, &cl->config.lr, 4);
    fedl_put_u32(b + 56, bits);
    memcpy(&bits, &cl->config.momentum, 4);
    fedl_put_u32(b + 60, bits);
    memcpy(&bits, &cl->config.proximal_mu, 4);
    fedl_put_u32(b + 64, bits);
    memcpy(b + 68, cl->base_sha256, FEDL_SHA256_BYTES);
    fedl_put_floats(b + HEADER_BYTES, cl->base, cl->params);
    *bytes = b;
    *length = size;
    return FEDL_OK;
}

static float get_f32(const uint8_t *p)
{
    uint32_t bits = fedl_get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

/* The task configuration at b + 48, checked as a task's would be. */
static fedl_status get_config(const uint8_t *b, fedl_task_config *c, fedl_error *err)
{
    c->local_epochs = (int32_t)fedl_get_u32(b + 48);
    c->batch = (int32_t)fedl_get_u32(b + 52);
    c->lr = get_f32(b + 56);
    c->momentum = get_f32(b + 60);
    c->proximal_mu = get_f32(b + 64);
    if (c->local_epochs < 1 || c->batch < 1)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client state: byte 48: %d local epochs and batch %d",
                              c->local_epochs, c->batch);
    if (!isfinite(c->lr) || c->lr < 0.0f || !isfinite(c->momentum) || c->momentum < 0.0f ||
        c->momentum >= 1.0f || !isfinite(c->proximal_mu) || c->proximal_mu < 0.0f)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client state: byte 56: lr %g, momentum %g, mu %g out of range",
                              (double)c->lr, (double)c->momentum, (double)c->proximal_mu);
    return FEDL_OK;
}

fedl_status fedl_client_restore(fedl_client *cl, const uint8_t *b, size_t length, fedl_error *err)
{
    uint32_t flags;
    uint64_t params, round, version, delivered;
    fedl_task_config config;
    uint8_t digest[FEDL_SHA256_BYTES];
    char id[FEDL_CLIENT_ID_MAX];
    if (length < HEADER_BYTES || memcmp(b, MAGIC, 8) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client state: not a client state (%zu bytes, want %d or more "
                              "starting \"" MAGIC "\")",
                              length, HEADER_BYTES);
    if (fedl_get_u32(b + 8) != FORMAT_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client state: byte 8: format version %u, not %u",
                              (unsigned)fedl_get_u32(b + 8), FORMAT_VERSION);
    flags = fedl_get_u32(b + 12);
    round = fedl_get_u64(b + 16);
    version = fedl_get_u64(b + 24);
    delivered = fedl_get_u64(b + 32);
    params = fedl_get_u64(b + 40);
    if ((flags & ~(FLAG_ACCEPTED | FLAG_SEND_WEIGHTS)) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "client state: byte 12: unknown flags 0x%x",
                              (unsigned)flags);
    memcpy(id, b + 100, FEDL_CLIENT_ID_MAX - 1);
    id[FEDL_CLIENT_ID_MAX - 1] = '\0';
    if (memcmp(b + 100, cl->id, FEDL_CLIENT_ID_MAX) != 0 && strcmp(id, cl->id) == 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client state: byte 100: the id is not NUL-padded");
    if (strcmp(id, cl->id) != 0)
        return fedl_error_set(err, FEDL_ERR_STATE, "client state: byte 100: it is %s's, not %s's",
                              id, cl->id);
    if (params != cl->params)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "client state: byte 40: %llu weights, the model has %zu",
                              (unsigned long long)params, cl->params);
    if (length != HEADER_BYTES + ((flags & FLAG_ACCEPTED) ? 4 * params : 0))
        return fedl_error_set(
            err, FEDL_ERR_FORMAT, "client state: %zu bytes, its header says %llu", length,
            (unsigned long long)(HEADER_BYTES + ((flags & FLAG_ACCEPTED) ? 4 * params : 0)));
    if ((flags & FLAG_ACCEPTED) == 0) {
        for (int i = 48; i < 100; i++)
            if (b[i] != 0)
                return fedl_error_set(err, FEDL_ERR_FORMAT,
                                      "client state: byte %d: not zero without a pending task", i);
    } else {
        if (round == 0 || round < delivered)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "client state: byte 16: a task of round %llu pending after round "
                                  "%llu was delivered",
                                  (unsigned long long)round, (unsigned long long)delivered);
        fedl_status st = get_config(b, &config, err);
        if (st != FEDL_OK)
            return st;
        fedl_sha256(b + HEADER_BYTES, 4 * params, digest);
        if (!fedl_host_is_little_endian()) { /* hash the host's floats, as accept did */
            fedl_get_floats(b + HEADER_BYTES, cl->delta, cl->params);
            fedl_sha256(cl->delta, 4 * params, digest);
        }
        if (memcmp(digest, b + 68, sizeof digest) != 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "client state: byte %d: the task's weights do not match their "
                                  "SHA-256",
                                  HEADER_BYTES);
        fedl_get_floats(b + HEADER_BYTES, cl->base, cl->params);
        memcpy(cl->base_sha256, b + 68, sizeof cl->base_sha256);
        cl->config = config;
    }
    cl->accepted = (flags & FLAG_ACCEPTED) != 0;
    cl->send_weights = (flags & FLAG_SEND_WEIGHTS) != 0;
    cl->round = round;
    cl->version = version;
    cl->delivered_round = delivered;
    return FEDL_OK;
}
