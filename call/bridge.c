#include "call/bridge.h"
#include "ai/ai.h"
#include "call/policy.h"
#include "server/log.h"
#include "call/wavrec.h"
#include "server/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MARKS              128  /* markers awaiting the leg's "played" */
#define CHUNK_B64          1600 /* agent audio goes to the leg in pieces of at most this (150 ms) */
#define MARK_EVERY_MS      100  /* a mark at least this often: barge-in knows what was heard */
#define START_TIMEOUT_MS   10000
#define SPEECH_END_WAIT_MS 8000 /* how long a goodbye or hand-off may take to play */

typedef enum { B_WAIT_START, B_CONNECTING, B_LIVE, B_ENDING, B_DONE } bstate_t;

typedef struct mark {
    uint32_t seq;
    uint32_t item_ms; /* ms of the item's audio sent up to this mark */
    uint32_t item_gen;
} mark_t;

struct bridge {
    uv_timer_t timer; /* first: closing it frees the bridge */
    worker_t *w;
    const media_leg_t *leg;
    void *ctx;
    bstate_t state;
    int leg_gone;
    store_call_t call;
    char leg_id[64];
    const ai_provider_t *prov;
    ai_session_t *ai;
    /* deadlines, uv_now() ms; 0 = unset */
    uint64_t start_deadline, connect_deadline, silence_deadline, max_deadline, end_deadline;
    int silence_prompted;
    /* what connect_action answers once the stream is closed */
    const char *next_action;
    char reason[128];
    int end_after_speech; /* close once the agent's audio has played */
    uint32_t end_gen;     /* with need_reply: an item after this one must have been spoken */
    int need_reply;
    /* agent audio */
    char item[64];
    uint32_t item_gen;     /* bumps with each new item */
    uint32_t item_sent_ms; /* of the current item */
    uint32_t unmarked_ms;  /* sent since the last mark */
    uint32_t item_played_ms;
    uint32_t interrupted_gen; /* audio of this item after a clear is stale: dropped */
    int response_active;
    mark_t marks[MARKS];
    unsigned mark_head, mark_count;
    uint32_t mark_seq;
    /* counters */
    unsigned long frames_in, frames_out, dropped_out, dropped_early, dropped_ai, clears;
    ai_kind_t ai_kind;   /* the worker's metrics label: AI_NONE until the policy is known */
    uint64_t started_ms; /* uv_now() at the leg's start, for the first agent audio; 0 once observed */
    /* recording */
    wavrec_t *rec;
    uint64_t agent_cursor_ms; /* stream time where the next agent audio will play */
    uint64_t stream_ms;       /* last caller timestamp */
    /* PostgreSQL: a start or a tool waits for the database on a fiber holding a reference; a
     * bridge whose leg is gone by then is freed by the last one (closed: the timer is closed) */
    int refs, closed, starting, start_rc;
    /* the leg's close, held until the next action is written (PostgreSQL's queued writes) */
    int close_code;
    const char *close_next;
    char close_reason[128];
};

static void bridge_unref(bridge_t *b)
{
    if (--b->refs == 0 && b->closed)
        free(b);
}

static const ai_tool_t tools[] = {
    {"transfer_to_agent", "Transfer the caller to a human agent when they ask for a person or you cannot help.",
     "{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\",\"description\":\"why the caller "
     "needs a person\"}},\"required\":[\"reason\"]}"},
    {"end_call", "End the call after saying goodbye, when the caller is done.",
     "{\"type\":\"object\",\"properties\":{}}"},
    {"book_appointment", "Book an appointment for the caller.",
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"date\":{\"type\":\"string\","
     "\"description\":\"YYYY-MM-DD\"},\"time\":{\"type\":\"string\",\"description\":\"HH:MM, 24-hour\"},"
     "\"notes\":{\"type\":\"string\"}},\"required\":[\"name\",\"date\",\"time\"]}"},
    {"raise_ticket", "Open a support ticket for the caller's problem.",
     "{\"type\":\"object\",\"properties\":{\"summary\":{\"type\":\"string\"},\"priority\":{\"type\":\"string\","
     "\"enum\":[\"low\",\"normal\",\"high\",\"urgent\"]}},\"required\":[\"summary\"]}"},
};

