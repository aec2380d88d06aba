/*
 * test_pause.c - a training session giving its memory back and taking it
 * again: fedl_trainer_release / reacquire keep the run bit-identical; a
 * monitor over a fake /proc makes the session shrink when CONSTRAINED,
 * restore when OK, and pause (release, checkpoint, wait, resume) when
 * CRITICAL, again bit-identical; a cancelled pause leaves it released; a
 * low disk pauses without checkpoint or release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fedl/fedl.h"
#include "support/test_support.h"

#define SAMPLES 200
#define BATCH 16
#define STEPS 30

static const char *spec = "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(4)";

typedef struct session {
    fedl_dataset ds;
    fedl_model *model;
    fedl_trainer *trainer;
} session;

static void open_session(session *s)
{
    fedl_train_config c = fedl_train_config_defaults();
    fedl_error err;
    assert_int_equal(test_make_quadrant_dataset(&s->ds, SAMPLES, 7), 0);
    c.batch = BATCH;
    c.seed = 3;
    c.optim.momentum = 0.9f;
    c.lr.base_lr = 0.05f;
    assert_int_equal(fedl_model_create(spec, s->ds.shape, 2, NULL, &s->model, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(s->model, &s->ds, &c, NULL, &s->trainer, &err), FEDL_OK);
}

static void close_session(session *s)
{
    fedl_trainer_destroy(s->trainer);
    fedl_model_destroy(s->model);
    fedl_dataset_free(&s->ds);
}

static void steps(session *s, int n)
{
    fedl_error err;
    int done;
    for (int i = 0; i < n; i++)
        assert_int_equal(fedl_trainer_step(s->trainer, &done, &err), FEDL_OK);
}

/* The weights after STEPS steps without interruption. */
static float *reference_weights(size_t *count)
{
    session s;
    float *w;
    open_session(&s);
    steps(&s, STEPS);
    *count = fedl_model_param_count(s.model);
    w = test_malloc(*count * sizeof(float));
    memcpy(w, fedl_model_params(s.model), *count * sizeof(float));
    close_session(&s);
    return w;
}

static void assert_same_weights(const session *s, const float *reference, size_t count)
{
    assert_int_equal(fedl_model_param_count(s->model), count);
    assert_memory_equal(fedl_model_params(s->model), reference, count * sizeof(float));
}

static void test_release_and_reacquire_keep_the_run_bit_identical(void **state)
{
    size_t count;
    float *reference = reference_weights(&count);
    session s;
    size_t full, released;
    fedl_eval_result result;
    fedl_error err;
    (void)state;
    open_session(&s);
    steps(&s, 10);
    full = fedl_trainer_arena(s.trainer)->capacity;
    released = fedl_trainer_release(s.trainer);
    assert_true(released > 0);
    assert_int_equal(fedl_trainer_is_released(s.trainer), 1);
    assert_int_equal(fedl_trainer_arena(s.trainer)->capacity, full - released);
    assert_int_equal(fedl_trainer_release(s.trainer), 0); /* already released */
    steps(&s, 10);                                        /* takes the buffers back itself */
    assert_int_equal(fedl_trainer_is_released(s.trainer), 0);
    assert_int_equal(fedl_trainer_arena(s.trainer)->capacity, full);
    fedl_trainer_release(s.trainer);
    assert_int_equal(fedl_trainer_evaluate(s.trainer, &s.ds, &result, NULL, &err), FEDL_OK);
    assert_int_equal(result.samples, SAMPLES);
    fedl_trainer_release(s.trainer);
    assert_int_equal(fedl_trainer_reacquire(s.trainer, &err), FEDL_OK);
    steps(&s, 10);
    assert_same_weights(&s, reference, count);
    close_session(&s);
    test_free(reference);
}

static void test_reacquire_fails_cleanly_without_memory(void **state)
{
    test_failing_alloc fa = {0, 0};
    fedl_allocator alloc;
    fedl_train_config c = fedl_train_config_defaults();
    fedl_dataset ds;
    fedl_model *model;
    fedl_trainer *t;
    fedl_error err = {0};
    int done;
    (void)state;
    fedl_allocator_init(&alloc, test_failing_alloc_fn, &fa);
    assert_int_equal(test_make_quadrant_dataset(&ds, SAMPLES, 7), 0);
    c.batch = BATCH;
    assert_int_equal(fedl_model_create(spec, ds.shape, 2, &alloc, &model, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_create(model, &ds, &c, &alloc, &t, &err), FEDL_OK);
    fedl_trainer_release(t);
    fa.fail_at = fa.requests + 1; /* the next growth fails */
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_ERR_NOMEM);
    assert_non_null(strstr(err.message, "still released"));
    assert_int_equal(fedl_trainer_is_released(t), 1);
    fa.fail_at = 0;
    assert_int_equal(fedl_trainer_step(t, &done, &err), FEDL_OK);
    fedl_trainer_destroy(t);
    fedl_model_destroy(model);
    fedl_dataset_free(&ds);
}

