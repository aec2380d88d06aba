/* test_manifest.c - manifests: sorted entries, the exact text form and its
 * round trip, every parse error with its line and column, CRC damage,
 * reading and writing files, and a directory checked against its manifest
 * (truncated, grown, changed, missing and unlisted files named; temp files
 * of durable writes neither listed nor reported). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/ckpt.h"
#include "support/test_support.h"

#define HEX_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_0 "0000000000000000000000000000000000000000000000000000000000000000"

static void digest_of(const char *text, uint8_t digest[FEDL_SHA256_BYTES])
{
    fedl_sha256(text, strlen(text), digest);
}

/* body followed by a correct end line, in a static buffer. */
static const char *with_end(const char *body)
{
    static char text[8192];
    snprintf(text, sizeof text, "%send %08lx\n", body,
             (unsigned long)fedl_crc32c(0, body, strlen(body)));
    return text;
}

static void test_manifest_set_keeps_entries_sorted_and_replaces(void **state)
{
    fedl_manifest m;
    uint8_t d1[FEDL_SHA256_BYTES], d2[FEDL_SHA256_BYTES];
    fedl_allocator alloc;
    fedl_error err;
    const char *names[] = {"m", "b", "z", "a", "c"};
    (void)state;
    fedl_allocator_init(&alloc, NULL, NULL);
    fedl_manifest_init(&m, &alloc);
    digest_of("one", d1);
    digest_of("two", d2);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(fedl_manifest_set(&m, names[i], i, d1, &err), FEDL_OK);
    assert_int_equal(m.count, 5);
    assert_string_equal(m.entries[0].name, "a");
    assert_string_equal(m.entries[1].name, "b");
    assert_string_equal(m.entries[2].name, "c");
    assert_string_equal(m.entries[3].name, "m");
    assert_string_equal(m.entries[4].name, "z");
    /* replace: same count, new values */
    assert_int_equal(fedl_manifest_set(&m, "c", 77, d2, &err), FEDL_OK);
    assert_int_equal(m.count, 5);
    assert_int_equal(fedl_manifest_find(&m, "c")->size, 77);
    assert_memory_equal(fedl_manifest_find(&m, "c")->sha256, d2, FEDL_SHA256_BYTES);
    assert_null(fedl_manifest_find(&m, "d"));
    assert_null(fedl_manifest_find(&m, ""));
    fedl_manifest_remove(&m, "a");
    fedl_manifest_remove(&m, "z");
    fedl_manifest_remove(&m, "not there");
    assert_int_equal(m.count, 3);
    assert_string_equal(m.entries[0].name, "b");
    assert_string_equal(m.entries[2].name, "m");
    assert_null(fedl_manifest_find(&m, "a"));
    assert_non_null(fedl_manifest_find(&m, "m"));
    /* many entries stay sorted through growth */
    for (int i = 0; i < 300; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%03d", (i * 7919) % 300);
        assert_int_equal(fedl_manifest_set(&m, name, (uint64_t)i, d1, &err), FEDL_OK);
    }
    assert_int_equal(m.count, 303);
    for (size_t i = 1; i < m.count; i++)
        assert_true(strcmp(m.entries[i - 1].name, m.entries[i].name) < 0);
    fedl_manifest_free(&m);
    assert_int_equal(m.count, 0);
    assert_int_equal(alloc.stats.live_bytes, 0);
}

