/* test_csv_dataset.c - a CSV file as a data set: column selection, label
 * maps, missing values, scaling, a test file that takes the training
 * file's fit, errors with their positions, bounded memory, and training
 * from CSV giving the same weights as training from the same data in
 * memory. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

static const char *write_csv(const char *name, const char *text)
{
    static char paths[8][512];
    static int next;
    char *path = paths[next++ % 8];
    const char *dir = test_make_temp_dir("csvds");
    assert_non_null(dir);
    snprintf(path, 512, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    return path;
}

/* Open text as a training set with schema; fails the test on error. */
static void open_ok(const char *text, const fedl_csv_schema *schema, fedl_dataset *ds)
{
    fedl_error err = {0};
    if (fedl_csv_dataset_open(write_csv("d.csv", text), NULL, schema, NULL, NULL, ds, &err) !=
        FEDL_OK)
        fail_msg("open: %s", err.message);
}

/* Open text and expect failure with a message containing want. */
static void open_fails(const char *text, const fedl_csv_schema *schema, const char *want)
{
    fedl_dataset ds;
    fedl_error err = {0};
    assert_int_not_equal(
        fedl_csv_dataset_open(write_csv("bad.csv", text), NULL, schema, NULL, NULL, &ds, &err),
        FEDL_OK);
    if (strstr(err.message, want) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, want);
}

static void read_all(const fedl_dataset *ds, float *x, int32_t *labels)
{
    uint32_t idx[16];
    fedl_error err = {0};
    for (uint32_t i = 0; i < ds->count; i++)
        idx[i] = i;
    if (fedl_dataset_read(ds, idx, ds->count, x, labels, &err) != FEDL_OK)
        fail_msg("read: %s", err.message);
}

static void test_string_labels_sorted_and_all_features(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_dataset ds;
    float x[12];
    int32_t y[4];
    char buf[16];
    (void)state;
    open_ok("a,species,b\n1,dog,2\n3,cat,4\n5,emu,6\n7,cat,8\n",
            (schema.label = "species", &schema), &ds);
    assert_int_equal(ds.count, 4);
    assert_int_equal(ds.classes, 3);
    assert_int_equal(ds.sample_bytes, 2);
    assert_int_equal(ds.shape.c, 2);
    read_all(&ds, x, y);
    assert_int_equal(y[0], 1); /* cat 0, dog 1, emu 2 */
    assert_int_equal(y[1], 0);
    assert_int_equal(y[2], 2);
    assert_true(x[0] == 1.0f && x[1] == 2.0f && x[6] == 7.0f && x[7] == 8.0f);
    assert_string_equal(fedl_csv_class_name(fedl_csv_dataset_fit(&ds), 2, buf, sizeof buf), "emu");
    assert_int_equal(fedl_csv_dataset_info(&ds).numeric_labels, 0);
    fedl_dataset_free(&ds);
}

static void test_integer_labels_keep_their_value_and_columns_by_range(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_dataset ds;
    float x[8];
    int32_t y[4];
    uint32_t idx[2] = {3, 0};
    fedl_error err = {0};
    (void)state;
    schema.features = "2-3,1"; /* order as listed */
    open_ok("label,p0,p1,p2\n7,1,2,3\n2,4,5,6\n7,7,8,9\n0,10,11,12\n", &schema, &ds);
    assert_int_equal(ds.classes, 8); /* 0..7 */
    assert_int_equal(ds.sample_bytes, 3);
    assert_int_equal(fedl_dataset_read(&ds, idx, 2, x, y, &err), FEDL_OK);
    assert_int_equal(y[0], 0);
    assert_int_equal(y[1], 7);
    assert_true(x[0] == 11.0f && x[1] == 12.0f && x[2] == 10.0f);
    assert_true(x[3] == 2.0f && x[4] == 3.0f && x[5] == 1.0f);
    assert_int_equal(fedl_csv_dataset_info(&ds).numeric_labels, 1);
    /* an index past the end is refused, not read */
    idx[0] = 4;
    assert_int_equal(fedl_dataset_read(&ds, idx, 1, x, y, &err), FEDL_ERR_INVALID_ARG);
    fedl_dataset_free(&ds);
}

