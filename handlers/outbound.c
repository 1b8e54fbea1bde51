#include "handlers/outbound.h"
#include "handlers/calls.h"
#include "handlers/twilio.h"
#include "asterisk/app.h"
#include "jambonz/module.h"
#include "server/ids.h"
#include "server/log.h"
#include "server/twilio_rest.h"
#include "server/worker.h"
#include "server/e164.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAVED_MAX 2048

/* An initiate waiting for Twilio. Outlives the HTTP request if the client leaves: the
 * outcome is still recorded on the session. */
typedef struct initiate {
    worker_t *w;
    http_req_t *r; /* NULL once the client is gone */
    long call_id;
    char session_id[33];
} initiate_t;

static int agent_type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int key_ok(h2o_iovec_t k)
{
    if (k.len == 0 || k.len > 128)
        return 0;
    for (size_t i = 0; i < k.len; i++)
        if (k.base[i] < 0x21 || k.base[i] > 0x7e)
            return 0;
    return 1;
}

/* Sends {http_status, body} as saved for an idempotent replay, or built now. */
static void send_saved(http_req_t *r, const char *saved)
{
    json_t *o = json_loads(saved, 0, NULL);
    json_t *body = json_object_get(o, "body");
    int status = (int)json_integer_value(json_object_get(o, "http_status"));
    if (body == NULL || status < 200) {
        http_send_error(r, 500, "internal", "the saved answer of this Idempotency-Key cannot be read", NULL);
    } else {
        http_add_header(r, "idempotent-replayed", "true");
        http_send_json(r, status, json_incref(body));
    }
    json_decref(o);
}

static char *saved_json(int status, json_t *body)
{
    json_t *o = json_pack("{s:i, s:O}", "http_status", status, "body", body);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void on_gone(void *data)
{
    ((initiate_t *)data)->r = NULL;
}

static json_t *error_body(const char *code, const char *message, const char *field, const char *session_id)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "code", code, "message", message, "session_id", session_id);
    if (field != NULL)
        json_object_set_new(e, "field", json_string(field));
    return json_pack("{s:o}", "error", e);
}

/* The platform's answer to a create, as the client will see it (and an idempotent replay). */
typedef struct placed {
    int status; /* 201, or the error's */
    json_t *body;
    int transient;        /* worth retrying: the session may be initiated again */
    const char *call_sid; /* 201 */
    const char *call_status;
    int code;            /* the platform's error code, 0 when none */
    const char *message; /* the platform's message, for the session row */
    long retry_after_s;  /* -1 when the platform said nothing */
} placed_t;

/* The outcome saved, then answered: with PostgreSQL the write is awaited on a fiber (a retry
 * with the same Idempotency-Key must find the key freed once a transient failure is answered).
 * The platform's strings are copied: its result is gone when its callback returns. */
typedef struct done_job {
    initiate_t *op;
    placed_t p;
    char *saved;
    int owned; /* the strings below are the job's (else borrowed: no memory for a copy) */
    char *call_sid, *call_status, *message;
} done_job_t;

static void done_run(void *arg)
{
    done_job_t *j = arg;
    initiate_t *op = j->op;
    const placed_t *p = &j->p;
    worker_t *w = op->w;
    int rc = p->status == 201
                 ? store_outbound_placed(w->store, op->call_id, p->call_sid, p->call_status, j->saved)
                 : store_outbound_failed(w->store, op->call_id, "failed", p->code, p->message, j->saved, p->transient);
    if (rc != 0)
        log_error("db.error", "op=outbound_result session=%s error=\"%s\"", op->session_id, store_errmsg(w->store));
    if (op->r != NULL) {
        op->r->on_gone = NULL;
        if (p->status == 503) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%ld", p->retry_after_s > 0 ? (p->retry_after_s > 60 ? 60 : p->retry_after_s) : 5);
            http_add_header(op->r, "retry-after", ra);
        }
        http_send_json(op->r, p->status, p->body);
    } else {
        json_decref(p->body);
    }
    free(j->saved);
    if (j->owned) {
        free(j->call_sid);
        free(j->call_status);
        free(j->message);
        free(j);
    }
    free(op);
}

static char *dup_opt(const char *s, int *ok)
{
    char *d = s != NULL ? strdup(s) : NULL;
    if (s != NULL && d == NULL)
        *ok = 0;
    return d;
}

