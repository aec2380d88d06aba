/*
 * container.c - the sectioned container every fedl file uses (model files,
 * checkpoints): building one from borrowed or copied section bytes, writing
 * it durably without assembling the file in memory, and parsing it with
 * every offset, length and CRC-32C checked before the bytes it points at
 * are used. docs/FORMAT.md gives every byte; in short:
 *
 *   0        32     header: magic, version, header length H, file kind,
 *                   section count N, total file length
 *   32       48N    section table: name, kind, offset, length, CRC-32C
 *   32+48N   4      CRC-32C of bytes 0 .. 32+48N-1 (H = 32+48N+4)
 *   >= H            sections, each at a multiple of 64, zero padding between
 *   end-8    8      trailer: "FEND", CRC-32C of every byte before it
 *
 * The whole-file CRC is never computed by a second pass over the sections:
 * it is combined from the per-section CRCs (crc32c_combine below), so the
 * writer and the reader touch every section byte exactly once.
 */
#include <stdio.h>
#include <string.h>

#include "ckpt/internal.h"
#include "fedl/ckpt.h"

#define HEADER_BYTES 32u
#define ENTRY_BYTES 48u
#define TABLE_CRC_BYTES 4u
#define TRAILER_BYTES 8u
#define SECTION_ALIGN 64u
/* Largest header + table + table CRC: 1572 bytes. */
#define HEADER_BLOCK_MAX                                                                           \
    (HEADER_BYTES + ENTRY_BYTES * FEDL_CONTAINER_MAX_SECTIONS + TABLE_CRC_BYTES)
/* Pieces of a written file: header block, padding and data per section,
 * trailer. */
#define PIECES_MAX (2 + 2 * FEDL_CONTAINER_MAX_SECTIONS)

/* 8 bytes in the spirit of PNG's signature: 0x89 catches 7-bit transfers,
 * "\r\n" catches CRLF -> LF conversion and the lone "\n" catches LF -> CRLF
 * conversion. (PNG also has 0x1a; with the four letters of "FEDL" it does
 * not fit in 8 bytes, and stopping DOS `type` no longer matters.) */
static const uint8_t container_magic[8] = {0x89, 'F', 'E', 'D', 'L', '\r', '\n', '\n'};
static const uint8_t trailer_magic[4] = {'F', 'E', 'N', 'D'};
static const uint8_t zero_padding[SECTION_ALIGN];

static uint64_t align_up(uint64_t offset)
{
    return (offset + (SECTION_ALIGN - 1)) & ~(uint64_t)(SECTION_ALIGN - 1);
}

static uint64_t header_block_bytes(uint64_t section_count)
{
    return HEADER_BYTES + ENTRY_BYTES * section_count + TABLE_CRC_BYTES;
}

/* ------------------------------------------------------------- CRC combining */

/* CRC-32C of A||B from crc(A), crc(B) and |B|, as zlib's crc32_combine:
 * appending |B| zero bits to A is a linear map over GF(2), applied by
 * squaring the one-zero-bit operator log2(|B|) times. */
static uint32_t gf2_matrix_times(const uint32_t *matrix, uint32_t vector)
{
    uint32_t sum = 0;
    while (vector != 0) {
        if (vector & 1u)
            sum ^= *matrix;
        vector >>= 1;
        matrix++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t square[32], const uint32_t matrix[32])
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_matrix_times(matrix, matrix[n]);
}

static uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b)
{
    uint32_t even[32], odd[32]; /* operators for 2^k and 2^(k+1) zero bytes */
    uint32_t row = 1;
    if (length_b == 0)
        return crc_a;
    odd[0] = 0x82f63b78u; /* CRC-32C polynomial, reflected: one zero bit */
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd); /* two zero bits */
    gf2_matrix_square(odd, even); /* four zero bits */
    do {
        gf2_matrix_square(even, odd);
        if (length_b & 1u)
            crc_a = gf2_matrix_times(even, crc_a);
        length_b >>= 1;
        if (length_b == 0)
            break;
        gf2_matrix_square(odd, even);
        if (length_b & 1u)
            crc_a = gf2_matrix_times(odd, crc_a);
        length_b >>= 1;
    } while (length_b != 0);
    return crc_a ^ crc_b;
}

