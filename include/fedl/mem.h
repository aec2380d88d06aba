/*
 * fedl/mem.h - the accounted allocator and arenas.
 *
 * Every heap byte fedl uses goes through a fedl_allocator. Its hook has the
 * shape of Lua's lua_Alloc:
 *
 *     void *alloc(void *ud, void *ptr, size_t old_size, size_t new_size);
 *
 *   new_size == 0          free ptr (old_size is its size), return NULL
 *   ptr == NULL            allocate new_size bytes
 *   otherwise              resize ptr from old_size to new_size
 *
 * A NULL return for new_size > 0 is an allocation failure; fedl turns it
 * into FEDL_ERR_NOMEM and leaves the caller's objects as they were. The
 * allocator counts live bytes, the peak, and the number of allocations and
 * frees whatever hook is installed, so tests can check that a training step
 * allocates nothing and that nothing leaks.
 *
 * The caller owns the fedl_allocator struct and must keep it alive longer
 * than every object created with it. fedl_allocator_default() returns a
 * process-wide allocator backed by malloc (its counters are not thread-safe;
 * give each thread its own allocator when that matters).
 *
 * An arena hands out aligned slices of one block and frees them all at once.
 */
#ifndef FEDL_MEM_H
#define FEDL_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(*fedl_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);

typedef struct fedl_mem_stats {
    size_t live_bytes; /* bytes currently allocated */
    size_t peak_bytes; /* maximum of live_bytes since init or reset */
    uint64_t allocs;   /* successful allocations (ptr == NULL, new_size > 0) */
    uint64_t reallocs; /* successful resizes */
    uint64_t frees;    /* frees */
    uint64_t failures; /* allocation or resize requests that returned NULL */
} fedl_mem_stats;

typedef struct fedl_allocator {
    fedl_alloc_fn fn;
    void *ud;
    size_t limit_bytes; /* 0 = unlimited; requests past it fail like NULL */
    fedl_mem_stats stats;
} fedl_allocator;

/* The malloc/realloc/free hook used by default. */
void *fedl_alloc_malloc(void *ud, void *ptr, size_t old_size, size_t new_size);

/* Initialise a with hook fn (NULL = fedl_alloc_malloc) and zeroed counters. */
void fedl_allocator_init(fedl_allocator *a, fedl_alloc_fn fn, void *ud);

/* The process-wide default allocator (malloc-backed). */
fedl_allocator *fedl_allocator_default(void);

/* Allocate, resize and free through a (a == NULL means the default). All sizes
 * are in bytes. fedl_mem_alloc returns zeroed memory. fedl_mem_free(a, NULL, 0)
 * is a no-op. */
void *fedl_mem_alloc(fedl_allocator *a, size_t size);
void *fedl_mem_realloc(fedl_allocator *a, void *ptr, size_t old_size, size_t new_size);
void fedl_mem_free(fedl_allocator *a, void *ptr, size_t size);

/* Aligned allocation (alignment a power of two <= 4096). The block's true
 * size is recorded just before the returned pointer; free with
 * fedl_mem_free_aligned. Returns NULL on failure. */
void *fedl_mem_alloc_aligned(fedl_allocator *a, size_t size, size_t alignment);
void fedl_mem_free_aligned(fedl_allocator *a, void *ptr);

fedl_mem_stats fedl_allocator_stats(const fedl_allocator *a);
/* Set peak to the current live bytes and zero the event counters. */
void fedl_allocator_reset_peak(fedl_allocator *a);

/* --------------------------------------------------------------------- arena */

/* A bump allocator over one block taken from an allocator. */
typedef struct fedl_arena {
    fedl_allocator *alloc;
    unsigned char *base; /* block start (64-byte aligned) */
    size_t capacity;     /* bytes */
    size_t used;         /* bytes handed out, including alignment padding */
    size_t high_water;   /* maximum of used */
} fedl_arena;

/* Reserve capacity bytes. On failure the arena is left empty. */
fedl_status fedl_arena_init(fedl_arena *arena, fedl_allocator *alloc, size_t capacity,
                            fedl_error *err);
/* A zeroed slice of size bytes aligned to alignment (power of two <= 64), or
 * NULL when the arena is full. */
void *fedl_arena_push(fedl_arena *arena, size_t size, size_t alignment);
/* Release everything handed out (the block stays reserved). */
void fedl_arena_reset(fedl_arena *arena);
void fedl_arena_destroy(fedl_arena *arena);

/* Parse a byte size such as "48M", "1G", "512k", "4096" (binary units). */
fedl_status fedl_parse_size(const char *text, size_t *out, fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
