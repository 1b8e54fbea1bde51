#include "ai/ai_openai.h"
#include "server/log.h"
#include "server/worker.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFER_MAX        8 /* response.create waiting for the current response to end */
#define AUTH_MAX         512
#define TRANSCRIBE_MODEL "whisper-1"
#define GREETING_GENERIC "Greet the caller briefly and ask how you can help."

_Static_assert(sizeof(OPENAI_APPEND_HEAD OPENAI_APPEND_TAIL) - 1 <= AIWS_WRAP_MAX, "an append fits in a slot");

struct ai_session {
    aiws_conn_t ws;      /* the connection, the control queue, the audio ring, the receive buffer */
    const char *api_key; /* borrowed from the config, which outlives every worker */
    int beta;
    unsigned ready : 1, in_response : 1, response_requested : 1, cancel_sent : 1;
    char *instructions;   /* the session's, repeated in response-level instructions */
    aiws_msg_t *greeting; /* response.create, sent once the session is configured */
    aiws_list_t deferred; /* response.create waiting for the response in flight to end */
};

/* ---- outgoing messages ------------------------------------------------------------------- */

/* The server allows one response at a time: a response.create while one is in flight (or
 * asked for) waits for its response.done. */
static void send_response_create(ai_session_t *s, aiws_msg_t *c)
{
    if (c == NULL)
        return;
    if (!s->in_response && !s->response_requested && s->ws.ctrl.n < OPENAI_CTRL_MAX) {
        aiws_list_push(&s->ws.ctrl, c);
        s->response_requested = 1;
        aiws_want_write(&s->ws);
    } else if (s->deferred.n < DEFER_MAX) {
        aiws_list_push(&s->deferred, c);
    } else {
        log_error("openai.queue_full", "session=%s type=response.create", s->ws.id);
        free(c);
    }
}

static void flush_deferred(ai_session_t *s)
{
    if (!s->in_response && !s->response_requested && s->deferred.head != NULL)
        send_response_create(s, aiws_list_shift(&s->deferred));
}

/* response.create whose instructions are the session's followed by this turn's directive:
 * response-level instructions replace the session's for that response, and the agent must
 * keep its persona and language when it greets or says goodbye. */
static aiws_msg_t *response_create(const ai_session_t *s, const char *directive)
{
    if (directive == NULL || directive[0] == '\0')
        return aiws_msg_new(json_pack("{s:s}", "type", "response.create"));
    json_t *text = s->instructions != NULL && s->instructions[0] != '\0'
                       ? json_sprintf("%s\n\n%s", s->instructions, directive)
                       : json_string(directive);
    if (text == NULL) { /* not UTF-8 */
        log_error("openai.build_failed", "session=%s type=response.create", s->ws.id);
        return NULL;
    }
    return aiws_msg_new(json_pack("{s:s, s:{s:o}}", "type", "response.create", "response", "instructions", text));
}

size_t openai_append_build(char *dst, size_t cap, const char *b64, size_t len)
{
    return aiws_frame_build(dst, cap, OPENAI_APPEND_HEAD, OPENAI_APPEND_TAIL, b64, len);
}

char *openai_out_peek(ai_session_t *s, size_t *len)
{
    return aiws_out_peek(&s->ws, len);
}

void openai_out_pop(ai_session_t *s)
{
    aiws_out_pop(&s->ws);
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

static int on_message(void *owner, const char *msg, size_t len)
{
    return openai_on_message(owner, msg, len);
}

static int add_headers(void *owner, char *dst, size_t cap);

static void session_free(void *owner)
{
    openai_session_free(owner);
}

static const aiws_ops_t ops = {
    .headers = add_headers,
    .message = on_message,
    .free = session_free,
};

ai_session_t *openai_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge, int beta)
{
    ai_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    aiws_init(&s->ws, &ops, s, "openai", ev, bridge, p->session_id, OPENAI_RX_MAX, OPENAI_APPEND_HEAD,
              OPENAI_APPEND_TAIL);
    s->ws.metrics_ai = AI_OPENAI;
    s->beta = beta;
    aiws_list_init(&s->deferred);
    if (p->instructions != NULL && (s->instructions = strdup(p->instructions)) == NULL)
        goto fail;
    aiws_msg_t *update = aiws_msg_new(session_update(p, beta));
    if (update == NULL)
        goto fail;
    aiws_list_push(&s->ws.ctrl, update); /* first on the wire: nothing else makes sense before it */
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
    aiws_cleanup(&s->ws);
    aiws_list_free(&s->deferred);
    free(s->greeting);
    free(s->instructions);
    free(s);
}

