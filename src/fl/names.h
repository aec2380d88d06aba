/*
 * names.h - the characters of a job, sender or client id on the wire:
 * letters, digits, '-', '_' and '.', which keep a name safe inside an MQTT
 * topic (no '/', '+', '#') and a file name.
 */
#ifndef FEDL_FL_NAMES_H
#define FEDL_FL_NAMES_H

#include <stddef.h>

static inline int fedl_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* n bytes of s: 1 to max - 1 of them, all name characters. */
static inline int fedl_name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!fedl_name_char(s[i]))
            return 0;
    return 1;
}

#endif
