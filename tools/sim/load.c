/*
 * switchboard-sim load: N concurrent simulated Twilio (or jambonz) calls on one libuv loop.
 *
 * Twilio: each call posts the voice webhook (signed when a token is given), reads session_id
 * and the <Stream url> from the TwiML, opens the Media Streams WebSocket, sends connected +
 * start and then a media frame every 20 ms whose payload carries (call, sequence) in its first
 * 8 bytes, so the echo agent's copy can be matched and timed. Marks are acknowledged at once.
 *
 * jambonz (--platform jambonz): each call posts /jambonz/call (JSON, unsigned), takes the
 * listen verb's url, sampleRate and metadata from the answer, opens that WebSocket with the
 * subprotocol audio.jambonz.org, sends the metadata as its first (text) message and then a
 * binary frame of L16 every 20 ms (320 bytes at 8 kHz, 640 at 16 kHz) carrying a sequence
 * marker that survives G.711 (load.h). The server's binary frames are read as a byte stream in
 * 20 ms units, whatever their size, and the marker of each unit matched to its send time.
 * Marks are answered with "playout" once the audio received before them has played (a play
 * clock per call: audio plays from its arrival at real-time pace), checked each 20 ms, or with
 * --marks now on receipt; killAudio empties the play clock, clearMarks answers the pending marks
 * "cleared", disconnect is counted. The call ends with a close frame (1000): jambonz has no stop
 * message.
 *
 * The client must stay cheaper than the server at 1000 calls on 2 cores: no JSON parsing on
 * the receive path, no allocation per frame, one write per frame, and frames spread over the
 * 20 ms period by call (a 1 ms tick sends the calls of one phase) so the server never sees a
 * burst of 1000 frames that would measure our queueing rather than its latency.
 *
 * --openai-port: the same process also plays OpenAI's Realtime server (load_openai.c, on a
 * thread and a loop of its own) for a switchboard with AI_PROVIDER=openai: the appends come back
 * as audio deltas carrying the same base64, so the tag in each frame is matched as for the echo
 * agent, and the fake's delay is the one removed from the round trip.
 *
 * Phases: ramp (calls start at --ramp per second), steady (--duration seconds with every call
 * up: the window for latency, CPU and RSS), drain (echoes of the last frames come back), close
 * (stop + close frame, wait for the server to hang up).
 */
#define _GNU_SOURCE /* memmem */
#include "tools/sim/load.h"
#include "tools/sim/load_openai.h"

#include <uv.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SENT_SLOTS       512 /* frames remembered: 10 s, so an overloaded server shows as late, not lost */
#define DRAIN_MAX_MS     5000
#define RBUF             4096
#define OBUF             8192 /* ~24 media frames of backlog before we drop and count */
#define SETUP_TIMEOUT_MS 10000
#define CLOSE_WAIT_MS    3000
#define HOUSEKEEP_MS     50
#define ACCOUNT_SID      "AC00000000000000000000000000000000"

/* jambonz */
#define JB_ACCOUNT_SID     "9351f46a-678c-43f5-b8a6-d4eb58d131af"
#define JB_APPLICATION_SID "0f1e2d3c-4b5a-4697-8877-665544332211"
#define JB_MARKS           8   /* jambonz marks awaiting playout per call (the server sends one per 100 ms) */
#define JB_UNIT8           320 /* bytes of 20 ms of L16 at 8 kHz: one echoed unit (640 at 16 kHz) */

enum { C_IDLE, C_HTTP, C_WS, C_LIVE, C_STOPPING, C_DONE, C_FAILED };
enum { P_RAMP, P_STEADY, P_DRAIN, P_CLOSING, P_OVER };

typedef struct call {
    uv_tcp_t tcp; /* the webhook's connection, then (re-initialised) the stream's */
    uv_connect_t connect;
    uv_write_t wreq;
    unsigned idx;
    int state;
    char call_sid[35], stream_sid[35], ws_key[25];
    char stream_url[256], params[256]; /* <Stream url>, its <Parameter>s as JSON members */
    uint64_t webhook_ns, setup_ms, next_due_ms;
    uint32_t seq, msgs; /* media frames, messages (sequenceNumber) sent */
    struct call *next;  /* in its phase's list */
    size_t rlen, olen, ooff, inflight;
    uint32_t sent_seq[SENT_SLOTS]; /* seq + 1 while the echo is awaited, 0 when free */
    uint64_t sent_ns[SENT_SLOTS];
    /* jambonz */
    uint8_t wide, mk_got;      /* L16 at 16 kHz; marker bytes of the current unit gathered */
    uint8_t mark_head, mark_n; /* marks awaiting playout */
    uint16_t unit_pos;         /* bytes of the current echoed unit received */
    int in_binary;             /* a fragmented binary message continues */
    size_t bin_left;           /* payload bytes of the binary frame being read */
    uint64_t play_until_ns;    /* when the agent audio received so far has played */
    uint32_t mark_name[JB_MARKS], mark_due_ms[JB_MARKS];
    unsigned char mk[2 * JM_N16];
    unsigned char rbuf[RBUF], obuf[OBUF];
} call_t;

static struct {
    load_opts_t o;
    /* run */
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_signal_t sigint;
    call_t *calls, *slots[FRAME_MS];
    unsigned char *pcm, *l16; /* the audio as mu-law frames, and (jambonz) as 8 kHz L16 frames */
    char (*b64)[FRAME_B64 + 1];
    size_t nframes;
    uint64_t t0_ns, last_ms, next_house_ms, next_rss_ms, phase_until_ms, prng;
    unsigned next_start, setting_up, live;
    int phase, sending;
    uint64_t win_start_ns;
    int64_t cpu0;
    double self0, openai0;
    int delay_ms;      /* what the round trip has removed: the echo agent's, or the fake OpenAI's */
    openai_fake_t *oa; /* --openai-port */
    load_stats_t st;
} g;

