/* loss.c - softmax cross-entropy and squared error, with their gradients. */
#include <math.h>

#include "fedl/nn.h"

fedl_status fedl_loss_softmax_cross_entropy(const float *logits, const int32_t *labels, int batch,
                                            int classes, float grad_scale, double *loss_sum,
                                            float *dlogits, fedl_error *err)
{
    double total = 0.0;
    if (batch <= 0 || classes <= 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "loss: batch %d, classes %d", batch,
                              classes);
    for (int b = 0; b < batch; b++) {
        if (labels[b] < 0 || labels[b] >= classes)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "loss: label %d of sample %d outside [0, %d)", (int)labels[b], b,
                                  classes);
    }
    for (int b = 0; b < batch; b++) {
        const float *z = logits + (size_t)b * classes; /* (classes) */
        float max = z[0], sum = 0.0f, log_sum;
        for (int k = 1; k < classes; k++)
            max = z[k] > max ? z[k] : max;
        for (int k = 0; k < classes; k++)
            sum += expf(z[k] - max);
        log_sum = logf(sum);
        /* -log softmax(z)[label] = log sum exp (z - max) - (z[label] - max) */
        total += (double)(log_sum - (z[labels[b]] - max));
        if (dlogits != NULL) {
            float *g = dlogits + (size_t)b * classes;
            float inv = 1.0f / sum;
            for (int k = 0; k < classes; k++)
                g[k] = grad_scale * (expf(z[k] - max) * inv - (k == labels[b] ? 1.0f : 0.0f));
        }
    }
    *loss_sum = total;
    return FEDL_OK;
}

fedl_status fedl_loss_mse(const float *pred, const float *target, size_t n, float grad_scale,
                          double *loss_sum, float *dpred, fedl_error *err)
{
    double total = 0.0;
    if (n == 0)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "loss: no values");
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target[i];
        total += (double)d * (double)d;
        if (dpred != NULL)
            dpred[i] = grad_scale * 2.0f * d;
    }
    *loss_sum = total;
    return FEDL_OK;
}

int fedl_count_correct(const float *logits, const int32_t *labels, int batch, int classes)
{
    int correct = 0;
    for (int b = 0; b < batch; b++) {
        const float *z = logits + (size_t)b * classes;
        int best = 0;
        for (int k = 1; k < classes; k++) {
            if (z[k] > z[best])
                best = k;
        }
        correct += best == labels[b];
    }
    return correct;
}
