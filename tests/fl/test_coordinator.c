/*
 * test_coordinator.c - the coordinator and client state machines driven by
 * hand: deterministic selection that skips constrained clients, rounds
 * closed at quorum or at the deadline, retries that end in a clear failure
 * instead of a hang, late, duplicate, unselected and poisoned updates
 * refused with a reason, late updates folded with staleness weighting, the
 * client's checks of a task, and aggregators' partial sums (the direct
 * round's result; refused whole when anything in them is wrong).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fl.h"

#define PARAMS 4

static const float initial[PARAMS] = {1.0f, -1.0f, 0.5f, 0.0f};

static fedl_coordinator *make(fedl_coordinator_config *c, int clients, int constrained_every)
{
    fedl_coordinator *co = NULL;
    fedl_error err = {0};
    assert_int_equal(fedl_coordinator_create(c, initial, PARAMS, NULL, &co, &err), FEDL_OK);
    for (int i = 0; i < clients; i++) {
        char id[16];
        fedl_telemetry t = {0, 40.0, 100, 0};
        snprintf(id, sizeof id, "dev-%02d", i);
        if (constrained_every > 0 && i % constrained_every == 0)
            t.pressure = 1;
        assert_int_equal(fedl_coordinator_register(co, id, &t, 0, &err), FEDL_OK);
    }
    return co;
}

/* The ids of the SEND_TASK actions, sorted, joined by ','. */
static void tasks_sent(const fedl_coordinator *co, char *out, size_t size)
{
    const fedl_fl_action *a;
    size_t n = fedl_coordinator_actions(co, &a);
    const char *ids[256];
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == FEDL_FL_SEND_TASK)
            ids[k++] = a[i].client_id;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
            const char *t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    out[0] = '\0';
    for (int i = 0; i < k; i++) {
        strncat(out, ids[i], size - strlen(out) - 1);
        strncat(out, ",", size - strlen(out) - 1);
    }
}

static int count_kind(const fedl_coordinator *co, fedl_fl_action_kind kind)
{
    const fedl_fl_action *a;
    size_t n = fedl_coordinator_actions(co, &a);
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += a[i].kind == kind;
    return k;
}

static const fedl_fl_action *find_kind(const fedl_coordinator *co, fedl_fl_action_kind kind)
{
    const fedl_fl_action *a;
    size_t n = fedl_coordinator_actions(co, &a);
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == kind)
            return &a[i];
    return NULL;
}

/* Send the update of client `id` for the coordinator's current round: its
 * delta is `value` in every coordinate. */
static void deliver(fedl_coordinator *co, const char *id, float value, uint64_t samples,
                    uint64_t now)
{
    float delta[PARAMS];
    fedl_update u;
    fedl_error err = {0};
    uint64_t version;
    fedl_coordinator_weights(co, &version);
    for (int i = 0; i < PARAMS; i++)
        delta[i] = value;
    memset(&u, 0, sizeof u);
    snprintf(u.client_id, sizeof u.client_id, "%s", id);
    u.round = version + 1;
    u.model_version = version;
    u.values = delta;
    u.params = PARAMS;
    u.samples = samples;
    u.train_loss = 1.0;
    assert_int_equal(fedl_coordinator_update(co, &u, now, &err), FEDL_OK);
}

