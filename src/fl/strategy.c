/*
 * strategy.c - the aggregation strategies' configuration (fedl/fl.h): their
 * names, their defaults (Flower's server learning rates, the rest as the
 * header lists them) and the check of a configuration's ranges and
 * combinations. The aggregator itself is in aggregate.c.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fedl/fl.h"
#include "fl/strategy_kind.h"

/* Indexed by fedl_strategy_kind. */
static const char *const strategy_names[FEDL_STRATEGY_COUNT] = {
    "fedavg",  "fedprox", "fedavgm",      "fedadagrad", "fedadam",
    "fedyogi", "median",  "trimmed-mean", "krum",       "multi-krum"};

fedl_strategy_config fedl_strategy_defaults(fedl_strategy_kind kind)
{
    fedl_strategy_config c = {.kind = kind,
                              .server_lr = 1.0f,
                              .momentum = 0.9f,
                              .beta1 = 0.9f,
                              .beta2 = 0.99f,
                              .tau = 1e-9f,
                              .proximal_mu = 0.01f,
                              .trim_fraction = 0.1f,
                              .byzantine = 1,
                              .multi_krum_m = 0,
                              .clip_norm = 0.0f,
                              .max_updates = 100};
    /* Chosen by bench/server_optimisers.sh (docs/PERFORMANCE.md, "Server
     * optimisers"): on 10 LeNet-5 clients, Adam and Yogi do best at 0.01
     * with tau 1e-9 and Adagrad at 0.1; Adam at Flower's 0.1 with tau 1e-9
     * moves every weight by about 0.1 a round and ends at chance. */
    if (kind == FEDL_STRATEGY_FEDADAGRAD)
        c.server_lr = 0.1f;
    if (kind == FEDL_STRATEGY_FEDADAM || kind == FEDL_STRATEGY_FEDYOGI)
        c.server_lr = 0.01f;
    return c;
}

const char *fedl_strategy_name(fedl_strategy_kind kind)
{
    return fedl_strategy_kind_valid(kind) ? strategy_names[kind] : "unknown";
}

fedl_status fedl_strategy_parse(const char *name, fedl_strategy_kind *out, fedl_error *err)
{
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "strategy: no output");
    for (int k = 0; name != NULL && k < FEDL_STRATEGY_COUNT; k++) {
        if (strcmp(name, strategy_names[k]) == 0) {
            *out = (fedl_strategy_kind)k;
            return FEDL_OK;
        }
    }
    return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                          "unknown strategy '%.64s': expected fedavg, fedprox, fedavgm, "
                          "fedadagrad, fedadam, fedyogi, median, trimmed-mean, krum or multi-krum",
                          name != NULL ? name : "(null)");
}

/* ------------------------------------------------------------------ check */

/* 1 when lo <= x < hi (hi_open) or lo <= x <= hi; NaN is never in range. */
static int in_range(float x, double lo, double hi, int hi_open)
{
    double v = (double)x;
    return v >= lo && (hi_open ? v < hi : v <= hi);
}

static fedl_status field_error(fedl_error *err, const fedl_strategy_config *c, const char *field,
                               double value, const char *range)
{
    return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "strategy %s: %s %g is outside %s",
                          fedl_strategy_name(c->kind), field, value, range);
}

static fedl_status check_adaptive(const fedl_strategy_config *c, fedl_error *err)
{
    if (!in_range(c->beta1, 0.0, 1.0, 1))
        return field_error(err, c, "beta1", (double)c->beta1, "[0, 1)");
    if (c->kind != FEDL_STRATEGY_FEDADAGRAD && !in_range(c->beta2, 0.0, 1.0, 1))
        return field_error(err, c, "beta2", (double)c->beta2, "[0, 1)");
    /* tau keeps m / (sqrt(v) + tau) finite where v is still 0. */
    if (!(c->tau > 0.0f) || !isfinite(c->tau))
        return field_error(err, c, "tau", (double)c->tau, "(0, inf)");
    return FEDL_OK;
}

/* Krum scores each update over its n - f - 2 nearest others, so a round
 * needs n > 2f + 2 updates, and the pool must be able to hold that many. */
static fedl_status check_krum(const fedl_strategy_config *c, fedl_error *err)
{
    long long needed = 2LL * (long long)c->byzantine + 3;
    if (c->byzantine < 0)
        return field_error(err, c, "byzantine", (double)c->byzantine, "[0, max_updates)");
    if ((long long)c->max_updates < needed)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "strategy %s: byzantine %d needs more than 2f + 2 = %lld updates "
                              "per round, but max_updates is %d",
                              fedl_strategy_name(c->kind), c->byzantine, needed - 1,
                              c->max_updates);
    if (c->kind == FEDL_STRATEGY_MULTI_KRUM &&
        (c->multi_krum_m < 0 || c->multi_krum_m > c->max_updates))
        return field_error(err, c, "multi_krum_m", (double)c->multi_krum_m,
                           "[0, max_updates] (0 = n - f)");
    return FEDL_OK;
}

static fedl_status check_robust(const fedl_strategy_config *c, fedl_error *err)
{
    if (c->max_updates < 1 || c->max_updates > FEDL_STRATEGY_MAX_UPDATES)
        return field_error(err, c, "max_updates", (double)c->max_updates, "[1, 10000]");
    if (c->kind == FEDL_STRATEGY_TRIMMED_MEAN && !in_range(c->trim_fraction, 0.0, 0.5, 1))
        return field_error(err, c, "trim_fraction", (double)c->trim_fraction, "[0, 0.5)");
    if (fedl_strategy_is_krum(c->kind))
        return check_krum(c, err);
    return FEDL_OK;
}

fedl_status fedl_strategy_check(const fedl_strategy_config *c, fedl_error *err)
{
    if (c == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "strategy: no configuration");
    if (!fedl_strategy_kind_valid(c->kind))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "strategy: unknown kind %d", (int)c->kind);
    if (!(c->server_lr > 0.0f) || !isfinite(c->server_lr))
        return field_error(err, c, "server_lr", (double)c->server_lr, "(0, inf)");
    if (!(c->clip_norm >= 0.0f) || !isfinite(c->clip_norm))
        return field_error(err, c, "clip_norm", (double)c->clip_norm, "[0, inf) (0 = off)");
    if (c->kind == FEDL_STRATEGY_FEDPROX &&
        (!(c->proximal_mu >= 0.0f) || !isfinite(c->proximal_mu)))
        return field_error(err, c, "proximal_mu", (double)c->proximal_mu, "[0, inf)");
    if (c->kind == FEDL_STRATEGY_FEDAVGM && !in_range(c->momentum, 0.0, 1.0, 1))
        return field_error(err, c, "momentum", (double)c->momentum, "[0, 1)");
    if (fedl_strategy_is_adaptive(c->kind))
        return check_adaptive(c, err);
    if (fedl_strategy_is_robust(c->kind))
        return check_robust(c, err);
    return FEDL_OK;
}
