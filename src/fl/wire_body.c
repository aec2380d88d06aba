/*
 * wire_body.c - the bodies of federated messages: a round's task, a
 * client's update, a client's status, the coordinator's control word, an
 * aggregator's partial sum.
 * Little-endian, fixed layouts (docs/PROTOCOL.md); decoders check every
 * length, count and range and name the byte offset of what is wrong.
 */
#include <math.h>
#include <string.h>

#include "core/le.h"
#include "fedl/fl.h"
#include "fl/names.h"

#define TASK_FIXED 84
#define UPDATE_FIXED 72
#define CONTROL_FIXED 16
#define PARTIAL_FIXED 40
#define SPEC_MAX 65536

static fedl_status bad(fedl_error *err, const char *what, size_t at, const char *why)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s message: byte %zu: %s", what, at, why);
}

static void put_f32(uint8_t *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    fedl_put_u32(p, bits);
}

static float get_f32(const uint8_t *p)
{
    uint32_t bits = fedl_get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static void put_telemetry(uint8_t *p, const fedl_telemetry *t)
{
    fedl_put_u64(p, t->free_memory);
    fedl_put_f64(p + 8, t->temperature_c);
    fedl_put_u64(p + 16, t->samples);
    fedl_put_u32(p + 24, (uint32_t)t->pressure);
    fedl_put_u32(p + 28, 0);
}

/* 32 bytes at p; 0 if out of range. */
static int get_telemetry(const uint8_t *p, fedl_telemetry *t)
{
    t->free_memory = fedl_get_u64(p);
    t->temperature_c = fedl_get_f64(p + 8);
    t->samples = fedl_get_u64(p + 16);
    t->pressure = (int)fedl_get_u32(p + 24);
    return isfinite(t->temperature_c) && t->pressure >= 0 && t->pressure <= 2 &&
           fedl_get_u32(p + 28) == 0;
}

/* ----------------------------------------------------------------- task */

static size_t selected_bytes(const fedl_task_message *m)
{
    size_t n = 0;
    for (int i = 0; i < m->selected_count; i++)
        n += 1 + strlen(m->selected[i]);
    return n;
}

size_t fedl_task_message_size(const fedl_task_message *m)
{
    return TASK_FIXED + m->spec_length + selected_bytes(m) + 4 * m->task.params;
}

fedl_status fedl_task_message_encode(const fedl_task_message *m, uint8_t *out, size_t capacity,
                                     size_t *length, fedl_error *err)
{
    const fedl_task *t = &m->task;
    size_t size = fedl_task_message_size(m), at;
    if (m->spec_length == 0 || m->spec_length > SPEC_MAX || t->params == 0 || t->weights == NULL ||
        m->selected_count < 1)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "task message: a spec, weights and selected clients are needed");
    for (int i = 0; i < m->selected_count; i++) {
        size_t n = strlen(m->selected[i]);
        if (n == 0 || n >= FEDL_CLIENT_ID_MAX)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "task message: client id '%s'",
                                  m->selected[i]);
    }
    if (capacity < size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "task message: %zu bytes for %zu",
                              capacity, size);
    fedl_put_u64(out, t->model_version);
    fedl_put_u64(out + 8, m->deadline_in_ms);
    fedl_put_u32(out + 16, (uint32_t)t->config.local_epochs);
    fedl_put_u32(out + 20, (uint32_t)t->config.batch);
    put_f32(out + 24, t->config.lr);
    put_f32(out + 28, t->config.momentum);
    put_f32(out + 32, t->config.proximal_mu);
    fedl_put_u32(out + 36, (uint32_t)m->selected_count);
    fedl_put_u64(out + 40, t->params);
    memcpy(out + 48, t->weights_sha256, FEDL_SHA256_BYTES);
    fedl_put_u32(out + 80, (uint32_t)m->spec_length);
    memcpy(out + TASK_FIXED, m->spec, m->spec_length);
    at = TASK_FIXED + m->spec_length;
    for (int i = 0; i < m->selected_count; i++) {
        size_t n = strlen(m->selected[i]);
        out[at] = (uint8_t)n;
        memcpy(out + at + 1, m->selected[i], n);
        at += 1 + n;
    }
    fedl_put_floats(out + at, t->weights, t->params);
    *length = size;
    return FEDL_OK;
}

