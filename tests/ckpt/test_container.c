/* test_container.c - the sectioned container: sections round-trip (borrowed,
 * copied, float arrays, empty), the buffer form equals the written file, the
 * layout is the documented one (64-byte alignment, CRCs where docs/FORMAT.md
 * puts them), the writer refuses bad input, and every reader check fires
 * with its own message, offsets and lengths near UINT64_MAX included,
 * without reading outside the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"
#include "support/test_support.h"

/* ------------------------------------------------------------------ helpers */

/* Byte offset of table entry i, and of the table CRC. */
static size_t entry_at(int i)
{
    return 32 + 48 * (size_t)i;
}

static size_t table_crc_at(const uint8_t *b)
{
    return 32 + 48 * (size_t)fedl_get_u32(b + 20);
}

/* After editing a file by hand: recompute the section CRCs (if asked), the
 * table CRC and the trailer CRC, so that only the edited check can fail. */
static void reseal(uint8_t *b, size_t length, int sections_too)
{
    size_t table_end = table_crc_at(b);
    if (sections_too)
        for (uint32_t i = 0; i < fedl_get_u32(b + 20); i++) {
            uint8_t *e = b + entry_at((int)i);
            fedl_put_u32(e + 40,
                         fedl_crc32c(0, b + fedl_get_u64(e + 24), (size_t)fedl_get_u64(e + 32)));
        }
    fedl_put_u32(b + table_end, fedl_crc32c(0, b, table_end));
    fedl_put_u32(b + length - 4, fedl_crc32c(0, b, length - 8));
}

static void reseal_table(uint8_t *b)
{
    size_t table_end = table_crc_at(b);
    fedl_put_u32(b + table_end, fedl_crc32c(0, b, table_end));
}

/* The sample file: "alpha" (100 borrowed bytes), "beta" (40 copied bytes),
 * "floats" (7 floats), "empty" (0 bytes). */
static const uint8_t *alpha_bytes(void)
{
    static uint8_t alpha[100];
    for (int i = 0; i < 100; i++)
        alpha[i] = (uint8_t)(i * 7 + 1);
    return alpha;
}

static const float sample_floats[7] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f, 65504.0f};

static void make_sample(uint8_t **bytes, size_t *length)
{
    fedl_container_writer *w;
    fedl_error err;
    uint8_t beta[40];
    memset(beta, 0xb7, sizeof beta);
    assert_int_equal(fedl_container_writer_create(FEDL_FILE_MODEL, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_add(w, "alpha", FEDL_SECTION_MODEL, alpha_bytes(), 100, &err),
                     FEDL_OK);
    assert_int_equal(fedl_container_add_copy(w, "beta", FEDL_SECTION_META, beta, sizeof beta, &err),
                     FEDL_OK);
    memset(beta, 0, sizeof beta); /* the writer holds its own copy */
    assert_int_equal(
        fedl_container_add_floats(w, "floats", FEDL_SECTION_PARAMS, sample_floats, 7, &err),
        FEDL_OK);
    assert_int_equal(fedl_container_add(w, "empty", (fedl_section_kind)77, NULL, 0, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, bytes, length, &err), FEDL_OK);
    assert_int_equal(*length, fedl_container_size(w));
    fedl_container_writer_destroy(w);
}

/* Parse a heap copy of exactly length bytes (so ASan sees any read past
 * the end) and check the message contains needle. */
static void expect_reject(const uint8_t *bytes, size_t length, const char *needle)
{
    uint8_t *copy = malloc(length > 0 ? length : 1);
    fedl_container c;
    fedl_error err = {0};
    assert_non_null(copy);
    memcpy(copy, bytes, length);
    if (fedl_container_parse(copy, length, "f.fedl", &c, &err) != FEDL_ERR_FORMAT)
        fail_msg("accepted a file that should fail with '%s'", needle);
    free(copy);
    assert_int_equal(err.status, FEDL_ERR_FORMAT);
    assert_int_equal(c.section_count, 0);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, needle);
    if (strstr(err.message, "f.fedl") == NULL)
        fail_msg("message '%s' does not name the file", err.message);
}

