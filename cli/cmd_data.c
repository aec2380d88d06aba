/*
 * cmd_data.c - `fedl data`: manifests of data directories.
 *
 *   manifest DIR [--out FILE]        list every file of DIR with its size and
 *                                    SHA-256 in FILE (default DIR/MANIFEST)
 *   verify DIR [--manifest FILE]     check DIR's files against the manifest,
 *                                    and name the files it does not list
 *
 * Exit codes: 0 all good, 1 damaged or failed, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "                                 unlisted file\n\n"
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

/* ------------------------------------------------------------ dispatch */

int cmd_data(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : NULL;
    if (sub == NULL) {
        fprintf(stderr, "fedl data: expected manifest or verify (see 'fedl data --help')\n");
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
    fprintf(stderr, "fedl data: unknown command '%s' (see 'fedl data --help')\n", sub);
    return 2;
}
