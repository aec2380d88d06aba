/* safetensors.c - (placeholder) */
#include "fedl/ckpt.h"

/* STUB: generated placeholders, replaced by the real implementation. */
fedl_status fedl_model_export_safetensors(const fedl_model *model, const char *path,
                                          fedl_error *err)
{
    (void)model;
    (void)path;
    return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                          "fedl_model_export_safetensors: not implemented yet");
}
