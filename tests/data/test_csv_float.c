/* test_csv_float.c - numbers in CSV fields: a table of float and integer
 * texts (signs, exponents, -0, denormals, overflow, underflow, the double
 * rounding trap, inf/nan, hex and malformed text, missing values), a
 * million random float32 bit patterns printed with "%.9g" that must come
 * back bit for bit, random short decimals against strtof, and the same
 * results under a locale whose decimal point is a comma. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fedl/csv.h"
#include "support/test_support.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* Open a one-record CSV holding text (as it would appear in the file, so
 * quoted fields carry their quotes) and position on the record. */
static fedl_csv_reader *open_one(const char *text, int allow_nonfinite)
{
    static char line[512];
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r = NULL;
    fedl_error err;
    int more = 0;
    size_t n = (size_t)snprintf(line, sizeof line, "%s\n", text);
    o.has_header = 0;
    o.allow_nonfinite = allow_nonfinite;
    o.name = "n.csv";
    if (fedl_csv_open_memory(line, n, &o, NULL, &r, &err) != FEDL_OK)
        fail_msg("open: %s", err.message);
    if (fedl_csv_next_record(r, &more, &err) != FEDL_OK || !more)
        fail_msg("\"%s\": no record: %s", text, err.message);
    return r;
}

/* ------------------------------------------------------------ float table */

typedef enum expect_kind { VALUE, MISSING, ERROR } expect_kind;

typedef struct float_case {
    const char *text; /* as written in the file */
    int allow_nonfinite;
    expect_kind kind;
    float value;       /* VALUE: compared bit for bit (NAN: any NaN) */
    const char *error; /* ERROR: part of the message */
} float_case;

