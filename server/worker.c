#include "server/worker.h"
#include "server/fiber.h"
#include "server/live.h"
#include "server/http.h"
#include "server/log.h"
#include "server/router.h"
#include "server/twilio_rest.h"
#include "server/ws.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SHUTDOWN_TICK_MS      50
#define FORCED_CLOSE_GRACE_MS 1000

typedef struct conn {
    uv_tcp_t tcp; /* first: the uv handle h2o closes is the conn */
    h2o_linklist_t link;
    worker_t *w;
} conn_t;

worker_t *worker_of(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(worker_t, h2o, ctx);
}

static void on_conn_close(uv_handle_t *h)
{
    conn_t *c = (conn_t *)h;
    h2o_linklist_unlink(&c->link);
    c->w->nconns--;
    free(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    worker_t *w = listener->data;
    if (status != 0 || w->state != WORKER_RUNNING)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(&w->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    c->w = w;
    h2o_linklist_insert(&w->conns, &c->link);
    w->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    h2o_accept(listener == (uv_stream_t *)&w->listen_tls ? &w->accept_tls : &w->accept_plain, sock);
}

static int listen_on(worker_t *w, uv_tcp_t *handle, int fd)
{
    uv_tcp_init(&w->loop, handle);
    handle->data = w;
    int rc = uv_tcp_open(handle, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)handle, 1024, on_accept);
    if (rc != 0)
        snprintf(w->errbuf, sizeof(w->errbuf), "listen: %s", uv_strerror(rc));
    return rc;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

/* After the poll phase: one commit for every write the iteration's requests made, then the
 * answers that waited for it. */
int worker_commit(worker_t *w)
{
    if (!store_batch_pending(w->store))
        return 0;
    int rc = store_batch_commit(w->store); /* timed by the store: on_commit below */
    if (rc != 0)
        log_error("db.commit_failed", "worker=%d error=\"%s\"", w->id, store_errmsg(w->store));
    http_flush_deferred(w, rc == 0);
    return rc;
}

static void on_commit_check(uv_check_t *c)
{
    worker_t *w = c->data;
    worker_commit(w);
    ws_flush(w);
    /* a connection that ended there wrote its last events: they must not wait for the next
     * wake-up, holding the database's write lock meanwhile */
    if (store_batch_pending(w->store))
        worker_commit(w);
    uv_idle_stop(&w->flush_soon);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* its being active is the point: poll does not wait */
}

/* Before poll: every line of the iteration (the access lines come from the write callbacks,
 * after the commit check) goes out before the loop can sleep. */
static void on_log_prepare(uv_prepare_t *p)
{
    (void)p;
    log_flush();
}

void worker_flush_soon(worker_t *w)
{
    if (!uv_is_active((uv_handle_t *)&w->flush_soon))
        uv_idle_start(&w->flush_soon, on_idle);
}

static void release_resources(worker_t *w)
{
    if (w->store != NULL)
        store_abort_waits(w->store); /* past the deadline: what still waits on the database fails now */
    for (size_t i = 0; i < worker_modules_count && i < WORKER_MODULES_MAX; i++)
        if (worker_modules[i].release != NULL)
            worker_modules[i].release(w, w->mod[i]);
    if (w->store != NULL && store_batch_pending(w->store))
        on_commit_check(&w->commit_check);
    uv_check_stop(&w->commit_check);
    close_handle((uv_handle_t *)&w->commit_check);
    uv_idle_stop(&w->flush_soon);
    close_handle((uv_handle_t *)&w->flush_soon);
    uv_prepare_stop(&w->log_prepare);
    close_handle((uv_handle_t *)&w->log_prepare);
    uv_timer_stop(&w->shutdown_timer);
    close_handle((uv_handle_t *)&w->shutdown_timer);
    close_handle((uv_handle_t *)&w->stop_async);
    live_free(w->live);
    w->live = NULL;
    /* request_shutdown armed h2o's one-second GOAWAY resend timer; with no connections left
     * there is nothing to resend, and dispose asserts that no timer is pending */
    if (h2o_timeout_is_linked(&w->h2o.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&w->h2o.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&w->h2o);
    trest_free(w->twilio); /* before the multi handle its transfers live in */
    w->twilio = NULL;
    curlm_close(w->curl);
    w->curl = NULL;
    store_close(w->store);
    w->store = NULL;
    if (fiber_pool_free(w->fibers) != 0)
        log_warn("worker.fibers_left", "worker=%d", w->id); /* still waiting: their stacks are left */
    w->fibers = NULL;
    w->state = WORKER_DONE;
}

static void force_close_conns(worker_t *w)
{
    for (h2o_linklist_t *l = w->conns.next; l != &w->conns; l = l->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        uv_os_fd_t fd;
        /* h2o sees EOF/EPIPE and closes the connection through its own path */
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}

/* A module still finishing what its stop() began (hang-ups in flight): the worker waits for it,
 * up to the shutdown deadline. */
static int modules_busy(worker_t *w)
{
    for (size_t i = 0; i < worker_modules_count && i < WORKER_MODULES_MAX; i++)
        if (worker_modules[i].busy != NULL && worker_modules[i].busy(w, w->mod[i]))
            return 1;
    return 0;
}

static void on_shutdown_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    uint64_t now = uv_now(&w->loop);
    switch (w->state) {
    case WORKER_DRAINING:
        if (w->nconns == 0 && !modules_busy(w) && !store_busy(w->store))
            break; /* the queued writes of the calls that ended are in too */
        if (now < w->deadline_ms)
            return;
        log_warn("worker.shutdown_deadline", "worker=%d connections=%zu inflight=%zu", w->id, w->nconns, w->inflight);
        force_close_conns(w);
        w->state = WORKER_FORCING;
        w->deadline_ms = now + FORCED_CLOSE_GRACE_MS;
        return;
    case WORKER_FORCING:
        if (w->nconns != 0 && now < w->deadline_ms)
            return;
        break;
    default:
        return;
    }
    w->state = WORKER_CLOSING;
    release_resources(w);
}

static void on_stop(uv_async_t *a)
{
    worker_t *w = a->data;
    if (w->state != WORKER_RUNNING)
        return;
    w->state = WORKER_DRAINING;
    if (w->fd_plain >= 0)
        close_handle((uv_handle_t *)&w->listen_plain);
    if (w->fd_tls >= 0)
        close_handle((uv_handle_t *)&w->listen_tls);
    /* h2 connections get GOAWAY; HTTP/1 responses from now on close their connection; media
     * streams are told we are going away (Twilio then asks connect_action what next) */
    h2o_context_request_shutdown(&w->h2o);
    ws_close_all(w);
    ws_flush(w);
    live_close_all(w->live);
    for (size_t i = 0; i < worker_modules_count && i < WORKER_MODULES_MAX; i++)
        if (worker_modules[i].stop != NULL)
            worker_modules[i].stop(w, w->mod[i]);
    w->deadline_ms = uv_now(&w->loop) + (uint64_t)w->app->cfg.shutdown_timeout_s * 1000;
    uv_timer_start(&w->shutdown_timer, on_shutdown_tick, 0, SHUTDOWN_TICK_MS);
}

static void run(void *arg)
{
    worker_t *w = arg;
    log_thread_begin(); /* out of memory: the thread's lines go out one by one */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        log_warn("worker.loop_close", "worker=%d error=%s", w->id, uv_strerror(rc));
    log_debug("worker.stopped", "worker=%d", w->id);
    log_thread_end();
}

static void *sched_current(void *ctx)
{
    return fiber_current(((worker_t *)ctx)->fibers);
}

static void sched_suspend(void *ctx)
{
    fiber_suspend(((worker_t *)ctx)->fibers);
}

static void sched_resume(void *ctx, void *f)
{
    fiber_resume(((worker_t *)ctx)->fibers, f);
}

static int sched_run(void *ctx, void (*fn)(void *arg), void *arg);

static void sched_log(void *ctx, const char *op, const char *err)
{
    if (strcmp(op, "loop_wait") == 0)
        log_error("store.loop_wait", "worker=%d error=\"%s\"", ((worker_t *)ctx)->id, err);
    else
        log_error("db.error", "worker=%d op=%s queued=1 error=\"%s\"", ((worker_t *)ctx)->id, op, err);
}

typedef struct run_arg {
    worker_t *w;
    void (*fn)(void *arg);
    void *arg;
} run_arg_t;

static void run_on_fiber(void *p)
{
    run_arg_t a = *(run_arg_t *)p; /* the caller's copy is gone once this fiber first waits */
    a.fn(a.arg);
    store_release(a.w->store);
}

static void run_spawned(void *p)
{
    run_arg_t a = *(run_arg_t *)p;
    free(p); /* the copy sched_run made: its caller's frame may be gone before this starts */
    a.fn(a.arg);
    store_release(a.w->store);
}

/* The store's writer of queued writes: always a fiber of its own, even when the write was queued
 * on a fiber (one inside store_defer_writes() must not be suspended by the writer). */
static int sched_run(void *ctx, void (*fn)(void *arg), void *arg)
{
    worker_t *w = ctx;
    run_arg_t *a = malloc(sizeof(*a));
    if (a == NULL)
        return -1;
    *a = (run_arg_t){w, fn, arg};
    if (fiber_spawn(w->fibers, run_spawned, a) != 0) {
        free(a);
        return -1;
    }
    return 0;
}

int worker_run(worker_t *w, void (*fn)(void *arg), void *arg)
{
    if (w->fibers == NULL || fiber_current(w->fibers) != NULL) {
        fn(arg);
        return 0;
    }
    run_arg_t a = {w, fn, arg};
    return fiber_run(w->fibers, run_on_fiber, &a);
}

static void on_commit(void *arg, uint64_t dur_ns)
{
    worker_t *w = arg;
    metrics_store_commit(&w->metrics, dur_ns);
}

/* The store saw a call end, wherever its status came from (a webhook, Asterisk, a queued write). */
static void on_call_end(void *arg, const store_call_t *c, const char *status)
{
    worker_t *w = arg;
    metrics_call_ended_s(&w->metrics, c->platform, c->direction, status);
}

int worker_start(worker_t *w, const app_t *app, int id, int fd_plain, int fd_tls)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->app = app;
    w->fd_plain = fd_plain;
    w->fd_tls = fd_tls;
    if (id < 0 || id >= WORKERS_MAX || router_routes_count >= METRICS_ROUTES_MAX) {
        snprintf(w->errbuf, sizeof(w->errbuf), "worker %d of at most %d, %zu routes of at most %d", id, WORKERS_MAX,
                 router_routes_count, METRICS_ROUTES_MAX - 1);
        return -1;
    }
    h2o_linklist_init_anchor(&w->conns);
    h2o_linklist_init_anchor(&w->deferred);
    h2o_linklist_init_anchor(&w->ws_conns);
    h2o_linklist_init_anchor(&w->ws_pending);
    if (store_open(config_store_target(&app->cfg), &w->store, w->errbuf, sizeof(w->errbuf)) != 0)
        return -1;
    store_set_batching(w->store, 1);
    store_on_call_end(w->store, on_call_end, w);
    store_on_commit(w->store, on_commit, w);
    uv_loop_init(&w->loop);
    if (strcmp(store_engine_name(w->store), "postgresql") == 0) {
        store_sched_t sc = {sched_current, sched_suspend, sched_resume, sched_run, sched_log, w};
        w->fibers = fiber_pool_new(FIBER_STACK_DEFAULT, 64);
        if (w->fibers == NULL || store_attach(w->store, &w->loop, &sc, app->cfg.database_pool) != 0) {
            snprintf(w->errbuf, sizeof(w->errbuf), "database: %s", w->fibers ? store_errmsg(w->store) : "no memory");
            store_close(w->store);
            fiber_pool_free(w->fibers);
            uv_loop_close(&w->loop);
            return -1;
        }
    }
    uv_check_init(&w->loop, &w->commit_check);
    w->commit_check.data = w;
    uv_check_start(&w->commit_check, on_commit_check);
    uv_idle_init(&w->loop, &w->flush_soon);
    uv_prepare_init(&w->loop, &w->log_prepare);
    uv_prepare_start(&w->log_prepare, on_log_prepare);
    uv_unref((uv_handle_t *)&w->log_prepare); /* never what keeps the loop alive */
    h2o_context_init(&w->h2o, &w->loop, (h2o_globalconf_t *)&app->h2o);
    w->accept_plain.ctx = &w->h2o;
    w->accept_plain.hosts = app->h2o.hosts;
    w->accept_tls = w->accept_plain;
    w->accept_tls.ssl_ctx = app->ssl;
    uv_async_init(&w->loop, &w->stop_async, on_stop);
    w->stop_async.data = w;
    uv_timer_init(&w->loop, &w->shutdown_timer);
    w->shutdown_timer.data = w;
    if ((fd_plain >= 0 && listen_on(w, &w->listen_plain, fd_plain) != 0) ||
        (fd_tls >= 0 && listen_on(w, &w->listen_tls, fd_tls) != 0))
        goto fail;
    w->curl = curlm_new(&w->loop);
    if (w->curl == NULL) {
        snprintf(w->errbuf, sizeof(w->errbuf), "curl multi handle failed");
        goto fail;
    }
    w->twilio = trest_new(&w->loop, w->curl, &app->cfg);
    if ((w->live = live_new(w)) == NULL) {
        snprintf(w->errbuf, sizeof(w->errbuf), "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < worker_modules_count && i < WORKER_MODULES_MAX; i++)
        if (worker_modules[i].start != NULL && worker_modules[i].start(w, &w->mod[i]) != 0) {
            snprintf(w->errbuf, sizeof(w->errbuf), "%s could not start", worker_modules[i].name);
            goto fail; /* modules started before keep their handles on the loop, closed below */
        }
    /* before the thread serves: a scrape on another worker may read them from now on */
    atomic_store_explicit(&app->status->metrics[id], &w->metrics, memory_order_release);
    if (uv_thread_create(&w->thread, run, w) != 0) {
        snprintf(w->errbuf, sizeof(w->errbuf), "cannot create thread");
        goto fail;
    }
    return 0;
fail:
    /* tear down on this thread: the loop never ran, so run it once to finish the closes */
    w->state = WORKER_CLOSING;
    if (fd_plain >= 0)
        close_handle((uv_handle_t *)&w->listen_plain);
    if (fd_tls >= 0)
        close_handle((uv_handle_t *)&w->listen_tls);
    release_resources(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    return -1;
}

void worker_stop(worker_t *w)
{
    uv_async_send(&w->stop_async);
}

void worker_join(worker_t *w)
{
    uv_thread_join(&w->thread);
}