static void test_selection_is_deterministic_and_skips_constrained_clients(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *a, *b, *other;
    fedl_error err = {0};
    char first[512], second[512], third[512];
    (void)state;
    c.fraction = 0.5;
    a = make(&c, 20, 4); /* dev-00, -04, -08, -12, -16 constrained: 15 eligible */
    b = make(&c, 20, 4);
    assert_int_equal(fedl_coordinator_start(a, 0, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_start(b, 0, &err), FEDL_OK);
    tasks_sent(a, first, sizeof first);
    tasks_sent(b, second, sizeof second);
    assert_string_equal(first, second);
    assert_int_equal(count_kind(a, FEDL_FL_SEND_TASK), 8); /* ceil(0.5 x 15) */
    for (int i = 0; i < 20; i += 4) {
        char id[16];
        snprintf(id, sizeof id, "dev-%02d,", i);
        assert_null(strstr(first, id));
    }
    c.seed = 2;
    other = make(&c, 20, 4);
    assert_int_equal(fedl_coordinator_start(other, 0, &err), FEDL_OK);
    tasks_sent(other, third, sizeof third);
    assert_string_not_equal(first, third);
    fedl_coordinator_destroy(a);
    fedl_coordinator_destroy(b);
    fedl_coordinator_destroy(other);
}

static void test_selection_does_not_depend_on_registration_order(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *a, *b = NULL;
    fedl_error err = {0};
    char first[512], second[512];
    (void)state;
    c.fraction = 0.3;
    a = make(&c, 12, 0);
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &b, &err), FEDL_OK);
    for (int i = 11; i >= 0; i--) {
        char id[16];
        fedl_telemetry t = {0, 0, 100, 0};
        snprintf(id, sizeof id, "dev-%02d", i);
        assert_int_equal(fedl_coordinator_register(b, id, &t, 0, &err), FEDL_OK);
    }
    assert_int_equal(fedl_coordinator_start(a, 0, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_start(b, 0, &err), FEDL_OK);
    tasks_sent(a, first, sizeof first);
    tasks_sent(b, second, sizeof second);
    assert_string_equal(first, second);
    fedl_coordinator_destroy(a);
    fedl_coordinator_destroy(b);
}

static void test_round_closes_when_all_deliver_and_fedavg_weights_by_samples(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    const fedl_fl_action *done;
    const fedl_fl_action *task;
    const float *w;
    uint64_t version;
    (void)state;
    c.rounds = 2;
    co = make(&c, 3, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 3);
    task = find_kind(co, FEDL_FL_SEND_TASK);
    assert_int_equal(task->task->round, 1);
    assert_int_equal(task->task->model_version, 0);
    assert_int_equal(task->task->deadline_ms, c.round_timeout_ms);
    assert_non_null(find_kind(co, FEDL_FL_SET_TIMER));
    deliver(co, "dev-00", 1.0f, 100, 10);
    deliver(co, "dev-01", 2.0f, 100, 20);
    assert_int_equal(fedl_coordinator_round_open(co), 1);
    deliver(co, "dev-02", 4.0f, 200, 30);
    /* (100 x 1 + 100 x 2 + 200 x 4) / 400 = 2.75 */
    w = fedl_coordinator_weights(co, &version);
    assert_int_equal(version, 1);
    for (int i = 0; i < PARAMS; i++)
        assert_float_equal(w[i], initial[i] + 2.75f, 1e-6);
    done = find_kind(co, FEDL_FL_ROUND_DONE);
    assert_non_null(done);
    assert_int_equal(done->metrics->round, 1);
    assert_int_equal(done->metrics->selected, 3);
    assert_int_equal(done->metrics->completed, 3);
    assert_int_equal(done->metrics->dropped, 0);
    assert_int_equal(done->metrics->samples, 400);
    assert_int_equal(done->metrics->bytes_out, 3 * PARAMS * sizeof(float));
    assert_int_equal(done->metrics->bytes_in, 3 * PARAMS * sizeof(float));
    assert_int_equal(done->metrics->closed_by_deadline, 0);
    assert_non_null(find_kind(co, FEDL_FL_PERSIST));
    assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 3); /* round 2 went out */
    deliver(co, "dev-00", 0.0f, 1, 40);
    deliver(co, "dev-01", 0.0f, 1, 40);
    deliver(co, "dev-02", 0.0f, 1, 40);
    assert_non_null(find_kind(co, FEDL_FL_FINISHED));
    assert_int_equal(fedl_coordinator_round_open(co), 0);
    fedl_coordinator_destroy(co);
}

