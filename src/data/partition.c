/*
 * partition.c - splitting one data set among simulated federated clients:
 * the text that names a split ("iid", "dirichlet:0.3", "shards:2"), the
 * three splits themselves, and the subset view through which a client reads
 * its part of the data set without a copy.
 *
 * Every split first decides an owner for each sample (owner[i], a client),
 * then one counting pass turns the owners into the partition's offsets and
 * index lists, so each client's indices come out increasing and every sample
 * is assigned exactly once by construction.
 *
 * Randomness comes from fedl_rng streams PARTITION_STREAM + k of the seed
 * (k = 0 for iid and shards, 1 + attempt for dirichlet), so a partition is a
 * pure function of (data set labels, clients, spec, seed). iid and shards use
 * integer draws only and are identical on every platform. dirichlet goes
 * through log, exp and sqrt in double precision: the same binary gives the
 * same partition, but another libm or another architecture (where the
 * compiler may fuse a multiply and an add) can in rare cases move a cut by a
 * sample or flip a rejection, so its cross-platform identity is not
 * promised.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fedl/data.h"
#include "data/index.h"

#define PARTITION_STREAM 0x504152544EULL /* "PARTN" */
#define DIRICHLET_ATTEMPTS 10            /* draws before empty clients are topped up */
#define LABEL_CHUNK 1024                 /* labels read from a source per call */
#define SUBSET_CHUNK 1024                /* samples a view maps per parent read (4 KiB stack) */
#define ALPHA_MAX_DIGITS 15              /* significant digits: exact in a double */

/* ------------------------------------------------------------------- parsing */

static fedl_status spec_error(fedl_error *err, const char *text, size_t position,
                              const char *reason)
{
    return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                          "partition \"%.64s%s\": %s (at character %zu); expected iid, "
                          "dirichlet:<alpha> (e.g. dirichlet:0.3) or shards:<k> (e.g. shards:2)",
                          text, strlen(text) > 64 ? "..." : "", reason, position);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Powers of ten a double holds exactly. */
