/* test_resume.c - checkpoint and restore inside one process: a run stopped
 * at any step and restored from its checkpoint image ends with the same
 * weights, bit for bit, as an uninterrupted run; a checkpoint made with
 * another configuration is refused with a message naming the difference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

#define SAMPLES 200 /* a small synthetic data set: (SAMPLES, 1, 8, 8), 4 classes */
#define STEPS 60    /* 3 epochs of batch 10 (the last batch of an epoch is full) */

static const char *spec = "conv2d(3,3,pad=1) relu maxpool2d(2) flatten dropout(0.25) dense(4)";

static void make_data(fedl_dataset *ds)
{
    assert_int_equal(test_make_quadrant_dataset(ds, SAMPLES, 7), 0);
}

static fedl_train_config adam_config(void)
{
    fedl_train_config c = fedl_train_config_defaults();
    c.batch = 10;
    c.seed = 5;
    c.optim = fedl_optim_defaults(FEDL_OPTIM_ADAMW);
    c.lr.kind = FEDL_LR_COSINE;
    c.lr.base_lr = 0.01f;
    c.lr.total_steps = STEPS;
    return c;
}

static void run_steps(fedl_trainer *t, int steps)
{
    fedl_error err;
    for (int i = 0; i < steps; i++) {
        int done;
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    }
}

/* Checkpoint image of t (through the real container writer and decoder). */
static fedl_checkpoint *snapshot(fedl_trainer *t, fedl_model *m)
{
    fedl_train_state state;
    fedl_container_writer *w;
    fedl_checkpoint *ckpt;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    const uint8_t value[3] = {1, 2, 3};
    fedl_meta_entry meta = {"round", value, 3};
    fedl_trainer_state(t, &meta, 1, &state);
    assert_int_equal(fedl_checkpoint_writer(m, &state, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err), FEDL_OK);
    fedl_container_writer_destroy(w);
    assert_int_equal(fedl_checkpoint_decode(bytes, length, "snapshot", NULL, &ckpt, &err), FEDL_OK);
    fedl_mem_free(fedl_allocator_default(), bytes, length);
    assert_non_null(fedl_checkpoint_meta(ckpt, "round"));
    return ckpt;
}

/* SGD with Nesterov momentum and weight decay, batch 7: every epoch ends
 * with a short batch of 4 (200 = 28 * 7 + 4), 29 steps per epoch. */
static fedl_train_config sgd_config(void)
{
    fedl_train_config c = fedl_train_config_defaults();
    c.batch = 7;
    c.seed = 8;
    c.optim.momentum = 0.9f;
    c.optim.nesterov = 1;
    c.optim.weight_decay = 1e-4f;
    c.lr.kind = FEDL_LR_STEP;
    c.lr.base_lr = 0.05f;
    c.lr.step_size = 29;
    c.lr.gamma = 0.5f;
    return c;
}

static void train_uninterrupted(const fedl_dataset *ds, const fedl_train_config *config, int steps,
                                float *out)
{
    fedl_train_config c = *config;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    assert_int_equal(fedl_model_create(spec, ds->shape, 11, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, ds, &c, NULL, &t, &err), FEDL_OK);
    run_steps(t, steps);
    memcpy(out, fedl_model_params(m), fedl_model_param_count(m) * sizeof(float));
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
}

/* Stop after each of `stops` (ascending), restore into a fresh model and
 * trainer, continue to `steps`. */
static void train_interrupted(const fedl_dataset *ds, const fedl_train_config *config, int steps,
                              const int *stops, int stop_count, float *out)
{
    fedl_train_config c = *config;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    int done_steps = 0;
    assert_int_equal(fedl_model_create(spec, ds->shape, 11, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, ds, &c, NULL, &t, &err), FEDL_OK);
    for (int i = 0; i < stop_count; i++) {
        fedl_checkpoint *ckpt;
        run_steps(t, stops[i] - done_steps);
        done_steps = stops[i];
        ckpt = snapshot(t, m);
        fedl_trainer_destroy(t);
        fedl_model_destroy(m);
        /* a fresh process would build the model from another seed's
         * initialisation only to overwrite it: the restore must not care */
        assert_int_equal(fedl_model_create(spec, ds->shape, 11, NULL, &m, &err), FEDL_OK);
        fedl_model_init_params(m, 999, FEDL_INIT_DEFAULT);
        fedl_model_set_seed(m, 11);
        assert_int_equal(fedl_trainer_create(m, ds, &c, NULL, &t, &err), FEDL_OK);
        assert_int_equal(fedl_trainer_restore(t, ckpt, &err), FEDL_OK);
        assert_int_equal(fedl_trainer_stats(t).global_step, (uint64_t)stops[i]);
        fedl_checkpoint_free(ckpt);
    }
    run_steps(t, steps - done_steps);
    memcpy(out, fedl_model_params(m), fedl_model_param_count(m) * sizeof(float));
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
}

