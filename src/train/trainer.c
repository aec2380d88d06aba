/*
 * trainer.c - the training loop: batch -> forward -> loss -> backward ->
 * optimiser step, with every buffer carved once from the session's arena
 * (laid out by session_layout.h, which the planner uses too); and
 * evaluation.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fedl/train.h"
#include "train/follow.h"
#include "train/session_layout.h"

struct fedl_trainer {
    fedl_allocator *alloc;
    fedl_model *model;
    const fedl_dataset *data;
    fedl_train_config config;
    fedl_optim *optim;
    fedl_batcher batcher;
    int classes;
    fedl_arena arena;           /* every buffer below, the optimiser state and the order */
    int micro;                  /* samples per forward/backward, <= config.batch */
    float *x;                   /* (micro, C, H, W) */
    int32_t *labels;            /* (micro) */
    uint32_t *indices;          /* (micro), for evaluation */
    float *dlogits;             /* (micro, classes) */
    float *targets;             /* (micro, data->targets), regression only */
    int released;               /* the micro-batch part is given back (fedl_trainer_release) */
    int released_micro;         /* the micro-batch to take back */
    fedl_trainer_follow follow; /* the monitor it follows (follow.c) */
    fedl_train_stats stats;
    atomic_ullong requested_budget; /* bytes, NO_REQUEST when none is pending */
    char *config_text;              /* canonical "key=value\n" lines, config_bytes with the NUL */
    size_t config_bytes;
    uint8_t config_sha256[FEDL_SHA256_BYTES];
};

fedl_train_config fedl_train_config_defaults(void)
{
    fedl_train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 32;
    c.epochs = 1;
    c.seed = 1;
    c.shuffle = 1;
    c.optim = fedl_optim_defaults(FEDL_OPTIM_SGD);
    c.lr.kind = FEDL_LR_CONSTANT;
    c.lr.base_lr = 0.01f;
    return c;
}

#define NO_REQUEST ULLONG_MAX

/* Carve the micro-batch part of the arena (after its fixed part) for micro
 * samples: the model's workspace, then the batch buffers. The arena's
 * capacity must be the layout's total for micro. */
static fedl_status carve_micro(fedl_trainer *t, int micro, fedl_error *err)
{
    fedl_session_layout l;
    void *workspace;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, micro, &l);
    fedl_arena_truncate(&t->arena, l.fixed);
    workspace = fedl_arena_push(&t->arena, l.workspace, 64);
    t->x = fedl_arena_push(&t->arena, l.x, 64);
    t->labels = fedl_arena_push(&t->arena, l.labels, 64);
    t->indices = fedl_arena_push(&t->arena, l.indices, 64);
    t->dlogits = fedl_arena_push(&t->arena, l.dlogits, 64);
    t->targets = l.targets > 0 ? fedl_arena_push(&t->arena, l.targets, 64) : NULL;
    t->micro = micro;
    if (t->dlogits == NULL) /* the layout and the capacity disagree: a bug */
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "trainer: arena of %zu bytes too small for micro-batch %d (%zu)",
                              t->arena.capacity, micro, l.total);
    return fedl_model_bind_workspace(t->model, micro, workspace, l.workspace, err);
}

/* The arena's fixed part moved with its block: point the optimiser and the
 * batcher at the new copies. */
static void follow_fixed_part(fedl_trainer *t)
{
    fedl_session_layout l;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, 1, &l);
    fedl_optim_move_state(t->optim, (float *)(void *)t->arena.base);
    t->batcher.order = (uint32_t *)(void *)(t->arena.base + l.optimizer);
}

/* Resize the arena for micro samples and lay them out. If the arena cannot
 * grow, the trainer keeps its current micro-batch and buffers. */
static fedl_status replan_arena(fedl_trainer *t, int micro, fedl_error *err)
{
    fedl_session_layout l;
    unsigned char *old_base = t->arena.base;
    fedl_status st;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, micro, &l);
    fedl_model_bind_workspace(t->model, 0, NULL, 0, NULL);
    fedl_arena_truncate(&t->arena, l.fixed);
    st = fedl_arena_resize(&t->arena, l.total, err);
    if (t->arena.base != old_base)
        follow_fixed_part(t);
    if (st != FEDL_OK) {
        fedl_error kept;
        carve_micro(t, t->micro, &kept);
        return fedl_error_set(err, st,
                              "trainer: cannot take %zu bytes for micro-batch %d; micro-batch %d "
                              "kept",
                              l.total, micro, t->micro);
    }
    return carve_micro(t, micro, err);
}

