/*
 * channel.c - fedl messages over one broker connection. Sending: the body
 * cut into signed chunks, published to fedl/<job>/<suffix> (or, retained,
 * one topic per chunk). Receiving, in this order: the chunk parsed (size
 * cap, CRC, names), its type, sender and job checked against the topic it
 * came on, its signature against the key the host gives for that sender,
 * then reassembly, the body's SHA-256, and a replay check. Whatever fails
 * is dropped and reported; nothing unchecked reaches the host.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fedl/fl_mqtt.h"
#include "fedl/mem.h"

#define REASSEMBLY_IDLE_MS 120000u

typedef struct seen {
    char sender[FEDL_WIRE_SENDER_MAX];
    fedl_msg_type type;
    uint64_t sequence; /* the last one accepted */
} seen;

typedef struct retained_topic {
    char suffix[64];
    uint32_t chunks; /* published last time */
} retained_topic;

struct fedl_channel {
    fedl_allocator *alloc;
    char job[FEDL_WIRE_JOB_MAX];
    char self[FEDL_WIRE_SENDER_MAX];
    char prefix[FEDL_WIRE_JOB_MAX + 8]; /* "fedl/<job>/" */
    uint8_t secret_key[FEDL_WIRE_SECRET_KEY_BYTES];
    int has_key;
    size_t chunk_bytes, max_body;
    fedl_msg_type whole_type; /* 0 or a type that must come in one chunk */
    fedl_channel_callbacks cb;
    fedl_mqtt *mqtt;
    fedl_reassembler *reassembler;
    uint8_t *chunk; /* (chunk_bytes) */
    uint64_t sequence;
    seen *seen; /* (seen_capacity) */
    int seen_count, seen_capacity;
    retained_topic retained[8];
    int retained_count;
    uint64_t dropped;
};

fedl_channel_options fedl_channel_defaults(void)
{
    fedl_channel_options o;
    memset(&o, 0, sizeof o);
    o.mqtt = fedl_mqtt_defaults();
    o.chunk_bytes = FEDL_WIRE_CHUNK_DEFAULT;
    o.max_body = FEDL_WIRE_BODY_MAX_DEFAULT;
    o.reassembly_bytes = 256u << 20;
    o.max_transfers = 64;
    return o;
}

static void drop(fedl_channel *ch, const char *topic, const char *sender, const char *reason)
{
    ch->dropped++;
    if (ch->cb.drop != NULL)
        ch->cb.drop(ch->cb.user, topic, sender, reason);
}

/* The message type a topic carries ("task/3" -> TASK), and in *owner the
 * sender a per-sender topic names ("status/dev-1" or, retained per chunk,
 * "status/dev-1/0" -> dev-1; else ""). 0 for a topic of no type. */
static int topic_type(const char *rest, char *owner, size_t size)
{
    static const struct {
        const char *prefix;
        fedl_msg_type type;
        int per_sender;
    } kinds[] = {{"task/", FEDL_MSG_TASK, 0},
                 {"control/", FEDL_MSG_CONTROL, 0},
                 {"update/", FEDL_MSG_UPDATE, 1},
                 {"status/", FEDL_MSG_STATUS, 1},
                 {"partial/", FEDL_MSG_PARTIAL, 1}};
    owner[0] = '\0';
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(rest, kinds[i].prefix, n) == 0) {
            if (kinds[i].per_sender) {
                const char *slash = strchr(rest + n, '/');
                size_t len = slash != NULL ? (size_t)(slash - (rest + n)) : strlen(rest + n);
                if (len == 0 || len >= size ||
                    (slash != NULL &&
                     (slash[1] == '\0' || strspn(slash + 1, "0123456789") != strlen(slash + 1))))
                    return 0;
                memcpy(owner, rest + n, len);
                owner[len] = '\0';
            }
            return (int)kinds[i].type;
        }
    }
    return 0;
}

