/*
 * budget_parse.c - strict parsers for the kernel files the memory budget
 * reads: /proc/meminfo, /proc/self/status, /proc/self/cgroup and the
 * one-value cgroup files. See budget_parse.h for the accepted forms.
 *
 * The kernel writes these files, but a fake tree, a container runtime or a
 * future kernel may not write what we expect, so every byte is checked and
 * a surprise becomes FEDL_ERR_FORMAT "<file>:<line>: <what>" instead of a
 * budget computed from garbage.
 */
#include <string.h>

#include "mem/budget_parse.h"

/* ------------------------------------------------------------ small helpers */

/* Walks a buffer line by line; line numbers are 1-based. */
typedef struct line_cursor {
    const char *next;
    const char *end;
    size_t line;
} line_cursor;

static void cursor_init(line_cursor *c, const char *text, size_t length)
{
    c->next = text;
    c->end = text + length;
    c->line = 0;
}

/* The next line without its '\n'; 0 at the end of the buffer. */
static int cursor_next(line_cursor *c, const char **start, size_t *length)
{
    const char *newline;
    if (c->next >= c->end)
        return 0;
    newline = memchr(c->next, '\n', (size_t)(c->end - c->next));
    *start = c->next;
    *length = newline != NULL ? (size_t)(newline - c->next) : (size_t)(c->end - c->next);
    c->next = newline != NULL ? newline + 1 : c->end;
    c->line++;
    return 1;
}

/* A short printable copy of untrusted bytes for an error message. */
static const char *quote(const char *s, size_t n, char *out, size_t size)
{
    size_t i, limit = size - 1;
    if (n < limit)
        limit = n;
    for (i = 0; i < limit; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[i] = '\0';
    return out;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int equals(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Decimal digits s[0..n) into *out; 0 when empty, not all digits, or past
 * 2^64 - 1. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned digit;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        digit = (unsigned)(s[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return 0;
        value = value * 10 + digit;
    }
    *out = value;
    return 1;
}

/* ------------------------------------------------- "Name: value kB" files */

/* The fields one file must or may hold, in kB, and where each was seen. */
typedef struct kb_fields {
    const char *const *keys;
    size_t count;
    uint64_t *bytes; /* [count] */
    size_t *lines;   /* [count]; 0 = not seen */
} kb_fields;

/* "Name:" at the start of a line: the name has no blanks or control bytes. */
static int split_key(const char *s, size_t n, size_t *key_length)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return 0;
    for (const char *p = s; p < colon; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 0;
    *key_length = (size_t)(colon - s);
    return 1;
}

/* The value of a wanted field: blanks, digits, blanks, "kB", blanks. */
static fedl_status parse_kb_value(const char *s, size_t n, const char *name, size_t line,
                                  const char *key, uint64_t *bytes, fedl_error *err)
{
    char shown[40];
    size_t i = 0, digits_start, digits_end;
    int has_unit = 0;
    uint64_t kb;
    while (i < n && is_blank(s[i]))
        i++;
    digits_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    digits_end = i;
    while (i < n && is_blank(s[i]))
        i++;
    if (n - i >= 2 && s[i] == 'k' && s[i + 1] == 'B') {
        has_unit = 1;
        i += 2;
    }
    while (i < n && is_blank(s[i]))
        i++;
    if (!has_unit || i != n || !parse_u64(s + digits_start, digits_end - digits_start, &kb))
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: expected a number of kB, got '%s'",
                              name, line, key, quote(s, n, shown, sizeof shown));
    if (kb > UINT64_MAX / 1024)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: %llu kB is too large", name, line,
                              key, (unsigned long long)kb);
    *bytes = kb * 1024;
    return FEDL_OK;
}

/* Store the value of line (key, rest) when key is one of the wanted fields. */
static fedl_status take_kb_field(const kb_fields *f, const char *key, size_t key_length,
                                 const char *rest, size_t rest_length, const char *name,
                                 size_t line, fedl_error *err)
{
    for (size_t k = 0; k < f->count; k++) {
        if (!equals(key, key_length, f->keys[k]))
            continue;
        if (f->lines[k] != 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s:%zu: %s: appears twice (first on line %zu)", name, line,
                                  f->keys[k], f->lines[k]);
        f->lines[k] = line;
        return parse_kb_value(rest, rest_length, name, line, f->keys[k], &f->bytes[k], err);
    }
    return FEDL_OK;
}

/* Every line of text; with strict_shape each must look like "Name: ...". */
static fedl_status parse_kb_file(const char *text, size_t length, const char *name,
                                 int strict_shape, const kb_fields *f, fedl_error *err)
{
    line_cursor c;
    const char *s;
    size_t n;
    for (size_t k = 0; k < f->count; k++) {
        f->bytes[k] = 0;
        f->lines[k] = 0;
    }
    cursor_init(&c, text, length);
    while (cursor_next(&c, &s, &n)) {
        size_t key_length;
        fedl_status status;
        char shown[40];
        if (n == 0)
            continue;
        if (!split_key(s, n, &key_length)) {
            if (!strict_shape)
                continue;
            return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: expected 'Name: value', got '%s'",
                                  name, c.line, quote(s, n, shown, sizeof shown));
        }
        status = take_kb_field(f, s, key_length, s + key_length + 1, n - key_length - 1, name,
                               c.line, err);
        if (status != FEDL_OK)
            return status;
    }
    return FEDL_OK;
}

