/*
 * model.c - a model is a chain of layers built from a spec string. This file
 * owns the spec parser, the flat parameter and gradient arrays, and the one
 * block that holds every activation, forward-to-backward side buffer and the
 * shared workspace, sized by fedl_model_reserve().
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer.h"

#define MAX_LAYERS 256
#define MAX_ARGS 8
#define FLOAT_ALIGN 16                 /* floats: sub-buffers start on 64-byte boundaries */
#define MAX_SPEC_INT (1 << 20)         /* largest integer argument in a spec */
#define MAX_LAYER_FLOATS 2147483647.0  /* largest activation of one sample */
#define MAX_LAYER_WORK 1099511627776.0 /* 2^40: bounds every size product */

static const char *const lenet5_spec =
    "conv2d(6,5,pad=2) relu maxpool2d(2) conv2d(16,5) relu maxpool2d(2) flatten dense(120) "
    "relu dense(84) relu dense(10)";
static const char *const mlp_spec = "flatten dense(256) relu dense(128) relu dense(10)";

struct fedl_model {
    fedl_allocator *alloc;
    fedl_shape input;
    uint64_t seed;
    uint64_t step;
    uint64_t sample_offset; /* of the next forward within the step's batch */
    int layer_count;
    int layer_capacity; /* layers allocated (tokens in the spec) */
    int first_param;    /* first layer with parameters (layer_count if none) */
    int grads_stale;    /* zero_grads was called: the next backward overwrites */
    fedl_layer *layers; /* (layer_capacity) */
    char *spec;         /* canonical spec text */
    size_t spec_bytes;

    size_t param_count;
    float *params; /* (param_count) */
    float *grads;  /* (param_count) */

    /* reservation, all inside block (owned unless bound by the caller) */
    int max_batch;
    int block_owned;
    size_t block_floats;
    float *block;
    float **acts;          /* (layer_count) -> (max_batch, out_size) */
    void **aux;            /* (layer_count) -> (max_batch, aux_size) words */
    float *grad_buffer[2]; /* ping-pong input gradients (max_batch, max in_size) */
    float *workspace;
    size_t workspace_floats;

    /* the last forward pass */
    const float *last_input; /* (batch, input) */
    int last_batch;
    int last_training;

    int profiling;
    fedl_layer_profile *profile; /* (layer_count) */
};

/* ------------------------------------------------------------ spec parsing */

typedef struct spec_arg {
    char key[16]; /* "" for positional */
    char value[32];
    size_t position; /* byte offset of the argument in the spec */
} spec_arg;

typedef struct layer_kind_entry {
    const char *name;
    const char *alias;
    const fedl_layer_ops *ops;
    const char *keys[6]; /* positional order; NULL-terminated */
    int required;        /* how many leading keys must be given */
} layer_kind_entry;

static const layer_kind_entry kinds[] = {
    {"dense", "linear", &fedl_layer_dense_ops, {"units", "bias", "init", NULL}, 1},
    {"conv2d",
     "conv",
     &fedl_layer_conv2d_ops,
     {"out", "kernel", "stride", "pad", "bias", "init"},
     2},
    {"conv1d", NULL, &fedl_layer_conv1d_ops, {"out", "kernel", "stride", "pad", "bias", "init"}, 2},
    {"maxpool2d", "maxpool", &fedl_layer_maxpool2d_ops, {"kernel", "stride", "pad", NULL}, 1},
    {"avgpool2d", "avgpool", &fedl_layer_avgpool2d_ops, {"kernel", "stride", "pad", NULL}, 1},
    {"global_avgpool", "gap", &fedl_layer_global_avgpool_ops, {NULL}, 0},
    {"flatten", NULL, &fedl_layer_flatten_ops, {NULL}, 0},
    {"relu", NULL, &fedl_layer_relu_ops, {NULL}, 0},
    {"leaky_relu", "leakyrelu", &fedl_layer_leaky_relu_ops, {"slope", NULL}, 0},
    {"sigmoid", NULL, &fedl_layer_sigmoid_ops, {NULL}, 0},
    {"tanh", NULL, &fedl_layer_tanh_ops, {NULL}, 0},
    {"dropout", NULL, &fedl_layer_dropout_ops, {"p", NULL}, 0},
};

static const layer_kind_entry *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(name, kinds[i].name) == 0 ||
            (kinds[i].alias != NULL && strcmp(name, kinds[i].alias) == 0))
            return &kinds[i];
    }
    return NULL;
}

const char *fedl_model_preset(const char *name)
{
    if (name == NULL)
        return NULL;
    if (strcmp(name, "lenet5") == 0)
        return lenet5_spec;
    if (strcmp(name, "mlp") == 0)
        return mlp_spec;
    return NULL;
}

