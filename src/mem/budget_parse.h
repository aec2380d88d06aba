/*
 * budget_parse.h - the parsers behind fedl_budget_detect (private): the
 * text of /proc/meminfo, /proc/self/status, /proc/self/cgroup and of one
 * cgroup value file (memory.max, memory.current, memory.limit_in_bytes ...).
 *
 * Each parser takes a buffer that need not be NUL-terminated (text, length)
 * and the name of the file it came from, used in error messages of the form
 * "<name>:<line>: <what>" (FEDL_ERR_FORMAT). They hold no state and allocate
 * nothing, so the fuzz target (fuzz/fuzz_budget.c) calls them directly.
 * On failure every output is left zeroed.
 */
#ifndef FEDL_MEM_BUDGET_PARSE_H
#define FEDL_MEM_BUDGET_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"

/* The figures of /proc/meminfo that the budget uses. */
typedef struct fedl_meminfo {
    uint64_t memtotal;     /* bytes */
    uint64_t memavailable; /* bytes (estimated when estimated == 1) */
    int estimated;         /* 1: no MemAvailable line; MemFree + Buffers + Cached */
} fedl_meminfo;

/* Lines are "Name: value [kB]". MemTotal is required, and MemAvailable or
 * else all of MemFree, Buffers and Cached; each of these must be a decimal
 * number of kB and appear once. Other lines need only the "Name:" shape. */
fedl_status fedl_meminfo_parse(const char *text, size_t length, const char *name, fedl_meminfo *out,
                               fedl_error *err);

/* VmSize and VmData of /proc/self/status in bytes (0 when a line is
 * absent, as for kernel threads). */
fedl_status fedl_proc_status_parse(const char *text, size_t length, const char *name,
                                   uint64_t *vm_size, uint64_t *vm_data, fedl_error *err);

#define FEDL_CGROUP_PATH_MAX 1024

/* The memory controller's place in /proc/self/cgroup. Lines are
 * "hierarchy-id:controller,list:/path"; "0::/path" is the v2 hierarchy. */
typedef struct fedl_proc_cgroup {
    int has_v1_memory;                         /* a v1 line lists "memory" */
    char v1_memory_path[FEDL_CGROUP_PATH_MAX]; /* starts with '/' */
    int has_v2;                                /* a "0::/path" line */
    char v2_path[FEDL_CGROUP_PATH_MAX];        /* starts with '/' */
} fedl_proc_cgroup;

fedl_status fedl_proc_cgroup_parse(const char *text, size_t length, const char *name,
                                   fedl_proc_cgroup *out, fedl_error *err);

/* One cgroup value file: a decimal byte count, or "max" when allow_max
 * (then *unlimited = 1 and *value = 0), with at most one trailing newline. */
fedl_status fedl_cgroup_value_parse(const char *text, size_t length, const char *name,
                                    int allow_max, uint64_t *value, int *unlimited,
                                    fedl_error *err);

#endif
