#include "asterisk/rtp_leg.h"
#include "ai/ai.h"
#include "asterisk/rtp.h"
#include "server/log.h"
#include "server/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS   20
#define RX_MAX    2048         /* a datagram larger than this is not ours: dropped */
#define OUT_START 8192         /* agent audio queue: first size (1 s) */
#define OUT_MAX   (8000 * 120) /* and largest: two minutes of agent audio ahead */
#define MARKS     128          /* as many as the bridge keeps */
#define B64_FRAME 216          /* base64 of 160 bytes */
#define JB_DELAY  2            /* frames of playout delay: reordering on a LAN */

typedef struct leg_mark {
    uint64_t pos; /* reported once this many bytes of agent audio have been sent */
    uint32_t seq;
} leg_mark_t;

struct rtp_leg {
    rtp_leg_t *next, *prev; /* the pool's list, ticked every 20 ms */
    rtp_pool_t *pool;
    uv_udp_t udp;
    int port;
    int closed;
    char session[40];
    rtp_leg_closed_cb closed_cb;
    void *owner;
    bridge_t *b;
    struct sockaddr_storage remote;
    int has_remote;
    rtp_jb_t jb;
    rtp_tx_t tx;
    uint64_t caller_ms; /* caller audio handed to the bridge, on its clock */
    /* agent audio: a ring of bytes, grown (rarely) up to OUT_MAX */
    uint8_t *out;
    size_t out_cap, out_head, out_len;
    uint64_t out_sent; /* bytes of agent audio sent so far */
    uint64_t out_queued;
    leg_mark_t marks[MARKS];
    unsigned mark_head, mark_count;
    rtp_leg_stats_t st;
    int warned; /* bad input logged once per call */
    uint8_t rx[RX_MAX];
};

struct rtp_pool {
    uv_timer_t tick; /* first: closing it frees the pool */
    struct worker *w;
    uint64_t next_ms;
    rtp_leg_t *legs, *tail; /* new legs go last: a new call never delays those already talking */
    unsigned nlegs;
    int next_port;
    int closing;
};

/* ---- the tick: caller audio to the bridge, agent audio (or silence) to Asterisk ---- */

static void warn_once(rtp_leg_t *l, const char *what)
{
    if (l->warned)
        return;
    l->warned = 1;
    log_warn("asterisk.rtp_bad_input", "session=%s port=%d what=\"%s\" (counted; logged once per call)", l->session,
             l->port, what);
}

static void send_frame(rtp_leg_t *l)
{
    uint8_t pkt[RTP_PCMU_PACKET];
    uint8_t *payload = pkt + RTP_HEADER_LEN;
    size_t n = l->out_len < RTP_PCMU_FRAME ? l->out_len : RTP_PCMU_FRAME;
    if (n > 0) {
        size_t first = l->out_cap - l->out_head < n ? l->out_cap - l->out_head : n;
        memcpy(payload, l->out + l->out_head, first);
        memcpy(payload + first, l->out, n - first);
        l->out_head = (l->out_head + n) % l->out_cap;
        l->out_len -= n;
        l->out_sent += n;
        if (l->out_len == 0 && l->out_cap > OUT_START) {
            /* a long answer made the queue grow: give the memory back once it has played */
            free(l->out);
            l->out = NULL;
            l->out_cap = l->out_head = 0;
        }
    } else {
        l->st.tx_silence++;
    }
    if (n < RTP_PCMU_FRAME)
        memset(payload + n, RTP_ULAW_SILENCE, RTP_PCMU_FRAME - n);
    rtp_tx_header(&l->tx, pkt);
    uv_buf_t buf = uv_buf_init((char *)pkt, sizeof(pkt));
    if (uv_udp_try_send(&l->udp, &buf, 1, (const struct sockaddr *)&l->remote) >= 0)
        l->st.tx_packets++;
    /* what was sent has been heard: report the marks it passed */
    while (l->mark_count > 0 && l->marks[l->mark_head].pos <= l->out_sent) {
        uint32_t seq = l->marks[l->mark_head].seq;
        l->mark_head = (l->mark_head + 1) % MARKS;
        l->mark_count--;
        if (l->b != NULL)
            bridge_on_mark(l->b, seq);
    }
}

static void tick_leg(rtp_leg_t *l)
{
    uint8_t frame[RTP_PCMU_FRAME];
    rtp_jb_pop_t got = rtp_jb_pop(&l->jb, frame);
    if (got != RTP_JB_IDLE && l->b != NULL) {
        char b64[B64_FRAME];
        size_t n = ai_b64_encode(frame, sizeof(frame), b64);
        l->caller_ms += TICK_MS;
        bridge_on_media(l->b, b64, n, l->caller_ms);
    }
    if (l->has_remote && !l->closed)
        send_frame(l);
}

