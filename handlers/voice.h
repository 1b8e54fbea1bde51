/* voice: POST /twilio/voice (a call comes in) and POST /twilio/connect_action (the AI stream ended). */
#ifndef SB_HANDLERS_VOICE_H
#define SB_HANDLERS_VOICE_H

#include "server/http.h"

void voice_inbound(http_req_t *r);
void voice_connect_action(http_req_t *r);

#endif
