/* test_probe.c - the monitor's resource probes: fedl_probe_read over fake
 * /proc and /sys trees (meminfo, PSI, cgroup v1 and v2 walks by working
 * set, events, RSS, load, thermal zones, Pi throttling), the disk probe on
 * a real directory, malformed files, fedl_readings_mem_available, the
 * parsers directly, and the real system. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/monitor.h"
#include "monitor/probe_parse.h"
#include "support/test_support.h"

#define MIB (UINT64_C(1) << 20)

/* ------------------------------------------------------------ fake trees */

/* A fresh directory standing for "/" (static buffer, one tree at a time). */
static const char *fake_root(void)
{
    static char root[256];
    const char *dir = test_make_temp_dir("probe");
    assert_non_null(dir);
    snprintf(root, sizeof root, "%s", dir);
    return root;
}

/* mkdir -p of the directory part of path. */
static void make_directories_for(char *path)
{
    for (char *slash = strchr(path + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *slash = '/';
    }
}

/* Write printf-style text to root/rel, creating the directories on the way. */
static void put(const char *root, const char *rel, const char *fmt, ...)
{
    char path[1024], text[4096];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    snprintf(path, sizeof path, "%s/%s", root, rel);
    make_directories_for(path);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *root)
{
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A /proc/meminfo shaped like the kernel's, sizes in MiB. */
static void put_meminfo(const char *root, uint64_t total_mib, uint64_t available_mib)
{
    put(root, "proc/meminfo",
        "MemTotal:       %llu kB\n"
        "MemFree:          123456 kB\n"
        "MemAvailable:   %llu kB\n"
        "Buffers:            6020 kB\n"
        "Cached:           817884 kB\n"
        "SwapCached:            0 kB\n"
        "SwapTotal:       2097148 kB\n"
        "SwapFree:        2000000 kB\n"
        "HugePages_Total:       0\n",
        (unsigned long long)total_mib * 1024, (unsigned long long)available_mib * 1024);
}

/* One cgroup v2 level under sys/fs/cgroup: limit (0 = "max"), usage and
 * inactive_file in MiB. */
static void put_v2_level(const char *root, const char *level, uint64_t limit_mib,
                         uint64_t usage_mib, uint64_t inactive_mib)
{
    char rel[512];
    snprintf(rel, sizeof rel, "sys/fs/cgroup%s/memory.max", level);
    if (limit_mib == 0)
        put(root, rel, "max\n");
    else
        put(root, rel, "%llu\n", (unsigned long long)(limit_mib * MIB));
    snprintf(rel, sizeof rel, "sys/fs/cgroup%s/memory.current", level);
    put(root, rel, "%llu\n", (unsigned long long)(usage_mib * MIB));
    snprintf(rel, sizeof rel, "sys/fs/cgroup%s/memory.stat", level);
    put(root, rel, "anon 1000\nfile 2000\nactive_file 100\ninactive_file %llu\npgfault 5\n",
        (unsigned long long)(inactive_mib * MIB));
}

static fedl_probe_options fake_options(const char *root)
{
    fedl_probe_options o;
    memset(&o, 0, sizeof o);
    o.root = root;
    return o;
}

static void read_ok(const fedl_probe_options *o, fedl_readings *r)
{
    fedl_error err;
    fedl_error_clear(&err);
    if (fedl_probe_read(o, r, &err) != FEDL_OK)
        fail_msg("probe read failed: %s", err.message);
}

/* The read fails with FEDL_ERR_FORMAT, a message holding where, and a
 * zeroed reading. */
static void read_fails_naming(const fedl_probe_options *o, const char *where)
{
    fedl_readings r;
    fedl_error err;
    fedl_error_clear(&err);
    assert_int_equal(fedl_probe_read(o, &r, &err), FEDL_ERR_FORMAT);
    if (strstr(err.message, where) == NULL)
        fail_msg("message '%s' does not name '%s'", err.message, where);
    assert_int_equal(r.has_meminfo, 0);
    assert_int_equal(r.time_ns, 0);
}

/* ----------------------------------------------------------------- memory */

static void test_probe_missing_proc_gives_no_figures_and_ok(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    double percent = 0.0;
    (void)state;
    read_ok(&o, &r);
    assert_true(r.time_ns > 0);
    assert_int_equal(r.has_meminfo, 0);
    assert_int_equal(r.psi_memory.valid, 0);
    assert_int_equal(r.psi_cpu.valid, 0);
    assert_int_equal(r.cgroup_version, 0);
    assert_int_equal(r.cgroup_limit, 0);
    assert_int_equal(r.has_rss, 0);
    assert_int_equal(r.has_load, 0);
    assert_true(r.cpus >= 1);
    assert_int_equal(r.thermal_zones, 0);
    assert_int_equal(r.has_throttle, 0);
    assert_int_equal(r.has_disk, 0);
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 0);
    assert_true(percent == 100.0);
    remove_tree(root);
}

static void test_probe_meminfo_swap_and_old_kernel_estimate(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put_meminfo(root, 1024, 600);
    read_ok(&o, &r);
    assert_int_equal(r.has_meminfo, 1);
    assert_int_equal(r.mem_total, 1024 * MIB);
    assert_int_equal(r.mem_available, 600 * MIB);
    assert_int_equal(r.swap_total, UINT64_C(2097148) * 1024);
    assert_int_equal(r.swap_free, UINT64_C(2000000) * 1024);
    put(root, "proc/meminfo",
        "MemTotal:       1048576 kB\nMemFree:  102400 kB\nBuffers: 10240 kB\nCached: 92160 kB\n");
    read_ok(&o, &r);
    assert_int_equal(r.mem_available, 200 * MIB);
    assert_int_equal(r.swap_total, 0);
    remove_tree(root);
}

static void test_probe_psi_memory_and_cpu_from_proc(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/pressure/memory",
        "some avg10=12.50 avg60=3.00 avg300=0.70 total=84001\n"
        "full avg10=4.25 avg60=1.00 avg300=0.10 total=21641\n");
    put(root, "proc/pressure/cpu", "some avg10=33.10 avg60=20.00 avg300=9.99 total=6865713338\n");
    read_ok(&o, &r);
    assert_int_equal(r.psi_memory.valid, 1);
    assert_float_equal(r.psi_memory.some_avg10, 12.5, 1e-9);
    assert_float_equal(r.psi_memory.full_avg10, 4.25, 1e-9);
    assert_int_equal(r.psi_memory.some_total_us, 84001);
    assert_int_equal(r.psi_memory.full_total_us, 21641);
    assert_int_equal(r.psi_cpu.valid, 1);
    assert_float_equal(r.psi_cpu.some_avg10, 33.1, 1e-9);
    assert_int_equal(r.psi_cpu.some_total_us, UINT64_C(6865713338));
    assert_float_equal(r.psi_cpu.full_avg10, 0.0, 0.0);
    remove_tree(root);
}

