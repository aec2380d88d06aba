/*
 * cmd_data.c - `fedl data`: manifests of data directories.
 *
 *   manifest DIR [--out FILE]        list every file of DIR with its size and
 *                                    SHA-256 in FILE (default DIR/MANIFEST)
 *   verify DIR [--manifest FILE]     check DIR's files against the manifest
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
    "                                 exit 1 naming every missing, truncated or changed file\n\n"
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
    skip = name_inside(out, dir);
    fedl_manifest_init(&m, NULL);
    if (fedl_manifest_build_dir(dir, skip ? skip : DEFAULT_MANIFEST, NULL, &m, &err) != FEDL_OK ||
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
    int rc = cli_parse_positionals(
        "data verify",
        "Checks the size and SHA-256 of every file the manifest lists. Exit 0: all match;\n"
        "1: a file is missing, truncated or changed (each one is named).\n",
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
    if (damaged == 0) {
        printf("%s: %zu files ok\n", dir, m.count);
    } else {
        printf("%s: %zu of %zu files damaged\n", dir, damaged, m.count);
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
