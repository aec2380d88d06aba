/* test_idx.c - the IDX reader: header checks with messages that name the file
 * and field, plain and gzip files, truncation and trailing bytes, bounded
 * memory, and clean failure at every allocation. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "fedl/data.h"
#include "support/test_support.h"

static char temp_dir[256];

static int make_temp_dir(void **state)
{
    const char *dir = test_make_temp_dir("idx");
    (void)state;
    if (dir == NULL)
        return -1;
    snprintf(temp_dir, sizeof temp_dir, "%s", dir);
    return 0;
}

static int remove_temp_dir(void **state)
{
    DIR *d = opendir(temp_dir);
    struct dirent *entry;
    char path[512];
    (void)state;
    if (d == NULL)
        return -1;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", temp_dir, entry->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(temp_dir);
}

static const char *temp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

/* An IDX image with the given header; payload byte i is (i * 7 + 3) & 0xff.
 * Returns its length. */
static size_t make_idx(uint8_t *out, uint8_t type, int ndim, const uint32_t *dims, size_t payload)
{
    size_t at = 0;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = type;
    out[at++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        out[at++] = (uint8_t)(dims[i] >> 24);
        out[at++] = (uint8_t)(dims[i] >> 16);
        out[at++] = (uint8_t)(dims[i] >> 8);
        out[at++] = (uint8_t)dims[i];
    }
    for (size_t i = 0; i < payload; i++)
        out[at++] = (uint8_t)((i * 7 + 3) & 0xff);
    return at;
}

static void write_gzip(const char *path, const uint8_t *bytes, size_t length)
{
    gzFile gz = gzopen(path, "wb9");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, bytes, (unsigned)length), (int)length);
    assert_int_equal(gzclose(gz), Z_OK);
}

static uint8_t *read_whole(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    uint8_t *bytes;
    long size;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    bytes = malloc((size_t)size + 1);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *length = (size_t)size;
    return bytes;
}

static void assert_zeroed(const fedl_idx *idx)
{
    static const fedl_idx zero;
    assert_memory_equal(idx, &zero, sizeof zero);
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* Parse bytes expecting failure with status; the message must contain part. */
static void expect_parse_error(const uint8_t *bytes, size_t length, fedl_status status,
                               const char *part)
{
    fedl_allocator a;
    fedl_idx idx;
    fedl_error err;
    fedl_allocator_init(&a, NULL, NULL);
    fedl_error_clear(&err);
    assert_int_equal(fedl_idx_parse(bytes, length, "sample.idx", &a, &idx, &err), status);
    assert_int_equal(err.status, status);
    assert_contains(err.message, "sample.idx");
    assert_contains(err.message, part);
    assert_zeroed(&idx);
    assert_int_equal(a.stats.live_bytes, 0);
}

/* ----------------------------------------------------------------- parsing */

static void test_idx_parses_3d_images(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {2, 3, 4};
    size_t length = make_idx(bytes, 0x08, 3, dims, 24);
    fedl_allocator a;
    fedl_idx idx;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_idx_parse(bytes, length, "x", &a, &idx, NULL), FEDL_OK);
    assert_int_equal(idx.ndim, 3);
    assert_int_equal(idx.dims[0], 2);
    assert_int_equal(idx.dims[1], 3);
    assert_int_equal(idx.dims[2], 4);
    assert_int_equal(idx.size, 24);
    assert_memory_equal(idx.data, bytes + 16, 24);
    assert_int_equal(a.stats.live_bytes, 24);
    fedl_idx_free(&idx, &a);
    assert_zeroed(&idx);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_idx_parses_1d_labels(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[1] = {5};
    size_t length = make_idx(bytes, 0x08, 1, dims, 5);
    fedl_idx idx;
    (void)state;
    assert_int_equal(fedl_idx_parse(bytes, length, "labels", NULL, &idx, NULL), FEDL_OK);
    assert_int_equal(idx.ndim, 1);
    assert_int_equal(idx.dims[0], 5);
    assert_int_equal(idx.size, 5);
    assert_memory_equal(idx.data, bytes + 8, 5);
    fedl_idx_free(&idx, NULL);
}

static void test_idx_parses_4d_images(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[4] = {2, 3, 2, 2};
    size_t length = make_idx(bytes, 0x08, 4, dims, 24);
    fedl_idx idx;
    (void)state;
    assert_int_equal(fedl_idx_parse(bytes, length, "x", NULL, &idx, NULL), FEDL_OK);
    assert_int_equal(idx.ndim, 4);
    assert_int_equal(idx.dims[3], 2);
    assert_memory_equal(idx.data, bytes + 20, 24);
    fedl_idx_free(&idx, NULL);
}

static void test_idx_rejects_bad_magic(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[1] = {2};
    size_t length = make_idx(bytes, 0x08, 1, dims, 2);
    (void)state;
    bytes[1] = 0x01;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "magic bytes 0-1");
    bytes[0] = 0x1f;
    bytes[1] = 0x8b;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "gzip data, not IDX");
}

