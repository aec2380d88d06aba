/* test_dataset.c - datasets from IDX pairs and MNIST directories, gather,
 * truncation, the deterministic shuffle and the batcher, and the real
 * Fashion-MNIST files when they are installed. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "fedl/data.h"
#include "support/test_support.h"

static char temp_dir[256];

static int make_temp_dir(void **state)
{
    const char *dir = test_make_temp_dir("dataset");
    (void)state;
    if (dir == NULL)
        return -1;
    snprintf(temp_dir, sizeof temp_dir, "%s", dir);
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *entry;
    char path[512];
    if (d == NULL)
        return;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (unlink(path) != 0)
            remove_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

static int remove_temp_dir(void **state)
{
    (void)state;
    remove_tree(temp_dir);
    return 0;
}

static const char *temp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", temp_dir, name);
    return path;
}

/* The pixel value of byte k of sample i in the generated files. */
static uint8_t pixel_value(size_t i, size_t k)
{
    return (uint8_t)((i * 31 + k * 7) & 0xff);
}

/* Write an IDX file (gzipped when gzip) of ndim dims; payload from
 * pixel_value (images) or label_of (ndim 1). */
static void write_idx(const char *path, int gzip, int ndim, const uint32_t *dims,
                      const uint8_t *labels)
{
    size_t payload = 1, at = 0;
    uint8_t *bytes;
    for (int i = 0; i < ndim; i++)
        payload *= dims[i];
    bytes = malloc(4 + 4 * (size_t)ndim + payload);
    assert_non_null(bytes);
    bytes[at++] = 0;
    bytes[at++] = 0;
    bytes[at++] = 0x08;
    bytes[at++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        bytes[at++] = (uint8_t)(dims[i] >> 24);
        bytes[at++] = (uint8_t)(dims[i] >> 16);
        bytes[at++] = (uint8_t)(dims[i] >> 8);
        bytes[at++] = (uint8_t)dims[i];
    }
    if (labels != NULL) {
        memcpy(bytes + at, labels, payload);
    } else {
        size_t sample = payload / dims[0];
        for (size_t i = 0; i < dims[0]; i++)
            for (size_t k = 0; k < sample; k++)
                bytes[at + i * sample + k] = pixel_value(i, k);
    }
    at += payload;
    if (gzip) {
        gzFile gz = gzopen(path, "wb6");
        assert_non_null(gz);
        assert_int_equal(gzwrite(gz, bytes, (unsigned)at), (int)at);
        assert_int_equal(gzclose(gz), Z_OK);
    } else {
        assert_int_equal(test_write_file(path, bytes, at), 0);
    }
    free(bytes);
}

static const uint8_t small_labels[6] = {3, 0, 7, 1, 3, 2};