/* The last sequence accepted from (sender, type) of f, or NULL. */
static seen *last_seen(fedl_channel *ch, const fedl_wire_frame *f)
{
    for (int i = 0; i < ch->seen_count; i++)
        if (ch->seen[i].type == f->type && strcmp(ch->seen[i].sender, f->sender) == 0)
            return &ch->seen[i];
    return NULL;
}

/* 1 if sequence is newer than the last accepted from (sender, type), and
 * records it; 0 for a replay. */
static int fresh(fedl_channel *ch, const fedl_wire_frame *f, uint64_t *last)
{
    seen *s = last_seen(ch, f);
    if (s != NULL) {
        *last = s->sequence;
        if (f->sequence <= s->sequence)
            return 0;
        s->sequence = f->sequence;
        return 1;
    }
    if (ch->seen_count == ch->seen_capacity) {
        int grown = ch->seen_capacity ? ch->seen_capacity * 2 : 16;
        seen *more = fedl_mem_realloc(ch->alloc, ch->seen, (size_t)ch->seen_capacity * sizeof *more,
                                      (size_t)grown * sizeof *more);
        if (more == NULL)
            return 1; /* cannot remember it: let the state machine judge */
        ch->seen = more;
        ch->seen_capacity = grown;
    }
    s = &ch->seen[ch->seen_count++];
    memcpy(s->sender, f->sender, sizeof s->sender);
    s->type = f->type;
    s->sequence = f->sequence;
    return 1;
}

static void replayed(fedl_channel *ch, const char *topic, const fedl_wire_frame *f, uint64_t last)
{
    char reason[200];
    snprintf(reason, sizeof reason, "a replayed %s: sequence %llu, the last accepted from it %llu",
             fedl_msg_type_name(f->type), (unsigned long long)f->sequence,
             (unsigned long long)last);
    drop(ch, topic, f->sender, reason);
}

static void on_chunk(void *user, const char *topic, const uint8_t *payload, size_t length,
                     int retained)
{
    fedl_channel *ch = user;
    fedl_wire_frame f;
    fedl_reassembly res;
    fedl_error err = {0};
    uint8_t key[FEDL_WIRE_PUBLIC_KEY_BYTES];
    char owner[FEDL_WIRE_SENDER_MAX + 16], reason[400];
    size_t n = strlen(ch->prefix);
    int type, known;
    uint64_t last = 0;
    if (length == 0) /* a cleared retained chunk */
        return;
    if (strncmp(topic, ch->prefix, n) != 0 ||
        (type = topic_type(topic + n, owner, sizeof owner)) == 0) {
        drop(ch, topic, NULL, "a topic outside this job's");
        return;
    }
    if (fedl_wire_parse(payload, length, ch->max_body, &f, &err) != FEDL_OK) {
        drop(ch, topic, NULL, err.message);
        return;
    }
    if ((int)f.type != type || strcmp(f.job, ch->job) != 0 ||
        (owner[0] != '\0' && strcmp(owner, f.sender) != 0) ||
        ((f.type == FEDL_MSG_TASK || f.type == FEDL_MSG_CONTROL) &&
         strcmp(f.sender, "coordinator") != 0)) {
        snprintf(reason, sizeof reason, "a %s of job %s from %s does not belong on this topic",
                 fedl_msg_type_name(f.type), f.job, f.sender);
        drop(ch, topic, f.sender, reason);
        return;
    }
    if (f.type == ch->whole_type && f.count > 1) {
        snprintf(reason, sizeof reason,
                 "%s in %u chunks: a shared subscription scatters the chunks of one message "
                 "over its members, so it must come in one (a chunk size of at least %llu bytes)",
                 fedl_msg_type_name(f.type), (unsigned)f.count,
                 (unsigned long long)(f.body_length + FEDL_WIRE_HEADER_BYTES));
        drop(ch, topic, f.sender, reason);
        return;
    }
    known = ch->cb.key != NULL ? ch->cb.key(ch->cb.user, f.sender, f.type, key) : 0;
    if (known < 0) {
        drop(ch, topic, f.sender, "an unknown sender (no key registered)");
        return;
    }
    if (known > 0 && fedl_wire_verify(&f, key, &err) != FEDL_OK) {
        drop(ch, topic, f.sender, err.message);
        return;
    }
    if (fedl_reassembler_add(ch->reassembler, &f, fedl_time_ns() / 1000000u, &res, &err) !=
        FEDL_OK) {
        drop(ch, topic, f.sender, err.message);
        return;
    }
    if (res.dropped[0] != '\0')
        drop(ch, topic, f.sender, res.dropped);
    if (res.duplicate && f.type != FEDL_MSG_STATUS) {
        /* a chunk of a message completed before: the same message again is
         * no news, an older one (sent again by someone else) is a replay */
        seen *s = last_seen(ch, &f);
        if (s != NULL && f.sequence < s->sequence && f.index == 0)
            replayed(ch, topic, &f, s->sequence);
        return;
    }
    if (!res.complete)
        return;
    if (f.type != FEDL_MSG_STATUS && !fresh(ch, &f, &last)) {
        if (f.sequence != last) /* the same one again (a retained one on resubscribing): no news */
            replayed(ch, topic, &f, last);
        return;
    }
    if (ch->cb.message != NULL)
        ch->cb.message(ch->cb.user, &f, res.body, res.body_length, retained);
}

