/*
 * csv_dataset.c - a CSV file as a data set read on demand (fedl/csv.h):
 * the opening pass (row-offset index, label map, column statistics, the
 * file's SHA-256), the fit a training file passes on to its test file, and
 * reading samples by seeking to their rows.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fedl/csv.h"

#define MAX_CLASSES 4096
#define MAX_LABEL_BYTES 255
#define MIN_READ_BUFFER 4096

struct fedl_csv_fit {
    fedl_allocator *alloc; /* of a decoded fit (fedl_csv_fit_free) */
    size_t file_columns;   /* columns of the training file */
    size_t label_column;
    size_t *columns; /* (features) the feature columns of the training file */
    fedl_shape shape;
    size_t features;
    float *scale, *shift, *fill; /* (features): x = value * scale + shift; fill for missing */
    int numeric_labels;          /* class id = the integer label */
    int regression;              /* the label column is a numeric target; classes 0 */
    int classes;
    char *names;        /* label texts, each NUL-terminated (string labels) */
    size_t names_bytes; /* used */
    size_t names_cap;   /* allocated */
    uint32_t *name_at;  /* (classes) offsets into names, sorted by text */
    size_t name_at_cap; /* entries allocated */
};

/* One row of the index: where its record starts. */
typedef fedl_csv_row row_ref;

#define MAX_FILES 1024

/* A background reader: while the caller trains on one batch, a second
 * thread parses the rows of the next (the batcher says which). It shares
 * the data set's reader, never at the same time as the caller: read_samples
 * waits until the worker is idle. */
typedef struct prefetcher {
    pthread_t thread;
    int state; /* 0 not started, 1 running, -1 could not start (read synchronously) */
    pthread_mutex_t lock;
    pthread_cond_t wake, idle;
    int busy, ready, quit;
    uint32_t *want; /* (cap) indices asked for */
    size_t n, cap;
    float *x;        /* (cap, features) */
    int32_t *labels; /* (cap) */
    float *targets;  /* (cap) */
    fedl_status status;
    fedl_error err;
} prefetcher;

typedef struct csv_dataset {
    fedl_allocator *alloc;
    char **paths; /* (file_count) owned copies */
    size_t file_count;
    fedl_csv_reader **readers;             /* (file_count) random access, opened on first use */
    fedl_csv_options read_opts;            /* for those readers: a buffer for the longest record */
    uint8_t header_sha[FEDL_SHA256_BYTES]; /* of the first file's header names */
    row_ref *rows;                         /* (count) */
    size_t count, rows_cap;
    size_t *columns;    /* (features) column index of each feature */
    size_t columns_cap; /* entries allocated: the file's column count */
    size_t label_column;
    size_t file_columns;
    fedl_csv_missing missing;
    fedl_csv_fit fit;
    fedl_csv_info info;
    prefetcher pre;
    /* Stream mode (fedl_csv_stream_open): no index; each epoch reads the
     * files front to back through a shuffle buffer of cap rows. */
    struct {
        size_t cap; /* rows in the shuffle buffer; 0 = not a stream */
        uint64_t seed;
        fedl_csv_options opts;   /* the options the files are read with */
        float *x;                /* (cap, features), scaled */
        float *y;                /* (cap) class ids or targets */
        size_t fill;             /* rows in the buffer */
        size_t file;             /* the file being read */
        fedl_csv_reader *r;      /* on that file */
        uint64_t epoch, emitted; /* where the stream is */
        int started;
        fedl_rng rng;
        fedl_status status; /* a failed restart, reported by the next read */
        fedl_error err;
    } stream;
} csv_dataset;

fedl_csv_schema fedl_csv_schema_defaults(void)
{
    fedl_csv_schema s;
    memset(&s, 0, sizeof s);
    s.missing = FEDL_CSV_MISSING_ERROR;
    s.scaling = FEDL_CSV_SCALE_NONE;
    s.divisor = 1.0f;
    return s;
}

/* ---------------------------------------------------------------- the fit */

static void fit_free(fedl_allocator *alloc, fedl_csv_fit *f)
{
    fedl_mem_free(alloc, f->columns, f->features * sizeof *f->columns);
    fedl_mem_free(alloc, f->scale, f->features * sizeof *f->scale);
    fedl_mem_free(alloc, f->shift, f->features * sizeof *f->shift);
    fedl_mem_free(alloc, f->fill, f->features * sizeof *f->fill);
    fedl_mem_free(alloc, f->names, f->names_cap);
    fedl_mem_free(alloc, f->name_at, f->name_at_cap * sizeof *f->name_at);
    memset(f, 0, sizeof *f);
}

static fedl_status fit_alloc_features(fedl_allocator *alloc, fedl_csv_fit *f, size_t features,
                                      fedl_error *err)
{
    f->features = features;
    f->columns = fedl_mem_alloc(alloc, features * sizeof *f->columns);
    f->scale = fedl_mem_alloc(alloc, features * sizeof *f->scale);
    f->shift = fedl_mem_alloc(alloc, features * sizeof *f->shift);
    f->fill = fedl_mem_alloc(alloc, features * sizeof *f->fill);
    if (f->columns == NULL || f->scale == NULL || f->shift == NULL || f->fill == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate %zu columns",
                              features);
    return FEDL_OK;
}

