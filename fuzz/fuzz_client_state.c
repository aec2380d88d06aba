/* fuzz_client_state.c - libFuzzer target: fedl_client_restore on arbitrary
 * bytes (a client's saved task, read back after a restart) must return a
 * status, never crash or leak; whatever it accepts must save back to
 * exactly the same bytes, and a refusal must leave the client without a
 * task. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedl/fl.h"

#define PARAMS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_client *cl = NULL;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    if (fedl_client_create("dev-01", PARAMS, NULL, &cl, &err) != FEDL_OK)
        __builtin_trap();
    if (fedl_client_restore(cl, data, size, &err) != FEDL_OK) {
        if (fedl_client_pending(cl, NULL) != NULL || fedl_client_round(cl) != 0)
            __builtin_trap(); /* a refusal changed the client */
        fedl_client_destroy(cl);
        return 0;
    }
    if (fedl_client_save(cl, NULL, &bytes, &length, &err) != FEDL_OK)
        __builtin_trap();
    if (length != size || memcmp(bytes, data, size) != 0)
        __builtin_trap(); /* not a round trip */
    fedl_mem_free(NULL, bytes, length);
    fedl_client_destroy(cl);
    return 0;
}
