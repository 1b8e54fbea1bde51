/*
 * Scenarios (JSON object):
 *   {"kind":"inbound", "to":"+1...", "caller":"+1..."}   what POST /twilio/voice answers for that number
 *   {"kind":"transfer", "target":"sip:...", "caller":"+1...", "caller_id_policy":"business"}
 *                                                        the transfer to `target` as the primary
 *   {"kind":"fallback", "attempt":1, "caller":"+1..."}   stage `attempt` of the configured chain
 *   {"kind":"reject"}                                    the over-the-limit answer
 * Nothing is written to the database.
 */
#include "handlers/twiml_preview.h"
#include "handlers/transfer.h"
#include "handlers/twilio.h"
#include "server/worker.h"
#include "server/e164.h"

#include <stdio.h>
#include <string.h>

static const char *const allowed[] = {"kind", "to", "caller", "target", "caller_id_policy", "attempt", NULL};

static int bad(http_req_t *r, const char *field, const char *message)
{
    http_send_error(r, 400, "invalid_scenario", message, field);
    return -1;
}

/* An optional string member: NULL when absent; -1 answered when present but not a string. */
static int get_str(http_req_t *r, json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 512)
        return bad(r, key, "must be a non-empty string of at most 512 bytes");
    *out = json_string_value(v);
    return 0;
}

void twiml_preview(http_req_t *r)
{
    const config_t *cfg = &r->w->app->cfg;
    json_error_t jerr;
    json_t *o = json_loadb(r->req->entity.base, r->req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", o == NULL ? ": " : "",
                 o == NULL ? jerr.text : "");
        http_send_error(r, 400, "invalid_json", msg, NULL);
        json_decref(o);
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        int known = 0;
        for (int i = 0; allowed[i] != NULL; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known) {
            char field[64];
            snprintf(field, sizeof(field), "%.*s", (int)form_utf8_prefix(key, strlen(key), sizeof(field) - 1), key);
            bad(r, field, "unknown field");
            goto out;
        }
    }
    const char *kind, *to, *caller_in, *target_in, *cid;
    if (get_str(r, o, "kind", &kind) || get_str(r, o, "to", &to) || get_str(r, o, "caller", &caller_in) ||
        get_str(r, o, "target", &target_in) || get_str(r, o, "caller_id_policy", &cid))
        goto out;
    if (kind == NULL) {
        bad(r, "kind", "required: inbound, transfer, fallback or reject");
        goto out;
    }
    char caller[E164_BUFSZ] = "";
    const char *why;
    if (caller_in != NULL && e164_normalize(caller_in, cfg->default_country_code, caller, sizeof(caller), &why) != 0) {
        bad(r, "caller", why);
        goto out;
    }
    if (cid != NULL && strcmp(cid, "original") != 0 && strcmp(cid, "business") != 0) {
        bad(r, "caller_id_policy", "must be original or business");
        goto out;
    }
    int attempt = 0;
    json_t *a = json_object_get(o, "attempt");
    if (a != NULL && (!json_is_integer(a) || json_integer_value(a) < 0 || json_integer_value(a) > 8)) {
        bad(r, "attempt", "must be an integer from 0 to 8");
        goto out;
    }
    if (a != NULL)
        attempt = (int)json_integer_value(a);

    store_tenant_t tenant;
    if (store_tenant_for_number(r->w->store, to, cfg->default_tenant_id, &tenant) != 0) {
        http_send_error(r, 503, "db_unavailable", "the database could not be read", NULL);
        goto out;
    }
    call_policy_t policy;
    policy_resolve(cfg, &tenant, &policy);
    if (cid != NULL)
        policy.caller_id = strcmp(cid, "business") == 0 ? CALLER_ID_BUSINESS : CALLER_ID_ORIGINAL;

    twilio_req_t t;
    twilio_req_preview(r, &t);
    transfer_ctx_t x = {cfg, &policy, &t, "preview", caller};
    twiml_doc_t *doc = twiml_doc_new();
    stage_t st;
    if (strcmp(kind, "transfer") == 0) {
        target_t target;
        if (target_in == NULL || target_parse(target_in, cfg->default_country_code, &target, &why) != 0) {
            bad(r, "target", target_in == NULL ? "required for a transfer" : why);
            twiml_doc_free(doc);
            goto out;
        }
        if (target.kind == TARGET_DIAL) { /* Twilio would skip it: there is nothing to preview */
            bad(r, "target", "an Asterisk dial string is dialed on Asterisk calls only, never by Twilio");
            twiml_doc_free(doc);
            goto out;
        }
        policy.targets[0] = target_in;
        transfer_render(doc, &x, attempt, &st);
    } else if (strcmp(kind, "fallback") == 0) {
        transfer_render(doc, &x, attempt, &st);
    } else if (strcmp(kind, "reject") == 0) {
        plan_reject_busy(doc, "All of our lines are busy right now. Please call again later.");
    } else if (strcmp(kind, "inbound") == 0) {
        if (policy.ai == AI_NONE || policy.transfer_first) {
            transfer_render(doc, &x, attempt, &st);
        } else {
            char tenant_id[24];
            snprintf(tenant_id, sizeof(tenant_id), "%ld", tenant.id);
            plan_stream_t p = {policy.ai == AI_ECHO ? policy.greeting : NULL,
                               twilio_url(&t, "/twilio/connect_action?session=preview"), twilio_stream_url(&t),
                               "preview", tenant_id};
            plan_ai_stream(doc, &p);
        }
    } else {
        bad(r, "kind", "must be inbound, transfer, fallback or reject");
        twiml_doc_free(doc);
        goto out;
    }
    twilio_send_doc(&t, 200, doc);
out:
    json_decref(o);
}
