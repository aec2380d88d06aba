/*
 * csv.c - the CSV reader's public face: options, opening and closing,
 * field access and number conversion, the header, seeking, and the error
 * messages. Reading records (the scanner) is in csv_scan.c, the bytes
 * under it in csv_source.c, number parsing in csv_number.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/csv_internal.h"

#define FIELDS_INITIAL 64

/* ------------------------------------------------------------- messages */

/* Field text for a message: at most MESSAGE_TEXT_BYTES bytes, control bytes
 * escaped, never cut inside a UTF-8 sequence, "..." when cut. */
void csv_quote_text(const char *text, size_t length, char *out, size_t size)
{
    size_t show = length, at = 0;
    if (show > MESSAGE_TEXT_BYTES) {
        show = MESSAGE_TEXT_BYTES;
        while (show > 0 && ((unsigned char)text[show] & 0xC0) == 0x80)
            show--;
    }
    for (size_t i = 0; i < show && at + 5 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            out[at++] = '\\';
            out[at++] = 'n';
        } else if (c == '\r') {
            out[at++] = '\\';
            out[at++] = 'r';
        } else if (c == '\t') {
            out[at++] = '\\';
            out[at++] = 't';
        } else if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            out[at++] = '\\';
            out[at++] = 'x';
            out[at++] = hex[c >> 4];
            out[at++] = hex[c & 15];
        } else {
            out[at++] = (char)c;
        }
    }
    if (show < length && at + 4 <= size) {
        memcpy(out + at, "...", 3);
        at += 3;
    }
    out[at < size ? at : size - 1] = '\0';
}

/* "field 5 (pixel4)" or "field 5": 1-based, with the header name. */
static void field_label(const fedl_csv_reader *r, size_t i, char *out, size_t size)
{
    if (i < r->header_count) {
        char name[4 * MESSAGE_TEXT_BYTES + 8];
        csv_quote_text(r->header_text + r->header[i].start, r->header[i].length, name, sizeof name);
        snprintf(out, size, "field %zu (%s)", i + 1, name);
    } else {
        snprintf(out, size, "field %zu", i + 1);
    }
}

fedl_status csv_fail_at(const fedl_csv_reader *r, fedl_status status, uint64_t line,
                        uint64_t column, fedl_error *err, const char *what)
{
    return fedl_error_set(err, status, "%s:%llu:%llu: %s", r->name, (unsigned long long)line,
                          (unsigned long long)column, what);
}

fedl_status fedl_csv_field_error(const fedl_csv_reader *r, size_t i, fedl_status status,
                                 const char *what, fedl_error *err)
{
    char label[4 * MESSAGE_TEXT_BYTES + 48];
    char text[4 * MESSAGE_TEXT_BYTES + 8];
    const csv_field *f;
    if (r == NULL)
        return fedl_error_set(err, status, "<csv>: %s", what != NULL ? what : "error");
    if (what == NULL)
        what = fedl_strerror(status);
    if (i >= r->field_count)
        return fedl_error_set(err, status, "%s:%llu: field %zu: %s (the record has %zu fields)",
                              r->name, (unsigned long long)r->record_line, i + 1, what,
                              r->field_count);
    f = &r->fields[i];
    field_label(r, i, label, sizeof label);
    csv_quote_text((const char *)r->buf + r->begin + f->start, f->length, text, sizeof text);
    return fedl_error_set(err, status, "%s:%llu:%u: %s \"%s\": %s", r->name,
                          (unsigned long long)(r->record_line + f->line), (unsigned)f->column,
                          label, text, what);
}

/* ------------------------------------------------------------- options */

fedl_csv_options fedl_csv_defaults(void)
{
    fedl_csv_options o;
    memset(&o, 0, sizeof o);
    o.delimiter = ',';
    o.quote = '"';
    o.comment = 0;
    o.has_header = 1;
    o.allow_nonfinite = 0;
    o.buffer_bytes = FEDL_CSV_DEFAULT_BUFFER_BYTES;
    o.max_fields = FEDL_CSV_DEFAULT_MAX_FIELDS;
    o.name = NULL;
    return o;
}

