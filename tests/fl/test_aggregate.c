/*
 * test_aggregate.c - the aggregation strategies of fedl/fl.h: every
 * strategy against numpy reference values (tests/fl/strategy_reference.txt,
 * written by strategy_reference.py), FedAvg's sample weighting by hand,
 * refused updates (NaN, Inf, wrong size, weight <= 0) that change nothing,
 * clipping, Krum against a scaled attacker, median and trimmed mean
 * against an outlier, the round's states, server state saved and restored
 * bit-identically, allocation failures in create, no allocation per round,
 * the pool limit, and the configuration's parse and check.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

#define REF_MAX_PARAMS 10
#define REF_MAX_CLIENTS 8
#define REF_MAX_ROUNDS 3
/* About two float ulps at 1: the C code and numpy do the same float64
 * arithmetic up to the order of a few sums (on x86-64 they agree bit for
 * bit; the margin is for other platforms). */
#define REF_TOLERANCE 3e-7

/* ------------------------------------------------------------- helpers */

/* A pointer that is not NULL, for checking that create clears its output
 * on failure; never dereferenced. */
static char not_null_target;
#define not_null ((fedl_aggregator *)(void *)&not_null_target)

static fedl_aggregator *make(const fedl_strategy_config *c, size_t params)
{
    fedl_aggregator *g = NULL;
    fedl_error err;
    assert_int_equal(fedl_aggregator_create(c, params, NULL, &g, &err), FEDL_OK);
    return g;
}

static void add_ok(fedl_aggregator *g, const char *id, const float *delta, size_t params,
                   double samples)
{
    fedl_error err;
    fedl_status st = fedl_aggregator_add(g, id, delta, params, samples, &err);
    if (st != FEDL_OK)
        fail_msg("add %s: %s", id, err.message);
}

static void finish_ok(fedl_aggregator *g, float *global)
{
    fedl_error err;
    fedl_status st = fedl_aggregator_finish(g, global, &err);
    if (st != FEDL_OK)
        fail_msg("finish: %s", err.message);
}

/* values uniform in [-0.5, 0.5) from (seed, stream). */
static void random_values(float *values, size_t n, uint64_t seed, uint64_t stream)
{
    fedl_rng rng;
    fedl_rng_init(&rng, seed, stream);
    for (size_t i = 0; i < n; i++)
        values[i] = fedl_rng_uniform(&rng) - 0.5f;
}

static void assert_message_has(const fedl_error *err, const char *text)
{
    if (strstr(err->message, text) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err->message, text);
}

/* ---------------------------------------------------- reference values */

typedef struct ref_update {
    char id[64];
    double samples;
    float delta[REF_MAX_PARAMS];
} ref_update;

typedef struct ref_round {
    int clients;
    ref_update update[REF_MAX_CLIENTS];
    float expect[REF_MAX_PARAMS]; /* global after the round */
} ref_round;

typedef struct ref_case {
    fedl_strategy_config config;
    size_t params;
    int rounds;
    float global[REF_MAX_PARAMS]; /* before round 1 */
    ref_round round[REF_MAX_ROUNDS];
} ref_case;

static void read_floats(FILE *f, const char *tag, float *values, size_t n)
{
    char word[32];
    assert_int_equal(fscanf(f, "%31s", word), 1);
    assert_string_equal(word, tag);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fscanf(f, "%f", &values[i]), 1);
}

static void read_config(FILE *f, const char *kind, fedl_strategy_config *c)
{
    fedl_strategy_kind k;
    assert_int_equal(fedl_strategy_parse(kind, &k, NULL), FEDL_OK);
    *c = fedl_strategy_defaults(k);
    assert_int_equal(fscanf(f, " config %f %f %f %f %f %f %f %d %d %f %d", &c->server_lr,
                            &c->momentum, &c->beta1, &c->beta2, &c->tau, &c->proximal_mu,
                            &c->trim_fraction, &c->byzantine, &c->multi_krum_m, &c->clip_norm,
                            &c->max_updates),
                     11);
}

static void read_round(FILE *f, size_t params, ref_round *r)
{
    assert_int_equal(fscanf(f, " round %d", &r->clients), 1);
    assert_true(r->clients > 0 && r->clients <= REF_MAX_CLIENTS);
    for (int i = 0; i < r->clients; i++) {
        ref_update *u = &r->update[i];
        assert_int_equal(fscanf(f, " update %63s %lf", u->id, &u->samples), 2);
        for (size_t j = 0; j < params; j++)
            assert_int_equal(fscanf(f, "%f", &u->delta[j]), 1);
    }
    read_floats(f, "expect", r->expect, params);
}

static void skip_line(FILE *f)
{
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
    }
}