static uint64_t run_ms(void)
{
    return (uv_hrtime() - g.t0_ns) / 1000000;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void new_sid(char *out, const char *prefix)
{
    snprintf(out, 35, "%s%016llx%016llx", prefix, (unsigned long long)prng_next(&g.prng),
             (unsigned long long)prng_next(&g.prng));
}

/* ---- failures: counted by reason, the connection closed ---- */

static void close_conn(call_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, NULL); /* the call owns the memory: nothing to free */
}

static void leave_setup(call_t *c)
{
    if (c->state == C_HTTP || c->state == C_WS)
        g.setting_up--;
}

/* A call ends: a failed set-up, a stream the server dropped, or (while stopping) the end */
static void end_call(call_t *c, const char *fmt, ...)
{
    if (c->state >= C_DONE)
        return;
    if (c->state != C_STOPPING) {
        char why[96];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        load_count_reason(&g.st, why);
        if (c->state == C_LIVE) {
            g.st.dropped++;
            g.live--;
        } else {
            g.st.failed++;
        }
    } else {
        g.live--;
    }
    leave_setup(c);
    c->state = c->state == C_STOPPING ? C_DONE : C_FAILED;
    close_conn(c);
}

/* ---- output: one buffer per call, written with uv_try_write, the rest by uv_write ---- */

static void flush(call_t *c);

static void on_written(uv_write_t *w, int status)
{
    call_t *c = w->data;
    c->ooff += c->inflight;
    c->inflight = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            end_call(c, "write failed: %s", uv_err_name(status));
        return;
    }
    if (c->ooff == c->olen)
        c->ooff = c->olen = 0;
    flush(c);
}

