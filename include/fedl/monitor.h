/*
 * fedl/monitor.h - the environment monitor: resource probes, the pressure
 * policy, the monitor thread, and the systemd notify protocol.
 *
 * On an edge device training is a guest. The probes read what the system
 * has left (memory, CPU, temperature, disk); the policy turns a sequence of
 * readings into a state, OK, CONSTRAINED or CRITICAL, with hysteresis so
 * that noisy readings do not make it flap; the monitor runs probes and
 * policy on a thread of its own and tells whoever acts (the training
 * session, see fedl_trainer_follow_monitor in train.h, or `fedl supervise`)
 * what the state is. Probes and policy do no I/O beyond reading the probe
 * files, so tests drive them with a fake /proc and /sys and with recorded
 * readings.
 */
#ifndef FEDL_MONITOR_H
#define FEDL_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "fedl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ probes */

typedef struct fedl_probe_options {
    const char *root;      /* NULL or "" = the real system; else a directory standing for "/" */
    const char *disk_path; /* a directory whose filesystem is checked (the checkpoint directory),
                              statvfs'd as given (not under root); NULL = no disk probe */
    int pid;               /* process whose RSS is read (<root>/proc/PID/status); 0 = self */
} fedl_probe_options;

/* Pressure stall information, one line of /proc/pressure/memory or cpu
 * (or of a cgroup v2 memory.pressure): shares of wall time in percent. */
typedef struct fedl_psi {
    int valid;              /* 0: the file or the line is absent */
    double some_avg10;      /* % of the last 10 s some task stalled */
    double full_avg10;      /* % all tasks stalled (memory; cpu has no full line on old kernels) */
    uint64_t some_total_us; /* cumulative stall, microseconds */
    uint64_t full_total_us;
} fedl_psi;

#define FEDL_PROBE_TEXT_MAX 256

/* One reading of every probe. A figure that is not available has its
 * has_ flag 0 (or valid 0). Bytes, degrees Celsius, percent. */
typedef struct fedl_readings {
    uint64_t time_ns; /* CLOCK_MONOTONIC when read */
    /* memory: /proc/meminfo */
    int has_meminfo;
    uint64_t mem_total, mem_available; /* MemAvailable (or MemFree + Buffers + Cached) */
    uint64_t swap_total, swap_free;
    fedl_psi psi_memory; /* the cgroup's memory.pressure (v2), else /proc/pressure/memory */
    /* memory: the process's cgroup (the level with the tightest limit) */
    int cgroup_version;    /* 1 or 2; 0 = no memory controller found */
    uint64_t cgroup_limit; /* 0 = no limit at any level */
    uint64_t cgroup_usage; /* memory.current / memory.usage_in_bytes (includes page cache) */
    uint64_t cgroup_inactive_file; /* memory.stat inactive_file (v1: total_inactive_file):
                                      cache the kernel reclaims first */
    uint64_t cgroup_working_set;   /* usage - inactive_file */
    uint64_t cgroup_oom_kills;     /* memory.events oom_kill (v2) or memory.oom_control
                                      oom_kill (v1); cumulative */
    uint64_t cgroup_high_events;   /* memory.events high (v2); v1: memory.failcnt */
    char cgroup_path[FEDL_PROBE_TEXT_MAX];
    /* the watched process */
    int has_rss;
    uint64_t rss; /* VmRSS */
    /* cpu */
    int has_load;
    double load1, load5, load15;
    int cpus;           /* online CPUs (sysconf, or 1) */
    fedl_psi psi_cpu;   /* /proc/pressure/cpu */
    int thermal_zones;  /* zones read under /sys/class/thermal */
    double temp_max_c;  /* the hottest zone */
    char temp_zone[64]; /* its type (e.g. "cpu-thermal") or name */
    int has_throttle;   /* Raspberry Pi firmware: get_throttled readable */
    uint32_t throttled; /* its bits: 0 under-voltage, 1 frequency capped, 2 throttled,
                           3 soft temperature limit; 16-19 the same, since boot */
    /* disk */
    int has_disk;
    uint64_t disk_free; /* bytes available to unprivileged users (f_bavail) */
    uint64_t disk_total;
} fedl_readings;

/* Read every probe. A missing file means "no figure"; a malformed one is
 * FEDL_ERR_FORMAT naming the file, its line and the field, except for
 * sensors, which real hardware leaves unreadable at times: a thermal zone
 * that cannot be read or parsed is skipped, and an unreadable
 * get_throttled or memory.pressure is "no figure". Uses up to about 48 KiB
 * of stack and no heap. */
fedl_status fedl_probe_read(const fedl_probe_options *o, fedl_readings *out, fedl_error *err);

/* The memory left to the process, the tightest of the system
 * (MemAvailable) and the cgroup (limit - working set): bytes and percent of
 * the total it is a part of. 0 / 100.0 when nothing is known. */
