/*
 * fedl/fl_mqtt.h - a connection to an MQTT broker (libmosquitto), as the
 * federated hosts use it (part of the fl module; fedl/fl.h includes it):
 * TLS and username/password, a persistent session under a fixed client
 * id, a last will, QoS 1, and reconnection with exponential backoff. It
 * moves bytes only; the messages are fedl/fl_wire.h's. Single-threaded:
 * the host calls fedl_mqtt_run from its own loop, and messages are
 * handed to its callback from inside that call.
 */
#ifndef FEDL_FL_MQTT_H
#define FEDL_FL_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fedl_mqtt_options {
    const char *broker;              /* mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883) */
    const char *client_id;           /* the MQTT client id; the session is kept under it */
    const char *username, *password; /* NULL: none */
    const char *ca_file, *cert_file, *key_file; /* TLS: the CA (required for mqtts), and a
                                                   client certificate and key (optional) */
    int keepalive_s;                            /* 30 */
    int clean_session;                          /* 0: persistent (the broker keeps subscriptions and
                                                   queues QoS 1 messages while this client is away) */
    int protocol_v5;             /* 0: MQTT 3.1.1; 1: MQTT 5 (shared subscriptions) */
    const char *will_topic;      /* NULL: no last will */
    const uint8_t *will_payload; /* published, retained, QoS 1, if the connection drops */
    size_t will_length;
    uint32_t backoff_initial_ms; /* first reconnect delay, 500 */
    uint32_t backoff_max_ms;     /* at most, 30000 */
} fedl_mqtt_options;

fedl_mqtt_options fedl_mqtt_defaults(void);

typedef struct fedl_mqtt fedl_mqtt;

/* A message arrived on a subscribed topic; payload valid during the call. */
typedef void (*fedl_mqtt_message_fn)(void *user, const char *topic, const uint8_t *payload,
                                     size_t length, int retained);
/* The connection came up (connected 1, after every reconnect too) or went
 * down (0, with the reason). */
typedef void (*fedl_mqtt_connection_fn)(void *user, int connected, const char *reason);

/* Connect (blocking, up to the broker's answer). Subscriptions made
 * afterwards are made again after every reconnect. FEDL_ERR_IO naming the
 * broker and libmosquitto's reason when it cannot connect. */
fedl_status fedl_mqtt_connect(const fedl_mqtt_options *o, fedl_mqtt_message_fn on_message,
                              fedl_mqtt_connection_fn on_connection, void *user, fedl_mqtt **out,
                              fedl_error *err);
/* Subscribe at QoS 1. */
fedl_status fedl_mqtt_subscribe(fedl_mqtt *m, const char *pattern, fedl_error *err);
/* Publish at QoS 1. While disconnected the message is queued and sent
 * after the reconnect. */
fedl_status fedl_mqtt_publish(fedl_mqtt *m, const char *topic, const void *payload, size_t length,
                              int retain, fedl_error *err);
/* Run the network for up to timeout_ms: read and write, deliver messages,
 * reconnect with backoff when the broker is lost. FEDL_OK unless
 * something other than the connection failed. */
fedl_status fedl_mqtt_run(fedl_mqtt *m, int timeout_ms, fedl_error *err);
int fedl_mqtt_connected(const fedl_mqtt *m);
/* QoS 1 messages published and not yet acknowledged by the broker. */
int fedl_mqtt_pending(const fedl_mqtt *m);
/* Disconnect cleanly (no last will) and free. */
void fedl_mqtt_destroy(fedl_mqtt *m);

#ifdef __cplusplus
}
#endif
#endif
