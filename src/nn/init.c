/* init.c - weight initialisation (He / Glorot uniform) and the tensor helpers. */
#include <math.h>
#include <string.h>

#include "nn/layer.h"

void fedl_init_uniform(float *w, size_t n, float bound, fedl_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * fedl_rng_uniform(rng) - 1.0f) * bound;
}

float fedl_init_bound(fedl_init_kind kind, size_t fan_in, size_t fan_out)
{
    if (kind == FEDL_INIT_HE_UNIFORM)
        return sqrtf(6.0f / (float)(fan_in > 0 ? fan_in : 1));
    return sqrtf(6.0f / (float)(fan_in + fan_out > 0 ? fan_in + fan_out : 1));
}

size_t fedl_tensor_numel(const fedl_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

fedl_status fedl_tensor_alloc(fedl_tensor *t, fedl_allocator *alloc, int ndim, const int32_t *shape,
                              fedl_error *err)
{
    size_t n = 1;
    memset(t, 0, sizeof *t);
    if (ndim < 1 || ndim > FEDL_TENSOR_MAX_DIMS)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "tensor: %d dimensions (1..%d allowed)",
                              ndim, FEDL_TENSOR_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "tensor: dimension %d is %d", i,
                                  (int)shape[i]);
        if (n > SIZE_MAX / sizeof(float) / (size_t)shape[i])
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "tensor: size overflows");
        n *= (size_t)shape[i];
    }
    t->data = fedl_mem_alloc_aligned(alloc, n * sizeof(float), 64);
    if (t->data == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "tensor: cannot allocate %zu bytes",
                              n * sizeof(float));
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
    return FEDL_OK;
}

void fedl_tensor_free(fedl_tensor *t, fedl_allocator *alloc)
{
    fedl_mem_free_aligned(alloc, t->data);
    memset(t, 0, sizeof *t);
}
