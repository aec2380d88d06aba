/*
 * ckpt_dir.c - checkpoint directories: generations "ckpt-<number>.fedl"
 * (number printed with at least 8 digits, "ckpt-%08llu.fedl") and a
 * MANIFEST of their sizes and SHA-256 digests, keeping the newest `keep`.
 *
 * Owns: opening a directory (creating it, removing orphaned temp files,
 * reading the manifest, listing generations), saving the next generation,
 * retention, verifying a generation (manifest size and SHA-256, container
 * CRCs, file kind, full decode), and finding the newest generation that
 * verifies, setting damaged newer ones aside.
 *
 * Saving is ordered so that a crash at any point leaves a loadable
 * directory: (1) the new generation is written durably; (2) the manifest
 * listing it is written durably; (3) generations beyond `keep` are deleted,
 * oldest first, and the manifest is written again without them. A crash
 * after (1) leaves a generation the manifest does not list: it is still
 * used, checked by its own CRC-32Cs only. A crash inside (3) leaves a
 * manifest listing deleted generations: those entries are dropped when the
 * directory is next opened. If (1) fails nothing changed; if (2) fails the
 * new generation is removed again (and, when the failure came after the
 * manifest's rename, the previous manifest is put back), so the directory
 * is as before. Failures in (3) are logged at WARN: the new generation is
 * saved and the leftovers are removed by a later save.
 *
 * A damaged MANIFEST is never deleted or trusted: it is reported at WARN
 * (and by fedl_ckpt_dir_manifest_status) and the directory continues with
 * an empty manifest, so every generation is checked by its container CRCs
 * only until the next save rewrites the manifest (listing the generations
 * written from then on).
 *
 * Damaged generations are never deleted for being damaged, and do not
 * take the places of good ones. newest_valid logs each damaged generation
 * newer than the one it returns (at WARN, with what failed) and, unless the
 * directory is read-only, sets it aside: renames it to "<name>.damaged"
 * through the fedl_io, fsyncs the directory, and drops it from the list
 * and from the manifest (rewritten durably; if that fails, a WARN, and its
 * stale entry is dropped when the directory is next opened). A set-aside
 * file is not a generation: retention never counts or removes it,
 * reopening does not list it, and numbering continues past it, so no later
 * generation takes its name. It stays for inspection until removed by
 * hand. Only a failed check (FEDL_ERR_FORMAT) sets a file aside; one that
 * could not be checked (an I/O error, out of memory) is skipped but stays
 * a generation. So after a resume (which calls newest_valid) the `keep`
 * generations retention keeps are ones never found damaged.
 *
 * A fedl_ckpt_dir is not thread-safe, and one directory must have one
 * writer at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fedl/ckpt.h"

#define GENERATION_PREFIX "ckpt-"
#define GENERATION_SUFFIX ".fedl"
#define GENERATION_MIN_DIGITS 8
#define DAMAGED_SUFFIX ".damaged"
/* "ckpt-" + 20 digits + ".fedl" + ".damaged" + NUL, rounded up */
#define GENERATION_NAME_MAX 48

struct fedl_ckpt_dir {
    fedl_allocator *alloc;
    fedl_ckpt_dir_options options; /* io resolved to fedl_io_posix() when NULL */
    char *dir;                     /* the directory, without trailing '/' */
    size_t dir_length;             /* bytes of dir */
    fedl_manifest manifest;        /* what MANIFEST says (empty when damaged or absent) */
    int manifest_on_disk;          /* a MANIFEST file exists (valid or not) */
    fedl_error manifest_damage;    /* why MANIFEST was not used (status FEDL_OK: it was) */
    uint64_t highest_set_aside;    /* highest number of a "<generation>.damaged" file, or 0 */
    char *manifest_path;           /* path_stride bytes */
    uint64_t *generations;         /* (count) numbers, newest (highest) first */
    char *paths;                   /* (capacity, path_stride) full path of each generation */
    int count;
    int capacity;
    size_t path_stride; /* bytes per path: dir + '/' + longest generation name */
    char *scratch;      /* path_stride bytes: a path being built */
};