static int effective_micro(const fedl_train_config *c)
{
    return c->micro_batch > 0 && c->micro_batch < c->batch ? c->micro_batch : c->batch;
}

void fedl_trainer_destroy(fedl_trainer *t)
{
    if (t == NULL)
        return;
    if (t->arena.base != NULL && t->x != NULL)
        fedl_model_bind_workspace(t->model, 0, NULL, 0, NULL); /* it points into the arena */
    fedl_optim_destroy(t->optim);
    fedl_batcher_free(&t->batcher);
    fedl_arena_destroy(&t->arena);
    fedl_mem_free(t->alloc, t->config_text, t->config_bytes);
    fedl_mem_free(t->alloc, t, sizeof *t);
}

static int shapes_equal(fedl_shape a, fedl_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* -------------------------------------------------- configuration text */

/* Appends to a buffer, or only counts when buf is NULL. */
typedef struct text_sink {
    char *buf;
    size_t size, used;
} text_sink;

static void sink_printf(text_sink *sink, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void sink_printf(text_sink *sink, const char *format, ...)
{
    va_list args;
    int n;
    va_start(args, format);
    n = vsnprintf(sink->buf ? sink->buf + sink->used : NULL,
                  sink->buf ? sink->size - sink->used : 0, format, args);
    va_end(args);
    if (n > 0)
        sink->used += (size_t)n;
}

static const char *lr_kind_name(fedl_lr_kind kind)
{
    switch (kind) {
    case FEDL_LR_CONSTANT:
        return "constant";
    case FEDL_LR_STEP:
        return "step";
    case FEDL_LR_COSINE:
        return "cosine";
    }
    return "unknown";
}

/* Every setting that changes the arithmetic of training, one per line.
 * Floats are printed with %.9g, which round-trips float32 exactly. */
static void write_config(text_sink *sink, const fedl_model *model, const fedl_dataset *data,
                         const fedl_train_config *c)
{
    fedl_shape in = fedl_model_input_shape(model);
    sink_printf(sink, "model=%s\n", fedl_model_spec(model));
    sink_printf(sink, "input=%dx%dx%d\n", (int)in.c, (int)in.h, (int)in.w);
    sink_printf(sink, "params=%zu\n", fedl_model_param_count(model));
    sink_printf(sink, "model_seed=%llu\n", (unsigned long long)fedl_model_seed(model));
    sink_printf(sink, "batch=%d\n", c->batch);
    sink_printf(sink, "seed=%llu\n", (unsigned long long)c->seed);
    sink_printf(sink, "shuffle=%d\n", c->shuffle);
    sink_printf(sink, "optimizer=%s\n", fedl_optim_kind_name(c->optim.kind));
    sink_printf(sink, "momentum=%.9g\n", (double)c->optim.momentum);
    sink_printf(sink, "dampening=%.9g\n", (double)c->optim.dampening);
    sink_printf(sink, "nesterov=%d\n", c->optim.nesterov);
    sink_printf(sink, "weight_decay=%.9g\n", (double)c->optim.weight_decay);
    sink_printf(sink, "beta1=%.9g\n", (double)c->optim.beta1);
    sink_printf(sink, "beta2=%.9g\n", (double)c->optim.beta2);
    sink_printf(sink, "eps=%.9g\n", (double)c->optim.eps);
    /* Only the settings the schedule uses: a constant schedule does not
     * depend on the run's length, so such a run can be extended. */
    sink_printf(sink, "lr_schedule=%s\n", lr_kind_name(c->lr.kind));
    sink_printf(sink, "lr=%.9g\n", (double)c->lr.base_lr);
    if (c->lr.kind == FEDL_LR_STEP) {
        sink_printf(sink, "lr_step_size=%llu\n", (unsigned long long)c->lr.step_size);
        sink_printf(sink, "lr_gamma=%.9g\n", (double)c->lr.gamma);
    }
    if (c->lr.kind == FEDL_LR_COSINE) {
        sink_printf(sink, "lr_total_steps=%llu\n", (unsigned long long)c->lr.total_steps);
        sink_printf(sink, "lr_min=%.9g\n", (double)c->lr.min_lr);
    }
    sink_printf(sink, "data_samples=%zu\n", data->count);
    sink_printf(sink, "data_shape=%dx%dx%d\n", (int)data->shape.c, (int)data->shape.h,
                (int)data->shape.w);
    sink_printf(sink, "data_classes=%d\n", data->classes);
    if (c->proximal_mu > 0.0f) /* (absent when off, as before FedProx existed) */
        sink_printf(sink, "proximal_mu=%.9g\n", (double)c->proximal_mu);
    if (c->loss == FEDL_LOSS_MSE) /* (absent for cross-entropy, as before it existed) */
        sink_printf(sink, "loss=mse\ndata_targets=%d\n", data->targets);
    sink_printf(sink, "data_scale=%.9g\n", (double)data->scale);
    sink_printf(sink, "data_shift=%.9g\n", (double)data->shift);
    if (data->source.read != NULL) {
        char hex[2 * FEDL_SHA256_BYTES + 1];
        fedl_sha256_hex(data->source.identity, hex);
        sink_printf(sink, "data_sha256=%s\n", hex);
    } else {
        sink_printf(sink, "data_crc32c=%08x\n",
                    fedl_crc32c(fedl_crc32c(0, data->pixels, data->count * data->sample_bytes),
                                data->labels, data->count));
    }
}

static fedl_status build_config_text(fedl_trainer *t, fedl_error *err)
{
    text_sink count = {NULL, 0, 0}, sink;
    write_config(&count, t->model, t->data, &t->config);
    t->config_bytes = count.used + 1;
    t->config_text = fedl_mem_alloc(t->alloc, t->config_bytes);
    if (t->config_text == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "trainer: cannot allocate the configuration");
    sink.buf = t->config_text;
    sink.size = t->config_bytes;
    sink.used = 0;
    write_config(&sink, t->model, t->data, &t->config);
    fedl_sha256(t->config_text, sink.used, t->config_sha256);
    return FEDL_OK;
}

/* The arena for micro samples, the optimiser and batcher over its fixed
 * part, and the micro-batch buffers. */
static fedl_status create_session_buffers(fedl_trainer *t, int micro, fedl_error *err)
{
    fedl_session_layout l;
    float *optim_state;
    uint32_t *order;
    fedl_status st;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, micro, &l);
    st = fedl_arena_init(&t->arena, t->alloc, l.total, err);
    if (st != FEDL_OK)
        return fedl_error_set(err, st, "trainer: cannot take %zu bytes for micro-batch %d", l.total,
                              micro);
    optim_state = fedl_arena_push(&t->arena, l.optimizer, 64);
    order = fedl_arena_push(&t->arena, l.order, 64);
    st = fedl_optim_create_in(&t->config.optim, fedl_model_param_count(t->model),
                              l.optimizer > 0 ? optim_state : NULL, t->alloc, &t->optim, err);
    if (st == FEDL_OK)
        st = fedl_batcher_init_in(&t->batcher, t->data, t->config.seed, t->config.shuffle, order,
                                  err);
    if (st == FEDL_OK)
        st = carve_micro(t, micro, err);
    return st;
}

fedl_status fedl_trainer_create(fedl_model *model, const fedl_dataset *train,
                                const fedl_train_config *config, fedl_allocator *alloc,
                                fedl_trainer **out, fedl_error *err)
{
    fedl_trainer *t;
    fedl_status st;
    fedl_shape in = fedl_model_input_shape(model), outs = fedl_model_output_shape(model);
    *out = NULL;
    if (config->proximal_mu < 0.0f || (config->proximal_mu > 0.0f && config->proximal_ref == NULL))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: proximal mu %g needs reference weights (and is not "
                              "negative)",
                              (double)config->proximal_mu);
    if (config->batch <= 0 || config->micro_batch < 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: batch %d must be positive, micro-batch %d not negative",
                              config->batch, config->micro_batch);
    if (!shapes_equal(in, train->shape))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: model input (%d,%d,%d) does not match the data "
                              "(%d,%d,%d)",
                              (int)in.c, (int)in.h, (int)in.w, (int)train->shape.c,
                              (int)train->shape.h, (int)train->shape.w);
    if ((config->loss == FEDL_LOSS_MSE) != (train->targets > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "trainer: %s needs %s data",
                              config->loss == FEDL_LOSS_MSE ? "the squared-error loss"
                                                            : "the cross-entropy loss",
                              config->loss == FEDL_LOSS_MSE ? "regression" : "class-labelled");
    if (train->targets > 0 && (size_t)outs.c * outs.h * outs.w != (size_t)train->targets)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: model has %d outputs but the data has %d targets",
                              (int)(outs.c * outs.h * outs.w), train->targets);
    if ((size_t)outs.c * outs.h * outs.w < (size_t)train->classes)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: model has %d outputs but the data has %d classes",
                              (int)(outs.c * outs.h * outs.w), train->classes);
    if (train->count == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "trainer: the training set is empty");
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    t = fedl_mem_alloc(alloc, sizeof *t);
    if (t == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "trainer: cannot allocate");
    memset(t, 0, sizeof *t);
    t->alloc = alloc;
    t->model = model;
    t->data = train;
    t->config = *config;
    t->classes = (int)(outs.c * outs.h * outs.w);
    atomic_init(&t->requested_budget, NO_REQUEST);
    st = create_session_buffers(t, effective_micro(config), err);
    if (st == FEDL_OK)
        st = build_config_text(t, err);
    if (st != FEDL_OK) {
        fedl_trainer_destroy(t);
        return st;
    }
    t->stats.epoch_samples = train->count;
    fedl_log(FEDL_LOG_INFO,
             "trainer: %zu samples, batch %d (micro-batch %d), %s, %zu parameters, an arena of "
             "%zu bytes",
             train->count, config->batch, t->micro, fedl_optim_kind_name(config->optim.kind),
             fedl_model_param_count(model), t->arena.capacity);
    *out = t;
    return FEDL_OK;
}