static void test_manifest_set_rejects_bad_names(void **state)
{
    fedl_manifest m;
    uint8_t d[FEDL_SHA256_BYTES] = {0};
    char long_name[300];
    fedl_error err;
    const char *bad[] = {"", ".", "..", "a/b", "/a", "a b", "tab\there", "caf\xc3\xa9", "del\x7f"};
    (void)state;
    fedl_manifest_init(&m, NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(fedl_manifest_set(&m, bad[i], 1, d, &err), FEDL_ERR_INVALID_ARG);
        assert_int_equal(m.count, 0);
    }
    memset(long_name, 'x', sizeof long_name);
    long_name[FEDL_MANIFEST_NAME_MAX] = '\0';
    assert_int_equal(fedl_manifest_set(&m, long_name, 1, d, &err), FEDL_OK);
    long_name[FEDL_MANIFEST_NAME_MAX] = 'x';
    long_name[FEDL_MANIFEST_NAME_MAX + 1] = '\0';
    assert_int_equal(fedl_manifest_set(&m, long_name, 1, d, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "longer than 255"));
    assert_int_equal(fedl_manifest_set(&m, "...", 1, d, &err), FEDL_OK); /* a legal name */
    assert_int_equal(fedl_manifest_set(&m, ".hidden~!", 1, d, &err), FEDL_OK);
    assert_int_equal(m.count, 3);
    fedl_manifest_free(&m);
}

