/*
 * coordinator.c - the coordinator's state machine (sans-IO): the client
 * registry, deterministic client selection, tasks, updates folded in as
 * they arrive, rounds closed at quorum or at the deadline, retries, late
 * updates, and the per-round metrics. Events in, actions out; the time is
 * the host's.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl/coordinator_internal.h"

fedl_coordinator_config fedl_coordinator_defaults(void)
{
    fedl_coordinator_config c;
    memset(&c, 0, sizeof c);
    c.rounds = 5;
    c.fraction = 1.0;
    c.min_clients = 2;
    c.quorum = 1.0;
    c.min_completion = 0.5;
    c.round_timeout_ms = 60000;
    c.max_retries = 3;
    c.late = FEDL_LATE_REJECT;
    c.seed = 1;
    c.task.local_epochs = 1;
    c.task.batch = 32;
    c.task.lr = 0.05f;
    c.strategy = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    return c;
}

static fedl_status check_config(const fedl_coordinator_config *c, fedl_error *err)
{
    if (c->rounds < 1 || !(c->fraction > 0.0 && c->fraction <= 1.0) || c->min_clients < 1 ||
        c->max_clients < 0 || (c->max_clients > 0 && c->max_clients < c->min_clients) ||
        !(c->quorum > 0.0 && c->quorum <= 1.0) ||
        !(c->min_completion > 0.0 && c->min_completion <= 1.0) || c->round_timeout_ms == 0 ||
        c->max_retries < 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "coordinator: rounds %d, fraction %g, clients %d-%d, quorum %g, "
                              "min completion %g, timeout %llu ms, retries %d: out of range",
                              c->rounds, c->fraction, c->min_clients, c->max_clients, c->quorum,
                              c->min_completion, (unsigned long long)c->round_timeout_ms,
                              c->max_retries);
    if (c->late == FEDL_LATE_FOLD && !fedl_strategy_is_linear(c->strategy.kind))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "coordinator: late updates can be folded in only with a linear "
                              "strategy, not %s",
                              fedl_strategy_name(c->strategy.kind));
    if (c->task.local_epochs < 1 || c->task.batch < 1 || !(c->task.lr > 0.0f) ||
        !(c->task.proximal_mu >= 0.0f))
        return fedl_error_set(
            err, FEDL_ERR_INVALID_ARG, "coordinator: task: epochs %d, batch %d, lr %g, mu %g",
            c->task.local_epochs, c->task.batch, (double)c->task.lr, (double)c->task.proximal_mu);
    return fedl_strategy_check(&c->strategy, err);
}

void fedl_coordinator_rehash(fedl_coordinator *co)
{
    fedl_sha256(co->weights, co->params * sizeof(float), co->task.weights_sha256);
}

fedl_status fedl_coordinator_create(const fedl_coordinator_config *c, const float *weights,
                                    size_t params, fedl_allocator *alloc, fedl_coordinator **out,
                                    fedl_error *err)
{
    fedl_coordinator *co;
    fedl_status st;
    *out = NULL;
    st = check_config(c, err);
    if (st != FEDL_OK)
        return st;
    if (params == 0 || weights == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "coordinator: no model");
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    co = fedl_mem_alloc(alloc, sizeof *co);
    if (co == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator: cannot allocate");
    memset(co, 0, sizeof *co);
    co->config = *c;
    co->alloc = alloc;
    co->params = params;
    co->weights = fedl_mem_alloc_aligned(alloc, params * sizeof(float), 64);
    if (co->weights == NULL) {
        fedl_coordinator_destroy(co);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator: cannot allocate %zu weights",
                              params);
    }
    memcpy(co->weights, weights, params * sizeof(float));
    st = fedl_aggregator_create(&c->strategy, params, alloc, &co->aggregator, err);
    if (st != FEDL_OK) {
        fedl_coordinator_destroy(co);
        return st;
    }
    fedl_coordinator_rehash(co);
    *out = co;
    return FEDL_OK;
}

void fedl_coordinator_destroy(fedl_coordinator *co)
{
    if (co == NULL)
        return;
    fedl_aggregator_destroy(co->aggregator);
    fedl_mem_free_aligned(co->alloc, co->weights);
    fedl_mem_free(co->alloc, co->clients, (size_t)co->client_capacity * sizeof *co->clients);
    fedl_mem_free(co->alloc, co->order, (size_t)co->client_capacity * sizeof *co->order);
    fedl_mem_free(co->alloc, co->actions, co->action_capacity * sizeof *co->actions);
    fedl_mem_free(co->alloc, co->reasons, co->action_capacity * sizeof *co->reasons);
    fedl_mem_free(co->alloc, co, sizeof *co);
}

/* -------------------------------------------------------------- actions */

