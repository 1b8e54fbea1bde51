#include "server/ai_elevenlabs.h"
#include "server/ai_openai.h"
#include "server/log.h"
#include "server/worker.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_SIZE     ((LWS_PRE + ELEVENLABS_CHUNK_MAX + 15) & ~(size_t)15)
#define CALL_IDS      8
#define CALL_ID_MAX   64
#define CLOSE_GRACE_S 2
#define RX_MIN_ALLOC  (64 * 1024)
#define KEY_MAX       512

_Static_assert(ELEVENLABS_FRAME_B64 % 4 == 0, "frames are split on whole base64 quanta");

typedef struct el_ctrl {
    struct el_ctrl *next;
    size_t len;
    char buf[]; /* LWS_PRE headroom, then the message */
} el_ctrl_t;

struct ai_session {
    worker_t *w;
    struct lws *wsi;
    const ai_events_t *ev;
    void *bridge;
    const char *api_key; /* borrowed from the config */
    elevenlabs_target_t *target;
    uv_getaddrinfo_t dns;
    int busy;
    unsigned resolving : 1, established : 1, ready : 1, in_response : 1, new_item : 1, failed : 1, released : 1,
        closing : 1, close_sent : 1, bad_audio_logged : 1;
    el_ctrl_t *ctrl_head, **ctrl_tail;
    unsigned ctrl_n;
    unsigned a_head, a_count;
    unsigned long dropped;
    long long last_interrupt; /* audio events up to this event_id belong to an interrupted response */
    unsigned item_seq;
    char item[24];
    char *rx;
    size_t rx_len, rx_cap;
    char calls[CALL_IDS][CALL_ID_MAX];
    unsigned ncalls;
    int close_code;
    char close_reason[96];
    char id[48];
    uint16_t a_len[ELEVENLABS_AUDIO_SLOTS];
    _Alignas(16) char slots[ELEVENLABS_AUDIO_SLOTS][SLOT_SIZE];
};

static void maybe_free(ai_session_t *s);

/* ---- small helpers ---------------------------------------------------------------------- */

