/*
 * checkpoint_inspect.c - reading and writing fedl files with the public
 * checkpoint API: verify a file's checksums, list its sections, decode a
 * checkpoint's training state, and export a model for PyTorch.
 *
 *   cc checkpoint_inspect.c $(pkg-config --cflags --libs fedl) -o checkpoint_inspect
 *   ./checkpoint_inspect FILE    # what a model file or checkpoint holds
 *   ./checkpoint_inspect         # save a checkpoint of a small model, then inspect it
 *   ./checkpoint_inspect --smoke # the same, quietly; exit 1 if anything did not round-trip
 *
 * Files are written to $TMPDIR (or /tmp) and removed afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedl/fedl.h>

/* Print the container of path: header, section table, and what it decodes to. */
static int inspect(const char *path)
{
    fedl_file_view view;
    fedl_container c;
    fedl_checkpoint *ckpt = NULL;
    fedl_model *model = NULL;
    fedl_error err;
    if (fedl_file_view_open(path, NULL, &view, &err) != FEDL_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (fedl_container_parse(view.bytes, view.length, path, &c, &err) != FEDL_OK) {
        fprintf(stderr, "%s\n", err.message); /* which section, which check, which offset */
        fedl_file_view_close(&view);
        return 1;
    }
    printf("%s: container version %u, %s, %zu bytes\n", path, (unsigned)c.version,
           c.file_kind == FEDL_FILE_CHECKPOINT ? "checkpoint" : "model file", c.length);
    for (int i = 0; i < c.section_count; i++)
        printf("  %-16s offset %8llu  length %8llu  crc32c %08x\n", c.sections[i].name,
               (unsigned long long)c.sections[i].offset, (unsigned long long)c.sections[i].length,
               (unsigned)c.sections[i].crc32c);
    if (c.file_kind == FEDL_FILE_CHECKPOINT &&
        fedl_checkpoint_decode(view.bytes, view.length, path, NULL, &ckpt, &err) == FEDL_OK) {
        const fedl_train_state *s = &ckpt->state;
        printf("model %s (%zu parameters)\n", fedl_model_spec(ckpt->model),
               fedl_model_param_count(ckpt->model));
        printf("step %llu, epoch %llu at sample %llu of %llu, %s lr %g, loss so far %.4f\n",
               (unsigned long long)s->global_step, (unsigned long long)s->epoch,
               (unsigned long long)s->position, (unsigned long long)s->epoch_samples,
               fedl_optim_kind_name(s->optim.kind), (double)s->last_lr,
               s->epoch_seen ? s->epoch_loss_sum / (double)s->epoch_seen : 0.0);
        fedl_checkpoint_free(ckpt);
    } else if (c.file_kind == FEDL_FILE_MODEL &&
               fedl_model_deserialize(view.bytes, view.length, path, NULL, &model, &err) ==
                   FEDL_OK) {
        printf("model %s (%zu parameters)\n", fedl_model_spec(model),
               fedl_model_param_count(model));
        fedl_model_destroy(model);
    } else {
        fprintf(stderr, "%s\n", err.message);
        fedl_file_view_close(&view);
        return 1;
    }
    fedl_file_view_close(&view);
    return 0;
}

/* A made-up training state, as a trainer would hold after some steps. */
static fedl_train_state example_state(const float *moments, size_t moment_count,
                                      const fedl_meta_entry *meta)
{
    fedl_train_state s;
    memset(&s, 0, sizeof s);
    s.global_step = 120;
    s.samples_seen = 3840;
    s.micro_batch = 32;
    s.effective_batch = 32;
    s.epoch_loss_sum = 301.5;
    s.epoch_correct = 610;
    s.epoch_seen = 840;
    s.epoch = 3;
    s.position = 840;
    s.shuffle_seed = 7;
    s.shuffle = 1;
    s.epoch_samples = 1000;
    s.model_seed = 7;
    s.dropout_step = 120;
    s.optim = fedl_optim_defaults(FEDL_OPTIM_SGD);
    s.optim.momentum = 0.9f;
    s.optim_steps = 120;
    s.optim_state = moments;
    s.optim_state_count = moment_count;
    s.lr.kind = FEDL_LR_CONSTANT;
    s.lr.base_lr = 0.05f;
    s.last_lr = 0.05f;
    s.config_text = "batch=32\nlr=0.05\nmodel=conv1d(4,3) relu flatten dense(2)\n";
    fedl_sha256(s.config_text, strlen(s.config_text), s.config_sha256);
    s.meta = meta;
    s.meta_count = 1;
    return s;
}

/* The loaded checkpoint holds what was saved. */
static int same_state(const fedl_checkpoint *loaded, const fedl_train_state *saved,
                      const fedl_model *model)
{
    const fedl_train_state *s = &loaded->state;
    const fedl_meta_entry *note = fedl_checkpoint_meta(loaded, "note");
    size_t count = fedl_model_param_count(model);
    return s->global_step == saved->global_step && s->epoch == saved->epoch &&
           s->position == saved->position && s->epoch_loss_sum == saved->epoch_loss_sum &&
           s->optim_state_count == saved->optim_state_count &&
           memcmp(s->optim_state, saved->optim_state, saved->optim_state_count * sizeof(float)) ==
               0 &&
           strcmp(s->config_text, saved->config_text) == 0 && note != NULL &&
           note->length == saved->meta[0].length &&
           memcmp(note->value, saved->meta[0].value, note->length) == 0 &&
           fedl_model_param_count(loaded->model) == count &&
           memcmp(fedl_model_params(loaded->model), fedl_model_params((fedl_model *)model),
                  count * sizeof(float)) == 0;
}

/* Save a checkpoint and a safetensors export of a small model, read the
 * checkpoint back and compare. */
static int round_trip(int quiet)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[1024], export_path[1040];
    fedl_shape input = {1, 1, 16}; /* a 1-D series of 16 samples */
    fedl_model *model = NULL;
    fedl_checkpoint *loaded = NULL;
    fedl_error err = {0};
    float *moments = NULL;
    size_t count;
    static const uint8_t note[] = "saved by checkpoint_inspect";
    fedl_meta_entry meta = {"note", note, sizeof note - 1};
    fedl_train_state state;
    int rc = 1;
    snprintf(path, sizeof path, "%s/checkpoint_inspect_example.fedl", tmp);
    snprintf(export_path, sizeof export_path, "%s.safetensors", path);
    if (fedl_model_create("conv1d(4,3) relu flatten dense(2)", input, 7, NULL, &model, &err) !=
        FEDL_OK)
        goto done;
    count = fedl_model_param_count(model);
    moments = calloc(count, sizeof *moments);
    if (moments == NULL) {
        snprintf(err.message, sizeof err.message, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        moments[i] = 0.001f * (float)i;
    state = example_state(moments, count, &meta);
    if (fedl_checkpoint_save(NULL, path, model, &state, &err) != FEDL_OK ||
        fedl_checkpoint_load(path, NULL, &loaded, &err) != FEDL_OK ||
        fedl_model_export_safetensors(model, export_path, &err) != FEDL_OK)
        goto done;
    if (!same_state(loaded, &state, model)) {
        snprintf(err.message, sizeof err.message, "the loaded state differs from the saved one");
        goto done;
    }
    if (!quiet && inspect(path) != 0)
        goto done;
    if (!quiet)
        printf("exported %s\n", export_path);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "checkpoint_inspect: %s\n", err.message);
    else if (quiet)
        printf("checkpoint_inspect: checkpoint and safetensors round trip ok\n");
    if (loaded != NULL)
        fedl_checkpoint_free(loaded);
    fedl_model_destroy(model);
    free(moments);
    remove(path);
    remove(export_path);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--smoke") == 0)
        return round_trip(1);
    if (argc > 1)
        return inspect(argv[1]);
    return round_trip(0);
}
