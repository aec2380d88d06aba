/*
 * alloc.c - the accounted allocator: every heap byte of fedl passes here, is
 * counted (live, peak, events) and may be capped by limit_bytes.
 */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "fedl/mem.h"

/* Bytes given back at once past which glibc is asked to return free heap
 * pages to the system: free() alone only trims the top of the heap, so a
 * block freed or shrunk in the middle would stay in the process's RSS. */
#define TRIM_THRESHOLD ((size_t)1 << 20)

static void give_back(size_t released)
{
#ifdef __GLIBC__
    if (released >= TRIM_THRESHOLD)
        malloc_trim(0);
#else
    (void)released;
#endif
}

void *fedl_alloc_malloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    void *result;
    (void)ud;
    if (new_size == 0) {
        free(ptr);
        give_back(old_size);
        return NULL;
    }
    result = realloc(ptr, new_size);
    if (result != NULL && ptr != NULL && new_size < old_size)
        give_back(old_size - new_size);
    return result;
}

void fedl_allocator_init(fedl_allocator *a, fedl_alloc_fn fn, void *ud)
{
    memset(a, 0, sizeof *a);
    a->fn = fn != NULL ? fn : fedl_alloc_malloc;
    a->ud = ud;
}

fedl_allocator *fedl_allocator_default(void)
{
    static fedl_allocator default_allocator = {fedl_alloc_malloc, NULL, 0, {0, 0, 0, 0, 0, 0}};
    return &default_allocator;
}

static fedl_allocator *resolve(fedl_allocator *a)
{
    return a != NULL ? a : fedl_allocator_default();
}

static int over_limit(const fedl_allocator *a, size_t old_size, size_t new_size)
{
    if (a->limit_bytes == 0 || new_size <= old_size)
        return 0;
    return a->stats.live_bytes - old_size + new_size > a->limit_bytes;
}

void *fedl_mem_realloc(fedl_allocator *a, void *ptr, size_t old_size, size_t new_size)
{
    void *result;
    a = resolve(a);
    if (new_size == 0) {
        fedl_mem_free(a, ptr, old_size);
        return NULL;
    }
    if (ptr == NULL)
        old_size = 0;
    if (over_limit(a, old_size, new_size)) {
        a->stats.failures++;
        return NULL;
    }
    result = a->fn(a->ud, ptr, old_size, new_size);
    if (result == NULL) {
        a->stats.failures++;
        return NULL;
    }
    if (ptr == NULL)
        a->stats.allocs++;
    else
        a->stats.reallocs++;
    a->stats.live_bytes = a->stats.live_bytes - old_size + new_size;
    if (a->stats.live_bytes > a->stats.peak_bytes)
        a->stats.peak_bytes = a->stats.live_bytes;
    return result;
}

void *fedl_mem_alloc(fedl_allocator *a, size_t size)
{
    void *p;
    if (size == 0)
        size = 1;
    p = fedl_mem_realloc(a, NULL, 0, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void fedl_mem_free(fedl_allocator *a, void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
    a = resolve(a);
    if (size == 0)
        size = 1; /* fedl_mem_alloc rounds 0 up to 1 */
    a->fn(a->ud, ptr, size, 0);
    a->stats.frees++;
    a->stats.live_bytes -= size < a->stats.live_bytes ? size : a->stats.live_bytes;
}

/* Aligned blocks: [padding][size_t total][size_t offset][user bytes...]; the
 * two words just before the user pointer say how to free the block. */
void *fedl_mem_alloc_aligned(fedl_allocator *a, size_t size, size_t alignment)
{
    size_t header = 2 * sizeof(size_t);
    size_t total;
    unsigned char *raw, *user;
    uintptr_t address;
    if (alignment < sizeof(size_t) || (alignment & (alignment - 1)) != 0 || alignment > 4096)
        return NULL;
    if (size > SIZE_MAX - header - alignment)
        return NULL;
    total = size + header + alignment;
    raw = fedl_mem_realloc(a, NULL, 0, total);
    if (raw == NULL)
        return NULL;
    address = ((uintptr_t)(raw + header) + alignment - 1) & ~(uintptr_t)(alignment - 1);
    user = (unsigned char *)address;
    memset(user, 0, size);
    ((size_t *)user)[-1] = (size_t)(user - raw);
    ((size_t *)user)[-2] = total;
    return user;
}

void fedl_mem_free_aligned(fedl_allocator *a, void *ptr)
{
    unsigned char *user = ptr;
    if (ptr == NULL)
        return;
    fedl_mem_free(a, user - ((size_t *)user)[-1], ((size_t *)user)[-2]);
}

fedl_mem_stats fedl_allocator_stats(const fedl_allocator *a)
{
    if (a == NULL)
        a = fedl_allocator_default();
    return a->stats;
}

void fedl_allocator_reset_peak(fedl_allocator *a)
{
    a = resolve(a);
    a->stats.peak_bytes = a->stats.live_bytes;
    a->stats.allocs = 0;
    a->stats.reallocs = 0;
    a->stats.frees = 0;
    a->stats.failures = 0;
}
