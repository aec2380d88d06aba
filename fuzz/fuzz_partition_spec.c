/* fuzz_partition_spec.c - libFuzzer target: the partition spec parser
 * (the --partition text of fedl simulate) on arbitrary text, with a client
 * count taken from the first byte; a spec that parses must split a small
 * data set so that every sample goes to exactly one client, or be refused
 * with a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/data.h"

#define SAMPLES 96
#define CLASSES 5

/* Every sample exactly once, each client non-empty: or the target stops. */
static void check_partition(const fedl_partition *p, int clients)
{
    uint8_t seen[SAMPLES] = {0};
    if (p->clients != clients || p->offsets[0] != 0 || p->offsets[clients] != SAMPLES)
        abort();
    for (int c = 0; c < clients; c++) {
        if (p->offsets[c + 1] <= p->offsets[c])
            abort();
        for (size_t j = p->offsets[c]; j < p->offsets[c + 1]; j++) {
            if (p->indices[j] >= SAMPLES || seen[p->indices[j]])
                abort();
            seen[p->indices[j]] = 1;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pixels[SAMPLES], labels[SAMPLES];
    fedl_partition_spec spec;
    fedl_partition p;
    fedl_dataset ds;
    fedl_error err;
    fedl_allocator alloc;
    char *text;
    int clients;
    if (size < 1 || size > 256)
        return 0;
    clients = 1 + data[0] % 128; /* up to more clients than samples */
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (fedl_partition_parse(text, &spec, &err) == FEDL_OK) {
        memset(&ds, 0, sizeof ds);
        for (size_t i = 0; i < SAMPLES; i++)
            labels[i] = (uint8_t)((i * 7) % CLASSES);
        ds.count = SAMPLES;
        ds.shape = (fedl_shape){1, 1, 1};
        ds.sample_bytes = 1;
        ds.pixels = pixels;
        ds.labels = labels;
        ds.classes = CLASSES;
        ds.scale = 1.0f;
        fedl_allocator_init(&alloc, NULL, NULL);
        if (fedl_partition_make(&ds, clients, &spec, size, &alloc, &p, &err) == FEDL_OK) {
            check_partition(&p, clients);
            fedl_partition_free(&p);
        } else if (err.message[0] == '\0') {
            abort();
        }
        if (fedl_allocator_stats(&alloc).live_bytes != 0)
            abort();
    } else if (err.message[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
