/*
 * test_gradcheck.c - every layer kind's backward against central finite
 * differences of its forward, plus the layer-table conventions (dw
 * accumulates, dx is overwritten, dx == NULL is allowed), direct reference
 * forwards for convolution and pooling, and setup's shape errors.
 *
 * The loss is L = sum_i y_i * r_i with a fixed random r (accumulated in
 * double), so dL/dy = r is the dy handed to backward. Each input element and
 * each parameter is moved by +-eps in float32 and the slope is taken over the
 * step actually made (x + eps rounds), then compared with
 * |num - ana| <= 1e-2 * max(1, |num|) + 2e-3.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/core.h"
#include "nn/layer.h"
#include "support/test_support.h"

#define GC_EPS 1e-2f
#define GC_REL_TOL 1e-2
#define GC_ABS_TOL 2e-3

/* How the test fills x, so no perturbation crosses a kink. */
typedef enum gc_input {
    GC_INPUT_UNIFORM,  /* U(-1, 1) */
    GC_INPUT_NO_ZERO,  /* |x| in [0.05, 1]: relu, leaky_relu */
    GC_INPUT_DISTINCT, /* a permutation of values 0.05 apart: max-pool ties */
    GC_INPUT_WIDE      /* U(-3, 3): sigmoid, tanh away from their linear part */
} gc_input;

typedef struct gc_case {
    const fedl_layer_ops *ops;
    fedl_layer layer; /* hyper-parameters and input shape; setup fills the rest */
    int batch;
    int ws_batch; /* workspace sized for this many samples (<= batch), 0 = batch */
    gc_input input;
    int training;
} gc_case;

/* Everything one layer needs, allocated by the test with exact sizes so the
 * sanitizer build catches any overrun. */
typedef struct gc_buffers {
    fedl_layer l;
    fedl_layer_ctx ctx;
    float *x;     /* (batch, in_size) */
    float *w;     /* (param_count) */
    float *y;     /* (batch, out_size) */
    float *r;     /* (batch, out_size): dL/dy */
    float *dx;    /* (batch, in_size) */
    float *dw;    /* (param_count) */
    int32_t *aux; /* (batch, aux_size) */
    float *ws;    /* (workspace_floats) */
} gc_buffers;

static float uniform(fedl_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * fedl_rng_uniform(rng);
}

static int below(fedl_rng *rng, int n)
{
    return (int)fedl_rng_below(rng, (uint32_t)n);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n > 0 ? n : 1, size);
    assert_non_null(p);
    return p;
}

static void fill_input(float *x, size_t n, gc_input kind, fedl_rng *rng)
{
    if (kind == GC_INPUT_DISTINCT) {
        /* values (i - n/2) * 0.05 in random order: any two differ by more
         * than 2 * eps, so no perturbation changes a window's maximum */
        for (size_t i = 0; i < n; i++)
            x[i] = ((float)i - (float)n / 2.0f) * 0.05f;
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)below(rng, (int)i);
            float t = x[i - 1];
            x[i - 1] = x[j];
            x[j] = t;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (kind == GC_INPUT_NO_ZERO) {
            float m = uniform(rng, 0.05f, 1.0f);
            x[i] = fedl_rng_uniform(rng) < 0.5f ? -m : m;
        } else if (kind == GC_INPUT_WIDE) {
            x[i] = uniform(rng, -3.0f, 3.0f);
        } else {
            x[i] = uniform(rng, -1.0f, 1.0f);
        }
    }
}

