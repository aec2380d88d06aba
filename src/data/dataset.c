/*
 * dataset.c - in-memory datasets: loading an images/labels IDX pair or an
 * MNIST-layout directory, truncation, and turning uint8 samples into the
 * float batches the model reads.
 *
 * The dataset adopts the IDX payload buffers as they were read, so loading
 * Fashion-MNIST costs the 47 MB of pixels once, never a second copy.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fedl/data.h"

static const char *shape_text(const fedl_idx *idx, char *buffer, size_t size)
{
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; i < idx->ndim && used < size; i++) {
        int n = snprintf(buffer + used, size - used, "%s%lu", i > 0 ? " x " : "",
                         (unsigned long)idx->dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buffer;
}

/* Images are (N, H, W) or (N, C, H, W); labels are (N). */
static fedl_status check_pair(const fedl_idx *images, const char *images_path,
                              const fedl_idx *labels, const char *labels_path, fedl_shape *shape,
                              fedl_error *err)
{
    char text[80];
    const uint32_t *d = images->dims;
    if (images->ndim != 3 && images->ndim != 4)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: images must have 3 dimensions (N, H, W) or 4 (N, C, H, W); "
                              "this file has %d (%s)",
                              images_path, images->ndim, shape_text(images, text, sizeof text));
    for (int i = 1; i < images->ndim; i++)
        if (d[i] > INT32_MAX)
            return fedl_error_set(err, FEDL_ERR_FORMAT,
                                  "%s: image dimension %d is %lu, more than a shape holds",
                                  images_path, i, (unsigned long)d[i]);
    if (labels->ndim != 1)
        return fedl_error_set(err, FEDL_ERR_FORMAT,
                              "%s: labels must have 1 dimension (N); this file has %d (%s)",
                              labels_path, labels->ndim, shape_text(labels, text, sizeof text));
    if (labels->dims[0] != d[0])
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s has %lu images but %s has %lu labels",
                              images_path, (unsigned long)d[0], labels_path,
                              (unsigned long)labels->dims[0]);
    shape->c = images->ndim == 4 ? (int32_t)d[1] : 1;
    shape->h = (int32_t)d[images->ndim - 2];
    shape->w = (int32_t)d[images->ndim - 1];
    return FEDL_OK;
}

fedl_status fedl_dataset_load_idx(const char *images_path, const char *labels_path,
                                  fedl_allocator *alloc, fedl_dataset *out, fedl_error *err)
{
    fedl_idx images, labels;
    fedl_shape shape = {0, 0, 0};
    fedl_status status;
    uint8_t largest = 0;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG, "fedl_dataset_load_idx: out is NULL");
    memset(out, 0, sizeof *out);
    if (images_path == NULL || labels_path == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_load_idx: a file path is NULL");
    if (alloc == NULL)
        alloc = fedl_allocator_default();

    /* Labels first: they are small, and a mismatch is found before the
     * images are inflated. */
    status = fedl_idx_read(labels_path, alloc, &labels, err);
    if (status != FEDL_OK)
        return status;
    status = fedl_idx_read(images_path, alloc, &images, err);
    if (status != FEDL_OK) {
        fedl_idx_free(&labels, alloc);
        return status;
    }
    status = check_pair(&images, images_path, &labels, labels_path, &shape, err);
    if (status != FEDL_OK) {
        fedl_idx_free(&images, alloc);
        fedl_idx_free(&labels, alloc);
        return status;
    }

    for (size_t i = 0; i < labels.size; i++)
        if (labels.data[i] > largest)
            largest = labels.data[i];
    out->alloc = alloc;
    out->count = images.dims[0];
    out->capacity = out->count;
    out->label_capacity = out->count;
    out->shape = shape;
    out->sample_bytes = images.size / out->count;
    out->pixels = images.data; /* (count, C, H, W) */
    out->labels = labels.data; /* (count) */
    out->classes = 1 + (int)largest;
    out->scale = 1.0f / 255.0f;
    out->shift = 0.0f;
    return FEDL_OK;
}

/* Path of dir/name.gz if it exists, else of dir/name if that exists. *path
 * is allocated (path_bytes long) and must be freed by the caller. */
static fedl_status find_member(const char *dir, const char *name, fedl_allocator *alloc,
                               char **path, size_t *path_bytes, fedl_error *err)
{
    struct stat st;
    size_t dir_len = strlen(dir);
    const char *separator = dir_len > 0 && dir[dir_len - 1] == '/' ? "" : "/";
    size_t bytes = dir_len + 1 + strlen(name) + sizeof ".gz";
    int gz_errno;
    *path = fedl_mem_alloc(alloc, bytes);
    if (*path == NULL)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "%s: cannot allocate a path of %zu bytes", dir,
                              bytes);
    *path_bytes = bytes;
    snprintf(*path, bytes, "%s%s%s.gz", dir, separator, name);
    if (stat(*path, &st) == 0)
        return FEDL_OK;
    gz_errno = errno;
    snprintf(*path, bytes, "%s%s%s", dir, separator, name);
    if (stat(*path, &st) == 0)
        return FEDL_OK;
    fedl_mem_free(alloc, *path, bytes);
    *path = NULL;
    return fedl_error_set(err, FEDL_ERR_IO, "%s: neither %s.gz nor %s can be opened (%s)", dir,
                          name, name, strerror(gz_errno));
}

