#include "handlers/api_calls.h"
#include "handlers/calls.h"
#include "handlers/twilio.h"
#include "asterisk/app.h"
#include "jambonz/module.h"
#include "server/log.h"
#include "server/twilio_rest.h"
#include "server/worker.h"

#include "server/isotime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX     200

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* YYYY-MM-DD, then optionally THH:MM, :SS, .fff and Z, a real moment (2026-02-30 and 25:61 are
 * refused); compared as text with started_at */
static int date_ok(const char *s)
{
    char day[11];
    if (strlen(s) < 10)
        return 0;
    memcpy(day, s, 10);
    day[10] = '\0';
    if (strlen(s) > 24 || !isotime_date(day))
        return 0;
    s += 10;
    if (*s == '\0')
        return 1;
    if (*s != 'T' || !digits(s + 1, 2) || s[3] != ':' || !digits(s + 4, 2))
        return 0;
    int hour = atoi(s + 1), minute = atoi(s + 4), second = 0;
    s += 6;
    if (*s == ':') {
        if (!digits(s + 1, 2))
            return 0;
        second = atoi(s + 1);
        s += 3;
        if (*s == '.') {
            if (!digits(s + 1, 3))
                return 0;
            s += 4;
        }
    }
    if (*s == 'Z')
        s++;
    return *s == '\0' && isotime_valid(2000, 1, 1, hour, minute, second);
}

void api_calls_list(http_req_t *r)
{
    form_t *query = NULL;
    int qerr = form_parse_query(r->req->path.base, r->req->path.len, NULL, &query);
    if (qerr != FORM_OK) {
        http_send_query_error(r, qerr);
        return;
    }
    store_call_filter_t f = {.tenant_id = r->tenant_id, .limit = LIST_DEFAULT};
    const char *limit = form_get(query, "limit"), *cursor = form_get(query, "cursor");
    char *end;
    if (limit != NULL) {
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || *end || v < 1 || v > LIST_MAX) {
            http_send_error(r, 400, "invalid_query", "limit must be 1 to 200", "limit");
            goto out;
        }
        f.limit = (int)v;
    }
    if (cursor != NULL) {
        errno = 0;
        long v = strtol(cursor, &end, 10);
        if (errno || *end || v < 1) {
            http_send_error(r, 400, "invalid_query", "cursor must be a value from next_cursor", "cursor");
            goto out;
        }
        f.before_id = v;
    }
    f.status = form_get(query, "status");
    f.direction = form_get(query, "direction");
    f.from = form_get(query, "from");
    f.to = form_get(query, "to");
    f.since = form_get(query, "since");
    f.until = form_get(query, "until");
    f.platform = form_get(query, "platform");
    /* a call's states: Twilio's, ours before the platform answers, a simulated call's */
    if (f.status != NULL && store_status_rank(f.status) < 0 && strcmp(f.status, "initiating") != 0 &&
        strcmp(f.status, "simulation") != 0) {
        http_send_error(
            r, 400, "invalid_query",
            "status must be a call state: queued, initiated, ringing, in-progress, completed, busy, failed, "
            "no-answer, canceled, initiating or simulation",
            "status");
        goto out;
    }
    /* free text compared with the rows: it must be text the database takes */
    static const char *const texts[] = {"from", "to"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *v = form_get(query, texts[i]);
        if (v != NULL && !form_utf8_valid(v, strlen(v))) {
            http_send_error(r, 400, "invalid_query", "must be UTF-8 text", texts[i]);
            goto out;
        }
    }
    if (f.direction != NULL && strcmp(f.direction, "inbound") != 0 && strcmp(f.direction, "outbound") != 0) {
        http_send_error(r, 400, "invalid_query", "direction must be inbound or outbound", "direction");
        goto out;
    }
    platform_t pf;
    if (f.platform != NULL && config_platform_parse(f.platform, &pf) != 0) {
        http_send_error(r, 400, "invalid_query", "platform must be twilio, asterisk or jambonz", "platform");
        goto out;
    }
    if (f.since != NULL && !date_ok(f.since)) {
        http_send_error(r, 400, "invalid_query", "since must be an ISO date, e.g. 2026-11-22 or 2026-11-22T10:00:00Z",
                        "since");
        goto out;
    }
    if (f.until != NULL && !date_ok(f.until)) {
        http_send_error(r, 400, "invalid_query", "until must be an ISO date, e.g. 2026-11-23", "until");
        goto out;
    }
    json_t *rows;
    long next = 0;
    if (store_calls_list(r->w->store, &f, &rows, &next) != 0) {
        log_error("db.error", "rid=%s op=calls_list error=\"%s\"", r->rid, store_errmsg(r->w->store));
        http_send_error(r, 503, "db_unavailable", "the calls could not be read", NULL);
        goto out;
    }
    char cur[24];
    snprintf(cur, sizeof(cur), "%ld", next);
    http_send_json(r, 200, json_pack("{s:o, s:s?}", "calls", rows, "next_cursor", next ? cur : NULL));
