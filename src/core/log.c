/* log.c - levelled logging to a replaceable sink (stderr by default). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fedl/core.h"

static fedl_log_level current_level = FEDL_LOG_WARN;
static fedl_log_sink current_sink = NULL;
static void *current_sink_ud = NULL;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void fedl_log_set_level(fedl_log_level level)
{
    current_level = level;
}

fedl_log_level fedl_log_get_level(void)
{
    return current_level;
}

void fedl_log_set_sink(fedl_log_sink sink, void *ud)
{
    current_sink = sink;
    current_sink_ud = ud;
}

void fedl_log(fedl_log_level level, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    if (level < current_level || level >= FEDL_LOG_OFF)
        return;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (current_sink != NULL)
        current_sink(current_sink_ud, level, message);
    else
        fprintf(stderr, "fedl: %s: %s\n", level_names[level], message);
}

fedl_status fedl_log_level_parse(const char *name, fedl_log_level *out)
{
    for (int i = 0; i <= (int)FEDL_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (fedl_log_level)i;
            return FEDL_OK;
        }
    }
    return FEDL_ERR_INVALID_ARG;
}
