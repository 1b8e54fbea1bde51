/* One Asterisk call: answer, bridge and media, the AI bridge, the transfer chain, the end. */
#include "ai/ai.h"
#include "asterisk/app_internal.h"
#include "asterisk/ari_url.h"
#include "server/ids.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>

#define APOLOGY_SOUND   "sound:cannot-complete-temp-error" /* Asterisk's core sounds */
#define VM_PROMPT_SOUND "sound:vm-intro"
#define PLAY_TIMEOUT_MS 20000
#define RECORD_MAX_S    120

/* ---- record keeping ---- */

static void event(ast_call_t *c, const char *type, json_t *detail)
{
    store_t *st = c->app->w->store;
    char *json = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    if (c->call.id != 0 && store_call_event(st, c->call.id, type, json) != 0)
        log_error("db.error", "op=call_event session=%s error=\"%s\"", c->call.session_id, store_errmsg(st));
    log_info("call.event", "session=%s channel=%s type=%s platform=asterisk", c->call.session_id, c->caller, type);
    free(json);
}

static void set_status(ast_call_t *c, const char *status, long duration_s)
{
    if (c->call.id == 0)
        return;
    store_t *st = c->app->w->store;
    store_status_t s = {
        .session_id = c->call.session_id, .status = status, .seq = -1, .duration_s = duration_s, .sip_code = -1};
    int applied = 0;
    if (store_call_status(st, &s, &applied) < 0)
        log_error("db.error", "op=call_status session=%s error=\"%s\"", c->call.session_id, store_errmsg(st));
}

static void hangup_channel(asterisk_t *a, const char *id, const char *reason)
{
    const char *path[] = {"channels", id, NULL};
    const char *query[] = {"reason", reason, NULL};
    ast_rest(a, "DELETE", path, query, NULL, 0);
}

/* ---- the end ---- */

/* The AI part is over: the RTP leg closed (the bridge lets go), the ExternalMedia channel deleted. */
static void media_down(ast_call_t *c)
{
    if (c->leg != NULL) {
        /* what the leg saw, bad input included: the call's record, not a log line per packet */
        rtp_leg_stats_t st;
        rtp_leg_stats(c->leg, &st);
        event(c, "rtp.stats",
              json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_packets",
                        (json_int_t)st.rx_packets, "tx_packets", (json_int_t)st.tx_packets, "tx_silence",
                        (json_int_t)st.tx_silence, "lost", (json_int_t)st.lost, "late", (json_int_t)st.late,
                        "duplicates", (json_int_t)st.duplicates, "reordered", (json_int_t)st.reordered, "wrong_pt",
                        (json_int_t)st.wrong_pt, "bad", (json_int_t)st.bad, "foreign", (json_int_t)st.foreign,
                        "not_rtp", (json_int_t)st.not_rtp, "oversized", (json_int_t)st.oversized, "early",
                        (json_int_t)st.early, "out_dropped", (json_int_t)st.out_dropped));
        rtp_leg_close(c->leg); /* the bridge gets bridge_leg_gone() */
        c->leg = NULL;
        c->b = NULL;
    }
    if (c->em[0] != '\0') {
        char id[sizeof(c->em)];
        memcpy(id, c->em, sizeof(id));
        c->em[0] = '\0'; /* its StasisEnd is ours, not news */
        hangup_channel(c->app, id, "normal");
    }
}

static metrics_stage_t stage_of(const ast_call_t *c, int attempt)
{
    return metrics_stage(attempt, policy_voicemail_attempt(&c->pol));
}

void ast_call_end(ast_call_t *c, const char *reason, int hangup)
{
    asterisk_t *a = c->app;
    media_down(c);
    if (c->state == S_DIALING && c->call.id != 0) {
        store_call_transfer_end(a->w->store, c->call.id, c->attempt, "canceled", NULL);
        metrics_transfer_outcome(&a->w->metrics, PLATFORM_ASTERISK, stage_of(c, c->attempt), "canceled");
    }
    if (c->xfer[0] != '\0')
        hangup_channel(a, c->xfer, "normal");
    if (hangup)
        hangup_channel(a, c->caller, "normal");
    if (c->bridge[0] != '\0') {
        const char *path[] = {"bridges", c->bridge, NULL};
        ast_rest(a, "DELETE", path, NULL, NULL, 0);
    }
    uint64_t now = uv_now(&a->w->loop);
    long dur = c->answered_ms ? (long)((now - c->answered_ms) / 1000) : 0;
    event(c, "call.ended", json_pack("{s:s, s:I}", "reason", reason, "duration_s", (json_int_t)dur));
    set_status(c, c->answered_ms ? "completed" : "canceled", dur);
    ast_call_free(c);
}