static void test_missing_values_by_policy(void **state)
{
    static const char text[] = "label,a,b\n0,1,\n1,3,4\n,5,6\n0,,8\n";
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_dataset ds;
    float x[8];
    int32_t y[4];
    (void)state;
    /* error (the default): names the line and column */
    open_fails(text, &schema, "bad.csv:2:5: field 3 (b)");
    /* skip: rows 1, 3 and 4 go */
    schema.missing = FEDL_CSV_MISSING_SKIP;
    open_ok(text, &schema, &ds);
    assert_int_equal(ds.count, 1);
    assert_int_equal(fedl_csv_dataset_info(&ds).skipped_rows, 3);
    fedl_dataset_free(&ds);
    /* fill: a missing label is still an error */
    schema.missing = FEDL_CSV_MISSING_FILL;
    schema.fill_value = -1.0f;
    open_fails(text, &schema, "bad.csv:4:1: field 1 (label)");
    /* mean of the values present: b = (4 + 6 + 8) / 3, a = (1 + 3) / 2 */
    schema.missing = FEDL_CSV_MISSING_MEAN;
    open_ok("label,a,b\n0,1,\n1,3,4\n1,,6\n0,,8\n", &schema, &ds);
    read_all(&ds, x, y);
    assert_true(fabsf(x[1] - 6.0f) < 1e-6f);
    assert_true(fabsf(x[4] - 2.0f) < 1e-6f && fabsf(x[6] - 2.0f) < 1e-6f);
    assert_int_equal(fedl_csv_dataset_info(&ds).filled, 3);
    fedl_dataset_free(&ds);
    schema.missing = FEDL_CSV_MISSING_FILL;
    open_ok("label,a,b\n0,1,\n1,3,4\n", &schema, &ds);
    read_all(&ds, x, y);
    assert_true(x[1] == -1.0f);
    fedl_dataset_free(&ds);
}

static void test_scaling_from_the_training_file_applies_to_the_test_file(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_dataset train, test;
    fedl_error err = {0};
    float x[8];
    int32_t y[4];
    (void)state;
    schema.scaling = FEDL_CSV_SCALE_MINMAX;
    open_ok("label,a,b\nx,0,10\ny,5,20\nx,10,30\n", &schema, &train);
    read_all(&train, x, y);
    assert_true(x[0] == 0.0f && x[1] == 0.0f && x[2] == 0.5f && x[3] == 0.5f && x[4] == 1.0f);
    /* the test file: the training min and max, the training label map */
    assert_int_equal(fedl_csv_dataset_open(write_csv("t.csv", "label,a,b\ny,20,0\n"), NULL, &schema,
                                           fedl_csv_dataset_fit(&train), NULL, &test, &err),
                     FEDL_OK);
    read_all(&test, x, y);
    assert_int_equal(y[0], 1);
    assert_true(x[0] == 2.0f && x[1] == -0.5f);
    fedl_dataset_free(&test);
    /* a label the training file does not have */
    assert_int_not_equal(fedl_csv_dataset_open(write_csv("u.csv", "label,a,b\nz,1,1\n"), NULL,
                                               &schema, fedl_csv_dataset_fit(&train), NULL, &test,
                                               &err),
                         FEDL_OK);
    assert_non_null(strstr(err.message, "u.csv:2:1: field 1 (label) \"z\""));
    assert_non_null(strstr(err.message, "a label the training data does not have"));
    fedl_dataset_free(&train);

    /* z-score: population mean 2, std 1 over {1, 3}; divide */
    schema.scaling = FEDL_CSV_SCALE_ZSCORE;
    open_ok("label,a\n0,1\n1,3\n", &schema, &train);
    read_all(&train, x, y);
    assert_true(x[0] == -1.0f && x[1] == 1.0f);
    fedl_dataset_free(&train);
    schema.scaling = FEDL_CSV_SCALE_DIVIDE;
    schema.divisor = 255.0f;
    open_ok("label,a\n0,255\n1,51\n", &schema, &train);
    read_all(&train, x, y);
    assert_true(x[0] == 255.0f * (1.0f / 255.0f) && x[1] == 51.0f * (1.0f / 255.0f));
    fedl_dataset_free(&train);
}

static void test_errors_name_what_is_wrong(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    (void)state;
    open_fails("label,a\n0,1\n1,x\n", &schema, "bad.csv:3:3: field 2 (a) \"x\": expected a number");
    open_fails("label,a\n0,1\n1,2,3\n", &schema, "bad.csv:3");
    schema.label = "kind";
    open_fails("label,a\n0,1\n", &schema, "kind");
    schema.label = "7";
    open_fails("label,a\n0,1\n", &schema, "column 7 does not exist");
    schema.label = NULL;
    schema.features = "a,a";
    open_fails("label,a\n0,1\n", &schema, "listed twice");
    schema.features = "label";
    open_fails("label,a\n0,1\n", &schema, "is the label");
    schema.features = NULL;
    schema.shape = (fedl_shape){1, 2, 2};
    open_fails("label,a,b\n0,1,2\n", &schema, "does not hold the 2 feature columns");
    schema.shape = (fedl_shape){0, 0, 0};
    open_fails("label,a\n", &schema, "no data rows");
    schema.scaling = FEDL_CSV_SCALE_DIVIDE;
    schema.divisor = 0.0f;
    open_fails("label,a\n0,1\n", &schema, "divisor");
}

