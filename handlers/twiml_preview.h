/* twiml_preview: POST /api/twilio/test renders the TwiML a scenario would get, without a call. */
#ifndef SB_HANDLERS_TWIML_PREVIEW_H
#define SB_HANDLERS_TWIML_PREVIEW_H

#include "server/http.h"

void twiml_preview(http_req_t *r);

#endif
