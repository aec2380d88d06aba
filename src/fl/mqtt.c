/*
 * mqtt.c - one broker connection through libmosquitto, driven by the
 * host's loop (mosquitto_loop, no library thread): connect with TLS and
 * credentials, a last will, subscriptions renewed on every connect, QoS 1
 * publishing with an outbox that holds what is published while the
 * broker is away, and reconnection with exponential backoff. fedl's own
 * bytes come from the default allocator; libmosquitto keeps its own.
 */
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedl/fl_mqtt.h"
#include "fedl/mem.h"

#define OUTBOX_MAX_BYTES (512u << 20)

typedef struct outgoing {
    struct outgoing *next;
    char *topic;
    uint8_t *payload;
    size_t length;
    int retain;
} outgoing;

struct fedl_mqtt {
    fedl_allocator *alloc;
    struct mosquitto *mosq;
    char host[256];
    int port;
    fedl_mqtt_options o;
    fedl_mqtt_message_fn on_message;
    fedl_mqtt_connection_fn on_connection;
    void *user;
    char **subscriptions;
    int subscription_count;
    int connected;     /* CONNACK accepted */
    int socket_open;   /* TCP (and TLS) up, CONNACK awaited or received */
    int refused;       /* the broker refused the credentials: CONNACK code */
    uint64_t retry_at; /* ms, when disconnected */
    uint32_t backoff_ms;
    int pending;       /* QoS 1 publishes not acknowledged */
    uint64_t arrivals; /* messages and acknowledgements handled, for draining */
    outgoing *outbox, *outbox_tail;
    size_t outbox_bytes;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static char *dup_string(fedl_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = fedl_mem_alloc(a, n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

static void free_string(fedl_allocator *a, char *s)
{
    if (s != NULL)
        fedl_mem_free(a, s, strlen(s) + 1);
}

static void free_outgoing(fedl_allocator *a, outgoing *g)
{
    if (g == NULL)
        return;
    free_string(a, g->topic);
    fedl_mem_free(a, g->payload, g->length > 0 ? g->length : 1);
    fedl_mem_free(a, g, sizeof *g);
}

static void lib_init(void)
{
    mosquitto_lib_init();
}

fedl_mqtt_options fedl_mqtt_defaults(void)
{
    fedl_mqtt_options o;
    memset(&o, 0, sizeof o);
    o.keepalive_s = 30;
    o.backoff_initial_ms = 500;
    o.backoff_max_ms = 30000;
    return o;
}

/* mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; *tls set for mqtts. */
static fedl_status parse_broker(const char *url, char *host, size_t size, int *port, int *tls,
                                fedl_error *err)
{
    const char *rest, *colon;
    size_t n;
    if (url != NULL && strncmp(url, "mqtt://", 7) == 0) {
        rest = url + 7;
        *tls = 0;
        *port = 1883;
    } else if (url != NULL && strncmp(url, "mqtts://", 8) == 0) {
        rest = url + 8;
        *tls = 1;
        *port = 8883;
    } else {
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "broker '%s': mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
                              url != NULL ? url : "");
    }
    colon = strrchr(rest, ':');
    n = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
    if (n == 0 || n >= size || strchr(rest, '/') != NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "broker '%s': no host", url);
    memcpy(host, rest, n);
    host[n] = '\0';
    if (colon != NULL) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end != '\0' || p < 1 || p > 65535)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "broker '%s': port 1-65535", url);
        *port = (int)p;
    }
    return FEDL_OK;
}

static void schedule_retry(fedl_mqtt *m)
{
    m->retry_at = fedl_time_ns() / 1000000u + m->backoff_ms;
    m->backoff_ms =
        m->backoff_ms * 2 < m->o.backoff_max_ms ? m->backoff_ms * 2 : m->o.backoff_max_ms;
}

static int publish_now(fedl_mqtt *m, const char *topic, const void *payload, size_t length,
                       int retain)
{
    int rc = mosquitto_publish(m->mosq, NULL, topic, (int)length, payload, 1, retain != 0);
    if (rc == MOSQ_ERR_SUCCESS)
        m->pending++;
    return rc;
}

