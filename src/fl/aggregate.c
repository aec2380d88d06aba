/*
 * aggregate.c - the aggregator of fedl/fl.h: it takes a round's client
 * updates (validated, clipped), folds or keeps them, and at the end moves
 * the global weights by the strategy's step (FedAvg, FedProx, FedAvgM,
 * FedAdagrad, FedAdam, FedYogi, median, trimmed mean, Krum, Multi-Krum).
 * The configuration, its defaults and its check are in strategy.c.
 *
 * Memory, all taken at create (reserve, then run): nothing is allocated
 * per round or per update.
 *   sum    (params) doubles. Linear strategies: the running sum of
 *          samples * delta, folded as each update arrives, so a round holds
 *          O(model) whatever the number of clients. Robust ones: their
 *          combined delta, written at finish.
 *   state  (state_floats) floats: fedavgm's v; adaptive ones' m then v.
 *   pool   (max_updates, params) floats, robust strategies only: the
 *          round's deltas after clipping. Allocated once at create for the
 *          worst case and never grown: a round cannot run out of memory
 *          half-way, and the accounted allocator (and its limit) sees the
 *          full cost up front. It is taken with fedl_mem_realloc, which does
 *          not zero it (a slot is always written before it is read), so the
 *          system makes its pages resident only as updates fill them: RSS
 *          follows the updates received, up to max_updates x params x 4
 *          bytes (100 x 1M params: 400 MB).
 *   work   robust strategies' scratch. Median and trimmed mean: a block of
 *          coordinates transposed, (COORD_BLOCK, max_updates) floats. Krum:
 *          the pairwise squared distances (max_updates, max_updates) and the
 *          scores (max_updates) doubles, one row's neighbours and the
 *          ranking (max_updates) ints.
 *
 * Arithmetic is in double, in a fixed order (updates in arrival order,
 * coordinates in index order, fixed-width partial sums), so the same updates
 * in the same order give the same bits; the server state is kept in floats,
 * so fedl_aggregator_state / restore continue a run bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fedl/fl.h"
#include "fl/strategy_kind.h"

#define BUFFER_ALIGNMENT 64
#define COORD_BLOCK 64      /* coordinates per transposed block (median, trimmed mean) */
#define DISTANCE_BLOCK 2048 /* coordinates per pass of Krum's distances (8 KiB per update) */
#define PARTIALS 8          /* partial sums of squared_distance */
#define MAX_SAMPLES 0x1p64  /* an update's samples: above any 64-bit count is nonsense */

struct fedl_aggregator {
    fedl_strategy_config config;
    fedl_allocator *alloc;
    size_t params;  /* floats per delta and in global */
    int robust;     /* keeps the deltas (median, trimmed mean, krum, multi-krum) */
    int open;       /* 1 while the round takes updates: from create or begin until finish */
    int count;      /* updates accepted this round */
    double samples; /* their summed samples */
    double *sum;    /* (params) linear: sum of samples * delta; robust: combined delta */
    float *state;   /* (state_floats) fedavgm: v; adaptive: m (params) then v (params) */
    size_t state_floats;
    uint64_t rounds; /* rounds finished */
    float *pool;     /* (max_updates, params) robust: the round's deltas, clipped */
    void *work;      /* robust scratch, laid out as the header comment says */
};

/* Zeros for the norm of one update through squared_distance. */
static const float zero_block[DISTANCE_BLOCK];

static const char *client_name(const char *client_id)
{
    return client_id != NULL ? client_id : "(no id)";
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ------------------------------------------------------------ hot loops */

/* Nonzero when some value is a NaN or an infinity (exponent bits all
 * ones). Adding 1 to the exponent field carries into the sign bit only for
 * those: an and/add/or stream that gcc -O3 vectorises. */
static int any_non_finite(const float *restrict x, size_t n)
{
    uint32_t found = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        found |= (bits & 0x7f800000u) + 0x00800000u;
    }
    return (found & 0x80000000u) != 0;
}