/* ---- server events ----------------------------------------------------------------------- */

static int args_ok(const char *args)
{
    json_t *a = json_loads(args, 0, NULL);
    int ok = json_is_object(a);
    json_decref(a);
    return ok;
}

static void tool_call(ai_session_t *s, const char *call_id, const char *name, const char *args)
{
    if (call_id[0] == '\0' || name[0] == '\0' || aiws_call_seen(&s->ws, call_id))
        return;
    if (s->ws.ev->tool_call != NULL)
        s->ws.ev->tool_call(s->ws.bridge, call_id, name, args[0] != '\0' ? args : "{}");
}

static void on_error_event(ai_session_t *s, const json_t *e)
{
    const json_t *err = json_object_get(e, "error");
    const char *code = aiws_str(err, "code"), *msg = aiws_str(err, "message");
    char q[256];
    /* a response that ended between our cancel and its arrival: nothing went wrong */
    if (strcmp(code, "response_cancel_not_active") == 0) {
        log_debug("openai.cancel_late", "session=%s", s->ws.id);
        return;
    }
    /* whatever we asked for was refused, quite possibly a response.create: don't wait for it */
    s->response_requested = 0;
    if (!s->ready) {
        /* session.update refused: the formats are not ours, so no audio would make sense */
        char what[300];
        snprintf(what, sizeof(what), "session refused: %s", msg[0] != '\0' ? msg : code);
        aiws_fail(&s->ws, what);
        return;
    }
    log_warn("openai.error", "session=%s code=%s message=%s", s->ws.id, code[0] != '\0' ? code : "-",
             log_quote(q, sizeof(q), msg, (size_t)-1));
    if (s->ws.ev->error != NULL)
        s->ws.ev->error(s->ws.bridge, msg[0] != '\0' ? msg : code, 0);
    if (aiws_live(&s->ws))
        flush_deferred(s);
}

static void on_response_done(ai_session_t *s, const json_t *e)
{
    s->in_response = 0;
    s->response_requested = 0;
    s->cancel_sent = 0;
    const json_t *resp = json_object_get(e, "response");
    if (strcmp(aiws_str(resp, "status"), "failed") == 0) {
        const json_t *err = json_object_get(json_object_get(resp, "status_details"), "error");
        const char *why = aiws_str(err, "code")[0] != '\0' ? aiws_str(err, "code") : aiws_str(err, "type");
        char what[160];
        snprintf(what, sizeof(what), "response failed: %s", why[0] != '\0' ? why : "unknown");
        log_warn("openai.response_failed", "session=%s reason=%s", s->ws.id, why[0] != '\0' ? why : "unknown");
        if (s->ws.ev->error != NULL)
            s->ws.ev->error(s->ws.bridge, what, 0);
        if (!aiws_live(&s->ws))
            return;
    }
    /* what waited for this response goes first, so anything the bridge asks for now queues behind */
    flush_deferred(s);
    if (s->ws.ev->response_done != NULL)
        s->ws.ev->response_done(s->ws.bridge);
}

static void dispatch(ai_session_t *s, const char *type, const json_t *e)
{
    const ai_events_t *ev = s->ws.ev;
    /* the hot path first: about fifty of these a second while the agent talks */
    if (strcmp(type, "response.output_audio.delta") == 0 || strcmp(type, "response.audio.delta") == 0) {
        const json_t *d = json_object_get(e, "delta");
        const char *b64 = json_string_value(d);
        size_t n = json_string_length(d);
        /* the bridge puts this text into Twilio's JSON as it is */
        if (aiws_audio_ok(&s->ws, b64, n, "out") && n > 0 && ev->audio != NULL) {
            ev->audio(s->ws.bridge, b64, n, aiws_str(e, "item_id"));
        }
    } else if (strcmp(type, "input_audio_buffer.speech_started") == 0) {
        if (ev->speech_started != NULL)
            ev->speech_started(s->ws.bridge);
    } else if (strcmp(type, "response.created") == 0) {
        s->in_response = 1;
        s->response_requested = 0;
        s->cancel_sent = 0;
    } else if (strcmp(type, "response.done") == 0) {
        on_response_done(s, e);
    } else if (strcmp(type, "response.output_audio_transcript.done") == 0 ||
               strcmp(type, "response.audio_transcript.done") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->ws.bridge, AI_ROLE_AGENT, aiws_str(e, "transcript"));
    } else if (strcmp(type, "conversation.item.input_audio_transcription.completed") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->ws.bridge, AI_ROLE_CALLER, aiws_str(e, "transcript"));
    } else if (strcmp(type, "response.function_call_arguments.done") == 0) {
        /* GA names the function here; the beta event does not, so there the item reports it.
         * Arguments of an interrupted call may be cut short: then the item decides too. */
        const char *args = aiws_str(e, "arguments");
        if (aiws_str(e, "name")[0] != '\0' && args_ok(args))
            tool_call(s, aiws_str(e, "call_id"), aiws_str(e, "name"), args);
    } else if (strcmp(type, "response.output_item.done") == 0) {
        const json_t *item = json_object_get(e, "item");
        if (strcmp(aiws_str(item, "type"), "function_call") != 0)
            return;
        if (strcmp(aiws_str(item, "status"), "incomplete") == 0) {
            log_debug("openai.tool_call_incomplete", "session=%s call=%s", s->ws.id, aiws_str(item, "call_id"));
            return;
        }
        tool_call(s, aiws_str(item, "call_id"), aiws_str(item, "name"), aiws_str(item, "arguments"));
    } else if (strcmp(type, "session.updated") == 0) {
        if (s->ready)
            return;
        s->ready = 1;
        send_response_create(s, s->greeting); /* the agent speaks first */
        s->greeting = NULL;
        if (ev->ready != NULL)
            ev->ready(s->ws.bridge);
    } else if (strcmp(type, "error") == 0) {
        on_error_event(s, e);
    }
}