static void event(bridge_t *b, const char *type, json_t *detail)
{
    char *json = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    if (b->call.id != 0 && store_call_event(b->w->store, b->call.id, type, json) != 0)
        log_error("db.error", "op=call_event session=%s error=\"%s\"", b->call.session_id, store_errmsg(b->w->store));
    char q[512];
    log_info("call.event", "session=%s call_sid=%s type=%s detail=%s", b->call.session_id[0] ? b->call.session_id : "-",
             b->call.call_sid[0] ? b->call.call_sid : "-", type, log_quote(q, sizeof(q), json ? json : "", (size_t)-1));
    free(json);
}

static void rearm(bridge_t *b);

/* The stream's counters, for its last event. */
static json_t *counters(const bridge_t *b)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "frames_in", (json_int_t)b->frames_in, "frames_out",
                     (json_int_t)b->frames_out, "dropped_out", (json_int_t)b->dropped_out, "dropped_early",
                     (json_int_t)b->dropped_early, "dropped_ai",
                     (json_int_t)(b->ai != NULL ? b->prov->dropped(b->ai) : b->dropped_ai), "clears",
                     (json_int_t)b->clears);
}

/* Closes the AI session, keeping its drop count for the record. */
static void close_ai(bridge_t *b)
{
    if (b->ai == NULL)
        return;
    b->dropped_ai = b->prov->dropped(b->ai);
    /* the provider counts its drops itself: taken once, as the session closes */
    metrics_media_dropped(&b->w->metrics, b->ai_kind, METRICS_DROP_AI_FULL, b->dropped_ai);
    b->prov->close(b->ai);
    b->ai = NULL;
}

/* Ends the AI part: no more audio either way; the leg hands the call to next_action. */
static void close_leg_now(void *p)
{
    bridge_t *b = p;
    if (!b->leg_gone)
        b->leg->close(b->ctx, b->close_code, b->close_next, b->close_reason);
    bridge_unref(b);
}

static void finish(bridge_t *b, const char *next_action, const char *reason, int code)
{
    if (b->state == B_DONE)
        return;
    b->state = B_DONE;
    json_t *stats = counters(b);
    close_ai(b);
    if (next_action != NULL && b->call.id != 0 &&
        store_call_set_next_action(b->w->store, b->call.id, next_action, reason) != 0)
        log_error("db.error", "op=next_action session=%s error=\"%s\"", b->call.session_id, store_errmsg(b->w->store));
    json_object_set_new(stats, "next_action", next_action ? json_string(next_action) : json_null());
    json_object_set_new(stats, "reason", reason ? json_string(reason) : json_null());
    event(b, "stream.closing", stats);
    if (!b->leg_gone) {
        /* the platform asks what next once the leg is closed (Twilio's connect action, jambonz's
         * actionHook), perhaps of another instance: the answer must be in the database first */
        b->close_code = code;
        b->close_next = next_action;
        snprintf(b->close_reason, sizeof(b->close_reason), "%s", reason ? reason : "done");
        b->refs++;
        if (!store_after_queued(b->w->store, close_leg_now, b))
            close_leg_now(b);
    }
    rearm(b);
}

/* A person takes the call because the AI part cannot go on. */
static void fall_back(bridge_t *b, metrics_fallback_t why, const char *reason, int code)
{
    if (b->state != B_DONE)
        metrics_ai_fallback(&b->w->metrics, why);
    finish(b, "transfer", reason, code);
}

/* Stops after the audio in flight has played (or a timeout). */
static void end_after_speech(bridge_t *b, const char *next_action, const char *reason)
{
    if (b->state >= B_ENDING)
        return;
    if (b->prov == &ai_echo_provider) { /* it has no voice: there is no goodbye to wait for */
        finish(b, next_action, reason, 1000);
        return;
    }
    b->state = B_ENDING;
    b->next_action = next_action;
    snprintf(b->reason, sizeof(b->reason), "%s", reason);
    b->end_after_speech = 1;
    b->end_deadline = uv_now(&b->w->loop) + SPEECH_END_WAIT_MS;
    rearm(b);
}

static void maybe_end(bridge_t *b)
{
    if (b->state == B_ENDING && b->end_after_speech && !b->response_active && b->mark_count == 0 &&
        (!b->need_reply || b->item_gen != b->end_gen))
        finish(b, b->next_action, b->reason, 1000);
}

