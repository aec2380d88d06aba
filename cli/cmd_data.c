/*
 * cmd_data.c - `fedl data`: manifests of data directories, conversion of IDX
 * data sets to CSV, and a one-pass summary of CSV files.
 *
 *   manifest DIR [--out FILE]        list every file of DIR with its size and
 *                                    SHA-256 in FILE (default DIR/MANIFEST)
 *   verify DIR [--manifest FILE]     check DIR's files against the manifest,
 *                                    and name the files it does not list
 *   convert --from idx DIR --to csv OUT
 *                                    write an MNIST-layout split as CSV
 *                                    (label,pixel0,...), plain or gzip, as a
 *                                    durable file (temp, fsync, rename)
 *   inspect FILE                     rows, columns, per-column type, range,
 *                                    mean, missing values and the classes of
 *                                    the label column, in bounded memory
 *
 * Exit codes: 0 all good, 1 damaged or failed, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

#define DEFAULT_MANIFEST "MANIFEST"

static const char data_help[] =
    "usage: fedl data <command> [options]\n\n"
    "commands:\n"
    "  manifest DIR [--out FILE]      write the size and SHA-256 of every file of DIR\n"
    "                                 to FILE [DIR/MANIFEST]\n"
    "  verify DIR [--manifest FILE]   check DIR's files against FILE [DIR/MANIFEST];\n"
    "                                 exit 1 naming every missing, truncated, changed or\n"
    "                                 unlisted file\n"
    "  convert --from idx DIR --to csv OUT.csv [--split train|test] [--gzip]\n"
    "                                 write an MNIST-layout data set as CSV\n"
    "                                 (label,pixel0,...,pixelN-1), plain or gzip\n"
    "  inspect FILE.csv [--label NAME|INDEX] [--json] [--all]\n"
    "                                 rows, columns, per-column type, min, max, mean,\n"
    "                                 missing values and class counts, in one pass\n\n"
    "Run 'fedl data <command> --help' for the options of a command.\n";

/* "DIR/name" in a string from malloc, or NULL. */
static char *join_path(const char *dir, const char *name)
{
    size_t length = strlen(dir) + strlen(name) + 2;
    char *path = malloc(length);
    if (path != NULL)
        snprintf(path, length, "%s/%s", dir, name);
    return path;
}

/* The basename of file if file lies directly in dir (compared by real
 * path, so "data/MANIFEST" and "./data/../data/MANIFEST" agree), else
 * NULL. */
static const char *name_inside(const char *file, const char *dir)
{
    const char *slash = strrchr(file, '/');
    size_t parent_length = slash == NULL ? 0 : slash == file ? 1 : (size_t)(slash - file);
    char *parent = slash == NULL ? strdup(".") : strndup(file, parent_length);
    char *real_parent = parent ? realpath(parent, NULL) : NULL;
    char *real_dir = realpath(dir, NULL);
    int inside = real_parent != NULL && real_dir != NULL && strcmp(real_parent, real_dir) == 0;
    free(parent);
    free(real_parent);
    free(real_dir);
    return inside ? (slash ? slash + 1 : file) : NULL;
}

/* The file a manifest at `manifest` leaves out of DIR's listing: its own
 * name when it lies in dir, else DIR/MANIFEST (a manifest, not data). The
 * same rule for writing and for verifying. */
static const char *manifest_skip_name(const char *manifest, const char *dir)
{
    const char *inside = name_inside(manifest, dir);
    return inside != NULL ? inside : DEFAULT_MANIFEST;
}

/* ------------------------------------------------------------ manifest */

static void print_entries(const fedl_manifest *m)
{
    for (size_t i = 0; i < m->count; i++) {
        char hex[2 * FEDL_SHA256_BYTES + 1];
        fedl_sha256_hex(m->entries[i].sha256, hex);
        printf("  %12llu  %s  %s\n", (unsigned long long)m->entries[i].size, hex,
               m->entries[i].name);
    }
}