static void test_quorum_closes_early_and_deadline_closes_with_enough(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    const fedl_fl_action *done;
    (void)state;
    c.quorum = 0.6;
    co = make(&c, 5, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    deliver(co, "dev-00", 1.0f, 10, 1);
    deliver(co, "dev-01", 1.0f, 10, 2);
    assert_int_equal(fedl_coordinator_round_open(co), 1);
    deliver(co, "dev-02", 1.0f, 10, 3); /* 3 of 5 = 0.6 */
    assert_non_null(find_kind(co, FEDL_FL_ROUND_DONE));
    fedl_coordinator_destroy(co);

    /* a quorum and a fraction given as floats (0.8f x 5 = 4.0000001): 4 of
     * 5 close the round; 0.3f of 10 selects 3 */
    c.quorum = 0.8f;
    co = make(&c, 5, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "dev-%02d", i);
        deliver(co, id, 1.0f, 10, 4);
    }
    assert_non_null(find_kind(co, FEDL_FL_ROUND_DONE));
    fedl_coordinator_destroy(co);
    c = fedl_coordinator_defaults();
    c.fraction = 0.3f;
    co = make(&c, 10, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 3);
    fedl_coordinator_destroy(co);

    c = fedl_coordinator_defaults(); /* quorum 1, min completion 0.5 */
    co = make(&c, 4, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    deliver(co, "dev-01", 1.0f, 10, 5);
    deliver(co, "dev-03", 1.0f, 10, 6);
    assert_int_equal(fedl_coordinator_timer(co, c.round_timeout_ms - 1, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_ROUND_DONE), 0); /* early timer: nothing */
    assert_int_equal(fedl_coordinator_timer(co, c.round_timeout_ms, &err), FEDL_OK);
    done = find_kind(co, FEDL_FL_ROUND_DONE);
    assert_non_null(done);
    assert_int_equal(done->metrics->completed, 2);
    assert_int_equal(done->metrics->dropped, 2);
    assert_int_equal(done->metrics->closed_by_deadline, 1);
    fedl_coordinator_destroy(co);
}

static void test_empty_rounds_are_retried_then_fail_clearly(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    const fedl_fl_action *failed;
    uint64_t now = 0;
    int attempts = 1;
    (void)state;
    c.max_retries = 2;
    co = make(&c, 4, 0);
    assert_int_equal(fedl_coordinator_start(co, now, &err), FEDL_OK);
    for (;;) { /* nobody ever answers */
        now += c.round_timeout_ms;
        assert_int_equal(fedl_coordinator_timer(co, now, &err), FEDL_OK);
        failed = find_kind(co, FEDL_FL_FAILED);
        if (failed != NULL)
            break;
        assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 4); /* a new attempt */
        attempts++;
        assert_true(attempts <= 3);
    }
    assert_int_equal(attempts, 3);
    assert_non_null(strstr(failed->reason, "round 1: 0 of 4 selected clients delivered"));
    assert_non_null(strstr(failed->reason, "3 attempts"));
    fedl_coordinator_destroy(co);
}

