#include "server/twilio_rest.h"
#include "server/log.h"

#include <h2o.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX      (64 * 1024)
#define UPDATE_ATTEMPTS   4
#define BACKOFF_FIRST_MS  250
#define BACKOFF_CAP_MS    4000
#define RETRY_AFTER_CAP_S 10

struct trest {
    uv_loop_t *loop;
    curlm_t *curl;
    const config_t *cfg;
    char userpwd[256];
    char calls_url[512]; /* .../2010-04-01/Accounts/{sid}/Calls */
    h2o_linklist_t ops;
    size_t npending;
};

struct trest_op {
    trest_t *t;
    h2o_linklist_t link;
    CURL *easy;
    struct curl_slist *headers;
    char *url, *body;
    char *resp;
    size_t resp_len;
    int resp_truncated;
    long retry_after_s;
    int is_update, attempts;
    uv_timer_t *retry_timer; /* allocated while a retry waits: its close is asynchronous */
    trest_cb cb;
    void *data;
};

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} form_buf_t;

static void form_add(form_buf_t *f, CURL *easy, const char *key, const char *value)
{
    if (value == NULL || f->failed)
        return;
    char *esc = curl_easy_escape(easy, value, 0);
    size_t need = f->len + strlen(key) + strlen(esc) + 3;
    if (need > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 512;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(f->buf, cap);
        if (grown == NULL) {
            f->failed = 1;
            curl_free(esc);
            return;
        }
        f->buf = grown;
        f->cap = cap;
    }
    f->len += (size_t)sprintf(f->buf + f->len, "%s%s=%s", f->len ? "&" : "", key, esc);
    curl_free(esc);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    trest_op_t *op = ud;
    size_t len = size * n;
    if (op->resp_len + len > RESPONSE_MAX) {
        op->resp_truncated = 1;
        return len; /* keep reading; the parse reports the truncation */
    }
    char *grown = realloc(op->resp, op->resp_len + len + 1);
    if (grown == NULL)
        return 0;
    op->resp = grown;
    memcpy(op->resp + op->resp_len, ptr, len);
    op->resp_len += len;
    op->resp[op->resp_len] = '\0';
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    trest_op_t *op = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(ptr, "retry-after:", 12) == 0) {
        long v = strtol(ptr + 12, NULL, 10);
        if (v >= 0)
            op->retry_after_s = v > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : v;
    }
    return len;
}

static void copy_str(char *dst, size_t dstsz, json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, dstsz, "%s", json_string_value(v));
}

