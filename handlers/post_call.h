/*
 * post_call: ElevenLabs' post-call webhook, POST /api/voice/post_call.
 *
 * Open route, authenticated by the ElevenLabs-Signature header ("t=<unix>,v0=<hex>", v0 the
 * HMAC-SHA256 of "<t>.<raw body>" keyed with ELEVENLABS_WEBHOOK_SECRET; timestamps older than
 * 30 minutes or more than 5 minutes ahead are refused). A post_call_transcription finds its
 * session, stores the transcript, summary and customer, and turns the caller's intent into a
 * booking or a ticket; the same conversation twice changes nothing the second time.
 */
#ifndef SB_HANDLERS_POST_CALL_H
#define SB_HANDLERS_POST_CALL_H

#include "server/http.h"

void post_call_webhook(http_req_t *r);

#endif
