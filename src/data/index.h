/*
 * index.h - the data module's sample indices are uint32 (orders,
 * partitions): whether a count fits them, shared by batcher.c and
 * partition.c.
 */
#ifndef FEDL_DATA_INDEX_H
#define FEDL_DATA_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Whether n does not fit a uint32 sample index: never on a 32-bit target,
 * where a comparison would be constant and gcc's -Wtype-limits an error. */
static inline int fedl_exceeds_u32(size_t n)
{
#if SIZE_MAX > UINT32_MAX
    return n > UINT32_MAX;
#else
    (void)n;
    return 0;
#endif
}

#endif
