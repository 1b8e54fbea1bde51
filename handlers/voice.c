#include "handlers/voice.h"
#include "handlers/transfer.h"
#include "handlers/twilio.h"
#include "handlers/calls.h"
#include "server/ids.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdio.h>
#include <string.h>

/* The store failed: still give the caller a person. A transfer to the settings' chain, with
 * a session id no row has, so later callbacks answer the apology. */
static void answer_without_store(twilio_req_t *t, const char *from)
{
    const config_t *cfg = &t->r->w->app->cfg;
    store_tenant_t none;
    memset(&none, 0, sizeof(none));
    none.id = cfg->default_tenant_id;
    none.max_concurrent_calls = -1;
    call_policy_t policy;
    policy_resolve(cfg, &none, &policy);
    transfer_ctx_t x = {cfg, &policy, t, "unavailable", from};
    twiml_doc_t *doc = twiml_doc_new();
    stage_t st;
    if (policy.targets[0] != NULL && doc != NULL)
        transfer_render(doc, &x, 0, &st);
    else
        plan_goodbye(doc, TWILIO_APOLOGY);
    twilio_send_doc(t, 200, doc);
}

void voice_inbound(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    const config_t *cfg = &r->w->app->cfg;
    store_t *st = r->w->store;
    const char *sid = twilio_param(&t, "CallSid"), *from = twilio_param(&t, "From"), *to = twilio_param(&t, "To");
    if (!twilio_sid_valid(sid, "CA")) {
        log_warn("twilio.bad_request", "rid=%s why=\"CallSid missing or malformed\"", r->rid);
        twilio_send_apology(r, 400);
        return;
    }
    store_tenant_t tenant;
    int rc = store_tenant_for_number(st, to, cfg->default_tenant_id, &tenant);
    if (rc != 0) {
        log_error("db.error", "rid=%s op=tenant_for_number error=\"%s\"", r->rid,
                  rc < 0 ? store_errmsg(st) : "default tenant missing");
        answer_without_store(&t, from);
        return;
    }
    call_policy_t policy;
    policy_resolve(cfg, &tenant, &policy);

    char session[33];
    ids_session(session);
    json_t *ev = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "from", from, "to", to, "caller_name",
                           twilio_param(&t, "CallerName"), "from_country", twilio_param(&t, "FromCountry"),
                           "forwarded_from", twilio_param(&t, "ForwardedFrom"));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    store_inbound_t in = {.session_id = session,
                          .tenant_id = tenant.id,
                          .call_sid = sid,
                          .from_number = from,
                          .to_number = to,
                          .status = twilio_param(&t, "CallStatus"),
                          .limit = policy.max_calls,
                          .event_json = json,
                          .platform = "twilio"};
    store_call_t call;
    int created = 0, rejected = 0;
    rc = store_call_start_inbound(st, &in, &call, &created, &rejected);
    free(json);
    if (rc != 0) {
        log_error("db.error", "rid=%s op=call_start error=\"%s\"", r->rid, store_errmsg(st));
        answer_without_store(&t, from);
        return;
    }
    log_info("call.event", "rid=%s session=%s call_sid=%s type=%s tenant=%ld", r->rid, call.session_id, sid,
             !created   ? "call.retried"
             : rejected ? "call.rejected"
                        : "call.started",
             tenant.id);
    if (created)
        metrics_call_inbound(&r->w->metrics, PLATFORM_TWILIO, rejected);

    if (rejected || (call.ended && !created)) {
        twiml_doc_t *doc = twiml_doc_new();
        plan_reject_busy(doc, "All of our lines are busy right now. Please call again later.");
        twilio_send_doc(&t, 200, doc);
        return;
    }
    if (policy.forward_elevenlabs && cfg->elevenlabs_phone_number != NULL) {
        /* the tenant's agent runs on ElevenLabs' own number: forward the caller there, keeping
         * the session (its dial_status and status callbacks land on this call) */
        twiml_dial_opts_t d = {
            .action = twilio_url(&t, "/twilio/dial_status/%s", call.session_id),
            .method = "POST",
            .answer_on_bridge = TWIML_TRUE,
            .timeout = cfg->transfer_timeout,
            .caller_id = policy.caller_id == CALLER_ID_ORIGINAL && from != NULL && from[0] == '+'
                             ? from
                             : cfg->twilio_phone_number,
        };
        twiml_doc_t *doc = twiml_doc_new();
        twiml_dial_begin(doc, &d);
        twiml_number(doc, cfg->elevenlabs_phone_number, NULL);
        twiml_dial_end(doc);
        calls_event(r, &call, "forward.elevenlabs", json_pack("{s:s}", "to", cfg->elevenlabs_phone_number));
        twilio_send_doc(&t, 200, doc);
        return;
    }
    if (policy.ai == AI_NONE || policy.transfer_first || policy.forward_elevenlabs) {
        /* forward mode without ELEVENLABS_PHONE_NUMBER: a person rather than nothing */
        transfer_answer(&t, &call, &policy, 0);
        return;
    }
    char tenant_id[24];
    snprintf(tenant_id, sizeof(tenant_id), "%ld", tenant.id);
    plan_stream_t p = {
        /* the echo agent cannot speak, so a configured greeting is said first */
        .greeting = policy.ai == AI_ECHO ? policy.greeting : NULL,
        .action_url = twilio_url(&t, "/twilio/connect_action?session=%s", call.session_id),
        .stream_url = twilio_stream_url(&t),
        .session_id = call.session_id,
        .tenant_id = tenant_id,
    };
    twiml_doc_t *doc = twiml_doc_new();
    plan_ai_stream(doc, &p);
    twilio_send_doc(&t, 200, doc);
}

void voice_connect_action(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    store_t *st = r->w->store;
    store_wait_queued(st); /* what the stream's end queued before Twilio asked */
    const char *session = twilio_query(&t, "session");
    store_call_t call;
    int rc = session != NULL ? store_call_by_session(st, session, &call) : 1;
    if (rc != 0) {
        if (rc < 0)
            log_error("db.error", "rid=%s op=call_by_session error=\"%s\"", r->rid, store_errmsg(st));
        else
            log_warn("twilio.unknown_session", "rid=%s session=%.40s", r->rid, session ? session : "-");
        twilio_send_apology(r, 200);
        return;
    }
    calls_event(r, &call, "stream.ended",
                json_pack("{s:s, s:s?}", "next_action", call.next_action[0] ? call.next_action : "transfer", "reason",
                          call.transfer_reason[0] ? call.transfer_reason : NULL));
    if (strcmp(call.next_action, "hangup") == 0) {
        twilio_send_hangup(&t);
        return;
    }
    /* the AI asked for a person, or the stream ended without a decision: a person it is */
    transfer_continue(&t, &call, 0);
}
