/*
 * budget.c - the memory budget behind "--memory auto|SIZE": runs the probes
 * (MemAvailable, cgroup v2 or v1 limits up the hierarchy, RLIMIT_AS and
 * RLIMIT_DATA headroom), takes the smallest figure and explains it.
 *
 * Owns: the figures each probe contributes, the least headroom over the
 * cgroup levels, the choice of the deciding source and the human-readable
 * explanation. Files are read under a root directory (so tests can use a
 * fake tree) and the cgroup is found by sysfs.c, which the monitor's probes
 * share; the text formats are parsed by budget_parse.c.
 *
 * Nothing here allocates: file contents go to a stack buffer (the files are
 * a few KiB; a larger one is FEDL_ERR_FORMAT rather than a silent cut).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "fedl/mem.h"
#include "mem/budget_parse.h"
#include "mem/sysfs.h"

/* ------------------------------------------------------------------- text */

#if defined(__GNUC__)
#define BUDGET_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BUDGET_PRINTF(f, a)
#endif

/* Append printf-style text to the NUL-terminated buf of cap bytes,
 * truncating quietly (explanations are for people, not parsers). */
static void text_append(char *buf, size_t cap, const char *fmt, ...) BUDGET_PRINTF(3, 4);
static void text_append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list args;
    if (used + 1 >= cap)
        return;
    va_start(args, fmt);
    vsnprintf(buf + used, cap - used, fmt, args);
    va_end(args);
}

static void add_note(fedl_budget *out, const char *fmt, ...) BUDGET_PRINTF(2, 3);
static void add_note(fedl_budget *out, const char *fmt, ...)
{
    size_t used;
    va_list args;
    if (out->notes[0] != '\0')
        text_append(out->notes, sizeof out->notes, "; ");
    used = strlen(out->notes);
    if (used + 1 >= sizeof out->notes)
        return;
    va_start(args, fmt);
    vsnprintf(out->notes + used, sizeof out->notes - used, fmt, args);
    va_end(args);
}

