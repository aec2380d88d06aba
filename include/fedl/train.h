/*
 * fedl/train.h - a training session: one model, one training set, one
 * optimiser, the batch buffers, and the loop that ties them together.
 *
 * fedl_trainer_create() takes every byte the loop needs (batch buffers, the
 * model's activations for the batch size, the optimiser state, the shuffle
 * order); fedl_trainer_step() then allocates nothing. The trainer borrows the
 * model and the dataset: both must outlive it.
 *
 * Determinism: the shuffle of epoch e comes from (seed, e), dropout masks
 * from (model seed, step), and the arithmetic is the same on every run, so
 * the same seed and config give bit-identical weights.
 */
#ifndef FEDL_TRAIN_H
#define FEDL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/ckpt.h"
#include "fedl/core.h"
#include "fedl/data.h"
#include "fedl/mem.h"
#include "fedl/monitor.h"
#include "fedl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What training minimises: softmax cross-entropy over class labels, or the
 * mean squared error of regression targets (a data set with targets > 0;
 * the model's outputs are the predictions, one per target). */
typedef enum fedl_loss_kind { FEDL_LOSS_CROSS_ENTROPY, FEDL_LOSS_MSE } fedl_loss_kind;

typedef struct fedl_train_config {
    int batch;               /* samples per optimiser step (default 32) */
    int micro_batch;         /* samples per forward/backward, gradients accumulated over a
                                step's micro-batches; 0 (default) = batch */
    int epochs;              /* default 1 */
    uint64_t seed;           /* shuffle seed (default 1) */
    int shuffle;             /* default 1 */
    fedl_optim_config optim; /* default SGD, no momentum */
    fedl_lr_schedule lr;     /* in optimiser steps; default constant 0.01 */
    fedl_loss_kind loss;     /* default cross-entropy; MSE for regression data */
    /* FedProx (Li et al., 2020): with mu > 0 every step adds mu (w - ref)
     * to the gradients, the gradient of (mu / 2) |w - ref|^2, which keeps
     * local training near ref (the round's global weights, param_count
     * floats, owned by the caller and alive while the trainer is). The
     * reported loss is the data loss alone. Default 0: off. */
    float proximal_mu;
    const float *proximal_ref;
} fedl_train_config;

/* Defaults listed above. */
fedl_train_config fedl_train_config_defaults(void);

typedef struct fedl_trainer fedl_trainer;

/* What one step or one epoch did. */
typedef struct fedl_train_stats {
    uint64_t epoch;        /* 0-based epoch of the last step */
    size_t position;       /* samples of that epoch consumed */
    size_t epoch_samples;  /* samples in an epoch */
    uint64_t global_step;  /* optimiser steps since the start */
    uint64_t samples_seen; /* since the start */
    double loss_sum;       /* sum of per-sample losses in this epoch */
    uint64_t correct;      /* correct predictions in this epoch */
    uint64_t epoch_seen;   /* samples seen in this epoch */
    float lr;              /* learning rate of the last step */
} fedl_train_stats;

fedl_status fedl_trainer_create(fedl_model *model, const fedl_dataset *train,
                                const fedl_train_config *config, fedl_allocator *alloc,
                                fedl_trainer **out, fedl_error *err);
void fedl_trainer_destroy(fedl_trainer *t);

/* One optimiser step on the next batch of the current epoch. Sets
 * *epoch_done when that batch was the epoch's last; the next call then starts
 * the next epoch. */
fedl_status fedl_trainer_step(fedl_trainer *t, int *epoch_done, fedl_error *err);
fedl_train_stats fedl_trainer_stats(const fedl_trainer *t);

/* Samples per forward/backward now in use. */
int fedl_trainer_micro_batch(const fedl_trainer *t);
/* The session's arena (read-only): capacity is the plan's `arena` for the
 * micro-batch in use, and all of it is handed out. */
const fedl_arena *fedl_trainer_arena(const fedl_trainer *t);
/* Change it between steps (values above the batch mean the batch): the
 * batch buffers and the model's activations are released and taken again
 * for the new size, so a smaller micro-batch gives memory back. The
 * optimiser sees the same effective batch either way; dropout masks are the
 * same, only the order of the gradient sums changes. On failure the trainer
 * holds no buffers: call again with a smaller size. */
fedl_status fedl_trainer_set_micro_batch(fedl_trainer *t, int micro, fedl_error *err);
fedl_optim *fedl_trainer_optim(fedl_trainer *t);

/* Ask for a new memory budget (bytes; 0 = unlimited) while training runs;
 * callable from another thread (the monitor's). The next fedl_trainer_step
 * re-plans with fedl_plan_training before it starts and shrinks or grows the
 * micro-batch, releasing or taking buffers (the effective batch, and so the
 * updates, stay the same). If not even micro-batch 1 fits, that step fails
 * with FEDL_ERR_NOMEM naming the smallest budget, and the trainer keeps its
 * buffers: a later, larger budget lets it continue. */
void fedl_trainer_request_budget(fedl_trainer *t, size_t bytes);

/* ------------------------------------------------- giving memory back */

/* Give back everything the session holds beyond the model and the arena's
 * fixed part (optimiser moments, shuffle order): the model's activations
 * and workspace and the batch buffers. The arena shrinks in place, so the
 * memory returns to the system. Returns the bytes released (0 when already
 * released). Checkpoints can still be taken. The next step or evaluation
 * takes the buffers back at the same micro-batch (or one set since), or
 * call fedl_trainer_reacquire to know first whether that works. */
size_t fedl_trainer_release(fedl_trainer *t);
int fedl_trainer_is_released(const fedl_trainer *t);
/* Take the released buffers back; FEDL_ERR_NOMEM (the trainer stays
 * released) when the allocator refuses. */
fedl_status fedl_trainer_reacquire(fedl_trainer *t, fedl_error *err);

/* ------------------------------------------------------------ the monitor */

/* Let a monitor (fedl/monitor.h; it must outlive the trainer or be
 * detached with NULL) steer this session through the two calls below,
 * made between steps on the training thread. */
void fedl_trainer_attach_monitor(fedl_trainer *t, fedl_monitor *m);

/* Act on the monitor's state. OK -> CONSTRAINED: the micro-batch halves
 * (the effective batch stays) and the BLAS drops to one thread; back to
 * OK: both are restored. Each action is reported to the monitor (a JSON
 * line with the RSS before and after). CRITICAL, or the disk below its
 * floor: *pause = 1 and nothing else is done: call fedl_trainer_pause. A
 * micro-batch change reorders the gradient sums, so a run that was
 * constrained is no longer bit-identical to one that was not; a pause
 * alone keeps it bit-identical. */
fedl_status fedl_trainer_follow_monitor(fedl_trainer *t, int *pause, fedl_error *err);

/* While paused, a process keeps its code and libraries, the model's
 * parameters and gradients and the arena's fixed part (optimiser moments,
 * shuffle order); everything else is given back, so its RSS stays under
 * this floor plus those model bytes. (x86_64, LeNet-5 with momentum: 6.8
 * MiB, tests/cli/test_monitor_pressure.sh.) */
#define FEDL_PAUSE_RSS_FLOOR (8u << 20) /* bytes */

/* What the caller adds to a pause. Any member may be NULL. */
typedef struct fedl_pause_hooks {
    /* once the trainer's buffers are released: write a checkpoint, so that
     * nothing is lost if the process is killed while it waits (not called
     * when the disk is low; a failure is logged and reported, and the pause
     * goes on) */
    fedl_status (*checkpoint)(void *user, fedl_error *err);
    /* after the checkpoint: free what else can be had again later (data
     * loaded in memory); returns the bytes freed */
    size_t (*release)(void *user);
    /* before the trainer takes its buffers back: load that again */
    fedl_status (*reacquire)(void *user, fedl_error *err);
    void *user;
} fedl_pause_hooks;

/* The CRITICAL action: release (fedl_trainer_release), checkpoint and
 * release the rest (hooks), report it, wait until the monitor says resources
 * returned (fedl_monitor_wait_until_clear: out of CRITICAL for the
 * cooldown, with the released bytes counted as needed), then take
 * everything back and report the resume. With only the disk low it
 * neither checkpoints nor releases: it warns and waits. *resumed is 1 when
 * training can go on, 0 when *cancel ended the wait (the trainer is still
 * released; a checkpoint can be written and the process can exit). The
 * training steps after a pause are bit-identical to those without one. */
fedl_status fedl_trainer_pause(fedl_trainer *t, const fedl_pause_hooks *hooks,
                               const volatile int *cancel, int *resumed, fedl_error *err);

/* --------------------------------------------------------------- planning */

/* What fedl_plan_training decided. Sizes are the bytes fedl's accounted
 * allocator hands out. Everything a training session allocates for its
 * optimiser state, shuffle order, activations and batch buffers comes from
 * one arena of exactly `arena` bytes (taken from the allocator with
 * FEDL_ARENA_SLACK bytes more for alignment); the model's parameters and
 * gradients are the model's own allocations (alignment headers included).
 * The session's few small objects (the trainer, the optimiser object, the
 * configuration text: a few KiB) fall inside the margin. The budget covers
 * that heap; the process's own code, libc, stacks and BLAS buffers come on
 * top (FEDL_PLAN_PROCESS_OVERHEAD), so peak RSS stays under budget +
 * overhead + the data set. A budget detected from the system (--memory
 * auto) has the overhead taken off first. */
#define FEDL_PLAN_PROCESS_OVERHEAD (8u << 20) /* bytes */
typedef struct fedl_plan {
    int batch;              /* effective batch (optimiser step) */
    int micro_batch;        /* chosen: samples per forward/backward */
    size_t budget;          /* bytes given (0 = unlimited) */
    size_t margin;          /* bytes kept free: 5% of the budget (allocator, libc slack) */
    size_t dataset;         /* samples and labels in memory: reported, not budgeted */
    size_t params;          /* parameters (the model's) */
    size_t grads;           /* gradients (the model's) */
    size_t optimizer;       /* optimiser moments (arena) */
    size_t order;           /* the batcher's shuffle order (arena) */
    size_t activations;     /* layer outputs, side buffers, workspace at micro_batch (arena) */
    size_t batch_buffers;   /* inputs, labels, indices, logit gradients at micro_batch (arena) */
    size_t arena;           /* optimizer + order + activations + batch_buffers */
    size_t fixed;           /* params + grads + optimizer + order */
    size_t total;           /* params + grads + arena + FEDL_ARENA_SLACK */
    size_t smallest_budget; /* the budget micro-batch 1 needs */
    int fits;               /* 0: not even micro-batch 1 fits */
    char reason[256];       /* why this micro-batch, in a sentence */
} fedl_plan;

/* Bytes that depend on the micro-batch m: the arena's micro-batch part
 * (the model's workspace and the batch buffers for m), exactly as laid out. */
size_t fedl_plan_micro_bytes(const fedl_model *model, const fedl_dataset *data, int m);

/* Choose the largest micro-batch (at most config->batch) whose total fits
 * the budget minus the margin; config->micro_batch, if set, caps it. A
 * budget of 0 means no limit. When nothing fits, plan->fits is 0 and
 * plan->reason names the smallest budget that would work. */
fedl_status fedl_plan_training(const fedl_model *model, const fedl_dataset *data,
                               const fedl_train_config *config, size_t budget, fedl_plan *plan,
                               fedl_error *err);

/* ------------------------------------------------------------ checkpoints */

/* The canonical configuration: one "key=value" line per setting that must
 * be the same for a checkpoint to be resumed (model spec, input shape,
 * batch, seeds, optimiser and schedule settings, and the training data's
 * sample count, shape, classes and CRC-32C). The number of epochs is not in
 * it: a finished run can be resumed to train longer (a cosine schedule's
 * length is, through lr_total_steps). */
const char *fedl_trainer_config_text(const fedl_trainer *t);

/* Fill state with the trainer's exact position; its pointers refer to the
 * trainer and stay valid until the next step. meta may be NULL. */
void fedl_trainer_state(const fedl_trainer *t, const fedl_meta_entry *meta, int meta_count,
                        fedl_train_state *state);

/* Continue from a decoded checkpoint: parameters, optimiser state, data
 * cursor, counters and running epoch statistics. A checkpoint whose
 * configuration differs is refused with FEDL_ERR_STATE and a message naming
 * every differing key with both values ("batch: checkpoint 32, now 64").
 * After a restore, the next steps are bit-identical to those an
 * uninterrupted run would have taken. */
fedl_status fedl_trainer_restore(fedl_trainer *t, const fedl_checkpoint *ckpt, fedl_error *err);

/* Evaluation of a model on a dataset. confusion, if not NULL, is
 * (classes, classes) counts: row = true label, column = prediction. */
typedef struct fedl_eval_result {
    size_t samples;
    size_t correct;
    double loss_sum;      /* softmax cross-entropy, or for regression the squared error (mean
                             over the targets), summed over samples */
    double accuracy;      /* correct / samples (classification) */
    double abs_error_sum; /* regression: absolute error (mean over the targets), summed */
    double rmse, mae;     /* regression: root mean squared and mean absolute error */
} fedl_eval_result;

fedl_status fedl_evaluate(fedl_model *model, const fedl_dataset *ds, int batch,
                          fedl_allocator *alloc, fedl_eval_result *result, uint64_t *confusion,
                          fedl_error *err);
/* Evaluate the trainer's model on ds with the trainer's own buffers, at its
 * micro-batch: nothing is allocated, so evaluation stays inside the plan.
 * ds must have the training data's sample shape. */
fedl_status fedl_trainer_evaluate(fedl_trainer *t, const fedl_dataset *ds, fedl_eval_result *result,
                                  uint64_t *confusion, fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
