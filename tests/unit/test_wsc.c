/* wsc: the frame codec, then the client on a uv loop against a server scripted here (a uv_tcp
 * server on 127.0.0.1 that checks the upgrade request and answers with raw bytes): the
 * handshake, frames split across reads, queued messages, fragments with a ping between them,
 * the server's close, protocol errors, a frame too large, a failed handshake, a polite close
 * with its grace period, an abort before the connect completes and a refused connect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ai/wsc.h"

#define WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HOST     "example.test"
#define PATH     "/v1/realtime?model=gpt-x&x=1"
#define EXTRA    "X-Test: wsc-unit\r\nAuthorization: Bearer sk-test\r\n"
#define GUARD_MS 5000
#define MAX_MSG  (1u << 20)

/* ---- the frame codec --------------------------------------------------------------------- */

static void check_write(int opcode, size_t len, uint32_t mask, size_t want_head)
{
    unsigned char *payload = malloc(len + 1), *dst = malloc(len + 14), *plain = malloc(len + 1);
    assert_non_null(payload);
    assert_non_null(dst);
    assert_non_null(plain);
    for (size_t i = 0; i < len; i++)
        payload[i] = (unsigned char)(i * 7 + 3);
    /* dst holds exactly len + 14: ASan sees a write past it */
    size_t n = wsc_frame_write(dst, opcode, payload, len, mask);
    assert_int_equal(n, want_head + 4 + len);
    assert_int_equal(dst[0], 0x80 | opcode); /* FIN, no RSV */
    assert_int_equal(dst[1] & 0x80, 0x80);   /* masked */
    if (want_head == 2) {
        assert_int_equal(dst[1] & 0x7f, len);
    } else if (want_head == 4) {
        assert_int_equal(dst[1] & 0x7f, 126);
        assert_int_equal((size_t)dst[2] << 8 | dst[3], len);
    } else {
        assert_int_equal(dst[1] & 0x7f, 127);
        uint64_t l = 0;
        for (int i = 2; i < 10; i++)
            l = l << 8 | dst[i];
        assert_int_equal(l, len);
    }
    const unsigned char *key = dst + want_head, *p = dst + want_head + 4;
    int key_all_set = key[0] && key[1] && key[2] && key[3];
    for (size_t i = 0; i < len; i++) {
        plain[i] = p[i] ^ key[i & 3];
        if (key_all_set && p[i] == payload[i])
            fail_msg("byte %zu of %zu was not masked", i, len);
    }
    if (len > 0)
        assert_memory_equal(plain, payload, len);
    free(plain);
    free(dst);
    free(payload);
}

static void frame_write(void **state)
{
    (void)state;
    check_write(1, 0, 0x11223344u, 2);
    check_write(1, 125, 0x11223344u, 2);
    check_write(2, 126, 0xa1b2c3d4u, 4);
    check_write(2, 65535, 0xa1b2c3d4u, 4);
    check_write(2, 65536, 0x01020304u, 10);
    check_write(1, 13, 0xdeadbeefu, 2);     /* a tail after the 8-byte steps */
    check_write(8, 2, 0x5a5a5a5au, 2);      /* a close frame */
    check_write(1, 70001, 0x80808080u, 10); /* odd, long */
    check_write(1, 40, 0, 2);               /* a zero mask leaves the payload as it is */
}

/* wsc_frame_parse on exactly n bytes (a copy, so ASan sees a read past them) */
static int parse(const unsigned char *b, size_t n, size_t max, wsc_frame_t *f)
{
    unsigned char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, b, n);
    memset(f, 0xee, sizeof(*f));
    int r = wsc_frame_parse(copy, n, max, f);
    free(copy);
    return r;
}

