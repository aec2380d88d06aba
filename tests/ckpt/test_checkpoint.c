/* test_checkpoint.c - training checkpoints and model files: a real
 * checkpoint (conv net, Adam moments, every state field set, metadata)
 * round-trips field by field and bit for bit; every sampled single-bit flip,
 * truncation, zeroed page and appended garbage is refused (100%, counted);
 * every decoded value is range-checked with a message naming its section
 * and byte; model files round-trip, version-1 files still load and a
 * checkpoint loads as a model; decoding survives a failure of every
 * allocation without leaking. */
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

#include "ckpt/internal.h"
#include "fedl/ckpt.h"
#include "support/test_support.h"

#define SPEC "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(10)"
static const fedl_shape input_shape = {1, 8, 8};

/* ------------------------------------------------------------------ helpers */

/* A model with deterministic parameters (not the initialiser's). */
static fedl_model *make_model(void)
{
    fedl_model *m;
    fedl_error err;
    fedl_rng rng;
    float *params;
    assert_int_equal(fedl_model_create(SPEC, input_shape, 11, NULL, &m, &err), FEDL_OK);
    params = fedl_model_params(m);
    fedl_rng_init(&rng, 77, 1);
    for (size_t i = 0; i < fedl_model_param_count(m); i++)
        params[i] = fedl_rng_uniform(&rng) * 2.0f - 1.0f;
    return m;
}

/* Everything a checkpoint holds, with distinct, non-default values. */
typedef struct fixture {
    fedl_model *model;
    float *moments; /* (2P) Adam m then v */
    size_t moment_count;
    fedl_meta_entry meta[3];
    fedl_train_state state;
} fixture;

static const char config_text[] = "batch=32\nlr=0.05\nmodel=" SPEC "\noptimizer=adam\nseed=7\n";
static const uint8_t blob[5] = {0x00, 0xff, 0x10, 0x00, 0x7f};

static void fixture_init(fixture *f)
{
    fedl_train_state *s = &f->state;
    fedl_rng rng;
    memset(f, 0, sizeof *f);
    f->model = make_model();
    f->moment_count = 2 * fedl_model_param_count(f->model);
    f->moments = malloc(f->moment_count * sizeof(float));
    assert_non_null(f->moments);
    fedl_rng_init(&rng, 78, 2);
    for (size_t i = 0; i < f->moment_count; i++)
        f->moments[i] = fedl_rng_uniform(&rng) * (i % 2 ? 1e-3f : -7.0f);
    f->meta[0] = (fedl_meta_entry){"run", (const uint8_t *)"alpha-7", 7};
    f->meta[1] = (fedl_meta_entry){"host", (const uint8_t *)"pi4", 3};
    f->meta[2] = (fedl_meta_entry){"blob", blob, sizeof blob};
    s->global_step = 12345;
    s->samples_seen = 987654321;
    s->micro_batch = 8;
    s->effective_batch = 32;
    s->epoch_loss_sum = 123.45678901234567;
    s->epoch_correct = 777;
    s->epoch_seen = 999;
    s->epoch = 3;
    s->position = 640;
    s->shuffle_seed = 0xfeedface12345678ull;
    s->shuffle = 1;
    s->epoch_samples = 60000;
    s->model_seed = 0x0123456789abcdefull;
    s->dropout_step = 12344;
    s->optim.kind = FEDL_OPTIM_ADAM;
    s->optim.momentum = 0.25f;
    s->optim.dampening = 0.125f;
    s->optim.nesterov = 1;
    s->optim.weight_decay = 1e-3f;
    s->optim.beta1 = 0.85f;
    s->optim.beta2 = 0.995f;
    s->optim.eps = 1e-7f;
    s->optim_steps = 12346;
    s->optim_state = f->moments;
    s->optim_state_count = f->moment_count;
    s->lr.kind = FEDL_LR_COSINE;
    s->lr.base_lr = 0.05f;
    s->lr.step_size = 7;
    s->lr.gamma = 0.5f;
    s->lr.total_steps = 100000;
    s->lr.min_lr = 1e-5f;
    s->last_lr = 0.0421f;
    s->config_text = config_text;
    fedl_sha256(config_text, strlen(config_text), s->config_sha256);
    s->meta = f->meta;
    s->meta_count = 3;
}

static void fixture_free(fixture *f)
{
    fedl_model_destroy(f->model);
    free(f->moments);
}

/* The checkpoint's bytes (fedl_mem_free(NULL, ...) them). */
static void encode(const fixture *f, uint8_t **bytes, size_t *length)
{
    fedl_container_writer *w;
    fedl_error err;
    assert_int_equal(fedl_checkpoint_writer(f->model, &f->state, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, bytes, length, &err), FEDL_OK);
    fedl_container_writer_destroy(w);
}

/* Decode a heap copy of exactly length bytes (ASan sees any overread). */
static fedl_status decode_copy(const uint8_t *bytes, size_t length, fedl_error *err)
{
    uint8_t *copy = malloc(length > 0 ? length : 1);
    fedl_checkpoint *ck = (fedl_checkpoint *)0x1;
    fedl_status st;
    assert_non_null(copy);
    memcpy(copy, bytes, length);
    st = fedl_checkpoint_decode(copy, length, "ckpt.fedl", NULL, &ck, err);
    free(copy);
    if (st == FEDL_OK)
        fedl_checkpoint_free(ck);
    else
        assert_null(ck);
    return st;
}

