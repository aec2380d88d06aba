/*
 * fedl/data.h - training data: the IDX file format (MNIST, Fashion-MNIST),
 * in-memory datasets and a deterministic batcher.
 *
 * IDX files are read plain or gzipped (zlib); every header field is checked
 * against the file before the payload is touched, and a bad file gets an
 * error naming the file and the field (or byte offset).
 *
 * A dataset keeps samples as uint8 (one byte per pixel, normalised to
 * [0, 1] float only when a batch is built), so Fashion-MNIST's 60,000
 * training images take 47 MB, not 188 MB. The dataset owns its buffers,
 * taken from the allocator given at load time.
 *
 * The batcher visits a dataset in an order shuffled per epoch from
 * (seed, epoch) alone, so any position of any epoch can be recomputed.
 *
 * For federated simulation a dataset is partitioned among clients (iid,
 * Dirichlet or shards, from a seed), and each client trains on a
 * zero-copy subset view of it.
 */
#ifndef FEDL_DATA_H
#define FEDL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/mem.h"
#include "fedl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------- IDX */

#define FEDL_IDX_MAX_DIMS 4

/* An IDX file's payload. Only unsigned-byte payloads (type 0x08) are
 * accepted: the only type MNIST-family data sets use. */
typedef struct fedl_idx {
    int ndim;
    uint32_t dims[FEDL_IDX_MAX_DIMS];
    uint8_t *data; /* (dims[0], ..., dims[ndim-1]) */
    size_t size;   /* bytes of data */
} fedl_idx;

/* Read path (gzip detected from its magic bytes, not the name). The payload
 * is inflated as a stream into one buffer of exactly the promised size, and
 * that size is checked against the file's size before it is allocated. On
 * any failure *out is zeroed and nothing stays allocated. */
fedl_status fedl_idx_read(const char *path, fedl_allocator *alloc, fedl_idx *out, fedl_error *err);
/* Parse an IDX image already in memory (after decompression); name is used
 * in messages. The payload is copied. */
fedl_status fedl_idx_parse(const uint8_t *bytes, size_t length, const char *name,
                           fedl_allocator *alloc, fedl_idx *out, fedl_error *err);
/* Free data (with the allocator it was read with) and zero idx. */
void fedl_idx_free(fedl_idx *idx, fedl_allocator *alloc);

/* ------------------------------------------------------------------- dataset */

/* Samples read on demand instead of held in memory (a CSV file through its
 * row index, ...). read writes samples indices[0..n) as floats x (n, C, H,
 * W) and their class labels (n), or for a regression data set their
 * targets (n, targets); any output may be NULL; it may fail (a file that
 * changed, an I/O error) with a message naming the file and line. */
typedef struct fedl_sample_source {
    fedl_status (*read)(void *impl, const uint32_t *indices, size_t n, float *x, int32_t *labels,
                        float *targets, fedl_error *err);
    /* optional: samples indices[0..n) will be read next; a source may start
     * reading them in the background (indices are copied) */
    void (*prefetch)(void *impl, const uint32_t *indices, size_t n);
    /* optional: the batcher moved to (epoch, position) of its order; a
     * source that reads in its own order (a stream) starts over there */
    void (*seek)(void *impl, uint64_t epoch, size_t position);
    void (*destroy)(void *impl); /* frees impl; called by fedl_dataset_free */
    void *impl;
    uint8_t identity[FEDL_SHA256_BYTES]; /* SHA-256 of what defines the samples */
    size_t held_bytes;                   /* memory the source holds (index, buffers) */
} fedl_sample_source;

typedef struct fedl_dataset {
    fedl_allocator *alloc;
    size_t count;        /* samples */
    fedl_shape shape;    /* per sample (C, H, W) */
    size_t sample_bytes; /* C * H * W */
    uint8_t *pixels;     /* (count, C, H, W), owned */
    uint8_t *labels;     /* (count), owned */
    int classes;         /* 1 + the largest label (0 for regression) */
    int targets;         /* > 0: a regression data set, that many float targets a sample
                            (from its source); 0: class labels */
    float scale;         /* a pixel p becomes p * scale + shift */
    float shift;
    size_t capacity;           /* samples the pixel buffer holds (0 means count) */
    size_t label_capacity;     /* samples the label buffer holds (0 means count) */
    fedl_sample_source source; /* source.read != NULL: samples come from it; pixels,
                                  labels, scale and shift are unused */
} fedl_dataset;

typedef enum fedl_split { FEDL_SPLIT_TRAIN, FEDL_SPLIT_TEST } fedl_split;

/* Load an images/labels IDX pair as a dataset (images (N, H, W) become
 * (N, 1, H, W)); counts must agree. Pixels are scaled to [0, 1]. */
fedl_status fedl_dataset_load_idx(const char *images_path, const char *labels_path,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err);
/* Load the train or test split of an MNIST-layout directory: files
 * train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]. */
