/* test_plan.c - the memory plan: the micro-batch-dependent bytes it
 * predicts are exactly what the allocator hands out, for every layer type,
 * LeNet-5 and the MLP; the micro-batch it picks is the largest that fits. */
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

/* For each micro-batch m, the allocator's live bytes with the trainer at m,
 * minus those at micro-batch 1, equal the plan's difference exactly. */
static void check_exact(const char *spec, fedl_shape shape, int classes)
{
    const int micros[] = {1, 2, 3, 8, 17, 32};
    fedl_dataset ds;
    fedl_allocator alloc;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_train_config c = fedl_train_config_defaults();
    size_t base_live, base_plan;
    make_blank(&ds, 100, shape, classes);
    fedl_allocator_init(&alloc, NULL, NULL);
    c.batch = 32;
    c.micro_batch = 1;
    c.optim.momentum = 0.9f;
    if (fedl_model_create(spec, shape, 1, &alloc, &m, &err) != FEDL_OK)
        fail_msg("%s: %s", spec, err.message);
    assert_int_equal(fedl_trainer_create(m, &ds, &c, &alloc, &t, &err), FEDL_OK);
    base_live = fedl_allocator_stats(&alloc).live_bytes;
    base_plan = fedl_plan_micro_bytes(m, &ds, 1);
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        size_t live, planned;
        assert_int_equal(fedl_trainer_set_micro_batch(t, micros[i], &err), FEDL_OK);
        live = fedl_allocator_stats(&alloc).live_bytes - base_live;
        planned = fedl_plan_micro_bytes(m, &ds, micros[i]) - base_plan;
        if (live != planned)
            fail_msg("%s, micro-batch %d: allocator %zu bytes over micro-batch 1, plan %zu", spec,
                     micros[i], live, planned);
        assert_int_equal(fedl_model_reserved_bytes(m), fedl_model_activation_bytes(m, micros[i]));
    }
    fedl_trainer_destroy(t);
    /* and absolutely: a reservation takes exactly what the plan says */
    assert_int_equal(fedl_model_reserve(m, 0, &err), FEDL_OK);
    base_live = fedl_allocator_stats(&alloc).live_bytes;
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        assert_int_equal(fedl_model_reserve(m, micros[i], &err), FEDL_OK);
        assert_int_equal(fedl_allocator_stats(&alloc).live_bytes - base_live,
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
    check_exact("dense(10)", image, 10);
    check_exact("conv2d(4,3,pad=1) flatten dense(10)", image, 10);
    check_exact("conv2d(4,3,stride=2,pad=1) relu dense(10)", image, 10);
    check_exact("conv2d(3,5) maxpool2d(2) flatten dense(10)", image, 10);
    check_exact("conv2d(3,3) avgpool2d(2) leaky_relu sigmoid tanh dense(10)", image, 10);
    check_exact("conv2d(5,3) global_avgpool dropout(0.5) dense(10)", image, 10);
    check_exact("conv1d(4,3,pad=1) relu conv1d(2,3) flatten dense(10)", series, 10);
}

static void test_plan_bytes_are_exact_for_lenet5_and_the_mlp(void **state)
{
    const fedl_shape image = {1, 28, 28};
    (void)state;
    check_exact("lenet5", image, 10);
    check_exact("mlp", image, 10);
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
    need8 = plan.fixed + fedl_plan_micro_bytes(m, &ds, 8);
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
