/*
 * fedl/fl.h - federated learning: how a coordinator combines the updates
 * of many clients into one global model.
 *
 * An aggregator runs one strategy over rounds. Each round it starts from
 * the global weights, takes the clients' updates one at a time as they
 * arrive (an update is a delta: the client's weights after local training
 * minus the global weights it started from, with the number of samples it
 * trained on), and at the end moves the global weights. Linear strategies
 * (FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, FedAdagrad) fold each update
 * into a running sum, so a round holds O(model) memory whatever the number
 * of clients; robust ones (median, trimmed mean, Krum, Multi-Krum) must see
 * every update at once and keep up to max_updates of them. An update with
 * a NaN or an infinity, or of the wrong size, is refused with a message
 * naming the client, and changes nothing.
 *
 * The server optimisers follow Reddi et al., "Adaptive Federated
 * Optimization" (ICLR 2021), Algorithm 2, without bias correction; FedAvgM
 * is Hsu et al. (2019). With Delta the aggregated (sample-weighted mean)
 * delta of a round and x the global weights:
 *
 *   fedavg, fedprox  x += server_lr * Delta            (server_lr 1: plain FedAvg)
 *   fedavgm          v = momentum * v + Delta;  x += server_lr * v
 *   fedadagrad       m = b1 m + (1-b1) Delta;  v += Delta^2;                     x += lr
 * m/(sqrt(v)+tau) fedadam          m = b1 m + (1-b1) Delta;  v = b2 v + (1-b2) Delta^2;        x +=
 * lr m/(sqrt(v)+tau) fedyogi          m = b1 m + (1-b1) Delta;  v -= (1-b2) Delta^2
 * sign(v-Delta^2); x += lr m/(sqrt(v)+tau) median           x += coordinate-wise median of the
 * deltas (unweighted) trimmed-mean     x += per coordinate, the mean after dropping the
 * trim_fraction largest and smallest deltas (unweighted) krum             x += the delta whose
 * summed squared distance to its n - f - 2 nearest others is smallest (f = byzantine) multi-krum x
 * += the unweighted mean of the multi_krum_m deltas with the smallest such scores
 *
 * FedProx differs from FedAvg on the client (a proximal term mu/2 |w - x|^2
 * in the local loss, see fedl_train_config); the server side is FedAvg. With
 * clip_norm > 0 every delta whose L2 norm exceeds it is scaled down to it
 * before it is folded in (all strategies).
 */
#ifndef FEDL_FL_H
#define FEDL_FL_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"
#include "fedl/fl_mqtt.h"
#include "fedl/fl_wire.h"
#include "fedl/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fedl_strategy_kind {
    FEDL_STRATEGY_FEDAVG,
    FEDL_STRATEGY_FEDPROX,
    FEDL_STRATEGY_FEDAVGM,
    FEDL_STRATEGY_FEDADAGRAD,
    FEDL_STRATEGY_FEDADAM,
    FEDL_STRATEGY_FEDYOGI,
    FEDL_STRATEGY_MEDIAN,
    FEDL_STRATEGY_TRIMMED_MEAN,
    FEDL_STRATEGY_KRUM,
    FEDL_STRATEGY_MULTI_KRUM
} fedl_strategy_kind;

typedef struct fedl_strategy_config {
    fedl_strategy_kind kind;
    float server_lr;     /* eta: 1 (fedavg, fedprox, fedavgm, robust ones), 0.1
                            (fedadagrad), 0.01 (fedadam, fedyogi): measured, PERFORMANCE.md */
    float momentum;      /* fedavgm: 0.9 */
    float beta1, beta2;  /* adaptive: 0.9, 0.99 */
    float tau;           /* adaptive: 1e-9 */
    float proximal_mu;   /* fedprox: the clients' mu (carried in tasks), 0.01 */
    float trim_fraction; /* trimmed-mean: share dropped at each end, [0, 0.5), 0.1 */
    int byzantine;       /* krum, multi-krum: f, the attackers tolerated, 1 */
    int multi_krum_m;    /* multi-krum: updates averaged, 0 = n - f */
    float clip_norm;     /* > 0: deltas scaled down to this L2 norm; 0 = off */
    int max_updates;     /* robust strategies: updates kept per round, 100 */
} fedl_strategy_config;

/* The defaults of a strategy (listed above). */
fedl_strategy_config fedl_strategy_defaults(fedl_strategy_kind kind);
/* "fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi",
 * "median", "trimmed-mean", "krum", "multi-krum". */
