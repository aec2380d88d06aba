/*
 * cmd_train.c - `fedl train`: load an IDX data set, build the model from a
 * preset or spec, train with progress, evaluate each epoch, save the model.
 * With --ckpt-dir it checkpoints (every N steps, every T seconds, at each
 * epoch end, on SIGTERM/SIGINT and SIGUSR1) and resumes from the newest
 * valid checkpoint when run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

typedef struct train_options {
    const char *model;
    const char *data;
    const char *out;
    const char *optimizer;
    const char *schedule;
    const char *log_level;
    int epochs, batch, nesterov, profile, quiet, lr_step_epochs;
    int train_limit, test_limit;
    float lr, momentum, weight_decay, lr_gamma, lr_min;
    uint64_t seed;
    const char *ckpt_dir;
    const char *data_manifest;
    const char *memory;
    int micro_batch;
    int ckpt_steps, ckpt_seconds, keep, no_resume, verify_data;
    /* CSV data */
    const char *test, *label, *features, *shape, *scale, *missing, *delimiter;
    int no_header, no_index_cache, shuffle_buffer, regression;
    /* environment monitor */
    int monitor;
    const char *policy, *monitor_log;
} train_options;

static const char train_usage[] =
    "The model is a preset (lenet5, mlp) or a spec such as\n"
    "  \"conv2d(6,5,pad=2) relu maxpool2d(2) flatten dense(10)\".\n"
    "--data is an IDX directory holding train-images-idx3-ubyte[.gz],\n"
    "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and\n"
    "t10k-labels-idx1-ubyte[.gz], or a CSV file or a directory of CSV files read as\n"
    "one data set (then --test names the test CSV file or directory).\n"
    "A CSV file is read on demand through a row index, in bounded memory; with\n"
    "--shuffle-buffer N it is streamed each epoch through a buffer of N rows instead\n"
    "(gzip too). Its label column (--label, default \"label\" or column 0) holds\n"
    "class ids or class names. --data - reads the training CSV from standard input\n"
    "(kept in a temporary file in $TMPDIR while training runs).\n"
    "Examples:\n"
    "  fedl train --model lenet5 --data /usr/share/datasets/fashion-mnist --epochs 5 \\\n"
    "      --batch 32 --lr 0.05 --momentum 0.9 --seed 1 --out model.fedl\n"
    "  fedl train --model lenet5 --data train.csv --test test.csv --label label \\\n"
    "      --shape 1x28x28 --scale 255 --epochs 5 --lr 0.05 --momentum 0.9\n"
    "With --ckpt-dir DIR, training state is checkpointed every --ckpt-steps steps\n"
    "and every --ckpt-seconds seconds, at each epoch end, on SIGUSR1 (and training\n"
    "continues) and on SIGTERM/SIGINT (the current step finishes, the checkpoint is\n"
    "written, exit 0). Running the same command again resumes from the newest valid\n"
    "checkpoint, bit for bit as if never interrupted; --no-resume starts over.\n"
    "With --monitor a thread watches memory, CPU, temperature and disk (--policy FILE\n"
    "sets the thresholds; see docs/DESIGN.md): when CONSTRAINED the micro-batch halves\n"
    "and the BLAS runs on one thread; when CRITICAL training checkpoints, gives its\n"
    "buffers and in-memory data back, waits for the pressure to pass and resumes where\n"
    "it stopped. Each transition is a JSON line in --monitor-log (default stderr).\n";

/* ------------------------------------------------------------- progress */

typedef struct progress {
    int tty;
    int quiet;
    int epochs;
    int next_quarter;
    uint64_t last_draw_ns;
} progress;

static void progress_update(progress *p, const fedl_train_stats *s, double elapsed_s)
{
    double fraction = (double)s->position / (double)s->epoch_samples;
    double rate = elapsed_s > 0 ? (double)s->epoch_seen / elapsed_s : 0.0;
    double loss = s->epoch_seen ? s->loss_sum / (double)s->epoch_seen : 0.0;
    if (p->quiet)
        return;
    if (p->tty) {
        uint64_t now = fedl_time_ns();
        char bar[31];
        int filled = (int)(fraction * 30.0);
        double eta = rate > 0 ? (double)(s->epoch_samples - s->position) / rate : 0.0;
        if (now - p->last_draw_ns < 100000000ull && s->position < s->epoch_samples)
            return;
        p->last_draw_ns = now;
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\repoch %llu/%d [%s] %3.0f%%  loss %.4f  %.0f samples/s  ETA %.0fs ",
                (unsigned long long)s->epoch + 1, p->epochs, bar, fraction * 100.0, loss, rate,
                eta);
        fflush(stderr);
    } else if (fraction * 4.0 >= p->next_quarter && p->next_quarter < 4) {
        fprintf(stderr, "epoch %llu/%d: %3.0f%%  loss %.4f  %.0f samples/s\n",
                (unsigned long long)s->epoch + 1, p->epochs, fraction * 100.0, loss, rate);
        p->next_quarter = (int)(fraction * 4.0) + 1;
    }
}

static void progress_end_epoch(progress *p)
{
    if (p->tty && !p->quiet)
        fprintf(stderr, "\r%100s\r", "");
    p->next_quarter = 1;
}

/* --------------------------------------------------------------- profile */

static void print_profile(fedl_model *model)
{
    double total_ns = 0;
    printf("\nprofile (per layer, all steps):\n");
    printf("  %-3s %-28s %10s %10s %9s %9s\n", "#", "layer", "fwd ms", "bwd ms", "fwd GF/s",
           "bwd GF/s");
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        fedl_layer_profile prof;
        fedl_model_layer_info(model, i, &info);
        fedl_model_layer_profile(model, i, &prof);
        total_ns += (double)(prof.forward_ns + prof.backward_ns);
        printf("  %-3d %-28s %10.1f %10.1f %9.2f %9.2f\n", i + 1, info.text,
               (double)prof.forward_ns / 1e6, (double)prof.backward_ns / 1e6,
               prof.forward_ns ? prof.forward_flops / (double)prof.forward_ns : 0.0,
               prof.backward_ns ? prof.backward_flops / (double)prof.backward_ns : 0.0);
    }
    printf("  total forward+backward: %.1f ms\n", total_ns / 1e6);
}

