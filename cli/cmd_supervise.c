/* cmd_supervise.c - `fedl supervise [options] -- COMMAND [ARGS...]`: run a
 * command (normally `fedl train ... --ckpt-dir DIR`) as a child in its own
 * process group and keep it going on a device it shares. The monitor's
 * probes and policy are sampled on this thread; under critical pressure or
 * low disk the child is asked to checkpoint and exit (SIGTERM, SIGKILL
 * after a deadline) and relaunched when the policy says resources are back;
 * a crashed or failed child is restarted with exponential backoff within a
 * restart budget; SIGTERM, SIGINT and SIGHUP are forwarded. Every event is a
 * readable line on stderr and a JSON line in the log, and systemd hears
 * READY, STATUS, WATCHDOG and STOPPING through its notify socket.
 *
 * One loop sleeps in poll() on a self-pipe that the signal handlers write
 * (SIGCHLD, the stop signals) with a timeout at the next deadline (sample,
 * SIGKILL, relaunch, watchdog). A self-pipe rather than a signalfd: the
 * BLAS library may have started threads before main(), and a signalfd sees
 * only signals that every thread blocks. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

extern char **environ;

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define NEVER UINT64_MAX
#define MAX_EXITS 64            /* exits kept for the give-up report */
#define MAX_RESTART_BUDGET 1000 /* restart times kept to apply the budget */
#define JSON_LINE_BYTES 4096

static const char supervise_usage[] =
    "Runs COMMAND (normally 'fedl train ... --ckpt-dir DIR') as a child in its own\n"
    "process group, watches the system with the monitor's probes and --policy, and:\n"
    "  - critical pressure (memory, temperature) or free disk under the floor (--disk):\n"
    "    SIGTERM to the child's process group (fedl train checkpoints and exits 0),\n"
    "    SIGKILL after --stop-timeout; relaunched once the policy says the resources\n"
    "    are back (after its cooldown), and fedl train resumes from its checkpoints.\n"
    "  - constrained: logged only. Shrinking the micro-batch in the running process\n"
    "    is the job of 'fedl train --monitor'.\n"
    "  - the child exits non-zero, dies on a signal or is OOM-killed: restarted after\n"
    "    a backoff doubling from --backoff-initial to --backoff-max (back to the start\n"
    "    after a run longer than --backoff-max); a failure when --restart-budget\n"
    "    restarts were made within --restart-window seconds gives up, listing every exit.\n"
    "  - SIGTERM, SIGINT, SIGHUP: forwarded to the child as SIGTERM (SIGKILL after\n"
    "    --stop-timeout, or at a second signal); exits with the child's result.\n"
    "Seconds may be fractional (0.1). Events go to --log as JSON lines (start, exit,\n"
    "pressure, restart, give-up, stop). Under systemd (NOTIFY_SOCKET set): READY=1\n"
    "once the child runs, STATUS=, WATCHDOG=1 every half of WatchdogSec, STOPPING=1;\n"
    "see docs/fedl-supervise.service. The child's stdin, stdout and stderr are ours.\n"
    "Exit status: 0 the command finished successfully; 1 gave up or could not start;\n"
    "2 usage error; after SIGTERM/SIGINT/SIGHUP the child's (128+N for signal N).\n"
    "Example:\n"
    "  fedl supervise --policy /etc/fedl/policy.conf --log /var/log/fedl/supervise.jsonl \\\n"
    "      -- fedl train --data /srv/data --ckpt-dir /var/lib/fedl/ckpt --out model.fedl\n";

typedef struct supervise_options {
    const char *policy, *log, *disk, *root;
    float stop_timeout, restart_window, backoff_initial, backoff_max; /* seconds */
    int restart_budget;
    int interval_ms; /* 0: the policy's */
} supervise_options;

typedef enum child_phase {
    PHASE_RUNNING,  /* the child runs */
    PHASE_STOPPING, /* we sent SIGTERM (and maybe SIGKILL); waiting for it to exit */
    PHASE_WAITING,  /* no child: before the first start, paused, or backing off */
    PHASE_DONE
} child_phase;

typedef enum stop_cause {
    STOP_NONE,
    STOP_MEMORY,
    STOP_TEMPERATURE,
    STOP_DISK,
    STOP_SIGNAL /* a signal to us, forwarded */
} stop_cause;

typedef enum launch_cause {
    LAUNCH_FIRST,    /* the first start */
    LAUNCH_PRESSURE, /* after a stop for pressure, once resources are back */
    LAUNCH_FAILURE   /* after a failed exit and its backoff */
} launch_cause;

typedef struct exit_record {
    double wall; /* seconds since the epoch */
    int pid;
    double runtime; /* seconds */
    char reason[192];
} exit_record;

/* A stop for pressure, reported (as one JSON line) once the child is gone. */
typedef struct pending_pressure {
    int active;
    fedl_pressure from, to;
    int disk_low;
    fedl_readings readings;
    char reason[FEDL_PROBE_TEXT_MAX];
    uint64_t rss_before; /* bytes */
} pending_pressure;

