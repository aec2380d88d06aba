/* commands.h - the fedl subcommands and helpers they share. */
#ifndef FEDL_CLI_COMMANDS_H
#define FEDL_CLI_COMMANDS_H

#include <stddef.h>

#include "fedl/fedl.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_supervise(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_aggregate(int argc, char **argv);
int cmd_broker_config(int argc, char **argv);

/* Peak resident set size of this process in bytes (getrusage). */
size_t cli_peak_rss_bytes(void);
/* Parse --memory for training and take the process's own overhead
 * (FEDL_PLAN_PROCESS_OVERHEAD) off a budget measured from the system. 0 on
 * success; else a message on stderr prefixed with command and 2 (a bad
 * size) or 1 (nothing left once the process is paid for). */
int cli_training_budget(const char *command, const char *memory, fedl_budget *budget);
/* The line "memory budget SIZE (source: explanation[; less the process
 * overhead])" for a budget from cli_training_budget. */
void cli_print_budget(const fedl_budget *budget);
/* "CxHxW" (e.g. 1x28x28), each part positive; 0 on success, -1 otherwise. */
int cli_parse_shape(const char *text, fedl_shape *shape);
/* "12,345" style thousands separators into buf. */
const char *cli_group_digits(unsigned long long value, char *buf, size_t size);

#endif
