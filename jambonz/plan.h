/*
 * jplan: the call flows switchboard answers jambonz with, rendered as verbs (jambonz/verbs.h)
 * onto a JSON array the caller owns; the jambonz side of twiml/plan.h. Pure functions: no
 * database, no settings; the handlers resolve the inputs.
 *
 * Each returns 0, or -1 when an input is missing or invalid or memory runs out; on -1 the
 * array is unchanged (a plan is built whole before it is appended). Strings are borrowed for
 * the duration of the call and copied into the JSON. Strings marked optional may be NULL or
 * "" for unset.
 */
#ifndef SWITCHBOARD_JAMBONZ_PLAN_H
#define SWITCHBOARD_JAMBONZ_PLAN_H

#include <jansson.h>

#include "server/target.h"

typedef struct jplan_listen {
    const char *greeting;                  /* optional: said first; unset: the agent greets */
    const char *url;                       /* wss://host/jambonz/listen */
    const char *action_hook;               /* asked when listen ends (hang-up, or our disconnect for a transfer) */
    int sample_rate;                       /* 8000, 16000, ... (a multiple of 8000), both directions */
    const char *session_id;                /* required, to metadata: the socket finds its session by it */
    const char *tenant_id;                 /* required, to metadata as a string */
    const char *agent_type;                /* optional, to metadata: outbound sessions' instruction set */
    const char *ws_username, *ws_password; /* optional wsAuth: both or neither */
} jplan_listen_t;

/*
 * [say greeting] listen {url, actionHook, mixType "mono", sampleRate, passDtmf true,
 * bidirectionalAudio {enabled true, streaming true, sampleRate}, metadata {session_id,
 * tenant_id[, agent_type]}[, wsAuth]}. Running listen answers the call.
 */
int jplan_ai_listen(json_t *verbs, const jplan_listen_t *p);

typedef struct jplan_transfer {
    const char *notice;     /* optional: said before dialing */
    const target_t *target; /* TARGET_NUMBER or TARGET_SIP; TARGET_DIAL is -1 (jambonz cannot dial it) */
    const char *user;       /* instead of target: a user registered on jambonz; exactly one of the two */
    /* Optional, each used only for the target kind it is for and ignored for the others: */
    const char *trunk;                       /* number targets: the carrier to dial through */
    const char *sip_username, *sip_password; /* SIP targets: digest auth, both or neither */
    const char *caller_id;                   /* optional: unset is jambonz's default (the caller) */
    int timeout_s;                           /* ring time; 0: jambonz's default */
    int answer_on_bridge;    /* non-zero: answer the caller only when the target answers (unanswered calls) */
    const char *action_hook; /* this attempt's URL: dial_call_status decides the next one */
} jplan_transfer_t;

/*
 * [say notice] dial {target: [one target], callerId, timeout, answerOnBridge, actionHook}.
 * Number: {type "phone", number[, trunk]}; SIP: {type "sip", sipUri[, auth]}; user:
 * {type "user", name}. A fallback chain is one dial per actionHook answer, not several
 * targets in one dial (those ring at once).
 */
int jplan_transfer(json_t *verbs, const jplan_transfer_t *p);

typedef struct jplan_refer {
    const char *notice;      /* optional: said before the REFER */
    const target_t *target;  /* SIP: its URI; number: as is (jambonz adds the far end's host); dial string: -1 */
    const char *referred_by; /* optional */
    const char *action_hook; /* optional: refer_status, final_referred_call_status */
} jplan_refer_t;

/* [say notice] sip:refer {referTo[, referredBy][, actionHook]}: the far end (a PBX) takes the
 * call over; jambonz and switchboard drop out once it accepts. */
int jplan_refer(json_t *verbs, const jplan_refer_t *p);

typedef struct jplan_voicemail {
    const char *prompt;                    /* required */
    const char *url;                       /* the listen socket that records the message */
    const char *action_hook;               /* asked when the recording ends */
    const char *session_id;                /* required, to metadata */
    int max_length_s;                      /* > 0 */
    const char *ws_username, *ws_password; /* optional wsAuth: both or neither */
} jplan_voicemail_t;

/* say prompt, listen {url, actionHook, mixType "mono", sampleRate 8000, maxLength, playBeep true,
 * finishOnKey "#", metadata {session_id, voicemail true}[, wsAuth]}: switchboard records the
 * message from the socket itself. */
int jplan_voicemail(json_t *verbs, const jplan_voicemail_t *p);

/* [say text] hangup; `text` optional. The call must be answered (else jplan_decline_busy). */
int jplan_goodbye(json_t *verbs, const char *text);

/* sip:decline 486 "Busy Here": an unanswered call refused at the tenant's call limit. */
int jplan_decline_busy(json_t *verbs);

#endif