static int key_index(const layer_kind_entry *kind, const char *key)
{
    if (strcmp(key, "rate") == 0)
        key = "p";
    for (int i = 0; i < 6 && kind->keys[i] != NULL; i++) {
        if (strcmp(kind->keys[i], key) == 0)
            return i;
    }
    return -1;
}

static fedl_status parse_int_value(const char *text, int32_t *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < 0 || v > MAX_SPEC_INT)
        return FEDL_ERR_SPEC;
    *out = (int32_t)v;
    return FEDL_OK;
}

static fedl_status parse_float_value(const char *text, float *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || end == text || v != v)
        return FEDL_ERR_SPEC;
    *out = (float)v;
    return FEDL_OK;
}

/* Apply one argument (already matched to key slot `slot`) to layer l. */
static fedl_status apply_arg(fedl_layer *l, const char *key, const spec_arg *arg, const char *token,
                             fedl_error *err)
{
    fedl_status st = FEDL_OK;
    int32_t iv = 0;
    if (strcmp(key, "init") == 0) {
        if (strcmp(arg->value, "he") == 0)
            l->init = FEDL_INIT_HE_UNIFORM;
        else if (strcmp(arg->value, "glorot") == 0 || strcmp(arg->value, "xavier") == 0)
            l->init = FEDL_INIT_GLOROT_UNIFORM;
        else
            st = FEDL_ERR_SPEC;
    } else if (strcmp(key, "slope") == 0) {
        st = parse_float_value(arg->value, &l->slope);
    } else if (strcmp(key, "p") == 0) {
        st = parse_float_value(arg->value, &l->rate);
    } else {
        st = parse_int_value(arg->value, &iv);
        if (st == FEDL_OK) {
            if (strcmp(key, "units") == 0 || strcmp(key, "out") == 0)
                l->units = iv;
            else if (strcmp(key, "kernel") == 0)
                l->kernel = iv;
            else if (strcmp(key, "stride") == 0)
                l->stride = iv;
            else if (strcmp(key, "pad") == 0)
                l->pad = iv;
            else if (strcmp(key, "bias") == 0 && (iv == 0 || iv == 1))
                l->bias = iv;
            else
                st = FEDL_ERR_SPEC;
        }
    }
    if (st != FEDL_OK)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "model spec: bad value '%s' for %s of '%s' at position %zu",
                              arg->value, key, token, arg->position);
    return FEDL_OK;
}

/* Parse the arguments between '(' and ')' of token starting at p. */
static fedl_status parse_args(const char *spec, size_t *pos, spec_arg *args, int *count,
                              const char *token, fedl_error *err)
{
    size_t i = *pos; /* just after '(' */
    *count = 0;
    for (;;) {
        spec_arg *arg;
        size_t start, len;
        const char *eq;
        while (spec[i] == ' ')
            i++;
        if (spec[i] == ')' && *count == 0) {
            i++;
            break;
        }
        if (*count == MAX_ARGS)
            return fedl_error_set(err, FEDL_ERR_SPEC,
                                  "model spec: too many arguments in '%s' at position %zu", token,
                                  i);
        start = i;
        while (spec[i] != '\0' && spec[i] != ',' && spec[i] != ')')
            i++;
        if (spec[i] == '\0')
            return fedl_error_set(err, FEDL_ERR_SPEC,
                                  "model spec: missing ')' after '%s' (opened before position %zu)",
                                  token, start);
        len = i - start;
        while (len > 0 && spec[start + len - 1] == ' ')
            len--;
        arg = &args[(*count)++];
        memset(arg, 0, sizeof *arg);
        arg->position = start;
        eq = memchr(spec + start, '=', len);
        if (eq != NULL) {
            size_t key_len = (size_t)(eq - (spec + start));
            size_t value_len = len - key_len - 1;
            if (key_len == 0 || key_len >= sizeof arg->key || value_len == 0 ||
                value_len >= sizeof arg->value)
                return fedl_error_set(
                    err, FEDL_ERR_SPEC,
                    "model spec: malformed argument '%.*s' in '%s' at position %zu", (int)len,
                    spec + start, token, start);
            memcpy(arg->key, spec + start, key_len);
            memcpy(arg->value, eq + 1, value_len);
        } else {
            if (len == 0 || len >= sizeof arg->value)
                return fedl_error_set(
                    err, FEDL_ERR_SPEC,
                    "model spec: empty or overlong argument in '%s' at position %zu", token, start);
            memcpy(arg->value, spec + start, len);
        }
        if (spec[i] == ')') {
            i++;
            break;
        }
        i++; /* ',' */
    }
    *pos = i;
    return FEDL_OK;
}

