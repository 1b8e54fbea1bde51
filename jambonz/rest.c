#include "jambonz/rest.h"
#include "server/log.h"

#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX       (64 * 1024)
#define UPDATE_ATTEMPTS    4
#define BACKOFF_FIRST_MS   250
#define BACKOFF_CAP_MS     4000
#define RETRY_AFTER_CAP_S  10
#define CONNECT_DEFAULT_MS 3000
#define TOTAL_DEFAULT_MS   10000
#define SID_MAX            63

struct jrest {
    uv_loop_t *loop;
    curlm_t *curl;
    const config_t *cfg;
    char bearer[256];
    char calls_url[512]; /* {base}/v1/Accounts/{account_sid}/Calls */
    h2o_linklist_t ops;
    size_t npending;
};

struct jrest_op {
    jrest_t *j;
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
    jrest_cb cb;
    void *data;
};

int jrest_valid_sid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > SID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    jrest_op_t *op = ud;
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
    jrest_op_t *op = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(ptr, "retry-after:", 12) == 0) {
        /* seconds only (express-rate-limit's form); an HTTP date reads as absent */
        char *end;
        long v = strtol(ptr + 12, &end, 10);
        if (end != ptr + 12 && v >= 0)
            op->retry_after_s = v > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : v;
    }
    return len;
}

static void copy_str(char *dst, size_t dstsz, json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, dstsz, "%s", json_string_value(v));
}

/* A plain-text answer as the message: control characters become spaces, ends trimmed. */
static void copy_text(char *dst, size_t dstsz, const char *src, size_t len)
{
    while (len > 0 && (unsigned char)*src <= ' ') {
        src++;
        len--;
    }
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < dstsz; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c < ' ' || c == 0x7f) ? ' ' : (char)c;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static void parse_error(json_t *j, jrest_result_t *res)
{
    copy_str(res->message, sizeof(res->message), json_object_get(j, "msg"));
    if (res->message[0] == '\0')
        copy_str(res->message, sizeof(res->message), json_object_get(j, "message"));
    json_t *errors = json_object_get(j, "errors"); /* express-validator: [{msg, path, ...}] */
    if (res->message[0] == '\0' && json_is_array(errors) && json_array_size(errors) > 0) {
        json_t *e = json_array_get(errors, 0);
        const char *msg = json_string_value(json_object_get(e, "msg"));
        const char *path = json_string_value(json_object_get(e, "path"));
        if (path == NULL)
            path = json_string_value(json_object_get(e, "param"));
        if (msg != NULL)
            snprintf(res->message, sizeof(res->message), "%s%s%s", msg, path ? ": " : "", path ? path : "");
    }
}

static void parse_response(const jrest_op_t *op, jrest_result_t *res)
{
    int ok = res->http_status >= 200 && res->http_status < 300;
    if (op->resp_truncated) {
        snprintf(res->message, sizeof(res->message), "response larger than %d bytes", RESPONSE_MAX);
        return;
    }
    if (op->resp == NULL)
        return;
    json_t *j = json_loadb(op->resp, op->resp_len, 0, NULL);
    if (json_is_object(j)) {
        if (ok && !op->is_update) {
            json_t *sid = json_object_get(j, "sid");
            if (json_string_length(sid) <= SID_MAX) /* a longer one is refused, not cut */
                copy_str(res->call_sid, sizeof(res->call_sid), sid);
            copy_str(res->call_id, sizeof(res->call_id), json_object_get(j, "callId"));
        } else if (!ok) {
            parse_error(j, res);
        }
    } else if (!ok) {
        copy_text(res->message, sizeof(res->message), op->resp, op->resp_len);
    }
    json_decref(j);
}

