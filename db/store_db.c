/* What both engines share: opening by setting, statements through the engine, rows as JSON,
 * and the few operations written once in portable SQL. */
#include "db/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const query_sql[Q__COUNT] = {
    [Q_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [Q_MIGRATION_RECORD] = "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
    [Q_TENANT_ENSURE] = "INSERT INTO tenants (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING RETURNING id",
    [Q_ACTIVE_CALLS] = "SELECT COUNT(*) FROM calls WHERE ended_at IS NULL",
    /* PostgreSQL only: identity values continue above explicitly numbered tenants */
    [Q_TENANT_SEQ] = "SELECT setval(pg_get_serial_sequence('tenants', 'id'), (SELECT MAX(id) FROM tenants))",
};

int store_is_url(const char *target)
{
    return strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0;
}

int store_open(const char *target, store_t **out, char *err, size_t errsz)
{
    store_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    st->e = store_is_url(target) ? &store_pg_engine : &store_sqlite_engine;
    int rc =
        st->e == &store_pg_engine ? store_pg_open(st, target, err, errsz) : store_sqlite_open(st, target, err, errsz);
    if (rc != 0) {
        free(st);
        return -1;
    }
    *out = st;
    return 0;
}

void store_close(store_t *st)
{
    if (st == NULL)
        return;
    store_defer_free(st);
    st->e->close(st);
    free(st);
}

const char *store_errmsg(store_t *st)
{
    return st->errbuf;
}

const char *store_engine_name(const store_t *st)
{
    return st->e->name;
}

dbstmt_t *store_stmt(store_t *st, query_id_t q)
{
    return st->e->stmt(st, q, query_sql[q]);
}

dbstmt_t *store_stmt_sql(store_t *st, query_id_t q, const char *sql)
{
    return st->e->stmt(st, q, sql);
}

dbstmt_t *store_stmt_once(store_t *st, const char *sql)
{
    return st->e->stmt(st, (query_id_t)-1, sql);
}

/* the statement knows its store: its first member is the store pointer (both engines) */
#define ENGINE(s) ((*(store_t **)(s))->e)

void db_bind_int(dbstmt_t *s, int i, long long v)
{
    ENGINE(s)->bind_int(s, i, v);
}

void db_bind_text(dbstmt_t *s, int i, const char *v)
{
    ENGINE(s)->bind_text(s, i, v);
}

void db_bind_null(dbstmt_t *s, int i)
{
    ENGINE(s)->bind_text(s, i, NULL);
}

int db_step(dbstmt_t *s)
{
    return ENGINE(s)->step(s);
}

void db_reset(dbstmt_t *s)
{
    ENGINE(s)->reset(s);
}

void db_finalize(dbstmt_t *s)
{
    if (s != NULL)
        ENGINE(s)->finalize(s);
}

long long db_col_int(dbstmt_t *s, int col)
{
    return ENGINE(s)->col_int(s, col);
}

const char *db_col_text(dbstmt_t *s, int col)
{
    size_t n;
    return ENGINE(s)->col_text(s, col, &n);
}

int db_col_count(dbstmt_t *s)
{
    return ENGINE(s)->col_count(s);
}

int store_exec_stmt(store_t *st, dbstmt_t *s, const char *what)
{
    int rc = db_step(s);
    db_reset(s);
    if (rc < 0)
        return store_fail(st, what);
    return 0;
}

int store_exec_id(store_t *st, dbstmt_t *s, const char *what, long *id)
{
    int rc = db_step(s);
    *id = rc == DB_ROW ? (long)db_col_int(s, 0) : 0;
    db_reset(s);
    if (rc < 0)
        return store_fail(st, what);
    return 0;
}

int store_fail(store_t *st, const char *what)
{
    snprintf(st->errbuf, sizeof(st->errbuf), "%s: %s", what, st->e->last_error(st));
    return -1;
}

void store_set_batching(store_t *st, int on)
{
    st->e->set_batching(st, on);
}

int store_batch_pending(const store_t *st)
{
    return st->e->batch_pending(st);
}

uint64_t store_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void store_commit_done(store_t *st, uint64_t t0)
{
    if (st->on_commit != NULL)
        st->on_commit(st->on_commit_arg, store_clock_ns() - t0);
}

void store_on_commit(store_t *st, store_commit_fn fn, void *arg)
{
    st->on_commit = fn;
    st->on_commit_arg = arg;
}

int store_batch_commit(store_t *st)
{
    /* one clock read per group commit, not per request */
    if (st->on_commit == NULL || !store_batch_pending(st))
        return st->e->batch_commit(st);
    uint64_t t0 = store_clock_ns();
    int rc = st->e->batch_commit(st);
    if (rc == 0)
        store_commit_done(st, t0);
    return rc;
}

int store_begin(store_t *st)
{
    return st->e->begin(st);
}

int store_commit(store_t *st)
{
    return st->e->commit(st);
}

void store_rollback(store_t *st)
{
    char keep[sizeof(st->errbuf)];
    memcpy(keep, st->errbuf, sizeof(keep)); /* the caller reports the first failure, not this */
    st->e->rollback(st);
    memcpy(st->errbuf, keep, sizeof(keep));
}

int store_lock_tenant(store_t *st, long tenant_id)
{
    return st->e->lock_tenant(st, tenant_id);
}

