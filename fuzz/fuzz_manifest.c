/* fuzz_manifest.c - libFuzzer target: fedl_manifest_parse on arbitrary bytes
 * must return a status, never crash or leak; whatever it accepts must
 * format back to exactly the same bytes (the text form is canonical). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedl/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_manifest m;
    fedl_error err;
    char *text;
    size_t length;
    if (fedl_manifest_parse((const char *)data, size, "fuzz", NULL, &m, &err) != FEDL_OK)
        return 0;
    if (fedl_manifest_format(&m, NULL, &text, &length, &err) != FEDL_OK)
        __builtin_trap(); /* parsed but cannot be written back */
    if (length != size || memcmp(text, data, size) != 0)
        __builtin_trap(); /* not a round trip */
    for (size_t i = 0; i < m.count; i++)
        if (fedl_manifest_find(&m, m.entries[i].name) != &m.entries[i])
            __builtin_trap();
    fedl_mem_free(NULL, text, length);
    fedl_manifest_free(&m);
    return 0;
}
