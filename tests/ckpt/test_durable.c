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

static void test_durable_write_into_unwritable_directory_fails_and_old_file_survives(void **state)
{
    const char *dir = test_make_temp_dir("durable-ro");
    char path[512], buf[16];
    fedl_error err = {0};
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/keep.bin", dir);
    assert_int_equal(fedl_durable_write(path, "old", 3, &err), FEDL_OK);
    chmod(dir, 0500);
    if (access(dir, W_OK) == 0) { /* root ignores the mode bits */
        chmod(dir, 0700);
        remove(path);
        rmdir(dir);
        skip();
    }
    assert_int_equal(fedl_durable_write(path, "new!", 4, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "cannot create"));
    assert_int_equal(read_all(path, buf, sizeof buf), 3);
    chmod(dir, 0700);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_write_creates_and_replaces_whole_file),
        cmocka_unit_test(test_durable_write_reports_missing_directory_and_keeps_nothing),
        cmocka_unit_test(test_durable_write_into_unwritable_directory_fails_and_old_file_survives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
