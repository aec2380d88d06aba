/* fuzz_wire.c - libFuzzer target: the network message decoder. The input
 * is a flag byte then chunks, each a 2-byte little-endian length and that
 * many bytes; with flag bit 0 set each chunk's CRC-32C is recomputed
 * first, so that mutations reach the checks past it. Every chunk goes
 * through fedl_wire_parse, a signature check, and a reassembler with a
 * small budget; each complete body through the body decoders. Nothing
 * may crash, leak or read out of bounds; what reassembles must hash to
 * the SHA-256 its chunks announced. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/fl.h"

static void reseal(uint8_t *b, size_t n)
{
    uint32_t crc;
    if (n < FEDL_WIRE_HEADER_BYTES)
        return;
    crc = fedl_crc32c(0, b, 244);
    crc = fedl_crc32c(crc, b + FEDL_WIRE_HEADER_BYTES, n - FEDL_WIRE_HEADER_BYTES);
    for (int i = 0; i < 4; i++)
        b[244 + i] = (uint8_t)(crc >> (8 * i));
}

/* Every decoder a complete body can reach; what a decoder accepts must
 * encode back to the same bytes. */
static void decode_body(fedl_msg_type type, const uint8_t *body, size_t length)
{
    fedl_error err;
    if (type == FEDL_MSG_TASK) {
        fedl_task_message m;
        if (fedl_task_message_decode(body, length, &m, &err) == FEDL_OK) {
            float *w = malloc(m.task.params * sizeof(float));
            if (w == NULL)
                return;
            fedl_task_message_weights(&m, w);
            (void)fedl_task_message_selects(&m, "dev-01");
            free(w);
        }
    } else if (type == FEDL_MSG_UPDATE) {
        static float values[1 << 14];
        fedl_update u;
        uint8_t *again;
        size_t n;
        if (fedl_update_message_decode(body, length, values, 1 << 14, &u, &err) != FEDL_OK)
            return;
        again = malloc(length);
        if (again == NULL)
            return;
        if (fedl_update_message_encode(&u, again, length, &n, &err) != FEDL_OK || n != length ||
            memcmp(again, body, length) != 0)
            __builtin_trap(); /* not a round trip */
        free(again);
    } else if (type == FEDL_MSG_PARTIAL) {
        static char ids[64][FEDL_CLIENT_ID_MAX];
        static double sums[1 << 13];
        fedl_partial p;
        uint8_t *again;
        size_t n;
        if (fedl_partial_message_decode(body, length, ids, 64, sums, 1 << 13, &p, &err) != FEDL_OK)
            return;
        again = malloc(length);
        if (again == NULL)
            return;
        if (fedl_partial_message_encode(&p, again, length, &n, &err) != FEDL_OK || n != length ||
            memcmp(again, body, length) != 0)
            __builtin_trap(); /* not a round trip */
        free(again);
    } else if (type == FEDL_MSG_STATUS) {
        fedl_client_state state;
        fedl_telemetry t;
        (void)fedl_status_message_decode(body, length, &state, &t, &err);
    } else if (type == FEDL_MSG_CONTROL) {
        fedl_control_command c;
        uint64_t version;
        char text[FEDL_CONTROL_TEXT_MAX + 1];
        (void)fedl_control_message_decode(body, length, &c, &version, text, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[FEDL_WIRE_PUBLIC_KEY_BYTES] = {1, 2, 3};
    fedl_reassembler *r = NULL;
    fedl_error err;
    size_t at = 1;
    uint64_t now = 0;
    if (size < 1 || fedl_reassembler_create(1 << 16, 4, NULL, &r, &err) != FEDL_OK)
        return 0;
    while (at + 2 <= size) {
        size_t n = (size_t)data[at] | (size_t)data[at + 1] << 8;
        uint8_t *chunk;
        fedl_wire_frame f;
        fedl_reassembly res;
        at += 2;
        if (n > size - at)
            n = size - at;
        chunk = malloc(n > 0 ? n : 1);
        if (chunk == NULL)
            break;
        memcpy(chunk, data + at, n);
        at += n;
        if (data[0] & 1)
            reseal(chunk, n);
        if (fedl_wire_parse(chunk, n, 1 << 16, &f, &err) == FEDL_OK) {
            (void)fedl_wire_verify(&f, key, &err);
            if (fedl_reassembler_add(r, &f, now++, &res, &err) == FEDL_OK && res.complete) {
                uint8_t digest[FEDL_SHA256_BYTES];
                fedl_sha256(res.body_length > 0 ? res.body : (const uint8_t *)"", res.body_length,
                            digest);
                if (memcmp(digest, f.body_sha256, sizeof digest) != 0)
                    __builtin_trap(); /* handed out a body that does not hash right */
                decode_body(f.type, res.body, res.body_length);
            }
        }
        free(chunk);
        if (fedl_reassembler_bytes(r) > (1 << 16))
            __builtin_trap(); /* over budget */
    }
    fedl_reassembler_expire(r, now + 1000, 10);
    fedl_reassembler_destroy(r);
    return 0;
}