static int data_manifest(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    const cli_option options[] = {
        {"out", CLI_STRING, &out, "FILE", "write the manifest here [DIR/MANIFEST]", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"DIR", &dir, 1, 1, 0};
    fedl_manifest m;
    fedl_error err = {0};
    char *default_out = NULL;
    const char *skip;
    int rc = cli_parse_positionals(
        "data manifest",
        "Lists every regular file of DIR (not recursive, skipping names that start with\n"
        "'.', the manifest itself and DIR/MANIFEST) with its size and SHA-256.\n",
        options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (out == NULL) {
        default_out = join_path(dir, DEFAULT_MANIFEST);
        if (default_out == NULL) {
            fprintf(stderr, "fedl data manifest: out of memory\n");
            return 1;
        }
        out = default_out;
    }
    /* The manifest must not list itself; written elsewhere, it still
     * leaves out DIR/MANIFEST, which is a manifest and not data. */
    skip = manifest_skip_name(out, dir);
    fedl_manifest_init(&m, NULL);
    if (fedl_manifest_build_dir(dir, skip, NULL, &m, &err) != FEDL_OK ||
        fedl_manifest_write(NULL, out, &m, &err) != FEDL_OK) {
        fprintf(stderr, "fedl data manifest: %s\n", err.message);
        rc = 1;
    } else {
        print_entries(&m);
        printf("wrote %s (%zu files)\n", out, m.count);
    }
    fedl_manifest_free(&m);
    free(default_out);
    return rc;
}

/* -------------------------------------------------------------- verify */

#define UNLISTED_SHOWN 20 /* unlisted files named before "... and more" */
#define UNLISTED_SUFFIX ": not in the manifest"

/* The name in fedl_manifest_check_unlisted's message "<dir>/<name>: not in
 * the manifest", copied to name; 0 if the message is not of that form. */
static int unlisted_name(const char *message, const char *dir, char *name, size_t size)
{
    size_t dir_length = strlen(dir), length = strlen(message),
           suffix_length = strlen(UNLISTED_SUFFIX);
    if (length <= dir_length + 1 + suffix_length || strncmp(message, dir, dir_length) != 0 ||
        message[dir_length] != '/' ||
        strcmp(message + length - suffix_length, UNLISTED_SUFFIX) != 0)
        return 0;
    length -= dir_length + 1 + suffix_length;
    if (length >= size)
        return 0;
    memcpy(name, message + dir_length + 1, length);
    name[length] = '\0';
    return 1;
}

/* Print the files of dir that m does not list (the first UNLISTED_SHOWN in
 * name order, then a count); returns how many there are, or -1 (printed)
 * when the directory cannot be read. Each name found is added to a copy of
 * m (digest unused) so that the next call finds the next one. */
static long report_unlisted(const fedl_manifest *m, const char *dir, const char *skip)
{
    static const uint8_t unused[FEDL_SHA256_BYTES];
    char name[FEDL_MANIFEST_NAME_MAX + 1];
    fedl_manifest seen;
    fedl_error err = {0};
    fedl_status st = FEDL_OK;
    long found = 0;
    fedl_manifest_init(&seen, NULL);
    for (size_t i = 0; i < m->count && st == FEDL_OK; i++)
        st = fedl_manifest_set(&seen, m->entries[i].name, 0, unused, &err);
    while (st == FEDL_OK) {
        st = fedl_manifest_check_unlisted(&seen, dir, skip, &err);
        if (st == FEDL_OK)
            break;
        if (st != FEDL_ERR_FORMAT || !unlisted_name(err.message, dir, name, sizeof name)) {
            printf("  ERROR: %s\n", err.message);
            found = -1;
            break;
        }
        if (found++ < UNLISTED_SHOWN)
            printf("  UNLISTED: %s\n", err.message);
        /* a name a manifest cannot hold ends the listing (it was named) */
        st = fedl_manifest_set(&seen, name, 0, unused, &err);
    }
    if (found > UNLISTED_SHOWN)
        printf("  ... and %ld more files not in the manifest\n", found - UNLISTED_SHOWN);
    fedl_manifest_free(&seen);
    return found;
}

/* Check every entry (not only up to the first failure) and print each
 * failure; returns how many failed. */
static size_t verify_entries(const fedl_manifest *m, const char *dir)
{
    size_t damaged = 0;
    for (size_t i = 0; i < m->count; i++) {
        fedl_error err = {0};
        if (fedl_manifest_check_file(m, dir, m->entries[i].name, &err) != FEDL_OK) {
            printf("  DAMAGED: %s\n", err.message);
            damaged++;
        }
    }
    return damaged;
}

static int data_verify(int argc, char **argv)
{
    const char *dir = NULL, *manifest = NULL;
    const cli_option options[] = {{"manifest", CLI_STRING, &manifest, "FILE",
                                   "the manifest to check against [DIR/MANIFEST]", 0, 0},
                                  {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"DIR", &dir, 1, 1, 0};
    fedl_manifest m;
    fedl_error err = {0};
    char *default_manifest = NULL;
    size_t damaged;
    long unlisted;
    int rc = cli_parse_positionals(
        "data verify",
        "Checks the size and SHA-256 of every file the manifest lists, and that DIR holds\n"
        "no other data file (same rules as 'fedl data manifest'). Exit 0: all match;\n"
        "1: a file is missing, truncated, changed or not listed (each one is named).\n",
        options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (manifest == NULL) {
        default_manifest = join_path(dir, DEFAULT_MANIFEST);
        if (default_manifest == NULL) {
            fprintf(stderr, "fedl data verify: out of memory\n");
            return 1;
        }
        manifest = default_manifest;
    }
    if (fedl_manifest_read(manifest, NULL, &m, &err) != FEDL_OK) {
        fprintf(stderr, "fedl data verify: %s\n", err.message);
        free(default_manifest);
        return 1;
    }
    damaged = verify_entries(&m, dir);
    unlisted = report_unlisted(&m, dir, manifest_skip_name(manifest, dir));
    if (damaged == 0 && unlisted == 0) {
        printf("%s: %zu files ok\n", dir, m.count);
    } else {
        printf("%s: %zu of %zu files damaged", dir, damaged, m.count);
        if (unlisted > 0)
            printf(", %ld not in the manifest", unlisted);
        printf("\n");
        rc = 1;
    }
    fedl_manifest_free(&m);
    free(default_manifest);
    return rc;
}

/* ------------------------------------------------------------- common */

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *group(uint64_t value, char *buf, size_t size)
{
    return cli_group_digits((unsigned long long)value, buf, size);
}

/* ------------------------------------------------------------- convert */

#define CONVERT_BUFFER_BYTES ((size_t)1 << 20) /* bytes of CSV text per write */
#define CONVERT_PATH_MAX 4096
#define CONVERT_GZIP_LEVEL 1 /* Fashion-MNIST: 7x the speed of level 6, 20% bigger */

/* The temp file being written, for the signal handler: a conversion cut
 * short by Ctrl-C or kill removes its temp file instead of leaving up to a
 * few hundred MB behind. (SIGKILL or a crash still leaves it, under fedl's
 * temp name "<target>.tmp.<pid>", which `fedl data manifest` does not list
 * and fedl_durable_clean_orphans removes.) */
static char convert_temp_path[CONVERT_PATH_MAX];
static volatile sig_atomic_t convert_temp_live;

static void convert_on_signal(int sig)
{
    if (convert_temp_live)
        unlink(convert_temp_path); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int convert_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define CONVERT_SIGNAL_COUNT (sizeof convert_signals / sizeof convert_signals[0])

/* Where the CSV text goes: the temp file of a durable write (or standard
 * output), through deflate for gzip. No streaming form of
 * fedl_durable_write exists (it takes the whole file at once), so the same
 * steps are taken here through fedl_io_posix(): create "<path>.tmp.<pid>"
 * with O_EXCL, write, fsync, close, rename over path, fsync the directory;
 * any failure before the rename removes the temp file and leaves an old
 * path untouched. */
typedef struct csv_sink {
    const fedl_io *io;
    const char *path; /* the target; "-" = standard output */
    char temp[CONVERT_PATH_MAX];
    int fd;
    int to_stdout;
    int gzip;
    int deflating; /* z is initialised */
    z_stream z;
    unsigned char *text;   /* (capacity) CSV text not yet written */
    unsigned char *packed; /* (capacity) deflate output */
    size_t used, capacity; /* bytes */
    uint64_t text_bytes;   /* CSV bytes handed to the sink */
    uint64_t file_bytes;   /* bytes written to the file */
    struct sigaction old_actions[CONVERT_SIGNAL_COUNT];
    int handlers_set;
} csv_sink;

static fedl_status sink_write_all(csv_sink *s, const unsigned char *bytes, size_t length,
                                  fedl_error *err)
{
    size_t done = 0;
    while (done < length) {
        ssize_t n = s->io->write(s->io->ud, s->fd, bytes + done, length - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return fedl_error_set(err, FEDL_ERR_IO, "%s: write failed at byte %llu: %s",
                                  s->to_stdout ? "<stdout>" : s->path,
                                  (unsigned long long)(s->file_bytes + done), strerror(errno));
        }
        done += (size_t)n;
    }
    s->file_bytes += length;
    return FEDL_OK;
}

/* Write out the gathered text (deflated for gzip); finish ends the gzip
 * stream. */
static fedl_status sink_flush(csv_sink *s, int finish, fedl_error *err)
{
    fedl_status status = FEDL_OK;
    int rc;
    if (!s->gzip) {
        status = sink_write_all(s, s->text, s->used, err);
        s->used = 0;
        return status;
    }
    if (s->used == 0 && !finish)
        return FEDL_OK;
    s->z.next_in = s->text;
    s->z.avail_in = (uInt)s->used;
    do {
        s->z.next_out = s->packed;
        s->z.avail_out = (uInt)s->capacity;
        rc = deflate(&s->z, finish ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR)
            return fedl_error_set(err, FEDL_ERR_IO, "%s: zlib deflate failed", s->path);
        status = sink_write_all(s, s->packed, s->capacity - s->z.avail_out, err);
        if (status != FEDL_OK)
            return status;
    } while (finish ? rc != Z_STREAM_END : s->z.avail_out == 0);
    s->used = 0;
    return FEDL_OK;
}

static fedl_status sink_append(csv_sink *s, const void *bytes, size_t length, fedl_error *err)
{
    const unsigned char *p = bytes;
    while (length > 0) {
        size_t room = s->capacity - s->used, take = length < room ? length : room;
        fedl_status status;
        memcpy(s->text + s->used, p, take);
        s->used += take;
        s->text_bytes += take;
        p += take;
        length -= take;
        if (s->used == s->capacity && (status = sink_flush(s, 0, err)) != FEDL_OK)
            return status;
    }
    return FEDL_OK;
}

/* Release everything; a temp file still there (a failure before the
 * rename) is removed. */
static void sink_abort(csv_sink *s)
{
    if (!s->to_stdout && s->fd >= 0)
        s->io->close(s->io->ud, s->fd);
    s->fd = -1;
    if (convert_temp_live) {
        s->io->unlink(s->io->ud, s->temp);
        convert_temp_live = 0;
    }
    if (s->handlers_set) {
        for (size_t i = 0; i < CONVERT_SIGNAL_COUNT; i++)
            sigaction(convert_signals[i], &s->old_actions[i], NULL);
        s->handlers_set = 0;
    }
    if (s->deflating)
        deflateEnd(&s->z);
    s->deflating = 0;
    free(s->text);
    free(s->packed);
    s->text = s->packed = NULL;
}

/* min_capacity: the longest piece the caller writes in place (a row). */
static fedl_status sink_open(csv_sink *s, const char *path, int gzip, int level,
                             size_t min_capacity, fedl_error *err)
{
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
    struct sigaction action;
    memset(s, 0, sizeof *s);
    s->io = fedl_io_posix();
    s->path = path;
    s->fd = -1;
    s->gzip = gzip;
    s->to_stdout = strcmp(path, "-") == 0;
    s->capacity = min_capacity > CONVERT_BUFFER_BYTES ? min_capacity : CONVERT_BUFFER_BYTES;
    s->text = malloc(s->capacity);
    s->packed = gzip ? malloc(s->capacity) : NULL;
    if (s->text == NULL || (gzip && s->packed == NULL)) {
        sink_abort(s);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate %zu bytes of buffer", path,
                              s->capacity);
    }
    if (gzip) {
        /* windowBits 15 + 16: a gzip header and trailer around the deflate
         * stream, so the file is an ordinary .gz that gzip -t checks. */
        if (deflateInit2(&s->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            sink_abort(s);
            return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot start zlib's deflate", path);
        }
        s->deflating = 1;
    }
    if (s->to_stdout) {
        s->fd = STDOUT_FILENO;
        return FEDL_OK;
    }
    if (snprintf(s->temp, sizeof s->temp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof s->temp) {
        sink_abort(s);
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "%s: path too long", path);
    }
    memcpy(convert_temp_path, s->temp, sizeof convert_temp_path);
    memset(&action, 0, sizeof action);
    action.sa_handler = convert_on_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < CONVERT_SIGNAL_COUNT; i++)
        sigaction(convert_signals[i], &action, &s->old_actions[i]);
    s->handlers_set = 1;
    convert_temp_live = 1; /* from before the create: a signal in between is no leak */
    s->fd = s->io->open(s->io->ud, s->temp, flags, 0644);
    if (s->fd < 0 && errno == EEXIST) {
        /* a leftover of an earlier process with our pid: it is not live */
        if (s->io->unlink(s->io->ud, s->temp) == 0 || errno == ENOENT)
            s->fd = s->io->open(s->io->ud, s->temp, flags, 0644);
    }
    if (s->fd < 0) {
        int e = errno;
        sink_abort(s);
        return fedl_error_set(err, FEDL_ERR_IO, "%s: cannot create the temp file %s: %s", path,
                              s->temp, strerror(e));
    }
    return FEDL_OK;
}

/* Finish the stream and make the file durable: fsync, close, rename over
 * the target, fsync the directory (see csv_sink). */
static fedl_status sink_commit(csv_sink *s, fedl_error *err)
{
    char dir[CONVERT_PATH_MAX];
    const char *slash = strrchr(s->path, '/');
    fedl_status status = sink_flush(s, 1, err);
    int dir_fd, e;
    if (status != FEDL_OK)
        return status;
    if (s->to_stdout)
        return FEDL_OK;
    if (s->io->fsync(s->io->ud, s->fd) != 0)
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: fsync failed: %s (an old file is left as it was)", s->path,
                              strerror(errno));
    e = s->io->close(s->io->ud, s->fd);
    s->fd = -1;
    if (e != 0)
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: close failed: %s (an old file is left as it was)", s->path,
                              strerror(errno));
    if (s->io->rename(s->io->ud, s->temp, s->path) != 0)
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: cannot rename %s over it: %s (an old file is left as it was)",
                              s->path, s->temp, strerror(errno));
    convert_temp_live = 0;
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == s->path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->path), s->path);
    dir_fd = s->io->open(s->io->ud, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir_fd < 0 || s->io->dir_fsync(s->io->ud, dir_fd) != 0) {
        e = errno;
        if (dir_fd >= 0)
            s->io->close(s->io->ud, dir_fd);
        return fedl_error_set(err, FEDL_ERR_IO,
                              "%s: directory fsync of %s failed: %s (the file is in place but may "
                              "not survive a power loss)",
                              s->path, dir, strerror(e));
    }
    s->io->close(s->io->ud, dir_fd);
    return FEDL_OK;
}