/* ----------------------------------------------------------- section names */

static int name_char_valid(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* A name as stored: 1..16 valid characters, then NUL bytes to byte 16.
 * Copies it NUL-terminated into out. */
static int stored_name_valid(const uint8_t raw[FEDL_SECTION_NAME_MAX],
                             char out[FEDL_SECTION_NAME_MAX + 1])
{
    int length = 0;
    while (length < FEDL_SECTION_NAME_MAX && raw[length] != 0)
        length++;
    for (int i = 0; i < FEDL_SECTION_NAME_MAX; i++)
        out[i] = (i < length && name_char_valid(raw[i])) ? (char)raw[i] : (i < length ? '?' : 0);
    out[FEDL_SECTION_NAME_MAX] = '\0';
    if (length == 0)
        return 0;
    for (int i = 0; i < FEDL_SECTION_NAME_MAX; i++)
        if ((i < length && !name_char_valid(raw[i])) || (i >= length && raw[i] != 0))
            return 0;
    return 1;
}

static int c_name_valid(const char *name)
{
    size_t length;
    if (name == NULL)
        return 0;
    length = strlen(name);
    if (length == 0 || length > FEDL_SECTION_NAME_MAX)
        return 0;
    for (size_t i = 0; i < length; i++)
        if (!name_char_valid((uint8_t)name[i]))
            return 0;
    return 1;
}

/* ================================================================== reader */

typedef struct parser {
    const uint8_t *bytes;
    size_t length;                             /* bytes */
    const char *name;                          /* for messages */
    uint32_t count;                            /* sections */
    uint64_t header_end;                       /* H: header + table + table CRC, bytes */
    uint32_t crc[FEDL_CONTAINER_MAX_SECTIONS]; /* content CRC of each section */
    uint64_t bad_padding;                      /* first non-zero padding byte, or UINT64_MAX */
    fedl_error *err;
} parser;

static fedl_status check_magic(const parser *p)
{
    const uint8_t *b = p->bytes;
    if (memcmp(b, container_magic, sizeof container_magic) == 0)
        return FEDL_OK;
    if (memcmp(b, "FEDLMODL", 8) == 0)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: a legacy version-1 model file (magic \"FEDLMODL\"), not a "
                              "sectioned container: load it with fedl_model_load",
                              p->name);
    if (memcmp(b + 1, "FEDL", 4) == 0)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: damaged magic at byte 0 (%02x FEDL %02x %02x %02x, expected 89 "
                              "FEDL 0d 0a 0a): was it copied in text mode (line endings or the "
                              "8th bit changed)?",
                              p->name, b[0], b[5], b[6], b[7]);
    return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                          "%s: not a fedl file (the magic at byte 0 is not 89 \"FEDL\" 0d 0a 0a)",
                          p->name);
}

/* Length, magic, version, header length, section count, total length. */
static fedl_status check_header(parser *p)
{
    uint32_t version, header_length;
    uint64_t total, minimum;
    fedl_status st;
    if (p->length < HEADER_BYTES)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: %zu bytes is shorter than a fedl file header (32 bytes)",
                              p->name, p->length);
    st = check_magic(p);
    if (st != FEDL_OK)
        return st;
    version = fedl_get_u32(p->bytes + 8);
    if (version != FEDL_CONTAINER_VERSION)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: format version %u at byte 8 is not supported (this build "
                              "reads version %u)",
                              p->name, version, FEDL_CONTAINER_VERSION);
    header_length = fedl_get_u32(p->bytes + 12);
    p->count = fedl_get_u32(p->bytes + 20);
    if ((uint64_t)header_length != header_block_bytes(p->count))
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: header length %u at byte 12 does not match %u sections "
                              "(byte 20): 32 + 48 * %u + 4 = %llu",
                              p->name, header_length, p->count, p->count,
                              (unsigned long long)header_block_bytes(p->count));
    if (p->count < 1 || p->count > FEDL_CONTAINER_MAX_SECTIONS)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section count %u at byte 20 is out of range (1..%d)", p->name,
                              p->count, FEDL_CONTAINER_MAX_SECTIONS);
    p->header_end = header_length;
    total = fedl_get_u64(p->bytes + 24);
    if (total > (uint64_t)p->length)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: truncated: header says %llu bytes, file has %zu", p->name,
                              (unsigned long long)total, p->length);
    if (total < (uint64_t)p->length)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: header says %llu bytes, file has %zu (%llu bytes appended "
                              "after the end)",
                              p->name, (unsigned long long)total, p->length,
                              (unsigned long long)((uint64_t)p->length - total));
    minimum = align_up(p->header_end) + TRAILER_BYTES;
    if (total < minimum)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: %zu bytes cannot hold the header and table of %u sections and "
                              "the trailer (at least %llu bytes)",
                              p->name, p->length, p->count, (unsigned long long)minimum);
    return FEDL_OK;
}

