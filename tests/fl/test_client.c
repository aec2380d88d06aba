/*
 * test_client.c - the client's state on disk: a client killed in the middle
 * of a round (its trainer checkpointed part way) is rebuilt from its saved
 * state and the trainer's checkpoint, finishes its local training and
 * delivers the same update bit for bit as one never killed; a state with
 * no task pending keeps the last round delivered; damaged, truncated and
 * foreign states are refused naming the byte and leave the client as it
 * was.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

static const char *spec = "flatten dense(8) relu dense(4)";

typedef struct fixture {
    fedl_dataset ds;
    fedl_model *model;
    size_t params;
    float *global; /* (params) the task's weights */
    fedl_task task;
} fixture;

static void make_fixture(fixture *f)
{
    fedl_error err = {0};
    assert_int_equal(test_make_quadrant_dataset(&f->ds, 200, 7), 0);
    assert_int_equal(fedl_model_create(spec, f->ds.shape, 3, NULL, &f->model, &err), FEDL_OK);
    f->params = fedl_model_param_count(f->model);
    f->global = test_malloc(f->params * sizeof(float));
    memcpy(f->global, fedl_model_params(f->model), f->params * sizeof(float));
    memset(&f->task, 0, sizeof f->task);
    f->task.round = 4;
    f->task.model_version = 3;
    f->task.config = (fedl_task_config){2, 16, 0.1f, 0.5f, 0.01f};
    f->task.weights = f->global;
    f->task.params = f->params;
    fedl_sha256(f->global, f->params * sizeof(float), f->task.weights_sha256);
}

static void free_fixture(fixture *f)
{
    test_free(f->global);
    fedl_model_destroy(f->model);
    fedl_dataset_free(&f->ds);
}

static fedl_train_config train_config(const fedl_task_config *tc, const float *ref)
{
    fedl_train_config c = fedl_train_config_defaults();
    c.batch = tc->batch;
    c.epochs = tc->local_epochs;
    c.seed = 11;
    c.lr.base_lr = tc->lr;
    c.optim.momentum = tc->momentum;
    c.proximal_mu = tc->proximal_mu;
    c.proximal_ref = ref;
    return c;
}

/* Epochs finished by the trainer so far. */
static int epochs_done(const fedl_trainer *t)
{
    fedl_train_stats s = fedl_trainer_stats(t);
    return (int)s.epoch + (s.epoch_samples > 0 && s.position >= s.epoch_samples);
}

/* Train until the task's epochs are done, or `stop_after` steps (-1: no
 * stop); 1 when stopped early. */
static int train(fedl_trainer *t, int epochs, int stop_after)
{
    fedl_error err = {0};
    int done, steps = 0;
    while (epochs_done(t) < epochs) {
        if (steps == stop_after)
            return 1;
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
        steps++;
    }
    return 0;
}

/* The update, copied out: (params) values, its samples and loss. */
static void deliver(fedl_client *cl, fedl_trainer *t, fedl_model *m, float *values,
                    fedl_update *out)
{
    fedl_train_stats s = fedl_trainer_stats(t);
    fedl_error err = {0};
    assert_int_equal(fedl_client_make_update(cl, fedl_model_params(m), s.samples_seen,
                                             s.loss_sum / (double)s.epoch_seen, NULL, out, &err),
                     FEDL_OK);
    memcpy(values, out->values, out->params * sizeof(float));
    out->values = values;
}