/* setup + allocation; returns 0 when setup rejects the shape. */
static int gc_prepare(const gc_case *c, gc_buffers *b, fedl_rng *rng)
{
    fedl_error err;
    size_t ws = 0;
    memset(b, 0, sizeof *b);
    b->l = c->layer;
    b->l.ops = c->ops;
    b->l.in_size = (size_t)b->l.in.c * (size_t)b->l.in.h * (size_t)b->l.in.w;
    fedl_error_clear(&err);
    if (c->ops->setup(&b->l, &err) != FEDL_OK)
        return 0;
    /* setup's bookkeeping must agree with its shapes */
    assert_int_equal(b->l.in_size, (size_t)b->l.in.c * b->l.in.h * b->l.in.w);
    assert_int_equal(b->l.out_size, (size_t)b->l.out.c * b->l.out.h * b->l.out.w);
    assert_true(b->l.out.c > 0 && b->l.out.h > 0 && b->l.out.w > 0);

    if (c->ops->workspace_floats != NULL)
        ws = c->ops->workspace_floats(&b->l, c->ws_batch > 0 ? c->ws_batch : c->batch);
    b->ctx.batch = c->batch;
    b->ctx.training = c->training;
    b->ctx.seed = 12345;
    b->ctx.step = 7;
    b->ctx.accumulate = 1;
    b->ctx.workspace_floats = ws;

    size_t nin = (size_t)c->batch * b->l.in_size, nout = (size_t)c->batch * b->l.out_size;
    b->x = xcalloc(nin, sizeof(float));
    b->dx = xcalloc(nin, sizeof(float));
    b->w = xcalloc(b->l.param_count, sizeof(float));
    b->dw = xcalloc(b->l.param_count, sizeof(float));
    b->y = xcalloc(nout, sizeof(float));
    b->r = xcalloc(nout, sizeof(float));
    b->aux = xcalloc((size_t)c->batch * b->l.aux_size, sizeof(int32_t));
    b->ws = ws > 0 ? xcalloc(ws, sizeof(float)) : NULL;
    b->ctx.workspace = b->ws;

    fill_input(b->x, nin, c->input, rng);
    /* parameters: the layer's own initialiser (must run), then a random
     * bias-sized perturbation of everything so biases are not all zero */
    if (c->ops->init != NULL) {
        fedl_rng init_rng;
        fedl_rng_init(&init_rng, 99, (uint64_t)b->l.index);
        c->ops->init(&b->l, b->w, &init_rng, FEDL_INIT_DEFAULT);
    }
    for (size_t i = 0; i < b->l.param_count; i++)
        b->w[i] += uniform(rng, -0.3f, 0.3f);
    for (size_t i = 0; i < nout; i++)
        b->r[i] = uniform(rng, -1.0f, 1.0f);
    return 1;
}

static void gc_free(gc_buffers *b)
{
    free(b->x);
    free(b->dx);
    free(b->w);
    free(b->dw);
    free(b->y);
    free(b->r);
    free(b->aux);
    free(b->ws);
    memset(b, 0, sizeof *b);
}

static double gc_loss(gc_buffers *b)
{
    size_t nout = (size_t)b->ctx.batch * b->l.out_size;
    double sum = 0.0;
    for (size_t i = 0; i < nout; i++)
        b->y[i] = NAN; /* forward must write every output */
    b->l.ops->forward(&b->l, &b->ctx, b->w, b->x, b->y, b->aux);
    for (size_t i = 0; i < nout; i++)
        sum += (double)b->y[i] * (double)b->r[i];
    return sum;
}

/* Central difference of the loss in *v; restores *v. */
static double gc_numeric(gc_buffers *b, float *v)
{
    float saved = *v;
    float plus = saved + GC_EPS, minus = saved - GC_EPS;
    double lp, lm;
    *v = plus;
    lp = gc_loss(b);
    *v = minus;
    lm = gc_loss(b);
    *v = saved;
    return (lp - lm) / ((double)plus - (double)minus);
}

static int gc_close(double num, double ana)
{
    return fabs(num - ana) <= GC_REL_TOL * fmax(1.0, fabs(num)) + GC_ABS_TOL;
}

static void gc_describe(const gc_case *c, const gc_buffers *b, char *buf, size_t size)
{
    snprintf(buf, size,
             "%s units=%d k=%d s=%d p=%d bias=%d in=%dx%dx%d out=%dx%dx%d batch=%d ws_batch=%d",
             c->ops->name, (int)c->layer.units, (int)c->layer.kernel, (int)b->l.stride,
             (int)c->layer.pad, c->layer.bias, (int)c->layer.in.c, (int)c->layer.in.h,
             (int)c->layer.in.w, (int)b->l.out.c, (int)b->l.out.h, (int)b->l.out.w, c->batch,
             c->ws_batch);
}

/* Run the full check of one case; returns 0 when setup rejected it. */
static int gradcheck(const gc_case *c, fedl_rng *rng)
{
    gc_buffers b;
    char what[256];
    size_t nin;
    int failures = 0;

    if (!gc_prepare(c, &b, rng))
        return 0;
    gc_describe(c, &b, what, sizeof what);
    nin = (size_t)c->batch * b.l.in_size;

    /* analytic: dx must be overwritten (start it at garbage), dw added to
     * (start it at zero) */
    (void)gc_loss(&b);
    for (size_t i = 0; i < nin; i++)
        b.dx[i] = 1e30f;
    b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, b.dx, b.dw);

    for (size_t i = 0; i < nin && failures < 5; i++) {
        double num = gc_numeric(&b, &b.x[i]);
        if (!gc_close(num, b.dx[i])) {
            print_error("%s: dx[%zu] analytic %.6f numeric %.6f\n", what, i, (double)b.dx[i], num);
            failures++;
        }
    }
    for (size_t i = 0; i < b.l.param_count && failures < 5; i++) {
        double num = gc_numeric(&b, &b.w[i]);
        if (!gc_close(num, b.dw[i])) {
            print_error("%s: dw[%zu] analytic %.6f numeric %.6f\n", what, i, (double)b.dw[i], num);
            failures++;
        }
    }
    gc_free(&b);
    assert_int_equal(failures, 0);
    return 1;
}

