/*
 * test_policy.c - the pressure policy over synthetic and recorded reading
 * sequences: transitions, hysteresis, dwell and cooldown, the reserve, each
 * signal, no flapping on noise; and the policy file parser's errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/monitor.h"

#define MIB (1024ull * 1024ull)
#define MS (1000000ull)

/* Readings with only /proc/meminfo: `percent` of 1000 MiB available. */
static fedl_readings mem_reading(uint64_t t_ms, double percent)
{
    fedl_readings r;
    memset(&r, 0, sizeof r);
    r.time_ns = 1000 * MS + t_ms * MS;
    r.has_meminfo = 1;
    r.mem_total = 1000 * MIB;
    r.mem_available = (uint64_t)(percent / 100.0 * (double)r.mem_total);
    return r;
}

static fedl_pressure feed(fedl_policy_state *s, const fedl_readings *r)
{
    fedl_policy_decision d;
    fedl_policy_update(s, r, &d);
    return d.state;
}

static void test_policy_defaults_are_valid(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    (void)state;
    assert_int_equal(fedl_policy_check(&p, NULL), FEDL_OK);
    assert_string_equal(fedl_pressure_name(FEDL_PRESSURE_CRITICAL), "critical");
}

static void test_policy_enters_at_once_and_names_the_signal(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_policy_decision d;
    fedl_readings r = mem_reading(0, 50.0);
    (void)state;
    fedl_policy_init(&s, &p);
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_OK);
    assert_int_equal(d.changed, 0);
    assert_non_null(strstr(d.reason, "clear"));
    r = mem_reading(500, 12.0);
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_CONSTRAINED);
    assert_int_equal(d.previous, FEDL_PRESSURE_OK);
    assert_int_equal(d.changed, 1);
    assert_non_null(strstr(d.reason, "memory available 12.0%"));
    assert_non_null(strstr(d.reason, "MemAvailable"));
    r = mem_reading(1000, 5.0); /* straight on to CRITICAL, no dwell going up */
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_CRITICAL);
    assert_int_equal(d.changed, 1);
    r = mem_reading(1500, 1.0); /* from OK to CRITICAL in one reading too */
    fedl_policy_init(&s, &p);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
}

static void test_policy_leaves_only_after_dwell(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r;
    uint64_t t = 0;
    (void)state;
    fedl_policy_init(&s, &p);
    r = mem_reading(t, 10.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CONSTRAINED);
    /* 17% is above the enter level (15) but below the leave level (20): held. */
    for (t = 500; t <= 10000; t += 500) {
        r = mem_reading(t, 17.0);
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CONSTRAINED);
    }
    /* Above the leave level: OK only once it has held for dwell_ms (2 s). */
    for (t = 10500; t < 12500; t += 500) {
        r = mem_reading(t, 30.0);
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CONSTRAINED);
    }
    r = mem_reading(12500, 30.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_OK);
}

static void test_policy_critical_waits_for_cooldown_and_a_blip_restarts_it(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r;
    fedl_policy_decision d;
    uint64_t t;
    (void)state;
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 3.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    for (t = 500; t < 3000; t += 500) {
        r = mem_reading(t, 60.0);
        fedl_policy_update(&s, &r, &d);
        assert_int_equal(d.state, FEDL_PRESSURE_CRITICAL);
        assert_non_null(strstr(d.reason, "cooldown"));
    }
    /* A reading back below the critical leave level restarts the wait. */
    r = mem_reading(3000, 10.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    for (t = 3500; t < 8500; t += 500) {
        r = mem_reading(t, 60.0);
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    }
    r = mem_reading(8500, 60.0); /* 5 s of clear readings since 3500 */
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_OK);
}

static void test_policy_critical_steps_down_to_constrained_when_only_that_clears(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r;
    uint64_t t;
    (void)state;
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 3.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    for (t = 500; t <= 5500; t += 500) {
        r = mem_reading(t, 17.0); /* past the critical leave level (15), not the constrained (20) */
        feed(&s, &r);
    }
    assert_int_equal(s.state, FEDL_PRESSURE_CONSTRAINED);
}