static void test_manifest_format_is_exact_and_round_trips(void **state)
{
    fedl_manifest m, back;
    uint8_t d[FEDL_SHA256_BYTES];
    fedl_allocator alloc;
    fedl_error err;
    char *text, *again;
    const char *expected;
    size_t length, again_length;
    (void)state;
    fedl_allocator_init(&alloc, NULL, NULL);
    fedl_manifest_init(&m, &alloc);
    digest_of("abc", d);
    assert_int_equal(fedl_manifest_set(&m, "ckpt-00000002.fedl", 18446744073709551615ull, d, &err),
                     FEDL_OK);
    assert_int_equal(fedl_manifest_set(&m, "B", 0, d, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_set(&m, "a", 3, d, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_format(&m, &alloc, &text, &length, &err), FEDL_OK);
    expected = with_end("fedl-manifest 1\n"
                        "0 " HEX_A " B\n"
                        "3 " HEX_A " a\n"
                        "18446744073709551615 " HEX_A " ckpt-00000002.fedl\n");
    assert_int_equal(length, strlen(expected));
    assert_memory_equal(text, expected, length);

    assert_int_equal(fedl_manifest_parse(text, length, "M", &alloc, &back, &err), FEDL_OK);
    assert_int_equal(back.count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(back.entries[i].name, m.entries[i].name);
        assert_int_equal(back.entries[i].size, m.entries[i].size);
        assert_memory_equal(back.entries[i].sha256, m.entries[i].sha256, FEDL_SHA256_BYTES);
    }
    assert_int_equal(fedl_manifest_format(&back, &alloc, &again, &again_length, &err), FEDL_OK);
    assert_int_equal(again_length, length);
    assert_memory_equal(again, text, length);
    fedl_mem_free(&alloc, text, length);
    fedl_mem_free(&alloc, again, again_length);
    fedl_manifest_free(&back);

    /* the empty manifest */
    fedl_manifest_free(&m);
    assert_int_equal(fedl_manifest_format(&m, &alloc, &text, &length, &err), FEDL_OK);
    assert_int_equal(length, strlen(with_end("fedl-manifest 1\n")));
    assert_memory_equal(text, with_end("fedl-manifest 1\n"), length);
    assert_int_equal(fedl_manifest_parse(text, length, "M", &alloc, &back, &err), FEDL_OK);
    assert_int_equal(back.count, 0);
    fedl_mem_free(&alloc, text, length);
    fedl_manifest_free(&back);

    /* entries filled by hand out of order are refused, not formatted */
    fedl_manifest_init(&m, &alloc);
    assert_int_equal(fedl_manifest_set(&m, "a", 1, d, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_set(&m, "b", 1, d, &err), FEDL_OK);
    m.entries[0].name[0] = 'c';
    assert_int_equal(fedl_manifest_format(&m, &alloc, &text, &length, &err), FEDL_ERR_INVALID_ARG);
    assert_null(text);
    fedl_manifest_free(&m);
    assert_int_equal(alloc.stats.live_bytes, 0);
}

typedef struct parse_case {
    const char *text; /* NULL: use body + a correct end line */
    const char *body;
    const char *where; /* "M:<line>:<column>: " */
    const char *what;  /* a substring of the message */
} parse_case;

static const char long_name_line[] =
    "1 " HEX_A " "
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"; /* 256 bytes */

static const parse_case parse_cases[] = {
    {"", NULL, "M:1:1: ", "empty file"},
    {"fedl-manifest 2\nend 00000000\n", NULL, "M:1:15: ", "expected \"fedl-manifest 1\""},
    {"fedl-manifest 1 \n", NULL, "M:1:16: ", "expected \"fedl-manifest 1\""},
    {"fedl-manifest 1\r\n", NULL, "M:1:16: ", "expected \"fedl-manifest 1\""},
    {"fedl-manifest", NULL, "M:1:14: ", "expected \"fedl-manifest 1\""},
    {"fedl-manifest 1", NULL, "M:1:16: ", "missing newline"},
    {"fedl-manifest 1\n", NULL, "M:2:1: ", "missing \"end\" line"},
    {"fedl-manifest 1\n1 " HEX_A " a\n", NULL, "M:3:1: ", "missing \"end\" line"},
    {NULL, "fedl-manifest 1\nx " HEX_A " a\n", "M:2:1: ", "expected the file size"},
    {NULL, "fedl-manifest 1\n\n", "M:2:1: ", "expected the file size"},
    {NULL, "fedl-manifest 1\n012 " HEX_A " a\n", "M:2:1: ", "leading zero"},
    {NULL, "fedl-manifest 1\n18446744073709551616 " HEX_A " a\n",
     "M:2:1: ", "does not fit in 64 bits"},
    {NULL, "fedl-manifest 1\n12\t" HEX_A " a\n", "M:2:3: ", "expected one space after the size"},
    {NULL, "fedl-manifest 1\n12  " HEX_A " a\n", "M:2:4: ", "expected 64 hex digits of SHA-256"},
    {NULL,
     "fedl-manifest 1\n1 " HEX_A " a\n5 ba7816bf8f01cfea41A140de5dae2223b00361a396177a9cb410ff61f2"
     "0015ad b\n",
     "M:3:21: ", "expected 64 hex digits of SHA-256"},
    {NULL, "fedl-manifest 1\n1 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a a\n",
     "M:2:66: ", "expected 64 hex digits of SHA-256"},
    {NULL, "fedl-manifest 1\n1 ba7816bf\n", "M:2:11: ", "the line ends"},
    {NULL, "fedl-manifest 1\n1 " HEX_A "0 a\n", "M:2:67: ", "expected one space after the SHA-256"},
    {NULL, "fedl-manifest 1\n1 " HEX_A "\n", "M:2:67: ", "expected one space after the SHA-256"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " \n", "M:2:68: ", "empty name"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " dir/a\n", "M:2:71: ", "'/' not allowed"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " ..\n", "M:2:68: ", "not a file name"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " .\n", "M:2:68: ", "not a file name"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " a b\n", "M:2:69: ", "byte 0x20"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " a\r\n", "M:2:69: ", "byte 0x0d"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " caf\xc3\xa9\n", "M:2:71: ", "byte 0xc3"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " b\n1 " HEX_A " a\n",
     "M:3:68: ", "\"a\" does not come after \"b\""},
    {NULL, "fedl-manifest 1\n1 " HEX_A " a\n2 " HEX_0 " a\n",
     "M:3:68: ", "names must be sorted (strcmp) and unique"},
    {NULL, "fedl-manifest 1\n1 " HEX_A " a\n1 " HEX_A " B\n", "M:3:68: ", "does not come after"},
    {"fedl-manifest 1\n1 " HEX_A " a", NULL, "M:2:69: ", "missing newline"},
    {"fedl-manifest 1\nend 1234567\n", NULL, "M:2:12: ", "expected 8 hex digits of CRC-32C"},
    {"fedl-manifest 1\nend 1234ABCD\n", NULL, "M:2:9: ", "expected 8 hex digits of CRC-32C"},
    {"fedl-manifest 1\nend 123456789\n", NULL, "M:2:13: ", "unexpected bytes after the CRC-32C"},
    {"fedl-manifest 1\nendx\n", NULL, "M:2:4: ", "expected \"end \""},
    {"fedl-manifest 1\nend 12345678", NULL, "M:2:13: ", "missing newline"},
    {"fedl-manifest 1\nend 00000000\n", NULL, "M:2:5: ", "CRC-32C mismatch"},
};

static void test_manifest_parse_errors_name_line_and_column(void **state)
{
    fedl_allocator alloc;
    fedl_manifest m;
    fedl_error err;
    char name_col[32];
    (void)state;
    fedl_allocator_init(&alloc, NULL, NULL);
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case *c = &parse_cases[i];
        const char *text = c->text != NULL ? c->text : with_end(c->body);
        fedl_status st = fedl_manifest_parse(text, strlen(text), "M", &alloc, &m, &err);
        if (st != FEDL_ERR_FORMAT || strncmp(err.message, c->where, strlen(c->where)) != 0 ||
            strstr(err.message, c->what) == NULL)
            fail_msg("case %zu: status %d, message \"%s\", wanted \"%s...%s\"", i, st, err.message,
                     c->where, c->what);
        assert_int_equal(m.count, 0);
        fedl_manifest_free(&m);
    }
    /* a name of 256 bytes: the 256th is the one too many */
    {
        char body[1024];
        snprintf(body, sizeof body, "fedl-manifest 1\n%s", long_name_line);
        assert_int_equal(
            fedl_manifest_parse(with_end(body), strlen(with_end(body)), "M", &alloc, &m, &err),
            FEDL_ERR_FORMAT);
        snprintf(name_col, sizeof name_col, "M:2:%d: ", 68 + 255);
        assert_non_null(strstr(err.message, name_col));
        assert_non_null(strstr(err.message, "longer than 255"));
    }
    /* NUL bytes inside the text are bytes like any other */
    {
        const char body[] = "fedl-manifest 1\n1 " HEX_A " a\0b\n";
        assert_int_equal(fedl_manifest_parse(body, sizeof body - 1, "M", &alloc, &m, &err),
                         FEDL_ERR_FORMAT);
        assert_non_null(strstr(err.message, "M:2:69: byte 0x00"));
    }
    /* bytes after the end line (which has the right CRC) */
    {
        char text[256];
        snprintf(text, sizeof text, "%sX", with_end("fedl-manifest 1\n"));
        assert_int_equal(fedl_manifest_parse(text, strlen(text), "M", &alloc, &m, &err),
                         FEDL_ERR_FORMAT);
        assert_non_null(strstr(err.message, "M:3:1: unexpected bytes after the end line"));
    }
    /* a NULL name is called "manifest" */
    assert_int_equal(fedl_manifest_parse("", 0, NULL, &alloc, &m, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "manifest:1:1: "));
    assert_int_equal(alloc.stats.live_bytes, 0);
}

static void test_manifest_crc_mismatch_is_detected(void **state)
{
    const char *good = with_end("fedl-manifest 1\n"
                                "3 " HEX_A " a\n"
                                "1024 " HEX_0 " b\n");
    const size_t length = strlen(good);
    /* a digest digit (line 2), a size digit (line 3), the CRC itself */
    const size_t positions[] = {20, 16 + 69, length - 2};
    char text[512];
    fedl_manifest m;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_manifest_parse(good, length, "MANIFEST", NULL, &m, &err), FEDL_OK);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.entries[1].size, 1024);
    fedl_manifest_free(&m);

    /* each change keeps the text well-formed: only the CRC can tell */
    for (size_t i = 0; i < 3; i++) {
        memcpy(text, good, length);
        text[positions[i]] = text[positions[i]] == '1' ? '2' : '1';
        assert_int_equal(fedl_manifest_parse(text, length, "MANIFEST", NULL, &m, &err),
                         FEDL_ERR_FORMAT);
        if (strstr(err.message, "MANIFEST:4:5: CRC-32C mismatch") == NULL)
            fail_msg("change at byte %zu: \"%s\"", positions[i], err.message);
        assert_int_equal(m.count, 0);
    }
}

