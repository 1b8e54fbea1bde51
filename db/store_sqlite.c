/* The SQLite engine: one connection per worker, statements cached per connection, and the
 * worker's group commit (a batch transaction with a savepoint per unit). */
#include "db/store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dbstmt {
    store_t *st; /* first: store_db.c finds the engine through it */
    sqlite3_stmt *s;
};

typedef struct lite {
    sqlite3 *db;
    struct dbstmt stmts[Q__COUNT];
    int batching;   /* units join one transaction until store_batch_commit() */
    int batch_open; /* that transaction has begun */
} lite_t;

#define LITE(st) ((lite_t *)(st)->impl)

static dbstmt_t *lite_stmt(store_t *st, query_id_t q, const char *sql)
{
    lite_t *l = LITE(st);
    if ((int)q < 0) {
        dbstmt_t *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
            return NULL;
        }
        s->st = st;
        if (sqlite3_prepare_v2(l->db, sql, -1, &s->s, NULL) != SQLITE_OK) {
            store_fail(st, "prepare");
            free(s);
            return NULL;
        }
        return s;
    }
    dbstmt_t *s = &l->stmts[q];
    if (s->s == NULL) {
        if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL) != SQLITE_OK) {
            store_fail(st, "prepare");
            s->s = NULL;
            return NULL;
        }
        s->st = st;
    } else {
        sqlite3_reset(s->s);
        sqlite3_clear_bindings(s->s);
    }
    return s;
}

static void lite_bind_int(dbstmt_t *s, int i, long long v)
{
    sqlite3_bind_int64(s->s, i, v);
}

static void lite_bind_text(dbstmt_t *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s->s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s->s, i);
}

static int lite_step(dbstmt_t *s)
{
    int rc = sqlite3_step(s->s);
    return rc == SQLITE_ROW ? DB_ROW : rc == SQLITE_DONE ? DB_DONE : -1;
}

static void lite_reset(dbstmt_t *s)
{
    sqlite3_reset(s->s);
}

static void lite_finalize(dbstmt_t *s)
{
    sqlite3_finalize(s->s);
    free(s);
}

static long long lite_col_int(dbstmt_t *s, int col)
{
    return sqlite3_column_int64(s->s, col);
}

static const char *lite_col_text(dbstmt_t *s, int col, size_t *len)
{
    const char *t = (const char *)sqlite3_column_text(s->s, col);
    *len = t == NULL ? 0 : (size_t)sqlite3_column_bytes(s->s, col);
    return t;
}

static int lite_col_kind(dbstmt_t *s, int col)
{
    switch (sqlite3_column_type(s->s, col)) {
    case SQLITE_INTEGER:
        return DB_INT;
    case SQLITE_FLOAT:
        return DB_REAL;
    case SQLITE_NULL:
        return DB_NULL;
    default:
        return DB_TEXT;
    }
}

static int lite_col_count(dbstmt_t *s)
{
    return sqlite3_column_count(s->s);
}

static const char *lite_col_name(dbstmt_t *s, int col)
{
    return sqlite3_column_name(s->s, col);
}

static const char *lite_last_error(store_t *st)
{
    return sqlite3_errmsg(LITE(st)->db);
}

static int run_q(store_t *st, query_id_t q, const char *sql, const char *what)
{
    dbstmt_t *s = store_stmt_sql(st, q, sql);
    return s == NULL ? -1 : store_exec_stmt(st, s, what);
}

static int lite_begin(store_t *st)
{
    lite_t *l = LITE(st);
    if (!l->batching)
        return run_q(st, Q_BEGIN, "BEGIN IMMEDIATE", "begin");
    if (!l->batch_open) {
        if (run_q(st, Q_BEGIN, "BEGIN IMMEDIATE", "begin") != 0)
            return -1;
        l->batch_open = 1;
    }
    return run_q(st, Q_SAVEPOINT, "SAVEPOINT unit", "savepoint");
}

static int lite_commit(store_t *st)
{
    if (LITE(st)->batching)
        return run_q(st, Q_RELEASE, "RELEASE unit", "release");
    return run_q(st, Q_COMMIT, "COMMIT", "commit");
}

static void lite_rollback(store_t *st)
{
    if (sqlite3_get_autocommit(LITE(st)->db))
        return;
    if (LITE(st)->batching) {
        /* undo this unit only; the batch's earlier units stay */
        if (run_q(st, Q_ROLLBACK_TO, "ROLLBACK TO unit", "rollback to") == 0)
            run_q(st, Q_RELEASE, "RELEASE unit", "release");
    } else {
        run_q(st, Q_ROLLBACK, "ROLLBACK", "rollback");
    }
}

