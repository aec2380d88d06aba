/*
 * federated_partials.c - scale-out without a network: six clients' updates
 * are split between two aggregators, each folds its share into a partial
 * sum (fedl_aggregator_sum) and encodes it as a partial message; the
 * coordinator decodes both, combines them with fedl_coordinator_partial
 * and ends the round with the same model as a coordinator that took every
 * update itself. fedl aggregate and fedl serve --aggregators do this over
 * MQTT; docs/PROTOCOL.md, "Scale-out", has the layout.
 *
 *   cc federated_partials.c $(pkg-config --cflags --libs fedl) -o federated_partials
 *   ./federated_partials
 */
#include <stdio.h>
#include <string.h>

#include "fedl/fedl.h"

#define PARAMS 1000
#define CLIENTS 6

static const char ids[CLIENTS][FEDL_CLIENT_ID_MAX] = {"dev-0", "dev-1", "dev-2",
                                                      "dev-3", "dev-4", "dev-5"};

static int fail(const char *what, const fedl_error *err)
{
    fprintf(stderr, "federated_partials: %s: %s\n", what, err->message);
    return 1;
}

/* Client c's delta: some values of its own. */
static void delta_of(int c, float *delta)
{
    for (int i = 0; i < PARAMS; i++)
        delta[i] = (float)((c * 7919 + i * 104729) % 2001 - 1000) * 1e-5f;
}

static fedl_coordinator *coordinator(const float *initial, fedl_error *err)
{
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co = NULL;
    fedl_telemetry t = {0, 0.0, 100, 0};
    c.rounds = 1;
    if (fedl_coordinator_create(&c, initial, PARAMS, NULL, &co, err) != FEDL_OK)
        return NULL;
    for (int i = 0; i < CLIENTS; i++)
        if (fedl_coordinator_register(co, ids[i], &t, 0, err) != FEDL_OK)
            return NULL;
    return fedl_coordinator_start(co, 0, err) == FEDL_OK ? co : NULL;
}

/* An aggregator's share [from, to) as a partial message, into the
 * coordinator. */
static int aggregate(fedl_coordinator *co, const char *name, int from, int to, fedl_error *err)
{
    static float delta[PARAMS];
    static double sums[PARAMS];
    static uint8_t body[64 + CLIENTS * FEDL_CLIENT_ID_MAX + 8 * PARAMS];
    char back[CLIENTS][FEDL_CLIENT_ID_MAX];
    fedl_strategy_config fedavg = fedl_strategy_defaults(FEDL_STRATEGY_FEDAVG);
    fedl_aggregator *g = NULL;
    fedl_partial p;
    size_t length;
    if (fedl_aggregator_create(&fedavg, PARAMS, NULL, &g, err) != FEDL_OK)
        return 1;
    for (int c = from; c < to; c++) {
        delta_of(c, delta);
        if (fedl_aggregator_add(g, ids[c], delta, PARAMS, 100.0, err) != FEDL_OK)
            return 1;
    }
    memset(&p, 0, sizeof p);
    p.count = to - from;
    p.clients = ids + from;
    p.sum = fedl_aggregator_sum(g);
    p.params = PARAMS;
    p.samples = fedl_aggregator_samples(g);
    if (fedl_partial_message_encode(&p, body, sizeof body, &length, err) != FEDL_OK)
        return 1;
    fedl_aggregator_destroy(g);
    /* the coordinator's side: decode, name the sender and round, combine */
    if (fedl_partial_message_decode(body, length, back, CLIENTS, sums, PARAMS, &p, err) != FEDL_OK)
        return 1;
    snprintf(p.aggregator_id, sizeof p.aggregator_id, "%s", name);
    p.round = 1;
    printf("%s: a partial of %d updates in %zu bytes\n", name, p.count, length);
    return fedl_coordinator_partial(co, &p, 10, err) != FEDL_OK;
}

int main(void)
{
    static float initial[PARAMS], delta[PARAMS];
    fedl_error err = {0};
    fedl_coordinator *direct = coordinator(initial, &err), *split;
    const float *a, *b;
    double largest = 0.0;
    if (direct == NULL)
        return fail("coordinator", &err);
    split = coordinator(initial, &err);
    if (split == NULL)
        return fail("coordinator", &err);
    for (int c = 0; c < CLIENTS; c++) {
        fedl_update u;
        delta_of(c, delta);
        memset(&u, 0, sizeof u);
        memcpy(u.client_id, ids[c], sizeof u.client_id);
        u.round = 1;
        u.values = delta;
        u.params = PARAMS;
        u.samples = 100;
        if (fedl_coordinator_update(direct, &u, 10, &err) != FEDL_OK)
            return fail("update", &err);
    }
    if (aggregate(split, "agg-1", 0, 4, &err) != 0 || aggregate(split, "agg-2", 4, 6, &err) != 0)
        return fail("partial", &err);
    if (fedl_coordinator_round_open(split))
        return fprintf(stderr, "federated_partials: the round did not close\n"), 1;
    a = fedl_coordinator_weights(direct, NULL);
    b = fedl_coordinator_weights(split, NULL);
    for (int i = 0; i < PARAMS; i++) {
        double d = (double)a[i] - (double)b[i];
        d = d < 0.0 ? -d : d;
        largest = d > largest ? d : largest;
    }
    printf("round 1 through two aggregators: largest difference from the direct round %.3g\n",
           largest);
    fedl_coordinator_destroy(direct);
    fedl_coordinator_destroy(split);
    return largest <= 1e-6 ? 0 : 1;
}
