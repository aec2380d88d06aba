/*
 * follow.c - a training session under a monitor: between steps, shrink
 * when CONSTRAINED and restore when OK again; under CRITICAL, checkpoint,
 * give the memory back, wait for the monitor to clear, take it back and go
 * on. Every action is reported to the monitor with the RSS before and
 * after, which makes it a JSON line in the monitor's log.
 */
#include <stdio.h>
#include <string.h>

#include "fedl/train.h"
#include "train/follow.h"

void fedl_trainer_attach_monitor(fedl_trainer *t, fedl_monitor *m)
{
    fedl_trainer_follow *f = fedl_trainer_follow_of(t);
    memset(f, 0, sizeof *f);
    f->monitor = m;
    f->applied = FEDL_PRESSURE_OK;
}

/* OK -> CONSTRAINED: half the micro-batch, one BLAS thread. */
static fedl_status shrink(fedl_trainer *t, fedl_trainer_follow *f, fedl_error *err)
{
    uint64_t before = fedl_self_rss();
    int micro = fedl_trainer_micro_batch(t), smaller = micro > 1 ? micro / 2 : 1;
    char action[128];
    fedl_status st = fedl_trainer_set_micro_batch(t, smaller, err);
    if (st != FEDL_OK)
        return st;
    f->saved_micro = micro;
    f->saved_threads = fedl_blas_threads(1);
    snprintf(action, sizeof action, "shrink: micro-batch %d -> %d, BLAS threads %d -> 1", micro,
             fedl_trainer_micro_batch(t), f->saved_threads);
    f->applied = FEDL_PRESSURE_CONSTRAINED;
    fedl_monitor_report(f->monitor, FEDL_PRESSURE_OK, action, before, fedl_self_rss());
    return FEDL_OK;
}

/* CONSTRAINED -> OK: what shrink changed, back. A micro-batch that cannot
 * grow again is kept (and said). */
static void restore(fedl_trainer *t, fedl_trainer_follow *f)
{
    uint64_t before = fedl_self_rss();
    int micro = fedl_trainer_micro_batch(t);
    fedl_error err = {0};
    char action[FEDL_PROBE_TEXT_MAX + 64];
    fedl_blas_threads(f->saved_threads);
    if (fedl_trainer_set_micro_batch(t, f->saved_micro, &err) == FEDL_OK)
        snprintf(action, sizeof action, "restore: micro-batch %d -> %d, BLAS threads 1 -> %d",
                 micro, fedl_trainer_micro_batch(t), f->saved_threads);
    else
        snprintf(action, sizeof action,
                 "restore: BLAS threads 1 -> %d; micro-batch %d kept (%.160s)", f->saved_threads,
                 micro, err.message);
    f->applied = FEDL_PRESSURE_OK;
    fedl_monitor_report(f->monitor, FEDL_PRESSURE_CONSTRAINED, action, before, fedl_self_rss());
}

fedl_status fedl_trainer_follow_monitor(fedl_trainer *t, int *pause, fedl_error *err)
{
    fedl_trainer_follow *f = fedl_trainer_follow_of(t);
    uint64_t generation;
    int disk_low;
    fedl_pressure state;
    *pause = 0;
    if (f->monitor == NULL)
        return FEDL_OK;
    state = fedl_monitor_state(f->monitor, &generation, &disk_low);
    if (state == FEDL_PRESSURE_CRITICAL || disk_low) {
        *pause = 1;
        return FEDL_OK;
    }
    if (generation == f->generation)
        return FEDL_OK;
    f->generation = generation;
    if (state == FEDL_PRESSURE_CONSTRAINED && f->applied == FEDL_PRESSURE_OK)
        return shrink(t, f, err);
    if (state == FEDL_PRESSURE_OK && f->applied == FEDL_PRESSURE_CONSTRAINED)
        restore(t, f);
    return FEDL_OK;
}

