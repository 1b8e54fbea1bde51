#include "ai/ai_ws.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RX_MIN_ALLOC (64 * 1024)

_Static_assert(AIWS_FRAME_B64 % 4 == 0, "frames are split on whole base64 quanta");

/* ---- the target URL ---------------------------------------------------------------------- */

int aiws_query_has(const char *q, const char *key)
{
    size_t k = strlen(key);
    while (q != NULL && *q != '\0') {
        if (strncmp(q, key, k) == 0 && (q[k] == '=' || q[k] == '\0' || q[k] == '&'))
            return 1;
        q = strchr(q, '&');
        if (q != NULL)
            q++;
    }
    return 0;
}

int aiws_target_parse(const char *url, aiws_target_t *t)
{
    static const struct {
        const char *prefix;
        int tls, port;
    } schemes[] = {{"wss://", 1, 443}, {"ws://", 0, 80}, {"https://", 1, 443}, {"http://", 0, 80}};
    memset(t, 0, sizeof(*t));
    const char *p = NULL;
    for (size_t i = 0; url != NULL && i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncasecmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
            p = url + strlen(schemes[i].prefix);
            t->tls = schemes[i].tls;
            t->port = schemes[i].port;
            break;
        }
    if (p == NULL)
        return -1;
    size_t authority = strcspn(p, "/?#");
    const char *end = p + authority, *host = p, *port = NULL;
    size_t hostlen;
    if (*p == '[') { /* IPv6 literal */
        const char *rb = memchr(p, ']', authority);
        if (rb == NULL)
            return -1;
        host = p + 1;
        hostlen = (size_t)(rb - host);
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', authority);
        hostlen = colon != NULL ? (size_t)(colon - p) : authority;
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (hostlen == 0 || hostlen >= sizeof(t->host) || memchr(host, '@', hostlen) != NULL)
        return -1;
    memcpy(t->host, host, hostlen);
    if (port != NULL) {
        long v = 0;
        if (port == end)
            return -1;
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9' || (v = v * 10 + (*c - '0')) > 65535)
                return -1;
        }
        if (v == 0)
            return -1;
        t->port = (int)v;
    }
    size_t rest = strcspn(end, "#");
    int n = snprintf(t->path, sizeof(t->path), "%s%.*s", *end == '/' ? "" : "/", (int)rest, end);
    if (n < 0 || (size_t)n >= sizeof(t->path))
        return -1;
    return 0;
}

int aiws_query_add(aiws_target_t *t, const char *key, const char *value)
{
    size_t at = strlen(t->path);
    char *query = strchr(t->path, '?');
    const char *sep = query == NULL ? "?" : query[1] == '\0' ? "" : "&";
    int n = snprintf(t->path + at, sizeof(t->path) - at, "%s%s=", sep, key);
    if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
        return -1;
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++) {
        int unreserved = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                         *c == '-' || *c == '.' || *c == '_' || *c == '~';
        n = unreserved ? snprintf(t->path + at, sizeof(t->path) - at, "%c", *c)
                       : snprintf(t->path + at, sizeof(t->path) - at, "%%%02X", *c);
        if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
            return -1;
    }
    return 0;
}

/* ---- messages ---------------------------------------------------------------------------- */

aiws_msg_t *aiws_msg_new(json_t *msg)
{
    aiws_msg_t *c = NULL;
    size_t n = msg != NULL ? json_dumpb(msg, NULL, 0, JSON_COMPACT) : 0;
    if (n > 0 && (c = malloc(sizeof(*c) + n)) != NULL) {
        c->next = NULL;
        c->len = json_dumpb(msg, c->buf, n, JSON_COMPACT);
    }
    json_decref(msg);
    return c;
}

void aiws_list_init(aiws_list_t *l)
{
    l->head = NULL;
    l->tail = &l->head;
    l->n = 0;
}

void aiws_list_push(aiws_list_t *l, aiws_msg_t *c)
{
    c->next = NULL;
    *l->tail = c;
    l->tail = &c->next;
    l->n++;
}

