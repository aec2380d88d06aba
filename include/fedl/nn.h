/*
 * fedl/nn.h - tensors, models built from a typed spec, losses, optimisers and
 * learning-rate schedules.
 *
 * A model is a chain of layers described by a spec a person can type:
 *
 *     "conv2d(6,5,pad=2) relu maxpool(2) conv2d(16,5) relu maxpool(2)
 *      flatten dense(120) relu dense(84) relu dense(10)"
 *
 * All parameters of a model live in one flat float32 array and all gradients
 * in another of the same length, in layer order and, inside a layer, in
 * PyTorch's order (weight (out, in, k...) then bias (out)). Aggregation,
 * checkpoints and compression are one loop over them.
 *
 * Memory: the model owns its parameters, gradients, activations and
 * workspace, all taken from the allocator given at creation. Activations and
 * workspace are sized once by fedl_model_reserve(max_batch); after that
 * forward and backward allocate nothing. Buffers returned by the model stay
 * owned by it and are valid until the next forward or destroy.
 *
 * Layout: activations are row-major (batch, channels, height, width); a 1-D
 * series is (batch, channels, 1, length).
 */
#ifndef FEDL_NN_H
#define FEDL_NN_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------- tensor */

#define FEDL_TENSOR_MAX_DIMS 4

/* A float32 tensor: a view (data not owned) unless made by fedl_tensor_alloc. */
typedef struct fedl_tensor {
    float *data;
    int ndim;
    int32_t shape[FEDL_TENSOR_MAX_DIMS];
} fedl_tensor;

size_t fedl_tensor_numel(const fedl_tensor *t);
/* Allocate a zeroed tensor of the given shape through alloc. */
fedl_status fedl_tensor_alloc(fedl_tensor *t, fedl_allocator *alloc, int ndim, const int32_t *shape,
                              fedl_error *err);
void fedl_tensor_free(fedl_tensor *t, fedl_allocator *alloc);

/* Per-sample shape of an activation: (channels, height, width). */
typedef struct fedl_shape {
    int32_t c, h, w;
} fedl_shape;

/* -------------------------------------------------------------------- model */

typedef struct fedl_model fedl_model;

typedef enum fedl_layer_kind {
    FEDL_LAYER_DENSE,
    FEDL_LAYER_CONV2D,
    FEDL_LAYER_CONV1D,
    FEDL_LAYER_MAXPOOL2D,
    FEDL_LAYER_AVGPOOL2D,
    FEDL_LAYER_GLOBAL_AVGPOOL,
    FEDL_LAYER_FLATTEN,
    FEDL_LAYER_RELU,
    FEDL_LAYER_LEAKY_RELU,
    FEDL_LAYER_SIGMOID,
    FEDL_LAYER_TANH,
    FEDL_LAYER_DROPOUT,
    FEDL_LAYER_KIND_COUNT
} fedl_layer_kind;

typedef enum fedl_init_kind {
    FEDL_INIT_DEFAULT = 0, /* He uniform before relu-family, Glorot uniform otherwise */
    FEDL_INIT_HE_UNIFORM,
    FEDL_INIT_GLOROT_UNIFORM
} fedl_init_kind;

/* What fedl_model_layer_info reports about layer i. */
typedef struct fedl_layer_info {
    fedl_layer_kind kind;
    const char *name;         /* "conv2d", "relu", ... */
    char text[64];            /* canonical spec text, e.g. "conv2d(6,5,stride=1,pad=2)" */
    fedl_shape in, out;       /* per-sample shapes */
    size_t param_offset;      /* first parameter in the flat array */
    size_t param_count;       /* floats */
    size_t activation_floats; /* per sample: output + what backward keeps */
    double forward_flops;     /* per sample */
    double backward_flops;
} fedl_layer_info;

/* Profile counters of layer i (collected when profiling is on). */
typedef struct fedl_layer_profile {
    uint64_t forward_ns, backward_ns; /* total over calls */
    uint64_t forward_calls, backward_calls;
    double forward_flops, backward_flops; /* total over calls */
} fedl_layer_profile;

/* The spec of a preset ("lenet5", "mlp") or NULL when name is not one. */
const char *fedl_model_preset(const char *name);

/* Parse spec (or a preset name), check shapes against the per-sample input
 * shape, allocate parameters and gradients and initialise the parameters from
 * seed. On a malformed spec the error names the token and its byte position. */
fedl_status fedl_model_create(const char *spec, fedl_shape input, uint64_t seed,
                              fedl_allocator *alloc, fedl_model **out, fedl_error *err);
void fedl_model_destroy(fedl_model *model);

/* As fedl_model_create, with every parameter 0 instead of drawn from the
 * initialiser: for a model whose parameters are about to be loaded (a
 * 10-million-parameter initialisation costs a quarter of a second). */
fedl_status fedl_model_create_zeroed(const char *spec, fedl_shape input, uint64_t seed,
                                     fedl_allocator *alloc, fedl_model **out, fedl_error *err);

