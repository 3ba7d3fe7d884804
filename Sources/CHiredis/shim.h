// hiredis (Debian's libhiredis): the RESP reply reader and command formatting. The I/O is ours
// (swift-nio), so no call here ever blocks a thread.
#include <hiredis/hiredis.h>
