/* The PostgreSQL engine's connections: a pool per worker driven by uv_poll on each socket,
 * asynchronous connects, a fiber waiting for its answer (or poll(2) off a fiber), back-off
 * after a failed connect, idle connections the server closed dropped at once; and the
 * sessions that hold statement state per fiber. */
#include "db/store_pg_internal.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void *pg_cur_fiber(pg_t *pg)
{
    return pg->loop != NULL ? pg->sched.current(pg->sched.ctx) : NULL;
}

int pg_fail(pgsess_t *s, const char *what, const char *msg)
{
    snprintf(s->err, sizeof(s->err), "%.40s%s%.200s", what, msg[0] ? ": " : "", msg);
    size_t l = strlen(s->err);
    while (l > 0 && (s->err[l - 1] == '\n' || s->err[l - 1] == ' '))
        s->err[--l] = '\0';
    return -1;
}

/* ---- sessions ---- */

pgsess_t *pg_sess_get(store_t *st)
{
    pg_t *pg = PG(st);
    void *f = pg_cur_fiber(pg);
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

void pg_stmt_clear(dbstmt_t *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->executed = 0;
    s->row = s->nrows = 0;
}

void pg_sess_free(pgsess_t *s)
{
    for (int i = 0; i < Q__COUNT; i++) {
        if (s->stmts[i] != NULL)
            pg_stmt_clear(s->stmts[i]);
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
    if (c->timer != NULL) {
        c->timer->data = NULL;
        uv_close((uv_handle_t *)c->timer, on_poll_closed);
        c->timer = NULL;
    }
}

/* The waiting fiber's deadline passed: the server stopped answering (frozen, partitioned). */
static void on_wait_timeout(uv_timer_t *t)
{
    pgconn_t *c = t->data;
    if (c == NULL || c->waiter == NULL)
        return;
    c->broken = c->timed_out = 1;
    void *f = c->waiter;
    c->waiter = NULL;
    c->pg->sched.resume(c->pg->sched.ctx, f);
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
    if (c->timer == NULL && (c->timer = malloc(sizeof(*c->timer))) != NULL) {
        uv_timer_init(pg->loop, c->timer);
        c->timer->data = c;
    }
    if (events == c->poll_events)
        return;
    c->poll_events = events;
    if (events == 0)
        uv_poll_stop(c->poll);
    else
        uv_poll_start(c->poll, events, on_poll);
}

void pg_conn_close(pgconn_t *c)
{
    c->pg->nconns--;
    if (c->prev_all != NULL) {
        *c->prev_all = c->next_all;
        if (c->next_all != NULL)
            c->next_all->prev_all = c->prev_all;
    }
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
            pg_conn_close(c);
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

/* Suspends the running fiber. store_defer_writes() is the fiber's own: the ones that run
 * meanwhile start without it, and it is back when this one resumes. */
static void pg_suspend(pg_t *pg)
{
    int forced = pg->forced;
    pg->forced = 0;
    pg->sched.suspend(pg->sched.ctx);
    pg->forced = forced;
}

/* Waits until the socket is ready for `events` (fiber: suspended; thread: poll(2)). */
static int wait_socket(pgconn_t *c, int uv_events)
{
    pg_t *pg = c->pg;
    void *f = pg_cur_fiber(pg);
    int ms = c->connecting ? PG_CONNECT_MS : PG_WAIT_MS;
    if (pg->closing) {
        c->broken = 1;
        return -1;
    }
    if (f != NULL) {
        poll_want(c, uv_events);
        c->waiter = f;
        if (c->timer != NULL)
            uv_timer_start(c->timer, on_wait_timeout, (uint64_t)ms, 0);
        pg_suspend(pg);
        if (c->timer != NULL)
            uv_timer_stop(c->timer);
        return c->broken ? -1 : 0;
    }
    if (pg->loop != NULL && !c->loop_wait_logged) {
        /* a defect to fix where it happens (on a fiber, or a queued write): said once per
         * connection, so a test sees it and a log is not flooded */
        c->loop_wait_logged = 1;
        pg->sched.log(pg->sched.ctx, "loop_wait", "a database round trip blocked the loop thread (not on a fiber)");
    }
    struct pollfd p = {.fd = PQsocket(c->c),
                       .events =
                           (short)((uv_events & UV_READABLE ? POLLIN : 0) | (uv_events & UV_WRITABLE ? POLLOUT : 0))};
    int rc = poll(&p, 1, ms);
    if (rc == 0)
        c->timed_out = 1;
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
    /* a server that vanished without closing the connection (a machine lost) is noticed in
     * about 10 s instead of TCP's quarter of an hour; a query never waits longer than that */
    const char *keys[] = {"dbname",           "application_name", "connect_timeout",
                          "options",          "keepalives_idle",  "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", NULL};
    const char *vals[] = {pg->url, "switchboard", "5", "-c statement_timeout=5000 -c lock_timeout=4000", "5", "2",
                          "3",     "10000",       NULL};
    c->c = PQconnectStartParams(keys, vals, 1);
    if (c->c == NULL || PQstatus(c->c) == CONNECTION_BAD)
        return pg_fail(s, "database connect", c->c ? PQerrorMessage(c->c) : "out of memory");
    c->connecting = 1;
    uint64_t deadline = pg_now_ms() + 5000;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    for (;;) {
        if (ps == PGRES_POLLING_OK)
            break;
        if (ps == PGRES_POLLING_FAILED || pg_now_ms() > deadline) {
            c->connecting = 0;
            return pg_fail(s, "database connect", PQerrorMessage(c->c));
        }
        if (wait_socket(c, ps == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) != 0) {
            c->connecting = 0;
            return pg_fail(s, "database connect", "timed out");
        }
        ps = PQconnectPoll(c->c);
    }
    c->connecting = 0;
    PQsetNoticeProcessor(c->c, quiet, NULL); /* "already exists, skipping" and the like */
    if (PQsetnonblocking(c->c, 1) != 0)
        return pg_fail(s, "database connect", PQerrorMessage(c->c));
    poll_want(c, UV_READABLE);
    return 0;
}

void pg_conn_release(pg_t *pg, pgconn_t *c)
{
    if (c->broken || PQstatus(c->c) != CONNECTION_OK || PQtransactionStatus(c->c) != PQTRANS_IDLE) {
        pg_conn_close(c);
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

pgconn_t *pg_conn_new(pg_t *pg, pgsess_t *s)
{
    if (pg->closing) {
        pg_fail(s, "database", "the worker is stopping");
        return NULL;
    }
    if (pg->down_until_ms != 0 && pg_now_ms() < pg->down_until_ms) {
        pg_fail(s, "database unavailable", pg->down_err);
        return NULL;
    }
    pgconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        pg_fail(s, "database connect", "out of memory");
        return NULL;
    }
    c->pg = pg;
    pg->nconns++;
    c->next_all = pg->all;
    if (pg->all != NULL)
        pg->all->prev_all = &c->next_all;
    pg->all = c;
    c->prev_all = &pg->all;
    if (conn_connect(c, s) != 0) {
        /* back off: requests meanwhile fail at once instead of each waiting for a timeout */
        pg->backoff_ms = pg->backoff_ms == 0 ? 250 : pg->backoff_ms * 2 > 5000 ? 5000 : pg->backoff_ms * 2;
        pg->down_until_ms = pg_now_ms() + pg->backoff_ms;
        snprintf(pg->down_err, sizeof(pg->down_err), "%s", s->err);
        pg_conn_close(c);
        return NULL;
    }
    pg->backoff_ms = 0;
    pg->down_until_ms = 0;
    return c;
}

pgconn_t *pg_conn_acquire(pg_t *pg, pgsess_t *s)
{
    if (s->conn != NULL)
        return s->conn;
    if (pg->closing) {
        pg_fail(s, "database", "the worker is stopping");
        return NULL;
    }
    pgconn_t *c = pg->free;
    if (c != NULL) {
        pg->free = c->next_free;
    } else if (pg->nconns < pg->maxconns || pg_cur_fiber(pg) == NULL) {
        c = pg_conn_new(pg, s);
    } else {
        pgwait_t w = {.fiber = pg_cur_fiber(pg)};
        if (pg->wait_tail != NULL)
            pg->wait_tail->next = &w;
        else
            pg->wait_head = &w;
        pg->wait_tail = &w;
        pg_suspend(pg);
        c = w.given != NULL ? w.given : pg_conn_new(pg, s);
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
PGresult *pg_await(pgsess_t *s, pgconn_t *c, const char *what)
{
    for (;;) {
        int f = PQflush(c->c);
        if (f < 0) {
            c->broken = 1;
            pg_fail(s, what, PQerrorMessage(c->c));
            return NULL;
        }
        if (f == 0)
            break;
        if (wait_socket(c, UV_READABLE | UV_WRITABLE) != 0) {
            c->broken = 1;
            pg_fail(s, what, "connection lost");
            return NULL;
        }
    }
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(c->c)) {
            if (wait_socket(c, UV_READABLE) != 0 || (pg_cur_fiber(c->pg) == NULL && !PQconsumeInput(c->c))) {
                c->broken = 1;
                PQclear(last);
                pg_fail(s, what, c->timed_out ? "no answer from the database in time" : PQerrorMessage(c->c));
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
        pg_fail(s, what, "no result");
        return NULL;
    }
    ExecStatusType rs = PQresultStatus(last);
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
        pg_fail(s, what, PQresultErrorMessage(last));
        if (PQstatus(c->c) != CONNECTION_OK)
            c->broken = 1;
        PQclear(last);
        return NULL;
    }
    return last;
}

/* Runs plain SQL (no parameters; may hold several statements) on the session's connection. */
int pg_exec_simple(store_t *st, pgsess_t *s, const char *sql, const char *what)
{
    pg_t *pg = PG(st);
    int held = s->conn != NULL;
    pgconn_t *c = pg_conn_acquire(pg, s);
    if (c == NULL)
        return -1;
    int rc = -1;
    if (!PQsendQuery(c->c, sql)) {
        c->broken = 1;
        pg_fail(s, what, PQerrorMessage(c->c));
    } else {
        PGresult *r = pg_await(s, c, what);
        rc = r != NULL ? 0 : -1;
        PQclear(r);
    }
    if (!held) {
        s->conn = NULL;
        pg_conn_release(pg, c);
    }
    return rc;
}

void store_abort_waits(store_t *st)
{
    if (!store_is_pg(st))
        return;
    pg_t *pg = st->impl;
    pg->closing = 1;
    /* each resumed fiber runs on until it ends (every wait now fails at once), and may close
     * connections: look again from the start after each */
    for (;;) {
        void *f = NULL;
        if (pg->wait_head != NULL) {
            pgwait_t *w = pg->wait_head;
            pg->wait_head = w->next;
            if (pg->wait_head == NULL)
                pg->wait_tail = NULL;
            w->given = NULL;
            f = w->fiber;
        } else {
            for (pgconn_t *c = pg->all; c != NULL && f == NULL; c = c->next_all) {
                if (c->waiter != NULL) {
                    f = c->waiter;
                    c->waiter = NULL;
                    c->broken = 1;
                }
            }
        }
        if (f == NULL)
            return;
        pg->sched.resume(pg->sched.ctx, f);
    }
}

/* store_wait_queued: the barrier's callback wakes the fiber that waits for it. */
typedef struct queued_wait {
    pg_t *pg;
    void *fiber;
    int done, waiting;
} queued_wait_t;

static void queued_done(void *arg)
{
    queued_wait_t *q = arg;
    q->done = 1;
    if (q->waiting)
        q->pg->sched.resume(q->pg->sched.ctx, q->fiber);
}

void store_wait_queued(store_t *st)
{
    if (!store_is_pg(st) || ((pg_t *)st->impl)->loop == NULL)
        return;
    pg_t *pg = st->impl;
    void *f = pg_cur_fiber(pg);
    queued_wait_t q = {.pg = pg, .fiber = f};
    if (f == NULL || !store_after_queued(st, queued_done, &q))
        return;
    while (!q.done) {
        q.waiting = 1;
        pg_suspend(pg);
        q.waiting = 0;
    }
}