static void test_no_header_and_the_identity(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_csv_options opts = fedl_csv_defaults();
    fedl_dataset a, b;
    fedl_error err = {0};
    float x[4];
    int32_t y[2];
    const char *path = write_csv("n.csv", "1,0.5\n0,1.5\n");
    (void)state;
    opts.has_header = 0;
    assert_int_equal(fedl_csv_dataset_open(path, &opts, &schema, NULL, NULL, &a, &err), FEDL_OK);
    assert_int_equal(a.count, 2);
    read_all(&a, x, y);
    assert_int_equal(y[0], 1);
    assert_true(x[1] == 1.5f);
    /* the same file and schema: the same identity; another column: another */
    assert_int_equal(fedl_csv_dataset_open(path, &opts, &schema, NULL, NULL, &b, &err), FEDL_OK);
    assert_memory_equal(a.source.identity, b.source.identity, FEDL_SHA256_BYTES);
    fedl_dataset_free(&b);
    schema.label = "1";
    schema.features = "0";
    assert_int_equal(fedl_csv_dataset_open(path, &opts, &schema, NULL, NULL, &b, &err), FEDL_OK);
    assert_memory_not_equal(a.source.identity, b.source.identity, FEDL_SHA256_BYTES);
    fedl_dataset_free(&b);
    fedl_dataset_free(&a);
}

/* Memory held is the index (16 bytes a row) plus a constant: 100 times
 * the rows add 16 bytes a row and nothing else. */
static void test_memory_is_the_index_plus_a_constant(void **state)
{
    size_t held[2];
    (void)state;
    for (int k = 0; k < 2; k++) {
        size_t rows = k == 0 ? 1024 : 102400, at = 0;
        size_t size = 40 + rows * 24;
        char *text = test_malloc(size);
        fedl_allocator alloc;
        fedl_dataset ds;
        fedl_error err = {0};
        at += (size_t)snprintf(text, size, "label,a,b,c\n");
        for (size_t i = 0; i < rows; i++)
            at += (size_t)snprintf(text + at, size - at, "%zu,%zu,%zu.5,-%zu\n", i % 10, i, i, i);
        fedl_allocator_init(&alloc, NULL, NULL);
        assert_int_equal(
            fedl_csv_dataset_open(write_csv("m.csv", text), NULL, NULL, NULL, &alloc, &ds, &err),
            FEDL_OK);
        assert_int_equal(ds.count, rows);
        held[k] = alloc.stats.live_bytes;
        /* the pass took no more than the index (grown by doubling, then
         * trimmed to its rows) and the buffers at its peak */
        assert_true(alloc.stats.peak_bytes < held[k] + rows * 16 + (160u << 10));
        assert_true(held[k] < rows * 16 + (160u << 10));
        fedl_dataset_free(&ds);
        assert_int_equal(alloc.stats.live_bytes, 0);
        test_free(text);
    }
    print_message("held: %zu bytes for 1,024 rows, %zu for 102,400\n", held[0], held[1]);
    assert_true(held[1] - held[0] == (102400 - 1024) * 16); /* the index, 16 bytes a row */
}

/* The samples of an in-memory data set as CSV text: a header (label, p0,
 * p1, ...), then one row per sample, the label first (free with test_free). */
static char *csv_of(const fedl_dataset *mem, const char *label)
{
    size_t size = 16 + mem->count * (4 + mem->sample_bytes * 4) + mem->sample_bytes * 8, at = 0;
    char *text = test_malloc(size);
    at += (size_t)snprintf(text, size, "%s", label);
    for (size_t k = 0; k < mem->sample_bytes; k++)
        at += (size_t)snprintf(text + at, size - at, ",p%zu", k);
    for (size_t i = 0; i < mem->count; i++) {
        at += (size_t)snprintf(text + at, size - at, "\n%d", mem->labels[i]);
        for (size_t k = 0; k < mem->sample_bytes; k++)
            at += (size_t)snprintf(text + at, size - at, ",%d",
                                   mem->pixels[i * mem->sample_bytes + k]);
    }
    return text;
}

/* LeNet-5 trained from a CSV copy of a quadrant data set gets the same
 * weights, bit for bit, as from the data in memory: same order, same
 * floats (x / 255 with the same float divisor). */
