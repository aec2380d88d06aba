/*
 * manifest.c - manifests: the sizes and SHA-256 digests of the files of one
 * directory, kept as a sorted array and stored as text.
 *
 * Owns: the in-memory manifest (sorted insert/replace, remove, binary
 * search), its text form (strict parser and the formatter that produces
 * exactly what the parser accepts), reading and durably writing it, building
 * one from a directory and checking a directory against one (the files it
 * lists, and the files it does not list).
 *
 * The text form, byte for byte:
 *
 *   fedl-manifest 1\n
 *   <size> <sha256> <name>\n      one line per file
 *   end <crc>\n
 *
 * <size> is decimal without leading zeros (so each manifest has exactly one
 * spelling and format(parse(text)) == text), <sha256> 64 lower-case hex
 * digits, <name> 1..255 bytes of printable ASCII 0x21..0x7e without '/' and
 * not "." or ".." (a manifest describes one directory). Names are sorted
 * strictly ascending by strcmp, so they are also unique. <crc> is 8
 * lower-case hex digits of the CRC-32C of every byte before the end line;
 * nothing may follow the end line's newline.
 *
 * Parse errors are FEDL_ERR_FORMAT "<name>:<line>:<column>: <what>" with
 * 1-based line and byte column. On any failure the output manifest is left
 * empty (initialised), so fedl_manifest_free on it is always safe.
 *
 * fedl_manifest_format allocates exactly *length bytes (no NUL terminator)
 * from alloc; free them with fedl_mem_free(alloc, text, length).
 *
 * The files of a directory, for building and for finding unlisted files,
 * are its regular files (symlinks followed, dangling ones skipped), not
 * recursive, without names starting with ".", the caller's skip_name, and
 * temp files "<name>.tmp.<pid>" of durable writes (in flight or left by a
 * crash: never data).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fedl/ckpt.h"
#include "internal.h"

#define MANIFEST_HEADER "fedl-manifest 1"
#define MANIFEST_HEADER_LENGTH 15
#define MANIFEST_END "end "
#define MANIFEST_END_LINE_LENGTH 12 /* "end " + 8 hex digits */
#define SHA256_HEX_DIGITS (2 * FEDL_SHA256_BYTES)
#define MANIFEST_PATH_MAX 4096

/* ------------------------------------------------------------------ names */

/* Check a name of length bytes. Returns 0, or -1 with *bad_at the 0-based
 * byte that is wrong and what the reason. */
static int name_check(const char *name, size_t length, size_t *bad_at, char *what, size_t what_size)
{
    *bad_at = 0;
    if (length == 0) {
        snprintf(what, what_size, "empty name");
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/') {
            *bad_at = i;
            snprintf(what, what_size, "'/' not allowed in a name (a manifest lists one directory)");
            return -1;
        }
        if (c < 0x21 || c > 0x7e) {
            *bad_at = i;
            snprintf(what, what_size,
                     "byte 0x%02x not allowed in a name (printable ASCII without spaces)", c);
            return -1;
        }
    }
    if (length > FEDL_MANIFEST_NAME_MAX) {
        *bad_at = FEDL_MANIFEST_NAME_MAX;
        snprintf(what, what_size, "name longer than %d bytes", FEDL_MANIFEST_NAME_MAX);
        return -1;
    }
    if ((length == 1 && name[0] == '.') || (length == 2 && name[0] == '.' && name[1] == '.')) {
        snprintf(what, what_size, "\"%.*s\" is not a file name", (int)length, name);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------- sorted entries */

void fedl_manifest_init(fedl_manifest *m, fedl_allocator *alloc)
{
    if (m == NULL)
        return;
    memset(m, 0, sizeof *m);
    m->alloc = alloc != NULL ? alloc : fedl_allocator_default();
}

void fedl_manifest_free(fedl_manifest *m)
{
    fedl_allocator *alloc;
    if (m == NULL)
        return;
    alloc = m->alloc;
    fedl_mem_free(alloc, m->entries, m->capacity * sizeof *m->entries);
    fedl_manifest_init(m, alloc);
}

static fedl_status reserve(fedl_manifest *m, size_t need, fedl_error *err)
{
    const size_t entry_size = sizeof *m->entries;
    size_t capacity = m->capacity > 0 ? m->capacity : 16;
    fedl_manifest_entry *grown;
    if (need <= m->capacity)
        return FEDL_OK;
    while (capacity < need) {
        if (capacity > SIZE_MAX / 2 / entry_size)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "manifest: %zu entries are too many", need);
        capacity *= 2;
    }
    grown = fedl_mem_realloc(m->alloc, m->entries, m->capacity * entry_size, capacity * entry_size);
    if (grown == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "manifest: cannot grow to %zu entries",
                              capacity);
    m->entries = grown;
    m->capacity = capacity;
    return FEDL_OK;
}