/* The case called name from strategy_reference.txt. */
static void load_reference(const char *name, ref_case *rc)
{
    char word[64], case_name[64], kind[32];
    FILE *f = fopen(FEDL_SOURCE_DIR "/tests/fl/strategy_reference.txt", "r");
    assert_non_null(f);
    while (fscanf(f, "%63s", word) == 1) {
        if (strcmp(word, "case") != 0 ||
            fscanf(f, "%63s %31s %zu %d", case_name, kind, &rc->params, &rc->rounds) != 4 ||
            strcmp(case_name, name) != 0) {
            skip_line(f);
            continue;
        }
        assert_true(rc->params <= REF_MAX_PARAMS && rc->rounds <= REF_MAX_ROUNDS);
        read_config(f, kind, &rc->config);
        read_floats(f, "global", rc->global, rc->params);
        for (int r = 0; r < rc->rounds; r++)
            read_round(f, rc->params, &rc->round[r]);
        fclose(f);
        return;
    }
    fclose(f);
    fail_msg("no case '%s' in strategy_reference.txt", name);
}

/* state: the case's name. Every round's weights match numpy's. */
static void test_matches_reference(void **state)
{
    const char *name = *state;
    ref_case *rc = test_malloc(sizeof *rc);
    float x[REF_MAX_PARAMS];
    fedl_aggregator *g;
    load_reference(name, rc);
    g = make(&rc->config, rc->params);
    memcpy(x, rc->global, sizeof x);
    for (int r = 0; r < rc->rounds; r++) {
        const ref_round *round = &rc->round[r];
        double samples = 0.0, diff;
        fedl_aggregator_begin(g);
        for (int i = 0; i < round->clients; i++) {
            add_ok(g, round->update[i].id, round->update[i].delta, rc->params,
                   round->update[i].samples);
            samples += round->update[i].samples;
        }
        assert_int_equal(fedl_aggregator_count(g), round->clients);
        assert_true(fedl_aggregator_samples(g) == samples);
        finish_ok(g, x);
        diff = test_max_rel_diff(x, round->expect, rc->params);
        if (diff > REF_TOLERANCE)
            fail_msg("%s round %d: differs from numpy by %g", name, r + 1, diff);
    }
    fedl_aggregator_destroy(g);
    test_free(rc);
}

/* ------------------------------------------------------------- fedavg */

static void test_fedavg_weights_updates_by_samples(void **state)
{
    static const float a[4] = {1, 2, 0, -4}, b[4] = {5, 2, 4, 0};
    static const float expected[4] = {5, 3, 4, 0}, half[4] = {3, 2, 2.5f, 0.5f};
    static const fedl_strategy_kind kinds[2] = {FEDL_STRATEGY_FEDAVG, FEDL_STRATEGY_FEDPROX};
    (void)state;
    for (int k = 0; k < 2; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        float x[4] = {1, 1, 1, 1}, y[4] = {1, 1, 1, 1};
        fedl_aggregator *g = make(&c, 4), *h;
        /* (1 * a + 3 * b) / 4 = (4, 2, 3, -1) */
        add_ok(g, "a", a, 4, 1.0);
        add_ok(g, "b", b, 4, 3.0);
        assert_int_equal(fedl_aggregator_count(g), 2);
        assert_true(fedl_aggregator_samples(g) == 4.0);
        finish_ok(g, x);
        assert_memory_equal(x, expected, sizeof x);
        c.server_lr = 0.5f;
        h = make(&c, 4);
        add_ok(h, "a", a, 4, 1.0);
        add_ok(h, "b", b, 4, 3.0);
        finish_ok(h, y);
        assert_memory_equal(y, half, sizeof y);
        fedl_aggregator_destroy(g);
        fedl_aggregator_destroy(h);
    }
}

/* ------------------------------------------------------ refused updates */

#define BAD_PARAMS 12

/* Feed g the good updates with every kind of bad one in between; each bad
 * one must be refused naming its client (and the index for NaN/Inf). */
