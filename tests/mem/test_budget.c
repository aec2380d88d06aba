/* test_budget.c - the memory budget: "auto" over fake /proc and
 * /sys/fs/cgroup trees (meminfo, cgroup v2 and v1 walks, rlimits), fixed
 * sizes, malformed files, the parsers directly, and one run on the real
 * system. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/mem.h"
#include "mem/budget_parse.h"
#include "support/test_support.h"

#define MIB (UINT64_C(1) << 20)

/* ------------------------------------------------------------ fake trees */

/* A fresh directory standing for "/" (static buffer, one tree at a time). */
static const char *make_root(void)
{
    static char root[256];
    const char *dir = test_make_temp_dir("budget");
    assert_non_null(dir);
    snprintf(root, sizeof root, "%s", dir);
    return root;
}

/* mkdir -p of every directory in root/rel before its last component. */
static void make_parents(const char *root, const char *rel)
{
    char path[1024];
    size_t base = strlen(root);
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + base + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
}

/* Write text to root/rel, creating the directories on the way. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024];
    make_parents(root, rel);
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

/* Write a decimal byte count (with the kernel's newline) to root/rel. */
static void put_bytes(const char *root, const char *rel, uint64_t bytes)
{
    char text[32];
    snprintf(text, sizeof text, "%llu\n", (unsigned long long)bytes);
    put(root, rel, text);
}

/* A /proc/meminfo shaped like the kernel's, sizes in MiB. */
static void put_meminfo(const char *root, uint64_t total_mib, uint64_t available_mib)
{
    char text[512];
    snprintf(text, sizeof text,
             "MemTotal:       %llu kB\n"
             "MemFree:          123456 kB\n"
             "MemAvailable:   %llu kB\n"
             "Buffers:            6020 kB\n"
             "Cached:           817884 kB\n"
             "Active(anon):      10000 kB\n"
             "HugePages_Total:       0\n"
             "Hugepagesize:       2048 kB\n",
             (unsigned long long)total_mib * 1024, (unsigned long long)available_mib * 1024);
    put(root, "proc/meminfo", text);
}

static void remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    if (dir == NULL) {
        unlink(path);
        return;
    }
    while ((entry = readdir(dir)) != NULL) {
        char child[1024];
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        remove_tree(child);
    }
    closedir(dir);
    rmdir(path);
}

/* Options for a fake tree: no real rlimits. */
static fedl_budget_probe_options fake_options(const char *root)
{
    fedl_budget_probe_options o = fedl_budget_probe_defaults();
    o.root = root;
    o.use_rlimits = 0;
    return o;
}

/* Detect over root and insist on success. */
static void detect_ok(const fedl_budget_probe_options *o, fedl_budget *b)
{
    fedl_error err;
    fedl_error_clear(&err);
    if (fedl_budget_detect(o, b, &err) != FEDL_OK)
        fail_msg("detect failed: %s", err.message);
}

/* --------------------------------------------------------------- meminfo */

static void test_budget_meminfo_only_takes_half_of_memavailable(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 600);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_MEMAVAILABLE);
    assert_int_equal(b.bytes, 300 * MIB);
    assert_int_equal(b.reading.memtotal, 1024 * MIB);
    assert_int_equal(b.reading.memavailable, 600 * MIB);
    assert_string_equal(b.explanation, "meminfo: MemAvailable 600.0 MiB x 0.50 = 300.0 MiB");
    remove_tree(root);
}

static void test_budget_missing_proc_self_cgroup_is_no_figure_not_error(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 600);
    detect_ok(&o, &b);
    assert_int_equal(b.reading.cgroup_version, 0);
    assert_int_equal(b.reading.cgroup_limit, 0);
    assert_non_null(strstr(b.notes, "proc/self/cgroup: no cgroup figure"));
    remove_tree(root);
}

static void test_budget_fraction_option_scales_memavailable(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 800);
    o.memavailable_fraction = 0.25;
    detect_ok(&o, &b);
    assert_int_equal(b.bytes, 200 * MIB);
    assert_non_null(strstr(b.explanation, "x 0.25 = 200.0 MiB"));
    remove_tree(root);
}

static void test_budget_old_kernel_estimates_memavailable(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put(root, "proc/meminfo",
        "MemTotal:       1048576 kB\n"
        "MemFree:         102400 kB\n"
        "Buffers:          10240 kB\n"
        "Cached:           92160 kB\n");
    detect_ok(&o, &b);
    assert_int_equal(b.reading.memavailable, 200 * MIB);
    assert_int_equal(b.reading.memavailable_estimated, 1);
    assert_int_equal(b.bytes, 100 * MIB);
    assert_non_null(strstr(b.explanation, "estimated"));
    assert_non_null(strstr(b.notes, "no MemAvailable"));
    remove_tree(root);
}

