/* test_csv.c - the streaming CSV reader: a conformance table (quoting, line
 * ends, BOM, header, blank and comment lines, delimiters, ragged rows,
 * stray quotes, overlong records, error positions) run through buffers of
 * every size and reads of every length, plus gzip files, pipes, seeking,
 * bounded memory, no allocation in steady state and clean failure at every
 * allocation. Number conversion is in test_csv_float.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "fedl/csv.h"
#include "support/test_support.h"

static char temp_dir[256];

static int make_temp_dir(void **state)
{
    const char *dir = test_make_temp_dir("csv");
    (void)state;
    if (dir == NULL)
        return -1;
    snprintf(temp_dir, sizeof temp_dir, "%s", dir);
    signal(SIGPIPE, SIG_IGN);
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

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* ------------------------------------------------------------ rendering */

/* Append text to out (a fixed buffer), failing the test when it overflows. */
typedef struct text_buf {
    char *data;
    size_t size;
    size_t length;
} text_buf;

static void put(text_buf *t, const char *s, size_t n)
{
    if (t->length + n + 1 > t->size)
        fail_msg("rendering overflows %zu bytes", t->size);
    memcpy(t->data + t->length, s, n);
    t->length += n;
    t->data[t->length] = '\0';
}

static void put_field(text_buf *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char esc[8];
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\n':
            put(t, "\\n", 2);
            break;
        case '\r':
            put(t, "\\r", 2);
            break;
        case '\0':
            put(t, "\\0", 2);
            break;
        case '|':
        case ']':
        case '\\':
            esc[0] = '\\';
            esc[1] = (char)c;
            put(t, esc, 2);
            break;
        default:
            put(t, (const char *)&c, 1);
        }
    }
}

/* Records as "L[f1|f2]" (L = the record's line), the header as "H[...]". */
static void render_record(const fedl_csv_reader *r, text_buf *t)
{
    char line[32];
    snprintf(line, sizeof line, "%llu[", (unsigned long long)fedl_csv_record_line(r));
    put(t, line, strlen(line));
    for (size_t i = 0; i < fedl_csv_field_count(r); i++) {
        size_t n;
        const char *s = fedl_csv_field(r, i, &n);
        assert_non_null(s);
        assert_int_equal(s[n], '\0'); /* every field is NUL-terminated */
        if (i > 0)
            put(t, "|", 1);
        put_field(t, s, n);
    }
    put(t, "]", 1);
}

static void render_header(const fedl_csv_reader *r, text_buf *t)
{
    if (fedl_csv_header_count(r) == 0)
        return;
    put(t, "H[", 2);
    for (size_t i = 0; i < fedl_csv_header_count(r); i++) {
        size_t n;
        const char *s = fedl_csv_header_name(r, i, &n);
        if (i > 0)
            put(t, "|", 1);
        put_field(t, s, n);
    }
    put(t, "]", 1);
}

/* ------------------------------------------------------ reading helpers */

/* A callback input over memory that hands out at most chunk bytes per call. */
typedef struct chunk_reader {
    const unsigned char *data;
    size_t length;
    size_t position;
    size_t chunk;
    long calls;
    long fail_at; /* call number that fails with FEDL_ERR_IO; 0 = never */
} chunk_reader;

static fedl_status chunk_read(void *ud, void *buffer, size_t capacity, size_t *got, fedl_error *err)
{
    chunk_reader *c = ud;
    size_t n = c->length - c->position;
    c->calls++;
    if (c->fail_at != 0 && c->calls == c->fail_at)
        return fedl_error_set(err, FEDL_ERR_IO, "test: injected read failure");
    if (n > capacity)
        n = capacity;
    if (n > c->chunk)
        n = c->chunk;
    memcpy(buffer, c->data + c->position, n);
    c->position += n;
    *got = n;
    return FEDL_OK;
}

typedef enum input_mode { MODE_MEMORY, MODE_CALLBACK } input_mode;

/* Open input in mode, read every record into out (header first), close.
 * Returns the first failure; out holds what was read before it. */
static fedl_status read_all(const void *input, size_t length, const fedl_csv_options *o,
                            input_mode mode, size_t chunk, text_buf *out, fedl_error *err)
{
    fedl_allocator a;
    fedl_csv_reader *r = NULL;
    fedl_status status;
    chunk_reader c = {input, length, 0, chunk, 0, 0};
    int more = 0;
    fedl_allocator_init(&a, NULL, NULL);
    out->length = 0;
    out->data[0] = '\0';
    if (mode == MODE_MEMORY)
        status = fedl_csv_open_memory(input, length, o, &a, &r, err);
    else
        status = fedl_csv_open_callback(chunk_read, &c, o, &a, &r, err);
    if (status != FEDL_OK) {
        assert_null(r);
        assert_int_equal(a.stats.live_bytes, 0);
        return status;
    }
    render_header(r, out);
    while ((status = fedl_csv_next_record(r, &more, err)) == FEDL_OK && more)
        render_record(r, out);
    if (status == FEDL_OK) {
        /* The end is sticky. */
        assert_int_equal(fedl_csv_next_record(r, &more, err), FEDL_OK);
        assert_int_equal(more, 0);
        assert_int_equal(fedl_csv_field_count(r), 0);
    } else {
        /* An error is final. */
        assert_int_equal(fedl_csv_field_count(r), 0);
        assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_ERR_STATE);
    }
    fedl_csv_close(r);
    assert_int_equal(a.stats.live_bytes, 0);
    return status;
}

/* ------------------------------------------------- the conformance table */

/* options: 'H' header, 'N' allow_nonfinite, 'd'<c> delimiter, 'q'<c> quote
 * ('q0' = none), 'c'<c> comment, 'b'<n>; buffer bytes, 'm'<n>; max fields. */
typedef struct csv_case {
    const char *name;
    const char *input;
    size_t length; /* 0 = strlen(input) */
    const char *options;
    const char *expect; /* rendering of header and records, or NULL */
    const char *error;  /* "line:column: substring" when an error is expected */
} csv_case;

