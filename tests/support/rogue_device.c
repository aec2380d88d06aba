/*
 * rogue_device.c - a misbehaving device for tests/cli/test_federation_hostile.sh.
 * It holds a registered device key, so what it signs passes the
 * coordinator's signature check, and it uses nothing but the public API.
 *
 *   rogue_device --broker mqtt://127.0.0.1:PORT --job JOB --id dev-r --key dev-r.key
 *       --coordinator-key coordinator.pub --attack NAME [--victim dev-0] [--timeout-s 120]
 *
 * Like fedl join it connects, announces itself online on status/<id> and
 * takes the coordinator's signed task (verified with --coordinator-key)
 * to learn the round, the model version and the parameter count. Then:
 *   nan          an update of the open round, for a task naming it, whose
 *                values are all NaN;
 *   oversized    an update with one float more than the model has, then
 *                one chunk whose header declares a body one byte over
 *                FEDL_WIRE_BODY_MAX_DEFAULT (made by the wire encoder from
 *                a real, zeroed body of that size, and signed);
 *   replay       the raw chunks of --victim's first whole update, kept
 *                from update/<victim>, published there again once the
 *                task of a round two later is out;
 *   forged-task  a task for the next round with sender "coordinator" and
 *                zeroed weights, signed with this device's own key,
 *                published to task/<i> not retained (so that it cannot
 *                shadow the real retained task).
 * It prints what it did and exits 0 once the broker acknowledged all of
 * it; 1 on an error or when nothing to attack came in --timeout-s; 2 for
 * bad usage.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/fedl.h"

#define CAPTURE_MAX 64 /* chunks of the victim's update kept for a replay */

typedef struct rogue {
    const char *broker, *job, *id, *key_path, *coordinator_key_path, *attack, *victim;
    int timeout_s;
    fedl_sign_keypair key;
    uint8_t coordinator_key[FEDL_WIRE_PUBLIC_KEY_BYTES];
    fedl_channel *ch;
    fedl_mqtt *raw; /* replay: update/<victim>, unchecked */
    /* the latest task taken: its header round, model version, size, body */
    uint64_t round, model_version;
    size_t params;
    int selects_me;
    uint8_t *task; /* (task_length) */
    size_t task_length;
    /* replay: the victim's first update, chunk by chunk as published */
    uint64_t captured_round, captured_sequence;
    uint32_t captured_count, captured_have;
    uint8_t *chunks[CAPTURE_MAX];
    size_t chunk_lengths[CAPTURE_MAX];
} rogue;

static int fail(const char *what, const fedl_error *err)
{
    fprintf(stderr, "rogue_device: %s: %s\n", what, err != NULL ? err->message : "");
    return 1;
}