typedef struct supervisor {
    const supervise_options *o;
    char **command;   /* (argc) NULL-terminated */
    char **child_env; /* environ without the systemd variables */
    char command_text[512];
    fedl_probe_options probe;
    fedl_policy policy;
    fedl_monitor *monitor;
    int log_fd, log_warned;
    child_phase phase;
    /* the child */
    int pid, last_pid, runs, restarts;
    uint64_t started_ns;
    stop_cause stop;
    int stop_signal; /* the signal behind STOP_SIGNAL */
    uint64_t stop_sent_ns, kill_at_ns, kill_sent_ns;
    pending_pressure pending;
    int oom_known; /* the cgroup's oom_kill counter when the child started */
    uint64_t oom_at_start;
    char oom_cgroup[FEDL_PROBE_TEXT_MAX];
    /* waiting */
    launch_cause next_launch;
    uint64_t launch_at_ns;
    double backoff;                          /* seconds, the next failure's delay */
    uint64_t restart_ns[MAX_RESTART_BUDGET]; /* ring of failure restart times */
    int restart_total;
    int waiting_said;
    /* exits */
    exit_record exits[MAX_EXITS]; /* ring */
    int exit_total;
    int last_result; /* the last child's result as an exit code */
    char last_reason[192];
    /* shutdown */
    int shutting_down, exit_code;
    /* timers */
    uint64_t interval_ns, next_sample_ns;
    int sample_failing;
    /* systemd */
    uint64_t watchdog_ns, next_watchdog_ns; /* 0: no watchdog */
    int ready_sent, stopping_sent, notify_warned;
    char status[256];
} supervisor;

/* ------------------------------------------------------------ small helpers */

static uint64_t seconds_ns(double seconds)
{
    return seconds <= 0 ? 0 : (uint64_t)(seconds * 1e9 + 0.5);
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* One readable line on stderr. */
static void say(const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    fprintf(stderr, "fedl supervise: %s\n", line);
}

static const char *signal_name(int sig, char *buf, size_t size)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
                 {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
                 {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
                 {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
                 {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
                 {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].sig == sig)
            return names[i].name;
    }
    snprintf(buf, size, "signal %d", sig);
    return buf;
}

/* "exit status 3", "killed by SIGSEGV (core dumped)". */
static void describe_status(int status, char *buf, size_t size)
{
    char name[32];
    if (WIFEXITED(status))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by %s%s", signal_name(WTERMSIG(status), name, sizeof name),
                 WCOREDUMP(status) ? " (core dumped)" : "");
    else
        snprintf(buf, size, "wait status 0x%x", (unsigned)status);
}

/* The shell's convention: the status, or 128 + the signal. */
static int status_as_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* The command as one line, arguments with blanks or quotes in '...'. */
static void join_command(char **command, char *buf, size_t size)
{
    size_t length = 0;
    buf[0] = '\0';
    for (int i = 0; command[i] != NULL && length + 1 < size; i++) {
        int quote = command[i][0] == '\0' || strpbrk(command[i], " \t\n'\"\\$") != NULL;
        int n = snprintf(buf + length, size - length, "%s%s%s%s", i > 0 ? " " : "",
                         quote ? "'" : "", command[i], quote ? "'" : "");
        if (n < 0)
            break;
        length += (size_t)n;
    }
}

static const char *stop_cause_text(stop_cause c)
{
    switch (c) {
    case STOP_MEMORY:
        return "memory pressure";
    case STOP_TEMPERATURE:
        return "temperature";
    case STOP_DISK:
        return "low disk space";
    case STOP_SIGNAL:
        return "a signal";
    case STOP_NONE:
        break;
    }
    return "nothing";
}

/* For STATUS=: "memory critical", "disk low". */
static const char *stop_cause_short(stop_cause c)
{
    switch (c) {
    case STOP_MEMORY:
        return "memory critical";
    case STOP_TEMPERATURE:
        return "temperature critical";
    case STOP_DISK:
        return "disk low";
    default:
        return "stopping";
    }
}

/* Which signal holds the policy critical: CRITICAL is entered for memory
 * (available share, memory PSI full) or temperature; disk_low alone is low
 * disk space. */
static stop_cause pressure_cause(const fedl_policy *p, const fedl_readings *r, fedl_pressure state,
                                 int disk_low)
{
    if (state != FEDL_PRESSURE_CRITICAL)
        return disk_low ? STOP_DISK : STOP_NONE;
    if (p->temp_critical_c > 0 && r->thermal_zones > 0 && r->temp_max_c >= p->temp_critical_c)
        return STOP_TEMPERATURE;
    return STOP_MEMORY;
}

/* ---------------------------------------------------------------- JSON log */

typedef struct json_line {
    char text[JSON_LINE_BYTES];
    size_t length;
} json_line;

static void json_put(json_line *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Append, keeping room for the closing "}\n". */
static void json_put(json_line *j, const char *fmt, ...)
{
    size_t room = sizeof j->text - 3;
    va_list args;
    int n;
    if (j->length >= room)
        return;
    va_start(args, fmt);
    n = vsnprintf(j->text + j->length, room - j->length, fmt, args);
    va_end(args);
    if (n > 0)
        j->length = j->length + (size_t)n < room ? j->length + (size_t)n : room - 1;
}

static void json_string(json_line *j, const char *key, const char *value)
{
    json_put(j, ",\"%s\":\"", key);
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            json_put(j, "\\%c", *c);
        else if (*c < 0x20)
            json_put(j, "\\u%04x", *c);
        else
            json_put(j, "%c", *c);
    }
    json_put(j, "\"");
}

static void json_begin(json_line *j, const char *event, int pid)
{
    j->length = 0;
    json_put(j, "{\"time\":%.3f,\"event\":\"%s\",\"pid\":%d", wall_seconds(), event, pid);
}

static void write_log(supervisor *s, const char *text, size_t length)
{
    while (s->log_fd >= 0 && length > 0) {
        ssize_t n = write(s->log_fd, text, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!s->log_warned)
                say("warning: cannot write the log %s: %s", s->o->log, strerror(errno));
            s->log_warned = 1;
            return;
        }
        text += n;
        length -= (size_t)n;
    }
}

