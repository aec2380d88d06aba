/* test_partition.c - splitting a data set among federated clients (iid,
 * dirichlet, shards), the partition spec parser, and the subset view a
 * client trains on: in memory, through a source, for regression data, under
 * allocation failures, and on the real Fashion-MNIST when installed. */
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

#include "fedl/csv.h"
#include "fedl/data.h"
#include "fedl/nn.h"
#include "fedl/train.h"
#include "support/test_support.h"

/* ------------------------------------------------------------------ helpers */

static fedl_partition_spec spec_of(const char *text)
{
    fedl_partition_spec spec;
    fedl_error err;
    assert_int_equal(fedl_partition_parse(text, &spec, &err), FEDL_OK);
    return spec;
}

static fedl_partition make(const fedl_dataset *ds, int clients, const char *text, uint64_t seed)
{
    fedl_partition p;
    fedl_error err;
    fedl_partition_spec spec = spec_of(text);
    fedl_status status = fedl_partition_make(ds, clients, &spec, seed, NULL, &p, &err);
    if (status != FEDL_OK)
        fail_msg("%s: %s", text, err.message);
    return p;
}

static size_t client_size(const fedl_partition *p, int c)
{
    return p->offsets[c + 1] - p->offsets[c];
}

/* Every sample exactly once, each client's list increasing and non-empty. */
static void assert_valid_partition(const fedl_partition *p, size_t count, int clients)
{
    uint8_t *seen = calloc(count, 1);
    assert_non_null(seen);
    assert_int_equal(p->clients, clients);
    assert_int_equal(p->offsets[0], 0);
    assert_int_equal(p->offsets[clients], count);
    for (int c = 0; c < clients; c++) {
        assert_true(client_size(p, c) >= 1);
        for (size_t j = p->offsets[c]; j < p->offsets[c + 1]; j++) {
            assert_true(p->indices[j] < count);
            assert_int_equal(seen[p->indices[j]], 0);
            seen[p->indices[j]] = 1;
            if (j > p->offsets[c])
                assert_true(p->indices[j] > p->indices[j - 1]);
        }
    }
    free(seen);
}

static int same_partition(const fedl_partition *a, const fedl_partition *b)
{
    return a->clients == b->clients &&
           memcmp(a->offsets, b->offsets, ((size_t)a->clients + 1) * sizeof *a->offsets) == 0 &&
           memcmp(a->indices, b->indices, a->offsets[a->clients] * sizeof *a->indices) == 0;
}

/* An in-memory data set of count samples (test_make_quadrant_dataset's
 * images) relabelled with `classes` labels drawn uniformly from seed, or
 * interleaved: label i % classes. */
static void make_labelled(fedl_dataset *ds, size_t count, int classes, int interleaved,
                          uint64_t seed)
{
    fedl_rng rng;
    assert_int_equal(test_make_quadrant_dataset(ds, count, seed), 0);
    ds->classes = classes;
    fedl_rng_init(&rng, seed, 1);
    for (size_t i = 0; i < count; i++)
        ds->labels[i] =
            (uint8_t)(interleaved ? i % (size_t)classes : fedl_rng_below(&rng, (uint32_t)classes));
}

/* Mean over clients of the largest class's share of the client's samples. */
static double mean_largest_class_share(const fedl_dataset *ds, const fedl_partition *p)
{
    double total = 0.0;
    for (int c = 0; c < p->clients; c++) {
        size_t per_class[256] = {0}, largest = 0;
        for (size_t j = p->offsets[c]; j < p->offsets[c + 1]; j++)
            per_class[ds->labels[p->indices[j]]]++;
        for (int k = 0; k < ds->classes; k++)
            largest = per_class[k] > largest ? per_class[k] : largest;
        total += (double)largest / (double)client_size(p, c);
    }
    return total / p->clients;
}

static int classes_of_client(const fedl_dataset *ds, const fedl_partition *p, int c)
{
    int present[256] = {0}, n = 0;
    for (size_t j = p->offsets[c]; j < p->offsets[c + 1]; j++)
        present[ds->labels[p->indices[j]]] = 1;
    for (int k = 0; k < 256; k++)
        n += present[k];
    return n;
}

/* A data set read through a source: sample i has features i + k / 8 and
 * label label_of(i) (classification) or targets (i, -i) (regression). It
 * counts reads and records the last prefetch; stream = 1 gives it a seek, as
 * a stream has. */
typedef struct synthetic {
    size_t count;
    int classes, targets, stream;
    size_t reads, prefetched;
    uint32_t last_prefetch[8];
    int fail_reads; /* 1: every read fails */
} synthetic;

static int32_t label_of(size_t i)
{
    return (int32_t)((i * 7 + i / 13) % 10);
}

static fedl_status synthetic_read(void *impl, const uint32_t *indices, size_t n, float *x,
                                  int32_t *labels, float *targets, fedl_error *err)
{
    synthetic *s = impl;
    s->reads++;
    if (s->fail_reads)
        return fedl_error_set(err, FEDL_ERR_IO, "synthetic.csv: line 7: the file changed");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; x != NULL && k < 4; k++)
            x[i * 4 + (size_t)k] = (float)indices[i] + (float)k / 8.0f;
        if (labels != NULL)
            labels[i] = label_of(indices[i]);
        if (targets != NULL) {
            targets[i * 2] = (float)indices[i];
            targets[i * 2 + 1] = -(float)indices[i];
        }
    }
    return FEDL_OK;
}