static int lite_lock_tenant(store_t *st, long tenant_id)
{
    (void)st, (void)tenant_id; /* BEGIN IMMEDIATE: one writer at a time already */
    return 0;
}

static void lite_set_batching(store_t *st, int on)
{
    LITE(st)->batching = on;
}

static int lite_batch_pending(const store_t *st)
{
    return LITE(st)->batch_open;
}

static int lite_batch_commit(store_t *st)
{
    lite_t *l = LITE(st);
    if (!l->batch_open)
        return 0;
    l->batch_open = 0;
    if (run_q(st, Q_COMMIT, "COMMIT", "batch commit") == 0)
        return 0;
    char keep[sizeof(st->errbuf)];
    memcpy(keep, st->errbuf, sizeof(keep));
    if (!sqlite3_get_autocommit(l->db))
        run_q(st, Q_ROLLBACK, "ROLLBACK", "rollback");
    memcpy(st->errbuf, keep, sizeof(keep));
    return -1;
}

static void lite_close(store_t *st)
{
    lite_t *l = LITE(st);
    if (l == NULL)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(l->stmts[i].s);
    sqlite3_close_v2(l->db);
    free(l);
    st->impl = NULL;
}

const store_engine_t store_sqlite_engine = {
    .name = "sqlite",
    .stmt = lite_stmt,
    .bind_int = lite_bind_int,
    .bind_text = lite_bind_text,
    .step = lite_step,
    .reset = lite_reset,
    .finalize = lite_finalize,
    .col_int = lite_col_int,
    .col_text = lite_col_text,
    .col_kind = lite_col_kind,
    .col_count = lite_col_count,
    .col_name = lite_col_name,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .lock_tenant = lite_lock_tenant,
    .last_error = lite_last_error,
    .set_batching = lite_set_batching,
    .batch_pending = lite_batch_pending,
    .batch_commit = lite_batch_commit,
    .close = lite_close,
};

int store_checkpoint(store_t *st, int *wal_frames, int *checkpointed)
{
    if (st->e != &store_sqlite_engine)
        return 0; /* PostgreSQL checkpoints itself */
    int rc = sqlite3_wal_checkpoint_v2(LITE(st)->db, NULL, SQLITE_CHECKPOINT_PASSIVE, wal_frames, checkpointed);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : store_fail(st, "checkpoint");
}

int store_sqlite_open(store_t *st, const char *path, char *err, size_t errsz)
{
    lite_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    st->impl = l;
    int rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "DATABASE_PATH: cannot open %s: %s", path,
                 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        lite_close(st);
        return -1;
    }
    sqlite3_busy_timeout(l->db, 5000);
    sqlite3_extended_result_codes(l->db, 1);
    char *msg = NULL;
    /* journal_mode answers a row; exec ignores it. WAL lets workers read while one writes. */
    if (sqlite3_exec(l->db, /* checkpoints (and their fsync) run off the workers' loops: store_checkpoint() */
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                     "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "DATABASE_PATH: cannot use %s: %s", path, msg ? msg : sqlite3_errmsg(l->db));
        sqlite3_free(msg);
        lite_close(st);
        return -1;
    }
    return 0;
}

static int lite_exec(store_t *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(LITE(st)->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(st->errbuf, sizeof(st->errbuf), "%s", msg ? msg : sqlite3_errmsg(LITE(st)->db));
    sqlite3_free(msg);
    return -1;
}

int store_sqlite_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz)
{
    if (applied != NULL)
        *applied = 0;
    /* IMMEDIATE: two processes starting at once serialize here instead of both migrating. */
    if (lite_exec(st, "BEGIN IMMEDIATE") != 0) {
        snprintf(err, errsz, "migrations: cannot begin: %s", st->errbuf);
        return -1;
    }
    /* inside the transaction, so a failed first start leaves the file as it was */
    if (lite_exec(st, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                      " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))") != 0) {
        snprintf(err, errsz, "migrations: %s", st->errbuf);
        goto rollback;
    }
    int current = store_schema_version(st);
    if (current < 0) {
        snprintf(err, errsz, "migrations: %s", st->errbuf);
        goto rollback;
    }
    if (store_migrate_apply(st, list, n, current, lite_exec, applied, err, errsz) != 0)
        goto rollback;
    if (lite_exec(st, "COMMIT") != 0) {
        snprintf(err, errsz, "migrations: cannot commit: %s", st->errbuf);
        goto rollback;
    }
    return 0;

rollback:
    if (applied != NULL)
        *applied = 0;
    sqlite3_exec(LITE(st)->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}