static void expect_decode_error(const uint8_t *bytes, size_t length, const char *needle)
{
    fedl_error err = {0};
    assert_int_equal(decode_copy(bytes, length, &err), FEDL_ERR_FORMAT);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, needle);
}

/* A new, valid container of file kind: the sections of bytes, with section
 * `name` replaced by `payload` (renamed to new_name if not NULL). */
static void rebuild(const uint8_t *bytes, size_t length, fedl_file_kind kind, const char *name,
                    const uint8_t *payload, size_t payload_len, const char *new_name, uint8_t **out,
                    size_t *out_len)
{
    fedl_container c;
    fedl_container_writer *w;
    fedl_error err;
    assert_int_equal(fedl_container_parse(bytes, length, "base", &c, &err), FEDL_OK);
    assert_int_equal(fedl_container_writer_create(kind, NULL, &w, &err), FEDL_OK);
    for (int i = 0; i < c.section_count; i++) {
        const fedl_section *s = &c.sections[i];
        int replaced = name != NULL && strcmp(s->name, name) == 0;
        const char *section_name = replaced && new_name != NULL ? new_name : s->name;
        if (replaced && payload == NULL && new_name == NULL)
            continue; /* dropped */
        assert_int_equal(
            fedl_container_add_copy(w, section_name, (fedl_section_kind)s->kind,
                                    replaced && payload ? payload : fedl_container_data(&c, s),
                                    replaced && payload ? payload_len : (size_t)s->length, &err),
            FEDL_OK);
    }
    assert_int_equal(fedl_container_to_buffer(w, NULL, out, out_len, &err), FEDL_OK);
    fedl_container_writer_destroy(w);
}

/* A copy of section name's payload (free()). */
static uint8_t *section_copy(const uint8_t *bytes, size_t length, const char *name,
                             size_t *section_len, uint64_t *offset)
{
    fedl_container c;
    fedl_error err;
    const fedl_section *s;
    uint8_t *copy;
    assert_int_equal(fedl_container_parse(bytes, length, "base", &c, &err), FEDL_OK);
    s = fedl_container_find(&c, name);
    assert_non_null(s);
    *section_len = (size_t)s->length;
    if (offset != NULL)
        *offset = s->offset;
    copy = malloc(*section_len + 64);
    assert_non_null(copy);
    memcpy(copy, fedl_container_data(&c, s), *section_len);
    return copy;
}

/* Patch 4 or 8 bytes at field of section name (CRCs redone), decode, and
 * expect needle; "@" in needle is replaced by the field's file offset. */
static void expect_field_error(const uint8_t *bytes, size_t length, const char *name, size_t field,
                               uint64_t value, int wide, const char *needle)
{
    size_t section_len, out_len;
    uint64_t section_at;
    uint8_t *payload = section_copy(bytes, length, name, &section_len, &section_at), *out;
    char expected[256], at[32];
    const char *mark = strchr(needle, '@');
    if (wide)
        fedl_put_u64(payload + field, value);
    else
        fedl_put_u32(payload + field, (uint32_t)value);
    rebuild(bytes, length, FEDL_FILE_CHECKPOINT, name, payload, section_len, NULL, &out, &out_len);
    /* rebuilding keeps every offset: same sections, same lengths */
    snprintf(at, sizeof at, "%llu", (unsigned long long)(section_at + field));
    if (mark != NULL)
        snprintf(expected, sizeof expected, "%.*s%s%s", (int)(mark - needle), needle, at, mark + 1);
    else
        snprintf(expected, sizeof expected, "%s", needle);
    expect_decode_error(out, out_len, expected);
    fedl_mem_free(NULL, out, out_len);
    free(payload);
}

/* ---------------------------------------------------------- round trips */

