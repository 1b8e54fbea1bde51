#include "server/ai_openai.h"
#include "server/log.h"
#include "server/worker.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One audio slot: lws headroom, then a whole input_audio_buffer.append message. */
#define SLOT_SIZE        ((LWS_PRE + OPENAI_APPEND_MAX + 15) & ~(size_t)15)
#define DEFER_MAX        8 /* response.create waiting for the current response to end */
#define CALL_IDS         8 /* tool calls already reported, so each is reported once */
#define CALL_ID_MAX      64
#define CLOSE_GRACE_S    2 /* a closing connection that does not finish its handshake is killed */
#define RX_MIN_ALLOC     (64 * 1024)
#define AUTH_MAX         512
#define TRANSCRIBE_MODEL "whisper-1"
#define GREETING_GENERIC "Greet the caller briefly and ask how you can help."

_Static_assert(OPENAI_FRAME_B64 % 4 == 0, "frames are split on whole base64 quanta");

typedef struct openai_ctrl {
    struct openai_ctrl *next;
    size_t len;
    char buf[]; /* LWS_PRE headroom, then the message */
} openai_ctrl_t;

typedef struct openai_list {
    openai_ctrl_t *head, **tail;
    unsigned n;
} openai_list_t;

struct ai_session {
    worker_t *w;
    struct lws *wsi; /* NULL before the connect and once lws has let the connection go */
    const ai_events_t *ev;
    void *bridge;
    const char *api_key;     /* borrowed from the config, which outlives every worker */
    openai_target_t *target; /* only while the host name is being resolved */
    uv_getaddrinfo_t dns;
    int beta;
    /* > 0 while code that may call the bridge (or be called back by lws) runs: close() from in
     * there only marks the session, and whoever holds it finishes the job on the way out */
    int busy;
    unsigned resolving : 1, established : 1, ready : 1, in_response : 1, response_requested : 1, cancel_sent : 1,
        failed : 1, released : 1, closing : 1, close_sent : 1, bad_audio_logged : 1;
    char *instructions;      /* the session's, repeated in response-level instructions */
    openai_ctrl_t *greeting; /* response.create, sent once the session is configured */
    openai_list_t ctrl;      /* control messages: sent before any audio */
    openai_list_t deferred;  /* response.create waiting for the response in flight to end */
    unsigned a_head, a_count;
    unsigned long dropped;
    char *rx; /* a message arriving in pieces; its capacity is kept for the next one */
    size_t rx_len, rx_cap;
    char calls[CALL_IDS][CALL_ID_MAX];
    unsigned ncalls;
    int close_code;
    char close_reason[96];
    char id[48]; /* the call's session id, for logs */
    uint16_t a_len[OPENAI_AUDIO_SLOTS];
    _Alignas(16) char slots[OPENAI_AUDIO_SLOTS][SLOT_SIZE];
};

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

static int b64_ok(const char *b64, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)b64[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '='))
            return 0;
    }
    return 1;
}

static void want_write(ai_session_t *s)
{
    if (s->wsi != NULL && s->established)
        lws_callback_on_writable(s->wsi);
}

/* Reports a failure the session does not survive; once, and never after close(). */
static int fail(ai_session_t *s, const char *what)
{
    if (!live(s))
        return -1;
    char q[256];
    log_warn("openai.failed", "session=%s what=%s", s->id, log_quote(q, sizeof(q), what, (size_t)-1));
    s->failed = 1;
    if (s->ev->error != NULL)
        s->ev->error(s->bridge, what, 1);
    return -1;
}

/* ---- outgoing messages ------------------------------------------------------------------- */

static openai_ctrl_t *ctrl_new(json_t *msg)
{
    openai_ctrl_t *c = NULL;
    size_t n = msg != NULL ? json_dumpb(msg, NULL, 0, JSON_COMPACT) : 0;
    if (n > 0 && (c = malloc(sizeof(*c) + LWS_PRE + n)) != NULL) {
        c->next = NULL;
        c->len = json_dumpb(msg, c->buf + LWS_PRE, n, JSON_COMPACT);
    }
    json_decref(msg);
    return c;
}

