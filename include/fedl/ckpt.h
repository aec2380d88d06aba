/*
 * fedl/ckpt.h - durable files and what they hold: the one writer of durable
 * files (through a replaceable I/O layer), the sectioned container every
 * fedl file uses (model files, checkpoints), training checkpoints, manifests
 * of sizes and SHA-256 digests, and checkpoint directories that keep the
 * last K generations. docs/FORMAT.md gives every byte.
 *
 * Durable writes: a temp file created with O_EXCL in the target's directory
 * ("<target>.tmp.<pid>"), write, fsync, rename over the target, fsync the
 * directory. A failed fsync is final for that attempt (never retried on the
 * same descriptor) and reported; the old file, if any, is left untouched.
 *
 * Reading: every offset and length is checked against the file size before
 * the bytes it points at are touched; every section carries a CRC-32C, the
 * header and section table carry one, and a trailer holds the CRC-32C of
 * everything before it. A damaged file is reported (which section, which
 * check, which byte offset) and never used.
 */
#ifndef FEDL_CKPT_H
#define FEDL_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fedl/core.h"
#include "fedl/csv.h"
#include "fedl/mem.h"
#include "fedl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ I/O layer */

/* The system calls durable writes go through. Each returns what the POSIX
 * call returns and sets errno on failure. Tests replace them to inject EIO,
 * ENOSPC and short writes; fedl_io_posix() is the real thing. */
typedef struct fedl_io {
    void *ud;
    int (*open)(void *ud, const char *path, int flags, int mode); /* files and directories */
    ssize_t (*write)(void *ud, int fd, const void *buf, size_t length);
    int (*fsync)(void *ud, int fd);     /* a file */
    int (*dir_fsync)(void *ud, int fd); /* a directory opened with O_DIRECTORY */
    int (*close)(void *ud, int fd);
    int (*rename)(void *ud, const char *from, const char *to);
    int (*unlink)(void *ud, const char *path);
} fedl_io;

const fedl_io *fedl_io_posix(void);

/* A piece of a file being written. */
typedef struct fedl_iovec {
    const void *base;
    size_t length;
} fedl_iovec;

/* Write path durably from pieces (io NULL = POSIX). Short writes are
 * continued; EINTR is retried; any other failure unlinks the temp file,
 * leaves the old target untouched and returns FEDL_ERR_IO naming the step
 * (create, write at byte N, fsync, close, rename, directory fsync) and the
 * errno text. A failed directory fsync happens after the rename: the new
 * file is in place but its durability is not guaranteed, and it is
 * reported as an error. */
fedl_status fedl_durable_writev(const fedl_io *io, const char *path, const fedl_iovec *pieces,
                                int count, fedl_error *err);
fedl_status fedl_durable_write(const char *path, const void *bytes, size_t length, fedl_error *err);

/* Remove temp files "<name>.tmp.<pid>" left in dir by crashed writers
 * (skipping those whose pid is still alive and not ours). *removed counts
 * them (may be NULL); each removal is logged at INFO. */
fedl_status fedl_durable_clean_orphans(const fedl_io *io, const char *dir, int *removed,
                                       fedl_error *err);

/* A read-only view of a whole file (mmap where possible, else read into
 * memory from alloc). Empty files give length 0 and bytes non-NULL. */
typedef struct fedl_file_view {
    const uint8_t *bytes;
    size_t length;
    int mapped;            /* 1: munmap on close; 0: free to alloc */
    fedl_allocator *alloc; /* when not mapped */
} fedl_file_view;

fedl_status fedl_file_view_open(const char *path, fedl_allocator *alloc, fedl_file_view *view,
                                fedl_error *err);
void fedl_file_view_close(fedl_file_view *view);

/* Size and SHA-256 of a file, streamed in 64 KiB pieces. */
fedl_status fedl_file_sha256(const char *path, uint64_t *size, uint8_t digest[FEDL_SHA256_BYTES],
                             fedl_error *err);

