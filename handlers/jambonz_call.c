/* The jambonz webhooks: the application's call hook, its call status hook, and the actionHooks
 * of the verbs we answer (the listen that carried the AI, each dial of the chain, the voicemail). */
#include "handlers/jambonz_call.h"
#include "handlers/calls.h"
#include "handlers/jambonz.h"
#include "jambonz/plan.h"
#include "server/e164.h"
#include "server/ids.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number as jambonz passes it on (carriers differ: "+14155550100", "14155550100") in E.164
 * when it reads as one; otherwise as it came ("anonymous", an extension). */
static const char *number(jambonz_req_t *j, const char *raw)
{
    char out[E164_BUFSZ];
    const char *why;
    if (raw[0] == '\0' || e164_normalize(raw, j->r->w->app->cfg.default_country_code, out, sizeof(out), &why) != 0)
        return raw;
    return h2o_strdup(&j->r->req->pool, out, SIZE_MAX).base;
}

/* The listen that carries the call to the AI (the agent greets unless it is the echo agent). */
static json_t *ai_listen(jambonz_req_t *j, const store_call_t *call, const char *greeting)
{
    const config_t *cfg = &j->r->w->app->cfg;
    char tenant_id[24], pass[33];
    snprintf(tenant_id, sizeof(tenant_id), "%ld", call->tenant_id);
    jplan_listen_t p = {
        .greeting = greeting,
        .url = jambonz_listen_url(j),
        .action_hook = jambonz_url(j, "/jambonz/action?session=%s&step=listen", call->session_id),
        .sample_rate = cfg->jambonz_sample_rate,
        .session_id = call->session_id,
        .tenant_id = tenant_id,
        .agent_type = call->agent_type[0] ? call->agent_type : NULL,
    };
    if (jambonz_ws_password(cfg, call->session_id, pass) == 0) {
        p.ws_username = call->session_id;
        p.ws_password = pass;
    }
    json_t *verbs = json_array();
    if (verbs != NULL && jplan_ai_listen(verbs, &p) != 0) {
        json_decref(verbs);
        verbs = NULL;
    }
    return verbs;
}

/* The tenant's agent runs on ElevenLabs' own number: the caller is dialed there. */
static json_t *forward_elevenlabs(jambonz_req_t *j, const store_call_t *call, const call_policy_t *policy)
{
    const config_t *cfg = &j->r->w->app->cfg;
    target_t t;
    const char *why;
    json_t *verbs = json_array();
    if (verbs == NULL || target_parse(cfg->elevenlabs_phone_number, cfg->default_country_code, &t, &why) != 0) {
        json_decref(verbs);
        return NULL;
    }
    int outbound = call->direction[0] == 'o';
    const char *caller = outbound ? call->to_number : call->from_number;
    jplan_transfer_t p = {
        .target = &t,
        .caller_id = policy->caller_id == CALLER_ID_ORIGINAL && caller[0] == '+'
                         ? caller
                         : (outbound ? call->from_number : call->to_number),
        .timeout_s = cfg->transfer_timeout,
        .action_hook = jambonz_url(j, "/jambonz/action?session=%s&step=forward", call->session_id),
        .trunk = cfg->jambonz_trunk,
        .answer_on_bridge = 1,
    };
    if (jplan_transfer(verbs, &p) != 0) {
        json_decref(verbs);
        return NULL;
    }
    calls_event(j->r, call, "forward.elevenlabs", json_pack("{s:s}", "to", cfg->elevenlabs_phone_number));
    return verbs;
}

/* The store failed: still give the caller a person, through the settings' chain, with a
 * session no row has (later hooks answer the apology). */
static void answer_without_store(jambonz_req_t *j, const char *from, const char *to)
{
    const config_t *cfg = &j->r->w->app->cfg;
    store_tenant_t none;
    memset(&none, 0, sizeof(none));
    none.id = cfg->default_tenant_id;
    none.max_concurrent_calls = -1;
    call_policy_t policy;
    policy_resolve(cfg, &none, &policy);
    store_call_t call;
    memset(&call, 0, sizeof(call));
    snprintf(call.session_id, sizeof(call.session_id), "unavailable");
    snprintf(call.direction, sizeof(call.direction), "inbound");
    snprintf(call.from_number, sizeof(call.from_number), "%s", from);
    snprintf(call.to_number, sizeof(call.to_number), "%s", to);
    stage_t st;
    jambonz_send(j->r, 200, jambonz_transfer(j, &policy, &call, 0, &st));
}