static void assert_state_equal(const fedl_train_state *a, const fedl_train_state *b)
{
    assert_int_equal(a->global_step, b->global_step);
    assert_int_equal(a->samples_seen, b->samples_seen);
    assert_int_equal(a->micro_batch, b->micro_batch);
    assert_int_equal(a->effective_batch, b->effective_batch);
    assert_memory_equal(&a->epoch_loss_sum, &b->epoch_loss_sum, sizeof(double));
    assert_int_equal(a->epoch_correct, b->epoch_correct);
    assert_int_equal(a->epoch_seen, b->epoch_seen);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->position, b->position);
    assert_int_equal(a->shuffle_seed, b->shuffle_seed);
    assert_int_equal(a->shuffle, b->shuffle);
    assert_int_equal(a->epoch_samples, b->epoch_samples);
    assert_int_equal(a->model_seed, b->model_seed);
    assert_int_equal(a->dropout_step, b->dropout_step);
    assert_int_equal(a->optim.kind, b->optim.kind);
    assert_memory_equal(&a->optim.momentum, &b->optim.momentum, sizeof(float));
    assert_memory_equal(&a->optim.dampening, &b->optim.dampening, sizeof(float));
    assert_int_equal(a->optim.nesterov, b->optim.nesterov);
    assert_memory_equal(&a->optim.weight_decay, &b->optim.weight_decay, sizeof(float));
    assert_memory_equal(&a->optim.beta1, &b->optim.beta1, sizeof(float));
    assert_memory_equal(&a->optim.beta2, &b->optim.beta2, sizeof(float));
    assert_memory_equal(&a->optim.eps, &b->optim.eps, sizeof(float));
    assert_int_equal(a->optim_steps, b->optim_steps);
    assert_int_equal(a->optim_state_count, b->optim_state_count);
    if (a->optim_state_count > 0)
        assert_memory_equal(a->optim_state, b->optim_state, a->optim_state_count * sizeof(float));
    assert_int_equal(a->lr.kind, b->lr.kind);
    assert_memory_equal(&a->lr.base_lr, &b->lr.base_lr, sizeof(float));
    assert_int_equal(a->lr.step_size, b->lr.step_size);
    assert_memory_equal(&a->lr.gamma, &b->lr.gamma, sizeof(float));
    assert_int_equal(a->lr.total_steps, b->lr.total_steps);
    assert_memory_equal(&a->lr.min_lr, &b->lr.min_lr, sizeof(float));
    assert_memory_equal(&a->last_lr, &b->last_lr, sizeof(float));
    assert_string_equal(a->config_text, b->config_text);
    assert_memory_equal(a->config_sha256, b->config_sha256, FEDL_SHA256_BYTES);
    assert_int_equal(a->meta_count, b->meta_count);
    for (int i = 0; i < a->meta_count; i++) {
        assert_string_equal(a->meta[i].key, b->meta[i].key);
        assert_int_equal(a->meta[i].length, b->meta[i].length);
        assert_memory_equal(a->meta[i].value, b->meta[i].value, a->meta[i].length);
    }
}

static void assert_model_equal(const fedl_model *a, fedl_model *b)
{
    assert_string_equal(fedl_model_spec(a), fedl_model_spec(b));
    assert_int_equal(fedl_model_input_shape(a).c, fedl_model_input_shape(b).c);
    assert_int_equal(fedl_model_input_shape(a).h, fedl_model_input_shape(b).h);
    assert_int_equal(fedl_model_input_shape(a).w, fedl_model_input_shape(b).w);
    assert_int_equal(fedl_model_param_count(a), fedl_model_param_count(b));
    assert_memory_equal(fedl_model_params((fedl_model *)a), fedl_model_params(b),
                        fedl_model_param_count(a) * sizeof(float));
}

