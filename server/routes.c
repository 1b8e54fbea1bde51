/* The route table: every endpoint of the server, in one place. */
#include "server/router.h"

#include "handlers/health.h"
#include "handlers/status.h"
#include "handlers/transfer.h"
#include "handlers/twiml_preview.h"
#include "handlers/voice.h"

const route_t router_routes[] = {
    {"GET", "/health", health_get},
    {"POST", "/twilio/voice", voice_inbound},
    {"POST", "/twilio/connect_action", voice_connect_action},
    {"POST", "/twilio/transfer_callback", transfer_callback},
    {"POST", "/twilio/status", status_callback},
    {"POST", "/twilio/recording", status_recording},
    {"POST", "/api/twilio/test", twiml_preview},
};

const size_t router_routes_count = sizeof(router_routes) / sizeof(router_routes[0]);
