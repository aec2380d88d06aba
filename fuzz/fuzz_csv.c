/*
 * fuzz_csv.c - libFuzzer target for the streaming CSV reader (fedl_csv_*).
 *
 * Input layout: byte 0 picks the options (bits 0-1 delimiter , ; tab |,
 * bits 2-3 quote " ' none ", bit 4 comment '#', bit 5 header, bit 6
 * allow_nonfinite); byte 1 picks a small buffer (4 + b % 64 bytes) and a
 * read size for the callback run (1, 3, 5 or 7 bytes); the rest is the CSV
 * (plain, or gzip when it starts with 0x1f 0x8b).
 *
 * The same bytes are read three ways: from memory through a 64 KiB
 * buffer, from memory through the small buffer, and through a callback
 * handing out a few bytes per call. Every record (fields, positions, the
 * numbers and the error messages) is hashed. The three must agree, except
 * that the small buffer may stop early with "longer than the buffer"
 * after an agreeing prefix. A number the reader accepts must equal what
 * strtof/strtoll make of the same text. Nothing may leak.
 *
 *     cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DFEDL_FUZZ=ON ...
 *     cmake --build build-fuzz --target fuzz_csv
 *     build-fuzz/fuzz_csv -max_total_time=60 fuzz/corpus/csv
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

typedef struct transcript {
    uint64_t hashes[MAX_RECORDS]; /* one per record */
    size_t records;
    fedl_status status; /* how reading ended */
    char message[512];  /* the error, if any */
    int too_long;       /* it ended with "longer than the ... buffer" */
} transcript;

static transcript runs[3];

static uint64_t mix(uint64_t h, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof v);
}

typedef struct chunk_reader {
    const uint8_t *data;
    size_t length, position, chunk;
} chunk_reader;

static fedl_status chunk_read(void *ud, void *buffer, size_t capacity, size_t *got, fedl_error *err)
{
    chunk_reader *c = ud;
    size_t n = c->length - c->position;
    (void)err;
    if (n > capacity)
        n = capacity;
    if (n > c->chunk)
        n = c->chunk;
    memcpy(buffer, c->data + c->position, n);
    c->position += n;
    *got = n;
    return FEDL_OK;
}

/* Trimmed copy of a field for the C library's own conversions. */
static const char *c_string(const char *text, size_t n, char *out, size_t size)
{
    while (n > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        n--;
    }
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n >= size)
        return NULL;
    memcpy(out, text, n);
    out[n] = '\0';
    return out;
}

static uint64_t check_numbers(const fedl_csv_reader *r, size_t i, int allow_nonfinite, uint64_t h)
{
    static char copy[8192];
    fedl_error err;
    size_t n;
    const char *text = fedl_csv_field(r, i, &n);
    const char *s = c_string(text, n, copy, sizeof copy);
    float f = 0;
    int64_t v = 0;
    int missing = 0;
    fedl_status status = fedl_csv_field_float(r, i, &f, &missing, &err);
    h = mix_u64(h, (uint64_t)status);
    if (status == FEDL_OK) {
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        h = mix_u64(h, isnan(f) ? 0x7fc00000u : bits);
        if (!allow_nonfinite && !isfinite(f))
            abort();
        if (!missing && s != NULL && memchr(text, '\0', n) == NULL) {
            float want = strtof(s, NULL);
            if (isnan(f) ? !isnan(want) : memcmp(&f, &want, sizeof f) != 0)
                abort(); /* accepted, but not what strtof makes of it */
        }
        if (missing && !(f == 0.0f))
            abort();
    } else {
        if (err.message[0] == '\0')
            abort();
        h = mix(h, err.message, strlen(err.message));
    }
    status = fedl_csv_field_int(r, i, &v, &missing, &err);
    h = mix_u64(h, (uint64_t)status);
    if (status == FEDL_OK) {
        h = mix_u64(h, (uint64_t)v);
        if (!missing && s != NULL && memchr(text, '\0', n) == NULL &&
            strtoll(s, NULL, 10) != (long long)v)
            abort();
    }
    return h;
}