static void test_too_few_clients_wait_then_start_or_fail(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    fedl_telemetry t = {0, 0, 10, 0};
    (void)state;
    c.min_clients = 3;
    co = make(&c, 2, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 0);
    assert_non_null(find_kind(co, FEDL_FL_SET_TIMER));
    assert_int_equal(fedl_coordinator_register(co, "late-joiner", &t, 5, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 3);
    fedl_coordinator_destroy(co);

    co = make(&c, 2, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    for (int i = 1; i <= 10 && find_kind(co, FEDL_FL_FAILED) == NULL; i++)
        assert_int_equal(fedl_coordinator_timer(co, (uint64_t)i * c.round_timeout_ms, &err),
                         FEDL_OK);
    assert_non_null(find_kind(co, FEDL_FL_FAILED));
    assert_non_null(strstr(find_kind(co, FEDL_FL_FAILED)->reason, "2 eligible clients of 2"));
    fedl_coordinator_destroy(co);
}

static const char *rejection(const fedl_coordinator *co)
{
    const fedl_fl_action *a = find_kind(co, FEDL_FL_REJECT);
    return a != NULL ? a->reason : "";
}

static void test_bad_updates_are_refused_with_a_reason(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    float nan_delta[PARAMS] = {0.0f, NAN, 0.0f, 0.0f};
    fedl_update u;
    (void)state;
    c.fraction = 0.5;
    co = make(&c, 4, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    memset(&u, 0, sizeof u);
    snprintf(u.client_id, sizeof u.client_id, "stranger");
    u.round = 1;
    u.values = nan_delta;
    u.params = PARAMS;
    u.samples = 1;
    assert_int_equal(fedl_coordinator_update(co, &u, 1, &err), FEDL_OK);
    assert_string_equal(rejection(co), "unknown client: register first");
    {
        /* the first selected client sends a NaN */
        char sent[512], id[FEDL_CLIENT_ID_MAX], *comma;
        fedl_coordinator_start(co, 0, &err); /* already started: an error, no actions */
        assert_int_equal(count_kind(co, FEDL_FL_SEND_TASK), 0);
        fedl_coordinator_destroy(co);
        co = make(&c, 4, 0);
        assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
        tasks_sent(co, sent, sizeof sent);
        comma = strchr(sent, ',');
        memcpy(id, sent, (size_t)(comma - sent));
        id[comma - sent] = '\0';
        snprintf(u.client_id, sizeof u.client_id, "%s", id);
        assert_int_equal(fedl_coordinator_update(co, &u, 1, &err), FEDL_OK);
        assert_non_null(strstr(rejection(co), id));
        assert_non_null(strstr(rejection(co), "1")); /* the index */
        deliver(co, id, 1.0f, 10, 2);                /* a good one from it is accepted */
        assert_int_equal(count_kind(co, FEDL_FL_REJECT), 0);
        deliver(co, id, 1.0f, 10, 3);
        assert_non_null(strstr(rejection(co), "duplicate update for round 1"));
        /* a client that was not selected */
        for (int i = 0; i < 4; i++) {
            char other[16];
            snprintf(other, sizeof other, "dev-%02d,", i);
            if (strstr(sent, other) == NULL) {
                other[6] = '\0';
                deliver(co, other, 1.0f, 10, 4);
                assert_non_null(strstr(rejection(co), "not selected for round 1"));
                break;
            }
        }
        u.round = 7;
        u.values = nan_delta;
        assert_int_equal(fedl_coordinator_update(co, &u, 5, &err), FEDL_OK);
        assert_non_null(strstr(rejection(co), "round 7 has not started"));
    }
    fedl_coordinator_destroy(co);
}

static void test_late_updates_rejected_or_folded_with_staleness(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    float delta[PARAMS] = {8.0f, 8.0f, 8.0f, 8.0f};
    fedl_update late;
    const float *w;
    (void)state;
    c.min_clients = 2;
    c.min_completion = 0.5;
    co = make(&c, 2, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    deliver(co, "dev-00", 1.0f, 100, 1);
    assert_int_equal(fedl_coordinator_timer(co, c.round_timeout_ms, &err), FEDL_OK); /* closes */
    memset(&late, 0, sizeof late);
    snprintf(late.client_id, sizeof late.client_id, "dev-01");
    late.round = 1;
    late.model_version = 0;
    late.values = delta;
    late.params = PARAMS;
    late.samples = 100;
    assert_int_equal(fedl_coordinator_update(co, &late, c.round_timeout_ms + 1, &err), FEDL_OK);
    assert_non_null(strstr(rejection(co), "round 1 is closed"));
    fedl_coordinator_destroy(co);

    c.late = FEDL_LATE_FOLD;
    co = make(&c, 2, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    deliver(co, "dev-00", 1.0f, 100, 1);
    assert_int_equal(fedl_coordinator_timer(co, c.round_timeout_ms, &err), FEDL_OK);
    /* round 2 is open; the round-1 update is one version stale: weight 100 / 2 */
    assert_int_equal(fedl_coordinator_update(co, &late, c.round_timeout_ms + 1, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_REJECT), 0);
    deliver(co, "dev-00", 2.0f, 100, c.round_timeout_ms + 2);
    deliver(co, "dev-01", 2.0f, 100, c.round_timeout_ms + 3);
    /* round 2: (50 x 8 + 100 x 2 + 100 x 2) / 250 = 3.2 on top of round 1's +1 */
    w = fedl_coordinator_weights(co, NULL);
    assert_float_equal(w[0], initial[0] + 1.0f + 3.2f, 1e-5);
    assert_int_equal(find_kind(co, FEDL_FL_ROUND_DONE)->metrics->late_folded, 1);
    fedl_coordinator_destroy(co);
}

static void test_config_is_checked(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co = NULL;
    fedl_error err = {0};
    (void)state;
    c.quorum = 0.0;
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &co, &err),
                     FEDL_ERR_INVALID_ARG);
    c = fedl_coordinator_defaults();
    c.late = FEDL_LATE_FOLD;
    c.strategy = fedl_strategy_defaults(FEDL_STRATEGY_MEDIAN);
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &co, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "linear strategy"));
    assert_null(co);
}

/* Save after round 1, restore into a fresh coordinator: round 2 goes on
 * with the same selection and ends with the same weights. */
static void test_save_and_restore_between_rounds(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *a, *b = NULL, *other = NULL;
    fedl_error err = {0};
    uint8_t *bytes;
    size_t length;
    char sent_a[512], sent_b[512];
    uint64_t version;
    (void)state;
    c.fraction = 0.5;
    c.strategy = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAM); /* server state to carry */
    a = make(&c, 6, 0);
    assert_int_equal(fedl_coordinator_start(a, 0, &err), FEDL_OK);
    tasks_sent(a, sent_a, sizeof sent_a);
    for (char *id = strtok(sent_a, ","); id != NULL; id = strtok(NULL, ","))
        deliver(a, id, 0.5f, 10, 1);
    assert_non_null(find_kind(a, FEDL_FL_PERSIST));
    assert_int_equal(fedl_coordinator_save(a, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &b, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_restore(b, bytes, length, &err), FEDL_OK);
    fedl_coordinator_weights(b, &version);
    assert_int_equal(version, 1);
    assert_int_equal(fedl_coordinator_client_count(b), 6);
    assert_memory_equal(fedl_coordinator_weights(a, NULL), fedl_coordinator_weights(b, NULL),
                        PARAMS * sizeof(float));
    assert_int_equal(fedl_coordinator_start(b, 2, &err), FEDL_OK);
    tasks_sent(a, sent_a, sizeof sent_a); /* a's round 2 went out when round 1 closed */
    tasks_sent(b, sent_b, sizeof sent_b);
    assert_string_equal(sent_a, sent_b);
    for (char *id = strtok(sent_a, ","); id != NULL; id = strtok(NULL, ",")) {
        deliver(a, id, -0.25f, 10, 3);
        deliver(b, id, -0.25f, 10, 3);
    }
    assert_memory_equal(fedl_coordinator_weights(a, NULL), fedl_coordinator_weights(b, NULL),
                        PARAMS * sizeof(float));
    /* damage: truncated, a flipped byte in the header, another configuration */
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &other, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_restore(other, bytes, length - 3, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte"));
    fedl_coordinator_destroy(other);
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &other, &err), FEDL_OK);
    bytes[0] ^= 1;
    assert_int_equal(fedl_coordinator_restore(other, bytes, length, &err), FEDL_ERR_FORMAT);
    bytes[0] ^= 1;
    fedl_coordinator_destroy(other);
    /* the registry: the last of the 6 entries (u8 6, "dev-05", 36 bytes)
     * naming the one before it again, then an id running past the end
     * (both found by fuzz_coordinator_state) */
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &other, &err), FEDL_OK);
    memcpy(bytes + length - 42, bytes + length - 85, 6);
    assert_int_equal(fedl_coordinator_restore(other, bytes, length, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "client dev-04 appears twice"));
    assert_int_equal(fedl_coordinator_client_count(other), 0);
    fedl_coordinator_destroy(other);
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &other, &err), FEDL_OK);
    bytes[length - 43] = 60;
    assert_int_equal(fedl_coordinator_restore(other, bytes, length, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "byte"));
    fedl_coordinator_destroy(other);
    c.rounds = 9;
    assert_int_equal(fedl_coordinator_create(&c, initial, PARAMS, NULL, &other, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_restore(other, bytes, length, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "another configuration"));
    fedl_coordinator_destroy(other);
    fedl_mem_free(NULL, bytes, length);
    fedl_coordinator_destroy(a);
    fedl_coordinator_destroy(b);
}

