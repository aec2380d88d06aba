/*
 * test_monitor.c - the monitor over a fake /proc: its thread notices a
 * change within a few intervals, calls the callbacks, publishes the state;
 * wait_until_clear returns when the pressure passes or when cancelled;
 * reports become JSON lines; and a stopped monitor samples on the caller's
 * thread.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/monitor.h"
#include "support/test_support.h"

/* A fake root with proc/meminfo: `available_kb` of 1,000,000 kB. */
static void write_meminfo(const char *root, unsigned long available_kb)
{
    char path[4096], tmp[4200], text[256];
    int n = snprintf(text, sizeof text,
                     "MemTotal:        1000000 kB\nMemFree:          %lu kB\n"
                     "MemAvailable:     %lu kB\nSwapTotal:             0 kB\n"
                     "SwapFree:              0 kB\n",
                     available_kb, available_kb);
    snprintf(path, sizeof path, "%s/proc/meminfo", root);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(test_write_file(tmp, text, (size_t)n), 0);
    assert_int_equal(rename(tmp, path), 0); /* atomic: the monitor never reads half */
}

static const char *make_root(unsigned long available_kb)
{
    static char root[4096];
    char proc[4200];
    snprintf(root, sizeof root, "%s", test_make_temp_dir("monitor"));
    snprintf(proc, sizeof proc, "%s/proc", root);
    assert_int_equal(mkdir(proc, 0755), 0);
    write_meminfo(root, available_kb);
    return root;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct seen {
    int calls;
    fedl_pressure last_to;
    char last_action[64];
} seen;

static void remember(void *user, const fedl_monitor_event *e)
{
    seen *s = user;
    s->calls++;
    s->last_to = e->to;
    snprintf(s->last_action, sizeof s->last_action, "%s", e->action);
}

static fedl_monitor *start_fast_monitor(const char *root, int log_fd, seen *s)
{
    fedl_monitor_config c = fedl_monitor_config_defaults();
    fedl_monitor *m = NULL;
    fedl_error err = {0};
    c.probe.root = root;
    c.policy.interval_ms = 20;
    c.policy.dwell_ms = 60;
    c.policy.cooldown_ms = 100;
    c.log_fd = log_fd;
    assert_int_equal(fedl_monitor_create(&c, &m, &err), FEDL_OK);
    if (s != NULL)
        assert_int_equal(fedl_monitor_add_callback(m, remember, s, &err), FEDL_OK);
    assert_int_equal(fedl_monitor_start(m, &err), FEDL_OK);
    return m;
}

/* Poll the state for up to `ms`. */
static int reaches(fedl_monitor *m, fedl_pressure want, long ms)
{
    for (long waited = 0; waited <= ms; waited += 10) {
        if (fedl_monitor_state(m, NULL, NULL) == want)
            return 1;
        sleep_ms(10);
    }
    return 0;
}

static void test_monitor_thread_follows_the_readings(void **state)
{
    const char *root = make_root(800000);
    seen s = {0};
    fedl_monitor *m = start_fast_monitor(root, -1, &s);
    uint64_t generation, later;
    char reason[FEDL_PROBE_TEXT_MAX];
    fedl_readings r;
    (void)state;
    assert_int_equal(fedl_monitor_state(m, &generation, NULL), FEDL_PRESSURE_OK);
    write_meminfo(root, 20000); /* 2%: CRITICAL */
    assert_true(reaches(m, FEDL_PRESSURE_CRITICAL, 2000));
    fedl_monitor_state(m, &later, NULL);
    assert_true(later > generation);
    fedl_monitor_latest(m, &r, reason, sizeof reason);
    assert_int_equal(r.mem_available, 20000ull * 1024);
    assert_non_null(strstr(reason, "memory available 2.0%"));
    write_meminfo(root, 800000);
    assert_true(reaches(m, FEDL_PRESSURE_OK, 2000));
    fedl_monitor_stop(m);
    assert_true(s.calls >= 2);
    assert_int_equal(s.last_to, FEDL_PRESSURE_OK);
    assert_string_equal(s.last_action, "detected");
    fedl_monitor_destroy(m);
}

static int cancel_flag;

static void test_monitor_wait_until_clear_returns_or_is_cancelled(void **state)
{
    const char *root = make_root(20000);
    fedl_monitor *m = start_fast_monitor(root, -1, NULL);
    (void)state;
    assert_true(reaches(m, FEDL_PRESSURE_CRITICAL, 2000));
    assert_int_equal(fedl_monitor_wait_until_clear(m, NULL, 150), 0); /* timeout */
    cancel_flag = 1;
    assert_int_equal(fedl_monitor_wait_until_clear(m, &cancel_flag, 0), 0);
    cancel_flag = 0;
    write_meminfo(root, 900000);
    assert_int_equal(fedl_monitor_wait_until_clear(m, &cancel_flag, 5000), 1);
    assert_int_not_equal(fedl_monitor_state(m, NULL, NULL), FEDL_PRESSURE_CRITICAL);
    fedl_monitor_destroy(m); /* stops the thread */
}

static void test_monitor_without_thread_samples_on_the_caller(void **state)
{
    const char *root = make_root(20000);
    fedl_monitor_config c = fedl_monitor_config_defaults();
    fedl_monitor *m = NULL;
    fedl_policy_decision d;
    fedl_error err = {0};
    (void)state;
    c.probe.root = root;
    c.policy.interval_ms = 20;
    c.policy.cooldown_ms = 60;
    assert_int_equal(fedl_monitor_create(&c, &m, &err), FEDL_OK);
    assert_int_equal(fedl_monitor_sample(m, &d, &err), FEDL_OK);
    assert_int_equal(d.state, FEDL_PRESSURE_CRITICAL);
    assert_int_equal(d.changed, 1);
    write_meminfo(root, 900000);
    assert_int_equal(fedl_monitor_wait_until_clear(m, NULL, 5000), 1);
    fedl_monitor_destroy(m);
}

static void test_monitor_report_writes_one_json_line(void **state)
{
    const char *root = make_root(20000);
    char path[4200], line[4096];
    int fd;
    FILE *f;
    fedl_monitor *m;
    seen s = {0};
    (void)state;
    snprintf(path, sizeof path, "%s/monitor.jsonl", root);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    m = start_fast_monitor(root, fd, &s);
    assert_true(reaches(m, FEDL_PRESSURE_CRITICAL, 2000));
    fedl_monitor_stop(m);
    fedl_monitor_report(m, FEDL_PRESSURE_OK, "release \"all\"", 30u << 20, 6u << 20);
    close(fd);
    assert_string_equal(s.last_action, "release \"all\"");
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_null(fgets(path, sizeof path, f)); /* one line only */
    fclose(f);
    assert_non_null(strstr(line, "{\"time\":"));
    assert_non_null(strstr(line, "\"from\":\"ok\",\"to\":\"critical\""));
    assert_non_null(strstr(line, "\"action\":\"release \\\"all\\\"\""));
    assert_non_null(strstr(line, "\"rss_before\":31457280,\"rss_after\":6291456"));
    assert_non_null(strstr(line, "\"memavailable\":20480000"));
    assert_non_null(strstr(line, "\"reason\":\"memory available 2.0%"));
    assert_int_equal(line[strlen(line) - 1], '\n');
    assert_int_equal(line[strlen(line) - 2], '}');
    fedl_monitor_destroy(m);
}

static void test_monitor_format_event_escapes_and_fits(void **state)
{
    fedl_monitor_event e;
    char buf[4096], small[64];
    size_t n;
    (void)state;
    memset(&e, 0, sizeof e);
    e.time = 1.5;
    e.from = FEDL_PRESSURE_CONSTRAINED;
    e.to = FEDL_PRESSURE_OK;
    e.reason = "tab\there \\ \"quoted\"\n";
    e.action = "restore";
    n = fedl_monitor_format_event(&e, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "\"reason\":\"tab\\u0009here \\\\ \\\"quoted\\\"\\u000a\""));
    n = fedl_monitor_format_event(&e, small, sizeof small);
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof small);
    assert_int_equal(small[n - 1], '\n');
    assert_int_equal(small[n - 2], '}');
}