static void outbound_answered(jambonz_req_t *j, const char *session)
{
    http_req_t *r = j->r;
    store_call_t call;
    int rc = store_call_by_session(r->w->store, session, &call);
    if (rc != 0) {
        if (rc < 0)
            log_error("db.error", "rid=%s op=call_by_session error=\"%s\"", r->rid, store_errmsg(r->w->store));
        else
            log_warn("jambonz.unknown_session", "rid=%s session=%.40s", r->rid, session);
        jambonz_send_apology(r, 200);
        return;
    }
    calls_event(r, &call, "session.answered", json_pack("{s:s}", "call_sid", j->hook.call_sid));
    store_tenant_t tenant;
    call_policy_t policy;
    calls_policy(r, &call, &tenant, &policy);
    if (strcmp(call.agent_type, "elevenlabs") == 0) {
        json_t *v = r->w->app->cfg.elevenlabs_phone_number != NULL ? forward_elevenlabs(j, &call, &policy) : NULL;
        if (v == NULL) {
            log_error("outbound.no_elevenlabs_number", "rid=%s session=%s", r->rid, call.session_id);
            jambonz_send_apology(r, 200);
            return;
        }
        jambonz_send(r, 200, v);
        return;
    }
    jambonz_send(r, 200, ai_listen(j, &call, NULL));
}

void jambonz_call(http_req_t *r)
{
    jambonz_req_t j;
    if (jambonz_begin(r, &j) != 0)
        return;
    const char *session = jambonz_query(&j, "session");
    if (session != NULL) { /* an outbound call we placed, answered */
        outbound_answered(&j, session);
        return;
    }
    const config_t *cfg = &r->w->app->cfg;
    store_t *st = r->w->store;
    const jhook_t *h = &j.hook;
    const char *from = number(&j, h->from), *to = number(&j, h->to);
    store_tenant_t tenant;
    int rc = store_tenant_for_number(st, to, cfg->default_tenant_id, &tenant);
    if (rc != 0) {
        log_error("db.error", "rid=%s op=tenant_for_number error=\"%s\"", r->rid,
                  rc < 0 ? store_errmsg(st) : "default tenant missing");
        answer_without_store(&j, from, to);
        return;
    }
    call_policy_t policy;
    policy_resolve(cfg, &tenant, &policy);

    char session_id[33];
    ids_session(session_id);
    json_t *ev = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "from", from, "to", to, "caller_name",
                           h->caller_name[0] ? h->caller_name : NULL, "sip_call_id", h->call_id[0] ? h->call_id : NULL,
                           "account_sid", h->account_sid[0] ? h->account_sid : NULL);
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    store_inbound_t in = {.session_id = session_id,
                          .tenant_id = tenant.id,
                          .call_sid = h->call_sid,
                          .from_number = from,
                          .to_number = to,
                          .status = "ringing",
                          .limit = policy.max_calls,
                          .event_json = json,
                          .platform = "jambonz"};
    store_call_t call;
    int created = 0, rejected = 0;
    rc = store_call_start_inbound(st, &in, &call, &created, &rejected);
    free(json);
    if (rc != 0) {
        log_error("db.error", "rid=%s op=call_start error=\"%s\"", r->rid, store_errmsg(st));
        answer_without_store(&j, from, to);
        return;
    }
    log_info("call.event", "rid=%s session=%s call_sid=%s type=%s tenant=%ld platform=jambonz", r->rid, call.session_id,
             h->call_sid,
             !created   ? "call.retried"
             : rejected ? "call.rejected"
                        : "call.started",
             tenant.id);
    if (created)
        metrics_call_inbound(&r->w->metrics, PLATFORM_JAMBONZ, rejected);
    if (rejected || (call.ended && !created)) {
        /* the call is not answered yet: refuse it, and the caller's carrier plays busy */
        json_t *v = json_array();
        if (v != NULL && jplan_decline_busy(v) != 0) {
            json_decref(v);
            v = NULL;
        }
        jambonz_send(r, 200, v);
        return;
    }
    if (policy.forward_elevenlabs && cfg->elevenlabs_phone_number != NULL) {
        json_t *v = forward_elevenlabs(&j, &call, &policy);
        if (v != NULL) {
            jambonz_send(r, 200, v);
            return;
        }
    }
    if (policy.ai == AI_NONE || policy.transfer_first || policy.forward_elevenlabs) {
        jambonz_transfer_answer(&j, &call, &policy, 0);
        return;
    }
    /* the echo agent cannot speak, so a configured greeting is said first */
    jambonz_send(r, 200, ai_listen(&j, &call, policy.ai == AI_ECHO ? policy.greeting : NULL));
}

