/*
 * test_mqtt.c - the broker connection against a real mosquitto started by
 * the test on a free loopback port: messages go round at QoS 1; a
 * persistent session gets what was published while it was away; a broker
 * killed and restarted is reconnected to, and what was published in
 * between is delivered; a client that dies without saying goodbye has its
 * last will published; wrong credentials are refused with the broker's
 * reason. Over a channel, a signed task of several chunks reaches a device
 * that connects after it was published (retained); a forged task, an
 * update on another client's topic and a replayed update are dropped with
 * the reason. Aggregators sharing a subscription (MQTT 5) get each update
 * once between them, and refuse one cut into chunks, saying why. Skipped, saying why, when
 * mosquitto is not installed.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/fl.h"
#include "support/broker.h"

typedef struct inbox {
    int count;
    char topic[8][128];
    char text[8][128];
    int retained[8];
    int ups, downs;
} inbox;

static void on_message(void *user, const char *topic, const uint8_t *payload, size_t length,
                       int retained)
{
    inbox *in = user;
    if (in->count < 8) {
        snprintf(in->topic[in->count], sizeof in->topic[0], "%s", topic);
        snprintf(in->text[in->count], sizeof in->text[0], "%.*s", (int)length,
                 (const char *)payload);
        in->retained[in->count] = retained;
    }
    in->count++;
}

static void on_connection(void *user, int connected, const char *reason)
{
    inbox *in = user;
    (void)reason;
    if (connected)
        in->ups++;
    else
        in->downs++;
}

static fedl_mqtt_options options(const test_broker *b, const char *id, char *url, size_t size)
{
    fedl_mqtt_options o = fedl_mqtt_defaults();
    snprintf(url, size, "mqtt://127.0.0.1:%d", b->port);
    o.broker = url;
    o.client_id = id;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 400;
    return o;
}

/* Run both connections until `in` has `count` messages or 5 s pass. */
static void run_until(fedl_mqtt *a, fedl_mqtt *b, inbox *in, int count)
{
    fedl_error err = {0};
    for (int i = 0; i < 250 && in->count < count; i++) {
        if (a != NULL)
            assert_int_equal(fedl_mqtt_run(a, 10, &err), FEDL_OK);
        if (b != NULL)
            assert_int_equal(fedl_mqtt_run(b, 10, &err), FEDL_OK);
    }
}

static int setup(void **state)
{
    static test_broker broker;
    if (test_broker_binary() == NULL) {
        fprintf(stderr, "SKIP: mosquitto is not installed (apt-get install mosquitto)\n");
        *state = NULL;
        return 0;
    }
    if (test_broker_start(&broker, NULL) != 0)
        return -1;
    *state = &broker;
    return 0;
}

static test_broker locked; /* the password-protected broker, stopped here if a test fails */

static int teardown(void **state)
{
    if (*state != NULL)
        test_broker_free(*state);
    test_broker_free(&locked);
    return 0;
}

#define NEED_BROKER(state)                                                                         \
    do {                                                                                           \
        if ((state) == NULL)                                                                       \
            skip();                                                                                \
    } while (0)