static void list_init(openai_list_t *l)
{
    l->head = NULL;
    l->tail = &l->head;
    l->n = 0;
}

static void list_push(openai_list_t *l, openai_ctrl_t *c)
{
    c->next = NULL;
    *l->tail = c;
    l->tail = &c->next;
    l->n++;
}

static openai_ctrl_t *list_shift(openai_list_t *l)
{
    openai_ctrl_t *c = l->head;
    if (c != NULL) {
        l->head = c->next;
        if (l->head == NULL)
            l->tail = &l->head;
        l->n--;
    }
    return c;
}

static void list_free(openai_list_t *l)
{
    openai_ctrl_t *c;
    while ((c = list_shift(l)) != NULL)
        free(c);
}

/* Queues a control message (takes msg). Failing to build one is a bug or OOM, not a reason to
 * end the call: it is logged and the call goes on without it. */
static int send_ctrl(ai_session_t *s, json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    char what[64];
    snprintf(what, sizeof(what), "%s", type != NULL ? type : "?");
    if (s->ctrl.n >= OPENAI_CTRL_MAX) {
        json_decref(msg);
        log_error("openai.queue_full", "session=%s type=%s", s->id, what);
        return -1;
    }
    openai_ctrl_t *c = ctrl_new(msg);
    if (c == NULL) {
        log_error("openai.build_failed", "session=%s type=%s", s->id, what);
        return -1;
    }
    list_push(&s->ctrl, c);
    want_write(s);
    return 0;
}

/* The server allows one response at a time: a response.create while one is in flight (or
 * asked for) waits for its response.done. */
static void send_response_create(ai_session_t *s, openai_ctrl_t *c)
{
    if (c == NULL)
        return;
    if (!s->in_response && !s->response_requested && s->ctrl.n < OPENAI_CTRL_MAX) {
        list_push(&s->ctrl, c);
        s->response_requested = 1;
        want_write(s);
    } else if (s->deferred.n < DEFER_MAX) {
        list_push(&s->deferred, c);
    } else {
        log_error("openai.queue_full", "session=%s type=response.create", s->id);
        free(c);
    }
}

static void flush_deferred(ai_session_t *s)
{
    if (!s->in_response && !s->response_requested && s->deferred.head != NULL)
        send_response_create(s, list_shift(&s->deferred));
}

/* response.create whose instructions are the session's followed by this turn's directive:
 * response-level instructions replace the session's for that response, and the agent must
 * keep its persona and language when it greets or says goodbye. */
static openai_ctrl_t *response_create(const ai_session_t *s, const char *directive)
{
    if (directive == NULL || directive[0] == '\0')
        return ctrl_new(json_pack("{s:s}", "type", "response.create"));
    json_t *text = s->instructions != NULL && s->instructions[0] != '\0'
                       ? json_sprintf("%s\n\n%s", s->instructions, directive)
                       : json_string(directive);
    if (text == NULL) { /* not UTF-8 */
        log_error("openai.build_failed", "session=%s type=response.create", s->id);
        return NULL;
    }
    return ctrl_new(json_pack("{s:s, s:{s:o}}", "type", "response.create", "response", "instructions", text));
}

/* The one copy of the caller's base64 on its way out; the caller checked it and the room. */
static size_t append_write(char *dst, const char *b64, size_t len)
{
    static const char head[] = OPENAI_APPEND_HEAD, tail[] = OPENAI_APPEND_TAIL;
    memcpy(dst, head, sizeof(head) - 1);
    memcpy(dst + sizeof(head) - 1, b64, len);
    memcpy(dst + sizeof(head) - 1 + len, tail, sizeof(tail) - 1);
    return sizeof(head) - 1 + len + sizeof(tail) - 1;
}

