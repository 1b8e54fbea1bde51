#include "ai/ai_elevenlabs.h"
#include "server/log.h"
#include "server/worker.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512

_Static_assert(sizeof(ELEVENLABS_CHUNK_HEAD ELEVENLABS_CHUNK_TAIL) - 1 <= AIWS_WRAP_MAX, "a chunk fits in a slot");

struct ai_session {
    aiws_conn_t ws;      /* the connection, the control queue, the audio ring, the receive buffer */
    const char *api_key; /* borrowed from the config */
    unsigned ready : 1, in_response : 1, new_item : 1;
    long long last_interrupt; /* audio events up to this event_id belong to an interrupted response */
    unsigned item_seq;
    char item[24];
};

/* ---- outgoing messages ------------------------------------------------------------------- */

size_t elevenlabs_chunk_build(char *dst, size_t cap, const char *b64, size_t len)
{
    return aiws_frame_build(dst, cap, ELEVENLABS_CHUNK_HEAD, ELEVENLABS_CHUNK_TAIL, b64, len);
}

/* Caller audio waits in the ring (ws.hold_audio) until the formats were checked. */
char *elevenlabs_out_peek(ai_session_t *s, size_t *len)
{
    return aiws_out_peek(&s->ws, len);
}

void elevenlabs_out_pop(ai_session_t *s)
{
    aiws_out_pop(&s->ws);
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

static int on_message(void *owner, const char *msg, size_t len)
{
    return elevenlabs_on_message(owner, msg, len);
}

static void on_timer(void *owner)
{
    elevenlabs_idle(owner);
}

static int add_headers(void *owner, char *dst, size_t cap);

static void session_free(void *owner)
{
    elevenlabs_session_free(owner);
}

static const aiws_ops_t ops = {
    .headers = add_headers,
    .message = on_message,
    .timer = on_timer,
    .free = session_free,
};

ai_session_t *elevenlabs_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge)
{
    ai_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    aiws_init(&s->ws, &ops, s, "elevenlabs", ev, bridge, p->session_id, ELEVENLABS_RX_MAX, ELEVENLABS_CHUNK_HEAD,
              ELEVENLABS_CHUNK_TAIL);
    s->ws.metrics_ai = AI_ELEVENLABS;
    s->ws.hold_audio = 1; /* no caller audio before the formats were checked */
    s->new_item = 1;
    s->last_interrupt = -1;
    aiws_msg_t *init = aiws_msg_new(initiation(p));
    if (init == NULL) {
        elevenlabs_session_free(s);
        return NULL;
    }
    aiws_list_push(&s->ws.ctrl, init); /* first on the wire */
    return s;
}

void elevenlabs_session_free(ai_session_t *s)
{
    if (s == NULL)
        return;
    aiws_cleanup(&s->ws);
    free(s);
}

/* ---- server events ----------------------------------------------------------------------- */

/* The response in flight ends: the next agent audio is a new item. */
static void response_end(ai_session_t *s)
{
    s->new_item = 1;
    if (!s->in_response)
        return;
    s->in_response = 0;
    if (s->ws.ev->response_done != NULL)
        s->ws.ev->response_done(s->ws.bridge);
}

void elevenlabs_idle(ai_session_t *s)
{
    if (aiws_live(&s->ws))
        response_end(s);
}

static void on_metadata(ai_session_t *s, const json_t *e)
{
    if (s->ready)
        return;
    const json_t *m = json_object_get(e, "conversation_initiation_metadata_event");
    const char *out = aiws_str(m, "agent_output_audio_format"), *in = aiws_str(m, "user_input_audio_format");
    if (strcmp(out, ELEVENLABS_FORMAT) != 0 || strcmp(in, ELEVENLABS_FORMAT) != 0) {
        char what[200];
        snprintf(what, sizeof(what), "format mismatch: agent_output_audio_format=%.40s user_input_audio_format=%.40s",
                 out[0] ? out : "(none)", in[0] ? in : "(none)");
        aiws_fail(&s->ws, what);
        return;
    }
    log_debug("elevenlabs.ready", "session=%s conversation=%s", s->ws.id, aiws_str(m, "conversation_id"));
    s->ready = 1;
    s->ws.hold_audio = 0;
    aiws_want_write(&s->ws); /* caller audio may flow now */
    if (s->ws.ev->ready != NULL)
        s->ws.ev->ready(s->ws.bridge);
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
    if (!s->ready || b64 == NULL || n == 0 || !aiws_audio_ok(&s->ws, b64, n, "out"))
        return;
    if (s->new_item) {
        s->new_item = 0;
        snprintf(s->item, sizeof(s->item), "el_%u", ++s->item_seq);
    }
    s->in_response = 1;
    aiws_timer(&s->ws, ELEVENLABS_IDLE_MS);
    if (s->ws.ev->audio != NULL)
        s->ws.ev->audio(s->ws.bridge, b64, n, s->item);
}

