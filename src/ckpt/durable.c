/*
 * durable.c - durable files and whole-file reading.
 *
 * Owns: the POSIX I/O layer (fedl_io_posix), the one writer of durable files
 * (temp file "<target>.tmp.<pid>" created with O_EXCL in the target's
 * directory -> write -> fsync -> close -> rename over the target -> fsync of
 * the directory), the cleanup of temp files left by crashed writers, the
 * read-only whole-file view (mmap, or a copy when mmap is refused) and the
 * streamed SHA-256 of a file.
 *
 * Temp files left by crashed writers are removed in two places: every
 * durable write first removes the stale temps of its own target (one
 * readdir of the target's directory; "<target>.tmp.<pid>" whose writer is
 * gone, or is this process), so --out files, exports and data manifests
 * do not collect them; and fedl_durable_clean_orphans removes those of
 * every target in a directory (checkpoint directories, when opened). Both
 * go through the fedl_io's unlink, never remove a temp of a live writer,
 * and log each removal at INFO. Failing to remove one is only logged: the
 * write itself goes on.
 *
 * Why a failed fsync is final: after a failed fsync Linux may drop the dirty
 * pages and mark them clean, so a second fsync on the same descriptor can
 * "succeed" without the data ever reaching the disk. The attempt is
 * abandoned instead: the temp file is closed and removed, the old target is
 * left as it was, and the caller sees the error.
 *
 * Two threads of one process must not write the same target at the same
 * time: they would share the temp name "<target>.tmp.<pid>".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fedl/ckpt.h"
#include "internal.h"

#define DURABLE_PATH_MAX 4096
#define TEMP_MARK ".tmp."
#define TEMP_MARK_LENGTH 5
#define SHA256_CHUNK (64 * 1024) /* bytes read per step by fedl_file_sha256 */

/* ------------------------------------------------------------ POSIX I/O */

static int posix_open(void *ud, const char *path, int flags, int mode)
{
    (void)ud;
    return open(path, flags, (mode_t)mode);
}

static ssize_t posix_write(void *ud, int fd, const void *buf, size_t length)
{
    (void)ud;
    return write(fd, buf, length);
}

static int posix_fsync(void *ud, int fd)
{
    (void)ud;
    return fsync(fd);
}

static int posix_close(void *ud, int fd)
{
    (void)ud;
    return close(fd);
}

static int posix_rename(void *ud, const char *from, const char *to)
{
    (void)ud;
    return rename(from, to);
}

static int posix_unlink(void *ud, const char *path)
{
    (void)ud;
    return unlink(path);
}

const fedl_io *fedl_io_posix(void)
{
    static const fedl_io io = {NULL,        posix_open,  posix_write,  posix_fsync,
                               posix_fsync, posix_close, posix_rename, posix_unlink};
    return &io;
}

/* ------------------------------------------------------------ temp names */

/* The pid spelt by digits (1..2^31-1, decimal digits only up to the end of
 * the string), or 0. */
static pid_t parse_pid(const char *digits)
{
    long long pid = 0;
    if (*digits == '\0')
        return 0;
    for (const char *p = digits; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        pid = pid * 10 + (*p - '0');
        if (pid > 0x7fffffffLL)
            return 0;
    }
    return (pid_t)pid;
}

long fedl_durable_temp_pid(const char *name)
{
    const char *mark = NULL, *p = name;
    if (name == NULL)
        return 0;
    while ((p = strstr(p, TEMP_MARK)) != NULL) {
        mark = p;
        p++;
    }
    if (mark == NULL || mark == name)
        return 0;
    return (long)parse_pid(mark + TEMP_MARK_LENGTH);
}

static int process_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* A temp file of writer pid is stale when that writer is gone, or is this
 * process (its callers run before writing, so no write of ours is under
 * way: one target is never written by two threads at once). */
static int temp_is_stale(pid_t pid)
{
    return pid > 0 && (pid == getpid() || !process_alive(pid));
}

/* Remove dir/name if it is a regular file (not following symlinks).
 * Returns 1 removed, 0 not there or not a regular file, -1 failed (errno
 * set). */