/* The task's training configuration at b + 16, checked. */
static fedl_status get_task_config(const uint8_t *b, fedl_task_config *c, fedl_error *err)
{
    c->local_epochs = (int32_t)fedl_get_u32(b + 16);
    c->batch = (int32_t)fedl_get_u32(b + 20);
    c->lr = get_f32(b + 24);
    c->momentum = get_f32(b + 28);
    c->proximal_mu = get_f32(b + 32);
    if (c->local_epochs < 1 || c->local_epochs > 100000)
        return bad(err, "task", 16, "local epochs out of range");
    if (c->batch < 1 || c->batch > (1 << 24))
        return bad(err, "task", 20, "batch out of range");
    if (!isfinite(c->lr) || c->lr < 0.0f)
        return bad(err, "task", 24, "learning rate out of range");
    if (!isfinite(c->momentum) || c->momentum < 0.0f || c->momentum >= 1.0f)
        return bad(err, "task", 28, "momentum out of range");
    if (!isfinite(c->proximal_mu) || c->proximal_mu < 0.0f)
        return bad(err, "task", 32, "FedProx mu out of range");
    return FEDL_OK;
}

fedl_status fedl_task_message_decode(const uint8_t *b, size_t length, fedl_task_message *m,
                                     fedl_error *err)
{
    uint64_t params, spec_length;
    uint32_t count;
    size_t at;
    fedl_status st;
    memset(m, 0, sizeof *m);
    if (length < TASK_FIXED)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "task message: %zu bytes, under %d", length,
                              TASK_FIXED);
    st = get_task_config(b, &m->task.config, err);
    if (st != FEDL_OK)
        return st;
    m->task.model_version = fedl_get_u64(b);
    m->deadline_in_ms = fedl_get_u64(b + 8);
    count = fedl_get_u32(b + 36);
    params = fedl_get_u64(b + 40);
    spec_length = fedl_get_u32(b + 80);
    if (count < 1 || count > length)
        return bad(err, "task", 36, "selected client count out of range");
    if (params < 1 || params > length / 4)
        return bad(err, "task", 40, "parameter count does not fit the message");
    if (spec_length < 1 || spec_length > SPEC_MAX || spec_length > length - TASK_FIXED)
        return bad(err, "task", 80, "spec length out of range");
    for (size_t i = 0; i < spec_length; i++)
        if (b[TASK_FIXED + i] < 0x20 || b[TASK_FIXED + i] > 0x7e)
            return bad(err, "task", TASK_FIXED + i, "the spec is not printable text");
    at = TASK_FIXED + (size_t)spec_length;
    m->selected_bytes = b + at;
    for (uint32_t i = 0; i < count; i++) {
        size_t n;
        if (at >= length)
            return bad(err, "task", at, "the selected clients run past the end");
        n = b[at];
        if (n == 0 || n >= FEDL_CLIENT_ID_MAX || n > length - at - 1)
            return bad(err, "task", at, "a selected client id of bad length");
        for (size_t k = 0; k < n; k++)
            if (!fedl_name_char((char)b[at + 1 + k]))
                return bad(err, "task", at + 1 + k, "a selected client id with a bad character");
        at += 1 + n;
    }
    if ((length - at) / 4 != params || (length - at) % 4 != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "task message: byte %zu: %zu bytes of weights for %llu parameters",
                              at, length - at, (unsigned long long)params);
    m->task.params = (size_t)params;
    memcpy(m->task.weights_sha256, b + 48, FEDL_SHA256_BYTES);
    m->spec = (const char *)b + TASK_FIXED;
    m->spec_length = (size_t)spec_length;
    m->selected_count = (int)count;
    m->weights_le = b + at;
    return FEDL_OK;
}