static void clear_actions(fedl_coordinator *co)
{
    co->action_count = 0;
}

/* Append an action; the reason (printf-style, may be NULL) is kept with it. */
static fedl_status push(fedl_coordinator *co, fedl_fl_action a, fedl_error *err, const char *fmt,
                        ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static fedl_status push(fedl_coordinator *co, fedl_fl_action a, fedl_error *err, const char *fmt,
                        ...)
{
    if (co->action_count == co->action_capacity) {
        size_t grown = co->action_capacity ? co->action_capacity * 2 : 16;
        fedl_fl_action *actions = fedl_mem_realloc(
            co->alloc, co->actions, co->action_capacity * sizeof *actions, grown * sizeof *actions);
        char(*reasons)[REASON_MAX];
        if (actions == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator: cannot queue actions");
        co->actions = actions;
        reasons = fedl_mem_realloc(co->alloc, co->reasons, co->action_capacity * sizeof *reasons,
                                   grown * sizeof *reasons);
        if (reasons == NULL) { /* the action array grew; its capacity stays until both do */
            return fedl_error_set(err, FEDL_ERR_NOMEM, "coordinator: cannot queue actions");
        }
        co->reasons = reasons;
        co->action_capacity = grown;
        for (size_t i = 0; i < co->action_count; i++) /* the reasons moved */
            if (co->actions[i].reason != NULL)
                co->actions[i].reason = co->reasons[i];
    }
    if (fmt != NULL) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(co->reasons[co->action_count], REASON_MAX, fmt, args);
        va_end(args);
        a.reason = co->reasons[co->action_count];
    }
    co->actions[co->action_count++] = a;
    return FEDL_OK;
}

size_t fedl_coordinator_actions(const fedl_coordinator *co, const fedl_fl_action **actions)
{
    *actions = co->actions;
    return co->action_count;
}

static fedl_status fail_run(fedl_coordinator *co, fedl_error *err, const char *reason)
{
    fedl_fl_action a = {FEDL_FL_FAILED, NULL, NULL, 0, NULL, NULL};
    co->phase = PHASE_FAILED;
    return push(co, a, err, "%s", reason);
}

/* ------------------------------------------------------------- registry */

static client_entry *find_client(fedl_coordinator *co, const char *id)
{
    for (int i = 0; i < co->client_count; i++)
        if (strcmp(co->clients[i].id, id) == 0)
            return &co->clients[i];
    return NULL;
}

static fedl_status grow_registry(fedl_coordinator *co, fedl_error *err)
{
    int grown = co->client_capacity ? co->client_capacity * 2 : 16;
    client_entry *clients;
    int *order;
    clients =
        fedl_mem_realloc(co->alloc, co->clients, (size_t)co->client_capacity * sizeof *clients,
                         (size_t)grown * sizeof *clients);
    if (clients == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "coordinator: cannot register more than %d "
                              "clients",
                              co->client_count);
    co->clients = clients;
    order = fedl_mem_realloc(co->alloc, co->order, (size_t)co->client_capacity * sizeof *order,
                             (size_t)grown * sizeof *order);
    if (order == NULL) /* clients grew; the capacity stays until both have */
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "coordinator: cannot register more than %d "
                              "clients",
                              co->client_count);
    co->order = order;
    co->client_capacity = grown;
    return FEDL_OK;
}

static fedl_status begin_round(fedl_coordinator *co, uint64_t now_ms, fedl_error *err);

