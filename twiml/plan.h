/*
 * plan: the call flows switchboard answers, rendered onto a twiml_doc_t. Pure functions:
 * no database, no settings; the handlers and POST /api/twilio/test resolve the inputs and
 * call these, so what an operator previews is exactly what Twilio gets.
 * Strings are borrowed for the duration of the call. Each returns the writer's error code.
 */
#ifndef SWITCHBOARD_PLAN_H
#define SWITCHBOARD_PLAN_H

#include "server/target.h"
#include "twiml/twiml.h"

typedef struct plan_transfer {
    const char *notice; /* said before dialing; NULL: nothing */
    const target_t *target;
    const char *caller_id; /* NULL: Twilio's default (the caller) */
    int timeout_s;
    const char *action_url;                  /* <Dial action>, the transfer callback of this attempt */
    const char *sip_username, *sip_password; /* used for SIP targets only */
    const char *apology;                     /* said after Dial if it falls through */
} plan_transfer_t;

/* <Say notice/> <Dial answerOnBridge="true" ...><Sip|Number/></Dial> <Say apology/> <Hangup/> */
int plan_transfer(twiml_doc_t *doc, const plan_transfer_t *p);

typedef struct plan_stream {
    const char *greeting;   /* said before the stream; NULL: the agent greets */
    const char *action_url; /* <Connect action>: asked when the stream ends */
    const char *stream_url; /* wss://host/twilio/media, no query string (Twilio rejects one) */
    const char *session_id;
    const char *tenant_id;
    const char *agent_type; /* outbound sessions: picks the agent's instruction set; NULL: none */
} plan_stream_t;

/* [<Say greeting/>] <Connect action><Stream url><Parameter session_id/><Parameter tenant_id/>
 * [<Parameter agent_type/>]</Stream></Connect> */
int plan_ai_stream(twiml_doc_t *doc, const plan_stream_t *p);

typedef struct plan_voicemail {
    const char *prompt;
    const char *action_url;             /* asked when the recording ends */
    const char *recording_callback_url; /* recording status callback */
    int max_length_s;
} plan_voicemail_t;

/* <Say prompt/> <Record playBeep="true" .../> <Say/> <Hangup/> */
int plan_voicemail(twiml_doc_t *doc, const plan_voicemail_t *p);

/* <Say text/> <Hangup/> */
int plan_goodbye(twiml_doc_t *doc, const char *text);

/* <Say apology/> <Reject reason="busy"/> */
int plan_reject_busy(twiml_doc_t *doc, const char *apology);

#endif