static void synthetic_prefetch(void *impl, const uint32_t *indices, size_t n)
{
    synthetic *s = impl;
    s->prefetched = n;
    memcpy(s->last_prefetch, indices, (n < 8 ? n : 8) * sizeof *indices);
}

static void synthetic_seek(void *impl, uint64_t epoch, size_t position)
{
    (void)impl;
    (void)epoch;
    (void)position;
}

static void make_synthetic(fedl_dataset *ds, synthetic *s)
{
    memset(ds, 0, sizeof *ds);
    ds->alloc = fedl_allocator_default();
    ds->count = s->count;
    ds->shape = (fedl_shape){4, 1, 1};
    ds->sample_bytes = 4;
    ds->classes = s->targets > 0 ? 0 : s->classes;
    ds->targets = s->targets;
    ds->source.read = synthetic_read;
    ds->source.prefetch = synthetic_prefetch;
    ds->source.seek = s->stream ? synthetic_seek : NULL;
    ds->source.impl = s;
    ds->source.identity[0] = 0x5a;
}

/* ------------------------------------------------------------------- parsing */

static void test_parse_accepts_the_three_kinds(void **state)
{
    fedl_partition_spec spec;
    (void)state;
    spec = spec_of("iid");
    assert_int_equal(spec.kind, FEDL_PARTITION_IID);
    spec = spec_of("dirichlet:0.3");
    assert_int_equal(spec.kind, FEDL_PARTITION_DIRICHLET);
    assert_true(spec.alpha == 0.3);
    assert_true(spec_of("dirichlet:100").alpha == 100.0);
    assert_true(spec_of("dirichlet:.5").alpha == 0.5);
    assert_true(spec_of("dirichlet:0.0001").alpha == 0.0001);
    assert_true(spec_of("dirichlet:1000000").alpha == 1e6);
    spec = spec_of("shards:2");
    assert_int_equal(spec.kind, FEDL_PARTITION_SHARDS);
    assert_int_equal(spec.shards, 2);
}

static void test_parse_rejects_naming_text_and_position(void **state)
{
    static const struct {
        const char *text;
        const char *where;
        const char *why;
    } cases[] = {
        {"", "character 1", "unknown partition kind"},
        {"IID", "character 1", "unknown partition kind"},
        {"random", "character 1", "unknown partition kind"},
        {"iid:3", "character 4", "no parameter"},
        {"dirichlet", "character 10", "after a ':'"},
        {"dirichlet:", "character 11", "a number must follow"},
        {"dirichlet:.", "character 11", "a number must follow"},
        {"dirichlet:-1", "character 11", "plain decimal"},
        {"dirichlet: 0.3", "character 11", "plain decimal"},
        {"dirichlet:0.3x", "character 14", "plain decimal"},
        {"dirichlet:1.2.3", "character 14", "plain decimal"},
        {"dirichlet:1e-2", "character 12", "plain decimal"},
        {"dirichlet:nan", "character 11", "plain decimal"},
        {"dirichlet:0", "character 11", "between 0.0001 and 1000000"},
        {"dirichlet:0.00001", "character 11", "between"},
        {"dirichlet:2000000", "character 11", "between"},
        {"dirichlet:1.0000000000000001", "character 27", "15 significant digits"},
        {"shards", "character 7", "after a ':'"},
        {"shards:", "character 8", "a number must follow"},
        {"shards:0", "character 8", "at least 1 shard"},
        {"shards:2.5", "character 9", "whole number"},
        {"shards:-2", "character 8", "whole number"},
        {"shards:99999999999", "character 17", "too large"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fedl_partition_spec spec;
        fedl_error err;
        char quoted[64];
        fedl_error_clear(&err);
        snprintf(quoted, sizeof quoted, "\"%s\"", cases[i].text);
        if (fedl_partition_parse(cases[i].text, &spec, &err) != FEDL_ERR_INVALID_ARG)
            fail_msg("\"%s\" was accepted", cases[i].text);
        if (strstr(err.message, cases[i].where) == NULL ||
            strstr(err.message, cases[i].why) == NULL || strstr(err.message, quoted) == NULL)
            fail_msg("\"%s\": message \"%s\"", cases[i].text, err.message);
    }
}

static void test_parse_rejects_null_arguments(void **state)
{
    fedl_partition_spec spec;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_partition_parse(NULL, &spec, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "text is NULL"));
    assert_int_equal(fedl_partition_parse("iid", NULL, &err), FEDL_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------------ the splits */

static void test_iid_deals_near_equal_parts(void **state)
{
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 1003, 4, 0, 1);
    for (int clients = 1; clients <= 17; clients += 4) {
        fedl_partition p = make(&ds, clients, "iid", 5);
        assert_valid_partition(&p, ds.count, clients);
        for (int c = 0; c < clients; c++) {
            assert_true(client_size(&p, c) >= ds.count / (size_t)clients);
            assert_true(client_size(&p, c) <= ds.count / (size_t)clients + 1);
        }
        fedl_partition_free(&p);
        assert_null(p.offsets);
    }
    fedl_dataset_free(&ds);
}

static void test_every_kind_assigns_every_sample_once(void **state)
{
    static const char *const kinds[] = {"iid",         "dirichlet:0.3", "dirichlet:0.05",
                                        "dirichlet:5", "shards:1",      "shards:2",
                                        "shards:7"};
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 1500, 10, 0, 2);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int clients = 1; clients <= 50; clients = clients * 3 + 1) {
            fedl_partition p = make(&ds, clients, kinds[k], 11);
            assert_valid_partition(&p, ds.count, clients);
            fedl_partition_free(&p);
        }
    }
    /* as many clients as samples: each gets exactly one */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_dataset small;
        make_labelled(&small, 9, 3, 0, 3);
        if (strcmp(kinds[k], "shards:1") == 0 || strncmp(kinds[k], "shards", 6) != 0) {
            fedl_partition p = make(&small, 9, kinds[k], 4);
            assert_valid_partition(&p, small.count, 9);
            fedl_partition_free(&p);
        }
        fedl_dataset_free(&small);
    }
    fedl_dataset_free(&ds);
}