size_t openai_append_build(char *dst, size_t cap, const char *b64, size_t len)
{
    if (len > cap || cap - len < sizeof(OPENAI_APPEND_HEAD OPENAI_APPEND_TAIL) - 1 || !b64_ok(b64, len))
        return 0;
    return append_write(dst, b64, len);
}

char *openai_out_peek(ai_session_t *s, size_t *len)
{
    if (s->ctrl.head != NULL) {
        *len = s->ctrl.head->len;
        return s->ctrl.head->buf + LWS_PRE;
    }
    if (s->a_count > 0) {
        *len = s->a_len[s->a_head];
        return s->slots[s->a_head] + LWS_PRE;
    }
    *len = 0;
    return NULL;
}

void openai_out_pop(ai_session_t *s)
{
    if (s->ctrl.head != NULL) {
        free(list_shift(&s->ctrl));
    } else if (s->a_count > 0) {
        s->a_head = (s->a_head + 1) % OPENAI_AUDIO_SLOTS;
        s->a_count--;
    }
}

int openai_response_in_flight(const ai_session_t *s)
{
    return s->in_response;
}

/* ---- session.update ---------------------------------------------------------------------- */

static json_t *tools_json(const ai_open_t *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < p->ntools; i++) {
        const ai_tool_t *t = &p->tools[i];
        json_t *params = t->parameters_json != NULL ? json_loads(t->parameters_json, 0, NULL)
                                                    : json_pack("{s:s, s:{}}", "type", "object", "properties");
        if (t->name == NULL || !json_is_object(params)) {
            log_error("openai.bad_tool", "session=%s tool=%s", p->session_id != NULL ? p->session_id : "",
                      t->name != NULL ? t->name : "(null)");
            json_decref(params);
            continue;
        }
        json_t *tool = json_pack("{s:s, s:s, s:o}", "type", "function", "name", t->name, "parameters", params);
        if (tool != NULL && t->description != NULL)
            json_object_set_new(tool, "description", json_string(t->description));
        if (tool != NULL)
            json_array_append_new(arr, tool);
    }
    return arr;
}

/*
 * GA: session.type "realtime", audio.input/output.format {"type":"audio/pcmu"}, the voice under
 * audio.output, transcription and turn_detection under audio.input.
 * Beta: flat fields, "g711_ulaw" formats, input_audio_transcription, modalities.
 */
static json_t *session_update(const ai_open_t *p, int beta)
{
    json_t *sess;
    if (beta) {
        sess = json_pack("{s:[ss], s:s, s:s, s:{s:s}, s:{s:s}}", "modalities", "audio", "text", "input_audio_format",
                         "g711_ulaw", "output_audio_format", "g711_ulaw", "turn_detection", "type", "server_vad",
                         "input_audio_transcription", "model", TRANSCRIBE_MODEL);
        if (sess != NULL && p->voice != NULL && p->voice[0] != '\0')
            json_object_set_new(sess, "voice", json_string(p->voice));
    } else {
        json_t *out = json_pack("{s:{s:s}}", "format", "type", "audio/pcmu");
        if (out != NULL && p->voice != NULL && p->voice[0] != '\0')
            json_object_set_new(out, "voice", json_string(p->voice));
        sess = json_pack("{s:s, s:{s:{s:{s:s}, s:{s:s}, s:{s:s}}, s:o}}", "type", "realtime", "audio", "input",
                         "format", "type", "audio/pcmu", "turn_detection", "type", "server_vad", "transcription",
                         "model", TRANSCRIBE_MODEL, "output", out);
    }
    if (sess == NULL)
        return NULL;
    if (p->instructions != NULL && p->instructions[0] != '\0')
        json_object_set_new(sess, "instructions", json_string(p->instructions));
    json_object_set_new(sess, "tools", tools_json(p));
    json_object_set_new(sess, "tool_choice", json_string("auto"));
    return json_pack("{s:s, s:o}", "type", "session.update", "session", sess);
}

char *openai_session_update_json(const ai_open_t *p, int beta)
{
    json_t *msg = session_update(p, beta);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    return text;
}

