/* test_core.c - status messages, logging, the Philox RNG and CRC-32C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#if defined(__linux__) && (defined(__aarch64__) || defined(__arm__))
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "core/crc32c.h"
#include "fedl/core.h"
#include "fedl/mem.h"

static void test_strerror_names_every_status(void **state)
{
    (void)state;
    for (int s = 0; s < FEDL_STATUS_COUNT; s++) {
        const char *text = fedl_strerror((fedl_status)s);
        assert_non_null(text);
        assert_true(strlen(text) > 3);
        assert_string_not_equal(text, "unknown status");
    }
    assert_string_equal(fedl_strerror((fedl_status)999), "unknown status");
}

static void test_error_set_formats_message_and_returns_status(void **state)
{
    fedl_error err;
    (void)state;
    assert_int_equal(
        fedl_error_set(&err, FEDL_ERR_FORMAT, "%s: field %s at byte %d", "a.idx", "magic", 3),
        FEDL_ERR_FORMAT);
    assert_int_equal(err.status, FEDL_ERR_FORMAT);
    assert_string_equal(err.message, "a.idx: field magic at byte 3");
    assert_int_equal(fedl_error_set(NULL, FEDL_ERR_IO, "ignored"), FEDL_ERR_IO);
    fedl_error_clear(&err);
    assert_int_equal(err.status, FEDL_OK);
    assert_string_equal(err.message, "");
}

typedef struct captured_log {
    int calls;
    fedl_log_level level;
    char text[128];
} captured_log;

static void capture_sink(void *ud, fedl_log_level level, const char *message)
{
    captured_log *c = ud;
    c->calls++;
    c->level = level;
    strncpy(c->text, message, sizeof c->text - 1);
}

static void test_log_filters_by_level_and_reaches_sink(void **state)
{
    captured_log c = {0};
    fedl_log_level parsed;
    (void)state;
    fedl_log_set_sink(capture_sink, &c);
    fedl_log_set_level(FEDL_LOG_WARN);
    fedl_log(FEDL_LOG_INFO, "hidden %d", 1);
    assert_int_equal(c.calls, 0);
    fedl_log(FEDL_LOG_ERROR, "shown %d", 2);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.level, FEDL_LOG_ERROR);
    assert_string_equal(c.text, "shown 2");
    fedl_log_set_sink(NULL, NULL);
    assert_int_equal(fedl_log_level_parse("debug", &parsed), FEDL_OK);
    assert_int_equal(parsed, FEDL_LOG_DEBUG);
    assert_int_equal(fedl_log_level_parse("loud", &parsed), FEDL_ERR_INVALID_ARG);
}

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution
 * (kat_vectors): the generator is the reference one, bit for bit. */