static void format_mib(char *out, size_t size, uint64_t bytes)
{
    snprintf(out, size, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* Release and checkpoint; returns the bytes given back. */
static size_t checkpoint_and_release(fedl_trainer *t, const fedl_pause_hooks *h, fedl_pressure from,
                                     fedl_error *err, fedl_status *st)
{
    fedl_trainer_follow *f = fedl_trainer_follow_of(t);
    uint64_t before = fedl_self_rss();
    size_t session, data = 0;
    char action[FEDL_PROBE_TEXT_MAX + 128], a[32], b[32];
    const char *checkpoint = "";
    uint64_t after;
    *st = FEDL_OK;
    /* Memory first: the checkpoint's writes and fsyncs take longer, and it
     * needs only the model and the arena's fixed part, which stay. */
    session = fedl_trainer_release(t);
    if (h->checkpoint != NULL) {
        *st = h->checkpoint(h->user, err);
        checkpoint = *st == FEDL_OK ? ", checkpoint" : ", checkpoint FAILED";
    }
    if (h->release != NULL)
        data = h->release(h->user);
    after = fedl_self_rss();
    format_mib(a, sizeof a, session);
    format_mib(b, sizeof b, data);
    snprintf(action, sizeof action, "release%s: %s of session buffers, %s of data; waiting",
             checkpoint, a, b);
    fedl_monitor_set_reserve(f->monitor, session + data);
    fedl_monitor_report(f->monitor, from, action, before, after);
    return session + data;
}

/* Take everything back after the wait. */
static fedl_status take_back(fedl_trainer *t, const fedl_pause_hooks *h, int released,
                             fedl_error *err)
{
    fedl_trainer_follow *f = fedl_trainer_follow_of(t);
    uint64_t before = fedl_self_rss();
    fedl_status st = FEDL_OK;
    char action[128];
    if (released && h->reacquire != NULL)
        st = h->reacquire(h->user, err);
    if (st == FEDL_OK)
        st = fedl_trainer_reacquire(t, err);
    snprintf(action, sizeof action, "%s (micro-batch %d)",
             st == FEDL_OK ? "resume" : "resume FAILED", fedl_trainer_micro_batch(t));
    fedl_monitor_report(f->monitor, FEDL_PRESSURE_CRITICAL, action, before, fedl_self_rss());
    return st;
}

fedl_status fedl_trainer_pause(fedl_trainer *t, const fedl_pause_hooks *hooks,
                               const volatile int *cancel, int *resumed, fedl_error *err)
{
    static const fedl_pause_hooks none = {NULL, NULL, NULL, NULL};
    fedl_trainer_follow *f = fedl_trainer_follow_of(t);
    const fedl_pause_hooks *h = hooks != NULL ? hooks : &none;
    fedl_status st = FEDL_OK;
    int disk_low, released = 0;
    fedl_pressure state;
    *resumed = 0;
    if (f->monitor == NULL)
        return fedl_error_set(err, FEDL_ERR_STATE, "trainer: pause without a monitor attached");
    state = fedl_monitor_state(f->monitor, NULL, &disk_low);
    if (state == FEDL_PRESSURE_CRITICAL) {
        checkpoint_and_release(t, h, f->applied, err, &st);
        released = 1;
        if (st != FEDL_OK) /* the previous checkpoint stands; the pause goes on */
            fedl_log(FEDL_LOG_WARN, "trainer: checkpoint before the pause failed: %s",
                     err != NULL ? err->message : "");
        st = FEDL_OK;
    } else if (disk_low) {
        uint64_t rss = fedl_self_rss();
        fedl_log(FEDL_LOG_WARN, "trainer: PAUSED: the disk is below its floor; training waits "
                                "rather than fill it (no checkpoint is written)");
        fedl_monitor_report(f->monitor, state, "pause: disk low, no checkpoint", rss, rss);
    } else {
        *resumed = 1; /* cleared already */
        return FEDL_OK;
    }
    if (!fedl_monitor_wait_until_clear(f->monitor, cancel, 0)) {
        fedl_monitor_set_reserve(f->monitor, 0);
        return st;
    }
    fedl_monitor_set_reserve(f->monitor, 0);
    f->generation = 0; /* look at the state afresh: it may be CONSTRAINED now */
    {
        fedl_status back = take_back(t, h, released, err);
        if (back != FEDL_OK)
            return back;
    }
    *resumed = 1;
    return st;
}