static fedl_status fit_copy(fedl_allocator *alloc, const fedl_csv_fit *from, fedl_csv_fit *to,
                            fedl_error *err)
{
    fedl_status st = fit_alloc_features(alloc, to, from->features, err);
    if (st != FEDL_OK)
        return st;
    memcpy(to->columns, from->columns, from->features * sizeof *to->columns);
    to->file_columns = from->file_columns;
    to->label_column = from->label_column;
    to->shape = from->shape;
    memcpy(to->scale, from->scale, from->features * sizeof *to->scale);
    memcpy(to->shift, from->shift, from->features * sizeof *to->shift);
    memcpy(to->fill, from->fill, from->features * sizeof *to->fill);
    to->numeric_labels = from->numeric_labels;
    to->regression = from->regression;
    to->classes = from->classes;
    if (from->names_bytes > 0) {
        to->names = fedl_mem_alloc(alloc, from->names_bytes);
        to->name_at = fedl_mem_alloc(alloc, (size_t)from->classes * sizeof *to->name_at);
        if (to->names == NULL || to->name_at == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot copy the labels");
        to->names_cap = to->names_bytes = from->names_bytes;
        to->name_at_cap = (size_t)from->classes;
        memcpy(to->names, from->names, from->names_bytes);
        memcpy(to->name_at, from->name_at, (size_t)from->classes * sizeof *to->name_at);
    }
    return FEDL_OK;
}

/* Position of text among the sorted label names: *found, or where it goes. */
static size_t find_name(const fedl_csv_fit *f, const char *text, size_t len, int *found)
{
    size_t lo = 0, hi = (size_t)f->classes;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = f->names + f->name_at[mid];
        size_t name_len = strlen(name);
        int c = memcmp(name, text, name_len < len ? name_len : len);
        if (c == 0)
            c = name_len < len ? -1 : name_len > len ? 1 : 0;
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Add a label text not seen before, keeping the names sorted. */
static fedl_status add_name(fedl_allocator *alloc, fedl_csv_fit *f, const char *text, size_t len,
                            size_t at, fedl_error *err)
{
    if (f->classes >= MAX_CLASSES)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "more than %d distinct labels", MAX_CLASSES);
    if (f->names_bytes + len + 1 > f->names_cap) {
        size_t cap = f->names_cap ? f->names_cap * 2 : 4096;
        char *grown;
        while (cap < f->names_bytes + len + 1)
            cap *= 2;
        grown = fedl_mem_realloc(alloc, f->names, f->names_cap, cap);
        if (grown == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot store labels");
        f->names = grown;
        f->names_cap = cap;
    }
    if ((size_t)f->classes + 1 > f->name_at_cap) {
        size_t cap = f->name_at_cap ? f->name_at_cap * 2 : 64;
        uint32_t *grown = fedl_mem_realloc(alloc, f->name_at, f->name_at_cap * sizeof *grown,
                                           cap * sizeof *grown);
        if (grown == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot store labels");
        f->name_at = grown;
        f->name_at_cap = cap;
    }
    memcpy(f->names + f->names_bytes, text, len);
    f->names[f->names_bytes + len] = '\0';
    memmove(f->name_at + at + 1, f->name_at + at, ((size_t)f->classes - at) * sizeof *f->name_at);
    f->name_at[at] = (uint32_t)f->names_bytes;
    f->names_bytes += len + 1;
    f->classes++;
    return FEDL_OK;
}

/* The integer a label text is, when it is one in [0, MAX_CLASSES). */
static int small_integer(const char *text, size_t len, int *value)
{
    int v = 0;
    if (len == 0 || len > 4)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        v = v * 10 + (text[i] - '0');
    }
    if (v >= MAX_CLASSES)
        return 0;
    *value = v;
    return 1;
}

/* Once every label is known: integers keep their value as class id. */
static void decide_label_map(fedl_csv_fit *f)
{
    if (f->regression)
        return;
    int largest = -1, value;
    for (int i = 0; i < f->classes; i++) {
        const char *name = f->names + f->name_at[i];
        if (!small_integer(name, strlen(name), &value) || (strlen(name) > 1 && name[0] == '0'))
            return;
        if (value > largest)
            largest = value;
    }
    if (f->classes > 0) {
        f->numeric_labels = 1;
        f->classes = largest + 1;
    }
}

const char *fedl_csv_class_name(const fedl_csv_fit *fit, int class_id, char *buf, size_t size)
{
    if (fit == NULL || class_id < 0 || class_id >= fit->classes)
        return NULL;
    if (fit->numeric_labels) {
        snprintf(buf, size, "%d", class_id);
        return buf;
    }
    return fit->names + fit->name_at[class_id];
}

/* The class id of the label in field col of the current record. */
static fedl_status class_of(const fedl_csv_reader *r, size_t col, const fedl_csv_fit *f,
                            int32_t *out, fedl_error *err)
{
    size_t len;
    const char *text = fedl_csv_field(r, col, &len);
    int value, found;
    size_t at;
    if (f->numeric_labels) {
        if (!small_integer(text, len, &value) || value >= f->classes)
            return fedl_csv_field_error(r, col, FEDL_ERR_FORMAT,
                                        "a label the training data does not have", err);
        *out = value;
        return FEDL_OK;
    }
    at = find_name(f, text, len, &found);
    if (!found)
        return fedl_csv_field_error(r, col, FEDL_ERR_FORMAT,
                                    "a label the training data does not have", err);
    *out = (int32_t)at;
    return FEDL_OK;
}

/* The label of field col as a float: the class id, or the target of a
 * regression data set. */
static fedl_status y_of(const fedl_csv_reader *r, size_t col, const fedl_csv_fit *f, float *out,
                        fedl_error *err)
{
    int32_t id;
    fedl_status st;
    if (f->regression)
        return fedl_csv_field_float(r, col, out, NULL, err);
    st = class_of(r, col, f, &id, err);
    if (st == FEDL_OK)
        *out = (float)id;
    return st;
}

/* ------------------------------------------------------------- columns */

static int all_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Column named or numbered by text[0..len). */
static fedl_status resolve_column(const fedl_csv_reader *r, const char *what, const char *text,
                                  size_t len, size_t columns, size_t *out, fedl_error *err)
{
    char name[256];
    if (all_digits(text, len)) {
        unsigned long long index = strtoull(text, NULL, 10);
        if (len > 18 || index >= columns)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "CSV %s: column %.*s does not exist (the file has %zu columns, "
                                  "numbered from 0)",
                                  what, (int)len, text, columns);
        *out = (size_t)index;
        return FEDL_OK;
    }
    if (len >= sizeof name)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV %s: column name too long", what);
    memcpy(name, text, len);
    name[len] = '\0';
    if (fedl_csv_header_count(r) == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "CSV %s: column '%s' named, but the file has no header", what, name);
    return fedl_csv_find_column(r, name, out, err);
}

/* The feature columns of schema->features (NULL or "all": all but label). */
static fedl_status resolve_features(csv_dataset *d, const fedl_csv_reader *r, const char *spec,
                                    size_t columns, fedl_error *err)
{
    size_t count = 0, cap = columns;
    const char *p = spec;
    fedl_status st;
    d->columns = fedl_mem_alloc(d->alloc, cap * sizeof *d->columns);
    d->columns_cap = cap;
    if (d->columns == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate columns");
    if (spec == NULL || strcmp(spec, "all") == 0) {
        for (size_t c = 0; c < columns; c++)
            if (c != d->label_column)
                d->columns[count++] = c;
    } else {
        while (*p != '\0') {
            const char *end = strchr(p, ','), *dash;
            size_t len = end ? (size_t)(end - p) : strlen(p), first, last;
            dash = memchr(p, '-', len);
            if (dash != NULL && all_digits(p, (size_t)(dash - p)) &&
                all_digits(dash + 1, len - (size_t)(dash - p) - 1)) {
                st = resolve_column(r, "features", p, (size_t)(dash - p), columns, &first, err);
                if (st == FEDL_OK)
                    st = resolve_column(r, "features", dash + 1, len - (size_t)(dash - p) - 1,
                                        columns, &last, err);
                if (st != FEDL_OK)
                    return st;
                if (last < first)
                    return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                          "CSV features: range %.*s runs backwards", (int)len, p);
            } else {
                st = resolve_column(r, "features", p, len, columns, &first, err);
                if (st != FEDL_OK)
                    return st;
                last = first;
            }
            for (size_t c = first; c <= last; c++) {
                for (size_t k = 0; k < count; k++)
                    if (d->columns[k] == c)
                        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                              "CSV features: column %zu is listed twice", c);
                if (c == d->label_column)
                    return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                          "CSV features: column %zu is the label", c);
                d->columns[count++] = c;
            }
            p += len + (end ? 1 : 0);
        }
    }
    if (count == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV features: no feature columns");
    d->info.features = count;
    return FEDL_OK;
}

/* The columns a fit names, for a file opened without naming its own. */
static fedl_status columns_of_fit(csv_dataset *d, const char *path, size_t columns, fedl_error *err)
{
    if (columns != d->fit.file_columns)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: %zu columns, but the training file had %zu (name the label "
                              "and feature columns to read it)",
                              path, columns, d->fit.file_columns);
    d->columns = fedl_mem_alloc(d->alloc, d->fit.features * sizeof *d->columns);
    d->columns_cap = d->fit.features;
    if (d->columns == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate columns");
    memcpy(d->columns, d->fit.columns, d->fit.features * sizeof *d->columns);
    d->label_column = d->fit.label_column;
    d->info.features = d->fit.features;
    return FEDL_OK;
}

/* ------------------------------------------------------------ the pass */

/* Reads the file for the opening pass and hashes what it reads. */
typedef struct hashing_file {
    int fd;
    const char *path;
    fedl_sha256_ctx sha;
} hashing_file;

static fedl_status hashing_read(void *ud, void *buffer, size_t capacity, size_t *got,
                                fedl_error *err)
{
    hashing_file *h = ud;
    ssize_t n;
    do
        n = read(h->fd, buffer, capacity);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: read: %s", h->path, strerror(errno));
    fedl_sha256_update(&h->sha, buffer, (size_t)n);
    *got = (size_t)n;
    return FEDL_OK;
}

/* Per feature column, over the values present in the rows kept. */
typedef struct column_stats {
    double sum, sum_sq;
    float min, max;
    uint64_t n;
} column_stats;

static fedl_status append_row(csv_dataset *d, uint64_t offset, uint64_t line, size_t file,
                              fedl_error *err)
{
    if (line > UINT32_MAX)
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED, "%s: more than %lu lines", d->paths[file],
                              (unsigned long)UINT32_MAX);
    if (d->count == d->rows_cap) {
        size_t cap = d->rows_cap ? d->rows_cap * 2 : 1024;
        row_ref *grown =
            fedl_mem_realloc(d->alloc, d->rows, d->rows_cap * sizeof *grown, cap * sizeof *grown);
        if (grown == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM,
                                  "CSV data set: cannot grow the row index to %zu rows", cap);
        d->rows = grown;
        d->rows_cap = cap;
    }
    d->rows[d->count].offset = offset;
    d->rows[d->count].line = (uint32_t)line;
    d->rows[d->count].file = (uint32_t)file;
    d->count++;
    return FEDL_OK;
}

/* Parse the current record's features into row (features); *skip when a
 * missing value leaves the row out; missing values get NAN. */
