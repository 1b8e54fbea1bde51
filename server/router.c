#include "server/router.h"
#include "server/auth.h"

#include <string.h>

int router_match(const char *pattern, const char *path, size_t path_len, h2o_iovec_t *params, size_t *nparams)
{
    const char *p = pattern, *s = path, *end = path + path_len;
    size_t n = 0;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return 0;
            const char *seg_end = s;
            while (seg_end < end && *seg_end != '/')
                seg_end++;
            if (seg_end == s || n == HTTP_MAX_PARAMS)
                return 0; /* empty capture never matches */
            params[n++] = h2o_iovec_init(s, (size_t)(seg_end - s));
            s = seg_end;
            p = close + 1;
            continue;
        }
        if (s == end || *s != *p)
            return 0;
        s++;
        p++;
    }
    if (s != end)
        return 0;
    *nparams = n;
    return 1;
}

void router_dispatch(http_req_t *r)
{
    h2o_req_t *req = r->req;
    /* path_normalized excludes the query string and has dot segments resolved */
    const char *path = req->path_normalized.base;
    size_t path_len = req->path_normalized.len;
    char allow[64] = "";
    for (size_t i = 0; i < router_routes_count; i++) {
        const route_t *rt = &router_routes[i];
        h2o_iovec_t params[HTTP_MAX_PARAMS];
        size_t np = 0;
        if (!router_match(rt->pattern, path, path_len, params, &np))
            continue;
        if (h2o_memis(req->method.base, req->method.len, rt->method, strlen(rt->method))) {
            memcpy(r->params, params, np * sizeof(params[0]));
            r->nparams = np;
            r->route = i + 1;
            if (rt->auth != AUTH_NONE && auth_check(r, (auth_need_t)rt->auth) != 0)
                return;
            rt->fn(r);
            return;
        }
        if (strstr(allow, rt->method) == NULL && strlen(allow) + strlen(rt->method) + 3 < sizeof(allow)) {
            if (allow[0] != '\0')
                strcat(allow, ", ");
            strcat(allow, rt->method);
        }
    }
    if (allow[0] != '\0') {
        http_add_header(r, "allow", allow);
        http_send_error(r, 405, "method_not_allowed", "method not allowed on this path", NULL);
        return;
    }
    http_send_error(r, 404, "not_found", "no such endpoint", NULL);
}
