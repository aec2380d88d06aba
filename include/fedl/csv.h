/*
 * fedl/csv.h - a streaming CSV reader (RFC 4180) in bounded memory, with
 * exact, locale-independent number conversion.
 *
 * The reader holds one buffer of options.buffer_bytes (64 KiB by default)
 * and reads the input through it, so memory does not depend on the file's
 * size. A *record* (one row, which may span several lines when a quoted
 * field holds line breaks) must fit in the buffer whole: a longer record is
 * FEDL_ERR_FORMAT naming its line, never a reallocation. The field table
 * (16 bytes a field) grows with the widest record seen, up to
 * options.max_fields, and then stays put: reading records in steady state
 * allocates nothing. The whole reader takes
 *
 *     buffer_bytes + 16 x max(64, fields of the widest record) + 1.6 KiB
 *     (+ 16 KiB of input, 7 KiB of state and zlib's 32 KiB window for gzip)
 *
 * (66.5 KiB by default for files of up to 64 columns), and since a record
 * of L bytes has at most L fields, never more than 17 x buffer_bytes.
 *
 * Input is a path, a memory block or a read callback (pipes, stdin). All
 * three detect gzip by its magic bytes (0x1f 0x8b), not by the name, and
 * inflate it with zlib through the reader's allocator (members written back
 * to back are one input). Being a stream, gzip is checked as it goes: the
 * records before a corrupt spot, and all of them when only the CRC at the
 * end is wrong, are delivered before next_record fails, so an input is
 * known good only once next_record has reported its end. One optional
 * UTF-8 byte order mark at the very start is skipped.
 *
 * Syntax (RFC 4180 plus what real files do):
 *   - records end at LF, CR LF or a lone CR; the last one may have none;
 *   - a field is quoted when its first byte is the quote character; inside,
 *     a doubled quote stands for one quote, and delimiters and line breaks
 *     are data. A quote inside an unquoted field ("stray quote"), anything
 *     but a delimiter or line break after a closing quote, and a quote still
 *     open at the end of the input are errors;
 *   - blank lines (nothing between two line breaks) are skipped, as pandas
 *     does; in a one-column file an empty value must be written "";
 *   - with options.comment set, a line whose first byte is that character
 *     is skipped (only at the start of a record, never inside a field);
 *   - every record must have as many fields as the header, or, without a
 *     header, as the first record ("ragged" rows are errors);
 *   - spaces are part of the field text (RFC 4180); only the number
 *     conversions ignore spaces and tabs around a number, as pandas does.
 *     So `a, "b"` is an unquoted field ` "b"` with a stray quote: write
 *     `a,"b"`.
 *
 * Positions: lines are 1-based and count physical lines (a record with an
 * embedded line break covers two). Columns are 1-based *byte* offsets in
 * the line (a UTF-8 character of 2-4 bytes counts as 2-4 columns; a BOM is
 * not counted). Byte offsets are 0-based in the (decompressed) input,
 * counting the BOM. Field numbers in messages are 1-based; indices in the
 * API are 0-based.
 *
 * Every error names the input, the line and column and, for a field, its
 * number, its header name when there is one and its text cut to 40 bytes:
 *
 *     train.csv:17:23: field 5 (pixel4) "12.3.4": expected a number
 *
 * An error from fedl_csv_next_record is final: later calls return
 * FEDL_ERR_STATE until fedl_csv_seek or fedl_csv_rewind moves the reader.
 * Number conversion errors leave the reader as it was. A reader is used by
 * one thread at a time; separate readers are independent.
 *
 * Ownership: the reader owns its buffer, field table, header copy and zlib
 * state, all from the allocator given at open, all released by
 * fedl_csv_close. Field text belongs to the reader and stays valid until
 * the next call that moves it (next_record, seek, rewind, close).
 */
#ifndef FEDL_CSV_H
#define FEDL_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/data.h"
#include "fedl/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FEDL_CSV_DEFAULT_BUFFER_BYTES ((size_t)64 << 10)
#define FEDL_CSV_MIN_BUFFER_BYTES ((size_t)4)
#define FEDL_CSV_MAX_BUFFER_BYTES ((size_t)1 << 30)
#define FEDL_CSV_DEFAULT_MAX_FIELDS ((size_t)65536)