static const double exact_powers_of_ten[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* alpha: digits with an optional fraction. With at most 15 significant
 * digits the mantissa and 10^fraction_digits are exact doubles and their
 * quotient is correctly rounded: the same value on every platform and in
 * every locale, unlike strtod. */
static fedl_status parse_alpha(const char *text, size_t start, fedl_partition_spec *out,
                               fedl_error *err)
{
    uint64_t mantissa = 0;
    int significant = 0, fraction = 0, seen_point = 0, digits = 0;
    double value;
    for (size_t i = start; text[i] != '\0'; i++) {
        char c = text[i];
        if (c == '.' && !seen_point) {
            seen_point = 1;
            continue;
        }
        if (!is_digit(c))
            return spec_error(err, text, i + 1,
                              "alpha must be a plain decimal number such as 0.3 or 100");
        digits++;
        fraction += seen_point;
        if (mantissa == 0 && c == '0')
            continue; /* a leading zero is not significant */
        if (++significant > ALPHA_MAX_DIGITS)
            return spec_error(err, text, i + 1, "alpha has more than 15 significant digits");
        mantissa = mantissa * 10 + (uint64_t)(c - '0');
    }
    if (digits == 0)
        return spec_error(err, text, start + 1, "a number must follow \"dirichlet:\"");
    value = fraction < (int)(sizeof exact_powers_of_ten / sizeof exact_powers_of_ten[0])
                ? (double)mantissa / exact_powers_of_ten[fraction]
                : 0.0; /* below 1e-7 anyway */
    if (!(value >= FEDL_PARTITION_ALPHA_MIN && value <= FEDL_PARTITION_ALPHA_MAX))
        return spec_error(err, text, start + 1, "alpha must be between 0.0001 and 1000000");
    out->kind = FEDL_PARTITION_DIRICHLET;
    out->alpha = value;
    return FEDL_OK;
}

static fedl_status parse_shards(const char *text, size_t start, fedl_partition_spec *out,
                                fedl_error *err)
{
    int64_t value = 0;
    size_t i = start;
    for (; text[i] != '\0'; i++) {
        if (!is_digit(text[i]))
            return spec_error(err, text, i + 1, "the shard count must be a whole number");
        value = value * 10 + (text[i] - '0');
        if (value > INT_MAX)
            return spec_error(err, text, i + 1, "the shard count is too large");
    }
    if (i == start)
        return spec_error(err, text, start + 1, "a number must follow \"shards:\"");
    if (value < 1)
        return spec_error(err, text, start + 1, "a client needs at least 1 shard");
    out->kind = FEDL_PARTITION_SHARDS;
    out->shards = (int)value;
    return FEDL_OK;
}

fedl_status fedl_partition_parse(const char *text, fedl_partition_spec *out, fedl_error *err)
{
    size_t word;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_partition_parse: out is NULL");
    memset(out, 0, sizeof *out);
    out->kind = FEDL_PARTITION_IID;
    if (text == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_partition_parse: text is NULL");
    word = strcspn(text, ":");
    if (word == 3 && strncmp(text, "iid", 3) == 0) {
        if (text[3] != '\0')
            return spec_error(err, text, 4, "iid takes no parameter");
        return FEDL_OK;
    }
    if (word == 9 && strncmp(text, "dirichlet", 9) == 0) {
        if (text[9] != ':')
            return spec_error(err, text, 10, "dirichlet needs its alpha after a ':'");
        return parse_alpha(text, 10, out, err);
    }
    if (word == 6 && strncmp(text, "shards", 6) == 0) {
        if (text[6] != ':')
            return spec_error(err, text, 7, "shards needs its count after a ':'");
        return parse_shards(text, 7, out, err);
    }
    return spec_error(err, text, 1, "unknown partition kind");
}

/* ----------------------------------------------------------------- randomness */

/* Uniform in the open interval (0, 1) with 53 bits from two words, so that
 * its logarithm is always finite. */
static double uniform_open(fedl_rng *rng)
{
    uint32_t high = fedl_rng_u32(rng) >> 5, low = fedl_rng_u32(rng) >> 6;
    return ((double)high * 67108864.0 + (double)low + 0.5) / 9007199254740992.0;
}

/* A standard normal by Marsaglia's polar method (no sin/cos; the second
 * variate of the pair is dropped to keep no state). */
static double standard_normal(fedl_rng *rng)
{
    for (;;) {
        double u = 2.0 * uniform_open(rng) - 1.0, v = 2.0 * uniform_open(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0)
            return u * sqrt(-2.0 * log(s) / s);
    }
}

/* log of a Gamma(alpha, 1) variate by Marsaglia and Tsang (2000), "A simple
 * method for generating gamma variables": for a >= 1, with d = a - 1/3 and
 * c = 1 / sqrt(9 d), draw x ~ N(0, 1), v = (1 + c x)^3 (v > 0), u ~ U(0, 1);
 * accept d v when u < 1 - 0.0331 x^4 (the squeeze) or log u < x^2 / 2 + d (1
 * - v + log v). For alpha < 1 it uses their boost G(alpha) = G(alpha + 1) *
 * U^(1 / alpha), kept as a sum of logarithms: U^(1 / 0.001) underflows a
 * double, its logarithm does not. */
static double log_gamma_variate(fedl_rng *rng, double alpha)
{
    int boost = alpha < 1.0;
    double a = boost ? alpha + 1.0 : alpha;
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    double boost_log = boost ? log(uniform_open(rng)) / alpha : 0.0;
    for (;;) {
        double x, v, u;
        do {
            x = standard_normal(rng);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        u = uniform_open(rng);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x) || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return log(d * v) + boost_log;
    }
}

/* Proportions (clients) ~ Dirichlet(alpha, ..., alpha): normalised Gamma
 * variates, normalised in log space (subtract the largest) so that none
 * overflows and the largest is always 1 before the division. */
static void draw_dirichlet(fedl_rng *rng, double alpha, double *proportions, int clients)
{
    double largest = -HUGE_VAL, sum = 0.0;
    for (int c = 0; c < clients; c++) {
        proportions[c] = log_gamma_variate(rng, alpha);
        if (proportions[c] > largest)
            largest = proportions[c];
    }
    for (int c = 0; c < clients; c++) {
        proportions[c] = exp(proportions[c] - largest);
        sum += proportions[c];
    }
    for (int c = 0; c < clients; c++)
        proportions[c] /= sum;
}

/* Fisher-Yates from the back (as fedl_shuffle_order), on items in place. */
static void shuffle_in_place(fedl_rng *rng, uint32_t *items, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        uint32_t j = fedl_rng_below(rng, (uint32_t)i), t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

/* Where part c starts when n items are cut into `parts` consecutive parts
 * whose sizes differ by at most 1 (part c ends where part c + 1 starts). */
static size_t part_start(size_t n, uint64_t parts, uint64_t c)
{
    return (size_t)((uint64_t)n * c / parts); /* n, c < 2^32: no overflow */
}

/* ---------------------------------------------------------------- the splits */

/* What fedl_partition_make works with; every array from alloc. */
typedef struct partition_work {
    fedl_allocator *alloc;
    const fedl_dataset *ds;
    size_t count;          /* samples */
    int clients;           /* parts */
    int classes;           /* label kinds: ds->classes */
    uint32_t *owner;       /* (count) the client of each sample */
    int32_t *labels;       /* (count) label kinds only */
    uint32_t *order;       /* (count) samples: shuffled (iid) or sorted by label */
    size_t *class_start;   /* (classes + 1) label kinds: class k is order[start[k]..start[k+1]) */
    double *proportions;   /* (clients) dirichlet */
    size_t *sizes;         /* (clients) dirichlet: samples per client */
    uint32_t *shard_order; /* (clients * shards) shards */
    size_t shard_count;
} partition_work;

static void *work_array(partition_work *w, size_t n, size_t size)
{
    if (n > SIZE_MAX / size)
        return NULL;
    return fedl_mem_alloc(w->alloc, n * size);
}

static void work_free(partition_work *w)
{
    size_t classes = w->classes > 0 ? (size_t)w->classes : 0, clients = (size_t)w->clients;
    fedl_mem_free(w->alloc, w->owner, w->count * sizeof *w->owner);
    fedl_mem_free(w->alloc, w->labels, w->count * sizeof *w->labels);
    fedl_mem_free(w->alloc, w->order, w->count * sizeof *w->order);
    fedl_mem_free(w->alloc, w->class_start, (classes + 1) * sizeof *w->class_start);
    fedl_mem_free(w->alloc, w->proportions, clients * sizeof *w->proportions);
    fedl_mem_free(w->alloc, w->sizes, clients * sizeof *w->sizes);
    fedl_mem_free(w->alloc, w->shard_order, w->shard_count * sizeof *w->shard_order);
}

static fedl_status out_of_memory(fedl_error *err, const char *what, size_t n)
{
    return fedl_error_set(err, FEDL_ERR_NOMEM, "fedl_partition_make: cannot allocate %s (%zu)",
                          what, n);
}

/* Labels through the data set's source, LABEL_CHUNK at a time (features
 * not asked for). */
static fedl_status read_source_labels(partition_work *w, fedl_error *err)
{
    uint32_t chunk[LABEL_CHUNK];
    for (size_t done = 0; done < w->count;) {
        size_t m = w->count - done < LABEL_CHUNK ? w->count - done : LABEL_CHUNK;
        fedl_status status;
        for (size_t i = 0; i < m; i++)
            chunk[i] = (uint32_t)(done + i);
        status = fedl_dataset_read(w->ds, chunk, m, NULL, w->labels + done, err);
        if (status != FEDL_OK)
            return status;
        done += m;
    }
    return FEDL_OK;
}

/* Every label of the data set, from memory or its source, checked against
 * the class count (a source's labels are outside input). */
static fedl_status read_labels(partition_work *w, fedl_error *err)
{
    if (w->ds->source.read != NULL) {
        fedl_status status = read_source_labels(w, err);
        if (status != FEDL_OK)
            return status;
    } else {
        for (size_t i = 0; i < w->count; i++)
            w->labels[i] = w->ds->labels[i];
    }
    for (size_t i = 0; i < w->count; i++)
        if (w->labels[i] < 0 || w->labels[i] >= w->classes)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "fedl_partition_make: sample %zu has label %ld, outside the "
                                  "data set's %d classes",
                                  i, (long)w->labels[i], w->classes);
    return FEDL_OK;
}

/* order = the samples sorted by label, stably (a counting sort), and
 * class_start the first position of each class. */
static void sort_by_label(partition_work *w)
{
    size_t *start = w->class_start;
    memset(start, 0, ((size_t)w->classes + 1) * sizeof *start);
    for (size_t i = 0; i < w->count; i++)
        start[w->labels[i] + 1]++;
    for (int k = 0; k < w->classes; k++)
        start[k + 1] += start[k];
    for (size_t i = 0; i < w->count; i++)
        w->order[start[w->labels[i]]++] = (uint32_t)i;
    for (int k = w->classes; k > 0; k--) /* the fill moved each start to the next class's */
        start[k] = start[k - 1];
    start[0] = 0;
}

/* iid: one shuffle of all samples, dealt into near-equal consecutive parts. */
static void assign_iid(partition_work *w, uint64_t seed)
{
    fedl_rng rng;
    fedl_rng_init(&rng, seed, PARTITION_STREAM);
    for (size_t i = 0; i < w->count; i++)
        w->order[i] = (uint32_t)i;
    shuffle_in_place(&rng, w->order, w->count);
    for (int c = 0; c < w->clients; c++) {
        size_t end = part_start(w->count, (uint64_t)w->clients, (uint64_t)c + 1);
        for (size_t j = part_start(w->count, (uint64_t)w->clients, (uint64_t)c); j < end; j++)
            w->owner[w->order[j]] = (uint32_t)c;
    }
}

/* members (n samples of one class) cut by the cumulative proportions, as
 * FedML does: client c takes [floor(n P(c-1)), floor(n P(c))) where P is
 * the running sum, and the last client the rest. */
static void deal_by_proportions(partition_work *w, const uint32_t *members, size_t n)
{
    double cumulative = 0.0;
    size_t start = 0;
    for (int c = 0; c < w->clients; c++) {
        size_t end = n;
        cumulative += w->proportions[c];
        if (c + 1 < w->clients) {
            double cut = floor(cumulative * (double)n);
            end = cut >= (double)n ? n : (size_t)cut;
            end = end < start ? start : end;
        }
        for (size_t j = start; j < end; j++)
            w->owner[members[j]] = (uint32_t)c;
        start = end;
    }
}

/* One Dirichlet draw of the whole partition from rng stream `attempt`:
 * each class's samples (from the sorted order, so every attempt starts
 * from the same place) shuffled and dealt by their own proportions.
 * Returns the number of clients left without a sample. */
static int dirichlet_attempt(partition_work *w, double alpha, uint64_t seed, int attempt)
{
    fedl_rng rng;
    int empty = 0;
    fedl_rng_init(&rng, seed, PARTITION_STREAM + 1 + (uint64_t)attempt);
    sort_by_label(w);
    for (int k = 0; k < w->classes; k++) {
        uint32_t *members = w->order + w->class_start[k];
        size_t n = w->class_start[k + 1] - w->class_start[k];
        if (n == 0)
            continue; /* a class with no samples draws nothing */
        shuffle_in_place(&rng, members, n);
        draw_dirichlet(&rng, alpha, w->proportions, w->clients);
        deal_by_proportions(w, members, n);
    }
    memset(w->sizes, 0, (size_t)w->clients * sizeof *w->sizes);
    for (size_t i = 0; i < w->count; i++)
        w->sizes[w->owner[i]]++;
    for (int c = 0; c < w->clients; c++)
        empty += w->sizes[c] == 0;
    return empty;
}

/* The last resort for clients still empty after every attempt: each one,
 * in client order, takes the highest-numbered sample of the client that
 * has the most (the lowest-numbered such client). Since there are no more
 * clients than samples, while one client is empty the largest has at least
 * two, so no client is emptied by giving. */
static void top_up_empty_clients(partition_work *w)
{
    for (int c = 0; c < w->clients; c++) {
        int largest = 0;
        size_t i = w->count;
        if (w->sizes[c] > 0)
            continue;
        for (int d = 1; d < w->clients; d++)
            if (w->sizes[d] > w->sizes[largest])
                largest = d;
        while (i > 0 && w->owner[i - 1] != (uint32_t)largest)
            i--;
        w->owner[i - 1] = (uint32_t)c;
        w->sizes[largest]--;
        w->sizes[c]++;
    }
}

/* dirichlet: up to DIRICHLET_ATTEMPTS draws until every client has a
 * sample (FedML redraws until each has a minimum), then the top-up. */
static void assign_dirichlet(partition_work *w, double alpha, uint64_t seed)
{
    for (int attempt = 0; attempt < DIRICHLET_ATTEMPTS; attempt++)
        if (dirichlet_attempt(w, alpha, seed, attempt) == 0)
            return;
    top_up_empty_clients(w);
}

/* shards: the label-sorted samples cut into clients * k near-equal shards;
 * a seeded permutation of the shards gives client c shards
 * permutation[c k .. c k + k). */
static void assign_shards(partition_work *w, int shards, uint64_t seed)
{
    fedl_rng rng;
    fedl_rng_init(&rng, seed, PARTITION_STREAM);
    sort_by_label(w);
    for (size_t s = 0; s < w->shard_count; s++)
        w->shard_order[s] = (uint32_t)s;
    shuffle_in_place(&rng, w->shard_order, w->shard_count);
    for (size_t s = 0; s < w->shard_count; s++) {
        uint32_t shard = w->shard_order[s];
        size_t end = part_start(w->count, w->shard_count, (uint64_t)shard + 1);
        for (size_t j = part_start(w->count, w->shard_count, shard); j < end; j++)
            w->owner[w->order[j]] = (uint32_t)(s / (size_t)shards);
    }
}

/* The owners as a partition: client sizes, their running sum as offsets,
 * then every sample in increasing order appended to its client's list. */
static fedl_status collect(const partition_work *w, fedl_partition *out, fedl_error *err)
{
    size_t *offsets = fedl_mem_alloc(w->alloc, ((size_t)w->clients + 1) * sizeof *offsets);
    uint32_t *indices = fedl_mem_alloc(w->alloc, w->count * sizeof *indices);
    if (offsets == NULL || indices == NULL) {
        fedl_mem_free(w->alloc, offsets, ((size_t)w->clients + 1) * sizeof *offsets);
        fedl_mem_free(w->alloc, indices, w->count * sizeof *indices);
        return out_of_memory(err, "the partition's index lists", w->count);
    }
    for (size_t i = 0; i < w->count; i++)
        offsets[w->owner[i] + 1]++;
    for (int c = 0; c < w->clients; c++)
        offsets[c + 1] += offsets[c];
    for (size_t i = 0; i < w->count; i++)
        indices[offsets[w->owner[i]]++] = (uint32_t)i;
    for (int c = w->clients; c > 0; c--) /* the fill moved each offset to the next client's */
        offsets[c] = offsets[c - 1];
    offsets[0] = 0;
    out->clients = w->clients;
    out->offsets = offsets;
    out->indices = indices;
    out->alloc = w->alloc;
    return FEDL_OK;
}

static fedl_status check_spec(const fedl_partition_spec *spec, fedl_error *err)
{
    if (spec->kind == FEDL_PARTITION_IID)
        return FEDL_OK;
    if (spec->kind == FEDL_PARTITION_DIRICHLET) {
        if (!(spec->alpha >= FEDL_PARTITION_ALPHA_MIN && spec->alpha <= FEDL_PARTITION_ALPHA_MAX))
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "fedl_partition_make: dirichlet alpha %g is outside [%g, %g]",
                                  spec->alpha, FEDL_PARTITION_ALPHA_MIN, FEDL_PARTITION_ALPHA_MAX);
        return FEDL_OK;
    }
    if (spec->kind == FEDL_PARTITION_SHARDS) {
        if (spec->shards < 1)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "fedl_partition_make: shards:%d: a client needs at least 1 "
                                  "shard",
                                  spec->shards);
        return FEDL_OK;
    }
    return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_partition_make: unknown kind %d",
                          (int)spec->kind);
}