const char *fedl_strategy_name(fedl_strategy_kind kind);
fedl_status fedl_strategy_parse(const char *name, fedl_strategy_kind *out, fedl_error *err);
/* Ranges and combinations (e.g. krum needs n > 2f + 2 at finish). */
fedl_status fedl_strategy_check(const fedl_strategy_config *c, fedl_error *err);

typedef struct fedl_aggregator fedl_aggregator;

/* For a model of `params` floats. The server optimiser state (fedavgm: v;
 * adaptive: m, v) and the round's buffers are taken now: nothing is
 * allocated per round for linear strategies. */
fedl_status fedl_aggregator_create(const fedl_strategy_config *c, size_t params,
                                   fedl_allocator *alloc, fedl_aggregator **out, fedl_error *err);
void fedl_aggregator_destroy(fedl_aggregator *g);

/* Start a round (forgets the updates of an unfinished one). create starts
 * the first. */
void fedl_aggregator_begin(fedl_aggregator *g);
/* One client's update: delta (params floats), the samples it trained on
 * (> 0; the weight of linear strategies). FEDL_ERR_INVALID_ARG naming
 * client_id for a wrong size, a non-finite value or a weight <= 0;
 * FEDL_ERR_NOMEM when a robust strategy already holds max_updates;
 * FEDL_ERR_STATE after finish until the next begin. */
fedl_status fedl_aggregator_add(fedl_aggregator *g, const char *client_id, const float *delta,
                                size_t params, double samples, fedl_error *err);
/* The same for an update that is the client's weights after training:
 * the delta is taken against base (the round's global weights) in double
 * precision, so that FedAvg of one client with server_lr 1 gives back its
 * weights bit for bit (a float delta loses the low bits). */
fedl_status fedl_aggregator_add_weights(fedl_aggregator *g, const char *client_id,
                                        const float *weights, const float *base, size_t params,
                                        double samples, fedl_error *err);
/* A partial sum of updates folded elsewhere (another aggregator's
 * fedl_aggregator_sum of this round, over `count` updates of `samples`
 * summed samples), added to this round's sum: linear strategies only
 * (FEDL_ERR_STATE for robust ones). The sum (params doubles) must be
 * finite. Adding the partials of a split of the updates gives the sum of
 * adding them all here, up to the order of the double additions. */
fedl_status fedl_aggregator_add_partial(fedl_aggregator *g, const char *from, const double *sum,
                                        size_t params, double samples, int count, fedl_error *err);
/* Linear strategies: the round's running sum, (params) doubles of
 * samples x clip-scaled delta; NULL for robust ones. */
const double *fedl_aggregator_sum(const fedl_aggregator *g);
/* 1 for the strategies that fold updates into a sum (fedavg, fedprox,
 * fedavgm, fedadagrad, fedadam, fedyogi). */
int fedl_strategy_is_linear(fedl_strategy_kind kind);
/* Updates accepted in this round, and their summed samples. */
int fedl_aggregator_count(const fedl_aggregator *g);
double fedl_aggregator_samples(const fedl_aggregator *g);
/* End the round: move global (params floats) in place by the strategy's
 * step and advance the server optimiser. FEDL_ERR_STATE (global unchanged)
 * with no update, too few for krum (n <= 2f + 2) or for multi-krum's
 * multi_krum_m, or when the round is already finished; FEDL_ERR_INVALID_ARG
 * (global unchanged) when the step would make a weight or the state
 * non-finite. After success, count and samples still describe the round
 * until the next begin. Deterministic: the same updates added in the same
 * order give the same bits. */
fedl_status fedl_aggregator_finish(fedl_aggregator *g, float *global, fedl_error *err);

/* The server optimiser state, for a checkpoint: floats (0 and NULL for
 * stateless strategies) and the rounds finished. */
size_t fedl_aggregator_state_floats(const fedl_aggregator *g);
const float *fedl_aggregator_state(const fedl_aggregator *g, uint64_t *rounds);
fedl_status fedl_aggregator_restore(fedl_aggregator *g, const float *state, size_t floats,
                                    uint64_t rounds, fedl_error *err);

/* ------------------------------------------------------------ rounds */

