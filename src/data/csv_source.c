/*
 * csv_source.c - the bytes under the CSV reader: a file descriptor, a memory
 * block or a read callback, inflated on the fly when they are gzip.
 *
 * Gzip is recognised by its two magic bytes, whatever the name, so a
 * "data.csv" that is really compressed, or gzip arriving on stdin, reads
 * the same. zlib's inflate (not gzread, which would take its buffers from
 * malloc behind the allocator's back) runs through fedl's allocator with a
 * 32 KiB window and a 16 KiB input buffer. Members written back to back
 * (gzip -c a >> b) are read in turn; anything else after a member, and a
 * stream that stops before its trailer, are errors.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "data/csv_internal.h"

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return fedl_mem_alloc_aligned(opaque, (size_t)items * size, 16);
}

static void zlib_free(voidpf opaque, voidpf address)
{
    fedl_mem_free_aligned(opaque, address);
}

/* Up to n raw (possibly compressed) bytes; *got == 0 only at the end. */
static fedl_status raw_read(csv_source *s, unsigned char *dst, size_t n, size_t *got,
                            fedl_error *err)
{
    *got = 0;
    if (s->raw_eof || n == 0)
        return FEDL_OK;
    switch (s->kind) {
    case CSV_SOURCE_FILE: {
        ssize_t r;
        if (n > (size_t)SSIZE_MAX)
            n = (size_t)SSIZE_MAX;
        do {
            r = read(s->fd, dst, n);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return fedl_error_set(err, FEDL_ERR_IO, "%s: read failed at byte %llu: %s", s->name,
                                  (unsigned long long)s->raw_consumed, strerror(errno));
        *got = (size_t)r;
        break;
    }
    case CSV_SOURCE_MEMORY: {
        size_t left = s->mem_length - s->mem_position;
        *got = left < n ? left : n;
        if (*got > 0)
            memcpy(dst, s->mem + s->mem_position, *got);
        s->mem_position += *got;
        break;
    }
    case CSV_SOURCE_CALLBACK: {
        size_t r = 0;
        fedl_status status = s->read(s->read_ud, dst, n, &r, err);
        if (status != FEDL_OK) {
            if (err != NULL && err->status == FEDL_OK)
                fedl_error_set(err, status, "%s: read callback failed at byte %llu: %s", s->name,
                               (unsigned long long)s->raw_consumed, fedl_strerror(status));
            return status;
        }
        if (r > n)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "%s: read callback reported %zu bytes for a %zu-byte buffer",
                                  s->name, r, n);
        *got = r;
        break;
    }
    }
    if (*got == 0)
        s->raw_eof = 1;
    s->raw_consumed += *got;
    return FEDL_OK;
}

fedl_status csv_source_start(csv_source *s, fedl_error *err)
{
    s->head_length = 0;
    s->head_position = 0;
    /* Read until the two magic bytes are in (a pipe may deliver fewer). */
    while (s->head_length < sizeof s->head && !s->raw_eof) {
        size_t got = 0;
        fedl_status status =
            raw_read(s, s->head + s->head_length, sizeof s->head - s->head_length, &got, err);
        if (status != FEDL_OK)
            return status;
        s->head_length += got;
    }
    if (s->head_length < 2 || s->head[0] != 0x1f || s->head[1] != 0x8b)
        return FEDL_OK;

    s->gzip = 1;
    s->zin = fedl_mem_alloc(s->alloc, CSV_GZIP_INPUT_BYTES);
    if (s->zin == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a %d-byte gzip buffer",
                              s->name, CSV_GZIP_INPUT_BYTES);
    memcpy(s->zin, s->head, s->head_length);
    memset(&s->zs, 0, sizeof s->zs);
    s->zs.zalloc = zlib_alloc;
    s->zs.zfree = zlib_free;
    s->zs.opaque = s->alloc;
    s->zs.next_in = s->zin;
    s->zs.avail_in = (uInt)s->head_length;
    switch (inflateInit2(&s->zs, 15 + 16)) { /* 32 KiB window, gzip wrapper only */
    case Z_OK:
        s->zlib_ready = 1;
        return FEDL_OK;
    case Z_MEM_ERROR:
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate zlib state", s->name);
    default:
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "%s: zlib refuses to inflate (%s)",
                              s->name, s->zs.msg != NULL ? s->zs.msg : "version mismatch");
    }
}

/* Offset in the raw input of the next compressed byte inflate will take. */
static unsigned long long compressed_offset(const csv_source *s)
{
    return (unsigned long long)(s->raw_consumed - s->zs.avail_in);
}