static void test_same_seed_same_partition_other_seed_another(void **state)
{
    static const char *const kinds[] = {"iid", "dirichlet:0.3", "shards:2"};
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 2000, 10, 0, 3);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_partition a = make(&ds, 10, kinds[k], 42);
        fedl_partition b = make(&ds, 10, kinds[k], 42);
        fedl_partition c = make(&ds, 10, kinds[k], 43);
        assert_true(same_partition(&a, &b));
        assert_false(same_partition(&a, &c));
        fedl_partition_free(&a);
        fedl_partition_free(&b);
        fedl_partition_free(&c);
    }
    fedl_dataset_free(&ds);
}

/* Client 0's first samples and every client's size. */
static void assert_reference(const fedl_partition *p, const uint32_t first[3],
                             const size_t sizes[4])
{
    assert_memory_equal(p->indices, first, 3 * sizeof *first);
    for (int c = 0; c < 4; c++)
        assert_int_equal(client_size(p, c), sizes[c]);
}

/* Reference values: the partition is part of a run's reproducibility, so a
 * change of algorithm or of RNG use must show up here. (iid and shards use
 * integer draws only; dirichlet also goes through libm's log and exp.) */
static void test_partition_matches_reference_values(void **state)
{
    static const uint32_t iid_first[3] = {2, 12, 25}, dirichlet_first[3] = {2, 4, 15},
                          shards_first[3] = {4, 9, 14};
    static const size_t iid_sizes[4] = {25, 25, 25, 25}, dirichlet_sizes[4] = {27, 21, 23, 29},
                        shards_sizes[4] = {26, 24, 24, 26};
    fedl_dataset ds;
    fedl_partition p;
    (void)state;
    make_labelled(&ds, 100, 10, 1, 0);
    p = make(&ds, 4, "iid", 1);
    assert_reference(&p, iid_first, iid_sizes);
    fedl_partition_free(&p);
    p = make(&ds, 4, "dirichlet:0.5", 1);
    assert_reference(&p, dirichlet_first, dirichlet_sizes);
    fedl_partition_free(&p);
    p = make(&ds, 4, "shards:2", 1);
    assert_reference(&p, shards_first, shards_sizes);
    fedl_partition_free(&p);
    fedl_dataset_free(&ds);
}

/* The label skew the literature reports: with 10 clients and 10 classes
 * the mean largest class share is about 0.59 for alpha 0.1 (an independent
 * simulation with Python's random.gammavariate agrees), 0.42 for 0.3 and
 * 0.12 (the global mix, 0.1, plus noise) for 100. One draw varies a lot
 * (0.48 to 0.71 for alpha 0.1), so the test averages five seeds. */
static void test_dirichlet_small_alpha_skews_large_alpha_mixes(void **state)
{
    static const char *const kinds[] = {"dirichlet:0.1", "dirichlet:0.3", "dirichlet:100"};
    double share[3] = {0.0, 0.0, 0.0};
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 5000, 10, 0, 4);
    for (size_t k = 0; k < 3; k++) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
            fedl_partition p = make(&ds, 10, kinds[k], seed);
            share[k] += mean_largest_class_share(&ds, &p) / 5.0;
            fedl_partition_free(&p);
        }
        print_message("%s: mean largest class share %.3f\n", kinds[k], share[k]);
    }
    assert_true(share[0] > 0.5);
    assert_true(share[0] > share[1] && share[1] > share[2]);
    assert_true(share[2] < 0.2);
    fedl_dataset_free(&ds);
}

/* The Gamma sampler seen through the split: with one class and two
 * clients, client 0's share is p ~ Beta(alpha, alpha), of mean 1/2 and
 * variance 1 / (4 (2 alpha + 1)) (uniform for alpha 1). 1,000 seeds give the
 * variance within about 2.5% (one standard error); the test allows 10%. */