uint64_t fedl_readings_mem_available(const fedl_readings *r, double *percent);

/* ------------------------------------------------------------------ policy */

typedef enum fedl_pressure {
    FEDL_PRESSURE_OK = 0,
    FEDL_PRESSURE_CONSTRAINED, /* shrink: smaller micro-batch, fewer threads */
    FEDL_PRESSURE_CRITICAL     /* checkpoint, release, wait */
} fedl_pressure;

/* "ok", "constrained", "critical". */
const char *fedl_pressure_name(fedl_pressure p);

/*
 * Thresholds. Each signal has an enter level and a leave level: a state is
 * entered at once when a signal crosses its enter level, and left only
 * when every signal that holds it there has been past its leave level for
 * dwell_ms (from CRITICAL: cooldown_ms). Percent thresholds of 0 (or
 * temperatures of 0) switch a signal off.
 */
typedef struct fedl_policy {
    double mem_constrained_pct;       /* available memory below: CONSTRAINED [15] */
    double mem_constrained_leave_pct; /* ... leave above [20] */
    double mem_critical_pct;          /* below: CRITICAL [8] */
    double mem_critical_leave_pct;    /* ... leave above [15] */
    double psi_mem_some_pct;          /* memory PSI some avg10 above: CONSTRAINED [20] */
    double psi_mem_full_pct;          /* memory PSI full avg10 above: CRITICAL [10] */
    double psi_cpu_some_pct;          /* cpu PSI some avg10 above: CONSTRAINED [0: off] */
    double psi_leave_factor;          /* a PSI or load signal leaves below enter x this [0.5] */
    double load_per_cpu;              /* load1 / cpus above: CONSTRAINED [0: off] */
    double temp_constrained_c;        /* hottest zone above: CONSTRAINED [75] */
    double temp_critical_c;           /* above: CRITICAL [82] */
    double temp_leave_c;              /* a temperature leaves this far below its enter [5] */
    int throttle_constrained;         /* Pi firmware reports throttling now: CONSTRAINED [1] */
    uint64_t disk_floor_bytes;        /* free below: pause (disk_low), any state [64 MiB] */
    uint64_t disk_leave_bytes;        /* ... resume above [96 MiB] */
    uint64_t dwell_ms;                /* to leave a state for a lower one [2000] */
    uint64_t cooldown_ms;             /* to leave CRITICAL [5000] */
    uint64_t interval_ms;             /* sampling interval [500] */
} fedl_policy;

fedl_policy fedl_policy_defaults(void);

/* Parse a policy file over *p (which holds the defaults or earlier
 * settings): "key = value" lines, '#' comments, blank lines; keys are the
 * field names above (mem_critical_pct = 10), sizes take units (64M),
 * durations ms or s (2s). An unknown key, a bad value or a leave level on
 * the wrong side of its enter level is FEDL_ERR_FORMAT naming
 * "<name>:<line>:<column>". */
fedl_status fedl_policy_parse(const char *text, size_t length, const char *name, fedl_policy *p,
                              fedl_error *err);
fedl_status fedl_policy_load(const char *path, fedl_policy *p, fedl_error *err);
/* The same checks as the parser, for a policy filled in code. */
fedl_status fedl_policy_check(const fedl_policy *p, fedl_error *err);

/* The policy's state machine (sans-IO: the time is the readings'). */
typedef struct fedl_policy_state {
    fedl_policy policy;
    fedl_pressure state;
    int disk_low;            /* free disk below the floor: pause, whatever the state */
    uint64_t entered_ns;     /* when the state was entered */
    uint64_t below_since_ns; /* since when a lower state has held (0: it does not) */
    fedl_pressure below;     /* that lower state */
    uint64_t reserve_bytes;  /* memory the paused work takes back when it resumes */
    uint64_t updates;
} fedl_policy_state;

/* What one update decided. */
typedef struct fedl_policy_decision {
    fedl_pressure state;    /* after this reading */
    fedl_pressure previous; /* before it */
    int changed;            /* state or disk_low changed */
    int disk_low;
    char reason[FEDL_PROBE_TEXT_MAX]; /* the signals behind the state, e.g. "memory available
                                         7.9% < 8% (cgroup v1 /x: 117.9 of 128.0 MiB)" */
} fedl_policy_decision;

void fedl_policy_init(fedl_policy_state *s, const fedl_policy *p);
/* Feed one reading (time from r->time_ns, which must not go back). */
void fedl_policy_update(fedl_policy_state *s, const fedl_readings *r, fedl_policy_decision *d);
/* Bytes the released work will take again when it resumes: leaving
 * CRITICAL then needs the leave level reached with them counted as used,
 * so that resuming does not bring the pressure straight back. */
void fedl_policy_set_reserve(fedl_policy_state *s, uint64_t bytes);

/* ----------------------------------------------------------------- monitor */

