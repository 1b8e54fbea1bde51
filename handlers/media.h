/* media: GET /twilio/media, Twilio Media Streams for <Connect><Stream>: the WebSocket and
 * Twilio's message protocol, feeding the call's bridge. */
#ifndef SB_HANDLERS_MEDIA_H
#define SB_HANDLERS_MEDIA_H

#include "server/http.h"

void media_upgrade(http_req_t *r);

#define MEDIA_MAX_MSG (64 * 1024)

#endif
