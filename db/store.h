/*
 * store: the only way the server reaches its database. Every statement is prepared
 * (and cached per connection); no SQL lives outside db/.
 *
 * A store_t is one connection, owned by one thread (each worker opens its own).
 * store_open() returns a handle the caller releases with store_close(). Errors are
 * returned as -1 with a message written into the caller's err buffer (or, for calls
 * without one, available from store_errmsg() until the next call on that store).
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stddef.h>

typedef struct store store_t;

/* A schema migration: version must increase; sql may hold several statements. */
typedef struct store_migration {
    int version;
    const char *name;
    const char *sql;
} store_migration_t;

/* The migrations embedded from db/migrations at build time, in version order. */
extern const store_migration_t store_migrations[];
extern const size_t store_migrations_count;

/* Opens (creating when missing) the SQLite file in WAL mode with a busy timeout and foreign keys on. */
int store_open(const char *path, store_t **out, char *err, size_t errsz);
void store_close(store_t *st);
const char *store_errmsg(store_t *st);

/*
 * Applies the migrations not yet recorded in schema_migrations, all in one transaction:
 * on any failure nothing is applied and -1 is returned with the failing migration named.
 * *applied (may be NULL) receives how many ran.
 */
int store_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz);

/* Highest applied migration version, 0 for a fresh database, -1 on error. */
int store_schema_version(store_t *st);

/* Creates tenant `id` named `name` unless it exists; returns 1 when created, 0 when present, -1 on error. */
int store_tenant_ensure(store_t *st, long id, const char *name);

/* Cheap liveness probe that touches the schema: counts calls not yet ended. 0 on success. */
int store_active_calls(store_t *st, long *count);

#endif