/*
 * The coordinator and client state machines are sans-IO: no sockets,
 * threads or clocks inside. The host (the simulator, the MQTT transport)
 * feeds them events (a client registered, an update arrived, a timer
 * fired, local training finished), passing the time in milliseconds of
 * its own monotonic clock, and carries out the actions they return (send
 * a task, set a timer, persist, report a round). The same machines run in
 * one process and over a network.
 */

/* What a client says about itself: memory, temperature, data. */
typedef struct fedl_telemetry {
    uint64_t free_memory; /* bytes available to training; 0 = unknown */
    double temperature_c; /* hottest zone; 0 = unknown */
    uint64_t samples;     /* local training samples */
    int pressure;         /* a fedl_pressure (fedl/monitor.h): 0 OK, 1 CONSTRAINED, 2 CRITICAL */
} fedl_telemetry;

#define FEDL_CLIENT_ID_MAX 64 /* bytes with the NUL */

/* The local training a task asks for. */
typedef struct fedl_task_config {
    int local_epochs;  /* 1 */
    int batch;         /* 32 */
    float lr;          /* 0.05 */
    float momentum;    /* 0 */
    float proximal_mu; /* FedProx mu; 0 = plain local SGD */
} fedl_task_config;

/* A task: train the global model of `model_version` for round `round`. */
typedef struct fedl_task {
    uint64_t round;         /* 1-based */
    uint64_t model_version; /* rounds the global model has been through */
    fedl_task_config config;
    uint64_t deadline_ms; /* the host's clock: updates after it may be refused */
    const float *weights; /* (params) the global model; owned by the coordinator */
    size_t params;
    uint8_t weights_sha256[FEDL_SHA256_BYTES];
} fedl_task;

typedef enum fedl_update_kind {
    FEDL_UPDATE_DELTA,  /* values = local weights minus the task's weights (compresses well) */
    FEDL_UPDATE_WEIGHTS /* values = local weights (exact: the delta is taken in double) */
} fedl_update_kind;

/* A client's answer to a task. */
typedef struct fedl_update {
    char client_id[FEDL_CLIENT_ID_MAX];
    uint64_t round;
    uint64_t model_version; /* the version it trained from */
    fedl_update_kind kind;
    const float *values; /* (params) the delta or the weights, as kind says */
    size_t params;
    uint64_t samples;  /* trained on, > 0 */
    double train_loss; /* mean over the local training */
    fedl_telemetry telemetry;
} fedl_update;

/* A partial sum (scale-out): the updates of `count` clients of a round,
 * folded by an aggregator process (fedl aggregate) and combined by the
 * coordinator with fedl_coordinator_partial. The round and the aggregator
 * travel in the message header. */
typedef struct fedl_partial {
    char aggregator_id[FEDL_CLIENT_ID_MAX];    /* who folded them */
    uint64_t round;                            /* 1-based */
    uint64_t model_version;                    /* the version the updates trained from */
    int count;                                 /* clients folded */
    const char (*clients)[FEDL_CLIENT_ID_MAX]; /* (count) their ids */
    const double *sum; /* (params) sum of samples x delta (fedl_aggregator_sum) */
    size_t params;
    double samples;  /* their summed samples */
    double loss_sum; /* sum of train_loss x samples */
} fedl_partial;

typedef enum fedl_fl_action_kind {
    FEDL_FL_SEND_TASK,  /* send *task to client_id */
    FEDL_FL_SET_TIMER,  /* call fedl_coordinator_timer at time_ms (replaces the previous one) */
    FEDL_FL_REJECT,     /* tell client_id its update was refused: reason */
    FEDL_FL_PERSIST,    /* a round completed: checkpoint the coordinator now */
    FEDL_FL_ROUND_DONE, /* metrics of the round just closed: *metrics */
    FEDL_FL_FINISHED,   /* all rounds done */
    FEDL_FL_FAILED      /* the run cannot go on: reason */
} fedl_fl_action_kind;

/* What one round did. */
typedef struct fedl_round_metrics {
    uint64_t round;
    int attempts; /* 1 + retries of this round */
    int selected, completed, dropped, rejected, late_folded;
    uint64_t samples;   /* trained on by the accepted updates */
    double train_loss;  /* their sample-weighted mean */
    uint64_t bytes_out; /* task payloads sent (weights) */
    uint64_t bytes_in;  /* update payloads received (deltas) */
    uint64_t started_ms, closed_ms;
    int closed_by_deadline;
} fedl_round_metrics;