static void json_finish(supervisor *s, json_line *j)
{
    if (j->length > 0 && j->text[j->length - 1] == '\\')
        j->length--; /* a truncated escape */
    memcpy(j->text + j->length, "}\n", 3);
    write_log(s, j->text, j->length + 2);
}

/* A pressure transition: the monitor's own line with the event and the pid
 * added after its time. */
static void log_pressure(supervisor *s, const fedl_monitor_event *e, int pid)
{
    char line[JSON_LINE_BYTES], out[JSON_LINE_BYTES + 64];
    size_t length = fedl_monitor_format_event(e, line, sizeof line);
    const char *comma = strchr(line, ',');
    int n;
    if (comma == NULL) {
        write_log(s, line, length);
        return;
    }
    n = snprintf(out, sizeof out, "%.*s,\"event\":\"pressure\",\"pid\":%d%s", (int)(comma - line),
                 line, pid, comma);
    write_log(s, out, n > 0 && (size_t)n < sizeof out ? (size_t)n : strlen(out));
}

/* ----------------------------------------------------------------- systemd */

static void notify(supervisor *s, const char *state)
{
    fedl_error err = {0};
    if (fedl_sd_notify(state, &err) < 0 && !s->notify_warned) {
        say("warning: systemd notify: %s", err.message);
        s->notify_warned = 1;
    }
}

static void set_status(supervisor *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* STATUS=<one line>, sent when it changes (with READY=1 the first time a
 * child runs). */
static void set_status(supervisor *s, const char *fmt, ...)
{
    char status[sizeof s->status], message[sizeof s->status + 32];
    va_list args;
    va_start(args, fmt);
    vsnprintf(status, sizeof status, fmt, args);
    va_end(args);
    for (char *c = status; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    if (strcmp(status, s->status) == 0)
        return;
    memcpy(s->status, status, sizeof status);
    snprintf(message, sizeof message, "%sSTATUS=%s",
             !s->ready_sent && s->phase == PHASE_RUNNING ? "READY=1\n" : "", status);
    if (s->phase == PHASE_RUNNING)
        s->ready_sent = 1;
    notify(s, message);
}

static void send_stopping(supervisor *s, const char *why)
{
    char message[320];
    if (s->stopping_sent)
        return;
    s->stopping_sent = 1;
    snprintf(message, sizeof message, "STOPPING=1\nSTATUS=stopping: %s", why);
    notify(s, message);
}

/* ------------------------------------------------------------- signals */

static int wake_pipe[2] = {-1, -1};
static const int handled_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE};
#define HANDLED_SIGNALS ((int)(sizeof handled_signals / sizeof handled_signals[0]))
static struct sigaction original_actions[HANDLED_SIGNALS];

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    ssize_t n = write(wake_pipe[1], &byte, 1); /* full pipe: a wake-up is pending anyway */
    (void)n;
    errno = saved;
}

static int set_fd_flags(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int install_signal_handlers(void)
{
    struct sigaction action;
    if (pipe(wake_pipe) != 0 || set_fd_flags(wake_pipe[0]) != 0 || set_fd_flags(wake_pipe[1]) != 0)
        return -1;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = on_signal;
    /* SA_RESTART: blocking reads and waitpid go on; poll() still wakes. */
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (int i = 0; i < HANDLED_SIGNALS; i++) {
        struct sigaction *mine = &action, ignore;
        if (handled_signals[i] == SIGPIPE) {
            /* a closed stderr or log pipe must not kill the supervisor */
            ignore = action;
            ignore.sa_handler = SIG_IGN;
            mine = &ignore;
        }
        if (sigaction(handled_signals[i], mine, &original_actions[i]) != 0)
            return -1;
    }
    return 0;
}

static void restore_signal_handlers(void)
{
    for (int i = 0; i < HANDLED_SIGNALS; i++)
        sigaction(handled_signals[i], &original_actions[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (wake_pipe[i] >= 0)
            close(wake_pipe[i]);
        wake_pipe[i] = -1;
    }
}

/* ------------------------------------------------------------ the child */

/* The environment without NOTIFY_SOCKET and the watchdog variables: the
 * protocol is ours (systemd's NotifyAccess=main ignores the child anyway). */
static char **child_environment(void)
{
    size_t count = 0, kept = 0;
    char **env;
    while (environ[count] != NULL)
        count++;
    env = malloc((count + 1) * sizeof *env);
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) == 0 ||
            strncmp(environ[i], "WATCHDOG_USEC=", 14) == 0 ||
            strncmp(environ[i], "WATCHDOG_PID=", 13) == 0)
            continue;
        env[kept++] = environ[i];
    }
    env[kept] = NULL;
    return env;
}

/* In the forked child: only async-signal-safe calls until exec. A failed
 * exec sends its errno through report_fd. */
static void exec_child(const supervisor *s, int report_fd, const sigset_t *mask)
{
    int code;
    setpgid(0, 0);
    for (int i = 0; i < HANDLED_SIGNALS; i++)
        sigaction(handled_signals[i], &original_actions[i], NULL);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    environ = s->child_env;
    execvp(s->command[0], s->command);
    code = errno;
    if (write(report_fd, &code, sizeof code) < 0)
        code = 0;
    _exit(127);
}

/* fork + execvp, the child leading a process group of its own. Returns the
 * pid, or -1 with *error the errno of fork or exec. */