static void frame_parse(void **state)
{
    (void)state;
    wsc_frame_t f;

    /* short input: more bytes needed */
    static const unsigned char t7[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(parse(t7, 0, 1000, &f), 0);
    assert_int_equal(parse(t7, 1, 1000, &f), 0);
    static const unsigned char t16[] = {0x82, 126, 0x01, 0x00};
    for (size_t n = 0; n < sizeof(t16); n++)
        assert_int_equal(parse(t16, n, 1000, &f), 0);
    static const unsigned char t64[] = {0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    for (size_t n = 0; n < sizeof(t64); n++)
        assert_int_equal(parse(t64, n, MAX_MSG, &f), 0);

    /* the three length forms; the payload need not be there yet */
    assert_int_equal(parse(t7, 2, 1000, &f), 1);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, 1);
    assert_int_equal(f.head, 2);
    assert_int_equal(f.len, 5);
    assert_int_equal(parse(t7, sizeof(t7), 1000, &f), 1);
    assert_int_equal(f.len, 5);
    assert_int_equal(parse(t16, sizeof(t16), 1000, &f), 1);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, 2);
    assert_int_equal(f.head, 4);
    assert_int_equal(f.len, 256);
    assert_int_equal(parse(t64, sizeof(t64), MAX_MSG, &f), 1);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.opcode, 2);
    assert_int_equal(f.head, 10);
    assert_int_equal(f.len, 65536);
    static const unsigned char t16max[] = {0x80, 126, 0xff, 0xff};
    assert_int_equal(parse(t16max, sizeof(t16max), MAX_MSG, &f), 1);
    assert_int_equal(f.opcode, 0);
    assert_int_equal(f.len, 65535);
    static const unsigned char t0[] = {0x81, 0x00};
    assert_int_equal(parse(t0, 2, 0, &f), 1);
    assert_int_equal(f.len, 0);

    /* a masked server frame */
    static const unsigned char masked[] = {0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(parse(masked, sizeof(masked), 1000, &f), 1002);
    assert_int_equal(parse(masked, 2, 1000, &f), 1002);
    /* reserved bits */
    for (int rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        unsigned char b[] = {(unsigned char)(0x81 | rsv), 0x00};
        assert_int_equal(parse(b, 2, 1000, &f), 1002);
    }
    /* opcodes: 0, 1, 2, 8, 9, 10 are valid, the others reserved */
    for (int op = 0; op < 16; op++) {
        unsigned char b[] = {(unsigned char)(0x80 | op), 0x00};
        int valid = op <= 2 || (op >= 8 && op <= 10);
        assert_int_equal(parse(b, 2, 1000, &f), valid ? 1 : 1002);
        if (valid)
            assert_int_equal(f.opcode, op);
    }
    /* control frames: fragmented, or longer than 125 */
    for (int op = 8; op <= 10; op++) {
        unsigned char frag[] = {(unsigned char)op, 0x00};
        assert_int_equal(parse(frag, 2, 1000, &f), 1002);
        unsigned char ok[] = {(unsigned char)(0x80 | op), 125};
        assert_int_equal(parse(ok, 2, 1000, &f), 1);
        assert_int_equal(f.len, 125);
        unsigned char l16[] = {(unsigned char)(0x80 | op), 126, 0x00, 126};
        assert_int_equal(parse(l16, 4, 1000, &f), 1002);
        unsigned char l64[] = {(unsigned char)(0x80 | op), 127, 0, 0, 0, 0, 0, 0, 0, 126};
        assert_int_equal(parse(l64, 10, 1000, &f), 1002);
    }
    /* a 64-bit length with the top bit set */
    static const unsigned char top[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(parse(top, sizeof(top), SIZE_MAX, &f), 1002);
    /* longer than max: refused on the header alone */
    static const unsigned char huge[] = {0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0}; /* 2^40 */
    assert_int_equal(parse(huge, sizeof(huge), MAX_MSG, &f), 1009);
    static const unsigned char over[] = {0x81, 126, 0x10, 0x01}; /* 4097 */
    assert_int_equal(parse(over, sizeof(over), 4096, &f), 1009);
    assert_int_equal(parse(over, sizeof(over), 4097, &f), 1);
    assert_int_equal(parse(t7, 2, 4, &f), 1009);
    assert_int_equal(parse(t7, 2, 5, &f), 1);
}

/* ---- the scripted server ----------------------------------------------------------------- */

typedef struct srv srv_t;
typedef void (*step_fn)(srv_t *s);

typedef struct cframe {
    int fin, opcode;
    size_t len;
    unsigned char *data; /* unmasked, in s->in; valid until the script returns */
} cframe_t;

struct srv {
    uv_tcp_t listener, peer;
    uv_timer_t later;
    int port;
    int accepted, peer_closing, eof;
    unsigned char *in;
    size_t in_len, in_cap, pos;
    int stage;
    step_fn script;   /* after each read */
    step_fn later_fn; /* when `later` goes off */
    char accept[64];  /* the right Sec-WebSocket-Accept for the request's key */
    /* what it saw */
    int requests, close_code, pongs;
    int texts;
    char text[8][64];
    size_t big_len;
    int big_ok;
};

typedef struct wr {
    uv_write_t req;
    unsigned char data[];
} wr_t;

static uv_loop_t *loop;
static srv_t srv;

static void on_srv_written(uv_write_t *req, int status)
{
    (void)status; /* cancelled when the peer was closed first: nothing to check */
    free(req);
}

static void srv_send(srv_t *s, const void *data, size_t len)
{
    if (s->peer_closing)
        return;
    wr_t *w = malloc(sizeof(*w) + len);
    assert_non_null(w);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&s->peer, &b, 1, on_srv_written), 0);
}

