/*
 * http: the request context handed to every route handler, and the response helpers.
 *
 * An http_req_t lives in the h2o request's memory pool: it is valid until the response has
 * been sent and the request disposed, so a handler that answers later must not keep it past
 * a client disconnect (later capabilities guard that with their own state).
 * Every request gets an id (X-Request-Id) and one access-log line when it is disposed.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <h2o.h>
#include <jansson.h>

struct worker;

#define HTTP_MAX_PARAMS 4

typedef struct http_req http_req_t;

struct http_req {
    h2o_req_t *req;
    struct worker *w;
    char rid[17];
    h2o_iovec_t params[HTTP_MAX_PARAMS]; /* {name} captures of the matched route, in order */
    size_t nparams;
    size_t route; /* the metrics' route slot: 1 + the matched router_routes index; 0: none matched */
    uint64_t start_ns;
    int status;
    char method[12];
    char path[256];
    /* a response held until the worker's group commit (see http_flush_deferred) */
    h2o_linklist_t deferred;
    const char *deferred_type;
    h2o_iovec_t deferred_body;
    /* what to answer instead when that commit fails; NULL: 503 JSON */
    void (*on_store_failure)(http_req_t *r);
    /* a handler answering later (after a REST call) learns here that the request is gone */
    void (*on_gone)(void *data);
    void *gone_data;
    int req_gone; /* h2o has let go of req (a handler on a fiber outlived it): answer nothing */
    /* the bearer token's claims, on routes that require one */
    long tenant_id;
    int role; /* jwt_role_t */
    long exp; /* seconds since the epoch */
    char sub[128];
    /* an answer h2o already started (server/http.c's filter): http_send keeps it here */
    int capture;
    h2o_iovec_t captured;
};

/*
 * Where the error h2o gives by itself (413, 400, 417) must take a platform's shape: paths
 * starting with prefix are answered with send(r, status) (the platform's apology); any other
 * path gets http_send_error's JSON. The table lives in handlers/routes.c.
 */
typedef struct http_error_route {
    const char *prefix;
    void (*send)(http_req_t *r, int status);
} http_error_route_t;
extern const http_error_route_t http_error_routes[];
extern const size_t http_error_routes_count;

/* Registers the single catch-all h2o handler (which calls router_dispatch) on the global config. */
void http_register(h2o_globalconf_t *conf);

/* Responses. Each sends the whole response; call exactly one per request. */
void http_send(http_req_t *r, int status, const char *content_type, const char *body, size_t len);
/* Serialises and sends body, then drops the caller's reference to it. */
void http_send_json(http_req_t *r, int status, json_t *body);
/* {"error":{"code":...,"message":...,"field":...}}; field may be NULL. */
void http_send_error(http_req_t *r, int status, const char *code, const char *message, const char *field);
void http_add_header(http_req_t *r, const char *name, const char *value);

/*
 * Responses given while the worker's store has an uncommitted batch wait in the worker's
 * list; the worker calls this after committing: committed=1 sends them, 0 answers each with
 * its on_store_failure (nothing the client was told about is lost).
 */
void http_flush_deferred(struct worker *w, int committed);

/* The request header value (first occurrence) or {NULL, 0}. name must be lowercase. */
h2o_iovec_t http_header(const http_req_t *r, const char *name);
/* The public base URL the platforms reach us at: PUBLIC_BASE_URL, else what the client called
 * (X-Forwarded-Proto from a tunnel, or the connection's scheme, and the Host header); no
 * trailing slash; in the request's pool. */
const char *http_base_url(http_req_t *r);

struct form;
/* Parses s (application/x-www-form-urlencoded) into a form in the request's pool; NULL with
 * *err a FORM_E* code when malformed. */
struct form *http_form(http_req_t *r, const char *s, size_t len, int *err);
/* The request's query string, parsed the same way (an empty form when there is none). */
struct form *http_query(http_req_t *r, int *err);
/* 400 invalid_query for a query string that did not parse (err a FORM_E* code), naming the key
 * whose value is at fault when there is one. */
void http_send_query_error(http_req_t *r, int err);
/* The capture named by position; {NULL,0} when missing. */
h2o_iovec_t http_param(const http_req_t *r, size_t i);

#endif