/* ---- the transfer chain ---- */

static void run_stage(ast_call_t *c, int attempt);

static void stop_ringing(ast_call_t *c)
{
    if (!c->ringing)
        return;
    c->ringing = 0;
    const char *ring[] = {"channels", c->caller, "ring", NULL};
    ast_rest(c->app, "DELETE", ring, NULL, NULL, 0);
}

static int can_dial(const target_t *t)
{
    (void)t;
    return 1; /* numbers and SIP URIs go through ASTERISK_TRUNK, dial strings as they are */
}

static void next_stage(ast_call_t *c, const char *outcome, json_t *detail)
{
    if (detail != NULL)
        json_object_set_new(detail, "outcome", json_string(outcome));
    if (c->call.id != 0) {
        char *json = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
        if (store_call_transfer_end(c->app->w->store, c->call.id, c->attempt, outcome, json) != 0)
            log_error("db.error", "op=transfer_end session=%s error=\"%s\"", c->call.session_id,
                      store_errmsg(c->app->w->store));
        free(json);
        metrics_transfer_outcome(&c->app->w->metrics, PLATFORM_ASTERISK, stage_of(c, c->attempt), outcome);
    }
    json_decref(detail);
    log_info("call.event", "session=%s type=transfer.outcome attempt=%d outcome=%s platform=asterisk",
             c->call.session_id, c->attempt, outcome);
    c->xfer[0] = '\0';
    run_stage(c, c->attempt + 1);
}

static void on_originated(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_DIALING || (status >= 200 && status < 300))
        return;
    /* Asterisk refused the originate (a bad endpoint, 400/500): the stage failed */
    next_stage(c, "failed",
               json_pack("{s:i, s:s?}", "http_status", (int)status, "message",
                         json_string_value(json_object_get(body, "message"))));
}

static void on_play_timeout(uv_timer_t *t)
{
    ast_on_playback_done(t->data); /* PlaybackFinished never came: go on as if it had */
}

static void play(ast_call_t *c, const char *media)
{
    snprintf(c->playback, sizeof(c->playback), "sbp-%s-%u", c->call.session_id, ++c->playbacks);
    const char *path[] = {"channels", c->caller, "play", NULL};
    const char *query[] = {"media", media, "playbackId", c->playback, NULL};
    ast_rest(c->app, "POST", path, query, NULL, 0);
    uv_timer_start(&c->timer, on_play_timeout, PLAY_TIMEOUT_MS, 0);
}

static void record_stage(ast_call_t *c, int attempt, const char *kind, const char *target, int voicemail)
{
    if (c->call.id == 0 || attempt == c->api_attempt)
        return;
    json_t *ev = json_pack("{s:i, s:s, s:s?, s:b, s:s}", "attempt", attempt, "stage", kind, "target", target,
                           "voicemail", voicemail, "platform", "asterisk");
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_transfer_begin(c->app->w->store, c->call.id, attempt, target, json) != 0)
        log_error("db.error", "op=transfer_begin session=%s error=\"%s\"", c->call.session_id,
                  store_errmsg(c->app->w->store));
    free(json);
    if (strcmp(kind, "goodbye") != 0) /* the goodbye tries no one: not an attempt */
        metrics_transfer_attempt(&c->app->w->metrics, PLATFORM_ASTERISK, stage_of(c, attempt));
}

