/* test_plan.c - the memory plan: the arena it plans is exactly the arena
 * the trainer takes and hands out, for every layer type, LeNet-5 and the
 * MLP, at every micro-batch; the micro-batch it picks is the largest that
 * fits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

/* A data set of count zero samples of shape, classes classes (planning and
 * buffers only look at its sizes). */
static void make_blank(fedl_dataset *ds, size_t count, fedl_shape shape, int classes)
{
    size_t sample = (size_t)shape.c * shape.h * shape.w;
    memset(ds, 0, sizeof *ds);
    ds->alloc = fedl_allocator_default();
    ds->count = count;
    ds->shape = shape;
    ds->sample_bytes = sample;
    ds->pixels = fedl_mem_alloc(ds->alloc, count * sample);
    ds->labels = fedl_mem_alloc(ds->alloc, count);
    ds->classes = classes;
    ds->scale = 1.0f / 255.0f;
    assert_non_null(ds->pixels);
    assert_non_null(ds->labels);
}

/* The plan for micro-batch m with no budget. */
static fedl_plan plan_at(const fedl_model *m, const fedl_dataset *ds, fedl_train_config c,
                         int micro)
{
    fedl_plan plan;
    fedl_error err;
    c.micro_batch = micro;
    assert_int_equal(fedl_plan_training(m, ds, &c, 0, &plan, &err), FEDL_OK);
    assert_int_equal(plan.micro_batch, micro);
    return plan;
}

/* For each micro-batch m: the trainer's arena is exactly the plan's, all of
 * it is handed out, and the allocator's live bytes are the model's, the
 * arena's and a few KiB of session objects; a reservation made without a
 * trainer takes exactly what the plan says too. */
static void check_exact(const char *spec, fedl_shape shape, int classes, fedl_optim_kind kind)
{
    const int micros[] = {1, 2, 3, 8, 17, 32, 5};
    fedl_dataset ds;
    fedl_allocator alloc;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_train_config c = fedl_train_config_defaults();
    size_t model_live, objects;
    make_blank(&ds, 100, shape, classes);
    fedl_allocator_init(&alloc, NULL, NULL);
    c.batch = 32;
    c.micro_batch = 1;
    c.optim = fedl_optim_defaults(kind);
    c.optim.momentum = kind == FEDL_OPTIM_SGD ? 0.9f : 0.0f;
    if (fedl_model_create(spec, shape, 1, &alloc, &m, &err) != FEDL_OK)
        fail_msg("%s: %s", spec, err.message);
    model_live = fedl_allocator_stats(&alloc).live_bytes;
    assert_int_equal(fedl_trainer_create(m, &ds, &c, &alloc, &t, &err), FEDL_OK);
    objects = fedl_allocator_stats(&alloc).live_bytes - model_live -
              (fedl_trainer_arena(t)->capacity + FEDL_ARENA_SLACK);
    assert_true(objects < 8192); /* the trainer, the optimiser object, the configuration text */
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        fedl_plan plan = plan_at(m, &ds, c, micros[i]);
        const fedl_arena *arena;
        assert_int_equal(fedl_trainer_set_micro_batch(t, micros[i], &err), FEDL_OK);
        arena = fedl_trainer_arena(t);
        if (arena->capacity != plan.arena || arena->used != plan.arena)
            fail_msg("%s, micro-batch %d: arena %zu bytes, %zu handed out; plan %zu", spec,
                     micros[i], arena->capacity, arena->used, plan.arena);
        assert_int_equal(plan.arena,
                         plan.optimizer + plan.order + plan.activations + plan.batch_buffers);
        assert_int_equal(plan.total, plan.params + plan.grads + plan.arena + FEDL_ARENA_SLACK);
        assert_int_equal(fedl_allocator_stats(&alloc).live_bytes,
                         model_live + objects + plan.arena + FEDL_ARENA_SLACK);
        assert_int_equal(fedl_model_reserved_bytes(m), plan.activations);
    }
    fedl_trainer_destroy(t);
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, model_live);
    assert_int_equal(fedl_model_reserved_batch(m), 0); /* the arena was unbound */
    /* a reservation without a trainer takes exactly what the plan says */
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        assert_int_equal(fedl_model_reserve(m, micros[i], &err), FEDL_OK);
        assert_int_equal(fedl_allocator_stats(&alloc).live_bytes - model_live,
                         fedl_model_activation_bytes(m, micros[i]));
    }
    fedl_model_destroy(m);
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    fedl_dataset_free(&ds);
}