static void test_checkpoint_round_trips_every_field_bit_for_bit(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    fedl_checkpoint *ck;
    fedl_error err;
    const fedl_meta_entry *e;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    assert_true(length < 20000);
    assert_int_equal(fedl_checkpoint_decode(bytes, length, "ck", NULL, &ck, &err), FEDL_OK);
    assert_model_equal(f.model, ck->model);
    assert_state_equal(&f.state, &ck->state);
    assert_int_equal(fedl_model_seed(ck->model), f.state.model_seed);
    /* the state points into memory the checkpoint owns */
    assert_ptr_equal(ck->state.optim_state, ck->optim_state);
    assert_ptr_equal(ck->state.config_text, ck->config_text);
    assert_ptr_equal(ck->state.meta, ck->meta);
    e = fedl_checkpoint_meta(ck, "blob");
    assert_non_null(e);
    assert_int_equal(e->length, sizeof blob);
    assert_memory_equal(e->value, blob, sizeof blob);
    e = fedl_checkpoint_meta(ck, "host");
    assert_non_null(e);
    assert_memory_equal(e->value, "pi4", 3);
    assert_null(fedl_checkpoint_meta(ck, "hos"));
    assert_null(fedl_checkpoint_meta(ck, "missing"));
    assert_null(fedl_checkpoint_meta(NULL, "run"));
    fedl_checkpoint_free(ck);
    fedl_checkpoint_free(NULL);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_round_trips_sgd_without_state_and_empty_text(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    fedl_checkpoint *ck;
    fedl_error err;
    (void)state;
    fixture_init(&f);
    f.state.optim = fedl_optim_defaults(FEDL_OPTIM_SGD);
    f.state.optim_state = NULL;
    f.state.optim_state_count = 0;
    f.state.config_text = NULL;
    memset(f.state.config_sha256, 0, sizeof f.state.config_sha256); /* computed */
    f.state.meta = NULL;
    f.state.meta_count = 0;
    f.state.lr.kind = FEDL_LR_STEP;
    encode(&f, &bytes, &length);
    assert_int_equal(fedl_checkpoint_decode(bytes, length, "ck", NULL, &ck, &err), FEDL_OK);
    assert_int_equal(ck->state.optim_state_count, 0);
    assert_null(ck->state.optim_state);
    assert_string_equal(ck->state.config_text, "");
    {
        uint8_t empty_digest[FEDL_SHA256_BYTES];
        fedl_sha256("", 0, empty_digest);
        assert_memory_equal(ck->state.config_sha256, empty_digest, FEDL_SHA256_BYTES);
    }
    assert_int_equal(ck->state.meta_count, 0);
    assert_null(fedl_checkpoint_meta(ck, "run"));
    assert_int_equal(ck->state.lr.kind, FEDL_LR_STEP);
    assert_model_equal(f.model, ck->model);
    fedl_checkpoint_free(ck);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_save_and_load_through_a_file(void **state)
{
    fixture f;
    const char *dir = test_make_temp_dir("ckpt");
    char path[512];
    fedl_checkpoint *ck;
    fedl_error err = {0};
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/ckpt-1.fedl", dir);
    fixture_init(&f);
    assert_int_equal(fedl_checkpoint_save(NULL, path, f.model, &f.state, &err), FEDL_OK);
    assert_int_equal(fedl_checkpoint_load(path, NULL, &ck, &err), FEDL_OK);
    assert_model_equal(f.model, ck->model);
    assert_state_equal(&f.state, &ck->state);
    fedl_checkpoint_free(ck);
    remove(path);
    assert_int_equal(fedl_checkpoint_load(path, NULL, &ck, &err), FEDL_ERR_IO);
    assert_null(ck);
    assert_non_null(strstr(err.message, path));
    rmdir(dir);
    fixture_free(&f);
}

/* ------------------------------------------------------------- corruption */

/* A region of the file to flip bits in. */
typedef struct region {
    char name[24];
    size_t start, length; /* bytes */
} region;

static int file_regions(const uint8_t *bytes, size_t length, region *r, int max)
{
    fedl_container c;
    fedl_error err;
    size_t header_end = 32 + 48 * (size_t)fedl_get_u32(bytes + 20) + 4, position = header_end;
    int n = 0;
    assert_int_equal(fedl_container_parse(bytes, length, "base", &c, &err), FEDL_OK);
    r[n++] = (region){"header", 0, 32};
    r[n++] = (region){"table", 32, header_end - 36};
    r[n++] = (region){"table crc", header_end - 4, 4};
    for (int i = 0; i < c.section_count && n + 2 < max; i++) {
        const fedl_section *s = &c.sections[i];
        if (s->offset > position) {
            r[n] = (region){"", position, (size_t)s->offset - position};
            snprintf(r[n++].name, sizeof r[0].name, "padding");
        }
        r[n] = (region){"", (size_t)s->offset, (size_t)s->length};
        snprintf(r[n++].name, sizeof r[0].name, "%s", s->name);
        position = (size_t)(s->offset + s->length);
    }
    r[n++] = (region){"trailer", length - 8, 8};
    return n;
}

static void test_checkpoint_detects_every_sampled_bit_flip(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    region regions[64];
    int count, flips = 0, detected = 0, named = 0, in_sections = 0, padding_regions = 0;
    fedl_rng rng;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    count = file_regions(bytes, length, regions, 64);
    fedl_rng_init(&rng, 2024, 7);
    for (int r = 0; r < count; r++) {
        const region *g = &regions[r];
        int is_section = strcmp(g->name, "header") != 0 && strcmp(g->name, "table") != 0 &&
                         strcmp(g->name, "table crc") != 0 && strcmp(g->name, "padding") != 0 &&
                         strcmp(g->name, "trailer") != 0;
        /* every bit of small regions, 200 sampled bits of large ones */
        size_t bits = 8 * g->length, samples = bits <= 256 ? bits : 200;
        padding_regions += strcmp(g->name, "padding") == 0;
        for (size_t k = 0; k < samples; k++) {
            size_t bit = bits <= 256 ? k : fedl_rng_below(&rng, (uint32_t)bits);
            size_t at = g->start + bit / 8;
            fedl_error err = {0};
            bytes[at] ^= (uint8_t)(1u << (bit % 8));
            flips++;
            detected += decode_copy(bytes, length, &err) == FEDL_ERR_FORMAT;
            if (is_section) {
                char needle[128];
                snprintf(needle, sizeof needle, "section '%.23s' (bytes ", g->name);
                in_sections++;
                named += strstr(err.message, needle) != NULL;
            }
            bytes[at] ^= (uint8_t)(1u << (bit % 8));
        }
    }
    print_message("%d bit flips over %d regions (%d in sections): %d detected\n", flips, count,
                  in_sections, detected);
    assert_true(flips >= 2000);
    assert_true(padding_regions >= 5);
    assert_int_equal(detected, flips);
    assert_int_equal(named, in_sections); /* a flip in a section names it */
    assert_int_equal(decode_copy(bytes, length, NULL), FEDL_OK);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_rejects_every_truncation(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    fedl_container c;
    fedl_error err;
    fedl_rng rng;
    int tried = 0, rejected = 0;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    assert_int_equal(fedl_container_parse(bytes, length, "base", &c, &err), FEDL_OK);
    for (int i = 0; i < c.section_count; i++) {
        size_t edges[2] = {(size_t)c.sections[i].offset,
                           (size_t)(c.sections[i].offset + c.sections[i].length)};
        for (int e = 0; e < 2; e++)
            for (int delta = -1; delta <= 1; delta++) {
                size_t cut = edges[e] + (size_t)delta;
                tried++;
                rejected += decode_copy(bytes, cut, &err) == FEDL_ERR_FORMAT;
                if (strstr(err.message, "truncated") == NULL)
                    fail_msg("cut at %zu: '%s'", cut, err.message);
            }
    }
    fedl_rng_init(&rng, 99, 0);
    for (int i = 0; i < 250; i++) {
        size_t cut = fedl_rng_below(&rng, (uint32_t)length);
        tried++;
        rejected += decode_copy(bytes, cut, &err) == FEDL_ERR_FORMAT;
    }
    for (size_t cut = 0; cut < 40; cut++) {
        tried++;
        rejected += decode_copy(bytes, cut, &err) == FEDL_ERR_FORMAT;
    }
    tried++;
    rejected += decode_copy(bytes, length - 1, &err) == FEDL_ERR_FORMAT;
    assert_int_equal(rejected, tried);
    assert_true(tried >= 300);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_rejects_zeroed_pages_and_appended_garbage(void **state)
{
    fixture f;
    uint8_t *bytes, *damaged;
    size_t length, offsets[8];
    fedl_container c;
    fedl_error err;
    int zeroed = 0;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    assert_true(length > 8192);
    assert_int_equal(fedl_container_parse(bytes, length, "base", &c, &err), FEDL_OK);
    offsets[0] = 0;
    offsets[1] = 512;
    offsets[2] = 4096;
    offsets[3] = (size_t)fedl_container_find(&c, "optim_state")->offset;
    offsets[4] = (size_t)fedl_container_find(&c, "rng")->offset;
    offsets[5] = 8192;
    offsets[6] = length - 4096;
    offsets[7] = length - 100;
    damaged = malloc(length + 4096);
    assert_non_null(damaged);
    for (int i = 0; i < 8; i++) {
        size_t end = offsets[i] + 4096 < length ? offsets[i] + 4096 : length;
        memcpy(damaged, bytes, length);
        memset(damaged + offsets[i], 0, end - offsets[i]);
        if (memcmp(damaged, bytes, length) == 0)
            continue; /* nothing changed */
        zeroed++;
        assert_int_equal(decode_copy(damaged, length, &err), FEDL_ERR_FORMAT);
    }
    assert_int_equal(zeroed, 8);
    /* appended bytes: one, and a page */
    memcpy(damaged, bytes, length);
    damaged[length] = 0;
    expect_decode_error(damaged, length + 1, "(1 bytes appended after the end)");
    memset(damaged + length, 0xa5, 4096);
    expect_decode_error(damaged, length + 4096, "(4096 bytes appended after the end)");
    free(damaged);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

/* ------------------------------------------------------------ range checks */

static void test_checkpoint_decoder_range_checks_every_field(void **state)
{
    fixture f;
    uint8_t *bytes, *out;
    size_t length, out_len;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    assert_int_equal(fedl_model_param_count(f.model), 690);

    expect_field_error(bytes, length, "optim", 0, 2, 0,
                       "ckpt.fedl: section 'optim', byte @: payload version 2 is not supported");
    expect_field_error(bytes, length, "optim", 4, 3, 0,
                       "section 'optim', byte @: optimiser kind 3 out of range");
    expect_field_error(bytes, length, "optim", 16, 2, 0, "section 'optim', byte @: nesterov 2");
    expect_field_error(bytes, length, "optim", 44, 5, 1,
                       "section 'optim', byte @: 5 optimiser state floats for adam");
    expect_field_error(bytes, length, "optim", 4, FEDL_OPTIM_SGD, 0,
                       "optimiser state floats for sgd");
    expect_field_error(bytes, length, "rng", 0, 0, 0, "section 'rng', byte @: payload version 0");
    expect_field_error(bytes, length, "rng", 20, 5, 1,
                       "differs from section 'rng'"); /* the cursor disagrees now */
    expect_field_error(bytes, length, "cursor", 20, 5, 1,
                       "section 'cursor', byte @: shuffle seed 5 differs from section 'rng'");
    expect_field_error(bytes, length, "cursor", 12, 60001, 1,
                       "section 'cursor', byte @: position 60001 is past the epoch's 60000");
    expect_field_error(bytes, length, "counters", 0, 7, 0, "section 'counters', byte @: payload");
    expect_field_error(bytes, length, "counters", 20, 0, 0,
                       "section 'counters', byte @: micro-batch is 0");
    expect_field_error(bytes, length, "counters", 24, 4, 0,
                       "section 'counters', byte @: effective batch is smaller than the "
                       "micro-batch");
    expect_field_error(bytes, length, "cursor", 28, 2, 0,
                       "section 'cursor', byte @: shuffle flag is not 0 or 1");
    expect_field_error(bytes, length, "lr", 8, 0x7fc00000u, 0, /* a NaN */
                       "section 'lr', byte @: base learning rate is not finite");
    expect_field_error(bytes, length, "optim", 32, 0x7f800000u, 0, /* +inf */
                       "section 'optim', byte @: eps is not finite");
    expect_field_error(bytes, length, "lr", 4, 3, 0,
                       "section 'lr', byte @: schedule kind 3 out of range");
    expect_field_error(bytes, length, "config", 4, 0x12345678, 0,
                       "section 'config', byte @: stored SHA-256 is not the digest of the text");
    expect_field_error(bytes, length, "config", 36, 5, 0,
                       "section 'config', byte @: text length 5, but");
    expect_field_error(bytes, length, "config", 40, 0x41414100, 0,
                       "section 'config', byte @: text contains a NUL byte");
    expect_field_error(bytes, length, "meta", 4, 6, 0,
                       "section 'meta', byte @: 6 entries cannot fit in 58 bytes");
    expect_field_error(bytes, length, "meta", 4, 4, 0, "entry 3: key length runs past");
    expect_field_error(bytes, length, "meta", 4, 2, 0, "17 bytes after the last entry");
    expect_field_error(bytes, length, "meta", 8, 0, 0,
                       "section 'meta', byte @: entry 0: key length 0");
    expect_field_error(bytes, length, "meta", 8, 256, 0, "entry 0: key length 256");
    expect_field_error(bytes, length, "meta", 15, 0xffffffffu, 0,
                       "section 'meta', byte @: entry 0: value length 4294967295");
    expect_field_error(bytes, length, "meta", 12, 0x00000000, 0, "entry 0: key contains a NUL");
    expect_field_error(bytes, length, "model", 0, 9, 0,
                       "section 'model', byte @: payload version 9 is not supported");
    expect_field_error(bytes, length, "model", 16, 691, 1,
                       "section 'model', byte @: 691 parameters, but the layers hold 690");
    expect_field_error(bytes, length, "model", 16, 1, 1,
                       "layers' parameter counts exceed the total 1");
    expect_field_error(bytes, length, "model", 24, 1000, 0,
                       "section 'model', byte @: 1000 layers need 20000 bytes");
    /* layer 0 (conv2d) says 5 output channels */
    expect_field_error(bytes, length, "model", 28, 5, 0,
                       "section 'model', layer 0 conv2d(4,3,stride=1,pad=1) (byte @): stored "
                       "output (5,8,8) with 40 parameters, the spec builds (4,8,8) with 40");

    /* sections missing, renamed, of the wrong kind, file kind */
    rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "lr", NULL, 0, NULL, &out, &out_len);
    expect_decode_error(out, out_len, "ckpt.fedl: checkpoint has no section 'lr'");
    fedl_mem_free(NULL, out, out_len);
    rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "cursor", NULL, 0, "cursor2", &out, &out_len);
    expect_decode_error(out, out_len, "no section 'cursor'");
    fedl_mem_free(NULL, out, out_len);
    rebuild(bytes, length, FEDL_FILE_MODEL, NULL, NULL, 0, NULL, &out, &out_len);
    expect_decode_error(out, out_len,
                        "file kind 1 at byte 16 is not a checkpoint (2): it is a "
                        "model file");
    fedl_mem_free(NULL, out, out_len);
    {
        uint8_t rng[29] = {1};
        rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "rng", rng, sizeof rng, NULL, &out, &out_len);
        expect_decode_error(out, out_len, "section 'rng' (byte ");
        expect_decode_error(out, out_len, ") is 29 bytes, expected exactly 28");
        fedl_mem_free(NULL, out, out_len);
        rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "meta", rng, 3, NULL, &out, &out_len);
        expect_decode_error(out, out_len, "is 3 bytes, expected at least 8");
        fedl_mem_free(NULL, out, out_len);
        rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "optim_state", rng, 8, NULL, &out, &out_len);
        expect_decode_error(out, out_len, "but section 'optim_state' (byte ");
        fedl_mem_free(NULL, out, out_len);
        rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "params", rng, 8, NULL, &out, &out_len);
        expect_decode_error(out, out_len, "section 'params' (byte ");
        fedl_mem_free(NULL, out, out_len);
    }
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_meta_rejects_duplicate_keys_and_trailing_bytes(void **state)
{
    fixture f;
    uint8_t *bytes, *out, *payload;
    size_t length, out_len, section_len;
    (void)state;
    fixture_init(&f);
    f.meta[1] = (fedl_meta_entry){"rux", (const uint8_t *)"pi4", 3}; /* same length as "run" */
    encode(&f, &bytes, &length);
    payload = section_copy(bytes, length, "meta", &section_len, NULL);
    /* entry 1 starts after entry 0: 4 + 3 ("run") + 4 + 7 ("alpha-7") */
    assert_memory_equal(payload + 8 + 18 + 4, "rux", 3);
    payload[8 + 18 + 4 + 2] = 'n';
    rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "meta", payload, section_len, NULL, &out,
            &out_len);
    {
        char needle[128];
        uint64_t meta_at;
        size_t ignored;
        free(section_copy(bytes, length, "meta", &ignored, &meta_at));
        snprintf(needle, sizeof needle,
                 "section 'meta', byte %llu: entry 1: key 'run' is already used by an earlier "
                 "entry",
                 (unsigned long long)(meta_at + 8 + 18));
        expect_decode_error(out, out_len, needle);
    }
    fedl_mem_free(NULL, out, out_len);
    /* one byte more than the entries use */
    payload[8 + 18 + 4 + 2] = 'x';
    payload[section_len] = 0;
    rebuild(bytes, length, FEDL_FILE_CHECKPOINT, "meta", payload, section_len + 1, NULL, &out,
            &out_len);
    expect_decode_error(out, out_len, "1 bytes after the last entry");
    fedl_mem_free(NULL, out, out_len);
    free(payload);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_writer_refuses_inconsistent_state(void **state)
{
    fixture f;
    fedl_container_writer *w;
    fedl_error err = {0};
    (void)state;
    fixture_init(&f);
#define EXPECT_REFUSED(needle)                                                                     \
    do {                                                                                           \
        assert_int_equal(fedl_checkpoint_writer(f.model, &f.state, NULL, &w, &err),                \
                         FEDL_ERR_INVALID_ARG);                                                    \
        assert_null(w);                                                                            \
        if (strstr(err.message, needle) == NULL)                                                   \
            fail_msg("message '%s' lacks '%s'", err.message, needle);                              \
        fixture_free(&f);                                                                          \
        fixture_init(&f);                                                                          \
    } while (0)
    f.state.position = 60001;
    EXPECT_REFUSED("cursor position 60001 past the epoch's 60000 samples");
    f.state.optim.kind = (fedl_optim_kind)7;
    EXPECT_REFUSED("optimiser kind 7");
    f.state.lr.kind = (fedl_lr_kind)3;
    EXPECT_REFUSED("schedule kind 3");
    f.state.optim_state_count = 10;
    EXPECT_REFUSED("10 optimiser state floats for adam");
    f.state.optim_state = NULL;
    EXPECT_REFUSED("optimiser state floats");
    f.state.config_sha256[0] ^= 1;
    EXPECT_REFUSED("config_sha256 is not the SHA-256 of config_text");
    f.meta[2].key = "run";
    EXPECT_REFUSED("metadata key 'run' given twice (entry 2)");
    f.meta[1].key = "";
    EXPECT_REFUSED("metadata entry 1: key of 0 bytes");
    f.meta[1].value = NULL;
    EXPECT_REFUSED("metadata 'host': value of 3 bytes");
    f.state.meta_count = -1;
    EXPECT_REFUSED("-1 metadata entries");
    f.state.micro_batch = 0;
    EXPECT_REFUSED("section 'counters': micro-batch is 0");
    f.state.last_lr = NAN;
    EXPECT_REFUSED("section 'lr': last learning rate is not finite");
    f.state.shuffle = 3;
    EXPECT_REFUSED("section 'cursor': shuffle flag is not 0 or 1");
#undef EXPECT_REFUSED
    assert_int_equal(fedl_checkpoint_writer(NULL, &f.state, NULL, &w, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_checkpoint_writer(f.model, NULL, NULL, &w, &err), FEDL_ERR_INVALID_ARG);
    fixture_free(&f);
}

/* -------------------------------------------------------------- model files */

static void test_model_file_round_trips_and_is_a_container(void **state)
{
    fedl_model *m = make_model(), *loaded;
    uint8_t *bytes;
    size_t length;
    fedl_container c;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_model_serialize(m, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(fedl_container_parse(bytes, length, "m", &c, &err), FEDL_OK);
    assert_int_equal(c.file_kind, FEDL_FILE_MODEL);
    assert_int_equal(c.section_count, 2);
    assert_string_equal(c.sections[0].name, "model");
    assert_string_equal(c.sections[1].name, "params");
    assert_int_equal(c.sections[1].length, 4 * fedl_model_param_count(m));
    assert_int_equal(fedl_model_deserialize(bytes, length, "m", NULL, &loaded, &err), FEDL_OK);
    assert_model_equal(m, loaded);
    fedl_model_destroy(loaded);
    /* a flip in the parameters is named */
    bytes[c.sections[1].offset + 17] ^= 0x08;
    assert_int_equal(fedl_model_deserialize(bytes, length, "m.fedl", NULL, &loaded, &err),
                     FEDL_ERR_FORMAT);
    assert_null(loaded);
    assert_non_null(strstr(err.message, "m.fedl: section 'params' (bytes "));
    fedl_mem_free(NULL, bytes, length);
    fedl_model_destroy(m);
}

/* A version-1 file, byte by byte as docs/FORMAT.md describes it. */
static uint8_t *legacy_v1_file(const fedl_model *m, size_t *length)
{
    const char *spec = fedl_model_spec(m);
    size_t spec_len = strlen(spec), count = fedl_model_param_count(m);
    const float *params = fedl_model_params((fedl_model *)m);
    uint8_t *b;
    *length = 40 + spec_len + 4 * count + 4;
    b = calloc(1, *length);
    assert_non_null(b);
    memcpy(b, "FEDLMODL", 8);
    fedl_put_u32(b + 8, 1);
    fedl_put_u32(b + 12, 40);
    fedl_put_u32(b + 16, (uint32_t)spec_len);
    fedl_put_u32(b + 20, 1);
    fedl_put_u32(b + 24, 8);
    fedl_put_u32(b + 28, 8);
    fedl_put_u64(b + 32, count);
    memcpy(b + 40, spec, spec_len);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &params[i], 4);
        fedl_put_u32(b + 40 + spec_len + 4 * i, bits);
    }
    fedl_put_u32(b + *length - 4, fedl_crc32c(0, b, *length - 4));
    return b;
}