/* Index of the first NaN or infinity in x (n floats), n when none. */
static size_t first_non_finite(const float *x, size_t n)
{
    if (!any_non_finite(x, n))
        return n;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

static const char *non_finite_name(float x)
{
    return isnan(x) ? "NaN" : x > 0.0f ? "+Inf" : "-Inf";
}

/* sum += weight * delta over n values: the FedAvg fold. One streaming pass
 * with no reduction and no aliasing, which gcc -O3 vectorises (float to
 * double conversion, multiply, add). */
static void fold_weighted(double *restrict sum, const float *restrict delta, double weight,
                          size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += weight * (double)delta[i];
}

/* |a - b|^2 over n floats, in double, in PARTIALS interleaved partial sums
 * combined in a fixed tree: deterministic, and the partial sums vectorise. */
static double squared_distance(const float *restrict a, const float *restrict b, size_t n)
{
    double part[PARTIALS] = {0};
    size_t i = 0;
    for (; i + PARTIALS <= n; i += PARTIALS) {
        for (int k = 0; k < PARTIALS; k++) {
            double d = (double)a[i + k] - (double)b[i + k];
            part[k] += d * d;
        }
    }
    for (; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        part[0] += d * d;
    }
    return ((part[0] + part[1]) + (part[2] + part[3])) +
           ((part[4] + part[5]) + (part[6] + part[7]));
}

/* |x|^2 over n floats, DISTANCE_BLOCK at a time. */
static double squared_norm(const float *x, size_t n)
{
    double total = 0.0;
    for (size_t j = 0; j < n; j += DISTANCE_BLOCK)
        total += squared_distance(x + j, zero_block, min_size(DISTANCE_BLOCK, n - j));
    return total;
}

/* ------------------------------------------------------- create, destroy */

static size_t state_floats_of(fedl_strategy_kind kind, size_t params)
{
    if (kind == FEDL_STRATEGY_FEDAVGM)
        return params;
    return fedl_strategy_is_adaptive(kind) ? 2 * params : 0;
}

/* Bytes of the robust scratch for up to cap (<= FEDL_STRATEGY_MAX_UPDATES)
 * updates. */
static size_t work_bytes_of(fedl_strategy_kind kind, size_t cap)
{
    if (fedl_strategy_is_krum(kind))
        return (cap * cap + cap) * sizeof(double) + 2 * cap * sizeof(int);
    return COORD_BLOCK * cap * sizeof(float);
}

/* count * size bytes, 64-byte aligned and zeroed; NULL when it does not
 * fit in a size_t or the allocator refuses. */
static void *take(fedl_aggregator *g, size_t count, size_t size)
{
    if (count > SIZE_MAX / size)
        return NULL;
    return fedl_mem_alloc_aligned(g->alloc, count * size, BUFFER_ALIGNMENT);
}

static fedl_status no_memory(const fedl_aggregator *g, const char *what, size_t count, size_t size,
                             fedl_error *err)
{
    return fedl_error_set(err, FEDL_ERR_NOMEM,
                          "aggregator %s over %zu parameters: cannot allocate %s (%zu x %zu bytes)",
                          fedl_strategy_name(g->config.kind), g->params, what, count, size);
}

/* Bytes of the pool: max_updates x params floats (checked to fit at create). */
static size_t pool_bytes(const fedl_aggregator *g)
{
    return (size_t)g->config.max_updates * g->params * sizeof(float);
}

static fedl_status reserve_buffers(fedl_aggregator *g, fedl_error *err)
{
    size_t cap = (size_t)g->config.max_updates;
    g->sum = take(g, g->params, sizeof(double));
    if (g->sum == NULL)
        return no_memory(g, "the round's sum", g->params, sizeof(double), err);
    if (g->state_floats > 0) {
        g->state = take(g, g->state_floats, sizeof(float));
        if (g->state == NULL)
            return no_memory(g, "the server optimiser state", g->state_floats, sizeof(float), err);
    }
    if (!g->robust)
        return FEDL_OK;
    if (cap > SIZE_MAX / sizeof(float) / g->params ||
        (g->pool = fedl_mem_realloc(g->alloc, NULL, 0, pool_bytes(g))) == NULL)
        return no_memory(g, "the pool of kept updates", cap, g->params * sizeof(float), err);
    g->work = take(g, work_bytes_of(g->config.kind, cap), 1);
    if (g->work == NULL)
        return no_memory(g, "the robust scratch", work_bytes_of(g->config.kind, cap), 1, err);
    return FEDL_OK;
}

fedl_status fedl_aggregator_create(const fedl_strategy_config *c, size_t params,
                                   fedl_allocator *alloc, fedl_aggregator **out, fedl_error *err)
{
    fedl_aggregator *g;
    fedl_status st;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "aggregator: no output");
    *out = NULL;
    st = fedl_strategy_check(c, err);
    if (st != FEDL_OK)
        return st;
    if (params == 0 || params > SIZE_MAX / 2)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "aggregator %s: %zu parameters",
                              fedl_strategy_name(c->kind), params);
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    g = fedl_mem_alloc(alloc, sizeof *g);
    if (g == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "aggregator %s: cannot allocate",
                              fedl_strategy_name(c->kind));
    memset(g, 0, sizeof *g);
    g->config = *c;
    g->alloc = alloc;
    g->params = params;
    g->robust = fedl_strategy_is_robust(c->kind);
    g->open = 1;
    g->state_floats = state_floats_of(c->kind, params);
    st = reserve_buffers(g, err);
    if (st != FEDL_OK) {
        fedl_aggregator_destroy(g);
        return st;
    }
    *out = g;
    return FEDL_OK;
}