static void test_monitor_rejects_a_bad_policy_and_double_start(void **state)
{
    fedl_monitor_config c = fedl_monitor_config_defaults();
    fedl_monitor *m = NULL;
    fedl_error err = {0};
    const char *root = make_root(800000);
    (void)state;
    c.policy.mem_critical_leave_pct = 1.0; /* below its enter level */
    assert_int_equal(fedl_monitor_create(&c, &m, &err), FEDL_ERR_INVALID_ARG);
    assert_null(m);
    m = start_fast_monitor(root, -1, NULL);
    assert_int_equal(fedl_monitor_start(m, &err), FEDL_ERR_STATE);
    assert_int_equal(fedl_monitor_sample(m, NULL, &err), FEDL_ERR_STATE);
    fedl_monitor_destroy(m);
}

static void test_monitor_real_system_and_self_rss(void **state)
{
    fedl_monitor_config c = fedl_monitor_config_defaults();
    fedl_monitor *m = NULL;
    fedl_error err = {0};
    fedl_readings r;
    (void)state;
    assert_true(fedl_self_rss() > 0);
    c.policy.interval_ms = 20;
    assert_int_equal(fedl_monitor_create(&c, &m, &err), FEDL_OK);
    assert_int_equal(fedl_monitor_start(m, &err), FEDL_OK);
    sleep_ms(60);
    fedl_monitor_latest(m, &r, NULL, 0);
    assert_int_equal(r.has_meminfo, 1);
    assert_int_equal(r.has_rss, 1);
    fedl_monitor_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_thread_follows_the_readings),
        cmocka_unit_test(test_monitor_wait_until_clear_returns_or_is_cancelled),
        cmocka_unit_test(test_monitor_without_thread_samples_on_the_caller),
        cmocka_unit_test(test_monitor_report_writes_one_json_line),
        cmocka_unit_test(test_monitor_format_event_escapes_and_fits),
        cmocka_unit_test(test_monitor_rejects_a_bad_policy_and_double_start),
        cmocka_unit_test(test_monitor_real_system_and_self_rss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
