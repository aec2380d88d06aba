/* main.c - the fedl command: dispatch to subcommands, top-level help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "commands.h"
#include "fedl/fedl.h"

static void print_help(void)
{
    printf("usage: fedl <command> [options]\n\n"
           "fedl trains small neural networks on edge devices.\n\n"
           "commands:\n"
           "  train     train a model on IDX (MNIST layout) or CSV data and save it\n"
           "  eval      evaluate a saved model: accuracy, per-class accuracy, confusion\n"
           "  ckpt      verify, inspect or export model files, checkpoints and checkpoint\n"
           "            directories (verify, inspect, export --safetensors)\n"
           "  data      manifests of data directories, IDX to CSV, CSV summaries\n"
           "            (manifest, verify, convert, inspect)\n"
           "  plan      the memory plan of a training run and the micro-batch a budget allows\n"
           "  simulate  federated learning in one process: N clients, a coordinator, rounds\n"
           "  supervise run a command (fedl train) under watch: pause it under pressure,\n"
           "            restart it after crashes, speak systemd's notify protocol\n"
           "  serve     the coordinator of a federated job over an MQTT broker\n"
           "  join      a device of a federated job: train on local data, send updates\n"
           "  aggregate one of several aggregators sharing a job's updates (scale-out)\n"
           "  keygen    an Ed25519 key pair for the coordinator or a device\n"
           "  broker-config  a mosquitto configuration and ACL file for a job\n\n"
           "Run 'fedl <command> --help' for the options of a command.\n"
           "  --version  print the version and the GEMM backend\n");
}

size_t cli_peak_rss_bytes(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (size_t)usage.ru_maxrss * 1024u; /* Linux reports KiB */
}

int cli_training_budget(const char *command, const char *memory, fedl_budget *budget)
{
    fedl_budget_probe_options probe = fedl_budget_probe_defaults();
    fedl_error err = {0};
    char size[32];
    if (fedl_budget_parse(memory, &probe, budget, &err) != FEDL_OK) {
        fprintf(stderr, "fedl %s: --memory: %s\n", command, err.message);
        return 2;
    }
    if (budget->source == FEDL_BUDGET_FIXED)
        return 0;
    if (budget->bytes <= FEDL_PLAN_PROCESS_OVERHEAD) {
        /* 0 would mean "no limit" to the planner */
        fprintf(stderr,
                "fedl %s: refusing to start: the memory budget is %s (%s: %s), no more than the "
                "%u MiB the process itself needs\n",
                command, fedl_budget_format_bytes(budget->bytes, size, sizeof size),
                fedl_budget_source_name(budget->source), budget->explanation,
                FEDL_PLAN_PROCESS_OVERHEAD >> 20);
        return 1;
    }
    budget->bytes -= FEDL_PLAN_PROCESS_OVERHEAD;
    return 0;
}

void cli_print_budget(const fedl_budget *budget)
{
    char size[32];
    printf("memory budget %s (%s: %s", fedl_budget_format_bytes(budget->bytes, size, sizeof size),
           fedl_budget_source_name(budget->source), budget->explanation);
    if (budget->source != FEDL_BUDGET_FIXED)
        printf("; less %u MiB for the process itself", FEDL_PLAN_PROCESS_OVERHEAD >> 20);
    printf(")\n");
}

int cli_parse_shape(const char *text, fedl_shape *shape)
{
    int c, h, w;
    char end;
    if (sscanf(text, "%dx%dx%d%c", &c, &h, &w, &end) != 3 || c <= 0 || h <= 0 || w <= 0)
        return -1;
    *shape = (fedl_shape){c, h, w};
    return 0;
}

const char *cli_group_digits(unsigned long long value, char *buf, size_t size)
{
    char plain[32];
    int len = snprintf(plain, sizeof plain, "%llu", value), out = 0;
    for (int i = 0; i < len && (size_t)out + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = plain[i];
    }
    buf[out] = '\0';
    return buf;
}

static int limited(int resource)
{
    struct rlimit limit;
    return getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
}

/* OpenBLAS starts its worker threads when it is loaded, before main(), and
 * each maps a 128 MiB buffer at once; under an address-space limit a map
 * that fails makes the worker retry forever and the process hang (see
 * src/nn/gemm.c). So under a finite RLIMIT_AS or RLIMIT_DATA, unless the
 * user chose a thread count, run again with one BLAS thread: the library
 * then checks the one buffer left before it is mapped. */
static void one_blas_thread_under_limits(char **argv)
{
    if (getenv("OPENBLAS_NUM_THREADS") != NULL || (!limited(RLIMIT_AS) && !limited(RLIMIT_DATA)))
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* no /proc: go on as we are (the variable is still set for children) */
}

int main(int argc, char **argv)
{
    one_blas_thread_under_limits(argv);
    if (argc < 2) {
        print_help();
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("fedl %s (GEMM: %s)\n", fedl_version(), fedl_blas_backend());
        return 0;
    }
    if (strcmp(argv[1], "train") == 0)
        return cmd_train(argc, argv);
    if (strcmp(argv[1], "eval") == 0)
        return cmd_eval(argc, argv);
    if (strcmp(argv[1], "ckpt") == 0)
        return cmd_ckpt(argc, argv);
    if (strcmp(argv[1], "data") == 0)
        return cmd_data(argc, argv);
    if (strcmp(argv[1], "plan") == 0)
        return cmd_plan(argc, argv);
    if (strcmp(argv[1], "simulate") == 0)
        return cmd_simulate(argc, argv);
    if (strcmp(argv[1], "supervise") == 0)
        return cmd_supervise(argc, argv);
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc, argv);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "join") == 0)
        return cmd_join(argc, argv);
    if (strcmp(argv[1], "aggregate") == 0)
        return cmd_aggregate(argc, argv);
    if (strcmp(argv[1], "broker-config") == 0)
        return cmd_broker_config(argc, argv);
    fprintf(stderr, "fedl: unknown command '%s' (see 'fedl --help')\n", argv[1]);
    return 2;
}
