/*
 * layer_basic.c - layers without parameters that work element by element:
 * flatten, relu, leaky_relu, sigmoid, tanh and (inverted) dropout.
 */
#include <math.h>
#include <string.h>

#include "nn/layer.h"

static fedl_status same_shape_setup(fedl_layer *l, fedl_error *err)
{
    (void)err;
    l->out = l->in;
    l->out_size = l->in_size;
    l->param_count = 0;
    l->aux_size = 0;
    return FEDL_OK;
}

static void elementwise_flops(const fedl_layer *l, double *forward, double *backward)
{
    *forward = (double)l->in_size;
    *backward = (double)l->in_size;
}

/* ------------------------------------------------------------------ flatten */

static fedl_status flatten_setup(fedl_layer *l, fedl_error *err)
{
    (void)err;
    l->out = (fedl_shape){(int32_t)l->in_size, 1, 1};
    l->out_size = l->in_size;
    l->param_count = 0;
    l->aux_size = 0;
    return FEDL_OK;
}

static void copy_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                         const float *x, float *y, void *aux)
{
    (void)w;
    (void)aux;
    memcpy(y, x, (size_t)ctx->batch * l->in_size * sizeof(float));
}

static void copy_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                          const float *x, const float *y, const void *aux, const float *dy,
                          float *dx, float *dw)
{
    (void)w;
    (void)x;
    (void)y;
    (void)aux;
    (void)dw;
    if (dx != NULL)
        memcpy(dx, dy, (size_t)ctx->batch * l->in_size * sizeof(float));
}

static void no_flops(const fedl_layer *l, double *forward, double *backward)
{
    (void)l;
    *forward = 0.0;
    *backward = 0.0;
}

const fedl_layer_ops fedl_layer_flatten_ops = {
    FEDL_LAYER_FLATTEN, "flatten",     flatten_setup, NULL, NULL,
    copy_forward,       copy_backward, no_flops};

/* --------------------------------------------------------------------- relu */

static void relu_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                         const float *x, float *y, void *aux)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)aux;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx = y > 0 ? dy : 0. The loads are unconditional and the pointers
 * restrict-qualified so the compiler vectorises it into selects. */
static void relu_mask(size_t n, const float *restrict y, const float *restrict dy,
                      float *restrict dx)
{
    for (size_t i = 0; i < n; i++) {
        float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

static void relu_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                          const float *x, const float *y, const void *aux, const float *dy,
                          float *dx, float *dw)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)x;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    relu_mask(n, y, dy, dx);
}

const fedl_layer_ops fedl_layer_relu_ops = {
    FEDL_LAYER_RELU, "relu",        same_shape_setup, NULL, NULL,
    relu_forward,    relu_backward, elementwise_flops};

/* --------------------------------------------------------------- leaky relu */

static fedl_status leaky_relu_setup(fedl_layer *l, fedl_error *err)
{
    if (!(l->slope >= 0.0f && l->slope < 1.0f))
        return fedl_error_set(err, FEDL_ERR_SPEC, "leaky_relu(%g): slope must be in [0, 1)",
                              (double)l->slope);
    return same_shape_setup(l, err);
}

static void leaky_relu_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                               const float *x, float *y, void *aux)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    float slope = l->slope;
    (void)w;
    (void)aux;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

static void leaky_relu_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                                const float *x, const float *y, const void *aux, const float *dy,
                                float *dx, float *dw)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    float slope = l->slope;
    (void)w;
    (void)y;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

const fedl_layer_ops fedl_layer_leaky_relu_ops = {
    FEDL_LAYER_LEAKY_RELU, "leaky_relu",        leaky_relu_setup, NULL, NULL,
    leaky_relu_forward,    leaky_relu_backward, elementwise_flops};

/* ------------------------------------------------------------------ sigmoid */

static void sigmoid_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, float *y, void *aux)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)aux;
    for (size_t i = 0; i < n; i++) {
        /* split by sign so exp never overflows */
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            y[i] = e / (1.0f + e);
        }
    }
}

static void sigmoid_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                             const float *x, const float *y, const void *aux, const float *dy,
                             float *dx, float *dw)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)x;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

const fedl_layer_ops fedl_layer_sigmoid_ops = {
    FEDL_LAYER_SIGMOID, "sigmoid",        same_shape_setup, NULL, NULL,
    sigmoid_forward,    sigmoid_backward, elementwise_flops};

/* --------------------------------------------------------------------- tanh */

static void tanh_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                         const float *x, float *y, void *aux)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)aux;
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

static void tanh_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                          const float *x, const float *y, const void *aux, const float *dy,
                          float *dx, float *dw)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    (void)w;
    (void)x;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

const fedl_layer_ops fedl_layer_tanh_ops = {
    FEDL_LAYER_TANH, "tanh",        same_shape_setup, NULL, NULL,
    tanh_forward,    tanh_backward, elementwise_flops};

/* ------------------------------------------------------------------ dropout */

/* Masks come from Philox keyed by the model seed (mixed so they never share a
 * stream with weight initialisation) at stream (step, layer): the same step
 * of the same run always drops the same units. */
#define DROPOUT_SEED_MIX 0xD809D8C5A1E7F00DULL

static fedl_status dropout_setup(fedl_layer *l, fedl_error *err)
{
    if (!(l->rate >= 0.0f && l->rate < 1.0f))
        return fedl_error_set(err, FEDL_ERR_SPEC, "dropout(%g): rate must be in [0, 1)",
                              (double)l->rate);
    same_shape_setup(l, err);
    l->aux_size = l->in_size; /* the mask, one float per element */
    return FEDL_OK;
}

static void dropout_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, float *y, void *aux)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    float *mask = aux; /* (batch, in_size): 0 or 1 / (1 - rate) */
    float keep_scale = 1.0f / (1.0f - l->rate);
    fedl_rng rng;
    (void)w;
    if (!ctx->training || l->rate == 0.0f) {
        memcpy(y, x, n * sizeof(float));
        if (ctx->training) {
            for (size_t i = 0; i < n; i++)
                mask[i] = 1.0f;
        }
        return;
    }
    fedl_rng_init(&rng, ctx->seed ^ DROPOUT_SEED_MIX, (ctx->step << 10) | (uint64_t)l->index);
    /* one uniform per element of the whole step's batch: a micro-batch
     * starts where its first sample's masks start */
    fedl_rng_seek(&rng, ctx->sample_offset * l->in_size);
    for (size_t i = 0; i < n; i++) {
        mask[i] = fedl_rng_uniform(&rng) < l->rate ? 0.0f : keep_scale;
        y[i] = x[i] * mask[i];
    }
}

static void dropout_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                             const float *x, const float *y, const void *aux, const float *dy,
                             float *dx, float *dw)
{
    size_t n = (size_t)ctx->batch * l->in_size;
    const float *mask = aux; /* (batch, in_size) */
    (void)w;
    (void)x;
    (void)y;
    (void)dw;
    if (dx == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * mask[i];
}

const fedl_layer_ops fedl_layer_dropout_ops = {
    FEDL_LAYER_DROPOUT, "dropout",        dropout_setup,    NULL, NULL,
    dropout_forward,    dropout_backward, elementwise_flops};
