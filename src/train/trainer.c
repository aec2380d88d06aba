/*
 * trainer.c - the training loop: batch -> forward -> loss -> backward ->
 * optimiser step, with every buffer taken once at creation; and evaluation.
 */
#include <string.h>

#include "fedl/train.h"

struct fedl_trainer {
    fedl_allocator *alloc;
    fedl_model *model;
    const fedl_dataset *data;
    fedl_train_config config;
    fedl_optim *optim;
    fedl_batcher batcher;
    int classes;
    float *x;        /* (batch, C, H, W) */
    int32_t *labels; /* (batch) */
    float *dlogits;  /* (batch, classes) */
    fedl_train_stats stats;
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

void fedl_trainer_destroy(fedl_trainer *t)
{
    if (t == NULL)
        return;
    size_t batch = (size_t)t->config.batch;
    fedl_optim_destroy(t->optim);
    fedl_batcher_free(&t->batcher);
    fedl_mem_free_aligned(t->alloc, t->x);
    fedl_mem_free(t->alloc, t->labels, batch * sizeof *t->labels);
    fedl_mem_free_aligned(t->alloc, t->dlogits);
    fedl_mem_free(t->alloc, t, sizeof *t);
}

static int shapes_equal(fedl_shape a, fedl_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

fedl_status fedl_trainer_create(fedl_model *model, const fedl_dataset *train,
                                const fedl_train_config *config, fedl_allocator *alloc,
                                fedl_trainer **out, fedl_error *err)
{
    fedl_trainer *t;
    fedl_status st;
    fedl_shape in = fedl_model_input_shape(model), outs = fedl_model_output_shape(model);
    size_t batch = (size_t)config->batch;
    *out = NULL;
    if (config->batch <= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "trainer: batch %d must be positive",
                              config->batch);
    if (!shapes_equal(in, train->shape))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "trainer: model input (%d,%d,%d) does not match the data "
                              "(%d,%d,%d)",
                              (int)in.c, (int)in.h, (int)in.w, (int)train->shape.c,
                              (int)train->shape.h, (int)train->shape.w);
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
    t->alloc = alloc;
    t->model = model;
    t->data = train;
    t->config = *config;
    t->classes = (int)(outs.c * outs.h * outs.w);
    t->x = fedl_mem_alloc_aligned(alloc, batch * train->sample_bytes * sizeof(float), 64);
    t->labels = fedl_mem_alloc(alloc, batch * sizeof *t->labels);
    t->dlogits = fedl_mem_alloc_aligned(alloc, batch * (size_t)t->classes * sizeof(float), 64);
    if (t->x == NULL || t->labels == NULL || t->dlogits == NULL) {
        fedl_trainer_destroy(t);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "trainer: cannot allocate batch buffers");
    }
    st = fedl_optim_create(&config->optim, fedl_model_param_count(model), alloc, &t->optim, err);
    if (st == FEDL_OK)
        st = fedl_batcher_init(&t->batcher, train, config->seed, config->shuffle, alloc, err);
    if (st == FEDL_OK)
        st = fedl_model_reserve(model, config->batch, err);
    if (st != FEDL_OK) {
        fedl_trainer_destroy(t);
        return st;
    }
    t->stats.epoch_samples = train->count;
    fedl_log(FEDL_LOG_INFO,
             "trainer: %zu samples, batch %d, %s, %zu parameters, %zu bytes of activations",
             train->count, config->batch, fedl_optim_kind_name(config->optim.kind),
             fedl_model_param_count(model), fedl_model_reserved_bytes(model));
    *out = t;
    return FEDL_OK;
}

