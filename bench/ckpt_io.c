/*
 * ckpt_io.c - what a training checkpoint costs on this machine's disk, next
 * to plain sequential writes and reads of the same number of bytes.
 *
 *   build/ckpt_io                                   (LeNet-5 and a 10M MLP)
 *   build/ckpt_io --model mlp10m --optim adam --repeat 5 --dir /data
 *   build/ckpt_io --drop-caches                     (root: cold reads too)
 *
 * For each case (a model and an optimiser with its moments) a trainer takes
 * two steps on a small synthetic data set (so the moments are not zero),
 * then every round (--repeat, default 8: a multiple of the 4 writes, so each
 * runs first equally often) times, in rotating order:
 *   ckpt_dir_save    fedl_checkpoint_writer + fedl_ckpt_dir_save: the new
 *                    generation (temp file, write, fsync, rename, directory
 *                    fsync), its SHA-256 for the manifest, the manifest (one
 *                    more durable write) and the removal of the generation
 *                    beyond --keep (3), as `fedl train --ckpt-dir` does;
 *   checkpoint_save  fedl_checkpoint_save to one path (one durable write);
 *   C write+fsync    open(O_CREAT|O_EXCL), write 1 MiB pieces, fsync, close
 *                    of a new file of the same size: the disk's floor;
 *   C durable write  the same plus rename over the old file and directory
 *                    fsync: what fedl's durable write does, minus fedl;
 * and then the reads, again rotating:
 *   checkpoint_load  fedl_checkpoint_load (view, parse, every CRC-32C,
 *                    decode into a new model and state);
 *   trainer_restore  fedl_trainer_restore from that checkpoint (memcpy);
 *   ckpt_dir_verify  manifest size + SHA-256, then the container's CRCs;
 *   C read           read() of the file in 1 MiB pieces;
 * and, in memory, CRC-32C and SHA-256 over the parameters and moments. With
 * --drop-caches (root only) the reads are also timed after
 * `sync; echo 3 > /proc/sys/vm/drop_caches` ("cold"); otherwise every read
 * comes from the page cache (the file was just written).
 *
 * Reported per operation: bytes, median time and min..max over the rounds,
 * MB/s (1 MB = 1e6 bytes) at the median, fsync calls and time in fsync (the
 * fedl operations go through a counting fedl_io), the allocator's peak above
 * what was live before the operation (fedl_allocator_default) and the rise
 * of the resident set (VmHWM after, reset before, minus VmRSS before); then
 * the ratios of paired rounds (fedl / C in the same round), median and
 * min..max. --csv adds one "row,..." line per measurement for
 * bench/ckpt_io.sh, which also runs dd for comparison.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fedl/fedl.h"

#define MIB (1024u * 1024u)
#define MLP10M_SPEC "flatten dense(4096) relu dense(1664) relu dense(10)"
#define SYNTHETIC_SAMPLES 64
#define WARMUP_STEPS 2

/* ------------------------------------------------------------ counting I/O */

/* What went through the I/O layer during one operation. */
typedef struct io_counts {
    uint64_t opens, writes, fsyncs, dir_fsyncs, renames, unlinks;
    uint64_t write_bytes;
    uint64_t write_ns; /* in write() */
    uint64_t fsync_ns; /* in fsync() of files and directories */
    uint64_t unlink_ns;
} io_counts;

static io_counts counts;

static int count_open(void *ud, const char *path, int flags, int mode)
{
    (void)ud;
    counts.opens++;
    return fedl_io_posix()->open(NULL, path, flags, mode);
}

static ssize_t count_write(void *ud, int fd, const void *buf, size_t length)
{
    uint64_t t0 = fedl_time_ns();
    ssize_t n = fedl_io_posix()->write(NULL, fd, buf, length);
    (void)ud;
    counts.write_ns += fedl_time_ns() - t0;
    counts.writes++;
    if (n > 0)
        counts.write_bytes += (uint64_t)n;
    return n;
}

static int count_fsync(void *ud, int fd)
{
    uint64_t t0 = fedl_time_ns();
    int rc = fedl_io_posix()->fsync(NULL, fd);
    (void)ud;
    counts.fsync_ns += fedl_time_ns() - t0;
    counts.fsyncs++;
    return rc;
}

static int count_dir_fsync(void *ud, int fd)
{
    uint64_t t0 = fedl_time_ns();
    int rc = fedl_io_posix()->dir_fsync(NULL, fd);
    (void)ud;
    counts.fsync_ns += fedl_time_ns() - t0;
    counts.dir_fsyncs++;
    return rc;
}

static int count_close(void *ud, int fd)
{
    (void)ud;
    return fedl_io_posix()->close(NULL, fd);
}

static int count_rename(void *ud, const char *from, const char *to)
{
    (void)ud;
    counts.renames++;
    return fedl_io_posix()->rename(NULL, from, to);
}

static int count_unlink(void *ud, const char *path)
{
    uint64_t t0 = fedl_time_ns();
    int rc = fedl_io_posix()->unlink(NULL, path);
    (void)ud;
    counts.unlink_ns += fedl_time_ns() - t0;
    counts.unlinks++;
    return rc;
}