typedef struct fedl_fl_action {
    fedl_fl_action_kind kind;
    const char *client_id;             /* SEND_TASK, REJECT */
    const fedl_task *task;             /* SEND_TASK */
    uint64_t time_ms;                  /* SET_TIMER */
    const fedl_round_metrics *metrics; /* ROUND_DONE */
    const char *reason;                /* REJECT, FAILED */
} fedl_fl_action;

typedef enum fedl_late_policy {
    FEDL_LATE_REJECT, /* an update for a closed round is refused with a reason */
    FEDL_LATE_FOLD    /* folded into the round under way, its weight times
                         1 / (1 + staleness) (linear strategies only) */
} fedl_late_policy;

typedef struct fedl_coordinator_config {
    int rounds;            /* 5 */
    double fraction;       /* of the eligible clients selected each round, 1.0 */
    int min_clients;       /* at least this many selected, else the round waits/retries, 2 */
    int max_clients;       /* at most this many, 0 = no cap */
    double quorum;         /* share of the selected whose updates close the round at once, 1.0 */
    double min_completion; /* at the deadline, the round closes if at least this share of
                              the selected (and one) delivered, else it is retried, 0.5 */
    uint64_t round_timeout_ms;     /* deadline after the tasks go out, 60000 */
    int max_retries;               /* of one round before the run fails, 3 */
    fedl_late_policy late;         /* FEDL_LATE_REJECT */
    uint64_t seed;                 /* client selection, 1 */
    fedl_task_config task;         /* sent with every task */
    fedl_strategy_config strategy; /* fedavg */
} fedl_coordinator_config;

fedl_coordinator_config fedl_coordinator_defaults(void);

typedef struct fedl_coordinator fedl_coordinator;

/* For a model of params floats, starting from the global weights given
 * (copied). */
fedl_status fedl_coordinator_create(const fedl_coordinator_config *c, const float *weights,
                                    size_t params, fedl_allocator *alloc, fedl_coordinator **out,
                                    fedl_error *err);
void fedl_coordinator_destroy(fedl_coordinator *co);

/* Events. Each returns the actions to carry out, in order, through
 * fedl_coordinator_actions (valid until the next event). */
/* A client joined or said it is alive (telemetry updated). */
fedl_status fedl_coordinator_register(fedl_coordinator *co, const char *client_id,
                                      const fedl_telemetry *telemetry, uint64_t now_ms,
                                      fedl_error *err);
/* Begin (or, after a restore, continue with) the next round. */
fedl_status fedl_coordinator_start(fedl_coordinator *co, uint64_t now_ms, fedl_error *err);
/* An update arrived. A refused one is a REJECT action, not an error: the
 * error return is for the host's own mistakes (a NULL update). */
fedl_status fedl_coordinator_update(fedl_coordinator *co, const fedl_update *u, uint64_t now_ms,
                                    fedl_error *err);
/* A partial sum of updates from an aggregator process. Taken whole or
 * refused whole (a REJECT naming the aggregator): its round must be the
 * open one and its model version the task's, and every client in it
 * registered, selected and not yet delivered (an update that reached two
 * aggregators is refused the second time). Accepted, it counts as `count`
 * updates towards the quorum. Linear strategies only. */
fedl_status fedl_coordinator_partial(fedl_coordinator *co, const fedl_partial *p, uint64_t now_ms,
                                     fedl_error *err);
/* The timer asked for fired. */
fedl_status fedl_coordinator_timer(fedl_coordinator *co, uint64_t now_ms, fedl_error *err);
size_t fedl_coordinator_actions(const fedl_coordinator *co, const fedl_fl_action **actions);

/* The global model now: (params) weights and its version (rounds done). */
const float *fedl_coordinator_weights(const fedl_coordinator *co, uint64_t *version);
/* 1 while a round is open. */
int fedl_coordinator_round_open(const fedl_coordinator *co);
int fedl_coordinator_client_count(const fedl_coordinator *co);

/* The coordinator between rounds as bytes (from alloc, freed with
 * fedl_mem_free(alloc, *bytes, *length)): the global weights and their
 * version, the server optimiser state, the registry, and a fingerprint of
 * the configuration. A round in flight is not in it: after a restore the
 * host calls fedl_coordinator_start, and that round restarts cleanly (late
 * updates of a run with FEDL_LATE_FOLD that were in flight are lost).
 * Little-endian, versioned; a container section (FEDL_FILE_COORDINATOR)
 * carries it to disk with a CRC. */