/* ----------------------------------------------------------- the client */

static void test_client_checks_tasks_and_makes_deltas(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co = make(&c, 2, 0);
    fedl_client *cl = NULL;
    fedl_error err = {0};
    fedl_task task;
    fedl_update u;
    float trained[PARAMS], bad[PARAMS];
    (void)state;
    assert_int_equal(fedl_client_create("dev-00", PARAMS, NULL, &cl, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    task = *find_kind(co, FEDL_FL_SEND_TASK)->task;
    assert_int_equal(fedl_client_make_update(cl, initial, 1, 0.0, NULL, &u, &err), FEDL_ERR_STATE);
    memcpy(bad, initial, sizeof bad);
    bad[2] += 1.0f;
    task.weights = bad; /* not what the hash says */
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "SHA-256"));
    bad[2] = INFINITY;
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "weight 2 is not finite"));
    task = *find_kind(co, FEDL_FL_SEND_TASK)->task;
    task.params = PARAMS - 1;
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_ERR_FORMAT);
    task.params = PARAMS;
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_OK);
    for (int i = 0; i < PARAMS; i++)
        trained[i] = initial[i] + 0.25f;
    trained[3] = NAN;
    assert_int_equal(fedl_client_make_update(cl, trained, 10, 0.5, NULL, &u, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "diverged"));
    trained[3] = initial[3] + 0.25f;
    assert_int_equal(fedl_client_make_update(cl, trained, 10, 0.5, NULL, &u, &err), FEDL_OK);
    assert_string_equal(u.client_id, "dev-00");
    assert_int_equal(u.round, 1);
    assert_int_equal(u.samples, 10);
    for (int i = 0; i < PARAMS; i++)
        assert_float_equal(u.values[i], 0.25f, 1e-6);
    assert_int_equal(fedl_coordinator_update(co, &u, 1, &err), FEDL_OK);
    assert_int_equal(count_kind(co, FEDL_FL_REJECT), 0);
    /* the same round again (a restarted coordinator asks again): taken; an
     * older round: refused by the client itself */
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_OK);
    assert_int_equal(fedl_client_make_update(cl, trained, 10, 0.5, NULL, &u, &err), FEDL_OK);
    task.round = 2;
    fedl_sha256(task.weights, PARAMS * sizeof(float), task.weights_sha256);
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_OK);
    assert_int_equal(fedl_client_make_update(cl, trained, 10, 0.5, NULL, &u, &err), FEDL_OK);
    task.round = 1;
    assert_int_equal(fedl_client_accept_task(cl, &task, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "older than round 2, which it delivered"));
    fedl_client_destroy(cl);
    fedl_coordinator_destroy(co);
}

