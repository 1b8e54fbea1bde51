#include "db/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const query_sql[Q__COUNT] = {
    [Q_HAS_MIGRATIONS] = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    [Q_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [Q_MIGRATION_RECORD] = "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
    [Q_TENANT_ENSURE] = "INSERT INTO tenants (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
    [Q_ACTIVE_CALLS] = "SELECT COUNT(*) FROM calls WHERE ended_at IS NULL",
};

int store_fail(store_t *st, const char *what)
{
    snprintf(st->errbuf, sizeof(st->errbuf), "%s: %s", what, sqlite3_errmsg(st->db));
    return -1;
}

sqlite3_stmt *store_stmt(store_t *st, query_id_t q)
{
    return store_stmt_sql(st, q, query_sql[q]);
}

sqlite3_stmt *store_stmt_sql(store_t *st, query_id_t q, const char *sql)
{
    sqlite3_stmt *s = st->stmts[q];
    if (s == NULL) {
        if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
            store_fail(st, "prepare");
            return NULL;
        }
        st->stmts[q] = s;
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

int store_exec_stmt(store_t *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail(st, what);
}

static int run_q(store_t *st, query_id_t q, const char *sql, const char *what)
{
    sqlite3_stmt *s = store_stmt_sql(st, q, sql);
    return s == NULL ? -1 : store_exec_stmt(st, s, what);
}

int store_begin(store_t *st)
{
    if (!st->batching)
        return run_q(st, Q_BEGIN, "BEGIN IMMEDIATE", "begin");
    if (!st->batch_open) {
        if (run_q(st, Q_BEGIN, "BEGIN IMMEDIATE", "begin") != 0)
            return -1;
        st->batch_open = 1;
    }
    return run_q(st, Q_SAVEPOINT, "SAVEPOINT unit", "savepoint");
}

int store_commit(store_t *st)
{
    if (st->batching)
        return run_q(st, Q_RELEASE, "RELEASE unit", "release");
    return run_q(st, Q_COMMIT, "COMMIT", "commit");
}

void store_rollback(store_t *st)
{
    if (sqlite3_get_autocommit(st->db))
        return;
    char keep[sizeof(st->errbuf)];
    memcpy(keep, st->errbuf, sizeof(keep)); /* the caller reports the first failure, not this */
    if (st->batching) {
        /* undo this unit only; the batch's earlier units stay */
        if (run_q(st, Q_ROLLBACK_TO, "ROLLBACK TO unit", "rollback to") == 0)
            run_q(st, Q_RELEASE, "RELEASE unit", "release");
    } else {
        run_q(st, Q_ROLLBACK, "ROLLBACK", "rollback");
    }
    memcpy(st->errbuf, keep, sizeof(keep));
}

void store_set_batching(store_t *st, int on)
{
    st->batching = on;
}

int store_batch_pending(const store_t *st)
{
    return st->batch_open;
}

int store_batch_commit(store_t *st)
{
    if (!st->batch_open)
        return 0;
    st->batch_open = 0;
    if (run_q(st, Q_COMMIT, "COMMIT", "batch commit") == 0)
        return 0;
    char keep[sizeof(st->errbuf)];
    memcpy(keep, st->errbuf, sizeof(keep));
    if (!sqlite3_get_autocommit(st->db))
        run_q(st, Q_ROLLBACK, "ROLLBACK", "rollback");
    memcpy(st->errbuf, keep, sizeof(keep));
    return -1;
}

int store_checkpoint(store_t *st, int *wal_frames, int *checkpointed)
{
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, wal_frames, checkpointed);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : store_fail(st, "checkpoint");
}

void store_col_text(sqlite3_stmt *s, int col, char *dst, size_t dstsz)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = t == NULL ? 0 : (size_t)sqlite3_column_bytes(s, col);
    if (n >= dstsz)
        n = dstsz - 1;
    if (n > 0)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

