#include "handlers/jambonz.h"
#include "handlers/calls.h"
#include "jambonz/plan.h"
#include "server/log.h"
#include "server/worker.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void apology_on_store_failure(http_req_t *r)
{
    jambonz_send_apology(r, 200); /* jambonz always gets verbs */
}

int jambonz_begin(http_req_t *r, jambonz_req_t *j)
{
    h2o_req_t *req = r->req;
    const config_t *cfg = &r->w->app->cfg;
    memset(j, 0, sizeof(*j));
    j->r = r;
    r->on_store_failure = apology_on_store_failure;
    j->base_url = http_base_url(r);
    const char *body = req->entity.base != NULL ? req->entity.base : "";
    size_t len = req->entity.len;
    if (cfg->jambonz_webhook_secret != NULL) {
        h2o_iovec_t sig = http_header(r, "jambonz-signature");
        jhook_sig_t v = jhook_verify(cfg->jambonz_webhook_secret, sig.base, sig.len, body, len, time(NULL));
        if (v != JHOOK_SIG_OK) {
            char path[300];
            log_warn("jambonz.bad_signature", "rid=%s path=%s signature=%s", r->rid,
                     log_quote(path, sizeof(path), req->path.base, req->path.len), jhook_sig_strerror(v));
            http_send(r, 403, "text/plain; charset=utf-8", H2O_STRLIT("invalid Jambonz-Signature\n"));
            return -1;
        }
    }
    int err;
    j->query = http_query(r, &err);
    if (j->query == NULL || !form_utf8(j->query)) {
        log_warn("jambonz.bad_request", "rid=%s why=\"query: %s\"", r->rid,
                 j->query == NULL ? form_strerror(err) : "not UTF-8");
        jambonz_send_apology(r, 400);
        return -1;
    }
    const char *field = NULL;
    int rc = jhook_parse(body, len, &j->hook, &field);
    if (rc != JHOOK_OK) {
        log_warn("jambonz.bad_request", "rid=%s why=\"%s\" field=%s", r->rid, jhook_strerror(rc),
                 field != NULL ? field : "-");
        jambonz_send_apology(r, 400);
        return -1;
    }
    return 0;
}

const char *jambonz_query(const jambonz_req_t *j, const char *name)
{
    return form_get(j->query, name);
}

const char *jambonz_url(const jambonz_req_t *j, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    size_t bl = strlen(j->base_url), pl = strlen(path);
    char *out = h2o_mem_alloc_pool(&j->r->req->pool, bl + pl + 1);
    memcpy(out, j->base_url, bl);
    memcpy(out + bl, path, pl + 1);
    return out;
}

const char *jambonz_listen_url(const jambonz_req_t *j)
{
    const char *b = j->base_url;
    int plain = strncmp(b, "http://", 7) == 0;
    const char *rest = strncmp(b, "https://", 8) == 0 ? b + 8 : plain ? b + 7 : b;
    size_t n = strlen(rest);
    char *out = h2o_mem_alloc_pool(&j->r->req->pool, n + 32);
    sprintf(out, "%s%s/jambonz/listen", plain ? "ws://" : "wss://", rest);
    return out;
}

int jambonz_ws_password(const config_t *cfg, const char *session, char out[33])
{
    if (cfg->jambonz_webhook_secret == NULL)
        return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "listen:%s", session);
    if (HMAC(EVP_sha256(), cfg->jambonz_webhook_secret, (int)strlen(cfg->jambonz_webhook_secret),
             (const unsigned char *)msg, (size_t)len, mac, &n) == NULL)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[32] = '\0';
    return 0;
}

void jambonz_send(http_req_t *r, int status, json_t *verbs)
{
    char *s = verbs != NULL ? json_dumps(verbs, JSON_COMPACT) : NULL;
    json_decref(verbs);
    if (s == NULL) {
        /* out of memory: a constant array is the last resort */
        static const char fallback[] = "[{\"verb\":\"hangup\"}]";
        http_send(r, status, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    http_send(r, status, "application/json", s, strlen(s));
    free(s);
}

void jambonz_send_apology(http_req_t *r, int status)
{
    json_t *v = json_array();
    if (v != NULL && jplan_goodbye(v, CALL_APOLOGY) != 0) {
        json_decref(v);
        v = NULL;
    }
    jambonz_send(r, status, v);
}

static int jambonz_can_dial(const target_t *t)
{
    return t->kind == TARGET_NUMBER || t->kind == TARGET_SIP; /* a dial string is Asterisk's */
}

json_t *jambonz_transfer(const jambonz_req_t *j, const call_policy_t *policy, const store_call_t *call, int attempt,
                         stage_t *out)
{
    const config_t *cfg = &j->r->w->app->cfg;
    int outbound = call->direction[0] == 'o';
    const char *caller = outbound ? call->to_number : call->from_number;
    /* the business number: the one the caller dialed (inbound), the one we called from (outbound) */
    const char *business = outbound ? call->from_number : call->to_number;
    stage_ctx_t sx = {cfg, policy, call->session_id, caller, business[0] ? business : NULL, jambonz_can_dial};
    policy_stage(&sx, attempt, out);
    json_t *verbs = json_array();
    if (verbs == NULL)
        return NULL;
    int rc;
    if (out->kind == STAGE_GOODBYE) {
        rc = jplan_goodbye(verbs, out->notice);
    } else if (out->kind == STAGE_RECORD) {
        jplan_voicemail_t v = {
            .prompt = out->notice,
            .url = jambonz_listen_url(j),
            .action_hook =
                jambonz_url(j, "/jambonz/action?session=%s&step=voicemail&attempt=%d", call->session_id, out->attempt),
            .session_id = call->session_id,
            .max_length_s = 120,
        };
        char pass[33];
        if (jambonz_ws_password(cfg, call->session_id, pass) == 0) {
            v.ws_username = call->session_id;
            v.ws_password = h2o_strdup(&j->r->req->pool, pass, 32).base;
        }
        rc = jplan_voicemail(verbs, &v);
    } else {
        int sip = out->target.kind == TARGET_SIP;
        jplan_transfer_t p = {
            .notice = out->notice,
            .target = &out->target,
            .caller_id = out->caller_id,
            .timeout_s = cfg->transfer_timeout,
            .action_hook =
                jambonz_url(j, "/jambonz/action?session=%s&step=dial&attempt=%d", call->session_id, out->attempt),
            .sip_username = sip ? cfg->freepbx_sip_username : NULL,
            .sip_password = sip ? cfg->freepbx_sip_password : NULL,
            .trunk = out->target.kind == TARGET_NUMBER ? cfg->jambonz_trunk : NULL,
            .answer_on_bridge = 1,
        };
        rc = jplan_transfer(verbs, &p);
    }
    if (rc != 0) {
        log_error("jambonz.render_failed", "rid=%s session=%s stage=%d", j->r->rid, call->session_id, out->attempt);
        json_array_clear(verbs);
        if (jplan_goodbye(verbs, CALL_APOLOGY) != 0) {
            json_decref(verbs);
            return NULL;
        }
    }
    return verbs;
}

void jambonz_transfer_answer(jambonz_req_t *j, const store_call_t *call, const call_policy_t *policy, int attempt)
{
    stage_t st;
    json_t *verbs = jambonz_transfer(j, policy, call, attempt, &st);
    calls_attempt_begin(j->r, call, &st);
    jambonz_send(j->r, 200, verbs);
}
