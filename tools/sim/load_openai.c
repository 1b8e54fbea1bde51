/* switchboard-sim load --openai-port: the fake OpenAI Realtime server; see load_openai.h */
#define _GNU_SOURCE /* memmem, pthread_getcpuclockid */
#include "tools/sim/load_openai.h"
#include "server/wsframe.h"

#include <uv.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEAD_MAX 8192          /* the upgrade request's head; over it: 400 */
#define RBUF     HEAD_MAX      /* a connection's read buffer, grown (once) for a bigger frame */
#define MSG_MAX  (1024 * 1024) /* a message, however fragmented; over it: close 1009 */
#define OBUF     16384         /* a connection's output (~38 deltas); full: deltas dropped and counted */
#define B64_MAX  256           /* an append's audio kept for its delta (switchboard sends 216) */
#define CTRL_MAX 512           /* the messages built with snprintf */

enum { S_HANDSHAKE, S_OPEN, S_CLOSING, S_DEAD };

typedef struct conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    struct openai_fake *f;
    struct conn *prev, *next; /* every connection, for the stop */
    struct conn *dirty_next;  /* deltas queued at this timer run, to flush */
    int state, dirty, close_after;
    unsigned pending;    /* its appends in the ring: a closed connection is freed when none are left */
    unsigned char *rbuf; /* one read buffer: frames are unmasked and handled where they are */
    size_t rcap, rlen;
    unsigned char *msg; /* a fragmented message gathered (allocated when one first comes) */
    size_t mcap, mlen;
    int msg_op; /* its opcode, 0 when none is open */
    size_t olen, ooff, inflight;
    unsigned char obuf[OBUF];
} conn_t;

/* An append waiting for its delta */
typedef struct pend {
    conn_t *c;
    uint64_t due_ms; /* on the fake's loop clock */
    uint16_t len;
    char b64[B64_MAX];
} pend_t;

struct openai_fake {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    uv_async_t stop;
    uv_thread_t thread;
    int delay_ms, stopping;
    pend_t *ring;
    size_t cap, head, n;
    conn_t *conns, *dirty;
    uint64_t next_event, next_resp;
    openai_counts_t count;
};

/* ---- connections: freed once closed and no append of theirs waits ---- */

static void conn_free(conn_t *c)
{
    openai_fake_t *f = c->f;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->rbuf);
    free(c->msg);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->state = S_DEAD;
    if (c->pending == 0 || c->f->stopping)
        conn_free(c);
}

static void close_conn(conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->state = S_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- output: one buffer per connection, uv_try_write, the rest by uv_write ---- */

static void flush(conn_t *c);

static void on_written(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    c->ooff += c->inflight;
    c->inflight = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            close_conn(c);
        return;
    }
    if (c->ooff == c->olen)
        c->ooff = c->olen = 0;
    flush(c);
}

static void flush(conn_t *c)
{
    if (c->inflight > 0 || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->ooff == c->olen) {
        if (c->close_after)
            close_conn(c); /* a 400, or the close frame, has gone */
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->obuf + c->ooff, (unsigned)(c->olen - c->ooff));
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        close_conn(c);
        return;
    }
    c->ooff += n > 0 ? (size_t)n : 0;
    if (c->ooff == c->olen) {
        c->ooff = c->olen = 0;
        if (c->close_after)
            close_conn(c);
        return;
    }
    b = uv_buf_init((char *)c->obuf + c->ooff, (unsigned)(c->olen - c->ooff));
    c->inflight = b.len;
    c->wreq.data = c;
    uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static unsigned char *reserve(conn_t *c, size_t n)
{
    if (c->olen + n > OBUF && c->inflight == 0 && c->ooff > 0) {
        memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
        c->olen -= c->ooff;
        c->ooff = 0;
    }
    return c->olen + n <= OBUF ? c->obuf + c->olen : NULL;
}

/* a server frame into the output (flushed by the caller); -1 when it does not fit */
static int put_frame(conn_t *c, int opcode, const void *payload, size_t len)
{
    unsigned char *p = reserve(c, len + 10);
    if (p == NULL)
        return -1;
    size_t h = wsframe_head(p, opcode, len, NULL);
    memcpy(p + h, payload, len);
    c->olen += h + len;
    return 0;
}