static void test_training_from_csv_equals_training_from_memory(void **state)
{
    fedl_dataset mem, csv;
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m[2];
    fedl_trainer *t[2];
    fedl_error err = {0};
    char *text;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&mem, 200, 5), 0);
    text = csv_of(&mem, "label");
    schema.scaling = FEDL_CSV_SCALE_DIVIDE;
    schema.divisor = 255.0f;
    schema.shape = mem.shape;
    assert_true(mem.scale == 1.0f / 255.0f && mem.shift == 0.0f);
    assert_int_equal(
        fedl_csv_dataset_open(write_csv("q.csv", text), NULL, &schema, NULL, NULL, &csv, &err),
        FEDL_OK);
    csv.classes = mem.classes;
    c.batch = 16;
    c.optim.momentum = 0.9f;
    for (int k = 0; k < 2; k++) {
        const fedl_dataset *ds = k == 0 ? &mem : &csv;
        assert_int_equal(fedl_model_create("conv2d(4,3,pad=1) relu flatten dense(4)", ds->shape, 1,
                                           NULL, &m[k], &err),
                         FEDL_OK);
        assert_int_equal(fedl_trainer_create(m[k], ds, &c, NULL, &t[k], &err), FEDL_OK);
        for (int step = 0; step < 30; step++) {
            int done;
            if (fedl_trainer_step(t[k], &done, &err) != FEDL_OK)
                fail_msg("step: %s", err.message);
        }
    }
    assert_memory_equal(fedl_model_params(m[0]), fedl_model_params(m[1]),
                        fedl_model_param_count(m[0]) * sizeof(float));
    for (int k = 0; k < 2; k++) {
        fedl_trainer_destroy(t[k]);
        fedl_model_destroy(m[k]);
    }
    fedl_dataset_free(&csv);
    fedl_dataset_free(&mem);
    test_free(text);
}

/* A prefetched batch reads the same as a synchronous one; a read of other
 * rows than the prefetched ones still gets the rows asked for. */
static void test_prefetch_gives_the_rows_asked_for(void **state)
{
    fedl_dataset ds;
    fedl_error err = {0};
    const uint32_t a[3] = {4, 1, 2}, b[2] = {0, 3};
    float x_sync[6], x_pre[6];
    int32_t y_sync[3], y_pre[3];
    (void)state;
    open_ok("label,a,b\n0,1,2\n1,3,4\n2,5,6\n3,7,8\n4,9,10\n", NULL, &ds);
    assert_int_equal(fedl_dataset_read(&ds, a, 3, x_sync, y_sync, &err), FEDL_OK);
    fedl_dataset_prefetch(&ds, a, 3);
    assert_int_equal(fedl_dataset_read(&ds, a, 3, x_pre, y_pre, &err), FEDL_OK);
    assert_memory_equal(x_sync, x_pre, sizeof x_sync);
    assert_memory_equal(y_sync, y_pre, sizeof y_sync);
    fedl_dataset_prefetch(&ds, a, 3); /* not what is read next */
    assert_int_equal(fedl_dataset_read(&ds, b, 2, x_pre, y_pre, &err), FEDL_OK);
    assert_int_equal(y_pre[0], 0);
    assert_int_equal(y_pre[1], 3);
    assert_true(x_pre[0] == 1.0f && x_pre[3] == 8.0f);
    fedl_dataset_prefetch(&ds, b, 2); /* left pending at free */
    fedl_dataset_free(&ds);
}

/* A fit stored as bytes (with a model) and decoded reads a later file the
 * way the training file was read, columns and shape included; damaged
 * bytes are refused with a reason. */
static void test_a_stored_fit_reads_later_files_alike(void **state)
{
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_dataset train, direct, stored;
    fedl_csv_fit *fit = NULL;
    fedl_error err = {0};
    uint8_t *bytes;
    size_t length;
    float x1[4], x2[4];
    int32_t y1[2], y2[2];
    const char *later = write_csv("later.csv", "a,kind,b,c\n9,dog,1,5\n3,cat,2,6\n");
    (void)state;
    schema.label = "kind";
    schema.features = "c,a";
    schema.scaling = FEDL_CSV_SCALE_ZSCORE;
    schema.shape = (fedl_shape){2, 1, 1};
    open_ok("a,kind,b,c\n1,cat,0,2\n3,dog,0,4\n5,emu,0,9\n", &schema, &train);
    assert_int_equal(fedl_csv_fit_encode(fedl_csv_dataset_fit(&train), NULL, &bytes, &length, &err),
                     FEDL_OK);
    assert_int_equal(fedl_csv_fit_decode(bytes, length, "m.fedl", NULL, &fit, &err), FEDL_OK);
    assert_int_equal(fedl_csv_fit_shape(fit).c, 2);
    /* the same file read with the training set's fit, and with the stored one (no schema) */
    assert_int_equal(fedl_csv_dataset_open(later, NULL, &schema, fedl_csv_dataset_fit(&train), NULL,
                                           &direct, &err),
                     FEDL_OK);
    assert_int_equal(fedl_csv_dataset_open(later, NULL, NULL, fit, NULL, &stored, &err), FEDL_OK);
    read_all(&direct, x1, y1);
    read_all(&stored, x2, y2);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(y1, y2, sizeof y1);
    assert_int_equal(y2[0], 1); /* dog */
    fedl_dataset_free(&direct);
    fedl_dataset_free(&stored);
    fedl_csv_fit_free(fit);
    fit = NULL;
    /* damage: a truncated fit, a wrong magic, label names out of order */
    assert_int_equal(fedl_csv_fit_decode(bytes, length - 1, "m.fedl", NULL, &fit, &err),
                     FEDL_ERR_FORMAT);
    bytes[0] ^= 1;
    assert_int_equal(fedl_csv_fit_decode(bytes, length, "m.fedl", NULL, &fit, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "m.fedl: not a CSV fit"));
    bytes[0] ^= 1;
    memcpy(bytes + length - 12, "dog", 3); /* "cat dog emu" -> "dog dog emu" */
    assert_int_equal(fedl_csv_fit_decode(bytes, length, "m.fedl", NULL, &fit, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "out of order"));
    assert_null(fit);
    fedl_mem_free(NULL, bytes, length);
    fedl_dataset_free(&train);
}