static void on_tool_call(ai_session_t *s, const json_t *e)
{
    const json_t *c = json_object_get(e, "client_tool_call");
    const char *id = aiws_str(c, "tool_call_id"), *name = aiws_str(c, "tool_name");
    if (id[0] == '\0' || name[0] == '\0' || aiws_call_seen(&s->ws, id))
        return;
    const json_t *params = json_object_get(c, "parameters");
    char *args = json_is_object(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    response_end(s); /* the agent waits for the result: what it says next is a new response */
    if (aiws_live(&s->ws) && s->ws.ev->tool_call != NULL)
        s->ws.ev->tool_call(s->ws.bridge, id, name, args != NULL ? args : "{}");
    free(args);
}

static void dispatch(ai_session_t *s, const char *type, const json_t *e)
{
    const ai_events_t *ev = s->ws.ev;
    if (strcmp(type, "audio") == 0) {
        on_audio(s, e);
    } else if (strcmp(type, "ping") == 0) {
        json_t *eid = json_object_get(json_object_get(e, "ping_event"), "event_id");
        aiws_send_ctrl(&s->ws, json_pack("{s:s, s:O}", "type", "pong", "event_id", eid != NULL ? eid : json_null()));
    } else if (strcmp(type, "interruption") == 0) {
        json_t *eid = json_object_get(json_object_get(e, "interruption_event"), "event_id");
        if (json_is_integer(eid) && json_integer_value(eid) > s->last_interrupt)
            s->last_interrupt = json_integer_value(eid);
        s->new_item = 1;
        if (ev->speech_started != NULL)
            ev->speech_started(s->ws.bridge); /* the bridge clears Twilio's audio */
        if (aiws_live(&s->ws))
            response_end(s);
    } else if (strcmp(type, "user_transcript") == 0) {
        const char *t = aiws_str(json_object_get(e, "user_transcription_event"), "user_transcript");
        response_end(s);
        if (aiws_live(&s->ws) && ev->caller_active != NULL)
            ev->caller_active(s->ws.bridge);
        if (aiws_live(&s->ws) && ev->transcript != NULL)
            ev->transcript(s->ws.bridge, AI_ROLE_CALLER, t);
    } else if (strcmp(type, "agent_response") == 0) {
        if (ev->transcript != NULL)
            ev->transcript(s->ws.bridge, AI_ROLE_AGENT,
                           aiws_str(json_object_get(e, "agent_response_event"), "agent_response"));
    } else if (strcmp(type, "client_tool_call") == 0) {
        on_tool_call(s, e);
    } else if (strcmp(type, "conversation_initiation_metadata") == 0) {
        on_metadata(s, e);
    } else if (strcmp(type, "error") == 0) {
        char q[256];
        const char *msg = aiws_str(e, "message");
        log_warn("elevenlabs.error", "session=%s message=%s", s->ws.id, log_quote(q, sizeof(q), msg, (size_t)-1));
        if (!s->ready)
            aiws_fail(&s->ws, msg[0] != '\0' ? msg : "refused");
        else if (ev->error != NULL)
            ev->error(s->ws.bridge, msg[0] != '\0' ? msg : "error", 0);
    }
}

int elevenlabs_on_message(ai_session_t *s, const char *msg, size_t len)
{
    if (!aiws_live(&s->ws))
        return 0;
    const char *type;
    json_t *e = aiws_parse(&s->ws, msg, len, &type);
    if (e != NULL)
        dispatch(s, type, e);
    json_decref(e);
    return s->ws.failed ? -1 : 0;
}

int elevenlabs_rx_feed(ai_session_t *s, const char *in, size_t len, int final)
{
    return aiws_rx_feed(&s->ws, in, len, final);
}

/* ---- the provider's entry points --------------------------------------------------------- */

static void el_send_audio(ai_session_t *s, const char *b64, size_t len)
{
    aiws_send_audio(&s->ws, b64, len); /* asks to write once the formats were checked */
}

/* The server detected the barge-in itself and stopped the response (its interruption event is
 * what told the bridge): there is nothing to cancel or truncate. */
static void el_interrupt(ai_session_t *s, const char *item_id, unsigned audio_end_ms)
{
    (void)item_id;
    (void)audio_end_ms;
    if (aiws_live(&s->ws))
        s->new_item = 1;
}

static void el_tool_result(ai_session_t *s, const char *call_id, const char *output_json)
{
    if (!aiws_live(&s->ws) || call_id == NULL)
        return;
    aiws_send_ctrl(&s->ws, json_pack("{s:s, s:s, s:s, s:b}", "type", "client_tool_result", "tool_call_id", call_id,
                                     "result", output_json != NULL ? output_json : "{}", "is_error", 0));
}

/* contextual_update: non-interrupting information the agent takes into account. */
static void el_say(ai_session_t *s, const char *instructions)
{
    if (!aiws_live(&s->ws) || instructions == NULL || instructions[0] == '\0')
        return;
    aiws_send_ctrl(&s->ws, json_pack("{s:s, s:s}", "type", "contextual_update", "text", instructions));
}

static unsigned long el_dropped(const ai_session_t *s)
{
    return s->ws.dropped;
}

static void el_close(ai_session_t *s)
{
    if (s != NULL)
        aiws_close(&s->ws);
}

/* ---- the connection ---------------------------------------------------------------------- */

int elevenlabs_target_parse(const char *url, const char *agent_id, elevenlabs_target_t *t)
{
    if (aiws_target_parse(url, t) != 0) /* the same URL rules as OPENAI_REALTIME_URL */
        return -1;
    if (agent_id == NULL || agent_id[0] == '\0')
        return 0;
    return aiws_query_add(t, "agent_id", agent_id);
}

static ai_session_t *el_open(worker_t *w, const ai_open_t *params, const ai_events_t *ev, void *bridge)
{
    const config_t *cfg = &w->app->cfg;
    ai_open_t p = *params;
    if (p.instructions == NULL)
        p.instructions = cfg->ai_instructions;
    const char *why = NULL;
    elevenlabs_target_t t;
    ai_session_t *s = NULL;
    if (cfg->elevenlabs_agent_id == NULL || cfg->elevenlabs_agent_id[0] == '\0') {
        why = "ELEVENLABS_AGENT_ID is not set";
        goto fail;
    }
    if (elevenlabs_target_parse(cfg->elevenlabs_convai_url, cfg->elevenlabs_agent_id, &t) != 0) {
        why = "bad ELEVENLABS_CONVAI_URL";
        goto fail;
    }
    if ((s = elevenlabs_session_new(&p, ev, bridge)) == NULL) {
        why = "out of memory";
        goto fail;
    }
    s->api_key = cfg->elevenlabs_api_key;
    if (aiws_connect(&s->ws, w, &t, &why) != 0)
        goto fail;
    log_debug("elevenlabs.open", "session=%s", s->ws.id);
    return s;
fail:
    log_error("elevenlabs.open_failed", "session=%s what=\"%s\"", params->session_id != NULL ? params->session_id : "",
              why);
    elevenlabs_session_free(s);
    return NULL; /* the bridge hands the caller to a person */
}

/* ---- the handshake ----------------------------------------------------------------------- */

static int add_headers(void *owner, char *dst, size_t cap)
{
    const char *key = ((const ai_session_t *)owner)->api_key;
    if (key == NULL || key[0] == '\0')
        return 0; /* a public agent, or a signed URL */
    if (strlen(key) >= KEY_MAX || strpbrk(key, "\r\n") != NULL)
        return -1;
    int n = snprintf(dst, cap, "xi-api-key: %s\r\n", key);
    return n < 0 || (size_t)n >= cap ? -1 : n;
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
