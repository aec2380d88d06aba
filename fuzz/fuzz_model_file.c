/* fuzz_model_file.c - libFuzzer target: fedl_model_deserialize on arbitrary
 * bytes must return a status, never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "fedl/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_model *model = NULL;
    fedl_error err;
    if (fedl_model_deserialize(data, size, "fuzz", NULL, &model, &err) == FEDL_OK)
        fedl_model_destroy(model);
    return 0;
}
