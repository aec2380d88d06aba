/*
 * model_file.c - model files: spec, input shape and parameters in a
 * versioned, checksummed, little-endian container (docs/FORMAT.md).
 *
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
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fedl/ckpt.h"

#define MODEL_MAGIC "FEDLMODL"
#define MODEL_VERSION 1u
#define MODEL_HEADER 40u
#define MODEL_MAX_SPEC 65536u

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

fedl_status fedl_model_serialize(const fedl_model *model, fedl_allocator *alloc, uint8_t **bytes,
                                 size_t *length, fedl_error *err)
{
    const char *spec = fedl_model_spec(model);
    size_t spec_len = strlen(spec), count = fedl_model_param_count(model), total;
    fedl_shape in = fedl_model_input_shape(model);
    const float *params = fedl_model_params((fedl_model *)model);
    uint8_t *buf, *p;
    *bytes = NULL;
    *length = 0;
    if (spec_len > MODEL_MAX_SPEC)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "model file: spec of %zu bytes too long",
                              spec_len);
    total = MODEL_HEADER + spec_len + 4 * count + 4;
    buf = fedl_mem_alloc(alloc, total);
    if (buf == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "model file: cannot allocate %zu bytes", total);
    memcpy(buf, MODEL_MAGIC, 8);
    put_u32(buf + 8, MODEL_VERSION);
    put_u32(buf + 12, MODEL_HEADER);
    put_u32(buf + 16, (uint32_t)spec_len);
    put_u32(buf + 20, (uint32_t)in.c);
    put_u32(buf + 24, (uint32_t)in.h);
    put_u32(buf + 28, (uint32_t)in.w);
    put_u64(buf + 32, count);
    memcpy(buf + MODEL_HEADER, spec, spec_len);
    p = buf + MODEL_HEADER + spec_len;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &params[i], 4);
        put_u32(p + 4 * i, bits);
    }
    put_u32(buf + total - 4, fedl_crc32c(0, buf, total - 4));
    *bytes = buf;
    *length = total;
    return FEDL_OK;
}

fedl_status fedl_model_deserialize(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    uint32_t version, header, spec_len, stored_crc, actual_crc;
    uint64_t count;
    fedl_shape in;
    char *spec; /* (spec_len + 1), NUL-terminated copy */
    fedl_model *model;
    fedl_status st;
    float *params;
    *out = NULL;
    if (length < MODEL_HEADER + 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %zu bytes is shorter than a model file header (44 bytes)", name,
                              length);
    if (memcmp(bytes, MODEL_MAGIC, 8) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: not a fedl model file (magic at byte 0 is not FEDLMODL)", name);
    version = get_u32(bytes + 8);
    if (version != MODEL_VERSION)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: format version %u at byte 8 is not supported (this build "
                              "reads version %u)",
                              name, version, MODEL_VERSION);
    header = get_u32(bytes + 12);
    if (header != MODEL_HEADER)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: header length %u at byte 12, expected %u",
                              name, header, MODEL_HEADER);
    spec_len = get_u32(bytes + 16);
    if (spec_len == 0 || spec_len > MODEL_MAX_SPEC)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: spec length %u at byte 16 out of range",
                              name, spec_len);
    count = get_u64(bytes + 32);
    if (count > (length - MODEL_HEADER - 4) / 4 ||
        (uint64_t)length != MODEL_HEADER + (uint64_t)spec_len + 4 * count + 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: file is %zu bytes but its header (spec %u bytes, %llu "
                              "parameters) needs %llu (truncated or padded)",
                              name, length, spec_len, (unsigned long long)count,
                              (unsigned long long)(MODEL_HEADER + (uint64_t)spec_len +
                                                   (count < (1ull << 60) ? 4 * count : 0) + 4));
    stored_crc = get_u32(bytes + length - 4);
    actual_crc = fedl_crc32c(0, bytes, length - 4);
    if (stored_crc != actual_crc)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: checksum mismatch (CRC-32C at byte %zu is %08x, content "
                              "gives %08x): the file is corrupt",
                              name, length - 4, stored_crc, actual_crc);
    in.c = (int32_t)get_u32(bytes + 20);
    in.h = (int32_t)get_u32(bytes + 24);
    in.w = (int32_t)get_u32(bytes + 28);
    if (memchr(bytes + MODEL_HEADER, '\0', spec_len) != NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: spec at byte 40 contains a NUL byte",
                              name);
    spec = fedl_mem_alloc(alloc, (size_t)spec_len + 1);
    if (spec == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the spec", name);
    memcpy(spec, bytes + MODEL_HEADER, spec_len);
    st = fedl_model_create(spec, in, 0, alloc, &model, err);
    fedl_mem_free(alloc, spec, (size_t)spec_len + 1);
    if (st != FEDL_OK) {
        char detail[sizeof err->message];
        snprintf(detail, sizeof detail, "%s", err ? err->message : "");
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: stored model does not build: %s", name,
                              detail);
    }
    if (fedl_model_param_count(model) != count) {
        size_t expected = fedl_model_param_count(model);
        fedl_model_destroy(model);
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %llu parameters stored at byte 32, the spec needs %zu", name,
                              (unsigned long long)count, expected);
    }
    params = fedl_model_params(model);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t bits = get_u32(bytes + MODEL_HEADER + spec_len + 4 * i);
        memcpy(&params[i], &bits, 4);
    }
    *out = model;
    return FEDL_OK;
}

fedl_status fedl_model_save(const fedl_model *model, const char *path, fedl_error *err)
{
    fedl_allocator *alloc = fedl_allocator_default();
    uint8_t *bytes;
    size_t length;
    fedl_status st = fedl_model_serialize(model, alloc, &bytes, &length, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_durable_write(path, bytes, length, err);
    fedl_mem_free(alloc, bytes, length);
    return st;
}

fedl_status fedl_model_load(const char *path, fedl_allocator *alloc, fedl_model **out,
                            fedl_error *err)
{
    FILE *f;
    struct stat st_buf;
    uint8_t *bytes;
    size_t length;
    fedl_status st;
    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st_buf) != 0 || !S_ISREG(st_buf.st_mode)) {
        fclose(f);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: not a regular file", path);
    }
    length = (size_t)st_buf.st_size;
    bytes = fedl_mem_alloc(alloc, length > 0 ? length : 1);
    if (bytes == NULL) {
        fclose(f);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, length);
    }
    if (length > 0 && fread(bytes, 1, length, f) != length) {
        int e = ferror(f) ? errno : 0;
        fclose(f);
        fedl_mem_free(alloc, bytes, length > 0 ? length : 1);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: read failed: %s", path,
                              e ? strerror(e) : "file shrank while reading");
    }
    fclose(f);
    st = fedl_model_deserialize(bytes, length, path, alloc, out, err);
    fedl_mem_free(alloc, bytes, length > 0 ? length : 1);
    return st;
}

/* STUB: generated placeholders, replaced by the real implementation. */
fedl_status fedl_model_add_sections(fedl_container_writer *w, const fedl_model *model,
                                    fedl_error *err)
{
    (void)w;
    (void)model;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_model_add_sections: not implemented yet");
}

fedl_status fedl_model_from_container(const fedl_container *c, const char *name,
                                      fedl_allocator *alloc, fedl_model **out, fedl_error *err)
{
    (void)c;
    (void)name;
    (void)alloc;
    (void)out;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_model_from_container: not implemented yet");
}
