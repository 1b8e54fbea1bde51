#include "asterisk/ari.h"
#include "ai/ai_ws.h"
#include "server/log.h"
#include "server/worker.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_MAX          (256 * 1024) /* one event; channel variables can make them long */
#define REPLY_MAX          (256 * 1024) /* one REST reply */
#define BACKOFF_MIN_MS     500
#define BACKOFF_MAX_MS     30000
#define REQUEST_TIMEOUT_MS 10000
#define URL_MAX            2048

typedef struct ari_ws {
    aiws_conn_t conn; /* first: the transport's owner is this struct */
    ari_t *a;         /* NULL once the client let go of this connection */
} ari_ws_t;

typedef struct ari_req {
    struct ari_req *next, *prev;
    ari_t *a;
    CURL *easy;
    struct curl_slist *headers;
    ari_done_cb done;
    void *data;
    uint64_t key;
    char method[8];
    char *body;
    size_t len;
    int too_big;
} ari_req_t;

struct ari {
    struct worker *w;
    const ari_handlers_t *h;
    void *data;
    ari_state_t state;
    ari_ws_t *ws;
    uv_timer_t retry; /* closing it frees the client */
    unsigned backoff_ms;
    unsigned failures; /* in a row: the first is a warning, the rest debug lines */
    ari_req_t *reqs;
    unsigned inflight;
    char userpwd[512];
    char base[URL_MAX]; /* ARI_URL + "/ari" */
    int closing;
};

/* ---- the events socket ------------------------------------------------------------------ */

static void set_state(ari_t *a, ari_state_t s)
{
    if (a->state == s)
        return;
    a->state = s;
    if (a->h != NULL && a->h->state != NULL)
        a->h->state(a->data, s);
}

static int ws_headers(void *owner, char *dst, size_t cap)
{
    ari_ws_t *ws = owner;
    if (ws->a == NULL)
        return -1;
    /* Basic auth: base64 of user:password */
    size_t n = strlen(ws->a->userpwd);
    char b64[700];
    if (4 * ((n + 2) / 3) >= sizeof(b64))
        return -1;
    b64[ai_b64_encode((const unsigned char *)ws->a->userpwd, n, b64)] = '\0';
    int len = snprintf(dst, cap, "Authorization: Basic %s\r\n", b64);
    return len < 0 || (size_t)len >= cap ? -1 : len;
}

static int ws_message(void *owner, const char *msg, size_t len)
{
    ari_ws_t *ws = owner;
    if (ws->a != NULL && ws->a->h != NULL && ws->a->h->event != NULL)
        ws->a->h->event(ws->a->data, msg, len);
    return 0;
}

static void ws_connected(void *owner)
{
    ari_ws_t *ws = owner;
    ari_t *a = ws->a;
    if (a == NULL)
        return;
    log_info("asterisk.connected", "url=%s app=%s", a->w->app->cfg.ari_url, a->w->app->cfg.ari_app);
    a->backoff_ms = BACKOFF_MIN_MS;
    a->failures = 0;
    set_state(a, ARI_UP);
}

static void ws_free(void *owner)
{
    ari_ws_t *ws = owner;
    aiws_cleanup(&ws->conn);
    free(ws);
}

static const aiws_ops_t ws_ops = {
    .headers = ws_headers,
    .message = ws_message,
    .free = ws_free,
    .connected = ws_connected,
};

static void connect_ws(ari_t *a);

static void on_retry(uv_timer_t *t)
{
    connect_ws((ari_t *)t->data);
}

/* The socket failed or closed: drop it and try again later, backing off. */
static void ws_lost(ari_t *a, const char *what)
{
    if (a->ws != NULL) {
        a->ws->a = NULL;
        aiws_close(&a->ws->conn); /* freed by the transport once the connection has ended */
        a->ws = NULL;
    }
    if (a->failures++ == 0)
        log_warn("asterisk.disconnected", "url=%s why=\"%s\" retry_ms=%u", a->w->app->cfg.ari_url, what, a->backoff_ms);
    else
        log_debug("asterisk.retry", "why=\"%s\" retry_ms=%u", what, a->backoff_ms);
    set_state(a, ARI_DOWN);
    if (a->closing || a->h == NULL)
        return;
    uv_timer_start(&a->retry, on_retry, a->backoff_ms, 0);
    a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

static void ws_error(void *owner, const char *what, int fatal)
{
    ari_ws_t *ws = owner; /* the transport passes our owner as "bridge" */
    if (fatal && ws->a != NULL)
        ws_lost(ws->a, what);
}

static const ai_events_t ws_events = {.error = ws_error};

static void connect_ws(ari_t *a)
{
    const config_t *cfg = &a->w->app->cfg;
    aiws_target_t t;
    const char *why = "bad ARI_URL";
    if (aiws_target_parse(cfg->ari_url, &t) != 0)
        goto fail;
    /* ARI_URL is http(s)://host:port[/prefix]: the events socket is ws(s) on the same port */
    size_t pl = strlen(t.path);
    while (pl > 0 && t.path[pl - 1] == '/')
        t.path[--pl] = '\0';
    if (pl + sizeof("/ari/events") >= sizeof(t.path))
        goto fail;
    memcpy(t.path + pl, "/ari/events", sizeof("/ari/events"));
    if (aiws_query_add(&t, "app", cfg->ari_app) != 0)
        goto fail;
    ari_ws_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        why = "out of memory";
        goto fail;
    }
    ws->a = a;
    aiws_init(&ws->conn, &ws_ops, ws, "asterisk", &ws_events, ws, "ari-events", EVENT_MAX, "", "");
    a->ws = ws;
    set_state(a, ARI_CONNECTING);
    if (aiws_connect(&ws->conn, a->w, &t, &why) != 0)
        goto fail;
    return;
fail:
    ws_lost(a, why);
}

