/*
 * rng.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11), the counter-based generator also used by PyTorch's CUDA
 * backend and JAX. Only 32x32->64 multiplies: identical on every platform.
 */
#include <time.h>

#include "fedl/core.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void fedl_philox4x32(const uint32_t key[2], const uint32_t counter[4], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void fedl_rng_init(fedl_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->seed = seed;
    rng->stream = stream;
    rng->counter = 0;
    rng->used = 4;
}

static void refill(fedl_rng *rng)
{
    uint32_t key[2] = {(uint32_t)rng->seed, (uint32_t)(rng->seed >> 32)};
    uint32_t counter[4] = {(uint32_t)rng->counter, (uint32_t)(rng->counter >> 32),
                           (uint32_t)rng->stream, (uint32_t)(rng->stream >> 32)};
    fedl_philox4x32(key, counter, rng->block);
    rng->counter++;
    rng->used = 0;
}

void fedl_rng_seek(fedl_rng *rng, uint64_t word)
{
    rng->counter = word / 4;
    refill(rng);
    rng->used = (unsigned)(word % 4);
}

uint32_t fedl_rng_u32(fedl_rng *rng)
{
    if (rng->used >= 4)
        refill(rng);
    return rng->block[rng->used++];
}

float fedl_rng_uniform(fedl_rng *rng)
{
    return (float)(fedl_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

uint32_t fedl_rng_below(fedl_rng *rng, uint32_t bound)
{
    /* Lemire's multiply-shift with rejection: unbiased, no division in the
     * common case. */
    uint64_t m = (uint64_t)fedl_rng_u32(rng) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t threshold = (uint32_t)(-bound) % bound;
        while (low < threshold) {
            m = (uint64_t)fedl_rng_u32(rng) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

uint64_t fedl_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