static const csv_case cases[] = {
    {"simple records", "a,b\nc,d\n", 0, "", "1[a|b]2[c|d]", NULL},
    {"last line without newline", "a,b\nc,d", 0, "", "1[a|b]2[c|d]", NULL},
    {"CRLF line ends", "a,b\r\nc,d\r\n", 0, "", "1[a|b]2[c|d]", NULL},
    {"lone CR line ends", "a,b\rc,d\r", 0, "", "1[a|b]2[c|d]", NULL},
    {"mixed line ends", "a\r\nb\nc\rd", 0, "", "1[a]2[b]3[c]4[d]", NULL},
    {"quoted fields", "\"a\",\"b\"\n", 0, "", "1[a|b]", NULL},
    {"quoted delimiter", "\"a,b\",c\n", 0, "", "1[a,b|c]", NULL},
    {"doubled quotes", "\"a\"\"b\",\"\"\"\"\n", 0, "", "1[a\"b|\"]", NULL},
    {"many doubled quotes", "x,\"\"\"a\"\"\"\"b\"\"\"\n", 0, "", "1[x|\"a\"\"b\"]", NULL},
    {"LF inside quotes", "\"a\nb\",c\nd,e\n", 0, "", "1[a\\nb|c]3[d|e]", NULL},
    {"CRLF inside quotes", "\"a\r\nb\",c\r\nd,e\r\n", 0, "", "1[a\\r\\nb|c]3[d|e]", NULL},
    {"CR inside quotes", "\"a\rb\",c\nd,e\n", 0, "", "1[a\\rb|c]3[d|e]", NULL},
    {"several line breaks inside quotes", "\"\n\n\r\n\",x\ny,z\n", 0, "", "1[\\n\\n\\r\\n|x]5[y|z]",
     NULL},
    {"empty fields", ",,\n", 0, "", "1[||]", NULL},
    {"empty quoted field", "\"\",a\n", 0, "", "1[|a]", NULL},
    {"one empty quoted column", "x\n\"\"\ny\n", 0, "", "1[x]2[]3[y]", NULL},
    {"trailing delimiter at EOF", "a,", 0, "", "1[a|]", NULL},
    {"quoted field at EOF", "a,\"b\"", 0, "", "1[a|b]", NULL},
    {"doubled quote at EOF", "\"a\"\"\"", 0, "", "1[a\"]", NULL},
    {"blank lines skipped", "a,b\n\n\nc,d\n\n", 0, "", "1[a|b]4[c|d]", NULL},
    {"blank CRLF lines skipped", "a\r\n\r\nb\r\n", 0, "", "1[a]3[b]", NULL},
    {"leading blank lines", "\n\na\n", 0, "", "3[a]", NULL},
    {"empty input", "", 0, "", "", NULL},
    {"only blank lines", "\n\r\n\n", 0, "", "", NULL},
    {"BOM skipped",
     "\xEF\xBB\xBF"
     "a,b\n",
     0, "", "1[a|b]", NULL},
    {"BOM before header", "\xEF\xBB\xBFx,y\n1,2\n", 0, "H", "H[x|y]2[1|2]", NULL},
    {"BOM only at the start",
     "a\n\xEF\xBB\xBF"
     "b\n",
     0, "",
     "1[a]2[\xEF\xBB\xBF"
     "b]",
     NULL},
    {"BOM alone", "\xEF\xBB\xBF", 0, "", "", NULL},
    {"header", "x,y\n1,2\n3,4\n", 0, "H", "H[x|y]2[1|2]3[3|4]", NULL},
    {"header only", "x,y\n", 0, "H", "H[x|y]", NULL},
    {"quoted header", "\"a,b\",\"c\"\"d\"\r\n1,2\r\n", 0, "H", "H[a,b|c\"d]2[1|2]", NULL},
    {"header expected on empty input", "", 0, "H", NULL, "1:1: the input is empty"},
    {"header expected on blank lines", "\n\n", 0, "H", NULL, "3:1: the input is empty"},
    {"semicolon delimiter", "a;b,c\n", 0, "d;", "1[a|b,c]", NULL},
    {"tab delimiter", "a\tb c\n", 0, "d\t", "1[a|b c]", NULL},
    {"pipe delimiter", "a|\"b|c\"\n", 0, "d|", "1[a|b\\|c]", NULL},
    {"space delimiter", "a b  c\n", 0, "d ", "1[a|b||c]", NULL},
    {"single-quote quoting", "'a,b',c\n", 0, "q'", "1[a,b|c]", NULL},
    {"no quoting", "\"a,b\"\n", 0, "q0", "1[\"a|b\"]", NULL},
    {"comment lines", "#x\na,b\n# y,z\nc,d\n", 0, "c#", "2[a|b]4[c|d]", NULL},
    {"comment char inside a line is data", "a#b,c\n", 0, "c#", "1[a#b|c]", NULL},
    {"comment before header", "# hi\nx,y\n1,2\n", 0, "Hc#", "H[x|y]3[1|2]", NULL},
    {"comment char inside quotes", "\"a\n#b\",c\n", 0, "c#", "1[a\\n#b|c]", NULL},
    {"comment at EOF without newline", "a\n#end", 0, "c#", "1[a]", NULL},
    {"comment with CRLF", "#x\r\na\r\n", 0, "c#", "2[a]", NULL},
    {"comments are data without the option", "#x,y\n", 0, "", "1[#x|y]", NULL},
    {"spaces are data", " a , b \n", 0, "", "1[ a | b ]", NULL},
    {"NUL byte in a field", "a\0b,c\n", 6, "", "1[a\\0b|c]", NULL},
    {"UTF-8 text", "\xC3\xA9t\xC3\xA9,\xE2\x82\xAC\n", 0, "", "1[\xC3\xA9t\xC3\xA9|\xE2\x82\xAC]",
     NULL},
    {"record fills the buffer exactly", "abcdefg\n", 0, "b8", "1[abcdefg]", NULL},
    {"ragged: too many fields", "a,b\nc,d,e\n", 0, "", NULL,
     "2:5: record has 3 fields, expected 2 as in the first record on line 1"},
    {"ragged: too few fields", "a,b\nc\n", 0, "", NULL,
     "2:2: record has 1 fields, expected 2 as in the first record on line 1"},
    {"ragged against the header", "x,y,z\n1,2\n", 0, "H", NULL,
     "2:4: record has 2 fields, expected 3 as in the header on line 1"},
    {"ragged after a multi-line record", "a,b\n\"x\ny\"\n", 0, "", NULL,
     "3:3: record has 1 fields, expected 2"},
    {"stray quote", "ab\"c,d\n", 0, "", NULL, "1:3: field 1: stray quote in an unquoted field"},
    {"stray quote in the second field", "a,b\"\n", 0, "", NULL, "1:4: field 2: stray quote"},
    {"characters after the closing quote", "\"ab\"c,d\n", 0, "", NULL,
     "1:5: field 1: \"c\" after the closing quote"},
    {"space after the closing quote", "\"a\" ,b\n", 0, "", NULL,
     "1:4: field 1: \" \" after the closing quote"},
    {"unterminated quote", "a,b\nc,\"d\ne\n", 0, "", NULL,
     "2:3: field 2: the quote opened here is never closed"},
    {"unterminated quote, small buffer", "\"aaaaaaaaaaaaaaaaaaaaaa", 0, "b16", NULL,
     "1:1: record is longer than the 16-byte buffer"},
    {"stray quote on a record's second line", "\"a\nb\",c\"d\n", 0, "", NULL,
     "2:5: field 2: stray quote"},
    {"column after a multi-line field", "\"x\ny\",\"a\"b\n", 0, "", NULL,
     "2:7: field 2: \"b\" after the closing quote"},
    {"columns count bytes", "\xC3\xA9,\"x\"y\n", 0, "", NULL, "1:7: field 2"},
    {"BOM is not counted in columns",
     "\xEF\xBB\xBF"
     "a\"b\n",
     0, "", NULL, "1:2: field 1: stray quote"},
    {"overlong record", "a,b\n0123456789abcdefgh,x\n", 0, "b16", NULL,
     "2:1: record is longer than the 16-byte buffer"},
    {"record one byte over the buffer", "abcdefgh\n", 0, "b8", NULL,
     "1:1: record is longer than the 8-byte buffer"},
    {"last record fills the buffer exactly at EOF", "abcdefgh", 0, "b8", "1[abcdefgh]", NULL},
    {"last record one byte over the buffer at EOF", "abcdefghi", 0, "b8", NULL,
     "1:1: record is longer than the 8-byte buffer"},
    {"non-ASCII byte after the closing quote", "\"a\"\xC3\xA9\n", 0, "", NULL,
     "1:4: field 1: \"\\xc3\" after the closing quote"},
    {"too many fields", "a,b,c,d\n", 0, "m3", NULL, "1:7: record has more than 3 fields"},
    {"max fields reached exactly", "a,b,c\n", 0, "m3", "1[a|b|c]", NULL},
    {"long comment lines need no buffer", "#0123456789012345678901234567890\na\n", 0, "c#b8",
     "2[a]", NULL},
};