const char *fedl_budget_format_bytes(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = (double)bytes;
    int unit = -1;
    if (buf == NULL || size == 0)
        return "";
    if (bytes < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    while (value >= 1024.0 && unit < 5) {
        value /= 1024.0;
        unit++;
    }
    snprintf(buf, size, "%.1f %s", value, units[unit]);
    return buf;
}

const char *fedl_budget_source_name(fedl_budget_source s)
{
    switch (s) {
    case FEDL_BUDGET_FIXED:
        return "fixed";
    case FEDL_BUDGET_MEMAVAILABLE:
        return "memavailable";
    case FEDL_BUDGET_CGROUP_V2:
        return "cgroup-v2";
    case FEDL_BUDGET_CGROUP_V1:
        return "cgroup-v1";
    case FEDL_BUDGET_RLIMIT_AS:
        return "rlimit-as";
    case FEDL_BUDGET_RLIMIT_DATA:
        return "rlimit-data";
    case FEDL_BUDGET_UNKNOWN:
        break;
    }
    return "unknown";
}

fedl_budget_probe_options fedl_budget_probe_defaults(void)
{
    fedl_budget_probe_options o;
    memset(&o, 0, sizeof o);
    o.root = NULL;
    o.memavailable_fraction = 0.5;
    o.use_rlimits = 1;
    return o;
}

/* ------------------------------------------------------------------ files */

/* One detection: the options, the root and the result being filled in. */
typedef struct probe_ctx {
    const fedl_budget_probe_options *o;
    fedl_sysfs fs;
    fedl_budget *out;
} probe_ctx;

/* Read <root><rel> into text (FEDL_SYSFS_FILE_MAX bytes); its full name
 * goes to path (FEDL_SYSFS_PATH_MAX bytes). */
static fedl_status read_rooted(const probe_ctx *ctx, const char *rel, char *path, char *text,
                               size_t *length, int *missing, fedl_error *err)
{
    fedl_status status = fedl_sysfs_path(&ctx->fs, rel, "", "", path, err);
    if (status != FEDL_OK)
        return status;
    return fedl_sysfs_read(path, text, FEDL_SYSFS_FILE_MAX, 0, length, missing, err);
}

/* ------------------------------------------------------------ /proc/meminfo */

static fedl_status probe_meminfo(probe_ctx *ctx, fedl_error *err)
{
    char path[FEDL_SYSFS_PATH_MAX], text[FEDL_SYSFS_FILE_MAX];
    size_t length;
    int missing;
    fedl_meminfo info;
    fedl_budget_reading *r = &ctx->out->reading;
    fedl_status status = read_rooted(ctx, "/proc/meminfo", path, text, &length, &missing, err);
    if (status != FEDL_OK)
        return status;
    if (missing) {
        add_note(ctx->out, "no %s: no MemAvailable figure", path);
        return FEDL_OK;
    }
    status = fedl_meminfo_parse(text, length, path, &info, err);
    if (status != FEDL_OK)
        return status;
    r->memtotal = info.memtotal;
    r->memavailable = info.memavailable;
    r->memavailable_estimated = info.estimated;
    if (info.estimated)
        add_note(ctx->out,
                 "%s has no MemAvailable (kernel before 3.14): estimated as MemFree + "
                 "Buffers + Cached",
                 path);
    return FEDL_OK;
}

/* ------------------------------------------------------------------ cgroups */

/* The level with the least headroom seen so far in the walk. */
typedef struct cgroup_best {
    const fedl_cgroup_kind *kind;
    int found_files; /* some level had a limit file (the controller is there) */
    int limited;     /* some level had a limit */
    uint64_t limit, usage, headroom;
    char path[FEDL_CGROUP_PATH_MAX];
} cgroup_best;

/* Limit and usage of one cgroup level (a fedl_cgroup_visitor). */
static fedl_status probe_cgroup_level(void *user, const char *dir, const char *level,
                                      fedl_error *err)
{
    cgroup_best *best = user;
    uint64_t limit, usage, headroom;
    int limited, missing;
    fedl_status status = fedl_cgroup_read_limit(best->kind, dir, &limit, &limited, &missing, err);
    if (status != FEDL_OK || missing)
        return status;
    best->found_files = 1;
    if (!limited)
        return FEDL_OK;
    status = fedl_cgroup_read_usage(best->kind, dir, &usage, err);
    if (status != FEDL_OK)
        return status;
    headroom = limit > usage ? limit - usage : 0;
    if (best->limited && headroom >= best->headroom)
        return FEDL_OK;
    best->limited = 1;
    best->limit = limit;
    best->usage = usage;
    best->headroom = headroom;
    fedl_sysfs_copy_truncated(best->path, sizeof best->path, level);
    return FEDL_OK;
}

/* Find the process's cgroup and walk from it up to the root, keeping the
 * least headroom: an ancestor's limit bounds all of its descendants. */
static fedl_status probe_cgroup(probe_ctx *ctx, fedl_error *err)
{
    fedl_cgroup_place place;
    cgroup_best best;
    fedl_budget_reading *r = &ctx->out->reading;
    fedl_status status = fedl_cgroup_locate(&ctx->fs, "/proc/self/cgroup", &place, err);
    if (status != FEDL_OK)
        return status;
    if (place.note[0] != '\0')
        add_note(ctx->out, "%s", place.note);
    if (place.kind == NULL)
        return FEDL_OK;
    memset(&best, 0, sizeof best);
    best.kind = place.kind;
    fedl_sysfs_copy_truncated(r->cgroup_path, sizeof r->cgroup_path, place.level);
    status = fedl_cgroup_walk(&place, probe_cgroup_level, &best, err);
    if (status != FEDL_OK)
        return status;
    if (best.found_files)
        r->cgroup_version = place.kind->version;
    if (!best.limited)
        return FEDL_OK;
    r->cgroup_limit = best.limit;
    r->cgroup_usage = best.usage;
    r->cgroup_headroom = best.headroom;
    fedl_sysfs_copy_truncated(r->cgroup_path, sizeof r->cgroup_path, best.path);
    return FEDL_OK;
}

/* ------------------------------------------------------------------ rlimits */

/* The soft limit in bytes, 0 when unlimited or unknown. */
static uint64_t soft_limit(int resource)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (uint64_t)rl.rlim_cur;
}

/* VmSize and VmData of <root>/proc/self/status (0 when it is absent). */
static fedl_status read_vm_sizes(probe_ctx *ctx, uint64_t *vm_size, uint64_t *vm_data,
                                 fedl_error *err)
{
    char path[FEDL_SYSFS_PATH_MAX], text[FEDL_SYSFS_FILE_MAX];
    size_t length;
    int missing;
    fedl_status status = read_rooted(ctx, "/proc/self/status", path, text, &length, &missing, err);
    *vm_size = 0;
    *vm_data = 0;
    if (status != FEDL_OK)
        return status;
    if (missing) {
        add_note(ctx->out, "no %s: VmSize and VmData taken as 0", path);
        return FEDL_OK;
    }
    return fedl_proc_status_parse(text, length, path, vm_size, vm_data, err);
}

