/*
 * cmd_join.c - `fedl join`: a device of a federated job. It announces
 * itself on status/<id> (its last will says offline), takes the signed
 * task of a round that names it, trains on its own data with a training
 * session (a memory budget, checkpoints every few steps), and sends its
 * signed update. The client state machine of fedl/fl.h checks every task
 * (round, size, finite weights, hash) before training. Killed in the
 * middle of a round and run again, it resumes its local training from its
 * checkpoint when the round's task is still out; a round it delivered is
 * never trained again. Meant to run under `fedl supervise`.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"
#include "net_common.h"

typedef struct join_options {
    net_options net;
    const char *id, *data, *key, *coordinator_key, *ckpt_dir, *memory, *partition;
    const char *label, *shape, *scale;
    int part, parts, train_limit, ckpt_steps, quiet;
    uint64_t seed;
} join_options;

static const char join_usage[] =
    "A device of a federated job: connects to the MQTT --broker as --id, trains\n"
    "on its own --data (an IDX directory, or a CSV file with --label, --shape and\n"
    "--scale) whenever the coordinator's signed task names it, and sends back its\n"
    "signed update. --partition/--part/--parts take one part of a shared data set,\n"
    "as fedl simulate deals it (for tests and demos). With --ckpt-dir a device\n"
    "killed mid-round resumes its training when run again.\n"
    "Example:\n"
    "  fedl join --broker mqtts://broker:8883 --ca ca.crt --cert dev-01.crt \\\n"
    "      --tls-key dev-01.tls.key --job fmnist --id dev-01 --data local.csv \\\n"
    "      --label label --shape 1x28x28 --scale 255 --key dev-01.key \\\n"
    "      --coordinator-key coordinator.pub --ckpt-dir state\n";

typedef struct device {
    const join_options *o;
    fedl_channel *ch;
    fedl_client *client;
    fedl_dataset data, part;
    const fedl_dataset *train; /* data or its part */
    fedl_partition partition;
    fedl_model *model;
    size_t params;
    float *weights; /* (params) the task's */
    fedl_sign_keypair key;
    uint8_t coordinator_key[FEDL_WIRE_PUBLIC_KEY_BYTES];
    fedl_trainer *trainer;
    fedl_train_config config;
    uint64_t round; /* of the training under way */
    long steps;
    size_t budget;
    uint8_t *body;
    size_t body_capacity;
    int finished, failed, fatal;
    uint64_t started_us; /* wall clock at start: control words sent before are stale */
    char client_path[4200], train_path[4200];
} device;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int key_of(void *user, const char *sender, fedl_msg_type type, uint8_t *public_key)
{
    device *d = user;
    (void)type;
    if (d->o->net.insecure)
        return 0;
    if (strcmp(sender, "coordinator") != 0)
        return -1;
    memcpy(public_key, d->coordinator_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
    return 1;
}

static void on_drop(void *user, const char *topic, const char *sender, const char *reason)
{
    (void)user;
    fprintf(stderr, "fedl join: dropped a message on %s from %s: %s\n", topic,
            sender != NULL ? sender : "?", reason);
}

static void send_status(device *d, fedl_client_state state)
{
    uint8_t body[FEDL_STATUS_MESSAGE_BYTES];
    fedl_telemetry t = {d->budget, 0.0, d->train->count, 0};
    fedl_error err = {0};
    char suffix[128];
    snprintf(suffix, sizeof suffix, "status/%s", d->o->id);
    fedl_status_message_encode(state, &t, body);
    /* retained: the coordinator, restarted, learns who is online */
    if (fedl_channel_send(d->ch, suffix, FEDL_MSG_STATUS, 0, body, sizeof body, 1, &err) != FEDL_OK)
        fprintf(stderr, "fedl join: status: %s\n", err.message);
}

static void on_connection(void *user, int connected, const char *reason)
{
    device *d = user;
    fprintf(stderr, "fedl join: broker %s (%s)\n", connected ? "connected" : "lost", reason);
    if (connected && d->ch != NULL)
        send_status(d, FEDL_CLIENT_ONLINE); /* after every reconnect: the coordinator may be new */
}

/* The model the task's spec describes, for this device's data. */
static int ensure_model(device *d, const fedl_task_message *m)
{
    char spec[65537];
    fedl_error err = {0};
    memcpy(spec, m->spec, m->spec_length);
    spec[m->spec_length] = '\0';
    if (d->model != NULL && strcmp(fedl_model_spec(d->model), spec) == 0)
        return 0;
    fedl_trainer_destroy(d->trainer);
    d->trainer = NULL;
    fedl_model_destroy(d->model);
    d->model = NULL;
    free(d->weights);
    d->weights = NULL;
    if (fedl_model_create(spec, d->train->shape, 1, NULL, &d->model, &err) != FEDL_OK) {
        fprintf(stderr, "fedl join: the task's model '%s' does not fit this data: %s\n", spec,
                err.message);
        return 1;
    }
    d->params = fedl_model_param_count(d->model);
    d->weights = malloc(d->params * sizeof(float));
    if (d->weights == NULL)
        return fprintf(stderr, "fedl join: out of memory\n"), 1;
    if (d->client != NULL)
        fedl_client_destroy(d->client);
    d->client = NULL;
    if (fedl_client_create(d->o->id, d->params, NULL, &d->client, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: %s\n", err.message), 1;
    if (d->client_path[0] != '\0') {
        int found = 0;
        if (fedl_client_load_file(d->client, d->client_path, &found, &err) != FEDL_OK)
            fprintf(stderr, "fedl join: %s (starting afresh)\n", err.message);
        else if (found)
            printf("state %s: the last task taken was round %llu's\n", d->client_path,
                   (unsigned long long)fedl_client_round(d->client));
    }
    return 0;
}

/* A session for the accepted task; its checkpoint of this round if one is
 * on disk (the configuration check refuses another round's). */
static int start_training(device *d, const fedl_task_config *tc)
{
    fedl_error err = {0};
    fedl_plan plan;
    d->config = fedl_train_config_defaults();
    d->config.batch = tc->batch;
    d->config.epochs = tc->local_epochs;
    d->config.seed = d->o->seed + (d->round - 1) * 1000003u + (uint64_t)d->o->part;
    d->config.lr.base_lr = tc->lr;
    d->config.optim.momentum = tc->momentum;
    d->config.proximal_mu = tc->proximal_mu;
    d->config.proximal_ref = d->weights;
    if (d->budget > 0) {
        if (fedl_plan_training(d->model, d->train, &d->config, d->budget, &plan, &err) != FEDL_OK ||
            !plan.fits)
            return fprintf(stderr, "fedl join: --memory: %s\n",
                           err.message[0] ? err.message : plan.reason),
                   1;
        d->config.micro_batch = plan.micro_batch;
    }
    memcpy(fedl_model_params(d->model), d->weights, d->params * sizeof(float));
    if (fedl_trainer_create(d->model, d->train, &d->config, NULL, &d->trainer, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: %s\n", err.message), 1;
    d->steps = 0;
    if (d->train_path[0] != '\0' && access(d->train_path, F_OK) == 0) {
        fedl_checkpoint *ckpt = NULL;
        if (fedl_checkpoint_load(d->train_path, NULL, &ckpt, &err) == FEDL_OK &&
            fedl_trainer_restore(d->trainer, ckpt, &err) == FEDL_OK) {
            printf("round %llu: resumed local training at step %llu from %s\n",
                   (unsigned long long)d->round,
                   (unsigned long long)fedl_trainer_stats(d->trainer).global_step, d->train_path);
        } else { /* another round's, or damaged: train afresh */
            memcpy(fedl_model_params(d->model), d->weights, d->params * sizeof(float));
            fedl_trainer_destroy(d->trainer);
            d->trainer = NULL;
            unlink(d->train_path);
            if (fedl_trainer_create(d->model, d->train, &d->config, NULL, &d->trainer, &err) !=
                FEDL_OK) {
                fedl_checkpoint_free(ckpt);
                return fprintf(stderr, "fedl join: %s\n", err.message), 1;
            }
        }
        fedl_checkpoint_free(ckpt);
    }
    return 0;
}

static void on_task(device *d, const fedl_wire_frame *h, const uint8_t *body, size_t length)
{
    fedl_task_message m;
    fedl_error err = {0};
    if (fedl_task_message_decode(body, length, &m, &err) != FEDL_OK) {
        fprintf(stderr, "fedl join: task dropped: %s\n", err.message);
        return;
    }
    if (!fedl_task_message_selects(&m, d->o->id))
        return;
    if (d->trainer != NULL && h->round <= d->round)
        return; /* the task under way, delivered again */
    if (ensure_model(d, &m) != 0) {
        d->fatal = 1;
        return;
    }
    if (m.task.params != d->params) {
        fprintf(stderr, "fedl join: task of round %llu has %zu weights, the model %zu\n",
                (unsigned long long)h->round, m.task.params, d->params);
        return;
    }
    fedl_task_message_weights(&m, d->weights);
    m.task.weights = d->weights;
    m.task.round = h->round;
    if (fedl_client_accept_task(d->client, &m.task, &err) != FEDL_OK) {
        printf("round %llu: task not taken: %s\n", (unsigned long long)h->round, err.message);
        fflush(stdout);
        return;
    }
    if (d->trainer != NULL) {
        printf("round %llu: abandoning round %llu, the coordinator moved on\n",
               (unsigned long long)h->round, (unsigned long long)d->round);
        fedl_trainer_destroy(d->trainer);
        d->trainer = NULL;
    }
    if (d->client_path[0] != '\0' &&
        fedl_client_save_file(d->client, NULL, d->client_path, &err) != FEDL_OK)
        fprintf(stderr, "fedl join: %s\n", err.message);
    d->round = h->round;
    printf("round %llu: task taken (%d local epochs, batch %d, %llu ms to the deadline)\n",
           (unsigned long long)d->round, m.task.config.local_epochs, m.task.config.batch,
           (unsigned long long)m.deadline_in_ms);
    fflush(stdout);
    if (start_training(d, &m.task.config) != 0)
        d->fatal = 1;
}

static void on_message(void *user, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                       int retained)
{
    device *d = user;
    if (h->type == FEDL_MSG_TASK)
        on_task(d, h, body, length);
    else if (h->type == FEDL_MSG_CONTROL) {
        int command = net_control("join", h, body, length, retained, d->started_us);
        d->finished |= command == FEDL_CONTROL_FINISHED;
        d->failed |= command == FEDL_CONTROL_FAILED;
    }
}

static int epochs_done(const fedl_trainer *t)
{
    fedl_train_stats st = fedl_trainer_stats(t);
    return (int)st.epoch + (st.epoch_samples > 0 && st.position >= st.epoch_samples);
}

static int checkpoint(device *d)
{
    fedl_train_state state;
    fedl_error err = {0};
    fedl_trainer_state(d->trainer, NULL, 0, &state);
    if (fedl_checkpoint_save(NULL, d->train_path, d->model, &state, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: checkpoint: %s\n", err.message), 1;
    return 0;
}

/* Local training done: the update out, the round recorded as delivered. */
static int deliver(device *d)
{
    fedl_train_stats st = fedl_trainer_stats(d->trainer);
    fedl_telemetry t = {d->budget, 0.0, d->train->count, 0};
    fedl_update u;
    fedl_error err = {0};
    char suffix[128];
    size_t length, need;
    if (fedl_client_make_update(d->client, fedl_model_params(d->model), st.samples_seen,
                                st.loss_sum / (double)st.epoch_seen, &t, &u, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: %s\n", err.message), 0; /* nothing to send */
    need = fedl_update_message_size(u.params);
    if (need > d->body_capacity) {
        uint8_t *grown = realloc(d->body, need);
        if (grown == NULL)
            return fprintf(stderr, "fedl join: out of memory\n"), 1;
        d->body = grown;
        d->body_capacity = need;
    }
    snprintf(suffix, sizeof suffix, "update/%s", d->o->id);
    if (fedl_update_message_encode(&u, d->body, d->body_capacity, &length, &err) != FEDL_OK ||
        fedl_channel_send(d->ch, suffix, FEDL_MSG_UPDATE, d->round, d->body, length, 0, &err) !=
            FEDL_OK)
        return fprintf(stderr, "fedl join: update: %s\n", err.message), 1;
    if (d->client_path[0] != '\0' &&
        fedl_client_save_file(d->client, NULL, d->client_path, &err) != FEDL_OK)
        fprintf(stderr, "fedl join: %s\n", err.message);
    if (d->train_path[0] != '\0')
        unlink(d->train_path);
    printf("round %llu: trained on %llu samples, loss %.4f; update sent (%zu bytes)\n",
           (unsigned long long)d->round, (unsigned long long)st.samples_seen,
           st.loss_sum / (double)st.epoch_seen, length);
    fflush(stdout);
    fedl_trainer_destroy(d->trainer);
    d->trainer = NULL;
    return 0;
}

/* One training step, the network kept alive around it. */
static int train_step(device *d)
{
    fedl_error err = {0};
    int done;
    if (epochs_done(d->trainer) >= d->config.epochs)
        return deliver(d);
    if (fedl_trainer_step(d->trainer, &done, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: training: %s\n", err.message), 1;
    d->steps++;
    if (d->train_path[0] != '\0' && d->steps % d->o->ckpt_steps == 0)
        return checkpoint(d);
    return 0;
}

static int load_data(device *d, const join_options *o)
{
    fedl_error err = {0};
    struct stat st;
    if (stat(o->data, &st) != 0)
        return fprintf(stderr, "fedl join: --data %s: %s\n", o->data, strerror(errno)), 1;
    if (S_ISDIR(st.st_mode)) {
        if (fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TRAIN, NULL, &d->data, &err) != FEDL_OK)
            return fprintf(stderr, "fedl join: --data %s: %s\n", o->data, err.message), 1;
    } else {
        fedl_csv_schema schema = fedl_csv_schema_defaults();
        char *end;
        schema.label = o->label;
        if (o->shape != NULL && cli_parse_shape(o->shape, &schema.shape) != 0)
            return fprintf(stderr, "fedl join: --shape: CxHxW such as 1x28x28\n"), 2;
        if (o->scale != NULL) {
            schema.scaling = FEDL_CSV_SCALE_DIVIDE;
            schema.divisor = strtof(o->scale, &end);
            if (*end != '\0' || !(schema.divisor > 0.0f))
                return fprintf(stderr, "fedl join: --scale: a positive divisor\n"), 2;
        }
        if (fedl_csv_dataset_open(o->data, NULL, &schema, NULL, NULL, &d->data, &err) != FEDL_OK)
            return fprintf(stderr, "fedl join: --data %s: %s\n", o->data, err.message), 1;
    }
    if (o->train_limit > 0 && (size_t)o->train_limit < d->data.count)
        fedl_dataset_truncate(&d->data, (size_t)o->train_limit);
    d->train = &d->data;
    if (o->partition != NULL) {
        fedl_partition_spec spec;
        if (o->parts < 1 || o->part < 0 || o->part >= o->parts)
            return fprintf(stderr, "fedl join: --partition needs --parts N and --part 0..N-1\n"), 2;
        if (fedl_partition_parse(o->partition, &spec, &err) != FEDL_OK ||
            fedl_partition_make(&d->data, o->parts, &spec, o->seed, NULL, &d->partition, &err) !=
                FEDL_OK ||
            fedl_partition_subset(&d->data, &d->partition, o->part, NULL, &d->part, &err) !=
                FEDL_OK)
            return fprintf(stderr, "fedl join: --partition %s: %s\n", o->partition, err.message), 2;
        d->train = &d->part;
    }
    return 0;
}

/* The last will: a signed "offline" status, made before connecting. */
static int make_will(device *d, uint8_t *chunk, size_t capacity, size_t *length)
{
    uint8_t body[FEDL_STATUS_MESSAGE_BYTES];
    fedl_telemetry t = {0, 0.0, d->train->count, 0};
    fedl_wire_message m = {FEDL_MSG_STATUS,      d->o->net.job, d->o->id,   0,
                           net_now_ms() * 1000u, body,          sizeof body};
    fedl_wire_encoder e;
    fedl_error err = {0};
    fedl_status_message_encode(FEDL_CLIENT_OFFLINE, &t, body);
    if (fedl_wire_encoder_init(&e, &m, capacity, d->o->net.insecure ? NULL : d->key.secret_key,
                               &err) != FEDL_OK ||
        fedl_wire_encode_chunk(&e, 0, chunk, capacity, length, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: --id %s: %s\n", d->o->id, err.message), 2;
    return 0;
}

static int setup(device *d, join_options *o)
{
    static uint8_t will[FEDL_WIRE_CHUNK_MIN]; /* header + the 40-byte status */
    static char will_topic[160];
    fedl_channel_options co;
    fedl_channel_callbacks cb = {key_of, on_message, on_drop, on_connection, d};
    fedl_error err = {0};
    char id[FEDL_WIRE_SENDER_MAX];
    size_t will_length;
    int rc;
    if (!o->net.insecure) {
        fedl_key_entry *keys = NULL;
        int count = 0;
        if (o->key == NULL || o->coordinator_key == NULL)
            return fprintf(stderr, "fedl join: --key and --coordinator-key are required (or "
                                   "--insecure in a lab)\n"),
                   2;
        if (net_load_secret("join", o->key, &d->key, id) != 0 ||
            net_load_public("join", o->coordinator_key, &keys, &count) != 0)
            return 1;
        memcpy(d->coordinator_key, keys[0].public_key, sizeof d->coordinator_key);
        fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
        if (strcmp(id, o->id) != 0)
            return fprintf(stderr, "fedl join: --key %s is %s's, not %s's\n", o->key, id, o->id), 2;
    }
    rc = load_data(d, o);
    if (rc != 0)
        return rc;
    if (o->memory != NULL && fedl_parse_size(o->memory, &d->budget, &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: --memory: %s\n", err.message), 2;
    if (o->ckpt_dir != NULL) {
        if (mkdir(o->ckpt_dir, 0755) != 0 && errno != EEXIST)
            return fprintf(stderr, "fedl join: --ckpt-dir %s: %s\n", o->ckpt_dir, strerror(errno)),
                   1;
        snprintf(d->client_path, sizeof d->client_path, "%s/client.fedl", o->ckpt_dir);
        snprintf(d->train_path, sizeof d->train_path, "%s/train.fedl", o->ckpt_dir);
    }
    rc = net_channel_options("join", &o->net, o->id, &co);
    if (rc != 0)
        return rc;
    rc = make_will(d, will, sizeof will, &will_length);
    if (rc != 0)
        return rc;
    snprintf(will_topic, sizeof will_topic, "fedl/%s/status/%s/0", o->net.job, o->id);
    co.mqtt.will_topic = will_topic;
    co.mqtt.will_payload = will;
    co.mqtt.will_length = will_length;
    co.secret_key = o->net.insecure ? NULL : d->key.secret_key;
    /* a device outlives its broker: the first connection is retried with
     * backoff too (0.5 s doubling to 30 s) until it is made or a signal stops it */
    for (unsigned wait_ms = 500; fedl_channel_open(&co, &cb, &d->ch, &err) != FEDL_OK;) {
        struct timespec pause = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        if (err.status != FEDL_ERR_IO || stop_requested)
            return fprintf(stderr, "fedl join: %s\n", err.message), 1;
        fprintf(stderr, "fedl join: %s; trying again in %.1f s\n", err.message, wait_ms / 1000.0);
        nanosleep(&pause, NULL);
        wait_ms = wait_ms * 2 < 30000 ? wait_ms * 2 : 30000;
    }
    if (fedl_channel_subscribe(d->ch, "task/+", &err) != FEDL_OK ||
        fedl_channel_subscribe(d->ch, "control/+", &err) != FEDL_OK)
        return fprintf(stderr, "fedl join: %s\n", err.message), 1;
    send_status(d, FEDL_CLIENT_ONLINE);
    return 0;
}

static void teardown(device *d)
{
    if (d->ch != NULL && !d->finished && !d->failed)
        send_status(d, FEDL_CLIENT_LEAVING);
    fedl_channel_close(d->ch);
    fedl_trainer_destroy(d->trainer);
    fedl_client_destroy(d->client);
    fedl_model_destroy(d->model);
    free(d->weights);
    free(d->body);
    fedl_dataset_free(&d->part);
    fedl_partition_free(&d->partition);
    fedl_dataset_free(&d->data);
    memset(&d->key, 0, sizeof d->key);
}

int cmd_join(int argc, char **argv)
{
    join_options o = {.seed = 1, .ckpt_steps = 10};
    cli_option options[NET_OPTION_COUNT + 24];
    const cli_option own[] = {
        {"id", CLI_STRING, &o.id, "ID", "this device's id (its topics, its key), required", 0, 0},
        {"data", CLI_STRING, &o.data, "PATH", "IDX directory or CSV file, required", 0, 0},
        {"label", CLI_STRING, &o.label, "COLUMN", "CSV: the label column [label]", 0, 0},
        {"shape", CLI_STRING, &o.shape, "CxHxW", "CSV: the sample shape [features x 1 x 1]", 0, 0},
        {"scale", CLI_STRING, &o.scale, "D", "CSV: divide the features by D", 0, 0},
        {"partition", CLI_STRING, &o.partition, "HOW",
         "take one part of --data: iid, dirichlet:ALPHA or shards:K", 0, 0},
        {"parts", CLI_INT, &o.parts, "N", "with --partition: how many parts", 1, 1000000},
        {"part", CLI_INT, &o.part, "I", "with --partition: which one, 0..N-1", 0, 1000000},
        {"train-limit", CLI_INT, &o.train_limit, "N", "use the first N samples of --data", 1,
         2147483647},
        {"seed", CLI_U64, &o.seed, "N", "partition and shuffle seed (as fedl simulate) [1]", 0, 0},
        {"key", CLI_STRING, &o.key, "FILE", "this device's secret key (fedl keygen)", 0, 0},
        {"coordinator-key", CLI_STRING, &o.coordinator_key, "FILE", "the coordinator's public key",
         0, 0},
        {"ckpt-dir", CLI_STRING, &o.ckpt_dir, "DIR",
         "keep the task and training checkpoints here; resume from them", 0, 0},
        {"ckpt-steps", CLI_INT, &o.ckpt_steps, "N", "checkpoint every N steps [10]", 1, 1000000000},
        {"memory", CLI_STRING, &o.memory, "SIZE", "local training fits SIZE (micro-batches)", 0, 0},
        {"quiet", CLI_FLAG, &o.quiet, NULL, "fewer lines", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    device d;
    fedl_error err = {0};
    int rc;
    net_option_table(&o.net, options);
    memcpy(options + NET_OPTION_COUNT, own, sizeof own);
    rc = cli_parse("join", join_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.id == NULL || o.data == NULL) {
        fprintf(stderr, "fedl join: --id and --data are required (see 'fedl join --help')\n");
        return 2;
    }
    memset(&d, 0, sizeof d);
    d.o = &o;
    d.started_us = net_now_ms() * 1000u;
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    fedl_blas_threads(1); /* as fedl simulate's clients: the same bits for the same data */
    rc = setup(&d, &o);
    if (rc == 0) {
        printf("join: job %s as %s, %zu local samples; waiting for tasks\n", o.net.job, o.id,
               d.train->count);
        fflush(stdout);
    }
    while (rc == 0 && !d.finished && !d.failed && !d.fatal && !stop_requested) {
        if (fedl_channel_run(d.ch, d.trainer != NULL ? 0 : 20, &err) != FEDL_OK) {
            fprintf(stderr, "fedl join: %s\n", err.message);
            rc = 1;
        } else if (d.trainer != NULL && train_step(&d) != 0) {
            rc = 1;
        }
    }
    if (rc == 0 && (d.failed || d.fatal))
        rc = 1;
    if (rc == 0 && stop_requested && !d.finished) {
        fprintf(stderr, "fedl join: stopped by a signal; run again to resume\n");
        if (d.trainer != NULL && d.train_path[0] != '\0')
            checkpoint(&d);
        rc = 1;
    }
    teardown(&d);
    return rc;
}