aiws_msg_t *aiws_list_shift(aiws_list_t *l)
{
    aiws_msg_t *c = l->head;
    if (c != NULL) {
        l->head = c->next;
        if (l->head == NULL)
            l->tail = &l->head;
        l->n--;
    }
    return c;
}

void aiws_list_free(aiws_list_t *l)
{
    aiws_msg_t *c;
    while ((c = aiws_list_shift(l)) != NULL)
        free(c);
}

/* ---- the conn ---------------------------------------------------------------------------- */

void aiws_init(aiws_conn_t *c, const aiws_ops_t *ops, void *owner, const char *name, const ai_events_t *ev,
               void *bridge, const char *session_id, size_t rx_max, const char *head, const char *tail)
{
    c->ops = ops;
    c->owner = owner;
    c->name = name;
    c->ev = ev;
    c->bridge = bridge;
    c->rx_max = rx_max;
    c->metrics_ai = -1;
    c->a_head_text = head;
    c->a_tail_text = tail;
    aiws_list_init(&c->ctrl);
    snprintf(c->id, sizeof(c->id), "%s", session_id != NULL ? session_id : "");
}

void aiws_cleanup(aiws_conn_t *c)
{
    aiws_list_free(&c->ctrl);
    free(c->target);
    c->target = NULL;
    free(c->rx);
    c->rx = NULL;
}

int aiws_live(const aiws_conn_t *c)
{
    return !c->released && !c->failed;
}

static const char *event(const aiws_conn_t *c, char *buf, size_t size, const char *what)
{
    snprintf(buf, size, "%s.%s", c->name, what);
    return buf;
}

int aiws_fail(aiws_conn_t *c, const char *what)
{
    if (!aiws_live(c))
        return -1;
    char q[256], e[48];
    log_warn(event(c, e, sizeof(e), "failed"), "session=%s what=%s", c->id, log_quote(q, sizeof(q), what, (size_t)-1));
    c->failed = 1;
    if (c->ev->error != NULL)
        c->ev->error(c->bridge, what, 1);
    return -1;
}

void aiws_want_write(aiws_conn_t *c)
{
    if (c->ws != NULL && c->established)
        wsc_flush(c->ws);
}

void aiws_timer(aiws_conn_t *c, uint64_t ms)
{
    if (c->ws != NULL && c->established && !c->closing)
        wsc_timer(c->ws, ms);
}

/* ---- the worker's connections ------------------------------------------------------------ */

/* asterisk, jambonz, then ai in handlers/routes.c's module table */
#define AI_MOD 2

typedef struct aiws_pool {
    aiws_conn_t *head;
} aiws_pool_t;

static void pool_add(aiws_conn_t *c)
{
    aiws_pool_t *p = c->w->mod[AI_MOD];
    if (p == NULL)
        return;
    c->pool = p;
    c->prev = NULL;
    c->next = p->head;
    if (p->head != NULL)
        p->head->prev = c;
    p->head = c;
}

