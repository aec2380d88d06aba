/*
 * layer_conv.c - 2-D and 1-D convolution, torch.nn.Conv2d / torch.nn.Conv1d
 * semantics (cross-correlation, zero padding, floor output size), computed as
 * im2col + one GEMM per chunk of samples, col2im for the input gradient.
 *
 * conv1d is conv2d with a (1, k) kernel on a (C, 1, L) input, so both kinds
 * share one implementation parameterised by a conv_geom.
 *
 * Batching: im2col lays the columns of several samples side by side,
 * col (C*KH*KW, chunk*OH*OW), so one GEMM covers the whole chunk; the result
 * (OC, chunk*OH*OW) is then scattered to y (batch, OC, OH*OW). The chunk
 * size depends only on the layer and the batch (so results never depend on
 * how large a batch the model reserved for): as many samples as fit a
 * cache-sized buffer, at least one, fewer only if the caller hands over less
 * workspace than workspace_floats() asked for. A one-sample chunk multiplies
 * straight into y without the scatter buffer. A 1x1 kernel with stride 1
 * and no padding needs no im2col and no workspace: x is the column matrix.
 *
 * Stride 1 (the common case) skips the per-row padding logic: a padded
 * input is first copied to a zero-bordered (c, h+2p, w+2p) plane in the
 * workspace, so every col row is a plain copy of input rows (moved in blocks
 * of 4 floats), and col2im adds into a zeroed padded plane whose interior is
 * then copied to dx. This halved the im2col time of LeNet-5 (rows of 10 and
 * 28 floats). The summation order is the same as the general path.
 *
 * One input channel at stride 1 (a first layer: LeNet-5's conv1) uses no
 * col at all: col would be kh*kw copies of a small input and the GEMM's
 * shapes are poor (6 output channels, 25-long dot products), so forward
 * (fwd_direct) and dW (dw_direct) read the padded plane directly, in 4-wide
 * vectors with a few output channels per pass. Nothing is kept in aux for
 * such a layer; dx, when wanted, still goes through W^T . dy and col2im.
 * On x86 with OpenBLAS this took conv1 from 660 + 650 ms to ~390 + 350 ms
 * per Fashion-MNIST epoch (forward + backward). Every other layer keeps its
 * columns (kdim, n) per sample in aux for backward: recomputing them in
 * backward instead was measured 10-20% slower.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/layer.h"

/* Column buffer plus scatter buffer of one chunk are kept below this many
 * floats (512 KiB, the L2 cache of a Cortex-A53) unless a single sample
 * needs more, so the GEMM reads the columns im2col just wrote from cache.
 * LeNet-5 at batch 32 then runs conv2 in chunks of 7 (conv1 has no col).
 * Measured on x86 (both layers, forward + backward): with OpenBLAS as fast
 * as one whole-batch GEMM, which would need 3 MiB; with BLIS 15% faster than
 * one GEMM per sample. Re-measured with the stride-1 paths: 64 Ki to 1 Mi
 * floats (the whole batch, so one dW GEMM) all within 2% for conv2. */
#ifndef CONV_CHUNK_TARGET_FLOATS
#define CONV_CHUNK_TARGET_FLOATS ((size_t)128 * 1024)
#endif

typedef struct conv_geom {
    int c, h, w;    /* input per sample */
    int oc, oh, ow; /* output per sample */
    int kh, kw;     /* kernel */
    int sh, sw;     /* stride */
    int ph, pw;     /* zero padding on each side */
    int kdim;       /* rows of col: c * kh * kw */
    int n;          /* columns per sample: oh * ow */
    int direct;     /* 1x1 kernel, stride 1, no padding: x is col */
    int unit;       /* stride 1: im2col/col2im work on a padded copy */
    int hp, wp;     /* padded input plane: h + 2*ph, w + 2*pw */
    size_t pad;     /* workspace floats of the padded copy (c, hp, wp), or 0 */
    int dw_direct;  /* one input channel, stride 1: fwd_direct and dw_direct, no col */
} conv_geom;

static conv_geom conv_geometry(const fedl_layer *l, int one_d)
{
    conv_geom g;
    g.c = l->in.c;
    g.h = l->in.h;
    g.w = l->in.w;
    g.oc = l->units;
    g.kh = one_d ? 1 : l->kernel;
    g.kw = l->kernel;
    g.sh = one_d ? 1 : l->stride;
    g.sw = l->stride;
    g.ph = one_d ? 0 : l->pad;
    g.pw = l->pad;
    g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
    g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
    g.kdim = g.c * g.kh * g.kw;
    g.n = g.oh * g.ow;
    g.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
    g.unit = g.sh == 1 && g.sw == 1 && !g.direct;
    g.hp = g.h + 2 * g.ph;
    g.wp = g.w + 2 * g.pw;
    g.pad = g.unit && (g.ph > 0 || g.pw > 0) ? (size_t)g.c * g.hp * g.wp : 0;
    g.dw_direct = g.unit && g.c == 1;
    return g;
}