/* What the split needs of the data set: enough samples, and class labels
 * read by index for the label kinds. */
static fedl_status check_data(const fedl_dataset *ds, int clients, const fedl_partition_spec *spec,
                              fedl_error *err)
{
    const char *kind = spec->kind == FEDL_PARTITION_DIRICHLET ? "dirichlet" : "shards";
    if (clients < 1)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: %d clients: there must be at least 1", clients);
    if (fedl_exceeds_u32(ds->count))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: the data set has %zu samples, more than "
                              "the %lu a partition indexes",
                              ds->count, (unsigned long)UINT32_MAX);
    if ((size_t)clients > ds->count)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: %d clients but only %zu samples: every "
                              "client needs at least one",
                              clients, ds->count);
    if (spec->kind == FEDL_PARTITION_IID)
        return FEDL_OK;
    if (ds->targets > 0 || ds->classes < 1)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: %s splits by class label, and this is a "
                              "regression data set (%d targets, no classes): use iid",
                              kind, ds->targets);
    if (ds->source.seek != NULL)
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "fedl_partition_make: %s needs each sample's label, and a stream "
                              "reads in its own order: open the data with an index",
                              kind);
    if (spec->kind == FEDL_PARTITION_SHARDS && (size_t)spec->shards > ds->count / (size_t)clients)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: shards:%d for %d clients makes %.0f shards "
                              "of %zu samples: some would be empty",
                              spec->shards, clients, (double)spec->shards * clients, ds->count);
    return FEDL_OK;
}

