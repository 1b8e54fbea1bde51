#include "handlers/dashboard.h"
#include "server/assets.h"

#include <string.h>

/* The page talks only to its own origin; no inline script or style, no framing. */
#define CSP                                                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "              \
    "media-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static void send_asset(http_req_t *r, const static_asset_t *a, const char *cache_control)
{
    http_add_header(r, "cache-control", cache_control);
    http_add_header(r, "etag", a->etag);
    http_add_header(r, "content-security-policy", CSP);
    http_add_header(r, "x-content-type-options", "nosniff");
    http_add_header(r, "referrer-policy", "no-referrer");
    h2o_iovec_t inm = http_header(r, "if-none-match");
    size_t elen = strlen(a->etag);
    if (inm.len == elen && memcmp(inm.base, a->etag, elen) == 0) {
        http_send(r, 304, a->content_type, "", 0);
        return;
    }
    http_send(r, 200, a->content_type, (const char *)a->data, a->len);
}

void dashboard_index(http_req_t *r)
{
    const static_asset_t *a = assets_find("index.html", 10);
    if (a == NULL) {
        http_send_error(r, 404, "not_found", "this build has no dashboard (static/ was empty)", NULL);
        return;
    }
    send_asset(r, a, "no-cache");
}

void dashboard_asset(http_req_t *r)
{
    h2o_iovec_t ver = http_param(r, 0), name = http_param(r, 1);
    const static_asset_t *a = assets_find(name.base, name.len);
    if (a == NULL || strcmp(a->name, "index.html") == 0) {
        http_send_error(r, 404, "not_found", "no such asset", NULL);
        return;
    }
    /* a page of an older build asks with its version: give today's file, but never cache it */
    int current = ver.len == strlen(static_assets_version) && memcmp(ver.base, static_assets_version, ver.len) == 0;
    send_asset(r, a, current ? "public, max-age=31536000, immutable" : "no-cache");
}