static fedl_status parse_features(csv_dataset *d, const fedl_csv_reader *r, float *row, int *skip,
                                  fedl_error *err)
{
    for (size_t j = 0; j < d->info.features; j++) {
        int missing = 0;
        fedl_status st = fedl_csv_field_float(r, d->columns[j], &row[j], &missing, err);
        if (st != FEDL_OK)
            return st;
        if (!missing)
            continue;
        row[j] = NAN;
        if (d->missing == FEDL_CSV_MISSING_ERROR)
            return fedl_csv_field_error(r, d->columns[j], FEDL_ERR_FORMAT,
                                        "a value (missing values are errors; choose skip, fill "
                                        "or mean)",
                                        err);
        if (d->missing == FEDL_CSV_MISSING_SKIP)
            *skip = 1;
    }
    return FEDL_OK;
}

/* The label of the current record during the pass: *skip when missing and
 * skipping; new texts join the fit's names (training file) or must be
 * known (fit given). */
static fedl_status pass_label(csv_dataset *d, const fedl_csv_reader *r, int training, int *skip,
                              fedl_error *err)
{
    size_t len, at;
    const char *text = fedl_csv_field(r, d->label_column, &len);
    int found;
    int32_t id;
    if (len == 0) {
        if (d->missing == FEDL_CSV_MISSING_SKIP) {
            *skip = 1;
            return FEDL_OK;
        }
        return fedl_csv_field_error(r, d->label_column, FEDL_ERR_FORMAT, "a label", err);
    }
    if (d->fit.regression) {
        float target;
        return fedl_csv_field_float(r, d->label_column, &target, NULL, err);
    }
    if (!training)
        return class_of(r, d->label_column, &d->fit, &id, err);
    if (len > MAX_LABEL_BYTES)
        return fedl_csv_field_error(r, d->label_column, FEDL_ERR_FORMAT,
                                    "a label of at most 255 bytes", err);
    at = find_name(&d->fit, text, len, &found);
    if (found)
        return FEDL_OK;
    {
        fedl_error why = {0};
        fedl_status st = add_name(d->alloc, &d->fit, text, len, at, &why);
        if (st != FEDL_OK)
            return fedl_csv_field_error(r, d->label_column, st, why.message, err);
    }
    return FEDL_OK;
}

static void fit_scaling(csv_dataset *d, const fedl_csv_schema *schema, const column_stats *stats)
{
    fedl_csv_fit *f = &d->fit;
    for (size_t j = 0; j < f->features; j++) {
        const column_stats *c = &stats[j];
        double mean = c->n ? c->sum / (double)c->n : 0.0;
        double var = c->n ? c->sum_sq / (double)c->n - mean * mean : 0.0;
        double scale = 1.0, shift = 0.0;
        switch (schema->scaling) {
        case FEDL_CSV_SCALE_NONE:
            break;
        case FEDL_CSV_SCALE_DIVIDE:
            scale = 1.0 / (double)schema->divisor;
            break;
        case FEDL_CSV_SCALE_MINMAX:
            if (c->n > 0 && c->max > c->min)
                scale = 1.0 / ((double)c->max - (double)c->min);
            shift = c->n > 0 ? -(double)c->min * scale : 0.0;
            break;
        case FEDL_CSV_SCALE_ZSCORE:
            if (var > 0.0)
                scale = 1.0 / sqrt(var);
            shift = -mean * scale;
            break;
        }
        f->scale[j] = (float)scale;
        f->shift[j] = (float)shift;
        f->fill[j] = schema->missing == FEDL_CSV_MISSING_MEAN ? (float)mean : schema->fill_value;
    }
}

/* SHA-256 of the header names (or of the column count without a header):
 * every file of a data set must have the first file's. */
static void header_digest(const fedl_csv_reader *r, size_t columns, uint8_t out[FEDL_SHA256_BYTES])
{
    fedl_sha256_ctx ctx;
    uint64_t n = columns;
    fedl_sha256_init(&ctx);
    fedl_sha256_update(&ctx, &n, sizeof n);
    for (size_t i = 0; i < fedl_csv_header_count(r); i++) {
        size_t len;
        const char *name = fedl_csv_header_name(r, i, &len);
        fedl_sha256_update(&ctx, name, len + 1);
    }
    fedl_sha256_final(&ctx, out);
}

/* Which columns are label and features: from the schema on the first file
 * (or the fit's), the same as the first file's on the others. */
static fedl_status resolve_file_columns(csv_dataset *d, const fedl_csv_reader *r, size_t file,
                                        size_t columns, const fedl_csv_schema *schema, int training,
                                        fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    fedl_status status = FEDL_OK;
    header_digest(r, columns, digest);
    if (file > 0) {
        if (memcmp(digest, d->header_sha, sizeof digest) != 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: its columns (%zu) or their names differ from those of %s",
                                  d->paths[file], columns, d->paths[0]);
        return FEDL_OK;
    }
    memcpy(d->header_sha, digest, sizeof digest);
    if (!training && schema->label == NULL && schema->features == NULL) {
        status = columns_of_fit(d, d->paths[0], columns, err);
    } else {
        if (schema->label != NULL)
            status = resolve_column(r, "label", schema->label, strlen(schema->label), columns,
                                    &d->label_column, err);
        else if (fedl_csv_find_column(r, "label", &d->label_column, NULL) != FEDL_OK)
            d->label_column = 0;
        if (status == FEDL_OK)
            status = resolve_features(d, r, schema->features, columns, err);
    }
    d->info.label_column = d->label_column;
    d->file_columns = columns;
    return status;
}