/* ----------------------------------------------------------- checkpoints */

static volatile sig_atomic_t stop_requested; /* SIGTERM, SIGINT */
static volatile sig_atomic_t save_requested; /* SIGUSR1 */

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void on_save_signal(int signo)
{
    (void)signo;
    save_requested = 1;
}

static void install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    /* SA_RESTART: a signal must not make a checkpoint's write or fsync fail
     * with EINTR. */
    action.sa_flags = SA_RESTART;
    action.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &action, NULL);
    /* A second Ctrl-C kills at once, as with most tools: the way out when a
     * write hangs on a stalled card. */
    action.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &action, NULL);
    action.sa_flags = SA_RESTART;
    action.sa_handler = on_save_signal;
    sigaction(SIGUSR1, &action, NULL);
}

typedef struct checkpointer {
    fedl_ckpt_dir *dir;   /* NULL: no checkpoints */
    uint64_t every_steps; /* 0: off */
    uint64_t every_ns;    /* 0: off */
    uint64_t last_step;   /* global step of the last checkpoint (or attempt) */
    uint64_t last_ns;     /* when it was written (or attempted) */
    int failed;           /* the last attempt failed: a forced one retries */
    char accuracy[32];    /* last test accuracy, as text metadata */
    int epochs;
    uint64_t written;
} checkpointer;

static fedl_status checkpoint_now(checkpointer *c, fedl_trainer *trainer, fedl_model *model,
                                  fedl_error *err)
{
    char epochs[32];
    fedl_meta_entry meta[4];
    int meta_count = 0;
    fedl_train_state state;
    fedl_container_writer *writer = NULL;
    uint64_t generation = 0;
    fedl_status st;
    snprintf(epochs, sizeof epochs, "%d", c->epochs);
    meta[meta_count++] =
        (fedl_meta_entry){"fedl.version", (const uint8_t *)fedl_version(), strlen(fedl_version())};
    meta[meta_count++] = (fedl_meta_entry){"fedl.gemm", (const uint8_t *)fedl_blas_backend(),
                                           strlen(fedl_blas_backend())};
    meta[meta_count++] = (fedl_meta_entry){"train.epochs", (const uint8_t *)epochs, strlen(epochs)};
    if (c->accuracy[0] != '\0')
        meta[meta_count++] = (fedl_meta_entry){"metric.test_accuracy", (const uint8_t *)c->accuracy,
                                               strlen(c->accuracy)};
    fedl_trainer_state(trainer, meta, meta_count, &state);
    st = fedl_checkpoint_writer(model, &state, NULL, &writer, err);
    if (st == FEDL_OK)
        st = fedl_ckpt_dir_save(c->dir, writer, &generation, err);
    fedl_container_writer_destroy(writer);
    /* A failed attempt also waits a full interval before the next periodic
     * one (a full disk would otherwise be written to at every step), but
     * the epoch-end and stop checkpoints try again at once. */
    c->last_step = state.global_step;
    c->last_ns = fedl_time_ns();
    c->failed = st != FEDL_OK;
    if (st == FEDL_OK) {
        c->written++;
        fedl_log(FEDL_LOG_INFO, "checkpoint %llu written at step %llu",
                 (unsigned long long)generation, (unsigned long long)state.global_step);
    }
    return st;
}

/* A periodic checkpoint that fails is reported and training goes on: the
 * previous generation is intact, and the next attempt may succeed. */
static void checkpoint_if_due(checkpointer *c, fedl_trainer *trainer, fedl_model *model, int force)
{
    fedl_train_stats s = fedl_trainer_stats(trainer);
    fedl_error err = {0};
    int due = force || save_requested ||
              (c->every_steps > 0 && s.global_step - c->last_step >= c->every_steps) ||
              (c->every_ns > 0 && fedl_time_ns() - c->last_ns >= c->every_ns);
    if (c->dir == NULL || !due || (s.global_step == c->last_step && !c->failed))
        return;
    save_requested = 0;
    if (checkpoint_now(c, trainer, model, &err) != FEDL_OK)
        fprintf(stderr, "fedl train: warning: checkpoint failed (training continues): %s\n",
                err.message);
}

/* Bit-exact resume holds for the same binary: another GEMM backend sums in
 * another order. Such a resume is allowed, with a warning. */
static void warn_if_other_build(const fedl_checkpoint *ckpt, const char *key, const char *ours,
                                const char *what)
{
    const fedl_meta_entry *e = fedl_checkpoint_meta(ckpt, key);
    if (e != NULL && (e->length != strlen(ours) || memcmp(e->value, ours, e->length) != 0))
        fprintf(stderr,
                "fedl train: warning: the checkpoint was written with %s %.*s, this build has %s: "
                "the resumed run will not be bit-identical to an uninterrupted one\n",
                what, (int)(e->length > 64 ? 64 : e->length), (const char *)e->value, ours);
}

/* Open the checkpoint directory and, unless told not to, continue from its
 * newest valid generation. Returns 0, or the exit code on refusal. */
