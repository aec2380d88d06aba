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

/* A bump allocator over one block taken from an allocator. The block can
 * be resized in place of a rebuild (fedl_arena_resize), which is how a
 * training session gives memory back or takes more when its plan changes:
 * what was handed out before the resize keeps its offset from base, but
 * base itself may move. */
typedef struct fedl_arena {
    fedl_allocator *alloc;
    unsigned char *base; /* first usable byte, 64-byte aligned (NULL when empty) */
    size_t capacity;     /* usable bytes from base */
    size_t used;         /* bytes handed out, including alignment padding */
    size_t high_water;   /* maximum of used */
    void *block;         /* the allocation base lies in: capacity + 63 bytes */
} fedl_arena;

/* Bytes an arena of capacity bytes takes from its allocator: the capacity
 * and up to 63 bytes to align base. */
#define FEDL_ARENA_SLACK 63

/* Reserve capacity bytes. On failure the arena is left empty. */
fedl_status fedl_arena_init(fedl_arena *arena, fedl_allocator *alloc, size_t capacity,
                            fedl_error *err);
/* A zeroed slice of size bytes aligned to alignment (power of two <= 64), or
 * NULL when the arena is full. */
void *fedl_arena_push(fedl_arena *arena, size_t size, size_t alignment);
/* Release everything handed out (the block stays reserved). */
void fedl_arena_reset(fedl_arena *arena);
/* Release what was handed out after the first mark bytes (mark <= used). */
void fedl_arena_truncate(fedl_arena *arena, size_t mark);
/* Change the capacity to capacity bytes (>= used), through the allocator's
 * resize: a smaller block returns memory to the system, a larger one may
 * move. The first used bytes keep their content and their offset from
 * base; pointers into the old block must be recomputed from base. On
 * failure (FEDL_ERR_NOMEM, or FEDL_ERR_INVALID_ARG below used) the arena
 * is unchanged. */
fedl_status fedl_arena_resize(fedl_arena *arena, size_t capacity, fedl_error *err);
void fedl_arena_destroy(fedl_arena *arena);

/* Parse a byte size such as "48M", "1G", "512k", "4096" (binary units). */
fedl_status fedl_parse_size(const char *text, size_t *out, fedl_error *err);

/* ------------------------------------------------------------ memory budget */

/*
 * How many bytes training may use: a fixed size ("48M") or "auto", the
 * smallest figure among these probes (each may be absent):
 *
 *   memavailable   MemAvailable of /proc/meminfo x memavailable_fraction
 *                  (kernels without MemAvailable: MemFree + Buffers + Cached)
 *   cgroup v2      memory.max - memory.current of the process's cgroup
 *                  ("0::/path" in /proc/self/cgroup) and of every ancestor
 *   cgroup v1      memory.limit_in_bytes - memory.usage_in_bytes, likewise,
 *                  when the memory controller is on a v1 hierarchy
 *   rlimit-as      RLIMIT_AS - VmSize (of /proc/self/status)
 *   rlimit-data    RLIMIT_DATA - VmData
 *
 * A cgroup headroom is taken at each level from the process's cgroup up to
 * the root and the smallest wins, because an ancestor's limit bounds all of
 * its descendants. Headrooms saturate at 0: usage above a limit gives a
 * budget of 0 bytes (FEDL_OK; the explanation says so). cgroup usage
 * counts the page cache too, so that figure errs on the small side; v2's
 * memory.high (a throttling threshold, not a limit) is not consulted.
 *
 * Every file is read under options.root, so tests can point the probes at
 * a fake tree ("<root>/proc/meminfo", "<root>/sys/fs/cgroup/..."). A missing
 * file means "no figure from that probe"; a malformed one is FEDL_ERR_FORMAT
 * naming "<file>:<line>" and the field. When no probe gives a figure,
 * fedl_budget_detect returns FEDL_ERR_UNSUPPORTED. With use_rlimits == 1
 * the limits are the calling process's even under a fake root; VmSize and
 * VmData always come from <root>/proc/self/status (0 when it is absent).
 */

/* Which probe decided a budget. */
typedef enum fedl_budget_source {
    FEDL_BUDGET_FIXED,        /* a size given by the user */
    FEDL_BUDGET_MEMAVAILABLE, /* /proc/meminfo MemAvailable x fraction */
    FEDL_BUDGET_CGROUP_V2,    /* memory.max - memory.current */
    FEDL_BUDGET_CGROUP_V1,    /* memory.limit_in_bytes - memory.usage_in_bytes */
    FEDL_BUDGET_RLIMIT_AS,    /* RLIMIT_AS - VmSize */
    FEDL_BUDGET_RLIMIT_DATA,  /* RLIMIT_DATA - VmData */
    FEDL_BUDGET_UNKNOWN
} fedl_budget_source;

