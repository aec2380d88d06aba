/*
 * cmd_train.c - `fedl train`: load an IDX data set, build the model from a
 * preset or spec, train with progress, evaluate each epoch, save the model.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
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
} train_options;

static const char train_usage[] =
    "The model is a preset (lenet5, mlp) or a spec such as\n"
    "  \"conv2d(6,5,pad=2) relu maxpool2d(2) flatten dense(10)\".\n"
    "The data directory holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],\n"
    "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].\n"
    "Example:\n"
    "  fedl train --model lenet5 --data /usr/share/datasets/fashion-mnist --epochs 5 \\\n"
    "      --batch 32 --lr 0.05 --momentum 0.9 --seed 1 --out model.fedl\n";

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

/* ------------------------------------------------------------------ main */

static int fail(const char *what, const fedl_error *err)
{
    fprintf(stderr, "fedl train: %s: %s\n", what, err->message);
    return 1;
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
    train_options o = {"lenet5", NULL, NULL, "sgd", "constant", "warn", 5,     32,   0,    0,
                       0,        1,    0,    0,     0.05f,      0.0f,   -1.0f, 0.1f, 0.0f, 1};
    const cli_option options[] = {
        {"model", CLI_STRING, &o.model, "NAME|SPEC", "preset (lenet5, mlp) or spec [lenet5]", 0, 0},
        {"data", CLI_STRING, &o.data, "DIR", "IDX data directory (MNIST layout), required", 0, 0},
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
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    fedl_dataset train = {0}, test = {0};
    fedl_model *model = NULL;
    fedl_trainer *trainer = NULL;
    fedl_train_config config;
    fedl_error err = {0};
    fedl_log_level level;
    progress prog = {0};
    double train_seconds = 0.0, last_accuracy = 0.0;
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

    if (fedl_dataset_load_mnist_dir(o.data, FEDL_SPLIT_TRAIN, NULL, &train, &err) != FEDL_OK)
        return fail("training data", &err);
    if (fedl_dataset_load_mnist_dir(o.data, FEDL_SPLIT_TEST, NULL, &test, &err) != FEDL_OK) {
        fedl_dataset_free(&train);
        return fail("test data", &err);
    }
    if (o.train_limit > 0 && (size_t)o.train_limit < train.count)
        fedl_dataset_truncate(&train, (size_t)o.train_limit);
    if (o.test_limit > 0 && (size_t)o.test_limit < test.count)
        fedl_dataset_truncate(&test, (size_t)o.test_limit);

    rc = build_config(&o, train.count, &config);
    if (rc != 0)
        goto done;
    if (fedl_model_create(o.model, train.shape, o.seed, NULL, &model, &err) != FEDL_OK) {
        rc = fail("model", &err);
        goto done;
    }
    if (fedl_trainer_create(model, &train, &config, NULL, &trainer, &err) != FEDL_OK) {
        rc = fail("trainer", &err);
        goto done;
    }
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

    for (int epoch = 0; epoch < o.epochs; epoch++) {
        uint64_t start = fedl_time_ns();
        int epoch_done = 0;
        fedl_train_stats s;
        fedl_eval_result result;
        double seconds;
        while (!epoch_done) {
            if (fedl_trainer_step(trainer, &epoch_done, &err) != FEDL_OK) {
                rc = fail("training step", &err);
                goto done;
            }
            s = fedl_trainer_stats(trainer);
            progress_update(&prog, &s, (double)(fedl_time_ns() - start) / 1e9);
        }
        seconds = (double)(fedl_time_ns() - start) / 1e9;
        train_seconds += seconds;
        progress_end_epoch(&prog);
        s = fedl_trainer_stats(trainer);
        if (fedl_evaluate(model, &test, o.batch, NULL, &result, NULL, &err) != FEDL_OK) {
            rc = fail("evaluation", &err);
            goto done;
        }
        last_accuracy = result.accuracy;
        printf("epoch %d/%d  loss %.4f  train-acc %.4f  test-loss %.4f  test-acc %.4f  "
               "%.0f samples/s  %.2f s\n",
               epoch + 1, o.epochs, s.loss_sum / (double)s.epoch_seen,
               (double)s.correct / (double)s.epoch_seen,
               result.loss_sum / (double)(result.samples ? result.samples : 1), result.accuracy,
               (double)s.epoch_seen / seconds, seconds);
        fflush(stdout);
    }
    {
        fedl_train_stats s = fedl_trainer_stats(trainer);
        printf("summary: %d epochs, %s steps, %s samples in %.2f s (%.0f samples/s); test "
               "accuracy %.4f; peak RSS %.1f MiB\n",
               o.epochs, cli_group_digits(s.global_step, digits, sizeof digits),
               cli_group_digits(s.samples_seen, digits2, sizeof digits2), train_seconds,
               (double)s.samples_seen / train_seconds, last_accuracy,
               (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    }
    if (o.profile)
        print_profile(model);
    if (o.out != NULL) {
        if (fedl_model_save(model, o.out, &err) != FEDL_OK) {
            rc = fail("saving the model", &err);
            goto done;
        }
        printf("wrote %s\n", o.out);
    }
done:
    fedl_trainer_destroy(trainer);
    fedl_model_destroy(model);
    fedl_dataset_free(&train);
    fedl_dataset_free(&test);
    return rc;
}