/* Floats of workspace a chunk of `chunk` samples needs: the padded copy of
 * one sample (g->pad), col (kdim, chunk*n) and, for chunks of more than one
 * sample, the scatter/gather buffer (oc, chunk*n). */
static size_t chunk_floats(const conv_geom *g, int chunk)
{
    if (g->direct)
        return 0;
    if (chunk <= 1)
        return g->pad + (size_t)g->kdim * (size_t)g->n;
    return g->pad + (size_t)chunk * (size_t)g->n * ((size_t)g->kdim + (size_t)g->oc);
}

/* The largest chunk (<= batch) whose buffers fit in `floats`; at least 1. */
static int chunk_for(const conv_geom *g, int batch, size_t floats)
{
    size_t per_sample = (size_t)g->n * ((size_t)g->kdim + (size_t)g->oc);
    floats = floats > g->pad ? floats - g->pad : 0;
    size_t chunk = per_sample > 0 ? floats / per_sample : (size_t)batch;
    if (chunk > (size_t)batch)
        chunk = (size_t)batch;
    return chunk < 1 ? 1 : (int)chunk;
}

/* The chunk forward and backward use for a batch: as large as the target
 * allows, smaller only when the caller's workspace is smaller than
 * workspace_floats() asked for (tests do that to exercise the chunking). It
 * never depends on how much larger the shared workspace is, so results are
 * the same whatever batch size the model reserved for. */
static int chunk_used(const conv_geom *g, int batch, size_t workspace_floats)
{
    int chunk = chunk_for(g, batch, CONV_CHUNK_TARGET_FLOATS);
    int fits = chunk_for(g, batch, workspace_floats);
    return g->direct ? 1 : (fits < chunk ? fits : chunk);
}

static size_t conv_workspace(const fedl_layer *l, int batch, int one_d)
{
    conv_geom g = conv_geometry(l, one_d);
    return chunk_floats(&g, chunk_for(&g, batch, CONV_CHUNK_TARGET_FLOATS));
}

/* ------------------------------------------------------------ im2col */

/* Smallest integer >= a / b for b > 0 and any sign of a. */
static int ceil_div(int a, int b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Output columns [lo, hi) whose input column ow*s - p + k lies inside
 * [0, size): the rest of the row reads padding. */
static void valid_range(int k, int s, int p, int size, int out, int *lo, int *hi)
{
    *lo = clamp_int(ceil_div(p - k, s), 0, out);
    *hi = clamp_int(ceil_div(size + p - k, s), *lo, out);
}

/* Short row copies (a few to a few dozen floats) dominate im2col; an
 * inlined loop beats a memcpy call at these lengths. */
static inline void copy_floats(float *restrict dst, const float *restrict src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

/* GCC turns the short row copies below into memmove calls, whose dispatch
 * costs more than the copy at these lengths (24-28 floats for LeNet-5): it
 * was 11% of a training step. Keep them as inline loops. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_LOOP_TO_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LOOP_TO_MEMCPY
#endif

/* col rows (kdim) of one sample, at stride ld between rows:
 * col[(ci*kh + ki)*kw + kj][oh*ow_count + ow] = x[ci][oh*sh - ph + ki][ow*sw - pw + kj]
 * (0 outside the input). x is (c, h, w). */
NO_LOOP_TO_MEMCPY static void im2col(const conv_geom *g, const float *x, float *col, size_t ld)
{
    for (int ci = 0; ci < g->c; ci++) {
        const float *plane = x + (size_t)ci * g->h * g->w; /* (h, w) */
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                float *row = col + ((size_t)(ci * g->kh + ki) * g->kw + kj) * ld; /* (oh, ow) */
                int lo, hi;
                valid_range(kj, g->sw, g->pw, g->w, g->ow, &lo, &hi);
                for (int oh = 0; oh < g->oh; oh++) {
                    int ih = oh * g->sh - g->ph + ki;
                    float *dst = row + (size_t)oh * g->ow;
                    if (ih < 0 || ih >= g->h) {
                        memset(dst, 0, (size_t)g->ow * sizeof(float));
                        continue;
                    }
                    const float *src = plane + (size_t)ih * g->w - g->pw + kj;
                    for (int ow = 0; ow < lo; ow++)
                        dst[ow] = 0.0f;
                    if (g->sw == 1) {
                        copy_floats(dst + lo, src + lo, hi - lo);
                    } else {
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow] = src[(size_t)ow * g->sw];
                    }
                    for (int ow = hi; ow < g->ow; ow++)
                        dst[ow] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of im2col: dx (c, h, w) += the entries of col that read it.
 * Entries that read padding are dropped. */
NO_LOOP_TO_MEMCPY static void col2im_add(const conv_geom *g, const float *col, size_t ld, float *dx)
{
    for (int ci = 0; ci < g->c; ci++) {
        float *plane = dx + (size_t)ci * g->h * g->w; /* (h, w) */
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                const float *row = col + ((size_t)(ci * g->kh + ki) * g->kw + kj) * ld;
                int lo, hi;
                valid_range(kj, g->sw, g->pw, g->w, g->ow, &lo, &hi);
                for (int oh = 0; oh < g->oh; oh++) {
                    int ih = oh * g->sh - g->ph + ki;
                    if (ih < 0 || ih >= g->h)
                        continue;
                    const float *src = row + (size_t)oh * g->ow;
                    float *dst = plane + (size_t)ih * g->w - g->pw + kj;
                    if (g->sw == 1) {
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow] += src[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++)
                            dst[(size_t)ow * g->sw] += src[ow];
                    }
                }
            }
        }
    }
}

/* Stride 1 from the padded copy xp (c, hp, wp): every entry of a col row
 * reads the input, so rows are plain copies, ow floats from each of oh input
 * rows. All but the last copy of a row move whole blocks of 4 floats: the
 * up to 3 extra floats land at the start of the next output row (written
 * next) and are read from inside xp (the next input row exists), which needs
 * ow >= 4. Same col as im2col(). */
NO_LOOP_TO_MEMCPY static void im2col_unit(const conv_geom *g, const float *xp, float *col,
                                          size_t ld)
{
    int ow = g->ow, blocks = g->ow >= 4 ? g->oh - 1 : 0;
    for (int ci = 0; ci < g->c; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                float *row = col + ((size_t)(ci * g->kh + ki) * g->kw + kj) * ld; /* (oh, ow) */
                const float *src = xp + ((size_t)ci * g->hp + ki) * g->wp + kj;
                int oh = 0;
                for (; oh < blocks; oh++) {
                    float *d = row + (size_t)oh * ow;
                    const float *s = src + (size_t)oh * g->wp;
                    for (int j = 0; j < ow; j += 4)
                        memcpy(d + j, s + j, 4 * sizeof(float));
                }
                for (; oh < g->oh; oh++)
                    copy_floats(row + (size_t)oh * ow, src + (size_t)oh * g->wp, ow);
            }
        }
    }
}