static fedl_layer layer_in(int c, int h, int w)
{
    fedl_layer l;
    memset(&l, 0, sizeof l);
    l.in = (fedl_shape){c, h, w};
    l.index = 3;
    return l;
}

/* A case on a random input shape (1..max_c, 1..max_h, 1..max_w) and batch
 * 1..3; the draws are sequenced so every compiler builds the same cases. */
static gc_case random_case(const fedl_layer_ops *ops, fedl_rng *rng, int max_c, int max_h,
                           int max_w, gc_input input)
{
    gc_case gc;
    int c = 1 + below(rng, max_c);
    int h = 1 + below(rng, max_h);
    int w = 1 + below(rng, max_w);
    memset(&gc, 0, sizeof gc);
    gc.ops = ops;
    gc.layer = layer_in(c, h, w);
    gc.batch = 1 + below(rng, 3);
    gc.input = input;
    gc.training = 1;
    return gc;
}

/* ------------------------------------------------------------ conv */

static gc_case conv2d_case(int c, int h, int w, int units, int k, int s, int p, int batch)
{
    gc_case gc = {&fedl_layer_conv2d_ops, layer_in(c, h, w), batch, 0, GC_INPUT_UNIFORM, 1};
    gc.layer.units = units;
    gc.layer.kernel = k;
    gc.layer.stride = s;
    gc.layer.pad = p;
    gc.layer.bias = 1;
    return gc;
}

static void test_gradcheck_conv2d(void **state)
{
    fedl_rng rng;
    int done = 0, tried = 0;
    (void)state;
    fedl_rng_init(&rng, 1, 0);
    /* fixed cases first: the 1x1 fast path, LeNet-like, stride 3 without bias */
    {
        gc_case fixed[3];
        fixed[0] = conv2d_case(3, 4, 5, 4, 1, 1, 0, 2);
        fixed[1] = conv2d_case(1, 8, 8, 3, 5, 1, 2, 3);
        fixed[1].ws_batch = 1;
        fixed[2] = conv2d_case(2, 7, 6, 2, 3, 3, 1, 3);
        fixed[2].ws_batch = 2;
        fixed[2].layer.bias = 0;
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            assert_true(gradcheck(&fixed[i], &rng));
    }
    while (done < 120) {
        gc_case c = random_case(&fedl_layer_conv2d_ops, &rng, 3, 7, 7, GC_INPUT_UNIFORM);
        c.layer.units = 1 + below(&rng, 3);
        c.layer.kernel = 1 + below(&rng, 4);
        c.layer.stride = 1 + below(&rng, 3);
        c.layer.pad = below(&rng, 3);
        c.layer.bias = below(&rng, 2);
        c.ws_batch = 1 + below(&rng, c.batch); /* 1-sample, partial and whole-batch chunks */
        tried++;
        done += gradcheck(&c, &rng);
    }
    assert_true(tried < 1000);
}

static void test_gradcheck_conv1d(void **state)
{
    fedl_rng rng;
    int done = 0;
    (void)state;
    fedl_rng_init(&rng, 2, 0);
    while (done < 100) {
        gc_case c = random_case(&fedl_layer_conv1d_ops, &rng, 3, 1, 12, GC_INPUT_UNIFORM);
        c.layer.units = 1 + below(&rng, 4);
        c.layer.kernel = 1 + below(&rng, 5);
        c.layer.stride = 1 + below(&rng, 3);
        c.layer.pad = below(&rng, 3);
        c.layer.bias = below(&rng, 2);
        c.ws_batch = 1 + below(&rng, c.batch);
        done += gradcheck(&c, &rng);
    }
}

/* ------------------------------------------------------------ pooling */

static void pool_gradcheck(const fedl_layer_ops *ops, gc_input input, uint64_t seed)
{
    fedl_rng rng;
    int done = 0;
    fedl_rng_init(&rng, seed, 0);
    while (done < 100) {
        gc_case c = random_case(ops, &rng, 3, 8, 8, input);
        c.layer.kernel = 1 + below(&rng, 4);
        c.layer.stride = below(&rng, 4); /* 0 = kernel */
        c.layer.pad = below(&rng, 3);
        done += gradcheck(&c, &rng);
    }
}

static void test_gradcheck_maxpool2d(void **state)
{
    (void)state;
    pool_gradcheck(&fedl_layer_maxpool2d_ops, GC_INPUT_DISTINCT, 3);
}

