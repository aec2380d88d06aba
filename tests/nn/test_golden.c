/*
 * test_golden.c - fedl's layers, losses and optimisers against PyTorch.
 *
 * tests/golden/gen.py runs the same computations in PyTorch (float32, one
 * thread, fixed seeds) and writes one "FGLD" file per case; the format is
 * described there and in tests/golden/README.md. Every comparison is
 * |fedl - torch| <= 1e-5 * max(1, |torch|) (test_max_rel_diff). Tensors
 * whose values are all far below 1 (LeNet-5's gradients are ~1e-2) are
 * also held to 1e-5 of their largest magnitude, so they are not compared
 * in absolute terms only. The optimiser-alone case also compares the
 * update (after - before) to 1e-5 of its largest magnitude, which is what
 * makes weight decay visible.
 *
 * A missing or corrupt golden file fails the test: the golden files are
 * part of the repository.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "fedl/nn.h"
#include "support/test_support.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR FEDL_SOURCE_DIR "/tests/golden"
#endif
#define GOLDEN_TOLERANCE 1e-5

/* ------------------------------------------------------------ the reader */

enum { GOLDEN_F32 = 0, GOLDEN_I32 = 1, GOLDEN_TEXT = 2 };

typedef struct golden_array {
    char name[64];
    uint32_t dtype; /* GOLDEN_F32, GOLDEN_I32, GOLDEN_TEXT */
    uint32_t ndim;  /* 0..4; 0 is a scalar */
    uint32_t dims[4];
    size_t count; /* elements: the product of dims */
    void *data;   /* count floats or int32s, or count + 1 chars (NUL-terminated) */
} golden_array;

typedef struct golden_file {
    char case_name[64];
    size_t count;
    golden_array *arrays; /* (count) */
} golden_file;

static void golden_free(golden_file *g)
{
    if (g->arrays != NULL) {
        for (size_t i = 0; i < g->count; i++)
            free(g->arrays[i].data);
        free(g->arrays);
    }
    memset(g, 0, sizeof *g);
}

static uint32_t read_u32_le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parse a whole golden file held in bytes (size). On failure returns -1
 * with the reason in why and leaves g empty. */
static int golden_parse(const unsigned char *bytes, size_t size, golden_file *g, char *why,
                        size_t why_size)
{
    memset(g, 0, sizeof *g);
    if (size < 16 || memcmp(bytes, "FGLD", 4) != 0) {
        snprintf(why, why_size, "not a golden file (size %zu, bad magic)", size);
        return -1;
    }
    uint32_t stored_crc = read_u32_le(bytes + size - 4);
    uint32_t crc = (uint32_t)crc32(0L, bytes, (uInt)(size - 4));
    if (crc != stored_crc) {
        snprintf(why, why_size, "CRC-32 mismatch (stored %08x, computed %08x)", stored_crc, crc);
        return -1;
    }
    uint32_t version = read_u32_le(bytes + 4);
    if (version != 1) {
        snprintf(why, why_size, "format version %u, expected 1", version);
        return -1;
    }
    uint32_t count = read_u32_le(bytes + 8);
    size_t end = size - 4, pos = 12;
    if (count > (end - pos) / 12) { /* an entry takes at least 12 bytes */
        snprintf(why, why_size, "entry count %u does not fit in %zu bytes", count, size);
        return -1;
    }
    g->arrays = calloc(count > 0 ? count : 1, sizeof *g->arrays);
    if (g->arrays == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        golden_array *a = &g->arrays[i];
        g->count = i + 1; /* so golden_free sees this entry's data */
        if (end - pos < 4)
            goto truncated;
        uint32_t name_len = read_u32_le(bytes + pos);
        pos += 4;
        if (name_len == 0 || name_len >= sizeof a->name || end - pos < name_len + 8) {
            snprintf(why, why_size, "entry %u: bad name length %u at byte %zu", i, name_len,
                     pos - 4);
            goto fail;
        }
        memcpy(a->name, bytes + pos, name_len);
        a->name[name_len] = '\0';
        pos += name_len;
        a->dtype = read_u32_le(bytes + pos);
        a->ndim = read_u32_le(bytes + pos + 4);
        pos += 8;
        if (a->dtype > GOLDEN_TEXT || a->ndim > 4 || end - pos < 4 * (size_t)a->ndim) {
            snprintf(why, why_size, "entry '%s': bad dtype %u or ndim %u", a->name, a->dtype,
                     a->ndim);
            goto fail;
        }
        a->count = 1;
        for (uint32_t d = 0; d < a->ndim; d++) {
            a->dims[d] = read_u32_le(bytes + pos);
            pos += 4;
            if (a->dims[d] != 0 && a->count > SIZE_MAX / 4 / a->dims[d]) {
                snprintf(why, why_size, "entry '%s': dims overflow", a->name);
                goto fail;
            }
            a->count *= a->dims[d];
        }
        size_t element = a->dtype == GOLDEN_TEXT ? 1 : 4;
        if (end - pos < a->count * element)
            goto truncated;
        a->data = malloc(a->count * element + 1);
        if (a->data == NULL) {
            snprintf(why, why_size, "out of memory");
            goto fail;
        }
        if (a->dtype == GOLDEN_TEXT) {
            memcpy(a->data, bytes + pos, a->count);
            ((char *)a->data)[a->count] = '\0';
        } else {
            /* Decode little-endian words whatever the host's byte order. */
            uint32_t *words = a->data;
            for (size_t k = 0; k < a->count; k++)
                words[k] = read_u32_le(bytes + pos + 4 * k);
        }
        pos += a->count * element;
    }
    if (pos != end) {
        snprintf(why, why_size, "%zu trailing bytes after the last entry", end - pos);
        goto fail;
    }
    return 0;
truncated:
    snprintf(why, why_size, "truncated in entry %zu", g->count - 1);
fail:
    golden_free(g);
    return -1;
}

