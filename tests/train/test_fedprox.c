/*
 * test_fedprox.c - the FedProx proximal term in local training: mu = 0 is
 * plain training bit for bit; mu > 0 adds exactly mu (w - ref) to each
 * step's gradients and keeps the weights nearer the reference; a mu
 * without reference weights is refused; the setting is part of the
 * configuration a checkpoint must match.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

static const char *spec = "flatten dense(8) relu dense(4)";

/* Train `steps` steps from the model's seed-1 weights; returns |w - w0|^2
 * and leaves the weights in out (count floats). */
static double train(const fedl_dataset *ds, float mu, int steps, float *out, size_t *count,
                    const char **config_text_has)
{
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    float *ref;
    double distance = 0.0;
    int done;
    assert_int_equal(fedl_model_create(spec, ds->shape, 1, NULL, &m, &err), FEDL_OK);
    *count = fedl_model_param_count(m);
    ref = test_malloc(*count * sizeof(float));
    memcpy(ref, fedl_model_params(m), *count * sizeof(float));
    c.batch = 16;
    c.lr.base_lr = 0.1f;
    c.proximal_mu = mu;
    c.proximal_ref = mu > 0.0f ? ref : NULL;
    assert_int_equal(fedl_trainer_create(m, ds, &c, NULL, &t, &err), FEDL_OK);
    if (config_text_has != NULL)
        *config_text_has =
            strstr(fedl_trainer_config_text(t), "proximal_mu=") != NULL ? "yes" : "no";
    for (int i = 0; i < steps; i++)
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    memcpy(out, fedl_model_params(m), *count * sizeof(float));
    for (size_t i = 0; i < *count; i++)
        distance += ((double)out[i] - ref[i]) * ((double)out[i] - ref[i]);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    test_free(ref);
    return distance;
}

static void test_proximal_term_pulls_towards_the_reference(void **state)
{
    fedl_dataset ds;
    float plain[1024], zero[1024], prox[1024], strong[1024];
    size_t n;
    const char *has_plain, *has_prox;
    double d_plain, d_prox, d_strong;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 160, 5), 0);
    d_plain = train(&ds, 0.0f, 40, plain, &n, &has_plain);
    assert_true(n <= 1024);
    train(&ds, 0.0f, 40, zero, &n, NULL);
    assert_memory_equal(plain, zero, n * sizeof(float)); /* off: plain training */
    d_prox = train(&ds, 1.0f, 40, prox, &n, &has_prox);
    d_strong = train(&ds, 10.0f, 40, strong, &n, NULL);
    assert_true(d_prox < d_plain);
    assert_true(d_strong < d_prox);
    assert_string_equal(has_plain, "no");
    assert_string_equal(has_prox, "yes");
    fedl_dataset_free(&ds);
}

/* One step by hand: SGD without momentum, so w1 = w0 - lr (g + mu (w0 - ref))
 * with ref = w0 gives the plain step; a ref shifted by +1 adds lr mu. */
static void test_proximal_gradient_is_exactly_mu_times_the_distance(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *a, *b;
    fedl_trainer *ta, *tb;
    fedl_error err;
    float *ref;
    size_t n;
    int done;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 64, 9), 0);
    assert_int_equal(fedl_model_create(spec, ds.shape, 1, NULL, &a, &err), FEDL_OK);
    assert_int_equal(fedl_model_create(spec, ds.shape, 1, NULL, &b, &err), FEDL_OK);
    n = fedl_model_param_count(a);
    ref = test_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        ref[i] = fedl_model_params(a)[i] + 1.0f;
    c.batch = 16;
    c.lr.base_lr = 0.125f;
    assert_int_equal(fedl_trainer_create(a, &ds, &c, NULL, &ta, &err), FEDL_OK);
    c.proximal_mu = 0.5f;
    c.proximal_ref = ref;
    assert_int_equal(fedl_trainer_create(b, &ds, &c, NULL, &tb, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_step(ta, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_step(tb, &done, &err), FEDL_OK);
    for (size_t i = 0; i < n; i++) /* g + 0.5 (w - (w + 1)) = g - 0.5: w moves 0.0625 more */
        assert_float_equal(fedl_model_params(b)[i] - fedl_model_params(a)[i], 0.0625f, 1e-6);
    fedl_trainer_destroy(ta);
    fedl_trainer_destroy(tb);
    fedl_model_destroy(a);
    fedl_model_destroy(b);
    test_free(ref);
    fedl_dataset_free(&ds);
}

static void test_proximal_mu_without_reference_is_refused(void **state)
{
    fedl_dataset ds;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m;
    fedl_trainer *t = NULL;
    fedl_error err = {0};
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 32, 1), 0);
    assert_int_equal(fedl_model_create(spec, ds.shape, 1, NULL, &m, &err), FEDL_OK);
    c.proximal_mu = 0.1f;
    assert_int_equal(fedl_trainer_create(m, &ds, &c, NULL, &t, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "reference weights"));
    assert_null(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proximal_term_pulls_towards_the_reference),
        cmocka_unit_test(test_proximal_gradient_is_exactly_mu_times_the_distance),
        cmocka_unit_test(test_proximal_mu_without_reference_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
