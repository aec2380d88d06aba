/*
 * idx.c - the IDX file format of MNIST and Fashion-MNIST: reading plain or
 * gzipped files in bounded memory, parsing images already in memory, and
 * checking every header field against the payload.
 *
 * An IDX file is
 *
 *     bytes 0-1     0x00 0x00
 *     byte  2       data type (0x08 = unsigned byte, the only one accepted)
 *     byte  3       number of dimensions (1 to FEDL_IDX_MAX_DIMS here)
 *     4 * ndim      the dimensions, big-endian uint32, each > 0
 *     payload       exactly the product of the dimensions in bytes
 *
 * A gzipped file (magic 0x1f 0x8b) is inflated as a stream straight into the
 * payload buffer, so reading needs the payload, zlib's 32 KiB window and one
 * input buffer, however large the file is. zlib allocates through fedl's
 * allocator like everything else. Before the payload is allocated its size is
 * checked against what the file can hold (a plain file must match exactly; a
 * gzip file can expand at most 1032-fold), so a lying 20-byte header cannot
 * make us reserve gigabytes. A pipe has no size to check: there the buffer is
 * allocated unzeroed, so pages the data never reaches are never touched, and
 * the allocator's limit caps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "fedl/data.h"

#define IDX_TYPE_UBYTE 0x08
#define IDX_PREFIX_BYTES 4
#define IDX_INPUT_BYTES 16384 /* raw file bytes read per read() call */

/* zlib's documented worst case for deflate is 1032 output bytes per input
 * byte; the slack covers gzip headers of tiny files. */
#define GZIP_MAX_RATIO 1032u
#define GZIP_RATIO_SLACK 4096u

typedef struct idx_header {
    int ndim;
    uint32_t dims[FEDL_IDX_MAX_DIMS];
    size_t header_bytes;  /* 4 + 4 * ndim */
    size_t payload_bytes; /* product of dims */
} idx_header;

/* ------------------------------------------------------------ header checks */

static const char *idx_type_name(unsigned type)
{
    switch (type) {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "int16";
    case 0x0C:
        return "int32";
    case 0x0D:
        return "float32";
    case 0x0E:
        return "float64";
    default:
        return NULL;
    }
}

/* Bytes 0-3: magic, type and the number of dimensions. */
static fedl_status check_prefix(const uint8_t prefix[IDX_PREFIX_BYTES], const char *name,
                                idx_header *h, fedl_error *err)
{
    if (prefix[0] == 0x1f && prefix[1] == 0x8b)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: magic bytes 0-1 are 0x1f 0x8b: gzip data, not IDX (decompress "
                              "it first, or read the file with fedl_idx_read)",
                              name);
    if (prefix[0] != 0 || prefix[1] != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: magic bytes 0-1 are 0x%02x 0x%02x, expected 0x00 0x00 "
                              "(not an IDX file)",
                              name, prefix[0], prefix[1]);
    if (prefix[2] != IDX_TYPE_UBYTE) {
        const char *type = idx_type_name(prefix[2]);
        if (type != NULL)
            return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                                  "%s: data type (byte 2) is 0x%02x (%s); only 0x08 (unsigned "
                                  "byte) is supported",
                                  name, prefix[2], type);
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: data type (byte 2) is 0x%02x, which is no IDX type; expected "
                              "0x08 (unsigned byte)",
                              name, prefix[2]);
    }
    if (prefix[3] < 1 || prefix[3] > FEDL_IDX_MAX_DIMS)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: dimension count (byte 3) is %u, expected 1 to %d", name,
                              prefix[3], FEDL_IDX_MAX_DIMS);
    h->ndim = prefix[3];
    h->header_bytes = IDX_PREFIX_BYTES + 4 * (size_t)h->ndim;
    return FEDL_OK;
}

