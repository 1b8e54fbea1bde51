/* The PostgreSQL engine (libpq). Attached to a worker's loop, every query is sent with libpq's
 * asynchronous API and the calling fiber suspended until a uv_poll on the connection's socket
 * has the result, so the loop never waits on a round trip; unattached (start-up, tools, tests)
 * it waits in poll(2). A pool of connections per worker: a unit (BEGIN..COMMIT) holds one, a
 * lone statement only while its result is fetched. Statement state lives in a session per
 * fiber, since many fibers use one store_t at once. */
#include "db/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SQLite's text to PostgreSQL's: ?N -> $N, SQLite's clock -> sb_now() (migration 0001 defines
 * it with the same text form). Quoted text is copied as it is. */
static char *rewrite(const char *sql, int *nparams)
{
    static const char lite_now[] = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    size_t n = strlen(sql);
    char *out = malloc(n + 1), *o = out;
    if (out == NULL)
        return NULL;
    int maxp = 0, quoted = 0;
    for (const char *p = sql; *p != '\0';) {
        if (!quoted && strncmp(p, lite_now, sizeof(lite_now) - 1) == 0) {
            memcpy(o, "sb_now()", 8), o += 8, p += sizeof(lite_now) - 1;
            continue;
        }
        if (*p == '\'')
            quoted = !quoted;
        if (!quoted && *p == '?' && p[1] >= '0' && p[1] <= '9') {
            int v = (int)strtol(p + 1, (char **)&p, 10);
            if (v > maxp)
                maxp = v;
            o += sprintf(o, "$%d", v); /* "$N" is no longer than "?N" */
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    *nparams = maxp;
    return out;
}

/* ---- statements ---- */

static dbstmt_t *pg_stmt(store_t *st, query_id_t q, const char *sql)
{
    pg_t *pg = PG(st);
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL) {
        snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
        return NULL;
    }
    dbstmt_t *d;
    if ((int)q < 0) {
        d = calloc(1, sizeof(*d));
        if (d == NULL || (d->sql = rewrite(sql, &d->nparams)) == NULL) {
            free(d);
            snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
            return NULL;
        }
        d->q = -1;
    } else {
        if (pg->sql[q] == NULL && (pg->sql[q] = rewrite(sql, &pg->nparams[q])) == NULL) {
            snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
            return NULL;
        }
        d = s->stmts[q];
        if (d == NULL && (d = s->stmts[q] = calloc(1, sizeof(*d))) == NULL) {
            snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
            return NULL;
        }
        pg_stmt_clear(d);
        d->q = (int)q;
        d->nparams = pg->nparams[q];
    }
    if (d->nparams > PG_MAX_PARAMS) {
        snprintf(st->errbuf, sizeof(st->errbuf), "prepare: %d parameters", d->nparams);
        if (d->q < 0)
            db_finalize(d);
        return NULL;
    }
    d->st = st;
    d->sess = s;
    memset(d->set, 0, sizeof(d->set));
    return d;
}

static void pg_bind_int(dbstmt_t *d, int i, long long v)
{
    if (i < 1 || i > PG_MAX_PARAMS)
        return;
    snprintf(d->num[i - 1], sizeof(d->num[0]), "%lld", v);
    d->vals[i - 1] = d->num[i - 1];
    d->set[i - 1] = 2;
}

static void pg_bind_text(dbstmt_t *d, int i, const char *v)
{
    if (i < 1 || i > PG_MAX_PARAMS)
        return;
    d->vals[i - 1] = v;
    d->set[i - 1] = v != NULL ? 1 : 0;
}

static int execute(dbstmt_t *d)
{
    store_t *st = d->st;
    pg_t *pg = PG(st);
    pgsess_t *s = d->sess;
    int held = s->conn != NULL;
    pgconn_t *c = pg_conn_acquire(pg, s);
    if (c == NULL)
        return -1;
    const char *vals[PG_MAX_PARAMS];
    Oid types[PG_MAX_PARAMS];
    for (int i = 0; i < d->nparams; i++) {
        vals[i] = d->set[i] ? d->vals[i] : NULL;
        types[i] = d->set[i] == 2 ? 20 /* int8 */ : d->set[i] == 1 ? 25 /* text */ : 0;
    }
    int ok;
    const char *sql = d->q < 0 ? d->sql : pg->sql[d->q];
    if (d->q < 0) {
        ok = PQsendQueryParams(c->c, sql, d->nparams, types, vals, NULL, NULL, 0);
    } else {
        char name[16];
        snprintf(name, sizeof(name), "q%d", d->q);
        ok = 1;
        /* a parameter bound NULL the first time has no type; where PostgreSQL cannot tell it from
         * its use (?1 IS NULL), it is text, and the statement is prepared again */
        int in_tx = !c->prepared[d->q] && PQtransactionStatus(c->c) == PQTRANS_INTRANS;
        if (in_tx && pg_exec_simple(st, s, "SAVEPOINT sb_prepare", "prepare") != 0)
            ok = 0; /* a failed prepare must not abort the unit's transaction */
        for (int tries = 0; !c->prepared[d->q] && ok && tries <= d->nparams; tries++) {
            ok = PQsendPrepare(c->c, name, sql, d->nparams, types);
            PGresult *r = ok ? pg_await(s, c, "prepare") : NULL;
            PQclear(r);
            if (r != NULL) {
                c->prepared[d->q] = 1;
                break;
            }
            if (in_tx && pg_exec_simple(st, s, "ROLLBACK TO SAVEPOINT sb_prepare", "prepare") != 0)
                break;
            static const char untyped[] = "could not determine data type of parameter $";
            const char *at = strstr(s->err, untyped);
            int n = at != NULL ? atoi(at + sizeof(untyped) - 1) : 0;
            if (n < 1 || n > d->nparams || types[n - 1] != 0 || c->broken)
                ok = 0;
            else
                types[n - 1] = 25;
        }
        if (ok && in_tx && pg_exec_simple(st, s, "RELEASE SAVEPOINT sb_prepare", "prepare") != 0)
            ok = 0;
        if (ok)
            ok = PQsendQueryPrepared(c->c, name, d->nparams, vals, NULL, NULL, 0);
    }
    PGresult *r = NULL;
    if (ok)
        r = pg_await(s, c, "query");
    else if (s->err[0] == '\0' || PQstatus(c->c) != CONNECTION_OK)
        pg_fail(s, "query", PQerrorMessage(c->c));
    if (!held) {
        s->conn = NULL;
        pg_conn_release(pg, c);
    }
    if (r == NULL)
        return -1;
    d->res = r;
    d->executed = 1;
    d->row = -1;
    d->nrows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    return 0;
}

static int pg_step(dbstmt_t *d)
{
    if (!d->executed) {
        d->sess->err[0] = '\0';
        if (execute(d) != 0)
            return -1;
    }
    if (d->row + 1 < d->nrows) {
        d->row++;
        return DB_ROW;
    }
    d->row = d->nrows;
    return DB_DONE;
}

static void pg_reset(dbstmt_t *d)
{
    pg_stmt_clear(d);
}

static void pg_finalize(dbstmt_t *d)
{
    pg_stmt_clear(d);
    if (d->q < 0) {
        free(d->sql);
        free(d);
    }
}

static int cell_ok(dbstmt_t *d, int col)
{
    return d->res != NULL && d->row >= 0 && d->row < d->nrows && col < PQnfields(d->res) &&
           !PQgetisnull(d->res, d->row, col);
}

static long long pg_col_int(dbstmt_t *d, int col)
{
    if (!cell_ok(d, col))
        return 0;
    const char *v = PQgetvalue(d->res, d->row, col);
    if (PQftype(d->res, col) == 16) /* bool */
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static const char *pg_col_text(dbstmt_t *d, int col, size_t *len)
{
    if (!cell_ok(d, col)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(d->res, d->row, col);
    return PQgetvalue(d->res, d->row, col);
}

static int pg_col_kind(dbstmt_t *d, int col)
{
    if (!cell_ok(d, col))
        return DB_NULL;
    switch (PQftype(d->res, col)) {
    case 16: /* bool */
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
        return DB_INT;
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 1700: /* numeric */
        return DB_REAL;
    default:
        return DB_TEXT;
    }
}

static int pg_col_count(dbstmt_t *d)
{
    return d->res != NULL ? PQnfields(d->res) : 0;
}

static const char *pg_col_name(dbstmt_t *d, int col)
{
    return PQfname(d->res, col);
}

static const char *pg_last_error(store_t *st)
{
    pgsess_t *s = pg_sess_get(st);
    return s != NULL ? s->err : "out of memory";
}

/* ---- units ---- */

static int pg_begin(store_t *st)
{
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL)
        return -1;
    if (s->in_unit) { /* nested unit: part of the open one */
        s->in_unit++;
        return 0;
    }
    if (pg_conn_acquire(PG(st), s) == NULL || pg_exec_simple(st, s, "BEGIN", "begin") != 0) {
        if (s->conn != NULL) {
            pgconn_t *c = s->conn;
            s->conn = NULL;
            pg_conn_release(PG(st), c);
        }
        snprintf(st->errbuf, sizeof(st->errbuf), "begin: %.200s", s->err);
        return -1;
    }
    s->in_unit = 1;
    return 0;
}

static void unit_end(store_t *st, pgsess_t *s)
{
    s->in_unit = 0;
    pgconn_t *c = s->conn;
    s->conn = NULL;
    if (c != NULL)
        pg_conn_release(PG(st), c);
}

static int pg_commit(store_t *st)
{
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL || !s->in_unit)
        return -1;
    if (--s->in_unit > 0)
        return 0;
    s->in_unit = 1;
    uint64_t t0 = st->on_commit != NULL ? store_clock_ns() : 0;
    int rc = pg_exec_simple(st, s, "COMMIT", "commit");
    if (rc == 0)
        store_commit_done(st, t0);
    if (rc != 0)
        snprintf(st->errbuf, sizeof(st->errbuf), "commit: %.200s", s->err);
    unit_end(st, s); /* a failed COMMIT leaves no transaction open */
    return rc;
}

static void pg_rollback(store_t *st)
{
    pgsess_t *s = pg_sess_get(st);
    if (s == NULL || !s->in_unit)
        return;
    if (s->conn != NULL && !s->conn->broken)
        pg_exec_simple(st, s, "ROLLBACK", "rollback");
    unit_end(st, s);
}

static int pg_lock_tenant(store_t *st, long tenant_id)
{
    dbstmt_t *d = store_stmt_sql(st, Q_TENANT_LOCK, "SELECT id FROM tenants WHERE id = ?1 FOR UPDATE");
    if (d == NULL)
        return -1;
    db_bind_int(d, 1, tenant_id);
    return store_exec_stmt(st, d, "lock tenant");
}

static void pg_set_batching(store_t *st, int on)
{
    (void)st, (void)on; /* each unit is its own transaction; PostgreSQL groups the commits' flushes */
}

static int pg_batch_pending(const store_t *st)
{
    (void)st;
    return 0;
}

static int pg_batch_commit(store_t *st)
{
    (void)st;
    return 0;
}

static void pg_close(store_t *st)
{
    pg_t *pg = PG(st);
    if (pg == NULL)
        return;
    for (pgsess_t *s = pg->sessions, *n; s != NULL; s = n) {
        n = s->next;
        pg_sess_free(s);
    }
    for (pgsess_t *s = pg->spare, *n; s != NULL; s = n) {
        n = s->next;
        pg_sess_free(s);
    }
    while (pg->all != NULL) /* idle, held (store_abort_waits() ended their waits) and the listener */
        pg_conn_close(pg->all);
    for (int i = 0; i < Q__COUNT; i++)
        free(pg->sql[i]);
    free(pg->url);
    free(pg);
    st->impl = NULL;
}

const store_engine_t store_pg_engine = {
    .name = "postgresql",
    .stmt = pg_stmt,
    .bind_int = pg_bind_int,
    .bind_text = pg_bind_text,
    .step = pg_step,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_kind = pg_col_kind,
    .col_count = pg_col_count,
    .col_name = pg_col_name,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .lock_tenant = pg_lock_tenant,
    .last_error = pg_last_error,
    .set_batching = pg_set_batching,
    .batch_pending = pg_batch_pending,
    .batch_commit = pg_batch_commit,
    .close = pg_close,
};

int store_pg_open(store_t *st, const char *url, char *err, size_t errsz)
{
    pg_t *pg = calloc(1, sizeof(*pg));
    if (pg == NULL || (pg->url = strdup(url)) == NULL) {
        free(pg);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    pg->maxconns = 1;
    st->impl = pg;
    return 0;
}

int store_attach(store_t *st, uv_loop_t *loop, const store_sched_t *sched, int connections)
{
    if (!store_is_pg(st))
        return 0;
    pg_t *pg = PG(st);
    if (pg->nconns > 0) {
        snprintf(st->errbuf, sizeof(st->errbuf), "attach: connections already open");
        return -1;
    }
    pg->loop = loop;
    pg->sched = *sched;
    st->defer.run = sched->run;
    st->defer.run_ctx = sched->ctx;
    st->defer.log = sched->log;
    st->defer.log_ctx = sched->ctx;
    pg->maxconns = connections > 0 ? connections : 1;
    return 0;
}

/* Off a fiber, or inside store_defer_writes() on one. */
int store_pg_defers(store_t *st)
{
    return store_is_pg(st) && PG(st)->loop != NULL && (pg_cur_fiber(PG(st)) == NULL || PG(st)->forced > 0);
}

int store_pg_set_forced(store_t *st, int depth)
{
    if (!store_is_pg(st))
        return 0;
    int old = PG(st)->forced;
    PG(st)->forced = depth;
    return old;
}

void store_defer_writes(store_t *st, int on)
{
    if (!store_is_pg(st) || PG(st)->loop == NULL)
        return;
    PG(st)->forced += on ? 1 : -1;
}

void store_release(store_t *st)
{
    if (!store_is_pg(st))
        return;
    pg_t *pg = PG(st);
    void *f = pg_cur_fiber(pg);
    for (pgsess_t **p = &pg->sessions; *p != NULL; p = &(*p)->next) {
        pgsess_t *s = *p;
        if (s->fiber != f)
            continue;
        if (s->in_unit) { /* a unit left open is a bug; never keep a transaction */
            s->in_unit = 1;
            pg_rollback(st);
        }
        *p = s->next;
        for (int i = 0; i < Q__COUNT; i++)
            if (s->stmts[i] != NULL)
                pg_stmt_clear(s->stmts[i]);
        s->next = pg->spare;
        pg->spare = s;
        return;
    }
}
