#include "ai/wsc.h"
#include "ai/wsc_http.h"
#include "server/wsframe.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REQ_MAX    (8192 + 4096)
#define READ_ROOM  4096  /* free space offered to each plain read */
#define TLS_IN     16384 /* one TLS record */
#define GATHER_MAX 65536 /* frames gathered into one write */
#define IN_KEEP    65536 /* a read buffer grown past this for one big message is let go after it */

enum { S_CONNECTING, S_TLS, S_UPGRADE, S_OPEN };

struct wsc {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    const wsc_ops_t *ops;
    void *owner;
    SSL *ssl; /* NULL: plain */
    BIO *rbio, *wbio;
    int handles; /* uv handles not yet closed */
    int state;
    unsigned writing : 1, closing : 1, close_sent : 1, ended : 1, silent : 1, fragment : 1, pong_pending : 1,
        timer_user : 1;
    int close_code;
    const char *why; /* NULL, or whybuf */
    char whybuf[256];
    char *host, *path;
    int port;
    size_t max_msg;
    char accept[29]; /* the Sec-WebSocket-Accept we expect */
    char key[25];
    uint64_t rng;
    unsigned char *in; /* received plaintext: a handshake answer, then frames */
    size_t in_len, in_cap;
    unsigned char *out; /* plaintext to send: the request, then frames */
    size_t out_len, out_cap;
    unsigned char *tls_out; /* ciphertext to send */
    size_t tls_out_len, tls_out_cap;
    unsigned char *tls_in; /* one read's ciphertext */
    unsigned char pong[125];
    size_t pong_len;
};

/* ---- the frame codec: server/wsframe's, the server side's too ------------------------------ */

int wsc_frame_parse(const unsigned char *b, size_t avail, size_t max, wsc_frame_t *f)
{
    wsframe_t w;
    int r = wsframe_parse(b, avail, max, 0, &w);
    if (r == 1) {
        f->fin = w.fin;
        f->opcode = w.opcode;
        f->head = w.head;
        f->len = w.len;
    }
    return r;
}

size_t wsc_frame_write(unsigned char *dst, int opcode, const void *payload, size_t len, uint32_t mask)
{
    unsigned char m[4];
    memcpy(m, &mask, 4);
    size_t h = wsframe_head(dst, opcode, len, m);
    wsframe_mask(dst + h, payload, len, m, 0);
    return h + len;
}

/* ---- buffers and small helpers ----------------------------------------------------------- */

/* Masking keys: RFC 6455 wants them unpredictable to whoever chooses the payload; a generator
 * seeded from OpenSSL's per connection does that without a syscall per frame. */
static uint32_t next_mask(wsc_t *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)(z ^ (z >> 31));
}

__attribute__((format(printf, 2, 3))) static void set_why(wsc_t *c, const char *fmt, ...)
{
    if (c->why != NULL)
        return; /* the first cause is the one that matters */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->whybuf, sizeof(c->whybuf), fmt, ap);
    va_end(ap);
    c->why = c->whybuf;
}

static void ssl_why(wsc_t *c, const char *what)
{
    char e[160] = "";
    unsigned long code = ERR_get_error();
    if (code != 0)
        ERR_error_string_n(code, e, sizeof(e));
    ERR_clear_error();
    set_why(c, "%s%s%s", what, e[0] != '\0' ? ": " : "", e);
}

/* ---- the end ----------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    wsc_t *c = h->data;
    if (--c->handles > 0)
        return;
    if (!c->silent)
        c->ops->closed(c->owner, c->why);
    SSL_free(c->ssl); /* and its BIOs */
    free(c->in);
    free(c->out);
    free(c->tls_out);
    free(c->tls_in);
    free(c->host);
    free(c->path);
    free(c);
}

/* Closes the socket and the timer; ops->closed follows from the loop. */
static void end(wsc_t *c)
{
    if (c->ended)
        return;
    c->ended = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed); /* a pending connect or write is cancelled */
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

