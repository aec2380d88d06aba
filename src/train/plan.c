/*
 * plan.c - the memory plan of a training session: the exact bytes of each
 * category for a model, a data set and a configuration, and the largest
 * micro-batch that fits a budget.
 *
 * The session's buffers are laid out in one arena (session_layout.h, the
 * same code the trainer carves the arena with); the model's parameters and
 * gradients are aligned allocations of the model, which cost their size
 * plus two size_t of header plus the alignment (fedl_mem_alloc_aligned).
 */
#include <stdio.h>
#include <string.h>

#include "fedl/train.h"
#include "train/session_layout.h"

static size_t aligned_cost(size_t bytes)
{
    return bytes + 2 * sizeof(size_t) + 64;
}

size_t fedl_plan_micro_bytes(const fedl_model *model, const fedl_dataset *data, int m)
{
    fedl_session_layout l;
    fedl_optim_config none = fedl_optim_defaults(FEDL_OPTIM_SGD);
    if (m <= 0)
        return 0;
    fedl_session_layout_of(model, data, &none, m, &l);
    return l.micro;
}

static void fill_fixed(const fedl_model *model, const fedl_dataset *data,
                       const fedl_train_config *c, fedl_plan *p)
{
    size_t params = fedl_model_param_count(model);
    fedl_session_layout l;
    fedl_session_layout_of(model, data, &c->optim, 1, &l);
    p->dataset = fedl_dataset_held_bytes(data);
    p->params = aligned_cost((params + 1) * sizeof(float));
    p->grads = aligned_cost((params + 1) * sizeof(float));
    p->optimizer = l.optimizer;
    p->order = l.order;
    /* The samples themselves belong to the data source (already loaded, or
     * streamed): reported, not budgeted. */
    p->fixed = p->params + p->grads + p->optimizer + p->order;
}

static void set_micro(const fedl_model *model, const fedl_dataset *data, const fedl_train_config *c,
                      fedl_plan *p, int m)
{
    fedl_session_layout l;
    fedl_session_layout_of(model, data, &c->optim, m, &l);
    p->micro_batch = m;
    p->activations = l.workspace;
    p->batch_buffers = l.x + l.labels + l.indices + l.dlogits + l.targets;
    p->arena = l.total;
    p->total = p->params + p->grads + p->arena + FEDL_ARENA_SLACK;
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
    set_micro(model, data, config, plan, 1);
    plan->smallest_budget = plan->total * 20 / 19 + 1;
    if (budget == 0) {
        set_micro(model, data, config, plan, cap);
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
        if (plan->fixed + FEDL_ARENA_SLACK + fedl_plan_micro_bytes(model, data, mid) <= usable)
            lo = mid;
        else
            hi = mid - 1;
    }
    set_micro(model, data, config, plan, lo);
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
                 plan->fixed + FEDL_ARENA_SLACK + fedl_plan_micro_bytes(model, data, lo + 1) -
                     usable);
    return FEDL_OK;
}