static void layer_defaults(fedl_layer *l)
{
    memset(l, 0, sizeof *l);
    l->stride = -1; /* "not given": conv -> 1, pool -> kernel */
    l->bias = 1;
    l->slope = 0.01f;
    l->rate = 0.5f;
    l->init = FEDL_INIT_DEFAULT;
}

/* Parse one layer token at spec[*pos]; fills l->ops and hyper-parameters. */
static fedl_status parse_layer(const char *spec, size_t *pos, fedl_layer *l, fedl_error *err)
{
    char name[32];
    char token[96];
    size_t start = *pos, i = *pos, name_len;
    const layer_kind_entry *kind;
    spec_arg args[MAX_ARGS];
    int arg_count = 0, given[6] = {0};
    fedl_status st;

    while (isalnum((unsigned char)spec[i]) || spec[i] == '_')
        i++;
    name_len = i - start;
    if (name_len == 0 || name_len >= sizeof name) {
        size_t end = i;
        while (spec[end] != '\0' && !isspace((unsigned char)spec[end]))
            end++;
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "model spec: unexpected '%.*s' at position %zu (expected a layer "
                              "name such as dense(10))",
                              (int)(end - start > 40 ? 40 : end - start), spec + start, start);
    }
    memcpy(name, spec + start, name_len);
    name[name_len] = '\0';
    for (size_t c = 0; c < name_len; c++)
        name[c] = (char)tolower((unsigned char)name[c]);
    snprintf(token, sizeof token, "%s", name);
    kind = find_kind(name);
    if (kind == NULL)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "model spec: unknown layer '%s' at position %zu (known: dense, "
                              "conv2d, conv1d, maxpool2d, avgpool2d, global_avgpool, flatten, "
                              "relu, leaky_relu, sigmoid, tanh, dropout)",
                              name, start);
    layer_defaults(l);
    l->ops = kind->ops;
    if (spec[i] == '(') {
        i++;
        st = parse_args(spec, &i, args, &arg_count, token, err);
        if (st != FEDL_OK)
            return st;
    }
    if (spec[i] != '\0' && !isspace((unsigned char)spec[i]))
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "model spec: unexpected '%c' after '%s' at position %zu", spec[i],
                              token, i);
    for (int a = 0, next_positional = 0; a < arg_count; a++) {
        int slot;
        if (args[a].key[0] == '\0') {
            slot = next_positional++;
            if (slot >= 6 || kind->keys[slot] == NULL)
                return fedl_error_set(err, FEDL_ERR_SPEC,
                                      "model spec: '%s' takes at most %d positional arguments "
                                      "('%s' at position %zu)",
                                      token, slot, args[a].value, args[a].position);
        } else {
            slot = key_index(kind, args[a].key);
            if (slot < 0)
                return fedl_error_set(err, FEDL_ERR_SPEC,
                                      "model spec: '%s' has no argument '%s' (position %zu)", token,
                                      args[a].key, args[a].position);
        }
        if (given[slot])
            return fedl_error_set(err, FEDL_ERR_SPEC,
                                  "model spec: argument '%s' of '%s' given twice (position %zu)",
                                  kind->keys[slot], token, args[a].position);
        given[slot] = 1;
        st = apply_arg(l, kind->keys[slot], &args[a], token, err);
        if (st != FEDL_OK)
            return st;
    }
    for (int r = 0; r < kind->required; r++) {
        if (!given[r])
            return fedl_error_set(err, FEDL_ERR_SPEC,
                                  "model spec: '%s' at position %zu needs argument '%s', e.g. %s",
                                  token, start, kind->keys[r],
                                  kind->ops == &fedl_layer_dense_ops ? "dense(10)"
                                  : kind->required == 2              ? "conv2d(6,5)"
                                                                     : "maxpool2d(2)");
    }
    if (l->stride == -1)
        l->stride =
            (kind->ops == &fedl_layer_maxpool2d_ops || kind->ops == &fedl_layer_avgpool2d_ops)
                ? l->kernel
                : 1;
    *pos = i;
    return FEDL_OK;
}

