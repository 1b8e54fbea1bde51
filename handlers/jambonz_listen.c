#include "handlers/jambonz_listen.h"
#include "handlers/jambonz.h"
#include "ai/ai.h"
#include "call/bridge.h"
#include "call/wavrec.h"
#include "jambonz/pcm.h"
#include "server/log.h"
#include "server/worker.h"
#include "server/ws.h"

#include <h2o/websocket.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* jambonz keeps at most 30 marks pending. Below MARKS_DENSE every mark the bridge asks for
 * (one per 100 ms of agent audio) goes out; above, the spacing widens by 100 ms a mark, so 30
 * cover about 22 s of queued audio, and a mark that does not fit is held and sent with the next
 * audio or playout (later than its place: the bridge then under-counts what was heard, never
 * over-counts). */
#define MARKS_MAX   30
#define MARKS_DENSE 10
#define OUT_ULAW    1200 /* the bridge's largest chunk: 1600 base64 characters */

/* At a listen rate other than the line's 8 kHz, jambonz resamples our audio and the markers it
 * puts in its playout buffer for marks are lost with it: no mark ever comes back. There the
 * leg keeps the playout clock itself: audio plays at real time from when it is sent, after
 * jambonz's 160 ms pre-buffer, and each mark is reported when its audio is due to have played. */
#define CLOCK_MARKS        64
#define PREBUFFER_MS       160
#define DISCONNECT_WAIT_MS 2000

typedef struct clock_mark {
    uint32_t seq;
    uint64_t due; /* uv_now() ms */
} clock_mark_t;

typedef struct jlisten {
    uv_timer_t timer; /* first: closing it frees the leg; clock marks only */
    ws_conn_t *ws;
    bridge_t *b; /* the AI conversation; NULL for a voicemail (or once the bridge is gone) */
    worker_t *w;
    int started, closing;  /* closing: we ended the socket (the bridge knows why) */
    char auth_session[40]; /* the session the upgrade's credentials were made for */
    pcm_in_t in;
    pcm_out_t out;
    uint64_t frames; /* caller frames so far: the stream's clock, 20 ms each */
    uint32_t sent[MARKS_MAX];
    unsigned sent_head, sent_count;
    uint32_t held;          /* a mark waiting for room (0: none) */
    uint32_t since_mark_ms; /* agent audio sent since the last mark went out */
    int clock;              /* marks from our own playout clock (rate other than 8 kHz) */
    uint64_t play_end;      /* clock marks: when the audio sent so far will have played */
    clock_mark_t cm[CLOCK_MARKS];
    unsigned cm_head, cm_count;
    unsigned long ignored;
    /* voicemail */
    wavrec_t *rec;
    long call_id, tenant_id;
    char *path;
    char session[40];
    char msg[96];
} jlisten_t;

static int send_text(jlisten_t *l, int len)
{
    if (l->ws == NULL || len <= 0 || len >= (int)sizeof(l->msg))
        return -1;
    return ws_send_text(l->ws, l->msg, (size_t)len);
}

/* ---- the bridge's media leg: L16 out, marks, killAudio, disconnect ---- */

static void try_mark(jlisten_t *l, uint32_t seq)
{
    unsigned n = l->sent_count;
    int room = n < MARKS_DENSE || (n < MARKS_MAX && l->since_mark_ms >= 100u * (n - MARKS_DENSE + 2));
    if (!room ||
        send_text(l, snprintf(l->msg, sizeof(l->msg), "{\"type\":\"mark\",\"data\":{\"name\":\"m%u\"}}", seq)) != 0) {
        l->held = seq;
        return;
    }
    l->sent[(l->sent_head + l->sent_count++) % MARKS_MAX] = seq;
    l->held = 0;
    l->since_mark_ms = 0;
}

