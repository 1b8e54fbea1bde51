#include "handlers/media.h"
#include "handlers/twilio.h"
#include "ai/ai.h"
#include "call/bridge.h"
#include "server/log.h"
#include "server/sig.h"
#include "server/worker.h"
#include "server/ws.h"

#include <h2o/websocket.h>

#include <stdlib.h>
#include <string.h>

#define MSG_MAX 1800 /* the largest message we send: media with 1600 base64 characters */

typedef struct media {
    ws_conn_t *ws;
    bridge_t *b;
    worker_t *w;
    unsigned long ignored; /* messages of unknown events */
    char stream_sid[64];   /* from start: every message we send names it */
    char msg[MSG_MAX];
} media_t;

/* ---- Twilio Media Streams as the bridge's media leg: media, mark and clear out ---- */

static int leg_send(media_t *m, int len)
{
    if (m->ws == NULL || len <= 0 || len >= (int)sizeof(m->msg))
        return -1;
    return ws_send_text(m->ws, m->msg, (size_t)len);
}

static int leg_audio(void *ctx, const char *b64, size_t len)
{
    media_t *m = ctx;
    /* the payload goes into the message as it is: the provider checked it is only base64 */
    return leg_send(m, snprintf(m->msg, sizeof(m->msg),
                                "{\"event\":\"media\",\"streamSid\":\"%s\",\"media\":{\"payload\":\"%.*s\"}}",
                                m->stream_sid, (int)len, b64));
}

static int leg_mark(void *ctx, uint32_t seq)
{
    media_t *m = ctx;
    return leg_send(m, snprintf(m->msg, sizeof(m->msg),
                                "{\"event\":\"mark\",\"streamSid\":\"%s\",\"mark\":{\"name\":\"m%u\"}}", m->stream_sid,
                                seq));
}

static void leg_clear(void *ctx)
{
    media_t *m = ctx;
    leg_send(m, snprintf(m->msg, sizeof(m->msg), "{\"event\":\"clear\",\"streamSid\":\"%s\"}", m->stream_sid));
}

/* Twilio then asks <Connect action> what comes next: the bridge stored it on the call. */
static void leg_close(void *ctx, int code, const char *next_action, const char *reason)
{
    media_t *m = ctx;
    if (m->ws != NULL)
        ws_close(m->ws, code, reason);
}

static const media_leg_t twilio_leg = {leg_audio, leg_mark, leg_clear, leg_close};

/* ---- Twilio's messages ---- */

/* After `"key"` (and a colon) in s: where the value starts, or NULL. Tolerates spaces. */
static const char *value_of(const char *s, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = s; p + kl + 2 < end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL || p + kl + 2 >= end)
            return NULL;
        if (memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *v = p + kl + 2;
            while (v < end && (*v == ' ' || *v == ':'))
                v++;
            return v;
        }
    }
    return NULL;
}

/* The audio path, 50 times a second: find the payload (and timestamp) without parsing the
 * whole message or allocating. 1 handled, 0 not a media message of the usual shape. */