fedl_status fedl_coordinator_save(const fedl_coordinator *co, fedl_allocator *alloc,
                                  uint8_t **bytes, size_t *length, fedl_error *err);
/* Into a coordinator created with the same configuration and model size,
 * before it starts. FEDL_ERR_FORMAT naming the byte offset for a damaged
 * or truncated image, FEDL_ERR_STATE for another configuration; after a
 * failure, destroy the coordinator and create a new one. */
fedl_status fedl_coordinator_restore(fedl_coordinator *co, const uint8_t *bytes, size_t length,
                                     fedl_error *err);

/* fedl_coordinator_save's bytes written durably (temp file, fsync,
 * rename) as a container of kind FEDL_FILE_COORDINATOR, and read back:
 * *found 0 when the file does not exist (nothing restored), 1 when it was
 * restored; a damaged file or another configuration's is an error naming
 * the file. */
fedl_status fedl_coordinator_save_file(const fedl_coordinator *co, const char *path,
                                       fedl_error *err);
fedl_status fedl_coordinator_load_file(fedl_coordinator *co, const char *path, int *found,
                                       fedl_error *err);

/* The client: verifies a task, then turns the weights after local
 * training into an update. */
typedef struct fedl_client fedl_client;
fedl_status fedl_client_create(const char *client_id, size_t params, fedl_allocator *alloc,
                               fedl_client **out, fedl_error *err);
void fedl_client_destroy(fedl_client *cl);
/* Check a task before training on it: its round is newer than the last
 * one this client delivered, its weights have the model's size, are
 * finite and hash to weights_sha256. The weights are copied (the delta is
 * taken against them). FEDL_ERR_FORMAT / FEDL_ERR_STATE with the reason. */
fedl_status fedl_client_accept_task(fedl_client *cl, const fedl_task *task, fedl_error *err);
/* Send the weights themselves (FEDL_UPDATE_WEIGHTS) instead of deltas. */
void fedl_client_send_weights(fedl_client *cl, int on);
/* Local training finished with these weights: fill *u (its values point
 * into the client, valid until the next call). */
fedl_status fedl_client_make_update(fedl_client *cl, const float *trained, uint64_t samples,
                                    double train_loss, const fedl_telemetry *telemetry,
                                    fedl_update *u, fedl_error *err);
/* The round of the task accepted last (0 = none), for a host that
 * persists it. */
uint64_t fedl_client_round(const fedl_client *cl);
/* The client's id, as given to fedl_client_create. */
const char *fedl_client_id(const fedl_client *cl);
/* The task accepted and not yet answered: its training configuration, and
 * in *weights (if not NULL) its (params) weights; NULL (and *weights NULL)
 * when there is none. A host restarted mid-round trains from these weights,
 * or from its trainer's last checkpoint of the round. */
const fedl_task_config *fedl_client_pending(const fedl_client *cl, const float **weights);

/* The client as bytes (from alloc, freed with fedl_mem_free(alloc, *bytes,
 * *length)): its id, the accepted task (round, model version, training
 * configuration, weights and their SHA-256) and the last round delivered.
 * A host writes it when it accepts a task (a container section of kind
 * FEDL_FILE_CLIENT carries it to disk with a CRC): a device killed in the
 * middle of a round restores it and its trainer's checkpoint, finishes the
 * local training and still delivers. Little-endian, versioned. */
fedl_status fedl_client_save(const fedl_client *cl, fedl_allocator *alloc, uint8_t **bytes,
                             size_t *length, fedl_error *err);
/* Into a client created with the same id and model size. FEDL_ERR_FORMAT
 * naming the byte offset for a damaged image (weights that do not match
 * their SHA-256, a configuration out of range), FEDL_ERR_STATE for another
 * client's or another model's; the client is unchanged on failure. */
fedl_status fedl_client_restore(fedl_client *cl, const uint8_t *bytes, size_t length,
                                fedl_error *err);
/* The same as a file of kind FEDL_FILE_CLIENT, written durably; load:
 * *found 0 when the file does not exist. alloc serves the write's buffers
 * (NULL: the default allocator). */
fedl_status fedl_client_save_file(const fedl_client *cl, fedl_allocator *alloc, const char *path,
                                  fedl_error *err);
fedl_status fedl_client_load_file(fedl_client *cl, const char *path, int *found, fedl_error *err);

/* ------------------------------------------------ message bodies (wire) */