/* The temporaries of the kind: owners always, labels and the class order
 * for the label kinds, and the kind's own. */
static fedl_status reserve_work(partition_work *w, const fedl_partition_spec *spec, fedl_error *err)
{
    w->owner = work_array(w, w->count, sizeof *w->owner);
    w->order = work_array(w, w->count, sizeof *w->order);
    if (w->owner == NULL || w->order == NULL)
        return out_of_memory(err, "the owner and order of each sample", w->count);
    if (spec->kind == FEDL_PARTITION_IID)
        return FEDL_OK;
    w->classes = w->ds->classes;
    w->labels = work_array(w, w->count, sizeof *w->labels);
    w->class_start = work_array(w, (size_t)w->classes + 1, sizeof *w->class_start);
    if (w->labels == NULL || w->class_start == NULL)
        return out_of_memory(err, "the labels", w->count);
    if (spec->kind == FEDL_PARTITION_DIRICHLET) {
        w->proportions = work_array(w, (size_t)w->clients, sizeof *w->proportions);
        w->sizes = work_array(w, (size_t)w->clients, sizeof *w->sizes);
        if (w->proportions == NULL || w->sizes == NULL)
            return out_of_memory(err, "the proportions of each client", (size_t)w->clients);
        return FEDL_OK;
    }
    w->shard_order =
        work_array(w, (size_t)w->clients * (size_t)spec->shards, sizeof *w->shard_order);
    if (w->shard_order == NULL)
        return out_of_memory(err, "the shard order", (size_t)w->clients * (size_t)spec->shards);
    w->shard_count = (size_t)w->clients * (size_t)spec->shards;
    return FEDL_OK;
}