static void flush(call_t *c)
{
    if (c->inflight > 0 || c->ooff == c->olen || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_buf_t b = uv_buf_init((char *)c->obuf + c->ooff, (unsigned)(c->olen - c->ooff));
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        end_call(c, "write failed: %s", uv_err_name(n));
        return;
    }
    c->ooff += n > 0 ? (size_t)n : 0;
    if (c->ooff == c->olen) {
        c->ooff = c->olen = 0;
        return;
    }
    /* the socket is full: the rest goes out when it drains, new output queues behind it */
    b = uv_buf_init((char *)c->obuf + c->ooff, (unsigned)(c->olen - c->ooff));
    c->inflight = b.len;
    c->wreq.data = c;
    uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static unsigned char *reserve(call_t *c, size_t n)
{
    if (c->olen + n > OBUF && c->inflight == 0 && c->ooff > 0) {
        memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
        c->olen -= c->ooff;
        c->ooff = 0;
    }
    return c->olen + n <= OBUF ? c->obuf + c->olen : NULL;
}

static int send_raw(call_t *c, const char *s, size_t n)
{
    unsigned char *p = reserve(c, n);
    if (p == NULL)
        return -1;
    memcpy(p, s, n);
    c->olen += n;
    flush(c);
    return 0;
}

static int ws_send(call_t *c, int opcode, const char *msg, size_t n)
{
    unsigned char *p = reserve(c, n + 14);
    if (p == NULL)
        return -1;
    c->olen += ws_client_frame(p, opcode, msg, n, (uint32_t)prng_next(&g.prng));
    flush(c);
    return 0;
}

/* control messages must go out: a full buffer means the server stopped reading */
static void ws_send_or_end(call_t *c, const char *msg, size_t n)
{
    if (ws_send(c, 1, msg, n) != 0)
        end_call(c, "send buffer full (server not reading)");
}

/* ---- the Media Streams messages ---- */

static void send_start(call_t *c)
{
    static const char connected[] = "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}";
    char m[1024];
    int n = snprintf(m, sizeof(m),
                     "{\"event\":\"start\",\"sequenceNumber\":\"%u\",\"start\":{\"accountSid\":\"%s\",\"streamSid\":"
                     "\"%s\",\"callSid\":\"%s\",\"tracks\":[\"inbound\"],\"customParameters\":{%s},\"mediaFormat\":"
                     "{\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1}},\"streamSid\":\"%s\"}",
                     ++c->msgs, ACCOUNT_SID, c->stream_sid, c->call_sid, c->params, c->stream_sid);
    ws_send_or_end(c, connected, sizeof(connected) - 1);
    if (c->state == C_LIVE)
        ws_send_or_end(c, m, (size_t)n);
}

/* jambonz: the first message, the listen verb's metadata merged at the top level */
static void send_metadata(call_t *c)
{
    char m[1024];
    int n = snprintf(m, sizeof(m),
                     "{\"sampleRate\":%d,\"mixType\":\"mono\",\"callSid\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
                     "\"direction\":\"inbound\"%s%s}",
                     c->wide ? 16000 : 8000, c->call_sid, g.o.from, g.o.to, c->params[0] ? "," : "", c->params);
    ws_send_or_end(c, m, (size_t)n);
}

/* decimal digits of v at p; returns the end (snprintf per frame costs more than the rest) */
static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

/* A media frame out, its send time remembered for the echo */
static void frame_out(call_t *c, uint32_t seq, int opcode, const char *m, size_t n, uint64_t due_ms)
{
    unsigned s = seq % SENT_SLOTS;
    uint64_t now = uv_hrtime();
    c->sent_seq[s] = seq + 1;
    c->sent_ns[s] = now;
    if (ws_send(c, opcode, m, n) != 0) {
        c->sent_seq[s] = 0;
        g.st.overflow++;
        return;
    }
    g.st.sent[g.phase == P_STEADY]++;
    /* how far behind its due time the frame went out: our own saturation shows here first */
    hist_add(&g.st.lag, (int64_t)(now - g.t0_ns) / 1000 - (int64_t)due_ms * 1000);
}

static void send_media(call_t *c, uint64_t due_ms)
{
    uint32_t seq = c->seq++;
    size_t k = (seq + c->idx) % g.nframes;
    char m[512], *p = m;
    PUT(p, "{\"event\":\"media\",\"sequenceNumber\":\"");
    p = put_u32(p, ++c->msgs);
    PUT(p, "\",\"media\":{\"track\":\"inbound\",\"chunk\":\"");
    p = put_u32(p, seq + 1);
    PUT(p, "\",\"timestamp\":\"");
    p = put_u32(p, seq * FRAME_MS);
    PUT(p, "\",\"payload\":\"");
    /* the first 9 bytes (12 base64 characters) carry call and sequence; the rest is the audio,
     * encoded once at start-up */
    unsigned char tag[9] = {c->idx >> 24, c->idx >> 16, c->idx >> 8,
                            c->idx,       seq >> 24,    seq >> 16,
                            seq >> 8,     seq,          g.pcm[k * FRAME_BYTES + 8]};
    char head[13];
    b64_encode(tag, sizeof(tag), head);
    memcpy(p, head, 12);
    memcpy(p + 12, g.b64[k] + 12, FRAME_B64 - 12);
    p += FRAME_B64;
    PUT(p, "\"},\"streamSid\":\"");
    memcpy(p, c->stream_sid, 34);
    p += 34;
    PUT(p, "\"}");
    frame_out(c, seq, 1, m, (size_t)(p - m), due_ms);
}

/* jambonz: 20 ms of L16, the marker of seq in it (at 8 kHz over the caller's audio) */
static void send_l16(call_t *c, uint64_t due_ms)
{
    uint32_t seq = c->seq++;
    unsigned char m[2 * JB_UNIT8];
    if (!c->wide)
        memcpy(m, g.l16 + (seq + c->idx) % g.nframes * JB_UNIT8, JB_UNIT8);
    jm_put(m, c->wide, seq);
    frame_out(c, seq, 2, (const char *)m, c->wide ? 2 * JB_UNIT8 : JB_UNIT8, due_ms);
}

static void send_stop(call_t *c)
{
    static const char normal[2] = {0x03, (char)0xe8}; /* close code 1000 */
    if (g.o.platform == PLATFORM_JAMBONZ) {
        /* no stop message: the socket's close is the hang-up */
        c->state = C_STOPPING;
        if (ws_send(c, 8, normal, 2) != 0)
            end_call(c, NULL);
        return;
    }
    char m[256];
    int n =
        snprintf(m, sizeof(m),
                 "{\"event\":\"stop\",\"sequenceNumber\":\"%u\",\"streamSid\":\"%s\",\"stop\":{\"accountSid\":\"%s\","
                 "\"callSid\":\"%s\"}}",
                 ++c->msgs, c->stream_sid, ACCOUNT_SID, c->call_sid);
    c->state = C_STOPPING;
    if (ws_send(c, 1, m, (size_t)n) != 0 || ws_send(c, 8, normal, 2) != 0)
        end_call(c, NULL);
}

/* An echoed frame of this call: match its sequence to its send time */
static void echo_matched(call_t *c, uint32_t seq, uint64_t now)
{
    unsigned s = seq % SENT_SLOTS;
    if (c->sent_seq[s] != seq + 1) {
        g.st.unmatched++; /* a duplicate, or later than we remember */
        return;
    }
    c->sent_seq[s] = 0;
    int steady = g.win_start_ns != 0 && c->sent_ns[s] >= g.win_start_ns;
    hist_add(&g.st.lat[steady], (int64_t)(now - c->sent_ns[s]) / 1000 - (int64_t)g.delay_ms * 1000);
    g.st.echoed[steady]++;
}

/* An echoed frame: match (call, sequence) to its send time */
static void on_echo(call_t *c, const char *payload, size_t avail, uint64_t now)
{
    unsigned char tag[9];
    if (avail < 12 || b64_decode12(payload, tag) != 0) {
        g.st.unmatched++;
        return;
    }
    uint32_t idx = (uint32_t)tag[0] << 24 | (uint32_t)tag[1] << 16 | (uint32_t)tag[2] << 8 | tag[3];
    uint32_t seq = (uint32_t)tag[4] << 24 | (uint32_t)tag[5] << 16 | (uint32_t)tag[6] << 8 | tag[7];
    if (idx != c->idx) {
        g.st.unmatched++; /* another call's audio */
        return;
    }
    echo_matched(c, seq, now);
}

/* Twilio echoes a mark once the audio before it has played; we play nothing, so at once */
static void on_mark(call_t *c, const char *msg, size_t len)
{
    const char *p = memmem(msg, len, "\"name\":\"", 8);
    const char *e = p != NULL ? memchr(p + 8, '"', (size_t)(msg + len - p - 8)) : NULL;
    if (e == NULL || e - p - 8 > 64)
        return;
    char m[256];
    int n = snprintf(m, sizeof(m),
                     "{\"event\":\"mark\",\"sequenceNumber\":\"%u\",\"streamSid\":\"%s\",\"mark\":{\"name\":\"%.*s\"}}",
                     ++c->msgs, c->stream_sid, (int)(e - p - 8), p + 8);
    g.st.marks++;
    ws_send_or_end(c, m, (size_t)n);
}

/* No JSON parser here: the server's messages have a fixed shape, found by scanning */
static void on_text(call_t *c, const char *msg, size_t len, uint64_t now)
{
    const char *ev = memmem(msg, len, "\"event\":\"", 9);
    if (ev == NULL)
        return;
    ev += 9;
    size_t rest = (size_t)(msg + len - ev);
    if (rest > 6 && memcmp(ev, "media\"", 6) == 0) {
        const char *p = memmem(ev, rest, "\"payload\":\"", 11);
        if (p != NULL)
            on_echo(c, p + 11, (size_t)(msg + len - p - 11), now);
    } else if (rest > 5 && memcmp(ev, "mark\"", 5) == 0) {
        on_mark(c, msg, len);
    } else if (rest > 6 && memcmp(ev, "clear\"", 6) == 0) {
        g.st.clears++;
    }
}

/* ---- the jambonz leg: agent audio in 20 ms units, marks at playout ---- */

/* One echoed unit complete: its marker's sequence, matched to the send time */
static void jb_on_unit(call_t *c, uint64_t now)
{
    int npos;
    jm_pos(c->wide, &npos);
    int16_t v[JM_N16];
    for (int i = 0; i < npos; i++)
        v[i] = (int16_t)(uint16_t)(c->mk[2 * i] | c->mk[2 * i + 1] << 8);
    int64_t bits = jm_get(v, c->wide);
    if (bits < 0 || (c->wide && c->seq == 0)) {
        g.st.unmatched++; /* not our audio, or not intact */
        return;
    }
    uint32_t seq = (uint32_t)bits;
    if (c->wide) { /* 14 bits: the latest frame sent with them */
        uint32_t last = c->seq - 1;
        seq = last - ((last - seq) & ((1u << JM_BITS16) - 1));
    }
    echo_matched(c, seq, now);
}

/* n bytes of agent audio (L16), wherever the server's frames cut it: only the marker's bytes
 * of each unit are kept */
static void jb_on_audio(call_t *c, const unsigned char *p, size_t n, uint64_t now)
{
    int npos;
    const uint16_t *pos = jm_pos(c->wide, &npos);
    size_t unit = c->wide ? 2 * JB_UNIT8 : JB_UNIT8;
    while (n > 0) {
        size_t k = unit - c->unit_pos < n ? unit - c->unit_pos : n, end = c->unit_pos + k;
        for (; c->mk_got < 2 * npos; c->mk_got++) {
            size_t at = 2 * (size_t)pos[c->mk_got / 2] + (c->mk_got & 1);
            if (at >= end)
                break;
            c->mk[c->mk_got] = p[at - c->unit_pos];
        }
        p += k;
        n -= k;
        c->unit_pos = (uint16_t)end;
        if (end == unit) {
            c->unit_pos = 0;
            c->mk_got = 0;
            jb_on_unit(c, now);
        }
    }
}

static void jb_send_mark(call_t *c, uint32_t name, int played)
{
    char m[96], *p = m;
    PUT(p, "{\"type\":\"mark\",\"data\":{\"name\":\"m");
    p = put_u32(p, name);
    if (played)
        PUT(p, "\",\"event\":\"playout\"}}");
    else
        PUT(p, "\",\"event\":\"cleared\"}}");
    g.st.marks += played;
    ws_send_or_end(c, m, (size_t)(p - m));
}

/* the pending marks whose audio has played by now */
static void jb_due_marks(call_t *c, uint64_t now_ms)
{
    while (c->mark_n > 0 && c->state >= C_LIVE && c->state <= C_STOPPING && c->mark_due_ms[c->mark_head] <= now_ms) {
        uint32_t name = c->mark_name[c->mark_head];
        c->mark_head = (uint8_t)((c->mark_head + 1) % JB_MARKS);
        c->mark_n--;
        jb_send_mark(c, name, 1);
    }
}

/* A mark after the audio received so far: answered once that has played */
static void jb_on_mark(call_t *c, const char *msg, size_t len, uint64_t now)
{
    const char *p = memmem(msg, len, "\"name\":\"m", 9);
    char *end = NULL;
    unsigned long name = p != NULL ? strtoul(p + 9, &end, 10) : 0;
    if (p == NULL || end == p + 9 || *end != '"') {
        g.st.odd_frames++; /* switchboard names its marks m<seq> */
        return;
    }
    if (c->mark_n == JB_MARKS) { /* the oldest goes now */
        g.st.marks_early++;
        uint32_t oldest = c->mark_name[c->mark_head];
        c->mark_head = (uint8_t)((c->mark_head + 1) % JB_MARKS);
        c->mark_n--;
        jb_send_mark(c, oldest, 1);
        if (c->state > C_STOPPING)
            return;
    }
    if (g.o.marks_now) {
        jb_send_mark(c, (uint32_t)name, 1);
        return;
    }
    uint64_t due_ns = c->play_until_ns > now ? c->play_until_ns : now;
    c->mark_name[(c->mark_head + c->mark_n) % JB_MARKS] = (uint32_t)name;
    c->mark_due_ms[(c->mark_head + c->mark_n) % JB_MARKS] = (uint32_t)((due_ns - g.t0_ns + 999999) / 1000000);
    c->mark_n++;
}

static void jb_on_text(call_t *c, const char *msg, size_t len, uint64_t now)
{
    const char *t = memmem(msg, len, "\"type\":\"", 8);
    if (t == NULL)
        return;
    t += 8;
    size_t rest = (size_t)(msg + len - t);
    if (rest > 5 && memcmp(t, "mark\"", 5) == 0) {
        jb_on_mark(c, msg, len, now);
    } else if (rest > 10 && memcmp(t, "killAudio\"", 10) == 0) {
        g.st.clears++;
        c->play_until_ns = 0; /* what was queued for playing is gone */
    } else if (rest > 11 && memcmp(t, "clearMarks\"", 11) == 0) {
        g.st.clear_marks++;
        while (c->mark_n > 0 && c->state <= C_STOPPING) {
            jb_send_mark(c, c->mark_name[c->mark_head], 0);
            c->mark_head = (uint8_t)((c->mark_head + 1) % JB_MARKS);
            c->mark_n--;
        }
    } else if (rest > 11 && memcmp(t, "disconnect\"", 11) == 0) {
        g.st.disconnects++; /* the server closes the socket next */
    }
}

static void on_frame(call_t *c, const ws_frame_t *f, const unsigned char *p, uint64_t now)
{
    switch (f->opcode) {
    case 1:
        if (f->fin && g.o.platform == PLATFORM_JAMBONZ)
            jb_on_text(c, (const char *)p, f->len, now);
        else if (f->fin)
            on_text(c, (const char *)p, f->len, now);
        else
            g.st.odd_frames++;
        break;
    case 8: {
        int code = f->len >= 2 ? p[0] << 8 | p[1] : 1005;
        if (c->state == C_LIVE)
            end_call(c, "server closed the stream: %d %.*s", code, (int)(f->len > 2 ? f->len - 2 : 0), p + 2);
        else
            end_call(c, NULL);
        break;
    }
    case 9:
        if (ws_send(c, 10, (const char *)p, f->len) != 0)
            end_call(c, "send buffer full (server not reading)");
        break;
    case 10:
        break;
    default:
        g.st.odd_frames++; /* binary (Twilio), continuation: the server never sends them */
    }
}

static void on_ws_bytes(call_t *c, uint64_t now)
{
    size_t off = 0;
    ws_frame_t f;
    int r = 0;
    while (c->state == C_LIVE || c->state == C_STOPPING) {
        if (c->bin_left > 0) { /* jambonz: the rest of a binary frame, as it comes */
            size_t n = c->rlen - off < c->bin_left ? c->rlen - off : c->bin_left;
            if (n == 0)
                break;
            jb_on_audio(c, c->rbuf + off, n, now);
            off += n;
            c->bin_left -= n;
            continue;
        }
        if ((r = ws_parse_head(c->rbuf + off, c->rlen - off, &f)) <= 0)
            break;
        if (g.o.platform == PLATFORM_JAMBONZ && (f.opcode == 2 || (f.opcode == 0 && c->in_binary))) {
            /* agent audio: it plays from now (or when what came before it ends), at real time */
            c->in_binary = !f.fin;
            c->play_until_ns = (c->play_until_ns > now ? c->play_until_ns : now) +
                               (uint64_t)f.len * (c->wide ? 31250 : 62500); /* ns per byte */
            off += f.head;
            c->bin_left = f.len;
            continue;
        }
        if (c->rlen - off < f.head + f.len) {
            r = 0;
            break;
        }
        on_frame(c, &f, c->rbuf + off + f.head, now);
        off += f.head + f.len;
    }
    if (c->state >= C_DONE)
        return;
    if (r < 0 || (off == 0 && c->rlen == RBUF)) {
        end_call(c, r < 0 ? "invalid frame from the server" : "server frame over %d bytes", RBUF);
        return;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
}

/* ---- set-up: the stream's WebSocket ---- */

static void go_live(call_t *c, size_t head_len, uint64_t now)
{
    char accept[64], want[32];
    ws_accept_for(c->ws_key, want);
    if (http_header_value((char *)c->rbuf, head_len, "sec-websocket-accept", accept, sizeof(accept)) != 0 ||
        strcmp(accept, want) != 0) {
        end_call(c, "media upgrade: wrong Sec-WebSocket-Accept");
        return;
    }
    char proto[64];
    if (g.o.platform == PLATFORM_JAMBONZ &&
        (http_header_value((char *)c->rbuf, head_len, "sec-websocket-protocol", proto, sizeof(proto)) != 0 ||
         strcmp(proto, "audio.jambonz.org") != 0)) {
        end_call(c, "listen upgrade: subprotocol not audio.jambonz.org");
        return;
    }
    leave_setup(c);
    c->state = C_LIVE;
    g.st.set_up++;
    g.live++;
    memmove(c->rbuf, c->rbuf + head_len, c->rlen - head_len);
    c->rlen -= head_len;
    if (g.o.platform == PLATFORM_JAMBONZ) {
        int rate = c->wide ? 16000 : 8000;
        g.st.rate = g.st.rate == 0 || g.st.rate == rate ? rate : -1;
        send_metadata(c);
    } else {
        new_sid(c->stream_sid, "MZ");
        send_start(c);
    }
    /* the first frame a period after start (the echo agent gets ready on the server's next
     * loop turn; earlier audio is dropped there), in this call's phase of the 20 ms period */
    uint64_t first = run_ms() + FRAME_MS, phase = c->idx % FRAME_MS;
    c->next_due_ms = first + (phase + FRAME_MS - first % FRAME_MS) % FRAME_MS;
    c->next = g.slots[phase];
    g.slots[phase] = c;
    on_ws_bytes(c, now);
}

static void on_ws_handshake(call_t *c, uint64_t now)
{
    int status;
    size_t head_len;
    long clen;
    int r = http_head((char *)c->rbuf, c->rlen, &status, &head_len, &clen);
    if (r == 0 && c->rlen < RBUF)
        return;
    if (r <= 0)
        end_call(c, "media upgrade: not an HTTP response");
    else if (status != 101)
        end_call(c, "media upgrade: HTTP %d", status);
    else
        go_live(c, head_len, now);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    call_t *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(RBUF - c->rlen));
}

static void on_webhook_answer(call_t *c, int eof);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    call_t *c = s->data;
    uint64_t now = uv_hrtime(); /* one clock read per batch of frames */
    if (n > 0)
        c->rlen += (size_t)n;
    if (n < 0 && c->state != C_HTTP) {
        end_call(c, n == UV_EOF ? "server hung up%s" : "read failed%s", c->state == C_LIVE ? " mid-call" : "");
        return;
    }
    if (c->state == C_HTTP)
        on_webhook_answer(c, n < 0);
    else if (c->state == C_WS)
        on_ws_handshake(c, now);
    else if (n > 0)
        on_ws_bytes(c, now);
}