static fedl_status check_options(const fedl_csv_options *o, fedl_error *err)
{
    unsigned char d = (unsigned char)o->delimiter, q = (unsigned char)o->quote,
                  c = (unsigned char)o->comment;
    if (d == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "csv options: delimiter is NUL (start from fedl_csv_defaults())");
    if (d == '\r' || d == '\n' || q == '\r' || q == '\n' || c == '\r' || c == '\n')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "csv options: delimiter, quote and comment cannot be CR or LF");
    if (d == q || d == c || (q != 0 && q == c))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "csv options: delimiter (0x%02x), quote (0x%02x) and comment "
                              "(0x%02x) must differ",
                              d, q, c);
    if (o->buffer_bytes < FEDL_CSV_MIN_BUFFER_BYTES || o->buffer_bytes > FEDL_CSV_MAX_BUFFER_BYTES)
        return fedl_error_set(
            err, FEDL_ERR_INVALID_ARG, "csv options: buffer_bytes is %zu, expected %zu to %zu",
            o->buffer_bytes, FEDL_CSV_MIN_BUFFER_BYTES, FEDL_CSV_MAX_BUFFER_BYTES);
    if (o->max_fields < 1 || o->max_fields > FEDL_CSV_MAX_BUFFER_BYTES)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "csv options: max_fields is %zu, expected 1 to %zu", o->max_fields,
                              FEDL_CSV_MAX_BUFFER_BYTES);
    return FEDL_OK;
}

/* --------------------------------------------------------------- fields */

size_t fedl_csv_field_count(const fedl_csv_reader *r)
{
    return r != NULL ? r->field_count : 0;
}

const char *fedl_csv_field(const fedl_csv_reader *r, size_t i, size_t *length)
{
    if (r == NULL || i >= r->field_count) {
        if (length != NULL)
            *length = 0;
        return NULL;
    }
    if (length != NULL)
        *length = r->fields[i].length;
    return (const char *)r->buf + r->begin + r->fields[i].start;
}

uint64_t fedl_csv_record_line(const fedl_csv_reader *r)
{
    return r != NULL && r->field_count > 0 ? r->record_line : 0;
}

uint64_t fedl_csv_field_line(const fedl_csv_reader *r, size_t i)
{
    return r != NULL && i < r->field_count ? r->record_line + r->fields[i].line : 0;
}

uint64_t fedl_csv_field_column(const fedl_csv_reader *r, size_t i)
{
    return r != NULL && i < r->field_count ? r->fields[i].column : 0;
}

uint64_t fedl_csv_record_offset(const fedl_csv_reader *r)
{
    return r != NULL && r->field_count > 0 ? r->record_offset : 0;
}

static CSV_COLD fedl_status number_error(const fedl_csv_reader *r, size_t i,
                                         csv_number_result result, int integer, fedl_error *err)
{
    switch (result) {
    case CSV_NUMBER_MISSING:
        return fedl_csv_field_error(r, i, FEDL_ERR_FORMAT,
                                    integer ? "the field is empty: expected an integer"
                                            : "the field is empty: expected a number",
                                    err);
    case CSV_NUMBER_HEX:
        return fedl_csv_field_error(r, i, FEDL_ERR_FORMAT,
                                    integer ? "expected a decimal integer (no hex)"
                                            : "expected a decimal number (no hex)",
                                    err);
    case CSV_NUMBER_NONFINITE:
        return fedl_csv_field_error(
            r, i, FEDL_ERR_FORMAT,
            "expected a finite number (inf and nan are refused unless allow_nonfinite is set)",
            err);
    case CSV_NUMBER_RANGE:
        return fedl_csv_field_error(r, i, FEDL_ERR_FORMAT,
                                    integer ? "out of the int64 range"
                                            : "out of the float32 range (beyond 3.40282347e+38)",
                                    err);
    case CSV_NUMBER_NOLOCALE:
        return fedl_csv_field_error(r, i, FEDL_ERR_UNSUPPORTED,
                                    "cannot create the \"C\" locale to convert numbers", err);
    case CSV_NUMBER_OK:
    case CSV_NUMBER_SYNTAX:
        break;
    }
    return fedl_csv_field_error(r, i, FEDL_ERR_FORMAT,
                                integer ? "expected an integer" : "expected a number", err);
}

/* 1 to 9 plain digits, what pixel and label columns hold: converted here
 * without the general parser. Returns 0 for anything else. */
static int plain_digits(const unsigned char *text, size_t length, uint32_t *value)
{
    uint32_t v = 0;
    if (length - 1 >= 9) /* length 0 wraps around */
        return 0;
    for (size_t k = 0; k < length; k++) {
        uint32_t digit = (uint32_t)text[k] - '0';
        if (digit > 9)
            return 0;
        v = v * 10 + digit;
    }
    *value = v;
    return 1;
}

