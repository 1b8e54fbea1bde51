/* api_stats: the dashboard's picture of a day (GET /api/stats), tenant-scoped. */
#ifndef SB_HANDLERS_API_STATS_H
#define SB_HANDLERS_API_STATS_H

#include "server/http.h"

/* ?since=ISO&until=ISO (at most 7 days): calls per hour from since, and outcome counts. */
void api_stats(http_req_t *r);

#endif
