/*
 * csv_number.c - decimal text to float32 and int64, exactly and whatever the
 * process locale says.
 *
 * A float is parsed in two steps. Our own scanner checks the syntax (so
 * strtof's extras, hex floats, "nan(...)" and the locale's decimal point,
 * can never sneak in) and collects up to 19 significant digits. When the
 * digits form an integer m <= 2^24 and the decimal exponent e is within
 * [-10, 10], both m and 10^|e| are exact floats, so the one IEEE multiply
 * or divide m * 10^e (or m / 10^-e) is the correctly rounded result
 * (Clinger's fast path, done in float; doing it in double and narrowing
 * would round twice). That covers the integers and short decimals
 * training data is made of. Everything else goes to strtof_l with a "C"
 * locale object made once per process: glibc's strtof is correctly rounded,
 * and strtof_l ignores setlocale. On glibc and musl a "C" newlocale is a
 * static object, so this allocates nothing.
 */
#define _GNU_SOURCE /* strtof_l in glibc's stdlib.h */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv_internal.h"

#define FAST_PATH_MAX_MANTISSA ((uint64_t)1 << 24)
#define FAST_PATH_MAX_EXPONENT 10
#define MAX_SIGNIFICANT_DIGITS 19 /* 10^19 - 1 fits in uint64 */
#define EXPONENT_CLAMP 100000     /* far beyond any float; keeps the sums small */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Trim spaces and tabs at both ends of [*p, *end). */
static void trim(const char **p, const char **end)
{
    while (*p < *end && is_blank(**p))
        (*p)++;
    while (*end > *p && is_blank((*end)[-1]))
        (*end)--;
}

/* [p, end) equals word (lower case) ignoring ASCII case. */
static int word_is(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

static csv_number_result parse_nonfinite(const char *p, const char *end, int negative,
                                         int allow_nonfinite, float *out)
{
    float value;
    if (word_is(p, end, "inf") || word_is(p, end, "infinity"))
        value = INFINITY;
    else if (word_is(p, end, "nan"))
        value = NAN;
    else
        return CSV_NUMBER_SYNTAX;
    if (!allow_nonfinite)
        return CSV_NUMBER_NONFINITE;
    *out = negative ? -value : value;
    return CSV_NUMBER_OK;
}

/* "0x..." where a decimal number was expected (only asked once the text
 * failed to parse, so it costs the fast path nothing). */
static int looks_hex(const char *p, const char *end)
{
    return end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

csv_number_result csv_parse_float(const char *text, size_t length, int allow_nonfinite, float *out)
{
    const char *p = text;
    const char *end = text + length;
    const char *start, *digits;
    uint64_t mantissa = 0; /* all digits, leading zeros too; wraps past 19 digits */
    size_t integer_digits, fraction_digits = 0;
    int64_t exponent = 0;
    int negative = 0;
    float value;
    char *stop;

    trim(&p, &end);
    if (p == end)
        return CSV_NUMBER_MISSING;
    start = p;
    if (*p == '+' || *p == '-') {
        negative = *p == '-';
        p++;
    }
    digits = p;
    for (; p < end && is_digit(*p); p++)
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    integer_digits = (size_t)(p - digits);
    if (p < end && *p == '.') {
        const char *fraction = ++p;
        for (; p < end && is_digit(*p); p++)
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        fraction_digits = (size_t)(p - fraction);
    }
    if (integer_digits + fraction_digits == 0) {
        if (p == digits && p < end && *p != '.')
            return parse_nonfinite(p, end, negative, allow_nonfinite, out);
        return CSV_NUMBER_SYNTAX; /* ".", "+.", ".e5" */
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int exponent_negative = 0;
        int64_t written = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            exponent_negative = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p))
            return CSV_NUMBER_SYNTAX; /* "1e", "1e+" */
        for (; p < end && is_digit(*p); p++)
            if (written < EXPONENT_CLAMP)
                written = written * 10 + (*p - '0');
        exponent = exponent_negative ? -written : written;
    }
    if (p != end)
        return looks_hex(digits, end) ? CSV_NUMBER_HEX : CSV_NUMBER_SYNTAX; /* "1.2.3", "1e5x" */

    if (integer_digits + fraction_digits <= MAX_SIGNIFICANT_DIGITS) {
        /* mantissa is exact: no digit was lost. */
        if (mantissa == 0) {
            *out = negative ? -0.0f : 0.0f;
            return CSV_NUMBER_OK;
        }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
        /* Only where float arithmetic is done in float (not x87's extended
         * registers), or the single rounding below would be two. */
        exponent -= (int64_t)fraction_digits;
        if (mantissa <= FAST_PATH_MAX_MANTISSA && exponent >= -FAST_PATH_MAX_EXPONENT &&
            exponent <= FAST_PATH_MAX_EXPONENT) {
            static const float powers[FAST_PATH_MAX_EXPONENT + 1] = {
                1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
            value = (float)mantissa;
            value = exponent < 0 ? value / powers[-exponent] : value * powers[exponent];
            *out = negative ? -value : value;
            return CSV_NUMBER_OK;
        }
#endif
    }
    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale == (locale_t)0)
        return CSV_NUMBER_NOLOCALE;
    /* The syntax is checked and text ends in a blank or the NUL at
     * text[length], so strtof_l reads exactly [start, end). */
    value = strtof_l(start, &stop, c_locale);
    if (stop != end)
        return CSV_NUMBER_SYNTAX;
    if (isinf(value) && !allow_nonfinite)
        return CSV_NUMBER_RANGE;
    *out = value;
    return CSV_NUMBER_OK;
}

csv_number_result csv_parse_int64(const char *text, size_t length, int64_t *out)
{
    const char *p = text;
    const char *end = text + length;
    const char *digits, *significant;
    uint64_t value = 0;
    uint64_t limit;
    int negative = 0;

    trim(&p, &end);
    if (p == end)
        return CSV_NUMBER_MISSING;
    if (*p == '+' || *p == '-') {
        negative = *p == '-';
        p++;
    }
    digits = p;
    while (p < end && *p == '0')
        p++;
    significant = p;
    for (; p < end && is_digit(*p); p++)
        value = value * 10 + (uint64_t)(*p - '0'); /* wraps past 19 digits: checked below */
    if (p != end || p == digits)
        return looks_hex(digits, end) ? CSV_NUMBER_HEX : CSV_NUMBER_SYNTAX;
    /* 19 digits cannot wrap (10^19 - 1 < 2^64); 20 or more are too many. */
    limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (p - significant > MAX_SIGNIFICANT_DIGITS || value > limit)
        return CSV_NUMBER_RANGE;
    if (negative)
        *out = value == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)value;
    else
        *out = (int64_t)value;
    return CSV_NUMBER_OK;
}