out:
    form_free(query);
}

/* The {id} capture (a session id) into buf; 0 or answered 404. */
static int call_id(http_req_t *r, char *buf, size_t n)
{
    h2o_iovec_t id = http_param(r, 0);
    if (id.len >= n || !calls_session_ok(id.base, id.len)) {
        http_send_error(r, 404, "not_found", "no such call", NULL);
        return -1;
    }
    memcpy(buf, id.base, id.len);
    buf[id.len] = '\0';
    return 0;
}

void api_calls_get(http_req_t *r)
{
    char id[64];
    if (call_id(r, id, sizeof(id)) != 0)
        return;
    json_t *call;
    int rc = store_call_detail(r->w->store, r->tenant_id, id, &call);
    if (rc < 0) {
        log_error("db.error", "rid=%s op=call_detail error=\"%s\"", r->rid, store_errmsg(r->w->store));
        http_send_error(r, 503, "db_unavailable", "the call could not be read", NULL);
    } else if (rc == 1) {
        http_send_error(r, 404, "not_found", "no such call", NULL); /* another tenant's call too */
    } else {
        http_send_json(r, 200, call);
    }
}

typedef struct live_op {
    http_req_t *r;
    const char *action;
} live_op_t;

static void live_gone(void *data)
{
    ((live_op_t *)data)->r = NULL;
}

/* The platform's answer to a live change, as the client sees it; frees op. gone: the platform
 * says the call is no longer in progress; busy: worth retrying (503). */
static void live_answer(live_op_t *op, int ok, int gone, int busy, const char *platform, const char *code,
                        const char *message)
{
    if (op->r != NULL) {
        http_req_t *r = op->r;
        r->on_gone = NULL;
        char msg[600];
        if (ok) {
            http_send_json(r, 202, json_pack("{s:s, s:s}", "status", "requested", "action", op->action));
        } else if (gone) {
            snprintf(msg, sizeof(msg), "%s says the call is no longer in progress", platform);
            http_send_error(r, 409, "not_in_progress", msg, NULL);
        } else {
            snprintf(msg, sizeof(msg), "%s did not update the call: %s", platform, message[0] ? message : "no answer");
            http_send_error(r, busy ? 503 : 502, code, msg, NULL);
        }
    }
    free(op);
}

static void on_updated(const trest_result_t *res, void *data)
{
    live_answer(data, res->http_status >= 200 && res->http_status < 300,
                res->twilio_code == 20404 || res->twilio_code == 21220, res->timed_out || res->http_status == 429,
                "Twilio", "twilio_error", res->message);
}