static const fedl_io counting_io = {NULL,         count_open,      count_write,
                                    count_fsync,  count_dir_fsync, count_close,
                                    count_rename, count_unlink};

/* ------------------------------------------------------------- operations */

enum {
    OP_DIR_SAVE,
    OP_PLAIN_SAVE,
    OP_C_WRITE,
    OP_C_DURABLE,
    OP_LOAD,
    OP_RESTORE,
    OP_VERIFY,
    OP_C_READ,
    OP_LOAD_COLD,
    OP_VERIFY_COLD,
    OP_C_READ_COLD,
    OP_CRC,
    OP_SHA,
    OP_MODEL_CREATE,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "ckpt_dir_save",        "checkpoint_save",      "C write+fsync",   "C durable write",
    "checkpoint_load",      "trainer_restore",      "ckpt_dir_verify", "C read",
    "checkpoint_load cold", "ckpt_dir_verify cold", "C read cold",     "CRC-32C (memory)",
    "SHA-256 (memory)",     "model_create (memory)"};

/* Short names for the CSV rows. */
static const char *const op_keys[OP_COUNT] = {
    "dir_save",    "plain_save", "c_write",    "c_durable",   "load",
    "restore",     "verify",     "c_read",     "load_cold",   "verify_cold",
    "c_read_cold", "crc32c_mem", "sha256_mem", "model_create"};

/* One timed operation. */
typedef struct sample {
    int valid;
    double seconds;
    uint64_t bytes;
    io_counts io;
    size_t heap_extra; /* bytes: allocator peak above the live bytes before */
    long rss_rise_kib; /* VmHWM after (reset before) minus VmRSS before; -1 unknown */
} sample;

/* A model + optimiser to checkpoint, and everything measured for it. */
typedef struct bench_case {
    const char *label; /* "lenet5", "mlp10m", or the spec */
    const char *spec;
    fedl_optim_kind optim;
    sample *samples[OP_COUNT]; /* (repeat) each */
} bench_case;

typedef struct bench {
    char root[4096]; /* the fresh directory everything is written in */
    int repeat;
    int keep;
    int drop_caches; /* cold reads too (root only) */
    int csv;
    int keep_files;
    int rotate;           /* round r runs the operations rotated by rotate + r */
    unsigned char *chunk; /* (MIB) the C baselines' buffer */
} bench;

/* The workload of one case: model, trainer, state, checkpoint directory. */
typedef struct workload {
    fedl_model *model;
    fedl_dataset data;
    fedl_trainer *trainer;
    fedl_train_state state;
    fedl_meta_entry meta[2];
    fedl_ckpt_dir *dir;
    char dir_path[4400];
    char plain_path[4400];
    char c_write_path[4400];
    char c_durable_path[4400];
    uint64_t ckpt_bytes; /* size of one checkpoint file */
} workload;

static double median_of(double *v, int n);

static int die(const char *what, const fedl_error *err)
{
    fprintf(stderr, "ckpt_io: %s: %s\n", what, err != NULL ? err->message : strerror(errno));
    return 1;
}

/* ---------------------------------------------------------- process facts */

/* A "Key:   N kB" value of /proc/self/status, or -1. */
static long proc_status_kib(const char *key)
{
    char line[256];
    size_t key_len = strlen(key);
    long value = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
            value = strtol(line + key_len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

/* Reset VmHWM to the current resident set (Linux >= 4.0). */
static int reset_peak_rss(void)
{
    int ok;
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return 0;
    ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static long max_rss_kib(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return -1;
    return usage.ru_maxrss; /* KiB on Linux */
}

static void cpu_model(char *out, size_t size)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, size, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        /* x86: "model name"; Raspberry Pi: "Model" (the board) or "Hardware" */
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0 ||
            strncmp(line, "Hardware", 8) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(out, size, "%s", colon);
                if (strncmp(line, "model name", 10) == 0)
                    break;
            }
        }
    }
    fclose(f);
}

static void load_average(char *out, size_t size)
{
    double a = 0, b = 0, c = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, size, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(out, size, "?");
    if (f != NULL)
        fclose(f);
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type & 0xffffffffu) {
    case 0xEF53u:
        return "ext2/3/4";
    case 0x58465342u:
        return "xfs";
    case 0x9123683Eu:
        return "btrfs";
    case 0xF2F52010u:
        return "f2fs";
    case 0x01021994u:
        return "tmpfs";
    case 0x858458F6u:
        return "ramfs";
    case 0x794C7630u:
        return "overlayfs";
    case 0x6969u:
        return "nfs";
    case 0x65735546u:
        return "fuse";
    case 0x2FC12FC1u:
        return "zfs";
    case 0x4D44u:
        return "vfat";
    case 0x5346544Eu:
        return "ntfs";
    case 0x73717368u:
        return "squashfs";
    case 0x01021997u:
        return "9p";
    case 0x62656572u:
        return "sysfs";
    default:
        return "unknown";
    }
}