static void on_clock(uv_timer_t *t)
{
    jlisten_t *l = (jlisten_t *)t;
    uint64_t now = uv_now(&l->w->loop);
    uint32_t played = 0;
    while (l->cm_count > 0 && l->cm[l->cm_head].due <= now) {
        played = l->cm[l->cm_head].seq;
        l->cm_head = (l->cm_head + 1) % CLOCK_MARKS;
        l->cm_count--;
    }
    if (l->cm_count > 0)
        uv_timer_start(&l->timer, on_clock, l->cm[l->cm_head].due - now, 0);
    if (played != 0 && l->b != NULL)
        bridge_on_mark(l->b, played); /* last: it may end the call */
}

static void clock_mark(jlisten_t *l, uint32_t seq)
{
    uint64_t now = uv_now(&l->w->loop);
    uint64_t due = (l->play_end > now ? l->play_end : now) + PREBUFFER_MS;
    if (l->cm_count == CLOCK_MARKS) { /* full: the newest stands for the last one (coarser, never early) */
        clock_mark_t *last = &l->cm[(l->cm_head + l->cm_count - 1) % CLOCK_MARKS];
        last->seq = seq;
        last->due = due;
        return;
    }
    l->cm[(l->cm_head + l->cm_count++) % CLOCK_MARKS] = (clock_mark_t){seq, due};
    if (l->cm_count == 1)
        uv_timer_start(&l->timer, on_clock, due - now, 0);
}

static int leg_audio(void *ctx, const char *b64, size_t len)
{
    jlisten_t *l = ctx;
    unsigned char ulaw[OUT_ULAW], pcm[OUT_ULAW * 4];
    if (l->ws == NULL)
        return -1;
    if (l->held != 0)
        try_mark(l, l->held);
    long n = ai_b64_decode(b64, len, ulaw, sizeof(ulaw));
    if (n <= 0)
        return -1;
    size_t bytes = pcm_out_convert(&l->out, ulaw, (size_t)n, pcm);
    l->since_mark_ms += (uint32_t)n / 8;
    if (l->clock) {
        uint64_t now = uv_now(&l->w->loop);
        l->play_end = (l->play_end > now ? l->play_end : now) + (uint64_t)n / 8;
    }
    return ws_send_binary(l->ws, pcm, bytes);
}

static int leg_mark(void *ctx, uint32_t seq)
{
    jlisten_t *l = ctx;
    if (l->clock)
        clock_mark(l, seq);
    else
        try_mark(l, seq);
    return 0; /* held marks are not lost: they go out later */
}

static void leg_clear(void *ctx)
{
    jlisten_t *l = ctx;
    send_text(l, snprintf(l->msg, sizeof(l->msg), "{\"type\":\"killAudio\"}"));
    send_text(l, snprintf(l->msg, sizeof(l->msg), "{\"type\":\"clearMarks\"}"));
    pcm_out_reset(&l->out);
    l->sent_count = 0;
    l->held = 0;
    l->since_mark_ms = 0;
    l->cm_count = 0;
    l->play_end = 0;
    uv_timer_stop(&l->timer);
}

static void on_close_late(uv_timer_t *t)
{
    jlisten_t *l = (jlisten_t *)t;
    if (l->ws != NULL)
        ws_close(l->ws, 1000, "disconnected");
}

/* The AI part is over: disconnect ends the listen verb, jambonz closes the socket and asks its
 * actionHook what comes next (the bridge stored it on the call). The disconnect must not be
 * followed by our close at once: a close frame overtakes queued messages. If jambonz has not
 * closed within DISCONNECT_WAIT_MS, we do. Broken input is closed at once with its code (the
 * listen then ends as well). */
static void leg_close(void *ctx, int code, const char *next_action, const char *reason)
{
    jlisten_t *l = ctx;
    if (l->ws == NULL || l->closing)
        return;
    l->closing = 1;
    l->cm_count = 0; /* the timer is the close's now */
    if (next_action != NULL && l->started && code == 1000 &&
        send_text(l, snprintf(l->msg, sizeof(l->msg), "{\"type\":\"disconnect\"}")) == 0) {
        uv_timer_start(&l->timer, on_close_late, DISCONNECT_WAIT_MS, 0);
        return;
    }
    ws_close(l->ws, code, reason);
}