static void test_manifest_parse_survives_every_allocation_failure(void **state)
{
    char body[8192] = "fedl-manifest 1\n";
    test_failing_alloc failing = {0, 0};
    fedl_allocator alloc;
    fedl_manifest m;
    fedl_error err;
    uint64_t requests;
    const char *text;
    (void)state;
    for (int i = 0; i < 40; i++) {
        char line[128];
        snprintf(line, sizeof line, "%d " HEX_A " f%02d\n", i, i);
        strcat(body, line);
    }
    text = with_end(body);
    fedl_allocator_init(&alloc, test_failing_alloc_fn, &failing);
    assert_int_equal(fedl_manifest_parse(text, strlen(text), "M", &alloc, &m, &err), FEDL_OK);
    assert_int_equal(m.count, 40);
    fedl_manifest_free(&m);
    requests = failing.requests;
    assert_true(requests >= 2);
    for (uint64_t n = 1; n <= requests; n++) {
        failing.requests = 0;
        failing.fail_at = n;
        assert_int_equal(fedl_manifest_parse(text, strlen(text), "M", &alloc, &m, &err),
                         FEDL_ERR_NOMEM);
        assert_int_equal(m.count, 0);
        fedl_manifest_free(&m);
        assert_int_equal(alloc.stats.live_bytes, 0);
    }
}

