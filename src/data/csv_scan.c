/*
 * csv_scan.c - reading records: refilling the buffer, the record scanner,
 * blank and comment lines, the field count check, fedl_csv_next_record.
 *
 * The buffer holds [begin, end): the current record (or the start of the
 * next one) followed by bytes not yet looked at. A record is scanned in
 * place, byte classes looked up in a 256-entry table, with a '\n' sentinel
 * written at end so the inner loops need no bounds check. When the data
 * runs out mid-record the scanner saves its state (which field, inside
 * quotes or not, offsets relative to begin), the partial record moves to
 * the front of the buffer, more bytes are read behind it, and the scan goes
 * on where it stopped: no byte is scanned twice, however short the reads.
 * A record that fills the whole buffer is an error.
 *
 * Every field gets a NUL where it ends, on its delimiter, line break or
 * closing quote, as soon as it is complete, so a field is a C string for
 * strtof_l without a copy. The text of a quoted field starts after its
 * opening quote; its doubled quotes are squeezed out in place once the
 * record is complete (the text only ever shrinks).
 */
#include <stdio.h>
#include <string.h>

#include "data/csv_internal.h"

typedef enum scan_result { SCAN_ERROR = -1, SCAN_MORE = 0, SCAN_DONE = 1 } scan_result;

/* ------------------------------------------------------ reading bytes */

/* Move [begin, end) to the front and read more behind it. Sets eof when the
 * source is done. The caller checks first that there is room. */
static fedl_status refill(fedl_csv_reader *r, fedl_error *err)
{
    size_t got = 0;
    fedl_status status;
    if (r->begin > 0) {
        memmove(r->buf, r->buf + r->begin, r->end - r->begin);
        r->buf_offset += r->begin;
        r->end -= r->begin;
        r->begin = 0;
    }
    status = csv_source_read(&r->src, r->buf + r->end, r->capacity - r->end, &got, err);
    if (status != FEDL_OK)
        return status;
    if (got == 0)
        r->eof = 1;
    r->end += got;
    return FEDL_OK;
}

/* ------------------------------------------------------------ scanner */

static fedl_status grow_fields(fedl_csv_reader *r, uint64_t line, uint64_t column, fedl_error *err)
{
    size_t wanted = r->field_capacity * 2;
    csv_field *grown;
    if (r->field_capacity >= r->opts.max_fields) {
        char what[96];
        snprintf(what, sizeof what, "record has more than %zu fields (max_fields)",
                 r->opts.max_fields);
        return csv_fail_at(r, FEDL_ERR_FORMAT, line, column, err, what);
    }
    if (wanted > r->opts.max_fields)
        wanted = r->opts.max_fields;
    grown = fedl_mem_realloc(r->alloc, r->fields, r->field_capacity * sizeof *r->fields,
                             wanted * sizeof *r->fields);
    if (grown == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "%s:%llu: cannot grow the field table to %zu fields", r->name,
                              (unsigned long long)r->record_line, wanted);
    r->fields = grown;
    r->field_capacity = wanted;
    return FEDL_OK;
}

/* Scan the record at begin from where the last call stopped: SCAN_DONE with
 * fields and record_bytes set, SCAN_MORE when the data ran out before the
 * record did (and more may come), or SCAN_ERROR. */
