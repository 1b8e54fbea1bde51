/* curlm: transfers driven by a libuv loop finish, report their result, and leave no handle behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/curlm.h"

/* A tiny HTTP server on the same loop: answers every connection with a fixed response. */
typedef struct {
    uv_tcp_t tcp;
    uv_write_t wr;
    char buf[512];
} peer_t;

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

static void peer_closed(uv_handle_t *h)
{
    free(h);
}

static void peer_written(uv_write_t *wr, int status)
{
    (void)status;
    uv_close((uv_handle_t *)wr->handle, peer_closed);
}

static void peer_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    peer_t *p = (peer_t *)h;
    *b = uv_buf_init(p->buf, sizeof(p->buf));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    peer_t *p = (peer_t *)s;
    if (n <= 0) {
        if (n < 0)
            uv_close((uv_handle_t *)s, peer_closed);
        return;
    }
    uv_read_stop(s);
    uv_buf_t out = uv_buf_init((char *)response, sizeof(response) - 1);
    uv_write(&p->wr, s, &out, 1, peer_written);
}

static void on_conn(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    peer_t *p = calloc(1, sizeof(*p));
    uv_tcp_init(server->loop, &p->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&p->tcp), 0);
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

typedef struct {
    int done;
    CURLcode result;
    long code;
    char body[64];
    size_t len;
} xfer_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    if (x->len + len < sizeof(x->body)) {
        memcpy(x->body + x->len, ptr, len);
        x->len += len;
    }
    return len;
}

typedef struct {
    curlm_t *m;
    uv_tcp_t *server;
    int remaining;
} ctx_t;

static ctx_t ctx;

static void on_done(CURL *easy, CURLcode result, void *data)
{
    xfer_t *x = data;
    x->done++;
    x->result = result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->code);
    curl_easy_cleanup(easy);
    if (--ctx.remaining == 0) {
        curlm_close(ctx.m);
        uv_close((uv_handle_t *)ctx.server, NULL);
    }
}

static void transfers_complete(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_tcp_t server;
    struct sockaddr_in addr;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_tcp_init(&loop, &server);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&server, (struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&server, 16, on_conn), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &sl);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    ctx.m = curlm_new(&loop);
    ctx.server = &server;
    assert_non_null(ctx.m);
    enum { N = 4 };
    xfer_t x[N + 1];
    memset(x, 0, sizeof(x));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    for (int i = 0; i < N; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &x[i]);
        assert_int_equal(curlm_add(ctx.m, e, on_done, &x[i]), 0);
    }
    /* a refused connection reports an error, not a hang */
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, "http://127.0.0.1:1/");
    assert_int_equal(curlm_add(ctx.m, e, on_done, &x[N]), 0);
    ctx.remaining = N + 1;

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].done, 1);
        assert_int_equal(x[i].result, CURLE_OK);
        assert_int_equal(x[i].code, 200);
        assert_int_equal(x[i].len, 5);
        assert_memory_equal(x[i].body, "hello", 5);
    }
    assert_int_equal(x[N].done, 1);
    assert_int_equal(x[N].result, CURLE_COULDNT_CONNECT);
    /* every uv handle curlm made is closed */
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transfers_complete),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