static void test_messages_go_round_and_a_session_keeps_them(void **state)
{
    test_broker *b = *state;
    char url[64];
    fedl_mqtt *pub = NULL, *sub = NULL;
    inbox pin = {0}, sin = {0};
    fedl_error err = {0};
    fedl_mqtt_options o;
    NEED_BROKER(b);
    o = options(b, "sub-1", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &sin, &sub, &err), FEDL_OK);
    assert_int_equal(fedl_mqtt_subscribe(sub, "fedl/t1/#", &err), FEDL_OK);
    o = options(b, "pub-1", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &pin, &pub, &err), FEDL_OK);
    assert_true(fedl_mqtt_connected(pub));
    run_until(pub, sub, &sin, 0); /* the subscription goes out */
    for (int i = 0; i < 20; i++) {
        fedl_mqtt_run(sub, 10, &err);
        fedl_mqtt_run(pub, 10, &err);
    }
    assert_int_equal(fedl_mqtt_publish(pub, "fedl/t1/a", "one", 3, 0, &err), FEDL_OK);
    run_until(pub, sub, &sin, 1);
    assert_int_equal(sin.count, 1);
    assert_string_equal(sin.topic[0], "fedl/t1/a");
    assert_string_equal(sin.text[0], "one");
    /* the subscriber goes away; its session stays; two messages wait */
    fedl_mqtt_destroy(sub);
    assert_int_equal(fedl_mqtt_publish(pub, "fedl/t1/b", "two", 3, 0, &err), FEDL_OK);
    assert_int_equal(fedl_mqtt_publish(pub, "fedl/t1/c", "three", 5, 1, &err), FEDL_OK);
    for (int i = 0; i < 50 && fedl_mqtt_pending(pub) > 0; i++)
        fedl_mqtt_run(pub, 10, &err);
    assert_int_equal(fedl_mqtt_pending(pub), 0); /* acknowledged by the broker */
    o = options(b, "sub-1", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &sin, &sub, &err), FEDL_OK);
    run_until(pub, sub, &sin, 3);
    assert_int_equal(sin.count, 3);
    assert_string_equal(sin.text[1], "two");
    assert_string_equal(sin.text[2], "three");
    fedl_mqtt_destroy(sub);
    fedl_mqtt_destroy(pub);
}

static void test_a_restarted_broker_is_reconnected_to(void **state)
{
    test_broker *b = *state;
    char url[64];
    fedl_mqtt *pub = NULL, *sub = NULL;
    inbox pin = {0}, sin = {0};
    fedl_error err = {0};
    fedl_mqtt_options o;
    NEED_BROKER(b);
    o = options(b, "sub-2", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &sin, &sub, &err), FEDL_OK);
    assert_int_equal(fedl_mqtt_subscribe(sub, "fedl/t2/#", &err), FEDL_OK);
    o = options(b, "pub-2", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &pin, &pub, &err), FEDL_OK);
    for (int i = 0; i < 20; i++) {
        fedl_mqtt_run(sub, 10, &err);
        fedl_mqtt_run(pub, 10, &err);
    }
    test_broker_stop(b, 1);
    for (int i = 0; i < 30; i++) { /* both notice */
        fedl_mqtt_run(sub, 10, &err);
        fedl_mqtt_run(pub, 10, &err);
    }
    assert_false(fedl_mqtt_connected(pub));
    assert_int_equal(pin.downs, 1);
    /* published while the broker is away: kept, sent after the reconnect */
    assert_int_equal(fedl_mqtt_publish(pub, "fedl/t2/x", "kept", 4, 0, &err), FEDL_OK);
    assert_int_equal(test_broker_restart(b), 0);
    for (int i = 0; i < 300 && !(fedl_mqtt_connected(pub) && fedl_mqtt_connected(sub)); i++) {
        fedl_mqtt_run(sub, 10, &err);
        fedl_mqtt_run(pub, 10, &err);
    }
    assert_true(fedl_mqtt_connected(pub) && fedl_mqtt_connected(sub));
    assert_int_equal(pin.ups, 2);
    /* persistence is off in this broker: the subscription is made again */
    run_until(pub, sub, &sin, 1);
    if (sin.count == 0) { /* the publish may have raced the resubscription */
        assert_int_equal(fedl_mqtt_publish(pub, "fedl/t2/x", "kept", 4, 0, &err), FEDL_OK);
        run_until(pub, sub, &sin, 1);
    }
    assert_true(sin.count >= 1);
    assert_string_equal(sin.text[0], "kept");
    fedl_mqtt_destroy(sub);
    fedl_mqtt_destroy(pub);
}

