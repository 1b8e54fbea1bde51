/* dashboard: the web page in static/, served from the binary (GET / and GET /assets/...). */
#ifndef SB_HANDLERS_DASHBOARD_H
#define SB_HANDLERS_DASHBOARD_H

#include "server/http.h"

/* GET /: index.html, revalidated on every load (no-cache + ETag). */
void dashboard_index(http_req_t *r);
/* GET /assets/{version}/{name}: immutable for a year when version is the build's. */
void dashboard_asset(http_req_t *r);

#endif