/* a control message must go out: a full buffer means the client stopped reading */
static void put_text(conn_t *c, const char *msg, int n)
{
    if (n <= 0 || n >= CTRL_MAX || put_frame(c, 1, msg, (size_t)n) != 0)
        close_conn(c);
}

/* a close frame with this code, then the connection closes once it has gone */
static void close_with(conn_t *c, unsigned code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    if (put_frame(c, 8, p, 2) != 0) {
        close_conn(c);
        return;
    }
    c->state = S_CLOSING;
    c->close_after = 1;
}

static void protocol_error(conn_t *c, unsigned code)
{
    c->f->count.protocol_errors++;
    close_with(c, code);
}

/* decimal digits of v at p; returns the end */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* ---- the Realtime events ---- */

static void send_session(conn_t *c, const char *type)
{
    char m[CTRL_MAX];
    int n = snprintf(m, sizeof(m),
                     "{\"type\":\"%s\",\"event_id\":\"evt_%llu\",\"session\":{\"type\":\"realtime\",\"object\":"
                     "\"realtime.session\"}}",
                     type, (unsigned long long)++c->f->next_event);
    put_text(c, m, n);
}

/* a response with no output: the greeting (and whatever else is asked for) is not measured */
static void send_response(conn_t *c)
{
    static const char *const phases[2][2] = {{"response.created", "in_progress"}, {"response.done", "completed"}};
    unsigned long long id = ++c->f->next_resp;
    for (int i = 0; i < 2 && c->state == S_OPEN; i++) {
        char m[CTRL_MAX];
        int n = snprintf(m, sizeof(m),
                         "{\"type\":\"%s\",\"event_id\":\"evt_%llu\",\"response\":{\"id\":\"resp_%llu\",\"object\":"
                         "\"realtime.response\",\"status\":\"%s\",\"output\":[]}}",
                         phases[i][0], (unsigned long long)++c->f->next_event, id, phases[i][1]);
        put_text(c, m, n);
    }
}

/* The delta of an append, written straight into the output; -1 when it does not fit */
static int put_delta(conn_t *c, const char *b64, size_t len)
{
    static const char d1[] = "{\"type\":\"response.output_audio.delta\",\"event_id\":\"evt_";
    static const char d2[] = "\",\"response_id\":\"resp_echo\",\"item_id\":\"item_echo\",\"output_index\":0,"
                             "\"content_index\":0,\"delta\":\"";
    static const char d3[] = "\"}";
    char id[20];
    size_t idl = (size_t)(put_u64(id, ++c->f->next_event) - id);
    size_t n = sizeof(d1) - 1 + idl + sizeof(d2) - 1 + len + sizeof(d3) - 1;
    unsigned char *p = reserve(c, n + 10);
    if (p == NULL)
        return -1;
    p += wsframe_head(p, 1, n, NULL);
    memcpy(p, d1, sizeof(d1) - 1);
    p += sizeof(d1) - 1;
    memcpy(p, id, idl);
    p += idl;
    memcpy(p, d2, sizeof(d2) - 1);
    p += sizeof(d2) - 1;
    memcpy(p, b64, len);
    p += len;
    memcpy(p, d3, sizeof(d3) - 1);
    c->olen = (size_t)(p + sizeof(d3) - 1 - c->obuf);
    return 0;
}

static void on_timer(uv_timer_t *t);

/* An append: its audio waits in the ring for its due time */
static void on_append(conn_t *c, const char *a, size_t len)
{
    openai_fake_t *f = c->f;
    f->count.appends++;
    if (len == 0 || len > B64_MAX || f->n == f->cap) {
        f->count.dropped++;
        return;
    }
    size_t i = f->head + f->n < f->cap ? f->head + f->n : f->head + f->n - f->cap;
    pend_t *e = &f->ring[i];
    size_t o = 0;
    for (size_t k = 0; k < len; k++) {
        if (a[k] == '\\' && k + 1 < len && a[k + 1] == '/')
            k++; /* a JSON writer's \/ (switchboard writes none) */
        e->b64[o++] = a[k];
    }
    e->len = (uint16_t)o;
    e->c = c;
    e->due_ms = uv_now(&f->loop) + (uint64_t)f->delay_ms;
    c->pending++;
    if (f->n++ == 0)
        uv_timer_start(&f->timer, on_timer, (uint64_t)f->delay_ms, 0);
}