/* ---------------------------------------------------- under a monitor */

static char fake_root[4096];

static void write_meminfo(unsigned long available_kb)
{
    char path[4200], text[160];
    int n =
        snprintf(text, sizeof text, "MemTotal: 1000000 kB\nMemAvailable: %lu kB\n", available_kb);
    snprintf(path, sizeof path, "%s/proc/meminfo", fake_root);
    assert_int_equal(test_write_file(path, text, (size_t)n), 0);
}

/* A monitor sampled on the test's thread (no monitor thread), over a fake
 * /proc/meminfo, with no dwell or cooldown; its JSON lines go to log.jsonl. */
static fedl_monitor *fake_monitor(unsigned long available_kb, uint64_t disk_floor, FILE **log)
{
    fedl_monitor_config c = fedl_monitor_config_defaults();
    fedl_monitor *m;
    fedl_error err;
    char path[4200];
    snprintf(fake_root, sizeof fake_root, "%s", test_make_temp_dir("pause"));
    snprintf(path, sizeof path, "%s/proc", fake_root);
    assert_int_equal(mkdir(path, 0755), 0);
    write_meminfo(available_kb);
    snprintf(path, sizeof path, "%s/log.jsonl", fake_root);
    *log = fopen(path, "w+");
    assert_non_null(*log);
    c.probe.root = fake_root;
    c.probe.disk_path = fake_root;
    c.policy.interval_ms = 10;
    c.policy.dwell_ms = 0;
    c.policy.cooldown_ms = 0;
    if (disk_floor > 0) {
        c.policy.disk_floor_bytes = disk_floor;
        c.policy.disk_leave_bytes = disk_floor;
    }
    c.log_fd = fileno(*log);
    assert_int_equal(fedl_monitor_create(&c, &m, &err), FEDL_OK);
    assert_int_equal(fedl_monitor_sample(m, NULL, &err), FEDL_OK);
    return m;
}

static void sample(fedl_monitor *m)
{
    fedl_error err;
    assert_int_equal(fedl_monitor_sample(m, NULL, &err), FEDL_OK);
}

/* The JSON lines written so far, in one string. */
static const char *log_text(FILE *log)
{
    static char text[16384];
    size_t n;
    rewind(log);
    n = fread(text, 1, sizeof text - 1, log);
    text[n] = '\0';
    return text;
}

static void test_constrained_halves_the_micro_batch_and_ok_restores_it(void **state)
{
    FILE *log;
    fedl_monitor *m = fake_monitor(900000, 0, &log);
    session s;
    fedl_error err;
    int pause;
    (void)state;
    open_session(&s);
    fedl_trainer_attach_monitor(s.trainer, m);
    assert_int_equal(fedl_trainer_follow_monitor(s.trainer, &pause, &err), FEDL_OK);
    assert_int_equal(pause, 0);
    assert_int_equal(fedl_trainer_micro_batch(s.trainer), BATCH);
    write_meminfo(120000); /* 12%: CONSTRAINED */
    sample(m);
    assert_int_equal(fedl_trainer_follow_monitor(s.trainer, &pause, &err), FEDL_OK);
    assert_int_equal(pause, 0);
    assert_int_equal(fedl_trainer_micro_batch(s.trainer), BATCH / 2);
    steps(&s, 3);
    write_meminfo(900000);
    sample(m);
    assert_int_equal(fedl_trainer_follow_monitor(s.trainer, &pause, &err), FEDL_OK);
    assert_int_equal(fedl_trainer_micro_batch(s.trainer), BATCH);
    assert_non_null(strstr(log_text(log), "\"action\":\"shrink: micro-batch 16 -> 8"));
    assert_non_null(strstr(log_text(log), "\"action\":\"restore: micro-batch 8 -> 16"));
    close_session(&s);
    fedl_monitor_destroy(m);
    fclose(log);
}

typedef struct hook_calls {
    int checkpoint, release, reacquire;
    int released_at_checkpoint; /* the trainer had released when the checkpoint ran */
    session *s;
} hook_calls;

/* The checkpoint hook also makes the pressure pass, so that the wait that
 * follows ends at its first sample. */
static fedl_status on_checkpoint(void *user, fedl_error *err)
{
    hook_calls *h = user;
    (void)err;
    h->checkpoint++;
    h->released_at_checkpoint = fedl_trainer_is_released(h->s->trainer);
    write_meminfo(900000);
    return FEDL_OK;
}

static size_t on_release(void *user)
{
    hook_calls *h = user;
    h->release++;
    return 4096;
}

