/*
 * What app.c (events, call table, lifetime) and call.c (one call's flow) share. Not a public
 * interface: nothing outside asterisk/ includes it.
 */
#ifndef SB_ASTERISK_APP_INTERNAL_H
#define SB_ASTERISK_APP_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "asterisk/app.h"
#include "asterisk/ari.h"
#include "asterisk/ari_event.h"
#include "asterisk/rtp_leg.h"
#include "call/bridge.h"
#include "call/policy.h"
#include "db/store.h"

typedef enum { CH_CALLER, CH_MEDIA, CH_TRANSFER } ast_chan_t;

typedef enum {
    S_ANSWERING, /* answer, bridge, caller into it */
    S_MEDIA,     /* ExternalMedia being set up */
    S_AI,        /* the AI bridge runs */
    S_DECIDING,  /* the AI is done: what it decided runs from the timer */
    S_DIALING,   /* a transfer target rings */
    S_BRIDGED,   /* the caller talks to the target */
    S_PROMPT,    /* the voicemail prompt plays */
    S_RECORDING, /* the caller leaves a message */
    S_GOODBYE,   /* the apology plays */
} ast_state_t;

typedef struct asterisk asterisk_t;
typedef struct ast_call ast_call_t;

struct ast_call {
    ast_call_t *next, *prev;
    uint64_t serial; /* REST replies find their call by it: a reply may outlive the call */
    asterisk_t *app;
    uv_timer_t timer; /* deferred decisions (never from inside the bridge) and timeouts */
    ast_state_t state;
    char caller[ARI_ID_MAX + 1]; /* the caller's (or the outbound callee's) channel */
    char em[64], xfer[80], bridge[64], playback[64];
    store_call_t call; /* id 0: no row (the store failed): the settings' chain still runs */
    store_tenant_t tenant;
    call_policy_t pol; /* borrows from tenant and the settings */
    int outbound;
    int em_started, em_ready, em_added;
    rtp_leg_t *leg;
    bridge_t *b;
    int attempt;
    int api_attempt;     /* the stage the API already recorded as begun; -1: none */
    const char *pending; /* what the AI bridge decided; acted on from the timer */
    char pending_reason[128];
    uint64_t answered_ms;
    unsigned playbacks;
    int ringing;            /* the caller hears ringing we started */
    const char *end_reason; /* why we hang the caller up, for call.ended; NULL: the caller did */
};

struct asterisk {
    struct worker *w;
    ari_t *ari;
    rtp_pool_t *pool; /* worker 0 only */
    int events;       /* this worker keeps the events socket and runs the calls */
    int stopping, was_up;
    ast_call_t *calls;
    unsigned ncalls;
    uint64_t serial;
    unsigned long bad_events, unknown_channels, dropped_events;
    ari_event_t ev; /* the event being handled: one at a time, by the drain */
    /* events wait here in arrival order while one is handled on a fiber (PostgreSQL: a handler
     * may wait for the database; the loop never does) */
    struct ast_evq *evq_head, *evq_tail;
    unsigned evq_len;
    size_t evq_bytes;
    int draining;
};

/* app.c */
ast_call_t *ast_find(asterisk_t *a, uint64_t serial);
ast_call_t *ast_call_new(asterisk_t *a, const char *caller_channel);
void ast_call_free(ast_call_t *c);
/* METHOD with path segments and query pairs (see ari_url_build); done gets key. */
int ast_rest(asterisk_t *a, const char *method, const char *const *path, const char *const *query, ari_done_cb done,
             uint64_t key);

/* call.c */
void ast_inbound(asterisk_t *a, const ari_event_t *ev);
void ast_outbound_answered(asterisk_t *a, const ari_event_t *ev);
/* An outbound callee's channel ended before it was answered: the session ends busy, no-answer or failed. */
void ast_outbound_unanswered(asterisk_t *a, const ari_event_t *ev);
void ast_on_started(ast_call_t *c, ast_chan_t which, const ari_event_t *ev);
void ast_on_gone(ast_call_t *c, ast_chan_t which, const ari_event_t *ev);
void ast_on_dtmf(ast_call_t *c, char digit);
void ast_on_playback_done(ast_call_t *c);
/* The voicemail recording ended (state "done", "failed", ...): the caller is hung up. */
void ast_on_recording_done(ast_call_t *c, const char *state);
void ast_recheck_calls(asterisk_t *a);
/* Ends the call now: media and bridge gone, the row ended; hangup=1 also hangs the channels up. */
void ast_call_end(ast_call_t *c, const char *reason, int hangup);

#endif
