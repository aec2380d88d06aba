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
#include "fedl/fl_wire.h"

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

/* ----------------------------------------------------------- channel */

/* fedl messages over a broker connection: what is sent is cut into
 * chunks (fedl/fl_wire.h) and signed; what arrives is parsed, checked
 * against its topic, verified against the sender's key, reassembled,
 * checked for replay (a sequence not above the last one accepted from
 * that sender for that type; statuses exempt) and only then delivered.
 * Whatever fails is dropped and reported with the sender and the reason. */
typedef struct fedl_channel_options {
    fedl_mqtt_options mqtt;
    const char *job;           /* topics under fedl/<job>/ */
    const char *self;          /* this side's sender name: "coordinator" or a client id */
    const uint8_t *secret_key; /* 64 bytes: signs what is sent; NULL = unsigned */
    size_t chunk_bytes;        /* FEDL_WIRE_CHUNK_DEFAULT */
    size_t max_body;           /* FEDL_WIRE_BODY_MAX_DEFAULT */
    size_t reassembly_bytes;   /* bodies in progress at once, 256 MiB */
    int max_transfers;         /* messages in progress at once, 64 */
    fedl_msg_type whole_type;  /* 0, or a type that must come in one chunk: it arrives through
                                  a shared subscription, whose members each get some chunks */
} fedl_channel_options;

fedl_channel_options fedl_channel_defaults(void);

typedef struct fedl_channel fedl_channel;

/* The sender's public key for messages of this type: 1 and the key in
 * public_key, or 0 when messages of this type from this sender are taken
 * unsigned (return 0 only where no key is expected). A sender whose key
 * the callback does not know should be refused by returning -1. */
typedef int (*fedl_channel_key_fn)(void *user, const char *sender, fedl_msg_type type,
                                   uint8_t *public_key);
/* A whole, verified message: the header of its chunks and its body;
 * retained 1 when the broker delivered it from its store on subscribing
 * (published before this side connected), 0 when it was published live. */
typedef void (*fedl_channel_message_fn)(void *user, const fedl_wire_frame *header,
                                        const uint8_t *body, size_t length, int retained);
/* A message or chunk dropped: the topic, the sender if known, the reason. */
typedef void (*fedl_channel_drop_fn)(void *user, const char *topic, const char *sender,
                                     const char *reason);

typedef struct fedl_channel_callbacks {
    fedl_channel_key_fn key;
    fedl_channel_message_fn message;
    fedl_channel_drop_fn drop;
    fedl_mqtt_connection_fn connection;
    void *user;
} fedl_channel_callbacks;

fedl_status fedl_channel_open(const fedl_channel_options *o, const fedl_channel_callbacks *cb,
                              fedl_channel **out, fedl_error *err);
void fedl_channel_close(fedl_channel *ch);
/* Subscribe to fedl/<job>/<suffix> (e.g. "task/+", "update/+"). */
fedl_status fedl_channel_subscribe(fedl_channel *ch, const char *suffix, fedl_error *err);
/* Subscribe to fedl/<job>/<suffix> as one member of the shared
 * subscription `group` ($share/<group>/fedl/<job>/<suffix>, MQTT 5; mosquitto
 * takes it over 3.1.1 too): the broker hands each message to one member of
 * the group. It balances messages, not senders, so the chunks of one
 * message scatter over the members: see whole_type. Retained messages are
 * not sent to shared subscriptions. */
fedl_status fedl_channel_subscribe_shared(fedl_channel *ch, const char *group, const char *suffix,
                                          fedl_error *err);
/* Send a message to fedl/<job>/<suffix>; with retain, chunk i goes to
 * <suffix>/<i> retained, and the retained chunks of a longer earlier
 * message there are cleared, so that a late subscriber gets exactly the
 * latest message. */
fedl_status fedl_channel_send(fedl_channel *ch, const char *suffix, fedl_msg_type type,
                              uint64_t round, const uint8_t *body, size_t length, int retain,
                              fedl_error *err);
fedl_status fedl_channel_run(fedl_channel *ch, int timeout_ms, fedl_error *err);
fedl_mqtt *fedl_channel_mqtt(fedl_channel *ch);
/* Messages and chunks dropped so far. */
uint64_t fedl_channel_dropped(const fedl_channel *ch);

#ifdef __cplusplus
}
#endif
#endif
