/* jrest: the requests jambonz-api-server expects (method, path, bearer key, JSON body), its answers
 * and errors mapped into the result, retries of updates only, cancel and free. A small HTTP
 * server on the test's own loop records each request and answers from a script. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jambonz/rest.h"

#define ACCOUNT "9351f46a-678c-43f5-b8a6-d4eb58d131af"
#define API_KEY "3f9c1b7e-2d4a-4c8e-9f1a-0b6d5e7c8a21"
#define CALL    "2531329f-fb09-4ef7-887e-84e648214436"

/* ---- the fake server ---- */

typedef enum { R_ANSWER = 0, R_DROP, R_HANG } reply_kind_t;

typedef struct {
    reply_kind_t kind;
    int status;
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
} reply_t;

typedef struct {
    char method[16];
    char path[512];
    char authorization[512];
    char content_type[128];
    int has_expect;
    char *body;
    uint64_t at_ms;
} req_t;

#define MAX_REQS  16
#define MAX_PEERS 16

typedef struct peer {
    uv_tcp_t tcp;
    uv_write_t wr;
    char *in;
    size_t in_len;
    char *out;
    int closing;
} peer_t;

typedef struct {
    uv_loop_t loop;
    uv_tcp_t server;
    int port;
    const reply_t *replies;
    size_t nreplies, next_reply;
    req_t reqs[MAX_REQS];
    size_t nreqs;
    peer_t *peers[MAX_PEERS]; /* open connections, closed at teardown */
    uv_timer_t tick;
    int ticked;
    config_t cfg;
    char base[64];
    curlm_t *curl;
    jrest_t *j;
} fx_t;

static fx_t *fx;

static void peer_closed(uv_handle_t *h)
{
    peer_t *p = (peer_t *)h;
    for (int i = 0; i < MAX_PEERS; i++)
        if (fx->peers[i] == p)
            fx->peers[i] = NULL;
    free(p->in);
    free(p->out);
    free(p);
}

static void peer_close(peer_t *p)
{
    if (!p->closing) {
        p->closing = 1;
        uv_close((uv_handle_t *)&p->tcp, peer_closed);
    }
}

static void peer_written(uv_write_t *wr, int status)
{
    (void)status;
    peer_close((peer_t *)wr->handle);
}

static void peer_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    *b = uv_buf_init(malloc(sz), (unsigned)sz);
}

static const char *find_header(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ')
                v++;
            *len = (size_t)(strstr(v, "\r\n") - v);
            return v;
        }
    }
    return NULL;
}

static void copy_header(char *dst, size_t dstsz, const char *head, const char *name)
{
    size_t len = 0;
    const char *v = find_header(head, name, &len);
    snprintf(dst, dstsz, "%.*s", v ? (int)len : 0, v ? v : "");
}

/* A whole request is in: record it and answer from the script. */
static void serve(peer_t *p, size_t head_len, size_t body_len)
{
    assert_true(fx->nreqs < MAX_REQS);
    req_t *r = &fx->reqs[fx->nreqs++];
    char *head = strndup(p->in, head_len);
    sscanf(head, "%15s %511s", r->method, r->path);
    copy_header(r->authorization, sizeof(r->authorization), head, "Authorization");
    copy_header(r->content_type, sizeof(r->content_type), head, "Content-Type");
    size_t len;
    r->has_expect = find_header(head, "Expect", &len) != NULL;
    r->body = strndup(p->in + head_len, body_len);
    r->at_ms = uv_now(&fx->loop);
    free(head);

    assert_true(fx->next_reply < fx->nreplies);
    const reply_t *rp = &fx->replies[fx->next_reply++];
    if (rp->kind == R_DROP) {
        peer_close(p);
        return;
    }
    if (rp->kind == R_HANG)
        return;
    const char *body = rp->body ? rp->body : "";
    size_t cap = strlen(body) + (rp->headers ? strlen(rp->headers) : 0) + 256;
    p->out = malloc(cap);
    int n = snprintf(p->out, cap, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", rp->status,
                     strlen(body), rp->headers ? rp->headers : "", body);
    uv_buf_t out = uv_buf_init(p->out, (unsigned)n);
    uv_write(&p->wr, (uv_stream_t *)&p->tcp, &out, 1, peer_written);
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    peer_t *p = (peer_t *)s;
    if (n < 0) {
        free(b->base);
        peer_close(p);
        return;
    }
    p->in = realloc(p->in, p->in_len + (size_t)n + 1);
    memcpy(p->in + p->in_len, b->base, (size_t)n);
    p->in_len += (size_t)n;
    p->in[p->in_len] = '\0';
    free(b->base);
    char *end = strstr(p->in, "\r\n\r\n");
    if (end == NULL)
        return;
    size_t head_len = (size_t)(end - p->in) + 4;
    size_t len = 0;
    const char *cl = find_header(p->in, "Content-Length", &len);
    size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
    if (p->in_len < head_len + body_len)
        return;
    uv_read_stop(s);
    serve(p, head_len, body_len);
}