void fedl_aggregator_destroy(fedl_aggregator *g)
{
    if (g == NULL)
        return;
    fedl_mem_free_aligned(g->alloc, g->work);
    fedl_mem_free(g->alloc, g->pool, g->pool != NULL ? pool_bytes(g) : 0);
    fedl_mem_free_aligned(g->alloc, g->state);
    fedl_mem_free_aligned(g->alloc, g->sum);
    fedl_mem_free(g->alloc, g, sizeof *g);
}

/* ------------------------------------------------------- round, updates */

void fedl_aggregator_begin(fedl_aggregator *g)
{
    if (g == NULL)
        return;
    if (!g->robust)
        memset(g->sum, 0, g->params * sizeof(double));
    g->count = 0;
    g->samples = 0.0;
    g->open = 1;
}

/* Everything about an update but its values: the round, the size, the
 * weight, and room in the pool. */
static fedl_status check_update_frame(const fedl_aggregator *g, const char *id, const void *delta,
                                      size_t params, double samples, fedl_error *err)
{
    if (!g->open)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "client '%.128s': the round is finished (fedl_aggregator_begin "
                              "starts the next)",
                              id);
    if (delta == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "client '%.128s': no delta", id);
    if (params != g->params)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "client '%.128s': an update of %zu parameters, the model has %zu", id,
                              params, g->params);
    if (!(samples > 0.0 && samples <= MAX_SAMPLES))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "client '%.128s': samples %g (the update's weight) is outside "
                              "(0, 2^64]",
                              id, samples);
    if (g->robust && g->count >= g->config.max_updates)
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "client '%.128s': strategy %s already holds max_updates = %d updates "
                              "this round",
                              id, fedl_strategy_name(g->config.kind), g->config.max_updates);
    return FEDL_OK;
}

/* The factor that brings delta's L2 norm down to clip_norm: 1 when
 * clipping is off or the norm is within it. */
static double clip_scale(const fedl_aggregator *g, const float *delta)
{
    double limit = (double)g->config.clip_norm, norm;
    if (limit <= 0.0)
        return 1.0;
    norm = sqrt(squared_norm(delta, g->params));
    return norm > limit ? limit / norm : 1.0;
}