static int open_checkpoints(const train_options *o, checkpointer *c, fedl_trainer *trainer)
{
    fedl_ckpt_dir_options options = fedl_ckpt_dir_defaults();
    fedl_checkpoint *ckpt = NULL;
    fedl_error err = {0}, damage = {0};
    int index, rc = 0;
    options.keep = o->keep;
    if (fedl_ckpt_dir_open(o->ckpt_dir, &options, NULL, &c->dir, &err) != FEDL_OK) {
        fprintf(stderr, "fedl train: checkpoint directory: %s\n", err.message);
        return 1;
    }
    c->last_ns = fedl_time_ns();
    if (o->no_resume || fedl_ckpt_dir_count(c->dir) == 0)
        return 0;
    index = fedl_ckpt_dir_newest_valid(c->dir, &damage);
    if (index < 0) {
        fprintf(stderr,
                "fedl train: none of the %d checkpoints in %s is valid (newest: %s); "
                "run with --no-resume to start over\n",
                fedl_ckpt_dir_count(c->dir), o->ckpt_dir, damage.message);
        return 1;
    }
    if (damage.status != FEDL_OK)
        fprintf(stderr,
                "fedl train: warning: newest checkpoint is damaged (%s); it was set aside as "
                "*.damaged; using %s\n",
                damage.message, fedl_ckpt_dir_path(c->dir, index));
    if (fedl_checkpoint_load(fedl_ckpt_dir_path(c->dir, index), NULL, &ckpt, &err) != FEDL_OK ||
        fedl_trainer_restore(trainer, ckpt, &err) != FEDL_OK) {
        fprintf(stderr,
                "fedl train: cannot resume from %s: %s\n(use --no-resume to start "
                "over, or another --ckpt-dir)\n",
                fedl_ckpt_dir_path(c->dir, index), err.message);
        rc = 1;
    } else {
        fedl_train_stats s = fedl_trainer_stats(trainer);
        const fedl_meta_entry *accuracy = fedl_checkpoint_meta(ckpt, "metric.test_accuracy");
        if (accuracy != NULL && accuracy->length < sizeof c->accuracy) {
            memcpy(c->accuracy, accuracy->value, accuracy->length);
            c->accuracy[accuracy->length] = '\0';
        }
        c->last_step = s.global_step;
        warn_if_other_build(ckpt, "fedl.gemm", fedl_blas_backend(), "GEMM backend");
        warn_if_other_build(ckpt, "fedl.version", fedl_version(), "fedl version");
        printf("resumed from %s: step %llu, epoch %llu, %zu/%zu samples of the epoch\n",
               fedl_ckpt_dir_path(c->dir, index), (unsigned long long)s.global_step,
               (unsigned long long)ckpt->state.epoch + 1, (size_t)ckpt->state.position,
               (size_t)ckpt->state.epoch_samples);
        fflush(stdout);
    }
    fedl_checkpoint_free(ckpt);
    return rc;
}

/* The epoch the next step belongs to (after a resume, maybe not 0). */
static int first_epoch(const fedl_trainer *trainer)
{
    fedl_train_state state;
    fedl_trainer_state(trainer, NULL, 0, &state);
    return state.epoch > 100000 ? 100000 : (int)state.epoch;
}

