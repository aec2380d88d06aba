/*
 * test_mqtt.c - the broker connection against a real mosquitto started by
 * the test on a free loopback port: messages go round at QoS 1; a
 * persistent session gets what was published while it was away; a broker
 * killed and restarted is reconnected to, and what was published in
 * between is delivered; a client that dies without saying goodbye has its
 * last will published; wrong credentials are refused with the broker's
 * reason. Skipped, saying why, when mosquitto is not installed.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_go_round_and_a_session_keeps_them),
        cmocka_unit_test(test_a_restarted_broker_is_reconnected_to),
        cmocka_unit_test(test_a_dead_client_leaves_its_last_will),
        cmocka_unit_test(test_wrong_credentials_and_bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
