/*
 * bridge: one call's conversation between a media leg (the caller's audio on some platform)
 * and an AI provider, on the worker that carries the leg. It knows no platform: Twilio Media
 * Streams, an Asterisk ExternalMedia RTP stream or a jambonz listen socket each implement
 * media_leg_t and feed the bridge through bridge_on_*.
 *
 * Audio is 8 kHz mu-law as base64 text both ways (ai.h): a leg that carries raw bytes encodes
 * and decodes at its edge; the bridge and the providers never copy it otherwise.
 *
 * Lifetime: bridge_new() when the leg is up; bridge_leg_gone() when the leg is finished (the
 * bridge then frees itself once its own handles are closed). The leg is never called after
 * bridge_leg_gone(). The leg may call bridge_on_* from inside its own callbacks.
 */
#ifndef SB_BRIDGE_H
#define SB_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

struct worker;
typedef struct bridge bridge_t;

/* What the bridge asks of a leg; `leg` is the pointer given to bridge_new(). */
typedef struct media_leg {
    /* Agent audio for the caller, base64 mu-law (only base64 characters, at most 1600 of them).
     * 0, or -1 when the leg's queue is full (the bridge counts it as dropped). */
    int (*audio)(void *leg, const char *b64, size_t len);
    /* A marker after the audio given so far: the leg calls bridge_on_mark(seq) once that audio
     * has been played to the caller. 0, or -1 when it could not be queued. */
    int (*mark)(void *leg, uint32_t seq);
    /* Barge-in: drop the agent audio not yet played, at once; pending marks are forgotten. */
    void (*clear)(void *leg);
    /* The AI part is over. next_action is what the call does next ("transfer", "hangup", or
     * NULL: nothing, the leg was refused); it is also stored on the call. code is a WebSocket
     * status code (1000 normal, 1003/1007/1009 bad input, 1008 refused) for legs that have one. */
    void (*close)(void *leg, int code, const char *next_action, const char *reason);
} media_leg_t;

bridge_t *bridge_new(struct worker *w, const media_leg_t *leg, void *ctx);

/* The leg is up. leg_id names it (Twilio's streamSid, the ExternalMedia channel); call_ref, when
 * the call row has a platform call id, must match it (Twilio's CallSid); the strings are copied.
 * Returns -1 when the leg must be refused (unknown session, call mismatch): the bridge has
 * already closed it. With PostgreSQL the lookups may wait on a fiber: then it returns 0 at once
 * and a refusal closes the leg later, the same way; frames before that are dropped as early. */
int bridge_on_start(bridge_t *b, const char *leg_id, const char *call_ref, const char *session_id);
/* One caller frame (20 ms), base64 mu-law; timestamp_ms on the leg's clock, for recordings. */
void bridge_on_media(bridge_t *b, const char *b64, size_t len, uint64_t timestamp_ms);
/* The audio before marker seq has been played (markers come back in order; a later one
 * implies the earlier ones). */
void bridge_on_mark(bridge_t *b, uint32_t seq);
void bridge_on_dtmf(bridge_t *b, const char *digit);
/* The platform ended the audio (the caller hung up, or the call moved on). */
void bridge_on_stop(bridge_t *b);
/* The leg broke its protocol (oversized, binary, bad JSON): counted, closed, the call falls back. */
void bridge_on_protocol_error(bridge_t *b, const char *what, int close_code);

/* The leg is gone: the bridge is freed (after its timer closes, and after any fiber still
 * waiting on the database for it has resumed); b is not to be used after this. */
void bridge_leg_gone(bridge_t *b);

/* Bytes this bridge holds, for the memory budget. */
size_t bridge_memory(const bridge_t *b);

#endif