static void parse_response(const trest_op_t *op, trest_result_t *res)
{
    if (op->resp == NULL || op->resp_truncated)
        return;
    json_t *j = json_loadb(op->resp, op->resp_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *code = json_object_get(j, "code");
    if (json_is_integer(code))
        res->twilio_code = (int)json_integer_value(code);
    copy_str(res->message, sizeof(res->message), json_object_get(j, "message"));
    copy_str(res->more_info, sizeof(res->more_info), json_object_get(j, "more_info"));
    if (res->http_status >= 200 && res->http_status < 300) {
        copy_str(res->call_sid, sizeof(res->call_sid), json_object_get(j, "sid"));
        copy_str(res->call_status, sizeof(res->call_status), json_object_get(j, "status"));
    }
    json_decref(j);
}

static void op_free(trest_op_t *op)
{
    if (h2o_linklist_is_linked(&op->link)) {
        h2o_linklist_unlink(&op->link);
        op->t->npending--;
    }
    if (op->easy != NULL)
        curl_easy_cleanup(op->easy);
    curl_slist_free_all(op->headers);
    free(op->url);
    free(op->body);
    free(op->resp);
    if (op->retry_timer != NULL) {
        uv_timer_stop(op->retry_timer);
        uv_close((uv_handle_t *)op->retry_timer, (uv_close_cb)free);
    }
    free(op);
}

static int op_start(trest_op_t *op);

static void on_retry_timer(uv_timer_t *timer)
{
    trest_op_t *op = timer->data;
    uv_close((uv_handle_t *)timer, (uv_close_cb)free);
    op->retry_timer = NULL;
    if (op_start(op) != 0) {
        trest_result_t res = {.retry_after_s = -1, .attempts = op->attempts, .transport_error = CURLE_FAILED_INIT};
        snprintf(res.message, sizeof(res.message), "could not restart the request");
        trest_cb cb = op->cb;
        void *data = op->data;
        op_free(op);
        cb(&res, data);
    }
}

static int should_retry(const trest_op_t *op, const trest_result_t *res)
{
    if (!op->is_update || op->attempts >= UPDATE_ATTEMPTS)
        return 0;
    return res->transport_error != 0 || res->http_status == 429 || res->http_status >= 500;
}

static void on_done(CURL *easy, CURLcode code, void *data)
{
    (void)easy;
    trest_op_t *op = data;
    trest_result_t res = {.retry_after_s = op->retry_after_s, .attempts = op->attempts};
    res.transport_error = (int)code;
    res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    if (code == CURLE_OK) {
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &res.http_status);
        parse_response(op, &res);
    } else {
        snprintf(res.message, sizeof(res.message), "%s", curl_easy_strerror(code));
    }
    if (should_retry(op, &res)) {
        uint64_t delay = (uint64_t)BACKOFF_FIRST_MS << (op->attempts - 1);
        if (delay > BACKOFF_CAP_MS)
            delay = BACKOFF_CAP_MS;
        if (res.retry_after_s >= 0)
            delay = (uint64_t)res.retry_after_s * 1000;
        log_warn("twilio_rest.retry", "attempt=%d status=%ld code=%d delay_ms=%llu", op->attempts, res.http_status,
                 res.twilio_code, (unsigned long long)delay);
        op->retry_timer = malloc(sizeof(*op->retry_timer));
        if (op->retry_timer != NULL) {
            uv_timer_init(op->t->loop, op->retry_timer);
            op->retry_timer->data = op;
            uv_timer_start(op->retry_timer, on_retry_timer, delay, 0);
            return;
        }
    }
    trest_cb cb = op->cb;
    void *cbdata = op->data;
    op_free(op);
    cb(&res, cbdata);
}

static int op_start(trest_op_t *op)
{
    const config_t *cfg = op->t->cfg;
    if (op->easy != NULL)
        curl_easy_cleanup(op->easy);
    op->easy = curl_easy_init();
    if (op->easy == NULL)
        return -1;
    free(op->resp);
    op->resp = NULL;
    op->resp_len = 0;
    op->resp_truncated = 0;
    op->retry_after_s = -1;
    op->attempts++;
    CURL *e = op->easy;
    curl_easy_setopt(e, CURLOPT_URL, op->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(op->body));
    curl_easy_setopt(e, CURLOPT_USERPWD, op->t->userpwd);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "switchboard/" SB_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->twilio_connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->twilio_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    if (cfg->twilio_ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->twilio_ca_file);
    if (!op->is_update) {
        /* libcurl silently resends a request whose reused connection died before an answer:
         * for a create that could place a second call, so a create never rides a reused one */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
    return curlm_add(op->t->curl, e, on_done, op);
}

static trest_op_t *op_new(trest_t *t, char *url, char *body, int is_update, trest_cb cb, void *data)
{
    trest_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        free(url);
        free(body);
        return NULL;
    }
    op->t = t;
    op->url = url;
    op->body = body;
    op->is_update = is_update;
    op->cb = cb;
    op->data = data;
    op->headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    op->headers = curl_slist_append(op->headers, "Accept: application/json");
    if (op_start(op) != 0) {
        op_free(op);
        return NULL;
    }
    h2o_linklist_insert(&t->ops, &op->link);
    t->npending++;
    return op;
}

trest_t *trest_new(uv_loop_t *loop, curlm_t *curl, const config_t *cfg)
{
    if (!config_twilio_configured(cfg))
        return NULL;
    trest_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->loop = loop;
    t->curl = curl;
    t->cfg = cfg;
    h2o_linklist_init_anchor(&t->ops);
    if (cfg->twilio_api_key_sid != NULL)
        snprintf(t->userpwd, sizeof(t->userpwd), "%s:%s", cfg->twilio_api_key_sid, cfg->twilio_api_key_secret);
    else
        snprintf(t->userpwd, sizeof(t->userpwd), "%s:%s", cfg->twilio_account_sid, cfg->twilio_auth_token);
    size_t bl = strlen(cfg->twilio_api_base);
    while (bl > 0 && cfg->twilio_api_base[bl - 1] == '/')
        bl--;
    snprintf(t->calls_url, sizeof(t->calls_url), "%.*s/2010-04-01/Accounts/%s/Calls", (int)bl, cfg->twilio_api_base,
             cfg->twilio_account_sid);
    return t;
}

