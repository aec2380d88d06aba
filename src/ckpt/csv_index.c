/*
 * csv_index.c - the index cache of CSV data sets: PATH.fedlidx, a container
 * holding the opening pass's result (rows, fit, figures) under a key that
 * says which file and settings it describes; read when the key matches,
 * rebuilt and written durably otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

#define EDGE_BYTES ((size_t)64 << 10)
#define INFO_BYTES 96
#define ROW_BYTES 16

/* ------------------------------------------------------------- the key */

static void hash_text(fedl_sha256_ctx *ctx, const char *key, const char *value)
{
    fedl_sha256_update(ctx, key, strlen(key) + 1);
    if (value != NULL)
        fedl_sha256_update(ctx, value, strlen(value) + 1);
    else
        fedl_sha256_update(ctx, "\xff", 1); /* NULL differs from every text */
}

static void hash_u64(fedl_sha256_ctx *ctx, const char *key, uint64_t value)
{
    uint8_t le[8];
    fedl_put_u64(le, value);
    fedl_sha256_update(ctx, key, strlen(key) + 1);
    fedl_sha256_update(ctx, le, sizeof le);
}

static uint64_t float_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

/* The file's identity short of reading it: size, modification time, inode
 * and a hash of its first and last EDGE_BYTES. */
static fedl_status hash_file_identity(fedl_sha256_ctx *ctx, const char *path, fedl_error *err)
{
    struct stat st;
    uint8_t buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    fedl_status status = FEDL_OK;
    if (fd < 0 || fstat(fd, &st) != 0) {
        status = fedl_error_set(err, FEDL_ERR_IO, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return status;
    }
    hash_u64(ctx, "size", (uint64_t)st.st_size);
    hash_u64(ctx, "mtime_s", (uint64_t)st.st_mtim.tv_sec);
    hash_u64(ctx, "mtime_ns", (uint64_t)st.st_mtim.tv_nsec);
    hash_u64(ctx, "inode", (uint64_t)st.st_ino);
    for (int edge = 0; edge < 2 && status == FEDL_OK; edge++) {
        uint64_t size = (uint64_t)st.st_size, want = size < EDGE_BYTES ? size : EDGE_BYTES;
        off_t at = edge == 0 ? 0 : (off_t)(size - want);
        while (want > 0) {
            ssize_t n = pread(fd, buf, want < sizeof buf ? (size_t)want : sizeof buf, at);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                status = fedl_error_set(err, FEDL_ERR_IO, "%s: read: %s", path,
                                        n < 0 ? strerror(errno) : "unexpected end of file");
                break;
            }
            fedl_sha256_update(ctx, buf, (size_t)n);
            at += n;
            want -= (uint64_t)n;
        }
    }
    close(fd);
    return status;
}

/* The key of an index: the file, the reader options, the schema and the
 * fit a test set is read with. */
static fedl_status index_key(const char *path, const fedl_csv_options *o, const fedl_csv_schema *s,
                             const fedl_csv_fit *fit, uint8_t key[FEDL_SHA256_BYTES],
                             fedl_error *err)
{
    fedl_sha256_ctx ctx;
    fedl_status status;
    fedl_sha256_init(&ctx);
    hash_text(&ctx, "fedl-csv-index", "1");
    status = hash_file_identity(&ctx, path, err);
    if (status != FEDL_OK)
        return status;
    hash_u64(&ctx, "delimiter", (uint8_t)o->delimiter);
    hash_u64(&ctx, "quote", (uint8_t)o->quote);
    hash_u64(&ctx, "comment", (uint8_t)o->comment);
    hash_u64(&ctx, "header", (uint64_t)o->has_header);
    hash_u64(&ctx, "nonfinite", (uint64_t)o->allow_nonfinite);
    hash_text(&ctx, "label", s->label);
    hash_text(&ctx, "features", s->features);
    hash_u64(&ctx, "shape_c", (uint64_t)(uint32_t)s->shape.c);
    hash_u64(&ctx, "shape_h", (uint64_t)(uint32_t)s->shape.h);
    hash_u64(&ctx, "shape_w", (uint64_t)(uint32_t)s->shape.w);
    hash_u64(&ctx, "missing", (uint64_t)s->missing);
    hash_u64(&ctx, "fill", float_bits(s->fill_value));
    hash_u64(&ctx, "scaling", (uint64_t)s->scaling);
    hash_u64(&ctx, "divisor", float_bits(s->divisor));
    hash_u64(&ctx, "regression", (uint64_t)s->regression);
    if (fit != NULL) {
        uint8_t *bytes;
        size_t length;
        status = fedl_csv_fit_encode(fit, NULL, &bytes, &length, err);
        if (status != FEDL_OK)
            return status;
        fedl_sha256_update(&ctx, "fit", 4);
        fedl_sha256_update(&ctx, bytes, length);
        fedl_mem_free(NULL, bytes, length);
    }
    fedl_sha256_final(&ctx, key);
    return FEDL_OK;
}