static void test_dirichlet_proportions_have_the_beta_moments(void **state)
{
    static const double alphas[] = {0.5, 1.0, 4.0};
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 5000, 1, 0, 0);
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        double sum = 0.0, sum_squares = 0.0, mean, variance;
        double expected = 1.0 / (4.0 * (2.0 * alphas[a] + 1.0));
        char text[32];
        snprintf(text, sizeof text, "dirichlet:%g", alphas[a]);
        for (uint64_t seed = 0; seed < 1000; seed++) {
            fedl_partition p = make(&ds, 2, text, seed);
            double share = (double)client_size(&p, 0) / (double)ds.count;
            sum += share;
            sum_squares += share * share;
            fedl_partition_free(&p);
        }
        mean = sum / 1000.0;
        variance = sum_squares / 1000.0 - mean * mean;
        print_message("%s: share mean %.4f (0.5), variance %.4f (%.4f)\n", text, mean, variance,
                      expected);
        assert_true(fabs(mean - 0.5) < 0.03);
        assert_true(fabs(variance - expected) < 0.1 * expected);
    }
    fedl_dataset_free(&ds);
}

/* With alpha at its floor nearly every class goes whole to one client, so
 * with more clients than classes the redraws cannot help and the top-up
 * must give each empty client a sample. */
static void test_dirichlet_gives_every_client_a_sample(void **state)
{
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 60, 3, 0, 5);
    for (uint64_t seed = 0; seed < 20; seed++) {
        fedl_partition p = make(&ds, 30, "dirichlet:0.0001", seed);
        assert_valid_partition(&p, ds.count, 30);
        fedl_partition_free(&p);
    }
    fedl_dataset_free(&ds);
}

static void test_shards_give_each_client_at_most_k_classes(void **state)
{
    fedl_dataset ds;
    (void)state;
    /* 10 classes of 100 (interleaved in the file); 20 shards of 50 never
     * straddle a class boundary, as in McMahan et al. (200 shards of 300) */
    make_labelled(&ds, 1000, 10, 1, 0);
    for (uint64_t seed = 0; seed < 5; seed++) {
        fedl_partition p = make(&ds, 10, "shards:2", seed);
        assert_valid_partition(&p, ds.count, 10);
        for (int c = 0; c < 10; c++) {
            assert_int_equal(client_size(&p, c), 100);
            assert_true(classes_of_client(&ds, &p, c) <= 2);
        }
        fedl_partition_free(&p);
    }
    fedl_dataset_free(&ds);
    /* uneven classes: a shard may straddle a boundary, but no shard smaller
     * than the smallest class spans more than two, so <= 2k per client */
    make_labelled(&ds, 1003, 10, 0, 6);
    {
        fedl_partition p = make(&ds, 12, "shards:3", 9);
        assert_valid_partition(&p, ds.count, 12);
        for (int c = 0; c < 12; c++) {
            assert_true(client_size(&p, c) >= 81 && client_size(&p, c) <= 84);
            assert_true(classes_of_client(&ds, &p, c) <= 6);
        }
        fedl_partition_free(&p);
    }
    fedl_dataset_free(&ds);
}