static void initiate_done(initiate_t *op, const placed_t *p, const char *platform)
{
    log_info("call.event", "session=%s type=%s platform=%s http=%d code=%d call_sid=%s", op->session_id,
             p->status == 201 ? "session.placed" : "session.failed", platform, p->status, p->code,
             p->call_sid != NULL && p->call_sid[0] ? p->call_sid : "-");
    platform_t pf;
    if (p->status == 201 && config_platform_parse(platform, &pf) == 0)
        metrics_call_started(&op->w->metrics, pf, METRICS_OUTBOUND);
    done_job_t local = {.op = op, .p = *p, .saved = saved_json(p->status, p->body)};
    done_job_t *j = calloc(1, sizeof(*j));
    int ok = j != NULL;
    if (ok) {
        *j = local;
        j->owned = 1;
        j->p.call_sid = j->call_sid = dup_opt(p->call_sid, &ok);
        j->p.call_status = j->call_status = dup_opt(p->call_status, &ok);
        j->p.message = j->message = dup_opt(p->message, &ok);
    }
    if (!ok) { /* no memory for a copy: written here, waiting if it must */
        if (j != NULL) {
            free(j->call_sid);
            free(j->call_status);
            free(j->message);
            free(j);
        }
        done_run(&local);
        return;
    }
    if (worker_run(op->w, done_run, j) != 0)
        done_run(j); /* no fiber to be had: it waits here */
}

static void on_created(const trest_result_t *res, void *data)
{
    initiate_t *op = data;
    placed_t p = {.code = res->twilio_code, .retry_after_s = res->retry_after_s};
    const char *twilio_msg = res->message[0] ? res->message : "no message";
    char msg[700];
    if (res->cancelled) {
        p.status = 503;
        p.transient = 1;
        p.body = error_body("shutting_down", "the server is restarting; try again", NULL, op->session_id);
    } else if (res->http_status >= 200 && res->http_status < 300 && res->call_sid[0] != '\0') {
        p.status = 201;
        p.call_sid = res->call_sid;
        p.call_status = res->call_status[0] ? res->call_status : "queued";
        p.body = json_pack("{s:s, s:s, s:s, s:s, s:b}", "session_id", op->session_id, "call_sid", res->call_sid,
                           "status", p.call_status, "message", "call placed", "twilio_configured", 1);
    } else if (res->twilio_code == 21211) {
        p.status = 400;
        p.body = error_body("invalid_phone", twilio_msg, "phone", op->session_id);
    } else if (res->twilio_code == 21210 || res->twilio_code == 21212) {
        p.status = 502;
        p.body = error_body("twilio_from_rejected", twilio_msg, NULL, op->session_id);
    } else if (res->twilio_code == 20003 || res->http_status == 401) {
        p.status = 502;
        p.body = error_body("twilio_auth", "Twilio rejected our credentials", NULL, op->session_id);
    } else if (res->twilio_code == 20429 || res->http_status == 429 || res->timed_out || res->http_status == 0 ||
               res->http_status >= 500) {
        p.status = 503;
        p.transient = 1;
        snprintf(msg, sizeof(msg), "Twilio is busy or unreachable (%s); try again",
                 res->timed_out ? "timed out" : twilio_msg);
        p.body = error_body("twilio_unavailable", msg, NULL, op->session_id);
    } else {
        p.status = 502;
        snprintf(msg, sizeof(msg), "Twilio error %d: %s", res->twilio_code, twilio_msg);
        p.body = error_body("twilio_error", msg, NULL, op->session_id);
    }
    p.message = res->message[0] ? res->message : msg;
    initiate_done(op, &p, "twilio");
}

/* jambonz's answer mapped as Twilio's is: our mistakes 502, its trouble 503 (retry). */
static void on_jambonz_created(const jrest_result_t *res, void *data)
{
    initiate_t *op = data;
    placed_t p = {.retry_after_s = res->retry_after_s};
    const char *jmsg = res->message[0] ? res->message : "no message";
    char msg[700];
    if (res->cancelled) {
        p.status = 503;
        p.transient = 1;
        p.body = error_body("shutting_down", "the server is restarting; try again", NULL, op->session_id);
    } else if (res->http_status >= 200 && res->http_status < 300 && res->call_sid[0] != '\0') {
        p.status = 201;
        p.call_sid = res->call_sid;
        p.call_status = "queued";
        p.body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "session_id", op->session_id, "call_sid", res->call_sid,
                           "status", "queued", "message", "call placed", "twilio_configured", op->w->twilio != NULL,
                           "platform", "jambonz");
    } else if (res->http_status == 401 || res->http_status == 403) {
        p.status = 502;
        p.body = error_body("jambonz_auth", "jambonz rejected our API key", NULL, op->session_id);
    } else if (res->http_status == 429 || res->timed_out || res->http_status == 0 || res->http_status >= 500) {
        p.status = 503;
        p.transient = 1;
        snprintf(msg, sizeof(msg), "jambonz is busy or unreachable (%s); try again",
                 res->timed_out ? "timed out" : jmsg);
        p.body = error_body("jambonz_unavailable", msg, NULL, op->session_id);
    } else {
        p.status = 502;
        snprintf(msg, sizeof(msg), "jambonz error %ld: %s", res->http_status, jmsg);
        p.body = error_body("jambonz_error", msg, NULL, op->session_id);
    }
    p.code = (int)res->http_status;
    p.message = res->message[0] ? res->message : msg;
    initiate_done(op, &p, "jambonz");
}

