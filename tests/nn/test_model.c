/* test_model.c - model specs, presets, parameter layout, initialisation,
 * optimisers, schedules, out-of-memory at every allocation, and the
 * zero-allocation training step. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

static const fedl_shape mnist = {1, 28, 28};

static void expect_spec_error(const char *spec, const char *needle, const char *position)
{
    fedl_model *m = (fedl_model *)0x1;
    fedl_error err = {0};
    assert_int_not_equal(fedl_model_create(spec, mnist, 1, NULL, &m, &err), FEDL_OK);
    assert_null(m);
    if (strstr(err.message, needle) == NULL || (position && !strstr(err.message, position)))
        fail_msg("spec '%s': message '%s' lacks '%s' / '%s'", spec, err.message, needle,
                 position ? position : "");
}

static void test_spec_errors_name_token_and_position(void **state)
{
    (void)state;
    expect_spec_error("conv2d(6,5) relu dense(10) bogus(3)", "unknown layer 'bogus'",
                      "position 27");
    expect_spec_error("dense(10", "missing ')'", NULL);
    expect_spec_error("dense()", "needs argument 'units'", "position 0");
    expect_spec_error("dense(ten)", "bad value 'ten' for units", "position 6");
    expect_spec_error("conv2d(6,5,padd=2)", "has no argument 'padd'", "position 11");
    expect_spec_error("dense(10,bias=1,units=3)", "given twice", NULL);
    expect_spec_error("relu dense(10)x", "unexpected 'x'", "position 14");
    expect_spec_error("conv2d(6,29)", "layer 1 'conv2d(6,29", NULL);
    expect_spec_error("dropout(1.5)", "rate must be in [0, 1)", NULL);
    expect_spec_error("", "empty", NULL);
    expect_spec_error("   ", "empty", NULL);
    expect_spec_error("dense(0)", "units must be positive", NULL);
    expect_spec_error("(3)", "unexpected '(3)'", "position 0");
}

static void test_presets_have_the_expected_parameter_counts(void **state)
{
    fedl_model *m;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_model_create("lenet5", mnist, 1, NULL, &m, &err), FEDL_OK);
    /* 6*25+6 + 16*150+16 + 400*120+120 + 120*84+84 + 84*10+10 */
    assert_int_equal(fedl_model_param_count(m), 61706);
    assert_int_equal(fedl_model_output_shape(m).c, 10);
    assert_int_equal(fedl_model_layer_count(m), 12);
    fedl_model_destroy(m);
    assert_int_equal(fedl_model_create("mlp", mnist, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_model_param_count(m), 784 * 256 + 256 + 256 * 128 + 128 + 1290);
    fedl_model_destroy(m);
    assert_null(fedl_model_preset("resnet"));
}

static void test_spec_param_count_allocates_no_parameters(void **state)
{
    fedl_allocator alloc;
    fedl_model *m;
    fedl_error err;
    size_t count = 0;
    const fedl_shape image = {1, 28, 28};
    (void)state;
    fedl_allocator_init(&alloc, NULL, NULL);
    /* 784 x 100000 weights would be 300 MiB: counting must not allocate them */
    alloc.limit_bytes = 1u << 20;
    assert_int_equal(fedl_spec_param_count("dense(100000)", image, &alloc, &count, &err), FEDL_OK);
    assert_int_equal(count, 784u * 100000u + 100000u);
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    assert_int_equal(fedl_model_create("lenet5", image, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_spec_param_count("lenet5", image, NULL, &count, &err), FEDL_OK);
    assert_int_equal(count, fedl_model_param_count(m));
    fedl_model_destroy(m);
    assert_int_equal(fedl_spec_param_count("dense(10) wat", image, NULL, &count, &err),
                     FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "wat"));
}

