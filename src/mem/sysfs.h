/*
 * sysfs.h - reading small kernel files under a root directory, and finding
 * the process's memory cgroup (private; shared by the memory budget,
 * src/mem/budget.c, and the monitor's probes, src/monitor/probe.c).
 *
 * Every path is "<root><path>", where the root stands for "/" so that
 * tests can use a fake tree ("" = the real system). Nothing here
 * allocates: callers pass their buffers.
 */
#ifndef FEDL_MEM_SYSFS_H
#define FEDL_MEM_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "mem/budget_parse.h"

#define FEDL_SYSFS_PATH_MAX 2048  /* root + mount + cgroup path + file name */
#define FEDL_SYSFS_FILE_MAX 16384 /* bytes; /proc/meminfo is about 1.5 KiB */

/* The root without its trailing '/' ("" for the real system). */
typedef struct fedl_sysfs {
    char root[FEDL_SYSFS_PATH_MAX / 2];
} fedl_sysfs;

/* who names the caller's options in the error ("budget probe options"). */
fedl_status fedl_sysfs_init(fedl_sysfs *fs, const char *root, const char *who, fedl_error *err);

/* <root><a><b><c> into out (FEDL_SYSFS_PATH_MAX bytes). */
fedl_status fedl_sysfs_path(const fedl_sysfs *fs, const char *a, const char *b, const char *c,
                            char *out, fedl_error *err);

int fedl_sysfs_is_directory(const char *path);

/* Copy src into dst (cap bytes, cap >= 4), ending in "..." when it does not fit. */
void fedl_sysfs_copy_truncated(char *dst, size_t cap, const char *src);

enum {
    /* A file that fills the buffer is cut after its last complete line
     * (statistics files, of which only some lines are wanted) instead of
     * being FEDL_ERR_FORMAT. */
    FEDL_SYSFS_CUT_LONG = 1,
    /* A failed read (EINVAL, ENODATA, EOPNOTSUPP, EIO ...: a sensor or a
     * firmware call that does not answer, PSI switched off) counts as a
     * missing file instead of FEDL_ERR_IO. */
    FEDL_SYSFS_UNREADABLE_IS_MISSING = 2
};

/* Read all of path into buf (cap bytes; the text is not NUL-terminated).
 * A file that does not exist, or that we may not open (a sandbox hiding
 * /proc/self/cgroup), sets *missing and returns FEDL_OK. flags: the
 * FEDL_SYSFS_ values above, or 0. */
fedl_status fedl_sysfs_read(const char *path, char *buf, size_t cap, int flags, size_t *length,
                            int *missing, fedl_error *err);

/* ------------------------------------------------------------------ cgroups */

/* cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages, 9223372036854771712
 * on 4 KiB pages; anything at or above 2^62 is treated as no limit. */
#define FEDL_CGROUP_V1_UNLIMITED (UINT64_C(1) << 62)

/* bytes of a cgroup level's directory: <root><mount><level> */
#define FEDL_CGROUP_DIR_MAX (FEDL_SYSFS_PATH_MAX + FEDL_CGROUP_PATH_MAX)

/* What differs between the two cgroup versions' memory controllers. */
typedef struct fedl_cgroup_kind {
    int version;            /* 1 or 2 */
    const char *mount;      /* under the root */
    const char *limit_file; /* memory.max, memory.limit_in_bytes */
    const char *usage_file; /* memory.current, memory.usage_in_bytes */
    int allow_max;          /* v2 writes "max" for no limit */
} fedl_cgroup_kind;

extern const fedl_cgroup_kind fedl_cgroup_v1;
extern const fedl_cgroup_kind fedl_cgroup_v2;

/* Where the process's memory cgroup is. */
typedef struct fedl_cgroup_place {
    const fedl_cgroup_kind *kind;     /* NULL: no memory cgroup to read (note says why) */
    char mount[FEDL_SYSFS_PATH_MAX];  /* <root><kind->mount> */
    char level[FEDL_CGROUP_PATH_MAX]; /* the process's cgroup under the mount; "/" = its root */
    /* for people: why there is no cgroup, or that the mount root was taken; "" */
    char note[FEDL_SYSFS_PATH_MAX + FEDL_CGROUP_PATH_MAX + 128];
} fedl_cgroup_place;

/* Read <root><proc_cgroup> ("/proc/self/cgroup", "/proc/42/cgroup"): the
 * memory controller sits on a v1 hierarchy when a v1 line lists it (the
 * kernel binds a controller to one hierarchy), else on v2. Inside a
 * container the mount often shows the container's own cgroup as its root
 * while the file names the host's path (or "/.." under a cgroup
 * namespace): then the mount root is taken as the process's cgroup. A
 * missing file or mount is no cgroup (kind NULL), not an error. */
fedl_status fedl_cgroup_locate(const fedl_sysfs *fs, const char *proc_cgroup,
                               fedl_cgroup_place *out, fedl_error *err);

/* The directory of one level, <mount><level> ("/" adds nothing), into dir
 * (size bytes, FEDL_CGROUP_DIR_MAX is enough). */
fedl_status fedl_cgroup_dir(const fedl_cgroup_place *p, const char *level, char *dir, size_t size,
                            fedl_error *err);

/* Called for each level from the process's cgroup up to the mount root,
 * with the level's directory (<mount><level>) and its path ("/a/b", ... "/"). */
typedef fedl_status (*fedl_cgroup_visitor)(void *user, const char *dir, const char *level,
                                           fedl_error *err);

/* Walk up the levels (an ancestor's limit bounds all of its descendants);
 * stops at the first error a visit returns. */
fedl_status fedl_cgroup_walk(const fedl_cgroup_place *p, fedl_cgroup_visitor visit, void *user,
                             fedl_error *err);

/* One value file of the cgroup directory dir (see fedl_cgroup_value_parse);
 * *missing when absent (then *value = 0). */
fedl_status fedl_cgroup_read_value(const char *dir, const char *file, int allow_max,
                                   uint64_t *value, int *unlimited, int *missing, fedl_error *err);

/* The limit file of one level: *missing when absent (no controller there);
 * *limited = 0 when the level sets no limit ("max", or >= 2^62 in v1). */
fedl_status fedl_cgroup_read_limit(const fedl_cgroup_kind *kind, const char *dir, uint64_t *limit,
                                   int *limited, int *missing, fedl_error *err);

/* The usage file of one level, bytes (0 when absent). */
fedl_status fedl_cgroup_read_usage(const fedl_cgroup_kind *kind, const char *dir, uint64_t *usage,
                                   fedl_error *err);

#endif