static void test_gradcheck_avgpool2d(void **state)
{
    (void)state;
    pool_gradcheck(&fedl_layer_avgpool2d_ops, GC_INPUT_UNIFORM, 4);
}

static void test_gradcheck_global_avgpool(void **state)
{
    fedl_rng rng;
    (void)state;
    fedl_rng_init(&rng, 5, 0);
    for (int t = 0; t < 30; t++) {
        gc_case c = random_case(&fedl_layer_global_avgpool_ops, &rng, 4, 6, 6, GC_INPUT_UNIFORM);
        assert_true(gradcheck(&c, &rng));
    }
}

/* ------------------------------------------------------------ the lead's layers */

static void elementwise_gradcheck(const fedl_layer_ops *ops, gc_input input, float slope,
                                  float rate, uint64_t seed)
{
    fedl_rng rng;
    fedl_rng_init(&rng, seed, 0);
    for (int t = 0; t < 20; t++) {
        gc_case c = random_case(ops, &rng, 3, 5, 5, input);
        c.layer.slope = slope;
        c.layer.rate = rate;
        assert_true(gradcheck(&c, &rng));
    }
}

static void test_gradcheck_dense(void **state)
{
    fedl_rng rng;
    (void)state;
    fedl_rng_init(&rng, 6, 0);
    for (int t = 0; t < 40; t++) {
        gc_case c = random_case(&fedl_layer_dense_ops, &rng, 3, 4, 4, GC_INPUT_UNIFORM);
        c.layer.units = 1 + below(&rng, 6);
        c.layer.bias = below(&rng, 2);
        assert_true(gradcheck(&c, &rng));
    }
}

static void test_gradcheck_flatten(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_flatten_ops, GC_INPUT_UNIFORM, 0.0f, 0.0f, 7);
}

static void test_gradcheck_relu(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_relu_ops, GC_INPUT_NO_ZERO, 0.0f, 0.0f, 8);
}

static void test_gradcheck_leaky_relu(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_leaky_relu_ops, GC_INPUT_NO_ZERO, 0.1f, 0.0f, 9);
}

static void test_gradcheck_sigmoid(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_sigmoid_ops, GC_INPUT_WIDE, 0.0f, 0.0f, 10);
}

static void test_gradcheck_tanh(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_tanh_ops, GC_INPUT_WIDE, 0.0f, 0.0f, 11);
}

static void test_gradcheck_dropout_training(void **state)
{
    (void)state;
    elementwise_gradcheck(&fedl_layer_dropout_ops, GC_INPUT_UNIFORM, 0.0f, 0.4f, 12);
}

/* The dropout mask of a fixed (seed, step) drops some units and keeps
 * others, so the gradcheck above saw both. */
static void test_dropout_mask_is_deterministic_and_mixed(void **state)
{
    gc_case c = {&fedl_layer_dropout_ops, layer_in(4, 5, 5), 2, 0, GC_INPUT_NO_ZERO, 1};
    gc_buffers b;
    fedl_rng rng;
    size_t n, zeros = 0;
    float *first;
    (void)state;
    fedl_rng_init(&rng, 13, 0);
    c.layer.rate = 0.5f;
    assert_true(gc_prepare(&c, &b, &rng));
    n = (size_t)c.batch * b.l.in_size;
    first = xcalloc(n, sizeof(float));
    (void)gc_loss(&b);
    memcpy(first, b.y, n * sizeof(float));
    (void)gc_loss(&b);
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(&first[i], &b.y[i], sizeof(float));
        zeros += b.y[i] == 0.0f;
    }
    assert_true(zeros > n / 5 && zeros < n - n / 5);
    free(first);
    gc_free(&b);
}

/* ------------------------------------------------------------ conventions */

/* Backward twice without clearing dw gives exactly twice the gradient, and
 * backward with dx == NULL gives the same dw as with dx. */
static void check_accumulates_and_null_dx(const gc_case *c)
{
    gc_buffers b;
    fedl_rng rng;
    float *once, *with_dx;
    size_t np;
    fedl_rng_init(&rng, 14, 0);
    assert_true(gc_prepare(c, &b, &rng));
    np = b.l.param_count;
    assert_true(np > 0);
    once = xcalloc(np, sizeof(float));
    with_dx = xcalloc(np, sizeof(float));

    (void)gc_loss(&b);
    b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, b.dx, b.dw);
    memcpy(once, b.dw, np * sizeof(float));
    b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, b.dx, b.dw);
    for (size_t i = 0; i < np; i++)
        assert_float_equal(b.dw[i], 2.0f * once[i], 1e-5f * (1.0f + fabsf(once[i])));

    memcpy(with_dx, once, np * sizeof(float));
    memset(b.dw, 0, np * sizeof(float));
    b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, NULL, b.dw);
    for (size_t i = 0; i < np; i++)
        assert_float_equal(b.dw[i], with_dx[i], 1e-6f * (1.0f + fabsf(with_dx[i])));

    free(once);
    free(with_dx);
    gc_free(&b);
}

