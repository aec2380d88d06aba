/*
 * client.c - the client's state machine (sans-IO): it checks a task before
 * training on it (newer round, right size, finite weights, the announced
 * SHA-256) and turns the weights after local training into an update (the
 * delta against the task's weights). Training itself is the host's: a
 * fedl_trainer, with its budget, checkpoints and monitor.
 */
#include <math.h>
#include <string.h>

#include "fedl/fl.h"

#include "fl/client_internal.h"

fedl_status fedl_client_create(const char *client_id, size_t params, fedl_allocator *alloc,
                               fedl_client **out, fedl_error *err)
{
    fedl_client *cl;
    size_t length = client_id != NULL ? strlen(client_id) : 0;
    *out = NULL;
    if (length == 0 || length >= FEDL_CLIENT_ID_MAX || params == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "client: an id of 1 to %d bytes and a model are needed",
                              FEDL_CLIENT_ID_MAX - 1);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    cl = fedl_mem_alloc(alloc, sizeof *cl);
    if (cl == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "client %s: cannot allocate", client_id);
    memset(cl, 0, sizeof *cl);
    memcpy(cl->id, client_id, length + 1);
    cl->alloc = alloc;
    cl->params = params;
    cl->base = fedl_mem_alloc_aligned(alloc, params * sizeof(float), 64);
    cl->delta = fedl_mem_alloc_aligned(alloc, params * sizeof(float), 64);
    if (cl->base == NULL || cl->delta == NULL) {
        fedl_client_destroy(cl);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "client %s: cannot allocate %zu weights",
                              client_id, params);
    }
    *out = cl;
    return FEDL_OK;
}

void fedl_client_destroy(fedl_client *cl)
{
    if (cl == NULL)
        return;
    fedl_mem_free_aligned(cl->alloc, cl->base);
    fedl_mem_free_aligned(cl->alloc, cl->delta);
    fedl_mem_free(cl->alloc, cl, sizeof *cl);
}

/* The index of the first NaN or infinity, or n. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

fedl_status fedl_client_accept_task(fedl_client *cl, const fedl_task *task, fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    size_t bad;
    /* The round delivered last may come again: a coordinator that restarted
     * or retried it asks again, and the same training gives the same update. */
    if (task->round == 0 || task->round < cl->delivered_round)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "client %s: task for round %llu, older than round %llu, which it "
                              "delivered",
                              cl->id, (unsigned long long)task->round,
                              (unsigned long long)cl->delivered_round);
    if (task->params != cl->params || task->weights == NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client %s: task for round %llu has %zu weights, the model %zu",
                              cl->id, (unsigned long long)task->round, task->params, cl->params);
    bad = first_non_finite(task->weights, task->params);
    if (bad < task->params)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client %s: task for round %llu: weight %zu is not finite", cl->id,
                              (unsigned long long)task->round, bad);
    fedl_sha256(task->weights, task->params * sizeof(float), digest);
    if (memcmp(digest, task->weights_sha256, sizeof digest) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client %s: task for round %llu: the weights do not match their "
                              "SHA-256",
                              cl->id, (unsigned long long)task->round);
    memcpy(cl->base, task->weights, cl->params * sizeof(float));
    memcpy(cl->base_sha256, digest, sizeof digest);
    cl->config = task->config;
    cl->round = task->round;
    cl->version = task->model_version;
    cl->accepted = 1;
    return FEDL_OK;
}

fedl_status fedl_client_make_update(fedl_client *cl, const float *trained, uint64_t samples,
                                    double train_loss, const fedl_telemetry *telemetry,
                                    fedl_update *u, fedl_error *err)
{
    size_t bad;
    if (!cl->accepted)
        return fedl_error_set(err, FEDL_ERR_STATE, "client %s: no task to answer", cl->id);
    if (samples == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "client %s: trained on no samples",
                              cl->id);
    bad = first_non_finite(trained, cl->params);
    if (bad < cl->params)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "client %s: round %llu: local training diverged (weight %zu is not "
                              "finite)",
                              cl->id, (unsigned long long)cl->round, bad);
    if (cl->send_weights)
        memcpy(cl->delta, trained, cl->params * sizeof(float));
    else
        for (size_t i = 0; i < cl->params; i++)
            cl->delta[i] = trained[i] - cl->base[i];
    memset(u, 0, sizeof *u);
    memcpy(u->client_id, cl->id, sizeof u->client_id);
    u->round = cl->round;
    u->model_version = cl->version;
    u->kind = cl->send_weights ? FEDL_UPDATE_WEIGHTS : FEDL_UPDATE_DELTA;
    u->values = cl->delta;
    u->params = cl->params;
    u->samples = samples;
    u->train_loss = train_loss;
    if (telemetry != NULL)
        u->telemetry = *telemetry;
    cl->accepted = 0;
    cl->delivered_round = cl->round;
    return FEDL_OK;
}

void fedl_client_send_weights(fedl_client *cl, int on)
{
    cl->send_weights = on != 0;
}

uint64_t fedl_client_round(const fedl_client *cl)
{
    return cl->round;
}

const char *fedl_client_id(const fedl_client *cl)
{
    return cl->id;
}

const fedl_task_config *fedl_client_pending(const fedl_client *cl, const float **weights)
{
    if (weights != NULL)
        *weights = cl->accepted ? cl->base : NULL;
    return cl->accepted ? &cl->config : NULL;
}