static int is_gzip(int fd)
{
    uint8_t magic[2];
    return pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

/* Buffers of the pass, sized once the feature count is known. */
typedef struct pass_buffers {
    column_stats *stats; /* (features) */
    float *row;          /* (features) */
    size_t features;
} pass_buffers;

/* One file of the pass: index its rows, learn its labels and statistics,
 * hash it into file_sha. */
static fedl_status pass_file(csv_dataset *d, size_t file, const fedl_csv_options *opts,
                             const fedl_csv_schema *schema, int training, pass_buffers *b,
                             uint8_t file_sha[FEDL_SHA256_BYTES], fedl_error *err)
{
    const char *path = d->paths[file];
    hashing_file h;
    fedl_csv_options o = *opts;
    fedl_csv_reader *r = NULL;
    uint64_t last_offset = 0, rows_before = d->info.rows;
    struct stat st;
    fedl_status status;
    int more = 0;
    o.name = path;
    memset(&h, 0, sizeof h);
    h.path = path;
    h.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (h.fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: %s", path, strerror(errno));
    if (d->stream.cap == 0 && is_gzip(h.fd)) {
        close(h.fd);
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "%s: gzip cannot be read at a row's offset: read it as a stream "
                              "(fedl_csv_stream_open, fedl train --shuffle-buffer N) or "
                              "decompress it",
                              path);
    }
    fedl_sha256_init(&h.sha);
    status = fedl_csv_open_callback(hashing_read, &h, &o, d->alloc, &r, err);
    if (status == FEDL_OK) {
        size_t columns = fedl_csv_header_count(r);
        if (columns == 0) { /* no header: the first record says how many */
            status = fedl_csv_next_record(r, &more, err);
            columns = fedl_csv_field_count(r);
        }
        if (status == FEDL_OK && columns > 0)
            status = resolve_file_columns(d, r, file, columns, schema, training, err);
    }
    if (status == FEDL_OK && b->stats == NULL) {
        b->features = d->info.features;
        b->stats = fedl_mem_alloc(d->alloc, b->features * sizeof *b->stats);
        b->row = fedl_mem_alloc(d->alloc, b->features * sizeof *b->row);
        if (b->stats == NULL || b->row == NULL)
            status = fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
    }
    while (status == FEDL_OK) {
        uint64_t offset;
        int skip = 0;
        if (!more) { /* (the first record is already read when there is no header) */
            status = fedl_csv_next_record(r, &more, err);
            if (status != FEDL_OK || !more)
                break;
        }
        more = 0;
        offset = fedl_csv_record_offset(r);
        if (d->info.rows > rows_before && offset - last_offset > d->info.longest_record)
            d->info.longest_record = (size_t)(offset - last_offset);
        last_offset = offset;
        d->info.rows++;
        status = pass_label(d, r, training, &skip, err);
        if (status == FEDL_OK)
            status = parse_features(d, r, b->row, &skip, err);
        if (status != FEDL_OK)
            break;
        if (skip) {
            d->info.skipped_rows++;
            continue;
        }
        for (size_t j = 0; j < d->info.features; j++) {
            column_stats *c = &b->stats[j];
            float v = b->row[j];
            if (isnan(v)) {
                d->info.filled++;
                continue;
            }
            if (c->n == 0 || v < c->min)
                c->min = v;
            if (c->n == 0 || v > c->max)
                c->max = v;
            c->sum += v;
            c->sum_sq += (double)v * v;
            c->n++;
        }
        if (d->stream.cap > 0)
            d->count++; /* a stream keeps no index */
        else
            status = append_row(d, offset, fedl_csv_record_line(r), file, err);
    }
    if (status == FEDL_OK && d->info.rows > rows_before && fstat(h.fd, &st) == 0 &&
        (uint64_t)st.st_size - last_offset > d->info.longest_record)
        d->info.longest_record = (size_t)((uint64_t)st.st_size - last_offset);
    if (status == FEDL_OK)
        fedl_sha256_final(&h.sha, file_sha);
    fedl_csv_close(r);
    close(h.fd);
    return status;
}

/* One pass over every file: index, labels, statistics, hashes. */
static fedl_status opening_pass(csv_dataset *d, const fedl_csv_options *opts,
                                const fedl_csv_schema *schema, int training, fedl_error *err)
{
    pass_buffers b = {NULL, NULL, 0};
    fedl_sha256_ctx all;
    uint8_t file_sha[FEDL_SHA256_BYTES];
    fedl_status status = FEDL_OK;
    fedl_sha256_init(&all);
    for (size_t file = 0; status == FEDL_OK && file < d->file_count; file++) {
        status = pass_file(d, file, opts, schema, training, &b, file_sha, err);
        fedl_sha256_update(&all, file_sha, sizeof file_sha);
        if (d->file_count == 1)
            memcpy(d->info.file_sha256, file_sha, sizeof file_sha);
    }
    if (status == FEDL_OK && d->file_count > 1) /* several files: the hash of their hashes */
        fedl_sha256_final(&all, d->info.file_sha256);
    if (status == FEDL_OK && d->count == 0)
        status = fedl_error_set(err, FEDL_ERR_FORMAT, "%s%s: no data rows%s", d->paths[0],
                                d->file_count > 1 ? " and the other files" : "",
                                d->info.skipped_rows ? " left after skipping missing values" : "");
    if (status == FEDL_OK && d->count < d->rows_cap) { /* the index grew by doubling: trim it */
        row_ref *trimmed = fedl_mem_realloc(d->alloc, d->rows, d->rows_cap * sizeof *d->rows,
                                            d->count * sizeof *d->rows);
        if (trimmed != NULL) {
            d->rows = trimmed;
            d->rows_cap = d->count;
        }
    }
    if (status == FEDL_OK && training) {
        status = fit_alloc_features(d->alloc, &d->fit, d->info.features, err);
        if (status == FEDL_OK) {
            decide_label_map(&d->fit);
            fit_scaling(d, schema, b.stats);
            memcpy(d->fit.columns, d->columns, d->info.features * sizeof *d->columns);
            d->fit.label_column = d->label_column;
            d->fit.file_columns = d->file_columns;
        }
    }
    fedl_mem_free(d->alloc, b.stats, b.features * sizeof *b.stats);
    fedl_mem_free(d->alloc, b.row, b.features * sizeof *b.row);
    return status;
}

/* ------------------------------------------------------------- reading */

/* Parse rows indices[0..n) into x (n, features) and labels (n). */
static fedl_status parse_samples(csv_dataset *d, const uint32_t *indices, size_t n, float *x,
                                 int32_t *labels, float *targets, fedl_error *err)
{
    const fedl_csv_fit *f = &d->fit;
    for (size_t i = 0; i < n; i++) {
        const row_ref *ref = &d->rows[indices[i]];
        fedl_csv_reader *r = d->readers[ref->file];
        int more = 0;
        fedl_status st = FEDL_OK;
        if (r == NULL) {
            st = fedl_csv_open(d->paths[ref->file], &d->read_opts, d->alloc, &r, err);
            d->readers[ref->file] = r;
        }
        if (st == FEDL_OK)
            st = fedl_csv_seek(r, ref->offset, ref->line, err);
        if (st == FEDL_OK)
            st = fedl_csv_next_record(r, &more, err);
        if (st == FEDL_OK && !more)
            st = fedl_error_set(err, FEDL_ERR_STATE,
                                "%s: the row at line %lu is gone: did the file change?",
                                d->paths[ref->file], (unsigned long)ref->line);
        if (st == FEDL_OK && (labels != NULL || targets != NULL)) {
            float y = 0.0f;
            st = y_of(r, d->label_column, f, &y, err);
            if (labels != NULL)
                labels[i] = (int32_t)y;
            if (targets != NULL)
                targets[i] = y;
        }
        if (st != FEDL_OK)
            return st;
        if (x == NULL)
            continue;
        for (size_t j = 0; j < f->features; j++) {
            float v;
            int missing = 0;
            st = fedl_csv_field_float(r, d->columns[j], &v, &missing, err);
            if (st != FEDL_OK)
                return st;
            x[i * f->features + j] =
                missing ? f->fill[j] * f->scale[j] + f->shift[j] : v * f->scale[j] + f->shift[j];
        }
    }
    return FEDL_OK;
}

static void *prefetch_worker(void *arg)
{
    csv_dataset *d = arg;
    prefetcher *p = &d->pre;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && !p->busy)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->quit)
            break;
        pthread_mutex_unlock(&p->lock);
        /* busy: the caller leaves the reader and the buffers alone */
        p->status = parse_samples(d, p->want, p->n, p->x, p->labels, p->targets, &p->err);
        pthread_mutex_lock(&p->lock);
        p->busy = 0;
        p->ready = 1;
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start the worker on first use; a machine that cannot (no threads left,
 * an address-space limit) reads synchronously. */
static int prefetch_start(csv_dataset *d)
{
    prefetcher *p = &d->pre;
    pthread_attr_t attr;
    int ok;
    if (p->state != 0)
        return p->state > 0;
    p->state = -1;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return 0;
    if (pthread_cond_init(&p->wake, NULL) != 0 || pthread_cond_init(&p->idle, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        return 0;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256u << 10); /* parsing needs little stack */
    ok = pthread_create(&p->thread, &attr, prefetch_worker, d) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->idle);
        pthread_mutex_destroy(&p->lock);
        return 0;
    }
    p->state = 1;
    return 1;
}

static void prefetch_free_buffers(csv_dataset *d)
{
    prefetcher *p = &d->pre;
    fedl_mem_free(d->alloc, p->want, p->cap * sizeof *p->want);
    fedl_mem_free(d->alloc, p->x, p->cap * d->fit.features * sizeof *p->x);
    fedl_mem_free(d->alloc, p->labels, p->cap * sizeof *p->labels);
    fedl_mem_free(d->alloc, p->targets, p->cap * sizeof *p->targets);
}

/* Room for n samples in the worker's buffers (grown only when n grows). */
static int prefetch_reserve(csv_dataset *d, size_t n)
{
    prefetcher *p = &d->pre;
    size_t features = d->fit.features;
    uint32_t *want;
    float *x;
    int32_t *labels;
    float *targets;
    if (n <= p->cap)
        return 1;
    want = fedl_mem_alloc(d->alloc, n * sizeof *want);
    x = fedl_mem_alloc(d->alloc, n * features * sizeof *x);
    labels = fedl_mem_alloc(d->alloc, n * sizeof *labels);
    targets = fedl_mem_alloc(d->alloc, n * sizeof *targets);
    if (want == NULL || x == NULL || labels == NULL || targets == NULL) {
        fedl_mem_free(d->alloc, want, n * sizeof *want);
        fedl_mem_free(d->alloc, x, n * features * sizeof *x);
        fedl_mem_free(d->alloc, labels, n * sizeof *labels);
        fedl_mem_free(d->alloc, targets, n * sizeof *targets);
        return 0;
    }
    prefetch_free_buffers(d);
    p->want = want;
    p->x = x;
    p->labels = labels;
    p->targets = targets;
    p->cap = n;
    return 1;
}