/* ---- the session ------------------------------------------------------------------------- */

ai_session_t *openai_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge, int beta)
{
    ai_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ev = ev;
    s->bridge = bridge;
    s->beta = beta;
    list_init(&s->ctrl);
    list_init(&s->deferred);
    snprintf(s->id, sizeof(s->id), "%s", p->session_id != NULL ? p->session_id : "");
    if (p->instructions != NULL && (s->instructions = strdup(p->instructions)) == NULL)
        goto fail;
    openai_ctrl_t *update = ctrl_new(session_update(p, beta));
    if (update == NULL)
        goto fail;
    list_push(&s->ctrl, update); /* first on the wire: nothing else makes sense before it */
    char directive[1024];
    if (p->greeting != NULL && p->greeting[0] != '\0')
        snprintf(directive, sizeof(directive), "Greet the caller by saying: %s", p->greeting);
    else
        snprintf(directive, sizeof(directive), "%s", GREETING_GENERIC);
    if ((s->greeting = response_create(s, directive)) == NULL)
        goto fail;
    return s;
fail:
    openai_session_free(s);
    return NULL;
}

void openai_session_free(ai_session_t *s)
{
    if (s == NULL)
        return;
    list_free(&s->ctrl);
    list_free(&s->deferred);
    free(s->greeting);
    free(s->instructions);
    free(s->target);
    free(s->rx);
    free(s);
}

/* The session goes once the bridge has let it go and nothing else holds it. */
static void maybe_free(ai_session_t *s)
{
    if (s->released && s->busy == 0 && s->wsi == NULL && !s->resolving)
        openai_session_free(s);
}

/* ---- server events ----------------------------------------------------------------------- */

static int call_seen(ai_session_t *s, const char *call_id)
{
    for (unsigned i = 0; i < CALL_IDS; i++)
        if (strncmp(s->calls[i], call_id, CALL_ID_MAX - 1) == 0 && s->calls[i][0] != '\0')
            return 1;
    snprintf(s->calls[s->ncalls++ % CALL_IDS], CALL_ID_MAX, "%s", call_id);
    return 0;
}

static int args_ok(const char *args)
{
    json_t *a = json_loads(args, 0, NULL);
    int ok = json_is_object(a);
    json_decref(a);
    return ok;
}

static void tool_call(ai_session_t *s, const char *call_id, const char *name, const char *args)
{
    if (call_id[0] == '\0' || name[0] == '\0' || call_seen(s, call_id))
        return;
    if (s->ev->tool_call != NULL)
        s->ev->tool_call(s->bridge, call_id, name, args[0] != '\0' ? args : "{}");
}

static void on_error_event(ai_session_t *s, const json_t *e)
{
    const json_t *err = json_object_get(e, "error");
    const char *code = str(err, "code"), *msg = str(err, "message");
    char q[256];
    /* a response that ended between our cancel and its arrival: nothing went wrong */
    if (strcmp(code, "response_cancel_not_active") == 0) {
        log_debug("openai.cancel_late", "session=%s", s->id);
        return;
    }
    /* whatever we asked for was refused, quite possibly a response.create: don't wait for it */
    s->response_requested = 0;
    if (!s->ready) {
        /* session.update refused: the formats are not ours, so no audio would make sense */
        char what[300];
        snprintf(what, sizeof(what), "session refused: %s", msg[0] != '\0' ? msg : code);
        fail(s, what);
        return;
    }
    log_warn("openai.error", "session=%s code=%s message=%s", s->id, code[0] != '\0' ? code : "-",
             log_quote(q, sizeof(q), msg, (size_t)-1));
    if (s->ev->error != NULL)
        s->ev->error(s->bridge, msg[0] != '\0' ? msg : code, 0);
    if (live(s))
        flush_deferred(s);
}