static void test_idx_rejects_float_type_as_unsupported(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[1] = {2};
    size_t length = make_idx(bytes, 0x0D, 1, dims, 2);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_UNSUPPORTED, "data type (byte 2) is 0x0d");
}

static void test_idx_rejects_unknown_type(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[1] = {2};
    size_t length = make_idx(bytes, 0x42, 1, dims, 2);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "data type (byte 2) is 0x42");
}

static void test_idx_rejects_dimension_count_zero_and_five(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[5] = {1, 1, 1, 1, 1};
    size_t length = make_idx(bytes, 0x08, 5, dims, 1);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "dimension count (byte 3) is 5");
    length = make_idx(bytes, 0x08, 0, dims, 0);
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "dimension count (byte 3) is 0");
}

static void test_idx_rejects_zero_dimension(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[3] = {10, 28, 0};
    size_t length = make_idx(bytes, 0x08, 3, dims, 0);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "dimension 2 (header bytes 12-15) is 0");
}

static void test_idx_rejects_dimension_product_overflow(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    size_t length = make_idx(bytes, 0x08, 4, dims, 4);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT, "overflows");
}

static void test_idx_rejects_short_header(void **state)
{
    uint8_t bytes[32];
    uint32_t dims[3] = {1, 2, 2};
    size_t length = make_idx(bytes, 0x08, 3, dims, 4);
    (void)state;
    (void)length;
    expect_parse_error(bytes, 3, FEDL_ERR_FORMAT, "too short for an IDX header");
    expect_parse_error(bytes, 10, FEDL_ERR_FORMAT, "header of 3 dimensions needs 16 bytes");
    expect_parse_error(NULL, 0, FEDL_ERR_FORMAT, "too short");
}

static void test_idx_rejects_truncated_payload(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {2, 3, 4};
    size_t length = make_idx(bytes, 0x08, 3, dims, 24);
    (void)state;
    expect_parse_error(bytes, length - 1, FEDL_ERR_FORMAT,
                       "payload is 23 bytes, header promises 24 (truncated?)");
}

static void test_idx_rejects_trailing_bytes(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {2, 3, 4};
    size_t length = make_idx(bytes, 0x08, 3, dims, 27);
    (void)state;
    expect_parse_error(bytes, length, FEDL_ERR_FORMAT,
                       "payload is 27 bytes, header promises 24 (3 trailing bytes)");
}

/* ------------------------------------------------------------------- files */

static void test_idx_reads_plain_file(void **state)
{
    uint8_t bytes[1024];
    uint32_t dims[3] = {3, 10, 20};
    size_t length = make_idx(bytes, 0x08, 3, dims, 600);
    const char *path = temp_path("plain-idx3-ubyte");
    fedl_allocator a;
    fedl_idx idx;
    fedl_error err;
    (void)state;
    assert_int_equal(test_write_file(path, bytes, length), 0);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_idx_read(path, &a, &idx, &err), FEDL_OK);
    assert_int_equal(idx.ndim, 3);
    assert_int_equal(idx.dims[0], 3);
    assert_int_equal(idx.dims[1], 10);
    assert_int_equal(idx.dims[2], 20);
    assert_int_equal(idx.size, 600);
    assert_memory_equal(idx.data, bytes + 16, 600);
    fedl_idx_free(&idx, &a);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_idx_reads_gzip_same_as_plain(void **state)
{
    static uint8_t bytes[70000];
    uint32_t dims[3] = {7, 100, 99};
    size_t length = make_idx(bytes, 0x08, 3, dims, 69300);
    fedl_idx plain, gz;
    fedl_error err;
    (void)state;
    assert_int_equal(test_write_file(temp_path("same-idx3-ubyte"), bytes, length), 0);
    write_gzip(temp_path("same-idx3-ubyte.gz"), bytes, length);
    assert_int_equal(fedl_idx_read(temp_path("same-idx3-ubyte"), NULL, &plain, &err), FEDL_OK);
    assert_int_equal(fedl_idx_read(temp_path("same-idx3-ubyte.gz"), NULL, &gz, &err), FEDL_OK);
    assert_int_equal(gz.ndim, plain.ndim);
    assert_memory_equal(gz.dims, plain.dims, sizeof gz.dims);
    assert_int_equal(gz.size, plain.size);
    assert_memory_equal(gz.data, plain.data, plain.size);
    fedl_idx_free(&plain, NULL);
    fedl_idx_free(&gz, NULL);
}

