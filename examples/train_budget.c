/*
 * train_budget.c - a training session under a memory budget, checkpointed:
 * plan the largest micro-batch a budget allows, train with gradient
 * accumulation to the full batch (every buffer in one arena of exactly the
 * planned size), save a checkpoint generation, resume from it into a fresh
 * trainer and check that both end with the same weights.
 *
 *   cc train_budget.c $(pkg-config --cflags --libs fedl) -o train_budget
 *   ./train_budget [--smoke] [BUDGET]   # BUDGET like 300K or auto [300K]
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* mkdtemp */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedl/fedl.h>

#include "quadrants.h"

#define SAMPLES 512
#define SPEC "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(4)"

static int train_steps(fedl_trainer *t, int steps, fedl_error *err)
{
    for (int i = 0; i < steps; i++) {
        int epoch_done;
        if (fedl_trainer_step(t, &epoch_done, err) != FEDL_OK)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    const char *budget_text = argc > 1 + smoke ? argv[1 + smoke] : "300K";
    int steps = smoke ? 20 : 200;
    char dir[] = "/tmp/fedl-example-XXXXXX", size[32];
    fedl_budget_probe_options probe = fedl_budget_probe_defaults();
    fedl_train_config config = fedl_train_config_defaults();
    fedl_dataset data;
    fedl_budget budget;
    fedl_plan plan;
    fedl_model *model = NULL, *again = NULL;
    fedl_trainer *trainer = NULL, *resumed = NULL;
    fedl_ckpt_dir *ckpt = NULL;
    fedl_checkpoint *loaded = NULL;
    fedl_container_writer *writer = NULL;
    fedl_train_state state;
    fedl_eval_result result;
    fedl_error err = {0};
    int rc = 1;

    config.batch = 64;
    config.optim.momentum = 0.9f;
    if (make_quadrants(&data, SAMPLES) != 0 || mkdtemp(dir) == NULL ||
        fedl_budget_parse(budget_text, &probe, &budget, &err) != FEDL_OK ||
        fedl_model_create(SPEC, data.shape, 3, NULL, &model, &err) != FEDL_OK ||
        fedl_plan_training(model, &data, &config, (size_t)budget.bytes, &plan, &err) != FEDL_OK)
        goto done;
    printf("budget %s (%s): %s\n", fedl_budget_format_bytes(budget.bytes, size, sizeof size),
           fedl_budget_source_name(budget.source), plan.reason);
    if (!plan.fits)
        goto done;
    config.micro_batch = plan.micro_batch;
    if (fedl_trainer_create(model, &data, &config, NULL, &trainer, &err) != FEDL_OK ||
        train_steps(trainer, steps / 2, &err) != 0)
        goto done;

    /* a checkpoint generation, then a fresh model and trainer resumed from it */
    fedl_trainer_state(trainer, NULL, 0, &state);
    if (fedl_ckpt_dir_open(dir, NULL, NULL, &ckpt, &err) != FEDL_OK ||
        fedl_checkpoint_writer(model, &state, NULL, &writer, &err) != FEDL_OK ||
        fedl_ckpt_dir_save(ckpt, writer, NULL, &err) != FEDL_OK ||
        fedl_checkpoint_load(fedl_ckpt_dir_path(ckpt, 0), NULL, &loaded, &err) != FEDL_OK ||
        fedl_model_create(SPEC, data.shape, 3, NULL, &again, &err) != FEDL_OK ||
        fedl_trainer_create(again, &data, &config, NULL, &resumed, &err) != FEDL_OK ||
        fedl_trainer_restore(resumed, loaded, &err) != FEDL_OK)
        goto done;
    if (train_steps(trainer, steps - steps / 2, &err) != 0 ||
        train_steps(resumed, steps - steps / 2, &err) != 0)
        goto done;
    rc = memcmp(fedl_model_params(model), fedl_model_params(again),
                fedl_model_param_count(model) * sizeof(float)) != 0;
    /* evaluation with the trainer's own buffers: nothing outside the plan */
    if (fedl_trainer_evaluate(trainer, &data, &result, NULL, &err) != FEDL_OK) {
        rc = 1;
        goto done;
    }
    printf("micro-batch %d of %d; arena %zu bytes (planned %zu); %d steps; resumed run %s the "
           "uninterrupted one; loss %.4f, accuracy %.3f\n",
           plan.micro_batch, config.batch, fedl_trainer_arena(trainer)->capacity, plan.arena, steps,
           rc == 0 ? "equals" : "DIFFERS FROM",
           fedl_trainer_stats(trainer).loss_sum / (double)fedl_trainer_stats(trainer).epoch_seen,
           result.accuracy);
    if (fedl_trainer_arena(trainer)->capacity != plan.arena)
        rc = 1;
done:
    if (err.status != FEDL_OK)
        fprintf(stderr, "train_budget: %s\n", err.message);
    fedl_container_writer_destroy(writer);
    fedl_checkpoint_free(loaded);
    if (ckpt != NULL) {
        for (int i = fedl_ckpt_dir_count(ckpt) - 1; i >= 0; i--)
            remove(fedl_ckpt_dir_path(ckpt, i));
        fedl_ckpt_dir_close(ckpt);
    }
    {
        char manifest[64];
        snprintf(manifest, sizeof manifest, "%s/%s", dir, FEDL_CKPT_MANIFEST);
        remove(manifest);
        remove(dir);
    }
    fedl_trainer_destroy(resumed);
    fedl_trainer_destroy(trainer);
    fedl_model_destroy(again);
    fedl_model_destroy(model);
    fedl_dataset_free(&data);
    return rc;
}