/* ------------------------------------------------------------- /proc/meminfo */

enum { MI_TOTAL, MI_AVAILABLE, MI_FREE, MI_BUFFERS, MI_CACHED, MI_COUNT };
static const char *const meminfo_keys[MI_COUNT] = {"MemTotal", "MemAvailable", "MemFree", "Buffers",
                                                   "Cached"};

/* Kernels before 3.14 have no MemAvailable: estimate it the way free(1) did. */
static fedl_status estimate_available(const uint64_t *bytes, const size_t *lines, const char *name,
                                      fedl_meminfo *out, fedl_error *err)
{
    for (int k = MI_FREE; k <= MI_CACHED; k++)
        if (lines[k] == 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: no MemAvailable line and no %s line to estimate it from",
                                  name, meminfo_keys[k]);
    if (bytes[MI_FREE] > UINT64_MAX - bytes[MI_BUFFERS] ||
        bytes[MI_FREE] + bytes[MI_BUFFERS] > UINT64_MAX - bytes[MI_CACHED])
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: MemFree + Buffers + Cached overflows",
                              name);
    out->memavailable = bytes[MI_FREE] + bytes[MI_BUFFERS] + bytes[MI_CACHED];
    out->estimated = 1;
    return FEDL_OK;
}

fedl_status fedl_meminfo_parse(const char *text, size_t length, const char *name, fedl_meminfo *out,
                               fedl_error *err)
{
    uint64_t bytes[MI_COUNT];
    size_t lines[MI_COUNT];
    kb_fields f = {meminfo_keys, MI_COUNT, bytes, lines};
    fedl_status status;
    if (out == NULL || (text == NULL && length > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "meminfo parse: missing argument");
    if (name == NULL)
        name = "meminfo";
    if (text == NULL)
        text = "";
    memset(out, 0, sizeof *out);
    status = parse_kb_file(text, length, name, 1, &f, err);
    if (status != FEDL_OK)
        return status;
    if (lines[MI_TOTAL] == 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no MemTotal line", name);
    if (lines[MI_AVAILABLE] == 0) {
        status = estimate_available(bytes, lines, name, out, err);
        if (status != FEDL_OK)
            return status;
    } else {
        out->memavailable = bytes[MI_AVAILABLE];
    }
    out->memtotal = bytes[MI_TOTAL];
    return FEDL_OK;
}

/* --------------------------------------------------------- /proc/self/status */

enum { PS_VMSIZE, PS_VMDATA, PS_COUNT };
static const char *const status_keys[PS_COUNT] = {"VmSize", "VmData"};

fedl_status fedl_proc_status_parse(const char *text, size_t length, const char *name,
                                   uint64_t *vm_size, uint64_t *vm_data, fedl_error *err)
{
    uint64_t bytes[PS_COUNT];
    size_t lines[PS_COUNT];
    kb_fields f = {status_keys, PS_COUNT, bytes, lines};
    fedl_status status;
    if (vm_size == NULL || vm_data == NULL || (text == NULL && length > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "status parse: missing argument");
    if (name == NULL)
        name = "status";
    if (text == NULL)
        text = "";
    *vm_size = 0;
    *vm_data = 0;
    /* Other lines (Name:, Groups:, ...) carry free text: only the shape of
     * the two wanted fields is checked. */
    status = parse_kb_file(text, length, name, 0, &f, err);
    if (status != FEDL_OK)
        return status;
    *vm_size = bytes[PS_VMSIZE];
    *vm_data = bytes[PS_VMDATA];
    return FEDL_OK;
}

/* --------------------------------------------------------- /proc/self/cgroup */

/* One "id:controllers:path" line split at its first two colons. */
typedef struct cgroup_line {
    const char *id, *controllers, *path;
    size_t id_length, controllers_length, path_length;
} cgroup_line;

static int split_cgroup_line(const char *s, size_t n, cgroup_line *out)
{
    const char *first = memchr(s, ':', n), *second;
    if (first == NULL)
        return 0;
    second = memchr(first + 1, ':', (size_t)(s + n - (first + 1)));
    if (second == NULL)
        return 0;
    out->id = s;
    out->id_length = (size_t)(first - s);
    out->controllers = first + 1;
    out->controllers_length = (size_t)(second - (first + 1));
    out->path = second + 1;
    out->path_length = (size_t)(s + n - (second + 1));
    return 1;
}

/* Whether the comma-separated list holds the word "memory". */
static int lists_memory(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (equals(s + start, i - start, "memory"))
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

/* Copy a cgroup path after checking it is absolute, short enough and
 * free of NUL bytes. */
static fedl_status take_cgroup_path(const cgroup_line *l, const char *name, size_t line, char *out,
                                    fedl_error *err)
{
    if (l->path_length == 0 || l->path[0] != '/')
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: path: expected '/...'", name, line);
    if (l->path_length >= FEDL_CGROUP_PATH_MAX)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: path: longer than %d bytes", name,
                              line, FEDL_CGROUP_PATH_MAX - 1);
    if (memchr(l->path, '\0', l->path_length) != NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: path: contains a NUL byte", name,
                              line);
    memcpy(out, l->path, l->path_length);
    out[l->path_length] = '\0';
    return FEDL_OK;
}

/* Record the line when it is the v2 line or a v1 line of the memory
 * controller; *seen_v2 and *seen_v1 hold where each was first seen. */
static fedl_status take_cgroup_line(const cgroup_line *l, const char *name, size_t line,
                                    fedl_proc_cgroup *out, size_t *seen_v2, size_t *seen_v1,
                                    fedl_error *err)
{
    uint64_t id;
    char shown[40];
    if (!parse_u64(l->id, l->id_length, &id))
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s:%zu: hierarchy id: expected a number, got '%s'", name, line,
                              quote(l->id, l->id_length, shown, sizeof shown));
    if (id == 0) {
        if (l->controllers_length != 0)
            return fedl_error_set(
                err, FEDL_ERR_FORMAT, "%s:%zu: controllers: hierarchy 0 (cgroup v2) lists '%s'",
                name, line, quote(l->controllers, l->controllers_length, shown, sizeof shown));
        if (*seen_v2 != 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s:%zu: a second cgroup v2 line (first on line %zu)", name, line,
                                  *seen_v2);
        *seen_v2 = line;
        out->has_v2 = 1;
        return take_cgroup_path(l, name, line, out->v2_path, err);
    }
    if (!lists_memory(l->controllers, l->controllers_length))
        return FEDL_OK;
    if (*seen_v1 != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s:%zu: a second memory controller line (first on line %zu)", name,
                              line, *seen_v1);
    *seen_v1 = line;
    out->has_v1_memory = 1;
    return take_cgroup_path(l, name, line, out->v1_memory_path, err);
}

/* Every line of text into out (which the caller has zeroed). */
static fedl_status parse_cgroup_lines(const char *text, size_t length, const char *name,
                                      fedl_proc_cgroup *out, fedl_error *err)
{
    line_cursor c;
    const char *s;
    size_t n, seen_v2 = 0, seen_v1 = 0;
    cursor_init(&c, text, length);
    while (cursor_next(&c, &s, &n)) {
        cgroup_line l;
        fedl_status status;
        char shown[40];
        if (n == 0)
            continue;
        if (!split_cgroup_line(s, n, &l))
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s:%zu: expected 'id:controllers:/path', got '%s'", name, c.line,
                                  quote(s, n, shown, sizeof shown));
        status = take_cgroup_line(&l, name, c.line, out, &seen_v2, &seen_v1, err);
        if (status != FEDL_OK)
            return status;
    }
    return FEDL_OK;
}

fedl_status fedl_proc_cgroup_parse(const char *text, size_t length, const char *name,
                                   fedl_proc_cgroup *out, fedl_error *err)
{
    fedl_status status;
    if (out == NULL || (text == NULL && length > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "cgroup parse: missing argument");
    if (name == NULL)
        name = "cgroup";
    if (text == NULL)
        text = "";
    memset(out, 0, sizeof *out);
    status = parse_cgroup_lines(text, length, name, out, err);
    if (status != FEDL_OK)
        memset(out, 0, sizeof *out);
    return status;
}

/* --------------------------------------------------------- cgroup value files */

fedl_status fedl_cgroup_value_parse(const char *text, size_t length, const char *name,
                                    int allow_max, uint64_t *value, int *unlimited, fedl_error *err)
{
    char shown[40];
    if (value == NULL || unlimited == NULL || (text == NULL && length > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "cgroup value parse: missing argument");
    if (name == NULL)
        name = "cgroup value";
    if (text == NULL)
        text = "";
    *value = 0;
    *unlimited = 0;
    if (length > 0 && text[length - 1] == '\n')
        length--;
    if (allow_max && equals(text, length, "max")) {
        *unlimited = 1;
        return FEDL_OK;
    }
    if (!parse_u64(text, length, value))
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:1: expected a byte count%s, got '%s'", name,
                              allow_max ? " or 'max'" : "",
                              quote(text, length, shown, sizeof shown));
    return FEDL_OK;
}
