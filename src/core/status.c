/* status.c - status codes, their descriptions, and the error message helper. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fedl/core.h"

#ifndef FEDL_VERSION_STRING
#define FEDL_VERSION_STRING "0.0.0"
#endif

const char *fedl_strerror(fedl_status status)
{
    switch (status) {
    case FEDL_OK:
        return "success";
    case FEDL_ERR_NOMEM:
        return "out of memory";
    case FEDL_ERR_INVALID_ARG:
        return "invalid argument";
    case FEDL_ERR_IO:
        return "input/output error";
    case FEDL_ERR_FORMAT:
        return "malformed or corrupt data";
    case FEDL_ERR_SPEC:
        return "invalid model spec";
    case FEDL_ERR_UNSUPPORTED:
        return "not supported";
    case FEDL_ERR_STATE:
        return "call made in the wrong state";
    case FEDL_STATUS_COUNT:
        break;
    }
    return "unknown status";
}

fedl_status fedl_error_set(fedl_error *err, fedl_status status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list args;
        err->status = status;
        va_start(args, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, args);
        va_end(args);
    }
    return status;
}

void fedl_error_clear(fedl_error *err)
{
    if (err != NULL) {
        err->status = FEDL_OK;
        err->message[0] = '\0';
    }
}

const char *fedl_version(void)
{
    return FEDL_VERSION_STRING;
}