static void on_timer(uv_timer_t *t)
{
    bridge_t *b = (bridge_t *)t;
    uint64_t now = uv_now(&b->w->loop);
    if (b->state == B_WAIT_START && b->start_deadline && now >= b->start_deadline) {
        event(b, "stream.no_start", NULL);
        finish(b, NULL, "no start message", 1008);
        return;
    }
    if (b->state == B_CONNECTING && b->connect_deadline && now >= b->connect_deadline) {
        event(b, "ai.connect_timeout", json_pack("{s:i}", "ms", b->w->app->cfg.ai_connect_timeout_ms));
        fall_back(b, METRICS_FALLBACK_AI_UNREACHABLE, "ai_unreachable", 1000);
        return;
    }
    if (b->state == B_ENDING && b->end_deadline && now >= b->end_deadline) {
        finish(b, b->next_action, b->reason, 1000);
        return;
    }
    if (b->state == B_LIVE && b->max_deadline && now >= b->max_deadline) {
        event(b, "call.max_length", json_pack("{s:i}", "seconds", b->w->app->cfg.max_call_s));
        b->prov->say(b->ai, "The call has reached its time limit. Say a short, polite goodbye now.");
        end_after_speech(b, "hangup", "max_call_length");
        return;
    }
    if (b->state == B_LIVE && b->silence_deadline && now >= b->silence_deadline) {
        if (!b->silence_prompted) {
            b->silence_prompted = 1;
            event(b, "silence.prompt", NULL);
            b->prov->say(b->ai, "The caller has been silent for a while. Ask briefly whether they are still there.");
            b->silence_deadline = now + (uint64_t)b->w->app->cfg.silence_timeout_s * 1000;
        } else {
            event(b, "silence.timeout", NULL);
            b->prov->say(b->ai, "The caller is silent. Say a short goodbye now.");
            end_after_speech(b, "hangup", "silence");
            return;
        }
    }
    rearm(b);
}

static void rearm(bridge_t *b)
{
    if (b->state == B_DONE) {
        uv_timer_stop(&b->timer);
        return;
    }
    uint64_t d[] = {b->state == B_WAIT_START ? b->start_deadline : 0,
                    b->state == B_CONNECTING ? b->connect_deadline : 0, b->state == B_LIVE ? b->silence_deadline : 0,
                    b->state == B_LIVE ? b->max_deadline : 0, b->state == B_ENDING ? b->end_deadline : 0};
    uint64_t next = 0;
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        if (d[i] && (next == 0 || d[i] < next))
            next = d[i];
    uint64_t now = uv_now(&b->w->loop);
    if (next)
        uv_timer_start(&b->timer, on_timer, next > now ? next - now : 0, 0);
    else
        uv_timer_stop(&b->timer);
}

static void heard(bridge_t *b)
{
    b->silence_prompted = 0;
    if (b->state == B_LIVE)
        b->silence_deadline = uv_now(&b->w->loop) + (uint64_t)b->w->app->cfg.silence_timeout_s * 1000;
    rearm(b);
}

/* ---- what the AI does ---- */

static void ai_ready(void *p)
{
    bridge_t *b = p;
    if (b->state != B_CONNECTING)
        return;
    b->state = B_LIVE;
    uint64_t now = uv_now(&b->w->loop);
    b->silence_deadline = now + (uint64_t)b->w->app->cfg.silence_timeout_s * 1000;
    b->max_deadline = now + (uint64_t)b->w->app->cfg.max_call_s * 1000;
    event(b, "ai.ready", json_pack("{s:s}", "provider", b->prov->name));
    rearm(b);
}

static void send_mark(bridge_t *b);

static void send_chunk(bridge_t *b, const char *b64, size_t len)
{
    metrics_t *mt = &b->w->metrics;
    if (b->leg_gone || b->leg->audio(b->ctx, b64, len) != 0) {
        b->dropped_out++;
        metrics_media_dropped(mt, b->ai_kind, METRICS_DROP_LEG_FULL, 1);
    } else if (b->started_ms != 0) {
        metrics_first_audio(mt, (uv_now(&b->w->loop) - b->started_ms) * 1000000u);
        b->started_ms = 0;
    }
    b->frames_out++;
    metrics_media_frame(mt, b->ai_kind, METRICS_MEDIA_OUT);
    uint32_t ms = (uint32_t)(ai_b64_decoded_len(b64, len) / 8);
    b->item_sent_ms += ms;
    if (b->rec != NULL) {
        unsigned char pcm[CHUNK_B64 / 4 * 3];
        long got = ai_b64_decode(b64, len, pcm, sizeof(pcm));
        if (b->agent_cursor_ms < b->stream_ms)
            b->agent_cursor_ms = b->stream_ms;
        if (got > 0) {
            wavrec_write(b->rec, 1, b->agent_cursor_ms, pcm, (size_t)got);
            metrics_recording_bytes(mt, (uint64_t)got);
        }
        b->agent_cursor_ms += ms;
    }
    /* a mark every MARK_EVERY_MS of audio: the leg reports it once the audio before it has
     * played (one per 20 ms echo frame would double the writes on the audio path) */
    b->unmarked_ms += ms;
    if (b->unmarked_ms >= MARK_EVERY_MS)
        send_mark(b);
}

