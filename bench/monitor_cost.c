/*
 * monitor_cost.c - what the environment monitor (fedl/monitor.h) costs the
 * process it watches: CPU time of the monitor thread at its sampling
 * interval, the time of one sample, and memory.
 *
 *   build/monitor_cost                       (60 s at the default 500 ms)
 *   build/monitor_cost --seconds 60 --interval 100 --calls 2000 --spaced 40 --disk-path /tmp
 *
 * 1. Baseline: the main thread sleeps --seconds; the process's CPU time
 *    (getrusage RUSAGE_SELF, user + sys) over that span.
 * 2. Monitor: fedl_monitor_create + fedl_monitor_start on the real system
 *    (fedl_monitor_config_defaults(), probe.disk_path = --disk-path so the
 *    disk probe runs too, policy.interval_ms = --interval, triggers on), the
 *    main thread sleeps --seconds again, then fedl_monitor_stop. The CPU
 *    time of the process over that span minus the baseline, as % of one
 *    core, is the monitor's cost. Cross-checks from the monitor thread
 *    itself (found as the task that appears in /proc/self/task when the
 *    monitor starts): its run time (/proc/self/task/TID/schedstat, ns) and
 *    its voluntary context switches, about one per sample (it sleeps in
 *    poll between samples).
 * 3. One sample on the calling thread: --calls (2000) times fedl_probe_read
 *    then fedl_policy_update back to back, each timed with CLOCK_MONOTONIC
 *    (mean, median, p99 and max wall time, of the probe and of the update
 *    apart) and CLOCK_THREAD_CPUTIME_ID (CPU time); then --spaced (40)
 *    calls each after sleeping the interval, as the monitor thread makes
 *    them (caches and TLB cold). Expected cost = CPU per call x samples per
 *    second.
 * Also: VmRSS before and after the monitor starts, and the peak RSS
 * (ru_maxrss). Bar (issue): the monitor takes < 0.5% of one core at the
 * default interval.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "fedl/fedl.h"

#define MAX_TASKS 256
#define BAR_PERCENT 0.5

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* User + system CPU seconds of the whole process (every thread, joined
 * ones included). */
static double process_cpu_s(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return 0;
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static long max_rss_kib(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return -1;
    return u.ru_maxrss; /* KiB on Linux */
}

/* A "Key:   123 kB"-style figure of /proc/self/status (or of a task's). */
static long status_field(const char *path, const char *key)
{
    char line[256];
    size_t n = strlen(key);
    long value = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            value = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return value;
}

static void load_average(char *out, size_t size)
{
    double a = 0, b = 0, c = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, size, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(out, size, "?");
    if (f != NULL)
        fclose(f);
}

static void cpu_model(char *out, size_t size)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, size, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        /* x86: "model name"; Raspberry Pi: "Model" (the board) or "Hardware" */
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0 ||
            strncmp(line, "Hardware", 8) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(out, size, "%s", colon);
                if (strncmp(line, "model name", 10) == 0)
                    break;
            }
        }
    }
    fclose(f);
}

/* The thread ids of this process (at most cap). */
static int list_tasks(long *tids, int cap)
{
    struct dirent *e;
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < cap)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            tids[n++] = strtol(e->d_name, NULL, 10);
    closedir(d);
    return n;
}

/* The one task in after[] that is not in before[]; 0 if none or several. */
static long new_task(const long *before, int nb, const long *after, int na)
{
    long found = 0;
    for (int i = 0; i < na; i++) {
        int old = 0;
        for (int j = 0; j < nb; j++)
            old |= after[i] == before[j];
        if (!old) {
            if (found != 0)
                return 0;
            found = after[i];
        }
    }
    return found;
}

/* A task's time on a CPU (ns, the first field of schedstat); -1 if unknown. */
static double task_run_ns(long tid)
{
    char path[64];
    unsigned long long ns;
    FILE *f;
    int ok;
    snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    ok = fscanf(f, "%llu", &ns) == 1;
    fclose(f);
    return ok ? (double)ns : -1;
}

static long task_voluntary_switches(long tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    return status_field(path, "voluntary_ctxt_switches");
}