static void on_conn(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    peer_t *p = calloc(1, sizeof(*p));
    uv_tcp_init(server->loop, &p->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&p->tcp), 0);
    for (int i = 0; i < MAX_PEERS; i++)
        if (fx->peers[i] == NULL) {
            fx->peers[i] = p;
            break;
        }
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    fx = calloc(1, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_tcp_init(&fx->loop, &fx->server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&fx->server, (struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->server, 16, on_conn), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&fx->server, (struct sockaddr *)&ss, &sl);
    fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", fx->port);
    fx->cfg.jambonz_api_base = fx->base;
    fx->cfg.jambonz_account_sid = (char *)ACCOUNT;
    fx->cfg.jambonz_api_key = (char *)API_KEY;
    fx->cfg.twilio_connect_timeout_ms = 2000;
    fx->cfg.twilio_timeout_ms = 5000;
    uv_timer_init(&fx->loop, &fx->tick);
    fx->curl = curlm_new(&fx->loop);
    assert_non_null(fx->curl);
    fx->j = jrest_new(&fx->loop, fx->curl, &fx->cfg);
    assert_non_null(fx->j);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jrest_free(fx->j);
    curlm_close(fx->curl);
    for (int i = 0; i < MAX_PEERS; i++)
        if (fx->peers[i] != NULL)
            peer_close(fx->peers[i]);
    uv_close((uv_handle_t *)&fx->server, NULL);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    /* every handle jrest, curlm and the server made is closed */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (size_t i = 0; i < fx->nreqs; i++)
        free(fx->reqs[i].body);
    free(fx);
    fx = NULL;
    return 0;
}

static void script(const reply_t *replies, size_t n)
{
    fx->replies = replies;
    fx->nreplies = n;
    fx->next_reply = 0;
}

typedef struct {
    int calls;
    jrest_result_t res;
    uint64_t at_ms;
} outcome_t;

static void on_result(const jrest_result_t *res, void *data)
{
    outcome_t *o = data;
    o->calls++;
    o->res = *res;
    o->at_ms = uv_now(&fx->loop);
}