/* --------------------------------------------------------------- helpers */

static int drop_page_cache(void)
{
    int ok;
    FILE *f;
    sync();
    f = fopen("/proc/sys/vm/drop_caches", "w");
    if (f == NULL)
        return 0;
    ok = fputs("3", f) >= 0;
    return fclose(f) == 0 && ok;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double median_of(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Remove every entry of dir (regular files, and one level of directories of
 * regular files: the case directories), then dir itself. dir is ours: it
 * was made by mkdtemp. */
static void remove_tree(const char *dir, int depth)
{
    char path[8192];
    struct dirent *e;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0)
            remove_tree(path, depth - 1);
        else if (!S_ISDIR(st.st_mode))
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* --------------------------------------------------------------- workload */

/* A small synthetic data set in the model's input shape: the trainer needs
 * one, and the checkpoint's size does not depend on it. */
static fedl_status make_data(fedl_dataset *ds, fedl_error *err)
{
    uint32_t state = 12345u;
    fedl_allocator *alloc = fedl_allocator_default();
    memset(ds, 0, sizeof *ds);
    ds->alloc = alloc;
    ds->count = SYNTHETIC_SAMPLES;
    ds->capacity = SYNTHETIC_SAMPLES;
    ds->shape = (fedl_shape){1, 28, 28};
    ds->sample_bytes = 28 * 28;
    ds->classes = 10;
    ds->scale = 1.0f / 255.0f;
    ds->shift = 0.0f;
    ds->pixels = fedl_mem_alloc(alloc, ds->count * ds->sample_bytes);
    ds->labels = fedl_mem_alloc(alloc, ds->count);
    if (ds->pixels == NULL || ds->labels == NULL) {
        fedl_dataset_free(ds);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "synthetic data: out of memory");
    }
    for (size_t i = 0; i < ds->count * ds->sample_bytes; i++) {
        state = state * 1664525u + 1013904223u;
        ds->pixels[i] = (uint8_t)(state >> 24);
    }
    for (size_t i = 0; i < ds->count; i++)
        ds->labels[i] = (uint8_t)(i % 10);
    return FEDL_OK;
}

static void workload_free(workload *w)
{
    fedl_ckpt_dir_close(w->dir);
    fedl_trainer_destroy(w->trainer);
    fedl_model_destroy(w->model);
    fedl_dataset_free(&w->data);
    memset(w, 0, sizeof *w);
}

static fedl_status workload_init(const bench *b, const bench_case *c, workload *w, fedl_error *err)
{
    fedl_train_config config = fedl_train_config_defaults();
    fedl_ckpt_dir_options options = fedl_ckpt_dir_defaults();
    fedl_status st;
    int done = 0;
    memset(w, 0, sizeof *w);
    snprintf(w->dir_path, sizeof w->dir_path, "%s/%s-%s", b->root, c->label,
             fedl_optim_kind_name(c->optim));
    snprintf(w->plain_path, sizeof w->plain_path, "%s/plain.fedl", b->root);
    snprintf(w->c_write_path, sizeof w->c_write_path, "%s/c_write.bin", b->root);
    snprintf(w->c_durable_path, sizeof w->c_durable_path, "%s/c_durable.bin", b->root);
    st = make_data(&w->data, err);
    if (st == FEDL_OK)
        st = fedl_model_create(c->spec, w->data.shape, 1, NULL, &w->model, err);
    if (st != FEDL_OK)
        return st;
    config.batch = 32;
    config.optim = fedl_optim_defaults(c->optim);
    if (c->optim == FEDL_OPTIM_SGD) {
        config.optim.momentum = 0.9f;
        config.lr.base_lr = 0.05f;
    } else {
        config.lr.base_lr = 0.001f;
    }
    st = fedl_trainer_create(w->model, &w->data, &config, NULL, &w->trainer, err);
    for (int i = 0; st == FEDL_OK && i < WARMUP_STEPS; i++)
        st = fedl_trainer_step(w->trainer, &done, err);
    if (st != FEDL_OK)
        return st;
    /* The metadata `fedl train` writes. */
    w->meta[0] =
        (fedl_meta_entry){"fedl.version", (const uint8_t *)fedl_version(), strlen(fedl_version())};
    w->meta[1] = (fedl_meta_entry){"train.epochs", (const uint8_t *)"1", 1};
    fedl_trainer_state(w->trainer, w->meta, 2, &w->state);
    options.keep = b->keep;
    options.io = &counting_io;
    return fedl_ckpt_dir_open(w->dir_path, &options, NULL, &w->dir, err);
}

/* --------------------------------------------------------------- timing */

typedef struct probe {
    uint64_t t0;
    size_t live0;
    long rss0;
} probe;

static void probe_start(probe *p)
{
    fedl_allocator *a = fedl_allocator_default();
    memset(&counts, 0, sizeof counts);
    reset_peak_rss();
    p->rss0 = proc_status_kib("VmRSS");
    p->live0 = fedl_allocator_stats(a).live_bytes;
    fedl_allocator_reset_peak(a);
    p->t0 = fedl_time_ns();
}

static void probe_stop(const probe *p, uint64_t bytes, sample *s)
{
    uint64_t t1 = fedl_time_ns();
    fedl_mem_stats stats = fedl_allocator_stats(fedl_allocator_default());
    long hwm = proc_status_kib("VmHWM");
    s->valid = 1;
    s->seconds = (double)(t1 - p->t0) / 1e9;
    s->bytes = bytes;
    s->io = counts;
    s->heap_extra = stats.peak_bytes > p->live0 ? stats.peak_bytes - p->live0 : 0;
    s->rss_rise_kib = hwm >= 0 && p->rss0 >= 0 ? hwm - p->rss0 : -1;
}

/* Write bytes of the 1 MiB chunk to fd through the counting I/O. */
static int write_all(const bench *b, int fd, uint64_t bytes)
{
    while (bytes > 0) {
        size_t n = bytes < MIB ? (size_t)bytes : MIB;
        ssize_t w = counting_io.write(NULL, fd, b->chunk, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        bytes -= (uint64_t)w;
    }
    return 0;
}

/* open(O_CREAT|O_EXCL), write, fsync, close: a new file, like dd conv=fsync
 * after rm. The old file is removed before the clock starts. */
static int c_write(const bench *b, const char *path, uint64_t bytes, sample *s)
{
    probe p;
    int fd, rc;
    unlink(path);
    probe_start(&p);
    fd = counting_io.open(NULL, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    rc = write_all(b, fd, bytes);
    if (rc == 0)
        rc = counting_io.fsync(NULL, fd);
    if (counting_io.close(NULL, fd) != 0)
        rc = -1;
    probe_stop(&p, bytes, s);
    return rc;
}

/* What fedl's durable write does, without fedl: temp file, write, fsync,
 * close, rename over the old file, fsync of the directory. */
static int c_durable(const bench *b, const char *path, const char *dir, uint64_t bytes, sample *s)
{
    char temp[4500];
    probe p;
    int fd, rc;
    snprintf(temp, sizeof temp, "%s.tmp", path);
    unlink(temp);
    probe_start(&p);
    fd = counting_io.open(NULL, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    rc = write_all(b, fd, bytes);
    if (rc == 0)
        rc = counting_io.fsync(NULL, fd);
    if (counting_io.close(NULL, fd) != 0)
        rc = -1;
    if (rc == 0)
        rc = counting_io.rename(NULL, temp, path);
    if (rc == 0) {
        fd = counting_io.open(NULL, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        rc = fd < 0 ? -1 : counting_io.dir_fsync(NULL, fd);
        if (fd >= 0)
            counting_io.close(NULL, fd);
    }
    probe_stop(&p, bytes, s);
    return rc;
}

static int c_read(const bench *b, const char *path, sample *s)
{
    probe p;
    uint64_t total = 0;
    ssize_t n;
    int fd;
    probe_start(&p);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((n = read(fd, b->chunk, MIB)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        total += (uint64_t)n;
    }
    close(fd);
    probe_stop(&p, total, s);
    return 0;
}

static fedl_status dir_save(workload *w, sample *s, fedl_error *err)
{
    fedl_container_writer *writer = NULL;
    uint64_t generation = 0, bytes = 0;
    probe p;
    fedl_status st;
    probe_start(&p);
    st = fedl_checkpoint_writer(w->model, &w->state, NULL, &writer, err);
    if (st == FEDL_OK) {
        bytes = (uint64_t)fedl_container_size(writer);
        st = fedl_ckpt_dir_save(w->dir, writer, &generation, err);
    }
    fedl_container_writer_destroy(writer);
    probe_stop(&p, bytes, s);
    w->ckpt_bytes = bytes;
    return st;
}

static fedl_status plain_save(workload *w, sample *s, fedl_error *err)
{
    probe p;
    fedl_status st;
    probe_start(&p);
    st = fedl_checkpoint_save(&counting_io, w->plain_path, w->model, &w->state, err);
    probe_stop(&p, 0, s);
    s->bytes = file_size(w->plain_path);
    return st;
}

/* Load the newest generation, then restore the trainer from it. */
static fedl_status load_restore(workload *w, sample *load, sample *restore, fedl_error *err)
{
    char path[4400];
    fedl_checkpoint *ckpt = NULL;
    probe p;
    fedl_status st;
    snprintf(path, sizeof path, "%s", fedl_ckpt_dir_path(w->dir, 0));
    probe_start(&p);
    st = fedl_checkpoint_load(path, NULL, &ckpt, err);
    probe_stop(&p, file_size(path), load);
    if (st == FEDL_OK && restore != NULL) {
        probe_start(&p);
        st = fedl_trainer_restore(w->trainer, ckpt, err);
        probe_stop(&p,
                   (uint64_t)(fedl_model_param_count(w->model) + w->state.optim_state_count) *
                       sizeof(float),
                   restore);
    }
    fedl_checkpoint_free(ckpt);
    if (st == FEDL_OK) /* the restore rewrote the trainer; its state pointers still hold */
        fedl_trainer_state(w->trainer, w->meta, 2, &w->state);
    return st;
}

static fedl_status verify(workload *w, sample *s, fedl_error *err)
{
    probe p;
    fedl_status st;
    uint64_t bytes = file_size(fedl_ckpt_dir_path(w->dir, 0));
    probe_start(&p);
    st = fedl_ckpt_dir_verify(w->dir, 0, err);
    probe_stop(&p, bytes, s);
    return st;
}

/* CRC-32C and SHA-256 over the parameters and the moments, in memory: the
 * CPU part of writing (CRCs) and of the manifest (SHA-256). */
static void checksums(workload *w, sample *crc, sample *sha)
{
    const float *params = fedl_model_params(w->model);
    size_t param_bytes = fedl_model_param_count(w->model) * sizeof(float);
    size_t state_bytes = w->state.optim_state_count * sizeof(float);
    uint8_t digest[FEDL_SHA256_BYTES];
    fedl_sha256_ctx ctx;
    volatile uint32_t sink;
    uint32_t c;
    probe p;
    probe_start(&p);
    c = fedl_crc32c(0, params, param_bytes);
    if (state_bytes > 0)
        c = fedl_crc32c(c, w->state.optim_state, state_bytes);
    probe_stop(&p, param_bytes + state_bytes, crc);
    sink = c;
    probe_start(&p);
    fedl_sha256_init(&ctx);
    fedl_sha256_update(&ctx, params, param_bytes);
    if (state_bytes > 0)
        fedl_sha256_update(&ctx, w->state.optim_state, state_bytes);
    fedl_sha256_final(&ctx, digest);
    probe_stop(&p, param_bytes + state_bytes, sha);
    sink = digest[0];
    (void)sink;
}

/* fedl_model_create of the same spec (parameters and gradients allocated,
 * parameters initialised): the part of a load that builds the model before
 * the stored parameters are copied in. */
static fedl_status model_create(workload *w, sample *s, fedl_error *err)
{
    fedl_model *m = NULL;
    probe p;
    fedl_status st;
    probe_start(&p);
    st = fedl_model_create(fedl_model_spec(w->model), fedl_model_input_shape(w->model), 1, NULL, &m,
                           err);
    probe_stop(&p, fedl_model_param_count(w->model) * sizeof(float), s);
    fedl_model_destroy(m);
    return st;
}

/* ----------------------------------------------------------------- rounds */

enum { WRITE_OPS = 4, READ_OPS = 3 };

static int run_write_op(const bench *b, workload *w, int which, sample *samples[OP_COUNT], int r,
                        fedl_error *err)
{
    switch (which) {
    case 0:
        return dir_save(w, &samples[OP_DIR_SAVE][r], err) == FEDL_OK ? 0
                                                                     : die("ckpt_dir_save", err);
    case 1:
        return plain_save(w, &samples[OP_PLAIN_SAVE][r], err) == FEDL_OK
                   ? 0
                   : die("checkpoint_save", err);
    case 2:
        return c_write(b, w->c_write_path, w->ckpt_bytes, &samples[OP_C_WRITE][r]) == 0
                   ? 0
                   : die("C write+fsync", NULL);
    default:
        return c_durable(b, w->c_durable_path, b->root, w->ckpt_bytes, &samples[OP_C_DURABLE][r]) ==
                       0
                   ? 0
                   : die("C durable write", NULL);
    }
}

static int run_read_op(const bench *b, workload *w, int which, int cold, sample *samples[OP_COUNT],
                       int r, fedl_error *err)
{
    if (cold && !drop_page_cache())
        return die("drop_caches", NULL);
    switch (which) {
    case 0:
        return load_restore(w, &samples[cold ? OP_LOAD_COLD : OP_LOAD][r],
                            cold ? NULL : &samples[OP_RESTORE][r], err) == FEDL_OK
                   ? 0
                   : die("checkpoint_load / trainer_restore", err);
    case 1:
        return verify(w, &samples[cold ? OP_VERIFY_COLD : OP_VERIFY][r], err) == FEDL_OK
                   ? 0
                   : die("ckpt_dir_verify", err);
    default:
        return c_read(b, fedl_ckpt_dir_path(w->dir, 0),
                      &samples[cold ? OP_C_READ_COLD : OP_C_READ][r]) == 0
                   ? 0
                   : die("C read", NULL);
    }
}

/* One round: the writes in rotated order, then the reads (warm, and cold
 * when asked), then the in-memory checksums. */
static int run_round(const bench *b, workload *w, sample *samples[OP_COUNT], int r, int rotation)
{
    fedl_error err = {0};
    for (int i = 0; i < WRITE_OPS; i++) {
        if (run_write_op(b, w, (i + rotation) % WRITE_OPS, samples, r, &err) != 0)
            return 1;
    }
    for (int cold = 0; cold <= b->drop_caches; cold++)
        for (int i = 0; i < READ_OPS; i++)
            if (run_read_op(b, w, (i + rotation) % READ_OPS, cold, samples, r, &err) != 0)
                return 1;
    checksums(w, &samples[OP_CRC][r], &samples[OP_SHA][r]);
    if (model_create(w, &samples[OP_MODEL_CREATE][r], &err) != FEDL_OK)
        return die("model_create", &err);
    return 0;
}

/* ----------------------------------------------------------------- report */

static void print_csv(const bench *b, const bench_case *c)
{
    for (int op = 0; op < OP_COUNT; op++)
        for (int r = 0; r < b->repeat; r++) {
            const sample *s = &c->samples[op][r];
            if (!s->valid)
                continue;
            printf("row,%s,%s,%s,%d,%llu,%.9f,%llu,%llu,%.9f,%zu,%ld\n", c->label,
                   fedl_optim_kind_name(c->optim), op_keys[op], r + 1, (unsigned long long)s->bytes,
                   s->seconds, (unsigned long long)s->io.fsyncs,
                   (unsigned long long)s->io.dir_fsyncs, (double)s->io.fsync_ns / 1e9,
                   s->heap_extra, s->rss_rise_kib);
        }
}

static void print_ratio(const bench *b, const bench_case *c, int num, int den)
{
    double ratios[256];
    int n = 0;
    for (int r = 0; r < b->repeat && n < 256; r++) {
        const sample *x = &c->samples[num][r], *y = &c->samples[den][r];
        if (x->valid && y->valid && y->seconds > 0)
            ratios[n++] = x->seconds / y->seconds;
    }
    if (n == 0)
        return;
    double med = median_of(ratios, n);
    printf("  %-22s / %-22s %7.2fx  (%.2f..%.2f over %d rounds)\n", op_names[num], op_names[den],
           med, ratios[0], ratios[n - 1], n);
}

/* Where an operation's time went, medians over the rounds. */
static void print_breakdown(const bench *b, const bench_case *c, int op, const char *rest)
{
    double total[256], wr[256], fs[256], ul[256], other[256];
    int n = 0;
    const sample *last = NULL;
    for (int r = 0; r < b->repeat && n < 256; r++) {
        const sample *s = &c->samples[op][r];
        if (!s->valid)
            continue;
        total[n] = s->seconds * 1e3;
        wr[n] = (double)s->io.write_ns / 1e6;
        fs[n] = (double)s->io.fsync_ns / 1e6;
        ul[n] = (double)s->io.unlink_ns / 1e6;
        other[n] = total[n] - wr[n] - fs[n] - ul[n];
        last = s;
        n++;
    }
    if (n == 0)
        return;
    printf("  %s, medians: %.1f ms = write() %.1f (%llu calls) + fsync %.1f (%llu files, %llu "
           "directories) + unlink %.1f (%llu) + the rest %.1f (%s)\n",
           op_names[op], median_of(total, n), median_of(wr, n), (unsigned long long)last->io.writes,
           median_of(fs, n), (unsigned long long)last->io.fsyncs,
           (unsigned long long)last->io.dir_fsyncs, median_of(ul, n),
           (unsigned long long)last->io.unlinks, median_of(other, n), rest);
}

static void print_case(const bench *b, const bench_case *c, const workload *w, long rss_setup_kib)
{
    size_t params = fedl_model_param_count(w->model);
    printf("\n%s, %s%s: %zu parameters, %zu optimiser floats; checkpoint %llu bytes "
           "(params %zu + moments %zu + the rest %lld)\n",
           c->label, fedl_optim_kind_name(c->optim),
           c->optim == FEDL_OPTIM_SGD ? " momentum 0.9" : "", params, w->state.optim_state_count,
           (unsigned long long)w->ckpt_bytes, params * sizeof(float),
           w->state.optim_state_count * sizeof(float),
           (long long)w->ckpt_bytes -
               (long long)((params + w->state.optim_state_count) * sizeof(float)));
    printf("  spec: %s\n", fedl_model_spec(w->model));
    printf("  peak RSS after setup (model, grads, moments, activations): %.1f MiB\n",
           (double)rss_setup_kib / 1024.0);
    printf("  %-22s %11s %10s %19s %8s %6s %8s %8s %10s %9s\n", "operation", "bytes", "median ms",
           "min..max ms", "MB/s", "fsyncs", "fsync ms", "write ms", "heap+ KiB", "RSS+ KiB");
    for (int op = 0; op < OP_COUNT; op++) {
        double t[256];
        int n = 0;
        const sample *last = NULL;
        size_t heap = 0;
        long rss = -1;
        double fsync_ms[256], write_ms[256];
        for (int r = 0; r < b->repeat && n < 256; r++) {
            const sample *s = &c->samples[op][r];
            if (!s->valid)
                continue;
            fsync_ms[n] = (double)s->io.fsync_ns / 1e6;
            write_ms[n] = (double)s->io.write_ns / 1e6;
            t[n++] = s->seconds;
            last = s;
            if (s->heap_extra > heap)
                heap = s->heap_extra;
            if (s->rss_rise_kib > rss)
                rss = s->rss_rise_kib;
        }
        if (n == 0)
            continue;
        double med = median_of(t, n), fmed = median_of(fsync_ms, n), wmed = median_of(write_ms, n);
        char range[64], fs[32];
        snprintf(range, sizeof range, "%.3f..%.3f", t[0] * 1e3, t[n - 1] * 1e3);
        if (last->io.fsyncs + last->io.dir_fsyncs > 0)
            snprintf(fs, sizeof fs, "%llu+%llud", (unsigned long long)last->io.fsyncs,
                     (unsigned long long)last->io.dir_fsyncs);
        else
            snprintf(fs, sizeof fs, "-");
        printf("  %-22s %11llu %10.3f %19s %8.1f %6s %8.3f %8.3f %10.1f %9ld\n", op_names[op],
               (unsigned long long)last->bytes, med * 1e3, range,
               med > 0 ? (double)last->bytes / med / 1e6 : 0.0, fs, fmed, wmed,
               (double)heap / 1024.0, rss);
    }
    print_breakdown(b, c, OP_DIR_SAVE,
                    "opens, renames, CRC-32C, SHA-256 of the new file read back, manifests");
    print_breakdown(b, c, OP_PLAIN_SAVE, "open, rename, CRC-32C of every section");
    print_breakdown(b, c, OP_C_DURABLE, "open, rename");
    printf("  ratios, paired by round (median, min..max):\n");
    print_ratio(b, c, OP_DIR_SAVE, OP_C_DURABLE);
    print_ratio(b, c, OP_DIR_SAVE, OP_C_WRITE);
    print_ratio(b, c, OP_PLAIN_SAVE, OP_C_DURABLE);
    print_ratio(b, c, OP_PLAIN_SAVE, OP_C_WRITE);
    print_ratio(b, c, OP_DIR_SAVE, OP_PLAIN_SAVE);
    print_ratio(b, c, OP_LOAD, OP_C_READ);
    print_ratio(b, c, OP_VERIFY, OP_C_READ);
    if (b->drop_caches) {
        print_ratio(b, c, OP_LOAD_COLD, OP_C_READ_COLD);
        print_ratio(b, c, OP_VERIFY_COLD, OP_C_READ_COLD);
    }
    if (b->csv)
        print_csv(b, c);
    fflush(stdout);
}

/* ------------------------------------------------------------------- main */

static int run_case(const bench *b, bench_case *c)
{
    workload w;
    fedl_error err = {0};
    sample scratch_storage[OP_COUNT];
    sample *scratch[OP_COUNT];
    long rss_setup;
    int rc = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        c->samples[op] = calloc((size_t)b->repeat, sizeof(sample));
        scratch[op] = &scratch_storage[op];
        if (c->samples[op] == NULL) {
            fprintf(stderr, "ckpt_io: out of memory\n");
            return 1;
        }
    }
    if (workload_init(b, c, &w, &err) != FEDL_OK) {
        workload_free(&w);
        if (err.status == FEDL_ERR_UNSUPPORTED)
            fprintf(stderr, "ckpt_io: %s (this build's checkpoint code is not in yet)\n",
                    err.message);
        return die(c->label, &err);
    }
    rss_setup = max_rss_kib();
    /* Warm-up, not recorded: fill the directory to --keep generations so
     * that every recorded save also removes one (the steady state of a
     * long run), and run every other operation once. */
    for (int i = 0; i < b->keep && rc == 0; i++)
        rc = run_write_op(b, &w, 0, scratch, 0, &err);
    memset(scratch_storage, 0, sizeof scratch_storage);
    if (rc == 0)
        rc = run_round(b, &w, scratch, 0, 0);
    for (int r = 0; r < b->repeat && rc == 0; r++)
        rc = run_round(b, &w, c->samples, r, b->rotate + r);
    if (rc == 0)
        print_case(b, c, &w, rss_setup);
    workload_free(&w);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ckpt_io [--dir DIR] [--repeat N] [--model lenet5|mlp10m|mlp|SPEC]\n"
            "               [--optim sgd|adam|both] [--keep K] [--drop-caches] [--csv]\n"
            "               [--rotate R] [--keep-files]\n"
            "Checkpoint save/load/verify time against plain write+fsync and read of the\n"
            "same bytes, in a fresh directory under DIR [.]. Without --model: LeNet-5 with\n"
            "SGD momentum, the 10M MLP (%s) with SGD momentum and with Adam.\n"
            "--drop-caches (root) also times the reads after dropping the page cache.\n"
            "Round r runs the operations in an order rotated by R + r [R = 0].\n",
            MLP10M_SPEC);
}

int main(int argc, char **argv)
{
    bench b;
    bench_case cases[4];
    const char *dir = ".", *model = NULL, *optim = "sgd";
    char cpu[256], fsline[256], load[64];
    struct statfs sfs;
    struct statvfs svfs;
    struct utsname uts;
    int ncases = 0, rc = 0;
    memset(&b, 0, sizeof b);
    memset(cases, 0, sizeof cases);
    b.repeat = 8;
    b.keep = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            b.repeat = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--optim") == 0 && i + 1 < argc) {
            optim = argv[++i];
        } else if (strcmp(argv[i], "--rotate") == 0 && i + 1 < argc) {
            b.rotate = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
            b.keep = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--drop-caches") == 0) {
            b.drop_caches = 1;
        } else if (strcmp(argv[i], "--csv") == 0) {
            b.csv = 1;
        } else if (strcmp(argv[i], "--keep-files") == 0) {
            b.keep_files = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (b.repeat < 1 || b.repeat > 256 || b.keep < 1 || b.rotate < 0) {
        fprintf(stderr, "ckpt_io: --repeat must be 1..256, --keep >= 1, --rotate >= 0\n");
        return 2;
    }
    if (b.drop_caches && geteuid() != 0) {
        fprintf(stderr, "ckpt_io: --drop-caches needs root; reads are from the page cache only\n");
        b.drop_caches = 0;
    }
    if (model == NULL) {
        cases[ncases++] = (bench_case){"lenet5", "lenet5", FEDL_OPTIM_SGD, {NULL}};
        cases[ncases++] = (bench_case){"mlp10m", MLP10M_SPEC, FEDL_OPTIM_SGD, {NULL}};
        cases[ncases++] = (bench_case){"mlp10m", MLP10M_SPEC, FEDL_OPTIM_ADAM, {NULL}};
    } else {
        const char *spec = strcmp(model, "mlp10m") == 0 ? MLP10M_SPEC : model;
        const char *label =
            fedl_model_preset(model) != NULL || strcmp(model, "mlp10m") == 0 ? model : "spec";
        if (strcmp(optim, "sgd") == 0 || strcmp(optim, "both") == 0)
            cases[ncases++] = (bench_case){label, spec, FEDL_OPTIM_SGD, {NULL}};
        if (strcmp(optim, "adam") == 0 || strcmp(optim, "both") == 0)
            cases[ncases++] = (bench_case){label, spec, FEDL_OPTIM_ADAM, {NULL}};
        if (ncases == 0) {
            fprintf(stderr, "ckpt_io: --optim must be sgd, adam or both\n");
            return 2;
        }
    }

    snprintf(b.root, sizeof b.root, "%s/ckpt_io.XXXXXX", dir);
    if (mkdtemp(b.root) == NULL) {
        fprintf(stderr, "ckpt_io: cannot create a directory under %s: %s\n", dir, strerror(errno));
        return 1;
    }
    b.chunk = malloc(MIB);
    if (b.chunk == NULL) {
        fprintf(stderr, "ckpt_io: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < MIB; i++)
        b.chunk[i] = (unsigned char)(i * 131u + 7u);

    cpu_model(cpu, sizeof cpu);
    if (uname(&uts) != 0)
        snprintf(uts.release, sizeof uts.release, "?");
    if (statfs(b.root, &sfs) == 0 && statvfs(b.root, &svfs) == 0)
        snprintf(fsline, sizeof fsline, "%s (statfs type 0x%lx), %.1f GB free", fs_name(sfs.f_type),
                 (unsigned long)sfs.f_type & 0xffffffffu,
                 (double)svfs.f_bavail * (double)svfs.f_frsize / 1e9);
    else
        snprintf(fsline, sizeof fsline, "unknown (statfs: %s)", strerror(errno));
    load_average(load, sizeof load);
    printf("ckpt_io: %s; kernel %s; %ld cores; load average %s\n", cpu, uts.release,
           sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("directory %s: %s\n", b.root, fsline);
    if (statfs(b.root, &sfs) == 0 &&
        ((unsigned long)sfs.f_type == 0x01021994u || (unsigned long)sfs.f_type == 0x858458F6u))
        printf("WARNING: %s is in memory (%s): fsync does nothing there and these figures say\n"
               "         nothing about a disk; use --dir on a disk-backed filesystem\n",
               b.root, fs_name(sfs.f_type));
    printf("%d recorded rounds after one warm-up round, operations in rotating order; keep %d "
           "generations; times in ms, MB/s = 1e6 bytes/s at the median\n",
           b.repeat, b.keep);
    printf("reads: %s\n", b.drop_caches
                              ? "warm (page cache) and cold (sync + drop_caches before each)"
                              : "from the page cache (file just written; not dropped)");
    printf("fsyncs: file + directory (d) fsyncs per operation; fsync ms, write ms: time inside "
           "those calls (median); heap+: fedl allocator peak above live before; RSS+: VmHWM "
           "rise\n");
    fflush(stdout);

    for (int i = 0; i < ncases && rc == 0; i++)
        rc = run_case(&b, &cases[i]);
    printf("\npeak RSS of the process (ru_maxrss): %.1f MiB\n", (double)max_rss_kib() / 1024.0);
    if (!b.keep_files)
        remove_tree(b.root, 1);
    else
        printf("files kept in %s\n", b.root);
    for (int i = 0; i < ncases; i++)
        for (int op = 0; op < OP_COUNT; op++)
            free(cases[i].samples[op]);
    free(b.chunk);
    return rc;
}