static void sleep_s(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* mean, median, p99, max of v[0..n) (sorted in place). */
static void summarise(double *v, int n, double *mean, double *median, double *p99, double *max)
{
    double sum = 0;
    qsort(v, (size_t)n, sizeof *v, compare_double);
    for (int i = 0; i < n; i++)
        sum += v[i];
    *mean = sum / n;
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *p99 = v[(int)((n - 1) * 0.99 + 0.5)];
    *max = v[n - 1];
}

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Per-call figures, microseconds. */
typedef struct timings {
    int n;
    double *probe, *update, *both, *cpu; /* wall, wall, wall, this thread's CPU time */
} timings;

/* n calls of fedl_probe_read + fedl_policy_update on this thread, each
 * after sleeping gap_ms (0: back to back). */
static int time_calls(const fedl_monitor_config *config, int n, int gap_ms, timings *t)
{
    fedl_policy_state policy;
    fedl_policy_decision decision;
    fedl_readings readings;
    fedl_error err = {0};
    t->n = n;
    t->probe = malloc((size_t)n * sizeof *t->probe);
    t->update = malloc((size_t)n * sizeof *t->update);
    t->both = malloc((size_t)n * sizeof *t->both);
    t->cpu = malloc((size_t)n * sizeof *t->cpu);
    if (t->probe == NULL || t->update == NULL || t->both == NULL || t->cpu == NULL) {
        fprintf(stderr, "monitor_cost: out of memory\n");
        return 1;
    }
    fedl_policy_init(&policy, &config->policy);
    for (int i = 0; i < n; i++) {
        uint64_t a, b, c;
        double cpu;
        if (gap_ms > 0)
            sleep_s(gap_ms / 1e3);
        cpu = thread_cpu_ns();
        a = monotonic_ns();
        if (fedl_probe_read(&config->probe, &readings, &err) != FEDL_OK) {
            fprintf(stderr, "monitor_cost: fedl_probe_read: %s\n", err.message);
            return 1;
        }
        b = monotonic_ns();
        fedl_policy_update(&policy, &readings, &decision);
        c = monotonic_ns();
        t->cpu[i] = (thread_cpu_ns() - cpu) / 1e3;
        t->probe[i] = (double)(b - a) / 1e3;
        t->update[i] = (double)(c - b) / 1e3;
        t->both[i] = (double)(c - a) / 1e3;
    }
    return 0;
}

static void print_row(const char *name, double *v, int n, const char *format)
{
    double mean, median, p99, max;
    char line[160];
    summarise(v, n, &mean, &median, &p99, &max);
    snprintf(line, sizeof line, format, name, mean, median, p99, max);
    printf("%s\n", line);
}

/* The table of one series of calls; returns the mean CPU per call, us. */
static double print_timings(const char *title, timings *t)
{
    static const char *big = "  %-34s %9.1f %9.1f %9.1f %9.1f";
    double mean, median, p99, max;
    printf("\n%s, %d calls (us):\n", title, t->n);
    printf("  %-34s %9s %9s %9s %9s\n", "", "mean", "median", "p99", "max");
    print_row("wall: fedl_probe_read", t->probe, t->n, big);
    print_row("wall: fedl_policy_update", t->update, t->n, "  %-34s %9.2f %9.2f %9.2f %9.2f");
    print_row("wall: both", t->both, t->n, big);
    summarise(t->cpu, t->n, &mean, &median, &p99, &max);
    print_row("CPU of the thread: both", t->cpu, t->n, big);
    free(t->probe);
    free(t->update);
    free(t->both);
    free(t->cpu);
    return mean;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: monitor_cost [--seconds N] [--interval MS] [--calls N] [--spaced N]\n"
               "                    [--disk-path DIR] [--no-triggers]\n"
               "CPU cost of the monitor thread over N seconds [60] at interval MS [500], less a\n"
               "baseline of the same length without it; then N calls [2000] of fedl_probe_read +\n"
               "fedl_policy_update timed one by one, back to back, and N [40] more each after\n"
               "sleeping the interval. The disk probe statvfs's DIR [/tmp].\n");
}