static void run_stage(ast_call_t *c, int attempt)
{
    asterisk_t *a = c->app;
    const config_t *cfg = &a->w->app->cfg;
    const char *business = c->outbound ? c->call.from_number : c->call.to_number;
    const char *caller = c->outbound ? c->call.to_number : c->call.from_number;
    stage_ctx_t x = {cfg, &c->pol, c->call.session_id, caller, business, can_dial};
    stage_t st;
    for (;;) {
        policy_stage(&x, attempt, &st);
        c->attempt = st.attempt;
        if (st.kind != STAGE_DIAL)
            break;
        char endpoint[ARI_DIALSTRING_MAX + 1];
        if (ari_dialstring(st.target.value, cfg->asterisk_trunk, endpoint, sizeof(endpoint)) >= 0) {
            record_stage(c, st.attempt, "dial", st.raw, st.voicemail);
            char timeout[16];
            snprintf(timeout, sizeof(timeout), "%d", cfg->transfer_timeout);
            snprintf(c->xfer, sizeof(c->xfer), "sbx-%s-%d", c->call.session_id, st.attempt);
            c->state = S_DIALING;
            if (!c->ringing) {
                const char *ring[] = {"channels", c->caller, "ring", NULL};
                ast_rest(a, "POST", ring, NULL, NULL, 0); /* the caller hears ringing meanwhile */
                c->ringing = 1;
            }
            const char *path[] = {"channels", NULL};
            const char *query[] = {"endpoint",   endpoint,  "app",   cfg->ari_app, "appArgs", "transfer", "callerId",
                                   st.caller_id, "timeout", timeout, "channelId",  c->xfer,   NULL};
            if (ast_rest(a, "POST", path, query, on_originated, c->serial) != 0)
                next_stage(c, "failed", json_pack("{s:s}", "why", "the originate could not be sent"));
            return;
        }
        /* a number or URI with no ASTERISK_TRUNK to carry it: this platform cannot dial it */
        log_warn("transfer.skipped", "session=%s attempt=%d why=\"no ASTERISK_TRUNK for %s\"", c->call.session_id,
                 st.attempt, st.raw);
        attempt = st.attempt + 1;
    }
    stop_ringing(c); /* before a prompt or the apology */
    if (st.kind == STAGE_RECORD) {
        record_stage(c, st.attempt, "voicemail_record", NULL, 1);
        c->state = S_PROMPT;
        play(c, VM_PROMPT_SOUND);
        return;
    }
    record_stage(c, st.attempt, "goodbye", NULL, 0);
    c->state = S_GOODBYE;
    play(c, APOLOGY_SOUND);
}

static void on_record_started(void *data, uint64_t key, long status, json_t *body);

void ast_on_playback_done(ast_call_t *c)
{
    c->playback[0] = '\0';
    uv_timer_stop(&c->timer);
    if (c->state == S_PROMPT) {
        /* the message: Asterisk beeps first, # ends it */
        char name[64], max[16];
        snprintf(name, sizeof(name), "sb-%s", c->call.session_id);
        snprintf(max, sizeof(max), "%d", RECORD_MAX_S);
        const char *path[] = {"channels", c->caller, "record", NULL};
        const char *query[] = {"name", name,          "format", "wav",      "maxDurationSeconds", max, "beep",
                               "true", "terminateOn", "#",      "ifExists", "overwrite",          NULL};
        ast_rest(c->app, "POST", path, query, on_record_started, c->serial);
        event(c, "voicemail.recording", json_pack("{s:s}", "name", name));
        c->state = S_RECORDING;
        uv_timer_start(&c->timer, on_play_timeout, (RECORD_MAX_S + 5) * 1000, 0);
        return;
    }
    if (c->state == S_GOODBYE || c->state == S_RECORDING) {
        c->end_reason = c->state == S_GOODBYE ? "chain_exhausted" : "voicemail";
        hangup_channel(c->app, c->caller, "normal"); /* its events end the call */
    }
}

void ast_on_recording_done(ast_call_t *c, const char *state)
{
    if (c->state != S_RECORDING)
        return;
    event(c, "voicemail.recorded", json_pack("{s:s?}", "state", state));
    ast_on_playback_done(c); /* hangs up */
}

static void on_record_started(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_RECORDING || (status >= 200 && status < 300))
        return;
    /* Asterisk would not record: the caller is not left in silence */
    event(c, "voicemail.failed",
          json_pack("{s:i, s:s?}", "http_status", (int)status, "message",
                    json_string_value(json_object_get(body, "message"))));
    c->state = S_GOODBYE;
    play(c, APOLOGY_SOUND);
}

/* ---- the AI bridge and its media ---- */