/* A created call must come with a sid fit for the update path; an error has some message. */
static void check_result(const jrest_op_t *op, jrest_result_t *res)
{
    int ok = res->http_status >= 200 && res->http_status < 300;
    if (ok && !op->is_update && res->message[0] == '\0' && !jrest_valid_sid(res->call_sid)) {
        snprintf(res->message, sizeof(res->message), "no valid call sid in jambonz's answer");
        res->call_sid[0] = '\0';
    }
    if (!ok && res->message[0] == '\0')
        snprintf(res->message, sizeof(res->message), "HTTP %ld", res->http_status);
}

static void op_free(jrest_op_t *op)
{
    if (h2o_linklist_is_linked(&op->link)) {
        h2o_linklist_unlink(&op->link);
        op->j->npending--;
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

static int op_start(jrest_op_t *op);

static void finish(jrest_op_t *op, const jrest_result_t *res)
{
    jrest_cb cb = op->cb;
    void *data = op->data;
    op_free(op);
    cb(res, data);
}

static void on_retry_timer(uv_timer_t *timer)
{
    jrest_op_t *op = timer->data;
    uv_close((uv_handle_t *)timer, (uv_close_cb)free);
    op->retry_timer = NULL;
    if (op_start(op) != 0) {
        jrest_result_t res = {.retry_after_s = -1, .attempts = op->attempts, .transport_error = CURLE_FAILED_INIT};
        snprintf(res.message, sizeof(res.message), "could not restart the request");
        finish(op, &res);
    }
}

static int should_retry(const jrest_op_t *op, const jrest_result_t *res)
{
    if (!op->is_update || op->attempts >= UPDATE_ATTEMPTS)
        return 0;
    return res->transport_error != 0 || res->http_status == 429 || res->http_status >= 500;
}

static void on_done(CURL *easy, CURLcode code, void *data)
{
    (void)easy;
    jrest_op_t *op = data;
    jrest_result_t res = {.retry_after_s = op->retry_after_s, .attempts = op->attempts};
    res.transport_error = (int)code;
    res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    if (code == CURLE_OK) {
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &res.http_status);
        parse_response(op, &res);
        check_result(op, &res);
    } else {
        snprintf(res.message, sizeof(res.message), "%s", curl_easy_strerror(code));
    }
    if (should_retry(op, &res)) {
        uint64_t delay = (uint64_t)BACKOFF_FIRST_MS << (op->attempts - 1);
        if (delay > BACKOFF_CAP_MS)
            delay = BACKOFF_CAP_MS;
        if (res.retry_after_s >= 0)
            delay = (uint64_t)res.retry_after_s * 1000;
        log_warn("jambonz_rest.retry", "attempt=%d status=%ld curl=%d delay_ms=%llu", op->attempts, res.http_status,
                 res.transport_error, (unsigned long long)delay);
        op->retry_timer = malloc(sizeof(*op->retry_timer));
        if (op->retry_timer != NULL) {
            uv_timer_init(op->j->loop, op->retry_timer);
            op->retry_timer->data = op;
            uv_timer_start(op->retry_timer, on_retry_timer, delay, 0);
            return;
        }
    }
    finish(op, &res);
}

static int op_start(jrest_op_t *op)
{
    const config_t *cfg = op->j->cfg;
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
    long connect_ms = cfg->twilio_connect_timeout_ms > 0 ? cfg->twilio_connect_timeout_ms : CONNECT_DEFAULT_MS;
    long total_ms = cfg->twilio_timeout_ms > 0 ? cfg->twilio_timeout_ms : TOTAL_DEFAULT_MS;
    CURL *e = op->easy;
    curl_easy_setopt(e, CURLOPT_URL, op->url);
    if (op->is_update)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    else
        curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(op->body));
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, op->j->bearer);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "switchboard/" SB_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    if (cfg->jambonz_ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->jambonz_ca_file);
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
    return curlm_add(op->j->curl, e, on_done, op);
}