static void pool_remove(aiws_conn_t *c)
{
    if (c->pool == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->pool->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->pool = NULL;
    c->prev = c->next = NULL;
}

int aiws_start(struct worker *w, void **state)
{
    (void)w;
    *state = calloc(1, sizeof(aiws_pool_t));
    return *state != NULL ? 0 : -1;
}

int aiws_busy(struct worker *w, void *state)
{
    (void)w;
    const aiws_pool_t *p = state;
    for (const aiws_conn_t *c = p != NULL ? p->head : NULL; c != NULL; c = c->next)
        if (c->released)
            return 1; /* a polite close in progress: at most its grace period */
    return 0;
}

void aiws_release(struct worker *w, void *state)
{
    (void)w;
    aiws_pool_t *p = state;
    if (p == NULL)
        return;
    while (p->head != NULL) {
        aiws_conn_t *c = p->head;
        pool_remove(c);
        if (c->ws != NULL)
            wsc_abort(c->ws); /* its last callback comes from the loop, which runs on */
    }
    free(p);
}

/* The owner goes once the bridge has let it go and nothing else holds it. */
static void maybe_free(aiws_conn_t *c)
{
    if (c->released && c->busy == 0 && c->ws == NULL && !c->resolving) {
        pool_remove(c);
        c->ops->free(c->owner);
    }
}

/* ---- outgoing messages ------------------------------------------------------------------- */

int aiws_send_ctrl(aiws_conn_t *c, json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    char what[64], e[48];
    snprintf(what, sizeof(what), "%s", type != NULL ? type : "?");
    if (c->ctrl.n >= AIWS_CTRL_MAX) {
        json_decref(msg);
        log_error(event(c, e, sizeof(e), "queue_full"), "session=%s type=%s", c->id, what);
        return -1;
    }
    aiws_msg_t *m = aiws_msg_new(msg);
    if (m == NULL) {
        log_error(event(c, e, sizeof(e), "build_failed"), "session=%s type=%s", c->id, what);
        return -1;
    }
    aiws_list_push(&c->ctrl, m);
    aiws_want_write(c);
    return 0;
}

/* The one copy of the caller's base64 on its way out; the caller checked it and the room. */
static size_t frame_write(char *dst, const char *head, const char *tail, const char *b64, size_t len)
{
    size_t h = strlen(head), t = strlen(tail);
    memcpy(dst, head, h);
    memcpy(dst + h, b64, len);
    memcpy(dst + h + len, tail, t);
    return h + len + t;
}

size_t aiws_frame_build(char *dst, size_t cap, const char *head, const char *tail, const char *b64, size_t len)
{
    if (len > cap || cap - len < strlen(head) + strlen(tail) || !ai_b64_valid(b64, len))
        return 0;
    return frame_write(dst, head, tail, b64, len);
}

int aiws_audio_ok(aiws_conn_t *c, const char *b64, size_t len, const char *direction)
{
    if (b64 != NULL && ai_b64_valid(b64, len))
        return 1;
    if (!c->bad_audio_logged) {
        char e[48];
        log_warn(event(c, e, sizeof(e), "bad_audio"), "session=%s direction=%s", c->id, direction);
    }
    c->bad_audio_logged = 1;
    return 0;
}

void aiws_send_audio(aiws_conn_t *c, const char *b64, size_t len)
{
    if (aiws_live(c) && len > 0 && aiws_audio_ok(c, b64, len, "in"))
        aiws_audio_push(c, b64, len);
}

const char *aiws_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

json_t *aiws_parse(aiws_conn_t *c, const char *msg, size_t len, const char **type)
{
    json_error_t jerr;
    json_t *e = json_loadb(msg, len, 0, &jerr);
    *type = json_string_value(json_object_get(e, "type"));
    if (*type != NULL)
        return e;
    char q[128], ev[48];
    log_warn(event(c, ev, sizeof(ev), "bad_message"), "session=%s error=%s", c->id,
             log_quote(q, sizeof(q), e == NULL ? jerr.text : "no type", (size_t)-1));
    json_decref(e);
    return NULL;
}

void aiws_audio_push(aiws_conn_t *c, const char *b64, size_t len)
{
    /* bigger frames are cut on whole base64 quanta: each piece still decodes on its own */
    while (len > 0) {
        size_t n = len > AIWS_FRAME_B64 ? AIWS_FRAME_B64 : len;
        if (c->a_count == AIWS_AUDIO_SLOTS) {
            c->a_head = (c->a_head + 1) % AIWS_AUDIO_SLOTS;
            c->a_count--;
            c->dropped++;
        }
        unsigned i = (c->a_head + c->a_count) % AIWS_AUDIO_SLOTS;
        c->a_len[i] = (uint16_t)frame_write(c->slots[i], c->a_head_text, c->a_tail_text, b64, n);
        c->a_count++;
        b64 += n;
        len -= n;
    }
    if (!c->hold_audio)
        aiws_want_write(c);
}

char *aiws_out_peek(aiws_conn_t *c, size_t *len)
{
    if (c->ctrl.head != NULL) {
        *len = c->ctrl.head->len;
        return c->ctrl.head->buf;
    }
    if (!c->hold_audio && c->a_count > 0) {
        *len = c->a_len[c->a_head];
        return c->slots[c->a_head];
    }
    *len = 0;
    return NULL;
}

void aiws_out_pop(aiws_conn_t *c)
{
    if (c->w != NULL)
        metrics_ai_message(&c->w->metrics, c->metrics_ai, METRICS_AI_SENT);
    if (c->ctrl.head != NULL) {
        free(aiws_list_shift(&c->ctrl));
    } else if (c->a_count > 0) {
        c->a_head = (c->a_head + 1) % AIWS_AUDIO_SLOTS;
        c->a_count--;
    }
}

/* ---- incoming messages ------------------------------------------------------------------- */

int aiws_rx_feed(aiws_conn_t *c, const char *in, size_t len, int final)
{
    if (final && c->w != NULL)
        metrics_ai_message(&c->w->metrics, c->metrics_ai, METRICS_AI_RECEIVED);
    if (final && c->rx_len == 0) /* the usual case: parse where it lies */
        return c->ops->message(c->owner, in, len);
    if (len > c->rx_max - c->rx_len) {
        c->rx_len = 0;
        c->close_code = 1009;
        return aiws_fail(c, "server message too large");
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap > 0 ? c->rx_cap * 2 : RX_MIN_ALLOC;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > c->rx_max)
            cap = c->rx_max;
        char *rx = realloc(c->rx, cap);
        if (rx == NULL) {
            c->rx_len = 0;
            return aiws_fail(c, "out of memory");
        }
        c->rx = rx;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!final)
        return 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    return c->ops->message(c->owner, c->rx, n);
}