/* A transition as reported: JSON lines carry these fields. */
typedef struct fedl_monitor_event {
    double time; /* seconds since the epoch (CLOCK_REALTIME) */
    fedl_pressure from, to;
    int disk_low;
    const fedl_readings *readings;
    const char *reason;  /* why (the policy's reason) */
    const char *action;  /* what was done: "shrink micro-batch 64 -> 16, threads 2 -> 1",
                            "checkpoint and release", "resume", "pause: disk low", ... */
    uint64_t rss_before; /* of the process acted on, 0 = unknown */
    uint64_t rss_after;
} fedl_monitor_event;

/* Called on the monitor thread at each state change, before anyone acts
 * (event->action is "detected"); and on the acting thread with the action's
 * outcome when fedl_monitor_report is called. Keep it short. */
typedef void (*fedl_monitor_callback)(void *user, const fedl_monitor_event *event);

typedef struct fedl_monitor_config {
    fedl_probe_options probe;
    fedl_policy policy;
    int log_fd;       /* JSON lines of every reported transition go here; -1 = none */
    int use_triggers; /* 1 (default): wake on PSI triggers and cgroup v1 pressure events
                         through poll() where the kernel allows; 0: sample only */
} fedl_monitor_config;

/* The defaults: real system, fedl_policy_defaults(), no log, triggers on. */
fedl_monitor_config fedl_monitor_config_defaults(void);

typedef struct fedl_monitor fedl_monitor;

fedl_status fedl_monitor_create(const fedl_monitor_config *c, fedl_monitor **out, fedl_error *err);
/* Stops the thread if it runs. */
void fedl_monitor_destroy(fedl_monitor *m);
/* At most 8 callbacks. */
fedl_status fedl_monitor_add_callback(fedl_monitor *m, fedl_monitor_callback fn, void *user,
                                      fedl_error *err);
/* The process whose RSS the probes read from now on (0 = the caller);
 * `fedl supervise` points it at each new child. Thread-safe. */
void fedl_monitor_set_pid(fedl_monitor *m, int pid);
/* Start the thread: it samples every interval (earlier when a trigger
 * fires) and updates the state. */
fedl_status fedl_monitor_start(fedl_monitor *m, fedl_error *err);
void fedl_monitor_stop(fedl_monitor *m);
/* Sample and update once on the calling thread (for a loop of one's own;
 * not while the thread runs). */
fedl_status fedl_monitor_sample(fedl_monitor *m, fedl_policy_decision *d, fedl_error *err);

/* The state now, and a counter that grows with each change (to notice a
 * change one has not acted on). Thread-safe. */
fedl_pressure fedl_monitor_state(const fedl_monitor *m, uint64_t *generation, int *disk_low);
/* The latest readings and the reason of the latest state (copies). */
void fedl_monitor_latest(fedl_monitor *m, fedl_readings *r, char *reason, size_t reason_size);
/* See fedl_policy_set_reserve. Thread-safe. */
void fedl_monitor_set_reserve(fedl_monitor *m, uint64_t bytes);
/* Block until the state is below CRITICAL and the disk is not low, or
 * *cancel becomes nonzero (checked every 100 ms), or timeout_ms passes
 * (0 = no timeout). Returns 1 when resources returned, 0 otherwise. With
 * the thread stopped, it samples on the calling thread. */
int fedl_monitor_wait_until_clear(fedl_monitor *m, const volatile int *cancel, uint64_t timeout_ms);
/* Report what was done about a transition: writes one JSON line to the
 * log and calls the callbacks. from/to/reason/readings are the latest. */
void fedl_monitor_report(fedl_monitor *m, fedl_pressure from, const char *action,
                         uint64_t rss_before, uint64_t rss_after);
/* One JSON line for an event, newline-terminated, into buf (size >= 4).
 * When it does not fit, a shorter valid line with the time, the states and
 * "truncated":true (or "{}"). Returns the length. */
size_t fedl_monitor_format_event(const fedl_monitor_event *e, char *buf, size_t size);

/* The process's resident set now (VmRSS of /proc/self/status), 0 if unknown. */
uint64_t fedl_self_rss(void);

/* ------------------------------------------------------------ systemd notify */

/* Send a datagram ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1",
 * several lines joined by '\n') to $NOTIFY_SOCKET, a path or an abstract
 * socket ('@' prefix), as sd_notify(3) does, without libsystemd. No
 * NOTIFY_SOCKET: nothing sent, returns 0. Returns 1 when sent, and
 * FEDL_ERR_IO (as -1, with err set) when the socket refused it. */
int fedl_sd_notify(const char *state, fedl_error *err);
/* The watchdog interval systemd asked for ($WATCHDOG_USEC, if $WATCHDOG_PID
 * is unset or ours), in microseconds; 0 = none. */
uint64_t fedl_sd_watchdog_usec(void);

#ifdef __cplusplus
}
#endif
#endif
