/*
 * csv_parse.c - how fast fedl's CSV reader turns a file into float rows, the
 * C side of bench/csv_parse.sh.
 *
 *   build/csv_parse train.csv                  (Fashion-MNIST as CSV)
 *   build/csv_parse --buffer 1M --repeat 3 train.csv.gz
 *
 * Each round opens the file with fedl_csv_open (the header is read there),
 * converts every field of every record to float32 with
 * fedl_csv_field_float into one row buffer x (columns) and adds the row to
 * a checksum (so the work cannot be optimised away, and so the sum can be
 * compared with what pandas reads), then closes it. Reported per round: rows,
 * fields, file bytes, seconds (open to close, CLOCK_MONOTONIC), MB/s
 * (1 MB = 1e6 bytes of the file as stored), rows/s and the checksum; at the
 * end the peak RSS of the process (ru_maxrss). A field that is not a number
 * is an error (exit 1) naming its line and column.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "fedl/fedl.h"

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: csv_parse [--buffer SIZE] [--no-header] [--repeat N] FILE\n");
}

/* One pass over path; 0, or 1 with the reader's message on stderr. */
static int parse_once(const char *path, const fedl_csv_options *opts, uint64_t *rows,
                      uint64_t *fields, double *checksum)
{
    fedl_csv_reader *r = NULL;
    fedl_error err = {0};
    float *x = NULL; /* (columns) one row */
    size_t columns = 0;
    int more = 0, rc = 0;
    fedl_status status;
    *rows = *fields = 0;
    *checksum = 0.0;
    if (fedl_csv_open(path, opts, NULL, &r, &err) != FEDL_OK) {
        fprintf(stderr, "csv_parse: %s\n", err.message);
        return 1;
    }
    while ((status = fedl_csv_next_record(r, &more, &err)) == FEDL_OK && more) {
        size_t n = fedl_csv_field_count(r);
        double row_sum = 0.0;
        if (x == NULL) {
            columns = n;
            x = malloc((columns > 0 ? columns : 1) * sizeof *x);
            if (x == NULL) {
                fprintf(stderr, "csv_parse: out of memory\n");
                rc = 1;
                break;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (fedl_csv_field_float(r, i, &x[i], NULL, &err) != FEDL_OK) {
                fprintf(stderr, "csv_parse: %s\n", err.message);
                rc = 1;
                break;
            }
        }
        if (rc != 0)
            break;
        for (size_t i = 0; i < n; i++)
            row_sum += x[i];
        *checksum += row_sum;
        *fields += n;
        (*rows)++;
    }
    if (rc == 0 && status != FEDL_OK) {
        fprintf(stderr, "csv_parse: %s\n", err.message);
        rc = 1;
    }
    free(x);
    fedl_csv_close(r);
    return rc;
}

int main(int argc, char **argv)
{
    fedl_csv_options opts = fedl_csv_defaults();
    const char *path = NULL;
    int repeat = 1;
    struct stat st;
    struct rusage usage_now;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) {
            fedl_error err = {0};
            if (fedl_parse_size(argv[++i], &opts.buffer_bytes, &err) != FEDL_OK) {
                fprintf(stderr, "csv_parse: --buffer: %s\n", err.message);
                return 2;
            }
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-header") == 0) {
            opts.has_header = 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || path != NULL) {
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL || repeat < 1) {
        usage(stderr);
        return 2;
    }
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    for (int round = 1; round <= repeat; round++) {
        uint64_t rows, fields;
        double checksum, t0 = seconds_now(), seconds;
        if (parse_once(path, &opts, &rows, &fields, &checksum) != 0)
            return 1;
        seconds = seconds_now() - t0;
        printf("round %d: rows %llu fields %llu bytes %lld seconds %.4f MB/s %.1f rows/s %.0f "
               "checksum %.17g\n",
               round, (unsigned long long)rows, (unsigned long long)fields, (long long)st.st_size,
               seconds, (double)st.st_size / seconds / 1e6, (double)rows / seconds, checksum);
    }
    getrusage(RUSAGE_SELF, &usage_now);
    printf("peak RSS %ld KiB (buffer %zu bytes)\n", usage_now.ru_maxrss, opts.buffer_bytes);
    return 0;
}
