/* cmd_plan.c - `fedl plan`: the memory plan of a training run, per layer and
 * per category, and the micro-batch a budget allows, without training. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

static const char plan_usage[] =
    "Without --data the data set is described by --shape and --samples (Fashion-MNIST's\n"
    "1x28x28 and 60000 by default); its samples are reported, not budgeted.\n"
    "Example:\n"
    "  fedl plan --model lenet5 --batch 256 --memory 8M\n";

typedef struct plan_options {
    const char *model, *memory, *data, *shape, *optimizer;
    int batch, micro_batch, samples;
    float momentum;
} plan_options;

static void print_bytes(const char *what, size_t bytes, const char *note)
{
    char size[32];
    printf("  %-28s %12zu  %10s  %s\n", what, bytes,
           fedl_budget_format_bytes(bytes, size, sizeof size), note);
}

static void print_layers(const fedl_model *model, int micro)
{
    printf("per layer (activations at micro-batch %d: output + what backward keeps):\n", micro);
    printf("  %-3s %-34s %-12s %12s %14s\n", "#", "layer", "output", "param bytes", "activ. bytes");
    for (int i = 0; i < fedl_model_layer_count(model); i++) {
        fedl_layer_info info;
        char shape[32];
        fedl_model_layer_info(model, i, &info);
        snprintf(shape, sizeof shape, "%dx%dx%d", (int)info.out.c, (int)info.out.h,
                 (int)info.out.w);
        printf("  %-3d %-34s %-12s %12zu %14zu\n", i + 1, info.text, shape,
               info.param_count * sizeof(float),
               info.activation_floats * sizeof(float) * (size_t)micro);
    }
}

static void print_plan(const fedl_plan *p)
{
    char a[32], b[32];
    printf("per category (bytes the allocator hands out):\n");
    print_bytes("parameters", p->params, "the model's");
    print_bytes("gradients", p->grads, "the model's");
    print_bytes("optimiser state", p->optimizer, "arena");
    print_bytes("shuffle order", p->order, "arena");
    print_bytes("activations + workspace", p->activations, "arena, grows with the micro-batch");
    print_bytes("batch buffers", p->batch_buffers, "arena, grows with the micro-batch");
    print_bytes("session arena", p->arena, "one block, all of the above marked arena");
    print_bytes("total", p->total, "parameters + gradients + arena + 63 alignment");
    print_bytes("data set (not budgeted)", p->dataset, "held by the data source");
    if (p->budget > 0)
        printf("budget %s, margin %s (5%%)\n", fedl_budget_format_bytes(p->budget, a, sizeof a),
               fedl_budget_format_bytes(p->margin, b, sizeof b));
    printf("smallest budget for micro-batch 1: %s\n",
           fedl_budget_format_bytes(p->smallest_budget, a, sizeof a));
    printf("effective batch %d, micro-batch %d: %s\n", p->batch, p->micro_batch, p->reason);
}

static int run_plan(const plan_options *o, const fedl_dataset *data)
{
    fedl_train_config config = fedl_train_config_defaults();
    fedl_optim_kind kind;
    int rc;
    fedl_budget budget;
    fedl_model *model = NULL;
    fedl_error err = {0};
    fedl_plan plan;
    if (fedl_optim_parse_kind(o->optimizer, &kind) != FEDL_OK) {
        fprintf(stderr, "fedl plan: --optimizer: '%s' is not sgd, adam or adamw\n", o->optimizer);
        return 2;
    }
    rc = cli_training_budget("plan", o->memory, &budget);
    if (rc != 0)
        return rc;
    config.batch = o->batch;
    config.micro_batch = o->micro_batch;
    config.optim = fedl_optim_defaults(kind);
    config.optim.momentum = o->momentum;
    if (fedl_model_create(o->model, data->shape, 1, NULL, &model, &err) != FEDL_OK) {
        fprintf(stderr, "fedl plan: model: %s\n", err.message);
        return 1;
    }
    if (fedl_plan_training(model, data, &config, (size_t)budget.bytes, &plan, &err) != FEDL_OK) {
        fprintf(stderr, "fedl plan: %s\n", err.message);
        fedl_model_destroy(model);
        return 1;
    }
    printf("model %s: %zu parameters; %s %s optimiser\n", fedl_model_spec(model),
           fedl_model_param_count(model), o->optimizer, o->momentum > 0 ? "momentum" : "");
    cli_print_budget(&budget);
    print_layers(model, plan.micro_batch > 0 ? plan.micro_batch : 1);
    print_plan(&plan);
    fedl_model_destroy(model);
    if (!plan.fits) {
        fprintf(stderr, "fedl plan: does not fit: %s\n", plan.reason);
        return 1;
    }
    return 0;
}

int cmd_plan(int argc, char **argv)
{
    plan_options o = {.model = "lenet5",
                      .memory = "auto",
                      .shape = "1x28x28",
                      .optimizer = "sgd",
                      .batch = 32,
                      .samples = 60000,
                      .momentum = 0.0f};
    const cli_option options[] = {
        {"model", CLI_STRING, &o.model, "NAME|SPEC", "preset (lenet5, mlp) or spec [lenet5]", 0, 0},
        {"batch", CLI_INT, &o.batch, "N", "effective batch [32]", 1, 1 << 20},
        {"micro-batch", CLI_INT, &o.micro_batch, "N", "largest micro-batch allowed [= batch]", 1,
         1 << 20},
        {"memory", CLI_STRING, &o.memory, "auto|SIZE", "budget [auto]", 0, 0},
        {"optimizer", CLI_STRING, &o.optimizer, "NAME", "sgd, adam or adamw [sgd]", 0, 0},
        {"momentum", CLI_FLOAT, &o.momentum, "F", "SGD momentum [0]", 0, 0.999999},
        {"data", CLI_STRING, &o.data, "DIR", "IDX data directory to plan for", 0, 0},
        {"shape", CLI_STRING, &o.shape, "CxHxW", "sample shape without --data [1x28x28]", 0, 0},
        {"samples", CLI_INT, &o.samples, "N", "training samples without --data [60000]", 1,
         2147483647},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    fedl_dataset data = {0};
    fedl_error err = {0};
    int rc = cli_parse("plan", plan_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.data != NULL) {
        if (fedl_dataset_load_mnist_dir(o.data, FEDL_SPLIT_TRAIN, NULL, &data, &err) != FEDL_OK) {
            fprintf(stderr, "fedl plan: data: %s\n", err.message);
            return 1;
        }
    } else {
        /* only the sizes matter to the plan: no samples are loaded */
        if (cli_parse_shape(o.shape, &data.shape) != 0) {
            fprintf(stderr, "fedl plan: --shape: '%s' is not CxHxW (e.g. 1x28x28)\n", o.shape);
            return 2;
        }
        data.count = (size_t)o.samples;
        data.sample_bytes = (size_t)data.shape.c * data.shape.h * data.shape.w;
        data.classes = 10;
    }
    rc = run_plan(&o, &data);
    if (o.data != NULL)
        fedl_dataset_free(&data);
    return rc;
}