static void test_model_create_zeroed_builds_the_same_model_with_zero_parameters(void **state)
{
    const fedl_shape image = {1, 28, 28};
    fedl_model *a, *z;
    fedl_error err;
    const float *p;
    (void)state;
    assert_int_equal(fedl_model_create("lenet5", image, 3, NULL, &a, &err), FEDL_OK);
    assert_int_equal(fedl_model_create_zeroed("lenet5", image, 3, NULL, &z, &err), FEDL_OK);
    assert_string_equal(fedl_model_spec(a), fedl_model_spec(z));
    assert_int_equal(fedl_model_param_count(a), fedl_model_param_count(z));
    assert_int_equal(fedl_model_seed(z), 3);
    p = fedl_model_params(z);
    for (size_t i = 0; i < fedl_model_param_count(z); i++)
        assert_true(p[i] == 0.0f);
    fedl_model_destroy(a);
    fedl_model_destroy(z);
}

static void test_canonical_spec_round_trips(void **state)
{
    fedl_model *a, *b;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_model_create("conv(4,3,pad=1) leakyrelu(0.2) maxpool(2) "
                                       "dropout(0.25) gap linear(5,bias=0,init=glorot)",
                                       (fedl_shape){3, 8, 8}, 3, NULL, &a, &err),
                     FEDL_OK);
    assert_string_equal(fedl_model_spec(a),
                        "conv2d(4,3,stride=1,pad=1) leaky_relu(0.2) maxpool2d(2,stride=2,pad=0) "
                        "dropout(0.25) global_avgpool dense(5,bias=0,init=glorot)");
    assert_int_equal(
        fedl_model_create(fedl_model_spec(a), (fedl_shape){3, 8, 8}, 3, NULL, &b, &err), FEDL_OK);
    assert_string_equal(fedl_model_spec(a), fedl_model_spec(b));
    assert_int_equal(fedl_model_param_count(a), fedl_model_param_count(b));
    assert_memory_equal(fedl_model_params(a), fedl_model_params(b),
                        fedl_model_param_count(a) * sizeof(float));
    fedl_model_destroy(a);
    fedl_model_destroy(b);
}

static uint32_t params_crc(fedl_model *m)
{
    return fedl_crc32c(0, fedl_model_params(m), fedl_model_param_count(m) * sizeof(float));
}

static void test_init_is_deterministic_and_bounded(void **state)
{
    fedl_model *a, *b, *c;
    fedl_error err;
    fedl_layer_info info;
    const float *p;
    float bound = sqrtf(6.0f / 25.0f); /* He uniform, fan_in 1*5*5 of conv1 */
    (void)state;
    assert_int_equal(fedl_model_create("lenet5", mnist, 42, NULL, &a, &err), FEDL_OK);
    assert_int_equal(fedl_model_create("lenet5", mnist, 42, NULL, &b, &err), FEDL_OK);
    assert_int_equal(fedl_model_create("lenet5", mnist, 43, NULL, &c, &err), FEDL_OK);
    assert_int_equal(params_crc(a), params_crc(b));
    assert_int_not_equal(params_crc(a), params_crc(c));
    fedl_model_layer_info(a, 0, &info);
    p = fedl_model_params(a);
    for (size_t i = 0; i < 150; i++)
        assert_true(fabsf(p[i]) <= bound);
    for (size_t i = 150; i < 156; i++)
        assert_true(p[i] == 0.0f); /* biases start at zero */
    fedl_model_destroy(a);
    fedl_model_destroy(b);
    fedl_model_destroy(c);
}

/* The first weights of LeNet-5 with seed 1 are a pure function of Philox and
 * the He bound: this pins them on every platform and word size. */
static void test_init_values_are_platform_independent(void **state)
{
    fedl_model *m;
    fedl_error err;
    fedl_rng rng;
    float bound = sqrtf(6.0f / 25.0f);
    (void)state;
    assert_int_equal(fedl_model_create("lenet5", mnist, 1, NULL, &m, &err), FEDL_OK);
    fedl_rng_init(&rng, 1, 0);
    for (int i = 0; i < 150; i++) {
        float expected = (2.0f * fedl_rng_uniform(&rng) - 1.0f) * bound;
        assert_true(fedl_model_params(m)[i] == expected);
    }
    fedl_model_destroy(m);
}