/* ------------------------------------------------- partial sums (scale-out) */

/* Client i's delta: a fixed pattern of values around i. */
static void pattern_delta(int i, float *delta)
{
    for (int k = 0; k < PARAMS; k++)
        delta[k] = 0.37f * (float)(i + 1) - 0.11f * (float)k + 0.013f * (float)(i * k);
}

/* The partial of clients [from, to) as an aggregator process folds it,
 * passed through the wire body and back, into the coordinator. */
static void deliver_partial(fedl_coordinator *co, const char *aggregator, int from, int to)
{
    fedl_strategy_config sc = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    fedl_aggregator *g = NULL;
    fedl_error err = {0};
    char ids[8][FEDL_CLIENT_ID_MAX], back_ids[8][FEDL_CLIENT_ID_MAX];
    double back_sum[PARAMS], loss = 0.0;
    uint8_t body[512];
    size_t length;
    uint64_t version;
    fedl_partial p, q;
    fedl_coordinator_weights(co, &version);
    assert_int_equal(fedl_aggregator_create(&sc, PARAMS, NULL, &g, &err), FEDL_OK);
    for (int i = from; i < to; i++) {
        float delta[PARAMS];
        pattern_delta(i, delta);
        snprintf(ids[i - from], FEDL_CLIENT_ID_MAX, "dev-%02d", i);
        assert_int_equal(
            fedl_aggregator_add(g, ids[i - from], delta, PARAMS, (double)(100 + 10 * i), &err),
            FEDL_OK);
        loss += 0.5 * (double)(100 + 10 * i);
    }
    memset(&p, 0, sizeof p);
    p.model_version = version;
    p.count = to - from;
    p.clients = (const char(*)[FEDL_CLIENT_ID_MAX])ids;
    p.sum = fedl_aggregator_sum(g);
    p.params = PARAMS;
    p.samples = fedl_aggregator_samples(g);
    p.loss_sum = loss;
    assert_int_equal(fedl_partial_message_size(&p), 40 + 7 * (size_t)(to - from) + 8 * PARAMS);
    assert_int_equal(fedl_partial_message_encode(&p, body, sizeof body, &length, &err), FEDL_OK);
    assert_int_equal(
        fedl_partial_message_decode(body, length, back_ids, 8, back_sum, PARAMS, &q, &err),
        FEDL_OK);
    snprintf(q.aggregator_id, sizeof q.aggregator_id, "%s", aggregator);
    q.round = version + 1;
    assert_int_equal(q.count, to - from);
    assert_memory_equal(back_sum, p.sum, sizeof back_sum);
    assert_int_equal(fedl_coordinator_partial(co, &q, 50, &err), FEDL_OK);
    fedl_aggregator_destroy(g);
}