/* Bytes 4 .. 4 + 4 * ndim: the dimensions and their product. */
static fedl_status check_dims(const uint8_t *bytes, const char *name, idx_header *h,
                              fedl_error *err)
{
    size_t product = 1;
    for (int i = 0; i < h->ndim; i++) {
        const uint8_t *p = bytes + 4 * i;
        uint32_t dim = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        int first = IDX_PREFIX_BYTES + 4 * i;
        if (dim == 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: dimension %d (header bytes %d-%d) is 0", name, i, first,
                                  first + 3);
        if (product > SIZE_MAX / dim)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: dimension %d (header bytes %d-%d) is %lu and the "
                                  "product of the dimensions overflows the address space",
                                  name, i, first, first + 3, (unsigned long)dim);
        product *= dim;
        h->dims[i] = dim;
    }
    h->payload_bytes = product;
    return FEDL_OK;
}

static fedl_status payload_mismatch(const char *name, unsigned long long actual, size_t promised,
                                    fedl_error *err)
{
    if (actual < promised)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: payload is %llu bytes, header promises %zu (truncated?)", name,
                              actual, promised);
    return fedl_error_set(err, FEDL_ERR_FORMAT,
                          "%s: payload is %llu bytes, header promises %zu (%llu trailing bytes)",
                          name, actual, promised, actual - (unsigned long long)promised);
}

/* ------------------------------------------------------------------ parsing */

