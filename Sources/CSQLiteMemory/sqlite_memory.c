#include "sqlite_memory.h"

// The SQLite linked is the copy sqlite-nio builds, its symbols prefixed `sqlite_nio_`. Its header
// is not exported to this package, so the two prototypes and the two option numbers are repeated
// here from SQLite's C API, where they are fixed.
typedef struct sqlite3 sqlite3;
int sqlite_nio_sqlite3_config(int option, ...);
int sqlite_nio_sqlite3_db_config(sqlite3 *database, int option, ...);

enum {
    CONFIG_PAGECACHE = 7,        // SQLITE_CONFIG_PAGECACHE: void *buffer, int size, int lines
    DBCONFIG_LOOKASIDE = 1001,   // SQLITE_DBCONFIG_LOOKASIDE: void *buffer, int size, int slots
};

int sqlite_memory_no_initial_page_bulk(void) {
    return sqlite_nio_sqlite3_config(CONFIG_PAGECACHE, (void *)0, 0, 0);
}

int sqlite_memory_set_lookaside(void *database, int slotSize, int slots) {
    return sqlite_nio_sqlite3_db_config((sqlite3 *)database, DBCONFIG_LOOKASIDE, (void *)0, slotSize, slots);
}