static void test_policy_does_not_flap_on_noise(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_policy_decision d;
    uint64_t seed = 12345;
    int changes = 0;
    (void)state;
    fedl_policy_init(&s, &p);
    /* 1000 readings of 15% +- 4% (around the CONSTRAINED enter level) and
     * then 1000 of 8% +- 4% (around CRITICAL): one change each. */
    for (int i = 0; i < 2000; i++) {
        double noise;
        fedl_readings r;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        noise = ((double)(seed >> 11) / 9007199254740992.0 - 0.5) * 8.0;
        r = mem_reading((uint64_t)i * 500, (i < 1000 ? 15.0 : 8.0) + noise);
        fedl_policy_update(&s, &r, &d);
        changes += d.changed;
    }
    assert_int_equal(changes, 2);
    assert_int_equal(s.state, FEDL_PRESSURE_CRITICAL);
}

static void test_policy_reserve_keeps_critical_until_the_work_fits(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r;
    uint64_t t;
    (void)state;
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 5.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    /* The work released 100 MiB (10%); 22% available is only 12% once it is
     * back, below the critical leave level (15%). */
    fedl_policy_set_reserve(&s, 100 * MIB);
    for (t = 500; t <= 20000; t += 500) {
        r = mem_reading(t, 22.0);
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    }
    for (t = 20500; t < 25500; t += 500) {
        r = mem_reading(t, 40.0); /* 30% with the reserve: clear */
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    }
    r = mem_reading(25500, 40.0);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_OK);
}

static void test_policy_cgroup_tighter_than_the_system(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_policy_decision d;
    fedl_readings r = mem_reading(0, 80.0);
    double percent;
    (void)state;
    r.cgroup_version = 1;
    r.cgroup_limit = 128 * MIB;
    r.cgroup_usage = 125 * MIB;
    r.cgroup_inactive_file = 5 * MIB;
    r.cgroup_working_set = 120 * MIB; /* 8 MiB left: 6.25% */
    snprintf(r.cgroup_path, sizeof r.cgroup_path, "/fedl-test");
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 8 * MIB);
    assert_true(percent > 6.2 && percent < 6.3);
    fedl_policy_init(&s, &p);
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_CRITICAL);
    assert_non_null(strstr(d.reason, "cgroup v1 /fedl-test"));
}

static void test_policy_psi_temperature_throttle_and_load(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r;
    fedl_policy_decision d;
    (void)state;
    /* memory PSI full 12% > 10%: CRITICAL; it leaves below 5% only */
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 50.0);
    r.psi_memory.valid = 1;
    r.psi_memory.full_avg10 = 12.0;
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_CRITICAL);
    assert_non_null(strstr(d.reason, "memory PSI full"));
    for (uint64_t t = 500; t <= 20000; t += 500) {
        r.time_ns = 1000 * MS + t * MS;
        r.psi_memory.full_avg10 = 6.0;
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    }
    /* temperature: 76 C constrained, 83 C critical, held until below 77 */
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 50.0);
    r.thermal_zones = 1;
    snprintf(r.temp_zone, sizeof r.temp_zone, "cpu-thermal");
    r.temp_max_c = 76.0;
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.state, FEDL_PRESSURE_CONSTRAINED);
    assert_non_null(strstr(d.reason, "cpu-thermal 76.0 C"));
    r.temp_max_c = 83.0;
    r.time_ns += 500 * MS;
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    for (uint64_t t = 1000; t <= 20000; t += 500) {
        r.time_ns = 1000 * MS + t * MS;
        r.temp_max_c = 78.0;
        assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CRITICAL);
    }
    /* Raspberry Pi firmware: throttled now (bit 2) -> CONSTRAINED; only
     * "since boot" bits (16-19) -> OK */
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 50.0);
    r.has_throttle = 1;
    r.throttled = 0x50000;
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_OK);
    r.throttled = 0x50004;
    r.time_ns += 500 * MS;
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CONSTRAINED);
    /* load: off by default, on with load_per_cpu */
    fedl_policy_init(&s, &p);
    r = mem_reading(0, 50.0);
    r.has_load = 1;
    r.cpus = 4;
    r.load1 = 12.0;
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_OK);
    p.load_per_cpu = 2.0;
    fedl_policy_init(&s, &p);
    assert_int_equal(feed(&s, &r), FEDL_PRESSURE_CONSTRAINED);
}