/* ---- the audio path: deltas without a JSON tree ------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes at p (the opening quote): its text and the byte after it, or NULL
 * (an escape, which the full parser unescapes, or no closing quote). */
static const char *plain_string(const char *p, const char *end, const char **text, size_t *n)
{
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL || memchr(p + 1, '\\', (size_t)(q - p - 1)) != NULL)
        return NULL;
    *text = p + 1;
    *n = (size_t)(q - p - 1);
    return q + 1;
}

static const char *digits(const char *p, const char *end)
{
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > start ? p : NULL;
}

/* A JSON number at p: the byte after it, or NULL. */
static const char *number(const char *p, const char *end)
{
    if (*p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if ((p = digits(p, end)) == NULL)
        return NULL;
    if (p < end && *p == '.' && (p = digits(p + 1, end)) == NULL)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        p = digits(p, end);
    }
    return p;
}

static int key_is(const char *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

int openai_fast_delta(const char *msg, size_t len, openai_delta_t *d)
{
    const char *p = msg, *end = msg + len, *type = NULL;
    size_t type_n = 0;
    d->b64 = NULL;
    d->len = 0;
    d->item_id[0] = '\0';
    p = skip_ws(p, end);
    if (p == end || *p++ != '{')
        return 0;
    for (int first = 1;; first = 0) {
        p = skip_ws(p, end);
        if (p < end && *p == '}' && first)
            break;
        const char *k, *v;
        size_t kn, vn;
        if (p == end || *p != '"' || (p = plain_string(p, end, &k, &kn)) == NULL)
            return 0;
        p = skip_ws(p, end);
        if (p == end || *p++ != ':')
            return 0;
        p = skip_ws(p, end);
        if (p == end)
            return 0;
        if (*p == '"') {
            if ((p = plain_string(p, end, &v, &vn)) == NULL)
                return 0;
            if (key_is(k, kn, "type")) {
                type = v;
                type_n = vn;
            } else if (key_is(k, kn, "delta")) {
                d->b64 = v;
                d->len = vn;
            } else if (key_is(k, kn, "item_id")) {
                if (vn >= sizeof(d->item_id))
                    return 0;
                memcpy(d->item_id, v, vn);
                d->item_id[vn] = '\0';
            }
        } else if ((*p >= '0' && *p <= '9') || *p == '-') {
            if ((p = number(p, end)) == NULL)
                return 0;
        } else if (end - p >= 4 && (memcmp(p, "null", 4) == 0 || memcmp(p, "true", 4) == 0)) {
            p += 4;
        } else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            p += 5;
        } else {
            return 0; /* an object or an array: not a delta's shape */
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
        else if (p < end && *p == '}') {
            p++;
            break;
        } else
            return 0;
    }
    if (skip_ws(p, end) != end || type == NULL || d->b64 == NULL)
        return 0;
    return key_is(type, type_n, "response.output_audio.delta") || key_is(type, type_n, "response.audio.delta");
}

int openai_on_message(ai_session_t *s, const char *msg, size_t len)
{
    if (!aiws_live(&s->ws))
        return 0;
    openai_delta_t d;
    if (openai_fast_delta(msg, len, &d)) {
        /* the bridge puts this text into Twilio's JSON as it is */
        if (d.len > 0 && aiws_audio_ok(&s->ws, d.b64, d.len, "out") && s->ws.ev->audio != NULL)
            s->ws.ev->audio(s->ws.bridge, d.b64, d.len, d.item_id);
        return s->ws.failed ? -1 : 0;
    }
    const char *type;
    json_t *e = aiws_parse(&s->ws, msg, len, &type);
    if (e != NULL)
        dispatch(s, type, e);
    json_decref(e);
    return s->ws.failed ? -1 : 0;
}

int openai_rx_feed(ai_session_t *s, const char *in, size_t len, int final)
{
    return aiws_rx_feed(&s->ws, in, len, final);
}

/* ---- the provider's entry points --------------------------------------------------------- */

static void openai_send_audio(ai_session_t *s, const char *b64, size_t len)
{
    aiws_send_audio(&s->ws, b64, len);
}

static void openai_interrupt(ai_session_t *s, const char *item_id, unsigned audio_end_ms)
{
    if (!aiws_live(&s->ws))
        return;
    /* cancel first: the item must stop growing before it is cut */
    if (s->in_response && !s->cancel_sent) {
        s->cancel_sent = 1;
        aiws_send_ctrl(&s->ws, json_pack("{s:s}", "type", "response.cancel"));
    }
    if (item_id != NULL && item_id[0] != '\0')
        aiws_send_ctrl(&s->ws, json_pack("{s:s, s:s, s:i, s:I}", "type", "conversation.item.truncate", "item_id",
                                         item_id, "content_index", 0, "audio_end_ms", (json_int_t)audio_end_ms));
}

static void openai_tool_result(ai_session_t *s, const char *call_id, const char *output_json)
{
    if (!aiws_live(&s->ws) || call_id == NULL)
        return;
    aiws_send_ctrl(&s->ws, json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "conversation.item.create", "item", "type",
                                     "function_call_output", "call_id", call_id, "output",
                                     output_json != NULL ? output_json : "{}"));
    send_response_create(s, response_create(s, NULL));
}