/* ================================================================ container */

/* Every fedl file (docs/FORMAT.md):
 *   header (32 bytes) | section table (48 bytes per section) | table CRC (4)
 *   | sections, each starting on a 64-byte boundary, zero padding between
 *   | trailer (8): "FEND" then the CRC-32C of every byte before it. */
#define FEDL_CONTAINER_VERSION 2u
#define FEDL_CONTAINER_MAX_SECTIONS 32
#define FEDL_SECTION_NAME_MAX 16 /* bytes on disk, NUL-padded */

typedef enum fedl_file_kind {
    FEDL_FILE_MODEL = 1,       /* fedl train --out: model + params [+ meta] */
    FEDL_FILE_CHECKPOINT = 2,  /* full training state */
    FEDL_FILE_CSV_INDEX = 3,   /* a CSV data set's kept index (PATH.fedlidx) */
    FEDL_FILE_COORDINATOR = 4, /* a federated coordinator between rounds (fedl/fl.h) */
    FEDL_FILE_CLIENT = 5,      /* a federated client's accepted task (fedl/fl.h) */
} fedl_file_kind;

typedef enum fedl_section_kind {
    FEDL_SECTION_MODEL = 1,        /* spec, input shape, layer shapes */
    FEDL_SECTION_PARAMS = 2,       /* float32 parameters */
    FEDL_SECTION_OPTIM = 3,        /* optimiser kind, hyper-parameters, step count */
    FEDL_SECTION_OPTIM_STATE = 4,  /* float32 moments */
    FEDL_SECTION_RNG = 5,          /* seeds and generator positions */
    FEDL_SECTION_CURSOR = 6,       /* data cursor */
    FEDL_SECTION_COUNTERS = 7,     /* steps, samples, batch sizes, epoch statistics */
    FEDL_SECTION_LR = 8,           /* learning-rate schedule */
    FEDL_SECTION_CONFIG = 9,       /* training configuration text + SHA-256 fingerprint */
    FEDL_SECTION_META = 10,        /* key/value metadata */
    FEDL_SECTION_DATA = 11,        /* how the training data was read: a CSV fit (fedl/csv.h) */
    FEDL_SECTION_COORDINATOR = 12, /* fedl_coordinator_save's bytes */
    FEDL_SECTION_CLIENT = 13,      /* fedl_client_save's bytes */
} fedl_section_kind;