static void test_policy_disk_floor_pauses_whatever_the_state(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_readings r = mem_reading(0, 50.0);
    fedl_policy_decision d;
    (void)state;
    fedl_policy_init(&s, &p);
    r.has_disk = 1;
    r.disk_free = 200 * MIB;
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.disk_low, 0);
    r.disk_free = 10 * MIB;
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.disk_low, 1);
    assert_int_equal(d.changed, 1);
    assert_int_equal(d.state, FEDL_PRESSURE_OK);
    assert_non_null(strstr(d.reason, "disk free"));
    r.disk_free = 80 * MIB; /* above the floor, below the leave level */
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.disk_low, 1);
    r.disk_free = 100 * MIB;
    fedl_policy_update(&s, &r, &d);
    assert_int_equal(d.disk_low, 0);
    assert_int_equal(d.changed, 1);
}

/* A recorded sequence: tests/monitor/data/pressure_trace.csv holds the
 * readings (ms, cgroup limit, working set, PSI some, PSI full) of a real run
 * in which a memory hog took a 128 MiB cgroup while fedl trained; replayed,
 * the policy goes critical once, stays there while the hog holds its
 * memory, and comes back once after the hog exits. */
static void test_policy_recorded_hog_trace(void **state)
{
    char path[4096], line[256];
    FILE *f;
    fedl_policy p = fedl_policy_defaults();
    fedl_policy_state s;
    fedl_policy_decision d;
    int rows = 0, to_critical = 0, back = 0, changes = 0;
    (void)state;
    snprintf(path, sizeof path, "%s/tests/monitor/data/pressure_trace.csv", FEDL_SOURCE_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    fedl_policy_init(&s, &p);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long ms, limit, working_set;
        double some, full;
        fedl_readings r;
        if (line[0] == '#' ||
            sscanf(line, "%llu,%llu,%llu,%lf,%lf", &ms, &limit, &working_set, &some, &full) != 5)
            continue;
        r = mem_reading(ms, 90.0);
        r.cgroup_version = 1;
        r.cgroup_limit = limit;
        r.cgroup_working_set = working_set;
        r.cgroup_usage = working_set;
        r.psi_memory.valid = 1;
        r.psi_memory.some_avg10 = some;
        r.psi_memory.full_avg10 = full;
        fedl_policy_update(&s, &r, &d);
        rows++;
        changes += d.changed;
        to_critical += d.changed && d.state == FEDL_PRESSURE_CRITICAL;
        back += d.changed && d.previous == FEDL_PRESSURE_CRITICAL;
    }
    fclose(f);
    assert_true(rows > 20);
    assert_int_equal(to_critical, 1);
    assert_int_equal(back, 1);
    assert_true(changes <= 4);
    assert_int_equal(s.state, FEDL_PRESSURE_OK);
}

/* ------------------------------------------------------------ the parser */

static void test_policy_parse_reads_every_kind(void **state)
{
    static const char text[] = "# a policy\n"
                               "mem_critical_pct = 10%\n"
                               "mem_critical_leave_pct=18   # comment\n"
                               "\n"
                               "  temp_critical_c = 80.5\n"
                               "throttle_constrained = no\n"
                               "disk_floor_bytes = 32M\n"
                               "cooldown_ms = 1.5s\n"
                               "dwell_ms = 250ms\n"
                               "interval_ms = 100\n";
    fedl_policy p = fedl_policy_defaults();
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_policy_parse(text, sizeof text - 1, "p.conf", &p, &err), FEDL_OK);
    assert_true(p.mem_critical_pct == 10.0);
    assert_true(p.mem_critical_leave_pct == 18.0);
    assert_true(p.temp_critical_c == 80.5);
    assert_int_equal(p.throttle_constrained, 0);
    assert_int_equal(p.disk_floor_bytes, 32 * MIB);
    assert_int_equal(p.cooldown_ms, 1500);
    assert_int_equal(p.dwell_ms, 250);
    assert_int_equal(p.interval_ms, 100);
    assert_true(p.mem_constrained_pct == 15.0); /* untouched: the default */
}

static void expect_parse_error(const char *text, const char *message)
{
    fedl_policy p = fedl_policy_defaults(), before = p;
    fedl_error err = {0};
    assert_int_equal(fedl_policy_parse(text, strlen(text), "p.conf", &p, &err), FEDL_ERR_FORMAT);
    if (strstr(err.message, message) == NULL)
        fail_msg("'%s' not in '%s'", message, err.message);
    assert_memory_equal(&p, &before, sizeof p); /* nothing changed */
}