static void test_budget_malformed_meminfo_names_file_line_and_field(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    fedl_error err;
    (void)state;
    put(root, "proc/meminfo",
        "MemTotal:       1048576 kB\n"
        "MemFree:         102400 kB\n"
        "MemAvailable:      lots kB\n");
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "/proc/meminfo:3: MemAvailable"));
    assert_non_null(strstr(err.message, "lots"));
    assert_int_equal(b.source, FEDL_BUDGET_UNKNOWN);
    assert_int_equal(b.bytes, 0);
    put(root, "proc/meminfo", "MemTotal:       1048576 kB\nthis is not meminfo\n");
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "/proc/meminfo:2: expected 'Name: value'"));
    remove_tree(root);
}

static void test_budget_without_any_figure_is_unsupported(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "48M"));
    assert_non_null(strstr(err.message, "proc/meminfo"));
    remove_tree(root);
}

static void test_budget_rejects_fraction_outside_zero_one(void **state)
{
    fedl_budget_probe_options o = fake_options("/nonexistent");
    fedl_budget b;
    fedl_error err;
    (void)state;
    o.memavailable_fraction = 0.0;
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "memavailable_fraction"));
    o.memavailable_fraction = 1.5;
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------- cgroup v2 */

static void test_budget_cgroup_v2_limit_below_half_memavailable_decides(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/user.slice/x\n");
    put(root, "sys/fs/cgroup/user.slice/memory.max", "max\n");
    put_bytes(root, "sys/fs/cgroup/user.slice/memory.current", 300 * MIB);
    put_bytes(root, "sys/fs/cgroup/user.slice/x/memory.max", 100 * MIB);
    put_bytes(root, "sys/fs/cgroup/user.slice/x/memory.current", 12 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V2);
    assert_int_equal(b.bytes, 88 * MIB);
    assert_int_equal(b.reading.cgroup_version, 2);
    assert_int_equal(b.reading.cgroup_limit, 100 * MIB);
    assert_int_equal(b.reading.cgroup_usage, 12 * MIB);
    assert_string_equal(b.reading.cgroup_path, "/user.slice/x");
    assert_string_equal(b.explanation, "cgroup v2 /user.slice/x: memory.max 100.0 MiB - "
                                       "memory.current 12.0 MiB = 88.0 MiB");
    remove_tree(root);
}

static void test_budget_cgroup_v2_max_leaves_meminfo_deciding(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/user.slice/x\n");
    put(root, "sys/fs/cgroup/user.slice/x/memory.max", "max\n");
    put_bytes(root, "sys/fs/cgroup/user.slice/x/memory.current", 12 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_MEMAVAILABLE);
    assert_int_equal(b.bytes, 500 * MIB);
    assert_int_equal(b.reading.cgroup_version, 2);
    assert_int_equal(b.reading.cgroup_limit, 0);
    assert_string_equal(b.reading.cgroup_path, "/user.slice/x");
    remove_tree(root);
}

static void test_budget_cgroup_v2_stricter_parent_bounds_child(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 4096, 4000);
    put(root, "proc/self/cgroup", "0::/a/b\n");
    put_bytes(root, "sys/fs/cgroup/a/b/memory.max", 400 * MIB);
    put_bytes(root, "sys/fs/cgroup/a/b/memory.current", 10 * MIB);
    put_bytes(root, "sys/fs/cgroup/a/memory.max", 200 * MIB);
    put_bytes(root, "sys/fs/cgroup/a/memory.current", 50 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V2);
    assert_int_equal(b.bytes, 150 * MIB);
    assert_string_equal(b.reading.cgroup_path, "/a");
    assert_int_equal(b.reading.cgroup_limit, 200 * MIB);
    assert_non_null(strstr(b.explanation, "cgroup v2 /a: memory.max 200.0 MiB"));
    remove_tree(root);
}

static void test_budget_cgroup_usage_above_limit_gives_zero(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/job\n");
    put_bytes(root, "sys/fs/cgroup/job/memory.max", 100 * MIB);
    put_bytes(root, "sys/fs/cgroup/job/memory.current", 120 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V2);
    assert_int_equal(b.bytes, 0);
    assert_int_equal(b.reading.cgroup_headroom, 0);
    assert_string_equal(b.explanation, "cgroup v2 /job: memory.current 120.0 MiB is at or above "
                                       "memory.max 100.0 MiB: no headroom, budget 0 B");
    remove_tree(root);
}