typedef struct fedl_csv_reader fedl_csv_reader;

/* Start from fedl_csv_defaults() and change what differs. delimiter, quote
 * and comment must be distinct and none may be CR or LF. */
typedef struct fedl_csv_options {
    char delimiter;      /* ',' (default), ';', '\t', '|' or any other byte but NUL */
    char quote;          /* '"' (default); 0 = no quoting: quotes are data */
    char comment;        /* 0 (default) = none; e.g. '#' */
    int has_header;      /* 1 (default): the first record names the columns */
    int allow_nonfinite; /* 0 (default): "inf", "nan" and overflow are errors */
    size_t buffer_bytes; /* bytes; 64 KiB (default), FEDL_CSV_MIN.. _MAX_BUFFER_BYTES;
                            the longest record must fit */
    size_t max_fields;   /* fields per record; 65536 (default), >= 1 */
    const char *name;    /* memory and callback inputs: the name in messages
                            (NULL = "<memory>" / "<stream>"); a path names itself */
} fedl_csv_options;

fedl_csv_options fedl_csv_defaults(void);

/* Read callback for fedl_csv_open_callback: copy up to capacity bytes into
 * buffer and set *got; *got == 0 means the end of the input. Short reads are
 * fine. On failure return a status (with err filled in, if it is not NULL). */
typedef fedl_status (*fedl_csv_read_fn)(void *ud, void *buffer, size_t capacity, size_t *got,
                                        fedl_error *err);

/* Open a file (plain or gzip). With has_header, the header is read here, so
 * a missing or malformed header fails the open. opts NULL = the defaults;
 * alloc NULL = fedl_allocator_default(). On failure *out is NULL and
 * nothing stays allocated. */
fedl_status fedl_csv_open(const char *path, const fedl_csv_options *opts, fedl_allocator *alloc,
                          fedl_csv_reader **out, fedl_error *err);
/* The same over length bytes in memory; bytes must outlive the reader. */
fedl_status fedl_csv_open_memory(const void *bytes, size_t length, const fedl_csv_options *opts,
                                 fedl_allocator *alloc, fedl_csv_reader **out, fedl_error *err);
/* The same over a read callback; ud is passed to read as is. */
fedl_status fedl_csv_open_callback(fedl_csv_read_fn read, void *ud, const fedl_csv_options *opts,
                                   fedl_allocator *alloc, fedl_csv_reader **out, fedl_error *err);
/* Close the input and free everything; NULL is a no-op. */
void fedl_csv_close(fedl_csv_reader *reader);

/* Move to the next record: FEDL_OK with *has_record = 1, or FEDL_OK with
 * *has_record = 0 at the end of the input (and on every call after it).
 *
 *     int more;
 *     while ((status = fedl_csv_next_record(r, &more, &err)) == FEDL_OK && more) {
 *         ...
 *     }
 */
fedl_status fedl_csv_next_record(fedl_csv_reader *reader, int *has_record, fedl_error *err);

/* The current record: 0 fields before the first record, at the end and
 * after an error. */
size_t fedl_csv_field_count(const fedl_csv_reader *reader);
/* Text of field i with the quotes undone (doubled quotes made single), its
 * length in *length (may be NULL). The text is also NUL-terminated, but may
 * itself hold NUL bytes. NULL (and *length 0) when i is out of range. */
const char *fedl_csv_field(const fedl_csv_reader *reader, size_t i, size_t *length);

