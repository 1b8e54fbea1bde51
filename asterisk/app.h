/*
 * asterisk app: switchboard as Asterisk's Stasis application (ARI_APP) and media gateway.
 *
 * Every worker has an ARI REST client (so the API's live hang-up and an outbound originate
 * work from whichever worker took the request); worker 0 alone keeps the events WebSocket and
 * runs every Asterisk call: the caller's channel, the mixing bridge, the ExternalMedia channel
 * and its RTP leg, the AI bridge and the transfer legs, all on its loop. Channels switchboard
 * creates carry ids it chooses ("sbem-", "sbx-", "sbo-" + the session), so an event names its
 * call without any other state.
 *
 * A call: StasisStart of the caller → tenant by the DID (dialplan exten) or a `tenant=` Stasis
 * argument → call row (platform asterisk) → answer → mixing bridge → caller in it →
 * ExternalMedia (ulaw, RTP over UDP, external_host RTP_ADDRESS:port) → its StasisStart and the
 * REST reply both seen → it joins the bridge → the AI bridge starts. The AI's decision (or
 * DTMF 0, or a failing AI) runs the tenant's transfer chain (call/policy.h): originate the
 * target into the app, ring the caller; answered → into the caller's bridge, ExternalMedia
 * deleted; destroyed first → the next stage; then voicemail, then an apology sound and
 * hang-up. Hang-ups on either side end the other and destroy the bridge.
 *
 * Lifetime: asterisk_start() from the worker's thread once its loop and curl are up (a
 * no-op without ARI_URL); asterisk_stop() when the worker begins to stop: calls in flight are
 * hung up (best effort) and every handle is closed.
 */
#ifndef SB_ASTERISK_APP_H
#define SB_ASTERISK_APP_H

#include "db/store.h"

struct worker;
typedef struct asterisk asterisk_t;

int asterisk_start(struct worker *w, void **state);
void asterisk_stop(struct worker *w, void *state);
/* 1 while the hang-ups asterisk_stop() sent are still in flight. */
int asterisk_busy(struct worker *w, void *state);
void asterisk_release(struct worker *w, void *state);

/* "off" (no ARI_URL), "connecting", "connected" or "disconnected": the events socket of
 * worker 0, as the process last saw it (readable from any worker). */
const char *asterisk_health(const struct worker *w);

/* The API's live control (any worker). "hangup" hangs the caller's channel up; "transfer"
 * deletes the call's ExternalMedia channel, and the app, seeing it go, runs the transfer chain
 * from what the row says (next_action "transfer", reason "api", at transfer_attempt: write that
 * first). done runs once, on this worker, with Asterisk's HTTP status (0: no answer) and its
 * message; data is the caller's. 0 when the request went out, -1 otherwise (done not called). */
typedef void (*asterisk_done_cb)(void *data, long status, const char *message);
int asterisk_live(struct worker *w, const store_call_t *call, const char *action, asterisk_done_cb done, void *data);

/* An outbound call: originate the customer through ASTERISK_TRUNK into the application; its
 * StasisStart (answered) starts the AI as for an inbound call. The call row exists already.
 * 0 when the request went out (its result lands as events and call status), -1 otherwise. */
int asterisk_originate(struct worker *w, const store_call_t *call, const char *caller_id);

#endif
