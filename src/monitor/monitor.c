/*
 * monitor.c - the monitor: probes and policy on a thread of their own,
 * woken every interval and, on the real system, at once by the kernel's
 * pressure notifications (a PSI trigger on the memory pressure file, and on
 * cgroup v1 an eventfd registered for memory.pressure_level). It publishes
 * the state; those who act on it report what they did, and each report
 * becomes one JSON line in the log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fedl/mem.h"
#include "fedl/monitor.h"

#define MAX_CALLBACKS 8
#define MS_NS 1000000ull
#define MIN_TRIGGERED_GAP_NS (20 * MS_NS) /* triggers sample at most this often */

typedef struct callback {
    fedl_monitor_callback fn;
    void *user;
} callback;

struct fedl_monitor {
    fedl_monitor_config config;
    char root[4096]; /* config.probe.root copied */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    /* under lock */
    fedl_policy_state policy;
    fedl_readings latest;
    char reason[FEDL_PROBE_TEXT_MAX];
    fedl_error last_error;
    /* read without the lock */
    atomic_int state;
    atomic_int disk_low;
    atomic_ullong generation;
    atomic_int pid;
    callback callbacks[MAX_CALLBACKS];
    int callback_count;
    /* the thread */
    pthread_t thread;
    int running;
    int wake_fd;       /* eventfd: stop */
    int psi_fd;        /* PSI trigger, POLLPRI; -1 = none */
    int v1_event_fd;   /* eventfd bound to memory.pressure_level; -1 = none */
    int v1_level_fd;   /* the memory.pressure_level file, kept open while registered */
    int v1_usage_fd;   /* memory.usage_in_bytes, with thresholds on the same eventfd */
    int v1_thresholds; /* how many were registered */
    uint64_t v1_limit; /* the limit they were placed for (bytes) */
    uint64_t last_sample_ns;
    uint64_t samples, triggered_samples;
};

fedl_monitor_config fedl_monitor_config_defaults(void)
{
    fedl_monitor_config c;
    memset(&c, 0, sizeof c);
    c.policy = fedl_policy_defaults();
    c.log_fd = -1;
    c.use_triggers = 1;
    return c;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

fedl_status fedl_monitor_create(const fedl_monitor_config *c, fedl_monitor **out, fedl_error *err)
{
    fedl_monitor *m;
    fedl_status st;
    *out = NULL;
    st = fedl_policy_check(&c->policy, err);
    if (st != FEDL_OK)
        return st;
    if (c->probe.root != NULL && strlen(c->probe.root) >= sizeof m->root)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "monitor: root path too long");
    m = fedl_mem_alloc(NULL, sizeof *m); /* the default allocator */
    if (m == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "monitor: cannot allocate");
    memset(m, 0, sizeof *m);
    m->config = *c;
    if (c->probe.root != NULL) {
        strcpy(m->root, c->probe.root);
        m->config.probe.root = m->root;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->changed, NULL);
    fedl_policy_init(&m->policy, &c->policy);
    atomic_init(&m->state, FEDL_PRESSURE_OK);
    atomic_init(&m->disk_low, 0);
    atomic_init(&m->generation, 0);
    atomic_init(&m->pid, c->probe.pid);
    m->wake_fd = m->psi_fd = m->v1_event_fd = m->v1_level_fd = m->v1_usage_fd = -1;
    snprintf(m->reason, sizeof m->reason, "not sampled yet");
    *out = m;
    return FEDL_OK;
}

void fedl_monitor_destroy(fedl_monitor *m)
{
    if (m == NULL)
        return;
    fedl_monitor_stop(m);
    pthread_cond_destroy(&m->changed);
    pthread_mutex_destroy(&m->lock);
    fedl_mem_free(NULL, m, sizeof *m);
}