/* ---- REST ---------------------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t n, void *data)
{
    ari_req_t *r = data;
    size_t len = size * n;
    if (r->too_big || r->len + len > REPLY_MAX) {
        r->too_big = 1;
        return len; /* read on, keep nothing more */
    }
    char *nb = realloc(r->body, r->len + len + 1);
    if (nb == NULL) {
        r->too_big = 1;
        return len;
    }
    r->body = nb;
    memcpy(r->body + r->len, ptr, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static void req_free(ari_req_t *r)
{
    ari_t *a = r->a;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        a->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    a->inflight--;
    curl_slist_free_all(r->headers);
    curl_easy_cleanup(r->easy);
    free(r->body);
    free(r);
}

static void on_done(CURL *easy, CURLcode res, void *data)
{
    ari_req_t *r = data;
    long status = 0;
    if (res == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *body = NULL;
    if (r->body != NULL && !r->too_big)
        body = json_loadb(r->body, r->len, 0, NULL);
    if (res != CURLE_OK)
        log_warn("asterisk.rest_failed", "method=%s error=\"%s\"", r->method, curl_easy_strerror(res));
    else if (status >= 400 && r->done == NULL)
        log_warn("asterisk.rest_error", "method=%s status=%ld message=\"%.200s\"", r->method, status,
                 json_string_value(json_object_get(body, "message"))
                     ? json_string_value(json_object_get(body, "message"))
                     : "");
    if (r->done != NULL)
        r->done(r->data, r->key, res == CURLE_OK ? status : 0, body);
    json_decref(body);
    req_free(r);
}

int ari_request(ari_t *a, const char *method, const char *path, ari_done_cb done, void *data, uint64_t key)
{
    char url[URL_MAX * 2];
    int n = snprintf(url, sizeof(url), "%s%s", a->base, path);
    if (a->closing || n < 0 || (size_t)n >= sizeof(url)) {
        log_error("asterisk.rest_refused", "method=%s why=\"%s\"", method, a->closing ? "closing" : "URL too long");
        return -1;
    }
    ari_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->easy = curl_easy_init()) == NULL) {
        free(r);
        log_error("asterisk.rest_refused", "method=%s why=\"out of memory\"", method);
        return -1;
    }
    r->a = a;
    r->done = done;
    r->data = data;
    r->key = key;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->headers = curl_slist_append(NULL, "Accept: application/json");
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, ""); /* parameters travel in the query */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERPWD, a->userpwd);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    r->next = a->reqs;
    if (a->reqs != NULL)
        a->reqs->prev = r;
    a->reqs = r;
    a->inflight++;
    if (curlm_add(a->w->curl, e, on_done, r) != 0) {
        log_error("asterisk.rest_refused", "method=%s why=\"curl refused the transfer\"", method);
        req_free(r);
        return -1;
    }
    return 0;
}

unsigned ari_inflight(const ari_t *a)
{
    return a->inflight;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

ari_t *ari_new(struct worker *w, const ari_handlers_t *h, void *data)
{
    const config_t *cfg = &w->app->cfg;
    ari_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->w = w;
    a->h = h;
    a->data = data;
    a->backoff_ms = BACKOFF_MIN_MS;
    snprintf(a->userpwd, sizeof(a->userpwd), "%s:%s", cfg->ari_username ? cfg->ari_username : "",
             cfg->ari_password ? cfg->ari_password : "");
    size_t bl = (size_t)snprintf(a->base, sizeof(a->base), "%s", cfg->ari_url);
    while (bl > 0 && a->base[bl - 1] == '/')
        a->base[--bl] = '\0';
    snprintf(a->base + bl, sizeof(a->base) - bl, "/ari");
    uv_timer_init(&w->loop, &a->retry);
    a->retry.data = a;
    if (h != NULL)
        connect_ws(a);
    return a;
}

ari_state_t ari_state(const ari_t *a)
{
    return a != NULL ? a->state : ARI_DOWN;
}

const char *ari_state_name(ari_state_t s)
{
    return s == ARI_UP ? "connected" : s == ARI_CONNECTING ? "connecting" : "disconnected";
}

static void free_client(uv_handle_t *h)
{
    free(h->data);
}

void ari_stop_events(ari_t *a)
{
    if (a == NULL || a->h == NULL)
        return;
    a->h = NULL; /* no more events, no reconnect */
    uv_timer_stop(&a->retry);
    if (a->ws != NULL) {
        a->ws->a = NULL;
        aiws_close(&a->ws->conn);
        a->ws = NULL;
    }
}

void ari_close(ari_t *a)
{
    if (a == NULL)
        return;
    a->closing = 1;
    while (a->reqs != NULL) {
        curlm_cancel(a->w->curl, a->reqs->easy);
        req_free(a->reqs);
    }
    if (a->ws != NULL) {
        a->ws->a = NULL;
        aiws_close(&a->ws->conn);
        a->ws = NULL;
    }
    uv_timer_stop(&a->retry);
    uv_close((uv_handle_t *)&a->retry, free_client);
}
