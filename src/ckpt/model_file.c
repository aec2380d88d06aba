/*
 * model_file.c - model files: the "model" and "params" sections of a
 * container (docs/FORMAT.md), the files made of just those two (kind
 * FEDL_FILE_MODEL), and the legacy version-1 "FEDLMODL" files, which stay
 * readable.
 *
 * Section "model" (all little-endian):
 *   0       4     payload version (1)
 *   4       12    input shape c, h, w (int32 each)
 *   16      8     parameter count P
 *   24      4     layer count L
 *   28      20L   per layer: output shape c, h, w (int32 each), parameter count (u64)
 *   28+20L  4     spec length S (1..65536)
 *   32+20L  S     canonical spec text (no NUL)
 * Section "params": P float32 values, fedl's flat order.
 *
 * Legacy version 1 (read only):
 *   offset  size  field
 *   0       8     magic "FEDLMODL"
 *   8       4     format version (1)
 *   12      4     header length (40)
 *   16      4     spec length S (bytes, at most 65536)
 *   20      12    input shape c, h, w (int32 each)
 *   32      8     parameter count P
 *   40      S     canonical spec text
 *   40+S    4P    parameters, float32
 *   end-4   4     CRC-32C of every byte before it
 */
#include <stdio.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

#define LEGACY_MAGIC "FEDLMODL"
#define LEGACY_VERSION 1u
#define LEGACY_HEADER 40u
#define MODEL_MAX_SPEC 65536u /* bytes */
#define MODEL_PAYLOAD_VERSION 1u
#define MODEL_FIXED_BYTES 32u /* payload without layer records and spec */
#define MODEL_LAYER_BYTES 20u /* one layer record */
#define MODEL_LAYERS_AT 28u   /* first layer record */

/* container.c: the allocator a writer was created with. */

/* count float32 values stored little-endian at src into dst. */
static void copy_floats_from_le(float *dst, const uint8_t *src, size_t count)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    if (first == 1) {
        memcpy(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = fedl_get_u32(src + 4 * i);
        memcpy(&dst[i], &bits, sizeof bits);
    }
}

/* Build a model from a stored spec and input shape. A spec that does not
 * build is a damaged file (FEDL_ERR_FORMAT); running out of memory stays
 * FEDL_ERR_NOMEM. The spec's parameter count is checked against the stored
 * count before the parameters are allocated, so a crafted file cannot make
 * the reader allocate more than the file itself holds. */
static fedl_status build_stored_model(const uint8_t *spec_bytes, size_t spec_len, fedl_shape in,
                                      uint64_t stored_count, const char *name,
                                      fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    char *spec; /* (spec_len + 1), NUL-terminated copy */
    char detail[sizeof err->message];
    size_t needed = 0;
    fedl_status st;
    spec = fedl_mem_alloc(alloc, spec_len + 1);
    if (spec == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the spec (%zu bytes)", name,
                              spec_len + 1);
    memcpy(spec, spec_bytes, spec_len);
    st = fedl_spec_param_count(spec, in, alloc, &needed, err);
    if (st == FEDL_OK && needed != stored_count) {
        fedl_mem_free(alloc, spec, spec_len + 1);
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %llu parameters stored, the stored spec needs %zu", name,
                              (unsigned long long)stored_count, needed);
    }
    if (st == FEDL_OK)
        st = fedl_model_create_zeroed(spec, in, 0, alloc, out, err);
    fedl_mem_free(alloc, spec, spec_len + 1);
    if (st == FEDL_OK || st == FEDL_ERR_NOMEM)
        return st;
    snprintf(detail, sizeof detail, "%s", err ? err->message : "");
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: stored model does not build: %s", name,
                          detail);
}

/* ============================================================ legacy (v1) */

