/* status: POST /twilio/status (call status callbacks) and POST /twilio/recording. Both answer <Response/>. */
#ifndef SB_HANDLERS_STATUS_H
#define SB_HANDLERS_STATUS_H

#include "server/http.h"

void status_callback(http_req_t *r);
void status_recording(http_req_t *r);

#endif