/* Every delta now due: each connection's gathered, then one write per connection */
static void on_timer(uv_timer_t *t)
{
    openai_fake_t *f = t->data;
    uint64_t now = uv_now(&f->loop);
    while (f->n > 0 && f->ring[f->head].due_ms <= now) {
        pend_t *e = &f->ring[f->head];
        f->head = f->head + 1 == f->cap ? 0 : f->head + 1;
        f->n--;
        conn_t *c = e->c;
        c->pending--;
        if (c->state != S_OPEN) {
            f->count.expired++;
            if (c->state == S_DEAD && c->pending == 0)
                conn_free(c);
            continue;
        }
        if (put_delta(c, e->b64, e->len) != 0) {
            f->count.dropped++; /* the client is not reading fast enough */
            continue;
        }
        f->count.deltas++;
        if (!c->dirty) {
            c->dirty = 1;
            c->dirty_next = f->dirty;
            f->dirty = c;
        }
    }
    while (f->dirty != NULL) {
        conn_t *c = f->dirty;
        f->dirty = c->dirty_next;
        c->dirty = 0;
        flush(c);
    }
    if (f->n > 0)
        uv_timer_start(&f->timer, on_timer, f->ring[f->head].due_ms - now, 0);
}

static int type_is(const char *t, size_t tl, const char *want)
{
    return tl == strlen(want) && memcmp(t, want, tl) == 0;
}

/* A whole text message. switchboard writes appends compactly with the type first: that shape
 * is recognised by its prefix; anything else has its top-level "type" found by a scan. */
