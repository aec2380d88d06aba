/*
 * cmd_ckpt.c - `fedl ckpt`: look at fedl files without training.
 *
 *   verify DIR|FILE          check every byte a file's checksums cover (and
 *                            decode it); for a checkpoint directory, its
 *                            MANIFEST, every generation, the damaged ones set
 *                            aside, and which one a resume would use
 *   inspect FILE [--json]    header, section table and decoded contents
 *   export FILE --safetensors OUT
 *                            the model's parameters for PyTorch
 *
 * Exit codes: 0 all good, 1 damaged or failed, 2 usage error.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

static const char ckpt_help[] =
    "usage: fedl ckpt <command> [options]\n\n"
    "commands:\n"
    "  verify DIR|FILE                 check a model file, a checkpoint or a checkpoint\n"
    "                                  directory (every generation); exit 1 if damaged\n"
    "  inspect FILE [--json]           header, sections and decoded contents of a file\n"
    "  export FILE --safetensors OUT   write the model's parameters as safetensors\n\n"
    "Run 'fedl ckpt <command> --help' for the options of a command.\n";

static const cli_option no_options[] = {{NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};

/* ---------------------------------------------------------------- names */

static const char *file_kind_name(uint32_t kind)
{
    switch (kind) {
    case FEDL_FILE_MODEL:
        return "model";
    case FEDL_FILE_CHECKPOINT:
        return "checkpoint";
    case FEDL_FILE_CSV_INDEX:
        return "csv-index";
    case FEDL_FILE_COORDINATOR:
        return "coordinator";
    case FEDL_FILE_CLIENT:
        return "client";
    default:
        return "unknown";
    }
}

/* Files whose sections their own modules decode (a CSV index, a
 * coordinator, a client): verify and inspect check the container. */
static int is_opaque_kind(uint32_t kind)
{
    return kind == FEDL_FILE_CSV_INDEX || kind == FEDL_FILE_COORDINATOR || kind == FEDL_FILE_CLIENT;
}

static const char *section_kind_name(uint32_t kind)
{
    static const char *const names[] = {"?",    "model",  "params",      "optim", "optim_state",
                                        "rng",  "cursor", "counters",    "lr",    "config",
                                        "meta", "data",   "coordinator", "client"};
    if (kind >= 1 && kind < sizeof names / sizeof names[0])
        return names[kind];
    return "unknown";
}

static const char *lr_kind_name(fedl_lr_kind kind)
{
    switch (kind) {
    case FEDL_LR_CONSTANT:
        return "constant";
    case FEDL_LR_STEP:
        return "step";
    case FEDL_LR_COSINE:
        return "cosine";
    }
    return "unknown";
}

static int is_version1_model(const fedl_file_view *view)
{
    return view->length >= 8 && memcmp(view->bytes, "FEDLMODL", 8) == 0;
}

