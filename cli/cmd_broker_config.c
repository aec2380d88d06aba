/*
 * cmd_broker_config.c - `fedl broker-config`: a mosquitto configuration
 * and ACL file for a job, in which each device may publish only to its own
 * update and status topics and read only the task and control topics, and
 * the coordinator may use the whole job.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

static const char broker_config_usage[] =
    "Writes DIR/mosquitto.conf and DIR/acl for --job: a listener on --port (TLS\n"
    "with --ca, --cert and --key; with --require-certificate each device is known\n"
    "by its certificate's common name), no anonymous access, and an ACL in which\n"
    "a device (its username, or its certificate's CN) may publish only to\n"
    "fedl/JOB/update/<itself> and fedl/JOB/status/<itself> and read only\n"
    "fedl/JOB/task/# and fedl/JOB/control/#, while the user 'coordinator' may use\n"
    "fedl/JOB/#. Each of --aggregators (scale-out: fedl aggregate) may read the\n"
    "updates and publish only to fedl/JOB/partial/<itself>. Passwords come from\n"
    "--password-file (made with mosquitto_passwd).\n"
    "Example:\n"
    "  fedl broker-config --job fmnist --port 8883 --ca ca.crt --cert broker.crt \\\n"
    "      --key broker.key --require-certificate --out /etc/mosquitto/conf.d/fmnist\n"
    "  mosquitto -c /etc/mosquitto/conf.d/fmnist/mosquitto.conf\n";

/* path made absolute (mosquitto reads relative paths from its own working
 * directory); 0, or 1 with a message. */
static int absolute(const char *what, const char *path, char *out)
{
    if (path == NULL) {
        out[0] = '\0';
        return 0;
    }
    if (realpath(path, out) == NULL) {
        fprintf(stderr, "fedl broker-config: %s %s: %s\n", what, path, strerror(errno));
        return 1;
    }
    return 0;
}

static int write_text(const char *path, const char *text)
{
    fedl_error err = {0};
    if (fedl_durable_write(path, text, strlen(text), &err) != FEDL_OK) {
        fprintf(stderr, "fedl broker-config: %s\n", err.message);
        return 1;
    }
    return 0;
}

/* The characters of a fedl sender name (docs/PROTOCOL.md). */
static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* An ACL block for each name of the comma-separated list; 0, or 2 with a
 * message for a bad name or too many. */
static int append_aggregators(char *acl, size_t size, size_t used, const char *job,
                              const char *list)
{
    char name[FEDL_WIRE_SENDER_MAX];
    while (*list != '\0') {
        size_t n = strcspn(list, ","), k;
        int wrote;
        for (k = 0; k < n && name_char(list[k]); k++)
            ;
        if (n == 0 || n >= sizeof name || k < n) {
            fprintf(stderr, "fedl broker-config: --aggregators: '%.*s' is not a name\n", (int)n,
                    list);
            return 2;
        }
        memcpy(name, list, n);
        name[n] = '\0';
        wrote =
            snprintf(acl + used, size - used,
                     "\n# aggregator %s (fedl aggregate)\nuser %s\ntopic read fedl/%s/update/#\n"
                     "topic write fedl/%s/partial/%s\n",
                     name, name, job, job, name);
        if (wrote < 0 || (size_t)wrote >= size - used) {
            fprintf(stderr, "fedl broker-config: --aggregators: too many\n");
            return 2;
        }
        used += (size_t)wrote;
        list += n + (list[n] == ',');
    }
    return 0;
}

