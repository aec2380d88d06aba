/* net_common.h - what fedl serve and fedl join share: the broker and TLS
 * options, key files, a clock. */
#ifndef FEDL_CLI_NET_COMMON_H
#define FEDL_CLI_NET_COMMON_H

#include "args.h"
#include "fedl/fedl.h"

typedef struct net_options {
    const char *broker, *job, *ca, *cert, *tls_key, *username, *password;
    const char *password_file; /* the password's file (never on the command line) */
    int chunk_kib;
    int insecure; /* no signatures: a lab without keys */
} net_options;

/* The options above as NET_OPTION_COUNT cli_option entries (no terminator). */
#define NET_OPTION_COUNT 9
void net_option_table(net_options *n, cli_option *out);
/* Fill a channel's options (broker, TLS, credentials, job, chunk size); 0,
 * or 2 with a message. */
int net_channel_options(const char *command, net_options *n, const char *self,
                        fedl_channel_options *o);
/* Whole file into a NUL-terminated heap buffer (free()); 0 or -1 with errno. */
int net_read_text(const char *path, char **text, size_t *length);
/* A secret key file: 0, or 1 with a message. */
int net_load_secret(const char *command, const char *path, fedl_sign_keypair *kp,
                    char id[FEDL_WIRE_SENDER_MAX]);
/* A public key file or devices file (keys from the default allocator): 0,
 * or 1 with a message. */
int net_load_public(const char *command, const char *path, fedl_key_entry **keys, int *count);
/* A control word that arrived: FEDL_CONTROL_FINISHED (said on stdout) or
 * FEDL_CONTROL_FAILED (the reason on stderr), or 0 for one that does not
 * decode (reported) or belongs to an earlier run: a retained one
 * (published before this side subscribed), or a live one whose sequence
 * (the coordinator's wall clock in microseconds) is older than this
 * process started, kept in its persistent session by a run whose end it
 * missed (reported). */
int net_control(const char *command, const fedl_wire_frame *h, const uint8_t *body, size_t length,
                int retained, uint64_t started_us);
/* Milliseconds of CLOCK_REALTIME (shared by every process of a job). */
uint64_t net_now_ms(void);

#endif