static void test_idx_gzip_is_detected_by_magic_not_name(void **state)
{
    uint8_t bytes[128];
    uint32_t dims[1] = {100};
    size_t length = make_idx(bytes, 0x08, 1, dims, 100);
    fedl_idx idx;
    (void)state;
    write_gzip(temp_path("labels-without-suffix"), bytes, length);
    test_write_file(temp_path("plain-named.gz"), bytes, length);
    assert_int_equal(fedl_idx_read(temp_path("labels-without-suffix"), NULL, &idx, NULL), FEDL_OK);
    assert_memory_equal(idx.data, bytes + 8, 100);
    fedl_idx_free(&idx, NULL);
    assert_int_equal(fedl_idx_read(temp_path("plain-named.gz"), NULL, &idx, NULL), FEDL_OK);
    assert_memory_equal(idx.data, bytes + 8, 100);
    fedl_idx_free(&idx, NULL);
}

static void test_idx_gzip_reads_concatenated_members(void **state)
{
    uint8_t bytes[128];
    uint32_t dims[1] = {100};
    size_t length = make_idx(bytes, 0x08, 1, dims, 100);
    size_t first_len, second_len;
    uint8_t *first, *second, *both;
    fedl_idx idx;
    fedl_error err;
    (void)state;
    /* gzip allows members back to back; `cat a.gz b.gz` is a valid file. */
    write_gzip(temp_path("part1.gz"), bytes, 40);
    write_gzip(temp_path("part2.gz"), bytes + 40, length - 40);
    first = read_whole(temp_path("part1.gz"), &first_len);
    second = read_whole(temp_path("part2.gz"), &second_len);
    both = malloc(first_len + second_len);
    assert_non_null(both);
    memcpy(both, first, first_len);
    memcpy(both + first_len, second, second_len);
    assert_int_equal(test_write_file(temp_path("members.gz"), both, first_len + second_len), 0);
    assert_int_equal(fedl_idx_read(temp_path("members.gz"), NULL, &idx, &err), FEDL_OK);
    assert_memory_equal(idx.data, bytes + 8, 100);
    fedl_idx_free(&idx, NULL);
    free(first);
    free(second);
    free(both);
}

static void expect_read_error(const char *path, fedl_status status, const char *part)
{
    fedl_allocator a;
    fedl_idx idx;
    fedl_error err;
    fedl_allocator_init(&a, NULL, NULL);
    fedl_error_clear(&err);
    assert_int_equal(fedl_idx_read(path, &a, &idx, &err), status);
    assert_contains(err.message, path);
    assert_contains(err.message, part);
    assert_zeroed(&idx);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_idx_read_rejects_truncated_plain_file_before_allocating(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {60000, 28, 28};
    size_t length = make_idx(bytes, 0x08, 3, dims, 40);
    const char *path = temp_path("short-idx3-ubyte");
    fedl_allocator a;
    fedl_idx idx;
    fedl_error err;
    (void)state;
    assert_int_equal(test_write_file(path, bytes, length), 0);
    expect_read_error(path, FEDL_ERR_FORMAT,
                      "payload is 40 bytes, header promises 47040000 (truncated?)");
    /* The 47 MB promise was refused by the file size, not by running out. */
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_idx_read(path, &a, &idx, &err), FEDL_ERR_FORMAT);
    assert_true(a.stats.peak_bytes < 65536);
}

static void test_idx_read_rejects_trailing_bytes_in_plain_file(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[1] = {10};
    size_t length = make_idx(bytes, 0x08, 1, dims, 15);
    const char *path = temp_path("long-idx1-ubyte");
    (void)state;
    assert_int_equal(test_write_file(path, bytes, length), 0);
    expect_read_error(path, FEDL_ERR_FORMAT,
                      "payload is 15 bytes, header promises 10 (5 trailing bytes)");
}

