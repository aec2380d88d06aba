/*
 * layer_dense.c - the fully connected layer, torch.nn.Linear semantics:
 * y = x W^T + b. The input is flattened implicitly (C*H*W features).
 */
#include <string.h>

#include "nn/gemm.h"
#include "nn/layer.h"

static fedl_status dense_setup(fedl_layer *l, fedl_error *err)
{
    if (l->units <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "dense(%d): units must be positive",
                              (int)l->units);
    l->out = (fedl_shape){l->units, 1, 1};
    l->out_size = (size_t)l->units;
    l->param_count = (size_t)l->units * l->in_size + (l->bias ? (size_t)l->units : 0);
    l->aux_size = 0;
    return FEDL_OK;
}

static void dense_init(const fedl_layer *l, float *w, fedl_rng *rng, fedl_init_kind kind)
{
    size_t weights = (size_t)l->units * l->in_size; /* (units, in) */
    if (kind == FEDL_INIT_DEFAULT)
        kind = l->followed_by_relu ? FEDL_INIT_HE_UNIFORM : FEDL_INIT_GLOROT_UNIFORM;
    fedl_init_uniform(w, weights, fedl_init_bound(kind, l->in_size, (size_t)l->units), rng);
    if (l->bias)
        memset(w + weights, 0, (size_t)l->units * sizeof(float));
}

static void dense_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                          const float *x, float *y, void *aux)
{
    int in = (int)l->in_size, out = l->units, batch = ctx->batch;
    const float *bias = w + (size_t)out * in; /* (out) */
    (void)aux;
    if (l->bias) {
        for (int b = 0; b < batch; b++)
            memcpy(y + (size_t)b * out, bias, (size_t)out * sizeof(float));
    }
    /* y (batch, out) += x (batch, in) . W^T (in, out) */
    fedl_sgemm(0, 1, batch, out, in, 1.0f, x, in, w, in, l->bias ? 1.0f : 0.0f, y, out);
}

static void dense_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                           const float *x, const float *y, const void *aux, const float *dy,
                           float *dx, float *dw)
{
    int in = (int)l->in_size, out = l->units, batch = ctx->batch;
    (void)y;
    (void)aux;
    /* dW (out, in) (+)= dy^T (out, batch) . x (batch, in) */
    fedl_sgemm(1, 0, out, in, batch, 1.0f, dy, out, x, in, ctx->accumulate ? 1.0f : 0.0f, dw, in);
    if (l->bias) {
        float *dbias = dw + (size_t)out * in; /* (out) */
        if (!ctx->accumulate)
            memset(dbias, 0, (size_t)out * sizeof(float));
        for (int b = 0; b < batch; b++) {
            const float *row = dy + (size_t)b * out;
            for (int o = 0; o < out; o++)
                dbias[o] += row[o];
        }
    }
    /* dx (batch, in) = dy (batch, out) . W (out, in) */
    if (dx != NULL)
        fedl_sgemm(0, 0, batch, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

static void dense_flops(const fedl_layer *l, double *forward, double *backward)
{
    double macs = (double)l->units * (double)l->in_size;
    *forward = 2.0 * macs + (l->bias ? l->units : 0);
    *backward = 4.0 * macs + (l->bias ? l->units : 0);
}

const fedl_layer_ops fedl_layer_dense_ops = {
    FEDL_LAYER_DENSE, "dense",       dense_setup,    NULL,
    dense_init,       dense_forward, dense_backward, dense_flops};