/* Canonical text of a parsed layer, e.g. "conv2d(6,5,stride=1,pad=2)". */
static void describe_layer(const fedl_layer *l, char *buf, size_t size)
{
    const char *init = l->init == FEDL_INIT_HE_UNIFORM       ? ",init=he"
                       : l->init == FEDL_INIT_GLOROT_UNIFORM ? ",init=glorot"
                                                             : "";
    const char *bias = l->bias ? "" : ",bias=0";
    switch (l->ops->kind) {
    case FEDL_LAYER_DENSE:
        snprintf(buf, size, "dense(%d%s%s)", (int)l->units, bias, init);
        break;
    case FEDL_LAYER_CONV2D:
    case FEDL_LAYER_CONV1D:
        snprintf(buf, size, "%s(%d,%d,stride=%d,pad=%d%s%s)", l->ops->name, (int)l->units,
                 (int)l->kernel, (int)l->stride, (int)l->pad, bias, init);
        break;
    case FEDL_LAYER_MAXPOOL2D:
    case FEDL_LAYER_AVGPOOL2D:
        snprintf(buf, size, "%s(%d,stride=%d,pad=%d)", l->ops->name, (int)l->kernel, (int)l->stride,
                 (int)l->pad);
        break;
    case FEDL_LAYER_LEAKY_RELU:
        snprintf(buf, size, "leaky_relu(%g)", (double)l->slope);
        break;
    case FEDL_LAYER_DROPOUT:
        snprintf(buf, size, "dropout(%g)", (double)l->rate);
        break;
    default:
        snprintf(buf, size, "%s", l->ops->name);
        break;
    }
}

/* ------------------------------------------------------------------ create */

static int count_tokens(const char *spec)
{
    int count = 0, depth = 0, in_token = 0;
    for (const char *p = spec; *p != '\0'; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        if (isspace((unsigned char)*p) && depth == 0) {
            in_token = 0;
        } else if (!in_token) {
            in_token = 1;
            count++;
        }
    }
    return count;
}

/* Reject sizes whose products could overflow before a layer computes them:
 * every product a layer forms is bounded by in_size * units * kernel^2. */
static fedl_status check_layer_size(const fedl_layer *l, fedl_error *err)
{
    double units = l->units > 0 ? l->units : 1, kernel = l->kernel > 0 ? l->kernel : 1;
    double padded = ((double)l->in.h + 2.0 * l->pad) * ((double)l->in.w + 2.0 * l->pad);
    double channels = units > l->in.c ? units : l->in.c;
    if ((double)l->in_size > MAX_LAYER_FLOATS ||
        (double)l->in_size * units * kernel * kernel > MAX_LAYER_WORK ||
        padded * channels > MAX_LAYER_FLOATS)
        return fedl_error_set(err, FEDL_ERR_SPEC, "layer too large for this input");
    return FEDL_OK;
}

static fedl_status setup_layers(fedl_model *m, fedl_error *err)
{
    fedl_shape shape = m->input;
    size_t offset = 0;
    m->first_param = m->layer_count;
    for (int i = 0; i < m->layer_count; i++) {
        fedl_layer *l = &m->layers[i];
        fedl_status st;
        char text[64];
        l->index = i;
        l->in = shape;
        l->in_size = (size_t)shape.c * (size_t)shape.h * (size_t)shape.w;
        l->followed_by_relu =
            i + 1 < m->layer_count && (m->layers[i + 1].ops == &fedl_layer_relu_ops ||
                                       m->layers[i + 1].ops == &fedl_layer_leaky_relu_ops);
        st = check_layer_size(l, err);
        if (st == FEDL_OK)
            st = l->ops->setup(l, err);
        if (st == FEDL_OK &&
            ((double)l->out_size > MAX_LAYER_FLOATS || (double)l->param_count > MAX_LAYER_WORK))
            st = fedl_error_set(err, FEDL_ERR_SPEC, "output or parameters too large");
        if (st != FEDL_OK) {
            char detail[sizeof err->message];
            describe_layer(l, text, sizeof text);
            snprintf(detail, sizeof detail, "%s", err ? err->message : "");
            return fedl_error_set(err, st, "model spec: layer %d '%s' on input (%d,%d,%d): %s",
                                  i + 1, text, (int)shape.c, (int)shape.h, (int)shape.w, detail);
        }
        if (l->out.c <= 0 || l->out.h <= 0 || l->out.w <= 0) {
            describe_layer(l, text, sizeof text);
            return fedl_error_set(err, FEDL_ERR_SPEC,
                                  "model spec: layer %d '%s' on input (%d,%d,%d) gives an empty "
                                  "output (%d,%d,%d)",
                                  i + 1, text, (int)shape.c, (int)shape.h, (int)shape.w,
                                  (int)l->out.c, (int)l->out.h, (int)l->out.w);
        }
        l->param_offset = offset;
        offset += l->param_count;
        if (l->param_count > 0 && m->first_param == m->layer_count)
            m->first_param = i;
        shape = l->out;
    }
    m->param_count = offset;
    return FEDL_OK;
}

static fedl_status build_spec_text(fedl_model *m, fedl_error *err)
{
    size_t bytes = 1;
    char text[64];
    for (int i = 0; i < m->layer_count; i++) {
        describe_layer(&m->layers[i], text, sizeof text);
        bytes += strlen(text) + 1;
    }
    m->spec = fedl_mem_alloc(m->alloc, bytes);
    if (m->spec == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "model: cannot allocate %zu bytes for the spec",
                              bytes);
    m->spec_bytes = bytes;
    for (int i = 0; i < m->layer_count; i++) {
        describe_layer(&m->layers[i], text, sizeof text);
        if (i > 0)
            strcat(m->spec, " ");
        strcat(m->spec, text);
    }
    return FEDL_OK;
}

