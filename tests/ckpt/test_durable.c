/* test_durable.c - the durable writer: content lands whole, replaces the old
 * file, leaves no temp file behind, and reports failures with the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/ckpt.h"
#include "support/test_support.h"

static size_t read_all(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL)
        return 0;
    n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_durable_write_creates_and_replaces_whole_file(void **state)
{
    const char *dir = test_make_temp_dir("durable");
    char path[512], buf[64];
    fedl_error err;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    assert_int_equal(fedl_durable_write(path, "first version", 13, &err), FEDL_OK);
    assert_int_equal(read_all(path, buf, sizeof buf), 13);
    assert_memory_equal(buf, "first version", 13);
    assert_int_equal(fedl_durable_write(path, "v2", 2, &err), FEDL_OK);
    assert_int_equal(read_all(path, buf, sizeof buf), 2);
    assert_memory_equal(buf, "v2", 2);
    assert_int_equal(count_entries(dir), 1); /* no temp file left behind */
    assert_int_equal(fedl_durable_write(path, "", 0, &err), FEDL_OK);
    assert_int_equal(read_all(path, buf, sizeof buf), 0);
    remove(path);
    rmdir(dir);
}

static void test_durable_write_reports_missing_directory_and_keeps_nothing(void **state)
{
    fedl_error err = {0};
    (void)state;
    assert_int_equal(fedl_durable_write("/nonexistent-fedl-dir/x.bin", "x", 1, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent-fedl-dir/x.bin"));
    assert_non_null(strstr(err.message, "No such file"));
}

static void test_durable_write_over_a_directory_fails_and_cleans_its_temp_file(void **state)
{
    const char *dir = test_make_temp_dir("durable-dir");
    char target[512], inner[600];
    fedl_error err = {0};
    (void)state;
    assert_non_null(dir);
    snprintf(target, sizeof target, "%s/occupied", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", target);
    assert_int_equal(test_write_file(inner, "old", 3), 0);
    /* rename() cannot replace a non-empty directory: the write must fail,
     * name the path, and leave the directory and its content as they were */
    assert_int_equal(fedl_durable_write(target, "new!", 4, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "rename failed"));
    assert_non_null(strstr(err.message, target));
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_entries(target), 1);
    remove(inner);
    rmdir(target);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_write_creates_and_replaces_whole_file),
        cmocka_unit_test(test_durable_write_reports_missing_directory_and_keeps_nothing),
        cmocka_unit_test(test_durable_write_over_a_directory_fails_and_cleans_its_temp_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
