/*
 * layer_pool.c - pooling layers with PyTorch semantics: maxpool2d
 * (nn.MaxPool2d; padding counts as -inf), avgpool2d (nn.AvgPool2d with
 * count_include_pad=True, so the divisor is always kernel*kernel) and
 * global_avgpool ((C, H, W) -> (C, 1, 1), nn.AdaptiveAvgPool2d(1)). All use
 * floor mode for the output size and a square kernel; stride 0 in the spec
 * means stride = kernel.
 *
 * Max pooling keeps, per output element, the flat index c*H*W + h*W + w of
 * its maximum inside the sample (int32 in aux) so backward routes the
 * gradient without looking at x again.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/layer.h"

/* ------------------------------------------------------------ shared */

/* c * h * w <= INT32_MAX for positive int32 dimensions, without overflow. */
static int size_fits(int64_t c, int64_t h, int64_t w)
{
    return c * h <= INT32_MAX && c * h * w <= INT32_MAX; /* c * h < 2^62 */
}

/* "maxpool2d(2)" or "maxpool2d(3,stride=2,pad=1)" for error messages. */
static void pool_label(const fedl_layer *l, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s(%d", name, (int)l->kernel);
    if (n > 0 && (size_t)n < size && l->stride != 0 && l->stride != l->kernel)
        n += snprintf(buf + n, size - (size_t)n, ",stride=%d", (int)l->stride);
    if (n > 0 && (size_t)n < size && l->pad != 0)
        n += snprintf(buf + n, size - (size_t)n, ",pad=%d", (int)l->pad);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ")");
}

static fedl_status pool_setup(fedl_layer *l, fedl_error *err, const char *name)
{
    char label[96];
    int64_t c = l->in.c, h = l->in.h, w = l->in.w, k = l->kernel, p = l->pad, oh, ow;

    pool_label(l, name, label, sizeof label);
    if (l->kernel <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: kernel size must be positive (got %d)",
                              label, (int)l->kernel);
    if (l->stride < 0)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: stride must be positive, or 0 for the kernel size (got %d)",
                              label, (int)l->stride);
    if (l->pad < 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: padding must not be negative (got %d)",
                              label, (int)l->pad);
    /* PyTorch's rule: it keeps every window overlapping the input. */
    if (p > k / 2)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: padding %d is more than half the kernel size %d", label, (int)p,
                              (int)k);
    if (c <= 0 || h <= 0 || w <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: empty input %dx%dx%d", label, (int)c, (int)h,
                              (int)w);
    if (h + 2 * p < k || w + 2 * p < k)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: kernel %d larger than padded input %lldx%lld", label, (int)k,
                              (long long)(h + 2 * p), (long long)(w + 2 * p));
    if (h + 2 * p > INT32_MAX / 4 || w + 2 * p > INT32_MAX / 4 || !size_fits(c, h, w))
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: input %dx%dx%d too large", label, (int)c,
                              (int)h, (int)w);
    if (l->stride == 0)
        l->stride = l->kernel;
    oh = (h + 2 * p - k) / l->stride + 1;
    ow = (w + 2 * p - k) / l->stride + 1;
    l->in_size = (size_t)(c * h * w);
    l->out = (fedl_shape){(int32_t)c, (int32_t)oh, (int32_t)ow};
    l->out_size = (size_t)(c * oh * ow);
    l->param_count = 0;
    l->aux_size = 0;
    return FEDL_OK;
}

/* The window of output (oh, ow) clipped to the input: rows [*h0, *h1),
 * columns [*w0, *w1). Never empty because pad <= kernel / 2. */
static void pool_window(const fedl_layer *l, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * l->stride - l->pad, ws = ow * l->stride - l->pad;
    int he = hs + l->kernel, we = ws + l->kernel;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > l->in.h ? l->in.h : he;
    *w1 = we > l->in.w ? l->in.w : we;
}

/* ------------------------------------------------------------ maxpool2d */

static fedl_status maxpool_setup(fedl_layer *l, fedl_error *err)
{
    fedl_status status = pool_setup(l, err, "maxpool2d");
    if (status == FEDL_OK)
        l->aux_size = l->out_size; /* argmax per output element */
    return status;
}