static void run(const uint8_t *data, size_t size, const fedl_csv_options *o, size_t chunk,
                transcript *t)
{
    fedl_allocator a;
    fedl_csv_reader *r = NULL;
    fedl_error err;
    chunk_reader c = {data, size, 0, chunk};
    int more = 0;
    fedl_status status;

    memset(t, 0, sizeof *t);
    fedl_allocator_init(&a, NULL, NULL);
    a.limit_bytes = (size_t)16 << 20;
    fedl_error_clear(&err);
    if (chunk == 0)
        status = fedl_csv_open_memory(data, size, o, &a, &r, &err);
    else
        status = fedl_csv_open_callback(chunk_read, &c, o, &a, &r, &err);
    if (status == FEDL_OK) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < fedl_csv_header_count(r); i++) {
            size_t n;
            const char *name = fedl_csv_header_name(r, i, &n);
            if (name == NULL || name[n] != '\0')
                abort();
            h = mix(h, name, n + 1);
        }
        while ((status = fedl_csv_next_record(r, &more, &err)) == FEDL_OK && more) {
            size_t count = fedl_csv_field_count(r);
            if (count == 0 || (o->max_fields != 0 && count > o->max_fields))
                abort();
            h = mix_u64(h, fedl_csv_record_line(r));
            h = mix_u64(h, fedl_csv_record_offset(r));
            h = mix_u64(h, count);
            for (size_t i = 0; i < count; i++) {
                size_t n;
                const char *text = fedl_csv_field(r, i, &n);
                if (text == NULL || text[n] != '\0')
                    abort();
                if (fedl_csv_field_line(r, i) < fedl_csv_record_line(r) ||
                    fedl_csv_field_column(r, i) == 0)
                    abort();
                h = mix(h, text, n);
                h = mix_u64(h, n);
                h = mix_u64(h, fedl_csv_field_line(r, i));
                h = mix_u64(h, fedl_csv_field_column(r, i));
                if (i < 4)
                    h = check_numbers(r, i, o->allow_nonfinite, h);
            }
            fedl_csv_field_error(r, 0, FEDL_ERR_FORMAT, "check", &err);
            h = mix(h, err.message, strlen(err.message));
            if (t->records < MAX_RECORDS)
                t->hashes[t->records] = h;
            t->records++;
        }
        if (status != FEDL_OK && fedl_csv_field_count(r) != 0)
            abort();
    } else if (r != NULL) {
        abort();
    }
    t->status = status;
    if (status != FEDL_OK) {
        if (err.message[0] == '\0')
            abort();
        const char *at = strstr(err.message, "compressed byte ");
        /* Where zlib notices corrupt data depends on how far it read ahead,
         * which depends on the buffer sizes: compare without the number. */
        if (at != NULL) {
            at += strlen("compressed byte ");
            snprintf(t->message, sizeof t->message, "%.*sN%s", (int)(at - err.message), err.message,
                     at + strspn(at, "0123456789"));
        } else {
            snprintf(t->message, sizeof t->message, "%s", err.message);
        }
        t->too_long = strstr(err.message, "longer than the") != NULL;
    }
    fedl_csv_close(r);
    if (a.stats.live_bytes != 0)
        abort();
}

/* Print both runs, then crash: the two ways of reading disagree. */
static void disagree(const char *what, const transcript *x, const transcript *y)
{
    fprintf(
        stderr,
        "fuzz_csv: %s\n  A: %zu records, status %d, \"%s\"\n  B: %zu records, status %d, \"%s\"\n",
        what, x->records, (int)x->status, x->message, y->records, (int)y->status, y->message);
    abort();
}

static void same(const char *what, const transcript *x, const transcript *y)
{
    if (x->records != y->records || x->status != y->status || strcmp(x->message, y->message) != 0)
        disagree(what, x, y);
    for (size_t i = 0; i < x->records && i < MAX_RECORDS; i++)
        if (x->hashes[i] != y->hashes[i])
            disagree(what, x, y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delimiters[4] = {',', ';', '\t', '|'};
    static const char quotes[4] = {'"', '\'', 0, '"'};
    fedl_csv_options o = fedl_csv_defaults();
    size_t small, chunk;
    if (size < 2)
        return 0;
    o.delimiter = delimiters[data[0] & 3];
    o.quote = quotes[(data[0] >> 2) & 3];
    o.comment = (data[0] & 16) ? '#' : 0;
    o.has_header = (data[0] & 32) != 0;
    o.allow_nonfinite = (data[0] & 64) != 0;
    o.max_fields = (data[0] & 128) ? 8 : FEDL_CSV_DEFAULT_MAX_FIELDS;
    o.name = "fuzz.csv";
    small = 4 + data[1] % 64;
    chunk = 1 + 2 * (size_t)(data[1] / 64);
    data += 2;
    size -= 2;

    run(data, size, &o, 0, &runs[0]);
    run(data, size, &o, chunk, &runs[1]);
    same("64 KiB buffer vs short reads", &runs[0], &runs[1]);

    o.buffer_bytes = small;
    run(data, size, &o, 0, &runs[2]);
    if (runs[2].too_long && !runs[0].too_long) {
        /* The small buffer stopped early: what it read must agree. */
        if (runs[2].records > runs[0].records)
            disagree("small buffer read more records", &runs[0], &runs[2]);
        for (size_t i = 0; i < runs[2].records && i < MAX_RECORDS; i++)
            if (runs[2].hashes[i] != runs[0].hashes[i])
                disagree("small buffer read other records", &runs[0], &runs[2]);
    } else if (!runs[0].too_long) {
        same("64 KiB buffer vs small buffer", &runs[0], &runs[2]);
    }
    return 0;
}