/* A copy of the sample to edit; *length receives its size. */
static uint8_t *sample_copy(size_t *length)
{
    uint8_t *bytes, *copy;
    make_sample(&bytes, length);
    copy = malloc(*length);
    assert_non_null(copy);
    memcpy(copy, bytes, *length);
    fedl_mem_free(NULL, bytes, *length);
    return copy;
}

/* -------------------------------------------------------------------- tests */

static void test_container_round_trips_borrowed_copied_float_and_empty_sections(void **state)
{
    uint8_t *bytes, beta[40];
    size_t length;
    fedl_container c;
    fedl_error err;
    const fedl_section *s;
    float floats[7];
    (void)state;
    make_sample(&bytes, &length);
    assert_int_equal(fedl_container_parse(bytes, length, "sample", &c, &err), FEDL_OK);
    assert_int_equal(c.version, FEDL_CONTAINER_VERSION);
    assert_int_equal(c.file_kind, FEDL_FILE_MODEL);
    assert_int_equal(c.section_count, 4);
    assert_ptr_equal(c.bytes, bytes);
    assert_int_equal(c.length, length);

    s = fedl_container_find(&c, "alpha");
    assert_non_null(s);
    assert_int_equal(s->kind, FEDL_SECTION_MODEL);
    assert_int_equal(s->length, 100);
    assert_memory_equal(fedl_container_data(&c, s), alpha_bytes(), 100);

    s = fedl_container_find(&c, "beta");
    assert_non_null(s);
    assert_int_equal(s->kind, FEDL_SECTION_META);
    memset(beta, 0xb7, sizeof beta);
    assert_memory_equal(fedl_container_data(&c, s), beta, sizeof beta);

    s = fedl_container_find(&c, "floats");
    assert_non_null(s);
    assert_int_equal(s->length, sizeof floats);
    for (int i = 0; i < 7; i++) { /* little-endian on disk whatever the host */
        uint32_t bits = fedl_get_u32(fedl_container_data(&c, s) + 4 * i);
        memcpy(&floats[i], &bits, 4);
    }
    assert_memory_equal(floats, sample_floats, sizeof floats);

    s = fedl_container_find(&c, "empty");
    assert_non_null(s);
    assert_int_equal(s->kind, 77); /* unknown kinds are kept, not refused */
    assert_int_equal(s->length, 0);
    assert_null(fedl_container_find(&c, "missing"));
    assert_null(fedl_container_find(&c, "alph"));
    fedl_mem_free(NULL, bytes, length);
}

static void test_container_layout_is_the_documented_one(void **state)
{
    uint8_t *b;
    size_t length;
    uint64_t previous_end;
    static const uint8_t magic[8] = {0x89, 'F', 'E', 'D', 'L', '\r', '\n', '\n'};
    (void)state;
    b = sample_copy(&length);
    assert_memory_equal(b, magic, 8);
    assert_int_equal(fedl_get_u32(b + 8), 2);
    assert_int_equal(fedl_get_u32(b + 12), 32 + 48 * 4 + 4);
    assert_int_equal(fedl_get_u32(b + 16), FEDL_FILE_MODEL);
    assert_int_equal(fedl_get_u32(b + 20), 4);
    assert_int_equal(fedl_get_u64(b + 24), length);
    assert_memory_equal(b + 32, "alpha\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_int_equal(fedl_get_u32(b + 224), fedl_crc32c(0, b, 224)); /* table CRC */
    previous_end = 228;
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = b + entry_at(i);
        uint64_t offset = fedl_get_u64(e + 24), len = fedl_get_u64(e + 32);
        assert_int_equal(fedl_get_u32(e + 20), 0);
        assert_int_equal(fedl_get_u32(e + 44), 0);
        assert_int_equal(offset % 64, 0);
        assert_true(offset >= previous_end && offset - previous_end < 64);
        for (uint64_t k = previous_end; k < offset; k++)
            assert_int_equal(b[k], 0); /* zero padding */
        assert_int_equal(fedl_get_u32(e + 40), fedl_crc32c(0, b + offset, (size_t)len));
        previous_end = offset + len;
    }
    assert_int_equal(previous_end, length - 8);
    assert_memory_equal(b + length - 8, "FEND", 4);
    /* the trailer CRC (combined from section CRCs by the writer) is the CRC
     * of every byte before it */
    assert_int_equal(fedl_get_u32(b + length - 4), fedl_crc32c(0, b, length - 8));
    free(b);
}