/* Copy delta, scaled, into the next slot of the pool. */
static void keep_update(fedl_aggregator *g, const float *delta, double scale)
{
    float *slot = g->pool + (size_t)g->count * g->params; /* (params) */
    if (scale == 1.0) {
        memcpy(slot, delta, g->params * sizeof(float));
        return;
    }
    for (size_t i = 0; i < g->params; i++)
        slot[i] = (float)((double)delta[i] * scale);
}

/* sum += weight * (w - base), the difference taken in double. */
static void fold_weighted_difference(double *restrict sum, const float *restrict w,
                                     const float *restrict base, double weight, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += weight * ((double)w[i] - (double)base[i]);
}

/* The factor that brings |w - base| down to clip_norm (1: within it). */
static double clip_scale_difference(const fedl_aggregator *g, const float *w, const float *base)
{
    double limit = (double)g->config.clip_norm, total = 0.0, norm;
    if (limit <= 0.0)
        return 1.0;
    for (size_t j = 0; j < g->params; j += DISTANCE_BLOCK)
        total += squared_distance(w + j, base + j, min_size(DISTANCE_BLOCK, g->params - j));
    norm = sqrt(total);
    return norm > limit ? limit / norm : 1.0;
}

fedl_status fedl_aggregator_add_weights(fedl_aggregator *g, const char *client_id,
                                        const float *weights, const float *base, size_t params,
                                        double samples, fedl_error *err)
{
    const char *id = client_name(client_id);
    fedl_status st;
    size_t bad;
    double scale;
    if (g == NULL || base == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "client '%.128s': no aggregator or base",
                              id);
    st = check_update_frame(g, id, weights, params, samples, err);
    if (st != FEDL_OK)
        return st;
    bad = first_non_finite(weights, params);
    if (bad < params)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "client '%.128s': weights[%zu] is %s; update refused", id, bad,
                              non_finite_name(weights[bad]));
    scale = clip_scale_difference(g, weights, base);
    if (g->robust) {
        float *slot = g->pool + (size_t)g->count * g->params; /* (params) */
        for (size_t i = 0; i < params; i++)
            slot[i] = (float)(((double)weights[i] - (double)base[i]) * scale);
    } else {
        fold_weighted_difference(g->sum, weights, base, samples * scale, params);
    }
    g->count++;
    g->samples += samples;
    return FEDL_OK;
}

fedl_status fedl_aggregator_add(fedl_aggregator *g, const char *client_id, const float *delta,
                                size_t params, double samples, fedl_error *err)
{
    const char *id = client_name(client_id);
    fedl_status st;
    size_t bad;
    double scale;
    if (g == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "client '%.128s': no aggregator", id);
    st = check_update_frame(g, id, delta, params, samples, err);
    if (st != FEDL_OK)
        return st;
    bad = first_non_finite(delta, params);
    if (bad < params)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "client '%.128s': delta[%zu] is %s; update refused", id, bad,
                              non_finite_name(delta[bad]));
    scale = clip_scale(g, delta);
    if (g->robust)
        keep_update(g, delta, scale);
    else
        fold_weighted(g->sum, delta, samples * scale, params);
    g->count++;
    g->samples += samples;
    return FEDL_OK;
}

int fedl_strategy_is_linear(fedl_strategy_kind kind)
{
    return kind == FEDL_STRATEGY_FEDAVG || kind == FEDL_STRATEGY_FEDPROX ||
           kind == FEDL_STRATEGY_FEDAVGM || kind == FEDL_STRATEGY_FEDADAGRAD ||
           kind == FEDL_STRATEGY_FEDADAM || kind == FEDL_STRATEGY_FEDYOGI;
}

const double *fedl_aggregator_sum(const fedl_aggregator *g)
{
    return g != NULL && !g->robust ? g->sum : NULL;
}

/* The first index of sum that is not finite, or n. */
static size_t first_non_finite_double(const double *sum, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(sum[i]))
            return i;
    return n;
}