fedl_status fedl_coordinator_register(fedl_coordinator *co, const char *client_id,
                                      const fedl_telemetry *telemetry, uint64_t now_ms,
                                      fedl_error *err)
{
    client_entry *c;
    size_t length = client_id != NULL ? strlen(client_id) : 0;
    clear_actions(co);
    if (length == 0 || length >= FEDL_CLIENT_ID_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "coordinator: a client id must have 1 to %d bytes",
                              FEDL_CLIENT_ID_MAX - 1);
    c = find_client(co, client_id);
    if (c == NULL) {
        fedl_status st = co->client_count == co->client_capacity ? grow_registry(co, err) : FEDL_OK;
        if (st != FEDL_OK)
            return st;
        c = &co->clients[co->client_count++];
        memset(c, 0, sizeof *c);
        memcpy(c->id, client_id, length + 1);
    }
    c->last_seen_ms = now_ms;
    if (telemetry != NULL)
        c->telemetry = *telemetry;
    /* A round waiting for clients starts as soon as there are enough. */
    if (co->phase == PHASE_WAITING)
        return begin_round(co, now_ms, err);
    return FEDL_OK;
}

int fedl_coordinator_client_count(const fedl_coordinator *co)
{
    return co->client_count;
}

/* ------------------------------------------------------------ selection */

/* Client indices sorted by id: a binary insertion sort (qsort has no
 * context argument in C11; a registry holds a few thousand clients). */
static void sort_by_id(int *idx, int n, const client_entry *clients)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], lo = 0, hi = i;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (strcmp(clients[idx[mid]].id, clients[v].id) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&idx[lo + 1], &idx[lo], (size_t)(i - lo) * sizeof *idx);
        idx[lo] = v;
    }
}

/* Clients whose telemetry says they are fine (pressure OK), sorted by id
 * so that the selection does not depend on the order they registered in,
 * then a seeded partial shuffle picks k of them: (seed, round, attempt)
 * give the same choice on every run. Returns how many were selected, or
 * -1 when fewer than min_clients are eligible. */
static int select_clients(fedl_coordinator *co)
{
    const fedl_coordinator_config *c = &co->config;
    int eligible = 0, k;
    fedl_rng rng;
    for (int i = 0; i < co->client_count; i++) {
        co->clients[i].selected = 0;
        co->clients[i].delivered = 0;
        if (co->clients[i].telemetry.pressure == 0)
            co->order[eligible++] = i;
    }
    sort_by_id(co->order, eligible, co->clients);
    k = (int)ceil(c->fraction * (double)eligible - 1e-6); /* 0.3f x 10 means 3 */
    if (k < c->min_clients)
        k = c->min_clients;
    if (c->max_clients > 0 && k > c->max_clients)
        k = c->max_clients;
    if (k > eligible)
        return eligible < c->min_clients ? -1 : eligible;
    fedl_rng_init(&rng, c->seed, ((co->version + 1) << 8) | (uint64_t)(co->attempt & 0xff));
    for (int i = 0; i < k; i++) {
        int j = i + (int)fedl_rng_below(&rng, (uint32_t)(eligible - i)), t = co->order[i];
        co->order[i] = co->order[j];
        co->order[j] = t;
    }
    return k;
}

/* --------------------------------------------------------------- rounds */

static int count_eligible(const fedl_coordinator *co)
{
    int n = 0;
    for (int i = 0; i < co->client_count; i++)
        n += co->clients[i].telemetry.pressure == 0;
    return n;
}

/* Too few clients: wait for more (a registration starts the round at
 * once) or for the timer, counted as an attempt. */
static fedl_status wait_for_clients(fedl_coordinator *co, uint64_t now_ms, fedl_error *err)
{
    fedl_fl_action timer = {FEDL_FL_SET_TIMER, NULL, NULL, 0, NULL, NULL};
    char reason[REASON_MAX];
    if (co->attempt > co->config.max_retries + 1) {
        snprintf(reason, sizeof reason,
                 "round %llu: %d eligible clients of %d registered, %d needed, after %d "
                 "attempts",
                 (unsigned long long)co->version + 1, count_eligible(co), co->client_count,
                 co->config.min_clients, co->attempt - 1);
        return fail_run(co, err, reason);
    }
    co->phase = PHASE_WAITING;
    co->wait_until_ms = now_ms + co->config.round_timeout_ms;
    timer.time_ms = co->wait_until_ms;
    return push(co, timer, err, NULL);
}