static void flush_outbox(fedl_mqtt *m)
{
    while (m->outbox != NULL && m->connected) {
        outgoing *g = m->outbox;
        if (publish_now(m, g->topic, g->payload, g->length, g->retain) != MOSQ_ERR_SUCCESS)
            return;
        m->outbox = g->next;
        if (m->outbox == NULL)
            m->outbox_tail = NULL;
        m->outbox_bytes -= g->length;
        free_outgoing(m->alloc, g);
    }
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    fedl_mqtt *m = obj;
    (void)mosq;
    if (rc != 0) {
        m->refused = rc;
        if (m->on_connection != NULL)
            m->on_connection(m->user, 0, mosquitto_connack_string(rc));
        return;
    }
    m->connected = 1;
    m->refused = 0;
    m->backoff_ms = m->o.backoff_initial_ms;
    for (int i = 0; i < m->subscription_count; i++)
        mosquitto_subscribe(m->mosq, NULL, m->subscriptions[i], 1);
    flush_outbox(m);
    if (m->on_connection != NULL)
        m->on_connection(m->user, 1, "connected");
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    fedl_mqtt *m = obj;
    int was = m->connected;
    (void)mosq;
    m->connected = 0;
    m->socket_open = 0;
    m->pending = 0; /* resent by libmosquitto after the reconnect, counted again */
    schedule_retry(m);
    if (was && m->on_connection != NULL)
        m->on_connection(m->user, 0, rc == 0 ? "disconnected" : mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    fedl_mqtt *m = obj;
    (void)mosq;
    (void)mid;
    if (m->pending > 0)
        m->pending--;
    m->arrivals++;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    fedl_mqtt *m = obj;
    (void)mosq;
    m->arrivals++;
    if (m->on_message != NULL)
        m->on_message(m->user, msg->topic, msg->payload, (size_t)msg->payloadlen, msg->retain);
}

static fedl_status mosq_error(fedl_error *err, const fedl_mqtt *m, const char *what, int rc)
{
    return fedl_error_set(err, FEDL_ERR_IO, "broker %s:%d: %s: %s", m->host, m->port, what,
                          rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
}

static fedl_status configure(fedl_mqtt *m, const fedl_mqtt_options *o, int tls, fedl_error *err)
{
    int rc;
    if (o->protocol_v5)
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (o->username != NULL &&
        (rc = mosquitto_username_pw_set(m->mosq, o->username, o->password)) != MOSQ_ERR_SUCCESS)
        return mosq_error(err, m, "username", rc);
    if (tls) {
        if (o->ca_file == NULL)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "broker %s:%d: mqtts needs a CA file to check the broker",
                                  m->host, m->port);
        rc = mosquitto_tls_set(m->mosq, o->ca_file, NULL, o->cert_file, o->key_file, NULL);
        if (rc != MOSQ_ERR_SUCCESS)
            return fedl_error_set(err, FEDL_ERR_IO, "TLS files (CA %s, certificate %s, key %s): %s",
                                  o->ca_file, o->cert_file != NULL ? o->cert_file : "none",
                                  o->key_file != NULL ? o->key_file : "none",
                                  mosquitto_strerror(rc));
    }
    if (o->will_topic != NULL &&
        (rc = mosquitto_will_set(m->mosq, o->will_topic, (int)o->will_length, o->will_payload, 1,
                                 true)) != MOSQ_ERR_SUCCESS)
        return mosq_error(err, m, "last will", rc);
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_message_callback_set(m->mosq, on_message);
    return FEDL_OK;
}

/* Open the socket and send CONNECT (v5: with a session expiry, so that a
 * persistent session outlives the connection). */
static int open_connection(fedl_mqtt *m)
{
    int rc;
    if (m->o.protocol_v5 && !m->o.clean_session) {
        mosquitto_property *props = NULL;
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 86400);
        rc = mosquitto_connect_bind_v5(m->mosq, m->host, m->port, m->o.keepalive_s, NULL, props);
        mosquitto_property_free_all(&props);
    } else {
        rc = mosquitto_connect(m->mosq, m->host, m->port, m->o.keepalive_s);
    }
    if (rc == MOSQ_ERR_SUCCESS)
        m->socket_open = 1;
    return rc;
}