/* The 2x2, stride 2, no padding case of LeNet-style nets, without branches:
 * each window is four compares compiled to selects. Same semantics as the
 * general loop: the first maximum wins, a NaN anywhere wins over numbers. */
static void maxpool_forward_2x2(const fedl_layer *l, size_t planes, const float *x, float *y,
                                int32_t *argmax)
{
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * (size_t)H * W;               /* (h, w) */
        float *yp = y + pl * (size_t)OH * OW;                   /* (oh, ow) */
        int32_t base = (int32_t)(pl % (size_t)l->in.c) * H * W; /* plane offset in the sample */
        int32_t *ap = argmax != NULL ? argmax + pl * (size_t)OH * OW : NULL;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = xp + (size_t)(2 * oh) * W, *r1 = r0 + W;
            for (int ow = 0; ow < OW; ow++) {
                float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
                int32_t at[4] = {2 * oh * W + 2 * ow, 2 * oh * W + 2 * ow + 1,
                                 (2 * oh + 1) * W + 2 * ow, (2 * oh + 1) * W + 2 * ow + 1};
                float best = v[0];
                int32_t best_at = at[0];
                for (int k = 1; k < 4; k++) {
                    int take = (v[k] > best) | (v[k] != v[k]);
                    best = take ? v[k] : best;
                    best_at = take ? at[k] : best_at;
                }
                yp[(size_t)oh * OW + ow] = best;
                if (ap != NULL)
                    ap[(size_t)oh * OW + ow] = base + best_at;
            }
        }
    }
}

static void maxpool_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, float *y, void *aux)
{
    int32_t *argmax = aux; /* (batch, c, oh, ow), may be NULL outside training */
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    size_t planes = (size_t)ctx->batch * (size_t)l->in.c;
    (void)w;
    if (l->kernel == 2 && l->stride == 2 && l->pad == 0) {
        maxpool_forward_2x2(l, planes, x, y, argmax);
        return;
    }
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * (size_t)H * W;               /* (h, w) */
        float *yp = y + pl * (size_t)OH * OW;                   /* (oh, ow) */
        int32_t base = (int32_t)(pl % (size_t)l->in.c) * H * W; /* plane offset in the sample */
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                float best = -INFINITY;
                int32_t best_at = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++) {
                    const float *row = xp + (size_t)ih * W;
                    for (int iw = w0; iw < w1; iw++) {
                        /* first maximum wins; NaN propagates, as in PyTorch */
                        if (row[iw] > best || isnan(row[iw])) {
                            best = row[iw];
                            best_at = ih * W + iw;
                        }
                    }
                }
                yp[(size_t)oh * OW + ow] = best;
                if (argmax != NULL)
                    argmax[pl * (size_t)OH * OW + (size_t)oh * OW + ow] = base + best_at;
            }
        }
    }
}

static void maxpool_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                             const float *x, const float *y, const void *aux, const float *dy,
                             float *dx, float *dw)
{
    const int32_t *argmax = aux; /* (batch, out_size) */
    (void)w;
    (void)x;
    (void)y;
    (void)dw;
    if (dx == NULL)
        return;
    memset(dx, 0, (size_t)ctx->batch * l->in_size * sizeof(float));
    for (int b = 0; b < ctx->batch; b++) {
        float *dxb = dx + (size_t)b * l->in_size; /* (c, h, w) */
        const float *dyb = dy + (size_t)b * l->out_size;
        const int32_t *ab = argmax + (size_t)b * l->out_size;
        for (size_t i = 0; i < l->out_size; i++)
            dxb[ab[i]] += dyb[i];
    }
}

static void maxpool_flops(const fedl_layer *l, double *forward, double *backward)
{
    *forward = (double)l->out_size * l->kernel * l->kernel;
    *backward = (double)l->out_size;
}

const fedl_layer_ops fedl_layer_maxpool2d_ops = {
    FEDL_LAYER_MAXPOOL2D, "maxpool2d",      maxpool_setup, NULL, NULL,
    maxpool_forward,      maxpool_backward, maxpool_flops};

/* ------------------------------------------------------------ avgpool2d */

static fedl_status avgpool_setup(fedl_layer *l, fedl_error *err)
{
    return pool_setup(l, err, "avgpool2d");
}