static void on_pending(uv_timer_t *t)
{
    ast_call_t *c = t->data;
    const char *action = c->pending;
    c->pending = NULL;
    media_down(c);
    if (action != NULL && strcmp(action, "hangup") == 0) {
        event(c, "call.hangup", json_pack("{s:s}", "reason", c->pending_reason));
        c->end_reason = "agent_hangup";
        hangup_channel(c->app, c->caller, "normal");
        return;
    }
    /* "transfer", and a bridge that refused the leg: a person takes the call */
    run_stage(c, 0);
}

/* From inside the bridge: only remember, act from the loop. */
static void on_leg_closed(void *owner, const char *next_action, const char *reason)
{
    ast_call_t *c = owner;
    if (c->state != S_AI && c->state != S_MEDIA)
        return;
    c->pending = next_action != NULL && strcmp(next_action, "hangup") == 0 ? "hangup" : "transfer";
    snprintf(c->pending_reason, sizeof(c->pending_reason), "%s", reason ? reason : "");
    c->state = S_DECIDING; /* nothing more from the AI */
    uv_timer_start(&c->timer, on_pending, 0, 0);
}

static void on_em_added(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_MEDIA)
        return;
    if (status < 200 || status >= 300) {
        event(c, "asterisk.media_failed", json_pack("{s:s, s:i}", "step", "addChannel", "http_status", (int)status));
        media_down(c);
        run_stage(c, 0);
        return;
    }
    c->state = S_AI;
    c->b = bridge_new(c->app->w, &rtp_leg_media, c->leg);
    if (c->b == NULL) {
        media_down(c);
        run_stage(c, 0);
        return;
    }
    rtp_leg_attach(c->leg, c->b);
    /* a refusal (unknown session) closes the leg through on_leg_closed: the chain takes over */
    bridge_on_start(c->b, c->em, c->call.call_sid[0] ? c->caller : NULL, c->call.session_id);
}

static void maybe_add_em(ast_call_t *c)
{
    if (!c->em_started || !c->em_ready || c->em_added)
        return;
    c->em_added = 1;
    const char *path[] = {"bridges", c->bridge, "addChannel", NULL};
    const char *query[] = {"channel", c->em, NULL};
    ast_rest(c->app, "POST", path, query, on_em_added, c->serial);
}

static void on_em_created(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_MEDIA)
        return;
    ari_channel_t ch;
    char err[ARI_ERROR_LEN] = "";
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    int ok = status >= 200 && status < 300 && text != NULL &&
             ari_event_parse_media(text, strlen(text), &ch, err) == ARI_EVENT_OK && c->leg != NULL &&
             rtp_leg_set_remote(c->leg, ch.rtp_address, (int)ch.rtp_port) == 0;
    free(text);
    if (!ok) {
        log_error("asterisk.media_failed", "session=%s http_status=%ld why=\"%s\"", c->call.session_id, status,
                  err[0] ? err : "no usable UNICASTRTP_LOCAL_ADDRESS/PORT");
        event(c, "asterisk.media_failed", json_pack("{s:s, s:i}", "step", "externalMedia", "http_status", (int)status));
        media_down(c);
        run_stage(c, 0);
        return;
    }
    log_info("asterisk.media", "session=%s rtp_local=%s:%u", c->call.session_id, ch.rtp_address, ch.rtp_port);
    c->em_ready = 1;
    maybe_add_em(c);
}

static void start_media(ast_call_t *c)
{
    asterisk_t *a = c->app;
    const config_t *cfg = &a->w->app->cfg;
    char err[256], host[320];
    int port = 0;
    c->state = S_MEDIA;
    c->leg = rtp_leg_open(a->pool, c->call.session_id, on_leg_closed, c, &port, err, sizeof(err));
    if (c->leg == NULL) {
        log_error("asterisk.rtp_failed", "session=%s why=\"%s\"", c->call.session_id, err);
        event(c, "asterisk.media_failed", json_pack("{s:s, s:s}", "step", "rtp", "why", err));
        run_stage(c, 0);
        return;
    }
    /* an IPv6 address is written in brackets before the port */
    snprintf(host, sizeof(host), strchr(cfg->rtp_address, ':') ? "[%s]:%d" : "%s:%d", cfg->rtp_address, port);
    snprintf(c->em, sizeof(c->em), "sbem-%s", c->call.session_id);
    const char *path[] = {"channels", "externalMedia", NULL};
    const char *query[] = {"app",
                           cfg->ari_app,
                           "external_host",
                           host,
                           "format",
                           "ulaw",
                           "encapsulation",
                           "rtp",
                           "transport",
                           "udp",
                           "connection_type",
                           "client",
                           "direction",
                           "both",
                           "channelId",
                           c->em,
                           "data",
                           c->call.session_id,
                           NULL};
    if (ast_rest(a, "POST", path, query, on_em_created, c->serial) != 0) {
        media_down(c);
        run_stage(c, 0);
    }
}