void trest_free(trest_t *t)
{
    if (t == NULL)
        return;
    while (!h2o_linklist_is_empty(&t->ops)) {
        trest_op_t *op = H2O_STRUCT_FROM_MEMBER(trest_op_t, link, t->ops.next);
        trest_result_t res = {.retry_after_s = -1, .attempts = op->attempts, .cancelled = 1};
        snprintf(res.message, sizeof(res.message), "shutting down");
        trest_cb cb = op->cb;
        void *data = op->data;
        trest_cancel(op);
        cb(&res, data);
    }
    memset(t->userpwd, 0, sizeof(t->userpwd));
    free(t);
}

size_t trest_pending(const trest_t *t)
{
    return t != NULL ? t->npending : 0;
}

void trest_cancel(trest_op_t *op)
{
    if (op->easy != NULL && op->retry_timer == NULL)
        curlm_cancel(op->t->curl, op->easy);
    op_free(op);
}

trest_op_t *trest_create_call(trest_t *t, const trest_create_t *p, trest_cb cb, void *data)
{
    CURL *tmp = curl_easy_init();
    if (tmp == NULL)
        return NULL;
    form_buf_t f = {0};
    form_add(&f, tmp, "To", p->to);
    form_add(&f, tmp, "From", p->from);
    form_add(&f, tmp, "Url", p->url);
    form_add(&f, tmp, "Method", p->method);
    form_add(&f, tmp, "StatusCallback", p->status_callback);
    if (p->status_callback != NULL)
        form_add(&f, tmp, "StatusCallbackMethod", "POST");
    for (const char *const *ev = p->status_callback_events; ev != NULL && *ev != NULL; ev++)
        form_add(&f, tmp, "StatusCallbackEvent", *ev);
    char num[16];
    if (p->timeout_s > 0) {
        snprintf(num, sizeof(num), "%d", p->timeout_s);
        form_add(&f, tmp, "Timeout", num);
    }
    if (p->record)
        form_add(&f, tmp, "Record", "true");
    form_add(&f, tmp, "MachineDetection", p->machine_detection);
    if (p->machine_detection != NULL && p->async_amd) {
        form_add(&f, tmp, "AsyncAmd", "true");
        form_add(&f, tmp, "AsyncAmdStatusCallback", p->async_amd_status_callback);
        form_add(&f, tmp, "AsyncAmdStatusCallbackMethod", "POST");
    }
    curl_easy_cleanup(tmp);
    char *url = malloc(strlen(t->calls_url) + 8);
    if (f.failed || url == NULL) {
        free(f.buf);
        free(url);
        return NULL;
    }
    sprintf(url, "%s.json", t->calls_url);
    return op_new(t, url, f.buf, 0, cb, data);
}

trest_op_t *trest_update_call(trest_t *t, const char *call_sid, const trest_update_t *p, trest_cb cb, void *data)
{
    if (p->twiml != NULL && strlen(p->twiml) > TREST_TWIML_MAX)
        return NULL;
    CURL *tmp = curl_easy_init();
    if (tmp == NULL)
        return NULL;
    form_buf_t f = {0};
    form_add(&f, tmp, "Twiml", p->twiml);
    form_add(&f, tmp, "Url", p->url);
    if (p->url != NULL)
        form_add(&f, tmp, "Method", "POST");
    form_add(&f, tmp, "Status", p->status);
    char *esc = curl_easy_escape(tmp, call_sid, 0);
    curl_easy_cleanup(tmp);
    char *url = esc ? malloc(strlen(t->calls_url) + strlen(esc) + 8) : NULL;
    if (f.failed || url == NULL || f.buf == NULL) {
        free(f.buf);
        free(url);
        curl_free(esc);
        return NULL;
    }
    sprintf(url, "%s/%s.json", t->calls_url, esc);
    curl_free(esc);
    return op_new(t, url, f.buf, 1, cb, data);
}