fedl_status fedl_mqtt_connect(const fedl_mqtt_options *o, fedl_mqtt_message_fn on_msg,
                              fedl_mqtt_connection_fn on_conn, void *user, fedl_mqtt **out,
                              fedl_error *err)
{
    fedl_mqtt *m;
    int tls = 0, rc;
    fedl_status st;
    uint64_t deadline;
    *out = NULL;
    pthread_once(&lib_once, lib_init);
    if (o->client_id == NULL || o->client_id[0] == '\0')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "broker: a client id is needed");
    m = fedl_mem_alloc(fedl_allocator_default(), sizeof *m);
    if (m == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "broker: cannot allocate");
    memset(m, 0, sizeof *m);
    m->alloc = fedl_allocator_default();
    m->o = *o;
    if (m->o.backoff_initial_ms == 0)
        m->o.backoff_initial_ms = 500;
    if (m->o.backoff_max_ms < m->o.backoff_initial_ms)
        m->o.backoff_max_ms = m->o.backoff_initial_ms;
    m->backoff_ms = m->o.backoff_initial_ms;
    m->on_message = on_msg;
    m->on_connection = on_conn;
    m->user = user;
    st = parse_broker(o->broker, m->host, sizeof m->host, &m->port, &tls, err);
    if (st != FEDL_OK) {
        fedl_mem_free(m->alloc, m, sizeof *m);
        return st;
    }
    m->mosq = mosquitto_new(o->client_id, o->clean_session != 0, m);
    if (m->mosq == NULL) {
        fedl_mem_free(m->alloc, m, sizeof *m);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "broker: libmosquitto could not start");
    }
    st = configure(m, o, tls, err);
    if (st == FEDL_OK && (rc = open_connection(m)) != MOSQ_ERR_SUCCESS)
        st = mosq_error(err, m, "cannot connect", rc);
    /* wait for the broker's answer: refused credentials are an error now */
    deadline = fedl_time_ns() / 1000000u + 10000;
    while (st == FEDL_OK && !m->connected && m->refused == 0 &&
           fedl_time_ns() / 1000000u < deadline) {
        rc = mosquitto_loop(m->mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS && !m->connected && m->refused == 0)
            st = mosq_error(err, m, "connection lost before the broker answered", rc);
    }
    if (st == FEDL_OK && m->refused != 0)
        st = fedl_error_set(err, FEDL_ERR_IO, "broker %s:%d refused %s: %s", m->host, m->port,
                            o->client_id, mosquitto_connack_string(m->refused));
    else if (st == FEDL_OK && !m->connected)
        st = fedl_error_set(err, FEDL_ERR_IO, "broker %s:%d did not answer in 10 s", m->host,
                            m->port);
    if (st != FEDL_OK) {
        fedl_mqtt_destroy(m);
        return st;
    }
    *out = m;
    return FEDL_OK;
}

fedl_status fedl_mqtt_subscribe(fedl_mqtt *m, const char *pattern, fedl_error *err)
{
    char **grown =
        fedl_mem_realloc(m->alloc, m->subscriptions, (size_t)m->subscription_count * sizeof *grown,
                         (size_t)(m->subscription_count + 1) * sizeof *grown);
    int rc;
    if (grown == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "broker: cannot allocate");
    m->subscriptions = grown;
    if ((grown[m->subscription_count] = dup_string(m->alloc, pattern)) == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "broker: cannot allocate");
    m->subscription_count++;
    if (!m->connected)
        return FEDL_OK; /* made on the next connect */
    rc = mosquitto_subscribe(m->mosq, NULL, pattern, 1);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
        return mosq_error(err, m, pattern, rc);
    return FEDL_OK;
}