static void srv_close_peer(srv_t *s)
{
    if (s->accepted && !s->peer_closing) {
        s->peer_closing = 1;
        uv_close((uv_handle_t *)&s->peer, NULL);
    }
}

/* An unmasked server frame (any length) into dst; returns its length. */
static size_t put_frame(unsigned char *dst, int b0, const void *payload, size_t len)
{
    size_t h = 2;
    dst[0] = (unsigned char)b0;
    if (len < 126) {
        dst[1] = (unsigned char)len;
    } else if (len < 65536) {
        dst[1] = 126;
        dst[2] = (unsigned char)(len >> 8);
        dst[3] = (unsigned char)len;
        h = 4;
    } else {
        dst[1] = 127;
        for (int i = 0; i < 8; i++)
            dst[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (len > 0)
        memcpy(dst + h, payload, len);
    return h + len;
}

static size_t put_close(unsigned char *dst, int code, const char *reason)
{
    unsigned char p[125] = {(unsigned char)(code >> 8), (unsigned char)code};
    size_t n = strlen(reason);
    memcpy(p + 2, reason, n);
    return put_frame(dst, 0x88, p, 2 + n);
}

static size_t put_answer(unsigned char *dst, const char *accept)
{
    return (size_t)sprintf((char *)dst,
                           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: %s\r\n\r\n",
                           accept);
}

/* The value of header line `name` in req (NUL-terminated), copied into v; 0 if absent. */
static int req_header(const char *req, const char *name, char *v, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *p = strstr(req, pat);
    if (p == NULL)
        return 0;
    p += strlen(pat);
    const char *e = strstr(p, "\r\n");
    assert_non_null(e);
    assert_true((size_t)(e - p) < cap);
    memcpy(v, p, (size_t)(e - p));
    v[e - p] = '\0';
    return 1;
}

/* The client's upgrade request, checked; 1 once it is whole (consumed, s->accept set). */
static int srv_request(srv_t *s)
{
    const unsigned char *eoh = NULL;
    for (size_t i = s->pos; i + 4 <= s->in_len && eoh == NULL; i++)
        if (memcmp(s->in + i, "\r\n\r\n", 4) == 0)
            eoh = s->in + i;
    if (eoh == NULL)
        return 0;
    size_t n = (size_t)(eoh - (s->in + s->pos)) + 4;
    char *req = malloc(n + 1);
    assert_non_null(req);
    memcpy(req, s->in + s->pos, n);
    req[n] = '\0';
    s->pos += n;
    s->requests++;

    char want[128], v[128];
    assert_true(strncmp(req, "GET " PATH " HTTP/1.1\r\n", strlen("GET " PATH " HTTP/1.1\r\n")) == 0);
    snprintf(want, sizeof(want), "%s:%d", HOST, s->port);
    assert_true(req_header(req, "Host", v, sizeof(v)));
    assert_string_equal(v, want);
    assert_true(req_header(req, "Upgrade", v, sizeof(v)));
    assert_string_equal(v, "websocket");
    assert_true(req_header(req, "Connection", v, sizeof(v)));
    assert_string_equal(v, "Upgrade");
    assert_true(req_header(req, "Sec-WebSocket-Version", v, sizeof(v)));
    assert_string_equal(v, "13");
    assert_non_null(strstr(req, "\r\n" EXTRA));
    assert_false(req_header(req, "Sec-WebSocket-Extensions", v, sizeof(v)));

    /* the key: 16 random bytes in base64 */
    char key[128];
    assert_true(req_header(req, "Sec-WebSocket-Key", key, sizeof(key)));
    assert_int_equal(strlen(key), 24);
    unsigned char raw[24];
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)key, 24), 18); /* 16 and the "==" */
    assert_int_equal(key[22], '=');
    assert_int_equal(key[23], '=');

    char cat[sizeof(key) + sizeof(WS_GUID)];
    unsigned char sha[SHA_DIGEST_LENGTH];
    snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)cat, strlen(cat), sha);
    EVP_EncodeBlock((unsigned char *)s->accept, sha, sizeof(sha));
    free(req);
    return 1;
}

