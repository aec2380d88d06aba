/*
 * csv_internal.h - what the CSV reader's files share: the byte source
 * (csv_source.c: file, memory or callback, plain or gzip), the number
 * conversions (csv_number.c), and the reader itself (csv.c for the API,
 * csv_scan.c for reading records). Not part of the public API.
 */
#ifndef FEDL_CSV_INTERNAL_H
#define FEDL_CSV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "fedl/csv.h"

/* ------------------------------------------------------------ byte source */

typedef enum csv_source_kind {
    CSV_SOURCE_FILE,
    CSV_SOURCE_MEMORY,
    CSV_SOURCE_CALLBACK
} csv_source_kind;

#define CSV_GZIP_INPUT_BYTES 16384 /* compressed bytes read per refill */

/* Bytes of the input, inflated when it is gzip. */
typedef struct csv_source {
    fedl_allocator *alloc;
    const char *name; /* for messages; owned by the reader */
    csv_source_kind kind;
    int fd;                   /* CSV_SOURCE_FILE; -1 when closed */
    const unsigned char *mem; /* CSV_SOURCE_MEMORY */
    size_t mem_length;        /* bytes */
    size_t mem_position;      /* next byte of mem */
    fedl_csv_read_fn read;    /* CSV_SOURCE_CALLBACK */
    void *read_ud;
    unsigned char head[2]; /* first raw bytes, read to look for the gzip magic */
    size_t head_length;    /* bytes in head */
    size_t head_position;  /* plain input: head bytes already handed out */
    int raw_eof;           /* the raw input is exhausted */
    uint64_t raw_consumed; /* raw bytes read so far (for gzip messages) */
    int gzip;              /* the input starts with 0x1f 0x8b */
    int zlib_ready;        /* inflateInit2 succeeded: inflateEnd is due */
    int member_done;       /* inflate finished a gzip member */
    int stream_end;        /* the gzip data ended cleanly */
    unsigned char *zin;    /* (CSV_GZIP_INPUT_BYTES) compressed input, gzip only */
    z_stream zs;
    gz_header member_header; /* a later member's header: zlib sets done to 1 when it is whole, -1
                                when it is no gzip header */
    int next_member;         /* inflating a member after the first */
    fedl_error pending;      /* an inflate error met in a read that also delivered bytes:
                                the next read reports it (status FEDL_OK = none) */
} csv_source;

/* Set up s (kind, fd/mem/read fields filled in by the caller beforehand),
 * read the first bytes and start zlib when they are the gzip magic. */
fedl_status csv_source_start(csv_source *s, fedl_error *err);
/* Up to n bytes into dst; *got == 0 only at the end of the input. */
fedl_status csv_source_read(csv_source *s, unsigned char *dst, size_t n, size_t *got,
                            fedl_error *err);
/* Continue at byte offset (plain files and memory only). */
fedl_status csv_source_seek(csv_source *s, uint64_t offset, fedl_error *err);
/* Close the file descriptor and release zlib and its input buffer. */
void csv_source_close(csv_source *s);

/* ---------------------------------------------------------------- numbers */

typedef enum csv_number_result {
    CSV_NUMBER_OK,
    CSV_NUMBER_MISSING,   /* empty or only spaces/tabs */
    CSV_NUMBER_SYNTAX,    /* not a decimal number */
    CSV_NUMBER_HEX,       /* 0x... */
    CSV_NUMBER_NONFINITE, /* inf/nan while they are not allowed */
    CSV_NUMBER_RANGE,     /* beyond the type's range */
    CSV_NUMBER_NOLOCALE   /* the "C" locale object could not be created */
} csv_number_result;

/* text[length] must be a NUL byte (the reader guarantees it for fields);
 * text may hold NUL bytes before it, which make it no number. */
csv_number_result csv_parse_float(const char *text, size_t length, int allow_nonfinite, float *out);
csv_number_result csv_parse_int64(const char *text, size_t length, int64_t *out);