/* Field i as a float32, correctly rounded (round to nearest even, as strtof
 * in the "C" locale, never through double), whatever the process locale.
 * Accepted: spaces/tabs, then [+-] digits [. digits] [(e|E) [+-] digits]
 * (".5" and "5." too), then spaces/tabs. "-0" keeps its sign; results below
 * the smallest float round to a denormal or to zero. Refused: hex ("0x10"),
 * "1e", "1.2.3", anything else; "inf", "infinity" and "nan" (any case, with
 * a sign) and values beyond FLT_MAX unless options.allow_nonfinite is set,
 * when they give +-inf and nan.
 *
 * An empty field (or one of spaces only) is *missing*: with missing not
 * NULL it gives FEDL_OK, *missing = 1 and *out = 0; with missing NULL it is
 * FEDL_ERR_FORMAT. For a present value *missing is 0. Errors are
 * FEDL_ERR_FORMAT (FEDL_ERR_INVALID_ARG for i out of range); *out is
 * untouched on error. */
fedl_status fedl_csv_field_float(const fedl_csv_reader *reader, size_t i, float *out, int *missing,
                                 fedl_error *err);
/* Field i as an integer: spaces/tabs, [+-] digits, spaces/tabs, within
 * int64. "1.0" and "1e3" are refused. missing as for fedl_csv_field_float. */
fedl_status fedl_csv_field_int(const fedl_csv_reader *reader, size_t i, int64_t *out, int *missing,
                               fedl_error *err);

/* Line where the current record starts (0 when there is none). */
uint64_t fedl_csv_record_line(const fedl_csv_reader *reader);
/* Line and column where field i starts (at its opening quote when quoted);
 * 0 when i is out of range. */
uint64_t fedl_csv_field_line(const fedl_csv_reader *reader, size_t i);
uint64_t fedl_csv_field_column(const fedl_csv_reader *reader, size_t i);
/* Byte offset of the current record's first byte, for fedl_csv_seek. */
uint64_t fedl_csv_record_offset(const fedl_csv_reader *reader);

/* Build the message of a caller's check on field i in the reader's format,
 * "name:line:column: field N (header) "text": what", and return status. */
fedl_status fedl_csv_field_error(const fedl_csv_reader *reader, size_t i, fedl_status status,
                                 const char *what, fedl_error *err);

/* The header (has_header): number of names (0 without a header) and name i
 * (NUL-terminated, valid until close; NULL when out of range). */
size_t fedl_csv_header_count(const fedl_csv_reader *reader);
const char *fedl_csv_header_name(const fedl_csv_reader *reader, size_t i, size_t *length);
/* Index of the first column named name; FEDL_ERR_INVALID_ARG when there is
 * none (or no header). */
fedl_status fedl_csv_find_column(const fedl_csv_reader *reader, const char *name, size_t *index,
                                 fedl_error *err);

/* Continue reading at byte_offset, a value fedl_csv_record_offset gave,
 * whose record starts on line `line` (fedl_csv_record_line), so a row-offset
 * index can visit records in any order. Only plain (uncompressed) files and
 * memory inputs can seek: gzip and callback inputs give
 * FEDL_ERR_UNSUPPORTED. An offset inside the header is FEDL_ERR_INVALID_ARG;
 * any other offset is trusted (one in the middle of a record parses from
 * there). The field count fixed by the header or first record stays. Seeking
 * also clears a failed reader. */
fedl_status fedl_csv_seek(fedl_csv_reader *reader, uint64_t byte_offset, uint64_t line,
                          fedl_error *err);
/* Seek to the first record after the header (the start without one). */
fedl_status fedl_csv_rewind(fedl_csv_reader *reader, fedl_error *err);

/* ------------------------------------------------------------ data sets */

/*
 * A CSV file as a training data set, read on demand: one streaming pass at
 * open builds a row-offset index (16 bytes a row: byte offset and line),
 * the label map and the column statistics, and computes the file's
 * SHA-256; after that a sample is read by seeking to its row and parsing it,
 * so memory is the index plus one record buffer, whatever the file's size,
 * and any order of samples (a shuffle per epoch) costs a seek per row.
 * The file must be plain (gzip cannot seek) and must not change while the
 * data set is open.
 *
 * Labels are class ids: when every label is an integer in [0, 4095] the
 * class id is that integer (so a Fashion-MNIST CSV has the ids of its IDX
 * files), otherwise the distinct label texts sorted bytewise are classes
 * 0, 1, ... (at most 4096 of them, each at most 255 bytes).
 */

