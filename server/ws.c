#include "server/ws.h"
#include "server/worker.h"

#include <errno.h>
#include <h2o/websocket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* gathered frames are written once this much is waiting, even with more messages queued */
#define WS_GATHER_MAX 16384

struct ws_conn {
    h2o_websocket_conn_t *h;
    worker_t *w;
    const ws_handler_t *handler;
    void *data;
    h2o_linklist_t all;     /* the worker's connections */
    h2o_linklist_t pending; /* has output to flush */
    int upgraded, in_callback, closing;
    size_t max_msg;
    /* h2o's wslay callbacks with our send_callback: h2o 2.2 writes each frame's header and
     * payload with a write() apiece; we gather a burst of frames into one */
    struct wslay_event_callbacks callbacks;
    char *out; /* frames for the next write; untouched while that write is in flight */
    size_t out_len, out_cap;
};

static void mark_pending(ws_conn_t *c)
{
    if (!h2o_linklist_is_linked(&c->pending)) {
        h2o_linklist_insert(&c->w->ws_pending, &c->pending);
        worker_flush_soon(c->w);
    }
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *h = sock->data;
    ws_conn_t *c = h->data;
    c->out_len = 0;
    if (err != NULL) {
        h->cb(h, NULL); /* as h2o does after a failed write: the connection is done */
        return;
    }
    h2o_websocket_proceed(h); /* what queued meanwhile; may free c */
}

static void write_out(ws_conn_t *c)
{
    h2o_socket_t *sock = c->h->sock;
    /* A plain socket with nothing in flight is written now: h2o's write would go through
     * uv_write, whose completion costs a loop turn and an epoll_ctl on every write. What the
     * socket does not take (or an error, which h2o then reports) goes the usual way. */
    if (sock->ssl == NULL) {
        ssize_t n;
        do
            n = write(h2o_socket_get_fd(sock), c->out, c->out_len);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)c->out_len) {
            c->out_len = 0;
            return;
        }
        if (n > 0) {
            memmove(c->out, c->out + n, c->out_len - (size_t)n);
            c->out_len -= (size_t)n;
        }
    }
    h2o_iovec_t buf = h2o_iovec_init(c->out, c->out_len);
    h2o_socket_write(sock, &buf, 1, on_written);
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    h2o_websocket_conn_t *h = user;
    ws_conn_t *c = h->data;
    if (h2o_socket_is_writing(h->sock)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 2048;
        while (cap < c->out_len + len)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    /* A frame's header comes flagged MORE, its payload next. After a whole frame, write when it
     * was the last message queued (wslay counts a message until its last byte is taken), when
     * wslay reads no more (the peer closed, or a protocol error: h2o may then close the socket
     * before our flush, and the close frame must be out), or when enough is waiting; otherwise
     * the worker's flush writes it later in this loop iteration. */
    if (!(flags & WSLAY_MSG_MORE) &&
        (wslay_event_get_queued_msg_count(ctx) <= 1 || !wslay_event_want_read(ctx) || c->out_len >= WS_GATHER_MAX))
        write_out(c);
    else
        mark_pending(c);
    return (ssize_t)len;
}

static void on_msg(h2o_websocket_conn_t *h, const struct wslay_event_on_msg_recv_arg *arg)
{
    ws_conn_t *c = h->data;
    if (arg == NULL) {
        /* the socket is done (closed by either side, or an error) */
        if (wslay_event_get_close_sent(h->ws_ctx) && wslay_event_get_status_code_sent(h->ws_ctx) == 1009 && !c->closing)
            c->handler->on_error(c->data, "message too big", 1009);
        if (h2o_linklist_is_linked(&c->pending))
            h2o_linklist_unlink(&c->pending);
        h2o_linklist_unlink(&c->all);
        c->handler->on_closed(c->data);
        h2o_websocket_close(h);
        free(c->out);
        free(c);
        return;
    }
    c->in_callback = 1;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (!c->closing)
            c->handler->on_text(c->data, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        if (!c->closing && c->handler->on_binary != NULL) {
            c->handler->on_binary(c->data, arg->msg, arg->msg_length);
        } else if (!c->closing) {
            c->handler->on_error(c->data, "binary frame", 1003);
            ws_close(c, 1003, "text frames only");
        }
        break;
    default: /* close, ping, pong: wslay answers those itself */
        break;
    }
    c->in_callback = 0;
}