static void on_ws_connected(uv_connect_t *req, int status)
{
    call_t *c = req->data;
    if (status < 0) {
        end_call(c, "media connect: %s", uv_err_name(status));
        return;
    }
    const char *path = strstr(c->stream_url, "://");
    path = path != NULL ? strchr(path + 3, '/') : NULL;
    unsigned char key[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = prng_next(&g.prng);
        memcpy(key + i, &r, 8);
    }
    b64_encode(key, sizeof(key), c->ws_key);
    char sig[64] = "";
    const char *ua = "TwilioProxy/1.1";
    if (g.o.platform == PLATFORM_JAMBONZ) {
        ua = "jambonz-sim-load";
        snprintf(sig, sizeof(sig), "Sec-WebSocket-Protocol: audio.jambonz.org\r\n");
    } else if (g.o.token != NULL) {
        /* Twilio signs the <Stream url> as written, with no parameters */
        char s[32];
        twilio_signature(g.o.token, c->stream_url, NULL, 0, s);
        snprintf(sig, sizeof(sig), "X-Twilio-Signature: %s\r\n", s);
    }
    char req_text[1024];
    int n = snprintf(req_text, sizeof(req_text),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: %s\r\n%s\r\n",
                     path != NULL ? path : "/twilio/media", g.o.hostport, c->ws_key, ua, sig);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (send_raw(c, req_text, (size_t)n) != 0)
        end_call(c, "media upgrade: request too large");
}