fedl_status fedl_aggregator_add_partial(fedl_aggregator *g, const char *from, const double *sum,
                                        size_t params, double samples, int count, fedl_error *err)
{
    const char *id = client_name(from);
    fedl_status st;
    size_t bad;
    if (g == NULL || sum == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "partial of '%.128s': no aggregator or sum", id);
    if (g->robust)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "partial of '%.128s': strategy %s must see every update; partial "
                              "sums serve linear strategies only",
                              id, fedl_strategy_name(g->config.kind));
    st = check_update_frame(g, id, sum, params, samples, err);
    if (st != FEDL_OK)
        return st;
    if (count < 1)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "partial of '%.128s': %d updates", id,
                              count);
    bad = first_non_finite_double(sum, params);
    if (bad < params)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "partial of '%.128s': sum[%zu] is not finite; partial refused", id,
                              bad);
    for (size_t i = 0; i < params; i++)
        g->sum[i] += sum[i];
    g->count += count;
    g->samples += samples;
    return FEDL_OK;
}

int fedl_aggregator_count(const fedl_aggregator *g)
{
    return g != NULL ? g->count : 0;
}

double fedl_aggregator_samples(const fedl_aggregator *g)
{
    return g != NULL ? g->samples : 0.0;
}

/* --------------------------------------------- median and trimmed mean */

/* Move the values of a[lo..hi) below pivot (or_equal: not above it) to
 * the front, keeping nothing else in order; returns where they end. The
 * swap is unconditional and the count a comparison result, so the loop has
 * no data-dependent branch: random deltas would mispredict half of them. */
static int partition_below(float *a, int lo, int hi, float pivot, int or_equal)
{
    int end = lo;
    for (int i = lo; i < hi; i++) {
        float v = a[i];
        int below = or_equal ? v <= pivot : v < pivot;
        a[i] = a[end];
        a[end] = v;
        end += below;
    }
    return end;
}

static float median_of_three(float x, float y, float z)
{
    return x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
}

/* Rearrange a (n values) so that a[k] is the k-th smallest (0-based),
 * nothing before it larger and nothing after it smaller; returns a[k].
 * Quickselect with a median-of-three pivot and a three-way split (below,
 * equal, above), so equal values (all-zero coordinates) end it at once.
 * Deterministic; the values are finite. */
