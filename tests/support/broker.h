/*
 * broker.h - a real mosquitto broker for tests: started on a free
 * loopback port with a generated configuration, stopped (or killed and
 * restarted on the same port) by the test.
 */
#ifndef FEDL_TEST_BROKER_H
#define FEDL_TEST_BROKER_H

#include <sys/types.h>

typedef struct test_broker {
    char dir[256]; /* its configuration and log */
    char conf[300];
    int port;
    pid_t pid;
} test_broker;

/* The mosquitto binary, or NULL when it is not installed. */
const char *test_broker_binary(void);
/* Start a broker on a free port with `extra` appended to a configuration
 * of "listener PORT 127.0.0.1", "allow_anonymous true" (unless extra says
 * otherwise) and persistence off; waits until it accepts connections.
 * 0, or -1 with a message on stderr. */
int test_broker_start(test_broker *b, const char *extra);
/* Start it again on the same port with the same configuration. */
int test_broker_restart(test_broker *b);
/* SIGKILL (hard = 1) or SIGTERM, and wait for it. */
void test_broker_stop(test_broker *b, int hard);
/* Stop it and remove its directory. */
void test_broker_free(test_broker *b);

#endif
