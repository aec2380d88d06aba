/* test_train.c - the training loop end to end on real Fashion-MNIST:
 * accuracy, bit-for-bit determinism, and no allocation per step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

typedef struct fixture {
    fedl_dataset train, test;
} fixture;

static int load_data(void **state)
{
    static fixture f;
    fedl_error err;
    const char *dir = test_fashion_mnist_dir();
    memset(&f, 0, sizeof f);
    *state = &f;
    if (dir == NULL)
        return 0;
    if (fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, NULL, &f.train, &err) != FEDL_OK ||
        fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TEST, NULL, &f.test, &err) != FEDL_OK) {
        fprintf(stderr, "loading Fashion-MNIST: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int free_data(void **state)
{
    fixture *f = *state;
    fedl_dataset_free(&f->train);
    fedl_dataset_free(&f->test);
    return 0;
}

static fixture *need_data(void **state)
{
    fixture *f = *state;
    if (f->train.count == 0) {
        print_message(
            "SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
        skip();
    }
    return f;
}

static void train_epochs(fedl_model *m, const fedl_dataset *ds, const fedl_train_config *c,
                         int epochs)
{
    fedl_trainer *t;
    fedl_error err;
    assert_int_equal(fedl_trainer_create(m, ds, c, NULL, &t, &err), FEDL_OK);
    for (int e = 0; e < epochs; e++) {
        int done = 0;
        while (!done)
            assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    }
    fedl_trainer_destroy(t);
}

static void test_lenet5_learns_fashion_mnist_subset(void **state)
{
    fixture *f = need_data(state);
    fedl_dataset subset = f->train, test = f->test;
    fedl_model *m;
    fedl_error err;
    fedl_eval_result r;
    fedl_train_config c = fedl_train_config_defaults();
    subset.count = 5000; /* a view of the first 5,000 images */
    test.count = 2000;
    c.batch = 32;
    c.optim.momentum = 0.9f;
    c.lr.base_lr = 0.05f;
    assert_int_equal(fedl_model_create("lenet5", subset.shape, 1, NULL, &m, &err), FEDL_OK);
    train_epochs(m, &subset, &c, 5);
    assert_int_equal(fedl_evaluate(m, &test, 256, NULL, &r, NULL, &err), FEDL_OK);
    print_message("LeNet-5, 5,000 images x 5 epochs: test accuracy %.4f\n", r.accuracy);
    assert_int_equal(r.samples, 2000);
    assert_true(r.accuracy > 0.75);
    fedl_model_destroy(m);
}

static void test_same_seed_gives_bit_identical_weights(void **state)
{
    fixture *f = need_data(state);
    fedl_dataset subset = f->train;
    fedl_model *a, *b, *c;
    fedl_error err;
    fedl_train_config cfg = fedl_train_config_defaults();
    size_t n;
    subset.count = 1000;
    cfg.batch = 16;
    cfg.optim = fedl_optim_defaults(FEDL_OPTIM_ADAMW);
    cfg.lr.base_lr = 1e-3f;
    cfg.seed = 7;
    const char *spec = "conv2d(4,5,stride=2) relu dropout(0.3) flatten dense(10)";
    assert_int_equal(fedl_model_create(spec, subset.shape, 7, NULL, &a, &err), FEDL_OK);
    assert_int_equal(fedl_model_create(spec, subset.shape, 7, NULL, &b, &err), FEDL_OK);
    assert_int_equal(fedl_model_create(spec, subset.shape, 7, NULL, &c, &err), FEDL_OK);
    train_epochs(a, &subset, &cfg, 2);
    train_epochs(b, &subset, &cfg, 2);
    cfg.seed = 8; /* another shuffle */
    train_epochs(c, &subset, &cfg, 2);
    n = fedl_model_param_count(a) * sizeof(float);
    assert_memory_equal(fedl_model_params(a), fedl_model_params(b), n);
    assert_memory_not_equal(fedl_model_params(a), fedl_model_params(c), n);
    fedl_model_destroy(a);
    fedl_model_destroy(b);
    fedl_model_destroy(c);
}

static void test_trainer_step_allocates_nothing(void **state)
{
    fixture *f = need_data(state);
    fedl_dataset subset = f->train;
    fedl_allocator alloc;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_eval_result r;
    int done = 0;
    subset.count = 200;
    c.optim.momentum = 0.9f;
    fedl_allocator_init(&alloc, NULL, NULL);
    assert_int_equal(fedl_model_create("lenet5", subset.shape, 1, &alloc, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &subset, &c, &alloc, &t, &err), FEDL_OK);
    fedl_allocator_reset_peak(&alloc);
    for (int step = 0; step < 100; step++) /* crosses epoch boundaries (7 steps each) */
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_evaluate(t, &subset, &r, NULL, &err), FEDL_OK);
    assert_int_equal(r.samples, 200);
    assert_int_equal(alloc.stats.allocs + alloc.stats.reallocs + alloc.stats.frees, 0);
    assert_int_equal(fedl_trainer_stats(t).global_step, 100);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    assert_int_equal(alloc.stats.live_bytes, 0);
}

static void test_trainer_rejects_mismatched_model(void **state)
{
    fixture *f = need_data(state);
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_train_config c = fedl_train_config_defaults();
    assert_int_equal(fedl_model_create("dense(3)", f->train.shape, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &f->train, &c, NULL, &t, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "3 outputs"));
    fedl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet5_learns_fashion_mnist_subset),
        cmocka_unit_test(test_same_seed_gives_bit_identical_weights),
        cmocka_unit_test(test_trainer_step_allocates_nothing),
        cmocka_unit_test(test_trainer_rejects_mismatched_model),
    };
    return cmocka_run_group_tests(tests, load_data, free_data);
}
