/*
 * cmd_aggregate.c - `fedl aggregate`: one of several aggregator processes
 * that share a job's incoming updates (scale-out). Each is a member of an
 * MQTT shared subscription to update/+, so the broker hands every update
 * to one of them; it checks the update (the device's signature, the
 * round's task, selection, size, finite values), folds it into a running
 * sum in double precision (O(model) memory, like the coordinator), and
 * every --flush-count updates or --flush-ms after the first unsent one it
 * publishes the sum as a signed partial on partial/<id>. The coordinator
 * (fedl serve --aggregators) combines the partials and applies the
 * strategy's server step.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"
#include "net_common.h"

typedef struct aggregate_options {
    net_options net;
    const char *id, *key, *coordinator_key, *devices, *group;
    int flush_count;
    uint64_t flush_ms;
} aggregate_options;

static const char aggregate_usage[] =
    "One of several aggregators of a federated job (scale-out): the broker shares\n"
    "the devices' updates among the members of --group; each folds the ones it\n"
    "gets into a partial sum and sends it to the coordinator (fedl serve\n"
    "--aggregators) every --flush-count updates or --flush-ms after the first.\n"
    "Updates are taken only from devices whose key is in --devices, tasks only\n"
    "when signed by --coordinator-key. A shared subscription hands whole MQTT\n"
    "messages around, so devices must send each update in one chunk\n"
    "(fedl join --chunk-kib above the update's size).\n"
    "Example:\n"
    "  fedl aggregate --broker mqtts://broker:8883 --ca ca.crt --cert agg-1.crt \\\n"
    "      --tls-key agg-1.tls.key --job fmnist --id agg-1 --key agg-1.key \\\n"
    "      --coordinator-key coordinator.pub --devices devices.pub\n";

typedef struct host {
    const aggregate_options *o;
    fedl_channel *ch;
    fedl_aggregator *sum; /* fedavg: the unsent updates' running sum */
    size_t params;
    float *base;   /* (params) the task's weights: a weights update's delta is taken against them */
    float *values; /* (params) an update's values */
    uint8_t *body; /* a partial message */
    size_t body_capacity;
    fedl_sign_keypair key;
    uint8_t coordinator_key[FEDL_WIRE_PUBLIC_KEY_BYTES];
    fedl_key_entry *devices;
    int device_count;
    /* the task under way */
    uint64_t round, version, task_sequence;
    char (*selected)[FEDL_CLIENT_ID_MAX]; /* (selected_count) */
    int selected_count;
    char (*folded)[FEDL_CLIENT_ID_MAX]; /* (folded_capacity) this round's, sent or not */
    int folded_count, folded_capacity, unsent;
    double loss_sum; /* of the unsent: train_loss x samples */
    uint64_t flush_at_ms;
    uint64_t updates, partials;
    uint64_t started_us; /* wall clock at start: control words sent before are stale */
    int finished, failed, fatal;
} host;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Tasks and control from the coordinator's key, updates from the devices'. */
static int key_of(void *user, const char *sender, fedl_msg_type type, uint8_t *public_key)
{
    host *h = user;
    if (h->o->net.insecure)
        return 0;
    if (type == FEDL_MSG_TASK || type == FEDL_MSG_CONTROL) {
        if (strcmp(sender, "coordinator") != 0)
            return -1;
        memcpy(public_key, h->coordinator_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
        return 1;
    }
    if (type != FEDL_MSG_UPDATE)
        return -1;
    for (int i = 0; i < h->device_count; i++)
        if (strcmp(h->devices[i].id, sender) == 0) {
            memcpy(public_key, h->devices[i].public_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
            return 1;
        }
    return -1;
}

static void on_drop(void *user, const char *topic, const char *sender, const char *reason)
{
    (void)user;
    fprintf(stderr, "fedl aggregate: dropped a message on %s from %s: %s\n", topic,
            sender != NULL ? sender : "?", reason);
}

static void on_connection(void *user, int connected, const char *reason)
{
    (void)user;
    fprintf(stderr, "fedl aggregate: broker %s (%s)\n", connected ? "connected" : "lost", reason);
}

/* Publish the unsent updates' sum as one partial, and start a new sum. */
static int flush(host *h)
{
    fedl_partial p;
    fedl_error err = {0};
    size_t length, need;
    char suffix[128];
    if (h->unsent == 0)
        return 0;
    memset(&p, 0, sizeof p);
    p.model_version = h->version;
    p.count = h->unsent;
    p.clients = (const char(*)[FEDL_CLIENT_ID_MAX])(h->folded + (h->folded_count - h->unsent));
    p.sum = fedl_aggregator_sum(h->sum);
    p.params = h->params;
    p.samples = fedl_aggregator_samples(h->sum);
    p.loss_sum = h->loss_sum;
    need = fedl_partial_message_size(&p);
    if (need > h->body_capacity) {
        uint8_t *grown = realloc(h->body, need);
        if (grown == NULL)
            return fprintf(stderr, "fedl aggregate: out of memory\n"), 1;
        h->body = grown;
        h->body_capacity = need;
    }
    snprintf(suffix, sizeof suffix, "partial/%s", h->o->id);
    if (fedl_partial_message_encode(&p, h->body, h->body_capacity, &length, &err) != FEDL_OK ||
        fedl_channel_send(h->ch, suffix, FEDL_MSG_PARTIAL, h->round, h->body, length, 0, &err) !=
            FEDL_OK)
        return fprintf(stderr, "fedl aggregate: partial of round %llu: %s\n",
                       (unsigned long long)h->round, err.message),
               1;
    printf("round %llu: partial of %d updates sent (%zu bytes)\n", (unsigned long long)h->round,
           h->unsent, length);
    fflush(stdout);
    h->partials++;
    h->unsent = 0;
    h->loss_sum = 0.0;
    h->flush_at_ms = 0;
    fedl_aggregator_begin(h->sum);
    return 0;
}

/* The model's size from the first task: the buffers and the running sum. */
static int size_for(host *h, size_t params)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    fedl_error err = {0};
    if (h->sum != NULL && params == h->params)
        return 0;
    fedl_aggregator_destroy(h->sum);
    h->sum = NULL;
    free(h->base);
    free(h->values);
    h->params = params;
    h->base = malloc(params * sizeof(float));
    h->values = malloc(params * sizeof(float));
    if (h->base == NULL || h->values == NULL)
        return fprintf(stderr, "fedl aggregate: out of memory\n"), 1;
    if (fedl_aggregator_create(&c, params, NULL, &h->sum, &err) != FEDL_OK)
        return fprintf(stderr, "fedl aggregate: %s\n", err.message), 1;
    return 0;
}

/* The selected ids of a decoded task, copied. */
static int copy_selected(host *h, const fedl_task_message *m)
{
    const uint8_t *p = m->selected_bytes;
    char(*ids)[FEDL_CLIENT_ID_MAX] = realloc(h->selected, (size_t)m->selected_count * sizeof *ids);
    if (ids == NULL)
        return fprintf(stderr, "fedl aggregate: out of memory\n"), 1;
    h->selected = ids;
    for (int i = 0; i < m->selected_count; i++) {
        memcpy(ids[i], p + 1, p[0]);
        ids[i][p[0]] = '\0';
        p += 1 + p[0];
    }
    h->selected_count = m->selected_count;
    if (h->folded_capacity < m->selected_count) {
        char(*folded)[FEDL_CLIENT_ID_MAX] =
            realloc(h->folded, (size_t)m->selected_count * sizeof *folded);
        if (folded == NULL)
            return fprintf(stderr, "fedl aggregate: out of memory\n"), 1;
        h->folded = folded;
        h->folded_capacity = m->selected_count;
    }
    return 0;
}

/* A new task (a round, a retry of one, or a fresh run's first): what is
 * unsent goes to the coordinator, which judges it; then a fresh sum
 * against the new weights. */
static void on_task(host *h, const fedl_wire_frame *f, const uint8_t *body, size_t length)
{
    fedl_task_message m;
    fedl_error err = {0};
    if (fedl_task_message_decode(body, length, &m, &err) != FEDL_OK) {
        fprintf(stderr, "fedl aggregate: task dropped: %s\n", err.message);
        return;
    }
    if (f->sequence <= h->task_sequence)
        return; /* the coordinator's sequence grows: this one is older than the task held */
    if (flush(h) != 0 || size_for(h, m.task.params) != 0 || copy_selected(h, &m) != 0) {
        h->fatal = 1;
        return;
    }
    fedl_task_message_weights(&m, h->base);
    h->round = f->round;
    h->version = m.task.model_version;
    h->task_sequence = f->sequence;
    h->folded_count = 0;
    fedl_aggregator_begin(h->sum);
    printf("round %llu: task of model version %llu for %d devices\n", (unsigned long long)h->round,
           (unsigned long long)h->version, h->selected_count);
    fflush(stdout);
}

static int listed(char (*ids)[FEDL_CLIENT_ID_MAX], int count, const char *id)
{
    for (int i = 0; i < count; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

/* Why this update cannot be folded now (NULL: it can). */
static const char *update_problem(const host *h, const fedl_wire_frame *f, const fedl_update *u,
                                  char *why, size_t size)
{
    if (h->sum == NULL || f->round != h->round || u->model_version != h->version)
        snprintf(why, size, "round %llu from model version %llu; the task under way is round %llu",
                 (unsigned long long)f->round, (unsigned long long)u->model_version,
                 (unsigned long long)h->round);
    else if (!listed(h->selected, h->selected_count, f->sender))
        snprintf(why, size, "not selected for round %llu", (unsigned long long)h->round);
    else if (listed(h->folded, h->folded_count, f->sender))
        snprintf(why, size, "a second update for round %llu", (unsigned long long)h->round);
    else
        return NULL;
    return why;
}

static void on_update(host *h, const fedl_wire_frame *f, const uint8_t *body, size_t length)
{
    fedl_update u;
    fedl_error err = {0};
    fedl_status st;
    char why[256];
    if (h->sum == NULL) {
        fprintf(stderr, "fedl aggregate: update of %s dropped: no task seen yet\n", f->sender);
        return;
    }
    if (fedl_update_message_decode(body, length, h->values, h->params, &u, &err) != FEDL_OK) {
        fprintf(stderr, "fedl aggregate: update of %s dropped: %s\n", f->sender, err.message);
        return;
    }
    if (update_problem(h, f, &u, why, sizeof why) != NULL) {
        fprintf(stderr, "fedl aggregate: update of %s refused: %s\n", f->sender, why);
        return;
    }
    st = u.kind == FEDL_UPDATE_WEIGHTS
             ? fedl_aggregator_add_weights(h->sum, f->sender, u.values, h->base, u.params,
                                           (double)u.samples, &err)
             : fedl_aggregator_add(h->sum, f->sender, u.values, u.params, (double)u.samples, &err);
    if (st != FEDL_OK) {
        fprintf(stderr, "fedl aggregate: update of %s refused: %s\n", f->sender, err.message);
        return;
    }
    snprintf(h->folded[h->folded_count++], FEDL_CLIENT_ID_MAX, "%s", f->sender);
    h->unsent++;
    h->updates++;
    h->loss_sum += u.train_loss * (double)u.samples;
    if (h->unsent >= h->o->flush_count) {
        if (flush(h) != 0)
            h->fatal = 1;
    } else if (h->unsent == 1) {
        h->flush_at_ms = net_now_ms() + h->o->flush_ms;
    }
}

static void on_message(void *user, const fedl_wire_frame *f, const uint8_t *body, size_t length,
                       int retained)
{
    host *h = user;
    if (f->type == FEDL_MSG_TASK)
        on_task(h, f, body, length);
    else if (f->type == FEDL_MSG_UPDATE)
        on_update(h, f, body, length);
    else if (f->type == FEDL_MSG_CONTROL) {
        int command = net_control("aggregate", f, body, length, retained, h->started_us);
        h->finished |= command == FEDL_CONTROL_FINISHED;
        h->failed |= command == FEDL_CONTROL_FAILED;
    }
}

static int load_keys(host *h, const aggregate_options *o)
{
    fedl_key_entry *keys = NULL;
    int count = 0;
    char id[FEDL_WIRE_SENDER_MAX];
    if (o->net.insecure)
        return 0;
    if (o->key == NULL || o->coordinator_key == NULL || o->devices == NULL)
        return fprintf(stderr, "fedl aggregate: --key, --coordinator-key and --devices are "
                               "required (or --insecure in a lab)\n"),
               2;
    if (net_load_secret("aggregate", o->key, &h->key, id) != 0 ||
        net_load_public("aggregate", o->coordinator_key, &keys, &count) != 0 ||
        net_load_public("aggregate", o->devices, &h->devices, &h->device_count) != 0) {
        fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
        return 1;
    }
    memcpy(h->coordinator_key, keys[0].public_key, sizeof h->coordinator_key);
    fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
    if (strcmp(id, o->id) != 0)
        return fprintf(stderr, "fedl aggregate: --key %s is %s's, not %s's\n", o->key, id, o->id),
               2;
    return 0;
}

static int setup(host *h, aggregate_options *o)
{
    fedl_channel_options co;
    fedl_channel_callbacks cb = {key_of, on_message, on_drop, on_connection, h};
    fedl_error err = {0};
    int rc = load_keys(h, o);
    if (rc != 0)
        return rc;
    rc = net_channel_options("aggregate", &o->net, o->id, &co);
    if (rc != 0)
        return rc;
    co.secret_key = o->net.insecure ? NULL : h->key.secret_key;
    co.mqtt.protocol_v5 = 1;
    co.mqtt.clean_session = 1; /* a member that is gone leaves the group at once */
    co.whole_type = FEDL_MSG_UPDATE;
    if (fedl_channel_open(&co, &cb, &h->ch, &err) != FEDL_OK)
        return fprintf(stderr, "fedl aggregate: %s\n", err.message), 1;
    if (fedl_channel_subscribe(h->ch, "task/+", &err) != FEDL_OK ||
        fedl_channel_subscribe(h->ch, "control/+", &err) != FEDL_OK ||
        fedl_channel_subscribe_shared(h->ch, o->group, "update/+", &err) != FEDL_OK)
        return fprintf(stderr, "fedl aggregate: %s\n", err.message), 1;
    return 0;
}

static void teardown(host *h)
{
    fedl_channel_close(h->ch);
    fedl_aggregator_destroy(h->sum);
    fedl_mem_free(NULL, h->devices, (size_t)h->device_count * sizeof *h->devices);
    free(h->base);
    free(h->values);
    free(h->body);
    free(h->selected);
    free(h->folded);
    memset(&h->key, 0, sizeof h->key);
}

static int run(host *h)
{
    fedl_error err = {0};
    while (!h->finished && !h->failed && !h->fatal && !stop_requested) {
        if (fedl_channel_run(h->ch, 20, &err) != FEDL_OK)
            return fprintf(stderr, "fedl aggregate: %s\n", err.message), 1;
        if (h->flush_at_ms != 0 && net_now_ms() >= h->flush_at_ms && flush(h) != 0)
            return 1;
    }
    if (!h->fatal && flush(h) != 0)
        return 1;
    return h->fatal || h->failed || (stop_requested && !h->finished);
}

int cmd_aggregate(int argc, char **argv)
{
    aggregate_options o = {.group = "aggregators", .flush_count = 8, .flush_ms = 200};
    cli_option options[NET_OPTION_COUNT + 8];
    const cli_option own[] = {
        {"id", CLI_STRING, &o.id, "NAME", "this aggregator's name (its key's id), required", 0, 0},
        {"key", CLI_STRING, &o.key, "FILE", "this aggregator's secret key (fedl keygen)", 0, 0},
        {"coordinator-key", CLI_STRING, &o.coordinator_key, "FILE", "the coordinator's public key",
         0, 0},
        {"devices", CLI_STRING, &o.devices, "FILE", "the devices' public keys, one line each", 0,
         0},
        {"group", CLI_STRING, &o.group, "NAME", "the shared subscription's group [aggregators]", 0,
         0},
        {"flush-count", CLI_INT, &o.flush_count, "N", "send a partial every N updates [8]", 1,
         1000000},
        {"flush-ms", CLI_U64, &o.flush_ms, "MS", "or this long after the first unsent update [200]",
         0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    host h;
    int rc;
    net_option_table(&o.net, options);
    memcpy(options + NET_OPTION_COUNT, own, sizeof own);
    rc = cli_parse("aggregate", aggregate_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.id == NULL) {
        fprintf(stderr, "fedl aggregate: --id NAME is required\n");
        return 2;
    }
    memset(&h, 0, sizeof h);
    h.o = &o;
    h.started_us = net_now_ms() * 1000u;
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    rc = setup(&h, &o);
    if (rc == 0) {
        printf("aggregate: job %s, %s in group %s; a partial every %d updates or %llu ms\n",
               o.net.job, o.id, o.group, o.flush_count, (unsigned long long)o.flush_ms);
        fflush(stdout);
        rc = run(&h);
    }
    if (rc == 0 || h.ch != NULL)
        printf("summary: %llu updates folded into %llu partials; %llu messages dropped; peak RSS "
               "%.1f MiB\n",
               (unsigned long long)h.updates, (unsigned long long)h.partials,
               (unsigned long long)(h.ch != NULL ? fedl_channel_dropped(h.ch) : 0),
               (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    teardown(&h);
    return rc;
}