void outbound_initiate(http_req_t *r)
{
    worker_t *w = r->w;
    const config_t *cfg = &w->app->cfg;
    json_error_t jerr;
    json_t *o = json_loadb(r->req->entity.base, r->req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        http_send_error(r, 400, "invalid_json", o == NULL ? jerr.text : "the body must be a JSON object", NULL);
        json_decref(o);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "customer_id") != 0 && strcmp(key, "phone") != 0 && strcmp(key, "agent_type") != 0) {
            char field[64];
            snprintf(field, sizeof(field), "%.*s", (int)form_utf8_prefix(key, strlen(key), sizeof(field) - 1), key);
            http_send_error(r, 400, "invalid_field", "unknown field", field);
            goto out;
        }
    }
    json_t *jc = json_object_get(o, "customer_id"), *jp = json_object_get(o, "phone"),
           *ja = json_object_get(o, "agent_type");
    char customer[64];
    if (json_is_string(jc) && json_string_length(jc) > 0 && json_string_length(jc) < sizeof(customer)) {
        snprintf(customer, sizeof(customer), "%s", json_string_value(jc));
    } else if (json_is_integer(jc) && json_integer_value(jc) >= 0) {
        snprintf(customer, sizeof(customer), "%lld", (long long)json_integer_value(jc));
    } else {
        http_send_error(r, 400, "invalid_field", "required: a string of 1 to 63 characters or a whole number",
                        "customer_id");
        goto out;
    }
    if (!json_is_string(jp)) {
        http_send_error(r, 400, "invalid_field", "required: the phone number to call", "phone");
        goto out;
    }
    char phone[E164_BUFSZ];
    const char *why;
    if (e164_normalize(json_string_value(jp), cfg->default_country_code, phone, sizeof(phone), &why) != 0) {
        http_send_error(r, 400, "invalid_phone", why, "phone");
        goto out;
    }
    const char *agent = json_is_string(ja) ? json_string_value(ja) : NULL;
    if (agent == NULL || !agent_type_ok(agent)) {
        http_send_error(r, 400, "invalid_field", "required: 1 to 32 of a-z, 0-9, _ and -", "agent_type");
        goto out;
    }
    h2o_iovec_t idem = http_header(r, "idempotency-key");
    char idem_key[129];
    if (idem.len > 0) {
        if (!key_ok(idem)) {
            http_send_error(r, 400, "invalid_header", "1 to 128 visible ASCII characters", "Idempotency-Key");
            goto out;
        }
        memcpy(idem_key, idem.base, idem.len);
        idem_key[idem.len] = '\0';
    }
    /* the tenant's platform carries the call: its own setting, else DEFAULT_PLATFORM */
    store_tenant_t tenant;
    int trc = store_tenant_get(w->store, r->tenant_id, &tenant), have_tenant = trc == 0;
    if (trc == 1) { /* a valid token for a tenant that does not exist (deleted, never made): nothing to place */
        http_send_error(r, 403, "forbidden", "the token's tenant does not exist", NULL);
        goto out;
    }
    platform_t pf = cfg->default_platform;
    if (have_tenant && tenant.platform[0] != '\0' && config_platform_parse(tenant.platform, &pf) != 0)
        pf = cfg->default_platform;
    int on_asterisk = pf == PLATFORM_ASTERISK, on_jambonz = pf == PLATFORM_JAMBONZ;
    const char *from =
        on_jambonz && cfg->jambonz_phone_number != NULL ? cfg->jambonz_phone_number : cfg->twilio_phone_number;
    if (pf == PLATFORM_TWILIO && w->twilio != NULL && from == NULL) {
        http_send_error(r, 503, "not_configured", "TWILIO_PHONE_NUMBER is not set: no number to call from", NULL);
        goto out;
    }
    if (on_asterisk && (cfg->ari_url == NULL || cfg->asterisk_trunk == NULL)) {
        http_send_error(r, 503, "not_configured", "the tenant calls through Asterisk: set ARI_URL and ASTERISK_TRUNK",
                        NULL);
        goto out;
    }
    if (on_jambonz && (jambonz_rest(w) == NULL || from == NULL)) {
        http_send_error(r, 503, "not_configured",
                        "the tenant calls through jambonz: set JAMBONZ_API_BASE, JAMBONZ_ACCOUNT_SID, JAMBONZ_API_KEY "
                        "and JAMBONZ_PHONE_NUMBER",
                        NULL);
        goto out;
    }

    char session_id[33];
    ids_session(session_id);
    store_outbound_t in = {.session_id = session_id,
                           .tenant_id = r->tenant_id,
                           .customer_external_id = customer,
                           .to = phone,
                           .from = from,
                           .agent_type = agent,
                           .idempotency_key = idem.len > 0 ? idem_key : NULL,
                           .platform = config_platform_name(pf)};
    store_call_t call;
    int existing = 0;
    char saved[SAVED_MAX];
    if (store_outbound_create(w->store, &in, &call, &existing, saved, sizeof(saved)) != 0) {
        log_error("db.error", "rid=%s op=outbound_create error=\"%s\"", r->rid, store_errmsg(w->store));
        http_send_error(r, 503, "db_unavailable", "the session could not be saved", NULL);
        goto out;
    }
    if (existing) {
        if (saved[0] != '\0') {
            send_saved(r, saved);
        } else {
            http_add_header(r, "retry-after", "1");
            http_send_error(r, 409, "in_progress", "a request with this Idempotency-Key is still in progress",
                            "Idempotency-Key");
        }
        goto out;
    }
    log_info("call.event", "rid=%s session=%s type=session.created tenant=%ld agent_type=%s", r->rid, session_id,
             r->tenant_id, agent);

    if (on_asterisk) {
        /* durable before Asterisk hears of it; its events then find the session by the channel id */
        char channel[48];
        snprintf(channel, sizeof(channel), "sbo-%s", session_id);
        if (worker_commit(w) != 0) {
            http_send_error(r, 503, "db_unavailable", "the session could not be saved", NULL);
            goto out;
        }
        if (asterisk_originate(w, &call, cfg->twilio_phone_number) != 0) {
            store_outbound_failed(w->store, call.id, "failed", 0, "could not start the Asterisk request", NULL, 1);
            http_send_error(r, 503, "asterisk_unavailable", "could not start the Asterisk request", NULL);
            goto out;
        }
        json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "session_id", session_id, "call_sid", channel,
                                 "status", "initiated", "message", "the call is being placed through Asterisk",
                                 "twilio_configured", w->twilio != NULL, "platform", "asterisk");
        metrics_call_started(&w->metrics, PLATFORM_ASTERISK, METRICS_OUTBOUND);
        char *s = saved_json(201, body);
        if (store_outbound_placed(w->store, call.id, channel, "initiated", s) != 0)
            log_error("db.error", "rid=%s op=outbound_placed error=\"%s\"", r->rid, store_errmsg(w->store));
        free(s);
        http_send_json(r, 201, body);
        goto out;
    }

    initiate_t *op = NULL;
    if (on_jambonz) {
        /* durable before jambonz hears of it: its call hook finds the session */
        if (worker_commit(w) != 0 || (op = calloc(1, sizeof(*op))) == NULL) {
            http_send_error(r, 503, "db_unavailable", "the session could not be saved", NULL);
            goto out;
        }
        const char *base = http_base_url(r);
        char hook[1200], status_hook[1200];
        snprintf(hook, sizeof(hook), "%s/jambonz/call?session=%s", base, session_id);
        snprintf(status_hook, sizeof(status_hook), "%s/jambonz/status?session=%s", base, session_id);
        jrest_create_t p = {.from = from,
                            .to_type = JREST_TO_PHONE,
                            .to = phone,
                            .trunk = cfg->jambonz_trunk,
                            .call_hook_url = hook,
                            .call_status_hook_url = status_hook,
                            .timeout_s = 30};
        op->w = w;
        op->r = r;
        op->call_id = call.id;
        memcpy(op->session_id, session_id, sizeof(op->session_id));
        if (jrest_create_call(jambonz_rest(w), &p, on_jambonz_created, op) == NULL) {
            free(op);
            store_outbound_failed(w->store, call.id, "failed", 0, "could not start the jambonz request", NULL, 1);
            http_send_error(r, 503, "jambonz_unavailable", "could not start the jambonz request", NULL);
            goto out;
        }
        r->on_gone = on_gone;
        r->gone_data = op;
        goto out;
    }

    if (w->twilio == NULL) {
        json_t *body = json_pack(
            "{s:s, s:n, s:s, s:s, s:b}", "session_id", session_id, "call_sid", "status", "simulation", "message",
            "Twilio is not configured: the call was simulated, not placed", "twilio_configured", 0);
        char *s = saved_json(201, body);
        if (store_outbound_placed(w->store, call.id, NULL, "simulation", s) != 0)
            log_error("db.error", "rid=%s op=outbound_simulated error=\"%s\"", r->rid, store_errmsg(w->store));
        free(s);
        http_send_json(r, 201, body);
        goto out;
    }

    /* the session must be durable before Twilio hears of it */
    if (worker_commit(w) != 0) {
        http_send_error(r, 503, "db_unavailable", "the session could not be saved", NULL);
        goto out;
    }
    twilio_req_t t;
    twilio_req_preview(r, &t);
    static const char *const events[] = {"initiated", "ringing", "answered", "completed", NULL};
    int amd = have_tenant && tenant.amd_action[0] != '\0';
    trest_create_t p = {
        .to = phone,
        .from = cfg->twilio_phone_number,
        .url = twilio_url(&t, "/twilio/connect/%s", session_id),
        .method = "POST",
        .status_callback = twilio_url(&t, "/twilio/status/%s", session_id),
        .status_callback_events = events,
        .timeout_s = 30,
        .machine_detection = amd ? "DetectMessageEnd" : NULL,
        .async_amd = amd,
        .async_amd_status_callback = amd ? twilio_url(&t, "/twilio/amd/%s", session_id) : NULL,
    };
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        goto out;
    }
    op->w = w;
    op->r = r;
    op->call_id = call.id;
    memcpy(op->session_id, session_id, sizeof(op->session_id));
    if (trest_create_call(w->twilio, &p, on_created, op) == NULL) {
        free(op);
        store_outbound_failed(w->store, call.id, "failed", 0, "could not start the Twilio request", NULL, 1);
        http_send_error(r, 503, "twilio_unavailable", "could not start the Twilio request", NULL);
        goto out;
    }
    r->on_gone = on_gone;
    r->gone_data = op;