/* Finds the tenant's live call for {id}; 0, or answered (404, 409, 503) and -1. */
static int live_call(http_req_t *r, store_call_t *call)
{
    char id[64];
    if (call_id(r, id, sizeof(id)) != 0)
        return -1;
    int rc = store_call_by_session(r->w->store, id, call);
    if (rc < 0) {
        http_send_error(r, 503, "db_unavailable", "the call could not be read", NULL);
        return -1;
    }
    if (rc == 1 || call->tenant_id != r->tenant_id) {
        http_send_error(r, 404, "not_found", "no such call", NULL);
        return -1;
    }
    if (call->ended || call->call_sid[0] == '\0') {
        http_send_error(r, 409, "not_in_progress", "the call is not in progress", NULL);
        return -1;
    }
    if (strcmp(call->platform, "asterisk") == 0) {
        if (r->w->app->cfg.ari_url == NULL) {
            http_send_error(r, 503, "asterisk_not_configured", "ARI_URL is not set: Asterisk calls cannot be changed",
                            NULL);
            return -1;
        }
    } else if (strcmp(call->platform, "jambonz") == 0) {
        if (jambonz_rest(r->w) == NULL) {
            http_send_error(r, 503, "jambonz_not_configured",
                            "JAMBONZ_API_BASE is not set: jambonz calls cannot be changed", NULL);
            return -1;
        }
    } else if (r->w->twilio == NULL) {
        http_send_error(r, 503, "twilio_not_configured", "Twilio is not configured: calls cannot be changed", NULL);
        return -1;
    }
    return 0;
}

static void on_jambonz_updated(const jrest_result_t *res, void *data)
{
    live_answer(data, res->http_status >= 200 && res->http_status < 300,
                res->http_status == 404 || res->http_status == 422,
                res->timed_out || res->http_status == 0 || res->http_status == 429 || res->http_status >= 500,
                "jambonz", "jambonz_error", res->message);
}

/* The live change of a jambonz call (PUT .../Calls/{sid}), answered once jambonz has. */
static void jambonz_update(http_req_t *r, const store_call_t *call, const char *action, const jrest_update_t *u)
{
    live_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    op->r = r;
    op->action = action;
    if (jrest_update_call(jambonz_rest(r->w), call->call_sid, u, on_jambonz_updated, op) == NULL) {
        free(op);
        http_send_error(r, 503, "jambonz_unavailable", "could not start the jambonz request", NULL);
        return;
    }
    r->on_gone = live_gone;
    r->gone_data = op;
}

static void on_asterisk_done(void *data, long status, const char *message)
{
    live_op_t *op = data;
    if (op->r != NULL) {
        http_req_t *r = op->r;
        r->on_gone = NULL;
        if (status >= 200 && status < 300) {
            http_send_json(r, 202, json_pack("{s:s, s:s}", "status", "requested", "action", op->action));
        } else if (status == 404) {
            http_send_error(r, 409, "not_in_progress",
                            strcmp(op->action, "transfer") == 0
                                ? "Asterisk has no AI leg for this call: it is already being transferred or has ended"
                                : "Asterisk says the call is no longer in progress",
                            NULL);
        } else {
            char msg[400];
            snprintf(msg, sizeof(msg), "Asterisk did not change the call: %s",
                     message != NULL ? message
                     : status == 0   ? "no answer"
                                     : "error");
            http_send_error(r, status == 0 ? 503 : 502, "asterisk_error", msg, NULL);
        }
    }
    free(op);
}

/* The live change of an Asterisk call, answered once Asterisk has. */
static void asterisk_update(http_req_t *r, const store_call_t *call, const char *action)
{
    live_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    op->r = r;
    op->action = action;
    if (asterisk_live(r->w, call, action, on_asterisk_done, op) != 0) {
        free(op);
        http_send_error(r, 503, "asterisk_unavailable", "could not start the Asterisk request", NULL);
        return;
    }
    r->on_gone = live_gone;
    r->gone_data = op;
}

static void update(http_req_t *r, const store_call_t *call, const char *action, const trest_update_t *u)
{
    live_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        http_send_error(r, 503, "out_of_memory", "try again", NULL);
        return;
    }
    op->r = r;
    op->action = action;
    if (trest_update_call(r->w->twilio, call->call_sid, u, on_updated, op) == NULL) {
        free(op);
        http_send_error(r, 503, "twilio_unavailable", "could not start the Twilio request", NULL);
        return;
    }
    r->on_gone = live_gone;
    r->gone_data = op;
}