static fedl_status assign_owners(partition_work *w, const fedl_partition_spec *spec, uint64_t seed,
                                 fedl_error *err)
{
    fedl_status status;
    if (spec->kind == FEDL_PARTITION_IID) {
        assign_iid(w, seed);
        return FEDL_OK;
    }
    status = read_labels(w, err);
    if (status != FEDL_OK)
        return status;
    if (spec->kind == FEDL_PARTITION_DIRICHLET)
        assign_dirichlet(w, spec->alpha, seed);
    else
        assign_shards(w, spec->shards, seed);
    return FEDL_OK;
}

fedl_status fedl_partition_make(const fedl_dataset *ds, int clients,
                                const fedl_partition_spec *spec, uint64_t seed,
                                fedl_allocator *alloc, fedl_partition *out, fedl_error *err)
{
    partition_work w;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_partition_make: out is NULL");
    memset(out, 0, sizeof *out);
    if (ds == NULL || spec == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_make: the data set or the spec is NULL");
    status = check_spec(spec, err);
    if (status == FEDL_OK)
        status = check_data(ds, clients, spec, err);
    if (status != FEDL_OK)
        return status;
    memset(&w, 0, sizeof w);
    w.alloc = alloc != NULL ? alloc : fedl_allocator_default();
    w.ds = ds;
    w.count = ds->count;
    w.clients = clients;
    status = reserve_work(&w, spec, err);
    if (status == FEDL_OK)
        status = assign_owners(&w, spec, seed, err);
    if (status == FEDL_OK)
        status = collect(&w, out, err);
    work_free(&w);
    return status;
}

void fedl_partition_free(fedl_partition *p)
{
    if (p == NULL)
        return;
    if (p->clients > 0 && p->offsets != NULL) {
        fedl_mem_free(p->alloc, p->indices, p->offsets[p->clients] * sizeof *p->indices);
        fedl_mem_free(p->alloc, p->offsets, ((size_t)p->clients + 1) * sizeof *p->offsets);
    }
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- the subset */

/* A view's source: sample i is parent sample indices[i]. */
typedef struct subset_view {
    const fedl_dataset *parent;
    fedl_allocator *alloc;
    uint32_t *indices; /* (n) */
    size_t n;
} subset_view;

/* One read of the parent, in memory or from its source. */
static fedl_status read_parent(const fedl_dataset *parent, const uint32_t *indices, size_t n,
                               float *x, int32_t *labels, float *targets, fedl_error *err)
{
    if (parent->source.read != NULL)
        return parent->source.read(parent->source.impl, indices, n, x, labels, targets, err);
    if (targets != NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "data set view: targets asked of a data set in memory (class "
                              "labels)");
    fedl_dataset_gather(parent, indices, n, x, labels);
    return FEDL_OK;
}

/* indices of the view (n) as indices of the parent in mapped; an index
 * outside the view (fedl_dataset_read checks first) is an error. */
static fedl_status map_indices(const subset_view *v, const uint32_t *indices, size_t n,
                               uint32_t *mapped, fedl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (indices[i] >= v->n)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "data set view: sample %lu of %zu does not exist",
                                  (unsigned long)indices[i], v->n);
        mapped[i] = v->indices[indices[i]];
    }
    return FEDL_OK;
}