/* ---------------------------------------------------------- the file */

/*
 * Sections (FORMAT.md, "CSV index"):
 *   key   32 bytes: the key above
 *   info  96 bytes: rows, skipped rows, filled values, features, label
 *         column, longest record (uint64 each), numeric labels (uint32), 4
 *         reserved, the data's SHA-256 (32)
 *   rows  16 bytes a row: offset (uint64), line (uint32), file (uint32)
 *   fit   fedl_csv_fit_encode
 */
static void encode_info(uint8_t *p, const fedl_csv_info *info)
{
    memset(p, 0, INFO_BYTES);
    fedl_put_u64(p, info->rows);
    fedl_put_u64(p + 8, info->skipped_rows);
    fedl_put_u64(p + 16, info->filled);
    fedl_put_u64(p + 24, info->features);
    fedl_put_u64(p + 32, info->label_column);
    fedl_put_u64(p + 40, info->longest_record);
    fedl_put_u32(p + 48, info->numeric_labels ? 1u : 0u);
    memcpy(p + 56, info->file_sha256, FEDL_SHA256_BYTES);
}

static fedl_status decode_info(const uint8_t *p, size_t length, const char *name,
                               fedl_csv_info *info, fedl_error *err)
{
    uint32_t numeric;
    if (length != INFO_BYTES)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: section 'info' has %zu bytes, not %d",
                              name, length, INFO_BYTES);
    memset(info, 0, sizeof *info);
    info->rows = fedl_get_u64(p);
    info->skipped_rows = fedl_get_u64(p + 8);
    info->filled = fedl_get_u64(p + 16);
    info->features = (size_t)fedl_get_u64(p + 24);
    info->label_column = (size_t)fedl_get_u64(p + 32);
    info->longest_record = (size_t)fedl_get_u64(p + 40);
    numeric = fedl_get_u32(p + 48);
    memcpy(info->file_sha256, p + 56, FEDL_SHA256_BYTES);
    if (numeric > 1 || fedl_get_u64(p + 40) > ((uint64_t)1 << 30) ||
        info->skipped_rows > info->rows)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: section 'info': numeric flag %u, longest record %llu, %llu "
                              "of %llu rows skipped",
                              name, numeric, (unsigned long long)fedl_get_u64(p + 40),
                              (unsigned long long)info->skipped_rows,
                              (unsigned long long)info->rows);
    info->numeric_labels = (int)numeric;
    return FEDL_OK;
}

static const uint8_t *need_section(const fedl_container *c, const char *section, size_t *length,
                                   const char *name, fedl_error *err)
{
    const fedl_section *s = fedl_container_find(c, section);
    if (s == NULL) {
        fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no section '%s'", name, section);
        return NULL;
    }
    *length = (size_t)s->length;
    return fedl_container_data(c, s);
}

void fedl_csv_index_file_free(fedl_csv_index_file *f)
{
    if (f == NULL)
        return;
    if (!f->rows_borrowed)
        fedl_mem_free(f->alloc, f->rows, f->count * sizeof *f->rows);
    fedl_csv_fit_free(f->fit);
    memset(f, 0, sizeof *f);
}

/* Decode; with borrow, rows that are already in host order and aligned
 * (a little-endian host: sections start 64-byte aligned) point into bytes
 * instead of being copied. */
