/* cmd_eval.c - `fedl eval`: accuracy, per-class accuracy and the confusion
 * matrix of a saved model on the test split of an IDX data set, or on a CSV
 * file read as the model's training file was (the fit in its model file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "fedl/fedl.h"

static const char eval_usage[] =
    "Example:\n"
    "  fedl eval --model-file model.fedl --data /usr/share/datasets/fashion-mnist\n"
    "  fedl eval --model-file model.fedl --data test.csv   (a model trained from CSV)\n";

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A CSV file read the way the model's training file was: the fit stored in
 * the model file's "data" section. */
static fedl_status open_csv(const char *model_file, const char *csv, fedl_dataset *ds,
                            fedl_csv_fit **fit, fedl_error *err)
{
    fedl_file_view view;
    fedl_container c;
    const fedl_section *s;
    fedl_status st = fedl_file_view_open(model_file, NULL, &view, err);
    if (st != FEDL_OK)
        return st;
    st = fedl_container_parse(view.bytes, view.length, model_file, &c, err);
    if (st == FEDL_OK) {
        s = fedl_container_find(&c, "data");
        if (s == NULL)
            st = fedl_error_set(err, FEDL_ERR_FORMAT,
                                "%s was not trained from CSV (it has no \"data\" section): "
                                "evaluate it on IDX data",
                                model_file);
        else
            st = fedl_csv_fit_decode(fedl_container_data(&c, s), (size_t)s->length, model_file,
                                     NULL, fit, err);
    }
    fedl_file_view_close(&view);
    if (st == FEDL_OK)
        st = fedl_csv_dataset_open(csv, NULL, NULL, *fit, NULL, ds, err);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    const char *model_file = NULL, *data = NULL, *split_name = "test";
    int batch = 256, limit = 0;
    const cli_option options[] = {
        {"model-file", CLI_STRING, &model_file, "FILE", "model written by fedl train --out", 0, 0},
        {"data", CLI_STRING, &data, "DIR|FILE",
         "IDX data directory (MNIST layout), or a CSV file read like the model's training file", 0,
         0},
        {"split", CLI_STRING, &split_name, "NAME", "test or train [test]", 0, 0},
        {"batch", CLI_INT, &batch, "N", "samples per forward pass [256]", 1, 1 << 20},
        {"limit", CLI_INT, &limit, "N", "use only the first N samples", 1, 2147483647},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    fedl_dataset ds = {0};
    fedl_model *model = NULL;
    fedl_error err = {0};
    fedl_eval_result result;
    fedl_split split;
    uint64_t *confusion = NULL;
    fedl_shape out;
    fedl_csv_fit *fit = NULL;
    fedl_status st;
    char name_buf[32];
    int classes, rc = cli_parse("eval", eval_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (model_file == NULL || data == NULL) {
        fprintf(stderr, "fedl eval: --model-file FILE and --data DIR are required (see 'fedl "
                        "eval --help')\n");
        return 2;
    }
    if (strcmp(split_name, "test") == 0) {
        split = FEDL_SPLIT_TEST;
    } else if (strcmp(split_name, "train") == 0) {
        split = FEDL_SPLIT_TRAIN;
    } else {
        fprintf(stderr, "fedl eval: --split: '%s' is not test or train\n", split_name);
        return 2;
    }
    if (fedl_model_load(model_file, NULL, &model, &err) != FEDL_OK) {
        fprintf(stderr, "fedl eval: %s\n", err.message);
        return 1;
    }
    if (is_file(data))
        st = open_csv(model_file, data, &ds, &fit, &err);
    else
        st = fedl_dataset_load_mnist_dir(data, split, NULL, &ds, &err);
    if (st != FEDL_OK) {
        fprintf(stderr, "fedl eval: %s\n", err.message);
        rc = 1;
        goto done;
    }
    if (limit > 0 && (size_t)limit < ds.count)
        fedl_dataset_truncate(&ds, (size_t)limit);
    out = fedl_model_output_shape(model);
    classes = (int)(out.c * out.h * out.w);
    confusion = calloc((size_t)classes * (size_t)classes, sizeof *confusion);
    if (confusion == NULL) {
        fprintf(stderr, "fedl eval: out of memory for the confusion matrix\n");
        rc = 1;
        goto done;
    }
    if (fedl_evaluate(model, &ds, batch, NULL, &result, confusion, &err) != FEDL_OK) {
        fprintf(stderr, "fedl eval: %s\n", err.message);
        rc = 1;
        goto done;
    }
    printf("model %s: %s\n", model_file, fedl_model_spec(model));
    if (ds.targets > 0) { /* regression */
        printf("%s: %zu samples, RMSE %.4f, MAE %.4f, MSE %.4f\n", data, result.samples,
               result.rmse, result.mae,
               result.loss_sum / (double)(result.samples ? result.samples : 1));
        goto done;
    }
    printf("%s split: %zu samples, accuracy %.4f (%zu correct), loss %.4f\n\n", split_name,
           result.samples, result.accuracy, result.correct,
           result.loss_sum / (double)(result.samples ? result.samples : 1));
    printf("per-class accuracy:\n");
    for (int k = 0; k < classes; k++) {
        uint64_t total = 0;
        for (int j = 0; j < classes; j++)
            total += confusion[(size_t)k * classes + j];
        const char *name = fedl_csv_class_name(fit, k, name_buf, sizeof name_buf);
        if (total > 0 && name != NULL && !fedl_csv_dataset_info(&ds).numeric_labels)
            printf("  class %2d (%s): %.4f  (%llu of %llu)\n", k, name,
                   (double)confusion[(size_t)k * classes + k] / (double)total,
                   (unsigned long long)confusion[(size_t)k * classes + k],
                   (unsigned long long)total);
        else if (total > 0)
            printf("  class %2d: %.4f  (%llu of %llu)\n", k,
                   (double)confusion[(size_t)k * classes + k] / (double)total,
                   (unsigned long long)confusion[(size_t)k * classes + k],
                   (unsigned long long)total);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted):\n      ");
    for (int j = 0; j < classes; j++)
        printf("%6d", j);
    printf("\n");
    for (int k = 0; k < classes; k++) {
        printf("  %2d: ", k);
        for (int j = 0; j < classes; j++)
            printf("%6llu", (unsigned long long)confusion[(size_t)k * classes + j]);
        printf("\n");
    }
done:
    free(confusion);
    fedl_csv_fit_free(fit);
    fedl_model_destroy(model);
    fedl_dataset_free(&ds);
    return rc;
}