/* Forward and backward of the next m samples, the part of the step's n
 * samples that starts at sample `first`; gradients accumulate. The loss
 * gradient is scaled by 1/n, so the micro-batches of a step sum to the
 * gradient of the whole batch's mean loss. */
static fedl_status micro_step(fedl_trainer *t, size_t first, size_t m, size_t n, double *loss_sum,
                              fedl_error *err)
{
    const float *logits;
    double loss = 0.0;
    size_t got, k = (size_t)t->classes;
    int regression = t->config.loss == FEDL_LOSS_MSE;
    fedl_status st = fedl_batcher_read(&t->batcher, m, t->x, regression ? NULL : t->labels,
                                       regression ? t->targets : NULL, &got, err);
    if (st != FEDL_OK)
        return st;
    if (got != m)
        return fedl_error_set(err, FEDL_ERR_STATE, "trainer: %zu samples left, %zu expected", got,
                              m);
    fedl_model_set_step(t->model, t->stats.global_step);
    fedl_model_set_sample_offset(t->model, first);
    st = fedl_model_forward(t->model, t->x, (int)m, 1, &logits, err);
    if (st == FEDL_OK && regression) {
        /* the mean over the step's n samples and k targets, as PyTorch's MSELoss */
        st = fedl_loss_mse(logits, t->targets, m * k, 1.0f / ((float)n * (float)k), &loss,
                           t->dlogits, err);
        loss /= (double)k; /* per sample: the mean over its targets */
    } else if (st == FEDL_OK) {
        st = fedl_loss_softmax_cross_entropy(logits, t->labels, (int)m, t->classes, 1.0f / (float)n,
                                             &loss, t->dlogits, err);
        if (st == FEDL_OK)
            t->stats.correct += (uint64_t)fedl_count_correct(logits, t->labels, (int)m, t->classes);
    }
    if (st != FEDL_OK)
        return st;
    *loss_sum += loss;
    return fedl_model_backward(t->model, t->dlogits, NULL, err);
}

