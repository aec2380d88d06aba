/*
 * durable.c - the one function that writes durable files: temp file (O_EXCL,
 * same directory) -> write -> fsync -> rename -> fsync(directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fedl/ckpt.h"

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

fedl_status fedl_durable_write(const char *path, const void *bytes, size_t length, fedl_error *err)
{
    char temp[4096], dir[4096];
    const unsigned char *p = bytes;
    size_t done = 0;
    int fd, dir_fd;
    if (snprintf(temp, sizeof temp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof temp)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: path too long", path);
    fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) { /* a stale temp of an earlier crashed run with our pid */
        unlink(temp);
        fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot create: %s", temp, strerror(errno));
    while (done < length) {
        ssize_t n = write(fd, p + done, length - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(temp);
            return fedl_error_set(err, FEDL_ERR_IO, "%s: write failed at byte %zu: %s", temp, done,
                                  strerror(e));
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: fsync failed: %s", temp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: close failed: %s", temp, strerror(e));
    }
    if (rename(temp, path) != 0) {
        int e = errno;
        unlink(temp);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    directory_of(path, dir, sizeof dir);
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open directory: %s", dir,
                              strerror(errno));
    if (fsync(dir_fd) != 0) {
        int e = errno;
        close(dir_fd);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: directory fsync failed: %s", dir, strerror(e));
    }
    close(dir_fd);
    return FEDL_OK;
}

/* STUB: generated placeholders, replaced by the real implementation. */
const fedl_io *fedl_io_posix(void)
{
    return NULL;
}

fedl_status fedl_durable_writev(const fedl_io *io, const char *path, const fedl_iovec *pieces,
                                int count, fedl_error *err)
{
    (void)io;
    (void)path;
    (void)pieces;
    (void)count;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_durable_writev: not implemented yet");
}

fedl_status fedl_durable_clean_orphans(const fedl_io *io, const char *dir, int *removed,
                                       fedl_error *err)
{
    (void)io;
    (void)dir;
    (void)removed;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_durable_clean_orphans: not implemented yet");
}

fedl_status fedl_file_view_open(const char *path, fedl_allocator *alloc, fedl_file_view *view,
                                fedl_error *err)
{
    (void)path;
    (void)alloc;
    (void)view;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_file_view_open: not implemented yet");
}

void fedl_file_view_close(fedl_file_view *view)
{
    (void)view;
}

fedl_status fedl_file_sha256(const char *path, uint64_t *size, uint8_t digest[FEDL_SHA256_BYTES],
                             fedl_error *err)
{
    (void)path;
    (void)size;
    (void)digest;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "fedl_file_sha256: not implemented yet");
}