static void test_idx_read_names_field_of_bad_header(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {10, 28, 0};
    size_t length = make_idx(bytes, 0x08, 3, dims, 0);
    const char *path = temp_path("train-images-idx3-ubyte.gz");
    (void)state;
    write_gzip(path, bytes, length);
    expect_read_error(path, FEDL_ERR_FORMAT, "dimension 2 (header bytes 12-15) is 0");
    length = make_idx(bytes, 0x08, 3, dims, 0);
    bytes[0] = 0x50;
    write_gzip(path, bytes, length);
    expect_read_error(path, FEDL_ERR_FORMAT, "magic bytes 0-1 are 0x50 0x00");
    write_gzip(path, bytes, 2);
    expect_read_error(path, FEDL_ERR_FORMAT, "ends after 2 bytes, too short");
    length = make_idx(bytes, 0x08, 3, dims, 0);
    write_gzip(path, bytes, 9);
    expect_read_error(path, FEDL_ERR_FORMAT, "inside the dimensions");
}

static void test_idx_gzip_rejects_truncated_payload(void **state)
{
    static uint8_t bytes[20000];
    uint32_t dims[3] = {20, 31, 32};
    size_t length = make_idx(bytes, 0x08, 3, dims, 19840);
    const char *path = temp_path("cut-idx3-ubyte.gz");
    (void)state;
    write_gzip(path, bytes, length - 1000);
    expect_read_error(path, FEDL_ERR_FORMAT,
                      "payload is 18840 bytes, header promises 19840 (truncated?)");
}

static void test_idx_gzip_rejects_cut_stream(void **state)
{
    static uint8_t bytes[20000];
    uint32_t dims[3] = {20, 31, 32};
    size_t length = make_idx(bytes, 0x08, 3, dims, 19840);
    size_t gz_len;
    uint8_t *gz;
    const char *path = temp_path("cut-stream.gz");
    (void)state;
    write_gzip(path, bytes, length);
    gz = read_whole(path, &gz_len);
    /* Cut inside the deflate data, and then just the 8-byte trailer. */
    assert_int_equal(test_write_file(path, gz, gz_len / 2), 0);
    expect_read_error(path, FEDL_ERR_FORMAT, "truncated?");
    assert_int_equal(test_write_file(path, gz, gz_len - 8), 0);
    expect_read_error(path, FEDL_ERR_FORMAT, "gzip trailer or a following member is cut off");
    free(gz);
}

static void test_idx_gzip_rejects_corrupt_stream(void **state)
{
    static uint8_t bytes[20000];
    uint32_t dims[3] = {20, 31, 32};
    size_t length = make_idx(bytes, 0x08, 3, dims, 19840);
    size_t gz_len;
    uint8_t *gz;
    const char *path = temp_path("corrupt.gz");
    (void)state;
    write_gzip(path, bytes, length);
    gz = read_whole(path, &gz_len);
    gz[gz_len - 6] ^= 0x55; /* inside the CRC-32 of the trailer */
    assert_int_equal(test_write_file(path, gz, gz_len), 0);
    expect_read_error(path, FEDL_ERR_FORMAT, "gzip data is corrupt near compressed byte");
    free(gz);
}

static void test_idx_gzip_rejects_trailing_garbage_after_stream(void **state)
{
    uint8_t bytes[128];
    uint32_t dims[1] = {100};
    size_t length = make_idx(bytes, 0x08, 1, dims, 100);
    size_t gz_len;
    uint8_t *gz;
    const char *path = temp_path("garbage.gz");
    (void)state;
    write_gzip(path, bytes, length);
    gz = read_whole(path, &gz_len);
    gz = realloc(gz, gz_len + 4);
    assert_non_null(gz);
    memcpy(gz + gz_len, "junk", 4);
    assert_int_equal(test_write_file(path, gz, gz_len + 4), 0);
    expect_read_error(path, FEDL_ERR_FORMAT, "after the end of the gzip stream");
    free(gz);
}

static void test_idx_gzip_rejects_trailing_payload_bytes(void **state)
{
    uint8_t bytes[128];
    uint32_t dims[1] = {100};
    size_t length = make_idx(bytes, 0x08, 1, dims, 107);
    const char *path = temp_path("long.gz");
    (void)state;
    write_gzip(path, bytes, length);
    expect_read_error(path, FEDL_ERR_FORMAT,
                      "payload is 107 bytes, header promises 100 (7 trailing bytes)");
}

