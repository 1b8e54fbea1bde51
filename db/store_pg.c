/* The PostgreSQL engine (libpq). Attached to a worker's loop, every query is sent with libpq's
 * asynchronous API and the calling fiber suspended until a uv_poll on the connection's socket
 * has the result, so the loop never waits on a round trip; unattached (start-up, tools, tests)
 * it waits in poll(2). A pool of connections per worker: a unit (BEGIN..COMMIT) holds one, a
 * lone statement only while its result is fetched. Statement state lives in a session per
 * fiber, since many fibers use one store_t at once. */
#include "db/store_internal.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define PG_MAX_PARAMS 20
#define PG_ERR        256

typedef struct pgconn pgconn_t;
typedef struct pgsess pgsess_t;
typedef struct pg pg_t;

struct dbstmt {
    store_t *st; /* first: store_db.c finds the engine through it */
    pgsess_t *sess;
    int q;     /* -1: one-off */
    char *sql; /* one-off: the rewritten text (owned) */
    int nparams;
    unsigned char set[PG_MAX_PARAMS]; /* 0 NULL, 1 text, 2 integer */
    const char *vals[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
    PGresult *res;
    int row, nrows, executed;
};

struct pgconn {
    PGconn *c;
    pg_t *pg;
    uv_poll_t *poll; /* own allocation: closing it outlives the connection */
    int poll_events;
    int connecting, broken, listener;
    void *waiter; /* the fiber waiting for this connection's socket */
    pgsess_t *owner;
    unsigned char prepared[Q__COUNT];
    pgconn_t *next_free;
};

struct pgsess {
    void *fiber; /* NULL: the thread's own stack */
    pgconn_t *conn;
    int in_unit;
    dbstmt_t *stmts[Q__COUNT];
    char err[PG_ERR];
    pgsess_t *next;
};

/* a fiber waiting for a free connection */
typedef struct pgwait {
    void *fiber;
    pgconn_t *given;
    struct pgwait *next;
} pgwait_t;

struct pg {
    char *url;
    uv_loop_t *loop; /* NULL: blocking mode */
    store_sched_t sched;
    int nconns, maxconns;
    pgconn_t *free;
    pgwait_t *wait_head, *wait_tail;
    pgsess_t *sessions, *spare;
    char *sql[Q__COUNT];
    int nparams[Q__COUNT];
    pgconn_t *listen;       /* LISTEN sb_live: the live feed's notifications (store_pg_live_take) */
    uint64_t down_until_ms; /* after a failed connect, fail at once until then */
    uint64_t backoff_ms;
    char down_err[PG_ERR];
};

#define PG(st) ((pg_t *)(st)->impl)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *cur_fiber(pg_t *pg)
{
    return pg->loop != NULL ? pg->sched.current(pg->sched.ctx) : NULL;
}

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

static int fail(pgsess_t *s, const char *what, const char *msg)
{
    snprintf(s->err, sizeof(s->err), "%.40s%s%.200s", what, msg[0] ? ": " : "", msg);
    size_t l = strlen(s->err);
    while (l > 0 && (s->err[l - 1] == '\n' || s->err[l - 1] == ' '))
        s->err[--l] = '\0';
    return -1;
}

/* ---- sessions ---- */

static pgsess_t *sess_get(store_t *st)
{
    pg_t *pg = PG(st);
    void *f = cur_fiber(pg);
    for (pgsess_t *s = pg->sessions; s != NULL; s = s->next)
        if (s->fiber == f)
            return s;
    pgsess_t *s = pg->spare;
    if (s != NULL)
        pg->spare = s->next;
    else if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->fiber = f;
    s->err[0] = '\0';
    s->next = pg->sessions;
    pg->sessions = s;
    return s;
}

static void stmt_clear(dbstmt_t *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->executed = 0;
    s->row = s->nrows = 0;
}

static void sess_free(pgsess_t *s)
{
    for (int i = 0; i < Q__COUNT; i++) {
        if (s->stmts[i] != NULL)
            stmt_clear(s->stmts[i]);
        free(s->stmts[i]);
    }
    free(s);
}

/* ---- connections ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_close(pgconn_t *c)
{
    if (c->poll != NULL) {
        c->poll->data = NULL;
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
        c->poll_events = 0;
    }
}

static void poll_want(pgconn_t *c, int events)
{
    pg_t *pg = c->pg;
    if (pg->loop == NULL)
        return;
    if (c->poll != NULL && c->poll->io_watcher.fd != PQsocket(c->c))
        poll_close(c); /* libpq moved to another socket (the next address while connecting) */
    if (c->poll == NULL) {
        if ((c->poll = malloc(sizeof(*c->poll))) == NULL)
            return;
        if (uv_poll_init(pg->loop, c->poll, PQsocket(c->c)) != 0) {
            free(c->poll);
            c->poll = NULL;
            return;
        }
        c->poll->data = c;
    }
    if (events == c->poll_events)
        return;
    c->poll_events = events;
    if (events == 0)
        uv_poll_stop(c->poll);
    else
        uv_poll_start(c->poll, events, on_poll);
}

