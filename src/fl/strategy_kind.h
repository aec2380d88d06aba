/*
 * strategy_kind.h - the families of aggregation strategies (fedl/fl.h),
 * shared by the configuration check (strategy.c) and the aggregator
 * (aggregate.c): linear ones fold updates into a sum, robust ones keep
 * them, adaptive ones carry m and v, krum ones score pairwise distances.
 */
#ifndef FEDL_FL_STRATEGY_KIND_H
#define FEDL_FL_STRATEGY_KIND_H

#include "fedl/fl.h"

#define FEDL_STRATEGY_COUNT ((int)FEDL_STRATEGY_MULTI_KRUM + 1)
/* The most updates a robust strategy may keep per round: Krum's
 * (max_updates, max_updates) doubles of distances then stay below 800 MB,
 * so no size computation overflows even with a 32-bit size_t. */
#define FEDL_STRATEGY_MAX_UPDATES 10000

static inline int fedl_strategy_kind_valid(fedl_strategy_kind kind)
{
    return (int)kind >= 0 && (int)kind < FEDL_STRATEGY_COUNT;
}

static inline int fedl_strategy_is_adaptive(fedl_strategy_kind kind)
{
    return kind == FEDL_STRATEGY_FEDADAGRAD || kind == FEDL_STRATEGY_FEDADAM ||
           kind == FEDL_STRATEGY_FEDYOGI;
}

static inline int fedl_strategy_is_krum(fedl_strategy_kind kind)
{
    return kind == FEDL_STRATEGY_KRUM || kind == FEDL_STRATEGY_MULTI_KRUM;
}

static inline int fedl_strategy_is_robust(fedl_strategy_kind kind)
{
    return kind == FEDL_STRATEGY_MEDIAN || kind == FEDL_STRATEGY_TRIMMED_MEAN ||
           fedl_strategy_is_krum(kind);
}

#endif