static void send_mark(bridge_t *b)
{
    b->unmarked_ms = 0;
    if (b->mark_count < MARKS) {
        mark_t *m = &b->marks[(b->mark_head + b->mark_count++) % MARKS];
        m->seq = ++b->mark_seq;
        m->item_ms = b->item_sent_ms;
        m->item_gen = b->item_gen;
        if (!b->leg_gone && b->leg->mark(b->ctx, m->seq) != 0)
            b->dropped_out++;
    }
}

static void ai_audio(void *p, const char *b64, size_t len, const char *item_id)
{
    bridge_t *b = p;
    /* b64 is checked already: by the media handler (echo) or the provider (ai_events_t) */
    if ((b->state != B_LIVE && b->state != B_ENDING) || b->leg_id[0] == '\0')
        return;
    if (item_id != NULL && strncmp(item_id, b->item, sizeof(b->item) - 1) != 0) {
        snprintf(b->item, sizeof(b->item), "%s", item_id);
        b->item_gen++;
        b->item_sent_ms = b->item_played_ms = 0;
        b->response_active = 1;
    }
    if (b->interrupted_gen == b->item_gen)
        return; /* audio of the response the caller interrupted: never after a clear */
    while (len > 0) {
        size_t n = len > CHUNK_B64 ? CHUNK_B64 : len;
        send_chunk(b, b64, n);
        b64 += n;
        len -= n;
    }
}

static void ai_response_done(void *p)
{
    bridge_t *b = p;
    if (b->unmarked_ms > 0 && b->interrupted_gen != b->item_gen)
        send_mark(b); /* the tail of the response, so its end is known too */
    b->response_active = 0;
    maybe_end(b);
}

static void barge_in(bridge_t *b)
{
    /* the agent is speaking while its response goes on, even when the leg has played all of it
     * that came so far: an AI streaming at the pace of speech leaves the leg's queue empty (no
     * mark pending) between its chunks, and the response's next audio must not play then */
    if ((b->mark_count == 0 && !b->response_active) || b->interrupted_gen == b->item_gen)
        return; /* nothing of the agent is playing */
    if (!b->leg_gone)
        b->leg->clear(b->ctx);
    b->clears++;
    b->interrupted_gen = b->item_gen;
    b->mark_count = 0; /* their echoes no longer mean anything */
    if (b->agent_cursor_ms > b->stream_ms)
        b->agent_cursor_ms = b->stream_ms;
    b->prov->interrupt(b->ai, b->item, b->item_played_ms);
    event(b, "barge_in", json_pack("{s:s, s:i}", "item", b->item, "audio_end_ms", (int)b->item_played_ms));
}

static void ai_speech_started(void *p)
{
    bridge_t *b = p;
    heard(b);
    if (b->state == B_LIVE)
        barge_in(b);
}

static void ai_caller_active(void *p)
{
    heard(p);
}

static void ai_transcript(void *p, ai_role_t role, const char *text)
{
    bridge_t *b = p;
    if (text == NULL || text[0] == '\0' || b->call.id == 0)
        return;
    if (store_transcript_add(b->w->store, b->call.id, role == AI_ROLE_CALLER ? "caller" : "agent", text) != 0)
        log_error("db.error", "op=transcript session=%s error=\"%s\"", b->call.session_id, store_errmsg(b->w->store));
}