static void write_at(const char *path, const char *text)
{
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

/* Several files, or a directory of them, are one data set: rows of every
 * file, read from the right file; a file with other columns is named. */
static void test_a_directory_of_files_is_one_data_set(void **state)
{
    const char *dir = test_make_temp_dir("csvdir");
    char a[512], b[512], c[512];
    const char *both[2];
    fedl_dataset ds, one;
    fedl_error err = {0};
    uint32_t idx[4] = {3, 0, 2, 1};
    float x[4];
    int32_t y[4];
    (void)state;
    snprintf(a, sizeof a, "%s/day1.csv", dir);
    snprintf(b, sizeof b, "%s/day2.csv", dir);
    write_at(a, "label,t\n0,1.5\n1,2.5\n");
    write_at(b, "label,t\n2,3.5\n3,4.5\n");
    assert_int_equal(fedl_csv_dataset_open(dir, NULL, NULL, NULL, NULL, &ds, &err), FEDL_OK);
    assert_int_equal(ds.count, 4);
    assert_int_equal(ds.classes, 4);
    assert_int_equal(fedl_dataset_read(&ds, idx, 4, x, y, &err), FEDL_OK);
    assert_int_equal(y[0], 3);
    assert_true(x[0] == 4.5f && x[1] == 1.5f && x[2] == 3.5f && x[3] == 2.5f);
    /* the same two files named one by one: the same data set */
    both[0] = a;
    both[1] = b;
    assert_int_equal(fedl_csv_dataset_open_files(both, 2, NULL, NULL, NULL, NULL, &one, &err),
                     FEDL_OK);
    assert_memory_equal(ds.source.identity, one.source.identity, FEDL_SHA256_BYTES);
    fedl_dataset_free(&one);
    fedl_dataset_free(&ds);
    /* a file whose columns differ */
    snprintf(c, sizeof c, "%s/day3.csv", dir);
    write_at(c, "label,temp\n2,3.5\n");
    assert_int_equal(fedl_csv_dataset_open(dir, NULL, NULL, NULL, NULL, &ds, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "day3.csv: its columns (2) or their names differ"));
}

/* The trainer's state through a checkpoint's bytes and back, as a killed
 * run's successor would read it. */
static fedl_checkpoint *checkpoint_of(fedl_trainer *t, fedl_model *m)
{
    fedl_train_state st;
    fedl_container_writer *w;
    fedl_checkpoint *ckpt;
    fedl_error err = {0};
    uint8_t *bytes;
    size_t length;
    fedl_trainer_state(t, NULL, 0, &st);
    assert_int_equal(fedl_checkpoint_writer(m, &st, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err), FEDL_OK);
    fedl_container_writer_destroy(w);
    assert_int_equal(fedl_checkpoint_decode(bytes, length, "mid", NULL, &ckpt, &err), FEDL_OK);
    fedl_mem_free(NULL, bytes, length);
    return ckpt;
}

/* A run from CSV checkpointed mid-epoch and resumed in a new trainer (and
 * a newly opened data set) continues at the same row: the weights equal
 * those of a run never interrupted. */
static void test_a_csv_run_resumes_at_the_same_row(void **state)
{
    fedl_dataset mem, csv[2];
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m[2];
    fedl_trainer *t[2];
    fedl_error err = {0};
    fedl_checkpoint *ckpt;
    char *text;
    const char *path;
    int done;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&mem, 90, 6), 0);
    text = csv_of(&mem, "y");
    path = write_csv("r.csv", text);
    c.batch = 8; /* 12 steps an epoch, the last one short */
    c.optim = fedl_optim_defaults(FEDL_OPTIM_ADAM);
    c.lr.base_lr = 0.01f;
    for (int k = 0; k < 2; k++) {
        fedl_csv_schema schema = fedl_csv_schema_defaults();
        schema.label = "y";
        schema.scaling = FEDL_CSV_SCALE_MINMAX;
        assert_int_equal(fedl_csv_dataset_open(path, NULL, &schema, NULL, NULL, &csv[k], &err),
                         FEDL_OK);
        assert_int_equal(fedl_model_create("flatten dense(4)", csv[k].shape, 3, NULL, &m[k], &err),
                         FEDL_OK);
        assert_int_equal(fedl_trainer_create(m[k], &csv[k], &c, NULL, &t[k], &err), FEDL_OK);
    }
    for (int step = 0; step < 30; step++) { /* the straight run */
        assert_int_equal(fedl_trainer_step(t[0], &done, &err), FEDL_OK);
        if (step < 17) /* the other stops mid-epoch 2 */
            assert_int_equal(fedl_trainer_step(t[1], &done, &err), FEDL_OK);
    }
    ckpt = checkpoint_of(t[1], m[1]);
    fedl_trainer_destroy(t[1]);
    fedl_model_destroy(m[1]);
    fedl_dataset_free(&csv[1]);
    /* a new process, as it were: the file opened again, a new model and trainer */
    {
        fedl_csv_schema schema = fedl_csv_schema_defaults();
        schema.label = "y";
        schema.scaling = FEDL_CSV_SCALE_MINMAX;
        assert_int_equal(fedl_csv_dataset_open(path, NULL, &schema, NULL, NULL, &csv[1], &err),
                         FEDL_OK);
    }
    assert_int_equal(fedl_model_create("flatten dense(4)", csv[1].shape, 3, NULL, &m[1], &err),
                     FEDL_OK);
    assert_int_equal(fedl_trainer_create(m[1], &csv[1], &c, NULL, &t[1], &err), FEDL_OK);
    if (fedl_trainer_restore(t[1], ckpt, &err) != FEDL_OK)
        fail_msg("restore: %s", err.message);
    assert_int_equal(fedl_trainer_stats(t[1]).position, 5 * 8); /* step 5 of epoch 2 */
    for (int step = 17; step < 30; step++)
        assert_int_equal(fedl_trainer_step(t[1], &done, &err), FEDL_OK);
    assert_memory_equal(fedl_model_params(m[0]), fedl_model_params(m[1]),
                        fedl_model_param_count(m[0]) * sizeof(float));
    fedl_checkpoint_free(ckpt);
    for (int k = 0; k < 2; k++) {
        fedl_trainer_destroy(t[k]);
        fedl_model_destroy(m[k]);
        fedl_dataset_free(&csv[k]);
    }
    fedl_dataset_free(&mem);
    test_free(text);
}