/* ---- closing ----------------------------------------------------------------------------- */

#define CLOSE_GRACE_MS 2000 /* a closing connection the server does not end is cut */

/* Ends the connection; its end is reported through conn_closed, never from inside this call. */
static void begin_close(aiws_conn_t *c)
{
    if (c->closing || c->ws == NULL)
        return;
    c->closing = 1;
    if (c->established)
        wsc_close(c->ws, c->close_code != 0 ? c->close_code : 1000, CLOSE_GRACE_MS);
    else
        wsc_abort(c->ws);
}

void aiws_close(aiws_conn_t *c)
{
    if (c->released)
        return;
    c->released = 1;
    if (c->busy > 0)
        return; /* the callback or resolver we are inside of ends it on the way out */
    if (c->resolving) {
        uv_cancel((uv_req_t *)&c->dns); /* its callback runs either way and frees */
        return;
    }
    if (c->ws == NULL) {
        maybe_free(c);
        return;
    }
    begin_close(c);
}

/* ---- the connection's callbacks ---------------------------------------------------------- */

/* After a callback: a session that failed or was let go meanwhile has nothing more to say. */
static void leave(aiws_conn_t *c)
{
    c->busy--;
    if (c->busy == 0 && !aiws_live(c))
        begin_close(c);
    maybe_free(c);
}

static int conn_headers(void *owner, char *dst, size_t cap)
{
    aiws_conn_t *c = owner;
    return c->ops->headers(c->owner, dst, cap);
}

static void conn_open(void *owner)
{
    aiws_conn_t *c = owner;
    char e[48];
    c->established = 1;
    log_debug(event(c, e, sizeof(e), "connected"), "session=%s", c->id);
    c->busy++;
    if (c->ops->connected != NULL)
        c->ops->connected(c->owner);
    leave(c); /* wsc writes the provider's first messages on the way out */
}

static void conn_message(void *owner, const char *data, size_t len, int final)
{
    aiws_conn_t *c = owner;
    if (!aiws_live(c))
        return;
    c->busy++;
    aiws_rx_feed(c, data, len, final); /* a failure closes in leave(), politely */
    leave(c);
}

static const char *conn_peek(void *owner, size_t *len)
{
    return aiws_out_peek(owner, len);
}

static void conn_pop(void *owner)
{
    aiws_out_pop(owner);
}

static void conn_timer(void *owner)
{
    aiws_conn_t *c = owner;
    if (c->closing || c->ops->timer == NULL)
        return;
    c->busy++;
    c->ops->timer(c->owner);
    leave(c);
}