static void run_until(const outcome_t *o)
{
    while (o->calls == 0)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

/* Runs the loop until n requests have arrived (for hanging ones). */
static void run_until_requests(size_t n)
{
    while (fx->nreqs < n)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    fx->ticked = 1;
}

/* Runs the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    fx->ticked = 0;
    uv_timer_start(&fx->tick, on_tick, ms, 0);
    while (!fx->ticked)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

static void assert_body(const req_t *r, const char *expected)
{
    json_error_t err;
    json_t *got = json_loads(r->body, 0, &err);
    json_t *want = json_loads(expected, 0, &err);
    assert_non_null(want);
    if (got == NULL || !json_equal(got, want))
        fail_msg("body %s, expected %s", r->body, expected);
    json_decref(got);
    json_decref(want);
}

static void assert_request(const req_t *r, const char *method, const char *path)
{
    assert_string_equal(r->method, method);
    assert_string_equal(r->path, path);
    assert_string_equal(r->authorization, "Bearer " API_KEY);
    assert_string_equal(r->content_type, "application/json");
    assert_false(r->has_expect);
}

#define CALLS_PATH "/v1/Accounts/" ACCOUNT "/Calls"

static const jrest_create_t create_phone = {
    .from = "+14155550100",
    .to_type = JREST_TO_PHONE,
    .to = "+14155550123",
    .trunk = "carrier-a",
    .call_hook_url = "https://sb.example.com/jambonz/outbound?call=7",
    .call_status_hook_url = "https://sb.example.com/jambonz/status",
    .timeout_s = 25,
};

/* ---- tests ---- */

static void create_sends_the_call_and_reads_the_sid(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 201, "Content-Type: application/json\r\n", "{\"sid\":\"" CALL "\",\"callId\":\"abc@10.0.0.1\"}"},
    };
    script(replies, 1);
    json_t *tag = json_pack("{s:s, s:i}", "tenant", "acme", "attempt", 1);
    jrest_create_t p = create_phone;
    p.tag = tag;
    p.time_limit_s = 3600;
    p.caller_name = "Switchboard";
    outcome_t o = {0};
    assert_non_null(jrest_create_call(fx->j, &p, on_result, &o));
    json_decref(tag); /* copied */
    assert_int_equal(jrest_pending(fx->j), 1);
    run_until(&o);
    assert_int_equal(o.calls, 1);
    assert_int_equal(jrest_pending(fx->j), 0);
    assert_int_equal(o.res.http_status, 201);
    assert_string_equal(o.res.call_sid, CALL);
    assert_string_equal(o.res.call_id, "abc@10.0.0.1");
    assert_string_equal(o.res.message, "");
    assert_int_equal(o.res.attempts, 1);
    assert_int_equal(o.res.transport_error, 0);
    assert_false(o.res.cancelled);
    assert_int_equal(o.res.retry_after_s, -1);

    assert_int_equal(fx->nreqs, 1);
    assert_request(&fx->reqs[0], "POST", CALLS_PATH);
    assert_body(&fx->reqs[0], "{\"from\":\"+14155550100\",\"callerName\":\"Switchboard\","
                              "\"to\":{\"type\":\"phone\",\"number\":\"+14155550123\",\"trunk\":\"carrier-a\"},"
                              "\"call_hook\":{\"url\":\"https://sb.example.com/jambonz/outbound?call=7\",\"method\":"
                              "\"POST\"},"
                              "\"call_status_hook\":{\"url\":\"https://sb.example.com/jambonz/status\",\"method\":"
                              "\"POST\"},"
                              "\"timeout\":25,\"timeLimit\":3600,\"tag\":{\"tenant\":\"acme\",\"attempt\":1},"
                              "\"speech_synthesis_vendor\":\"google\",\"speech_synthesis_language\":\"en-US\","
                              "\"speech_synthesis_voice\":\"en-US-Standard-C\",\"speech_recognizer_vendor\":"
                              "\"google\",\"speech_recognizer_language\":\"en-US\"}");
}

static void create_targets_and_application(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 201, NULL, "{\"sid\":\"a1\"}"},
        {R_ANSWER, 201, NULL, "{\"sid\":\"a2\"}"},
    };
    script(replies, 2);
    jrest_create_t sip = {.from = "switchboard",
                          .to_type = JREST_TO_SIP,
                          .to = "sip:agent@pbx.example.com",
                          .trunk = "ignored-for-sip",
                          .application_sid = "0dddaabf-0a30-43e3-84e8-426873b1a78b"};
    jrest_create_t user = {.from = "+14155550100",
                           .to_type = JREST_TO_USER,
                           .to = "alice",
                           .call_hook_url = "https://sb.example.com/h",
                           .synthesizer_vendor = "elevenlabs",
                           .synthesizer_voice = "Rachel"};
    outcome_t o1 = {0}, o2 = {0};
    assert_non_null(jrest_create_call(fx->j, &sip, on_result, &o1));
    run_until(&o1);
    assert_non_null(jrest_create_call(fx->j, &user, on_result, &o2));
    run_until(&o2);
    assert_string_equal(o1.res.call_sid, "a1");
    assert_string_equal(o2.res.call_sid, "a2");
    assert_body(&fx->reqs[0],
                "{\"from\":\"switchboard\",\"to\":{\"type\":\"sip\",\"sipUri\":\"sip:agent@pbx.example.com\"},"
                "\"application_sid\":\"0dddaabf-0a30-43e3-84e8-426873b1a78b\"}");
    assert_body(&fx->reqs[1], "{\"from\":\"+14155550100\",\"to\":{\"type\":\"user\",\"name\":\"alice\"},"
                              "\"call_hook\":{\"url\":\"https://sb.example.com/h\",\"method\":\"POST\"},"
                              "\"speech_synthesis_vendor\":\"elevenlabs\",\"speech_synthesis_language\":\"en-US\","
                              "\"speech_synthesis_voice\":\"Rachel\",\"speech_recognizer_vendor\":\"google\","
                              "\"speech_recognizer_language\":\"en-US\"}");
}