/* Rows i = 0..n-1 with the feature i and label i % 3, gzipped to path. */
static void write_gz_rows(const char *path, int n)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    gzprintf(gz, "label,id\n");
    for (int i = 0; i < n; i++)
        gzprintf(gz, "%d,%d\n", i % 3, i);
    assert_int_equal(gzclose(gz), Z_OK);
}

/* One epoch of a stream: the ids in the order emitted. */
static void stream_epoch(const fedl_dataset *ds, uint64_t epoch, int *ids)
{
    fedl_error err = {0};
    uint32_t idx[40];
    float x[40];
    int32_t y[40];
    for (size_t i = 0; i < ds->count; i++)
        idx[i] = (uint32_t)i; /* a stream reads in its own order, whatever is asked */
    fedl_dataset_seek(ds, epoch, 0);
    if (fedl_dataset_read(ds, idx, ds->count, x, y, &err) != FEDL_OK)
        fail_msg("stream: %s", err.message);
    for (size_t i = 0; i < ds->count; i++) {
        ids[i] = (int)x[i];
        assert_int_equal(y[i], ids[i] % 3);
    }
}

/* A gzip CSV as a stream through a shuffle buffer: each epoch emits every
 * row once, in an order that is a function of (seed, epoch); a seek
 * reproduces the rest of an epoch; a buffer of 1 keeps the file's order;
 * memory is the buffer, not the rows. */
static void test_a_stream_shuffles_in_bounded_memory(void **state)
{
    const char *dir = test_make_temp_dir("csvstream");
    char path[512];
    fedl_dataset a, b, plain;
    fedl_error err = {0};
    int e0[40], e1[40], again[40], seen[40];
    (void)state;
    snprintf(path, sizeof path, "%s/rows.csv.gz", dir);
    write_gz_rows(path, 40);
    assert_int_equal(fedl_csv_stream_open(path, NULL, NULL, NULL, 8, 7, NULL, &a, &err), FEDL_OK);
    assert_int_equal(a.count, 40);
    assert_true(fedl_dataset_held_bytes(&a) < (96u << 10)); /* no index: the buffer and a reader */
    stream_epoch(&a, 0, e0);
    stream_epoch(&a, 1, e1);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 40; i++)
        seen[e0[i]]++;
    for (int i = 0; i < 40; i++)
        assert_int_equal(seen[i], 1);
    assert_memory_not_equal(e0, e1, sizeof e0);
    /* the same seed: the same order; epoch 0 again after epoch 1 */
    assert_int_equal(fedl_csv_stream_open(path, NULL, NULL, NULL, 8, 7, NULL, &b, &err), FEDL_OK);
    stream_epoch(&b, 1, again);
    assert_memory_equal(e1, again, sizeof e1);
    stream_epoch(&b, 0, again);
    assert_memory_equal(e0, again, sizeof e0);
    /* a seek to the middle of epoch 1 continues with the same samples */
    {
        uint32_t idx[30] = {0};
        float x[30];
        fedl_dataset_seek(&b, 1, 10);
        assert_int_equal(fedl_dataset_read(&b, idx, 30, x, NULL, &err), FEDL_OK);
        for (int i = 0; i < 30; i++)
            assert_int_equal((int)x[i], e1[10 + i]);
    }
    fedl_dataset_free(&b);
    fedl_dataset_free(&a);
    /* a buffer of one row: the file's order */
    assert_int_equal(fedl_csv_stream_open(path, NULL, NULL, NULL, 1, 7, NULL, &plain, &err),
                     FEDL_OK);
    stream_epoch(&plain, 3, again);
    for (int i = 0; i < 40; i++)
        assert_int_equal(again[i], i);
    fedl_dataset_free(&plain);
    /* no buffer is refused; gzip cannot seek, so it cannot be indexed */
    assert_int_equal(fedl_csv_stream_open(path, NULL, NULL, NULL, 0, 7, NULL, &plain, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_dataset_open(path, NULL, NULL, NULL, NULL, &plain, &err),
                     FEDL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "gzip"));
}