/* Chunks of SUBSET_CHUNK samples mapped on the stack, so that reading
 * allocates nothing; a batch of up to SUBSET_CHUNK is one parent read, the
 * same list the prefetch hint named. */
static fedl_status subset_read(void *impl, const uint32_t *indices, size_t n, float *x,
                               int32_t *labels, float *targets, fedl_error *err)
{
    const subset_view *v = impl;
    size_t features = v->parent->sample_bytes, per_target = (size_t)v->parent->targets;
    uint32_t mapped[SUBSET_CHUNK];
    for (size_t done = 0; done < n;) {
        size_t m = n - done < SUBSET_CHUNK ? n - done : SUBSET_CHUNK;
        fedl_status status = map_indices(v, indices + done, m, mapped, err);
        if (status == FEDL_OK)
            status = read_parent(v->parent, mapped, m, x != NULL ? x + done * features : NULL,
                                 labels != NULL ? labels + done : NULL,
                                 targets != NULL ? targets + done * per_target : NULL, err);
        if (status != FEDL_OK)
            return status;
        done += m;
    }
    return FEDL_OK;
}

/* The hint for the first chunk, which the next read asks of the parent. */
static void subset_prefetch(void *impl, const uint32_t *indices, size_t n)
{
    const subset_view *v = impl;
    uint32_t mapped[SUBSET_CHUNK];
    size_t m = n < SUBSET_CHUNK ? n : SUBSET_CHUNK;
    if (map_indices(v, indices, m, mapped, NULL) == FEDL_OK)
        fedl_dataset_prefetch(v->parent, mapped, m);
}

