#include "handlers/twilio.h"
#include "server/log.h"
#include "server/sig.h"
#include "server/worker.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void apology_on_store_failure(http_req_t *r)
{
    twilio_send_apology(r, 200);
}

int twilio_begin(http_req_t *r, twilio_req_t *t)
{
    h2o_req_t *req = r->req;
    const config_t *cfg = &r->w->app->cfg;
    memset(t, 0, sizeof(*t));
    t->r = r;
    r->on_store_failure = apology_on_store_failure; /* Twilio always gets TwiML */
    t->base_url = http_base_url(r);
    int err;
    t->query = http_query(r, &err);
    if (t->query == NULL) {
        log_warn("twilio.bad_request", "rid=%s why=\"query: %s\"", r->rid, form_strerror(err));
        twilio_send_apology(r, 400);
        return -1;
    }
    const char *json_sha = form_get(t->query, "bodySHA256");
    if (json_sha == NULL) {
        t->form = http_form(r, req->entity.base ? req->entity.base : "", req->entity.len, &err);
        if (t->form == NULL) {
            log_warn("twilio.bad_request", "rid=%s why=\"body: %s\"", r->rid, form_strerror(err));
            twilio_send_apology(r, 400);
            return -1;
        }
    } else {
        t->form = http_form(r, "", 0, &err); /* JSON body: no form parameters */
    }
    /* Twilio sends UTF-8 only; anything else would be stored as is (or refused by PostgreSQL) */
    if (!form_utf8(t->query) || !form_utf8(t->form)) {
        log_warn("twilio.bad_request", "rid=%s why=\"parameters are not UTF-8\"", r->rid);
        twilio_send_apology(r, 400);
        return -1;
    }
    if (cfg->twilio_auth_token == NULL)
        return 0;

    h2o_iovec_t sig = http_header(r, "x-twilio-signature");
    char url[4096];
    size_t url_len;
    int valid = 0;
    if (sig.len > 0 && sig_build_url(url, sizeof(url), t->base_url, req->path.base, req->path.len, &url_len) == 0)
        valid = json_sha == NULL ? sig_validate_form(cfg->twilio_auth_token, url, t->form, sig.base, sig.len)
                                 : sig_validate_json(cfg->twilio_auth_token, url, req->entity.base, req->entity.len,
                                                     sig.base, sig.len);
    if (valid == 1)
        return 0;
    char path[300];
    log_warn("twilio.bad_signature", "rid=%s path=%s signature=%s", r->rid,
             log_quote(path, sizeof(path), req->path.base, req->path.len), sig.len ? "mismatch" : "missing");
    http_send(r, 403, "text/plain; charset=utf-8", H2O_STRLIT("invalid X-Twilio-Signature\n"));
    return -1;
}

void twilio_req_preview(http_req_t *r, twilio_req_t *t)
{
    int err;
    memset(t, 0, sizeof(*t));
    t->r = r;
    t->base_url = http_base_url(r);
    t->form = http_form(r, "", 0, &err);
    t->query = t->form;
}

const char *twilio_param(const twilio_req_t *t, const char *name)
{
    return form_get(t->form, name);
}

const char *twilio_query(const twilio_req_t *t, const char *name)
{
    return form_get(t->query, name);
}

const char *twilio_url(const twilio_req_t *t, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    size_t bl = strlen(t->base_url), pl = strlen(path);
    char *out = h2o_mem_alloc_pool(&t->r->req->pool, bl + pl + 1);
    memcpy(out, t->base_url, bl);
    memcpy(out + bl, path, pl + 1);
    return out;
}

const char *twilio_stream_url(const twilio_req_t *t)
{
    const char *b = t->base_url;
    const char *rest = strncmp(b, "https://", 8) == 0 ? b + 8 : strncmp(b, "http://", 7) == 0 ? b + 7 : b;
    const char *scheme = strncmp(b, "http://", 7) == 0 ? "ws://" : "wss://";
    /* only the host: a path prefix of the base is kept, the media path is ours */
    size_t n = strlen(rest);
    char *out = h2o_mem_alloc_pool(&t->r->req->pool, n + 32);
    sprintf(out, "%s%s/twilio/media", scheme, rest);
    return out;
}

