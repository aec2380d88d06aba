/*
 * keys.c - Ed25519 key files as text lines ("ed25519 HEX ID",
 * "ed25519-secret HEX ID"), written and parsed, with errors that name the
 * file, line and column.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "fedl/fl_wire.h"
#include "fl/names.h"

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[b[i] >> 4];
        out[2 * i + 1] = hex_digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int id_ok(const char *s, size_t n)
{
    return fedl_name_ok(s, n, FEDL_WIRE_SENDER_MAX);
}

fedl_status fedl_key_format_public(const uint8_t *public_key, const char *id, char *out,
                                   size_t size, fedl_error *err)
{
    char hex[2 * FEDL_WIRE_PUBLIC_KEY_BYTES + 1];
    if (id == NULL || !id_ok(id, strlen(id)))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "key: the id is 1-63 bytes of letters, digits, '-', '_' and '.'");
    to_hex(public_key, FEDL_WIRE_PUBLIC_KEY_BYTES, hex);
    if ((size_t)snprintf(out, size, "ed25519 %s %s\n", hex, id) >= size)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "key: %zu bytes are too few", size);
    return FEDL_OK;
}

fedl_status fedl_key_format_secret(const fedl_sign_keypair *kp, const char *id, char *out,
                                   size_t size, fedl_error *err)
{
    char hex[2 * FEDL_WIRE_SECRET_KEY_BYTES + 1];
    if (id == NULL || !id_ok(id, strlen(id)))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "key: the id is 1-63 bytes of letters, digits, '-', '_' and '.'");
    to_hex(kp->secret_key, FEDL_WIRE_SECRET_KEY_BYTES, hex);
    if ((size_t)snprintf(out, size, "ed25519-secret %s %s\n", hex, id) >= size) {
        sodium_memzero(hex, sizeof hex);
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "key: %zu bytes are too few", size);
    }
    sodium_memzero(hex, sizeof hex);
    return FEDL_OK;
}

/* One key line: "<kind> <hex> <id>", split at single spaces. */
typedef struct key_line {
    const char *kind, *hex, *id;
    size_t kind_n, hex_n, id_n;
} key_line;

static int split_line(const char *s, size_t n, key_line *k)
{
    const char *end = s + n, *p = s;
    const char **fields[3] = {&k->kind, &k->hex, &k->id};
    size_t *lengths[3] = {&k->kind_n, &k->hex_n, &k->id_n};
    for (int f = 0; f < 3; f++) {
        const char *start = p;
        while (p < end && *p != ' ')
            p++;
        *fields[f] = start;
        *lengths[f] = (size_t)(p - start);
        if (f < 2) {
            if (p == end)
                return f + 1; /* fields found */
            p++;
        }
    }
    return p == end ? 3 : 4; /* 4: something after the id */
}

static fedl_status line_error(fedl_error *err, const char *name, int line, size_t column,
                              const char *what)
{
    return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%d:%zu: %s", name, line, column, what);
}

/* Decode the hex field of k into out (n bytes). */
static fedl_status get_key(const key_line *k, const char *line_start, uint8_t *out, size_t n,
                           const char *name, int line, fedl_error *err)
{
    size_t column = (size_t)(k->hex - line_start) + 1;
    if (k->hex_n != 2 * n)
        return line_error(err, name, line, column,
                          n == FEDL_WIRE_PUBLIC_KEY_BYTES ? "a public key is 64 hex digits"
                                                          : "a secret key is 128 hex digits");
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(k->hex[2 * i]), lo = hex_value(k->hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return line_error(err, name, line, column + 2 * i + (hi >= 0), "not a hex digit");
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return FEDL_OK;
}

/* Calls each(line text, its length, its number) for every key line. */
typedef fedl_status (*line_fn)(void *user, const char *s, size_t n, int line, fedl_error *err);

static fedl_status each_line(const char *text, size_t length, line_fn each, void *user,
                             fedl_error *err)
{
    size_t at = 0;
    int line = 0;
    while (at < length) {
        const char *s = text + at, *nl = memchr(s, '\n', length - at);
        size_t n = nl != NULL ? (size_t)(nl - s) : length - at;
        fedl_status st;
        at += n + (nl != NULL);
        line++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n == 0 || s[0] == '#')
            continue;
        st = each(user, s, n, line, err);
        if (st != FEDL_OK)
            return st;
    }
    return FEDL_OK;
}

typedef struct public_parse {
    const char *name;
    fedl_allocator *alloc;
    fedl_key_entry *entries;
    int count, capacity;
} public_parse;