static int live(const ai_session_t *s)
{
    return !s->released && !s->failed;
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static void want_write(ai_session_t *s)
{
    if (s->wsi != NULL && s->established)
        lws_callback_on_writable(s->wsi);
}

static int fail(ai_session_t *s, const char *what)
{
    if (!live(s))
        return -1;
    char q[256];
    log_warn("elevenlabs.failed", "session=%s what=%s", s->id, log_quote(q, sizeof(q), what, (size_t)-1));
    s->failed = 1;
    if (s->ev->error != NULL)
        s->ev->error(s->bridge, what, 1);
    return -1;
}

/* ---- outgoing messages ------------------------------------------------------------------- */

static el_ctrl_t *ctrl_new(json_t *msg)
{
    el_ctrl_t *c = NULL;
    size_t n = msg != NULL ? json_dumpb(msg, NULL, 0, JSON_COMPACT) : 0;
    if (n > 0 && (c = malloc(sizeof(*c) + LWS_PRE + n)) != NULL) {
        c->next = NULL;
        c->len = json_dumpb(msg, c->buf + LWS_PRE, n, JSON_COMPACT);
    }
    json_decref(msg);
    return c;
}

static void ctrl_push(ai_session_t *s, el_ctrl_t *c)
{
    c->next = NULL;
    *s->ctrl_tail = c;
    s->ctrl_tail = &c->next;
    s->ctrl_n++;
}

static void ctrl_pop(ai_session_t *s)
{
    el_ctrl_t *c = s->ctrl_head;
    if (c == NULL)
        return;
    s->ctrl_head = c->next;
    if (s->ctrl_head == NULL)
        s->ctrl_tail = &s->ctrl_head;
    s->ctrl_n--;
    free(c);
}

/* Queues a control message (takes msg); a failure is logged, the call goes on. */
static int send_ctrl(ai_session_t *s, json_t *msg, const char *what)
{
    if (s->ctrl_n >= ELEVENLABS_CTRL_MAX) {
        json_decref(msg);
        log_error("elevenlabs.queue_full", "session=%s type=%s", s->id, what);
        return -1;
    }
    el_ctrl_t *c = ctrl_new(msg);
    if (c == NULL) {
        log_error("elevenlabs.build_failed", "session=%s type=%s", s->id, what);
        return -1;
    }
    ctrl_push(s, c);
    want_write(s);
    return 0;
}

static size_t chunk_write(char *dst, const char *b64, size_t len)
{
    static const char head[] = ELEVENLABS_CHUNK_HEAD, tail[] = ELEVENLABS_CHUNK_TAIL;
    memcpy(dst, head, sizeof(head) - 1);
    memcpy(dst + sizeof(head) - 1, b64, len);
    memcpy(dst + sizeof(head) - 1 + len, tail, sizeof(tail) - 1);
    return sizeof(head) - 1 + len + sizeof(tail) - 1;
}

size_t elevenlabs_chunk_build(char *dst, size_t cap, const char *b64, size_t len)
{
    if (len > cap || cap - len < sizeof(ELEVENLABS_CHUNK_HEAD ELEVENLABS_CHUNK_TAIL) - 1 || !ai_b64_valid(b64, len))
        return 0;
    return chunk_write(dst, b64, len);
}

char *elevenlabs_out_peek(ai_session_t *s, size_t *len)
{
    if (s->ctrl_head != NULL) {
        *len = s->ctrl_head->len;
        return s->ctrl_head->buf + LWS_PRE;
    }
    if (s->ready && s->a_count > 0) { /* no caller audio before the formats were checked */
        *len = s->a_len[s->a_head];
        return s->slots[s->a_head] + LWS_PRE;
    }
    *len = 0;
    return NULL;
}

void elevenlabs_out_pop(ai_session_t *s)
{
    if (s->ctrl_head != NULL) {
        ctrl_pop(s);
    } else if (s->a_count > 0) {
        s->a_head = (s->a_head + 1) % ELEVENLABS_AUDIO_SLOTS;
        s->a_count--;
    }
}

/* ---- conversation_initiation_client_data ------------------------------------------------- */

/* Overridable per conversation: agent.prompt.prompt, agent.first_message, agent.language and
 * tts.voice_id (if the agent allows overrides). The audio formats are not among them. The tools
 * are the agent's client tools, configured with the agent under the same names as ours. */
static json_t *initiation(const ai_open_t *p)
{
    json_t *agent = json_object();
    if (agent == NULL)
        return NULL;
    if (p->instructions != NULL && p->instructions[0] != '\0')
        json_object_set_new(agent, "prompt", json_pack("{s:s}", "prompt", p->instructions));
    if (p->greeting != NULL && p->greeting[0] != '\0')
        json_object_set_new(agent, "first_message", json_string(p->greeting));
    json_t *vars = json_pack("{s:s}", "session_id", p->session_id != NULL ? p->session_id : "");
    return json_pack("{s:s, s:{s:o}, s:o}", "type", "conversation_initiation_client_data",
                     "conversation_config_override", "agent", agent, "dynamic_variables",
                     vars != NULL ? vars : json_object());
}

char *elevenlabs_initiation_json(const ai_open_t *p)
{
    json_t *msg = initiation(p);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    return text;
}

/* ---- the session ------------------------------------------------------------------------- */

ai_session_t *elevenlabs_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge)
{
    ai_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ev = ev;
    s->bridge = bridge;
    s->ctrl_tail = &s->ctrl_head;
    s->new_item = 1;
    s->last_interrupt = -1;
    snprintf(s->id, sizeof(s->id), "%s", p->session_id != NULL ? p->session_id : "");
    el_ctrl_t *init = ctrl_new(initiation(p));
    if (init == NULL) {
        elevenlabs_session_free(s);
        return NULL;
    }
    ctrl_push(s, init); /* first on the wire */
    return s;
}