void fedl_trainer_request_budget(fedl_trainer *t, size_t bytes)
{
    atomic_store(&t->requested_budget, (unsigned long long)bytes);
}

/* A budget asked for since the last step: re-plan, and change the
 * micro-batch if the plan says so. */
static fedl_status apply_requested_budget(fedl_trainer *t, fedl_error *err)
{
    unsigned long long bytes = atomic_exchange(&t->requested_budget, NO_REQUEST);
    fedl_plan plan;
    fedl_status st;
    if (bytes == NO_REQUEST)
        return FEDL_OK;
    st = fedl_plan_training(t->model, t->data, &t->config, (size_t)bytes, &plan, err);
    if (st != FEDL_OK)
        return st;
    if (!plan.fits)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "trainer: new memory budget: %s", plan.reason);
    if (plan.micro_batch != t->micro)
        fedl_log(FEDL_LOG_INFO, "trainer: new memory budget %llu bytes: micro-batch %d -> %d",
                 bytes, t->micro, plan.micro_batch);
    return fedl_trainer_set_micro_batch(t, plan.micro_batch, err);
}

/* FedProx: grads += mu (w - ref). */
static void add_proximal_term(fedl_trainer *t)
{
    const float mu = t->config.proximal_mu, *ref = t->config.proximal_ref;
    const float *w = fedl_model_params(t->model);
    float *g = fedl_model_grads(t->model);
    size_t n = fedl_model_param_count(t->model);
    if (!(mu > 0.0f) || ref == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        g[i] += mu * (w[i] - ref[i]);
}

fedl_status fedl_trainer_step(fedl_trainer *t, int *epoch_done, fedl_error *err)
{
    double loss_sum = 0.0;
    fedl_status st = fedl_trainer_reacquire(t, err);
    size_t n, left, micro;
    float lr;

    *epoch_done = 0;
    if (st == FEDL_OK)
        st = apply_requested_budget(t, err);
    if (st != FEDL_OK)
        return st;
    micro = (size_t)t->micro;
    if (t->batcher.position == 0) { /* a new epoch: its running figures restart */
        t->stats.loss_sum = 0.0;
        t->stats.correct = 0;
        t->stats.epoch_seen = 0;
    }
    left = t->data->count - t->batcher.position;
    n = left < (size_t)t->config.batch ? left : (size_t)t->config.batch;
    if (n == 0)
        return fedl_error_set(err, FEDL_ERR_STATE, "trainer: the epoch has no samples");
    fedl_model_zero_grads(t->model);
    for (size_t first = 0; first < n && st == FEDL_OK; first += micro)
        st = micro_step(t, first, n - first < micro ? n - first : micro, n, &loss_sum, err);
    if (st != FEDL_OK)
        return st;
    add_proximal_term(t);
    lr = fedl_lr_at(&t->config.lr, t->stats.global_step);
    fedl_optim_step(t->optim, fedl_model_params(t->model), fedl_model_grads(t->model), lr);

    t->stats.lr = lr;
    t->stats.global_step++;
    t->stats.samples_seen += n;
    t->stats.epoch_seen += n;
    t->stats.loss_sum += loss_sum;
    t->stats.epoch = t->batcher.epoch;
    t->stats.position = t->batcher.position;
    if (t->batcher.position >= t->data->count) {
        *epoch_done = 1;
        fedl_batcher_seek(&t->batcher, t->batcher.epoch + 1, 0);
    }
    return FEDL_OK;
}

int fedl_trainer_micro_batch(const fedl_trainer *t)
{
    return t->released ? t->released_micro : t->micro; /* released: the one taken back */
}

const fedl_arena *fedl_trainer_arena(const fedl_trainer *t)
{
    return &t->arena;
}

fedl_status fedl_trainer_set_micro_batch(fedl_trainer *t, int micro, fedl_error *err)
{
    int wanted = micro > 0 && micro < t->config.batch ? micro : t->config.batch;
    if (micro <= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "trainer: micro-batch %d", micro);
    if (t->released) { /* taken at the new size when the buffers come back */
        t->released_micro = wanted;
        return FEDL_OK;
    }
    if (wanted == t->micro)
        return FEDL_OK;
    return replan_arena(t, wanted, err);
}

size_t fedl_trainer_release(fedl_trainer *t)
{
    fedl_session_layout l;
    unsigned char *old_base = t->arena.base;
    size_t before = t->arena.capacity;
    if (t->released)
        return 0;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, t->micro, &l);
    fedl_model_bind_workspace(t->model, 0, NULL, 0, NULL);
    fedl_arena_truncate(&t->arena, l.fixed);
    /* A shrink the allocator refuses keeps the block: nothing is lost but
     * the memory. */
    if (fedl_arena_resize(&t->arena, l.fixed, NULL) == FEDL_OK && t->arena.base != old_base)
        follow_fixed_part(t);
    t->released = 1;
    t->released_micro = t->micro;
    t->x = NULL;
    t->labels = NULL;
    t->indices = NULL;
    t->dlogits = NULL;
    t->targets = NULL;
    fedl_log(FEDL_LOG_INFO, "trainer: released %zu bytes (micro-batch %d)",
             before - t->arena.capacity, t->released_micro);
    return before - t->arena.capacity;
}