/* --------------------------------------------------------------- cgroups */

static void test_probe_cgroup_v2_nested_parent_with_tighter_limit_wins(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    double percent;
    (void)state;
    put_meminfo(root, 1024, 600);
    put(root, "proc/self/cgroup", "0::/a/b\n");
    put_v2_level(root, "/a/b", 400, 100, 20); /* headroom 400 - 80 = 320 MiB */
    put_v2_level(root, "/a", 200, 150, 30);   /* headroom 200 - 120 = 80 MiB */
    put(root, "sys/fs/cgroup/a/memory.events",
        "low 0\nhigh 7\nmax 2\noom 1\noom_kill 3\noom_group_kill 0\n");
    put(root, "sys/fs/cgroup/a/b/memory.events", "low 0\nhigh 99\nmax 0\noom 0\noom_kill 99\n");
    read_ok(&o, &r);
    assert_int_equal(r.cgroup_version, 2);
    assert_string_equal(r.cgroup_path, "/a");
    assert_int_equal(r.cgroup_limit, 200 * MIB);
    assert_int_equal(r.cgroup_usage, 150 * MIB);
    assert_int_equal(r.cgroup_inactive_file, 30 * MIB);
    assert_int_equal(r.cgroup_working_set, 120 * MIB);
    assert_int_equal(r.cgroup_oom_kills, 3);
    assert_int_equal(r.cgroup_high_events, 7);
    /* the cgroup's 80 MiB are tighter than the system's 600 MiB */
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 80 * MIB);
    assert_float_equal(percent, 40.0, 1e-9);
    remove_tree(root);
}

