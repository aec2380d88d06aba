/* commands.h - the fedl subcommands and helpers they share. */
#ifndef FEDL_CLI_COMMANDS_H
#define FEDL_CLI_COMMANDS_H

#include <stddef.h>

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_plan(int argc, char **argv);

/* Peak resident set size of this process in bytes (getrusage). */
size_t cli_peak_rss_bytes(void);
/* "12,345" style thousands separators into buf. */
const char *cli_group_digits(unsigned long long value, char *buf, size_t size);

#endif
