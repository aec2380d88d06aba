/*
 * safetensors.c - export a model's parameters as a safetensors file, the
 * format PyTorch and Hugging Face tools load without running any code:
 *
 *   8 bytes   N, the JSON header's length (uint64, little-endian)
 *   N bytes   JSON header, padded with spaces so the data starts on a
 *             multiple of 8 bytes
 *   rest      tensor data, little-endian float32, contiguous
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (offsets in bytes from the start of the data) and "__metadata__" to
 * string pairs: "format": "pt", "fedl_spec" and "fedl_version".
 *
 * Tensor names are those of torch.nn.Sequential's state_dict when every
 * spec layer is one module: "<layer index>.weight" and "<layer
 * index>.bias", the index 0-based over all layers of the spec. Shapes are
 * PyTorch's: dense (out, in), conv2d (out, in, k, k), conv1d (out, in, k),
 * bias (out). fedl's flat parameter array already holds the layers in this
 * order and layout (docs/FORMAT.md), so the data block is that array
 * written as it is (byte-swapped on big-endian hosts).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

#define TENSOR_MAX_DIMS 4

/* One exported tensor: a weight or a bias of one layer. */
typedef struct tensor_desc {
    int layer;          /* index in the spec */
    const char *suffix; /* "weight" or "bias" */
    int ndim;
    size_t shape[TENSOR_MAX_DIMS];
    size_t offset; /* floats from the start of the parameter array */
    size_t count;  /* floats */
} tensor_desc;

/* ------------------------------------------------------------ text buffer */

/* A growing string; after an allocation failure it stays failed and
 * appends do nothing. */
typedef struct text_buffer {
    char *data;
    size_t length;   /* bytes used, without the NUL */
    size_t capacity; /* bytes allocated */
    int failed;
} text_buffer;

static int text_reserve(text_buffer *t, size_t extra)
{
    size_t need, capacity;
    char *grown;
    if (t->failed)
        return 0;
    need = t->length + extra + 1;
    if (need <= t->capacity)
        return 1;
    capacity = t->capacity ? t->capacity : 256;
    while (capacity < need)
        capacity *= 2;
    grown = fedl_mem_realloc(NULL, t->data, t->capacity, capacity);
    if (grown == NULL) {
        t->failed = 1;
        return 0;
    }
    t->data = grown;
    t->capacity = capacity;
    return 1;
}

static void text_append(text_buffer *t, const char *bytes, size_t length)
{
    if (!text_reserve(t, length))
        return;
    memcpy(t->data + t->length, bytes, length);
    t->length += length;
    t->data[t->length] = '\0';
}

static void text_append_string(text_buffer *t, const char *s)
{
    text_append(t, s, strlen(s));
}

static void text_printf(text_buffer *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void text_printf(text_buffer *t, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof small) {
        t->failed = 1; /* only short numbers and names are formatted here */
        return;
    }
    text_append(t, small, (size_t)n);
}

/* s as a JSON string literal, quotes included. */
static void text_append_json_string(text_buffer *t, const char *s)
{
    text_append(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            char escaped[2] = {'\\', (char)*p};
            text_append(t, escaped, 2);
        } else if (*p < 0x20) {
            text_printf(t, "\\u%04x", (unsigned)*p);
        } else {
            text_append(t, (const char *)p, 1);
        }
    }
    text_append(t, "\"", 1);
}

static void text_free(text_buffer *t)
{
    fedl_mem_free(NULL, t->data, t->capacity);
    t->data = NULL;
    t->length = t->capacity = 0;
}

/* ------------------------------------------------------- tensor shapes */

/* The kernel size of a convolution from its canonical text
 * "conv2d(units,kernel,stride=..,pad=..)": fedl_layer_info reports the
 * shapes and the parameter count but not the kernel. */
static int conv_kernel_from_text(const char *text, long *kernel)
{
    const char *p = strchr(text, '(');
    char *end;
    if (p == NULL)
        return 0;
    strtol(p + 1, &end, 10); /* units */
    if (*end != ',')
        return 0;
    *kernel = strtol(end + 1, &end, 10);
    return *kernel > 0 && (*end == ',' || *end == ')');
}

/* Weight (and bias, if the parameter count leaves exactly out_features
 * floats after the weight) of one layer with parameters. */