fedl_ckpt_dir_options fedl_ckpt_dir_defaults(void)
{
    fedl_ckpt_dir_options o;
    o.keep = 3;
    o.io = NULL;
    o.create = 1;
    o.read_only = 0;
    return o;
}

/* ------------------------------------------------------------ generation names */

static void generation_name(uint64_t number, char name[GENERATION_NAME_MAX])
{
    snprintf(name, GENERATION_NAME_MAX, GENERATION_PREFIX "%08llu" GENERATION_SUFFIX,
             (unsigned long long)number);
}

/* 1 and *number when name is exactly the canonical name of a generation
 * ("ckpt-" + at least 8 digits without extra leading zeros + ".fedl"). */
static int parse_generation_name(const char *name, uint64_t *number)
{
    char canonical[GENERATION_NAME_MAX];
    const char *p;
    uint64_t value = 0;
    size_t digits = 0;
    if (strncmp(name, GENERATION_PREFIX, strlen(GENERATION_PREFIX)) != 0)
        return 0;
    p = name + strlen(GENERATION_PREFIX);
    for (; p[digits] >= '0' && p[digits] <= '9'; digits++) {
        unsigned digit = (unsigned)(p[digits] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return 0;
        value = value * 10 + digit;
    }
    if (digits < GENERATION_MIN_DIGITS || strcmp(p + digits, GENERATION_SUFFIX) != 0)
        return 0;
    generation_name(value, canonical);
    if (strcmp(canonical, name) != 0)
        return 0;
    *number = value;
    return 1;
}

static char *path_at(const fedl_ckpt_dir *d, int index)
{
    return d->paths + (size_t)index * d->path_stride;
}

static void build_path(const fedl_ckpt_dir *d, uint64_t number, char *path)
{
    char name[GENERATION_NAME_MAX];
    generation_name(number, name);
    snprintf(path, d->path_stride, "%s/%s", d->dir, name);
}

static const char *base_name(const fedl_ckpt_dir *d, const char *path)
{
    return path + d->dir_length + 1;
}

/* -------------------------------------------------------------- the list */

/* Grow both arrays to hold need generations: new blocks are allocated
 * first, so on failure the old ones are untouched. */
static fedl_status reserve_generations(fedl_ckpt_dir *d, int need, fedl_error *err)
{
    int capacity = d->capacity > 0 ? d->capacity : 8;
    uint64_t *numbers;
    char *paths;
    if (need <= d->capacity)
        return FEDL_OK;
    while (capacity < need) {
        if (capacity > (1 << 24))
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: too many generations (%d)", d->dir,
                                  need);
        capacity *= 2;
    }
    numbers = fedl_mem_alloc(d->alloc, (size_t)capacity * sizeof *numbers);
    paths = numbers != NULL ? fedl_mem_alloc(d->alloc, (size_t)capacity * d->path_stride) : NULL;
    if (paths == NULL) {
        fedl_mem_free(d->alloc, numbers, (size_t)capacity * sizeof *numbers);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot list %d generations", d->dir, need);
    }
    if (d->count > 0) {
        memcpy(numbers, d->generations, (size_t)d->count * sizeof *numbers);
        memcpy(paths, d->paths, (size_t)d->count * d->path_stride);
    }
    fedl_mem_free(d->alloc, d->generations, (size_t)d->capacity * sizeof *numbers);
    fedl_mem_free(d->alloc, d->paths, (size_t)d->capacity * d->path_stride);
    d->generations = numbers;
    d->paths = paths;
    d->capacity = capacity;
    return FEDL_OK;
}