void store_col_text(dbstmt_t *s, int col, char *dst, size_t dstsz)
{
    size_t n = 0;
    const char *t = ENGINE(s)->col_text(s, col, &n);
    if (t == NULL)
        n = 0;
    if (n >= dstsz)
        n = dstsz - 1;
    if (n > 0)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

json_t *store_col_json(dbstmt_t *s, int col)
{
    const store_engine_t *e = ENGINE(s);
    switch (e->col_kind(s, col)) {
    case DB_INT:
        return json_integer((json_int_t)e->col_int(s, col));
    case DB_REAL: {
        size_t n;
        return json_real(strtod(e->col_text(s, col, &n), NULL));
    }
    case DB_NULL:
        return json_null();
    default: {
        size_t n = 0;
        const char *t = e->col_text(s, col, &n);
        json_t *v = json_stringn(t, n);
        return v != NULL ? v : json_null(); /* not UTF-8: never break the whole answer */
    }
    }
}

json_t *store_row_json(dbstmt_t *s)
{
    json_t *o = json_object();
    int n = db_col_count(s);
    for (int i = 0; i < n; i++)
        json_object_set_new(o, ENGINE(s)->col_name(s, i), store_col_json(s, i));
    return o;
}

json_t *store_list_row(dbstmt_t *s)
{
    json_t *o = store_row_json(s);
    json_object_set(o, "id", json_object_get(o, "id_public"));
    json_object_del(o, "id_public");
    return o;
}

int store_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz)
{
    return store_is_pg(st) ? store_pg_migrate(st, list, n, applied, err, errsz)
                           : store_sqlite_migrate(st, list, n, applied, err, errsz);
}

int store_migrate_embedded(store_t *st, int *applied, char *err, size_t errsz)
{
    return store_is_pg(st) ? store_migrate(st, store_migrations_pg, store_migrations_pg_count, applied, err, errsz)
                           : store_migrate(st, store_migrations, store_migrations_count, applied, err, errsz);
}

/* Applies what is missing after `current`, recording each; inside the engine's migration lock and
 * transaction. exec runs a migration's whole text. */
int store_migrate_apply(store_t *st, const store_migration_t *list, size_t n, int current,
                        int (*exec)(store_t *st, const char *sql), int *applied, char *err, size_t errsz)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].version <= current)
            continue;
        if (exec(st, list[i].sql) != 0) {
            snprintf(err, errsz, "migration %04d_%s failed: %s", list[i].version, list[i].name, st->errbuf);
            return -1;
        }
        dbstmt_t *s = store_stmt(st, Q_MIGRATION_RECORD);
        if (s == NULL) {
            snprintf(err, errsz, "migrations: %s", st->errbuf);
            return -1;
        }
        db_bind_int(s, 1, list[i].version);
        db_bind_text(s, 2, list[i].name);
        if (store_exec_stmt(st, s, "record") != 0) {
            snprintf(err, errsz, "migration %04d_%s: cannot record: %s", list[i].version, list[i].name, st->errbuf);
            return -1;
        }
        current = list[i].version;
        count++;
    }
    if (applied != NULL)
        *applied = count;
    return 0;
}

/* 1 when schema_migrations exists, 0 when not, -1 error. */
static int has_migrations(store_t *st)
{
    dbstmt_t *s =
        store_stmt_sql(st, Q_HAS_MIGRATIONS,
                       store_is_pg(st) ? "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                                         "current_schema() AND table_name = 'schema_migrations'"
                                       : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                         "name = 'schema_migrations'");
    if (s == NULL)
        return -1;
    int rc = db_step(s);
    int has = rc == DB_ROW && db_col_int(s, 0) > 0;
    db_reset(s);
    return rc == DB_ROW ? has : store_fail(st, "schema version");
}

int store_schema_version(store_t *st)
{
    int has = has_migrations(st);
    if (has <= 0)
        return has;
    dbstmt_t *s = store_stmt(st, Q_SCHEMA_VERSION);
    if (s == NULL)
        return -1;
    int rc = db_step(s);
    int v = rc == DB_ROW ? (int)db_col_int(s, 0) : -1;
    db_reset(s);
    return v;
}

int store_tenant_ensure(store_t *st, long id, const char *name)
{
    dbstmt_t *s = store_stmt(st, Q_TENANT_ENSURE);
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, id);
    db_bind_text(s, 2, name);
    long got;
    if (store_exec_id(st, s, "ensure tenant", &got) != 0)
        return -1;
    /* a tenant created with its id: generated ids must continue above it (PostgreSQL's identity) */
    if (got != 0 && store_is_pg(st)) {
        s = store_stmt(st, Q_TENANT_SEQ);
        if (s == NULL || store_exec_stmt(st, s, "tenant ids") != 0)
            return -1;
    }
    return got != 0 ? 1 : 0;
}

int store_active_calls(store_t *st, long *count)
{
    dbstmt_t *s = store_stmt(st, Q_ACTIVE_CALLS);
    if (s == NULL)
        return -1;
    int rc = db_step(s);
    if (rc != DB_ROW) {
        store_fail(st, "active calls");
        db_reset(s);
        return -1;
    }
    *count = (long)db_col_int(s, 0);
    db_reset(s);
    return 0;
}
