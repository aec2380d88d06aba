/*
 * layer.h - the layer table (internal).
 *
 * Each layer kind is one file (layer_dense.c, layer_conv.c, ...) exporting a
 * const fedl_layer_ops. The model (model.c) owns every buffer; a layer only
 * computes. Conventions for every kind:
 *
 *   x   (batch, in.c, in.h, in.w)     input activations
 *   y   (batch, out.c, out.h, out.w)  output activations
 *   w   (param_count)                 this layer's slice of the flat params,
 *                                     PyTorch order: weight then bias
 *   dw  (param_count)                 gradient slice; backward ADDS to it when
 *                                     ctx->accumulate, else OVERWRITES it (the
 *                                     first micro-batch after zeroing: saves a
 *                                     memset and a read of every gradient)
 *   dx  same shape as x, or NULL when the input gradient is not wanted
 *                                     (first layer); backward OVERWRITES it
 *   aux (batch, aux_size) 32-bit words kept from forward for backward
 *       (max-pool argmax as int32, dropout masks as float)
 *   ctx->workspace (workspace_floats(batch)) scratch shared by all layers
 *
 * setup() validates hyper-parameters and the input shape (both already in
 * the struct), then fills out, param_count and aux_size. It must not
 * allocate. forward()/backward() never fail and never allocate.
 */
#ifndef FEDL_NN_LAYER_H
#define FEDL_NN_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/nn.h"

typedef struct fedl_layer fedl_layer;

typedef struct fedl_layer_ctx {
    int batch;
    int training;           /* dropout active, aux kept */
    uint64_t seed;          /* model seed (dropout masks) */
    uint64_t step;          /* training step (dropout masks) */
    uint64_t sample_offset; /* first sample of this forward within the step's batch */
    float *workspace;       /* shared scratch */
    size_t workspace_floats;
    int accumulate; /* 1: backward adds to dw; 0: backward overwrites dw */
} fedl_layer_ctx;

typedef struct fedl_layer_ops {
    fedl_layer_kind kind;
    const char *name;
    fedl_status (*setup)(fedl_layer *l, fedl_error *err);
    size_t (*workspace_floats)(const fedl_layer *l, int batch); /* may be NULL: 0 */
    void (*init)(const fedl_layer *l, float *w, fedl_rng *rng,
                 fedl_init_kind kind); /* NULL: no params */
    void (*forward)(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w, const float *x,
                    float *y, void *aux);
    void (*backward)(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w, const float *x,
                     const float *y, const void *aux, const float *dy, float *dx, float *dw);
    /* flops per sample of forward and backward (backward with dx) */
    void (*flops)(const fedl_layer *l, double *forward, double *backward);
} fedl_layer_ops;

struct fedl_layer {
    const fedl_layer_ops *ops;
    int index; /* position in the model */

    /* hyper-parameters from the spec (unused ones are 0) */
    int32_t units;  /* dense: out features; conv: out channels */
    int32_t kernel; /* conv, pool: kernel size (square for 2-D) */
    int32_t stride; /* conv, pool */
    int32_t pad;    /* conv, pool: zero padding on each side */
    int bias;       /* dense, conv: 1 = has bias */
    float slope;    /* leaky_relu negative slope */
    float rate;     /* dropout probability of zeroing */
    fedl_init_kind init;
    int followed_by_relu; /* set by the model: picks He init by default */

    /* filled by setup */
    fedl_shape in, out; /* per sample */
    size_t in_size;     /* floats per sample: in.c * in.h * in.w */
    size_t out_size;    /* floats per sample */
    size_t param_count; /* floats */
    size_t aux_size;    /* 32-bit words per sample */

    size_t param_offset; /* set by the model */
};

/* Fill w[0..n) with U(-bound, bound) from rng. */
void fedl_init_uniform(float *w, size_t n, float bound, fedl_rng *rng);
/* He / Glorot uniform bound for the given fans. */
float fedl_init_bound(fedl_init_kind kind, size_t fan_in, size_t fan_out);

extern const fedl_layer_ops fedl_layer_dense_ops;
extern const fedl_layer_ops fedl_layer_conv2d_ops;
extern const fedl_layer_ops fedl_layer_conv1d_ops;
extern const fedl_layer_ops fedl_layer_maxpool2d_ops;
extern const fedl_layer_ops fedl_layer_avgpool2d_ops;
extern const fedl_layer_ops fedl_layer_global_avgpool_ops;
extern const fedl_layer_ops fedl_layer_flatten_ops;
extern const fedl_layer_ops fedl_layer_relu_ops;
extern const fedl_layer_ops fedl_layer_leaky_relu_ops;
extern const fedl_layer_ops fedl_layer_sigmoid_ops;
extern const fedl_layer_ops fedl_layer_tanh_ops;
extern const fedl_layer_ops fedl_layer_dropout_ops;

#endif