int fedl_trainer_is_released(const fedl_trainer *t)
{
    return t->released;
}

fedl_status fedl_trainer_reacquire(fedl_trainer *t, fedl_error *err)
{
    fedl_session_layout l;
    unsigned char *old_base = t->arena.base;
    fedl_status st;
    if (!t->released)
        return FEDL_OK;
    fedl_session_layout_of(t->model, t->data, &t->config.optim, t->released_micro, &l);
    st = fedl_arena_resize(&t->arena, l.total, err);
    if (t->arena.base != old_base)
        follow_fixed_part(t);
    if (st != FEDL_OK)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "trainer: cannot take back %zu bytes for micro-batch %d; still "
                              "released",
                              l.total, t->released_micro);
    t->released = 0;
    return carve_micro(t, t->released_micro, err);
}

fedl_trainer_follow *fedl_trainer_follow_of(fedl_trainer *t)
{
    return &t->follow;
}

fedl_train_stats fedl_trainer_stats(const fedl_trainer *t)
{
    return t->stats;
}

fedl_optim *fedl_trainer_optim(fedl_trainer *t)
{
    return t->optim;
}

/* ------------------------------------------------------------ checkpoints */

const char *fedl_trainer_config_text(const fedl_trainer *t)
{
    return t->config_text;
}