static fedl_status check_table_crc(const parser *p)
{
    size_t table_end = (size_t)p->header_end - TABLE_CRC_BYTES;
    uint32_t stored = fedl_get_u32(p->bytes + table_end);
    uint32_t actual = fedl_crc32c(0, p->bytes, table_end);
    if (stored != actual)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: header and section table: checksum mismatch (CRC-32C stored "
                              "%08x at byte %zu, bytes 0..%zu give %08x)",
                              p->name, stored, table_end, table_end, actual);
    return FEDL_OK;
}

/* Entry i's name: valid and not used by an earlier entry. */
static fedl_status check_entry_name(const parser *p, fedl_container *out, int i,
                                    const uint8_t *entry, size_t entry_at)
{
    fedl_section *s = &out->sections[i];
    if (!stored_name_valid(entry, s->name))
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section table entry %d (byte %zu): name \"%s\" is not valid "
                              "(1..16 characters of a-z 0-9 _ . -, then NUL bytes)",
                              p->name, i, entry_at, s->name);
    for (int j = 0; j < i; j++)
        if (strcmp(out->sections[j].name, s->name) == 0)
            return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                                  "%s: section table entry %d (byte %zu): name '%s' is already "
                                  "used by entry %d",
                                  p->name, i, entry_at, s->name, j);
    return FEDL_OK;
}

/* Entry i's reserved words, offset and length against H, the alignment,
 * the trailer and the end of the previous section (*previous_end). */
static fedl_status check_entry_place(const parser *p, const fedl_section *s, int i,
                                     const uint8_t *entry, size_t entry_at, uint64_t *previous_end)
{
    uint64_t data_end = (uint64_t)p->length - TRAILER_BYTES;
    size_t reserved = fedl_get_u32(entry + 20) != 0 ? 20 : 44; /* the first non-zero one */
    if (fedl_get_u32(entry + reserved) != 0)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section '%s' (table entry %d): reserved field at byte %zu is "
                              "%08x, must be 0",
                              p->name, s->name, i, entry_at + reserved,
                              fedl_get_u32(entry + reserved));
    if (s->offset < p->header_end)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section '%s': offset %llu at byte %zu is inside the header and "
                              "section table (which end at byte %llu)",
                              p->name, s->name, (unsigned long long)s->offset, entry_at + 24,
                              (unsigned long long)p->header_end);
    if (s->offset % SECTION_ALIGN != 0)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section '%s': offset %llu at byte %zu is not a multiple of 64",
                              p->name, s->name, (unsigned long long)s->offset, entry_at + 24);
    /* subtraction, never offset + length: both may be near UINT64_MAX */
    if (s->offset > data_end || s->length > data_end - s->offset)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section '%s': offset %llu (byte %zu) and length %llu (byte "
                              "%zu) run past the trailer at byte %llu",
                              p->name, s->name, (unsigned long long)s->offset, entry_at + 24,
                              (unsigned long long)s->length, entry_at + 32,
                              (unsigned long long)data_end);
    if (s->offset < *previous_end)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: section '%s' at byte %llu overlaps the section before it, "
                              "which ends at byte %llu (sections must be in increasing order)",
                              p->name, s->name, (unsigned long long)s->offset,
                              (unsigned long long)*previous_end);
    *previous_end = s->offset + s->length;
    return FEDL_OK;
}