static int compare_newest_first(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void rebuild_paths(fedl_ckpt_dir *d)
{
    for (int i = 0; i < d->count; i++)
        build_path(d, d->generations[i], path_at(d, i));
}

/* 1 and *number when name is a generation's name followed by ".damaged"
 * (a generation newest_valid set aside). */
static int parse_set_aside_name(const char *name, uint64_t *number)
{
    char generation[GENERATION_NAME_MAX];
    size_t length = strlen(name), suffix = strlen(DAMAGED_SUFFIX);
    if (length <= suffix || length - suffix >= sizeof generation ||
        strcmp(name + length - suffix, DAMAGED_SUFFIX) != 0)
        return 0;
    memcpy(generation, name, length - suffix);
    generation[length - suffix] = '\0';
    return parse_generation_name(generation, number);
}

static fedl_status consider_entry(fedl_ckpt_dir *d, const char *name, fedl_error *err)
{
    struct stat st;
    uint64_t number;
    fedl_status status;
    if (parse_set_aside_name(name, &number)) { /* not a generation, but numbering skips it */
        if (number > d->highest_set_aside)
            d->highest_set_aside = number;
        return FEDL_OK;
    }
    if (!parse_generation_name(name, &number))
        return FEDL_OK;
    build_path(d, number, d->scratch);
    if (stat(d->scratch, &st) != 0 || !S_ISREG(st.st_mode)) {
        fedl_log(FEDL_LOG_WARN, "%s: not a regular file, not used as a checkpoint", d->scratch);
        return FEDL_OK;
    }
    status = reserve_generations(d, d->count + 1, err);
    if (status != FEDL_OK)
        return status;
    d->generations[d->count++] = number;
    return FEDL_OK;
}

static fedl_status list_generations(fedl_ckpt_dir *d, fedl_error *err)
{
    struct dirent *entry;
    fedl_status st = FEDL_OK;
    DIR *dir = opendir(d->dir);
    if (dir == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot list directory: %s", d->dir,
                              strerror(errno));
    d->count = 0;
    while (st == FEDL_OK && (entry = readdir(dir)) != NULL)
        st = consider_entry(d, entry->d_name, err);
    closedir(dir);
    if (st != FEDL_OK)
        return st;
    if (d->count > 1)
        qsort(d->generations, (size_t)d->count, sizeof *d->generations, compare_newest_first);
    rebuild_paths(d);
    return FEDL_OK;
}

static int has_generation(const fedl_ckpt_dir *d, uint64_t number)
{
    for (int i = 0; i < d->count; i++)
        if (d->generations[i] == number)
            return 1;
    return 0;
}

/* ------------------------------------------------------------ opening */

/* fsync the parent of a directory we just created, so it survives a power
 * loss together with what is written into it. */
static void sync_parent(const fedl_ckpt_dir *d)
{
    const fedl_io *io = d->options.io;
    const char *slash = strrchr(d->dir, '/');
    char *parent = d->scratch;
    int fd;
    if (slash == NULL)
        snprintf(parent, d->path_stride, ".");
    else if (slash == d->dir)
        snprintf(parent, d->path_stride, "/");
    else
        snprintf(parent, d->path_stride, "%.*s", (int)(slash - d->dir), d->dir);
    fd = io->open(io->ud, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0 || io->dir_fsync(io->ud, fd) != 0)
        fedl_log(FEDL_LOG_WARN, "%s: directory fsync after creating %s failed: %s", parent, d->dir,
                 strerror(errno));
    if (fd >= 0)
        io->close(io->ud, fd);
}

static fedl_status ensure_directory(fedl_ckpt_dir *d, fedl_error *err)
{
    struct stat st;
    if (stat(d->dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "%s: exists and is not a directory: cannot hold checkpoints",
                                  d->dir);
        return FEDL_OK;
    }
    if (errno != ENOENT)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot stat: %s", d->dir, strerror(errno));
    if (!d->options.create || d->options.read_only)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: no such checkpoint directory", d->dir);
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST)
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot create directory: %s", d->dir,
                              strerror(errno));
    fedl_log(FEDL_LOG_INFO, "%s: created checkpoint directory", d->dir);
    sync_parent(d);
    return FEDL_OK;
}