static void conn_close(pgconn_t *c)
{
    c->pg->nconns--;
    poll_close(c);
    if (c->c != NULL)
        PQfinish(c->c);
    free(c);
}

/* An idle connection that turns readable was closed by the server (a restart, an idle timeout):
 * drop it now rather than fail the next request with it. */
static void drop_if_dead(pgconn_t *c)
{
    pg_t *pg = c->pg;
    if (PQconsumeInput(c->c) && PQstatus(c->c) == CONNECTION_OK) {
        PGnotify *n;
        while ((n = PQnotifies(c->c)) != NULL)
            PQfreemem(n);
        return;
    }
    for (pgconn_t **p = &pg->free; *p != NULL; p = &(*p)->next_free) {
        if (*p == c) {
            *p = c->next_free;
            conn_close(c);
            return;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pgconn_t *c = h->data;
    if (c == NULL)
        return;
    if (c->owner == NULL && !c->connecting && !c->listener) {
        drop_if_dead(c);
        return;
    }
    if (c->connecting) {
        /* PQconnectPoll drives the handshake; the waiter calls it */
    } else if (status < 0) {
        c->broken = 1;
    } else {
        if ((events & UV_WRITABLE) && PQflush(c->c) == 0)
            poll_want(c, UV_READABLE);
        if ((events & UV_READABLE) && !PQconsumeInput(c->c))
            c->broken = 1;
        if (!c->broken && PQisBusy(c->c) && !(events & UV_WRITABLE))
            return; /* more of the answer to come */
    }
    void *f = c->waiter;
    if (f != NULL) {
        c->waiter = NULL;
        c->pg->sched.resume(c->pg->sched.ctx, f);
    }
}

/* Waits until the socket is ready for `events` (fiber: suspended; thread: poll(2)). */
static int wait_socket(pgconn_t *c, int uv_events)
{
    pg_t *pg = c->pg;
    void *f = cur_fiber(pg);
    if (f != NULL) {
        poll_want(c, uv_events);
        c->waiter = f;
        pg->sched.suspend(pg->sched.ctx);
        return c->broken ? -1 : 0;
    }
    struct pollfd p = {.fd = PQsocket(c->c),
                       .events =
                           (short)((uv_events & UV_READABLE ? POLLIN : 0) | (uv_events & UV_WRITABLE ? POLLOUT : 0))};
    int rc = poll(&p, 1, 30000);
    return rc > 0 ? 0 : -1;
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static int conn_connect(pgconn_t *c, pgsess_t *s)
{
    pg_t *pg = c->pg;
    /* the URL first (expanded), then what switchboard needs whatever it says */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
    const char *vals[] = {pg->url, "switchboard", "5", "-c statement_timeout=10000 -c lock_timeout=5000", NULL};
    c->c = PQconnectStartParams(keys, vals, 1);
    if (c->c == NULL || PQstatus(c->c) == CONNECTION_BAD)
        return fail(s, "database connect", c->c ? PQerrorMessage(c->c) : "out of memory");
    c->connecting = 1;
    uint64_t deadline = now_ms() + 5000;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    for (;;) {
        if (ps == PGRES_POLLING_OK)
            break;
        if (ps == PGRES_POLLING_FAILED || now_ms() > deadline) {
            c->connecting = 0;
            return fail(s, "database connect", PQerrorMessage(c->c));
        }
        if (wait_socket(c, ps == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) != 0 && cur_fiber(pg) == NULL) {
            c->connecting = 0;
            return fail(s, "database connect", "timed out");
        }
        ps = PQconnectPoll(c->c);
    }
    c->connecting = 0;
    PQsetNoticeProcessor(c->c, quiet, NULL); /* "already exists, skipping" and the like */
    if (PQsetnonblocking(c->c, 1) != 0)
        return fail(s, "database connect", PQerrorMessage(c->c));
    poll_want(c, UV_READABLE);
    return 0;
}

static void conn_release(pg_t *pg, pgconn_t *c)
{
    if (c->broken || PQstatus(c->c) != CONNECTION_OK || PQtransactionStatus(c->c) != PQTRANS_IDLE) {
        conn_close(c);
        c = NULL;
    }
    pgwait_t *w = pg->wait_head;
    if (w == NULL) {
        if (c != NULL) {
            c->owner = NULL;
            poll_want(c, UV_READABLE); /* see drop_if_dead() */
            if (c->poll != NULL)
                uv_unref((uv_handle_t *)c->poll); /* an idle connection keeps no loop alive */
            c->next_free = pg->free;
            pg->free = c;
        }
        return;
    }
    /* hand it straight to the first waiter (NULL: a slot is free, it connects its own) */
    pg->wait_head = w->next;
    if (pg->wait_head == NULL)
        pg->wait_tail = NULL;
    w->given = c;
    pg->sched.resume(pg->sched.ctx, w->fiber);
}

static pgconn_t *conn_new(pg_t *pg, pgsess_t *s)
{
    if (pg->down_until_ms != 0 && now_ms() < pg->down_until_ms) {
        fail(s, "database unavailable", pg->down_err);
        return NULL;
    }
    pgconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fail(s, "database connect", "out of memory");
        return NULL;
    }
    c->pg = pg;
    pg->nconns++;
    if (conn_connect(c, s) != 0) {
        /* back off: requests meanwhile fail at once instead of each waiting for a timeout */
        pg->backoff_ms = pg->backoff_ms == 0 ? 250 : pg->backoff_ms * 2 > 5000 ? 5000 : pg->backoff_ms * 2;
        pg->down_until_ms = now_ms() + pg->backoff_ms;
        snprintf(pg->down_err, sizeof(pg->down_err), "%s", s->err);
        conn_close(c);
        return NULL;
    }
    pg->backoff_ms = 0;
    pg->down_until_ms = 0;
    return c;
}

static pgconn_t *conn_acquire(pg_t *pg, pgsess_t *s)
{
    if (s->conn != NULL)
        return s->conn;
    pgconn_t *c = pg->free;
    if (c != NULL) {
        pg->free = c->next_free;
    } else if (pg->nconns < pg->maxconns || cur_fiber(pg) == NULL) {
        c = conn_new(pg, s);
    } else {
        pgwait_t w = {.fiber = cur_fiber(pg)};
        if (pg->wait_tail != NULL)
            pg->wait_tail->next = &w;
        else
            pg->wait_head = &w;
        pg->wait_tail = &w;
        pg->sched.suspend(pg->sched.ctx);
        c = w.given != NULL ? w.given : conn_new(pg, s);
    }
    if (c == NULL)
        return NULL;
    if (c->poll != NULL)
        uv_ref((uv_handle_t *)c->poll);
    c->next_free = NULL;
    c->owner = s;
    s->conn = c;
    return c;
}

/* Sends what libpq holds and waits for the whole answer; the last result is returned (the
 * caller clears it), NULL with s->err set on failure. */
static PGresult *await_result(pgsess_t *s, pgconn_t *c, const char *what)
{
    for (;;) {
        int f = PQflush(c->c);
        if (f < 0) {
            c->broken = 1;
            fail(s, what, PQerrorMessage(c->c));
            return NULL;
        }
        if (f == 0)
            break;
        if (wait_socket(c, UV_READABLE | UV_WRITABLE) != 0) {
            c->broken = 1;
            fail(s, what, "connection lost");
            return NULL;
        }
    }
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(c->c)) {
            if (wait_socket(c, UV_READABLE) != 0 || (cur_fiber(c->pg) == NULL && !PQconsumeInput(c->c))) {
                c->broken = 1;
                PQclear(last);
                fail(s, what, PQerrorMessage(c->c));
                return NULL;
            }
        }
        PGresult *r = PQgetResult(c->c);
        if (r == NULL)
            break;
        if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(r); /* keep the first error */
            continue;
        }
        PQclear(last);
        last = r;
    }
    if (last == NULL) {
        fail(s, what, "no result");
        return NULL;
    }
    ExecStatusType rs = PQresultStatus(last);
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
        fail(s, what, PQresultErrorMessage(last));
        if (PQstatus(c->c) != CONNECTION_OK)
            c->broken = 1;
        PQclear(last);
        return NULL;
    }
    return last;
}