/* The adjoint of im2col_unit: dxp (c, hp, wp) += the entries of col. */
static void col2im_unit(const conv_geom *g, const float *col, size_t ld, float *dxp)
{
    int ow = g->ow;
    for (int ci = 0; ci < g->c; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                const float *row = col + ((size_t)(ci * g->kh + ki) * g->kw + kj) * ld;
                float *dst = dxp + ((size_t)ci * g->hp + ki) * g->wp + kj;
                for (int oh = 0; oh < g->oh; oh++) {
                    const float *restrict s = row + (size_t)oh * ow;
                    float *restrict d = dst + (size_t)oh * g->wp;
                    for (int j = 0; j < ow; j++)
                        d[j] += s[j];
                }
            }
        }
    }
}

/* The stride-1 input plane of one sample x (c, h, w): x itself without
 * padding, else its zero-bordered copy (c, hp, wp) written to padbuf. */
NO_LOOP_TO_MEMCPY static const float *padded(const conv_geom *g, const float *x, float *padbuf)
{
    if (g->pad == 0)
        return x;
    memset(padbuf, 0, g->pad * sizeof(float));
    for (int ci = 0; ci < g->c; ci++) {
        for (int ih = 0; ih < g->h; ih++)
            copy_floats(padbuf + ((size_t)ci * g->hp + ih + g->ph) * g->wp + g->pw,
                        x + ((size_t)ci * g->h + ih) * g->w, g->w);
    }
    return padbuf;
}

/* 4 floats as one vector for the direct one-channel kernels below: GNU C
 * vector extensions where available, which need no -march (SSE2 on x86-64,
 * NEON on ARM), else a plain struct the compiler may vectorise. */
#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));
#else
typedef struct v4f {
    float v[4];
} v4f;
#endif

static inline v4f load4(const float *p)
{
    v4f r;
    memcpy(&r, p, sizeof r);
    return r;
}

static inline float lane(v4f a, int i)
{
    float f[4];
    memcpy(f, &a, sizeof f);
    return f[i];
}

/* a + b * c, lane by lane */
static inline v4f madd4(v4f a, v4f b, v4f c)
{
#if defined(__GNUC__)
    return a + b * c;
#else
    for (int i = 0; i < 4; i++)
        a.v[i] += b.v[i] * c.v[i];
    return a;
#endif
}

static inline v4f splat4(float s)
{
    v4f r;
    float f[4] = {s, s, s, s};
    memcpy(&r, f, sizeof r);
    return r;
}