static int open_conn(call_t *c, uv_connect_cb cb)
{
    uv_tcp_init(g.loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    c->rlen = c->olen = c->ooff = c->inflight = 0;
    uv_tcp_nodelay(&c->tcp, 1); /* small frames, latency measured: no Nagle */
    return uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&g.o.addr, cb);
}

static void on_webhook_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    if (c->state != C_WS)
        return;
    int rc = open_conn(c, on_ws_connected);
    if (rc != 0)
        end_call(c, "media connect: %s", uv_err_name(rc));
}

/* ---- set-up: the voice webhook ---- */

static void on_webhook_answer(call_t *c, int eof)
{
    int status;
    size_t head_len;
    long clen;
    const char *buf = (const char *)c->rbuf;
    int r = http_head(buf, c->rlen, &status, &head_len, &clen);
    if (r < 0 || (r == 0 && (eof || c->rlen == RBUF))) {
        end_call(c, eof ? "webhook: connection closed without an answer" : "webhook: not an HTTP answer");
        return;
    }
    if (r == 0 || (clen >= 0 && c->rlen < head_len + (size_t)clen && !eof) || (clen < 0 && !eof)) {
        if (c->rlen == RBUF)
            end_call(c, "webhook: answer over %d bytes", RBUF);
        return;
    }
    hist_add(&g.st.webhook, (int64_t)(uv_hrtime() - c->webhook_ns) / 1000);
    if (status != 200) {
        end_call(c, "webhook: HTTP %d", status);
        return;
    }
    const char *body = buf + head_len;
    size_t blen = c->rlen - head_len;
    if (g.o.platform == PLATFORM_JAMBONZ) {
        int rate = 0;
        if (jambonz_listen_verb(body, blen, c->stream_url, sizeof(c->stream_url), &rate, c->params,
                                sizeof(c->params)) != 0) {
            end_call(c, "webhook: no listen verb with a url");
            return;
        }
        if (strstr(c->params, "\"session_id\":") == NULL) {
            end_call(c, "webhook: listen metadata without a session_id");
            return;
        }
        rate = g.o.rate ? g.o.rate : rate;
        if (rate != 8000 && rate != 16000) {
            end_call(c, "webhook: listen sampleRate %d (want 8000 or 16000)", rate);
            return;
        }
        c->wide = rate == 16000;
        c->state = C_WS;
        uv_close((uv_handle_t *)&c->tcp, on_webhook_closed);
        return;
    }
    twiml_params_json(body, blen, c->params, sizeof(c->params));
    if (text_after(body, blen, "<Stream url=\"", c->stream_url, sizeof(c->stream_url)) != 0) {
        end_call(c, "webhook: TwiML without <Connect><Stream>");
        return;
    }
    if (strstr(c->params, "\"session_id\":") == NULL) {
        end_call(c, "webhook: TwiML without a session_id <Parameter>");
        return;
    }
    c->state = C_WS;
    uv_close((uv_handle_t *)&c->tcp, on_webhook_closed);
}