/* Expected values are C float literals: the compiler rounds them correctly. */
static const float_case float_cases[] = {
    {"0", 0, VALUE, 0.0f, NULL},
    {"-0", 0, VALUE, -0.0f, NULL},
    {"-0.0e5", 0, VALUE, -0.0f, NULL},
    {"+0", 0, VALUE, 0.0f, NULL},
    {"-0.000", 0, VALUE, -0.0f, NULL},
    {"1", 0, VALUE, 1.0f, NULL},
    {"255", 0, VALUE, 255.0f, NULL},
    {"-17", 0, VALUE, -17.0f, NULL},
    {"00012", 0, VALUE, 12.0f, NULL},
    {"1.5", 0, VALUE, 1.5f, NULL},
    {" 1.5", 0, VALUE, 1.5f, NULL},
    {"1.5  ", 0, VALUE, 1.5f, NULL},
    {"\t-2.25\t", 0, VALUE, -2.25f, NULL},
    {"\" 3.5 \"", 0, VALUE, 3.5f, NULL},
    {".5", 0, VALUE, 0.5f, NULL},
    {"-.5", 0, VALUE, -0.5f, NULL},
    {"5.", 0, VALUE, 5.0f, NULL},
    {"0.1", 0, VALUE, 0.1f, NULL},
    {"0.3", 0, VALUE, 0.3f, NULL},
    {"3.14159274", 0, VALUE, 3.14159274f, NULL},
    {"0.00392156886", 0, VALUE, 0.00392156886f, NULL},
    {"1e3", 0, VALUE, 1000.0f, NULL},
    {"1E+3", 0, VALUE, 1000.0f, NULL},
    {"2.5e-3", 0, VALUE, 2.5e-3f, NULL},
    {"25e-4", 0, VALUE, 2.5e-3f, NULL},
    {"1e10", 0, VALUE, 1e10f, NULL},
    {"1e11", 0, VALUE, 1e11f, NULL},
    {"1e-10", 0, VALUE, 1e-10f, NULL},
    {"1e-11", 0, VALUE, 1e-11f, NULL},
    {"16777216", 0, VALUE, 16777216.0f, NULL},
    {"16777217", 0, VALUE, 16777216.0f, NULL}, /* tie: to even */
    {"16777219", 0, VALUE, 16777220.0f, NULL}, /* tie: to even, upwards */
    {"123456789012345678901234567890", 0, VALUE, 123456789012345678901234567890.0f, NULL},
    {"0.000000000000000000000000000000000000000000001", 0, VALUE, 1e-45f, NULL},
    /* 1 + 2^-24 exactly: a tie, to even (1.0); a hair above it: up. Via
     * double the second becomes the tie first and then 1.0: wrong. */
    {"1.000000059604644775390625", 0, VALUE, 1.0f, NULL},
    {"1.0000000596046447753906251", 0, VALUE, 1.00000012f, NULL},
    {"3.4028235e38", 0, VALUE, FLT_MAX, NULL},
    {"3.40282356e38", 0, VALUE, FLT_MAX, NULL}, /* below the midpoint to 2^128 */
    {"-3.4028235e38", 0, VALUE, -FLT_MAX, NULL},
    {"3.4028236e38", 0, ERROR, 0, "out of the float32 range"},
    {"1e39", 0, ERROR, 0, "out of the float32 range"},
    {"-1e39", 0, ERROR, 0, "out of the float32 range"},
    {"1e100000000000", 0, ERROR, 0, "out of the float32 range"},
    {"1e39", 1, VALUE, INFINITY, NULL},
    {"-1e39", 1, VALUE, -INFINITY, NULL},
    {"1.17549435e-38", 0, VALUE, FLT_MIN, NULL},
    {"1.1754942e-38", 0, VALUE, 1.1754942e-38f, NULL}, /* largest denormal */
    {"1.4e-45", 0, VALUE, 1.4e-45f, NULL},             /* smallest denormal */
    {"-1.4e-45", 0, VALUE, -1.4e-45f, NULL},
    {"7.00649232e-45", 0, VALUE, 7.00649232e-45f, NULL},
    {"8e-46", 0, VALUE, 1.4e-45f, NULL}, /* above half the smallest: rounds up */
    {"7e-46", 0, VALUE, 0.0f, NULL},     /* below half: rounds to zero */
    {"-1e-50", 0, VALUE, -0.0f, NULL},
    {"1e-100000000000", 0, VALUE, 0.0f, NULL},
    {"inf", 0, ERROR, 0, "expected a finite number"},
    {"-Infinity", 0, ERROR, 0, "expected a finite number"},
    {"NaN", 0, ERROR, 0, "expected a finite number"},
    {"inf", 1, VALUE, INFINITY, NULL},
    {"+INF", 1, VALUE, INFINITY, NULL},
    {"-Infinity", 1, VALUE, -INFINITY, NULL},
    {"nan", 1, VALUE, NAN, NULL},
    {"-NaN", 1, VALUE, NAN, NULL},
    {"nan(1)", 1, ERROR, 0, "expected a number"},
    {"infinite", 1, ERROR, 0, "expected a number"},
    {"0x10", 0, ERROR, 0, "no hex"},
    {"0X1p3", 0, ERROR, 0, "no hex"},
    {"-0x1.8p1", 0, ERROR, 0, "no hex"},
    {"1e", 0, ERROR, 0, "expected a number"},
    {"1e+", 0, ERROR, 0, "expected a number"},
    {"1.2.3", 0, ERROR, 0, "expected a number"},
    {"12.3.4", 0, ERROR, 0, "expected a number"},
    {".", 0, ERROR, 0, "expected a number"},
    {"-", 0, ERROR, 0, "expected a number"},
    {"+.e1", 0, ERROR, 0, "expected a number"},
    {"e5", 0, ERROR, 0, "expected a number"},
    {"1 2", 0, ERROR, 0, "expected a number"},
    {"\"1,5\"", 0, ERROR, 0, "expected a number"},
    {"--1", 0, ERROR, 0, "expected a number"},
    {"1f", 0, ERROR, 0, "expected a number"},
    {"abc", 0, ERROR, 0, "expected a number"},
    {"1e5x", 0, ERROR, 0, "expected a number"},
    {"\xEF\xBC\x91", 0, ERROR, 0, "expected a number"}, /* a full-width digit one */
    {"", 0, MISSING, 0, NULL},
    {"   ", 0, MISSING, 0, NULL},
    {"\"\"", 0, MISSING, 0, NULL},
};

