/*
 * quadrants.h - the small learnable data set the examples train on:
 * 8x8 one-channel images in 4 classes, class k brightening quadrant k,
 * noise from a seed. Header-only, so each example still builds from its
 * one .c file: cc example.c $(pkg-config --cflags --libs fedl).
 */
#ifndef FEDL_EXAMPLE_QUADRANTS_H
#define FEDL_EXAMPLE_QUADRANTS_H

#include <string.h>

#include <fedl/fedl.h>

/* count samples of (1, 8, 8) bytes; 0 on success, -1 out of memory (free
 * with fedl_dataset_free either way). */
static int make_quadrants(fedl_dataset *ds, size_t count)
{
    fedl_rng rng;
    memset(ds, 0, sizeof *ds);
    ds->alloc = fedl_allocator_default();
    ds->count = count;
    ds->shape = (fedl_shape){1, 8, 8};
    ds->sample_bytes = 64;
    ds->pixels = fedl_mem_alloc(ds->alloc, count * 64);
    ds->labels = fedl_mem_alloc(ds->alloc, count);
    ds->classes = 4;
    ds->scale = 1.0f / 255.0f;
    if (ds->pixels == NULL || ds->labels == NULL)
        return -1;
    fedl_rng_init(&rng, 1, 0);
    for (size_t i = 0; i < count; i++) {
        ds->labels[i] = (uint8_t)fedl_rng_below(&rng, 4);
        for (int p = 0; p < 64; p++) {
            int quadrant = (p / 8 >= 4) * 2 + (p % 8 >= 4);
            ds->pixels[i * 64 + (size_t)p] =
                (uint8_t)((quadrant == ds->labels[i] ? 150 : 0) + fedl_rng_below(&rng, 100));
        }
    }
    return 0;
}

#endif