static fedl_status public_line(void *user, const char *s, size_t n, int line, fedl_error *err)
{
    public_parse *p = user;
    key_line k;
    fedl_key_entry *e;
    fedl_status st;
    int fields = split_line(s, n, &k);
    if (memchr(s, '\0', n) != NULL)
        return line_error(err, p->name, line, 1, "a NUL byte");
    if (fields < 3 || k.kind_n != 7 || memcmp(k.kind, "ed25519", 7) != 0)
        return line_error(err, p->name, line, 1, "expected 'ed25519 <64 hex digits> <id>'");
    if (fields > 3 || !id_ok(k.id, k.id_n))
        return line_error(err, p->name, line, (size_t)(k.id - s) + 1,
                          "the id is 1-63 bytes of letters, digits, '-', '_' and '.', and ends "
                          "the line");
    for (int i = 0; i < p->count; i++)
        if (strlen(p->entries[i].id) == k.id_n && memcmp(p->entries[i].id, k.id, k.id_n) == 0)
            return line_error(err, p->name, line, (size_t)(k.id - s) + 1,
                              "this id has a key already");
    if (p->count == p->capacity) {
        int grown = p->capacity ? p->capacity * 2 : 16;
        fedl_key_entry *more = fedl_mem_realloc(
            p->alloc, p->entries, (size_t)p->capacity * sizeof *more, (size_t)grown * sizeof *more);
        if (more == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %d keys", p->name,
                                  grown);
        p->entries = more;
        p->capacity = grown;
    }
    e = &p->entries[p->count];
    memset(e, 0, sizeof *e);
    st = get_key(&k, s, e->public_key, FEDL_WIRE_PUBLIC_KEY_BYTES, p->name, line, err);
    if (st != FEDL_OK)
        return st;
    memcpy(e->id, k.id, k.id_n);
    p->count++;
    return FEDL_OK;
}

fedl_status fedl_keys_parse(const char *text, size_t length, const char *name,
                            fedl_allocator *alloc, fedl_key_entry **entries, int *count,
                            fedl_error *err)
{
    public_parse p = {name, alloc != NULL ? alloc : fedl_allocator_default(), NULL, 0, 0};
    fedl_status st = each_line(text, length, public_line, &p, err);
    fedl_key_entry *exact = NULL;
    *entries = NULL;
    *count = 0;
    if (st == FEDL_OK && p.count == 0)
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no key in it", name);
    if (st == FEDL_OK) { /* exactly count entries, as the caller frees them */
        exact = fedl_mem_realloc(p.alloc, p.entries, (size_t)p.capacity * sizeof *exact,
                                 (size_t)p.count * sizeof *exact);
        if (exact == NULL)
            st = fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate", name);
    }
    if (st != FEDL_OK) {
        fedl_mem_free(p.alloc, p.entries, (size_t)p.capacity * sizeof *p.entries);
        return st;
    }
    *entries = exact;
    *count = p.count;
    return FEDL_OK;
}

typedef struct secret_parse {
    const char *name;
    fedl_sign_keypair *kp;
    char *id;
    int found;
} secret_parse;

static fedl_status secret_line(void *user, const char *s, size_t n, int line, fedl_error *err)
{
    secret_parse *p = user;
    key_line k;
    uint8_t pk[FEDL_WIRE_PUBLIC_KEY_BYTES], sk[FEDL_WIRE_SECRET_KEY_BYTES];
    fedl_status st;
    int fields = split_line(s, n, &k);
    if (p->found)
        return line_error(err, p->name, line, 1, "a second key: a secret key file holds one");
    if (memchr(s, '\0', n) != NULL)
        return line_error(err, p->name, line, 1, "a NUL byte");
    if (fields < 3 || k.kind_n != 14 || memcmp(k.kind, "ed25519-secret", 14) != 0)
        return line_error(err, p->name, line, 1, "expected 'ed25519-secret <128 hex digits> <id>'");
    if (fields > 3 || !id_ok(k.id, k.id_n))
        return line_error(err, p->name, line, (size_t)(k.id - s) + 1,
                          "the id is 1-63 bytes of letters, digits, '-', '_' and '.', and ends "
                          "the line");
    st = get_key(&k, s, p->kp->secret_key, FEDL_WIRE_SECRET_KEY_BYTES, p->name, line, err);
    if (st != FEDL_OK)
        return st;
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, p->kp->secret_key) != 0 ||
        memcmp(sk, p->kp->secret_key, sizeof sk) != 0) {
        sodium_memzero(sk, sizeof sk);
        return line_error(err, p->name, line, (size_t)(k.hex - s) + 1,
                          "the key's public half does not match its seed (damaged)");
    }
    sodium_memzero(sk, sizeof sk);
    memcpy(p->kp->public_key, pk, sizeof pk);
    memcpy(p->id, k.id, k.id_n);
    p->id[k.id_n] = '\0';
    p->found = 1;
    return FEDL_OK;
}

fedl_status fedl_secret_key_parse(const char *text, size_t length, const char *name,
                                  fedl_sign_keypair *kp, char id[FEDL_WIRE_SENDER_MAX],
                                  fedl_error *err)
{
    secret_parse p = {name, kp, id, 0};
    fedl_status st = each_line(text, length, secret_line, &p, err);
    if (st == FEDL_OK && !p.found)
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: no secret key in it", name);
    if (st != FEDL_OK)
        sodium_memzero(kp, sizeof *kp);
    return st;
}