static void on_tick(uv_timer_t *t)
{
    rtp_pool_t *p = (rtp_pool_t *)t;
    /* legs may close from inside the bridge's callbacks: keep the next one first */
    for (rtp_leg_t *l = p->legs, *next; l != NULL; l = next) {
        next = l->next;
        if (!l->closed)
            tick_leg(l);
    }
    /* absolute deadlines: a late tick does not push the ones after it */
    uint64_t now = uv_now(&p->w->loop);
    p->next_ms += TICK_MS;
    if (p->next_ms + TICK_MS < now)
        p->next_ms = now; /* fell far behind (a stalled loop): start over rather than burst */
    uv_timer_start(&p->tick, on_tick, p->next_ms > now ? p->next_ms - now : 0, 0);
}

/* ---- receive ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    rtp_leg_t *l = h->data;
    *buf = uv_buf_init((char *)l->rx, sizeof(l->rx));
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    rtp_leg_t *l = u->data;
    if (nread <= 0 || from == NULL || l->closed)
        return;
    if (flags & UV_UDP_PARTIAL) {
        l->st.oversized++;
        warn_once(l, "oversized datagram");
        return;
    }
    if (!l->has_remote) {
        l->st.early++; /* before Asterisk told us its end: nobody to trust yet */
        return;
    }
    if (!same_addr(&l->remote, from)) {
        l->st.foreign++;
        warn_once(l, "datagram from another address than Asterisk's end");
        return;
    }
    rtp_packet_t p;
    int rc = rtp_parse((const uint8_t *)buf->base, (size_t)nread, &p);
    if (rc != RTP_OK) {
        l->st.not_rtp++;
        warn_once(l, rtp_strerror(rc));
        return;
    }
    l->st.rx_packets++;
    rtp_jb_result_t r = rtp_jb_push(&l->jb, &p);
    if (r == RTP_JB_WRONG_PT)
        warn_once(l, "payload type other than 0 (PCMU): check the ExternalMedia format");
    else if (r == RTP_JB_WRONG_SIZE)
        warn_once(l, "payload other than 160 bytes (20 ms of PCMU)");
}

/* ---- the media leg the bridge talks to ---- */

static int out_grow(rtp_leg_t *l, size_t need)
{
    size_t cap = l->out_cap ? l->out_cap : OUT_START;
    while (cap < need)
        cap *= 2;
    if (cap > OUT_MAX)
        return -1;
    uint8_t *n = malloc(cap);
    if (n == NULL)
        return -1;
    /* unwrap the ring into the new buffer */
    for (size_t i = 0; i < l->out_len; i++)
        n[i] = l->out[(l->out_head + i) % l->out_cap];
    free(l->out);
    l->out = n;
    l->out_cap = cap;
    l->out_head = 0;
    return 0;
}

static int leg_audio(void *ctx, const char *b64, size_t len)
{
    rtp_leg_t *l = ctx;
    unsigned char pcm[1200]; /* the bridge gives at most 1600 base64 characters */
    long n = ai_b64_decode(b64, len, pcm, sizeof(pcm));
    if (n <= 0 || l->closed)
        return -1;
    if (l->out_len + (size_t)n > l->out_cap && out_grow(l, l->out_len + (size_t)n) != 0) {
        l->st.out_dropped++;
        return -1;
    }
    size_t tail = (l->out_head + l->out_len) % l->out_cap;
    size_t first = l->out_cap - tail < (size_t)n ? l->out_cap - tail : (size_t)n;
    memcpy(l->out + tail, pcm, first);
    memcpy(l->out, pcm + first, (size_t)n - first);
    l->out_len += (size_t)n;
    l->out_queued += (uint64_t)n;
    return 0;
}

static int leg_mark(void *ctx, uint32_t seq)
{
    rtp_leg_t *l = ctx;
    if (l->mark_count >= MARKS)
        return -1;
    leg_mark_t *m = &l->marks[(l->mark_head + l->mark_count++) % MARKS];
    m->pos = l->out_queued;
    m->seq = seq;
    return 0;
}

static void leg_clear(void *ctx)
{
    rtp_leg_t *l = ctx;
    /* barge-in: what was not sent is never heard */
    l->out_queued -= l->out_len;
    l->out_len = 0;
    l->mark_count = 0;
}

static void leg_close(void *ctx, int code, const char *next_action, const char *reason)
{
    rtp_leg_t *l = ctx;
    if (l->closed_cb != NULL)
        l->closed_cb(l->owner, next_action, reason);
}

const media_leg_t rtp_leg_media = {leg_audio, leg_mark, leg_clear, leg_close};

/* ---- lifetime ---- */

rtp_pool_t *rtp_pool_new(struct worker *w)
{
    rtp_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->w = w;
    p->next_port = w->app->cfg.rtp_port_min;
    uv_timer_init(&w->loop, &p->tick);
    return p;
}

unsigned rtp_pool_legs(const rtp_pool_t *p)
{
    return p != NULL ? p->nlegs : 0;
}