static void test_csv_float_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof float_cases / sizeof float_cases[0]; k++) {
        const float_case *c = &float_cases[k];
        /* A leading field keeps "" and spaces from being a blank line. */
        char text[256];
        fedl_csv_reader *r;
        fedl_error err;
        float value = 12345.0f;
        int missing = -1;
        fedl_status status;
        snprintf(text, sizeof text, "x,%s", c->text);
        r = open_one(text, c->allow_nonfinite);
        fedl_error_clear(&err);
        status = fedl_csv_field_float(r, 1, &value, &missing, &err);
        switch (c->kind) {
        case VALUE:
            if (status != FEDL_OK)
                fail_msg("\"%s\": %s", c->text, err.message);
            if (isnan(c->value) ? !isnan(value) : bits_of(value) != bits_of(c->value))
                fail_msg("\"%s\": got %.9g (0x%08x), expected %.9g (0x%08x)", c->text, value,
                         bits_of(value), c->value, bits_of(c->value));
            assert_int_equal(missing, 0);
            break;
        case MISSING:
            assert_int_equal(status, FEDL_OK);
            assert_int_equal(missing, 1);
            assert_true(value == 0.0f);
            /* Without the flag a missing value is an error. */
            assert_int_equal(fedl_csv_field_float(r, 1, &value, NULL, &err), FEDL_ERR_FORMAT);
            assert_contains(err.message, "n.csv:1:3: field 2 ");
            assert_contains(err.message, "the field is empty: expected a number");
            break;
        case ERROR:
            if (status != FEDL_ERR_FORMAT)
                fail_msg("\"%s\": expected an error, got %s (%.9g)", c->text, fedl_strerror(status),
                         value);
            assert_true(value == 12345.0f); /* untouched */
            assert_contains(err.message, "n.csv:1:3: field 2 \"");
            assert_contains(err.message, c->error);
            break;
        }
        fedl_csv_close(r);
    }
}

static void test_csv_float_error_message_is_exact(void **state)
{
    static const char text[] = "id,pixel4\n1,12.3.4\n";
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    float v;
    int more;
    (void)state;
    o.name = "train.csv";
    assert_int_equal(fedl_csv_open_memory(text, sizeof text - 1, &o, NULL, &r, &err), FEDL_OK);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(fedl_csv_field_float(r, 1, &v, NULL, &err), FEDL_ERR_FORMAT);
    assert_string_equal(err.message,
                        "train.csv:2:3: field 2 (pixel4) \"12.3.4\": expected a number");
    /* The reader goes on after a conversion error. */
    assert_int_equal(fedl_csv_field_float(r, 0, &v, NULL, &err), FEDL_OK);
    assert_true(v == 1.0f);
    assert_int_equal(fedl_csv_field_float(r, 2, &v, NULL, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_csv_next_record(r, &more, &err), FEDL_OK);
    assert_int_equal(more, 0);
    fedl_csv_close(r);
}

/* -------------------------------------------------------------- integers */

typedef struct int_case {
    const char *text;
    expect_kind kind;
    int64_t value;
    const char *error;
} int_case;

static const int_case int_cases[] = {
    {"0", VALUE, 0, NULL},
    {"42", VALUE, 42, NULL},
    {"-7", VALUE, -7, NULL},
    {"+9", VALUE, 9, NULL},
    {" 8 ", VALUE, 8, NULL},
    {"007", VALUE, 7, NULL},
    {"\"\t5\"", VALUE, 5, NULL},
    {"9223372036854775807", VALUE, INT64_MAX, NULL},
    {"-9223372036854775808", VALUE, INT64_MIN, NULL},
    {"9223372036854775808", ERROR, 0, "out of the int64 range"},
    {"-9223372036854775809", ERROR, 0, "out of the int64 range"},
    {"99999999999999999999999", ERROR, 0, "out of the int64 range"},
    {"1.0", ERROR, 0, "expected an integer"},
    {"1e3", ERROR, 0, "expected an integer"},
    {"0x1f", ERROR, 0, "no hex"},
    {"-", ERROR, 0, "expected an integer"},
    {"abc", ERROR, 0, "expected an integer"},
    {"1 2", ERROR, 0, "expected an integer"},
    {"", MISSING, 0, NULL},
    {" ", MISSING, 0, NULL},
};

static void test_csv_int_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof int_cases / sizeof int_cases[0]; k++) {
        const int_case *c = &int_cases[k];
        char text[128];
        fedl_csv_reader *r;
        fedl_error err;
        int64_t value = 777;
        int missing = -1;
        fedl_status status;
        snprintf(text, sizeof text, "x,%s", c->text);
        r = open_one(text, 0);
        status = fedl_csv_field_int(r, 1, &value, &missing, &err);
        switch (c->kind) {
        case VALUE:
            if (status != FEDL_OK)
                fail_msg("\"%s\": %s", c->text, err.message);
            assert_true(value == c->value);
            assert_int_equal(missing, 0);
            break;
        case MISSING:
            assert_int_equal(status, FEDL_OK);
            assert_int_equal(missing, 1);
            assert_int_equal(fedl_csv_field_int(r, 1, &value, NULL, &err), FEDL_ERR_FORMAT);
            assert_contains(err.message, "the field is empty: expected an integer");
            break;
        case ERROR:
            if (status != FEDL_ERR_FORMAT)
                fail_msg("\"%s\": expected an error, got %s", c->text, fedl_strerror(status));
            assert_true(value == 777);
            assert_contains(err.message, c->error);
            break;
        }
        fedl_csv_close(r);
    }
}