static float select_kth(float *a, int n, int k)
{
    int lo = 0, hi = n; /* a[k] lies in a[lo..hi) */
    while (hi - lo > 1) {
        float pivot = median_of_three(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
        int below = partition_below(a, lo, hi, pivot, 0), not_above;
        if (k < below) {
            hi = below;
            continue;
        }
        not_above = partition_below(a, below, hi, pivot, 1);
        if (k < not_above)
            return pivot; /* a[below..not_above) all equal the pivot */
        lo = not_above;
    }
    return a[k];
}

/* The median of n values (the mean of the middle two for even n). */
static double median_of(float *values, int n, int trim)
{
    int k = n / 2;
    float upper, lower;
    (void)trim;
    upper = select_kth(values, n, k);
    if (n % 2 == 1)
        return (double)upper;
    lower = values[0]; /* the largest of values[0..k), all <= upper */
    for (int i = 1; i < k; i++)
        lower = values[i] > lower ? values[i] : lower;
    return ((double)lower + (double)upper) * 0.5;
}

/* The mean of n values without the trim smallest and trim largest. */
static double trimmed_mean_of(float *values, int n, int trim)
{
    int kept = n - 2 * trim;
    double total = 0.0;
    if (trim > 0) {
        select_kth(values, n, trim);
        select_kth(values + trim, n - trim, kept - 1);
    }
    for (int i = trim; i < trim + kept; i++)
        total += (double)values[i];
    return total / (double)kept;
}

typedef double (*coordinate_reducer)(float *values, int n, int trim);

/* sum[j] = reduce(the n deltas' values at j), a block of COORD_BLOCK
 * coordinates at a time: the block is transposed into the scratch so that
 * each coordinate's n values are contiguous. */
static void combine_by_coordinate(fedl_aggregator *g, coordinate_reducer reduce, int trim)
{
    float *block = g->work; /* (COORD_BLOCK, n) */
    int n = g->count;
    for (size_t j0 = 0; j0 < g->params; j0 += COORD_BLOCK) {
        size_t width = min_size(COORD_BLOCK, g->params - j0);
        for (int i = 0; i < n; i++) {
            const float *row = g->pool + (size_t)i * g->params + j0;
            for (size_t b = 0; b < width; b++)
                block[b * (size_t)n + (size_t)i] = row[b];
        }
        for (size_t b = 0; b < width; b++)
            g->sum[j0 + b] = reduce(block + b * (size_t)n, n, trim);
    }
}

/* ---------------------------------------------------------------- krum */

typedef struct krum_scratch {
    double *distance; /* (n, n) squared distances between kept deltas */
    double *score;    /* (n) summed distance to the n - f - 2 nearest others */
    int *near;        /* (n) one row's other updates, nearest first */
    int *rank;        /* (n) update indices by ascending score, ties by index */
} krum_scratch;

static krum_scratch krum_layout(const fedl_aggregator *g)
{
    size_t cap = (size_t)g->config.max_updates;
    krum_scratch s;
    s.distance = g->work;
    s.score = s.distance + cap * cap;
    s.near = (int *)(void *)(s.score + cap);
    s.rank = s.near + cap;
    return s;
}

/* distance[i][k] = |delta_i - delta_k|^2, DISTANCE_BLOCK coordinates of
 * every pair at a time so that the block of every update stays in cache. */
static void pairwise_distances(const fedl_aggregator *g, double *distance, int n)
{
    size_t un = (size_t)n;
    memset(distance, 0, un * un * sizeof(double));
    for (size_t j0 = 0; j0 < g->params; j0 += DISTANCE_BLOCK) {
        size_t width = min_size(DISTANCE_BLOCK, g->params - j0);
        for (size_t i = 0; i < un; i++)
            for (size_t k = i + 1; k < un; k++)
                distance[i * un + k] += squared_distance(g->pool + i * g->params + j0,
                                                         g->pool + k * g->params + j0, width);
    }
    for (size_t i = 0; i < un; i++)
        for (size_t k = i + 1; k < un; k++)
            distance[k * un + i] = distance[i * un + k];
}

static double sort_key(int index, const double *key)
{
    return key != NULL ? key[index] : (double)index;
}

/* Stable insertion sort of the indices idx[0..n) by key[index], or by the
 * index itself when key is NULL (n <= max_updates). */
static void sort_indices(int *idx, int n, const double *key)
{
    for (int i = 1; i < n; i++) {
        int x = idx[i];
        int j = i;
        for (; j > 0 && sort_key(idx[j - 1], key) > sort_key(x, key); j--)
            idx[j] = idx[j - 1];
        idx[j] = x;
    }
}

/* score[i] = the sum of the `nearest` smallest distances from i to the
 * others, added smallest first. */
static void krum_scores(const krum_scratch *s, int n, int nearest)
{
    for (int i = 0; i < n; i++) {
        const double *row = s->distance + (size_t)i * (size_t)n; /* (n) */
        int m = 0;
        double total = 0.0;
        for (int k = 0; k < n; k++)
            if (k != i)
                s->near[m++] = k;
        sort_indices(s->near, m, row);
        for (int k = 0; k < nearest; k++)
            total += row[s->near[k]];
        s->score[i] = total;
    }
}

/* sum = the unweighted mean of the deltas rank[0..m), added in index order. */
static void mean_of_kept(fedl_aggregator *g, int *rank, int m)
{
    memset(g->sum, 0, g->params * sizeof(double));
    sort_indices(rank, m, NULL);
    for (int r = 0; r < m; r++)
        fold_weighted(g->sum, g->pool + (size_t)rank[r] * g->params, 1.0, g->params);
    for (size_t j = 0; j < g->params; j++)
        g->sum[j] /= (double)m;
}

/* Krum (keep = 1) and Multi-Krum: score every update by its distance to
 * its n - f - 2 nearest others, average the keep best. */
static void combine_krum(fedl_aggregator *g, int keep)
{
    krum_scratch s = krum_layout(g);
    int n = g->count;
    pairwise_distances(g, s.distance, n);
    krum_scores(&s, n, n - g->config.byzantine - 2);
    for (int i = 0; i < n; i++)
        s.rank[i] = i;
    sort_indices(s.rank, n, s.score);
    mean_of_kept(g, s.rank, keep);
}

/* The updates Multi-Krum averages this round: multi_krum_m, or n - f. */
static int krum_keep(const fedl_aggregator *g)
{
    if (g->config.kind == FEDL_STRATEGY_KRUM)
        return 1;
    return g->config.multi_krum_m > 0 ? g->config.multi_krum_m : g->count - g->config.byzantine;
}

/* Robust strategies: the combined delta of the kept updates into sum. */
static fedl_status combine_robust(fedl_aggregator *g, fedl_error *err)
{
    int n = g->count, f = g->config.byzantine;
    switch (g->config.kind) {
    case FEDL_STRATEGY_MEDIAN:
        combine_by_coordinate(g, median_of, 0);
        return FEDL_OK;
    case FEDL_STRATEGY_TRIMMED_MEAN:
        combine_by_coordinate(g, trimmed_mean_of,
                              (int)floor((double)g->config.trim_fraction * (double)n));
        return FEDL_OK;
    default:
        break;
    }
    if ((long long)n <= 2LL * f + 2)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "strategy %s: %d updates, but f = %d needs more than 2f + 2 = %d",
                              fedl_strategy_name(g->config.kind), n, f, 2 * f + 2);
    if (krum_keep(g) > n)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "strategy multi-krum: %d updates, fewer than multi_krum_m = %d", n,
                              g->config.multi_krum_m);
    combine_krum(g, krum_keep(g));
    return FEDL_OK;
}