static void test_budget_container_root_cgroup_reads_mount_root(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/\n");
    put_bytes(root, "sys/fs/cgroup/memory.max", 64 * MIB);
    put_bytes(root, "sys/fs/cgroup/memory.current", 4 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V2);
    assert_int_equal(b.bytes, 60 * MIB);
    assert_string_equal(b.reading.cgroup_path, "/");
    remove_tree(root);
}

static void test_budget_container_host_path_falls_back_to_mount_root(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/docker/0123abcd\n");
    put_bytes(root, "sys/fs/cgroup/memory.max", 64 * MIB);
    put_bytes(root, "sys/fs/cgroup/memory.current", 4 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V2);
    assert_int_equal(b.bytes, 60 * MIB);
    assert_non_null(strstr(b.notes, "/docker/0123abcd is not under"));
    remove_tree(root);
}

static void test_budget_malformed_memory_max_names_file(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    fedl_error err;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "0::/job\n");
    put(root, "sys/fs/cgroup/job/memory.max", "100M\n");
    assert_int_equal(fedl_budget_detect(&o, &b, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "sys/fs/cgroup/job/memory.max:1:"));
    assert_non_null(strstr(err.message, "100M"));
    remove_tree(root);
}

/* ------------------------------------------------------------- cgroup v1 */

static void test_budget_cgroup_v1_unlimited_value_is_no_limit(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n");
    put(root, "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
    put_bytes(root, "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", 6 * MIB);
    put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    put_bytes(root, "sys/fs/cgroup/memory/memory.usage_in_bytes", 900 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_MEMAVAILABLE);
    assert_int_equal(b.bytes, 500 * MIB);
    assert_int_equal(b.reading.cgroup_version, 1);
    assert_int_equal(b.reading.cgroup_limit, 0);
    assert_string_equal(b.reading.cgroup_path, "/docker/abc");
    remove_tree(root);
}

static void test_budget_cgroup_v1_limit_decides(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "6:cpuacct,memory:/lxc/c1\n1:name=systemd:/init.scope\n");
    put_bytes(root, "sys/fs/cgroup/memory/lxc/c1/memory.limit_in_bytes", 256 * MIB);
    put_bytes(root, "sys/fs/cgroup/memory/lxc/c1/memory.usage_in_bytes", 56 * MIB);
    put(root, "sys/fs/cgroup/memory/lxc/memory.limit_in_bytes", "9223372036854771712\n");
    put_bytes(root, "sys/fs/cgroup/memory/lxc/memory.usage_in_bytes", 80 * MIB);
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_CGROUP_V1);
    assert_int_equal(b.bytes, 200 * MIB);
    assert_string_equal(b.explanation, "cgroup v1 /lxc/c1: memory.limit_in_bytes 256.0 MiB - "
                                       "memory.usage_in_bytes 56.0 MiB = 200.0 MiB");
    remove_tree(root);
}

static void test_budget_cgroup_v1_listed_but_not_mounted_is_no_figure(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/cgroup", "4:memory:/docker/abc\n");
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_MEMAVAILABLE);
    assert_int_equal(b.reading.cgroup_version, 0);
    assert_non_null(strstr(b.notes, "no cgroup v1 figure"));
    remove_tree(root);
}

/* --------------------------------------------------------------- rlimits */

static void test_budget_fake_rlimit_as_decides(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    o.fake_rlimit_as = 300 * MIB;
    o.fake_vm_size = 100 * MIB;
    detect_ok(&o, &b);
    assert_int_equal(b.source, FEDL_BUDGET_RLIMIT_AS);
    assert_int_equal(b.bytes, 200 * MIB);
    assert_int_equal(b.reading.rlimit_as_headroom, 200 * MIB);
    assert_string_equal(b.explanation,
                        "rlimit: RLIMIT_AS 300.0 MiB - VmSize 100.0 MiB = 200.0 MiB");
    remove_tree(root);
}

static void test_budget_fake_rlimit_data_uses_vmdata_of_status(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    (void)state;
    put_meminfo(root, 1024, 1000);
    put(root, "proc/self/status",
        "Name:\tfedl: odd name\n"
        "VmPeak:\t  250000 kB\n"
        "VmSize:\t  204800 kB\n"
        "VmData:\t   20480 kB\n");
    o.fake_rlimit_as = 1000 * MIB;
    o.fake_rlimit_data = 150 * MIB;
    detect_ok(&o, &b);
    assert_int_equal(b.reading.vm_size, 200 * MIB);
    assert_int_equal(b.reading.vm_data, 20 * MIB);
    assert_int_equal(b.reading.rlimit_as_headroom, 800 * MIB);
    assert_int_equal(b.source, FEDL_BUDGET_RLIMIT_DATA);
    assert_int_equal(b.bytes, 130 * MIB);
    assert_non_null(strstr(b.explanation, "RLIMIT_DATA 150.0 MiB - VmData 20.0 MiB"));
    remove_tree(root);
}