static scan_result scan_record(fedl_csv_reader *r, fedl_status *failure, fedl_error *err)
{
    unsigned char *b = r->buf + r->begin;
    const size_t n = r->end - r->begin;
    const unsigned char *unquoted_stop = r->unquoted_stop;
    const unsigned char *quoted_stop = r->quoted_stop;
    const unsigned char delimiter = r->delimiter, quote = r->quote;
    const int quoting = r->quoting;
    size_t p = r->scan_position;
    size_t count = r->field_count;
    size_t line_start = r->line_start;
    uint32_t line_delta = r->line_delta;
    csv_field *f = &r->fields[count < r->field_capacity ? count : 0];
    unsigned char c;
    scan_state state = r->scan;

    b[n] = '\n'; /* the sentinel */

#define SAVE(next_state)                                                                           \
    do {                                                                                           \
        r->scan = (next_state);                                                                    \
        r->scan_position = p;                                                                      \
        r->field_count = count;                                                                    \
        r->line_start = line_start;                                                                \
        r->line_delta = line_delta;                                                                \
    } while (0)

    switch (state) {
    case SCAN_FIELD_START:
        goto field_start;
    case SCAN_UNQUOTED:
        goto unquoted;
    case SCAN_QUOTED:
        goto quoted;
    case SCAN_QUOTE_SEEN:
        goto quote_seen;
    }

field_start:
    if (count == r->field_capacity) {
        SAVE(SCAN_FIELD_START);
        *failure = grow_fields(r, r->record_line + line_delta, p - line_start + 1, err);
        if (*failure != FEDL_OK)
            return SCAN_ERROR;
    }
    f = &r->fields[count];
    f->start = (uint32_t)p;
    f->line = line_delta;
    f->column = (uint32_t)(p - line_start + 1);
    if (unquoted_stop[b[p]]) {
        /* An empty field, a quoted one, or the end of the data so far. */
        if (p == n && !r->eof) {
            SAVE(SCAN_FIELD_START); /* whether the field is quoted is not known yet */
            return SCAN_MORE;
        }
        if (quoting && b[p] == quote) {
            f->start = (uint32_t)++p;
            goto quoted;
        }
    }
unquoted:
    while (!unquoted_stop[b[p]])
        p++;
    c = b[p];
    if (c == delimiter) {
        f->length = (uint32_t)(p - f->start);
        b[p++] = '\0';
        count++;
        goto field_start;
    }
    if (c == '\n' || c == '\r') {
        if (p == n) {
            if (!r->eof) {
                SAVE(SCAN_UNQUOTED);
                return SCAN_MORE;
            }
            f->length = (uint32_t)(p - f->start);
            b[p] = '\0'; /* the sentinel's place */
            count++;
            SAVE(SCAN_FIELD_START);
            r->record_bytes = r->record_stop = n;
            return SCAN_DONE;
        }
        f->length = (uint32_t)(p - f->start);
        count++;
        goto record_end;
    }
    /* A quote inside an unquoted field. */
    SAVE(SCAN_UNQUOTED);
    {
        char what[160];
        snprintf(what, sizeof what,
                 "field %zu: stray quote in an unquoted field (quote the whole field and double "
                 "the quotes inside it)",
                 count + 1);
        *failure = csv_fail_at(r, FEDL_ERR_FORMAT, r->record_line + line_delta, p - line_start + 1,
                               err, what);
    }
    return SCAN_ERROR;

quoted:
    while (!quoted_stop[b[p]])
        p++;
    c = b[p];
    if (c == quote) {
        p++;
        goto quote_seen;
    }
    if (p == n) {
        if (!r->eof) {
            SAVE(SCAN_QUOTED);
            return SCAN_MORE;
        }
        SAVE(SCAN_QUOTED);
        {
            char what[128];
            snprintf(what, sizeof what,
                     "field %zu: the quote opened here is never closed (end of input)", count + 1);
            *failure =
                csv_fail_at(r, FEDL_ERR_FORMAT, r->record_line + f->line, f->column, err, what);
        }
        return SCAN_ERROR;
    }
    /* A line break inside quotes: CR LF counts once. b[p - 1] is in the
     * record (at least the opening quote precedes). */
    if (!(c == '\n' && b[p - 1] == '\r'))
        line_delta++;
    line_start = ++p;
    goto quoted;

quote_seen:
    if (p == n) {
        if (!r->eof) {
            SAVE(SCAN_QUOTE_SEEN);
            return SCAN_MORE;
        }
        f->length = (uint32_t)(p - 1 - f->start);
        b[p - 1] = '\0'; /* on the closing quote */
        count++;
        SAVE(SCAN_FIELD_START);
        r->record_bytes = r->record_stop = n;
        return SCAN_DONE;
    }
    c = b[p];
    if (c == quote) {
        r->doubled = 1;
        p++;
        goto quoted;
    }
    f->length = (uint32_t)(p - 1 - f->start);
    if (c == delimiter) {
        b[p - 1] = '\0';
        count++;
        p++;
        goto field_start;
    }
    if (c == '\n' || c == '\r') {
        b[p - 1] = '\0';
        count++;
        goto record_end;
    }
    SAVE(SCAN_QUOTE_SEEN);
    {
        char what[160], shown[16];
        if (b[p] >= 0x80)
            snprintf(shown, sizeof shown, "\\x%02x", b[p]); /* no half UTF-8 characters */
        else
            csv_quote_text((const char *)b + p, 1, shown, sizeof shown);
        snprintf(what, sizeof what,
                 "field %zu: \"%s\" after the closing quote (expected a delimiter or the end of "
                 "the line)",
                 count + 1, shown);
        *failure = csv_fail_at(r, FEDL_ERR_FORMAT, r->record_line + line_delta, p - line_start + 1,
                               err, what);
    }
    return SCAN_ERROR;

record_end:
    /* b[p] is the CR or LF that ends the record. An unquoted last field
     * ends on it; a quoted one ended on its closing quote. */
    if (c == '\r')
        r->skip_lf = 1;
    b[p] = '\0';
    SAVE(SCAN_FIELD_START);
    r->record_stop = p;
    r->record_bytes = p + 1;
    return SCAN_DONE;
#undef SAVE
}