void elevenlabs_session_free(ai_session_t *s)
{
    if (s == NULL)
        return;
    while (s->ctrl_head != NULL)
        ctrl_pop(s);
    free(s->target);
    free(s->rx);
    free(s);
}

static void maybe_free(ai_session_t *s)
{
    if (s->released && s->busy == 0 && s->wsi == NULL && !s->resolving)
        elevenlabs_session_free(s);
}

/* ---- server events ----------------------------------------------------------------------- */

/* The response in flight ends: the next agent audio is a new item. */
static void response_end(ai_session_t *s)
{
    s->new_item = 1;
    if (!s->in_response)
        return;
    s->in_response = 0;
    if (s->ev->response_done != NULL)
        s->ev->response_done(s->bridge);
}

void elevenlabs_idle(ai_session_t *s)
{
    if (live(s))
        response_end(s);
}

static int call_seen(ai_session_t *s, const char *call_id)
{
    for (unsigned i = 0; i < CALL_IDS; i++)
        if (s->calls[i][0] != '\0' && strncmp(s->calls[i], call_id, CALL_ID_MAX - 1) == 0)
            return 1;
    snprintf(s->calls[s->ncalls++ % CALL_IDS], CALL_ID_MAX, "%s", call_id);
    return 0;
}

static void on_metadata(ai_session_t *s, const json_t *e)
{
    if (s->ready)
        return;
    const json_t *m = json_object_get(e, "conversation_initiation_metadata_event");
    const char *out = str(m, "agent_output_audio_format"), *in = str(m, "user_input_audio_format");
    if (strcmp(out, ELEVENLABS_FORMAT) != 0 || strcmp(in, ELEVENLABS_FORMAT) != 0) {
        char what[200];
        snprintf(what, sizeof(what), "format mismatch: agent_output_audio_format=%.40s user_input_audio_format=%.40s",
                 out[0] ? out : "(none)", in[0] ? in : "(none)");
        fail(s, what);
        return;
    }
    log_debug("elevenlabs.ready", "session=%s conversation=%s", s->id, str(m, "conversation_id"));
    s->ready = 1;
    want_write(s); /* caller audio may flow now */
    if (s->ev->ready != NULL)
        s->ev->ready(s->bridge);
}

static void on_audio(ai_session_t *s, const json_t *e)
{
    const json_t *a = json_object_get(e, "audio_event");
    const json_t *d = json_object_get(a, "audio_base_64");
    const char *b64 = json_string_value(d);
    size_t n = json_string_length(d);
    json_t *eid = json_object_get(a, "event_id");
    if (json_is_integer(eid) && json_integer_value(eid) <= s->last_interrupt)
        return; /* late audio of the response the caller interrupted */
    if (!s->ready || b64 == NULL || n == 0)
        return;
    if (!ai_b64_valid(b64, n)) {
        if (!s->bad_audio_logged)
            log_warn("elevenlabs.bad_audio", "session=%s", s->id);
        s->bad_audio_logged = 1;
        return;
    }
    if (s->new_item) {
        s->new_item = 0;
        snprintf(s->item, sizeof(s->item), "el_%u", ++s->item_seq);
    }
    s->in_response = 1;
    if (s->wsi != NULL)
        lws_set_timer_usecs(s->wsi, (lws_usec_t)ELEVENLABS_IDLE_MS * 1000);
    if (s->ev->audio != NULL)
        s->ev->audio(s->bridge, b64, n, s->item);
}