static void openai_say(ai_session_t *s, const char *instructions)
{
    if (!aiws_live(&s->ws))
        return;
    send_response_create(s, response_create(s, instructions));
}

static unsigned long openai_dropped(const ai_session_t *s)
{
    return s->ws.dropped;
}

static void openai_close(ai_session_t *s)
{
    if (s != NULL)
        aiws_close(&s->ws);
}

/* ---- the connection ---------------------------------------------------------------------- */

int openai_target_parse(const char *url, const char *model, openai_target_t *t)
{
    if (aiws_target_parse(url, t) != 0)
        return -1;
    if (model == NULL || model[0] == '\0')
        return 0;
    const char *query = strchr(t->path, '?');
    if (query != NULL && aiws_query_has(query + 1, "model"))
        return 0; /* the URL says which model: it wins */
    return aiws_query_add(t, "model", model);
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
    openai_target_t t;
    ai_session_t *s = NULL;
    if (openai_target_parse(cfg->openai_realtime_url, cfg->openai_realtime_model, &t) != 0) {
        why = "bad OPENAI_REALTIME_URL";
        goto fail;
    }
    if ((s = openai_session_new(&p, ev, bridge, cfg->openai_beta)) == NULL) {
        why = "out of memory";
        goto fail;
    }
    s->api_key = cfg->openai_api_key;
    if (aiws_connect(&s->ws, w, &t, &why) != 0)
        goto fail;
    log_debug("openai.open", "session=%s shape=%s", s->ws.id, s->beta ? "beta" : "ga");
    return s;
fail:
    log_error("openai.open_failed", "session=%s what=\"%s\"", params->session_id != NULL ? params->session_id : "",
              why);
    openai_session_free(s);
    return NULL; /* the bridge reports it: ai.h forbids a callback from inside open() */
}

/* ---- the handshake ----------------------------------------------------------------------- */

static int add_headers(void *owner, char *dst, size_t cap)
{
    const ai_session_t *s = owner;
    if (s->api_key != NULL && strpbrk(s->api_key, "\r\n") != NULL)
        return -1; /* a header line must stay one line */
    int n = snprintf(dst, cap, "Authorization: Bearer %s\r\n%s", s->api_key != NULL ? s->api_key : "",
                     s->beta ? "OpenAI-Beta: realtime=v1\r\n" : "");
    return n < 0 || (size_t)n >= cap || n > AUTH_MAX + 64 ? -1 : n;
}

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