/* Read MANIFEST if there is one. A damaged or unreadable one is reported
 * and ignored (never deleted); only running out of memory fails. */
static fedl_status load_manifest(fedl_ckpt_dir *d, fedl_error *err)
{
    struct stat st;
    fedl_error why;
    fedl_status status;
    d->manifest_on_disk = 0;
    fedl_error_clear(&d->manifest_damage);
    if (lstat(d->manifest_path, &st) != 0 && errno == ENOENT)
        return FEDL_OK;
    d->manifest_on_disk = 1;
    status = fedl_manifest_read(d->manifest_path, d->alloc, &d->manifest, &why);
    if (status == FEDL_ERR_NOMEM)
        return fedl_error_set(err, status, "%s", why.message);
    if (status != FEDL_OK)
        d->manifest_damage = why;
    if (status != FEDL_OK)
        fedl_log(FEDL_LOG_WARN,
                 "ignoring damaged manifest (%s); checkpoints are checked by their own CRC-32C "
                 "only until the next save rewrites it",
                 why.message);
    return FEDL_OK;
}

/* Drop manifest entries of generations that are gone (a crash during
 * retention); they are written out with the next save. */
static void prune_manifest(fedl_ckpt_dir *d)
{
    for (size_t i = d->manifest.count; i-- > 0;) {
        uint64_t number;
        const char *name = d->manifest.entries[i].name;
        if (parse_generation_name(name, &number) && !has_generation(d, number)) {
            fedl_log(FEDL_LOG_INFO, "%s/%s: listed in the manifest but gone; dropping the entry",
                     d->dir, name);
            fedl_manifest_remove(&d->manifest, name);
        }
    }
}

static fedl_status setup(fedl_ckpt_dir *d, const char *path, fedl_error *err)
{
    size_t length = strlen(path);
    while (length > 1 && path[length - 1] == '/')
        length--;
    d->dir_length = length;
    d->path_stride = length + 1 + GENERATION_NAME_MAX;
    d->dir = fedl_mem_alloc(d->alloc, length + 1);
    d->scratch = fedl_mem_alloc(d->alloc, d->path_stride);
    d->manifest_path = fedl_mem_alloc(d->alloc, d->path_stride);
    if (d->dir == NULL || d->scratch == NULL || d->manifest_path == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate the directory's state",
                              path);
    memcpy(d->dir, path, length);
    snprintf(d->manifest_path, d->path_stride, "%s/%s", d->dir, FEDL_CKPT_MANIFEST);
    return FEDL_OK;
}

static fedl_status open_steps(fedl_ckpt_dir *d, const char *path, fedl_error *err)
{
    fedl_error why;
    int removed = 0;
    fedl_status st = setup(d, path, err);
    if (st == FEDL_OK)
        st = ensure_directory(d, err);
    if (st != FEDL_OK)
        return st;
    /* A read-only directory can still be loaded from: only warn. */
    if (!d->options.read_only &&
        fedl_durable_clean_orphans(d->options.io, d->dir, &removed, &why) != FEDL_OK)
        fedl_log(FEDL_LOG_WARN, "%s: orphaned temp files not cleaned: %s", d->dir, why.message);
    st = list_generations(d, err);
    if (st == FEDL_OK)
        st = load_manifest(d, err);
    if (st == FEDL_OK)
        prune_manifest(d);
    return st;
}

fedl_status fedl_ckpt_dir_open(const char *path, const fedl_ckpt_dir_options *options,
                               fedl_allocator *alloc, fedl_ckpt_dir **out, fedl_error *err)
{
    fedl_ckpt_dir *d;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint directory: no output");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint directory: empty path");
    if (options != NULL && options->keep < 1)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "%s: keep must be at least 1 generation (got %d)", path,
                              options->keep);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    d = fedl_mem_alloc(alloc, sizeof *d);
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate", path);
    d->alloc = alloc;
    d->options = options != NULL ? *options : fedl_ckpt_dir_defaults();
    if (d->options.io == NULL)
        d->options.io = fedl_io_posix();
    fedl_manifest_init(&d->manifest, alloc);
    st = open_steps(d, path, err);
    if (st != FEDL_OK) {
        fedl_ckpt_dir_close(d);
        return st;
    }
    *out = d;
    return FEDL_OK;
}