static int date_ok(const char *s)
{
    int y, m, d;
    char tail;
    return s != NULL && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && y >= 2000 &&
           y < 2200 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static int time_ok(const char *s)
{
    int h, mi;
    char tail;
    return s != NULL && strlen(s) == 5 && sscanf(s, "%2d:%2d%c", &h, &mi, &tail) == 2 && h >= 0 && h < 24 && mi >= 0 &&
           mi < 60;
}

static const char *str_arg(json_t *args, const char *key, size_t max)
{
    json_t *v = json_object_get(args, key);
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max ? json_string_value(v) : NULL;
}

static void tool_reply(bridge_t *b, const char *call_id, json_t *out)
{
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (s != NULL && b->ai != NULL)
        b->prov->tool_result(b->ai, call_id, s);
    free(s);
}

/* A booking or a ticket: the model is told its id, so the insert is awaited, on a fiber where the
 * store is PostgreSQL (worker_run), holding the bridge: the call may end meanwhile. */
typedef struct tool_job {
    bridge_t *b;
    int ticket;
    char *call_id; /* the model's, for the answer */
    json_t *args;  /* checked by ai_tool_call */
} tool_job_t;

static void tool_run(void *p)
{
    tool_job_t *j = p;
    bridge_t *b = j->b;
    store_t *st = b->w->store;
    const char *prio = str_arg(j->args, "priority", 10);
    long id = 0;
    int rc = j->ticket ? store_ticket_add(st, b->call.tenant_id, b->call.id, str_arg(j->args, "summary", 1000),
                                          prio ? prio : "normal", &id)
                       : store_booking_add(st, b->call.tenant_id, b->call.id, str_arg(j->args, "name", 120),
                                           str_arg(j->args, "date", 10), str_arg(j->args, "time", 5),
                                           str_arg(j->args, "notes", 1000), &id);
    store_defer_writes(st, 1); /* from here on, as on the loop: nothing waits */
    if (rc != 0)
        tool_reply(b, j->call_id,
                   json_pack("{s:b, s:s}", "ok", 0, "error",
                             j->ticket ? "the ticket could not be saved" : "the booking could not be saved"));
    else if (j->ticket) {
        event(b, "ticket.created", json_pack("{s:I, s:s}", "id", (json_int_t)id, "priority", prio ? prio : "normal"));
        tool_reply(b, j->call_id, json_pack("{s:b, s:I}", "ok", 1, "ticket_id", (json_int_t)id));
    } else {
        event(b, "booking.created",
              json_pack("{s:I, s:O, s:O, s:O}", "id", (json_int_t)id, "name", json_object_get(j->args, "name"), "date",
                        json_object_get(j->args, "date"), "time", json_object_get(j->args, "time")));
        tool_reply(b, j->call_id, json_pack("{s:b, s:I}", "ok", 1, "booking_id", (json_int_t)id));
    }
    store_defer_writes(st, 0);
    json_decref(j->args);
    free(j->call_id);
    free(j);
    bridge_unref(b);
}

static void tool_save(bridge_t *b, const char *call_id, int ticket, json_t *args)
{
    tool_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->call_id = strdup(call_id ? call_id : "")) == NULL) {
        free(j);
        tool_reply(b, call_id, json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory"));
        return;
    }
    j->b = b;
    j->ticket = ticket;
    j->args = json_incref(args);
    b->refs++;
    if (worker_run(b->w, tool_run, j) != 0)
        tool_run(j); /* no fiber to be had: it waits here */
}