static fedl_status decode(const uint8_t *bytes, size_t length, const char *name,
                          fedl_allocator *alloc, int borrow, fedl_csv_index_file *out,
                          fedl_error *err)
{
    fedl_container c;
    const uint8_t *p;
    size_t n = 0;
    fedl_status st;
    memset(out, 0, sizeof *out);
    out->alloc = alloc != NULL ? alloc : fedl_allocator_default();
    st = fedl_container_parse(bytes, length, name, &c, err);
    if (st == FEDL_OK && c.file_kind != FEDL_FILE_CSV_INDEX)
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: file kind %u is not a CSV index (3)", name,
                            c.file_kind);
    if (st == FEDL_OK &&
        ((p = need_section(&c, "key", &n, name, err)) == NULL || n != FEDL_SHA256_BYTES))
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no 32-byte key", name);
    if (st == FEDL_OK)
        memcpy(out->key, p, FEDL_SHA256_BYTES);
    if (st == FEDL_OK && (p = need_section(&c, "info", &n, name, err)) == NULL)
        st = FEDL_ERR_FORMAT;
    if (st == FEDL_OK)
        st = decode_info(p, n, name, &out->info, err);
    if (st == FEDL_OK && (p = need_section(&c, "fit", &n, name, err)) == NULL)
        st = FEDL_ERR_FORMAT;
    if (st == FEDL_OK)
        st = fedl_csv_fit_decode(p, n, name, out->alloc, &out->fit, err);
    if (st == FEDL_OK && (p = need_section(&c, "rows", &n, name, err)) == NULL)
        st = FEDL_ERR_FORMAT;
    if (st == FEDL_OK &&
        (n == 0 || n % ROW_BYTES != 0 || n / ROW_BYTES != out->info.rows - out->info.skipped_rows))
        st = fedl_error_set(err, FEDL_ERR_FORMAT,
                            "%s: section 'rows' has %zu bytes, not 16 bytes for each of the "
                            "%llu rows kept",
                            name, n, (unsigned long long)(out->info.rows - out->info.skipped_rows));
    if (st == FEDL_OK && borrow && fedl_host_is_little_endian() && sizeof *out->rows == ROW_BYTES &&
        ((uintptr_t)p % sizeof(uint64_t)) == 0) {
        out->count = n / ROW_BYTES;
        out->rows = (fedl_csv_row *)(uintptr_t)p;
        out->rows_borrowed = 1;
        return FEDL_OK;
    }
    if (st == FEDL_OK) {
        out->count = n / ROW_BYTES;
        out->rows = fedl_mem_alloc(out->alloc, out->count * sizeof *out->rows);
        if (out->rows == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu rows", name,
                                out->count);
    }
    for (size_t i = 0; st == FEDL_OK && i < out->count; i++) {
        out->rows[i].offset = fedl_get_u64(p + ROW_BYTES * i);
        out->rows[i].line = fedl_get_u32(p + ROW_BYTES * i + 8);
        out->rows[i].file = fedl_get_u32(p + ROW_BYTES * i + 12);
    }
    if (st != FEDL_OK)
        fedl_csv_index_file_free(out);
    return st;
}

fedl_status fedl_csv_index_decode(const uint8_t *bytes, size_t length, const char *name,
                                  fedl_allocator *alloc, fedl_csv_index_file *out, fedl_error *err)
{
    return decode(bytes, length, name, alloc, 0, out, err);
}

/* Write ds's index under key to cache_path, durably. */
static fedl_status write_index(const char *cache_path, const fedl_dataset *ds,
                               const uint8_t key[FEDL_SHA256_BYTES], fedl_error *err)
{
    fedl_csv_index index;
    fedl_container_writer *w = NULL;
    uint8_t info[INFO_BYTES], *fit = NULL, *rows = NULL;
    size_t fit_length = 0, rows_length = 0;
    fedl_status st = fedl_csv_dataset_index(ds, &index, err);
    if (st == FEDL_OK)
        st = fedl_csv_fit_encode(index.fit, NULL, &fit, &fit_length, err);
    /* On a little-endian host the rows in memory are the bytes on disk
     * (offset, line, file: 16 bytes, no padding) and are written from where
     * they are; elsewhere they are converted into a copy. */
    if (st == FEDL_OK && !(fedl_host_is_little_endian() && sizeof *index.rows == ROW_BYTES)) {
        rows_length = index.count * ROW_BYTES;
        rows = fedl_mem_alloc(NULL, rows_length);
        if (rows == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM, "CSV index: cannot allocate");
        for (size_t i = 0; st == FEDL_OK && i < index.count; i++) {
            fedl_put_u64(rows + ROW_BYTES * i, index.rows[i].offset);
            fedl_put_u32(rows + ROW_BYTES * i + 8, index.rows[i].line);
            fedl_put_u32(rows + ROW_BYTES * i + 12, index.rows[i].file);
        }
    }
    if (st == FEDL_OK) {
        encode_info(info, &index.info);
        st = fedl_container_writer_create(FEDL_FILE_CSV_INDEX, NULL, &w, err);
    }
    if (st == FEDL_OK)
        st = fedl_container_add(w, "key", FEDL_SECTION_META, key, FEDL_SHA256_BYTES, err);
    if (st == FEDL_OK)
        st = fedl_container_add(w, "info", FEDL_SECTION_META, info, sizeof info, err);
    if (st == FEDL_OK)
        st = fedl_container_add(w, "fit", FEDL_SECTION_DATA, fit, fit_length, err);
    if (st == FEDL_OK)
        st = fedl_container_add(w, "rows", FEDL_SECTION_DATA,
                                rows != NULL ? (const void *)rows : (const void *)index.rows,
                                index.count * ROW_BYTES, err);
    if (st == FEDL_OK)
        st = fedl_container_write(w, NULL, cache_path, err);
    fedl_container_writer_destroy(w);
    fedl_mem_free(NULL, rows, rows_length);
    fedl_mem_free(NULL, fit, fit_length);
    return st;
}

