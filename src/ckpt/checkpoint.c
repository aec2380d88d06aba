/*
 * checkpoint.c - training checkpoints: a container of kind
 * FEDL_FILE_CHECKPOINT holding the model and its parameters and every piece
 * of state a training session needs to continue exactly where it stopped
 * (optimiser and its moments, seeds, data cursor, counters, learning-rate
 * schedule, configuration text and fingerprint, metadata). Encoding of each
 * section, and decoding with every length checked exactly and every value
 * range-checked, into memory owned by the fedl_checkpoint.
 *
 * Sections, in file order (docs/FORMAT.md gives every byte; all little-
 * endian; every payload but the float arrays starts with a u32 payload
 * version, 1):
 *   model, params   fedl_model_add_sections (model_file.c)
 *   optim           52 bytes: kind, hyper-parameters, step count, state count
 *   optim_state     float32 moments (0, P or 2P values)
 *   rng             28 bytes: model seed, dropout step, shuffle seed
 *   cursor          40 bytes: epoch, position, shuffle seed, shuffle, epoch samples
 *   counters        52 bytes: steps, samples, batch sizes, epoch statistics
 *   lr              40 bytes: schedule and the last learning rate
 *   config          40 + T bytes: SHA-256, text length T, text
 *   meta            8 + entries: count, then key length, key, value length, value
 */
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

#define PAYLOAD_VERSION 1u
#define OPTIM_BYTES 52u
#define RNG_BYTES 28u
#define CURSOR_BYTES 40u
#define COUNTERS_BYTES 52u
#define LR_BYTES 40u
#define CONFIG_FIXED_BYTES 40u      /* version, SHA-256, text length */
#define META_FIXED_BYTES 8u         /* version, entry count */
#define META_KEY_MAX 255u           /* bytes */
#define META_VALUE_MAX (16u << 20)  /* bytes */
#define CONFIG_TEXT_MAX (16u << 20) /* bytes */

enum {
    SEC_MODEL,
    SEC_PARAMS,
    SEC_OPTIM,
    SEC_OPTIM_STATE,
    SEC_RNG,
    SEC_CURSOR,
    SEC_COUNTERS,
    SEC_LR,
    SEC_CONFIG,
    SEC_META,
    SEC_COUNT
};

static const struct {
    const char *name;
    fedl_section_kind kind;
} checkpoint_sections[SEC_COUNT] = {
    {"model", FEDL_SECTION_MODEL},       {"params", FEDL_SECTION_PARAMS},
    {"optim", FEDL_SECTION_OPTIM},       {"optim_state", FEDL_SECTION_OPTIM_STATE},
    {"rng", FEDL_SECTION_RNG},           {"cursor", FEDL_SECTION_CURSOR},
    {"counters", FEDL_SECTION_COUNTERS}, {"lr", FEDL_SECTION_LR},
    {"config", FEDL_SECTION_CONFIG},     {"meta", FEDL_SECTION_META},
};

static void put_f32(uint8_t *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    fedl_put_u32(p, bits);
}

static float get_f32(const uint8_t *p)
{
    uint32_t bits = fedl_get_u32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void put_f64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    fedl_put_u64(p, bits);
}