void fedl_trainer_state(const fedl_trainer *t, const fedl_meta_entry *meta, int meta_count,
                        fedl_train_state *state)
{
    size_t optim_count = 0;
    memset(state, 0, sizeof *state);
    state->global_step = t->stats.global_step;
    state->samples_seen = t->stats.samples_seen;
    state->micro_batch = (uint32_t)t->micro;
    state->effective_batch = (uint32_t)t->config.batch;
    state->epoch_loss_sum = t->stats.loss_sum;
    state->epoch_correct = t->stats.correct;
    state->epoch_seen = t->stats.epoch_seen;
    /* The batcher is where the next step reads from: after an epoch's last
     * step it already points at (epoch + 1, 0). */
    state->epoch = t->batcher.epoch;
    state->position = t->batcher.position;
    state->shuffle_seed = t->config.seed;
    state->shuffle = (uint32_t)t->config.shuffle;
    state->epoch_samples = t->data->count;
    state->model_seed = fedl_model_seed(t->model);
    state->dropout_step = t->stats.global_step;
    state->optim = t->config.optim;
    state->optim_steps = fedl_optim_step_count(t->optim);
    state->optim_state = fedl_optim_state(t->optim, &optim_count);
    state->optim_state_count = optim_count;
    state->lr = t->config.lr;
    state->last_lr = t->stats.lr;
    state->config_text = t->config_text;
    memcpy(state->config_sha256, t->config_sha256, sizeof state->config_sha256);
    state->meta = meta;
    state->meta_count = meta_count;
}

/* The value of key in "key=value\n" text, as a pointer and length. */
static int config_value(const char *text, const char *key, size_t key_len, const char **value,
                        size_t *value_len)
{
    const char *line = text;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > key_len && memcmp(line, key, key_len) == 0 && line[key_len] == '=') {
            *value = line + key_len + 1;
            *value_len = len - key_len - 1;
            return 1;
        }
        line += len + (end ? 1 : 0);
    }
    return 0;
}

/* Name every key whose value differs between the checkpoint's configuration
 * and ours, "key: checkpoint A, now B", into out. */
static void describe_config_difference(const char *saved, const char *current, char *out,
                                       size_t size)
{
    size_t used = 0;
    const char *line = current;
    out[0] = '\0';
    while (*line != '\0' && used + 1 < size) {
        const char *end = strchr(line, '\n'), *eq = strchr(line, '='), *old_value;
        size_t len = end ? (size_t)(end - line) : strlen(line), old_len;
        if (eq != NULL && eq < line + len) {
            size_t key_len = (size_t)(eq - line);
            const char *value = eq + 1;
            size_t value_len = len - key_len - 1;
            int n = 0;
            if (!config_value(saved, line, key_len, &old_value, &old_len))
                n = snprintf(out + used, size - used, "%s%.*s: not in the checkpoint",
                             used ? "; " : "", (int)key_len, line);
            else if (old_len != value_len || memcmp(old_value, value, value_len) != 0)
                n = snprintf(out + used, size - used, "%s%.*s: checkpoint %.*s, now %.*s",
                             used ? "; " : "", (int)key_len, line,
                             (int)(old_len > 80 ? 80 : old_len), old_value,
                             (int)(value_len > 80 ? 80 : value_len), value);
            if (n > 0)
                used = used + (size_t)n < size ? used + (size_t)n : size - 1;
        }
        line += len + (end ? 1 : 0);
    }
    if (out[0] == '\0')
        snprintf(out, size, "the configuration texts differ in their order or keys");
}