int fedl_task_message_selects(const fedl_task_message *m, const char *client_id)
{
    const uint8_t *p = m->selected_bytes;
    size_t n = strlen(client_id);
    for (int i = 0; i < m->selected_count; i++) {
        if (p[0] == n && memcmp(p + 1, client_id, n) == 0)
            return 1;
        p += 1 + p[0];
    }
    return 0;
}

void fedl_task_message_weights(const fedl_task_message *m, float *out)
{
    fedl_get_floats(m->weights_le, out, m->task.params);
}

/* --------------------------------------------------------------- update */

size_t fedl_update_message_size(size_t params)
{
    return UPDATE_FIXED + 4 * params;
}

fedl_status fedl_update_message_encode(const fedl_update *u, uint8_t *out, size_t capacity,
                                       size_t *length, fedl_error *err)
{
    size_t size = fedl_update_message_size(u->params);
    if (u->params == 0 || u->values == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "update message: no values");
    if (capacity < size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "update message: %zu bytes for %zu",
                              capacity, size);
    fedl_put_u64(out, u->model_version);
    fedl_put_u32(out + 8, (uint32_t)u->kind);
    fedl_put_u32(out + 12, 0);
    fedl_put_u64(out + 16, u->samples);
    fedl_put_f64(out + 24, u->train_loss);
    put_telemetry(out + 32, &u->telemetry);
    fedl_put_u64(out + 64, u->params);
    fedl_put_floats(out + UPDATE_FIXED, u->values, u->params);
    *length = size;
    return FEDL_OK;
}

fedl_status fedl_update_message_decode(const uint8_t *b, size_t length, float *values,
                                       size_t capacity, fedl_update *u, fedl_error *err)
{
    uint64_t params;
    uint32_t kind;
    memset(u, 0, sizeof *u);
    if (length < UPDATE_FIXED)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "update message: %zu bytes, under %d", length,
                              UPDATE_FIXED);
    kind = fedl_get_u32(b + 8);
    if (kind > FEDL_UPDATE_WEIGHTS || fedl_get_u32(b + 12) != 0)
        return bad(err, "update", 8, "unknown update kind");
    u->samples = fedl_get_u64(b + 16);
    if (u->samples == 0)
        return bad(err, "update", 16, "trained on no samples");
    u->train_loss = fedl_get_f64(b + 24);
    if (!isfinite(u->train_loss))
        return bad(err, "update", 24, "the training loss is not finite");
    if (!get_telemetry(b + 32, &u->telemetry))
        return bad(err, "update", 32, "telemetry out of range");
    params = fedl_get_u64(b + 64);
    if (params == 0 || params != (length - UPDATE_FIXED) / 4 || (length - UPDATE_FIXED) % 4 != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "update message: byte 64: %llu parameters in %zu bytes of values",
                              (unsigned long long)params, length - UPDATE_FIXED);
    if (params > capacity)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "update message: byte 64: %llu parameters, the model has %zu",
                              (unsigned long long)params, capacity);
    u->model_version = fedl_get_u64(b);
    u->kind = (fedl_update_kind)kind;
    u->params = (size_t)params;
    fedl_get_floats(b + UPDATE_FIXED, values, u->params);
    u->values = values;
    return FEDL_OK;
}

/* --------------------------------------------------------------- status */

fedl_status fedl_status_message_encode(fedl_client_state state, const fedl_telemetry *t,
                                       uint8_t out[FEDL_STATUS_MESSAGE_BYTES])
{
    fedl_telemetry none = {0, 0.0, 0, 0};
    fedl_put_u32(out, (uint32_t)state);
    fedl_put_u32(out + 4, 0);
    put_telemetry(out + 8, t != NULL ? t : &none);
    return FEDL_OK;
}

