/*
 * probe_parse.c - strict parsers for the kernel files the monitor's probes
 * read: /proc/meminfo (its swap lines; the rest by budget_parse.c),
 * pressure stall information, cgroup counter files, /proc/loadavg, VmRSS,
 * a thermal zone's temp and get_throttled. See probe_parse.h for the
 * accepted forms.
 *
 * The kernel writes these files, but a fake tree, a container runtime or a
 * future kernel may not write what we expect: every byte is checked and a
 * surprise is FEDL_ERR_FORMAT "<file>:<line>: <field>: expected ..., got
 * '...'" rather than a pressure state computed from garbage. The files are
 * read word by word with one small scanner.
 */
#include <stdio.h>
#include <string.h>

#include "mem/budget_parse.h"
#include "monitor/probe_parse.h"

/* ----------------------------------------------------------------- scanner */

/* A position in a buffer, the number of its line and the file's name. */
typedef struct scanner {
    const char *p;
    const char *end;
    size_t line; /* 1-based */
    const char *name;
} scanner;

static void scan_init(scanner *s, const char *text, size_t length, const char *name)
{
    s->p = text;
    s->end = text + length;
    s->line = 1;
    s->name = name;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static void skip_blanks(scanner *s)
{
    while (s->p < s->end && is_blank(*s->p))
        s->p++;
}

/* After blanks, the run of bytes up to the next blank or the line's end;
 * returns its length (0 at the end of a line). */
static size_t scan_word(scanner *s, const char **word)
{
    skip_blanks(s);
    *word = s->p;
    while (s->p < s->end && !is_blank(*s->p) && *s->p != '\n')
        s->p++;
    return (size_t)(s->p - *word);
}

/* 1 and past the newline when only blanks are left on the line; else 0 and
 * the scanner stays on the line. */
static int finish_line(scanner *s)
{
    skip_blanks(s);
    if (s->p < s->end && *s->p != '\n')
        return 0;
    if (s->p < s->end)
        s->p++;
    s->line++;
    return 1;
}

/* Past the rest of the line, whatever it holds. */
static void skip_line(scanner *s)
{
    const char *newline = memchr(s->p, '\n', (size_t)(s->end - s->p));
    s->p = newline != NULL ? newline + 1 : s->end;
    s->line++;
}

static int same(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* ---------------------------------------------------------------- messages */

#define SHOWN_MAX 40 /* bytes of untrusted text quoted in a message */

/* A printable copy of n untrusted bytes: '?' for other bytes, cut with
 * "..." past SHOWN_MAX. */
static const char *show(const char *s, size_t n, char *buf)
{
    size_t keep = n < SHOWN_MAX ? n : SHOWN_MAX - 4;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (keep < n) {
        memcpy(buf + keep, "...", 3);
        keep += 3;
    }
    buf[keep] = '\0';
    return buf;
}

/* "<name>:<line>: <field>: expected <expected>, got '<n bytes from got>'". */
static fedl_status fail_word(const scanner *s, size_t line, const char *field, const char *expected,
                             const char *got, size_t n, fedl_error *err)
{
    char shown[SHOWN_MAX];
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: expected %s, got '%s'", s->name, line,
                          field, expected, show(got, n, shown));
}

/* The same, showing the rest of the line from got. */
static fedl_status fail(const scanner *s, size_t line, const char *field, const char *expected,
                        const char *got, fedl_error *err)
{
    const char *stop = memchr(got, '\n', (size_t)(s->end - got));
    if (stop == NULL)
        stop = s->end;
    while (got < stop && is_blank(*got))
        got++;
    return fail_word(s, line, field, expected, got, (size_t)(stop - got), err);
}

/* ----------------------------------------------------------------- numbers */

/* All of s[0..n) as a decimal number; 0 when empty, not digits or past
 * 2^64 - 1. */
static int read_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return 0;
        value = value * 10 + digit;
    }
    if (i == 0 || i != n)
        return 0;
    *out = value;
    return 1;
}