fedl_status fedl_monitor_add_callback(fedl_monitor *m, fedl_monitor_callback fn, void *user,
                                      fedl_error *err)
{
    if (m->running)
        return fedl_error_set(err, FEDL_ERR_STATE, "monitor: add callbacks before starting it");
    if (m->callback_count == MAX_CALLBACKS)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "monitor: at most %d callbacks",
                              MAX_CALLBACKS);
    m->callbacks[m->callback_count++] = (callback){fn, user};
    return FEDL_OK;
}

void fedl_monitor_set_pid(fedl_monitor *m, int pid)
{
    atomic_store(&m->pid, pid);
}

/* ------------------------------------------------------------- sampling */

static void call_back(fedl_monitor *m, const fedl_monitor_event *e)
{
    for (int i = 0; i < m->callback_count; i++)
        m->callbacks[i].fn(m->callbacks[i].user, e);
}

/* Read the probes and feed the policy; publish a change and tell the
 * callbacks ("detected"). */
static fedl_status sample(fedl_monitor *m, fedl_policy_decision *d, fedl_error *err)
{
    fedl_probe_options probe = m->config.probe;
    fedl_readings r;
    fedl_policy_decision local;
    fedl_status st;
    if (d == NULL)
        d = &local;
    probe.pid = atomic_load(&m->pid);
    st = fedl_probe_read(&probe, &r, err);
    if (st != FEDL_OK)
        return st;
    pthread_mutex_lock(&m->lock);
    fedl_policy_update(&m->policy, &r, d);
    m->latest = r;
    memcpy(m->reason, d->reason, sizeof m->reason);
    m->last_sample_ns = r.time_ns;
    m->samples++;
    if (d->changed) {
        atomic_store(&m->state, (int)d->state);
        atomic_store(&m->disk_low, d->disk_low);
        atomic_fetch_add(&m->generation, 1);
        pthread_cond_broadcast(&m->changed);
    }
    pthread_mutex_unlock(&m->lock);
    if (d->changed) {
        fedl_monitor_event e;
        memset(&e, 0, sizeof e);
        e.time = realtime_s();
        e.from = d->previous;
        e.to = d->state;
        e.disk_low = d->disk_low;
        e.readings = &r;
        e.reason = d->reason;
        e.action = "detected";
        e.rss_before = e.rss_after = r.has_rss ? r.rss : 0;
        call_back(m, &e);
    }
    return FEDL_OK;
}

fedl_status fedl_monitor_sample(fedl_monitor *m, fedl_policy_decision *d, fedl_error *err)
{
    if (m->running)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "monitor: fedl_monitor_sample while the monitor thread runs");
    return sample(m, d, err);
}

/* ------------------------------------------------------------- triggers */

static int is_real_root(const fedl_monitor *m)
{
    return m->config.probe.root == NULL || m->config.probe.root[0] == '\0' ||
           strcmp(m->config.probe.root, "/") == 0;
}