static void update_hangs_up_and_redirects(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 202, "Content-Type: text/plain; charset=utf-8\r\n", "Accepted"},
        {R_ANSWER, 204, NULL, NULL},
        {R_ANSWER, 200, "Content-Type: application/json\r\n", "{\"status\":200}"},
    };
    script(replies, 3);
    outcome_t o1 = {0}, o2 = {0}, o3 = {0};
    jrest_update_t hang = {.call_status = "completed"};
    jrest_update_t redirect = {.call_hook_url = "https://sb.example.com/jambonz/transfer?attempt=0"};
    jrest_update_t cancel = {.call_status = "no-answer"};
    assert_non_null(jrest_update_call(fx->j, CALL, &hang, on_result, &o1));
    run_until(&o1);
    assert_non_null(jrest_update_call(fx->j, CALL, &redirect, on_result, &o2));
    run_until(&o2);
    assert_non_null(jrest_update_call(fx->j, CALL, &cancel, on_result, &o3));
    run_until(&o3);
    assert_int_equal(o1.res.http_status, 202);
    assert_int_equal(o2.res.http_status, 204);
    assert_int_equal(o3.res.http_status, 200);
    for (int i = 0; i < 3; i++) {
        const outcome_t *o = i == 0 ? &o1 : i == 1 ? &o2 : &o3;
        assert_string_equal(o->res.message, "");
        assert_int_equal(o->res.attempts, 1);
        assert_request(&fx->reqs[i], "PUT", CALLS_PATH "/" CALL);
    }
    assert_body(&fx->reqs[0], "{\"call_status\":\"completed\"}");
    assert_body(&fx->reqs[1],
                "{\"call_hook\":{\"url\":\"https://sb.example.com/jambonz/transfer?attempt=0\",\"method\":\"POST\"}}");
    assert_body(&fx->reqs[2], "{\"call_status\":\"no-answer\"}");
}

static void errors_are_mapped(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 400, "Content-Type: application/json\r\n", "{\"msg\":\"missing from parameter\"}"},
        {R_ANSWER, 401, "WWW-Authenticate: Bearer realm=\"Users\", error=\"invalid_token\"\r\n", "Unauthorized"},
        {R_ANSWER, 403, "Content-Type: application/json\r\n", "{\"msg\":\"insufficient permissions\"}"},
        {R_ANSWER, 404, "Content-Type: text/plain\r\n", "Not Found"},
        {R_ANSWER, 422, "Content-Type: text/html\r\n", "call session is gone for call_sid " CALL},
        {R_ANSWER, 400, NULL, "{\"errors\":[{\"type\":\"field\",\"msg\":\"Invalid from\",\"path\":\"from\"}]}"},
        {R_ANSWER, 480, NULL, "{\"msg\":\"no available feature servers at this time\"}"},
        {R_ANSWER, 400, NULL, ""},
    };
    script(replies, 8);
    static const char *const want[] = {
        "missing from parameter",
        "Unauthorized",
        "insufficient permissions",
        "Not Found",
        "call session is gone for call_sid " CALL,
        "Invalid from: from",
        "no available feature servers at this time",
        "HTTP 400",
    };
    static const long status[] = {400, 401, 403, 404, 422, 400, 480, 400};
    jrest_update_t hang = {.call_status = "completed"};
    for (int i = 0; i < 8; i++) {
        outcome_t o = {0};
        if (i == 3 || i == 4)
            assert_non_null(jrest_update_call(fx->j, CALL, &hang, on_result, &o));
        else
            assert_non_null(jrest_create_call(fx->j, &create_phone, on_result, &o));
        run_until(&o);
        assert_int_equal(o.res.http_status, status[i]);
        assert_string_equal(o.res.message, want[i]);
        assert_string_equal(o.res.call_sid, "");
        assert_int_equal(o.res.attempts, 1); /* 4xx: never retried */
        assert_int_equal(o.res.transport_error, 0);
    }
    assert_int_equal(fx->nreqs, 8);
}