/* Open from the kept index when it matches key: 1 done, 0 not usable. */
static int open_from_index(const char *path, const char *cache_path, const uint8_t *key,
                           const fedl_csv_options *opts, const fedl_csv_schema *schema,
                           const fedl_csv_fit *fit, fedl_allocator *alloc, fedl_dataset *out)
{
    fedl_file_view view;
    fedl_csv_index_file kept;
    fedl_csv_index index;
    fedl_error err = {0};
    int used = 0;
    if (access(cache_path, F_OK) != 0)
        return 0;
    if (fedl_file_view_open(cache_path, NULL, &view, &err) != FEDL_OK) {
        fedl_log(FEDL_LOG_WARN, "%s: %s; indexing %s again", cache_path, err.message, path);
        return 0;
    }
    /* the rows are read from the mapped file, copied once into the data set */
    if (decode(view.bytes, view.length, cache_path, alloc, 1, &kept, &err) != FEDL_OK) {
        fedl_log(FEDL_LOG_WARN, "%s: %s; indexing %s again", cache_path, err.message, path);
    } else if (memcmp(kept.key, key, FEDL_SHA256_BYTES) != 0) {
        fedl_log(FEDL_LOG_INFO, "%s: made for another version of %s or other settings", cache_path,
                 path);
    } else {
        index.rows = kept.rows;
        index.count = kept.count;
        index.fit = fit != NULL ? fit : kept.fit;
        index.info = kept.info;
        if (fedl_csv_dataset_open_indexed(&path, 1, opts, schema, &index, alloc, out, &err) ==
            FEDL_OK)
            used = 1;
        else
            fedl_log(FEDL_LOG_WARN, "%s: %s; indexing %s again", cache_path, err.message, path);
    }
    fedl_csv_index_file_free(&kept);
    fedl_file_view_close(&view);
    return used;
}

fedl_status fedl_csv_dataset_open_cached(const char *path, const fedl_csv_options *opts,
                                         const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                         fedl_allocator *alloc, fedl_dataset *out,
                                         fedl_csv_index_use *use, fedl_error *err)
{
    fedl_csv_options o = opts != NULL ? *opts : fedl_csv_defaults();
    fedl_csv_schema s = schema != NULL ? *schema : fedl_csv_schema_defaults();
    uint8_t key[FEDL_SHA256_BYTES];
    char cache_path[4096];
    fedl_error why = {0};
    fedl_status st;
    *use = FEDL_CSV_INDEX_NOT_KEPT;
    if (snprintf(cache_path, sizeof cache_path, "%s%s", path, FEDL_CSV_INDEX_SUFFIX) >=
            (int)sizeof cache_path ||
        index_key(path, &o, &s, fit, key, &why) != FEDL_OK)
        return fedl_csv_dataset_open(path, &o, &s, fit, alloc, out, err);
    if (open_from_index(path, cache_path, key, &o, &s, fit, alloc, out)) {
        *use = FEDL_CSV_INDEX_READ;
        return FEDL_OK;
    }
    st = fedl_csv_dataset_open(path, &o, &s, fit, alloc, out, err);
    if (st != FEDL_OK)
        return st;
    if (write_index(cache_path, out, key, &why) == FEDL_OK)
        *use = FEDL_CSV_INDEX_WRITTEN;
    else
        fedl_log(FEDL_LOG_WARN, "%s: the index is not kept (%s): the next run indexes again",
                 cache_path, why.message);
    return FEDL_OK;
}