/* Printable ASCII text (tabs and newlines allowed). */
static int is_printable(const uint8_t *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        if ((bytes[i] < 0x20 && bytes[i] != '\t' && bytes[i] != '\n') || bytes[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------- file checks */

/* message without a leading "name: " (library messages name the file, and
 * the lines printed here already do). */
static const char *without_name(const char *message, const char *name)
{
    size_t length = strlen(name);
    if (strncmp(message, name, length) == 0 && message[length] == ':' && message[length + 1] == ' ')
        return message + length + 2;
    return message;
}

/* What a successful check found. */
typedef struct file_summary {
    uint32_t version; /* container version, 1 for "FEDLMODL" files */
    uint32_t kind;    /* fedl_file_kind */
    int section_count;
    size_t bytes;
} file_summary;

/* Verify the container (every CRC) and decode what it holds, so a file that
 * passes can be loaded. */
static fedl_status check_file_image(const fedl_file_view *view, const char *name,
                                    file_summary *summary, fedl_error *err)
{
    fedl_container c;
    fedl_model *model = NULL;
    fedl_checkpoint *ckpt = NULL;
    fedl_status st;
    memset(summary, 0, sizeof *summary);
    summary->bytes = view->length;
    if (is_version1_model(view)) {
        summary->version = 1;
        summary->kind = FEDL_FILE_MODEL;
        st = fedl_model_deserialize(view->bytes, view->length, name, NULL, &model, err);
        fedl_model_destroy(model);
        return st;
    }
    st = fedl_container_parse(view->bytes, view->length, name, &c, err);
    if (st != FEDL_OK)
        return st;
    summary->version = c.version;
    summary->kind = c.file_kind;
    summary->section_count = c.section_count;
    if (c.file_kind == FEDL_FILE_CHECKPOINT) {
        st = fedl_checkpoint_decode(view->bytes, view->length, name, NULL, &ckpt, err);
        fedl_checkpoint_free(ckpt);
    } else if (c.file_kind == FEDL_FILE_MODEL) {
        st = fedl_model_deserialize(view->bytes, view->length, name, NULL, &model, err);
        fedl_model_destroy(model);
    } else if (is_opaque_kind(c.file_kind)) {
        st = FEDL_OK; /* every CRC checked by the parse; its owner checks the rest */
    } else {
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: unknown file kind %u", name,
                            (unsigned)c.file_kind);
    }
    return st;
}

static fedl_status check_file(const char *path, file_summary *summary, fedl_error *err)
{
    fedl_file_view view;
    fedl_status st = fedl_file_view_open(path, NULL, &view, err);
    if (st != FEDL_OK)
        return st;
    st = check_file_image(&view, path, summary, err);
    fedl_file_view_close(&view);
    return st;
}

static void print_summary(const file_summary *s)
{
    if (s->version == 1)
        printf("ok (%s, version 1, %zu bytes)", file_kind_name(s->kind), s->bytes);
    else
        printf("ok (%s, %d sections, %zu bytes)", file_kind_name(s->kind), s->section_count,
               s->bytes);
}

/* ------------------------------------------------------------- verify */

static int verify_file(const char *path)
{
    file_summary summary;
    fedl_error err = {0};
    if (check_file(path, &summary, &err) != FEDL_OK) {
        printf("%s: %s: %s\n", path, err.status == FEDL_ERR_FORMAT ? "DAMAGED" : "ERROR",
               without_name(err.message, path));
        return 1;
    }
    printf("%s: ", path);
    print_summary(&summary);
    printf("\n");
    return 0;
}

/* One generation: the directory's check (manifest size and digest, the
 * container with the damaged section named, the file kind and a full
 * decode), and the file's own check for the summary. Prints one line;
 * returns 1 if valid. */
static int verify_generation(const fedl_ckpt_dir *d, int index)
{
    const char *path = fedl_ckpt_dir_path(d, index);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    file_summary summary;
    fedl_error dir_err = {0}, file_err = {0};
    fedl_status dir_st = fedl_ckpt_dir_verify(d, index, &dir_err);
    fedl_status file_st = check_file(path, &summary, &file_err);
    const fedl_error *why = dir_st != FEDL_OK ? &dir_err : &file_err;
    printf("  generation %llu  %s  ", (unsigned long long)fedl_ckpt_dir_generation(d, index), base);
    if (dir_st == FEDL_OK && file_st == FEDL_OK) {
        printf("OK (%s, %zu bytes)\n", file_kind_name(summary.kind), summary.bytes);
        return 1;
    }
    printf("%s: %s\n", why->status == FEDL_ERR_FORMAT ? "DAMAGED" : "ERROR",
           without_name(without_name(why->message, path), base));
    return 0;
}

/* The MANIFEST's state: one line when it is damaged or unreadable. Returns
 * 1 if it is fine (or absent). */
static int verify_manifest(const fedl_ckpt_dir *d)
{
    fedl_error err = {0};
    fedl_status st = fedl_ckpt_dir_manifest_status(d, &err);
    if (st == FEDL_OK)
        return 1;
    printf("  %s: %s: %s\n", FEDL_CKPT_MANIFEST, st == FEDL_ERR_FORMAT ? "DAMAGED" : "ERROR",
           err.message);
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Name the generations a resume set aside as damaged ("ckpt-*.fedl.damaged",
 * kept for inspection; they are not generations and do not fail verify). */
static void print_set_aside(const char *path)
{
    static const char prefix[] = "ckpt-", suffix[] = ".fedl.damaged";
    char *names[64];
    size_t count = 0, more = 0;
    struct dirent *entry;
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length <= sizeof suffix - 1 || strncmp(entry->d_name, prefix, sizeof prefix - 1) != 0 ||
            strcmp(entry->d_name + length - (sizeof suffix - 1), suffix) != 0)
            continue;
        if (count < sizeof names / sizeof names[0] && (names[count] = strdup(entry->d_name)))
            count++;
        else
            more++;
    }
    closedir(dir);
    qsort(names, count, sizeof names[0], compare_strings);
    for (size_t i = 0; i < count; i++) {
        printf("  set aside  %s  (found damaged by a resume; not a generation)\n", names[i]);
        free(names[i]);
    }
    if (more > 0)
        printf("  set aside  ... and %zu more\n", more);
}

static int verify_dir(const char *path)
{
    fedl_ckpt_dir_options options = fedl_ckpt_dir_defaults();
    fedl_ckpt_dir *d = NULL;
    fedl_error err = {0};
    fedl_log_level level = fedl_log_get_level();
    int count, valid = 0, newest, manifest_ok;
    options.create = 0;
    options.read_only = 1; /* verifying never changes the directory (nothing is set aside) */
    options.io = NULL;
    if (fedl_ckpt_dir_open(path, &options, NULL, &d, &err) != FEDL_OK) {
        printf("%s: ERROR: %s\n", path, err.message);
        return 1;
    }
    count = fedl_ckpt_dir_count(d);
    if (count == 0) {
        printf("no checkpoints in %s\n", path);
        verify_manifest(d);
        print_set_aside(path);
        fedl_ckpt_dir_close(d);
        return 1;
    }
    printf("%s: %d generation%s (newest first)\n", path, count, count == 1 ? "" : "s");
    manifest_ok = verify_manifest(d);
    for (int i = 0; i < count; i++)
        valid += verify_generation(d, i);
    print_set_aside(path);
    /* Damage was reported above; the library's WARN lines would repeat it. */
    fedl_log_set_level(FEDL_LOG_ERROR);
    newest = fedl_ckpt_dir_newest_valid(d, NULL);
    fedl_log_set_level(level);
    if (newest >= 0)
        printf("resume would use generation %llu (%s)\n",
               (unsigned long long)fedl_ckpt_dir_generation(d, newest),
               fedl_ckpt_dir_path(d, newest));
    else
        printf("no valid generation: a resume would start from scratch\n");
    printf("%s: %d of %d generations valid%s\n", path, valid, count,
           manifest_ok ? "" : "; MANIFEST damaged");
    fedl_ckpt_dir_close(d);
    return valid == count && manifest_ok ? 0 : 1;
}

static int ckpt_verify(int argc, char **argv)
{
    const char *target = NULL;
    cli_positionals positionals = {"DIR|FILE", &target, 1, 1, 0};
    struct stat st;
    int rc = cli_parse_positionals(
        "ckpt verify",
        "Checks every CRC-32C and decodes the contents; for a checkpoint directory also\n"
        "the MANIFEST itself and its sizes and SHA-256 digests. Changes nothing.\n"
        "Exit 0: all valid; 1: a generation or the MANIFEST is damaged.\n",
        no_options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (stat(target, &st) == 0 && S_ISDIR(st.st_mode))
        return verify_dir(target);
    return verify_file(target);
}

/* ------------------------------------------------------- inspect: text */

static void print_shape(const char *label, fedl_shape s)
{
    char text[48];
    snprintf(text, sizeof text, "(%d,%d,%d)", (int)s.c, (int)s.h, (int)s.w);
    printf("%s%-14s", label, text);
}

static void print_sections(const fedl_container *c)
{
    printf("  %-3s %-16s %-12s %12s %12s  %s\n", "#", "name", "kind", "offset", "length",
           "CRC-32C");
    for (int i = 0; i < c->section_count; i++) {
        const fedl_section *s = &c->sections[i];
        char kind[32];
        snprintf(kind, sizeof kind, "%s (%u)", section_kind_name(s->kind), (unsigned)s->kind);
        printf("  %-3d %-16s %-12s %12llu %12llu  %08x\n", i, s->name, kind,
               (unsigned long long)s->offset, (unsigned long long)s->length, (unsigned)s->crc32c);
    }
}

static void print_model(const fedl_model *model)
{
    char digits[32];
    printf("model: %s\n", fedl_model_spec(model));
    print_shape("  input ", fedl_model_input_shape(model));
    print_shape(" output ", fedl_model_output_shape(model));
    printf(" %s parameters\n",
           cli_group_digits(fedl_model_param_count(model), digits, sizeof digits));
    printf("  %-3s %-34s %-14s %-14s %10s\n", "#", "layer", "input", "output", "params");
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        if (fedl_model_layer_info(model, i, &info) != FEDL_OK)
            continue;
        printf("  %-3d %-34s ", i, info.text);
        print_shape("", info.in);
        print_shape(" ", info.out);
        printf(" %10zu\n", info.param_count);
    }
}

static void print_optimiser(const fedl_train_state *s)
{
    const fedl_optim_config *o = &s->optim;
    printf("  %-18s %s", "optimiser", fedl_optim_kind_name(o->kind));
    if (o->kind == FEDL_OPTIM_SGD)
        printf(" momentum %g dampening %g nesterov %d", (double)o->momentum, (double)o->dampening,
               o->nesterov);
    else
        printf(" betas (%g, %g) eps %g", (double)o->beta1, (double)o->beta2, (double)o->eps);
    printf(" weight-decay %g; %llu steps, %zu state floats\n", (double)o->weight_decay,
           (unsigned long long)s->optim_steps, s->optim_state_count);
    printf("  %-18s %s base %g", "lr schedule", lr_kind_name(s->lr.kind), (double)s->lr.base_lr);
    if (s->lr.kind == FEDL_LR_STEP)
        printf(" step-size %llu gamma %g", (unsigned long long)s->lr.step_size,
               (double)s->lr.gamma);
    else if (s->lr.kind == FEDL_LR_COSINE)
        printf(" total-steps %llu min %g", (unsigned long long)s->lr.total_steps,
               (double)s->lr.min_lr);
    printf("; last lr %g\n", (double)s->last_lr);
}

static void print_meta(const fedl_train_state *s)
{
    printf("  metadata: %d key%s\n", s->meta_count, s->meta_count == 1 ? "" : "s");
    for (int i = 0; i < s->meta_count; i++) {
        const fedl_meta_entry *m = &s->meta[i];
        printf("    %-24s %8zu bytes", m->key, m->length);
        if (m->length <= 200 && is_printable(m->value, m->length) &&
            memchr(m->value, '\n', m->length) == NULL)
            printf("  \"%.*s\"", (int)m->length, (const char *)m->value);
        printf("\n");
    }
}

static void print_state(const fedl_train_state *s)
{
    char hex[2 * FEDL_SHA256_BYTES + 1];
    double seen = s->epoch_seen ? (double)s->epoch_seen : 1.0;
    printf("training state:\n");
    printf("  %-18s %llu\n", "global step", (unsigned long long)s->global_step);
    printf("  %-18s %llu (0-based), position %llu of %llu samples\n", "epoch",
           (unsigned long long)s->epoch, (unsigned long long)s->position,
           (unsigned long long)s->epoch_samples);
    printf("  %-18s %llu\n", "samples seen", (unsigned long long)s->samples_seen);
    printf("  %-18s micro %u, effective %u\n", "batch", (unsigned)s->micro_batch,
           (unsigned)s->effective_batch);
    print_optimiser(s);
    printf("  %-18s model %llu, shuffle %llu (%s), dropout step %llu\n", "seeds",
           (unsigned long long)s->model_seed, (unsigned long long)s->shuffle_seed,
           s->shuffle ? "shuffled" : "dataset order", (unsigned long long)s->dropout_step);
    printf("  %-18s loss %.4f (sum %.6g over %llu samples), accuracy %.4f (%llu correct)\n",
           "epoch so far", s->epoch_loss_sum / seen, s->epoch_loss_sum,
           (unsigned long long)s->epoch_seen, (double)s->epoch_correct / seen,
           (unsigned long long)s->epoch_correct);
    fedl_sha256_hex(s->config_sha256, hex);
    printf("  %-18s %s\n", "config sha256", hex);
    printf("  config:\n");
    if (s->config_text != NULL) {
        const char *line = s->config_text;
        while (*line != '\0') {
            const char *end = strchr(line, '\n');
            int length = end ? (int)(end - line) : (int)strlen(line);
            printf("    %.*s\n", length, line);
            line += length + (end ? 1 : 0);
        }
    }
    print_meta(s);
}

/* ------------------------------------------------------- inspect: JSON */

static void json_string(const char *s, size_t length)
{
    putchar('"');
    for (size_t i = 0; i < length; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch == '\n')
            printf("\\n");
        else if (ch < 0x20 || ch > 0x7e)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void json_text(const char *key, const char *value)
{
    printf("\"%s\":", key);
    json_string(value, strlen(value));
}

static void json_shape(const char *key, fedl_shape s)
{
    printf("\"%s\":[%d,%d,%d]", key, (int)s.c, (int)s.h, (int)s.w);
}

static void json_sections(const fedl_container *c)
{
    printf(",\"sections\":[");
    for (int i = 0; i < c->section_count; i++) {
        const fedl_section *s = &c->sections[i];
        printf("%s{", i ? "," : "");
        json_text("name", s->name);
        printf(",\"kind\":%u,", (unsigned)s->kind);
        json_text("kind_name", section_kind_name(s->kind));
        printf(",\"offset\":%llu,\"length\":%llu,\"crc32c\":\"%08x\"}",
               (unsigned long long)s->offset, (unsigned long long)s->length, (unsigned)s->crc32c);
    }
    printf("]");
}

static void json_model(const fedl_model *model)
{
    printf(",\"model\":{");
    json_text("spec", fedl_model_spec(model));
    printf(",");
    json_shape("input", fedl_model_input_shape(model));
    printf(",");
    json_shape("output", fedl_model_output_shape(model));
    printf(",\"param_count\":%zu,\"layers\":[", fedl_model_param_count(model));
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        if (fedl_model_layer_info(model, i, &info) != FEDL_OK)
            continue;
        printf("%s{", i ? "," : "");
        json_text("layer", info.text);
        printf(",");
        json_shape("input", info.in);
        printf(",");
        json_shape("output", info.out);
        printf(",\"param_offset\":%zu,\"param_count\":%zu}", info.param_offset, info.param_count);
    }
    printf("]}");
}

static void json_state(const fedl_train_state *s)
{
    char hex[2 * FEDL_SHA256_BYTES + 1];
    const fedl_optim_config *o = &s->optim;
    printf(",\"state\":{\"global_step\":%llu,\"epoch\":%llu,\"position\":%llu,"
           "\"epoch_samples\":%llu,\"samples_seen\":%llu,\"micro_batch\":%u,"
           "\"effective_batch\":%u,",
           (unsigned long long)s->global_step, (unsigned long long)s->epoch,
           (unsigned long long)s->position, (unsigned long long)s->epoch_samples,
           (unsigned long long)s->samples_seen, (unsigned)s->micro_batch,
           (unsigned)s->effective_batch);
    printf("\"optimiser\":{");
    json_text("kind", fedl_optim_kind_name(o->kind));
    printf(",\"momentum\":%.9g,\"dampening\":%.9g,\"nesterov\":%d,\"weight_decay\":%.9g,"
           "\"beta1\":%.9g,\"beta2\":%.9g,\"eps\":%.9g,\"steps\":%llu,\"state_floats\":%zu},",
           (double)o->momentum, (double)o->dampening, o->nesterov, (double)o->weight_decay,
           (double)o->beta1, (double)o->beta2, (double)o->eps, (unsigned long long)s->optim_steps,
           s->optim_state_count);
    printf("\"lr\":{");
    json_text("kind", lr_kind_name(s->lr.kind));
    printf(",\"base\":%.9g,\"step_size\":%llu,\"gamma\":%.9g,\"total_steps\":%llu,"
           "\"min\":%.9g,\"last\":%.9g},",
           (double)s->lr.base_lr, (unsigned long long)s->lr.step_size, (double)s->lr.gamma,
           (unsigned long long)s->lr.total_steps, (double)s->lr.min_lr, (double)s->last_lr);
    printf("\"model_seed\":%llu,\"shuffle_seed\":%llu,\"shuffle\":%u,\"dropout_step\":%llu,",
           (unsigned long long)s->model_seed, (unsigned long long)s->shuffle_seed,
           (unsigned)s->shuffle, (unsigned long long)s->dropout_step);
    printf("\"epoch_loss_sum\":%.17g,\"epoch_correct\":%llu,\"epoch_seen\":%llu,",
           s->epoch_loss_sum, (unsigned long long)s->epoch_correct,
           (unsigned long long)s->epoch_seen);
    fedl_sha256_hex(s->config_sha256, hex);
    json_text("config_sha256", hex);
    printf(",");
    json_text("config", s->config_text ? s->config_text : "");
    printf(",\"meta\":[");
    for (int i = 0; i < s->meta_count; i++) {
        const fedl_meta_entry *m = &s->meta[i];
        printf("%s{", i ? "," : "");
        json_text("key", m->key);
        printf(",\"length\":%zu", m->length);
        if (is_printable(m->value, m->length)) {
            printf(",\"value\":");
            json_string((const char *)m->value, m->length);
        }
        printf("}");
    }
    printf("]}");
}

/* ------------------------------------------------------------ inspect */

/* What inspect decodes from one file; everything owned. */
typedef struct inspection {
    fedl_file_view view;
    fedl_container container; /* when version >= 2 */
    int version1;
    fedl_model *model;     /* model files */
    fedl_checkpoint *ckpt; /* checkpoints */
} inspection;

static fedl_status inspect_load(const char *path, inspection *in, fedl_error *err)
{
    fedl_status st;
    memset(in, 0, sizeof *in);
    st = fedl_file_view_open(path, NULL, &in->view, err);
    if (st != FEDL_OK)
        return st;
    if (is_version1_model(&in->view)) {
        in->version1 = 1;
        return fedl_model_deserialize(in->view.bytes, in->view.length, path, NULL, &in->model, err);
    }
    st = fedl_container_parse(in->view.bytes, in->view.length, path, &in->container, err);
    if (st != FEDL_OK)
        return st;
    if (in->container.file_kind == FEDL_FILE_CHECKPOINT)
        return fedl_checkpoint_decode(in->view.bytes, in->view.length, path, NULL, &in->ckpt, err);
    if (in->container.file_kind == FEDL_FILE_MODEL)
        return fedl_model_deserialize(in->view.bytes, in->view.length, path, NULL, &in->model, err);
    if (is_opaque_kind(in->container.file_kind))
        return FEDL_OK;
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: unknown file kind %u", path,
                          (unsigned)in->container.file_kind);
}