static void test_partial_sums_give_the_direct_round(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *direct, *split;
    fedl_error err = {0};
    const float *a, *b;
    const fedl_fl_action *done;
    (void)state;
    c.rounds = 2;
    direct = make(&c, 5, 0);
    split = make(&c, 5, 0);
    assert_int_equal(fedl_coordinator_start(direct, 0, &err), FEDL_OK);
    assert_int_equal(fedl_coordinator_start(split, 0, &err), FEDL_OK);
    for (int i = 0; i < 5; i++) {
        float delta[PARAMS];
        fedl_update u;
        pattern_delta(i, delta);
        memset(&u, 0, sizeof u);
        snprintf(u.client_id, sizeof u.client_id, "dev-%02d", i);
        u.round = 1;
        u.values = delta;
        u.params = PARAMS;
        u.samples = (uint64_t)(100 + 10 * i);
        u.train_loss = 0.5;
        assert_int_equal(fedl_coordinator_update(direct, &u, 50, &err), FEDL_OK);
    }
    deliver_partial(split, "agg-a", 0, 3);
    assert_int_equal(fedl_coordinator_round_open(split), 1); /* 3 of 5 */
    deliver_partial(split, "agg-b", 3, 5);
    done = find_kind(split, FEDL_FL_ROUND_DONE);
    assert_non_null(done);
    assert_int_equal(done->metrics->completed, 5);
    assert_int_equal(done->metrics->samples, 100 + 110 + 120 + 130 + 140);
    assert_float_equal(done->metrics->train_loss, 0.5, 1e-12);
    a = fedl_coordinator_weights(direct, NULL);
    b = fedl_coordinator_weights(split, NULL);
    for (int k = 0; k < PARAMS; k++) /* the same sums, added in another order */
        assert_float_equal(a[k], b[k], 1e-6f * fabsf(a[k]) + 1e-7f);
    fedl_coordinator_destroy(direct);
    fedl_coordinator_destroy(split);
}

/* A hand-made partial over ids (sum: first_sum, then zeros) into co. */
static fedl_status offer(fedl_coordinator *co, const char *aggregator, uint64_t round,
                         uint64_t version, const char (*ids)[FEDL_CLIENT_ID_MAX], int count,
                         double first_sum)
{
    double sum[PARAMS] = {first_sum, 0.0, 0.0, 0.0};
    fedl_partial p;
    fedl_error err = {0};
    memset(&p, 0, sizeof p);
    snprintf(p.aggregator_id, sizeof p.aggregator_id, "%s", aggregator);
    p.round = round;
    p.model_version = version;
    p.count = count;
    p.clients = ids;
    p.sum = sum;
    p.params = PARAMS;
    p.samples = 10.0 * count;
    return fedl_coordinator_partial(co, &p, 5, &err);
}