static void parse_options(const char *spec, fedl_csv_options *o)
{
    *o = fedl_csv_defaults();
    o->has_header = 0;
    o->name = "t.csv";
    for (const char *p = spec; *p != '\0'; p++) {
        switch (*p) {
        case 'H':
            o->has_header = 1;
            break;
        case 'N':
            o->allow_nonfinite = 1;
            break;
        case 'd':
            o->delimiter = *++p;
            break;
        case 'q':
            p++;
            o->quote = *p == '0' ? 0 : *p;
            break;
        case 'c':
            o->comment = *++p;
            break;
        case 'b':
        case 'm': {
            char *end;
            size_t v = strtoul(p + 1, &end, 10);
            if (*p == 'b')
                o->buffer_bytes = v;
            else
                o->max_fields = v;
            p = end - 1;
            break;
        }
        default:
            fail_msg("bad option spec '%s'", spec);
        }
    }
}

/* "line:column: text" -> the message must start "t.csv:line:column: " and
 * contain text. */
static void check_error(const csv_case *c, const fedl_error *err, const char *how)
{
    char prefix[64];
    const char *colon = strchr(c->error, ':');
    const char *space = strchr(c->error, ' ');
    assert_non_null(colon);
    assert_non_null(space);
    snprintf(prefix, sizeof prefix, "t.csv:%.*s", (int)(space - c->error), c->error);
    if (strncmp(err->message, prefix, strlen(prefix)) != 0 ||
        strstr(err->message, space + 1) == NULL)
        fail_msg("case \"%s\" (%s): message \"%s\", expected \"%s ...%s...\"", c->name, how,
                 err->message, prefix, space + 1);
}

static void run_case(const csv_case *c, const fedl_csv_options *o, input_mode mode, size_t chunk,
                     int small_buffer, const char *how)
{
    static char rendered[8192];
    text_buf t = {rendered, sizeof rendered, 0};
    fedl_error err;
    size_t length = c->length != 0 ? c->length : strlen(c->input);
    fedl_status status;
    fedl_error_clear(&err);
    status = read_all(c->input, length, o, mode, chunk, &t, &err);
    if (small_buffer && status != FEDL_OK && strstr(err.message, "longer than the") != NULL)
        return; /* a record that does not fit a tiny buffer: expected */
    if (c->error == NULL) {
        if (status != FEDL_OK)
            fail_msg("case \"%s\" (%s): unexpected error: %s", c->name, how, err.message);
        if (strcmp(rendered, c->expect) != 0)
            fail_msg("case \"%s\" (%s): got \"%s\", expected \"%s\"", c->name, how, rendered,
                     c->expect);
        return;
    }
    if (status == FEDL_OK)
        fail_msg("case \"%s\" (%s): expected an error, got \"%s\"", c->name, how, rendered);
    assert_int_equal(status, FEDL_ERR_FORMAT);
    assert_int_equal(err.status, status);
    check_error(c, &err, how);
}

/* Each case as given, then through 1-, 2- and 3-byte reads, then (when no
 * buffer size is part of the case) through buffers of 4 to 24 bytes, which
 * must give the same records or a "longer than the buffer" error. */