static void test_container_trailer_crc_is_right_for_many_section_sizes(void **state)
{
    static const size_t sizes[] = {0, 1, 3, 63, 64, 65, 127, 1000, 4096, 70001, 1 << 20};
    uint8_t *data = malloc(1 << 20);
    fedl_container_writer *w;
    fedl_container c;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    char name[16];
    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < (size_t)1 << 20; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(fedl_container_writer_create(FEDL_FILE_CHECKPOINT, NULL, &w, &err), FEDL_OK);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(name, sizeof name, "s%zu", i);
        assert_int_equal(fedl_container_add(w, name, FEDL_SECTION_META, data, sizes[i], &err),
                         FEDL_OK);
    }
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(fedl_get_u32(bytes + length - 4), fedl_crc32c(0, bytes, length - 8));
    assert_int_equal(fedl_container_parse(bytes, length, "sizes", &c, &err), FEDL_OK);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(c.sections[i].length, sizes[i]);
        assert_memory_equal(fedl_container_data(&c, &c.sections[i]), data, sizes[i]);
    }
    fedl_mem_free(NULL, bytes, length);
    fedl_container_writer_destroy(w);
    free(data);
}

static void test_container_write_equals_to_buffer(void **state)
{
    const char *dir = test_make_temp_dir("container");
    char path[512];
    fedl_container_writer *w;
    fedl_error err;
    uint8_t *bytes, *file;
    size_t length;
    FILE *f;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/c.fedl", dir);
    assert_int_equal(fedl_container_writer_create(FEDL_FILE_MODEL, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_add(w, "alpha", FEDL_SECTION_MODEL, alpha_bytes(), 100, &err),
                     FEDL_OK);
    assert_int_equal(
        fedl_container_add_floats(w, "floats", FEDL_SECTION_PARAMS, sample_floats, 7, &err),
        FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err), FEDL_OK);
    assert_int_equal(fedl_container_write(w, NULL, path, &err), FEDL_OK);
    file = malloc(length + 1);
    assert_non_null(file);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(file, 1, length + 1, f), length);
    fclose(f);
    assert_memory_equal(file, bytes, length);
    free(file);
    fedl_mem_free(NULL, bytes, length);
    fedl_container_writer_destroy(w);
    remove(path);
    rmdir(dir);
}