static double get_f64(const uint8_t *p)
{
    uint64_t bits = fedl_get_u64(p);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* ------------------------------------------------------------ shared rules */

/* Moments an optimiser of kind keeps for P parameters: SGD 0 (no momentum)
 * or P, Adam and AdamW 2P. */
static int optim_state_count_valid(uint32_t kind, uint64_t count, uint64_t params)
{
    if (kind == FEDL_OPTIM_SGD)
        return count == 0 || count == params;
    return count == 2 * params;
}

static int compare_meta_keys(const void *a, const void *b)
{
    const fedl_meta_entry *const *x = a;
    const fedl_meta_entry *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

/* *duplicate receives the index of an entry whose key an earlier entry
 * (in array order) also has, or -1. Sorting pointers keeps this
 * O(n log n) for files with many entries. */
static fedl_status find_duplicate_key(const fedl_meta_entry *meta, int count, fedl_allocator *alloc,
                                      int *duplicate, fedl_error *err)
{
    const fedl_meta_entry **sorted; /* (count) */
    size_t bytes = (size_t)count * sizeof *sorted;
    *duplicate = -1;
    if (count < 2)
        return FEDL_OK;
    sorted = fedl_mem_alloc(alloc, bytes);
    if (sorted == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "checkpoint: cannot allocate %zu bytes to check metadata keys",
                              bytes);
    for (int i = 0; i < count; i++)
        sorted[i] = &meta[i];
    qsort(sorted, (size_t)count, sizeof *sorted, compare_meta_keys);
    for (int i = 1; i < count && *duplicate < 0; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            int a = (int)(sorted[i - 1] - meta), b = (int)(sorted[i] - meta);
            *duplicate = a > b ? a : b;
        }
    fedl_mem_free(alloc, sorted, bytes);
    return FEDL_OK;
}

/* The first scalar of s that no real training state has, as its section,
 * byte offset in the payload and a description; NULL when all are sane.
 * Shared by the writer (which refuses to write it) and the decoder. */
static const char *state_scalar_problem(const fedl_train_state *s, int *sec, uint64_t *at)
{
    const struct {
        float value;
        int sec;
        uint64_t at;
        const char *what;
    } floats[] = {
        {s->optim.momentum, SEC_OPTIM, 8, "momentum is not finite"},
        {s->optim.dampening, SEC_OPTIM, 12, "dampening is not finite"},
        {s->optim.weight_decay, SEC_OPTIM, 20, "weight decay is not finite"},
        {s->optim.beta1, SEC_OPTIM, 24, "beta1 is not finite"},
        {s->optim.beta2, SEC_OPTIM, 28, "beta2 is not finite"},
        {s->optim.eps, SEC_OPTIM, 32, "eps is not finite"},
        {s->lr.base_lr, SEC_LR, 8, "base learning rate is not finite"},
        {s->lr.gamma, SEC_LR, 20, "gamma is not finite"},
        {s->lr.min_lr, SEC_LR, 32, "minimum learning rate is not finite"},
        {s->last_lr, SEC_LR, 36, "last learning rate is not finite"},
    };
    *sec = SEC_CURSOR;
    *at = 28;
    if (s->shuffle > 1)
        return "shuffle flag is not 0 or 1";
    *sec = SEC_COUNTERS;
    *at = 20;
    if (s->micro_batch == 0)
        return "micro-batch is 0";
    *at = 24;
    if (s->effective_batch < s->micro_batch)
        return "effective batch is smaller than the micro-batch";
    *at = 28;
    if (!isfinite(s->epoch_loss_sum) || s->epoch_loss_sum < 0.0)
        return "epoch loss sum is negative or not finite";
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        if (!isfinite(floats[i].value)) {
            *sec = floats[i].sec;
            *at = floats[i].at;
            return floats[i].what;
        }
    }
    return NULL;
}

/* ================================================================== writer */

static fedl_status check_meta_entries(const fedl_train_state *s, fedl_error *err)
{
    size_t total = META_FIXED_BYTES; /* bytes of the "meta" payload */
    if (s->meta_count < 0 || (s->meta_count > 0 && s->meta == NULL))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: %d metadata entries at %p",
                              s->meta_count, (const void *)s->meta);
    for (int i = 0; i < s->meta_count; i++) {
        const fedl_meta_entry *e = &s->meta[i];
        size_t key_len = e->key != NULL ? strlen(e->key) : 0;
        if (key_len == 0 || key_len > META_KEY_MAX)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "checkpoint: metadata entry %d: key of %zu bytes (1..%u)", i,
                                  key_len, META_KEY_MAX);
        if (e->length > META_VALUE_MAX || (e->length > 0 && e->value == NULL))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "checkpoint: metadata '%s': value of %zu bytes (at most %u, "
                                  "not NULL)",
                                  e->key, e->length, META_VALUE_MAX);
        if (8 + key_len + e->length > SIZE_MAX - total)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "checkpoint: metadata too large for memory");
        total += 8 + key_len + e->length;
    }
    return FEDL_OK;
}

/* Everything the decoder would refuse, refused before writing. */
static fedl_status check_state(const fedl_model *model, const fedl_train_state *s, fedl_error *err)
{
    uint64_t params, at;
    const char *problem;
    int sec;
    if (model == NULL || s == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: NULL %s",
                              model == NULL ? "model" : "state");
    params = (uint64_t)fedl_model_param_count(model);
    if ((unsigned)s->optim.kind > FEDL_OPTIM_ADAMW || (unsigned)s->lr.kind > FEDL_LR_COSINE)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: optimiser kind %d or schedule kind %d out of range",
                              (int)s->optim.kind, (int)s->lr.kind);
    if (s->position > s->epoch_samples)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: cursor position %llu past the epoch's %llu samples",
                              (unsigned long long)s->position,
                              (unsigned long long)s->epoch_samples);
    if (!optim_state_count_valid((uint32_t)s->optim.kind, s->optim_state_count, params) ||
        (s->optim_state_count > 0 && s->optim_state == NULL))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: %zu optimiser state floats for %s and %llu parameters "
                              "(SGD: 0 or P, Adam/AdamW: 2P)",
                              s->optim_state_count, fedl_optim_kind_name(s->optim.kind),
                              (unsigned long long)params);
    if (s->config_text != NULL && strlen(s->config_text) > CONFIG_TEXT_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: configuration text of %zu bytes (at most %u)",
                              strlen(s->config_text), CONFIG_TEXT_MAX);
    problem = state_scalar_problem(s, &sec, &at);
    if (problem != NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: section '%s': %s",
                              checkpoint_sections[sec].name, problem);
    return check_meta_entries(s, err);
}

/* The fingerprint written: SHA-256 of the text. A caller's non-zero
 * config_sha256 must be that digest (a mismatch means the caller hashed
 * something else); an all-zero one means "compute it". */
