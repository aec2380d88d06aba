/* test_alloc.c - the accounted allocator's counters, limit, aligned blocks
 * and arenas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedl/mem.h"
#include "support/test_support.h"

static void test_allocator_counts_live_peak_and_events(void **state)
{
    fedl_allocator a;
    void *p, *q;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    p = fedl_mem_alloc(&a, 100);
    q = fedl_mem_alloc(&a, 50);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(a.stats.live_bytes, 150);
    p = fedl_mem_realloc(&a, p, 100, 300);
    assert_int_equal(a.stats.live_bytes, 350);
    assert_int_equal(a.stats.peak_bytes, 350);
    fedl_mem_free(&a, p, 300);
    fedl_mem_free(&a, q, 50);
    assert_int_equal(a.stats.live_bytes, 0);
    assert_int_equal(a.stats.peak_bytes, 350);
    assert_int_equal(a.stats.allocs, 2);
    assert_int_equal(a.stats.reallocs, 1);
    assert_int_equal(a.stats.frees, 2);
    fedl_allocator_reset_peak(&a);
    assert_int_equal(a.stats.peak_bytes, 0);
    assert_int_equal(a.stats.allocs, 0);
}

static void test_alloc_returns_zeroed_memory(void **state)
{
    fedl_allocator a;
    unsigned char *p;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    p = fedl_mem_alloc(&a, 4096);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(p[i], 0);
    fedl_mem_free(&a, p, 4096);
}

static void test_limit_fails_requests_past_it(void **state)
{
    fedl_allocator a;
    void *p, *q;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    a.limit_bytes = 1000;
    p = fedl_mem_alloc(&a, 800);
    assert_non_null(p);
    q = fedl_mem_alloc(&a, 300);
    assert_null(q);
    assert_int_equal(a.stats.failures, 1);
    assert_int_equal(a.stats.live_bytes, 800);
    fedl_mem_free(&a, p, 800);
}

static void test_user_hook_failure_is_counted_and_returns_null(void **state)
{
    test_failing_alloc hook = {0, 2};
    fedl_allocator a;
    void *p, *q;
    (void)state;
    fedl_allocator_init(&a, test_failing_alloc_fn, &hook);
    p = fedl_mem_alloc(&a, 10);
    q = fedl_mem_alloc(&a, 10);
    assert_non_null(p);
    assert_null(q);
    assert_int_equal(a.stats.failures, 1);
    assert_int_equal(a.stats.live_bytes, 10);
    fedl_mem_free(&a, p, 10);
}

static void test_aligned_blocks_are_aligned_and_accounted(void **state)
{
    fedl_allocator a;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    for (size_t align = 8; align <= 4096; align *= 2) {
        void *p = fedl_mem_alloc_aligned(&a, 1000, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        fedl_mem_free_aligned(&a, p);
    }
    assert_int_equal(a.stats.live_bytes, 0);
    assert_null(fedl_mem_alloc_aligned(&a, 10, 3));
}

static void test_arena_hands_out_aligned_slices_until_full(void **state)
{
    fedl_allocator a;
    fedl_arena arena;
    fedl_error err;
    void *p1, *p2, *p3;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    assert_int_equal(fedl_arena_init(&arena, &a, 256, &err), FEDL_OK);
    p1 = fedl_arena_push(&arena, 10, 4);
    p2 = fedl_arena_push(&arena, 100, 64);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal((uintptr_t)p2 % 64, 0);
    p3 = fedl_arena_push(&arena, 200, 4);
    assert_null(p3);
    fedl_arena_reset(&arena);
    p3 = fedl_arena_push(&arena, 200, 4);
    assert_non_null(p3);
    assert_true(arena.high_water >= 164);
    fedl_arena_destroy(&arena);
    assert_int_equal(a.stats.live_bytes, 0);
}

static void test_arena_init_reports_out_of_memory(void **state)
{
    fedl_allocator a;
    fedl_arena arena;
    fedl_error err;
    (void)state;
    fedl_allocator_init(&a, NULL, NULL);
    a.limit_bytes = 100;
    assert_int_equal(fedl_arena_init(&arena, &a, 1000, &err), FEDL_ERR_NOMEM);
    assert_non_null(strstr(err.message, "1000"));
    assert_null(arena.base);
}

static void test_arena_resize_keeps_what_was_handed_out(void **state)
{
    unsigned turn = 0;
    fedl_allocator a;
    fedl_arena arena;
    fedl_error err;
    unsigned char *p;
    (void)state;
    fedl_allocator_init(&a, test_moving_alloc_fn, &turn);
    assert_int_equal(fedl_arena_init(&arena, &a, 1000, &err), FEDL_OK);
    assert_int_equal((uintptr_t)arena.base % 64, 0);
    p = fedl_arena_push(&arena, 300, 64);
    for (int i = 0; i < 300; i++)
        p[i] = (unsigned char)(i * 7 + 1);
    /* grow, then shrink to what is in use: each resize moves the block */
    for (int k = 0; k < 2; k++) {
        const size_t capacity = k == 0 ? 5000 : 300;
        unsigned char *old_base = arena.base;
        assert_int_equal(fedl_arena_resize(&arena, capacity, &err), FEDL_OK);
        assert_ptr_not_equal(arena.base, old_base);
        assert_int_equal((uintptr_t)arena.base % 64, 0);
        assert_int_equal(arena.capacity, capacity);
        for (int i = 0; i < 300; i++)
            assert_int_equal(arena.base[i], (unsigned char)(i * 7 + 1));
        assert_int_equal(a.stats.live_bytes, capacity + FEDL_ARENA_SLACK);
    }
    /* never below what is in use; nothing changes then */
    assert_int_equal(fedl_arena_resize(&arena, 299, &err), FEDL_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "300 are in use"));
    assert_int_equal(arena.capacity, 300);
    assert_null(fedl_arena_push(&arena, 1, 1));
    /* truncate releases the tail, then the block can shrink */
    fedl_arena_truncate(&arena, 100);
    assert_int_equal(fedl_arena_resize(&arena, 100, &err), FEDL_OK);
    assert_int_equal(arena.base[99], (unsigned char)(99 * 7 + 1));
    /* a failed resize leaves the arena as it was */
    a.limit_bytes = 1000;
    p = arena.base;
    assert_int_equal(fedl_arena_resize(&arena, 4000, &err), FEDL_ERR_NOMEM);
    assert_ptr_equal(arena.base, p);
    assert_int_equal(arena.capacity, 100);
    fedl_arena_destroy(&arena);
    assert_int_equal(a.stats.live_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator_counts_live_peak_and_events),
        cmocka_unit_test(test_alloc_returns_zeroed_memory),
        cmocka_unit_test(test_limit_fails_requests_past_it),
        cmocka_unit_test(test_user_hook_failure_is_counted_and_returns_null),
        cmocka_unit_test(test_aligned_blocks_are_aligned_and_accounted),
        cmocka_unit_test(test_arena_hands_out_aligned_slices_until_full),
        cmocka_unit_test(test_arena_init_reports_out_of_memory),
        cmocka_unit_test(test_arena_resize_keeps_what_was_handed_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