fedl_status fedl_dataset_load_mnist_dir(const char *dir, fedl_split split, fedl_allocator *alloc,
                                        fedl_dataset *out, fedl_error *err)
{
    const char *images_name, *labels_name;
    char *images_path = NULL, *labels_path = NULL;
    size_t images_bytes = 0, labels_bytes = 0;
    fedl_status status;
    if (out == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_load_mnist_dir: out is NULL");
    memset(out, 0, sizeof *out);
    if (dir == NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_load_mnist_dir: dir is NULL");
    if (split == FEDL_SPLIT_TRAIN) {
        images_name = "train-images-idx3-ubyte";
        labels_name = "train-labels-idx1-ubyte";
    } else if (split == FEDL_SPLIT_TEST) {
        images_name = "t10k-images-idx3-ubyte";
        labels_name = "t10k-labels-idx1-ubyte";
    } else {
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "fedl_dataset_load_mnist_dir: split %d is neither train nor test",
                              (int)split);
    }
    if (alloc == NULL)
        alloc = fedl_allocator_default();
    status = find_member(dir, images_name, alloc, &images_path, &images_bytes, err);
    if (status == FEDL_OK)
        status = find_member(dir, labels_name, alloc, &labels_path, &labels_bytes, err);
    if (status == FEDL_OK)
        status = fedl_dataset_load_idx(images_path, labels_path, alloc, out, err);
    fedl_mem_free(alloc, images_path, images_bytes);
    fedl_mem_free(alloc, labels_path, labels_bytes);
    return status;
}

/* Shrink an owned buffer of *capacity samples of unit bytes to n samples;
 * a failed resize keeps the buffer as it was, *capacity says its size. */
static void shrink_buffer(fedl_allocator *alloc, uint8_t **buffer, size_t *capacity, size_t unit,
                          size_t n)
{
    uint8_t *smaller;
    if (n == 0)
        return; /* a zero-byte resize would free it; keep it until free */
    smaller = fedl_mem_realloc(alloc, *buffer, *capacity * unit, n * unit);
    if (smaller != NULL) {
        *buffer = smaller;
        *capacity = n;
    }
}

void fedl_dataset_truncate(fedl_dataset *ds, size_t n)
{
    if (ds == NULL || n >= ds->count)
        return;
    if (ds->source.read != NULL) { /* the source holds no per-sample buffers to shrink */
        ds->count = n;
        return;
    }
    if (ds->capacity == 0)
        ds->capacity = ds->count;
    if (ds->label_capacity == 0)
        ds->label_capacity = ds->count;
    /* give the memory of the samples dropped back */
    shrink_buffer(ds->alloc, &ds->pixels, &ds->capacity, ds->sample_bytes, n);
    shrink_buffer(ds->alloc, &ds->labels, &ds->label_capacity, 1, n);
    ds->count = n;
}

void fedl_dataset_free(fedl_dataset *ds)
{
    if (ds == NULL)
        return;
    if (ds->source.destroy != NULL)
        ds->source.destroy(ds->source.impl);
    fedl_mem_free(ds->alloc, ds->pixels,
                  (ds->capacity != 0 ? ds->capacity : ds->count) * ds->sample_bytes);
    fedl_mem_free(ds->alloc, ds->labels, ds->label_capacity != 0 ? ds->label_capacity : ds->count);
    memset(ds, 0, sizeof *ds);
}

void fedl_dataset_gather(const fedl_dataset *ds, const uint32_t *indices, size_t n, float *x,
                         int32_t *labels)
{
    size_t sample;
    float scale, shift;
    if (ds == NULL || indices == NULL)
        return;
    sample = ds->sample_bytes;
    scale = ds->scale;
    shift = ds->shift;
    for (size_t i = 0; i < n; i++) {
        size_t index = indices[i];
        int valid = index < ds->count;
        if (x != NULL) {
            float *dst = x + i * sample; /* (C, H, W) */
            if (valid) {
                const uint8_t *src = ds->pixels + index * sample; /* (C, H, W) */
                for (size_t k = 0; k < sample; k++)
                    dst[k] = (float)src[k] * scale + shift;
            } else {
                memset(dst, 0, sample * sizeof *dst);
            }
        }
        if (labels != NULL)
            labels[i] = valid ? (int32_t)ds->labels[index] : -1;
    }
}

/* Either output of a read: class labels or regression targets. */
static fedl_status read_any(const fedl_dataset *ds, const uint32_t *indices, size_t n, float *x,
                            int32_t *labels, float *targets, fedl_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (indices[i] >= ds->count)
            return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                                  "data set: sample %lu of %zu does not exist",
                                  (unsigned long)indices[i], ds->count);
    if (ds->source.read != NULL)
        return ds->source.read(ds->source.impl, indices, n, x, labels, targets, err);
    if (targets != NULL)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "data set: targets asked of a data set in memory (class labels)");
    fedl_dataset_gather(ds, indices, n, x, labels);
    return FEDL_OK;
}

fedl_status fedl_dataset_read(const fedl_dataset *ds, const uint32_t *indices, size_t n, float *x,
                              int32_t *labels, fedl_error *err)
{
    return read_any(ds, indices, n, x, labels, NULL, err);
}

fedl_status fedl_dataset_read_targets(const fedl_dataset *ds, const uint32_t *indices, size_t n,
                                      float *x, float *targets, fedl_error *err)
{
    return read_any(ds, indices, n, x, NULL, targets, err);
}

size_t fedl_dataset_held_bytes(const fedl_dataset *ds)
{
    if (ds->source.read != NULL)
        return ds->source.held_bytes;
    return ds->count * ds->sample_bytes + ds->count;
}

void fedl_dataset_prefetch(const fedl_dataset *ds, const uint32_t *indices, size_t n)
{
    if (ds->source.prefetch == NULL || n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (indices[i] >= ds->count)
            return;
    ds->source.prefetch(ds->source.impl, indices, n);
}

void fedl_dataset_seek(const fedl_dataset *ds, uint64_t epoch, size_t position)
{
    if (ds->source.seek != NULL)
        ds->source.seek(ds->source.impl, epoch, position);
}
