/*
 * sysfs.c - reading small kernel files under a root directory and finding
 * the process's memory cgroup, for the memory budget and the monitor's
 * probes. See sysfs.h.
 *
 * Owns: the root prefix, the one way we read a /proc or /sys file (no
 * allocation, EINTR retried, absent = "no figure"), the choice between the
 * v1 and v2 memory controller, the container fallback to the mount root,
 * and the walk up the cgroup hierarchy. The text formats are parsed by
 * budget_parse.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/sysfs.h"

/* -------------------------------------------------------------------- paths */

fedl_status fedl_sysfs_init(fedl_sysfs *fs, const char *root, const char *who, fedl_error *err)
{
    size_t n = root != NULL ? strlen(root) : 0;
    while (n > 0 && root[n - 1] == '/')
        n--;
    if (n >= sizeof fs->root)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: root: longer than %zu bytes", who,
                              sizeof fs->root - 1);
    if (n > 0)
        memcpy(fs->root, root, n);
    fs->root[n] = '\0';
    return FEDL_OK;
}

fedl_status fedl_sysfs_path(const fedl_sysfs *fs, const char *a, const char *b, const char *c,
                            char *out, fedl_error *err)
{
    int n = snprintf(out, FEDL_SYSFS_PATH_MAX, "%s%s%s%s", fs->root, a, b, c);
    if (n < 0 || n >= FEDL_SYSFS_PATH_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s%s%s%s: path too long", fs->root, a, b,
                              c);
    return FEDL_OK;
}

int fedl_sysfs_is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void fedl_sysfs_copy_truncated(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n < cap) {
        memcpy(dst, src, n + 1);
        return;
    }
    memcpy(dst, src, cap - 4);
    memcpy(dst + cap - 4, "...", 4);
}

/* -------------------------------------------------------------------- files */

static int open_read_only(const char *path)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Keep the complete lines of a full buffer: the length up to its last '\n'. */
static size_t complete_lines(const char *buf, size_t used)
{
    while (used > 0 && buf[used - 1] != '\n')
        used--;
    return used;
}

fedl_status fedl_sysfs_read(const char *path, char *buf, size_t cap, int flags, size_t *length,
                            int *missing, fedl_error *err)
{
    size_t used = 0;
    int fd = open_read_only(path);
    *length = 0;
    *missing = 0;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EPERM) {
            *missing = 1;
            return FEDL_OK;
        }
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    for (;;) {
        ssize_t got = read(fd, buf + used, cap - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            close(fd);
            if (flags & FEDL_SYSFS_UNREADABLE_IS_MISSING) {
                *missing = 1;
                return FEDL_OK;
            }
            return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot read: %s", path, strerror(saved));
        }
        if (got == 0)
            break;
        used += (size_t)got;
        if (used == cap && (flags & FEDL_SYSFS_CUT_LONG)) {
            used = complete_lines(buf, used);
            break;
        }
        if (used == cap) {
            close(fd);
            return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: larger than %zu bytes", path, cap - 1);
        }
    }
    close(fd);
    *length = used;
    return FEDL_OK;
}

/* ------------------------------------------------------------------ cgroups */

const fedl_cgroup_kind fedl_cgroup_v2 = {2, "/sys/fs/cgroup", "memory.max", "memory.current", 1};
const fedl_cgroup_kind fedl_cgroup_v1 = {1, "/sys/fs/cgroup/memory", "memory.limit_in_bytes",
                                         "memory.usage_in_bytes", 0};

/* Whether a path has a ".." component: a cgroup outside our namespace. */
static int has_dotdot(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2) {
        int starts = p == path || p[-1] == '/';
        int ends = p[2] == '\0' || p[2] == '/';
        if (starts && ends)
            return 1;
    }
    return 0;
}

/* The cgroup path of the file as a level under the mount (see
 * fedl_cgroup_locate for the container case). */