static void test_a_dead_client_leaves_its_last_will(void **state)
{
    test_broker *b = *state;
    char url[64];
    fedl_mqtt *watch = NULL;
    inbox in = {0};
    fedl_error err = {0};
    fedl_mqtt_options o;
    pid_t child;
    int status;
    NEED_BROKER(b);
    o = options(b, "watcher", url, sizeof url);
    assert_int_equal(fedl_mqtt_connect(&o, on_message, on_connection, &in, &watch, &err), FEDL_OK);
    assert_int_equal(fedl_mqtt_subscribe(watch, "fedl/t3/status/#", &err), FEDL_OK);
    for (int i = 0; i < 20; i++)
        fedl_mqtt_run(watch, 10, &err);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) { /* connects with a will, then dies without a word */
        fedl_mqtt *dev = NULL;
        fedl_mqtt_options d = options(b, "dev-9", url, sizeof url);
        d.will_topic = "fedl/t3/status/dev-9";
        d.will_payload = (const uint8_t *)"offline";
        d.will_length = 7;
        if (fedl_mqtt_connect(&d, NULL, NULL, NULL, &dev, &err) != FEDL_OK)
            _exit(1);
        _exit(0);
    }
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    run_until(watch, NULL, &in, 1);
    assert_int_equal(in.count, 1);
    assert_string_equal(in.topic[0], "fedl/t3/status/dev-9");
    assert_string_equal(in.text[0], "offline");
    fedl_mqtt_destroy(watch);
}