/* images (6, 4, 5) and labels (6) */
static void write_small_pair(const char *images, const char *labels, int gzip)
{
    uint32_t image_dims[3] = {6, 4, 5};
    uint32_t label_dims[1] = {6};
    write_idx(images, gzip, 3, image_dims, NULL);
    write_idx(labels, gzip, 1, label_dims, small_labels);
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

static void assert_dataset_zeroed(const fedl_dataset *ds)
{
    static const fedl_dataset zero;
    assert_memory_equal(ds, &zero, sizeof zero);
}

/* ------------------------------------------------------------------ loading */

static void test_dataset_3d_images_get_one_channel(void **state)
{
    const char *images = temp_path("a-images"), *labels = temp_path("a-labels");
    fedl_allocator a;
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    write_small_pair(images, labels, 0);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_dataset_load_idx(images, labels, &a, &ds, &err), FEDL_OK);
    assert_int_equal(ds.count, 6);
    assert_int_equal(ds.shape.c, 1);
    assert_int_equal(ds.shape.h, 4);
    assert_int_equal(ds.shape.w, 5);
    assert_int_equal(ds.sample_bytes, 20);
    assert_int_equal(ds.classes, 8);
    assert_ptr_equal(ds.alloc, &a);
    assert_memory_equal(ds.labels, small_labels, 6);
    assert_int_equal(ds.pixels[3 * 20 + 2], pixel_value(3, 2));
    /* pixels and labels, no copies */
    assert_int_equal(a.stats.live_bytes, 6 * 20 + 6);
    fedl_dataset_free(&ds);
    assert_dataset_zeroed(&ds);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_dataset_4d_images_keep_channels(void **state)
{
    const char *images = temp_path("b-images.gz"), *labels = temp_path("b-labels.gz");
    uint32_t image_dims[4] = {6, 3, 2, 4};
    uint32_t label_dims[1] = {6};
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    write_idx(images, 1, 4, image_dims, NULL);
    write_idx(labels, 1, 1, label_dims, small_labels);
    assert_int_equal(fedl_dataset_load_idx(images, labels, NULL, &ds, &err), FEDL_OK);
    assert_int_equal(ds.shape.c, 3);
    assert_int_equal(ds.shape.h, 2);
    assert_int_equal(ds.shape.w, 4);
    assert_int_equal(ds.sample_bytes, 24);
    assert_int_equal(ds.pixels[5 * 24 + 23], pixel_value(5, 23));
    fedl_dataset_free(&ds);
}

static void test_dataset_rejects_count_mismatch_naming_both_files(void **state)
{
    const char *images = temp_path("c-images"), *labels = temp_path("c-labels");
    uint32_t image_dims[3] = {6, 4, 5};
    uint32_t label_dims[1] = {5};
    fedl_allocator a;
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    write_idx(images, 0, 3, image_dims, NULL);
    write_idx(labels, 0, 1, label_dims, small_labels);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_dataset_load_idx(images, labels, &a, &ds, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, images);
    assert_contains(err.message, labels);
    assert_contains(err.message, "has 6 images");
    assert_contains(err.message, "has 5 labels");
    assert_dataset_zeroed(&ds);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_dataset_rejects_wrong_ranks(void **state)
{
    const char *flat = temp_path("d-flat"), *labels = temp_path("d-labels");
    const char *labels2d = temp_path("d-labels2d"), *images = temp_path("d-images");
    uint32_t flat_dims[2] = {6, 20};
    uint32_t label_dims[1] = {6};
    uint32_t label2d_dims[2] = {6, 1};
    fedl_allocator a;
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    write_idx(flat, 0, 2, flat_dims, NULL);
    write_idx(labels, 0, 1, label_dims, small_labels);
    write_idx(labels2d, 0, 2, label2d_dims, small_labels);
    write_idx(images, 0, 3, (const uint32_t[]){6, 4, 5}, NULL);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_dataset_load_idx(flat, labels, &a, &ds, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, flat);
    assert_contains(err.message, "images must have 3 dimensions");
    assert_contains(err.message, "6 x 20");
    assert_int_equal(fedl_dataset_load_idx(images, labels2d, &a, &ds, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, labels2d);
    assert_contains(err.message, "labels must have 1 dimension");
    assert_dataset_zeroed(&ds);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_dataset_reports_bad_file_by_name(void **state)
{
    const char *labels = temp_path("e-labels");
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    write_idx(labels, 0, 1, (const uint32_t[]){6}, small_labels);
    assert_int_equal(fedl_dataset_load_idx(temp_path("e-missing"), labels, NULL, &ds, &err),
                     FEDL_ERR_IO);
    assert_contains(err.message, "e-missing");
    assert_dataset_zeroed(&ds);
}

static void test_dataset_gather_scales_pixels_to_unit_range(void **state)
{
    const char *images = temp_path("f-images"), *labels = temp_path("f-labels");
    uint32_t indices[3] = {5, 0, 3};
    float x[3 * 20]; /* (3, 1, 4, 5) */
    int32_t y[3];    /* (3) */
    fedl_dataset ds;
    (void)state;
    write_small_pair(images, labels, 0);
    assert_int_equal(fedl_dataset_load_idx(images, labels, NULL, &ds, NULL), FEDL_OK);
    assert_true(ds.scale == 1.0f / 255.0f);
    assert_true(ds.shift == 0.0f);
    fedl_dataset_gather(&ds, indices, 3, x, y);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(y[i], small_labels[indices[i]]);
        for (size_t k = 0; k < 20; k++) {
            float expected = (float)pixel_value(indices[i], k) * (1.0f / 255.0f);
            assert_true(x[i * 20 + k] == expected);
            assert_true(x[i * 20 + k] >= 0.0f && x[i * 20 + k] <= 1.0f);
        }
    }
    /* An out-of-range index is a caller bug: zeros and label -1, no read. */
    indices[0] = 6;
    fedl_dataset_gather(&ds, indices, 1, x, y);
    assert_int_equal(y[0], -1);
    assert_true(x[0] == 0.0f && x[19] == 0.0f);
    /* Outputs may be skipped. */
    fedl_dataset_gather(&ds, indices + 1, 2, NULL, y);
    assert_int_equal(y[1], small_labels[3]);
    fedl_dataset_free(&ds);
}

/* An allocator hook that allocates and frees but refuses every resize. */
static void *refuse_resize(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return ptr == NULL ? malloc(new_size) : NULL;
}

static void test_dataset_truncate_keeps_first_samples_and_frees_everything(void **state)
{
    const char *images = temp_path("g-images"), *labels = temp_path("g-labels");
    fedl_allocator a;
    fedl_dataset ds;
    uint32_t index = 3;
    int32_t y;
    (void)state;
    write_small_pair(images, labels, 0);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_dataset_load_idx(images, labels, &a, &ds, NULL), FEDL_OK);
    fedl_dataset_truncate(&ds, 10); /* more than there is: nothing happens */
    assert_int_equal(ds.count, 6);
    fedl_dataset_truncate(&ds, 3);
    assert_int_equal(ds.count, 3);
    assert_int_equal(ds.classes, 8);                  /* the label space stays */
    assert_int_equal(a.stats.live_bytes, 3 * 20 + 3); /* the rest is given back */
    fedl_dataset_gather(&ds, &index, 1, NULL, &y);
    assert_int_equal(y, -1);
    index = 2;
    fedl_dataset_gather(&ds, &index, 1, NULL, &y);
    assert_int_equal(y, 7);
    fedl_dataset_free(&ds);
    assert_int_equal(a.stats.live_bytes, 0);
    /* a shrink the allocator refuses keeps the buffers until free */
    {
        fedl_allocator_init(&a, refuse_resize, NULL);
        assert_int_equal(fedl_dataset_load_idx(images, labels, &a, &ds, NULL), FEDL_OK);
        fedl_dataset_truncate(&ds, 2);
        assert_int_equal(ds.count, 2);
        assert_int_equal(a.stats.live_bytes, 6 * 20 + 6);
        fedl_dataset_free(&ds);
        assert_int_equal(a.stats.live_bytes, 0);
    }
    assert_int_equal(a.stats.allocs, a.stats.frees);
}

static void test_dataset_load_mnist_dir_prefers_gz_then_plain(void **state)
{
    char dir[512];
    char path[600];
    fedl_dataset ds;
    fedl_error err;
    uint32_t image_dims[3] = {4, 2, 2};
    uint32_t label_dims[1] = {4};
    static const uint8_t train_labels[4] = {1, 2, 3, 4};
    static const uint8_t test_labels[6] = {9, 9, 9, 9, 9, 9};
    (void)state;
    snprintf(dir, sizeof dir, "%s", temp_path("mnist"));
    assert_int_equal(mkdir(dir, 0700), 0);
    /* train: gzipped images, plain labels; test: plain images and labels */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 1, 3, image_dims, NULL);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_idx(path, 0, 1, label_dims, train_labels);
    /* A plain train-images file that would fail (count 5): .gz must win. */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0, 3, (const uint32_t[]){5, 2, 2}, NULL);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    write_idx(path, 0, 3, (const uint32_t[]){6, 3, 3}, NULL);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    write_idx(path, 1, 1, (const uint32_t[]){6}, test_labels);

    assert_int_equal(fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, NULL, &ds, &err), FEDL_OK);
    assert_int_equal(ds.count, 4);
    assert_int_equal(ds.classes, 5);
    assert_memory_equal(ds.labels, train_labels, 4);
    fedl_dataset_free(&ds);

    snprintf(path, sizeof path, "%s/", dir); /* a trailing slash is fine */
    assert_int_equal(fedl_dataset_load_mnist_dir(path, FEDL_SPLIT_TEST, NULL, &ds, &err), FEDL_OK);
    assert_int_equal(ds.count, 6);
    assert_int_equal(ds.shape.h, 3);
    assert_int_equal(ds.classes, 10);
    fedl_dataset_free(&ds);
}