/* ------------------------------------------------------- bulk round trips */

/* Parse a one-column memory CSV of n values into out. */
static void parse_column(const char *text, size_t length, float *out, size_t n)
{
    fedl_csv_options o = fedl_csv_defaults();
    fedl_csv_reader *r;
    fedl_error err;
    fedl_status status;
    size_t i = 0;
    int more;
    o.has_header = 0;
    assert_int_equal(fedl_csv_open_memory(text, length, &o, NULL, &r, &err), FEDL_OK);
    while ((status = fedl_csv_next_record(r, &more, &err)) == FEDL_OK && more) {
        assert_true(i < n);
        if (fedl_csv_field_float(r, 0, &out[i], NULL, &err) != FEDL_OK)
            fail_msg("record %zu: %s", i + 1, err.message);
        i++;
    }
    assert_int_equal(status, FEDL_OK);
    assert_int_equal(i, n);
    fedl_csv_close(r);
}

#define ROUND_TRIP_COUNT 1000000

/* Every finite float32 printed with 9 significant digits names it
 * uniquely; parsing must give back the very same bits. The patterns are
 * uniform over all bits, so about 1 in 256 is a denormal; the edges are
 * added explicitly. */
static void test_csv_float_round_trips_a_million_random_bit_patterns(void **state)
{
    static const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u,
                                     0x007fffffu, 0x00800000u, 0x7f7fffffu, 0xff7fffffu,
                                     0x3f800000u, 0x3f800001u, 0x4b800000u, 0x4b800001u};
    size_t n = ROUND_TRIP_COUNT, at = 0, denormals = 0;
    uint32_t *bits = malloc(n * sizeof *bits);
    float *parsed = malloc(n * sizeof *parsed);
    char *text = malloc(n * 20);
    fedl_rng rng;
    (void)state;
    assert_non_null(bits);
    assert_non_null(parsed);
    assert_non_null(text);
    fedl_rng_init(&rng, 20240611, 9);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (i < sizeof edges / sizeof edges[0]) {
            u = edges[i];
        } else {
            do {
                u = fedl_rng_u32(&rng);
            } while ((u & 0x7f800000u) == 0x7f800000u); /* inf and NaN */
        }
        if ((u & 0x7f800000u) == 0 && (u & 0x007fffffu) != 0)
            denormals++;
        bits[i] = u;
        at += (size_t)snprintf(text + at, 20, "%.9g\n", (double)float_of(u));
    }
    assert_true(denormals > 1000);
    parse_column(text, at, parsed, n);
    for (size_t i = 0; i < n; i++)
        if (bits_of(parsed[i]) != bits[i])
            fail_msg("0x%08x printed as %.9g came back as 0x%08x", bits[i],
                     (double)float_of(bits[i]), bits_of(parsed[i]));
    free(text);
    free(parsed);
    free(bits);
}

/* Random short decimals (the fast path's domain and just outside it) and
 * decimals near the midpoint of two floats agree with strtof in the "C"
 * locale. */
