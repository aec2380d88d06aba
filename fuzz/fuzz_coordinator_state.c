/* fuzz_coordinator_state.c - libFuzzer target: fedl_coordinator_restore on
 * arbitrary bytes (a coordinator checkpoint's section, read back after a
 * restart) must return a status, never crash or leak; whatever it accepts
 * must save back to exactly the same bytes and start a round. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedl/fl.h"

#define PARAMS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const float initial[PARAMS] = {0.5f, -0.25f, 1.0f, 0.0f, 2.0f, -1.0f};
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_coordinator *co = NULL;
    fedl_error err;
    uint8_t *bytes;
    size_t length;
    c.strategy = fedl_strategy_defaults(FEDL_STRATEGY_FEDADAM);
    if (fedl_coordinator_create(&c, initial, PARAMS, NULL, &co, &err) != FEDL_OK)
        __builtin_trap();
    if (fedl_coordinator_restore(co, data, size, &err) != FEDL_OK) {
        fedl_coordinator_destroy(co);
        return 0;
    }
    if (fedl_coordinator_save(co, NULL, &bytes, &length, &err) != FEDL_OK)
        __builtin_trap();
    if (length != size || memcmp(bytes, data, size) != 0)
        __builtin_trap(); /* not a round trip */
    fedl_mem_free(NULL, bytes, length);
    (void)fedl_coordinator_start(co, 0, &err);
    fedl_coordinator_destroy(co);
    return 0;
}
