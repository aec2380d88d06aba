/*
 * train_monitor.c - a training session that steps aside under pressure: a
 * monitor thread watches memory, CPU, temperature and disk; a callback
 * hears each change as it is detected; between steps the session shrinks
 * its micro-batch when CONSTRAINED and, when CRITICAL, gives its buffers
 * back and waits until the pressure passes, then carries on where it was.
 * Transitions are written as JSON lines to standard error.
 *
 *   cc train_monitor.c $(pkg-config --cflags --libs fedl) -o train_monitor
 *   ./train_monitor [--smoke] [POLICY_FILE]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fedl/fedl.h>

#include "quadrants.h"

#define SAMPLES 512
#define SPEC "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(4)"

static volatile sig_atomic_t stop; /* Ctrl-C ends a pause too */

static void on_signal(int signo)
{
    (void)signo;
    stop = 1;
}

/* Runs on the monitor's thread when a change is detected, and on the
 * training thread when the session reports what it did. */
static void on_change(void *user, const fedl_monitor_event *e)
{
    (void)user;
    printf("monitor: %s -> %s: %s [%s]\n", fedl_pressure_name(e->from), fedl_pressure_name(e->to),
           e->reason, e->action);
}

int main(int argc, char **argv)
{
    int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    const char *policy = argc > 1 + smoke ? argv[1 + smoke] : NULL;
    int steps = smoke ? 40 : 4000, rc = 1;
    fedl_monitor_config mc = fedl_monitor_config_defaults();
    fedl_train_config config = fedl_train_config_defaults();
    fedl_monitor *monitor = NULL;
    fedl_model *model = NULL;
    fedl_trainer *trainer = NULL;
    fedl_dataset data;
    fedl_error err = {0};

    signal(SIGINT, on_signal);
    if (make_quadrants(&data, SAMPLES) != 0)
        goto done;
    mc.log_fd = STDERR_FILENO;
    if (policy != NULL && fedl_policy_load(policy, &mc.policy, &err) != FEDL_OK)
        goto done;
    config.batch = 64;
    config.optim.momentum = 0.9f;
    if (fedl_monitor_create(&mc, &monitor, &err) != FEDL_OK ||
        fedl_monitor_add_callback(monitor, on_change, NULL, &err) != FEDL_OK ||
        fedl_monitor_start(monitor, &err) != FEDL_OK ||
        fedl_model_create(SPEC, data.shape, 3, NULL, &model, &err) != FEDL_OK ||
        fedl_trainer_create(model, &data, &config, NULL, &trainer, &err) != FEDL_OK)
        goto done;
    fedl_trainer_attach_monitor(trainer, monitor);
    for (int i = 0; i < steps && !stop; i++) {
        int pause, resumed = 1, epoch_done;
        if (fedl_trainer_follow_monitor(trainer, &pause, &err) != FEDL_OK)
            goto done;
        /* No hooks here: a real program passes one that checkpoints. */
        if (pause && fedl_trainer_pause(trainer, NULL, &stop, &resumed, &err) != FEDL_OK)
            goto done;
        if (!resumed)
            break;
        if (fedl_trainer_step(trainer, &epoch_done, &err) != FEDL_OK)
            goto done;
    }
    printf("%llu steps, micro-batch %d, loss %.4f, RSS %.1f MiB, pressure now %s\n",
           (unsigned long long)fedl_trainer_stats(trainer).global_step,
           fedl_trainer_micro_batch(trainer),
           fedl_trainer_stats(trainer).loss_sum / (double)fedl_trainer_stats(trainer).epoch_seen,
           (double)fedl_self_rss() / (1024.0 * 1024.0),
           fedl_pressure_name(fedl_monitor_state(monitor, NULL, NULL)));
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "train_monitor: %s\n", err.message);
    fedl_trainer_destroy(trainer);
    fedl_model_destroy(model);
    fedl_monitor_destroy(monitor);
    fedl_dataset_free(&data);
    return rc;
}
