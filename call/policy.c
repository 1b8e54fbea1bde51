#include "call/policy.h"
#include "server/log.h"

#include <string.h>

static const char *nonempty(const char *a, const char *b)
{
    return a != NULL && a[0] != '\0' ? a : b;
}

void policy_resolve(const config_t *cfg, const store_tenant_t *tn, call_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->tenant_id = tn->id;
    p->ai = cfg->ai_provider;
    if (strcmp(tn->ai_provider, "none") == 0)
        p->ai = AI_NONE;
    else if (strcmp(tn->ai_provider, "echo") == 0)
        p->ai = AI_ECHO;
    else if (strcmp(tn->ai_provider, "openai") == 0)
        p->ai = AI_OPENAI;
    else if (strcmp(tn->ai_provider, "elevenlabs") == 0)
        p->ai = AI_ELEVENLABS;
    p->greeting = nonempty(tn->greeting, NULL);
    p->transfer_first = strcmp(tn->inbound_mode, "transfer") == 0;
    p->forward_elevenlabs = strcmp(tn->inbound_mode, "elevenlabs_forward") == 0;
    p->targets[0] = nonempty(tn->primary_target, cfg->primary_transfer_target);
    p->targets[1] = nonempty(tn->secondary_target, cfg->secondary_transfer_target);
    p->voicemail = nonempty(tn->voicemail_target, cfg->voicemail_target);
    p->caller_id = cfg->caller_id_policy;
    if (strcmp(tn->caller_id_policy, "business") == 0)
        p->caller_id = CALLER_ID_BUSINESS;
    else if (strcmp(tn->caller_id_policy, "original") == 0)
        p->caller_id = CALLER_ID_ORIGINAL;
    p->max_calls = tn->max_concurrent_calls >= 0 ? tn->max_concurrent_calls : cfg->max_concurrent_calls;
}

int policy_looks_e164(const char *s)
{
    if (s == NULL || s[0] != '+' || strlen(s) < 8 || strlen(s) > 16)
        return 0;
    for (const char *p = s + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

int policy_voicemail_attempt(const call_policy_t *p)
{
    return (p->targets[0] != NULL) + (p->targets[1] != NULL);
}

void policy_stage(const stage_ctx_t *x, int attempt, stage_t *out)
{
    int first = attempt == 0; /* nothing dialed before, whatever is skipped now */
    const char *chain[2];
    int n = 0;
    for (int i = 0; i < 2; i++)
        if (x->policy->targets[i] != NULL)
            chain[n++] = x->policy->targets[i];
    int vm = n; /* the voicemail stage always exists: a target, or a recorded message */
    for (;; attempt++) {
        memset(out, 0, sizeof(*out));
        out->attempt = attempt;
        if (attempt > vm) {
            out->kind = STAGE_GOODBYE;
            out->notice = CALL_APOLOGY;
            return;
        }
        out->voicemail = attempt == vm;
        const char *raw = attempt < vm ? chain[attempt] : x->policy->voicemail;
        if (raw == NULL) {
            out->kind = STAGE_RECORD;
            out->notice = CALL_VOICEMAIL_PROMPT;
            return;
        }
        const char *why;
        if (target_parse(raw, x->cfg->default_country_code, &out->target, &why) != 0) {
            /* a tenant row with a bad target: skip to the next stage rather than fail the call */
            log_error("transfer.bad_target", "session=%s attempt=%d why=\"%s\"", x->session_id, attempt, why);
            continue;
        }
        if (x->can_dial != NULL && !x->can_dial(&out->target)) {
            log_warn("transfer.skipped", "session=%s attempt=%d why=\"this platform cannot dial the target\"",
                     x->session_id, attempt);
            continue;
        }
        out->kind = STAGE_DIAL;
        out->raw = raw;
        out->notice = first ? "Please hold while I connect you." : "Please hold, I am trying another line.";
        /* "original" shows the caller to the agent (Aircall, a PBX queue); a withheld or SIP caller
         * cannot be presented on a number, so the business number stands in */
        out->caller_id =
            x->policy->caller_id == CALLER_ID_ORIGINAL && policy_looks_e164(x->caller) ? x->caller : x->business;
        return;
    }
}