fedl_status fedl_status_message_decode(const uint8_t *b, size_t length, fedl_client_state *state,
                                       fedl_telemetry *t, fedl_error *err)
{
    uint32_t s;
    if (length != FEDL_STATUS_MESSAGE_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "status message: %zu bytes, not %d", length,
                              FEDL_STATUS_MESSAGE_BYTES);
    s = fedl_get_u32(b);
    if (s < FEDL_CLIENT_ONLINE || s > FEDL_CLIENT_LEAVING || fedl_get_u32(b + 4) != 0)
        return bad(err, "status", 0, "unknown client state");
    if (!get_telemetry(b + 8, t))
        return bad(err, "status", 8, "telemetry out of range");
    *state = (fedl_client_state)s;
    return FEDL_OK;
}

/* -------------------------------------------------------------- control */

fedl_status fedl_control_message_encode(fedl_control_command command, uint64_t version,
                                        const char *text, uint8_t *out, size_t *length)
{
    size_t n = text != NULL ? strnlen(text, FEDL_CONTROL_TEXT_MAX) : 0;
    fedl_put_u32(out, (uint32_t)command);
    fedl_put_u32(out + 4, (uint32_t)n);
    fedl_put_u64(out + 8, version);
    for (size_t i = 0; i < n; i++) /* printable, whatever the reason held */
        out[CONTROL_FIXED + i] = text[i] >= 0x20 && text[i] <= 0x7e ? (uint8_t)text[i] : '?';
    *length = CONTROL_FIXED + n;
    return FEDL_OK;
}

fedl_status fedl_control_message_decode(const uint8_t *b, size_t length,
                                        fedl_control_command *command, uint64_t *version,
                                        char *text, fedl_error *err)
{
    uint32_t c, n;
    if (length < CONTROL_FIXED)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "control message: %zu bytes, under %d", length,
                              CONTROL_FIXED);
    c = fedl_get_u32(b);
    n = fedl_get_u32(b + 4);
    if (c < FEDL_CONTROL_FINISHED || c > FEDL_CONTROL_FAILED)
        return bad(err, "control", 0, "unknown command");
    if (n > FEDL_CONTROL_TEXT_MAX || n != length - CONTROL_FIXED)
        return bad(err, "control", 4, "text length out of range");
    for (uint32_t i = 0; i < n; i++)
        if (b[CONTROL_FIXED + i] < 0x20 || b[CONTROL_FIXED + i] > 0x7e)
            return bad(err, "control", CONTROL_FIXED + i, "the text is not printable");
    *command = (fedl_control_command)c;
    *version = fedl_get_u64(b + 8);
    memcpy(text, b + CONTROL_FIXED, n);
    text[n] = '\0';
    return FEDL_OK;
}

/* -------------------------------------------------------------- partial */

static size_t partial_ids_bytes(const fedl_partial *p)
{
    size_t n = 0;
    for (int i = 0; i < p->count; i++)
        n += 1 + strlen(p->clients[i]);
    return n;
}

size_t fedl_partial_message_size(const fedl_partial *p)
{
    return PARTIAL_FIXED + partial_ids_bytes(p) + 8 * p->params;
}