/* A small text file into text (size bytes), NUL-terminated: its length. */
static size_t read_text(const char *path, char *text, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(text, 1, size - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    text[n] = '\0';
    return n;
}

static int load_keys(rogue *r)
{
    fedl_key_entry *keys = NULL;
    fedl_error err = {0};
    char id[FEDL_WIRE_SENDER_MAX], secret[1024], public[1024];
    size_t n = read_text(r->key_path, secret, sizeof secret);
    size_t m = read_text(r->coordinator_key_path, public, sizeof public);
    int count = 0, rc = 0;
    if (fedl_secret_key_parse(secret, n, r->key_path, &r->key, id, &err) != FEDL_OK ||
        fedl_keys_parse(public, m, r->coordinator_key_path, NULL, &keys, &count, &err) != FEDL_OK ||
        count < 1)
        rc = fail("keys", &err);
    else
        memcpy(r->coordinator_key, keys[0].public_key, sizeof r->coordinator_key);
    fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
    return rc;
}

/* Only the coordinator is trusted, and only with its own key. */
static int key_of(void *user, const char *sender, fedl_msg_type type, uint8_t *public_key)
{
    rogue *r = user;
    (void)type;
    if (strcmp(sender, "coordinator") != 0)
        return -1;
    memcpy(public_key, r->coordinator_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
    return 1;
}

static void on_drop(void *user, const char *topic, const char *sender, const char *reason)
{
    (void)user;
    fprintf(stderr, "rogue_device: dropped a message on %s from %s: %s\n", topic,
            sender != NULL ? sender : "?", reason);
}

/* A verified task: kept whole (the forged task is made from it). */
static void on_message(void *user, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                       int retained)
{
    rogue *r = user;
    fedl_task_message m;
    fedl_error err = {0};
    uint8_t *copy;
    (void)retained;
    if (h->type != FEDL_MSG_TASK || h->round < r->round ||
        fedl_task_message_decode(body, length, &m, &err) != FEDL_OK ||
        (copy = realloc(r->task, length)) == NULL)
        return;
    memcpy(copy, body, length);
    r->task = copy;
    r->task_length = length;
    r->round = h->round;
    r->model_version = m.task.model_version;
    r->params = m.task.params;
    r->selects_me = fedl_task_message_selects(&m, r->id);
}

static int captured(const rogue *r)
{
    return r->captured_count != 0 && r->captured_have == r->captured_count;
}

/* A chunk on update/<victim>: kept if it belongs to the first update seen
 * whole (one begun before the subscription is given up for the next). */
static void on_raw(void *user, const char *topic, const uint8_t *payload, size_t length,
                   int retained)
{
    rogue *r = user;
    fedl_wire_frame f;
    uint8_t *copy;
    (void)topic;
    (void)retained;
    if (captured(r) ||
        fedl_wire_parse(payload, length, FEDL_WIRE_BODY_MAX_DEFAULT, &f, NULL) != FEDL_OK ||
        f.count > CAPTURE_MAX)
        return;
    if (r->captured_count != 0 && f.sequence != r->captured_sequence) {
        memset(r->chunk_lengths, 0, sizeof r->chunk_lengths);
        r->captured_have = 0;
    }
    if (r->chunk_lengths[f.index] != 0 || (copy = realloc(r->chunks[f.index], length)) == NULL)
        return;
    r->chunks[f.index] = copy;
    memcpy(r->chunks[f.index], payload, length);
    r->chunk_lengths[f.index] = length;
    r->captured_count = f.count;
    r->captured_sequence = f.sequence;
    r->captured_round = f.round;
    r->captured_have++;
}

/* Connected, subscribed to the tasks (and for a replay to the victim's
 * updates), and announced online with telemetry that makes it eligible. */
static int connect_all(rogue *r)
{
    fedl_channel_options co = fedl_channel_defaults();
    fedl_channel_callbacks cb = {key_of, on_message, on_drop, NULL, r};
    fedl_telemetry t = {0, 0.0, 1000, 0};
    uint8_t status[FEDL_STATUS_MESSAGE_BYTES];
    char client_id[128], raw_id[140], suffix[128], topic[256];
    fedl_error err = {0};
    snprintf(client_id, sizeof client_id, "%s-%s", r->id, r->attack);
    co.mqtt.broker = r->broker;
    co.mqtt.client_id = client_id;
    co.mqtt.clean_session = 1;
    co.job = r->job;
    co.self = r->id;
    co.secret_key = r->key.secret_key;
    snprintf(suffix, sizeof suffix, "status/%s", r->id);
    fedl_status_message_encode(FEDL_CLIENT_ONLINE, &t, status);
    if (fedl_channel_open(&co, &cb, &r->ch, &err) != FEDL_OK ||
        fedl_channel_subscribe(r->ch, "task/+", &err) != FEDL_OK ||
        fedl_channel_send(r->ch, suffix, FEDL_MSG_STATUS, 0, status, sizeof status, 1, &err) !=
            FEDL_OK)
        return fail("channel", &err);
    if (strcmp(r->attack, "replay") != 0)
        return 0;
    snprintf(raw_id, sizeof raw_id, "%s-raw", client_id);
    snprintf(topic, sizeof topic, "fedl/%s/update/%s", r->job, r->victim);
    co.mqtt.client_id = raw_id;
    if (fedl_mqtt_connect(&co.mqtt, on_raw, NULL, r, &r->raw, &err) != FEDL_OK ||
        fedl_mqtt_subscribe(r->raw, topic, &err) != FEDL_OK)
        return fail("raw connection", &err);
    return 0;
}

/* 1 when what the attack needs has come in. */
static int ready(const rogue *r)
{
    if (r->task == NULL)
        return 0;
    if (strcmp(r->attack, "nan") == 0)
        return r->selects_me;
    if (strcmp(r->attack, "replay") == 0) /* the victim has sent a newer update since */
        return captured(r) && r->round >= r->captured_round + 2;
    return 1;
}

/* Run the network until done(r) or the timeout: 0, or 1. */
static int pump(rogue *r, int (*done)(const rogue *), const char *waiting_for)
{
    fedl_error err = {0};
    uint64_t deadline = fedl_time_ns() / 1000000u + (uint64_t)r->timeout_s * 1000u;
    while (!done(r)) {
        if (fedl_time_ns() / 1000000u > deadline) {
            fprintf(stderr, "rogue_device: %s: no %s in %d s\n", r->attack, waiting_for,
                    r->timeout_s);
            return 1;
        }
        if (fedl_channel_run(r->ch, 20, &err) != FEDL_OK ||
            (r->raw != NULL && fedl_mqtt_run(r->raw, 5, &err) != FEDL_OK))
            return fail("network", &err);
    }
    return 0;
}

static int delivered(const rogue *r)
{
    return fedl_mqtt_pending(fedl_channel_mqtt(r->ch)) == 0 &&
           (r->raw == NULL || fedl_mqtt_pending(r->raw) == 0);
}

/* A correctly signed update of the open round with `count` values. */
static int send_update(rogue *r, const float *values, size_t count)
{
    fedl_update u = {.model_version = r->model_version,
                     .kind = FEDL_UPDATE_DELTA,
                     .values = values,
                     .params = count,
                     .samples = 100,
                     .train_loss = 1.0,
                     .telemetry = {0, 0.0, 1000, 0}};
    size_t capacity = fedl_update_message_size(count), length;
    uint8_t *body = malloc(capacity);
    fedl_error err = {0};
    char suffix[128];
    int rc = 0;
    snprintf(suffix, sizeof suffix, "update/%s", r->id);
    if (body == NULL || fedl_update_message_encode(&u, body, capacity, &length, &err) != FEDL_OK ||
        fedl_channel_send(r->ch, suffix, FEDL_MSG_UPDATE, r->round, body, length, 0, &err) !=
            FEDL_OK)
        rc = fail("update", &err);
    free(body);
    return rc;
}

static int attack_nan(rogue *r)
{
    float *values = malloc(r->params * sizeof *values); /* (params) */
    int rc;
    if (values == NULL)
        return fail("out of memory", NULL);
    for (size_t i = 0; i < r->params; i++)
        values[i] = NAN;
    rc = send_update(r, values, r->params);
    if (rc == 0)
        printf("nan: an update of round %llu with %zu NaN values sent as %s\n",
               (unsigned long long)r->round, r->params, r->id);
    free(values);
    return rc;
}

/* One more float than the model, then the first chunk of a body over the cap. */
static int attack_oversized(rogue *r)
{
    float *values = calloc(r->params + 1, sizeof *values); /* (params + 1) */
    size_t huge = (size_t)FEDL_WIRE_BODY_MAX_DEFAULT + 1, length;
    uint8_t *body = calloc(huge, 1), *chunk = malloc(FEDL_WIRE_CHUNK_DEFAULT);
    fedl_wire_message m = {FEDL_MSG_UPDATE,        r->job, r->id, r->round,
                           fedl_time_ns() / 1000u, body,   huge};
    fedl_wire_encoder e;
    fedl_error err = {0};
    char topic[256];
    int rc = values == NULL || body == NULL || chunk == NULL ? fail("out of memory", NULL) : 0;
    snprintf(topic, sizeof topic, "fedl/%s/update/%s", r->job, r->id);
    if (rc == 0)
        rc = send_update(r, values, r->params + 1);
    if (rc == 0 &&
        (fedl_wire_encoder_init(&e, &m, FEDL_WIRE_CHUNK_DEFAULT, r->key.secret_key, &err) !=
             FEDL_OK ||
         fedl_wire_encode_chunk(&e, 0, chunk, FEDL_WIRE_CHUNK_DEFAULT, &length, &err) != FEDL_OK ||
         fedl_mqtt_publish(fedl_channel_mqtt(r->ch), topic, chunk, length, 0, &err) != FEDL_OK))
        rc = fail("oversized chunk", &err);
    if (rc == 0)
        printf("oversized: an update of %zu values (the model has %zu) and a chunk declaring "
               "%zu bytes sent as %s\n",
               r->params + 1, r->params, huge, r->id);
    free(values);
    free(body);
    free(chunk);
    return rc;
}

static int attack_replay(rogue *r)
{
    fedl_error err = {0};
    char topic[256];
    snprintf(topic, sizeof topic, "fedl/%s/update/%s", r->job, r->victim);
    for (uint32_t i = 0; i < r->captured_count; i++)
        if (fedl_mqtt_publish(r->raw, topic, r->chunks[i], r->chunk_lengths[i], 0, &err) != FEDL_OK)
            return fail("replay", &err);
    printf("replay: %s's update of round %llu (sequence %llu, %u chunks) sent again during "
           "round %llu\n",
           r->victim, (unsigned long long)r->captured_round,
           (unsigned long long)r->captured_sequence, (unsigned)r->captured_count,
           (unsigned long long)r->round);
    return 0;
}

/* The real task's body with its weights zeroed and their SHA-256 made to
 * match (body bytes 48-79; the weights are its last 4P bytes), signed with
 * the wrong key. */
static int attack_forged_task(rogue *r)
{
    size_t weights = 4 * r->params, length;
    uint8_t *chunk = malloc(FEDL_WIRE_CHUNK_DEFAULT);
    fedl_wire_message m = {FEDL_MSG_TASK,          r->job,  "coordinator", r->round + 1,
                           fedl_time_ns() / 1000u, r->task, r->task_length};
    fedl_wire_encoder e;
    fedl_error err = {0};
    fedl_status st;
    char topic[256];
    if (chunk == NULL)
        return fail("out of memory", NULL);
    memset(r->task + r->task_length - weights, 0, weights);
    fedl_sha256(r->task + r->task_length - weights, weights, r->task + 48);
    st = fedl_wire_encoder_init(&e, &m, FEDL_WIRE_CHUNK_DEFAULT, r->key.secret_key, &err);
    for (uint32_t i = 0; st == FEDL_OK && i < e.count; i++) {
        snprintf(topic, sizeof topic, "fedl/%s/task/%u", r->job, (unsigned)i);
        st = fedl_wire_encode_chunk(&e, i, chunk, FEDL_WIRE_CHUNK_DEFAULT, &length, &err);
        if (st == FEDL_OK)
            st = fedl_mqtt_publish(fedl_channel_mqtt(r->ch), topic, chunk, length, 0, &err);
    }
    free(chunk);
    if (st != FEDL_OK)
        return fail("forged task", &err);
    printf("forged-task: a task of round %llu from \"coordinator\" signed by %s sent\n",
           (unsigned long long)r->round + 1, r->id);
    return 0;
}

typedef int (*attack_fn)(rogue *r);

static const struct {
    const char *name;
    attack_fn run;
} attacks[] = {{"nan", attack_nan},
               {"oversized", attack_oversized},
               {"replay", attack_replay},
               {"forged-task", attack_forged_task}};

/* The options into r; the attack's function, or NULL after a usage line. */
static attack_fn parse_args(rogue *r, int argc, char **argv)
{
    const char *timeout = "120";
    const struct {
        const char *name, **value;
    } options[] = {{"--broker", &r->broker},
                   {"--job", &r->job},
                   {"--id", &r->id},
                   {"--key", &r->key_path},
                   {"--coordinator-key", &r->coordinator_key_path},
                   {"--attack", &r->attack},
                   {"--victim", &r->victim},
                   {"--timeout-s", &timeout}};
    const size_t n = sizeof options / sizeof options[0];
    int bad = argc % 2 == 0;
    for (int i = 1; i < argc && !bad; i += 2) {
        size_t k = 0;
        while (k < n && strcmp(argv[i], options[k].name) != 0)
            k++;
        if (k < n)
            *options[k].value = argv[i + 1];
        bad = k == n;
    }
    r->timeout_s = atoi(timeout);
    for (size_t k = 0; k < sizeof attacks / sizeof attacks[0]; k++)
        if (!bad && r->broker != NULL && r->job != NULL && r->id != NULL && r->key_path != NULL &&
            r->coordinator_key_path != NULL && r->attack != NULL && r->timeout_s > 0 &&
            strcmp(r->attack, attacks[k].name) == 0)
            return attacks[k].run;
    fprintf(stderr, "usage: rogue_device --broker URL --job JOB --id ID --key FILE "
                    "--coordinator-key FILE --attack nan|oversized|replay|forged-task "
                    "[--victim ID] [--timeout-s N]\n");
    return NULL;
}

int main(int argc, char **argv)
{
    rogue r = {.victim = "dev-0"};
    attack_fn attack = parse_args(&r, argc, argv);
    int rc = attack == NULL ? 2 : load_keys(&r);
    if (rc == 0)
        rc = connect_all(&r);
    if (rc == 0)
        rc = pump(&r, ready, "task to attack");
    if (rc == 0)
        rc = attack(&r);
    fflush(stdout);
    if (rc == 0)
        rc = pump(&r, delivered, "acknowledgement from the broker");
    fedl_channel_close(r.ch);
    fedl_mqtt_destroy(r.raw);
    for (int i = 0; i < CAPTURE_MAX; i++)
        free(r.chunks[i]);
    free(r.task);
    memset(&r.key, 0, sizeof r.key);
    return rc;
}
