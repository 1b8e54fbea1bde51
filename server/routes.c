/* The route table: every endpoint of the server, in one place. */
#include "server/router.h"

#include "handlers/health.h"

const route_t router_routes[] = {
    {"GET", "/health", health_get},
};

const size_t router_routes_count = sizeof(router_routes) / sizeof(router_routes[0]);