static const media_leg_t jambonz_leg = {leg_audio, leg_mark, leg_clear, leg_close};

/* ---- jambonz's frames ---- */

/* A playout report: every mark up to seq has played. */
static void mark_played(jlisten_t *l, uint32_t seq)
{
    int known = 0;
    while (l->sent_count > 0) {
        uint32_t s = l->sent[l->sent_head];
        if ((int32_t)(s - seq) > 0)
            break;
        l->sent_head = (l->sent_head + 1) % MARKS_MAX;
        l->sent_count--;
        known = 1;
    }
    if (!known)
        return; /* a mark forgotten by a clear */
    bridge_on_mark(l->b, seq);
    if (l->held != 0 && l->b != NULL)
        try_mark(l, l->held);
}

static void on_frame(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES])
{
    jlisten_t *l = ctx;
    uint64_t at = l->frames++ * 20;
    if (l->rec != NULL) {
        wavrec_write(l->rec, 0, at, ulaw, PCM_FRAME_SAMPLES);
        return;
    }
    char b64[(PCM_FRAME_SAMPLES + 2) / 3 * 4 + 1];
    size_t n = ai_b64_encode(ulaw, PCM_FRAME_SAMPLES, b64);
    bridge_on_media(l->b, b64, n, at);
}

static void fail(jlisten_t *l, const char *what, int code)
{
    if (l->b != NULL) {
        bridge_on_protocol_error(l->b, what, code); /* the bridge records and logs it */
        return;
    }
    log_warn("jambonz.listen_refused", "session=%s why=\"%s\" code=%d", l->session[0] ? l->session : "-", what, code);
    if (l->ws != NULL)
        ws_close(l->ws, code, what);
}

static void on_binary(void *data, const unsigned char *msg, size_t len)
{
    jlisten_t *l = data;
    if (!l->started) {
        fail(l, "audio before the metadata", 1002);
        return;
    }
    if (pcm_in_push(&l->in, msg, len, on_frame, l) == PCM_EODD)
        fail(l, "L16 frame of an odd number of bytes", 1007);
}

static const char *str_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Our metadata, merged into jambonz's (or under "metadata", as some versions send it). */
static json_t *ours(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v != NULL ? v : json_object_get(json_object_get(o, "metadata"), key);
}

static int open_voicemail(jlisten_t *l)
{
    const config_t *cfg = &l->w->app->cfg;
    store_call_t call;
    int rc = store_call_by_session(l->w->store, l->session, &call);
    if (rc != 0) {
        if (rc < 0)
            log_error("db.error", "op=call_by_session session=%s error=\"%s\"", l->session, store_errmsg(l->w->store));
        return -1;
    }
    l->call_id = call.id;
    l->tenant_id = call.tenant_id;
    /* RECORDINGS_DIR, else the data folder: a message is never thrown away */
    char root[1024], dir[1060], err[256];
    if (cfg->recordings_dir != NULL && cfg->recordings_dir[0] != '\0')
        snprintf(root, sizeof(root), "%s", cfg->recordings_dir);
    else
        snprintf(root, sizeof(root), "%s/voicemail", cfg->data_dir);
    snprintf(dir, sizeof(dir), "%s/%ld", root, call.tenant_id);
    if ((mkdir(root, 0750) != 0 && errno != EEXIST) || (mkdir(dir, 0750) != 0 && errno != EEXIST)) {
        log_error("voicemail.failed", "session=%s error=\"cannot create %s\"", l->session, dir);
        return -1;
    }
    size_t plen = strlen(dir) + strlen(l->session) + 16;
    if ((l->path = malloc(plen)) == NULL)
        return -1;
    snprintf(l->path, plen, "%s/%s-voicemail.wav", dir, l->session);
    l->rec = wavrec_open(l->path, err, sizeof(err));
    if (l->rec == NULL) {
        log_error("voicemail.failed", "session=%s error=\"%s\"", l->session, err);
        return -1;
    }
    return 0;
}