static fedl_status deserialize_legacy_v1(const uint8_t *bytes, size_t length, const char *name,
                                         fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    uint32_t version, header, spec_len, stored_crc, actual_crc;
    uint64_t count;
    fedl_shape in;
    fedl_model *model;
    fedl_status st;
    if (length < LEGACY_HEADER + 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %zu bytes is shorter than a model file header (44 bytes)", name,
                              length);
    version = fedl_get_u32(bytes + 8);
    if (version != LEGACY_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: legacy model file version %u at byte 8 is not supported (only "
                              "version %u has the FEDLMODL magic)",
                              name, version, LEGACY_VERSION);
    header = fedl_get_u32(bytes + 12);
    if (header != LEGACY_HEADER)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: header length %u at byte 12, expected %u",
                              name, header, LEGACY_HEADER);
    spec_len = fedl_get_u32(bytes + 16);
    if (spec_len == 0 || spec_len > MODEL_MAX_SPEC)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: spec length %u at byte 16 out of range",
                              name, spec_len);
    count = fedl_get_u64(bytes + 32);
    if (count > (length - LEGACY_HEADER - 4) / 4 ||
        (uint64_t)length != LEGACY_HEADER + (uint64_t)spec_len + 4 * count + 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: file is %zu bytes but its header (spec %u bytes, %llu "
                              "parameters) needs %llu (truncated or padded)",
                              name, length, spec_len, (unsigned long long)count,
                              (unsigned long long)(LEGACY_HEADER + (uint64_t)spec_len +
                                                   (count < (1ull << 60) ? 4 * count : 0) + 4));
    stored_crc = fedl_get_u32(bytes + length - 4);
    actual_crc = fedl_crc32c(0, bytes, length - 4);
    if (stored_crc != actual_crc)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: checksum mismatch (CRC-32C at byte %zu is %08x, content "
                              "gives %08x): the file is corrupt",
                              name, length - 4, stored_crc, actual_crc);
    in.c = (int32_t)fedl_get_u32(bytes + 20);
    in.h = (int32_t)fedl_get_u32(bytes + 24);
    in.w = (int32_t)fedl_get_u32(bytes + 28);
    if (memchr(bytes + LEGACY_HEADER, '\0', spec_len) != NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: spec at byte 40 contains a NUL byte",
                              name);
    st = build_stored_model(bytes + LEGACY_HEADER, spec_len, in, count, name, alloc, &model, err);
    if (st != FEDL_OK)
        return st;
    if (fedl_model_param_count(model) != count) {
        size_t expected = fedl_model_param_count(model);
        fedl_model_destroy(model);
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %llu parameters stored at byte 32, the spec needs %zu", name,
                              (unsigned long long)count, expected);
    }
    copy_floats_from_le(fedl_model_params(model), bytes + LEGACY_HEADER + spec_len, (size_t)count);
    *out = model;
    return FEDL_OK;
}

/* ========================================================= "model" section */

static size_t model_payload_bytes(size_t layer_count, size_t spec_len)
{
    return MODEL_FIXED_BYTES + MODEL_LAYER_BYTES * layer_count + spec_len;
}

static void encode_model_payload(const fedl_model *model, uint8_t *p, size_t spec_len)
{
    fedl_shape in = fedl_model_input_shape(model);
    int layers = fedl_model_layer_count(model);
    uint8_t *record = p + MODEL_LAYERS_AT;
    fedl_put_u32(p, MODEL_PAYLOAD_VERSION);
    fedl_put_u32(p + 4, (uint32_t)in.c);
    fedl_put_u32(p + 8, (uint32_t)in.h);
    fedl_put_u32(p + 12, (uint32_t)in.w);
    fedl_put_u64(p + 16, (uint64_t)fedl_model_param_count(model));
    fedl_put_u32(p + 24, (uint32_t)layers);
    for (int i = 0; i < layers; i++, record += MODEL_LAYER_BYTES) {
        fedl_layer_info info;
        fedl_model_layer_info(model, i, &info);
        fedl_put_u32(record, (uint32_t)info.out.c);
        fedl_put_u32(record + 4, (uint32_t)info.out.h);
        fedl_put_u32(record + 8, (uint32_t)info.out.w);
        fedl_put_u64(record + 12, (uint64_t)info.param_count);
    }
    fedl_put_u32(record, (uint32_t)spec_len);
    memcpy(record + 4, fedl_model_spec(model), spec_len);
}