static void test_wrong_credentials_and_bad_urls_are_refused(void **state)
{
    char url[64], passwords[300], command[700];
    fedl_mqtt *m = NULL;
    fedl_error err = {0};
    fedl_mqtt_options o;
    FILE *f;
    NEED_BROKER(*state);
    o = fedl_mqtt_defaults();
    o.client_id = "x";
    o.broker = "http://example.org";
    assert_int_equal(fedl_mqtt_connect(&o, NULL, NULL, NULL, &m, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "mqtt://HOST[:PORT]"));
    o.broker = "mqtts://127.0.0.1:1";
    assert_int_equal(fedl_mqtt_connect(&o, NULL, NULL, NULL, &m, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "needs a CA file"));
    /* a broker with a password file: a wrong password is refused */
    snprintf(passwords, sizeof passwords, "/tmp/fedl-passwords-%d", (int)getpid());
    f = fopen(passwords, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(command, sizeof command, "mosquitto_passwd -b '%s' dev-1 right >/dev/null 2>&1",
             passwords);
    if (system(command) != 0) {
        unlink(passwords);
        skip(); /* mosquitto_passwd comes with mosquitto; without it this part cannot run */
    }
    chmod(passwords, 0644);
    snprintf(command, sizeof command, "allow_anonymous false\npassword_file %s", passwords);
    assert_int_equal(test_broker_start(&locked, command), 0);
    o = options(&locked, "dev-1", url, sizeof url);
    o.username = "dev-1";
    o.password = "wrong";
    assert_int_equal(fedl_mqtt_connect(&o, NULL, NULL, NULL, &m, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "refused dev-1"));
    o.password = "right";
    assert_int_equal(fedl_mqtt_connect(&o, NULL, NULL, NULL, &m, &err), FEDL_OK);
    fedl_mqtt_destroy(m);
    test_broker_free(&locked);
    unlink(passwords);
}

/* ---------------------------------------------------------------- channel */

typedef struct endpoint {
    fedl_sign_keypair coordinator, device, forger;
    int messages;
    char last_body[64];
    fedl_msg_type last_type;
    char drops[8][300];
    int drop_count;
} endpoint;

static endpoint world; /* the keys every side knows, and what arrived */

/* Tasks must be signed by the coordinator, updates by dev-1's key. */
static int key_of(void *user, const char *sender, fedl_msg_type type, uint8_t *key)
{
    endpoint *e = user;
    if (type == FEDL_MSG_STATUS)
        return 0;
    if (strcmp(sender, "coordinator") == 0) {
        memcpy(key, e->coordinator.public_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
        return 1;
    }
    if (strcmp(sender, "dev-1") == 0) {
        memcpy(key, e->device.public_key, FEDL_WIRE_PUBLIC_KEY_BYTES);
        return 1;
    }
    return -1;
}

static void got(void *user, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                int retained)
{
    (void)retained;
    endpoint *e = user;
    e->messages++;
    e->last_type = h->type;
    snprintf(e->last_body, sizeof e->last_body, "%.*s", (int)(length < 60 ? length : 60),
             (const char *)body);
}

static void dropped(void *user, const char *topic, const char *sender, const char *reason)
{
    endpoint *e = user;
    if (e->drop_count < 8)
        snprintf(e->drops[e->drop_count], sizeof e->drops[0], "%s from %s: %s", topic,
                 sender != NULL ? sender : "?", reason);
    e->drop_count++;
}

static fedl_channel *open_channel(test_broker *b, const char *self, const uint8_t *secret,
                                  char *url, size_t size)
{
    fedl_channel_options o = fedl_channel_defaults();
    fedl_channel_callbacks cb = {key_of, got, dropped, NULL, &world};
    fedl_channel *ch = NULL;
    fedl_error err = {0};
    o.mqtt = options(b, self, url, size);
    o.job = "j1";
    o.self = self;
    o.secret_key = secret;
    o.chunk_bytes = 400; /* 152 body bytes a chunk: several chunks */
    assert_int_equal(fedl_channel_open(&o, &cb, &ch, &err), FEDL_OK);
    return ch;
}

static void pump(fedl_channel *a, fedl_channel *b, int rounds)
{
    fedl_error err = {0};
    for (int i = 0; i < rounds; i++) {
        fedl_channel_run(a, 5, &err);
        if (b != NULL)
            fedl_channel_run(b, 5, &err);
    }
}

static int dropped_with(const char *needle)
{
    for (int i = 0; i < world.drop_count && i < 8; i++)
        if (strstr(world.drops[i], needle) != NULL)
            return 1;
    return 0;
}

static void test_the_channel_checks_what_it_delivers(void **state)
{
    test_broker *b = *state;
    char url[64], url2[64], body[1000];
    fedl_channel *coordinator, *device, *forger;
    fedl_error err = {0};
    (void)state;
    NEED_BROKER(b);
    memset(&world, 0, sizeof world);
    assert_int_equal(fedl_sign_keypair_generate(&world.coordinator, &err), FEDL_OK);
    assert_int_equal(fedl_sign_keypair_generate(&world.device, &err), FEDL_OK);
    assert_int_equal(fedl_sign_keypair_generate(&world.forger, &err), FEDL_OK);
    memset(body, 'w', sizeof body);
    memcpy(body, "task-of-round-1", 15);
    coordinator = open_channel(b, "coordinator", world.coordinator.secret_key, url, sizeof url);
    assert_int_equal(fedl_channel_subscribe(coordinator, "update/+", &err), FEDL_OK);
    /* a retained task of 7 chunks, published before the device connects */
    assert_int_equal(fedl_channel_send(coordinator, "task", FEDL_MSG_TASK, 1, (const uint8_t *)body,
                                       sizeof body, 1, &err),
                     FEDL_OK);
    pump(coordinator, NULL, 20);
    device = open_channel(b, "dev-1", world.device.secret_key, url2, sizeof url2);
    assert_int_equal(fedl_channel_subscribe(device, "task/+", &err), FEDL_OK);
    pump(coordinator, device, 40);
    assert_int_equal(world.messages, 1);
    assert_int_equal(world.last_type, FEDL_MSG_TASK);
    assert_memory_equal(world.last_body, body, 60); /* the first 60 bytes, kept by got() */
    /* the device answers; the coordinator gets it */
    assert_int_equal(fedl_channel_send(device, "update/dev-1", FEDL_MSG_UPDATE, 1,
                                       (const uint8_t *)"an update", 9, 0, &err),
                     FEDL_OK);
    pump(coordinator, device, 40);
    assert_int_equal(world.messages, 2);
    assert_string_equal(world.last_body, "an update");
    /* a forger posing as the coordinator, and as dev-1 on dev-1's topic */
    {
        fedl_channel_options o = fedl_channel_defaults();
        fedl_channel_callbacks cb = {key_of, got, dropped, NULL, &world};
        o.mqtt = options(b, "mallory", url2, sizeof url2);
        o.job = "j1";
        o.self = "coordinator";
        o.secret_key = world.forger.secret_key;
        assert_int_equal(fedl_channel_open(&o, &cb, &forger, &err), FEDL_OK);
    }
    assert_int_equal(
        fedl_channel_send(forger, "task", FEDL_MSG_TASK, 2, (const uint8_t *)"evil", 4, 1, &err),
        FEDL_OK);
    pump(forger, device, 40);
    assert_int_equal(world.messages, 2);
    assert_true(dropped_with("task from coordinator: bad signature"));
    fedl_channel_close(forger);
    /* dev-1's name on dev-2's topic */
    assert_int_equal(fedl_channel_send(device, "update/dev-2", FEDL_MSG_UPDATE, 1,
                                       (const uint8_t *)"elsewhere", 9, 0, &err),
                     FEDL_OK);
    pump(coordinator, device, 40);
    assert_int_equal(world.messages, 2);
    assert_true(dropped_with("does not belong on this topic"));
    /* a replay: the same update chunk published again as it was */
    {
        fedl_wire_message m = {FEDL_MSG_UPDATE, "j1", "dev-1", 1, 5, (const uint8_t *)"once", 4};
        fedl_wire_encoder e;
        uint8_t chunk[400];
        size_t n;
        fedl_mqtt *raw = fedl_channel_mqtt(device);
        assert_int_equal(fedl_wire_encoder_init(&e, &m, 400, world.device.secret_key, &err),
                         FEDL_OK);
        assert_int_equal(fedl_wire_encode_chunk(&e, 0, chunk, sizeof chunk, &n, &err), FEDL_OK);
        assert_int_equal(fedl_mqtt_publish(raw, "fedl/j1/update/dev-1", chunk, n, 0, &err),
                         FEDL_OK);
        pump(coordinator, device, 40);
        assert_true(dropped_with("a replayed update: sequence 5"));
    }
    /* a replay of a message of several chunks still remembered as complete */
    {
        uint8_t big[500];
        int drops = world.drop_count;
        memset(big, 'b', sizeof big);
        const uint64_t base = UINT64_C(1) << 62; /* above the wall-clock sequences sent */
        for (uint64_t seq = 10; seq <= 30; seq += 10) {
            uint64_t sequence = base + (seq == 30 ? 10 : seq); /* the third replays the first */
            fedl_wire_message m = {FEDL_MSG_UPDATE, "j1", "dev-1", 1, sequence, big, sizeof big};
            fedl_wire_encoder e;
            uint8_t chunk[400];
            size_t n;
            assert_int_equal(fedl_wire_encoder_init(&e, &m, 400, world.device.secret_key, &err),
                             FEDL_OK);
            for (uint32_t i = 0; i < e.count; i++) {
                assert_int_equal(fedl_wire_encode_chunk(&e, i, chunk, sizeof chunk, &n, &err),
                                 FEDL_OK);
                assert_int_equal(fedl_mqtt_publish(fedl_channel_mqtt(device),
                                                   "fedl/j1/update/dev-1", chunk, n, 0, &err),
                                 FEDL_OK);
            }
            pump(coordinator, device, 40);
        }
        assert_int_equal(world.messages, 4); /* sequences 10 and 20 */
        assert_int_equal(world.drop_count, drops + 1);
        assert_true(dropped_with("a replayed update: sequence 4611686018427387914, the last "
                                 "accepted from it 4611686018427387924"));
    }
    fedl_channel_close(device);
    fedl_channel_close(coordinator);
}

/* One member of a shared subscription: what it got. */
typedef struct member {
    int messages;
    char drops[300];
} member;

static int member_key(void *user, const char *sender, fedl_msg_type type, uint8_t *key)
{
    (void)user;
    return key_of(&world, sender, type, key);
}

static void member_got(void *user, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                       int retained)
{
    member *m = user;
    (void)h, (void)body, (void)length, (void)retained;
    m->messages++;
}

static void member_dropped(void *user, const char *topic, const char *sender, const char *reason)
{
    member *m = user;
    (void)topic, (void)sender;
    snprintf(m->drops, sizeof m->drops, "%s", reason);
}

static fedl_channel *open_member(test_broker *b, const char *self, member *m, char *url,
                                 size_t size)
{
    fedl_channel_options o = fedl_channel_defaults();
    fedl_channel_callbacks cb = {member_key, member_got, member_dropped, NULL, m};
    fedl_channel *ch = NULL;
    fedl_error err = {0};
    o.mqtt = options(b, self, url, size);
    o.mqtt.protocol_v5 = 1;
    o.job = "j2";
    o.self = self;
    o.chunk_bytes = 400;
    o.whole_type = FEDL_MSG_UPDATE;
    assert_int_equal(fedl_channel_open(&o, &cb, &ch, &err), FEDL_OK);
    assert_int_equal(fedl_channel_subscribe_shared(ch, "aggregators", "update/+", &err), FEDL_OK);
    assert_int_equal(fedl_channel_subscribe_shared(ch, "a/b", "update/+", &err),
                     FEDL_ERR_INVALID_ARG);
    return ch;
}

static void test_a_shared_subscription_hands_each_update_to_one_member(void **state)
{
    test_broker *b = *state;
    char url[3][64];
    member a = {0}, c = {0};
    fedl_channel *agg_a, *agg_c, *device;
    fedl_channel_options o = fedl_channel_defaults();
    fedl_channel_callbacks cb = {key_of, got, dropped, NULL, &world};
    fedl_error err = {0};
    uint8_t big[1000] = {0};
    NEED_BROKER(b);
    memset(&world, 0, sizeof world);
    assert_int_equal(fedl_sign_keypair_generate(&world.device, &err), FEDL_OK);
    agg_a = open_member(b, "agg-a", &a, url[0], sizeof url[0]);
    agg_c = open_member(b, "agg-c", &c, url[1], sizeof url[1]);
    o.mqtt = options(b, "dev-1", url[2], sizeof url[2]);
    o.job = "j2";
    o.self = "dev-1";
    o.secret_key = world.device.secret_key;
    o.chunk_bytes = 400;
    assert_int_equal(fedl_channel_open(&o, &cb, &device, &err), FEDL_OK);
    pump(agg_a, agg_c, 20);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(fedl_channel_send(device, "update/dev-1", FEDL_MSG_UPDATE, 1,
                                           (const uint8_t *)"one chunk", 9, 0, &err),
                         FEDL_OK);
        pump(device, NULL, 2);
    }
    for (int i = 0; i < 100 && a.messages + c.messages < 6; i++)
        pump(agg_a, agg_c, 1);
    pump(agg_a, agg_c, 10);
    assert_int_equal(a.messages + c.messages, 6); /* each update to one member */
    assert_true(a.messages >= 1 && c.messages >= 1);
    /* an update of 7 chunks: each member holds a part; both refuse it, saying why */
    assert_int_equal(
        fedl_channel_send(device, "update/dev-1", FEDL_MSG_UPDATE, 1, big, sizeof big, 0, &err),
        FEDL_OK);
    for (int i = 0; i < 100 && (a.drops[0] == '\0' || c.drops[0] == '\0'); i++)
        pump(device, agg_a, 1), pump(agg_c, NULL, 1);
    assert_int_equal(a.messages + c.messages, 6);
    assert_non_null(strstr(a.drops, "update in 7 chunks: a shared subscription scatters"));
    assert_non_null(strstr(c.drops, "at least 1248 bytes"));
    fedl_channel_close(device);
    fedl_channel_close(agg_a);
    fedl_channel_close(agg_c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_go_round_and_a_session_keeps_them),
        cmocka_unit_test(test_a_restarted_broker_is_reconnected_to),
        cmocka_unit_test(test_a_dead_client_leaves_its_last_will),
        cmocka_unit_test(test_wrong_credentials_and_bad_urls_are_refused),
        cmocka_unit_test(test_the_channel_checks_what_it_delivers),
        cmocka_unit_test(test_a_shared_subscription_hands_each_update_to_one_member),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