static void test_bad_partials_are_refused_whole_naming_the_aggregator(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    const char one[1][FEDL_CLIENT_ID_MAX] = {"dev-01"};
    const char two[2][FEDL_CLIENT_ID_MAX] = {"dev-02", "dev-01"};
    const char stranger[2][FEDL_CLIENT_ID_MAX] = {"dev-03", "dev-77"};
    const char twice[2][FEDL_CLIENT_ID_MAX] = {"dev-03", "dev-03"};
    const fedl_fl_action *r;
    (void)state;
    c.rounds = 1;
    co = make(&c, 5, 0);
    assert_int_equal(offer(co, "agg-a", 1, 0, one, 1, 1.0), FEDL_OK);
    assert_string_equal(rejection(co),
                        "partial sum of 1 updates: round 1 is not open (the coordinator is at "
                        "round 1)");
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    assert_int_equal(offer(co, "agg-a", 2, 0, one, 1, 1.0), FEDL_OK);
    assert_non_null(strstr(rejection(co), "round 2 is not open"));
    assert_int_equal(offer(co, "agg-a", 1, 3, one, 1, 1.0), FEDL_OK);
    assert_non_null(strstr(rejection(co), "model version 3"));
    assert_int_equal(offer(co, "agg-a", 1, 0, one, 1, NAN), FEDL_OK);
    assert_non_null(strstr(rejection(co), "sum[0] is not finite"));
    assert_int_equal(offer(co, "agg-a", 1, 0, stranger, 2, 1.0), FEDL_OK);
    assert_string_equal(rejection(co), "partial sum of 2 updates: client dev-77 is not registered");
    assert_int_equal(offer(co, "agg-a", 1, 0, twice, 2, 1.0), FEDL_OK);
    assert_non_null(strstr(rejection(co), "dev-03 counted twice"));
    /* accepted, then the same update again through another aggregator */
    assert_int_equal(offer(co, "agg-a", 1, 0, one, 1, 1.0), FEDL_OK);
    assert_null(find_kind(co, FEDL_FL_REJECT));
    assert_int_equal(offer(co, "agg-b", 1, 0, two, 2, 1.0), FEDL_OK);
    r = find_kind(co, FEDL_FL_REJECT);
    assert_non_null(r);
    assert_string_equal(r->client_id, "agg-b");
    assert_non_null(strstr(r->reason, "dev-01 already delivered round 1"));
    assert_int_equal(fedl_coordinator_round_open(co), 1); /* dev-02 did not count either */
    fedl_coordinator_destroy(co);
}

static void test_robust_strategies_take_no_partials(void **state)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co;
    fedl_error err = {0};
    const char one[1][FEDL_CLIENT_ID_MAX] = {"dev-01"};
    (void)state;
    c.strategy = fedl_strategy_defaults(FEDL_STRATEGY_MEDIAN);
    co = make(&c, 3, 0);
    assert_int_equal(fedl_coordinator_start(co, 0, &err), FEDL_OK);
    assert_int_equal(offer(co, "agg-a", 1, 0, one, 1, 1.0), FEDL_OK);
    assert_non_null(strstr(rejection(co), "partial sums serve linear strategies only"));
    assert_int_equal(fedl_strategy_is_linear(FEDL_STRATEGY_FEDYOGI), 1);
    assert_int_equal(fedl_strategy_is_linear(FEDL_STRATEGY_KRUM), 0);
    fedl_coordinator_destroy(co);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection_is_deterministic_and_skips_constrained_clients),
        cmocka_unit_test(test_selection_does_not_depend_on_registration_order),
        cmocka_unit_test(test_round_closes_when_all_deliver_and_fedavg_weights_by_samples),
        cmocka_unit_test(test_quorum_closes_early_and_deadline_closes_with_enough),
        cmocka_unit_test(test_empty_rounds_are_retried_then_fail_clearly),
        cmocka_unit_test(test_too_few_clients_wait_then_start_or_fail),
        cmocka_unit_test(test_bad_updates_are_refused_with_a_reason),
        cmocka_unit_test(test_late_updates_rejected_or_folded_with_staleness),
        cmocka_unit_test(test_config_is_checked),
        cmocka_unit_test(test_save_and_restore_between_rounds),
        cmocka_unit_test(test_client_checks_tasks_and_makes_deltas),
        cmocka_unit_test(test_partial_sums_give_the_direct_round),
        cmocka_unit_test(test_bad_partials_are_refused_whole_naming_the_aggregator),
        cmocka_unit_test(test_robust_strategies_take_no_partials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
