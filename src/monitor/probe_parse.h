/*
 * probe_parse.h - the parsers behind fedl_probe_read (private): the text of
 * /proc/meminfo, /proc/pressure/{memory,cpu} and memory.pressure, the
 * counter files of a cgroup (memory.stat, memory.events,
 * memory.oom_control), /proc/loadavg, VmRSS of /proc/PID/status, a thermal
 * zone's temp and the Raspberry Pi firmware's get_throttled.
 *
 * Each parser takes a buffer that need not be NUL-terminated (text, length)
 * and the name of the file it came from, used in error messages of the form
 * "<name>:<line>: <field>: <what>" (FEDL_ERR_FORMAT). They hold no state
 * and allocate nothing, so the fuzz target (fuzz/fuzz_probe.c) calls them
 * directly. On failure every output is left zeroed.
 */
#ifndef FEDL_MONITOR_PROBE_PARSE_H
#define FEDL_MONITOR_PROBE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/monitor.h"

/* The figures of /proc/meminfo the probes report, bytes. */
typedef struct fedl_probe_meminfo {
    uint64_t mem_total;
    uint64_t mem_available; /* MemAvailable, or MemFree + Buffers + Cached (estimated) */
    int estimated;
    uint64_t swap_total; /* 0 when the line is absent */
    uint64_t swap_free;
} fedl_probe_meminfo;

/* The rules of fedl_meminfo_parse (mem/budget_parse.h), plus SwapTotal and
 * SwapFree, which must be numbers of kB when present. */
fedl_status fedl_probe_parse_meminfo(const char *text, size_t length, const char *name,
                                     fedl_probe_meminfo *out, fedl_error *err);

/* "some avg10=A avg60=B avg300=C total=T" and, optionally, "full ..." (one
 * each): the avgs are decimals (percent), total a count of microseconds;
 * other key=value fields are ignored. A "some" line is required; out->valid
 * is 1 on success. */
fedl_status fedl_probe_parse_psi(const char *text, size_t length, const char *name, fedl_psi *out,
                                 fedl_error *err);

/* "L1 L5 L15 running/total last_pid", one line. */
fedl_status fedl_probe_parse_loadavg(const char *text, size_t length, const char *name,
                                     double *load1, double *load5, double *load15, fedl_error *err);

/* VmRSS of /proc/PID/status in bytes; *found 0 when the line is absent (a
 * kernel thread, a zombie). Other lines carry free text and are not checked. */
fedl_status fedl_probe_parse_rss(const char *text, size_t length, const char *name, uint64_t *rss,
                                 int *found, fedl_error *err);

/* A cgroup counter file: every non-empty line is "key value" with a
 * decimal value. values[k] and found[k] (0/1) for each of the count keys;
 * a wanted key that appears twice is an error. */
fedl_status fedl_probe_parse_counters(const char *text, size_t length, const char *name,
                                      const char *const *keys, size_t count, uint64_t *values,
                                      int *found, fedl_error *err);

/* get_throttled: hexadecimal, as the kernel writes it ("50005") or as
 * vcgencmd shows it ("0x50005"), at most 32 bits, one optional newline. */
fedl_status fedl_probe_parse_throttled(const char *text, size_t length, const char *name,
                                       uint32_t *bits, fedl_error *err);

/* A thermal zone's temp: a decimal number of millidegrees Celsius, maybe
 * negative, one optional newline; *celsius in degrees. */
fedl_status fedl_probe_parse_temp(const char *text, size_t length, const char *name,
                                  double *celsius, fedl_error *err);

#endif
