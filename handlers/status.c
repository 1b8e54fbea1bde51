#include "handlers/status.h"
#include "handlers/calls.h"
#include "handlers/twilio.h"
#include "server/log.h"
#include "server/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A non-negative integer parameter, -1 when absent; -2 when present but not a number. */
static long int_param(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno != 0 || *end != '\0' || v < 0 ? -2 : v;
}

void status_callback(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    store_t *st = r->w->store;
    const char *sid = twilio_param(&t, "CallSid"), *status = twilio_param(&t, "CallStatus");
    long seq = int_param(twilio_param(&t, "SequenceNumber"));
    long duration = int_param(twilio_param(&t, "CallDuration"));
    long sip = int_param(twilio_param(&t, "SipResponseCode"));
    /* /twilio/status/{session_id} (outbound sessions) finds the call by session */
    h2o_iovec_t sp = http_param(r, 0);
    if (!twilio_sid_valid(sid, "CA") || status == NULL || seq == -2 || duration == -2 || sip == -2 ||
        (sp.len > 0 && !calls_session_ok(sp.base, sp.len))) {
        log_warn("twilio.bad_request", "rid=%s why=\"status callback needs CallSid, CallStatus and numeric fields\"",
                 r->rid);
        twilio_send_empty(r, 400);
        return;
    }
    const char *at = twilio_param(&t, "Timestamp");
    json_t *ev = json_pack("{s:s, s:I, s:s?}", "status", status, "seq", (json_int_t)seq, "timestamp", at);
    if (sip >= 0)
        json_object_set_new(ev, "sip_response_code", json_integer(sip));
    if (duration >= 0)
        json_object_set_new(ev, "duration", json_integer(duration));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    char session[64] = "";
    if (sp.len > 0 && sp.len < sizeof(session)) /* calls_session_ok bounded it above */
        memcpy(session, sp.base, sp.len);
    store_status_t s = {.call_sid = sid,
                        .status = status,
                        .session_id = session[0] ? session : NULL,
                        .seq = seq,
                        .duration_s = duration,
                        .sip_code = sip,
                        .at = at,
                        .event_json = json};
    int applied = 0;
    store_wait_queued(st); /* the events the call's legs queued before this came go first */
    int rc = store_call_status(st, &s, &applied);
    free(json);
    if (rc < 0)
        log_error("db.error", "rid=%s op=call_status error=\"%s\"", r->rid, store_errmsg(st));
    else if (rc == 1)
        log_info("twilio.status_unknown_call", "rid=%s call_sid=%s status=%s", r->rid, sid, status);
    else
        log_info("call.event", "rid=%s call_sid=%s type=call.status status=%s seq=%ld applied=%d", r->rid, sid, status,
                 seq, applied);
    twilio_send_empty(r, 200);
}

void status_recording(http_req_t *r)
{
    twilio_req_t t;
    if (twilio_begin(r, &t) != 0)
        return;
    store_t *st = r->w->store;
    const char *call_sid = twilio_param(&t, "CallSid"), *rec_sid = twilio_param(&t, "RecordingSid");
    const char *url = twilio_param(&t, "RecordingUrl"), *rstatus = twilio_param(&t, "RecordingStatus");
    long duration = int_param(twilio_param(&t, "RecordingDuration"));
    const char *session = twilio_query(&t, "session");
    if (!twilio_sid_valid(rec_sid, "RE") || (session == NULL && !twilio_sid_valid(call_sid, "CA")) || duration == -2 ||
        (url != NULL && strncmp(url, "https://", 8) != 0)) {
        log_warn("twilio.bad_request", "rid=%s why=\"recording callback needs RecordingSid, a call and an https URL\"",
                 r->rid);
        twilio_send_empty(r, 400);
        return;
    }
    json_t *ev = json_pack("{s:s, s:s?, s:s?}", "recording_sid", rec_sid, "url", url, "status", rstatus);
    if (duration >= 0)
        json_object_set_new(ev, "duration", json_integer(duration));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    store_recording_t rec = {call_sid, session, rec_sid, url, rstatus, duration, json};
    int rc = store_call_recording(st, &rec);
    free(json);
    if (rc < 0)
        log_error("db.error", "rid=%s op=recording error=\"%s\"", r->rid, store_errmsg(st));
    else if (rc == 1)
        log_info("twilio.recording_unknown_call", "rid=%s recording_sid=%s", r->rid, rec_sid);
    else
        log_info("call.event", "rid=%s call_sid=%s type=call.recording recording_sid=%s", r->rid,
                 call_sid ? call_sid : "-", rec_sid);
    twilio_send_empty(r, 200);
}