/* Training from a stream is deterministic and resumes mid-epoch: a run
 * checkpointed at step 7 and resumed over the reopened stream ends with
 * the weights of a run never interrupted. */
static void test_a_stream_run_resumes_at_the_same_sample(void **state)
{
    const char *dir = test_make_temp_dir("csvstream2");
    char path[512];
    fedl_dataset mem, ds[2];
    fedl_train_config c = fedl_train_config_defaults();
    fedl_model *m[2];
    fedl_trainer *t[2];
    fedl_error err = {0};
    fedl_checkpoint *ckpt;
    char *text;
    int done;
    gzFile gz;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&mem, 60, 8), 0);
    text = csv_of(&mem, "label");
    snprintf(path, sizeof path, "%s/q.csv.gz", dir);
    gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(gz), Z_OK);
    c.batch = 8;
    c.optim.momentum = 0.9f;
    c.lr.base_lr = 0.05f;
    for (int k = 0; k < 2; k++) {
        fedl_csv_schema schema = fedl_csv_schema_defaults();
        schema.scaling = FEDL_CSV_SCALE_DIVIDE;
        schema.divisor = 255.0f;
        assert_int_equal(
            fedl_csv_stream_open(path, NULL, &schema, NULL, 16, c.seed, NULL, &ds[k], &err),
            FEDL_OK);
        assert_int_equal(fedl_model_create("flatten dense(4)", ds[k].shape, 3, NULL, &m[k], &err),
                         FEDL_OK);
        assert_int_equal(fedl_trainer_create(m[k], &ds[k], &c, NULL, &t[k], &err), FEDL_OK);
    }
    for (int step = 0; step < 20; step++) {
        assert_int_equal(fedl_trainer_step(t[0], &done, &err), FEDL_OK);
        if (step < 11) /* 8 steps an epoch: the other stops in epoch 2 */
            assert_int_equal(fedl_trainer_step(t[1], &done, &err), FEDL_OK);
    }
    ckpt = checkpoint_of(t[1], m[1]);
    fedl_trainer_destroy(t[1]);
    fedl_model_destroy(m[1]);
    fedl_dataset_free(&ds[1]);
    {
        fedl_csv_schema schema = fedl_csv_schema_defaults();
        schema.scaling = FEDL_CSV_SCALE_DIVIDE;
        schema.divisor = 255.0f;
        assert_int_equal(
            fedl_csv_stream_open(path, NULL, &schema, NULL, 16, c.seed, NULL, &ds[1], &err),
            FEDL_OK);
    }
    assert_int_equal(fedl_model_create("flatten dense(4)", ds[1].shape, 3, NULL, &m[1], &err),
                     FEDL_OK);
    assert_int_equal(fedl_trainer_create(m[1], &ds[1], &c, NULL, &t[1], &err), FEDL_OK);
    if (fedl_trainer_restore(t[1], ckpt, &err) != FEDL_OK)
        fail_msg("restore: %s", err.message);
    for (int step = 11; step < 20; step++)
        assert_int_equal(fedl_trainer_step(t[1], &done, &err), FEDL_OK);
    assert_memory_equal(fedl_model_params(m[0]), fedl_model_params(m[1]),
                        fedl_model_param_count(m[0]) * sizeof(float));
    fedl_checkpoint_free(ckpt);
    for (int k = 0; k < 2; k++) {
        fedl_trainer_destroy(t[k]);
        fedl_model_destroy(m[k]);
        fedl_dataset_free(&ds[k]);
    }
    fedl_dataset_free(&mem);
    test_free(text);
}

/* A regression data set: the label column is a numeric target; a linear
 * model trained on it with the squared error finds the line, evaluation
 * reports RMSE and MAE, and the stored fit reads a later file alike. */
