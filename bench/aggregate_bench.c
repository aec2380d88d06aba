/*
 * aggregate_bench.c - what one aggregation round costs the coordinator
 * (fedl/fl.h): time to add N updates and finish, throughput in bytes of
 * update data per second, and memory.
 *
 *   build/aggregate_bench                              (fedavg, fedadam, median; 3 runs each)
 *   build/aggregate_bench --params 1000000 --updates 100 --distinct 16 --runs 3 \
 *       --strategy fedavg --strategy median
 *
 * Each run is a child process (fork), so that its peak RSS (wait4's
 * ru_maxrss) is its own. The child draws --distinct random deltas of
 * --params floats (Philox, seed 1, uniform in [-0.01, 0.01)) before
 * anything is timed, and adds update i as delta i mod distinct: with 16 x
 * 4 MB the deltas do not fit in the last-level cache, so every add reads
 * its update from memory, as one freshly received from the network would
 * be on a small board. Timed (CLOCK_MONOTONIC): create (not in the
 * throughput: once per coordinator), the N adds, and finish. Throughput =
 * N x params x 4 bytes / (adds + finish), in GB/s (10^9 bytes). Memory:
 * the aggregator's bytes (the accounted allocator's peak), the RSS before
 * create (the process and the input deltas) and the peak RSS of the run.
 * Printed per run and as the median of the runs. Bar (issue): FedAvg
 * reaches >= 1 GB/s on one core.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fedl/fedl.h"

#define BAR_GBPS 1.0
#define MAX_STRATEGIES 16
#define MAX_RUNS 15

typedef struct bench_options {
    size_t params;
    int updates;
    int distinct;
    int runs;
    int strategies;
    fedl_strategy_kind kind[MAX_STRATEGIES];
} bench_options;

/* What a child reports through its pipe. */
typedef struct round_time {
    double add_s, finish_s;
} round_time;

/* What a child reports through its pipe. */
typedef struct run_result {
    int ok;
    double create_s;
    round_time round[2];   /* round 1 (the pool's pages first touched), round 2 */
    double aggregator_mib; /* accounted allocator peak */
    double rss_before_mib; /* ru_maxrss before create: process + inputs */
    double peak_rss_mib;   /* filled by the parent from wait4 */
    char error[256];
} run_result;

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double maxrss_mib(const struct rusage *ru)
{
    return (double)ru->ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static void usage(void)
{
    fprintf(stderr, "usage: aggregate_bench [--params N] [--updates N] [--distinct N] "
                    "[--runs N] [--strategy NAME]...\n");
    exit(2);
}

static void parse_options(int argc, char **argv, bench_options *o)
{
    o->params = 1000000;
    o->updates = 100;
    o->distinct = 16;
    o->runs = 3;
    o->strategies = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--params") == 0)
            o->params = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--updates") == 0)
            o->updates = atoi(argv[++i]);
        else if (strcmp(argv[i], "--distinct") == 0)
            o->distinct = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0)
            o->runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--strategy") == 0 && o->strategies < MAX_STRATEGIES) {
            fedl_error err;
            if (fedl_strategy_parse(argv[++i], &o->kind[o->strategies++], &err) != FEDL_OK) {
                fprintf(stderr, "aggregate_bench: %s\n", err.message);
                exit(2);
            }
        } else
            usage();
    }
    if (o->params == 0 || o->updates < 1 || o->distinct < 1 || o->runs < 1 || o->runs > MAX_RUNS)
        usage();
    if (o->strategies == 0) {
        o->kind[o->strategies++] = FEDL_STRATEGY_FEDAVG;
        o->kind[o->strategies++] = FEDL_STRATEGY_FEDADAM;
        o->kind[o->strategies++] = FEDL_STRATEGY_MEDIAN;
    }
}

/* distinct x params floats, uniform in [-0.01, 0.01). */
static float *make_deltas(const bench_options *o)
{
    size_t n = (size_t)o->distinct * o->params;
    float *d = malloc(n * sizeof(float));
    fedl_rng rng;
    if (d == NULL)
        return NULL;
    fedl_rng_init(&rng, 1, 0);
    for (size_t i = 0; i < n; i++)
        d[i] = (fedl_rng_uniform(&rng) - 0.5f) * 0.02f;
    return d;
}