static void create_is_never_retried(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 429, "Retry-After: 1\r\nContent-Type: text/html; charset=utf-8\r\n",
         "Too many requests, please try again later."},
        {R_ANSWER, 503, NULL, "{\"msg\":\"busy\"}"},
        {R_DROP, 0, NULL, NULL},
        {R_ANSWER, 201, NULL, "{\"sid\":\"../../Accounts\"}"},
    };
    script(replies, 4);
    outcome_t o[4] = {{0}};
    for (int i = 0; i < 4; i++) {
        assert_non_null(jrest_create_call(fx->j, &create_phone, on_result, &o[i]));
        run_until(&o[i]);
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].res.attempts, 1);
        assert_int_equal(fx->nreqs, (size_t)i + 1);
    }
    assert_int_equal(o[0].res.http_status, 429);
    assert_int_equal(o[0].res.retry_after_s, 1);
    assert_string_equal(o[0].res.message, "Too many requests, please try again later.");
    assert_int_equal(o[1].res.http_status, 503);
    assert_string_equal(o[1].res.message, "busy");
    assert_int_equal(o[2].res.http_status, 0);
    assert_int_equal(o[2].res.transport_error, CURLE_GOT_NOTHING);
    /* a sid that could not go back into a path is refused */
    assert_int_equal(o[3].res.http_status, 201);
    assert_string_equal(o[3].res.call_sid, "");
    assert_string_equal(o[3].res.message, "no valid call sid in jambonz's answer");
    run_for(1200); /* nothing is left waiting to retry */
    assert_int_equal(fx->nreqs, 4);
    assert_int_equal(jrest_pending(fx->j), 0);
}

static void update_retries_429_with_retry_after(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 429, "Retry-After: 1\r\n", "Too many requests, please try again later."},
        {R_ANSWER, 202, NULL, "Accepted"},
    };
    script(replies, 2);
    outcome_t o = {0};
    jrest_update_t hang = {.call_status = "completed"};
    assert_non_null(jrest_update_call(fx->j, CALL, &hang, on_result, &o));
    run_until(&o);
    assert_int_equal(o.res.http_status, 202);
    assert_int_equal(o.res.attempts, 2);
    assert_int_equal(fx->nreqs, 2);
    assert_true(fx->reqs[1].at_ms - fx->reqs[0].at_ms >= 950); /* Retry-After, not the 250 ms backoff */
    assert_string_equal(fx->reqs[1].body, fx->reqs[0].body);
    assert_request(&fx->reqs[1], "PUT", CALLS_PATH "/" CALL);
}

static void update_retries_5xx_and_drops(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 503, NULL, "Service Unavailable"},
        {R_DROP, 0, NULL, NULL},
        {R_ANSWER, 500, NULL, "{\"msg\":\"redis down\"}"},
        {R_ANSWER, 202, NULL, "Accepted"},
    };
    script(replies, 4);
    outcome_t o = {0};
    jrest_update_t redirect = {.call_hook_url = "https://sb.example.com/x"};
    assert_non_null(jrest_update_call(fx->j, CALL, &redirect, on_result, &o));
    run_until(&o);
    assert_int_equal(o.res.http_status, 202);
    assert_int_equal(o.res.attempts, 4);
    assert_int_equal(fx->nreqs, 4);
    /* capped exponential backoff: 250, 500, 1000 ms */
    assert_true(fx->reqs[1].at_ms - fx->reqs[0].at_ms >= 240);
    assert_true(fx->reqs[2].at_ms - fx->reqs[1].at_ms >= 490);
    assert_true(fx->reqs[3].at_ms - fx->reqs[2].at_ms >= 990);
}

