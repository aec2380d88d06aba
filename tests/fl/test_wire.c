/*
 * test_wire.c - messages as chunks: a body cut into chunks within a size
 * limit comes back whole whatever the order, with duplicates ignored; a
 * signature checks against its key and no other; a damaged chunk, a body
 * that does not hash right, a chunk that disagrees with its transfer, an
 * oversized body are refused with the byte or the reason; a newer message
 * drops an incomplete one, naming the chunks lost; memory stays within
 * the reassembler's budget. The bodies of tasks, updates, statuses and
 * control words round-trip, and bad ones are refused naming the byte.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/le.h"
#include "fedl/fl.h"

#define CHUNK 1000 /* bytes of a chunk, header included: 752 of payload */

typedef struct chunks {
    uint8_t bytes[64][CHUNK];
    size_t length[64];
    uint32_t count;
} chunks;

static void encode(const fedl_wire_message *m, const uint8_t *secret, chunks *c)
{
    fedl_wire_encoder e;
    fedl_error err = {0};
    assert_int_equal(fedl_wire_encoder_init(&e, m, CHUNK, secret, &err), FEDL_OK);
    assert_true(e.count <= 64);
    c->count = e.count;
    for (uint32_t i = 0; i < e.count; i++) {
        assert_int_equal(fedl_wire_encode_chunk(&e, i, c->bytes[i], CHUNK, &c->length[i], &err),
                         FEDL_OK);
        assert_true(c->length[i] <= CHUNK);
    }
}

static void fill(uint8_t *body, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        body[i] = (uint8_t)(i * 131u + seed);
}

static fedl_wire_message message(const uint8_t *body, size_t n, uint64_t sequence)
{
    fedl_wire_message m = {FEDL_MSG_UPDATE, "job-1", "dev-03", 7, sequence, body, n};
    return m;
}

static void test_chunks_come_back_whole_in_any_order(void **state)
{
    static uint8_t body[10000];
    static chunks c;
    static const uint32_t order[] = {13, 2, 0, 2, 5, 1, 12, 3, 4, 6, 7, 8, 9, 11, 10};
    fedl_wire_message m = message(body, sizeof body, 1);
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_wire_frame f;
    fedl_error err = {0};
    int duplicates = 0, completes = 0;
    (void)state;
    fill(body, sizeof body, 1);
    encode(&m, NULL, &c);
    assert_int_equal(c.count, 14); /* ceil(10000 / 752) */
    assert_int_equal(fedl_reassembler_create(1 << 20, 4, NULL, &r, &err), FEDL_OK);
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        uint32_t i = order[k];
        assert_int_equal(fedl_wire_parse(c.bytes[i], c.length[i], 1 << 20, &f, &err), FEDL_OK);
        assert_int_equal(f.type, FEDL_MSG_UPDATE);
        assert_string_equal(f.sender, "dev-03");
        assert_string_equal(f.job, "job-1");
        assert_int_equal(f.round, 7);
        assert_int_equal(fedl_reassembler_add(r, &f, k, &res, &err), FEDL_OK);
        duplicates += res.duplicate;
        if (res.complete) {
            completes++;
            assert_int_equal(res.body_length, sizeof body);
            assert_memory_equal(res.body, body, sizeof body);
        }
    }
    assert_int_equal(duplicates, 1);
    assert_int_equal(completes, 1);
    assert_true(fedl_reassembler_bytes(r) <= sizeof body);
    /* a chunk of it again after it was handed out: a duplicate, not a new
     * transfer left to expire */
    assert_int_equal(fedl_wire_parse(c.bytes[5], c.length[5], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 99, &res, &err), FEDL_OK);
    assert_true(res.duplicate && !res.complete);
    assert_int_equal(fedl_reassembler_bytes(r), 0);
    fedl_reassembler_destroy(r);
}