out:
    json_decref(o);
}

/* The session of a /twilio/.../{session_id} webhook, or answered (apology) and 1. */
static int session_call(twilio_req_t *t, store_call_t *call)
{
    http_req_t *r = t->r;
    h2o_iovec_t sp = http_param(r, 0);
    char session[64];
    int rc = 1;
    if (sp.len < sizeof(session) && calls_session_ok(sp.base, sp.len)) {
        memcpy(session, sp.base, sp.len);
        session[sp.len] = '\0';
        rc = store_call_by_session(r->w->store, session, call);
    } else {
        snprintf(session, sizeof(session), "-"); /* bytes no session id holds: not asked for, not logged */
    }
    if (rc == 0)
        return 0;
    if (rc < 0)
        log_error("db.error", "rid=%s op=call_by_session error=\"%s\"", r->rid, store_errmsg(r->w->store));
    else
        log_warn("twilio.unknown_session", "rid=%s session=%.40s", r->rid, session);
    twilio_send_apology(r, 200);
    return 1;
}

void outbound_connect(http_req_t *r)
{
    twilio_req_t t;
    store_call_t call;
    if (twilio_begin(r, &t) != 0 || session_call(&t, &call) != 0)
        return;
    const config_t *cfg = &r->w->app->cfg;
    calls_event(r, &call, "session.answered", json_pack("{s:s?}", "answered_by", twilio_param(&t, "AnsweredBy")));
    twiml_doc_t *doc = twiml_doc_new();
    if (strcmp(call.agent_type, "elevenlabs") == 0) {
        if (cfg->elevenlabs_phone_number == NULL) {
            log_error("outbound.no_elevenlabs_number", "rid=%s session=%s", r->rid, call.session_id);
            plan_goodbye(doc, TWILIO_APOLOGY);
        } else {
            /* forward the answered customer to the ElevenLabs agent's number */
            store_tenant_t tenant;
            call_policy_t policy;
            memset(&tenant, 0, sizeof(tenant));
            tenant.max_concurrent_calls = -1;
            if (store_tenant_get(r->w->store, call.tenant_id, &tenant) != 0)
                tenant.id = call.tenant_id;
            policy_resolve(cfg, &tenant, &policy);
            twiml_dial_opts_t d = {
                .action = twilio_url(&t, "/twilio/dial_status/%s", call.session_id),
                .method = "POST",
                .answer_on_bridge = TWIML_TRUE,
                .caller_id = policy.caller_id == CALLER_ID_ORIGINAL ? call.to_number : cfg->twilio_phone_number,
            };
            twiml_dial_begin(doc, &d);
            twiml_number(doc, cfg->elevenlabs_phone_number, NULL);
            twiml_dial_end(doc);
        }
    } else {
        char tenant_id[24];
        snprintf(tenant_id, sizeof(tenant_id), "%ld", call.tenant_id);
        plan_stream_t p = {NULL,
                           twilio_url(&t, "/twilio/connect_action?session=%s", call.session_id),
                           twilio_stream_url(&t),
                           call.session_id,
                           tenant_id,
                           call.agent_type};
        /* the agent type picks the instruction set when the stream starts */
        plan_ai_stream(doc, &p);
    }
    twilio_send_doc(&t, 200, doc);
}

