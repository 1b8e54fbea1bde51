/* transfer: the transfer chain as webhooks. POST /twilio/transfer_callback is <Dial action>. */
#ifndef SB_HANDLERS_TRANSFER_H
#define SB_HANDLERS_TRANSFER_H

#include "handlers/twilio.h"

/* Answers stage `attempt` of the call's chain and records the attempt on the call. */
void transfer_answer(twilio_req_t *t, const store_call_t *call, const call_policy_t *policy, int attempt);

/* The same, with the call's tenant policy loaded here; if the tenant cannot be read, the
 * server's settings alone decide (a person is still dialed). */
void transfer_continue(twilio_req_t *t, const store_call_t *call, int attempt);

void transfer_callback(http_req_t *r);

#endif
