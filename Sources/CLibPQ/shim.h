// libpq (Debian's libpq-dev), for one thing postgres-nio cannot do: the streaming replication
// protocol that carries a logical slot's changes. Used non-blocking, on a thread of its own.
#include <postgresql/libpq-fe.h>
