/* health: GET /health, the liveness and configuration summary for operators and load balancers. */
#ifndef SB_HANDLERS_HEALTH_H
#define SB_HANDLERS_HEALTH_H

#include "server/http.h"

void health_get(http_req_t *r);

#endif
