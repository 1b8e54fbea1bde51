#include "handlers/metrics.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/worker.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static void refuse(http_req_t *r, const char *why, const char *message)
{
    log_info("metrics.refused", "rid=%s why=%s", r->rid, why);
    http_add_header(r, "www-authenticate", "Bearer realm=\"switchboard\"");
    http_send_error(r, 401, "unauthorized", message, NULL);
}

/* Digests first: the comparison takes the same time whatever the lengths and contents. */
static int token_ok(const http_req_t *r, const char *want)
{
    h2o_iovec_t h = http_header(r, "authorization");
    if (h.len < 7 || strncasecmp(h.base, "bearer ", 7) != 0)
        return 0;
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)h.base + 7, h.len - 7, a);
    SHA256((const unsigned char *)want, strlen(want), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* A loopback peer that no proxy stands in front of: a tunnel or reverse proxy on this host
 * connects from loopback too, but says whom it forwards for. */
static int local_client(const http_req_t *r)
{
    static const char *const forwarded[] = {"x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-proto",
                                            "cf-connecting-ip"};
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (http_header(r, forwarded[i]).base != NULL)
            return 0;
    h2o_conn_t *conn = r->req->conn;
    struct sockaddr_storage ss;
    if (conn->callbacks->get_peername == NULL || conn->callbacks->get_peername(conn, (struct sockaddr *)&ss) == 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

void metrics_get(http_req_t *r)
{
    const app_t *app = r->w->app;
    const char *token = app->cfg.metrics_token;
    if (token != NULL ? !token_ok(r, token) : !local_client(r)) {
        if (token != NULL)
            refuse(r, "bad_token", "an Authorization: Bearer token equal to METRICS_TOKEN is required");
        else
            refuse(r, "not_local",
                   "metrics are served to loopback clients only; set METRICS_TOKEN to scrape from "
                   "elsewhere");
        return;
    }
    size_t nw = app->cfg.workers < WORKERS_MAX ? (size_t)app->cfg.workers : WORKERS_MAX, nroutes = router_routes_count;
    const metrics_t **ws = h2o_mem_alloc_pool(&r->req->pool, sizeof(*ws) * (nw ? nw : 1));
    const char **routes = h2o_mem_alloc_pool(&r->req->pool, sizeof(*routes) * (nroutes ? nroutes : 1));
    for (size_t i = 0; i < nw; i++)
        ws[i] = atomic_load_explicit(&app->status->metrics[i], memory_order_acquire);
    for (size_t i = 0; i < nroutes; i++)
        routes[i] = router_routes[i].pattern;
    metrics_view_t v = {ws, nw, routes, nroutes, SB_VERSION};
    size_t len = 0;
    char *text = metrics_render(&v, &len);
    if (text == NULL) {
        log_error("metrics.render_failed", "rid=%s", r->rid);
        http_send_error(r, 500, "out_of_memory", "the metrics could not be rendered", NULL);
        return;
    }
    http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