static void add_with_bad_updates(fedl_aggregator *g, float good[][BAD_PARAMS], int n)
{
    float bad[BAD_PARAMS];
    fedl_error err;
    for (int i = 0; i < n; i++) {
        char id[32];
        int before = fedl_aggregator_count(g);
        double samples = fedl_aggregator_samples(g);
        memcpy(bad, good[i], sizeof bad);
        bad[3] = NAN;
        assert_int_equal(fedl_aggregator_add(g, "nan-client", bad, BAD_PARAMS, 5, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "nan-client");
        assert_message_has(&err, "delta[3] is NaN");
        bad[3] = good[i][3];
        bad[BAD_PARAMS - 1] = -INFINITY;
        assert_int_equal(fedl_aggregator_add(g, "inf-client", bad, BAD_PARAMS, 5, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "inf-client");
        assert_message_has(&err, "delta[11] is -Inf");
        assert_int_equal(fedl_aggregator_add(g, "short-client", good[i], BAD_PARAMS - 1, 5, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "short-client");
        assert_int_equal(fedl_aggregator_add(g, "null-client", NULL, BAD_PARAMS, 5, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "null-client");
        assert_int_equal(fedl_aggregator_add(g, "zero-weight", good[i], BAD_PARAMS, 0.0, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "zero-weight");
        assert_int_equal(fedl_aggregator_add(g, "neg-weight", good[i], BAD_PARAMS, -2.0, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_message_has(&err, "neg-weight");
        assert_int_equal(fedl_aggregator_add(g, "nan-weight", good[i], BAD_PARAMS, NAN, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_int_equal(fedl_aggregator_add(g, "inf-weight", good[i], BAD_PARAMS, INFINITY, &err),
                         FEDL_ERR_INVALID_ARG);
        assert_int_equal(fedl_aggregator_count(g), before);
        assert_true(fedl_aggregator_samples(g) == samples);
        snprintf(id, sizeof id, "good-%d", i);
        add_ok(g, id, good[i], BAD_PARAMS, 1.0 + i);
    }
}

static void test_bad_updates_are_refused_and_change_nothing(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_FEDAVG,       FEDL_STRATEGY_FEDAVGM,
                                               FEDL_STRATEGY_FEDADAM,      FEDL_STRATEGY_MEDIAN,
                                               FEDL_STRATEGY_TRIMMED_MEAN, FEDL_STRATEGY_KRUM,
                                               FEDL_STRATEGY_MULTI_KRUM};
    float good[5][BAD_PARAMS];
    (void)state;
    for (int i = 0; i < 5; i++)
        random_values(good[i], BAD_PARAMS, 41, (uint64_t)i);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        fedl_aggregator *with_bad = make(&c, BAD_PARAMS), *clean = make(&c, BAD_PARAMS);
        float x[BAD_PARAMS] = {0}, y[BAD_PARAMS] = {0};
        add_with_bad_updates(with_bad, good, 5);
        for (int i = 0; i < 5; i++)
            add_ok(clean, "good", good[i], BAD_PARAMS, 1.0 + i);
        finish_ok(with_bad, x);
        finish_ok(clean, y);
        assert_memory_equal(x, y, sizeof x);
        fedl_aggregator_destroy(with_bad);
        fedl_aggregator_destroy(clean);
    }
}

/* ------------------------------------------------------------- clipping */

static double norm_of(const float *x, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += (double)x[i] * (double)x[i];
    return sqrt(total);
}

static void test_clipping_scales_a_huge_delta_to_clip_norm(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_FEDAVG, FEDL_STRATEGY_MEDIAN};
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        float huge[6] = {3e30f, -4e30f, 0, 0, 0, 0}, small[6] = {0.3f, 0.4f, 0, 0, 0, 0};
        float x[6] = {0}, before[6];
        fedl_aggregator *g;
        c.clip_norm = 2.0f;
        g = make(&c, 6);
        add_ok(g, "attacker", huge, 6, 10.0);
        finish_ok(g, x);
        assert_float_equal(x[0], 1.2, 1e-6);
        assert_float_equal(x[1], -1.6, 1e-6);
        assert_float_equal(norm_of(x, 6), 2.0, 1e-6);
        /* a delta within the norm is not touched */
        memcpy(before, x, sizeof x);
        fedl_aggregator_begin(g);
        add_ok(g, "honest", small, 6, 10.0);
        finish_ok(g, x);
        for (int i = 0; i < 6; i++)
            assert_true(x[i] == (float)((double)before[i] + (double)small[i]));
        fedl_aggregator_destroy(g);
    }
}

/* ------------------------------------------------------ robust strategies */

#define KRUM_PARAMS 8

/* Four honest deltas close to each other, and an attacker sending 100
 * times the first. */
static void krum_round(float deltas[5][KRUM_PARAMS])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < KRUM_PARAMS; j++)
            deltas[i][j] = 0.1f * (float)(j + 1) + 0.01f * (float)(i * ((j % 3) - 1));
    for (int j = 0; j < KRUM_PARAMS; j++)
        deltas[4][j] = 100.0f * deltas[0][j];
}

static void test_krum_picks_an_honest_update_against_a_scaled_attacker(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_KRUM);
    float deltas[5][KRUM_PARAMS], x[KRUM_PARAMS] = {0};
    fedl_aggregator *g = make(&c, KRUM_PARAMS);
    int honest = -1;
    (void)state;
    krum_round(deltas);
    add_ok(g, "h0", deltas[0], KRUM_PARAMS, 1);
    add_ok(g, "attacker", deltas[4], KRUM_PARAMS, 1000);
    for (int i = 1; i < 4; i++)
        add_ok(g, "h", deltas[i], KRUM_PARAMS, 1);
    finish_ok(g, x);
    for (int i = 0; i < 4; i++)
        if (memcmp(x, deltas[i], sizeof x) == 0)
            honest = i;
    assert_true(honest >= 0);
    fedl_aggregator_destroy(g);

    /* Multi-Krum with m = n - f averages the four honest ones. */
    c = fedl_strategy_defaults(FEDL_STRATEGY_MULTI_KRUM);
    g = make(&c, KRUM_PARAMS);
    memset(x, 0, sizeof x);
    for (int i = 0; i < 5; i++)
        add_ok(g, "client", deltas[i], KRUM_PARAMS, 1);
    finish_ok(g, x);
    for (int j = 0; j < KRUM_PARAMS; j++) {
        double mean = 0.0;
        for (int i = 0; i < 4; i++)
            mean += (double)deltas[i][j] / 4.0;
        assert_float_equal(x[j], mean, 1e-6);
    }
    fedl_aggregator_destroy(g);
}

static void test_krum_refuses_n_at_most_2f_plus_2(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_KRUM, FEDL_STRATEGY_MULTI_KRUM};
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]); /* f = 1 */
        float deltas[5][KRUM_PARAMS], x[KRUM_PARAMS] = {1, 2, 3, 4, 5, 6, 7, 8},
                                      before[KRUM_PARAMS];
        fedl_aggregator *g = make(&c, KRUM_PARAMS);
        fedl_error err;
        krum_round(deltas);
        memcpy(before, x, sizeof x);
        for (int i = 0; i < 4; i++)
            add_ok(g, "client", deltas[i], KRUM_PARAMS, 1);
        assert_int_equal(fedl_aggregator_finish(g, x, &err), FEDL_ERR_STATE);
        assert_message_has(&err, "2f + 2");
        assert_memory_equal(x, before, sizeof x);
        /* the round is still open: a fifth update makes it enough */
        add_ok(g, "late", deltas[4], KRUM_PARAMS, 1);
        finish_ok(g, x);
        fedl_aggregator_destroy(g);
    }
}