static fedl_status gzip_inflate(csv_source *s, unsigned char *dst, size_t n, size_t *got,
                                fedl_error *err)
{
    z_stream *zs = &s->zs;
    *got = 0;
    /* Loop until some output arrives: inflate may consume a whole input
     * buffer of headers without producing a byte. */
    while (*got == 0 && !s->stream_end) {
        uInt want = n > UINT_MAX ? UINT_MAX : (uInt)n;
        int rc;
        if (zs->avail_in == 0 && !s->raw_eof) {
            size_t filled = 0;
            fedl_status status = raw_read(s, s->zin, CSV_GZIP_INPUT_BYTES, &filled, err);
            if (status != FEDL_OK)
                return status;
            zs->next_in = s->zin;
            zs->avail_in = (uInt)filled;
        }
        if (s->member_done) {
            /* Several members back to back are one file; anything else
             * after a member is an error, reported below. */
            if (zs->avail_in == 0) {
                s->stream_end = 1;
                break;
            }
            /* zlib tells when the next member's header is complete: bytes
             * rejected before that are "not gzip", not "corrupt". */
            memset(&s->member_header, 0, sizeof s->member_header);
            if (inflateReset(zs) != Z_OK || inflateGetHeader(zs, &s->member_header) != Z_OK)
                return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: cannot restart inflate", s->name);
            s->member_done = 0;
            s->next_member = 1;
        }
        zs->next_out = dst;
        zs->avail_out = want;
        rc = inflate(zs, Z_NO_FLUSH);
        *got = want - zs->avail_out;
        switch (rc) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            s->member_done = 1;
            break;
        case Z_BUF_ERROR:
            /* No progress: legitimate only while more input may come. */
            if (zs->avail_in == 0 && s->raw_eof)
                return fedl_error_set(err, FEDL_ERR_FORMAT,
                                      "%s: gzip stream ends early at compressed byte %llu "
                                      "(truncated?)",
                                      s->name, (unsigned long long)s->raw_consumed);
            if (zs->avail_in == 0)
                break;
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: gzip data is corrupt near compressed byte %llu", s->name,
                                  compressed_offset(s));
        case Z_MEM_ERROR:
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: out of memory while inflating",
                                  s->name);
        default:
            if (s->next_member && s->member_header.done != 1)
                return fedl_error_set(err, FEDL_ERR_FORMAT,
                                      "%s: bytes after the end of the gzip stream at compressed "
                                      "byte %llu are not gzip (%s)",
                                      s->name, compressed_offset(s),
                                      zs->msg != NULL ? zs->msg : "bad header");
            return fedl_error_set(
                err, FEDL_ERR_FORMAT, "%s: gzip data is corrupt near compressed byte %llu (%s)",
                s->name, compressed_offset(s), zs->msg != NULL ? zs->msg : "inflate failed");
        }
        if (*got == 0 && rc == Z_OK && zs->avail_in == 0 && s->raw_eof)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: gzip stream ends early at compressed byte %llu "
                                  "(truncated?)",
                                  s->name, (unsigned long long)s->raw_consumed);
    }
    return FEDL_OK;
}

/* Inflate into dst. An error met in a call that also produced bytes is kept
 * for the next call, so the bytes before a corrupt spot (or before a bad
 * CRC at the end) reach the reader whatever the buffer sizes are, and the
 * error comes at the same place in the data every time. */
static fedl_status gzip_read(csv_source *s, unsigned char *dst, size_t n, size_t *got,
                             fedl_error *err)
{
    fedl_status status;
    if (s->pending.status == FEDL_OK) {
        fedl_error_clear(&s->pending);
        status = gzip_inflate(s, dst, n, got, &s->pending);
        if (status == FEDL_OK)
            return FEDL_OK;
        s->pending.status = status;
        if (*got > 0)
            return FEDL_OK;
    }
    *got = 0;
    if (err != NULL)
        *err = s->pending;
    return s->pending.status;
}

fedl_status csv_source_read(csv_source *s, unsigned char *dst, size_t n, size_t *got,
                            fedl_error *err)
{
    *got = 0;
    if (n == 0)
        return FEDL_OK;
    if (s->gzip)
        return gzip_read(s, dst, n, got, err);
    if (s->head_position < s->head_length) {
        size_t take = s->head_length - s->head_position;
        if (take > n)
            take = n;
        memcpy(dst, s->head + s->head_position, take);
        s->head_position += take;
        *got = take;
        return FEDL_OK;
    }
    return raw_read(s, dst, n, got, err);
}

fedl_status csv_source_seek(csv_source *s, uint64_t offset, fedl_error *err)
{
    if (s->gzip)
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "%s: cannot seek in gzip data (decompress it for random access)",
                              s->name);
    switch (s->kind) {
    case CSV_SOURCE_FILE: {
        off_t at;
        if (offset > (uint64_t)INT64_MAX)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: offset %llu is too large",
                                  s->name, (unsigned long long)offset);
        at = lseek(s->fd, (off_t)offset, SEEK_SET);
        if (at < 0)
            return fedl_error_set(err, errno == ESPIPE ? FEDL_ERR_UNSUPPORTED : FEDL_ERR_IO,
                                  "%s: cannot seek to byte %llu: %s", s->name,
                                  (unsigned long long)offset, strerror(errno));
        break;
    }
    case CSV_SOURCE_MEMORY:
        s->mem_position = offset > s->mem_length ? s->mem_length : (size_t)offset;
        break;
    case CSV_SOURCE_CALLBACK:
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "%s: cannot seek in a callback input",
                              s->name);
    }
    /* The head bytes are the input's first two: past them they are read
     * again from the input itself. */
    s->head_position = offset < s->head_length ? (size_t)offset : s->head_length;
    if (s->kind == CSV_SOURCE_FILE && offset < s->head_length) {
        if (lseek(s->fd, (off_t)s->head_length, SEEK_SET) < 0)
            return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot seek: %s", s->name,
                                  strerror(errno));
    } else if (s->kind == CSV_SOURCE_MEMORY && offset < s->head_length) {
        s->mem_position = s->head_length;
    }
    s->raw_eof = 0;
    s->raw_consumed = offset;
    return FEDL_OK;
}

void csv_source_close(csv_source *s)
{
    if (s->zlib_ready)
        inflateEnd(&s->zs);
    s->zlib_ready = 0;
    if (s->kind == CSV_SOURCE_FILE && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    fedl_mem_free(s->alloc, s->zin, s->zin != NULL ? CSV_GZIP_INPUT_BYTES : 0);
    s->zin = NULL;
}