fedl_status fedl_idx_parse(const uint8_t *bytes, size_t length, const char *name,
                           fedl_allocator *alloc, fedl_idx *out, fedl_error *err)
{
    idx_header h;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_idx_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (name == NULL)
        name = "<memory>";
    if (bytes == NULL && length > 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: bytes is NULL", name);
    if (length < IDX_PREFIX_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %zu bytes is too short for an IDX header (bytes 0-3: magic, "
                              "type, dimension count)",
                              name, length);
    memset(&h, 0, sizeof h);
    status = check_prefix(bytes, name, &h, err);
    if (status != FEDL_OK)
        return status;
    if (length < h.header_bytes)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: header of %d dimensions needs %zu bytes, input has only %zu",
                              name, h.ndim, h.header_bytes, length);
    status = check_dims(bytes + IDX_PREFIX_BYTES, name, &h, err);
    if (status != FEDL_OK)
        return status;
    if (length - h.header_bytes != h.payload_bytes)
        return payload_mismatch(name, (unsigned long long)(length - h.header_bytes),
                                h.payload_bytes, err);

    out->data = fedl_mem_realloc(alloc, NULL, 0, h.payload_bytes); /* (dims...) */
    if (out->data == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes of payload", name,
                              h.payload_bytes);
    memcpy(out->data, bytes + h.header_bytes, h.payload_bytes);
    out->ndim = h.ndim;
    memcpy(out->dims, h.dims, sizeof out->dims);
    out->size = h.payload_bytes;
    return FEDL_OK;
}

void fedl_idx_free(fedl_idx *idx, fedl_allocator *alloc)
{
    if (idx == NULL)
        return;
    fedl_mem_free(alloc, idx->data, idx->size);
    memset(idx, 0, sizeof *idx);
}

/* --------------------------------------------------------- the byte source */

/* Decompressed (or plain) bytes of one open file. */
typedef struct idx_source {
    const char *name;
    fedl_allocator *alloc;
    int fd;
    int gzip;           /* the file starts with 0x1f 0x8b */
    int zlib_ready;     /* inflateInit2 succeeded: inflateEnd is due */
    int file_eof;       /* read() returned 0 */
    int member_done;    /* inflate reached the end of a gzip member */
    int stream_end;     /* a member ended and the file ended with it */
    int truncated;      /* the gzip stream stopped in the middle */
    uint8_t *in;        /* (IDX_INPUT_BYTES) raw bytes read from the file */
    size_t in_len;      /* plain: valid bytes in in */
    size_t in_pos;      /* plain: next unread byte in in */
    uint64_t raw_read;  /* file bytes read so far */
    uint64_t delivered; /* bytes handed to the caller so far */
    z_stream zs;
} idx_source;

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

static fedl_status raw_read(idx_source *src, uint8_t *dst, size_t n, size_t *got, fedl_error *err)
{
    ssize_t r;
    *got = 0;
    if (n > (size_t)SSIZE_MAX)
        n = (size_t)SSIZE_MAX;
    do {
        r = read(src->fd, dst, n);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: read failed at byte %llu: %s", src->name,
                              (unsigned long long)src->raw_read, strerror(errno));
    if (r == 0)
        src->file_eof = 1;
    src->raw_read += (uint64_t)r;
    *got = (size_t)r;
    return FEDL_OK;
}

/* Offset in the file of the next compressed byte inflate will consume. */
static unsigned long long compressed_offset(const idx_source *src)
{
    return (unsigned long long)(src->raw_read - src->zs.avail_in);
}

/* Inflate up to n bytes into dst. Stops short only at the end of the data,
 * with src->truncated set when the gzip stream was cut off. */
static fedl_status gzip_read(idx_source *src, uint8_t *dst, size_t n, size_t *got, fedl_error *err)
{
    z_stream *zs = &src->zs;
    *got = 0;
    while (*got < n && !src->stream_end && !src->truncated) {
        uInt want;
        int rc;
        int after_member = 0;
        if (zs->avail_in == 0 && !src->file_eof) {
            size_t filled = 0;
            fedl_status status = raw_read(src, src->in, IDX_INPUT_BYTES, &filled, err);
            if (status != FEDL_OK)
                return status;
            zs->next_in = src->in;
            zs->avail_in = (uInt)filled;
        }
        if (src->member_done) {
            /* A gzip file may hold several members back to back; anything
             * else after a member is an error, reported below. */
            if (zs->avail_in == 0) {
                src->stream_end = 1;
                break;
            }
            if (inflateReset(zs) != Z_OK)
                return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: cannot restart inflate",
                                      src->name);
            src->member_done = 0;
            after_member = 1;
        }
        want = n - *got > UINT_MAX ? UINT_MAX : (uInt)(n - *got);
        zs->next_out = dst + *got;
        zs->avail_out = want;
        rc = inflate(zs, Z_NO_FLUSH);
        *got += want - zs->avail_out;
        switch (rc) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            src->member_done = 1;
            break;
        case Z_BUF_ERROR:
            /* No progress possible: only legitimate when the input is gone. */
            if (zs->avail_in == 0 && src->file_eof) {
                src->truncated = 1;
                break;
            }
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: gzip data is corrupt near compressed byte %llu", src->name,
                                  compressed_offset(src));
        case Z_MEM_ERROR:
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: out of memory while inflating",
                                  src->name);
        default:
            if (after_member)
                return fedl_error_set(err, FEDL_ERR_FORMAT,
                                      "%s: bytes after the end of the gzip stream at compressed "
                                      "byte %llu are not gzip (%s)",
                                      src->name, compressed_offset(src),
                                      zs->msg != NULL ? zs->msg : "bad header");
            return fedl_error_set(
                err, FEDL_ERR_FORMAT, "%s: gzip data is corrupt near compressed byte %llu (%s)",
                src->name, compressed_offset(src), zs->msg != NULL ? zs->msg : "inflate failed");
        }
    }
    src->delivered += *got;
    return FEDL_OK;
}

static fedl_status plain_read(idx_source *src, uint8_t *dst, size_t n, size_t *got, fedl_error *err)
{
    *got = 0;
    if (src->in_pos < src->in_len) {
        size_t take = src->in_len - src->in_pos < n ? src->in_len - src->in_pos : n;
        memcpy(dst, src->in + src->in_pos, take);
        src->in_pos += take;
        *got = take;
    }
    while (*got < n && !src->file_eof) {
        size_t r = 0;
        fedl_status status = raw_read(src, dst + *got, n - *got, &r, err);
        if (status != FEDL_OK)
            return status;
        *got += r;
    }
    src->delivered += *got;
    return FEDL_OK;
}