/* ------------------------------------------------------------------ parse */

static void test_budget_parse_size_is_fixed(void **state)
{
    fedl_budget b;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_budget_parse("48M", NULL, &b, &err), FEDL_OK);
    assert_int_equal(b.source, FEDL_BUDGET_FIXED);
    assert_int_equal(b.bytes, 48 * MIB);
    assert_string_equal(b.explanation, "fixed size 48M = 48.0 MiB");
    assert_string_equal(fedl_budget_source_name(b.source), "fixed");
}

static void test_budget_parse_auto_detects(void **state)
{
    const char *root = make_root();
    fedl_budget_probe_options o = fake_options(root);
    fedl_budget b;
    fedl_error err;
    (void)state;
    put_meminfo(root, 1024, 600);
    assert_int_equal(fedl_budget_parse("auto", &o, &b, &err), FEDL_OK);
    assert_int_equal(b.source, FEDL_BUDGET_MEMAVAILABLE);
    assert_int_equal(b.bytes, 300 * MIB);
    remove_tree(root);
}

static void test_budget_parse_garbage_and_zero_are_errors(void **state)
{
    fedl_budget b;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_budget_parse("lots", NULL, &b, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "'auto' or a size"));
    assert_int_equal(b.source, FEDL_BUDGET_UNKNOWN);
    assert_int_equal(fedl_budget_parse("48Q", NULL, &b, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_budget_parse("0", NULL, &b, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "greater than 0"));
    assert_int_equal(fedl_budget_parse(NULL, NULL, &b, &err), FEDL_ERR_INVALID_ARG);
}

static void test_budget_names_and_sizes_read_well(void **state)
{
    char buf[32];
    (void)state;
    assert_string_equal(fedl_budget_source_name(FEDL_BUDGET_CGROUP_V2), "cgroup-v2");
    assert_string_equal(fedl_budget_source_name(FEDL_BUDGET_RLIMIT_DATA), "rlimit-data");
    assert_string_equal(fedl_budget_source_name((fedl_budget_source)99), "unknown");
    assert_string_equal(fedl_budget_format_bytes(512, buf, sizeof buf), "512 B");
    assert_string_equal(fedl_budget_format_bytes(1536, buf, sizeof buf), "1.5 KiB");
    assert_string_equal(fedl_budget_format_bytes(3ull << 30, buf, sizeof buf), "3.0 GiB");
    assert_string_equal(fedl_budget_format_bytes(UINT64_MAX, buf, sizeof buf), "16.0 EiB");
}

/* ---------------------------------------------------------------- parsers */

static void test_proc_cgroup_parse_finds_v1_memory_and_v2(void **state)
{
    static const char text[] = "12:pids:/\n4:cpuset,memory:/a/b\n1:name=systemd:/x:y\n0::/c\n";
    fedl_proc_cgroup cg;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_proc_cgroup_parse(text, sizeof text - 1, "cg", &cg, &err), FEDL_OK);
    assert_true(cg.has_v1_memory);
    assert_string_equal(cg.v1_memory_path, "/a/b");
    assert_true(cg.has_v2);
    assert_string_equal(cg.v2_path, "/c");
}

static void test_proc_cgroup_parse_rejects_bad_lines(void **state)
{
    fedl_proc_cgroup cg;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_proc_cgroup_parse("0::/\nnonsense\n", 14, "cg", &cg, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "cg:2:"));
    assert_int_equal(fedl_proc_cgroup_parse("x:memory:/\n", 11, "cg", &cg, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "hierarchy id"));
    assert_int_equal(fedl_proc_cgroup_parse("3:memory:relative\n", 18, "cg", &cg, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "cg:1: path"));
    assert_int_equal(fedl_proc_cgroup_parse("0::/a\n0::/b\n", 12, "cg", &cg, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "first on line 1"));
    assert_false(cg.has_v2);
}

static void test_cgroup_value_parse_accepts_max_only_for_v2(void **state)
{
    uint64_t value;
    int unlimited;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_cgroup_value_parse("max\n", 4, "f", 1, &value, &unlimited, &err),
                     FEDL_OK);
    assert_true(unlimited);
    assert_int_equal(fedl_cgroup_value_parse("max\n", 4, "f", 0, &value, &unlimited, &err),
                     FEDL_ERR_FORMAT);
    assert_int_equal(fedl_cgroup_value_parse("4096\n", 5, "f", 0, &value, &unlimited, &err),
                     FEDL_OK);
    assert_int_equal(value, 4096);
    assert_int_equal(
        fedl_cgroup_value_parse("99999999999999999999\n", 21, "f", 0, &value, &unlimited, &err),
        FEDL_ERR_FORMAT);
    assert_int_equal(fedl_cgroup_value_parse("", 0, "f", 0, &value, &unlimited, &err),
                     FEDL_ERR_FORMAT);
}