static void test_dataset_load_mnist_dir_reports_missing_files(void **state)
{
    char dir[512];
    fedl_allocator a;
    fedl_dataset ds;
    fedl_error err;
    (void)state;
    snprintf(dir, sizeof dir, "%s", temp_path("empty"));
    assert_int_equal(mkdir(dir, 0700), 0);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, &a, &ds, &err),
                     FEDL_ERR_IO);
    assert_contains(err.message, dir);
    assert_contains(err.message, "train-images-idx3-ubyte.gz");
    assert_dataset_zeroed(&ds);
    assert_int_equal(a.stats.live_bytes, 0);
    assert_int_equal(fedl_dataset_load_mnist_dir(dir, (fedl_split)7, &a, &ds, &err),
                     FEDL_ERR_INVALID_ARG);
}

static void test_dataset_fails_cleanly_on_every_allocation_failure(void **state)
{
    char dir[512];
    char path[600];
    (void)state;
    snprintf(dir, sizeof dir, "%s", temp_path("oom"));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 1, 3, (const uint32_t[]){6, 4, 5}, NULL);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_idx(path, 0, 1, (const uint32_t[]){6}, small_labels);
    for (uint64_t fail_at = 1;; fail_at++) {
        test_failing_alloc failing = {0, fail_at};
        fedl_allocator a;
        fedl_dataset ds;
        fedl_batcher b;
        fedl_error err;
        fedl_status status;
        fedl_allocator_init(&a, test_failing_alloc_fn, &failing);
        status = fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, &a, &ds, &err);
        if (status == FEDL_OK)
            status = fedl_batcher_init(&b, &ds, 1, 1, &a, &err);
        else
            assert_dataset_zeroed(&ds);
        if (status == FEDL_OK) {
            float x[20];
            int32_t y;
            assert_int_equal(fedl_batcher_next(&b, 1, x, &y), 1);
            fedl_batcher_free(&b);
            fedl_dataset_free(&ds);
            assert_int_equal(a.stats.live_bytes, 0);
            assert_true(fail_at > 6);
            break;
        }
        assert_int_equal(status, FEDL_ERR_NOMEM);
        if (ds.pixels != NULL) /* the batcher failed: the dataset is intact */
            fedl_dataset_free(&ds);
        assert_int_equal(a.stats.live_bytes, 0);
        assert_int_equal(a.stats.allocs, a.stats.frees);
        assert_true(fail_at < 100);
    }
}

