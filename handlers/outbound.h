/*
 * outbound: POST /api/calls/initiate places a call for the frontend; the session webhooks
 * answer Twilio for it: /twilio/connect/{session_id}, /twilio/dial_status/{session_id},
 * /twilio/amd/{session_id} (/twilio/status/{session_id} is status_callback).
 */
#ifndef SB_HANDLERS_OUTBOUND_H
#define SB_HANDLERS_OUTBOUND_H

#include "server/http.h"

void outbound_initiate(http_req_t *r);
void outbound_connect(http_req_t *r);
void outbound_dial_status(http_req_t *r);
void outbound_amd(http_req_t *r);

#endif