static void test_model_file_version_1_still_loads(void **state)
{
    fedl_model *m = make_model(), *loaded;
    size_t length;
    uint8_t *b = legacy_v1_file(m, &length);
    fedl_error err;
    fedl_checkpoint *ck;
    (void)state;
    assert_int_equal(fedl_model_deserialize(b, length, "old.fedl", NULL, &loaded, &err), FEDL_OK);
    assert_model_equal(m, loaded);
    fedl_model_destroy(loaded);
    b[50] ^= 1;
    assert_int_equal(fedl_model_deserialize(b, length, "old.fedl", NULL, &loaded, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "checksum mismatch"));
    b[50] ^= 1;
    /* a checkpoint reader says what the file is */
    assert_int_equal(fedl_checkpoint_decode(b, length, "old.fedl", NULL, &ck, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "legacy version-1 model file"));
    free(b);
    fedl_model_destroy(m);
}

static void test_model_deserialize_loads_a_checkpoints_model(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    fedl_model *loaded;
    fedl_error err;
    const char *dir = test_make_temp_dir("ckpt-model");
    char path[512];
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    assert_int_equal(fedl_model_deserialize(bytes, length, "ck", NULL, &loaded, &err), FEDL_OK);
    assert_model_equal(f.model, loaded);
    fedl_model_destroy(loaded);
    /* and through a file */
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/ck.fedl", dir);
    assert_int_equal(fedl_durable_write(path, bytes, length, &err), FEDL_OK);
    assert_int_equal(fedl_model_load(path, NULL, &loaded, &err), FEDL_OK);
    assert_model_equal(f.model, loaded);
    fedl_model_destroy(loaded);
    remove(path);
    rmdir(dir);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_model_save_and_load_round_trip(void **state)
{
    fedl_model *m = make_model(), *loaded;
    fedl_error err;
    const char *dir = test_make_temp_dir("model-file");
    char path[512];
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/m.fedl", dir);
    assert_int_equal(fedl_model_save(m, path, &err), FEDL_OK);
    assert_int_equal(fedl_model_load(path, NULL, &loaded, &err), FEDL_OK);
    assert_model_equal(m, loaded);
    fedl_model_destroy(loaded);
    remove(path);
    rmdir(dir);
    fedl_model_destroy(m);
}

/* ----------------------------------------------------------- out of memory */

static void test_checkpoint_decode_survives_every_allocation_failure(void **state)
{
    fixture f;
    uint8_t *bytes;
    size_t length;
    uint64_t n;
    (void)state;
    fixture_init(&f);
    encode(&f, &bytes, &length);
    for (n = 1; n < 1000; n++) {
        test_failing_alloc hook = {0, n};
        fedl_allocator a;
        fedl_error err = {0};
        fedl_checkpoint *ck;
        fedl_status st;
        fedl_allocator_init(&a, test_failing_alloc_fn, &hook);
        st = fedl_checkpoint_decode(bytes, length, "ck", &a, &ck, &err);
        if (st == FEDL_OK) {
            assert_true(hook.requests < n); /* ran to the end: no Nth request */
            assert_state_equal(&f.state, &ck->state);
            fedl_checkpoint_free(ck);
            assert_int_equal(a.stats.live_bytes, 0);
            break;
        }
        assert_int_equal(st, FEDL_ERR_NOMEM);
        assert_null(ck);
        assert_true(strlen(err.message) > 0);
        assert_int_equal(a.stats.live_bytes, 0); /* nothing leaked */
    }
    assert_true(n > 5 && n < 1000);
    fedl_mem_free(NULL, bytes, length);
    fixture_free(&f);
}

static void test_checkpoint_writer_survives_every_allocation_failure(void **state)
{
    fixture f;
    uint64_t n;
    (void)state;
    fixture_init(&f);
    for (n = 1; n < 1000; n++) {
        test_failing_alloc hook = {0, n};
        fedl_allocator a;
        fedl_error err = {0};
        fedl_container_writer *w;
        uint8_t *bytes = NULL;
        size_t length = 0;
        fedl_status st;
        fedl_allocator_init(&a, test_failing_alloc_fn, &hook);
        st = fedl_checkpoint_writer(f.model, &f.state, &a, &w, &err);
        if (st == FEDL_OK) {
            st = fedl_container_to_buffer(w, &a, &bytes, &length, &err);
            fedl_container_writer_destroy(w);
        }
        if (st == FEDL_OK) {
            assert_true(hook.requests < n);
            assert_int_equal(decode_copy(bytes, length, NULL), FEDL_OK);
            fedl_mem_free(&a, bytes, length);
            assert_int_equal(a.stats.live_bytes, 0);
            break;
        }
        assert_int_equal(st, FEDL_ERR_NOMEM);
        assert_int_equal(a.stats.live_bytes, 0);
    }
    assert_true(n > 3 && n < 1000);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trips_every_field_bit_for_bit),
        cmocka_unit_test(test_checkpoint_round_trips_sgd_without_state_and_empty_text),
        cmocka_unit_test(test_checkpoint_save_and_load_through_a_file),
        cmocka_unit_test(test_checkpoint_detects_every_sampled_bit_flip),
        cmocka_unit_test(test_checkpoint_rejects_every_truncation),
        cmocka_unit_test(test_checkpoint_rejects_zeroed_pages_and_appended_garbage),
        cmocka_unit_test(test_checkpoint_decoder_range_checks_every_field),
        cmocka_unit_test(test_checkpoint_meta_rejects_duplicate_keys_and_trailing_bytes),
        cmocka_unit_test(test_checkpoint_writer_refuses_inconsistent_state),
        cmocka_unit_test(test_model_file_round_trips_and_is_a_container),
        cmocka_unit_test(test_model_file_version_1_still_loads),
        cmocka_unit_test(test_model_deserialize_loads_a_checkpoints_model),
        cmocka_unit_test(test_model_save_and_load_round_trip),
        cmocka_unit_test(test_checkpoint_decode_survives_every_allocation_failure),
        cmocka_unit_test(test_checkpoint_writer_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