static void send_xml(http_req_t *r, int status, const char *xml, size_t len)
{
    http_send(r, status, "text/xml; charset=utf-8", xml, len);
}

void twilio_send_apology(http_req_t *r, int status)
{
    twiml_doc_t *doc = twiml_doc_new();
    char *xml = NULL;
    size_t len = 0;
    if (doc != NULL && plan_goodbye(doc, TWILIO_APOLOGY) == 0 && twiml_finish(doc, &xml, &len) == 0) {
        send_xml(r, status, xml, len);
    } else {
        /* out of memory: a constant document is the last resort */
        static const char fallback[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>";
        send_xml(r, status, fallback, sizeof(fallback) - 1);
    }
    free(xml);
    twiml_doc_free(doc);
}

void twilio_send_hangup(twilio_req_t *t)
{
    twiml_doc_t *doc = twiml_doc_new();
    if (doc != NULL)
        twiml_hangup(doc);
    twilio_send_doc(t, 200, doc);
}

void twilio_send_empty(http_req_t *r, int status)
{
    twiml_doc_t *doc = twiml_doc_new();
    char *xml = NULL;
    size_t len = 0;
    if (doc != NULL && twiml_finish(doc, &xml, &len) == 0)
        send_xml(r, status, xml, len);
    else
        twilio_send_apology(r, status);
    free(xml);
    twiml_doc_free(doc);
}

void twilio_send_doc(twilio_req_t *t, int status, twiml_doc_t *doc)
{
    char *xml = NULL;
    size_t len = 0;
    int rc = doc == NULL ? TWIML_ENOMEM : twiml_finish(doc, &xml, &len);
    if (rc == 0) {
        send_xml(t->r, status, xml, len);
    } else {
        log_error("twiml.render_failed", "rid=%s error=\"%s\" detail=\"%s\"", t->r->rid, twiml_strerror(rc),
                  doc ? twiml_errmsg(doc) : "");
        twilio_send_apology(t->r, status);
    }
    free(xml);
    twiml_doc_free(doc);
}

int twilio_sid_valid(const char *sid, const char *prefix)
{
    if (sid == NULL || strlen(sid) != 34 || strncmp(sid, prefix, 2) != 0)
        return 0;
    for (int i = 2; i < 34; i++)
        if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'a' && sid[i] <= 'f') || (sid[i] >= 'A' && sid[i] <= 'F')))
            return 0;
    return 1;
}

static int twilio_can_dial(const target_t *t)
{
    return t->kind == TARGET_NUMBER || t->kind == TARGET_SIP; /* an Asterisk dial string means nothing to Twilio */
}

/* Twilio dials numbers and SIP URIs; a dial-string stage is skipped (policy_stage logs it). */
void transfer_render(twiml_doc_t *doc, const transfer_ctx_t *x, int attempt, stage_t *out)
{
    stage_ctx_t sx = {x->cfg, x->policy, x->session_id, x->caller, x->cfg->twilio_phone_number, twilio_can_dial};
    policy_stage(&sx, attempt, out);
    const stage_t st = *out;
    if (st.kind == STAGE_GOODBYE) {
        plan_goodbye(doc, st.notice);
    } else if (st.kind == STAGE_RECORD) {
        plan_voicemail_t v = {
            .prompt = st.notice,
            .action_url = twilio_url(x->t, "/twilio/transfer_callback?session=%s&attempt=%d&voicemail=1", x->session_id,
                                     st.attempt),
            .recording_callback_url = twilio_url(x->t, "/twilio/recording?session=%s", x->session_id),
            .max_length_s = 120,
        };
        plan_voicemail(doc, &v);
    } else {
        int sip = st.target.kind == TARGET_SIP;
        plan_transfer_t p = {
            .notice = st.notice,
            .target = &st.target,
            .caller_id = st.caller_id,
            .timeout_s = x->cfg->transfer_timeout,
            .action_url =
                twilio_url(x->t, "/twilio/transfer_callback?session=%s&attempt=%d", x->session_id, st.attempt),
            .sip_username = sip ? x->cfg->freepbx_sip_username : NULL,
            .sip_password = sip ? x->cfg->freepbx_sip_password : NULL,
            .apology = TWILIO_APOLOGY,
        };
        plan_transfer(doc, &p);
    }
}