static void update_gives_up_after_four_attempts(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_ANSWER, 503, NULL, "a"},
        {R_ANSWER, 503, "Retry-After: 0\r\n", "b"},
        {R_ANSWER, 503, NULL, "c"},
        {R_ANSWER, 503, NULL, "{\"msg\":\"still down\"}"},
    };
    script(replies, 4);
    outcome_t o = {0};
    jrest_update_t hang = {.call_status = "completed"};
    assert_non_null(jrest_update_call(fx->j, CALL, &hang, on_result, &o));
    run_until(&o);
    assert_int_equal(o.res.http_status, 503);
    assert_int_equal(o.res.attempts, 4);
    assert_string_equal(o.res.message, "still down");
    assert_int_equal(fx->nreqs, 4);
}

static void transport_errors(void **state)
{
    (void)state;
    /* a port nothing listens on: create fails at once, update retries then reports */
    static uv_tcp_t probe; /* closes after the test returns */
    struct sockaddr_in addr;
    uv_tcp_init(&fx->loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&probe, (struct sockaddr *)&addr, 0), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &sl);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    config_t cfg = fx->cfg;
    cfg.jambonz_api_base = base; /* the trailing slash is dropped */
    jrest_t *j = jrest_new(&fx->loop, fx->curl, &cfg);
    assert_non_null(j);
    outcome_t c = {0}, u = {0};
    jrest_update_t hang = {.call_status = "completed"};
    assert_non_null(jrest_create_call(j, &create_phone, on_result, &c));
    assert_non_null(jrest_update_call(j, CALL, &hang, on_result, &u));
    run_until(&c);
    run_until(&u);
    assert_int_equal(c.res.transport_error, CURLE_COULDNT_CONNECT);
    assert_int_equal(c.res.http_status, 0);
    assert_int_equal(c.res.attempts, 1);
    assert_true(strlen(c.res.message) > 0);
    assert_int_equal(u.res.transport_error, CURLE_COULDNT_CONNECT);
    assert_int_equal(u.res.attempts, 4);
    assert_false(u.res.timed_out);
    jrest_free(j);
    uv_close((uv_handle_t *)&probe, NULL);
}

static void create_times_out(void **state)
{
    (void)state;
    static const reply_t replies[] = {{R_HANG, 0, NULL, NULL}};
    script(replies, 1);
    config_t cfg = fx->cfg;
    cfg.twilio_timeout_ms = 300;
    jrest_t *j = jrest_new(&fx->loop, fx->curl, &cfg);
    outcome_t o = {0};
    assert_non_null(jrest_create_call(j, &create_phone, on_result, &o));
    run_until(&o);
    assert_true(o.res.timed_out);
    assert_int_equal(o.res.transport_error, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(o.res.attempts, 1);
    assert_int_equal(fx->nreqs, 1);
    jrest_free(j);
}

static void cancel_drops_the_callback(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_HANG, 0, NULL, NULL},
        {R_ANSWER, 503, "Retry-After: 5\r\n", "busy"},
    };
    script(replies, 2);
    outcome_t o1 = {0}, o2 = {0};
    jrest_update_t hang = {.call_status = "completed"};
    jrest_op_t *a = jrest_create_call(fx->j, &create_phone, on_result, &o1);
    assert_non_null(a);
    run_until_requests(1);
    jrest_op_t *b = jrest_update_call(fx->j, CALL, &hang, on_result, &o2);
    assert_non_null(b);
    run_until_requests(2);
    run_for(200); /* the 503 arrives: b now waits 5 s for its retry */
    assert_int_equal(jrest_pending(fx->j), 2);
    jrest_cancel(a); /* in flight */
    jrest_cancel(b); /* waiting to retry */
    assert_int_equal(jrest_pending(fx->j), 0);
    run_for(100);
    assert_int_equal(o1.calls, 0);
    assert_int_equal(o2.calls, 0);
    assert_int_equal(fx->nreqs, 2);
}

static void free_ends_pending_ops(void **state)
{
    (void)state;
    static const reply_t replies[] = {
        {R_HANG, 0, NULL, NULL},
        {R_ANSWER, 429, "Retry-After: 5\r\n", "slow down"},
    };
    script(replies, 2);
    outcome_t o1 = {0}, o2 = {0};
    jrest_update_t hang = {.call_status = "completed"};
    assert_non_null(jrest_create_call(fx->j, &create_phone, on_result, &o1));
    assert_non_null(jrest_update_call(fx->j, CALL, &hang, on_result, &o2));
    run_until_requests(2);
    run_for(200); /* the 429 arrives: the update waits 5 s for its retry */
    assert_int_equal(jrest_pending(fx->j), 2);
    jrest_free(fx->j);
    fx->j = NULL;
    assert_int_equal(o1.calls, 1);
    assert_int_equal(o2.calls, 1);
    assert_true(o1.res.cancelled);
    assert_true(o2.res.cancelled);
    assert_int_equal(o2.res.attempts, 1);
    assert_string_equal(o1.res.message, "shutting down");
}