typedef enum fedl_csv_missing {
    FEDL_CSV_MISSING_ERROR, /* an empty feature or label is an error naming its line */
    FEDL_CSV_MISSING_SKIP,  /* a row with an empty feature or label is left out, counted */
    FEDL_CSV_MISSING_FILL,  /* an empty feature is fill_value; an empty label is an error */
    FEDL_CSV_MISSING_MEAN   /* an empty feature is its column's mean (training file) */
} fedl_csv_missing;

typedef enum fedl_csv_scaling {
    FEDL_CSV_SCALE_NONE,   /* features as written */
    FEDL_CSV_SCALE_DIVIDE, /* x / divisor (e.g. 255 for 8-bit pixels) */
    FEDL_CSV_SCALE_MINMAX, /* (x - min) / (max - min) per column, to [0, 1] */
    FEDL_CSV_SCALE_ZSCORE  /* (x - mean) / std per column (population std) */
} fedl_csv_scaling;

/* Which columns are what; start from fedl_csv_schema_defaults(). Column
 * indexes are 0-based (as pandas' iloc). */
typedef struct fedl_csv_schema {
    const char *label;    /* a column name or index; NULL = the column named "label",
                             else column 0 */
    const char *features; /* NULL or "all" = every column but the label; else a comma
                             list of names, indexes and index ranges ("1-784") */
    fedl_shape shape;     /* sample shape; {0, 0, 0} = (features, 1, 1) */
    fedl_csv_missing missing;
    float fill_value;         /* FEDL_CSV_MISSING_FILL */
    fedl_csv_scaling scaling; /* statistics come from the training file */
    float divisor;            /* FEDL_CSV_SCALE_DIVIDE, > 0 */
    int regression;           /* 1: the label column is a numeric target (the data set's
                                 targets = 1, classes = 0), read as written */
} fedl_csv_schema;

fedl_csv_schema fedl_csv_schema_defaults(void);

/* What a training file fixes for every other file of the same data (test
 * files, files evaluated later): the label map, the per-feature scaling and
 * fill values. Owned by the data set it came from. */
typedef struct fedl_csv_fit fedl_csv_fit;

/* Figures of the pass that opened a CSV data set. */
typedef struct fedl_csv_info {
    uint64_t rows;         /* data rows read */
    uint64_t skipped_rows; /* left out for a missing value (FEDL_CSV_MISSING_SKIP) */
    uint64_t filled;       /* missing features filled */
    size_t features;       /* feature columns */
    size_t label_column;   /* its index */
    int numeric_labels;    /* 1: class id = the integer label */
    size_t longest_record; /* bytes */
    uint8_t file_sha256[FEDL_SHA256_BYTES];
} fedl_csv_info;

/* Open path as a data set (out->source reads it). fit NULL: this is the
 * training file, which fixes the label map and scaling; else those of fit
 * (from fedl_csv_dataset_fit of the training set, or decoded from a model
 * file) are used, and a label fit does not know is an error naming its
 * line. With a fit, a schema that names neither label nor features takes
 * the training file's columns (by index) and shape. opts NULL = the defaults. On
 * failure *out is zeroed and nothing stays allocated; errors name the
 * file, line and column. */
fedl_status fedl_csv_dataset_open(const char *path, const fedl_csv_options *opts,
                                  const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err);
/* Several files as one data set, in the order given: every file must have
 * the first one's columns (the same header names, or the same count
 * without a header); the index tells rows apart by file, the statistics
 * and labels are over all of them, the identity hashes every file's
 * SHA-256 in order. At most 1024 files; each file's reader opens when a
 * row of it is first read. fedl_csv_dataset_open of a directory opens its
 * *.csv files (not hidden ones, not .csv.gz) sorted bytewise by name. */
fedl_status fedl_csv_dataset_open_files(const char *const *paths, size_t count,
                                        const fedl_csv_options *opts, const fedl_csv_schema *schema,
                                        const fedl_csv_fit *fit, fedl_allocator *alloc,
                                        fedl_dataset *out, fedl_error *err);
