/* fuzz_csv_index.c - libFuzzer target for the CSV index cache reader
 * (PATH.fedlidx): any bytes are refused cleanly or decode without leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_csv_index_file f;
    fedl_error err;
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    /* half the inputs get valid checksums, so that the decoder behind the
     * container's checks is reached */
    if (size > 0 && (data[0] & 1))
        fedl_container_reseal(copy, size);
    if (fedl_csv_index_decode(copy, size, "fuzz", NULL, &f, &err) == FEDL_OK) {
        if (f.count == 0 || f.fit == NULL)
            abort();
        fedl_csv_index_file_free(&f);
    }
    free(copy);
    return 0;
}