void api_calls_hangup(http_req_t *r)
{
    store_call_t call;
    if (live_call(r, &call) != 0)
        return;
    calls_event(r, &call, "api.hangup", json_pack("{s:s}", "by", r->sub));
    if (strcmp(call.platform, "asterisk") == 0) {
        asterisk_update(r, &call, "hangup");
        return;
    }
    if (strcmp(call.platform, "jambonz") == 0) {
        /* jambonz ends an answered call with completed and a ringing one with no-answer (it
         * refuses the other word); our listen answers inbound calls at once */
        int ringing = call.direction[0] == 'o' && store_status_rank(call.status) < store_status_rank("in-progress");
        jrest_update_t ju = {.call_status = ringing ? "no-answer" : "completed"};
        jambonz_update(r, &call, "hangup", &ju);
        return;
    }
    trest_update_t u = {.status = "completed"};
    update(r, &call, "hangup", &u);
}

void api_calls_transfer(http_req_t *r)
{
    const config_t *cfg = &r->w->app->cfg;
    json_t *o = json_loadb(r->req->entity.base, r->req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *jt = json_object_get(o, "target");
    if (!json_is_string(jt)) {
        http_send_error(r, 400, "invalid_field", "required: primary, secondary, voicemail or one of their values",
                        "target");
        json_decref(o);
        return;
    }
    store_call_t call;
    if (live_call(r, &call) != 0) {
        json_decref(o);
        return;
    }
    store_tenant_t tenant;
    call_policy_t policy;
    if (store_tenant_get(r->w->store, call.tenant_id, &tenant) != 0) {
        http_send_error(r, 503, "db_unavailable", "the tenant could not be read", NULL);
        json_decref(o);
        return;
    }
    policy_resolve(cfg, &tenant, &policy);
    /* only the tenant's configured targets, never a number the caller or the client made up */
    const char *want = json_string_value(jt);
    const char *stages[3] = {policy.targets[0], policy.targets[1], policy.voicemail};
    static const char *const names[3] = {"primary", "secondary", "voicemail"};
    int attempt = -1, n = 0;
    target_t chosen = {0};
    const char *chosen_raw = NULL;
    for (int i = 0; i < 3; i++) {
        if (stages[i] == NULL)
            continue;
        target_t a, b;
        const char *why;
        int parsed = target_parse(stages[i], cfg->default_country_code, &b, &why) == 0;
        int same =
            strcmp(want, names[i]) == 0 ||
            (parsed && target_parse(want, cfg->default_country_code, &a, &why) == 0 && strcmp(a.value, b.value) == 0);
        if (same && attempt < 0) {
            attempt = n;
            chosen_raw = stages[i];
            if (parsed)
                chosen = b;
        }
        n++;
    }
    if (attempt < 0) {
        http_send_error(r, 400, "invalid_field", "not one of the tenant's transfer targets", "target");
        json_decref(o);
        return;
    }
    /* the chain would skip it and dial the next target: not what was asked for */
    if (chosen.kind == TARGET_DIAL && strcmp(call.platform, "asterisk") != 0) {
        http_send_error(r, 400, "invalid_field", "an Asterisk dial string is dialed on Asterisk calls only", "target");
        json_decref(o);
        return;
    }
    if (strcmp(call.platform, "asterisk") == 0) {
        /* the app runs the chain from this stage once the AI leg is gone: the row tells it where */
        json_t *ev =
            json_pack("{s:i, s:s?, s:s, s:b, s:s}", "attempt", attempt, "target", chosen_raw, "by", r->sub, "voicemail",
                      chosen_raw != NULL && chosen_raw == policy.voicemail, "platform", "asterisk");
        char *json = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (store_call_transfer_begin(r->w->store, call.id, attempt, chosen_raw, json) != 0 ||
            store_call_set_next_action(r->w->store, call.id, "transfer", "api") != 0 || worker_commit(r->w) != 0) {
            log_error("db.error", "rid=%s op=api_transfer error=\"%s\"", r->rid, store_errmsg(r->w->store));
            http_send_error(r, 503, "db_unavailable", "the transfer could not be saved", NULL);
        } else {
            metrics_transfer_attempt(&r->w->metrics, PLATFORM_ASTERISK,
                                     metrics_stage(attempt, policy_voicemail_attempt(&policy)));
            asterisk_update(r, &call, "transfer");
        }
        free(json);
        json_decref(o);
        return;
    }
    if (strcmp(call.platform, "jambonz") == 0) {
        /* jambonz fetches new instructions from us: the stage's verbs, at step=live */
        json_t *ev =
            json_pack("{s:i, s:s?, s:s, s:b, s:s}", "attempt", attempt, "target", chosen_raw, "by", r->sub, "voicemail",
                      chosen_raw != NULL && chosen_raw == policy.voicemail, "platform", "jambonz");
        char *json = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        char hook[1200];
        snprintf(hook, sizeof(hook), "%s/jambonz/action?session=%s&step=live&attempt=%d", http_base_url(r),
                 call.session_id, attempt);
        if (store_call_transfer_begin(r->w->store, call.id, attempt, chosen_raw, json) != 0 ||
            store_call_set_next_action(r->w->store, call.id, "transfer", "api") != 0) {
            log_error("db.error", "rid=%s op=api_transfer error=\"%s\"", r->rid, store_errmsg(r->w->store));
            http_send_error(r, 503, "db_unavailable", "the transfer could not be saved", NULL);
        } else {
            metrics_transfer_attempt(&r->w->metrics, PLATFORM_JAMBONZ,
                                     metrics_stage(attempt, policy_voicemail_attempt(&policy)));
            jrest_update_t ju = {.call_hook_url = hook};
            jambonz_update(r, &call, "transfer", &ju);
        }
        free(json);
        json_decref(o);
        return;
    }
    twilio_req_t t;
    twilio_req_preview(r, &t);
    transfer_ctx_t x = {cfg, &policy, &t, call.session_id,
                        call.direction[0] == 'o' ? call.to_number : call.from_number};
    twiml_doc_t *doc = twiml_doc_new();
    stage_t st;
    transfer_render(doc, &x, attempt, &st);
    const char *dialed = st.kind == STAGE_DIAL ? st.raw : NULL;
    attempt = st.attempt;
    char *xml = NULL;
    size_t len = 0;
    if (twiml_finish(doc, &xml, &len) != 0 || len > TREST_TWIML_MAX) {
        http_send_error(r, 500, "twiml_error", "the transfer TwiML could not be rendered", NULL);
    } else {
        json_t *ev = json_pack("{s:i, s:s?, s:s, s:b}", "attempt", attempt, "target", dialed, "by", r->sub, "voicemail",
                               dialed != NULL && dialed == policy.voicemail);
        char *json = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (store_call_transfer_begin(r->w->store, call.id, attempt, dialed, json) != 0)
            log_error("db.error", "rid=%s op=transfer_begin error=\"%s\"", r->rid, store_errmsg(r->w->store));
        if (st.kind != STAGE_GOODBYE)
            metrics_transfer_attempt(&r->w->metrics, PLATFORM_TWILIO,
                                     metrics_stage(attempt, policy_voicemail_attempt(&policy)));
        free(json);
        trest_update_t u = {.twiml = xml};
        update(r, &call, "transfer", &u);
    }
    free(xml);
    twiml_doc_free(doc);
    json_decref(o);
}

void api_calls_recording(http_req_t *r)
{
    char id[64], path[1024];
    if (call_id(r, id, sizeof(id)) != 0)
        return;
    int rc = store_call_recording_file(r->w->store, r->tenant_id, id, path, sizeof(path));
    if (rc < 0) {
        http_send_error(r, 503, "db_unavailable", "the call could not be read", NULL);
        return;
    }
    if (rc == 1) {
        http_send_error(r, 404, "not_found", "no recording for this call", NULL);
        return;
    }
    /* h2o streams the file from disk (no copy into memory); a file removed since reads as 404 */
    r->status = 200;
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("private, no-store"));
    if (h2o_file_send(r->req, 200, "OK", path, h2o_iovec_init(H2O_STRLIT("audio/wav")), 0) != 0)
        http_send_error(r, 404, "not_found", "the recording file is missing", NULL);
}
