/*
 * cmd_serve.c - `fedl serve`: the coordinator of a federated job over an
 * MQTT broker. The coordinator state machine of fedl/fl.h, unchanged,
 * driven by the wall clock and a fedl_channel: devices announce
 * themselves on status/<id> and are registered; each round's tasks go out
 * as one signed, retained task message naming the selected devices;
 * updates arrive on update/<id>, checked (signature by the device's
 * registered key, topic, size, replay) before the state machine sees
 * them; the coordinator is checkpointed after every round and resumes
 * from there when run again. With --aggregators (scale-out) the updates go
 * to aggregator processes (fedl aggregate) that share them through an MQTT
 * shared subscription, and the coordinator takes their partial sums from
 * partial/<id> instead.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"
#include "net_common.h"
#include "round_report.h"

typedef struct serve_options {
    net_options net;
    const char *model, *data, *strategy, *key, *devices, *aggregators, *ckpt_dir, *metrics, *out,
        *late;
    int rounds, min_clients, max_clients, local_epochs, batch, retries, wait_clients, test_limit,
        quiet;
    float fraction, quorum, lr, momentum, mu, server_lr;
    uint64_t seed, timeout_ms, wait_ms;
} serve_options;

static const char serve_usage[] =
    "The coordinator of a federated job: devices (fedl join) connect through the\n"
    "MQTT --broker, and each round a --fraction of them train --local-epochs on\n"
    "their own data and send updates that --strategy combines. Tasks are signed\n"
    "with --key; updates are taken only from devices whose key is in --devices.\n"
    "Rounds start once --wait-clients devices are online. With --ckpt-dir it\n"
    "resumes at its last completed round when run again.\n"
    "Example:\n"
    "  fedl serve --broker mqtts://broker:8883 --ca ca.crt --cert coordinator.crt \\\n"
    "      --tls-key coordinator.tls.key --job fmnist --rounds 20 --model lenet5 \\\n"
    "      --data /usr/share/datasets/fashion-mnist --key coordinator.key \\\n"
    "      --devices devices.pub --ckpt-dir state\n";

typedef struct server {
    const serve_options *o;
    fedl_channel *ch;
    fedl_coordinator *co;
    fedl_model *model; /* the global model: spec, evaluation, --out */
    fedl_dataset test;
    size_t params;
    fedl_sign_keypair key;
    fedl_key_entry *devices, *aggregators;
    int device_count, aggregator_count;
    float *values;                           /* (params) an update's values */
    double *sums;                            /* (params) scale-out: a partial's sums */
    char (*partial_ids)[FEDL_CLIENT_ID_MAX]; /* (partial_capacity) scale-out: a partial's clients */
    int partial_capacity;                    /* the devices registered: a partial names no more */
    uint8_t *body;                           /* a task message */
    size_t body_capacity;
    const char **selected; /* (capacity) the ids of a round's tasks */
    char (*selected_ids)[FEDL_CLIENT_ID_MAX];
    int selected_count, selected_capacity;
    fedl_task task;
    uint64_t timer_ms, start_ms;
    int started, finished, failed, fatal;
    int control_sent; /* the end of the run was announced: once, or persistent sessions queue
                         the repeats for devices that already left */
    char reason[512];
    char ckpt_path[4096];
    FILE *metrics;
} server;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Partials from the aggregators' keys, the rest from the devices'. */
static int key_of(void *user, const char *sender, fedl_msg_type type, uint8_t *public_key)
{
    server *s = user;
    const fedl_key_entry *keys = type == FEDL_MSG_PARTIAL ? s->aggregators : s->devices;
    int count = type == FEDL_MSG_PARTIAL ? s->aggregator_count : s->device_count;
    if (s->o->net.insecure)
        return 0;
    for (int i = 0; i < count; i++)
        if (strcmp(keys[i].id, sender) == 0) {
            memcpy(public_key, keys[i].public_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
            return 1;
        }
    return -1;
}

static void on_drop(void *user, const char *topic, const char *sender, const char *reason)
{
    (void)user;
    fprintf(stderr, "fedl serve: dropped a message on %s from %s: %s\n", topic,
            sender != NULL ? sender : "?", reason);
}

static void on_connection(void *user, int connected, const char *reason)
{
    (void)user;
    fprintf(stderr, "fedl serve: broker %s (%s)\n", connected ? "connected" : "lost", reason);
}

static int handle_actions(server *s);

static int add_selected(server *s, const char *id)
{
    if (s->selected_count == s->selected_capacity) {
        int grown = s->selected_capacity ? s->selected_capacity * 2 : 64;
        const char **ids = realloc(s->selected, (size_t)grown * sizeof *ids);
        char(*store)[FEDL_CLIENT_ID_MAX] = realloc(s->selected_ids, (size_t)grown * sizeof *store);
        if (ids != NULL)
            s->selected = ids;
        if (store != NULL)
            s->selected_ids = store;
        if (ids == NULL || store == NULL)
            return -1;
        s->selected_capacity = grown;
    }
    snprintf(s->selected_ids[s->selected_count], FEDL_CLIENT_ID_MAX, "%s", id);
    s->selected_count++;
    return 0;
}

/* One retained task message for all of the round's selected devices. */
static int publish_task(server *s)
{
    fedl_task_message m;
    fedl_error err = {0};
    size_t length, need;
    uint64_t now = net_now_ms();
    memset(&m, 0, sizeof m);
    for (int i = 0; i < s->selected_count; i++)
        s->selected[i] = s->selected_ids[i];
    m.task = s->task;
    m.spec = fedl_model_spec(s->model);
    m.spec_length = strlen(m.spec);
    m.deadline_in_ms = s->task.deadline_ms > now ? s->task.deadline_ms - now : 0;
    m.selected = s->selected;
    m.selected_count = s->selected_count;
    need = fedl_task_message_size(&m);
    if (need > s->body_capacity) {
        uint8_t *grown = realloc(s->body, need);
        if (grown == NULL)
            return fprintf(stderr, "fedl serve: out of memory\n"), 1;
        s->body = grown;
        s->body_capacity = need;
    }
    if (fedl_task_message_encode(&m, s->body, s->body_capacity, &length, &err) != FEDL_OK ||
        fedl_channel_send(s->ch, "task", FEDL_MSG_TASK, s->task.round, s->body, length, 1, &err) !=
            FEDL_OK)
        return fprintf(stderr, "fedl serve: task of round %llu: %s\n",
                       (unsigned long long)s->task.round, err.message),
               1;
    printf("round %llu: task sent to %d devices (%zu bytes)\n", (unsigned long long)s->task.round,
           s->selected_count, length);
    fflush(stdout);
    return 0;
}

static int send_control(server *s, fedl_control_command command, const char *text)
{
    uint8_t body[16 + FEDL_CONTROL_TEXT_MAX];
    size_t length;
    uint64_t version;
    fedl_error err = {0};
    fedl_coordinator_weights(s->co, &version);
    fedl_control_message_encode(command, version, text, body, &length);
    if (fedl_channel_send(s->ch, "control", FEDL_MSG_CONTROL, version, body, length, 1, &err) !=
        FEDL_OK)
        return fprintf(stderr, "fedl serve: control: %s\n", err.message), 1;
    return 0;
}

static int handle_actions(server *s)
{
    const fedl_fl_action *a;
    size_t n = fedl_coordinator_actions(s->co, &a);
    fedl_error err = {0};
    s->selected_count = 0;
    for (size_t i = 0; i < n; i++) {
        switch (a[i].kind) {
        case FEDL_FL_SEND_TASK:
            s->task = *a[i].task;
            if (add_selected(s, a[i].client_id) != 0)
                return fprintf(stderr, "fedl serve: out of memory\n"), 1;
            break;
        case FEDL_FL_SET_TIMER:
            s->timer_ms = a[i].time_ms;
            break;
        case FEDL_FL_ROUND_DONE:
            round_report("serve", a[i].metrics, s->model, fedl_coordinator_weights(s->co, NULL),
                         &s->test, s->o->quiet, s->metrics,
                         (double)(net_now_ms() - s->start_ms) / 1000.0);
            break;
        case FEDL_FL_REJECT:
            fprintf(stderr, "fedl serve: %s of %s refused: %s\n",
                    s->o->aggregators != NULL ? "partial" : "update", a[i].client_id, a[i].reason);
            break;
        case FEDL_FL_PERSIST:
            if (s->ckpt_path[0] != '\0' &&
                fedl_coordinator_save_file(s->co, s->ckpt_path, &err) != FEDL_OK)
                return fprintf(stderr, "fedl serve: checkpoint: %s\n", err.message), 1;
            break;
        case FEDL_FL_FINISHED:
            s->finished = 1;
            break;
        case FEDL_FL_FAILED:
            snprintf(s->reason, sizeof s->reason, "%s", a[i].reason);
            fprintf(stderr, "fedl serve: the run failed: %s\n", a[i].reason);
            s->failed = 1;
            break;
        }
    }
    if (s->selected_count > 0 && publish_task(s) != 0)
        return 1;
    if ((s->finished || s->failed) && !s->control_sent) {
        s->control_sent = 1;
        return s->finished ? send_control(s, FEDL_CONTROL_FINISHED, "all rounds done")
                           : send_control(s, FEDL_CONTROL_FAILED, s->reason);
    }
    return 0;
}

static void start_rounds(server *s)
{
    fedl_error err = {0};
    s->started = 1;
    printf("starting with %d devices online\n", fedl_coordinator_client_count(s->co));
    fflush(stdout);
    if (fedl_coordinator_start(s->co, net_now_ms(), &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: %s\n", err.message);
        s->fatal = 1;
        return;
    }
    if (handle_actions(s) != 0)
        s->fatal = 1;
}

static void on_status(server *s, const fedl_wire_frame *h, const uint8_t *body, size_t length)
{
    fedl_client_state state;
    fedl_telemetry t;
    fedl_error err = {0};
    if (fedl_status_message_decode(body, length, &state, &t, &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: status of %s dropped: %s\n", h->sender, err.message);
        return;
    }
    if (state != FEDL_CLIENT_ONLINE) {
        printf("%s is %s\n", h->sender, state == FEDL_CLIENT_OFFLINE ? "offline" : "leaving");
        fflush(stdout);
        return;
    }
    if (fedl_coordinator_register(s->co, h->sender, &t, net_now_ms(), &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: %s\n", err.message);
        return;
    }
    if (!s->started && fedl_coordinator_client_count(s->co) >= s->o->wait_clients)
        start_rounds(s);
    else if (s->started && handle_actions(s) != 0)
        s->fatal = 1;
}

static void on_update(server *s, const fedl_wire_frame *h, const uint8_t *body, size_t length)
{
    fedl_update u;
    fedl_error err = {0};
    if (fedl_update_message_decode(body, length, s->values, s->params, &u, &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: update of %s dropped: %s\n", h->sender, err.message);
        return;
    }
    snprintf(u.client_id, sizeof u.client_id, "%s", h->sender);
    u.round = h->round;
    if (fedl_coordinator_update(s->co, &u, net_now_ms(), &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: %s\n", err.message);
        s->fatal = 1;
        return;
    }
    if (handle_actions(s) != 0)
        s->fatal = 1;
}

static void on_partial(server *s, const fedl_wire_frame *h, const uint8_t *body, size_t length)
{
    fedl_partial p;
    fedl_error err = {0};
    int registered = fedl_coordinator_client_count(s->co);
    if (registered > s->partial_capacity) {
        char(*ids)[FEDL_CLIENT_ID_MAX] = realloc(s->partial_ids, (size_t)registered * sizeof *ids);
        if (ids == NULL) {
            fprintf(stderr, "fedl serve: out of memory\n");
            s->fatal = 1;
            return;
        }
        s->partial_ids = ids;
        s->partial_capacity = registered;
    }
    if (fedl_partial_message_decode(body, length, s->partial_ids, s->partial_capacity, s->sums,
                                    s->params, &p, &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: partial of %s dropped: %s\n", h->sender, err.message);
        return;
    }
    snprintf(p.aggregator_id, sizeof p.aggregator_id, "%s", h->sender);
    p.round = h->round;
    if (fedl_coordinator_partial(s->co, &p, net_now_ms(), &err) != FEDL_OK) {
        fprintf(stderr, "fedl serve: %s\n", err.message);
        s->fatal = 1;
        return;
    }
    if (handle_actions(s) != 0)
        s->fatal = 1;
}

static void on_message(void *user, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                       int retained)
{
    server *s = user;
    (void)retained;
    if (h->type == FEDL_MSG_STATUS)
        on_status(s, h, body, length);
    else if (h->type == FEDL_MSG_UPDATE)
        on_update(s, h, body, length);
    else if (h->type == FEDL_MSG_PARTIAL)
        on_partial(s, h, body, length);
}

/* Scale-out: a strategy that folds sums, and the aggregators' keys. 0, or
 * an exit code with a message. */
static int setup_aggregators(server *s, const serve_options *o, fedl_strategy_kind kind)
{
    if (!fedl_strategy_is_linear(kind))
        return fprintf(stderr,
                       "fedl serve: --aggregators: strategy %s must see every update; partial "
                       "sums serve fedavg, fedprox, fedavgm, fedadagrad, fedadam and fedyogi\n",
                       o->strategy),
               2;
    if (strcmp(o->late, "fold") == 0)
        return fprintf(stderr, "fedl serve: --aggregators: late updates cannot be folded (the "
                               "aggregators drop them)\n"),
               2;
    if (net_load_public("serve", o->aggregators, &s->aggregators, &s->aggregator_count) != 0)
        return 1;
    return 0;
}

/* A fresh run: the task and control chunks an earlier run of this job
 * left retained on the broker are cleared (empty retained messages), so
 * that no device takes them for this run's. */
static int clear_retained(server *s)
{
    fedl_error err = {0};
    char topic[128];
    for (int i = 0; i < 64; i++) {
        snprintf(topic, sizeof topic, "fedl/%s/task/%d", s->o->net.job, i);
        if (fedl_mqtt_publish(fedl_channel_mqtt(s->ch), topic, "", 0, 1, &err) != FEDL_OK)
            return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
        snprintf(topic, sizeof topic, "fedl/%s/control/%d", s->o->net.job, i);
        if (fedl_mqtt_publish(fedl_channel_mqtt(s->ch), topic, "", 0, 1, &err) != FEDL_OK)
            return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
    }
    return 0;
}

static int setup(server *s, serve_options *o)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_strategy_kind kind;
    fedl_channel_options co;
    fedl_channel_callbacks cb = {key_of, on_message, on_drop, on_connection, s};
    fedl_error err = {0};
    char id[FEDL_WIRE_SENDER_MAX];
    int found = 0, rc;
    if (fedl_strategy_parse(o->strategy, &kind, &err) != FEDL_OK)
        return fprintf(stderr, "fedl serve: %s\n", err.message), 2;
    if (!o->net.insecure && (o->key == NULL || o->devices == NULL))
        return fprintf(stderr, "fedl serve: --key and --devices are required (or --insecure in "
                               "a lab)\n"),
               2;
    if (!o->net.insecure &&
        (net_load_secret("serve", o->key, &s->key, id) != 0 ||
         net_load_public("serve", o->devices, &s->devices, &s->device_count) != 0))
        return 1;
    if (o->aggregators != NULL && (rc = setup_aggregators(s, o, kind)) != 0)
        return rc;
    if (fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TEST, NULL, &s->test, &err) != FEDL_OK)
        return fprintf(stderr, "fedl serve: --data %s: %s\n", o->data, err.message), 1;
    if (o->test_limit > 0 && (size_t)o->test_limit < s->test.count)
        fedl_dataset_truncate(&s->test, (size_t)o->test_limit);
    if (fedl_model_create(o->model, s->test.shape, o->seed, NULL, &s->model, &err) != FEDL_OK)
        return fprintf(stderr, "fedl serve: --model: %s\n", err.message), 2;
    s->params = fedl_model_param_count(s->model);
    s->values = malloc(s->params * sizeof(float));
    if (o->aggregators != NULL)
        s->sums = malloc(s->params * sizeof(double));
    if (s->values == NULL || (o->aggregators != NULL && s->sums == NULL))
        return fprintf(stderr, "fedl serve: out of memory\n"), 1;
    c.rounds = o->rounds;
    c.fraction = o->fraction;
    c.min_clients = o->min_clients;
    c.max_clients = o->max_clients;
    c.quorum = o->quorum;
    c.round_timeout_ms = o->timeout_ms;
    c.max_retries = o->retries;
    c.seed = o->seed;
    c.late = strcmp(o->late, "fold") == 0 ? FEDL_LATE_FOLD : FEDL_LATE_REJECT;
    c.task = (fedl_task_config){o->local_epochs, o->batch, o->lr, o->momentum, o->mu};
    c.strategy = fedl_strategy_defaults(kind);
    if (o->server_lr > 0.0f)
        c.strategy.server_lr = o->server_lr;
    if (fedl_coordinator_create(&c, fedl_model_params(s->model), s->params, NULL, &s->co, &err) !=
        FEDL_OK)
        return fprintf(stderr, "fedl serve: %s\n", err.message), 2;
    if (o->ckpt_dir != NULL) {
        if (mkdir(o->ckpt_dir, 0755) != 0 && errno != EEXIST)
            return fprintf(stderr, "fedl serve: --ckpt-dir %s: %s\n", o->ckpt_dir, strerror(errno)),
                   1;
        snprintf(s->ckpt_path, sizeof s->ckpt_path, "%s/coordinator.fedl", o->ckpt_dir);
        if (fedl_coordinator_load_file(s->co, s->ckpt_path, &found, &err) != FEDL_OK)
            return fprintf(stderr, "fedl serve: cannot resume: %s\n", err.message), 1;
        if (found) {
            uint64_t version;
            fedl_coordinator_weights(s->co, &version);
            printf("resumed from %s: %llu rounds done, %d devices known\n", s->ckpt_path,
                   (unsigned long long)version, fedl_coordinator_client_count(s->co));
        }
    }
    rc = net_channel_options("serve", &o->net, "coordinator", &co);
    if (rc != 0)
        return rc;
    co.secret_key = o->net.insecure ? NULL : s->key.secret_key;
    if (fedl_channel_open(&co, &cb, &s->ch, &err) != FEDL_OK)
        return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
    if (!found && clear_retained(s) != 0)
        return 1;
    if (fedl_channel_subscribe(s->ch, "status/#", &err) != FEDL_OK ||
        fedl_channel_subscribe(s->ch, o->aggregators != NULL ? "partial/+" : "update/+", &err) !=
            FEDL_OK)
        return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
    return 0;
}

static void teardown(server *s)
{
    fedl_channel_close(s->ch);
    fedl_coordinator_destroy(s->co);
    fedl_model_destroy(s->model);
    fedl_dataset_free(&s->test);
    fedl_mem_free(NULL, s->devices, (size_t)s->device_count * sizeof *s->devices);
    fedl_mem_free(NULL, s->aggregators, (size_t)s->aggregator_count * sizeof *s->aggregators);
    free(s->sums);
    free(s->partial_ids);
    free(s->values);
    free(s->body);
    free(s->selected);
    free(s->selected_ids);
    memset(&s->key, 0, sizeof s->key);
    if (s->metrics != NULL)
        fclose(s->metrics);
}

/* Until finished, failed or stopped: the network, the coordinator's
 * timer, the wait for the first devices. */
static int run(server *s)
{
    fedl_error err = {0};
    uint64_t wait_until = net_now_ms() + s->o->wait_ms;
    while (!s->finished && !s->failed && !s->fatal && !stop_requested) {
        uint64_t now;
        if (fedl_channel_run(s->ch, 20, &err) != FEDL_OK)
            return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
        now = net_now_ms();
        if (!s->started && now >= wait_until) {
            printf("waited %llu ms for %d devices; %d are online\n",
                   (unsigned long long)s->o->wait_ms, s->o->wait_clients,
                   fedl_coordinator_client_count(s->co));
            start_rounds(s);
        } else if (s->started && s->timer_ms != 0 && now >= s->timer_ms) {
            s->timer_ms = 0;
            if (fedl_coordinator_timer(s->co, now, &err) != FEDL_OK)
                return fprintf(stderr, "fedl serve: %s\n", err.message), 1;
            if (handle_actions(s) != 0)
                return 1;
        }
    }
    if (stop_requested && !s->finished && !s->failed)
        fprintf(stderr, "fedl serve: stopped by a signal; run again to resume\n");
    return s->fatal || s->failed || (stop_requested && !s->finished);
}

int cmd_serve(int argc, char **argv)
{
    serve_options o = {.model = "lenet5",
                       .strategy = "fedavg",
                       .late = "reject",
                       .rounds = 5,
                       .min_clients = 2,
                       .local_epochs = 1,
                       .batch = 32,
                       .retries = 3,
                       .fraction = 1.0f,
                       .quorum = 1.0f,
                       .lr = 0.05f,
                       .seed = 1,
                       .timeout_ms = 600000,
                       .wait_ms = 300000};
    cli_option options[NET_OPTION_COUNT + 32];
    const cli_option own[] = {
        {"rounds", CLI_INT, &o.rounds, "N", "federated rounds [5]", 1, 1000000},
        {"model", CLI_STRING, &o.model, "NAME|SPEC", "preset (lenet5, mlp) or spec [lenet5]", 0, 0},
        {"data", CLI_STRING, &o.data, "DIR", "test set to evaluate each round (IDX), required", 0,
         0},
        {"test-limit", CLI_INT, &o.test_limit, "N", "use the first N test samples", 1, 2147483647},
        {"strategy", CLI_STRING, &o.strategy, "NAME", "as fedl simulate [fedavg]", 0, 0},
        {"server-lr", CLI_FLOAT, &o.server_lr, "F", "server learning rate [the strategy's]", 0,
         1e6},
        {"fraction", CLI_FLOAT, &o.fraction, "F", "share of the online devices a round [1]",
         0.000001, 1},
        {"min-clients", CLI_INT, &o.min_clients, "N", "fewest devices a round needs [2]", 1,
         1000000},
        {"max-clients", CLI_INT, &o.max_clients, "N", "most devices a round takes", 1, 1000000},
        {"quorum", CLI_FLOAT, &o.quorum, "F", "share of the selected that closes a round [1]",
         0.000001, 1},
        {"timeout-ms", CLI_U64, &o.timeout_ms, "MS", "round deadline [600000]", 1, 0},
        {"retries", CLI_INT, &o.retries, "N", "attempts of a round with too few updates [3]", 0,
         1000},
        {"late", CLI_STRING, &o.late, "HOW", "late updates: reject or fold [reject]", 0, 0},
        {"wait-clients", CLI_INT, &o.wait_clients, "N",
         "devices online before round 1 [--min-clients]", 1, 1000000},
        {"wait-ms", CLI_U64, &o.wait_ms, "MS", "start anyway after this long [300000]", 0, 0},
        {"local-epochs", CLI_INT, &o.local_epochs, "N", "epochs of local training [1]", 1, 10000},
        {"batch", CLI_INT, &o.batch, "N", "local batch [32]", 1, 1 << 20},
        {"lr", CLI_FLOAT, &o.lr, "F", "local learning rate [0.05]", 0, 1e6},
        {"momentum", CLI_FLOAT, &o.momentum, "F", "local SGD momentum [0]", 0, 0.999999},
        {"mu", CLI_FLOAT, &o.mu, "F", "FedProx proximal term [0]", 0, 1e6},
        {"seed", CLI_U64, &o.seed, "N", "initial weights and selection [1]", 0, 0},
        {"key", CLI_STRING, &o.key, "FILE", "the coordinator's secret key (fedl keygen)", 0, 0},
        {"devices", CLI_STRING, &o.devices, "FILE", "the devices' public keys, one line each", 0,
         0},
        {"aggregators", CLI_STRING, &o.aggregators, "FILE",
         "scale-out: take partial sums from these aggregators (their public keys)", 0, 0},
        {"ckpt-dir", CLI_STRING, &o.ckpt_dir, "DIR", "checkpoint after every round; resume from it",
         0, 0},
        {"metrics", CLI_STRING, &o.metrics, "FILE", "per-round metrics as JSON lines", 0, 0},
        {"out", CLI_STRING, &o.out, "FILE", "write the final global model here", 0, 0},
        {"quiet", CLI_FLAG, &o.quiet, NULL, "no table", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    server s;
    int rc;
    net_option_table(&o.net, options);
    memcpy(options + NET_OPTION_COUNT, own, sizeof own);
    rc = cli_parse("serve", serve_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.data == NULL) {
        fprintf(stderr, "fedl serve: --data DIR is required (the test set)\n");
        return 2;
    }
    if (strcmp(o.late, "reject") != 0 && strcmp(o.late, "fold") != 0) {
        fprintf(stderr, "fedl serve: --late: 'reject' or 'fold' (got '%s')\n", o.late);
        return 2;
    }
    if (o.wait_clients == 0)
        o.wait_clients = o.min_clients;
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.start_ms = net_now_ms();
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    rc = setup(&s, &o);
    if (rc == 0 && o.metrics != NULL && (s.metrics = fopen(o.metrics, "a")) == NULL) {
        fprintf(stderr, "fedl serve: --metrics %s: cannot open\n", o.metrics);
        rc = 1;
    }
    if (rc == 0) {
        printf("serve: job %s, %s, %d rounds, %zu parameters; waiting for %d devices\n", o.net.job,
               o.strategy, o.rounds, s.params, o.wait_clients);
        if (!o.quiet)
            round_report_header();
        fflush(stdout);
        rc = run(&s);
    }
    if (rc == 0 && o.out != NULL)
        rc = round_report_save("serve", s.model, fedl_coordinator_weights(s.co, NULL), o.out);
    if (rc == 0)
        printf("summary: %d rounds in %.1f s; %llu messages dropped; peak RSS %.1f MiB\n", o.rounds,
               (double)(net_now_ms() - s.start_ms) / 1000.0,
               (unsigned long long)(s.ch != NULL ? fedl_channel_dropped(s.ch) : 0),
               (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    teardown(&s);
    return rc;
}
