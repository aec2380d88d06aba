/*
 * state_file.c - the coordinator's and a client's state as files: their
 * bytes in one section of a container (CRC-checked, written durably by
 * the container writer), and back.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fedl/ckpt.h"
#include "fedl/fl.h"

static fedl_status write_section(fedl_file_kind kind, const char *name, fedl_section_kind section,
                                 const uint8_t *bytes, size_t length, fedl_allocator *alloc,
                                 const char *path, fedl_error *err)
{
    fedl_container_writer *w = NULL;
    fedl_status st = fedl_container_writer_create(kind, alloc, &w, err);
    if (st == FEDL_OK)
        st = fedl_container_add(w, name, section, bytes, length, err);
    if (st == FEDL_OK)
        st = fedl_container_write(w, NULL, path, err);
    fedl_container_writer_destroy(w);
    return st;
}

/* The section `name` of a file of `kind` at path, in *view (close it with
 * fedl_file_view_close); *found 0 if the file is not there. */
static fedl_status read_section(fedl_file_kind kind, const char *name, const char *path,
                                fedl_file_view *view, const uint8_t **data, size_t *length,
                                int *found, fedl_error *err)
{
    fedl_container c;
    const fedl_section *section;
    fedl_status st;
    *found = 0;
    memset(view, 0, sizeof *view);
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return FEDL_OK;
    st = fedl_file_view_open(path, NULL, view, err);
    if (st != FEDL_OK)
        return st;
    *found = 1;
    st = fedl_container_parse(view->bytes, view->length, path, &c, err);
    if (st == FEDL_OK &&
        (c.file_kind != (uint32_t)kind || (section = fedl_container_find(&c, name)) == NULL))
        st = fedl_error_set(err, FEDL_ERR_FORMAT, "%s: not a %s file", path, name);
    if (st == FEDL_OK) {
        *data = fedl_container_data(&c, section);
        *length = (size_t)section->length;
    }
    return st;
}

fedl_status fedl_coordinator_save_file(const fedl_coordinator *co, const char *path,
                                       fedl_error *err)
{
    uint8_t *bytes = NULL;
    size_t length = 0;
    fedl_status st = fedl_coordinator_save(co, NULL, &bytes, &length, err);
    if (st == FEDL_OK)
        st = write_section(FEDL_FILE_COORDINATOR, "coordinator", FEDL_SECTION_COORDINATOR, bytes,
                           length, NULL, path, err);
    fedl_mem_free(NULL, bytes, length);
    return st;
}

/* The bytes of a state restored into an object. */
typedef fedl_status (*restore_fn)(void *object, const uint8_t *bytes, size_t length,
                                  fedl_error *err);

static fedl_status restore_coordinator(void *object, const uint8_t *bytes, size_t length,
                                       fedl_error *err)
{
    return fedl_coordinator_restore(object, bytes, length, err);
}

static fedl_status restore_client(void *object, const uint8_t *bytes, size_t length,
                                  fedl_error *err)
{
    return fedl_client_restore(object, bytes, length, err);
}

/* Section `name` of the file of `kind` at path restored into object; the
 * error names the file. */
static fedl_status load_state(fedl_file_kind kind, const char *name, const char *path,
                              restore_fn restore, void *object, int *found, fedl_error *err)
{
    fedl_file_view view;
    const uint8_t *data = NULL;
    size_t length = 0;
    fedl_status st = read_section(kind, name, path, &view, &data, &length, found, err);
    if (st == FEDL_OK && *found)
        st = restore(object, data, length, err);
    if (st != FEDL_OK && err != NULL && strstr(err->message, path) == NULL) {
        fedl_error inner = *err;
        fedl_error_set(err, inner.status, "%s: %s", path, inner.message);
    }
    if (view.bytes != NULL)
        fedl_file_view_close(&view);
    return st;
}

fedl_status fedl_coordinator_load_file(fedl_coordinator *co, const char *path, int *found,
                                       fedl_error *err)
{
    return load_state(FEDL_FILE_COORDINATOR, "coordinator", path, restore_coordinator, co, found,
                      err);
}

fedl_status fedl_client_save_file(const fedl_client *cl, fedl_allocator *alloc, const char *path,
                                  fedl_error *err)
{
    uint8_t *bytes = NULL;
    size_t length = 0;
    fedl_status st = fedl_client_save(cl, alloc, &bytes, &length, err);
    if (st == FEDL_OK)
        st = write_section(FEDL_FILE_CLIENT, "client", FEDL_SECTION_CLIENT, bytes, length, alloc,
                           path, err);
    fedl_mem_free(alloc, bytes, length);
    return st;
}

fedl_status fedl_client_load_file(fedl_client *cl, const char *path, int *found, fedl_error *err)
{
    return load_state(FEDL_FILE_CLIENT, "client", path, restore_client, cl, found, err);
}