void fedl_ckpt_dir_close(fedl_ckpt_dir *d)
{
    fedl_allocator *alloc;
    if (d == NULL)
        return;
    alloc = d->alloc;
    fedl_manifest_free(&d->manifest);
    fedl_mem_free(alloc, d->generations, (size_t)d->capacity * sizeof *d->generations);
    fedl_mem_free(alloc, d->paths, (size_t)d->capacity * d->path_stride);
    fedl_mem_free(alloc, d->dir, d->dir_length + 1);
    fedl_mem_free(alloc, d->scratch, d->path_stride);
    fedl_mem_free(alloc, d->manifest_path, d->path_stride);
    fedl_mem_free(alloc, d, sizeof *d);
}

/* ------------------------------------------------------------ accessors */

int fedl_ckpt_dir_count(const fedl_ckpt_dir *d)
{
    return d != NULL ? d->count : 0;
}

uint64_t fedl_ckpt_dir_generation(const fedl_ckpt_dir *d, int index)
{
    if (d == NULL || index < 0 || index >= d->count)
        return 0;
    return d->generations[index];
}

const char *fedl_ckpt_dir_path(const fedl_ckpt_dir *d, int index)
{
    if (d == NULL || index < 0 || index >= d->count)
        return NULL;
    return path_at(d, index);
}

/* ------------------------------------------------------------ verifying */

/* message without a leading "name: " (the container's messages start with
 * the name they were given). */
static const char *without_name(const char *message, const char *name)
{
    size_t length = strlen(name);
    if (strncmp(message, name, length) == 0 && message[length] == ':' && message[length + 1] == ' ')
        return message + length + 2;
    return message;
}

/* The file's size and SHA-256 against its MANIFEST entry. When the digest
 * differs, the container's own checks say what is damaged (which section,
 * which check), or that the file is whole in itself. */
static fedl_status check_against_manifest(const fedl_manifest_entry *e, const char *name,
                                          const fedl_file_view *view, fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    char actual[2 * FEDL_SHA256_BYTES + 1], listed[2 * FEDL_SHA256_BYTES + 1];
    fedl_container container;
    fedl_error own;
    if ((uint64_t)view->length != e->size)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: %zu bytes, MANIFEST says %llu (%s)", name,
                              view->length, (unsigned long long)e->size,
                              (uint64_t)view->length < e->size ? "truncated" : "grown");
    fedl_sha256(view->bytes, view->length, digest);
    if (memcmp(digest, e->sha256, FEDL_SHA256_BYTES) == 0)
        return FEDL_OK;
    fedl_sha256_hex(digest, actual);
    fedl_sha256_hex(e->sha256, listed);
    if (fedl_container_parse(view->bytes, view->length, name, &container, &own) == FEDL_OK)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: SHA-256 differs from MANIFEST (file %s, MANIFEST %s); the "
                              "file's own CRC-32Cs pass (replaced after MANIFEST was written?)",
                              name, actual, listed);
    return fedl_error_set(err, FEDL_ERR_FORMAT,
                          "%s: SHA-256 differs from MANIFEST (file %s, MANIFEST %s); %s", name,
                          actual, listed, without_name(own.message, name));
}

/* The checks after the manifest's: the container, its kind, and a full
 * decode (every field range-checked), so a generation that verifies can be
 * resumed from. */
static fedl_status check_checkpoint(const fedl_ckpt_dir *d, const char *name,
                                    const fedl_file_view *view, fedl_error *err)
{
    fedl_container container;
    fedl_checkpoint *checkpoint = NULL;
    fedl_status st = fedl_container_parse(view->bytes, view->length, name, &container, err);
    if (st != FEDL_OK)
        return st;
    if (container.file_kind != FEDL_FILE_CHECKPOINT)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: not a checkpoint (file kind %u%s)", name,
                              (unsigned)container.file_kind,
                              container.file_kind == FEDL_FILE_MODEL ? ", a model file" : "");
    st = fedl_checkpoint_decode(view->bytes, view->length, name, d->alloc, &checkpoint, err);
    fedl_checkpoint_free(checkpoint);
    return st;
}

