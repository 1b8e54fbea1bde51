/* api_calls: the calls API of the frontend, scoped to the token's tenant. */
#ifndef SB_HANDLERS_API_CALLS_H
#define SB_HANDLERS_API_CALLS_H

#include "server/http.h"

void api_calls_list(http_req_t *r);
void api_calls_get(http_req_t *r);
void api_calls_hangup(http_req_t *r);
void api_calls_transfer(http_req_t *r);
void api_calls_recording(http_req_t *r);

#endif