static void inspect_free(inspection *in)
{
    fedl_checkpoint_free(in->ckpt);
    fedl_model_destroy(in->model);
    if (in->view.bytes != NULL)
        fedl_file_view_close(&in->view);
}

static const fedl_model *inspected_model(const inspection *in)
{
    return in->ckpt != NULL ? in->ckpt->model : in->model;
}

static void inspect_print_text(const char *path, const inspection *in)
{
    char digits[32];
    if (in->version1) {
        printf("%s: version 1 model file (FEDLMODL), %s bytes\n", path,
               cli_group_digits(in->view.length, digits, sizeof digits));
    } else {
        printf("%s: fedl container version %u, %s file, %s bytes, %d sections\n", path,
               (unsigned)in->container.version, file_kind_name(in->container.file_kind),
               cli_group_digits(in->view.length, digits, sizeof digits),
               in->container.section_count);
        print_sections(&in->container);
    }
    if (inspected_model(in) != NULL)
        print_model(inspected_model(in));
    if (in->ckpt != NULL)
        print_state(&in->ckpt->state);
}

static void inspect_print_json(const char *path, const inspection *in)
{
    printf("{");
    json_text("file", path);
    printf(",\"bytes\":%zu,\"version\":%u,", in->view.length,
           in->version1 ? 1u : (unsigned)in->container.version);
    json_text("kind", in->version1 ? "model" : file_kind_name(in->container.file_kind));
    if (!in->version1)
        json_sections(&in->container);
    if (inspected_model(in) != NULL)
        json_model(inspected_model(in));
    if (in->ckpt != NULL)
        json_state(&in->ckpt->state);
    printf("}\n");
}