static void on_response_done(ai_session_t *s, const json_t *e)
{
    s->in_response = 0;
    s->response_requested = 0;
    s->cancel_sent = 0;
    const json_t *resp = json_object_get(e, "response");
    if (strcmp(str(resp, "status"), "failed") == 0) {
        const json_t *err = json_object_get(json_object_get(resp, "status_details"), "error");
        const char *why = str(err, "code")[0] != '\0' ? str(err, "code") : str(err, "type");
        char what[160];
        snprintf(what, sizeof(what), "response failed: %s", why[0] != '\0' ? why : "unknown");
        log_warn("openai.response_failed", "session=%s reason=%s", s->id, why[0] != '\0' ? why : "unknown");
        if (s->ev->error != NULL)
            s->ev->error(s->bridge, what, 0);
        if (!live(s))
            return;
    }
    /* what waited for this response goes first, so anything the bridge asks for now queues behind */
    flush_deferred(s);
    if (s->ev->response_done != NULL)
        s->ev->response_done(s->bridge);
}

static void dispatch(ai_session_t *s, const char *type, const json_t *e)
{
    const ai_events_t *ev = s->ev;
    /* the hot path first: about fifty of these a second while the agent talks */
    if (strcmp(type, "response.output_audio.delta") == 0 || strcmp(type, "response.audio.delta") == 0) {
        const json_t *d = json_object_get(e, "delta");
        const char *b64 = json_string_value(d);
        size_t n = json_string_length(d);
        /* the bridge puts this text into Twilio's JSON as it is */
        if (b64 == NULL || !b64_ok(b64, n)) {
            if (!s->bad_audio_logged)
                log_warn("openai.bad_audio", "session=%s", s->id);
            s->bad_audio_logged = 1;
        } else if (n > 0 && ev->audio != NULL) {
            ev->audio(s->bridge, b64, n, str(e, "item_id"));
        }
    } else if (strcmp(type, "input_audio_buffer.speech_started") == 0) {
        if (ev->speech_started != NULL)
            ev->speech_started(s->bridge);
    } else if (strcmp(type, "response.created") == 0) {
        s->in_response = 1;
        s->response_requested = 0;
        s->cancel_sent = 0;
    } else if (strcmp(type, "response.done") == 0) {
        on_response_done(s, e);
    } else if (strcmp(type, "response.output_audio_transcript.done") == 0 ||
               strcmp(type, "response.audio_transcript.done") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->bridge, AI_ROLE_AGENT, str(e, "transcript"));
    } else if (strcmp(type, "conversation.item.input_audio_transcription.completed") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->bridge, AI_ROLE_CALLER, str(e, "transcript"));
    } else if (strcmp(type, "response.function_call_arguments.done") == 0) {
        /* GA names the function here; the beta event does not, so there the item reports it.
         * Arguments of an interrupted call may be cut short: then the item decides too. */
        const char *args = str(e, "arguments");
        if (str(e, "name")[0] != '\0' && args_ok(args))
            tool_call(s, str(e, "call_id"), str(e, "name"), args);
    } else if (strcmp(type, "response.output_item.done") == 0) {
        const json_t *item = json_object_get(e, "item");
        if (strcmp(str(item, "type"), "function_call") != 0)
            return;
        if (strcmp(str(item, "status"), "incomplete") == 0) {
            log_debug("openai.tool_call_incomplete", "session=%s call=%s", s->id, str(item, "call_id"));
            return;
        }
        tool_call(s, str(item, "call_id"), str(item, "name"), str(item, "arguments"));
    } else if (strcmp(type, "session.updated") == 0) {
        if (s->ready)
            return;
        s->ready = 1;
        send_response_create(s, s->greeting); /* the agent speaks first */
        s->greeting = NULL;
        if (ev->ready != NULL)
            ev->ready(s->bridge);
    } else if (strcmp(type, "error") == 0) {
        on_error_event(s, e);
    }
}

