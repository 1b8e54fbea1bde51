#include "handlers/health.h"
#include "server/log.h"
#include "server/worker.h"

void health_get(http_req_t *r)
{
    const app_t *app = r->w->app;
    long active = 0;
    int db_ok = store_active_calls(r->w->store, &active) == 0;
    if (!db_ok)
        log_warn("health.db_error", "rid=%s error=\"%s\"", r->rid, store_errmsg(r->w->store));
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:b, s:s}", "status", db_ok ? "ok" : "error", "version", SB_VERSION,
                             "uptime_s", (json_int_t)((uv_hrtime() / 1000000 - app->started_ms) / 1000), "db",
                             db_ok ? "ok" : "error", "twilio_configured", config_twilio_configured(&app->cfg),
                             "ai_provider", config_ai_provider_name(app->cfg.ai_provider));
    json_object_set_new(body, "active_calls", db_ok ? json_integer(active) : json_null());
    http_send_json(r, db_ok ? 200 : 503, body);
}