/* Runs plain SQL (no parameters; may hold several statements) on the session's connection. */
static int exec_simple(store_t *st, pgsess_t *s, const char *sql, const char *what)
{
    pg_t *pg = PG(st);
    int held = s->conn != NULL;
    pgconn_t *c = conn_acquire(pg, s);
    if (c == NULL)
        return -1;
    int rc = -1;
    if (!PQsendQuery(c->c, sql)) {
        c->broken = 1;
        fail(s, what, PQerrorMessage(c->c));
    } else {
        PGresult *r = await_result(s, c, what);
        rc = r != NULL ? 0 : -1;
        PQclear(r);
    }
    if (!held) {
        s->conn = NULL;
        conn_release(pg, c);
    }
    return rc;
}

/* ---- statements ---- */

static dbstmt_t *pg_stmt(store_t *st, query_id_t q, const char *sql)
{
    pg_t *pg = PG(st);
    pgsess_t *s = sess_get(st);
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
        stmt_clear(d);
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
    pgconn_t *c = conn_acquire(pg, s);
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
        if (in_tx && exec_simple(st, s, "SAVEPOINT sb_prepare", "prepare") != 0)
            ok = 0; /* a failed prepare must not abort the unit's transaction */
        for (int tries = 0; !c->prepared[d->q] && ok && tries <= d->nparams; tries++) {
            ok = PQsendPrepare(c->c, name, sql, d->nparams, types);
            PGresult *r = ok ? await_result(s, c, "prepare") : NULL;
            PQclear(r);
            if (r != NULL) {
                c->prepared[d->q] = 1;
                break;
            }
            if (in_tx && exec_simple(st, s, "ROLLBACK TO SAVEPOINT sb_prepare", "prepare") != 0)
                break;
            static const char untyped[] = "could not determine data type of parameter $";
            const char *at = strstr(s->err, untyped);
            int n = at != NULL ? atoi(at + sizeof(untyped) - 1) : 0;
            if (n < 1 || n > d->nparams || types[n - 1] != 0 || c->broken)
                ok = 0;
            else
                types[n - 1] = 25;
        }
        if (ok && in_tx && exec_simple(st, s, "RELEASE SAVEPOINT sb_prepare", "prepare") != 0)
            ok = 0;
        if (ok)
            ok = PQsendQueryPrepared(c->c, name, d->nparams, vals, NULL, NULL, 0);
    }
    PGresult *r = NULL;
    if (ok)
        r = await_result(s, c, "query");
    else if (s->err[0] == '\0' || PQstatus(c->c) != CONNECTION_OK)
        fail(s, "query", PQerrorMessage(c->c));
    if (!held) {
        s->conn = NULL;
        conn_release(pg, c);
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
    stmt_clear(d);
}