/* ------------------------------------------------------------------ shuffle */

static void test_shuffle_is_a_permutation_and_deterministic(void **state)
{
    enum { N = 1000 };
    static uint32_t first[N], second[N];
    static unsigned char seen[N];
    size_t fixed = 0;
    (void)state;
    fedl_shuffle_order(42, 3, first, N);
    fedl_shuffle_order(42, 3, second, N);
    assert_memory_equal(first, second, sizeof first);
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < N; i++) {
        assert_true(first[i] < N);
        assert_int_equal(seen[first[i]], 0);
        seen[first[i]] = 1;
        fixed += first[i] == i;
    }
    assert_true(fixed < 20); /* about 1 expected; identity would be 1000 */
}

static void test_shuffle_matches_reference_values(void **state)
{
    /* From an independent Python implementation of Philox4x32-10, Lemire's
     * bounded integers and Fisher-Yates from the back: the permutation must be
     * the same on every platform, compiler and word size. */
    static const uint32_t seed42_epoch0[10] = {0, 5, 6, 7, 4, 8, 1, 2, 3, 9};
    static const uint32_t seed42_epoch1[10] = {9, 6, 2, 0, 7, 8, 5, 1, 3, 4};
    static const uint32_t big_seed_epoch7[16] = {13, 8, 15, 14, 11, 4, 12, 6,
                                                 9,  5, 2,  3,  1,  7, 10, 0};
    static const uint32_t wrapped_stream[5] = {1, 3, 0, 2, 4};
    uint32_t order[16];
    (void)state;
    fedl_shuffle_order(42, 0, order, 10);
    assert_memory_equal(order, seed42_epoch0, sizeof seed42_epoch0);
    fedl_shuffle_order(42, 1, order, 10);
    assert_memory_equal(order, seed42_epoch1, sizeof seed42_epoch1);
    fedl_shuffle_order(0xDEADBEEFCAFEF00DULL, 7, order, 16);
    assert_memory_equal(order, big_seed_epoch7, sizeof big_seed_epoch7);
    /* 0x5348554646 + epoch wraps modulo 2^64 to stream 2. */
    fedl_shuffle_order(1, UINT64_MAX - 0x5348554646ULL + 3, order, 5);
    assert_memory_equal(order, wrapped_stream, sizeof wrapped_stream);
}

