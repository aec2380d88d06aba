/* test_durable.c - the durable writer: content lands whole, replaces the old
 * file, leaves no temp file behind, and reports failures with the path and
 * the step; every injected I/O fault leaves the old file (or, after the
 * rename, the new one) whole; a write first removes the stale temp files
 * of its own target (dead writer or this process) and nothing else. Also
 * orphaned temp cleanup, file views and file digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* path's content equals bytes, read through a file view on alloc. */
static int file_is(const char *path, const void *bytes, size_t length, fedl_allocator *alloc)
{
    fedl_file_view view;
    fedl_error err;
    int same;
    if (fedl_file_view_open(path, alloc, &view, &err) != FEDL_OK)
        return 0;
    same = view.length == length && memcmp(view.bytes, bytes, length) == 0;
    fedl_file_view_close(&view);
    return same;
}

static void fill_pattern(uint8_t *bytes, size_t length, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < length; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes[i] = (uint8_t)x;
    }
}

static void test_durable_writev_joins_pieces_exactly(void **state)
{
    const char *dir = test_make_temp_dir("durable-v");
    const fedl_iovec pieces[] = {{"ab", 2}, {NULL, 0}, {"cdef", 4}};
    char path[512];
    fedl_error err;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/joined", dir);
    assert_int_equal(fedl_durable_writev(NULL, path, pieces, 3, &err), FEDL_OK);
    assert_true(file_is(path, "abcdef", 6, NULL));
    assert_int_equal(fedl_durable_writev(fedl_io_posix(), path, NULL, 0, &err), FEDL_OK);
    assert_true(file_is(path, "", 0, NULL));
    assert_int_equal(fedl_durable_writev(NULL, path, NULL, 2, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(fedl_durable_writev(NULL, path, pieces, -1, &err), FEDL_ERR_INVALID_ARG);
    assert_int_equal(count_temp_files(dir), 0);
    remove(path);
    rmdir(dir);
}

static void test_durable_writev_short_writes_and_eintr_give_exact_bytes(void **state)
{
    const char *dir = test_make_temp_dir("durable-short");
    const size_t sizes[3] = {70001, 1, 30000};
    uint8_t *bytes = malloc(sizes[0] + sizes[1] + sizes[2]);
    fedl_iovec pieces[3];
    char path[512];
    test_fault_io f;
    fedl_error err;
    size_t offset = 0;
    (void)state;
    assert_non_null(dir);
    assert_non_null(bytes);
    fill_pattern(bytes, sizes[0] + sizes[1] + sizes[2], 7);
    for (int i = 0; i < 3; i++) {
        pieces[i].base = bytes + offset;
        pieces[i].length = sizes[i];
        offset += sizes[i];
    }
    snprintf(path, sizeof path, "%s/short", dir);
    test_fault_io_init(&f);
    f.max_chunk = 13; /* writes of 1..13 bytes */
    f.eintr_at = 3;
    assert_int_equal(fedl_durable_writev(&f.io, path, pieces, 3, &err), FEDL_OK);
    assert_true(f.calls[TEST_OP_WRITE] > (long)(offset / 13));
    assert_true(file_is(path, bytes, offset, NULL));
    assert_int_equal(count_temp_files(dir), 0);
    free(bytes);
    remove(path);
    rmdir(dir);
}

/* What the durable writer does when the Nth call of op fails: the step the
 * message must name, and whether the rename already happened (the new file
 * is then in place, still whole) or the call's failure is harmless. */
typedef struct fault_outcome {
    const char *step; /* NULL: the write succeeds */
    int new_in_place;
} fault_outcome;

static fault_outcome expected_outcome(int op, long n)
{
    fault_outcome o = {NULL, 0};
    switch (op) {
    case TEST_OP_OPEN:
        o.step = n == 1 ? "create failed" : "directory fsync failed";
        o.new_in_place = n != 1;
        break;
    case TEST_OP_WRITE:
        o.step = "write failed at byte";
        break;
    case TEST_OP_FSYNC:
        o.step = "fsync failed";
        break;
    case TEST_OP_CLOSE: /* the second close is the directory's: read-only, ignored */
        o.step = n == 1 ? "close failed" : NULL;
        o.new_in_place = n != 1;
        break;
    case TEST_OP_RENAME:
        o.step = "rename failed";
        break;
    case TEST_OP_DIR_FSYNC:
        o.step = "directory fsync failed";
        o.new_in_place = 1;
        break;
    default:
        break;
    }
    return o;
}

/* Offset of the first byte of write call n when writes take 1, 2, 3, 4, 1,
 * ... bytes (max_chunk 4). */
static size_t offset_of_write(long n)
{
    size_t offset = 0;
    for (long i = 1; i < n; i++)
        offset += (size_t)((i - 1) % 4 + 1);
    return offset;
}

static void run_one_fault(const char *dir, const char *path, int op, long n, int error_number,
                          fedl_allocator *alloc)
{
    static const char old_content[] = "the old content, whole";
    static const char new_content[] = "the new content: 38 bytes, all of it!";
    const fedl_iovec pieces[] = {{new_content, 20}, {new_content + 20, sizeof new_content - 21}};
    fault_outcome want = expected_outcome(op, n);
    test_fault_io f;
    fedl_error err = {FEDL_OK, ""};
    char bytes_text[64];
    fedl_status st;
    assert_int_equal(fedl_durable_write(path, old_content, sizeof old_content - 1, &err), FEDL_OK);
    test_fault_io_init(&f);
    f.fail_op = op;
    f.fail_at = n;
    f.fail_errno = error_number;
    f.max_chunk = 4;
    st = fedl_durable_writev(&f.io, path, pieces, 2, &err);
    if (want.step == NULL) {
        assert_int_equal(st, FEDL_OK);
    } else {
        if (st != FEDL_ERR_IO || strstr(err.message, want.step) == NULL ||
            strstr(err.message, strerror(error_number)) == NULL ||
            strstr(err.message, path) == NULL)
            fail_msg("%s #%ld: status %d, message \"%s\"", test_op_names[op], n, st, err.message);
        if (op == TEST_OP_FSYNC)
            assert_int_equal(f.calls[TEST_OP_FSYNC], 1); /* never retried */
        if (op == TEST_OP_WRITE) {
            snprintf(bytes_text, sizeof bytes_text, "at byte %zu of %zu", offset_of_write(n),
                     sizeof new_content - 1);
            if (strstr(err.message, bytes_text) == NULL)
                fail_msg("write #%ld: \"%s\" lacks \"%s\"", n, err.message, bytes_text);
        }
    }
    if (want.new_in_place)
        assert_true(file_is(path, new_content, sizeof new_content - 1, alloc));
    else if (!file_is(path, old_content, sizeof old_content - 1, alloc))
        fail_msg("%s #%ld: the old file was changed", test_op_names[op], n);
    if (count_temp_files(dir) != 0)
        fail_msg("%s #%ld: a temp file was left behind", test_op_names[op], n);
}

static void test_durable_writev_every_fault_keeps_a_whole_file_and_names_the_step(void **state)
{
    const char *made = test_make_temp_dir("durable-fault");
    const int ops[] = {TEST_OP_OPEN,      TEST_OP_WRITE, TEST_OP_FSYNC,
                       TEST_OP_DIR_FSYNC, TEST_OP_CLOSE, TEST_OP_RENAME};
    const int errnos[] = {EIO, ENOSPC};
    char dir[256], path[512];
    long clean_calls[TEST_OP_COUNT];
    fedl_allocator alloc;
    test_fault_io f;
    fedl_error err;
    int runs = 0;
    (void)state;
    assert_non_null(made);
    snprintf(dir, sizeof dir, "%s", made);
    snprintf(path, sizeof path, "%s/target.bin", dir);
    fedl_allocator_init(&alloc, NULL, NULL);
    /* a clean run counts the calls that can fail */
    test_fault_io_init(&f);
    f.max_chunk = 4;
    assert_int_equal(fedl_durable_writev(&f.io, path,
                                         &(fedl_iovec){"0123456789abcdefghijklmnopqrstuvwxyz!", 37},
                                         1, &err),
                     FEDL_OK);
    memcpy(clean_calls, f.calls, sizeof clean_calls);
    assert_int_equal(clean_calls[TEST_OP_OPEN], 2);  /* temp file, directory */
    assert_int_equal(clean_calls[TEST_OP_CLOSE], 2); /* temp file, directory */
    assert_int_equal(clean_calls[TEST_OP_FSYNC], 1);
    assert_int_equal(clean_calls[TEST_OP_DIR_FSYNC], 1);
    assert_int_equal(clean_calls[TEST_OP_RENAME], 1);
    assert_true(clean_calls[TEST_OP_WRITE] >= 15);
    for (size_t e = 0; e < sizeof errnos / sizeof errnos[0]; e++)
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            for (long n = 1; n <= clean_calls[ops[i]]; n++, runs++)
                run_one_fault(dir, path, ops[i], n, errnos[e], &alloc);
    assert_true(runs > 40);
    assert_int_equal(alloc.stats.live_bytes, 0);
    assert_true(alloc.stats.allocs == 0 || alloc.stats.frees == alloc.stats.allocs);
    remove(path);
    rmdir(dir);
}

static void test_durable_writev_zero_byte_write_is_no_space(void **state)
{
    const char *dir = test_make_temp_dir("durable-zero");
    char path[512];
    test_fault_io f;
    fedl_error err;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/full", dir);
    assert_int_equal(fedl_durable_write(path, "old", 3, &err), FEDL_OK);
    test_fault_io_init(&f);
    f.max_chunk = 2;
    f.zero_at = 2;
    assert_int_equal(fedl_durable_writev(&f.io, path, &(fedl_iovec){"brand new", 9}, 1, &err),
                     FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "write failed at byte 1 of 9"));
    assert_non_null(strstr(err.message, strerror(ENOSPC)));
    assert_int_equal(f.calls[TEST_OP_FSYNC], 0);
    assert_true(file_is(path, "old", 3, NULL));
    assert_int_equal(count_temp_files(dir), 0);
    remove(path);
    rmdir(dir);
}

static void test_durable_writev_replaces_a_stale_temp_file_of_its_own_pid(void **state)
{
    const char *dir = test_make_temp_dir("durable-stale");
    char path[512], stale[600];
    fedl_error err;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/file", dir);
    snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(test_write_file(stale, "left over by a crash", 20), 0);
    assert_int_equal(fedl_durable_write(path, "fresh", 5, &err), FEDL_OK);
    assert_true(file_is(path, "fresh", 5, NULL));
    assert_int_equal(count_temp_files(dir), 0);
    remove(path);
    rmdir(dir);
}

/* ------------------------------------------------------- orphan cleanup */

static pid_t dead_pid(void)
{
    for (pid_t pid = 999999; pid > 900000; pid--)
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return pid;
    return 0;
}

/* Log messages, collected. */
static char logged[4096];

static void collect_log(void *ud, fedl_log_level level, const char *message)
{
    (void)ud;
    (void)level;
    strncat(logged, message, sizeof logged - strlen(logged) - 2);
    strcat(logged, "\n");
}

static void test_durable_writev_removes_stale_temps_of_its_target_only(void **state)
{
    const char *made = test_make_temp_dir("durable-stale-target");
    char dir[256], target[512], path[800], dead_temp[800], own_temp[800], live_temp[800];
    const char *kept[] = {"model.fedl.tmp.",         "model.fedl.tmp.12a", "model.fedl.tmpx.5",
                          "model.fedl.bak",          "other.fedl.tmp.%ld", "xmodel.fedl.tmp.%ld",
                          "model.fedl.tmp.%ld.tmp.1"};
    pid_t child, dead = dead_pid();
    fedl_log_level level = fedl_log_get_level();
    test_fault_io f;
    fedl_error err;
    int status;
    (void)state;
    assert_non_null(made);
    assert_true(dead > 0);
    snprintf(dir, sizeof dir, "%s", made);
    snprintf(target, sizeof target, "%s/model.fedl", dir);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(60); /* gone by itself if a failed assertion skips the kill below */
        pause();
        _exit(0);
    }
    snprintf(dead_temp, sizeof dead_temp, "%s.tmp.%ld", target, (long)dead);
    assert_int_equal(test_write_file(dead_temp, "crashed", 7), 0);
    snprintf(own_temp, sizeof own_temp, "%s.tmp.%ld", target, (long)getpid());
    assert_int_equal(test_write_file(own_temp, "ours", 4), 0);
    snprintf(live_temp, sizeof live_temp, "%s.tmp.%ld", target, (long)child);
    assert_int_equal(test_write_file(live_temp, "live", 4), 0);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, kept[i], (long)dead);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert_int_equal(test_write_file(path, "keep", 4), 0);
    }
    /* a symlink with a temp name is not removed (nor followed) */
    snprintf(path, sizeof path, "%s.tmp.%ld", target, (long)dead - 1);
    assert_int_equal(symlink("/nonexistent-fedl-target", path), 0);

    test_fault_io_init(&f);
    logged[0] = '\0';
    fedl_log_set_level(FEDL_LOG_INFO);
    fedl_log_set_sink(collect_log, NULL);
    assert_int_equal(fedl_durable_writev(&f.io, target, &(fedl_iovec){"new", 3}, 1, &err), FEDL_OK);
    fedl_log_set_sink(NULL, NULL);
    fedl_log_set_level(level);
    assert_true(file_is(target, "new", 3, NULL));
    assert_int_equal(f.calls[TEST_OP_UNLINK], 2); /* through the io layer: dead, then ours */
    assert_int_not_equal(access(dead_temp, F_OK), 0);
    assert_int_not_equal(access(own_temp, F_OK), 0);
    assert_int_equal(access(live_temp, F_OK), 0); /* its writer is alive */
    assert_non_null(strstr(logged, dead_temp));
    assert_non_null(strstr(logged, "removed orphaned temp file"));
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, kept[i], (long)dead);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (access(path, F_OK) != 0)
            fail_msg("%s was removed", name);
        remove(path);
    }
    snprintf(path, sizeof path, "%s.tmp.%ld", target, (long)dead - 1);
    assert_int_equal(unlink(path), 0);

    /* a stale temp that cannot be removed is reported, and the write goes on */
    assert_int_equal(test_write_file(dead_temp, "crashed", 7), 0);
    test_fault_io_init(&f);
    f.fail_op = TEST_OP_UNLINK;
    f.fail_at = 1;
    f.fail_errno = EACCES;
    logged[0] = '\0';
    fedl_log_set_sink(collect_log, NULL);
    assert_int_equal(fedl_durable_writev(&f.io, target, &(fedl_iovec){"newer", 5}, 1, &err),
                     FEDL_OK);
    fedl_log_set_sink(NULL, NULL);
    assert_true(file_is(target, "newer", 5, NULL));
    assert_non_null(strstr(logged, "cannot remove stale temp file"));
    assert_non_null(strstr(logged, strerror(EACCES)));
    assert_int_equal(access(dead_temp, F_OK), 0);

    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    remove(dead_temp);
    remove(live_temp);
    remove(target);
    assert_int_equal(count_entries(dir), 0);
    rmdir(dir);
}