fedl_status fedl_ckpt_dir_verify(const fedl_ckpt_dir *d, int index, fedl_error *err)
{
    const fedl_manifest_entry *e;
    fedl_file_view view;
    const char *path, *name;
    fedl_status st;
    if (d == NULL || index < 0 || index >= d->count)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "checkpoint directory: no generation at index %d (%d present)", index,
                              d != NULL ? d->count : 0);
    path = path_at(d, index);
    name = base_name(d, path);
    st = fedl_file_view_open(path, d->alloc, &view, err);
    if (st != FEDL_OK)
        return st;
    /* Not listed: written just before a crash or while the manifest was
     * damaged; the container's own CRCs still protect it. */
    e = fedl_manifest_find(&d->manifest, name);
    if (e != NULL)
        st = check_against_manifest(e, name, &view, err);
    if (st == FEDL_OK)
        st = check_checkpoint(d, name, &view, err);
    fedl_file_view_close(&view);
    return st;
}

/* fsync the directory after a rename in it; failures are logged. */
static void sync_directory(const fedl_ckpt_dir *d, const char *what)
{
    const fedl_io *io = d->options.io;
    int fd = io->open(io->ud, d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0 || io->dir_fsync(io->ud, fd) != 0)
        fedl_log(FEDL_LOG_WARN,
                 "%s: directory fsync after %s failed: %s (after a power loss the rename may be "
                 "undone; the file is then found damaged and set aside again)",
                 d->dir, what, strerror(errno));
    if (fd >= 0)
        io->close(io->ud, fd);
}

static void remove_from_list(fedl_ckpt_dir *d, int index)
{
    memmove(d->generations + index, d->generations + index + 1,
            (size_t)(d->count - index - 1) * sizeof *d->generations);
    d->count--;
    rebuild_paths(d);
}

/* Rename damaged generation index to "<name>.damaged" and forget it (list
 * and manifest). Returns 1 when set aside, 0 when the rename failed (it
 * then stays a generation); logs either way, with why it is damaged. */
static int set_aside(fedl_ckpt_dir *d, int index, const char *why, int *manifest_changed)
{
    const fedl_io *io = d->options.io;
    const char *path = path_at(d, index), *name = base_name(d, path);
    uint64_t number = d->generations[index];
    char *aside = d->scratch;
    snprintf(aside, d->path_stride, "%s" DAMAGED_SUFFIX, path);
    if (io->rename(io->ud, path, aside) != 0) {
        fedl_log(FEDL_LOG_WARN,
                 "skipping damaged checkpoint %s: %s; cannot set it aside as %s: %s (it stays a "
                 "generation)",
                 path, why, aside, strerror(errno));
        return 0;
    }
    fedl_log(FEDL_LOG_WARN, "skipping damaged checkpoint %s: %s; set aside as %s", path, why,
             aside);
    sync_directory(d, "setting a damaged checkpoint aside");
    if (fedl_manifest_find(&d->manifest, name) != NULL) {
        fedl_manifest_remove(&d->manifest, name);
        *manifest_changed = 1;
    }
    if (number > d->highest_set_aside)
        d->highest_set_aside = number;
    remove_from_list(d, index);
    return 1;
}