static void test_regression_targets_train_a_line(void **state)
{
    char *text = test_malloc(64 * 200);
    size_t at = 0;
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_train_config c = fedl_train_config_defaults();
    fedl_dataset train, again;
    fedl_model *m;
    fedl_trainer *t;
    fedl_eval_result r, r2;
    fedl_error err = {0};
    fedl_csv_fit *stored = NULL;
    uint8_t *bytes;
    size_t length;
    uint32_t idx[2] = {0, 1};
    float x[4], y[2];
    fedl_rng rng;
    const char *path;
    (void)state;
    fedl_rng_init(&rng, 11, 0);
    at += (size_t)snprintf(text, 64, "a,b,y\n");
    for (int i = 0; i < 200; i++) {
        int a = (int)fedl_rng_below(&rng, 200) - 100, b = (int)fedl_rng_below(&rng, 200) - 100;
        at += (size_t)snprintf(text + at, 64, "%d,%d,%.4f\n", a, b, 0.02 * a - 0.01 * b + 0.5);
    }
    path = write_csv("line.csv", text);
    schema.label = "y";
    schema.regression = 1;
    assert_int_equal(fedl_csv_dataset_open(path, NULL, &schema, NULL, NULL, &train, &err), FEDL_OK);
    assert_int_equal(train.targets, 1);
    assert_int_equal(train.classes, 0);
    assert_int_equal(fedl_dataset_read_targets(&train, idx, 2, x, y, &err), FEDL_OK);
    assert_true(fabsf(y[0] - (0.02f * x[0] - 0.01f * x[1] + 0.5f)) < 1e-4f);
    /* class labels asked of a regression data set are refused by the trainer */
    assert_int_equal(fedl_model_create("dense(1)", train.shape, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &train, &c, NULL, &t, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "cross-entropy loss needs class-labelled data"));
    c.loss = FEDL_LOSS_MSE;
    c.batch = 20;
    c.optim.momentum = 0.9f;
    c.lr.base_lr = 1e-4f;
    assert_int_equal(fedl_trainer_create(m, &train, &c, NULL, &t, &err), FEDL_OK);
    for (int step = 0; step < 3000; step++) {
        int done;
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    }
    assert_int_equal(fedl_trainer_evaluate(t, &train, &r, NULL, &err), FEDL_OK);
    print_message("regression: weights %.4f %.4f bias %.4f; RMSE %.5f MAE %.5f\n",
                  (double)fedl_model_params(m)[0], (double)fedl_model_params(m)[1],
                  (double)fedl_model_params(m)[2], r.rmse, r.mae);
    assert_true(fabsf(fedl_model_params(m)[0] - 0.02f) < 0.002f);
    assert_true(fabsf(fedl_model_params(m)[1] + 0.01f) < 0.002f);
    assert_true(r.rmse < 0.1 && r.mae <= r.rmse && r.accuracy == 0.0);
    /* the stored fit: a regression fit reads the file alike */
    assert_int_equal(fedl_csv_fit_encode(fedl_csv_dataset_fit(&train), NULL, &bytes, &length, &err),
                     FEDL_OK);
    assert_int_equal(fedl_csv_fit_decode(bytes, length, "m", NULL, &stored, &err), FEDL_OK);
    assert_int_equal(fedl_csv_dataset_open(path, NULL, NULL, stored, NULL, &again, &err), FEDL_OK);
    assert_int_equal(again.targets, 1);
    assert_int_equal(fedl_evaluate(m, &again, 64, NULL, &r2, NULL, &err), FEDL_OK);
    assert_true(fabs(r2.rmse - r.rmse) < 1e-6);
    fedl_mem_free(NULL, bytes, length);
    fedl_csv_fit_free(stored);
    fedl_dataset_free(&again);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&train);
    test_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_labels_sorted_and_all_features),
        cmocka_unit_test(test_integer_labels_keep_their_value_and_columns_by_range),
        cmocka_unit_test(test_missing_values_by_policy),
        cmocka_unit_test(test_scaling_from_the_training_file_applies_to_the_test_file),
        cmocka_unit_test(test_errors_name_what_is_wrong),
        cmocka_unit_test(test_no_header_and_the_identity),
        cmocka_unit_test(test_memory_is_the_index_plus_a_constant),
        cmocka_unit_test(test_training_from_csv_equals_training_from_memory),
        cmocka_unit_test(test_prefetch_gives_the_rows_asked_for),
        cmocka_unit_test(test_a_stored_fit_reads_later_files_alike),
        cmocka_unit_test(test_a_directory_of_files_is_one_data_set),
        cmocka_unit_test(test_a_csv_run_resumes_at_the_same_row),
        cmocka_unit_test(test_a_stream_shuffles_in_bounded_memory),
        cmocka_unit_test(test_a_stream_run_resumes_at_the_same_sample),
        cmocka_unit_test(test_regression_targets_train_a_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