json_t *store_col_json(sqlite3_stmt *s, int col)
{
    switch (sqlite3_column_type(s, col)) {
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(s, col));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(s, col));
    case SQLITE_NULL:
        return json_null();
    default: {
        const char *t = (const char *)sqlite3_column_text(s, col);
        json_t *v = json_stringn(t, (size_t)sqlite3_column_bytes(s, col));
        return v != NULL ? v : json_null(); /* not UTF-8: never break the whole answer */
    }
    }
}

json_t *store_row_json(sqlite3_stmt *s)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(s);
    for (int i = 0; i < n; i++)
        json_object_set_new(o, sqlite3_column_name(s, i), store_col_json(s, i));
    return o;
}

json_t *store_list_row(sqlite3_stmt *s)
{
    json_t *o = store_row_json(s);
    json_object_set(o, "id", json_object_get(o, "id_public"));
    json_object_del(o, "id_public");
    return o;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

const char *store_errmsg(store_t *st)
{
    return st->errbuf;
}

int store_open(const char *path, store_t **out, char *err, size_t errsz)
{
    store_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "DATABASE_PATH: cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        store_close(st);
        return -1;
    }
    sqlite3_busy_timeout(st->db, 5000);
    sqlite3_extended_result_codes(st->db, 1);
    char *msg = NULL;
    /* journal_mode answers a row; exec ignores it. WAL lets workers read while one writes. */
    if (sqlite3_exec(st->db, /* checkpoints (and their fsync) run off the workers' loops: store_checkpoint() */
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                     "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "DATABASE_PATH: cannot use %s: %s", path, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        store_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void store_close(store_t *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close_v2(st->db);
    free(st);
}

int store_schema_version(store_t *st)
{
    sqlite3_stmt *s = store_stmt(st, Q_HAS_MIGRATIONS);
    if (s == NULL)
        return -1;
    int has = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
    sqlite3_reset(s);
    if (!has)
        return 0;
    s = store_stmt(st, Q_SCHEMA_VERSION);
    if (s == NULL)
        return -1;
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    if (v < 0)
        store_fail(st, "schema version");
    sqlite3_reset(s);
    return v;
}

int store_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz)
{
    int count = 0;
    char *msg = NULL;
    if (applied != NULL)
        *applied = 0;
    /* IMMEDIATE: two processes starting at once serialize here instead of both migrating. */
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "migrations: cannot begin: %s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    /* inside the transaction, so a failed first start leaves the file as it was */
    if (sqlite3_exec(st->db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "migrations: %s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        goto rollback;
    }
    int current = store_schema_version(st);
    if (current < 0) {
        snprintf(err, errsz, "migrations: %s", st->errbuf);
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].version <= current)
            continue;
        if (sqlite3_exec(st->db, list[i].sql, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errsz, "migration %04d_%s failed: %s", list[i].version, list[i].name,
                     msg ? msg : sqlite3_errmsg(st->db));
            sqlite3_free(msg);
            msg = NULL;
            goto rollback;
        }
        sqlite3_stmt *s = store_stmt(st, Q_MIGRATION_RECORD);
        if (s == NULL) {
            snprintf(err, errsz, "migrations: %s", st->errbuf);
            goto rollback;
        }
        sqlite3_bind_int(s, 1, list[i].version);
        sqlite3_bind_text(s, 2, list[i].name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) {
            snprintf(err, errsz, "migration %04d_%s: cannot record: %s", list[i].version, list[i].name,
                     sqlite3_errmsg(st->db));
            goto rollback;
        }
        current = list[i].version;
        count++;
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "migrations: cannot commit: %s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        goto rollback;
    }
    if (applied != NULL)
        *applied = count;
    return 0;

rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int store_tenant_ensure(store_t *st, long id, const char *name)
{
    sqlite3_stmt *s = store_stmt(st, Q_TENANT_ENSURE);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_fail(st, "ensure tenant");
    return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

int store_active_calls(store_t *st, long *count)
{
    sqlite3_stmt *s = store_stmt(st, Q_ACTIVE_CALLS);
    if (s == NULL)
        return -1;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        store_fail(st, "active calls");
        sqlite3_reset(s);
        return -1;
    }
    *count = (long)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}