static void pg_finalize(dbstmt_t *d)
{
    stmt_clear(d);
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
    pgsess_t *s = sess_get(st);
    return s != NULL ? s->err : "out of memory";
}

/* ---- units ---- */

static int pg_begin(store_t *st)
{
    pgsess_t *s = sess_get(st);
    if (s == NULL)
        return -1;
    if (s->in_unit) { /* nested unit: part of the open one */
        s->in_unit++;
        return 0;
    }
    if (conn_acquire(PG(st), s) == NULL || exec_simple(st, s, "BEGIN", "begin") != 0) {
        if (s->conn != NULL) {
            pgconn_t *c = s->conn;
            s->conn = NULL;
            conn_release(PG(st), c);
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
        conn_release(PG(st), c);
}

static int pg_commit(store_t *st)
{
    pgsess_t *s = sess_get(st);
    if (s == NULL || !s->in_unit)
        return -1;
    if (--s->in_unit > 0)
        return 0;
    s->in_unit = 1;
    int rc = exec_simple(st, s, "COMMIT", "commit");
    if (rc != 0)
        snprintf(st->errbuf, sizeof(st->errbuf), "commit: %.200s", s->err);
    unit_end(st, s); /* a failed COMMIT leaves no transaction open */
    return rc;
}

static void pg_rollback(store_t *st)
{
    pgsess_t *s = sess_get(st);
    if (s == NULL || !s->in_unit)
        return;
    if (s->conn != NULL && !s->conn->broken)
        exec_simple(st, s, "ROLLBACK", "rollback");
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
        sess_free(s);
    }
    for (pgsess_t *s = pg->spare, *n; s != NULL; s = n) {
        n = s->next;
        sess_free(s);
    }
    for (pgconn_t *c = pg->free, *n; c != NULL; c = n) {
        n = c->next_free;
        conn_close(c);
    }
    if (pg->listen != NULL)
        conn_close(pg->listen);
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

int store_pg_off_fiber(store_t *st)
{
    return store_is_pg(st) && PG(st)->loop != NULL && cur_fiber(PG(st)) == NULL;
}

void store_release(store_t *st)
{
    if (!store_is_pg(st))
        return;
    pg_t *pg = PG(st);
    void *f = cur_fiber(pg);
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
                stmt_clear(s->stmts[i]);
        s->next = pg->spare;
        pg->spare = s;
        return;
    }
}

int store_pg_has_migrations(store_t *st)
{
    dbstmt_t *d = store_stmt_sql(st, Q_HAS_MIGRATIONS,
                                 "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                                 "current_schema() AND table_name = 'schema_migrations'");
    if (d == NULL)
        return -1;
    int rc = db_step(d);
    int has = rc == DB_ROW && db_col_int(d, 0) > 0;
    db_reset(d);
    return rc == DB_ROW ? has : store_fail(st, "schema version");
}

static int pg_exec_text(store_t *st, const char *sql)
{
    pgsess_t *s = sess_get(st);
    if (s == NULL)
        return -1;
    if (exec_simple(st, s, sql, "exec") != 0) {
        snprintf(st->errbuf, sizeof(st->errbuf), "%s", s->err);
        return -1;
    }
    return 0;
}

int store_pg_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz)
{
    if (applied != NULL)
        *applied = 0;
    pgsess_t *s = sess_get(st);
    if (s == NULL || conn_acquire(PG(st), s) == NULL) {
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
        conn_release(PG(st), c);
    return rc;
}

/* ---- the live feed: which calls changed, from any instance ---- */

int store_pg_live_listen(store_t *st)
{
    pg_t *pg = PG(st);
    if (pg->listen != NULL && !pg->listen->broken && PQstatus(pg->listen->c) == CONNECTION_OK)
        return 0;
    if (pg->listen != NULL) {
        conn_close(pg->listen);
        pg->listen = NULL;
    }
    pgsess_t *s = sess_get(st);
    if (s == NULL)
        return -1;
    pg->maxconns++; /* not one of the pool's */
    pgconn_t *c = conn_new(pg, s);
    pg->maxconns--;
    if (c == NULL) {
        snprintf(st->errbuf, sizeof(st->errbuf), "live: %.200s", s->err);
        return -1;
    }
    c->listener = 1;
    pgconn_t *held = s->conn;
    s->conn = c;
    int rc = exec_simple(st, s, "LISTEN sb_live", "listen");
    s->conn = held;
    if (rc != 0) {
        snprintf(st->errbuf, sizeof(st->errbuf), "live: %.200s", s->err);
        conn_close(c);
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
