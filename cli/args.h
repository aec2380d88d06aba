/* args.h - table-driven long-option parsing for the fedl subcommands. */
#ifndef FEDL_CLI_ARGS_H
#define FEDL_CLI_ARGS_H

#include <stdint.h>

typedef enum cli_opt_kind {
    CLI_FLAG,  /* no value: sets int to 1 */
    CLI_INT,   /* int */
    CLI_U64,   /* uint64_t */
    CLI_FLOAT, /* float */
    CLI_STRING /* const char * */
} cli_opt_kind;

typedef struct cli_option {
    const char *name; /* without "--" */
    cli_opt_kind kind;
    void *target;
    const char *metavar; /* e.g. "N", "FILE" */
    const char *help;
    double min, max; /* range for numbers (min == max == 0: any) */
} cli_option;

/* Arguments that are not options ("fedl ckpt verify DIR"): up to max of
 * them are stored in values, in order; *count receives how many. After a
 * lone "--" every argument is positional. */
typedef struct cli_positionals {
    const char *synopsis; /* for the usage line, e.g. "DIR|FILE" */
    const char **values;  /* (max) */
    int max;
    int min;   /* fewer is a usage error */
    int count; /* out */
} cli_positionals;

/* Parse argv[first..argc). Returns 0 on success, 1 when --help was printed,
 * 2 on a usage error (already reported on stderr as one line). Any
 * argument that is not an option is a usage error. */
int cli_parse(const char *command, const char *usage, const cli_option *options, int argc,
              char **argv, int first);
/* The same, storing arguments that are not options in positionals. */
int cli_parse_positionals(const char *command, const char *usage, const cli_option *options,
                          cli_positionals *positionals, int argc, char **argv, int first);
void cli_print_help(const char *command, const char *usage, const cli_option *options);

#endif