static void test_probe_cgroup_tightest_level_is_by_working_set_not_usage(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/self/cgroup", "0::/job/step\n");
    /* usage alone would pick the child (10 MiB left), but 60 MiB of it is
     * reclaimable cache: 70 MiB left there against 50 MiB in the parent */
    put_v2_level(root, "/job/step", 100, 90, 60);
    put_v2_level(root, "/job", 200, 150, 0);
    read_ok(&o, &r);
    assert_string_equal(r.cgroup_path, "/job");
    assert_int_equal(r.cgroup_limit, 200 * MIB);
    assert_int_equal(r.cgroup_working_set, 150 * MIB);
    assert_int_equal(r.cgroup_oom_kills, 0); /* no memory.events: no figure */
    remove_tree(root);
}

static void test_probe_cgroup_v2_without_limit_reports_own_level(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    double percent;
    (void)state;
    put_meminfo(root, 1000, 250);
    put(root, "proc/self/cgroup", "0::/user.slice/app\n");
    put_v2_level(root, "/user.slice/app", 0, 64, 16);
    put_v2_level(root, "/user.slice", 0, 500, 100);
    put(root, "sys/fs/cgroup/user.slice/app/memory.events", "high 0\noom_kill 1\n");
    read_ok(&o, &r);
    assert_int_equal(r.cgroup_version, 2);
    assert_int_equal(r.cgroup_limit, 0);
    assert_string_equal(r.cgroup_path, "/user.slice/app");
    assert_int_equal(r.cgroup_usage, 64 * MIB);
    assert_int_equal(r.cgroup_working_set, 48 * MIB);
    assert_int_equal(r.cgroup_oom_kills, 1);
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 250 * MIB);
    assert_float_equal(percent, 25.0, 1e-9);
    remove_tree(root);
}

static void test_probe_cgroup_v2_memory_pressure_preferred_over_proc(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/pressure/memory", "some avg10=1.00 avg60=0 avg300=0 total=10\n");
    put(root, "proc/pressure/cpu", "some avg10=2.00 avg60=0 avg300=0 total=20\n");
    put(root, "proc/self/cgroup", "0::/box\n");
    put_v2_level(root, "/box", 128, 10, 0);
    put(root, "sys/fs/cgroup/box/memory.pressure",
        "some avg10=55.55 avg60=40.00 avg300=10.00 total=999\n"
        "full avg10=22.22 avg60=10.00 avg300=1.00 total=444\n");
    read_ok(&o, &r);
    assert_float_equal(r.psi_memory.some_avg10, 55.55, 1e-9);
    assert_float_equal(r.psi_memory.full_avg10, 22.22, 1e-9);
    assert_int_equal(r.psi_memory.some_total_us, 999);
    assert_float_equal(r.psi_cpu.some_avg10, 2.0, 1e-9);
    /* without the cgroup's file the system's is read */
    put(root, "proc/self/cgroup", "0::/\n");
    read_ok(&o, &r);
    assert_float_equal(r.psi_memory.some_avg10, 1.0, 1e-9);
    remove_tree(root);
}

static void test_probe_cgroup_v1_limit_stat_oom_control_failcnt(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n");
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "%llu\n",
        (unsigned long long)(256 * MIB));
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "%llu\n",
        (unsigned long long)(100 * MIB));
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.stat",
        "cache 9375744\nrss 3809280\ninactive_file 12288\nactive_file 196608\n"
        "hierarchical_memory_limit 268435456\ntotal_cache 98979840\n"
        "total_inactive_file %llu\n",
        (unsigned long long)(40 * MIB));
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.failcnt", "5\n");
    put(root, "sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
    put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    read_ok(&o, &r);
    assert_int_equal(r.cgroup_version, 1);
    assert_string_equal(r.cgroup_path, "/docker/abc");
    assert_int_equal(r.cgroup_limit, 256 * MIB);
    assert_int_equal(r.cgroup_usage, 100 * MIB);
    assert_int_equal(r.cgroup_inactive_file, 40 * MIB);
    assert_int_equal(r.cgroup_working_set, 60 * MIB);
    assert_int_equal(r.cgroup_oom_kills, 2);
    assert_int_equal(r.cgroup_high_events, 5);
    /* a memory.stat without the hierarchical total: inactive_file */
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 1\ninactive_file %llu\n",
        (unsigned long long)(10 * MIB));
    read_ok(&o, &r);
    assert_int_equal(r.cgroup_inactive_file, 10 * MIB);
    assert_int_equal(r.cgroup_working_set, 90 * MIB);
    remove_tree(root);
}

