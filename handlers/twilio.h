/*
 * twilio: what every /twilio/... handler shares. twilio_begin() parses the form body and the
 * query, checks X-Twilio-Signature (when TWILIO_AUTH_TOKEN is set) and works out the public
 * base URL; the send helpers always answer valid TwiML. transfer_render() renders a stage of
 * the transfer chain (call/policy.h), so the webhooks and POST /api/twilio/test render the
 * same thing.
 *
 * Everything a twilio_req_t points to is allocated in the request's pool.
 */
#ifndef SB_HANDLERS_TWILIO_H
#define SB_HANDLERS_TWILIO_H

#include "db/store.h"
#include "server/config.h"
#include "server/form.h"
#include "server/http.h"
#include "call/policy.h"
#include "twiml/plan.h"

typedef struct twilio_req {
    http_req_t *r;
    form_t *form;         /* body parameters (empty form for an empty body) */
    form_t *query;        /* query-string parameters */
    const char *base_url; /* public https://host, no trailing slash */
} twilio_req_t;

/* 0: go on. -1: already answered (403 bad signature, 400 malformed body). */
int twilio_begin(http_req_t *r, twilio_req_t *t);
/* For previews (POST /api/twilio/test): base URL only, no form, no signature. */
void twilio_req_preview(http_req_t *r, twilio_req_t *t);
/* Body parameter (first value) or NULL. */
const char *twilio_param(const twilio_req_t *t, const char *name);
const char *twilio_query(const twilio_req_t *t, const char *name);
/* base_url + path (printf-style); in the request pool. */
const char *twilio_url(const twilio_req_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The media stream URL: the base with ws(s):// and /twilio/media, no query string. */
const char *twilio_stream_url(const twilio_req_t *t);

/* Finishes doc (and frees it) and answers it with `status`; a writer error answers the apology instead. */
void twilio_send_doc(twilio_req_t *t, int status, twiml_doc_t *doc);
/* An apology and <Hangup/>, with `status` (200 to Twilio; 4xx for requests that are not Twilio's). */
void twilio_send_apology(http_req_t *r, int status);
/* <Hangup/>. */
void twilio_send_hangup(twilio_req_t *t);
/* An empty <Response/>. */
void twilio_send_empty(http_req_t *r, int status);

/* Checks a Twilio SID: two letters then 32 hex digits. */
int twilio_sid_valid(const char *sid, const char *prefix);

/* ---- the transfer chain (call/policy.h decides, TwiML renders) ---- */

typedef struct transfer_ctx {
    const config_t *cfg;
    const call_policy_t *policy;
    const twilio_req_t *t;
    const char *session_id;
    const char *caller; /* the caller's number (From), for CALLER_ID_POLICY=original */
} transfer_ctx_t;

/*
 * Renders stage `attempt` of the chain (primary, secondary, voicemail, goodbye; unset
 * targets are skipped) onto doc: a <Dial> whose action reports back with attempt, a voicemail
 * <Record>, or the apology. *out is the stage rendered: its attempt moves on past a target that
 * does not parse (a bad tenant row) or that Twilio cannot dial (an Asterisk dial string, logged
 * as transfer.skipped).
 */
void transfer_render(twiml_doc_t *doc, const transfer_ctx_t *x, int attempt, stage_t *out);

#define TWILIO_APOLOGY CALL_APOLOGY

#endif