/* The bodies of FEDL_MSG_TASK, _UPDATE, _STATUS and _CONTROL messages
 * (docs/PROTOCOL.md; fedl/fl_wire.h carries them as chunks). The round
 * and the sender travel in the message header, not in the body. Decoders
 * check every length and value and name the byte offset. */

/* A round's task for every selected client at once (a broadcast). */
typedef struct fedl_task_message {
    fedl_task task;   /* on decode: weights NULL, read them with
                         fedl_task_message_weights; round from the header */
    const char *spec; /* the model's canonical spec (decode: points into the body) */
    size_t spec_length;
    uint64_t deadline_in_ms; /* from publication to the deadline */
    int selected_count;
    const char *const *selected;   /* encode: the ids of the selected clients */
    const uint8_t *selected_bytes; /* decode: the ids as stored (u8 length, bytes) */
    const uint8_t *weights_le;     /* decode: the float32 weights, little-endian */
} fedl_task_message;

size_t fedl_task_message_size(const fedl_task_message *m);
fedl_status fedl_task_message_encode(const fedl_task_message *m, uint8_t *out, size_t capacity,
                                     size_t *length, fedl_error *err);
fedl_status fedl_task_message_decode(const uint8_t *body, size_t length, fedl_task_message *m,
                                     fedl_error *err);
/* 1 if client_id is among a decoded task's selected clients. */
int fedl_task_message_selects(const fedl_task_message *m, const char *client_id);
/* A decoded task's weights into (task.params) floats, host order. */
void fedl_task_message_weights(const fedl_task_message *m, float *out);

/* An update: everything of fedl_update but client_id and round (the
 * header's sender and round). */
size_t fedl_update_message_size(size_t params);
fedl_status fedl_update_message_encode(const fedl_update *u, uint8_t *out, size_t capacity,
                                       size_t *length, fedl_error *err);
/* Into *u, whose values are written to values (room for `capacity`
 * floats); client_id and round are left to the caller. */
fedl_status fedl_update_message_decode(const uint8_t *body, size_t length, float *values,
                                       size_t capacity, fedl_update *u, fedl_error *err);
/* An aggregator's partial sum (fedl_partial above). */
size_t fedl_partial_message_size(const fedl_partial *p);
fedl_status fedl_partial_message_encode(const fedl_partial *p, uint8_t *out, size_t capacity,
                                        size_t *length, fedl_error *err);
/* Into *p: the ids into clients (room for client_capacity), the sums into
 * sum (room for `capacity` doubles, the model's size); a sum that is not
 * finite, an id twice or of bad characters is FEDL_ERR_FORMAT naming the
 * byte. aggregator_id and round are left to the caller. */
fedl_status fedl_partial_message_decode(const uint8_t *body, size_t length,
                                        char (*clients)[FEDL_CLIENT_ID_MAX], int client_capacity,
                                        double *sum, size_t capacity, fedl_partial *p,
                                        fedl_error *err);

typedef enum fedl_client_state {
    FEDL_CLIENT_ONLINE = 1,  /* connected, ready for tasks */
    FEDL_CLIENT_OFFLINE = 2, /* the broker's last will: the connection was lost */
    FEDL_CLIENT_LEAVING = 3  /* said goodbye */
} fedl_client_state;

#define FEDL_STATUS_MESSAGE_BYTES 40
fedl_status fedl_status_message_encode(fedl_client_state state, const fedl_telemetry *t,
                                       uint8_t out[FEDL_STATUS_MESSAGE_BYTES]);
fedl_status fedl_status_message_decode(const uint8_t *body, size_t length, fedl_client_state *state,
                                       fedl_telemetry *t, fedl_error *err);

typedef enum fedl_control_command {
    FEDL_CONTROL_FINISHED = 1, /* all rounds done: the final model version follows */
    FEDL_CONTROL_FAILED = 2    /* the run cannot go on: the reason follows */
} fedl_control_command;

#define FEDL_CONTROL_TEXT_MAX 1024
/* out holds 16 + FEDL_CONTROL_TEXT_MAX bytes; the text is cut there. */
fedl_status fedl_control_message_encode(fedl_control_command command, uint64_t version,
                                        const char *text, uint8_t *out, size_t *length);
/* text: FEDL_CONTROL_TEXT_MAX + 1 bytes, NUL-terminated. */
fedl_status fedl_control_message_decode(const uint8_t *body, size_t length,
                                        fedl_control_command *command, uint64_t *version,
                                        char *text, fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