/* Wait until the worker is idle (the caller may then use the reader). */
static void prefetch_wait(prefetcher *p)
{
    if (p->state <= 0)
        return;
    pthread_mutex_lock(&p->lock);
    while (p->busy)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void prefetch(void *impl, const uint32_t *indices, size_t n)
{
    csv_dataset *d = impl;
    prefetcher *p = &d->pre;
    if (!prefetch_start(d))
        return;
    prefetch_wait(p);
    p->ready = 0;
    if (!prefetch_reserve(d, n))
        return;
    memcpy(p->want, indices, n * sizeof *indices);
    p->n = n;
    pthread_mutex_lock(&p->lock);
    p->busy = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* -------------------------------------------------------------- streams */

#define STREAM_RNG 0x53545245414dULL /* "STREAM" */

/* The next row of the files into slot (scaled features, class id); *got 0
 * at the end of the last file. Rows left out by the missing-value policy
 * are skipped, as in the pass. */
static fedl_status stream_next_row(csv_dataset *d, size_t slot, int *got, fedl_error *err)
{
    const fedl_csv_fit *f = &d->fit;
    *got = 0;
    for (;;) {
        int more = 0, skip = 0;
        float *x = d->stream.x + slot * f->features;
        fedl_status st;
        if (d->stream.r == NULL) {
            if (d->stream.file >= d->file_count)
                return FEDL_OK;
            st = fedl_csv_open(d->paths[d->stream.file], &d->stream.opts, d->alloc, &d->stream.r,
                               err);
            if (st != FEDL_OK)
                return st;
        }
        st = fedl_csv_next_record(d->stream.r, &more, err);
        if (st != FEDL_OK)
            return st;
        if (!more) {
            fedl_csv_close(d->stream.r);
            d->stream.r = NULL;
            d->stream.file++;
            continue;
        }
        if (fedl_csv_field(d->stream.r, d->label_column, NULL)[0] == '\0' &&
            d->missing == FEDL_CSV_MISSING_SKIP)
            continue;
        st = y_of(d->stream.r, d->label_column, f, &d->stream.y[slot], err);
        if (st == FEDL_OK)
            st = parse_features(d, d->stream.r, x, &skip, err);
        if (st != FEDL_OK)
            return st;
        if (skip)
            continue;
        for (size_t j = 0; j < f->features; j++)
            x[j] = (isnan(x[j]) ? f->fill[j] : x[j]) * f->scale[j] + f->shift[j];
        *got = 1;
        return FEDL_OK;
    }
}

/* Start epoch over: the files from the top, the buffer filled, the
 * generator at (seed, epoch). */
static fedl_status stream_restart(csv_dataset *d, uint64_t epoch, fedl_error *err)
{
    int got = 1;
    fedl_status st = FEDL_OK;
    fedl_csv_close(d->stream.r);
    d->stream.r = NULL;
    d->stream.file = 0;
    d->stream.fill = 0;
    d->stream.emitted = 0;
    d->stream.epoch = epoch;
    d->stream.started = 1;
    fedl_rng_init(&d->stream.rng, d->stream.seed, STREAM_RNG + epoch);
    while (st == FEDL_OK && got && d->stream.fill < d->stream.cap) {
        st = stream_next_row(d, d->stream.fill, &got, err);
        if (st == FEDL_OK && got)
            d->stream.fill++;
    }
    return st;
}

/* The next sample of the stream: a uniformly chosen row of the buffer,
 * whose slot then takes the next row of the files (x or labels NULL:
 * skipped). */
static fedl_status stream_emit(csv_dataset *d, float *x, int32_t *label, float *target,
                               fedl_error *err)
{
    size_t features = d->fit.features, j;
    int got;
    fedl_status st;
    if (d->stream.fill == 0)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "%s: the stream ended after %llu of %zu samples: did the file "
                              "change?",
                              d->paths[0], (unsigned long long)d->stream.emitted, d->count);
    j = d->stream.fill == 1 ? 0 : fedl_rng_below(&d->stream.rng, (uint32_t)d->stream.fill);
    if (x != NULL)
        memcpy(x, d->stream.x + j * features, features * sizeof *x);
    if (label != NULL)
        *label = (int32_t)d->stream.y[j];
    if (target != NULL)
        *target = d->stream.y[j];
    st = stream_next_row(d, j, &got, err);
    if (st != FEDL_OK)
        return st;
    if (!got) { /* the files are done: the last row takes the slot */
        d->stream.fill--;
        memcpy(d->stream.x + j * features, d->stream.x + d->stream.fill * features,
               features * sizeof *d->stream.x);
        d->stream.y[j] = d->stream.y[d->stream.fill];
    }
    d->stream.emitted++;
    return FEDL_OK;
}

static fedl_status stream_read(csv_dataset *d, size_t n, float *x, int32_t *labels, float *targets,
                               fedl_error *err)
{
    if (d->stream.status != FEDL_OK) {
        if (err != NULL)
            *err = d->stream.err;
        return d->stream.status;
    }
    if (!d->stream.started) {
        fedl_status st = stream_restart(d, 0, err);
        if (st != FEDL_OK)
            return st;
    }
    for (size_t i = 0; i < n; i++) {
        fedl_status st = stream_emit(d, x ? x + i * d->fit.features : NULL,
                                     labels ? labels + i : NULL, targets ? targets + i : NULL, err);
        if (st != FEDL_OK)
            return st;
    }
    return FEDL_OK;
}

/* Move to sample `position` of epoch: from the top of that epoch when it
 * is another one or behind, then read and drop up to there. A failure is
 * kept for the next read. */
static void stream_seek(void *impl, uint64_t epoch, size_t position)
{
    csv_dataset *d = impl;
    fedl_status st = FEDL_OK;
    d->stream.status = FEDL_OK;
    if (!d->stream.started || epoch != d->stream.epoch || position < d->stream.emitted)
        st = stream_restart(d, epoch, &d->stream.err);
    while (st == FEDL_OK && d->stream.emitted < position)
        st = stream_emit(d, NULL, NULL, NULL, &d->stream.err);
    d->stream.status = st;
}

static fedl_status read_samples(void *impl, const uint32_t *indices, size_t n, float *x,
                                int32_t *labels, float *targets, fedl_error *err)
{
    csv_dataset *d = impl;
    prefetcher *p = &d->pre;
    if (d->stream.cap > 0)
        return stream_read(d, n, x, labels, targets, err);
    prefetch_wait(p);
    if (p->ready && p->n == n && memcmp(p->want, indices, n * sizeof *indices) == 0) {
        p->ready = 0;
        if (p->status != FEDL_OK) {
            if (err != NULL)
                *err = p->err;
            return p->status;
        }
        if (x != NULL)
            memcpy(x, p->x, n * d->fit.features * sizeof *x);
        if (labels != NULL)
            memcpy(labels, p->labels, n * sizeof *labels);
        if (targets != NULL)
            memcpy(targets, p->targets, n * sizeof *targets);
        return FEDL_OK;
    }
    p->ready = 0;
    return parse_samples(d, indices, n, x, labels, targets, err);
}

static void destroy(void *impl)
{
    csv_dataset *d = impl;
    prefetcher *p;
    if (d == NULL)
        return;
    p = &d->pre;
    if (p->state > 0) {
        pthread_mutex_lock(&p->lock);
        p->quit = 1;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->idle);
        pthread_mutex_destroy(&p->lock);
    }
    fedl_csv_close(d->stream.r);
    fedl_mem_free(d->alloc, d->stream.x, d->stream.cap * d->fit.features * sizeof *d->stream.x);
    fedl_mem_free(d->alloc, d->stream.y, d->stream.cap * sizeof *d->stream.y);
    prefetch_free_buffers(d);
    for (size_t i = 0; i < d->file_count; i++) {
        if (d->readers != NULL)
            fedl_csv_close(d->readers[i]);
        if (d->paths != NULL && d->paths[i] != NULL)
            fedl_mem_free(d->alloc, d->paths[i], strlen(d->paths[i]) + 1);
    }
    fedl_mem_free(d->alloc, d->readers, d->file_count * sizeof *d->readers);
    fedl_mem_free(d->alloc, d->paths, d->file_count * sizeof *d->paths);
    fedl_mem_free(d->alloc, d->rows, d->rows_cap * sizeof *d->rows);
    fedl_mem_free(d->alloc, d->columns, d->columns_cap * sizeof *d->columns);
    fit_free(d->alloc, &d->fit);
    fedl_mem_free(d->alloc, d, sizeof *d);
}

/* ------------------------------------------------------------- opening */

