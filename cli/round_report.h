/* round_report.h - a federated round's table row and JSON line, as fedl
 * simulate and fedl serve print them. */
#ifndef FEDL_CLI_ROUND_REPORT_H
#define FEDL_CLI_ROUND_REPORT_H

#include <stdio.h>

#include "fedl/fedl.h"

/* The table's header line. */
void round_report_header(void);
/* Evaluate weights ((params) floats, copied into model) on test, print
 * the row (unless quiet) and write the JSON line to metrics (if not
 * NULL). command names evaluation errors. */
void round_report(const char *command, const fedl_round_metrics *m, fedl_model *model,
                  const float *weights, const fedl_dataset *test, int quiet, FILE *metrics,
                  double seconds);

/* The global weights into model and saved at out (--out); 0, or 1 with a
 * message. */
int round_report_save(const char *command, fedl_model *model, const float *weights,
                      const char *out);

#endif