static uint64_t headroom_of(uint64_t limit, uint64_t used)
{
    return limit > used ? limit - used : 0;
}

static fedl_status probe_rlimits(probe_ctx *ctx, fedl_error *err)
{
    const fedl_budget_probe_options *o = ctx->o;
    fedl_budget_reading *r = &ctx->out->reading;
    uint64_t vm_size = 0, vm_data = 0;
    fedl_status status;
    r->rlimit_as = o->use_rlimits ? soft_limit(RLIMIT_AS) : o->fake_rlimit_as;
    r->rlimit_data = o->use_rlimits ? soft_limit(RLIMIT_DATA) : o->fake_rlimit_data;
    if (r->rlimit_as == 0 && r->rlimit_data == 0)
        return FEDL_OK;
    if (o->use_rlimits || o->fake_vm_size == 0 || o->fake_data_size == 0) {
        status = read_vm_sizes(ctx, &vm_size, &vm_data, err);
        if (status != FEDL_OK)
            return status;
    }
    r->vm_size = !o->use_rlimits && o->fake_vm_size != 0 ? o->fake_vm_size : vm_size;
    r->vm_data = !o->use_rlimits && o->fake_data_size != 0 ? o->fake_data_size : vm_data;
    r->rlimit_as_headroom = headroom_of(r->rlimit_as, r->vm_size);
    r->rlimit_data_headroom = headroom_of(r->rlimit_data, r->vm_data);
    return FEDL_OK;
}

/* ------------------------------------------------------------------ choice */

/* "<label>: <limit name> A - <used name> B = C", or that there is no
 * headroom because usage has reached the limit. */
static void explain_headroom(fedl_budget *out, const char *label, const char *limit_name,
                             uint64_t limit, const char *used_name, uint64_t used)
{
    char a[32], b[32], c[32];
    fedl_budget_format_bytes(limit, a, sizeof a);
    fedl_budget_format_bytes(used, b, sizeof b);
    if (used >= limit) {
        text_append(out->explanation, sizeof out->explanation,
                    "%s: %s %s is at or above %s %s: no headroom, budget 0 B", label, used_name, b,
                    limit_name, a);
        return;
    }
    fedl_budget_format_bytes(limit - used, c, sizeof c);
    text_append(out->explanation, sizeof out->explanation, "%s: %s %s - %s %s = %s", label,
                limit_name, a, used_name, b, c);
}

static void explain_cgroup(fedl_budget *out)
{
    const fedl_budget_reading *r = &out->reading;
    char label[FEDL_BUDGET_PATH_MAX + 16];
    int v2 = r->cgroup_version == 2;
    snprintf(label, sizeof label, "cgroup v%d %s", v2 ? 2 : 1, r->cgroup_path);
    explain_headroom(out, label, v2 ? "memory.max" : "memory.limit_in_bytes", r->cgroup_limit,
                     v2 ? "memory.current" : "memory.usage_in_bytes", r->cgroup_usage);
}

static void explain(fedl_budget *out, double fraction)
{
    const fedl_budget_reading *r = &out->reading;
    char a[32], b[32];
    out->explanation[0] = '\0';
    switch (out->source) {
    case FEDL_BUDGET_MEMAVAILABLE:
        text_append(out->explanation, sizeof out->explanation,
                    "meminfo: MemAvailable%s %s x %.2f = %s",
                    r->memavailable_estimated ? " (estimated: MemFree + Buffers + Cached)" : "",
                    fedl_budget_format_bytes(r->memavailable, a, sizeof a), fraction,
                    fedl_budget_format_bytes(out->bytes, b, sizeof b));
        return;
    case FEDL_BUDGET_CGROUP_V2:
    case FEDL_BUDGET_CGROUP_V1:
        explain_cgroup(out);
        return;
    case FEDL_BUDGET_RLIMIT_AS:
        explain_headroom(out, "rlimit", "RLIMIT_AS", r->rlimit_as, "VmSize", r->vm_size);
        return;
    case FEDL_BUDGET_RLIMIT_DATA:
        explain_headroom(out, "rlimit", "RLIMIT_DATA", r->rlimit_data, "VmData", r->vm_data);
        return;
    case FEDL_BUDGET_FIXED:
    case FEDL_BUDGET_UNKNOWN:
        break;
    }
}