static void test_idx_gzip_refuses_promise_larger_than_file_can_hold(void **state)
{
    uint8_t bytes[64];
    uint32_t dims[3] = {60000, 28, 28};
    size_t length = make_idx(bytes, 0x08, 3, dims, 16);
    const char *path = temp_path("liar.gz");
    fedl_allocator a;
    fedl_idx idx;
    (void)state;
    write_gzip(path, bytes, length);
    expect_read_error(path, FEDL_ERR_FORMAT, "more than a gzip file of");
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_idx_read(path, &a, &idx, NULL), FEDL_ERR_FORMAT);
    assert_true(a.stats.peak_bytes < 131072);
}

static void test_idx_gzip_memory_is_payload_plus_fixed_overhead(void **state)
{
    static uint8_t bytes[300000];
    uint32_t dims[2] = {1000, 296};
    size_t length = make_idx(bytes, 0x08, 2, dims, 296000);
    const char *path = temp_path("bounded.gz");
    fedl_allocator a;
    fedl_idx idx;
    (void)state;
    write_gzip(path, bytes, length);
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_idx_read(path, &a, &idx, NULL), FEDL_OK);
    /* The payload, zlib's 32 KiB window and state, one 16 KiB input buffer. */
    assert_true(a.stats.peak_bytes <= 296000 + 65536);
    assert_int_equal(a.stats.live_bytes, 296000);
    fedl_idx_free(&idx, &a);
    assert_int_equal(a.stats.live_bytes, 0);
}

/* Serve bytes through a FIFO from a child process, a few bytes per write,
 * so the reader has no file size to check and sees short reads. */
static void read_through_fifo(const uint8_t *bytes, size_t length, fedl_status expect,
                              const char *part)
{
    char path[512];
    pid_t child;
    fedl_allocator a;
    fedl_idx idx;
    fedl_error err;
    fedl_status status;
    int child_status;
    snprintf(path, sizeof path, "%s", temp_path("fifo"));
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int fd = open(path, O_WRONLY);
        for (size_t at = 0; fd >= 0 && at < length; at += 7) {
            size_t n = length - at < 7 ? length - at : 7;
            if (write(fd, bytes + at, n) != (ssize_t)n)
                break;
        }
        _exit(0);
    }
    fedl_allocator_init(&a, NULL, NULL);
    fedl_error_clear(&err);
    status = fedl_idx_read(path, &a, &idx, &err);
    /* The data fit in the pipe's buffer, or the child died of SIGPIPE once
     * the reader closed its end: either way the child has finished. */
    assert_int_equal(waitpid(child, &child_status, 0), child);
    assert_int_equal(status, expect);
    if (status == FEDL_OK) {
        assert_memory_equal(idx.data, bytes + (length - idx.size), idx.size);
        fedl_idx_free(&idx, &a);
    } else {
        assert_contains(err.message, path);
        assert_contains(err.message, part);
        assert_zeroed(&idx);
    }
    assert_int_equal(a.stats.live_bytes, 0);
    unlink(path);
}

static void test_idx_reads_pipe_without_file_size(void **state)
{
    uint8_t bytes[256];
    uint32_t dims[2] = {10, 20};
    size_t length = make_idx(bytes, 0x08, 2, dims, 200);
    (void)state;
    read_through_fifo(bytes, length, FEDL_OK, NULL);
    read_through_fifo(bytes, length - 3, FEDL_ERR_FORMAT,
                      "payload is 197 bytes, header promises 200 (truncated?)");
    length = make_idx(bytes, 0x08, 2, dims, 205);
    read_through_fifo(bytes, length, FEDL_ERR_FORMAT,
                      "payload is 205 bytes, header promises 200 (5 trailing bytes)");
    read_through_fifo(bytes, 6, FEDL_ERR_FORMAT, "file ends after 6 bytes, inside the dimensions");
}

static void test_idx_read_reports_missing_file(void **state)
{
    (void)state;
    expect_read_error(temp_path("does-not-exist"), FEDL_ERR_IO, "cannot open");
}

