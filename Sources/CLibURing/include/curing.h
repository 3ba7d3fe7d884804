// liburing for storage's local disk I/O, behind an opaque handle: liburing's own headers carry
// kernel structures that clash with the ones Swift's other modules import, so they stay inside
// curing.c. One ring per process; requests are tagged with a 64-bit number that comes back with
// their completion.
#ifndef CURING_H
#define CURING_H

typedef struct curing_ring curing_ring;

/// A ring of `entries` slots, or NULL with `*error` set (ENOSYS, EPERM where seccomp forbids it).
curing_ring *curing_new(unsigned entries, int *error);
void curing_free(curing_ring *ring);
/// Each submits one request; 1 (submitted) or -errno.
int curing_write(curing_ring *ring, int fd, const void *buffer, unsigned length, unsigned long long offset, unsigned long long tag);
int curing_read(curing_ring *ring, int fd, void *buffer, unsigned length, unsigned long long offset, unsigned long long tag);
int curing_fsync(curing_ring *ring, int fd, unsigned long long tag);
/// Blocks for the next completion: its tag and result (bytes, or -errno). 0, or -errno.
int curing_wait(curing_ring *ring, unsigned long long *tag, int *result);

#endif