static void test_backward_accumulates_dw_and_allows_null_dx(void **state)
{
    gc_case c;
    (void)state;
    c = conv2d_case(3, 9, 7, 4, 3, 2, 1, 3);
    check_accumulates_and_null_dx(&c);
    c.ws_batch = 1; /* one sample per GEMM */
    check_accumulates_and_null_dx(&c);
    c = conv2d_case(5, 4, 4, 3, 1, 1, 0, 2); /* 1x1 fast path */
    check_accumulates_and_null_dx(&c);
    c = conv2d_case(2, 1, 9, 3, 3, 2, 1, 3);
    c.ops = &fedl_layer_conv1d_ops;
    check_accumulates_and_null_dx(&c);
    c = conv2d_case(2, 3, 3, 5, 0, 0, 0, 3);
    c.ops = &fedl_layer_dense_ops;
    check_accumulates_and_null_dx(&c);
}

/* Parameter-free layers accept dx == NULL without touching anything. */
static void test_parameter_free_layers_allow_null_dx(void **state)
{
    const fedl_layer_ops *kinds[] = {
        &fedl_layer_maxpool2d_ops, &fedl_layer_avgpool2d_ops, &fedl_layer_global_avgpool_ops,
        &fedl_layer_flatten_ops,   &fedl_layer_relu_ops,      &fedl_layer_leaky_relu_ops,
        &fedl_layer_sigmoid_ops,   &fedl_layer_tanh_ops,      &fedl_layer_dropout_ops};
    fedl_rng rng;
    (void)state;
    fedl_rng_init(&rng, 15, 0);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        gc_case c = {kinds[i], layer_in(2, 4, 6), 2, 0, GC_INPUT_DISTINCT, 1};
        gc_buffers b;
        c.layer.kernel = 2;
        c.layer.slope = 0.1f;
        c.layer.rate = 0.5f;
        assert_true(gc_prepare(&c, &b, &rng));
        (void)gc_loss(&b);
        b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, NULL, b.dw);
        gc_free(&b);
    }
}

/* Every chunking of the batch (one sample per GEMM, partial chunks, the
 * whole batch) computes the same forward and backward. */
static void test_conv_chunking_does_not_change_results(void **state)
{
    const fedl_layer_ops *kinds[] = {&fedl_layer_conv2d_ops, &fedl_layer_conv1d_ops};
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        gc_case c = conv2d_case(3, kind ? 1 : 8, 10, 4, 3, 2, 1, 5);
        gc_buffers ref, b;
        fedl_rng rng;
        size_t nin, nout;
        c.ops = kinds[kind];
        c.ws_batch = 5;
        fedl_rng_init(&rng, 16, 0);
        assert_true(gc_prepare(&c, &ref, &rng));
        (void)gc_loss(&ref);
        ref.l.ops->backward(&ref.l, &ref.ctx, ref.w, ref.x, ref.y, ref.aux, ref.r, ref.dx, ref.dw);
        nin = (size_t)c.batch * ref.l.in_size;
        nout = (size_t)c.batch * ref.l.out_size;
        for (int ws_batch = 1; ws_batch < 5; ws_batch++) {
            c.ws_batch = ws_batch;
            fedl_rng_init(&rng, 16, 0);
            assert_true(gc_prepare(&c, &b, &rng));
            (void)gc_loss(&b);
            b.l.ops->backward(&b.l, &b.ctx, b.w, b.x, b.y, b.aux, b.r, b.dx, b.dw);
            assert_true(test_max_rel_diff(b.y, ref.y, nout) < 1e-5);
            assert_true(test_max_rel_diff(b.dx, ref.dx, nin) < 1e-5);
            assert_true(test_max_rel_diff(b.dw, ref.dw, ref.l.param_count) < 1e-5);
            gc_free(&b);
        }
        gc_free(&ref);
    }
}

/* ------------------------------------------------------------ reference forwards */