static void test_probe_cgroup_usage_below_cache_saturates_working_set(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    double percent;
    (void)state;
    put(root, "proc/self/cgroup", "0::/odd\n");
    put_v2_level(root, "/odd", 64, 10, 20);
    read_ok(&o, &r);
    assert_int_equal(r.cgroup_working_set, 0);
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 64 * MIB);
    assert_float_equal(percent, 100.0, 1e-9);
    remove_tree(root);
}

/* ---------------------------------------------------------------- process */

static void test_probe_rss_and_cgroup_of_another_pid(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/self/status", "Name:\tself\nVmRSS:\t    1 kB\n");
    put(root, "proc/4242/status",
        "Name:\ttrainer: odd name\nGroups:\t4 24 27\nVmPeak:\t  250000 kB\n"
        "VmRSS:\t   20480 kB\nThreads:\t4\n");
    put(root, "proc/4242/cgroup", "0::/train\n");
    put_v2_level(root, "/train", 300, 30, 0);
    o.pid = 4242;
    read_ok(&o, &r);
    assert_int_equal(r.has_rss, 1);
    assert_int_equal(r.rss, 20 * MIB);
    assert_string_equal(r.cgroup_path, "/train");
    o.pid = 0;
    read_ok(&o, &r);
    assert_int_equal(r.rss, 1024);
    assert_int_equal(r.cgroup_version, 0);
    remove_tree(root);
}

static void test_probe_loadavg_and_cpus(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    put(root, "proc/loadavg", "0.35 0.88 12.42 1/83 9039\n");
    read_ok(&o, &r);
    assert_int_equal(r.has_load, 1);
    assert_float_equal(r.load1, 0.35, 1e-9);
    assert_float_equal(r.load5, 0.88, 1e-9);
    assert_float_equal(r.load15, 12.42, 1e-9);
    assert_int_equal(r.cpus, (int)sysconf(_SC_NPROCESSORS_ONLN));
    remove_tree(root);
}

/* --------------------------------------------------------------- thermal */

static void test_probe_thermal_hottest_zone_skips_bad_ones(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    char path[1024];
    (void)state;
    put(root, "sys/class/thermal/thermal_zone0/temp", "45000\n");
    put(root, "sys/class/thermal/thermal_zone0/type", "soc-thermal\n");
    put(root, "sys/class/thermal/thermal_zone1/temp", "61500\n");
    put(root, "sys/class/thermal/thermal_zone1/type", "cpu-thermal\n");
    put(root, "sys/class/thermal/thermal_zone2/temp", "garbage\n");
    put(root, "sys/class/thermal/thermal_zone2/type", "broken\n");
    /* a temp that cannot be read (EISDIR here; EINVAL or ENODATA on boards) */
    snprintf(path, sizeof path, "%s/sys/class/thermal/thermal_zone3/temp", root);
    make_directories_for(path);
    assert_int_equal(mkdir(path, 0755), 0);
    put(root, "sys/class/thermal/cooling_device0/cur_state", "0\n");
    read_ok(&o, &r);
    assert_int_equal(r.thermal_zones, 2);
    assert_float_equal(r.temp_max_c, 61.5, 1e-9);
    assert_string_equal(r.temp_zone, "cpu-thermal");
    /* no type file: the zone's name */
    snprintf(path, sizeof path, "%s/sys/class/thermal/thermal_zone1/type", root);
    assert_int_equal(unlink(path), 0);
    read_ok(&o, &r);
    assert_string_equal(r.temp_zone, "thermal_zone1");
    remove_tree(root);
}