/* SHA-256 of the file's bytes and of everything the schema decides. */
static void compute_identity(const csv_dataset *d, const fedl_csv_schema *schema,
                             uint8_t out[FEDL_SHA256_BYTES])
{
    fedl_sha256_ctx ctx;
    char text[160];
    fedl_sha256_init(&ctx);
    fedl_sha256_update(&ctx, d->info.file_sha256, sizeof d->info.file_sha256);
    snprintf(text, sizeof text,
             "label=%zu;missing=%d;fill=%.9g;scaling=%d;divisor=%.9g;stream=%zu;regression=%d;",
             d->label_column, (int)schema->missing, (double)schema->fill_value,
             (int)schema->scaling, (double)schema->divisor, d->stream.cap, d->fit.regression);
    fedl_sha256_update(&ctx, text, strlen(text));
    for (size_t j = 0; j < d->info.features; j++) {
        uint64_t c = d->columns[j];
        fedl_sha256_update(&ctx, &c, sizeof c);
    }
    fedl_sha256_final(&ctx, out);
}

static fedl_status check_schema(const fedl_csv_schema *s, fedl_error *err)
{
    if ((unsigned)s->missing > FEDL_CSV_MISSING_MEAN ||
        (unsigned)s->scaling > FEDL_CSV_SCALE_ZSCORE)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV schema: unknown missing or scaling");
    if (s->scaling == FEDL_CSV_SCALE_DIVIDE && !(s->divisor > 0.0f && isfinite(s->divisor)))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV schema: divisor %g must be > 0",
                              (double)s->divisor);
    if (!isfinite(s->fill_value))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV schema: fill value must be finite");
    return FEDL_OK;
}

/* Copies of the paths and room for a reader per file. */
static fedl_status take_paths(csv_dataset *d, const char *const *paths, size_t count,
                              fedl_error *err)
{
    if (count == 0 || count > MAX_FILES)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "CSV data set: %zu files (1 to %d can be one data set)", count,
                              MAX_FILES);
    d->paths = fedl_mem_alloc(d->alloc, count * sizeof *d->paths);
    d->readers = fedl_mem_alloc(d->alloc, count * sizeof *d->readers);
    if (d->paths == NULL || d->readers == NULL) {
        fedl_mem_free(d->alloc, d->paths, count * sizeof *d->paths);
        fedl_mem_free(d->alloc, d->readers, count * sizeof *d->readers);
        d->paths = NULL;
        d->readers = NULL;
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
    }
    d->file_count = count;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(paths[i]) + 1;
        d->paths[i] = fedl_mem_alloc(d->alloc, len);
        if (d->paths[i] == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
        memcpy(d->paths[i], paths[i], len);
    }
    return FEDL_OK;
}

static void finish_open(csv_dataset *d, const fedl_csv_options *o, const fedl_csv_schema *sch,
                        const fedl_csv_fit *fit, fedl_dataset *out);

/* A data set over paths, checked schema and allocator settled (*alloc NULL
 * becomes the default); nothing read yet. */
static fedl_status new_dataset(const char *const *paths, size_t count, const fedl_csv_schema *sch,
                               fedl_allocator **alloc, csv_dataset **out, fedl_error *err)
{
    csv_dataset *d;
    fedl_status st = check_schema(sch, err);
    *out = NULL;
    if (st != FEDL_OK)
        return st;
    if (*alloc == NULL)
        *alloc = fedl_allocator_default();
    d = fedl_mem_alloc(*alloc, sizeof *d);
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
    d->alloc = *alloc;
    d->missing = sch->missing;
    st = take_paths(d, paths, count, err);
    if (st != FEDL_OK) {
        destroy(d);
        return st;
    }
    *out = d;
    return FEDL_OK;
}

/* The sample shape: the schema's, else the fit's (a test set), else
 * (features, 1, 1); it must hold the features. */
static fedl_status settle_shape(fedl_csv_schema *sch, const fedl_csv_fit *fit, size_t features,
                                const char *path, fedl_error *err)
{
    if (sch->shape.c == 0 && sch->shape.h == 0 && sch->shape.w == 0)
        sch->shape = fit != NULL ? fit->shape : (fedl_shape){(int32_t)features, 1, 1};
    if (sch->shape.c <= 0 || sch->shape.h <= 0 || sch->shape.w <= 0 ||
        (size_t)sch->shape.c * (size_t)sch->shape.h * (size_t)sch->shape.w != features)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "%s: shape %dx%dx%d does not hold the %zu feature columns", path,
                              (int)sch->shape.c, (int)sch->shape.h, (int)sch->shape.w, features);
    return FEDL_OK;
}

/* Open paths as a data set; stream_rows > 0: as a stream through a
 * shuffle buffer of that many rows, shuffled from seed. */
static fedl_status open_files(const char *const *paths, size_t count, const fedl_csv_options *opts,
                              const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                              size_t stream_rows, uint64_t seed, fedl_allocator *alloc,
                              fedl_dataset *out, fedl_error *err)
{
    fedl_csv_options o = opts != NULL ? *opts : fedl_csv_defaults();
    fedl_csv_schema sch = schema != NULL ? *schema : fedl_csv_schema_defaults();
    csv_dataset *d;
    size_t features;
    fedl_status st;
    memset(out, 0, sizeof *out);
    st = new_dataset(paths, count, &sch, &alloc, &d, err);
    if (st != FEDL_OK)
        return st;
    d->fit.regression = fit != NULL ? fit->regression : sch.regression;
    d->stream.cap = stream_rows;
    d->stream.seed = seed;
    d->stream.opts = o;
    d->stream.opts.name = NULL;
    if (fit != NULL)
        st = fit_copy(alloc, fit, &d->fit, err);
    if (st == FEDL_OK)
        st = opening_pass(d, &o, &sch, fit == NULL, err);
    features = d->info.features;
    if (st == FEDL_OK && fit != NULL && fit->features != features)
        st = fedl_error_set(err, FEDL_ERR_FORMAT,
                            "%s: %zu feature columns, but the training data has %zu", paths[0],
                            features, fit->features);
    if (st == FEDL_OK)
        st = settle_shape(&sch, fit, features, paths[0], err);
    if (st == FEDL_OK && stream_rows > 0) {
        d->stream.x = fedl_mem_alloc(alloc, stream_rows * features * sizeof *d->stream.x);
        d->stream.y = fedl_mem_alloc(alloc, stream_rows * sizeof *d->stream.y);
        if (d->stream.x == NULL || d->stream.y == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM,
                                "CSV stream: cannot allocate a shuffle buffer of %zu rows",
                                stream_rows);
    }
    if (st != FEDL_OK) {
        destroy(d);
        return st;
    }
    finish_open(d, &o, &sch, fit, out);
    return FEDL_OK;
}

fedl_status fedl_csv_dataset_open_files(const char *const *paths, size_t count,
                                        const fedl_csv_options *opts, const fedl_csv_schema *schema,
                                        const fedl_csv_fit *fit, fedl_allocator *alloc,
                                        fedl_dataset *out, fedl_error *err)
{
    return open_files(paths, count, opts, schema, fit, 0, 0, alloc, out, err);
}

