/*
 * train_mlp.c - the smallest complete use of libfedl: build a model from a
 * spec, train it with SGD on data held in memory, and report the loss.
 *
 *   cc train_mlp.c $(pkg-config --cflags --libs fedl) -o train_mlp
 *   ./train_mlp           # learns a noisy 2-D two-class problem
 *   ./train_mlp --smoke   # same, fewer steps; exit 1 if it did not learn
 */
#include <stdio.h>
#include <string.h>

#include <fedl/fedl.h>

#define SAMPLES 256
#define BATCH 32

int main(int argc, char **argv)
{
    int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    int epochs = smoke ? 30 : 200;
    static float x[SAMPLES][2];     /* (samples, features) */
    static int32_t labels[SAMPLES]; /* (samples) */
    float dlogits[BATCH * 2];       /* (batch, classes) */
    fedl_shape input = {2, 1, 1};
    fedl_model *model = NULL;
    fedl_optim *optim = NULL;
    fedl_optim_config config = fedl_optim_defaults(FEDL_OPTIM_SGD);
    fedl_error err;
    fedl_rng rng;
    double first_loss = 0.0, last_loss = 0.0;

    /* Two classes: points inside or outside a circle of radius 0.6. */
    fedl_rng_init(&rng, 42, 0);
    for (int i = 0; i < SAMPLES; i++) {
        x[i][0] = 2.0f * fedl_rng_uniform(&rng) - 1.0f;
        x[i][1] = 2.0f * fedl_rng_uniform(&rng) - 1.0f;
        labels[i] = x[i][0] * x[i][0] + x[i][1] * x[i][1] < 0.36f;
    }

    if (fedl_model_create("dense(16) relu dense(16) relu dense(2)", input, 7, NULL, &model, &err) !=
            FEDL_OK ||
        fedl_model_reserve(model, BATCH, &err) != FEDL_OK) {
        fprintf(stderr, "model: %s\n", err.message);
        return 1;
    }
    config.momentum = 0.9f;
    if (fedl_optim_create(&config, fedl_model_param_count(model), NULL, &optim, &err) != FEDL_OK) {
        fprintf(stderr, "optimiser: %s\n", err.message);
        fedl_model_destroy(model);
        return 1;
    }

    for (int epoch = 0; epoch < epochs; epoch++) {
        double epoch_loss = 0.0;
        for (int start = 0; start < SAMPLES; start += BATCH) {
            const float *logits;
            double loss;
            fedl_model_forward(model, &x[start][0], BATCH, 1, &logits, &err);
            fedl_loss_softmax_cross_entropy(logits, &labels[start], BATCH, 2, 1.0f / BATCH, &loss,
                                            dlogits, &err);
            fedl_model_zero_grads(model);
            fedl_model_backward(model, dlogits, NULL, &err);
            fedl_optim_step(optim, fedl_model_params(model), fedl_model_grads(model), 0.1f);
            epoch_loss += loss;
        }
        epoch_loss /= SAMPLES;
        if (epoch == 0)
            first_loss = epoch_loss;
        last_loss = epoch_loss;
    }
    printf("fedl %s (%s): %zu parameters, loss %.4f -> %.4f after %d epochs\n", fedl_version(),
           fedl_blas_backend(), fedl_model_param_count(model), first_loss, last_loss, epochs);
    fedl_optim_destroy(optim);
    fedl_model_destroy(model);
    return last_loss < 0.8 * first_loss ? 0 : 1;
}
