/* arena.c - a bump allocator over one block, and byte-size parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/mem.h"

#define ARENA_ALIGN 64

/* Offset of the first 64-byte aligned address in block. */
static size_t align_offset(const void *block)
{
    return (size_t)(-(uintptr_t)block & (ARENA_ALIGN - 1));
}

fedl_status fedl_arena_init(fedl_arena *arena, fedl_allocator *alloc, size_t capacity,
                            fedl_error *err)
{
    memset(arena, 0, sizeof *arena);
    arena->alloc = alloc;
    return fedl_arena_resize(arena, capacity, err);
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

void fedl_arena_truncate(fedl_arena *arena, size_t mark)
{
    if (mark < arena->used)
        arena->used = mark;
}

fedl_status fedl_arena_resize(fedl_arena *arena, size_t capacity, fedl_error *err)
{
    size_t old_bytes = arena->block ? arena->capacity + FEDL_ARENA_SLACK : 0, old_offset;
    unsigned char *block;
    if (capacity < arena->used)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "arena: cannot shrink to %zu bytes, %zu are in use", capacity,
                              arena->used);
    if (capacity == arena->capacity)
        return FEDL_OK;
    if (capacity > SIZE_MAX - FEDL_ARENA_SLACK)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "arena: %zu bytes is too large", capacity);
    if (capacity == 0) {
        fedl_mem_free(arena->alloc, arena->block, old_bytes);
        arena->block = NULL;
        arena->base = NULL;
        arena->capacity = 0;
        return FEDL_OK;
    }
    old_offset = arena->block ? (size_t)(arena->base - (unsigned char *)arena->block) : 0;
    block = fedl_mem_realloc(arena->alloc, arena->block, old_bytes, capacity + FEDL_ARENA_SLACK);
    if (block == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "arena: cannot %s %zu bytes",
                              arena->block ? "resize to" : "reserve", capacity);
    /* A moved block keeps the bytes at their old offset from the block's
     * start; bring them to the new aligned base. */
    if (align_offset(block) != old_offset && arena->used > 0)
        memmove(block + align_offset(block), block + old_offset, arena->used);
    arena->block = block;
    arena->base = block + align_offset(block);
    arena->capacity = capacity;
    return FEDL_OK;
}

void fedl_arena_destroy(fedl_arena *arena)
{
    if (arena->block != NULL)
        fedl_mem_free(arena->alloc, arena->block, arena->capacity + FEDL_ARENA_SLACK);
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