static void free_leg(uv_handle_t *h)
{
    rtp_leg_t *l = h->data;
    free(l->out);
    free(l);
}

/* A bound UDP socket on addr:port, or -errno. Plain sockets: trying ports costs no uv handle. */
static int bind_port(const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(struct sockaddr_in);
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0) {
        if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
            return -EINVAL;
        sl = sizeof(struct sockaddr_in6);
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (const struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

rtp_leg_t *rtp_leg_open(rtp_pool_t *p, const char *session_id, rtp_leg_closed_cb closed, void *owner, int *port,
                        char *err, size_t errsz)
{
    const config_t *cfg = &p->w->app->cfg;
    const char *bind_addr = cfg->rtp_bind_address ? cfg->rtp_bind_address : cfg->rtp_address;
    rtp_leg_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    int span = cfg->rtp_port_max - cfg->rtp_port_min + 1, fd = -EADDRINUSE;
    /* the next port after the last one given: a port just freed is not reused at once */
    for (int i = 0; i < span; i++) {
        int port_try = p->next_port;
        p->next_port = p->next_port >= cfg->rtp_port_max ? cfg->rtp_port_min : p->next_port + 1;
        fd = bind_port(bind_addr, port_try);
        if (fd >= 0) {
            l->port = port_try;
            break;
        }
        if (fd != -EADDRINUSE && fd != -EACCES)
            break;
    }
    if (fd < 0 || uv_udp_init(&p->w->loop, &l->udp) != 0 || uv_udp_open(&l->udp, fd) != 0) {
        snprintf(err, errsz, "no free RTP port on %s in %d-%d: %s", bind_addr, cfg->rtp_port_min, cfg->rtp_port_max,
                 fd < 0 ? strerror(-fd) : "libuv refused the socket");
        if (fd >= 0) {
            close(fd);
            if (l->udp.type == UV_UDP) { /* initialised: its memory must outlive the close */
                l->udp.data = l;
                uv_close((uv_handle_t *)&l->udp, free_leg);
                return NULL;
            }
        }
        free(l);
        return NULL;
    }
    l->udp.data = l;
    l->pool = p;
    l->closed_cb = closed;
    l->owner = owner;
    snprintf(l->session, sizeof(l->session), "%s", session_id);
    rtp_jb_init(&l->jb, JB_DELAY);
    uint32_t r[3] = {0, 0, 0};
    RAND_bytes((unsigned char *)r, sizeof(r));
    rtp_tx_init(&l->tx, r[0], (uint16_t)r[1], r[2]);
    uv_udp_recv_start(&l->udp, on_alloc, on_recv);
    l->prev = p->tail;
    if (p->tail != NULL)
        p->tail->next = l;
    else
        p->legs = l;
    p->tail = l;
    if (p->nlegs++ == 0) {
        p->next_ms = uv_now(&p->w->loop) + TICK_MS;
        uv_timer_start(&p->tick, on_tick, TICK_MS, 0);
    }
    *port = l->port;
    return l;
}

int rtp_leg_set_remote(rtp_leg_t *l, const char *addr, int port)
{
    if (port <= 0 || port > 65535 ||
        (uv_ip4_addr(addr, port, (struct sockaddr_in *)&l->remote) != 0 &&
         uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&l->remote) != 0))
        return -1;
    l->has_remote = 1;
    return 0;
}

void rtp_leg_attach(rtp_leg_t *l, bridge_t *b)
{
    l->b = b;
}

void rtp_leg_close(rtp_leg_t *l)
{
    if (l == NULL || l->closed)
        return;
    l->closed = 1;
    rtp_pool_t *p = l->pool;
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        p->legs = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    else
        p->tail = l->prev;
    if (--p->nlegs == 0)
        uv_timer_stop(&p->tick);
    bridge_t *b = l->b;
    l->b = NULL;
    if (b != NULL)
        bridge_leg_gone(b);
    uv_udp_recv_stop(&l->udp);
    uv_close((uv_handle_t *)&l->udp, free_leg);
}

static void free_pool(uv_handle_t *h)
{
    free(h);
}

void rtp_pool_close(rtp_pool_t *p)
{
    if (p == NULL)
        return;
    while (p->legs != NULL)
        rtp_leg_close(p->legs);
    uv_timer_stop(&p->tick);
    uv_close((uv_handle_t *)&p->tick, free_pool);
}

void rtp_leg_stats(const rtp_leg_t *l, rtp_leg_stats_t *out)
{
    *out = l->st;
    out->late = l->jb.stats.late;
    out->duplicates = l->jb.stats.duplicates;
    out->lost = l->jb.stats.lost;
    out->reordered = l->jb.stats.reordered;
    out->wrong_pt = l->jb.stats.wrong_pt;
    out->bad = l->jb.stats.bad;
}

size_t rtp_leg_memory(const rtp_leg_t *l)
{
    return sizeof(*l) + l->out_cap;
}
