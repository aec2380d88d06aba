/*
 * le.h - little-endian integers and floats in byte buffers, whatever the
 * host: the one encoding of every file and message fedl writes.
 */
#ifndef FEDL_CORE_LE_H
#define FEDL_CORE_LE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void fedl_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t fedl_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fedl_put_u64(uint8_t *p, uint64_t v)
{
    fedl_put_u32(p, (uint32_t)v);
    fedl_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t fedl_get_u64(const uint8_t *p)
{
    return (uint64_t)fedl_get_u32(p) | (uint64_t)fedl_get_u32(p + 4) << 32;
}

/* n float32 values, bit for bit. */
static inline void fedl_put_floats(uint8_t *p, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        fedl_put_u32(p + 4 * i, bits);
    }
}

static inline void fedl_get_floats(const uint8_t *p, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = fedl_get_u32(p + 4 * i);
        memcpy(&x[i], &bits, 4);
    }
}

/* float64 through its bits. */
static inline void fedl_put_f64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    fedl_put_u64(p, bits);
}

static inline double fedl_get_f64(const uint8_t *p)
{
    uint64_t bits = fedl_get_u64(p);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

static inline int fedl_host_is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

#endif
