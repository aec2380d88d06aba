/* fuzz_policy.c - libFuzzer target: fedl_policy_parse on arbitrary bytes
 * must return a status, never crash; whatever it accepts must pass
 * fedl_policy_check, and a rejected text must leave the policy unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedl/monitor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_policy p = fedl_policy_defaults(), before = p;
    fedl_error err;
    if (fedl_policy_parse((const char *)data, size, "fuzz", &p, &err) == FEDL_OK) {
        if (fedl_policy_check(&p, &err) != FEDL_OK)
            __builtin_trap(); /* accepted a policy the checks refuse */
    } else if (memcmp(&p, &before, sizeof p) != 0 || err.message[0] == '\0') {
        __builtin_trap(); /* a refusal changed the policy or said nothing */
    }
    return 0;
}
