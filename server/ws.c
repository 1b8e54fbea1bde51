#include "server/ws.h"
#include "server/worker.h"
#include "server/wsframe.h"

#include <errno.h>
#include <h2o/http1.h>
#include <h2o/websocket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ws_conn {
    h2o_socket_t *sock; /* NULL until the upgrade completes */
    worker_t *w;
    const ws_handler_t *handler;
    void *data;
    h2o_linklist_t all;     /* the worker's connections */
    h2o_linklist_t pending; /* has output to write after this iteration */
    h2o_timeout_entry_t close_wait;
    size_t max_msg;
    unsigned in_callback : 1, closing : 1, close_sent : 1, got_close : 1, ending : 1, dead : 1, frag_on : 1;
    unsigned waiting : 1; /* reading stopped while a fiber reads frames (see read_frames) */
    int frag_op;
    unsigned queued; /* messages in out, for WS_QUEUE_MAX */
    /* frames for the next write; wbuf is the one being written (untouched until it is done) */
    unsigned char *out, *wbuf;
    size_t out_len, out_cap, wbuf_len, wbuf_cap;
    unsigned char *frag; /* a fragmented message being gathered */
    size_t frag_len, frag_cap;
};

static void flush_one(ws_conn_t *c);

static void mark_pending(ws_conn_t *c)
{
    if (!h2o_linklist_is_linked(&c->pending)) {
        h2o_linklist_insert(&c->w->ws_pending, &c->pending);
        worker_flush_soon(c->w);
    }
}

/* ---- the end ----------------------------------------------------------------------------- */

static void destroy(ws_conn_t *c, int notify)
{
    if (h2o_linklist_is_linked(&c->pending))
        h2o_linklist_unlink(&c->pending);
    if (h2o_timeout_is_linked(&c->close_wait))
        h2o_timeout_unlink(&c->close_wait);
    h2o_linklist_unlink(&c->all);
    worker_flush_soon(c->w); /* what on_closed writes is committed this turn, even from a timer */
    if (notify)
        c->handler->on_closed(c->data);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    free(c->out);
    free(c->wbuf);
    free(c->frag);
    free(c);
}

/* The connection is done: torn down now, or once the callback we are inside of returns. */
static void finish(ws_conn_t *c)
{
    c->dead = 1;
    if (!c->in_callback)
        destroy(c, 1);
}

static void on_close_wait(h2o_timeout_entry_t *e)
{
    finish(H2O_STRUCT_FROM_MEMBER(ws_conn_t, close_wait, e));
}

/* ---- writing ----------------------------------------------------------------------------- */

static int frame_out(ws_conn_t *c, int opcode, const void *payload, size_t len)
{
    if (wsframe_reserve(&c->out, &c->out_cap, c->out_len + len + WSFRAME_HEAD_MAX) != 0)
        return -1;
    c->out_len += wsframe_head(c->out + c->out_len, opcode, len, NULL);
    memcpy(c->out + c->out_len, payload, len);
    c->out_len += len;
    return 0;
}

/* What follows our close frame once it is out: the end, now if the peer's close came first,
 * else when it answers (or, after a refusal, stops sending) or about a second passes. A
 * refused peer may still be sending: its bytes are read and dropped meanwhile, since closing
 * with unread input would reset the connection and lose the close frame on its way. */
static void after_close_sent(ws_conn_t *c)
{
    if (c->got_close) {
        finish(c);
        return;
    }
    if (c->ending && c->sock->ssl == NULL)
        shutdown(h2o_socket_get_fd(c->sock), SHUT_WR); /* our side is done: the peer sees EOF */
    if (!h2o_timeout_is_linked(&c->close_wait))
        h2o_timeout_link(&c->w->loop, &c->w->h2o.one_sec_timeout, &c->close_wait);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    ws_conn_t *c = sock->data;
    c->wbuf_len = 0;
    if (err != NULL) {
        finish(c);
        return;
    }
    if (c->close_sent && c->out_len == 0) {
        after_close_sent(c);
        return;
    }
    flush_one(c);
}

/* Writes what is gathered, unless a write is in flight (its completion writes the rest). */
static void flush_one(ws_conn_t *c)
{
    if (c->sock == NULL || c->dead || c->wbuf_len > 0 || c->out_len == 0)
        return;
    /* swap: new frames gather in out while wbuf is written */
    unsigned char *b = c->wbuf;
    size_t cap = c->wbuf_cap;
    c->wbuf = c->out;
    c->wbuf_cap = c->out_cap;
    c->wbuf_len = c->out_len;
    c->out = b;
    c->out_cap = cap;
    c->out_len = 0;
    c->queued = 0;
    size_t off = 0;
    /* A plain socket is written now: h2o's write would go through uv_write, whose completion
     * costs a loop turn and an epoll_ctl every time. What it does not take, and errors (which
     * h2o then reports), go the usual way. */
    if (c->sock->ssl == NULL) {
        ssize_t n;
        do
            n = send(h2o_socket_get_fd(c->sock), c->wbuf, c->wbuf_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)c->wbuf_len) {
            c->wbuf_len = 0;
            if (c->close_sent)
                after_close_sent(c);
            return;
        }
        if (n > 0)
            off = (size_t)n;
    }
    h2o_iovec_t buf = h2o_iovec_init(c->wbuf + off, c->wbuf_len - off);
    h2o_socket_write(c->sock, &buf, 1, on_written);
}

