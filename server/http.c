#include "server/http.h"
#include "server/form.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void copy_bounded(char *dst, size_t dstsz, h2o_iovec_t src)
{
    size_t n = src.len < dstsz - 1 ? src.len : dstsz - 1;
    memcpy(dst, src.base, n);
    dst[n] = '\0';
}

/* Runs when h2o clears the request's pool, i.e. after the response went out (or the client left). */
static void on_dispose(void *p)
{
    http_req_t *r = p;
    r->w->inflight--;
    if (h2o_linklist_is_linked(&r->deferred)) /* the client left before the commit */
        h2o_linklist_unlink(&r->deferred);
    if (r->on_gone != NULL)
        r->on_gone(r->gone_data);
    char path[300];
    uint64_t dur_ns = now_ns() - r->start_ns;
    if (r->status != 0) /* 0: the client left before any answer */
        metrics_http(&r->w->metrics, r->route, r->status, dur_ns);
    /* integer microseconds: float formatting was a visible share of a request's CPU */
    log_info("http.request", "rid=%s worker=%d method=%s path=%s status=%d dur_us=%llu", r->rid, r->w->id, r->method,
             log_quote(path, sizeof(path), r->path, (size_t)-1), r->status, (unsigned long long)(dur_ns / 1000));
}

/* The request's pool is being cleared while a fiber still holds r (see on_req). */
static void on_req_cleared(void *p)
{
    http_req_t *r = *(http_req_t **)p;
    r->req_gone = 1;
    h2o_mem_release_shared(r);
}

static void dispatch_on_fiber(void *p)
{
    http_req_t *r = p;
    router_dispatch(r);
    h2o_mem_release_shared(r);
}

/* Our context for req: an id, the X-Request-Id header, the access-log line when disposed. */
static http_req_t *req_begin(h2o_req_t *req)
{
    worker_t *w = worker_of(req->conn->ctx);
    http_req_t *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_dispose);
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->w = w;
    r->start_ns = now_ns();
    w->inflight++;
    snprintf(r->rid, sizeof(r->rid), "%04" PRIx32 "%012" PRIx64, (w->app->rid_salt + (uint32_t)w->id) & 0xffff,
             ++w->req_seq & 0xffffffffffffu);
    copy_bounded(r->method, sizeof(r->method), req->method);
    copy_bounded(r->path, sizeof(r->path), req->path);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->rid, strlen(r->rid));
    return r;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    http_req_t *r = req_begin(req);
    worker_t *w = r->w;
    if (w->fibers == NULL) {
        router_dispatch(r);
        return 0;
    }
    /* The handler may wait for PostgreSQL on a fiber and h2o may drop the request meanwhile (the
     * client left): r stays alive while the fiber or the pool's sentinel holds it, and the
     * sentinel marks it gone so nothing answers into a freed request. */
    http_req_t **sentinel = h2o_mem_alloc_shared(&req->pool, sizeof(*sentinel), on_req_cleared);
    *sentinel = r;
    h2o_mem_addref_shared(r); /* the sentinel's */
    h2o_mem_addref_shared(r); /* the fiber's */
    if (worker_run(w, dispatch_on_fiber, r) != 0) {
        h2o_mem_release_shared(r);
        http_send_error(r, 503, "busy", "the server cannot take this request now", NULL);
    }
    return 0;
}

/*
 * h2o answers a few requests itself before any handler runs, always on the host's fallback
 * path: a body over MAX_REQUEST_BODY (413), broken or ambiguous framing (400, see
 * server/h1guard.h), an Expect other than 100-continue (417). This output filter, the only
 * one on that path, gives each the answer our own handlers would: the route's error shape
 * (JSON, or the platform's apology), X-Request-Id and the access-log line. h2o has already
 * marked the connection to close.
 */