static fedl_status on_reacquire(void *user, fedl_error *err)
{
    hook_calls *h = user;
    (void)err;
    h->reacquire++;
    return FEDL_OK;
}

static void test_critical_pauses_and_resumes_bit_identically(void **state)
{
    size_t count;
    float *reference = reference_weights(&count);
    FILE *log;
    fedl_monitor *m = fake_monitor(900000, 0, &log);
    session s;
    hook_calls calls = {0, 0, 0, 0, &s};
    fedl_pause_hooks hooks = {on_checkpoint, on_release, on_reacquire, &calls};
    fedl_error err;
    int pause, resumed;
    (void)state;
    open_session(&s);
    fedl_trainer_attach_monitor(s.trainer, m);
    steps(&s, 12);
    write_meminfo(20000); /* 2%: CRITICAL */
    sample(m);
    assert_int_equal(fedl_trainer_follow_monitor(s.trainer, &pause, &err), FEDL_OK);
    assert_int_equal(pause, 1);
    assert_int_equal(fedl_trainer_pause(s.trainer, &hooks, NULL, &resumed, &err), FEDL_OK);
    assert_int_equal(resumed, 1);
    assert_int_equal(calls.checkpoint, 1);
    assert_int_equal(calls.released_at_checkpoint, 1);
    assert_int_equal(calls.release, 1);
    assert_int_equal(calls.reacquire, 1);
    assert_int_equal(fedl_trainer_is_released(s.trainer), 0);
    assert_int_equal(fedl_trainer_micro_batch(s.trainer), BATCH);
    assert_non_null(strstr(log_text(log), "\"to\":\"critical\""));
    assert_non_null(strstr(log_text(log), "\"action\":\"release, checkpoint:"));
    assert_non_null(strstr(log_text(log), "\"action\":\"resume (micro-batch 16)\""));
    steps(&s, STEPS - 12);
    assert_same_weights(&s, reference, count);
    close_session(&s);
    fedl_monitor_destroy(m);
    fclose(log);
    test_free(reference);
}

static void test_cancelled_pause_stays_released(void **state)
{
    FILE *log;
    fedl_monitor *m = fake_monitor(20000, 0, &log);
    session s;
    int cancel = 1, resumed = 1;
    fedl_error err;
    fedl_train_state st;
    (void)state;
    open_session(&s);
    fedl_trainer_attach_monitor(s.trainer, m);
    steps(&s, 2);
    assert_int_equal(fedl_trainer_pause(s.trainer, NULL, &cancel, &resumed, &err), FEDL_OK);
    assert_int_equal(resumed, 0);
    assert_int_equal(fedl_trainer_is_released(s.trainer), 1);
    fedl_trainer_state(s.trainer, NULL, 0, &st); /* a checkpoint can still be taken */
    assert_int_equal(st.global_step, 2);
    assert_int_equal(fedl_trainer_reacquire(s.trainer, &err), FEDL_OK);
    close_session(&s);
    fedl_monitor_destroy(m);
    fclose(log);
}

static void test_low_disk_pauses_without_checkpoint_or_release(void **state)
{
    FILE *log;
    /* a floor no disk reaches: the disk is always low */
    fedl_monitor *m = fake_monitor(900000, (uint64_t)1 << 62, &log);
    session s;
    hook_calls calls = {0, 0, 0, 0, &s};
    fedl_pause_hooks hooks = {on_checkpoint, on_release, on_reacquire, &calls};
    int cancel = 1, pause, resumed;
    fedl_error err;
    (void)state;
    open_session(&s);
    fedl_trainer_attach_monitor(s.trainer, m);
    assert_int_equal(fedl_trainer_follow_monitor(s.trainer, &pause, &err), FEDL_OK);
    assert_int_equal(pause, 1);
    assert_int_equal(fedl_trainer_pause(s.trainer, &hooks, &cancel, &resumed, &err), FEDL_OK);
    assert_int_equal(resumed, 0);
    assert_int_equal(calls.checkpoint, 0);
    assert_int_equal(calls.release, 0);
    assert_int_equal(fedl_trainer_is_released(s.trainer), 0);
    assert_non_null(strstr(log_text(log), "\"action\":\"pause: disk low"));
    close_session(&s);
    fedl_monitor_destroy(m);
    fclose(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_and_reacquire_keep_the_run_bit_identical),
        cmocka_unit_test(test_reacquire_fails_cleanly_without_memory),
        cmocka_unit_test(test_constrained_halves_the_micro_batch_and_ok_restores_it),
        cmocka_unit_test(test_critical_pauses_and_resumes_bit_identically),
        cmocka_unit_test(test_cancelled_pause_stays_released),
        cmocka_unit_test(test_low_disk_pauses_without_checkpoint_or_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
