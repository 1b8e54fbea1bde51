/* The route table: every endpoint of the server, in one place; with the modules that live on
 * the workers' loops. */
#include "server/router.h"
#include "server/worker.h"

#include "ai/ai_ws.h"
#include "asterisk/app.h"
#include "asterisk/ari.h"
#include "jambonz/module.h"

#include "handlers/api_calls.h"
#include "handlers/api_stats.h"
#include "handlers/dashboard.h"
#include "handlers/api_tenants.h"
#include "handlers/health.h"
#include "handlers/jambonz.h"
#include "handlers/jambonz_call.h"
#include "handlers/jambonz_listen.h"
#include "handlers/media.h"
#include "handlers/metrics.h"
#include "handlers/outbound.h"
#include "handlers/post_call.h"
#include "server/auth.h"
#include "server/live.h"
#include "handlers/status.h"
#include "handlers/transfer.h"
#include "handlers/twilio.h"
#include "handlers/twiml_preview.h"
#include "handlers/voice.h"

const route_t router_routes[] = {
    {"GET", "/", dashboard_index},
    {"GET", "/assets/{version}/{name}", dashboard_asset},
    {"GET", "/health", health_get},
    {"GET", "/metrics", metrics_get},
    {"POST", "/twilio/voice", voice_inbound},
    {"GET", "/twilio/media", media_upgrade},
    {"POST", "/twilio/connect_action", voice_connect_action},
    {"POST", "/twilio/transfer_callback", transfer_callback},
    {"POST", "/twilio/status", status_callback},
    {"POST", "/twilio/recording", status_recording},
    {"POST", "/twilio/connect/{session_id}", outbound_connect},
    {"POST", "/twilio/status/{session_id}", status_callback},
    {"POST", "/twilio/dial_status/{session_id}", outbound_dial_status},
    {"POST", "/twilio/amd/{session_id}", outbound_amd},
    {"POST", "/jambonz/call", jambonz_call},
    {"POST", "/jambonz/status", jambonz_status},
    {"POST", "/jambonz/action", jambonz_action},
    {"GET", "/jambonz/listen", jambonz_listen_upgrade},
    {"POST", "/api/twilio/test", twiml_preview},
    {"POST", "/api/voice/post_call", post_call_webhook},
    {"POST", "/api/calls/initiate", outbound_initiate, AUTH_AGENT},
    {"GET", "/api/calls", api_calls_list, AUTH_AGENT},
    {"GET", "/api/calls/{id}", api_calls_get, AUTH_AGENT},
    {"POST", "/api/calls/{id}/hangup", api_calls_hangup, AUTH_AGENT},
    {"POST", "/api/calls/{id}/transfer", api_calls_transfer, AUTH_AGENT},
    {"GET", "/api/calls/{id}/recording", api_calls_recording, AUTH_AGENT},
    {"GET", "/api/live", live_subscribe, AUTH_AGENT},
    {"GET", "/api/stats", api_stats, AUTH_AGENT},
    {"GET", "/api/tenants", api_tenants_list, AUTH_ADMIN},
    {"POST", "/api/tenants", api_tenants_create, AUTH_ADMIN},
    {"GET", "/api/tenants/{id}", api_tenants_get, AUTH_ADMIN},
    {"PUT", "/api/tenants/{id}", api_tenants_update, AUTH_ADMIN},
};

const size_t router_routes_count = sizeof(router_routes) / sizeof(router_routes[0]);

const http_error_route_t http_error_routes[] = {
    {"/twilio/", twilio_send_apology},
    {"/jambonz/", jambonz_send_apology},
};
const size_t http_error_routes_count = sizeof(http_error_routes) / sizeof(http_error_routes[0]);

const worker_module_t worker_modules[] = {
    /* asterisk, jambonz, ai: asterisk/app.c, jambonz/module.c and ai/ai_ws.c find their state
     * at mod[0], mod[1] and mod[2]; ai last, so that the others' connections are let go first */
    {"asterisk", asterisk_start, asterisk_stop, asterisk_busy, asterisk_release},
    {"jambonz", jambonz_start, NULL, NULL, jambonz_release},
    {"ai", aiws_start, NULL, aiws_busy, aiws_release},
};
const size_t worker_modules_count = sizeof(worker_modules) / sizeof(worker_modules[0]);