static void test_container_writer_refuses_bad_input(void **state)
{
    fedl_container_writer *w;
    fedl_error err = {0};
    uint8_t *bytes;
    size_t length;
    char name[8];
    uint8_t byte = 1;
    (void)state;
    assert_int_equal(fedl_container_writer_create((fedl_file_kind)9, NULL, &w, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_null(w);
    assert_int_equal(fedl_container_writer_create(FEDL_FILE_MODEL, NULL, &w, &err), FEDL_OK);
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "no sections"));
    assert_int_equal(fedl_container_add(w, "", FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_container_add(w, "Upper", FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_container_add(w, "a b", FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_container_add(w, "seventeen_chars_x", FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_container_add(w, NULL, FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_container_add(w, "nodata", FEDL_SECTION_META, NULL, 4, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "NULL data"));
    assert_int_equal(fedl_container_add(w, "sixteen_chars.-0", FEDL_SECTION_META, &byte, 1, &err),
                     FEDL_OK);
    assert_int_equal(
        fedl_container_add_copy(w, "sixteen_chars.-0", FEDL_SECTION_META, &byte, 1, &err),
        FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "added twice"));
    for (int i = 1; i < FEDL_CONTAINER_MAX_SECTIONS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(fedl_container_add(w, name, FEDL_SECTION_META, NULL, 0, &err), FEDL_OK);
    }
    assert_int_equal(fedl_container_add(w, "one_more", FEDL_SECTION_META, NULL, 0, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "32 sections"));
    /* a full writer still writes a valid file */
    assert_int_equal(fedl_container_to_buffer(w, NULL, &bytes, &length, &err), FEDL_OK);
    {
        fedl_container c;
        assert_int_equal(fedl_container_parse(bytes, length, "full", &c, &err), FEDL_OK);
        assert_int_equal(c.section_count, 32);
    }
    fedl_mem_free(NULL, bytes, length);
    fedl_container_writer_destroy(w);
    fedl_container_writer_destroy(NULL);
}

static void test_container_reader_header_checks(void **state)
{
    uint8_t *b;
    size_t length;
    (void)state;
    b = sample_copy(&length);

    expect_reject(b, 0, "0 bytes is shorter than a fedl file header (32 bytes)");
    expect_reject(b, 31, "31 bytes is shorter");

    memcpy(b, "FEDLMODL", 8);
    expect_reject(b, length, "legacy version-1 model file");
    memcpy(b,
           "\x89"
           "FEDL\n\n\n",
           8); /* CRLF -> LF damage */
    expect_reject(b, length, "text mode");
    memcpy(b, "PK\3\4zip!", 8);
    expect_reject(b, length, "not a fedl file");
    memcpy(b,
           "\x89"
           "FEDL\r\n\n",
           8);

    fedl_put_u32(b + 8, 3);
    expect_reject(b, length, "format version 3 at byte 8 is not supported");
    fedl_put_u32(b + 8, 1);
    expect_reject(b, length, "format version 1 at byte 8");
    fedl_put_u32(b + 8, 2);

    fedl_put_u32(b + 12, 232);
    expect_reject(b, length, "header length 232 at byte 12 does not match 4 sections");
    fedl_put_u32(b + 12, 32 + 48 * 4 + 4);

    fedl_put_u32(b + 20, 0);
    fedl_put_u32(b + 12, 36);
    expect_reject(b, length, "section count 0 at byte 20 is out of range (1..32)");
    fedl_put_u32(b + 20, 33);
    fedl_put_u32(b + 12, 32 + 48 * 33 + 4);
    expect_reject(b, length, "section count 33 at byte 20 is out of range");
    fedl_put_u32(b + 20, 0xffffffffu); /* 32 + 48N + 4 would overflow 32 bits */
    fedl_put_u32(b + 12, (uint32_t)(32 + 48 * (uint64_t)0xffffffffu + 4));
    expect_reject(b, length, "header length");
    fedl_put_u32(b + 20, 4);
    fedl_put_u32(b + 12, 32 + 48 * 4 + 4);

    {
        char needle[128];
        snprintf(needle, sizeof needle, "truncated: header says %zu bytes, file has %zu", length,
                 length - 1);
        expect_reject(b, length - 1, needle);
        fedl_put_u64(b + 24, (uint64_t)length - 64);
        snprintf(needle, sizeof needle, "header says %zu bytes, file has %zu (64 bytes appended",
                 length - 64, length);
        expect_reject(b, length, needle);
        fedl_put_u64(b + 24, UINT64_MAX);
        expect_reject(b, length, "truncated: header says 18446744073709551615 bytes");
        fedl_put_u64(b + 24, length);
    }
    /* a file too small for its own table (the stored length agrees) */
    {
        uint8_t small[256];
        memcpy(small, b, 232);
        fedl_put_u64(small + 24, 240);
        expect_reject(small, 240, "cannot hold the header and table of 4 sections");
    }

    b[100] ^= 0x04; /* inside the table */
    expect_reject(b, length, "header and section table: checksum mismatch");
    b[100] ^= 0x04;
    b[224] ^= 0x80; /* the table CRC itself */
    expect_reject(b, length, "checksum mismatch (CRC-32C stored");
    b[224] ^= 0x80;
    assert_int_equal(fedl_container_parse(b, length, "ok", &(fedl_container){0}, NULL), FEDL_OK);
    free(b);
}

/* Edit table entry `entry` field at `field` (a u32 or u64), reseal the table,
 * expect needle. */
static void expect_entry_reject(int entry, size_t field, uint64_t value, int wide,
                                const char *needle)
{
    size_t length;
    uint8_t *b = sample_copy(&length);
    if (wide)
        fedl_put_u64(b + entry_at(entry) + field, value);
    else
        fedl_put_u32(b + entry_at(entry) + field, (uint32_t)value);
    reseal(b, length, 0);
    expect_reject(b, length, needle);
    free(b);
}

static void test_container_reader_table_checks(void **state)
{
    size_t length;
    uint8_t *b;
    uint64_t alpha_offset, beta_offset;
    (void)state;
    b = sample_copy(&length);
    alpha_offset = fedl_get_u64(b + entry_at(0) + 24);
    beta_offset = fedl_get_u64(b + entry_at(1) + 24);
    free(b);

    /* names */
    expect_entry_reject(0, 0, 0x68706c41, 0, "name \"?lpha\" is not valid"); /* "Alpha" */
    expect_entry_reject(1, 0, 0, 0, "entry 1 (byte 80): name \"\" is not valid");
    expect_entry_reject(0, 8, 0x7a, 0, "entry 0 (byte 32): name \"alpha\" is not valid");
    b = sample_copy(&length);
    memcpy(b + entry_at(1), "alpha", 5); /* "alpha" twice ("beta" -> "alpha") */
    reseal(b, length, 0);
    expect_reject(b, length, "entry 1 (byte 80): name 'alpha' is already used by entry 0");
    free(b);

    /* reserved words */
    expect_entry_reject(2, 20, 1, 0,
                        "section 'floats' (table entry 2): reserved field at byte "
                        "148 is 00000001, must be 0");
    expect_entry_reject(3, 44, 0x100, 0, "reserved field at byte 220 is 00000100");

    /* offsets and lengths */
    expect_entry_reject(0, 24, 64, 1,
                        "offset 64 at byte 56 is inside the header and section "
                        "table (which end at byte 228)");
    expect_entry_reject(0, 24, alpha_offset + 1, 1, "is not a multiple of 64");
    expect_entry_reject(0, 24, UINT64_MAX - 63, 1, "run past the trailer");
    expect_entry_reject(0, 32, UINT64_MAX, 1, "length 18446744073709551615 (byte 64) run past");
    expect_entry_reject(0, 32, UINT64_MAX - alpha_offset + 1, 1, "run past the trailer");
    expect_entry_reject(3, 32, 9, 1, "run past the trailer at byte");
    expect_entry_reject(1, 24, alpha_offset, 1,
                        "section 'beta' at byte 256 overlaps the section "
                        "before it, which ends at byte 356");
    expect_entry_reject(0, 32, beta_offset - alpha_offset + 1, 1, "overlaps");

    /* unknown section kinds and file kinds are not errors */
    b = sample_copy(&length);
    fedl_put_u32(b + entry_at(0) + 16, 0xdeadbeef);
    fedl_put_u32(b + 16, 99);
    reseal(b, length, 0);
    {
        fedl_container c;
        fedl_error err;
        assert_int_equal(fedl_container_parse(b, length, "kinds", &c, &err), FEDL_OK);
        assert_int_equal(c.sections[0].kind, 0xdeadbeef);
        assert_int_equal(c.file_kind, 99);
    }
    free(b);
}

static void test_container_reader_trailer_and_section_checks(void **state)
{
    size_t length;
    uint8_t *b = sample_copy(&length);
    uint64_t beta_offset = fedl_get_u64(b + entry_at(1) + 24);
    char needle[160];
    (void)state;

    b[length - 7] = 'X';
    expect_reject(b, length, "no trailer");
    b[length - 7] = 'E';

    b[length - 1] ^= 0x01;
    expect_reject(b, length, "trailer: checksum mismatch");
    b[length - 1] ^= 0x01;

    /* a flip inside section 'beta': named with its bytes */
    b[beta_offset + 5] ^= 0x20;
    snprintf(needle, sizeof needle,
             "f.fedl: section 'beta' (bytes %llu..%llu): CRC-32C mismatch "
             "(stored ",
             (unsigned long long)beta_offset, (unsigned long long)beta_offset + 40);
    expect_reject(b, length, needle);
    /* the same with a resealed trailer (a crafted file): still the section */
    reseal(b, length, 0);
    expect_reject(b, length, needle);
    b[beta_offset + 5] ^= 0x20;
    reseal(b, length, 0);

    /* padding must be zero: with and without a matching trailer CRC */
    b[beta_offset - 1] = 1;
    snprintf(needle, sizeof needle, "padding byte %llu is 01, must be 0 (the trailer",
             (unsigned long long)beta_offset - 1);
    expect_reject(b, length, needle);
    reseal(b, length, 0);
    snprintf(needle, sizeof needle, "padding byte %llu is 01, must be 0",
             (unsigned long long)beta_offset - 1);
    expect_reject(b, length, needle);
    b[beta_offset - 1] = 0;
    reseal(b, length, 0);
    assert_int_equal(fedl_container_parse(b, length, "ok", &(fedl_container){0}, NULL), FEDL_OK);

    /* a section's stored CRC wrong in a resealed table */
    fedl_put_u32(b + entry_at(2) + 40, fedl_get_u32(b + entry_at(2) + 40) ^ 1);
    reseal_table(b);
    expect_reject(b, length, "section 'floats'");
    free(b);
}

/* Every prefix, and every single-bit flip, of the sample is rejected; each
 * parse reads a heap copy of exactly that size (ASan checks the bounds). */
static void test_container_reader_rejects_every_prefix_and_bit_flip(void **state)
{
    size_t length;
    uint8_t *b = sample_copy(&length);
    fedl_container c;
    fedl_error err;
    int rejected = 0, tried = 0;
    (void)state;
    for (size_t cut = 0; cut < length; cut++) {
        uint8_t *copy = malloc(cut + 1);
        assert_non_null(copy);
        memcpy(copy, b, cut);
        assert_int_equal(fedl_container_parse(copy, cut, "cut", &c, &err), FEDL_ERR_FORMAT);
        free(copy);
    }
    for (size_t bit = 0; bit < 8 * length; bit++) {
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tried++;
        rejected += fedl_container_parse(b, length, "flip", &c, &err) == FEDL_ERR_FORMAT;
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(rejected, tried);
    assert_int_equal(fedl_container_parse(b, length, "ok", &c, &err), FEDL_OK);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_round_trips_borrowed_copied_float_and_empty_sections),
        cmocka_unit_test(test_container_layout_is_the_documented_one),
        cmocka_unit_test(test_container_trailer_crc_is_right_for_many_section_sizes),
        cmocka_unit_test(test_container_write_equals_to_buffer),
        cmocka_unit_test(test_container_writer_refuses_bad_input),
        cmocka_unit_test(test_container_reader_header_checks),
        cmocka_unit_test(test_container_reader_table_checks),
        cmocka_unit_test(test_container_reader_trailer_and_section_checks),
        cmocka_unit_test(test_container_reader_rejects_every_prefix_and_bit_flip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