/* Undo doubled quotes (the scanner has NUL-terminated every field; the
 * text shrinks here, so its NUL moves too). */
static void finish_record(fedl_csv_reader *r)
{
    unsigned char *b = r->buf + r->begin;
    if (r->doubled) {
        for (size_t i = 0; i < r->field_count; i++) {
            csv_field *f = &r->fields[i];
            unsigned char *text = b + f->start;
            unsigned char *q = memchr(text, r->quote, f->length);
            size_t out;
            if (q == NULL)
                continue;
            /* Inside a quoted field quotes come in pairs: keep one of each. */
            out = (size_t)(q - text);
            for (size_t in = out; in < f->length; in++) {
                text[out++] = text[in];
                if (text[in] == r->quote)
                    in++;
            }
            f->length = (uint32_t)out;
            text[out] = '\0';
        }
    }
}

/* Skip blank lines, comment lines, the LF of a CR LF and a BOM before the
 * next record. Returns with begin at its first byte, or begin == end at
 * the end of the input. */
static fedl_status skip_to_record(fedl_csv_reader *r, fedl_error *err)
{
    int in_comment = 0;
    for (;;) {
        unsigned char c;
        if (r->begin == r->end || (r->bom_check && r->end - r->begin < 3 && !r->eof)) {
            fedl_status status;
            if (r->eof) {
                r->bom_check = 0;
                return FEDL_OK;
            }
            status = refill(r, err);
            if (status != FEDL_OK)
                return status;
            continue;
        }
        if (r->bom_check) {
            const unsigned char *b = r->buf + r->begin;
            r->bom_check = 0;
            if (r->end - r->begin >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
                r->begin += 3;
            continue;
        }
        if (in_comment) {
            unsigned char *b = r->buf + r->begin;
            size_t n = r->end - r->begin, i = 0;
            while (i < n && b[i] != '\n' && b[i] != '\r')
                i++;
            if (i == n) {
                r->begin = r->end; /* a comment may be longer than the buffer */
                continue;
            }
            r->begin += i + 1;
            r->line++;
            r->skip_lf = b[i] == '\r';
            in_comment = 0;
            continue;
        }
        c = r->buf[r->begin];
        if (r->skip_lf) {
            r->skip_lf = 0;
            if (c == '\n') {
                r->begin++;
                continue;
            }
        }
        if (c == '\n' || c == '\r') {
            r->begin++;
            r->line++;
            r->skip_lf = c == '\r';
            continue;
        }
        if (r->commenting && c == r->comment) {
            in_comment = 1;
            continue;
        }
        return FEDL_OK;
    }
}

/* Read the next record into fields; have_record tells whether there was one. */
fedl_status csv_read_record(fedl_csv_reader *r, int *have_record, fedl_error *err)
{
    fedl_status status;
    *have_record = 0;
    r->begin += r->record_bytes;
    r->record_bytes = 0;
    r->field_count = 0;
    status = skip_to_record(r, err);
    if (status != FEDL_OK)
        return status;
    if (r->begin == r->end)
        return FEDL_OK;

    r->record_line = r->line;
    r->record_offset = r->buf_offset + r->begin;
    r->scan = SCAN_FIELD_START;
    r->scan_position = 0;
    r->line_delta = 0;
    r->line_start = 0;
    r->doubled = 0;
    for (;;) {
        fedl_status failure = FEDL_ERR_FORMAT;
        scan_result rc = scan_record(r, &failure, err);
        if (rc == SCAN_ERROR) {
            r->field_count = 0;
            return failure;
        }
        if (rc == SCAN_DONE)
            break;
        if (r->begin == 0 && r->end == r->capacity && !r->eof) {
            /* The buffer is full: the record fits only if the input ends
             * here. Probe one byte into the sentinel's place to know. */
            size_t got = 0;
            status = csv_source_read(&r->src, r->buf + r->capacity, 1, &got, err);
            if (status != FEDL_OK) {
                r->field_count = 0;
                return status;
            }
            if (got == 0) {
                r->eof = 1;
                continue;
            }
        }
        if (r->begin == 0 && r->end == r->capacity) {
            char what[160];
            r->field_count = 0;
            snprintf(what, sizeof what,
                     "record is longer than the %zu-byte buffer (raise buffer_bytes; is a "
                     "quote left open?)",
                     r->capacity);
            return csv_fail_at(r, FEDL_ERR_FORMAT, r->record_line, 1, err, what);
        }
        status = refill(r, err);
        if (status != FEDL_OK) {
            r->field_count = 0;
            return status;
        }
    }
    finish_record(r);
    r->line = r->record_line + r->line_delta + 1;
    *have_record = 1;
    return FEDL_OK;
}

static fedl_status check_field_count(fedl_csv_reader *r, fedl_error *err)
{
    char what[200];
    uint64_t line, column;
    if (r->expected_fields == 0) {
        r->expected_fields = r->field_count;
        r->expected_line = r->record_line;
        return FEDL_OK;
    }
    if (r->field_count == r->expected_fields)
        return FEDL_OK;
    snprintf(what, sizeof what, "record has %zu fields, expected %zu as in the %s on line %llu",
             r->field_count, r->expected_fields, r->header_count > 0 ? "header" : "first record",
             (unsigned long long)r->expected_line);
    if (r->field_count > r->expected_fields) {
        const csv_field *extra = &r->fields[r->expected_fields];
        line = r->record_line + extra->line;
        column = extra->column;
    } else {
        /* Where the record ends: at its line break. */
        line = r->record_line + r->line_delta;
        column = r->record_stop - r->line_start + 1;
    }
    r->field_count = 0;
    return csv_fail_at(r, FEDL_ERR_FORMAT, line, column, err, what);
}

fedl_status fedl_csv_next_record(fedl_csv_reader *r, int *has_record, fedl_error *err)
{
    fedl_status status;
    int have = 0;
    if (has_record != NULL)
        *has_record = 0;
    if (r == NULL || has_record == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_csv_next_record: reader or has_record is NULL");
    if (r->state == READER_FAILED) {
        r->field_count = 0;
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "%s: reading stopped at an earlier error (seek or close the reader)",
                              r->name);
    }
    if (r->state == READER_END) {
        r->field_count = 0;
        return FEDL_OK;
    }
    status = csv_read_record(r, &have, err);
    if (status == FEDL_OK && have)
        status = check_field_count(r, err);
    if (status != FEDL_OK) {
        r->state = READER_FAILED;
        r->field_count = 0;
        return status;
    }
    if (!have) {
        r->state = READER_END;
        return FEDL_OK;
    }
    *has_record = 1;
    return FEDL_OK;
}