static void test_philox_matches_random123_known_answers(void **state)
{
    const uint32_t key0[2] = {0, 0}, ctr0[4] = {0, 0, 0, 0};
    const uint32_t key1[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t ctr1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t key2[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    uint32_t out[4];
    (void)state;
    fedl_philox4x32(key0, ctr0, out);
    assert_int_equal(out[0], 0x6627e8d5u);
    assert_int_equal(out[1], 0xe169c58du);
    assert_int_equal(out[2], 0xbc57ac4cu);
    assert_int_equal(out[3], 0x9b00dbd8u);
    fedl_philox4x32(key1, ctr1, out);
    assert_int_equal(out[0], 0x408f276du);
    assert_int_equal(out[1], 0x41c83b0eu);
    assert_int_equal(out[2], 0xa20bc7c6u);
    assert_int_equal(out[3], 0x6d5451fdu);
    fedl_philox4x32(key2, ctr2, out);
    assert_int_equal(out[0], 0xd16cfe09u);
    assert_int_equal(out[1], 0x94fdccebu);
    assert_int_equal(out[2], 0x5001e420u);
    assert_int_equal(out[3], 0x24126ea1u);
}

static void test_rng_streams_are_reproducible_and_distinct(void **state)
{
    fedl_rng a, b, c;
    int same_as_other_stream = 0;
    (void)state;
    fedl_rng_init(&a, 1234, 5);
    fedl_rng_init(&b, 1234, 5);
    fedl_rng_init(&c, 1234, 6);
    for (int i = 0; i < 1000; i++) {
        uint32_t va = fedl_rng_u32(&a), vb = fedl_rng_u32(&b), vc = fedl_rng_u32(&c);
        assert_int_equal(va, vb);
        same_as_other_stream += va == vc;
    }
    assert_true(same_as_other_stream < 3);
}

static void test_rng_seek_lands_where_sequential_draws_are(void **state)
{
    fedl_rng seq, jump;
    uint32_t words[37];
    (void)state;
    fedl_rng_init(&seq, 99, 5);
    for (int i = 0; i < 37; i++)
        words[i] = fedl_rng_u32(&seq);
    for (uint64_t w = 0; w < 37; w++) {
        fedl_rng_init(&jump, 99, 5);
        fedl_rng_seek(&jump, w);
        for (uint64_t k = w; k < 37; k++)
            assert_int_equal(fedl_rng_u32(&jump), words[k]);
    }
}

static void test_rng_uniform_and_below_stay_in_range(void **state)
{
    fedl_rng r;
    int histogram[7] = {0};
    double sum = 0.0;
    (void)state;
    fedl_rng_init(&r, 99, 0);
    for (int i = 0; i < 70000; i++) {
        float u = fedl_rng_uniform(&r);
        uint32_t k = fedl_rng_below(&r, 7);
        assert_true(u >= 0.0f && u < 1.0f);
        assert_true(k < 7);
        histogram[k]++;
        sum += u;
    }
    for (int k = 0; k < 7; k++)
        assert_in_range(histogram[k], 9400, 10600);
    assert_true(sum / 70000.0 > 0.49 && sum / 70000.0 < 0.51);
}

static void test_crc32c_matches_standard_check_value(void **state)
{
    const char *check = "123456789";
    unsigned char zeros[32] = {0};
    uint32_t split;
    (void)state;
    /* The CRC catalogue's check value of CRC-32C and RFC 3720's 32 zero bytes. */
    assert_int_equal(fedl_crc32c(0, check, 9), 0xE3069283u);
    assert_int_equal(fedl_crc32c(0, zeros, 32), 0x8A9136AAu);
    split = fedl_crc32c(fedl_crc32c(0, check, 4), check + 4, 5);
    assert_int_equal(split, 0xE3069283u);
}

/* What the dispatcher must pick here: the instruction path wherever the
 * build has one and the CPU, as the kernel (or qemu) reports it, runs it. */
static const char *expected_crc_implementation(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? "sse4.2" : "portable";
#elif defined(__aarch64__) && defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? "armv8-crc" : "portable";
#elif defined(__arm__) && defined(__ARM_FEATURE_CRC32) && defined(__linux__)
    return (getauxval(AT_HWCAP2) & HWCAP2_CRC32) ? "armv8-crc" : "portable";
#else
    return "portable";
#endif
}

/* The instruction path (SSE4.2 or ARMv8 CRC, where the CPU has it) is the
 * one chosen, and it and the tables agree on every length and start
 * alignment, also when chained. */
static void test_crc32c_hardware_and_portable_agree(void **state)
{
    unsigned char buf[512 + 16];
    fedl_rng rng;
    (void)state;
    fedl_rng_init(&rng, 5, 0);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)fedl_rng_u32(&rng);
    print_message("CRC-32C implementation: %s\n", fedl_crc32c_implementation());
    assert_string_equal(fedl_crc32c_implementation(), expected_crc_implementation());
    for (size_t offset = 0; offset < 16; offset++) {
        for (size_t len = 0; len <= 512; len++) {
            uint32_t fast = fedl_crc32c(0, buf + offset, len);
            uint32_t slow = fedl_crc32c_portable(0, buf + offset, len);
            if (fast != slow)
                fail_msg("offset %zu length %zu: %08x vs %08x", offset, len, fast, slow);
        }
    }
    assert_int_equal(fedl_crc32c(fedl_crc32c(7, buf, 100), buf + 100, 300),
                     fedl_crc32c_portable(fedl_crc32c_portable(7, buf, 100), buf + 100, 300));
    assert_int_equal(fedl_crc32c_portable(0, "123456789", 9), 0xE3069283u);
}

static void test_parse_size_accepts_units_and_names_bad_input(void **state)
{
    size_t v = 0;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_parse_size("48M", &v, &err), FEDL_OK);
    assert_int_equal(v, 48u << 20);
    assert_int_equal(fedl_parse_size("1G", &v, &err), FEDL_OK);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(fedl_parse_size("512KiB", &v, &err), FEDL_OK);
    assert_int_equal(v, 512u << 10);
    assert_int_equal(fedl_parse_size("4096", &v, &err), FEDL_OK);
    assert_int_equal(v, 4096);
    assert_int_equal(fedl_parse_size("12X", &v, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "position 2"));
    assert_int_equal(fedl_parse_size("-3", &v, &err), FEDL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_status),
        cmocka_unit_test(test_error_set_formats_message_and_returns_status),
        cmocka_unit_test(test_log_filters_by_level_and_reaches_sink),
        cmocka_unit_test(test_philox_matches_random123_known_answers),
        cmocka_unit_test(test_rng_streams_are_reproducible_and_distinct),
        cmocka_unit_test(test_rng_seek_lands_where_sequential_draws_are),
        cmocka_unit_test(test_rng_uniform_and_below_stay_in_range),
        cmocka_unit_test(test_crc32c_matches_standard_check_value),
        cmocka_unit_test(test_crc32c_hardware_and_portable_agree),
        cmocka_unit_test(test_parse_size_accepts_units_and_names_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