static void test_resume_is_bit_identical_at_any_step(void **state)
{
    fedl_dataset ds;
    fedl_model *probe;
    fedl_error err;
    size_t count;
    float *reference, *resumed;
    /* mid-epoch, at epoch ends (20, 40), right after the start, and many */
    const int single[][1] = {{1}, {7}, {20}, {21}, {40}, {59}};
    const int many[] = {3, 9, 19, 20, 33, 41, 42, 58};
    const int sgd_stops[] = {1, 2, 28, 29, 30, 57, 58, 86}; /* around the short batches */
    fedl_train_config adam = adam_config(), sgd = sgd_config();
    (void)state;
    make_data(&ds);
    assert_int_equal(fedl_model_create(spec, ds.shape, 11, NULL, &probe, &err), FEDL_OK);
    count = fedl_model_param_count(probe);
    fedl_model_destroy(probe);
    reference = test_malloc(count * sizeof(float));
    resumed = test_malloc(count * sizeof(float));
    train_uninterrupted(&ds, &adam, STEPS, reference);
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        train_interrupted(&ds, &adam, STEPS, single[i], 1, resumed);
        assert_memory_equal(resumed, reference, count * sizeof(float));
    }
    train_interrupted(&ds, &adam, STEPS, many, (int)(sizeof many / sizeof many[0]), resumed);
    assert_memory_equal(resumed, reference, count * sizeof(float));

    /* SGD momentum: the first step after a restore must not take torch's
     * first-step branch (buffer = gradient) again */
    train_uninterrupted(&ds, &sgd, 87, reference);
    for (size_t i = 0; i < sizeof sgd_stops / sizeof sgd_stops[0]; i++) {
        train_interrupted(&ds, &sgd, 87, &sgd_stops[i], 1, resumed);
        assert_memory_equal(resumed, reference, count * sizeof(float));
    }
    train_interrupted(&ds, &sgd, 87, sgd_stops, (int)(sizeof sgd_stops / sizeof sgd_stops[0]),
                      resumed);
    assert_memory_equal(resumed, reference, count * sizeof(float));
    test_free(reference);
    test_free(resumed);
    fedl_dataset_free(&ds);
}

static void test_restore_refuses_another_configuration(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = adam_config(), other = adam_config();
    fedl_model *m;
    fedl_trainer *t, *t2;
    fedl_checkpoint *ckpt;
    fedl_error err;
    (void)state;
    make_data(&ds);
    assert_int_equal(fedl_model_create(spec, ds.shape, 11, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, NULL, &t, &err), FEDL_OK);
    run_steps(t, 5);
    ckpt = snapshot(t, m);
    fedl_trainer_destroy(t);

    other.batch = 20;
    other.seed = 6;
    assert_int_equal(fedl_trainer_create(m, &ds, &other, NULL, &t2, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_restore(t2, ckpt, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "batch: checkpoint 10, now 20"));
    assert_non_null(strstr(err.message, "seed: checkpoint 5, now 6"));
    fedl_trainer_destroy(t2);

    /* other data: one changed pixel changes the fingerprint */
    ds.pixels[17] ^= 1;
    assert_int_equal(fedl_trainer_create(m, &ds, &c, NULL, &t2, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_restore(t2, ckpt, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "data_crc32c: checkpoint"));
    fedl_trainer_destroy(t2);

    fedl_checkpoint_free(ckpt);
    fedl_model_destroy(m);
    fedl_dataset_free(&ds);
}

/* A checkpoint taken at one micro-batch resumes at another (a resume under
 * another memory budget): the same updates up to the order of the sums. */
static void test_resume_under_another_micro_batch(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = adam_config(), small = adam_config();
    fedl_model *m, *m2;
    fedl_trainer *t, *t2;
    fedl_checkpoint *ckpt;
    fedl_error err;
    float *reference;
    size_t count;
    (void)state;
    make_data(&ds);
    assert_int_equal(fedl_model_create(spec, ds.shape, 11, NULL, &m, &err), FEDL_OK);
    count = fedl_model_param_count(m);
    reference = test_malloc(count * sizeof(float));
    train_uninterrupted(&ds, &c, STEPS, reference);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, NULL, &t, &err), FEDL_OK);
    run_steps(t, 25);
    ckpt = snapshot(t, m);
    assert_int_equal(ckpt->state.micro_batch, 10);
    small.micro_batch = 3;
    assert_int_equal(fedl_model_create(spec, ds.shape, 11, NULL, &m2, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m2, &ds, &small, NULL, &t2, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_restore(t2, ckpt, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(t2), 3);
    run_steps(t2, STEPS - 25);
    assert_true(test_max_rel_diff(fedl_model_params(m2), reference, count) < 1e-5);
    fedl_checkpoint_free(ckpt);
    fedl_trainer_destroy(t);
    fedl_trainer_destroy(t2);
    fedl_model_destroy(m);
    fedl_model_destroy(m2);
    test_free(reference);
    fedl_dataset_free(&ds);
}

static void test_state_reports_the_cursor(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = adam_config();
    fedl_model *m;
    fedl_trainer *t;
    fedl_train_state s;
    fedl_error err;
    (void)state;
    make_data(&ds);
    assert_int_equal(fedl_model_create(spec, ds.shape, 11, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, NULL, &t, &err), FEDL_OK);
    run_steps(t, 23);
    fedl_trainer_state(t, NULL, 0, &s);
    assert_int_equal(s.global_step, 23);
    assert_int_equal(s.epoch, 1);
    assert_int_equal(s.position, 30);
    assert_int_equal(s.samples_seen, 230);
    assert_int_equal(s.epoch_seen, 30);
    assert_int_equal(s.optim_steps, 23);
    assert_int_equal(s.optim_state_count, 2 * fedl_model_param_count(m));
    assert_int_equal(s.micro_batch, 10);
    assert_non_null(strstr(s.config_text, "optimizer=adamw\n"));
    run_steps(t, 17); /* the end of epoch 2: the cursor moves to (2, 0) */
    fedl_trainer_state(t, NULL, 0, &s);
    assert_int_equal(s.epoch, 2);
    assert_int_equal(s.position, 0);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_is_bit_identical_at_any_step),
        cmocka_unit_test(test_restore_refuses_another_configuration),
        cmocka_unit_test(test_resume_under_another_micro_batch),
        cmocka_unit_test(test_state_reports_the_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