int main(int argc, char **argv)
{
    fedl_monitor_config config = fedl_monitor_config_defaults();
    fedl_monitor *monitor = NULL;
    fedl_error err = {0};
    timings hot, spaced;
    const char *disk_path = "/tmp";
    double seconds = 60, cpu0, t0, t1, base_cpu, base_wall, mon_cpu, mon_wall;
    double run0 = -1, run1 = -1;
    long tasks_before[MAX_TASKS], tasks_after[MAX_TASKS], tid, switches0 = -1, switches1 = -1;
    long rss_before, rss_after, rss_end;
    int interval = 500, calls = 2000, spaced_calls = 40, triggers = 1, nb, na, rc = 0;
    char cpu[256], load_start[64], load_end[64];
    struct utsname uts;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            calls = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--spaced") == 0 && i + 1 < argc) {
            spaced_calls = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--disk-path") == 0 && i + 1 < argc) {
            disk_path = argv[++i];
        } else if (strcmp(argv[i], "--no-triggers") == 0) {
            triggers = 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (seconds <= 0 || interval < 1 || calls < 1 || spaced_calls < 0) {
        fprintf(stderr,
                "monitor_cost: --seconds > 0, --interval >= 1, --calls >= 1, --spaced >= 0\n");
        return 2;
    }
    config.probe.disk_path = disk_path;
    config.policy.interval_ms = (uint64_t)interval;
    config.use_triggers = triggers;

    cpu_model(cpu, sizeof cpu);
    if (uname(&uts) != 0)
        snprintf(uts.release, sizeof uts.release, "?");
    load_average(load_start, sizeof load_start);
    printf("monitor_cost: %s; kernel %s; %ld cores; load average %s\n", cpu, uts.release,
           sysconf(_SC_NPROCESSORS_ONLN), load_start);
    printf("interval %d ms, %.0f s per phase, disk probe on %s, triggers %s\n", interval, seconds,
           disk_path, triggers ? "on" : "off");
    fflush(stdout);

    /* 1. Baseline: the process asleep. */
    cpu0 = process_cpu_s();
    t0 = monotonic_s();
    sleep_s(seconds);
    t1 = monotonic_s();
    base_cpu = process_cpu_s() - cpu0;
    base_wall = t1 - t0;

    /* 2. The monitor thread running while the process sleeps. */
    rss_before = status_field("/proc/self/status", "VmRSS");
    nb = list_tasks(tasks_before, MAX_TASKS);
    cpu0 = process_cpu_s();
    t0 = monotonic_s();
    if (fedl_monitor_create(&config, &monitor, &err) != FEDL_OK ||
        fedl_monitor_start(monitor, &err) != FEDL_OK) {
        fprintf(stderr, "monitor_cost: %s\n", err.message);
        fedl_monitor_destroy(monitor);
        return 1;
    }
    na = list_tasks(tasks_after, MAX_TASKS);
    tid = new_task(tasks_before, nb, tasks_after, na);
    if (tid != 0) {
        run0 = task_run_ns(tid);
        switches0 = task_voluntary_switches(tid);
    }
    rss_after = status_field("/proc/self/status", "VmRSS");
    sleep_s(seconds);
    if (tid != 0) {
        run1 = task_run_ns(tid);
        switches1 = task_voluntary_switches(tid);
    }
    {
        fedl_readings latest;
        char reason[FEDL_PROBE_TEXT_MAX];
        fedl_monitor_latest(monitor, &latest, reason, sizeof reason);
        printf("monitor state at the end: %s (%s)\n",
               fedl_pressure_name(fedl_monitor_state(monitor, NULL, NULL)), reason);
    }
    fedl_monitor_stop(monitor);
    t1 = monotonic_s();
    mon_cpu = process_cpu_s() - cpu0;
    mon_wall = t1 - t0;
    fedl_monitor_destroy(monitor);

    /* 3. One sample at a time on this thread: back to back, then each after
     * sleeping the interval, as the monitor thread samples (caches cold). */
    if (time_calls(&config, calls, 0, &hot) != 0 ||
        (spaced_calls > 0 && time_calls(&config, spaced_calls, interval, &spaced) != 0))
        return 1;
    rss_end = max_rss_kib();
    load_average(load_end, sizeof load_end);

    {
        double extra = mon_cpu - base_cpu * (mon_wall / base_wall);
        double percent = 100.0 * extra / mon_wall;
        double expected_samples = mon_wall * 1000.0 / interval;
        double hot_cpu, spaced_cpu;
        printf("\nCPU, process (getrusage user+sys):\n");
        printf("  baseline, asleep      %8.3f ms over %.1f s\n", base_cpu * 1e3, base_wall);
        printf("  with the monitor      %8.3f ms over %.1f s\n", mon_cpu * 1e3, mon_wall);
        printf("  monitor               %8.3f ms = %.4f%% of one core (%.1f us per expected "
               "sample, %.0f samples)\n",
               extra * 1e3, percent, extra / expected_samples * 1e6, expected_samples);
        if (run0 >= 0 && run1 >= 0)
            printf("  monitor thread alone  %8.3f ms = %.4f%% of one core (schedstat of task "
                   "%ld, from just after the start)\n",
                   (run1 - run0) / 1e6, 100.0 * (run1 - run0) / 1e9 / seconds, tid);
        if (switches0 >= 0 && switches1 >= 0)
            printf("  its wake-ups          %8ld voluntary context switches in %.1f s (%.1f per "
                   "s; one per sample expected: %.1f per s)\n",
                   switches1 - switches0, seconds, (double)(switches1 - switches0) / seconds,
                   1000.0 / interval);
        hot_cpu = print_timings("One sample on this thread, back to back", &hot);
        printf("  at one sample per %d ms: %.4f%% of one core\n", interval,
               100.0 * hot_cpu / 1e3 / interval);
        if (spaced_calls > 0) {
            char title[96];
            snprintf(title, sizeof title, "One sample on this thread, each after sleeping %d ms",
                     interval);
            spaced_cpu = print_timings(title, &spaced);
            printf("  at one sample per %d ms: %.4f%% of one core; %.1fx the back-to-back CPU "
                   "per call\n",
                   interval, 100.0 * spaced_cpu / 1e3 / interval, spaced_cpu / hot_cpu);
        }
        printf("\nMemory: VmRSS %ld KiB before the monitor, %ld KiB once started (%+ld KiB); "
               "peak RSS (ru_maxrss) %ld KiB = %.1f MiB\n",
               rss_before, rss_after, rss_after - rss_before, rss_end, (double)rss_end / 1024.0);
        printf("load average at the end: %s\n\n", load_end);
        if (interval == 500) {
            printf("%s  monitor CPU at the default interval: %.4f%% of one core < %.1f%%\n",
                   percent < BAR_PERCENT ? "PASS" : "FAIL", percent, BAR_PERCENT);
            rc = percent < BAR_PERCENT ? 0 : 1;
        } else {
            printf("(the bar, < %.1f%% of one core, is for the default interval, 500 ms)\n",
                   BAR_PERCENT);
        }
    }
    return rc;
}