static int remove_temp(const fedl_io *io, const char *dir, DIR *d, const char *name, pid_t pid)
{
    char path[DURABLE_PATH_MAX];
    struct stat st;
    if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (io->unlink(io->ud, path) != 0)
        return errno == ENOENT ? 0 : -1;
    if (pid == getpid())
        fedl_log(FEDL_LOG_INFO, "%s: removed a stale temp file of this process", path);
    else
        fedl_log(FEDL_LOG_INFO, "%s: removed orphaned temp file (writer pid %ld is gone)", path,
                 (long)pid);
    return 1;
}

/* ------------------------------------------------------------ durable write */

static void directory_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Before writing path: remove "<basename>.tmp.<pid>" files of stale
 * writers (see temp_is_stale) from path's directory. One readdir; any
 * failure is logged and the write goes on (a leftover of our own pid is
 * still handled by create_temp). */
static void remove_stale_temps(const fedl_io *io, const char *path)
{
    char dir[DURABLE_PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;
    size_t base_length = strlen(base);
    struct dirent *entry;
    DIR *d;
    if (base_length == 0) /* "dir/": not a file; the create that follows says so */
        return;
    directory_of(path, dir, sizeof dir);
    d = opendir(dir);
    if (d == NULL) /* the create that follows reports a missing directory */
        return;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        pid_t pid;
        if (strncmp(name, base, base_length) != 0 ||
            strncmp(name + base_length, TEMP_MARK, TEMP_MARK_LENGTH) != 0)
            continue;
        pid = parse_pid(name + base_length + TEMP_MARK_LENGTH);
        if (temp_is_stale(pid) && remove_temp(io, dir, d, name, pid) < 0)
            fedl_log(FEDL_LOG_WARN, "%s/%s: cannot remove stale temp file: %s", dir, name,
                     strerror(errno));
    }
    closedir(d);
}

/* Create the temp file; a leftover with our own pid (an earlier run of a
 * process that got the same pid, or an earlier failed unlink) is removed
 * and the creation tried once more. */
static int create_temp(const fedl_io *io, const char *temp)
{
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
    int fd = io->open(io->ud, temp, flags, 0644);
    if (fd < 0 && errno == EEXIST) {
        fedl_log(FEDL_LOG_INFO, "%s: removing a stale temp file of this pid", temp);
        if (io->unlink(io->ud, temp) != 0 && errno != ENOENT)
            return -1;
        fd = io->open(io->ud, temp, flags, 0644);
    }
    return fd;
}

/* Write every piece, continuing short writes and retrying EINTR. Returns 0,
 * or -1 with errno set and *written the byte offset that failed. A write
 * that returns 0 makes no progress and is reported as ENOSPC. */
static int write_pieces(const fedl_io *io, int fd, const fedl_iovec *pieces, int count,
                        uint64_t *written)
{
    *written = 0;
    for (int i = 0; i < count; i++) {
        const unsigned char *p = pieces[i].base;
        size_t done = 0;
        while (done < pieces[i].length) {
            ssize_t n = io->write(io->ud, fd, p + done, pieces[i].length - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = ENOSPC;
                return -1;
            }
            if ((size_t)n > pieces[i].length - done) { /* a broken io layer */
                errno = EIO;
                return -1;
            }
            done += (size_t)n;
            *written += (uint64_t)n;
        }
    }
    return 0;
}

static uint64_t total_length(const fedl_iovec *pieces, int count)
{
    uint64_t total = 0;
    for (int i = 0; i < count; i++)
        total += pieces[i].length;
    return total;
}

/* Open the directory holding path and fsync it, so the rename survives a
 * power loss. */
static fedl_status sync_directory(const fedl_io *io, const char *path, fedl_error *err)
{
    char dir[DURABLE_PATH_MAX];
    int fd, e;
    directory_of(path, dir, sizeof dir);
    fd = io->open(io->ud, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: directory fsync failed: cannot open %s: %s (the new file is in "
                              "place but may not survive a power loss)",
                              path, dir, strerror(errno));
    if (io->dir_fsync(io->ud, fd) != 0) {
        e = errno;
        io->close(io->ud, fd);
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: directory fsync failed on %s: %s (the new file is in place "
                              "but may not survive a power loss)",
                              path, dir, strerror(e));
    }
    io->close(io->ud, fd); /* a read-only descriptor: nothing to lose */
    return FEDL_OK;
}

static fedl_status check_pieces(const char *path, const fedl_iovec *pieces, int count,
                                fedl_error *err)
{
    if (path == NULL || path[0] == '\0')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "durable write: empty path");
    if (count < 0 || (count > 0 && pieces == NULL))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: %d pieces given without data", path,
                              count);
    for (int i = 0; i < count; i++)
        if (pieces[i].base == NULL && pieces[i].length > 0)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: piece %d has no data", path, i);
    return FEDL_OK;
}