fedl_status fedl_trainer_restore(fedl_trainer *t, const fedl_checkpoint *ckpt, fedl_error *err)
{
    const fedl_train_state *s = &ckpt->state;
    size_t count = fedl_model_param_count(t->model), optim_count = 0;
    float *optim_state = fedl_optim_state(t->optim, &optim_count);
    if (strcmp(s->config_text, t->config_text) != 0) {
        char difference[sizeof err->message];
        describe_config_difference(s->config_text, t->config_text, difference, sizeof difference);
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "the checkpoint was made with another configuration: %s", difference);
    }
    /* The same configuration text implies these; check them anyway so that
     * a hand-made checkpoint cannot write out of bounds. */
    if (fedl_model_param_count(ckpt->model) != count || s->optim_state_count != optim_count ||
        s->epoch_samples != t->data->count || s->position > t->data->count)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "the checkpoint's sizes do not match this run (%zu parameters, "
                              "%zu optimiser values, %llu samples per epoch)",
                              fedl_model_param_count(ckpt->model), s->optim_state_count,
                              (unsigned long long)s->epoch_samples);
    memcpy(fedl_model_params(t->model), fedl_model_params(ckpt->model), count * sizeof(float));
    if (optim_count > 0)
        memcpy(optim_state, s->optim_state, optim_count * sizeof(float));
    fedl_optim_set_step_count(t->optim, s->optim_steps);
    fedl_model_set_seed(t->model, s->model_seed);
    fedl_batcher_seek(&t->batcher, s->epoch, (size_t)s->position);
    t->stats.global_step = s->global_step;
    t->stats.samples_seen = s->samples_seen;
    t->stats.loss_sum = s->epoch_loss_sum;
    t->stats.correct = s->epoch_correct;
    t->stats.epoch_seen = s->epoch_seen;
    t->stats.lr = s->last_lr;
    t->stats.epoch = s->position > 0 || s->epoch == 0 ? s->epoch : s->epoch - 1;
    t->stats.position = s->position > 0 || s->epoch == 0 ? (size_t)s->position : t->data->count;
    return FEDL_OK;
}

/* Check that ds can be evaluated by model; the number of outputs. */
static fedl_status check_eval(const fedl_model *model, const fedl_dataset *ds, int batch,
                              int *classes, fedl_error *err)
{
    fedl_shape outs = fedl_model_output_shape(model);
    *classes = (int)(outs.c * outs.h * outs.w);
    if (batch <= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "evaluate: batch %d", batch);
    if (!shapes_equal(fedl_model_input_shape(model), ds->shape))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: model input does not match the data shape");
    if (ds->classes > *classes)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: model has %d outputs but the data has %d classes",
                              *classes, ds->classes);
    if (ds->targets > 0 && ds->targets != *classes)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: model has %d outputs but the data has %d targets",
                              *classes, ds->targets);
    return FEDL_OK;
}

/* Squared and absolute errors of n regression samples of k targets: the
 * mean over each sample's targets, summed over the samples. */
static void add_errors(const float *pred, const float *target, size_t n, size_t k,
                       fedl_eval_result *result)
{
    for (size_t i = 0; i < n; i++) {
        double sq = 0.0, abs_sum = 0.0;
        for (size_t j = 0; j < k; j++) {
            double d = (double)pred[i * k + j] - (double)target[i * k + j];
            sq += d * d;
            abs_sum += d < 0 ? -d : d;
        }
        result->loss_sum += sq / (double)k;
        result->abs_error_sum += abs_sum / (double)k;
    }
}

/* Evaluate ds in batches of `batch` through the given buffers: x (batch,
 * C, H, W), labels and indices (batch), and for regression data targets
 * (batch, classes). The model's reservation must hold batch samples. */