/* The parameter count a spec gives for input, without allocating the
 * parameters (a few hundred bytes per layer): readers of model files check
 * a stored count against it before allocating anything large. */
fedl_status fedl_spec_param_count(const char *spec, fedl_shape input, fedl_allocator *alloc,
                                  size_t *count, fedl_error *err);

/* Re-initialise all parameters from seed with each layer's initialiser.
 * Layer i draws from RNG stream i, so layers never shift each other. */
void fedl_model_init_params(fedl_model *model, uint64_t seed, fedl_init_kind kind);

/* Size activations and workspace for batches of up to max_batch samples.
 * May be called again with another size. */
fedl_status fedl_model_reserve(fedl_model *model, int max_batch, fedl_error *err);
/* The max_batch of the current reservation (0 = none). */
int fedl_model_reserved_batch(const fedl_model *model);
/* Bytes held for activations and workspace at the current reservation, as
 * the accounted allocator counts them (alignment headers included); for
 * bound memory, fedl_model_workspace_bytes of its batch. */
size_t fedl_model_reserved_bytes(const fedl_model *model);
/* Bytes a reservation of max_batch would take from the allocator, exactly
 * (for planning; no allocation). */
size_t fedl_model_activation_bytes(const fedl_model *model, int max_batch);

/* Memory a caller lends instead of a reservation (a training session's
 * arena): the bytes fedl_model_bind_workspace needs for max_batch, a
 * multiple of 64 (the per-layer pointer tables, then the activations,
 * side buffers, input gradients and workspace). */
size_t fedl_model_workspace_bytes(const fedl_model *model, int max_batch);
/* Use memory (64-byte aligned, at least fedl_model_workspace_bytes(max_batch)
 * bytes) for batches of up to max_batch samples, in place of a reservation
 * (any reservation is freed). The model never frees it; the caller keeps
 * it alive until the next bind, reserve or destroy. max_batch 0 unbinds. */
fedl_status fedl_model_bind_workspace(fedl_model *model, int max_batch, void *memory, size_t bytes,
                                      fedl_error *err);

size_t fedl_model_param_count(const fedl_model *model);
float *fedl_model_params(fedl_model *model); /* (param_count) */
float *fedl_model_grads(fedl_model *model);  /* (param_count) */
void fedl_model_zero_grads(fedl_model *model);
fedl_shape fedl_model_input_shape(const fedl_model *model);
fedl_shape fedl_model_output_shape(const fedl_model *model);
/* The seed the parameters were drawn from; it also keys dropout masks.
 * set_seed changes only the dropout key (a restored checkpoint uses it). */
uint64_t fedl_model_seed(const fedl_model *model);
void fedl_model_set_seed(fedl_model *model, uint64_t seed);

/* Canonical spec text (round-trips through fedl_model_create). */
const char *fedl_model_spec(const fedl_model *model);
int fedl_model_layer_count(const fedl_model *model);
fedl_status fedl_model_layer_info(const fedl_model *model, int index, fedl_layer_info *info);

/* Forward pass over batch samples x (batch, C, H, W). With training != 0
 * dropout is active and the activations needed by backward are kept.
 * *out receives (batch, out) owned by the model. */
fedl_status fedl_model_forward(fedl_model *model, const float *x, int batch, int training,
                               const float **out, fedl_error *err);
/* Backward pass for the last training forward: dout (batch, out) is the
 * gradient of the loss with respect to the output. Parameter gradients are
 * ADDED to the gradient array (so micro-batches accumulate); dx, if not
 * NULL, receives (batch, C, H, W) the gradient with respect to the input. */
fedl_status fedl_model_backward(fedl_model *model, const float *dout, float *dx, fedl_error *err);

/* The dropout masks of a forward pass are drawn from (seed, step): set the
 * step before each training forward to make masks reproducible. */
void fedl_model_set_step(fedl_model *model, uint64_t step);
/* The position of the next forward's first sample within the step's batch
 * (0 by default). Dropout masks are drawn per sample at this offset, so a
 * batch run as several micro-batches gets the masks the whole batch gets. */
void fedl_model_set_sample_offset(fedl_model *model, uint64_t first_sample);

void fedl_model_set_profiling(fedl_model *model, int on);
fedl_status fedl_model_layer_profile(const fedl_model *model, int index,
                                     fedl_layer_profile *profile);

/* --------------------------------------------------------------------- loss */

/* Softmax cross-entropy over logits (batch, classes) with integer labels
 * (batch). Returns in *loss_sum the SUM of per-sample losses and, if dlogits
 * is not NULL, writes dlogits (batch, classes) = grad_scale * d(loss_sum)/d
 * logits. For PyTorch's mean reduction use grad_scale = 1 / batch. A label
 * outside [0, classes) is an error naming the sample. */
fedl_status fedl_loss_softmax_cross_entropy(const float *logits, const int32_t *labels, int batch,
                                            int classes, float grad_scale, double *loss_sum,
                                            float *dlogits, fedl_error *err);

