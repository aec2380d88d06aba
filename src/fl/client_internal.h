/*
 * client_internal.h - the client's fields, shared by client.c (the state
 * machine) and client_state.c (its bytes).
 */
#ifndef FEDL_FL_CLIENT_INTERNAL_H
#define FEDL_FL_CLIENT_INTERNAL_H

#include "fedl/fl.h"

struct fedl_client {
    char id[FEDL_CLIENT_ID_MAX];
    fedl_allocator *alloc;
    size_t params;
    float *base;  /* (params) the accepted task's weights */
    float *delta; /* (params) the last update's values: delta or weights */
    uint8_t base_sha256[FEDL_SHA256_BYTES];
    fedl_task_config config; /* of the accepted task */
    uint64_t round, version;
    int accepted;             /* a task is accepted and not yet answered */
    int send_weights;         /* FEDL_UPDATE_WEIGHTS instead of deltas */
    uint64_t delivered_round; /* the last round answered */
};

#endif