/* "0," to "255,": the text of every byte value and a comma, 4 bytes a slot,
 * so a pixel is one 4-byte copy and a length step. */
static char byte_text[256][4];
static unsigned char byte_text_length[256];

static void make_byte_text(void)
{
    for (int v = 0; v < 256; v++) {
        char tmp[8];
        int n = snprintf(tmp, sizeof tmp, "%d,", v);
        memcpy(byte_text[v], tmp, 4);
        byte_text_length[v] = (unsigned char)n;
    }
}

/* Header "label,pixel0,...,pixel<n-1>" and one row per sample: the label,
 * then the sample's bytes in (C, H, W) order, as decimal integers. */
static fedl_status write_dataset_csv(const fedl_dataset *ds, csv_sink *s, fedl_error *err)
{
    const size_t row_max = 4 * (1 + ds->sample_bytes); /* bytes: "255," per value */
    fedl_status status = sink_append(s, "label", 5, err);
    make_byte_text();
    for (size_t j = 0; j < ds->sample_bytes && status == FEDL_OK; j++) {
        char name[32];
        int n = snprintf(name, sizeof name, ",pixel%zu", j);
        status = sink_append(s, name, (size_t)n, err);
    }
    if (status == FEDL_OK)
        status = sink_append(s, "\n", 1, err);
    for (size_t i = 0; i < ds->count && status == FEDL_OK; i++) {
        const uint8_t *pixels = ds->pixels + i * ds->sample_bytes; /* (C, H, W) */
        unsigned char *start, *p;
        if (s->capacity - s->used < row_max)
            status = sink_flush(s, 0, err);
        if (status != FEDL_OK)
            break;
        start = p = s->text + s->used;
        memcpy(p, byte_text[ds->labels[i]], 4);
        p += byte_text_length[ds->labels[i]];
        for (size_t j = 0; j < ds->sample_bytes; j++) {
            memcpy(p, byte_text[pixels[j]], 4);
            p += byte_text_length[pixels[j]];
        }
        p[-1] = '\n'; /* the last comma ends the row */
        s->used += (size_t)(p - start);
        s->text_bytes += (uint64_t)(p - start);
    }
    return status;
}