static void test_shuffle_differs_between_epochs_and_seeds(void **state)
{
    enum { N = 100 };
    uint32_t a[N], b[N], c[N];
    (void)state;
    fedl_shuffle_order(7, 0, a, N);
    fedl_shuffle_order(7, 1, b, N);
    fedl_shuffle_order(8, 0, c, N);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* n of 0 and 1 are trivial and must not crash */
    fedl_shuffle_order(7, 0, a, 0);
    fedl_shuffle_order(7, 0, a, 1);
    assert_int_equal(a[0], 0);
}

/* ------------------------------------------------------------------ batcher */

/* A hand-built dataset of count 1x1x1 samples whose pixel and label are both
 * the sample index (mod 256). Freed with fedl_dataset_free. */
static void make_index_dataset(fedl_dataset *ds, fedl_allocator *a, size_t count)
{
    memset(ds, 0, sizeof *ds);
    ds->alloc = a;
    ds->count = count;
    ds->shape.c = ds->shape.h = ds->shape.w = 1;
    ds->sample_bytes = 1;
    ds->pixels = fedl_mem_alloc(a, count);
    ds->labels = fedl_mem_alloc(a, count);
    assert_non_null(ds->pixels);
    assert_non_null(ds->labels);
    for (size_t i = 0; i < count; i++)
        ds->pixels[i] = ds->labels[i] = (uint8_t)i;
    ds->classes = count < 256 ? (int)count : 256;
    ds->scale = 1.0f;
    ds->shift = 0.0f;
}

static void test_batcher_without_shuffle_visits_in_order(void **state)
{
    fedl_dataset ds;
    fedl_batcher b;
    float x[4];
    int32_t y[4];
    int32_t next = 0;
    size_t n;
    (void)state;
    make_index_dataset(&ds, NULL, 10);
    assert_int_equal(fedl_batcher_init(&b, &ds, 99, 0, NULL, NULL), FEDL_OK);
    while ((n = fedl_batcher_next(&b, 4, x, y)) > 0) {
        for (size_t i = 0; i < n; i++, next++) {
            assert_int_equal(y[i], next);
            assert_true(x[i] == (float)next);
        }
    }
    assert_int_equal(next, 10);
    fedl_batcher_seek(&b, 1, 0);
    assert_int_equal(fedl_batcher_next(&b, 4, x, y), 4);
    assert_int_equal(y[0], 0);
    assert_int_equal(y[3], 3);
    fedl_batcher_free(&b);
    fedl_dataset_free(&ds);
}

static void test_batcher_visits_every_sample_once_per_epoch(void **state)
{
    enum { N = 103, BATCH = 10 };
    fedl_dataset ds;
    fedl_batcher b;
    float x[BATCH];
    int32_t y[BATCH];
    uint32_t expected[N];
    (void)state;
    make_index_dataset(&ds, NULL, N);
    assert_int_equal(fedl_batcher_init(&b, &ds, 5, 1, NULL, NULL), FEDL_OK);
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        unsigned char seen[N] = {0};
        size_t total = 0, n, batches = 0, last = 0;
        fedl_shuffle_order(5, epoch, expected, N);
        while ((n = fedl_batcher_next(&b, BATCH, x, y)) > 0) {
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(y[i], (int32_t)expected[total + i]);
                assert_int_equal(seen[y[i]], 0);
                seen[y[i]] = 1;
            }
            total += n;
            batches++;
            last = n;
        }
        assert_int_equal(total, N);
        assert_int_equal(batches, 11);
        assert_int_equal(last, 3); /* the short last batch */
        fedl_batcher_seek(&b, b.epoch + 1, 0);
    }
    fedl_batcher_free(&b);
    fedl_dataset_free(&ds);
}