fedl_status fedl_partial_message_encode(const fedl_partial *p, uint8_t *out, size_t capacity,
                                        size_t *length, fedl_error *err)
{
    size_t size, at = PARTIAL_FIXED;
    if (p->count < 1 || p->clients == NULL || p->params == 0 || p->sum == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "partial message: clients and a sum are needed");
    for (int i = 0; i < p->count; i++)
        if (!fedl_name_ok(p->clients[i], strnlen(p->clients[i], FEDL_CLIENT_ID_MAX),
                          FEDL_CLIENT_ID_MAX))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "partial message: client id %d", i);
    size = fedl_partial_message_size(p);
    if (capacity < size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "partial message: %zu bytes for %zu",
                              capacity, size);
    fedl_put_u64(out, p->model_version);
    fedl_put_f64(out + 8, p->samples);
    fedl_put_f64(out + 16, p->loss_sum);
    fedl_put_u32(out + 24, (uint32_t)p->count);
    fedl_put_u32(out + 28, 0);
    fedl_put_u64(out + 32, p->params);
    for (int i = 0; i < p->count; i++) {
        size_t n = strlen(p->clients[i]);
        out[at] = (uint8_t)n;
        memcpy(out + at + 1, p->clients[i], n);
        at += 1 + n;
    }
    for (size_t i = 0; i < p->params; i++)
        fedl_put_f64(out + at + 8 * i, p->sum[i]);
    *length = size;
    return FEDL_OK;
}

/* The count client ids at b + *at into clients, checked (names, no id
 * twice); *at moves past them. */
static fedl_status get_partial_clients(const uint8_t *b, size_t length, size_t *at, int count,
                                       char (*clients)[FEDL_CLIENT_ID_MAX], fedl_error *err)
{
    for (int i = 0; i < count; i++) {
        size_t n = *at < length ? b[*at] : 0;
        if (*at >= length)
            return bad(err, "partial", *at, "the client ids run past the end");
        if (!fedl_name_ok((const char *)b + *at + 1, n <= length - *at - 1 ? n : 0,
                          FEDL_CLIENT_ID_MAX))
            return bad(err, "partial", *at, "a client id of bad length or character");
        memcpy(clients[i], b + *at + 1, n);
        clients[i][n] = '\0';
        for (int k = 0; k < i; k++)
            if (strcmp(clients[k], clients[i]) == 0)
                return bad(err, "partial", *at, "a client counted twice");
        *at += 1 + n;
    }
    return FEDL_OK;
}

fedl_status fedl_partial_message_decode(const uint8_t *b, size_t length,
                                        char (*clients)[FEDL_CLIENT_ID_MAX], int client_capacity,
                                        double *sum, size_t capacity, fedl_partial *p,
                                        fedl_error *err)
{
    uint64_t params;
    uint32_t count;
    size_t at = PARTIAL_FIXED;
    fedl_status st;
    memset(p, 0, sizeof *p);
    if (length < PARTIAL_FIXED)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "partial message: %zu bytes, under %d", length,
                              PARTIAL_FIXED);
    p->samples = fedl_get_f64(b + 8);
    if (!(p->samples > 0.0 && p->samples <= 18446744073709551616.0))
        return bad(err, "partial", 8, "summed samples out of range");
    p->loss_sum = fedl_get_f64(b + 16);
    if (!isfinite(p->loss_sum))
        return bad(err, "partial", 16, "the summed training loss is not finite");
    count = fedl_get_u32(b + 24);
    if (count < 1 || count > (uint32_t)client_capacity || fedl_get_u32(b + 28) != 0)
        return bad(err, "partial", 24, "client count out of range");
    params = fedl_get_u64(b + 32);
    if (params < 1 || params > capacity)
        return bad(err, "partial", 32, "parameter count out of range for the model");
    st = get_partial_clients(b, length, &at, (int)count, clients, err);
    if (st != FEDL_OK)
        return st;
    if ((length - at) % 8 != 0 || (length - at) / 8 != params)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "partial message: byte %zu: %zu bytes of sums for %llu parameters",
                              at, length - at, (unsigned long long)params);
    for (size_t i = 0; i < params; i++) {
        sum[i] = fedl_get_f64(b + at + 8 * i);
        if (!isfinite(sum[i]))
            return bad(err, "partial", at + 8 * i, "a sum that is not finite");
    }
    p->model_version = fedl_get_u64(b);
    p->count = (int)count;
    p->clients = (const char(*)[FEDL_CLIENT_ID_MAX])clients;
    p->sum = sum;
    p->params = (size_t)params;
    return FEDL_OK;
}