#define fail(c, ...) (set_why((c), __VA_ARGS__), end(c))

static void on_grace(uv_timer_t *t)
{
    end(t->data);
}

/* A close frame with code, then the grace period; the server ends the connection. */
static void begin_close(wsc_t *c, int code, unsigned grace_ms)
{
    if (c->closing || c->ended)
        return;
    c->closing = 1;
    c->timer_user = 0;
    if (c->state != S_OPEN) {
        end(c);
        return;
    }
    c->close_code = code;
    uv_timer_stop(&c->timer); /* whatever the owner had set */
    wsc_flush(c);
    if (!c->ended)
        uv_timer_start(&c->timer, on_grace, grace_ms, 0);
}

static void protocol_error(wsc_t *c, int code, const char *what)
{
    set_why(c, "%s", what);
    begin_close(c, code, 1000);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    wsc_t *c = req->data;
    c->writing = 0;
    if (c->ended)
        return;
    if (c->ssl != NULL)
        c->tls_out_len = 0;
    else
        c->out_len = 0;
    if (status < 0) {
        fail(c, "connection failed: %s", uv_strerror(status));
        return;
    }
    wsc_flush(c);
}

static int frame_out(wsc_t *c, int opcode, const void *payload, size_t len)
{
    if (wsframe_reserve(&c->out, &c->out_cap, c->out_len + len + 14) != 0)
        return -1;
    c->out_len += wsc_frame_write(c->out + c->out_len, opcode, payload, len, next_mask(c));
    return 0;
}

/* Frames what is due into c->out: a pong, our close (after which nothing), messages. */
static int gather(wsc_t *c)
{
    if (c->state != S_OPEN || c->close_sent)
        return 0;
    if (c->pong_pending) {
        c->pong_pending = 0;
        if (frame_out(c, 10, c->pong, c->pong_len) != 0)
            return -1;
    }
    if (c->closing) {
        unsigned char b[2] = {(unsigned char)(c->close_code >> 8), (unsigned char)c->close_code};
        c->close_sent = 1;
        return frame_out(c, 8, b, 2);
    }
    const char *m;
    size_t len;
    while (c->out_len < GATHER_MAX && (m = c->ops->peek(c->owner, &len)) != NULL) {
        if (frame_out(c, 1, m, len) != 0)
            return -1;
        c->ops->pop(c->owner);
    }
    return 0;
}

/* Moves the ciphertext OpenSSL made into c->tls_out. */
static int tls_drain(wsc_t *c)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    if (n == 0)
        return 0;
    if (wsframe_reserve(&c->tls_out, &c->tls_out_cap, c->tls_out_len + n) != 0)
        return -1;
    int r = BIO_read(c->wbio, c->tls_out + c->tls_out_len, (int)n);
    if (r > 0)
        c->tls_out_len += (size_t)r;
    return 0;
}

/* send(2), not write(2): a socket needs neither the VFS layer nor the file's position lock.
 * Bytes taken, or a negative libuv error (UV_EAGAIN: none). */
static int try_send(wsc_t *c, const unsigned char *buf, size_t len)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return UV_EBADF;
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
}

void wsc_flush(wsc_t *c)
{
    while (!c->writing && !c->ended && c->state != S_CONNECTING) {
        if (gather(c) != 0) {
            fail(c, "%s", "out of memory");
            return;
        }
        unsigned char *buf = c->out;
        size_t *len = &c->out_len;
        if (c->ssl != NULL) {
            /* a memory BIO takes everything: SSL_write writes it all or fails */
            if (c->out_len > 0 && SSL_write(c->ssl, c->out, (int)c->out_len) != (int)c->out_len) {
                ssl_why(c, "TLS write failed");
                end(c);
                return;
            }
            c->out_len = 0;
            if (tls_drain(c) != 0) {
                fail(c, "%s", "out of memory");
                return;
            }
            buf = c->tls_out;
            len = &c->tls_out_len;
        }
        if (*len == 0)
            return;
        int n = try_send(c, buf, *len);
        if (n == (int)*len) {
            *len = 0;
            if (c->close_sent)
                return;
            continue; /* more may have been left behind by the gather limit */
        }
        if (n < 0 && n != UV_EAGAIN) {
            fail(c, "connection failed: %s", uv_strerror(n));
            return;
        }
        n = n < 0 ? 0 : n;
        uv_buf_t b = uv_buf_init((char *)buf + n, (unsigned)(*len - (size_t)n));
        c->wreq.data = c;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
        if (rc != 0) {
            fail(c, "connection failed: %s", uv_strerror(rc));
            return;
        }
        c->writing = 1;
    }
}