fedl_status fedl_mqtt_publish(fedl_mqtt *m, const char *topic, const void *payload, size_t length,
                              int retain, fedl_error *err)
{
    outgoing *g;
    int rc;
    if (m->connected && m->outbox == NULL) {
        rc = publish_now(m, topic, payload, length, retain);
        if (rc == MOSQ_ERR_SUCCESS)
            return FEDL_OK;
        if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST)
            return mosq_error(err, m, topic, rc);
    }
    if (length > OUTBOX_MAX_BYTES - m->outbox_bytes)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "broker %s:%d away: %zu bytes wait already, no room for %zu more",
                              m->host, m->port, m->outbox_bytes, length);
    g = fedl_mem_alloc(m->alloc, sizeof *g);
    if (g != NULL) {
        memset(g, 0, sizeof *g);
        g->length = length;
        g->topic = dup_string(m->alloc, topic);
        g->payload = fedl_mem_alloc(m->alloc, length > 0 ? length : 1);
    }
    if (g == NULL || g->topic == NULL || g->payload == NULL) {
        free_outgoing(m->alloc, g);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "broker: cannot queue %zu bytes", length);
    }
    memcpy(g->payload, payload, length);
    g->retain = retain;
    if (m->outbox_tail != NULL)
        m->outbox_tail->next = g;
    else
        m->outbox = g;
    m->outbox_tail = g;
    m->outbox_bytes += length;
    return FEDL_OK;
}

fedl_status fedl_mqtt_run(fedl_mqtt *m, int timeout_ms, fedl_error *err)
{
    uint64_t now = fedl_time_ns() / 1000000u;
    (void)err;
    if (!m->socket_open) {
        if (now < m->retry_at) {
            uint64_t wait = m->retry_at - now;
            struct timespec ts;
            if (wait > (uint64_t)timeout_ms)
                wait = (uint64_t)timeout_ms;
            ts.tv_sec = (time_t)(wait / 1000);
            ts.tv_nsec = (long)(wait % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            return FEDL_OK;
        }
        if (mosquitto_reconnect(m->mosq) != MOSQ_ERR_SUCCESS) {
            schedule_retry(m);
            return FEDL_OK;
        }
        m->socket_open = 1;
    }
    if (mosquitto_loop(m->mosq, timeout_ms, 1) != MOSQ_ERR_SUCCESS && m->socket_open) {
        /* lost without a disconnect callback (a refused reconnect) */
        m->socket_open = 0;
        m->connected = 0;
        schedule_retry(m);
    }
    /* mosquitto_loop reads one packet a call, and packets TLS has already
     * decrypted do not wake select(): read on while packets keep coming */
    for (int i = 0; i < 256 && m->socket_open; i++) {
        uint64_t before = m->arrivals;
        if (mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS || m->arrivals == before)
            break;
    }
    flush_outbox(m);
    return FEDL_OK;
}

int fedl_mqtt_connected(const fedl_mqtt *m)
{
    return m->connected;
}

int fedl_mqtt_pending(const fedl_mqtt *m)
{
    return m->pending + (m->outbox != NULL);
}

void fedl_mqtt_destroy(fedl_mqtt *m)
{
    if (m == NULL)
        return;
    if (m->mosq != NULL) {
        m->on_connection = NULL; /* leaving on purpose is not a lost connection */
        if (m->connected) {
            mosquitto_disconnect(m->mosq);
            mosquitto_loop(m->mosq, 100, 1);
        }
        mosquitto_destroy(m->mosq);
    }
    for (int i = 0; i < m->subscription_count; i++)
        free_string(m->alloc, m->subscriptions[i]);
    fedl_mem_free(m->alloc, m->subscriptions, (size_t)m->subscription_count * sizeof(char *));
    while (m->outbox != NULL) {
        outgoing *g = m->outbox;
        m->outbox = g->next;
        free_outgoing(m->alloc, g);
    }
    fedl_mem_free(m->alloc, m, sizeof *m);
}