static void subset_destroy(void *impl)
{
    subset_view *v = impl;
    fedl_allocator *alloc = v->alloc;
    fedl_mem_free(alloc, v->indices, v->n * sizeof *v->indices);
    fedl_mem_free(alloc, v, sizeof *v);
}

/* SHA-256 of what defines the view's samples: the parent's identity and the
 * list, or, for a parent in memory (which has no identity), its sample
 * format, the list and the viewed samples' bytes and labels. Hashing only the
 * viewed samples keeps the cost of viewing every client's part at one pass
 * over the data set rather than one per client. */
static void subset_identity(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                            uint8_t identity[FEDL_SHA256_BYTES])
{
    static const char tag[] = "fedl data set view 1";
    fedl_sha256_ctx ctx;
    uint64_t sizes[2] = {ds->count, n};
    fedl_sha256_init(&ctx);
    fedl_sha256_update(&ctx, tag, sizeof tag);
    fedl_sha256_update(&ctx, sizes, sizeof sizes);
    fedl_sha256_update(&ctx, indices, n * sizeof *indices);
    if (ds->source.read != NULL) {
        fedl_sha256_update(&ctx, ds->source.identity, sizeof ds->source.identity);
    } else {
        int32_t format[4] = {ds->shape.c, ds->shape.h, ds->shape.w, ds->classes};
        float affine[2] = {ds->scale, ds->shift};
        fedl_sha256_update(&ctx, format, sizeof format);
        fedl_sha256_update(&ctx, affine, sizeof affine);
        for (size_t i = 0; i < n; i++) {
            fedl_sha256_update(&ctx, ds->pixels + (size_t)indices[i] * ds->sample_bytes,
                               ds->sample_bytes);
            fedl_sha256_update(&ctx, ds->labels + indices[i], 1);
        }
    }
    fedl_sha256_final(&ctx, identity);
}

