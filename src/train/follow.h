/*
 * follow.h - what a trainer remembers about the monitor it follows
 * (follow.c acts on it; trainer.c holds it).
 */
#ifndef FEDL_TRAIN_FOLLOW_H
#define FEDL_TRAIN_FOLLOW_H

#include <stdint.h>

#include "fedl/monitor.h"
#include "fedl/train.h"

typedef struct fedl_trainer_follow {
    fedl_monitor *monitor; /* NULL: none */
    uint64_t generation;   /* the monitor's change counter last acted on */
    fedl_pressure applied; /* OK or CONSTRAINED: what the session is set up for */
    int saved_micro;       /* micro-batch before CONSTRAINED shrank it */
    int saved_threads;     /* BLAS threads before CONSTRAINED lowered them */
} fedl_trainer_follow;

/* The trainer's follow state (trainer.c). */
fedl_trainer_follow *fedl_trainer_follow_of(fedl_trainer *t);

#endif
