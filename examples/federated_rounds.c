/*
 * federated_rounds.c - the federated state machines driven by hand: a
 * coordinator and three clients in one process, each client training on
 * its own third of a small data set (an iid partition). The host carries
 * the coordinator's actions: tasks to the clients, their updates back,
 * timers (none fire here: everyone answers), round reports. In round 2
 * every client restarts from the state it saved on accepting its task,
 * as a device killed mid-round would. The same machines run under
 * `fedl simulate` and over a network.
 *
 *   cc federated_rounds.c $(pkg-config --cflags --libs fedl) -o federated_rounds
 *   ./federated_rounds [--smoke]
 */
#include <stdio.h>
#include <string.h>

#include <fedl/fedl.h>

#include "quadrants.h"

#define CLIENTS 3
#define SAMPLES 600
#define SPEC "conv2d(4,3,pad=1) relu maxpool2d(2) flatten dense(4)"

/* A device restarting: the client comes back from the bytes it saved when
 * it accepted its task (a real device writes them to a file, as a
 * container of kind FEDL_FILE_CLIENT, and checkpoints its trainer too). */
static fedl_status restart(fedl_client **client, size_t params, fedl_error *err)
{
    char id[FEDL_CLIENT_ID_MAX];
    uint8_t *bytes;
    size_t length;
    const float *weights;
    fedl_status st = fedl_client_save(*client, NULL, &bytes, &length, err);
    if (st != FEDL_OK)
        return st;
    snprintf(id, sizeof id, "%s", fedl_client_id(*client)); /* the device knows who it is */
    fedl_client_destroy(*client);
    st = fedl_client_create(id, params, NULL, client, err);
    if (st == FEDL_OK)
        st = fedl_client_restore(*client, bytes, length, err);
    if (st == FEDL_OK && fedl_client_pending(*client, &weights) == NULL)
        st = fedl_error_set(err, FEDL_ERR_STATE, "%s: the task was lost", id);
    fedl_mem_free(NULL, bytes, length);
    return st;
}

/* Local training on a client's part: the task's weights in, one epoch. */
static fedl_status train_locally(fedl_model *model, fedl_dataset *part, const fedl_task *task,
                                 fedl_client **client, fedl_update *u, fedl_error *err)
{
    fedl_train_config config = fedl_train_config_defaults();
    fedl_trainer *trainer = NULL;
    fedl_train_stats s;
    const fedl_task_config *pending;
    const float *weights;
    fedl_status st = fedl_client_accept_task(*client, task, err);
    int done = 0;
    if (st == FEDL_OK && task->round == 2) /* every client restarts once */
        st = restart(client, task->params, err);
    if (st != FEDL_OK)
        return st;
    pending = fedl_client_pending(*client, &weights);
    memcpy(fedl_model_params(model), weights, task->params * sizeof(float));
    config.batch = pending->batch;
    config.lr.base_lr = pending->lr;
    st = fedl_trainer_create(model, part, &config, NULL, &trainer, err);
    while (st == FEDL_OK && !done)
        st = fedl_trainer_step(trainer, &done, err);
    if (st == FEDL_OK) {
        s = fedl_trainer_stats(trainer);
        st = fedl_client_make_update(*client, fedl_model_params(model), s.epoch_seen,
                                     s.loss_sum / (double)s.epoch_seen, NULL, u, err);
    }
    fedl_trainer_destroy(trainer);
    return st;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 && strcmp(argv[1], "--smoke") == 0 ? 2 : 10, rc = 1, finished = 0;
    fedl_coordinator_config cc = fedl_coordinator_defaults();
    fedl_partition_spec iid = {FEDL_PARTITION_IID, 0.0, 0};
    fedl_dataset data, parts[CLIENTS];
    fedl_partition partition;
    fedl_coordinator *co = NULL;
    fedl_client *clients[CLIENTS] = {NULL};
    fedl_model *model = NULL;
    fedl_error err = {0};
    char ids[CLIENTS][16];
    uint64_t now = 0;

    memset(parts, 0, sizeof parts);
    memset(&partition, 0, sizeof partition);
    cc.rounds = rounds;
    cc.task.batch = 16;
    cc.task.lr = 0.1f;
    if (make_quadrants(&data, SAMPLES) != 0 ||
        fedl_partition_make(&data, CLIENTS, &iid, 1, NULL, &partition, &err) != FEDL_OK ||
        fedl_model_create(SPEC, data.shape, 1, NULL, &model, &err) != FEDL_OK ||
        fedl_coordinator_create(&cc, fedl_model_params(model), fedl_model_param_count(model), NULL,
                                &co, &err) != FEDL_OK)
        goto done;
    for (int c = 0; c < CLIENTS; c++) {
        fedl_telemetry t = {0, 0.0, 0, 0};
        snprintf(ids[c], sizeof ids[c], "device-%d", c);
        if (fedl_partition_subset(&data, &partition, c, NULL, &parts[c], &err) != FEDL_OK ||
            fedl_client_create(ids[c], fedl_model_param_count(model), NULL, &clients[c], &err) !=
                FEDL_OK ||
            fedl_coordinator_register(co, ids[c], &t, now, &err) != FEDL_OK)
            goto done;
    }
    if (fedl_coordinator_start(co, now, &err) != FEDL_OK)
        goto done;
    while (!finished) {
        /* Carry out the actions of the last event; a task is answered at
         * once, which makes the next event. */
        const fedl_fl_action *a;
        size_t n = fedl_coordinator_actions(co, &a);
        fedl_update pending[CLIENTS];
        int answers = 0;
        for (size_t i = 0; i < n; i++) {
            if (a[i].kind == FEDL_FL_SEND_TASK) {
                int c = a[i].client_id[7] - '0';
                if (train_locally(model, &parts[c], a[i].task, &clients[c], &pending[answers++],
                                  &err) != FEDL_OK)
                    goto done;
            } else if (a[i].kind == FEDL_FL_ROUND_DONE) {
                printf("round %llu: %d clients, %llu samples, train loss %.4f\n",
                       (unsigned long long)a[i].metrics->round, a[i].metrics->completed,
                       (unsigned long long)a[i].metrics->samples, a[i].metrics->train_loss);
            } else if (a[i].kind == FEDL_FL_FINISHED) {
                finished = 1;
            } else if (a[i].kind == FEDL_FL_FAILED || a[i].kind == FEDL_FL_REJECT) {
                fprintf(stderr, "federated_rounds: %s\n", a[i].reason);
                goto done;
            }
        }
        if (finished)
            break;
        if (answers == 0) /* nothing to deliver: nothing will happen */
            goto done;
        /* The updates were made before any is delivered (a client's values
         * stay valid until its next update). With the default quorum of 1
         * only the last one closes the round: its actions (the report, the
         * next round's tasks) are what the loop carries out next. */
        for (int k = 0; k < answers; k++)
            if (fedl_coordinator_update(co, &pending[k], ++now, &err) != FEDL_OK)
                goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "federated_rounds: %s\n", err.message[0] ? err.message : "stopped");
    for (int c = 0; c < CLIENTS; c++) {
        fedl_client_destroy(clients[c]);
        fedl_dataset_free(&parts[c]);
    }
    fedl_coordinator_destroy(co);
    fedl_model_destroy(model);
    fedl_partition_free(&partition);
    fedl_dataset_free(&data);
    return rc;
}