/* The data set around d, once its index, fit and columns are known. */
static void finish_open(csv_dataset *d, const fedl_csv_options *o, const fedl_csv_schema *sch,
                        const fedl_csv_fit *fit, fedl_dataset *out)
{
    size_t features = d->info.features;
    /* The readers for samples only ever seek to data rows: they skip the
     * header (which may be longer than any row), and their buffer, what a
     * seek reads, holds the longest record. They open on first use. */
    d->read_opts = *o;
    d->read_opts.buffer_bytes =
        (d->info.longest_record + 64 + MIN_READ_BUFFER - 1) / MIN_READ_BUFFER * MIN_READ_BUFFER;
    d->read_opts.has_header = 0;
    d->read_opts.name = NULL;
    d->info.numeric_labels = d->fit.numeric_labels;
    if (fit == NULL)
        d->fit.shape = sch->shape;
    out->alloc = d->alloc;
    out->count = d->count;
    out->shape = sch->shape;
    out->sample_bytes = features;
    out->classes = d->fit.classes;
    out->targets = d->fit.regression ? 1 : 0;
    out->scale = 1.0f;
    out->source.read = read_samples;
    out->source.prefetch = d->stream.cap > 0 ? NULL : prefetch;
    out->source.seek = d->stream.cap > 0 ? stream_seek : NULL;
    out->source.destroy = destroy;
    out->source.impl = d;
    out->source.held_bytes =
        d->rows_cap * sizeof *d->rows + d->file_count * (d->read_opts.buffer_bytes + 2048) +
        features * (sizeof *d->columns + 3 * sizeof(float)) + d->fit.names_cap + sizeof *d;
    if (d->stream.cap > 0) /* no index, one reader, the shuffle buffer */
        out->source.held_bytes = d->stream.opts.buffer_bytes + 2048 +
                                 d->stream.cap * (features * sizeof(float) + sizeof(int32_t)) +
                                 features * (sizeof *d->columns + 3 * sizeof(float)) +
                                 d->fit.names_cap + sizeof *d;
    compute_identity(d, sch, out->source.identity);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_csv_name(const char *name)
{
    size_t len = strlen(name);
    return len > 4 && name[0] != '.' &&
           (strcmp(name + len - 4, ".csv") == 0 || strcmp(name + len - 4, ".CSV") == 0);
}

/* The plain .csv files of a directory, sorted bytewise by name. */
static fedl_status list_directory(const char *dir, fedl_allocator *alloc, char ***out,
                                  size_t *count, fedl_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    fedl_status st = FEDL_OK;
    *out = NULL;
    *count = 0;
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: %s", dir, strerror(errno));
    names = fedl_mem_alloc(alloc, MAX_FILES * sizeof *names);
    if (names == NULL)
        st = fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
    while (st == FEDL_OK && (e = readdir(d)) != NULL) {
        size_t len;
        if (!is_csv_name(e->d_name))
            continue;
        if (n == MAX_FILES) {
            st = fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                                "%s: more than %d CSV files (at most %d make one data set)", dir,
                                MAX_FILES, MAX_FILES);
            break;
        }
        len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[n] = fedl_mem_alloc(alloc, len);
        if (names[n] == NULL) {
            st = fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate");
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (st == FEDL_OK && n == 0)
        st = fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: no .csv files in the directory", dir);
    if (st == FEDL_OK)
        qsort(names, n, sizeof *names, by_name);
    if (st != FEDL_OK) {
        for (size_t i = 0; i < n; i++)
            fedl_mem_free(alloc, names[i], strlen(names[i]) + 1);
        fedl_mem_free(alloc, names, MAX_FILES * sizeof *names);
        return st;
    }
    *out = names;
    *count = n;
    return FEDL_OK;
}

fedl_status fedl_csv_stream_open(const char *path, const fedl_csv_options *opts,
                                 const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                 size_t buffer_rows, uint64_t seed, fedl_allocator *alloc,
                                 fedl_dataset *out, fedl_error *err)
{
    struct stat st;
    char **names;
    size_t count;
    fedl_status status;
    if (buffer_rows == 0 || buffer_rows > ((size_t)1 << 24))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "CSV stream: a shuffle buffer of %zu rows (1 to 2^24)", buffer_rows);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return open_files(&path, 1, opts, schema, fit, buffer_rows, seed, alloc, out, err);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    memset(out, 0, sizeof *out);
    status = list_directory(path, alloc, &names, &count, err);
    if (status != FEDL_OK)
        return status;
    status = open_files((const char *const *)names, count, opts, schema, fit, buffer_rows, seed,
                        alloc, out, err);
    for (size_t i = 0; i < count; i++)
        fedl_mem_free(alloc, names[i], strlen(names[i]) + 1);
    fedl_mem_free(alloc, names, MAX_FILES * sizeof *names);
    return status;
}

fedl_status fedl_csv_dataset_open(const char *path, const fedl_csv_options *opts,
                                  const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err)
{
    struct stat st;
    char **names;
    size_t count;
    fedl_status status;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return fedl_csv_dataset_open_files(&path, 1, opts, schema, fit, alloc, out, err);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    memset(out, 0, sizeof *out);
    status = list_directory(path, alloc, &names, &count, err);
    if (status != FEDL_OK)
        return status;
    status = fedl_csv_dataset_open_files((const char *const *)names, count, opts, schema, fit,
                                         alloc, out, err);
    for (size_t i = 0; i < count; i++)
        fedl_mem_free(alloc, names[i], strlen(names[i]) + 1);
    fedl_mem_free(alloc, names, MAX_FILES * sizeof *names);
    return status;
}

const fedl_csv_fit *fedl_csv_dataset_fit(const fedl_dataset *ds)
{
    if (ds == NULL || ds->source.destroy != destroy)
        return NULL;
    return &((const csv_dataset *)ds->source.impl)->fit;
}

fedl_csv_info fedl_csv_dataset_info(const fedl_dataset *ds)
{
    fedl_csv_info none;
    if (ds == NULL || ds->source.destroy != destroy) {
        memset(&none, 0, sizeof none);
        return none;
    }
    return ((const csv_dataset *)ds->source.impl)->info;
}

/* ------------------------------------------------------- the fit on disk */

/*
 * A fit as bytes, stored with a model so that a file evaluated later is
 * read the way the training file was (all little-endian):
 *
 *   0   8   magic "FCSVFIT1"
 *   8   4   flags: bit 0 = numeric labels
 *   12  4   classes
 *   16  8   columns of the training file
 *   24  8   label column
 *   32  8   features F
 *   40  12  shape C, H, W (int32)
 *   52  8   bytes N of the label names
 *   60  8F  feature column indexes
 *   ..  4F  scale, then 4F shift, then 4F fill (float32)
 *   ..  N   label names in class order, each NUL-terminated (string labels)
 */
#define FIT_MAGIC "FCSVFIT1"
#define FIT_HEAD 60

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put_floats(uint8_t *p, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        put32(p + 4 * i, bits);
    }
}

static void get_floats(float *v, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = get32(p + 4 * i);
        memcpy(&v[i], &bits, sizeof bits);
    }
}

fedl_status fedl_csv_fit_encode(const fedl_csv_fit *fit, fedl_allocator *alloc, uint8_t **bytes,
                                size_t *length, fedl_error *err)
{
    size_t f = fit->features, size;
    size_t names = fit->numeric_labels || fit->regression ? 0 : fit->names_bytes;
    uint8_t *p;
    *bytes = NULL;
    *length = 0;
    size = FIT_HEAD + 8 * f + 12 * f + names;
    p = fedl_mem_alloc(alloc, size);
    if (p == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "CSV fit: cannot allocate %zu bytes", size);
    memcpy(p, FIT_MAGIC, 8);
    put32(p + 8, (fit->numeric_labels ? 1u : 0u) | (fit->regression ? 2u : 0u));
    put32(p + 12, (uint32_t)fit->classes);
    put64(p + 16, fit->file_columns);
    put64(p + 24, fit->label_column);
    put64(p + 32, f);
    put32(p + 40, (uint32_t)fit->shape.c);
    put32(p + 44, (uint32_t)fit->shape.h);
    put32(p + 48, (uint32_t)fit->shape.w);
    put64(p + 52, names);
    for (size_t j = 0; j < f; j++)
        put64(p + FIT_HEAD + 8 * j, fit->columns[j]);
    put_floats(p + FIT_HEAD + 8 * f, fit->scale, f);
    put_floats(p + FIT_HEAD + 12 * f, fit->shift, f);
    put_floats(p + FIT_HEAD + 16 * f, fit->fill, f);
    if (names > 0) { /* in class order: the sorted order */
        uint8_t *q = p + FIT_HEAD + 20 * f;
        for (int k = 0; k < fit->classes; k++) {
            const char *name = fit->names + fit->name_at[k];
            size_t len = strlen(name) + 1;
            memcpy(q, name, len);
            q += len;
        }
    }
    *bytes = p;
    *length = size;
    return FEDL_OK;
}

/* The label names of a decoded fit: classes NUL-terminated texts of at
 * most 255 bytes, strictly increasing (the order class ids were given in). */