static void on_connection(void *user, int connected, const char *reason)
{
    fedl_channel *ch = user;
    if (ch->cb.connection != NULL)
        ch->cb.connection(ch->cb.user, connected, reason);
}

fedl_status fedl_channel_open(const fedl_channel_options *o, const fedl_channel_callbacks *cb,
                              fedl_channel **out, fedl_error *err)
{
    fedl_allocator *alloc = fedl_allocator_default();
    fedl_channel *ch;
    fedl_status st;
    *out = NULL;
    if (o->job == NULL || o->self == NULL || strlen(o->job) >= FEDL_WIRE_JOB_MAX ||
        strlen(o->self) >= FEDL_WIRE_SENDER_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "channel: a job and a name are needed");
    ch = fedl_mem_alloc(alloc, sizeof *ch);
    if (ch == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "channel: cannot allocate");
    memset(ch, 0, sizeof *ch);
    ch->alloc = alloc;
    snprintf(ch->job, sizeof ch->job, "%s", o->job);
    snprintf(ch->self, sizeof ch->self, "%s", o->self);
    snprintf(ch->prefix, sizeof ch->prefix, "fedl/%s/", o->job);
    if (o->secret_key != NULL) {
        memcpy(ch->secret_key, o->secret_key, sizeof ch->secret_key);
        ch->has_key = 1;
    }
    ch->chunk_bytes = o->chunk_bytes;
    ch->max_body = o->max_body;
    ch->whole_type = o->whole_type;
    ch->cb = *cb;
    ch->chunk = fedl_mem_alloc(alloc, o->chunk_bytes);
    st = ch->chunk == NULL ? fedl_error_set(err, FEDL_ERR_NOMEM, "channel: cannot allocate")
                           : FEDL_OK;
    if (st == FEDL_OK)
        st = fedl_reassembler_create(o->reassembly_bytes, o->max_transfers, alloc, &ch->reassembler,
                                     err);
    if (st == FEDL_OK)
        st = fedl_mqtt_connect(&o->mqtt, on_chunk, on_connection, ch, &ch->mqtt, err);
    if (st != FEDL_OK) {
        fedl_channel_close(ch);
        return st;
    }
    *out = ch;
    return FEDL_OK;
}

void fedl_channel_close(fedl_channel *ch)
{
    if (ch == NULL)
        return;
    if (ch->mqtt != NULL) {
        fedl_error err;
        for (int i = 0; i < 100 && fedl_mqtt_pending(ch->mqtt) > 0; i++)
            fedl_mqtt_run(ch->mqtt, 20, &err); /* what was sent reaches the broker */
        fedl_mqtt_destroy(ch->mqtt);
    }
    fedl_reassembler_destroy(ch->reassembler);
    fedl_mem_free(ch->alloc, ch->chunk, ch->chunk_bytes);
    fedl_mem_free(ch->alloc, ch->seen, (size_t)ch->seen_capacity * sizeof *ch->seen);
    fedl_mem_free(ch->alloc, ch, sizeof *ch);
}