/* A CSV file (plain or gzip), or a directory of them, as a stream: the
 * opening pass counts the rows and fits labels and scaling but keeps no
 * index; each epoch then reads the files front to back through a shuffle
 * buffer of buffer_rows samples, emitting a uniformly chosen buffered row
 * and putting the next row of the files in its place. The order is a
 * function of (seed, epoch) and the files, so a run resumed at (epoch,
 * position) reads the epoch again up to there and continues with the same
 * samples. Memory is the buffer (buffer_rows x (features + 1) x 4 bytes)
 * and one reader, whatever the files' size. With buffer_rows 1 the order is
 * the files' order (e.g. for a test file). The files must be readable
 * again each epoch: a pipe cannot be (its one pass is spent counting).
 * The data set serves one reader at a time: evaluating it restarts it. */
fedl_status fedl_csv_stream_open(const char *path, const fedl_csv_options *opts,
                                 const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                 size_t buffer_rows, uint64_t seed, fedl_allocator *alloc,
                                 fedl_dataset *out, fedl_error *err);

/* The opening pass's result, to keep and reuse (fedl/ckpt.h's index cache
 * writes it beside the data): a row is where its record starts. */
typedef struct fedl_csv_row {
    uint64_t offset; /* byte offset of the record in its file */
    uint32_t line;   /* its first line */
    uint32_t file;   /* which file of the data set */
} fedl_csv_row;

typedef struct fedl_csv_index {
    const fedl_csv_row *rows; /* (count) */
    size_t count;
    const fedl_csv_fit *fit; /* columns, labels, scaling */
    fedl_csv_info info;
} fedl_csv_index;

/* The index of a CSV data set (pointers into it, valid while it lives);
 * FEDL_ERR_INVALID_ARG for any other data set. */
fedl_status fedl_csv_dataset_index(const fedl_dataset *ds, fedl_csv_index *out, fedl_error *err);
/* Open without the pass, from an index made by a pass over the same files
 * with the same options and schema (the caller checks that, e.g. by size,
 * modification time and hash: a stale index reads wrong rows). fit is the
 * training set's fit for a test set, as in fedl_csv_dataset_open, else
 * NULL (index->fit is then the fit). Every row must lie in its file. */
fedl_status fedl_csv_dataset_open_indexed(const char *const *paths, size_t count,
                                          const fedl_csv_options *opts,
                                          const fedl_csv_schema *schema,
                                          const fedl_csv_index *index, fedl_allocator *alloc,
                                          fedl_dataset *out, fedl_error *err);
/* The fit of a data set opened by fedl_csv_dataset_open (NULL for any other
 * data set); valid until it is freed. */
const fedl_csv_fit *fedl_csv_dataset_fit(const fedl_dataset *ds);
/* The figures of its opening pass (zeroed for any other data set). */
fedl_csv_info fedl_csv_dataset_info(const fedl_dataset *ds);
/* A fit as bytes (FORMAT.md, "CSV fit"), to store with a model (a model
 * file's "data" section), and back. Decoding checks every count and offset
 * and names what is wrong; a decoded fit is freed with fedl_csv_fit_free.
 * *bytes is freed with fedl_mem_free(alloc, *bytes, *length). */
fedl_status fedl_csv_fit_encode(const fedl_csv_fit *fit, fedl_allocator *alloc, uint8_t **bytes,
                                size_t *length, fedl_error *err);
fedl_status fedl_csv_fit_decode(const uint8_t *bytes, size_t length, const char *name,
                                fedl_allocator *alloc, fedl_csv_fit **out, fedl_error *err);
void fedl_csv_fit_free(fedl_csv_fit *fit);
/* The sample shape the training file was read with. */
fedl_shape fedl_csv_fit_shape(const fedl_csv_fit *fit);
/* Name of class id (the label text, or the integer), NULL when out of range. */
const char *fedl_csv_class_name(const fedl_csv_fit *fit, int class_id, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