static fedl_status read_entries(const parser *p, fedl_container *out)
{
    uint64_t previous_end = p->header_end;
    for (int i = 0; i < (int)p->count; i++) {
        size_t entry_at = HEADER_BYTES + ENTRY_BYTES * (size_t)i;
        const uint8_t *entry = p->bytes + entry_at;
        fedl_section *s = &out->sections[i];
        fedl_status st = check_entry_name(p, out, i, entry, entry_at);
        if (st != FEDL_OK)
            return st;
        s->kind = fedl_get_u32(entry + 16);
        s->offset = fedl_get_u64(entry + 24);
        s->length = fedl_get_u64(entry + 32);
        s->crc32c = fedl_get_u32(entry + 40);
        st = check_entry_place(p, s, i, entry, entry_at, &previous_end);
        if (st != FEDL_OK)
            return st;
    }
    return FEDL_OK;
}

/* Continue the whole-file CRC over padding bytes [from, to), noting the
 * first that is not zero. */
static uint32_t crc_padding(parser *p, uint32_t crc, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to && p->bad_padding == UINT64_MAX; i++)
        if (p->bytes[i] != 0)
            p->bad_padding = i;
    return fedl_crc32c(crc, p->bytes + from, (size_t)(to - from));
}

/* One pass over every byte after the table: the CRC of each section and,
 * combined from them, the CRC of everything before the trailer. */
static uint32_t compute_crcs(parser *p, const fedl_container *c)
{
    uint32_t crc = fedl_crc32c(0, p->bytes, (size_t)p->header_end);
    uint64_t position = p->header_end;
    p->bad_padding = UINT64_MAX;
    for (int i = 0; i < c->section_count; i++) {
        const fedl_section *s = &c->sections[i];
        crc = crc_padding(p, crc, position, s->offset);
        p->crc[i] = fedl_crc32c(0, p->bytes + s->offset, (size_t)s->length);
        crc = crc32c_combine(crc, p->crc[i], s->length);
        position = s->offset + s->length;
    }
    return crc_padding(p, crc, position, (uint64_t)p->length - TRAILER_BYTES);
}

static fedl_status report_section_crc(const parser *p, const fedl_section *s, uint32_t actual)
{
    return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                          "%s: section '%s' (bytes %llu..%llu): CRC-32C mismatch (stored %08x, "
                          "content gives %08x)",
                          p->name, s->name, (unsigned long long)s->offset,
                          (unsigned long long)(s->offset + s->length), s->crc32c, actual);
}

/* Trailer magic, trailer CRC and every section's CRC. When the trailer CRC
 * fails, the message names the damaged section if one is found (that is
 * what a reader can act on), else the padding byte, else the trailer. */
static fedl_status check_trailer_and_sections(parser *p, const fedl_container *c)
{
    size_t trailer_at = p->length - TRAILER_BYTES;
    uint32_t stored, actual;
    int damaged = -1;
    if (memcmp(p->bytes + trailer_at, trailer_magic, 4) != 0)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: no trailer: bytes %zu..%zu are not \"FEND\" (the file is "
                              "truncated or damaged at its end)",
                              p->name, trailer_at, trailer_at + 4);
    stored = fedl_get_u32(p->bytes + trailer_at + 4);
    actual = compute_crcs(p, c);
    for (int i = 0; i < c->section_count && damaged < 0; i++)
        if (p->crc[i] != c->sections[i].crc32c)
            damaged = i;
    if (damaged >= 0)
        return report_section_crc(p, &c->sections[damaged], p->crc[damaged]);
    if (p->bad_padding != UINT64_MAX)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT, "%s: padding byte %llu is %02x, must be 0%s",
                              p->name, (unsigned long long)p->bad_padding, p->bytes[p->bad_padding],
                              stored != actual ? " (the trailer CRC-32C mismatches too)" : "");
    if (stored != actual)
        return fedl_error_set(p->err, FEDL_ERR_FORMAT,
                              "%s: trailer: checksum mismatch (CRC-32C stored %08x at byte %zu, "
                              "bytes 0..%zu give %08x)",
                              p->name, stored, trailer_at + 4, trailer_at, actual);
    return FEDL_OK;
}