int cmd_broker_config(int argc, char **argv)
{
    const char *job = NULL, *out = NULL, *ca = NULL, *cert = NULL, *key = NULL,
               *password_file = NULL, *bind = "0.0.0.0", *aggregators = NULL;
    int port = 0, require_certificate = 0;
    const cli_option options[] = {
        {"job", CLI_STRING, &job, "NAME", "the job, required", 0, 0},
        {"out", CLI_STRING, &out, "DIR", "where to write mosquitto.conf and acl, required", 0, 0},
        {"port", CLI_INT, &port, "N", "listener port [8883 with TLS, else 1883]", 1, 65535},
        {"bind", CLI_STRING, &bind, "ADDRESS", "listener address [0.0.0.0]", 0, 0},
        {"ca", CLI_STRING, &ca, "FILE", "TLS: the CA of the devices' certificates", 0, 0},
        {"cert", CLI_STRING, &cert, "FILE", "TLS: the broker's certificate", 0, 0},
        {"key", CLI_STRING, &key, "FILE", "TLS: the broker's key", 0, 0},
        {"require-certificate", CLI_FLAG, &require_certificate, NULL,
         "devices must present a certificate; its CN is their username", 0, 0},
        {"aggregators", CLI_STRING, &aggregators, "NAME,NAME...",
         "scale-out: the aggregators, who may read updates and send partials", 0, 0},
        {"password-file", CLI_STRING, &password_file, "FILE",
         "mosquitto_passwd file of usernames and passwords", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    char conf[8192], acl[16384], conf_path[4200], acl_path[4200], dir[PATH_MAX], ca_path[PATH_MAX],
        cert_path[PATH_MAX], key_path[PATH_MAX], passwords[PATH_MAX];
    fedl_wire_encoder probe;
    fedl_wire_message m = {FEDL_MSG_STATUS, NULL, "coordinator", 0, 0, NULL, 0};
    fedl_error err = {0};
    int tls, n, rc = cli_parse("broker-config", broker_config_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (job == NULL || out == NULL) {
        fprintf(stderr, "fedl broker-config: --job and --out are required\n");
        return 2;
    }
    m.job = job; /* the wire's own check of a job name: safe in a topic */
    if (fedl_wire_encoder_init(&probe, &m, FEDL_WIRE_CHUNK_MIN, NULL, &err) != FEDL_OK) {
        fprintf(stderr, "fedl broker-config: --job '%s': %s\n", job, err.message);
        return 2;
    }
    tls = ca != NULL || cert != NULL || key != NULL;
    if (tls && (ca == NULL || cert == NULL || key == NULL)) {
        fprintf(stderr, "fedl broker-config: TLS needs --ca, --cert and --key together\n");
        return 2;
    }
    if (require_certificate && !tls) {
        fprintf(stderr, "fedl broker-config: --require-certificate needs TLS (--ca, --cert, "
                        "--key)\n");
        return 2;
    }
    if (!require_certificate && password_file == NULL) {
        fprintf(stderr, "fedl broker-config: devices must be known: --require-certificate or "
                        "--password-file\n");
        return 2;
    }
    if (port == 0)
        port = tls ? 8883 : 1883;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fedl broker-config: --out %s: %s\n", out, strerror(errno));
        return 1;
    }
    if (absolute("--out", out, dir) != 0 || absolute("--ca", ca, ca_path) != 0 ||
        absolute("--cert", cert, cert_path) != 0 || absolute("--key", key, key_path) != 0 ||
        absolute("--password-file", password_file, passwords) != 0)
        return 1;
    snprintf(conf_path, sizeof conf_path, "%s/mosquitto.conf", dir);
    snprintf(acl_path, sizeof acl_path, "%s/acl", dir);
    n = snprintf(conf, sizeof conf,
                 "# fedl job %s (written by fedl broker-config)\n"
                 "per_listener_settings false\n"
                 "allow_anonymous false\n"
                 "acl_file %s\n"
                 "%s%s%s"
                 "persistence true\n"
                 "persistent_client_expiration 7d\n"
                 "max_queued_messages 10000\n"
                 "listener %d %s\n",
                 job, acl_path, password_file != NULL ? "password_file " : "",
                 password_file != NULL ? passwords : "", password_file != NULL ? "\n" : "", port,
                 bind);
    if (tls)
        n += snprintf(
            conf + n, sizeof conf - (size_t)n,
            "cafile %s\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n%s", ca_path, cert_path,
            key_path,
            require_certificate ? "require_certificate true\nuse_identity_as_username true\n" : "");
    n = snprintf(acl, sizeof acl,
                 "# fedl job %s: who may publish and read what (written by fedl broker-config)\n"
                 "user coordinator\n"
                 "topic readwrite fedl/%s/#\n\n"
                 "# every device, as %%u (its username or certificate CN)\n"
                 "pattern write fedl/%s/update/%%u\n"
                 "pattern write fedl/%s/status/%%u/#\n"
                 "pattern read fedl/%s/task/#\n"
                 "pattern read fedl/%s/control/#\n",
                 job, job, job, job, job, job);
    if (aggregators != NULL &&
        append_aggregators(acl, sizeof acl, (size_t)n, job, aggregators) != 0)
        return 2;
    if (write_text(conf_path, conf) != 0 || write_text(acl_path, acl) != 0)
        return 1;
    printf("wrote %s and %s\n", conf_path, acl_path);
    return 0;
}