static int golden_load_path(const char *path, golden_file *g, char *why, size_t why_size)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, why_size, "cannot open %s (run python3 tests/golden/gen.py)", path);
        return -1;
    }
    unsigned char *bytes = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0)
        bytes = malloc(size > 0 ? (size_t)size : 1);
    if (bytes == NULL || fread(bytes, 1, (size_t)size, f) != (size_t)size) {
        snprintf(why, why_size, "cannot read %s", path);
        free(bytes);
        fclose(f);
        return -1;
    }
    fclose(f);
    int rc = golden_parse(bytes, (size_t)size, g, why, why_size);
    free(bytes);
    return rc;
}

/* ------------------------------------------------------ per-test state */

#define MAX_BUFFERS 16

typedef struct test_state {
    golden_file golden;
    fedl_model *model;
    fedl_model *other_model;
    fedl_optim *optim;
    void *buffers[MAX_BUFFERS]; /* freed by teardown */
} test_state;

static int setup(void **state)
{
    test_state *s = calloc(1, sizeof *s);
    *state = s;
    return s == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    test_state *s = *state;
    golden_free(&s->golden);
    fedl_model_destroy(s->model);
    fedl_model_destroy(s->other_model);
    fedl_optim_destroy(s->optim);
    for (int i = 0; i < MAX_BUFFERS; i++)
        free(s->buffers[i]);
    free(s);
    return 0;
}

/* A zeroed buffer of n floats owned by the test state. */
static float *scratch(test_state *s, size_t n)
{
    for (int i = 0; i < MAX_BUFFERS; i++) {
        if (s->buffers[i] == NULL) {
            s->buffers[i] = calloc(n > 0 ? n : 1, sizeof(float));
            assert_non_null(s->buffers[i]);
            return s->buffers[i];
        }
    }
    fail_msg("test_golden: more than %d scratch buffers", MAX_BUFFERS);
    return NULL;
}

static golden_file *golden_open(test_state *s, const char *case_name)
{
    char path[1024], why[512];
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_DIR, case_name);
    if (golden_load_path(path, &s->golden, why, sizeof why) != 0)
        fail_msg("golden file %s: %s", path, why);
    snprintf(s->golden.case_name, sizeof s->golden.case_name, "%s", case_name);
    return &s->golden;
}

static const golden_array *golden_find(const golden_file *g, const char *name)
{
    for (size_t i = 0; i < g->count; i++)
        if (strcmp(g->arrays[i].name, name) == 0)
            return &g->arrays[i];
    return NULL;
}

static const golden_array *golden_get(const golden_file *g, const char *name, uint32_t dtype)
{
    const golden_array *a = golden_find(g, name);
    if (a == NULL)
        fail_msg("%s: golden file has no entry '%s'", g->case_name, name);
    if (a->dtype != dtype)
        fail_msg("%s: entry '%s' has dtype %u, expected %u", g->case_name, name, a->dtype, dtype);
    return a;
}

/* The float32 entry name, which must hold exactly count values. */
static const float *golden_f32(const golden_file *g, const char *name, size_t count)
{
    const golden_array *a = golden_get(g, name, GOLDEN_F32);
    if (a->count != count)
        fail_msg("%s: entry '%s' holds %zu floats, fedl's tensor has %zu", g->case_name, name,
                 a->count, count);
    return a->data;
}

static const int32_t *golden_i32(const golden_file *g, const char *name, size_t count)
{
    const golden_array *a = golden_get(g, name, GOLDEN_I32);
    if (a->count != count)
        fail_msg("%s: entry '%s' holds %zu int32s, expected %zu", g->case_name, name, a->count,
                 count);
    return a->data;
}