static void test_make_rejects_bad_arguments_with_a_message(void **state)
{
    fedl_dataset ds;
    fedl_partition p;
    fedl_error err;
    fedl_partition_spec spec = spec_of("iid"), bad;
    (void)state;
    make_labelled(&ds, 50, 5, 0, 7);
    assert_int_equal(fedl_partition_make(&ds, 0, &spec, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "0 clients"));
    assert_null(p.offsets);
    assert_int_equal(fedl_partition_make(&ds, -3, &spec, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_partition_make(&ds, 51, &spec, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "51 clients but only 50 samples"));
    spec = spec_of("shards:6");
    assert_int_equal(fedl_partition_make(&ds, 10, &spec, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "60 shards"));
    bad = spec_of("dirichlet:1");
    bad.alpha = 0.0;
    assert_int_equal(fedl_partition_make(&ds, 5, &bad, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "alpha"));
    bad.alpha = NAN;
    assert_int_equal(fedl_partition_make(&ds, 5, &bad, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    bad = spec_of("shards:1");
    bad.shards = 0;
    assert_int_equal(fedl_partition_make(&ds, 5, &bad, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    bad.kind = (fedl_partition_kind)7;
    assert_int_equal(fedl_partition_make(&ds, 5, &bad, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "unknown kind"));
    assert_int_equal(fedl_partition_make(NULL, 5, &spec, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_partition_make(&ds, 5, NULL, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_partition_make(&ds, 5, &spec, 1, NULL, NULL, &err), FEDL_ERR_INVALID_ARG);
    ds.labels[17] = 9; /* beyond the 5 classes the data set declares */
    spec = spec_of("dirichlet:1");
    assert_int_equal(fedl_partition_make(&ds, 5, &spec, 1, NULL, &p, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "sample 17 has label 9"));
    fedl_partition_free(&p); /* zeroed: a no-op */
    fedl_partition_free(NULL);
    fedl_dataset_free(&ds);
}

/* Labels read through a source, in chunks, give the partition the same
 * labels in memory give. */
static void test_partition_reads_labels_through_a_source(void **state)
{
    synthetic s = {2500, 10, 0, 0, 0, 0, {0}, 0};
    fedl_dataset through, in_memory;
    (void)state;
    make_synthetic(&through, &s);
    make_labelled(&in_memory, s.count, 10, 0, 0);
    for (size_t i = 0; i < s.count; i++)
        in_memory.labels[i] = (uint8_t)label_of(i);
    {
        fedl_partition a = make(&through, 8, "dirichlet:0.3", 3);
        fedl_partition b = make(&in_memory, 8, "dirichlet:0.3", 3);
        fedl_partition c = make(&through, 8, "shards:2", 3);
        fedl_partition d = make(&in_memory, 8, "shards:2", 3);
        assert_true(same_partition(&a, &b));
        assert_true(same_partition(&c, &d));
        assert_int_equal(s.reads, 2 * 3); /* 2,500 labels in chunks of 1,024 */
        fedl_partition_free(&a);
        fedl_partition_free(&b);
        fedl_partition_free(&c);
        fedl_partition_free(&d);
    }
    fedl_dataset_free(&in_memory);
}

static void test_partition_reports_a_failed_label_read(void **state)
{
    synthetic s = {100, 10, 0, 0, 0, 0, {0}, 1};
    fedl_dataset ds;
    fedl_partition p;
    fedl_error err;
    fedl_allocator alloc;
    fedl_partition_spec spec = spec_of("dirichlet:0.5");
    (void)state;
    make_synthetic(&ds, &s);
    fedl_allocator_init(&alloc, NULL, NULL);
    assert_int_equal(fedl_partition_make(&ds, 4, &spec, 1, &alloc, &p, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "synthetic.csv: line 7"));
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    assert_null(p.indices);
}

static void test_stream_cannot_be_split_by_label_or_viewed(void **state)
{
    synthetic s = {100, 10, 0, 1, 0, 0, {0}, 0};
    fedl_dataset ds, view;
    fedl_partition p;
    fedl_error err;
    uint32_t first[3] = {0, 1, 2};
    fedl_partition_spec spec = spec_of("dirichlet:0.5");
    (void)state;
    make_synthetic(&ds, &s);
    assert_int_equal(fedl_partition_make(&ds, 4, &spec, 1, NULL, &p, &err), FEDL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "stream"));
    assert_int_equal(fedl_dataset_subset(&ds, first, 3, NULL, &view, &err), FEDL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "stream"));
    p = make(&ds, 4, "iid", 1); /* iid needs no labels */
    assert_valid_partition(&p, ds.count, 4);
    fedl_partition_free(&p);
}

static void test_regression_set_splits_iid_only(void **state)
{
    synthetic s = {300, 0, 2, 0, 0, 0, {0}, 0};
    fedl_dataset ds, view;
    fedl_partition p;
    fedl_error err;
    fedl_partition_spec dirichlet = spec_of("dirichlet:0.3"), shards = spec_of("shards:2");
    float targets[2 * 40], x[4 * 40];
    uint32_t all[40];
    (void)state;
    make_synthetic(&ds, &s);
    assert_int_equal(fedl_partition_make(&ds, 4, &dirichlet, 1, NULL, &p, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "regression"));
    assert_non_null(strstr(err.message, "use iid"));
    assert_int_equal(fedl_partition_make(&ds, 4, &shards, 1, NULL, &p, &err), FEDL_ERR_INVALID_ARG);
    p = make(&ds, 8, "iid", 1);
    assert_valid_partition(&p, ds.count, 8);
    assert_int_equal(fedl_partition_subset(&ds, &p, 2, NULL, &view, &err), FEDL_OK);
    assert_int_equal(view.count, client_size(&p, 2));
    assert_int_equal(view.targets, 2);
    assert_int_equal(view.classes, 0);
    for (uint32_t i = 0; i < view.count; i++)
        all[i] = i;
    assert_int_equal(fedl_dataset_read_targets(&view, all, view.count, x, targets, &err), FEDL_OK);
    for (size_t i = 0; i < view.count; i++) {
        float parent = (float)p.indices[p.offsets[2] + i];
        assert_true(targets[2 * i] == parent && targets[2 * i + 1] == -parent);
        assert_true(x[4 * i + 3] == parent + 3.0f / 8.0f);
    }
    fedl_dataset_free(&view);
    fedl_partition_free(&p);
}

/* ------------------------------------------------------------------ the view */

static void test_view_reads_parent_samples_at_mapped_indices(void **state)
{
    fedl_dataset ds, view, other, nested;
    fedl_partition p;
    fedl_error err;
    float *mine, *theirs;
    int32_t *my_labels, *their_labels;
    uint32_t *order, *mapped;
    size_t n, features = 64;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 3000, 5), 0);
    p = make(&ds, 2, "dirichlet:1", 8);
    assert_int_equal(fedl_partition_subset(&ds, &p, 1, NULL, &view, &err), FEDL_OK);
    n = view.count;
    assert_int_equal(n, client_size(&p, 1));
    assert_true(n > 1024); /* read in more than one chunk */
    assert_int_equal(view.classes, 4);
    assert_int_equal(view.shape.h, 8);
    assert_int_equal(view.sample_bytes, 64);
    assert_int_equal(fedl_dataset_held_bytes(&view), n * sizeof(uint32_t));
    mine = malloc(n * features * sizeof *mine);
    theirs = malloc(n * features * sizeof *theirs);
    my_labels = malloc(n * sizeof *my_labels);
    their_labels = malloc(n * sizeof *their_labels);
    order = malloc(n * sizeof *order);
    mapped = malloc(n * sizeof *mapped);
    assert_non_null(mapped);
    fedl_shuffle_order(3, 0, order, n);
    for (size_t i = 0; i < n; i++)
        mapped[i] = p.indices[p.offsets[1] + order[i]];
    assert_int_equal(fedl_dataset_read(&view, order, n, mine, my_labels, &err), FEDL_OK);
    assert_int_equal(fedl_dataset_read(&ds, mapped, n, theirs, their_labels, &err), FEDL_OK);
    assert_memory_equal(mine, theirs, n * features * sizeof *mine);
    assert_memory_equal(my_labels, their_labels, n * sizeof *my_labels);
    /* an index past the view is refused, not read from the parent */
    order[0] = (uint32_t)n;
    assert_int_equal(fedl_dataset_read(&view, order, 1, mine, my_labels, &err),
                     FEDL_ERR_INVALID_ARG);
    /* identity: a function of the samples viewed */
    assert_int_equal(fedl_partition_subset(&ds, &p, 1, NULL, &other, &err), FEDL_OK);
    assert_memory_equal(view.source.identity, other.source.identity, FEDL_SHA256_BYTES);
    fedl_dataset_free(&other);
    assert_int_equal(fedl_partition_subset(&ds, &p, 0, NULL, &other, &err), FEDL_OK);
    assert_memory_not_equal(view.source.identity, other.source.identity, FEDL_SHA256_BYTES);
    /* a view of a view maps twice */
    mapped[0] = 5;
    mapped[1] = 0;
    assert_int_equal(fedl_dataset_subset(&view, mapped, 2, NULL, &nested, &err), FEDL_OK);
    order[0] = 0;
    order[1] = 1;
    assert_int_equal(fedl_dataset_read(&nested, order, 2, mine, my_labels, &err), FEDL_OK);
    mapped[0] = p.indices[p.offsets[1] + 5];
    mapped[1] = p.indices[p.offsets[1]];
    assert_int_equal(fedl_dataset_read(&ds, mapped, 2, theirs, their_labels, &err), FEDL_OK);
    assert_memory_equal(mine, theirs, 2 * features * sizeof *mine);
    assert_memory_equal(my_labels, their_labels, 2 * sizeof *my_labels);
    assert_memory_not_equal(nested.source.identity, view.source.identity, FEDL_SHA256_BYTES);
    fedl_dataset_free(&nested);
    fedl_dataset_free(&other);
    fedl_dataset_free(&view);
    free(mine);
    free(theirs);
    free(my_labels);
    free(their_labels);
    free(order);
    free(mapped);
    fedl_partition_free(&p);
    fedl_dataset_free(&ds);
}

static void test_view_passes_prefetch_hints_on(void **state)
{
    synthetic s = {100, 10, 0, 0, 0, 0, {0}, 0};
    fedl_dataset ds, view, in_memory;
    fedl_error err;
    uint32_t list[4] = {90, 7, 33, 2}, ask[2] = {3, 1};
    (void)state;
    make_synthetic(&ds, &s);
    assert_int_equal(fedl_dataset_subset(&ds, list, 4, NULL, &view, &err), FEDL_OK);
    assert_true(view.source.prefetch != NULL);
    assert_true(view.source.seek == NULL);
    fedl_dataset_prefetch(&view, ask, 2);
    assert_int_equal(s.prefetched, 2);
    assert_int_equal(s.last_prefetch[0], 2);
    assert_int_equal(s.last_prefetch[1], 7);
    fedl_dataset_free(&view);
    /* a parent in memory has nothing to prefetch */
    make_labelled(&in_memory, 100, 4, 0, 1);
    assert_int_equal(fedl_dataset_subset(&in_memory, list, 4, NULL, &view, &err), FEDL_OK);
    assert_true(view.source.prefetch == NULL);
    fedl_dataset_free(&view);
    fedl_dataset_free(&in_memory);
}

static void test_view_rejects_bad_lists(void **state)
{
    fedl_dataset ds, view;
    fedl_error err;
    uint32_t list[3] = {0, 99, 100};
    fedl_partition p;
    (void)state;
    make_labelled(&ds, 100, 4, 0, 1);
    assert_int_equal(fedl_dataset_subset(&ds, list, 3, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "entry 2 of the list is sample 100"));
    assert_true(view.source.read == NULL);
    assert_int_equal(fedl_dataset_subset(&ds, list, 0, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_dataset_subset(&ds, NULL, 2, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_dataset_subset(NULL, list, 2, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_dataset_subset(&ds, list, 2, NULL, NULL, &err), FEDL_ERR_INVALID_ARG);
    p = make(&ds, 3, "iid", 1);
    assert_int_equal(fedl_partition_subset(&ds, &p, 3, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "client 3"));
    assert_int_equal(fedl_partition_subset(&ds, &p, -1, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_partition_subset(&ds, NULL, 0, NULL, &view, &err), FEDL_ERR_INVALID_ARG);
    fedl_partition_free(&p);
    fedl_dataset_free(&ds);
}

/* Each client trains on its view with the ordinary trainer; a step
 * allocates nothing and the loss goes down. */
static void test_trainer_learns_on_a_client_view(void **state)
{
    fedl_dataset ds, view;
    fedl_partition p;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_allocator alloc;
    fedl_eval_result before, after;
    fedl_train_config c = fedl_train_config_defaults();
    int done = 0;
    (void)state;
    assert_int_equal(test_make_quadrant_dataset(&ds, 2000, 9), 0);
    p = make(&ds, 5, "dirichlet:0.5", 2);
    fedl_allocator_init(&alloc, NULL, NULL);
    assert_int_equal(fedl_partition_subset(&ds, &p, 0, &alloc, &view, &err), FEDL_OK);
    c.batch = 16;
    c.lr.base_lr = 0.1f;
    assert_int_equal(fedl_model_create("flatten dense(4)", view.shape, 1, &alloc, &m, &err),
                     FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &view, &c, &alloc, &t, &err), FEDL_OK);
    assert_non_null(strstr(fedl_trainer_config_text(t), "data_sha256="));
    assert_int_equal(fedl_trainer_evaluate(t, &view, &before, NULL, &err), FEDL_OK);
    fedl_allocator_reset_peak(&alloc);
    for (int step = 0; step < 30; step++)
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_allocator_stats(&alloc).allocs, 0);
    assert_int_equal(fedl_trainer_evaluate(t, &view, &after, NULL, &err), FEDL_OK);
    print_message("client 0 (%zu samples): loss %.3f -> %.3f\n", view.count,
                  before.loss_sum / (double)before.samples, after.loss_sum / (double)after.samples);
    assert_int_equal(after.samples, view.count);
    assert_true(after.loss_sum < before.loss_sum);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&view);
    assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
    fedl_partition_free(&p);
    fedl_dataset_free(&ds);
}

/* A CSV file of count rows "label,a,b,c,d" in a fresh temporary directory,
 * the features a one-hot of the label (of 3) plus noise; path receives it. */
static void write_three_class_csv(char *path, size_t path_size, size_t count)
{
    const char *dir = test_make_temp_dir("partition");
    size_t size = 32 + count * 64, used;
    char *text = malloc(size);
    fedl_rng rng;
    assert_non_null(dir);
    assert_non_null(text);
    snprintf(path, path_size, "%s/three.csv", dir);
    used = (size_t)snprintf(text, size, "label,a,b,c,d\n");
    fedl_rng_init(&rng, 17, 0);
    for (size_t i = 0; i < count; i++) {
        int label = (int)fedl_rng_below(&rng, 3);
        used += (size_t)snprintf(text + used, size - used, "%d,%d,%d,%d,%u\n", label,
                                 (label == 0) * 5 + (int)fedl_rng_below(&rng, 3),
                                 (label == 1) * 5 + (int)fedl_rng_below(&rng, 3),
                                 (label == 2) * 5 + (int)fedl_rng_below(&rng, 3),
                                 fedl_rng_below(&rng, 8));
    }
    assert_int_equal(test_write_file(path, text, used), 0);
    free(text);
}

static void remove_csv(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    unlink(path);
    rmdir(dir);
}

/* The real source a device trains from: an indexed CSV file split by label
 * (labels read through the source), a client view trained on (reads and
 * prefetch hints mapped to the file's rows); a CSV stream is refused. */
static void test_csv_data_set_splits_and_trains_through_views(void **state)
{
    char path[512];
    fedl_dataset ds, view, stream;
    fedl_partition p;
    fedl_model *m;
    fedl_trainer *t;
    fedl_error err;
    fedl_eval_result before, after;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    float mine[4 * 8], theirs[4 * 8];
    int32_t my_labels[8], their_labels[8];
    uint32_t ask[8], mapped[8];
    int done = 0;
    (void)state;
    write_three_class_csv(path, sizeof path, 900);
    assert_int_equal(fedl_csv_dataset_open(path, NULL, &schema, NULL, NULL, &ds, &err), FEDL_OK);
    p = make(&ds, 3, "dirichlet:0.5", 6);
    assert_valid_partition(&p, ds.count, 3);
    assert_int_equal(fedl_partition_subset(&ds, &p, 1, NULL, &view, &err), FEDL_OK);
    assert_true(view.source.prefetch != NULL);
    for (uint32_t i = 0; i < 8; i++) {
        ask[i] = (uint32_t)((i * 5) % view.count);
        mapped[i] = p.indices[p.offsets[1] + ask[i]];
    }
    fedl_dataset_prefetch(&view, ask, 8);
    assert_int_equal(fedl_dataset_read(&view, ask, 8, mine, my_labels, &err), FEDL_OK);
    assert_int_equal(fedl_dataset_read(&ds, mapped, 8, theirs, their_labels, &err), FEDL_OK);
    assert_memory_equal(mine, theirs, sizeof mine);
    assert_memory_equal(my_labels, their_labels, sizeof my_labels);
    c.batch = 8;
    c.lr.base_lr = 0.05f;
    assert_int_equal(fedl_model_create("flatten dense(3)", view.shape, 1, NULL, &m, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(m, &view, &c, NULL, &t, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_evaluate(t, &view, &before, NULL, &err), FEDL_OK);
    for (int step = 0; step < 40; step++)
        assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_evaluate(t, &view, &after, NULL, &err), FEDL_OK);
    assert_true(after.loss_sum < before.loss_sum);
    fedl_trainer_destroy(t);
    fedl_model_destroy(m);
    fedl_dataset_free(&view);
    fedl_partition_free(&p);
    assert_int_equal(fedl_csv_stream_open(path, NULL, &schema, NULL, 16, 1, NULL, &stream, &err),
                     FEDL_OK);
    assert_int_equal(fedl_dataset_subset(&stream, ask, 8, NULL, &view, &err), FEDL_ERR_UNSUPPORTED);
    fedl_dataset_free(&stream);
    fedl_dataset_free(&ds);
    remove_csv(path);
}

/* ---------------------------------------------------------- allocation failures */

static void test_every_allocation_failure_leaks_nothing(void **state)
{
    static const char *const kinds[] = {"iid", "dirichlet:0.3", "shards:2"};
    fedl_dataset ds;
    (void)state;
    make_labelled(&ds, 400, 10, 0, 1);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fedl_partition_spec spec = spec_of(kinds[k]);
        int succeeded = 0;
        for (uint64_t fail_at = 1; !succeeded; fail_at++) {
            test_failing_alloc failing = {0, fail_at};
            fedl_allocator alloc;
            fedl_partition p;
            fedl_dataset view;
            fedl_error err;
            fedl_status status;
            assert_true(fail_at < 50);
            fedl_allocator_init(&alloc, test_failing_alloc_fn, &failing);
            status = fedl_partition_make(&ds, 7, &spec, 3, &alloc, &p, &err);
            if (status == FEDL_OK) {
                status = fedl_partition_subset(&ds, &p, 6, &alloc, &view, &err);
                if (status == FEDL_OK) {
                    succeeded = 1;
                    assert_int_equal(view.count, client_size(&p, 6));
                    fedl_dataset_free(&view);
                } else {
                    assert_null(view.source.impl);
                }
                fedl_partition_free(&p);
            } else {
                assert_null(p.offsets);
                assert_null(p.indices);
            }
            if (!succeeded) {
                assert_int_equal(status, FEDL_ERR_NOMEM);
                assert_non_null(strstr(err.message, "cannot allocate"));
            }
            assert_int_equal(fedl_allocator_stats(&alloc).live_bytes, 0);
        }
    }
    fedl_dataset_free(&ds);
}

/* -------------------------------------------------------------- Fashion-MNIST */

static void test_fashion_mnist_ten_clients_dirichlet(void **state)
{
    const char *dir = test_fashion_mnist_dir();
    fedl_dataset ds, view;
    fedl_partition p;
    fedl_error err;
    uint64_t start, made, viewed;
    (void)state;
    if (dir == NULL) {
        print_message("SKIP: Fashion-MNIST not installed (apt-get install "
                      "dataset-fashion-mnist)\n");
        skip();
    }
    assert_int_equal(fedl_dataset_load_mnist_dir(dir, FEDL_SPLIT_TRAIN, NULL, &ds, &err), FEDL_OK);
    start = fedl_time_ns();
    p = make(&ds, 10, "dirichlet:0.3", 2024);
    made = fedl_time_ns();
    assert_valid_partition(&p, ds.count, 10);
    for (int c = 0; c < 10; c++) {
        assert_int_equal(fedl_partition_subset(&ds, &p, c, NULL, &view, &err), FEDL_OK);
        fedl_dataset_free(&view);
    }
    viewed = fedl_time_ns();
    print_message("Fashion-MNIST, 10 clients dirichlet:0.3: partition %.1f ms, 10 views %.1f ms; "
                  "mean largest class share %.3f; sizes",
                  (double)(made - start) / 1e6, (double)(viewed - made) / 1e6,
                  mean_largest_class_share(&ds, &p));
    for (int c = 0; c < 10; c++)
        print_message(" %zu", client_size(&p, c));
    print_message("\n");
    assert_true(mean_largest_class_share(&ds, &p) > 0.3);
    assert_true(made - start < 2000000000ull);
    fedl_partition_free(&p);
    fedl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_the_three_kinds),
        cmocka_unit_test(test_parse_rejects_naming_text_and_position),
        cmocka_unit_test(test_parse_rejects_null_arguments),
        cmocka_unit_test(test_iid_deals_near_equal_parts),
        cmocka_unit_test(test_every_kind_assigns_every_sample_once),
        cmocka_unit_test(test_same_seed_same_partition_other_seed_another),
        cmocka_unit_test(test_partition_matches_reference_values),
        cmocka_unit_test(test_dirichlet_small_alpha_skews_large_alpha_mixes),
        cmocka_unit_test(test_dirichlet_proportions_have_the_beta_moments),
        cmocka_unit_test(test_dirichlet_gives_every_client_a_sample),
        cmocka_unit_test(test_shards_give_each_client_at_most_k_classes),
        cmocka_unit_test(test_make_rejects_bad_arguments_with_a_message),
        cmocka_unit_test(test_partition_reads_labels_through_a_source),
        cmocka_unit_test(test_partition_reports_a_failed_label_read),
        cmocka_unit_test(test_stream_cannot_be_split_by_label_or_viewed),
        cmocka_unit_test(test_regression_set_splits_iid_only),
        cmocka_unit_test(test_view_reads_parent_samples_at_mapped_indices),
        cmocka_unit_test(test_view_passes_prefetch_hints_on),
        cmocka_unit_test(test_view_rejects_bad_lists),
        cmocka_unit_test(test_trainer_learns_on_a_client_view),
        cmocka_unit_test(test_csv_data_set_splits_and_trains_through_views),
        cmocka_unit_test(test_every_allocation_failure_leaks_nothing),
        cmocka_unit_test(test_fashion_mnist_ten_clients_dirichlet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