fedl_status fedl_model_add_sections(fedl_container_writer *w, const fedl_model *model,
                                    fedl_error *err)
{
    fedl_allocator *alloc;
    size_t spec_len, bytes;
    uint8_t *payload; /* (bytes) */
    fedl_status st;
    if (w == NULL || model == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model sections: NULL %s",
                              w == NULL ? "writer" : "model");
    spec_len = strlen(fedl_model_spec(model));
    if (spec_len == 0 || spec_len > MODEL_MAX_SPEC)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "model sections: spec of %zu bytes (1..%u)", spec_len,
                              MODEL_MAX_SPEC);
    alloc = fedl_container_writer_allocator(w);
    bytes = model_payload_bytes((size_t)fedl_model_layer_count(model), spec_len);
    payload = fedl_mem_alloc(alloc, bytes);
    if (payload == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "model sections: cannot allocate %zu bytes for section 'model'",
                              bytes);
    encode_model_payload(model, payload, spec_len);
    st = fedl_container_add_copy(w, "model", FEDL_SECTION_MODEL, payload, bytes, err);
    fedl_mem_free(alloc, payload, bytes);
    if (st != FEDL_OK)
        return st;
    return fedl_container_add_floats(w, "params", FEDL_SECTION_PARAMS,
                                     fedl_model_params((fedl_model *)model),
                                     fedl_model_param_count(model), err);
}

/* What section "model" says, pointing into the file. */
typedef struct stored_model {
    fedl_shape input;
    uint64_t param_count;
    uint32_t layer_count;
    const uint8_t *layers; /* (layer_count, 20 bytes) records */
    const uint8_t *spec;   /* (spec_len) text */
    uint32_t spec_len;
    uint64_t at; /* file offset of the section */
} stored_model;

/* Find a section by name and check its kind. */
static fedl_status find_section(const fedl_container *c, const char *name, const char *section,
                                uint32_t kind, const fedl_section **out, fedl_error *err)
{
    *out = fedl_container_find(c, section);
    if (*out == NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no section '%s'", name, section);
    if ((*out)->kind != kind)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: section '%s' has kind %u, expected %u",
                              name, section, (*out)->kind, kind);
    return FEDL_OK;
}

/* Every field of section "model" against the section's length. */
static fedl_status parse_model_section(const uint8_t *p, const fedl_section *s, const char *name,
                                       stored_model *m, fedl_error *err)
{
    uint32_t version;
    uint64_t spec_at;
    m->at = s->offset;
    if (s->length < MODEL_FIXED_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model' (byte %llu) is %llu bytes, shorter than its "
                              "fixed fields (%u bytes)",
                              name, (unsigned long long)m->at, (unsigned long long)s->length,
                              MODEL_FIXED_BYTES);
    version = fedl_get_u32(p);
    if (version != MODEL_PAYLOAD_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: payload version %u is not "
                              "supported (this build reads %u)",
                              name, (unsigned long long)m->at, version, MODEL_PAYLOAD_VERSION);
    m->input.c = (int32_t)fedl_get_u32(p + 4);
    m->input.h = (int32_t)fedl_get_u32(p + 8);
    m->input.w = (int32_t)fedl_get_u32(p + 12);
    m->param_count = fedl_get_u64(p + 16);
    m->layer_count = fedl_get_u32(p + 24);
    if (m->layer_count > (s->length - MODEL_FIXED_BYTES) / MODEL_LAYER_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: %u layers need %llu bytes of "
                              "layer records, the section has %llu bytes",
                              name, (unsigned long long)(m->at + 24), m->layer_count,
                              (unsigned long long)m->layer_count * MODEL_LAYER_BYTES,
                              (unsigned long long)s->length);
    m->layers = p + MODEL_LAYERS_AT;
    spec_at = MODEL_LAYERS_AT + (uint64_t)MODEL_LAYER_BYTES * m->layer_count;
    m->spec_len = fedl_get_u32(p + spec_at);
    if (m->spec_len == 0 || m->spec_len > MODEL_MAX_SPEC ||
        (uint64_t)m->spec_len != s->length - spec_at - 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: spec length %u, but %llu bytes "
                              "remain (1..%u expected)",
                              name, (unsigned long long)(m->at + spec_at), m->spec_len,
                              (unsigned long long)(s->length - spec_at - 4), MODEL_MAX_SPEC);
    m->spec = p + spec_at + 4;
    if (memchr(m->spec, '\0', m->spec_len) != NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: spec contains a NUL byte", name,
                              (unsigned long long)(m->at + spec_at + 4));
    return FEDL_OK;
}