static fedl_status check_subset(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                                fedl_error *err)
{
    if (ds == NULL || (indices == NULL && n > 0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_subset: the data set or the index list is NULL");
    if (n == 0 || fedl_exceeds_u32(n))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_subset: a view holds 1 to %lu samples, not %zu",
                              (unsigned long)UINT32_MAX, n);
    if (ds->source.seek != NULL)
        return fedl_error_set(err, FEDL_ERR_UNSUPPORTED,
                              "fedl_dataset_subset: a stream reads in its own order and cannot "
                              "serve a view by index: open the data with an index");
    for (size_t i = 0; i < n; i++)
        if (indices[i] >= ds->count)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "fedl_dataset_subset: entry %zu of the list is sample %lu, "
                                  "but the data set has %zu",
                                  i, (unsigned long)indices[i], ds->count);
    return FEDL_OK;
}

fedl_status fedl_dataset_subset(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                                fedl_allocator *alloc, fedl_dataset *out, fedl_error *err)
{
    subset_view *v;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_dataset_subset: out is NULL");
    memset(out, 0, sizeof *out);
    status = check_subset(ds, indices, n, err);
    if (status != FEDL_OK)
        return status;
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    v = fedl_mem_alloc(alloc, sizeof *v);
    if (v == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "fedl_dataset_subset: cannot allocate a view");
    v->indices = fedl_mem_alloc(alloc, n * sizeof *v->indices);
    if (v->indices == NULL) {
        fedl_mem_free(alloc, v, sizeof *v);
        return fedl_error_set(err, FEDL_ERR_NOMEM,
                              "fedl_dataset_subset: cannot allocate the list of %zu samples", n);
    }
    memcpy(v->indices, indices, n * sizeof *indices);
    v->parent = ds;
    v->alloc = alloc;
    v->n = n;
    out->alloc = alloc;
    out->count = n;
    out->shape = ds->shape;
    out->sample_bytes = ds->sample_bytes;
    out->classes = ds->classes;
    out->targets = ds->targets;
    out->scale = ds->scale;
    out->shift = ds->shift;
    out->source.read = subset_read;
    out->source.prefetch = ds->source.prefetch != NULL ? subset_prefetch : NULL;
    out->source.destroy = subset_destroy;
    out->source.impl = v;
    out->source.held_bytes = n * sizeof *v->indices;
    subset_identity(ds, indices, n, out->source.identity);
    return FEDL_OK;
}

fedl_status fedl_partition_subset(const fedl_dataset *ds, const fedl_partition *p, int c,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (p == NULL || p->offsets == NULL || c < 0 || c >= p->clients)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_partition_subset: client %d is not one of the partition's %d",
                              c, p != NULL ? p->clients : 0);
    return fedl_dataset_subset(ds, p->indices + p->offsets[c], p->offsets[c + 1] - p->offsets[c],
                               alloc, out, err);
}
