#include "server/live.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_POLL_MS     250
#define LIVE_PING_MS     15000
#define LIVE_MAX_STREAMS 256          /* per worker */
#define LIVE_MAX_ROWS    200          /* changed calls per look; more and every page reloads */
#define LIVE_MAX_BACKLOG (256 * 1024) /* a stream this far behind is ended; its page reconnects */
#define LIT(s)           s, sizeof(s) - 1

typedef struct live_sub {
    h2o_generator_t gen;
    h2o_linklist_t link;
    live_t *live;
    http_req_t *r;
    long tenant_id, exp;
    /* out collects what is next; wire is what h2o holds until it calls proceed */
    char *out, *wire;
    size_t out_len, out_cap, wire_cap;
    int sending, closing, done;
} live_sub_t;

struct live {
    worker_t *w;
    uv_timer_t timer;
    h2o_linklist_t subs;
    size_t nsubs;
    store_live_cursor_t cursor;
    uint64_t last_ping_ms;
    int failing; /* the store failed on the last look: logged once until it recovers */
    int looking; /* a look waits for PostgreSQL on a fiber: the next tick skips */
    int closed;  /* the timer is closed: the look in progress frees l when done */
};

live_t *live_new(worker_t *w)
{
    live_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->w = w;
    h2o_linklist_init_anchor(&l->subs);
    uv_timer_init(&w->loop, &l->timer);
    l->timer.data = l;
    return l;
}

static void unlink_sub(live_sub_t *s)
{
    if (h2o_linklist_is_linked(&s->link)) {
        h2o_linklist_unlink(&s->link);
        if (--s->live->nsubs == 0)
            uv_timer_stop(&s->live->timer);
    }
}

static void pump(live_sub_t *s)
{
    if (s->sending || s->done || (s->out_len == 0 && !s->closing))
        return;
    /* swap the buffers: h2o reads wire until proceed, we go on filling out */
    char *b = s->wire;
    size_t cap = s->wire_cap;
    s->wire = s->out;
    s->wire_cap = s->out_cap;
    s->out = b;
    s->out_cap = cap;
    h2o_iovec_t buf = h2o_iovec_init(s->wire, s->out_len);
    s->out_len = 0;
    h2o_send_state_t state = H2O_SEND_STATE_IN_PROGRESS;
    if (s->closing) {
        state = H2O_SEND_STATE_FINAL;
        s->done = 1;
        unlink_sub(s);
    }
    s->sending = 1;
    h2o_send(s->r->req, &buf, buf.len ? 1 : 0, state);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    live_sub_t *s = H2O_STRUCT_FROM_MEMBER(live_sub_t, gen, g);
    s->sending = 0;
    pump(s);
}

/* The client went away mid-stream; the memory goes at dispose (sub_gone). */
static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    live_sub_t *s = H2O_STRUCT_FROM_MEMBER(live_sub_t, gen, g);
    s->done = 1;
    unlink_sub(s);
}

static void sub_gone(void *data)
{
    live_sub_t *s = data;
    unlink_sub(s);
    free(s->out);
    free(s->wire);
    free(s);
}

/* Queues one event; a stream that cannot keep up is ended rather than grown without bound. */
static void append(live_sub_t *s, const char *a, size_t alen, const char *b, size_t blen)
{
    if (s->closing || s->done)
        return;
    size_t need = s->out_len + alen + blen + 2;
    if (need > LIVE_MAX_BACKLOG) {
        log_warn("live.slow_reader", "rid=%s tenant=%ld backlog=%zu", s->r->rid, s->tenant_id, s->out_len);
        s->closing = 1;
        return;
    }
    if (need > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *p = realloc(s->out, cap);
        if (p == NULL) {
            s->closing = 1;
            return;
        }
        s->out = p;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, a, alen);
    memcpy(s->out + s->out_len + alen, b, blen);
    memcpy(s->out + s->out_len + alen + blen, "\n\n", 2);
    s->out_len = need;
}

#define EACH_SUB(l, s, body)                                                                                           \
    for (h2o_linklist_t *it_ = (l)->subs.next, *next_; it_ != &(l)->subs; it_ = next_) {                               \
        next_ = it_->next;                                                                                             \
        live_sub_t *s = H2O_STRUCT_FROM_MEMBER(live_sub_t, link, it_);                                                 \
        body                                                                                                           \
    }