static int stop_with_checkpoint(checkpointer *c, fedl_trainer *trainer, fedl_model *model)
{
    fedl_train_stats s = fedl_trainer_stats(trainer);
    fedl_error err = {0};
    if (c->dir == NULL)
        return 130;
    if ((s.global_step != c->last_step || c->failed) &&
        checkpoint_now(c, trainer, model, &err) != FEDL_OK) {
        fprintf(stderr, "fedl train: stopping: the checkpoint failed: %s\n", err.message);
        return 1;
    }
    if (fedl_ckpt_dir_count(c->dir) == 0)
        printf("stopped before the first step: nothing to checkpoint\n");
    else
        printf("stopped at step %llu: checkpoint in %s; run the same command to resume\n",
               (unsigned long long)s.global_step, fedl_ckpt_dir_path(c->dir, 0));
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Say where the budget came from and set the micro-batch the plan picks;
 * refuse when not even one sample fits. */
static int plan_memory(fedl_budget budget, fedl_model *model, const fedl_dataset *train,
                       const fedl_dataset *test, fedl_train_config *config)
{
    fedl_plan plan;
    fedl_error err = {0};
    char size[32];
    cli_print_budget(&budget);
    if (fedl_plan_training(model, train, config, (size_t)budget.bytes, &plan, &err) != FEDL_OK) {
        fprintf(stderr, "fedl train: memory plan: %s\n", err.message);
        return 1;
    }
    if (!plan.fits) {
        fprintf(stderr, "fedl train: refusing to start: %s (see 'fedl plan')\n", plan.reason);
        return 1;
    }
    printf("memory plan: %s\n", plan.reason);
    printf(
        "memory outside the budget: data in memory %s (training %zu B, test %zu B), process "
        "overhead up to %u MiB\n",
        fedl_budget_format_bytes(plan.dataset + fedl_dataset_held_bytes(test), size, sizeof size),
        plan.dataset, fedl_dataset_held_bytes(test), FEDL_PLAN_PROCESS_OVERHEAD >> 20);
    config->micro_batch = plan.micro_batch;
    return 0;
}

static int fail(const char *what, const fedl_error *err)
{
    fprintf(stderr, "fedl train: %s: %s\n", what, err->message);
    return 1;
}

/* ---------------------------------------------------------------- monitor */

/* A training run under the monitor: what a pause needs to checkpoint,
 * give the in-memory data back and load it again. */
typedef struct monitored {
    fedl_monitor *monitor;
    int log_fd;
    const train_options *o;
    checkpointer *ckpt;
    fedl_trainer *trainer;
    fedl_model *model;
    fedl_dataset *train, *test;
    int data_released;
    uint8_t digest[FEDL_SHA256_BYTES]; /* of the data in memory, taken at the start (not in a
                                          pause: it would delay the release) and checked on
                                          reload */
} monitored;

static void digest_data(const fedl_dataset *train, const fedl_dataset *test,
                        uint8_t digest[FEDL_SHA256_BYTES])
{
    fedl_sha256_ctx ctx;
    fedl_sha256_init(&ctx);
    fedl_sha256_update(&ctx, train->pixels, train->count * train->sample_bytes);
    fedl_sha256_update(&ctx, train->labels, train->count);
    fedl_sha256_update(&ctx, test->pixels, test->count * test->sample_bytes);
    fedl_sha256_update(&ctx, test->labels, test->count);
    fedl_sha256_final(&ctx, digest);
}

static fedl_status pause_checkpoint(void *user, fedl_error *err)
{
    monitored *m = user;
    fedl_train_stats s = fedl_trainer_stats(m->trainer);
    if (m->ckpt->dir == NULL || (s.global_step == m->ckpt->last_step && !m->ckpt->failed))
        return FEDL_OK;
    return checkpoint_now(m->ckpt, m->trainer, m->model, err);
}

/* IDX data lives in memory and is loaded again from its files after the
 * pause; CSV data is read on demand and holds little. */
static size_t pause_release_data(void *user)
{
    monitored *m = user;
    size_t bytes;
    if (m->train->source.read != NULL || m->test->source.read != NULL)
        return 0;
    bytes = fedl_dataset_held_bytes(m->train) + fedl_dataset_held_bytes(m->test);
    fedl_dataset_free(m->train);
    fedl_dataset_free(m->test);
    m->data_released = 1;
    return bytes;
}

static fedl_status pause_reload_data(void *user, fedl_error *err)
{
    monitored *m = user;
    uint8_t digest[FEDL_SHA256_BYTES];
    fedl_status st;
    if (!m->data_released)
        return FEDL_OK;
    st = fedl_dataset_load_mnist_dir(m->o->data, FEDL_SPLIT_TRAIN, NULL, m->train, err);
    if (st == FEDL_OK)
        st = fedl_dataset_load_mnist_dir(m->o->data, FEDL_SPLIT_TEST, NULL, m->test, err);
    if (st != FEDL_OK)
        return st;
    if (m->o->train_limit > 0 && (size_t)m->o->train_limit < m->train->count)
        fedl_dataset_truncate(m->train, (size_t)m->o->train_limit);
    if (m->o->test_limit > 0 && (size_t)m->o->test_limit < m->test->count)
        fedl_dataset_truncate(m->test, (size_t)m->o->test_limit);
    digest_data(m->train, m->test, digest);
    if (memcmp(digest, m->digest, sizeof digest) != 0)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: the data files changed while training was paused", m->o->data);
    m->data_released = 0;
    return FEDL_OK;
}

/* Start the monitor thread and attach it to the trainer. */
static int start_monitor(const train_options *o, monitored *m)
{
    fedl_monitor_config config = fedl_monitor_config_defaults();
    fedl_error err = {0};
    char size[32];
    if (o->policy != NULL && fedl_policy_load(o->policy, &config.policy, &err) != FEDL_OK)
        return fail("--policy", &err);
    m->log_fd = STDERR_FILENO;
    if (o->monitor_log != NULL && strcmp(o->monitor_log, "-") != 0) {
        m->log_fd = open(o->monitor_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (m->log_fd < 0) {
            fprintf(stderr, "fedl train: --monitor-log %s: %s\n", o->monitor_log, strerror(errno));
            return 1;
        }
    }
    config.log_fd = m->log_fd;
    config.probe.disk_path = o->ckpt_dir;
    if (m->train->source.read == NULL && m->test->source.read == NULL)
        digest_data(m->train, m->test, m->digest);
    if (fedl_monitor_create(&config, &m->monitor, &err) != FEDL_OK ||
        fedl_monitor_start(m->monitor, &err) != FEDL_OK)
        return fail("monitor", &err);
    fedl_trainer_attach_monitor(m->trainer, m->monitor);
    printf("monitor: every %llu ms; memory constrained below %g%%, critical below %g%% "
           "available; disk floor %s%s\n",
           (unsigned long long)config.policy.interval_ms, config.policy.mem_constrained_pct,
           config.policy.mem_critical_pct,
           fedl_budget_format_bytes(config.policy.disk_floor_bytes, size, sizeof size),
           o->ckpt_dir == NULL ? "; no --ckpt-dir: a pause writes no checkpoint" : "");
    return 0;
}

/* Between steps: shrink, restore, or pause until the pressure passes. */
static int follow_monitor(monitored *m)
{
    fedl_pause_hooks hooks = {pause_checkpoint, pause_release_data, pause_reload_data, m};
    fedl_error err = {0};
    int pause = 0, resumed = 0;
    if (m->monitor == NULL)
        return 0;
    if (fedl_trainer_follow_monitor(m->trainer, &pause, &err) != FEDL_OK)
        return fail("monitor", &err);
    if (!pause)
        return 0;
    fprintf(stderr, "\nfedl train: resources low: checkpoint, release, wait\n");
    if (fedl_trainer_pause(m->trainer, &hooks, &stop_requested, &resumed, &err) != FEDL_OK)
        return fail("resuming after the pause", &err);
    if (resumed)
        fprintf(stderr, "fedl train: resources back: resuming at step %llu\n",
                (unsigned long long)fedl_trainer_stats(m->trainer).global_step);
    return 0;
}

static int usage_error(const char *what, const char *value)
{
    fprintf(stderr, "fedl train: %s (got '%s')\n", what, value);
    return 2;
}

/* 1: a directory, 0: something else, -1: nothing there (message printed). */
static int is_directory(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fedl train: --data %s: %s\n", path, strerror(errno));
        return -1;
    }
    return S_ISDIR(st.st_mode);
}

/* --data -: standard input copied to a temporary file in $TMPDIR (disk,
 * not memory) that the data set then reads like any file, every epoch;
 * removed when training ends. */
static int spool_stdin(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    char buf[65536];
    int fd;
    snprintf(path, size, "%s/fedl-stdin-XXXXXX", dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "fedl train: --data -: %s: %s\n", path, strerror(errno));
        path[0] = '\0';
        return 1;
    }
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf), done = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                fprintf(stderr, "fedl train: --data -: reading standard input: %s\n",
                        strerror(errno));
            close(fd);
            if (n == 0)
                return 0;
            unlink(path);
            path[0] = '\0';
            return 1;
        }
        while (done < n) {
            ssize_t w = write(fd, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fprintf(stderr, "fedl train: --data -: writing %s: %s\n", path,
                        w < 0 ? strerror(errno) : "no space");
                close(fd);
                unlink(path);
                path[0] = '\0';
                return 1;
            }
            done += w;
        }
    }
}