/* Up to n bytes; fewer only at the end of the data. */
static fedl_status source_read(idx_source *src, uint8_t *dst, size_t n, size_t *got,
                               fedl_error *err)
{
    return src->gzip ? gzip_read(src, dst, n, got, err) : plain_read(src, dst, n, got, err);
}

static fedl_status source_open(idx_source *src, const char *path, fedl_allocator *alloc,
                               fedl_error *err)
{
    memset(src, 0, sizeof *src);
    src->name = path;
    src->alloc = alloc;
    do {
        src->fd = open(path, O_RDONLY);
    } while (src->fd < 0 && errno == EINTR);
    if (src->fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    src->in = fedl_mem_realloc(alloc, NULL, 0, IDX_INPUT_BYTES);
    if (src->in == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a %d-byte read buffer",
                              path, IDX_INPUT_BYTES);
    /* Read until the two magic bytes are in (a pipe may deliver fewer). */
    while (src->in_len < 2 && !src->file_eof) {
        size_t r = 0;
        fedl_status status =
            raw_read(src, src->in + src->in_len, IDX_INPUT_BYTES - src->in_len, &r, err);
        if (status != FEDL_OK)
            return status;
        src->in_len += r;
    }
    if (src->in_len >= 2 && src->in[0] == 0x1f && src->in[1] == 0x8b) {
        src->gzip = 1;
        src->zs.zalloc = zlib_alloc;
        src->zs.zfree = zlib_free;
        src->zs.opaque = alloc;
        src->zs.next_in = src->in;
        src->zs.avail_in = (uInt)src->in_len;
        switch (inflateInit2(&src->zs, 15 + 16)) { /* 32 KiB window, gzip wrapper only */
        case Z_OK:
            src->zlib_ready = 1;
            break;
        case Z_MEM_ERROR:
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate zlib state", path);
        default:
            return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "%s: zlib refuses to inflate (%s)",
                                  path, src->zs.msg != NULL ? src->zs.msg : "version mismatch");
        }
    }
    return FEDL_OK;
}

static void source_close(idx_source *src)
{
    if (src->zlib_ready)
        inflateEnd(&src->zs);
    if (src->fd >= 0) {
        /* The payload now lives in the data set: drop the file's pages from
         * the page cache, which a memory cgroup charges to us too. */
        posix_fadvise(src->fd, 0, 0, POSIX_FADV_DONTNEED);
        close(src->fd);
    }
    fedl_mem_free(src->alloc, src->in, IDX_INPUT_BYTES);
    src->fd = -1;
    src->in = NULL;
    src->zlib_ready = 0;
}

/* Explain why the data ended before `what` was complete. */
static fedl_status short_read(const idx_source *src, fedl_error *err, const char *what)
{
    if (src->truncated)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: gzip stream ends early at compressed byte %llu, %s "
                              "(truncated?)",
                              src->name, (unsigned long long)src->raw_read, what);
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: %s ends after %llu bytes, %s", src->name,
                          src->gzip ? "decompressed data" : "file",
                          (unsigned long long)src->delivered, what);
}

/* Refuse a payload the file cannot hold, before allocating it. */
static fedl_status check_size_fits_file(const idx_source *src, const idx_header *h, fedl_error *err)
{
    struct stat st;
    unsigned long long file_bytes, expected, most;
    if (fstat(src->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0)
        return FEDL_OK; /* a pipe or device: the stream decides */
    file_bytes = (unsigned long long)st.st_size;
    expected = (unsigned long long)h->header_bytes + h->payload_bytes;
    if (!src->gzip) {
        if (file_bytes < h->header_bytes)
            return FEDL_OK; /* the file shrank under us: the stream decides */
        if (file_bytes != expected)
            return payload_mismatch(src->name, file_bytes - h->header_bytes, h->payload_bytes, err);
        return FEDL_OK;
    }
    most = file_bytes > (ULLONG_MAX - GZIP_RATIO_SLACK) / GZIP_MAX_RATIO
               ? ULLONG_MAX
               : file_bytes * GZIP_MAX_RATIO + GZIP_RATIO_SLACK;
    if (expected > most)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: header promises a payload of %zu bytes, more than a gzip file "
                              "of %llu bytes can hold (truncated?)",
                              src->name, h->payload_bytes, file_bytes);
    return FEDL_OK;
}