static void test_csv_conformance_table(void **state)
{
    (void)state;
    assert_true(sizeof cases / sizeof cases[0] >= 60);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const csv_case *c = &cases[k];
        fedl_csv_options o;
        int fixed_buffer = strchr(c->options, 'b') != NULL;
        parse_options(c->options, &o);
        run_case(c, &o, MODE_MEMORY, 0, 0, "memory");
        for (size_t chunk = 1; chunk <= 3; chunk++)
            run_case(c, &o, MODE_CALLBACK, chunk, 0, "short reads");
        if (fixed_buffer)
            continue;
        for (size_t b = FEDL_CSV_MIN_BUFFER_BYTES; b <= 24; b++) {
            o.buffer_bytes = b;
            run_case(c, &o, MODE_MEMORY, 0, 1, "small buffer");
            run_case(c, &o, MODE_CALLBACK, 1, 1, "small buffer, 1-byte reads");
        }
    }
}

/* --------------------------------------------------- positions, header */

static void test_csv_field_lines_and_columns_in_multiline_record(void **state)
{
    static const char text[] = "id,note,v\n"
                               "1,\"two\nlines\",x\n"
                               "2,\"a\r\nb\r\nc\",\"y\"\n";
    fedl_csv_reader *r;
    int more;
    (void)state;
    assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, NULL, NULL, &r, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_int_equal(more, 1);
    assert_int_equal(fedl_csv_record_line(r), 2);
    assert_int_equal(fedl_csv_record_offset(r), 10);
    assert_int_equal(fedl_csv_field_line(r, 0), 2);
    assert_int_equal(fedl_csv_field_column(r, 0), 1);
    assert_int_equal(fedl_csv_field_line(r, 1), 2);
    assert_int_equal(fedl_csv_field_column(r, 1), 3);
    assert_int_equal(fedl_csv_field_line(r, 2), 3);
    assert_int_equal(fedl_csv_field_column(r, 2), 8);
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_record_line(r), 4);
    assert_int_equal(fedl_csv_record_offset(r), 26);
    assert_int_equal(fedl_csv_field_line(r, 2), 6);
    assert_int_equal(fedl_csv_field_column(r, 2), 4);
    /* Out of range: zeros and NULL, no crash. */
    assert_int_equal(fedl_csv_field_line(r, 3), 0);
    assert_int_equal(fedl_csv_field_column(r, 3), 0);
    assert_null(fedl_csv_field(r, 3, NULL));
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_int_equal(more, 0);
    assert_int_equal(fedl_csv_record_line(r), 0);
    fedl_csv_close(r);
}

static void test_csv_header_names_and_find_column(void **state)
{
    static const char text[] = "label,\"pixel 0\",\"a\"\"b\"\n7,0,1\n";
    fedl_csv_reader *r;
    fedl_error err;
    size_t index = 99, n;
    (void)state;
    assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, NULL, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_header_count(r), 3);
    assert_string_equal(fedl_csv_header_name(r, 0, &n), "label");
    assert_int_equal(n, 5);
    assert_string_equal(fedl_csv_header_name(r, 1, NULL), "pixel 0");
    assert_string_equal(fedl_csv_header_name(r, 2, NULL), "a\"b");
    assert_null(fedl_csv_header_name(r, 3, &n));
    assert_int_equal(n, 0);
    assert_int_equal(fedl_csv_find_column(r, "pixel 0", &index, &err), FEDL_OK);
    assert_int_equal(index, 1);
    assert_int_equal(fedl_csv_find_column(r, "pixel", &index, &err), FEDL_ERR_INVALID_ARG);
    assert_contains(err.message, "no column named \"pixel\"");
    /* No record yet: nothing to show. */
    assert_int_equal(fedl_csv_field_count(r), 0);
    fedl_csv_close(r);
}