/* jambonz's call_status words in the one state machine's (Twilio's) vocabulary. */
static const char *status_word(const char *s)
{
    if (strcmp(s, "trying") == 0)
        return "initiated";
    if (strcmp(s, "early-media") == 0)
        return "ringing";
    return s;
}

void jambonz_status(http_req_t *r)
{
    jambonz_req_t j;
    if (jambonz_begin(r, &j) != 0)
        return;
    const jhook_t *h = &j.hook;
    if (h->call_status[0] == '\0' || store_status_rank(status_word(h->call_status)) < 0) {
        log_warn("jambonz.bad_request", "rid=%s why=\"call_status missing or unknown\" field=call_status", r->rid);
        jambonz_send_apology(r, 400); /* jambonz always gets verbs */
        return;
    }
    json_t *ev = json_pack("{s:s, s:s?}", "status", h->call_status, "termination_by",
                           h->call_termination_by[0] ? h->call_termination_by : NULL);
    if (h->sip_status >= 0)
        json_object_set_new(ev, "sip_response_code", json_integer(h->sip_status));
    if (h->duration >= 0)
        json_object_set_new(ev, "duration", json_integer(h->duration));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    store_status_t s = {.call_sid = h->call_sid,
                        .status = status_word(h->call_status),
                        .session_id = jambonz_query(&j, "session"),
                        .seq = -1,
                        .duration_s = h->duration,
                        .sip_code = h->sip_status,
                        .event_json = json};
    int applied = 0;
    store_wait_queued(r->w->store); /* the events the call's legs queued before this came go first */
    int rc = store_call_status(r->w->store, &s, &applied);
    free(json);
    if (rc < 0)
        log_error("db.error", "rid=%s op=call_status error=\"%s\"", r->rid, store_errmsg(r->w->store));
    else if (rc == 1)
        log_info("jambonz.status_unknown_call", "rid=%s call_sid=%s status=%s", r->rid, h->call_sid, h->call_status);
    else
        log_info("call.event", "rid=%s call_sid=%s type=call.status status=%s applied=%d platform=jambonz", r->rid,
                 h->call_sid, h->call_status, applied);
    /* a status hook's answer is not run: an empty array says so */
    jambonz_send(r, 200, json_array());
}

static void send_hangup(http_req_t *r)
{
    json_t *v = json_array();
    if (v != NULL)
        json_array_append_new(v, json_pack("{s:s}", "verb", "hangup"));
    jambonz_send(r, 200, v);
}

/* The call is over: its hook says so, or the status hook has ended the row. */
static int caller_gone(const jhook_t *h, const store_call_t *call)
{
    const char *s = h->call_status;
    return call->ended || strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "busy") == 0 ||
           strcmp(s, "no-answer") == 0;
}