static void ai_tool_call(void *p, const char *call_id, const char *name, const char *args_json)
{
    bridge_t *b = p;
    if (b->state != B_LIVE)
        return;
    json_t *args = json_loads(args_json ? args_json : "{}", 0, NULL);
    if (!json_is_object(args)) {
        json_decref(args);
        args = json_object();
    }
    event(b, "tool.call", json_pack("{s:s, s:O}", "name", name, "arguments", args));
    if (strcmp(name, "transfer_to_agent") == 0) {
        /* only the tenant's configured chain is ever dialed: the model names no number */
        const char *reason = str_arg(args, "reason", 120);
        tool_reply(b, call_id, json_pack("{s:b, s:s}", "ok", 1, "message", "transferring the caller now"));
        end_after_speech(b, "transfer", reason ? reason : "caller asked for a person");
        maybe_end(b);
    } else if (strcmp(name, "end_call") == 0) {
        tool_reply(b, call_id, json_pack("{s:b}", "ok", 1));
        end_after_speech(b, "hangup", "agent ended the call");
        b->need_reply = 1; /* the goodbye the model says next must play out */
        b->end_gen = b->item_gen;
    } else if (strcmp(name, "book_appointment") == 0) {
        if (str_arg(args, "name", 120) == NULL || !date_ok(str_arg(args, "date", 10)) ||
            !time_ok(str_arg(args, "time", 5)))
            tool_reply(
                b, call_id,
                json_pack("{s:b, s:s}", "ok", 0, "error", "need name, date as YYYY-MM-DD and time as HH:MM (24-hour)"));
        else
            tool_save(b, call_id, 0, args);
    } else if (strcmp(name, "raise_ticket") == 0) {
        const char *prio = str_arg(args, "priority", 10);
        if (prio == NULL)
            prio = "normal";
        if (str_arg(args, "summary", 1000) == NULL || (strcmp(prio, "low") != 0 && strcmp(prio, "normal") != 0 &&
                                                       strcmp(prio, "high") != 0 && strcmp(prio, "urgent") != 0))
            tool_reply(
                b, call_id,
                json_pack("{s:b, s:s}", "ok", 0, "error", "need a summary; priority low, normal, high or urgent"));
        else
            tool_save(b, call_id, 1, args);
    } else {
        tool_reply(b, call_id, json_pack("{s:b, s:s}", "ok", 0, "error", "no such tool"));
    }
    json_decref(args);
}

static void ai_error(void *p, const char *what, int fatal)
{
    bridge_t *b = p;
    event(b, fatal ? "ai.failed" : "ai.error", json_pack("{s:s}", "what", what ? what : "unknown"));
    metrics_ai_error(&b->w->metrics, b->ai_kind);
    /* the caller is never left in silence: a dead AI hands the call to a person */
    if (fatal && b->state < B_DONE)
        fall_back(b, METRICS_FALLBACK_AI_FAILED, "ai_failed", 1000);
}

static const ai_events_t events = {ai_ready,         ai_audio,      ai_response_done, ai_speech_started,
                                   ai_caller_active, ai_transcript, ai_tool_call,     ai_error};

/* ---- what the media leg does ---- */

bridge_t *bridge_new(worker_t *w, const media_leg_t *leg, void *ctx)
{
    bridge_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->w = w;
    b->leg = leg;
    b->ctx = ctx;
    b->interrupted_gen = UINT32_MAX;
    uv_timer_init(&w->loop, &b->timer);
    b->start_deadline = uv_now(&w->loop) + START_TIMEOUT_MS;
    rearm(b);
    return b;
}

/* The agent type's own instructions, else the tenant's, else the setting. */
static const char *instructions_for(const config_t *cfg, const store_tenant_t *tn, const char *agent_type, char *buf,
                                    size_t bufsz)
{
    if (agent_type[0] != '\0' && tn->agent_instructions[0] != '\0') {
        json_t *all = json_loads(tn->agent_instructions, 0, NULL);
        json_t *one = json_object_get(all, agent_type);
        if (json_is_string(one)) {
            snprintf(buf, bufsz, "%s", json_string_value(one));
            json_decref(all);
            return buf;
        }
        json_decref(all);
    }
    return tn->ai_instructions[0] != '\0' ? tn->ai_instructions : cfg->ai_instructions;
}

