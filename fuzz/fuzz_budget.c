/* fuzz_budget.c - libFuzzer target: the memory budget's parsers
 * (/proc/meminfo, /proc/self/status, /proc/self/cgroup and one cgroup value
 * file) on arbitrary bytes, checking what each promises on success. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem/budget_parse.h"

static void fuzz_meminfo(const char *text, size_t size)
{
    fedl_meminfo info;
    fedl_error err;
    if (fedl_meminfo_parse(text, size, "meminfo", &info, &err) == FEDL_OK) {
        /* every figure came from a kB count */
        if (info.memtotal % 1024 != 0 || info.memavailable % 1024 != 0)
            abort();
    } else if (err.message[0] == '\0' || info.memtotal != 0 || info.memavailable != 0 ||
               info.estimated != 0) {
        abort(); /* a failure explains itself and leaves the output zeroed */
    }
}

static void fuzz_status(const char *text, size_t size)
{
    uint64_t vm_size, vm_data;
    fedl_error err;
    if (fedl_proc_status_parse(text, size, "status", &vm_size, &vm_data, &err) == FEDL_OK) {
        if (vm_size % 1024 != 0 || vm_data % 1024 != 0)
            abort();
    } else if (err.message[0] == '\0' || vm_size != 0 || vm_data != 0) {
        abort();
    }
}

static void fuzz_cgroup(const char *text, size_t size)
{
    fedl_proc_cgroup cg;
    fedl_error err;
    if (fedl_proc_cgroup_parse(text, size, "cgroup", &cg, &err) != FEDL_OK) {
        if (err.message[0] == '\0' || cg.has_v1_memory || cg.has_v2)
            abort();
        return;
    }
    /* accepted paths are absolute and NUL-terminated within their buffers */
    if (cg.has_v1_memory && (cg.v1_memory_path[0] != '/' ||
                             memchr(cg.v1_memory_path, '\0', sizeof cg.v1_memory_path) == NULL))
        abort();
    if (cg.has_v2 && (cg.v2_path[0] != '/' || memchr(cg.v2_path, '\0', sizeof cg.v2_path) == NULL))
        abort();
}

static void fuzz_value(const char *text, size_t size)
{
    uint64_t value;
    int unlimited;
    fedl_error err;
    for (int allow_max = 0; allow_max <= 1; allow_max++) {
        fedl_status status =
            fedl_cgroup_value_parse(text, size, "memory.max", allow_max, &value, &unlimited, &err);
        if (status == FEDL_OK && unlimited && (!allow_max || value != 0))
            abort();
        if (status != FEDL_OK && (err.message[0] == '\0' || value != 0 || unlimited != 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so ASan catches any read past the end. */
    char *text = malloc(size > 0 ? size : 1);
    if (text == NULL)
        return 0;
    if (size > 0)
        memcpy(text, data, size);
    fuzz_meminfo(text, size);
    fuzz_status(text, size);
    fuzz_cgroup(text, size);
    fuzz_value(text, size);
    free(text);
    return 0;
}