static void test_manifest_write_then_read_gives_the_same_entries(void **state)
{
    const char *made = test_make_temp_dir("manifest-rw");
    char dir[256], path[512];
    uint8_t d[FEDL_SHA256_BYTES];
    fedl_allocator alloc;
    fedl_manifest m, back;
    fedl_error err;
    (void)state;
    assert_non_null(made);
    snprintf(dir, sizeof dir, "%s", made);
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    fedl_allocator_init(&alloc, NULL, NULL);
    fedl_manifest_init(&m, &alloc);
    digest_of("x", d);
    assert_int_equal(fedl_manifest_set(&m, "one", 1, d, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_set(&m, "two", 2, d, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_write(NULL, path, &m, &err), FEDL_OK);
    assert_int_equal(fedl_manifest_read(path, &alloc, &back, &err), FEDL_OK);
    assert_int_equal(back.count, 2);
    assert_string_equal(back.entries[1].name, "two");
    assert_int_equal(back.entries[1].size, 2);
    assert_memory_equal(back.entries[0].sha256, d, FEDL_SHA256_BYTES);
    fedl_manifest_free(&back);
    /* a damaged file names itself with its path */
    assert_int_equal(test_write_file(path, "fedl-manifest 1\nend 00000000\n", 29), 0);
    assert_int_equal(fedl_manifest_read(path, &alloc, &back, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, ":2:5: CRC-32C mismatch"));
    remove(path);
    assert_int_equal(fedl_manifest_read(path, &alloc, &back, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "No such file"));
    fedl_manifest_free(&back);
    fedl_manifest_free(&m);
    assert_int_equal(alloc.stats.live_bytes, 0);
    rmdir(dir);
}

/* ----------------------------------------------------------- directories */

typedef struct data_dir {
    char dir[256];
    uint8_t a[100];
} data_dir;

static void path_in(const data_dir *t, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", t->dir, name);
}

static void make_data_dir(data_dir *t)
{
    const char *made = test_make_temp_dir("manifest-dir");
    char path[512], target[512];
    assert_non_null(made);
    snprintf(t->dir, sizeof t->dir, "%s", made);
    for (size_t i = 0; i < sizeof t->a; i++)
        t->a[i] = (uint8_t)(i * 37 + 1);
    path_in(t, "a.bin", path, sizeof path);
    assert_int_equal(test_write_file(path, t->a, sizeof t->a), 0);
    path_in(t, "b.txt", path, sizeof path);
    assert_int_equal(test_write_file(path, "abc", 3), 0);
    path_in(t, "empty", path, sizeof path);
    assert_int_equal(test_write_file(path, "", 0), 0);
    path_in(t, ".hidden", path, sizeof path);
    assert_int_equal(test_write_file(path, "skipped", 7), 0);
    path_in(t, "MANIFEST", path, sizeof path);
    assert_int_equal(test_write_file(path, "skipped too", 11), 0);
    path_in(t, "subdir", path, sizeof path);
    assert_int_equal(mkdir(path, 0755), 0);
    path_in(t, "b.txt", target, sizeof target);
    path_in(t, "link", path, sizeof path);
    assert_int_equal(symlink(target, path), 0); /* followed: listed with b.txt's content */
    path_in(t, "dangling", path, sizeof path);
    assert_int_equal(symlink("/nonexistent-fedl-target", path), 0);
}

static void remove_data_dir(const data_dir *t)
{
    const char *names[] = {"a.bin", "b.txt", "empty", ".hidden", "MANIFEST", "link", "dangling"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(t, names[i], path, sizeof path);
        unlink(path);
    }
    path_in(t, "subdir", path, sizeof path);
    rmdir(path);
    rmdir(t->dir);
}

static void expect_failure(const fedl_manifest *m, const data_dir *t, const char *name,
                           const char *what)
{
    char wanted[600];
    fedl_error err;
    snprintf(wanted, sizeof wanted, "%s/%s: %s", t->dir, name, what);
    assert_int_equal(fedl_manifest_verify_dir(m, t->dir, &err), FEDL_ERR_FORMAT);
    if (strstr(err.message, wanted) == NULL)
        fail_msg("\"%s\" lacks \"%s\"", err.message, wanted);
    assert_int_equal(fedl_manifest_check_file(m, t->dir, name, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, wanted));
}

static void test_manifest_build_dir_lists_regular_files_sorted(void **state)
{
    data_dir t;
    fedl_allocator alloc;
    fedl_manifest m;
    fedl_error err;
    uint8_t d[FEDL_SHA256_BYTES];
    (void)state;
    make_data_dir(&t);
    fedl_allocator_init(&alloc, NULL, NULL);
    assert_int_equal(fedl_manifest_build_dir(t.dir, "MANIFEST", &alloc, &m, &err), FEDL_OK);
    assert_int_equal(m.count, 4);
    assert_string_equal(m.entries[0].name, "a.bin");
    assert_string_equal(m.entries[1].name, "b.txt");
    assert_string_equal(m.entries[2].name, "empty");
    assert_string_equal(m.entries[3].name, "link");
    assert_int_equal(m.entries[0].size, 100);
    fedl_sha256(t.a, sizeof t.a, d);
    assert_memory_equal(m.entries[0].sha256, d, FEDL_SHA256_BYTES);
    assert_int_equal(m.entries[1].size, 3);
    assert_memory_equal(m.entries[3].sha256, m.entries[1].sha256, FEDL_SHA256_BYTES);
    assert_int_equal(fedl_manifest_verify_dir(&m, t.dir, &err), FEDL_OK);
    fedl_manifest_free(&m);
    /* without skip_name the MANIFEST file is listed too */
    assert_int_equal(fedl_manifest_build_dir(t.dir, NULL, &alloc, &m, &err), FEDL_OK);
    assert_int_equal(m.count, 5);
    assert_string_equal(m.entries[0].name, "MANIFEST");
    fedl_manifest_free(&m);
    assert_int_equal(alloc.stats.live_bytes, 0);
    remove_data_dir(&t);
}

static void test_manifest_verify_dir_names_truncated_grown_changed_and_missing_files(void **state)
{
    data_dir t;
    fedl_manifest m;
    fedl_error err;
    char path[512], wanted[256], hex[65];
    uint8_t changed[100], d[FEDL_SHA256_BYTES];
    (void)state;
    make_data_dir(&t);
    assert_int_equal(fedl_manifest_build_dir(t.dir, "MANIFEST", NULL, &m, &err), FEDL_OK);
    path_in(&t, "a.bin", path, sizeof path);

    assert_int_equal(test_write_file(path, t.a, 50), 0);
    expect_failure(&m, &t, "a.bin", "50 bytes, the manifest says 100 (truncated)");

    memcpy(changed, t.a, sizeof changed);
    assert_int_equal(test_write_file(path, changed, 100), 0);
    {
        FILE *f = fopen(path, "ab");
        assert_non_null(f);
        fputc('!', f);
        fclose(f);
    }
    expect_failure(&m, &t, "a.bin", "101 bytes, the manifest says 100 (grown)");

    changed[42] ^= 0x10; /* one byte, same size */
    assert_int_equal(test_write_file(path, changed, 100), 0);
    fedl_sha256(changed, 100, d);
    fedl_sha256_hex(d, hex);
    snprintf(wanted, sizeof wanted, "content changed (SHA-256 %s, manifest ", hex);
    expect_failure(&m, &t, "a.bin", wanted);
    assert_int_equal(fedl_manifest_check_file(&m, t.dir, "a.bin", &err), FEDL_ERR_FORMAT);
    fedl_sha256_hex(m.entries[0].sha256, hex);
    snprintf(wanted, sizeof wanted, ", manifest %s)", hex);
    assert_non_null(strstr(err.message, wanted));

    assert_int_equal(test_write_file(path, t.a, 100), 0);
    assert_int_equal(fedl_manifest_verify_dir(&m, t.dir, &err), FEDL_OK);
    path_in(&t, "empty", path, sizeof path);
    unlink(path);
    expect_failure(&m, &t, "empty", "listed in the manifest but missing");

    assert_int_equal(fedl_manifest_check_file(&m, t.dir, "other", &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "not listed"));
    fedl_manifest_free(&m);

    /* a file whose name a manifest cannot hold is refused, by name */
    path_in(&t, "a b", path, sizeof path);
    assert_int_equal(test_write_file(path, "x", 1), 0);
    assert_int_equal(fedl_manifest_build_dir(t.dir, "MANIFEST", NULL, &m, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "a b"));
    assert_int_equal(m.count, 0);
    unlink(path);
    remove_data_dir(&t);
    assert_int_equal(fedl_manifest_build_dir(t.dir, NULL, NULL, &m, &err), FEDL_ERR_IO);
}

static void test_manifest_build_dir_leaves_out_temp_files_of_durable_writes(void **state)
{
    data_dir t;
    fedl_manifest m;
    fedl_error err;
    char path[512];
    const char *temps[] = {"a.bin.tmp.4242", "MANIFEST.tmp.1", "new.tmp.77"};
    (void)state;
    make_data_dir(&t);
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
        path_in(&t, temps[i], path, sizeof path);
        assert_int_equal(test_write_file(path, "half", 4), 0);
    }
    /* a name that only looks like one is data */
    path_in(&t, "b.tmp.x1", path, sizeof path);
    assert_int_equal(test_write_file(path, "data", 4), 0);
    assert_int_equal(fedl_manifest_build_dir(t.dir, "MANIFEST", NULL, &m, &err), FEDL_OK);
    assert_int_equal(m.count, 5);
    assert_non_null(fedl_manifest_find(&m, "b.tmp.x1"));
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++)
        assert_null(fedl_manifest_find(&m, temps[i]));
    fedl_manifest_free(&m);
    unlink(path);
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
        path_in(&t, temps[i], path, sizeof path);
        unlink(path);
    }
    remove_data_dir(&t);
}