static fedl_status decode_names(fedl_csv_fit *f, const uint8_t *p, size_t n, const char *name,
                                fedl_error *err)
{
    size_t at = 0;
    f->names = fedl_mem_alloc(f->alloc, n);
    f->name_at = fedl_mem_alloc(f->alloc, (size_t)f->classes * sizeof *f->name_at);
    if (f->names == NULL || f->name_at == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the labels", name);
    f->names_cap = f->names_bytes = n;
    f->name_at_cap = (size_t)f->classes;
    memcpy(f->names, p, n);
    for (int k = 0; k < f->classes; k++) {
        const char *end = at < n ? memchr(f->names + at, '\0', n - at) : NULL;
        if (end == NULL || (size_t)(end - (f->names + at)) > MAX_LABEL_BYTES ||
            end == f->names + at)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: CSV fit: label %d at byte %zu of the names is not a "
                                  "text of 1 to 255 bytes",
                                  name, k, at);
        f->name_at[k] = (uint32_t)at;
        if (k > 0 && strcmp(f->names + f->name_at[k - 1], f->names + at) >= 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: CSV fit: label names out of order at label %d", name, k);
        at = (size_t)(end - f->names) + 1;
    }
    if (at != n)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: CSV fit: %zu bytes after the last label name", name, n - at);
    return FEDL_OK;
}

/* The fixed-size head: checks every count against the length. */
static fedl_status decode_head(fedl_csv_fit *f, const uint8_t *p, size_t length, const char *name,
                               uint64_t *names, fedl_error *err)
{
    uint64_t features, columns, label;
    uint32_t flags;
    if (length < FIT_HEAD || memcmp(p, FIT_MAGIC, 8) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: not a CSV fit (magic, %zu bytes)", name,
                              length);
    flags = get32(p + 8);
    f->classes = (int)get32(p + 12);
    columns = get64(p + 16);
    label = get64(p + 24);
    features = get64(p + 32);
    f->shape = (fedl_shape){(int32_t)get32(p + 40), (int32_t)get32(p + 44), (int32_t)get32(p + 48)};
    *names = get64(p + 52);
    if (flags > 2 || get32(p + 12) > MAX_CLASSES || (flags == 2) != (f->classes == 0))
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: CSV fit: flags %u, %u classes", name,
                              flags, get32(p + 12));
    if (features == 0 || features > (1u << 24) || columns > (1u << 24) || label >= columns ||
        features >= columns)
        return fedl_error_set(
            err, FEDL_ERR_FORMAT, "%s: CSV fit: %llu features, label %llu of %llu columns", name,
            (unsigned long long)features, (unsigned long long)label, (unsigned long long)columns);
    if (f->shape.c <= 0 || f->shape.h <= 0 || f->shape.w <= 0 ||
        (uint64_t)f->shape.c * (uint64_t)f->shape.h * (uint64_t)f->shape.w != features)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: CSV fit: shape does not hold %llu "
                              "features",
                              name, (unsigned long long)features);
    if (*names > length || length - *names != FIT_HEAD + 20 * features ||
        (flags == 0) != (*names != 0))
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: CSV fit: %zu bytes do not hold %llu features and %llu bytes "
                              "of names",
                              name, length, (unsigned long long)features,
                              (unsigned long long)*names);
    f->numeric_labels = flags == 1;
    f->regression = flags == 2;
    f->file_columns = (size_t)columns;
    f->label_column = (size_t)label;
    return fit_alloc_features(f->alloc, f, (size_t)features, err);
}

fedl_status fedl_csv_fit_decode(const uint8_t *bytes, size_t length, const char *name,
                                fedl_allocator *alloc, fedl_csv_fit **out, fedl_error *err)
{
    fedl_csv_fit *f;
    uint64_t names = 0;
    fedl_status st;
    *out = NULL;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    f = fedl_mem_alloc(alloc, sizeof *f);
    if (f == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a CSV fit", name);
    f->alloc = alloc;
    st = decode_head(f, bytes, length, name, &names, err);
    for (size_t j = 0; st == FEDL_OK && j < f->features; j++) {
        f->columns[j] = (size_t)get64(bytes + FIT_HEAD + 8 * j);
        if (f->columns[j] >= f->file_columns || f->columns[j] == f->label_column)
            st = fedl_error_set(err, FEDL_ERR_FORMAT,
                                "%s: CSV fit: feature %zu names column %zu of %zu (label %zu)",
                                name, j, f->columns[j], f->file_columns, f->label_column);
    }
    if (st == FEDL_OK) {
        get_floats(f->scale, bytes + FIT_HEAD + 8 * f->features, f->features);
        get_floats(f->shift, bytes + FIT_HEAD + 12 * f->features, f->features);
        get_floats(f->fill, bytes + FIT_HEAD + 16 * f->features, f->features);
        for (size_t j = 0; st == FEDL_OK && j < f->features; j++)
            if (!isfinite(f->scale[j]) || !isfinite(f->shift[j]) || !isfinite(f->fill[j]))
                st = fedl_error_set(err, FEDL_ERR_FORMAT,
                                    "%s: CSV fit: feature %zu has a value that is not finite", name,
                                    j);
    }
    if (st == FEDL_OK && names > 0)
        st = decode_names(f, bytes + FIT_HEAD + 20 * f->features, (size_t)names, name, err);
    if (st != FEDL_OK) {
        fedl_csv_fit_free(f);
        return st;
    }
    *out = f;
    return FEDL_OK;
}

void fedl_csv_fit_free(fedl_csv_fit *fit)
{
    fedl_allocator *alloc;
    if (fit == NULL)
        return;
    alloc = fit->alloc;
    fit_free(alloc, fit);
    fedl_mem_free(alloc, fit, sizeof *fit);
}

fedl_shape fedl_csv_fit_shape(const fedl_csv_fit *fit)
{
    return fit->shape;
}

/* ------------------------------------------------------ a kept index */

fedl_status fedl_csv_dataset_index(const fedl_dataset *ds, fedl_csv_index *out, fedl_error *err)
{
    const csv_dataset *d;
    memset(out, 0, sizeof *out);
    if (ds == NULL || ds->source.destroy != destroy)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "not a CSV data set");
    d = ds->source.impl;
    out->rows = d->rows;
    out->count = d->count;
    out->fit = &d->fit;
    out->info = d->info;
    return FEDL_OK;
}

/* Every row of a kept index lies in its file. */
static fedl_status check_rows(const csv_dataset *d, const fedl_csv_row *rows, size_t count,
                              fedl_error *err)
{
    uint64_t size[MAX_FILES];
    for (size_t i = 0; i < d->file_count; i++) {
        struct stat st;
        if (stat(d->paths[i], &st) != 0)
            return fedl_error_set(err, FEDL_ERR_IO, "%s: %s", d->paths[i], strerror(errno));
        size[i] = (uint64_t)st.st_size;
    }
    for (size_t i = 0; i < count; i++)
        if (rows[i].file >= d->file_count || rows[i].offset >= size[rows[i].file] ||
            rows[i].line == 0)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "CSV index: row %zu (file %u, byte %llu, line %u) is not in "
                                  "the data",
                                  i, rows[i].file, (unsigned long long)rows[i].offset,
                                  rows[i].line);
    return FEDL_OK;
}

fedl_status fedl_csv_dataset_open_indexed(const char *const *paths, size_t count,
                                          const fedl_csv_options *opts,
                                          const fedl_csv_schema *schema,
                                          const fedl_csv_index *index, fedl_allocator *alloc,
                                          fedl_dataset *out, fedl_error *err)
{
    fedl_csv_options o = opts != NULL ? *opts : fedl_csv_defaults();
    fedl_csv_schema sch = schema != NULL ? *schema : fedl_csv_schema_defaults();
    const fedl_csv_fit *given = index->fit;
    csv_dataset *d;
    fedl_status st;
    memset(out, 0, sizeof *out);
    if (index->count == 0 || given == NULL || index->info.features != given->features)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "CSV index: empty or inconsistent");
    st = new_dataset(paths, count, &sch, &alloc, &d, err);
    if (st != FEDL_OK)
        return st;
    d->info = index->info;
    d->info.features = 0; /* set again from the fit's columns */
    st = check_rows(d, index->rows, index->count, err);
    if (st == FEDL_OK)
        st = fit_copy(alloc, given, &d->fit, err);
    if (st == FEDL_OK)
        st = columns_of_fit(d, paths[0], given->file_columns, err);
    if (st == FEDL_OK) {
        d->rows = fedl_mem_alloc(alloc, index->count * sizeof *d->rows);
        if (d->rows == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM, "CSV data set: cannot allocate the index");
    }
    if (st == FEDL_OK) {
        memcpy(d->rows, index->rows, index->count * sizeof *d->rows);
        d->count = d->rows_cap = index->count;
        d->file_columns = given->file_columns;
        st = settle_shape(&sch, given, d->info.features, paths[0], err);
    }
    if (st != FEDL_OK) {
        destroy(d);
        return st;
    }
    finish_open(d, &o, &sch, given, out);
    return FEDL_OK;
}