/* Squared error summed over n values: *loss_sum = sum (pred - target)^2 and
 * dpred = grad_scale * 2 (pred - target). PyTorch's MSELoss (mean) is
 * loss_sum / n with grad_scale = 1 / n. */
fedl_status fedl_loss_mse(const float *pred, const float *target, size_t n, float grad_scale,
                          double *loss_sum, float *dpred, fedl_error *err);

/* Number of correct argmax predictions among logits (batch, classes). */
int fedl_count_correct(const float *logits, const int32_t *labels, int batch, int classes);

/* --------------------------------------------------------------- optimisers */

typedef enum fedl_optim_kind { FEDL_OPTIM_SGD, FEDL_OPTIM_ADAM, FEDL_OPTIM_ADAMW } fedl_optim_kind;

/* Semantics follow torch.optim.SGD / Adam / AdamW exactly. */
typedef struct fedl_optim_config {
    fedl_optim_kind kind;
    float momentum;     /* SGD */
    float dampening;    /* SGD */
    int nesterov;       /* SGD; needs momentum > 0 and dampening 0 */
    float weight_decay; /* SGD, Adam: L2 added to the gradient; AdamW: decoupled */
    float beta1, beta2; /* Adam, AdamW */
    float eps;          /* Adam, AdamW */
} fedl_optim_config;

typedef struct fedl_optim fedl_optim;

/* Defaults of PyTorch for kind (momentum 0, betas 0.9/0.999, eps 1e-8,
 * weight decay 0 for SGD and Adam, 0.01 for AdamW). */
fedl_optim_config fedl_optim_defaults(fedl_optim_kind kind);
fedl_status fedl_optim_parse_kind(const char *name, fedl_optim_kind *out);
const char *fedl_optim_kind_name(fedl_optim_kind kind);

fedl_status fedl_optim_create(const fedl_optim_config *config, size_t param_count,
                              fedl_allocator *alloc, fedl_optim **out, fedl_error *err);
/* Floats of state the optimiser keeps for param_count parameters: SGD with
 * momentum param_count, Adam and AdamW 2 x param_count, plain SGD 0. */
size_t fedl_optim_state_floats(const fedl_optim_config *config, size_t param_count);
/* Like fedl_optim_create, with the state in caller-owned memory of
 * fedl_optim_state_floats floats (zeroed, 64-byte aligned; NULL when that
 * is 0), which the optimiser never frees. */
fedl_status fedl_optim_create_in(const fedl_optim_config *config, size_t param_count, float *state,
                                 fedl_allocator *alloc, fedl_optim **out, fedl_error *err);
/* The caller moved the lent state to state, content included. */
void fedl_optim_move_state(fedl_optim *optim, float *state);
void fedl_optim_destroy(fedl_optim *optim);
/* One update of params from grads (both (param_count)) with learning rate lr. */
void fedl_optim_step(fedl_optim *optim, float *params, const float *grads, float lr);
uint64_t fedl_optim_step_count(const fedl_optim *optim);
/* The optimiser's flat state (momentum or first and second moments) for
 * checkpoints: *count floats, possibly 0. */
float *fedl_optim_state(fedl_optim *optim, size_t *count);
void fedl_optim_set_step_count(fedl_optim *optim, uint64_t steps);

/* ----------------------------------------------------------- LR schedules */

typedef enum fedl_lr_kind { FEDL_LR_CONSTANT, FEDL_LR_STEP, FEDL_LR_COSINE } fedl_lr_kind;

/* Learning rate as a function of the optimiser step t (0-based):
 *   constant: base
 *   step:     base * gamma ^ floor(t / step_size)
 *   cosine:   min + (base - min) * (1 + cos(pi * min(t, total) / total)) / 2 */
typedef struct fedl_lr_schedule {
    fedl_lr_kind kind;
    float base_lr;
    uint64_t step_size;   /* step */
    float gamma;          /* step */
    uint64_t total_steps; /* cosine */
    float min_lr;         /* cosine */
} fedl_lr_schedule;

float fedl_lr_at(const fedl_lr_schedule *schedule, uint64_t step);
fedl_status fedl_lr_parse_kind(const char *name, fedl_lr_kind *out);

/* ---------------------------------------------------------------- GEMM */

/* The BLAS backend this library was built with: "blis", "openblas", "c". */
const char *fedl_blas_backend(void);
/* The BLAS's worker threads: set n (> 0) between GEMM calls, never during
 * one, and get the count before the change; n <= 0 only reads it. Only
 * OpenBLAS can be told: with BLIS and the portable kernel this returns 1
 * and changes nothing. The thread count changes how OpenBLAS splits and
 * blocks a GEMM, and with it the low bits of some results (measured: a
 * federated simulation with 1 and 2 threads ends with different weights):
 * runs that must be bit-identical use the same count. */
int fedl_blas_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