static void test_batcher_returns_zero_at_epoch_end_until_seek(void **state)
{
    fedl_dataset ds;
    fedl_batcher b;
    int32_t y[8];
    (void)state;
    make_index_dataset(&ds, NULL, 5);
    assert_int_equal(fedl_batcher_init(&b, &ds, 1, 1, NULL, NULL), FEDL_OK);
    assert_int_equal(fedl_batcher_next(&b, 8, NULL, y), 5);
    assert_int_equal(fedl_batcher_next(&b, 8, NULL, y), 0);
    assert_int_equal(fedl_batcher_next(&b, 8, NULL, y), 0);
    assert_int_equal(b.epoch, 0);
    fedl_batcher_seek(&b, b.epoch + 1, 0);
    assert_int_equal(b.epoch, 1);
    assert_int_equal(fedl_batcher_next(&b, 8, NULL, y), 5);
    fedl_batcher_free(&b);
    fedl_dataset_free(&ds);
}

static void test_batcher_seek_reproduces_position(void **state)
{
    enum { N = 50, BATCH = 7 };
    fedl_dataset ds;
    fedl_batcher run, resumed;
    int32_t y_run[BATCH], y_resumed[BATCH];
    uint64_t saved_epoch;
    size_t saved_position;
    (void)state;
    make_index_dataset(&ds, NULL, N);
    assert_int_equal(fedl_batcher_init(&run, &ds, 2024, 1, NULL, NULL), FEDL_OK);
    /* Run into epoch 2, "checkpoint" mid-epoch. */
    fedl_batcher_seek(&run, 2, 0);
    fedl_batcher_next(&run, BATCH, NULL, y_run);
    fedl_batcher_next(&run, BATCH, NULL, y_run);
    saved_epoch = run.epoch;
    saved_position = run.position;
    assert_int_equal(saved_position, 14);
    /* A fresh batcher seeking to the saved point sees the same batches. */
    assert_int_equal(fedl_batcher_init(&resumed, &ds, 2024, 1, NULL, NULL), FEDL_OK);
    fedl_batcher_seek(&resumed, saved_epoch, saved_position);
    for (;;) {
        size_t a = fedl_batcher_next(&run, BATCH, NULL, y_run);
        size_t b = fedl_batcher_next(&resumed, BATCH, NULL, y_resumed);
        assert_int_equal(a, b);
        if (a == 0)
            break;
        assert_memory_equal(y_run, y_resumed, a * sizeof y_run[0]);
    }
    /* A position past the end is clamped. */
    fedl_batcher_seek(&resumed, 0, 1000);
    assert_int_equal(resumed.position, N);
    assert_int_equal(fedl_batcher_next(&resumed, BATCH, NULL, y_resumed), 0);
    fedl_batcher_free(&run);
    fedl_batcher_free(&resumed);
    fedl_dataset_free(&ds);
}

static void test_batcher_epochs_use_different_orders(void **state)
{
    enum { N = 64 };
    fedl_dataset ds;
    fedl_batcher b;
    int32_t first[N], second[N], again[N];
    (void)state;
    make_index_dataset(&ds, NULL, N);
    assert_int_equal(fedl_batcher_init(&b, &ds, 3, 1, NULL, NULL), FEDL_OK);
    assert_int_equal(fedl_batcher_next(&b, N, NULL, first), N);
    fedl_batcher_seek(&b, 1, 0);
    assert_int_equal(fedl_batcher_next(&b, N, NULL, second), N);
    fedl_batcher_seek(&b, 0, 0);
    assert_int_equal(fedl_batcher_next(&b, N, NULL, again), N);
    assert_memory_not_equal(first, second, sizeof first);
    assert_memory_equal(first, again, sizeof first);
    fedl_batcher_free(&b);
    fedl_dataset_free(&ds);
}