static void test_probe_pi_get_throttled_hex(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    (void)state;
    /* the kernel writes "%x\n" */
    put(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n");
    read_ok(&o, &r);
    assert_int_equal(r.has_throttle, 1);
    assert_int_equal(r.throttled, 0x50005);
    put(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "0x80008\n");
    read_ok(&o, &r);
    assert_int_equal(r.throttled, 0x80008);
    put(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "throttled=0x0\n");
    read_fails_naming(&o, "get_throttled:1: get_throttled");
    remove_tree(root);
}

/* ------------------------------------------------------------------ disk */

static void test_probe_disk_on_real_directory(void **state)
{
    const char *root = fake_root();
    fedl_probe_options o = fake_options(root);
    fedl_readings r;
    fedl_error err;
    char missing[512];
    (void)state;
    o.disk_path = root;
    read_ok(&o, &r);
    assert_int_equal(r.has_disk, 1);
    assert_true(r.disk_free > 0);
    assert_true(r.disk_total >= r.disk_free);
    snprintf(missing, sizeof missing, "%s/no/such/dir", root);
    o.disk_path = missing;
    assert_int_equal(fedl_probe_read(&o, &r, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, missing));
    assert_non_null(strstr(err.message, strerror(ENOENT)));
    assert_int_equal(r.has_disk, 0);
    remove_tree(root);
}

/* ------------------------------------------------------------- malformed */

/* A tree where every probe has a well-formed file. */
static void put_valid_tree(const char *root)
{
    put_meminfo(root, 1024, 600);
    put(root, "proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
    put(root, "proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
    put(root, "proc/self/cgroup", "0::/job\n");
    put_v2_level(root, "/job", 100, 10, 1);
    put(root, "sys/fs/cgroup/job/memory.events", "high 0\noom_kill 0\n");
    put(root, "proc/self/status", "VmRSS:\t    2144 kB\n");
    put(root, "proc/loadavg", "0.35 0.88 1.42 1/83 9039\n");
}

static void test_probe_each_malformed_file_names_file_line_and_field(void **state)
{
    static const struct {
        const char *file, *text, *message;
    } cases[] = {
        {"proc/meminfo", "MemTotal: 1048576 kB\nMemFree: 1024 kB\nMemAvailable: x kB\n",
         "/proc/meminfo:3: MemAvailable: expected a number of kB, got ' x kB'"},
        {"proc/meminfo", "MemTotal: 1048576 kB\nMemAvailable: 1 kB\nSwapFree: -1 kB\n",
         "/proc/meminfo:3: SwapFree: expected a number of kB, got '-1 kB'"},
        {"proc/pressure/memory",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=high avg60=0 total=2\n",
         "/proc/pressure/memory:2: full avg10: expected a percentage such as 0.25, got 'high'"},
        {"proc/pressure/cpu", "avg10=0.00 total=1\n",
         "/proc/pressure/cpu:1: line: expected 'some ...' or 'full ...'"},
        {"sys/fs/cgroup/job/memory.stat", "anon 4096\ninactive_file lots\n",
         "/sys/fs/cgroup/job/memory.stat:2: inactive_file: expected a decimal number, got 'lots'"},
        {"sys/fs/cgroup/job/memory.events", "high 1\noom_kill\n",
         "/sys/fs/cgroup/job/memory.events:2: oom_kill: expected a decimal number"},
        {"proc/self/status", "Name:\tx\nVmRSS:\t2144\n",
         "/proc/self/status:2: VmRSS: expected a number of kB, got '2144'"},
        {"proc/loadavg", "0.35 high 1.42 1/83 9039\n",
         "/proc/loadavg:1: load5: expected a decimal such as 0.52, got 'high'"},
        {"proc/loadavg", "0.35 0.88 1.42 83 9039\n",
         "/proc/loadavg:1: running/total: expected two numbers such as 1/83, got '83'"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *root = fake_root();
        fedl_probe_options o = fake_options(root);
        fedl_readings r;
        put_valid_tree(root);
        read_ok(&o, &r);
        put(root, cases[i].file, "%s", cases[i].text);
        read_fails_naming(&o, cases[i].message);
        remove_tree(root);
    }
}

static void test_probe_rejects_bad_arguments(void **state)
{
    fedl_probe_options o = fake_options("/nonexistent");
    fedl_readings r;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_probe_read(&o, NULL, &err), FEDL_ERR_INVALID_ARG);
    o.pid = -1;
    assert_int_equal(fedl_probe_read(&o, &r, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "pid"));
}

/* ------------------------------------------------------- memory available */

static void test_mem_available_takes_the_smaller_headroom(void **state)
{
    fedl_readings r;
    double percent = 0.0;
    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(fedl_readings_mem_available(NULL, &percent), 0);
    assert_true(percent == 100.0);
    r.has_meminfo = 1;
    r.mem_total = 1000 * MIB;
    r.mem_available = 300 * MIB;
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 300 * MIB);
    assert_float_equal(percent, 30.0, 1e-9);
    r.cgroup_limit = 128 * MIB; /* 28 MiB left: tighter */
    r.cgroup_working_set = 100 * MIB;
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 28 * MIB);
    assert_float_equal(percent, 21.875, 1e-9);
    r.cgroup_limit = 4000 * MIB; /* a limit above the machine: the system decides */
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 300 * MIB);
    r.cgroup_working_set = 5000 * MIB; /* over its limit: nothing left */
    assert_int_equal(fedl_readings_mem_available(&r, NULL), 0);
    r.has_meminfo = 0;
    r.cgroup_limit = 100 * MIB;
    r.cgroup_working_set = 25 * MIB;
    assert_int_equal(fedl_readings_mem_available(&r, &percent), 75 * MIB);
    assert_float_equal(percent, 75.0, 1e-9);
}

