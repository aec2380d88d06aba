/* net_common.c - broker options, key files and the clock of fedl serve and
 * fedl join. */
#include "net_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void net_option_table(net_options *n, cli_option *out)
{
    const cli_option table[NET_OPTION_COUNT] = {
        {"broker", CLI_STRING, &n->broker, "URL", "mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", 0,
         0},
        {"job", CLI_STRING, &n->job, "NAME", "the job's name: topics under fedl/NAME/", 0, 0},
        {"ca", CLI_STRING, &n->ca, "FILE", "TLS: the CA that signed the broker's certificate", 0,
         0},
        {"cert", CLI_STRING, &n->cert, "FILE", "TLS: this side's certificate", 0, 0},
        {"tls-key", CLI_STRING, &n->tls_key, "FILE", "TLS: this side's certificate key", 0, 0},
        {"username", CLI_STRING, &n->username, "NAME", "broker username", 0, 0},
        {"password-file", CLI_STRING, &n->password_file, "FILE",
         "broker password, the first line of FILE", 0, 0},
        {"chunk-kib", CLI_INT, &n->chunk_kib, "N",
         "largest MQTT payload in KiB (a broker's limit) [128]", 1, 1 << 20},
        {"insecure", CLI_FLAG, &n->insecure, NULL,
         "no signatures (a lab without keys); never on a real network", 0, 0},
    };
    memcpy(out, table, sizeof table);
}

int net_read_text(const char *path, char **text, size_t *length)
{
    FILE *f = fopen(path, "rb");
    long size;
    *text = NULL;
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (1L << 26) ||
        fseek(f, 0, SEEK_SET) != 0 || (*text = malloc((size_t)size + 1)) == NULL ||
        fread(*text, 1, (size_t)size, f) != (size_t)size) {
        int saved = errno;
        fclose(f);
        free(*text);
        *text = NULL;
        errno = saved != 0 ? saved : EIO;
        return -1;
    }
    fclose(f);
    (*text)[size] = '\0';
    *length = (size_t)size;
    return 0;
}

int net_channel_options(const char *command, net_options *n, const char *self,
                        fedl_channel_options *o)
{
    static char password[256];
    *o = fedl_channel_defaults();
    if (n->broker == NULL || n->job == NULL) {
        fprintf(stderr, "fedl %s: --broker URL and --job NAME are required\n", command);
        return 2;
    }
    if (n->password_file != NULL) {
        char *text;
        size_t length;
        if (net_read_text(n->password_file, &text, &length) != 0) {
            fprintf(stderr, "fedl %s: --password-file %s: %s\n", command, n->password_file,
                    strerror(errno));
            return 2;
        }
        text[strcspn(text, "\r\n")] = '\0';
        snprintf(password, sizeof password, "%s", text);
        free(text);
        n->password = password;
    }
    o->mqtt.broker = n->broker;
    o->mqtt.client_id = self;
    o->mqtt.username = n->username;
    o->mqtt.password = n->password;
    o->mqtt.ca_file = n->ca;
    o->mqtt.cert_file = n->cert;
    o->mqtt.key_file = n->tls_key;
    o->job = n->job;
    o->self = self;
    if (n->chunk_kib > 0)
        o->chunk_bytes = (size_t)n->chunk_kib << 10;
    return 0;
}

int net_load_secret(const char *command, const char *path, fedl_sign_keypair *kp,
                    char id[FEDL_WIRE_SENDER_MAX])
{
    char *text;
    size_t length;
    fedl_error err = {0};
    fedl_status st;
    if (net_read_text(path, &text, &length) != 0) {
        fprintf(stderr, "fedl %s: %s: %s\n", command, path, strerror(errno));
        return 1;
    }
    st = fedl_secret_key_parse(text, length, path, kp, id, &err);
    memset(text, 0, length);
    free(text);
    if (st != FEDL_OK) {
        fprintf(stderr, "fedl %s: %s\n", command, err.message);
        return 1;
    }
    return 0;
}

int net_load_public(const char *command, const char *path, fedl_key_entry **keys, int *count)
{
    char *text;
    size_t length;
    fedl_error err = {0};
    fedl_status st;
    if (net_read_text(path, &text, &length) != 0) {
        fprintf(stderr, "fedl %s: %s: %s\n", command, path, strerror(errno));
        return 1;
    }
    st = fedl_keys_parse(text, length, path, NULL, keys, count, &err);
    free(text);
    if (st != FEDL_OK) {
        fprintf(stderr, "fedl %s: %s\n", command, err.message);
        return 1;
    }
    return 0;
}

int net_control(const char *command, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                int retained, uint64_t started_us)
{
    fedl_control_command c;
    uint64_t version;
    char text[FEDL_CONTROL_TEXT_MAX + 1];
    fedl_error err = {0};
    if (retained)
        return 0;
    if (h->sequence < started_us) {
        fprintf(stderr,
                "fedl %s: ignored a control word sent %.1f s before this process started (an "
                "earlier run's, kept for it by the broker)\n",
                command, (double)(started_us - h->sequence) / 1e6);
        return 0;
    }
    if (fedl_control_message_decode(body, length, &c, &version, text, &err) != FEDL_OK) {
        fprintf(stderr, "fedl %s: control dropped: %s\n", command, err.message);
        return 0;
    }
    if (c == FEDL_CONTROL_FINISHED)
        printf("the job finished: global model version %llu\n", (unsigned long long)version);
    else
        fprintf(stderr, "fedl %s: the job failed: %s\n", command, text);
    return (int)c;
}

uint64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