static const char *golden_text(const golden_file *g, const char *name)
{
    return golden_get(g, name, GOLDEN_TEXT)->data;
}

/* --------------------------------------------------------- comparisons */

/* fedl's a against torch's b (n values): the relative check of every test,
 * plus, when scaled != 0, the check against 1e-5 of the largest |b|. */
static void expect_matches(const char *where, const char *what, const float *a, const float *b,
                           size_t n, int scaled)
{
    double rel = test_max_rel_diff(a, b, n);
    size_t worst = 0;
    double worst_diff = -1.0, max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d))
            d = INFINITY;
        if (d > worst_diff) {
            worst_diff = d;
            worst = i;
        }
        if (fabs((double)b[i]) > max_abs)
            max_abs = fabs((double)b[i]);
    }
    if (getenv("FEDL_GOLDEN_VERBOSE") != NULL)
        printf("    %-14s %-62s rel %.2e  of max %.2e\n", where, what, rel,
               max_abs > 0.0 ? worst_diff / max_abs : 0.0);
    if (rel > GOLDEN_TOLERANCE)
        fail_msg("%s: %s differs from torch: max |a-b|/max(1,|b|) = %.3g > %g; worst at [%zu] "
                 "of %zu: fedl %.9g torch %.9g",
                 where, what, rel, GOLDEN_TOLERANCE, worst, n, (double)a[worst], (double)b[worst]);
    if (scaled && n > 0 && worst_diff > GOLDEN_TOLERANCE * max_abs)
        fail_msg("%s: %s differs from torch by %.3g = %.3g of its largest magnitude %.3g (limit "
                 "%g); worst at [%zu]: fedl %.9g torch %.9g",
                 where, what, worst_diff, worst_diff / max_abs, max_abs, GOLDEN_TOLERANCE, worst,
                 (double)a[worst], (double)b[worst]);
}

static void expect_scalar_matches(const char *where, const char *what, double a, double b)
{
    double tol = GOLDEN_TOLERANCE * (fabs(b) > 1.0 ? fabs(b) : 1.0);
    if (!(fabs(a - b) <= tol))
        fail_msg("%s: %s: fedl %.9g torch %.9g (|a-b| %.3g > %.3g)", where, what, a, b, fabs(a - b),
                 tol);
}

static void expect_ok(fedl_status status, const fedl_error *err, const char *where,
                      const char *call)
{
    if (status != FEDL_OK)
        fail_msg("%s: %s failed: %s: %s", where, call, fedl_strerror(status), err->message);
}

/* ----------------------------------------------------------- model cases */