fedl_status fedl_channel_subscribe(fedl_channel *ch, const char *suffix, fedl_error *err)
{
    char topic[256];
    snprintf(topic, sizeof topic, "%s%s", ch->prefix, suffix);
    return fedl_mqtt_subscribe(ch->mqtt, topic, err);
}

fedl_status fedl_channel_subscribe_shared(fedl_channel *ch, const char *group, const char *suffix,
                                          fedl_error *err)
{
    char topic[256];
    if (group == NULL || strlen(group) == 0 || strpbrk(group, "/+#") != NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "channel: shared subscription group '%s'",
                              group != NULL ? group : "");
    snprintf(topic, sizeof topic, "$share/%s/%s%s", group, ch->prefix, suffix);
    return fedl_mqtt_subscribe(ch->mqtt, topic, err);
}

/* Strictly increasing across restarts: the wall clock in microseconds, or
 * one more than the last. */
static uint64_t next_sequence(fedl_channel *ch)
{
    struct timespec ts;
    uint64_t now = 0;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    ch->sequence = now > ch->sequence ? now : ch->sequence + 1;
    return ch->sequence;
}

static retained_topic *retained_slot(fedl_channel *ch, const char *suffix)
{
    for (int i = 0; i < ch->retained_count; i++)
        if (strcmp(ch->retained[i].suffix, suffix) == 0)
            return &ch->retained[i];
    if (ch->retained_count == (int)(sizeof ch->retained / sizeof ch->retained[0]))
        return NULL;
    snprintf(ch->retained[ch->retained_count].suffix, sizeof ch->retained[0].suffix, "%s", suffix);
    ch->retained[ch->retained_count].chunks = 0;
    return &ch->retained[ch->retained_count++];
}

fedl_status fedl_channel_send(fedl_channel *ch, const char *suffix, fedl_msg_type type,
                              uint64_t round, const uint8_t *body, size_t length, int retain,
                              fedl_error *err)
{
    fedl_wire_message m = {type, ch->job, ch->self, round, next_sequence(ch), body, length};
    fedl_wire_encoder e;
    retained_topic *slot = retain ? retained_slot(ch, suffix) : NULL;
    char topic[256];
    size_t n;
    fedl_status st =
        fedl_wire_encoder_init(&e, &m, ch->chunk_bytes, ch->has_key ? ch->secret_key : NULL, err);
    for (uint32_t i = 0; st == FEDL_OK && i < e.count; i++) {
        st = fedl_wire_encode_chunk(&e, i, ch->chunk, ch->chunk_bytes, &n, err);
        if (retain)
            snprintf(topic, sizeof topic, "%s%s/%u", ch->prefix, suffix, (unsigned)i);
        else
            snprintf(topic, sizeof topic, "%s%s", ch->prefix, suffix);
        if (st == FEDL_OK)
            st = fedl_mqtt_publish(ch->mqtt, topic, ch->chunk, n, retain, err);
    }
    if (st == FEDL_OK && slot != NULL) { /* clear what a longer message left behind */
        for (uint32_t i = e.count; st == FEDL_OK && i < slot->chunks; i++) {
            snprintf(topic, sizeof topic, "%s%s/%u", ch->prefix, suffix, (unsigned)i);
            st = fedl_mqtt_publish(ch->mqtt, topic, "", 0, 1, err);
        }
        slot->chunks = e.count;
    }
    return st;
}

fedl_status fedl_channel_run(fedl_channel *ch, int timeout_ms, fedl_error *err)
{
    fedl_reassembler_expire(ch->reassembler, fedl_time_ns() / 1000000u, REASSEMBLY_IDLE_MS);
    return fedl_mqtt_run(ch->mqtt, timeout_ms, err);
}

fedl_mqtt *fedl_channel_mqtt(fedl_channel *ch)
{
    return ch->mqtt;
}

uint64_t fedl_channel_dropped(const fedl_channel *ch)
{
    return ch->dropped;
}