static void test_signatures_check_against_their_key(void **state)
{
    static uint8_t body[100];
    static chunks c;
    fedl_sign_keypair coordinator, forger;
    fedl_wire_message m = message(body, sizeof body, 3);
    fedl_wire_frame f;
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_sign_keypair_generate(&coordinator, &err), FEDL_OK);
    assert_int_equal(fedl_sign_keypair_generate(&forger, &err), FEDL_OK);
    m.type = FEDL_MSG_TASK;
    encode(&m, coordinator.secret_key, &c);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_wire_verify(&f, coordinator.public_key, &err), FEDL_OK);
    assert_int_equal(fedl_wire_verify(&f, forger.public_key, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "task from dev-03: bad signature"));
    /* a forger re-signs with its key: refused by the coordinator's */
    encode(&m, forger.secret_key, &c);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_wire_verify(&f, coordinator.public_key, &err), FEDL_ERR_FORMAT);
    /* unsigned */
    encode(&m, NULL, &c);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_wire_verify(&f, coordinator.public_key, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "unsigned"));
    /* the round changed after signing: the CRC fixed up, the signature not */
    encode(&m, coordinator.secret_key, &c);
    c.bytes[0][104] ^= 1;
    {
        uint32_t crc = fedl_crc32c(0, c.bytes[0], 244);
        crc = fedl_crc32c(crc, c.bytes[0] + FEDL_WIRE_HEADER_BYTES, c.length[0] - 248);
        for (int i = 0; i < 4; i++)
            c.bytes[0][244 + i] = (uint8_t)(crc >> (8 * i));
    }
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_wire_verify(&f, coordinator.public_key, &err), FEDL_ERR_FORMAT);
}

/* Parsing the chunk fails with a message containing `needle`. */
static void parse_fails(const uint8_t *bytes, size_t length, size_t cap, const char *needle)
{
    fedl_wire_frame f;
    fedl_error err = {0};
    assert_int_equal(fedl_wire_parse(bytes, length, cap, &f, &err), FEDL_ERR_FORMAT);
    if (strstr(err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, needle);
}

static void test_damaged_chunks_are_refused_naming_the_byte(void **state)
{
    static uint8_t body[3000], copy[CHUNK];
    static chunks c;
    fedl_wire_message m = message(body, sizeof body, 5);
    (void)state;
    fill(body, sizeof body, 2);
    encode(&m, NULL, &c);
    parse_fails(c.bytes[0], 100, 1 << 20, "shorter than the 248-byte header");
    parse_fails(c.bytes[0], c.length[0] - 1, 1 << 20, "the header says");
    parse_fails(c.bytes[0], c.length[0], 2000, "byte 120: a body of 3000 bytes, over the cap");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[300] ^= 0x10; /* payload */
    parse_fails(copy, c.length[1], 1 << 20, "byte 244: CRC-32C mismatch");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[0] = 'X';
    parse_fails(copy, c.length[1], 1 << 20, "byte 0");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[4] = 9;
    parse_fails(copy, c.length[1], 1 << 20, "byte 4: version 9");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[5] = 77;
    parse_fails(copy, c.length[1], 1 << 20, "byte 5");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[42] = '/'; /* a sender that would escape its topic */
    parse_fails(copy, c.length[1], 1 << 20, "byte 40: bad sender");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[224] = 9; /* index past the count */
    parse_fails(copy, c.length[1], 1 << 20, "byte 224");
    memcpy(copy, c.bytes[1], c.length[1]);
    copy[233] = 0xff; /* offset out of the body */
    parse_fails(copy, c.length[1], 1 << 20, "byte 232");
}

static void test_a_body_that_does_not_hash_right_is_refused(void **state)
{
    static uint8_t body[2000];
    static chunks c;
    fedl_wire_message m = message(body, sizeof body, 6);
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_wire_frame f;
    fedl_error err = {0};
    fedl_status st = FEDL_OK;
    (void)state;
    encode(&m, NULL, &c);
    /* the sender's bytes changed under it after hashing: a payload byte
     * flipped with a valid CRC */
    c.bytes[2][260] ^= 1;
    {
        uint32_t crc = fedl_crc32c(0, c.bytes[2], 244);
        crc = fedl_crc32c(crc, c.bytes[2] + FEDL_WIRE_HEADER_BYTES, c.length[2] - 248);
        for (int i = 0; i < 4; i++)
            c.bytes[2][244 + i] = (uint8_t)(crc >> (8 * i));
    }
    assert_int_equal(fedl_reassembler_create(1 << 20, 2, NULL, &r, &err), FEDL_OK);
    for (uint32_t i = 0; i < c.count && st == FEDL_OK; i++) {
        assert_int_equal(fedl_wire_parse(c.bytes[i], c.length[i], 1 << 20, &f, &err), FEDL_OK);
        st = fedl_reassembler_add(r, &f, 0, &res, &err);
    }
    assert_int_equal(st, FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "does not match its SHA-256"));
    assert_int_equal(fedl_reassembler_bytes(r), 0);
    fedl_reassembler_destroy(r);
}