static void on_metadata(jlisten_t *l, json_t *o)
{
    const config_t *cfg = &l->w->app->cfg;
    json_t *rate = json_object_get(o, "sampleRate");
    const char *mix = str_at(o, "mixType"), *call_sid = str_at(o, "callSid");
    json_t *sess = ours(o, "session_id");
    int sample_rate = rate == NULL            ? cfg->jambonz_sample_rate
                      : json_is_integer(rate) ? (int)json_integer_value(rate)
                                              : 0;
    if (!json_is_string(sess) || json_string_length(sess) >= sizeof(l->session)) {
        fail(l, "metadata without session_id", 1008);
        return;
    }
    snprintf(l->session, sizeof(l->session), "%s", json_string_value(sess));
    if (l->auth_session[0] != '\0' && strcmp(l->auth_session, l->session) != 0) {
        fail(l, "session_id is not the one the credentials were made for", 1008);
        return;
    }
    if (pcm_in_init(&l->in, sample_rate) != 0 || pcm_out_init(&l->out, sample_rate) != 0) {
        fail(l, "unsupported sampleRate (8000 or 16000)", 1003);
        return;
    }
    if (mix != NULL && strcmp(mix, "mono") != 0) {
        fail(l, "unsupported mixType (mono only)", 1003);
        return;
    }
    l->started = 1;
    l->clock = sample_rate != 8000;
    if (json_is_true(ours(o, "voicemail"))) {
        bridge_leg_gone(l->b);
        l->b = NULL;
        if (open_voicemail(l) != 0) {
            fail(l, "unknown session", 1008);
            return;
        }
        log_info("call.event", "session=%s type=voicemail.started file=%s", l->session, l->path);
        return;
    }
    /* the bridge refuses an unknown session or another call's socket, and closes the leg */
    bridge_on_start(l->b, call_sid, call_sid, l->session);
}

static void on_text(void *data, const char *msg, size_t len)
{
    jlisten_t *l = data;
    json_error_t err;
    json_t *o = json_loadb(msg, len, 0, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        fail(l, "text frame is not a JSON object", 1007);
        return;
    }
    if (!l->started) {
        on_metadata(l, o);
        json_decref(o);
        return;
    }
    const char *type = str_at(o, "type"), *event = str_at(o, "event");
    json_t *d = json_object_get(o, "data");
    if (event != NULL && strcmp(event, "dtmf") == 0 && l->b != NULL) {
        const char *digit = str_at(o, "dtmf");
        if (digit != NULL && strlen(digit) == 1)
            bridge_on_dtmf(l->b, digit);
    } else if (type != NULL && strcmp(type, "mark") == 0 && l->b != NULL) {
        const char *name = str_at(d, "name"), *what = str_at(d, "event");
        if (name != NULL && name[0] == 'm' && what != NULL && strcmp(what, "playout") == 0)
            mark_played(l, (uint32_t)strtoul(name + 1, NULL, 10));
        /* "cleared": after our killAudio; the bridge has forgotten those marks already */
    } else {
        l->ignored++;
    }
    json_decref(o);
}

static void on_error(void *data, const char *what, int code)
{
    jlisten_t *l = data;
    if (l->b != NULL)
        bridge_on_protocol_error(l->b, what, code);
}

static void free_leg(uv_handle_t *h)
{
    free(h);
}