static void send_changes(live_t *l, json_t *rows)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        long tenant = (long)json_integer_value(json_object_get(row, "tenant_id"));
        json_object_del(row, "tenant_id");
        char *data = NULL;
        size_t n = 0;
        EACH_SUB(l, s, {
            if (s->tenant_id != tenant)
                continue;
            if (data == NULL && (data = json_dumps(row, JSON_COMPACT)) != NULL)
                n = strlen(data);
            if (data != NULL)
                append(s, LIT("event: call\ndata: "), data, n);
        })
        free(data);
    }
}

static void look(void *arg);

static void on_tick(uv_timer_t *t)
{
    live_t *l = t->data;
    worker_t *w = l->w;
    if (store_batch_pending(w->store) || l->looking)
        return; /* a read now would see writes not yet committed; or the last look goes on */
    l->looking = 1;
    if (worker_run(w, look, l) != 0)
        l->looking = 0;
}

/* One look at the store and what it found sent to the streams (on a fiber with PostgreSQL). */
static void look(void *arg)
{
    live_t *l = arg;
    worker_t *w = l->w;
    json_t *rows;
    int rc = store_live_changes(w->store, &l->cursor, LIVE_MAX_ROWS, &rows);
    if (l->closed) { /* the worker closed the feed while this waited */
        if (rc == 0)
            json_decref(rows);
        free(l);
        return;
    }
    l->looking = 0;
    if (rc < 0) {
        if (!l->failing)
            log_error("db.error", "op=live_changes error=\"%s\"", store_errmsg(w->store));
        l->failing = 1;
    } else {
        l->failing = 0;
        if (rc == 1) { /* too much at once: every page reloads its list instead */
            EACH_SUB(l, s, { append(s, LIT("event: ready\ndata: "), LIT("{}")); })
        } else {
            send_changes(l, rows);
            json_decref(rows);
        }
    }
    uint64_t now = uv_now(&w->loop);
    int ping = now - l->last_ping_ms >= LIVE_PING_MS;
    if (ping)
        l->last_ping_ms = now;
    long wall = (long)time(NULL);
    EACH_SUB(l, s, {
        if (wall >= s->exp) {
            append(s, LIT("event: expired\ndata: "), LIT("{}"));
            s->closing = 1;
        } else if (ping) {
            append(s, LIT(": ping"), LIT(""));
        }
        pump(s);
    })
}

void live_subscribe(http_req_t *r)
{
    live_t *l = r->w->live;
    if (l == NULL || r->w->state != WORKER_RUNNING) {
        http_send_error(r, 503, "shutting_down", "the server is restarting: reconnect in a moment", NULL);
        return;
    }
    if (l->nsubs >= LIVE_MAX_STREAMS) {
        http_send_error(r, 503, "too_many_streams", "too many live streams are open: try again later", NULL);
        return;
    }
    if (l->nsubs == 0) { /* the first stream: changes count from now */
        if (store_live_cursor(r->w->store, &l->cursor) != 0) {
            log_error("db.error", "rid=%s op=live_cursor error=\"%s\"", r->rid, store_errmsg(r->w->store));
            http_send_error(r, 503, "db_unavailable", "the call list cannot be read", NULL);
            return;
        }
        l->last_ping_ms = uv_now(&r->w->loop);
        uv_timer_start(&l->timer, on_tick, LIVE_POLL_MS, LIVE_POLL_MS);
    }
    live_sub_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    s->live = l;
    s->r = r;
    s->tenant_id = r->tenant_id;
    s->exp = r->exp;
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    h2o_linklist_insert(&l->subs, &s->link);
    l->nsubs++;
    r->on_gone = sub_gone;
    r->gone_data = s;

    h2o_req_t *req = r->req;
    r->status = 200;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    http_add_header(r, "x-accel-buffering", "no"); /* a proxy in front must not hold events back */
    req->http1_is_persistent = 0;                  /* when a stream ends, so does its connection */
    h2o_start_response(req, &s->gen);
    append(s, LIT("retry: 2000\nevent: ready\ndata: "), LIT("{}"));
    pump(s);
}

void live_close_all(live_t *l)
{
    if (l == NULL)
        return;
    EACH_SUB(l, s, {
        s->closing = 1;
        pump(s);
    })
    uv_timer_stop(&l->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    live_t *l = h->data;
    if (l->looking)
        l->closed = 1; /* look() frees it once its store call returns */
    else
        free(l);
}

void live_free(live_t *l)
{
    if (l == NULL)
        return;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}
