/* test_micro_batch.c - gradient accumulation over micro-batches: the same
 * effective batch gives the same optimiser updates (up to the order of the
 * gradient sums), with the same dropout masks; the micro-batch can change
 * between steps; a steady-state step allocates nothing. */
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

#define SAMPLES 300
#define BATCH 32 /* 9 full batches and one of 12 per epoch */

static const char *spec = "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dropout(0.3) dense(4)";

typedef struct run {
    float *weights;
    size_t count;
    double epoch_loss[3]; /* mean loss of each epoch */
} run;

/* micro_at(step) gives the micro-batch to use from that step on (0: keep). */
typedef int (*micro_schedule)(uint64_t step);

static void train_with(const fedl_dataset *ds, int micro, micro_schedule schedule,
                       fedl_allocator *alloc, run *out)
{
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    c.batch = BATCH;
    c.micro_batch = micro;
    c.seed = 4;
    c.optim.momentum = 0.9f;
    c.lr.base_lr = 0.05f;
    assert_int_equal(fedl_model_create(spec, ds->shape, 2, alloc, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, ds, &c, alloc, &t, &err), FEDL_OK);
    for (int e = 0; e < 3; e++) {
        int done = 0;
        while (!done) {
            if (schedule != NULL) {
                int next = schedule(fedl_trainer_stats(t).global_step);
                if (next > 0)
                    assert_int_equal(fedl_trainer_set_micro_batch(t, next, &err), FEDL_OK);
            }
            assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
        }
        out->epoch_loss[e] =
            fedl_trainer_stats(t).loss_sum / (double)fedl_trainer_stats(t).epoch_seen;
    }
    out->count = fedl_model_param_count(m);
    out->weights = test_malloc(out->count * sizeof(float));
    memcpy(out->weights, fedl_model_params(m), out->count * sizeof(float));
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
}

static void train(const fedl_dataset *ds, int micro, micro_schedule schedule, run *out)
{
    train_with(ds, micro, schedule, NULL, out);
}

static void assert_close(const run *a, const run *b, double tolerance)
{
    double diff = test_max_rel_diff(a->weights, b->weights, a->count);
    print_message("weights max rel diff %.3g; epoch losses %.6f/%.6f %.6f/%.6f %.6f/%.6f\n", diff,
                  a->epoch_loss[0], b->epoch_loss[0], a->epoch_loss[1], b->epoch_loss[1],
                  a->epoch_loss[2], b->epoch_loss[2]);
    assert_true(diff < tolerance);
    for (int e = 0; e < 3; e++)
        assert_true(fabs(a->epoch_loss[e] - b->epoch_loss[e]) <= tolerance * b->epoch_loss[e]);
}

static void test_micro_batch_equal_to_batch_is_bit_identical(void **state)
{
    fedl_dataset ds;
    run whole, same;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 3), 0);
    train(&ds, 0, NULL, &whole);
    train(&ds, BATCH, NULL, &same);
    assert_memory_equal(whole.weights, same.weights, whole.count * sizeof(float));
    test_free(whole.weights);
    test_free(same.weights);
    fedl_dataset_free(&ds);
}

static void test_micro_batches_give_the_same_updates(void **state)
{
    const int micros[] = {8, 5, 1};
    fedl_dataset ds;
    run whole;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 3), 0);
    train(&ds, 0, NULL, &whole);
    assert_true(whole.epoch_loss[2] < whole.epoch_loss[0]); /* it learns */
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        run split;
        train(&ds, micros[i], NULL, &split);
        /* only the order of the gradient sums differs: float rounding */
        assert_close(&split, &whole, 1e-5);
        test_free(split.weights);
    }
    test_free(whole.weights);
    fedl_dataset_free(&ds);
}

static int changing(uint64_t step)
{
    switch (step) {
    case 3:
        return 5;
    case 11:
        return 13;
    case 17:
        return 2;
    case 24:
        return 32;
    default:
        return 0;
    }
}

static void test_changing_the_micro_batch_mid_training_keeps_training_correct(void **state)
{
    fedl_dataset ds;
    run whole, changed;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 3), 0);
    train(&ds, 0, NULL, &whole);
    train(&ds, 0, changing, &changed);
    assert_close(&changed, &whole, 1e-5);
    test_free(whole.weights);
    test_free(changed.weights);
    fedl_dataset_free(&ds);
}

/* Every re-plan resizes the arena; with a hook that moves every block, the
 * optimiser state and the shuffle order must move with it. Shrinking to
 * micro-batch 5 and growing back to the whole batch before each step (two
 * moves per step, Adam's two moments in the arena) gives weights
 * bit-identical to a run that never re-planned. */
