/* fuzz_csv_fit.c - libFuzzer target for the CSV fit decoder (the "data"
 * section of a model file): any bytes are refused cleanly or decode to a
 * fit that encodes back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_csv_fit *fit = NULL;
    fedl_error err;
    uint8_t *again = NULL;
    size_t length = 0;
    if (fedl_csv_fit_decode(data, size, "fuzz", NULL, &fit, &err) != FEDL_OK)
        return 0;
    if (fedl_csv_fit_encode(fit, NULL, &again, &length, &err) != FEDL_OK)
        abort();
    if (length != size || memcmp(again, data, size) != 0)
        abort(); /* decoding accepted something encoding would not write */
    fedl_mem_free(NULL, again, length);
    fedl_csv_fit_free(fit);
    return 0;
}