static void test_a_newer_message_drops_an_incomplete_one(void **state)
{
    static uint8_t body[3000], other[2900];
    static chunks c, d;
    fedl_wire_message m = message(body, sizeof body, 10);
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_wire_frame f;
    fedl_error err = {0};
    (void)state;
    fill(body, sizeof body, 3);
    fill(other, sizeof other, 4);
    encode(&m, NULL, &c); /* 4 chunks */
    assert_int_equal(fedl_reassembler_create(1 << 20, 2, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    assert_int_equal(fedl_wire_parse(c.bytes[2], c.length[2], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    /* a chunk of the same message that disagrees (another body length) */
    m = message(other, sizeof other, 10);
    encode(&m, NULL, &d);
    assert_int_equal(fedl_wire_parse(d.bytes[1], d.length[1], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "disagrees"));
    /* sequence 11 begins: 10 is dropped, its loss named */
    m = message(other, sizeof other, 11);
    encode(&m, NULL, &d);
    assert_int_equal(fedl_wire_parse(d.bytes[0], d.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    assert_string_equal(res.dropped, "update from dev-03 (sequence 10) dropped: 2 of 4 chunks "
                                     "missing, the first 1; a newer message began");
    /* a late chunk of 10 now: older than the one in progress */
    assert_int_equal(fedl_wire_parse(c.bytes[1], c.length[1], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "older"));
    assert_int_equal(fedl_reassembler_bytes(r), sizeof other);
    assert_int_equal(fedl_reassembler_expire(r, 10000, 5000), 1);
    assert_int_equal(fedl_reassembler_bytes(r), 0);
    fedl_reassembler_destroy(r);
}

static void test_the_budget_bounds_memory(void **state)
{
    static uint8_t body[3000];
    static chunks c;
    fedl_wire_message m = message(body, sizeof body, 1);
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_wire_frame f;
    fedl_error err = {0};
    (void)state;
    encode(&m, NULL, &c);
    assert_int_equal(fedl_reassembler_create(5000, 8, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    m.sender = "dev-04";
    encode(&m, NULL, &c);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_ERR_NOMEM);
    assert_non_null(strstr(err.message, "no room for 3000 bytes (3000 of 5000 held)"));
    fedl_reassembler_destroy(r);
}

static void test_a_one_chunk_message_and_an_empty_body(void **state)
{
    static const uint8_t body[] = "telemetry";
    static chunks c;
    fedl_wire_message m = message(body, sizeof body, 2);
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_wire_frame f;
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_reassembler_create(100, 1, NULL, &r, &err), FEDL_OK);
    m.type = FEDL_MSG_STATUS;
    encode(&m, NULL, &c);
    assert_int_equal(c.count, 1);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    assert_true(res.complete);
    assert_ptr_equal(res.body, c.bytes[0] + FEDL_WIRE_HEADER_BYTES); /* no copy */
    m.body = NULL;
    m.body_length = 0;
    encode(&m, NULL, &c);
    assert_int_equal(c.length[0], FEDL_WIRE_HEADER_BYTES);
    assert_int_equal(fedl_wire_parse(c.bytes[0], c.length[0], 1 << 20, &f, &err), FEDL_OK);
    assert_int_equal(fedl_reassembler_add(r, &f, 0, &res, &err), FEDL_OK);
    assert_true(res.complete && res.body_length == 0);
    /* names that would escape a topic are refused at the sender */
    m.sender = "dev/+";
    {
        fedl_wire_encoder e;
        assert_int_equal(fedl_wire_encoder_init(&e, &m, CHUNK, NULL, &err), FEDL_ERR_INVALID_ARG);
    }
    fedl_reassembler_destroy(r);
}

/* ---------------------------------------------------------------- bodies */

static void test_a_task_body_round_trips(void **state)
{
    static const float weights[5] = {0.5f, -1.0f, 2.0f, 0.0f, 3.25f};
    static const char *const ids[] = {"dev-01", "dev-07", "client-0042"};
    fedl_task_message m, back;
    uint8_t body[512], copy[512];
    size_t length;
    float out[5];
    fedl_error err = {0};
    (void)state;
    memset(&m, 0, sizeof m);
    m.task.model_version = 4;
    m.task.config = (fedl_task_config){2, 32, 0.05f, 0.9f, 0.01f};
    m.task.weights = weights;
    m.task.params = 5;
    fedl_sha256(weights, sizeof weights, m.task.weights_sha256);
    m.spec = "flatten dense(5)";
    m.spec_length = strlen(m.spec);
    m.deadline_in_ms = 60000;
    m.selected = ids;
    m.selected_count = 3;
    assert_int_equal(fedl_task_message_encode(&m, body, sizeof body, &length, &err), FEDL_OK);
    assert_int_equal(length, fedl_task_message_size(&m));
    assert_int_equal(fedl_task_message_decode(body, length, &back, &err), FEDL_OK);
    assert_int_equal(back.task.model_version, 4);
    assert_int_equal(back.deadline_in_ms, 60000);
    assert_int_equal(back.task.config.local_epochs, 2);
    assert_true(back.task.config.momentum == 0.9f && back.task.config.proximal_mu == 0.01f);
    assert_int_equal(back.task.params, 5);
    assert_memory_equal(back.task.weights_sha256, m.task.weights_sha256, FEDL_SHA256_BYTES);
    assert_int_equal(back.spec_length, m.spec_length);
    assert_memory_equal(back.spec, m.spec, m.spec_length);
    assert_true(fedl_task_message_selects(&back, "dev-07"));
    assert_true(fedl_task_message_selects(&back, "client-0042"));
    assert_false(fedl_task_message_selects(&back, "dev-0"));
    assert_false(fedl_task_message_selects(&back, "dev-02"));
    fedl_task_message_weights(&back, out);
    assert_memory_equal(out, weights, sizeof weights);
    /* damage */
    assert_int_equal(fedl_task_message_decode(body, length - 1, &back, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "bytes of weights for 5 parameters"));
    memcpy(copy, body, length);
    copy[20] = 0; /* batch 0 */
    copy[21] = copy[22] = copy[23] = 0;
    assert_int_equal(fedl_task_message_decode(copy, length, &back, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 20: batch"));
    memcpy(copy, body, length);
    copy[84 + m.spec_length + 2] = '/'; /* in "dev-01" */
    assert_int_equal(fedl_task_message_decode(copy, length, &back, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "bad character"));
    memcpy(copy, body, length);
    copy[36] = 200; /* 200 selected clients */
    assert_int_equal(fedl_task_message_decode(copy, length, &back, &err), FEDL_ERR_FORMAT);
}

static void test_update_status_and_control_bodies(void **state)
{
    static const float values[3] = {1.0f, -2.0f, 0.125f};
    fedl_update u = {"dev-01", 3,  2,    FEDL_UPDATE_WEIGHTS,    values,
                     3,        64, 0.75, {1u << 20, 51.5, 64, 1}};
    fedl_update back;
    fedl_telemetry t;
    fedl_client_state cs;
    fedl_control_command command;
    uint64_t version;
    char text[FEDL_CONTROL_TEXT_MAX + 1];
    uint8_t body[16 + FEDL_CONTROL_TEXT_MAX];
    float out[3];
    size_t length;
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_update_message_encode(&u, body, sizeof body, &length, &err), FEDL_OK);
    assert_int_equal(length, fedl_update_message_size(3));
    assert_int_equal(fedl_update_message_decode(body, length, out, 3, &back, &err), FEDL_OK);
    assert_int_equal(back.model_version, 2);
    assert_int_equal(back.kind, FEDL_UPDATE_WEIGHTS);
    assert_int_equal(back.samples, 64);
    assert_true(back.train_loss == 0.75);
    assert_true(back.telemetry.temperature_c == 51.5 && back.telemetry.pressure == 1);
    assert_memory_equal(out, values, sizeof values);
    assert_int_equal(fedl_update_message_decode(body, length, out, 2, &back, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "3 parameters, the model has 2"));
    body[16] = body[17] = 0; /* 0 samples (64 was one byte) */
    assert_int_equal(fedl_update_message_decode(body, length, out, 3, &back, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 16"));

    assert_int_equal(fedl_status_message_encode(FEDL_CLIENT_OFFLINE, &u.telemetry, body), FEDL_OK);
    assert_int_equal(fedl_status_message_decode(body, FEDL_STATUS_MESSAGE_BYTES, &cs, &t, &err),
                     FEDL_OK);
    assert_int_equal(cs, FEDL_CLIENT_OFFLINE);
    assert_int_equal(t.free_memory, 1u << 20);
    body[32] = 7; /* pressure 7 */
    assert_int_equal(fedl_status_message_decode(body, FEDL_STATUS_MESSAGE_BYTES, &cs, &t, &err),
                     FEDL_ERR_FORMAT);

    assert_int_equal(
        fedl_control_message_encode(FEDL_CONTROL_FAILED, 3, "round 4: 0 of 5\n", body, &length),
        FEDL_OK);
    assert_int_equal(fedl_control_message_decode(body, length, &command, &version, text, &err),
                     FEDL_OK);
    assert_int_equal(command, FEDL_CONTROL_FAILED);
    assert_int_equal(version, 3);
    assert_string_equal(text, "round 4: 0 of 5?"); /* printable only */
    assert_int_equal(fedl_control_message_decode(body, length - 1, &command, &version, text, &err),
                     FEDL_ERR_FORMAT);
}

/* ------------------------------------------------------------------ keys */

static void test_a_partial_body_round_trips_and_damage_names_the_byte(void **state)
{
    const char ids[2][FEDL_CLIENT_ID_MAX] = {"dev-1", "dev-22"};
    const double sum[3] = {1.5, -2.25, 1e300};
    char back_ids[4][FEDL_CLIENT_ID_MAX];
    double back_sum[3];
    uint8_t body[128], bad[128];
    size_t length;
    fedl_partial p, q;
    fedl_error err = {0};
    (void)state;
    memset(&p, 0, sizeof p);
    p.model_version = 7;
    p.count = 2;
    p.clients = ids;
    p.sum = sum;
    p.params = 3;
    p.samples = 300.0;
    p.loss_sum = 123.5;
    assert_int_equal(fedl_partial_message_encode(&p, body, sizeof body, &length, &err), FEDL_OK);
    assert_int_equal(length, 40 + 6 + 7 + 24);
    assert_int_equal(fedl_partial_message_size(&p), length);
    assert_int_equal(fedl_partial_message_decode(body, length, back_ids, 4, back_sum, 3, &q, &err),
                     FEDL_OK);
    assert_int_equal(q.model_version, 7);
    assert_int_equal(q.count, 2);
    assert_string_equal(q.clients[1], "dev-22");
    assert_memory_equal(back_sum, sum, sizeof sum);
    assert_true(q.samples == 300.0 && q.loss_sum == 123.5);
    /* damage, each named by its byte */
    memcpy(bad, body, length);
    fedl_put_f64(bad + length - 8, NAN);
    assert_int_equal(fedl_partial_message_decode(bad, length, back_ids, 4, back_sum, 3, &q, &err),
                     FEDL_ERR_FORMAT);
    assert_string_equal(err.message, "partial message: byte 69: a sum that is not finite");
    memcpy(bad, body, length);
    bad[46] = 5; /* the second id becomes the first's */
    memcpy(bad + 47, "dev-1", 5);
    assert_int_equal(
        fedl_partial_message_decode(bad, length - 1, back_ids, 4, back_sum, 3, &q, &err),
        FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 46: a client counted twice"));
    assert_int_equal(fedl_partial_message_decode(body, length, back_ids, 1, back_sum, 3, &q, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 24: client count out of range"));
    assert_int_equal(fedl_partial_message_decode(body, length, back_ids, 4, back_sum, 2, &q, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 32: parameter count"));
    assert_int_equal(
        fedl_partial_message_decode(body, length - 3, back_ids, 4, back_sum, 3, &q, &err),
        FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 53: 21 bytes of sums for 3 parameters"));
    memcpy(bad, body, length);
    bad[8 + 7] = 0xff; /* samples: a NaN */
    assert_int_equal(fedl_partial_message_decode(bad, length, back_ids, 4, back_sum, 3, &q, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte 8: summed samples"));
}

static void test_key_files_round_trip_and_bad_lines_name_line_and_column(void **state)
{
    fedl_sign_keypair kp, back;
    char line[FEDL_KEY_LINE_MAX], text[4 * FEDL_KEY_LINE_MAX], id[FEDL_WIRE_SENDER_MAX];
    fedl_key_entry *keys = NULL;
    int count = 0;
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_sign_keypair_generate(&kp, &err), FEDL_OK);
    assert_int_equal(fedl_key_format_secret(&kp, "dev-1", line, sizeof line, &err), FEDL_OK);
    assert_int_equal(fedl_secret_key_parse(line, strlen(line), "dev-1.key", &back, id, &err),
                     FEDL_OK);
    assert_memory_equal(back.secret_key, kp.secret_key, sizeof kp.secret_key);
    assert_memory_equal(back.public_key, kp.public_key, sizeof kp.public_key);
    assert_string_equal(id, "dev-1");
    line[20] = line[20] == 'a' ? 'b' : 'a'; /* a damaged seed: its public half no longer fits */
    assert_int_equal(fedl_secret_key_parse(line, strlen(line), "dev-1.key", &back, id, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "dev-1.key:1:16: the key's public half does not match"));

    strcpy(text, "# devices of job 1\n\n");
    assert_int_equal(fedl_key_format_public(kp.public_key, "dev-1", line, sizeof line, &err),
                     FEDL_OK);
    strcat(text, line);
    assert_int_equal(fedl_sign_keypair_generate(&kp, &err), FEDL_OK);
    assert_int_equal(fedl_key_format_public(kp.public_key, "dev-2", line, sizeof line, &err),
                     FEDL_OK);
    strcat(text, line);
    assert_int_equal(fedl_keys_parse(text, strlen(text), "devices.pub", NULL, &keys, &count, &err),
                     FEDL_OK);
    assert_int_equal(count, 2);
    assert_string_equal(keys[1].id, "dev-2");
    assert_memory_equal(keys[1].public_key, kp.public_key, sizeof kp.public_key);
    fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
    /* the same id twice, a short key, a bad digit, a bad id, another kind */
    strcat(text, line);
    assert_int_equal(fedl_keys_parse(text, strlen(text), "devices.pub", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "devices.pub:5:74: this id has a key already"));
    assert_int_equal(fedl_keys_parse("ed25519 abcd dev-3\n", 19, "k", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "k:1:9: a public key is 64 hex digits"));
    memcpy(text, line, strlen(line) + 1);
    text[12] = 'g';
    assert_int_equal(fedl_keys_parse(text, strlen(text), "k", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "k:1:13: not a hex digit"));
    memcpy(text, line, strlen(line) + 1);
    text[strlen(text) - 2] = '/';
    assert_int_equal(fedl_keys_parse(text, strlen(text), "k", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "k:1:74: the id is"));
    assert_int_equal(fedl_keys_parse("rsa AAAA x\n", 11, "k", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_int_equal(fedl_keys_parse("# nothing\n", 10, "k", NULL, &keys, &count, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "k: no key in it"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_come_back_whole_in_any_order),
        cmocka_unit_test(test_signatures_check_against_their_key),
        cmocka_unit_test(test_damaged_chunks_are_refused_naming_the_byte),
        cmocka_unit_test(test_a_body_that_does_not_hash_right_is_refused),
        cmocka_unit_test(test_a_newer_message_drops_an_incomplete_one),
        cmocka_unit_test(test_the_budget_bounds_memory),
        cmocka_unit_test(test_a_one_chunk_message_and_an_empty_body),
        cmocka_unit_test(test_a_task_body_round_trips),
        cmocka_unit_test(test_update_status_and_control_bodies),
        cmocka_unit_test(test_a_partial_body_round_trips_and_damage_names_the_byte),
        cmocka_unit_test(test_key_files_round_trip_and_bad_lines_name_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