fedl_status fedl_container_parse(const uint8_t *bytes, size_t length, const char *name,
                                 fedl_container *out, fedl_error *err)
{
    parser p;
    fedl_status st;
    memset(&p, 0, sizeof p);
    p.bytes = bytes;
    p.length = bytes != NULL ? length : 0;
    p.name = name != NULL ? name : "container";
    p.err = err;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: no container to parse into", p.name);
    memset(out, 0, sizeof *out);
    st = check_header(&p);
    if (st == FEDL_OK)
        st = check_table_crc(&p);
    if (st == FEDL_OK) {
        out->section_count = (int)p.count;
        st = read_entries(&p, out);
    }
    if (st == FEDL_OK)
        st = check_trailer_and_sections(&p, out);
    if (st != FEDL_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->bytes = bytes;
    out->length = length;
    out->version = fedl_get_u32(bytes + 8);
    out->file_kind = fedl_get_u32(bytes + 16);
    return FEDL_OK;
}

const fedl_section *fedl_container_find(const fedl_container *c, const char *name)
{
    if (c == NULL || name == NULL)
        return NULL;
    for (int i = 0; i < c->section_count; i++)
        if (strcmp(c->sections[i].name, name) == 0)
            return &c->sections[i];
    return NULL;
}

const uint8_t *fedl_container_data(const fedl_container *c, const fedl_section *s)
{
    if (c == NULL || s == NULL || c->bytes == NULL)
        return NULL;
    return c->bytes + s->offset;
}

/* ================================================================== writer */

typedef struct section_slot {
    char name[FEDL_SECTION_NAME_MAX + 1];
    uint32_t kind;
    const uint8_t *data; /* borrowed, or == owned */
    size_t length;       /* bytes */
    uint8_t *owned;      /* copy made by add_copy / add_floats, length bytes, or NULL */
} section_slot;

struct fedl_container_writer {
    fedl_allocator *alloc;
    fedl_file_kind kind;
    int count;
    section_slot slots[FEDL_CONTAINER_MAX_SECTIONS];
};

/* The allocator w was created with (internal to src/ckpt: model_file.c
 * builds its small sections with it). */

fedl_allocator *fedl_container_writer_allocator(const fedl_container_writer *w)
{
    return w->alloc;
}

fedl_status fedl_container_writer_create(fedl_file_kind kind, fedl_allocator *alloc,
                                         fedl_container_writer **out, fedl_error *err)
{
    fedl_container_writer *w;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "container writer: out is NULL");
    *out = NULL;
    if (kind != FEDL_FILE_MODEL && kind != FEDL_FILE_CHECKPOINT && kind != FEDL_FILE_CSV_INDEX &&
        kind != FEDL_FILE_COORDINATOR && kind != FEDL_FILE_CLIENT)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: unknown file kind %d (1 model, 2 checkpoint, 3 "
                              "CSV index, 4 coordinator, 5 client)",
                              (int)kind);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    w = fedl_mem_alloc(alloc, sizeof *w);
    if (w == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "container writer: cannot allocate %zu bytes",
                              sizeof *w);
    w->alloc = alloc;
    w->kind = kind;
    *out = w;
    return FEDL_OK;
}

void fedl_container_writer_destroy(fedl_container_writer *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < w->count; i++)
        fedl_mem_free(w->alloc, w->slots[i].owned, w->slots[i].length);
    fedl_mem_free(w->alloc, w, sizeof *w);
}

/* Room, a valid and unused name, data for a non-empty length. */
static fedl_status check_new_section(const fedl_container_writer *w, const char *name,
                                     const void *data, size_t length, fedl_error *err)
{
    if (w == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "container writer: NULL writer");
    if (!c_name_valid(name))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: section name \"%s\" is not 1..16 characters of "
                              "a-z 0-9 _ . -",
                              name != NULL ? name : "(null)");
    if (w->count == FEDL_CONTAINER_MAX_SECTIONS)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: section '%s': already %d sections (the most "
                              "a file holds)",
                              name, FEDL_CONTAINER_MAX_SECTIONS);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->slots[i].name, name) == 0)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "container writer: section '%s' added twice", name);
    if (data == NULL && length > 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: section '%s': NULL data for %zu bytes", name,
                              length);
    return FEDL_OK;
}