/* The next whole client frame (which must be masked), unmasked in place; 0 if incomplete. */
static int srv_frame(srv_t *s, cframe_t *f)
{
    unsigned char *b = s->in + s->pos;
    size_t avail = s->in_len - s->pos, h = 2;
    if (avail < 2)
        return 0;
    assert_int_equal(b[0] & 0x70, 0);    /* no RSV */
    assert_int_equal(b[1] & 0x80, 0x80); /* a client frame is masked */
    uint64_t len = b[1] & 0x7f;
    if (len == 126) {
        if (avail < 4)
            return 0;
        len = (uint64_t)b[2] << 8 | b[3];
        assert_true(len >= 126); /* the shortest form */
        h = 4;
    } else if (len == 127) {
        if (avail < 10)
            return 0;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | b[i];
        assert_true(len >= 65536);
        h = 10;
    }
    if (avail < h + 4 + len)
        return 0;
    const unsigned char *key = b + h;
    unsigned char *p = b + h + 4;
    for (size_t i = 0; i < len; i++)
        p[i] ^= key[i & 3];
    f->fin = (b[0] & 0x80) != 0;
    f->opcode = b[0] & 0x0f;
    f->len = (size_t)len;
    f->data = p;
    s->pos += h + 4 + (size_t)len;
    return 1;
}

/* A close frame from the client: its code noted */
static void srv_note_close(srv_t *s, const cframe_t *f)
{
    assert_int_equal(f->opcode, 8);
    assert_int_equal(f->fin, 1);
    assert_int_equal(f->len, 2);
    s->close_code = f->data[0] << 8 | f->data[1];
}

static void on_srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    srv_t *s = h->data;
    if (s->in_cap - s->in_len < 65536) {
        s->in_cap = s->in_len + 65536;
        s->in = realloc(s->in, s->in_cap);
        assert_non_null(s->in);
    }
    *buf = uv_buf_init((char *)s->in + s->in_len, (unsigned)(s->in_cap - s->in_len));
}

static void on_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    srv_t *s = st->data;
    if (n < 0) {
        s->eof = 1;
        srv_close_peer(s);
        return;
    }
    s->in_len += (size_t)n;
    if (s->script != NULL)
        s->script(s);
    memmove(s->in, s->in + s->pos, s->in_len - s->pos);
    s->in_len -= s->pos;
    s->pos = 0;
}

static void on_srv_connection(uv_stream_t *l, int status)
{
    srv_t *s = l->data;
    assert_int_equal(status, 0);
    assert_int_equal(s->accepted, 0); /* one client per case */
    uv_tcp_init(loop, &s->peer);
    s->peer.data = s;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->peer), 0);
    s->accepted = 1;
    assert_int_equal(uv_read_start((uv_stream_t *)&s->peer, on_srv_alloc, on_srv_read), 0);
}

static void on_later(uv_timer_t *t)
{
    srv_t *s = t->data;
    if (s->later_fn != NULL && !s->peer_closing)
        s->later_fn(s);
}

static void srv_later(srv_t *s, uint64_t ms, step_fn fn)
{
    s->later_fn = fn;
    uv_timer_start(&s->later, on_later, ms, 0);
}

static int port_of(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A loop and the server, listening with `script` (NULL: bound only, nobody listens). */
static void srv_start(step_fn script)
{
    loop = malloc(sizeof(*loop));
    assert_non_null(loop);
    assert_int_equal(uv_loop_init(loop), 0);
    free(srv.in);
    memset(&srv, 0, sizeof(srv));
    srv.script = script;
    uv_tcp_init(loop, &srv.listener);
    uv_timer_init(loop, &srv.later);
    srv.listener.data = srv.later.data = &srv;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_bind(&srv.listener, (const struct sockaddr *)&a, 0), 0);
    if (script != NULL)
        assert_int_equal(uv_listen((uv_stream_t *)&srv.listener, 8, on_srv_connection), 0);
    srv.port = port_of(&srv.listener);
}

/* ---- the owner of the connection --------------------------------------------------------- */

typedef struct owner owner_t;

struct owner {
    wsc_t *c;
    int opened, closed, in_call, was_open;
    int why_null;
    char why[256];
    /* what arrived: all bytes in a row, and the pieces */
    unsigned char *all;
    size_t all_len;
    int pieces;
    size_t piece_len[16];
    int piece_final[16];
    /* what to send */
    const char *queue[8];
    size_t qlen[8];
    int qhead, qn;
    void (*on_open)(owner_t *o);
    uint64_t close_ns, closed_ns;
};