/* The memory pressure file with a trigger written to it, or -1. */
static int psi_trigger_fd(const fedl_readings *r, const char *trigger, size_t size)
{
    char path[4400];
    int fd;
    if (r->cgroup_version == 2 && r->cgroup_path[0] != '\0')
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.pressure", r->cgroup_path);
    else
        snprintf(path, sizeof path, "/proc/pressure/memory");
    fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && r->cgroup_version == 2) /* no per-cgroup file: the system's */
        fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 && write(fd, trigger, size) < 0) {
        fedl_log(FEDL_LOG_DEBUG, "monitor: PSI trigger \"%s\" refused: %s", trigger,
                 strerror(errno));
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A PSI trigger wakes the thread on memory stalls: 150 ms of "some" stall
 * within 1 s where the kernel allows it (CAP_SYS_RESOURCE), else 300 ms
 * within 2 s, the shortest window it gives an unprivileged process; a
 * refusal of both means sampling alone. */
static void open_psi_trigger(fedl_monitor *m, const fedl_readings *r)
{
    static const char fast[] = "some 150000 1000000", unprivileged[] = "some 300000 2000000";
    m->psi_fd = psi_trigger_fd(r, fast, sizeof fast);
    if (m->psi_fd < 0)
        m->psi_fd = psi_trigger_fd(r, unprivileged, sizeof unprivileged);
}

/* cgroup v1 usage thresholds on the pressure eventfd: one at every 1% of
 * the limit from the CONSTRAINED (or CRITICAL) enter level down to 1%
 * left, so that a hog climbing towards the limit wakes the monitor every
 * 1% of the way instead of once per interval. Usage counts the page cache
 * too, so a crossing only means "look now"; the working set decides. */
static void add_v1_usage_thresholds(fedl_monitor *m, const char *dir, int control,
                                    const fedl_readings *r)
{
    const fedl_policy *p = &m->config.policy;
    double top = p->mem_constrained_pct > 0.0 ? p->mem_constrained_pct : p->mem_critical_pct;
    char path[4500], line[96];
    m->v1_limit = r->cgroup_limit;
    if (r->cgroup_limit == 0 || top <= 0.0)
        return;
    snprintf(path, sizeof path, "%s/memory.usage_in_bytes", dir);
    m->v1_usage_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m->v1_usage_fd < 0)
        return;
    for (int pct = (int)top + 1; pct >= 1; pct--) {
        uint64_t threshold = r->cgroup_limit - r->cgroup_limit / 100 * (uint64_t)pct;
        snprintf(line, sizeof line, "%d %d %llu", m->v1_event_fd, m->v1_usage_fd,
                 (unsigned long long)threshold);
        if (write(control, line, strlen(line)) < 0)
            break;
        m->v1_thresholds++;
    }
}

/* cgroup v1: an eventfd that the kernel signals at the "low" vmpressure
 * level of the cgroup (reclaim has started) and at usage thresholds,
 * registered through cgroup.event_control. */
static void open_v1_pressure_event(fedl_monitor *m, const fedl_readings *r)
{
    char dir[4400], path[4500], line[64];
    int control;
    if (r->cgroup_version != 1)
        return;
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory%s", r->cgroup_path);
    snprintf(path, sizeof path, "%s/memory.pressure_level", dir);
    m->v1_level_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m->v1_level_fd < 0)
        return;
    m->v1_event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    snprintf(path, sizeof path, "%s/cgroup.event_control", dir);
    control = open(path, O_WRONLY | O_CLOEXEC);
    snprintf(line, sizeof line, "%d %d low", m->v1_event_fd, m->v1_level_fd);
    if (m->v1_event_fd < 0 || control < 0 || write(control, line, strlen(line)) < 0) {
        fedl_log(FEDL_LOG_DEBUG, "monitor: cgroup v1 pressure events unavailable: sampling only");
        if (m->v1_event_fd >= 0)
            close(m->v1_event_fd);
        close(m->v1_level_fd);
        m->v1_event_fd = m->v1_level_fd = -1;
    } else {
        add_v1_usage_thresholds(m, dir, control, r);
    }
    if (control >= 0)
        close(control);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void drain(int fd)
{
    uint64_t count;
    while (read(fd, &count, sizeof count) == (ssize_t)sizeof count)
        ;
}

/* --------------------------------------------------------------- thread */

/* The cgroup's limit changed since the v1 thresholds were placed (or the
 * cgroup went away): place them again for the new one. The monitor thread
 * alone owns these descriptors. */
static void refresh_v1_triggers(fedl_monitor *m)
{
    if (m->v1_event_fd < 0 || m->latest.cgroup_limit == m->v1_limit)
        return;
    close_fd(&m->v1_event_fd);
    close_fd(&m->v1_level_fd);
    close_fd(&m->v1_usage_fd);
    m->v1_thresholds = 0;
    open_v1_pressure_event(m, &m->latest);
    fedl_log(FEDL_LOG_INFO, "monitor: cgroup limit now %llu bytes: %d usage thresholds",
             (unsigned long long)m->v1_limit, m->v1_thresholds);
}