static void test_forward_requires_reserve_and_respects_batch(void **state)
{
    fedl_model *m;
    fedl_error err;
    const float *out;
    float x[2 * 784] = {0};
    (void)state;
    assert_int_equal(fedl_model_create("mlp", mnist, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_model_forward(m, x, 1, 0, &out, &err), FEDL_ERR_STATE);
    assert_non_null(strstr(err.message, "fedl_model_reserve"));
    assert_int_equal(fedl_model_reserve(m, 1, &err), FEDL_OK);
    assert_int_equal(fedl_model_forward(m, x, 2, 0, &out, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_model_forward(m, x, 1, 0, &out, &err), FEDL_OK);
    assert_int_equal(fedl_model_backward(m, out, NULL, &err), FEDL_ERR_STATE);
    assert_int_equal(fedl_model_reserved_bytes(m), fedl_model_activation_bytes(m, 1));
    fedl_model_destroy(m);
}

/* One full training step (forward, loss, backward, optimiser) through a
 * given allocator; returns the first failing status. */
static fedl_status build_and_step(fedl_allocator *alloc, fedl_optim_kind kind, fedl_error *err)
{
    fedl_model *m = NULL;
    fedl_optim *o = NULL;
    fedl_optim_config config = fedl_optim_defaults(kind);
    float x[4 * 784];
    int32_t labels[4] = {1, 2, 3, 4};
    float dlogits[4 * 10];
    const float *out;
    double loss;
    fedl_status st;
    for (int i = 0; i < 4 * 784; i++)
        x[i] = (float)(i % 17) / 17.0f;
    config.momentum = kind == FEDL_OPTIM_SGD ? 0.9f : 0.0f;
    st = fedl_model_create("lenet5", mnist, 1, alloc, &m, err);
    if (st == FEDL_OK)
        st = fedl_model_reserve(m, 4, err);
    if (st == FEDL_OK)
        st = fedl_optim_create(&config, fedl_model_param_count(m), alloc, &o, err);
    if (st == FEDL_OK)
        st = fedl_model_forward(m, x, 4, 1, &out, err);
    if (st == FEDL_OK)
        st = fedl_loss_softmax_cross_entropy(out, labels, 4, 10, 0.25f, &loss, dlogits, err);
    if (st == FEDL_OK)
        st = fedl_model_backward(m, dlogits, NULL, err);
    if (st == FEDL_OK)
        fedl_optim_step(o, fedl_model_params(m), fedl_model_grads(m), 0.1f);
    fedl_optim_destroy(o);
    fedl_model_destroy(m);
    return st;
}

static void test_every_allocation_failure_is_reported_without_leaks(void **state)
{
    (void)state;
    for (int kind = FEDL_OPTIM_SGD; kind <= FEDL_OPTIM_ADAMW; kind++) {
        uint64_t n;
        for (n = 1; n < 1000; n++) {
            test_failing_alloc hook = {0, n};
            fedl_allocator a;
            fedl_error err = {0};
            fedl_status st;
            fedl_allocator_init(&a, test_failing_alloc_fn, &hook);
            st = build_and_step(&a, (fedl_optim_kind)kind, &err);
            assert_int_equal(a.stats.live_bytes, 0); /* nothing leaked */
            if (hook.requests < n) {                 /* ran to the end: no Nth request */
                assert_int_equal(st, FEDL_OK);
                break;
            }
            assert_int_equal(st, FEDL_ERR_NOMEM);
            assert_true(strlen(err.message) > 0);
        }
        assert_true(n > 3 && n < 1000);
    }
}

static void test_training_step_allocates_nothing_in_steady_state(void **state)
{
    fedl_allocator a;
    fedl_model *m;
    fedl_optim *o;
    fedl_error err;
    fedl_optim_config config = fedl_optim_defaults(FEDL_OPTIM_ADAM);
    float x[8 * 784];
    int32_t labels[8];
    float dlogits[8 * 10];
    (void)state;
    for (int i = 0; i < 8 * 784; i++)
        x[i] = (float)((i * 7) % 13) / 13.0f;
    for (int i = 0; i < 8; i++)
        labels[i] = i;
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_model_create("conv2d(4,3,pad=1) relu maxpool2d(2) dropout(0.2) "
                                       "conv2d(8,3) tanh avgpool2d(2) flatten dense(10)",
                                       mnist, 1, &a, &m, &err),
                     FEDL_OK);
    assert_int_equal(fedl_model_reserve(m, 8, &err), FEDL_OK);
    assert_int_equal(fedl_optim_create(&config, fedl_model_param_count(m), &a, &o, &err), FEDL_OK);
    fedl_allocator_reset_peak(&a);
    for (int step = 0; step < 5; step++) {
        const float *out;
        double loss;
        fedl_model_set_step(m, (uint64_t)step);
        assert_int_equal(fedl_model_forward(m, x, 8, 1, &out, &err), FEDL_OK);
        assert_int_equal(
            fedl_loss_softmax_cross_entropy(out, labels, 8, 10, 0.125f, &loss, dlogits, &err),
            FEDL_OK);
        fedl_model_zero_grads(m);
        assert_int_equal(fedl_model_backward(m, dlogits, NULL, &err), FEDL_OK);
        fedl_optim_step(o, fedl_model_params(m), fedl_model_grads(m), 0.01f);
    }
    assert_int_equal(a.stats.allocs, 0);
    assert_int_equal(a.stats.reallocs, 0);
    assert_int_equal(a.stats.frees, 0);
    fedl_optim_destroy(o);
    fedl_model_destroy(m);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_zero_grads_then_backward_equals_fresh_gradient_and_accumulates(void **state)
{
    fedl_model *m;
    fedl_error err;
    const float *out;
    float x[3 * 36], dout[3 * 4];
    float *first, *g;
    size_t n;
    (void)state;
    for (int i = 0; i < 3 * 36; i++)
        x[i] = (float)((i * 5) % 11) / 11.0f - 0.4f;
    for (int i = 0; i < 12; i++)
        dout[i] = (float)(i % 5) - 2.0f;
    assert_int_equal(fedl_model_create("conv2d(2,3) relu flatten dense(4)", (fedl_shape){1, 6, 6},
                                       3, NULL, &m, &err),
                     FEDL_OK);
    assert_int_equal(fedl_model_reserve(m, 3, &err), FEDL_OK);
    n = fedl_model_param_count(m);
    g = fedl_model_grads(m);
    for (size_t i = 0; i < n; i++)
        g[i] = 1e6f; /* garbage a lazy zero must not leak */
    fedl_model_zero_grads(m);
    g = fedl_model_grads(m);
    for (size_t i = 0; i < n; i++)
        assert_true(g[i] == 0.0f);
    for (size_t i = 0; i < n; i++)
        g[i] = 1e6f;
    fedl_model_zero_grads(m);
    assert_int_equal(fedl_model_forward(m, x, 3, 1, &out, &err), FEDL_OK);
    assert_int_equal(fedl_model_backward(m, dout, NULL, &err), FEDL_OK);
    first = malloc(n * sizeof *first);
    assert_non_null(first);
    memcpy(first, fedl_model_grads(m), n * sizeof *first);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(first[i]) < 1e5f); /* overwritten, not added to garbage */
    assert_int_equal(fedl_model_backward(m, dout, NULL, &err), FEDL_OK);
    g = fedl_model_grads(m);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(g[i] - 2.0f * first[i]) <= 1e-5f * (1.0f + fabsf(first[i]))); /* adds */
    free(first);
    fedl_model_destroy(m);
}