fedl_status fedl_dataset_load_mnist_dir(const char *dir, fedl_split split, fedl_allocator *alloc,
                                        fedl_dataset *out, fedl_error *err);
/* Keep only the first n samples and give the memory of the others back
 * (n >= count does nothing; a resize the allocator refuses keeps the buffers
 * whole until free). classes is left as it was: the label space does not
 * shrink. */
void fedl_dataset_truncate(fedl_dataset *ds, size_t n);
/* Release the buffers and zero ds. */
void fedl_dataset_free(fedl_dataset *ds);

/* Write samples indices[0..n) as floats x (n, C, H, W) and labels (n) of an
 * in-memory data set. Either output may be NULL to skip it. An index >=
 * count (a caller bug) is written as zeros with label -1 rather than read
 * out of bounds. */
void fedl_dataset_gather(const fedl_dataset *ds, const uint32_t *indices, size_t n, float *x,
                         int32_t *labels);
/* The same for any data set, in memory or read from a source; an index >=
 * count is FEDL_ERR_INVALID_ARG. */
fedl_status fedl_dataset_read(const fedl_dataset *ds, const uint32_t *indices, size_t n, float *x,
                              int32_t *labels, fedl_error *err);
/* The same for a regression data set: targets (n, ds->targets). */
fedl_status fedl_dataset_read_targets(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                                      float *x, float *targets, fedl_error *err);
/* Tell the source that reading restarts at (epoch, position) of the
 * batcher's order (fedl_batcher_init and fedl_batcher_seek call it; a full
 * pass from the start, as evaluation makes, is (0, 0)). */
void fedl_dataset_seek(const fedl_dataset *ds, uint64_t epoch, size_t position);
/* A hint that samples indices[0..n) are read next (a source with a
 * background reader starts on them); nothing for data in memory. */
void fedl_dataset_prefetch(const fedl_dataset *ds, const uint32_t *indices, size_t n);
/* Bytes the data set holds in memory: the samples and labels, or what its
 * source holds. */
size_t fedl_dataset_held_bytes(const fedl_dataset *ds);

/* ------------------------------------------------------------------- batcher */

typedef struct fedl_batcher {
    const fedl_dataset *ds;
    uint64_t seed;
    int shuffle;           /* 0 = dataset order */
    uint64_t epoch;        /* current epoch */
    size_t position;       /* next index into order */
    uint32_t *order;       /* (count), a permutation for this epoch */
    fedl_allocator *alloc; /* order's allocator; NULL when the order is lent */
    size_t count;          /* samples in order: ds->count at init */
} fedl_batcher;

/* Start at epoch 0, position 0. The batcher reads ds (which must outlive it
 * and must not be truncated after init) and owns only its order array. A
 * dataset may hold at most UINT32_MAX samples. */
fedl_status fedl_batcher_init(fedl_batcher *b, const fedl_dataset *ds, uint64_t seed, int shuffle,
                              fedl_allocator *alloc, fedl_error *err);
/* The same with the order in caller-owned memory of ds->count uint32 (the
 * caller may move it and set b->order to the copy; the content is only a
 * cache of (seed, epoch)). */
fedl_status fedl_batcher_init_in(fedl_batcher *b, const fedl_dataset *ds, uint64_t seed,
                                 int shuffle, uint32_t *order, fedl_error *err);
void fedl_batcher_free(fedl_batcher *b);
/* Move to (epoch, position): the order is recomputed from (seed, epoch), so
 * (epoch, position) saved in a checkpoint restores the exact stream of
 * batches. A position past the end is clamped to count. */
void fedl_batcher_seek(fedl_batcher *b, uint64_t epoch, size_t position);
/* Fill up to max samples of the current epoch into x (max, C, H, W) and
 * labels (max); returns the number written (the last batch may be short).
 * It returns 0 once the epoch is used up, and keeps returning 0: the batcher
 * never starts an epoch by itself. The caller starts the next one with
 *
 *     fedl_batcher_seek(b, b->epoch + 1, 0);
 *
 * so that the epoch boundary is a visible point in the training loop (end of
 * epoch evaluation, checkpoint, learning-rate schedule). */
size_t fedl_batcher_next(fedl_batcher *b, size_t max, float *x, int32_t *labels);
/* The same for any data set, in memory or from a source: *got samples (0
 * at the end of the epoch); labels for a classification data set, targets
 * (max, ds->targets) for a regression one. On failure the position stays
 * where it was. */
fedl_status fedl_batcher_read(fedl_batcher *b, size_t max, float *x, int32_t *labels,
                              float *targets, size_t *got, fedl_error *err);
/* The permutation of epoch for n items from seed (Fisher-Yates over Philox
 * stream (seed, 0x5348554646ULL + epoch)); identical on every platform.
 * n must be at most UINT32_MAX (larger n leaves order untouched). */