/* "D" or "D.D" with at most 12 digits before the point and 9 after (the
 * kernel writes "%lu.%02lu"): small enough to be exact in a double. */
static int read_decimal(const char *s, size_t n, double *out)
{
    const char *dot = memchr(s, '.', n);
    size_t whole = dot != NULL ? (size_t)(dot - s) : n;
    size_t places = dot != NULL ? n - whole - 1 : 0;
    uint64_t integer, fraction = 0;
    double scale = 1.0;
    if (whole == 0 || whole > 12 || (dot != NULL && (places == 0 || places > 9)))
        return 0;
    if (!read_u64(s, whole, &integer) || (dot != NULL && !read_u64(dot + 1, places, &fraction)))
        return 0;
    for (size_t i = 0; i < places; i++)
        scale *= 10.0;
    *out = (double)integer + (double)fraction / scale;
    return 1;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "[0x]H..." into 32 bits; 0 when empty, not hex or wider. */
static int read_hex_u32(const char *s, size_t n, uint32_t *out)
{
    uint32_t value = 0;
    size_t i = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 2 : 0;
    if (i == n)
        return 0;
    for (; i < n; i++) {
        int digit = hex_digit(s[i]);
        if (digit < 0 || value > UINT32_MAX >> 4)
            return 0;
        value = value << 4 | (uint32_t)digit;
    }
    *out = value;
    return 1;
}

/* A one-value file's text without its one trailing newline. */
static size_t one_value(const char *text, size_t length)
{
    return length > 0 && text[length - 1] == '\n' ? length - 1 : length;
}

/* ------------------------------------------- "key N" and "Key: N kB" lines */

/* The fields wanted from one file and where each was seen. */
typedef struct field_set {
    const char *const *keys;
    size_t count;
    int kb;           /* 1: "Key: N kB" lines, values to bytes; 0: "key N" lines */
    int every_line;   /* 1: every line must have the shape; 0: others are free text */
    uint64_t *values; /* [count] */
    size_t *lines;    /* [count]; 0 = not seen */
} field_set;

static size_t field_index(const field_set *f, const char *key, size_t n)
{
    size_t k = 0;
    while (k < f->count && !same(key, n, f->keys[k]))
        k++;
    return k;
}

/* The value after the key on this line: "N", or "N kB", then the line's end. */
static fedl_status take_value(scanner *s, const field_set *f, size_t line, const char *key,
                              size_t key_length, uint64_t *value, fedl_error *err)
{
    const char *number, *unit = "";
    size_t digits = scan_word(s, &number), unit_length = f->kb ? scan_word(s, &unit) : 0;
    char field[SHOWN_MAX];
    uint64_t v;
    show(key, key_length, field);
    if (!read_u64(number, digits, &v) || (f->kb && !same(unit, unit_length, "kB")) ||
        !finish_line(s))
        return fail(s, line, field, f->kb ? "a number of kB" : "a decimal number", number, err);
    if (f->kb && v > UINT64_MAX / 1024)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: %llu kB is too large", s->name,
                              line, field, (unsigned long long)v);
    *value = f->kb ? v * 1024 : v;
    return FEDL_OK;
}

/* One non-empty line: its key, and the value when the key is wanted (or
 * when every line must have the shape). */
static fedl_status take_field_line(scanner *s, const field_set *f, fedl_error *err)
{
    const char *key;
    size_t line = s->line, n = scan_word(s, &key), k;
    uint64_t ignored;
    int shaped = f->kb ? n >= 2 && key[n - 1] == ':' : 1;
    if (!shaped && f->every_line)
        return fail(s, line, "line", "'Name: N kB'", key, err);
    if (f->kb && shaped)
        n--;
    k = shaped ? field_index(f, key, n) : f->count;
    if (k == f->count && !f->every_line) {
        skip_line(s);
        return FEDL_OK;
    }
    if (k == f->count)
        return take_value(s, f, line, key, n, &ignored, err);
    if (f->lines[k] != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: appears twice (first on line %zu)",
                              s->name, line, f->keys[k], f->lines[k]);
    f->lines[k] = line;
    return take_value(s, f, line, key, n, &f->values[k], err);
}

