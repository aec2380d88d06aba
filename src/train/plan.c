/*
 * plan.c - the memory plan of a training session: the exact bytes of each
 * category for a model, a data set and a configuration, and the largest
 * micro-batch that fits a budget.
 *
 * Sizes are what fedl's accounted allocator hands out, so a test can check
 * them against the allocator's live bytes. An aligned allocation costs its
 * size plus two size_t of header plus the alignment (fedl_mem_alloc_aligned).
 */
#include <stdio.h>
#include <string.h>

#include "fedl/train.h"

static size_t aligned_cost(size_t bytes)
{
    return bytes + 2 * sizeof(size_t) + 64;
}

static size_t classes_of(const fedl_model *model)
{
    fedl_shape out = fedl_model_output_shape(model);
    return (size_t)out.c * (size_t)out.h * (size_t)out.w;
}

size_t fedl_plan_micro_bytes(const fedl_model *model, const fedl_dataset *data, int m)
{
    size_t micro = (size_t)m;
    if (m <= 0)
        return 0;
    return fedl_model_activation_bytes(model, m) +
           aligned_cost(micro * data->sample_bytes * sizeof(float))   /* x (micro, C, H, W) */
           + micro * sizeof(int32_t)                                  /* labels (micro) */
           + aligned_cost(micro * classes_of(model) * sizeof(float)); /* dlogits (micro, K) */
}

/* Moments the optimiser keeps (see optim.c): SGD with momentum one array,
 * Adam and AdamW two, plain SGD none. */
static size_t optimizer_bytes(const fedl_train_config *c, size_t params)
{
    size_t floats = 0;
    if (c->optim.kind == FEDL_OPTIM_SGD)
        floats = c->optim.momentum > 0.0f ? params : 0;
    else
        floats = 2 * params;
    return floats > 0 ? aligned_cost(floats * sizeof(float)) : 0;
}

static void fill_fixed(const fedl_model *model, const fedl_dataset *data,
                       const fedl_train_config *c, fedl_plan *p)
{
    size_t params = fedl_model_param_count(model);
    p->dataset = data->count * data->sample_bytes + data->count;
    p->params = aligned_cost((params + 1) * sizeof(float));
    p->grads = aligned_cost((params + 1) * sizeof(float));
    p->optimizer = optimizer_bytes(c, params);
    p->order = c->shuffle ? data->count * sizeof(uint32_t) : 0;
    /* The samples themselves belong to the data source (already loaded, or
     * streamed): reported, not budgeted. */
    p->fixed = p->params + p->grads + p->optimizer + p->order;
}

static void set_micro(const fedl_model *model, const fedl_dataset *data, fedl_plan *p, int m)
{
    size_t micro = (size_t)m;
    p->micro_batch = m;
    p->batch_buffers = aligned_cost(micro * data->sample_bytes * sizeof(float)) +
                       micro * sizeof(int32_t) +
                       aligned_cost(micro * classes_of(model) * sizeof(float));
    p->activations = fedl_model_activation_bytes(model, m);
    p->total = p->fixed + p->activations + p->batch_buffers;
}

static void human(size_t bytes, char *buf, size_t size)
{
    if (bytes >= (size_t)1 << 30)
        snprintf(buf, size, "%.1f GiB", (double)bytes / (1 << 30));
    else if (bytes >= (size_t)1 << 20)
        snprintf(buf, size, "%.1f MiB", (double)bytes / (1 << 20));
    else
        snprintf(buf, size, "%.1f KiB", (double)bytes / 1024.0);
}

fedl_status fedl_plan_training(const fedl_model *model, const fedl_dataset *data,
                               const fedl_train_config *config, size_t budget, fedl_plan *plan,
                               fedl_error *err)
{
    int cap = config->batch, lo = 1, hi;
    size_t usable;
    char a[32], b[32];
    if (config->batch <= 0 || config->micro_batch < 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "plan: batch %d, micro-batch %d",
                              config->batch, config->micro_batch);
    memset(plan, 0, sizeof *plan);
    if (config->micro_batch > 0 && config->micro_batch < cap)
        cap = config->micro_batch;
    plan->batch = config->batch;
    plan->budget = budget;
    plan->margin = budget / 20;
    fill_fixed(model, data, config, plan);
    set_micro(model, data, plan, 1);
    plan->smallest_budget = plan->total * 20 / 19 + 1;
    if (budget == 0) {
        set_micro(model, data, plan, cap);
        plan->fits = 1;
        snprintf(plan->reason, sizeof plan->reason, "no memory budget: micro-batch %d%s", cap,
                 cap < config->batch ? " as asked" : " = the batch");
        return FEDL_OK;
    }
    usable = budget > plan->margin ? budget - plan->margin : 0;
    if (plan->total > usable) {
        human(plan->smallest_budget, a, sizeof a);
        human(budget, b, sizeof b);
        plan->fits = 0;
        snprintf(plan->reason, sizeof plan->reason,
                 "even micro-batch 1 needs %s with the margin; the budget is %s", a, b);
        return FEDL_OK;
    }
    /* the largest m in [1, cap] with total(m) <= usable; total grows with m */
    hi = cap;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (plan->fixed + fedl_plan_micro_bytes(model, data, mid) <= usable)
            lo = mid;
        else
            hi = mid - 1;
    }
    set_micro(model, data, plan, lo);
    plan->fits = 1;
    human(plan->total, a, sizeof a);
    human(usable, b, sizeof b);
    if (lo == config->batch)
        snprintf(plan->reason, sizeof plan->reason, "the whole batch of %d fits: %s of %s usable",
                 lo, a, b);
    else if (lo == cap)
        snprintf(plan->reason, sizeof plan->reason, "micro-batch %d as asked: %s of %s usable", lo,
                 a, b);
    else
        snprintf(plan->reason, sizeof plan->reason,
                 "micro-batch %d is the largest that fits: %s of %s usable (%d would need "
                 "%zu bytes more)",
                 lo, a, b, lo + 1,
                 plan->fixed + fedl_plan_micro_bytes(model, data, lo + 1) - usable);
    return FEDL_OK;
}
