/*
 * probe.c - the monitor's resource probes: fedl_probe_read (memory, PSI,
 * the process's cgroup, its RSS, load, temperature, Pi throttling, disk),
 * fedl_readings_mem_available and fedl_self_rss.
 *
 * Owns: which file each figure comes from, what an absent or unreadable
 * file means (no figure), and the choice of the tightest cgroup level by
 * working set. The cgroup is found as the memory budget finds it (sysfs.c);
 * the text formats are parsed by probe_parse.c.
 *
 * It runs every 500 ms on a small device, so it is cheap: each file is
 * opened, read and closed once per call, only /sys/class/thermal is listed,
 * nothing is cached and nothing is allocated (file contents go to one
 * 16 KiB buffer in the context; under 48 KiB of stack at the deepest, when
 * the cgroup is located).
 */
#define _GNU_SOURCE /* getdents64 in glibc's dirent.h: listing without opendir's malloc */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fedl/monitor.h"
#include "mem/sysfs.h"
#include "monitor/probe_parse.h"

#define THROTTLED_FILE "/sys/devices/platform/soc/soc:firmware/get_throttled"
#define THERMAL_DIR "/sys/class/thermal"

/* One call of fedl_probe_read. */
typedef struct probe_ctx {
    fedl_sysfs fs;
    char proc[32]; /* "/proc/self" or "/proc/<pid>" */
    fedl_readings *out;
    char path[FEDL_CGROUP_DIR_MAX + 64]; /* the file last read */
    char text[FEDL_SYSFS_FILE_MAX];      /* its bytes (not NUL-terminated) */
    size_t length;
} probe_ctx;

/* Read <a><b><c><d> into ctx->text; *missing when absent. */
static fedl_status read_joined(probe_ctx *ctx, const char *a, const char *b, const char *c,
                               const char *d, int flags, int *missing, fedl_error *err)
{
    int n = snprintf(ctx->path, sizeof ctx->path, "%s%s%s%s", a, b, c, d);
    *missing = 0;
    if (n < 0 || (size_t)n >= sizeof ctx->path)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s%s%s%s: path too long", a, b, c, d);
    return fedl_sysfs_read(ctx->path, ctx->text, sizeof ctx->text, flags, &ctx->length, missing,
                           err);
}

/* The same under the root. */
static fedl_status read_rooted(probe_ctx *ctx, const char *a, const char *b, const char *c,
                               int flags, int *missing, fedl_error *err)
{
    return read_joined(ctx, ctx->fs.root, a, b, c, flags, missing, err);
}

/* ------------------------------------------------------------------ memory */

