/*
 * train_csv.c - training from CSV files with the library: write a small
 * sensor-style CSV (three readings and a class name per row), open it as a
 * data set read on demand (row index, label names, z-score scaling fitted
 * on the training file), open a test file with the training file's fit,
 * train, evaluate, and show that the fit survives as bytes (what a model
 * file stores) to read another file the same way.
 *
 *   cc train_csv.c $(pkg-config --cflags --libs fedl) -o train_csv
 *   ./train_csv [--smoke]
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* mkdtemp */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fedl/fedl.h>

static const char *const kinds[] = {"idle", "walk", "run"};

/* rows of "temp,accel,noise,state": accel tells the state apart. */
static int write_rows(const char *path, int rows, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    fedl_rng rng;
    if (f == NULL)
        return -1;
    fedl_rng_init(&rng, seed, 0);
    fprintf(f, "temp,accel,noise,state\n");
    for (int i = 0; i < rows; i++) {
        int k = (int)fedl_rng_below(&rng, 3);
        float accel = (float)k * 4.0f + (float)fedl_rng_below(&rng, 1000) / 500.0f;
        fprintf(f, "%.2f,%.3f,%u,%s\n", 20.0 + (double)fedl_rng_below(&rng, 100) / 10.0,
                (double)accel, (unsigned)fedl_rng_below(&rng, 50), kinds[k]);
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    char dir[] = "/tmp/fedl-csv-example-XXXXXX", train_path[64], test_path[64];
    fedl_csv_schema schema = fedl_csv_schema_defaults();
    fedl_train_config config = fedl_train_config_defaults();
    fedl_dataset train = {0}, test = {0}, again = {0};
    fedl_csv_fit *stored = NULL;
    fedl_model *model = NULL;
    fedl_trainer *trainer = NULL;
    fedl_eval_result result;
    fedl_error err = {0};
    uint8_t *fit_bytes = NULL;
    size_t fit_length = 0;
    char name[16];
    int rc = 1, steps = smoke ? 60 : 600;

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(train_path, sizeof train_path, "%s/train.csv", dir);
    snprintf(test_path, sizeof test_path, "%s/test.csv", dir);
    if (write_rows(train_path, 600, 1) != 0 || write_rows(test_path, 200, 2) != 0)
        goto done;

    schema.label = "state";
    schema.features = "temp,accel,noise";
    schema.scaling = FEDL_CSV_SCALE_ZSCORE;
    if (fedl_csv_dataset_open(train_path, NULL, &schema, NULL, NULL, &train, &err) != FEDL_OK ||
        fedl_csv_dataset_open(test_path, NULL, &schema, fedl_csv_dataset_fit(&train), NULL, &test,
                              &err) != FEDL_OK)
        goto done;
    printf("%zu training rows, %d classes (0 = %s), %zu bytes held for the data\n", train.count,
           train.classes, fedl_csv_class_name(fedl_csv_dataset_fit(&train), 0, name, sizeof name),
           fedl_dataset_held_bytes(&train));

    config.batch = 16;
    config.optim.momentum = 0.9f;
    config.lr.base_lr = 0.05f;
    if (fedl_model_create("dense(16) relu dense(3)", train.shape, 1, NULL, &model, &err) !=
            FEDL_OK ||
        fedl_trainer_create(model, &train, &config, NULL, &trainer, &err) != FEDL_OK)
        goto done;
    for (int i = 0; i < steps; i++) {
        int epoch_done;
        if (fedl_trainer_step(trainer, &epoch_done, &err) != FEDL_OK)
            goto done;
    }
    if (fedl_evaluate(model, &test, 64, NULL, &result, NULL, &err) != FEDL_OK)
        goto done;
    printf("%d steps: test accuracy %.3f\n", steps, result.accuracy);

    /* the fit as a model file stores it, read back to open the test file again */
    if (fedl_csv_fit_encode(fedl_csv_dataset_fit(&train), NULL, &fit_bytes, &fit_length, &err) !=
            FEDL_OK ||
        fedl_csv_fit_decode(fit_bytes, fit_length, "fit", NULL, &stored, &err) != FEDL_OK ||
        fedl_csv_dataset_open(test_path, NULL, NULL, stored, NULL, &again, &err) != FEDL_OK ||
        fedl_evaluate(model, &again, 64, NULL, &result, NULL, &err) != FEDL_OK)
        goto done;
    printf("the stored fit (%zu bytes) reads the test file alike: accuracy %.3f\n", fit_length,
           result.accuracy);
    rc = smoke ? 0 : result.accuracy < 0.9;
done:
    if (err.status != FEDL_OK)
        fprintf(stderr, "train_csv: %s\n", err.message);
    fedl_trainer_destroy(trainer);
    fedl_model_destroy(model);
    fedl_dataset_free(&train);
    fedl_dataset_free(&test);
    fedl_dataset_free(&again);
    fedl_csv_fit_free(stored);
    fedl_mem_free(NULL, fit_bytes, fit_length);
    remove(train_path);
    remove(test_path);
    rmdir(dir);
    return rc;
}