static void on_caller_added(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_ANSWERING)
        return;
    if (status < 200 || status >= 300) {
        log_error("asterisk.bridge_failed", "session=%s http_status=%ld", c->call.session_id, status);
        ast_call_end(c, "bridge_failed", 1);
        return;
    }
    if (c->pol.ai != AI_NONE && !c->pol.transfer_first && c->app->pool != NULL)
        start_media(c);
    else
        run_stage(c, 0);
}

static void on_bridge_created(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_ANSWERING)
        return;
    if (status < 200 || status >= 300) {
        log_error("asterisk.bridge_failed", "session=%s http_status=%ld", c->call.session_id, status);
        c->bridge[0] = '\0';
        ast_call_end(c, "bridge_failed", 1);
        return;
    }
    const char *path[] = {"bridges", c->bridge, "addChannel", NULL};
    const char *query[] = {"channel", c->caller, NULL};
    ast_rest(c->app, "POST", path, query, on_caller_added, c->serial);
}

/* The caller's channel is up (answered by us, or an outbound callee who picked up). */
static void answered(ast_call_t *c)
{
    c->answered_ms = uv_now(&c->app->w->loop);
    set_status(c, "in-progress", -1);
    snprintf(c->bridge, sizeof(c->bridge), "sbb-%s", c->call.session_id);
    const char *path[] = {"bridges", NULL};
    const char *query[] = {"type", "mixing", "bridgeId", c->bridge, "name", c->call.session_id, NULL};
    ast_rest(c->app, "POST", path, query, on_bridge_created, c->serial);
}

static void on_answered(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c == NULL || c->state != S_ANSWERING)
        return;
    if (status < 200 || status >= 300) {
        log_error("asterisk.answer_failed", "session=%s http_status=%ld", c->call.session_id, status);
        ast_call_end(c, "answer_failed", 1);
        return;
    }
    answered(c);
}

/* ---- events ---- */

static void resolve_policy(ast_call_t *c)
{
    policy_resolve(&c->app->w->app->cfg, &c->tenant, &c->pol);
}

/* The lookups come first and the call is made after them: with PostgreSQL they wait on a fiber
 * (later events queue behind this one), and nothing of the call exists yet to change meanwhile. */
