/*
 * federated_wire.c - a task as it travels over a network, without one: the
 * coordinator's key signs it, it is cut into chunks no larger than a
 * broker's payload limit (AWS IoT Core's 128 KB here), the chunks arrive
 * out of order and one of them twice, and the device checks each chunk's
 * signature, puts them back together, and decodes the task. A forger's
 * chunk is refused. fedl serve and fedl join do the same over MQTT
 * (fedl_channel); docs/PROTOCOL.md has the layout.
 *
 *   cc federated_wire.c $(pkg-config --cflags --libs fedl) -o federated_wire
 *   ./federated_wire
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/fedl.h"

#define PARAMS 100000
#define CHUNK (128000u) /* bytes of one MQTT payload, header included */

static int fail(const char *what, const fedl_error *err)
{
    fprintf(stderr, "federated_wire: %s: %s\n", what, err->message);
    return 1;
}

int main(void)
{
    static float weights[PARAMS], received[PARAMS];
    static const char *const selected[] = {"dev-01", "dev-02"};
    fedl_sign_keypair coordinator, forger;
    fedl_task_message task, decoded;
    fedl_wire_encoder e;
    fedl_reassembler *r = NULL;
    fedl_reassembly res;
    fedl_error err = {0};
    uint8_t *body, *chunks[16];
    size_t body_length, chunk_length[16];
    uint32_t order[16];
    int n = 0;

    for (int i = 0; i < PARAMS; i++)
        weights[i] = (float)i * 1e-5f;
    if (fedl_sign_keypair_generate(&coordinator, &err) != FEDL_OK ||
        fedl_sign_keypair_generate(&forger, &err) != FEDL_OK)
        return fail("keys", &err);

    /* the coordinator's side: a task body for round 3, signed chunks */
    memset(&task, 0, sizeof task);
    task.task.model_version = 2;
    task.task.config = (fedl_task_config){1, 32, 0.05f, 0.0f, 0.0f};
    task.task.weights = weights;
    task.task.params = PARAMS;
    fedl_sha256(weights, sizeof weights, task.task.weights_sha256);
    task.spec = "dense(100) relu dense(10)";
    task.spec_length = strlen(task.spec);
    task.deadline_in_ms = 60000;
    task.selected = selected;
    task.selected_count = 2;
    body = malloc(fedl_task_message_size(&task));
    if (body == NULL || fedl_task_message_encode(&task, body, fedl_task_message_size(&task),
                                                 &body_length, &err) != FEDL_OK)
        return fail("task body", &err);
    {
        fedl_wire_message m = {FEDL_MSG_TASK, "demo", "coordinator", 3, 1, body, body_length};
        if (fedl_wire_encoder_init(&e, &m, CHUNK, coordinator.secret_key, &err) != FEDL_OK)
            return fail("encoder", &err);
    }
    for (uint32_t i = 0; i < e.count; i++) {
        chunks[i] = malloc(CHUNK);
        if (chunks[i] == NULL ||
            fedl_wire_encode_chunk(&e, i, chunks[i], CHUNK, &chunk_length[i], &err) != FEDL_OK)
            return fail("chunk", &err);
    }
    printf("task of %zu bytes in %u signed chunks of at most %u bytes\n", body_length,
           (unsigned)e.count, CHUNK);

    /* the device's side: last chunk first, the first one twice */
    for (uint32_t i = 0; i < e.count; i++)
        order[n++] = e.count - 1 - i;
    order[n++] = 0;
    if (fedl_reassembler_create(8u << 20, 4, NULL, &r, &err) != FEDL_OK)
        return fail("reassembler", &err);
    for (int k = 0; k < n; k++) {
        fedl_wire_frame f;
        uint32_t i = order[k];
        if (fedl_wire_parse(chunks[i], chunk_length[i], FEDL_WIRE_BODY_MAX_DEFAULT, &f, &err) !=
                FEDL_OK ||
            fedl_wire_verify(&f, coordinator.public_key, &err) != FEDL_OK ||
            fedl_reassembler_add(r, &f, (uint64_t)k, &res, &err) != FEDL_OK)
            return fail("receiving", &err);
        if (res.duplicate)
            printf("chunk %u again: ignored\n", (unsigned)i);
        if (!res.complete)
            continue;
        if (fedl_task_message_decode(res.body, res.body_length, &decoded, &err) != FEDL_OK)
            return fail("task", &err);
        fedl_task_message_weights(&decoded, received);
        printf("round %llu task for %d devices, dev-02 %s, %zu weights %s\n",
               (unsigned long long)f.round, decoded.selected_count,
               fedl_task_message_selects(&decoded, "dev-02") ? "selected" : "not selected",
               decoded.task.params,
               memcmp(received, weights, sizeof weights) == 0 ? "intact" : "DAMAGED");
    }

    /* a forger's chunk: signed, but not by the coordinator */
    {
        fedl_wire_message m = {FEDL_MSG_TASK, "demo", "coordinator", 4, 2, body, 100};
        fedl_wire_frame f;
        if (fedl_wire_encoder_init(&e, &m, CHUNK, forger.secret_key, &err) != FEDL_OK ||
            fedl_wire_encode_chunk(&e, 0, chunks[0], CHUNK, &chunk_length[0], &err) != FEDL_OK ||
            fedl_wire_parse(chunks[0], chunk_length[0], FEDL_WIRE_BODY_MAX_DEFAULT, &f, &err) !=
                FEDL_OK)
            return fail("forgery", &err);
        if (fedl_wire_verify(&f, coordinator.public_key, &err) == FEDL_OK)
            return fprintf(stderr, "federated_wire: a forged task passed\n"), 1;
        printf("forged task refused: %s\n", err.message);
    }
    fedl_reassembler_destroy(r);
    for (uint32_t i = 0; i < 16 && i < (uint32_t)n - 1; i++)
        free(chunks[i]);
    free(body);
    return 0;
}
