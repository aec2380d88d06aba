/*
 * optim.c - SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW
 * with torch.optim's exact update rules, and learning-rate schedules. The
 * state is one flat array so checkpoints write it in one piece.
 */
#include <math.h>
#include <string.h>

#include "fedl/nn.h"

struct fedl_optim {
    fedl_allocator *alloc;
    fedl_optim_config config;
    size_t param_count;
    uint64_t steps;
    size_t state_count; /* floats */
    float *state;       /* SGD: momentum (n); Adam: m (n) then v (n) */
    int state_owned;    /* 0: lent by the caller (fedl_optim_create_in) */
};

fedl_optim_config fedl_optim_defaults(fedl_optim_kind kind)
{
    fedl_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = kind == FEDL_OPTIM_ADAMW ? 0.01f : 0.0f;
    return c;
}

static const char *const optim_names[] = {"sgd", "adam", "adamw"};

fedl_status fedl_optim_parse_kind(const char *name, fedl_optim_kind *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, optim_names[i]) == 0) {
            *out = (fedl_optim_kind)i;
            return FEDL_OK;
        }
    }
    return FEDL_ERR_INVALID_ARG;
}

const char *fedl_optim_kind_name(fedl_optim_kind kind)
{
    return (unsigned)kind < 3 ? optim_names[kind] : "unknown";
}

static fedl_status check_config(const fedl_optim_config *config, fedl_error *err)
{
    if ((unsigned)config->kind > FEDL_OPTIM_ADAMW)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "optimiser: unknown kind %d",
                              (int)config->kind);
    if (config->kind == FEDL_OPTIM_SGD) {
        if (config->momentum < 0.0f || config->momentum >= 1.0f)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "optimiser: momentum %g outside [0, 1)",
                                  (double)config->momentum);
        if (config->nesterov && (config->momentum <= 0.0f || config->dampening != 0.0f))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "optimiser: Nesterov momentum needs momentum > 0 and no "
                                  "dampening");
    } else {
        if (!(config->beta1 >= 0.0f && config->beta1 < 1.0f && config->beta2 >= 0.0f &&
              config->beta2 < 1.0f))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "optimiser: betas (%g, %g) outside [0, 1)", (double)config->beta1,
                                  (double)config->beta2);
        if (!(config->eps > 0.0f))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "optimiser: eps must be positive");
    }
    if (config->weight_decay < 0.0f)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "optimiser: weight decay %g < 0",
                              (double)config->weight_decay);
    return FEDL_OK;
}

size_t fedl_optim_state_floats(const fedl_optim_config *config, size_t param_count)
{
    if (config->kind == FEDL_OPTIM_SGD)
        return config->momentum > 0.0f ? param_count : 0;
    return 2 * param_count;
}

/* The optimiser object; state is lent (state_owned 0) or allocated here. */
static fedl_status create(const fedl_optim_config *config, size_t param_count, float *lent,
                          int lend, fedl_allocator *alloc, fedl_optim **out, fedl_error *err)
{
    fedl_optim *o;
    size_t state_count;
    fedl_status st = check_config(config, err);
    *out = NULL;
    if (st != FEDL_OK)
        return st;
    state_count = fedl_optim_state_floats(config, param_count);
    if (lend && state_count > 0 && lent == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "optimiser: no memory lent for %zu floats of state", state_count);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    o = fedl_mem_alloc(alloc, sizeof *o);
    if (o == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "optimiser: cannot allocate");
    o->alloc = alloc;
    o->config = *config;
    o->param_count = param_count;
    o->state_count = state_count;
    o->state_owned = !lend;
    if (lend) {
        o->state = state_count > 0 ? lent : NULL;
    } else if (state_count > 0) {
        o->state = fedl_mem_alloc_aligned(alloc, state_count * sizeof(float), 64);
        if (o->state == NULL) {
            fedl_mem_free(alloc, o, sizeof *o);
            return fedl_error_set(err, FEDL_ERR_NOMEM,
                                  "optimiser: cannot allocate %zu bytes of state",
                                  state_count * sizeof(float));
        }
    }
    *out = o;
    return FEDL_OK;
}

fedl_status fedl_optim_create(const fedl_optim_config *config, size_t param_count,
                              fedl_allocator *alloc, fedl_optim **out, fedl_error *err)
{
    return create(config, param_count, NULL, 0, alloc, out, err);
}

fedl_status fedl_optim_create_in(const fedl_optim_config *config, size_t param_count, float *state,
                                 fedl_allocator *alloc, fedl_optim **out, fedl_error *err)
{
    return create(config, param_count, state, 1, alloc, out, err);
}

void fedl_optim_move_state(fedl_optim *o, float *state)
{
    if (!o->state_owned && o->state_count > 0)
        o->state = state;
}

void fedl_optim_destroy(fedl_optim *o)
{
    if (o == NULL)
        return;
    if (o->state_owned)
        fedl_mem_free_aligned(o->alloc, o->state);
    fedl_mem_free(o->alloc, o, sizeof *o);
}