static void test_policy_parse_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_parse_error("dwell_ms = 2s\nmem_critical = 5\n",
                       "p.conf:2:1: unknown key 'mem_critical'");
    expect_parse_error("dwell_ms = 2s\n  cooldown_ms = soon\n",
                       "p.conf:2:17: cooldown_ms: expected a duration");
    expect_parse_error("mem_critical_pct\n", "p.conf:1:1: expected 'key = value'");
    expect_parse_error("mem_critical_pct = \n",
                       "p.conf:1:20: mem_critical_pct: a value is missing");
    expect_parse_error("mem_critical_pct = 101\n", "not a percentage");
    expect_parse_error("mem_critical_pct = nan\n", "expected a percentage");
    expect_parse_error("disk_floor_bytes = lots\n", "expected a size");
    expect_parse_error("throttle_constrained = maybe\n", "expected 1, 0");
    expect_parse_error("mem_critical_leave_pct = 5\n", "must be at least mem_critical_pct");
    expect_parse_error("mem_critical_pct = 30\nmem_critical_leave_pct = 40\n",
                       "mem_critical_pct = 30 is above mem_constrained_pct");
    expect_parse_error("interval_ms = 1\n", "interval_ms = 1: must be 10 ms");
    expect_parse_error("disk_leave_bytes = 1M\n", "disk_leave_bytes");
}

/* docs/fedl-policy.conf lists every key at its default. */
static void test_policy_sample_file_holds_the_defaults(void **state)
{
    char path[4096];
    fedl_policy p, defaults = fedl_policy_defaults();
    fedl_error err = {0};
    (void)state;
    memset(&p, 0xab, sizeof p); /* every field must be set by the file */
    snprintf(path, sizeof path, "%s/docs/fedl-policy.conf", FEDL_SOURCE_DIR);
    assert_int_equal(fedl_policy_load(path, &p, &err), FEDL_OK);
#define SAME(field) assert_true(p.field == defaults.field)
    SAME(mem_constrained_pct);
    SAME(mem_constrained_leave_pct);
    SAME(mem_critical_pct);
    SAME(mem_critical_leave_pct);
    SAME(psi_mem_some_pct);
    SAME(psi_mem_full_pct);
    SAME(psi_cpu_some_pct);
    SAME(psi_leave_factor);
    SAME(load_per_cpu);
    SAME(temp_constrained_c);
    SAME(temp_critical_c);
    SAME(temp_leave_c);
    SAME(throttle_constrained);
    SAME(disk_floor_bytes);
    SAME(disk_leave_bytes);
    SAME(dwell_ms);
    SAME(cooldown_ms);
    SAME(interval_ms);
#undef SAME
}

static void test_policy_load_reports_a_missing_file(void **state)
{
    fedl_policy p = fedl_policy_defaults();
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_policy_load("/nonexistent/policy.conf", &p, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent/policy.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_defaults_are_valid),
        cmocka_unit_test(test_policy_enters_at_once_and_names_the_signal),
        cmocka_unit_test(test_policy_leaves_only_after_dwell),
        cmocka_unit_test(test_policy_critical_waits_for_cooldown_and_a_blip_restarts_it),
        cmocka_unit_test(test_policy_critical_steps_down_to_constrained_when_only_that_clears),
        cmocka_unit_test(test_policy_does_not_flap_on_noise),
        cmocka_unit_test(test_policy_reserve_keeps_critical_until_the_work_fits),
        cmocka_unit_test(test_policy_cgroup_tighter_than_the_system),
        cmocka_unit_test(test_policy_psi_temperature_throttle_and_load),
        cmocka_unit_test(test_policy_disk_floor_pauses_whatever_the_state),
        cmocka_unit_test(test_policy_recorded_hog_trace),
        cmocka_unit_test(test_policy_parse_reads_every_kind),
        cmocka_unit_test(test_policy_parse_errors_name_line_and_column),
        cmocka_unit_test(test_policy_sample_file_holds_the_defaults),
        cmocka_unit_test(test_policy_load_reports_a_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
