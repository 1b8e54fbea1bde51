/* The PostgreSQL engine's migrations (under an advisory lock) and the live feed's LISTEN. */
#include "db/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pg_exec_text(store_t *st, const char *sql)
{
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL)
        return -1;
    if (pg_exec_simple(st, s, sql, "exec") != 0) {
        snprintf(st->errbuf, sizeof(st->errbuf), "%s", s->err);
        return -1;
    }
    return 0;
}

int store_pg_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz)
{
    if (applied != NULL)
        *applied = 0;
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL || pg_conn_acquire(PG(st), s) == NULL) {
        snprintf(err, errsz, "migrations: %s", s != NULL ? s->err : "out of memory");
        return -1;
    }
    /* instances starting together: one migrates, the others wait here and then find it done.
     * A session lock (not a transaction's) so the schema table's creation is covered too. */
    int rc = -1;
    if (pg_exec_text(st, "SELECT pg_advisory_lock(7482005261)") != 0) {
        snprintf(err, errsz, "migrations: lock: %s", st->errbuf);
        goto out;
    }
    if (pg_exec_text(st, "BEGIN; CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT to_char(statement_timestamp() AT "
                         "TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))") != 0) {
        snprintf(err, errsz, "migrations: %s", st->errbuf);
        goto unlock;
    }
    s->in_unit = 1; /* statements below use this connection and its transaction */
    int current = store_schema_version(st);
    if (current < 0) {
        snprintf(err, errsz, "migrations: %s", st->errbuf);
        goto rollback;
    }
    if (store_migrate_apply(st, list, n, current, pg_exec_text, applied, err, errsz) != 0)
        goto rollback;
    if (pg_exec_text(st, "COMMIT") != 0) {
        snprintf(err, errsz, "migrations: cannot commit: %s", st->errbuf);
        goto rollback;
    }
    rc = 0;
    goto unlock;
rollback:
    if (applied != NULL)
        *applied = 0;
    pg_exec_text(st, "ROLLBACK");
unlock:
    s->in_unit = 0;
    pg_exec_text(st, "SELECT pg_advisory_unlock(7482005261)");
out:;
    pgconn_t *c = s->conn;
    s->conn = NULL;
    if (c != NULL)
        pg_conn_release(PG(st), c);
    return rc;
}

/* ---- the live feed: which calls changed, from any instance ---- */

int store_pg_live_listen(store_t *st)
{
    pg_t *pg = PG(st);
    if (pg->listen != NULL && !pg->listen->broken && PQstatus(pg->listen->c) == CONNECTION_OK)
        return 0;
    if (pg->listen != NULL) {
        pg_conn_close(pg->listen);
        pg->listen = NULL;
    }
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL)
        return -1;
    pg->maxconns++; /* not one of the pool's */
    pgconn_t *c = pg_conn_new(pg, s);
    pg->maxconns--;
    if (c == NULL) {
        snprintf(st->errbuf, sizeof(st->errbuf), "live: %.200s", s->err);
        return -1;
    }
    c->listener = 1;
    pgconn_t *held = s->conn;
    s->conn = c;
    int rc = pg_exec_simple(st, s, "LISTEN sb_live", "listen");
    s->conn = held;
    if (rc != 0) {
        snprintf(st->errbuf, sizeof(st->errbuf), "live: %.200s", s->err);
        pg_conn_close(c);
        return -1;
    }
    if (c->poll != NULL)
        uv_unref((uv_handle_t *)c->poll);
    pg->listen = c;
    return 1; /* new: what was notified before it listened is unknown */
}

int store_pg_live_take(store_t *st, int max, char *ids, size_t cap)
{
    pg_t *pg = PG(st);
    int rc = store_pg_live_listen(st);
    if (rc != 0)
        return rc; /* -1, or 1: listening anew (readers reload) */
    PGconn *c = pg->listen->c;
    if (!PQconsumeInput(c)) {
        pg->listen->broken = 1;
        return 1;
    }
    size_t len = 0;
    int n = 0, over = 0;
    ids[0] = '\0';
    PGnotify *note;
    while ((note = PQnotifies(c)) != NULL) {
        char *end = NULL;
        long id = strtol(note->extra, &end, 10);
        if (end != note->extra && !over) {
            char one[24];
            int k = snprintf(one, sizeof(one), "%s%ld", n ? "," : "", id);
            /* the same call twice (two transactions) is asked for once: ANY() folds it */
            if (n >= max || len + (size_t)k + 3 > cap)
                over = 1;
            else
                memcpy(ids + len, one, (size_t)k + 1), len += (size_t)k, n++;
        }
        PQfreemem(note);
    }
    return over ? 1 : 0;
}