static void append_slot(fedl_container_writer *w, const char *name, fedl_section_kind kind,
                        const uint8_t *data, size_t length, uint8_t *owned)
{
    section_slot *s = &w->slots[w->count++];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, strlen(name));
    s->kind = (uint32_t)kind;
    s->data = data;
    s->length = length;
    s->owned = owned;
}

fedl_status fedl_container_add(fedl_container_writer *w, const char *name, fedl_section_kind kind,
                               const void *data, size_t length, fedl_error *err)
{
    fedl_status st = check_new_section(w, name, data, length, err);
    if (st != FEDL_OK)
        return st;
    append_slot(w, name, kind, data, length, NULL);
    return FEDL_OK;
}

fedl_status fedl_container_add_copy(fedl_container_writer *w, const char *name,
                                    fedl_section_kind kind, const void *data, size_t length,
                                    fedl_error *err)
{
    uint8_t *copy = NULL;
    fedl_status st = check_new_section(w, name, data, length, err);
    if (st != FEDL_OK)
        return st;
    if (length > 0) {
        copy = fedl_mem_alloc(w->alloc, length);
        if (copy == NULL)
            return fedl_error_set(err, FEDL_ERR_NOMEM,
                                  "container writer: section '%s': cannot allocate %zu bytes", name,
                                  length);
        memcpy(copy, data, length);
    }
    append_slot(w, name, kind, copy, length, copy);
    return FEDL_OK;
}

fedl_status fedl_container_add_floats(fedl_container_writer *w, const char *name,
                                      fedl_section_kind kind, const float *values, size_t count,
                                      fedl_error *err)
{
    size_t length = count * sizeof(float);
    uint8_t *copy;
    fedl_status st;
    if (count > SIZE_MAX / sizeof(float))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: section '%s': %zu floats overflow", name, count);
    if (fedl_host_is_little_endian() || count == 0)
        return fedl_container_add(w, name, kind, values, length, err);
    st = check_new_section(w, name, values, length, err);
    if (st != FEDL_OK)
        return st;
    copy = fedl_mem_alloc(w->alloc, length);
    if (copy == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "container writer: section '%s': cannot allocate %zu bytes", name,
                              length);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        fedl_put_u32(copy + 4 * i, bits);
    }
    append_slot(w, name, kind, copy, length, copy);
    return FEDL_OK;
}

/* Offsets of every section and the total size; 0 when there is no section
 * or the total does not fit in 64 bits. */
static uint64_t layout(const fedl_container_writer *w,
                       uint64_t offsets[FEDL_CONTAINER_MAX_SECTIONS])
{
    uint64_t position = header_block_bytes((uint64_t)w->count);
    if (w->count == 0)
        return 0;
    for (int i = 0; i < w->count; i++) {
        uint64_t start = align_up(position);
        if ((uint64_t)w->slots[i].length > UINT64_MAX - TRAILER_BYTES - SECTION_ALIGN - start)
            return 0;
        offsets[i] = start;
        position = start + w->slots[i].length;
    }
    return position + TRAILER_BYTES;
}

size_t fedl_container_size(const fedl_container_writer *w)
{
    uint64_t offsets[FEDL_CONTAINER_MAX_SECTIONS];
    uint64_t total = w != NULL ? layout(w, offsets) : 0;
    return total > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)total;
}

/* The file as pieces: header + table + table CRC in header_block, then
 * per section its zero padding and its bytes, then the trailer. Every
 * CRC is computed here, reading each section once. */
typedef struct file_pieces {
    uint8_t header_block[HEADER_BLOCK_MAX];
    uint8_t trailer[TRAILER_BYTES];
    fedl_iovec pieces[PIECES_MAX];
    int count;
    uint64_t total; /* bytes */
} file_pieces;

static void add_piece(file_pieces *f, const void *base, uint64_t length)
{
    if (length == 0)
        return;
    f->pieces[f->count].base = base;
    f->pieces[f->count].length = (size_t)length;
    f->count++;
}

