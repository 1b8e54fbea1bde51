/*
 * calls: what every platform's webhooks do to a call row, in one place: timeline events, the
 * tenant's policy, and the transfer chain's attempts and outcomes. The platform handlers
 * (Twilio, jambonz) render; these record, so a call reads the same on every platform.
 */
#ifndef SB_HANDLERS_CALLS_H
#define SB_HANDLERS_CALLS_H

#include "call/policy.h"
#include "db/store.h"
#include "server/http.h"

#define CALLS_MAX_ATTEMPT 8

/* Appends an event to the call's timeline and logs it (one line per call event). Takes detail. */
void calls_event(http_req_t *r, const store_call_t *call, const char *type, json_t *detail);

/* The call's tenant policy; when the tenant cannot be read, the server's settings alone decide
 * (a person is still dialed). tenant is filled either way and must outlive policy. */
void calls_policy(http_req_t *r, const store_call_t *call, store_tenant_t *tenant, call_policy_t *policy);

/* Records stage st (as policy_stage() picked it) as the call's current transfer attempt. */
void calls_attempt_begin(http_req_t *r, const store_call_t *call, const stage_t *st);

/* Records the outcome of attempt: status in the one vocabulary (completed, busy, no-answer,
 * failed, canceled); the other fields may be NULL or -1. policy (calls_policy()) tells the
 * attempt's place in the chain, for the metrics. */
void calls_attempt_end(http_req_t *r, const store_call_t *call, const call_policy_t *policy, int attempt,
                       const char *status, long sip_code, const char *dial_sid, long duration_s);

/* "0".."CALLS_MAX_ATTEMPT" -> 0; anything else -1. */
int calls_parse_attempt(const char *s, int *out);

/* Could s (len bytes, from a URL) be a session id: 1 to 63 visible ASCII characters? Anything
 * else is no session, answered without asking the database (PostgreSQL refuses non-UTF-8). */
int calls_session_ok(const char *s, size_t len);

#endif