typedef struct fedl_budget_probe_options {
    const char *root; /* NULL or "" = the real system; else a directory standing for "/" */
    double memavailable_fraction; /* share of MemAvailable, in (0, 1]; default 0.5 */
    int use_rlimits;              /* 1 (default): getrlimit(); 0: the fake values below */
    uint64_t fake_rlimit_as;      /* bytes; used when use_rlimits == 0; 0 = no limit */
    uint64_t fake_rlimit_data;    /* bytes; used when use_rlimits == 0; 0 = no limit */
    uint64_t fake_vm_size;        /* bytes; used when use_rlimits == 0 and nonzero, else VmSize */
    uint64_t fake_data_size;      /* bytes; used when use_rlimits == 0 and nonzero, else VmData */
} fedl_budget_probe_options;

#define FEDL_BUDGET_PATH_MAX 256
#define FEDL_BUDGET_TEXT_MAX 512

/* Every probe's figures, in bytes; a limit of 0 means "no figure". */
typedef struct fedl_budget_reading {
    uint64_t memavailable;      /* 0 = no /proc/meminfo */
    uint64_t memtotal;          /* 0 = no /proc/meminfo */
    int memavailable_estimated; /* 1: no MemAvailable line; MemFree + Buffers + Cached */
    int cgroup_version;         /* 1 or 2: where the memory controller was found; 0 = none */
    uint64_t cgroup_limit;      /* limit of the deciding level; 0 = no limit at any level */
    uint64_t cgroup_usage;      /* usage of the deciding level */
    uint64_t cgroup_headroom;   /* cgroup_limit - cgroup_usage, saturating at 0 */
    char cgroup_path[FEDL_BUDGET_PATH_MAX]; /* deciding level (or the process's cgroup) */
    uint64_t rlimit_as;                     /* RLIMIT_AS soft limit; 0 = unlimited */
    uint64_t vm_size;                       /* VmSize */
    uint64_t rlimit_as_headroom;            /* rlimit_as - vm_size, saturating at 0 */
    uint64_t rlimit_data;                   /* RLIMIT_DATA soft limit; 0 = unlimited */
    uint64_t vm_data;                       /* VmData */
    uint64_t rlimit_data_headroom;          /* rlimit_data - vm_data, saturating at 0 */
} fedl_budget_reading;

typedef struct fedl_budget {
    uint64_t bytes; /* the budget */
    fedl_budget_source source;
    fedl_budget_reading reading; /* all zero for FEDL_BUDGET_FIXED */
    /* The deciding source and its arithmetic, e.g. "cgroup v2 /user.slice/x:
     * memory.max 96.0 MiB - memory.current 12.3 MiB = 83.7 MiB". */
    char explanation[FEDL_BUDGET_TEXT_MAX];
    /* Fallbacks taken on the way ("" when none), e.g. that MemAvailable was
     * estimated or that the cgroup path was not found under the mount. */
    char notes[FEDL_BUDGET_TEXT_MAX];
} fedl_budget;

/* root NULL, fraction 0.5, use_rlimits 1, no fake values. */
fedl_budget_probe_options fedl_budget_probe_defaults(void);

/* Run every probe and take the smallest figure (o == NULL: the defaults). */
fedl_status fedl_budget_detect(const fedl_budget_probe_options *o, fedl_budget *out,
                               fedl_error *err);

/* "auto" runs fedl_budget_detect; anything else is a size for
 * fedl_parse_size ("48M") and gives FEDL_BUDGET_FIXED. A size of 0 is
 * FEDL_ERR_INVALID_ARG. */
fedl_status fedl_budget_parse(const char *text, const fedl_budget_probe_options *o,
                              fedl_budget *out, fedl_error *err);

/* "fixed", "memavailable", "cgroup-v2", "cgroup-v1", "rlimit-as",
 * "rlimit-data" or "unknown"; never NULL. */
const char *fedl_budget_source_name(fedl_budget_source s);

/* "512 B", "1.5 KiB", "83.7 MiB", "2.0 GiB" (binary units, one decimal)
 * into buf; returns buf. */
const char *fedl_budget_format_bytes(uint64_t bytes, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
