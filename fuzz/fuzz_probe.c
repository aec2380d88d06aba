/* fuzz_probe.c - libFuzzer target: the monitor's probe parsers (meminfo,
 * pressure stall information, memory.stat, memory.events and oom_control
 * counters, loadavg, VmRSS of status, get_throttled, a thermal zone's temp)
 * on arbitrary bytes, checking what each promises on success and that a
 * failure explains itself and leaves its outputs zeroed. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "monitor/probe_parse.h"

/* Stop the run (a crash libFuzzer records) when a promise is broken. */
static void require(int promise)
{
    if (!promise)
        abort();
}

/* A failure explains itself. */
static void require_explained(fedl_status status, const fedl_error *err)
{
    require(status == FEDL_OK || err->message[0] != '\0');
}

static void fuzz_meminfo(const char *text, size_t size)
{
    fedl_probe_meminfo m;
    fedl_error err;
    fedl_status status = fedl_probe_parse_meminfo(text, size, "meminfo", &m, &err);
    uint64_t all = m.mem_total | m.mem_available | m.swap_total | m.swap_free;
    require_explained(status, &err);
    require(all % 1024 == 0); /* every figure came from a kB count */
    require(status == FEDL_OK || (all == 0 && m.estimated == 0));
}

static void fuzz_psi(const char *text, size_t size)
{
    fedl_psi psi;
    fedl_error err;
    fedl_status status = fedl_probe_parse_psi(text, size, "pressure", &psi, &err);
    require_explained(status, &err);
    require(psi.valid == (status == FEDL_OK));
    require(isfinite(psi.some_avg10) && psi.some_avg10 >= 0.0);
    require(isfinite(psi.full_avg10) && psi.full_avg10 >= 0.0);
    require(status == FEDL_OK || (psi.some_avg10 == 0.0 && psi.some_total_us == 0 &&
                                  psi.full_avg10 == 0.0 && psi.full_total_us == 0));
}

/* With the key sets the probes ask for (memory.stat, memory.events). */
static void fuzz_counters(const char *text, size_t size)
{
    static const char *const stat_keys[2] = {"total_inactive_file", "inactive_file"};
    static const char *const event_keys[2] = {"oom_kill", "high"};
    const char *const *sets[2] = {stat_keys, event_keys};
    for (int s = 0; s < 2; s++) {
        uint64_t values[2];
        int found[2];
        fedl_error err;
        fedl_status status =
            fedl_probe_parse_counters(text, size, "memory.stat", sets[s], 2, values, found, &err);
        require_explained(status, &err);
        for (int k = 0; k < 2; k++) {
            require(found[k] == 0 || (found[k] == 1 && status == FEDL_OK));
            require(found[k] || values[k] == 0); /* absent (or failed) reads as 0 */
        }
    }
}

static void fuzz_loadavg(const char *text, size_t size)
{
    double load[3];
    fedl_error err;
    fedl_status status =
        fedl_probe_parse_loadavg(text, size, "loadavg", &load[0], &load[1], &load[2], &err);
    require_explained(status, &err);
    for (int i = 0; i < 3; i++)
        require(isfinite(load[i]) && load[i] >= 0.0 && (status == FEDL_OK || load[i] == 0.0));
}

static void fuzz_rss(const char *text, size_t size)
{
    uint64_t rss;
    int found;
    fedl_error err;
    fedl_status status = fedl_probe_parse_rss(text, size, "status", &rss, &found, &err);
    require_explained(status, &err);
    require(rss % 1024 == 0 && (found || rss == 0));
    require(status == FEDL_OK || !found);
}

static void fuzz_one_value_files(const char *text, size_t size)
{
    uint32_t bits;
    double celsius;
    fedl_error err;
    fedl_status status = fedl_probe_parse_throttled(text, size, "get_throttled", &bits, &err);
    require_explained(status, &err);
    require(status == FEDL_OK || bits == 0);
    status = fedl_probe_parse_temp(text, size, "temp", &celsius, &err);
    require_explained(status, &err);
    require(isfinite(celsius) && fabs(celsius) <= 1e6 && (status == FEDL_OK || celsius == 0.0));
}

static void (*const parsers[])(const char *, size_t) = {
    fuzz_meminfo, fuzz_psi, fuzz_counters, fuzz_loadavg, fuzz_rss, fuzz_one_value_files};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libFuzzer passes an exact-size heap copy of the input, so ASan
     * catches any read past its end; the parsers never write to it. */
    for (size_t i = 0; i < sizeof parsers / sizeof parsers[0]; i++)
        parsers[i]((const char *)data, size);
    return 0;
}