fedl_status fedl_durable_writev(const fedl_io *io, const char *path, const fedl_iovec *pieces,
                                int count, fedl_error *err)
{
    char temp[DURABLE_PATH_MAX];
    uint64_t written;
    int fd, e;
    fedl_status st = check_pieces(path, pieces, count, err);
    if (st != FEDL_OK)
        return st;
    if (io == NULL)
        io = fedl_io_posix();
    if (snprintf(temp, sizeof temp, "%s" TEMP_MARK "%ld", path, (long)getpid()) >= (int)sizeof temp)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: path too long", path);

    remove_stale_temps(io, path);
    fd = create_temp(io, temp);
    if (fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: create failed for temp file %s: %s", path,
                              temp, strerror(errno));
    if (write_pieces(io, fd, pieces, count, &written) != 0) {
        e = errno;
        io->close(io->ud, fd);
        io->unlink(io->ud, temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: write failed at byte %llu of %llu: %s", path,
                              (unsigned long long)written,
                              (unsigned long long)total_length(pieces, count), strerror(e));
    }
    if (io->fsync(io->ud, fd) != 0) { /* final: see the file comment */
        e = errno;
        io->close(io->ud, fd);
        io->unlink(io->ud, temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: fsync failed: %s (old file left untouched)",
                              path, strerror(e));
    }
    if (io->close(io->ud, fd) != 0) {
        e = errno;
        io->unlink(io->ud, temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: close failed: %s (old file left untouched)",
                              path, strerror(e));
    }
    if (io->rename(io->ud, temp, path) != 0) {
        e = errno;
        io->unlink(io->ud, temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: rename failed (from %s): %s", path, temp,
                              strerror(e));
    }
    return sync_directory(io, path, err);
}

fedl_status fedl_durable_write(const char *path, const void *bytes, size_t length, fedl_error *err)
{
    fedl_iovec piece;
    piece.base = bytes;
    piece.length = length;
    return fedl_durable_writev(fedl_io_posix(), path, &piece, 1, err);
}

/* ------------------------------------------------------------ orphan cleanup */

/* Remove one orphan: 1 removed, 0 skipped, -1 failed (errno set). */
static int remove_orphan(const fedl_io *io, const char *dir, DIR *d, const char *name)
{
    pid_t pid = (pid_t)fedl_durable_temp_pid(name);
    if (!temp_is_stale(pid))
        return 0;
    return remove_temp(io, dir, d, name, pid);
}

fedl_status fedl_durable_clean_orphans(const fedl_io *io, const char *dir, int *removed,
                                       fedl_error *err)
{
    DIR *d;
    struct dirent *entry;
    int count = 0;
    if (removed != NULL)
        *removed = 0;
    if (dir == NULL || dir[0] == '\0')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "clean orphans: empty directory name");
    if (io == NULL)
        io = fedl_io_posix();
    d = opendir(dir);
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot list directory: %s", dir,
                              strerror(errno));
    while ((entry = readdir(d)) != NULL) {
        int r = remove_orphan(io, dir, d, entry->d_name);
        if (r < 0) {
            int e = errno;
            closedir(d);
            if (removed != NULL)
                *removed = count;
            return fedl_error_set(err, FEDL_ERR_IO, "%s/%s: cannot remove orphaned temp file: %s",
                                  dir, entry->d_name, strerror(e));
        }
        count += r;
    }
    closedir(d);
    if (removed != NULL)
        *removed = count;
    return FEDL_OK;
}

/* ------------------------------------------------------------ reading files */

/* Read up to length bytes from fd, retrying EINTR; *got receives how many
 * arrived (fewer at end of file). Returns 0, or -1 with errno set. */