/* ---------------------------------------------------------- server step */

/* One coordinate's new weight and server state. */
typedef struct coordinate_step {
    float x, m, v;
} coordinate_step;

/* Reddi et al. 2021, Algorithm 2, without bias correction. */
static coordinate_step adaptive_step(const fedl_aggregator *g, size_t j, double d, float x)
{
    const fedl_strategy_config *c = &g->config;
    const float *m = g->state, *v = g->state + g->params; /* (params) each */
    double b1 = (double)c->beta1, b2 = (double)c->beta2, dd = d * d, vj = (double)v[j], nv;
    coordinate_step s;
    s.m = (float)(b1 * (double)m[j] + (1.0 - b1) * d);
    if (c->kind == FEDL_STRATEGY_FEDADAGRAD)
        nv = vj + dd;
    else if (c->kind == FEDL_STRATEGY_FEDADAM)
        nv = b2 * vj + (1.0 - b2) * dd;
    else /* yogi */
        nv = vj - (1.0 - b2) * dd * (double)((vj > dd) - (vj < dd));
    s.v = (float)nv;
    s.x = (float)((double)x +
                  (double)c->server_lr * (double)s.m / (sqrt((double)s.v) + (double)c->tau));
    return s;
}

/* The step at coordinate j from the round's aggregated delta d. */
static coordinate_step step_coordinate(const fedl_aggregator *g, size_t j, double d, float x)
{
    double lr = (double)g->config.server_lr;
    coordinate_step s = {x, 0.0f, 0.0f};
    if (fedl_strategy_is_adaptive(g->config.kind))
        return adaptive_step(g, j, d, x);
    if (g->config.kind == FEDL_STRATEGY_FEDAVGM) {
        s.v = (float)((double)g->config.momentum * (double)g->state[j] + d);
        s.x = (float)((double)x + lr * (double)s.v);
        return s;
    }
    s.x = (float)((double)x + lr * d);
    return s;
}

static void store_state(fedl_aggregator *g, size_t j, coordinate_step s)
{
    if (g->config.kind == FEDL_STRATEGY_FEDAVGM) {
        g->state[j] = s.v;
    } else if (g->state_floats > 0) {
        g->state[j] = s.m;
        g->state[g->params + j] = s.v;
    }
}