static void *monitor_thread(void *arg)
{
    fedl_monitor *m = arg;
    uint64_t interval_ns = m->config.policy.interval_ms * MS_NS, next = monotonic_ns();
    int warned = 0;
    for (;;) {
        struct pollfd fds[3];
        int n = 0, psi = -1, timeout_ms, triggered = 0;
        uint64_t now = monotonic_ns();
        if (now >= next) {
            fedl_error err = {0};
            if (sample(m, NULL, &err) != FEDL_OK && !warned) {
                fedl_log(FEDL_LOG_WARN, "monitor: %s (the monitor keeps trying)", err.message);
                warned = 1;
            }
            refresh_v1_triggers(m);
            now = monotonic_ns();
            next = now + interval_ns;
        }
        fds[n++] = (struct pollfd){m->wake_fd, POLLIN, 0};
        if (m->psi_fd >= 0) {
            psi = n;
            fds[n++] = (struct pollfd){m->psi_fd, POLLPRI, 0};
        }
        if (m->v1_event_fd >= 0)
            fds[n++] = (struct pollfd){m->v1_event_fd, POLLIN, 0};
        timeout_ms = (int)((next - now + MS_NS - 1) / MS_NS);
        if (poll(fds, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN)
            break;
        for (int i = 1; i < n; i++)
            if (fds[i].revents & (POLLPRI | POLLIN)) {
                triggered = 1;
                if (fds[i].fd == m->v1_event_fd)
                    drain(m->v1_event_fd);
            }
        if (psi >= 0 && (fds[psi].revents & (POLLERR | POLLNVAL)))
            close_fd(&m->psi_fd); /* the trigger went away (the cgroup was removed) */
        if (triggered) {
            /* Sample now, but not more often than every 20 ms under a
             * storm of notifications. */
            uint64_t soonest = m->last_sample_ns + MIN_TRIGGERED_GAP_NS;
            next = soonest < next ? soonest : next;
            m->triggered_samples++;
        }
    }
    return NULL;
}

fedl_status fedl_monitor_start(fedl_monitor *m, fedl_error *err)
{
    fedl_status st;
    if (m->running)
        return fedl_error_set(err, FEDL_ERR_STATE, "monitor: already started");
    st = sample(m, NULL, err); /* a first reading: fails early on a bad probe */
    if (st != FEDL_OK)
        return st;
    m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->wake_fd < 0)
        return fedl_error_set(err, FEDL_ERR_IO, "monitor: eventfd: %s", strerror(errno));
    if (m->config.use_triggers && is_real_root(m)) {
        open_psi_trigger(m, &m->latest);
        open_v1_pressure_event(m, &m->latest);
    }
    if (pthread_create(&m->thread, NULL, monitor_thread, m) != 0) {
        close_fd(&m->wake_fd);
        close_fd(&m->psi_fd);
        close_fd(&m->v1_event_fd);
        close_fd(&m->v1_level_fd);
        close_fd(&m->v1_usage_fd);
        return fedl_error_set(err, FEDL_ERR_NOMEM, "monitor: cannot start its thread");
    }
    m->running = 1;
    fedl_log(FEDL_LOG_INFO, "monitor: sampling every %llu ms%s%s, %d usage thresholds",
             (unsigned long long)m->config.policy.interval_ms,
             m->psi_fd >= 0 ? ", PSI trigger" : "",
             m->v1_event_fd >= 0 ? ", cgroup v1 pressure events" : "", m->v1_thresholds);
    return FEDL_OK;
}

void fedl_monitor_stop(fedl_monitor *m)
{
    uint64_t one = 1;
    if (!m->running)
        return;
    if (write(m->wake_fd, &one, sizeof one) < 0)
        fedl_log(FEDL_LOG_WARN, "monitor: cannot wake its thread: %s", strerror(errno));
    pthread_join(m->thread, NULL);
    m->running = 0;
    close_fd(&m->wake_fd);
    close_fd(&m->psi_fd);
    close_fd(&m->v1_event_fd);
    close_fd(&m->v1_level_fd);
    close_fd(&m->v1_usage_fd);
    m->v1_thresholds = 0;
}