/* After the payload: the data must end here. Counts what follows. */
static fedl_status check_no_trailing(idx_source *src, const idx_header *h, fedl_error *err)
{
    uint8_t scratch[256];
    unsigned long long extra = 0;
    for (;;) {
        size_t got;
        fedl_status status = source_read(src, scratch, sizeof scratch, &got, err);
        if (status != FEDL_OK)
            return status;
        extra += got;
        if (got < sizeof scratch)
            break;
    }
    if (extra > 0)
        return payload_mismatch(src->name, (unsigned long long)h->payload_bytes + extra,
                                h->payload_bytes, err);
    if (src->truncated)
        return short_read(
            src, err,
            "after the whole payload (the gzip trailer or a following member is cut off)");
    return FEDL_OK;
}

static fedl_status read_source(idx_source *src, fedl_idx *out, fedl_error *err)
{
    uint8_t header[IDX_PREFIX_BYTES + 4 * FEDL_IDX_MAX_DIMS];
    idx_header h;
    size_t got;
    fedl_status status;

    memset(&h, 0, sizeof h);
    status = source_read(src, header, IDX_PREFIX_BYTES, &got, err);
    if (status != FEDL_OK)
        return status;
    if (got < IDX_PREFIX_BYTES)
        return short_read(src, err,
                          "too short for an IDX header (bytes 0-3: magic, type, "
                          "dimension count)");
    status = check_prefix(header, src->name, &h, err);
    if (status != FEDL_OK)
        return status;
    status =
        source_read(src, header + IDX_PREFIX_BYTES, h.header_bytes - IDX_PREFIX_BYTES, &got, err);
    if (status != FEDL_OK)
        return status;
    if (got < h.header_bytes - IDX_PREFIX_BYTES)
        return short_read(src, err, "inside the dimensions of the header");
    status = check_dims(header + IDX_PREFIX_BYTES, src->name, &h, err);
    if (status != FEDL_OK)
        return status;
    status = check_size_fits_file(src, &h, err);
    if (status != FEDL_OK)
        return status;

    /* Not zeroed: pages of a buffer larger than the data that arrives are
     * never touched. */
    out->data = fedl_mem_realloc(src->alloc, NULL, 0, h.payload_bytes); /* (dims...) */
    if (out->data == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes of payload",
                              src->name, h.payload_bytes);
    out->size = h.payload_bytes;
    status = source_read(src, out->data, h.payload_bytes, &got, err);
    if (status != FEDL_OK)
        return status;
    if (got < h.payload_bytes) {
        if (src->truncated)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: payload is %zu bytes, header promises %zu (truncated? the "
                                  "gzip stream ends early at compressed byte %llu)",
                                  src->name, got, h.payload_bytes,
                                  (unsigned long long)src->raw_read);
        return payload_mismatch(src->name, got, h.payload_bytes, err);
    }
    status = check_no_trailing(src, &h, err);
    if (status != FEDL_OK)
        return status;
    out->ndim = h.ndim;
    memcpy(out->dims, h.dims, sizeof out->dims);
    return FEDL_OK;
}

fedl_status fedl_idx_read(const char *path, fedl_allocator *alloc, fedl_idx *out, fedl_error *err)
{
    idx_source src;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_idx_read: path is NULL");
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    status = source_open(&src, path, alloc, err);
    if (status == FEDL_OK)
        status = read_source(&src, out, err);
    source_close(&src);
    if (status != FEDL_OK)
        fedl_idx_free(out, alloc);
    return status;
}