static void test_dropout_masks_depend_on_step_and_vanish_in_eval(void **state)
{
    fedl_model *m;
    fedl_error err;
    const float *out;
    float x[64], first[64], again[64];
    int zeros = 0;
    (void)state;
    for (int i = 0; i < 64; i++)
        x[i] = 1.0f;
    assert_int_equal(fedl_model_create("dropout(0.5)", (fedl_shape){64, 1, 1}, 9, NULL, &m, &err),
                     FEDL_OK);
    assert_int_equal(fedl_model_reserve(m, 1, &err), FEDL_OK);
    fedl_model_set_step(m, 3);
    assert_int_equal(fedl_model_forward(m, x, 1, 1, &out, &err), FEDL_OK);
    memcpy(first, out, sizeof first);
    for (int i = 0; i < 64; i++) {
        assert_true(first[i] == 0.0f || first[i] == 2.0f);
        zeros += first[i] == 0.0f;
    }
    assert_in_range(zeros, 16, 48);
    fedl_model_set_step(m, 3);
    fedl_model_forward(m, x, 1, 1, &out, &err);
    memcpy(again, out, sizeof again);
    assert_memory_equal(first, again, sizeof first);
    fedl_model_set_step(m, 4);
    fedl_model_forward(m, x, 1, 1, &out, &err);
    assert_memory_not_equal(first, out, sizeof first);
    fedl_model_forward(m, x, 1, 0, &out, &err);
    for (int i = 0; i < 64; i++)
        assert_true(out[i] == 1.0f);
    fedl_model_destroy(m);
}