/* Our close frame, after what is queued; nothing is queued after it. */
static void send_close(ws_conn_t *c, int code, const char *reason)
{
    if (c->close_sent)
        return;
    unsigned char b[125];
    size_t rl = reason != NULL ? strlen(reason) : 0;
    if (rl > sizeof(b) - 2)
        rl = sizeof(b) - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    if (rl > 0)
        memcpy(b + 2, reason, rl);
    c->closing = 1;
    c->close_sent = 1;
    if (frame_out(c, 8, b, rl + 2) != 0) {
        finish(c);
        return;
    }
    mark_pending(c);
}

/* The peer broke the protocol or sent too much: tell the handler, close with code at once and
 * let the connection go without waiting for an answer. */
static void refuse(ws_conn_t *c, const char *what, int code)
{
    int told = c->closing;
    c->ending = 1;
    if (!told)
        c->handler->on_error(c->data, what, code); /* which may queue the close itself */
    if (!c->close_sent)
        send_close(c, code, NULL);
    flush_one(c); /* now: nothing more is read */
}

/* ---- reading ----------------------------------------------------------------------------- */

static void deliver(ws_conn_t *c, int opcode, const unsigned char *msg, size_t len)
{
    if (c->closing)
        return;
    if (opcode == 1) {
        c->handler->on_text(c->data, (const char *)msg, len);
    } else if (c->handler->on_binary != NULL) {
        c->handler->on_binary(c->data, msg, len);
    } else {
        c->handler->on_error(c->data, "binary frame", 1003);
        ws_close(c, 1003, "text frames only");
    }
}