int openai_on_message(ai_session_t *s, const char *msg, size_t len)
{
    if (!live(s))
        return 0;
    json_error_t jerr;
    json_t *e = json_loadb(msg, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (type == NULL) {
        char q[128];
        log_warn("openai.bad_message", "session=%s error=%s", s->id, log_quote(q, sizeof(q), jerr.text, (size_t)-1));
    } else {
        dispatch(s, type, e);
    }
    json_decref(e);
    return s->failed ? -1 : 0;
}

int openai_rx_feed(ai_session_t *s, const char *in, size_t len, int final)
{
    if (final && s->rx_len == 0) /* the usual case: parse where it lies */
        return openai_on_message(s, in, len);
    if (len > OPENAI_RX_MAX - s->rx_len) {
        s->rx_len = 0;
        return fail(s, "server message too large");
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap > 0 ? s->rx_cap * 2 : RX_MIN_ALLOC;
        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > OPENAI_RX_MAX)
            cap = OPENAI_RX_MAX;
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
    return openai_on_message(s, s->rx, n);
}

/* ---- the provider's entry points --------------------------------------------------------- */

static void openai_send_audio(ai_session_t *s, const char *b64, size_t len)
{
    if (!live(s) || len == 0)
        return;
    if (!b64_ok(b64, len)) {
        if (!s->bad_audio_logged)
            log_warn("openai.bad_audio", "session=%s direction=in", s->id);
        s->bad_audio_logged = 1;
        return;
    }
    /* bigger frames are cut on whole base64 quanta: each piece still decodes on its own */
    while (len > 0) {
        size_t n = len > OPENAI_FRAME_B64 ? OPENAI_FRAME_B64 : len;
        if (s->a_count == OPENAI_AUDIO_SLOTS) {
            s->a_head = (s->a_head + 1) % OPENAI_AUDIO_SLOTS;
            s->a_count--;
            s->dropped++;
        }
        unsigned i = (s->a_head + s->a_count) % OPENAI_AUDIO_SLOTS;
        s->a_len[i] = (uint16_t)append_write(s->slots[i] + LWS_PRE, b64, n);
        s->a_count++;
        b64 += n;
        len -= n;
    }
    want_write(s);
}

static void openai_interrupt(ai_session_t *s, const char *item_id, unsigned audio_end_ms)
{
    if (!live(s))
        return;
    /* cancel first: the item must stop growing before it is cut */
    if (s->in_response && !s->cancel_sent) {
        s->cancel_sent = 1;
        send_ctrl(s, json_pack("{s:s}", "type", "response.cancel"));
    }
    if (item_id != NULL && item_id[0] != '\0')
        send_ctrl(s, json_pack("{s:s, s:s, s:i, s:I}", "type", "conversation.item.truncate", "item_id", item_id,
                               "content_index", 0, "audio_end_ms", (json_int_t)audio_end_ms));
}

static void openai_tool_result(ai_session_t *s, const char *call_id, const char *output_json)
{
    if (!live(s) || call_id == NULL)
        return;
    send_ctrl(s, json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "conversation.item.create", "item", "type",
                           "function_call_output", "call_id", call_id, "output",
                           output_json != NULL ? output_json : "{}"));
    send_response_create(s, response_create(s, NULL));
}

static void openai_say(ai_session_t *s, const char *instructions)
{
    if (!live(s))
        return;
    send_response_create(s, response_create(s, instructions));
}

static unsigned long openai_dropped(const ai_session_t *s)
{
    return s->dropped;
}

