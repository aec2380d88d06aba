/* arena.c - a bump allocator over one block, and byte-size parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/mem.h"

#define ARENA_ALIGN 64

fedl_status fedl_arena_init(fedl_arena *arena, fedl_allocator *alloc, size_t capacity,
                            fedl_error *err)
{
    memset(arena, 0, sizeof *arena);
    arena->alloc = alloc;
    if (capacity == 0)
        return FEDL_OK;
    arena->base = fedl_mem_alloc_aligned(alloc, capacity, ARENA_ALIGN);
    if (arena->base == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "arena: cannot reserve %zu bytes", capacity);
    arena->capacity = capacity;
    return FEDL_OK;
}

void *fedl_arena_push(fedl_arena *arena, size_t size, size_t alignment)
{
    size_t start;
    void *p;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > ARENA_ALIGN)
        return NULL;
    start = (arena->used + alignment - 1) & ~(alignment - 1);
    if (start > arena->capacity || size > arena->capacity - start)
        return NULL;
    p = arena->base + start;
    arena->used = start + size;
    if (arena->used > arena->high_water)
        arena->high_water = arena->used;
    memset(p, 0, size);
    return p;
}

void fedl_arena_reset(fedl_arena *arena)
{
    arena->used = 0;
}

void fedl_arena_destroy(fedl_arena *arena)
{
    fedl_mem_free_aligned(arena->alloc, arena->base);
    memset(arena, 0, sizeof *arena);
}

fedl_status fedl_parse_size(const char *text, size_t *out, fedl_error *err)
{
    char *end;
    unsigned long long value;
    unsigned shift = 0;
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "size '%s': expected a number such as 48M",
                              text ? text : "(null)");
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "size '%s': number out of range", text);
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "size '%s': unknown unit at position %d (use K, M or G)", text,
                              (int)(end - text));
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "size '%s': unexpected '%c' at position %d", text, *end,
                              (int)(end - text));
    if (shift > 0 && value > (SIZE_MAX >> shift))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "size '%s': too large", text);
    *out = (size_t)(value << shift);
    return FEDL_OK;
}