/* dW (oc, kh, kw) += dy . col^T for one sample of a one-channel input at
 * stride 1, read straight from its padded plane xp (hp, wp) instead of col:
 * dW[o][ki][kj] += sum over (oh, ow) of dy[o][oh][ow] * xp[oh+ki][ow+kj].
 * NK (a constant after inlining) kernel columns k0.. at a time, each summed
 * in 4 lanes over blocks of 4 ow and the last ow % 4 in a scalar, for NO
 * (1 or 2) output channels o0.. at once: NO*NK vector accumulators, each
 * input vector loaded once for the NO channels. The order is fixed.
 * dyb is (oc, oh, ow). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void
dw_direct_cols(const conv_geom *g, const float *xp, const float *dyb, float *dw, int o0, int k0,
               const int NO, const int NK)
{
    int ow = g->ow;
    for (int ki = 0; ki < g->kh; ki++) {
        v4f p[2][6];           /* (o, kj) over blocks of 4 ow */
        float q[2][6] = {{0}}; /* (o, kj) over the ow % 4 last ones */
        memset(p, 0, sizeof p);
        for (int oh = 0; oh < g->oh; oh++) {
            const float *dr = dyb + (size_t)o0 * g->n + (size_t)oh * ow; /* (NO, ow) at n */
            const float *xr = xp + (size_t)(oh + ki) * g->wp + k0;
            int j = 0;
            for (; j + 4 <= ow; j += 4) {
                v4f dv[2];
                for (int o = 0; o < NO; o++)
                    dv[o] = load4(dr + (size_t)o * g->n + j);
                for (int k = 0; k < NK; k++) {
                    v4f xv = load4(xr + j + k);
                    for (int o = 0; o < NO; o++)
                        p[o][k] = madd4(p[o][k], dv[o], xv);
                }
            }
            for (; j < ow; j++) {
                for (int o = 0; o < NO; o++) {
                    for (int k = 0; k < NK; k++)
                        q[o][k] += dr[(size_t)o * g->n + j] * xr[j + k];
                }
            }
        }
        for (int o = 0; o < NO; o++) {
            float *dwr = dw + ((size_t)(o0 + o) * g->kh + ki) * g->kw + k0;
            for (int k = 0; k < NK; k++)
                dwr[k] += ((lane(p[o][k], 0) + lane(p[o][k], 1)) +
                           (lane(p[o][k], 2) + lane(p[o][k], 3))) +
                          q[o][k];
        }
    }
}

/* dW for all output channels, two at a time, and kernel columns, up to 6 at
 * a time: at most 12 vector accumulators. */
static void dw_direct(const conv_geom *g, const float *xp, const float *dyb, float *dw)
{
    for (int k0 = 0; k0 < g->kw; k0 += 6) {
        int nk = g->kw - k0 < 6 ? g->kw - k0 : 6;
        for (int o0 = 0; o0 < g->oc; o0 += 2) {
            int no = g->oc - o0 < 2 ? 1 : 2;
#define DW_CASE(NK)                                                                                \
    case NK:                                                                                       \
        if (no == 2)                                                                               \
            dw_direct_cols(g, xp, dyb, dw, o0, k0, 2, NK);                                         \
        else                                                                                       \
            dw_direct_cols(g, xp, dyb, dw, o0, k0, 1, NK);                                         \
        break;
            switch (nk) {
                DW_CASE(1)
                DW_CASE(2)
                DW_CASE(3)
                DW_CASE(4)
                DW_CASE(5)
                DW_CASE(6)
            }
#undef DW_CASE
        }
    }
}

/* Forward of one sample of a one-channel input at stride 1 without col:
 * y[o][oh][ow] = bias[o] + sum over (ki, kj) of w[o][ki][kj] * xp[oh+ki][ow+kj]
 * for NO (a constant after inlining) output channels o0.. at once, in
 * vectors of 4 ow, two at a time (then one, then scalars): 2*NO
 * accumulators, each input vector loaded once per tap for all NO channels.
 * xp is (hp, wp), yb (oc, oh, ow), w (oc, kh*kw), bias (oc) or NULL. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void
fwd_direct_rows(const conv_geom *g, const float *xp, const float *w, const float *bias, float *yb,
                int o0, const int NO)
{
    int ow = g->ow, kk = g->kh * g->kw;
    for (int oh = 0; oh < g->oh; oh++) {
        const float *xr = xp + (size_t)oh * g->wp;
        int j = 0;
        for (; j + 8 <= ow; j += 8) {
            v4f a[6][2];
            for (int o = 0; o < NO; o++)
                a[o][0] = a[o][1] = splat4(bias != NULL ? bias[o0 + o] : 0.0f);
            for (int ki = 0; ki < g->kh; ki++) {
                for (int kj = 0; kj < g->kw; kj++) {
                    const float *s = xr + (size_t)ki * g->wp + j + kj;
                    v4f x0 = load4(s), x1 = load4(s + 4);
                    for (int o = 0; o < NO; o++) {
                        v4f wv = splat4(w[(size_t)(o0 + o) * kk + ki * g->kw + kj]);
                        a[o][0] = madd4(a[o][0], wv, x0);
                        a[o][1] = madd4(a[o][1], wv, x1);
                    }
                }
            }
            for (int o = 0; o < NO; o++) {
                float *d = yb + ((size_t)(o0 + o) * g->oh + oh) * ow + j;
                memcpy(d, &a[o][0], sizeof(v4f));
                memcpy(d + 4, &a[o][1], sizeof(v4f));
            }
        }
        for (; j + 4 <= ow; j += 4) {
            v4f a[6];
            for (int o = 0; o < NO; o++)
                a[o] = splat4(bias != NULL ? bias[o0 + o] : 0.0f);
            for (int ki = 0; ki < g->kh; ki++) {
                for (int kj = 0; kj < g->kw; kj++) {
                    v4f x0 = load4(xr + (size_t)ki * g->wp + j + kj);
                    for (int o = 0; o < NO; o++)
                        a[o] = madd4(a[o], splat4(w[(size_t)(o0 + o) * kk + ki * g->kw + kj]), x0);
                }
            }
            for (int o = 0; o < NO; o++)
                memcpy(yb + ((size_t)(o0 + o) * g->oh + oh) * ow + j, &a[o], sizeof(v4f));
        }
        for (; j < ow; j++) {
            for (int o = 0; o < NO; o++) {
                const float *wo = w + (size_t)(o0 + o) * kk;
                float acc = bias != NULL ? bias[o0 + o] : 0.0f;
                for (int ki = 0; ki < g->kh; ki++) {
                    for (int kj = 0; kj < g->kw; kj++)
                        acc += wo[ki * g->kw + kj] * xr[(size_t)ki * g->wp + j + kj];
                }
                yb[((size_t)(o0 + o) * g->oh + oh) * ow + j] = acc;
            }
        }
    }
}

static void fwd_direct(const conv_geom *g, const float *xp, const float *w, const float *bias,
                       float *yb)
{
    for (int o0 = 0; o0 < g->oc; o0 += 6) {
        switch (g->oc - o0 < 6 ? g->oc - o0 : 6) {
        case 1:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 1);
            break;
        case 2:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 2);
            break;
        case 3:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 3);
            break;
        case 4:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 4);
            break;
        case 5:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 5);
            break;
        default:
            fwd_direct_rows(g, xp, w, bias, yb, o0, 6);
            break;
        }
    }
}

/* col rows of one sample x (c, h, w) at stride ld; padbuf (g->pad floats)
 * holds the zero-padded copy for the stride-1 path. */