static void resolve_level(fedl_cgroup_place *p, const char *path)
{
    char dir[FEDL_CGROUP_DIR_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    memcpy(p->level, path, n);
    p->level[n] = '\0';
    if (strcmp(p->level, "/") == 0)
        return;
    snprintf(dir, sizeof dir, "%s%s", p->mount, p->level);
    if (!has_dotdot(p->level) && fedl_sysfs_is_directory(dir))
        return;
    snprintf(p->note, sizeof p->note,
             "cgroup %s is not under %s: took the mount root as the process's cgroup", p->level,
             p->mount);
    strcpy(p->level, "/");
}

/* Settle on one controller version and its mount; kind NULL when its
 * mount is absent. */
static fedl_status place_in(const fedl_sysfs *fs, const fedl_cgroup_kind *kind, const char *path,
                            fedl_cgroup_place *p, fedl_error *err)
{
    fedl_status status = fedl_sysfs_path(fs, kind->mount, "", "", p->mount, err);
    if (status != FEDL_OK)
        return status;
    if (!fedl_sysfs_is_directory(p->mount)) {
        snprintf(p->note, sizeof p->note, "no %s: no cgroup v%d figure", p->mount, kind->version);
        return FEDL_OK;
    }
    p->kind = kind;
    resolve_level(p, path);
    return FEDL_OK;
}

fedl_status fedl_cgroup_locate(const fedl_sysfs *fs, const char *proc_cgroup,
                               fedl_cgroup_place *out, fedl_error *err)
{
    char path[FEDL_SYSFS_PATH_MAX], text[FEDL_SYSFS_FILE_MAX];
    size_t length;
    int missing;
    fedl_proc_cgroup cg;
    fedl_status status = fedl_sysfs_path(fs, proc_cgroup, "", "", path, err);
    memset(out, 0, sizeof *out);
    if (status == FEDL_OK)
        status = fedl_sysfs_read(path, text, sizeof text, 0, &length, &missing, err);
    if (status != FEDL_OK)
        return status;
    if (missing) {
        snprintf(out->note, sizeof out->note, "no %s: no cgroup figure", path);
        return FEDL_OK;
    }
    status = fedl_proc_cgroup_parse(text, length, path, &cg, err);
    if (status != FEDL_OK)
        return status;
    if (cg.has_v1_memory)
        return place_in(fs, &fedl_cgroup_v1, cg.v1_memory_path, out, err);
    if (cg.has_v2)
        return place_in(fs, &fedl_cgroup_v2, cg.v2_path, out, err);
    snprintf(out->note, sizeof out->note, "%s names no memory cgroup: no cgroup figure", path);
    return FEDL_OK;
}

/* Cut "/a/b" to "/a" and "/a" to "/"; 0 once at "/". */
static int cgroup_parent(char *level)
{
    char *slash = strrchr(level, '/');
    if (strcmp(level, "/") == 0 || slash == NULL)
        return 0;
    if (slash == level)
        level[1] = '\0';
    else
        *slash = '\0';
    return 1;
}

fedl_status fedl_cgroup_dir(const fedl_cgroup_place *p, const char *level, char *dir, size_t size,
                            fedl_error *err)
{
    int n = snprintf(dir, size, "%s%s", p->mount, strcmp(level, "/") == 0 ? "" : level);
    if (n < 0 || (size_t)n >= size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s%s: path too long", p->mount, level);
    return FEDL_OK;
}

fedl_status fedl_cgroup_walk(const fedl_cgroup_place *p, fedl_cgroup_visitor visit, void *user,
                             fedl_error *err)
{
    char level[FEDL_CGROUP_PATH_MAX], dir[FEDL_CGROUP_DIR_MAX];
    fedl_status status;
    if (p->kind == NULL)
        return FEDL_OK;
    memcpy(level, p->level, sizeof level);
    do {
        status = fedl_cgroup_dir(p, level, dir, sizeof dir, err);
        if (status == FEDL_OK)
            status = visit(user, dir, level, err);
        if (status != FEDL_OK)
            return status;
    } while (cgroup_parent(level));
    return FEDL_OK;
}

fedl_status fedl_cgroup_read_value(const char *dir, const char *file, int allow_max,
                                   uint64_t *value, int *unlimited, int *missing, fedl_error *err)
{
    char path[FEDL_CGROUP_DIR_MAX + 64], text[128];
    size_t length;
    fedl_status status;
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    *value = 0;
    *unlimited = 0;
    *missing = 0;
    if (n < 0 || (size_t)n >= sizeof path)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s/%s: path too long", dir, file);
    status = fedl_sysfs_read(path, text, sizeof text, 0, &length, missing, err);
    if (status != FEDL_OK || *missing)
        return status;
    return fedl_cgroup_value_parse(text, length, path, allow_max, value, unlimited, err);
}

fedl_status fedl_cgroup_read_limit(const fedl_cgroup_kind *kind, const char *dir, uint64_t *limit,
                                   int *limited, int *missing, fedl_error *err)
{
    int unlimited;
    fedl_status status = fedl_cgroup_read_value(dir, kind->limit_file, kind->allow_max, limit,
                                                &unlimited, missing, err);
    if (kind->version == 1 && *limit >= FEDL_CGROUP_V1_UNLIMITED)
        unlimited = 1;
    *limited = status == FEDL_OK && !*missing && !unlimited;
    if (!*limited)
        *limit = 0;
    return status;
}

fedl_status fedl_cgroup_read_usage(const fedl_cgroup_kind *kind, const char *dir, uint64_t *usage,
                                   fedl_error *err)
{
    int unlimited, missing;
    return fedl_cgroup_read_value(dir, kind->usage_file, 0, usage, &unlimited, &missing, err);
}