/* Offer one figure; the smallest wins (ties keep the earlier source). */
static void consider(fedl_budget *out, int available, fedl_budget_source source, uint64_t bytes)
{
    if (!available)
        return;
    if (out->source != FEDL_BUDGET_UNKNOWN && bytes >= out->bytes)
        return;
    out->source = source;
    out->bytes = bytes;
}

static fedl_status choose(probe_ctx *ctx, fedl_error *err)
{
    fedl_budget *out = ctx->out;
    const fedl_budget_reading *r = &out->reading;
    double share = (double)r->memavailable * ctx->o->memavailable_fraction;
    consider(out, r->memtotal != 0, FEDL_BUDGET_MEMAVAILABLE, (uint64_t)share);
    consider(out, r->cgroup_limit != 0,
             r->cgroup_version == 2 ? FEDL_BUDGET_CGROUP_V2 : FEDL_BUDGET_CGROUP_V1,
             r->cgroup_headroom);
    consider(out, r->rlimit_as != 0, FEDL_BUDGET_RLIMIT_AS, r->rlimit_as_headroom);
    consider(out, r->rlimit_data != 0, FEDL_BUDGET_RLIMIT_DATA, r->rlimit_data_headroom);
    if (out->source == FEDL_BUDGET_UNKNOWN)
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "memory budget: no probe gave a figure (%s); give a size such as 48M",
                              out->notes[0] != '\0' ? out->notes : "no limits found");
    explain(out, ctx->o->memavailable_fraction);
    return FEDL_OK;
}

/* ------------------------------------------------------------------ entry */

static void budget_reset(fedl_budget *out)
{
    memset(out, 0, sizeof *out);
    out->source = FEDL_BUDGET_UNKNOWN;
}

static fedl_status check_options(const fedl_budget_probe_options *o, fedl_error *err)
{
    /* Written so that NaN fails too. */
    if (!(o->memavailable_fraction > 0.0 && o->memavailable_fraction <= 1.0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "budget probe options: memavailable_fraction %g is outside (0, 1]",
                              o->memavailable_fraction);
    return FEDL_OK;
}

fedl_status fedl_budget_detect(const fedl_budget_probe_options *o, fedl_budget *out,
                               fedl_error *err)
{
    fedl_budget_probe_options defaults = fedl_budget_probe_defaults();
    probe_ctx ctx;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "budget detect: no output");
    budget_reset(out);
    ctx.o = o != NULL ? o : &defaults;
    ctx.out = out;
    status = check_options(ctx.o, err);
    if (status == FEDL_OK)
        status = fedl_sysfs_init(&ctx.fs, ctx.o->root, "budget probe options", err);
    if (status == FEDL_OK)
        status = probe_meminfo(&ctx, err);
    if (status == FEDL_OK)
        status = probe_cgroup(&ctx, err);
    if (status == FEDL_OK)
        status = probe_rlimits(&ctx, err);
    if (status == FEDL_OK)
        status = choose(&ctx, err);
    if (status != FEDL_OK) {
        budget_reset(out);
        return status;
    }
    fedl_log(FEDL_LOG_DEBUG, "memory budget: %s (%s)", out->explanation,
             fedl_budget_source_name(out->source));
    return FEDL_OK;
}

fedl_status fedl_budget_parse(const char *text, const fedl_budget_probe_options *o,
                              fedl_budget *out, fedl_error *err)
{
    size_t bytes;
    fedl_error inner;
    char shown[32];
    if (out == NULL || text == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "budget parse: missing argument");
    if (strcmp(text, "auto") == 0)
        return fedl_budget_detect(o, out, err);
    budget_reset(out);
    if (fedl_parse_size(text, &bytes, &inner) != FEDL_OK)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "memory budget: expected 'auto' or a size such as 48M: %s",
                              inner.message);
    if (bytes == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "memory budget '%.64s': must be greater than 0", text);
    out->bytes = bytes;
    out->source = FEDL_BUDGET_FIXED;
    text_append(out->explanation, sizeof out->explanation, "fixed size %.64s = %s", text,
                fedl_budget_format_bytes(bytes, shown, sizeof shown));
    return FEDL_OK;
}