static void test_plan_bytes_are_exact_for_every_layer_type(void **state)
{
    const fedl_shape image = {1, 12, 12}, series = {3, 1, 20};
    (void)state;
    check_exact("dense(10)", image, 10, FEDL_OPTIM_SGD);
    check_exact("conv2d(4,3,pad=1) flatten dense(10)", image, 10, FEDL_OPTIM_SGD);
    check_exact("conv2d(4,3,stride=2,pad=1) relu dense(10)", image, 10, FEDL_OPTIM_ADAM);
    check_exact("conv2d(3,5) maxpool2d(2) flatten dense(10)", image, 10, FEDL_OPTIM_SGD);
    check_exact("conv2d(3,3) avgpool2d(2) leaky_relu sigmoid tanh dense(10)", image, 10,
                FEDL_OPTIM_ADAMW);
    check_exact("conv2d(5,3) global_avgpool dropout(0.5) dense(10)", image, 10, FEDL_OPTIM_SGD);
    check_exact("conv1d(4,3,pad=1) relu conv1d(2,3) flatten dense(10)", series, 10, FEDL_OPTIM_SGD);
}

static void test_plan_bytes_are_exact_for_lenet5_and_the_mlp(void **state)
{
    const fedl_shape image = {1, 28, 28};
    (void)state;
    check_exact("lenet5", image, 10, FEDL_OPTIM_SGD);
    check_exact("lenet5", image, 10, FEDL_OPTIM_ADAM);
    check_exact("mlp", image, 10, FEDL_OPTIM_SGD);
}

static void test_plan_picks_the_largest_micro_batch_that_fits(void **state)
{
    const fedl_shape image = {1, 28, 28};
    fedl_dataset ds;
    fedl_model *m;
    fedl_error err;
    fedl_plan plan;
    fedl_train_config c = fedl_train_config_defaults();
    size_t need8, budget;
    (void)state;
    make_blank(&ds, 1000, image, 10);
    c.batch = 64;
    c.optim.momentum = 0.9f;
    assert_int_equal(fedl_model_create("lenet5", image, 1, NULL, &m, &err), FEDL_OK);

    /* no budget: the whole batch */
    assert_int_equal(fedl_plan_training(m, &ds, &c, 0, &plan, &err), FEDL_OK);
    assert_int_equal(plan.micro_batch, 64);
    assert_true(plan.fits);

    /* a budget whose usable part is exactly what micro-batch 8 needs:
     * budget - budget / 20 = fixed + micro(8) */
    assert_int_equal(fedl_plan_training(m, &ds, &c, 1u << 30, &plan, &err), FEDL_OK);
    need8 = plan.fixed + FEDL_ARENA_SLACK + fedl_plan_micro_bytes(m, &ds, 8);
    for (budget = need8 * 20 / 19 - 40;; budget++)
        if (budget - budget / 20 >= need8)
            break;
    assert_int_equal(fedl_plan_training(m, &ds, &c, budget, &plan, &err), FEDL_OK);
    assert_int_equal(plan.micro_batch, 8);
    assert_int_equal(plan.total, need8);
    assert_non_null(strstr(plan.reason, "micro-batch 8 is the largest that fits"));
    assert_int_equal(fedl_plan_training(m, &ds, &c, budget - 1, &plan, &err), FEDL_OK);
    assert_int_equal(plan.micro_batch, 7);

    /* a cap from the configuration */
    c.micro_batch = 4;
    assert_int_equal(fedl_plan_training(m, &ds, &c, budget, &plan, &err), FEDL_OK);
    assert_int_equal(plan.micro_batch, 4);
    c.micro_batch = 0;

    /* too small: refused, naming the smallest budget that works */
    assert_int_equal(fedl_plan_training(m, &ds, &c, 256u << 10, &plan, &err), FEDL_OK);
    assert_false(plan.fits);
    assert_non_null(strstr(plan.reason, "even micro-batch 1 needs"));
    assert_int_equal(fedl_plan_training(m, &ds, &c, plan.smallest_budget, &plan, &err), FEDL_OK);
    assert_true(plan.fits);
    assert_int_equal(plan.micro_batch, 1);
    fedl_model_destroy(m);
    fedl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_bytes_are_exact_for_every_layer_type),
        cmocka_unit_test(test_plan_bytes_are_exact_for_lenet5_and_the_mlp),
        cmocka_unit_test(test_plan_picks_the_largest_micro_batch_that_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