static void h2o_error_http(http_req_t *r, int status, h2o_iovec_t said)
{
    const char *code = "bad_request", *message = "the request is malformed", *field = NULL;
    if (status == 413) {
        code = "body_too_large";
        message = "the request body is larger than MAX_REQUEST_BODY";
        field = "body";
    } else if (status == 417) {
        code = "expectation_failed";
        message = "only Expect: 100-continue is supported";
        field = "Expect";
    } else if (h2o_memis(said.base, said.len, H2O_STRLIT("broken content-length header"))) {
        message = "Content-Length is not a number or is given more than once";
        field = "Content-Length";
    } else if (h2o_memis(said.base, said.len, H2O_STRLIT("unknown transfer-encoding"))) {
        message = "Transfer-Encoding must be chunked, given once and without Content-Length";
        field = "Transfer-Encoding";
    } else if (h2o_memis(said.base, said.len, H2O_STRLIT("broken chunked-encoding"))) {
        message = "the chunked body is malformed or announces a chunk larger than MAX_REQUEST_BODY";
        field = "Transfer-Encoding";
    }
    log_warn("http.refused", "rid=%s status=%d why=\"%s\"", r->rid, status, message);
    for (size_t i = 0; i < http_error_routes_count; i++) {
        const char *prefix = http_error_routes[i].prefix;
        if (strncmp(r->path, prefix, strlen(prefix)) == 0) {
            http_error_routes[i].send(r, status);
            return;
        }
    }
    http_send_error(r, status, code, message, field);
}

static void h2o_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    if (h2o_send_state_is_in_progress(state)) { /* h2o's error bodies come in one piece: not reached */
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    char said[64];
    size_t n = 0;
    for (size_t i = 0; i < bufcnt && n < sizeof(said); i++) {
        size_t k = bufs[i].len < sizeof(said) - n ? bufs[i].len : sizeof(said) - n;
        memcpy(said + n, bufs[i].base, k);
        n += k;
    }
    int status = req->res.status;
    memset(&req->res.headers, 0, sizeof(req->res.headers)); /* h2o's text/plain */
    http_req_t *r = req_begin(req);
    r->capture = 1;
    h2o_error_http(r, status, h2o_iovec_init(said, n));
    int head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    h2o_ostream_send_next(self, req, &r->captured, head || r->captured.len == 0 ? 0 : 1, state);
}

static void h2o_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    h2o_ostream_t *os = h2o_add_ostream(req, sizeof(*os), slot);
    os->do_send = h2o_error_send;
    h2o_setup_next_ostream(req, &os->next);
}

void http_register(h2o_globalconf_t *conf)
{
    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;
    h2o_filter_t *f = h2o_create_filter(&host->fallback_path, sizeof(*f));
    f->on_setup_ostream = h2o_error_setup;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

void http_add_header(http_req_t *r, const char *name, const char *value)
{
    if (r->req_gone)
        return;
    h2o_req_t *req = r->req;
    /* name and value must outlive the response: copy into the request pool */
    h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

static void send_now(http_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->req_gone)
        return;
    h2o_req_t *req = r->req;
    r->status = status;
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    req->res.content_length = len;
    /* draining: h2o only drops keep-alive for requests begun after the shutdown request */
    if (r->w->state != WORKER_RUNNING)
        req->http1_is_persistent = 0;
    if (r->capture) { /* h2o is already sending: the filter passes this body on */
        r->captured = h2o_strdup(&req->pool, body, len);
        return;
    }
    h2o_send_inline(req, body, len);
}

void http_send(http_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->req_gone)
        return;
    if (r->capture || !store_batch_pending(r->w->store)) {
        send_now(r, status, content_type, body, len);
        return;
    }
    /* what this answer says may rest on writes not yet committed: hold it until they are */
    r->status = status;
    r->deferred_type = content_type;
    r->deferred_body = h2o_strdup(&r->req->pool, body, len);
    h2o_linklist_insert(&r->w->deferred, &r->deferred);
}