/* ---------------------------------------------------------------- state */

fedl_pressure fedl_monitor_state(const fedl_monitor *m, uint64_t *generation, int *disk_low)
{
    fedl_monitor *mm = (fedl_monitor *)m; /* atomics are read-only here */
    if (generation != NULL)
        *generation = atomic_load(&mm->generation);
    if (disk_low != NULL)
        *disk_low = atomic_load(&mm->disk_low);
    return (fedl_pressure)atomic_load(&mm->state);
}

void fedl_monitor_latest(fedl_monitor *m, fedl_readings *r, char *reason, size_t reason_size)
{
    pthread_mutex_lock(&m->lock);
    if (r != NULL)
        *r = m->latest;
    if (reason != NULL && reason_size > 0)
        snprintf(reason, reason_size, "%s", m->reason);
    pthread_mutex_unlock(&m->lock);
}

void fedl_monitor_set_reserve(fedl_monitor *m, uint64_t bytes)
{
    pthread_mutex_lock(&m->lock);
    fedl_policy_set_reserve(&m->policy, bytes);
    pthread_mutex_unlock(&m->lock);
}

static int clear(fedl_monitor *m)
{
    return atomic_load(&m->state) != FEDL_PRESSURE_CRITICAL && !atomic_load(&m->disk_low);
}

int fedl_monitor_wait_until_clear(fedl_monitor *m, const volatile int *cancel, uint64_t timeout_ms)
{
    uint64_t start = monotonic_ns();
    while (!clear(m)) {
        uint64_t now = monotonic_ns();
        if ((cancel != NULL && *cancel) || (timeout_ms > 0 && now - start >= timeout_ms * MS_NS))
            return 0;
        if (m->running) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * (long)MS_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&m->lock);
            if (!clear(m))
                pthread_cond_timedwait(&m->changed, &m->lock, &until);
            pthread_mutex_unlock(&m->lock);
        } else {
            fedl_error err = {0};
            uint64_t step = m->config.policy.interval_ms < 100 ? m->config.policy.interval_ms : 100;
            struct timespec pause = {0, (long)(step * MS_NS)};
            if (now - m->last_sample_ns >= m->config.policy.interval_ms * MS_NS &&
                sample(m, NULL, &err) != FEDL_OK)
                fedl_log(FEDL_LOG_WARN, "monitor: %s", err.message);
            nanosleep(&pause, NULL);
        }
    }
    return 1;
}

/* ------------------------------------------------------------ reporting */

typedef struct json_out {
    char *buf;
    size_t size, length;
} json_out;