static void on_closed(void *data)
{
    jlisten_t *l = data;
    l->ws = NULL;
    /* jambonz has no stop message: its closing the socket is the end of the call's audio */
    if (l->b != NULL && l->started && !l->closing)
        bridge_on_stop(l->b);
    if (l->b != NULL)
        bridge_leg_gone(l->b);
    if (l->rec != NULL) {
        int bad = wavrec_close(l->rec) != 0;
        char detail[1400];
        json_t *ev =
            json_pack("{s:s, s:I, s:b}", "file", l->path, "duration_ms", (json_int_t)(l->frames * 20), "ok", !bad);
        char *json = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (store_call_event(l->w->store, l->call_id, "voicemail.recorded", json) != 0)
            log_error("db.error", "op=call_event session=%s error=\"%s\"", l->session, store_errmsg(l->w->store));
        log_info("call.event", "session=%s type=voicemail.recorded detail=%s", l->session,
                 log_quote(detail, sizeof(detail), json ? json : "", (size_t)-1));
        free(json);
    }
    free(l->path);
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, free_leg);
}

static const ws_handler_t handler = {on_text, on_error, on_closed, on_binary};

/* With JAMBONZ_WEBHOOK_SECRET set, the listen verb carries wsAuth: Basic session:HMAC(session). */
static int check_auth(http_req_t *r, jlisten_t *l)
{
    const config_t *cfg = &r->w->app->cfg;
    if (cfg->jambonz_webhook_secret == NULL)
        return 0;
    h2o_iovec_t a = http_header(r, "authorization");
    unsigned char raw[200];
    if (a.len < 7 || a.len > 6 + 4 * 64 || strncasecmp(a.base, "Basic ", 6) != 0)
        return -1;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)a.base + 6, (int)a.len - 6);
    if (n <= 0)
        return -1;
    while (n > 0 && raw[n - 1] == '\0') /* EVP_DecodeBlock counts the padding */
        n--;
    raw[n] = '\0';
    char *colon = strchr((char *)raw, ':');
    char want[33];
    size_t ulen = colon != NULL ? (size_t)(colon - (char *)raw) : 0;
    if (colon == NULL || ulen == 0 || ulen >= sizeof(l->auth_session))
        return -1;
    *colon = '\0';
    if (jambonz_ws_password(cfg, (char *)raw, want) != 0 || strlen(colon + 1) != 32 ||
        CRYPTO_memcmp(want, colon + 1, 32) != 0)
        return -1;
    memcpy(l->auth_session, raw, ulen + 1);
    return 0;
}

void jambonz_listen_upgrade(http_req_t *r)
{
    const char *key = NULL;
    if (r->req->version >= 0x200 || h2o_is_websocket_handshake(r->req, &key) != 0 || key == NULL) {
        ws_upgrade(r, JAMBONZ_LISTEN_MAX_MSG, NULL, NULL); /* answers the 400 that fits */
        return;
    }
    const char *proto = ws_offered_protocol(r, "audio.jambonz.org")    ? "audio.jambonz.org"
                        : ws_offered_protocol(r, "audio.drachtio.org") ? "audio.drachtio.org"
                                                                       : NULL;
    if (proto == NULL) {
        http_send_error(r, 400, "invalid_header", "offer the subprotocol audio.jambonz.org or audio.drachtio.org",
                        "Sec-WebSocket-Protocol");
        return;
    }
    jlisten_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    if (check_auth(r, l) != 0) {
        free(l);
        log_warn("jambonz.bad_listen_auth", "rid=%s", r->rid);
        http_add_header(r, "www-authenticate", "Basic realm=\"switchboard\"");
        http_send_error(r, 401, "unauthorized", "the listen verb's wsAuth credentials are missing or wrong", NULL);
        return;
    }
    l->w = r->w;
    uv_timer_init(&r->w->loop, &l->timer);
    l->b = bridge_new(r->w, &jambonz_leg, l);
    if (l->b == NULL) {
        uv_close((uv_handle_t *)&l->timer, free_leg);
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    l->ws = ws_upgrade_protocol(r, JAMBONZ_LISTEN_MAX_MSG, proto, &handler, l);
    if (l->ws == NULL) {
        bridge_leg_gone(l->b);
        uv_close((uv_handle_t *)&l->timer, free_leg);
    }
}