/* The layer records add up to P, and "params" holds exactly P floats. */
static fedl_status check_stored_counts(const stored_model *m, const fedl_section *params,
                                       const char *name, fedl_error *err)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->layer_count; i++) {
        uint64_t count = fedl_get_u64(m->layers + MODEL_LAYER_BYTES * i + 12);
        if (count > m->param_count - sum)
            return fedl_error_set(
                err, FEDL_ERR_FORMAT,
                "%s: section 'model', layer %u (byte %llu): the layers' "
                "parameter counts exceed the total %llu",
                name, i, (unsigned long long)(m->at + MODEL_LAYERS_AT + MODEL_LAYER_BYTES * i + 12),
                (unsigned long long)m->param_count);
        sum += count;
    }
    if (sum != m->param_count)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: %llu parameters, but the layers "
                              "hold %llu",
                              name, (unsigned long long)(m->at + 16),
                              (unsigned long long)m->param_count, (unsigned long long)sum);
    if (m->param_count > params->length / 4 || params->length != 4 * m->param_count)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'params' (byte %llu) is %llu bytes, but section "
                              "'model' stores %llu float32 parameters (4 bytes each)",
                              name, (unsigned long long)params->offset,
                              (unsigned long long)params->length,
                              (unsigned long long)m->param_count);
    return FEDL_OK;
}

/* The built model has the stored parameter count, layer count and every
 * layer's output shape and parameter count. */
static fedl_status check_model_matches(const fedl_model *model, const stored_model *m,
                                       const char *name, fedl_error *err)
{
    if ((uint64_t)fedl_model_param_count(model) != m->param_count)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: %llu parameters stored, the spec "
                              "builds %zu",
                              name, (unsigned long long)(m->at + 16),
                              (unsigned long long)m->param_count, fedl_model_param_count(model));
    if ((uint32_t)fedl_model_layer_count(model) != m->layer_count)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'model', byte %llu: %u layers stored, the spec builds "
                              "%d",
                              name, (unsigned long long)(m->at + 24), m->layer_count,
                              fedl_model_layer_count(model));
    for (uint32_t i = 0; i < m->layer_count; i++) {
        const uint8_t *record = m->layers + MODEL_LAYER_BYTES * i;
        fedl_shape out = {(int32_t)fedl_get_u32(record), (int32_t)fedl_get_u32(record + 4),
                          (int32_t)fedl_get_u32(record + 8)};
        uint64_t count = fedl_get_u64(record + 12);
        fedl_layer_info info;
        fedl_model_layer_info(model, (int)i, &info);
        if (out.c != info.out.c || out.h != info.out.h || out.w != info.out.w ||
            count != (uint64_t)info.param_count)
            return fedl_error_set(
                err, FEDL_ERR_FORMAT,
                "%s: section 'model', layer %u %s (byte %llu): stored output (%d,%d,%d) with %llu "
                "parameters, the spec builds (%d,%d,%d) with %zu",
                name, i, info.text,
                (unsigned long long)(m->at + MODEL_LAYERS_AT + MODEL_LAYER_BYTES * i), out.c, out.h,
                out.w, (unsigned long long)count, info.out.c, info.out.h, info.out.w,
                info.param_count);
    }
    return FEDL_OK;
}