static void open_recording(bridge_t *b)
{
    const config_t *cfg = &b->w->app->cfg;
    if (cfg->recordings_dir == NULL || cfg->recordings_dir[0] == '\0')
        return;
    char dir[1024], path[1200], err[256];
    snprintf(dir, sizeof(dir), "%s/%ld", cfg->recordings_dir, b->call.tenant_id);
    if ((mkdir(cfg->recordings_dir, 0750) != 0 && errno != EEXIST) || (mkdir(dir, 0750) != 0 && errno != EEXIST)) {
        log_error("recording.failed", "session=%s error=\"cannot create %s\"", b->call.session_id, dir);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.wav", dir, b->call.session_id);
    b->rec = wavrec_open(path, err, sizeof(err));
    if (b->rec == NULL) {
        log_error("recording.failed", "session=%s error=\"%s\"", b->call.session_id, err);
        return;
    }
    if (store_call_recording_path(b->w->store, b->call.id, path) != 0)
        log_error("db.error", "op=recording_path session=%s error=\"%s\"", b->call.session_id,
                  store_errmsg(b->w->store));
}

/* What bridge_on_start was given, copied: the lookups may wait (PostgreSQL, on a fiber). */
typedef struct start_job {
    bridge_t *b;
    int leg_ok, ref_ok, session_ok;
    char leg_id[64], call_ref[128], session[128];
} start_job_t;

static void start_run(void *p);

int bridge_on_start(bridge_t *b, const char *leg_id, const char *call_ref, const char *session_id)
{
    if (b->state != B_WAIT_START || b->starting)
        return 0;
    start_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        fall_back(b, METRICS_FALLBACK_OTHER, "out of memory", 1011);
        return -1;
    }
    j->b = b;
    b->started_ms = uv_now(&b->w->loop);
    /* too long for the copy is too long for the row it must match: refused as a mismatch */
    j->leg_ok = leg_id != NULL && leg_id[0] != '\0' && strlen(leg_id) < sizeof(b->leg_id);
    j->ref_ok = call_ref != NULL && strlen(call_ref) < sizeof(j->call_ref);
    j->session_ok = session_id != NULL && strlen(session_id) < sizeof(j->session);
    snprintf(j->leg_id, sizeof(j->leg_id), "%s", j->leg_ok ? leg_id : "");
    snprintf(j->call_ref, sizeof(j->call_ref), "%s", j->ref_ok ? call_ref : "");
    snprintf(j->session, sizeof(j->session), "%s", j->session_ok ? session_id : "");
    b->starting = 1;
    b->start_rc = 0;
    b->refs++;
    if (worker_run(b->w, start_run, j) != 0)
        start_run(j);   /* no fiber to be had: it waits here */
    return b->start_rc; /* 0 while a lookup still waits */
}

static void start_live(bridge_t *b, const store_tenant_t *tn);

static void start_run(void *p)
{
    start_job_t *j = p;
    bridge_t *b = j->b;
    store_t *st = b->w->store;
    store_call_t call;
    memset(&call, 0, sizeof(call));
    int rc = j->session_ok ? store_call_by_session(st, j->session, &call) : 1;
    store_tenant_t tn;
    memset(&tn, 0, sizeof(tn));
    tn.max_concurrent_calls = -1;
    if (rc == 0 && store_tenant_get(st, call.tenant_id, &tn) != 0) {
        memset(&tn, 0, sizeof(tn));
        tn.max_concurrent_calls = -1;
        tn.id = call.tenant_id;
    }
    store_defer_writes(st, 1); /* from here on, as on the loop: nothing waits */
    b->starting = 0;
    if (b->leg_gone || b->state != B_WAIT_START) {
        /* the leg went, or the start timed out, while the lookups waited */
    } else if (rc != 0 || !j->leg_ok ||
               (call.call_sid[0] != '\0' && (!j->ref_ok || strcmp(j->call_ref, call.call_sid) != 0))) {
        log_warn("media.refused", "session=%.40s call_sid=%.40s why=\"%s\"", j->session_ok ? j->session : "-",
                 j->ref_ok ? j->call_ref : "-", rc != 0 ? "unknown session" : "call does not match");
        b->call.id = 0; /* nothing to write for a stranger */
        finish(b, NULL, rc != 0 ? "unknown session" : "call mismatch", 1008);
        b->start_rc = -1;
    } else {
        b->call = call;
        snprintf(b->leg_id, sizeof(b->leg_id), "%s", j->leg_id);
        start_live(b, &tn);
    }
    store_defer_writes(st, 0);
    free(j);
    bridge_unref(b);
}