/* The server step at every coordinate, from the aggregated delta
 * sum[j] / divisor. With commit 0 nothing is written and the first
 * coordinate whose new weight or state would not be finite is returned
 * (params when none); with commit 1 global and the state move. Both runs do
 * the same arithmetic, so the step checked is the step taken. */
static size_t server_step(fedl_aggregator *g, float *global, double divisor, int commit)
{
    for (size_t j = 0; j < g->params; j++) {
        coordinate_step s = step_coordinate(g, j, g->sum[j] / divisor, global[j]);
        if (!commit) {
            if (!isfinite(s.x) || !isfinite(s.m) || !isfinite(s.v))
                return j;
            continue;
        }
        global[j] = s.x;
        store_state(g, j, s);
    }
    return g->params;
}

fedl_status fedl_aggregator_finish(fedl_aggregator *g, float *global, fedl_error *err)
{
    const char *name;
    fedl_status st;
    size_t bad;
    if (g == NULL || global == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "aggregator: no aggregator or weights");
    name = fedl_strategy_name(g->config.kind);
    if (!g->open)
        return fedl_error_set(err, FEDL_ERR_STATE,
                              "strategy %s: the round is already finished "
                              "(fedl_aggregator_begin starts the next)",
                              name);
    if (g->count == 0)
        return fedl_error_set(err, FEDL_ERR_STATE, "strategy %s: no update this round", name);
    if (g->robust) {
        st = combine_robust(g, err);
        if (st != FEDL_OK)
            return st;
    }
    bad = server_step(g, global, g->robust ? 1.0 : g->samples, 0);
    if (bad < g->params)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "strategy %s: the step would make weight %zu or its server state "
                              "non-finite (deltas too large; clip_norm bounds them); global "
                              "unchanged",
                              name, bad);
    server_step(g, global, g->robust ? 1.0 : g->samples, 1);
    g->rounds++;
    g->open = 0;
    return FEDL_OK;
}

/* ------------------------------------------------------- state, restore */

size_t fedl_aggregator_state_floats(const fedl_aggregator *g)
{
    return g != NULL ? g->state_floats : 0;
}

const float *fedl_aggregator_state(const fedl_aggregator *g, uint64_t *rounds)
{
    if (rounds != NULL)
        *rounds = g != NULL ? g->rounds : 0;
    return g != NULL && g->state_floats > 0 ? g->state : NULL;
}

/* The index of the first negative second moment v (adaptive strategies,
 * where v >= 0 always holds), floats when none. */
static size_t first_negative_moment(const fedl_aggregator *g, const float *state, size_t floats)
{
    if (!fedl_strategy_is_adaptive(g->config.kind))
        return floats;
    for (size_t j = g->params; j < floats; j++)
        if (state[j] < 0.0f)
            return j;
    return floats;
}

fedl_status fedl_aggregator_restore(fedl_aggregator *g, const float *state, size_t floats,
                                    uint64_t rounds, fedl_error *err)
{
    const char *name;
    size_t bad;
    if (g == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "aggregator restore: no aggregator");
    name = fedl_strategy_name(g->config.kind);
    if (floats != g->state_floats || (floats > 0 && state == NULL))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "aggregator restore: strategy %s over %zu parameters keeps %zu "
                              "state floats, not %zu",
                              name, g->params, g->state_floats, state == NULL ? 0 : floats);
    bad = floats > 0 ? first_non_finite(state, floats) : floats;
    if (bad < floats)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "aggregator restore: state[%zu] is %s",
                              bad, non_finite_name(state[bad]));
    bad = floats > 0 ? first_negative_moment(g, state, floats) : floats;
    if (bad < floats)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "aggregator restore: state[%zu] (second moment v of %s) is %g < 0",
                              bad, name, (double)state[bad]);
    if (floats > 0)
        memcpy(g->state, state, floats * sizeof(float));
    g->rounds = rounds;
    return FEDL_OK;
}