/* torch.optim.SGD: g += wd * p; b = g (first step) or mu * b + (1 - damp) * g;
 * g = nesterov ? g + mu * b : b; p -= lr * g. Each case is its own loop
 * over restrict pointers so that it vectorises. */
static void sgd_plain(size_t n, float *restrict p, const float *restrict grads, float lr, float wd)
{
    for (size_t i = 0; i < n; i++)
        p[i] -= lr * (grads[i] + wd * p[i]);
}

static void sgd_momentum(size_t n, float *restrict p, const float *restrict grads,
                         float *restrict buf, float lr, float wd, float mu, float damp, int first,
                         int nesterov)
{
    if (first) {
        for (size_t i = 0; i < n; i++)
            buf[i] = grads[i] + wd * p[i];
    } else {
        for (size_t i = 0; i < n; i++)
            buf[i] = mu * buf[i] + damp * (grads[i] + wd * p[i]);
    }
    if (nesterov) {
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * ((grads[i] + wd * p[i]) + mu * buf[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * buf[i];
    }
}

static void sgd_step(fedl_optim *o, float *p, const float *grads, float lr)
{
    const fedl_optim_config *c = &o->config;
    if (o->state == NULL)
        sgd_plain(o->param_count, p, grads, lr, c->weight_decay);
    else
        sgd_momentum(o->param_count, p, grads, o->state, lr, c->weight_decay, c->momentum,
                     1.0f - c->dampening, o->steps == 0, c->nesterov);
}

/* torch.optim.Adam / AdamW (non-amsgrad, non-fused, float32): one loop over
 * restrict pointers, decay folded in as L2 (Adam) or decoupled (AdamW). */
static void adam_update(size_t n, float *restrict p, const float *restrict grads, float *restrict m,
                        float *restrict v, float lr, const fedl_optim_config *c, float step_size,
                        float bias2_sqrt)
{
    float l2 = c->kind == FEDL_OPTIM_ADAMW ? 0.0f : c->weight_decay;
    float shrink = c->kind == FEDL_OPTIM_ADAMW ? 1.0f - lr * c->weight_decay : 1.0f;
    float one_minus_b1 = 1.0f - c->beta1, b2 = c->beta2, one_minus_b2 = 1.0f - c->beta2;
    float eps = c->eps;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] + l2 * p[i];
        float pi = p[i] * shrink;
        m[i] += (g - m[i]) * one_minus_b1;
        v[i] = v[i] * b2 + one_minus_b2 * g * g;
        p[i] = pi - step_size * (m[i] / (sqrtf(v[i]) / bias2_sqrt + eps));
    }
}

static void adam_step(fedl_optim *o, float *p, const float *grads, float lr)
{
    const fedl_optim_config *c = &o->config;
    double t = (double)(o->steps + 1);
    float bias1 = (float)(1.0 - pow((double)c->beta1, t));
    float bias2 = (float)(1.0 - pow((double)c->beta2, t));
    adam_update(o->param_count, p, grads, o->state, o->state + o->param_count, lr, c, lr / bias1,
                sqrtf(bias2));
}

void fedl_optim_step(fedl_optim *o, float *params, const float *grads, float lr)
{
    if (o->config.kind == FEDL_OPTIM_SGD)
        sgd_step(o, params, grads, lr);
    else
        adam_step(o, params, grads, lr);
    o->steps++;
}

uint64_t fedl_optim_step_count(const fedl_optim *o)
{
    return o->steps;
}

void fedl_optim_set_step_count(fedl_optim *o, uint64_t steps)
{
    o->steps = steps;
}

float *fedl_optim_state(fedl_optim *o, size_t *count)
{
    *count = o->state_count;
    return o->state;
}

/* ----------------------------------------------------------- schedules */

float fedl_lr_at(const fedl_lr_schedule *s, uint64_t step)
{
    switch (s->kind) {
    case FEDL_LR_STEP:
        if (s->step_size == 0)
            return s->base_lr;
        return (float)((double)s->base_lr * pow((double)s->gamma, (double)(step / s->step_size)));
    case FEDL_LR_COSINE: {
        double t, total = (double)(s->total_steps > 0 ? s->total_steps : 1);
        t = (double)(step < s->total_steps ? step : s->total_steps);
        return (float)((double)s->min_lr + ((double)s->base_lr - (double)s->min_lr) *
                                               (1.0 + cos(3.14159265358979323846 * t / total)) /
                                               2.0);
    }
    case FEDL_LR_CONSTANT:
    default:
        return s->base_lr;
    }
}

fedl_status fedl_lr_parse_kind(const char *name, fedl_lr_kind *out)
{
    if (strcmp(name, "constant") == 0)
        *out = FEDL_LR_CONSTANT;
    else if (strcmp(name, "step") == 0)
        *out = FEDL_LR_STEP;
    else if (strcmp(name, "cosine") == 0)
        *out = FEDL_LR_COSINE;
    else
        return FEDL_ERR_INVALID_ARG;
    return FEDL_OK;
}
