/*
 * broker.c - starts and stops a real mosquitto for tests (see broker.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "support/broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_broker_binary(void)
{
    static const char *const paths[] = {"/usr/sbin/mosquitto", "/usr/bin/mosquitto"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A port the kernel just handed out on 127.0.0.1. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int accepts(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int launch(test_broker *b)
{
    const char *bin = test_broker_binary();
    char log[300];
    struct timespec pause = {0, 20000000};
    if (bin == NULL)
        return -1;
    snprintf(log, sizeof log, "%s/broker.log", b->dir);
    b->pid = fork();
    if (b->pid < 0)
        return -1;
    if (b->pid == 0) {
        FILE *out = freopen(log, "a", stderr);
        (void)out;
        execl(bin, bin, "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to 10 s */
        int status;
        if (accepts(b->port))
            return 0;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            fprintf(stderr, "mosquitto exited at start; see %s\n", log);
            b->pid = 0;
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "mosquitto did not listen on %d in 10 s\n", b->port);
    return -1;
}

int test_broker_start(test_broker *b, const char *extra)
{
    FILE *f;
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "/tmp/fedl-broker-XXXXXX");
    if (mkdtemp(b->dir) == NULL)
        return -1;
    chmod(b->dir, 0755); /* mosquitto may drop to its own user */
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", b->dir);
    b->port = free_port();
    f = fopen(b->conf, "w");
    if (f == NULL || b->port < 0)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\npersistence false\nlog_dest stderr\n%s\n%s\n", b->port,
            extra != NULL && strstr(extra, "allow_anonymous") != NULL ? "" : "allow_anonymous true",
            extra != NULL ? extra : "");
    fclose(f);
    return launch(b);
}

int test_broker_restart(test_broker *b)
{
    return launch(b);
}

void test_broker_stop(test_broker *b, int hard)
{
    if (b->pid > 0) {
        kill(b->pid, hard ? SIGKILL : SIGTERM);
        waitpid(b->pid, NULL, 0);
    }
    b->pid = 0;
}

void test_broker_free(test_broker *b)
{
    char command[400];
    test_broker_stop(b, 0);
    if (b->dir[0] != '\0') {
        snprintf(command, sizeof command, "rm -rf '%s'", b->dir);
        if (system(command) != 0)
            fprintf(stderr, "could not remove %s\n", b->dir);
    }
}