static CSV_COLD fedl_status bad_field_call(const fedl_csv_reader *r, size_t i, const void *out,
                                           const char *function, fedl_error *err)
{
    if (r == NULL || out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: reader or out is NULL", function);
    return fedl_csv_field_error(r, i, FEDL_ERR_INVALID_ARG, "no such field", err);
}

/* The general conversions, out of line so the plain-digit paths of the
 * accessors below stay leaf functions. */
static CSV_COLD fedl_status general_float(const fedl_csv_reader *r, size_t i,
                                          const unsigned char *text, size_t length, float *out,
                                          int *missing, fedl_error *err)
{
    float value = 0.0f;
    csv_number_result result =
        csv_parse_float((const char *)text, length, r->opts.allow_nonfinite, &value);
    if (result == CSV_NUMBER_OK) {
        *out = value;
        return FEDL_OK;
    }
    if (result == CSV_NUMBER_MISSING && missing != NULL) {
        *missing = 1;
        *out = 0.0f;
        return FEDL_OK;
    }
    return number_error(r, i, result, 0, err);
}

static CSV_COLD fedl_status general_int(const fedl_csv_reader *r, size_t i,
                                        const unsigned char *text, size_t length, int64_t *out,
                                        int *missing, fedl_error *err)
{
    int64_t value = 0;
    csv_number_result result = csv_parse_int64((const char *)text, length, &value);
    if (result == CSV_NUMBER_OK) {
        *out = value;
        return FEDL_OK;
    }
    if (result == CSV_NUMBER_MISSING && missing != NULL) {
        *missing = 1;
        *out = 0;
        return FEDL_OK;
    }
    return number_error(r, i, result, 1, err);
}

fedl_status fedl_csv_field_float(const fedl_csv_reader *r, size_t i, float *out, int *missing,
                                 fedl_error *err)
{
    const unsigned char *text;
    size_t length;
    uint32_t digits;
    if (missing != NULL)
        *missing = 0;
    if (r == NULL || out == NULL || i >= r->field_count)
        return bad_field_call(r, i, out, "fedl_csv_field_float", err);
    text = r->buf + r->begin + r->fields[i].start;
    length = r->fields[i].length;
    if (plain_digits(text, length, &digits) && digits <= (uint32_t)1 << 24) {
        *out = (float)digits; /* exact */
        return FEDL_OK;
    }
    return general_float(r, i, text, length, out, missing, err);
}

fedl_status fedl_csv_field_int(const fedl_csv_reader *r, size_t i, int64_t *out, int *missing,
                               fedl_error *err)
{
    const unsigned char *text;
    size_t length;
    uint32_t digits;
    if (missing != NULL)
        *missing = 0;
    if (r == NULL || out == NULL || i >= r->field_count)
        return bad_field_call(r, i, out, "fedl_csv_field_int", err);
    text = r->buf + r->begin + r->fields[i].start;
    length = r->fields[i].length;
    if (plain_digits(text, length, &digits)) {
        *out = digits;
        return FEDL_OK;
    }
    return general_int(r, i, text, length, out, missing, err);
}

/* --------------------------------------------------------------- header */

size_t fedl_csv_header_count(const fedl_csv_reader *r)
{
    return r != NULL ? r->header_count : 0;
}

const char *fedl_csv_header_name(const fedl_csv_reader *r, size_t i, size_t *length)
{
    if (r == NULL || i >= r->header_count) {
        if (length != NULL)
            *length = 0;
        return NULL;
    }
    if (length != NULL)
        *length = r->header[i].length;
    return r->header_text + r->header[i].start;
}

fedl_status fedl_csv_find_column(const fedl_csv_reader *r, const char *name, size_t *index,
                                 fedl_error *err)
{
    size_t length;
    if (r == NULL || name == NULL || index == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_csv_find_column: reader, name or index is NULL");
    length = strlen(name);
    for (size_t i = 0; i < r->header_count; i++) {
        if (r->header[i].length == length &&
            memcmp(r->header_text + r->header[i].start, name, length) == 0) {
            *index = i;
            return FEDL_OK;
        }
    }
    if (r->header_count == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "%s: no column named \"%s\": the input has no header", r->name, name);
    return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: no column named \"%s\" in the header",
                          r->name, name);
}

/* Copy the current record (the header) out of the buffer. */
static fedl_status keep_header(fedl_csv_reader *r, fedl_error *err)
{
    size_t text = 0, at = 0;
    for (size_t i = 0; i < r->field_count; i++)
        text += (size_t)r->fields[i].length + 1;
    r->header = fedl_mem_alloc(r->alloc, r->field_count * sizeof *r->header);
    r->header_text = fedl_mem_alloc(r->alloc, text);
    if (r->header == NULL || r->header_text == NULL) {
        fedl_mem_free(r->alloc, r->header,
                      r->header != NULL ? r->field_count * sizeof *r->header : 0);
        fedl_mem_free(r->alloc, r->header_text, r->header_text != NULL ? text : 0);
        r->header = NULL;
        r->header_text = NULL;
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes for the header",
                              r->name, text + r->field_count * sizeof *r->header);
    }
    for (size_t i = 0; i < r->field_count; i++) {
        const csv_field *f = &r->fields[i];
        memcpy(r->header_text + at, r->buf + r->begin + f->start, f->length + 1);
        r->header[i] = *f;
        r->header[i].start = (uint32_t)at;
        at += (size_t)f->length + 1;
    }
    r->header_count = r->field_count;
    r->header_text_size = text;
    return FEDL_OK;
}