static fedl_status send_tasks(fedl_coordinator *co, uint64_t now_ms, fedl_error *err)
{
    fedl_fl_action timer = {FEDL_FL_SET_TIMER, NULL, NULL, 0, NULL, NULL};
    fedl_status st = FEDL_OK;
    co->task.round = co->version + 1;
    co->task.model_version = co->version;
    co->task.config = co->config.task;
    co->task.deadline_ms = now_ms + co->config.round_timeout_ms;
    co->task.weights = co->weights;
    co->task.params = co->params;
    for (int i = 0; i < co->selected && st == FEDL_OK; i++) {
        client_entry *c = &co->clients[co->order[i]];
        fedl_fl_action a = {FEDL_FL_SEND_TASK, c->id, &co->task, 0, NULL, NULL};
        c->selected = 1;
        st = push(co, a, err, NULL);
    }
    co->metrics.bytes_out += (uint64_t)co->selected * co->params * sizeof(float);
    timer.time_ms = co->task.deadline_ms;
    return st == FEDL_OK ? push(co, timer, err, NULL) : st;
}

/* Select and send the tasks of the next round (a new attempt of it). */
static fedl_status begin_round(fedl_coordinator *co, uint64_t now_ms, fedl_error *err)
{
    int k;
    if (co->version >= (uint64_t)co->config.rounds) {
        fedl_fl_action done = {FEDL_FL_FINISHED, NULL, NULL, 0, NULL, NULL};
        co->phase = PHASE_FINISHED;
        return push(co, done, err, NULL);
    }
    co->attempt++;
    if (co->attempt == 1) {
        memset(&co->metrics, 0, sizeof co->metrics);
        co->metrics.round = co->version + 1;
        co->metrics.started_ms = now_ms;
    }
    co->metrics.attempts = co->attempt;
    k = select_clients(co);
    if (k < 0)
        return wait_for_clients(co, now_ms, err);
    co->phase = PHASE_OPEN;
    co->selected = k;
    co->received = 0;
    co->loss_sum = 0.0;
    fedl_aggregator_begin(co->aggregator);
    return send_tasks(co, now_ms, err);
}

fedl_status fedl_coordinator_start(fedl_coordinator *co, uint64_t now_ms, fedl_error *err)
{
    clear_actions(co);
    if (co->phase != PHASE_IDLE)
        return fedl_error_set(err, FEDL_ERR_STATE, "coordinator: already started");
    co->attempt = 0;
    return begin_round(co, now_ms, err);
}

/* The round got what it needed: aggregate, report, persist, go on. */
static fedl_status close_round(fedl_coordinator *co, uint64_t now_ms, int by_deadline,
                               fedl_error *err)
{
    fedl_fl_action report = {FEDL_FL_ROUND_DONE, NULL, NULL, 0, &co->reported, NULL};
    fedl_fl_action persist = {FEDL_FL_PERSIST, NULL, NULL, 0, NULL, NULL};
    fedl_error inner;
    fedl_status st = fedl_aggregator_finish(co->aggregator, co->weights, &inner);
    if (st != FEDL_OK) {
        char reason[REASON_MAX];
        snprintf(reason, sizeof reason, "round %llu: aggregation failed: %.200s",
                 (unsigned long long)co->version + 1, inner.message);
        return fail_run(co, err, reason);
    }
    co->version++;
    fedl_coordinator_rehash(co);
    co->metrics.selected = co->selected;
    co->metrics.completed = co->received;
    co->metrics.dropped += co->selected - co->received;
    co->metrics.samples = (uint64_t)fedl_aggregator_samples(co->aggregator);
    co->metrics.train_loss =
        co->metrics.samples > 0 ? co->loss_sum / (double)co->metrics.samples : 0.0;
    co->metrics.closed_ms = now_ms;
    co->metrics.closed_by_deadline = by_deadline;
    co->reported = co->metrics;
    co->phase = PHASE_IDLE;
    co->attempt = 0;
    st = push(co, report, err, NULL);
    if (st == FEDL_OK)
        st = push(co, persist, err, NULL);
    return st == FEDL_OK ? begin_round(co, now_ms, err) : st;
}

static int quorum_count(const fedl_coordinator *co)
{
    /* the tolerance of a float setting: 0.8f x 5 is 4.0000001, which means 4 */
    int n = (int)ceil(co->config.quorum * (double)co->selected - 1e-6);
    return n < 1 ? 1 : n;
}

static fedl_status reject(fedl_coordinator *co, const fedl_update *u, fedl_error *err,
                          const char *why)
{
    fedl_fl_action a = {FEDL_FL_REJECT, u->client_id, NULL, 0, NULL, NULL};
    co->metrics.rejected++;
    return push(co, a, err, "%s", why);
}