static void start_live(bridge_t *b, const store_tenant_t *tn)
{
    const config_t *cfg = &b->w->app->cfg;
    store_call_stream(b->w->store, b->call.id, b->leg_id);
    call_policy_t pol;
    policy_resolve(cfg, tn, &pol);
    b->ai_kind = pol.ai;
    b->prov = ai_provider_get(pol.ai == AI_OPENAI       ? "openai"
                              : pol.ai == AI_ELEVENLABS ? "elevenlabs"
                              : pol.ai == AI_ECHO       ? "echo"
                                                        : NULL);
    event(b, "stream.started",
          json_pack("{s:s, s:s}", "stream_sid", b->leg_id, "provider", b->prov ? b->prov->name : "none"));
    if (b->prov == NULL) {
        fall_back(b, METRICS_FALLBACK_NO_AI, "no_ai", 1000);
        return;
    }
    open_recording(b);
    char ibuf[8192];
    ai_open_t p = {
        .instructions = instructions_for(cfg, tn, b->call.agent_type, ibuf, sizeof(ibuf)),
        .voice = tn->ai_voice[0] ? tn->ai_voice : cfg->ai_voice,
        .greeting = tn->greeting[0] ? tn->greeting : NULL,
        .tools = tools,
        .ntools = sizeof(tools) / sizeof(tools[0]),
        .session_id = b->call.session_id,
    };
    b->state = B_CONNECTING;
    b->connect_deadline = uv_now(&b->w->loop) + (uint64_t)cfg->ai_connect_timeout_ms;
    b->ai = b->prov->open(b->w, &p, &events, b);
    if (b->ai == NULL) {
        event(b, "ai.failed", json_pack("{s:s}", "what", "could not open a session"));
        metrics_ai_error(&b->w->metrics, b->ai_kind);
        fall_back(b, METRICS_FALLBACK_AI_FAILED, "ai_failed", 1000);
        return;
    }
    rearm(b);
}

void bridge_on_media(bridge_t *b, const char *b64, size_t len, uint64_t timestamp_ms)
{
    metrics_t *mt = &b->w->metrics;
    b->frames_in++;
    metrics_media_frame(mt, b->ai_kind, METRICS_MEDIA_IN);
    if (timestamp_ms > b->stream_ms)
        b->stream_ms = timestamp_ms;
    if (b->rec != NULL) {
        unsigned char pcm[512];
        long n = ai_b64_decode(b64, len, pcm, sizeof(pcm));
        if (n > 0) {
            wavrec_write(b->rec, 0, timestamp_ms, pcm, (size_t)n);
            metrics_recording_bytes(mt, (uint64_t)n);
        }
    }
    if (b->state == B_LIVE || b->state == B_ENDING)
        b->prov->send_audio(b->ai, b64, len);
    else {
        b->dropped_early++; /* before the AI is there, the caller hears silence anyway */
        metrics_media_dropped(mt, b->ai_kind, METRICS_DROP_EARLY, 1);
    }
}

void bridge_on_mark(bridge_t *b, uint32_t seq)
{
    while (b->mark_count > 0) {
        mark_t *m = &b->marks[b->mark_head];
        if ((int32_t)(m->seq - seq) > 0)
            break; /* a later mark: this echo was for one forgotten by a clear */
        if (m->item_gen == b->item_gen)
            b->item_played_ms = m->item_ms;
        b->mark_head = (b->mark_head + 1) % MARKS;
        b->mark_count--;
    }
    maybe_end(b);
}

void bridge_on_dtmf(bridge_t *b, const char *digit)
{
    event(b, "dtmf", json_pack("{s:s?}", "digit", digit));
    heard(b);
    if (digit != NULL && strcmp(digit, "0") == 0 && (b->state == B_LIVE || b->state == B_CONNECTING))
        finish(b, "transfer", "caller pressed 0", 1000);
}

void bridge_on_stop(bridge_t *b)
{
    event(b, "stream.stopped", counters(b));
    if (b->state < B_DONE) {
        /* the platform ended the audio (the caller hung up, or the call moved on) */
        b->state = B_DONE;
        close_ai(b);
        rearm(b);
    }
}

void bridge_on_protocol_error(bridge_t *b, const char *what, int code)
{
    event(b, "stream.protocol_error", json_pack("{s:s, s:i}", "what", what, "close_code", code));
    fall_back(b, METRICS_FALLBACK_OTHER, what, code);
}

static void free_bridge(uv_handle_t *h)
{
    bridge_t *b = (bridge_t *)h;
    b->closed = 1;
    if (b->refs == 0)
        free(b);
}

void bridge_leg_gone(bridge_t *b)
{
    b->leg_gone = 1;
    if (b->state < B_DONE) {
        /* the leg dropped without a stop */
        event(b, "stream.dropped", counters(b));
        b->state = B_DONE;
    }
    close_ai(b);
    if (b->rec != NULL) {
        if (wavrec_close(b->rec) != 0)
            log_error("recording.failed", "session=%s error=\"write failed\"", b->call.session_id);
        b->rec = NULL;
    }
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, free_bridge);
}

size_t bridge_memory(const bridge_t *b)
{
    return sizeof(*b) + (b->rec != NULL ? sizeof(unsigned char) * WAVREC_WINDOW_MS * 16 + 64 : 0);
}