/* Parse spec and set up every layer's shapes and parameter count: all of a
 * model but its parameter, gradient and profile arrays. */
static fedl_status build_structure(const char *spec, fedl_shape input, uint64_t seed,
                                   fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    fedl_model *m;
    fedl_status st;
    size_t pos = 0;
    int count;
    const char *preset;

    *out = NULL;
    if (spec == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model spec: NULL");
    preset = fedl_model_preset(spec);
    if (preset != NULL)
        spec = preset;
    if (input.c <= 0 || input.h <= 0 || input.w <= 0 || input.c > 65536 || input.h > 65536 ||
        input.w > 65536)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model: input shape (%d,%d,%d) invalid",
                              (int)input.c, (int)input.h, (int)input.w);
    count = count_tokens(spec);
    if (count == 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "model spec: empty (try \"lenet5\" or \"mlp\")");
    if (count > MAX_LAYERS)
        return fedl_error_set(err, FEDL_ERR_SPEC, "model spec: %d layers, at most %d", count,
                              MAX_LAYERS);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    m = fedl_mem_alloc(alloc, sizeof *m);
    if (m == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "model: cannot allocate the model");
    m->alloc = alloc;
    m->input = input;
    m->seed = seed;
    m->layers = fedl_mem_alloc(alloc, (size_t)count * sizeof *m->layers);
    if (m->layers == NULL) {
        fedl_model_destroy(m);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "model: cannot allocate %d layers", count);
    }
    m->layer_capacity = count;
    for (;;) {
        while (isspace((unsigned char)spec[pos]))
            pos++;
        if (spec[pos] == '\0')
            break;
        if (m->layer_count == count) { /* cannot happen: each layer is a token */
            fedl_model_destroy(m);
            return fedl_error_set(err, FEDL_ERR_SPEC, "model spec: cannot split at position %zu",
                                  pos);
        }
        st = parse_layer(spec, &pos, &m->layers[m->layer_count], err);
        if (st != FEDL_OK) {
            fedl_model_destroy(m);
            return st;
        }
        m->layer_count++;
    }
    st = setup_layers(m, err);
    if (st == FEDL_OK)
        st = build_spec_text(m, err);
    if (st != FEDL_OK) {
        fedl_model_destroy(m);
        return st;
    }
    *out = m;
    return FEDL_OK;
}

/* The parameter, gradient and profile arrays of a built structure. */
static fedl_status allocate_arrays(fedl_model *m, fedl_error *err)
{
    fedl_allocator *alloc = m->alloc;
    m->params = fedl_mem_alloc_aligned(alloc, (m->param_count + 1) * sizeof(float), 64);
    m->grads = fedl_mem_alloc_aligned(alloc, (m->param_count + 1) * sizeof(float), 64);
    m->profile = fedl_mem_alloc(alloc, (size_t)m->layer_count * sizeof *m->profile);
    if (m->params == NULL || m->grads == NULL || m->profile == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "model: cannot allocate %zu bytes for parameters and gradients",
                              2 * m->param_count * sizeof(float));
    return FEDL_OK;
}

static fedl_status create_model(const char *spec, fedl_shape input, uint64_t seed, int initialise,
                                fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    fedl_model *m;
    fedl_status st = build_structure(spec, input, seed, alloc, &m, err);
    *out = NULL;
    if (st != FEDL_OK)
        return st;
    st = allocate_arrays(m, err);
    if (st != FEDL_OK) {
        fedl_model_destroy(m);
        return st;
    }
    if (initialise)
        fedl_model_init_params(m, seed, FEDL_INIT_DEFAULT);
    else
        memset(m->params, 0, m->param_count * sizeof(float));
    *out = m;
    return FEDL_OK;
}

fedl_status fedl_model_create(const char *spec, fedl_shape input, uint64_t seed,
                              fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    return create_model(spec, input, seed, 1, alloc, out, err);
}

fedl_status fedl_model_create_zeroed(const char *spec, fedl_shape input, uint64_t seed,
                                     fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    return create_model(spec, input, seed, 0, alloc, out, err);
}

fedl_status fedl_spec_param_count(const char *spec, fedl_shape input, fedl_allocator *alloc,
                                  size_t *count, fedl_error *err)
{
    fedl_model *m;
    fedl_status st = build_structure(spec, input, 0, alloc, &m, err);
    *count = 0;
    if (st != FEDL_OK)
        return st;
    *count = m->param_count;
    fedl_model_destroy(m);
    return FEDL_OK;
}