/* ---- the handshake ----------------------------------------------------------------------- */

static void send_request(wsc_t *c)
{
    char extra[8192];
    int n = c->ops->headers != NULL ? c->ops->headers(c->owner, extra, sizeof(extra)) : 0;
    if (n < 0 || (size_t)n >= sizeof(extra)) {
        fail(c, "%s", "cannot build the request headers");
        return;
    }
    if (wsframe_reserve(&c->out, &c->out_cap, REQ_MAX) != 0) {
        fail(c, "%s", "out of memory");
        return;
    }
    size_t len = wsc_http_request((char *)c->out, REQ_MAX, c->path, c->host, c->port, c->ssl != NULL ? 443 : 80, c->key,
                                  extra, (size_t)n);
    if (len == 0) {
        fail(c, "%s", "the request does not fit");
        return;
    }
    c->out_len = len;
    c->state = S_UPGRADE;
    wsc_flush(c);
}

static void tls_step(wsc_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        send_request(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        wsc_flush(c); /* what OpenSSL wants to send */
        return;
    }
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK)
        fail(c, "certificate refused: %s", X509_verify_cert_error_string(v));
    else {
        ssl_why(c, "TLS handshake failed");
        end(c);
    }
}

/* The server's answer to the upgrade: 1 accepted (the head consumed), 0 incomplete, -1 failed. */
static int upgrade_answer(wsc_t *c)
{
    char why[128];
    long used = wsc_http_answer((const char *)c->in, c->in_len, c->accept, why, sizeof(why));
    if (used <= 0) {
        if (used < 0)
            fail(c, "%s", why);
        return (int)used;
    }
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (size_t)used;
    c->state = S_OPEN;
    uv_timer_stop(&c->timer); /* the handshake's; the owner's from now on */
    if (c->ops->open != NULL)
        c->ops->open(c->owner);
    if (!c->ended)
        wsc_flush(c); /* what the owner queued before and during open */
    return c->ended ? -1 : 1;
}

/* ---- reading ----------------------------------------------------------------------------- */

static void deliver(wsc_t *c, const unsigned char *p, size_t len, int fin)
{
    if (!c->closing)
        c->ops->message(c->owner, (const char *)p, len, fin);
}

static void on_close_frame(wsc_t *c, const unsigned char *p, size_t len)
{
    if (len == 1) {
        protocol_error(c, 1002, "protocol error: a close frame of one byte");
        return;
    }
    int code = len >= 2 ? p[0] << 8 | p[1] : 1005;
    if (!c->closing) {
        char what[200];
        snprintf(what, sizeof(what), "connection closed by the server: %d %.*s", code, len > 2 ? (int)(len - 2) : 0,
                 len > 2 ? (const char *)p + 2 : "");
        set_why(c, "%s", what);
    }
    /* the echo (1005, 1006 and 1015 may not be sent, nor codes under 1000); the server then ends
     * the connection */
    int echo = len < 2 ? 1000 : code < 1000 || code == 1005 || code == 1006 || code == 1015 ? 1002 : code;
    begin_close(c, echo, 2000);
}