/* ------------------------------------------------------- open and close */

static fedl_status reader_create(const char *name, const fedl_csv_options *opts,
                                 fedl_allocator *alloc, fedl_csv_reader **out, fedl_error *err)
{
    fedl_csv_options o = opts != NULL ? *opts : fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_status status = check_options(&o, err);
    size_t name_length = strlen(name);
    if (status != FEDL_OK)
        return status;
    r = fedl_mem_alloc(alloc, sizeof *r);
    if (r == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a CSV reader", name);
    r->alloc = alloc;
    r->src.fd = -1;
    r->src.alloc = alloc;
    r->opts = o;
    r->opts.name = NULL;
    *out = r;
    r->name = fedl_mem_alloc(alloc, name_length + 1);
    if (r->name == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a CSV reader", name);
    memcpy(r->name, name, name_length + 1);
    r->name_size = name_length + 1;
    r->src.name = r->name;

    r->delimiter = (unsigned char)o.delimiter;
    r->quote = (unsigned char)o.quote;
    r->comment = (unsigned char)o.comment;
    r->quoting = o.quote != 0;
    r->commenting = o.comment != 0;
    r->unquoted_stop[r->delimiter] = 1;
    r->unquoted_stop['\r'] = r->unquoted_stop['\n'] = 1;
    r->quoted_stop['\r'] = r->quoted_stop['\n'] = 1;
    if (r->quoting)
        r->unquoted_stop[r->quote] = r->quoted_stop[r->quote] = 1;

    r->capacity = o.buffer_bytes;
    r->buf = fedl_mem_realloc(alloc, NULL, 0, r->capacity + 1);
    if (r->buf == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a %zu-byte CSV buffer",
                              name, r->capacity);
    r->field_capacity = o.max_fields < FIELDS_INITIAL ? o.max_fields : FIELDS_INITIAL;
    r->fields = fedl_mem_alloc(alloc, r->field_capacity * sizeof *r->fields);
    if (r->fields == NULL) {
        r->field_capacity = 0;
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the CSV field table", name);
    }
    r->bom_check = 1;
    r->line = 1;
    r->state = READER_READY;
    r->data_line = 1;
    return FEDL_OK;
}

/* After the source is set up: start it and read the header. */
static fedl_status reader_start(fedl_csv_reader *r, fedl_error *err)
{
    fedl_status status = csv_source_start(&r->src, err);
    int have = 0;
    if (status != FEDL_OK)
        return status;
    if (!r->opts.has_header)
        return FEDL_OK;
    status = csv_read_record(r, &have, err);
    if (status != FEDL_OK)
        return status;
    if (!have)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s:%llu:1: the input is empty, expected a header line (set "
                              "has_header = 0 for data without one)",
                              r->name, (unsigned long long)r->line);
    status = keep_header(r, err);
    if (status != FEDL_OK)
        return status;
    r->expected_fields = r->field_count;
    r->expected_line = r->record_line;
    r->data_offset = r->record_offset + r->record_bytes;
    r->data_line = r->line;
    r->data_skip_lf = r->skip_lf;
    r->field_count = 0; /* the header is no record */
    return FEDL_OK;
}

static fedl_status finish_open(fedl_csv_reader *r, fedl_status status, fedl_csv_reader **out)
{
    if (status == FEDL_OK && r != NULL)
        return FEDL_OK;
    fedl_csv_close(r);
    *out = NULL;
    return status;
}

fedl_status fedl_csv_open(const char *path, const fedl_csv_options *opts, fedl_allocator *alloc,
                          fedl_csv_reader **out, fedl_error *err)
{
    fedl_csv_reader *r = NULL;
    fedl_status status;
    if (out == NULL || path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_csv_open: path or out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    status = reader_create(path, opts, alloc, out, err);
    r = *out;
    if (status == FEDL_OK) {
        r->src.kind = CSV_SOURCE_FILE;
        do {
            r->src.fd = open(path, O_RDONLY | O_CLOEXEC);
        } while (r->src.fd < 0 && errno == EINTR);
        if (r->src.fd < 0)
            status = fedl_error_set(err, FEDL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (status == FEDL_OK)
        status = reader_start(r, err);
    return finish_open(r, status, out);
}

fedl_status fedl_csv_open_memory(const void *bytes, size_t length, const fedl_csv_options *opts,
                                 fedl_allocator *alloc, fedl_csv_reader **out, fedl_error *err)
{
    fedl_csv_reader *r = NULL;
    fedl_status status;
    const char *name = opts != NULL && opts->name != NULL ? opts->name : "<memory>";
    if (out == NULL || (bytes == NULL && length > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_csv_open_memory: bytes or out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    status = reader_create(name, opts, alloc, out, err);
    r = *out;
    if (status == FEDL_OK) {
        r->src.kind = CSV_SOURCE_MEMORY;
        r->src.mem = bytes;
        r->src.mem_length = length;
        status = reader_start(r, err);
    }
    return finish_open(r, status, out);
}

fedl_status fedl_csv_open_callback(fedl_csv_read_fn read_fn, void *ud, const fedl_csv_options *opts,
                                   fedl_allocator *alloc, fedl_csv_reader **out, fedl_error *err)
{
    fedl_csv_reader *r = NULL;
    fedl_status status;
    const char *name = opts != NULL && opts->name != NULL ? opts->name : "<stream>";
    if (out == NULL || read_fn == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_csv_open_callback: read or out is NULL");
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    status = reader_create(name, opts, alloc, out, err);
    r = *out;
    if (status == FEDL_OK) {
        r->src.kind = CSV_SOURCE_CALLBACK;
        r->src.read = read_fn;
        r->src.read_ud = ud;
        status = reader_start(r, err);
    }
    return finish_open(r, status, out);
}

void fedl_csv_close(fedl_csv_reader *r)
{
    fedl_allocator *alloc;
    if (r == NULL)
        return;
    alloc = r->alloc;
    csv_source_close(&r->src);
    fedl_mem_free(alloc, r->buf, r->buf != NULL ? r->capacity + 1 : 0);
    fedl_mem_free(alloc, r->fields, r->field_capacity * sizeof *r->fields);
    fedl_mem_free(alloc, r->header, r->header_count * sizeof *r->header);
    fedl_mem_free(alloc, r->header_text, r->header_text_size);
    fedl_mem_free(alloc, r->name, r->name_size);
    fedl_mem_free(alloc, r, sizeof *r);
}

/* ------------------------------------------------------------- seeking */

fedl_status fedl_csv_seek(fedl_csv_reader *r, uint64_t byte_offset, uint64_t line, fedl_error *err)
{
    fedl_status status;
    if (r == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_csv_seek: reader is NULL");
    if (line == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: line numbers start at 1", r->name);
    if (r->header_count > 0 && byte_offset < r->data_offset)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "%s: byte %llu is inside the header (data starts at byte %llu)",
                              r->name, (unsigned long long)byte_offset,
                              (unsigned long long)r->data_offset);
    status = csv_source_seek(&r->src, byte_offset, err);
    if (status != FEDL_OK)
        return status;
    r->begin = r->end = 0;
    r->buf_offset = byte_offset;
    r->eof = 0;
    r->skip_lf = 0;
    r->bom_check = byte_offset == 0;
    r->line = line;
    r->state = READER_READY;
    r->field_count = 0;
    r->record_bytes = 0;
    return FEDL_OK;
}

fedl_status fedl_csv_rewind(fedl_csv_reader *r, fedl_error *err)
{
    fedl_status status;
    if (r == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_csv_rewind: reader is NULL");
    status = fedl_csv_seek(r, r->data_offset, r->data_line, err);
    if (status == FEDL_OK)
        r->skip_lf = r->data_skip_lf;
    return status;
}