fedl_status fedl_trainer_step(fedl_trainer *t, int *epoch_done, fedl_error *err)
{
    const float *logits;
    double loss_sum = 0.0;
    fedl_status st;
    size_t n;
    float lr;

    *epoch_done = 0;
    if (t->batcher.position == 0) { /* a new epoch: its running figures restart */
        t->stats.loss_sum = 0.0;
        t->stats.correct = 0;
        t->stats.epoch_seen = 0;
    }
    n = fedl_batcher_next(&t->batcher, (size_t)t->config.batch, t->x, t->labels);
    if (n == 0)
        return fedl_error_set(err, FEDL_ERR_STATE, "trainer: the epoch has no samples");
    fedl_model_set_step(t->model, t->stats.global_step);
    st = fedl_model_forward(t->model, t->x, (int)n, 1, &logits, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_loss_softmax_cross_entropy(logits, t->labels, (int)n, t->classes, 1.0f / (float)n,
                                         &loss_sum, t->dlogits, err);
    if (st != FEDL_OK)
        return st;
    t->stats.correct += (uint64_t)fedl_count_correct(logits, t->labels, (int)n, t->classes);
    fedl_model_zero_grads(t->model);
    st = fedl_model_backward(t->model, t->dlogits, NULL, err);
    if (st != FEDL_OK)
        return st;
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

fedl_train_stats fedl_trainer_stats(const fedl_trainer *t)
{
    return t->stats;
}

fedl_optim *fedl_trainer_optim(fedl_trainer *t)
{
    return t->optim;
}

fedl_status fedl_evaluate(fedl_model *model, const fedl_dataset *ds, int batch,
                          fedl_allocator *alloc, fedl_eval_result *result, uint64_t *confusion,
                          fedl_error *err)
{
    fedl_shape outs = fedl_model_output_shape(model);
    int classes = (int)(outs.c * outs.h * outs.w);
    float *x;
    int32_t *labels;
    uint32_t *indices;
    size_t buffer_batch;
    fedl_status st = FEDL_OK;
    memset(result, 0, sizeof *result);
    if (batch <= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "evaluate: batch %d", batch);
    if (!shapes_equal(fedl_model_input_shape(model), ds->shape))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: model input does not match the data shape");
    if (ds->classes > classes)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "evaluate: model has %d outputs but the data has %d classes", classes,
                              ds->classes);
    buffer_batch = (size_t)batch;
    x = fedl_mem_alloc_aligned(alloc, buffer_batch * ds->sample_bytes * sizeof(float), 64);
    labels = fedl_mem_alloc(alloc, buffer_batch * sizeof *labels);
    indices = fedl_mem_alloc(alloc, buffer_batch * sizeof *indices);
    if (x == NULL || labels == NULL || indices == NULL) {
        st = fedl_error_set(err, FEDL_ERR_NOMEM, "evaluate: cannot allocate batch buffers");
        goto done;
    }
    if (confusion != NULL)
        memset(confusion, 0, (size_t)classes * (size_t)classes * sizeof *confusion);
    /* Reuse a reservation a trainer made (no reallocation between epochs). */
    if (fedl_model_reserved_batch(model) > 0) {
        if (batch > fedl_model_reserved_batch(model))
            batch = fedl_model_reserved_batch(model);
    } else {
        st = fedl_model_reserve(model, batch, err);
    }
    for (size_t start = 0; st == FEDL_OK && start < ds->count; start += (size_t)batch) {
        size_t n = ds->count - start < (size_t)batch ? ds->count - start : (size_t)batch;
        const float *logits;
        double loss = 0.0;
        for (size_t i = 0; i < n; i++)
            indices[i] = (uint32_t)(start + i);
        fedl_dataset_gather(ds, indices, n, x, labels);
        st = fedl_model_forward(model, x, (int)n, 0, &logits, err);
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
    if (result->samples > 0)
        result->accuracy = (double)result->correct / (double)result->samples;
done:
    fedl_mem_free_aligned(alloc, x);
    fedl_mem_free(alloc, labels, buffer_batch * sizeof *labels);
    fedl_mem_free(alloc, indices, buffer_batch * sizeof *indices);
    return st;
}
