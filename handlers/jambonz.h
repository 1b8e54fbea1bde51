/*
 * jambonz: what every /jambonz/... handler shares. jambonz_begin() checks Jambonz-Signature
 * (when JAMBONZ_WEBHOOK_SECRET is set), parses the JSON hook body and the query, and works
 * out the public base URL; the send helpers always answer a verb array jambonz accepts.
 * jambonz_transfer() renders a stage of the transfer chain (call/policy.h) as verbs.
 *
 * Everything a jambonz_req_t points to lives in the request's pool (or in the struct).
 */
#ifndef SB_HANDLERS_JAMBONZ_H
#define SB_HANDLERS_JAMBONZ_H

#include "call/policy.h"
#include "db/store.h"
#include "jambonz/hook.h"
#include "server/form.h"
#include "server/http.h"

#include <jansson.h>

typedef struct jambonz_req {
    http_req_t *r;
    jhook_t hook;         /* the body's call fields */
    form_t *query;        /* query-string parameters */
    const char *base_url; /* public https://host, no trailing slash */
} jambonz_req_t;

/* 0: go on. -1: already answered (403 bad signature; 400 with the apology verbs for a body
 * that is not a jambonz hook, the field named in the log). */
int jambonz_begin(http_req_t *r, jambonz_req_t *j);
const char *jambonz_query(const jambonz_req_t *j, const char *name);
/* base_url + path (printf-style); in the request pool. */
const char *jambonz_url(const jambonz_req_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ws(s)://host/jambonz/listen */
const char *jambonz_listen_url(const jambonz_req_t *j);
/* The listen socket's credentials for a session (wsAuth): username the session, password an
 * HMAC of it under JAMBONZ_WEBHOOK_SECRET, 32 hex characters. -1 when no secret is set. */
int jambonz_ws_password(const config_t *cfg, const char *session, char out[33]);

/* Answers verbs (taking them) with `status`; NULL (out of memory) answers a bare hangup. */
void jambonz_send(http_req_t *r, int status, json_t *verbs);
/* The apology said, then hangup. */
void jambonz_send_apology(http_req_t *r, int status);

/* Renders stage `attempt` of the chain as verbs: a dial whose actionHook reports back with
 * the attempt, the voicemail listen, or the apology. *out is the stage rendered (its attempt
 * moves past targets jambonz cannot dial). caller is the caller's number, business the number
 * shown for CALLER_ID_POLICY=business. */
json_t *jambonz_transfer(const jambonz_req_t *j, const call_policy_t *policy, const store_call_t *call, int attempt,
                         stage_t *out);

/* Records stage `attempt` of the call's chain and answers it. */
void jambonz_transfer_answer(jambonz_req_t *j, const store_call_t *call, const call_policy_t *policy, int attempt);

#endif
