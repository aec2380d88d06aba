/* args.c - long-option parsing: --name value or --name=value, typed and
 * range-checked, positional arguments where a command takes them, one-line
 * errors and exit code 2 on misuse. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static void print_help_with_synopsis(const char *command, const char *synopsis, const char *usage,
                                     const cli_option *options)
{
    printf("usage: fedl %s [options]%s%s\n\n%s options:\n", command, synopsis ? " " : "",
           synopsis ? synopsis : "", command);
    for (const cli_option *o = options; o->name != NULL; o++) {
        char left[64];
        if (o->kind == CLI_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "--help", "show this help and exit");
    if (usage != NULL)
        printf("\n%s", usage);
}

void cli_print_help(const char *command, const char *usage, const cli_option *options)
{
    print_help_with_synopsis(command, NULL, usage, options);
}

static int usage_error(const char *command, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "fedl %s: ", command);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see 'fedl %s --help')\n", command);
    return 2;
}

static int in_range(const cli_option *o, double v)
{
    if (o->min == 0.0 && o->max == 0.0)
        return 1;
    return v >= o->min && v <= o->max;
}

static int set_value(const char *command, const cli_option *o, const char *value)
{
    char *end;
    char range[96];
    snprintf(range, sizeof range, "must be in [%g, %g]", o->min, o->max);
    errno = 0;
    switch (o->kind) {
    case CLI_INT: {
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < -2147483647L || v > 2147483647L)
            return usage_error(command, "--%s: '%s' is not an integer", o->name, value);
        if (!in_range(o, (double)v))
            return usage_error(command, "--%s: %s", o->name, range);
        *(int *)o->target = (int)v;
        return 0;
    }
    case CLI_U64: {
        unsigned long long v;
        if (value[0] == '-')
            return usage_error(command, "--%s: '%s' is not a non-negative integer", o->name, value);
        v = strtoull(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0')
            return usage_error(command, "--%s: '%s' is not a non-negative integer", o->name, value);
        *(uint64_t *)o->target = (uint64_t)v;
        return 0;
    }
    case CLI_FLOAT: {
        double v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(v))
            return usage_error(command, "--%s: '%s' is not a number", o->name, value);
        if (!in_range(o, v))
            return usage_error(command, "--%s: %s", o->name, range);
        *(float *)o->target = (float)v;
        return 0;
    }
    case CLI_STRING:
        *(const char **)o->target = value;
        return 0;
    case CLI_FLAG:
        break;
    }
    return 2;
}

/* Store a non-option argument, or report it as unexpected. */
static int take_positional(const char *command, cli_positionals *positionals, const char *arg)
{
    if (positionals == NULL || positionals->count >= positionals->max)
        return usage_error(command, "unexpected argument '%s'%s", arg, "");
    positionals->values[positionals->count++] = arg;
    return 0;
}

int cli_parse_positionals(const char *command, const char *usage, const cli_option *options,
                          cli_positionals *positionals, int argc, char **argv, int first)
{
    int only_positionals = 0;
    if (positionals != NULL)
        positionals->count = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *value = NULL, *eq;
        size_t name_len;
        const cli_option *o;
        if (only_positionals) {
            if (take_positional(command, positionals, arg) != 0)
                return 2;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help_with_synopsis(command, positionals ? positionals->synopsis : NULL, usage,
                                     options);
            return 1;
        }
        if (positionals != NULL && strcmp(arg, "--") == 0) {
            only_positionals = 1;
            continue;
        }
        if (positionals != NULL && arg[0] == '-' && arg[1] != '\0' && arg[1] != '-')
            return usage_error(command, "unknown option '%s'%s", arg, "");
        if (strncmp(arg, "--", 2) != 0) {
            if (take_positional(command, positionals, arg) != 0)
                return 2;
            continue;
        }
        arg += 2;
        eq = strchr(arg, '=');
        name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        for (o = options; o->name != NULL; o++) {
            if (strlen(o->name) == name_len && strncmp(o->name, arg, name_len) == 0)
                break;
        }
        if (o->name == NULL)
            return usage_error(command, "unknown option '%s'%s", argv[i], "");
        if (o->kind == CLI_FLAG) {
            if (eq != NULL)
                return usage_error(command, "--%s takes no value%s", o->name, "");
            *(int *)o->target = 1;
            continue;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return usage_error(command, "--%s needs a value%s", o->name, "");
            value = argv[++i];
        }
        if (set_value(command, o, value) != 0)
            return 2;
    }
    if (positionals != NULL && positionals->count < positionals->min)
        return usage_error(command, "%s is required%s", positionals->synopsis, "");
    return 0;
}

int cli_parse(const char *command, const char *usage, const cli_option *options, int argc,
              char **argv, int first)
{
    return cli_parse_positionals(command, usage, options, NULL, argc, argv, first);
}
