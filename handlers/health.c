#include "handlers/health.h"
#include "asterisk/app.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdio.h>

void health_get(http_req_t *r)
{
    const app_t *app = r->w->app;
    long active = 0;
    int db_ok = store_active_calls(r->w->store, &active) == 0;
    if (!db_ok)
        log_warn("health.db_error", "rid=%s error=\"%s\"", r->rid, store_errmsg(r->w->store));
    /* fixed shape, constant strings only: printf is safe JSON here and far cheaper than a jansson tree */
    char calls[24] = "null";
    if (db_ok)
        snprintf(calls, sizeof(calls), "%ld", active);
    enum { CAP = 256 };
    char *buf = h2o_mem_alloc_pool(&r->req->pool, CAP);
    int n = snprintf(buf, CAP,
                     "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_s\":%llu,\"db\":\"%s\","
                     "\"twilio_configured\":%s,\"ai_provider\":\"%s\",\"active_calls\":%s,\"asterisk\":\"%s\"}\n",
                     db_ok ? "ok" : "error", SB_VERSION,
                     (unsigned long long)((uv_hrtime() / 1000000 - app->started_ms) / 1000), db_ok ? "ok" : "error",
                     config_twilio_configured(&app->cfg) ? "true" : "false",
                     config_ai_provider_name(app->cfg.ai_provider), calls, asterisk_health(r->w));
    http_send(r, db_ok ? 200 : 503, "application/json", buf, (size_t)n < CAP ? (size_t)n : CAP - 1);
}
