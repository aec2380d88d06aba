/* fuzz_spec.c - libFuzzer target: the model spec parser on arbitrary text,
 * with an input shape taken from the first bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fedl_model *model = NULL;
    fedl_allocator alloc; /* capped: large specs must fail cleanly with NOMEM */
    fedl_error err;
    fedl_shape shape;
    char *spec;
    if (size < 3 || size > 4096)
        return 0;
    shape.c = 1 + data[0] % 8;
    shape.h = 1 + data[1] % 32;
    shape.w = 1 + data[2] % 32;
    spec = malloc(size - 3 + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data + 3, size - 3);
    spec[size - 3] = '\0';
    fedl_allocator_init(&alloc, NULL, NULL);
    alloc.limit_bytes = 64u << 20;
    if (fedl_model_create(spec, shape, 1, &alloc, &model, &err) == FEDL_OK) {
        /* a spec that builds must also run a small batch */
        if (fedl_model_param_count(model) < 100000 &&
            fedl_model_reserve(model, 2, &err) == FEDL_OK) {
            size_t n = 2 * (size_t)shape.c * shape.h * shape.w;
            float *x = calloc(n, sizeof *x);
            const float *out;
            if (x != NULL && fedl_model_forward(model, x, 2, 1, &out, &err) == FEDL_OK) {
                fedl_shape o = fedl_model_output_shape(model);
                size_t outs = 2 * (size_t)o.c * o.h * o.w;
                float *dout = calloc(outs, sizeof *dout);
                if (dout != NULL)
                    fedl_model_backward(model, dout, x, &err);
                free(dout);
            }
            free(x);
        }
        fedl_model_destroy(model);
    }
    free(spec);
    return 0;
}