/* An MNIST-layout directory (else a directory of CSV files). */
static int is_idx_directory(const char *dir)
{
    static const char *const names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"};
    char path[4096];
    struct stat st;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

/* The CSV schema and reader options from the command line; 2 on a bad
 * value (with a message). */
static int csv_settings(const train_options *o, fedl_csv_options *opts, fedl_csv_schema *schema)
{
    char *end;
    *opts = fedl_csv_defaults();
    *schema = fedl_csv_schema_defaults();
    opts->has_header = !o->no_header;
    if (o->delimiter != NULL) {
        if (strcmp(o->delimiter, "tab") == 0 || strcmp(o->delimiter, "\\t") == 0)
            opts->delimiter = '\t';
        else if (strlen(o->delimiter) == 1 && o->delimiter[0] != '"')
            opts->delimiter = o->delimiter[0];
        else
            return usage_error("--delimiter: one character or 'tab'", o->delimiter);
    }
    schema->label = o->label;
    schema->regression = o->regression;
    schema->features = o->features;
    if (o->shape != NULL && cli_parse_shape(o->shape, &schema->shape) != 0)
        return usage_error("--shape: CxHxW such as 1x28x28", o->shape);
    if (o->scale == NULL || strcmp(o->scale, "none") == 0) {
        schema->scaling = FEDL_CSV_SCALE_NONE;
    } else if (strcmp(o->scale, "minmax") == 0) {
        schema->scaling = FEDL_CSV_SCALE_MINMAX;
    } else if (strcmp(o->scale, "zscore") == 0) {
        schema->scaling = FEDL_CSV_SCALE_ZSCORE;
    } else {
        schema->scaling = FEDL_CSV_SCALE_DIVIDE;
        schema->divisor = strtof(o->scale, &end);
        if (*end != '\0' || !(schema->divisor > 0.0f))
            return usage_error("--scale: none, minmax, zscore or a positive divisor", o->scale);
    }
    if (o->missing == NULL || strcmp(o->missing, "error") == 0) {
        schema->missing = FEDL_CSV_MISSING_ERROR;
    } else if (strcmp(o->missing, "skip") == 0) {
        schema->missing = FEDL_CSV_MISSING_SKIP;
    } else if (strcmp(o->missing, "mean") == 0) {
        schema->missing = FEDL_CSV_MISSING_MEAN;
    } else {
        schema->missing = FEDL_CSV_MISSING_FILL;
        schema->fill_value = strtof(o->missing, &end);
        if (*end != '\0' || o->missing[0] == '\0')
            return usage_error("--missing: error, skip, mean or a number", o->missing);
    }
    return 0;
}

/* A CSV file through its kept index (PATH.fedlidx) unless --no-index-cache;
 * a directory of them without. */
static fedl_status open_csv(const train_options *o, const char *path, const fedl_csv_options *opts,
                            const fedl_csv_schema *schema, const fedl_csv_fit *fit,
                            fedl_dataset *out, fedl_error *err)
{
    fedl_csv_index_use use;
    struct stat info;
    fedl_status st;
    if (o->no_index_cache || stat(path, &info) != 0 || S_ISDIR(info.st_mode))
        return fedl_csv_dataset_open(path, opts, schema, fit, NULL, out, err);
    st = fedl_csv_dataset_open_cached(path, opts, schema, fit, NULL, out, &use, err);
    if (st == FEDL_OK && use != FEDL_CSV_INDEX_NOT_KEPT)
        printf("CSV %s: index %s %s%s\n", path,
               use == FEDL_CSV_INDEX_READ ? "read from" : "kept in", path, FEDL_CSV_INDEX_SUFFIX);
    return st;
}

/* The training and test sets: an IDX directory, or CSV files read on
 * demand (the test file takes the training file's labels and scaling). */
static int load_data(const train_options *o, fedl_dataset *train, fedl_dataset *test)
{
    fedl_csv_options opts;
    fedl_csv_schema schema;
    fedl_csv_info info;
    fedl_error err = {0};
    int rc = is_directory(o->data);
    if (rc < 0)
        return 1;
    if (rc == 1 && is_idx_directory(o->data)) {
        if (fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TRAIN, NULL, train, &err) != FEDL_OK)
            return fail("training data", &err);
        if (fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TEST, NULL, test, &err) != FEDL_OK) {
            fedl_dataset_free(train);
            return fail("test data", &err);
        }
        return 0;
    }
    if (o->test == NULL)
        return usage_error("--test: a CSV --data needs a test file", o->data);
    rc = csv_settings(o, &opts, &schema);
    if (rc != 0)
        return rc;
    if (o->shuffle_buffer > 0) { /* streams: the training file shuffled, the test file in order */
        if (fedl_csv_stream_open(o->data, &opts, &schema, NULL, (size_t)o->shuffle_buffer, o->seed,
                                 NULL, train, &err) != FEDL_OK)
            return fail("training data", &err);
        if (fedl_csv_stream_open(o->test, &opts, &schema, fedl_csv_dataset_fit(train), 1, 0, NULL,
                                 test, &err) != FEDL_OK) {
            fedl_dataset_free(train);
            return fail("test data", &err);
        }
    } else {
        if (open_csv(o, o->data, &opts, &schema, NULL, train, &err) != FEDL_OK)
            return fail("training data", &err);
        if (open_csv(o, o->test, &opts, &schema, fedl_csv_dataset_fit(train), test, &err) !=
            FEDL_OK) {
            fedl_dataset_free(train);
            return fail("test data", &err);
        }
    }
    info = fedl_csv_dataset_info(train);
    printf("CSV %s: %llu rows (%llu skipped for missing values, %llu values filled), %zu "
           "features, label column %zu, %d classes; held in memory %zu KiB (row index and "
           "buffers)\n",
           o->data, (unsigned long long)info.rows, (unsigned long long)info.skipped_rows,
           (unsigned long long)info.filled, info.features, info.label_column, train->classes,
           fedl_dataset_held_bytes(train) >> 10);
    if (test->classes < train->classes)
        test->classes = train->classes;
    return 0;
}

static int verify_data(const train_options *o)
{
    char path[4096];
    const char *manifest_path = o->data_manifest;
    fedl_manifest manifest;
    fedl_error err = {0};
    int rc = 0;
    if (manifest_path == NULL) {
        snprintf(path, sizeof path, "%s/%s", o->data, FEDL_CKPT_MANIFEST);
        manifest_path = path;
    }
    if (fedl_manifest_read(manifest_path, NULL, &manifest, &err) != FEDL_OK) {
        fprintf(stderr, "fedl train: --verify-data: %s\n(make one with 'fedl data manifest %s')\n",
                err.message, o->data);
        return 1;
    }
    /* Every listed file must match, and no file may be unlisted: the IDX
     * loader takes "x.gz" over "x", so an unlisted file could be the one
     * that gets read. */
    if (fedl_manifest_verify_dir(&manifest, o->data, &err) != FEDL_OK ||
        fedl_manifest_check_unlisted(&manifest, o->data, base_name(manifest_path), &err) !=
            FEDL_OK) {
        fprintf(stderr, "fedl train: --verify-data: refusing to train: %s\n", err.message);
        rc = 1;
    } else {
        printf("data verified: %zu files match %s\n", manifest.count, manifest_path);
    }
    fedl_manifest_free(&manifest);
    return rc;
}