static void test_replanning_moves_the_arena_and_nothing_is_lost(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_allocator moving;
    unsigned turn = 0;
    fedl_model *m[2];
    fedl_trainer *t[2];
    fedl_error err;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 3), 0);
    fedl_allocator_init(&moving, test_moving_alloc_fn, &turn);
    c.batch = BATCH;
    c.seed = 4;
    c.optim = fedl_optim_defaults(FEDL_OPTIM_ADAM);
    c.lr.base_lr = 0.01f;
    for (int k = 0; k < 2; k++) {
        fedl_allocator *alloc = k == 0 ? NULL : &moving;
        assert_int_equal(fedl_model_create(spec, ds.shape, 2, alloc, &m[k], &err), FEDL_OK);
        assert_int_equal(fedl_trainer_create(m[k], &ds, &c, alloc, &t[k], &err), FEDL_OK);
    }
    for (int step = 0; step < 25; step++) { /* more than two epochs */
        const unsigned char *base = fedl_trainer_arena(t[1])->base;
        int done;
        assert_int_equal(fedl_trainer_set_micro_batch(t[1], 5, &err), FEDL_OK);
        assert_ptr_not_equal(fedl_trainer_arena(t[1])->base, base);
        assert_int_equal(fedl_trainer_set_micro_batch(t[1], BATCH, &err), FEDL_OK);
        for (int k = 0; k < 2; k++)
            assert_int_equal(fedl_trainer_step(t[k], &done, &err), FEDL_OK);
    }
    assert_memory_equal(fedl_model_params(m[0]), fedl_model_params(m[1]),
                        fedl_model_param_count(m[0]) * sizeof(float));
    for (int k = 0; k < 2; k++) {
        fedl_trainer_destroy(t[k]);
        fedl_model_destroy(m[k]);
    }
    assert_int_equal(moving.stats.live_bytes, 0);
    fedl_dataset_free(&ds);
}

static void test_micro_batched_step_allocates_nothing(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_allocator alloc;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_mem_stats before, after;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 3), 0);
    fedl_allocator_init(&alloc, NULL, NULL);
    c.batch = BATCH;
    c.micro_batch = 7;
    c.optim = fedl_optim_defaults(FEDL_OPTIM_ADAM);
    assert_int_equal(fedl_model_create(spec, ds.shape, 2, &alloc, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, &alloc, &t, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(t), 7);
    before = fedl_allocator_stats(&alloc);
    for (int i = 0; i < 100; i++) {
        int done;
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    }
    after = fedl_allocator_stats(&alloc);
    assert_int_equal(after.allocs, before.allocs);
    assert_int_equal(after.reallocs, before.reallocs);
    assert_int_equal(after.live_bytes, before.live_bytes);
    /* a smaller micro-batch gives memory back */
    assert_int_equal(fedl_trainer_set_micro_batch(t, 2, &err), FEDL_OK);
    assert_true(fedl_allocator_stats(&alloc).live_bytes < after.live_bytes);
    assert_int_equal(fedl_trainer_set_micro_batch(t, 0, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_trainer_set_micro_batch(t, 1000, &err), FEDL_OK); /* = the batch */
    assert_int_equal(fedl_trainer_micro_batch(t), BATCH);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    fedl_dataset_free(&ds);
}

/* Resident set size of this process in bytes (/proc/self/statm). */
static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * 4096u;
}

static void test_requested_budget_shrinks_the_micro_batch_and_gives_memory_back(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_allocator alloc;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_plan plan;
    size_t live_before, rss_before, freed;
    int done;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 1024, 3), 0);
    fedl_allocator_init(&alloc, NULL, NULL);
    c.batch = 512; /* activations of dense(2048) at 512: several MiB, mmap'd by malloc */
    assert_int_equal(fedl_model_create("dense(2048) relu dense(4)", ds.shape, 2, &alloc, &m, &err),
                     FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, &alloc, &t, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(t), 512);
    live_before = fedl_allocator_stats(&alloc).live_bytes;
    rss_before = resident_bytes();

    /* a budget that allows micro-batch 64: the next step re-plans */
    c.micro_batch = 64;
    assert_int_equal(fedl_plan_training(m, &ds, &c, 0, &plan, &err), FEDL_OK);
    fedl_trainer_request_budget(t, plan.total * 20 / 19 + 1);
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(t), 64);
    freed = live_before - fedl_allocator_stats(&alloc).live_bytes;
    assert_true(freed > (4u << 20));
    print_message("micro-batch 512 -> 64: %zu bytes freed, RSS %zu -> %zu\n", freed, rss_before,
                  resident_bytes());
#ifndef __SANITIZE_ADDRESS__ /* ASan keeps freed memory in quarantine */
    assert_true(resident_bytes() + freed / 2 < rss_before); /* given back to the system */
#endif

    /* too small: the step fails cleanly, the trainer keeps going later */
    fedl_trainer_request_budget(t, 1000);
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_ERR_NOMEM);
    assert_non_null(strstr(err.message, "even micro-batch 1 needs"));
    assert_int_equal(fedl_trainer_micro_batch(t), 64);
    fedl_trainer_request_budget(t, 0); /* unlimited: the whole batch again */
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(t), 512);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_micro_batch_equal_to_batch_is_bit_identical),
        cmocka_unit_test(test_micro_batches_give_the_same_updates),
        cmocka_unit_test(test_changing_the_micro_batch_mid_training_keeps_training_correct),
        cmocka_unit_test(test_replanning_moves_the_arena_and_nothing_is_lost),
        cmocka_unit_test(test_micro_batched_step_allocates_nothing),
        cmocka_unit_test(test_requested_budget_shrinks_the_micro_batch_and_gives_memory_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
