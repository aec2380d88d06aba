/*
 * session_layout.h - where each buffer of a training session sits in its
 * arena, shared by the planner (plan.c) and the trainer (trainer.c) so that
 * the bytes planned are the bytes handed out.
 *
 * The arena holds, in this order, each piece rounded up to 64 bytes:
 *
 *   fixed part, kept when the micro-batch changes:
 *     optimizer   optimiser moments (fedl_optim_state_floats floats)
 *     order       the batcher's permutation (count uint32)
 *   micro-batch part, laid out again for each micro-batch m:
 *     workspace   the model's activations, side buffers, input gradients and
 *                 GEMM workspace for m samples (fedl_model_workspace_bytes)
 *     x           inputs (m, C, H, W) float
 *     labels      (m) int32
 *     indices     (m) uint32, sample numbers for evaluation
 *     dlogits     loss gradient (m, classes) float
 *     targets     (m, targets) float, regression data only
 *
 * The model's parameters and gradients are not in it: they belong to the
 * model, which exists before the session and outlives it.
 */
#ifndef FEDL_TRAIN_SESSION_LAYOUT_H
#define FEDL_TRAIN_SESSION_LAYOUT_H

#include "fedl/train.h"

typedef struct fedl_session_layout {
    size_t optimizer, order;                                /* bytes of the fixed part's pieces */
    size_t fixed;                                           /* optimizer + order */
    size_t workspace, x, labels, indices, dlogits, targets; /* bytes at micro-batch m */
    size_t micro; /* workspace + x + labels + indices + dlogits + targets */
    size_t total; /* fixed + micro: the arena's capacity */
} fedl_session_layout;

static inline size_t fedl_round64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

static inline void fedl_session_layout_of(const fedl_model *model, const fedl_dataset *data,
                                          const fedl_optim_config *optim, int m,
                                          fedl_session_layout *l)
{
    fedl_shape out = fedl_model_output_shape(model);
    size_t micro = m > 0 ? (size_t)m : 0, classes = (size_t)out.c * out.h * out.w;
    l->optimizer =
        fedl_round64(fedl_optim_state_floats(optim, fedl_model_param_count(model)) * sizeof(float));
    l->order = fedl_round64(data->count * sizeof(uint32_t));
    l->fixed = l->optimizer + l->order;
    l->workspace = fedl_model_workspace_bytes(model, m);
    l->x = fedl_round64(micro * data->sample_bytes * sizeof(float));
    l->labels = fedl_round64(micro * sizeof(int32_t));
    l->indices = fedl_round64(micro * sizeof(uint32_t));
    l->dlogits = fedl_round64(micro * classes * sizeof(float));
    l->targets = fedl_round64(micro * (size_t)data->targets * sizeof(float));
    l->micro = l->workspace + l->x + l->labels + l->indices + l->dlogits + l->targets;
    l->total = l->fixed + l->micro;
}

#endif