static void test_multi_krum_refuses_m_above_n(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_MULTI_KRUM);
    float deltas[5][KRUM_PARAMS], x[KRUM_PARAMS] = {0};
    fedl_aggregator *g;
    fedl_error err;
    (void)state;
    c.multi_krum_m = 6;
    g = make(&c, KRUM_PARAMS);
    krum_round(deltas);
    for (int i = 0; i < 5; i++)
        add_ok(g, "client", deltas[i], KRUM_PARAMS, 1);
    assert_int_equal(fedl_aggregator_finish(g, x, &err), FEDL_ERR_STATE);
    assert_message_has(&err, "multi_krum_m");
    fedl_aggregator_destroy(g);
}

static void test_median_and_trimmed_mean_ignore_an_outlier(void **state)
{
    fedl_strategy_config median = fedl_strategy_defaults(FEDL_STRATEGY_MEDIAN);
    fedl_strategy_config trimmed = fedl_strategy_defaults(FEDL_STRATEGY_TRIMMED_MEAN);
    float d[5][4], x[4] = {0}, y[4] = {0}, z[4] = {0};
    fedl_aggregator *gm, *gt, *even;
    (void)state;
    trimmed.trim_fraction = 0.2f; /* drops 1 of 5 at each end */
    gm = make(&median, 4);
    gt = make(&trimmed, 4);
    even = make(&median, 4);
    /* client 4 is the outlier; the honest values are given out of order */
    for (int j = 0; j < 4; j++) {
        d[0][j] = 0.3f + (float)j;
        d[1][j] = 0.1f + (float)j;
        d[2][j] = 0.4f + (float)j;
        d[3][j] = 0.2f + (float)j;
        d[4][j] = j % 2 ? -1e6f : 1e6f;
    }
    for (int i = 0; i < 5; i++) {
        add_ok(gm, "client", d[i], 4, 1);
        add_ok(gt, "client", d[i], 4, 1);
        if (i != 2)
            add_ok(even, "client", d[i], 4, 1); /* 0.1, 0.2, 0.3 and the outlier */
    }
    finish_ok(gm, x);
    finish_ok(gt, y);
    finish_ok(even, z);
    for (int j = 0; j < 4; j++) {
        /* even j: 0.1 0.2 0.3 0.4 +1e6; odd j: -1e6 0.1 0.2 0.3 0.4 (each + j) */
        int odd = j % 2;
        double trimmed_mean = odd ? ((double)d[1][j] + d[3][j] + d[0][j]) / 3.0
                                  : ((double)d[3][j] + d[0][j] + d[2][j]) / 3.0;
        double even_median =
            odd ? ((double)d[1][j] + d[3][j]) / 2.0 : ((double)d[3][j] + d[0][j]) / 2.0;
        assert_true(x[j] == (odd ? d[3][j] : d[0][j]));
        assert_float_equal(y[j], trimmed_mean, 1e-6);
        assert_float_equal(z[j], even_median, 1e-6);
    }
    fedl_aggregator_destroy(gm);
    fedl_aggregator_destroy(gt);
    fedl_aggregator_destroy(even);
}