static size_t shape_size(fedl_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* Build the model of the golden file: its spec on its input shape, with
 * max_batch reserved. */
static fedl_model *build_model(test_state *s, const golden_file *g, const char *spec, int max_batch)
{
    const int32_t *in = golden_i32(g, "input_shape", 3);
    fedl_shape input = {in[0], in[1], in[2]};
    fedl_error err = {0};
    expect_ok(fedl_model_create(spec, input, 1, NULL, &s->model, &err), &err, g->case_name,
              "fedl_model_create");
    expect_ok(fedl_model_reserve(s->model, max_batch, &err), &err, g->case_name,
              "fedl_model_reserve");
    return s->model;
}

/* The batch of entry "x": its first dimension, checked against the input. */
static int golden_batch(const golden_file *g, fedl_shape input)
{
    const golden_array *x = golden_get(g, "x", GOLDEN_F32);
    if (x->ndim < 1 || x->dims[0] == 0 || x->count != x->dims[0] * shape_size(input))
        fail_msg("%s: entry 'x' (%zu floats) is not a batch of (%d,%d,%d) inputs", g->case_name,
                 x->count, input.c, input.h, input.w);
    return (int)x->dims[0];
}

/* One layer: forward y, then backward of loss = sum(y * dy) to dx and the
 * parameter gradients. */
static void run_layer_case(void **state, const char *case_name)
{
    test_state *s = *state;
    const golden_file *g = golden_open(s, case_name);
    fedl_model *m = build_model(s, g, golden_text(g, "spec"), 3);
    fedl_shape in = fedl_model_input_shape(m), out = fedl_model_output_shape(m);
    int batch = golden_batch(g, in);
    size_t in_n = (size_t)batch * shape_size(in), out_n = (size_t)batch * shape_size(out);
    size_t param_count = fedl_model_param_count(m);

    if (param_count > 0)
        memcpy(fedl_model_params(m), golden_f32(g, "params", param_count),
               param_count * sizeof(float));
    else if (golden_find(g, "params") != NULL)
        fail_msg("%s: fedl's layer has no parameters, torch's has", case_name);

    fedl_error err = {0};
    const float *y = NULL;
    expect_ok(fedl_model_forward(m, golden_f32(g, "x", in_n), batch, 1, &y, &err), &err, case_name,
              "fedl_model_forward");
    expect_matches(case_name, "forward output y", y, golden_f32(g, "y", out_n), out_n, 1);

    float *dx = scratch(s, in_n);
    fedl_model_zero_grads(m);
    expect_ok(fedl_model_backward(m, golden_f32(g, "dy", out_n), dx, &err), &err, case_name,
              "fedl_model_backward");
    expect_matches(case_name, "input gradient dx", dx, golden_f32(g, "dx", in_n), in_n, 1);
    if (param_count > 0)
        expect_matches(case_name, "parameter gradients", fedl_model_grads(m),
                       golden_f32(g, "dparams", param_count), param_count, 1);
}

static void test_dense_matches_torch(void **state)
{
    run_layer_case(state, "dense");
}

static void test_dense_flattens_chw_input_like_torch_linear(void **state)
{
    run_layer_case(state, "dense_flatten");
}

static void test_conv2d_stride2_pad1_matches_torch(void **state)
{
    run_layer_case(state, "conv2d_s2p1");
}

static void test_conv2d_5x5_pad2_matches_torch(void **state)
{
    run_layer_case(state, "conv2d_k5p2");
}

static void test_conv1d_stride1_pad1_matches_torch(void **state)
{
    run_layer_case(state, "conv1d_k3p1");
}

static void test_maxpool2d_2x2_matches_torch(void **state)
{
    run_layer_case(state, "maxpool2d_k2");
}

static void test_maxpool2d_3x3_stride2_pad1_matches_torch(void **state)
{
    run_layer_case(state, "maxpool2d_k3s2p1");
}

static void test_avgpool2d_2x2_matches_torch(void **state)
{
    run_layer_case(state, "avgpool2d_k2");
}

static void test_global_avgpool_matches_torch_adaptive_avg_pool(void **state)
{
    run_layer_case(state, "global_avgpool");
}

static void test_relu_matches_torch(void **state)
{
    run_layer_case(state, "relu");
}

static void test_leaky_relu_0_1_matches_torch(void **state)
{
    run_layer_case(state, "leaky_relu");
}

static void test_sigmoid_matches_torch(void **state)
{
    run_layer_case(state, "sigmoid");
}

static void test_tanh_matches_torch(void **state)
{
    run_layer_case(state, "tanh");
}

static void test_flatten_matches_torch(void **state)
{
    run_layer_case(state, "flatten");
}

/* dense(3) under MSELoss(mean): loss = loss_sum / n, grad_scale = 1 / n. */
static void test_mse_loss_and_dense_gradients_match_torch(void **state)
{
    test_state *s = *state;
    const char *where = "mse_dense";
    const golden_file *g = golden_open(s, where);
    fedl_model *m = build_model(s, g, golden_text(g, "spec"), 3);
    fedl_shape in = fedl_model_input_shape(m), out = fedl_model_output_shape(m);
    int batch = golden_batch(g, in);
    size_t in_n = (size_t)batch * shape_size(in), out_n = (size_t)batch * shape_size(out);
    size_t param_count = fedl_model_param_count(m);
    memcpy(fedl_model_params(m), golden_f32(g, "params", param_count), param_count * sizeof(float));

    fedl_error err = {0};
    const float *y = NULL;
    expect_ok(fedl_model_forward(m, golden_f32(g, "x", in_n), batch, 1, &y, &err), &err, where,
              "fedl_model_forward");
    expect_matches(where, "prediction", y, golden_f32(g, "y", out_n), out_n, 1);

    double loss_sum = 0.0;
    float *dpred = scratch(s, out_n);
    expect_ok(fedl_loss_mse(y, golden_f32(g, "target", out_n), out_n, 1.0f / (float)out_n,
                            &loss_sum, dpred, &err),
              &err, where, "fedl_loss_mse");
    expect_scalar_matches(where, "mean squared error", loss_sum / (double)out_n,
                          golden_f32(g, "loss", 1)[0]);
    expect_matches(where, "d loss / d prediction", dpred, golden_f32(g, "dy", out_n), out_n, 1);

    float *dx = scratch(s, in_n);
    fedl_model_zero_grads(m);
    expect_ok(fedl_model_backward(m, dpred, dx, &err), &err, where, "fedl_model_backward");
    expect_matches(where, "parameter gradients", fedl_model_grads(m),
                   golden_f32(g, "dparams", param_count), param_count, 1);
    expect_matches(where, "input gradient dx", dx, golden_f32(g, "dx", in_n), in_n, 1);
}

/* --------------------------------------------------------------- LeNet-5 */

#define LENET5_CLASSES 10

/* gen.py's parameter init: a hash of the flat index scaled by the bound of
 * the tensor holding it, computed exactly the same way in float32. */
static uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void hash_init(const golden_file *g, float *params, size_t param_count)
{
    const golden_array *tensors = golden_get(g, "init_tensors", GOLDEN_I32);
    if (tensors->ndim != 2 || tensors->dims[1] != 2)
        fail_msg("%s: init_tensors is not (n, 2)", g->case_name);
    size_t n = tensors->dims[0];
    const int32_t *range = tensors->data;
    const float *bounds = golden_f32(g, "init_bounds", n);
    size_t next = 0;
    for (size_t t = 0; t < n; t++) {
        size_t start = (size_t)range[2 * t], count = (size_t)range[2 * t + 1];
        if (start != next || count > param_count - start)
            fail_msg("%s: init tensor %zu (%zu, %zu) does not tile fedl's %zu parameters",
                     g->case_name, t, start, count, param_count);
        for (size_t i = start; i < start + count; i++) {
            uint32_t k = lowbias32((uint32_t)(i + 1) * 0x9E3779B9u) >> 8;            /* 24 bits */
            float unit = (float)(2 * (int32_t)k - (1 << 24)) * (1.0f / 16777216.0f); /* exact */
            params[i] = unit * bounds[t];
        }
        next = start + count;
    }
    if (next != param_count)
        fail_msg("%s: torch's LeNet-5 has %zu parameters, fedl's %zu", g->case_name, next,
                 param_count);
}

/* The sampled values of a parameter-sized vector (gen.py's "sample"). */
typedef struct sample_plan {
    const int32_t *ranges; /* (n, 3): start, count, step */
    size_t n;
    size_t total; /* sampled values */
} sample_plan;

static sample_plan sample_plan_of(const golden_file *g, size_t param_count)
{
    const golden_array *a = golden_get(g, "sample", GOLDEN_I32);
    if (a->ndim != 2 || a->dims[1] != 3)
        fail_msg("%s: sample is not (n, 3)", g->case_name);
    sample_plan p = {a->data, a->dims[0], 0};
    for (size_t r = 0; r < p.n; r++) {
        int64_t start = p.ranges[3 * r], count = p.ranges[3 * r + 1], step = p.ranges[3 * r + 2];
        if (start < 0 || count < 1 || step < 1 ||
            (uint64_t)(start + (count - 1) * step) >= param_count)
            fail_msg("%s: sample range %zu outside fedl's %zu parameters", g->case_name, r,
                     param_count);
        p.total += (size_t)count;
    }
    return p;
}

/* Compare the sampled values of full (param_count) with golden entry name,
 * one parameter tensor (sample range) at a time. */
static void expect_sampled_matches(const golden_file *g, const sample_plan *plan, const char *name,
                                   const float *full, float *gathered)
{
    const float *want = golden_f32(g, name, plan->total);
    size_t offset = 0;
    for (size_t r = 0; r < plan->n; r++) {
        size_t start = (size_t)plan->ranges[3 * r], count = (size_t)plan->ranges[3 * r + 1];
        size_t step = (size_t)plan->ranges[3 * r + 2];
        for (size_t j = 0; j < count; j++)
            gathered[j] = full[start + j * step];
        char what[160];
        snprintf(what, sizeof what, "%s, parameter tensor %zu (flat %zu.., every %zu)", name, r,
                 start, step);
        expect_matches(g->case_name, what, gathered, want + offset, count, 1);
        offset += count;
    }
}

typedef struct lenet5_run {
    fedl_model *model;
    const float *x;        /* (batch, 1, 28, 28) */
    const int32_t *labels; /* (batch) */
    int batch;
    size_t in_n; /* batch * 784 */
    size_t param_count;
    sample_plan plan;
    float *gathered; /* (param_count) scratch for sampled compares */
    float *dlogits;  /* (batch, 10) */
} lenet5_run;

/* Open lenet5.bin, build the preset, load the hashed parameters and check
 * them against torch's. */
static lenet5_run lenet5_open(test_state *s)
{
    const golden_file *g = golden_open(s, "lenet5");
    const char *preset = fedl_model_preset(golden_text(g, "preset"));
    if (preset == NULL)
        fail_msg("lenet5: fedl_model_preset(\"%s\") is NULL", golden_text(g, "preset"));
    lenet5_run r = {0};
    r.model = build_model(s, g, preset, 4);
    fedl_shape in = fedl_model_input_shape(r.model), out = fedl_model_output_shape(r.model);
    if (shape_size(out) != LENET5_CLASSES)
        fail_msg("lenet5: fedl's output has %zu values per sample, expected %d", shape_size(out),
                 LENET5_CLASSES);
    r.batch = golden_batch(g, in);
    r.in_n = (size_t)r.batch * shape_size(in);
    r.x = golden_f32(g, "x", r.in_n);
    r.labels = golden_i32(g, "labels", (size_t)r.batch);
    r.param_count = fedl_model_param_count(r.model);
    r.plan = sample_plan_of(g, r.param_count);
    r.gathered = scratch(s, r.param_count);
    r.dlogits = scratch(s, (size_t)r.batch * LENET5_CLASSES);

    float *params = fedl_model_params(r.model);
    hash_init(g, params, r.param_count);
    const float *want = golden_f32(g, "params_sampled", r.plan.total);
    size_t offset = 0;
    for (size_t k = 0; k < r.plan.n; k++) {
        size_t start = (size_t)r.plan.ranges[3 * k], count = (size_t)r.plan.ranges[3 * k + 1];
        size_t step = (size_t)r.plan.ranges[3 * k + 2];
        for (size_t j = 0; j < count; j++)
            if (params[start + j * step] != want[offset + j])
                fail_msg("lenet5: hashed initial parameter %zu is %.9g, torch's %.9g (the test's "
                         "init differs from gen.py's)",
                         start + j * step, (double)params[start + j * step],
                         (double)want[offset + j]);
        offset += count;
    }
    return r;
}

/* zero_grads, forward, mean cross-entropy, backward: one torch iteration
 * up to optimizer.step(). Returns the mean loss. */
static double lenet5_loss_and_grads(lenet5_run *r, float *dx, const float **logits)
{
    fedl_error err = {0};
    fedl_model_zero_grads(r->model);
    expect_ok(fedl_model_forward(r->model, r->x, r->batch, 1, logits, &err), &err, "lenet5",
              "fedl_model_forward");
    double loss_sum = 0.0;
    expect_ok(fedl_loss_softmax_cross_entropy(*logits, r->labels, r->batch, LENET5_CLASSES,
                                              1.0f / (float)r->batch, &loss_sum, r->dlogits, &err),
              &err, "lenet5", "fedl_loss_softmax_cross_entropy");
    expect_ok(fedl_model_backward(r->model, r->dlogits, dx, &err), &err, "lenet5",
              "fedl_model_backward");
    return loss_sum / (double)r->batch;
}

static void test_lenet5_preset_is_the_golden_architecture(void **state)
{
    test_state *s = *state;
    const golden_file *g = golden_open(s, "lenet5");
    const char *preset = fedl_model_preset(golden_text(g, "preset"));
    assert_non_null(preset);
    fedl_model *from_preset = build_model(s, g, preset, 1);
    s->other_model = from_preset;
    s->model = NULL;
    fedl_model *from_golden = build_model(s, g, golden_text(g, "spec"), 1);
    if (strcmp(fedl_model_spec(from_preset), fedl_model_spec(from_golden)) != 0)
        fail_msg("lenet5: preset is \"%s\", the golden vectors were made for \"%s\"",
                 fedl_model_spec(from_preset), fedl_model_spec(from_golden));
    assert_int_equal(fedl_model_param_count(from_preset), 61706);
}

static void test_lenet5_forward_loss_and_gradients_match_torch(void **state)
{
    test_state *s = *state;
    lenet5_run r = lenet5_open(s);
    const golden_file *g = &s->golden;
    size_t logit_n = (size_t)r.batch * LENET5_CLASSES;
    float *dx = scratch(s, r.in_n);
    const float *logits = NULL;
    double loss = lenet5_loss_and_grads(&r, dx, &logits);

    expect_matches("lenet5", "logits", logits, golden_f32(g, "logits", logit_n), logit_n, 1);
    expect_scalar_matches("lenet5", "mean cross-entropy", loss, golden_f32(g, "loss", 1)[0]);
    expect_matches("lenet5", "d loss / d logits", r.dlogits, golden_f32(g, "dlogits", logit_n),
                   logit_n, 1);
    expect_sampled_matches(g, &r.plan, "dparams_sampled", fedl_model_grads(r.model), r.gathered);
    expect_matches("lenet5", "input gradient dx", dx, golden_f32(g, "dx", r.in_n), r.in_n, 1);
}

/* The optimiser configuration torch used, as gen.py stored it:
 * [lr, momentum, dampening, nesterov, weight_decay, beta1, beta2, eps]. */
static fedl_optim_config golden_optim_config(const golden_file *g, const char *name, float *lr)
{
    char key[96];
    snprintf(key, sizeof key, "%s/kind", name);
    int32_t kind = golden_i32(g, key, 1)[0];
    if (kind < FEDL_OPTIM_SGD || kind > FEDL_OPTIM_ADAMW)
        fail_msg("%s: %s is %d", g->case_name, key, kind);
    snprintf(key, sizeof key, "%s/config", name);
    const float *c = golden_f32(g, key, 8);
    fedl_optim_config config = fedl_optim_defaults((fedl_optim_kind)kind);
    config.kind = (fedl_optim_kind)kind;
    *lr = c[0];
    config.momentum = c[1];
    config.dampening = c[2];
    config.nesterov = c[3] != 0.0f;
    config.weight_decay = c[4];
    config.beta1 = c[5];
    config.beta2 = c[6];
    config.eps = c[7];
    return config;
}

/* Two torch iterations on the same batch, then the parameters. */
static void run_lenet5_optimiser(void **state, const char *name)
{
    test_state *s = *state;
    lenet5_run r = lenet5_open(s);
    const golden_file *g = &s->golden;
    float lr = 0.0f;
    fedl_optim_config config = golden_optim_config(g, name, &lr);
    fedl_error err = {0};
    expect_ok(fedl_optim_create(&config, r.param_count, NULL, &s->optim, &err), &err, name,
              "fedl_optim_create");
    for (int step = 0; step < 2; step++) {
        const float *logits = NULL;
        lenet5_loss_and_grads(&r, NULL, &logits);
        fedl_optim_step(s->optim, fedl_model_params(r.model), fedl_model_grads(r.model), lr);
    }
    assert_int_equal(fedl_optim_step_count(s->optim), 2);
    char key[96];
    snprintf(key, sizeof key, "%s/params_sampled", name);
    expect_sampled_matches(g, &r.plan, key, fedl_model_params(r.model), r.gathered);
}

static void test_lenet5_two_sgd_momentum_steps_match_torch(void **state)
{
    run_lenet5_optimiser(state, "sgd_momentum");
}

static void test_lenet5_two_adam_steps_match_torch(void **state)
{
    run_lenet5_optimiser(state, "adam");
}

static void test_lenet5_two_adamw_steps_match_torch(void **state)
{
    run_lenet5_optimiser(state, "adamw");
}

static void test_lenet5_two_sgd_nesterov_weight_decay_steps_match_torch(void **state)
{
    run_lenet5_optimiser(state, "sgd_nesterov_wd");
}

/* ------------------------------------------------------ optimisers alone */

/* Stored gradients, two steps; parameters after each step, and the update
 * (after - before) to 1e-5 of its largest magnitude plus two float32 ulps
 * of the parameter (the rounding of the final add, which no
 * implementation can avoid). */
static void run_optimiser_alone(void **state, const char *name)
{
    test_state *s = *state;
    const golden_file *g = golden_open(s, "optim_step");
    const golden_array *p0 = golden_get(g, "params", GOLDEN_F32);
    size_t n = p0->count;
    float lr = 0.0f;
    fedl_optim_config config = golden_optim_config(g, name, &lr);
    fedl_error err = {0};
    expect_ok(fedl_optim_create(&config, n, NULL, &s->optim, &err), &err, name,
              "fedl_optim_create");
    float *params = scratch(s, n), *before = scratch(s, n);
    memcpy(params, p0->data, n * sizeof(float));
    for (int step = 1; step <= 2; step++) {
        char key[96], what[96];
        memcpy(before, params, n * sizeof(float));
        snprintf(key, sizeof key, "grads_step%d", step);
        const float *grads = golden_f32(g, key, n);
        fedl_optim_step(s->optim, params, grads, lr);
        snprintf(key, sizeof key, "%s/params_step%d", name, step);
        const float *want = golden_f32(g, key, n);
        snprintf(what, sizeof what, "parameters after step %d", step);
        expect_matches(name, what, params, want, n, 0);

        /* A plain compare, not fmax: Debian 12's aarch64 gcc 12.2 crashes
         * (internal compiler error) vectorising the fmax/fabs form at -O3. */
        double max_update = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)want[i] - (double)before[i];
            if (d < 0.0)
                d = -d;
            if (d > max_update)
                max_update = d;
        }
        for (size_t i = 0; i < n; i++) {
            double got = (double)params[i] - (double)before[i];
            double expected = (double)want[i] - (double)before[i];
            double tol = GOLDEN_TOLERANCE * max_update + 2.0 * FLT_EPSILON * fabs((double)want[i]);
            if (!(fabs(got - expected) <= tol))
                fail_msg("%s: step %d moves parameter %zu (gradient %.9g) by %.9g, torch by "
                         "%.9g (|diff| %.3g > %.3g)",
                         name, step, i, (double)grads[i], got, expected, fabs(got - expected), tol);
        }
    }
    assert_int_equal(fedl_optim_step_count(s->optim), 2);
}