/* Index of the first entry whose name is not below name; *found tells
 * whether it is name. */
static size_t lower_bound(const fedl_manifest *m, const char *name, int *found)
{
    size_t low = 0, high = m->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (strcmp(m->entries[mid].name, name) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    *found = low < m->count && strcmp(m->entries[low].name, name) == 0;
    return low;
}

static void fill_entry(fedl_manifest_entry *e, const char *name, size_t name_length, uint64_t size,
                       const uint8_t sha256[FEDL_SHA256_BYTES])
{
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, name_length);
    e->size = size;
    memcpy(e->sha256, sha256, FEDL_SHA256_BYTES);
}

fedl_status fedl_manifest_set(fedl_manifest *m, const char *name, uint64_t size,
                              const uint8_t sha256[FEDL_SHA256_BYTES], fedl_error *err)
{
    char what[160];
    size_t bad_at, length, index;
    int found;
    fedl_status st;
    if (m == NULL || name == NULL || sha256 == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest set: missing argument");
    length = strlen(name);
    if (name_check(name, length, &bad_at, what, sizeof what) != 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest entry \"%.64s\": %s", name,
                              what);
    index = lower_bound(m, name, &found);
    if (!found) {
        st = reserve(m, m->count + 1, err);
        if (st != FEDL_OK)
            return st;
        memmove(&m->entries[index + 1], &m->entries[index],
                (m->count - index) * sizeof *m->entries);
        m->count++;
    }
    fill_entry(&m->entries[index], name, length, size, sha256);
    return FEDL_OK;
}

void fedl_manifest_remove(fedl_manifest *m, const char *name)
{
    int found;
    size_t index;
    if (m == NULL || name == NULL)
        return;
    index = lower_bound(m, name, &found);
    if (!found)
        return;
    memmove(&m->entries[index], &m->entries[index + 1],
            (m->count - index - 1) * sizeof *m->entries);
    m->count--;
}

const fedl_manifest_entry *fedl_manifest_find(const fedl_manifest *m, const char *name)
{
    int found;
    size_t index;
    if (m == NULL || name == NULL)
        return NULL;
    index = lower_bound(m, name, &found);
    return found ? &m->entries[index] : NULL;
}

/* ------------------------------------------------------------------ parse */

typedef struct parser {
    const char *text;
    size_t length;
    const char *label; /* name used in messages */
    size_t line;       /* 1-based number of the current line */
    size_t start;      /* offset of the current line */
    size_t end;        /* offset of its '\n', or length when it has none */
    fedl_manifest *out;
    fedl_error *err;
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static fedl_status
fail(const parser *p, size_t column, const char *fmt, ...)
{
    char what[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return fedl_error_set(p->err, FEDL_ERR_FORMAT, "%s:%zu:%zu: %s", p->label, p->line, column,
                          what);
}

/* Select the line starting at offset start. */
static void select_line(parser *p, size_t start)
{
    const char *newline = memchr(p->text + start, '\n', p->length - start);
    p->start = start;
    p->end = newline != NULL ? (size_t)(newline - p->text) : p->length;
}

static size_t line_length(const parser *p)
{
    return p->end - p->start;
}

static fedl_status require_newline(const parser *p)
{
    if (p->end == p->length)
        return fail(p, line_length(p) + 1, "missing newline at the end of the line");
    return FEDL_OK;
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static unsigned hex_value(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

static fedl_status parse_header(parser *p)
{
    const char *line = p->text + p->start;
    size_t n = line_length(p);
    if (p->length == 0)
        return fail(p, 1, "empty file, expected \"" MANIFEST_HEADER "\"");
    for (size_t i = 0; i < MANIFEST_HEADER_LENGTH || i < n; i++)
        if (i >= n || i >= MANIFEST_HEADER_LENGTH || line[i] != MANIFEST_HEADER[i])
            return fail(p, i + 1, "expected \"" MANIFEST_HEADER "\" as the first line");
    return require_newline(p);
}

/* "<size> " starting at column 0; *column receives the next column. */
static fedl_status parse_size(const parser *p, uint64_t *size, size_t *column)
{
    const char *line = p->text + p->start;
    size_t n = line_length(p), i = 0;
    uint64_t value = 0;
    if (n == 0 || line[0] < '0' || line[0] > '9')
        return fail(p, 1, "expected the file size in bytes (decimal digits)");
    if (line[0] == '0' && n > 1 && line[1] >= '0' && line[1] <= '9')
        return fail(p, 1, "the size has a leading zero");
    for (; i < n && line[i] >= '0' && line[i] <= '9'; i++) {
        unsigned digit = (unsigned)(line[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return fail(p, 1, "the size does not fit in 64 bits");
        value = value * 10 + digit;
    }
    if (i >= n || line[i] != ' ')
        return fail(p, i + 1, "expected one space after the size");
    *size = value;
    *column = i + 1;
    return FEDL_OK;
}

static fedl_status parse_digest(const parser *p, size_t column, uint8_t digest[FEDL_SHA256_BYTES])
{
    const char *line = p->text + p->start;
    size_t n = line_length(p);
    for (size_t i = 0; i < SHA256_HEX_DIGITS; i++) {
        size_t at = column + i;
        unsigned char c = at < n ? (unsigned char)line[at] : 0;
        if (at >= n)
            return fail(p, at + 1, "expected 64 hex digits of SHA-256, the line ends after %zu", i);
        if (!is_lower_hex((char)c))
            return fail(p, at + 1,
                        c > 0x20 && c < 0x7f
                            ? "expected 64 hex digits of SHA-256 (lower-case), got '%c'"
                            : "expected 64 hex digits of SHA-256 (lower-case), got byte 0x%02x",
                        c);
    }
    for (size_t i = 0; i < FEDL_SHA256_BYTES; i++)
        digest[i] =
            (uint8_t)(hex_value(line[column + 2 * i]) << 4 | hex_value(line[column + 2 * i + 1]));
    if (column + SHA256_HEX_DIGITS >= n || line[column + SHA256_HEX_DIGITS] != ' ')
        return fail(p, column + SHA256_HEX_DIGITS + 1, "expected one space after the SHA-256");
    return FEDL_OK;
}

static fedl_status parse_entry(parser *p)
{
    const char *line = p->text + p->start;
    size_t n = line_length(p), column = 0, bad_at, name_length;
    uint8_t digest[FEDL_SHA256_BYTES];
    uint64_t size = 0;
    fedl_manifest_entry *e;
    char what[160];
    fedl_status st = parse_size(p, &size, &column);
    if (st != FEDL_OK)
        return st;
    st = parse_digest(p, column, digest);
    if (st != FEDL_OK)
        return st;
    column += SHA256_HEX_DIGITS + 1;
    name_length = n - column;
    if (name_check(line + column, name_length, &bad_at, what, sizeof what) != 0)
        return fail(p, column + bad_at + 1, "%s", what);
    st = reserve(p->out, p->out->count + 1, p->err);
    if (st != FEDL_OK)
        return st;
    e = &p->out->entries[p->out->count];
    fill_entry(e, line + column, name_length, size, digest);
    if (p->out->count > 0 && strcmp(e[-1].name, e->name) >= 0)
        return fail(p, column + 1,
                    "\"%.100s\" does not come after \"%.100s\": names must be sorted (strcmp) "
                    "and unique",
                    e->name, e[-1].name);
    p->out->count++;
    return require_newline(p);
}

static fedl_status parse_end(parser *p)
{
    const char *line = p->text + p->start;
    size_t n = line_length(p);
    uint32_t stored = 0, actual;
    fedl_status st;
    for (size_t i = 0; i < 4; i++)
        if (i >= n || line[i] != MANIFEST_END[i])
            return fail(p, i + 1, "expected \"end \" and the CRC-32C");
    for (size_t i = 4; i < MANIFEST_END_LINE_LENGTH; i++) {
        if (i >= n || !is_lower_hex(line[i]))
            return fail(p, i + 1, "expected 8 hex digits of CRC-32C (lower-case)");
        stored = stored << 4 | hex_value(line[i]);
    }
    if (n > MANIFEST_END_LINE_LENGTH)
        return fail(p, MANIFEST_END_LINE_LENGTH + 1, "unexpected bytes after the CRC-32C");
    st = require_newline(p);
    if (st != FEDL_OK)
        return st;
    actual = fedl_crc32c(0, p->text, p->start);
    if (stored != actual)
        return fail(p, 5,
                    "CRC-32C mismatch: the end line says %08lx, the %zu bytes before it give "
                    "%08lx (damaged manifest)",
                    (unsigned long)stored, p->start, (unsigned long)actual);
    if (p->end + 1 != p->length) {
        p->line++;
        return fail(p, 1, "unexpected bytes after the end line");
    }
    return FEDL_OK;
}

static fedl_status parse_lines(parser *p)
{
    fedl_status st;
    select_line(p, 0);
    st = parse_header(p);
    for (;;) {
        if (st != FEDL_OK)
            return st;
        p->line++;
        if (p->end + 1 >= p->length) {
            p->start = p->end = p->length;
            return fail(p, 1, "missing \"end\" line (truncated manifest?)");
        }
        select_line(p, p->end + 1);
        if (p->text[p->start] == 'e')
            return parse_end(p);
        st = parse_entry(p);
    }
}

fedl_status fedl_manifest_parse(const char *text, size_t length, const char *name,
                                fedl_allocator *alloc, fedl_manifest *out, fedl_error *err)
{
    parser p;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest parse: no output");
    fedl_manifest_init(out, alloc);
    if (text == NULL && length > 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest parse: no text");
    memset(&p, 0, sizeof p);
    p.text = text != NULL ? text : "";
    p.length = length;
    p.label = name != NULL ? name : "manifest";
    p.line = 1;
    p.out = out;
    p.err = err;
    st = parse_lines(&p);
    if (st != FEDL_OK)
        fedl_manifest_free(out);
    return st;
}

/* ----------------------------------------------------------------- format */

static size_t decimal_digits(uint64_t value)
{
    size_t digits = 1;
    while (value >= 10) {
        value /= 10;
        digits++;
    }
    return digits;
}

/* Bytes of the text form, or 0 with err set when an entry is invalid or out
 * of order (possible when a caller filled entries by hand). */
static size_t formatted_length(const fedl_manifest *m, fedl_error *err)
{
    size_t total = MANIFEST_HEADER_LENGTH + 1 + MANIFEST_END_LINE_LENGTH + 1;
    char what[160];
    for (size_t i = 0; i < m->count; i++) {
        const fedl_manifest_entry *e = &m->entries[i];
        size_t name_length = strnlen(e->name, sizeof e->name), bad_at;
        if (name_check(e->name, name_length, &bad_at, what, sizeof what) != 0) {
            fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest entry %zu: %s", i, what);
            return 0;
        }
        if (i > 0 && strcmp(m->entries[i - 1].name, e->name) >= 0) {
            fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                           "manifest entry %zu \"%s\" is not sorted after \"%s\"", i, e->name,
                           m->entries[i - 1].name);
            return 0;
        }
        total += decimal_digits(e->size) + 1 + SHA256_HEX_DIGITS + 1 + name_length + 1;
    }
    return total;
}

static char *put(char *p, const void *bytes, size_t length)
{
    memcpy(p, bytes, length);
    return p + length;
}

static char *put_entry(char *p, const fedl_manifest_entry *e)
{
    char number[24], hex[SHA256_HEX_DIGITS + 1];
    int digits = snprintf(number, sizeof number, "%llu", (unsigned long long)e->size);
    fedl_sha256_hex(e->sha256, hex);
    p = put(p, number, (size_t)digits);
    *p++ = ' ';
    p = put(p, hex, SHA256_HEX_DIGITS);
    *p++ = ' ';
    p = put(p, e->name, strlen(e->name));
    *p++ = '\n';
    return p;
}

static char *put_end(char *p, uint32_t crc)
{
    static const char digits[] = "0123456789abcdef";
    p = put(p, MANIFEST_END, 4);
    for (int shift = 28; shift >= 0; shift -= 4)
        *p++ = digits[(crc >> shift) & 15];
    *p++ = '\n';
    return p;
}

fedl_status fedl_manifest_format(const fedl_manifest *m, fedl_allocator *alloc, char **text,
                                 size_t *length, fedl_error *err)
{
    size_t total;
    char *buf, *p;
    if (m == NULL || text == NULL || length == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest format: missing argument");
    *text = NULL;
    *length = 0;
    total = formatted_length(m, err);
    if (total == 0)
        return FEDL_ERR_INVALID_ARG;
    buf = fedl_mem_alloc(alloc, total);
    if (buf == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "manifest: cannot allocate %zu bytes", total);
    p = put(buf, MANIFEST_HEADER "\n", MANIFEST_HEADER_LENGTH + 1);
    for (size_t i = 0; i < m->count; i++)
        p = put_entry(p, &m->entries[i]);
    p = put_end(p, fedl_crc32c(0, buf, (size_t)(p - buf)));
    *text = buf;
    *length = (size_t)(p - buf);
    return FEDL_OK;
}

/* ------------------------------------------------------------ read, write */

fedl_status fedl_manifest_read(const char *path, fedl_allocator *alloc, fedl_manifest *out,
                               fedl_error *err)
{
    fedl_file_view view;
    fedl_status st;
    if (out == NULL || path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest read: missing argument");
    fedl_manifest_init(out, alloc);
    st = fedl_file_view_open(path, alloc, &view, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_manifest_parse((const char *)view.bytes, view.length, path, alloc, out, err);
    fedl_file_view_close(&view);
    return st;
}

fedl_status fedl_manifest_write(const fedl_io *io, const char *path, const fedl_manifest *m,
                                fedl_error *err)
{
    fedl_iovec piece;
    char *text;
    size_t length;
    fedl_status st;
    if (m == NULL || path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest write: missing argument");
    st = fedl_manifest_format(m, m->alloc, &text, &length, err);
    if (st != FEDL_OK)
        return st;
    piece.base = text;
    piece.length = length;
    st = fedl_durable_writev(io, path, &piece, 1, err);
    fedl_mem_free(m->alloc, text, length);
    return st;
}

/* ------------------------------------------------------------ directories */

static fedl_status join_path(const char *dir, const char *name, char *path, size_t size,
                             fedl_error *err)
{
    if (dir == NULL || dir[0] == '\0')
        dir = ".";
    if (snprintf(path, size, "%s/%s", dir, name) >= (int)size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s/%s: path too long", dir, name);
    return FEDL_OK;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const fedl_manifest_entry *)a)->name, ((const fedl_manifest_entry *)b)->name);
}

/* Hash one directory entry into out if it is a regular file (following
 * symlinks, so datasets of symlinked files work). */
static fedl_status add_dir_entry(const char *dir, const char *name, fedl_manifest *out,
                                 fedl_error *err)
{
    char path[MANIFEST_PATH_MAX], what[160];
    uint8_t digest[FEDL_SHA256_BYTES];
    struct stat st;
    uint64_t size;
    size_t bad_at;
    fedl_status status = join_path(dir, name, path, sizeof path, err);
    if (status != FEDL_OK)
        return status;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) { /* a dangling symlink, or removed meanwhile */
            fedl_log(FEDL_LOG_WARN, "%s: skipped (dangling symlink or removed)", path);
            return FEDL_OK;
        }
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return FEDL_OK;
    if (name_check(name, strlen(name), &bad_at, what, sizeof what) != 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "%s: cannot be listed in a manifest: %s (byte %zu)", path, what,
                              bad_at);
    status = fedl_file_sha256(path, &size, digest, err);
    if (status != FEDL_OK)
        return status;
    status = reserve(out, out->count + 1, err);
    if (status != FEDL_OK)
        return status;
    fill_entry(&out->entries[out->count++], name, strlen(name), size, digest);
    return FEDL_OK;
}

/* Whether a directory entry is left out of manifests by name alone. */
static int skipped_name(const char *name, const char *skip_name)
{
    return name[0] == '.' || (skip_name != NULL && strcmp(name, skip_name) == 0) ||
           fedl_durable_temp_pid(name) > 0;
}

fedl_status fedl_manifest_build_dir(const char *dir, const char *skip_name, fedl_allocator *alloc,
                                    fedl_manifest *out, fedl_error *err)
{
    fedl_status st = FEDL_OK;
    struct dirent *entry;
    DIR *d;
    if (out == NULL || dir == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest build: missing argument");
    fedl_manifest_init(out, alloc);
    d = opendir(dir);
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot list directory: %s", dir,
                              strerror(errno));
    while (st == FEDL_OK && (entry = readdir(d)) != NULL) {
        if (skipped_name(entry->d_name, skip_name))
            continue;
        st = add_dir_entry(dir, entry->d_name, out, err);
    }
    closedir(d);
    if (st != FEDL_OK) {
        fedl_manifest_free(out);
        return st;
    }
    if (out->count > 1)
        qsort(out->entries, out->count, sizeof *out->entries, compare_entries);
    return FEDL_OK;
}

static fedl_status size_changed(const char *path, uint64_t actual, uint64_t listed, fedl_error *err)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: %llu bytes, the manifest says %llu (%s)", path,
                          (unsigned long long)actual, (unsigned long long)listed,
                          actual < listed ? "truncated" : "grown");
}

fedl_status fedl_manifest_check_file(const fedl_manifest *m, const char *dir, const char *name,
                                     fedl_error *err)
{
    char path[MANIFEST_PATH_MAX], actual_hex[SHA256_HEX_DIGITS + 1],
        listed_hex[SHA256_HEX_DIGITS + 1];
    uint8_t digest[FEDL_SHA256_BYTES];
    const fedl_manifest_entry *e;
    struct stat st;
    uint64_t size;
    fedl_status status;
    if (m == NULL || name == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest check: missing argument");
    status = join_path(dir, name, path, sizeof path, err);
    if (status != FEDL_OK)
        return status;
    e = fedl_manifest_find(m, name);
    if (e == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: not listed in the manifest", path);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: listed in the manifest but missing",
                                  path);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: not a regular file any more", path);
    if ((uint64_t)st.st_size != e->size)
        return size_changed(path, (uint64_t)st.st_size, e->size, err);
    status = fedl_file_sha256(path, &size, digest, err);
    if (status != FEDL_OK)
        return status;
    if (size != e->size) /* changed while we read it */
        return size_changed(path, size, e->size, err);
    if (memcmp(digest, e->sha256, FEDL_SHA256_BYTES) != 0) {
        fedl_sha256_hex(digest, actual_hex);
        fedl_sha256_hex(e->sha256, listed_hex);
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: content changed (SHA-256 %s, manifest %s)",
                              path, actual_hex, listed_hex);
    }
    return FEDL_OK;
}

fedl_status fedl_manifest_verify_dir(const fedl_manifest *m, const char *dir, fedl_error *err)
{
    if (m == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "manifest verify: no manifest");
    for (size_t i = 0; i < m->count; i++) {
        fedl_status st = fedl_manifest_check_file(m, dir, m->entries[i].name, err);
        if (st != FEDL_OK)
            return st;
    }
    return FEDL_OK;
}

/* *regular = whether dir/name is a regular file (following symlinks; 0 when
 * it is gone or a dangling symlink). Fails only when stat fails otherwise. */
static fedl_status is_regular_file(const char *dir, const char *name, int *regular, fedl_error *err)
{
    char path[MANIFEST_PATH_MAX];
    struct stat st;
    fedl_status status = join_path(dir, name, path, sizeof path, err);
    *regular = 0;
    if (status != FEDL_OK)
        return status;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return FEDL_OK;
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    *regular = S_ISREG(st.st_mode);
    return FEDL_OK;
}

fedl_status fedl_manifest_check_unlisted(const fedl_manifest *m, const char *dir,
                                         const char *skip_name, fedl_error *err)
{
    char first[FEDL_MANIFEST_NAME_MAX + 1] = ""; /* d_name holds at most 255 bytes too */
    fedl_status st = FEDL_OK;
    struct dirent *entry;
    DIR *d;
    if (m == NULL || dir == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "manifest unlisted check: missing argument");
    d = opendir(dir[0] != '\0' ? dir : ".");
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot list directory: %s", dir,
                              strerror(errno));
    /* Keep the smallest unlisted name (strcmp order), so the answer does
     * not depend on readdir's order; only candidates below it are stat'ed. */
    while (st == FEDL_OK && (entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        int regular = 0;
        if (skipped_name(name, skip_name) || fedl_manifest_find(m, name) != NULL ||
            (first[0] != '\0' && strcmp(name, first) >= 0))
            continue;
        st = is_regular_file(dir, name, &regular, err);
        if (st == FEDL_OK && regular)
            snprintf(first, sizeof first, "%s", name);
    }
    closedir(d);
    if (st != FEDL_OK)
        return st;
    if (first[0] != '\0')
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s/%s: not in the manifest", dir, first);
    return FEDL_OK;
}