static void release_reservation(fedl_model *m)
{
    if (m->block_owned) {
        fedl_mem_free_aligned(m->alloc, m->block);
        fedl_mem_free(m->alloc, m->acts, (size_t)m->layer_count * sizeof *m->acts);
        fedl_mem_free(m->alloc, m->aux, (size_t)m->layer_count * sizeof *m->aux);
    }
    m->block_owned = 0;
    m->block = NULL;
    m->acts = NULL;
    m->aux = NULL;
    m->grad_buffer[0] = m->grad_buffer[1] = NULL;
    m->workspace = NULL;
    m->workspace_floats = 0;
    m->block_floats = 0;
    m->max_batch = 0;
    m->last_batch = 0;
}

void fedl_model_destroy(fedl_model *m)
{
    if (m == NULL)
        return;
    release_reservation(m);
    fedl_mem_free_aligned(m->alloc, m->params);
    fedl_mem_free_aligned(m->alloc, m->grads);
    fedl_mem_free(m->alloc, m->profile, (size_t)m->layer_count * sizeof *m->profile);
    fedl_mem_free(m->alloc, m->spec, m->spec_bytes);
    fedl_mem_free(m->alloc, m->layers, (size_t)m->layer_capacity * sizeof *m->layers);
    fedl_mem_free(m->alloc, m, sizeof *m);
}

void fedl_model_init_params(fedl_model *m, uint64_t seed, fedl_init_kind kind)
{
    for (int i = 0; i < m->layer_count; i++) {
        const fedl_layer *l = &m->layers[i];
        fedl_rng rng;
        fedl_init_kind layer_kind = kind != FEDL_INIT_DEFAULT ? kind : l->init;
        if (l->ops->init == NULL || l->param_count == 0)
            continue;
        fedl_rng_init(&rng, seed, (uint64_t)i);
        l->ops->init(l, m->params + l->param_offset, &rng, layer_kind);
    }
    m->seed = seed;
}

/* --------------------------------------------------------------- reserve */

static size_t round_floats(size_t n)
{
    return (n + FLOAT_ALIGN - 1) / FLOAT_ALIGN * FLOAT_ALIGN;
}

/* Floats of the reservation block for max_batch, and the workspace share. */
static size_t reservation_floats(const fedl_model *m, int max_batch, size_t *workspace)
{
    size_t total = 0, widest = m->layers[0].in_size, ws = 0;
    size_t batch = (size_t)max_batch;
    for (int i = 0; i < m->layer_count; i++) {
        const fedl_layer *l = &m->layers[i];
        total += round_floats(batch * l->out_size);
        total += round_floats(batch * l->aux_size);
        if (l->in_size > widest)
            widest = l->in_size;
        if (l->ops->workspace_floats != NULL) {
            size_t need = l->ops->workspace_floats(l, max_batch);
            if (need > ws)
                ws = need;
        }
    }
    total += 2 * round_floats(batch * widest);
    total += round_floats(ws);
    if (workspace != NULL)
        *workspace = ws;
    return total;
}

/* Bytes the accounted allocator hands out for the reservation: the block
 * (an aligned allocation: size + two size_t of header + the alignment, see
 * fedl_mem_alloc_aligned) and the two per-layer pointer arrays. */
static size_t reservation_bytes(const fedl_model *m, size_t floats)
{
    return floats * sizeof(float) + 2 * sizeof(size_t) + 64 +
           2 * (size_t)m->layer_count * sizeof(void *);
}

size_t fedl_model_activation_bytes(const fedl_model *m, int max_batch)
{
    if (max_batch <= 0)
        return 0;
    return reservation_bytes(m, reservation_floats(m, max_batch, NULL));
}

int fedl_model_reserved_batch(const fedl_model *m)
{
    return m->max_batch;
}

/* Bytes of the two per-layer pointer tables when lent, rounded to 64. */
static size_t tables_bytes(const fedl_model *m)
{
    return round_floats(2 * (size_t)m->layer_count * sizeof(void *) / sizeof(float)) *
           sizeof(float);
}

size_t fedl_model_workspace_bytes(const fedl_model *m, int max_batch)
{
    if (max_batch <= 0)
        return 0;
    return tables_bytes(m) + reservation_floats(m, max_batch, NULL) * sizeof(float);
}

size_t fedl_model_reserved_bytes(const fedl_model *m)
{
    if (m->block == NULL)
        return 0;
    if (!m->block_owned)
        return fedl_model_workspace_bytes(m, m->max_batch);
    return reservation_bytes(m, m->block_floats);
}