static void on_frame(wsc_t *c, const wsc_frame_t *f, const unsigned char *p)
{
    switch (f->opcode) {
    case 1:
    case 2:
        if (c->fragment) {
            protocol_error(c, 1002, "protocol error: a new message inside a fragmented one");
            return;
        }
        c->fragment = !f->fin;
        deliver(c, p, f->len, f->fin);
        return;
    case 0:
        if (!c->fragment) {
            protocol_error(c, 1002, "protocol error: a continuation without a message");
            return;
        }
        c->fragment = !f->fin;
        deliver(c, p, f->len, f->fin);
        return;
    case 8:
        on_close_frame(c, p, f->len);
        return;
    case 9:
        memcpy(c->pong, p, f->len);
        c->pong_len = f->len;
        c->pong_pending = 1;
        wsc_flush(c);
        return;
    default: /* pong */
        return;
    }
}

static void process(wsc_t *c)
{
    if (c->state == S_UPGRADE && upgrade_answer(c) != 1)
        return;
    size_t pos = 0;
    while (!c->ended) {
        wsc_frame_t f;
        int r = wsc_frame_parse(c->in + pos, c->in_len - pos, c->max_msg, &f);
        if (r == 0)
            break;
        if (r != 1) {
            protocol_error(c, r, r == 1009 ? "server message too large" : "protocol error: a bad frame");
            break;
        }
        if (c->in_len - pos < f.head + f.len)
            break; /* the read buffer grows to hold it: at most max_msg */
        const unsigned char *p = c->in + pos + f.head;
        pos += f.head + f.len;
        on_frame(c, &f, p);
    }
    if (c->ended)
        return;
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->in_len == 0 && c->in_cap > IN_KEEP) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

/* What the read buffer may hold: a whole frame of max_msg, or the handshake answer. */
static size_t in_limit(const wsc_t *c)
{
    return (c->max_msg > WSC_HTTP_HEAD_MAX ? c->max_msg : WSC_HTTP_HEAD_MAX) + WSFRAME_HEAD_MAX;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    wsc_t *c = h->data;
    *buf = uv_buf_init(NULL, 0);
    if (c->ssl != NULL) {
        if (c->tls_in == NULL && (c->tls_in = malloc(TLS_IN)) == NULL)
            return;
        *buf = uv_buf_init((char *)c->tls_in, TLS_IN);
        return;
    }
    if (c->in_len > in_limit(c) || wsframe_reserve(&c->in, &c->in_cap, c->in_len + READ_ROOM) != 0)
        return; /* UV_ENOBUFS follows */
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_eof(wsc_t *c, ssize_t n)
{
    if (c->closing && c->why == NULL) {
        end(c); /* we asked for the end */
        return;
    }
    if (n == UV_EOF)
        fail(c, "%s", c->state == S_OPEN ? "connection closed" : "connection failed: closed during the handshake");
    else
        fail(c, "connection failed: %s", uv_strerror((int)n));
}

/* Decrypts what arrived and handles it, a record at a time. */
static void tls_read(wsc_t *c, const unsigned char *data, size_t n)
{
    if (BIO_write(c->rbio, data, (int)n) != (int)n) {
        fail(c, "%s", "out of memory");
        return;
    }
    if (c->state == S_TLS) {
        tls_step(c);
        if (c->ended || c->state == S_TLS)
            return;
    }
    for (;;) {
        if (c->in_len > in_limit(c) || wsframe_reserve(&c->in, &c->in_cap, c->in_len + READ_ROOM) != 0) {
            fail(c, "%s", "out of memory");
            return;
        }
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                on_eof(c, UV_EOF);
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ssl_why(c, "TLS read failed");
                end(c);
            }
            break;
        }
        c->in_len += (size_t)r;
        process(c);
        if (c->ended)
            return;
    }
    if (!c->ended && BIO_ctrl_pending(c->wbio) > 0)
        wsc_flush(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    wsc_t *c = s->data;
    if (c->ended || n == 0)
        return;
    if (n < 0) {
        on_eof(c, n);
        return;
    }
    if (c->ssl != NULL) {
        tls_read(c, (const unsigned char *)buf->base, (size_t)n);
        return;
    }
    c->in_len += (size_t)n;
    process(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    wsc_t *c = req->data;
    if (c->ended)
        return;
    if (status < 0) {
        fail(c, "connection failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* small frames go out as they are written */
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(c, "connection failed: %s", uv_strerror(rc));
        return;
    }
    if (c->ssl != NULL) {
        c->state = S_TLS;
        tls_step(c);
    } else {
        send_request(c);
    }
}

static void on_handshake_timeout(uv_timer_t *t)
{
    wsc_t *c = t->data;
    if (!c->ended && c->state != S_OPEN)
        fail(c, "%s", "connection failed: the handshake timed out");
}

static void on_timer(uv_timer_t *t)
{
    wsc_t *c = t->data;
    if (c->ended || c->closing || !c->timer_user)
        return;
    c->timer_user = 0;
    if (c->ops->timer != NULL)
        c->ops->timer(c->owner);
}

/* ---- the public entry points ------------------------------------------------------------- */

static int make_key(wsc_t *c)
{
    if (RAND_bytes((unsigned char *)&c->rng, sizeof(c->rng)) != 1)
        return -1;
    return wsc_http_key(c->key, c->accept);
}

static int tls_setup(wsc_t *c, SSL_CTX *ctx)
{
    unsigned char ip[16];
    int literal = uv_inet_pton(AF_INET, c->host, ip) == 0 || uv_inet_pton(AF_INET6, c->host, ip) == 0;
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if ((c->ssl = SSL_new(ctx)) == NULL || (c->rbio = BIO_new(BIO_s_mem())) == NULL)
        return -1;
    if ((c->wbio = BIO_new(BIO_s_mem())) == NULL) {
        BIO_free(c->rbio);
        return -1;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns them from here */
    SSL_set_connect_state(c->ssl);
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    if (SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn)) != 0)
        return -1;
    if (literal) /* the certificate must name the address; no SNI for an address */
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(c->ssl, c->host) != 1 || SSL_set1_host(c->ssl, c->host) != 1)
        return -1;
    SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return 0;
}