static int data_convert(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *split_name = "train", *paths[2] = {NULL, NULL};
    int gzip = 0, level = 0;
    const cli_option options[] = {
        {"from", CLI_STRING, &from, "FORMAT", "the input's format: idx (required)", 0, 0},
        {"to", CLI_STRING, &to, "FORMAT", "the output's format: csv (required)", 0, 0},
        {"split", CLI_STRING, &split_name, "NAME", "train or test [train]", 0, 0},
        {"gzip", CLI_FLAG, &gzip, NULL, "write gzip (implied by an OUT ending in .gz)", 0, 0},
        {"gzip-level", CLI_INT, &level, "N",
         "zlib level, 1 (fast) to 9 (small); implies --gzip [1]", 1, 9},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"DIR OUT.csv", paths, 2, 2, 0};
    fedl_dataset ds;
    fedl_split split;
    fedl_error err = {0};
    csv_sink sink;
    double t0, t1, t2;
    size_t out_length;
    char d1[32], d2[32], d3[32];
    FILE *report;
    int rc = cli_parse_positionals(
        "data convert",
        "Writes the train (60,000 samples for Fashion-MNIST) or test split of an\n"
        "MNIST-layout directory (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],\n"
        "t10k-...) as CSV: a header label,pixel0,...,pixel<N-1> (pixels in (C, H, W)\n"
        "order), then one row per sample, the label first, integers 0-255, LF line ends.\n"
        "OUT is written durably: a temp file OUT.tmp.<pid>, fsync, rename over OUT,\n"
        "fsync of the directory; on any failure (or Ctrl-C) the temp file is removed and\n"
        "an old OUT is left as it was. OUT '-' writes to standard output.\n"
        "Example: fedl data convert --from idx /usr/share/datasets/fashion-mnist --to csv\n"
        "         train.csv\n",
        options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (from == NULL || to == NULL) {
        fprintf(stderr, "fedl data convert: --from idx and --to csv are required (see 'fedl data "
                        "convert --help')\n");
        return 2;
    }
    if (strcmp(from, "idx") != 0 || strcmp(to, "csv") != 0) {
        fprintf(stderr,
                "fedl data convert: cannot convert from '%s' to '%s': only --from idx --to csv "
                "(see 'fedl data convert --help')\n",
                from, to);
        return 2;
    }
    if (strcmp(split_name, "train") == 0) {
        split = FEDL_SPLIT_TRAIN;
    } else if (strcmp(split_name, "test") == 0) {
        split = FEDL_SPLIT_TEST;
    } else {
        fprintf(stderr,
                "fedl data convert: --split: '%s' is neither train nor test (see 'fedl data "
                "convert --help')\n",
                split_name);
        return 2;
    }
    out_length = strlen(paths[1]);
    if ((out_length > 3 && strcmp(paths[1] + out_length - 3, ".gz") == 0) || level != 0)
        gzip = 1;
    if (level == 0)
        level = CONVERT_GZIP_LEVEL;
    /* with the CSV on standard output, the report goes to standard error */
    report = strcmp(paths[1], "-") == 0 ? stderr : stdout;

    t0 = seconds_now();
    if (fedl_dataset_load_mnist_dir(paths[0], split, NULL, &ds, &err) != FEDL_OK) {
        fprintf(stderr, "fedl data convert: %s\n", err.message);
        return 1;
    }
    t1 = seconds_now();
    if (sink_open(&sink, paths[1], gzip, level, 4 * (1 + ds.sample_bytes), &err) != FEDL_OK ||
        write_dataset_csv(&ds, &sink, &err) != FEDL_OK || sink_commit(&sink, &err) != FEDL_OK) {
        fprintf(stderr, "fedl data convert: %s\n", err.message);
        sink_abort(&sink); /* removes the temp file; a no-op after a failed open */
        fedl_dataset_free(&ds);
        return 1;
    }
    t2 = seconds_now();
    fprintf(report, "wrote %s: %s rows x %zu columns (label,pixel0..pixel%zu), %s bytes",
            strcmp(paths[1], "-") == 0 ? "<stdout>" : paths[1], group(ds.count, d1, sizeof d1),
            ds.sample_bytes + 1, ds.sample_bytes - 1, group(sink.text_bytes, d2, sizeof d2));
    if (gzip)
        fprintf(report, " (gzip level %d: %s bytes)", level, group(sink.file_bytes, d3, sizeof d3));
    fprintf(report, "\n  read the IDX %s split in %.2f s, wrote the CSV in %.2f s (%.0f MB/s)\n",
            split_name, t1 - t0, t2 - t1,
            t2 > t1 ? (double)sink.text_bytes / (t2 - t1) / 1e6 : 0.0);
    sink_abort(&sink); /* nothing left to remove: frees the buffers */
    fedl_dataset_free(&ds);
    return 0;
}

/* ------------------------------------------------------------- inspect */

#define INSPECT_MAX_CLASSES 1000 /* distinct label values counted */
#define INSPECT_CLASS_SLOTS 2048 /* hash slots: a power of two > 2 x the above */
#define INSPECT_CLASS_TEXT_MAX                                                                     \
    255                            /* bytes: a longer label value ends the count (as in training)  \
                                    */
#define INSPECT_SAMPLE_BYTES 40    /* bytes of a value quoted in a note */
#define INSPECT_COMPACT_COLUMNS 24 /* more columns than this: the compact table */
#define INSPECT_HEAD_COLUMNS 6     /* compact table: the first ... */
#define INSPECT_TAIL_COLUMNS 3     /* ... and the last columns */
#define INSPECT_NOTABLE_SHOWN 30   /* compact table: text, empty, missing columns shown */
#define INSPECT_CLASSES_SHOWN 20   /* classes listed without --all */
#define INSPECT_NAME_WIDTH_MAX 20  /* bytes of a column name in the table */

typedef enum column_type { COLUMN_EMPTY, COLUMN_INTEGER, COLUMN_FLOAT, COLUMN_TEXT } column_type;

static const char *const column_type_names[] = {"empty", "integer", "float", "text"};

/* What one pass has learnt of a column. Types only widen, empty (no value
 * yet) -> integer -> float -> text, and a text column's values are no
 * longer converted. Numbers are what fedl's reader makes of them: int64 for
 * integers, float32 for the others. */
typedef struct column_stats {
    column_type type;
    uint64_t present;                /* values that are not missing */
    uint64_t missing;                /* empty fields, or spaces and tabs only */
    uint64_t numbers;                /* numeric values summed (present, until text) */
    int64_t int_min, int_max;        /* integer columns */
    double min, max;                 /* float columns */
    double shift;                    /* the first value: sums are of (x - shift), */
    double sum, sum_squares;         /* which keeps the variance accurate */
    size_t longest;                  /* bytes of the longest value */
    uint64_t text_line, text_column; /* text columns: the first value that is no number */
    char text_sample[INSPECT_SAMPLE_BYTES + 1]; /* and its text, cut */
    size_t text_sample_length;
} column_stats;

static int is_blank_text(const char *text, size_t length)
{
    for (size_t k = 0; k < length; k++)
        if (text[k] != ' ' && text[k] != '\t')
            return 0;
    return 1;
}

/* At most max bytes of text, not cut inside a UTF-8 sequence. */
static size_t cut_utf8(const char *text, size_t length, size_t max)
{
    if (length <= max)
        return length;
    while (max > 0 && ((unsigned char)text[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static void column_add_number(column_stats *c, double x)
{
    double d;
    if (c->numbers == 0)
        c->shift = x;
    d = x - c->shift;
    c->sum += d;
    c->sum_squares += d * d;
    c->numbers++;
    c->present++;
}

/* The field as a float32; 0 when it is no number. Widens an empty or
 * integer column to float. */
static int column_add_float(column_stats *c, const fedl_csv_reader *r, size_t i)
{
    int missing = 0;
    float real;
    if (fedl_csv_field_float(r, i, &real, &missing, NULL) != FEDL_OK)
        return 0;
    if (missing) {
        c->missing++;
        return 1;
    }
    if (c->type == COLUMN_INTEGER) {
        c->min = (double)c->int_min;
        c->max = (double)c->int_max;
    } else if (c->type == COLUMN_EMPTY) {
        c->min = c->max = real;
    }
    c->type = COLUMN_FLOAT;
    if (real < c->min)
        c->min = real;
    if (real > c->max)
        c->max = real;
    column_add_number(c, real);
    return 1;
}

static void column_add(column_stats *c, const fedl_csv_reader *r, size_t i)
{
    size_t length;
    const char *text = fedl_csv_field(r, i, &length);
    int missing = 0;
    int64_t integer;
    if (length > c->longest)
        c->longest = length;
    switch (c->type) {
    case COLUMN_EMPTY:
    case COLUMN_INTEGER:
        if (fedl_csv_field_int(r, i, &integer, &missing, NULL) == FEDL_OK) {
            if (missing) {
                c->missing++;
                return;
            }
            if (c->type == COLUMN_EMPTY || integer < c->int_min)
                c->int_min = integer;
            if (c->type == COLUMN_EMPTY || integer > c->int_max)
                c->int_max = integer;
            c->type = COLUMN_INTEGER;
            column_add_number(c, (double)integer);
            return;
        }
        if (column_add_float(c, r, i))
            return;
        break;
    case COLUMN_FLOAT:
        if (column_add_float(c, r, i))
            return;
        break;
    case COLUMN_TEXT:
        if (is_blank_text(text, length))
            c->missing++;
        else
            c->present++;
        return;
    }
    /* not a number: the column is text from here on */
    c->type = COLUMN_TEXT;
    c->text_line = fedl_csv_field_line(r, i);
    c->text_column = fedl_csv_field_column(r, i);
    c->text_sample_length = cut_utf8(text, length, INSPECT_SAMPLE_BYTES);
    memcpy(c->text_sample, text, c->text_sample_length);
    c->text_sample[c->text_sample_length] = '\0';
    c->present++;
}

static double column_mean(const column_stats *c)
{
    return c->shift + c->sum / (double)c->numbers;
}

/* Sample standard deviation (n - 1, as pandas), or -1 for fewer than 2
 * values. */
static double column_std(const column_stats *c)
{
    double n = (double)c->numbers, variance;
    if (c->numbers < 2)
        return -1.0;
    variance = (c->sum_squares - c->sum * c->sum / n) / (n - 1.0);
    return variance > 0.0 ? sqrt(variance) : 0.0;
}

static int column_is_numeric(const column_stats *c)
{
    return c->type == COLUMN_INTEGER || c->type == COLUMN_FLOAT;
}

static double column_min(const column_stats *c)
{
    return c->type == COLUMN_INTEGER ? (double)c->int_min : c->min;
}

static double column_max(const column_stats *c)
{
    return c->type == COLUMN_INTEGER ? (double)c->int_max : c->max;
}

/* ------------------------------------------------------ class counts */

/* The distinct values of the label column and their counts, in a fixed
 * hash table: integers by value (so "7" and "07" are one class), anything
 * else by its text. Counting stops (and says why) past
 * INSPECT_MAX_CLASSES values or at a value longer than
 * INSPECT_CLASS_TEXT_MAX bytes, so the memory stays bounded. */
typedef struct class_entry {
    uint64_t count; /* 0: a free slot */
    int64_t value;  /* an integer class */
    char *text;     /* a text class (NUL-terminated); NULL for an integer */
    size_t length;
} class_entry;

typedef struct class_table {
    class_entry *slots;  /* (INSPECT_CLASS_SLOTS) */
    size_t distinct;     /* classes */
    uint64_t counted;    /* rows with a label value */
    const char *gave_up; /* why counting stopped, or NULL */
} class_table;

static void class_table_clear(class_table *t)
{
    if (t->slots != NULL)
        for (size_t k = 0; k < INSPECT_CLASS_SLOTS; k++)
            free(t->slots[k].text);
    free(t->slots);
    t->slots = NULL;
}

static void class_table_give_up(class_table *t, const char *why)
{
    class_table_clear(t);
    t->gave_up = why;
}

static uint64_t hash_integer(int64_t value)
{
    uint64_t x = (uint64_t)value + 0x9E3779B97F4A7C15ULL; /* splitmix64's finaliser */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t hash_text(const char *text, size_t length)
{
    uint64_t h = 0xCBF29CE484222325ULL; /* FNV-1a */
    for (size_t k = 0; k < length; k++)
        h = (h ^ (unsigned char)text[k]) * 0x100000001B3ULL;
    return h;
}

static void class_table_add(class_table *t, const fedl_csv_reader *r, size_t i)
{
    const size_t mask = INSPECT_CLASS_SLOTS - 1;
    const char *text = NULL;
    size_t length = 0, k;
    int64_t value = 0;
    int missing = 0, is_integer;
    class_entry *e;
    if (t->slots == NULL)
        return;
    is_integer = fedl_csv_field_int(r, i, &value, &missing, NULL) == FEDL_OK;
    if (missing)
        return;
    if (!is_integer) {
        text = fedl_csv_field(r, i, &length);
        if (is_blank_text(text, length))
            return;
        if (length > INSPECT_CLASS_TEXT_MAX) {
            class_table_give_up(t, "a value longer than 255 bytes");
            return;
        }
    }
    for (k = (is_integer ? hash_integer(value) : hash_text(text, length)) & mask;;
         k = (k + 1) & mask) {
        e = &t->slots[k];
        if (e->count == 0)
            break;
        if (is_integer
                ? e->text == NULL && e->value == value
                : e->text != NULL && e->length == length && memcmp(e->text, text, length) == 0) {
            e->count++;
            t->counted++;
            return;
        }
    }
    if (t->distinct == INSPECT_MAX_CLASSES) {
        class_table_give_up(t, "too many distinct values (more than 1,000)");
        return;
    }
    if (!is_integer) {
        e->text = malloc(length + 1);
        if (e->text == NULL) {
            class_table_give_up(t, "out of memory");
            return;
        }
        memcpy(e->text, text, length);
        e->text[length] = '\0';
        e->length = length;
    }
    e->value = value;
    e->count = 1;
    t->distinct++;
    t->counted++;
}

/* Integers first, by value; then text, by bytes. */
static int compare_classes(const void *a, const void *b)
{
    const class_entry *x = *(const class_entry *const *)a, *y = *(const class_entry *const *)b;
    size_t shorter;
    int c;
    if ((x->text == NULL) != (y->text == NULL))
        return x->text == NULL ? -1 : 1;
    if (x->text == NULL)
        return x->value < y->value ? -1 : x->value > y->value;
    shorter = x->length < y->length ? x->length : y->length;
    c = memcmp(x->text, y->text, shorter);
    if (c != 0)
        return c;
    return x->length < y->length ? -1 : x->length > y->length;
}

/* The classes in order, in an array from malloc (NULL when there are none
 * or it cannot be had). */
static const class_entry **class_table_sorted(const class_table *t)
{
    const class_entry **sorted;
    size_t n = 0;
    if (t->slots == NULL || t->distinct == 0)
        return NULL;
    sorted = malloc(t->distinct * sizeof *sorted);
    if (sorted == NULL)
        return NULL;
    for (size_t k = 0; k < INSPECT_CLASS_SLOTS; k++)
        if (t->slots[k].count > 0)
            sorted[n++] = &t->slots[k];
    qsort(sorted, n, sizeof *sorted, compare_classes);
    return sorted;
}

/* ------------------------------------------------------------ output */

/* Text for a terminal: control bytes escaped, at most max bytes, "..."
 * when cut. */
static void print_text(FILE *out, const char *text, size_t length, size_t max)
{
    size_t show = cut_utf8(text, length, max);
    for (size_t k = 0; k < show; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c == '\n')
            fputs("\\n", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    if (show < length)
        fputs("...", out);
}

/* Terminal columns print_text takes for the same arguments (a UTF-8
 * sequence counts as one). */
static int text_width(const char *text, size_t length, size_t max)
{
    size_t show = cut_utf8(text, length, max);
    int width = show < length ? 3 : 0;
    for (size_t k = 0; k < show; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c == '\n' || c == '\r' || c == '\t')
            width += 2;
        else if (c < 0x20 || c == 0x7f)
            width += 4;
        else if ((c & 0xC0) != 0x80)
            width += 1;
    }
    return width;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0. */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4;
    else
        return 0;
    if (n > left)
        return 0;
    if (p[0] == 0xE0) /* no overlong forms, no surrogates, nothing past U+10FFFF */
        lo = 0xA0;
    else if (p[0] == 0xED)
        hi = 0x9F;
    else if (p[0] == 0xF0)
        lo = 0x90;
    else if (p[0] == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF)
            return 0;
    return n;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void print_json_string(FILE *out, const char *text, size_t length)
{
    const unsigned char *p = (const unsigned char *)text;
    fputc('"', out);
    for (size_t k = 0; k < length;) {
        size_t n = utf8_sequence(p + k, length - k);
        if (n == 0) {
            fputs("\\ufffd", out);
            k++;
        } else if (n > 1) {
            fwrite(p + k, 1, n, out);
            k += n;
        } else {
            unsigned char c = p[k++];
            if (c == '"' || c == '\\')
                fprintf(out, "\\%c", c);
            else if (c == '\n')
                fputs("\\n", out);
            else if (c == '\r')
                fputs("\\r", out);
            else if (c == '\t')
                fputs("\\t", out);
            else if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

typedef struct inspect_run {
    const char *name; /* the file, or "<stdin>" */
    int has_header;
    size_t columns;
    column_stats *stats; /* (columns) */
    fedl_csv_reader *reader;
    uint64_t rows; /* records read (the header is no row) */
    long label;    /* column of the class counts, -1: none */
    class_table classes;
    int failed;          /* stopped at a malformed record */
    fedl_error err;      /* its message */
    uint64_t file_bytes; /* on disk; 0 for standard input */
    double seconds;
    int all; /* --all: every column, every class */
} inspect_run;

/* Column i's name; "" without a header. */
static const char *column_name(const inspect_run *run, size_t i, size_t *length)
{
    const char *name = run->has_header ? fedl_csv_header_name(run->reader, i, length) : NULL;
    if (name == NULL) {
        *length = 0;
        return "";
    }
    return name;
}

static void format_number(char *buf, size_t size, const column_stats *c, double value)
{
    if (c->type == COLUMN_INTEGER)
        snprintf(buf, size, "%lld", (long long)value);
    else
        snprintf(buf, size, "%.7g", value);
}

static void print_column_row(const inspect_run *run, size_t i, int index_width, int name_width)
{
    const column_stats *c = &run->stats[i];
    char min[32] = "-", max[32] = "-", mean[32] = "-", std[32] = "-", missing[32];
    size_t length;
    const char *name = column_name(run, i, &length);
    int shown;
    if (column_is_numeric(c)) {
        double s = column_std(c);
        if (c->type == COLUMN_INTEGER) {
            snprintf(min, sizeof min, "%lld", (long long)c->int_min);
            snprintf(max, sizeof max, "%lld", (long long)c->int_max);
        } else {
            snprintf(min, sizeof min, "%.7g", c->min);
            snprintf(max, sizeof max, "%.7g", c->max);
        }
        snprintf(mean, sizeof mean, "%.6g", column_mean(c));
        if (s >= 0.0)
            snprintf(std, sizeof std, "%.6g", s);
    }
    printf("  %*zu  ", index_width, i);
    print_text(stdout, name, length, INSPECT_NAME_WIDTH_MAX);
    shown = text_width(name, length, INSPECT_NAME_WIDTH_MAX);
    printf("%*s  %-7s %11s %11s %11s %11s %9s", name_width > shown ? name_width - shown : 0, "",
           column_type_names[c->type], min, max, mean, std,
           group(c->missing, missing, sizeof missing));
    if (c->type == COLUMN_TEXT) {
        printf("  first non-number \"");
        print_text(stdout, c->text_sample, c->text_sample_length, INSPECT_SAMPLE_BYTES);
        printf("\" at %llu:%llu", (unsigned long long)c->text_line,
               (unsigned long long)c->text_column);
    } else if (c->type == COLUMN_EMPTY) {
        printf("  no values");
    }
    printf("\n");
}

/* One line for the columns [first, last] the compact table leaves out. */
static void print_column_gap(const inspect_run *run, size_t first, size_t last, int index_width)
{
    size_t counts[4] = {0, 0, 0, 0}, length;
    uint64_t missing = 0;
    double min = 0.0, max = 0.0;
    int have_range = 0, numeric_type = -1, same_type = 1;
    char buf[32];
    const char *name;
    for (size_t i = first; i <= last; i++) {
        const column_stats *c = &run->stats[i];
        counts[c->type]++;
        missing += c->missing;
        if (column_is_numeric(c)) {
            if (!have_range || column_min(c) < min)
                min = column_min(c);
            if (!have_range || column_max(c) > max)
                max = column_max(c);
            have_range = 1;
            if (numeric_type >= 0 && numeric_type != (int)c->type)
                same_type = 0;
            numeric_type = (int)c->type;
        }
    }
    printf("  %*s  %zu columns", index_width, "...", last - first + 1);
    if (run->has_header) {
        printf(" (");
        name = column_name(run, first, &length);
        print_text(stdout, name, length, INSPECT_NAME_WIDTH_MAX);
        printf(" .. ");
        name = column_name(run, last, &length);
        print_text(stdout, name, length, INSPECT_NAME_WIDTH_MAX);
        printf(")");
    }
    printf(":");
    for (int t = 0; t < 4; t++)
        if (counts[t] > 0)
            printf(" %zu %s", counts[t], column_type_names[t]);
    if (have_range) {
        column_stats as = {0};
        as.type = same_type && numeric_type == COLUMN_INTEGER ? COLUMN_INTEGER : COLUMN_FLOAT;
        format_number(buf, sizeof buf, &as, min);
        printf("; min %s", buf);
        format_number(buf, sizeof buf, &as, max);
        printf(", max %s", buf);
    }
    if (missing == 0)
        printf("; no missing values\n");
    else
        printf("; %s missing values\n", group(missing, buf, sizeof buf));
}

/* A column the compact table always shows: one that needs a look. */
static int column_is_notable(const column_stats *c)
{
    return c->type == COLUMN_TEXT || c->type == COLUMN_EMPTY || c->missing > 0;
}

static void print_columns(const inspect_run *run)
{
    const int compact = !run->all && run->columns > INSPECT_COMPACT_COLUMNS;
    unsigned char *shown = calloc(run->columns ? run->columns : 1, 1);
    size_t notable = 0, notable_hidden = 0, gap_start = 0, length;
    int index_width = 3, name_width = 4, in_gap = 0;
    char digits[32];
    if (shown == NULL) {
        printf("  (out of memory listing the columns)\n");
        return;
    }
    for (size_t i = 0; i < run->columns; i++) {
        int show = !compact || i < INSPECT_HEAD_COLUMNS || i + INSPECT_TAIL_COLUMNS >= run->columns;
        if (!show && column_is_notable(&run->stats[i])) {
            if (notable < INSPECT_NOTABLE_SHOWN)
                show = 1;
            else
                notable_hidden++;
            notable++;
        }
        shown[i] = (unsigned char)show;
        if (show) {
            const char *name = column_name(run, i, &length);
            int width = text_width(name, length, INSPECT_NAME_WIDTH_MAX);
            if (width > name_width)
                name_width = width;
        }
    }
    snprintf(digits, sizeof digits, "%zu", run->columns > 0 ? run->columns - 1 : 0);
    if ((int)strlen(digits) > index_width)
        index_width = (int)strlen(digits);
    printf("\n  %*s  %-*s  %-7s %11s %11s %11s %11s %9s\n", index_width, "#", name_width, "name",
           "type", "min", "max", "mean", "std", "missing");
    for (size_t i = 0; i < run->columns; i++) {
        if (!shown[i]) {
            if (!in_gap)
                gap_start = i;
            in_gap = 1;
            continue;
        }
        if (in_gap)
            print_column_gap(run, gap_start, i - 1, index_width);
        in_gap = 0;
        print_column_row(run, i, index_width, name_width);
    }
    if (in_gap)
        print_column_gap(run, gap_start, run->columns - 1, index_width);
    if (compact)
        printf("  (first %d and last %d columns, and every column with text, no values or missing "
               "values%s; --all lists every column)\n",
               INSPECT_HEAD_COLUMNS, INSPECT_TAIL_COLUMNS, notable_hidden > 0 ? ", up to 30" : "");
    free(shown);
}

static void print_classes(const inspect_run *run)
{
    const class_table *t = &run->classes;
    const class_entry **sorted;
    size_t length, shown;
    const char *name = column_name(run, (size_t)run->label, &length);
    char d1[32], d2[32];
    printf("\nclasses of column %ld", run->label);
    if (length > 0) {
        printf(" (");
        print_text(stdout, name, length, INSPECT_NAME_WIDTH_MAX);
        printf(")");
    }
    if (t->gave_up != NULL) {
        printf(": not counted: %s\n", t->gave_up);
        return;
    }
    printf(": %zu distinct values in %s rows\n", t->distinct, group(t->counted, d1, sizeof d1));
    sorted = class_table_sorted(t);
    if (sorted == NULL)
        return;
    shown =
        run->all || t->distinct <= INSPECT_CLASSES_SHOWN + 5 ? t->distinct : INSPECT_CLASSES_SHOWN;
    printf("  %12s %12s %8s\n", "value", "count", "share");
    for (size_t k = 0; k < shown; k++) {
        const class_entry *e = sorted[k];
        if (e->text == NULL) {
            printf("  %12lld", (long long)e->value);
        } else {
            int width = text_width(e->text, e->length, 40);
            printf("  %*s", 12 > width ? 12 - width : 0, "");
            print_text(stdout, e->text, e->length, 40);
        }
        printf(" %12s %7.2f%%\n", group(e->count, d2, sizeof d2),
               100.0 * (double)e->count / (double)t->counted);
    }
    if (shown < t->distinct)
        printf("  ... %zu more values (--all lists them, --json gives them all)\n",
               t->distinct - shown);
    free(sorted);
}

static void print_report(const inspect_run *run)
{
    size_t types[4] = {0, 0, 0, 0}, with_missing = 0, constant = 0;
    uint64_t missing = 0;
    char d1[32], d2[32];
    const char *separator = "";
    for (size_t i = 0; i < run->columns; i++) {
        const column_stats *c = &run->stats[i];
        types[c->type]++;
        missing += c->missing;
        with_missing += c->missing > 0;
        constant += column_is_numeric(c) && column_min(c) == column_max(c);
    }
    printf("%s: %s row%s x %zu column%s%s", run->name, group(run->rows, d1, sizeof d1),
           run->rows == 1 ? "" : "s", run->columns, run->columns == 1 ? "" : "s",
           run->has_header ? " (and a header line)" : " (no header)");
    if (run->file_bytes > 0)
        printf(", %s bytes", group(run->file_bytes, d2, sizeof d2));
    printf("\n  read in %.2f s, peak RSS %.1f MiB\n", run->seconds,
           (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    printf("types:");
    for (int t = 0; t < 4; t++)
        if (types[t] > 0) {
            printf("%s %zu %s", separator, types[t], column_type_names[t]);
            separator = ",";
        }
    printf("%s\nmissing values: ", run->columns == 0 ? " none" : "");
    if (missing == 0)
        printf("none\n");
    else
        printf("%s in %zu column%s\n", group(missing, d1, sizeof d1), with_missing,
               with_missing == 1 ? "" : "s");
    if (constant > 0)
        printf("constant columns (min = max): %zu\n", constant);
    if (run->columns > 0)
        print_columns(run);
    if (run->label >= 0)
        print_classes(run);
    if (run->failed)
        printf("\nstopped after %s row%s at a malformed record:\n  %s\n",
               group(run->rows, d1, sizeof d1), run->rows == 1 ? "" : "s", run->err.message);
}

static void print_json_number(const column_stats *c, double value)
{
    if (c->type == COLUMN_INTEGER)
        printf("%lld", (long long)value);
    else
        printf("%.9g", value);
}

static void print_json(const inspect_run *run)
{
    printf("{\"file\": ");
    print_json_string(stdout, run->name, strlen(run->name));
    printf(", \"rows\": %llu, \"columns\": %zu, \"header\": %s, \"complete\": %s, \"error\": ",
           (unsigned long long)run->rows, run->columns, run->has_header ? "true" : "false",
           run->failed ? "false" : "true");
    if (run->failed)
        print_json_string(stdout, run->err.message, strlen(run->err.message));
    else
        printf("null");
    printf(", \"bytes\": %llu, \"seconds\": %.3f, \"peak_rss_bytes\": %zu,\n \"column_stats\": [",
           (unsigned long long)run->file_bytes, run->seconds, cli_peak_rss_bytes());
    for (size_t i = 0; i < run->columns; i++) {
        const column_stats *c = &run->stats[i];
        size_t length;
        const char *name = column_name(run, i, &length);
        printf("%s\n  {\"index\": %zu, \"name\": ", i == 0 ? "" : ",", i);
        if (run->has_header)
            print_json_string(stdout, name, length);
        else
            printf("null");
        printf(", \"type\": \"%s\", \"count\": %llu, \"missing\": %llu, \"min\": ",
               column_type_names[c->type], (unsigned long long)c->present,
               (unsigned long long)c->missing);
        if (column_is_numeric(c)) {
            double s = column_std(c);
            print_json_number(c, column_min(c));
            printf(", \"max\": ");
            print_json_number(c, column_max(c));
            printf(", \"mean\": %.10g, \"std\": ", column_mean(c));
            if (s >= 0.0)
                printf("%.10g", s);
            else
                printf("null");
        } else {
            printf("null, \"max\": null, \"mean\": null, \"std\": null");
        }
        printf(", \"longest\": %zu, \"first_non_number\": ", c->longest);
        if (c->type == COLUMN_TEXT) {
            printf("{\"text\": ");
            print_json_string(stdout, c->text_sample, c->text_sample_length);
            printf(", \"line\": %llu, \"column\": %llu}", (unsigned long long)c->text_line,
                   (unsigned long long)c->text_column);
        } else {
            printf("null");
        }
        printf("}");
    }
    printf("],\n \"label\": ");
    if (run->label < 0) {
        printf("null");
    } else {
        const class_table *t = &run->classes;
        size_t length;
        const char *name = column_name(run, (size_t)run->label, &length);
        printf("{\"index\": %ld, \"name\": ", run->label);
        if (run->has_header)
            print_json_string(stdout, name, length);
        else
            printf("null");
        if (t->gave_up != NULL) {
            printf(", \"distinct\": null, \"counted\": null, \"classes\": null, \"not_counted\": ");
            print_json_string(stdout, t->gave_up, strlen(t->gave_up));
        } else {
            const class_entry **sorted = class_table_sorted(t);
            printf(", \"distinct\": %zu, \"counted\": %llu, \"classes\": [", t->distinct,
                   (unsigned long long)t->counted);
            for (size_t k = 0; sorted != NULL && k < t->distinct; k++) {
                printf("%s{\"value\": ", k == 0 ? "" : ", ");
                if (sorted[k]->text == NULL)
                    printf("%lld", (long long)sorted[k]->value);
                else
                    print_json_string(stdout, sorted[k]->text, sorted[k]->length);
                printf(", \"count\": %llu}", (unsigned long long)sorted[k]->count);
            }
            printf("], \"not_counted\": null");
            free(sorted);
        }
        printf("}");
    }
    printf("}\n");
}

/* ------------------------------------------------------------ the pass */

static fedl_status read_stdin(void *ud, void *buffer, size_t capacity, size_t *got, fedl_error *err)
{
    (void)ud;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buffer, capacity);
        if (n >= 0) {
            *got = (size_t)n;
            return FEDL_OK;
        }
        if (errno != EINTR)
            return fedl_error_set(err, FEDL_ERR_IO, "<stdin>: read failed: %s", strerror(errno));
    }
}

/* "tab", "\t" or one byte that is none of NUL, CR, LF and the quote. */
static int parse_delimiter(const char *text, char *out)
{
    if (strcmp(text, "tab") == 0 || strcmp(text, "\\t") == 0) {
        *out = '\t';
        return 0;
    }
    if (strlen(text) != 1 || text[0] == '\r' || text[0] == '\n' || text[0] == '"') {
        fprintf(stderr,
                "fedl data inspect: --delimiter: '%s' is not one character other than '\"', or "
                "'tab' (see 'fedl data inspect --help')\n",
                text);
        return 2;
    }
    *out = text[0];
    return 0;
}

/* The column --label names (a header name first, else a 0-based index);
 * without --label, the column named "label", else column 0: the one
 * `fedl train --data FILE.csv` takes (fedl_csv_schema). 0 with run->label
 * set, or 2 (reported) when --label names no column. */
static int resolve_label(inspect_run *run, const char *label)
{
    size_t index;
    char *end;
    unsigned long long parsed;
    run->label = -1;
    if (label == NULL) {
        if (run->has_header && fedl_csv_find_column(run->reader, "label", &index, NULL) == FEDL_OK)
            run->label = (long)index;
        else if (run->columns > 0)
            run->label = 0;
        return 0;
    }
    if (run->has_header && fedl_csv_find_column(run->reader, label, &index, NULL) == FEDL_OK) {
        run->label = (long)index;
        return 0;
    }
    errno = 0;
    parsed = strtoull(label, &end, 10);
    if (label[0] >= '0' && label[0] <= '9' && *end == '\0' && errno == 0) {
        if (parsed < run->columns) {
            run->label = (long)parsed;
            return 0;
        }
        fprintf(stderr, "fedl data inspect: --label %s: %s has %zu columns (indices 0 to %zu)\n",
                label, run->name, run->columns, run->columns > 0 ? run->columns - 1 : 0);
        return 2;
    }
    fprintf(stderr, "fedl data inspect: --label %s: %s has no column of that name%s\n", label,
            run->name, run->has_header ? "" : " (it has no header: give a 0-based index)");
    return 2;
}

static int start_columns(inspect_run *run, size_t columns, const char *label)
{
    run->stats = calloc(columns > 0 ? columns : 1, sizeof *run->stats);
    if (run->stats == NULL) {
        fprintf(stderr, "fedl data inspect: out of memory for %zu columns\n", columns);
        return 1;
    }
    run->columns = columns;
    if (resolve_label(run, label) != 0)
        return 2;
    if (run->label >= 0) {
        run->classes.slots = calloc(INSPECT_CLASS_SLOTS, sizeof *run->classes.slots);
        if (run->classes.slots == NULL)
            run->classes.gave_up = "out of memory";
    }
    return 0;
}

static int data_inspect(int argc, char **argv)
{
    const char *path = NULL, *delimiter = NULL, *label = NULL, *buffer = NULL;
    int no_header = 0, json = 0, all = 0, rc;
    const cli_option options[] = {
        {"delimiter", CLI_STRING, &delimiter, "C", "field separator: one character or 'tab' [,]", 0,
         0},
        {"no-header", CLI_FLAG, &no_header, NULL, "the first line is data, not column names", 0, 0},
        {"label", CLI_STRING, &label, "NAME|INDEX",
         "count the classes of this column [label, else column 0]", 0, 0},
        {"json", CLI_FLAG, &json, NULL, "print one JSON object instead of the table", 0, 0},
        {"all", CLI_FLAG, &all, NULL, "list every column and every class", 0, 0},
        {"buffer", CLI_STRING, &buffer, "SIZE", "read buffer; the longest record must fit [64K]", 0,
         0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals positionals = {"FILE.csv", &path, 1, 1, 0};
    fedl_csv_options opts = fedl_csv_defaults();
    inspect_run run;
    fedl_status status = FEDL_OK;
    struct stat st;
    double t0;
    int more = 0;
    rc = cli_parse_positionals(
        "data inspect",
        "Reads FILE (plain or gzip; '-' = standard input) once, in memory that depends\n"
        "on the number of columns, not rows, and prints rows, columns and per column:\n"
        "its type (integer, float, text, or empty when it has no value), min, max, mean,\n"
        "std (n - 1) and missing values (empty or blank fields). Numbers are read as\n"
        "fedl reads them for training (int64, float32; no hex, no inf/nan); one value\n"
        "that is not a number makes a column text, and the first such value is shown\n"
        "with its line:column. The label column (--label; else the column named label,\n"
        "else column 0, as 'fedl train --data FILE.csv' picks it) gets class counts\n"
        "(integers by value), up to 1,000 distinct values. With more than 24 columns the\n"
        "table shows the first 6 and last 3 columns, every text, empty or incomplete\n"
        "column (up to 30), and one summary line for each run of the others; --all\n"
        "shows every column. INDEX is 0-based, as in the table.\n"
        "Exit 0: the whole file read; 1: a malformed record (a ragged row, a stray\n"
        "quote...), reported as file:line:column after what was read up to it.\n",
        options, &positionals, argc, argv, 3);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (delimiter != NULL && parse_delimiter(delimiter, &opts.delimiter) != 0)
        return 2;
    if (buffer != NULL) {
        fedl_error perr = {0};
        size_t bytes = 0;
        if (fedl_parse_size(buffer, &bytes, &perr) != FEDL_OK ||
            bytes < FEDL_CSV_MIN_BUFFER_BYTES || bytes > FEDL_CSV_MAX_BUFFER_BYTES) {
            fprintf(stderr,
                    "fedl data inspect: --buffer: '%s' is not a size from 4 to 1G (see 'fedl data "
                    "inspect --help')\n",
                    buffer);
            return 2;
        }
        opts.buffer_bytes = bytes;
    }
    opts.has_header = !no_header;

    memset(&run, 0, sizeof run);
    run.name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    run.has_header = opts.has_header;
    run.label = -1;
    run.all = all;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0)
        run.file_bytes = (uint64_t)st.st_size;
    t0 = seconds_now();
    if (strcmp(path, "-") == 0) {
        opts.name = run.name;
        status = fedl_csv_open_callback(read_stdin, NULL, &opts, NULL, &run.reader, &run.err);
    } else {
        status = fedl_csv_open(path, &opts, NULL, &run.reader, &run.err);
    }
    if (status != FEDL_OK) {
        /* nothing was read: --json still gives scripts an object to parse */
        run.failed = 1;
        if (json)
            print_json(&run);
        fprintf(stderr, "fedl data inspect: %s\n", run.err.message);
        return 1;
    }
    rc = run.has_header ? start_columns(&run, fedl_csv_header_count(run.reader), label) : 0;
    while (rc == 0 && (status = fedl_csv_next_record(run.reader, &more, &run.err)) == FEDL_OK &&
           more) {
        size_t fields = fedl_csv_field_count(run.reader);
        if (run.stats == NULL && (rc = start_columns(&run, fields, label)) != 0)
            break;
        if (fields > run.columns) /* the reader checks every record's width */
            fields = run.columns;
        for (size_t i = 0; i < fields; i++)
            column_add(&run.stats[i], run.reader, i);
        if (run.label >= 0)
            class_table_add(&run.classes, run.reader, (size_t)run.label);
        run.rows++;
    }
    run.seconds = seconds_now() - t0;
    if (rc == 0 && status != FEDL_OK) {
        run.failed = 1;
        rc = 1;
    }
    if (rc == 0 || run.failed) {
        if (json)
            print_json(&run);
        else
            print_report(&run);
        if (run.failed)
            fprintf(stderr, "fedl data inspect: %s\n", run.err.message);
    }
    class_table_clear(&run.classes);
    free(run.stats);
    fedl_csv_close(run.reader);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

int cmd_data(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : NULL;
    if (sub == NULL) {
        fprintf(stderr, "fedl data: expected manifest, verify, convert or inspect (see 'fedl data "
                        "--help')\n");
        return 2;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(data_help, stdout);
        return 0;
    }
    if (strcmp(sub, "manifest") == 0)
        return data_manifest(argc, argv);
    if (strcmp(sub, "verify") == 0)
        return data_verify(argc, argv);
    if (strcmp(sub, "convert") == 0)
        return data_convert(argc, argv);
    if (strcmp(sub, "inspect") == 0)
        return data_inspect(argc, argv);
    fprintf(stderr, "fedl data: unknown command '%s' (see 'fedl data --help')\n", sub);
    return 2;
}