void ast_inbound(asterisk_t *a, const ari_event_t *ev)
{
    const config_t *cfg = &a->w->app->cfg;
    store_t *st = a->w->store;
    store_tenant_t tn;
    memset(&tn, 0, sizeof(tn));
    const char *targ = ari_event_arg(ev, "tenant");
    int rc = targ != NULL ? store_tenant_get(st, atol(targ), &tn)
                          : store_tenant_for_number(st, ev->channel.exten, cfg->default_tenant_id, &tn);
    if (rc != 0) {
        /* unknown tenant= or a store failure: the settings' chain still gives the caller a person */
        log_error("db.error", "op=tenant_lookup channel=%s error=\"%s\"", ev->channel.id,
                  rc < 0 ? store_errmsg(st) : "no such tenant");
        memset(&tn, 0, sizeof(tn));
        tn.id = cfg->default_tenant_id;
        tn.max_concurrent_calls = -1;
    }
    call_policy_t pol;
    policy_resolve(cfg, &tn, &pol);
    char session[33];
    ids_session(session);
    json_t *evj = json_pack("{s:s, s:s, s:s, s:s}", "from", ev->channel.caller_number, "to", ev->channel.exten,
                            "caller_name", ev->channel.caller_name, "channel", ev->channel.name);
    char *json = json_dumps(evj, JSON_COMPACT);
    json_decref(evj);
    store_inbound_t in = {.session_id = session,
                          .tenant_id = tn.id,
                          .call_sid = ev->channel.id,
                          .from_number = ev->channel.caller_number,
                          .to_number = ev->channel.exten,
                          .status = "ringing",
                          .limit = pol.max_calls,
                          .event_json = json,
                          .platform = "asterisk"};
    store_call_t row;
    int created = 0, rejected = 0;
    rc = rc == 0 ? store_call_start_inbound(st, &in, &row, &created, &rejected) : -1;
    free(json);
    ast_call_t *c = ast_call_new(a, ev->channel.id);
    if (c == NULL) {
        hangup_channel(a, ev->channel.id, "congestion");
        return;
    }
    c->tenant = tn;
    resolve_policy(c); /* c->pol borrows from c->tenant */
    if (rc == 0) {
        c->call = row;
    } else {
        memset(&c->call, 0, sizeof(c->call));
        snprintf(c->call.session_id, sizeof(c->call.session_id), "%s", session);
        snprintf(c->call.from_number, sizeof(c->call.from_number), "%.63s", ev->channel.caller_number);
        snprintf(c->call.to_number, sizeof(c->call.to_number), "%.63s", ev->channel.exten);
    }
    log_info("call.event", "session=%s channel=%s type=%s tenant=%ld platform=asterisk", c->call.session_id,
             ev->channel.id, rejected ? "call.rejected" : "call.started", c->tenant.id);
    if (rc == 0 && created)
        metrics_call_inbound(&a->w->metrics, PLATFORM_ASTERISK, rejected);
    if (rejected) {
        /* over the tenant's live-call limit: refused before answer, as busy */
        hangup_channel(a, ev->channel.id, "busy");
        ast_call_free(c);
        return;
    }
    c->state = S_ANSWERING;
    const char *path[] = {"channels", c->caller, "answer", NULL};
    if (ast_rest(a, "POST", path, NULL, on_answered, c->serial) != 0)
        ast_call_end(c, "answer_failed", 1);
}

void ast_outbound_answered(asterisk_t *a, const ari_event_t *ev)
{
    store_t *st = a->w->store;
    store_call_t row;
    store_tenant_t tn;
    if (store_call_by_session(st, ev->channel.id + 4, &row) != 0) {
        log_warn("asterisk.unknown_outbound", "channel=%s", ev->channel.id);
        hangup_channel(a, ev->channel.id, "normal");
        return;
    }
    if (store_tenant_get(st, row.tenant_id, &tn) != 0) {
        memset(&tn, 0, sizeof(tn));
        tn.id = row.tenant_id;
        tn.max_concurrent_calls = -1;
    }
    ast_call_t *c = ast_call_new(a, ev->channel.id);
    if (c == NULL) {
        hangup_channel(a, ev->channel.id, "normal");
        return;
    }
    c->call = row;
    c->tenant = tn;
    c->outbound = 1;
    resolve_policy(c);
    event(c, "call.answered", json_pack("{s:s}", "channel", ev->channel.id));
    c->state = S_ANSWERING;
    answered(c);
}

void ast_outbound_unanswered(asterisk_t *a, const ari_event_t *ev)
{
    const char *outcome = ari_cause_outcome(ev->cause);
    store_status_t s = {.session_id = ev->channel.id + 4,
                        .status = strcmp(outcome, "completed") == 0 ? "completed" : outcome,
                        .seq = -1,
                        .duration_s = 0,
                        .sip_code = ev->tech_cause > 0 ? ev->tech_cause : -1};
    int applied = 0;
    if (store_call_status(a->w->store, &s, &applied) < 0)
        log_error("db.error", "op=call_status session=%s error=\"%s\"", s.session_id, store_errmsg(a->w->store));
    log_info("call.event", "session=%s type=outbound.unanswered cause=%d outcome=%s platform=asterisk", s.session_id,
             ev->cause, outcome);
}