static void test_clean_orphans_removes_dead_writers_temps_and_keeps_live_ones(void **state)
{
    const char *made = test_make_temp_dir("durable-orphans");
    char dir[256], path[600];
    const char *kept[] = {"data.bin", "x.tmp.", "x.tmp.12a", ".tmp.5", "x.tmp.0"};
    pid_t child, dead = dead_pid();
    fedl_error err;
    int removed = -1, status;
    (void)state;
    assert_non_null(made);
    assert_true(dead > 0);
    snprintf(dir, sizeof dir, "%s", made);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(60); /* gone by itself if a failed assertion skips the kill below */
        pause();
        _exit(0);
    }
    assert_int_equal(kill(child, 0), 0);
    snprintf(path, sizeof path, "%s/x.tmp.%ld", dir, (long)dead);
    assert_int_equal(test_write_file(path, "dead", 4), 0);
    snprintf(path, sizeof path, "%s/z.tmp.%ld", dir, (long)getpid()); /* ours: stale */
    assert_int_equal(test_write_file(path, "ours", 4), 0);
    snprintf(path, sizeof path, "%s/y.tmp.%ld", dir, (long)child);
    assert_int_equal(test_write_file(path, "live", 4), 0);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
        assert_int_equal(test_write_file(path, "keep", 4), 0);
    }

    assert_int_equal(fedl_durable_clean_orphans(NULL, dir, &removed, &err), FEDL_OK);
    assert_int_equal(removed, 2);
    snprintf(path, sizeof path, "%s/x.tmp.%ld", dir, (long)dead);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/z.tmp.%ld", dir, (long)getpid());
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/y.tmp.%ld", dir, (long)child);
    assert_int_equal(access(path, F_OK), 0); /* its writer is alive */
    remove(path);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
        assert_int_equal(access(path, F_OK), 0);
        remove(path);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    assert_int_equal(fedl_durable_clean_orphans(NULL, dir, NULL, &err), FEDL_OK);
    rmdir(dir);
    assert_int_equal(fedl_durable_clean_orphans(NULL, dir, &removed, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, dir));
}