static void test_sgd_momentum_follows_torch_rule(void **state)
{
    fedl_optim *o;
    fedl_error err;
    fedl_optim_config c = fedl_optim_defaults(FEDL_OPTIM_SGD);
    float p[1] = {1.0f}, g[1] = {0.5f};
    (void)state;
    c.momentum = 0.9f;
    c.weight_decay = 0.1f;
    assert_int_equal(fedl_optim_create(&c, 1, NULL, &o, &err), FEDL_OK);
    /* step 1: g' = 0.5 + 0.1 * 1 = 0.6; buf = 0.6; p = 1 - 0.1 * 0.6 = 0.94 */
    fedl_optim_step(o, p, g, 0.1f);
    assert_float_equal(p[0], 0.94f, 1e-7);
    /* step 2: g' = 0.5 + 0.094 = 0.594; buf = 0.54 + 0.594 = 1.134; p = 0.94 - 0.1134 */
    fedl_optim_step(o, p, g, 0.1f);
    assert_float_equal(p[0], 0.8266f, 1e-6);
    assert_int_equal(fedl_optim_step_count(o), 2);
    fedl_optim_destroy(o);
    c.nesterov = 1;
    c.momentum = 0.0f;
    assert_int_equal(fedl_optim_create(&c, 1, NULL, &o, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "Nesterov"));
}

static void test_adam_first_step_moves_by_lr(void **state)
{
    fedl_optim *o;
    fedl_error err;
    fedl_optim_config c = fedl_optim_defaults(FEDL_OPTIM_ADAM);
    float p[2] = {1.0f, -1.0f}, g[2] = {3.0f, -0.001f};
    size_t count;
    (void)state;
    assert_int_equal(fedl_optim_create(&c, 2, NULL, &o, &err), FEDL_OK);
    fedl_optim_step(o, p, g, 0.01f);
    /* the bias-corrected first Adam step is lr * sign(g) (up to eps) */
    assert_float_equal(p[0], 0.99f, 1e-6);
    assert_float_equal(p[1], -0.99f, 1e-5);
    assert_non_null(fedl_optim_state(o, &count));
    assert_int_equal(count, 4);
    fedl_optim_destroy(o);
}

static void test_lr_schedules(void **state)
{
    fedl_lr_schedule s = {FEDL_LR_STEP, 0.1f, 10, 0.5f, 0, 0.0f};
    (void)state;
    assert_float_equal(fedl_lr_at(&s, 0), 0.1f, 1e-9);
    assert_float_equal(fedl_lr_at(&s, 9), 0.1f, 1e-9);
    assert_float_equal(fedl_lr_at(&s, 10), 0.05f, 1e-9);
    assert_float_equal(fedl_lr_at(&s, 25), 0.025f, 1e-9);
    s.kind = FEDL_LR_COSINE;
    s.total_steps = 100;
    s.min_lr = 0.01f;
    assert_float_equal(fedl_lr_at(&s, 0), 0.1f, 1e-7);
    assert_float_equal(fedl_lr_at(&s, 50), 0.055f, 1e-7);
    assert_float_equal(fedl_lr_at(&s, 100), 0.01f, 1e-7);
    assert_float_equal(fedl_lr_at(&s, 500), 0.01f, 1e-7);
    s.kind = FEDL_LR_CONSTANT;
    assert_float_equal(fedl_lr_at(&s, 12345), 0.1f, 1e-9);
}