NO_LOOP_TO_MEMCPY static void im2col_sample(const conv_geom *g, const float *x, float *col,
                                            size_t ld, float *padbuf)
{
    if (!g->unit) {
        im2col(g, x, col, ld);
        return;
    }
    im2col_unit(g, padded(g, x, padbuf), col, ld);
}

/* dx (c, h, w) = the sum of the entries of col that read it (OVERWRITES). */
NO_LOOP_TO_MEMCPY static void col2im_sample(const conv_geom *g, const float *col, size_t ld,
                                            float *dx, float *padbuf)
{
    if (!g->unit || g->pad == 0) {
        memset(dx, 0, (size_t)g->c * g->h * g->w * sizeof(float));
        if (g->unit)
            col2im_unit(g, col, ld, dx);
        else
            col2im_add(g, col, ld, dx);
        return;
    }
    memset(padbuf, 0, g->pad * sizeof(float));
    col2im_unit(g, col, ld, padbuf);
    for (int ci = 0; ci < g->c; ci++) {
        for (int ih = 0; ih < g->h; ih++)
            copy_floats(dx + ((size_t)ci * g->h + ih) * g->w,
                        padbuf + ((size_t)ci * g->hp + ih + g->ph) * g->wp + g->pw, g->w);
    }
}

/* ------------------------------------------------------------ setup */

/* Largest size (elements) setup accepts for any matrix dimension. */
#define SIZE_CAP ((int64_t)INT_MAX / 4)

/* a * b for a, b >= 0, or SIZE_CAP + 1 when the product would exceed it. */
static int64_t mul_capped(int64_t a, int64_t b)
{
    if (a > 0 && b > SIZE_CAP / a)
        return SIZE_CAP + 1;
    return a * b;
}

static const char *kind_name(int one_d)
{
    return one_d ? "conv1d" : "conv2d";
}

/* "conv2d(16,5)" or "conv2d(16,5,stride=2,pad=1)" for error messages. */
static void conv_label(const fedl_layer *l, int one_d, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s(%d,%d", kind_name(one_d), (int)l->units, (int)l->kernel);
    if (n > 0 && (size_t)n < size && l->stride != 1)
        n += snprintf(buf + n, size - (size_t)n, ",stride=%d", (int)l->stride);
    if (n > 0 && (size_t)n < size && l->pad != 0)
        n += snprintf(buf + n, size - (size_t)n, ",pad=%d", (int)l->pad);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ")");
}