static owner_t own;

static int own_headers(void *ow, char *dst, size_t cap)
{
    (void)ow;
    return snprintf(dst, cap, "%s", EXTRA);
}

static void own_open(void *ow)
{
    owner_t *o = ow;
    o->opened++;
    o->was_open = wsc_open(o->c);
    if (o->on_open != NULL)
        o->on_open(o);
}

static void own_message(void *ow, const char *data, size_t len, int final)
{
    owner_t *o = ow;
    assert_true(o->pieces < 16);
    o->piece_len[o->pieces] = len;
    o->piece_final[o->pieces] = final;
    o->pieces++;
    o->all = realloc(o->all, o->all_len + len + 1);
    assert_non_null(o->all);
    memcpy(o->all + o->all_len, data, len);
    o->all_len += len;
    o->all[o->all_len] = '\0';
}

static const char *own_peek(void *ow, size_t *len)
{
    owner_t *o = ow;
    if (o->qhead == o->qn)
        return NULL;
    *len = o->qlen[o->qhead];
    return o->queue[o->qhead];
}

static void own_pop(void *ow)
{
    owner_t *o = ow;
    assert_true(o->qhead < o->qn);
    o->qhead++;
}

static void own_closed(void *ow, const char *why)
{
    owner_t *o = ow;
    assert_false(o->in_call); /* from the loop, never from inside a wsc_ call */
    o->closed++;
    o->closed_ns = uv_hrtime();
    o->why_null = why == NULL;
    snprintf(o->why, sizeof(o->why), "%s", why != NULL ? why : "");
    o->c = NULL;
}

static const wsc_ops_t own_ops = {
    .headers = own_headers,
    .open = own_open,
    .message = own_message,
    .peek = own_peek,
    .pop = own_pop,
    .closed = own_closed,
};

static void own_reset(void)
{
    free(own.all);
    memset(&own, 0, sizeof(own));
}

static void own_queue(const char *m, size_t len)
{
    assert_true(own.qn < 8);
    own.queue[own.qn] = m;
    own.qlen[own.qn] = len;
    own.qn++;
}

static unsigned handshake_ms; /* 0: wsc's default */

static void client_connect(int port)
{
    wsc_params_t p = {
        .handshake_ms = handshake_ms,
        .loop = loop,
        .address = "127.0.0.1",
        .host = HOST,
        .path = PATH,
        .port = port,
        .ssl = NULL,
        .max_msg = MAX_MSG,
        .ops = &own_ops,
        .owner = &own,
    };
    const char *why = NULL;
    own.in_call = 1;
    own.c = wsc_connect(&p, &why);
    own.in_call = 0;
    if (own.c == NULL)
        fail_msg("wsc_connect: %s", why);
}

/* ---- running a case ---------------------------------------------------------------------- */

static int timed_out;