/* ---------------------------------------------------------------- parsers */

static void test_parse_psi_accepts_cpu_without_full_and_rejects_duplicates(void **state)
{
    static const char cpu[] = "some avg10=0.50 avg60=0.10 avg300=0.00 total=123\n";
    static const char twice[] = "some avg10=0 total=1\nsome avg10=0 total=2\n";
    static const char no_total[] = "some avg10=0.00 avg60=0.00 avg300=0.00\n";
    fedl_psi psi;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_probe_parse_psi(cpu, sizeof cpu - 1, "cpu", &psi, &err), FEDL_OK);
    assert_int_equal(psi.valid, 1);
    assert_float_equal(psi.some_avg10, 0.5, 1e-12);
    assert_int_equal(psi.full_total_us, 0);
    assert_int_equal(fedl_probe_parse_psi(twice, sizeof twice - 1, "p", &psi, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "p:2: some: appears twice (first on line 1)"));
    assert_int_equal(psi.valid, 0);
    assert_int_equal(fedl_probe_parse_psi(no_total, sizeof no_total - 1, "p", &psi, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "p:1: some: no total= field"));
    assert_int_equal(fedl_probe_parse_psi("", 0, "p", &psi, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "no 'some' line"));
}

static void test_parse_counters_finds_keys_and_rejects_twice(void **state)
{
    static const char *const keys[2] = {"oom_kill", "high"};
    static const char events[] = "low 0\nhigh 12\nmax 3\noom 1\noom_kill 18446744073709551615\n";
    static const char twice[] = "high 1\nhigh 2\n";
    uint64_t values[2];
    int found[2];
    fedl_error err;
    (void)state;
    assert_int_equal(
        fedl_probe_parse_counters(events, sizeof events - 1, "ev", keys, 2, values, found, &err),
        FEDL_OK);
    assert_int_equal(values[0], UINT64_MAX);
    assert_int_equal(values[1], 12);
    assert_int_equal(found[0] + found[1], 2);
    assert_int_equal(fedl_probe_parse_counters("low 1\n", 6, "ev", keys, 2, values, found, &err),
                     FEDL_OK);
    assert_int_equal(found[0] + found[1], 0);
    assert_int_equal(
        fedl_probe_parse_counters(twice, sizeof twice - 1, "ev", keys, 2, values, found, &err),
        FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "ev:2: high: appears twice"));
    assert_int_equal(values[1], 0);
}

