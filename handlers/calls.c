#include "handlers/calls.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>

void calls_event(http_req_t *r, const store_call_t *call, const char *type, json_t *detail)
{
    char *json = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    if (store_call_event(r->w->store, call->id, type, json) != 0)
        log_error("db.error", "rid=%s op=call_event error=\"%s\"", r->rid, store_errmsg(r->w->store));
    char q[600];
    log_info("call.event", "rid=%s session=%s call_sid=%s type=%s detail=%s", r->rid, call->session_id,
             call->call_sid[0] ? call->call_sid : "-", type, log_quote(q, sizeof(q), json ? json : "", (size_t)-1));
    free(json);
}

void calls_policy(http_req_t *r, const store_call_t *call, store_tenant_t *tenant, call_policy_t *policy)
{
    if (store_tenant_get(r->w->store, call->tenant_id, tenant) != 0) {
        log_error("db.error", "rid=%s op=tenant_get error=\"%s\"", r->rid, store_errmsg(r->w->store));
        memset(tenant, 0, sizeof(*tenant));
        tenant->id = call->tenant_id;
        tenant->max_concurrent_calls = -1;
    }
    policy_resolve(&r->w->app->cfg, tenant, policy);
}

void calls_attempt_begin(http_req_t *r, const store_call_t *call, const stage_t *st)
{
    static const char *const kinds[] = {"dial", "voicemail_record", "goodbye"};
    json_t *ev = json_pack("{s:i, s:s, s:s?, s:b}", "attempt", st->attempt, "stage", kinds[st->kind], "target",
                           st->kind == STAGE_DIAL ? st->raw : NULL, "voicemail", st->voicemail);
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_transfer_begin(r->w->store, call->id, st->attempt, st->kind == STAGE_DIAL ? st->raw : NULL, json) !=
        0)
        log_error("db.error", "rid=%s op=transfer_begin error=\"%s\"", r->rid, store_errmsg(r->w->store));
    /* the goodbye tries no one: not an attempt */
    if (st->kind != STAGE_GOODBYE)
        metrics_transfer_attempt_s(&r->w->metrics, call->platform,
                                   metrics_stage(st->attempt, st->voicemail ? st->attempt : -1));
    log_info("call.event", "rid=%s session=%s call_sid=%s type=transfer.attempt attempt=%d stage=%s", r->rid,
             call->session_id, call->call_sid[0] ? call->call_sid : "-", st->attempt, kinds[st->kind]);
    free(json);
}

void calls_attempt_end(http_req_t *r, const store_call_t *call, const call_policy_t *policy, int attempt,
                       const char *status, long sip_code, const char *dial_sid, long duration_s)
{
    json_t *ev = json_pack("{s:i, s:s}", "attempt", attempt, "status", status);
    if (sip_code >= 0)
        json_object_set_new(ev, "sip_response_code", json_integer(sip_code));
    if (dial_sid != NULL)
        json_object_set_new(ev, "dial_call_sid", json_string(dial_sid));
    if (duration_s >= 0)
        json_object_set_new(ev, "duration", json_integer(duration_s));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_transfer_end(r->w->store, call->id, attempt, status, json) != 0)
        log_error("db.error", "rid=%s op=transfer_end error=\"%s\"", r->rid, store_errmsg(r->w->store));
    metrics_transfer_outcome_s(&r->w->metrics, call->platform, metrics_stage(attempt, policy_voicemail_attempt(policy)),
                               status);
    log_info("call.event", "rid=%s session=%s call_sid=%s type=transfer.outcome attempt=%d status=%s sip=%ld", r->rid,
             call->session_id, call->call_sid[0] ? call->call_sid : "-", attempt, status, sip_code);
    free(json);
}

int calls_session_ok(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int calls_parse_attempt(const char *s, int *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || (s[1] != '\0' && (s[1] < '0' || s[1] > '9' || s[2] != '\0')))
        return -1;
    int v = atoi(s);
    if (v > CALLS_MAX_ATTEMPT)
        return -1;
    *out = v;
    return 0;
}