static int ckpt_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    const cli_option options[] = {
        {"json", CLI_FLAG, &json, NULL, "print one JSON object instead of text", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"FILE", &path, 1, 1, 0};
    inspection in;
    fedl_error err = {0};
    int rc = cli_parse_positionals("ckpt inspect",
                                   "Prints the container header, the section table and the "
                                   "decoded model and\ntraining state of a model file or "
                                   "checkpoint.\n",
                                   options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (inspect_load(path, &in, &err) != FEDL_OK) {
        fprintf(stderr, "fedl ckpt inspect: %s\n", err.message);
        inspect_free(&in);
        return 1;
    }
    if (json)
        inspect_print_json(path, &in);
    else
        inspect_print_text(path, &in);
    inspect_free(&in);
    return 0;
}

/* ------------------------------------------------------------- export */

/* Tensors the export writes: a weight per layer with parameters, and a
 * bias unless the layer was made with bias=0. */
static int count_tensors(const fedl_model *model)
{
    int tensors = 0;
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        if (fedl_model_layer_info(model, i, &info) != FEDL_OK || info.param_count == 0)
            continue;
        tensors += strstr(info.text, "bias=0") != NULL ? 1 : 2;
    }
    return tensors;
}

static int ckpt_export(int argc, char **argv)
{
    const char *path = NULL, *out = NULL;
    const cli_option options[] = {{"safetensors", CLI_STRING, &out, "OUT",
                                   "write the parameters as safetensors, required", 0, 0},
                                  {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"FILE", &path, 1, 1, 0};
    fedl_model *model = NULL;
    fedl_error err = {0};
    struct stat st;
    int rc = cli_parse_positionals(
        "ckpt export",
        "FILE is a model file or a checkpoint. Tensors are named \"<layer index>.weight\"\n"
        "and \"<layer index>.bias\" as in torch.nn.Sequential's state_dict.\n",
        options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (out == NULL) {
        fprintf(stderr, "fedl ckpt export: --safetensors OUT is required (see 'fedl ckpt export "
                        "--help')\n");
        return 2;
    }
    if (fedl_model_load(path, NULL, &model, &err) != FEDL_OK) {
        fprintf(stderr, "fedl ckpt export: %s\n", err.message);
        return 1;
    }
    if (fedl_model_export_safetensors(model, out, &err) != FEDL_OK) {
        fprintf(stderr, "fedl ckpt export: %s\n", err.message);
        fedl_model_destroy(model);
        return 1;
    }
    printf("wrote %s (%d tensors, %lld bytes)\n", out, count_tensors(model),
           stat(out, &st) == 0 ? (long long)st.st_size : -1LL);
    fedl_model_destroy(model);
    return 0;
}

/* ------------------------------------------------------------ dispatch */

int cmd_ckpt(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : NULL;
    if (sub == NULL) {
        fprintf(stderr, "fedl ckpt: expected verify, inspect or export (see 'fedl ckpt --help')\n");
        return 2;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(ckpt_help, stdout);
        return 0;
    }
    if (strcmp(sub, "verify") == 0)
        return ckpt_verify(argc, argv);
    if (strcmp(sub, "inspect") == 0)
        return ckpt_inspect(argc, argv);
    if (strcmp(sub, "export") == 0)
        return ckpt_export(argc, argv);
    fprintf(stderr, "fedl ckpt: unknown command '%s' (see 'fedl ckpt --help')\n", sub);
    return 2;
}