/* A delta, or weights whose delta is taken against the global weights
 * (for a late update: the current ones, which it did not start from). */
static fedl_status add_to_aggregator(fedl_coordinator *co, const fedl_update *u, double weight,
                                     fedl_error *err)
{
    if (u->kind == FEDL_UPDATE_WEIGHTS)
        return fedl_aggregator_add_weights(co->aggregator, u->client_id, u->values, co->weights,
                                           u->params, weight, err);
    return fedl_aggregator_add(co->aggregator, u->client_id, u->values, u->params, weight, err);
}

/* An update for a round already closed. */
static fedl_status late_update(fedl_coordinator *co, const fedl_update *u, fedl_error *err)
{
    char why[REASON_MAX];
    fedl_error inner;
    uint64_t staleness = co->version - u->model_version;
    if (co->config.late != FEDL_LATE_FOLD || co->phase != PHASE_OPEN ||
        u->model_version >= co->version) {
        snprintf(why, sizeof why, "round %llu is closed (the coordinator is at round %llu)",
                 (unsigned long long)u->round, (unsigned long long)co->version + 1);
        return reject(co, u, err, why);
    }
    if (add_to_aggregator(co, u, (double)u->samples / (double)(1 + staleness), &inner) != FEDL_OK) {
        snprintf(why, sizeof why, "late update refused: %.200s", inner.message);
        return reject(co, u, err, why);
    }
    co->metrics.late_folded++;
    co->metrics.bytes_in += u->params * sizeof(float);
    return FEDL_OK;
}

fedl_status fedl_coordinator_update(fedl_coordinator *co, const fedl_update *u, uint64_t now_ms,
                                    fedl_error *err)
{
    client_entry *c;
    char why[REASON_MAX];
    fedl_error inner;
    clear_actions(co);
    if (u == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "coordinator: no update");
    c = memchr(u->client_id, '\0', sizeof u->client_id) != NULL ? find_client(co, u->client_id)
                                                                : NULL;
    if (c == NULL)
        return reject(co, u, err, "unknown client: register first");
    c->last_seen_ms = now_ms;
    c->telemetry = u->telemetry;
    if (co->phase != PHASE_OPEN || u->round != co->version + 1) {
        if (u->round <= co->version)
            return late_update(co, u, err);
        if (u->round == co->version + 1)
            snprintf(why, sizeof why,
                     "round %llu is not open (not yet, or restarting after a restore)",
                     (unsigned long long)u->round);
        else
            snprintf(why, sizeof why,
                     "round %llu has not started (the coordinator is at round %llu)",
                     (unsigned long long)u->round, (unsigned long long)co->version + 1);
        return reject(co, u, err, why);
    }
    if (!c->selected) {
        snprintf(why, sizeof why, "not selected for round %llu", (unsigned long long)u->round);
        return reject(co, u, err, why);
    }
    if (c->delivered) {
        snprintf(why, sizeof why, "duplicate update for round %llu", (unsigned long long)u->round);
        return reject(co, u, err, why);
    }
    if (u->model_version != co->version) {
        snprintf(why, sizeof why, "trained from model version %llu, the task was version %llu",
                 (unsigned long long)u->model_version, (unsigned long long)co->version);
        return reject(co, u, err, why);
    }
    if (add_to_aggregator(co, u, (double)u->samples, &inner) != FEDL_OK) {
        snprintf(why, sizeof why, "%.240s", inner.message);
        return reject(co, u, err, why);
    }
    c->delivered = 1;
    co->received++;
    co->loss_sum += u->train_loss * (double)u->samples;
    co->metrics.bytes_in += u->params * sizeof(float);
    if (co->received >= quorum_count(co))
        return close_round(co, now_ms, 0, err);
    return FEDL_OK;
}

/* A partial refused whole: REJECT naming the aggregator. */
static fedl_status reject_partial(fedl_coordinator *co, const fedl_partial *p, fedl_error *err,
                                  const char *why)
{
    fedl_fl_action a = {FEDL_FL_REJECT, p->aggregator_id, NULL, 0, NULL, NULL};
    co->metrics.rejected++;
    return push(co, a, err, "partial sum of %d updates: %s", p->count, why);
}