static fedl_status conv_setup(fedl_layer *l, fedl_error *err, int one_d)
{
    char label[96];
    int64_t h = l->in.h, w = l->in.w, c = l->in.c, k = l->kernel;
    int64_t kh = one_d ? 1 : k, sh = one_d ? 1 : l->stride, ph = one_d ? 0 : l->pad;
    int64_t oh, ow, kdim, n, weights;

    conv_label(l, one_d, label, sizeof label);
    if (l->units <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: out channels must be positive (got %d)",
                              label, (int)l->units);
    if (l->kernel <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: kernel size must be positive (got %d)",
                              label, (int)l->kernel);
    if (l->stride <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: stride must be positive (got %d)", label,
                              (int)l->stride);
    if (l->pad < 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: padding must not be negative (got %d)",
                              label, (int)l->pad);
    if (c <= 0 || h <= 0 || w <= 0)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: empty input %dx%dx%d", label, (int)c, (int)h,
                              (int)w);
    if (one_d && h != 1)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: input must be a series (channels, 1, length), got %dx%dx%d; "
                              "use conv2d for images",
                              label, (int)c, (int)h, (int)w);
    if (one_d && w + 2 * (int64_t)l->pad < k)
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: kernel %d larger than padded input length %lld", label, (int)k,
                              (long long)(w + 2 * (int64_t)l->pad));
    if (!one_d && (h + 2 * ph < kh || w + 2 * (int64_t)l->pad < k))
        return fedl_error_set(err, FEDL_ERR_SPEC,
                              "%s: kernel %d larger than padded input %lldx%lld", label, (int)k,
                              (long long)(h + 2 * ph), (long long)(w + 2 * (int64_t)l->pad));

    /* GEMM dimensions are int: keep every size a chunk can reach well
     * inside, checking each product before it could overflow. */
    if (h + 2 * ph > SIZE_CAP || w + 2 * (int64_t)l->pad > SIZE_CAP)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: padded input %lldx%lld too large", label,
                              (long long)(h + 2 * ph), (long long)(w + 2 * (int64_t)l->pad));
    oh = (h + 2 * ph - kh) / sh + 1;
    ow = (w + 2 * (int64_t)l->pad - k) / l->stride + 1;
    kdim = mul_capped(c, mul_capped(kh, k));
    n = mul_capped(oh, ow);
    weights = mul_capped(l->units, kdim);
    if (kdim > SIZE_CAP || n > SIZE_CAP || mul_capped(l->units, n) > SIZE_CAP ||
        mul_capped(kdim, n) > SIZE_CAP || weights > SIZE_CAP ||
        mul_capped(c, mul_capped(h, w)) > SIZE_CAP)
        return fedl_error_set(err, FEDL_ERR_SPEC, "%s: layer too large (%lldx%lld output)", label,
                              (long long)oh, (long long)ow);

    l->in_size = (size_t)(c * h * w);
    l->out = (fedl_shape){l->units, (int32_t)oh, (int32_t)ow};
    l->out_size = (size_t)l->units * (size_t)n;
    l->param_count = (size_t)weights + (l->bias ? (size_t)l->units : 0);
    /* forward keeps its columns for backward: (kdim, n) per sample, except
     * for the 1x1 fast path (x is col) and one input channel at stride 1
     * (dw_direct reads x) */
    {
        int direct = kh == 1 && k == 1 && sh == 1 && l->stride == 1 && ph == 0 && l->pad == 0;
        int dw_direct = !direct && sh == 1 && l->stride == 1 && c == 1; /* no col needed */
        l->aux_size = direct || dw_direct ? 0 : (size_t)kdim * (size_t)n;
    }
    return FEDL_OK;
}

/* ------------------------------------------------------------ init */

static void conv_init(const fedl_layer *l, float *w, fedl_rng *rng, fedl_init_kind kind, int one_d)
{
    size_t k = (size_t)l->kernel * (size_t)(one_d ? 1 : l->kernel); /* kh * kw */
    size_t fan_in = (size_t)l->in.c * k, fan_out = (size_t)l->units * k;
    size_t weights = (size_t)l->units * fan_in; /* (out, in_c, kh, kw) */
    if (kind == FEDL_INIT_DEFAULT)
        kind = l->init;
    if (kind == FEDL_INIT_DEFAULT)
        kind = l->followed_by_relu ? FEDL_INIT_HE_UNIFORM : FEDL_INIT_GLOROT_UNIFORM;
    fedl_init_uniform(w, weights, fedl_init_bound(kind, fan_in, fan_out), rng);
    if (l->bias)
        memset(w + weights, 0, (size_t)l->units * sizeof(float)); /* (out) */
}

/* ------------------------------------------------------------ forward */