typedef struct fedl_section {
    char name[FEDL_SECTION_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t kind;                        /* fedl_section_kind (others are skipped) */
    uint64_t offset;                      /* bytes from the start of the file */
    uint64_t length;                      /* bytes */
    uint32_t crc32c;
} fedl_section;

/* A parsed and fully verified file image: header, table, trailer and every
 * section's CRC-32C were checked. bytes is borrowed. */
typedef struct fedl_container {
    const uint8_t *bytes;
    size_t length;
    uint32_t version;
    uint32_t file_kind; /* fedl_file_kind */
    int section_count;
    fedl_section sections[FEDL_CONTAINER_MAX_SECTIONS];
} fedl_container;

/* Parse and verify. name is used in messages: "ckpt-3.fedl: section
 * 'params' (bytes 4096..250000): CRC-32C mismatch (stored 1234abcd, content
 * gives 5678ef01)". */
fedl_status fedl_container_parse(const uint8_t *bytes, size_t length, const char *name,
                                 fedl_container *out, fedl_error *err);
/* The section called name, or NULL. */
const fedl_section *fedl_container_find(const fedl_container *c, const char *name);
/* The section's bytes (c->bytes + offset). */
const uint8_t *fedl_container_data(const fedl_container *c, const fedl_section *s);

/* Building a container. Sections are added in file order; data given to
 * fedl_container_add is borrowed and must stay valid until the writer is
 * destroyed (large arrays are written from where they live, not copied);
 * fedl_container_add_copy copies. */
typedef struct fedl_container_writer fedl_container_writer;

fedl_status fedl_container_writer_create(fedl_file_kind kind, fedl_allocator *alloc,
                                         fedl_container_writer **out, fedl_error *err);
void fedl_container_writer_destroy(fedl_container_writer *w);
fedl_status fedl_container_add(fedl_container_writer *w, const char *name, fedl_section_kind kind,
                               const void *data, size_t length, fedl_error *err);
fedl_status fedl_container_add_copy(fedl_container_writer *w, const char *name,
                                    fedl_section_kind kind, const void *data, size_t length,
                                    fedl_error *err);
/* float32 arrays in little-endian order: borrowed on little-endian hosts,
 * converted into a copy elsewhere. */
fedl_status fedl_container_add_floats(fedl_container_writer *w, const char *name,
                                      fedl_section_kind kind, const float *values, size_t count,
                                      fedl_error *err);
/* Total file size once finished. */
size_t fedl_container_size(const fedl_container_writer *w);
/* Write durably (io NULL = POSIX) without assembling the file in memory. */
fedl_status fedl_container_write(fedl_container_writer *w, const fedl_io *io, const char *path,
                                 fedl_error *err);
/* Or assemble it into a buffer from alloc, freed with fedl_mem_free(alloc,
 * *bytes, *length). */
fedl_status fedl_container_to_buffer(fedl_container_writer *w, fedl_allocator *alloc,
                                     uint8_t **bytes, size_t *length, fedl_error *err);

/* ============================================================== model files */

/* Model files are containers of kind FEDL_FILE_MODEL with sections "model"
 * and "params". Loading also accepts version-1 model files ("FEDLMODL") and
 * checkpoints (their model and parameters). */
fedl_status fedl_model_serialize(const fedl_model *model, fedl_allocator *alloc, uint8_t **bytes,
                                 size_t *length, fedl_error *err);
fedl_status fedl_model_deserialize(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_model **out, fedl_error *err);
fedl_status fedl_model_save(const fedl_model *model, const char *path, fedl_error *err);
fedl_status fedl_model_load(const char *path, fedl_allocator *alloc, fedl_model **out,
                            fedl_error *err);
/* Add the "model" and "params" sections of model to a writer (params
 * borrowed: the model must outlive the writer). */
fedl_status fedl_model_add_sections(fedl_container_writer *w, const fedl_model *model,
                                    fedl_error *err);
/* Build a model from a verified container's "model" and "params" sections. */
fedl_status fedl_model_from_container(const fedl_container *c, const char *name,
                                      fedl_allocator *alloc, fedl_model **out, fedl_error *err);

/* ============================================================== checkpoints */

/* A key/value pair of the "meta" section: key is text (1..255 bytes, no
 * NUL), value any bytes (at most 16 MiB). */
typedef struct fedl_meta_entry {
    const char *key;
    const uint8_t *value;
    size_t length;
} fedl_meta_entry;

/* Everything a training session needs beyond the model to continue exactly
 * where it stopped. Pointers are borrowed when saving and owned by the
 * fedl_checkpoint when loaded. */
typedef struct fedl_train_state {
    /* "counters" */
    uint64_t global_step;     /* optimiser steps done */
    uint64_t samples_seen;    /* since the start */
    uint32_t micro_batch;     /* samples per forward/backward */
    uint32_t effective_batch; /* samples per optimiser step */
    double epoch_loss_sum;    /* running statistics of the current epoch */
    uint64_t epoch_correct;
    uint64_t epoch_seen;
    /* "cursor" */
    uint64_t epoch;    /* 0-based epoch the next step belongs to */
    uint64_t position; /* samples of that epoch's shuffled order consumed */
    uint64_t shuffle_seed;
    uint32_t shuffle;       /* 0 = dataset order */
    uint64_t epoch_samples; /* samples per epoch */
    /* "rng" */
    uint64_t model_seed;   /* initialisation and dropout key */
    uint64_t dropout_step; /* the step the next dropout masks are keyed by */
    /* "optim" + "optim_state" */
    fedl_optim_config optim;
    uint64_t optim_steps;
    const float *optim_state; /* optim_state_count floats (moments) */
    size_t optim_state_count;
    /* "lr" */
    fedl_lr_schedule lr;
    float last_lr;
    /* "config": canonical "key=value\n" lines of every setting that must
     * match on resume, and its SHA-256 */
    const char *config_text;
    uint8_t config_sha256[FEDL_SHA256_BYTES];
    /* "meta" */
    const fedl_meta_entry *meta;
    int meta_count;
} fedl_train_state;

/* A decoded checkpoint: the model (parameters loaded) and the state. */
typedef struct fedl_checkpoint {
    fedl_allocator *alloc;
    fedl_model *model;
    fedl_train_state state;
    /* storage behind state's pointers (owned) */
    float *optim_state;
    char *config_text;
    fedl_meta_entry *meta;
    uint8_t *meta_storage;
    size_t meta_storage_bytes;
} fedl_checkpoint;

/* A writer of kind FEDL_FILE_CHECKPOINT holding model, params and every
 * state section; model and the state's arrays are borrowed. */
fedl_status fedl_checkpoint_writer(const fedl_model *model, const fedl_train_state *state,
                                   fedl_allocator *alloc, fedl_container_writer **out,
                                   fedl_error *err);
/* Writer + durable write in one call. */
fedl_status fedl_checkpoint_save(const fedl_io *io, const char *path, const fedl_model *model,
                                 const fedl_train_state *state, fedl_error *err);
/* Decode a verified checkpoint image; every field is range-checked (a bad
 * value is named with its section and byte offset). */
fedl_status fedl_checkpoint_decode(const uint8_t *bytes, size_t length, const char *name,
                                   fedl_allocator *alloc, fedl_checkpoint **out, fedl_error *err);
fedl_status fedl_checkpoint_load(const char *path, fedl_allocator *alloc, fedl_checkpoint **out,
                                 fedl_error *err);
void fedl_checkpoint_free(fedl_checkpoint *c);
/* The value of key in the checkpoint's metadata, or NULL. */
const fedl_meta_entry *fedl_checkpoint_meta(const fedl_checkpoint *c, const char *key);

/* Export a model's parameters as safetensors, written durably: one tensor
 * per layer weight and bias, named "<i>.weight" and "<i>.bias" with i the
 * 0-based index of the layer in the spec (the names of torch.nn.Sequential's
 * state_dict when each spec layer is one module), with PyTorch's shapes
 * (dense (out, in), conv2d (out, in, k, k), conv1d (out, in, k), bias
 * (out)); metadata "format" = "pt", "fedl_spec" and "fedl_version". */
fedl_status fedl_model_export_safetensors(const fedl_model *model, const char *path,
                                          fedl_error *err);

/* ================================================================ manifests */

/* A manifest lists files with size and SHA-256, as text:
 *   fedl-manifest 1
 *   <size> <sha256 hex> <name>          (one line per file, names sorted)
 *   end <CRC-32C hex of all bytes before this line>
 * Names are relative, printable, without "/" components of ".." and without
 * spaces or newlines. */
#define FEDL_MANIFEST_NAME_MAX 255

typedef struct fedl_manifest_entry {
    char name[FEDL_MANIFEST_NAME_MAX + 1];
    uint64_t size;
    uint8_t sha256[FEDL_SHA256_BYTES];
} fedl_manifest_entry;

typedef struct fedl_manifest {
    fedl_allocator *alloc;
    size_t count;
    size_t capacity;
    fedl_manifest_entry *entries; /* sorted by name */
} fedl_manifest;

void fedl_manifest_init(fedl_manifest *m, fedl_allocator *alloc);
void fedl_manifest_free(fedl_manifest *m);
/* Add or replace name's entry. */
fedl_status fedl_manifest_set(fedl_manifest *m, const char *name, uint64_t size,
                              const uint8_t sha256[FEDL_SHA256_BYTES], fedl_error *err);
void fedl_manifest_remove(fedl_manifest *m, const char *name);
const fedl_manifest_entry *fedl_manifest_find(const fedl_manifest *m, const char *name);
/* Text form (parse errors name the line and column). */
fedl_status fedl_manifest_parse(const char *text, size_t length, const char *name,
                                fedl_allocator *alloc, fedl_manifest *out, fedl_error *err);
fedl_status fedl_manifest_format(const fedl_manifest *m, fedl_allocator *alloc, char **text,
                                 size_t *length, fedl_error *err);
fedl_status fedl_manifest_read(const char *path, fedl_allocator *alloc, fedl_manifest *out,
                               fedl_error *err);
fedl_status fedl_manifest_write(const fedl_io *io, const char *path, const fedl_manifest *m,
                                fedl_error *err);
/* Every regular file of dir (not recursive; skipping names starting with
 * "." and skip_name if not NULL), hashed. */
fedl_status fedl_manifest_build_dir(const char *dir, const char *skip_name, fedl_allocator *alloc,
                                    fedl_manifest *out, fedl_error *err);
/* Check one file of dir against its entry: missing, size changed
 * ("truncated" when shorter) or content changed is FEDL_ERR_FORMAT naming
 * the file and both sizes or digests. */
fedl_status fedl_manifest_check_file(const fedl_manifest *m, const char *dir, const char *name,
                                     fedl_error *err);
/* Check every entry; the first failure is returned. */
fedl_status fedl_manifest_verify_dir(const fedl_manifest *m, const char *dir, fedl_error *err);
/* The files of dir the manifest does not list (same rules as build_dir:
 * regular files, no names starting with ".", not skip_name, and no temp
 * files "<name>.tmp.<pid>" of durable writes): FEDL_ERR_FORMAT naming the
 * first one, FEDL_OK when there is none. A reader that picks among several
 * names (e.g. "x" or "x.gz") must not pick an unverified one. */
fedl_status fedl_manifest_check_unlisted(const fedl_manifest *m, const char *dir,
                                         const char *skip_name, fedl_error *err);

/* ==================================================== checkpoint directories */

/* A directory of generations "ckpt-<generation, 8+ digits>.fedl" and a
 * manifest "MANIFEST" of their sizes and SHA-256. Saving writes the new
 * generation, then the manifest, then removes generations beyond the last
 * keep. Generation numbers only grow, so the newest is the highest. */
#define FEDL_CKPT_MANIFEST "MANIFEST"

typedef struct fedl_ckpt_dir_options {
    int keep;          /* generations kept, >= 1 (default 3) */
    const fedl_io *io; /* NULL = POSIX */
    int create;        /* create the directory if missing (default 1) */
    int read_only;     /* inspect only: nothing created, cleaned or saved (default 0) */
} fedl_ckpt_dir_options;

fedl_ckpt_dir_options fedl_ckpt_dir_defaults(void);

typedef struct fedl_ckpt_dir fedl_ckpt_dir;

/* Open (creating it if asked), clean orphaned temp files (not when
 * read_only), read the manifest (a damaged manifest is reported at WARN and
 * replaced by an empty one: the generations it listed are then checked by
 * their own CRCs only, and the next save writes a new manifest). */
fedl_status fedl_ckpt_dir_open(const char *path, const fedl_ckpt_dir_options *options,
                               fedl_allocator *alloc, fedl_ckpt_dir **out, fedl_error *err);
void fedl_ckpt_dir_close(fedl_ckpt_dir *d);

/* Generations present, newest first. */
int fedl_ckpt_dir_count(const fedl_ckpt_dir *d);
uint64_t fedl_ckpt_dir_generation(const fedl_ckpt_dir *d, int index);
/* Full path of generation index (valid until the next save or close). */
const char *fedl_ckpt_dir_path(const fedl_ckpt_dir *d, int index);
/* Check generation index: manifest size and SHA-256 (if listed), the
 * container's checks, that it is a checkpoint, and that it decodes
 * (fedl_checkpoint_decode). FEDL_ERR_FORMAT with what failed; a SHA-256
 * mismatch also names the damaged section when the container check finds
 * one. */
fedl_status fedl_ckpt_dir_verify(const fedl_ckpt_dir *d, int index, fedl_error *err);
/* Write w as the next generation; on failure the previous generations and
 * the manifest are untouched. *generation (may be NULL) receives its number. */
fedl_status fedl_ckpt_dir_save(fedl_ckpt_dir *d, fedl_container_writer *w, uint64_t *generation,
                               fedl_error *err);
/* Index of the newest generation that verifies, or -1 if none. Every
 * damaged newer one is logged at WARN with what failed and, unless the
 * directory is read-only, set aside: renamed to "<name>.damaged" (kept for
 * inspection, no longer a generation, never counted or removed by
 * retention). Indexes of the remaining generations may change. */
int fedl_ckpt_dir_newest_valid(fedl_ckpt_dir *d, fedl_error *first_damage);
/* FEDL_OK when MANIFEST was read intact or is absent; FEDL_ERR_FORMAT with
 * the parse error when it was damaged (the directory is then used with the
 * generations' own checks). */
fedl_status fedl_ckpt_dir_manifest_status(const fedl_ckpt_dir *d, fedl_error *err);

/* ========================================================= CSV index cache */

/*
 * The opening pass of a CSV data set (fedl/csv.h) reads the whole file; its
 * result, the row index, the fit and the figures, is kept beside the file
 * in PATH.fedlidx (a container of kind FEDL_FILE_CSV_INDEX, FORMAT.md) and
 * reused while it still describes the file: its key covers the reader
 * options, the schema, the fit given (a test set), and the file's size,
 * modification time, inode and a SHA-256 of its first and last 64 KiB. A
 * file changed in place keeping all of those would not be noticed (its
 * rows would then fail to parse, or read other values).
 */
#define FEDL_CSV_INDEX_SUFFIX ".fedlidx"

/* A decoded index file; free with fedl_csv_index_file_free. */
typedef struct fedl_csv_index_file {
    fedl_allocator *alloc;
    uint8_t key[FEDL_SHA256_BYTES];
    fedl_csv_row *rows; /* (count) */
    size_t count;
    int rows_borrowed; /* rows point into the decoded bytes (never by fedl_csv_index_decode) */
    fedl_csv_fit *fit;
    fedl_csv_info info;
} fedl_csv_index_file;

/* Decode and check an index file's bytes (name for messages). */
fedl_status fedl_csv_index_decode(const uint8_t *bytes, size_t length, const char *name,
                                  fedl_allocator *alloc, fedl_csv_index_file *out, fedl_error *err);
void fedl_csv_index_file_free(fedl_csv_index_file *f);

/* What fedl_csv_dataset_open_cached did with the index. */
typedef enum fedl_csv_index_use {
    FEDL_CSV_INDEX_NOT_KEPT, /* built by the pass; could not be written (logged at WARN) */
    FEDL_CSV_INDEX_WRITTEN,  /* built by the pass and written to PATH.fedlidx */
    FEDL_CSV_INDEX_READ      /* read from PATH.fedlidx: no pass */
} fedl_csv_index_use;

/* fedl_csv_dataset_open of one file, with its index kept: taken from
 * PATH.fedlidx when that matches, else built by the pass and written there
 * durably (a directory that cannot take it only costs the next run a pass:
 * logged at WARN, not an error). A damaged or stale index is logged and
 * replaced. */
fedl_status fedl_csv_dataset_open_cached(const char *path, const fedl_csv_options *opts,
                                         const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                                         fedl_allocator *alloc, fedl_dataset *out,
                                         fedl_csv_index_use *use, fedl_error *err);

#ifdef __cplusplus
}
#endif
#endif