void jambonz_action(http_req_t *r)
{
    jambonz_req_t j;
    if (jambonz_begin(r, &j) != 0)
        return;
    store_t *st = r->w->store;
    store_wait_queued(st); /* what the call's legs queued before jambonz asked (a voicemail's end) */
    const char *session = jambonz_query(&j, "session"), *step = jambonz_query(&j, "step");
    const char *at = jambonz_query(&j, "attempt");
    int attempt = 0;
    int needs_attempt = step != NULL && strcmp(step, "listen") != 0 && strcmp(step, "forward") != 0;
    if (session == NULL || step == NULL || (needs_attempt && calls_parse_attempt(at, &attempt) != 0)) {
        log_warn("jambonz.bad_request", "rid=%s why=\"actionHook needs session, step (and attempt 0-%d)\"", r->rid,
                 CALLS_MAX_ATTEMPT);
        jambonz_send_apology(r, 400);
        return;
    }
    store_call_t call;
    int rc = store_call_by_session(st, session, &call);
    if (rc != 0) {
        if (rc < 0)
            log_error("db.error", "rid=%s op=call_by_session error=\"%s\"", r->rid, store_errmsg(st));
        else
            log_warn("jambonz.unknown_session", "rid=%s session=%.40s", r->rid, session);
        jambonz_send_apology(r, 200);
        return;
    }
    if (call.call_sid[0] != '\0' && strcmp(call.call_sid, j.hook.call_sid) != 0) {
        log_warn("jambonz.call_mismatch", "rid=%s session=%s call_sid=%s", r->rid, session, j.hook.call_sid);
        jambonz_send_apology(r, 200);
        return;
    }
    const jhook_t *h = &j.hook;
    store_tenant_t tenant;
    call_policy_t policy;
    /* jambonz still posts a verb's actionHook after the caller hung up (the call fields then say
     * completed), and runs nothing we answer: record what ended, start nothing */
    if (caller_gone(h, &call)) {
        if (strcmp(step, "dial") == 0 || strcmp(step, "live") == 0) {
            calls_policy(r, &call, &tenant, &policy); /* the attempt's stage */
            calls_attempt_end(r, &call, &policy, attempt,
                              strcmp(h->dial_call_status, "completed") == 0 ? "completed" : "canceled",
                              h->dial_sip_status, h->dial_call_sid[0] ? h->dial_call_sid : NULL, -1);
        } else
            calls_event(r, &call, strcmp(step, "listen") == 0 ? "stream.ended" : "hook.after_hangup",
                        json_pack("{s:s, s:s}", "step", step, "reason", "caller hung up"));
        jambonz_send(r, 200, json_array());
        return;
    }
    if (strcmp(step, "listen") == 0) {
        calls_event(r, &call, "stream.ended",
                    json_pack("{s:s, s:s?}", "next_action", call.next_action[0] ? call.next_action : "transfer",
                              "reason", call.transfer_reason[0] ? call.transfer_reason : NULL));
        if (strcmp(call.next_action, "hangup") == 0) {
            send_hangup(r);
            return;
        }
        /* the AI asked for a person, or the listen ended without a decision: a person it is */
        calls_policy(r, &call, &tenant, &policy);
        jambonz_transfer_answer(&j, &call, &policy, 0);
    } else if (strcmp(step, "dial") == 0) {
        if (h->dial_call_status[0] == '\0') {
            log_warn("jambonz.bad_request", "rid=%s why=\"dial actionHook without dial_call_status\"", r->rid);
            jambonz_send_apology(r, 400);
            return;
        }
        /* read before the outcome: it tells the attempt's stage, and the next one */
        calls_policy(r, &call, &tenant, &policy);
        calls_attempt_end(r, &call, &policy, attempt, h->dial_call_status, h->dial_sip_status,
                          h->dial_call_sid[0] ? h->dial_call_sid : NULL, h->dial_call_duration);
        if (strcmp(h->dial_call_status, "completed") == 0) {
            send_hangup(r);
            return;
        }
        /* busy, no-answer, failed (and anything new): the next stage of the chain */
        jambonz_transfer_answer(&j, &call, &policy, attempt + 1);
    } else if (strcmp(step, "live") == 0) {
        /* POST /api/calls/{id}/transfer redirected the call here; the attempt is recorded already */
        calls_policy(r, &call, &tenant, &policy);
        stage_t stage;
        jambonz_send(r, 200, jambonz_transfer(&j, &policy, &call, attempt, &stage));
    } else if (strcmp(step, "voicemail") == 0) {
        calls_event(r, &call, "voicemail.ended", json_pack("{s:i}", "attempt", attempt));
        json_t *v = json_array();
        if (v != NULL && jplan_goodbye(v, "Thank you for your message. Goodbye.") != 0) {
            json_decref(v);
            v = NULL;
        }
        jambonz_send(r, 200, v);
    } else if (strcmp(step, "forward") == 0) {
        calls_event(r, &call, "forward.outcome",
                    json_pack("{s:s?}", "status", h->dial_call_status[0] ? h->dial_call_status : NULL));
        if (strcmp(h->dial_call_status, "completed") == 0) {
            send_hangup(r);
            return;
        }
        calls_policy(r, &call, &tenant, &policy);
        jambonz_transfer_answer(&j, &call, &policy, 0);
    } else {
        log_warn("jambonz.bad_request", "rid=%s why=\"unknown step\"", r->rid);
        jambonz_send_apology(r, 400);
    }
}
