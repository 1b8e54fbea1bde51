#include "handlers/transfer.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPT 8

void transfer_answer(twilio_req_t *t, const store_call_t *call, const call_policy_t *policy, int attempt)
{
    http_req_t *r = t->r;
    transfer_ctx_t x = {&r->w->app->cfg, policy, t, call->session_id, call->from_number};
    twiml_doc_t *doc = twiml_doc_new();
    const char *dialed = NULL;
    stage_kind_t kind = doc != NULL ? transfer_render(doc, &x, &attempt, &dialed) : STAGE_GOODBYE;
    static const char *const kinds[] = {"dial", "voicemail_record", "goodbye"};
    /* transfer_render dials the policy's own voicemail pointer at the voicemail stage */
    int voicemail = kind == STAGE_RECORD || (dialed != NULL && dialed == policy->voicemail);
    json_t *ev = json_pack("{s:i, s:s, s:s?, s:b}", "attempt", attempt, "stage", kinds[kind], "target", dialed,
                           "voicemail", voicemail);
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_transfer_begin(r->w->store, call->id, attempt, dialed, json) != 0)
        log_error("db.error", "rid=%s op=transfer_begin error=\"%s\"", r->rid, store_errmsg(r->w->store));
    log_info("call.event", "rid=%s session=%s call_sid=%s type=transfer.attempt attempt=%d stage=%s", r->rid,
             call->session_id, call->call_sid, attempt, kinds[kind]);
    free(json);
    twilio_send_doc(t, 200, doc);
}

void transfer_continue(twilio_req_t *t, const store_call_t *call, int attempt)
{
    http_req_t *r = t->r;
    store_tenant_t tenant;
    call_policy_t policy;
    if (store_tenant_get(r->w->store, call->tenant_id, &tenant) != 0) {
        log_error("db.error", "rid=%s op=tenant_get error=\"%s\"", r->rid, store_errmsg(r->w->store));
        memset(&tenant, 0, sizeof(tenant));
        tenant.id = call->tenant_id;
        tenant.max_concurrent_calls = -1;
    }
    policy_resolve(&r->w->app->cfg, &tenant, &policy);
    transfer_answer(t, call, &policy, attempt);
}

static int parse_attempt(const char *s, int *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || (s[1] != '\0' && (s[1] < '0' || s[1] > '9' || s[2] != '\0')))
        return -1;
    int v = atoi(s);
    if (v > MAX_ATTEMPT)
        return -1;
    *out = v;
    return 0;
}

void transfer_callback(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    store_t *st = r->w->store;
    const char *session = twilio_query(&t, "session");
    int attempt;
    if (session == NULL || parse_attempt(twilio_query(&t, "attempt"), &attempt) != 0) {
        log_warn("twilio.bad_request", "rid=%s why=\"transfer_callback needs session and attempt 0-%d\"", r->rid,
                 MAX_ATTEMPT);
        twilio_send_apology(r, 400);
        return;
    }
    store_call_t call;
    int rc = store_call_by_session(st, session, &call);
    if (rc != 0) {
        if (rc < 0)
            log_error("db.error", "rid=%s op=call_by_session error=\"%s\"", r->rid, store_errmsg(st));
        else
            log_warn("twilio.unknown_session", "rid=%s session=%.40s", r->rid, session);
        twilio_send_apology(r, 200);
        return;
    }

    if (twilio_query(&t, "voicemail") != NULL) {
        twilio_event(r, &call, "voicemail.recorded",
                     json_pack("{s:s?, s:s?}", "recording_url", twilio_param(&t, "RecordingUrl"), "duration",
                               twilio_param(&t, "RecordingDuration")));
        twiml_doc_t *doc = twiml_doc_new();
        plan_goodbye(doc, "Thank you for your message. Goodbye.");
        twilio_send_doc(&t, 200, doc);
        return;
    }

    const char *status = twilio_param(&t, "DialCallStatus");
    if (status == NULL) {
        log_warn("twilio.bad_request", "rid=%s why=\"DialCallStatus missing\"", r->rid);
        twilio_send_apology(r, 400);
        return;
    }
    const char *sip_code = twilio_param(&t, "DialSipResponseCode");
    json_t *ev =
        json_pack("{s:i, s:s, s:s?, s:s?, s:s?}", "attempt", attempt, "status", status, "sip_response_code", sip_code,
                  "dial_call_sid", twilio_param(&t, "DialCallSid"), "duration", twilio_param(&t, "DialCallDuration"));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_transfer_end(st, call.id, attempt, status, json) != 0)
        log_error("db.error", "rid=%s op=transfer_end error=\"%s\"", r->rid, store_errmsg(st));
    log_info("call.event", "rid=%s session=%s call_sid=%s type=transfer.outcome attempt=%d status=%s sip=%s", r->rid,
             call.session_id, call.call_sid, attempt, status, sip_code ? sip_code : "-");
    free(json);

    if (strcmp(status, "completed") == 0 || strcmp(status, "answered") == 0) {
        twilio_send_hangup(&t);
        return;
    }
    /* busy, no-answer, failed, canceled (and anything new): the next stage of the chain */
    transfer_continue(&t, &call, attempt + 1);
}