/* ------------------------------------------------------- views and digests */

static void test_file_view_reads_empty_small_and_large_files(void **state)
{
    const char *made = test_make_temp_dir("durable-view");
    const size_t sizes[] = {0, 3, 1u << 20};
    char dir[256], path[512];
    fedl_allocator alloc;
    fedl_file_view view;
    fedl_error err;
    uint8_t *bytes = malloc(1u << 20);
    (void)state;
    assert_non_null(made);
    assert_non_null(bytes);
    snprintf(dir, sizeof dir, "%s", made);
    snprintf(path, sizeof path, "%s/f", dir);
    fedl_allocator_init(&alloc, NULL, NULL);
    fill_pattern(bytes, 1u << 20, 3);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(test_write_file(path, bytes, sizes[i]), 0);
        assert_int_equal(fedl_file_view_open(path, &alloc, &view, &err), FEDL_OK);
        assert_int_equal(view.length, sizes[i]);
        assert_non_null(view.bytes);
        assert_memory_equal(view.bytes, bytes, sizes[i]);
        fedl_file_view_close(&view);
        assert_null(view.bytes);
        fedl_file_view_close(&view); /* twice is harmless */
    }
    assert_int_equal(alloc.stats.live_bytes, 0);
    assert_int_equal(fedl_file_view_open(dir, &alloc, &view, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "not a regular file"));
    remove(path);
    assert_int_equal(fedl_file_view_open(path, &alloc, &view, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file"));
    assert_int_equal(alloc.stats.live_bytes, 0);
    free(bytes);
    rmdir(dir);
}

static void hex_of(const uint8_t digest[FEDL_SHA256_BYTES], char hex[65])
{
    fedl_sha256_hex(digest, hex);
}

static void test_file_sha256_matches_known_vectors_and_streams_large_files(void **state)
{
    const char *made = test_make_temp_dir("durable-sha");
    char dir[256], path[512], hex[65];
    uint8_t digest[FEDL_SHA256_BYTES], expected[FEDL_SHA256_BYTES];
    uint8_t *bytes = malloc((1u << 20) + 7);
    uint64_t size = 99;
    fedl_error err;
    (void)state;
    assert_non_null(made);
    assert_non_null(bytes);
    snprintf(dir, sizeof dir, "%s", made);
    snprintf(path, sizeof path, "%s/h", dir);
    assert_int_equal(test_write_file(path, "abc", 3), 0);
    assert_int_equal(fedl_file_sha256(path, &size, digest, &err), FEDL_OK);
    hex_of(digest, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    assert_int_equal(test_write_file(path, "", 0), 0);
    assert_int_equal(fedl_file_sha256(path, &size, digest, &err), FEDL_OK);
    hex_of(digest, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(size, 0);
    /* 1 MiB + 7: sixteen full 64 KiB reads and a short one */
    fill_pattern(bytes, (1u << 20) + 7, 11);
    assert_int_equal(test_write_file(path, bytes, (1u << 20) + 7), 0);
    assert_int_equal(fedl_file_sha256(path, &size, digest, &err), FEDL_OK);
    fedl_sha256(bytes, (1u << 20) + 7, expected);
    assert_memory_equal(digest, expected, FEDL_SHA256_BYTES);
    assert_int_equal(size, (1u << 20) + 7);
    remove(path);
    assert_int_equal(fedl_file_sha256(path, &size, digest, &err), FEDL_ERR_IO);
    assert_non_null(strstr(err.message, path));
    free(bytes);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_write_creates_and_replaces_whole_file),
        cmocka_unit_test(test_durable_write_reports_missing_directory_and_keeps_nothing),
        cmocka_unit_test(test_durable_write_over_a_directory_fails_and_cleans_its_temp_file),
        cmocka_unit_test(test_durable_writev_joins_pieces_exactly),
        cmocka_unit_test(test_durable_writev_short_writes_and_eintr_give_exact_bytes),
        cmocka_unit_test(test_durable_writev_every_fault_keeps_a_whole_file_and_names_the_step),
        cmocka_unit_test(test_durable_writev_zero_byte_write_is_no_space),
        cmocka_unit_test(test_durable_writev_replaces_a_stale_temp_file_of_its_own_pid),
        cmocka_unit_test(test_durable_writev_removes_stale_temps_of_its_target_only),
        cmocka_unit_test(test_clean_orphans_removes_dead_writers_temps_and_keeps_live_ones),
        cmocka_unit_test(test_file_view_reads_empty_small_and_large_files),
        cmocka_unit_test(test_file_sha256_matches_known_vectors_and_streams_large_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