static void test_loss_rejects_bad_labels_and_matches_closed_form(void **state)
{
    float logits[4] = {0.0f, 0.0f, 1.0f, -1.0f};
    int32_t labels[2] = {1, 0};
    float d[4];
    double loss;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_loss_softmax_cross_entropy(logits, labels, 2, 2, 0.5f, &loss, d, &err),
                     FEDL_OK);
    /* log 2 + log(1 + e^-2) */
    assert_float_equal(loss, log(2.0) + log(1.0 + exp(-2.0)), 1e-6);
    assert_float_equal(d[0], 0.25f, 1e-7);
    assert_float_equal(d[1], -0.25f, 1e-7);
    labels[1] = 2;
    assert_int_equal(fedl_loss_softmax_cross_entropy(logits, labels, 2, 2, 0.5f, &loss, d, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "sample 1"));
}

static void test_model_file_round_trips_and_detects_corruption(void **state)
{
    fedl_model *m, *loaded;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    const char *dir = test_make_temp_dir("model");
    char path[512];
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/m.fedl", dir);
    assert_int_equal(fedl_model_create("lenet5", mnist, 5, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_model_save(m, path, &err), FEDL_OK);
    assert_int_equal(fedl_model_load(path, NULL, &loaded, &err), FEDL_OK);
    assert_string_equal(fedl_model_spec(loaded), fedl_model_spec(m));
    assert_memory_equal(fedl_model_params(loaded), fedl_model_params(m),
                        fedl_model_param_count(m) * sizeof(float));
    fedl_model_destroy(loaded);

    assert_int_equal(fedl_model_serialize(m, NULL, &bytes, &length, &err), FEDL_OK);
    /* every single-bit flip in a sample of positions is caught */
    for (size_t pos = 0; pos < length; pos += 97) {
        bytes[pos] ^= 0x10;
        assert_int_equal(fedl_model_deserialize(bytes, length, "flip", NULL, &loaded, &err),
                         FEDL_ERR_FORMAT);
        assert_null(loaded);
        bytes[pos] ^= 0x10;
    }
    assert_int_equal(fedl_model_deserialize(bytes, length - 1, "short", NULL, &loaded, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "truncated"));
    assert_int_equal(fedl_model_deserialize(bytes, 10, "tiny", NULL, &loaded, &err),
                     FEDL_ERR_FORMAT);
    fedl_mem_free(NULL, bytes, length);
    assert_int_equal(fedl_model_load("/nonexistent/m.fedl", NULL, &loaded, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent/m.fedl"));
    fedl_model_destroy(m);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors_name_token_and_position),
        cmocka_unit_test(test_presets_have_the_expected_parameter_counts),
        cmocka_unit_test(test_spec_param_count_allocates_no_parameters),
        cmocka_unit_test(test_model_create_zeroed_builds_the_same_model_with_zero_parameters),
        cmocka_unit_test(test_canonical_spec_round_trips),
        cmocka_unit_test(test_init_is_deterministic_and_bounded),
        cmocka_unit_test(test_init_values_are_platform_independent),
        cmocka_unit_test(test_forward_requires_reserve_and_respects_batch),
        cmocka_unit_test(test_every_allocation_failure_is_reported_without_leaks),
        cmocka_unit_test(test_training_step_allocates_nothing_in_steady_state),
        cmocka_unit_test(test_zero_grads_then_backward_equals_fresh_gradient_and_accumulates),
        cmocka_unit_test(test_dropout_masks_depend_on_step_and_vanish_in_eval),
        cmocka_unit_test(test_sgd_momentum_follows_torch_rule),
        cmocka_unit_test(test_adam_first_step_moves_by_lr),
        cmocka_unit_test(test_lr_schedules),
        cmocka_unit_test(test_loss_rejects_bad_labels_and_matches_closed_form),
        cmocka_unit_test(test_model_file_round_trips_and_detects_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
