/*
 * metrics: GET /metrics, the Prometheus text exposition (format 0.0.4) of server/metrics.h's
 * series summed over all workers. With METRICS_TOKEN set it needs Authorization: Bearer <that
 * token>; without it only loopback clients that came through no proxy may scrape.
 */
#ifndef SB_HANDLERS_METRICS_H
#define SB_HANDLERS_METRICS_H

#include "server/http.h"

void metrics_get(http_req_t *r);

#endif
