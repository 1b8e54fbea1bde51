/* Private to db/: the connection struct and the prepared-statement cache. */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include "db/store.h"

#include <sqlite3.h>

/* Every statement the store runs; SQL text is in store_sqlite.c's table, same order. */
typedef enum {
    Q_HAS_MIGRATIONS,
    Q_SCHEMA_VERSION,
    Q_MIGRATION_RECORD,
    Q_TENANT_ENSURE,
    Q_ACTIVE_CALLS,
    Q__COUNT
} query_id_t;

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[Q__COUNT];
    char errbuf[256];
};

/* Returns the cached statement, reset and with bindings cleared, or NULL (errmsg set). */
sqlite3_stmt *store_stmt(store_t *st, query_id_t q);
int store_fail(store_t *st, const char *what);

#endif
