// liburing for storage's local disk I/O. Its helpers are static inline over kernel structures;
// these wrappers keep Swift to plain integers and pointers: one ring per process, requests
// tagged with a 64-bit number that comes back with their completion.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <liburing.h>

/// A ring of `entries` slots, or NULL with `*error` set (ENOSYS, EPERM where seccomp forbids it).
static inline struct io_uring *curing_new(unsigned entries, int *error) {
    struct io_uring *ring = malloc(sizeof(struct io_uring));
    if (ring == NULL) { *error = ENOMEM; return NULL; }
    int result = io_uring_queue_init(entries, ring, 0);
    if (result < 0) { free(ring); *error = -result; return NULL; }
    return ring;
}

static inline void curing_free(struct io_uring *ring) {
    io_uring_queue_exit(ring);
    free(ring);
}

static inline int curing_write(struct io_uring *ring, int fd, const void *buffer, unsigned length, unsigned long long offset, unsigned long long tag) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_write(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return io_uring_submit(ring);
}

static inline int curing_read(struct io_uring *ring, int fd, void *buffer, unsigned length, unsigned long long offset, unsigned long long tag) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_read(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return io_uring_submit(ring);
}

static inline int curing_fsync(struct io_uring *ring, int fd, unsigned long long tag) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, 0);
    io_uring_sqe_set_data64(sqe, tag);
    return io_uring_submit(ring);
}

/// Blocks for the next completion: its tag and result (bytes, or -errno).
static inline int curing_wait(struct io_uring *ring, unsigned long long *tag, int *result) {
    struct io_uring_cqe *cqe;
    int status = io_uring_wait_cqe(ring, &cqe);
    if (status < 0) return status;
    *tag = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return 0;
}