wsc_t *wsc_connect(const wsc_params_t *p, const char **why)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(p->address, p->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(p->address, p->port, (struct sockaddr_in6 *)&ss) != 0) {
        *why = "not a numeric address";
        return NULL;
    }
    wsc_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->host = strdup(p->host)) == NULL || (c->path = strdup(p->path)) == NULL) {
        *why = "out of memory";
        goto fail;
    }
    c->ops = p->ops;
    c->owner = p->owner;
    c->port = p->port;
    c->max_msg = p->max_msg;
    if (make_key(c) != 0) {
        *why = "no random bytes";
        goto fail;
    }
    if (p->ssl != NULL && tls_setup(c, p->ssl) != 0) {
        *why = "cannot set up TLS";
        goto fail;
    }
    uv_tcp_init(p->loop, &c->tcp);
    uv_timer_init(p->loop, &c->timer);
    c->tcp.data = c->timer.data = c->creq.data = c;
    c->handles = 2;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&ss, on_connect);
    if (rc == 0) /* a server that takes the connection and never answers must not hold it */
        uv_timer_start(&c->timer, on_handshake_timeout, p->handshake_ms > 0 ? p->handshake_ms : 10000, 0);
    if (rc != 0) {
        *why = "cannot connect";
        c->silent = 1; /* we return NULL: the owner hears nothing more */
        end(c);
        return NULL;
    }
    return c;
fail:
    if (c != NULL) {
        SSL_free(c->ssl);
        free(c->host);
        free(c->path);
        free(c);
    }
    return NULL;
}

int wsc_open(const wsc_t *c)
{
    return c->state == S_OPEN && !c->closing && !c->ended;
}

void wsc_close(wsc_t *c, int code, unsigned grace_ms)
{
    begin_close(c, code, grace_ms);
}

void wsc_abort(wsc_t *c)
{
    end(c);
}

void wsc_timer(wsc_t *c, uint64_t ms)
{
    if (c->ended || c->closing)
        return;
    c->timer_user = ms > 0;
    if (ms > 0)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}