static void fill_entry(uint8_t *entry, const section_slot *s, uint64_t offset, uint32_t crc)
{
    memset(entry, 0, ENTRY_BYTES);
    memcpy(entry, s->name, strlen(s->name));
    fedl_put_u32(entry + 16, s->kind);
    fedl_put_u64(entry + 24, offset);
    fedl_put_u64(entry + 32, (uint64_t)s->length);
    fedl_put_u32(entry + 40, crc);
}

static fedl_status build_pieces(const fedl_container_writer *w, file_pieces *f, fedl_error *err)
{
    uint64_t offsets[FEDL_CONTAINER_MAX_SECTIONS], position;
    uint32_t section_crc[FEDL_CONTAINER_MAX_SECTIONS], crc;
    size_t table_end;
    if (w == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "container writer: NULL writer");
    f->total = layout(w, offsets);
    if (w->count == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "container writer: no sections added");
    if (f->total == 0 || f->total > (uint64_t)SIZE_MAX)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "container writer: sections too large for one file");
    position = header_block_bytes((uint64_t)w->count);
    table_end = (size_t)position - TABLE_CRC_BYTES;
    memset(f->header_block, 0, sizeof f->header_block);
    memcpy(f->header_block, container_magic, sizeof container_magic);
    fedl_put_u32(f->header_block + 8, FEDL_CONTAINER_VERSION);
    fedl_put_u32(f->header_block + 12, (uint32_t)position);
    fedl_put_u32(f->header_block + 16, (uint32_t)w->kind);
    fedl_put_u32(f->header_block + 20, (uint32_t)w->count);
    fedl_put_u64(f->header_block + 24, f->total);
    for (int i = 0; i < w->count; i++) {
        section_crc[i] = fedl_crc32c(0, w->slots[i].data, w->slots[i].length);
        fill_entry(f->header_block + HEADER_BYTES + ENTRY_BYTES * (size_t)i, &w->slots[i],
                   offsets[i], section_crc[i]);
    }
    fedl_put_u32(f->header_block + table_end, fedl_crc32c(0, f->header_block, table_end));
    f->count = 0;
    add_piece(f, f->header_block, position);
    crc = fedl_crc32c(0, f->header_block, (size_t)position);
    for (int i = 0; i < w->count; i++) {
        add_piece(f, zero_padding, offsets[i] - position);
        crc = fedl_crc32c(crc, zero_padding, (size_t)(offsets[i] - position));
        add_piece(f, w->slots[i].data, w->slots[i].length);
        crc = crc32c_combine(crc, section_crc[i], w->slots[i].length);
        position = offsets[i] + w->slots[i].length;
    }
    memcpy(f->trailer, trailer_magic, 4);
    fedl_put_u32(f->trailer + 4, crc);
    add_piece(f, f->trailer, TRAILER_BYTES);
    return FEDL_OK;
}

fedl_status fedl_container_write(fedl_container_writer *w, const fedl_io *io, const char *path,
                                 fedl_error *err)
{
    file_pieces f;
    fedl_status st = build_pieces(w, &f, err);
    if (st != FEDL_OK)
        return st;
    return fedl_durable_writev(io, path, f.pieces, f.count, err);
}

fedl_status fedl_container_to_buffer(fedl_container_writer *w, fedl_allocator *alloc,
                                     uint8_t **bytes, size_t *length, fedl_error *err)
{
    file_pieces f;
    uint8_t *buffer;
    size_t at = 0;
    fedl_status st;
    if (bytes == NULL || length == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "container writer: NULL output");
    *bytes = NULL;
    *length = 0;
    st = build_pieces(w, &f, err);
    if (st != FEDL_OK)
        return st;
    buffer = fedl_mem_alloc(alloc, (size_t)f.total);
    if (buffer == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "container writer: cannot allocate %llu bytes",
                              (unsigned long long)f.total);
    for (int i = 0; i < f.count; i++) {
        memcpy(buffer + at, f.pieces[i].base, f.pieces[i].length);
        at += f.pieces[i].length;
    }
    *bytes = buffer;
    *length = (size_t)f.total;
    return FEDL_OK;
}