/* Ends the connection; lws reports the end through our callback, never from inside this call. */
static void begin_close(ai_session_t *s)
{
    if (s->closing || s->wsi == NULL)
        return;
    s->closing = 1;
    if (s->established) {
        /* a close frame from the next WRITEABLE; the timeout is for a peer that never answers */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
        lws_callback_on_writable(s->wsi);
    } else {
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static void openai_close(ai_session_t *s)
{
    if (s == NULL || s->released)
        return;
    s->released = 1;
    if (s->busy > 0)
        return; /* the lws callback or resolver we are inside of ends it on the way out */
    if (s->resolving) {
        uv_cancel((uv_req_t *)&s->dns); /* its callback runs either way and frees */
        return;
    }
    if (s->wsi == NULL) {
        openai_session_free(s);
        return;
    }
    begin_close(s);
}

/* ---- the connection ---------------------------------------------------------------------- */

static int query_has_model(const char *q)
{
    while (q != NULL && *q != '\0') {
        if (strncmp(q, "model=", 6) == 0 || strcmp(q, "model") == 0 || strncmp(q, "model&", 6) == 0)
            return 1;
        q = strchr(q, '&');
        if (q != NULL)
            q++;
    }
    return 0;
}

int openai_target_parse(const char *url, const char *model, openai_target_t *t)
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
    if (model == NULL || model[0] == '\0')
        return 0;
    char *query = strchr(t->path, '?');
    if (query != NULL && query_has_model(query + 1))
        return 0; /* the URL says which model: it wins */
    size_t at = (size_t)n;
    const char *sep = query == NULL ? "?" : query[1] == '\0' ? "" : "&";
    n = snprintf(t->path + at, sizeof(t->path) - at, "%smodel=", sep);
    if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
        return -1;
    for (const unsigned char *c = (const unsigned char *)model; *c != '\0'; c++) {
        int unreserved = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                         *c == '-' || *c == '.' || *c == '_' || *c == '~';
        n = unreserved ? snprintf(t->path + at, sizeof(t->path) - at, "%c", *c)
                       : snprintf(t->path + at, sizeof(t->path) - at, "%%%02X", *c);
        if (n < 0 || (at += (size_t)n) >= sizeof(t->path))
            return -1;
    }
    return 0;
}

/* address: numeric, so lws resolves nothing on the loop; the host name still goes to the Host
 * header, SNI and the certificate check. */
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
    i.local_protocol_name = OPENAI_LWS_PROTOCOL_NAME; /* bind our callback; no Sec-WebSocket-Protocol */
    i.alpn = "http/1.1";                              /* the upgrade is HTTP/1.1 */
    i.opaque_user_data = s;
    i.pwsi = &s->wsi; /* set before lws calls us back for the first time */
    if (s->w->lws == NULL)
        return -1;
    s->busy++;
    struct lws *wsi = lws_client_connect_via_info(&i); /* failures here come back as NULL, not callbacks */
    s->busy--;
    free(s->target); /* lws copied what it needs */
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

static ai_session_t *openai_open(worker_t *w, const ai_open_t *params, const ai_events_t *ev, void *bridge)
{
    const config_t *cfg = &w->app->cfg;
    ai_open_t p = *params;
    if (p.voice == NULL || p.voice[0] == '\0')
        p.voice = cfg->ai_voice;
    if (p.instructions == NULL)
        p.instructions = cfg->ai_instructions;
    const char *why = NULL;
    openai_target_t *t = malloc(sizeof(*t));
    ai_session_t *s = NULL;
    if (t == NULL || openai_target_parse(cfg->openai_realtime_url, cfg->openai_realtime_model, t) != 0) {
        why = t == NULL ? "out of memory" : "bad OPENAI_REALTIME_URL";
        free(t);
        goto fail;
    }
    if ((s = openai_session_new(&p, ev, bridge, cfg->openai_beta)) == NULL) {
        why = "out of memory";
        free(t);
        goto fail;
    }
    s->w = w;
    s->api_key = cfg->openai_api_key;
    s->target = t;
    unsigned char addr[16];
    if (uv_inet_pton(AF_INET, t->host, addr) == 0 || uv_inet_pton(AF_INET6, t->host, addr) == 0) {
        char host[sizeof(t->host)];
        memcpy(host, t->host, sizeof(host)); /* start_connect frees the target */
        if (start_connect(s, host) != 0) {
            why = "cannot connect";
            goto fail;
        }
    } else {
        /* lws 4.1 here is built without async DNS: its getaddrinfo would stall every call on
         * this worker, so the name is resolved on libuv's thread pool first */
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
    log_debug("openai.open", "session=%s shape=%s", s->id, s->beta ? "beta" : "ga");
    return s;
fail:
    log_error("openai.open_failed", "session=%s what=\"%s\"", params->session_id != NULL ? params->session_id : "",
              why);
    openai_session_free(s);
    if (ev->error != NULL)
        ev->error(bridge, why, 1);
    return NULL;
}

/* ---- lws callbacks ----------------------------------------------------------------------- */

static int add_headers(ai_session_t *s, struct lws *wsi, unsigned char **p, unsigned char *end)
{
    char auth[AUTH_MAX];
    int n = snprintf(auth, sizeof(auth), "Bearer %s", s->api_key != NULL ? s->api_key : "");
    if (n < 0 || (size_t)n >= sizeof(auth) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"Authorization:", (const unsigned char *)auth, n, p,
                                    end) != 0)
        return -1;
    if (s->beta && lws_add_http_header_by_name(wsi, (const unsigned char *)"OpenAI-Beta:",
                                               (const unsigned char *)"realtime=v1", 11, p, end) != 0)
        return -1;
    return 0;
}

static int on_writeable(ai_session_t *s, struct lws *wsi)
{
    if (s->closing) {
        /* Not "lws_close_reason() and return -1": Debian's lws 4.1.6 is a _DEBUG build whose
         * libuv "repeat test" then closes twice, and the second close kills the connection
         * before its close frame goes out. A sync kill with a reason set takes lws's polite
         * path instead: close frame on the next POLLOUT, the server's echo ends it. */
        if (!s->close_sent) {
            s->close_sent = 1;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
        }
        return 0;
    }
    size_t len;
    char *m = openai_out_peek(s, &len);
    if (m == NULL)
        return 0;
    /* lws masks the payload in place and keeps what the socket did not take: the slot is done */
    int n = lws_write(wsi, (unsigned char *)m, len, LWS_WRITE_TEXT);
    openai_out_pop(s);
    if (n < (int)len)
        return -1; /* lws reports the close through CLIENT_CLOSED */
    if (openai_out_peek(s, &len) != NULL)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The last word from lws about this connection: from here on it never calls us for it. */
static void on_gone(ai_session_t *s, struct lws *wsi, const char *what)
{
    lws_set_opaque_user_data(wsi, NULL);
    s->wsi = NULL;
    s->established = 0;
    if (!live(s)) {
        log_debug("openai.closed", "session=%s", s->id);
        return;
    }
    fail(s, what);
}

int ai_openai_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    ai_session_t *s = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
    if (s == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    char what[256];
    int rc = 0, gone = 0;
    if (s->wsi == NULL)
        s->wsi = wsi; /* a callback from inside the connect call, before lws filled in pwsi */
    s->busy++;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        rc = add_headers(s, wsi, (unsigned char **)in, *(unsigned char **)in + len);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->established = 1;
        log_debug("openai.connected", "session=%s", s->id);
        lws_callback_on_writable(wsi); /* session.update is waiting */
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        openai_rx_feed(s, in, len, lws_is_final_fragment(wsi)); /* a failure closes below, politely */
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        rc = on_writeable(s, wsi);
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
    if (gone || s->wsi == NULL) { /* here, or in a callback lws made from inside this one */
        maybe_free(s);
        return 0;
    }
    if (rc != 0)
        return -1;
    /* closed or failed during this callback: the connection has nothing more to do */
    if (!live(s))
        begin_close(s);
    return 0;
}

const struct lws_protocols ai_openai_lws_protocol = AI_OPENAI_LWS_PROTOCOL;

const ai_provider_t ai_openai_provider = {
    .name = "openai",
    .open = openai_open,
    .send_audio = openai_send_audio,
    .interrupt = openai_interrupt,
    .tool_result = openai_tool_result,
    .say = openai_say,
    .dropped = openai_dropped,
    .close = openai_close,
};