/* Takes url and body (freed on failure). */
static jrest_op_t *op_new(jrest_t *j, char *url, char *body, int is_update, jrest_cb cb, void *data)
{
    jrest_op_t *op = url != NULL && body != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL) {
        free(url);
        free(body);
        return NULL;
    }
    op->j = j;
    op->url = url;
    op->body = body;
    op->is_update = is_update;
    op->cb = cb;
    op->data = data;
    op->headers = curl_slist_append(NULL, "Content-Type: application/json");
    op->headers = curl_slist_append(op->headers, "Accept: application/json");
    op->headers = curl_slist_append(op->headers, "Expect:"); /* no 100-continue round trip */
    if (op->headers == NULL || op_start(op) != 0) {
        op_free(op);
        return NULL;
    }
    h2o_linklist_insert(&j->ops, &op->link);
    j->npending++;
    return op;
}

jrest_t *jrest_new(uv_loop_t *loop, curlm_t *curl, const config_t *cfg)
{
    if (cfg->jambonz_api_base == NULL)
        return NULL;
    const char *key = cfg->jambonz_api_key;
    if (!jrest_valid_sid(cfg->jambonz_account_sid) || key == NULL || key[0] == '\0' ||
        strlen(key) >= sizeof(((jrest_t *)0)->bearer) || strpbrk(key, "\r\n") != NULL) {
        log_error("jambonz_rest.config", "msg=\"JAMBONZ_ACCOUNT_SID or JAMBONZ_API_KEY unusable\"");
        return NULL;
    }
    size_t bl = strlen(cfg->jambonz_api_base);
    while (bl > 0 && cfg->jambonz_api_base[bl - 1] == '/')
        bl--;
    jrest_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    int n = snprintf(j->calls_url, sizeof(j->calls_url), "%.*s/v1/Accounts/%s/Calls", (int)bl, cfg->jambonz_api_base,
                     cfg->jambonz_account_sid);
    if (n < 0 || (size_t)n >= sizeof(j->calls_url)) {
        log_error("jambonz_rest.config", "msg=\"JAMBONZ_API_BASE too long\"");
        free(j);
        return NULL;
    }
    j->loop = loop;
    j->curl = curl;
    j->cfg = cfg;
    snprintf(j->bearer, sizeof(j->bearer), "%s", key);
    h2o_linklist_init_anchor(&j->ops);
    return j;
}

void jrest_free(jrest_t *j)
{
    if (j == NULL)
        return;
    while (!h2o_linklist_is_empty(&j->ops)) {
        jrest_op_t *op = H2O_STRUCT_FROM_MEMBER(jrest_op_t, link, j->ops.next);
        jrest_result_t res = {.retry_after_s = -1, .attempts = op->attempts, .cancelled = 1};
        snprintf(res.message, sizeof(res.message), "shutting down");
        jrest_cb cb = op->cb;
        void *data = op->data;
        jrest_cancel(op);
        cb(&res, data);
    }
    memset(j->bearer, 0, sizeof(j->bearer));
    free(j);
}

size_t jrest_pending(const jrest_t *j)
{
    return j != NULL ? j->npending : 0;
}

void jrest_cancel(jrest_op_t *op)
{
    if (op->easy != NULL && op->retry_timer == NULL)
        curlm_cancel(op->j->curl, op->easy);
    op_free(op);
}

static int set_str(json_t *obj, const char *key, const char *value)
{
    return value == NULL ? 0 : json_object_set_new(obj, key, json_string(value));
}

/* {"url": url, "method": "POST"}; NULL on failure (json_string() refuses invalid UTF-8). */
static json_t *webhook(const char *url)
{
    json_t *w = json_object();
    if (w == NULL || url == NULL || set_str(w, "url", url) != 0 || set_str(w, "method", "POST") != 0) {
        json_decref(w);
        return NULL;
    }
    return w;
}

static char *dump(json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return s;
}