static void test_robust_strategy_refuses_more_than_max_updates(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_MEDIAN);
    float d[4][3] = {{1, 1, 1}, {2, 2, 2}, {3, 3, 3}, {9, 9, 9}}, x[3] = {0};
    fedl_aggregator *g;
    fedl_error err;
    (void)state;
    c.max_updates = 3;
    g = make(&c, 3);
    for (int i = 0; i < 3; i++)
        add_ok(g, "client", d[i], 3, 1);
    assert_int_equal(fedl_aggregator_add(g, "one-too-many", d[3], 3, 1, &err), FEDL_ERR_NOMEM);
    assert_message_has(&err, "one-too-many");
    assert_message_has(&err, "max_updates = 3");
    assert_int_equal(fedl_aggregator_count(g), 3);
    finish_ok(g, x);
    assert_true(x[0] == 2.0f && x[1] == 2.0f && x[2] == 2.0f);
    fedl_aggregator_destroy(g);
}

/* ------------------------------------------------------------- rounds */

static void test_round_states(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    float a[2] = {1, 2}, b[2] = {10, 20}, x[2] = {0, 0};
    fedl_aggregator *g = make(&c, 2);
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_aggregator_finish(g, x, &err), FEDL_ERR_STATE);
    assert_message_has(&err, "no update");
    /* begin forgets an unfinished round */
    add_ok(g, "forgotten", b, 2, 1);
    fedl_aggregator_begin(g);
    assert_int_equal(fedl_aggregator_count(g), 0);
    add_ok(g, "kept", a, 2, 7);
    finish_ok(g, x);
    assert_true(x[0] == 1.0f && x[1] == 2.0f);
    /* a finished round still reports itself, and takes nothing more */
    assert_int_equal(fedl_aggregator_count(g), 1);
    assert_true(fedl_aggregator_samples(g) == 7.0);
    assert_int_equal(fedl_aggregator_finish(g, x, &err), FEDL_ERR_STATE);
    assert_int_equal(fedl_aggregator_add(g, "after", a, 2, 1, &err), FEDL_ERR_STATE);
    assert_message_has(&err, "after");
    assert_true(x[0] == 1.0f && x[1] == 2.0f);
    fedl_aggregator_begin(g);
    add_ok(g, "next", a, 2, 1);
    finish_ok(g, x);
    assert_true(x[0] == 2.0f && x[1] == 4.0f);
    fedl_aggregator_destroy(g);
}

static void test_step_that_overflows_is_refused(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    float d[3] = {0, 0, 3e38f}, x[3] = {1, 2, 3e38f}, before[3];
    fedl_aggregator *g = make(&c, 3);
    fedl_error err;
    (void)state;
    memcpy(before, x, sizeof x);
    add_ok(g, "big", d, 3, 1);
    assert_int_equal(fedl_aggregator_finish(g, x, &err), FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, "weight 2");
    assert_memory_equal(x, before, sizeof x);
    assert_int_equal(fedl_aggregator_count(g), 1);
    fedl_aggregator_destroy(g);
}

/* ---------------------------------------------------------- save, restore */

#define STATE_PARAMS 16
#define STATE_CLIENTS 5 /* multi-krum with f = 1 needs 5 */

static void run_round(fedl_aggregator *g, float *x, int round)
{
    float delta[STATE_PARAMS];
    fedl_aggregator_begin(g);
    for (int i = 0; i < STATE_CLIENTS; i++) {
        random_values(delta, STATE_PARAMS, 77, (uint64_t)(round * STATE_CLIENTS + i));
        add_ok(g, "client", delta, STATE_PARAMS, 10.0 + i);
    }
    finish_ok(g, x);
}

static void test_state_restore_continues_bit_identically(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_FEDAVG,     FEDL_STRATEGY_FEDAVGM,
                                               FEDL_STRATEGY_FEDADAGRAD, FEDL_STRATEGY_FEDADAM,
                                               FEDL_STRATEGY_FEDYOGI,    FEDL_STRATEGY_MEDIAN};
    static const size_t floats[] = {
        0, STATE_PARAMS, 2 * STATE_PARAMS, 2 * STATE_PARAMS, 2 * STATE_PARAMS, 0};
    (void)state;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        fedl_aggregator *a = make(&c, STATE_PARAMS), *b = make(&c, STATE_PARAMS), *resumed;
        float xa[STATE_PARAMS], xb[STATE_PARAMS];
        uint64_t rounds;
        const float *saved;
        fedl_error err;
        random_values(xa, STATE_PARAMS, 5, 99);
        memcpy(xb, xa, sizeof xa);
        for (int r = 0; r < 2; r++) {
            run_round(a, xa, r);
            run_round(b, xb, r);
        }
        assert_memory_equal(xa, xb, sizeof xa); /* deterministic */
        run_round(a, xa, 2);
        /* B's state (after 2 rounds) into a fresh aggregator, which runs round 3 */
        assert_int_equal(fedl_aggregator_state_floats(b), floats[k]);
        saved = fedl_aggregator_state(b, &rounds);
        assert_int_equal(rounds, 2);
        assert_true((saved == NULL) == (floats[k] == 0));
        resumed = make(&c, STATE_PARAMS);
        assert_int_equal(fedl_aggregator_restore(resumed, saved, floats[k], rounds, &err), FEDL_OK);
        fedl_aggregator_destroy(b);
        run_round(resumed, xb, 2);
        assert_memory_equal(xa, xb, sizeof xa);
        saved = fedl_aggregator_state(resumed, &rounds);
        assert_int_equal(rounds, 3);
        if (floats[k] > 0)
            assert_memory_equal(saved, fedl_aggregator_state(a, NULL), floats[k] * sizeof(float));
        fedl_aggregator_destroy(a);
        fedl_aggregator_destroy(resumed);
    }
}

