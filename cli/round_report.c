/* round_report.c - a federated round's table row and JSON line. */
#include "round_report.h"

#include <string.h>

int round_report_save(const char *command, fedl_model *model, const float *weights, const char *out)
{
    fedl_error err = {0};
    memcpy(fedl_model_params(model), weights, fedl_model_param_count(model) * sizeof(float));
    if (fedl_model_save(model, out, &err) != FEDL_OK) {
        fprintf(stderr, "fedl %s: --out: %s\n", command, err.message);
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}

void round_report_header(void)
{
    printf(
        "round  selected completed dropped rejected  train-loss test-loss  test-acc    time s\n");
}

void round_report(const char *command, const fedl_round_metrics *m, fedl_model *model,
                  const float *weights, const fedl_dataset *test, int quiet, FILE *metrics,
                  double seconds)
{
    fedl_eval_result r;
    fedl_error err = {0};
    double test_loss;
    memcpy(fedl_model_params(model), weights, fedl_model_param_count(model) * sizeof(float));
    if (fedl_evaluate(model, test, 256, NULL, &r, NULL, &err) != FEDL_OK) {
        fprintf(stderr, "fedl %s: evaluation: %s\n", command, err.message);
        memset(&r, 0, sizeof r);
    }
    test_loss = r.samples ? r.loss_sum / (double)r.samples : 0.0;
    if (!quiet)
        printf("%5llu  %8d %9d %7d %8d %11.4f %9.4f %9.4f %8.1f\n", (unsigned long long)m->round,
               m->selected, m->completed, m->dropped, m->rejected, m->train_loss, test_loss,
               r.accuracy, seconds);
    fflush(stdout);
    if (metrics == NULL)
        return;
    fprintf(metrics,
            "{\"round\":%llu,\"attempts\":%d,\"selected\":%d,\"completed\":%d,\"dropped\":%d,"
            "\"rejected\":%d,\"late_folded\":%d,\"samples\":%llu,\"train_loss\":%.6f,"
            "\"test_loss\":%.6f,\"test_accuracy\":%.6f,\"bytes_out\":%llu,\"bytes_in\":%llu,"
            "\"closed_by_deadline\":%s,\"seconds\":%.3f}\n",
            (unsigned long long)m->round, m->attempts, m->selected, m->completed, m->dropped,
            m->rejected, m->late_folded, (unsigned long long)m->samples, m->train_loss, test_loss,
            r.accuracy, (unsigned long long)m->bytes_out, (unsigned long long)m->bytes_in,
            m->closed_by_deadline ? "true" : "false", seconds);
    fflush(metrics);
}