ws_conn_t *ws_upgrade(http_req_t *r, size_t max_msg, const ws_handler_t *h, void *data)
{
    return ws_upgrade_protocol(r, max_msg, NULL, h, data);
}

int ws_offered_protocol(http_req_t *r, const char *name)
{
    h2o_iovec_t v = http_header(r, "sec-websocket-protocol");
    size_t nl = strlen(name);
    const char *p = v.base, *end = v.base + v.len;
    while (p != NULL && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *q = p;
        while (q < end && *q != ',' && *q != ' ' && *q != '\t')
            q++;
        if ((size_t)(q - p) == nl && memcmp(p, name, nl) == 0)
            return 1;
        p = q;
    }
    return 0;
}

ws_conn_t *ws_upgrade_protocol(http_req_t *r, size_t max_msg, const char *subprotocol, const ws_handler_t *h,
                               void *data)
{
    const char *key = NULL;
    if (r->req->version >= 0x200) { /* h2o's upgrade is HTTP/1 only (it asserts) */
        http_send_error(r, 400, "http1_required", "WebSocket upgrades need HTTP/1.1", NULL);
        return NULL;
    }
    if (h2o_is_websocket_handshake(r->req, &key) != 0 || key == NULL) {
        http_add_header(r, "upgrade", "websocket");
        http_send_error(r, 400, "websocket_required", "this endpoint is a WebSocket (Twilio Media Streams)", NULL);
        return NULL;
    }
    ws_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return NULL;
    }
    c->w = r->w;
    c->handler = h;
    c->data = data;
    c->max_msg = max_msg;
    r->status = 101;
    if (subprotocol != NULL)
        h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, H2O_STRLIT("sec-websocket-protocol"), 0, NULL,
                              subprotocol, strlen(subprotocol));
    c->h = h2o_upgrade_to_websocket(r->req, key, c, on_msg);
    c->callbacks = c->h->ws_callbacks;
    c->callbacks.send_callback = send_cb;
    wslay_event_config_set_callbacks(c->h->ws_ctx, &c->callbacks);
    wslay_event_config_set_max_recv_msg_length(c->h->ws_ctx, max_msg);
    h2o_linklist_insert(&r->w->ws_conns, &c->all);
    return c;
}

int ws_send_text(ws_conn_t *c, const char *msg, size_t len)
{
    if (c->closing || wslay_event_get_queued_msg_count(c->h->ws_ctx) >= WS_QUEUE_MAX)
        return -1;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)msg, len};
    if (wslay_event_queue_msg(c->h->ws_ctx, &m) != 0)
        return -1;
    mark_pending(c);
    return 0;
}

int ws_send_binary(ws_conn_t *c, const void *msg, size_t len)
{
    if (c->closing || wslay_event_get_queued_msg_count(c->h->ws_ctx) >= WS_QUEUE_MAX)
        return -1;
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, msg, len};
    if (wslay_event_queue_msg(c->h->ws_ctx, &m) != 0)
        return -1;
    mark_pending(c);
    return 0;
}

void ws_close(ws_conn_t *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    wslay_event_queue_close(c->h->ws_ctx, (uint16_t)code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    mark_pending(c);
}

void ws_flush(worker_t *w)
{
    while (!h2o_linklist_is_empty(&w->ws_pending)) {
        ws_conn_t *c = H2O_STRUCT_FROM_MEMBER(ws_conn_t, pending, w->ws_pending.next);
        h2o_linklist_unlink(&c->pending);
        /* the upgrade completes asynchronously: until then h->sock is NULL and wslay waits */
        if (c->h->sock == NULL) {
            continue;
        }
        if (c->out_len > 0 && !h2o_socket_is_writing(c->h->sock))
            write_out(c);            /* frames gathered while more messages were queued */
        h2o_websocket_proceed(c->h); /* may free c: do not touch it afterwards */
    }
}

void ws_close_all(worker_t *w)
{
    for (h2o_linklist_t *l = w->ws_conns.next; l != &w->ws_conns; l = l->next)
        ws_close(H2O_STRUCT_FROM_MEMBER(ws_conn_t, all, l), 1001, "server restarting");
}