static void on_frame(ws_conn_t *c, const wsframe_t *f, unsigned char *p)
{
    switch (f->opcode) {
    case 0:
    case 1:
    case 2:
        if ((f->opcode == 0) != (c->frag_on != 0)) {
            refuse(c, f->opcode == 0 ? "continuation without a message" : "a message inside a fragmented one", 1002);
            return;
        }
        if (f->fin && !c->frag_on) { /* the usual case: handed over where it lies */
            deliver(c, f->opcode, p, f->len);
            return;
        }
        if (!c->frag_on) {
            c->frag_on = 1;
            c->frag_op = f->opcode;
            c->frag_len = 0;
        }
        if (f->len > c->max_msg - c->frag_len) {
            refuse(c, "message too big", 1009);
            return;
        }
        if (wsframe_reserve(&c->frag, &c->frag_cap, c->frag_len + f->len) != 0) {
            refuse(c, "out of memory", 1011);
            return;
        }
        memcpy(c->frag + c->frag_len, p, f->len);
        c->frag_len += f->len;
        if (f->fin) {
            c->frag_on = 0;
            deliver(c, c->frag_op, c->frag, c->frag_len);
        }
        return;
    case 8: {
        c->got_close = 1;
        int code = f->len >= 2 ? p[0] << 8 | p[1] : 1000;
        if (f->len == 1) {
            refuse(c, "a close frame of one byte", 1002);
            return;
        }
        if (c->close_sent) {
            if (c->wbuf_len == 0 && c->out_len == 0)
                finish(c); /* the handshake is complete */
            return;
        }
        /* a code a peer may not send (RFC 6455 7.4: 1005, 1006, 1015, unassigned ranges) is not echoed */
        int sendable =
            (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
        send_close(c, sendable ? code : 1002, NULL);
        return;
    }
    case 9:
        if (!c->close_sent && frame_out(c, 10, p, f->len) == 0)
            mark_pending(c);
        return;
    default: /* pong */
        return;
    }
}

static void on_read(h2o_socket_t *sock, const char *err);

/* The frames read so far, in order. On a fiber a handler may wait for the database: reading
 * stays stopped meanwhile, so the connection's next frames wait their turn in h2o's buffer, and
 * a close meanwhile only marks the connection dead (in_callback) for this to finish. */
static void read_frames(void *arg)
{
    ws_conn_t *c = arg;
    h2o_socket_t *sock = c->sock;
    unsigned char *b = (unsigned char *)sock->input->bytes;
    size_t avail = sock->input->size, pos = 0;
    while (!c->dead && !c->ending) {
        wsframe_t f;
        int r = wsframe_parse(b + pos, avail - pos, c->max_msg, 1, &f);
        if (r == 0)
            break;
        if (r != 1) {
            refuse(c, r == 1009 ? "message too big" : "bad frame", r);
            break;
        }
        if (avail - pos < f.head + f.len)
            break; /* h2o's buffer grows to hold it: at most max_msg */
        unsigned char *p = b + pos + f.head;
        wsframe_mask(p, p, f.len, f.mask, 0); /* unmasked in place: the handler reads it there */
        pos += f.head + f.len;
        on_frame(c, &f, p);
    }
    c->in_callback = 0;
    if (c->dead) {
        destroy(c, 1);
        return;
    }
    h2o_buffer_consume(&sock->input, c->ending ? sock->input->size : pos);
    if (c->waiting) { /* read anew (nothing was read meanwhile: a partial frame stays buffered) */
        c->waiting = 0;
        h2o_socket_read_start(sock, on_read);
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    ws_conn_t *c = sock->data;
    if (err != NULL) {
        finish(c);
        return;
    }
    if (c->ending) { /* refused: what still comes is dropped unread */
        h2o_buffer_consume(&sock->input, sock->input->size);
        return;
    }
    c->in_callback = 1;
    if (c->w->fibers == NULL) {
        read_frames(c);
        return;
    }
    h2o_socket_read_stop(sock);
    c->waiting = 1;
    if (worker_run(c->w, read_frames, c) != 0) { /* c is not to be touched after a run */
        c->waiting = 0;
        c->in_callback = 0;
        refuse(c, "out of memory", 1011);
    }
}

static void on_upgraded(void *data, h2o_socket_t *sock, size_t reqsize)
{
    ws_conn_t *c = data;
    if (sock == NULL) {
        finish(c); /* the 101 could not be sent */
        return;
    }
    c->sock = sock;
    sock->data = c;
    h2o_buffer_consume(&sock->input, reqsize);
    h2o_socket_read_start(sock, on_read);
    mark_pending(c); /* what was queued before the upgrade completed goes out this turn */
    if (sock->input->size > 0)
        on_read(sock, NULL); /* frames that came with the request */
}

/* ---- the public entry points ------------------------------------------------------------- */

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
    if (r->req->version >= 0x200) { /* an upgrade is HTTP/1 only */
        http_send_error(r, 400, "http1_required", "WebSocket upgrades need HTTP/1.1", NULL);
        return NULL;
    }
    if (h2o_is_websocket_handshake(r->req, &key) != 0 || key == NULL) {
        http_add_header(r, "upgrade", "websocket");
        http_send_error(r, 400, "websocket_required", "this endpoint is a WebSocket (Twilio Media Streams)", NULL);
        return NULL;
    }
    /* h2o does not look at the version: RFC 6455 is 13, and a refusal names it */
    h2o_iovec_t ver = http_header(r, "sec-websocket-version");
    if (!h2o_memis(ver.base, ver.len, H2O_STRLIT("13"))) {
        http_add_header(r, "sec-websocket-version", "13");
        http_send_error(r, 400, "websocket_version", "only WebSocket version 13 is spoken", "Sec-WebSocket-Version");
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
    c->close_wait.cb = on_close_wait;
    r->status = 101;
    char accept[29];
    h2o_iovec_t k = http_header(r, "sec-websocket-key"); /* key itself is not NUL-terminated */
    wsframe_accept(k.base, k.len, accept);
    h2o_req_t *req = r->req;
    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, accept,
                          strlen(accept));
    if (subprotocol != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-protocol"), 0, NULL, subprotocol,
                              strlen(subprotocol));
    h2o_linklist_insert(&r->w->ws_conns, &c->all);
    c->in_callback = 1; /* should the upgrade fail inside this call, the caller hears NULL, not on_closed */
    h2o_http1_upgrade(req, NULL, 0, on_upgraded, c);
    c->in_callback = 0;
    if (c->dead) {
        destroy(c, 0);
        return NULL;
    }
    return c;
}

static int queue_msg(ws_conn_t *c, int opcode, const void *msg, size_t len)
{
    if (c->closing || c->dead || c->queued >= WS_QUEUE_MAX || frame_out(c, opcode, msg, len) != 0)
        return -1;
    c->queued++;
    mark_pending(c);
    return 0;
}

int ws_send_text(ws_conn_t *c, const char *msg, size_t len)
{
    return queue_msg(c, 1, msg, len);
}

int ws_send_binary(ws_conn_t *c, const void *msg, size_t len)
{
    return queue_msg(c, 2, msg, len);
}

void ws_close(ws_conn_t *c, int code, const char *reason)
{
    if (c->closing || c->dead)
        return;
    send_close(c, code, reason);
}

void ws_flush(worker_t *w)
{
    while (!h2o_linklist_is_empty(&w->ws_pending)) {
        ws_conn_t *c = H2O_STRUCT_FROM_MEMBER(ws_conn_t, pending, w->ws_pending.next);
        h2o_linklist_unlink(&c->pending);
        flush_one(c); /* may free c: do not touch it afterwards */
    }
}

void ws_close_all(worker_t *w)
{
    for (h2o_linklist_t *l = w->ws_conns.next; l != &w->ws_conns; l = l->next)
        ws_close(H2O_STRUCT_FROM_MEMBER(ws_conn_t, all, l), 1001, "server restarting");
}
