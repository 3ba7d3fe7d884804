#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <liburing.h>
#include "curing.h"

struct curing_ring {
    struct io_uring ring;
};

/// A free slot, flushing queued requests to the kernel once if the queue is full.
static struct io_uring_sqe *slot(curing_ring *handle) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&handle->ring);
    if (sqe == NULL) {
        io_uring_submit(&handle->ring);
        sqe = io_uring_get_sqe(&handle->ring);
    }
    return sqe;
}

/// Once a request is in the queue it will complete (its completion resumes the caller), so a
/// failed submit is retried, never reported: reporting it would let the caller free the buffer
/// the kernel is about to use. Requests still queued go with the next submit.
static int submit(curing_ring *handle) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        int result = io_uring_submit(&handle->ring);
        if (result >= 0 || (result != -EAGAIN && result != -EBUSY && result != -EINTR)) return 1;
    }
    return 1;
}

curing_ring *curing_new(unsigned entries, int *error) {
    curing_ring *handle = malloc(sizeof(curing_ring));
    if (handle == NULL) { *error = ENOMEM; return NULL; }
    int result = io_uring_queue_init(entries, &handle->ring, 0);
    if (result < 0) { free(handle); *error = -result; return NULL; }
    return handle;
}

void curing_free(curing_ring *handle) {
    io_uring_queue_exit(&handle->ring);
    free(handle);
}

int curing_write(curing_ring *handle, int fd, const void *buffer, unsigned length, unsigned long long offset, unsigned long long tag) {
    struct io_uring_sqe *sqe = slot(handle);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_write(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return submit(handle);
}

int curing_read(curing_ring *handle, int fd, void *buffer, unsigned length, unsigned long long offset, unsigned long long tag) {
    struct io_uring_sqe *sqe = slot(handle);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_read(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return submit(handle);
}

int curing_fsync(curing_ring *handle, int fd, unsigned long long tag) {
    struct io_uring_sqe *sqe = slot(handle);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, 0);
    io_uring_sqe_set_data64(sqe, tag);
    return submit(handle);
}

int curing_wait(curing_ring *handle, unsigned long long *tag, int *result) {
    struct io_uring_cqe *cqe;
    int status = io_uring_wait_cqe(&handle->ring, &cqe);
    if (status < 0) return status;
    *tag = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    io_uring_cqe_seen(&handle->ring, cqe);
    return 0;
}