void fedl_shuffle_order(uint64_t seed, uint64_t epoch, uint32_t *order, size_t n);

/* -------------------------------------------------------------- partitioning */

/* How one data set is split among the clients of a federated simulation.
 *
 *   iid           a seeded shuffle of all samples dealt into equal parts
 *                 (sizes differ by at most 1)
 *   dirichlet:a   label skew (Hsu et al. 2019, as FedML and Flower's
 *                 DirichletPartitioner do): for each class, proportions
 *                 p ~ Dir(a) over the clients cut that class's shuffled
 *                 samples; small a (0.1) gives each client a few classes,
 *                 large a (100) nearly the global mix. a in [1e-4, 1e6]
 *                 (FEDL_PARTITION_ALPHA_MIN, _MAX).
 *   shards:k      pathological skew (McMahan et al. 2017): the samples
 *                 sorted by label (stably) are cut into clients * k shards of
 *                 equal size (within 1), each client gets k of them chosen by
 *                 a seeded permutation
 *
 * dirichlet and shards need class labels; a regression data set (targets >
 * 0) can only be split iid. */
typedef enum fedl_partition_kind {
    FEDL_PARTITION_IID,
    FEDL_PARTITION_DIRICHLET,
    FEDL_PARTITION_SHARDS
} fedl_partition_kind;

#define FEDL_PARTITION_ALPHA_MIN 1e-4 /* smallest Dirichlet concentration accepted */
#define FEDL_PARTITION_ALPHA_MAX 1e6  /* largest */

typedef struct fedl_partition_spec {
    fedl_partition_kind kind;
    double alpha; /* FEDL_PARTITION_DIRICHLET: concentration, in [1e-4, 1e6] */
    int shards;   /* FEDL_PARTITION_SHARDS: shards per client, > 0 */
} fedl_partition_spec;

/* Parse "iid", "dirichlet:0.3" (alpha a plain decimal: digits with an
 * optional fraction, no sign or exponent, at most 15 significant digits, so
 * it converts exactly the same everywhere and in any locale) or "shards:2".
 * A bad text is FEDL_ERR_INVALID_ARG naming the text and the character
 * (1-based) where it went wrong. */
fedl_status fedl_partition_parse(const char *text, fedl_partition_spec *out, fedl_error *err);

/* Which samples each client owns. */
typedef struct fedl_partition {
    int clients;
    size_t *offsets;   /* (clients + 1): client c owns indices[offsets[c] .. offsets[c + 1]) */
    uint32_t *indices; /* (total samples) each client's sample indices, increasing */
    fedl_allocator *alloc;
} fedl_partition;

/* Split ds (in memory or read from a source) among clients, deterministic
 * from seed: the same (ds, clients, spec, seed) gives the same partition.
 * Every sample goes to exactly one client and every client gets at least one
 * sample (dirichlet redraws with the next RNG stream up to 10 times, then
 * moves single samples from the largest client to the empty ones; see
 * partition.c). Labels are read through fedl_dataset_read, in chunks, when
 * ds is not in memory; a stream (a source that reads in its own order)
 * cannot be split by label. clients < 1, more clients than samples, a bad
 * spec, shards:k with fewer than clients * k samples, or a label split of a
 * regression set are FEDL_ERR_INVALID_ARG. *out is zeroed on failure and
 * nothing stays allocated (alloc NULL = the default allocator). */
fedl_status fedl_partition_make(const fedl_dataset *ds, int clients,
                                const fedl_partition_spec *spec, uint64_t seed,
                                fedl_allocator *alloc, fedl_partition *out, fedl_error *err);
/* Free the arrays and zero p. */
void fedl_partition_free(fedl_partition *p);

/* A data set that is samples indices[0..n) of ds, read through ds: nothing
 * is copied but the index list (held_bytes = n * 4). Sample i of the view is
 * sample indices[i] of ds; count = n; shape, classes, targets, scale and
 * shift are ds's. ds must outlive the view (fedl_dataset_free the view
 * first). Reads are mapped through the list in chunks of up to 1024 samples
 * (on the stack: a step allocates nothing) and prefetch hints are passed on.
 * A stream cannot be viewed (it ignores the indices asked of it):
 * FEDL_ERR_UNSUPPORTED. The view's source identity is the SHA-256 of ds's
 * identity and the indices, or for ds in memory of the indices and the
 * viewed samples' bytes and labels. n == 0 or an index >= ds->count is
 * FEDL_ERR_INVALID_ARG. */
fedl_status fedl_dataset_subset(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                                fedl_allocator *alloc, fedl_dataset *out, fedl_error *err);
/* Client c's part of p (made from ds) as such a view: the same as
 * fedl_dataset_subset of indices[offsets[c] .. offsets[c + 1]). c outside
 * [0, clients) is FEDL_ERR_INVALID_ARG. */
fedl_status fedl_partition_subset(const fedl_dataset *ds, const fedl_partition *p, int c,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