/* Point the per-layer buffers into block, laid out for max_batch. */
static void carve_block(fedl_model *m, int max_batch, size_t floats, size_t workspace)
{
    size_t cursor = 0, widest = m->layers[0].in_size;
    m->block_floats = floats;
    for (int i = 0; i < m->layer_count; i++) {
        const fedl_layer *l = &m->layers[i];
        m->acts[i] = m->block + cursor;
        cursor += round_floats((size_t)max_batch * l->out_size);
        m->aux[i] = m->block + cursor;
        cursor += round_floats((size_t)max_batch * l->aux_size);
        if (l->in_size > widest)
            widest = l->in_size;
    }
    for (int k = 0; k < 2; k++) {
        m->grad_buffer[k] = m->block + cursor;
        cursor += round_floats((size_t)max_batch * widest);
    }
    m->workspace = m->block + cursor;
    m->workspace_floats = workspace;
    m->max_batch = max_batch;
}

static int batch_in_range(int max_batch)
{
    return max_batch >= 0 && max_batch <= (1 << 24);
}

fedl_status fedl_model_reserve(fedl_model *m, int max_batch, fedl_error *err)
{
    size_t workspace = 0, floats;
    if (!batch_in_range(max_batch))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model: batch %d out of range", max_batch);
    release_reservation(m);
    if (max_batch == 0)
        return FEDL_OK;
    floats = reservation_floats(m, max_batch, &workspace);
    m->block = fedl_mem_alloc_aligned(m->alloc, floats * sizeof(float), 64);
    m->acts = fedl_mem_alloc(m->alloc, (size_t)m->layer_count * sizeof *m->acts);
    m->aux = fedl_mem_alloc(m->alloc, (size_t)m->layer_count * sizeof *m->aux);
    m->block_owned = 1;
    if (m->block == NULL || m->acts == NULL || m->aux == NULL) {
        release_reservation(m);
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "model: cannot reserve %zu bytes of activations for batch %d",
                              floats * sizeof(float), max_batch);
    }
    carve_block(m, max_batch, floats, workspace);
    fedl_log(FEDL_LOG_DEBUG, "model: reserved %zu bytes for batch %d (workspace %zu bytes)",
             fedl_model_reserved_bytes(m), max_batch, workspace * sizeof(float));
    return FEDL_OK;
}

fedl_status fedl_model_bind_workspace(fedl_model *m, int max_batch, void *memory, size_t bytes,
                                      fedl_error *err)
{
    size_t workspace = 0, floats, need;
    if (!batch_in_range(max_batch))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model: batch %d out of range", max_batch);
    if (max_batch == 0) {
        release_reservation(m);
        return FEDL_OK;
    }
    need = fedl_model_workspace_bytes(m, max_batch);
    if (memory == NULL || ((uintptr_t)memory & 63) != 0 || bytes < need)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "model: workspace for batch %d needs %zu bytes, 64-byte aligned "
                              "(given %zu at %p)",
                              max_batch, need, bytes, memory);
    release_reservation(m);
    floats = reservation_floats(m, max_batch, &workspace);
    m->acts = memory;
    m->aux = (void **)(m->acts + m->layer_count);
    m->block = (float *)((unsigned char *)memory + tables_bytes(m));
    carve_block(m, max_batch, floats, workspace);
    return FEDL_OK;
}

/* ---------------------------------------------------------------- access */

size_t fedl_model_param_count(const fedl_model *m)
{
    return m->param_count;
}

float *fedl_model_params(fedl_model *m)
{
    return m->params;
}

static void materialise_zero_grads(fedl_model *m);

float *fedl_model_grads(fedl_model *m)
{
    materialise_zero_grads(m);
    return m->grads;
}

/* Zeroing is lazy: the next backward overwrites every gradient instead of
 * adding to it, which saves a pass over the whole array each step. Anyone who
 * reads the gradients first gets them zeroed here. */
void fedl_model_zero_grads(fedl_model *m)
{
    m->grads_stale = 1;
}

static void materialise_zero_grads(fedl_model *m)
{
    if (m->grads_stale) {
        memset(m->grads, 0, m->param_count * sizeof(float));
        m->grads_stale = 0;
    }
}

fedl_shape fedl_model_input_shape(const fedl_model *m)
{
    return m->input;
}

fedl_shape fedl_model_output_shape(const fedl_model *m)
{
    return m->layers[m->layer_count - 1].out;
}

uint64_t fedl_model_seed(const fedl_model *m)
{
    return m->seed;
}

void fedl_model_set_seed(fedl_model *m, uint64_t seed)
{
    m->seed = seed;
}

const char *fedl_model_spec(const fedl_model *m)
{
    return m->spec;
}

int fedl_model_layer_count(const fedl_model *m)
{
    return m->layer_count;
}