static void conv_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                         const float *x, float *y, float *cols, int one_d)
{
    conv_geom g = conv_geometry(l, one_d);
    const float *bias = l->bias ? w + (size_t)g.oc * g.kdim : NULL; /* (oc) */
    size_t in_size = l->in_size, out_size = l->out_size, n = (size_t)g.n;
    int batch = ctx->batch;
    int chunk = chunk_used(&g, batch, ctx->workspace_floats);
    float *padbuf = ctx->workspace;     /* (c, hp, wp) when g.pad > 0 */
    float *ws = ctx->workspace + g.pad; /* the chunk's buffers */

    if (g.dw_direct) {
        for (int b = 0; b < batch; b++)
            fwd_direct(&g, padded(&g, x + (size_t)b * in_size, padbuf), w, bias,
                       y + (size_t)b * out_size);
        return;
    }
    for (int b0 = 0; b0 < batch; b0 += chunk) {
        int cb = batch - b0 < chunk ? batch - b0 : chunk;
        if (cb == 1) {
            const float *xb = x + (size_t)b0 * in_size; /* (c, h, w) */
            float *yb = y + (size_t)b0 * out_size;      /* (oc, n) */
            const float *col = xb;                      /* (kdim, n) */
            if (!g.direct) {
                float *colw = cols != NULL ? cols + (size_t)b0 * g.kdim * n : ws;
                im2col_sample(&g, xb, colw, n, padbuf);
                col = colw;
            }
            if (bias != NULL) {
                for (int o = 0; o < g.oc; o++) {
                    float *row = yb + (size_t)o * n;
                    for (size_t j = 0; j < n; j++)
                        row[j] = bias[o];
                }
            }
            /* y_b (oc, n) = W (oc, kdim) . col (kdim, n) [+ bias] */
            fedl_sgemm(0, 0, g.oc, g.n, g.kdim, 1.0f, w, g.kdim, col, g.n,
                       bias != NULL ? 1.0f : 0.0f, yb, g.n);
            continue;
        }
        size_t ld = (size_t)cb * n;
        /* (kdim, cb*n): kept in aux for backward when the model provides it */
        float *col = cols != NULL ? cols + (size_t)b0 * g.kdim * n : ws;
        float *out = ws + (size_t)g.kdim * ld; /* (oc, cb*n) */
        for (int b = 0; b < cb; b++)
            im2col_sample(&g, x + (size_t)(b0 + b) * in_size, col + (size_t)b * n, ld, padbuf);
        fedl_sgemm(0, 0, g.oc, (int)ld, g.kdim, 1.0f, w, g.kdim, col, (int)ld, 0.0f, out, (int)ld);
        /* scatter (oc, cb, n) -> y (cb, oc, n), adding the bias */
        for (int b = 0; b < cb; b++) {
            float *yb = y + (size_t)(b0 + b) * out_size; /* (oc, n) */
            for (int o = 0; o < g.oc; o++) {
                const float *src = out + (size_t)o * ld + (size_t)b * n;
                float *dst = yb + (size_t)o * n;
                float bo = bias != NULL ? bias[o] : 0.0f;
                for (size_t j = 0; j < n; j++)
                    dst[j] = src[j] + bo;
            }
        }
    }
}

/* ------------------------------------------------------------ backward */

/* Sum of n floats in eight interleaved partial sums, so the loop vectorises;
 * the order is fixed, so the result is the same on every run. */
static float sum_floats(const float *v, size_t n)
{
    float part[8] = {0};
    float total = 0.0f;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; k++)
            part[k] += v[j + (size_t)k];
    }
    for (; j < n; j++)
        part[j % 8] += v[j];
    for (int k = 0; k < 8; k++)
        total += part[k];
    return total;
}

static void conv_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                          const float *x, const float *cols, const float *dy, float *dx, float *dw,
                          int one_d)
{
    conv_geom g = conv_geometry(l, one_d);
    float *dbias = l->bias ? dw + (size_t)g.oc * g.kdim : NULL; /* (oc) */
    size_t in_size = l->in_size, out_size = l->out_size, n = (size_t)g.n;
    int batch = ctx->batch;
    int chunk = chunk_used(&g, batch, ctx->workspace_floats);
    float *padbuf = ctx->workspace;     /* (c, hp, wp) when g.pad > 0 */
    float *ws = ctx->workspace + g.pad; /* the chunk's buffers */

    if (!ctx->accumulate) /* overwrite: the weights of a conv are few, clear them */
        memset(dw, 0, l->param_count * sizeof(float));
    if (dbias != NULL) {
        for (int b = 0; b < batch; b++) {
            const float *dyb = dy + (size_t)b * out_size; /* (oc, n) */
            for (int o = 0; o < g.oc; o++)
                dbias[o] += sum_floats(dyb + (size_t)o * n, n);
        }
    }
    if (g.dw_direct) {
        for (int b = 0; b < batch; b++)
            dw_direct(&g, padded(&g, x + (size_t)b * in_size, padbuf), dy + (size_t)b * out_size,
                      dw);
        if (dx == NULL)
            return;
    }

    for (int b0 = 0; b0 < batch; b0 += chunk) {
        int cb = batch - b0 < chunk ? batch - b0 : chunk;
        size_t ld = (size_t)cb * n;
        const float *dyc; /* (oc, cb*n) */
        const float *col; /* (kdim, cb*n) */
        float *dcol = ws; /* (kdim, cb*n), reuses col */

        if (g.direct) {
            col = x + (size_t)b0 * in_size;
            dyc = dy + (size_t)b0 * out_size;
        } else if (cb == 1) {
            if (cols != NULL) {
                col = cols + (size_t)b0 * g.kdim * n; /* kept by forward */
            } else if (g.dw_direct) {
                col = NULL; /* dW done above */
            } else {
                im2col_sample(&g, x + (size_t)b0 * in_size, ws, n, padbuf);
                col = ws;
            }
            dyc = dy + (size_t)b0 * out_size;
        } else {
            float *colw = ws;
            float *gather = colw + (size_t)g.kdim * ld; /* (oc, cb*n) */
            for (int b = 0; b < cb; b++) {
                const float *dyb = dy + (size_t)(b0 + b) * out_size; /* (oc, n) */
                if (cols == NULL && !g.dw_direct)
                    im2col_sample(&g, x + (size_t)(b0 + b) * in_size, colw + (size_t)b * n, ld,
                                  padbuf);
                for (int o = 0; o < g.oc; o++)
                    memcpy(gather + (size_t)o * ld + (size_t)b * n, dyb + (size_t)o * n,
                           n * sizeof(float));
            }
            col = cols != NULL ? cols + (size_t)b0 * g.kdim * n : colw;
            dyc = gather;
        }

        /* dW (oc, kdim) += dy (oc, cb*n) . col^T (cb*n, kdim) */
        if (!g.dw_direct)
            fedl_sgemm(0, 1, g.oc, g.kdim, (int)ld, 1.0f, dyc, (int)ld, col, (int)ld, 1.0f, dw,
                       g.kdim);
        if (dx == NULL)
            continue;

        if (g.direct) {
            /* dx_b (c, n) = W^T (c, oc) . dy_b (oc, n) */
            fedl_sgemm(1, 0, g.kdim, g.n, g.oc, 1.0f, w, g.kdim, dyc, g.n, 0.0f,
                       dx + (size_t)b0 * in_size, g.n);
            continue;
        }
        /* dcol (kdim, cb*n) = W^T (kdim, oc) . dy (oc, cb*n), then fold back */
        fedl_sgemm(1, 0, g.kdim, (int)ld, g.oc, 1.0f, w, g.kdim, dyc, (int)ld, 0.0f, dcol, (int)ld);
        for (int b = 0; b < cb; b++) {
            float *dxb = dx + (size_t)(b0 + b) * in_size; /* (c, h, w) */
            col2im_sample(&g, dcol + (size_t)b * n, ld, dxb, padbuf);
        }
    }
}