static int fast_media(media_t *m, const char *msg, size_t len)
{
    const char *end = msg + len;
    const char *ev = value_of(msg, end, "event");
    if (ev == NULL || end - ev < 7 || memcmp(ev, "\"media\"", 7) != 0)
        return 0;
    const char *pl = value_of(ev, end, "payload");
    if (pl == NULL || *pl != '"')
        return 0;
    pl++;
    const char *q = memchr(pl, '"', (size_t)(end - pl));
    if (q == NULL || !ai_b64_valid(pl, (size_t)(q - pl)))
        return 0;
    uint64_t ts = 0;
    const char *t = value_of(msg, end, "timestamp");
    if (t != NULL && *t == '"')
        for (t++; t < end && *t >= '0' && *t <= '9'; t++)
            ts = ts * 10 + (uint64_t)(*t - '0');
    bridge_on_media(m->b, pl, (size_t)(q - pl), ts);
    return 1;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void on_text(void *data, const char *msg, size_t len)
{
    media_t *m = data;
    if (fast_media(m, msg, len))
        return;
    json_error_t err;
    json_t *o = json_loadb(msg, len, 0, &err);
    const char *event = jstr(o, "event", NULL);
    if (event == NULL) {
        json_decref(o);
        bridge_on_protocol_error(m->b, "not a Twilio Media Streams message", 1007);
        return;
    }
    if (strcmp(event, "start") == 0) {
        const char *session = jstr(o, "start", NULL) ? NULL : NULL;
        json_t *params = json_object_get(json_object_get(o, "start"), "customParameters");
        json_t *sp = json_object_get(params, "session_id");
        session = json_is_string(sp) ? json_string_value(sp) : NULL;
        const char *stream = jstr(o, "streamSid", NULL) ? jstr(o, "streamSid", NULL) : jstr(o, "start", "streamSid");
        const char *enc = jstr(json_object_get(o, "start"), "mediaFormat", "encoding");
        if (enc != NULL && strcmp(enc, "audio/x-mulaw") != 0) {
            bridge_on_protocol_error(m->b, "media format is not audio/x-mulaw", 1003);
        } else {
            /* a streamSid that does not fit (or has characters JSON would need escaped) is refused */
            size_t sl = stream != NULL ? strlen(stream) : 0;
            int ok = sl > 0 && sl < sizeof(m->stream_sid) && strcspn(stream, "\"\\") == sl;
            snprintf(m->stream_sid, sizeof(m->stream_sid), "%s", ok ? stream : "");
            bridge_on_start(m->b, ok ? stream : NULL, jstr(o, "start", "callSid"), session);
        }
    } else if (strcmp(event, "media") == 0) {
        const char *pl = jstr(o, "media", "payload"), *ts = jstr(o, "media", "timestamp");
        if (pl != NULL && ai_b64_valid(pl, strlen(pl)))
            bridge_on_media(m->b, pl, strlen(pl), ts ? strtoull(ts, NULL, 10) : 0);
    } else if (strcmp(event, "mark") == 0) {
        const char *name = jstr(o, "mark", "name");
        if (name != NULL && name[0] == 'm') /* ours: "m" and the bridge's sequence number */
            bridge_on_mark(m->b, (uint32_t)strtoul(name + 1, NULL, 10));
    } else if (strcmp(event, "dtmf") == 0) {
        bridge_on_dtmf(m->b, jstr(o, "dtmf", "digit"));
    } else if (strcmp(event, "stop") == 0) {
        bridge_on_stop(m->b);
    } else if (strcmp(event, "connected") != 0) {
        m->ignored++;
    }
    json_decref(o);
}

static void on_error(void *data, const char *what, int code)
{
    media_t *m = data;
    bridge_on_protocol_error(m->b, what, code);
}

static void on_closed(void *data)
{
    media_t *m = data;
    m->ws = NULL;
    bridge_leg_gone(m->b);
    free(m);
}

static const ws_handler_t handler = {on_text, on_error, on_closed, NULL};

void media_upgrade(http_req_t *r)
{
    const config_t *cfg = &r->w->app->cfg;
    const char *key = NULL;
    if (r->req->version >= 0x200 || h2o_is_websocket_handshake(r->req, &key) != 0 || key == NULL) {
        ws_upgrade(r, MEDIA_MAX_MSG, NULL, NULL); /* answers the 400 that fits */
        return;
    }
    if (cfg->twilio_auth_token != NULL) {
        /* Twilio signs the stream URL it connected to, with no parameters */
        twilio_req_t t;
        twilio_req_preview(r, &t);
        const char *url = twilio_stream_url(&t);
        h2o_iovec_t sig = http_header(r, "x-twilio-signature");
        if (sig.len == 0 || sig_validate_form(cfg->twilio_auth_token, url, NULL, sig.base, sig.len) != 1) {
            log_warn("twilio.bad_signature", "rid=%s path=\"/twilio/media\" signature=%s", r->rid,
                     sig.len ? "mismatch" : "missing");
            http_send(r, 403, "text/plain; charset=utf-8", H2O_STRLIT("invalid X-Twilio-Signature\n"));
            return;
        }
    }
    media_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    m->w = r->w;
    m->b = bridge_new(r->w, &twilio_leg, m);
    if (m->b == NULL) {
        free(m);
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    m->ws = ws_upgrade(r, MEDIA_MAX_MSG, &handler, m);
    if (m->ws == NULL) {
        bridge_leg_gone(m->b);
        free(m);
    }
}
