/*
 * batcher.c - the deterministic batcher: a per-epoch permutation computed
 * from (seed, epoch) alone, and batches cut from it in order.
 *
 * Because the order is a pure function of (seed, epoch), the batcher's whole
 * state is (epoch, position): a checkpoint stores those two numbers and a
 * resumed run sees exactly the batches the killed run would have seen.
 */
#include <string.h>

#include "fedl/data.h"
#include "data/index.h"

#define FEDL_SHUFFLE_STREAM 0x5348554646ULL /* "SHUFF" */

void fedl_shuffle_order(uint64_t seed, uint64_t epoch, uint32_t *order, size_t n)
{
    fedl_rng rng;
    if (order == NULL || n == 0 || n > UINT32_MAX)
        return;
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    /* Fisher-Yates from the back: position i swaps with a uniform j <= i.
     * fedl_rng_below is unbiased and uses 32-bit arithmetic only, so the
     * permutation is the same on every platform and word size. */
    fedl_rng_init(&rng, seed, FEDL_SHUFFLE_STREAM + epoch);
    for (size_t i = n - 1; i > 0; i--) {
        uint32_t j = fedl_rng_below(&rng, (uint32_t)(i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void compute_order(fedl_batcher *b)
{
    if (b->order == NULL)
        return;
    if (b->shuffle) {
        fedl_shuffle_order(b->seed, b->epoch, b->order, b->count);
    } else {
        for (size_t i = 0; i < b->count; i++)
            b->order[i] = (uint32_t)i;
    }
}

/* Start a batcher over ds whose order is lent (lend 1: order, the caller's)
 * or allocated from alloc. */
static fedl_status init(fedl_batcher *b, const fedl_dataset *ds, uint64_t seed, int shuffle,
                        uint32_t *lent, int lend, fedl_allocator *alloc, fedl_error *err)
{
    if (b == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_batcher_init: b is NULL");
    memset(b, 0, sizeof *b);
    if (ds == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_batcher_init: dataset is NULL");
    if (fedl_exceeds_u32(ds->count) || ds->count > SIZE_MAX / sizeof(uint32_t))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_batcher_init: dataset has %zu samples, more than the %lu "
                              "a batcher can order",
                              ds->count, (unsigned long)UINT32_MAX);
    if (lend && ds->count > 0 && lent == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_batcher_init: no memory lent for the order");
    if (alloc == NULL && !lend)
        alloc = fedl_allocator_default();
    if (lend) {
        b->order = ds->count > 0 ? lent : NULL;
    } else if (ds->count > 0) {
        b->order = fedl_mem_realloc(alloc, NULL, 0, ds->count * sizeof(uint32_t)); /* (count) */
        if (b->order == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM,
                                  "fedl_batcher_init: cannot allocate the order of %zu samples",
                                  ds->count);
    }
    b->ds = ds;
    b->seed = seed;
    b->shuffle = shuffle != 0;
    b->alloc = lend ? NULL : alloc;
    b->count = ds->count;
    b->epoch = 0;
    b->position = 0;
    compute_order(b);
    fedl_dataset_seek(ds, 0, 0);
    return FEDL_OK;
}

fedl_status fedl_batcher_init(fedl_batcher *b, const fedl_dataset *ds, uint64_t seed, int shuffle,
                              fedl_allocator *alloc, fedl_error *err)
{
    return init(b, ds, seed, shuffle, NULL, 0, alloc, err);
}

fedl_status fedl_batcher_init_in(fedl_batcher *b, const fedl_dataset *ds, uint64_t seed,
                                 int shuffle, uint32_t *order, fedl_error *err)
{
    return init(b, ds, seed, shuffle, order, 1, NULL, err);
}

void fedl_batcher_free(fedl_batcher *b)
{
    if (b == NULL)
        return;
    if (b->alloc != NULL)
        fedl_mem_free(b->alloc, b->order, b->count * sizeof(uint32_t));
    memset(b, 0, sizeof *b);
}

void fedl_batcher_seek(fedl_batcher *b, uint64_t epoch, size_t position)
{
    if (b == NULL)
        return;
    if (epoch != b->epoch) {
        b->epoch = epoch;
        if (b->shuffle)
            compute_order(b);
    }
    b->position = position < b->count ? position : b->count;
    fedl_dataset_seek(b->ds, b->epoch, b->position);
}

size_t fedl_batcher_next(fedl_batcher *b, size_t max, float *x, int32_t *labels)
{
    size_t n;
    if (b == NULL || b->order == NULL || b->position >= b->count)
        return 0;
    n = b->count - b->position;
    if (n > max)
        n = max;
    fedl_dataset_gather(b->ds, b->order + b->position, n, x, labels);
    b->position += n;
    return n;
}

fedl_status fedl_batcher_read(fedl_batcher *b, size_t max, float *x, int32_t *labels,
                              float *targets, size_t *got, fedl_error *err)
{
    size_t n;
    fedl_status status;
    *got = 0;
    if (b == NULL || b->order == NULL || b->position >= b->count)
        return FEDL_OK;
    n = b->count - b->position;
    if (n > max)
        n = max;
    status = targets != NULL
                 ? fedl_dataset_read_targets(b->ds, b->order + b->position, n, x, targets, err)
                 : fedl_dataset_read(b->ds, b->order + b->position, n, x, labels, err);
    if (status != FEDL_OK)
        return status;
    b->position += n;
    *got = n;
    /* the next read will most likely ask for as many */
    if (b->position < b->count)
        fedl_dataset_prefetch(b->ds, b->order + b->position,
                              b->count - b->position < max ? b->count - b->position : max);
    return FEDL_OK;
}