static void on_guard(uv_timer_t *t)
{
    (void)t;
    timed_out = 1;
    uv_stop(loop);
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Runs the loop until ops->closed was called (or the guard fails the case), then closes the
 * server and lets every handle end: the loop must close clean, closed must stay at one. */
static void run_until_closed(void)
{
    uv_timer_t guard;
    timed_out = 0;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (own.closed == 0 && !timed_out)
        uv_run(loop, UV_RUN_ONCE);
    if (timed_out)
        fail_msg("no ops->closed within %d ms", GUARD_MS);
    uv_close((uv_handle_t *)&guard, NULL);
    close_if_open((uv_handle_t *)&srv.later);
    close_if_open((uv_handle_t *)&srv.listener);
    srv_close_peer(&srv);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
    free(loop);
    loop = NULL;
    assert_int_equal(own.closed, 1);
}

static void finish(void)
{
    free(srv.in);
    srv.in = NULL;
    own_reset();
}

/* ---- 1. the handshake, a frame split across two writes ------------------------------------ */

static void hello_close(srv_t *s)
{
    unsigned char b[64];
    srv_send(s, b, put_close(b, 1000, "bye"));
}

static void hello_payload(srv_t *s)
{
    srv_send(s, "hello", 5);
    srv_later(s, 20, hello_close);
}

static void hello_header(srv_t *s)
{
    static const unsigned char h[] = {0x81, 0x05};
    srv_send(s, h, 2);
    srv_later(s, 20, hello_payload); /* the client reads the header alone first */
}

/* The client's close echo ends it: noted, then the server ends the connection. */
static void expect_echo(srv_t *s)
{
    cframe_t f;
    if (!srv_frame(s, &f))
        return;
    srv_note_close(s, &f);
    srv_close_peer(s);
}

static void script_hello(srv_t *s)
{
    unsigned char b[256];
    switch (s->stage) {
    case 0:
        if (!srv_request(s))
            return;
        srv_send(s, b, put_answer(b, s->accept));
        s->stage = 1;
        srv_later(s, 20, hello_header);
        return;
    default:
        expect_echo(s);
    }
}

static void handshake_and_split_frame(void **state)
{
    (void)state;
    srv_start(script_hello);
    own_reset();
    client_connect(srv.port);
    assert_int_equal(wsc_open(own.c), 0);
    run_until_closed();
    assert_int_equal(srv.requests, 1);
    assert_int_equal(own.opened, 1);
    assert_int_equal(own.was_open, 1);
    assert_int_equal(own.pieces, 1);
    assert_int_equal(own.piece_len[0], 5);
    assert_int_equal(own.piece_final[0], 1);
    assert_string_equal((char *)own.all, "hello");
    assert_int_equal(srv.close_code, 1000); /* the echo */
    assert_string_equal(own.why, "connection closed by the server: 1000 bye");
    finish();
}

/* ---- 2. messages queued before open -------------------------------------------------------- */

static void script_queued(srv_t *s)
{
    unsigned char b[256];
    cframe_t f;
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        srv_send(s, b, put_answer(b, s->accept));
        s->stage = 1;
    }
    while (s->stage == 1 && srv_frame(s, &f)) {
        assert_int_equal(f.opcode, 1);
        assert_int_equal(f.fin, 1);
        assert_true(f.len < sizeof(s->text[0]));
        memcpy(s->text[s->texts], f.data, f.len);
        s->text[s->texts][f.len] = '\0';
        if (++s->texts == 3) {
            srv_send(s, b, put_close(b, 1000, "bye"));
            s->stage = 2;
        }
    }
    if (s->stage == 2)
        expect_echo(s);
}

static void queued_before_open(void **state)
{
    (void)state;
    srv_start(script_queued);
    own_reset();
    own_queue("first", 5);
    own_queue("second message", 14);
    own_queue("3", 1);
    client_connect(srv.port);
    own.in_call = 1;
    wsc_flush(own.c); /* before the connection: nothing to do yet */
    own.in_call = 0;
    assert_int_equal(own.qhead, 0);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(own.qhead, 3);
    assert_int_equal(srv.texts, 3);
    assert_string_equal(srv.text[0], "first");
    assert_string_equal(srv.text[1], "second message");
    assert_string_equal(srv.text[2], "3");
    assert_int_equal(srv.close_code, 1000);
    assert_int_equal(own.pieces, 0);
    finish();
}

/* ---- 3. a fragmented message with a ping between its pieces -------------------------------- */

static void script_fragments(srv_t *s)
{
    unsigned char b[512];
    cframe_t f;
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        size_t n = put_answer(b, s->accept); /* the answer and the frames in one write */
        n += put_frame(b + n, 0x01, "ab", 2);
        n += put_frame(b + n, 0x00, "cd", 2);
        n += put_frame(b + n, 0x89, "p", 1);
        n += put_frame(b + n, 0x80, "ef", 2);
        srv_send(s, b, n);
        s->stage = 1;
    }
    if (s->stage == 1 && srv_frame(s, &f)) {
        assert_int_equal(f.opcode, 10);
        assert_int_equal(f.fin, 1);
        assert_int_equal(f.len, 1);
        assert_int_equal(f.data[0], 'p');
        s->pongs++;
        srv_send(s, b, put_close(b, 1000, "bye"));
        s->stage = 2;
    }
    if (s->stage == 2)
        expect_echo(s);
}

static void fragmented_with_ping(void **state)
{
    (void)state;
    srv_start(script_fragments);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(own.pieces, 3);
    assert_string_equal((char *)own.all, "abcdef");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(own.piece_len[i], 2);
        assert_int_equal(own.piece_final[i], i == 2);
    }
    assert_int_equal(srv.pongs, 1);
    assert_int_equal(srv.close_code, 1000);
    assert_string_equal(own.why, "connection closed by the server: 1000 bye");
    finish();
}

/* ---- 4. the server closes ----------------------------------------------------------------- */

static void script_server_close(srv_t *s)
{
    unsigned char b[512];
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        size_t n = put_answer(b, s->accept);
        n += put_close(b + n, 1011, "upstream");
        srv_send(s, b, n);
        s->stage = 1;
    }
    expect_echo(s);
}