static json_t *create_body(const jrest_create_t *p)
{
    static const char *const to_keys[] = {"number", "sipUri", "name"};
    static const char *const to_types[] = {"phone", "sip", "user"};
    if (p->from == NULL || p->from[0] == '\0' || p->to == NULL || p->to[0] == '\0' ||
        (p->call_hook_url == NULL && p->application_sid == NULL) || (unsigned)p->to_type > JREST_TO_USER ||
        (p->tag != NULL && !json_is_object(p->tag)) || p->timeout_s < 0 || p->time_limit_s < 0)
        return NULL;
    json_t *body = json_object(), *to = json_object();
    if (body == NULL || to == NULL) {
        json_decref(body);
        json_decref(to);
        return NULL;
    }
    int err = 0;
    err |= set_str(body, "from", p->from);
    err |= set_str(body, "callerName", p->caller_name);
    err |= set_str(to, "type", to_types[p->to_type]);
    err |= set_str(to, to_keys[p->to_type], p->to);
    if (p->to_type == JREST_TO_PHONE)
        err |= set_str(to, "trunk", p->trunk);
    err |= json_object_set_new(body, "to", to);
    if (p->call_hook_url != NULL)
        err |= json_object_set_new(body, "call_hook", webhook(p->call_hook_url));
    if (p->call_status_hook_url != NULL)
        err |= json_object_set_new(body, "call_status_hook", webhook(p->call_status_hook_url));
    if (p->timeout_s > 0)
        err |= json_object_set_new(body, "timeout", json_integer(p->timeout_s));
    if (p->time_limit_s > 0)
        err |= json_object_set_new(body, "timeLimit", json_integer(p->time_limit_s));
    if (p->tag != NULL)
        err |= json_object_set_new(body, "tag", json_deep_copy(p->tag));
    if (p->application_sid != NULL) {
        err |= set_str(body, "application_sid", p->application_sid);
    } else {
#define SPEECH(key, field, dflt) err |= set_str(body, key, p->field != NULL ? p->field : dflt)
        SPEECH("speech_synthesis_vendor", synthesizer_vendor, JREST_DEFAULT_SYNTH_VENDOR);
        SPEECH("speech_synthesis_language", synthesizer_language, JREST_DEFAULT_SYNTH_LANGUAGE);
        SPEECH("speech_synthesis_voice", synthesizer_voice, JREST_DEFAULT_SYNTH_VOICE);
        SPEECH("speech_recognizer_vendor", recognizer_vendor, JREST_DEFAULT_RECOG_VENDOR);
        SPEECH("speech_recognizer_language", recognizer_language, JREST_DEFAULT_RECOG_LANGUAGE);
#undef SPEECH
    }
    /* set_new fails on a NULL value too: a string that was not valid UTF-8 */
    if (err) {
        json_decref(body);
        return NULL;
    }
    return body;
}

jrest_op_t *jrest_create_call(jrest_t *j, const jrest_create_t *p, jrest_cb cb, void *data)
{
    char *body = dump(create_body(p));
    char *url = body != NULL ? strdup(j->calls_url) : NULL;
    return op_new(j, url, body, 0, cb, data);
}

jrest_op_t *jrest_update_call(jrest_t *j, const char *call_sid, const jrest_update_t *p, jrest_cb cb, void *data)
{
    if (!jrest_valid_sid(call_sid) || (p->call_hook_url == NULL) == (p->call_status == NULL))
        return NULL;
    if (p->call_status != NULL && strcmp(p->call_status, "completed") != 0 && strcmp(p->call_status, "no-answer") != 0)
        return NULL;
    json_t *body = json_object();
    int err = body == NULL;
    if (p->call_hook_url != NULL)
        err |= json_object_set_new(body, "call_hook", webhook(p->call_hook_url));
    else
        err |= set_str(body, "call_status", p->call_status);
    if (err) {
        json_decref(body);
        return NULL;
    }
    char *s = dump(body);
    /* the sid holds only unreserved characters: it goes into the path as it is */
    size_t ul = strlen(j->calls_url) + strlen(call_sid) + 2;
    char *url = s != NULL ? malloc(ul) : NULL;
    if (url != NULL)
        snprintf(url, ul, "%s/%s", j->calls_url, call_sid);
    return op_new(j, url, s, 1, cb, data);
}