static void test_batcher_handles_empty_dataset_and_bad_arguments(void **state)
{
    fedl_dataset ds;
    fedl_batcher b;
    fedl_error err;
    int32_t y[2];
    (void)state;
    memset(&ds, 0, sizeof ds);
    assert_int_equal(fedl_batcher_init(&b, &ds, 1, 1, NULL, &err), FEDL_OK);
    assert_int_equal(fedl_batcher_next(&b, 2, NULL, y), 0);
    fedl_batcher_seek(&b, 4, 3);
    assert_int_equal(fedl_batcher_next(&b, 2, NULL, y), 0);
    fedl_batcher_free(&b);
    assert_int_equal(fedl_batcher_init(&b, NULL, 1, 1, NULL, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_batcher_init(NULL, &ds, 1, 1, NULL, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_batcher_next(NULL, 2, NULL, y), 0);
}

/* ------------------------------------------------------------ Fashion-MNIST */

static void test_fashion_mnist_loads_real_files(void **state)
{
    const char *dir = test_fashion_mnist_dir();
    fedl_allocator a;
    fedl_dataset train, test;
    fedl_error err;
    size_t per_class[10] = {0};
    (void)state;
    if (dir == NULL) {
        print_message("Fashion-MNIST is not installed, skipping "
                      "(/usr/share/datasets/fashion-mnist, package dataset-fashion-mnist)\n");
        skip();
    }
    fedl_allocator_init(&a, NULL, NULL);
    if (fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, &a, &train, &err) != FEDL_OK)
        fail_msg("%s", err.message);
    if (fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TEST, &a, &test, &err) != FEDL_OK)
        fail_msg("%s", err.message);
    assert_int_equal(train.count, 60000);
    assert_int_equal(test.count, 10000);
    assert_int_equal(train.shape.c, 1);
    assert_int_equal(train.shape.h, 28);
    assert_int_equal(train.shape.w, 28);
    assert_int_equal(test.shape.h, 28);
    assert_int_equal(train.classes, 10);
    assert_int_equal(test.classes, 10);
    /* Exactly what the files hold: pixels and labels, nothing else. */
    assert_int_equal(a.stats.live_bytes, 70000u * (784u + 1u));
    for (size_t i = 0; i < train.count; i++)
        per_class[train.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(per_class[c], 6000); /* Fashion-MNIST is balanced */
    fedl_dataset_free(&train);
    fedl_dataset_free(&test);
    assert_int_equal(a.stats.live_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_3d_images_get_one_channel),
        cmocka_unit_test(test_dataset_4d_images_keep_channels),
        cmocka_unit_test(test_dataset_rejects_count_mismatch_naming_both_files),
        cmocka_unit_test(test_dataset_rejects_wrong_ranks),
        cmocka_unit_test(test_dataset_reports_bad_file_by_name),
        cmocka_unit_test(test_dataset_gather_scales_pixels_to_unit_range),
        cmocka_unit_test(test_dataset_truncate_keeps_first_samples_and_frees_everything),
        cmocka_unit_test(test_dataset_load_mnist_dir_prefers_gz_then_plain),
        cmocka_unit_test(test_dataset_load_mnist_dir_reports_missing_files),
        cmocka_unit_test(test_dataset_fails_cleanly_on_every_allocation_failure),
        cmocka_unit_test(test_shuffle_is_a_permutation_and_deterministic),
        cmocka_unit_test(test_shuffle_matches_reference_values),
        cmocka_unit_test(test_shuffle_differs_between_epochs_and_seeds),
        cmocka_unit_test(test_batcher_without_shuffle_visits_in_order),
        cmocka_unit_test(test_batcher_visits_every_sample_once_per_epoch),
        cmocka_unit_test(test_batcher_returns_zero_at_epoch_end_until_seek),
        cmocka_unit_test(test_batcher_seek_reproduces_position),
        cmocka_unit_test(test_batcher_epochs_use_different_orders),
        cmocka_unit_test(test_batcher_handles_empty_dataset_and_bad_arguments),
        cmocka_unit_test(test_fashion_mnist_loads_real_files),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
