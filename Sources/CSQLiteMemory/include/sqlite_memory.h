// SQLite's memory settings that Swift cannot call: sqlite3_config and sqlite3_db_config are
// variadic C functions, which Swift does not import.
#ifndef SQLITE_MEMORY_H
#define SQLITE_MEMORY_H

/// Turns off the page cache's initial bulk allocation (SQLITE_CONFIG_PAGECACHE with no buffer and
/// no lines): each connection then takes page buffers one at a time as it reads, instead of ~20
/// pages up front. Only before SQLite initializes; SQLite's result code.
int sqlite_memory_no_initial_page_bulk(void);

/// Sets a connection's lookaside (SQLITE_DBCONFIG_LOOKASIDE, SQLite allocating the buffer);
/// 0 slots turns it off. SQLite's result code (BUSY while lookaside memory is in use).
int sqlite_memory_set_lookaside(void *database, int slotSize, int slots);

#endif