fedl_status fedl_model_from_container(const fedl_container *c, const char *name,
                                      fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    const fedl_section *model_section, *params_section;
    stored_model m;
    fedl_model *model;
    fedl_status st;
    if (out == NULL || c == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model from container: NULL argument");
    *out = NULL;
    if (name == NULL)
        name = "container";
    memset(&m, 0, sizeof m);
    params_section = NULL;
    st = find_section(c, name, "model", FEDL_SECTION_MODEL, &model_section, err);
    if (st == FEDL_OK)
        st = find_section(c, name, "params", FEDL_SECTION_PARAMS, &params_section, err);
    if (st == FEDL_OK)
        st = parse_model_section(fedl_container_data(c, model_section), model_section, name, &m,
                                 err);
    if (st == FEDL_OK)
        st = check_stored_counts(&m, params_section, name, err);
    if (st == FEDL_OK)
        st = build_stored_model(m.spec, m.spec_len, m.input, m.param_count, name, alloc, &model,
                                err);
    if (st != FEDL_OK)
        return st;
    st = check_model_matches(model, &m, name, err);
    if (st != FEDL_OK) {
        fedl_model_destroy(model);
        return st;
    }
    copy_floats_from_le(fedl_model_params(model), fedl_container_data(c, params_section),
                        (size_t)m.param_count);
    *out = model;
    return FEDL_OK;
}

/* ============================================================= model files */

fedl_status fedl_model_serialize(const fedl_model *model, fedl_allocator *alloc, uint8_t **bytes,
                                 size_t *length, fedl_error *err)
{
    fedl_container_writer *w;
    fedl_status st;
    *bytes = NULL;
    *length = 0;
    st = fedl_container_writer_create(FEDL_FILE_MODEL, alloc, &w, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_model_add_sections(w, model, err);
    if (st == FEDL_OK)
        st = fedl_container_to_buffer(w, alloc, bytes, length, err);
    fedl_container_writer_destroy(w);
    return st;
}

fedl_status fedl_model_deserialize(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    fedl_container c;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model file: out is NULL");
    *out = NULL;
    if (name == NULL)
        name = "model file";
    if (bytes == NULL)
        length = 0;
    if (length >= 8 && memcmp(bytes, LEGACY_MAGIC, 8) == 0)
        return deserialize_legacy_v1(bytes, length, name, alloc, out, err);
    st = fedl_container_parse(bytes, length, name, &c, err);
    if (st != FEDL_OK)
        return st;
    if (c.file_kind != FEDL_FILE_MODEL && c.file_kind != FEDL_FILE_CHECKPOINT)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: file kind %u at byte 16 is neither a model file (1) nor a "
                              "checkpoint (2)",
                              name, c.file_kind);
    return fedl_model_from_container(&c, name, alloc, out, err);
}

fedl_status fedl_model_save(const fedl_model *model, const char *path, fedl_error *err)
{
    fedl_container_writer *w;
    fedl_status st = fedl_container_writer_create(FEDL_FILE_MODEL, NULL, &w, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_model_add_sections(w, model, err);
    if (st == FEDL_OK)
        st = fedl_container_write(w, NULL, path, err);
    fedl_container_writer_destroy(w);
    return st;
}

fedl_status fedl_model_load(const char *path, fedl_allocator *alloc, fedl_model **out,
                            fedl_error *err)
{
    fedl_file_view view;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model file: out is NULL");
    *out = NULL;
    st = fedl_file_view_open(path, alloc, &view, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_model_deserialize(view.bytes, view.length, path, alloc, out, err);
    fedl_file_view_close(&view);
    return st;
}