/* The last word about the connection: from here on it never calls us. */
static void conn_closed(void *owner, const char *why)
{
    aiws_conn_t *c = owner;
    c->ws = NULL;
    c->established = 0;
    c->busy++;
    if (aiws_live(c)) {
        aiws_fail(c, why != NULL ? why : "connection closed");
    } else {
        char e[48];
        log_debug(event(c, e, sizeof(e), "closed"), "session=%s", c->id);
    }
    leave(c);
}

static const wsc_ops_t conn_ops = {
    .headers = conn_headers,
    .open = conn_open,
    .message = conn_message,
    .peek = conn_peek,
    .pop = conn_pop,
    .timer = conn_timer,
    .closed = conn_closed,
};

/* ---- connecting -------------------------------------------------------------------------- */

/* address: numeric, so nothing is resolved on the loop; the host name still goes to the Host
 * header, SNI and the certificate check. Frees the target. */
static int start_connect(aiws_conn_t *c, const char *address)
{
    const aiws_target_t *t = c->target;
    wsc_params_t p = {
        .loop = &c->w->loop,
        .address = address,
        .host = t->host,
        .path = t->path,
        .port = t->port,
        .ssl = t->tls ? c->w->app->client_ssl : NULL,
        .max_msg = c->rx_max,
        .ops = &conn_ops,
        .owner = c,
    };
    const char *why = NULL;
    c->ws = wsc_connect(&p, &why); /* copies what it keeps */
    free(c->target);
    c->target = NULL;
    return c->ws != NULL ? 0 : -1;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    aiws_conn_t *c = req->data;
    char ip[64] = "";
    c->resolving = 0;
    /* IPv4 first: a host without an IPv6 route would otherwise fail where IPv4 works */
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = status == 0 ? res : NULL; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
        if (pick == NULL && a->ai_family == AF_INET6)
            pick = a;
    }
    if (pick != NULL && pick->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, sizeof(ip));
    else if (pick != NULL)
        uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    c->busy++;
    if (!c->released) {
        char what[320];
        if (ip[0] == '\0') {
            snprintf(what, sizeof(what), "cannot resolve %s: %s", c->target->host,
                     status != 0 ? uv_strerror(status) : "no address");
            aiws_fail(c, what);
        } else if (start_connect(c, ip) != 0) {
            snprintf(what, sizeof(what), "cannot connect to %s", ip);
            aiws_fail(c, what);
        }
    }
    free(c->target);
    c->target = NULL;
    leave(c);
}

int aiws_connect(aiws_conn_t *c, struct worker *w, const aiws_target_t *t, const char **why)
{
    c->w = w;
    if ((c->target = malloc(sizeof(*c->target))) == NULL) {
        *why = "out of memory";
        return -1;
    }
    *c->target = *t;
    pool_add(c);
    unsigned char addr[16];
    if (uv_inet_pton(AF_INET, t->host, addr) == 0 || uv_inet_pton(AF_INET6, t->host, addr) == 0) {
        if (start_connect(c, t->host) != 0) {
            pool_remove(c);
            *why = "cannot connect";
            return -1;
        }
        return 0;
    }
    /* getaddrinfo would stall every call on this worker: the name is resolved on libuv's
     * thread pool first */
    struct addrinfo hints;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", t->port);
    c->dns.data = c;
    if (uv_getaddrinfo(&w->loop, &c->dns, on_resolved, c->target->host, port, &hints) != 0) {
        pool_remove(c);
        *why = "cannot resolve the host";
        return -1;
    }
    c->resolving = 1;
    return 0;
}

int aiws_call_seen(aiws_conn_t *c, const char *call_id)
{
    for (unsigned i = 0; i < AIWS_CALL_IDS; i++)
        if (c->calls[i][0] != '\0' && strncmp(c->calls[i], call_id, AIWS_CALL_ID_MAX - 1) == 0)
            return 1;
    snprintf(c->calls[c->ncalls++ % AIWS_CALL_IDS], AIWS_CALL_ID_MAX, "%s", call_id);
    return 0;
}