static void test_restore_refuses_bad_state(void **state)
{
    fedl_strategy_config c = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAM);
    fedl_aggregator *g = make(&c, STATE_PARAMS), *stateless;
    float x[STATE_PARAMS] = {0}, good[2 * STATE_PARAMS], bad[2 * STATE_PARAMS];
    uint64_t rounds;
    fedl_error err;
    (void)state;
    run_round(g, x, 0);
    memcpy(good, fedl_aggregator_state(g, &rounds), sizeof good);
    memcpy(bad, good, sizeof bad);
    assert_int_equal(fedl_aggregator_restore(g, bad, 2 * STATE_PARAMS - 1, 5, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, "keeps 32 state floats");
    assert_int_equal(fedl_aggregator_restore(g, NULL, 2 * STATE_PARAMS, 5, &err),
                     FEDL_ERR_INVALID_ARG);
    bad[5] = NAN;
    assert_int_equal(fedl_aggregator_restore(g, bad, 2 * STATE_PARAMS, 5, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, "state[5] is NaN");
    bad[5] = good[5];
    bad[STATE_PARAMS + 2] = -1.0f; /* a second moment below 0 */
    assert_int_equal(fedl_aggregator_restore(g, bad, 2 * STATE_PARAMS, 5, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, "state[18]");
    /* nothing changed */
    assert_memory_equal(fedl_aggregator_state(g, &rounds), good, sizeof good);
    assert_int_equal(rounds, 1);
    fedl_aggregator_destroy(g);

    c = fedl_strategy_defaults(FEDL_STRATEGY_MEDIAN);
    stateless = make(&c, STATE_PARAMS);
    assert_int_equal(fedl_aggregator_restore(stateless, good, 1, 7, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_aggregator_restore(stateless, NULL, 0, 7, &err), FEDL_OK);
    assert_null(fedl_aggregator_state(stateless, &rounds));
    assert_int_equal(rounds, 7);
    fedl_aggregator_destroy(stateless);
}

/* ------------------------------------------------------------- memory */

static void test_create_survives_every_allocation_failure(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_FEDAVG, FEDL_STRATEGY_FEDAVGM,
                                               FEDL_STRATEGY_FEDADAM, FEDL_STRATEGY_MEDIAN,
                                               FEDL_STRATEGY_KRUM};
    static const uint64_t allocations[] = {2, 3, 3, 4, 4};
    (void)state;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        uint64_t failures = 0;
        for (uint64_t at = 1;; at++) {
            test_failing_alloc hook = {0, at};
            fedl_allocator alloc;
            fedl_aggregator *g = not_null; /* must come back NULL */
            fedl_error err;
            fedl_status st;
            float delta[32] = {0}, x[32] = {0};
            fedl_allocator_init(&alloc, test_failing_alloc_fn, &hook);
            st = fedl_aggregator_create(&c, 32, &alloc, &g, &err);
            if (st == FEDL_OK) {
                for (int i = 0; i < 5; i++)
                    add_ok(g, "client", delta, 32, 1);
                finish_ok(g, x);
                fedl_aggregator_destroy(g);
                assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
                break;
            }
            failures++;
            assert_int_equal(st, FEDL_ERR_NOMEM);
            assert_null(g);
            assert_true(err.message[0] != '\0');
            assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
        }
        /* the struct and the sum, + the state, + the pool and the scratch */
        assert_int_equal(failures, allocations[k]);
    }
}

static void test_rounds_allocate_nothing(void **state)
{
    static const fedl_strategy_kind kinds[] = {FEDL_STRATEGY_FEDAVG, FEDL_STRATEGY_FEDYOGI,
                                               FEDL_STRATEGY_TRIMMED_MEAN,
                                               FEDL_STRATEGY_MULTI_KRUM};
    (void)state;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_strategy_config c = fedl_strategy_defaults(kinds[k]);
        fedl_allocator alloc;
        fedl_aggregator *g;
        fedl_error err;
        float x[STATE_PARAMS] = {0};
        uint64_t allocs;
        fedl_allocator_init(&alloc, NULL, NULL);
        c.clip_norm = 0.5f;
        assert_int_equal(fedl_aggregator_create(&c, STATE_PARAMS, &alloc, &g, &err), FEDL_OK);
        allocs = fedl_allocator_stats(&alloc).allocs;
        for (int r = 0; r < 3; r++)
            run_round(g, x, r);
        assert_int_equal(fedl_allocator_stats(&alloc).allocs, allocs);
        fedl_aggregator_destroy(g);
        assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    }
}