static void expect_unlisted(const fedl_manifest *m, const data_dir *t, const char *skip,
                            const char *name)
{
    char wanted[600];
    fedl_error err = {FEDL_OK, ""};
    snprintf(wanted, sizeof wanted, "%s/%s: not in the manifest", t->dir, name);
    assert_int_equal(fedl_manifest_check_unlisted(m, t->dir, skip, &err), FEDL_ERR_FORMAT);
    if (strcmp(err.message, wanted) != 0)
        fail_msg("\"%s\" is not \"%s\"", err.message, wanted);
}

static void test_manifest_check_unlisted_names_the_first_file_not_listed(void **state)
{
    data_dir t;
    fedl_allocator alloc;
    fedl_manifest m;
    fedl_error err;
    char path[512], target[512];
    (void)state;
    make_data_dir(&t);
    fedl_allocator_init(&alloc, NULL, NULL);
    assert_int_equal(fedl_manifest_build_dir(t.dir, "MANIFEST", &alloc, &m, &err), FEDL_OK);
    /* hidden files, skip_name, subdirectories, dangling symlinks: not data */
    assert_int_equal(fedl_manifest_check_unlisted(&m, t.dir, "MANIFEST", &err), FEDL_OK);
    /* without skip_name, MANIFEST is a file the manifest does not list */
    expect_unlisted(&m, &t, NULL, "MANIFEST");
    /* a temp file of a durable write (in flight or orphaned) is not data */
    path_in(&t, "a.bin.tmp.31337", path, sizeof path);
    assert_int_equal(test_write_file(path, "half", 4), 0);
    assert_int_equal(fedl_manifest_check_unlisted(&m, t.dir, "MANIFEST", &err), FEDL_OK);
    unlink(path);
    /* a symlink to a directory is not a regular file */
    path_in(&t, "subdir", target, sizeof target);
    path_in(&t, "dirlink", path, sizeof path);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(fedl_manifest_check_unlisted(&m, t.dir, "MANIFEST", &err), FEDL_OK);
    unlink(path);

    /* the first unlisted one in name order, whatever readdir's order */
    path_in(&t, "zz.gz", path, sizeof path);
    assert_int_equal(test_write_file(path, "z", 1), 0);
    expect_unlisted(&m, &t, "MANIFEST", "zz.gz");
    path_in(&t, "c.gz", path, sizeof path);
    assert_int_equal(test_write_file(path, "c", 1), 0);
    expect_unlisted(&m, &t, "MANIFEST", "c.gz");
    /* a symlink to a regular file counts (as build_dir lists it) */
    path_in(&t, "b.txt", target, sizeof target);
    path_in(&t, "bb-link", path, sizeof path);
    assert_int_equal(symlink(target, path), 0);
    expect_unlisted(&m, &t, "MANIFEST", "bb-link");
    unlink(path);
    /* an entry removed from the manifest makes its file unlisted */
    fedl_manifest_remove(&m, "a.bin");
    expect_unlisted(&m, &t, "MANIFEST", "a.bin");
    path_in(&t, "c.gz", path, sizeof path);
    unlink(path);
    path_in(&t, "zz.gz", path, sizeof path);
    unlink(path);
    expect_unlisted(&m, &t, "MANIFEST", "a.bin");
    fedl_manifest_free(&m);
    assert_int_equal(alloc.stats.live_bytes, 0);

    /* an empty manifest: every data file is unlisted, the first named */
    fedl_manifest_init(&m, NULL);
    expect_unlisted(&m, &t, "MANIFEST", "a.bin");
    remove_data_dir(&t);
    assert_int_equal(fedl_manifest_check_unlisted(&m, t.dir, NULL, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, t.dir));
    assert_int_equal(fedl_manifest_check_unlisted(NULL, t.dir, NULL, &err), FEDL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_set_keeps_entries_sorted_and_replaces),
        cmocka_unit_test(test_manifest_set_rejects_bad_names),
        cmocka_unit_test(test_manifest_format_is_exact_and_round_trips),
        cmocka_unit_test(test_manifest_parse_errors_name_line_and_column),
        cmocka_unit_test(test_manifest_crc_mismatch_is_detected),
        cmocka_unit_test(test_manifest_parse_survives_every_allocation_failure),
        cmocka_unit_test(test_manifest_write_then_read_gives_the_same_entries),
        cmocka_unit_test(test_manifest_build_dir_lists_regular_files_sorted),
        cmocka_unit_test(test_manifest_verify_dir_names_truncated_grown_changed_and_missing_files),
        cmocka_unit_test(test_manifest_build_dir_leaves_out_temp_files_of_durable_writes),
        cmocka_unit_test(test_manifest_check_unlisted_names_the_first_file_not_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
