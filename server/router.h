/*
 * router: maps method + path to a handler. Patterns are literal segments and {name}
 * captures ("/api/calls/{id}"); the query string is ignored. No match on the path is 404
 * JSON; a path matched with another method is 405 with Allow listing the methods it has.
 * The table itself lives in server/routes.c.
 */
#ifndef SB_ROUTER_H
#define SB_ROUTER_H

#include "server/http.h"

typedef void (*route_fn)(http_req_t *r);

typedef struct route {
    const char *method;
    const char *pattern;
    route_fn fn;
    int auth; /* auth_need_t: the least role a bearer token must carry; 0 for open routes */
} route_t;

extern const route_t router_routes[];
extern const size_t router_routes_count;

/* Finds the handler and runs it, or answers 404/405 itself. */
void router_dispatch(http_req_t *r);

/* Exposed for unit tests: 1 when path matches pattern, captures written to params. */
int router_match(const char *pattern, const char *path, size_t path_len, h2o_iovec_t *params, size_t *nparams);

#endif