static void conv_flops(const fedl_layer *l, double *forward, double *backward, int one_d)
{
    conv_geom g = conv_geometry(l, one_d);
    double macs = (double)l->out_size * (double)g.kdim;
    double bias = l->bias ? (double)l->out_size : 0.0;
    *forward = 2.0 * macs + bias;
    *backward = 4.0 * macs + bias; /* dW and dx */
}

/* ------------------------------------------------------------ conv2d */

static fedl_status conv2d_setup(fedl_layer *l, fedl_error *err)
{
    return conv_setup(l, err, 0);
}

static size_t conv2d_workspace(const fedl_layer *l, int batch)
{
    return conv_workspace(l, batch, 0);
}

static void conv2d_init(const fedl_layer *l, float *w, fedl_rng *rng, fedl_init_kind kind)
{
    conv_init(l, w, rng, kind, 0);
}

static void conv2d_flops(const fedl_layer *l, double *forward, double *backward)
{
    conv_flops(l, forward, backward, 0);
}

static void conv2d_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                           const float *x, float *y, void *aux)
{
    conv_forward(l, ctx, w, x, y, l->aux_size > 0 ? aux : NULL, 0);
}

static void conv2d_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, const float *y, const void *aux, const float *dy,
                            float *dx, float *dw)
{
    (void)y;
    conv_backward(l, ctx, w, x, l->aux_size > 0 ? aux : NULL, dy, dx, dw, 0);
}

const fedl_layer_ops fedl_layer_conv2d_ops = {FEDL_LAYER_CONV2D, "conv2d",    conv2d_setup,
                                              conv2d_workspace,  conv2d_init, conv2d_forward,
                                              conv2d_backward,   conv2d_flops};

/* ------------------------------------------------------------ conv1d */

static fedl_status conv1d_setup(fedl_layer *l, fedl_error *err)
{
    return conv_setup(l, err, 1);
}

static size_t conv1d_workspace(const fedl_layer *l, int batch)
{
    return conv_workspace(l, batch, 1);
}

static void conv1d_init(const fedl_layer *l, float *w, fedl_rng *rng, fedl_init_kind kind)
{
    conv_init(l, w, rng, kind, 1);
}

static void conv1d_flops(const fedl_layer *l, double *forward, double *backward)
{
    conv_flops(l, forward, backward, 1);
}

static void conv1d_forward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                           const float *x, float *y, void *aux)
{
    conv_forward(l, ctx, w, x, y, l->aux_size > 0 ? aux : NULL, 1);
}

static void conv1d_backward(const fedl_layer *l, const fedl_layer_ctx *ctx, const float *w,
                            const float *x, const float *y, const void *aux, const float *dy,
                            float *dx, float *dw)
{
    (void)y;
    conv_backward(l, ctx, w, x, l->aux_size > 0 ? aux : NULL, dy, dx, dw, 1);
}

const fedl_layer_ops fedl_layer_conv1d_ops = {FEDL_LAYER_CONV1D, "conv1d",    conv1d_setup,
                                              conv1d_workspace,  conv1d_init, conv1d_forward,
                                              conv1d_backward,   conv1d_flops};