static void test_idx_rejects_null_arguments(void **state)
{
    fedl_idx idx;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_idx_read(NULL, NULL, &idx, &err), FEDL_ERR_INVALID_ARG);
    assert_zeroed(&idx);
    assert_int_equal(fedl_idx_read("x", NULL, NULL, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_idx_parse(NULL, 4, "x", NULL, &idx, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_idx_parse(NULL, 0, "x", NULL, NULL, &err), FEDL_ERR_INVALID_ARG);
    fedl_idx_free(NULL, NULL);
}

/* ------------------------------------------------------- allocation failure */

typedef enum { VIA_PARSE, VIA_READ } idx_entry;

/* Fail allocation 1, 2, ... until the call succeeds: every failure must be
 * FEDL_ERR_NOMEM with nothing allocated and out zeroed. Returns the number of
 * allocations a successful call makes. */
static uint64_t fail_every_allocation(idx_entry entry, const char *path, const uint8_t *bytes,
                                      size_t length)
{
    for (uint64_t fail_at = 1;; fail_at++) {
        test_failing_alloc failing = {0, fail_at};
        fedl_allocator a;
        fedl_idx idx;
        fedl_error err;
        fedl_status status;
        fedl_allocator_init(&a, test_failing_alloc_fn, &failing);
        if (entry == VIA_PARSE)
            status = fedl_idx_parse(bytes, length, "mem", &a, &idx, &err);
        else
            status = fedl_idx_read(path, &a, &idx, &err);
        if (status == FEDL_OK) {
            assert_true(failing.requests < fail_at);
            assert_memory_equal(idx.data, bytes + (length - idx.size), idx.size);
            fedl_idx_free(&idx, &a);
            assert_int_equal(a.stats.live_bytes, 0);
            return fail_at - 1;
        }
        assert_int_equal(status, FEDL_ERR_NOMEM);
        assert_int_equal(err.status, FEDL_ERR_NOMEM);
        assert_zeroed(&idx);
        assert_int_equal(a.stats.live_bytes, 0);
        assert_int_equal(a.stats.allocs, a.stats.frees);
        assert_true(fail_at < 100);
    }
}

static void test_idx_fails_cleanly_on_every_allocation_failure(void **state)
{
    static uint8_t bytes[5000];
    uint32_t dims[3] = {4, 30, 40};
    size_t length = make_idx(bytes, 0x08, 3, dims, 4800);
    (void)state;
    assert_int_equal(test_write_file(temp_path("oom-plain"), bytes, length), 0);
    write_gzip(temp_path("oom.gz"), bytes, length);
    assert_int_equal(fail_every_allocation(VIA_PARSE, NULL, bytes, length), 1);
    /* plain: input buffer + payload */
    assert_int_equal(fail_every_allocation(VIA_READ, temp_path("oom-plain"), bytes, length), 2);
    /* gzip: input buffer, inflate state, window, payload */
    assert_true(fail_every_allocation(VIA_READ, temp_path("oom.gz"), bytes, length) >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_parses_3d_images),
        cmocka_unit_test(test_idx_parses_1d_labels),
        cmocka_unit_test(test_idx_parses_4d_images),
        cmocka_unit_test(test_idx_rejects_bad_magic),
        cmocka_unit_test(test_idx_rejects_float_type_as_unsupported),
        cmocka_unit_test(test_idx_rejects_unknown_type),
        cmocka_unit_test(test_idx_rejects_dimension_count_zero_and_five),
        cmocka_unit_test(test_idx_rejects_zero_dimension),
        cmocka_unit_test(test_idx_rejects_dimension_product_overflow),
        cmocka_unit_test(test_idx_rejects_short_header),
        cmocka_unit_test(test_idx_rejects_truncated_payload),
        cmocka_unit_test(test_idx_rejects_trailing_bytes),
        cmocka_unit_test(test_idx_reads_plain_file),
        cmocka_unit_test(test_idx_reads_gzip_same_as_plain),
        cmocka_unit_test(test_idx_gzip_is_detected_by_magic_not_name),
        cmocka_unit_test(test_idx_gzip_reads_concatenated_members),
        cmocka_unit_test(test_idx_read_rejects_truncated_plain_file_before_allocating),
        cmocka_unit_test(test_idx_read_rejects_trailing_bytes_in_plain_file),
        cmocka_unit_test(test_idx_read_names_field_of_bad_header),
        cmocka_unit_test(test_idx_gzip_rejects_truncated_payload),
        cmocka_unit_test(test_idx_gzip_rejects_cut_stream),
        cmocka_unit_test(test_idx_gzip_rejects_corrupt_stream),
        cmocka_unit_test(test_idx_gzip_rejects_trailing_garbage_after_stream),
        cmocka_unit_test(test_idx_gzip_rejects_trailing_payload_bytes),
        cmocka_unit_test(test_idx_gzip_refuses_promise_larger_than_file_can_hold),
        cmocka_unit_test(test_idx_gzip_memory_is_payload_plus_fixed_overhead),
        cmocka_unit_test(test_idx_reads_pipe_without_file_size),
        cmocka_unit_test(test_idx_read_reports_missing_file),
        cmocka_unit_test(test_idx_rejects_null_arguments),
        cmocka_unit_test(test_idx_fails_cleanly_on_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
