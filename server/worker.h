/*
 * worker: one thread, one libuv loop, and everything on it: the h2o context and its
 * listeners (own SO_REUSEPORT sockets), the modules' client connections,
 * a libcurl multi handle and a SQLite connection. Nothing here is shared between workers
 * except the read-only app_t.
 *
 * The caller owns the worker_t memory and the listening fds until worker_start() succeeds;
 * from then the worker owns the fds and closes them. worker_stop() may be called from any
 * thread; it begins a graceful stop. worker_join() waits for the thread to end.
 */
#ifndef SB_WORKER_H
#define SB_WORKER_H

#include <h2o.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <uv.h>

#include "server/config.h"
#include "server/curlm.h"
#include "server/metrics.h"
#include "db/store.h"

struct worker;

/*
 * A part of the server that lives on the workers' loops beside HTTP (the Asterisk application).
 * The table is defined by handlers/routes.c, as the route table is. start() runs for each
 * worker before its thread starts (its loop and curl are up; handles made there belong to
 * the loop); *state is the module's, kept in the worker. stop() runs on the worker's thread when
 * it begins to stop (close connections, end calls); while busy() says 1 the worker waits (up to
 * SHUTDOWN_TIMEOUT_S) for what stop() began; release() runs just before curl and the store close
 * (cancel what is left, free). Any may be NULL.
 */
typedef struct worker_module {
    const char *name;
    int (*start)(struct worker *w, void **state);
    void (*stop)(struct worker *w, void *state);
    int (*busy)(struct worker *w, void *state);
    void (*release)(struct worker *w, void *state);
} worker_module_t;

#define WORKER_MODULES_MAX 4
extern const worker_module_t worker_modules[];
extern const size_t worker_modules_count;

#define WORKERS_MAX 256

/* What workers publish for each other: written by one worker, read by any (atomics only). */
typedef struct app_status {
    _Atomic int asterisk; /* asterisk/app.h's state of the events socket; 0: off */
    /* worker i's metrics, stored by worker_start() before its thread serves (NULL until then);
     * they live in the worker_t, which outlives every worker thread (server/main.c) */
    const metrics_t *_Atomic metrics[WORKERS_MAX];
} app_status_t;

/* Process-wide state, written before workers start and read-only afterwards. */
typedef struct app {
    config_t cfg;
    h2o_globalconf_t h2o;
    SSL_CTX *ssl;        /* server side; NULL when TLS is off */
    SSL_CTX *client_ssl; /* outgoing TLS (AI WebSockets, the ARI events socket) */
    uint64_t started_ms;
    uint32_t rid_salt;
    app_status_t *status; /* the one mutable part (see app_status_t) */
} app_t;

typedef enum { WORKER_RUNNING = 0, WORKER_DRAINING, WORKER_FORCING, WORKER_CLOSING, WORKER_DONE } worker_state_t;

typedef struct worker {
    int id;
    const app_t *app;
    h2o_context_t h2o;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t stop_async;
    uv_timer_t shutdown_timer;
    uv_tcp_t listen_plain, listen_tls;
    int fd_plain, fd_tls; /* -1 when absent */
    h2o_accept_ctx_t accept_plain, accept_tls;
    curlm_t *curl;
    struct trest *twilio; /* NULL without Twilio credentials (simulation) */
    store_t *store;
    struct fiber_pool *fibers; /* request logic waiting on PostgreSQL runs on these (NULL: SQLite) */
    uv_check_t commit_check;   /* group commit after each loop iteration's I/O */
    uv_idle_t flush_soon;      /* active while output waits: the loop must not block in poll first */
    uv_prepare_t log_prepare;  /* writes the thread's buffered log lines before poll can block */
    h2o_linklist_t deferred;   /* http_req_t responses waiting for that commit */
    h2o_linklist_t ws_conns;   /* WebSocket connections (media streams) */
    h2o_linklist_t ws_pending; /* those with output to write after this iteration */
    struct live *live;         /* the dashboard's event streams */
    h2o_linklist_t conns;      /* open client connections, for a forced close at the deadline */
    size_t nconns;
    size_t inflight; /* requests between dispatch and dispose */
    uint64_t req_seq;
    worker_state_t state;
    uint64_t deadline_ms;
    int start_error;
    void *mod[WORKER_MODULES_MAX]; /* each worker_modules[i]'s state */
    metrics_t metrics;             /* written by this thread only (server/metrics.h) */
    char errbuf[256];
} worker_t;

/* Opens the worker's store and starts its thread. 0 or -1 with w->errbuf set. */
int worker_start(worker_t *w, const app_t *app, int id, int fd_plain, int fd_tls);
void worker_stop(worker_t *w);
void worker_join(worker_t *w);

/* Commits the store's open batch now and sends the answers that waited for it; 0 or -1. Used
 * before an action that must not start unless the writes before it are durable. */
int worker_commit(worker_t *w);

/* Runs fn(arg) where it may wait for the database: on a fiber when the store is PostgreSQL (fn
 * may then return to the loop before it is done), directly otherwise. 0, or -1 when no fiber
 * could be had (fn did not run). */
int worker_run(worker_t *w, void (*fn)(void *arg), void *arg);

/* Output was queued outside the I/O phase (a timer, a curl callback): flush it this turn. */
void worker_flush_soon(worker_t *w);

/* The worker that owns an h2o context. */
worker_t *worker_of(h2o_context_t *ctx);

#endif