static fedl_status describe_layer_tensors(const fedl_layer_info *info, int index,
                                          tensor_desc tensors[2], int *count, fedl_error *err)
{
    tensor_desc *w = &tensors[0];
    size_t out = (size_t)info->out.c, weights = 1, rest;
    long kernel = 0;
    memset(tensors, 0, 2 * sizeof *tensors);
    w->layer = index;
    w->suffix = "weight";
    w->offset = info->param_offset;
    switch (info->kind) {
    case FEDL_LAYER_DENSE: /* the input is flattened: (out, c*h*w) */
        w->ndim = 2;
        w->shape[0] = out;
        w->shape[1] = (size_t)info->in.c * (size_t)info->in.h * (size_t)info->in.w;
        break;
    case FEDL_LAYER_CONV2D: /* (out, in, k, k) */
    case FEDL_LAYER_CONV1D: /* (out, in, k) */
        if (!conv_kernel_from_text(info->text, &kernel))
            return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                                  "safetensors export: layer %d '%s': cannot read the kernel size",
                                  index, info->text);
        w->ndim = info->kind == FEDL_LAYER_CONV2D ? 4 : 3;
        w->shape[0] = out;
        w->shape[1] = (size_t)info->in.c;
        w->shape[2] = (size_t)kernel;
        w->shape[3] = (size_t)kernel;
        break;
    default:
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "safetensors export: layer %d '%s' has %zu parameters but no "
                              "PyTorch shape is known for it",
                              index, info->text, info->param_count);
    }
    for (int d = 0; d < w->ndim; d++)
        weights *= w->shape[d];
    w->count = weights;
    rest = info->param_count >= weights ? info->param_count - weights : 0;
    if (info->param_count < weights || (rest != 0 && rest != out))
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "safetensors export: layer %d '%s': %zu parameters do not match a "
                              "weight of %zu floats with or without a bias of %zu",
                              index, info->text, info->param_count, weights, out);
    *count = 1;
    if (rest == out) {
        tensor_desc *b = &tensors[1];
        b->layer = index;
        b->suffix = "bias";
        b->ndim = 1;
        b->shape[0] = out;
        b->offset = info->param_offset + weights;
        b->count = out;
        *count = 2;
    }
    return FEDL_OK;
}

/* ------------------------------------------------------------- header */

static void append_tensor_entry(text_buffer *t, const tensor_desc *d)
{
    text_printf(t, ",\"%d.%s\":{\"dtype\":\"F32\",\"shape\":[", d->layer, d->suffix);
    for (int i = 0; i < d->ndim; i++)
        text_printf(t, "%s%zu", i ? "," : "", d->shape[i]);
    text_printf(t, "],\"data_offsets\":[%zu,", d->offset * sizeof(float));
    text_printf(t, "%zu]}", (d->offset + d->count) * sizeof(float));
}

/* The whole header: 8 length bytes, then the JSON padded with spaces to a
 * multiple of 8 bytes. */
static fedl_status build_header(const fedl_model *model, text_buffer *t, int *tensor_count,
                                fedl_error *err)
{
    size_t json_length;
    uint64_t n;
    *tensor_count = 0;
    text_append(t, "\0\0\0\0\0\0\0\0", 8);
    text_append_string(t, "{\"__metadata__\":{\"format\":\"pt\",\"fedl_spec\":");
    text_append_json_string(t, fedl_model_spec(model));
    text_append_string(t, ",\"fedl_version\":");
    text_append_json_string(t, fedl_version());
    text_append(t, "}", 1);
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        tensor_desc tensors[2];
        int count = 0;
        fedl_status st;
        if (fedl_model_layer_info(model, i, &info) != FEDL_OK)
            return fedl_error_set(err, FEDL_ERR_STATE, "safetensors export: no layer %d", i);
        if (info.param_count == 0)
            continue;
        st = describe_layer_tensors(&info, i, tensors, &count, err);
        if (st != FEDL_OK)
            return st;
        for (int k = 0; k < count; k++)
            append_tensor_entry(t, &tensors[k]);
        *tensor_count += count;
    }
    text_append(t, "}", 1);
    while (!t->failed && t->length % 8 != 0)
        text_append(t, " ", 1);
    if (t->failed)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "safetensors export: out of memory for the "
                              "header");
    json_length = t->length - 8;
    n = (uint64_t)json_length;
    for (int i = 0; i < 8; i++)
        t->data[i] = (char)(uint8_t)(n >> (8 * i));
    return FEDL_OK;
}

/* ---------------------------------------------------------------- data */

/* A little-endian copy of count floats (for big-endian hosts). */
static uint8_t *little_endian_copy(const float *values, size_t count)
{
    uint8_t *bytes = fedl_mem_alloc(NULL, count * sizeof(float));
    if (bytes == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        for (int b = 0; b < 4; b++)
            bytes[4 * i + (size_t)b] = (uint8_t)(bits >> (8 * b));
    }
    return bytes;
}

fedl_status fedl_model_export_safetensors(const fedl_model *model, const char *path,
                                          fedl_error *err)
{
    text_buffer header = {0};
    fedl_iovec pieces[2];
    size_t count, data_bytes;
    const float *params;
    uint8_t *swapped = NULL;
    int tensor_count = 0;
    fedl_status st;
    if (model == NULL || path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "safetensors export: model and path are required");
    count = fedl_model_param_count(model);
    data_bytes = count * sizeof(float);
    /* The model is not changed: fedl_model_params has no const variant. */
    params = fedl_model_params((fedl_model *)model);
    st = build_header(model, &header, &tensor_count, err);
    if (st == FEDL_OK && count > 0 && !fedl_host_is_little_endian()) {
        swapped = little_endian_copy(params, count);
        if (swapped == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM,
                                "safetensors export: out of memory for %zu bytes of parameters",
                                data_bytes);
    }
    if (st == FEDL_OK) {
        pieces[0].base = header.data;
        pieces[0].length = header.length;
        pieces[1].base = swapped != NULL ? (const void *)swapped : (const void *)params;
        pieces[1].length = data_bytes;
        st = fedl_durable_writev(NULL, path, pieces, count > 0 ? 2 : 1, err);
    }
    fedl_mem_free(NULL, swapped, swapped != NULL ? data_bytes : 0);
    text_free(&header);
    return st;
}
