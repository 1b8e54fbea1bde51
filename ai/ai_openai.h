/*
 * ai_openai: the OpenAI Realtime provider (ai_openai_provider, declared in ai/ai.h). One
 * WebSocket client connection per call (ai/ai_ws.h); the caller's
 * mu-law frames go out as input_audio_buffer.append with their base64 untouched, the agent's
 * audio comes back as response.output_audio.delta (GA) or response.audio.delta (beta).
 * OPENAI_REALTIME_SHAPE picks the GA or the beta session shape and headers.
 *
 * Ownership: the session belongs to the bridge from open() until close(), as ai/ai.h says;
 * after close() the provider owns it and frees it once the connection has ended (at the
 * latest when the worker stops). Everything the session needs from
 * ai_open_t is copied at open(); the API key is borrowed from the process-wide config.
 *
 * The connection is ai/ai_ws.h's (on ai/wsc.h); it reaches this module through aiws_ops_t.
 */
#ifndef SB_AI_OPENAI_H
#define SB_AI_OPENAI_H

#include <stddef.h>

#include "ai/ai.h"
#include "ai/ai_ws.h"

/* ---- for tests: the parts that need no connection ------------------------------------------
 * A session made by openai_session_new() has no connection: the test feeds server events to
 * openai_rx_feed()/openai_on_message() and reads what would be sent with openai_out_peek(). */

#define OPENAI_AUDIO_SLOTS AIWS_AUDIO_SLOTS
#define OPENAI_FRAME_B64   AIWS_FRAME_B64
#define OPENAI_CTRL_MAX    AIWS_CTRL_MAX
#define OPENAI_RX_MAX      (256 * 1024) /* largest server message; over it the session fails */
#define OPENAI_APPEND_HEAD "{\"type\":\"input_audio_buffer.append\",\"audio\":\""
#define OPENAI_APPEND_TAIL "\"}"
#define OPENAI_APPEND_MAX  (sizeof(OPENAI_APPEND_HEAD) - 1 + OPENAI_FRAME_B64 + sizeof(OPENAI_APPEND_TAIL) - 1)

/* Where to connect: OPENAI_REALTIME_URL with model=<model> added to its query (unless the query
 * names a model already). 0, or -1 for a URL that is not ws/wss/http/https or does not fit. */
typedef aiws_target_t openai_target_t;
int openai_target_parse(const char *url, const char *model, openai_target_t *t);

/* The session.update event for a call, GA or beta shape; malloc'd text, or NULL. Tools whose
 * parameters_json is not a JSON object are left out (and logged). */
char *openai_session_update_json(const ai_open_t *p, int beta);

/* Writes input_audio_buffer.append around b64 into dst without allocating; returns the message
 * length, or 0 when it does not fit in cap or b64 holds anything but base64 characters (the
 * text goes into JSON as is, so nothing else may pass). */
size_t openai_append_build(char *dst, size_t cap, const char *b64, size_t len);

/* A session without a connection; NULL when out of memory. Freed with openai_session_free()
 * (tests) or the provider's close(). */
ai_session_t *openai_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge, int beta);
void openai_session_free(ai_session_t *s);

/* An audio delta (response.output_audio.delta, or the beta's response.audio.delta) read without
 * a JSON tree: a flat object of strings without escapes, numbers and literals. b64 points into
 * the message. 1 when msg is one; 0 for anything else (which then takes the full parse). */
typedef struct openai_delta {
    const char *b64;
    size_t len;
    char item_id[128];
} openai_delta_t;
int openai_fast_delta(const char *msg, size_t len, openai_delta_t *d);

/* One received piece of a server message (a fragmented message comes in pieces); final is 1 on
 * its last piece. Returns -1 when the session failed (ev->error fatal was reported). */
int openai_rx_feed(ai_session_t *s, const char *in, size_t len, int final);
/* One whole server message. Returns -1 when the session failed. */
int openai_on_message(ai_session_t *s, const char *msg, size_t len);

/* The next message to send (control messages before audio), or NULL; *len is set.
 * openai_out_pop() drops it once sent. */
char *openai_out_peek(ai_session_t *s, size_t *len);
void openai_out_pop(ai_session_t *s);

/* 1 while a response is being generated (between response.created and response.done). */
int openai_response_in_flight(const ai_session_t *s);

#endif