static fedl_status take_fields(const char *text, size_t length, const char *name,
                               const field_set *f, fedl_error *err)
{
    scanner s;
    scan_init(&s, text, length, name);
    for (size_t k = 0; k < f->count; k++) {
        f->values[k] = 0;
        f->lines[k] = 0;
    }
    while (s.p < s.end) {
        fedl_status status;
        if (finish_line(&s))
            continue;
        status = take_field_line(&s, f, err);
        if (status != FEDL_OK)
            return status;
    }
    return FEDL_OK;
}

/* Texts may be NULL only when empty; names default to what the file is. */
static int check_text(const char **text, size_t length, const char **name, const char *fallback)
{
    if (*text == NULL && length > 0)
        return 0;
    if (*text == NULL)
        *text = "";
    if (*name == NULL)
        *name = fallback;
    return 1;
}

/* ---------------------------------------------------------- /proc/meminfo */

enum { SWAP_TOTAL, SWAP_FREE, SWAP_COUNT };
static const char *const swap_keys[SWAP_COUNT] = {"SwapTotal", "SwapFree"};

fedl_status fedl_probe_parse_meminfo(const char *text, size_t length, const char *name,
                                     fedl_probe_meminfo *out, fedl_error *err)
{
    fedl_meminfo info;
    uint64_t swap[SWAP_COUNT];
    size_t lines[SWAP_COUNT];
    field_set f = {swap_keys, SWAP_COUNT, 1, 0, swap, lines};
    fedl_status status;
    if (out == NULL || !check_text(&text, length, &name, "meminfo"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "meminfo parse: missing argument");
    memset(out, 0, sizeof *out);
    status = fedl_meminfo_parse(text, length, name, &info, err);
    if (status == FEDL_OK)
        status = take_fields(text, length, name, &f, err);
    if (status != FEDL_OK)
        return status;
    out->mem_total = info.memtotal;
    out->mem_available = info.memavailable;
    out->estimated = info.estimated;
    out->swap_total = swap[SWAP_TOTAL];
    out->swap_free = swap[SWAP_FREE];
    return FEDL_OK;
}

/* ------------------------------------------------------- /proc/self/status */

fedl_status fedl_probe_parse_rss(const char *text, size_t length, const char *name, uint64_t *rss,
                                 int *found, fedl_error *err)
{
    static const char *const keys[1] = {"VmRSS"};
    uint64_t value;
    size_t line;
    field_set f = {keys, 1, 1, 0, &value, &line};
    fedl_status status;
    if (rss == NULL || found == NULL || !check_text(&text, length, &name, "status"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "status parse: missing argument");
    *rss = 0;
    *found = 0;
    status = take_fields(text, length, name, &f, err);
    if (status != FEDL_OK)
        return status;
    *rss = value;
    *found = line != 0;
    return FEDL_OK;
}

/* ----------------------------------------------------- cgroup counter files */

#define COUNTERS_MAX 16 /* keys one call may ask for */

fedl_status fedl_probe_parse_counters(const char *text, size_t length, const char *name,
                                      const char *const *keys, size_t count, uint64_t *values,
                                      int *found, fedl_error *err)
{
    size_t lines[COUNTERS_MAX];
    field_set f = {keys, count, 0, 1, values, lines};
    fedl_status status;
    if (keys == NULL || values == NULL || found == NULL || count > COUNTERS_MAX ||
        !check_text(&text, length, &name, "counters"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "counters parse: missing argument");
    status = take_fields(text, length, name, &f, err);
    for (size_t k = 0; k < count; k++) {
        if (status != FEDL_OK)
            values[k] = 0;
        found[k] = status == FEDL_OK && lines[k] != 0;
    }
    return status;
}

/* -------------------------------------------------- pressure stall figures */

/* The figures of one "some" or "full" line. */
typedef struct psi_line {
    const char *kind; /* "some", "full" */
    double *avg10;
    uint64_t *total_us;
} psi_line;

/* One "key=value" field of a PSI line; *has_avg10 / *has_total when seen. */
static fedl_status take_psi_field(scanner *s, size_t line, const psi_line *l, const char *word,
                                  size_t n, int *has_avg10, int *has_total, fedl_error *err)
{
    const char *eq = memchr(word, '=', n);
    size_t key_length = eq != NULL ? (size_t)(eq - word) : 0;
    const char *value = eq != NULL ? eq + 1 : word;
    size_t value_length = eq != NULL ? n - key_length - 1 : n;
    char field[32];
    double avg;
    if (eq == NULL || key_length == 0)
        return fail_word(s, line, l->kind, "key=value fields", word, n, err);
    if (same(word, key_length, "total")) {
        snprintf(field, sizeof field, "%s total", l->kind);
        if (!read_u64(value, value_length, l->total_us))
            return fail_word(s, line, field, "a number of microseconds", value, value_length, err);
        *has_total = 1;
        return FEDL_OK;
    }
    if (!same(word, key_length, "avg10") && !same(word, key_length, "avg60") &&
        !same(word, key_length, "avg300"))
        return FEDL_OK; /* a field of a later kernel */
    snprintf(field, sizeof field, "%s %.*s", l->kind, (int)key_length, word);
    if (!read_decimal(value, value_length, &avg))
        return fail_word(s, line, field, "a percentage such as 0.25", value, value_length, err);
    if (same(word, key_length, "avg10")) {
        *l->avg10 = avg;
        *has_avg10 = 1;
    }
    return FEDL_OK;
}

/* The fields after "some" or "full", to the end of the line. */
static fedl_status take_psi_line(scanner *s, size_t line, const psi_line *l, fedl_error *err)
{
    int has_avg10 = 0, has_total = 0;
    while (!finish_line(s)) {
        const char *word;
        size_t n = scan_word(s, &word);
        fedl_status status = take_psi_field(s, line, l, word, n, &has_avg10, &has_total, err);
        if (status != FEDL_OK)
            return status;
    }
    if (!has_avg10 || !has_total)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu: %s: no %s field", s->name, line,
                              l->kind, has_avg10 ? "total=" : "avg10=");
    return FEDL_OK;
}

static fedl_status take_psi_lines(scanner *s, fedl_psi *out, fedl_error *err)
{
    const psi_line kinds[2] = {{"some", &out->some_avg10, &out->some_total_us},
                               {"full", &out->full_avg10, &out->full_total_us}};
    size_t seen[2] = {0, 0};
    while (s->p < s->end) {
        const char *word;
        size_t line = s->line, n;
        int k;
        fedl_status status;
        if (finish_line(s))
            continue;
        n = scan_word(s, &word);
        k = same(word, n, "some") ? 0 : same(word, n, "full") ? 1 : -1;
        if (k < 0)
            return fail(s, line, "line", "'some ...' or 'full ...'", word, err);
        if (seen[k] != 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s:%zu: %s: appears twice (first on line %zu)", s->name, line,
                                  kinds[k].kind, seen[k]);
        seen[k] = line;
        status = take_psi_line(s, line, &kinds[k], err);
        if (status != FEDL_OK)
            return status;
    }
    if (seen[0] == 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no 'some' line", s->name);
    return FEDL_OK;
}

fedl_status fedl_probe_parse_psi(const char *text, size_t length, const char *name, fedl_psi *out,
                                 fedl_error *err)
{
    scanner s;
    fedl_status status;
    if (out == NULL || !check_text(&text, length, &name, "pressure"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "pressure parse: missing argument");
    memset(out, 0, sizeof *out);
    scan_init(&s, text, length, name);
    status = take_psi_lines(&s, out, err);
    if (status != FEDL_OK) {
        memset(out, 0, sizeof *out);
        return status;
    }
    out->valid = 1;
    return FEDL_OK;
}

/* ------------------------------------------------------------ /proc/loadavg */

/* "running/total": two decimal numbers around a slash. */
static int read_ratio(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    uint64_t a, b;
    return slash != NULL && read_u64(s, (size_t)(slash - s), &a) &&
           read_u64(slash + 1, n - (size_t)(slash - s) - 1, &b);
}

static fedl_status take_loadavg(scanner *s, double *load, fedl_error *err)
{
    static const char *const fields[3] = {"load1", "load5", "load15"};
    const char *word;
    size_t n;
    uint64_t pid;
    for (int i = 0; i < 3; i++) {
        n = scan_word(s, &word);
        if (!read_decimal(word, n, &load[i]))
            return fail_word(s, 1, fields[i], "a decimal such as 0.52", word, n, err);
    }
    n = scan_word(s, &word);
    if (!read_ratio(word, n))
        return fail_word(s, 1, "running/total", "two numbers such as 1/83", word, n, err);
    n = scan_word(s, &word);
    if (!read_u64(word, n, &pid))
        return fail_word(s, 1, "last pid", "a process id", word, n, err);
    if (!finish_line(s))
        return fail(s, 1, "line", "nothing after the last pid", s->p, err);
    while (s->p < s->end)
        if (!finish_line(s))
            return fail(s, s->line, "line", "one line only", s->p, err);
    return FEDL_OK;
}

fedl_status fedl_probe_parse_loadavg(const char *text, size_t length, const char *name,
                                     double *load1, double *load5, double *load15, fedl_error *err)
{
    scanner s;
    double load[3] = {0.0, 0.0, 0.0};
    fedl_status status;
    if (load1 == NULL || load5 == NULL || load15 == NULL ||
        !check_text(&text, length, &name, "loadavg"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "loadavg parse: missing argument");
    scan_init(&s, text, length, name);
    status = take_loadavg(&s, load, err);
    if (status != FEDL_OK)
        load[0] = load[1] = load[2] = 0.0;
    *load1 = load[0];
    *load5 = load[1];
    *load15 = load[2];
    return status;
}

/* ------------------------------------------------------- one-value files */

fedl_status fedl_probe_parse_throttled(const char *text, size_t length, const char *name,
                                       uint32_t *bits, fedl_error *err)
{
    scanner s;
    if (bits == NULL || !check_text(&text, length, &name, "get_throttled"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "get_throttled parse: missing argument");
    *bits = 0;
    scan_init(&s, text, length, name);
    if (!read_hex_u32(text, one_value(text, length), bits)) {
        *bits = 0;
        return fail(&s, 1, "get_throttled", "a 32-bit hex number such as 0x50005", text, err);
    }
    return FEDL_OK;
}

fedl_status fedl_probe_parse_temp(const char *text, size_t length, const char *name,
                                  double *celsius, fedl_error *err)
{
    scanner s;
    size_t n;
    int negative;
    uint64_t millidegrees;
    if (celsius == NULL || !check_text(&text, length, &name, "temp"))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "temp parse: missing argument");
    *celsius = 0.0;
    scan_init(&s, text, length, name);
    n = one_value(text, length);
    negative = n > 0 && text[0] == '-';
    /* at most 9 digits: +-1e6 degrees is far past any sensor */
    if (n - (size_t)negative > 9 || !read_u64(text + negative, n - (size_t)negative, &millidegrees))
        return fail(&s, 1, "temp", "millidegrees Celsius such as 48312", text, err);
    *celsius = (negative ? -(double)millidegrees : (double)millidegrees) / 1000.0;
    return FEDL_OK;
}