/* ---------------------------------------------------------------- reader */

#if defined(__GNUC__)
#define CSV_COLD __attribute__((noinline, cold)) /* keeps error paths out of the fast ones */
#else
#define CSV_COLD
#endif

#define MESSAGE_TEXT_BYTES 40 /* field text shown in messages */

typedef struct csv_field {
    uint32_t start;  /* text start, relative to the record's first byte */
    uint32_t length; /* bytes of text (raw, doubled quotes included, until finish_record) */
    uint32_t line;   /* lines after the record's first line */
    uint32_t column; /* 1-based byte column of the field's first byte (its opening quote) */
} csv_field;

typedef enum scan_state {
    SCAN_FIELD_START,
    SCAN_UNQUOTED,
    SCAN_QUOTED,
    SCAN_QUOTE_SEEN
} scan_state;

typedef enum reader_state { READER_READY, READER_END, READER_FAILED } reader_state;

struct fedl_csv_reader {
    fedl_allocator *alloc;
    fedl_csv_options opts;
    unsigned char delimiter;
    unsigned char quote;
    unsigned char comment;
    int quoting;                      /* opts.quote != 0 */
    int commenting;                   /* opts.comment != 0 */
    unsigned char unquoted_stop[256]; /* 1 for delimiter, quote, CR, LF */
    unsigned char quoted_stop[256];   /* 1 for quote, CR, LF */
    char *name;
    size_t name_size; /* bytes, NUL included */
    csv_source src;

    unsigned char *buf;  /* (capacity + 1): the data and a sentinel byte */
    size_t capacity;     /* bytes: opts.buffer_bytes */
    size_t begin;        /* first byte of the current (or next) record */
    size_t end;          /* one past the last byte read */
    uint64_t buf_offset; /* input offset of buf[0] */
    int eof;             /* the source has nothing more */
    int skip_lf;         /* the last line ended in CR: an LF next belongs to it */
    int bom_check;       /* the bytes at begin are the input's first */
    reader_state state;
    uint64_t line; /* line of the byte at begin */

    /* Scanner state kept across refills (offsets relative to begin). */
    scan_state scan;
    size_t scan_position;
    uint32_t line_delta; /* line breaks inside quotes so far */
    size_t line_start;   /* offset of the first byte of the current line */
    int doubled;         /* some quoted field holds a doubled quote */

    /* The current record. */
    csv_field *fields;     /* (field_capacity) */
    size_t field_count;    /* complete fields */
    size_t field_capacity; /* entries allocated, <= opts.max_fields */
    size_t record_bytes;   /* raw bytes with the terminator; released by the next call */
    size_t record_stop;    /* offset of the terminator (record_bytes when there is none) */
    uint64_t record_line;
    uint64_t record_offset;
    size_t expected_fields; /* from the header or first record; 0 = not yet known */
    uint64_t expected_line; /* where that count was seen */

    /* The header, copied: names (header_count) point into header_text. */
    csv_field *header;
    size_t header_count;
    char *header_text;
    size_t header_text_size; /* bytes */

    /* Where the data after the header starts, for rewind. */
    uint64_t data_offset;
    uint64_t data_line;
    int data_skip_lf;
};

/* Field text for a message: at most MESSAGE_TEXT_BYTES bytes, control bytes
 * escaped, never cut inside a UTF-8 sequence, "..." when cut (csv.c). */
void csv_quote_text(const char *text, size_t length, char *out, size_t size);
/* "name:line:column: what" into err; returns status (csv.c). */
fedl_status csv_fail_at(const fedl_csv_reader *r, fedl_status status, uint64_t line,
                        uint64_t column, fedl_error *err, const char *what);
/* Read the next record into the field table; *have_record tells whether
 * there was one (csv_scan.c). */
fedl_status csv_read_record(fedl_csv_reader *r, int *have_record, fedl_error *err);

#endif