static void server_close(void **state)
{
    (void)state;
    srv_start(script_server_close);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(srv.close_code, 1011);
    assert_int_equal(own.why_null, 0);
    assert_string_equal(own.why, "connection closed by the server: 1011 upstream");
    finish();
}

/* ---- 5. a masked server frame: close 1002 -------------------------------------------------- */

static void script_masked(srv_t *s)
{
    unsigned char b[512];
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        size_t n = put_answer(b, s->accept);
        static const unsigned char masked[] = {0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
        memcpy(b + n, masked, sizeof(masked));
        srv_send(s, b, n + sizeof(masked));
        s->stage = 1;
    }
    expect_echo(s);
}

static void masked_server_frame(void **state)
{
    (void)state;
    srv_start(script_masked);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(own.pieces, 0);
    assert_int_equal(srv.close_code, 1002);
    assert_non_null(strstr(own.why, "protocol error"));
    finish();
}

/* ---- 6. a frame over max_msg: close 1009 on its header ------------------------------------ */

static void script_too_large(srv_t *s)
{
    unsigned char b[512];
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        size_t n = put_answer(b, s->accept);
        static const unsigned char huge[] = {0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0}; /* 2^40 bytes */
        memcpy(b + n, huge, sizeof(huge));
        srv_send(s, b, n + sizeof(huge)); /* and no payload ever */
        s->stage = 1;
    }
    expect_echo(s);
}

static void message_too_large(void **state)
{
    (void)state;
    srv_start(script_too_large);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(own.pieces, 0);
    assert_int_equal(srv.close_code, 1009);
    assert_string_equal(own.why, "server message too large");
    finish();
}

/* ---- 7. a failed handshake ---------------------------------------------------------------- */

static void script_wrong_accept(srv_t *s)
{
    unsigned char b[256];
    if (s->stage == 0 && srv_request(s)) {
        s->accept[0] = s->accept[0] == 'A' ? 'B' : 'A';
        srv_send(s, b, put_answer(b, s->accept));
        s->stage = 1;
    }
}

static void script_401(srv_t *s)
{
    static const char a[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    if (s->stage == 0 && srv_request(s)) {
        srv_send(s, a, strlen(a));
        s->stage = 1;
    }
}

static void script_not_http(srv_t *s)
{
    static const char a[] = "HTTP/1.1 1x1 Switching Protocols\r\n\r\n";
    if (s->stage == 0 && srv_request(s)) {
        srv_send(s, a, strlen(a));
        s->stage = 1;
    }
}

static void handshake_refused(void **state)
{
    (void)state;
    srv_start(script_wrong_accept);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 0);
    assert_string_equal(own.why, "connection failed: wrong Sec-WebSocket-Accept");
    finish();

    srv_start(script_401);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 0);
    assert_string_equal(own.why, "connection failed: HTTP 401");
    finish();

    srv_start(script_not_http);
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 0);
    assert_string_equal(own.why, "connection failed: not an HTTP answer");
    finish();
}

/* ---- 8. a polite close that the server never answers -------------------------------------- */

static void close_on_open(owner_t *o)
{
    o->close_ns = uv_hrtime();
    wsc_close(o->c, 1000, 200);
    assert_int_equal(wsc_open(o->c), 0);
}

static void script_silent(srv_t *s)
{
    cframe_t f;
    unsigned char b[256];
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        srv_send(s, b, put_answer(b, s->accept));
        s->stage = 1;
    }
    if (s->stage == 1 && srv_frame(s, &f)) {
        srv_note_close(s, &f); /* and no answer, no end */
        s->stage = 2;
    }
}

static void close_grace(void **state)
{
    (void)state;
    srv_start(script_silent);
    own_reset();
    own.on_open = close_on_open;
    own_queue("dropped", 7); /* queued messages are dropped by the close */
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 1);
    assert_int_equal(srv.close_code, 1000);
    assert_int_equal(srv.texts, 0);
    assert_int_equal(own.why_null, 1);
    uint64_t ms = (own.closed_ns - own.close_ns) / 1000000;
    if (ms < 150 || ms > 2000)
        fail_msg("closed %llu ms after wsc_close (grace 200 ms)", (unsigned long long)ms);
    finish();
}

/* ---- 9. an abort before the connect completes ---------------------------------------------- */

static void script_none(srv_t *s)
{
    (void)s;
}