/* ------------------------------------------------------- configuration */

static void test_strategy_parse_every_name(void **state)
{
    fedl_strategy_kind k;
    fedl_error err;
    (void)state;
    for (int i = 0; i <= (int)FEDL_STRATEGY_MULTI_KRUM; i++) {
        const char *name = fedl_strategy_name((fedl_strategy_kind)i);
        assert_int_equal(fedl_strategy_parse(name, &k, &err), FEDL_OK);
        assert_int_equal(k, i);
    }
    assert_string_equal(fedl_strategy_name(FEDL_STRATEGY_TRIMMED_MEAN), "trimmed-mean");
    assert_string_equal(fedl_strategy_name(FEDL_STRATEGY_MULTI_KRUM), "multi-krum");
    assert_string_equal(fedl_strategy_name((fedl_strategy_kind)99), "unknown");
    assert_int_equal(fedl_strategy_parse("fedmean", &k, &err), FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, "'fedmean'");
    assert_message_has(&err, "multi-krum");
    assert_int_equal(fedl_strategy_parse("FedAvg", &k, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_strategy_parse(NULL, &k, &err), FEDL_ERR_INVALID_ARG);
}

static void test_strategy_defaults_follow_the_header(void **state)
{
    fedl_strategy_config c;
    fedl_error err;
    (void)state;
    for (int i = 0; i <= (int)FEDL_STRATEGY_MULTI_KRUM; i++) {
        c = fedl_strategy_defaults((fedl_strategy_kind)i);
        assert_int_equal(c.kind, i);
        assert_int_equal(fedl_strategy_check(&c, &err), FEDL_OK);
        assert_true(c.clip_norm == 0.0f && c.max_updates == 100 && c.byzantine == 1);
    }
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    assert_true(c.server_lr == 1.0f && c.momentum == 0.9f && c.trim_fraction == 0.1f);
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAM);
    assert_true(c.server_lr == 0.01f && c.beta1 == 0.9f && c.beta2 == 0.99f && c.tau == 1e-9f);
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAGRAD);
    assert_true(c.server_lr == 0.1f && c.tau == 1e-9f);
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDYOGI);
    assert_true(c.server_lr == 0.01f && c.tau == 1e-9f);
}

/* A configuration field set to a bad value, and a word of the refusal. */
typedef struct bad_field {
    fedl_strategy_kind kind;
    size_t offset; /* of the field in fedl_strategy_config */
    int is_int;    /* int field, else float */
    double value;
    const char *word;
} bad_field;

#define FLOAT_FIELD(name) offsetof(fedl_strategy_config, name), 0
#define INT_FIELD(name) offsetof(fedl_strategy_config, name), 1

static const bad_field bad_fields[] = {
    {FEDL_STRATEGY_FEDAVG, FLOAT_FIELD(server_lr), 0.0, "server_lr"},
    {FEDL_STRATEGY_FEDADAM, FLOAT_FIELD(server_lr), NAN, "server_lr"},
    {FEDL_STRATEGY_FEDAVG, FLOAT_FIELD(clip_norm), -1.0, "clip_norm"},
    {FEDL_STRATEGY_MEDIAN, FLOAT_FIELD(clip_norm), INFINITY, "clip_norm"},
    {FEDL_STRATEGY_FEDPROX, FLOAT_FIELD(proximal_mu), -0.1, "proximal_mu"},
    {FEDL_STRATEGY_FEDAVGM, FLOAT_FIELD(momentum), 1.0, "momentum"},
    {FEDL_STRATEGY_FEDAVGM, FLOAT_FIELD(momentum), -0.5, "momentum"},
    {FEDL_STRATEGY_FEDADAM, FLOAT_FIELD(beta1), 1.0, "beta1"},
    {FEDL_STRATEGY_FEDYOGI, FLOAT_FIELD(beta2), -0.1, "beta2"},
    {FEDL_STRATEGY_FEDADAGRAD, FLOAT_FIELD(tau), 0.0, "tau"},
    {FEDL_STRATEGY_FEDADAM, FLOAT_FIELD(tau), NAN, "tau"},
    {FEDL_STRATEGY_TRIMMED_MEAN, FLOAT_FIELD(trim_fraction), 0.5, "trim_fraction"},
    {FEDL_STRATEGY_TRIMMED_MEAN, FLOAT_FIELD(trim_fraction), -0.1, "trim_fraction"},
    {FEDL_STRATEGY_MEDIAN, INT_FIELD(max_updates), 0, "max_updates"},
    {FEDL_STRATEGY_KRUM, INT_FIELD(max_updates), 10001, "max_updates"},
    {FEDL_STRATEGY_KRUM, INT_FIELD(byzantine), -1, "byzantine"},
    {FEDL_STRATEGY_KRUM, INT_FIELD(byzantine), 49, "2f + 2"},
    {FEDL_STRATEGY_MULTI_KRUM, INT_FIELD(byzantine), INT_MAX, "2f + 2"},
    {FEDL_STRATEGY_MULTI_KRUM, INT_FIELD(multi_krum_m), 101, "multi_krum_m"},
    {FEDL_STRATEGY_MULTI_KRUM, INT_FIELD(multi_krum_m), -1, "multi_krum_m"},
};