int fedl_ckpt_dir_newest_valid(fedl_ckpt_dir *d, fedl_error *first_damage)
{
    fedl_error why;
    int damaged = 0, manifest_changed = 0, found = -1, i = 0;
    fedl_error_clear(first_damage);
    while (d != NULL && i < d->count) {
        fedl_status st = fedl_ckpt_dir_verify(d, i, &why);
        if (st == FEDL_OK) {
            found = i;
            break;
        }
        if (!damaged++ && first_damage != NULL)
            *first_damage = why;
        /* Only a file that failed its checks is set aside; one that could
         * not be checked (I/O error, out of memory) may well be good. */
        if (st == FEDL_ERR_FORMAT && !d->options.read_only &&
            set_aside(d, i, why.message, &manifest_changed))
            continue; /* index i now holds the next older generation */
        if (st != FEDL_ERR_FORMAT || d->options.read_only)
            fedl_log(FEDL_LOG_WARN, "skipping damaged checkpoint %s: %s", path_at(d, i),
                     why.message);
        i++;
    }
    if (manifest_changed &&
        fedl_manifest_write(d->options.io, d->manifest_path, &d->manifest, &why) != FEDL_OK)
        fedl_log(FEDL_LOG_WARN,
                 "%s: manifest not rewritten after setting damaged checkpoints aside: %s (its "
                 "stale entries are dropped when the directory is next opened)",
                 d->dir, why.message);
    return found;
}

