/*
 * cmd_keygen.c - `fedl keygen`: an Ed25519 key pair for a coordinator or a
 * device, written as PREFIX.key (the secret key, mode 0600) and PREFIX.pub
 * (the public key line, for a devices file or a device's
 * --coordinator-key).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

static const char keygen_usage[] =
    "Makes an Ed25519 key pair (libsodium) for --id: PREFIX.key, the secret key\n"
    "(mode 0600; it signs tasks or updates and never leaves its machine), and\n"
    "PREFIX.pub, one line to give the other side: devices' .pub lines go into\n"
    "the coordinator's --devices file, the coordinator's .pub to every device.\n"
    "Example:\n"
    "  fedl keygen --id coordinator --out keys/coordinator\n"
    "  fedl keygen --id dev-01 --out keys/dev-01\n";

int cmd_keygen(int argc, char **argv)
{
    const char *id = NULL, *out = NULL;
    int force = 0;
    const cli_option options[] = {
        {"id", CLI_STRING, &id, "ID", "who the key speaks for: coordinator or a device id", 0, 0},
        {"out", CLI_STRING, &out, "PREFIX", "write PREFIX.key and PREFIX.pub [ID]", 0, 0},
        {"force", CLI_FLAG, &force, NULL, "replace existing key files", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    char secret_path[4096], public_path[4096], line[FEDL_KEY_LINE_MAX];
    fedl_sign_keypair kp;
    fedl_error err = {0};
    int rc = cli_parse("keygen", keygen_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (id == NULL) {
        fprintf(stderr, "fedl keygen: --id is required (see 'fedl keygen --help')\n");
        return 2;
    }
    if (out == NULL)
        out = id;
    snprintf(secret_path, sizeof secret_path, "%s.key", out);
    snprintf(public_path, sizeof public_path, "%s.pub", out);
    if (!force && (access(secret_path, F_OK) == 0 || access(public_path, F_OK) == 0)) {
        fprintf(stderr, "fedl keygen: %s or %s exists; --force replaces them\n", secret_path,
                public_path);
        return 1;
    }
    if (fedl_sign_keypair_generate(&kp, &err) != FEDL_OK ||
        fedl_key_format_secret(&kp, id, line, sizeof line, &err) != FEDL_OK) {
        fprintf(stderr, "fedl keygen: %s\n", err.message);
        return err.status == FEDL_ERR_INVALID_ARG ? 2 : 1;
    }
    umask(077); /* the secret key is never readable by others, not even while written */
    if (fedl_durable_write(secret_path, line, strlen(line), &err) != FEDL_OK ||
        chmod(secret_path, 0600) != 0) {
        fprintf(stderr, "fedl keygen: %s: %s\n", secret_path,
                err.message[0] ? err.message : "cannot make it 0600");
        return 1;
    }
    memset(line, 0, sizeof line);
    umask(022);
    if (fedl_key_format_public(kp.public_key, id, line, sizeof line, &err) != FEDL_OK ||
        fedl_durable_write(public_path, line, strlen(line), &err) != FEDL_OK) {
        fprintf(stderr, "fedl keygen: %s\n", err.message);
        return 1;
    }
    memset(&kp, 0, sizeof kp);
    printf("wrote %s (secret, mode 0600) and %s:\n%s", secret_path, public_path, line);
    return 0;
}