static int read_fully(int fd, uint8_t *buf, size_t length, size_t *got)
{
    *got = 0;
    while (*got < length) {
        ssize_t n = read(fd, buf + *got, length - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        *got += (size_t)n;
    }
    return 0;
}

static fedl_status view_read_copy(const char *path, int fd, size_t length, fedl_allocator *alloc,
                                  fedl_file_view *view, fedl_error *err)
{
    size_t got;
    uint8_t *buf = fedl_mem_alloc(alloc, length);
    if (buf == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path,
                              length);
    if (read_fully(fd, buf, length, &got) != 0) {
        int e = errno;
        fedl_mem_free(alloc, buf, length);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: read failed at byte %zu: %s", path, got,
                              strerror(e));
    }
    if (got != length) {
        fedl_mem_free(alloc, buf, length);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: file shrank while reading (%zu of %zu bytes)",
                              path, got, length);
    }
    view->bytes = buf;
    view->mapped = 0;
    return FEDL_OK;
}

/* Open path for reading without blocking on a FIFO; it must be a regular
 * file. */
static fedl_status open_regular(const char *path, int *fd_out, struct stat *st, fedl_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    *fd_out = -1;
    if (fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: not a regular file", path);
    }
    *fd_out = fd;
    return FEDL_OK;
}

fedl_status fedl_file_view_open(const char *path, fedl_allocator *alloc, fedl_file_view *view,
                                fedl_error *err)
{
    static const uint8_t empty = 0;
    struct stat st;
    fedl_status status = FEDL_OK;
    void *map;
    int fd;
    if (view == NULL || path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "file view: no path or view given");
    memset(view, 0, sizeof *view);
    view->alloc = alloc != NULL ? alloc : fedl_allocator_default();
    status = open_regular(path, &fd, &st, err);
    if (status != FEDL_OK)
        return status;
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "%s: %lld bytes do not fit in memory",
                              path, (long long)st.st_size);
    }
    view->length = (size_t)st.st_size;
    if (view->length == 0) {
        view->bytes = &empty;
    } else {
        map = mmap(NULL, view->length, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            view->bytes = map;
            view->mapped = 1;
        } else {
            status = view_read_copy(path, fd, view->length, view->alloc, view, err);
        }
    }
    close(fd);
    if (status != FEDL_OK)
        memset(view, 0, sizeof *view);
    return status;
}

void fedl_file_view_close(fedl_file_view *view)
{
    if (view == NULL || view->bytes == NULL)
        return;
    if (view->mapped)
        munmap((void *)(uintptr_t)view->bytes, view->length);
    else if (view->length > 0)
        fedl_mem_free(view->alloc, (void *)(uintptr_t)view->bytes, view->length);
    memset(view, 0, sizeof *view);
}

fedl_status fedl_file_sha256(const char *path, uint64_t *size, uint8_t digest[FEDL_SHA256_BYTES],
                             fedl_error *err)
{
    fedl_sha256_ctx ctx;
    struct stat st;
    uint64_t total = 0;
    uint8_t *chunk;
    fedl_status status;
    int fd;
    if (path == NULL || digest == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "file SHA-256: no path or digest given");
    status = open_regular(path, &fd, &st, err);
    if (status != FEDL_OK)
        return status;
    chunk = fedl_mem_alloc(NULL, SHA256_CHUNK);
    if (chunk == NULL) {
        close(fd);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a read buffer", path);
    }
    fedl_sha256_init(&ctx);
    for (;;) {
        ssize_t n = read(fd, chunk, SHA256_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            fedl_mem_free(NULL, chunk, SHA256_CHUNK);
            close(fd);
            return fedl_error_set(err, FEDL_ERR_IO, "%s: read failed at byte %llu: %s", path,
                                  (unsigned long long)total, strerror(e));
        }
        if (n == 0)
            break;
        fedl_sha256_update(&ctx, chunk, (size_t)n);
        total += (uint64_t)n;
    }
    fedl_mem_free(NULL, chunk, SHA256_CHUNK);
    close(fd);
    fedl_sha256_final(&ctx, digest);
    if (size != NULL)
        *size = total;
    return FEDL_OK;
}