static void on_tool_call(ai_session_t *s, const json_t *e)
{
    const json_t *c = json_object_get(e, "client_tool_call");
    const char *id = str(c, "tool_call_id"), *name = str(c, "tool_name");
    if (id[0] == '\0' || name[0] == '\0' || call_seen(s, id))
        return;
    const json_t *params = json_object_get(c, "parameters");
    char *args = json_is_object(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    response_end(s); /* the agent waits for the result: what it says next is a new response */
    if (live(s) && s->ev->tool_call != NULL)
        s->ev->tool_call(s->bridge, id, name, args != NULL ? args : "{}");
    free(args);
}

static void dispatch(ai_session_t *s, const char *type, const json_t *e)
{
    const ai_events_t *ev = s->ev;
    if (strcmp(type, "audio") == 0) {
        on_audio(s, e);
    } else if (strcmp(type, "ping") == 0) {
        json_t *eid = json_object_get(json_object_get(e, "ping_event"), "event_id");
        send_ctrl(s, json_pack("{s:s, s:O}", "type", "pong", "event_id", eid != NULL ? eid : json_null()), "pong");
    } else if (strcmp(type, "interruption") == 0) {
        json_t *eid = json_object_get(json_object_get(e, "interruption_event"), "event_id");
        if (json_is_integer(eid) && json_integer_value(eid) > s->last_interrupt)
            s->last_interrupt = json_integer_value(eid);
        s->new_item = 1;
        if (ev->speech_started != NULL)
            ev->speech_started(s->bridge); /* the bridge clears Twilio's audio */
        if (live(s))
            response_end(s);
    } else if (strcmp(type, "user_transcript") == 0) {
        const char *t = str(json_object_get(e, "user_transcription_event"), "user_transcript");
        response_end(s);
        if (live(s) && ev->caller_active != NULL)
            ev->caller_active(s->bridge);
        if (live(s) && ev->transcript != NULL)
            ev->transcript(s->bridge, AI_ROLE_CALLER, t);
    } else if (strcmp(type, "agent_response") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->bridge, AI_ROLE_AGENT, str(json_object_get(e, "agent_response_event"), "agent_response"));
    } else if (strcmp(type, "client_tool_call") == 0) {
        on_tool_call(s, e);
    } else if (strcmp(type, "conversation_initiation_metadata") == 0) {
        on_metadata(s, e);
    } else if (strcmp(type, "error") == 0) {
        char q[256];
        const char *msg = str(e, "message");
        log_warn("elevenlabs.error", "session=%s message=%s", s->id, log_quote(q, sizeof(q), msg, (size_t)-1));
        if (!s->ready)
            fail(s, msg[0] != '\0' ? msg : "refused");
        else if (ev->error != NULL)
            ev->error(s->bridge, msg[0] != '\0' ? msg : "error", 0);
    }
}

