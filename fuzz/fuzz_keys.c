/* fuzz_keys.c - libFuzzer target: the key file parsers (a devices file of
 * public keys, a secret key file) on arbitrary text must return a status,
 * never crash or leak; every key they accept must format back to a line
 * that parses to the same key. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedl/fl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_key_entry *keys = NULL;
    fedl_sign_keypair kp;
    char id[FEDL_WIRE_SENDER_MAX], line[FEDL_KEY_LINE_MAX];
    int count = 0;
    fedl_error err;
    if (fedl_keys_parse((const char *)data, size, "fuzz", NULL, &keys, &count, &err) == FEDL_OK) {
        for (int i = 0; i < count; i++) {
            fedl_key_entry *again = NULL;
            int n = 0;
            if (fedl_key_format_public(keys[i].public_key, keys[i].id, line, sizeof line, &err) !=
                    FEDL_OK ||
                fedl_keys_parse(line, strlen(line), "again", NULL, &again, &n, &err) != FEDL_OK ||
                n != 1 || strcmp(again[0].id, keys[i].id) != 0 ||
                memcmp(again[0].public_key, keys[i].public_key, sizeof again[0].public_key) != 0)
                __builtin_trap(); /* not a round trip */
            fedl_mem_free(NULL, again, sizeof *again);
        }
        fedl_mem_free(NULL, keys, (size_t)count * sizeof *keys);
    }
    if (fedl_secret_key_parse((const char *)data, size, "fuzz", &kp, id, &err) == FEDL_OK &&
        fedl_key_format_secret(&kp, id, line, sizeof line, &err) != FEDL_OK)
        __builtin_trap();
    return 0;
}