static void test_meminfo_parse_rejects_duplicates_and_overflow(void **state)
{
    static const char twice[] = "MemTotal: 1 kB\nMemTotal: 2 kB\nMemAvailable: 1 kB\n";
    static const char huge[] = "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n";
    static const char no_unit[] = "MemTotal: 1024\nMemAvailable: 1 kB\n";
    fedl_meminfo info;
    fedl_error err;
    (void)state;
    assert_int_equal(fedl_meminfo_parse(twice, sizeof twice - 1, "mi", &info, &err),
                     FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "mi:2: MemTotal: appears twice"));
    assert_int_equal(fedl_meminfo_parse(huge, sizeof huge - 1, "mi", &info, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "too large"));
    assert_int_equal(fedl_meminfo_parse(no_unit, sizeof no_unit - 1, "mi", &info, &err),
                     FEDL_ERR_FORMAT);
    assert_int_equal(fedl_meminfo_parse("", 0, "mi", &info, &err), FEDL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "no MemTotal"));
}

/* ------------------------------------------------------------ real system */

static void test_budget_real_system_detects_a_plausible_budget(void **state)
{
    fedl_budget b;
    fedl_error err;
    (void)state;
    if (fedl_budget_detect(NULL, &b, &err) != FEDL_OK)
        fail_msg("real detect failed: %s", err.message);
    print_message("real system: %s bytes=%llu source=%s\n", b.explanation,
                  (unsigned long long)b.bytes, fedl_budget_source_name(b.source));
    if (b.notes[0] != '\0')
        print_message("real system notes: %s\n", b.notes);
    assert_true(b.bytes > 0);
    assert_true(b.reading.memtotal > 0);
    assert_true(b.bytes <= b.reading.memtotal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_meminfo_only_takes_half_of_memavailable),
        cmocka_unit_test(test_budget_missing_proc_self_cgroup_is_no_figure_not_error),
        cmocka_unit_test(test_budget_fraction_option_scales_memavailable),
        cmocka_unit_test(test_budget_old_kernel_estimates_memavailable),
        cmocka_unit_test(test_budget_malformed_meminfo_names_file_line_and_field),
        cmocka_unit_test(test_budget_without_any_figure_is_unsupported),
        cmocka_unit_test(test_budget_rejects_fraction_outside_zero_one),
        cmocka_unit_test(test_budget_cgroup_v2_limit_below_half_memavailable_decides),
        cmocka_unit_test(test_budget_cgroup_v2_max_leaves_meminfo_deciding),
        cmocka_unit_test(test_budget_cgroup_v2_stricter_parent_bounds_child),
        cmocka_unit_test(test_budget_cgroup_usage_above_limit_gives_zero),
        cmocka_unit_test(test_budget_container_root_cgroup_reads_mount_root),
        cmocka_unit_test(test_budget_container_host_path_falls_back_to_mount_root),
        cmocka_unit_test(test_budget_malformed_memory_max_names_file),
        cmocka_unit_test(test_budget_cgroup_v1_unlimited_value_is_no_limit),
        cmocka_unit_test(test_budget_cgroup_v1_limit_decides),
        cmocka_unit_test(test_budget_cgroup_v1_listed_but_not_mounted_is_no_figure),
        cmocka_unit_test(test_budget_fake_rlimit_as_decides),
        cmocka_unit_test(test_budget_fake_rlimit_data_uses_vmdata_of_status),
        cmocka_unit_test(test_budget_parse_size_is_fixed),
        cmocka_unit_test(test_budget_parse_auto_detects),
        cmocka_unit_test(test_budget_parse_garbage_and_zero_are_errors),
        cmocka_unit_test(test_budget_names_and_sizes_read_well),
        cmocka_unit_test(test_proc_cgroup_parse_finds_v1_memory_and_v2),
        cmocka_unit_test(test_proc_cgroup_parse_rejects_bad_lines),
        cmocka_unit_test(test_cgroup_value_parse_accepts_max_only_for_v2),
        cmocka_unit_test(test_meminfo_parse_rejects_duplicates_and_overflow),
        cmocka_unit_test(test_budget_real_system_detects_a_plausible_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
