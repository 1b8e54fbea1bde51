/*
 * policy: what a call does, decided once for every platform. call_policy_t is a tenant's row
 * over the server's settings (AI or not, greeting, the transfer chain, caller-ID policy,
 * limit); policy_stage() picks stage N of the transfer chain. Each platform renders the
 * stage (TwiML, jambonz verbs) or executes it (ARI); none decides it.
 *
 * Pure functions: no database, no I/O but one log line for a target that does not parse.
 * Pointers in the results borrow from the tenant row, the settings and the arguments: they
 * live as long as those do.
 */
#ifndef SB_CALL_POLICY_H
#define SB_CALL_POLICY_H

#include "db/store.h"
#include "server/config.h"
#include "server/target.h"

#define CALL_APOLOGY "We are sorry, we cannot take your call right now. Please try again later. Goodbye."
#define CALL_VOICEMAIL_PROMPT                                                                                          \
    "No one is available to take your call. Please leave a message after the tone, "                                   \
    "and press the pound key when you are done."

typedef struct call_policy {
    long tenant_id;
    ai_kind_t ai;
    const char *greeting;   /* NULL: none */
    int transfer_first;     /* inbound_mode = transfer: no AI even when one is configured */
    int forward_elevenlabs; /* inbound_mode = elevenlabs_forward: dial the ElevenLabs agent's number */
    const char *targets[2]; /* primary, secondary: NULL when unset */
    const char *voicemail;  /* NULL: record a message */
    caller_id_policy_t caller_id;
    long max_calls; /* 0: no limit */
} call_policy_t;

/* The tenant's columns where set, the settings elsewhere. Pointers borrow from tenant and cfg. */
void policy_resolve(const config_t *cfg, const store_tenant_t *tenant, call_policy_t *out);

typedef enum { STAGE_DIAL, STAGE_RECORD, STAGE_GOODBYE } stage_kind_t;

typedef struct stage {
    stage_kind_t kind;
    int attempt;           /* the stage's number: past targets skipped as unusable */
    int voicemail;         /* the voicemail stage (a dial to VOICEMAIL_TARGET, or a recording) */
    const char *raw;       /* DIAL: the target as configured */
    target_t target;       /* DIAL: parsed */
    const char *caller_id; /* DIAL: the number to present (policy applied); NULL: none known */
    const char *notice;    /* DIAL: said before dialing; RECORD: the prompt; GOODBYE: the apology */
} stage_t;

typedef struct stage_ctx {
    const config_t *cfg;
    const call_policy_t *policy;
    const char *session_id; /* for the log line of a skipped target */
    const char *caller;     /* the caller's number, for CALLER_ID_POLICY=original */
    const char *business;   /* the business number shown otherwise (and for a withheld caller) */
    /* Can this platform dial t? NULL: every target. A target it cannot dial is skipped (logged). */
    int (*can_dial)(const target_t *t);
} stage_ctx_t;

/* Stage `attempt` of the chain: primary, secondary (unset ones skipped), voicemail (always
 * there: a target or a recording), then goodbye. A target that does not parse or that the
 * platform cannot dial is skipped, so out->attempt may be past `attempt`. */
void policy_stage(const stage_ctx_t *x, int attempt, stage_t *out);

/* The voicemail stage's attempt number: the count of targets configured before it. */
int policy_voicemail_attempt(const call_policy_t *p);

/* +, then 7 to 15 digits. */
int policy_looks_e164(const char *s);

#endif