static void on_message(conn_t *c, const char *m, size_t n)
{
    static const char append[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
    const size_t al = sizeof(append) - 1;
    if (n > al && memcmp(m, append, al) == 0) {
        const char *q = memchr(m + al, '"', n - al);
        if (q != NULL) {
            on_append(c, m + al, (size_t)(q - m - al));
            return;
        }
    }
    const char *t, *a;
    size_t tl, alen;
    if (json_top_string(m, n, "type", &t, &tl) != 0) {
        c->f->count.other++;
        return;
    }
    if (type_is(t, tl, "input_audio_buffer.append")) {
        if (json_top_string(m, n, "audio", &a, &alen) == 0)
            on_append(c, a, alen);
        else
            c->f->count.other++;
        return;
    }
    c->f->count.other++;
    if (type_is(t, tl, "session.update"))
        send_session(c, "session.updated");
    else if (type_is(t, tl, "response.create"))
        send_response(c);
    /* response.cancel, conversation.item.truncate, conversation.item.create, ...: ignored */
}

/* a data frame's payload appended to the message being gathered; -1 over MSG_MAX */
static int gather(conn_t *c, const unsigned char *p, size_t len)
{
    if (c->mlen + len > MSG_MAX)
        return -1;
    if (c->mlen + len > c->mcap) {
        size_t cap = c->mcap ? c->mcap : 4096;
        while (cap < c->mlen + len)
            cap *= 2;
        cap = cap > MSG_MAX ? MSG_MAX : cap;
        unsigned char *m = realloc(c->msg, cap);
        if (m == NULL)
            return -1;
        c->msg = m;
        c->mcap = cap;
    }
    memcpy(c->msg + c->mlen, p, len);
    c->mlen += len;
    return 0;
}

static void on_frame(conn_t *c, const ws_frame_t *fr, unsigned char *p)
{
    switch (fr->opcode) {
    case 0: /* a continuation */
        if (c->msg_op == 0) {
            protocol_error(c, 1002);
        } else if (gather(c, p, fr->len) != 0) {
            protocol_error(c, 1009);
        } else if (fr->fin) {
            if (c->msg_op == 1)
                on_message(c, (const char *)c->msg, c->mlen);
            else
                c->f->count.other++;
            c->msg_op = 0;
            c->mlen = 0;
        }
        break;
    case 1:
    case 2:
        if (c->msg_op != 0) {
            protocol_error(c, 1002); /* a new message inside a fragmented one */
        } else if (!fr->fin) {
            c->msg_op = fr->opcode;
            if (gather(c, p, fr->len) != 0)
                protocol_error(c, 1009);
        } else if (fr->opcode == 1) {
            on_message(c, (const char *)p, fr->len); /* whole: read where it lies */
        } else {
            c->f->count.other++;
        }
        break;
    case 8: /* the close echoed (its code, or none), then the connection ends */
        if (fr->len == 1) {
            protocol_error(c, 1002);
            break;
        }
        if (put_frame(c, 8, p, fr->len < 2 ? fr->len : 2) != 0) {
            close_conn(c);
            break;
        }
        c->state = S_CLOSING;
        c->close_after = 1;
        break;
    case 9:
        if (put_frame(c, 10, p, fr->len) != 0)
            close_conn(c);
        break;
    default: /* a pong */
        break;
    }
}

/* Every whole frame in the read buffer */
static void on_frames(conn_t *c)
{
    size_t off = 0, want = 0;
    while (c->state == S_OPEN && off < c->rlen) {
        wsframe_t w; /* the server's own codec: client frames are masked */
        int r = wsframe_parse(c->rbuf + off, c->rlen - off, MSG_MAX, 1, &w);
        if (r == 0)
            break;
        if (r != 1) {
            protocol_error(c, r); /* 1002: unmasked, reserved bits or opcode, a bad control frame; 1009 */
            break;
        }
        ws_frame_t fr = {.opcode = w.opcode, .fin = w.fin, .head = w.head, .len = w.len};
        if (fr.opcode < 8 && c->mlen + fr.len > MSG_MAX) {
            protocol_error(c, 1009);
            break;
        }
        if (c->rlen - off < fr.head + fr.len) {
            want = fr.head + fr.len;
            break;
        }
        unsigned char *p = c->rbuf + off + fr.head;
        wsframe_mask(p, p, fr.len, w.mask, 0);
        on_frame(c, &fr, p);
        off += fr.head + fr.len;
    }
    if (c->state != S_OPEN) {
        c->rlen = 0;
        return;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (want > c->rcap) { /* a frame bigger than the buffer: the buffer grows to hold it */
        unsigned char *b = realloc(c->rbuf, want);
        if (b == NULL) {
            protocol_error(c, 1009);
            c->rlen = 0;
            return;
        }
        c->rbuf = b;
        c->rcap = want;
    }
}

/* ---- the upgrade ---- */

static void refuse(conn_t *c, const char *why)
{
    char m[CTRL_MAX];
    int body = (int)strlen(why) + 1;
    int n = snprintf(m, sizeof(m),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s\n",
                     body, why);
    c->f->count.bad_handshakes++;
    c->state = S_CLOSING;
    c->rlen = 0;
    if (n <= 0 || n >= (int)sizeof(m) || reserve(c, (size_t)n) == NULL) {
        close_conn(c);
        return;
    }
    memcpy(c->obuf + c->olen, m, (size_t)n);
    c->olen += (size_t)n;
    c->close_after = 1;
}

static void on_handshake(conn_t *c)
{
    const char *buf = (const char *)c->rbuf;
    const char *end = memmem(buf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->rlen >= HEAD_MAX)
            refuse(c, "request head over 8 KiB");
        return;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char v[64], key[64];
    if (memcmp(buf, "GET ", 4) != 0) {
        refuse(c, "not a GET");
        return;
    }
    if (http_header_value(buf, head_len, "upgrade", v, sizeof(v)) != 0 || strcasecmp(v, "websocket") != 0) {
        refuse(c, "not a WebSocket upgrade (Upgrade: websocket)");
        return;
    }
    if (http_header_value(buf, head_len, "sec-websocket-key", key, sizeof(key)) != 0 || key[0] == '\0') {
        refuse(c, "no Sec-WebSocket-Key");
        return;
    }
    char accept[32], m[CTRL_MAX];
    ws_accept_for(key, accept);
    int n = snprintf(m, sizeof(m),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    memcpy(c->obuf + c->olen, m, (size_t)n); /* the first output: it fits */
    c->olen += (size_t)n;
    c->state = S_OPEN;
    c->f->count.upgraded++;
    memmove(c->rbuf, c->rbuf + head_len, c->rlen - head_len);
    c->rlen -= head_len;
    send_session(c, "session.created"); /* as the real server does, before anything is asked */
}

/* ---- the loop ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn_t *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (n < 0) {
        close_conn(c);
        return;
    }
    c->rlen += (size_t)n;
    if (c->state == S_CLOSING) {
        c->rlen = 0; /* closing: nothing more is read */
        return;
    }
    if (c->state == S_HANDSHAKE)
        on_handshake(c);
    if (c->state == S_OPEN)
        on_frames(c);
    flush(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    openai_fake_t *f = server->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    unsigned char *rbuf = c != NULL ? malloc(RBUF) : NULL;
    if (rbuf == NULL) {
        free(c);
        fprintf(stderr, "fake OpenAI: out of memory for a connection\n");
        return;
    }
    c->f = f;
    c->rbuf = rbuf;
    c->rcap = RBUF;
    c->next = f->conns;
    if (f->conns != NULL)
        f->conns->prev = c;
    f->conns = c;
    uv_tcp_init(&f->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        close_conn(c);
        return;
    }
    f->count.accepted++;
    uv_tcp_nodelay(&c->tcp, 1); /* small frames, latency measured */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_stop(uv_async_t *a)
{
    openai_fake_t *f = a->data;
    f->stopping = 1;
    f->count.expired += f->n; /* appends whose delta the run's end forestalled */
    f->n = 0;
    uv_close((uv_handle_t *)&f->listener, NULL);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_close((uv_handle_t *)&f->stop, NULL);
    for (conn_t *c = f->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == S_DEAD)
            conn_free(c); /* closed already, its appends no longer awaited */
        else
            close_conn(c);
    }
}

static void run(void *arg)
{
    openai_fake_t *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* ---- the interface ---- */

static void fake_free(openai_fake_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the handles' close callbacks */
    if (uv_loop_close(&f->loop) != 0)
        fprintf(stderr, "fake OpenAI: its loop still had handles at the end\n");
    free(f->ring);
    free(f);
}

openai_fake_t *openai_fake_start(int port, int delay_ms, size_t ring)
{
    if (load_selfcheck() != 0)
        return NULL;
    openai_fake_t *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->ring = malloc((ring ? ring : 1) * sizeof(pend_t))) == NULL || uv_loop_init(&f->loop) != 0) {
        fprintf(stderr, "--openai-port: out of memory\n");
        if (f != NULL)
            free(f->ring);
        free(f);
        return NULL;
    }
    f->cap = ring ? ring : 1;
    f->delay_ms = delay_ms;
    uv_tcp_init(&f->loop, &f->listener);
    uv_timer_init(&f->loop, &f->timer);
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->listener.data = f->timer.data = f->stop.data = f;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    int rc = uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&f->listener, 511, on_connection);
    if (rc == 0)
        rc = uv_thread_create(&f->thread, run, f);
    if (rc != 0) {
        fprintf(stderr, "--openai-port %d: %s\n", port, uv_strerror(rc));
        uv_close((uv_handle_t *)&f->listener, NULL);
        uv_close((uv_handle_t *)&f->timer, NULL);
        uv_close((uv_handle_t *)&f->stop, NULL);
        fake_free(f);
        return NULL;
    }
    return f;
}

double openai_fake_cpu_s(const openai_fake_t *f)
{
    clockid_t id;
    struct timespec ts;
    if (f == NULL || pthread_getcpuclockid(f->thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void openai_fake_stop(openai_fake_t *f, openai_counts_t *out)
{
    if (f == NULL)
        return;
    uv_async_send(&f->stop);
    uv_thread_join(&f->thread);
    if (out != NULL)
        *out = f->count; /* the thread has ended: its counters are still */
    fake_free(f);
}