/* Why the clients of a partial cannot all count now (NULL: they can). */
static const char *partial_clients_problem(fedl_coordinator *co, const fedl_partial *p, char *why,
                                           size_t size)
{
    for (int i = 0; i < p->count; i++) {
        const char *id = p->clients[i];
        client_entry *c = memchr(id, '\0', FEDL_CLIENT_ID_MAX) != NULL ? find_client(co, id) : NULL;
        if (c == NULL)
            snprintf(why, size, "client %.64s is not registered", id);
        else if (!c->selected)
            snprintf(why, size, "client %.64s was not selected for round %llu", id,
                     (unsigned long long)p->round);
        else if (c->delivered)
            snprintf(why, size, "client %.64s already delivered round %llu", id,
                     (unsigned long long)p->round);
        else
            continue;
        return why;
    }
    for (int i = 0; i < p->count; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(p->clients[k], p->clients[i]) == 0)
                return snprintf(why, size, "client %.64s counted twice", p->clients[i]), why;
    return NULL;
}

fedl_status fedl_coordinator_partial(fedl_coordinator *co, const fedl_partial *p, uint64_t now_ms,
                                     fedl_error *err)
{
    char why[REASON_MAX];
    fedl_error inner;
    clear_actions(co);
    if (p == NULL || p->clients == NULL || p->count < 1 ||
        memchr(p->aggregator_id, '\0', sizeof p->aggregator_id) == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "coordinator: no partial");
    if (co->phase != PHASE_OPEN || p->round != co->version + 1) {
        snprintf(why, sizeof why, "round %llu is not open (the coordinator is at round %llu)",
                 (unsigned long long)p->round, (unsigned long long)co->version + 1);
        return reject_partial(co, p, err, why);
    }
    if (p->model_version != co->version) {
        snprintf(why, sizeof why, "trained from model version %llu, the task was version %llu",
                 (unsigned long long)p->model_version, (unsigned long long)co->version);
        return reject_partial(co, p, err, why);
    }
    if (partial_clients_problem(co, p, why, sizeof why) != NULL)
        return reject_partial(co, p, err, why);
    if (fedl_aggregator_add_partial(co->aggregator, p->aggregator_id, p->sum, p->params, p->samples,
                                    p->count, &inner) != FEDL_OK) {
        snprintf(why, sizeof why, "%.240s", inner.message);
        return reject_partial(co, p, err, why);
    }
    for (int i = 0; i < p->count; i++) {
        client_entry *c = find_client(co, p->clients[i]);
        c->delivered = 1;
        c->last_seen_ms = now_ms;
    }
    co->received += p->count;
    co->loss_sum += p->loss_sum;
    co->metrics.bytes_in += p->params * sizeof(double);
    if (co->received >= quorum_count(co))
        return close_round(co, now_ms, 0, err);
    return FEDL_OK;
}

fedl_status fedl_coordinator_timer(fedl_coordinator *co, uint64_t now_ms, fedl_error *err)
{
    int needed;
    clear_actions(co);
    if (co->phase == PHASE_WAITING && now_ms >= co->wait_until_ms)
        return begin_round(co, now_ms, err);
    if (co->phase != PHASE_OPEN || now_ms < co->task.deadline_ms)
        return FEDL_OK; /* an old timer */
    needed = (int)ceil(co->config.min_completion * (double)co->selected - 1e-6);
    if (needed < 1)
        needed = 1;
    if (co->received >= needed)
        return close_round(co, now_ms, 1, err);
    if (co->attempt > co->config.max_retries) {
        char reason[REASON_MAX];
        snprintf(reason, sizeof reason,
                 "round %llu: %d of %d selected clients delivered by the deadline (%d needed), "
                 "%d attempts",
                 (unsigned long long)co->version + 1, co->received, co->selected, needed,
                 co->attempt);
        return fail_run(co, err, reason);
    }
    /* Retry the round from scratch with another selection. */
    co->metrics.dropped += co->selected - co->received;
    return begin_round(co, now_ms, err);
}

const float *fedl_coordinator_weights(const fedl_coordinator *co, uint64_t *version)
{
    if (version != NULL)
        *version = co->version;
    return co->weights;
}

int fedl_coordinator_round_open(const fedl_coordinator *co)
{
    return co->phase == PHASE_OPEN;
}