/* nn.Conv2d / nn.Conv1d by definition, in double. */
static void conv_reference(const fedl_layer *l, int one_d, int batch, const float *x,
                           const float *w, double *y)
{
    int kh = one_d ? 1 : l->kernel, kw = l->kernel;
    int sh = one_d ? 1 : l->stride, sw = l->stride;
    int ph = one_d ? 0 : l->pad, pw = l->pad;
    int C = l->in.c, H = l->in.h, W = l->in.w, OC = l->out.c, OH = l->out.h, OW = l->out.w;
    const float *bias = w + (size_t)OC * C * kh * kw;
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double sum = l->bias ? bias[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int ih = oh * sh - ph + i, iw = ow * sw - pw + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                sum += (double)w[((o * C + c) * kh + i) * kw + j] *
                                       x[((b * C + c) * H + ih) * W + iw];
                            }
                    y[((b * OC + o) * OH + oh) * OW + ow] = sum;
                }
}

static void test_conv_forward_matches_definition(void **state)
{
    fedl_rng rng;
    (void)state;
    fedl_rng_init(&rng, 17, 0);
    for (int t = 0; t < 200; t++) {
        int one_d = t % 3 == 0;
        gc_case c = random_case(one_d ? &fedl_layer_conv1d_ops : &fedl_layer_conv2d_ops, &rng, 4,
                                one_d ? 1 : 10, 10, GC_INPUT_UNIFORM);
        gc_buffers b;
        double *ref;
        size_t nout;
        c.batch = 1 + below(&rng, 4);
        c.layer.units = 1 + below(&rng, 5);
        c.layer.kernel = 1 + below(&rng, 5);
        c.layer.stride = 1 + below(&rng, 3);
        c.layer.pad = below(&rng, 3);
        c.layer.bias = below(&rng, 2);
        c.ws_batch = 1 + below(&rng, c.batch);
        if (!gc_prepare(&c, &b, &rng))
            continue;
        nout = (size_t)c.batch * b.l.out_size;
        /* output size is PyTorch's floor((in + 2 pad - k) / stride) + 1 */
        assert_int_equal(b.l.out.w,
                         (c.layer.in.w + 2 * c.layer.pad - c.layer.kernel) / c.layer.stride + 1);
        ref = xcalloc(nout, sizeof(double));
        (void)gc_loss(&b);
        conv_reference(&b.l, one_d, c.batch, b.x, b.w, ref);
        for (size_t i = 0; i < nout; i++)
            assert_true(fabs(b.y[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])));
        free(ref);
        gc_free(&b);
    }
}

/* PyTorch's values for a 4x4 arange input with kernel 3, stride 2, pad 1. */
static void test_pool_forward_matches_pytorch(void **state)
{
    const float max_expected[4] = {5, 7, 13, 15};
    const int32_t argmax_expected[4] = {5, 7, 13, 15};
    const float avg_expected[4] = {10.0f / 9, 24.0f / 9, 51.0f / 9, 90.0f / 9};
    const fedl_layer_ops *kinds[2] = {&fedl_layer_maxpool2d_ops, &fedl_layer_avgpool2d_ops};
    (void)state;
    for (int k = 0; k < 2; k++) {
        fedl_layer l = layer_in(1, 4, 4);
        fedl_layer_ctx ctx = {1, 1, 0, 0, 0, NULL, 0, 1};
        float x[16], y[4];
        int32_t aux[4] = {-1, -1, -1, -1};
        l.ops = kinds[k];
        l.kernel = 3;
        l.stride = 2;
        l.pad = 1;
        for (int i = 0; i < 16; i++)
            x[i] = (float)i;
        assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
        assert_int_equal(l.out.h, 2);
        assert_int_equal(l.out.w, 2);
        l.ops->forward(&l, &ctx, NULL, x, y, aux);
        for (int i = 0; i < 4; i++) {
            assert_float_equal(y[i], k == 0 ? max_expected[i] : avg_expected[i], 1e-6);
            if (k == 0)
                assert_int_equal(aux[i], argmax_expected[i]);
        }
    }
}

/* Padding is -inf for max pooling: an all-negative input never yields 0. */
static void test_maxpool_padding_is_negative_infinity(void **state)
{
    fedl_layer l = layer_in(2, 3, 3);
    fedl_layer_ctx ctx = {1, 1, 0, 0, 0, NULL, 0, 1};
    float x[18], y[8], dy[8], dx[18];
    int32_t aux[8];
    (void)state;
    l.ops = &fedl_layer_maxpool2d_ops;
    l.kernel = 2;
    l.stride = 2;
    l.pad = 1;
    for (int i = 0; i < 18; i++)
        x[i] = -1.0f - (float)i;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.out.h * l.out.w, 4);
    l.ops->forward(&l, &ctx, NULL, x, y, aux);
    /* window (0,0) of channel 1 covers only x[9] = -10 */
    assert_float_equal(y[4], -10.0f, 0.0f);
    assert_int_equal(aux[4], 9);
    for (int i = 0; i < 8; i++) {
        assert_true(y[i] < 0.0f);
        dy[i] = 1.0f;
    }
    l.ops->backward(&l, &ctx, NULL, x, y, aux, dy, dx, NULL);
    float total = 0.0f;
    for (int i = 0; i < 18; i++)
        total += dx[i];
    assert_float_equal(total, 8.0f, 0.0f);
    /* eval-mode forward may pass no aux */
    l.ops->forward(&l, &ctx, NULL, x, y, NULL);
}

