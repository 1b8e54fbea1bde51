/* Private to the PostgreSQL engine (db/store_pg*.c): its connections, sessions and pool. */
#ifndef SB_STORE_PG_INTERNAL_H
#define SB_STORE_PG_INTERNAL_H

#include "db/store_internal.h"

#include <libpq-fe.h>
#include <stdint.h>
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
    uv_poll_t *poll;   /* own allocation: closing it outlives the connection */
    uv_timer_t *timer; /* a waiting fiber's deadline: a server that stopped answering */
    int poll_events;
    int connecting, broken, listener, timed_out;
    int loop_wait_logged;
    void *waiter; /* the fiber waiting for this connection's socket */
    pgsess_t *owner;
    unsigned char prepared[Q__COUNT];
    pgconn_t *next_free;
    pgconn_t *next_all, **prev_all; /* every connection of the store, for store_abort_waits() */
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
    pgconn_t *free, *all;
    int forced;  /* store_defer_writes() depth of the running fiber (saved across its waits) */
    int closing; /* store_abort_waits(): no new connection, no new wait */
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

uint64_t pg_now_ms(void);
/* The fiber running now (NULL on the thread's own stack or when not attached). */
void *pg_cur_fiber(pg_t *pg);
/* Formats "what: msg" into the session's error; -1. */
int pg_fail(pgsess_t *s, const char *what, const char *msg);

/* The calling fiber's session (made on first use). */
pgsess_t *pg_sess_get(store_t *st);
void pg_stmt_clear(dbstmt_t *s);
void pg_sess_free(pgsess_t *s);

/* A free connection of the pool for s (held until released), waiting on a fiber for one when all
 * are busy; NULL with s->err set. */
pgconn_t *pg_conn_acquire(pg_t *pg, pgsess_t *s);
/* Back to the pool, or to the first fiber waiting; a broken one is closed. */
void pg_conn_release(pg_t *pg, pgconn_t *c);
/* A new connection (not from the pool's free list), or NULL during the back-off after a failure. */
pgconn_t *pg_conn_new(pg_t *pg, pgsess_t *s);
void pg_conn_close(pgconn_t *c);
/* Sends what libpq holds and waits for the whole answer; the last result (caller clears it). */
PGresult *pg_await(pgsess_t *s, pgconn_t *c, const char *what);
/* How long a fiber waits on one round trip (the server's statement_timeout is 5 s) and on a
 * connect: past that the connection is given up and the call fails. */
#define PG_WAIT_MS    6000
#define PG_CONNECT_MS 5000

/* Plain SQL (no parameters) on the session's connection (or one held just for it). */
int pg_exec_simple(store_t *st, pgsess_t *s, const char *sql, const char *what);

#endif