static void abort_while_connecting(void **state)
{
    (void)state;
    srv_start(script_none);
    own_reset();
    client_connect(srv.port);
    own.in_call = 1;
    wsc_abort(own.c);
    own.in_call = 0;
    assert_int_equal(own.closed, 0); /* from the loop, later */
    run_until_closed();              /* the loop drains: still exactly once */
    assert_int_equal(own.why_null, 1);
    assert_int_equal(own.opened, 0);
    finish();
}

/* ---- 10. nobody listens -------------------------------------------------------------------- */

static void connection_refused(void **state)
{
    (void)state;
    srv_start(NULL); /* bound, not listening: the port stays ours and refuses */
    own_reset();
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(own.opened, 0);
    assert_true(strncmp(own.why, "connection failed", strlen("connection failed")) == 0);
    finish();
}

/* ---- 10b. a server that takes the connection and never answers the upgrade -------------- */

static void script_mute(srv_t *s)
{
    (void)srv_request(s); /* reads the request, answers nothing */
}

static void handshake_timeout(void **state)
{
    (void)state;
    srv_start(script_mute);
    own_reset();
    handshake_ms = 200;
    client_connect(srv.port);
    run_until_closed();
    handshake_ms = 0;
    assert_int_equal(own.opened, 0);
    assert_string_equal(own.why, "connection failed: the handshake timed out");
    finish();
}

/* ---- 11. large messages both ways (the 64-bit length form, buffers that grow) -------------- */

#define BIG_OUT 100000
#define BIG_IN  200000

static unsigned char *big_out, *big_in;

static void script_big(srv_t *s)
{
    unsigned char b[512];
    cframe_t f;
    if (s->stage == 0) {
        if (!srv_request(s))
            return;
        srv_send(s, b, put_answer(b, s->accept));
        s->stage = 1;
    }
    while (s->stage == 1 && srv_frame(s, &f)) {
        assert_int_equal(f.opcode, 1);
        if (s->texts++ == 0) {
            s->big_len = f.len;
            s->big_ok = f.len == BIG_OUT && memcmp(f.data, big_out, BIG_OUT) == 0;
            continue;
        }
        assert_int_equal(f.len, 4);
        assert_memory_equal(f.data, "tail", 4);
        /* a big binary message back, written in three pieces */
        unsigned char *m = malloc(BIG_IN + 10);
        assert_non_null(m);
        size_t n = put_frame(m, 0x82, big_in, BIG_IN);
        srv_send(s, m, 7);
        srv_send(s, m + 7, 70000);
        srv_send(s, m + 70007, n - 70007);
        free(m);
        srv_send(s, b, put_close(b, 1000, "bye"));
        s->stage = 2;
    }
    if (s->stage == 2)
        expect_echo(s);
}

static void big_messages(void **state)
{
    (void)state;
    big_out = malloc(BIG_OUT);
    big_in = malloc(BIG_IN);
    assert_non_null(big_out);
    assert_non_null(big_in);
    for (size_t i = 0; i < BIG_OUT; i++)
        big_out[i] = (unsigned char)('a' + i % 26);
    for (size_t i = 0; i < BIG_IN; i++)
        big_in[i] = (unsigned char)(i * 131 >> 3);
    srv_start(script_big);
    own_reset();
    own_queue((const char *)big_out, BIG_OUT);
    own_queue("tail", 4);
    client_connect(srv.port);
    run_until_closed();
    assert_int_equal(srv.texts, 2);
    assert_int_equal(srv.big_len, BIG_OUT);
    assert_true(srv.big_ok);
    assert_int_equal(own.pieces, 1);
    assert_int_equal(own.piece_final[0], 1);
    assert_int_equal(own.all_len, BIG_IN);
    assert_memory_equal(own.all, big_in, BIG_IN);
    assert_string_equal(own.why, "connection closed by the server: 1000 bye");
    finish();
    free(big_out);
    free(big_in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_write),
        cmocka_unit_test(frame_parse),
        cmocka_unit_test(handshake_and_split_frame),
        cmocka_unit_test(queued_before_open),
        cmocka_unit_test(fragmented_with_ping),
        cmocka_unit_test(server_close),
        cmocka_unit_test(masked_server_frame),
        cmocka_unit_test(message_too_large),
        cmocka_unit_test(handshake_refused),
        cmocka_unit_test(close_grace),
        cmocka_unit_test(abort_while_connecting),
        cmocka_unit_test(connection_refused),
        cmocka_unit_test(handshake_timeout),
        cmocka_unit_test(big_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