fedl_status fedl_model_layer_info(const fedl_model *m, int index, fedl_layer_info *info)
{
    const fedl_layer *l;
    if (index < 0 || index >= m->layer_count)
        return FEDL_ERR_INVALID_ARG;
    l = &m->layers[index];
    memset(info, 0, sizeof *info);
    info->kind = l->ops->kind;
    info->name = l->ops->name;
    describe_layer(l, info->text, sizeof info->text);
    info->in = l->in;
    info->out = l->out;
    info->param_offset = l->param_offset;
    info->param_count = l->param_count;
    info->activation_floats = l->out_size + l->aux_size;
    l->ops->flops(l, &info->forward_flops, &info->backward_flops);
    return FEDL_OK;
}

void fedl_model_set_sample_offset(fedl_model *m, uint64_t first_sample)
{
    m->sample_offset = first_sample;
}

void fedl_model_set_step(fedl_model *m, uint64_t step)
{
    m->step = step;
}

void fedl_model_set_profiling(fedl_model *m, int on)
{
    m->profiling = on;
    if (on)
        memset(m->profile, 0, (size_t)m->layer_count * sizeof *m->profile);
}

fedl_status fedl_model_layer_profile(const fedl_model *m, int index, fedl_layer_profile *profile)
{
    if (index < 0 || index >= m->layer_count)
        return FEDL_ERR_INVALID_ARG;
    *profile = m->profile[index];
    return FEDL_OK;
}

/* --------------------------------------------------------- forward/backward */

static fedl_layer_ctx make_ctx(const fedl_model *m, int batch, int training)
{
    fedl_layer_ctx ctx;
    ctx.batch = batch;
    ctx.training = training;
    ctx.seed = m->seed;
    ctx.step = m->step;
    ctx.sample_offset = m->sample_offset;
    ctx.workspace = m->workspace;
    ctx.workspace_floats = m->workspace_floats;
    ctx.accumulate = 1;
    return ctx;
}

fedl_status fedl_model_forward(fedl_model *m, const float *x, int batch, int training,
                               const float **out, fedl_error *err)
{
    fedl_layer_ctx ctx;
    const float *input = x;
    if (m->block == NULL)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "model: no activation memory; call fedl_model_reserve first");
    if (batch <= 0 || batch > m->max_batch)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "model: batch %d outside the reservation (1..%d)", batch,
                              m->max_batch);
    ctx = make_ctx(m, batch, training);
    for (int i = 0; i < m->layer_count; i++) {
        const fedl_layer *l = &m->layers[i];
        uint64_t start = m->profiling ? fedl_time_ns() : 0;
        l->ops->forward(l, &ctx, m->params + l->param_offset, input, m->acts[i], m->aux[i]);
        if (m->profiling) {
            double fwd, bwd;
            l->ops->flops(l, &fwd, &bwd);
            m->profile[i].forward_ns += fedl_time_ns() - start;
            m->profile[i].forward_calls++;
            m->profile[i].forward_flops += fwd * batch;
        }
        input = m->acts[i];
    }
    m->last_input = x;
    m->last_batch = batch;
    m->last_training = training;
    *out = m->acts[m->layer_count - 1];
    return FEDL_OK;
}

fedl_status fedl_model_backward(fedl_model *m, const float *dout, float *dx, fedl_error *err)
{
    fedl_layer_ctx ctx;
    int last;
    const float *dy = dout;
    if (m->last_batch == 0 || !m->last_training)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "model: backward needs a training forward pass first");
    ctx = make_ctx(m, m->last_batch, 1);
    ctx.accumulate = !m->grads_stale;
    m->grads_stale = 0; /* every layer with parameters is visited below */
    /* Without an input gradient to return, nothing below the first layer with
     * parameters needs a gradient, and that layer needs no input gradient:
     * for an MLP behind a flatten this skips a third of the backward work. */
    last = dx != NULL ? 0 : m->first_param;
    for (int i = m->layer_count - 1; i >= last && i >= 0; i--) {
        const fedl_layer *l = &m->layers[i];
        const float *x = i > 0 ? m->acts[i - 1] : m->last_input;
        float *dxi = i == 0 ? dx : (i > last ? m->grad_buffer[i % 2] : NULL);
        uint64_t start = m->profiling ? fedl_time_ns() : 0;
        l->ops->backward(l, &ctx, m->params + l->param_offset, x, m->acts[i], m->aux[i], dy, dxi,
                         m->grads + l->param_offset);
        if (m->profiling) {
            double fwd, bwd;
            l->ops->flops(l, &fwd, &bwd);
            if (dxi == NULL && l->param_count > 0)
                bwd -= fwd; /* the input-gradient half was skipped */
            m->profile[i].backward_ns += fedl_time_ns() - start;
            m->profile[i].backward_calls++;
            m->profile[i].backward_flops += bwd * m->last_batch;
        }
        dy = dxi;
    }
    return FEDL_OK;
}