static void record_error(run_result *r, const char *message)
{
    snprintf(r->error, sizeof r->error, "%.200s", message);
}

/* Add o->updates updates and finish; the times go to t. */
static int time_round(const bench_options *o, fedl_aggregator *g, const float *deltas,
                      float *global, round_time *t, run_result *r)
{
    fedl_error err;
    double t0, t1;
    fedl_aggregator_begin(g);
    t0 = monotonic_s();
    for (int i = 0; i < o->updates; i++) {
        const float *delta = deltas + (size_t)(i % o->distinct) * o->params;
        if (fedl_aggregator_add(g, "bench", delta, o->params, 10.0 + i % 7, &err) != FEDL_OK) {
            record_error(r, err.message);
            return 0;
        }
    }
    t1 = monotonic_s();
    if (fedl_aggregator_finish(g, global, &err) != FEDL_OK) {
        record_error(r, err.message);
        return 0;
    }
    t->add_s = t1 - t0;
    t->finish_s = monotonic_s() - t1;
    return 1;
}

/* Create an aggregator and run two rounds in this process; the result
 * goes to r. */
static void run_rounds(const bench_options *o, fedl_strategy_kind kind, run_result *r)
{
    fedl_strategy_config c = fedl_strategy_defaults(kind);
    fedl_allocator alloc;
    fedl_aggregator *g = NULL;
    fedl_error err;
    struct rusage ru;
    float *deltas = make_deltas(o), *global = calloc(o->params, sizeof(float));
    double t0;
    if (deltas == NULL || global == NULL) {
        record_error(r, "cannot allocate the inputs");
        return;
    }
    c.max_updates = o->updates > c.max_updates ? o->updates : c.max_updates;
    fedl_allocator_init(&alloc, NULL, NULL);
    getrusage(RUSAGE_SELF, &ru);
    r->rss_before_mib = maxrss_mib(&ru);
    t0 = monotonic_s();
    if (fedl_aggregator_create(&c, o->params, &alloc, &g, &err) != FEDL_OK) {
        record_error(r, err.message);
        return;
    }
    r->create_s = monotonic_s() - t0;
    r->ok = time_round(o, g, deltas, global, &r->round[0], r) &&
            time_round(o, g, deltas, global, &r->round[1], r);
    r->aggregator_mib = (double)fedl_allocator_stats(&alloc).peak_bytes / (1024.0 * 1024.0);
    fedl_aggregator_destroy(g);
    free(deltas);
    free(global);
}