static void test_csv_field_error_names_header_and_cuts_text(void **state)
{
    char text[256];
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    int more;
    (void)state;
    o.name = "train.csv";
    snprintf(text, sizeof text, "label,pixel0\n1,2\n3,\"%s\"\n",
             "0123456789012345678901234567890123456789-and-more\nsecond line");
    assert_int_equal(fedl_csv_open_memory(text, strlen(text), &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(fedl_csv_field_error(r, 1, FEDL_ERR_FORMAT, "pixel out of range", &err),
                     FEDL_ERR_FORMAT);
    assert_string_equal(err.message, "train.csv:2:3: field 2 (pixel0) \"2\": pixel out of range");
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(fedl_csv_field_error(r, 1, FEDL_ERR_FORMAT, "too long", &err),
                     FEDL_ERR_FORMAT);
    assert_string_equal(err.message, "train.csv:3:3: field 2 (pixel0) "
                                     "\"0123456789012345678901234567890123456789...\": too long");
    /* A field number past the record still gives a sentence. */
    assert_int_equal(fedl_csv_field_error(r, 5, FEDL_ERR_FORMAT, "missing", &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "train.csv:3: field 6: missing (the record has 2 fields)");
    fedl_csv_close(r);
}

static void test_csv_message_escapes_control_bytes_and_keeps_utf8_whole(void **state)
{
    /* 39 ASCII bytes then a 2-byte character straddling the 40-byte cut. */
    char text[256];
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    int more;
    (void)state;
    o.has_header = 0;
    o.name = "u.csv";
    snprintf(text, sizeof text, "\"%s\xC3\xA9xyz\"\n\"a\tb\x01\"\n",
             "012345678901234567890123456789012345678");
    assert_int_equal(fedl_csv_open_memory(text, strlen(text), &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    fedl_csv_field_error(r, 0, FEDL_ERR_FORMAT, "x", &err);
    assert_string_equal(err.message,
                        "u.csv:1:1: field 1 \"012345678901234567890123456789012345678...\": x");
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    fedl_csv_field_error(r, 0, FEDL_ERR_FORMAT, "x", &err);
    assert_string_equal(err.message, "u.csv:2:1: field 1 \"a\\tb\\x01\": x");
    fedl_csv_close(r);
}

/* ------------------------------------------------------- tiny buffers */

/* A CSV of short records (each at most 16 bytes with its line end) mixing
 * quotes, doubled quotes, embedded line breaks, CRLF, blank and comment
 * lines, drawn from seed. */
static size_t make_mixed_csv(char *out, size_t size, uint64_t seed, size_t records)
{
    fedl_rng rng;
    size_t at = 0;
    fedl_rng_init(&rng, seed, 3);
    for (size_t i = 0; i < records; i++) {
        char rec[32];
        size_t n = 0;
        const char *eol = fedl_rng_below(&rng, 2) ? "\r\n" : "\n";
        uint32_t extra = fedl_rng_below(&rng, 6);
        if (extra == 0)
            n += (size_t)snprintf(rec + n, sizeof rec - n, "%s", eol); /* blank line */
        else if (extra == 1)
            n += (size_t)snprintf(rec + n, sizeof rec - n, "#c%u%s", fedl_rng_below(&rng, 99), eol);
        for (int f = 0; f < 3; f++) {
            uint32_t kind = fedl_rng_below(&rng, 5);
            if (f > 0)
                rec[n++] = ',';
            switch (kind) {
            case 0:
                break; /* empty */
            case 1:
                n += (size_t)snprintf(rec + n, sizeof rec - n, "%u", fedl_rng_below(&rng, 100));
                break;
            case 2:
                n += (size_t)snprintf(rec + n, sizeof rec - n, "\"%c\"",
                                      'a' + (int)fedl_rng_below(&rng, 26));
                break;
            case 3:
                n += (size_t)snprintf(rec + n, sizeof rec - n, "\"\"\"\"");
                break;
            default:
                n += (size_t)snprintf(rec + n, sizeof rec - n, "\"%s\"",
                                      fedl_rng_below(&rng, 2) ? "\r\n" : "\n");
                break;
            }
        }
        n += (size_t)snprintf(rec + n, sizeof rec - n, "%s", eol);
        assert_true(at + n < size);
        memcpy(out + at, rec, n);
        at += n;
    }
    return at;
}

static void test_csv_tiny_buffer_gives_same_records(void **state)
{
    static char input[1 << 16];
    static char big[1 << 18], tiny[1 << 18];
    text_buf want = {big, sizeof big, 0}, got = {tiny, sizeof tiny, 0};
    fedl_csv_options o = fedl_csv_defaults();
    fedl_error err;
    (void)state;
    o.has_header = 0;
    o.comment = '#';
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t length = make_mixed_csv(input, sizeof input, seed, 500);
        o.buffer_bytes = FEDL_CSV_DEFAULT_BUFFER_BYTES;
        assert_int_equal(read_all(input, length, &o, MODE_MEMORY, 0, &want, &err), FEDL_OK);
        assert_true(want.length > 1000);
        o.buffer_bytes = 16;
        assert_int_equal(read_all(input, length, &o, MODE_MEMORY, 0, &got, &err), FEDL_OK);
        assert_string_equal(got.data, want.data);
        for (size_t chunk = 1; chunk <= 17; chunk += 4) {
            assert_int_equal(read_all(input, length, &o, MODE_CALLBACK, chunk, &got, &err),
                             FEDL_OK);
            assert_string_equal(got.data, want.data);
        }
    }
}

/* --------------------------------------------------------- files, gzip */

static void write_gzip(const char *path, const void *bytes, size_t length, int members)
{
    gzFile gz = gzopen(path, "wb6");
    assert_non_null(gz);
    if (members <= 1) {
        assert_int_equal(gzwrite(gz, bytes, (unsigned)length), (int)length);
        assert_int_equal(gzclose(gz), Z_OK);
        return;
    }
    /* Several members back to back, split at the middle. */
    assert_int_equal(gzwrite(gz, bytes, (unsigned)(length / 2)), (int)(length / 2));
    assert_int_equal(gzclose(gz), Z_OK);
    gz = gzopen(path, "ab6");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, (const char *)bytes + length / 2, (unsigned)(length - length / 2)),
                     (int)(length - length / 2));
    assert_int_equal(gzclose(gz), Z_OK);
}

static unsigned char *read_whole(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    unsigned char *bytes;
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

static fedl_status read_path(const char *path, const fedl_csv_options *o, text_buf *out,
                             fedl_error *err)
{
    fedl_allocator a;
    fedl_csv_reader *r = NULL;
    fedl_status status;
    int more;
    fedl_allocator_init(&a, NULL, NULL);
    out->length = 0;
    out->data[0] = '\0';
    status = fedl_csv_open(path, o, &a, &r, err);
    if (status != FEDL_OK) {
        assert_null(r);
        assert_int_equal(a.stats.live_bytes, 0);
        return status;
    }
    render_header(r, out);
    while ((status = fedl_csv_next_record(r, &more, err)) == FEDL_OK && more)
        render_record(r, out);
    fedl_csv_close(r);
    assert_int_equal(a.stats.live_bytes, 0);
    return status;
}

static void test_csv_gzip_reads_same_as_plain_detected_by_magic(void **state)
{
    static char input[1 << 16];
    static char plain[1 << 18], packed[1 << 18];
    text_buf want = {plain, sizeof plain, 0}, got = {packed, sizeof packed, 0};
    fedl_csv_options o = fedl_csv_defaults();
    fedl_error err;
    size_t length, gz_length;
    unsigned char *gz;
    (void)state;
    o.has_header = 0;
    o.comment = '#';
    length = make_mixed_csv(input, sizeof input, 42, 1500);
    assert_int_equal(test_write_file(temp_path("plain.csv"), input, length), 0);
    write_gzip(temp_path("data.csv.gz"), input, length, 1);
    write_gzip(temp_path("misnamed.csv"), input, length, 1);
    write_gzip(temp_path("members.csv.gz"), input, length, 2);
    assert_int_equal(test_write_file(temp_path("plain-named.gz"), input, length), 0);

    assert_int_equal(read_path(temp_path("plain.csv"), &o, &want, &err), FEDL_OK);
    assert_int_equal(read_path(temp_path("data.csv.gz"), &o, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);
    assert_int_equal(read_path(temp_path("misnamed.csv"), &o, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);
    assert_int_equal(read_path(temp_path("members.csv.gz"), &o, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);
    assert_int_equal(read_path(temp_path("plain-named.gz"), &o, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);

    /* The same gzip bytes from memory and through 5-byte reads, 16-byte buffer. */
    gz = read_whole(temp_path("data.csv.gz"), &gz_length);
    o.buffer_bytes = 16;
    assert_int_equal(read_all(gz, gz_length, &o, MODE_MEMORY, 0, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);
    assert_int_equal(read_all(gz, gz_length, &o, MODE_CALLBACK, 5, &got, &err), FEDL_OK);
    assert_string_equal(got.data, want.data);
    free(gz);
}

static void test_csv_gzip_rejects_truncated_and_trailing_garbage(void **state)
{
    static char out[1 << 16];
    text_buf t = {out, sizeof out, 0};
    static const char text[] = "a,b\n1,2\n3,4\n";
    fedl_csv_options o = fedl_csv_defaults();
    fedl_error err;
    size_t gz_length;
    unsigned char *gz, *bad;
    (void)state;
    write_gzip(temp_path("t.csv.gz"), text, sizeof text - 1, 1);
    gz = read_whole(temp_path("t.csv.gz"), &gz_length);
    bad = malloc(gz_length + 8);
    assert_non_null(bad);

    /* Cut before the trailer, and cut after just the magic bytes. */
    assert_int_equal(read_all(gz, gz_length - 4, &o, MODE_MEMORY, 0, &t, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "gzip stream ends early");
    assert_int_equal(read_all(gz, 2, &o, MODE_MEMORY, 0, &t, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "gzip stream ends early");
    /* Garbage after the member. */
    memcpy(bad, gz, gz_length);
    memcpy(bad + gz_length, "garbage!", 8);
    assert_int_equal(read_all(bad, gz_length + 8, &o, MODE_MEMORY, 0, &t, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "after the end of the gzip stream");
    /* A flipped byte in the middle: corrupt data or CRC. */
    memcpy(bad, gz, gz_length);
    bad[gz_length - 6] ^= 0x55;
    assert_int_equal(read_all(bad, gz_length, &o, MODE_MEMORY, 0, &t, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "gzip");
    free(bad);
    free(gz);
}

static void test_csv_open_reports_missing_file(void **state)
{
    fedl_csv_reader *r = (fedl_csv_reader *)&r;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_csv_open(temp_path("nope.csv"), NULL, NULL, &r, &err), FEDL_ERR_IO);
    assert_null(r);
    assert_contains(err.message, "nope.csv: cannot open:");
}

/* A writer process feeding a pipe in small pieces. */
static void test_csv_reads_pipe_plain_and_gzip(void **state)
{
    static char input[1 << 15];
    static char a[1 << 17], b[1 << 17];
    text_buf want = {a, sizeof a, 0}, got = {b, sizeof b, 0};
    fedl_csv_options o = fedl_csv_defaults();
    fedl_error err;
    size_t length, gz_length;
    unsigned char *gz;
    (void)state;
    o.has_header = 0;
    o.comment = '#';
    length = make_mixed_csv(input, sizeof input, 7, 800);
    write_gzip(temp_path("pipe.csv.gz"), input, length, 1);
    gz = read_whole(temp_path("pipe.csv.gz"), &gz_length);
    assert_int_equal(read_all(input, length, &o, MODE_MEMORY, 0, &want, &err), FEDL_OK);
    for (int compressed = 0; compressed <= 1; compressed++) {
        const unsigned char *bytes = compressed ? gz : (const unsigned char *)input;
        size_t n = compressed ? gz_length : length;
        int fds[2];
        char path[64];
        pid_t pid;
        int wstatus;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            for (size_t at = 0; at < n; at += 97) {
                size_t piece = n - at < 97 ? n - at : 97;
                if (write(fds[1], bytes + at, piece) != (ssize_t)piece)
                    _exit(1);
            }
            _exit(0);
        }
        close(fds[1]);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
        assert_int_equal(read_path(path, &o, &got, &err), FEDL_OK);
        assert_string_equal(got.data, want.data);
        close(fds[0]);
        assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    }
    free(gz);
}

/* -------------------------------------------------------------- seeking */

typedef struct record_position {
    uint64_t offset;
    uint64_t line;
    char text[64];
} record_position;

static void test_csv_seek_revisits_records_in_any_order(void **state)
{
    static const char text[] = "\xEF\xBB\xBFx,y\r\n"
                               "1,\"a\nb\"\r\n"
                               "\r\n"
                               "#c\r\n"
                               "2,\"q\"\"\"\r\n"
                               "3,z";
    record_position pos[8];
    size_t count = 0;
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    int more;
    (void)state;
    o.comment = '#';
    assert_int_equal(test_write_file(temp_path("seek.csv"), text, sizeof text - 1), 0);
    for (int source = 0; source < 2; source++) {
        if (source == 0)
            assert_int_equal(fedl_csv_open(temp_path("seek.csv"), &o, NULL, &r, &err), FEDL_OK);
        else
            assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, &o, NULL, &r, &err),
                             FEDL_OK);
        count = 0;
        while (fedl_csv_next_record(r, &more, &err) == FEDL_OK && more) {
            text_buf t = {pos[count].text, sizeof pos[count].text, 0};
            pos[count].offset = fedl_csv_record_offset(r);
            pos[count].line = fedl_csv_record_line(r);
            render_record(r, &t);
            count++;
        }
        assert_int_equal(count, 3);
        assert_string_equal(pos[0].text, "2[1|a\\nb]");
        assert_string_equal(pos[1].text, "6[2|q\"]");
        assert_string_equal(pos[2].text, "7[3|z]");
        assert_int_equal(pos[0].offset, 8);
        /* Backwards, one record per seek. */
        for (size_t k = count; k-- > 0;) {
            char buf[64];
            text_buf t = {buf, sizeof buf, 0};
            assert_int_equal(fedl_csv_seek(r, pos[k].offset, pos[k].line, &err), FEDL_OK);
            assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
            assert_int_equal(more, 1);
            render_record(r, &t);
            assert_string_equal(buf, pos[k].text);
            assert_int_equal(fedl_csv_record_offset(r), pos[k].offset);
        }
        /* Rewind reads everything after the header again, with the same lines. */
        assert_int_equal(fedl_csv_rewind(r, &err), FEDL_OK);
        for (size_t k = 0; k < count; k++) {
            char buf[64];
            text_buf t = {buf, sizeof buf, 0};
            assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
            assert_int_equal(more, 1);
            render_record(r, &t);
            assert_string_equal(buf, pos[k].text);
        }
        assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
        assert_int_equal(more, 0);
        /* Into the header, line 0. */
        assert_int_equal(fedl_csv_seek(r, 3, 1, &err), FEDL_ERR_INVALID_ARG);
        assert_contains(err.message, "inside the header");
        assert_int_equal(fedl_csv_seek(r, pos[0].offset, 0, &err), FEDL_ERR_INVALID_ARG);
        /* Past the end: simply no more records. */
        assert_int_equal(fedl_csv_seek(r, 10000, 99, &err), FEDL_OK);
        assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
        assert_int_equal(more, 0);
        fedl_csv_close(r);
    }
}

static void test_csv_seek_without_header_sees_bom_again(void **state)
{
    static const char text[] = "\xEF\xBB\xBF"
                               "a,b\nc,d\n";
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    int more;
    size_t n;
    (void)state;
    o.has_header = 0;
    assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, &o, NULL, &r, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_record_offset(r), 3);
    assert_int_equal(fedl_csv_seek(r, 0, 1, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_string_equal(fedl_csv_field(r, 0, &n), "a");
    assert_int_equal(n, 1);
    assert_int_equal(fedl_csv_rewind(r, NULL), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, NULL), FEDL_OK);
    assert_string_equal(fedl_csv_field(r, 0, NULL), "a");
    fedl_csv_close(r);
}

static void test_csv_seek_unsupported_for_gzip_and_callback(void **state)
{
    static const char text[] = "a,b\n1,2\n";
    fedl_csv_reader *r;
    fedl_error err;
    chunk_reader c = {(const unsigned char *)text, sizeof text - 1, 0, 4, 0, 0};
    (void)state;
    write_gzip(temp_path("s.csv.gz"), text, sizeof text - 1, 1);
    assert_int_equal(fedl_csv_open(temp_path("s.csv.gz"), NULL, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_seek(r, 4, 2, &err), FEDL_ERR_UNSUPPORTED);
    assert_contains(err.message, "gzip");
    fedl_csv_close(r);
    assert_int_equal(fedl_csv_open_callback(chunk_read, &c, NULL, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_rewind(r, &err), FEDL_ERR_UNSUPPORTED);
    assert_contains(err.message, "callback");
    fedl_csv_close(r);
}

static void test_csv_error_is_final_until_seek(void **state)
{
    static const char text[] = "a,b\n1,2\n3\n4,5\n";
    fedl_csv_reader *r;
    fedl_error err;
    int more;
    uint64_t offset4 = 0;
    (void)state;
    assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, NULL, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_ERR_FORMAT);
    assert_int_equal(more, 0);
    assert_contains(err.message, "<memory>:3:2: record has 1 fields, expected 2");
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_ERR_STATE);
    assert_contains(err.message, "earlier error");
    /* Skip the bad record by seeking past it. */
    offset4 = (uint64_t)(strstr(text, "4,5") - text);
    assert_int_equal(fedl_csv_seek(r, offset4, 4, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(more, 1);
    assert_string_equal(fedl_csv_field(r, 1, NULL), "5");
    assert_int_equal(fedl_csv_record_line(r), 4);
    fedl_csv_close(r);
}

/* --------------------------------------------------------------- memory */

/* A callback producing `rows` rows of 10 numbers without storing them. */
typedef struct generator {
    size_t rows, row;
    char line[128];
    size_t line_length, line_position;
} generator;

static fedl_status generate(void *ud, void *buffer, size_t capacity, size_t *got, fedl_error *err)
{
    generator *g = ud;
    size_t done = 0;
    (void)err;
    while (done < capacity) {
        size_t n;
        if (g->line_position == g->line_length) {
            if (g->row == g->rows)
                break;
            g->line_length = (size_t)snprintf(g->line, sizeof g->line,
                                              "%zu,1,2,3,4,5,6,7,8,%zu.25\n", g->row, g->row % 97);
            g->line_position = 0;
            g->row++;
        }
        n = g->line_length - g->line_position;
        if (n > capacity - done)
            n = capacity - done;
        memcpy((char *)buffer + done, g->line + g->line_position, n);
        g->line_position += n;
        done += n;
    }
    *got = done;
    return FEDL_OK;
}

static void test_csv_memory_is_bounded_and_steady_state_allocates_nothing(void **state)
{
    generator g;
    fedl_allocator a;
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    fedl_mem_stats after_first;
    size_t rows = 0;
    int more;
    double sum = 0;
    (void)state;
    memset(&g, 0, sizeof g);
    g.rows = 400000; /* about 12 MB */
    o.has_header = 0;
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_csv_open_callback(generate, &g, &o, &a, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    after_first = fedl_allocator_stats(&a);
    do {
        float v;
        assert_int_equal(fedl_csv_field_float(r, 9, &v, NULL, &err), FEDL_OK);
        sum += v;
        rows++;
    } while (fedl_csv_next_record(r, &more, &err) == FEDL_OK && more);
    assert_int_equal(rows, g.rows);
    assert_true(sum > 0);
    /* Nothing allocated after the first record; the peak is the buffer
     * plus a few KiB of reader and field table. */
    assert_int_equal(a.stats.allocs, after_first.allocs);
    assert_int_equal(a.stats.reallocs, after_first.reallocs);
    assert_true(a.stats.peak_bytes < FEDL_CSV_DEFAULT_BUFFER_BYTES + 8192);
    fedl_csv_close(r);
    assert_int_equal(a.stats.live_bytes, 0);
}

/* Fail the Nth allocation for every N through open, the header, the field
 * table growing for a 100-column record, gzip state, and reading to the end:
 * FEDL_ERR_NOMEM with a message, nothing leaked. */
static void test_csv_fails_cleanly_on_every_allocation_failure(void **state)
{
    static char input[1 << 15];
    const char *kinds[] = {"memory", "gzip file"};
    size_t length = 0;
    (void)state;
    for (int row = 0; row < 50; row++) {
        for (int i = 0; i < 100; i++)
            length += (size_t)snprintf(input + length, sizeof input - length, "%s%d", i ? "," : "",
                                       row * i);
        input[length++] = '\n';
    }
    write_gzip(temp_path("alloc.csv.gz"), input, length, 1);
    for (int kind = 0; kind < 2; kind++) {
        int succeeded = 0;
        for (uint64_t fail_at = 1; fail_at < 100 && !succeeded; fail_at++) {
            test_failing_alloc failing = {0, fail_at};
            fedl_allocator a;
            fedl_csv_options o = fedl_csv_defaults();
            fedl_csv_reader *r = NULL;
            fedl_error err;
            fedl_status status;
            size_t records = 0;
            int more;
            fedl_allocator_init(&a, test_failing_alloc_fn, &failing);
            fedl_error_clear(&err);
            if (kind == 0)
                status = fedl_csv_open_memory(input, length, &o, &a, &r, &err);
            else
                status = fedl_csv_open(temp_path("alloc.csv.gz"), &o, &a, &r, &err);
            if (status == FEDL_OK) {
                while ((status = fedl_csv_next_record(r, &more, &err)) == FEDL_OK && more)
                    records++;
                fedl_csv_close(r);
            } else {
                assert_null(r);
            }
            assert_int_equal(a.stats.live_bytes, 0);
            if (status == FEDL_OK) {
                assert_int_equal(records, 49);
                succeeded = 1;
            } else {
                if (status != FEDL_ERR_NOMEM)
                    fail_msg("%s, allocation %llu failed: %s (%s)", kinds[kind],
                             (unsigned long long)fail_at, fedl_strerror(status), err.message);
                assert_true(err.message[0] != '\0');
            }
        }
        assert_true(succeeded);
    }
}

static void test_csv_grows_field_table_up_to_max_fields(void **state)
{
    char text[8192];
    size_t n = 0;
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    int more;
    (void)state;
    o.has_header = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%d", i ? "," : "", i);
    text[n++] = '\n';
    o.max_fields = 1000;
    assert_int_equal(fedl_csv_open_memory(text, n, &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(fedl_csv_field_count(r), 1000);
    assert_string_equal(fedl_csv_field(r, 999, NULL), "999");
    fedl_csv_close(r);
    o.max_fields = 999;
    assert_int_equal(fedl_csv_open_memory(text, n, &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_ERR_FORMAT);
    assert_contains(err.message, "more than 999 fields (max_fields)");
    fedl_csv_close(r);
}

/* ------------------------------------------------------------- arguments */

static void test_csv_rejects_bad_options_and_null_arguments(void **state)
{
    static const char text[] = "a\n";
    fedl_csv_options o;
    fedl_csv_reader *r = NULL;
    fedl_error err;
    int more;
    chunk_reader c = {(const unsigned char *)text, 2, 0, 1, 0, 0};
    (void)state;
    o = fedl_csv_defaults();
    o.delimiter = 0;
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_contains(err.message, "delimiter is NUL");
    o = fedl_csv_defaults();
    o.delimiter = '"';
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_contains(err.message, "must differ");
    o = fedl_csv_defaults();
    o.comment = '"';
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    o = fedl_csv_defaults();
    o.delimiter = '\n';
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_contains(err.message, "CR or LF");
    o = fedl_csv_defaults();
    o.buffer_bytes = 3;
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_contains(err.message, "buffer_bytes is 3");
    o = fedl_csv_defaults();
    o.max_fields = 0;
    assert_int_equal(fedl_csv_open_memory(text, 2, &o, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_null(r);

    assert_int_equal(fedl_csv_open(NULL, NULL, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_open("x", NULL, NULL, NULL, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_open_memory(NULL, 5, NULL, NULL, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_open_callback(NULL, NULL, NULL, NULL, &r, &err),
                     FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_next_record(NULL, &more, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_field_count(NULL), 0);
    assert_null(fedl_csv_field(NULL, 0, NULL));
    assert_int_equal(fedl_csv_seek(NULL, 0, 1, &err), FEDL_ERR_INVALID_ARG);
    fedl_csv_close(NULL);

    /* NULL memory of length 0 is an empty input. */
    o = fedl_csv_defaults();
    o.has_header = 0;
    assert_int_equal(fedl_csv_open_memory(NULL, 0, &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(more, 0);
    assert_int_equal(fedl_csv_next_record(r, NULL, &err), FEDL_ERR_INVALID_ARG);
    fedl_csv_close(r);

    /* A failing callback: its status and message come through. */
    c.fail_at = 2;
    assert_int_equal(fedl_csv_open_callback(chunk_read, &c, &o, NULL, &r, &err), FEDL_ERR_IO);
    assert_contains(err.message, "injected read failure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_conformance_table),
        cmocka_unit_test(test_csv_field_lines_and_columns_in_multiline_record),
        cmocka_unit_test(test_csv_header_names_and_find_column),
        cmocka_unit_test(test_csv_field_error_names_header_and_cuts_text),
        cmocka_unit_test(test_csv_message_escapes_control_bytes_and_keeps_utf8_whole),
        cmocka_unit_test(test_csv_tiny_buffer_gives_same_records),
        cmocka_unit_test(test_csv_gzip_reads_same_as_plain_detected_by_magic),
        cmocka_unit_test(test_csv_gzip_rejects_truncated_and_trailing_garbage),
        cmocka_unit_test(test_csv_open_reports_missing_file),
        cmocka_unit_test(test_csv_reads_pipe_plain_and_gzip),
        cmocka_unit_test(test_csv_seek_revisits_records_in_any_order),
        cmocka_unit_test(test_csv_seek_without_header_sees_bom_again),
        cmocka_unit_test(test_csv_seek_unsupported_for_gzip_and_callback),
        cmocka_unit_test(test_csv_error_is_final_until_seek),
        cmocka_unit_test(test_csv_memory_is_bounded_and_steady_state_allocates_nothing),
        cmocka_unit_test(test_csv_fails_cleanly_on_every_allocation_failure),
        cmocka_unit_test(test_csv_grows_field_table_up_to_max_fields),
        cmocka_unit_test(test_csv_rejects_bad_options_and_null_arguments),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