/* jambonz's call hook: JSON, unsigned (the server runs without JAMBONZ_WEBHOOK_SECRET) */
static void jb_post_call(call_t *c)
{
    char body[512], req_text[1024];
    int blen = snprintf(body, sizeof(body),
                        "{\"call_sid\":\"%s\",\"direction\":\"inbound\",\"from\":\"%s\",\"to\":\"%s\",\"call_status\":"
                        "\"trying\",\"account_sid\":\"%s\",\"application_sid\":\"%s\"}",
                        c->call_sid, g.o.from, g.o.to, JB_ACCOUNT_SID, JB_APPLICATION_SID);
    int n = snprintf(req_text, sizeof(req_text),
                     "POST /jambonz/call HTTP/1.1\r\nHost: %s\r\nUser-Agent: jambonz-sim-load\r\nAccept: */*\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                     g.o.hostport, blen, body);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (blen >= (int)sizeof(body) || n >= (int)sizeof(req_text) || send_raw(c, req_text, (size_t)n) != 0)
        end_call(c, "webhook: request too large");
}

static void on_webhook_connected(uv_connect_t *req, int status)
{
    call_t *c = req->data;
    if (status < 0) {
        end_call(c, "webhook connect: %s", uv_err_name(status));
        return;
    }
    if (g.o.platform == PLATFORM_JAMBONZ) {
        jb_post_call(c);
        return;
    }
    /* Twilio's parameters, sorted by name: the signature covers them in this order */
    const char *kv[] = {"AccountSid", ACCOUNT_SID, "ApiVersion", "2010-04-01", "CallSid", c->call_sid, "CallStatus",
                        "ringing",    "Direction", "inbound",    "From",       g.o.from,  "To",        g.o.to};
    size_t npairs = sizeof(kv) / sizeof(kv[0]) / 2;
    char body[1024], val[256], sighdr[80] = "";
    size_t o = 0;
    for (size_t i = 0; i < npairs && form_escape(kv[2 * i + 1], val, sizeof(val)) == 0; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s%s=%s", i ? "&" : "", kv[2 * i], val); /* < 1 KiB */
    if (g.o.token != NULL) {
        char url[sizeof(g.o.public_base) + 16], s[32];
        snprintf(url, sizeof(url), "%s/twilio/voice", g.o.public_base);
        twilio_signature(g.o.token, url, kv, npairs, s);
        snprintf(sighdr, sizeof(sighdr), "X-Twilio-Signature: %s\r\n", s);
    }
    char req_text[2048];
    int n = snprintf(req_text, sizeof(req_text),
                     "POST /twilio/voice HTTP/1.1\r\nHost: %s\r\nUser-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n%s",
                     g.o.hostport, o, sighdr, body);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (send_raw(c, req_text, (size_t)n) != 0)
        end_call(c, "webhook: request too large");
}

static void start_call(call_t *c)
{
    if (g.o.platform == PLATFORM_JAMBONZ)
        snprintf(c->call_sid, sizeof(c->call_sid), "load-%u-%016llx", c->idx, (unsigned long long)prng_next(&g.prng));
    else
        new_sid(c->call_sid, "CA");
    c->state = C_HTTP;
    c->setup_ms = run_ms();
    c->webhook_ns = uv_hrtime(); /* latency as Twilio sees it: connect included */
    g.setting_up++;
    int rc = open_conn(c, on_webhook_connected);
    if (rc != 0)
        end_call(c, "webhook connect: %s", uv_err_name(rc));
}

/* ---- the clock: one 1 ms tick starts calls, sends each phase's frames, moves the run on ---- */

static void send_phase(unsigned phase, uint64_t now_ms)
{
    for (call_t **pp = &g.slots[phase]; *pp != NULL;) {
        call_t *c = *pp;
        if (c->state != C_LIVE) {
            *pp = c->next; /* ended: leaves the list lazily */
            continue;
        }
        if (c->mark_n > 0)
            jb_due_marks(c, now_ms);
        /* drift-free: frame k is due at first + 20k; a late tick sends what is due */
        while (c->state == C_LIVE && c->next_due_ms <= now_ms) {
            if (g.o.platform == PLATFORM_JAMBONZ)
                send_l16(c, c->next_due_ms);
            else
                send_media(c, c->next_due_ms);
            c->next_due_ms += FRAME_MS;
        }
        pp = &c->next;
    }
}

static void window_open(uint64_t now_ms)
{
    g.phase = P_STEADY;
    g.st.window_calls = g.live;
    g.win_start_ns = uv_hrtime();
    g.cpu0 = g.o.pid ? proc_cpu_ticks(g.o.pid) : -1;
    g.self0 = self_cpu_s();
    g.openai0 = openai_fake_cpu_s(g.oa);
    g.phase_until_ms = now_ms + (uint64_t)(g.o.duration * 1000);
}

static void window_close(uint64_t now_ms)
{
    int64_t cpu1 = g.o.pid ? proc_cpu_ticks(g.o.pid) : -1;
    g.sending = 0;
    g.st.window_s = (double)(uv_hrtime() - g.win_start_ns) / 1e9;
    g.st.server_cpu_s = g.cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - g.cpu0) / (double)sysconf(_SC_CLK_TCK) : -1;
    g.st.client_cpu_s = self_cpu_s() - g.self0;
    double oa1 = openai_fake_cpu_s(g.oa);
    g.st.openai_cpu_s = g.openai0 >= 0 && oa1 >= 0 ? oa1 - g.openai0 : 0;
    g.phase = P_DRAIN;
    g.phase_until_ms = now_ms + DRAIN_MAX_MS; /* the last echoes come home, even from a server behind */
}

static void stop_all(uint64_t now_ms)
{
    for (unsigned i = 0; i < g.o.ncalls; i++)
        if (g.calls[i].state == C_LIVE)
            send_stop(&g.calls[i]);
    g.phase = P_CLOSING;
    g.phase_until_ms = now_ms + CLOSE_WAIT_MS;
}

static void finish_run(void)
{
    for (unsigned i = 0; i < g.o.ncalls; i++) {
        call_t *c = &g.calls[i];
        if (c->state == C_STOPPING || c->state == C_LIVE)
            g.live--;
        if (c->state > C_IDLE && c->state < C_DONE)
            c->state = C_DONE; /* the server never closed: we do */
        if (c->state != C_IDLE && !uv_is_closing((uv_handle_t *)&c->tcp))
            close_conn(c);
    }
    g.phase = P_OVER;
    uv_timer_stop(&g.tick);
    uv_close((uv_handle_t *)&g.tick, NULL);
    uv_close((uv_handle_t *)&g.sigint, NULL);
}

static int all_echoed(void)
{
    return g.st.sent[0] + g.st.sent[1] == g.st.echoed[0] + g.st.echoed[1];
}

static void housekeep(uint64_t now_ms)
{
    for (unsigned i = 0; i < g.next_start; i++) {
        call_t *c = &g.calls[i];
        /* this way round: a call started during this tick has setup_ms > now_ms */
        if ((c->state == C_HTTP || c->state == C_WS) && now_ms > c->setup_ms + SETUP_TIMEOUT_MS)
            end_call(c, c->state == C_HTTP ? "webhook: timeout" : "media upgrade: timeout");
    }
    if (g.o.pid && now_ms >= g.next_rss_ms && g.phase <= P_DRAIN) {
        long rss = proc_rss_kib(g.o.pid);
        if (rss > g.st.rss_peak)
            g.st.rss_peak = rss;
        g.next_rss_ms = now_ms + 250;
    }
    if (g.phase == P_RAMP && g.next_start == g.o.ncalls && g.setting_up == 0) {
        if (g.live > 0)
            window_open(now_ms);
        else
            stop_all(now_ms); /* nothing to measure */
    } else if (g.phase == P_STEADY && (now_ms >= g.phase_until_ms || g.live == 0)) {
        window_close(now_ms);
    } else if (g.phase == P_DRAIN && (now_ms >= g.phase_until_ms || all_echoed())) {
        stop_all(now_ms);
    } else if (g.phase == P_CLOSING && (g.live == 0 || now_ms >= g.phase_until_ms)) {
        finish_run();
    }
}

static void on_tick(uv_timer_t *t)
{
    uint64_t now_ms = run_ms();
    while (g.phase == P_RAMP && g.next_start < g.o.ncalls && now_ms >= (uint64_t)(g.next_start * 1000.0 / g.o.ramp))
        start_call(&g.calls[g.next_start++]);
    if (g.sending) {
        uint64_t from = now_ms - g.last_ms > FRAME_MS ? now_ms - FRAME_MS + 1 : g.last_ms + 1;
        for (uint64_t m = from; m <= now_ms; m++)
            send_phase((unsigned)(m % FRAME_MS), now_ms);
    }
    g.last_ms = now_ms;
    if (now_ms >= g.next_house_ms) {
        g.next_house_ms = now_ms + HOUSEKEEP_MS;
        housekeep(now_ms);
    }
}

static void on_sigint(uv_signal_t *s, int sig)
{
    if (g.phase >= P_DRAIN)
        exit(1);
    if (g.phase == P_RAMP)
        g.next_start = g.o.ncalls; /* start no more */
    if (g.phase == P_STEADY)
        g.phase_until_ms = 0; /* end the window now: the figures so far are reported */
}

static void fill_stats(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    g.st.requested = g.o.ncalls;
    g.st.platform = g.o.platform;
    g.st.ramp = g.o.ramp;
    g.st.echo_delay_ms = g.o.echo_delay_ms;
    g.st.openai_port = g.o.openai_port;
    g.st.openai_delay_ms = g.o.openai_delay_ms;
    g.st.pid = g.o.pid;
    g.st.client_rss_kib = ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a server hanging up mid-write is an error code, not a death */
    if (load_parse_args(argc, argv, &g.o) != 0)
        return 2;
    if (load_audio(g.o.audio, &g.pcm, &g.b64, &g.nframes) != 0)
        return 2;
    if (g.o.platform == PLATFORM_JAMBONZ) { /* the same audio as 8 kHz L16 (at 16 kHz: markers alone) */
        g.l16 = malloc(g.nframes * JB_UNIT8);
        if (g.l16 == NULL)
            return 2;
        for (size_t i = 0; i < g.nframes * FRAME_BYTES; i++) {
            int16_t v = mulaw_to_linear(g.pcm[i]);
            g.l16[2 * i] = (unsigned char)v;
            g.l16[2 * i + 1] = (unsigned char)((uint16_t)v >> 8);
        }
    }
    g.calls = calloc(g.o.ncalls, sizeof(call_t));
    if (g.calls == NULL) {
        fprintf(stderr, "out of memory for %u calls\n", g.o.ncalls);
        return 2;
    }
    for (unsigned i = 0; i < g.o.ncalls; i++)
        g.calls[i].idx = i;
    if (g.o.pid && (g.st.rss_before = g.st.rss_peak = proc_rss_kib(g.o.pid)) < 0) {
        fprintf(stderr, "--pid %d: no such process\n", g.o.pid);
        return 2;
    }
    g.st.server_cpu_s = -1;
    g.delay_ms = g.o.echo_delay_ms;
    if (g.o.openai_port) {
        /* room for every call's appends over the delay, twice over: a server that batches */
        size_t ring = (size_t)g.o.ncalls * ((size_t)g.o.openai_delay_ms / FRAME_MS + 3) * 2 + 1024;
        if ((g.oa = openai_fake_start(g.o.openai_port, g.o.openai_delay_ms, ring)) == NULL)
            return 2;
        g.delay_ms = g.o.openai_delay_ms;
    }
    g.prng = (uv_hrtime() ^ (uint64_t)getpid() << 32) | 1; /* xorshift must not start at 0 */
    g.loop = uv_default_loop();
    uv_timer_init(g.loop, &g.tick);
    uv_signal_init(g.loop, &g.sigint);
    uv_signal_start(&g.sigint, on_sigint, SIGINT);
    g.t0_ns = uv_hrtime();
    g.sending = 1;
    uv_timer_start(&g.tick, on_tick, 1, 1);
    uv_run(g.loop, UV_RUN_DEFAULT);
    openai_fake_stop(g.oa, &g.st.openai); /* the run is over: the fake too */
    g.oa = NULL;
    fill_stats();
    return load_report(&g.st, g.o.json);
}
