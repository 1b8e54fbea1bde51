#include "handlers/transfer.h"
#include "handlers/calls.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>

void transfer_answer(twilio_req_t *t, const store_call_t *call, const call_policy_t *policy, int attempt)
{
    transfer_ctx_t x = {&t->r->w->app->cfg, policy, t, call->session_id, call->from_number};
    twiml_doc_t *doc = twiml_doc_new();
    stage_t st;
    if (doc != NULL) {
        transfer_render(doc, &x, attempt, &st);
    } else {
        memset(&st, 0, sizeof(st));
        st.kind = STAGE_GOODBYE;
        st.attempt = attempt;
    }
    calls_attempt_begin(t->r, call, &st);
    twilio_send_doc(t, 200, doc);
}

void transfer_continue(twilio_req_t *t, const store_call_t *call, int attempt)
{
    store_tenant_t tenant;
    call_policy_t policy;
    calls_policy(t->r, call, &tenant, &policy);
    transfer_answer(t, call, &policy, attempt);
}

/* A non-negative decimal parameter, or -1. */
static long int_or(const char *s)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 9)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' ? v : -1;
}

void transfer_callback(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    store_t *st = r->w->store;
    const char *session = twilio_query(&t, "session");
    int attempt;
    if (session == NULL || calls_parse_attempt(twilio_query(&t, "attempt"), &attempt) != 0) {
        log_warn("twilio.bad_request", "rid=%s why=\"transfer_callback needs session and attempt 0-%d\"", r->rid,
                 CALLS_MAX_ATTEMPT);
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
        calls_event(r, &call, "voicemail.recorded",
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
    /* read before the outcome: it tells the attempt's stage, and the next one */
    store_tenant_t tenant;
    call_policy_t policy;
    calls_policy(r, &call, &tenant, &policy);
    calls_attempt_end(r, &call, &policy, attempt, status, int_or(twilio_param(&t, "DialSipResponseCode")),
                      twilio_param(&t, "DialCallSid"), int_or(twilio_param(&t, "DialCallDuration")));
    if (strcmp(status, "completed") == 0 || strcmp(status, "answered") == 0) {
        twilio_send_hangup(&t);
        return;
    }
    /* busy, no-answer, failed, canceled (and anything new): the next stage of the chain */
    transfer_answer(&t, &call, &policy, attempt + 1);
}