static void test_a_client_killed_mid_round_resumes_and_delivers_the_same_update(void **state)
{
    fixture f;
    fedl_error err = {0};
    fedl_client *cl = NULL;
    fedl_trainer *t = NULL;
    fedl_train_config c;
    fedl_update whole, resumed;
    const fedl_task_config *pending;
    const float *weights;
    float *expect, *got;
    uint8_t *client_bytes, *ckpt_bytes = NULL;
    size_t client_length, ckpt_length = 0;
    fedl_train_state st;
    fedl_container_writer *w = NULL;
    fedl_checkpoint *ckpt = NULL;
    (void)state;
    make_fixture(&f);
    expect = test_malloc(f.params * sizeof(float));
    got = test_malloc(f.params * sizeof(float));

    /* undisturbed: accept, train both epochs, deliver */
    assert_int_equal(fedl_client_create("dev-07", f.params, NULL, &cl, &err), FEDL_OK);
    assert_int_equal(fedl_client_accept_task(cl, &f.task, &err), FEDL_OK);
    c = train_config(&f.task.config, f.global);
    assert_int_equal(fedl_trainer_create(f.model, &f.ds, &c, NULL, &t, &err), FEDL_OK);
    assert_int_equal(train(t, 2, -1), 0);
    deliver(cl, t, f.model, expect, &whole);
    fedl_trainer_destroy(t);
    fedl_client_destroy(cl);

    /* killed: accept and save the client, train 9 steps, checkpoint,
     * train 5 more (lost), and drop everything */
    memcpy(fedl_model_params(f.model), f.global, f.params * sizeof(float));
    assert_int_equal(fedl_client_create("dev-07", f.params, NULL, &cl, &err), FEDL_OK);
    assert_int_equal(fedl_client_accept_task(cl, &f.task, &err), FEDL_OK);
    assert_int_equal(fedl_client_save(cl, NULL, &client_bytes, &client_length, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(f.model, &f.ds, &c, NULL, &t, &err), FEDL_OK);
    assert_int_equal(train(t, 2, 9), 1);
    fedl_trainer_state(t, NULL, 0, &st);
    assert_int_equal(fedl_checkpoint_writer(f.model, &st, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, &ckpt_bytes, &ckpt_length, &err), FEDL_OK);
    fedl_container_writer_destroy(w);
    assert_int_equal(train(t, 2, 5), 1);
    fedl_trainer_destroy(t);
    fedl_client_destroy(cl);
    for (size_t i = 0; i < f.params; i++)
        fedl_model_params(f.model)[i] = NAN;

    /* restarted: the client from its bytes, the weights it was given, then
     * the trainer's checkpoint; the rest of the round; the update */
    assert_int_equal(fedl_client_create("dev-07", f.params, NULL, &cl, &err), FEDL_OK);
    assert_null(fedl_client_pending(cl, &weights));
    assert_int_equal(fedl_client_restore(cl, client_bytes, client_length, &err), FEDL_OK);
    pending = fedl_client_pending(cl, &weights);
    assert_non_null(pending);
    assert_int_equal(pending->local_epochs, 2);
    assert_int_equal(pending->batch, 16);
    assert_true(pending->momentum == 0.5f && pending->proximal_mu == 0.01f);
    assert_int_equal(fedl_client_round(cl), 4);
    assert_memory_equal(weights, f.global, f.params * sizeof(float));
    memcpy(fedl_model_params(f.model), weights, f.params * sizeof(float));
    c = train_config(pending, weights);
    assert_int_equal(fedl_trainer_create(f.model, &f.ds, &c, NULL, &t, &err), FEDL_OK);
    assert_int_equal(
        fedl_checkpoint_decode(ckpt_bytes, ckpt_length, "train.fedl", NULL, &ckpt, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_restore(t, ckpt, &err), FEDL_OK);
    fedl_checkpoint_free(ckpt);
    assert_int_equal(fedl_trainer_stats(t).global_step, 9); /* from the checkpoint on */
    assert_int_equal(train(t, 2, -1), 0);
    deliver(cl, t, f.model, got, &resumed);

    assert_memory_equal(got, expect, f.params * sizeof(float));
    assert_int_equal(resumed.round, 4);
    assert_int_equal(resumed.model_version, 3);
    assert_int_equal(resumed.samples, whole.samples);
    assert_true(resumed.train_loss == whole.train_loss);
    /* delivered: an older round is refused */
    f.task.round = 3;
    assert_int_equal(fedl_client_accept_task(cl, &f.task, &err), FEDL_ERR_STATE);
    f.task.round = 4;

    fedl_trainer_destroy(t);
    fedl_client_destroy(cl);
    fedl_mem_free(NULL, client_bytes, client_length);
    fedl_mem_free(NULL, ckpt_bytes, ckpt_length);
    test_free(expect);
    test_free(got);
    free_fixture(&f);
}

static void test_a_state_after_delivery_keeps_the_round(void **state)
{
    fixture f;
    fedl_error err = {0};
    fedl_client *cl = NULL, *back = NULL;
    fedl_update u;
    uint8_t *bytes;
    size_t length;
    const float *weights;
    (void)state;
    make_fixture(&f);
    weights = f.global;
    assert_int_equal(fedl_client_create("dev-01", f.params, NULL, &cl, &err), FEDL_OK);
    fedl_client_send_weights(cl, 1);
    assert_int_equal(fedl_client_accept_task(cl, &f.task, &err), FEDL_OK);
    assert_int_equal(fedl_client_make_update(cl, f.global, 10, 0.5, NULL, &u, &err), FEDL_OK);
    assert_int_equal(fedl_client_save(cl, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(length, 164); /* no weights without a pending task */
    assert_int_equal(fedl_client_create("dev-01", f.params, NULL, &back, &err), FEDL_OK);
    assert_int_equal(fedl_client_restore(back, bytes, length, &err), FEDL_OK);
    assert_null(fedl_client_pending(back, &weights));
    assert_null(weights);
    f.task.round = 3;
    assert_int_equal(fedl_client_accept_task(back, &f.task, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "older than round 4, which it delivered"));
    f.task.round = 5;
    fedl_sha256(f.global, f.params * sizeof(float), f.task.weights_sha256);
    assert_int_equal(fedl_client_accept_task(back, &f.task, &err), FEDL_OK);
    assert_int_equal(fedl_client_make_update(back, f.global, 10, 0.5, NULL, &u, &err), FEDL_OK);
    assert_int_equal(u.kind, FEDL_UPDATE_WEIGHTS); /* the setting came back too */
    fedl_mem_free(NULL, bytes, length);
    fedl_client_destroy(cl);
    fedl_client_destroy(back);
    free_fixture(&f);
}

/* Restoring `bytes` into a fresh client of `id` fails with `status` and a
 * message containing `needle`; the client still has no task. */
static void refused(const char *id, size_t params, const uint8_t *bytes, size_t length,
                    fedl_status status, const char *needle)
{
    fedl_client *cl = NULL;
    fedl_error err = {0};
    assert_int_equal(fedl_client_create(id, params, NULL, &cl, &err), FEDL_OK);
    assert_int_equal(fedl_client_restore(cl, bytes, length, &err), status);
    if (strstr(err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, needle);
    assert_null(fedl_client_pending(cl, NULL));
    assert_int_equal(fedl_client_round(cl), 0);
    fedl_client_destroy(cl);
}

static void test_damaged_and_foreign_states_are_refused(void **state)
{
    fixture f;
    fedl_error err = {0};
    fedl_client *cl = NULL;
    uint8_t *bytes, *copy;
    size_t length;
    (void)state;
    make_fixture(&f);
    assert_int_equal(fedl_client_create("dev-02", f.params, NULL, &cl, &err), FEDL_OK);
    assert_int_equal(fedl_client_accept_task(cl, &f.task, &err), FEDL_OK);
    assert_int_equal(fedl_client_save(cl, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(length, 164 + 4 * f.params);
    copy = test_malloc(length);

    refused("dev-03", f.params, bytes, length, FEDL_ERR_STATE, "dev-02's, not dev-03's");
    refused("dev-02", f.params + 1, bytes, length, FEDL_ERR_STATE, "byte 40");
    refused("dev-02", f.params, bytes, length - 1, FEDL_ERR_FORMAT, "its header says");
    refused("dev-02", f.params, bytes, 100, FEDL_ERR_FORMAT, "not a client state");
    memcpy(copy, bytes, length);
    copy[164 + 5] ^= 0x40; /* a weight */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 164");
    memcpy(copy, bytes, length);
    copy[8] = 2; /* format version */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 8: format version 2");
    memcpy(copy, bytes, length);
    copy[12] |= 0x10; /* flags */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 12");
    memcpy(copy, bytes, length);
    memset(copy + 52, 0, 4); /* batch 0 */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 48");
    memcpy(copy, bytes, length);
    memset(copy + 56, 0xff, 4); /* lr NaN */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 56");
    memcpy(copy, bytes, length);
    copy[32] = 9; /* delivered round 9, after the pending round 4 */
    refused("dev-02", f.params, copy, length, FEDL_ERR_FORMAT, "byte 16");

    test_free(copy);
    fedl_mem_free(NULL, bytes, length);
    fedl_client_destroy(cl);
    free_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_client_killed_mid_round_resumes_and_delivers_the_same_update),
        cmocka_unit_test(test_a_state_after_delivery_keeps_the_round),
        cmocka_unit_test(test_damaged_and_foreign_states_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