/* ------------------------------------------------------------------ main */

/* The model file; trained from CSV, it also holds the fit ("data"
 * section), so that fedl eval reads other CSV files the same way. */
static fedl_status save_model(const fedl_model *model, const fedl_dataset *train, const char *path,
                              fedl_error *err)
{
    const fedl_csv_fit *fit = fedl_csv_dataset_fit(train);
    fedl_container_writer *w;
    uint8_t *data = NULL;
    size_t length = 0;
    fedl_status st;
    if (fit == NULL)
        return fedl_model_save(model, path, err);
    st = fedl_csv_fit_encode(fit, NULL, &data, &length, err);
    if (st == FEDL_OK)
        st = fedl_container_writer_create(FEDL_FILE_MODEL, NULL, &w, err);
    if (st == FEDL_OK) {
        st = fedl_model_add_sections(w, model, err);
        if (st == FEDL_OK)
            st = fedl_container_add(w, "data", FEDL_SECTION_DATA, data, length, err);
        if (st == FEDL_OK)
            st = fedl_container_write(w, NULL, path, err);
        fedl_container_writer_destroy(w);
    }
    fedl_mem_free(NULL, data, length);
    return st;
}

static int build_config(const train_options *o, size_t train_count, fedl_train_config *config)
{
    fedl_optim_kind kind;
    fedl_lr_kind lr_kind;
    size_t steps_per_epoch = (train_count + (size_t)o->batch - 1) / (size_t)o->batch;
    if (fedl_optim_parse_kind(o->optimizer, &kind) != FEDL_OK) {
        fprintf(stderr, "fedl train: --optimizer: '%s' is not sgd, adam or adamw\n", o->optimizer);
        return 2;
    }
    if (fedl_lr_parse_kind(o->schedule, &lr_kind) != FEDL_OK) {
        fprintf(stderr, "fedl train: --lr-schedule: '%s' is not constant, step or cosine\n",
                o->schedule);
        return 2;
    }
    *config = fedl_train_config_defaults();
    config->batch = o->batch;
    config->epochs = o->epochs;
    config->seed = o->seed;
    config->optim = fedl_optim_defaults(kind);
    config->optim.momentum = o->momentum;
    config->loss = o->regression ? FEDL_LOSS_MSE : FEDL_LOSS_CROSS_ENTROPY;
    config->optim.nesterov = o->nesterov;
    if (o->weight_decay >= 0.0f)
        config->optim.weight_decay = o->weight_decay;
    config->lr.kind = lr_kind;
    config->lr.base_lr = o->lr;
    config->lr.gamma = o->lr_gamma;
    config->lr.step_size = (uint64_t)o->lr_step_epochs * steps_per_epoch;
    config->lr.total_steps = (uint64_t)o->epochs * steps_per_epoch;
    config->lr.min_lr = o->lr_min;
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_options o = {.model = "lenet5",
                       .optimizer = "sgd",
                       .schedule = "constant",
                       .log_level = "warn",
                       .epochs = 5,
                       .batch = 32,
                       .lr_step_epochs = 1,
                       .lr = 0.05f,
                       .weight_decay = -1.0f,
                       .lr_gamma = 0.1f,
                       .seed = 1,
                       .ckpt_seconds = 30,
                       .keep = 3};
    const cli_option options[] = {
        {"model", CLI_STRING, &o.model, "NAME|SPEC", "preset (lenet5, mlp) or spec [lenet5]", 0, 0},
        {"data", CLI_STRING, &o.data, "DIR|FILE",
         "IDX data directory (MNIST layout) or training CSV file, required", 0, 0},
        {"test", CLI_STRING, &o.test, "FILE", "CSV: the test file, required with a CSV --data", 0,
         0},
        {"label", CLI_STRING, &o.label, "COLUMN", "CSV: label column, name or 0-based index", 0, 0},
        {"features", CLI_STRING, &o.features, "LIST",
         "CSV: feature columns: names, indexes, ranges (1-784) [all but the label]", 0, 0},
        {"shape", CLI_STRING, &o.shape, "CxHxW", "CSV: sample shape [features x 1 x 1]", 0, 0},
        {"scale", CLI_STRING, &o.scale, "HOW", "CSV: none, minmax, zscore or a divisor [none]", 0,
         0},
        {"missing", CLI_STRING, &o.missing, "HOW",
         "CSV: empty values: error, skip, mean or a fill value [error]", 0, 0},
        {"delimiter", CLI_STRING, &o.delimiter, "C", "CSV: field delimiter (, ; | tab) [,]", 0, 0},
        {"no-header", CLI_FLAG, &o.no_header, NULL, "CSV: the first row is data", 0, 0},
        {"regression", CLI_FLAG, &o.regression, NULL,
         "CSV: the label column is a numeric target; the loss is the mean squared error", 0, 0},
        {"shuffle-buffer", CLI_INT, &o.shuffle_buffer, "N",
         "CSV: stream the files (plain or gzip) through a shuffle buffer of N rows, no index", 1,
         1 << 24},
        {"no-index-cache", CLI_FLAG, &o.no_index_cache, NULL,
         "CSV: do not keep the row index in FILE.fedlidx (and do not read it)", 0, 0},
        {"epochs", CLI_INT, &o.epochs, "N", "passes over the training set [5]", 1, 100000},
        {"batch", CLI_INT, &o.batch, "N", "samples per optimiser step [32]", 1, 1 << 20},
        {"optimizer", CLI_STRING, &o.optimizer, "NAME", "sgd, adam or adamw [sgd]", 0, 0},
        {"lr", CLI_FLOAT, &o.lr, "F", "learning rate [0.05]", 0, 1e6},
        {"momentum", CLI_FLOAT, &o.momentum, "F", "SGD momentum [0]", 0, 0.999999},
        {"nesterov", CLI_FLAG, &o.nesterov, NULL, "Nesterov momentum (SGD)", 0, 0},
        {"weight-decay", CLI_FLOAT, &o.weight_decay, "F",
         "L2 (sgd, adam) or decoupled (adamw) decay [0; adamw 0.01]", 0, 1e6},
        {"lr-schedule", CLI_STRING, &o.schedule, "NAME", "constant, step or cosine [constant]", 0,
         0},
        {"lr-step-epochs", CLI_INT, &o.lr_step_epochs, "N", "step schedule: epochs per decay [1]",
         1, 100000},
        {"lr-gamma", CLI_FLOAT, &o.lr_gamma, "F", "step schedule: decay factor [0.1]", 0, 1},
        {"lr-min", CLI_FLOAT, &o.lr_min, "F", "cosine schedule: final learning rate [0]", 0, 1e6},
        {"seed", CLI_U64, &o.seed, "N", "seed of weights, shuffle and dropout [1]", 0, 0},
        {"out", CLI_STRING, &o.out, "FILE", "write the trained model here", 0, 0},
        {"train-limit", CLI_INT, &o.train_limit, "N", "use only the first N training samples", 1,
         2147483647},
        {"test-limit", CLI_INT, &o.test_limit, "N", "use only the first N test samples", 1,
         2147483647},
        {"profile", CLI_FLAG, &o.profile, NULL, "print time and GFLOP/s per layer", 0, 0},
        {"quiet", CLI_FLAG, &o.quiet, NULL, "no progress output", 0, 0},
        {"log-level", CLI_STRING, &o.log_level, "LEVEL", "debug, info, warn, error, off [warn]", 0,
         0},
        {"memory", CLI_STRING, &o.memory, "auto|SIZE",
         "memory budget (e.g. 48M): the largest micro-batch that fits is used", 0, 0},
        {"micro-batch", CLI_INT, &o.micro_batch, "N",
         "samples per forward/backward, gradients accumulated to --batch [= batch]", 1, 1 << 20},
        {"ckpt-dir", CLI_STRING, &o.ckpt_dir, "DIR", "checkpoint here and resume from here", 0, 0},
        {"ckpt-steps", CLI_INT, &o.ckpt_steps, "N", "checkpoint every N optimiser steps [0: off]",
         0, 2147483647},
        {"ckpt-seconds", CLI_INT, &o.ckpt_seconds, "T", "checkpoint every T seconds [30; 0: off]",
         0, 2147483647},
        {"keep", CLI_INT, &o.keep, "K", "checkpoint generations kept [3]", 1, 1000000},
        {"no-resume", CLI_FLAG, &o.no_resume, NULL, "start over even if checkpoints exist", 0, 0},
        {"verify-data", CLI_FLAG, &o.verify_data, NULL,
         "check the data files against their manifest first", 0, 0},
        {"data-manifest", CLI_STRING, &o.data_manifest, "FILE",
         "manifest for --verify-data [DATA/MANIFEST]", 0, 0},
        {"monitor", CLI_FLAG, &o.monitor, NULL,
         "watch memory, CPU, temperature and disk; shrink or pause under pressure", 0, 0},
        {"policy", CLI_STRING, &o.policy, "FILE", "--monitor thresholds (key = value lines)", 0, 0},
        {"monitor-log", CLI_STRING, &o.monitor_log, "FILE",
         "--monitor transitions as JSON lines, appended [- = stderr]", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    fedl_dataset train = {0}, test = {0};
    fedl_budget budget = {0};
    char spooled[4096] = "";
    fedl_model *model = NULL;
    fedl_trainer *trainer = NULL;
    fedl_train_config config;
    fedl_error err = {0};
    fedl_log_level level;
    progress prog = {0};
    checkpointer ckpt = {0};
    monitored mon = {0};
    uint64_t resumed_samples = 0; /* samples seen before this run (from a checkpoint) */
    double train_seconds = 0.0, last_accuracy = -1.0;
    int rc = cli_parse("train", train_usage, options, argc, argv, 2);
    char digits[32], digits2[32];

    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.data == NULL) {
        fprintf(stderr, "fedl train: --data DIR is required (see 'fedl train --help')\n");
        return 2;
    }
    if (fedl_log_level_parse(o.log_level, &level) != FEDL_OK) {
        fprintf(stderr, "fedl train: --log-level: '%s' is not debug, info, warn, error or off\n",
                o.log_level);
        return 2;
    }
    fedl_log_set_level(level);
    if (o.verify_data && verify_data(&o) != 0)
        return 1;
    /* From here on a stop request is honoured at the next step boundary. */
    if (o.ckpt_dir != NULL || o.monitor)
        install_signal_handlers();

    if (strcmp(o.data, "-") == 0) {
        if (spool_stdin(spooled, sizeof spooled) != 0)
            return 1;
        o.data = spooled;
        o.no_index_cache = 1;
    }
    rc = load_data(&o, &train, &test);
    if (rc != 0)
        return rc;
    if (o.train_limit > 0 && (size_t)o.train_limit < train.count)
        fedl_dataset_truncate(&train, (size_t)o.train_limit);
    if (o.test_limit > 0 && (size_t)o.test_limit < test.count)
        fedl_dataset_truncate(&test, (size_t)o.test_limit);

    rc = build_config(&o, train.count, &config);
    if (rc != 0)
        goto done;
    if (o.memory != NULL) {
        /* before the model exists, so that its parameters are not counted
         * both in the system's usage and in the plan */
        rc = cli_training_budget("train", o.memory, &budget);
        if (rc != 0)
            goto done;
    }
    if (fedl_model_create(o.model, train.shape, o.seed, NULL, &model, &err) != FEDL_OK) {
        rc = fail("model", &err);
        goto done;
    }
    config.micro_batch = o.micro_batch;
    if (o.memory != NULL) {
        rc = plan_memory(budget, model, &train, &test, &config);
        if (rc != 0)
            goto done;
    }
    if (fedl_trainer_create(model, &train, &config, NULL, &trainer, &err) != FEDL_OK) {
        rc = fail("trainer", &err);
        goto done;
    }
    ckpt.epochs = o.epochs;
    ckpt.every_steps = (uint64_t)o.ckpt_steps;
    ckpt.every_ns = (uint64_t)o.ckpt_seconds * 1000000000ull;
    if (o.ckpt_dir != NULL) {
        rc = open_checkpoints(&o, &ckpt, trainer);
        if (rc != 0)
            goto done;
    }
    if (o.monitor) {
        mon = (monitored){NULL, -1, &o, &ckpt, trainer, model, &train, &test, 0, {0}};
        rc = start_monitor(&o, &mon);
        if (rc != 0)
            goto done;
    }
    resumed_samples = fedl_trainer_stats(trainer).samples_seen;
    printf("model %s: %s parameters\n  %s\n", o.model,
           cli_group_digits(fedl_model_param_count(model), digits, sizeof digits),
           fedl_model_spec(model));
    printf("data %s: %s train, %s test, %d classes; batch %d, %s lr %g%s, seed %llu, GEMM %s\n",
           o.data, cli_group_digits(train.count, digits, sizeof digits),
           cli_group_digits(test.count, digits2, sizeof digits2), train.classes, o.batch,
           o.optimizer, (double)o.lr,
           o.momentum > 0 ? (o.nesterov ? " nesterov" : " momentum") : "",
           (unsigned long long)o.seed, fedl_blas_backend());
    fflush(stdout);
    fedl_model_set_profiling(model, o.profile);
    prog.tty = isatty(STDERR_FILENO);
    prog.quiet = o.quiet;
    prog.epochs = o.epochs;
    prog.next_quarter = 1;

    for (int epoch = first_epoch(trainer); epoch < o.epochs; epoch++) {
        uint64_t start = fedl_time_ns();
        int epoch_done = 0;
        fedl_train_stats s = fedl_trainer_stats(trainer);
        uint64_t seen_before = s.position < s.epoch_samples ? s.epoch_seen : 0;
        fedl_eval_result result;
        double seconds;
        /* A stop request is honoured between steps: the step under way
         * finishes, no new one starts. */
        while (!epoch_done && !stop_requested) {
            rc = follow_monitor(&mon);
            if (rc != 0)
                goto done;
            if (stop_requested)
                break;
            if (fedl_trainer_step(trainer, &epoch_done, &err) != FEDL_OK) {
                rc = fail("training step", &err);
                goto done;
            }
            s = fedl_trainer_stats(trainer);
            progress_update(&prog, &s, (double)(fedl_time_ns() - start) / 1e9);
            if (!epoch_done && !stop_requested)
                checkpoint_if_due(&ckpt, trainer, model, 0);
        }
        if (stop_requested) {
            progress_end_epoch(&prog);
            rc = stop_with_checkpoint(&ckpt, trainer, model);
            goto done;
        }
        seconds = (double)(fedl_time_ns() - start) / 1e9;
        train_seconds += seconds;
        progress_end_epoch(&prog);
        s = fedl_trainer_stats(trainer);
        /* The epoch's last step is checkpointed before the evaluation, so a
         * crash during it loses nothing. */
        checkpoint_if_due(&ckpt, trainer, model, 1);
        rc = follow_monitor(&mon);
        if (rc != 0)
            goto done;
        if (stop_requested) {
            rc = stop_with_checkpoint(&ckpt, trainer, model);
            goto done;
        }
        if (fedl_trainer_evaluate(trainer, &test, &result, NULL, &err) != FEDL_OK) {
            rc = fail("evaluation", &err);
            goto done;
        }
        last_accuracy = o.regression ? result.rmse : result.accuracy;
        snprintf(ckpt.accuracy, sizeof ckpt.accuracy, "%.6f", last_accuracy);
        if (o.regression)
            printf("epoch %d/%d  loss %.4f  test-mse %.4f  test-rmse %.4f  test-mae %.4f  "
                   "%.0f samples/s  %.2f s\n",
                   epoch + 1, o.epochs, s.loss_sum / (double)s.epoch_seen,
                   result.loss_sum / (double)(result.samples ? result.samples : 1), result.rmse,
                   result.mae, (double)(s.epoch_seen - seen_before) / seconds, seconds);
        else
            printf("epoch %d/%d  loss %.4f  train-acc %.4f  test-loss %.4f  test-acc %.4f  "
                   "%.0f samples/s  %.2f s\n",
                   epoch + 1, o.epochs, s.loss_sum / (double)s.epoch_seen,
                   (double)s.correct / (double)s.epoch_seen,
                   result.loss_sum / (double)(result.samples ? result.samples : 1), result.accuracy,
                   (double)(s.epoch_seen - seen_before) / seconds, seconds);
        fflush(stdout);
    }
    if (last_accuracy < 0.0) { /* resumed after the last epoch: nothing left to train */
        fedl_eval_result result;
        if (fedl_trainer_evaluate(trainer, &test, &result, NULL, &err) != FEDL_OK) {
            rc = fail("evaluation", &err);
            goto done;
        }
        last_accuracy = o.regression ? result.rmse : result.accuracy;
        printf("training already complete (%d epochs); %s %.4f\n", o.epochs,
               o.regression ? "test-rmse" : "test-acc", last_accuracy);
    }
    {
        fedl_train_stats s = fedl_trainer_stats(trainer);
        uint64_t this_run = s.samples_seen - resumed_samples;
        printf("summary: %d epochs, %s steps, %s samples in %.2f s (%.0f samples/s)%s; test "
               "%s %.4f; peak RSS %.1f MiB\n",
               o.epochs, cli_group_digits(s.global_step, digits, sizeof digits),
               cli_group_digits(this_run, digits2, sizeof digits2), train_seconds,
               train_seconds > 0 ? (double)this_run / train_seconds : 0.0,
               resumed_samples > 0 ? " after resuming" : "", o.regression ? "RMSE" : "accuracy",
               last_accuracy, (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    }
    if (o.profile)
        print_profile(model);
    if (o.out != NULL) {
        if (save_model(model, &train, o.out, &err) != FEDL_OK) {
            rc = fail("saving the model", &err);
            goto done;
        }
        printf("wrote %s\n", o.out);
    }
done:
    fedl_monitor_destroy(mon.monitor);
    if (mon.log_fd > STDERR_FILENO)
        close(mon.log_fd);
    if (spooled[0] != '\0')
        unlink(spooled);
    fedl_ckpt_dir_close(ckpt.dir);
    fedl_trainer_destroy(trainer);
    fedl_model_destroy(model);
    fedl_dataset_free(&train);
    fedl_dataset_free(&test);
    return rc;
}