static void put(json_out *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(json_out *o, const char *fmt, ...)
{
    va_list args;
    int n;
    if (o->length >= o->size)
        return;
    va_start(args, fmt);
    n = vsnprintf(o->buf + o->length, o->size - o->length, fmt, args);
    va_end(args);
    if (n > 0)
        o->length = o->length + (size_t)n < o->size ? o->length + (size_t)n : o->size;
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void put_string(json_out *o, const char *key, const char *s)
{
    put(o, ",\"%s\":\"", key);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c < 0x20)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

static void put_readings(json_out *o, const fedl_readings *r)
{
    double percent;
    uint64_t available = fedl_readings_mem_available(r, &percent);
    put(o, ",\"readings\":{\"mem_available\":%llu,\"mem_available_pct\":%.2f",
        (unsigned long long)available, percent);
    if (r->has_meminfo)
        put(o, ",\"memavailable\":%llu,\"memtotal\":%llu,\"swap_free\":%llu",
            (unsigned long long)r->mem_available, (unsigned long long)r->mem_total,
            (unsigned long long)r->swap_free);
    if (r->psi_memory.valid)
        put(o, ",\"psi_memory_some_avg10\":%.2f,\"psi_memory_full_avg10\":%.2f",
            r->psi_memory.some_avg10, r->psi_memory.full_avg10);
    if (r->cgroup_version != 0) {
        put(o, ",\"cgroup\":{\"version\":%d", r->cgroup_version);
        put_string(o, "path", r->cgroup_path);
        put(o, ",\"limit\":%llu,\"usage\":%llu,\"working_set\":%llu,\"oom_kills\":%llu}",
            (unsigned long long)r->cgroup_limit, (unsigned long long)r->cgroup_usage,
            (unsigned long long)r->cgroup_working_set, (unsigned long long)r->cgroup_oom_kills);
    }
    if (r->has_rss)
        put(o, ",\"rss\":%llu", (unsigned long long)r->rss);
    if (r->has_load)
        put(o, ",\"load1\":%.2f,\"cpus\":%d", r->load1, r->cpus);
    if (r->psi_cpu.valid)
        put(o, ",\"psi_cpu_some_avg10\":%.2f", r->psi_cpu.some_avg10);
    if (r->thermal_zones > 0) {
        put(o, ",\"temp_max_c\":%.1f", r->temp_max_c);
        put_string(o, "temp_zone", r->temp_zone);
    }
    if (r->has_throttle)
        put(o, ",\"throttled\":%u", (unsigned)r->throttled);
    if (r->has_disk)
        put(o, ",\"disk_free\":%llu", (unsigned long long)r->disk_free);
    put(o, "}");
}

size_t fedl_monitor_format_event(const fedl_monitor_event *e, char *buf, size_t size)
{
    json_out o = {buf, size > 3 ? size - 2 : 0, 0}; /* room for "}\n" (the NUL is put's) */
    if (size < 4) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    put(&o, "{\"time\":%.3f,\"from\":\"%s\",\"to\":\"%s\",\"disk_low\":%s", e->time,
        fedl_pressure_name(e->from), fedl_pressure_name(e->to), e->disk_low ? "true" : "false");
    put_string(&o, "reason", e->reason != NULL ? e->reason : "");
    put_string(&o, "action", e->action != NULL ? e->action : "");
    put(&o, ",\"rss_before\":%llu,\"rss_after\":%llu", (unsigned long long)e->rss_before,
        (unsigned long long)e->rss_after);
    if (e->readings != NULL)
        put_readings(&o, e->readings);
    if (o.length >= o.size) { /* did not fit: the essentials, still valid JSON */
        int n = snprintf(buf, size,
                         "{\"time\":%.3f,\"from\":\"%s\",\"to\":\"%s\",\"truncated\":true}\n",
                         e->time, fedl_pressure_name(e->from), fedl_pressure_name(e->to));
        if (n < 0 || (size_t)n >= size) {
            memcpy(buf, "{}\n", 4);
            return 3;
        }
        return (size_t)n;
    }
    memcpy(buf + o.length, "}\n", 3);
    return o.length + 2;
}

void fedl_monitor_report(fedl_monitor *m, fedl_pressure from, const char *action,
                         uint64_t rss_before, uint64_t rss_after)
{
    fedl_monitor_event e;
    fedl_readings r;
    char reason[FEDL_PROBE_TEXT_MAX], line[4096];
    size_t length;
    fedl_monitor_latest(m, &r, reason, sizeof reason);
    memset(&e, 0, sizeof e);
    e.time = realtime_s();
    e.from = from;
    e.to = fedl_monitor_state(m, NULL, &e.disk_low);
    e.readings = &r;
    e.reason = reason;
    e.action = action;
    e.rss_before = rss_before;
    e.rss_after = rss_after;
    length = fedl_monitor_format_event(&e, line, sizeof line);
    if (m->config.log_fd >= 0 && write(m->config.log_fd, line, length) < 0)
        fedl_log(FEDL_LOG_WARN, "monitor: cannot write the log: %s", strerror(errno));
    call_back(m, &e);
}