void http_flush_deferred(worker_t *w, int committed)
{
    while (!h2o_linklist_is_empty(&w->deferred)) {
        http_req_t *r = H2O_STRUCT_FROM_MEMBER(http_req_t, deferred, w->deferred.next);
        h2o_linklist_unlink(&r->deferred);
        if (committed) {
            send_now(r, r->status, r->deferred_type, r->deferred_body.base, r->deferred_body.len);
        } else if (r->on_store_failure != NULL) {
            r->on_store_failure(r);
        } else {
            static const char body[] =
                "{\"error\":{\"code\":\"db_unavailable\",\"message\":\"the change could not be saved\"}}\n";
            send_now(r, 503, "application/json", body, sizeof(body) - 1);
        }
    }
}

void http_send_json(http_req_t *r, int status, json_t *body)
{
    if (r->req_gone) {
        json_decref(body);
        return;
    }
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *buf = h2o_mem_alloc_pool(&r->req->pool, n + 1);
    json_dumpb(body, buf, n, JSON_COMPACT);
    buf[n] = '\n';
    json_decref(body);
    http_send(r, status, "application/json", buf, n + 1);
}

void http_send_error(http_req_t *r, int status, const char *code, const char *message, const char *field)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (field != NULL)
        json_object_set_new(err, "field", json_string(field));
    http_send_json(r, status, json_pack("{s:o}", "error", err));
}

h2o_iovec_t http_header(const http_req_t *r, const char *name)
{
    const h2o_headers_t *hs = &r->req->headers;
    size_t nl = strlen(name);
    for (size_t i = 0; i < hs->size; i++) {
        if (h2o_memis(hs->entries[i].name->base, hs->entries[i].name->len, name, nl))
            return hs->entries[i].value;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_iovec_t http_param(const http_req_t *r, size_t i)
{
    return i < r->nparams ? r->params[i] : h2o_iovec_init(NULL, 0);
}

static int host_ok(h2o_iovec_t host)
{
    if (host.len == 0 || host.len > 255)
        return 0;
    for (size_t i = 0; i < host.len; i++) {
        char c = host.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

const char *http_base_url(http_req_t *r)
{
    const config_t *cfg = &r->w->app->cfg;
    h2o_req_t *req = r->req;
    if (cfg->public_base_url != NULL) {
        size_t n = strlen(cfg->public_base_url);
        while (n > 0 && cfg->public_base_url[n - 1] == '/')
            n--;
        return h2o_strdup(&req->pool, cfg->public_base_url, n).base;
    }
    const char *scheme = req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    h2o_iovec_t proto = http_header(r, "x-forwarded-proto");
    if (h2o_memis(proto.base, proto.len, H2O_STRLIT("https")))
        scheme = "https";
    else if (h2o_memis(proto.base, proto.len, H2O_STRLIT("http")))
        scheme = "http";
    h2o_iovec_t host = host_ok(req->authority) ? req->authority : h2o_iovec_init(H2O_STRLIT("localhost"));
    char *out = h2o_mem_alloc_pool(&req->pool, host.len + 16);
    sprintf(out, "%s://%.*s", scheme, (int)host.len, host.base);
    return out;
}

form_t *http_form(http_req_t *r, const char *s, size_t len, int *err)
{
    size_t need = form_buf_size(s, len, NULL);
    void *buf = h2o_mem_alloc_pool(&r->req->pool, need);
    form_t *f = NULL;
    *err = form_parse_buf(buf, need, s, len, NULL, &f);
    return *err == FORM_OK ? f : NULL;
}

form_t *http_query(http_req_t *r, int *err)
{
    size_t qlen = 0;
    const char *q = form_query(r->req->path.base, r->req->path.len, &qlen);
    return http_form(r, q != NULL ? q : "", qlen, err);
}

void http_send_query_error(http_req_t *r, int err)
{
    size_t qlen = 0;
    const char *q = form_query(r->req->path.base, r->req->path.len, &qlen);
    char key[FORM_MAX_KEY + 1], msg[128];
    int named = q != NULL && form_bad_key(q, qlen, key, sizeof(key));
    snprintf(msg, sizeof(msg), "the query string cannot be decoded: %s", form_strerror(err));
    http_send_error(r, 400, "invalid_query", msg, named ? key : NULL);
}