/* Fork, run the rounds in the child, collect its result and peak RSS. */
static run_result run_child(const bench_options *o, fedl_strategy_kind kind)
{
    run_result r;
    struct rusage ru;
    int fd[2], status;
    pid_t pid;
    memset(&r, 0, sizeof r);
    if (pipe(fd) != 0) {
        snprintf(r.error, sizeof r.error, "pipe failed");
        return r;
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(fd[0]);
        run_rounds(o, kind, &r);
        if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) {
        memset(&r, 0, sizeof r);
        snprintf(r.error, sizeof r.error, "the child reported nothing");
    }
    close(fd[0]);
    if (pid > 0 && wait4(pid, &status, 0, &ru) == pid)
        r.peak_rss_mib = maxrss_mib(&ru);
    return r;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static double gbps(const bench_options *o, const round_time *t)
{
    return (double)o->updates * (double)o->params * sizeof(float) / (t->add_s + t->finish_s) / 1e9;
}

static void print_row(const char *label, const char *name, const run_result *r,
                      const double rate[2])
{
    printf("%-7s %-12s %7.3f | %6.3f %6.3f %6.2f | %6.3f %6.3f %6.2f | %7.1f %7.1f %7.1f\n", label,
           name, r->create_s, r->round[0].add_s, r->round[0].finish_s, rate[0], r->round[1].add_s,
           r->round[1].finish_s, rate[1], r->aggregator_mib, r->rss_before_mib, r->peak_rss_mib);
}

/* The figures of a run, as columns over the runs for the medians. */
enum {
    COL_CREATE,
    COL_ADD1,
    COL_FINISH1,
    COL_RATE1,
    COL_ADD2,
    COL_FINISH2,
    COL_RATE2,
    COL_AGGREGATOR,
    COL_RSS0,
    COL_PEAK,
    COL_COUNT
};

static void to_columns(const bench_options *o, const run_result *r, int k,
                       double col[COL_COUNT][MAX_RUNS])
{
    col[COL_CREATE][k] = r->create_s;
    col[COL_ADD1][k] = r->round[0].add_s;
    col[COL_FINISH1][k] = r->round[0].finish_s;
    col[COL_RATE1][k] = gbps(o, &r->round[0]);
    col[COL_ADD2][k] = r->round[1].add_s;
    col[COL_FINISH2][k] = r->round[1].finish_s;
    col[COL_RATE2][k] = gbps(o, &r->round[1]);
    col[COL_AGGREGATOR][k] = r->aggregator_mib;
    col[COL_RSS0][k] = r->rss_before_mib;
    col[COL_PEAK][k] = r->peak_rss_mib;
}

/* The runs of one strategy, each printed, then their medians; returns the
 * median GB/s of round 1 (0 on failure). */
static double bench_strategy(const bench_options *o, fedl_strategy_kind kind)
{
    double col[COL_COUNT][MAX_RUNS], rate[2];
    const char *name = fedl_strategy_name(kind);
    run_result med;
    for (int k = 0; k < o->runs; k++) {
        char label[16];
        run_result r = run_child(o, kind);
        if (!r.ok) {
            printf("%-7s %-12s FAILED: %s\n", "run", name, r.error);
            return 0.0;
        }
        snprintf(label, sizeof label, "run %d", k + 1);
        to_columns(o, &r, k, col);
        rate[0] = col[COL_RATE1][k];
        rate[1] = col[COL_RATE2][k];
        print_row(label, name, &r, rate);
    }
    memset(&med, 0, sizeof med);
    med.create_s = median_of(col[COL_CREATE], o->runs);
    med.round[0].add_s = median_of(col[COL_ADD1], o->runs);
    med.round[0].finish_s = median_of(col[COL_FINISH1], o->runs);
    med.round[1].add_s = median_of(col[COL_ADD2], o->runs);
    med.round[1].finish_s = median_of(col[COL_FINISH2], o->runs);
    med.aggregator_mib = median_of(col[COL_AGGREGATOR], o->runs);
    med.rss_before_mib = median_of(col[COL_RSS0], o->runs);
    med.peak_rss_mib = median_of(col[COL_PEAK], o->runs);
    rate[0] = median_of(col[COL_RATE1], o->runs);
    rate[1] = median_of(col[COL_RATE2], o->runs);
    print_row("median", name, &med, rate);
    return rate[0];
}

int main(int argc, char **argv)
{
    bench_options o;
    double fedavg_gbps = -1.0;
    parse_options(argc, argv, &o);
    printf("aggregate_bench: %d updates of %zu floats (%.1f MB each, %.0f MB in all), "
           "%d distinct deltas (%.0f MB of input), %d runs\n",
           o.updates, o.params, (double)o.params * 4 / 1e6,
           (double)o.updates * (double)o.params * 4 / 1e6, o.distinct,
           (double)o.distinct * (double)o.params * 4 / 1e6, o.runs);
    printf("%-7s %-12s %7s | %-20s | %-20s | %-23s\n", "", "", "", "round 1 (pool cold)", "round 2",
           "memory (MiB)");
    printf("%-7s %-12s %7s | %6s %6s %6s | %6s %6s %6s | %7s %7s %7s\n", "", "strategy", "create",
           "add_s", "fin_s", "GB/s", "add_s", "fin_s", "GB/s", "aggr", "RSS0", "peak");
    for (int s = 0; s < o.strategies; s++) {
        double rate = bench_strategy(&o, o.kind[s]);
        if (o.kind[s] == FEDL_STRATEGY_FEDAVG)
            fedavg_gbps = rate;
    }
    if (fedavg_gbps >= 0.0)
        printf("bar: FedAvg round 1, %.2f GB/s of update data on one core, >= %.1f: %s\n",
               fedavg_gbps, BAR_GBPS, fedavg_gbps >= BAR_GBPS ? "PASS" : "FAIL");
    return fedavg_gbps >= 0.0 && fedavg_gbps < BAR_GBPS ? 1 : 0;
}
