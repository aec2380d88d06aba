/*
 * coordinator_internal.h - the coordinator's state, shared by its state
 * machine (coordinator.c) and its saving and restoring
 * (coordinator_state.c).
 */
#ifndef FEDL_FL_COORDINATOR_INTERNAL_H
#define FEDL_FL_COORDINATOR_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "fedl/fl.h"

#define REASON_MAX 256

typedef struct client_entry {
    char id[FEDL_CLIENT_ID_MAX];
    uint64_t last_seen_ms;
    fedl_telemetry telemetry;
    int selected;  /* in the current attempt of the open round */
    int delivered; /* its update of the open round was accepted */
} client_entry;

typedef enum phase { PHASE_IDLE, PHASE_WAITING, PHASE_OPEN, PHASE_FINISHED, PHASE_FAILED } phase;

struct fedl_coordinator {
    fedl_coordinator_config config;
    fedl_allocator *alloc;
    size_t params;
    float *weights; /* (params) the global model */
    uint64_t version;
    fedl_aggregator *aggregator;
    client_entry *clients; /* registration order */
    int client_count, client_capacity;
    int *order; /* (client_capacity) scratch: eligible clients, then the selection */
    phase phase;
    /* the round under way */
    int attempt; /* 1-based within the round */
    uint64_t wait_until_ms;
    int selected, received;
    double loss_sum;             /* sample-weighted */
    fedl_round_metrics metrics;  /* of the round under way */
    fedl_round_metrics reported; /* of the round closed last: ROUND_DONE points here */
    fedl_task task;
    /* the actions of the last event */
    fedl_fl_action *actions;
    char (*reasons)[REASON_MAX];
    size_t action_count, action_capacity;
};

/* The task's SHA-256 of the global weights, after they changed. */
void fedl_coordinator_rehash(fedl_coordinator *co);

#endif