void ast_on_started(ast_call_t *c, ast_chan_t which, const ari_event_t *ev)
{
    if (which == CH_MEDIA) {
        c->em_started = 1;
        maybe_add_em(c);
    } else if (which == CH_TRANSFER && c->state == S_DIALING) {
        /* the target answered: into the caller's bridge; the AI and its media are gone already */
        asterisk_t *a = c->app;
        stop_ringing(c);
        const char *path[] = {"bridges", c->bridge, "addChannel", NULL};
        const char *query[] = {"channel", c->xfer, NULL};
        ast_rest(a, "POST", path, query, NULL, 0);
        c->state = S_BRIDGED;
        if (c->call.id != 0) {
            json_t *d = json_pack("{s:i, s:s, s:s}", "attempt", c->attempt, "outcome", "completed", "channel", c->xfer);
            char *json = json_dumps(d, JSON_COMPACT);
            json_decref(d);
            if (store_call_transfer_end(a->w->store, c->call.id, c->attempt, "completed", json) != 0)
                log_error("db.error", "op=transfer_end session=%s error=\"%s\"", c->call.session_id,
                          store_errmsg(a->w->store));
            free(json);
            metrics_transfer_outcome(&a->w->metrics, PLATFORM_ASTERISK, stage_of(c, c->attempt), "completed");
        }
        event(c, "transfer.bridged", json_pack("{s:i, s:s}", "attempt", c->attempt, "channel", c->xfer));
    }
}

void ast_on_gone(ast_call_t *c, ast_chan_t which, const ari_event_t *ev)
{
    if (which == CH_CALLER) {
        if (c->b != NULL)
            bridge_on_stop(c->b); /* the caller hung up: the AI session ends with the leg */
        ast_call_end(c, c->end_reason != NULL ? c->end_reason : "caller_hangup", 0);
        return;
    }
    if (which == CH_MEDIA) {
        if (ev->type == ARI_EVENT_CHANNEL_HANGUP_REQUEST)
            return; /* StasisEnd or ChannelDestroyed follows */
        /* the ExternalMedia channel went away: the API asked for a transfer (the row says where
         * to start), or it was lost under us; either way a person takes over */
        c->em[0] = '\0';
        if (c->state == S_AI || c->state == S_MEDIA) {
            store_call_t row;
            asterisk_t *a = c->app;
            uint64_t serial = c->serial;
            int api = c->call.id != 0 && store_call_by_session(a->w->store, c->call.session_id, &row) == 0 &&
                      strcmp(row.next_action, "transfer") == 0 && strcmp(row.transfer_reason, "api") == 0;
            /* PostgreSQL: the lookup waited on a fiber; the call may have ended or moved on */
            if ((c = ast_find(a, serial)) == NULL || (c->state != S_AI && c->state != S_MEDIA))
                return;
            event(c, api ? "asterisk.api_transfer" : "asterisk.media_lost", NULL);
            media_down(c);
            c->api_attempt = api ? row.transfer_attempt : -1; /* the API recorded that attempt's start */
            run_stage(c, api ? row.transfer_attempt : 0);
        }
        return;
    }
    /* the transfer leg */
    if (c->state == S_DIALING) {
        if (ev->type != ARI_EVENT_CHANNEL_DESTROYED)
            return; /* its cause is final only here */
        next_stage(c, ari_cause_outcome(ev->cause),
                   json_pack("{s:i, s:i, s:s, s:i}", "attempt", c->attempt, "cause", ev->cause, "cause_txt",
                             ev->cause_txt, "sip_code", ev->tech_cause));
    } else if (c->state == S_BRIDGED) {
        /* the agent hung up: so does the caller */
        c->xfer[0] = '\0';
        c->end_reason = "transfer_target_hangup";
        hangup_channel(c->app, c->caller, "normal");
    }
}

void ast_on_dtmf(ast_call_t *c, char digit)
{
    char d[2] = {digit, '\0'};
    if (c->b != NULL)
        bridge_on_dtmf(c->b, d);
    else
        event(c, "dtmf", json_pack("{s:s}", "digit", d));
}

static void on_rechecked(void *data, uint64_t key, long status, json_t *body)
{
    ast_call_t *c = ast_find(data, key);
    if (c != NULL && status == 404) {
        if (c->b != NULL)
            bridge_on_stop(c->b);
        ast_call_end(c, "asterisk_restarted", 0);
    }
}

void ast_recheck_calls(asterisk_t *a)
{
    for (ast_call_t *c = a->calls; c != NULL; c = c->next) {
        const char *path[] = {"channels", c->caller, NULL};
        ast_rest(a, "GET", path, NULL, on_rechecked, c->serial);
    }
}