/* ------------------------------------------------------------ setup */

static void test_setup_rejects_bad_shapes(void **state)
{
    fedl_error err;
    fedl_layer l;
    (void)state;

    l = layer_in(6, 4, 4);
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 16, l.kernel = 5, l.stride = 1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "conv2d(16,5): kernel 5 larger than padded input 4x4"));

    l.pad = 1; /* 6x6 padded input fits a 5x5 kernel */
    assert_int_equal(l.ops->setup(&l, &err), FEDL_OK);
    assert_int_equal(l.out.h, 2);

    const int32_t bad[][4] = {/* units, kernel, stride, pad */
                              {0, 3, 1, 0},
                              {4, 0, 1, 0},
                              {4, 3, 0, 0},
                              {4, 3, -1, 0},
                              {4, 3, 1, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l = layer_in(3, 8, 8);
        l.ops = &fedl_layer_conv2d_ops;
        l.units = bad[i][0], l.kernel = bad[i][1], l.stride = bad[i][2], l.pad = bad[i][3];
        fedl_error_clear(&err);
        assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
        assert_int_equal(err.status, FEDL_ERR_SPEC);
        assert_non_null(strstr(err.message, "conv2d("));
    }

    l = layer_in(2, 3, 20); /* conv1d needs (C, 1, L) */
    l.ops = &fedl_layer_conv1d_ops;
    l.units = 4, l.kernel = 3, l.stride = 1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "conv1d"));
    l = layer_in(2, 1, 2);
    l.ops = &fedl_layer_conv1d_ops;
    l.units = 4, l.kernel = 3, l.stride = 1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    l.pad = 1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_OK);
    assert_int_equal(l.out.c, 4);
    assert_int_equal(l.out.h, 1);
    assert_int_equal(l.out.w, 2);
    assert_int_equal(l.param_count, 4 * 2 * 3);

    /* pooling: kernel larger than input, padding over half the kernel */
    l = layer_in(3, 1, 8);
    l.ops = &fedl_layer_maxpool2d_ops;
    l.kernel = 2;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "maxpool2d(2): kernel 2 larger than padded input 1x8"));
    l = layer_in(3, 8, 8);
    l.ops = &fedl_layer_avgpool2d_ops;
    l.kernel = 2, l.pad = 2;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "avgpool2d"));
    l.kernel = 0, l.pad = 0;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    l.kernel = 3, l.stride = -2;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    l.stride = 1, l.pad = -1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "padding"));

    /* sizes whose GEMM dimensions would overflow int */
    l = layer_in(1024, 1024, 1024);
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 4, l.kernel = 3, l.stride = 1;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "too large"));
    l = layer_in(3, 8, 8);
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 4, l.kernel = 3, l.stride = 1 << 30, l.pad = 1 << 30;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    assert_non_null(strstr(err.message, "too large"));
    l = layer_in(1 << 20, 1 << 20, 1 << 20);
    l.ops = &fedl_layer_global_avgpool_ops;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
    l.ops = &fedl_layer_maxpool2d_ops;
    l.kernel = 2;
    assert_int_equal(l.ops->setup(&l, &err), FEDL_ERR_SPEC);
}