static int spawn_child(const supervisor *s, int *error)
{
    int report[2], exec_errno = 0;
    sigset_t all, old;
    ssize_t n;
    pid_t pid;
    if (pipe(report) != 0) {
        *error = errno;
        return -1;
    }
    fcntl(report[0], F_SETFD, FD_CLOEXEC);
    fcntl(report[1], F_SETFD, FD_CLOEXEC);
    /* No handler of ours may run in the child before it resets them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        exec_child(s, report[1], &old);
    *error = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -1;
    }
    setpgid(pid, pid); /* both sides, so that killpg works at once */
    do {
        n = read(report[0], &exec_errno, sizeof exec_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof exec_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
        *error = exec_errno;
        return -1;
    }
    return (int)pid;
}

/* The child's whole process group (its own children too); never pid 0,
 * which would be our own group. */
static void signal_child(supervisor *s, int sig)
{
    if (s->pid <= 0)
        return;
    if (killpg(s->pid, sig) != 0)
        kill(s->pid, sig);
}

/* --------------------------------------------------------- state changes */

static void finish(supervisor *s, int code, const char *why)
{
    json_line j;
    s->phase = PHASE_DONE;
    s->exit_code = code;
    say("exiting with status %d: %s", code, why);
    json_begin(&j, "stop", s->last_pid);
    json_put(&j, ",\"status\":%d", code);
    json_string(&j, "reason", why);
    json_finish(s, &j);
    send_stopping(s, why);
}

/* Start the command; on failure finish with 1. */
static void launch(supervisor *s)
{
    int error = 0, pid;
    json_line j;
    fedl_readings r;
    pid = spawn_child(s, &error);
    if (pid < 0) {
        char why[600];
        snprintf(why, sizeof why, "cannot start %s: %s", s->command[0], strerror(error));
        finish(s, 1, why);
        return;
    }
    if (s->runs > 0)
        s->restarts++;
    s->runs++;
    s->pid = s->last_pid = pid;
    s->started_ns = fedl_time_ns();
    s->phase = PHASE_RUNNING;
    s->stop = STOP_NONE;
    s->kill_sent_ns = 0;
    s->waiting_said = 0;
    fedl_monitor_set_pid(s->monitor, pid);
    fedl_monitor_set_reserve(s->monitor, 0);
    /* The OOM killer's count before this child could meet it: the latest
     * sample, taken before the fork. */
    fedl_monitor_latest(s->monitor, &r, NULL, 0);
    s->oom_known = r.cgroup_version != 0;
    s->oom_at_start = r.cgroup_oom_kills;
    memcpy(s->oom_cgroup, r.cgroup_path, sizeof s->oom_cgroup);
    say("started pid %d (run %d): %s", pid, s->runs, s->command_text);
    json_begin(&j, "start", pid);
    json_put(&j, ",\"run\":%d,\"restarts\":%d", s->runs, s->restarts);
    json_string(&j, "command", s->command_text);
    json_finish(s, &j);
    set_status(s, "running pid %d (restarts %d)", pid, s->restarts);
}

/* Ask the child to checkpoint and exit: SIGTERM to its process group now,
 * SIGKILL at the stop deadline. */
static void begin_stop(supervisor *s, stop_cause cause, int signo)
{
    uint64_t now = fedl_time_ns();
    s->phase = PHASE_STOPPING;
    s->stop = cause;
    s->stop_signal = signo;
    s->stop_sent_ns = now;
    s->kill_at_ns = now + seconds_ns(s->o->stop_timeout);
    s->kill_sent_ns = 0;
    signal_child(s, SIGTERM);
    if (cause == STOP_SIGNAL)
        set_status(s, "stopping pid %d: forwarded SIGTERM", s->pid);
    else
        set_status(s, "stopping pid %d: %s", s->pid, stop_cause_short(cause));
}

static void send_kill(supervisor *s)
{
    s->kill_sent_ns = fedl_time_ns();
    say("pid %d still running %.1f s after SIGTERM: SIGKILL to its process group", s->pid,
        (double)(s->kill_sent_ns - s->stop_sent_ns) / 1e9);
    signal_child(s, SIGKILL);
}

/* Whether the cgroup's OOM killer struck since the child started: a fresh
 * reading of the same cgroup with a higher oom_kill count. */
static int oom_killed(supervisor *s, uint64_t *before, uint64_t *after)
{
    fedl_probe_options probe = s->probe;
    fedl_readings r;
    fedl_error err = {0};
    probe.pid = 0;
    if (!s->oom_known || fedl_probe_read(&probe, &r, &err) != FEDL_OK || r.cgroup_version == 0 ||
        strcmp(r.cgroup_path, s->oom_cgroup) != 0)
        return 0;
    *before = s->oom_at_start;
    *after = r.cgroup_oom_kills;
    return r.cgroup_oom_kills > s->oom_at_start;
}

/* The reason of an exit, as reported. */
static void describe_exit(supervisor *s, int status, char *buf, size_t size)
{
    char plain[96], name[32];
    uint64_t before = 0, after = 0;
    describe_status(status, plain, sizeof plain);
    if (s->stop == STOP_SIGNAL) {
        snprintf(buf, size, "stopped by fedl supervise on %s, %s",
                 signal_name(s->stop_signal, name, sizeof name), plain);
    } else if (s->stop != STOP_NONE) {
        snprintf(buf, size, "stopped by fedl supervise for %s, %s", stop_cause_text(s->stop),
                 plain);
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        if (oom_killed(s, &before, &after))
            snprintf(buf, size, "%s (OOM killer: cgroup oom_kill %llu -> %llu)", plain,
                     (unsigned long long)before, (unsigned long long)after);
        else
            snprintf(buf, size, "%s (not by fedl supervise)", plain);
    } else {
        snprintf(buf, size, "%s", plain);
    }
    if (s->stop != STOP_NONE && s->kill_sent_ns != 0) {
        size_t length = strlen(buf);
        snprintf(buf + length, size - length, " (SIGKILL %.1f s after SIGTERM)",
                 (double)(s->kill_sent_ns - s->stop_sent_ns) / 1e9);
    }
}

static void record_exit(supervisor *s, int pid, double runtime, const char *reason)
{
    exit_record *e = &s->exits[s->exit_total % MAX_EXITS];
    e->wall = wall_seconds();
    e->pid = pid;
    e->runtime = runtime;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    s->exit_total++;
}

/* The pressure line of a stop, now that its outcome is known. */
static void report_stop_outcome(supervisor *s, uint64_t now)
{
    fedl_monitor_event e;
    char action[256];
    int length;
    if (!s->pending.active)
        return;
    length = snprintf(action, sizeof action, "%s: SIGTERM to pid %d",
                      s->stop == STOP_DISK ? "pause: disk low" : "checkpoint and release", s->pid);
    if (s->kill_sent_ns != 0 && length > 0 && (size_t)length < sizeof action)
        length +=
            snprintf(action + length, sizeof action - (size_t)length, ", SIGKILL after %.1f s",
                     (double)(s->kill_sent_ns - s->stop_sent_ns) / 1e9);
    if (length > 0 && (size_t)length < sizeof action)
        snprintf(action + length, sizeof action - (size_t)length, ", exited after %.2f s",
                 (double)(now - s->stop_sent_ns) / 1e9);
    memset(&e, 0, sizeof e);
    e.time = wall_seconds();
    e.from = s->pending.from;
    e.to = s->pending.to;
    e.disk_low = s->pending.disk_low;
    e.readings = &s->pending.readings;
    e.reason = s->pending.reason;
    e.action = action;
    e.rss_before = s->pending.rss_before;
    e.rss_after = 0;
    log_pressure(s, &e, s->pid);
    s->pending.active = 0;
}

static int restarts_within_window(const supervisor *s, uint64_t now)
{
    uint64_t window = seconds_ns(s->o->restart_window);
    int kept = s->restart_total < MAX_RESTART_BUDGET ? s->restart_total : MAX_RESTART_BUDGET;
    int count = 0;
    for (int i = 0; i < kept; i++) {
        uint64_t t = s->restart_ns[i];
        if (now - t <= window)
            count++;
    }
    return count;
}

static void format_clock(double wall, char *buf, size_t size)
{
    time_t seconds = (time_t)wall;
    struct tm tm;
    char date[32];
    localtime_r(&seconds, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03d", date, (int)((wall - (double)seconds) * 1000.0));
}

static void give_up(supervisor *s, int failures_in_window)
{
    json_line j;
    int first = s->exit_total > MAX_EXITS ? s->exit_total - MAX_EXITS : 0;
    char why[256];
    say("giving up on %s: it failed (%s) and %d restarts within the last %g s spend the "
        "restart budget (--restart-budget %d, --restart-window %g s). Every exit:",
        s->command[0], s->last_reason, failures_in_window, (double)s->o->restart_window,
        s->o->restart_budget, (double)s->o->restart_window);
    if (first > 0)
        fprintf(stderr, "  (%d earlier exits not kept)\n", first);
    for (int i = first; i < s->exit_total; i++) {
        const exit_record *e = &s->exits[i % MAX_EXITS];
        char clock[48];
        format_clock(e->wall, clock, sizeof clock);
        fprintf(stderr, "  %s  pid %-7d  ran %8.1f s  %s\n", clock, e->pid, e->runtime, e->reason);
    }
    json_begin(&j, "give-up", s->last_pid);
    json_put(&j, ",\"runs\":%d,\"restarts_in_window\":%d,\"budget\":%d,\"window\":%g", s->runs,
             failures_in_window, s->o->restart_budget, (double)s->o->restart_window);
    json_string(&j, "last_exit", s->last_reason);
    json_finish(s, &j);
    snprintf(why, sizeof why, "restart budget spent (%d restarts within %g s), last: %.150s",
             failures_in_window, (double)s->o->restart_window, s->last_reason);
    finish(s, 1, why);
}

/* A failed exit: restart after the backoff, or give up. */
static void schedule_restart(supervisor *s, double runtime, uint64_t now)
{
    json_line j;
    int in_window = restarts_within_window(s, now);
    double delay;
    if (in_window >= s->o->restart_budget) {
        give_up(s, in_window);
        return;
    }
    if (runtime > s->o->backoff_max)
        s->backoff = s->o->backoff_initial; /* it ran well for a while: start over */
    delay = s->backoff < s->o->backoff_max ? s->backoff : s->o->backoff_max;
    s->backoff = delay * 2 < s->o->backoff_max ? delay * 2 : s->o->backoff_max;
    s->restart_ns[s->restart_total % MAX_RESTART_BUDGET] = now;
    s->restart_total++;
    s->phase = PHASE_WAITING;
    s->next_launch = LAUNCH_FAILURE;
    s->launch_at_ns = now + seconds_ns(delay);
    say("restarting in %g s (restart %d of %d within %g s)", delay, in_window + 1,
        s->o->restart_budget, (double)s->o->restart_window);
    json_begin(&j, "restart", s->last_pid);
    json_put(&j, ",\"cause\":\"failure\",\"delay\":%.3f,\"restarts_in_window\":%d,\"budget\":%d",
             delay, in_window + 1, s->o->restart_budget);
    json_string(&j, "after", s->last_reason);
    json_finish(s, &j);
    set_status(s, "backing off %g s after %s", delay, s->last_reason);
}

static void on_child_exit(supervisor *s, int status)
{
    uint64_t now = fedl_time_ns();
    double runtime = (double)(now - s->started_ns) / 1e9;
    stop_cause stopped = s->stop;
    json_line j;
    char name[32];
    describe_exit(s, status, s->last_reason, sizeof s->last_reason);
    s->last_result = status_as_exit_code(status);
    record_exit(s, s->pid, runtime, s->last_reason);
    say("pid %d: %s (ran %.2f s)", s->pid, s->last_reason, runtime);
    report_stop_outcome(s, now);
    json_begin(&j, "exit", s->pid);
    json_string(&j, "reason", s->last_reason);
    if (WIFEXITED(status))
        json_put(&j, ",\"status\":%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        json_put(&j, ",\"signal\":\"%s\",\"core_dumped\":%s",
                 signal_name(WTERMSIG(status), name, sizeof name),
                 WCOREDUMP(status) ? "true" : "false");
    json_put(&j, ",\"runtime\":%.3f,\"by_supervise\":%s", runtime,
             stopped != STOP_NONE ? "true" : "false");
    json_finish(s, &j);
    s->pid = 0;
    s->stop = STOP_NONE;
    s->phase = PHASE_WAITING;
    /* The probes find the cgroup through the watched process: ours (the
     * child's too) until the next child runs. */
    fedl_monitor_set_pid(s->monitor, 0);
    if (s->shutting_down) {
        finish(s, s->last_result, s->last_reason);
    } else if (stopped != STOP_NONE) {
        /* paused: relaunch once the policy says resources are back */
        s->next_launch = LAUNCH_PRESSURE;
        s->launch_at_ns = now;
        set_status(s, "paused: %s: %s", stop_cause_short(stopped), s->pending.reason);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        finish(s, 0, "the command finished successfully");
    } else {
        schedule_restart(s, runtime, now);
    }
}

/* Stop signals to us: forward; a second one while stopping kills at once. */
static void on_stop_signal(supervisor *s, int signo)
{
    char name[32], why[160];
    const char *signame = signal_name(signo, name, sizeof name);
    if (s->shutting_down) {
        if (s->phase == PHASE_STOPPING && s->kill_sent_ns == 0) {
            say("%s again: SIGKILL to pid %d's process group", signame, s->pid);
            s->kill_sent_ns = fedl_time_ns();
            signal_child(s, SIGKILL);
        }
        return;
    }
    s->shutting_down = 1;
    snprintf(why, sizeof why, "%s received", signame);
    send_stopping(s, why);
    if (s->phase == PHASE_RUNNING) {
        say("%s: forwarding SIGTERM to pid %d's process group (SIGKILL after %g s)", signame,
            s->pid, (double)s->o->stop_timeout);
        begin_stop(s, STOP_SIGNAL, signo);
    } else if (s->phase == PHASE_STOPPING) {
        say("%s: pid %d is already stopping; exiting once it has", signame, s->pid);
    } else if (s->phase == PHASE_WAITING) {
        snprintf(why, sizeof why, "%s received while no child ran (last: %.60s)", signame,
                 s->runs > 0 ? s->last_reason : "none started");
        finish(s, s->runs > 0 ? s->last_result : 0, why);
    }
}

/* ------------------------------------------------------------- pressure */

static int resources_clear(const supervisor *s)
{
    int disk_low = 0;
    return fedl_monitor_state(s->monitor, NULL, &disk_low) != FEDL_PRESSURE_CRITICAL && !disk_low;
}

/* Critical pressure or low disk while the child runs: stop it, and keep the
 * transition to report with the outcome. */
static void stop_for_pressure(supervisor *s, const fedl_policy_decision *d, const fedl_readings *r)
{
    stop_cause cause = pressure_cause(&s->policy, r, d->state, d->disk_low);
    s->pending.active = 1;
    s->pending.from = d->previous;
    s->pending.to = d->state;
    s->pending.disk_low = d->disk_low;
    s->pending.readings = *r;
    memcpy(s->pending.reason, d->reason, sizeof s->pending.reason);
    s->pending.rss_before = r->has_rss ? r->rss : 0;
    /* the memory the child gives back now, it will want again */
    if (cause != STOP_DISK)
        fedl_monitor_set_reserve(s->monitor, s->pending.rss_before);
    say("pressure %s -> %s%s: %s; asking pid %d to checkpoint and exit (SIGTERM to its process "
        "group, SIGKILL after %g s)",
        fedl_pressure_name(d->previous), fedl_pressure_name(d->state),
        d->disk_low ? " (disk low)" : "", d->reason, s->pid, (double)s->o->stop_timeout);
    begin_stop(s, cause, 0);
}

/* A transition that calls for no stop: log it with what was (not) done. */
static void log_transition(supervisor *s, const fedl_policy_decision *d, const fedl_readings *r,
                           const char *action, int pid, uint64_t rss)
{
    fedl_monitor_event e;
    memset(&e, 0, sizeof e);
    e.time = wall_seconds();
    e.from = d->previous;
    e.to = d->state;
    e.disk_low = d->disk_low;
    e.readings = r;
    e.reason = d->reason;
    e.action = action;
    e.rss_before = e.rss_after = rss;
    log_pressure(s, &e, pid);
    say("pressure %s -> %s%s: %s; %s", fedl_pressure_name(d->previous),
        fedl_pressure_name(d->state), d->disk_low ? " (disk low)" : "", d->reason, action);
}

static void act_on_decision(supervisor *s, const fedl_policy_decision *d, const fedl_readings *r)
{
    uint64_t now = fedl_time_ns();
    uint64_t rss = r->has_rss && s->pid > 0 ? r->rss : 0;
    char action[160];
    if (s->phase == PHASE_RUNNING && (d->state == FEDL_PRESSURE_CRITICAL || d->disk_low)) {
        stop_for_pressure(s, d, r);
        return;
    }
    if (!d->changed)
        return;
    if (s->phase == PHASE_WAITING && !s->shutting_down && d->state != FEDL_PRESSURE_CRITICAL &&
        !d->disk_low && now >= s->launch_at_ns)
        /* relaunch_if_due starts it right after this sample */
        snprintf(action, sizeof action, "%s",
                 s->next_launch == LAUNCH_FIRST ? "start the command"
                                                : "resume: relaunch the command");
    else if (s->phase == PHASE_WAITING && !s->shutting_down && d->state != FEDL_PRESSURE_CRITICAL &&
             !d->disk_low)
        snprintf(action, sizeof action, "logged only (backing off)");
    else if (s->phase == PHASE_RUNNING)
        snprintf(action, sizeof action,
                 "logged only (shrinking in place is fedl train --monitor's job)");
    else if (s->phase == PHASE_STOPPING)
        snprintf(action, sizeof action, "logged only (pid %d is stopping)", s->pid);
    else
        snprintf(action, sizeof action, "logged only (no child running)");
    log_transition(s, d, r, action, s->pid > 0 ? s->pid : s->last_pid, rss);
}

static void sample_and_act(supervisor *s)
{
    fedl_policy_decision d;
    fedl_readings r;
    fedl_error err = {0};
    uint64_t now = fedl_time_ns();
    s->next_sample_ns = now + s->interval_ns;
    if (fedl_monitor_sample(s->monitor, &d, &err) != FEDL_OK) {
        if (!s->sample_failing)
            say("warning: probes: %s (state unchanged; said once until they read again)",
                err.message);
        s->sample_failing = 1;
        return;
    }
    if (s->sample_failing)
        say("probes read again");
    s->sample_failing = 0;
    fedl_monitor_latest(s->monitor, &r, NULL, 0);
    act_on_decision(s, &d, &r);
}

/* -------------------------------------------------------------- the loop */

static void relaunch_if_due(supervisor *s)
{
    uint64_t now = fedl_time_ns();
    if (s->phase != PHASE_WAITING || s->shutting_down || now < s->launch_at_ns)
        return;
    if (!resources_clear(s)) {
        char reason[FEDL_PROBE_TEXT_MAX];
        if (!s->waiting_said) {
            fedl_monitor_latest(s->monitor, NULL, reason, sizeof reason);
            say("waiting for resources before %s: %s",
                s->next_launch == LAUNCH_FIRST ? "starting" : "relaunching", reason);
            set_status(s, "waiting for resources: %s", reason);
            s->waiting_said = 1;
        }
        return;
    }
    if (s->next_launch == LAUNCH_PRESSURE) {
        json_line j;
        json_begin(&j, "restart", s->last_pid);
        json_put(&j, ",\"cause\":\"pressure\",\"delay\":0");
        json_finish(s, &j);
    }
    launch(s);
}

static void handle_wakeups(supervisor *s)
{
    unsigned char bytes[64];
    ssize_t n;
    while ((n = read(wake_pipe[0], bytes, sizeof bytes)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (bytes[i] == SIGTERM || bytes[i] == SIGINT || bytes[i] == SIGHUP)
                on_stop_signal(s, bytes[i]);
        }
    }
}

static void reap_child(supervisor *s)
{
    int status;
    pid_t done;
    if (s->pid <= 0)
        return;
    do {
        done = waitpid(s->pid, &status, WNOHANG);
    } while (done < 0 && errno == EINTR);
    if (done == s->pid)
        on_child_exit(s, status);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static int poll_timeout_ms(const supervisor *s)
{
    uint64_t now = fedl_time_ns(), next = s->next_sample_ns, wait_ms;
    if (s->phase == PHASE_STOPPING && s->kill_sent_ns == 0)
        next = earliest(next, s->kill_at_ns);
    if (s->phase == PHASE_WAITING && !s->shutting_down)
        next = earliest(next, s->launch_at_ns);
    if (s->watchdog_ns != 0)
        next = earliest(next, s->next_watchdog_ns);
    if (next <= now)
        return 0;
    wait_ms = (next - now + NS_PER_MS - 1) / NS_PER_MS;
    return wait_ms > 60000 ? 60000 : (int)wait_ms;
}

static void supervise_loop(supervisor *s)
{
    while (s->phase != PHASE_DONE) {
        struct pollfd p = {.fd = wake_pipe[0], .events = POLLIN};
        uint64_t now;
        if (poll(&p, 1, poll_timeout_ms(s)) < 0 && errno != EINTR) {
            char why[128];
            snprintf(why, sizeof why, "poll: %s", strerror(errno));
            if (s->pid > 0)
                signal_child(s, SIGTERM);
            finish(s, 1, why);
            break;
        }
        handle_wakeups(s);
        reap_child(s);
        if (s->phase == PHASE_DONE)
            break;
        now = fedl_time_ns();
        if (s->phase == PHASE_STOPPING && s->kill_sent_ns == 0 && now >= s->kill_at_ns)
            send_kill(s);
        if (now >= s->next_sample_ns)
            sample_and_act(s);
        relaunch_if_due(s);
        if (s->watchdog_ns != 0 && fedl_time_ns() >= s->next_watchdog_ns) {
            notify(s, "WATCHDOG=1");
            s->next_watchdog_ns = fedl_time_ns() + s->watchdog_ns / 2;
        }
    }
}

/* ----------------------------------------------------------------- setup */

/* The index of the first "--" after the subcommand, or argc. */
static int find_separator(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i;
    }
    return argc;
}

static int load_policy(const supervise_options *o, fedl_policy *policy)
{
    fedl_error err = {0};
    *policy = fedl_policy_defaults();
    if (o->policy != NULL && fedl_policy_load(o->policy, policy, &err) != FEDL_OK) {
        fprintf(stderr, "fedl supervise: --policy: %s\n", err.message);
        return 1;
    }
    if (o->interval_ms > 0)
        policy->interval_ms = (uint64_t)o->interval_ms;
    if (fedl_policy_check(policy, &err) != FEDL_OK) {
        fprintf(stderr, "fedl supervise: policy: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int open_log(const supervise_options *o)
{
    int fd;
    if (o->log == NULL)
        return -1;
    if (strcmp(o->log, "-") == 0)
        return STDERR_FILENO;
    fd = open(o->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "fedl supervise: --log %s: %s\n", o->log, strerror(errno));
    return fd < 0 ? -2 : fd;
}

static int create_monitor(supervisor *s)
{
    fedl_monitor_config config = fedl_monitor_config_defaults();
    fedl_error err = {0};
    config.probe = s->probe;
    config.policy = s->policy;
    config.log_fd = -1;      /* the pressure lines are ours, with the action's outcome */
    config.use_triggers = 0; /* sampled on this thread every interval */
    if (fedl_monitor_create(&config, &s->monitor, &err) != FEDL_OK) {
        fprintf(stderr, "fedl supervise: monitor: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int run_supervisor(supervisor *s)
{
    uint64_t watchdog_usec = getenv("NOTIFY_SOCKET") != NULL ? fedl_sd_watchdog_usec() : 0;
    s->interval_ns = s->policy.interval_ms * NS_PER_MS;
    s->backoff = s->o->backoff_initial;
    s->phase = PHASE_WAITING;
    s->next_launch = LAUNCH_FIRST;
    s->launch_at_ns = 0;
    if (watchdog_usec > 0) {
        s->watchdog_ns = watchdog_usec * 1000;
        s->next_watchdog_ns = fedl_time_ns() + s->watchdog_ns / 2;
    }
    if (install_signal_handlers() != 0) {
        fprintf(stderr, "fedl supervise: signal handlers: %s\n", strerror(errno));
        restore_signal_handlers();
        return 1;
    }
    /* A first reading: do not start into critical pressure, and know the
     * OOM killer's count before the first child. */
    sample_and_act(s);
    relaunch_if_due(s);
    supervise_loop(s);
    restore_signal_handlers();
    return s->exit_code;
}

int cmd_supervise(int argc, char **argv)
{
    supervise_options o = {.stop_timeout = 30.0f,
                           .restart_window = 600.0f,
                           .backoff_initial = 1.0f,
                           .backoff_max = 60.0f,
                           .restart_budget = 5};
    const cli_option options[] = {
        {"policy", CLI_STRING, &o.policy, "FILE", "pressure policy (key = value lines) [defaults]",
         0, 0},
        {"stop-timeout", CLI_FLOAT, &o.stop_timeout, "S", "SIGKILL this long after SIGTERM [30]", 0,
         86400},
        {"restart-budget", CLI_INT, &o.restart_budget, "N",
         "restarts after failures allowed within the window [5]", 0, MAX_RESTART_BUDGET},
        {"restart-window", CLI_FLOAT, &o.restart_window, "S",
         "the window of the restart budget [600]", 0, 1e8},
        {"backoff-initial", CLI_FLOAT, &o.backoff_initial, "S",
         "delay before the first restart, doubling [1]", 0, 86400},
        {"backoff-max", CLI_FLOAT, &o.backoff_max, "S",
         "longest delay; a run this long resets it [60]", 0, 86400},
        {"log", CLI_STRING, &o.log, "FILE|-", "append JSON lines of events here (-: stderr)", 0, 0},
        {"disk", CLI_STRING, &o.disk, "DIR", "watch the free space of DIR's filesystem", 0, 0},
        {"interval", CLI_INT, &o.interval_ms, "MS", "sampling interval [the policy's: 500]", 10,
         3600000},
        {"root", CLI_STRING, &o.root, "DIR",
         "for tests: probes read a fake /proc and /sys under DIR", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    cli_positionals none = {"-- COMMAND [ARGS...]", NULL, 0, 0, 0};
    int split = find_separator(argc, argv), rc;
    supervisor *s;
    rc = cli_parse_positionals("supervise", supervise_usage, options, &none, split, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (split + 1 >= argc) {
        fprintf(stderr, "fedl supervise: a command is required after '--' (see 'fedl supervise "
                        "--help')\n");
        return 2;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        fprintf(stderr, "fedl supervise: out of memory\n");
        return 1;
    }
    s->o = &o;
    s->command = argv + split + 1;
    join_command(s->command, s->command_text, sizeof s->command_text);
    s->probe = (fedl_probe_options){o.root, o.disk, 0};
    s->log_fd = -1;
    rc = load_policy(&o, &s->policy);
    if (rc == 0) {
        s->log_fd = open_log(&o);
        rc = s->log_fd == -2 ? 1 : 0;
    }
    if (rc == 0) {
        s->child_env = child_environment();
        rc = s->child_env == NULL ? 1 : create_monitor(s);
    }
    if (rc == 0)
        rc = run_supervisor(s);
    if (s->log_fd > STDERR_FILENO)
        close(s->log_fd);
    fedl_monitor_destroy(s->monitor);
    free(s->child_env);
    free(s);
    return rc;
}