static void test_sgd_momentum_update_matches_torch(void **state)
{
    run_optimiser_alone(state, "sgd_momentum");
}

static void test_adam_update_matches_torch(void **state)
{
    run_optimiser_alone(state, "adam");
}

static void test_adamw_decoupled_weight_decay_matches_torch(void **state)
{
    run_optimiser_alone(state, "adamw");
}

static void test_sgd_nesterov_weight_decay_update_matches_torch(void **state)
{
    run_optimiser_alone(state, "sgd_nesterov_wd");
}

/* fedl_optim_defaults promises PyTorch's defaults; gen.py stored the ones
 * torch resolved for Adam (all defaults but lr) and AdamW (likewise). */
static void test_optim_defaults_match_torch(void **state)
{
    test_state *s = *state;
    const golden_file *g = golden_open(s, "optim_step");
    const char *names[] = {"adam", "adamw"};
    for (int i = 0; i < 2; i++) {
        float lr = 0.0f;
        fedl_optim_config torch_config = golden_optim_config(g, names[i], &lr);
        fedl_optim_config d = fedl_optim_defaults(torch_config.kind);
        if (d.beta1 != torch_config.beta1 || d.beta2 != torch_config.beta2 ||
            d.eps != torch_config.eps || d.weight_decay != torch_config.weight_decay)
            fail_msg("%s defaults: fedl betas (%g, %g) eps %g weight_decay %g, torch (%g, %g) "
                     "%g %g",
                     names[i], (double)d.beta1, (double)d.beta2, (double)d.eps,
                     (double)d.weight_decay, (double)torch_config.beta1, (double)torch_config.beta2,
                     (double)torch_config.eps, (double)torch_config.weight_decay);
    }
    fedl_optim_config sgd = fedl_optim_defaults(FEDL_OPTIM_SGD);
    assert_true(sgd.momentum == 0.0f && sgd.dampening == 0.0f && sgd.nesterov == 0 &&
                sgd.weight_decay == 0.0f);
}