static fedl_status config_digest(const fedl_train_state *s, uint8_t digest[FEDL_SHA256_BYTES],
                                 fedl_error *err)
{
    static const uint8_t zero[FEDL_SHA256_BYTES];
    const char *text = s->config_text != NULL ? s->config_text : "";
    fedl_sha256(text, strlen(text), digest);
    if (memcmp(s->config_sha256, zero, sizeof zero) != 0 &&
        memcmp(s->config_sha256, digest, FEDL_SHA256_BYTES) != 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: config_sha256 is not the SHA-256 of config_text");
    return FEDL_OK;
}

static void encode_optim(uint8_t p[OPTIM_BYTES], const fedl_train_state *s)
{
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u32(p + 4, (uint32_t)s->optim.kind);
    put_f32(p + 8, s->optim.momentum);
    put_f32(p + 12, s->optim.dampening);
    fedl_put_u32(p + 16, s->optim.nesterov != 0);
    put_f32(p + 20, s->optim.weight_decay);
    put_f32(p + 24, s->optim.beta1);
    put_f32(p + 28, s->optim.beta2);
    put_f32(p + 32, s->optim.eps);
    fedl_put_u64(p + 36, s->optim_steps);
    fedl_put_u64(p + 44, (uint64_t)s->optim_state_count);
}

static void encode_rng(uint8_t p[RNG_BYTES], const fedl_train_state *s)
{
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u64(p + 4, s->model_seed);
    fedl_put_u64(p + 12, s->dropout_step);
    fedl_put_u64(p + 20, s->shuffle_seed);
}

static void encode_cursor(uint8_t p[CURSOR_BYTES], const fedl_train_state *s)
{
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u64(p + 4, s->epoch);
    fedl_put_u64(p + 12, s->position);
    fedl_put_u64(p + 20, s->shuffle_seed);
    fedl_put_u32(p + 28, s->shuffle);
    fedl_put_u64(p + 32, s->epoch_samples);
}

static void encode_counters(uint8_t p[COUNTERS_BYTES], const fedl_train_state *s)
{
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u64(p + 4, s->global_step);
    fedl_put_u64(p + 12, s->samples_seen);
    fedl_put_u32(p + 20, s->micro_batch);
    fedl_put_u32(p + 24, s->effective_batch);
    put_f64(p + 28, s->epoch_loss_sum);
    fedl_put_u64(p + 36, s->epoch_correct);
    fedl_put_u64(p + 44, s->epoch_seen);
}

static void encode_lr(uint8_t p[LR_BYTES], const fedl_train_state *s)
{
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u32(p + 4, (uint32_t)s->lr.kind);
    put_f32(p + 8, s->lr.base_lr);
    fedl_put_u64(p + 12, s->lr.step_size);
    put_f32(p + 20, s->lr.gamma);
    fedl_put_u64(p + 24, s->lr.total_steps);
    put_f32(p + 32, s->lr.min_lr);
    put_f32(p + 36, s->last_lr);
}

/* The fixed-size sections, each copied into the writer. */
static fedl_status add_fixed_sections(fedl_container_writer *w, const fedl_train_state *s,
                                      fedl_error *err)
{
    uint8_t optim[OPTIM_BYTES], rng[RNG_BYTES], cursor[CURSOR_BYTES];
    uint8_t counters[COUNTERS_BYTES], lr[LR_BYTES];
    fedl_status st;
    encode_optim(optim, s);
    encode_rng(rng, s);
    encode_cursor(cursor, s);
    encode_counters(counters, s);
    encode_lr(lr, s);
    st = fedl_container_add_copy(w, "optim", FEDL_SECTION_OPTIM, optim, sizeof optim, err);
    if (st == FEDL_OK)
        st = fedl_container_add_floats(w, "optim_state", FEDL_SECTION_OPTIM_STATE, s->optim_state,
                                       s->optim_state_count, err);
    if (st == FEDL_OK)
        st = fedl_container_add_copy(w, "rng", FEDL_SECTION_RNG, rng, sizeof rng, err);
    if (st == FEDL_OK)
        st = fedl_container_add_copy(w, "cursor", FEDL_SECTION_CURSOR, cursor, sizeof cursor, err);
    if (st == FEDL_OK)
        st = fedl_container_add_copy(w, "counters", FEDL_SECTION_COUNTERS, counters,
                                     sizeof counters, err);
    if (st == FEDL_OK)
        st = fedl_container_add_copy(w, "lr", FEDL_SECTION_LR, lr, sizeof lr, err);
    return st;
}

/* Build a section payload of bytes in a scratch buffer and copy it in. */
typedef void (*encode_fn)(uint8_t *p, const fedl_train_state *s, const uint8_t *digest);

static fedl_status add_built_section(fedl_container_writer *w, fedl_allocator *alloc,
                                     const char *name, fedl_section_kind kind, size_t bytes,
                                     encode_fn encode, const fedl_train_state *s,
                                     const uint8_t *digest, fedl_error *err)
{
    uint8_t *payload = fedl_mem_alloc(alloc, bytes); /* (bytes) */
    fedl_status st;
    if (payload == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "checkpoint: cannot allocate %zu bytes for section '%s'", bytes,
                              name);
    encode(payload, s, digest);
    st = fedl_container_add_copy(w, name, kind, payload, bytes, err);
    fedl_mem_free(alloc, payload, bytes);
    return st;
}

static const char *config_text_of(const fedl_train_state *s)
{
    return s->config_text != NULL ? s->config_text : "";
}

static void encode_config(uint8_t *p, const fedl_train_state *s, const uint8_t *digest)
{
    const char *text = config_text_of(s);
    size_t length = strlen(text);
    fedl_put_u32(p, PAYLOAD_VERSION);
    memcpy(p + 4, digest, FEDL_SHA256_BYTES);
    fedl_put_u32(p + 36, (uint32_t)length);
    memcpy(p + CONFIG_FIXED_BYTES, text, length);
}

static size_t meta_payload_bytes(const fedl_train_state *s)
{
    size_t bytes = META_FIXED_BYTES;
    for (int i = 0; i < s->meta_count; i++)
        bytes += 8 + strlen(s->meta[i].key) + s->meta[i].length;
    return bytes;
}

static void encode_meta(uint8_t *p, const fedl_train_state *s, const uint8_t *digest)
{
    size_t at = META_FIXED_BYTES;
    (void)digest;
    fedl_put_u32(p, PAYLOAD_VERSION);
    fedl_put_u32(p + 4, (uint32_t)s->meta_count);
    for (int i = 0; i < s->meta_count; i++) {
        const fedl_meta_entry *e = &s->meta[i];
        size_t key_len = strlen(e->key);
        fedl_put_u32(p + at, (uint32_t)key_len);
        memcpy(p + at + 4, e->key, key_len);
        at += 4 + key_len;
        fedl_put_u32(p + at, (uint32_t)e->length);
        if (e->length > 0)
            memcpy(p + at + 4, e->value, e->length);
        at += 4 + e->length;
    }
}

static fedl_status add_all_sections(fedl_container_writer *w, const fedl_model *model,
                                    const fedl_train_state *s, fedl_allocator *alloc,
                                    const uint8_t digest[FEDL_SHA256_BYTES], fedl_error *err)
{
    fedl_status st = fedl_model_add_sections(w, model, err);
    if (st == FEDL_OK)
        st = add_fixed_sections(w, s, err);
    if (st == FEDL_OK)
        st = add_built_section(w, alloc, "config", FEDL_SECTION_CONFIG,
                               CONFIG_FIXED_BYTES + strlen(config_text_of(s)), encode_config, s,
                               digest, err);
    if (st == FEDL_OK)
        st = add_built_section(w, alloc, "meta", FEDL_SECTION_META, meta_payload_bytes(s),
                               encode_meta, s, digest, err);
    return st;
}

fedl_status fedl_checkpoint_writer(const fedl_model *model, const fedl_train_state *state,
                                   fedl_allocator *alloc, fedl_container_writer **out,
                                   fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    int duplicate;
    fedl_container_writer *w;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    st = check_state(model, state, err);
    if (st == FEDL_OK)
        st = config_digest(state, digest, err);
    if (st == FEDL_OK)
        st = find_duplicate_key(state->meta, state->meta_count, alloc, &duplicate, err);
    if (st != FEDL_OK)
        return st;
    if (duplicate >= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint: metadata key '%s' given twice (entry %d)",
                              state->meta[duplicate].key, duplicate);
    st = fedl_container_writer_create(FEDL_FILE_CHECKPOINT, alloc, &w, err);
    if (st != FEDL_OK)
        return st;
    st = add_all_sections(w, model, state, alloc, digest, err);
    if (st != FEDL_OK) {
        fedl_container_writer_destroy(w);
        return st;
    }
    *out = w;
    return FEDL_OK;
}

fedl_status fedl_checkpoint_save(const fedl_io *io, const char *path, const fedl_model *model,
                                 const fedl_train_state *state, fedl_error *err)
{
    fedl_container_writer *w;
    fedl_status st = fedl_checkpoint_writer(model, state, NULL, &w, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_container_write(w, io, path, err);
    fedl_container_writer_destroy(w);
    return st;
}

/* ================================================================= decoder */

typedef struct decoder {
    const fedl_container *c;
    const char *name; /* file name for messages */
    const fedl_section *s[SEC_COUNT];
    const uint8_t *data[SEC_COUNT];
    fedl_checkpoint *ck;
    fedl_error *err;
} decoder;

/* "<file>: section '<name>', byte <file offset>: <what>" */
static fedl_status field_error(const decoder *d, int sec, uint64_t field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static fedl_status field_error(const decoder *d, int sec, uint64_t field, const char *fmt, ...)
{
    char what[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return fedl_error_set(d->err, FEDL_ERR_FORMAT, "%s: section '%s', byte %llu: %s", d->name,
                          checkpoint_sections[sec].name,
                          (unsigned long long)(d->s[sec]->offset + field), what);
}

static fedl_status find_sections(decoder *d)
{
    if (d->c->file_kind != FEDL_FILE_CHECKPOINT)
        return fedl_error_set(d->err, FEDL_ERR_FORMAT,
                              "%s: file kind %u at byte 16 is not a checkpoint (2)%s", d->name,
                              d->c->file_kind,
                              d->c->file_kind == FEDL_FILE_MODEL ? ": it is a model file" : "");
    for (int i = 0; i < SEC_COUNT; i++) {
        d->s[i] = fedl_container_find(d->c, checkpoint_sections[i].name);
        if (d->s[i] == NULL)
            return fedl_error_set(d->err, FEDL_ERR_FORMAT, "%s: checkpoint has no section '%s'",
                                  d->name, checkpoint_sections[i].name);
        if (d->s[i]->kind != (uint32_t)checkpoint_sections[i].kind)
            return fedl_error_set(
                d->err, FEDL_ERR_FORMAT, "%s: section '%s' has kind %u, expected %u", d->name,
                checkpoint_sections[i].name, d->s[i]->kind, (unsigned)checkpoint_sections[i].kind);
        d->data[i] = fedl_container_data(d->c, d->s[i]);
    }
    return FEDL_OK;
}

/* A section's length (exact, or at least minimum when exact is 0) and its
 * payload version. */
static fedl_status check_payload(const decoder *d, int sec, uint64_t exact, uint64_t minimum)
{
    uint64_t length = d->s[sec]->length;
    uint32_t version;
    if ((exact != 0 && length != exact) || length < minimum)
        return fedl_error_set(
            d->err, FEDL_ERR_FORMAT, "%s: section '%s' (byte %llu) is %llu bytes, expected %s%llu",
            d->name, checkpoint_sections[sec].name, (unsigned long long)d->s[sec]->offset,
            (unsigned long long)length, exact != 0 ? "exactly " : "at least ",
            (unsigned long long)(exact != 0 ? exact : minimum));
    version = fedl_get_u32(d->data[sec]);
    if (version != PAYLOAD_VERSION)
        return field_error(d, sec, 0, "payload version %u is not supported (this build reads %u)",
                           version, PAYLOAD_VERSION);
    return FEDL_OK;
}

static fedl_status decode_optim(decoder *d)
{
    const uint8_t *p = d->data[SEC_OPTIM];
    fedl_train_state *s = &d->ck->state;
    uint64_t params = (uint64_t)fedl_model_param_count(d->ck->model), count;
    uint32_t kind, nesterov;
    fedl_status st = check_payload(d, SEC_OPTIM, OPTIM_BYTES, 0);
    if (st != FEDL_OK)
        return st;
    kind = fedl_get_u32(p + 4);
    if (kind > FEDL_OPTIM_ADAMW)
        return field_error(d, SEC_OPTIM, 4,
                           "optimiser kind %u out of range (0 sgd, 1 adam, 2 "
                           "adamw)",
                           kind);
    nesterov = fedl_get_u32(p + 16);
    if (nesterov > 1)
        return field_error(d, SEC_OPTIM, 16, "nesterov %u is not 0 or 1", nesterov);
    count = fedl_get_u64(p + 44);
    if (!optim_state_count_valid(kind, count, params))
        return field_error(d, SEC_OPTIM, 44,
                           "%llu optimiser state floats for %s and %llu parameters (SGD: 0 or "
                           "P, Adam/AdamW: 2P)",
                           (unsigned long long)count, fedl_optim_kind_name((fedl_optim_kind)kind),
                           (unsigned long long)params);
    if (d->s[SEC_OPTIM_STATE]->length != 4 * count)
        return field_error(d, SEC_OPTIM, 44,
                           "%llu optimiser state floats, but section 'optim_state' (byte %llu) "
                           "is %llu bytes",
                           (unsigned long long)count,
                           (unsigned long long)d->s[SEC_OPTIM_STATE]->offset,
                           (unsigned long long)d->s[SEC_OPTIM_STATE]->length);
    s->optim.kind = (fedl_optim_kind)kind;
    s->optim.momentum = get_f32(p + 8);
    s->optim.dampening = get_f32(p + 12);
    s->optim.nesterov = (int)nesterov;
    s->optim.weight_decay = get_f32(p + 20);
    s->optim.beta1 = get_f32(p + 24);
    s->optim.beta2 = get_f32(p + 28);
    s->optim.eps = get_f32(p + 32);
    s->optim_steps = fedl_get_u64(p + 36);
    return FEDL_OK;
}

/* The moments, copied (count checked by decode_optim). */
static fedl_status decode_optim_state(decoder *d)
{
    fedl_checkpoint *ck = d->ck;
    size_t count = (size_t)(d->s[SEC_OPTIM_STATE]->length / 4);
    const uint8_t *p = d->data[SEC_OPTIM_STATE];
    if (count == 0)
        return FEDL_OK;
    ck->optim_state = fedl_mem_alloc(ck->alloc, count * sizeof(float));
    if (ck->optim_state == NULL)
        return fedl_error_set(d->err, FEDL_ERR_NOMEM,
                              "%s: cannot allocate %zu bytes for the optimiser state", d->name,
                              count * sizeof(float));
    ck->state.optim_state = ck->optim_state;
    ck->state.optim_state_count = count;
    for (size_t i = 0; i < count; i++)
        ck->optim_state[i] = get_f32(p + 4 * i);
    return FEDL_OK;
}

static fedl_status decode_rng(decoder *d)
{
    const uint8_t *p = d->data[SEC_RNG];
    fedl_train_state *s = &d->ck->state;
    fedl_status st = check_payload(d, SEC_RNG, RNG_BYTES, 0);
    if (st != FEDL_OK)
        return st;
    s->model_seed = fedl_get_u64(p + 4);
    s->dropout_step = fedl_get_u64(p + 12);
    s->shuffle_seed = fedl_get_u64(p + 20);
    return FEDL_OK;
}

/* After decode_rng: the cursor's shuffle seed must be the same. */
static fedl_status decode_cursor(decoder *d)
{
    const uint8_t *p = d->data[SEC_CURSOR];
    fedl_train_state *s = &d->ck->state;
    uint64_t shuffle_seed;
    fedl_status st = check_payload(d, SEC_CURSOR, CURSOR_BYTES, 0);
    if (st != FEDL_OK)
        return st;
    s->epoch = fedl_get_u64(p + 4);
    s->position = fedl_get_u64(p + 12);
    shuffle_seed = fedl_get_u64(p + 20);
    s->shuffle = fedl_get_u32(p + 28);
    s->epoch_samples = fedl_get_u64(p + 32);
    if (shuffle_seed != s->shuffle_seed)
        return field_error(
            d, SEC_CURSOR, 20, "shuffle seed %llu differs from section 'rng' (byte %llu): %llu",
            (unsigned long long)shuffle_seed, (unsigned long long)(d->s[SEC_RNG]->offset + 20),
            (unsigned long long)s->shuffle_seed);
    if (s->position > s->epoch_samples)
        return field_error(d, SEC_CURSOR, 12, "position %llu is past the epoch's %llu samples",
                           (unsigned long long)s->position, (unsigned long long)s->epoch_samples);
    return FEDL_OK;
}

static fedl_status decode_counters(decoder *d)
{
    const uint8_t *p = d->data[SEC_COUNTERS];
    fedl_train_state *s = &d->ck->state;
    fedl_status st = check_payload(d, SEC_COUNTERS, COUNTERS_BYTES, 0);
    if (st != FEDL_OK)
        return st;
    s->global_step = fedl_get_u64(p + 4);
    s->samples_seen = fedl_get_u64(p + 12);
    s->micro_batch = fedl_get_u32(p + 20);
    s->effective_batch = fedl_get_u32(p + 24);
    s->epoch_loss_sum = get_f64(p + 28);
    s->epoch_correct = fedl_get_u64(p + 36);
    s->epoch_seen = fedl_get_u64(p + 44);
    return FEDL_OK;
}

static fedl_status decode_lr(decoder *d)
{
    const uint8_t *p = d->data[SEC_LR];
    fedl_train_state *s = &d->ck->state;
    uint32_t kind;
    fedl_status st = check_payload(d, SEC_LR, LR_BYTES, 0);
    if (st != FEDL_OK)
        return st;
    kind = fedl_get_u32(p + 4);
    if (kind > FEDL_LR_COSINE)
        return field_error(d, SEC_LR, 4,
                           "schedule kind %u out of range (0 constant, 1 step, 2 cosine)", kind);
    s->lr.kind = (fedl_lr_kind)kind;
    s->lr.base_lr = get_f32(p + 8);
    s->lr.step_size = fedl_get_u64(p + 12);
    s->lr.gamma = get_f32(p + 20);
    s->lr.total_steps = fedl_get_u64(p + 24);
    s->lr.min_lr = get_f32(p + 32);
    s->last_lr = get_f32(p + 36);
    return FEDL_OK;
}

static fedl_status decode_config(decoder *d)
{
    const uint8_t *p = d->data[SEC_CONFIG];
    fedl_checkpoint *ck = d->ck;
    uint8_t digest[FEDL_SHA256_BYTES];
    uint64_t length;
    fedl_status st = check_payload(d, SEC_CONFIG, 0, CONFIG_FIXED_BYTES);
    if (st != FEDL_OK)
        return st;
    length = fedl_get_u32(p + 36);
    if (length > CONFIG_TEXT_MAX)
        return field_error(d, SEC_CONFIG, 36, "text length %llu is over the %u-byte limit",
                           (unsigned long long)length, CONFIG_TEXT_MAX);
    if (length != d->s[SEC_CONFIG]->length - CONFIG_FIXED_BYTES)
        return field_error(d, SEC_CONFIG, 36, "text length %llu, but %llu bytes follow",
                           (unsigned long long)length,
                           (unsigned long long)(d->s[SEC_CONFIG]->length - CONFIG_FIXED_BYTES));
    if (memchr(p + CONFIG_FIXED_BYTES, '\0', (size_t)length) != NULL)
        return field_error(d, SEC_CONFIG, CONFIG_FIXED_BYTES, "text contains a NUL byte");
    fedl_sha256(p + CONFIG_FIXED_BYTES, (size_t)length, digest);
    if (memcmp(digest, p + 4, FEDL_SHA256_BYTES) != 0)
        return field_error(d, SEC_CONFIG, 4, "stored SHA-256 is not the digest of the text");
    ck->config_text = fedl_mem_alloc(ck->alloc, (size_t)length + 1);
    if (ck->config_text == NULL)
        return fedl_error_set(d->err, FEDL_ERR_NOMEM,
                              "%s: cannot allocate %llu bytes for the configuration text", d->name,
                              (unsigned long long)length + 1);
    memcpy(ck->config_text, p + CONFIG_FIXED_BYTES, (size_t)length);
    ck->state.config_text = ck->config_text;
    memcpy(ck->state.config_sha256, digest, FEDL_SHA256_BYTES);
    return FEDL_OK;
}

/* One metadata entry at *at: key length 1..255, key without NUL, value
 * length <= 16 MiB, all inside the section. Advances *at past it. */
static fedl_status check_meta_entry(const decoder *d, uint32_t index, uint64_t *at,
                                    uint64_t *storage)
{
    const uint8_t *p = d->data[SEC_META];
    uint64_t length = d->s[SEC_META]->length, key_len, value_len;
    if (length - *at < 4)
        return field_error(d, SEC_META, *at, "entry %u: key length runs past the section", index);
    key_len = fedl_get_u32(p + *at);
    if (key_len == 0 || key_len > META_KEY_MAX || key_len > length - *at - 4)
        return field_error(
            d, SEC_META, *at, "entry %u: key length %llu (1..%u, within the section's %llu bytes)",
            index, (unsigned long long)key_len, META_KEY_MAX, (unsigned long long)length);
    if (memchr(p + *at + 4, '\0', (size_t)key_len) != NULL)
        return field_error(d, SEC_META, *at + 4, "entry %u: key contains a NUL byte", index);
    *at += 4 + key_len;
    if (length - *at < 4)
        return field_error(d, SEC_META, *at, "entry %u: value length runs past the section", index);
    value_len = fedl_get_u32(p + *at);
    if (value_len > META_VALUE_MAX || value_len > length - *at - 4)
        return field_error(d, SEC_META, *at,
                           "entry %u: value length %llu (at most %u, within the section's %llu "
                           "bytes)",
                           index, (unsigned long long)value_len, META_VALUE_MAX,
                           (unsigned long long)length);
    *at += 4 + value_len;
    *storage += key_len + 1 + value_len;
    return FEDL_OK;
}

/* Copy the (already checked) entries into meta and meta_storage: each key
 * NUL-terminated, followed by its value. */
static void copy_meta_entries(decoder *d, uint32_t count)
{
    const uint8_t *p = d->data[SEC_META];
    fedl_checkpoint *ck = d->ck;
    uint64_t at = META_FIXED_BYTES;
    uint8_t *store = ck->meta_storage;
    for (uint32_t i = 0; i < count; i++) {
        size_t key_len = fedl_get_u32(p + at), value_len;
        memcpy(store, p + at + 4, key_len);
        ck->meta[i].key = (const char *)store;
        store += key_len + 1;
        at += 4 + key_len;
        value_len = fedl_get_u32(p + at);
        memcpy(store, p + at + 4, value_len);
        ck->meta[i].value = store;
        ck->meta[i].length = value_len;
        store += value_len;
        at += 4 + value_len;
    }
}

/* Offset of entry index in the (already checked) "meta" payload. */
static uint64_t meta_entry_offset(const decoder *d, uint32_t index)
{
    const uint8_t *p = d->data[SEC_META];
    uint64_t at = META_FIXED_BYTES;
    for (uint32_t i = 0; i < index; i++) {
        at += 4 + fedl_get_u32(p + at);
        at += 4 + fedl_get_u32(p + at);
    }
    return at;
}

static fedl_status allocate_meta(decoder *d, uint32_t count, uint64_t storage)
{
    fedl_checkpoint *ck = d->ck;
    if (storage > 0) {
        ck->meta_storage = fedl_mem_alloc(ck->alloc, (size_t)storage);
        if (ck->meta_storage == NULL)
            return fedl_error_set(d->err, FEDL_ERR_NOMEM,
                                  "%s: cannot allocate %llu bytes for the metadata", d->name,
                                  (unsigned long long)storage);
        ck->meta_storage_bytes = (size_t)storage;
    }
    if (count > 0) {
        ck->meta = fedl_mem_alloc(ck->alloc, (size_t)count * sizeof *ck->meta);
        if (ck->meta == NULL)
            return fedl_error_set(d->err, FEDL_ERR_NOMEM, "%s: cannot allocate %u metadata entries",
                                  d->name, count);
        ck->state.meta = ck->meta;
        ck->state.meta_count = (int)count;
    }
    return FEDL_OK;
}

static fedl_status decode_meta(decoder *d)
{
    const uint8_t *p = d->data[SEC_META];
    uint64_t length = d->s[SEC_META]->length, at = META_FIXED_BYTES, storage = 0;
    uint32_t count;
    int duplicate;
    fedl_status st = check_payload(d, SEC_META, 0, META_FIXED_BYTES);
    if (st != FEDL_OK)
        return st;
    count = fedl_get_u32(p + 4);
    /* an entry is at least 9 bytes: refuse a count the section cannot hold
     * before allocating for it */
    if (count > (length - META_FIXED_BYTES) / 9 || count > INT32_MAX)
        return field_error(d, SEC_META, 4, "%u entries cannot fit in %llu bytes", count,
                           (unsigned long long)length);
    for (uint32_t i = 0; i < count && st == FEDL_OK; i++)
        st = check_meta_entry(d, i, &at, &storage);
    if (st != FEDL_OK)
        return st;
    if (at != length)
        return field_error(d, SEC_META, at, "%llu bytes after the last entry",
                           (unsigned long long)(length - at));
    st = allocate_meta(d, count, storage);
    if (st != FEDL_OK)
        return st;
    copy_meta_entries(d, count);
    st = find_duplicate_key(d->ck->meta, (int)count, d->ck->alloc, &duplicate, d->err);
    if (st == FEDL_OK && duplicate >= 0)
        return field_error(d, SEC_META, meta_entry_offset(d, (uint32_t)duplicate),
                           "entry %d: key '%s' is already used by an earlier entry", duplicate,
                           d->ck->meta[duplicate].key);
    return st;
}

/* After the scalar sections are decoded: values no training state has. */
static fedl_status check_scalars(decoder *d)
{
    uint64_t at;
    int sec;
    const char *problem = state_scalar_problem(&d->ck->state, &sec, &at);
    if (problem == NULL)
        return FEDL_OK;
    return field_error(d, sec, at, "%s", problem);
}

static fedl_status decode_all(decoder *d)
{
    fedl_status st = find_sections(d);
    if (st == FEDL_OK)
        st = decode_rng(d);
    if (st == FEDL_OK)
        st = decode_cursor(d);
    if (st == FEDL_OK)
        st = decode_counters(d);
    if (st == FEDL_OK)
        st = decode_lr(d);
    if (st == FEDL_OK)
        st = fedl_model_from_container(d->c, d->name, d->ck->alloc, &d->ck->model, d->err);
    if (st == FEDL_OK)
        st = decode_optim(d);
    if (st == FEDL_OK)
        st = check_scalars(d);
    if (st == FEDL_OK)
        st = decode_optim_state(d);
    if (st == FEDL_OK)
        st = decode_config(d);
    if (st == FEDL_OK)
        st = decode_meta(d);
    if (st == FEDL_OK)
        fedl_model_set_seed(d->ck->model, d->ck->state.model_seed);
    return st;
}

fedl_status fedl_checkpoint_decode(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_checkpoint **out, fedl_error *err)
{
    fedl_container c;
    decoder d;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    memset(&d, 0, sizeof d);
    d.c = &c;
    d.name = name != NULL ? name : "checkpoint";
    d.err = err;
    st = fedl_container_parse(bytes, length, d.name, &c, err);
    if (st != FEDL_OK)
        return st;
    d.ck = fedl_mem_alloc(alloc, sizeof *d.ck);
    if (d.ck == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the checkpoint", d.name);
    d.ck->alloc = alloc;
    st = decode_all(&d);
    if (st != FEDL_OK) {
        fedl_checkpoint_free(d.ck);
        return st;
    }
    *out = d.ck;
    return FEDL_OK;
}

fedl_status fedl_checkpoint_load(const char *path, fedl_allocator *alloc, fedl_checkpoint **out,
                                 fedl_error *err)
{
    fedl_file_view view;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint: out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    st = fedl_file_view_open(path, alloc, &view, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_checkpoint_decode(view.bytes, view.length, path, alloc, out, err);
    fedl_file_view_close(&view);
    return st;
}

void fedl_checkpoint_free(fedl_checkpoint *c)
{
    fedl_allocator *alloc;
    if (c == NULL)
        return;
    alloc = c->alloc;
    fedl_model_destroy(c->model);
    fedl_mem_free(alloc, c->optim_state, c->state.optim_state_count * sizeof(float));
    if (c->config_text != NULL)
        fedl_mem_free(alloc, c->config_text, strlen(c->config_text) + 1);
    fedl_mem_free(alloc, c->meta, (size_t)c->state.meta_count * sizeof *c->meta);
    fedl_mem_free(alloc, c->meta_storage, c->meta_storage_bytes);
    fedl_mem_free(alloc, c, sizeof *c);
}

const fedl_meta_entry *fedl_checkpoint_meta(const fedl_checkpoint *c, const char *key)
{
    if (c == NULL || key == NULL)
        return NULL;
    for (int i = 0; i < c->state.meta_count; i++)
        if (strcmp(c->state.meta[i].key, key) == 0)
            return &c->state.meta[i];
    return NULL;
}