fedl_status fedl_ckpt_dir_manifest_status(const fedl_ckpt_dir *d, fedl_error *err)
{
    if (d == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint directory: none given");
    if (d->manifest_damage.status == FEDL_OK) {
        fedl_error_clear(err);
        return FEDL_OK;
    }
    return fedl_error_set(err, d->manifest_damage.status, "%s", d->manifest_damage.message);
}

/* ------------------------------------------------------------ saving */

static fedl_status next_generation(const fedl_ckpt_dir *d, uint64_t *next, fedl_error *err)
{
    uint64_t highest = d->count > 0 ? d->generations[0] : 0, number;
    if (d->highest_set_aside > highest)
        highest = d->highest_set_aside;
    for (size_t i = 0; i < d->manifest.count; i++)
        if (parse_generation_name(d->manifest.entries[i].name, &number) && number > highest)
            highest = number;
    if (highest == UINT64_MAX)
        return fedl_error_set(err, FEDL_ERR_STATE, "%s: generation numbers exhausted", d->dir);
    *next = highest + 1;
    return FEDL_OK;
}

/* Remove a file we wrote, logging (not failing) when that is impossible. */
static void remove_quietly(const fedl_ckpt_dir *d, const char *path)
{
    const fedl_io *io = d->options.io;
    if (io->unlink(io->ud, path) != 0 && errno != ENOENT)
        fedl_log(FEDL_LOG_WARN, "%s: cannot remove after a failed save: %s", path, strerror(errno));
}

/* The manifest write of a save failed. If it failed after its rename (in
 * the directory fsync), MANIFEST already lists the new generation: put the
 * previous one back, so the directory is as before the save. */
static void restore_manifest(fedl_ckpt_dir *d, const char *new_name)
{
    fedl_manifest on_disk;
    fedl_error why;
    int replaced = fedl_manifest_read(d->manifest_path, d->alloc, &on_disk, &why) == FEDL_OK &&
                   fedl_manifest_find(&on_disk, new_name) != NULL;
    fedl_manifest_free(&on_disk);
    if (!replaced)
        return;
    if (!d->manifest_on_disk)
        remove_quietly(d, d->manifest_path);
    else if (fedl_manifest_write(d->options.io, d->manifest_path, &d->manifest, &why) != FEDL_OK)
        fedl_log(FEDL_LOG_WARN, "%s: cannot put the previous manifest back: %s", d->dir,
                 why.message);
}

static fedl_status copy_manifest(const fedl_manifest *from, fedl_allocator *alloc,
                                 fedl_manifest *to, fedl_error *err)
{
    fedl_manifest_init(to, alloc);
    for (size_t i = 0; i < from->count; i++) {
        const fedl_manifest_entry *e = &from->entries[i];
        fedl_status st = fedl_manifest_set(to, e->name, e->size, e->sha256, err);
        if (st != FEDL_OK) {
            fedl_manifest_free(to);
            return st;
        }
    }
    return FEDL_OK;
}

/* Steps (2): hash the new generation and write the manifest that lists it
 * and no longer lists the generations retention is about to delete (one
 * manifest write per save). A crash before those deletions leaves them
 * unlisted, which is harmless: they are checked by their own CRCs and
 * deleted by the next save. On failure the manifest, in memory and on
 * disk, is the previous one. */
static fedl_status record_generation(fedl_ckpt_dir *d, const char *path, fedl_error *err)
{
    uint8_t digest[FEDL_SHA256_BYTES];
    const char *name = base_name(d, path);
    fedl_manifest previous;
    uint64_t size;
    fedl_status st = fedl_file_sha256(path, &size, digest, err);
    if (st != FEDL_OK)
        return st;
    st = copy_manifest(&d->manifest, d->alloc, &previous, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_manifest_set(&d->manifest, name, size, digest, err);
    /* existing generation i becomes i + 1 once the new one is inserted */
    for (int i = d->options.keep - 1; st == FEDL_OK && i >= 0 && i < d->count; i++)
        fedl_manifest_remove(&d->manifest, base_name(d, path_at(d, i)));
    if (st == FEDL_OK)
        st = fedl_manifest_write(d->options.io, d->manifest_path, &d->manifest, err);
    if (st != FEDL_OK) {
        fedl_manifest_free(&d->manifest);
        d->manifest = previous;
        restore_manifest(d, name);
        return st;
    }
    fedl_manifest_free(&previous);
    d->manifest_on_disk = 1;
    fedl_error_clear(&d->manifest_damage); /* a valid MANIFEST replaced the damaged one */
    return FEDL_OK;
}

static void insert_newest(fedl_ckpt_dir *d, uint64_t number)
{
    memmove(d->generations + 1, d->generations, (size_t)d->count * sizeof *d->generations);
    d->generations[0] = number;
    d->count++;
    rebuild_paths(d);
}

/* Step (3): delete generations beyond keep, oldest first (the manifest
 * written in step 2 already leaves them out). Failures here are logged: the
 * save succeeded. */
static void apply_retention(fedl_ckpt_dir *d)
{
    const fedl_io *io = d->options.io;
    while (d->count > d->options.keep) {
        const char *path = path_at(d, d->count - 1);
        if (io->unlink(io->ud, path) != 0 && errno != ENOENT) {
            fedl_log(FEDL_LOG_WARN, "%s: cannot delete old generation: %s (retried next save)",
                     path, strerror(errno));
            break;
        }
        fedl_log(FEDL_LOG_INFO, "%s: deleted (keeping the newest %d)", path, d->options.keep);
        fedl_manifest_remove(&d->manifest, base_name(d, path));
        d->count--;
    }
}

fedl_status fedl_ckpt_dir_save(fedl_ckpt_dir *d, fedl_container_writer *w, uint64_t *generation,
                               fedl_error *err)
{
    uint64_t number = 0;
    fedl_status st;
    if (d == NULL || w == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "checkpoint save: missing argument");
    if (d->options.read_only)
        return fedl_error_set(err, FEDL_ERR_STATE, "%s: opened read-only, cannot save", d->dir);
    st = next_generation(d, &number, err);
    if (st == FEDL_OK) /* reserved now, so nothing can fail after the files are written */
        st = reserve_generations(d, d->count + 1, err);
    if (st != FEDL_OK)
        return st;
    build_path(d, number, d->scratch);
    st = fedl_container_write(w, d->options.io, d->scratch, err);
    if (st == FEDL_OK)
        st = record_generation(d, d->scratch, err);
    if (st != FEDL_OK) {
        /* The generation may be in place when its own directory fsync
         * failed; no generation of this number existed before. */
        remove_quietly(d, d->scratch);
        return st;
    }
    fedl_log(FEDL_LOG_INFO, "%s: saved", d->scratch);
    insert_newest(d, number);
    apply_retention(d);
    if (generation != NULL)
        *generation = number;
    return FEDL_OK;
}