static void test_setup_fills_shapes_params_and_flops(void **state)
{
    fedl_layer l;
    double fwd, bwd;
    (void)state;

    /* LeNet-5 conv1: 1 -> 6, k5 pad 2 on 28x28 */
    l = layer_in(1, 28, 28);
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 6, l.kernel = 5, l.stride = 1, l.pad = 2, l.bias = 1;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.out.c, 6);
    assert_int_equal(l.out.h, 28);
    assert_int_equal(l.out.w, 28);
    assert_int_equal(l.param_count, 6 * 25 + 6);
    assert_int_equal(l.aux_size, 0); /* one input channel: dW straight from x, no columns kept */
    l.ops->flops(&l, &fwd, &bwd);
    assert_float_equal(fwd, 2.0 * 6 * 784 * 25 + 6 * 784, 0.5);
    assert_float_equal(bwd, 4.0 * 6 * 784 * 25 + 6 * 784, 0.5);
    assert_true(l.ops->workspace_floats(&l, 32) >= l.ops->workspace_floats(&l, 1));
    assert_true(l.ops->workspace_floats(&l, 1) >= (size_t)25 * 784);

    /* conv1d: 2 -> 5 channels, k3 pad 1 on length 11 */
    l = layer_in(2, 1, 11);
    l.ops = &fedl_layer_conv1d_ops;
    l.units = 5, l.kernel = 3, l.stride = 1, l.pad = 1, l.bias = 1;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    l.ops->flops(&l, &fwd, &bwd);
    assert_float_equal(fwd, 2.0 * 55 * 6 + 55, 0.5);
    assert_float_equal(bwd, 4.0 * 55 * 6 + 55, 0.5);

    /* the 1x1 fast path needs no workspace */
    l = layer_in(8, 5, 5);
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 4, l.kernel = 1, l.stride = 1;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.ops->workspace_floats(&l, 32), 0);

    /* stride 0 means stride = kernel for pooling; argmax kept per output */
    l = layer_in(6, 28, 28);
    l.ops = &fedl_layer_maxpool2d_ops;
    l.kernel = 2;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.stride, 2);
    assert_int_equal(l.out.h, 14);
    assert_int_equal(l.aux_size, 6 * 14 * 14);
    assert_int_equal(l.param_count, 0);
    l.ops->flops(&l, &fwd, &bwd);
    assert_float_equal(fwd, 6.0 * 14 * 14 * 4, 0.5);
    assert_float_equal(bwd, 6.0 * 14 * 14, 0.5);
    l.ops = &fedl_layer_avgpool2d_ops;
    l.stride = 0;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.aux_size, 0);
    l.ops->flops(&l, &fwd, &bwd);
    assert_float_equal(fwd, 6.0 * 14 * 14 * 4, 0.5);

    l = layer_in(16, 5, 7);
    l.ops = &fedl_layer_global_avgpool_ops;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    assert_int_equal(l.out.c, 16);
    assert_int_equal(l.out_size, 16);
    l.ops->flops(&l, &fwd, &bwd);
    assert_float_equal(fwd, 16.0 * 35, 0.5);
    l = layer_in(0, 5, 7);
    l.ops = &fedl_layer_global_avgpool_ops;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_ERR_SPEC);
}

/* Default init is He uniform before relu, Glorot otherwise; bias zero. */
static void test_conv_init_bounds(void **state)
{
    fedl_layer l = layer_in(6, 14, 14);
    float w[16 * 150 + 16];
    fedl_rng rng;
    (void)state;
    l.ops = &fedl_layer_conv2d_ops;
    l.units = 16, l.kernel = 5, l.stride = 1, l.bias = 1;
    assert_int_equal(l.ops->setup(&l, NULL), FEDL_OK);
    for (int relu = 0; relu < 2; relu++) {
        float bound = relu ? sqrtf(6.0f / 150.0f) : sqrtf(6.0f / (150.0f + 400.0f));
        float largest = 0.0f;
        l.followed_by_relu = relu;
        fedl_rng_init(&rng, 1, 0);
        l.ops->init(&l, w, &rng, FEDL_INIT_DEFAULT);
        for (int i = 0; i < 16 * 150; i++)
            largest = fmaxf(largest, fabsf(w[i]));
        assert_true(largest <= bound && largest > 0.9f * bound);
        for (int i = 16 * 150; i < 16 * 150 + 16; i++)
            assert_float_equal(w[i], 0.0f, 0.0f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_conv2d),
        cmocka_unit_test(test_gradcheck_conv1d),
        cmocka_unit_test(test_gradcheck_maxpool2d),
        cmocka_unit_test(test_gradcheck_avgpool2d),
        cmocka_unit_test(test_gradcheck_global_avgpool),
        cmocka_unit_test(test_gradcheck_dense),
        cmocka_unit_test(test_gradcheck_flatten),
        cmocka_unit_test(test_gradcheck_relu),
        cmocka_unit_test(test_gradcheck_leaky_relu),
        cmocka_unit_test(test_gradcheck_sigmoid),
        cmocka_unit_test(test_gradcheck_tanh),
        cmocka_unit_test(test_gradcheck_dropout_training),
        cmocka_unit_test(test_dropout_mask_is_deterministic_and_mixed),
        cmocka_unit_test(test_backward_accumulates_dw_and_allows_null_dx),
        cmocka_unit_test(test_parameter_free_layers_allow_null_dx),
        cmocka_unit_test(test_conv_chunking_does_not_change_results),
        cmocka_unit_test(test_conv_forward_matches_definition),
        cmocka_unit_test(test_pool_forward_matches_pytorch),
        cmocka_unit_test(test_maxpool_padding_is_negative_infinity),
        cmocka_unit_test(test_setup_rejects_bad_shapes),
        cmocka_unit_test(test_setup_fills_shapes_params_and_flops),
        cmocka_unit_test(test_conv_init_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