static fedl_status evaluate_batches(fedl_model *model, const fedl_dataset *ds, int batch,
                                    int classes, float *x, int32_t *labels, float *targets,
                                    uint32_t *indices, fedl_eval_result *result,
                                    uint64_t *confusion, fedl_error *err)
{
    int regression = ds->targets > 0;
    fedl_status st = FEDL_OK;
    if (confusion != NULL)
        memset(confusion, 0, (size_t)classes * (size_t)classes * sizeof *confusion);
    fedl_dataset_seek(ds, 0, 0); /* a pass from the start */
    for (size_t start = 0; st == FEDL_OK && start < ds->count; start += (size_t)batch) {
        size_t n = ds->count - start < (size_t)batch ? ds->count - start : (size_t)batch;
        size_t next = start + n, next_n;
        const float *logits;
        double loss = 0.0;
        for (size_t i = 0; i < n; i++)
            indices[i] = (uint32_t)(start + i);
        st = regression ? fedl_dataset_read_targets(ds, indices, n, x, targets, err)
                        : fedl_dataset_read(ds, indices, n, x, labels, err);
        /* while this chunk is evaluated, a source may read the next */
        next_n = ds->count - next < (size_t)batch ? ds->count - next : (size_t)batch;
        for (size_t i = 0; i < next_n; i++)
            indices[i] = (uint32_t)(next + i);
        fedl_dataset_prefetch(ds, indices, next_n);
        if (st == FEDL_OK)
            st = fedl_model_forward(model, x, (int)n, 0, &logits, err);
        if (st == FEDL_OK && regression) {
            add_errors(logits, targets, n, (size_t)classes, result);
            result->samples += n;
            continue;
        }
        if (st == FEDL_OK)
            st = fedl_loss_softmax_cross_entropy(logits, labels, (int)n, classes, 1.0f, &loss, NULL,
                                                 err);
        if (st != FEDL_OK)
            break;
        result->loss_sum += loss;
        for (size_t i = 0; i < n; i++) {
            const float *z = logits + i * (size_t)classes;
            int best = 0;
            for (int k = 1; k < classes; k++)
                best = z[k] > z[best] ? k : best;
            result->correct += best == labels[i];
            if (confusion != NULL)
                confusion[(size_t)labels[i] * (size_t)classes + (size_t)best]++;
        }
        result->samples += n;
    }
    if (result->samples > 0 && regression) {
        result->rmse = sqrt(result->loss_sum / (double)result->samples);
        result->mae = result->abs_error_sum / (double)result->samples;
    } else if (result->samples > 0) {
        result->accuracy = (double)result->correct / (double)result->samples;
    }
    return st;
}

fedl_status fedl_trainer_evaluate(fedl_trainer *t, const fedl_dataset *ds, fedl_eval_result *result,
                                  uint64_t *confusion, fedl_error *err)
{
    int classes;
    fedl_status st = fedl_trainer_reacquire(t, err);
    memset(result, 0, sizeof *result);
    if (st == FEDL_OK)
        st = check_eval(t->model, ds, t->micro, &classes, err);
    if (st != FEDL_OK)
        return st;
    if (ds->targets > 0 && ds->targets != t->data->targets)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: %d targets, the training data has %d", ds->targets,
                              t->data->targets);
    return evaluate_batches(t->model, ds, t->micro, classes, t->x, t->labels, t->targets,
                            t->indices, result, confusion, err);
}

fedl_status fedl_evaluate(fedl_model *model, const fedl_dataset *ds, int batch,
                          fedl_allocator *alloc, fedl_eval_result *result, uint64_t *confusion,
                          fedl_error *err)
{
    int classes;
    float *x;
    int32_t *labels;
    uint32_t *indices;
    float *targets = NULL;
    size_t buffer_batch, target_floats;
    fedl_status st = check_eval(model, ds, batch, &classes, err);
    memset(result, 0, sizeof *result);
    if (st != FEDL_OK)
        return st;
    /* Reuse a reservation a trainer made (no reallocation between epochs). */
    if (fedl_model_reserved_batch(model) > 0) {
        if (batch > fedl_model_reserved_batch(model))
            batch = fedl_model_reserved_batch(model);
    } else {
        st = fedl_model_reserve(model, batch, err);
        if (st != FEDL_OK)
            return st;
    }
    buffer_batch = (size_t)batch;
    x = fedl_mem_alloc_aligned(alloc, buffer_batch * ds->sample_bytes * sizeof(float), 64);
    labels = fedl_mem_alloc(alloc, buffer_batch * sizeof *labels);
    indices = fedl_mem_alloc(alloc, buffer_batch * sizeof *indices);
    target_floats = buffer_batch * (size_t)ds->targets;
    if (target_floats > 0)
        targets = fedl_mem_alloc(alloc, target_floats * sizeof *targets);
    if (x == NULL || labels == NULL || indices == NULL || (target_floats > 0 && targets == NULL))
        st = fedl_error_set(err, FEDL_ERR_NOMEM, "evaluate: cannot allocate batch buffers");
    else
        st = evaluate_batches(model, ds, batch, classes, x, labels, targets, indices, result,
                              confusion, err);
    fedl_mem_free(alloc, targets, target_floats * sizeof *targets);
    fedl_mem_free_aligned(alloc, x);
    fedl_mem_free(alloc, labels, buffer_batch * sizeof *labels);
    fedl_mem_free(alloc, indices, buffer_batch * sizeof *indices);
    return st;
}