static void bad_parameters_send_nothing(void **state)
{
    (void)state;
    static const char *const bad_sids[] = {"",
                                           ".",
                                           "..",
                                           "../x",
                                           "a/b",
                                           "a b",
                                           "x%2F",
                                           "a?b",
                                           "a#b",
                                           "\xc3\xa9",
                                           "0123456789012345678901234567890123456789012345678901234567890123"};
    jrest_update_t hang = {.call_status = "completed"};
    outcome_t o = {0};
    for (size_t i = 0; i < sizeof(bad_sids) / sizeof(bad_sids[0]); i++) {
        assert_false(jrest_valid_sid(bad_sids[i]));
        assert_null(jrest_update_call(fx->j, bad_sids[i], &hang, on_result, &o));
    }
    assert_false(jrest_valid_sid(NULL));
    assert_null(jrest_update_call(fx->j, NULL, &hang, on_result, &o));
    assert_true(jrest_valid_sid(CALL));
    assert_true(jrest_valid_sid("CA_1.x-2"));
    jrest_update_t both = {.call_status = "completed", .call_hook_url = "https://x/y"};
    jrest_update_t neither = {0};
    jrest_update_t wrong = {.call_status = "canceled"};
    assert_null(jrest_update_call(fx->j, CALL, &both, on_result, &o));
    assert_null(jrest_update_call(fx->j, CALL, &neither, on_result, &o));
    assert_null(jrest_update_call(fx->j, CALL, &wrong, on_result, &o));

    jrest_create_t p = create_phone;
    p.from = NULL;
    assert_null(jrest_create_call(fx->j, &p, on_result, &o));
    p = create_phone;
    p.to = "";
    assert_null(jrest_create_call(fx->j, &p, on_result, &o));
    p = create_phone;
    p.call_hook_url = NULL;
    assert_null(jrest_create_call(fx->j, &p, on_result, &o));
    p = create_phone;
    p.from = "\xff\xfe"; /* not UTF-8: jansson refuses it */
    assert_null(jrest_create_call(fx->j, &p, on_result, &o));
    json_t *arr = json_array();
    p = create_phone;
    p.tag = arr; /* jambonz wants an object */
    assert_null(jrest_create_call(fx->j, &p, on_result, &o));
    json_decref(arr);

    run_for(50);
    assert_int_equal(o.calls, 0);
    assert_int_equal(fx->nreqs, 0);
    assert_int_equal(jrest_pending(fx->j), 0);
}

static void new_needs_the_settings(void **state)
{
    (void)state;
    config_t cfg = fx->cfg;
    cfg.jambonz_api_base = NULL;
    assert_null(jrest_new(&fx->loop, fx->curl, &cfg)); /* REST off */
    cfg = fx->cfg;
    cfg.jambonz_account_sid = (char *)"../other";
    assert_null(jrest_new(&fx->loop, fx->curl, &cfg));
    cfg = fx->cfg;
    cfg.jambonz_api_key = (char *)"key\r\nX-Injected: 1";
    assert_null(jrest_new(&fx->loop, fx->curl, &cfg));
    cfg = fx->cfg;
    cfg.jambonz_api_key = NULL;
    assert_null(jrest_new(&fx->loop, fx->curl, &cfg));
    assert_int_equal(jrest_pending(NULL), 0);
    jrest_free(NULL);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* the vectors folder: not used */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_sends_the_call_and_reads_the_sid, setup, teardown),
        cmocka_unit_test_setup_teardown(create_targets_and_application, setup, teardown),
        cmocka_unit_test_setup_teardown(update_hangs_up_and_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_are_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(create_is_never_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(update_retries_429_with_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(update_retries_5xx_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(update_gives_up_after_four_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(transport_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(create_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_drops_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(free_ends_pending_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_parameters_send_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(new_needs_the_settings, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