static void avgpool_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, float *y, void *aux)
{
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    size_t planes = (size_t)ctx->batch * (size_t)l->in.c;
    float scale = 1.0f / ((float)l->kernel * (float)l->kernel); /* padding counts */
    (void)w;
    (void)aux;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * (size_t)H * W; /* (h, w) */
        float *yp = y + pl * (size_t)OH * OW;     /* (oh, ow) */
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                float sum = 0.0f;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += xp[(size_t)ih * W + iw];
                yp[(size_t)oh * OW + ow] = sum * scale;
            }
        }
    }
}

static void avgpool_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                             const float *x, const float *y, const void *aux, const float *dy,
                             float *dx, float *dw)
{
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    size_t planes = (size_t)ctx->batch * (size_t)l->in.c;
    float scale = 1.0f / ((float)l->kernel * (float)l->kernel);
    (void)w;
    (void)x;
    (void)y;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    memset(dx, 0, (size_t)ctx->batch * l->in_size * sizeof(float));
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * (size_t)H * W;         /* (h, w) */
        const float *dyp = dy + pl * (size_t)OH * OW; /* (oh, ow) */
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                float g = dyp[(size_t)oh * OW + ow] * scale;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        dxp[(size_t)ih * W + iw] += g;
            }
        }
    }
}

static void avgpool_flops(const fedl_layer *l, double *forward, double *backward)
{
    *forward = (double)l->out_size * l->kernel * l->kernel;
    *backward = *forward;
}

const fedl_layer_ops fedl_layer_avgpool2d_ops = {
    FEDL_LAYER_AVGPOOL2D, "avgpool2d",      avgpool_setup, NULL, NULL,
    avgpool_forward,      avgpool_backward, avgpool_flops};

/* ------------------------------------------------------- global_avgpool */

static fedl_status gap_setup(fedl_layer *l, fedl_error *err)
{
    int64_t c = l->in.c, h = l->in.h, w = l->in.w;
    if (c <= 0 || h <= 0 || w <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "global_avgpool: empty input %dx%dx%d", (int)c,
                              (int)h, (int)w);
    if (!size_fits(c, h, w))
        return fedl_error_set(err, FEDL_ERR_SPEC, "global_avgpool: input %dx%dx%d too large",
                              (int)c, (int)h, (int)w);
    l->in_size = (size_t)(c * h * w);
    l->out = (fedl_shape){(int32_t)c, 1, 1};
    l->out_size = (size_t)c;
    l->param_count = 0;
    l->aux_size = 0;
    return FEDL_OK;
}

static void gap_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                        const float *x, float *y, void *aux)
{
    size_t planes = (size_t)ctx->batch * (size_t)l->in.c;
    size_t area = (size_t)l->in.h * (size_t)l->in.w;
    float scale = 1.0f / (float)area;
    (void)w;
    (void)aux;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * area; /* (h*w) */
        float sum = 0.0f;
        for (size_t i = 0; i < area; i++)
            sum += xp[i];
        y[pl] = sum * scale; /* (batch, c) */
    }
}

static void gap_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                         const float *x, const float *y, const void *aux, const float *dy,
                         float *dx, float *dw)
{
    size_t planes = (size_t)ctx->batch * (size_t)l->in.c;
    size_t area = (size_t)l->in.h * (size_t)l->in.w;
    float scale = 1.0f / (float)area;
    (void)w;
    (void)x;
    (void)y;
    (void)aux;
    (void)dw;
    if (dx == NULL)
        return;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * area; /* (h*w) */
        float g = dy[pl] * scale;
        for (size_t i = 0; i < area; i++)
            dxp[i] = g;
    }
}

static void gap_flops(const fedl_layer *l, double *forward, double *backward)
{
    *forward = (double)l->in_size;
    *backward = (double)l->in_size;
}

const fedl_layer_ops fedl_layer_global_avgpool_ops = {FEDL_LAYER_GLOBAL_AVGPOOL,
                                                      "global_avgpool",
                                                      gap_setup,
                                                      NULL,
                                                      NULL,
                                                      gap_forward,
                                                      gap_backward,
                                                      gap_flops};