/* ------------------------------------------------------------ the reader */

/* The reader must refuse a damaged file rather than hand back garbage. */
static void test_golden_reader_rejects_corrupt_and_truncated_files(void **state)
{
    (void)state;
    char path[1024], why[512];
    snprintf(path, sizeof path, "%s/dense.bin", GOLDEN_DIR);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    unsigned char bytes[4096];
    size_t size = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    assert_true(size > 16 && size < sizeof bytes);

    golden_file g;
    assert_int_equal(golden_parse(bytes, size, &g, why, sizeof why), 0);
    assert_string_equal(((const golden_array *)golden_find(&g, "spec"))->data, "dense(7)");
    golden_free(&g);

    for (size_t cut = 0; cut < size; cut += 7)
        assert_int_equal(golden_parse(bytes, cut, &g, why, sizeof why), -1);
    for (size_t i = 0; i < size; i += 5) {
        bytes[i] ^= 0x10;
        assert_int_equal(golden_parse(bytes, size, &g, why, sizeof why), -1);
        bytes[i] ^= 0x10;
    }
    assert_int_equal(golden_load_path(GOLDEN_DIR "/no-such-case.bin", &g, why, sizeof why), -1);
}

#define GOLDEN_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        GOLDEN_TEST(test_golden_reader_rejects_corrupt_and_truncated_files),
        GOLDEN_TEST(test_dense_matches_torch),
        GOLDEN_TEST(test_dense_flattens_chw_input_like_torch_linear),
        GOLDEN_TEST(test_conv2d_stride2_pad1_matches_torch),
        GOLDEN_TEST(test_conv2d_5x5_pad2_matches_torch),
        GOLDEN_TEST(test_conv1d_stride1_pad1_matches_torch),
        GOLDEN_TEST(test_maxpool2d_2x2_matches_torch),
        GOLDEN_TEST(test_maxpool2d_3x3_stride2_pad1_matches_torch),
        GOLDEN_TEST(test_avgpool2d_2x2_matches_torch),
        GOLDEN_TEST(test_global_avgpool_matches_torch_adaptive_avg_pool),
        GOLDEN_TEST(test_relu_matches_torch),
        GOLDEN_TEST(test_leaky_relu_0_1_matches_torch),
        GOLDEN_TEST(test_sigmoid_matches_torch),
        GOLDEN_TEST(test_tanh_matches_torch),
        GOLDEN_TEST(test_flatten_matches_torch),
        GOLDEN_TEST(test_mse_loss_and_dense_gradients_match_torch),
        GOLDEN_TEST(test_lenet5_preset_is_the_golden_architecture),
        GOLDEN_TEST(test_lenet5_forward_loss_and_gradients_match_torch),
        GOLDEN_TEST(test_lenet5_two_sgd_momentum_steps_match_torch),
        GOLDEN_TEST(test_lenet5_two_adam_steps_match_torch),
        GOLDEN_TEST(test_lenet5_two_adamw_steps_match_torch),
        GOLDEN_TEST(test_lenet5_two_sgd_nesterov_weight_decay_steps_match_torch),
        GOLDEN_TEST(test_sgd_momentum_update_matches_torch),
        GOLDEN_TEST(test_adam_update_matches_torch),
        GOLDEN_TEST(test_adamw_decoupled_weight_decay_matches_torch),
        GOLDEN_TEST(test_sgd_nesterov_weight_decay_update_matches_torch),
        GOLDEN_TEST(test_optim_defaults_match_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