int elevenlabs_on_message(ai_session_t *s, const char *msg, size_t len)
{
    if (!live(s))
        return 0;
    json_error_t jerr;
    json_t *e = json_loadb(msg, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (type == NULL) {
        char q[128];
        log_warn("elevenlabs.bad_message", "session=%s error=%s", s->id,
                 log_quote(q, sizeof(q), e == NULL ? jerr.text : "no type", (size_t)-1));
    } else {
        dispatch(s, type, e);
    }
    json_decref(e);
    return s->failed ? -1 : 0;
}

int elevenlabs_rx_feed(ai_session_t *s, const char *in, size_t len, int final)
{
    if (final && s->rx_len == 0)
        return elevenlabs_on_message(s, in, len);
    if (len > ELEVENLABS_RX_MAX - s->rx_len) {
        s->rx_len = 0;
        return fail(s, "server message too large");
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap > 0 ? s->rx_cap * 2 : RX_MIN_ALLOC;
        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > ELEVENLABS_RX_MAX)
            cap = ELEVENLABS_RX_MAX;
        char *rx = realloc(s->rx, cap);
        if (rx == NULL) {
            s->rx_len = 0;
            return fail(s, "out of memory");
        }
        s->rx = rx;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (!final)
        return 0;
    size_t n = s->rx_len;
    s->rx_len = 0;
    return elevenlabs_on_message(s, s->rx, n);
}

/* ---- the provider's entry points --------------------------------------------------------- */

static void el_send_audio(ai_session_t *s, const char *b64, size_t len)
{
    if (!live(s) || len == 0)
        return;
    if (!ai_b64_valid(b64, len)) {
        if (!s->bad_audio_logged)
            log_warn("elevenlabs.bad_audio", "session=%s direction=in", s->id);
        s->bad_audio_logged = 1;
        return;
    }
    while (len > 0) {
        size_t n = len > ELEVENLABS_FRAME_B64 ? ELEVENLABS_FRAME_B64 : len;
        if (s->a_count == ELEVENLABS_AUDIO_SLOTS) {
            s->a_head = (s->a_head + 1) % ELEVENLABS_AUDIO_SLOTS;
            s->a_count--;
            s->dropped++;
        }
        unsigned i = (s->a_head + s->a_count) % ELEVENLABS_AUDIO_SLOTS;
        s->a_len[i] = (uint16_t)chunk_write(s->slots[i] + LWS_PRE, b64, n);
        s->a_count++;
        b64 += n;
        len -= n;
    }
    if (s->ready)
        want_write(s);
}

/* The server detected the barge-in itself and stopped the response (its interruption event is
 * what told the bridge): there is nothing to cancel or truncate. */
static void el_interrupt(ai_session_t *s, const char *item_id, unsigned audio_end_ms)
{
    (void)item_id;
    (void)audio_end_ms;
    if (live(s))
        s->new_item = 1;
}

static void el_tool_result(ai_session_t *s, const char *call_id, const char *output_json)
{
    if (!live(s) || call_id == NULL)
        return;
    send_ctrl(s,
              json_pack("{s:s, s:s, s:s, s:b}", "type", "client_tool_result", "tool_call_id", call_id, "result",
                        output_json != NULL ? output_json : "{}", "is_error", 0),
              "client_tool_result");
}

/* contextual_update: non-interrupting information the agent takes into account. */
static void el_say(ai_session_t *s, const char *instructions)
{
    if (!live(s) || instructions == NULL || instructions[0] == '\0')
        return;
    send_ctrl(s, json_pack("{s:s, s:s}", "type", "contextual_update", "text", instructions), "contextual_update");
}

static unsigned long el_dropped(const ai_session_t *s)
{
    return s->dropped;
}

static void begin_close(ai_session_t *s)
{
    if (s->closing || s->wsi == NULL)
        return;
    s->closing = 1;
    lws_set_timer_usecs(s->wsi, LWS_SET_TIMER_USEC_CANCEL);
    if (s->established) {
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
        lws_callback_on_writable(s->wsi);
    } else {
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static void el_close(ai_session_t *s)
{
    if (s == NULL || s->released)
        return;
    s->released = 1;
    if (s->busy > 0)
        return;
    if (s->resolving) {
        uv_cancel((uv_req_t *)&s->dns);
        return;
    }
    if (s->wsi == NULL) {
        elevenlabs_session_free(s);
        return;
    }
    begin_close(s);
}

/* ---- the connection ---------------------------------------------------------------------- */

int elevenlabs_target_parse(const char *url, const char *agent_id, elevenlabs_target_t *t)
{
    openai_target_t o; /* the same URL rules as OPENAI_REALTIME_URL */
    if (openai_target_parse(url, NULL, &o) != 0)
        return -1;
    memset(t, 0, sizeof(*t));
    memcpy(t->host, o.host, sizeof(t->host));
    t->port = o.port;
    t->tls = o.tls;
    size_t at = strlen(o.path);
    memcpy(t->path, o.path, at + 1);
    if (agent_id == NULL || agent_id[0] == '\0')
        return 0;
    char *query = strchr(t->path, '?');
    const char *sep = query == NULL ? "?" : query[1] == '\0' ? "" : "&";
    int n = snprintf(t->path + at, sizeof(t->path) - at, "%sagent_id=", sep);
    if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
        return -1;
    for (const unsigned char *c = (const unsigned char *)agent_id; *c != '\0'; c++) {
        int unreserved = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                         *c == '-' || *c == '.' || *c == '_' || *c == '~';
        n = unreserved ? snprintf(t->path + at, sizeof(t->path) - at, "%c", *c)
                       : snprintf(t->path + at, sizeof(t->path) - at, "%%%02X", *c);
        if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
            return -1;
    }
    return 0;
}

static int start_connect(ai_session_t *s, const char *address)
{
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = s->w->lws;
    i.address = address;
    i.port = s->target->port;
    i.ssl_connection = s->target->tls ? LCCSCF_USE_SSL : 0;
    i.path = s->target->path;
    i.host = s->target->host;
    i.ietf_version_or_minus_one = -1;
    i.local_protocol_name = ELEVENLABS_LWS_PROTOCOL_NAME;
    i.alpn = "http/1.1";
    i.opaque_user_data = s;
    i.pwsi = &s->wsi;
    if (s->w->lws == NULL)
        return -1;
    s->busy++;
    struct lws *wsi = lws_client_connect_via_info(&i);
    s->busy--;
    free(s->target);
    s->target = NULL;
    if (wsi == NULL) {
        s->wsi = NULL;
        return -1;
    }
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ai_session_t *s = req->data;
    char ip[64] = "";
    s->resolving = 0;
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
    s->busy++;
    if (!s->released) {
        char what[320];
        if (ip[0] == '\0') {
            snprintf(what, sizeof(what), "cannot resolve %s: %s", s->target->host,
                     status != 0 ? uv_strerror(status) : "no address");
            fail(s, what);
        } else if (start_connect(s, ip) != 0) {
            snprintf(what, sizeof(what), "cannot connect to %s", ip);
            fail(s, what);
        }
    }
    s->busy--;
    maybe_free(s);
}

static ai_session_t *el_open(worker_t *w, const ai_open_t *params, const ai_events_t *ev, void *bridge)
{
    const config_t *cfg = &w->app->cfg;
    ai_open_t p = *params;
    if (p.instructions == NULL)
        p.instructions = cfg->ai_instructions;
    const char *why = NULL;
    elevenlabs_target_t *t = NULL;
    ai_session_t *s = NULL;
    if (cfg->elevenlabs_agent_id == NULL || cfg->elevenlabs_agent_id[0] == '\0') {
        why = "ELEVENLABS_AGENT_ID is not set";
        goto fail;
    }
    if ((t = malloc(sizeof(*t))) == NULL ||
        elevenlabs_target_parse(cfg->elevenlabs_convai_url, cfg->elevenlabs_agent_id, t) != 0) {
        why = t == NULL ? "out of memory" : "bad ELEVENLABS_CONVAI_URL";
        free(t);
        goto fail;
    }
    if ((s = elevenlabs_session_new(&p, ev, bridge)) == NULL) {
        why = "out of memory";
        free(t);
        goto fail;
    }
    s->w = w;
    s->api_key = cfg->elevenlabs_api_key;
    s->target = t;
    unsigned char addr[16];
    if (uv_inet_pton(AF_INET, t->host, addr) == 0 || uv_inet_pton(AF_INET6, t->host, addr) == 0) {
        char host[sizeof(t->host)];
        memcpy(host, t->host, sizeof(host));
        if (start_connect(s, host) != 0) {
            why = "cannot connect";
            goto fail;
        }
    } else {
        /* no async DNS in this lws: resolve on libuv's thread pool (see server/ai_openai.c) */
        struct addrinfo hints;
        char port[8];
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof(port), "%d", t->port);
        s->dns.data = s;
        if (uv_getaddrinfo(&w->loop, &s->dns, on_resolved, t->host, port, &hints) != 0) {
            why = "cannot resolve the host";
            goto fail;
        }
        s->resolving = 1;
    }
    log_debug("elevenlabs.open", "session=%s", s->id);
    return s;
fail:
    log_error("elevenlabs.open_failed", "session=%s what=\"%s\"", params->session_id != NULL ? params->session_id : "",
              why);
    elevenlabs_session_free(s);
    return NULL; /* the bridge hands the caller to a person */
}

/* ---- lws callbacks ----------------------------------------------------------------------- */

static int add_headers(ai_session_t *s, struct lws *wsi, unsigned char **p, unsigned char *end)
{
    const char *key = s->api_key;
    if (key == NULL || key[0] == '\0')
        return 0; /* a public agent, or a signed URL */
    size_t n = strlen(key);
    if (n >= KEY_MAX || lws_add_http_header_by_name(
                            wsi, (const unsigned char *)"xi-api-key:", (const unsigned char *)key, (int)n, p, end) != 0)
        return -1;
    return 0;
}

static int on_writeable(ai_session_t *s, struct lws *wsi)
{
    if (s->closing) {
        /* the clean-close workaround of server/ai_openai.c (Debian's lws 4.1.6 _DEBUG build) */
        if (!s->close_sent) {
            s->close_sent = 1;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
        }
        return 0;
    }
    size_t len;
    char *m = elevenlabs_out_peek(s, &len);
    if (m == NULL)
        return 0;
    int n = lws_write(wsi, (unsigned char *)m, len, LWS_WRITE_TEXT);
    elevenlabs_out_pop(s);
    if (n < (int)len)
        return -1;
    if (elevenlabs_out_peek(s, &len) != NULL)
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_gone(ai_session_t *s, struct lws *wsi, const char *what)
{
    lws_set_opaque_user_data(wsi, NULL);
    s->wsi = NULL;
    s->established = 0;
    if (!live(s)) {
        log_debug("elevenlabs.closed", "session=%s", s->id);
        return;
    }
    fail(s, what);
}

int ai_elevenlabs_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    ai_session_t *s = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
    if (s == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    char what[256];
    int rc = 0, gone = 0;
    if (s->wsi == NULL)
        s->wsi = wsi;
    s->busy++;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        rc = add_headers(s, wsi, (unsigned char **)in, *(unsigned char **)in + len);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->established = 1;
        log_debug("elevenlabs.connected", "session=%s", s->id);
        lws_callback_on_writable(wsi); /* conversation_initiation_client_data is waiting */
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        elevenlabs_rx_feed(s, in, len, lws_is_final_fragment(wsi));
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        rc = on_writeable(s, wsi);
        break;
    case LWS_CALLBACK_TIMER:
        if (!s->closing)
            elevenlabs_idle(s);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *b = in;
            s->close_code = b[0] << 8 | b[1];
            snprintf(s->close_reason, sizeof(s->close_reason), "%.*s", (int)(len - 2), (const char *)in + 2);
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        unsigned status = lws_http_client_http_response(wsi);
        int n = snprintf(what, sizeof(what), "connection failed: %.*s", in != NULL ? (int)len : 7,
                         in != NULL ? (const char *)in : "unknown");
        if (status != 0 && n > 0 && (size_t)n < sizeof(what))
            snprintf(what + n, sizeof(what) - (size_t)n, " (HTTP %u)", status);
        on_gone(s, wsi, what);
        gone = 1;
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (s->close_code != 0)
            snprintf(what, sizeof(what), "connection closed by the server: %d %s", s->close_code, s->close_reason);
        else
            snprintf(what, sizeof(what), "connection closed");
        on_gone(s, wsi, what);
        gone = 1;
        break;
    default:
        s->busy--;
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    s->busy--;
    if (gone || s->wsi == NULL) {
        maybe_free(s);
        return 0;
    }
    if (rc != 0)
        return -1;
    if (!live(s))
        begin_close(s);
    return 0;
}

const ai_provider_t ai_elevenlabs_provider = {
    .name = "elevenlabs",
    .open = el_open,
    .send_audio = el_send_audio,
    .interrupt = el_interrupt,
    .tool_result = el_tool_result,
    .say = el_say,
    .dropped = el_dropped,
    .close = el_close,
};