static fedl_status probe_meminfo(probe_ctx *ctx, fedl_error *err)
{
    fedl_readings *r = ctx->out;
    fedl_probe_meminfo m;
    int missing;
    fedl_status status = read_rooted(ctx, "/proc/meminfo", "", "", 0, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    status = fedl_probe_parse_meminfo(ctx->text, ctx->length, ctx->path, &m, err);
    if (status != FEDL_OK)
        return status;
    r->has_meminfo = 1;
    r->mem_total = m.mem_total;
    r->mem_available = m.mem_available;
    r->swap_total = m.swap_total;
    r->swap_free = m.swap_free;
    return FEDL_OK;
}

/* A pressure file into *psi; an absent (or, for cgroups with PSI switched
 * off, unreadable) file leaves psi->valid 0. */
static fedl_status read_psi(probe_ctx *ctx, const char *a, const char *b, const char *c,
                            fedl_psi *psi, fedl_error *err)
{
    int missing;
    fedl_status status =
        read_joined(ctx, a, b, c, "", FEDL_SYSFS_UNREADABLE_IS_MISSING, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    return fedl_probe_parse_psi(ctx->text, ctx->length, ctx->path, psi, err);
}

/* The process's own cgroup's memory.pressure when it is v2, else the
 * system's. */
static fedl_status probe_memory_pressure(probe_ctx *ctx, const fedl_cgroup_place *place,
                                         fedl_error *err)
{
    char dir[FEDL_CGROUP_DIR_MAX];
    fedl_psi *psi = &ctx->out->psi_memory;
    fedl_status status;
    if (place->kind != NULL && place->kind->version == 2) {
        status = fedl_cgroup_dir(place, place->level, dir, sizeof dir, err);
        if (status == FEDL_OK)
            status = read_psi(ctx, dir, "/memory.pressure", "", psi, err);
        if (status != FEDL_OK || psi->valid)
            return status;
    }
    return read_psi(ctx, ctx->fs.root, "/proc/pressure/memory", "", psi, err);
}

/* ------------------------------------------------------------------ cgroup */

/* The memory figures of one cgroup level, bytes. */
typedef struct cgroup_figures {
    uint64_t limit; /* 0 = none */
    uint64_t usage;
    uint64_t inactive_file;
} cgroup_figures;

static uint64_t working_set(const cgroup_figures *f)
{
    return f->usage > f->inactive_file ? f->usage - f->inactive_file : 0;
}

static uint64_t headroom(const cgroup_figures *f)
{
    uint64_t used = working_set(f);
    return f->limit > used ? f->limit - used : 0;
}

/* The walk so far: the process's own level and the tightest limited one. */
typedef struct cgroup_scan {
    probe_ctx *ctx;
    const fedl_cgroup_kind *kind;
    int levels;      /* visited so far */
    int found_files; /* some level has the limit file: the controller is there */
    cgroup_figures leaf;
    int limited; /* some level has a limit */
    cgroup_figures best;
    char best_level[FEDL_CGROUP_PATH_MAX];
} cgroup_scan;

/* inactive_file of memory.stat (v1: the hierarchical total_inactive_file
 * when present), bytes; 0 when the file is absent. */
static fedl_status read_inactive_file(probe_ctx *ctx, const char *dir, uint64_t *bytes,
                                      fedl_error *err)
{
    static const char *const keys[2] = {"total_inactive_file", "inactive_file"};
    uint64_t values[2];
    int found[2], missing;
    fedl_status status =
        read_joined(ctx, dir, "/memory.stat", "", "", FEDL_SYSFS_CUT_LONG, &missing, err);
    *bytes = 0;
    if (status != FEDL_OK || missing)
        return status;
    status =
        fedl_probe_parse_counters(ctx->text, ctx->length, ctx->path, keys, 2, values, found, err);
    if (status == FEDL_OK)
        *bytes = found[0] ? values[0] : values[1];
    return status;
}

/* Limit, usage and inactive file cache of one level (a fedl_cgroup_visitor):
 * usage and cache are read for the process's own level and for limited ones. */
static fedl_status scan_cgroup_level(void *user, const char *dir, const char *level,
                                     fedl_error *err)
{
    cgroup_scan *scan = user;
    cgroup_figures here = {0, 0, 0};
    int limited, missing, leaf = scan->levels++ == 0;
    fedl_status status =
        fedl_cgroup_read_limit(scan->kind, dir, &here.limit, &limited, &missing, err);
    if (status != FEDL_OK)
        return status;
    scan->found_files |= !missing;
    if (!leaf && !limited)
        return FEDL_OK;
    status = fedl_cgroup_read_usage(scan->kind, dir, &here.usage, err);
    if (status == FEDL_OK)
        status = read_inactive_file(scan->ctx, dir, &here.inactive_file, err);
    if (status != FEDL_OK)
        return status;
    if (leaf)
        scan->leaf = here;
    if (!limited || (scan->limited && headroom(&here) >= headroom(&scan->best)))
        return FEDL_OK;
    scan->limited = 1;
    scan->best = here;
    fedl_sysfs_copy_truncated(scan->best_level, sizeof scan->best_level, level);
    return FEDL_OK;
}

/* OOM kills and limit hits of the chosen level: v2 memory.events "oom_kill"
 * and "high"; v1 memory.oom_control "oom_kill" and memory.failcnt. */
static fedl_status probe_cgroup_events(probe_ctx *ctx, int version, const char *dir,
                                       fedl_error *err)
{
    static const char *const keys[2] = {"oom_kill", "high"};
    fedl_readings *r = ctx->out;
    uint64_t values[2] = {0, 0};
    int found[2], missing, unlimited;
    fedl_status status =
        read_joined(ctx, dir, version == 2 ? "/memory.events" : "/memory.oom_control", "", "", 0,
                    &missing, err);
    if (status == FEDL_OK && !missing)
        status = fedl_probe_parse_counters(ctx->text, ctx->length, ctx->path, keys,
                                           version == 2 ? 2 : 1, values, found, err);
    if (status != FEDL_OK)
        return status;
    r->cgroup_oom_kills = values[0];
    r->cgroup_high_events = values[1];
    if (version == 2)
        return FEDL_OK;
    return fedl_cgroup_read_value(dir, "memory.failcnt", 0, &r->cgroup_high_events, &unlimited,
                                  &missing, err);
}

/* Walk from the process's cgroup to the root and report the level with the
 * least headroom (limit - working set), or the process's own level when no
 * level sets a limit. */
static fedl_status probe_cgroup(probe_ctx *ctx, const fedl_cgroup_place *place, fedl_error *err)
{
    char dir[FEDL_CGROUP_DIR_MAX];
    fedl_readings *r = ctx->out;
    const cgroup_figures *chosen;
    const char *level;
    cgroup_scan scan;
    fedl_status status;
    if (place->kind == NULL)
        return FEDL_OK;
    memset(&scan, 0, sizeof scan);
    scan.ctx = ctx;
    scan.kind = place->kind;
    status = fedl_cgroup_walk(place, scan_cgroup_level, &scan, err);
    if (status != FEDL_OK || !scan.found_files)
        return status;
    chosen = scan.limited ? &scan.best : &scan.leaf;
    level = scan.limited ? scan.best_level : place->level;
    r->cgroup_version = place->kind->version;
    r->cgroup_limit = chosen->limit;
    r->cgroup_usage = chosen->usage;
    r->cgroup_inactive_file = chosen->inactive_file;
    r->cgroup_working_set = working_set(chosen);
    fedl_sysfs_copy_truncated(r->cgroup_path, sizeof r->cgroup_path, level);
    status = fedl_cgroup_dir(place, level, dir, sizeof dir, err);
    if (status != FEDL_OK)
        return status;
    return probe_cgroup_events(ctx, place->kind->version, dir, err);
}

/* --------------------------------------------------------------- process */

static fedl_status probe_rss(probe_ctx *ctx, fedl_error *err)
{
    fedl_readings *r = ctx->out;
    int missing;
    fedl_status status =
        read_rooted(ctx, ctx->proc, "/status", "", FEDL_SYSFS_CUT_LONG, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    return fedl_probe_parse_rss(ctx->text, ctx->length, ctx->path, &r->rss, &r->has_rss, err);
}

/* --------------------------------------------------------------------- cpu */

static fedl_status probe_load(probe_ctx *ctx, fedl_error *err)
{
    fedl_readings *r = ctx->out;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int missing;
    fedl_status status;
    r->cpus = online >= 1 && online <= 1 << 20 ? (int)online : 1;
    status = read_rooted(ctx, "/proc/loadavg", "", "", 0, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    status = fedl_probe_parse_loadavg(ctx->text, ctx->length, ctx->path, &r->load1, &r->load5,
                                      &r->load15, err);
    r->has_load = status == FEDL_OK;
    return status;
}

/* ----------------------------------------------------------------- thermal */

/* The zones read so far and the hottest. */
typedef struct thermal_scan {
    int zones;
    double hottest; /* degrees Celsius */
    char zone[256]; /* its directory name */
} thermal_scan;

/* One thermal_zone*: a zone whose temp is absent, unreadable (EINVAL and
 * ENODATA are common on real boards) or malformed is skipped. */
static void read_zone(probe_ctx *ctx, const char *zone, thermal_scan *t)
{
    fedl_error ignored;
    double celsius;
    int missing;
    if (read_rooted(ctx, THERMAL_DIR "/", zone, "/temp", FEDL_SYSFS_UNREADABLE_IS_MISSING, &missing,
                    &ignored) != FEDL_OK ||
        missing)
        return;
    if (fedl_probe_parse_temp(ctx->text, ctx->length, ctx->path, &celsius, &ignored) != FEDL_OK)
        return;
    if (t->zones++ > 0 && celsius <= t->hottest)
        return;
    t->hottest = celsius;
    fedl_sysfs_copy_truncated(t->zone, sizeof t->zone, zone);
}

/* The hottest zone's "type" (first line, printable) or else its name. */
static void read_zone_type(probe_ctx *ctx, const char *zone, char *type, size_t cap)
{
    fedl_error ignored;
    int missing;
    size_t n = 0;
    if (read_rooted(ctx, THERMAL_DIR "/", zone, "/type",
                    FEDL_SYSFS_UNREADABLE_IS_MISSING | FEDL_SYSFS_CUT_LONG, &missing,
                    &ignored) == FEDL_OK &&
        !missing) {
        while (n < ctx->length && n + 1 < cap && ctx->text[n] != '\n') {
            unsigned char ch = (unsigned char)ctx->text[n];
            type[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
    }
    type[n] = '\0';
    if (n == 0)
        fedl_sysfs_copy_truncated(type, cap, zone);
}

/* Each directory entry of a getdents64 buffer whose name starts with
 * "thermal_zone". Fields are copied out: the buffer is plain bytes. */
static void read_zones_in(probe_ctx *ctx, const char *entries, size_t size, thermal_scan *t)
{
    size_t offset = 0;
    while (offset + offsetof(struct dirent64, d_name) < size) {
        unsigned short record;
        char name[256];
        size_t name_max;
        memcpy(&record, entries + offset + offsetof(struct dirent64, d_reclen), sizeof record);
        if (record <= offsetof(struct dirent64, d_name) || offset + record > size)
            return;
        name_max = record - offsetof(struct dirent64, d_name);
        if (name_max > sizeof name)
            name_max = sizeof name;
        memcpy(name, entries + offset + offsetof(struct dirent64, d_name), name_max);
        name[name_max - 1] = '\0';
        if (strncmp(name, "thermal_zone", 12) == 0)
            read_zone(ctx, name, t);
        offset += record;
    }
}

/* Every /sys/class/thermal/thermal_zone*: how many could be read, the
 * hottest, and its type. No directory: no zones. */
static void probe_thermal(probe_ctx *ctx)
{
    union {
        struct dirent64 align; /* getdents64 wants the records aligned */
        char bytes[4096];
    } buffer;
    char dir[FEDL_SYSFS_PATH_MAX];
    fedl_readings *r = ctx->out;
    thermal_scan t;
    ssize_t got;
    int fd;
    memset(&t, 0, sizeof t);
    if (fedl_sysfs_path(&ctx->fs, THERMAL_DIR, "", "", dir, NULL) != FEDL_OK)
        return;
    do {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return;
    while ((got = getdents64(fd, buffer.bytes, sizeof buffer.bytes)) > 0)
        read_zones_in(ctx, buffer.bytes, (size_t)got, &t);
    close(fd);
    r->thermal_zones = t.zones;
    if (t.zones == 0)
        return;
    r->temp_max_c = t.hottest;
    read_zone_type(ctx, t.zone, r->temp_zone, sizeof r->temp_zone);
}

/* The Raspberry Pi firmware's throttling bits; other boards have no file. */
static fedl_status probe_throttle(probe_ctx *ctx, fedl_error *err)
{
    fedl_readings *r = ctx->out;
    int missing;
    fedl_status status =
        read_rooted(ctx, THROTTLED_FILE, "", "", FEDL_SYSFS_UNREADABLE_IS_MISSING, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    status = fedl_probe_parse_throttled(ctx->text, ctx->length, ctx->path, &r->throttled, err);
    r->has_throttle = status == FEDL_OK;
    return status;
}

/* -------------------------------------------------------------------- disk */

static uint64_t times_saturating(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Free and total bytes of the filesystem holding path (a real path, not
 * under the root). */
static fedl_status probe_disk(fedl_readings *r, const char *path, fedl_error *err)
{
    struct statvfs st;
    uint64_t block;
    int rc;
    if (path == NULL)
        return FEDL_OK;
    do {
        rc = statvfs(path, &st);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot read free disk space (statvfs): %s",
                              path, strerror(errno));
    block = st.f_frsize != 0 ? (uint64_t)st.f_frsize : (uint64_t)st.f_bsize;
    r->has_disk = 1;
    r->disk_free = times_saturating((uint64_t)st.f_bavail, block);
    r->disk_total = times_saturating((uint64_t)st.f_blocks, block);
    return FEDL_OK;
}

/* ------------------------------------------------------------------- entry */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static fedl_status probe_setup(probe_ctx *ctx, const fedl_probe_options *o, fedl_readings *out,
                               fedl_error *err)
{
    if (o->pid < 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "probe options: pid %d is negative",
                              o->pid);
    if (o->pid == 0)
        snprintf(ctx->proc, sizeof ctx->proc, "/proc/self");
    else
        snprintf(ctx->proc, sizeof ctx->proc, "/proc/%d", o->pid);
    ctx->out = out;
    return fedl_sysfs_init(&ctx->fs, o->root, "probe options", err);
}

/* Every probe in turn; the first failure stops the reading. */
static fedl_status probe_all(probe_ctx *ctx, const fedl_probe_options *o, fedl_error *err)
{
    fedl_cgroup_place place;
    char proc_cgroup[48];
    fedl_status status;
    snprintf(proc_cgroup, sizeof proc_cgroup, "%s/cgroup", ctx->proc);
    status = probe_meminfo(ctx, err);
    if (status == FEDL_OK)
        status = fedl_cgroup_locate(&ctx->fs, proc_cgroup, &place, err);
    if (status == FEDL_OK)
        status = probe_cgroup(ctx, &place, err);
    if (status == FEDL_OK)
        status = probe_memory_pressure(ctx, &place, err);
    if (status == FEDL_OK)
        status = probe_rss(ctx, err);
    if (status == FEDL_OK)
        status = probe_load(ctx, err);
    if (status == FEDL_OK)
        status = read_psi(ctx, ctx->fs.root, "/proc/pressure/cpu", "", &ctx->out->psi_cpu, err);
    if (status == FEDL_OK)
        probe_thermal(ctx);
    if (status == FEDL_OK)
        status = probe_throttle(ctx, err);
    if (status == FEDL_OK)
        status = probe_disk(ctx->out, o->disk_path, err);
    return status;
}

fedl_status fedl_probe_read(const fedl_probe_options *o, fedl_readings *out, fedl_error *err)
{
    static const fedl_probe_options defaults = {NULL, NULL, 0};
    probe_ctx ctx;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "probe read: no output");
    memset(out, 0, sizeof *out);
    out->time_ns = monotonic_ns();
    if (o == NULL)
        o = &defaults;
    status = probe_setup(&ctx, o, out, err);
    if (status == FEDL_OK)
        status = probe_all(&ctx, o, err);
    if (status != FEDL_OK)
        memset(out, 0, sizeof *out);
    return status;
}

/* ------------------------------------------------------------------ derived */

uint64_t fedl_readings_mem_available(const fedl_readings *r, double *percent)
{
    uint64_t available = 0, total = 0;
    if (r != NULL && r->has_meminfo && r->mem_total > 0) {
        total = r->mem_total;
        available = r->mem_available < total ? r->mem_available : total;
    }
    if (r != NULL && r->cgroup_limit > 0) {
        uint64_t used = r->cgroup_working_set;
        uint64_t left = r->cgroup_limit > used ? r->cgroup_limit - used : 0;
        if (total == 0 || left < available) {
            available = left;
            total = r->cgroup_limit;
        }
    }
    if (percent != NULL)
        *percent = total > 0 ? 100.0 * (double)available / (double)total : 100.0;
    return available;
}

uint64_t fedl_self_rss(void)
{
    char text[FEDL_SYSFS_FILE_MAX];
    size_t length;
    int missing, found;
    uint64_t rss;
    if (fedl_sysfs_read("/proc/self/status", text, sizeof text, FEDL_SYSFS_CUT_LONG, &length,
                        &missing, NULL) != FEDL_OK ||
        missing)
        return 0;
    if (fedl_probe_parse_rss(text, length, "/proc/self/status", &rss, &found, NULL) != FEDL_OK)
        return 0;
    return found ? rss : 0;
}