void outbound_dial_status(http_req_t *r)
{
    twilio_req_t t;
    store_call_t call;
    if (twilio_begin(r, &t) != 0 || session_call(&t, &call) != 0)
        return;
    const char *status = twilio_param(&t, "DialCallStatus");
    calls_event(r, &call, "forward.outcome",
                json_pack("{s:s?, s:s?, s:s?}", "status", status, "duration", twilio_param(&t, "DialCallDuration"),
                          "sip_response_code", twilio_param(&t, "DialSipResponseCode")));
    if (status != NULL && (strcmp(status, "completed") == 0 || strcmp(status, "answered") == 0)) {
        twilio_send_hangup(&t);
        return;
    }
    twilio_send_apology(r, 200);
}

static void on_amd_update(const trest_result_t *res, void *data)
{
    char *session = data;
    if (!res->cancelled && (res->http_status < 200 || res->http_status >= 300))
        log_warn("outbound.amd_update_failed", "session=%s http=%ld twilio_code=%d message=\"%s\"", session,
                 res->http_status, res->twilio_code, res->message);
    free(session);
}

void outbound_amd(http_req_t *r)
{
    twilio_req_t t;
    store_call_t call;
    if (twilio_begin(r, &t) != 0 || session_call(&t, &call) != 0)
        return;
    const char *by = twilio_param(&t, "AnsweredBy");
    if (by == NULL) {
        twilio_send_empty(r, 400);
        return;
    }
    json_t *ev =
        json_pack("{s:s, s:s?}", "answered_by", by, "detection_ms", twilio_param(&t, "MachineDetectionDuration"));
    char *json = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (store_call_amd(r->w->store, call.id, by, json) != 0)
        log_error("db.error", "rid=%s op=amd error=\"%s\"", r->rid, store_errmsg(r->w->store));
    free(json);
    log_info("call.event", "rid=%s session=%s type=call.amd answered_by=%s", r->rid, call.session_id, by);
    int machine_done = strcmp(by, "machine_end_beep") == 0 || strcmp(by, "machine_end_silence") == 0;
    if (machine_done && r->w->twilio != NULL && call.call_sid[0] != '\0') {
        store_tenant_t tenant;
        int message = store_tenant_get(r->w->store, call.tenant_id, &tenant) == 0 &&
                      strcmp(tenant.amd_action, "message") == 0 && tenant.amd_message[0] != '\0';
        char *xml = NULL;
        size_t len = 0;
        if (message) { /* leave the configured message after the beep, then hang up */
            twiml_doc_t *doc = twiml_doc_new();
            plan_goodbye(doc, tenant.amd_message);
            if (twiml_finish(doc, &xml, &len) != 0 || len > TREST_TWIML_MAX) {
                free(xml);
                xml = NULL;
            }
            twiml_doc_free(doc);
        }
        trest_update_t u = {.twiml = xml, .status = xml == NULL ? "completed" : NULL};
        char *session = strdup(call.session_id);
        if (trest_update_call(r->w->twilio, call.call_sid, &u, on_amd_update, session) == NULL)
            free(session);
        free(xml);
    }
    twilio_send_empty(r, 200);
}