/* The defaults of b->kind with b's field set to b's value. */
static fedl_strategy_config with_bad_field(const bad_field *b)
{
    fedl_strategy_config c = fedl_strategy_defaults(b->kind);
    unsigned char *field = (unsigned char *)&c + b->offset;
    if (b->is_int) {
        int i = (int)b->value;
        memcpy(field, &i, sizeof i);
    } else {
        float f = (float)b->value;
        memcpy(field, &f, sizeof f);
    }
    return c;
}

/* c must be refused by check and create with a message naming word. */
static void expect_refused(const fedl_strategy_config *c, const char *word)
{
    fedl_aggregator *g = not_null; /* must come back NULL */
    fedl_error err;
    assert_int_equal(fedl_strategy_check(c, &err), FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, word);
    assert_int_equal(fedl_aggregator_create(c, 8, NULL, &g, &err), FEDL_ERR_INVALID_ARG);
    assert_message_has(&err, word);
    assert_null(g);
}

static void test_strategy_check_refuses_bad_configs(void **state)
{
    fedl_strategy_config c;
    fedl_aggregator *g;
    fedl_error err;
    (void)state;
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        c = with_bad_field(&bad_fields[i]);
        expect_refused(&c, bad_fields[i].word);
    }
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    c.kind = (fedl_strategy_kind)42;
    expect_refused(&c, "unknown kind");
    /* fields a strategy does not use are not checked */
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAGRAD);
    c.beta2 = 7.0f;
    c.momentum = NAN;
    assert_int_equal(fedl_strategy_check(&c, &err), FEDL_OK);
    /* krum: f = 48 needs 99 updates, max_updates 100 allows it */
    c = fedl_strategy_defaults(FEDL_STRATEGY_KRUM);
    c.byzantine = 48;
    assert_int_equal(fedl_strategy_check(&c, &err), FEDL_OK);
    assert_int_equal(fedl_strategy_check(NULL, &err), FEDL_ERR_INVALID_ARG);
    c = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    assert_int_equal(fedl_aggregator_create(&c, 0, NULL, &g, &err), FEDL_ERR_INVALID_ARG);
    assert_null(g);
}

#define REFERENCE(name)                                                                            \
    {                                                                                              \
        "test_matches_reference_" name, test_matches_reference, NULL, NULL, (void *)(name)         \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        REFERENCE("fedavg"),
        REFERENCE("fedprox"),
        REFERENCE("fedavg-clip"),
        REFERENCE("fedavgm"),
        REFERENCE("fedadagrad"),
        REFERENCE("fedadam"),
        REFERENCE("fedyogi"),
        REFERENCE("median"),
        REFERENCE("median-clip"),
        REFERENCE("trimmed-mean"),
        REFERENCE("krum"),
        REFERENCE("multi-krum"),
        REFERENCE("multi-krum-n-f"),
        cmocka_unit_test(test_fedavg_weights_updates_by_samples),
        cmocka_unit_test(test_bad_updates_are_refused_and_change_nothing),
        cmocka_unit_test(test_clipping_scales_a_huge_delta_to_clip_norm),
        cmocka_unit_test(test_krum_picks_an_honest_update_against_a_scaled_attacker),
        cmocka_unit_test(test_krum_refuses_n_at_most_2f_plus_2),
        cmocka_unit_test(test_multi_krum_refuses_m_above_n),
        cmocka_unit_test(test_median_and_trimmed_mean_ignore_an_outlier),
        cmocka_unit_test(test_robust_strategy_refuses_more_than_max_updates),
        cmocka_unit_test(test_round_states),
        cmocka_unit_test(test_step_that_overflows_is_refused),
        cmocka_unit_test(test_state_restore_continues_bit_identically),
        cmocka_unit_test(test_restore_refuses_bad_state),
        cmocka_unit_test(test_create_survives_every_allocation_failure),
        cmocka_unit_test(test_rounds_allocate_nothing),
        cmocka_unit_test(test_strategy_parse_every_name),
        cmocka_unit_test(test_strategy_defaults_follow_the_header),
        cmocka_unit_test(test_strategy_check_refuses_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