static void test_parse_temp_and_throttled_edges(void **state)
{
    double celsius;
    uint32_t bits;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_probe_parse_temp("-5500\n", 6, "t", &celsius, &err), FEDL_OK);
    assert_float_equal(celsius, -5.5, 1e-12);
    assert_int_equal(fedl_probe_parse_temp("", 0, "t", &celsius, &err), FEDL_ERR_FORMAT);
    assert_int_equal(fedl_probe_parse_temp("1e3\n", 4, "t", &celsius, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "t:1: temp"));
    assert_int_equal(fedl_probe_parse_throttled("0\n", 2, "g", &bits, &err), FEDL_OK);
    assert_int_equal(bits, 0);
    assert_int_equal(fedl_probe_parse_throttled("ffffffff", 8, "g", &bits, &err), FEDL_OK);
    assert_int_equal(bits, UINT32_MAX);
    assert_int_equal(fedl_probe_parse_throttled("100000000", 9, "g", &bits, &err), FEDL_ERR_FORMAT);
    assert_int_equal(fedl_probe_parse_throttled("0x", 2, "g", &bits, &err), FEDL_ERR_FORMAT);
}

/* ------------------------------------------------------------ real system */

static void test_probe_real_system(void **state)
{
    fedl_probe_options o;
    fedl_readings r;
    fedl_error err;
    double percent;
    uint64_t available;
    (void)state;
    memset(&o, 0, sizeof o);
    o.disk_path = ".";
    if (fedl_probe_read(NULL, &r, &err) != FEDL_OK || fedl_probe_read(&o, &r, &err) != FEDL_OK)
        fail_msg("real probe failed: %s", err.message);
    available = fedl_readings_mem_available(&r, &percent);
    print_message("real system: total %llu available %llu (%.1f%%) cgroup v%d %s limit %llu "
                  "ws %llu, rss %llu, load %.2f/%d cpus, %d zones %.1f C %s, psi mem %.2f\n",
                  (unsigned long long)r.mem_total, (unsigned long long)available, percent,
                  r.cgroup_version, r.cgroup_path, (unsigned long long)r.cgroup_limit,
                  (unsigned long long)r.cgroup_working_set, (unsigned long long)r.rss, r.load1,
                  r.cpus, r.thermal_zones, r.temp_max_c, r.temp_zone, r.psi_memory.some_avg10);
    assert_int_equal(r.has_meminfo, 1);
    assert_int_equal(r.has_rss, 1);
    assert_true(r.rss > 0);
    assert_int_equal(r.has_disk, 1);
    assert_true(available > 0 && available <= r.mem_total);
    o.pid = (int)getpid();
    read_ok(&o, &r);
    assert_true(r.rss > 0);
}

static void test_self_rss_is_positive(void **state)
{
    (void)state;
    assert_true(fedl_self_rss() > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_missing_proc_gives_no_figures_and_ok),
        cmocka_unit_test(test_probe_meminfo_swap_and_old_kernel_estimate),
        cmocka_unit_test(test_probe_psi_memory_and_cpu_from_proc),
        cmocka_unit_test(test_probe_cgroup_v2_nested_parent_with_tighter_limit_wins),
        cmocka_unit_test(test_probe_cgroup_tightest_level_is_by_working_set_not_usage),
        cmocka_unit_test(test_probe_cgroup_v2_without_limit_reports_own_level),
        cmocka_unit_test(test_probe_cgroup_v2_memory_pressure_preferred_over_proc),
        cmocka_unit_test(test_probe_cgroup_v1_limit_stat_oom_control_failcnt),
        cmocka_unit_test(test_probe_cgroup_usage_below_cache_saturates_working_set),
        cmocka_unit_test(test_probe_rss_and_cgroup_of_another_pid),
        cmocka_unit_test(test_probe_loadavg_and_cpus),
        cmocka_unit_test(test_probe_thermal_hottest_zone_skips_bad_ones),
        cmocka_unit_test(test_probe_pi_get_throttled_hex),
        cmocka_unit_test(test_probe_disk_on_real_directory),
        cmocka_unit_test(test_probe_each_malformed_file_names_file_line_and_field),
        cmocka_unit_test(test_probe_rejects_bad_arguments),
        cmocka_unit_test(test_mem_available_takes_the_smaller_headroom),
        cmocka_unit_test(test_parse_psi_accepts_cpu_without_full_and_rejects_duplicates),
        cmocka_unit_test(test_parse_counters_finds_keys_and_rejects_twice),
        cmocka_unit_test(test_parse_temp_and_throttled_edges),
        cmocka_unit_test(test_probe_real_system),
        cmocka_unit_test(test_self_rss_is_positive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