static void test_csv_float_agrees_with_strtof_on_random_decimals(void **state)
{
    size_t n = 300000, at = 0;
    char *text = malloc(n * 48);
    float *parsed = malloc(n * sizeof *parsed);
    float *expected = malloc(n * sizeof *expected);
    fedl_rng rng;
    (void)state;
    assert_non_null(text);
    assert_non_null(parsed);
    assert_non_null(expected);
    assert_string_equal(setlocale(LC_NUMERIC, NULL), "C");
    fedl_rng_init(&rng, 77, 10);
    for (size_t i = 0; i < n; i++) {
        char s[48];
        if (i % 3 == 2) {
            /* Near a midpoint: 1 + 2^-24 scaled, nudged by a digit. */
            float f = float_of(fedl_rng_u32(&rng) & 0x7effffffu);
            double mid = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
            snprintf(s, sizeof s, "%.*e", 8 + (int)fedl_rng_below(&rng, 12), mid);
        } else {
            uint32_t digits = 1 + fedl_rng_below(&rng, 9);
            uint32_t point = fedl_rng_below(&rng, digits + 1);
            int exponent = (int)fedl_rng_below(&rng, 29) - 14;
            size_t k = 0;
            if (fedl_rng_below(&rng, 4) == 0)
                s[k++] = '-';
            for (uint32_t d = 0; d < digits; d++) {
                if (d == point && d > 0)
                    s[k++] = '.';
                s[k++] = (char)('0' + fedl_rng_below(&rng, 10));
            }
            if (fedl_rng_below(&rng, 2))
                k += (size_t)snprintf(s + k, sizeof s - k, "e%d", exponent);
            s[k] = '\0';
        }
        expected[i] = strtof(s, NULL);
        at += (size_t)snprintf(text + at, 48, "%s\n", s);
    }
    parse_column(text, at, parsed, n);
    for (size_t i = 0; i < n; i++)
        if (bits_of(parsed[i]) != bits_of(expected[i]))
            fail_msg("value %zu: got 0x%08x, strtof gives 0x%08x", i, bits_of(parsed[i]),
                     bits_of(expected[i]));
    free(expected);
    free(parsed);
    free(text);
}

/* A decimal-comma locale compiled from the `locales` package's sources into
 * a temporary directory (found through LOCPATH), for machines that have
 * none installed; NULL when localedef or the sources are missing. */
static const char *compiled_locale_dir;

static const char *compile_decimal_comma_locale(void)
{
    const char *dir = compiled_locale_dir = test_make_temp_dir("locale");
    char command[512], numeric[400];
    struct stat st;
    if (dir == NULL)
        return NULL;
    snprintf(command, sizeof command,
             "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", dir);
    if (system(command) == -1) /* localedef exits 1 after mere warnings: look at its output */
        return NULL;
    snprintf(numeric, sizeof numeric, "%s/de_DE.UTF-8/LC_NUMERIC", dir);
    if (stat(numeric, &st) != 0)
        return NULL;
    setenv("LOCPATH", dir, 1);
    return setlocale(LC_ALL, "de_DE.UTF-8") != NULL ? "de_DE.UTF-8 (compiled)" : NULL;
}

/* Under a locale with a decimal comma, strtof reads "1.5" as 1, but the
 * reader still reads 1.5, on its fast path and on its strtof_l path. */
static void test_csv_float_ignores_process_locale(void **state)
{
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8",
                                  "fr_FR.utf8",  "nl_NL.UTF-8", "ru_RU.UTF-8"};
    static const char text[] = "1.5\n3.14159274\n-2.5e-3\n1.0000000596046447753906251\n";
    const float want[] = {1.5f, 3.14159274f, -2.5e-3f, 1.00000012f};
    float got[4];
    const char *active = NULL;
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && active == NULL; i++)
        if (setlocale(LC_ALL, names[i]) != NULL)
            active = names[i];
    if (active == NULL)
        active = compile_decimal_comma_locale();
    if (active == NULL) {
        print_message("no locale with a decimal comma is installed and none could be compiled "
                      "(localedef, Debian package locales): skipped\n");
        skip();
        return;
    }
    if (strcmp(localeconv()->decimal_point, ",") != 0) {
        setlocale(LC_ALL, "C");
        print_message("locale %s has no decimal comma: skipped\n", active);
        skip();
        return;
    }
    /* The locale is live: the C library's own strtof stops at the point. */
    assert_true(strtof("1.5", NULL) == 1.0f);
    parse_column(text, sizeof text - 1, got, 4);
    setlocale(LC_ALL, "C");
    if (compiled_locale_dir != NULL) {
        char command[512];
        snprintf(command, sizeof command, "rm -rf '%s'", compiled_locale_dir);
        assert_int_equal(system(command), 0);
        unsetenv("LOCPATH");
    }
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(bits_of(got[i]), bits_of(want[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_float_table),
        cmocka_unit_test(test_csv_float_error_message_is_exact),
        cmocka_unit_test(test_csv_int_table),
        cmocka_unit_test(test_csv_float_round_trips_a_million_random_bit_patterns),
        cmocka_unit_test(test_csv_float_agrees_with_strtof_on_random_decimals),
        cmocka_unit_test(test_csv_float_ignores_process_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
